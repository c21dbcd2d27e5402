"""The served model evaluated as its own row: ``serving_default``'s pipeline on the run's parts.

The SavedModel's ``serving_default`` proposes its candidates in the graph
(:mod:`affect_tf.proposals.graph`: the run's gradient or HED edges, or gradient edges with
``--served_edges=gradient``; boxes by OpenCV's EdgeBoxes itself in TensorFlow ops
(:mod:`affect_tf.proposals.graph_edgeboxes`, the default), or with ``--served_boxes=windows`` by
scored sliding windows; the normalized cut with scikit-learn's k-means, its random draws
included), not the OpenCV path the evaluation uses. So a served answer can differ from the
evaluated one (ties between boxes of equal score, or the windows' other candidates), and this
module measures by how much on the data the model was trained for:

1. the exported graph's own code (:meth:`affect_tf.export.ServingGraph.served_candidates`: the
   served decoder, the in-graph proposals, the whole-image view and every candidate's
   probabilities) runs over the stored bytes of the validation and test parts;
2. every selection x fusion is evaluated on those predictions as the paper path is
   (:func:`affect_tf.evaluate.evaluate_all`): the concatenation SVM is fitted on the served
   validation predictions, and that SVM is the one the export gives ``serving_default``;
3. the reported row's served accuracy is set beside the evaluated one, with how often the two
   paths give the same label and the same top-1 region (IoU >= 0.5).

Boxes are normalized ``[y1, x1, y2, x2]`` in [0, 1], as everywhere after the proposal stage.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable

import numpy as np
import tensorflow as tf

from affect_tf import evaluate as evaluate_lib
from affect_tf import metrics as metrics_lib
from affect_tf import report as report_lib
from affect_tf.config import Config

# One part's stored served predictions; every array has one row per image.
PREDICTION_KEYS = ("label", "filename", "global_probs", "candidate_probs", "boxes", "objectness",
                   "num_valid", "image_ok")
# The label a row gets when its file does not decode (the export's INVALID_LABEL).
INVALID_LABEL = -1
# Top-1 regions of the two paths that overlap at least this much are "the same region".
SAME_REGION_IOU = 0.5


def make_served_predict_fn(graph) -> Callable[[dict], dict]:
    """``serving_default``'s computation up to the fusion, as one ``tf.function``.

    Args:
        graph: an :class:`affect_tf.export.ServingGraph` (its SVMs are not needed).

    Returns:
        ``{"image": encoded images string [B]}`` -> :meth:`~affect_tf.export.ServingGraph.
        served_candidates`'s dict.
    """
    served = tf.function(graph.served_candidates,
                         input_signature=[tf.TensorSpec([None], tf.string)])
    return lambda batch: served(tf.constant(batch["image"], tf.string))


def collect_served_predictions(predict_fn: Callable[[dict], dict], batches: Iterable[dict], *,
                               total: int | None = None, log=logging.info
                               ) -> dict[str, np.ndarray]:
    """Runs ``predict_fn`` over batches of encoded images and stacks the per-image results
    (:func:`affect_tf.evaluate.collect_predictions`, the boxes coming from the graph).

    Args:
        predict_fn: :func:`make_served_predict_fn`'s function.
        batches: ``{"image": encoded [B], "label": int [B], "filename": string [B]}`` numpy
            batches.
        total: the part's image count, for the progress log.
        log: where progress goes.

    Returns:
        :data:`PREDICTION_KEYS`: ``label`` [N], ``filename`` [N] (str), ``global_probs``
        [N, 2], ``candidate_probs`` [N, m, 2], ``boxes`` [N, m, 4], ``objectness`` [N, m],
        ``num_valid`` [N], ``image_ok`` [N] bool.

    Raises:
        ValueError: no batch at all.
    """
    return evaluate_lib.collect_predictions(
        predict_fn, batches, total=total, log=log, input_keys=("image",),
        kept_keys=("label", "filename"), what="served path:")


def reported_labels(predictions: dict, config: Config, svm=None) -> np.ndarray:
    """The reported row's labels (``selection`` + ``fusion``) of one part, int [N]; rows whose
    file did not decode (``image_ok`` False, served predictions only) get -1."""
    selected = evaluate_lib.select(predictions, config.regions, config.regions.selection)
    labels = np.asarray(evaluate_lib.fuse(config.fusion.fusion, predictions["global_probs"],
                                          selected, config.fusion, svm=svm)).astype(np.int64)
    ok = np.asarray(predictions.get("image_ok", np.ones(len(labels), bool)), bool)
    return np.where(ok, labels, INVALID_LABEL)


def _top1_boxes(predictions: dict, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """The top-1 region by the reported selection: boxes [N, 4] and whether each is a real
    candidate (not the whole-image fallback) [N]."""
    selected = evaluate_lib.select(predictions, config.regions, config.regions.selection)
    return selected["region_boxes"][:, 0], selected["region_valid"][:, 0].astype(bool)


def _aligned(reference: dict, other: dict) -> np.ndarray:
    """Row indices into ``other`` that put its images in ``reference``'s order (by filename).

    Raises:
        ValueError: the two parts do not hold the same images.
    """
    rows = {name: row for row, name in enumerate(np.asarray(other["filename"]).astype(str))}
    names = np.asarray(reference["filename"]).astype(str)
    missing = [name for name in names if name not in rows]
    if missing or len(rows) != len(names):
        raise ValueError(f"The served and evaluated predictions must hold the same images. "
                         f"Received: {len(names)} and {len(rows)} images, {len(missing)} "
                         f"missing, e.g. {missing[:3]}")
    return np.array([rows[name] for name in names], np.int64)


def evaluate_served(served_validation: dict, served_test: dict, evaluated_test: dict,
                    evaluated_metrics: dict, evaluated_svm, config: Config
                    ) -> tuple[dict, dict]:
    """The served path's rows, its SVMs, and how it compares with the evaluated path.

    Args:
        served_validation, served_test: :func:`collect_served_predictions` of the two parts.
        evaluated_test: the paper path's test predictions (the evaluation's).
        evaluated_metrics: the evaluation's ``metrics.json`` (its ``results``).
        evaluated_svm: the evaluation's fitted SVM of the reported selection (``concat``), or
            None for a pooling fusion.
        config: the run's settings.

    Returns:
        ``(summary, svms)``: the summary holds ``reported`` (the row's name),
        ``served_accuracy`` (invalid files counted wrong), ``evaluated_accuracy``,
        ``difference`` (served - evaluated, points of 1), ``label_agreement`` (share of test
        images with the same reported label), ``whole_image_agreement``, ``top1_agreement``
        (same top-1 region at IoU >= 0.5, over images where both paths have a real one, and
        that count), ``invalid_images``, ``test_images``, ``mean_candidates`` of each path,
        and ``results`` (every row on the served predictions, as the evaluation's); ``svms``
        maps each selection to its SVM fitted on the served validation predictions.
    """
    results, svms = evaluate_lib.evaluate_all(served_validation, served_test, config)
    reported = f"{config.regions.selection}+{config.fusion.fusion}"
    order = _aligned(served_test, evaluated_test)
    evaluated = {key: np.asarray(value)[order] for key, value in evaluated_test.items()
                 if np.ndim(value) and len(value) == len(order)}
    labels = np.asarray(served_test["label"], np.int64)
    served_labels = reported_labels(served_test, config, svms[config.regions.selection])
    evaluated_labels = reported_labels(evaluated, config, evaluated_svm)
    ok = np.asarray(served_test["image_ok"], bool)
    whole_served = np.where(ok, np.argmax(served_test["global_probs"], axis=-1), INVALID_LABEL)
    whole_evaluated = np.argmax(evaluated["global_probs"], axis=-1)
    served_boxes, served_real = _top1_boxes(served_test, config)
    evaluated_boxes, evaluated_real = _top1_boxes(evaluated, config)
    both = served_real & evaluated_real & ok
    overlaps = metrics_lib.box_iou(served_boxes[both], evaluated_boxes[both])
    summary = {
        "reported": reported,
        "served_accuracy": float(np.mean(served_labels == labels)),
        "evaluated_accuracy": float(evaluated_metrics["results"][reported]["accuracy"]),
        "label_agreement": float(np.mean(served_labels == evaluated_labels)),
        "whole_image_agreement": float(np.mean(whole_served == whole_evaluated)),
        "top1_agreement": (float(np.mean(overlaps >= SAME_REGION_IOU)) if overlaps.size
                           else None),
        "top1_compared": int(overlaps.size),
        "invalid_images": int(np.sum(~ok)),
        "test_images": int(len(labels)),
        "mean_candidates": {"served": float(np.mean(served_test["num_valid"])),
                            "evaluated": float(np.mean(evaluated["num_valid"]))},
        "results": results,
    }
    summary["difference"] = summary["served_accuracy"] - summary["evaluated_accuracy"]
    return summary, svms


def evaluation_asset(summary: dict, config: Config, protocol: str) -> bytes:
    """The export's ``assets.extra/evaluation.json``: what each signature was measured at, on
    which data, so a user of the model can read it without the workdir.

    Args:
        summary: :func:`evaluate_served`'s summary, with the stage's ``served_edges``.
        config: the run's settings (dataset, fold, edge source).
        protocol: the run's split protocol, in words.
    """
    edges = report_lib.served_edges_of(summary)
    asset = {
        "dataset": config.data.dataset, "protocol": protocol,
        "fold": config.data.fold, "test_images": summary["test_images"],
        "reported": summary["reported"],
        # The softmax temperature Senti reads in both signatures (1: the CNN's own).
        "senti_temperature": config.regions.senti_temperature,
        "serving_default": {
            "accuracy": summary["served_accuracy"],
            "proposals": f"in the graph (affect_tf.proposals.graph: {report_lib.edges_in_words(edges)})",
            "edges": edges,
            "svm_fitted_on": "the served path's validation predictions"},
        "predict_with_proposals": {
            "accuracy": summary["evaluated_accuracy"],
            "proposals": f"the run's OpenCV path ({config.proposals.edge_source} edges)",
            "svm_fitted_on": "the evaluation's validation predictions"},
        "label_agreement": summary["label_agreement"],
        "top1_agreement": summary["top1_agreement"],
    }
    return (json.dumps(asset, indent=2, sort_keys=True) + "\n").encode()
