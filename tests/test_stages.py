"""The stages (affect_tf.stages over affect_tf.workspace): a run never reports a number computed
from a damaged or stale file; fingerprints follow the settings a stage uses and the data it reads;
one run per workdir; bad settings fail fast.

Each test starts from a copy of one finished tiny demo run (conftest.py), damages or changes
something, runs again, and checks that the run either recomputes and reports the undamaged
numbers, or stops with a message naming the file and the fix.
"""

import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from affect_tf import artifacts
from affect_tf import evaluate as evaluate_lib
from affect_tf import preflight
from affect_tf import train as train_lib
from affect_tf.proposals import cache as cache_lib
from affect_tf.testing import REPO_ROOT, cli_flags, replace_config, run_cli, tiny_config


@pytest.fixture
def copy_of(finished, tmp_path):
    """A private copy of the finished run's workdir (``finished``: conftest.py; the TFDS data
    is shared, read only)."""
    config, metrics = finished
    workdir = tmp_path / "run"
    shutil.copytree(config.workdir, workdir)
    return replace_config(config, workdir=str(workdir)), metrics


class CountCNN:
    """Counts the predictions stage's CNN passes (one per evaluation part computed)."""

    def __init__(self, monkeypatch):
        self.calls = 0
        original = evaluate_lib.collect_predictions

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(evaluate_lib, "collect_predictions", counted)


def _metrics(config):
    return json.loads((pathlib.Path(config.workdir) / "metrics.json").read_text())


def _run(config, **overrides):
    from affect_tf import stages

    return stages.run(replace_config(config, **overrides))


def _truncate(path):
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)


def _flip_byte(path):
    data = bytearray(pathlib.Path(path).read_bytes())
    data[len(data) // 2] ^= 0x5A
    pathlib.Path(path).write_bytes(bytes(data))


# ---- damaged files ------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_damaged_proposal_chunk_stops_evaluate_then_all_recomputes_the_same_metrics(
        copy_of, damage):
    config, metrics = copy_of
    from affect_tf import stages

    run = stages.Run(config)
    cache = stages.proposal_cache(run)
    needed = set(run.splits.test)
    chunk = next(path for path in cache.chunk_paths()
                 if str(np.load(path)["filenames"][0]) in needed)
    (_truncate if damage == "truncate" else os.remove)(chunk)
    # Evaluate alone cannot recompute proposals: it stops, naming the file (or the missing
    # images) and the fix, instead of scoring images with "no regions".
    expected = os.path.basename(chunk) if damage == "truncate" else "have no proposals"
    with pytest.raises(cache_lib.ProposalCacheError, match=expected) as error:
        _run(config, mode="evaluate")
    assert "--mode=proposals" in str(error.value)
    _run(config, mode="all")
    assert _metrics(config) == metrics


def test_corrupt_predictions_are_recomputed_to_the_same_metrics(copy_of, monkeypatch):
    config, metrics = copy_of
    from affect_tf import stages

    predictions = stages.Run(config).predict_dir / "predictions_test.npz"
    _flip_byte(predictions)
    cnn = CountCNN(monkeypatch)
    _run(config, mode="evaluate")
    assert cnn.calls == 1, "only the damaged part is computed again"
    assert _metrics(config) == metrics
    damaged = {path.name for path in (pathlib.Path(config.workdir) / "damaged").iterdir()}
    # Both kept for a look: the manifest and the damaged file itself (never overwritten).
    assert any(name.endswith("manifest.json") for name in damaged), damaged
    assert any(name.endswith("predictions_test.npz") for name in damaged), damaged


def test_predictions_without_their_manifest_are_never_trusted(copy_of, monkeypatch):
    # The state a kill leaves between the predictions and the manifest, with a file changed
    # since: it loads and lists the right images, but its record does not verify it.
    config, metrics = copy_of
    from affect_tf import stages

    directory = stages.Run(config).predict_dir
    (directory / "manifest.json").unlink()
    path = directory / "predictions_test.npz"
    validation = (directory / "predictions_validation.npz").read_bytes()
    with np.load(path) as stored:
        arrays = dict(stored)
    arrays["global_probs"] = arrays["global_probs"][:, ::-1].copy()
    arrays["candidate_probs"] = arrays["candidate_probs"][..., ::-1].copy()
    np.savez(path, **arrays)
    tampered = path.read_bytes()
    # Through the command line, where the finding was seen (exit 0 with a wrong number).
    result, _ = run_cli(*cli_flags(replace_config(config, mode="evaluate")))
    assert result.returncode == 0, result.stderr[-3000:]
    assert _metrics(config) == metrics
    assert path.read_bytes() != tampered, "the changed part was computed again"
    assert (directory / "predictions_validation.npz").read_bytes() == validation


def test_a_damaged_cache_index_is_rebuilt_keeping_the_chunks(copy_of):
    config, metrics = copy_of
    from affect_tf import stages

    cache = stages.proposal_cache(stages.Run(config))
    chunks = {path: (pathlib.Path(path).read_bytes(), os.stat(path).st_mtime_ns)
              for path in cache.chunk_paths()}
    meta = pathlib.Path(cache.directory) / cache_lib.META_FILENAME
    meta.write_text('{"format_version": 1, "config": ')
    result, _ = run_cli(*cli_flags(config))  # --mode=all, as in the finding
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rebuilt it" in result.stderr
    assert _metrics(config) == metrics
    # Every chunk kept as it was (no proposal computed again, nothing rewritten).
    assert {path: (pathlib.Path(path).read_bytes(), os.stat(path).st_mtime_ns)
            for path in cache.chunk_paths()} == chunks
    assert (pathlib.Path(cache.directory) / "damaged" / cache_lib.META_FILENAME).exists()
    assert json.loads(meta.read_text())["fingerprint"] == cache.fingerprint


def test_corrupt_classifier_stops_evaluate_and_all_saves_it_again(copy_of):
    config, metrics = copy_of
    from affect_tf import stages

    classifier = stages.Run(config).train_dir / train_lib.CLASSIFIER_FILE
    _flip_byte(classifier)
    with pytest.raises(artifacts.DamagedArtifactError,
                       match=r"classifier\.weights\.h5.*--mode=train"):
        _run(config, mode="evaluate")
    _run(config, mode="all")
    assert _metrics(config) == metrics


def test_damaged_splits_are_moved_aside_and_computed_again(copy_of):
    config, metrics = copy_of
    splits = next(pathlib.Path(config.workdir).glob("splits-*.json"))
    text = splits.read_text()
    splits.write_text(text.replace('"test": [', '"test": ["extra.png", ', 1))
    _run(config, mode="all")
    assert splits.read_text() == text
    assert _metrics(config) == metrics


def test_checkpoint_that_does_not_restore_is_moved_aside(copy_of, caplog):
    config, _ = copy_of
    from affect_tf import stages

    directory = stages.Run(config).train_dir
    data_file = next((directory / "checkpoints").glob("ckpt-*.data-*"))
    _truncate(data_file)
    trainer = train_lib.Trainer(config.model, config.train, str(directory))
    with caplog.at_level(logging.WARNING):
        assert trainer.restore() == 0
    assert "does not restore" in caplog.text
    assert data_file.name in os.listdir(directory / "damaged")


# ---- fingerprints follow the settings a stage uses and the content it reads ---------------------

@pytest.mark.parametrize("change", [{"regions": {"top_k": 1}}, {"regions": {"alpha": 0.3}},
                                    {"fusion": {"fusion": "sum", "beta": 0.5}}])
def test_region_and_fusion_settings_rerun_only_the_fusion(copy_of, monkeypatch, change):
    config, _ = copy_of
    cnn = CountCNN(monkeypatch)
    run = _run(config, mode="evaluate", **change)
    assert cnn.calls == 0, "the CNN's predictions are reused"
    metrics = _metrics(run.config)
    assert metrics["top_k"] == run.config.regions.top_k
    report = (pathlib.Path(config.workdir) / "report.md").read_text()
    assert f"K = {run.config.regions.top_k}," in report, "report and metrics.json agree"


def test_region_context_reruns_the_evaluation_but_not_the_training(copy_of, monkeypatch):
    config, _ = copy_of
    from affect_tf import stages

    def no_training(*args, **kwargs):
        raise AssertionError("training ran again")

    monkeypatch.setattr(train_lib.Trainer, "fit", no_training)
    cnn = CountCNN(monkeypatch)
    changed = _run(config, model={"region_context": 4})
    assert changed.train_dir == stages.Run(config).train_dir
    assert changed.predict_dir != stages.Run(config).predict_dir
    assert cnn.calls == 2


def test_moving_the_data_changes_no_fingerprint(copy_of, tmp_path, monkeypatch):
    config, metrics = copy_of
    moved = tmp_path / "moved_tfds"
    shutil.copytree(config.data.data_dir, moved)
    cnn = CountCNN(monkeypatch)
    _run(config, data={"data_dir": str(moved)})
    assert cnn.calls == 0 and _metrics(config) == metrics


def test_rebuilt_dataset_with_more_images_gets_new_splits(tmp_path, caplog):
    from affect_tf import stages

    manual = tmp_path / "manual"
    shutil.copytree(REPO_ROOT / "datasets" / "artphoto" / "dummy_data", manual)
    config = tiny_config(tmp_path, mode="prepare",
                         data={"dataset": "artphoto", "manual_dir": str(manual)})
    before = stages.run(config).for_fold(0).splits
    folder = next(path.parent for path in manual.rglob("amusement_0001.jpg"))
    for index in range(50, 56):
        shutil.copy(folder / "amusement_0001.jpg", folder / f"amusement_{index:04d}.jpg")
        shutil.copy(folder / "fear_0001.jpg", folder / f"fear_{index:04d}.jpg")
    shutil.rmtree(tmp_path / "tfds" / "artphoto")  # The user rebuilds the dataset.
    with caplog.at_level(logging.INFO):
        after = stages.run(config).for_fold(0).splits
    everything = set(after.train) | set(after.validation) | set(after.test)
    assert len(everything) == len(set(before.train) | set(before.validation)
                                  | set(before.test)) + 12
    assert "fear_0055.jpg" in everything
    assert "dataset changed" in caplog.text
    assert len(list(pathlib.Path(config.workdir).glob("fold-0/splits-*.json"))) == 2


# ---- what a finished or failed run leaves --------------------------------------------------------

def test_finished_run_keeps_one_checkpoint_and_the_classifier_once(finished):
    config, _ = finished
    from affect_tf import stages

    run = stages.Run(config)
    assert len(list((run.train_dir / "checkpoints").glob("ckpt-*.index"))) == 1
    root_copy = pathlib.Path(config.workdir) / train_lib.CLASSIFIER_FILE
    assert os.path.samefile(root_copy, run.train_dir / train_lib.CLASSIFIER_FILE)
    assert not (pathlib.Path(config.workdir) / artifacts.LOCK_FILE).exists()


def test_failed_training_leaves_no_directory_and_keeps_config_json(copy_of, monkeypatch):
    config, _ = copy_of
    from affect_tf import stages

    before = (pathlib.Path(config.workdir) / "config.json").read_text()

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(train_lib.Trainer, "fit", broken)
    changed = replace_config(config, train={"steps": 6})
    with pytest.raises(RuntimeError, match="out of memory"):
        stages.run(changed)
    assert not stages.Run(changed).train_dir.exists()
    assert (pathlib.Path(config.workdir) / "config.json").read_text() == before


# ---- one run per workdir ------------------------------------------------------------------------

def test_a_second_run_on_a_locked_workdir_stops_at_once(copy_of):
    config, _ = copy_of
    from affect_tf import stages

    with artifacts.WorkdirLock(config.workdir):
        start = time.monotonic()
        with pytest.raises(artifacts.WorkdirLockedError, match=f"pid {os.getpid()}"):
            stages.run(replace_config(config, mode="report"))
        assert time.monotonic() - start < 10


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    lock = artifacts.WorkdirLock(tmp_path)
    lock.path.write_text(json.dumps({"pid": int(dead), "host": lock.owner["host"]}))
    with caplog.at_level(logging.WARNING):
        with artifacts.WorkdirLock(tmp_path):
            assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert "no longer alive" in caplog.text
    assert not lock.path.exists()


def test_a_lock_of_another_host_is_never_taken(tmp_path):
    lock = artifacts.WorkdirLock(tmp_path)
    lock.path.write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "today"}))
    with pytest.raises(artifacts.WorkdirLockedError, match="host elsewhere"):
        artifacts.WorkdirLock(tmp_path).acquire()


# ---- bad settings fail within seconds, naming the fix -------------------------------------------

def _cli(*args):
    return run_cli(*args, timeout=120)


@pytest.mark.parametrize("args, fix", [
    (["--weights={tmp}/missing.weights.h5", "--head=gap"], "does not exist"),
    (["--weights={tmp}/runs/fi/classifier.weights.h5", "--head=vgg"],
     "run that one first, or start from ImageNet with --weights=imagenet"),
    (["--workdir={tmp}/a_file/run"], "cannot be created or written"),
    (["--workdir={tmp}/a_file"], "must be a directory"),
    (["--dataset=no_such_set"], "must be one of the project's datasets"),
    (["--dataset=artphoto", "--manual_dir={tmp}/empty"], "datasets/artphoto/README.md"),
    (["--dataset=artphoto", "--mode=evaluate"], "run --mode=prepare"),
    (["--edge_source=sed", "--sed_model_path={tmp}/model.yml.gz"], "model.yml.gz"),
    (["--edge_source=hed", "--sed_model_path={tmp}/model.yml.gz"], "add --edge_source=sed"),
])
def test_bad_settings_fail_within_seconds_naming_the_fix(tmp_path, args, fix):
    (tmp_path / "a_file").write_text("not a directory")
    (tmp_path / "empty").mkdir()
    defaults = {"--workdir": f"{tmp_path}/run", "--weights": "none", "--head": "gap",
                "--data_dir": f"{tmp_path}/tfds"}
    given = [arg.format(tmp=tmp_path) for arg in args]
    given += [f"{key}={value}" for key, value in defaults.items()
              if not any(arg.startswith(key + "=") for arg in given)]
    result, seconds = _cli(*given)
    assert result.returncode == 2, result.stderr[-2000:]
    assert fix in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert seconds < 10


def test_an_unknown_edge_source_is_refused_naming_the_choices(tmp_path):
    # absl refuses it while parsing flags (its exit status 1), before anything is loaded.
    result, seconds = _cli("--edge_source=canny", f"--workdir={tmp_path}/run")
    assert result.returncode != 0
    assert "--edge_source=canny" in result.stderr and "gradient|hed|sed" in result.stderr
    assert "Traceback" not in result.stderr
    assert seconds < 10


def test_a_small_set_flagfile_without_the_fi_classifier_stops_at_once(tmp_path):
    # The transfer of Section 4.2: configs/iapsa.flags starts from runs/fi/classifier.weights.h5
    # (relative to the repository root, where flagfiles are run); without it the run stops
    # before any stage, saying how to make it or how to start from ImageNet instead.
    if (REPO_ROOT / "runs" / "fi" / "classifier.weights.h5").exists():
        pytest.skip("this checkout has an FI classifier")
    manual = tmp_path / "iapsa"
    manual.mkdir()
    (manual / "some.jpg").write_bytes(b"not empty")
    result, seconds = _cli("--flagfile=configs/iapsa.flags", f"--workdir={tmp_path}/run",
                           f"--data_dir={tmp_path}/tfds", f"--manual_dir={manual}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "configs/fi.flags" in result.stderr or "runs/fi" in result.stderr, result.stderr[-2000:]
    assert "--weights=imagenet" in result.stderr
    assert "Traceback" not in result.stderr
    assert seconds < 10


def test_imagenet_weights_offline_fail_before_any_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    config = tiny_config(tmp_path, model={"weights": "imagenet", "head": "gap"})
    with pytest.raises(preflight.PreflightError, match="--weights=hed"):
        preflight.check(config, imagenet_reachable=lambda: False)
    # Once the file is in Keras' cache, nothing is downloaded and the check passes.
    models = tmp_path / "keras" / "models"
    models.mkdir(parents=True)
    (models / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    preflight.check(config, imagenet_reachable=lambda: pytest.fail("asked the network"))


def test_second_cli_run_on_a_locked_workdir_exits_2_naming_the_holder(copy_of):
    config, _ = copy_of
    with artifacts.WorkdirLock(config.workdir):
        result, seconds = _cli(f"--workdir={config.workdir}", "--mode=report",
                               "--dataset=affect_demo/tiny", f"--data_dir={config.data.data_dir}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"pid {os.getpid()}" in result.stderr


def test_tensorboard_events_for_training_and_evaluation(finished):
    import tensorflow as tf

    config, _ = finished
    root = pathlib.Path(config.workdir) / "tensorboard"
    tags = {}
    for events in root.rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                tags.setdefault(events.parent.name.split("-")[0], set()).add(value.tag)
    assert {"train/loss", "train/accuracy", "learning_rate/new_layers",
            "learning_rate/pretrained_layers"} <= tags["train"]
    assert {"test/global/accuracy", "test/ar+concat/accuracy",
            "test/region_hit_rate/ar"} <= tags["eval"]


def test_the_paper_augmentation_keeps_the_train_fingerprint_of_runs_made_before_the_setting():
    from affect_tf import workspace
    from affect_tf.config import TrainConfig, fingerprint

    # The default TrainConfig's fingerprint before augmentation / crop_area_min existed (the
    # run's seed 0 and the model's resize_size 256 were training fields then).
    def train_fingerprint(train):
        return fingerprint(workspace._train_settings(train, 0, 256))

    assert train_fingerprint(TrainConfig()) == "571a69fdacd015ee"
    # crop_area_min does nothing with the paper's views, so it moves nothing; random_area does.
    assert train_fingerprint(TrainConfig(crop_area_min=0.5)) == "571a69fdacd015ee"
    assert train_fingerprint(TrainConfig(augmentation="random_area")) != "571a69fdacd015ee"
