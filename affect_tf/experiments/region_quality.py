"""How well the top-1 region covers the emotion stimuli (Section 4.6 of the paper, Fig. 8).

EmotionROI gives every image a grey-level stimuli map (0..255: how many annotators marked a
pixel as evoking the emotion). The map is binarized at every threshold gamma into a ground truth,
and the top-1 region of each ranking (AR, objectness, Senti) is scored against it:

* precision: the share of the box's pixels that are ground truth;
* recall: the share of the ground-truth pixels that the box covers.

Conventions (each one a choice the paper does not spell out):

* A pixel is ground truth at threshold gamma when ``value / 255 > gamma`` (strictly). Gamma = 0
  then means "any stimulus at all": an unmarked (0) pixel is never ground truth. With ``>=``,
  gamma = 0 would make every pixel ground truth, so every box would score precision 1 there,
  a free point that favours large boxes in every mean. The cost of ``>`` is at the other end:
  at gamma = 1 nothing exceeds 255, so the ground truth is empty (see the next rule).
* An empty ground truth judges no box: where the binarized map has no pixel, recall (0 / 0) is
  undefined, and precision (0 for every box, whatever the box) says nothing about the box
  either; both are NaN there and left out of every mean. Precision and recall are therefore
  always averaged over the same (image, threshold) pairs.
* Boxes are normalized ``[y1, x1, y2, x2]`` (the predictions' ``boxes`` and ``object_box``). On
  an H x W map the box covers rows ``round(y1 * H)`` to ``round(y2 * H)`` (exclusive) and the
  columns likewise, rounding halves up: the demo's ``object_box`` edges are exact pixel edges
  (``y2 * H`` is the exclusive bottom row), which this reproduces. A box always covers at least
  one pixel, so precision is always defined where the ground truth is not empty.
* A map must be the size of the image its boxes are normalized to: a box is mapped onto the
  map's pixel grid, so a map of another size would score a shifted or scaled box. The stage
  checks this where it reads EmotionROI's maps (:mod:`affect_tf.experiments.ground_truth`).

The maps come from :mod:`affect_tf.experiments.ground_truth`: EmotionROI's stored
``stimuli_map`` or, on the demo, its face drawn as a map (:func:`ellipse_map` of the face's
``object_box``); :func:`box_map` makes a map of any box (the tests' ground truths).

Everything here but :func:`top1_region_quality` (which ranks with
:func:`affect_tf.evaluate.select`) is NumPy; the thresholds are vectorized through one histogram
of grey levels inside the box and one over the map.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterable

import matplotlib

matplotlib.use("Agg")  # Headless: figures are written to files, never shown.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from affect_tf import evaluate as evaluate_lib  # noqa: E402
from affect_tf.config import SELECTIONS, RegionConfig  # noqa: E402
from affect_tf import visualize  # noqa: E402
from affect_tf.visualize import SELECTION_COLOURS  # noqa: E402

# The grey levels of an 8-bit map.
LEVELS = 256
# Every threshold gamma a grey level can separate: 0, 1/255, ..., 1 (read-only: a default).
THRESHOLDS = np.arange(LEVELS) / (LEVELS - 1)
THRESHOLDS.setflags(write=False)

# The paper's Section 4.6 figures: mean precision and recall of the top-1 region by AR and of the
# top-1 box by objectness on EmotionROI's test split (the paper gives none for Senti).
PAPER_AR_PRECISION = 0.69
PAPER_AR_RECALL = 0.59
PAPER_OBJ_PRECISION = 0.63
PAPER_OBJ_RECALL = 0.53
PAPER_MEANS = {"ar": (PAPER_AR_PRECISION, PAPER_AR_RECALL),
               "obj": (PAPER_OBJ_PRECISION, PAPER_OBJ_RECALL)}

# How far a box coordinate may stray outside [0, 1] and still be read as the edge: float32
# rounding of a box computed as pixels / size.
_BOX_TOLERANCE = 1e-6


def _checked_map(stimuli_map, name: str = "stimuli_map") -> np.ndarray:
    """``stimuli_map`` as a uint8 [H, W] array with H, W > 0, or ValueError."""
    array = np.asarray(stimuli_map)
    if array.dtype != np.uint8 or array.ndim != 2 or 0 in array.shape:
        raise ValueError(
            f"{name} must be a grey-level uint8 array [H, W] (values 0..255) with H, W > 0. "
            f"Received: dtype={array.dtype}, shape={array.shape}")
    return array


def _checked_box(box) -> np.ndarray:
    """``box`` as float64 [4] normalized [y1, x1, y2, x2] inside [0, 1], y1 < y2, x1 < x2."""
    values = np.asarray(box, dtype=np.float64)
    if values.shape != (4,) or not np.all(np.isfinite(values)):
        raise ValueError(
            f"box must be 4 finite numbers, normalized [y1, x1, y2, x2]. "
            f"Received: box={np.asarray(box).tolist()!r} (shape {np.shape(box)})")
    if np.any(values < -_BOX_TOLERANCE) or np.any(values > 1 + _BOX_TOLERANCE):
        raise ValueError(
            f"box must lie inside the image: normalized [y1, x1, y2, x2], each in [0, 1]. "
            f"Received: box={values.tolist()}")
    values = np.clip(values, 0.0, 1.0)
    y1, x1, y2, x2 = values
    if not (y1 < y2 and x1 < x2):
        raise ValueError(
            f"box must be [y1, x1, y2, x2] with y1 < y2 and x1 < x2 (not inverted or empty). "
            f"Received: box={values.tolist()}")
    return values


def _pixel_span(low: float, high: float, size: int) -> tuple[int, int]:
    """Pixel rows (or columns) ``[start, stop)`` of the normalized span ``[low, high]``.

    Edges are rounded to the nearest pixel edge (halves up); the span keeps at least one pixel.
    """
    start = min(int(np.floor(low * size + 0.5)), size - 1)
    stop = max(int(np.floor(high * size + 0.5)), start + 1)
    return start, stop


def _box_pixels(box, height: int, width: int) -> tuple[slice, slice]:
    """The (rows, columns) slices of a checked normalized box on an ``height`` x ``width`` map."""
    y1, x1, y2, x2 = _checked_box(box)
    return slice(*_pixel_span(y1, y2, height)), slice(*_pixel_span(x1, x2, width))


def _checked_size(height, width) -> tuple[int, int]:
    """``(height, width)`` as ints when both are positive integers, else ValueError."""
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise ValueError(f"height and width must be positive integers. "
                         f"Received: height={height!r}, width={width!r}")
    return int(height), int(width)


def box_map(box, height: int, width: int) -> np.ndarray:
    """A stimuli map that is exactly one box: 255 on its pixels, 0 elsewhere.

    Lets a ground-truth box stand for a stimuli map in :func:`precision_recall` and
    :func:`top1_region_quality`: at every gamma < 1 its ground truth is the box's pixels (the
    pixel mapping is :func:`precision_recall`'s). The demo's face is not a box but an ellipse in
    its box: the stage draws it with :func:`ellipse_map`.

    Args:
        box: normalized [y1, x1, y2, x2], inside [0, 1], y1 < y2 and x1 < x2.
        height: rows of the map (> 0).
        width: columns of the map (> 0).

    Returns:
        uint8 [height, width], 0 or 255.

    Raises:
        ValueError: a bad box or size.
    """
    height, width = _checked_size(height, width)
    rows, columns = _box_pixels(box, height, width)
    stimuli_map = np.zeros((height, width), np.uint8)
    stimuli_map[rows, columns] = 255
    return stimuli_map


def ellipse_map(box, height: int, width: int) -> np.ndarray:
    """A stimuli map that is the filled ellipse inscribed in a box: 255 inside, 0 elsewhere.

    A pixel is inside when its centre (``row + 0.5``, ``column + 0.5`` in pixel-edge
    coordinates) lies in the ellipse whose axes are the box's height and width: with the box on
    pixel edges (the demo's ``object_box``), the ellipse touches all four sides, so its pixels'
    tight box is the box itself. The pixel under the box's centre is always inside, so even a box
    under one pixel has a non-empty map.

    Args:
        box: normalized [y1, x1, y2, x2], inside [0, 1], y1 < y2 and x1 < x2.
        height: rows of the map (> 0).
        width: columns of the map (> 0).

    Returns:
        uint8 [height, width], 0 or 255.

    Raises:
        ValueError: a bad box or size.
    """
    height, width = _checked_size(height, width)
    y1, x1, y2, x2 = _checked_box(box)
    centre_y, centre_x = (y1 + y2) / 2 * height, (x1 + x2) / 2 * width
    radius_y, radius_x = (y2 - y1) / 2 * height, (x2 - x1) / 2 * width
    rows = (np.arange(height) + 0.5 - centre_y) / radius_y
    columns = (np.arange(width) + 0.5 - centre_x) / radius_x
    stimuli_map = np.where(rows[:, None] ** 2 + columns[None, :] ** 2 <= 1.0, 255, 0)
    stimuli_map = stimuli_map.astype(np.uint8)
    stimuli_map[min(int(centre_y), height - 1), min(int(centre_x), width - 1)] = 255
    return stimuli_map


def _checked_thresholds(thresholds) -> np.ndarray:
    values = np.asarray(thresholds, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"thresholds must be a non-empty 1-D array of finite numbers (gamma, "
                         f"compared with value / 255). Received: shape {values.shape}")
    return values


def _counts_above(histogram: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Pixels with ``level / 255 > gamma`` for every gamma: ``[T]`` int64, from a level histogram.

    The comparison is made on the 256 levels exactly as on the pixels (float64 ``level / 255``
    against gamma), so the result equals binarizing the map once per threshold.
    """
    above = (np.arange(LEVELS) / (LEVELS - 1))[None, :] > thresholds[:, None]  # [T, 256]
    return above.astype(np.int64) @ histogram.astype(np.int64)


def _precision_recall_counts(stimuli_map: np.ndarray, rows: slice, columns: slice,
                             thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall ``[T]`` of the pixel box ``(rows, columns)`` on a checked map."""
    inside = np.bincount(stimuli_map[rows, columns].ravel(), minlength=LEVELS)
    everywhere = np.bincount(stimuli_map.ravel(), minlength=LEVELS)
    hits = _counts_above(inside, thresholds)           # box pixels in the ground truth
    truth = _counts_above(everywhere, thresholds)      # ground-truth pixels
    box_size = int(inside.sum())                       # >= 1 (_pixel_span)
    defined = truth > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(defined, hits / box_size, np.nan)
        recall = np.where(defined, hits / np.where(defined, truth, 1), np.nan)
    return precision, recall


def precision_recall(stimuli_map, box, thresholds=THRESHOLDS) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of one box against a stimuli map binarized at every threshold.

    The ground truth at gamma is the pixels with ``value / 255 > gamma`` (module docstring: why
    strictly). Precision = |box & truth| / |box|; recall = |box & truth| / |truth|. Both are NaN
    where the ground truth is empty (an empty ground truth judges no box).

    Args:
        stimuli_map: uint8 [H, W], grey levels 0..255.
        box: normalized [y1, x1, y2, x2], inside [0, 1], y1 < y2 and x1 < x2; mapped to pixels by
            rounding its edges to the nearest pixel edge (at least one pixel).
        thresholds: [T] gammas (default: 0, 1/255, ..., 1).

    Returns:
        (precision [T], recall [T]) float64, in [0, 1] or NaN.

    Raises:
        ValueError: a map that is not uint8 [H, W], a box outside [0, 1], inverted or empty, or
            thresholds that are not a non-empty 1-D array of finite numbers.
    """
    stimuli_map = _checked_map(stimuli_map)
    rows, columns = _box_pixels(box, *stimuli_map.shape)
    return _precision_recall_counts(stimuli_map, rows, columns, _checked_thresholds(thresholds))


def _nanmean(values: np.ndarray, axis=None):
    """Mean over the defined (non-NaN) values; NaN where there is none, without a warning."""
    count = np.sum(~np.isnan(values), axis=axis)
    total = np.nansum(values, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def top1_region_quality(predictions: dict, stimuli_maps: Iterable[np.ndarray] | np.ndarray,
                        region_config: RegionConfig, thresholds=THRESHOLDS) -> dict:
    """Precision-recall of the top-1 region by AR, objectness and Senti (Section 4.6, Fig. 8).

    The top-1 region of each ranking is :func:`affect_tf.evaluate.select` with K = 1 (alpha,
    objectness normalization and AR formula are ``region_config``'s). An image without a valid
    candidate is scored with the box that selection gives it, the whole image ([0, 0, 1, 1]),
    as the method would use it; ``images_without_region`` counts them.

    Averaging: precision and recall are computed per image and threshold (``[N, T]``, NaN where
    the binarized map is empty). The curves are the mean over the images at each threshold (NaN
    where no image is defined); the overall means are the mean over every defined (image,
    threshold) pair, so each pair weighs the same and precision and recall cover the same pairs.
    The paper does not say how it averaged.

    The maps are read once, in order, and each is dropped once its three boxes are scored: a
    generator that decodes one map at a time keeps a single full-size map in memory.

    Args:
        predictions: a part's predictions: ``candidate_probs`` [N, m, 2], ``objectness`` [N, m],
            ``num_valid`` [N], ``boxes`` [N, m, 4] normalized [y1, x1, y2, x2],
            ``global_probs`` [N, 2].
        stimuli_maps: N uint8 [H_i, W_i] maps in the predictions' order (a list, one [N, H, W]
            array, or any iterable, e.g. a generator); sizes may differ between images. Each must
            be the size of its image (the boxes are normalized to the image).
        region_config: the run's region settings (``top_k`` is replaced by 1).
        thresholds: [T] gammas (default: 0, 1/255, ..., 1).

    Returns:
        ``thresholds`` [T] and, for each of ``ar``, ``obj``, ``senti``, a dict: ``precision``
        and ``recall`` [T] (the curves), ``images`` [T] int (images defined at each threshold),
        ``mean_precision``, ``mean_recall`` (floats, NaN if nothing is defined),
        ``images_without_region`` (int), and ``paper_precision``, ``paper_recall`` (the paper's
        Section 4.6 means; None for Senti, which it does not report).

    Raises:
        ValueError: a count of maps other than N, a map that is not uint8 [H, W], or bad
            thresholds.
    """
    thresholds = _checked_thresholds(thresholds)
    count = int(np.shape(predictions["global_probs"])[0])
    if hasattr(stimuli_maps, "__len__") and len(stimuli_maps) != count:
        raise ValueError(f"Expected one stimuli map per image of the predictions ({count}). "
                         f"Received: {len(stimuli_maps)} maps")
    top1 = dataclasses.replace(region_config, top_k=1).validate()
    selected = {selection: evaluate_lib.select(predictions, top1, selection)
                for selection in SELECTIONS}
    boxes = {selection: chosen["region_boxes"][:, 0] for selection, chosen in selected.items()}
    precision = {selection: np.empty((count, thresholds.size)) for selection in SELECTIONS}
    recall = {selection: np.empty((count, thresholds.size)) for selection in SELECTIONS}
    received = 0
    for index, stimuli_map in enumerate(stimuli_maps):
        received = index + 1
        if index >= count:
            continue  # Counted for the message below, never scored.
        stimuli_map = _checked_map(stimuli_map, f"stimuli_maps[{index}]")
        for selection in SELECTIONS:
            rows, columns = _box_pixels(boxes[selection][index], *stimuli_map.shape)
            precision[selection][index], recall[selection][index] = _precision_recall_counts(
                stimuli_map, rows, columns, thresholds)
    if received != count:
        raise ValueError(f"Expected one stimuli map per image of the predictions ({count}). "
                         f"Received: {received} maps")
    result: dict = {"thresholds": thresholds}
    for selection in SELECTIONS:
        paper = PAPER_MEANS.get(selection, (None, None))
        part_precision, part_recall = precision[selection], recall[selection]
        result[selection] = {
            "precision": _nanmean(part_precision, axis=0),
            "recall": _nanmean(part_recall, axis=0),
            "images": np.sum(~np.isnan(part_recall), axis=0),
            "mean_precision": float(_nanmean(part_precision)),
            "mean_recall": float(_nanmean(part_recall)),
            "images_without_region": int(np.sum(~selected[selection]["region_valid"][:, 0])),
            "paper_precision": paper[0], "paper_recall": paper[1],
        }
    return result


def plot_precision_recall(result: dict, path: str | pathlib.Path) -> pathlib.Path:
    """Draws the precision-recall curves of :func:`top1_region_quality` as PNG (Fig. 8's layout).

    One curve per selection (recall on x, precision on y, one point per threshold), its overall
    mean as a circle, and the paper's Section 4.6 means as stars of the same colour.

    Args:
        result: :func:`top1_region_quality`'s dict.
        path: the PNG file (its folder is created).

    Returns:
        ``path`` as a :class:`pathlib.Path`.
    """
    # AR last and thicker, as in the report's figure: it often coincides with Senti or Obj.
    drawn = sorted((selection for selection in SELECTIONS if selection in result),
                   key=lambda selection: selection == "ar")
    if not drawn:
        raise ValueError(f"result must hold curves of {', '.join(SELECTIONS)} "
                         f"(top1_region_quality's dict). Received: keys {sorted(result)}")
    figure, axis = plt.subplots(figsize=(6, 5.2))
    for selection in drawn:
        entry = result[selection]
        colour = SELECTION_COLOURS[selection]
        name = {"ar": "AR", "obj": "Obj", "senti": "Senti"}[selection]
        axis.plot(entry["recall"], entry["precision"], color=colour,
                  linewidth=2.5 if selection == "ar" else 1.5, label=f"top-1 by {name}")
        axis.plot(entry["mean_recall"], entry["mean_precision"], "o", color=colour,
                  markersize=7, markeredgecolor="black",
                  label=f"{name} mean: P {entry['mean_precision']:.2f}, "
                        f"R {entry['mean_recall']:.2f}")
        if entry.get("paper_precision") is not None:
            axis.plot(entry["paper_recall"], entry["paper_precision"], "*", color=colour,
                      markersize=13, markeredgecolor="black",
                      label=f"{name} mean, paper: P {entry['paper_precision']:.2f}, "
                            f"R {entry['paper_recall']:.2f}")
    axis.set_xlim(0, 1.02)
    axis.set_ylim(0, 1.02)
    axis.set_xlabel("recall (share of the stimuli covered by the box)")
    axis.set_ylabel("precision (share of the box on the stimuli)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="best")
    axis.set_title("Top-1 region against the stimuli map binarized at every threshold\n"
                   "(paper, Section 4.6 / Fig. 8: the AR region beats the top objectness box "
                   "in both)", fontsize=9)
    figure.tight_layout()
    return visualize.save_png(figure, path)
