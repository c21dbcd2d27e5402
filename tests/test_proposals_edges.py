"""Edge maps, EdgeBoxes and the geometric filter (affect_tf/proposals/edges.py, edgeboxes.py)."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from affect_tf.config import ProposalConfig
from affect_tf.proposals import constants, edgeboxes
from affect_tf.proposals import edges as edges_lib

# A rectangle on rows 30..89 and columns 40..119 (inclusive) of a 120 x 160 image.
RECT_TOP, RECT_BOTTOM, RECT_LEFT, RECT_RIGHT = 30, 89, 40, 119


def _angle_distance(a, b):
    """Distance between undirected orientations (mod pi), radians."""
    d = np.abs(np.mod(np.asarray(a, np.float64) - b, np.pi))
    return np.minimum(d, np.pi - d)


def _rectangle_image():
    image = np.full((120, 160, 3), 40, np.uint8)
    image[RECT_TOP:RECT_BOTTOM + 1, RECT_LEFT:RECT_RIGHT + 1] = (210, 190, 160)
    return image


def _xywh_to_corner_xyxy(boxes_xywh):
    """EdgeBoxes (x, y, w, h) -> pixel-corner [x1, y1, x2, y2] (MATLAB +1, inclusive end)."""
    b = np.asarray(boxes_xywh, np.float64).reshape(-1, 4)
    return np.stack([b[:, 0] - 1, b[:, 1] - 1, b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)


def _iou(a, b):
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2])
                 - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3])
                 - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def test_gradient_edges_lie_on_rectangle_border_with_normal_orientation():
    edge_map, orientation = edges_lib.gradient_edges(_rectangle_image())
    assert edge_map.shape == orientation.shape == (120, 160)
    assert edge_map.dtype == orientation.dtype == np.float32
    assert edge_map.min() >= 0.0 and edge_map.max() <= 1.0
    assert orientation.min() >= 0.0 and orientation.max() < np.pi

    ys, xs = np.nonzero(edge_map > 0.1)
    assert ys.size > 0
    # Every edge pixel is within 1 px of the rectangle's outline (the step lies between pixels).
    near_horizontal = (np.minimum(np.abs(ys - RECT_TOP), np.abs(ys - RECT_BOTTOM)) <= 1) & (
        xs >= RECT_LEFT - 1) & (xs <= RECT_RIGHT + 1)
    near_vertical = (np.minimum(np.abs(xs - RECT_LEFT), np.abs(xs - RECT_RIGHT)) <= 1) & (
        ys >= RECT_TOP - 1) & (ys <= RECT_BOTTOM + 1)
    assert np.all(near_horizontal | near_vertical)

    # Horizontal sides: normal points along y (pi/2); vertical sides: along x (0 == pi).
    columns = np.arange(RECT_LEFT + 5, RECT_RIGHT - 4)
    rows = np.arange(RECT_TOP + 5, RECT_BOTTOM - 4)
    for row in (RECT_TOP, RECT_BOTTOM):
        band = edge_map[row - 1:row + 2, columns]
        assert np.all(band.max(axis=0) > 0.5), "each column crosses the side once"
        band_orientation = orientation[row - 1:row + 2, columns][band > 0.1]
        assert np.all(_angle_distance(band_orientation, np.pi / 2) < 0.05)
    for column in (RECT_LEFT, RECT_RIGHT):
        band = edge_map[rows, column - 1:column + 2]
        assert np.all(band.max(axis=1) > 0.5)
        band_orientation = orientation[rows, column - 1:column + 2][band > 0.1]
        assert np.all(_angle_distance(band_orientation, 0.0) < 0.05)


def test_gradient_edges_are_one_pixel_wide():
    edge_map, _ = edges_lib.gradient_edges(_rectangle_image())
    # Across the top and bottom sides each column has exactly one edge pixel; across the left and
    # right sides each row has one.
    columns = slice(RECT_LEFT + 5, RECT_RIGHT - 4)
    rows = slice(RECT_TOP + 5, RECT_BOTTOM - 4)
    for row in (RECT_TOP, RECT_BOTTOM):
        counts = np.count_nonzero(edge_map[row - 4:row + 5, columns] > 0, axis=0)
        assert np.all(counts == 1), counts
    for column in (RECT_LEFT, RECT_RIGHT):
        counts = np.count_nonzero(edge_map[rows, column - 4:column + 5] > 0, axis=1)
        assert np.all(counts == 1), counts


def test_thin_edges_reduces_a_soft_ridge_to_one_pixel():
    # A horizontal ridge with a Gaussian profile 10+ pixels wide, like a HED edge map.
    height, width = 64, 80
    profile = np.exp(-0.5 * ((np.arange(height) - 30.3) / 3.0) ** 2).astype(np.float32)
    soft = np.repeat(profile[:, None], width, axis=1)
    orientation = edges_lib.orientation_from_edges(soft)
    assert np.all(_angle_distance(orientation[20:40, 10:-10], np.pi / 2) < 0.05)
    thin = edges_lib.thin_edges(soft, orientation)
    assert np.count_nonzero(soft[:, 40] > 0.1) > 10
    # Far from the ridge (values ~1e-17) the orientation is numerically arbitrary, as in the
    # structured-edge code; count the pixels of any real strength.
    counts = np.count_nonzero(thin[:, 10:-10] > 1e-3, axis=0)
    assert np.all(counts == 1), counts
    assert np.all(np.argmax(thin[:, 10:-10], axis=0) == 30)


def test_thin_edges_suppresses_a_linear_border_ramp():
    # Vertical lines at x = 0..5 (orientation 0): kept by NMS (they are 1 px wide, apart), then
    # scaled by x / 5 within 5 px of the image edge, as edgesNms' border suppression.
    edge_map = np.zeros((40, 40), np.float32)
    edge_map[:, 2] = 1.0
    edge_map[:, 20] = 1.0
    thin = edges_lib.thin_edges(edge_map, np.zeros_like(edge_map), border=5)
    np.testing.assert_allclose(thin[20, 2], 2.0 / 5.0, rtol=1e-6)
    np.testing.assert_allclose(thin[20, 20], 1.0)
    assert thin[1, 20] == pytest.approx(1.0 / 5.0)  # Top rows are ramped too.
    assert np.count_nonzero(thin[:, 21]) == 0


def test_orientation_from_edges_of_axis_aligned_and_diagonal_lines():
    # Soft lines, like HED output. (On a 1-pixel line the radius-4 triangle smoothing is piecewise
    # linear, so its second derivative vanishes beside the line, in the reference code too.)
    size = 64
    vertical = np.zeros((size, size), np.float32)
    vertical[:, 32] = 1.0
    vertical = cv2.GaussianBlur(vertical, (0, 0), 1.5)
    orientation = edges_lib.orientation_from_edges(vertical)
    assert np.all(_angle_distance(orientation[10:-10, 30:35], 0.0) < 0.05)
    # sign(Oxy = 0) counts as +1: a horizontal line gets pi/2, not 0 (edges.py docstring).
    orientation = edges_lib.orientation_from_edges(vertical.T.copy())
    assert np.all(_angle_distance(orientation[30:35, 10:-10], np.pi / 2) < 0.05)
    # The line y = x: its normal is at -45 degrees, i.e. 3 pi / 4.
    diagonal = cv2.GaussianBlur(np.eye(size, dtype=np.float32), (0, 0), 1.5)
    orientation = edges_lib.orientation_from_edges(diagonal)
    on_line = np.arange(12, size - 12)
    assert np.all(_angle_distance(orientation[on_line, on_line], 3 * np.pi / 4) < 0.05)
    assert orientation.dtype == np.float32
    assert orientation.min() >= 0.0 and orientation.max() < np.pi


def test_gradient_edges_of_a_flat_image_are_zero():
    edge_map, orientation = edges_lib.gradient_edges(np.full((50, 60, 3), 128, np.uint8))
    assert not np.any(edge_map)
    assert orientation.shape == (50, 60)


def test_gradient_edges_reject_wrong_inputs():
    with pytest.raises(ValueError, match=r"Received: shape=\(10, 10\), dtype=uint8"):
        edges_lib.gradient_edges(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="dtype=float32"):
        edges_lib.gradient_edges(np.zeros((10, 10, 3), np.float32))


def test_edge_boxes_find_high_contrast_rectangles():
    image = np.full((240, 320, 3), 25, np.uint8)
    rectangles = [(30, 20, 110, 90), (170, 40, 290, 120), (60, 140, 250, 220)]  # x0, y0, x1, y1
    colours = [(230, 60, 60), (60, 230, 60), (220, 220, 240)]
    for (x0, y0, x1, y1), colour in zip(rectangles, colours):
        image[y0:y1 + 1, x0:x1 + 1] = colour
    edge_map, orientation = edges_lib.gradient_edges(image)
    config = ProposalConfig()
    boxes, scores = edgeboxes.edge_boxes(edge_map, orientation, config)
    assert boxes.dtype == np.int32 and boxes.shape[1] == 4
    assert scores.dtype == np.float32 and scores.shape == (boxes.shape[0],)
    assert 0 < boxes.shape[0] <= config.max_boxes
    assert np.all(np.diff(scores) <= 0), "sorted by score, descending"
    truth = np.asarray([[x0, y0, x1 + 1, y1 + 1] for x0, y0, x1, y1 in rectangles], np.float64)
    best = _iou(truth, _xywh_to_corner_xyxy(boxes)).max(axis=1)
    assert np.all(best >= 0.7), best


def test_edge_boxes_of_flat_and_tiny_maps_are_empty():
    config = ProposalConfig()
    for shape in ((100, 120), (10, 10), (3, 400)):
        boxes, scores = edgeboxes.edge_boxes(np.zeros(shape, np.float32),
                                             np.zeros(shape, np.float32), config)
        assert boxes.shape == (0, 4) and boxes.dtype == np.int32
        assert scores.shape == (0,) and scores.dtype == np.float32
    # An edge map full of edges but too small for an 800-pixel box.
    boxes, _ = edgeboxes.edge_boxes(np.ones((20, 30), np.float32), np.zeros((20, 30), np.float32),
                                    config)
    assert boxes.shape == (0, 4)


def test_edge_boxes_generation_limits_are_no_tighter_than_the_filter():
    assert edgeboxes.generation_limits(ProposalConfig()) == (6.0, 800.0)
    assert edgeboxes.generation_limits(ProposalConfig(min_box_area=0)) == (
        6.0, constants.MIN_GENERATED_BOX_AREA)
    assert edgeboxes.generation_limits(ProposalConfig(min_box_side=28, min_box_area=0))[1] == 784.0


def test_geometric_filter_hand_computed_cases():
    config = ProposalConfig()  # Area >= 800, aspect <= 6.
    boxes = np.asarray([
        [1, 1, 40, 20],    # area 800: kept
        [1, 1, 47, 17],    # area 799: dropped
        [1, 1, 120, 20],   # aspect exactly 6 (w / h): kept
        [1, 1, 20, 120],   # aspect exactly 6 (h / w): kept
        [1, 1, 601, 100],  # aspect 6.01: dropped
        [1, 1, 100, 601],  # aspect 6.01 (h / w): dropped
        [1, 1, 0, 900],    # degenerate: dropped
        [5, 5, 500, 400],  # kept
    ], np.int32)
    scores = np.arange(8, 0, -1).astype(np.float32)
    kept, kept_scores = edgeboxes.geometric_filter(boxes, scores, config)
    np.testing.assert_array_equal(kept, boxes[[0, 2, 3, 7]])
    np.testing.assert_array_equal(kept_scores, scores[[0, 2, 3, 7]])
    assert kept.dtype == np.int32


def test_geometric_filter_authors_side_bounds():
    config = ProposalConfig(min_box_side=28, max_box_side=500)
    boxes = np.asarray([[1, 1, 27, 100], [1, 1, 28, 100], [1, 1, 100, 500], [1, 1, 100, 501]])
    kept, _ = edgeboxes.geometric_filter(boxes, np.ones(4, np.float32), config)
    np.testing.assert_array_equal(kept, boxes[[1, 2]])


def test_geometric_filter_empty_input():
    kept, kept_scores = edgeboxes.geometric_filter(
        np.zeros((0, 4), np.int32), np.zeros((0,), np.float32), ProposalConfig())
    assert kept.shape == (0, 4) and kept_scores.shape == (0,)


def test_xywh_to_normalized_yxyx():
    height, width = 100, 200
    boxes = np.asarray([
        [1, 1, width - 1, height - 1],  # The whole image (0-based pixels 0..W-1, 0..H-1).
        [11, 21, 30, 40],               # 0-based columns 10..40, rows 20..60.
        [0, -3, 500, 50],               # Out of the image: clipped.
    ])
    normalized = edgeboxes.xywh_to_normalized_yxyx(boxes, height, width)
    assert normalized.dtype == np.float32
    np.testing.assert_allclose(normalized[0], [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_allclose(normalized[1], [20 / 100, 10 / 200, 61 / 100, 41 / 200], rtol=1e-6)
    np.testing.assert_allclose(normalized[2], [0.0, 0.0, 0.47, 1.0], rtol=1e-6)
    assert edgeboxes.xywh_to_normalized_yxyx(np.zeros((0, 4)), 10, 10).shape == (0, 4)


def test_structured_edge_detector_names_the_missing_model_file(tmp_path):
    missing = str(tmp_path / "model.yml.gz")
    with pytest.raises(FileNotFoundError) as error:
        edges_lib.StructuredEdgeDetector(missing)
    message = str(error.value)
    assert "model.yml.gz" in message and "opencv_extra" in message
    assert "gradient" in message and "hed" in message and message.endswith(f"{missing!r}")
    with pytest.raises(FileNotFoundError):
        edges_lib.make_edge_detector(ProposalConfig(edge_source="sed", sed_model_path=missing))


def test_make_edge_detector_gradient():
    detector = edges_lib.make_edge_detector(ProposalConfig())
    edge_map, orientation = detector(_rectangle_image())
    assert edge_map.shape == orientation.shape == (120, 160)
    assert isinstance(edges_lib.make_edge_detector(ProposalConfig(edge_source="hed")),
                      edges_lib.HEDEdgeDetector)


def test_proposals_package_does_not_import_tensorflow():
    code = ("import sys, affect_tf.proposals as p; from affect_tf.config import ProposalConfig; "
            "p.make_edge_detector(ProposalConfig(edge_source='hed')); "
            "sys.exit(1 if 'tensorflow' in sys.modules else 0)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    environment = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", code], cwd=root, env=environment,
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-2000:]


def test_hed_edge_detector_on_a_small_image():
    detector = edges_lib.HEDEdgeDetector()
    image = np.full((64, 64, 3), 30, np.uint8)
    image[16:48, 20:44] = (220, 200, 60)
    edge_map, orientation = detector(image)
    assert edge_map.shape == orientation.shape == (64, 64)
    assert edge_map.dtype == orientation.dtype == np.float32
    assert edge_map.min() >= 0.0 and edge_map.max() <= 1.0 and edge_map.max() > 0.3
    assert orientation.min() >= 0.0 and orientation.max() < np.pi
    # A size that is not a multiple of 16 is padded and cropped back.
    odd = cv2.resize(image, (37, 50))
    assert detector.edge_probabilities(odd).shape == (50, 37)
