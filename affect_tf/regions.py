"""The batched affective-region graph (Algorithm 1, steps 5-7; Eqs. 4-5).

Given a batch of images and their m candidate boxes (the proposal stage's normalized-cut output),
this module crops every candidate with one ``tf.image.crop_and_resize``, classifies the crops with
the fine-tuned CNN, scores each candidate (Senti, Eq. 4; normalized objectness; AR, Eq. 5) and keeps
the top K per image. Everything is TensorFlow ops without a Python loop over regions, so it runs
eagerly, under ``tf.function``, inside ``tf.data.Dataset.map`` and in an exported SavedModel.

Conventions:
    * images: float32 RGB in [0, 255], ``[B, H, W, 3]`` (the classifier preprocesses itself).
    * boxes: normalized ``[y1, x1, y2, x2]`` in [0, 1] (the ``crop_and_resize`` convention),
      ``[B, m, 4]``; slots ``>= num_valid[b]`` are padding.
    * probabilities: ``[..., 2]``, index 0 = negative, 1 = positive.

This module never imports cv2 or scikit-learn (ARCHITECTURE.md).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import keras
import numpy as np
import tensorflow as tf

from affect_tf import calibration as calibration_lib
from affect_tf import views
from affect_tf.config import AR_FORMULAS, OBJ_NORMS, ConfigError, RegionConfig

# Where a top-K slot has no region (fewer than K candidates): the whole image.
WHOLE_IMAGE_BOX = (0.0, 0.0, 1.0, 1.0)

# The authors' released code: AR = 0.4 * Senti + 0.6 * Obj, both min-max normalized.
AUTHORS_SENTI_WEIGHT = 0.4
AUTHORS_OBJ_WEIGHT = 0.6


def _validate(config) -> None:
    """``config.validate()``, kept out of AutoGraph: these functions run inside ``tf.function``s,
    and AutoGraph would convert the plain-Python checks of config.py from their source file, which
    fails when that file changed on disk since the process started (seen during a run)."""
    tf.autograph.experimental.do_not_convert(config.validate)()


def _float32(values) -> tf.Tensor:
    """``values`` (array, list or tensor) as a float32 tensor (no copy when it already is one)."""
    return tf.cast(tf.convert_to_tensor(values), tf.float32)


def sentiment_score(probs) -> tf.Tensor:
    """Sentiment score of class probabilities: 1 minus the normalized entropy (Eq. 4).

    The paper writes Senti_i = sum_j y_ij log y_ij + 1 and says it lies in [0, 1] for two classes;
    dividing the (negative) entropy by log C keeps that range for any C (METHOD.md, C3).
    ``0 log 0`` is taken as its limit 0, so one-hot probabilities score exactly 1.

    Args:
        probs: class probabilities ``[..., C]`` (C >= 2, static), rows summing to 1.

    Returns:
        float32 ``[...]`` in [0, 1]: 0 for the uniform distribution, 1 for a one-hot one.
    """
    probs = _float32(probs)
    num_classes = probs.shape[-1]
    if num_classes is None or num_classes < 2:
        raise ValueError(
            "sentiment_score needs a static class axis of size >= 2. "
            f"Received: probs.shape={probs.shape}")
    # xlogy(0, 0) = 0: the guard against log(0) of Eq. 4.
    negative_entropy = tf.reduce_sum(tf.math.xlogy(probs, probs), axis=-1)
    senti = 1.0 + negative_entropy / math.log(num_classes)
    return tf.clip_by_value(senti, 0.0, 1.0)


def temperature_scaled(probs, temperature: float) -> tf.Tensor:
    """``softmax(log(probs) / T)``: the probabilities of logits divided by ``temperature``.

    What Senti reads with ``--senti_calibration`` (:mod:`affect_tf.calibration`). T = 1 returns
    ``probs`` itself, so the paper's path is untouched to the bit.

    Args:
        probs: class probabilities ``[..., C]``.
        temperature: T > 0 (a Python number: it is a fitted constant of the run).

    Returns:
        float32 ``[..., C]``, rows summing to 1.
    """
    probs = _float32(probs)
    if temperature == 1.0:
        return probs
    floor = tf.constant(calibration_lib.PROBABILITY_FLOOR, tf.float32)
    return tf.nn.softmax(tf.math.log(tf.maximum(probs, floor)) / temperature, axis=-1)


def _masked_minmax(values: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """Per-row min-max normalization over the valid entries; all-equal rows -> 1, invalid -> 0."""
    inf = tf.constant(np.inf, values.dtype)
    low = tf.reduce_min(tf.where(valid, values, inf), axis=-1, keepdims=True)
    high = tf.reduce_max(tf.where(valid, values, -inf), axis=-1, keepdims=True)
    span = high - low
    spread = span > 0  # False for all-equal rows and rows with no valid entry (span = -inf)
    scaled = (values - low) / tf.where(spread, span, tf.ones_like(span))
    normalized = tf.where(spread, scaled, tf.ones_like(values))
    return tf.where(valid, normalized, tf.zeros_like(values))


def normalize_objectness(objectness, valid, mode: str = "minmax") -> tf.Tensor:
    """Per-image normalization of proposal objectness to [0, 1] (input of Eq. 5; Algorithm 1, 6).

    EdgeBoxes scores are not calibrated and their scale varies from image to image, while Eq. 5
    mixes them with Senti in [0, 1] (METHOD.md, C4: min-max by default, as the authors' code).

    Args:
        objectness: ``[B, m]`` raw scores.
        valid: ``[B, m]`` bool, False for padding slots (excluded from the statistics).
        mode: ``minmax``: (x - min) / (max - min); ``max``: x / max, negatives clipped to 0.

    Returns:
        float32 ``[B, m]``: normalized scores; 1.0 where an image's valid scores are all equal
        (nothing to tell them apart) or, for ``max``, where its maximum is not positive; 0 in
        padding slots.
    """
    objectness = _float32(objectness)
    valid = tf.cast(tf.convert_to_tensor(valid), tf.bool)
    if mode == "minmax":
        return _masked_minmax(objectness, valid)
    if mode == "max":
        high = tf.reduce_max(tf.where(valid, objectness, -np.inf), axis=-1, keepdims=True)
        positive = high > 0
        scaled = objectness / tf.where(positive, high, tf.ones_like(high))
        normalized = tf.where(positive, tf.clip_by_value(scaled, 0.0, 1.0),
                              tf.ones_like(objectness))
        return tf.where(valid, normalized, tf.zeros_like(objectness))
    raise ValueError(f"mode must be one of {', '.join(OBJ_NORMS)}. Received: mode={mode!r}")


def ar_score(obj_norm, senti, alpha: float, formula: str = "paper", valid=None) -> tf.Tensor:
    """Affective-region score of each candidate (Eq. 5, or the authors' released code).

    * ``paper`` (Eq. 5): AR = sqrt((1 - alpha) * Obj^2 + alpha * Senti^2), alpha = 0.6 in the paper.
    * ``authors``: AR = 0.4 * minmax(Senti) + 0.6 * Obj, with Senti min-max normalized over the
      image's valid candidates as the released MATLAB code does; ``alpha`` is ignored (the code
      hard-codes the weights, and note it weights Obj, not Senti, by 0.6).

    Args:
        obj_norm: ``[B, m]`` normalized objectness (:func:`normalize_objectness`).
        senti: ``[B, m]`` sentiment scores (:func:`sentiment_score`).
        alpha: weight of Senti in Eq. 5, in [0, 1].
        formula: ``paper`` or ``authors``.
        valid: optional ``[B, m]`` bool; padding slots score 0 and are left out of the authors'
            min-max. None: every slot is valid.

    Returns:
        float32 ``[B, m]`` AR scores.
    """
    obj_norm = _float32(obj_norm)
    senti = _float32(senti)
    if isinstance(alpha, (int, float)) and not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1]. Received: alpha={alpha!r}")
    valid = (tf.ones_like(senti, dtype=tf.bool) if valid is None
             else tf.cast(tf.convert_to_tensor(valid), tf.bool))
    if formula == "paper":
        ar = tf.sqrt((1.0 - alpha) * tf.square(obj_norm) + alpha * tf.square(senti))
    elif formula == "authors":
        ar = AUTHORS_SENTI_WEIGHT * _masked_minmax(senti, valid) + AUTHORS_OBJ_WEIGHT * obj_norm
    else:
        raise ValueError(
            f"formula must be one of {', '.join(AR_FORMULAS)}. Received: formula={formula!r}")
    return tf.where(valid, ar, tf.zeros_like(ar))


def add_context(boxes, crop_size: int, context_pixels: int) -> tf.Tensor:
    """Enlarges boxes so that ``context_pixels`` of surroundings show around them in the crop.

    R-CNN style (the authors' code warps each box with 16 px of context to 224 x 224): the box is
    dilated so that, warped to ``crop_size``, the original box spans ``crop_size - 2 * context``
    pixels with ``context`` pixels on each side. The result is clipped to the image (no mean
    padding), so a box at the border gets less context on that side.

    Args:
        boxes: ``[..., 4]`` normalized ``[y1, x1, y2, x2]``.
        crop_size: side of the square crop, pixels.
        context_pixels: context on each side at crop scale, pixels (0: boxes unchanged).

    Returns:
        float32 ``[..., 4]`` normalized ``[y1, x1, y2, x2]`` in [0, 1].
    """
    boxes = _float32(boxes)
    if context_pixels < 0 or 2 * context_pixels >= crop_size:
        raise ValueError(
            f"context_pixels must lie in [0, crop_size / 2) = [0, {crop_size / 2:g}). "
            f"Received: context_pixels={context_pixels}")
    if context_pixels == 0:
        return boxes
    scale = context_pixels / (crop_size - 2 * context_pixels)
    y1, x1, y2, x2 = tf.unstack(boxes, axis=-1)
    dy = (y2 - y1) * scale
    dx = (x2 - x1) * scale
    grown = tf.stack([y1 - dy, x1 - dx, y2 + dy, x2 + dx], axis=-1)
    return tf.clip_by_value(grown, 0.0, 1.0)


def crop_regions(images, boxes, crop_size: int, context_pixels: int = 0) -> tf.Tensor:
    """Crops and warps every box of every image with one ``tf.image.crop_and_resize``.

    Args:
        images: ``[B, H, W, 3]`` RGB in [0, 255] (any real dtype).
        boxes: ``[B, m, 4]`` normalized ``[y1, x1, y2, x2]``; box ``j`` of image ``b`` is cropped
            from image ``b``.
        crop_size: side S of the square crops (the CNN input size).
        context_pixels: context added around each box at crop scale (:func:`add_context`).

    Returns:
        float32 ``[B * m, S, S, 3]``, image-major: crop ``b * m + j`` is box ``j`` of image ``b``.
    """
    images = _float32(images)
    boxes = add_context(boxes, crop_size, context_pixels)
    batch = tf.shape(boxes)[0]
    num_boxes = tf.shape(boxes)[1]
    box_indices = tf.repeat(tf.range(batch, dtype=tf.int32), num_boxes)
    return tf.image.crop_and_resize(
        images, tf.reshape(boxes, [-1, 4]), box_indices, [crop_size, crop_size])


def _whole_image_slots(global_probs: tf.Tensor, batch, count) -> tuple[tf.Tensor, tf.Tensor]:
    """``count`` slots per image that hold the whole image (METHOD.md, C5: the padding of top K).

    Returns:
        (boxes ``[B, count, 4]`` all ``WHOLE_IMAGE_BOX``, probabilities ``[B, count, C]`` all
        ``global_probs``).
    """
    boxes = tf.broadcast_to(tf.constant(WHOLE_IMAGE_BOX), [batch, count, 4])
    probs = tf.broadcast_to(global_probs[:, None, :], [batch, count, global_probs.shape[-1]])
    return boxes, probs


def _classify_valid_candidates(classifier, images, boxes, valid, global_probs, crop_size,
                               context_pixels, crops_per_call):
    """Softmax of the CNN on every valid candidate, ``crops_per_call`` crops a call; ``[B, m, C]``.

    Only valid slots are cropped (padding slots take ``global_probs``), and each chunk is cropped
    inside the loop body, so at most ``crops_per_call`` crops and their activations are alive at
    once, whatever B x m is.
    """
    batch = tf.shape(boxes)[0]
    num_boxes = tf.shape(boxes)[1]
    num_classes = global_probs.shape[-1]
    flat_boxes = tf.reshape(add_context(boxes, crop_size, context_pixels), [-1, 4])
    # Flat slot ids b * m + j of the valid candidates; image index = id // m.
    slots = tf.cast(tf.where(tf.reshape(valid, [-1]))[:, 0], tf.int32)
    slot_boxes = tf.gather(flat_boxes, slots)
    slot_images = slots // tf.maximum(num_boxes, 1)
    total = tf.shape(slots)[0]
    num_chunks = (total + crops_per_call - 1) // crops_per_call

    def body(chunk, probs):
        start = chunk * crops_per_call
        end = tf.minimum(start + crops_per_call, total)
        crops = tf.image.crop_and_resize(
            images, slot_boxes[start:end], slot_images[start:end], [crop_size, crop_size])
        logits = tf.cast(classifier(crops, training=False), tf.float32)
        # Eq. 3: softmax over the two sentiment classes.
        rows = tf.range(start, end)[:, None]
        return chunk + 1, tf.tensor_scatter_nd_update(probs, rows, tf.nn.softmax(logits, axis=-1))

    # parallel_iterations=1: in graph mode the loop may otherwise run several chunks at once,
    # multiplying peak memory by that factor.
    _, valid_probs = tf.while_loop(
        lambda chunk, _: chunk < num_chunks, body,
        (tf.constant(0), tf.zeros([total, num_classes], tf.float32)),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, num_classes])),
        parallel_iterations=1)

    # Padding slots: the whole-image prediction (METHOD.md, C5); their scores are masked anyway.
    _, probs = _whole_image_slots(global_probs, batch, num_boxes)
    probs = tf.tensor_scatter_nd_update(tf.reshape(probs, [-1, num_classes]), slots[:, None],
                                        valid_probs)
    return tf.reshape(probs, [batch, num_boxes, num_classes])


def _checked_global_probs(global_probs) -> tf.Tensor:
    global_probs = _float32(global_probs)
    if global_probs.shape.rank != 2 or global_probs.shape[-1] is None:
        raise ValueError(
            "global_probs must be [B, C] with a static C. "
            f"Received: global_probs.shape={global_probs.shape}")
    return global_probs


def _valid_slots(num_valid, num_boxes):
    """``num_valid`` clipped to [0, m] and the ``[B, m]`` bool mask of the valid slots."""
    num_valid = tf.clip_by_value(tf.cast(tf.convert_to_tensor(num_valid), tf.int32), 0, num_boxes)
    return num_valid, tf.range(num_boxes)[None, :] < num_valid[:, None]


def _candidate_scores(candidate_probs, objectness, valid, config: RegionConfig) -> dict:
    """Senti (Eq. 4, of the probabilities at the run's temperature), normalized Obj and AR
    (Eq. 5) of every slot ``[B, m]``; padding scores 0."""
    if config.senti_calibration != "none":
        # The temperature is fitted on the validation part; scoring with the unfitted setting
        # would silently use T = 1.
        raise ValueError(
            "Region scores need the fitted temperature: pass the settings through "
            "affect_tf.calibration.resolve first. Received: "
            f"senti_calibration={config.senti_calibration!r}")
    calibrated = temperature_scaled(candidate_probs, config.senti_temperature)
    senti = tf.where(valid, sentiment_score(calibrated), tf.zeros_like(objectness))
    obj_norm = normalize_objectness(objectness, valid, config.obj_norm)
    ar = ar_score(obj_norm, senti, config.alpha, config.ar_formula, valid)
    return {"senti": senti, "objectness_norm": obj_norm, "ar": ar}


def _top_k_slots(ranking, valid, num_valid, top_k: int):
    """The K best valid slots of each image by ``ranking`` ``[B, m]``, best first (step 7).

    Returns:
        (scores ``[B, K]``, indices ``[B, K]`` into the m slots followed by ``max(K - m, 0)``
        padding slots, region_valid ``[B, K]`` bool: False where an image has fewer than K).
    """
    # Fewer than K slots (m < K): pad with K - m columns so top_k always sees K; padding and
    # invalid slots rank last (-inf) and are marked invalid.
    pad = tf.maximum(top_k - tf.shape(ranking)[1], 0)
    masked = tf.pad(tf.where(valid, ranking, tf.fill(tf.shape(ranking), -np.inf)),
                    [[0, 0], [0, pad]], constant_values=-np.inf)
    # top_k puts the lower index first among equal scores: the ranking is deterministic.
    scores, indices = tf.math.top_k(masked, k=top_k, sorted=True)
    region_valid = tf.range(top_k)[None, :] < tf.minimum(num_valid, top_k)[:, None]
    return scores, indices, region_valid


def _gather_regions(boxes, candidate_probs, global_probs, indices, region_valid):
    """Boxes ``[B, K, 4]`` and probabilities ``[B, K, C]`` of the chosen slots.

    ``indices`` may point past the m candidates (into :func:`_top_k_slots`' padding); every empty
    slot (``region_valid`` False) holds the whole image and its prediction.
    """
    batch = tf.shape(boxes)[0]
    top_k = tf.shape(indices)[1]
    pad_boxes, pad_probs = _whole_image_slots(
        global_probs, batch, tf.maximum(top_k - tf.shape(boxes)[1], 0))
    whole_boxes, whole_probs = _whole_image_slots(global_probs, batch, top_k)
    mask = region_valid[:, :, None]
    region_boxes = tf.where(
        mask, tf.gather(tf.concat([boxes, pad_boxes], axis=1), indices, batch_dims=1),
        whole_boxes)
    region_probs = tf.where(
        mask, tf.gather(tf.concat([candidate_probs, pad_probs], axis=1), indices, batch_dims=1),
        whole_probs)
    return region_boxes, region_probs


def select_regions(candidate_probs, objectness, num_valid, boxes, global_probs, *,
                   config: RegionConfig) -> dict[str, tf.Tensor]:
    """Scores candidates whose CNN probabilities are known and keeps the top K (steps 5-7).

    The scoring half of :func:`discover_regions`: the CNN runs once per candidate and every
    selection (``ar``, ``obj``, ``senti``), K, alpha or normalization is then a cheap re-ranking.

    Args:
        candidate_probs: ``[B, m, C]`` softmax of each candidate crop.
        objectness: ``[B, m]`` raw proposal scores.
        num_valid: ``[B]`` int; slots ``j >= num_valid[b]`` are padding (never chosen).
        boxes: ``[B, m, 4]`` candidate boxes, normalized ``[y1, x1, y2, x2]``.
        global_probs: ``[B, C]`` softmax of the whole image (static C).
        config: K, alpha, selection, objectness normalization, AR formula.

    Returns:
        The dict described in :func:`discover_regions` (``candidate_probs`` is passed through).
    """
    _validate(config)
    candidate_probs = _float32(candidate_probs)
    objectness = _float32(objectness)
    boxes = _float32(boxes)
    global_probs = _checked_global_probs(global_probs)
    num_valid, valid = _valid_slots(num_valid, tf.shape(objectness)[1])
    scores = _candidate_scores(candidate_probs, objectness, valid, config)
    ranking = scores[{"ar": "ar", "obj": "objectness_norm", "senti": "senti"}[config.selection]]
    top_scores, top_indices, region_valid = _top_k_slots(ranking, valid, num_valid, config.top_k)
    region_boxes, region_probs = _gather_regions(
        boxes, candidate_probs, global_probs, top_indices, region_valid)
    return {
        "candidate_probs": candidate_probs,
        **scores,
        "region_indices": tf.where(region_valid, top_indices, -tf.ones_like(top_indices)),
        "region_boxes": region_boxes,
        "region_probs": region_probs,
        "region_scores": tf.where(region_valid, top_scores, tf.zeros_like(top_scores)),
        "region_valid": region_valid,
    }


def discover_regions(classifier, images, boxes, objectness, num_valid, global_probs, *,
                     config: RegionConfig, crop_size: int,
                     context_pixels: int = 0) -> dict[str, tf.Tensor]:
    """Classifies every candidate box and keeps the top K affective regions (Algorithm 1, 5-7).

    Args:
        classifier: the fine-tuned CNN, float32 RGB [0, 255] ``[N, S, S, 3]`` -> logits ``[N, C]``.
        images: ``[B, H, W, 3]`` float32 RGB in [0, 255]; crops are taken at this resolution.
        boxes: ``[B, m, 4]`` candidate boxes, normalized ``[y1, x1, y2, x2]``.
        objectness: ``[B, m]`` raw proposal scores.
        num_valid: ``[B]`` int; slots ``j >= num_valid[b]`` are padding (never cropped or chosen).
        global_probs: ``[B, C]`` softmax of the whole image (static C).
        config: K, alpha, selection, objectness normalization, AR formula, chunk size.
        crop_size: side S of the region crops (the classifier's input size).
        context_pixels: context around each box at crop scale (authors' code: 16 at 224).

    Returns:
        A dict of float32 tensors unless noted:
            ``candidate_probs`` ``[B, m, C]``: CNN softmax of each candidate (padding: global).
            ``senti`` ``[B, m]``: Eq. 4 (padding: 0).
            ``objectness_norm`` ``[B, m]``: normalized Obj (padding: 0).
            ``ar`` ``[B, m]``: AR score, Eq. 5 or the authors' formula (padding: 0).
            ``region_indices`` ``[B, K]`` int32: chosen candidate slots, best first (-1: none).
            ``region_boxes`` ``[B, K, 4]``: their boxes without context (none: ``[0, 0, 1, 1]``).
            ``region_probs`` ``[B, K, C]``: their probabilities (none: ``global_probs``).
            ``region_scores`` ``[B, K]``: the ranking score of ``config.selection`` (none: 0).
            ``region_valid`` ``[B, K]`` bool: False for the empty slots.
        An image with fewer than K valid candidates fills its last slots with the whole image
        (METHOD.md, C5), so the concatenated feature keeps its size.
    """
    _validate(config)
    candidate_probs = classify_candidates(
        classifier, images, boxes, num_valid, global_probs, crop_size=crop_size,
        context_pixels=context_pixels, crops_per_call=config.crops_per_call)
    return select_regions(candidate_probs, objectness, num_valid, boxes, global_probs,
                          config=config)


def classify_candidates(classifier, images, boxes, num_valid, global_probs, *, crop_size: int,
                        context_pixels: int = 0, crops_per_call: int = 64) -> tf.Tensor:
    """The CNN's softmax on every valid candidate (Eq. 3), ``[B, m, C]`` float32; padding slots
    hold ``global_probs``. The classifying half of :func:`discover_regions`: what the
    evaluation stores, before any scoring.

    Args:
        classifier, images, boxes, num_valid, global_probs, crop_size, context_pixels: as
            :func:`discover_regions`.
        crops_per_call: region crops per CNN call (bounds peak memory).
    """
    images = _float32(images)
    boxes = _float32(boxes)
    global_probs = _checked_global_probs(global_probs)
    _, valid = _valid_slots(num_valid, tf.shape(boxes)[1])
    return _classify_valid_candidates(classifier, images, boxes, valid, global_probs, crop_size,
                                      context_pixels, crops_per_call)


@keras.saving.register_keras_serializable(package="affect_tf")
class RegionDiscovery(keras.layers.Layer):
    """The region graph as a Keras layer, for evaluation pipelines and the SavedModel export.

    Args:
        classifier: the fine-tuned CNN (:func:`affect_tf.model.build_classifier`).
        top_k: K regions kept per image.
        alpha: weight of Senti in Eq. 5.
        selection: ``ar``, ``obj`` or ``senti``.
        obj_norm: ``minmax`` or ``max``.
        ar_formula: ``paper`` or ``authors``.
        senti_temperature: temperature of the softmax Senti reads (1: the CNN's own; a fitted
            one comes from :func:`affect_tf.calibration.resolve`).
        crops_per_call: region crops per CNN call.
        crop_size: side of the region crops; None: the classifier's input side.
        context_pixels: context around each box at crop scale.
        resize_size: the whole-image view's resize side (:mod:`affect_tf.views`); None: the
            crop size (the view is then the whole image warped to the CNN's input).
        ten_crop: the whole-image view averages the authors' ten crops.
        **kwargs: ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: a dict with ``image`` ``[B, H, W, 3]`` float32 RGB [0, 255], ``boxes``
            ``[B, m, 4]`` normalized ``[y1, x1, y2, x2]``, ``objectness`` ``[B, m]``,
            ``num_valid`` ``[B]`` int32, and optionally ``global_probs`` ``[B, 2]`` (the
            whole-image view's, :func:`affect_tf.views.whole_image_probs`, when absent).

    Returns:
        The dict of :func:`discover_regions` plus ``global_probs`` ``[B, 2]``.
    """

    def __init__(self, classifier: keras.Model, top_k: int = 8, alpha: float = 0.6,
                 selection: str = "ar", obj_norm: str = "minmax", ar_formula: str = "paper",
                 senti_temperature: float = 1.0, crops_per_call: int = 64,
                 crop_size: int | None = None, context_pixels: int = 0,
                 resize_size: int | None = None, ten_crop: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.classifier = classifier
        self.top_k = top_k
        self.alpha = alpha
        self.selection = selection
        self.obj_norm = obj_norm
        self.ar_formula = ar_formula
        self.senti_temperature = float(senti_temperature)
        self.crops_per_call = crops_per_call
        self.crop_size = crop_size
        self.context_pixels = context_pixels
        self.resize_size = resize_size
        self.ten_crop = ten_crop
        self.region_config = RegionConfig(
            top_k=top_k, alpha=alpha, selection=selection, obj_norm=obj_norm,
            ar_formula=ar_formula, senti_temperature=self.senti_temperature,
            crops_per_call=crops_per_call)
        try:
            _validate(self.region_config)
        except ConfigError as error:
            raise ValueError(str(error)) from error
        if crop_size is None:
            input_shape = getattr(classifier, "input_shape", None)
            side = input_shape[1] if input_shape is not None and len(input_shape) == 4 else None
            if side is None:
                raise ValueError(
                    "crop_size is needed when the classifier has no static square input. "
                    "Received: crop_size=None")
            self._crop_size = int(side)
        else:
            self._crop_size = int(crop_size)
        add_context(tf.zeros([4]), self._crop_size, context_pixels)  # validates context_pixels
        # No weights of its own (the classifier is built): nothing to build from input shapes.
        self.built = True

    @classmethod
    def from_region_config(cls, classifier: keras.Model, config: RegionConfig, *,
                           crop_size: int | None = None, context_pixels: int = 0,
                           **kwargs) -> "RegionDiscovery":
        """Builds the layer from a :class:`RegionConfig` (``ModelConfig.region_context`` ->
        ``context_pixels``). The settings must be resolved (:func:`affect_tf.calibration.resolve`):
        the layer carries a fixed temperature."""
        if config.senti_calibration != "none":
            raise ValueError(
                "RegionDiscovery carries a fixed temperature: resolve the settings with "
                "affect_tf.calibration.resolve first. Received: "
                f"senti_calibration={config.senti_calibration!r}")
        return cls(classifier, top_k=config.top_k, alpha=config.alpha,
                   selection=config.selection, obj_norm=config.obj_norm,
                   ar_formula=config.ar_formula, senti_temperature=config.senti_temperature,
                   crops_per_call=config.crops_per_call,
                   crop_size=crop_size, context_pixels=context_pixels, **kwargs)

    def call(self, inputs: Mapping[str, Any]) -> dict[str, tf.Tensor]:
        missing = sorted({"image", "boxes", "objectness", "num_valid"} - set(inputs))
        if missing:
            raise ValueError(
                "RegionDiscovery needs the keys image, boxes, objectness, num_valid "
                f"(and optionally global_probs). Missing: {missing}. "
                f"Received: keys={sorted(inputs)}")
        images = _float32(inputs["image"])
        global_probs = inputs.get("global_probs")
        if global_probs is None:
            global_probs = views.whole_image_probs(
                self.classifier, images, image_size=self._crop_size,
                resize_size=self.resize_size or self._crop_size, ten_crop=self.ten_crop)
        outputs = discover_regions(
            self.classifier, images, inputs["boxes"], inputs["objectness"], inputs["num_valid"],
            global_probs, config=self.region_config, crop_size=self._crop_size,
            context_pixels=self.context_pixels)
        outputs["global_probs"] = tf.cast(global_probs, tf.float32)
        return outputs

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "classifier": keras.saving.serialize_keras_object(self.classifier),
            "top_k": self.top_k,
            "alpha": self.alpha,
            "selection": self.selection,
            "obj_norm": self.obj_norm,
            "ar_formula": self.ar_formula,
            "senti_temperature": self.senti_temperature,
            "crops_per_call": self.crops_per_call,
            "crop_size": self.crop_size,
            "context_pixels": self.context_pixels,
            "resize_size": self.resize_size,
            "ten_crop": self.ten_crop,
        })
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "RegionDiscovery":
        config = dict(config)
        config["classifier"] = keras.saving.deserialize_keras_object(config["classifier"])
        return cls(**config)


__all__ = [
    "RegionDiscovery", "add_context", "ar_score", "classify_candidates", "crop_regions",
    "discover_regions", "normalize_objectness", "select_regions", "sentiment_score",
    "temperature_scaled",
]
