"""Evaluation: whole-image and region predictions, every fusion, metrics (Section 4).

The CNN scores every candidate region of an image once; ranking by AR, Obj or Senti (the paper's
ablation) and the three fusions are then cheap, so one pass yields every row of Table 2/3 that the
run's settings define. The concatenation SVM is trained on validation predictions, which the CNN
never trained on (METHOD.md, C6 and D4), and tested on the test split.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable, Iterable

import numpy as np
import tensorflow as tf

from affect_tf import calibration as calibration_lib
from affect_tf import fusion as fusion_lib
from affect_tf import metrics as metrics_lib
from affect_tf import regions as regions_lib
from affect_tf import views as views_lib
from affect_tf.config import FUSIONS, SELECTIONS, Config, FusionConfig, RegionConfig


def whole_image_views(region_images: tf.Tensor, config: Config) -> tf.Tensor:
    """The run's whole-image views ``[V, B, S, S, 3]``
    (:func:`affect_tf.views.whole_image_views`)."""
    return views_lib.whole_image_views(region_images, **views_lib.view_settings(config))


def global_view_probs(classifier, region_images: tf.Tensor, config: Config) -> tf.Tensor:
    """The run's whole-image probabilities ``[B, 2]``
    (:func:`affect_tf.views.whole_image_probs`)."""
    return views_lib.whole_image_probs(classifier, region_images,
                                       **views_lib.view_settings(config))


def make_predict_fn(classifier, config: Config) -> Callable[[dict], dict]:
    """A ``tf.function`` batch -> whole-image and candidate predictions.

    The batch holds ``image`` [B, R, R, 3] (RGB 0-255, R = ``config.evaluation.region_image_size``),
    ``boxes`` [B, m, 4] normalized [y1, x1, y2, x2], ``objectness`` [B, m], ``num_valid`` [B].
    Regions are cropped from the R x R image; the whole-image view is that image resized to
    ``resize_size``, as in training, then centre-cropped (or 10 crops averaged).
    """
    image_size = config.model.image_size

    @tf.function(reduce_retracing=True)
    def predict(batch):
        region_images = batch["image"]
        global_probs = global_view_probs(classifier, region_images, config)
        # Only the candidates' probabilities are stored: every ranking is a cheap re-scoring of
        # them later (select), with the temperature fitted on these very predictions.
        candidate_probs = regions_lib.classify_candidates(
            classifier, region_images, batch["boxes"], batch["num_valid"], global_probs,
            crop_size=image_size, context_pixels=config.model.region_context,
            crops_per_call=config.regions.crops_per_call)
        return {"global_probs": global_probs, "candidate_probs": candidate_probs}

    return predict


# What make_predict_fn's function takes of a batch, and what is kept of the batch beside its
# outputs.
_PREDICT_INPUTS = ("image", "boxes", "objectness", "num_valid")
_BATCH_KEPT = ("label", "filename", "boxes", "objectness", "num_valid")


def collect_predictions(
        predict_fn: Callable[[dict], dict], batches: Iterable[dict], *, extra_keys=(),
        total: int | None = None, log=logging.info, input_keys=_PREDICT_INPUTS,
        kept_keys=_BATCH_KEPT, what: str = "evaluated",
) -> dict[str, np.ndarray]:
    """Runs ``predict_fn`` over batches and stacks the per-image results.

    Args:
        predict_fn: ``{key: batch[key] for key in input_keys}`` -> dict of [B, ...] tensors.
        batches: dicts of numpy arrays with a leading batch axis.
        extra_keys: more batch keys to keep (``object_box``).
        total: the part's image count, for the progress log.
        log: where progress goes, each line starting with ``what``.
        input_keys, kept_keys: what ``predict_fn`` takes, and what is kept, of each batch
            (default: :func:`make_predict_fn`'s inputs; the boxes are kept).
        what: the progress log's first word.

    Returns:
        ``kept_keys`` + ``extra_keys`` [N, ...] and ``predict_fn``'s outputs [N, ...]; by
        default ``label`` [N], ``filename`` [N] (str), ``global_probs`` [N, 2],
        ``candidate_probs`` [N, m, 2], ``boxes`` [N, m, 4], ``objectness`` [N, m], ``num_valid``
        [N], plus ``extra_keys``.
    """
    keep = tuple(kept_keys) + tuple(extra_keys)
    parts: dict[str, list] = {}
    done, start, last_log = 0, time.perf_counter(), time.perf_counter()
    for batch in batches:
        outputs = predict_fn({key: batch[key] for key in input_keys})
        for key in keep:
            parts.setdefault(key, []).append(np.asarray(batch[key]))
        for key, value in outputs.items():
            parts.setdefault(key, []).append(value.numpy())
        done += int(batch["label"].shape[0])
        if time.perf_counter() - last_log > 10 or (total and done >= total):
            rate = done / (time.perf_counter() - start)
            eta = f" ETA {(total - done) / rate:.0f}s" if total else ""
            log(f"{what} {done}{'/' + str(total) if total else ''} images, {rate:.1f}/s{eta}")
            last_log = time.perf_counter()
    if not parts:
        raise ValueError("No examples to evaluate: the split is empty. Received: 0 batches")
    arrays = {key: np.concatenate(values) for key, values in parts.items()}
    arrays["filename"] = arrays["filename"].astype(str)
    return arrays


def select(predictions: dict[str, np.ndarray], region_config: RegionConfig, selection: str) -> dict:
    """Top-K regions of every image by ``selection`` (``ar``, ``obj`` or ``senti``).

    Returns:
        The dict of :func:`affect_tf.regions.select_regions` as numpy arrays: ``region_probs``
        [N, K, 2], ``region_boxes`` [N, K, 4], ``region_valid`` [N, K], ``region_indices`` [N, K].
    """
    chosen = dataclasses.replace(region_config, selection=selection)
    outputs = regions_lib.select_regions(
        tf.constant(predictions["candidate_probs"]), tf.constant(predictions["objectness"]),
        tf.constant(predictions["num_valid"]), tf.constant(predictions["boxes"]),
        tf.constant(predictions["global_probs"]), config=chosen)
    return {key: value.numpy() for key, value in outputs.items()}


def _svm_features(global_probs, selected: dict, fusion_config: FusionConfig) -> np.ndarray:
    """The concatenated predictions of Eq. 8, ``[N, (K + 1) * 2]``, as the SVM takes them."""
    return np.asarray(fusion_lib.concat_features(global_probs, selected["region_probs"],
                                                 fusion_config.svm_features))


def fuse(fusion: str, global_probs, selected: dict, fusion_config: FusionConfig,
         svm=None) -> np.ndarray:
    """Class predictions [N] of one fusion (Eqs. 6-8); ``svm`` is a fitted SVMFusion for concat."""
    if fusion == "max":
        fused = fusion_lib.max_pooling(global_probs, selected["region_probs"])
    elif fusion == "sum":
        fused = fusion_lib.sum_pooling(
            global_probs, selected["region_probs"], fusion_config.beta, selected["region_valid"])
    elif fusion == "concat":
        return np.asarray(svm.predict(_svm_features(global_probs, selected, fusion_config)))
    else:
        raise ValueError(f"fusion must be one of {FUSIONS}. Received: fusion={fusion!r}")
    # numpy's argmax, not tf.argmax: exact ties go to the first class (0, negative), always.
    return np.argmax(np.asarray(fused), axis=-1)


def fit_svm(validation: dict, selected: dict, fusion_config: FusionConfig, seed: int):
    """Trains the concatenation SVM (Eq. 8) on validation-split predictions."""
    return fusion_lib.SVMFusion(
        kernel=fusion_config.svm_kernel, c=fusion_config.svm_c, seed=seed).fit(
            _svm_features(validation["global_probs"], selected, fusion_config), validation["label"])


def evaluate_all(validation: dict, test: dict, config: Config) -> tuple[dict, dict]:
    """Metrics of the global model and of every selection x fusion on the test predictions.

    Args:
        validation: predictions of the validation split (trains the SVMs).
        test: predictions of the test split.
        config: regions and fusion settings; an unfitted ``--senti_calibration`` temperature is
            fitted on ``validation`` (:func:`affect_tf.calibration.resolve`).

    Returns:
        (metrics by row name — ``global``, ``ar+concat``, ``obj+max``, ... —, the fitted SVM of
        each selection by name).
    """
    # The temperature of --senti_calibration, fitted on this validation part unless the caller
    # resolved it already (a served evaluation takes the evaluation's).
    config = calibration_lib.resolve(config, validation)
    results = {"global": metrics_lib.classification_metrics(
        test["label"], np.argmax(test["global_probs"], axis=-1))}
    svms = {}
    for selection in SELECTIONS:
        selected_test = select(test, config.regions, selection)
        selected_validation = select(validation, config.regions, selection)
        svms[selection] = fit_svm(validation, selected_validation, config.fusion, config.seed)
        for fusion in FUSIONS:
            predictions = fuse(fusion, test["global_probs"], selected_test, config.fusion,
                               svm=svms[selection])
            results[f"{selection}+{fusion}"] = metrics_lib.classification_metrics(
                test["label"], predictions)
    return results, svms


def region_hit_rates(test: dict, region_config: RegionConfig, key: str = "object_box",
                     threshold: float = 0.5) -> dict[str, float]:
    """How often the top-1 region by AR, Obj and Senti overlaps a ground-truth box (IoU >= t).

    Args:
        test: predictions holding ``key`` [N, 4], a normalized [y1, x1, y2, x2] box per image.

    Returns:
        ``{selection: share of images}``, plus ``best_candidate``: the share of images where any
        candidate reaches the threshold (the ceiling of every ranking).
    """
    truth = test[key]
    rates = {}
    for selection in SELECTIONS:
        selected = select(test, region_config, selection)
        iou = metrics_lib.box_iou(selected["region_boxes"][:, 0], truth)
        rates[selection] = float(np.mean((iou >= threshold) & selected["region_valid"][:, 0]))
    valid = np.arange(test["boxes"].shape[1])[None, :] < test["num_valid"][:, None]
    any_iou = metrics_lib.box_iou(test["boxes"], truth[:, None, :])
    rates["best_candidate"] = float(np.mean(((any_iou >= threshold) & valid).any(axis=1)))
    return rates


def figure_choice(test: dict, region_config: RegionConfig, count: int = 8) -> dict:
    """The test images the report's figure shows (half positive, half negative, in the order of
    the predictions) and their top-1 region by each selection.

    Args:
        test: the test part's predictions (:func:`collect_predictions`).
        region_config: K, alpha and the AR formula of the run.
        count: images in the figure.

    Returns:
        ``filename`` [n] str, ``label`` [n], ``global_probs`` [n, 2], ``boxes_<selection>``
        [n, 4] normalized [y1, x1, y2, x2] for each of :data:`SELECTIONS`, and
        ``boxes_truth`` [n, 4] where the dataset has ground-truth boxes; n <= count (0 for an
        empty test part).
    """
    labels = test["label"]
    chosen = np.concatenate([np.flatnonzero(labels == 1)[: count // 2],
                             np.flatnonzero(labels == 0)[: count - count // 2]]).astype(np.int64)
    choice = {"filename": np.asarray(test["filename"])[chosen].astype(str),
              "label": labels[chosen], "global_probs": test["global_probs"][chosen]}
    for selection in SELECTIONS:
        choice[f"boxes_{selection}"] = select(test, region_config, selection)[
            "region_boxes"][chosen, 0]
    if "object_box" in test:
        choice["boxes_truth"] = test["object_box"][chosen]
    return choice
