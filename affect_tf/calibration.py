"""Temperature scaling of the CNN's probabilities for the sentiment score (Eq. 4), fitted on the
validation part (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017).

Senti (Eq. 4) is one minus the entropy of a candidate's class probabilities, and Eq. 5 mixes it
with objectness as if both were scores in [0, 1] of comparable spread. A briefly fine-tuned CNN
is over-confident: on the demo most crops, clutter included, get probabilities within 1e-3 of
one-hot, their Senti saturates at 1 and Eq. 5 then ranks by objectness alone. Dividing the
logits by a temperature T > 1 (fitted to minimize the negative log-likelihood of the validation
part's whole-image predictions, labels the CNN never trained on) gives Senti its spread back
without changing its order: for two classes Senti is a monotone function of |logit margin|, and
T scales every margin alike. So only Eq. 5's mix changes; T = 1 is the paper.

Nothing here reads a file; :func:`resolve` turns a run's settings into the ones its region
scoring uses, given its validation predictions.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from affect_tf.config import Config

# The fitted temperature stays in this range: below it the scaling would sharpen probabilities
# past what float32 represents, above it every Senti would be ~0.
TEMPERATURE_RANGE = (0.05, 100.0)
# Probabilities are clipped here before the log (a float32 softmax can round a class to 0).
PROBABILITY_FLOOR = 1e-30
# Golden-section steps on 1 / T: the bracket shrinks by 0.618 per step, 80 steps reach float64.
_SEARCH_STEPS = 80


def _log_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probs, np.float64), PROBABILITY_FLOOR, 1.0))


def scaled_log_likelihood(probs, labels, inverse_temperature: float) -> float:
    """Mean log-likelihood of ``labels`` under ``softmax(log(probs) / T)``, ``1 / T`` given.

    Args:
        probs: ``[N, C]`` class probabilities.
        labels: ``[N]`` int class indices.
        inverse_temperature: ``1 / T`` (> 0).
    """
    logits = _log_probs(probs) * inverse_temperature
    rows = np.arange(len(labels))
    top = np.argmax(logits, axis=-1)
    shifted = logits - logits[rows, top][:, None]
    # log(1 + the other classes' terms): log1p keeps the likelihood's tiny differences near
    # certainty, which log(sum) would round away (a flat optimum the search could stop anywhere
    # in).
    others = np.exp(shifted)
    others[rows, top] = 0.0
    log_norm = np.log1p(others.sum(axis=-1))
    return float(np.mean(shifted[rows, labels] - log_norm))


def fit_temperature(probs, labels) -> float:
    """The temperature T that maximizes the likelihood of ``labels`` (temperature scaling).

    The negative log-likelihood is convex in 1 / T (a log-sum-exp of terms linear in it, minus a
    linear term), so a golden-section search over 1 / T in :data:`TEMPERATURE_RANGE` finds its
    minimum; float64 and a fixed number of steps make the result deterministic.

    Args:
        probs: ``[N, C]`` class probabilities (the whole-image predictions of the validation
            part), C >= 2.
        labels: ``[N]`` int class indices in [0, C).

    Returns:
        T in :data:`TEMPERATURE_RANGE`; a part with one class only pushes T to the low end.

    Raises:
        ValueError: empty input, mismatched shapes, labels out of range or probabilities that
            are not finite.
    """
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels)
    if probs.ndim != 2 or probs.shape[1] < 2 or probs.shape[0] == 0:
        raise ValueError(f"fit_temperature needs probabilities [N, C] with N >= 1 and C >= 2. "
                         f"Received: shape {probs.shape}")
    if labels.shape != (probs.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"fit_temperature needs one int label per row of probabilities "
                         f"({probs.shape[0]}). Received: labels of shape {labels.shape}, "
                         f"dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= probs.shape[1]:
        raise ValueError(f"Labels must lie in [0, {probs.shape[1]}). Received: "
                         f"{labels.min()}..{labels.max()}")
    if not np.all(np.isfinite(probs)):
        raise ValueError("fit_temperature got probabilities that are not finite "
                         f"({int(np.sum(~np.isfinite(probs)))} values).")
    low, high = 1.0 / TEMPERATURE_RANGE[1], 1.0 / TEMPERATURE_RANGE[0]
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    left, right = high - ratio * (high - low), low + ratio * (high - low)
    left_value = scaled_log_likelihood(probs, labels, left)
    right_value = scaled_log_likelihood(probs, labels, right)
    for _ in range(_SEARCH_STEPS):
        if left_value >= right_value:  # The maximum lies in [low, right].
            high, right, right_value = right, left, left_value
            left = high - ratio * (high - low)
            left_value = scaled_log_likelihood(probs, labels, left)
        else:
            low, left, left_value = left, right, right_value
            right = low + ratio * (high - low)
            right_value = scaled_log_likelihood(probs, labels, right)
    return float(1.0 / ((low + high) / 2.0))


def resolve(config: Config, validation: dict) -> Config:
    """The settings the region scoring runs with: ``--senti_calibration=temperature`` replaced by
    the temperature fitted on ``validation``; anything else returned unchanged.

    Every consumer of the run's predictions (evaluation, served evaluation, export, experiments,
    predictor) scores regions with the returned settings, so they all use one temperature: the
    one fitted on the paper path's validation predictions.

    Args:
        config: the run's settings.
        validation: the validation part's predictions: ``global_probs`` [N, 2], ``label`` [N].

    Returns:
        ``config`` with ``regions.senti_calibration = "none"`` and ``regions.senti_temperature``
        the fitted T, or ``config`` itself when no calibration is asked for.
    """
    regions = config.regions
    if regions.senti_calibration == "none":
        return config
    temperature = fit_temperature(validation["global_probs"],
                                  np.asarray(validation["label"], np.int64))
    return dataclasses.replace(config, regions=dataclasses.replace(
        regions, senti_calibration="none", senti_temperature=temperature))


__all__ = ["TEMPERATURE_RANGE", "fit_temperature", "resolve", "scaled_log_likelihood"]
