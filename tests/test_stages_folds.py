"""The whole protocol of a k-fold set from one command: every fold in its folder, resumable
between folds, and the folds' mean and sd in the root metrics.json and report."""

import json
import pathlib

import numpy as np
import pytest

from affect_tf import train as train_lib
from affect_tf.testing import tiny_config


def _kfold(tmp_path, fold=-1):
    # The tiny demo run as a 3-fold set (the small sets' protocol, with fewer folds for speed).
    return tiny_config(tmp_path, data={"protocol": "kfold", "num_folds": 3, "fold": fold})


def test_every_fold_runs_resumes_between_folds_and_is_summarized(tmp_path, monkeypatch):
    from affect_tf import stages

    config = _kfold(tmp_path)
    calls = []
    original_fit = train_lib.Trainer.fit

    def fit_then_die_in_fold_1(trainer, *args, **kwargs):
        calls.append(trainer.directory.parent.name)
        if trainer.directory.parent.name == "fold-1" and len(calls) == 2:
            raise KeyboardInterrupt("killed between folds")
        return original_fit(trainer, *args, **kwargs)

    monkeypatch.setattr(train_lib.Trainer, "fit", fit_then_die_in_fold_1)
    with pytest.raises(KeyboardInterrupt):
        stages.run(config)
    stages.run(config)
    assert calls == ["fold-0", "fold-1", "fold-1", "fold-2"], "fold 0 is not trained again"

    workdir = pathlib.Path(config.workdir)
    summary = json.loads((workdir / "metrics.json").read_text())
    assert sorted(summary["folds"]) == ["0", "1", "2"]
    accuracies = [summary["folds"][fold]["results"]["ar+concat"]["accuracy"] for fold in "012"]
    assert summary["mean"]["ar+concat"]["accuracy"] == pytest.approx(np.mean(accuracies))
    assert summary["sd"]["ar+concat"]["accuracy"] == pytest.approx(np.std(accuracies, ddof=1))
    tests = [set(json.loads(next((workdir / f"fold-{f}").glob("splits-*.json")).read_text())
                 ["test"]) for f in range(3)]
    assert not (tests[0] & tests[1]) and not (tests[1] & tests[2])
    assert len(tests[0] | tests[1] | tests[2]) == 48, "every image is a test image once"
    report = (workdir / "report.md").read_text()
    assert "3 folds" in report and "±" in report
    # The paper's K = 1 rows come from the same predictions, summarized the same way.
    assert set(summary["mean_k1"]) >= {"ar+concat", "obj+concat", "senti+concat", "ar+sum"}
    assert "ar+concat (K=1)" in report
    # The proposals were computed once, for every image, and shared by the folds.
    assert len(list((workdir / "proposals").iterdir())) == 1
    assert not list(workdir.glob("fold-*/proposals"))


def test_one_fold_alone_is_never_set_beside_the_papers_mean(tmp_path):
    from affect_tf import stages

    config = _kfold(tmp_path, fold=2)
    stages.run(config)
    fold_dir = pathlib.Path(config.workdir) / "fold-2"
    assert json.loads((fold_dir / "metrics.json").read_text())["fold"] == 2
    assert not (pathlib.Path(config.workdir) / "fold-0").exists()
