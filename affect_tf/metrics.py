"""Classification metrics and box overlap, in numpy (no TensorFlow)."""

from __future__ import annotations

import numpy as np

from affect_tf.config import LABEL_NAMES


def classification_metrics(labels, predictions) -> dict[str, float]:
    """Accuracy, balanced accuracy and per-class recall (true positive rate) of binary predictions.

    Args:
        labels: [N] int, 0 = negative, 1 = positive.
        predictions: [N] int.

    Returns:
        ``accuracy``, ``balanced_accuracy``, ``recall_negative``, ``recall_positive`` and
        ``count``. The recall of a class absent from ``labels`` is undefined: NaN here (a number
        TensorBoard takes), null once written (``io.atomic_write_json``), and a ``note`` says
        which class was absent and that the balanced accuracy is then the other class's recall.
    """
    labels = np.asarray(labels).astype(np.int64)
    predictions = np.asarray(predictions).astype(np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(
            f"labels and predictions must have the same shape. Received: {labels.shape} and "
            f"{predictions.shape}")
    if labels.size == 0:
        raise ValueError("Cannot compute metrics on zero examples. Received: 0 labels")
    recalls = {}
    for index, name in enumerate(LABEL_NAMES):
        members = labels == index
        recalls[name] = float((predictions[members] == index).mean()) if members.any() else float("nan")
    present = [r for r in recalls.values() if not np.isnan(r)]
    result = {
        "accuracy": float((labels == predictions).mean()),
        "balanced_accuracy": float(np.mean(present)),
        "recall_negative": recalls["negative"],
        "recall_positive": recalls["positive"],
        "count": int(labels.size),
    }
    absent = [name for name, recall in recalls.items() if np.isnan(recall)]
    if absent:
        result["note"] = (f"no {absent[0]} image among the {labels.size}: recall_{absent[0]} is "
                          "undefined (null), and balanced_accuracy is the other class's recall")
    return result


def box_iou(boxes_a, boxes_b) -> np.ndarray:
    """Elementwise IoU of normalized ``[y1, x1, y2, x2]`` boxes.

    Args:
        boxes_a: [..., 4].
        boxes_b: [..., 4], broadcastable against ``boxes_a``.

    Returns:
        [...] IoU in [0, 1] (0 where both boxes are empty).
    """
    a, b = np.asarray(boxes_a, np.float64), np.asarray(boxes_b, np.float64)
    height = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    width = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    intersection = height * width
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area_a + area_b - intersection
    return np.where(union > 0, intersection / np.where(union > 0, union, 1), 0.0)
