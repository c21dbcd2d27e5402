"""affect_tf.experiments.saliency: occlusion sensitivity and Grad-CAM on hand-made models whose
answer rests on one red square, the classifier calls per image, bad input, the figure, the
project's own classifier architecture at 32 px, and a CNN trained on demo scenes whose occlusion
map peaks on the face."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from affect_tf import model as model_lib
from affect_tf.experiments import saliency
from affect_tf.testing import tiny_config

SIZE = 32
SQUARE = (slice(4, 12), slice(4, 12))  # the red square: rows 4..11, columns 4..11
# With the default 8 px square at stride 4, the grid cell whose square is exactly the red one.
RED_CELL = (1, 1)
GRID = (7, 7)  # starts 0, 4, ..., 24 on each side


def red_square_image(seed: int = 0, red: bool = True) -> np.ndarray:
    """A noisy dark grey float32 RGB image [32, 32, 3] with a pure red 8 x 8 square."""
    rng = np.random.default_rng(seed)
    image = rng.normal(60.0, 8.0, (SIZE, SIZE, 3)).clip(0, 255).astype(np.float32)
    if red:
        image[SQUARE] = (255.0, 0.0, 0.0)
    return image


def redness_layers(inputs):
    """A fixed 1x1 convolution, relu(R - (G + B) / 2 - 50): > 0 only on strongly red pixels
    (the ImageNet-mean occluder and the grey background give 0)."""
    conv = keras.layers.Conv2D(1, 1, activation="relu", name="redness")
    x = conv(inputs)
    conv.set_weights([np.asarray([1.0, -0.5, -0.5], np.float32).reshape(1, 1, 3, 1),
                      np.asarray([-50.0], np.float32)])
    return x


def head(features):
    """Global max pooling, then a fixed Dense: positive logit - negative logit = 0.04 r - 3, so
    P(positive) ~ 0.9945 with the red square visible (r = 205) and ~0.047 without it."""
    pooled = keras.layers.GlobalMaxPooling2D(name="pool")(features)
    dense = keras.layers.Dense(2, activation="softmax", name="dense")
    outputs = dense(pooled)
    dense.set_weights([np.asarray([[0.0, 0.04]], np.float32), np.asarray([0.0, -3.0], np.float32)])
    return outputs


def red_detector(size: int | None = SIZE) -> keras.Model:
    inputs = keras.Input((size, size, 3))
    return keras.Model(inputs, head(redness_layers(inputs)), name="red_detector")


@pytest.fixture(scope="module")
def detector():
    return red_detector()


@keras.saving.register_keras_serializable(package="test_saliency")
class CallCounter(keras.layers.Layer):
    """Identity that counts its executions and the images it saw (variables: it runs in graphs)."""

    def build(self, input_shape):
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False, name="calls")
        self.images = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                      name="images")

    def call(self, x):
        self.calls.assign_add(1.0)
        self.images.assign_add(tf.cast(tf.shape(x)[0], tf.float32))
        return x


def test_occlusion_drop_peaks_on_the_red_square(detector):
    result = saliency.occlusion_map(detector, red_square_image(), 1)
    assert (result.patch, result.stride) == (8, 4)
    assert result.probabilities.shape == result.drop.shape == GRID
    assert result.centres.shape == GRID + (2,)
    assert result.heat_map.shape == (SIZE, SIZE) and result.heat_map.dtype == np.float32
    assert result.base_probability == pytest.approx(1 / (1 + math.exp(-(0.04 * 205 - 3))), 1e-4)
    assert np.unravel_index(np.argmax(result.drop), GRID) == RED_CELL
    np.testing.assert_allclose(result.centres[RED_CELL], (8.0, 8.0))
    # Hiding the whole square leaves the background's answer; hiding part of it or anything
    # else changes nothing (max pooling still sees red).
    assert result.probabilities[RED_CELL] == pytest.approx(1 / (1 + math.exp(3)), 1e-4)
    others = np.delete(result.drop.ravel(), np.ravel_multi_index(RED_CELL, GRID))
    assert np.abs(others).max() < 1e-5
    peak = np.unravel_index(np.argmax(result.heat_map), result.heat_map.shape)
    assert SQUARE[0].start <= peak[0] < SQUARE[0].stop
    assert SQUARE[1].start <= peak[1] < SQUARE[1].stop
    np.testing.assert_allclose(result.drop, result.base_probability - result.probabilities)


def test_occlusion_of_the_other_class_and_a_custom_fill(detector):
    negative = saliency.occlusion_map(detector, red_square_image(), 0)
    assert np.unravel_index(np.argmin(negative.drop), GRID) == RED_CELL  # hiding red helps it
    # A red occluder hides nothing the detector needs: no position matters.
    red_fill = saliency.occlusion_map(detector, red_square_image(), 1, fill=(255, 0, 0))
    assert np.abs(red_fill.drop).max() < 1e-5


def test_occlusion_classifies_every_position_in_batches():
    inputs = keras.Input((SIZE, SIZE, 3))
    counter = CallCounter(name="counter")
    model = keras.Model(inputs, head(redness_layers(counter(inputs))))
    for batch_size, calls in ((10, math.ceil((49 + 1) / 10)), (64, 1)):
        counter.calls.assign(0.0)
        counter.images.assign(0.0)
        result = saliency.occlusion_map(model, red_square_image(), 1, batch_size=batch_size)
        assert result.probabilities.shape == GRID
        assert int(counter.calls.numpy()) == calls
        assert int(counter.images.numpy()) == calls * min(batch_size, 50)
        assert np.unravel_index(np.argmax(result.drop), GRID) == RED_CELL


def test_occlusion_grid_reaches_the_far_edges(detector):
    # 0.3 * 32 = 9.6 -> 10 px squares, 0.25 * 32 = 8 px steps: starts 0, 8, 16 and 22 (flush).
    result = saliency.occlusion_map(detector, red_square_image(), 1, patch_fraction=0.3,
                                    stride_fraction=0.25)
    np.testing.assert_allclose(result.centres[:, 0, 0], (5.0, 13.0, 21.0, 27.0))
    assert np.all(np.isfinite(result.heat_map))


def test_grad_cam_peaks_inside_the_red_square(detector):
    result = saliency.grad_cam(detector, red_square_image(), 1)
    assert result.layer_name == "redness"
    assert result.heat_map.shape == (SIZE, SIZE) and result.heat_map.dtype == np.float32
    assert result.heat_map.min() >= 0.0 and result.heat_map.max() == pytest.approx(1.0)
    peak = np.unravel_index(np.argmax(result.heat_map), result.heat_map.shape)
    assert SQUARE[0].start <= peak[0] < SQUARE[0].stop
    assert SQUARE[1].start <= peak[1] < SQUARE[1].stop
    outside = np.ones((SIZE, SIZE), bool)
    outside[SQUARE] = False
    assert result.heat_map[outside].max() == 0.0
    assert result.probability == pytest.approx(1 / (1 + math.exp(-(0.04 * 205 - 3))), 1e-4)


def test_grad_cam_map_without_evidence_is_zero_not_nan(detector):
    result = saliency.grad_cam(detector, red_square_image(red=False), 1)
    assert not np.any(np.isnan(result.heat_map))
    assert np.all(result.heat_map == 0.0)


def test_grad_cam_through_a_nested_model(detector):
    inputs = keras.Input((SIZE, SIZE, 3))
    base = keras.Model(inputs, redness_layers(inputs), name="base")
    nested = keras.Sequential([keras.Input((SIZE, SIZE, 3)), base], name="outer")
    outer_inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(outer_inputs, head(nested(outer_inputs)), name="nested_detector")
    result = saliency.grad_cam(model, red_square_image(), 1)
    flat = saliency.grad_cam(detector, red_square_image(), 1)
    assert result.layer_name == "redness"
    np.testing.assert_allclose(result.heat_map, flat.heat_map, atol=1e-6)


@pytest.mark.parametrize("call, received", [
    (lambda m: saliency.occlusion_map(m, np.zeros((SIZE, SIZE)), 1), r"shape=\(32, 32\)"),
    (lambda m: saliency.grad_cam(m, np.zeros((SIZE, SIZE, 4)), 1), r"shape=\(32, 32, 4\)"),
    (lambda m: saliency.occlusion_map(m, np.zeros((16, 16, 3)), 1), r"shape \(16, 16, 3\)"),
    (lambda m: saliency.occlusion_map(m, red_square_image(), 2), "target_class=2"),
    (lambda m: saliency.grad_cam(m, red_square_image(), -1), "target_class=-1"),
    (lambda m: saliency.occlusion_map(m, red_square_image(), 1, patch_fraction=0),
     "patch_fraction=0"),
    (lambda m: saliency.occlusion_map(m, red_square_image(), 1, stride_fraction=1.5),
     "stride_fraction=1.5"),
    (lambda m: saliency.occlusion_map(m, red_square_image(), 1, batch_size=0), "batch_size=0"),
    (lambda m: saliency.occlusion_map(m, red_square_image(), 1, fill=(1, 2)), r"fill=\(1, 2\)"),
    (lambda m: saliency.grad_cam(m, red_square_image(), 1, layer_name="nope"),
     "layer_name='nope'"),
    (lambda m: saliency.grad_cam(m, red_square_image(), 1, layer_name="dense"),
     "layer_name='dense'"),
])
def test_bad_input_is_named(detector, call, received):
    with pytest.raises(ValueError, match=f"Received: .*{received}"):
        call(detector)


def test_plot_saliency_writes_a_png(detector, tmp_path):
    image = red_square_image()
    path = saliency.plot_saliency(
        image, saliency.occlusion_map(detector, image, 1), saliency.grad_cam(detector, image, 1),
        tmp_path / "figures" / "saliency.png", title="red square")
    assert path == tmp_path / "figures" / "saliency.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000


def test_the_project_classifier_at_32_px(tmp_path):
    config = tiny_config(tmp_path).model
    classifier = model_lib.build_classifier(config, seed=0)
    image = red_square_image()
    cam = saliency.grad_cam(classifier, image, 1)
    assert cam.layer_name == "block5_conv3"
    assert cam.heat_map.shape == (config.image_size,) * 2
    assert np.all(np.isfinite(cam.heat_map))
    assert 0.0 <= cam.heat_map.min() and cam.heat_map.max() <= 1.0
    occlusion = saliency.occlusion_map(classifier, image, 1, batch_size=16)
    assert occlusion.probabilities.shape == GRID
    assert occlusion.heat_map.shape == (config.image_size,) * 2
    assert np.all((occlusion.probabilities >= 0) & (occlusion.probabilities <= 1))
    # The classifier outputs logits: both functions apply the softmax the evaluation applies.
    expected = float(tf.nn.softmax(classifier(image[None], training=False))[0, 1])
    assert occlusion.base_probability == pytest.approx(expected, abs=1e-5)
    assert cam.probability == pytest.approx(expected, abs=1e-5)


def _close_up_scenes(seed: int, count: int, size: int):
    """``count`` close-up demo scenes (the face covers 20-60 % of the image) rendered at
    ``size`` px, drawn as the dataset draws them."""
    from affect_tf.datasets.affect_demo import scenes

    rng = np.random.default_rng(seed)
    found = []
    while len(found) < count:
        scene = scenes.render_scene(rng, int(rng.integers(2)), size=size)
        if scene.close_up:
            found.append(scene)
    return found


# Slow (about a minute: it trains a small CNN); the maps' mechanics are tested above on a
# detector whose evidence is known.
@pytest.mark.slow
def test_occlusion_of_a_trained_classifier_peaks_on_the_demo_face():
    # A small CNN trained on demo close-ups learns the expressions; hiding the face must then cost
    # it most. Held-out scenes it classifies right: the map's peak in the face box in >= 70 % of
    # them where the box is 43 % of the image on average (chance), and the mean drop inside the
    # box above the mean drop outside in >= 80 %. Measured over training seeds 2-4 (same data):
    # 89-100 % and 98-100 %.
    size = 64
    train, held_out = _close_up_scenes(1, 400, size), _close_up_scenes(2, 40, size)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(np.stack([s.image for s in train]).astype(np.float32),
              np.array([s.label for s in train]), epochs=20, batch_size=32, verbose=0)
    images = np.stack([s.image for s in held_out]).astype(np.float32)
    correct = np.argmax(model.predict(images, verbose=0), axis=-1) == [s.label for s in held_out]
    assert correct.mean() >= 0.75, "the CNN did not learn the expressions; nothing to explain"
    peaks_inside, drop_inside, chance = [], [], []
    for scene in (s for s, right in zip(held_out, correct) if right):
        result = saliency.occlusion_map(model, scene.image, scene.label, batch_size=64)
        top, left, bottom, right = np.round(scene.box * size).astype(int)
        face = np.zeros((size, size), bool)
        face[top:bottom, left:right] = True
        peak = np.unravel_index(np.argmax(result.heat_map), result.heat_map.shape)
        peaks_inside.append(face[peak])
        drop_inside.append(result.heat_map[face].mean() > result.heat_map[~face].mean())
        chance.append(face.mean())
    assert np.mean(chance) < 0.5
    assert np.mean(peaks_inside) >= 0.7, (np.mean(peaks_inside), np.mean(chance))
    assert np.mean(drop_inside) >= 0.8
