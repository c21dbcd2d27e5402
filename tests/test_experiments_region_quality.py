"""affect_tf.experiments.region_quality: precision and recall of a box against a stimuli map
binarized at every threshold (Section 4.6), what the thresholds force, the top-1 regions of each
ranking, and bad input."""

import dataclasses

import numpy as np
import pytest

from affect_tf import evaluate as evaluate_lib
from affect_tf.config import RegionConfig
from affect_tf.experiments import region_quality as rq

LAST = -1  # gamma = 1: nothing exceeds 255, the ground truth is empty


def slow_precision_recall(stimuli_map, box, thresholds):
    """The definition, one threshold at a time (the box's pixels are box_map's)."""
    inside = rq.box_map(box, *stimuli_map.shape) > 0
    precision, recall = [], []
    for gamma in thresholds:
        truth = stimuli_map / 255.0 > gamma
        hits = np.sum(truth & inside)
        empty = truth.sum() == 0
        precision.append(np.nan if empty else hits / inside.sum())
        recall.append(np.nan if empty else hits / truth.sum())
    return np.asarray(precision), np.asarray(recall)


def random_box(rng):
    y = np.sort(rng.uniform(0, 1, 2))
    x = np.sort(rng.uniform(0, 1, 2))
    return np.asarray([y[0], x[0], y[1], x[1]])


def test_the_vectorized_thresholds_equal_a_loop_over_them():
    rng = np.random.default_rng(0)
    off_grid = np.sort(rng.uniform(-0.1, 1.1, 40))
    for trial in range(12):
        height, width = rng.integers(5, 60, 2)
        # Smooth-ish maps with many zeros and some saturation, as annotator counts look.
        stimuli_map = np.clip(rng.normal(60, 90, (height, width)), 0, 255).astype(np.uint8)
        box = random_box(rng)
        for thresholds in (rq.THRESHOLDS, off_grid):
            fast = rq.precision_recall(stimuli_map, box, thresholds)
            slow = slow_precision_recall(stimuli_map, box, thresholds)
            np.testing.assert_array_equal(fast[0], slow[0], err_msg=f"trial {trial}")
            np.testing.assert_array_equal(fast[1], slow[1], err_msg=f"trial {trial}")


def test_a_box_equal_to_the_stimuli_scores_one_and_a_disjoint_box_zero():
    box = np.asarray([0.25, 0.125, 0.75, 0.5])
    stimuli_map = rq.box_map(box, 64, 80)
    precision, recall = rq.precision_recall(stimuli_map, box)
    # The map is exactly the box at every gamma < 1.
    np.testing.assert_array_equal(precision[:LAST], 1.0)
    np.testing.assert_array_equal(recall[:LAST], 1.0)
    assert np.isnan(precision[LAST]) and np.isnan(recall[LAST])
    precision, recall = rq.precision_recall(stimuli_map, [0.8, 0.6, 1.0, 1.0])
    np.testing.assert_array_equal(precision[:LAST], 0.0)
    np.testing.assert_array_equal(recall[:LAST], 0.0)


def test_what_the_thresholds_force():
    rng = np.random.default_rng(1)
    # A graded map: a bright blob fading out, plus noise.
    rows, columns = np.mgrid[0:48, 0:64]
    blob = 255 * np.exp(-((rows - 20) ** 2 + (columns - 30) ** 2) / 300.0)
    stimuli_map = np.clip(blob + rng.normal(0, 10, blob.shape), 0, 255).astype(np.uint8)
    for box in [random_box(rng) for _ in range(10)] + [[0, 0, 1, 1]]:
        precision, recall = rq.precision_recall(stimuli_map, box)
        defined = ~np.isnan(precision)
        # The ground truth only shrinks as gamma rises: once empty, it stays empty ...
        np.testing.assert_array_equal(defined, ~np.isnan(recall))
        assert np.all(np.diff(defined.astype(int)) <= 0)  # defined on a prefix of the gammas
        # ... and the box's share of it (precision, over a fixed box) never grows.
        assert np.all(np.diff(precision[defined]) <= 0)
        assert np.all((precision[defined] >= 0) & (precision[defined] <= 1))
        assert np.all((recall[defined] >= 0) & (recall[defined] <= 1))
    # The whole image covers all of the ground truth, and its precision is the truth's share.
    precision, recall = rq.precision_recall(stimuli_map, [0.0, 0.0, 1.0, 1.0])
    defined = ~np.isnan(recall)
    np.testing.assert_array_equal(recall[defined], 1.0)
    share = [np.mean(stimuli_map / 255.0 > gamma) for gamma in rq.THRESHOLDS[defined]]
    np.testing.assert_array_equal(precision[defined], share)


def test_gamma_zero_takes_every_marked_pixel_and_no_unmarked_one():
    stimuli_map = np.zeros((10, 10), np.uint8)
    stimuli_map[:, 5:] = 1  # one annotator's faintest mark on the right half
    precision, recall = rq.precision_recall(stimuli_map, [0.0, 0.0, 1.0, 0.5],
                                            thresholds=[0.0, 1 / 255])
    assert precision[0] == 0.0 and recall[0] == 0.0  # the unmarked left half is not the truth
    assert np.isnan(precision[1]) and np.isnan(recall[1])  # 1 / 255 > 1 / 255 is false
    everything = rq.precision_recall(np.zeros((4, 4), np.uint8), [0, 0, 1, 1])
    assert np.all(np.isnan(everything[0])) and np.all(np.isnan(everything[1]))


def test_box_map_puts_the_box_on_its_pixel_edges():
    # The demo's object_box: normalized edges on exact pixel edges of a 256-pixel image.
    stimuli_map = rq.box_map([64 / 256, 32 / 256, 192 / 256, 96 / 256], 256, 256)
    assert stimuli_map.dtype == np.uint8 and stimuli_map.shape == (256, 256)
    rows, columns = np.nonzero(stimuli_map)
    assert (rows.min(), rows.max(), columns.min(), columns.max()) == (64, 191, 32, 95)
    assert set(np.unique(stimuli_map)) == {0, 255}
    # A sliver still covers one pixel, so its precision is defined.
    assert np.count_nonzero(rq.box_map([0.5, 0.5, 0.501, 0.502], 20, 20)) == 1
    assert np.count_nonzero(rq.box_map([0.999, 0.0, 1.0, 1.0], 20, 20)) == 20
    assert np.all(rq.box_map([0, 0, 1, 1], 3, 7) == 255)


@pytest.mark.parametrize("stimuli_map, match", [
    (np.zeros((8, 8), np.float32),
     "uint8 array \\[H, W\\].*Received: dtype=float32, shape=\\(8, 8\\)"),
    (np.zeros((8, 8, 3), np.uint8), "Received: dtype=uint8, shape=\\(8, 8, 3\\)"),
    (np.zeros((0, 8), np.uint8), "H, W > 0. Received: dtype=uint8, shape=\\(0, 8\\)"),
])
def test_a_bad_map_says_what_was_expected_and_received(stimuli_map, match):
    with pytest.raises(ValueError, match=match):
        rq.precision_recall(stimuli_map, [0, 0, 1, 1])


@pytest.mark.parametrize("box, match", [
    ([0.0, 0.0, 1.2, 1.0], "each in \\[0, 1\\]. Received: box=\\[0.0, 0.0, 1.2, 1.0\\]"),
    ([-0.1, 0.0, 0.5, 0.5], "each in \\[0, 1\\]. Received: box=\\[-0.1"),
    ([0.6, 0.0, 0.2, 1.0], "y1 < y2 and x1 < x2.*Received: box=\\[0.6, 0.0, 0.2, 1.0\\]"),
    ([0.0, 0.5, 1.0, 0.5], "not inverted or empty\\). Received: box=\\[0.0, 0.5, 1.0, 0.5\\]"),
    ([0.0, 0.0, 1.0], "4 finite numbers.*Received: box=\\[0.0, 0.0, 1.0\\] \\(shape \\(3,\\)\\)"),
    ([0.0, np.nan, 1.0, 1.0], "4 finite numbers.*Received: box=\\[0.0, nan"),
])
def test_a_bad_box_says_what_was_expected_and_received(box, match):
    with pytest.raises(ValueError, match=match):
        rq.precision_recall(np.zeros((8, 8), np.uint8), box)
    with pytest.raises(ValueError, match=match):
        rq.box_map(box, 8, 8)


def test_bad_thresholds_and_sizes_say_what_was_received():
    with pytest.raises(ValueError, match="1-D array of finite numbers.*Received: shape \\(2, 2\\)"):
        rq.precision_recall(np.zeros((8, 8), np.uint8), [0, 0, 1, 1], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="positive integers. Received: height=0, width=5"):
        rq.box_map([0, 0, 1, 1], 0, 5)


def face_predictions(count: int = 3) -> tuple[dict, list[np.ndarray]]:
    """Images with three candidates: the face (confident, low objectness), a disjoint neutral box
    (the top objectness) and a large mildly confident one; the stimuli map is the face's box."""
    face, elsewhere, large = [0.25, 0.25, 0.5, 0.5], [0.6, 0.6, 0.95, 0.95], [0.0, 0.0, 0.8, 0.7]
    boxes = np.tile(np.asarray([face, elsewhere, large], np.float32), (count, 1, 1))
    probs = np.tile(np.asarray([[0.001, 0.999], [0.5, 0.5], [0.6, 0.4]], np.float32),
                    (count, 1, 1))
    predictions = {
        "label": np.ones(count, np.int64), "boxes": boxes, "candidate_probs": probs,
        "global_probs": np.tile(np.asarray([0.3, 0.7], np.float32), (count, 1)),
        "objectness": np.tile(np.asarray([0.1, 0.9, 0.5], np.float32), (count, 1)),
        "num_valid": np.full(count, 3, np.int32)}
    maps = [rq.box_map(face, 40 + 8 * index, 64) for index in range(count)]
    return predictions, maps


def test_top1_by_ar_and_senti_find_the_face_and_objectness_misses_it():
    predictions, maps = face_predictions()
    result = rq.top1_region_quality(predictions, maps, RegionConfig(alpha=0.6))
    np.testing.assert_array_equal(result["thresholds"], rq.THRESHOLDS)
    for selection, expected in (("ar", 1.0), ("senti", 1.0), ("obj", 0.0)):
        entry = result[selection]
        assert entry["mean_precision"] == expected and entry["mean_recall"] == expected
        np.testing.assert_array_equal(entry["precision"][:LAST], expected)
        np.testing.assert_array_equal(entry["recall"][:LAST], expected)
        # gamma = 1 leaves every binarized map empty: no image is judged there.
        assert np.isnan(entry["precision"][LAST]) and np.isnan(entry["recall"][LAST])
        np.testing.assert_array_equal(entry["images"], [3] * 255 + [0])
        assert entry["images_without_region"] == 0
    assert (result["ar"]["paper_precision"], result["ar"]["paper_recall"]) == (0.69, 0.59)
    assert (result["obj"]["paper_precision"], result["obj"]["paper_recall"]) == (0.63, 0.53)
    assert result["senti"]["paper_precision"] is None
    # Maps of one size may come as one [N, H, W] array.
    stacked = np.stack([rq.box_map(predictions["boxes"][0, 0], 40, 64)] * 3)
    assert rq.top1_region_quality(predictions, stacked, RegionConfig())["ar"]["mean_recall"] == 1


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # numpy's, on the all-NaN gamma = 1
def test_top1_means_are_over_every_defined_image_and_threshold():
    rng = np.random.default_rng(3)
    count, m = 7, 5
    corner = rng.uniform(0, 0.5, (count, m, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(0.1, 0.5, (count, m, 2))], axis=-1)
    positive = rng.uniform(0, 1, (count, m))
    predictions = {
        "label": rng.integers(0, 2, count), "boxes": boxes.astype(np.float32),
        "candidate_probs": np.stack([1 - positive, positive], -1).astype(np.float32),
        "global_probs": np.tile(np.asarray([0.5, 0.5], np.float32), (count, 1)),
        "objectness": rng.uniform(0, 1, (count, m)).astype(np.float32),
        "num_valid": np.asarray([5, 5, 3, 0, 1, 5, 2], np.int32)}
    # Maps of different sizes; one stays below 128 (empty from gamma = 127/255 up).
    maps = [np.clip(rng.normal(100, 80, (20 + 3 * i, 30)), 0, 255).astype(np.uint8)
            for i in range(count)]
    maps[2] = (maps[2] // 2).astype(np.uint8)
    thresholds = np.linspace(0, 1, 11)
    config = RegionConfig(alpha=0.4)
    result = rq.top1_region_quality(predictions, maps, config, thresholds=thresholds)
    for selection in ("ar", "obj", "senti"):
        top1 = evaluate_lib.select(predictions, dataclasses.replace(config, top_k=1), selection)
        pairs = np.asarray([rq.precision_recall(stimuli_map, box, thresholds) for
                            stimuli_map, box in zip(maps, top1["region_boxes"][:, 0])])
        precision, recall = pairs[:, 0], pairs[:, 1]  # [N, T]
        entry = result[selection]
        assert entry["mean_precision"] == pytest.approx(np.nanmean(precision), rel=1e-12)
        assert entry["mean_recall"] == pytest.approx(np.nanmean(recall), rel=1e-12)
        np.testing.assert_allclose(entry["recall"], np.nanmean(recall, axis=0), rtol=1e-12)
        np.testing.assert_array_equal(entry["images"], np.sum(~np.isnan(recall), axis=0))
        # The image without a candidate is judged with the whole image, which selection gives it.
        assert entry["images_without_region"] == 1
        np.testing.assert_array_equal(top1["region_boxes"][3, 0], [0, 0, 1, 1])
    assert result["ar"]["images"][-1] == 0


def test_top1_needs_one_map_per_image(tmp_path):
    predictions, maps = face_predictions()
    with pytest.raises(ValueError, match="one stimuli map per image of the predictions \\(3\\). "
                                         "Received: 2 maps"):
        rq.top1_region_quality(predictions, maps[:2], RegionConfig())
    maps[1] = maps[1].astype(np.int32)
    with pytest.raises(ValueError, match="stimuli_maps\\[1\\] must be a grey-level uint8"):
        rq.top1_region_quality(predictions, maps, RegionConfig())


def test_the_precision_recall_figure_is_written(tmp_path):
    predictions, maps = face_predictions()
    maps[0] = np.clip(maps[0].astype(np.int32) // 2 + 40, 0, 255).astype(np.uint8)
    result = rq.top1_region_quality(predictions, maps, RegionConfig())
    path = rq.plot_precision_recall(result, tmp_path / "fig8" / "precision_recall.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="Received: keys \\['thresholds'\\]"):
        rq.plot_precision_recall({"thresholds": rq.THRESHOLDS}, tmp_path / "bad.png")
