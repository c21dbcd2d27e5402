"""The markdown report of an evaluation, beside the paper's numbers where they exist."""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np

from affect_tf import baselines as baselines_lib
from affect_tf import io as io_lib
from affect_tf import visualize
from affect_tf.config import LABEL_NAMES, Config

# What the evaluation stores in its directory for the report's figure (the chosen test images,
# encoded, and their top-1 boxes), so the report reads no dataset and needs no TensorFlow.
FIGURE_FILE = "figure_inputs.npz"

# Binary accuracy (%) reported by the paper (Tables 2 and 3), by dataset and row. The baseline
# row is the tables' "VGGNet" row: ImageNet VGG16 features, not fine-tuned (METHOD.md, "The
# paper's reported numbers").
PAPER_ACCURACY = {
    "fi": {"fine-tuned VGG16": 83.05, "ar+concat (K=1)": 84.83, "ar+sum (K=1)": 84.50,
           "ar+max (K=1)": 84.21, "obj+concat (K=1)": 83.85, "senti+concat (K=1)": 84.07,
           "ar+concat (K=8)": 86.35, baselines_lib.BASELINE_ROW: 70.64},
    "flickr_vso": {"fine-tuned VGG16": 70.12, "ar+concat (K=1)": 70.51, "ar+sum (K=1)": 70.46,
                   "ar+max (K=1)": 70.49, "obj+concat (K=1)": 70.05, "senti+concat (K=1)": 70.10,
                   "ar+concat (K=8)": 71.13, baselines_lib.BASELINE_ROW: 61.28},
}
# Table 3's columns: fine-tuned VGG16, AR+concat K=1, AR+sum K=1, AR+max K=1, AR+concat K=8,
# obj+concat K=1, senti+concat K=1, and "VGGNet" (ImageNet features + PCA + SVM).
_TABLE3_ROWS = ("fine-tuned VGG16", "ar+concat (K=1)", "ar+sum (K=1)", "ar+max (K=1)",
                "ar+concat (K=8)", "obj+concat (K=1)", "senti+concat (K=1)",
                baselines_lib.BASELINE_ROW)
_TABLE3 = {
    "iapsa": (89.37, 89.39, 90.32, 89.04, 92.39, 88.47, 88.74, 88.51),
    "abstract_paintings": (72.48, 74.71, 73.72, 73.92, 76.03, 73.38, 74.23, 68.86),
    "artphoto": (70.09, 73.76, 73.63, 73.32, 74.80, 71.34, 72.86, 67.61),
    "twitter1/five_agree": (84.35, 86.10, 86.39, 86.19, 88.65, 84.24, 84.35, 83.44),
    "twitter1/four_agree": (82.26, 83.25, 83.41, 83.11, 85.10, 81.81, 82.44, 78.67),
    "twitter1/three_agree": (76.75, 77.97, 77.57, 77.67, 81.06, 76.68, 76.57, 75.49),
    "twitter2": (76.99, 78.89, 78.32, 78.52, 80.48, 75.97, 78.18, 71.79),
    "emotion_roi": (77.02, 78.52, 78.43, 78.32, 81.26, 77.83, 77.95, 72.25),
}
for _name, _values in _TABLE3.items():
    PAPER_ACCURACY[_name] = dict(zip(_TABLE3_ROWS, _values))
# The datasets of Table 2, whose CNN the paper fine-tuned from ImageNet on the set itself; the
# others (Table 3) start from the FI-fine-tuned CNN.
LARGE_DATASETS = ("fi", "flickr_vso")

# The paper's hand-crafted and mid-level rows (binary accuracy, %), by dataset and row: the keys
# of affect_tf.experiments.handcrafted.REGISTRY for the rows built here, the titles of its
# NOT_BUILT for the others. Table 3 has every row for the small sets (columns below, as in
# _TABLE3); Table 2 (FI, Flickr) has only DeepSentiBank.
_TABLE3_HANDCRAFTED = {
    "gch": (71.76, 71.50, 67.00, 67.91, 67.20, 65.41, 77.68, 66.53),
    "lch": (52.91, 73.26, 64.01, 70.18, 68.54, 65.93, 75.98, 64.29),
    "ColorName + BoW": (57.72, 73.28, 66.26, 64.51, 64.79, 60.83, 70.10, 60.13),
    "gist": (65.05, 60.97, 63.40, 65.87, 61.47, 60.68, 77.68, 60.38),
    "lbp": (56.73, 59.85, 55.06, 55.78, 53.94, 57.29, 65.15, 55.26),
    "gabor": (79.21, 50.43, 58.43, 55.37, 54.03, 53.90, 63.72, 58.73),
    "sift_bow": (86.06, 53.54, 59.05, 63.15, 63.71, 60.36, 70.32, 65.30),
    "sift_vlad": (83.02, 60.53, 64.75, 70.29, 68.91, 67.14, 77.34, 72.15),
    "sift_fv": (83.28, 60.10, 62.40, 71.09, 67.29, 65.56, 76.34, 70.92),
    "dsift_bow": (56.22, 54.38, 56.58, 64.29, 59.94, 58.94, 60.07, 59.85),
    "dsift_vlad": (58.25, 55.74, 64.38, 67.12, 66.49, 65.01, 77.17, 62.13),
    "dsift_fv": (62.55, 59.21, 64.01, 71.76, 68.01, 65.96, 78.01, 62.97),
    "hog_bow": (79.99, 60.95, 62.40, 68.48, 61.92, 60.99, 61.23, 61.05),
    "hog_vlad": (82.52, 57.49, 68.97, 71.99, 67.74, 66.43, 61.92, 63.38),
    "hog_fv": (83.76, 61.41, 68.11, 76.07, 70.34, 68.32, 68.12, 65.33),
    "PAEF": (62.81, 70.05, 67.85, 72.90, 69.61, 67.92, 77.51, 75.24),
    "SentiBank": (81.79, 64.95, 67.74, 71.32, 68.28, 66.63, 65.93, 66.18),
    "DeepSentiBank": (85.63, 71.19, 68.73, 76.35, 70.15, 71.25, 70.23, 70.11),
}
PAPER_HANDCRAFTED = {"fi": {"DeepSentiBank": 61.54}, "flickr_vso": {"DeepSentiBank": 57.83}}
for _index, _name in enumerate(_TABLE3):
    PAPER_HANDCRAFTED[_name] = {row: values[_index] for row, values in _TABLE3_HANDCRAFTED.items()}

ROW_ORDER = ("global", "ar+concat", "ar+sum", "ar+max", "obj+concat", "obj+sum", "obj+max",
             "senti+concat", "senti+sum", "senti+max")
# Rows without regions, hence without K: the paper's key of each.
_ROWS_WITHOUT_K = {"global": "fine-tuned VGG16",
                   baselines_lib.BASELINE_ROW: baselines_lib.BASELINE_ROW}


def _temperature_note(config, metrics: dict) -> str:
    """", Senti at temperature T (fitted on the validation part)" where it is not 1."""
    temperature = metrics.get("senti_temperature", 1.0)
    if config.regions.senti_calibration == "temperature":
        return f", Senti at softmax temperature {temperature:.3f} (fitted on the validation part)"
    if temperature != 1.0:
        return f", Senti at softmax temperature {temperature:g}"
    return ""


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


def _figure(workdir: pathlib.Path, eval_dir: pathlib.Path):
    """Top-1 region by AR, Obj and Senti on the test images the evaluation chose (half
    positive, half negative), drawn from what it stored: no dataset is read here.

    Returns:
        (the figure's path, whether it draws ground-truth boxes: only for datasets that have
        them), or None when the test part is empty.
    """
    with np.load(eval_dir / FIGURE_FILE, allow_pickle=False) as stored:
        choice = dict(stored)
    labels = choice["label"]
    if labels.size == 0:
        return None
    images = [io_lib.decode_image_bytes(choice[f"image_{index}"].tobytes(), str(name))
              for index, name in enumerate(choice["filename"])]
    boxes = {name[len("boxes_"):]: value for name, value in choice.items()
             if name.startswith("boxes_")}
    titles = [f"{LABEL_NAMES[int(label)]} (whole image p+ = {p[1]:.2f})"
              for label, p in zip(labels, choice["global_probs"])]
    path = visualize.draw_top_regions(images, boxes, labels, titles,
                                      workdir / "figures" / "top_regions.png")
    return path, "truth" in boxes


def write_report(workdir, eval_dir, predictions_dir, config: Config, *,
                 extra_metrics: dict | None = None,
                 experiments_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Writes ``<workdir>/report.md`` (and its figure) from an evaluation directory.

    Args:
        workdir: where ``report.md`` and ``figures/`` go.
        eval_dir: holds the evaluation's ``metrics.json`` and the figure's inputs.
        predictions_dir: holds ``predictions_test.npz`` (the test labels' majority class).
        config: the run's settings (quoted in the report).
        extra_metrics: keys added to the evaluation's metrics, as in the root ``metrics.json``:
            ``baselines`` ({row: metrics}) and ``baseline_details`` ({row: what it used}).
        experiments_dir: a finished experiments stage's directory inside ``workdir`` (its
            ``summary.json`` and figures: :mod:`affect_tf.experiments.runner`), or None.
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
        f"K = {metrics['top_k']}, alpha = {config.regions.alpha}, beta = {config.fusion.beta}"
        f"{_temperature_note(config, metrics)}.",
        "",
        "## Test accuracy (%)",
        "",
        *results_table(metrics),
        *_k1_table(metrics),
        "",
        "Rows: region choice (AR score, objectness only, sentiment only) + fusion (concatenation "
        "with a linear SVM trained on the validation split, sum pooling, max pooling). "
        + paper_caption(metrics["dataset"]),
        *_majority_line(pathlib.Path(predictions_dir)),
        *_undefined_note(metrics),
        *_baseline_note(metrics.get("baseline_details", {}) if metrics.get("baselines")
                        else {}),
        *served_section(metrics.get("served")),
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
    figure = _figure(workdir, eval_dir)
    if figure is not None:
        figure, has_truth = figure
        legend = "Red: AR, blue: objectness, green: sentiment score" + (
            "; dashed white: the ground-truth box." if has_truth
            else " (this dataset has no ground-truth boxes).")
        lines += ["", "## Top-1 regions", "", legend,
                  "", f"![top regions]({figure.relative_to(workdir)})"]
    if experiments_dir is not None:
        lines += experiments_section(workdir, pathlib.Path(experiments_dir))
    if "handcrafted" in metrics:
        lines += handcrafted_section(metrics["handcrafted"], metrics["dataset"],
                                     one_fold=metrics.get("fold") is not None)
    return io_lib.atomic_write_text(workdir / "report.md", "\n".join(lines) + "\n")


def served_edges_of(summary: dict) -> dict:
    """The edges a served row was measured with (``affect_tf.export.served_edges``): its
    summary's ``served_edges``; gradient edges for a row measured before the summary held
    them, when the served graph had no other."""
    return summary.get("served_edges", {"edge_source": "gradient"})


def edges_in_words(edges: dict) -> str:
    """``gradient edges`` or ``HED edges in bfloat16``, from a served row's ``served_edges``
    (the report's, the export asset's and bench_serving's wording)."""
    words = (f"HED edges in {edges['hed_precision']}" if edges["edge_source"] == "hed"
             else f"{edges['edge_source']} edges")
    if edges.get("boxes") == "edgeboxes":
        return words + ", OpenCV's EdgeBoxes, filter and normalized cut"
    return words + ", boxes by scored sliding windows (an approximation of the OpenCV path)"


def served_section(served: dict | None) -> list[str]:
    """The served model's row (``metrics["served"]``, written by --mode=export:
    :mod:`affect_tf.served_eval`) beside the evaluated one; nothing before an export."""
    if not served:
        return []
    agreement = served.get("top1_agreement")
    top1 = ("no image had a real top-1 region on both paths" if agreement is None else
            f"the same top-1 region (IoU >= 0.5) on {_percent(agreement)} % of the "
            f"{served['top1_compared']} test images where both paths have one")
    invalid = (f" {served['invalid_images']} test files did not decode in the served graph "
               "(counted wrong)." if served.get("invalid_images") else "")
    edges = edges_in_words(served_edges_of(served))
    return [
        "",
        "## The served model (SavedModel, --mode=export)",
        "",
        f"| path | {served['reported']} test accuracy (%) | mean candidates |",
        "|---|---|---|",
        f"| evaluated: the run's OpenCV proposals (`predict_with_proposals`) | "
        f"{_percent(served['evaluated_accuracy'])} | "
        f"{served['mean_candidates']['evaluated']:.1f} |",
        f"| served: proposals in the graph (`serving_default`) | "
        f"{_percent(served['served_accuracy'])} | {served['mean_candidates']['served']:.1f} |",
        "",
        f"`serving_default` proposes its candidates in the graph ({edges}) "
        f"and its concatenation SVM was fitted on that path's "
        f"validation predictions. The two paths give the same label on "
        f"{_percent(served['label_agreement'])} % of the {served['test_images']} test images, "
        f"the same whole-image label on {_percent(served['whole_image_agreement'])} %, and "
        f"{top1}.{invalid}",
    ]


def experiments_section(workdir: pathlib.Path, directory: pathlib.Path) -> list[str]:
    """The sweeps and region quality of ``--mode=experiments`` (its ``summary.json``), with the
    paper's figures described beside them and the stage's PNGs inline."""
    summary = json.loads((directory / "summary.json").read_text())
    own, own_ab, own_k = summary["own"], summary["own_alpha_beta"], summary["own_top_k"]
    best_ab, best_k = summary["best_alpha_beta_on_validation"], summary["best_top_k_on_validation"]
    relative = directory.relative_to(workdir)
    lines = [
        "", "## Experiments (re-read from the stored predictions)", "",
        "| sweep | the run's value | validation | test | best on validation |",
        "|---|---|---|---|---|",
        f"| alpha x beta, AR + sum pooling (Fig. 6) | alpha {own['alpha']}, beta {own['beta']} "
        f"| {_percent(own_ab['validation_ar_sum'])} | {_percent(own_ab['test_ar_sum'])} "
        f"| alpha {best_ab['alpha']}, beta {best_ab['beta']}: "
        f"{_percent(best_ab['validation_ar_sum'])} |",
        f"| K, AR + concatenation (Fig. 7; validation: 5-fold cross-validation) "
        f"| K = {own['top_k']} | {_percent(own_k['validation_ar_concat_cv'])} "
        f"| {_percent(own_k['test_ar_concat'])} | "
        + (f"K = {best_k['top_k']}: {_percent(best_k['validation_ar_concat_cv'])}"
           if best_k else "- (too few validation images to cross-validate)") + " |",
        "",
        "The paper (FI, validation): accuracy rises with alpha up to about 0.6 and falls after, "
        "beta is best near 0.3, and K is best at 8. Each point re-ranks and re-fuses the "
        "evaluation's predictions; the run's own point is the evaluation's test figure. Tables: "
        f"`{relative}/sweep_alpha_beta.csv`, `{relative}/sweep_top_k.csv`.",
        "", f"![alpha x beta]({relative}/sweep_alpha_beta.png)",
        "", f"![K]({relative}/sweep_top_k.png)",
    ]
    quality = summary.get("region_quality")
    if quality:
        lines += [
            "", f"### Region quality (Section 4.6): the top-1 region against "
            f"{quality['ground_truth']}, every threshold", "",
            "| ranking | mean precision | mean recall | paper (EmotionROI) |", "|---|---|---|---|",
            *[f"| {name} | {_fraction(quality[key]['mean_precision'])} | "
              f"{_fraction(quality[key]['mean_recall'])} | "
              + (f"{quality[key]['paper_precision']:.2f} / {quality[key]['paper_recall']:.2f}"
                 if quality[key]["paper_precision"] is not None else "-") + " |"
              for key, name in (("ar", "AR"), ("obj", "objectness"), ("senti", "Senti"))],
            "", _ground_truth_note(quality),
            "", f"![precision-recall]({relative}/region_quality.png)",
        ]
    return lines + _image_figures_lines(summary.get("figures"), relative)


def _ground_truth_note(quality: dict) -> str:
    """Which ground truth region quality used (``summary["region_quality"]``), and the paper's
    Section 4.6 means on EmotionROI beside it: comparable for EmotionROI's own maps only."""
    paper = (f"AR {quality['ar']['paper_precision']:.2f} precision / "
             f"{quality['ar']['paper_recall']:.2f} recall, the top objectness box "
             f"{quality['obj']['paper_precision']:.2f} / {quality['obj']['paper_recall']:.2f}, "
             "Senti not reported")
    images = f"{quality['images']} test images" if "images" in quality else "the test images"
    if quality.get("ground_truth_kind") == "stimuli_map":
        return (f"Ground truth: the dataset's stimuli maps (EmotionROI's `stimuli_map`) of the "
                f"{images}, binarized at every gamma in {{0, ..., 255}} / 255 (a pixel is "
                f"ground truth when its value / 255 exceeds gamma), as in the paper: its means on "
                f"EmotionROI's test split are {paper}.")
    if quality.get("ground_truth_kind") == "face_map":
        return (f"Ground truth: the demo's face drawn as a stimuli map (255 on the filled "
                f"ellipse inscribed in its `object_box`, 0 elsewhere) on the {images}, not "
                f"EmotionROI's maps: the paper's means ({paper}) are EmotionROI's, beside these "
                f"for scale only. The map is binary, so every threshold below 1 gives the same "
                f"ground truth; the face's own box scores precision about 0.79 (pi / 4) on it.")
    return (f"Ground truth: {quality['ground_truth']}; the paper's means, on EmotionROI's "
            f"stimuli maps: {paper}.")


# The per-image figures of --mode=experiments (affect_tf/experiments/figures.py), by file key.
_IMAGE_FIGURES = {
    "saliency": "where the classifier looks for the true class: occlusion sensitivity and "
                "Grad-CAM on the whole-image view (Section 5)",
    "regions": "the top-1 region by Obj, Senti and AR (Fig. 9)",
    "clusters": "the EdgeBoxes pool coloured by normalized-cut cluster, the m candidates bold "
                "(Fig. 3)",
    "scores": "Obj against Senti of the m candidates, the top K by AR ringed (Fig. 4)",
}


def _image_figures_lines(entries: list[dict] | None, relative: pathlib.Path) -> list[str]:
    """The per-image figures (``summary["figures"]``), one subsection per test image; none
    where the stage drew none (``--experiment_images=0``)."""
    if not entries:
        return []
    about = ("Each image: " + "; ".join(_IMAGE_FIGURES.values()) + ". The images are the "
             "first positive and negative ones of the test part, as in the report's figure.")
    lines = ["", f"### Per-image figures ({len(entries)} test images, --experiment_images)", "",
             about]
    for entry in entries:
        label = entry["label"]
        name = LABEL_NAMES[label] if 0 <= label < len(LABEL_NAMES) else f"class {label}"
        lines += ["", f"#### `{entry['filename']}` (true class: {name})", "",
                  f"P({name}) on the whole-image view: {entry['view_probability']:.3f} (the "
                  f"evaluation's: {entry['evaluation_probability']:.3f}); {entry['pool_boxes']} "
                  f"boxes in the pool, {entry['candidates']} candidates."]
        if not entry["proposals_match"]:
            lines.append("The recomputed candidates differ from the cached ones the evaluation "
                         "used; Fig. 3 shows the recomputed ones.")
        files = entry["files"]  # summary.json sorts its keys: show them in the paper's order
        for key in [*(k for k in _IMAGE_FIGURES if k in files),
                    *(k for k in files if k not in _IMAGE_FIGURES)]:
            lines += ["", f"![{_IMAGE_FIGURES.get(key, key)}]({relative}/{files[key]})"]
    return lines


def _fraction(value) -> str:
    """A share in [0, 1] with two decimals; '-' where it is undefined (null in JSON)."""
    return "-" if value is None else f"{value:.2f}"


def _undefined_note(metrics: dict) -> list[str]:
    """What a '-' in the table means where a metric could not be computed (a class absent from
    the test part): the rows' own note (:func:`affect_tf.metrics.classification_metrics`)."""
    rows = {**metrics["results"], **metrics.get("baselines", {})}
    notes = sorted({row["note"] for row in rows.values() if row.get("note")})
    return ["", *[f"Undefined ('-'): {note}." for note in notes]] if notes else []


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


def paper_caption(dataset: str) -> str:
    """What the paper column holds for ``dataset``: which table, which model, which protocol."""
    table = PAPER_ACCURACY.get(dataset) or PAPER_ACCURACY.get(dataset.split("/")[0])
    if not table:
        return "The paper reports no numbers for this dataset (paper column: -)."
    baseline = (f"; its \"VGGNet\" row, ImageNet VGG16 features not fine-tuned + PCA + SVM, is "
                f"beside {baselines_lib.BASELINE_ROW}")
    if dataset.split("/")[0] in LARGE_DATASETS:
        return ("The paper column is the same row in Table 2 of Yang et al.: VGG16 fine-tuned "
                "from ImageNet on this set (80/5/15 split, 224 px, 100,000 iterations of 64 "
                f"images, m = 50){baseline}.")
    return ("The paper column is the same row in Table 3 of Yang et al.: VGG16 fine-tuned from "
            "ImageNet on FI, then on this set (the transfer protocol), 224 px, m = 50, mean "
            "accuracy over the protocol's folds (or its official split); '-' where the table "
            f"has no such row{baseline}.")


def _baseline_note(baseline_details: dict) -> list[str]:
    """What the baseline row is, under the table that shows it (nothing without it): its
    weights and layer, and where they are not the paper's (ImageNet fc7), that they stand in."""
    if baselines_lib.BASELINE_ROW not in baseline_details:
        return []
    details = baseline_details[baselines_lib.BASELINE_ROW]
    imagenet = details.get("imagenet", baselines_lib.is_imagenet(str(details.get("weights"))))
    fc7 = details.get("layer") == baselines_lib.FC7
    if imagenet and fc7:
        stand_in = ""
    elif imagenet:
        stand_in = (" fc7 needs a 224 px input and Keras' full VGG16 file, so conv5 features "
                    "of the ImageNet weights, averaged over positions, stand in for it; the "
                    "paper's number is for ImageNet fc7.")
    else:
        stand_in = (f" These are {baselines_lib.source_label(details)} features (weights "
                    f"{details.get('weights', '?')}, --baseline_weights), not the paper's "
                    "ImageNet fc7: a stand-in, so its number is no reproduction of the paper's.")
    return ["", f"{baselines_lib.BASELINE_ROW}: the paper's \"VGGNet (ImageNet features)\" "
            "baseline: whole-image features of a pretrained VGG16, not fine-tuned (its own "
            "--baseline_weights, never the classifier's starting weights), standardized, PCA, "
            "linear SVM, all fitted on the training part (the CNN's training images, never the "
            f"test part).{stand_in}"]


METRIC_KEYS = ("accuracy", "balanced_accuracy", "recall_negative", "recall_positive")


def _is_missing(value) -> bool:
    """A metric a fold could not compute: null in its metrics.json, NaN in memory."""
    return value is None or (isinstance(value, float) and np.isnan(value))


def _mean_sd(values: list[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count of the defined values.

    A value a fold could not compute (None or NaN: e.g. the recall of a class missing from its
    test part) is left out of the mean, and the count says so.

    Returns:
        ``(mean, sd, n)``; mean and sd are NaN when no value is defined (n = 0).
    """
    defined = np.asarray([v for v in values if not _is_missing(v)], np.float64)
    if defined.size == 0:
        return float("nan"), float("nan"), 0
    sd = float(defined.std(ddof=1)) if defined.size > 1 else 0.0
    return float(defined.mean()), sd, int(defined.size)


def summarize_folds(per_fold: dict[int, dict]) -> dict:
    """The folds' metrics and, for every row and metric, their mean and sd over the folds.

    Args:
        per_fold: ``{fold: metrics.json of that fold}`` (each from the evaluate stage).

    Returns:
        ``{"dataset", "protocol", "top_k", "reported", "folds": per_fold, "num_folds": N,
        "mean": {row: {metric: value}}, "sd": {...}, "n": {row: {metric: folds}}}`` (rows of
        ``results`` and of ``baselines``; ``n`` counts the folds where the metric is defined,
        so a mean over fewer than N folds says so; NaN where no fold defines it), plus
        ``baseline_details`` when the folds have a baseline row, ``mean_k1`` / ``sd_k1`` /
        ``n_k1`` when they have ``results_k1``, and ``region_hit_rate_mean`` / ``_sd`` /
        ``_n`` when they have ground-truth boxes.
    """
    first = per_fold[min(per_fold)]
    # The baselines' rows are summarized as the method's (mean and sd under their row key).
    rows_of = {fold: {**m["results"], **m.get("baselines", {})} for fold, m in per_fold.items()}
    rows = [row for row in rows_of[min(per_fold)]
            if all(row in fold_rows for fold_rows in rows_of.values())]
    summary = {key: first[key] for key in ("dataset", "top_k", "reported")}
    summary.update({"folds": {str(fold): metrics for fold, metrics in sorted(per_fold.items())},
                    "num_folds": len(per_fold), "mean": {}, "sd": {}, "n": {}})
    for row in rows:
        summary["mean"][row], summary["sd"][row], summary["n"][row] = {}, {}, {}
        for key in METRIC_KEYS:
            mean, sd, count = _mean_sd([fold_rows[row][key] for fold_rows in rows_of.values()])
            summary["mean"][row][key], summary["sd"][row][key] = mean, sd
            summary["n"][row][key] = count
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
        summary["mean_k1"], summary["sd_k1"], summary["n_k1"] = k1["mean"], k1["sd"], k1["n"]
    if all("region_hit_rate" in m for m in per_fold.values()):
        rates = {name: _mean_sd([m["region_hit_rate"][name] for m in per_fold.values()])
                 for name in first["region_hit_rate"]}
        for index, suffix in enumerate(("mean", "sd", "n")):
            summary[f"region_hit_rate_{suffix}"] = {name: value[index]
                                                   for name, value in rates.items()}
    return summary


def _mean_cell(mean: float, sd: float, count: int | None, total: int) -> str:
    """``mean ± sd``, with ``(n of N folds)`` where fewer folds than all define the metric."""
    cell = "-" if count == 0 else f"{_percent(mean)} ± {_percent(sd)}"
    return cell if count is None or count >= total else f"{cell} ({count} of {total} folds)"


def fold_table(summary: dict) -> list[str]:
    """Markdown rows: mean ± sd over the folds of every metric (with how many folds it covers
    where some fold could not compute it), each fold's accuracy, the paper's mean (the paper
    reports means over folds, so a single fold is never set beside it)."""
    folds = list(summary["folds"])
    total = summary.get("num_folds", len(folds))
    lines = [
        "| method | accuracy | balanced accuracy | recall negative | recall positive | "
        + " | ".join(f"fold {fold}" for fold in folds) + " | paper (mean) |",
        "|---" * (6 + len(folds)) + "|",
    ]
    details = summary.get("baseline_details", {})
    counts = summary.get("n", {})
    fold_rows = {fold: {**m["results"], **m.get("baselines", {})}
                 for fold, m in summary["folds"].items()}
    for row in ROW_ORDER + tuple(details):
        if row not in summary["mean"]:
            continue
        mean, sd = summary["mean"][row], summary["sd"][row]
        name = _row_name(row, summary["top_k"], details)
        marker = " **(reported)**" if row == summary.get("reported") else ""
        cells = [_mean_cell(mean[key], sd[key], counts.get(row, {}).get(key), total)
                 for key in METRIC_KEYS]
        per_fold = [_percent(fold_rows[fold][row]["accuracy"]) for fold in folds]
        paper = _paper_value(summary["dataset"], row, summary["top_k"]) if len(folds) > 1 else "-"
        lines.append(f"| {name}{marker} | " + " | ".join(cells + per_fold) + f" | {paper} |")
    return lines


def _partial_means_note(summary: dict) -> list[str]:
    """Names every mean that covers fewer folds than all (a metric a fold could not compute,
    such as the recall of a class absent from its test part); nothing when all are whole."""
    total = summary.get("num_folds", len(summary["folds"]))
    partial = sorted({key for tables in ("n", "n_k1") for row in summary.get(tables, {}).values()
                      for key, count in row.items() if count < total})
    if not partial:
        return []
    return ["", f"Some folds could not compute {', '.join(partial)} (a class absent from their "
            "test part; null in their metrics.json): those means leave them out, and each such "
            f"cell says over how many of the {total} folds it is taken."]


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
    handcrafted = summarize_handcrafted(per_fold)
    if handcrafted is not None:
        summary["handcrafted"] = handcrafted
    io_lib.atomic_write_json(workdir / "metrics.json", summary)
    lines = [
        f"# affect_tf report: {summary['dataset']}, {len(per_fold)} folds",
        "",
        f"Protocol: {protocol}; folds {', '.join(str(f) for f in sorted(per_fold))}, each in "
        "`fold-<N>/` with its own report. Mean ± sd over the folds (sample sd); \"(n of N "
        "folds)\" marks a mean that some fold could not contribute to.",
        f"Weights: {config.model.weights}, head {config.model.resolved_head}, "
        f"{config.train.steps} steps of {config.train.batch_size}; m = "
        f"{config.proposals.num_candidates}, K = {summary['top_k']}, alpha = "
        f"{config.regions.alpha}, beta = {config.fusion.beta}.",
        "",
        "## Test accuracy (%)",
        "",
        *fold_table(summary),
        "",
        paper_caption(summary["dataset"]),
        *_partial_means_note(summary),
        *_baseline_note(summary.get("baseline_details", {})),
    ]
    if "mean_k1" in summary:
        one_region = {**summary, "top_k": 1, "reported": None, "baseline_details": {},
                      "mean": {r: v for r, v in summary["mean_k1"].items() if r != "global"},
                      "sd": summary["sd_k1"], "n": summary.get("n_k1", {}),
                      "folds": {fold: {**m, "results": m["results_k1"], "baselines": {}}
                                for fold, m in summary["folds"].items()}}
        lines += ["", "With one region (K = 1):", "", *fold_table(one_region)]
    if "region_hit_rate_mean" in summary:
        mean, sd = summary["region_hit_rate_mean"], summary["region_hit_rate_sd"]
        counts, total = summary.get("region_hit_rate_n", {}), len(per_fold)
        lines += ["", "## Top-1 region on the ground-truth object (IoU >= 0.5)", "",
                  "| ranking | share of test images |", "|---|---|",
                  *[f"| {name} | {_mean_cell(mean[name], sd[name], counts.get(name), total)} |"
                    for name in mean]]
    if handcrafted is not None:
        lines += handcrafted_fold_section(handcrafted, summary["dataset"])
    return io_lib.atomic_write_text(workdir / "report.md", "\n".join(lines) + "\n")


# ---- the hand-crafted baselines of --mode=experiments (Tables 2-3) ----------------------------

_HANDCRAFTED_TITLE = "Hand-crafted baselines (Tables 2-3)"


def _paper_handcrafted(dataset: str) -> dict[str, float]:
    """The paper's hand-crafted rows for ``dataset`` (``{}`` where it reports none)."""
    return PAPER_HANDCRAFTED.get(dataset) or PAPER_HANDCRAFTED.get(dataset.split("/")[0]) or {}


def _handcrafted_caption(dataset: str, svm_c: float) -> str:
    """What the rows are and what the paper column holds for ``dataset``."""
    ours = ("Each row: the baseline's features of the whole image (longer side shrunk to 256 px; "
            "a local descriptor's codebook fitted on the training part only), standardized, and "
            f"a linear SVM (C = {svm_c:g}) fitted on the training part; accuracy on the test "
            "part, in %. The paper "
            "gives none of the descriptors' parameters: these use the usual ones of each "
            "descriptor's literature (affect_tf/experiments/handcrafted.py).")
    if not _paper_handcrafted(dataset):
        return f"{ours} The paper reports no hand-crafted numbers for this dataset (paper: -)."
    if dataset.split("/")[0] in LARGE_DATASETS:
        return (f"{ours} Table 2 of Yang et al. has no hand-crafted row for this set (paper: "
                "-); its only mid-level row, DeepSentiBank, is listed below.")
    return (f"{ours} Paper: the same row in Table 3 of Yang et al. (LIBSVM, default C, on their "
            "features; mean accuracy over the protocol's folds, or its official split), '-' "
            "where the table has none.")


def _not_built_lines(paper: dict[str, float]) -> list[str]:
    """The paper's rows that are not built here, each with why and its paper number."""
    # Imported here: the registry loads OpenCV, which the rest of the report does not need.
    from affect_tf.experiments import handcrafted  # noqa: PLC0415

    lines = ["", "Not built here" + (" (the paper's number for this dataset in parentheses):"
                                     if paper else ":"), ""]
    for title, reason in handcrafted.NOT_BUILT.items():
        number = f" ({paper[title]:.2f})" if title in paper else ""
        lines.append(f"- {title}{number}: {reason}.")
    return lines


def handcrafted_section(results: dict, dataset: str, *, one_fold: bool = False) -> list[str]:
    """The hand-crafted baselines' table (``metrics["handcrafted"]``: the rows of
    :mod:`affect_tf.experiments.handcrafted_stage`), each beside the paper's number, and the
    rows not built with their reasons.

    Args:
        results: ``{"svm_c", "rows": [{"baseline", "title", "accuracy", ...}], "directory"}``.
        dataset: the run's dataset (picks the paper's column).
        one_fold: the run is one fold of several; the paper's numbers are means over folds, so
            none is set beside it (the folds' report has them).
    """
    paper = _paper_handcrafted(dataset)
    # A subsection of the experiments' section, which it follows.
    lines = ["", f"### {_HANDCRAFTED_TITLE}", "",
             "| baseline | accuracy | balanced accuracy | paper | features (s) | SVM (s) |",
             "|---|---|---|---|---|---|"]
    for row in results["rows"]:
        number = "-" if one_fold or row["baseline"] not in paper else (
            f"{paper[row['baseline']]:.2f}")
        lines.append(f"| {row['title']} (`{row['baseline']}`) | {_percent(row['accuracy'])} | "
                     f"{_percent(row['balanced_accuracy'])} | {number} | "
                     f"{row['extract_seconds']:.1f} | {row['svm_seconds']:.1f} |")
    directory = results.get("directory")
    table = f" Table: `{directory}/handcrafted.csv`." if directory else ""
    lines += ["", _handcrafted_caption(dataset, results["svm_c"]) + table
              + (" This is one fold of several: the paper's means are beside the folds' mean, "
                 "in the root report." if one_fold else "")]
    return lines + _not_built_lines({} if one_fold else paper)


def summarize_handcrafted(per_fold: dict[int, dict]) -> dict | None:
    """The hand-crafted rows' mean, sd and per-fold accuracy over the folds, for the baselines
    every fold has (None unless every fold's metrics.json has ``handcrafted``).

    Returns:
        ``{"svm_c", "folds": [fold, ...], "titles": {baseline: title}, "mean" / "sd" / "n":
        {baseline: {metric: value}}, "accuracy_per_fold": {baseline: [one per fold, in the
        order of "folds"]}}``.
    """
    if not per_fold or not all("handcrafted" in m for m in per_fold.values()):
        return None
    folds = [per_fold[fold]["handcrafted"] for fold in sorted(per_fold)]
    by_fold = [{row["baseline"]: row for row in fold["rows"]} for fold in folds]
    names = [name for name in by_fold[0] if all(name in rows for rows in by_fold)]
    summary = {"svm_c": folds[0]["svm_c"], "folds": sorted(per_fold),
               "titles": {n: by_fold[0][n]["title"] for n in names}, "mean": {}, "sd": {}, "n": {},
               "accuracy_per_fold": {n: [rows[n]["accuracy"] for rows in by_fold] for n in names}}
    for name in names:
        for key in ("mean", "sd", "n"):
            summary[key][name] = {}
        for metric in ("accuracy", "balanced_accuracy"):
            mean, sd, count = _mean_sd([rows[name][metric] for rows in by_fold])
            summary["mean"][name][metric], summary["sd"][name][metric] = mean, sd
            summary["n"][name][metric] = count
    return summary


def handcrafted_fold_section(summary: dict, dataset: str) -> list[str]:
    """The folds' report's hand-crafted table (:func:`summarize_handcrafted`): mean ± sd over
    the folds, each fold's accuracy, and the paper's mean where it has one."""
    paper = _paper_handcrafted(dataset)
    total = len(summary["folds"])
    lines = ["", f"## {_HANDCRAFTED_TITLE}", "",
             "| baseline | accuracy | balanced accuracy | "
             + " | ".join(f"fold {fold}" for fold in summary["folds"]) + " | paper (mean) |",
             "|---" * (4 + total) + "|"]
    for name, title in summary["titles"].items():
        mean, sd, counts = summary["mean"][name], summary["sd"][name], summary["n"][name]
        cells = [_mean_cell(mean[key], sd[key], counts[key], total)
                 for key in ("accuracy", "balanced_accuracy")]
        cells += [_percent(value) for value in summary["accuracy_per_fold"][name]]
        number = f"{paper[name]:.2f}" if name in paper and total > 1 else "-"
        lines.append(f"| {title} (`{name}`) | " + " | ".join(cells) + f" | {number} |")
    lines += ["", _handcrafted_caption(dataset, summary["svm_c"])
              + " Mean ± sd over the folds; each fold's own report has its table."]
    return lines + _not_built_lines(paper if total > 1 else {})
