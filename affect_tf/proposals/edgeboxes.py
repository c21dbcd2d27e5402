"""EdgeBoxes proposals and the geometric filter (Algorithm 1, steps 1-2).

Box conventions in this module:

* ``boxes_xywh``: OpenCV EdgeBoxes' pixel rectangles ``(x, y, w, h)``. They carry the +1 offset of
  the MATLAB original: the box covers the 0-based pixel columns ``x - 1 .. x - 1 + w`` and rows
  ``y - 1 .. y - 1 + h`` (inclusive; EdgeBoxes' ``scoreBox`` sums its integral images over
  ``x0 .. x0 + w``), i.e. the continuous extent ``[x - 1, x + w)`` in pixel-corner coordinates.
  Their area is ``w * h`` pixels, as EdgeBoxes' own overlap and the paper's filter count it.
* ``boxes_xyxy``: ``[x1, y1, x2, y2] = [x, y, x + w, y + h]``, for overlaps (areas ``w * h``).
* Normalized ``[y1, x1, y2, x2]`` in [0, 1] (what ``tf.image.crop_and_resize`` takes): produced
  once, by :func:`xywh_to_normalized_yxyx`, when boxes leave the proposals package.
"""

from __future__ import annotations

import cv2
import numpy as np

from affect_tf.config import ProposalConfig
from affect_tf.proposals.constants import generation_limits  # noqa: F401  (re-exported)

# OpenCV's EdgeBoxes tabulates its scale normalization for box half-perimeters below 10,000 pixels
# and reads past the table for larger images.
_MAX_HALF_PERIMETER = 19_000


def _empty_boxes() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 4), np.int32), np.zeros((0,), np.float32)


def edge_boxes(edges: np.ndarray, orientation: np.ndarray,
               config: ProposalConfig) -> tuple[np.ndarray, np.ndarray]:
    """EdgeBoxes proposals (Zitnick & Dollar, ECCV 2014) of one edge map.

    Args:
        edges: float32 [H, W] thinned edge strength in [0, 1].
        orientation: float32 [H, W] edge-normal orientation in [0, pi) (see ``edges.py``).
        config: reads ``max_boxes``, ``edge_boxes_alpha``, ``edge_boxes_beta``,
            ``edge_boxes_min_score`` and the filter bounds (see :func:`generation_limits`).

    Returns:
        ``(boxes_xywh, scores)``: int32 [n, 4] OpenCV pixel rectangles ``(x, y, w, h)`` with the
        MATLAB +1 offset (module docstring), and float32 [n] objectness, sorted by score
        descending; ``n <= config.max_boxes``, and n = 0 for a flat (edgeless) map or an image
        too small to hold a box of ``min_box_area`` pixels.

    Raises:
        ValueError: maps of different or non-2-D shapes, or an image too large for EdgeBoxes.
    """
    edges = np.ascontiguousarray(edges, dtype=np.float32)
    orientation = np.ascontiguousarray(orientation, dtype=np.float32)
    if edges.ndim != 2 or edges.shape != orientation.shape:
        raise ValueError(
            "edges and orientation must be 2-D maps [H, W] of the same shape. "
            f"Received: edges.shape={edges.shape}, orientation.shape={orientation.shape}")
    height, width = edges.shape
    if height + width > _MAX_HALF_PERIMETER:
        raise ValueError(
            f"EdgeBoxes handles images with height + width <= {_MAX_HALF_PERIMETER} pixels; "
            "resize first (ProposalConfig.proposal_max_side). "
            f"Received: edges.shape={edges.shape}")
    max_aspect_ratio, min_area = generation_limits(config)
    # No box can pass the area filter, and EdgeBoxes needs a 1-pixel border plus a few pixels.
    if min(height, width) < 5 or height * width < config.min_box_area:
        return _empty_boxes()
    if not np.any(edges > 0):
        return _empty_boxes()
    # A fresh object per call: EdgeBoxesImpl keeps per-image state, so sharing one across threads
    # would race; construction costs microseconds.
    generator = cv2.ximgproc.createEdgeBoxes()
    generator.setMaxBoxes(int(config.max_boxes))
    generator.setAlpha(float(config.edge_boxes_alpha))
    generator.setBeta(float(config.edge_boxes_beta))
    generator.setMinScore(float(config.edge_boxes_min_score))
    generator.setMaxAspectRatio(max_aspect_ratio)
    generator.setMinBoxArea(min_area)
    boxes, scores = generator.getBoundingBoxes(edges, orientation)
    # OpenCV answers ``((), None)`` when it finds nothing.
    if boxes is None or len(boxes) == 0:
        return _empty_boxes()
    boxes = np.asarray(boxes, dtype=np.int32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if scores.shape[0] != boxes.shape[0]:
        raise RuntimeError(
            "EdgeBoxes returned different numbers of boxes and scores. "
            f"Received: {boxes.shape[0]} boxes, {scores.shape[0]} scores")
    # Stable sort by score (OpenCV already sorts; this makes the order a documented contract).
    order = np.argsort(-scores, kind="stable")
    return boxes[order], scores[order]


def geometric_filter(boxes_xywh: np.ndarray, scores: np.ndarray,
                     config: ProposalConfig) -> tuple[np.ndarray, np.ndarray]:
    """The geometric filter of Algorithm 1, step 2, with the authors' side bounds as an option.

    Drops a box when its area ``w * h`` is below ``min_box_area`` (paper: 800 pixels at the
    ``max_side`` scale), when ``h / w`` or ``w / h`` exceeds ``max_aspect_ratio`` (paper: 6; a ratio
    of exactly 6 is kept), when a side is below ``min_box_side`` (authors' code: 28; 0 disables) or
    above ``max_box_side`` (authors' code: 500; 0 disables). Degenerate boxes (``w`` or ``h`` <= 0)
    are always dropped. The order of the kept boxes is unchanged.

    Args:
        boxes_xywh: [n, 4] pixel rectangles ``(x, y, w, h)`` (int or float).
        scores: [n] objectness.
        config: reads ``min_box_area``, ``max_aspect_ratio``, ``min_box_side``, ``max_box_side``.

    Returns:
        ``(boxes_xywh, scores)``: the kept rows, dtypes unchanged.
    """
    boxes_xywh = np.asarray(boxes_xywh)
    scores = np.asarray(scores)
    if boxes_xywh.size == 0:
        return boxes_xywh.reshape(0, 4), scores.reshape(0)
    if boxes_xywh.ndim != 2 or boxes_xywh.shape[1] != 4 or scores.shape != boxes_xywh.shape[:1]:
        raise ValueError(
            "boxes_xywh must be [n, 4] and scores [n]. "
            f"Received: boxes_xywh.shape={boxes_xywh.shape}, scores.shape={scores.shape}")
    width = boxes_xywh[:, 2].astype(np.float64)
    height = boxes_xywh[:, 3].astype(np.float64)
    # Products, not quotients: exact for integer sides (aspect 6 = 6 kept, 601 / 100 dropped)
    # and no division by a zero side.
    ratio = float(config.max_aspect_ratio)
    keep = (width > 0) & (height > 0)
    keep &= width * height >= config.min_box_area
    keep &= (width <= ratio * height) & (height <= ratio * width)
    if config.min_box_side > 0:
        keep &= np.minimum(width, height) >= config.min_box_side
    if config.max_box_side > 0:
        keep &= np.maximum(width, height) <= config.max_box_side
    return boxes_xywh[keep], scores[keep]


def xywh_to_xyxy(boxes_xywh: np.ndarray) -> np.ndarray:
    """``(x, y, w, h)`` -> ``[x, y, x + w, y + h]`` as float64 [n, 4] (areas ``w * h``)."""
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def xywh_to_normalized_yxyx(boxes_xywh: np.ndarray, height: int, width: int) -> np.ndarray:
    """EdgeBoxes' pixel ``(x, y, w, h)`` -> normalized ``[y1, x1, y2, x2]`` in [0, 1].

    The box covers 0-based pixels ``x - 1 .. x - 1 + w`` (module docstring: MATLAB's +1 offset,
    inclusive end), so its pixel-corner extent is ``[x - 1, x + w)``; dividing by the image size
    makes it independent of the resolution at which the crop is later taken. A box spanning the
    whole image maps to ``[0, 0, 1, 1]``. Values are clipped to [0, 1].

    Args:
        boxes_xywh: [n, 4] OpenCV EdgeBoxes rectangles at the resolution of the edge map.
        height: height in pixels of the image the boxes were computed on.
        width: width in pixels of that image.

    Returns:
        float32 [n, 4] normalized ``[y1, x1, y2, x2]`` (``tf.image.crop_and_resize`` order).
    """
    if height <= 0 or width <= 0:
        raise ValueError(
            f"height and width must be > 0. Received: height={height}, width={width}")
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    x1 = (boxes[:, 0] - 1.0) / width
    y1 = (boxes[:, 1] - 1.0) / height
    x2 = (boxes[:, 0] + boxes[:, 2]) / width
    y2 = (boxes[:, 1] + boxes[:, 3]) / height
    normalized = np.stack([y1, x1, y2, x2], axis=1)
    return np.clip(normalized, 0.0, 1.0).astype(np.float32)
