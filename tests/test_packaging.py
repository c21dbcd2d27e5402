"""Packaging: every builder and subpackage is installed, builders included, from any directory."""

import configparser
import pathlib
import subprocess
import sys
import zipfile


REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def listed_packages() -> set[str]:
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "setup.cfg")
    return {line.strip() for line in parser["options"]["packages"].splitlines() if line.strip()}


def test_setup_cfg_lists_every_package_and_builder():
    expected = {"affect_tf", "affect_tf.datasets"}
    expected |= {f"affect_tf.{p.parent.name}" for p in (REPO_ROOT / "affect_tf").glob("*/__init__.py")}
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
    assert "affect_tf/datasets/artphoto/README.md" in names
    assert any(n.startswith("affect_tf/datasets/twitter1/dummy_data_agg/") for n in names)
    assert not any(n.startswith("datasets/") for n in names)  # No top-level `datasets` package.
