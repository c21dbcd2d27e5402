"""The whole job on the tiny demo (every stage, reruns skipped), and the command line."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import pytest

from affect_tf import config as config_lib

from affect_tf.testing import REPO_ROOT, replace_config, tiny_config


def test_whole_job_on_the_tiny_demo_then_reruns_skip_finished_stages(tmp_path):
    from affect_tf import stages

    config = tiny_config(tmp_path)
    run = stages.run(config)
    workdir = pathlib.Path(config.workdir)
    metrics = json.loads((workdir / "metrics.json").read_text())
    rows = metrics["results"]
    assert set(rows) == {"global"} | {f"{s}+{f}" for s in ("ar", "obj", "senti")
                                      for f in ("max", "sum", "concat")}
    for row in rows.values():
        assert 0.0 <= row["accuracy"] <= 1.0 and row["count"] == metrics["counts"]["test"]
    assert set(metrics["region_hit_rate"]) == {"ar", "obj", "senti", "best_candidate"}
    report = (workdir / "report.md").read_text()
    assert "ar+concat (K=2)" in report and "top-1 region" in report.lower()
    assert set(metrics["results_k1"]) == set(rows) and "ar+concat (K=1)" in report
    assert (workdir / "figures" / "top_regions.png").stat().st_size > 1000
    assert "dashed white: the ground-truth box" in report  # the demo stores its object's box
    assert "Majority class alone (always " in report
    # A dataset without ground-truth boxes: the same evaluation without them; the figure's
    # legend then says so instead of naming a ground truth. The report reads only what the
    # evaluation wrote (no dataset, no TensorFlow).
    import shutil

    import numpy as np

    from affect_tf import report as report_lib
    without = tmp_path / "no_boxes"
    without.mkdir()
    shutil.copy(run.eval_dir / "metrics.json", without / "metrics.json")
    with np.load(run.eval_dir / report_lib.FIGURE_FILE) as stored:
        np.savez(without / report_lib.FIGURE_FILE,
                 **{key: stored[key] for key in stored.files if key != "boxes_truth"})
    report_lib.write_report(without, without, run.predict_dir, config)
    legend = (without / "report.md").read_text()
    assert "ground-truth box." not in legend and "has no ground-truth boxes" in legend
    assert (workdir / "classifier.weights.h5").is_file()
    assert (run.eval_dir / "svm_ar" / "svm.npz").is_file()

    # Same settings: every stage is skipped and the outputs are untouched.
    checkpoint_files = sorted((run.train_dir / "checkpoints").iterdir())
    metrics_before = (run.eval_dir / "metrics.json").stat().st_mtime_ns
    stages.run(config)
    assert sorted((run.train_dir / "checkpoints").iterdir()) == checkpoint_files
    assert (run.eval_dir / "metrics.json").stat().st_mtime_ns == metrics_before

    # A region setting changes only the evaluation: same training directory, new eval directory.
    changed = dataclasses.replace(config, regions=dataclasses.replace(config.regions, top_k=1))
    rerun = stages.run(dataclasses.replace(changed, mode="evaluate"))
    assert rerun.train_dir == run.train_dir and rerun.eval_dir != run.eval_dir
    assert json.loads((rerun.eval_dir / "metrics.json").read_text())["top_k"] == 1


def test_training_resumes_from_the_last_checkpoint(tmp_path, caplog):
    import logging

    from affect_tf import stages

    config = tiny_config(tmp_path)
    stages.run(dataclasses.replace(config, mode="prepare"))
    short = dataclasses.replace(config, mode="train",
                                train=dataclasses.replace(config.train, steps=2))
    stages.run(short)
    longer = dataclasses.replace(short, train=dataclasses.replace(config.train, steps=4))
    from affect_tf import train as train_lib

    run = stages.Run(longer)
    # The longer run has another fingerprint; seed its directory with the short run's checkpoint
    # to simulate a run killed at step 2.
    import shutil

    shutil.copytree(stages.Run(short).train_dir / "checkpoints", run.train_dir / "checkpoints")
    trainer = train_lib.Trainer(longer.model, longer.train, str(run.train_dir))
    assert trainer.restore() == 2
    caplog.clear()
    with caplog.at_level(logging.INFO):
        stages.run(longer)
    assert caplog.text.count("Resumed from") == 1
    steps = sorted(int(p.name.split("-")[1].split(".")[0])
                   for p in (run.train_dir / "checkpoints").glob("ckpt-*.index"))
    assert steps == [4], "a finished run keeps its last checkpoint only"


def _cli(*args, cwd=REPO_ROOT, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, "-m", "affect_tf.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_prepares_a_dataset_that_tfds_loads_in_a_fresh_process(tmp_path):
    result = _cli("--mode=prepare", "--dataset=artphoto",
                  f"--manual_dir={REPO_ROOT / 'datasets/artphoto/dummy_data'}",
                  f"--data_dir={tmp_path / 'tfds'}", f"--workdir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stderr[-3000:]
    check = subprocess.run(
        [sys.executable, "-c",
         "import tensorflow_datasets as tfds, sys;"
         f"ds = tfds.load('artphoto', data_dir={str(tmp_path / 'tfds')!r}, split='train');"
         "print(sum(1 for _ in ds))"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert check.returncode == 0, check.stderr[-3000:]
    assert int(check.stdout.strip().splitlines()[-1]) > 0
    # A k-fold set: each fold's splits in its folder, written by prepare.
    folds = sorted((tmp_path / "run").glob("fold-*/splits-*.json"))
    assert len(folds) == 5
    assert all(json.loads(path.read_text())["protocol"] == "kfold" for path in folds)


def test_cli_rejects_bad_flags_with_a_clear_message(tmp_path):
    result = _cli("--top_k=60", "--num_candidates=50", f"--workdir={tmp_path}")
    assert result.returncode == 2
    assert "top_k=60, num_candidates=50" in result.stderr
    result = _cli("--fusion=avg", f"--workdir={tmp_path}")
    assert result.returncode != 0 and "fusion" in result.stderr


def test_cli_names_the_alternatives_when_a_weights_file_is_missing(tmp_path):
    from affect_tf import model as model_lib

    with pytest.raises(FileNotFoundError, match="missing.weights.h5"):
        model_lib.build_classifier(config_lib.ModelConfig(
            weights=str(tmp_path / "missing.weights.h5"), head="gap", image_size=32))


def test_proposal_stage_on_beam_and_on_local_workers_give_the_same_cache(tmp_path):
    from affect_tf import stages

    local = tiny_config(tmp_path / "local", num_workers=2, proposal_scope="all")
    local = dataclasses.replace(local, data=dataclasses.replace(
        local.data, data_dir=str(tmp_path / "tfds")))
    stages.run(dataclasses.replace(local, mode="prepare"))
    stages.run(dataclasses.replace(local, mode="proposals"))
    beam = replace_config(local, workdir=str(tmp_path / "beam"), proposal_runner="beam")
    stages.run(dataclasses.replace(beam, mode="proposals"))
    local_arrays = stages.proposal_cache(stages.Run(local)).load()
    beam_arrays = stages.proposal_cache(stages.Run(beam)).load()
    assert len(local_arrays.filenames) == 48  # Every scene of the tiny config.
    assert list(local_arrays.filenames) == list(beam_arrays.filenames)
    import numpy as np

    np.testing.assert_allclose(local_arrays.boxes, beam_arrays.boxes)
    np.testing.assert_array_equal(local_arrays.num_valid, beam_arrays.num_valid)
