"""Shared test setup: TensorFlow quiet and on the CPU, Keras on the TensorFlow backend."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import json  # noqa: E402
import pathlib  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def finished(tmp_path_factory):
    """One finished tiny demo run (one proposal chunk per image), shared by every module that
    reads it; tests that change it work on a copy. Returns its config and root metrics."""
    from affect_tf import stages
    from affect_tf.testing import tiny_config

    root = tmp_path_factory.mktemp("finished")
    config = tiny_config(root, proposal_commit_seconds=0.0)
    stages.run(config)
    return config, json.loads((pathlib.Path(config.workdir) / "metrics.json").read_text())


@pytest.fixture
def copy_of(finished, tmp_path):
    """A private copy of the finished run's workdir (the prepared data is shared, read only).
    Returns its config and the root metrics."""
    import shutil

    from affect_tf.testing import replace_config

    config, metrics = finished
    shutil.copytree(config.workdir, tmp_path / "run")
    return replace_config(config, workdir=str(tmp_path / "run")), metrics


@pytest.fixture(scope="session")
def exported_demo(finished, tmp_path_factory):
    """The finished run's SavedModel, exported to a folder of its own (version 1 under it).
    Returns (the run's config, the export root)."""
    from affect_tf import stages
    from affect_tf.testing import replace_config

    import shutil

    config, _ = finished
    # The export adds the served evaluation to its run's workdir and report: export a copy, so
    # the shared run stays what every other test compares with.
    copy = tmp_path_factory.mktemp("demo_export_run") / "run"
    shutil.copytree(config.workdir, copy)
    config = replace_config(config, workdir=str(copy))
    export_root = tmp_path_factory.mktemp("demo_export")
    stages.export_stage(stages.Run(replace_config(config, export_dir=str(export_root))))
    return config, export_root
