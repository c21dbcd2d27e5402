"""Tests of the demo scene generator: determinism, balance, boxes, the class cues of the object."""

import numpy as np
import pytest

from affect_tf.datasets.affect_demo import scenes as demo_scenes


def _scenes(seed, count, size=256):
    return list(demo_scenes.generate_scenes(seed, count, size))


def test_generate_scene_returns_image_and_box():
    image, box = demo_scenes.generate_scene(np.random.default_rng(0), label=1)
    assert image.dtype == np.uint8 and image.shape == (256, 256, 3)
    assert box.dtype == np.float32 and box.shape == (4,)


def test_same_generator_state_gives_the_same_scene():
    first = demo_scenes.generate_scene(np.random.default_rng(3), label=0)
    second = demo_scenes.generate_scene(np.random.default_rng(3), label=0)
    other = demo_scenes.generate_scene(np.random.default_rng(4), label=0)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], other[0])


def test_same_seed_gives_the_same_scenes():
    first, second = _scenes(11, 6, 128), _scenes(11, 6, 128)
    for (i, image, label, box), (j, image2, label2, box2) in zip(first, second):
        assert i == j and label == label2
        np.testing.assert_array_equal(image, image2)
        np.testing.assert_array_equal(box, box2)
    other = _scenes(12, 6, 128)
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(first, other))


def test_scene_depends_only_on_seed_index_and_label():
    # Scene 5 of a run of 8 equals the scene rendered alone from its own stream.
    index, image, label, box = _scenes(21, 8)[5]
    alone, alone_box = demo_scenes.generate_scene(demo_scenes.scene_rng(21, index), label)
    np.testing.assert_array_equal(image, alone)
    np.testing.assert_array_equal(box, alone_box)


def test_labels_are_balanced_and_shuffled():
    labels = demo_scenes.scene_labels(demo_scenes.DATASET_SEED, 1200)
    assert labels.sum() == 600
    assert not np.array_equal(labels, np.sort(labels))
    assert not np.array_equal(labels, demo_scenes.scene_labels(1, 1200))
    odd = demo_scenes.scene_labels(0, 7)
    assert (odd == 0).sum() == 3 and (odd == 1).sum() == 4
    scenes = _scenes(5, 10, 128)
    assert [s[0] for s in scenes] == list(range(10))
    assert sum(s[2] for s in scenes) == 5


@pytest.mark.parametrize("size", [256, 128])
def test_box_lies_inside_the_image_and_covers_two_to_five_percent(size):
    for _, image, _, box in _scenes(7, 24, size):
        assert image.shape == (size, size, 3)
        y1, x1, y2, x2 = box
        assert 0.0 < y1 < y2 < 1.0 and 0.0 < x1 < x2 < 1.0
        area = (y2 - y1) * (x2 - x1)
        assert demo_scenes.OBJECT_AREA_RANGE[0] <= area <= demo_scenes.OBJECT_AREA_RANGE[1]
        # Pixel-edge coordinates: the box times the size is whole pixels.
        np.testing.assert_allclose(box * size, np.round(box * size), atol=1e-3)


def _rendered(count, seed=9):
    labels = demo_scenes.scene_labels(seed, count)
    return [demo_scenes.render_scene(demo_scenes.scene_rng(seed, i), int(label))
            for i, label in enumerate(labels)]


def test_object_pixels_lie_in_the_box_and_touch_every_side():
    for scene in _rendered(16):
        top, left, bottom, right = np.round(scene.box * 256).astype(int)
        rows, cols = np.nonzero(scene.object_mask)
        assert rows.min() == top and rows.max() == bottom - 1
        assert cols.min() == left and cols.max() == right - 1


def test_object_shape_and_colour_follow_the_label():
    scenes = _rendered(40)
    luminance, warmth = {0: [], 1: []}, {0: [], 1: []}
    for scene in scenes:
        family = demo_scenes.POSITIVE_SHAPES if scene.label else demo_scenes.NEGATIVE_SHAPES
        assert scene.object_shape in family
        pixels = scene.image[scene.object_mask].astype(np.float64)
        luminance[scene.label].append(pixels @ [0.299, 0.587, 0.114])
        warmth[scene.label].append(pixels[:, 0] - pixels[:, 2])
    mean_luminance = {k: [v.mean() for v in values] for k, values in luminance.items()}
    # Every positive object (warm, bright, pale halo) is brighter than every negative one (dark
    # fill, black rim).
    assert min(mean_luminance[1]) > max(mean_luminance[0])
    # Positive objects are warm (red over blue) on average, negative ones much less so.
    assert np.mean(np.concatenate(warmth[1])) > np.mean(np.concatenate(warmth[0])) + 50


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="label"):
        demo_scenes.generate_scene(np.random.default_rng(0), label=2)
    with pytest.raises(ValueError, match="size"):
        demo_scenes.generate_scene(np.random.default_rng(0), label=0, size=32)
    with pytest.raises(ValueError, match="count"):
        demo_scenes.scene_labels(0, -1)
