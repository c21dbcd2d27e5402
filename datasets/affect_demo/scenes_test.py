"""Tests of the demo scene generator: determinism, balance, boxes, the face's class cue."""

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
def test_box_lies_inside_the_image_and_covers_its_scale_range(size):
    for index, label in enumerate(demo_scenes.scene_labels(7, 24)):
        scene = demo_scenes.render_scene(demo_scenes.scene_rng(7, index), int(label), size)
        assert scene.image.shape == (size, size, 3)
        y1, x1, y2, x2 = scene.box
        assert 0.0 < y1 < y2 < 1.0 and 0.0 < x1 < x2 < 1.0
        area = (y2 - y1) * (x2 - x1)
        low, high = (demo_scenes.CLOSE_AREA_RANGE if scene.close_up
                     else demo_scenes.FAR_AREA_RANGE)
        assert low <= area <= high, (index, scene.close_up, area)
        # Pixel-edge coordinates: the box times the size is whole pixels.
        np.testing.assert_allclose(scene.box * size, np.round(scene.box * size), atol=1e-3)


def test_close_ups_are_drawn_at_their_share_independently_of_the_label():
    labels = demo_scenes.scene_labels(13, 300)
    close_up = np.array([
        demo_scenes.render_scene(demo_scenes.scene_rng(13, i), int(label), 128).close_up
        for i, label in enumerate(labels)])
    share = demo_scenes.CLOSE_UP_SHARE
    # +-3 binomial sd over 300 scenes (about +-9 points at 50 %), +-4 per class of 150.
    assert abs(close_up.mean() - share) <= 0.09
    for label in (0, 1):
        assert abs(close_up[labels == label].mean() - share) <= 0.16


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


def _mouth_bend(scene) -> float:
    """Curvature of the face's mouth: > 0 when its ends are higher than its middle (a smile).

    The mouth is the dark feature pixels in the lower part of the face disc (inside the ring);
    per column, its lowest pixel; a parabola row = a x^2 + b x + c fitted to those (rows grow
    downwards, so a smile's middle has the largest row: a < 0). Returns -a times the squared
    face radius, so the value does not depend on the face's size.
    """
    top, left, bottom, right = np.round(scene.box * scene.image.shape[0]).astype(int)
    radius, radius_y = (right - left) / 2.0, (bottom - top) / 2.0
    centre_y, centre_x = (top + bottom) / 2.0, (left + right) / 2.0
    rows, cols = np.mgrid[0:scene.image.shape[0], 0:scene.image.shape[1]]
    # Well inside the ring, which is dark for a black rim (faces may be slight ellipses).
    inside = np.hypot((rows - centre_y) / radius_y, (cols - centre_x) / radius) < 0.75
    lower = rows > centre_y + 0.05 * radius
    dark = scene.image.astype(np.float64).mean(axis=2) < 70
    mouth = inside & lower & dark
    columns = np.unique(cols[mouth])
    lowest = np.array([rows[mouth & (cols == c)].max() for c in columns])
    x = (columns - centre_x) / radius
    return float(-np.polyfit(x, lowest / radius, 2)[0])


def test_the_expression_follows_the_label_and_the_colour_does_not():
    scenes = _rendered(40)
    fill_luminance = {0: [], 1: []}
    for scene in scenes:
        family = demo_scenes.POSITIVE_SHAPES if scene.label else demo_scenes.NEGATIVE_SHAPES
        assert scene.object_shape in family
        # The mouth bends up (smile, laugh) or down (frown, scowl), whatever the face's size.
        bend = _mouth_bend(scene)
        assert (bend > 0.1) if scene.label else (bend < -0.1), (scene.object_shape, bend)
        pixels = scene.image[scene.object_mask].astype(np.float64)
        fill_luminance[scene.label].append(np.median(pixels @ [0.299, 0.587, 0.114]))
    # The colour is no cue: both classes' faces span the same range of brightness.
    low = max(min(fill_luminance[0]), min(fill_luminance[1]))
    high = min(max(fill_luminance[0]), max(fill_luminance[1]))
    assert high - low > 40
    assert abs(np.mean(fill_luminance[0]) - np.mean(fill_luminance[1])) < 20


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="label"):
        demo_scenes.generate_scene(np.random.default_rng(0), label=2)
    with pytest.raises(ValueError, match="size"):
        demo_scenes.generate_scene(np.random.default_rng(0), label=0, size=32)
    with pytest.raises(ValueError, match="count"):
        demo_scenes.scene_labels(0, -1)
