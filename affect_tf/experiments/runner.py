"""The experiments that re-read a finished evaluation's predictions: sweeps and region quality.

``--mode=experiments`` runs them (:func:`affect_tf.stages.experiments_stage`); they need no CNN
pass, since the evaluation stored the whole image's and every candidate's probabilities:

* the alpha x beta sweep of AR + sum pooling (the paper's Fig. 6) and the K sweep of AR + sum,
  max and concatenation (Fig. 7), on the validation part (where a value would be chosen) and on
  the test part (the point at the run's own alpha, beta and K is the evaluation's own figure);
* where the test part has a ground-truth box of the sentiment-bearing object (the demo's face),
  the precision and recall of the top-1 region by AR, objectness and Senti against it at every
  threshold (Section 4.6, Fig. 8): the demo's box stands for EmotionROI's stimuli map, whose maps
  need the dataset itself (not yet read by this stage).

Every output is a file of the stage's directory: ``sweep_alpha_beta.csv`` / ``.png``,
``sweep_top_k.csv`` / ``.png``, ``region_quality.csv`` / ``.png`` and ``summary.json`` (what the
report quotes).
"""

from __future__ import annotations

import pathlib

import numpy as np

from affect_tf import io as io_lib
from affect_tf.config import Config
from affect_tf.experiments import region_quality, sweeps

# Fig. 6's grid: alpha and beta from 0 to 1 in steps of 0.1 (the paper's chosen 0.6 and 0.3 on it).
GRID = tuple(round(0.1 * step, 1) for step in range(11))
# Fig. 7's Ks (the paper's chosen 8 among them), capped at the run's m.
TOP_KS = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 30, 40, 50)
# The side of the map a normalized ground-truth box is drawn on for region quality: precision
# and recall are pixel shares, so the side only sets their rounding (1/256 of a side).
BOX_MAP_SIDE = 256


def _with_own(values, own: float) -> list[float]:
    """``values`` and the run's own value, sorted, once each (its point is the evaluation's)."""
    return sorted({float(value) for value in values} | {float(own)})


def top_ks(num_candidates: int, own: int) -> list[int]:
    """The Ks of the K sweep: :data:`TOP_KS` up to m, and the run's own K."""
    return sorted({k for k in TOP_KS if k <= num_candidates} | {own})


def _quality_rows(result: dict) -> list[dict]:
    """One row per threshold: mean precision and recall of each ranking's top-1 region."""
    rows = []
    for index, threshold in enumerate(result["thresholds"]):
        row = {"threshold": float(threshold)}
        for selection in ("ar", "obj", "senti"):
            row[f"{selection}_precision"] = float(result[selection]["precision"][index])
            row[f"{selection}_recall"] = float(result[selection]["recall"][index])
        rows.append(row)
    return rows


def _best(rows: list[dict], key: str, *names: str) -> dict | None:
    """The row with the highest ``key`` (the first such row): where a value would be chosen;
    None when no row has it (NaN: a validation part too small to cross-validate)."""
    defined = [row for row in rows if np.isfinite(row[key])]
    if not defined:
        return None
    best = max(defined, key=lambda row: row[key])
    return {name: best[name] for name in (*names, key)}


def run_all(directory: str | pathlib.Path, validation: dict, test: dict,
            config: Config) -> tuple[list[str], dict]:
    """Runs every experiment on the stored predictions and writes its files into ``directory``.

    Args:
        directory: the stage's directory (exists).
        validation: the validation part's predictions (``predictions_validation.npz``: ``label``
            [N], ``global_probs`` [N, 2], ``candidate_probs`` [N, m, 2], ``objectness`` [N, m],
            ``num_valid`` [N], ``boxes`` [N, m, 4] normalized [y1, x1, y2, x2]).
        test: the test part's, likewise; with ``object_box`` [N, 4] (normalized [y1, x1, y2,
            x2]) where the dataset gives the object's box, region quality is measured on it.
        config: the run's settings (alpha, beta, K, the SVM's; the run's seed).

    Returns:
        The files written (names relative to ``directory``) and the summary the report quotes
        (also written as ``summary.json``).
    """
    directory = pathlib.Path(directory)
    regions, fusion = config.regions, config.fusion
    alpha_beta = sweeps.alpha_beta_sweep(validation, test, regions, fusion,
                                         _with_own(GRID, regions.alpha),
                                         _with_own(GRID, fusion.beta))
    num_candidates = int(np.asarray(test["candidate_probs"]).shape[1])
    top_k = sweeps.top_k_sweep(validation, test, regions, fusion,
                               top_ks(num_candidates, regions.top_k), config.seed)
    outputs = []
    for name, rows in (("sweep_alpha_beta", alpha_beta), ("sweep_top_k", top_k)):
        sweeps.write_csv(rows, directory / f"{name}.csv")
        outputs.append(f"{name}.csv")
    sweeps.plot_alpha_beta(alpha_beta, directory / "sweep_alpha_beta.png")
    sweeps.plot_top_k(top_k, directory / "sweep_top_k.png")
    outputs += ["sweep_alpha_beta.png", "sweep_top_k.png"]
    own = {"alpha": regions.alpha, "beta": fusion.beta, "top_k": regions.top_k}
    summary = {
        "own": own,
        "best_alpha_beta_on_validation": _best(alpha_beta, "validation_ar_sum", "alpha", "beta"),
        "best_top_k_on_validation": _best(top_k, "validation_ar_concat_cv", "top_k"),
        "own_alpha_beta": next(row for row in alpha_beta
                               if row["alpha"] == regions.alpha and row["beta"] == fusion.beta),
        "own_top_k": next(row for row in top_k if row["top_k"] == regions.top_k),
    }
    if "object_box" in test and len(test["label"]):
        maps = np.stack([region_quality.box_map(box, BOX_MAP_SIDE, BOX_MAP_SIDE)
                         for box in np.asarray(test["object_box"], dtype=np.float64)])
        quality = region_quality.top1_region_quality(test, maps, regions)
        sweeps.write_csv(_quality_rows(quality), directory / "region_quality.csv")
        region_quality.plot_precision_recall(quality, directory / "region_quality.png")
        outputs += ["region_quality.csv", "region_quality.png"]
        summary["region_quality"] = {
            "ground_truth": "the object's box",
            **{selection: {key: quality[selection][key] for key in
                           ("mean_precision", "mean_recall", "paper_precision", "paper_recall")}
               for selection in ("ar", "obj", "senti")}}
    io_lib.atomic_write_json(directory / "summary.json", summary)
    outputs.append("summary.json")
    return outputs, summary
