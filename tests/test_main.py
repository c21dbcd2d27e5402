"""The command line: every failure a user can fix ends in one line naming the file or setting and
the fix, exit 2, no traceback; what can be checked before TensorFlow loads is.

The fast cases need no data; the others start from a copy of the shared finished tiny run
(``finished``: conftest.py) and its prepared dataset.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

from affect_tf import artifacts
from affect_tf import train as train_lib
from affect_tf.testing import REPO_ROOT, cli_flags, replace_config, run_cli, tiny_config

_TRACEBACK = "Traceback"


def _assert_refused(result, *fragments):
    assert result.returncode == 2, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr[-3000:]
    assert _TRACEBACK not in result.stderr, result.stderr[-3000:]


def _flags(config, **overrides):
    return cli_flags(replace_config(config, **overrides))


# ---- before TensorFlow loads -------------------------------------------------------------------

@pytest.fixture
def no_tensorflow(tmp_path):
    """A PYTHONPATH entry whose ``tensorflow`` fails to import: a run that needs it crashes."""
    fake = tmp_path / "no_tensorflow" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('TensorFlow was imported')\n")
    return str(fake.parent)


@pytest.mark.parametrize("args, fix", [
    (["--dataset=affect_demo/nosuchconfig"], "use one of affect_demo/default, affect_demo/tiny"),
    (["--dataset=artphoto/sub"], "artphoto alone: it has a single config"),
    (["--data_dir={tmp}/a_file"], "--data_dir must be a directory"),
    (["--dataset=artphoto", "--manual_dir={tmp}/a_file"], "--manual_dir must be a directory"),
    (["--split_seed=-1"], "split_seed must lie in [0, 4294967295]"),
    (["--seed=-3"], "seed must lie in [0, 4294967295]"),
])
def test_settings_refused_before_tensorflow_loads(tmp_path, no_tensorflow, args, fix):
    (tmp_path / "a_file").write_text("not a directory")
    given = [arg.format(tmp=tmp_path) for arg in args]
    if not any(arg.startswith("--data_dir=") for arg in given):
        given.append(f"--data_dir={tmp_path}/tfds")
    result, _ = run_cli(*given, f"--workdir={tmp_path}/run", "--weights=none", "--head=gap",
                        python_path=(no_tensorflow,))
    _assert_refused(result, fix)


def test_a_locked_workdir_is_refused_before_tensorflow_loads(copy_of, no_tensorflow):
    config, _ = copy_of
    with artifacts.WorkdirLock(config.workdir):
        result, _ = run_cli(*_flags(config, mode="report"), python_path=(no_tensorflow,))
    _assert_refused(result, f"pid {os.getpid()}", "in use by another run")


def test_more_folds_than_images_are_refused_before_tensorflow_loads(copy_of, no_tensorflow):
    config, _ = copy_of
    result, _ = run_cli(*_flags(config, data={"protocol": "kfold", "num_folds": 60}),
                        python_path=(no_tensorflow,))
    _assert_refused(result, "--num_folds=60 is more than the 48 images")


def test_export_to_an_existing_version_is_refused_before_tensorflow_loads(copy_of, no_tensorflow):
    config, _ = copy_of
    (pathlib.Path(config.workdir) / "export" / "1").mkdir(parents=True)
    result, _ = run_cli(*_flags(config, mode="export", export_version=1),
                        python_path=(no_tensorflow,))
    _assert_refused(result, "export/1 exists", "--export_version")


# ---- once the data is read -----------------------------------------------------------------------

def test_a_fold_without_test_images_stops_before_training(copy_of, tmp_path):
    config, _ = copy_of
    # 24 images per class in 30 stratified folds: fold 25 gets none.
    result, _ = run_cli(*_flags(config, workdir=str(tmp_path / "folds"),
                                data={"protocol": "kfold", "num_folds": 30, "fold": 25}))
    _assert_refused(result, "The test part of fold 25", "--num_folds")
    assert not list((tmp_path / "folds").rglob("train-*")), "nothing was trained"


def test_a_set_so_small_a_part_has_one_class_stops_before_training(copy_of, tmp_path):
    config, _ = copy_of
    # One image per part: the classifier and the SVM would each see one class.
    result, _ = run_cli(*_flags(config, workdir=str(tmp_path / "small"),
                                data={"max_examples": 1}))
    _assert_refused(result, "part of", "holds one class only", "--validation_fraction")
    assert not list((tmp_path / "small").rglob("train-*"))


def test_evaluate_on_a_fresh_workdir_says_to_train_first(copy_of, tmp_path):
    config, _ = copy_of
    result, _ = run_cli(*_flags(config, workdir=str(tmp_path / "fresh"), mode="evaluate"))
    _assert_refused(result, "No finished training", "--mode=train")


def test_experiments_without_the_predictions_say_to_evaluate_first(copy_of):
    config, _ = copy_of
    # Ten crops make other whole-image predictions: none are stored with that setting yet.
    result, _ = run_cli(*_flags(config, mode="experiments", ten_crop=True))
    _assert_refused(result, "No predictions with these settings", "--mode=evaluate first")


@pytest.mark.parametrize("mode", ["report", "export"])
def test_a_mode_whose_evaluation_has_not_run_says_to_evaluate_first(copy_of, mode):
    config, _ = copy_of
    # Trained and evaluated at K = 2; at K = 1 there is no evaluation to report or serve yet.
    result, _ = run_cli(*_flags(config, mode=mode, regions={"top_k": 1}))
    _assert_refused(result, "No evaluation with these settings", "--mode=evaluate first")


def test_a_damaged_train_manifest_under_evaluate_names_the_file_and_the_fix(copy_of):
    config, _ = copy_of
    manifest = next(pathlib.Path(config.workdir).glob("train-*/manifest.json"))
    manifest.write_text('{"stage": "train", "outputs": [1, 2]')
    result, _ = run_cli(*_flags(config, mode="evaluate"))
    _assert_refused(result, str(manifest), "--mode=train")


def test_an_hdf5_file_that_holds_no_weights_is_named(copy_of, tmp_path):
    config, _ = copy_of
    import h5py  # Keras' own dependency.

    fake = tmp_path / "not_weights.h5"
    with h5py.File(fake, "w") as handle:
        handle.create_dataset("something", data=[1, 2, 3])
    result, _ = run_cli(*_flags(config, mode="train", model={"weights": str(fake)}))
    _assert_refused(result, f"--weights file {fake} is not a weights file")


def test_a_flipped_byte_in_a_tfrecord_names_the_file(finished, tmp_path):
    config, _ = finished
    data_dir = tmp_path / "tfds"
    shutil.copytree(config.data.data_dir, data_dir)
    record = next(data_dir.rglob("*.tfrecord*"))
    data = bytearray(record.read_bytes())
    data[len(data) // 2] ^= 0x5A
    record.write_bytes(bytes(data))
    result, _ = run_cli(*_flags(config, workdir=str(tmp_path / "run"),
                                data={"data_dir": str(data_dir)}))
    _assert_refused(result, str(record), "fails its checksum", "--mode=prepare")


def test_a_stage_directory_the_run_cannot_create_is_named(copy_of):
    from affect_tf import stages

    config, _ = copy_of
    changed = replace_config(config, mode="evaluate", model={"region_context": 4})
    # As root, permission bits do not stop a write: a file where the stage directory must go
    # fails the same way (the run cannot create it).
    blocked = stages.Run(changed).predict_dir
    blocked.write_text("in the way")
    result, _ = run_cli(*cli_flags(changed))
    _assert_refused(result, f"Cannot use {blocked}", "--workdir")


def test_a_finished_run_asked_again_verifies_skips_and_exits_0(copy_of):
    config, _ = copy_of
    result, _ = run_cli(*cli_flags(config))
    assert result.returncode == 0, result.stderr[-3000:]
    assert train_lib.CLASSIFIER_FILE in os.listdir(config.workdir)


def test_two_runs_preparing_one_data_dir_take_turns(tmp_path):
    from affect_tf.data import registry

    config = tiny_config(tmp_path, mode="prepare")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), CUDA_VISIBLE_DEVICES="")
    log = tmp_path / "second.log"
    with registry.prepare_lock(config.data):
        # While this process prepares (holds the lock), a second run must wait, not fail.
        with open(log, "w") as handle:
            second = subprocess.Popen(
                [sys.executable, "-m", "affect_tf.main", *cli_flags(config)], cwd=REPO_ROOT,
                env=env, stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while "waiting for it to finish" not in log.read_text():
            assert second.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
    assert second.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert _TRACEBACK not in log.read_text()
    assert list(pathlib.Path(config.data.data_dir).rglob("dataset_info.json"))
