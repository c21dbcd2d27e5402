"""The experiments that re-read a finished evaluation's predictions: sweeps and region quality.

``--mode=experiments`` runs them (:func:`affect_tf.stages.experiments_stage`); they need no CNN
pass, since the evaluation stored the whole image's and every candidate's probabilities:

* the alpha x beta sweep of AR + sum pooling (the paper's Fig. 6) and the K sweep of AR + sum,
  max and concatenation (Fig. 7), on the validation part (where a value would be chosen) and on
  the test part (the point at the run's own alpha, beta and K is the evaluation's own figure);
* where the test part has a ground truth of where the sentiment is, the precision and recall of
  the top-1 region by AR, objectness and Senti against it at every threshold (Section 4.6,
  Fig. 8), on one code path whatever the source (:mod:`affect_tf.experiments.ground_truth`):
  the dataset's stimuli maps (EmotionROI's ``stimuli_map``, which the stage reads from the
  dataset and hands in as ``stimuli_maps``), else the demo's face drawn as a map from the
  predictions' ``object_box``.

Every output is a file of the stage's directory: ``sweep_alpha_beta.csv`` / ``.png``,
``sweep_top_k.csv`` / ``.png``, ``region_quality.csv`` / ``.png`` and ``summary.json`` (what the
report quotes).
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterable

import numpy as np

from affect_tf import io as io_lib
from affect_tf.config import Config
from affect_tf.experiments import ground_truth, region_quality, sweeps

# Fig. 6's grid: alpha and beta from 0 to 1 in steps of 0.1 (the paper's chosen 0.6 and 0.3 on it).
GRID = tuple(round(0.1 * step, 1) for step in range(11))
# Fig. 7's Ks (the paper's chosen 8 among them), capped at the run's m.
TOP_KS = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 30, 40, 50)
# The side of the map the demo's face is drawn on for region quality: the demo's scenes are
# 256 x 256 (both configs), so the map is the drawn image's own pixel grid.
FACE_MAP_SIDE = 256


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


def _ground_truth(test: dict, stimuli_maps: Iterable[np.ndarray] | None
                  ) -> tuple[str, Iterable[np.ndarray]] | None:
    """The kind of ground truth (:data:`ground_truth.STIMULI_MAPS` or :data:`ground_truth.
    FACE_MAPS`) and its maps in the test part's order; None where there is none (or no image).
    The dataset's own maps come first: they are what the paper scores against."""
    if not len(test["label"]):
        return None
    if stimuli_maps is not None:
        return ground_truth.STIMULI_MAPS, stimuli_maps
    if "object_box" in test:
        return ground_truth.FACE_MAPS, (
            ground_truth.face_map(box, FACE_MAP_SIDE, FACE_MAP_SIDE)
            for box in np.asarray(test["object_box"], dtype=np.float64))
    return None


def run_all(directory: str | pathlib.Path, validation: dict, test: dict, config: Config,
            stimuli_maps: Iterable[np.ndarray] | None = None) -> tuple[list[str], dict]:
    """Runs every experiment on the stored predictions and writes its files into ``directory``.

    Args:
        directory: the stage's directory (exists).
        validation: the validation part's predictions (``predictions_validation.npz``: ``label``
            [N], ``global_probs`` [N, 2], ``candidate_probs`` [N, m, 2], ``objectness`` [N, m],
            ``num_valid`` [N], ``boxes`` [N, m, 4] normalized [y1, x1, y2, x2]).
        test: the test part's, likewise; with ``object_box`` [N, 4] (normalized [y1, x1, y2,
            x2]) where the dataset gives the object's box (the demo's face), region quality is
            measured against the face drawn as a map (:func:`ground_truth.face_map`) unless
            ``stimuli_maps`` is given.
        config: the run's settings (alpha, beta, K, the SVM's; the run's seed).
        stimuli_maps: the dataset's stimuli maps of the test images, in ``test``'s order: N
            uint8 [H_i, W_i] maps, each its image's size (:func:`ground_truth.aligned_map`); any
            iterable, read once (a generator keeps one decoded map at a time). None: the dataset
            has none.

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
    truth = _ground_truth(test, stimuli_maps)
    if truth is not None:
        kind, maps = truth
        quality = region_quality.top1_region_quality(test, maps, regions)
        sweeps.write_csv(_quality_rows(quality), directory / "region_quality.csv")
        region_quality.plot_precision_recall(quality, directory / "region_quality.png")
        outputs += ["region_quality.csv", "region_quality.png"]
        summary["region_quality"] = {
            "ground_truth": ground_truth.DESCRIPTIONS[kind], "ground_truth_kind": kind,
            "images": len(test["label"]),
            **{selection: {key: quality[selection][key] for key in
                           ("mean_precision", "mean_recall", "paper_precision", "paper_recall")}
               for selection in ("ar", "obj", "senti")}}
    io_lib.atomic_write_json(directory / "summary.json", summary)
    outputs.append("summary.json")
    return outputs, summary
