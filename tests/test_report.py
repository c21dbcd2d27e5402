"""Undefined metrics are said, never hidden: null in strict JSON, counted in the folds' means.

A class absent from a fold's test part leaves its recall undefined. The folds' summary counts
the folds each mean covers and the report says "(n of N folds)"; every JSON file the project
writes is strict (no NaN or Infinity tokens), with null for what could not be computed.
"""

import json
import math

import numpy as np
import pytest

from affect_tf import io as io_lib
from affect_tf import metrics as metrics_lib
from affect_tf import report as report_lib


def _strict_loads(text: str):
    """``json.loads`` that refuses NaN / Infinity, as strict parsers (JavaScript, jq) do."""

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def _row(accuracy, recall_positive):
    return {"accuracy": accuracy, "balanced_accuracy": accuracy, "recall_negative": accuracy,
            "recall_positive": recall_positive, "count": 10}


def _fold(accuracy, recall_positive):
    row = _row(accuracy, recall_positive)
    return {"dataset": "artphoto", "top_k": 8, "reported": "ar+concat", "fold": 0,
            "results": {"global": row, "ar+concat": row},
            "results_k1": {"global": row, "ar+concat": row}}


def test_the_json_writer_writes_null_for_nan_and_infinity(tmp_path):
    payload = {"nan": float("nan"), "inf": [float("inf"), -math.inf, 1.5],
               "numpy": {"f32": np.float32("nan"), "f64": np.float64(0.25), "int": np.int64(3)},
               "tuple": (float("nan"), "text"), "fine": 0.5}
    path = io_lib.atomic_write_json(tmp_path / "metrics.json", payload)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    loaded = _strict_loads(text)
    assert loaded == {"nan": None, "inf": [None, None, 1.5],
                      "numpy": {"f32": None, "f64": 0.25, "int": 3},
                      "tuple": [None, "text"], "fine": 0.5}


def test_a_missing_class_gives_nan_in_memory_null_on_disk_and_a_note(tmp_path):
    metrics = metrics_lib.classification_metrics([1, 1, 1], [1, 0, 1])
    assert math.isnan(metrics["recall_negative"])
    assert metrics["balanced_accuracy"] == pytest.approx(2 / 3)
    assert "no negative image" in metrics["note"] and "recall_negative" in metrics["note"]
    written = _strict_loads(io_lib.atomic_write_json(tmp_path / "m.json", metrics).read_text())
    assert written["recall_negative"] is None and written["recall_positive"] == pytest.approx(2 / 3)
    assert "note" not in metrics_lib.classification_metrics([0, 1], [0, 1])


@pytest.mark.parametrize("missing", [float("nan"), None], ids=["nan in memory", "null read back"])
def test_the_folds_summary_counts_the_folds_each_mean_covers(missing):
    summary = report_lib.summarize_folds(
        {0: _fold(0.8, 0.6), 1: _fold(0.7, missing), 2: _fold(0.6, 0.4)})
    assert summary["num_folds"] == 3
    assert summary["n"]["ar+concat"] == {"accuracy": 3, "balanced_accuracy": 3,
                                         "recall_negative": 3, "recall_positive": 2}
    assert summary["mean"]["ar+concat"]["recall_positive"] == pytest.approx(0.5)
    assert summary["sd"]["ar+concat"]["recall_positive"] == pytest.approx(
        np.std([0.6, 0.4], ddof=1))
    assert summary["n_k1"]["ar+concat"]["recall_positive"] == 2
    (line,) = [line for line in report_lib.fold_table(summary) if line.startswith("| ar+concat")]
    cells = [cell.strip() for cell in line.split("|")[1:-1]]
    assert cells[1] == "70.00 ± 10.00", "a mean over every fold carries no count"
    assert cells[4] == "50.00 ± 14.14 (2 of 3 folds)"
    assert cells[5:8] == ["80.00", "70.00", "60.00"]
    assert "recall_positive" in " ".join(report_lib._partial_means_note(summary))


def test_a_metric_no_fold_defines_shows_as_missing_and_is_null_in_the_summary(tmp_path):
    summary = report_lib.summarize_folds({0: _fold(0.8, None), 1: _fold(0.6, None)})
    assert summary["n"]["global"]["recall_positive"] == 0
    (line,) = [line for line in report_lib.fold_table(summary) if line.startswith("| whole")]
    assert "| - (0 of 2 folds) |" in line and "0.00 ± 0.00" not in line
    written = _strict_loads(io_lib.atomic_write_json(tmp_path / "s.json", summary).read_text())
    assert written["mean"]["global"]["recall_positive"] is None
    assert written["sd"]["global"]["recall_positive"] is None


def test_the_fold_report_says_how_many_folds_a_mean_covers(tmp_path):
    from affect_tf import config as config_lib

    fold_dirs = {}
    for fold, recall in enumerate((0.6, None, 0.4)):
        directory = tmp_path / f"fold-{fold}"
        directory.mkdir()
        io_lib.atomic_write_json(directory / "metrics.json",
                                 _fold(0.8 - fold / 10, float("nan") if recall is None else recall))
        fold_dirs[fold] = directory
    path = report_lib.write_fold_report(tmp_path, fold_dirs, config_lib.Config(),
                                        protocol="kfold")
    report = path.read_text()
    assert "(2 of 3 folds)" in report and "Some folds could not compute recall_positive" in report
    assert "FI, then on this set" in report, "the caption says what the paper's numbers are"
    summary = _strict_loads((tmp_path / "metrics.json").read_text())
    assert summary["folds"]["1"]["results"]["global"]["recall_positive"] is None
    assert summary["n"]["global"]["recall_positive"] == 2


def test_a_single_runs_report_explains_an_undefined_recall():
    row = metrics_lib.classification_metrics([1, 1, 1], [1, 0, 1])
    metrics = {"dataset": "affect_demo", "top_k": 4, "results": {"global": row}}
    (line,) = [line for line in report_lib.results_table(metrics) if line.startswith("| whole")]
    assert "| - |" in line, "the undefined recall is a dash, not a number"
    assert "no negative image" in " ".join(report_lib._undefined_note(metrics))
