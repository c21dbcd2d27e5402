"""A run killed at any point and resumed ends with the bytes of an uninterrupted run.

The reference is one uninterrupted tiny demo run. Each test kills a run for real (SIGKILL from
inside a fresh process, at a chosen point: a training step between two checkpoints, the batch-norm
calibration, between the two prediction parts), resumes it through the command line as a user
would, and compares the classifier, the predictions and metrics.json byte for byte.
"""

import hashlib
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import pytest

from affect_tf import train as train_lib
from affect_tf.testing import cli_flags, tiny_config

# Runs the tiny job in a fresh process and SIGKILLs itself at KILL_AT: "step:N" (right after
# training step N, before its checkpoint), "calibration" (batch-norm statistics, after the last
# step's checkpoint), "predict:N" (when the CNN starts on its N-th evaluation part).
_KILLED_RUN = textwrap.dedent("""
    import os, signal, sys

    def main():
        from affect_tf import evaluate as evaluate_lib
        from affect_tf import stages
        from affect_tf import train as train_lib
        from affect_tf.testing import tiny_config

        root, kill_at = sys.argv[1], sys.argv[2]
        kind, _, number = kill_at.partition(":")

        def die():
            os.kill(os.getpid(), signal.SIGKILL)

        if kind == "step":
            make_step = train_lib.Trainer.step_function

            def step_function(self):
                step = make_step(self)

                def killed_after(*args):
                    result = step(*args)
                    if int(self.step.numpy()) + 1 == int(number):
                        die()
                    return result
                return killed_after
            train_lib.Trainer.step_function = step_function
        elif kind == "calibration":
            train_lib.recalibrate_batch_norm = lambda *args, **kwargs: die()
        elif kind == "predict":
            collect, calls = evaluate_lib.collect_predictions, []

            def collect_predictions(*args, **kwargs):
                calls.append(1)
                if len(calls) == int(number):
                    die()
                return collect(*args, **kwargs)
            evaluate_lib.collect_predictions = collect_predictions
        stages.run(tiny_config(root, proposal_commit_seconds=0.0))

    if __name__ == "__main__":  # The proposal workers import this file again.
        main()
""")


def _env():
    import affect_tf

    return dict(os.environ, PYTHONPATH=str(pathlib.Path(affect_tf.__file__).parents[1]),
                CUDA_VISIBLE_DEVICES="")


def _digest(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _outputs(workdir: pathlib.Path) -> dict[str, str]:
    """Hashes of what a finished run hands on: classifier, predictions, metrics."""
    train_dirs = list(workdir.glob("train-*"))
    predict_dirs = list(workdir.glob("predict-*"))
    assert len(train_dirs) == 1 and len(predict_dirs) == 1, (train_dirs, predict_dirs)
    return {
        "classifier": _digest(train_dirs[0] / train_lib.CLASSIFIER_FILE),
        "predictions_validation": _digest(predict_dirs[0] / "predictions_validation.npz"),
        "predictions_test": _digest(predict_dirs[0] / "predictions_test.npz"),
        "metrics": _digest(workdir / "metrics.json"),
    }


@pytest.fixture(scope="module")
def uninterrupted(finished):
    """The outputs of the shared finished tiny run (conftest.py), never interrupted."""
    config, _ = finished
    return _outputs(pathlib.Path(config.workdir))


def _kill(root: pathlib.Path, kill_at: str) -> None:
    script = root / "killed_run.py"
    script.write_text(_KILLED_RUN)
    result = subprocess.run([sys.executable, str(script), str(root), kill_at], env=_env(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]


def _resume_through_the_cli(root: pathlib.Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "affect_tf.main",
         *cli_flags(tiny_config(root, proposal_commit_seconds=0.0))],
        env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result


def _check_resume(root: pathlib.Path, kill_at: str, uninterrupted: dict) -> str:
    _kill(root, kill_at)
    result = _resume_through_the_cli(root)
    assert _outputs(root / "run") == uninterrupted
    return result.stderr


def test_a_kill_between_checkpoints_resumes_to_the_same_bytes(tmp_path, uninterrupted):
    # Killed after step 3 of 4: the checkpoint of step 2 is the last; step 3 is done again and
    # must see the same batch, the same augmentation and the same dropout masks.
    stderr = _check_resume(tmp_path, "step:3", uninterrupted)
    assert "Resumed from" in stderr and "at step 2" in stderr


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["step:1", "step:2", "step:4", "calibration", "predict:2"])
def test_a_kill_anywhere_resumes_to_the_same_bytes(tmp_path, uninterrupted, kill_at):
    _check_resume(tmp_path, kill_at, uninterrupted)


# Slow (about a minute): tests/test_stages.py moves a checkpoint that does not restore aside in
# the default run; this adds the killed run's resume to the same bytes.
@pytest.mark.slow
def test_a_damaged_checkpoint_is_set_aside_and_the_run_still_ends_with_the_same_bytes(
        tmp_path, uninterrupted):
    # A flipped byte in the only checkpoint (step 2) of a killed run: its checksum fails during
    # the restore, the files move to damaged/, and the run trains from step 0 in the same
    # process (a failed restore must leave nothing pending that reads the moved files: it did,
    # and the next save died with a NotFoundError).
    _kill(tmp_path, "step:3")
    data_file = next((tmp_path / "run").glob("train-*/checkpoints/ckpt-2.data-*"))
    data = bytearray(data_file.read_bytes())
    data[len(data) // 2] ^= 0x5A
    data_file.write_bytes(bytes(data))
    stderr = _resume_through_the_cli(tmp_path).stderr
    assert "does not restore" in stderr
    assert (data_file.parent.parent / "damaged" / data_file.name).exists()
    assert _outputs(tmp_path / "run") == uninterrupted
