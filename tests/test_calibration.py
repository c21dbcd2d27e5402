"""Temperature scaling of Senti's probabilities (affect_tf/calibration.py, regions.py)."""

import dataclasses

import numpy as np
import pytest

from affect_tf import calibration
from affect_tf import config as config_lib
from affect_tf import regions


def _softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _overconfident(temperature, count=4000, seed=0):
    """Probabilities of logits whose labels were drawn at ``temperature``: a CNN that is
    over-confident by that factor."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 4.0, size=(count, 2))
    true_probs = _softmax(logits / temperature)
    labels = (rng.random(count) < true_probs[:, 1]).astype(np.int64)
    return _softmax(logits), labels


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_fit_recovers_the_temperature_labels_were_drawn_at(temperature):
    probs, labels = _overconfident(temperature)
    assert calibration.fit_temperature(probs, labels) == pytest.approx(temperature, rel=0.12)


def test_fitted_temperature_maximizes_the_likelihood():
    probs, labels = _overconfident(2.0, count=500, seed=3)
    fitted = calibration.fit_temperature(probs, labels)
    best = calibration.scaled_log_likelihood(probs, labels, 1.0 / fitted)
    for other in (fitted * 0.9, fitted * 1.1, 1.0):
        assert best >= calibration.scaled_log_likelihood(probs, labels, 1.0 / other)


def test_fit_is_deterministic_and_bounded():
    probs, labels = _overconfident(2.0, count=200, seed=1)
    assert calibration.fit_temperature(probs, labels) == calibration.fit_temperature(probs, labels)
    # Always right: sharpening helps without end, so T stops at the range's low end.
    right = np.where(labels[:, None] == np.arange(2)[None], 0.9, 0.1)
    low, _ = calibration.TEMPERATURE_RANGE
    assert calibration.fit_temperature(right, labels) == pytest.approx(low, rel=1e-3)


@pytest.mark.parametrize("probs, labels, message", [
    (np.zeros((0, 2)), np.zeros(0, np.int64), "N >= 1"),
    (np.full((3, 2), 0.5), np.zeros(2, np.int64), "one int label per row"),
    (np.full((3, 2), 0.5), np.zeros(3), "one int label per row"),
    (np.full((3, 2), 0.5), np.array([0, 1, 2]), r"Labels must lie in \[0, 2\)"),
    (np.array([[0.5, np.nan]] * 3), np.zeros(3, np.int64), "not finite"),
])
def test_fit_names_what_it_received(probs, labels, message):
    with pytest.raises(ValueError, match=message):
        calibration.fit_temperature(probs, labels)


def _config(calibration_setting):
    return config_lib.Config(regions=config_lib.RegionConfig(senti_calibration=calibration_setting))


def test_resolve_fits_once_and_leaves_the_paper_untouched():
    probs, labels = _overconfident(2.0, count=300, seed=2)
    validation = {"global_probs": probs, "label": labels}
    paper = _config("none")
    assert calibration.resolve(paper, validation) is paper
    resolved = calibration.resolve(_config("temperature"), validation)
    assert resolved.regions.senti_calibration == "none"
    assert resolved.regions.senti_temperature == calibration.fit_temperature(probs, labels)
    assert dataclasses.replace(resolved.regions, senti_temperature=1.0,
                               senti_calibration="temperature") == _config("temperature").regions


def test_config_refuses_a_fixed_and_a_fitted_temperature_together():
    with pytest.raises(config_lib.ConfigError, match="set one or the other"):
        config_lib.RegionConfig(senti_calibration="temperature", senti_temperature=2.0).validate()


def test_temperature_keeps_the_senti_order_and_spreads_saturated_scores():
    rng = np.random.default_rng(0)
    probs = _softmax(rng.normal(0.0, 12.0, size=(1, 40, 2))).astype(np.float32)
    np.testing.assert_array_equal(regions.temperature_scaled(probs, 1.0).numpy(), probs)
    raw = regions.sentiment_score(probs).numpy()[0]
    tempered = regions.sentiment_score(regions.temperature_scaled(probs, 3.0)).numpy()[0]
    # Order kept (two classes: Senti is monotone in |margin|, which T scales alike) ...
    distinct = np.abs(raw[:, None] - raw[None, :]) > 1e-6
    assert np.all((np.sign(raw[:, None] - raw[None, :]) == np.sign(
        tempered[:, None] - tempered[None, :]))[distinct])
    # ... and the saturated scores (within 1e-3 of 1) are told apart again.
    saturated = raw > 0.999
    assert saturated.sum() >= 5
    assert np.ptp(tempered[saturated]) > 20 * np.ptp(raw[saturated])


def test_scoring_refuses_an_unfitted_temperature():
    config = config_lib.RegionConfig(top_k=1, senti_calibration="temperature")
    with pytest.raises(ValueError, match="calibration.resolve"):
        regions.select_regions(np.full((1, 2, 2), 0.5), np.ones((1, 2)), [2],
                               np.tile([[0.0, 0.0, 1.0, 1.0]], (1, 2, 1)),
                               np.full((1, 2), 0.5), config=config)


def test_the_temperature_changes_which_region_eq5_ranks_first():
    # Candidate 0: the best objectness, a confident crop; candidate 1: lower objectness, an even
    # more confident crop. Saturated, both Senti are ~1 and objectness decides; at T = 4 the
    # margins show.
    # Candidate 2 (uncertain, no objectness) keeps the min-max of Obj from zeroing candidate 1.
    logits = np.array([[[0.0, 9.0], [0.0, 16.0], [0.0, 0.0]]])
    probs = _softmax(logits).astype(np.float32)
    arguments = (probs, np.array([[1.0, 0.8, 0.0]]), [3],
                 np.tile([[0.0, 0.0, 1.0, 1.0]], (1, 3, 1)), np.full((1, 2), 0.5))
    raw = regions.select_regions(*arguments, config=config_lib.RegionConfig(top_k=1))
    tempered = regions.select_regions(
        *arguments, config=config_lib.RegionConfig(top_k=1, senti_temperature=4.0))
    assert int(raw["region_indices"][0, 0]) == 0
    assert int(tempered["region_indices"][0, 0]) == 1
