"""Tests of affect_tf.fusion: Eqs. 6-8 by hand (array and tensor inputs), FusionLayer, SVMFusion."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from affect_tf import fusion

# Two images, K = 2 regions. Image 1's second slot is padding holding the global prediction.
GLOBAL = np.array([[0.6, 0.4], [0.3, 0.7]], np.float32)
REGIONS = np.array([[[0.2, 0.8], [0.7, 0.3]],
                    [[0.1, 0.9], [0.3, 0.7]]], np.float32)
VALID = np.array([[True, True], [True, False]])


@pytest.mark.parametrize("as_tensor", [False, True])
def test_max_pooling_by_hand(as_tensor):
    g, r = (tf.constant(GLOBAL), tf.constant(REGIONS)) if as_tensor else (GLOBAL, REGIONS)
    out = fusion.max_pooling(g, r)
    assert tf.is_tensor(out)  # One implementation: arrays in, a tensor out.
    np.testing.assert_allclose(np.asarray(out), [[0.7, 0.8], [0.3, 0.9]])


def test_max_pooling_unchanged_by_global_padding():
    padded = np.concatenate([REGIONS, np.repeat(GLOBAL[:, None], 3, axis=1)], axis=1)
    np.testing.assert_allclose(fusion.max_pooling(GLOBAL, padded),
                               fusion.max_pooling(GLOBAL, REGIONS))


@pytest.mark.parametrize("as_tensor", [False, True])
def test_sum_pooling_by_hand(as_tensor):
    g, r, v = ((tf.constant(GLOBAL), tf.constant(REGIONS), tf.constant(VALID)) if as_tensor
               else (GLOBAL, REGIONS, VALID))
    out = np.asarray(fusion.sum_pooling(g, r, beta=0.3, region_valid=v))
    # Image 0: 0.7 * [0.6, 0.4] + 0.3 * mean([0.2, 0.8], [0.7, 0.3]) = [0.555, 0.445].
    # Image 1: only region 0 is valid: 0.7 * [0.3, 0.7] + 0.3 * [0.1, 0.9] = [0.24, 0.76].
    np.testing.assert_allclose(out, [[0.555, 0.445], [0.24, 0.76]], atol=1e-6)
    # Without a mask every slot counts: image 1 mean = [0.2, 0.8] -> [0.27, 0.73].
    unmasked = np.asarray(fusion.sum_pooling(g, r, beta=0.3))
    np.testing.assert_allclose(unmasked, [[0.555, 0.445], [0.27, 0.73]], atol=1e-6)


def test_sum_pooling_of_float32_is_the_float64_mean_rounded_once():
    # The reference evaluation computes with numpy: the fused scores must equal its float64 mean
    # rounded to float32 bit for bit, so argmax (and every metric) is the same near ties.
    rng = np.random.default_rng(0)
    positive = rng.random((64, 8)).astype(np.float32)
    regions = np.stack([1 - positive, positive], axis=-1)
    global_probs = regions[:, 0] * np.float32(0.5) + np.float32(0.25)
    valid = rng.random((64, 8)) < 0.7
    weights = valid.astype(np.float64)
    count = weights.sum(axis=1, keepdims=True)
    mean = np.where(count > 0, (regions * weights[..., None]).sum(axis=1) / np.maximum(count, 1),
                    global_probs)
    expected = ((1.0 - 0.3) * global_probs + 0.3 * mean).astype(np.float32)
    out = np.asarray(fusion.sum_pooling(global_probs, regions, beta=0.3, region_valid=valid))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_sum_pooling_no_valid_region_gives_global(as_tensor):
    valid = np.zeros((2, 2), bool)
    args = (GLOBAL, REGIONS, valid)
    if as_tensor:
        args = tuple(tf.constant(a) for a in args)
    out = fusion.sum_pooling(args[0], args[1], beta=0.3, region_valid=args[2])
    np.testing.assert_allclose(np.asarray(out), GLOBAL, atol=1e-7)
    with pytest.raises(ValueError, match="Received: beta=1.5"):
        fusion.sum_pooling(GLOBAL, REGIONS, beta=1.5)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_concat_features_order(as_tensor):
    g, r = (tf.constant(GLOBAL), tf.constant(REGIONS)) if as_tensor else (GLOBAL, REGIONS)
    out = np.asarray(fusion.concat_features(g, r))
    np.testing.assert_allclose(out, [[0.6, 0.4, 0.2, 0.8, 0.7, 0.3],
                                     [0.3, 0.7, 0.1, 0.9, 0.3, 0.7]])


def test_concat_features_in_log_probabilities_clip_saturated_predictions():
    out = np.asarray(fusion.concat_features(GLOBAL, REGIONS, "log_probabilities"))
    np.testing.assert_allclose(out, np.log([[0.6, 0.4, 0.2, 0.8, 0.7, 0.3],
                                            [0.3, 0.7, 0.1, 0.9, 0.3, 0.7]]), rtol=1e-6)
    # A saturated softmax (an exact 0) gives log(1e-6), not -inf: the SVM stays finite.
    saturated = np.asarray(fusion.concat_features([[1.0, 0.0]], [[[0.0, 1.0]]],
                                                  "log_probabilities"))
    np.testing.assert_allclose(saturated, [[0.0, np.log(1e-6), np.log(1e-6), 0.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="Received: kind='logits'"):
        fusion.concat_features(GLOBAL, REGIONS, "logits")


def test_fusion_layer_matches_functions_and_round_trips():
    layer = fusion.FusionLayer(fusion="sum", beta=0.25, name="fuse")
    out = layer(tf.constant(GLOBAL), tf.constant(REGIONS), tf.constant(VALID))
    np.testing.assert_allclose(out.numpy(), fusion.sum_pooling(GLOBAL, REGIONS, 0.25, VALID),
                               atol=1e-6)
    config = layer.get_config()
    assert config["fusion"] == "sum" and config["beta"] == 0.25
    restored = fusion.FusionLayer.from_config(config)
    assert restored.get_config() == config
    max_layer = fusion.FusionLayer(fusion="max")
    np.testing.assert_allclose(max_layer(GLOBAL, REGIONS).numpy(), [[0.7, 0.8], [0.3, 0.9]])
    # Serializable by its registered name inside a functional model.
    g_in, r_in = keras.Input((2,)), keras.Input((2, 2))
    model = keras.Model([g_in, r_in], fusion.FusionLayer("max")(g_in, r_in))
    clone = keras.Model.from_config(model.get_config())
    np.testing.assert_allclose(np.asarray(clone([GLOBAL, REGIONS])), [[0.7, 0.8], [0.3, 0.9]])


def test_fusion_layer_rejects_unknown_fusion():
    with pytest.raises(ValueError) as info:
        fusion.FusionLayer(fusion="avg")
    assert str(info.value).endswith("Received: fusion='avg'")
    with pytest.raises(ValueError, match="SVMFusion.*Received: fusion='concat'"):
        fusion.FusionLayer(fusion="concat")
    with pytest.raises(ValueError, match="Received: beta=-0.1"):
        fusion.FusionLayer(fusion="sum", beta=-0.1)


def _separable(n=80, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    features = rng.uniform(0, 1, (n, dim))
    features[:, 1] = np.where(labels == 1, rng.uniform(0.6, 1.0, n), rng.uniform(0.0, 0.4, n))
    return features, labels


def test_linear_svm_fits_separable_data():
    features, labels = _separable()
    svm = fusion.SVMFusion(c=10.0).fit(features, labels)
    np.testing.assert_array_equal(svm.predict(features), labels)
    assert svm.predict(features).dtype == np.int64
    assert (np.sign(svm.decision_function(features)) == np.where(labels == 1, 1, -1)).all()


def test_rbf_svm_fits_and_round_trips(tmp_path):
    features, labels = _separable()
    svm = fusion.SVMFusion(kernel="rbf", c=10.0).fit(features, labels)
    np.testing.assert_array_equal(svm.predict(features), labels)
    svm.save(str(tmp_path))
    loaded = fusion.SVMFusion.load(str(tmp_path))
    np.testing.assert_allclose(loaded.decision_function(features),
                               svm.decision_function(features))
    with pytest.raises(ValueError, match="evaluation-only.*Received: kernel='rbf'"):
        svm.to_dense_layer()


def test_linear_svm_save_load_round_trip(tmp_path):
    features, labels = _separable()
    svm = fusion.SVMFusion(c=2.0, seed=3).fit(features, labels)
    svm.save(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["svm.json", "svm.npz"]
    with open(tmp_path / "svm.json", encoding="utf-8") as f:
        meta = json.load(f)
    assert meta == {"kernel": "linear", "c": 2.0, "seed": 3, "feature_dim": 6}
    loaded = fusion.SVMFusion.load(str(tmp_path))
    np.testing.assert_array_equal(loaded.decision_function(features),
                                  svm.decision_function(features))
    with pytest.raises(FileNotFoundError, match="svm.json"):
        fusion.SVMFusion.load(str(tmp_path / "missing"))


def test_linear_svm_matches_sklearn_decision_function():
    from sklearn.svm import LinearSVC  # pylint: disable=import-outside-toplevel
    features, labels = _separable()
    svm = fusion.SVMFusion(c=1.0, seed=0).fit(features, labels)
    reference = LinearSVC(C=1.0, random_state=0, max_iter=100_000).fit(features, labels)
    np.testing.assert_allclose(svm.decision_function(features),
                               reference.decision_function(features), atol=1e-8)


def test_to_dense_layer_reproduces_the_svm():
    features, labels = _separable(n=200, dim=6, seed=1)
    features[:, 1] += np.random.default_rng(2).normal(0, 0.3, len(features))  # some errors
    svm = fusion.SVMFusion().fit(features, labels)
    layer = svm.to_dense_layer()
    logits = layer(features.astype(np.float32)).numpy()
    decision = svm.decision_function(features)
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0], decision, atol=1e-5)
    np.testing.assert_array_equal(np.argmax(logits, axis=1), svm.predict(features))


def test_svm_errors():
    features, labels = _separable()
    svm = fusion.SVMFusion()
    with pytest.raises(RuntimeError, match="not fitted"):
        svm.predict(features)
    with pytest.raises(ValueError, match="0 \\(negative\\) or 1 \\(positive\\)"):
        svm.fit(features, labels + 1)
    with pytest.raises(ValueError, match="both classes"):
        svm.fit(features, np.ones(len(features), int))
    with pytest.raises(ValueError, match="same length"):
        svm.fit(features, labels[:-1])
    svm.fit(features, labels)
    with pytest.raises(ValueError, match="expected 6 .* received 4"):
        svm.predict(features[:, :4])
    with pytest.raises(ValueError, match="Received: kernel='poly'"):
        fusion.SVMFusion(kernel="poly")
