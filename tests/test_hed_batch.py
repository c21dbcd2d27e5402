"""HED in batches: HEDEdgeDetector.edge_probabilities_batch and the proposal stage's batched route
(edges.py, local_runner.py)."""

import cv2
import numpy as np
import pytest

from affect_tf.config import ConfigError, ProposalConfig
from affect_tf.io import encode_png
from affect_tf.proposals import cache as cache_lib
from affect_tf.proposals import edges as edges_lib
from affect_tf.proposals import local_runner as runner
from affect_tf.testing import encoded_examples, rectangles_scene

# Small settings for speed, as tests/test_proposals_local_runner.py.
CONFIG = ProposalConfig(edge_source="hed", num_candidates=8, max_boxes=300, kmeans_n_init=3)

# Batched maps against one-at-a-time maps. Each image's network input is exactly its input alone
# (bucketed by padded size, never padded further), so only the order in which TensorFlow's kernels
# sum may differ with the batch size: measured 0.0 on this CPU; 1e-5 is a margin of ~100 float32
# steps at 1.0 for another machine's kernels, and far below what padding to a common size changed
# (0.32-0.68, see HEDEdgeDetector.edge_probabilities_batch).
BATCH_ATOL = 1e-5


class FakeHED(edges_lib.HEDEdgeDetector):
    """A HED detector whose "network" is a cheap, deterministic gradient of the input, recording
    the shape of every call: the batching logic without TensorFlow."""

    def __init__(self, precision="auto"):
        super().__init__(precision=precision)
        self.calls = []
        self._network = self._fake_network

    def _fake_network(self, batch):
        self.calls.append(batch.shape)
        grey = batch.mean(axis=-1)
        grad_y, grad_x = np.gradient(grey, axis=(1, 2))
        return np.clip(np.hypot(grad_x, grad_y) / 60.0, 0.0, 1.0)[..., None].astype(np.float32)


def _images():
    """Four images: 48 x 64 twice and 40 x 56 (all padded to 48 x 64), and 33 x 70 (48 x 80)."""
    sizes = ((48, 64), (33, 70), (48, 64), (40, 56))
    return [cv2.resize(rectangles_scene(seed, height=96, width=128), (width, height),
                       interpolation=cv2.INTER_AREA)
            for seed, (height, width) in enumerate(sizes, start=1)]


def test_batches_group_equal_padded_sizes_in_input_order():
    detector = FakeHED()
    images = _images()
    single = [detector.edge_probabilities(image) for image in images]
    detector.calls.clear()
    batched = detector.edge_probabilities_batch(images, batch_size=2)
    # 48 x 64 padded: images 0, 2, 3 in calls of 2 and 1; 48 x 80: image 1 alone.
    assert sorted(detector.calls) == [(1, 48, 64, 3), (1, 48, 80, 3), (2, 48, 64, 3)]
    for image, one, many in zip(images, single, batched):
        assert many.shape == image.shape[:2] and many.dtype == np.float32
        np.testing.assert_array_equal(many, one)
    pairs = detector.batch(images, batch_size=8)
    assert len(detector.calls) == 5, "batch_size 8: one call per padded size"
    for image, (edge_map, orientation) in zip(images, pairs):
        expected = detector(image)
        np.testing.assert_array_equal(edge_map, expected[0])
        np.testing.assert_array_equal(orientation, expected[1])
    assert detector.edge_probabilities_batch([], batch_size=4) == []


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, True, "8"])
def test_batch_size_must_be_a_positive_integer(batch_size):
    with pytest.raises(ValueError, match=f"integer >= 1. Received: batch_size={batch_size!r}"):
        FakeHED().edge_probabilities_batch(_images(), batch_size=batch_size)


def test_a_bad_image_is_named_by_its_index():
    images = _images()
    images[2] = images[2].astype(np.float32)
    with pytest.raises(ValueError, match=r"images\[2\] must be an RGB uint8.*dtype=float32"):
        FakeHED().edge_probabilities_batch(images, batch_size=4)
    with pytest.raises(ValueError, match=r"images\[0\].*shape=\(48, 64\)"):
        FakeHED().edge_probabilities_batch([np.zeros((48, 64), np.uint8)], batch_size=4)


def test_hed_batch_size_setting_is_validated():
    assert ProposalConfig().hed_batch_size >= 1
    with pytest.raises(ConfigError, match="hed_batch_size must be > 0. Received: hed_batch_size=0"):
        ProposalConfig(hed_batch_size=0).validate()


def test_real_hed_batched_maps_equal_one_at_a_time():
    detector = edges_lib.HEDEdgeDetector()
    images = _images()[:2] + [_images()[2]]  # Two sizes; two images share a call.
    batched = detector.edge_probabilities_batch(images, batch_size=3)
    for image, many in zip(images, batched):
        one = detector.edge_probabilities(image)
        assert many.shape == one.shape == image.shape[:2]
        np.testing.assert_allclose(many, one, rtol=0, atol=BATCH_ATOL)


# ---- the proposal stage -------------------------------------------------------------------------

def _mixed_examples():
    """Good images of two sizes, undecodable bytes, and an image too small for any box."""
    good = encoded_examples(4, height=120, width=160)
    return [good[0], ("broken.png", b"not an image"), good[1],
            ("tiny.png", encode_png(np.zeros((10, 12, 3), np.uint8))),
            ("other_size.png", encode_png(rectangles_scene(9, height=150, width=130))),
            good[2], good[3]]


def _cached(tmp_path, name, config, detector, num_workers=1):
    cache = cache_lib.ProposalCache(tmp_path / name, config)
    stats = runner.run_proposal_stage(_mixed_examples(), cache, config, num_workers=num_workers,
                                      commit_seconds=0, edge_detector=detector)
    return stats, cache.load()


def _assert_same(one, other):
    np.testing.assert_array_equal(one.filenames, other.filenames)
    np.testing.assert_array_equal(one.num_valid, other.num_valid)
    np.testing.assert_array_equal(one.boxes, other.boxes)
    np.testing.assert_array_equal(one.objectness, other.objectness)


@pytest.mark.parametrize("num_workers", [1, 2])
def test_stage_batched_route_caches_what_the_per_image_route_does(tmp_path, num_workers):
    per_image = FakeHED()
    stats, expected = _cached(tmp_path, "one", ProposalConfig(
        edge_source="hed", hed_batch_size=1, num_candidates=8, max_boxes=300), per_image)
    assert all(call[0] == 1 for call in per_image.calls)
    config = ProposalConfig(edge_source="hed", hed_batch_size=2, num_candidates=8, max_boxes=300)
    batched = FakeHED()
    batched_stats, got = _cached(tmp_path, "two", config, batched, num_workers)
    assert batched_stats["processed"] == stats["processed"] == 7
    assert batched_stats["corrupt"] == 1 and batched_stats["empty"] == stats["empty"]
    assert max(call[0] for call in batched.calls) == 2, "equal sizes share calls of 2"
    assert len(batched.calls) == 3  # 4 images of 120 x 160 in 2 calls, 150 x 130 alone.
    _assert_same(expected, got)
    valid = dict(zip(got.filenames.tolist(), got.num_valid.tolist()))
    assert valid.pop("broken.png") == 0 and valid.pop("tiny.png") == 0
    assert min(valid.values()) > 0, valid


def test_stage_batched_route_resumes_and_names_failing_images(tmp_path):
    config = ProposalConfig(edge_source="hed", hed_batch_size=4, num_candidates=8, max_boxes=300)
    cache = cache_lib.ProposalCache(tmp_path, config)
    examples = _mixed_examples()
    runner.run_proposal_stage(examples[:3], cache, config, commit_seconds=0,
                              edge_detector=FakeHED())
    detector = FakeHED()
    stats = runner.run_proposal_stage(examples, cache, config, commit_seconds=0,
                                      edge_detector=detector)
    assert stats["skipped_done"] == 3 and stats["processed"] == 4
    assert sum(call[0] for call in detector.calls) == 3, "only the new decodable images"

    class Broken(FakeHED):
        def _fake_network(self, batch):
            raise MemoryError("out of memory")

    # The first call: the 4 images of 120 x 160 (hed_batch_size 4), named.
    expected = (r"HED failed on 4 images \(images/000.png, images/001.png, images/002.png, "
                r"images/003.png\), shapes \[\(120, 160, 3\)\]: MemoryError: out of memory")
    with pytest.raises(RuntimeError, match=expected):
        runner.run_proposal_stage(examples, cache_lib.ProposalCache(tmp_path / "b", config),
                                  config, edge_detector=Broken())


def _sized_examples(sizes):
    """``(filename, PNG)`` of rectangle scenes resized to each ``(height, width)``."""
    return [(f"sized/{index:03d}.png", encode_png(cv2.resize(
        rectangles_scene(index, height=96, width=128), (width, height),
        interpolation=cv2.INTER_AREA))) for index, (height, width) in enumerate(sizes)]


def _tasks(examples, batch_size, detector):
    config = ProposalConfig(edge_source="hed", hed_batch_size=batch_size)
    return list(runner._hed_tasks(iter(examples), config, detector))


def test_interleaved_sizes_fill_whole_batches_in_input_order():
    # Four padded sizes, interleaved as photos of a dataset come: a window of 4 batches grouped
    # apart would give 8 half-full calls; buckets that outlive a window give 4 full ones.
    shapes = [(48, 64), (64, 48), (40, 80), (80, 40)]
    examples = _sized_examples(shapes * 4)
    detector = FakeHED()
    tasks = _tasks(examples, 4, detector)
    assert [call[0] for call in detector.calls] == [4, 4, 4, 4]
    assert [task[1] for task in tasks] == [name for name, _ in examples], "input order"
    for (name, data), task in zip(examples, tasks):
        image = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
                             cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(task[2], detector.edge_probabilities(image), err_msg=name)


def test_waiting_images_are_bounded_by_the_oldest_bucket_running(monkeypatch):
    monkeypatch.setattr(runner, "HED_PENDING_BATCHES", 2)
    # Every image a padded size of its own but the first and the last: nothing fills a batch of
    # 4, so once more than 2 x 4 images wait, the oldest image's bucket runs part-full.
    sizes = [(48, 64)] + [(48 + 16 * index, 64) for index in range(1, 11)] + [(48, 64)]
    detector = FakeHED()
    tasks = _tasks(_sized_examples(sizes), 4, detector)
    assert [task[1] for task in tasks] == [f"sized/{index:03d}.png" for index in range(12)]
    # The 9th waiting image (index 8) made the first bucket (index 0) run alone, then index 1's,
    # ...; at the end the rest run oldest first, the last image joining the first's size anew.
    assert detector.calls[0] == (1, 48, 64, 3) and len(detector.calls) == 12
    assert [call[1] for call in detector.calls[:4]] == [48, 64, 80, 96]


def test_a_hed_detector_of_another_precision_is_refused(tmp_path):
    config = ProposalConfig(edge_source="hed", hed_precision="float32")
    cache = cache_lib.ProposalCache(tmp_path, config)
    with pytest.raises(ValueError, match="Received: detector precision='bfloat16', "
                                         "hed_precision='float32'"):
        runner.run_proposal_stage([], cache, config, edge_detector=FakeHED("bfloat16"))


def test_stage_batched_route_with_real_hed_matches_per_image(tmp_path):
    detector = edges_lib.HEDEdgeDetector()  # One network for both runs.
    examples = encoded_examples(3, height=96, width=128)
    arrays = []
    for batch_size in (1, 3):
        config = ProposalConfig(edge_source="hed", hed_batch_size=batch_size, num_candidates=8,
                                max_boxes=300, kmeans_n_init=3)
        cache = cache_lib.ProposalCache(tmp_path / str(batch_size), config)
        runner.run_proposal_stage(examples, cache, config, edge_detector=detector)
        arrays.append(cache.load())
    one, batched = arrays
    np.testing.assert_array_equal(one.filenames, batched.filenames)
    np.testing.assert_array_equal(one.num_valid, batched.num_valid)
    assert np.all(one.num_valid > 0)
    # The network's batched convolution may round differently from one image at a time (the
    # maps agree within BATCH_ATOL, test above), and EdgeBoxes turns a last-bit difference into
    # another box now and then: the candidates must match (IoU >= 0.7) at least as often as
    # the proposals match themselves under another k-means seed (72-80 % on photographs).
    matched = [np.max(_iou(batched.boxes[i, :count], one.boxes[i, :count]), axis=1) >= 0.7
               for i, count in enumerate(one.num_valid)]
    assert np.mean(np.concatenate(matched)) >= 0.72


def _iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """IoU [n, k] of normalized [ymin, xmin, ymax, xmax] boxes."""
    low = np.maximum(first[:, None, :2], second[None, :, :2])
    high = np.minimum(first[:, None, 2:], second[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=-1)
    area = lambda boxes: np.prod(boxes[:, 2:] - boxes[:, :2], axis=-1)  # noqa: E731
    return inter / (area(first)[:, None] + area(second)[None, :] - inter)
