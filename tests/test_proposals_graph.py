"""Tests of affect_tf.proposals.graph: in-graph proposals for a served model.

The traced functions are built once per module (tracing costs seconds); every image goes through
the same concrete function with unknown H and W, as a SavedModel signature would.
"""

import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from affect_tf.proposals import graph as gp
from affect_tf.proposals import selection
from affect_tf.config import ProposalConfig
from affect_tf.io import encode_png
from affect_tf.metrics import box_iou
from affect_tf.testing import rectangles_scene

M = 50  # The paper's m.
CONFIG = ProposalConfig(num_candidates=M)
PYTHON_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


@pytest.fixture(scope="module")
def single():
    """propose_in_graph under tf.function with an unknown image size (one trace)."""
    return tf.function(lambda image: gp.propose_in_graph(image, CONFIG),
                       input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)],
                       autograph=False)


@pytest.fixture(scope="module")
def single_float():
    """propose_in_graph on float images in [0, 255] with an unknown size (one trace)."""
    return tf.function(lambda image: gp.propose_in_graph(image, CONFIG),
                       input_signature=[tf.TensorSpec([None, None, 3], tf.float32)],
                       autograph=False)


@pytest.fixture(scope="module")
def decoded_batch():
    """propose_batch_in_graph on decoded uint8 images [B, H, W, 3] (one trace)."""
    return tf.function(lambda images: gp.propose_batch_in_graph(images, CONFIG),
                       input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)],
                       autograph=False)


@pytest.fixture(scope="module")
def encoded_batch():
    """propose_batch_in_graph on encoded images [B] (one trace)."""
    return tf.function(lambda encoded: gp.propose_batch_in_graph(encoded, CONFIG),
                       input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)


def _check_output(boxes, objectness, num_valid, m=M):
    boxes, objectness, k = boxes.numpy(), objectness.numpy(), int(num_valid)
    assert boxes.shape == (m, 4) and boxes.dtype == np.float32
    assert objectness.shape == (m,) and objectness.dtype == np.float32
    assert num_valid.dtype == tf.int32 and 0 <= k <= m
    assert np.all((boxes >= 0.0) & (boxes <= 1.0))
    valid = boxes[:k]
    assert np.all(valid[:, 2] > valid[:, 0]) and np.all(valid[:, 3] > valid[:, 1])
    assert np.all(np.diff(objectness[:k]) <= 0)
    assert np.all(boxes[k:] == 0) and np.all(objectness[k:] == 0)
    return k


_RNG = np.random.default_rng(0)
IMAGES = {
    "random": (_RNG.integers(0, 256, (90, 70, 3), dtype=np.uint8), M),
    "flat": (np.full((100, 120, 3), 77, np.uint8), 0),
    "1x1": (np.zeros((1, 1, 3), np.uint8), 0),
    "2x3": (np.full((2, 3, 3), 200, np.uint8), 0),
    "tall_thin": (_RNG.integers(0, 256, (2000, 10, 3), dtype=np.uint8), 0),
    "tall": (np.tile(rectangles_scene(1)[:, :60], (4, 1, 1)), M),
    "2000x3000": (_RNG.integers(0, 256, (2000, 3000, 3), dtype=np.uint8), M),
}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_shapes_and_ranges(single, name):
    image, expected_valid = IMAGES[name]
    assert _check_output(*single(image)) == expected_valid


def test_deterministic(single):
    image = rectangles_scene(2)
    first, second = single(image), single(image)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_float_input_matches_uint8(single, single_float):
    image = rectangles_scene(3)
    for a, b in zip(single(image), single_float(image.astype(np.float32))):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_traces_with_unknown_shapes(single, single_float, decoded_batch, encoded_batch):
    gray = tf.function(lambda x: gp.propose_in_graph(x, CONFIG), autograph=False)
    for function, spec in ((single, None), (single_float, None),
                           (gray, tf.TensorSpec([None, None, 1], tf.uint8))):
        concrete = function.get_concrete_function(*([spec] if spec else []))
        shapes = [o.shape.as_list() for o in concrete.structured_outputs]
        assert shapes == [[M, 4], [M], []]
    for function in (decoded_batch, encoded_batch):
        shapes = [o.shape.as_list() for o in function.get_concrete_function().structured_outputs]
        assert shapes == [[None, M, 4], [None, M], [None]]


def _boxes_after_nms(image, config):
    """n, the number of boxes that reach the normalized cut, computed step by step."""
    small = gp.resize_for_proposals(tf.constant(image), config.proposal_max_side)
    edges, orientation = gp.graph_gradient_edges(small)
    boxes, _ = gp.edge_box_candidates(edges, orientation, config, min(config.max_boxes,
                                                                       gp.MAX_GRAPH_BOXES))
    return int(tf.shape(boxes)[0])


@pytest.mark.parametrize("m, max_boxes", [(5, 300), (50, 30)])
def test_exactly_min_m_n_valid(m, max_boxes):
    config = ProposalConfig(num_candidates=m, max_boxes=max_boxes)
    image = rectangles_scene(4)
    n = _boxes_after_nms(image, config)
    boxes, objectness, num_valid = gp.propose_in_graph(image, config)
    assert n > 0 and int(num_valid) == min(m, n)
    _check_output(boxes, objectness, num_valid, m)
    valid = boxes.numpy()[:int(num_valid)]
    assert len(np.unique(valid, axis=0)) == len(valid)


def test_normalized_cut_select_counts():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 100, (40, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(10, 50, (40, 2))], axis=1)
    scores = rng.uniform(size=40)
    for m in (1, 10, 40, 60):
        picked = gp.graph_normalized_cut_select(tf.constant(boxes), tf.constant(scores), m).numpy()
        assert len(picked) == min(m, 40) and len(set(picked.tolist())) == len(picked)
        assert np.all(np.diff(scores[picked]) <= 0)
    # Identical boxes (a degenerate spectrum): still exactly m distinct boxes.
    same = np.tile([[0.0, 0.0, 10.0, 10.0]], (12, 1))
    picked = gp.graph_normalized_cut_select(tf.constant(same), tf.constant(scores[:12]), 5).numpy()
    assert len(set(picked.tolist())) == 5 and np.all(np.diff(scores[:12][picked]) <= 0)


@pytest.mark.parametrize("kind", ["iou", "authors"])
def test_affinity_matches_opencv_path(kind):
    from affect_tf.proposals import selection

    rng = np.random.default_rng(2)
    corners = rng.uniform(0, 100, (30, 2))
    boxes_yxyx = np.concatenate([corners, corners + rng.uniform(5, 60, (30, 2))], axis=1)
    boxes_xyxy = boxes_yxyx[:, [1, 0, 3, 2]]
    expected = selection.AFFINITY_FUNCTIONS[kind](boxes_xyxy)
    np.testing.assert_allclose(gp.box_affinity(tf.constant(boxes_yxyx), kind).numpy(), expected,
                               atol=1e-12)


def test_pick_per_cluster_fills_empty_clusters():
    # Rows ranked by objectness; clusters 1 and 3 of 4 are empty: rows 0 and 2 head clusters 0
    # and 2, the best remaining rows (1, 3) fill the two empty ones.
    labels = tf.constant([2, 2, 0, 0, 2, 0], tf.int32)
    np.testing.assert_array_equal(gp.pick_per_cluster(labels, 4).numpy(), [0, 1, 2, 3])
    labels = tf.constant([1, 0, 1, 2], tf.int32)
    np.testing.assert_array_equal(gp.pick_per_cluster(labels, 3).numpy(), [0, 1, 3])


def test_kmeans_deterministic_and_separates_groups():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = np.concatenate([centre + rng.normal(0, 0.5, (20, 2)) for centre in centres])
    labels = gp.graph_kmeans_labels(tf.constant(points), 3).numpy()
    assert len(set(labels.tolist())) == 3
    for group in range(3):
        assert len(set(labels[group * 20:(group + 1) * 20].tolist())) == 1
    np.testing.assert_array_equal(labels, gp.graph_kmeans_labels(tf.constant(points), 3).numpy())


@pytest.mark.parametrize("num_points, num_clusters, seed, n_init",
                         [(80, 8, 0, 1), (300, 16, 3, 1), (200, 50, 1, 1), (150, 16, 2, 3)])
def test_kmeans_is_scikit_learns_on_the_same_rows(num_points, num_clusters, seed, n_init):
    # Same draws (KMeans(random_state=seed)'s), centring, float32 arithmetic and Lloyd steps:
    # the same clusters, label for label, as the OpenCV path's scikit-learn k-means.
    rng = np.random.default_rng(seed + 10)
    groups = rng.normal(size=(2 * num_clusters, num_clusters))
    points = groups[rng.integers(0, len(groups), num_points)]
    points = points + rng.normal(0.0, 0.3, points.shape)
    rows = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    expected = selection.kmeans_labels(rows, num_clusters, n_init=n_init, seed=seed)
    labels = gp.graph_kmeans_labels(tf.constant(rows), num_clusters, seed=seed, n_init=n_init)
    np.testing.assert_array_equal(labels.numpy(), expected)


def test_kmeans_seed_must_be_a_python_int():
    with pytest.raises(TypeError, match="seed must be a Python int"):
        gp.graph_kmeans_labels(tf.zeros([4, 2]), 2, seed=tf.constant(0))


def test_normalized_cut_one_box_per_separate_group():
    # Three far-apart groups of overlapping boxes, m = 3: one box from each, the group's best.
    base = np.array([[0, 0, 20, 20], [1, 1, 21, 21], [2, 0, 22, 20]], np.float64)
    boxes = np.concatenate([base + offset for offset in (0, 100, 200)])
    scores = np.array([0.9, 0.5, 0.4, 0.3, 0.8, 0.2, 0.1, 0.6, 0.7])
    picked = gp.graph_normalized_cut_select(tf.constant(boxes), tf.constant(scores), 3).numpy()
    np.testing.assert_array_equal(picked, [0, 4, 8])


def _visible_rectangles(image):
    """Normalized boxes of the fully visible rectangles of a rectangles_scene (one colour each)."""
    height, width = image.shape[:2]
    colours = np.unique(image.reshape(-1, 3), axis=0)
    boxes = []
    for colour in colours:
        if np.all(colour == 30):  # The background.
            continue
        mask = np.all(image == colour, axis=2)
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        if mask.sum() == (bottom - top) * (right - left):
            boxes.append([top / height, left / width, bottom / height, right / width])
    return np.array(boxes)


@pytest.mark.parametrize("seed", [0, 2, 3, 8])
def test_finds_bright_rectangles(single, seed):
    image = rectangles_scene(seed)
    truth = _visible_rectangles(image)
    assert len(truth) >= 1
    boxes, _, num_valid = single(image)
    boxes = boxes.numpy()[:int(num_valid)]
    best = box_iou(truth[:, None, :], boxes[None, :, :]).max(axis=1)
    assert np.all(best >= 0.5), best


def test_batched_matches_single(single, encoded_batch, decoded_batch):
    images = [rectangles_scene(seed) for seed in (6, 7)] + [np.full((40, 50, 3), 9, np.uint8)]
    outputs = encoded_batch(tf.constant([encode_png(image) for image in images]))
    assert [o.shape.as_list() for o in outputs] == [[3, M, 4], [3, M], [3]]
    for index, image in enumerate(images):
        for batched, alone in zip(outputs, single(image)):
            np.testing.assert_allclose(batched[index].numpy(), alone.numpy(), atol=1e-6)
    decoded = decoded_batch(np.stack(images[:2]))
    np.testing.assert_allclose(decoded[0].numpy(), outputs[0].numpy()[:2], atol=1e-6)


def test_resized_batch_equals_each_image_alone(single):
    # The served graph decodes and resizes each file alone, then proposes over the padded
    # batch: the same candidates as each image alone, bit for bit, whatever its size.
    side = CONFIG.proposal_max_side
    names = ["random", "2x3", "tall", "2000x3000"]
    padded, sizes = zip(*(gp.resized_for_batch(IMAGES[name][0], side) for name in names))
    assert padded[3].shape == (side, side, 3) and sizes[3].numpy().tolist() == [333, 500]
    padded = tf.stack(list(padded) + [tf.zeros([side, side, 3])])
    sizes = tf.stack(list(sizes) + [tf.zeros([2], tf.int32)])  # A file that did not decode.
    batched = tf.function(lambda p, s: gp.propose_resized_batch(p, s, CONFIG),
                          autograph=False)(padded, sizes)
    assert [o.shape.as_list() for o in batched] == [[5, M, 4], [5, M], [5]]
    for index, name in enumerate(names):
        for got, alone in zip(batched, single(IMAGES[name][0])):
            np.testing.assert_array_equal(got[index].numpy(), alone.numpy())
    assert int(batched[2][4]) == 0 and not np.any(batched[0][4].numpy())


def _all_ops(concrete_function):
    graph_def = concrete_function.graph.as_graph_def()
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops.update(node.op for node in function.node_def)
    return ops, len(graph_def.library.function)


def test_batched_graph_has_no_python_ops(encoded_batch, decoded_batch):
    for function in (encoded_batch, decoded_batch):
        ops, num_functions = _all_ops(function.get_concrete_function())
        assert num_functions > 0  # The map_fn body, loops and conds are library functions.
        # These live in the map_fn body, a library function: the listing reaches nested graphs.
        assert {"NonMaxSuppressionV3", "SelfAdjointEigV2", "ResizeArea"} <= ops
        assert not ops & PYTHON_OPS
        assert not any("py" in op.lower() and "func" in op.lower() for op in ops), ops


def test_saved_model_round_trip(tmp_path, encoded_batch):
    module = tf.Module()
    module.propose = encoded_batch
    signature = encoded_batch.get_concrete_function(tf.TensorSpec([None], tf.string))
    tf.saved_model.save(module, str(tmp_path), signatures={"propose": signature})
    loaded = tf.saved_model.load(str(tmp_path))
    encoded = tf.constant([encode_png(rectangles_scene(9)), encode_png(rectangles_scene(10))])
    served = loaded.signatures["propose"](encoded)
    expected = encoded_batch(encoded)
    for index, key in enumerate(("output_0", "output_1", "output_2")):
        np.testing.assert_allclose(served[key].numpy(), expected[index].numpy(), atol=1e-6)


def _edge_test_images() -> list[np.ndarray]:
    from affect_tf.datasets.affect_demo import scenes

    from affect_tf.proposals import pipeline

    noise = np.random.default_rng(5).integers(0, 256, (37, 53, 3)).astype(np.uint8)
    images = [row[1] for row in scenes.generate_scenes(3, 2)]
    images += [noise, np.zeros((1, 1, 3), np.uint8), np.full((7, 3, 3), 9, np.uint8),
               noise[:9, :11]]
    data = pytest.importorskip("skimage.data")
    return images + [pipeline.resize_for_proposals(data.astronaut(), 300)]


def test_edges_equal_the_opencv_paths_bit_for_bit():
    """Both implementations follow gradient_plan in exact integer arithmetic: equal maps, not
    close ones (EdgeBoxes moves its boxes for a 1e-7 difference)."""
    from affect_tf.proposals import edges as cv_edges  # The reference; imports OpenCV.

    assert (gp.EDGE_SIGMA, gp.SURROUND_RADIUS, gp.SURROUND_STRENGTH, gp.EDGE_GAIN) == (
        cv_edges.GRADIENT_SIGMA, cv_edges.GRADIENT_SURROUND_RADIUS,
        cv_edges.GRADIENT_SURROUND_STRENGTH, cv_edges.GRADIENT_GAIN)
    graph_edges = tf.function(gp.graph_gradient_edges, autograph=False, input_signature=[
        tf.TensorSpec([None, None, 3], tf.float32)])
    for image in _edge_test_images():
        expected, expected_orientation = cv_edges.gradient_edges(image)
        edges, orientation = graph_edges(tf.constant(image, tf.float32))
        np.testing.assert_array_equal(edges.numpy(), expected, err_msg=str(image.shape))
        np.testing.assert_array_equal(orientation.numpy(), expected_orientation,
                                      err_msg=str(image.shape))
    assert np.count_nonzero(expected) < expected.size  # Not vacuous: some pixels are thinned.


def test_window_shapes_pass_filter():
    config = ProposalConfig(min_box_area=800, max_aspect_ratio=6, min_box_side=28,
                            max_box_side=300, proposal_max_side=500)
    shapes = np.array(gp.window_shapes(config), np.float64)
    heights, widths = shapes[:, 0], shapes[:, 1]
    assert len(shapes) > 50
    assert np.all(heights * widths >= 800)
    assert np.all(np.maximum(heights / widths, widths / heights) <= 6)
    assert np.all(np.minimum(heights, widths) >= 28) and np.all(np.maximum(heights, widths) <= 300)


def test_bad_inputs():
    with pytest.raises(ValueError, match="Received: shape"):
        gp.propose_in_graph(np.zeros((4, 4), np.uint8), CONFIG)
    with pytest.raises(ValueError, match="Received: dtype"):
        gp.propose_in_graph(np.zeros((4, 4, 3), np.int32), CONFIG)
    with pytest.raises(ValueError, match="Received: shape"):
        gp.propose_batch_in_graph(tf.constant([["a"]]), CONFIG)
    with pytest.raises(tf.errors.InvalidArgumentError, match="must not be empty"):
        gp.propose_in_graph(np.zeros((0, 5, 3), np.uint8), CONFIG)


@pytest.mark.slow
def test_demo_scene_hit_rate_close_to_opencv():
    """On demo scenes the in-graph candidates find the object about as often as OpenCV's."""
    from affect_tf.datasets.affect_demo import scenes
    from affect_tf.proposals import pipeline

    config = ProposalConfig()
    function = tf.function(lambda x: gp.propose_in_graph(x, config),
                           input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)],
                           autograph=False)
    hits = {"graph": [], "opencv": []}
    for _, image, _, box in scenes.generate_scenes(11, 16):
        boxes, _, num_valid = function(image)
        hits["graph"].append(box_iou(boxes.numpy()[:int(num_valid)], box).max() >= 0.5)
        hits["opencv"].append(box_iou(pipeline.propose(image, config).boxes, box).max() >= 0.5)
    assert np.mean(hits["graph"]) >= 0.8
    assert np.mean(hits["graph"]) >= np.mean(hits["opencv"]) - 0.15


def test_the_graph_engine_imports_without_opencv(tmp_path):
    # The served graph's proposals need no OpenCV: with a cv2 that cannot be imported, the
    # graph module and the package's shared constants still load (TensorFlow's Keras imports
    # cv2 only when it is there).
    import subprocess
    import sys

    fake = tmp_path / "cv2"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('OpenCV was imported')\n")
    import affect_tf

    checkout = str(pathlib.Path(affect_tf.__file__).resolve().parents[1])
    result = subprocess.run(
        [sys.executable, "-c", "import affect_tf.proposals.graph as g; print(g.EDGE_SIGMA)"],
        env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{checkout}",
             "CUDA_VISIBLE_DEVICES": ""}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("1.5")


# ------------------------------------------------------------------------------------------------
# HED edges in the graph, against the OpenCV path's (proposals/edges.py).


def _angle_difference(a, b):
    """|a - b| between edge orientations in [0, pi): 0 and pi are the same line."""
    difference = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return np.minimum(difference, np.pi - difference)


def _well_conditioned(edges):
    """bool [H, W]: where the orientation is a property of the map, not of rounding: its
    smoothed second derivatives (computed in float64) d_xy and d_yy are not at float32's
    rounding level (~1e-8 here), where ``sign(d_xy)`` or the ratio's sign is a coin toss."""
    import cv2

    ramp = np.arange(1, 6, dtype=np.float64)
    kernel = np.concatenate([ramp, ramp[-2::-1]]) / 25.0
    smooth = cv2.sepFilter2D(edges.astype(np.float64), cv2.CV_64F, kernel, kernel,
                             borderType=cv2.BORDER_REFLECT)
    d_xy = cv2.Sobel(smooth, cv2.CV_64F, 1, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    d_yy = cv2.Sobel(smooth, cv2.CV_64F, 0, 2, ksize=3, borderType=cv2.BORDER_REFLECT)
    return (np.abs(d_xy) > 1e-6) & (np.abs(d_yy) > 1e-6)


def test_orientation_matches_opencv_path():
    """Within float32's rounding of the second derivatives, which cancel: on a random map both
    engines' orientations differ from a float64 computation by up to 2e-4 rad (median 3e-6),
    and from each other by as much. Where a derivative is at rounding level (a sparse map's
    flat surroundings) either engine's angle is noise (``sign(1e-9)``): left out. On an
    axis-aligned step edge they agree to the arctangent's last bit."""
    from affect_tf.proposals import edges as cv_edges

    rng = np.random.default_rng(5)
    step = np.zeros((30, 40), np.float32)
    step[12:, :] = 1.0  # A horizontal edge: normal at pi/2 (d_xy is exactly 0 on it).
    maps = {"random": rng.uniform(size=(48, 64)).astype(np.float32),
            "sparse": (rng.uniform(size=(45, 61)) * (rng.uniform(size=(45, 61)) > 0.9)
                       ).astype(np.float32)}
    # One row: every y-derivative is exactly 0 (reflected borders), so O = 0 exactly.
    exact = {"step": step, "flat": np.full((9, 11), 0.3, np.float32),
             "1x7": rng.uniform(size=(1, 7)).astype(np.float32)}
    function = tf.function(gp.graph_orientation_from_edges, autograph=False,
                           input_signature=[tf.TensorSpec([None, None], tf.float32)])
    for name, edges in {**maps, **exact}.items():
        expected = cv_edges.orientation_from_edges(edges)
        got = function(edges).numpy()
        assert got.shape == expected.shape and got.dtype == np.float32, name
        assert np.all((got >= 0) & (got < np.pi)), name
        if name in exact:
            # The same arguments; their arctangent may differ by an ulp: TensorFlow's kernel
            # (Eigen's, vectorised per the CPU's instruction set) against NumPy's (1.2e-7 at the
            # step's pi/2 on an AMD EPYC without AVX-512, equal on one with it).
            np.testing.assert_allclose(got, expected, rtol=0, atol=2.5e-7, err_msg=name)
            continue
        conditioned = _well_conditioned(edges)
        assert conditioned.mean() > 0.95, name
        difference = _angle_difference(got, expected)[conditioned]
        assert np.median(difference) <= 1e-5 and difference.max() <= 1e-3, (name, difference)
    # Near pi/2, not at it: the 1e-5 added to d_xx tilts a step edge's normal by ~1e-4 rad.
    assert np.allclose(function(step).numpy()[10:14, 5:35], np.pi / 2, atol=1e-3)


def test_hed_input_pads_as_the_opencv_path():
    from affect_tf.proposals import edges as cv_edges

    rng = np.random.default_rng(6)
    for shape in ((45, 61), (48, 64), (1, 20), (20, 1), (2, 3), (17, 33)):
        image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        got = gp.graph_hed_input(tf.constant(image, tf.float32)).numpy()
        np.testing.assert_array_equal(got, cv_edges.hed_input(image), err_msg=str(shape))


@pytest.fixture(scope="module")
def hed_float32():
    """The OpenCV path's float32 HED detector, and the graph's edge_fn on its model and
    network (one trace, unknown image size)."""
    from affect_tf.proposals import edges as cv_edges

    detector = cv_edges.HEDEdgeDetector(precision="float32")
    network = cv_edges.hed_network(detector._load(), "float32")
    return detector, _traced_hed(network)


def _traced_hed(network):
    edge_fn = gp.graph_hed_edges(network)

    def edges_and_probabilities(image):
        return edge_fn(image) + (gp.graph_hed_probabilities(network, image),)

    return tf.function(edges_and_probabilities, autograph=False,
                       input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])


def _hed_images():
    """Two small uint8 photos-like images, sides not multiples of 16 (the padding is used)."""
    rng = np.random.default_rng(7)
    scene = rectangles_scene(5)[::3, ::3]  # 50 x 67.
    noisy = np.clip(scene.astype(np.int16) + rng.integers(-12, 13, scene.shape), 0, 255)
    y, x = np.mgrid[0:50, 0:70]
    blobs = np.stack([128 + 100 * np.sin(x / 6.0 + c) * np.cos(y / 9.0 - c) for c in (0, 1, 2)],
                     axis=-1)
    return [noisy.astype(np.uint8), np.clip(blobs, 0, 255).astype(np.uint8)]


def _compare_hed(detector, traced, image, probability_tolerance, edge_share):
    """Asserts the graph's HED maps match ``detector``'s on ``image``; returns the share of
    pixels whose thinned edge is the same (both zero, or both kept within the tolerance)."""
    expected_probabilities = detector.edge_probabilities(image)
    expected_edges, expected_orientation = detector(image)
    edges, orientation, probabilities = (t.numpy() for t in traced(image.astype(np.float32)))
    assert edges.shape == orientation.shape == probabilities.shape == image.shape[:2]
    np.testing.assert_allclose(probabilities, expected_probabilities, rtol=0,
                               atol=probability_tolerance)
    # The orientation of a pixel with no edge nearby is the angle of rounding noise; where the
    # map has some strength it is a property of the edge, and must agree.
    strong = expected_probabilities > 0.1
    assert strong.sum() > 50
    assert np.median(_angle_difference(orientation, expected_orientation)[strong]) < 1e-3
    same = ((edges > 0) == (expected_edges > 0)) & (
        np.abs(edges - expected_edges) <= probability_tolerance + 1e-6)
    assert same.mean() >= edge_share, same.mean()
    return float(same.mean())


# Measured on this machine (TensorFlow 2.21.0, AVX512_BF16) on both images, float32 and
# bfloat16: probabilities equal to the bit, every thinned edge pixel equal, orientation on the
# edges within 4e-6 rad (median). The tolerances leave room for a CPU whose kernels sum in
# another order inside the graph than in the OpenCV path's call of the same network.
def test_hed_edges_match_the_opencv_path(hed_float32):
    detector, traced = hed_float32
    for image in _hed_images():
        _compare_hed(detector, traced, image, probability_tolerance=1e-5, edge_share=0.99)


def test_hed_edges_match_in_bfloat16():
    from affect_tf.proposals import edges as cv_edges
    from affect_tf.testing import bfloat16_runs_here

    if not (cv_edges.cpu_has_bfloat16() and bfloat16_runs_here()):
        pytest.skip("this CPU computes no bfloat16 (avx512_bf16 / amx_bf16)")
    detector = cv_edges.HEDEdgeDetector(precision="bfloat16")
    traced = _traced_hed(cv_edges.hed_network(detector._load(), "bfloat16"))
    for image in _hed_images():
        _compare_hed(detector, traced, image, probability_tolerance=1e-3, edge_share=0.97)


def test_proposals_with_hed_edges(hed_float32):
    detector, _ = hed_float32
    from affect_tf.proposals import edges as cv_edges

    network = cv_edges.hed_network(detector._load(), "float32")
    config = ProposalConfig(num_candidates=8, max_boxes=100, min_box_area=200)
    function = tf.function(
        lambda image: gp.propose_in_graph(image, config, edge_fn=gp.graph_hed_edges(network)),
        input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)], autograph=False)
    image = rectangles_scene(8)[::2, ::2]  # 75 x 100.
    k = _check_output(*function(image), m=8)
    assert k > 0
    ops, _ = _all_ops(function.get_concrete_function())
    assert not ops & PYTHON_OPS and "Conv2D" in ops
