"""--mode=experiments on a finished tiny demo run: the sweeps and region quality re-read the
stored predictions, land in a verified stage directory and in the report."""

import csv
import json
import pathlib

import numpy as np

from affect_tf import stages
from affect_tf.experiments import runner
from affect_tf.testing import replace_config


def _experiments_dir(workdir) -> pathlib.Path:
    (directory,) = pathlib.Path(workdir).glob("experiments-*")
    return directory


def _rows(path: pathlib.Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_experiments_write_the_sweeps_region_quality_and_the_report(copy_of, monkeypatch):
    config, metrics = copy_of
    stages.run(replace_config(config, mode="experiments"))
    directory = _experiments_dir(config.workdir)
    for name in ("sweep_alpha_beta.csv", "sweep_alpha_beta.png", "sweep_top_k.csv",
                 "sweep_top_k.png", "region_quality.csv", "region_quality.png", "summary.json",
                 "manifest.json"):
        assert (directory / name).is_file(), name
    summary = json.loads((directory / "summary.json").read_text())
    results = metrics["results"]
    # The run's own point of each sweep is the evaluation's test figure.
    assert summary["own_alpha_beta"]["test_ar_sum"] == results["ar+sum"]["accuracy"]
    assert summary["own_top_k"]["test_ar_concat"] == results["ar+concat"]["accuracy"]
    alpha_beta = _rows(directory / "sweep_alpha_beta.csv")
    assert len(alpha_beta) == len(runner.GRID) ** 2  # The run's alpha 0.6 and beta 0.3 are on it.
    # K up to the run's m = 6 candidates.
    assert [int(row["top_k"]) for row in _rows(directory / "sweep_top_k.csv")] == [1, 2, 3, 4, 6]
    # The demo's face drawn as a map (the ellipse inscribed in its box, 255 inside): the same
    # ground truth at every threshold below 1, so each curve is flat there and the last
    # threshold judges nothing.
    assert summary["region_quality"]["ground_truth_kind"] == "face_map"
    quality = _rows(directory / "region_quality.csv")
    assert len(quality) == 256
    precision = np.array([float(row["ar_precision"]) for row in quality])
    assert np.all(np.isnan(precision[-1:])) and np.ptp(precision[:-1]) == 0
    assert 0 <= precision[0] <= 1
    report = (pathlib.Path(config.workdir) / "report.md").read_text()
    assert "## Experiments" in report and "Region quality" in report
    assert f"]({directory.name}/sweep_top_k.png)" in report

    # A rerun with the same settings reuses the verified stage.
    calls = []
    monkeypatch.setattr(runner, "run_all", lambda *args: calls.append(args) or ([], {}))
    stages.run(replace_config(config, mode="experiments"))
    assert not calls
