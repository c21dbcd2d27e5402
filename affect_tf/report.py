"""The markdown report of an evaluation, beside the paper's numbers where they exist."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from affect_tf import baselines as baselines_lib
from affect_tf import data as data_lib
from affect_tf import evaluate as evaluate_lib
from affect_tf import io as io_lib
from affect_tf import visualize
from affect_tf.config import LABEL_NAMES, Config

# Binary accuracy (%) reported by the paper (Tables 2 and 3), by dataset and row. The baseline
# row is Table 2's "VGGNet (ImageNet features)"; PAPER.md quotes no small-set number for it.
PAPER_ACCURACY = {
    "fi": {"fine-tuned VGG16": 83.05, "ar+concat (K=1)": 84.83, "ar+sum (K=1)": 84.50,
           "ar+max (K=1)": 84.21, "obj+concat (K=1)": 83.85, "senti+concat (K=1)": 84.07,
           "ar+concat (K=8)": 86.35, baselines_lib.BASELINE_ROW: 70.64},
    "flickr_vso": {"fine-tuned VGG16": 70.12, "ar+concat (K=1)": 70.51, "ar+sum (K=1)": 70.46,
                   "ar+max (K=1)": 70.49, "obj+concat (K=1)": 70.05, "senti+concat (K=1)": 70.10,
                   "ar+concat (K=8)": 71.13, baselines_lib.BASELINE_ROW: 61.28},
}
_TABLE3 = {  # fine-tuned VGG16, AR+concat K=1, AR+sum K=1, AR+max K=1, AR+concat K=8
    "iapsa": (89.37, 89.39, 90.32, 89.04, 92.39),
    "abstract_paintings": (72.48, 74.71, 73.72, 73.92, 76.03),
    "artphoto": (70.09, 73.76, 73.63, 73.32, 74.80),
    "twitter1/five_agree": (84.35, 86.10, 86.39, 86.19, 88.65),
    "twitter1/four_agree": (82.26, 83.25, 83.41, 83.11, 85.10),
    "twitter1/three_agree": (76.75, 77.97, 77.57, 77.67, 81.06),
    "twitter2": (76.99, 78.89, 78.32, 78.52, 80.48),
    "emotion_roi": (77.02, 78.52, 78.43, 78.32, 81.26),
}
for _name, _values in _TABLE3.items():
    PAPER_ACCURACY[_name] = dict(zip(
        ("fine-tuned VGG16", "ar+concat (K=1)", "ar+sum (K=1)", "ar+max (K=1)", "ar+concat (K=8)"),
        _values))

ROW_ORDER = ("global", "ar+concat", "ar+sum", "ar+max", "obj+concat", "obj+sum", "obj+max",
             "senti+concat", "senti+sum", "senti+max")
# Rows without regions, hence without K: the paper's key of each.
_ROWS_WITHOUT_K = {"global": "fine-tuned VGG16",
                   baselines_lib.BASELINE_ROW: baselines_lib.BASELINE_ROW}


def _paper_value(dataset: str, row: str, top_k: int) -> str:
    table = PAPER_ACCURACY.get(dataset) or PAPER_ACCURACY.get(dataset.split("/")[0]) or {}
    value = table.get(_ROWS_WITHOUT_K.get(row, f"{row} (K={top_k})"))
    return f"{value:.2f}" if value is not None else "-"


def _row_name(row: str, top_k: int, details: dict) -> str:
    if row == "global":
        return "whole image (fine-tuned VGG16)"
    if row in details:
        return f"{row} ({baselines_lib.describe(details[row])})"
    return f"{row} (K={top_k})"


def _percent(value: float) -> str:
    return "-" if value is None or np.isnan(value) else f"{100 * value:.2f}"


def results_table(metrics: dict) -> list[str]:
    """Markdown rows: every evaluated row with accuracy, balanced accuracy, per-class recall,
    then the baselines (``metrics["baselines"]``, when there are any)."""
    dataset, top_k = metrics["dataset"], metrics["top_k"]
    results = {**metrics["results"], **metrics.get("baselines", {})}
    details = metrics.get("baseline_details", {})
    lines = [
        "| method | accuracy | balanced accuracy | recall negative | recall positive | paper |",
        "|---|---|---|---|---|---|",
    ]
    for row in ROW_ORDER + tuple(metrics.get("baselines", {})):
        if row not in results:
            continue
        r = results[row]
        name = _row_name(row, top_k, details)
        marker = " **(reported)**" if row == metrics.get("reported") else ""
        lines.append(
            f"| {name}{marker} | {_percent(r['accuracy'])} | {_percent(r['balanced_accuracy'])} | "
            f"{_percent(r['recall_negative'])} | {_percent(r['recall_positive'])} | "
            f"{'-' if metrics.get('fold') is not None else _paper_value(dataset, row, top_k)} |")
    return lines


def _k1_table(metrics: dict) -> list[str]:
    """The same rows with one region (K = 1), as most rows of the paper's Tables 2-3."""
    if "results_k1" not in metrics:
        return []
    rows = {row: value for row, value in metrics["results_k1"].items() if row != "global"}
    return ["", "With one region (K = 1):", "",
            *results_table({**metrics, "results": rows, "top_k": 1, "reported": None,
                            "baselines": {}})]


def _figure(workdir: pathlib.Path, predictions_dir: pathlib.Path, config: Config, count: int = 8):
    """Top-1 region by AR, Obj and Senti on test images (half positive, half negative).

    Returns:
        (the figure's path, whether it draws ground-truth boxes: only for datasets that have
        them), or None when the test part is empty.
    """
    with np.load(predictions_dir / "predictions_test.npz") as stored:
        test = dict(stored)
    labels = test["label"]
    chosen = np.concatenate([np.flatnonzero(labels == 1)[: count // 2],
                             np.flatnonzero(labels == 0)[: count - count // 2]])
    if chosen.size == 0:
        return None
    names = [str(test["filename"][i]) for i in chosen]
    builder = data_lib.get_builder(config.data)
    images = {}
    for example in data_lib.examples(builder, names).as_numpy_iterator():
        images[example[data_lib.FILENAME_KEY].decode()] = data_lib.decode_image_tensor(
            example["image"]).numpy()
    boxes = {}
    for selection in evaluate_lib.SELECTIONS:
        selected = evaluate_lib.select(test, config.regions, selection)
        boxes[selection] = selected["region_boxes"][chosen, 0]
    if "object_box" in test:
        boxes["truth"] = test["object_box"][chosen]
    probs = test["global_probs"][chosen]
    titles = [f"{LABEL_NAMES[int(labels[i])]} (whole image p+ = {p[1]:.2f})"
              for i, p in zip(chosen, probs)]
    path = visualize.draw_top_regions(
        [images[n] for n in names], boxes, labels[chosen], titles,
        workdir / "figures" / "top_regions.png")
    return path, "truth" in boxes


def write_report(workdir, eval_dir, predictions_dir, config: Config, *,
                 extra_metrics: dict | None = None) -> pathlib.Path:
    """Writes ``<workdir>/report.md`` (and its figure) from an evaluation directory.

    Args:
        workdir: where ``report.md`` and ``figures/`` go.
        eval_dir: holds the evaluation's ``metrics.json``.
        predictions_dir: holds ``predictions_test.npz`` (for the figure).
        config: the run's settings (quoted in the report).
        extra_metrics: keys added to the evaluation's metrics, as in the root ``metrics.json``:
            ``baselines`` ({row: metrics}) and ``baseline_details`` ({row: what it used}).
    """
    workdir, eval_dir = pathlib.Path(workdir), pathlib.Path(eval_dir)
    metrics = {**json.loads((eval_dir / "metrics.json").read_text()), **(extra_metrics or {})}
    counts = metrics["counts"]
    lines = [
        f"# affect_tf report: {metrics['dataset']}",
        "",
        f"Protocol: {metrics['protocol']}. Images: {counts['train']} train, "
        f"{counts['validation']} validation (trains the SVM), {counts['test']} test.",
        f"Weights: {config.model.weights}, head {config.model.resolved_head}, input "
        f"{config.model.image_size} px, {config.train.steps} steps of {config.train.batch_size}; "
        f"m = {config.proposals.num_candidates} candidates ({config.proposals.edge_source} edges), "
        f"K = {metrics['top_k']}, alpha = {config.regions.alpha}, beta = {config.fusion.beta}.",
        "",
        "## Test accuracy (%)",
        "",
        *results_table(metrics),
        *_k1_table(metrics),
        "",
        "Rows: region choice (AR score, objectness only, sentiment only) + fusion (concatenation "
        "with a linear SVM trained on the validation split, sum pooling, max pooling). The paper "
        "column is the same row in Tables 2-3 of Yang et al. (ImageNet VGG16, full protocol).",
        *_majority_line(pathlib.Path(predictions_dir)),
        *_baseline_note(metrics.get("baseline_details", {}) if metrics.get("baselines")
                        else {}),
    ]
    if "region_hit_rate" in metrics:
        rates = metrics["region_hit_rate"]
        lines += [
            "",
            "## Does the top-1 region find the object? (test split, IoU >= 0.5)",
            "",
            "| ranking | share of images |",
            "|---|---|",
            *[f"| {name} | {_percent(rates[name])} |" for name in ("ar", "obj", "senti")],
            f"| any of the m candidates (ceiling) | {_percent(rates['best_candidate'])} |",
        ]
    figure = _figure(workdir, pathlib.Path(predictions_dir), config)
    if figure is not None:
        figure, has_truth = figure
        legend = "Red: AR, blue: objectness, green: sentiment score" + (
            "; dashed white: the ground-truth box." if has_truth
            else " (this dataset has no ground-truth boxes).")
        lines += ["", "## Top-1 regions", "", legend,
                  "", f"![top regions]({figure.relative_to(workdir)})"]
    return io_lib.atomic_write_text(workdir / "report.md", "\n".join(lines) + "\n")


def _majority_line(predictions_dir: pathlib.Path) -> list[str]:
    """The accuracy of always answering the test part's most frequent class: the floor every row
    must clear (on Twitter II it is 77.9 %, above the paper's fine-tuned VGG16)."""
    with np.load(predictions_dir / "predictions_test.npz") as stored:
        labels = stored["label"]
    if labels.size == 0:
        return []
    counts = np.bincount(labels.astype(np.int64), minlength=len(LABEL_NAMES))
    majority = int(np.argmax(counts))
    return ["", f"Majority class alone (always {LABEL_NAMES[majority]}): "
                f"{_percent(counts[majority] / labels.size)} % of the test part; balanced "
                "accuracy 50.00 %."]


def _baseline_note(baseline_details: dict) -> list[str]:
    """What the baseline row is, under the table that shows it (nothing without it)."""
    if baselines_lib.BASELINE_ROW not in baseline_details:
        return []
    details = baseline_details[baselines_lib.BASELINE_ROW]
    stand_in = ("" if details.get("layer") == baselines_lib.FC7 else
                " These weights have no trained fc7, so conv5 features averaged over positions "
                "stand in for it; the paper's number is for ImageNet fc7.")
    return ["", f"{baselines_lib.BASELINE_ROW}: Table 2's \"VGGNet (ImageNet features)\" "
            "baseline: whole-image features of the pretrained backbone, not fine-tuned, "
            "standardized, PCA, linear SVM, all fitted on the training part (the CNN's "
            f"training images, never the test part).{stand_in}"]


METRIC_KEYS = ("accuracy", "balanced_accuracy", "recall_negative", "recall_positive")


def _mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value) of the finite values."""
    finite = np.asarray([v for v in values if v is not None and not np.isnan(v)], np.float64)
    if finite.size == 0:
        return float("nan"), float("nan")
    return float(finite.mean()), float(finite.std(ddof=1)) if finite.size > 1 else 0.0


def summarize_folds(per_fold: dict[int, dict]) -> dict:
    """The folds' metrics and, for every row and metric, their mean and sd over the folds.

    Args:
        per_fold: ``{fold: metrics.json of that fold}`` (each from the evaluate stage).

    Returns:
        ``{"dataset", "protocol", "top_k", "reported", "folds": per_fold, "mean": {row:
        {metric: value}}, "sd": {...}}`` (rows of ``results`` and of ``baselines``), plus
        ``baseline_details`` when the folds have a baseline row, ``mean_k1`` / ``sd_k1`` and
        ``region_hit_rate_mean`` / ``_sd`` when the folds have ``results_k1`` and ground-truth
        boxes.
    """
    first = per_fold[min(per_fold)]
    # The baselines' rows are summarized as the method's (mean and sd under their row key).
    rows_of = {fold: {**m["results"], **m.get("baselines", {})} for fold, m in per_fold.items()}
    rows = [row for row in rows_of[min(per_fold)]
            if all(row in fold_rows for fold_rows in rows_of.values())]
    summary = {key: first[key] for key in ("dataset", "top_k", "reported")}
    summary.update({"folds": {str(fold): metrics for fold, metrics in sorted(per_fold.items())},
                    "mean": {}, "sd": {}})
    for row in rows:
        summary["mean"][row], summary["sd"][row] = {}, {}
        for key in METRIC_KEYS:
            mean, sd = _mean_sd([fold_rows[row][key] for fold_rows in rows_of.values()])
            summary["mean"][row][key], summary["sd"][row][key] = mean, sd
    baseline_rows = [row for row in first.get("baselines", {}) if row in summary["mean"]]
    if baseline_rows:
        summary["baseline_details"] = {
            row: baselines_lib.summarize_details(
                [m.get("baseline_details", {}).get(row, {}) for _, m in sorted(per_fold.items())])
            for row in baseline_rows}
    if all("results_k1" in m for m in per_fold.values()):
        one_region = {fold: {key: value for key, value in m.items()
                             if key not in ("results_k1", "baselines", "baseline_details")}
                      | {"results": m["results_k1"]} for fold, m in per_fold.items()}
        k1 = summarize_folds(one_region)
        summary["mean_k1"], summary["sd_k1"] = k1["mean"], k1["sd"]
    if all("region_hit_rate" in m for m in per_fold.values()):
        rates = {name: _mean_sd([m["region_hit_rate"][name] for m in per_fold.values()])
                 for name in first["region_hit_rate"]}
        summary["region_hit_rate_mean"] = {name: value[0] for name, value in rates.items()}
        summary["region_hit_rate_sd"] = {name: value[1] for name, value in rates.items()}
    return summary


def fold_table(summary: dict) -> list[str]:
    """Markdown rows: mean ± sd over the folds of every metric, each fold's accuracy, the paper's
    mean (the paper reports means over folds, so a single fold is never set beside it)."""
    folds = list(summary["folds"])
    lines = [
        "| method | accuracy | balanced accuracy | recall negative | recall positive | "
        + " | ".join(f"fold {fold}" for fold in folds) + " | paper (mean) |",
        "|---" * (6 + len(folds)) + "|",
    ]
    details = summary.get("baseline_details", {})
    fold_rows = {fold: {**m["results"], **m.get("baselines", {})}
                 for fold, m in summary["folds"].items()}
    for row in ROW_ORDER + tuple(details):
        if row not in summary["mean"]:
            continue
        mean, sd = summary["mean"][row], summary["sd"][row]
        name = _row_name(row, summary["top_k"], details)
        marker = " **(reported)**" if row == summary.get("reported") else ""
        cells = [f"{_percent(mean[key])} ± {_percent(sd[key])}" for key in METRIC_KEYS]
        per_fold = [_percent(fold_rows[fold][row]["accuracy"]) for fold in folds]
        paper = _paper_value(summary["dataset"], row, summary["top_k"]) if len(folds) > 1 else "-"
        lines.append(f"| {name}{marker} | " + " | ".join(cells + per_fold) + f" | {paper} |")
    return lines


def write_fold_report(workdir, fold_dirs: dict[int, pathlib.Path], config: Config, *,
                      protocol: str) -> pathlib.Path:
    """The root ``metrics.json`` and ``report.md`` of a protocol with folds.

    Args:
        workdir: the run's root.
        fold_dirs: ``{fold: that fold's workdir}``, each holding the ``metrics.json`` its
            report stage wrote.
        config: the run's settings (quoted).
        protocol: the protocol's name.

    Returns:
        The report's path.
    """
    workdir = pathlib.Path(workdir)
    per_fold = {fold: json.loads((directory / "metrics.json").read_text())
                for fold, directory in fold_dirs.items()}
    summary = {**summarize_folds(per_fold), "protocol": protocol}
    io_lib.atomic_write_json(workdir / "metrics.json", summary)
    lines = [
        f"# affect_tf report: {summary['dataset']}, {len(per_fold)} folds",
        "",
        f"Protocol: {protocol}; folds {', '.join(str(f) for f in sorted(per_fold))}, each in "
        "`fold-<N>/` with its own report. Mean ± sd over the folds (sample sd).",
        f"Weights: {config.model.weights}, head {config.model.resolved_head}, "
        f"{config.train.steps} steps of {config.train.batch_size}; m = "
        f"{config.proposals.num_candidates}, K = {summary['top_k']}, alpha = "
        f"{config.regions.alpha}, beta = {config.fusion.beta}.",
        "",
        "## Test accuracy (%)",
        "",
        *fold_table(summary),
        *_baseline_note(summary.get("baseline_details", {})),
    ]
    if "mean_k1" in summary:
        one_region = {**summary, "top_k": 1, "reported": None, "baseline_details": {},
                      "mean": {r: v for r, v in summary["mean_k1"].items() if r != "global"},
                      "sd": summary["sd_k1"],
                      "folds": {fold: {**m, "results": m["results_k1"], "baselines": {}}
                                for fold, m in summary["folds"].items()}}
        lines += ["", "With one region (K = 1):", "", *fold_table(one_region)]
    if "region_hit_rate_mean" in summary:
        mean, sd = summary["region_hit_rate_mean"], summary["region_hit_rate_sd"]
        lines += ["", "## Top-1 region on the ground-truth object (IoU >= 0.5)", "",
                  "| ranking | share of test images |", "|---|---|",
                  *[f"| {name} | {_percent(mean[name])} ± {_percent(sd[name])} |" for name in mean]]
    return io_lib.atomic_write_text(workdir / "report.md", "\n".join(lines) + "\n")
