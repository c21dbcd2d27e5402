"""Packaging: every builder and subpackage is installed, and TFDS's own command line builds them."""

import configparser
import os
import pathlib
import subprocess
import sys
import zipfile

import tensorflow_datasets as tfds

from affect_tf.testing import REPO_ROOT


def listed_packages() -> set[str]:
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "setup.cfg")
    return {line.strip() for line in parser["options"]["packages"].splitlines() if line.strip()}


def test_setup_cfg_lists_every_package_and_builder():
    expected = {"affect_tf", "affect_tf.datasets"}
    expected |= {f"affect_tf.{p.parent.name}"
                 for p in (REPO_ROOT / "affect_tf").glob("*/__init__.py")}
    expected |= {f"affect_tf.datasets.{p.name}" for p in (REPO_ROOT / "datasets").iterdir()
                 if (p / f"{p.name}_dataset_builder.py").is_file()}
    assert listed_packages() == expected


def test_wheel_holds_the_builders_and_their_dummy_data(tmp_path):
    # --no-build-isolation: the build uses the installed setuptools, so nothing is downloaded.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(REPO_ROOT)], check=True, timeout=600)
    wheel = next(tmp_path.glob("affect_tf-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "affect_tf/datasets/twitter1/twitter1_dataset_builder.py" in names
    assert "affect_tf/datasets/builder_utils.py" in names
    assert "affect_tf/datasets/affect_demo/scenes.py" in names
    assert "affect_tf/datasets/artphoto/README.md" in names
    assert any(n.startswith("affect_tf/datasets/twitter1/dummy_data_agg/") for n in names)
    assert not any(n.startswith("datasets/") for n in names)  # No top-level `datasets` package.


def test_tfds_build_command_line(tmp_path):
    # The README's command, run from the checkout: `tfds build datasets/<name> --manual_dir=...`.
    # PYTHONPATH puts this checkout's affect_tf first, as `python -m pytest` from the root does.
    script = pathlib.Path(sys.executable).with_name("tfds")
    command = [str(script)] if script.is_file() else [
        sys.executable, "-m", "tensorflow_datasets.scripts.cli.main"]
    command += ["build", "datasets/twitter2", "--manual_dir=datasets/twitter2/dummy_data",
                f"--data_dir={tmp_path}"]
    python_path = [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(filter(None, python_path)))
    run = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, (
        f"{' '.join(command)} failed (the TFDS command line needs `pip install .[tfds-cli]`):\n"
        + run.stderr[-3000:])
    # Read back from the files alone, without the builder code.
    builder = tfds.builder_from_directory(str(tmp_path / "twitter2" / "1.0.0"))
    examples = list(tfds.as_numpy(builder.as_dataset(split="train")))
    assert len(examples) == 7
    assert {int(example["fold"]) for example in examples} == {1, 2, 3, 4, 5}
    assert builder.info.features["label"].names == ["negative", "positive"]
