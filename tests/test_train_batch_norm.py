"""Precise batch-norm statistics after fine-tuning (train.recalibrate_batch_norm).

The GAP head of the offline weights normalizes its pooled features with a BatchNormalization
layer; its moving averages lag the features while the conv layers learn, which cost the demo 26
points of validation accuracy. These tests pin that the statistics are replaced by exact ones of
the final network, deterministically, and only where a BN layer exists.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from affect_tf import model as model_lib
from affect_tf import train as train_lib
from affect_tf.config import ModelConfig, TrainConfig

IMAGE_SIZE = 32


def _images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (count, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(
        np.float32)


def _gap_model(seed: int = 0) -> keras.Model:
    config = ModelConfig(weights="none", head="gap", image_size=IMAGE_SIZE)
    return model_lib.build_classifier(config, seed=seed)


def _exact_statistics(model: keras.Model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    layer = model.get_layer(model_lib.HEAD_NORM_LAYER)
    features = keras.Model(model.input, layer.input)(images, training=False)
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), features.var(axis=0)


def test_moving_statistics_become_the_exact_ones_over_the_batches():
    model = _gap_model()
    images = _images(12)
    layer = model.get_layer(model_lib.HEAD_NORM_LAYER)
    # Fresh BN layers hold mean 0 and variance 1, far from pooled VGG16 features.
    np.testing.assert_allclose(np.asarray(layer.moving_mean), 0.0)
    used = train_lib.recalibrate_batch_norm(
        model, tf.data.Dataset.from_tensor_slices(images).batch(5))  # 5 + 5 + 2: uneven batches
    assert used == {model_lib.HEAD_NORM_LAYER: 12}
    mean, variance = _exact_statistics(model, images)
    np.testing.assert_allclose(np.asarray(layer.moving_mean), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(layer.moving_variance), variance, rtol=1e-4, atol=1e-5)
    # Inference on those images now normalizes with their own statistics: the normalized
    # features have mean beta (0) and variance ~1 (epsilon aside).
    normalized = keras.Model(model.input, layer.output)(images, training=False)
    np.testing.assert_allclose(np.mean(normalized, axis=0), 0.0, atol=1e-3)


def test_a_model_without_batch_norm_is_left_alone():
    # The vgg head (fc6, fc7: no BN) needs 224 px; a small Dense network stands in for it.
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(4)(pooled)))
    before = [np.array(w) for w in model.weights]
    assert train_lib.recalibrate_batch_norm(
        model, tf.data.Dataset.from_tensor_slices(_images(4)).batch(2)) == {}
    for old, new in zip(before, model.weights):
        np.testing.assert_array_equal(old, np.asarray(new))


def test_empty_batches_name_what_was_received():
    with pytest.raises(ValueError, match="Received: 0 batches"):
        train_lib.recalibrate_batch_norm(
            _gap_model(), tf.data.Dataset.from_tensor_slices(_images(2)).take(0).batch(2))


def _train_config(**kwargs) -> TrainConfig:
    defaults = {"batch_size": 2, "steps": 2, "checkpoint_every": 1,
                "log_every": 1, "trainable_from": "block5_conv1"}
    return TrainConfig(**{**defaults, **kwargs})


def _fit(directory, images, **kwargs):
    model_config = ModelConfig(weights="none", head="gap", image_size=IMAGE_SIZE)
    trainer = train_lib.Trainer(model_config, _train_config(**kwargs), str(directory))
    labels = (np.arange(len(images)) % 2).astype(np.int64)
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(2)
    calibration = tf.data.Dataset.from_tensor_slices(images).batch(3)
    trainer.fit(batches, calibration=calibration, log=lambda line: None)
    classifier = train_lib.load_classifier(model_config, str(directory))
    return classifier.get_layer(model_lib.HEAD_NORM_LAYER)


def test_fit_saves_the_calibrated_classifier_and_a_resume_gives_the_same(tmp_path):
    images = _images(8, seed=1)
    layer = _fit(tmp_path / "run", images)
    classifier = train_lib.load_classifier(
        ModelConfig(weights="none", head="gap", image_size=IMAGE_SIZE), str(tmp_path / "run"))
    mean, variance = _exact_statistics(classifier, images)
    np.testing.assert_allclose(np.asarray(layer.moving_mean), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(layer.moving_variance), variance, rtol=1e-4, atol=1e-5)
    # A second fit of the finished run (as after a kill between the last step and the save)
    # restores the last checkpoint and calibrates again, to the same statistics.
    again = _fit(tmp_path / "run", images)
    np.testing.assert_allclose(np.asarray(again.moving_mean), np.asarray(layer.moving_mean),
                               rtol=1e-6)
    # bn_calibration_images caps the images used; 0 keeps the moving averages.
    capped = _fit(tmp_path / "capped", images, bn_calibration_images=3)
    capped_mean, _ = _exact_statistics(
        train_lib.load_classifier(ModelConfig(weights="none", head="gap", image_size=IMAGE_SIZE),
                                  str(tmp_path / "capped")), images[:3])
    np.testing.assert_allclose(np.asarray(capped.moving_mean), capped_mean, rtol=1e-5, atol=1e-5)
    kept = _fit(tmp_path / "kept", images, bn_calibration_images=0)
    assert not np.allclose(np.asarray(kept.moving_mean), mean, rtol=1e-3)
