"""Candidate regions of one image: resize, edges, EdgeBoxes, filter, normalized cut (Algorithm 1,
steps 1-3).

This is the boundary of the proposals package: what :func:`propose` returns is normalized
``[y1, x1, y2, x2]`` float32 boxes in [0, 1] relative to the image (``tf.image.crop_and_resize``'s
convention), converted once from OpenCV's pixel ``(x, y, w, h)``.
"""

from __future__ import annotations

import dataclasses
import time

import cv2
import numpy as np

from affect_tf import io as io_lib
from affect_tf.config import ProposalConfig
from affect_tf.proposals import edgeboxes
from affect_tf.proposals import selection
from affect_tf.proposals.edges import EdgeDetector, make_edge_detector


# eq=False: == on numpy fields would be ambiguous; compare the arrays.
@dataclasses.dataclass(frozen=True, eq=False)
class Proposals:
    """The m candidate regions H of one image (Algorithm 1, step 3).

    Rows are ordered by objectness, descending; k <= m (``num_candidates``), k = 0 for an image
    with no box that passes the filter. ``len(proposals)`` is k.

    Attributes:
        boxes: float32 [k, 4] normalized ``[y1, x1, y2, x2]`` in [0, 1], relative to the image.
        objectness: float32 [k] EdgeBoxes scores (not calibrated; normalized downstream).
    """

    boxes: np.ndarray
    objectness: np.ndarray

    @classmethod
    def empty(cls) -> "Proposals":
        """No regions: boxes [0, 4], objectness [0]."""
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Grayscale [H, W] / [H, W, 1], RGB [H, W, 3] or RGBA [H, W, 4] uint8 -> RGB uint8 [H, W, 3].

    RGBA is composited on white, as ``affect_tf.io.decode_image_bytes`` does for transparent files.

    Raises:
        ValueError: not a uint8 array, a wrong rank or channel count, or an empty image.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(
            "image must be a numpy uint8 array [H, W], [H, W, 1], [H, W, 3] or [H, W, 4]. "
            f"Received: {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(
            "image must be uint8 (decode it with affect_tf.io.decode_image_bytes; floats would need a "
            f"range convention). Received: dtype={image.dtype}, shape={image.shape}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(
            "image must have shape [H, W], [H, W, 1], [H, W, 3] or [H, W, 4]. "
            f"Received: shape={image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image must not be empty. Received: shape={image.shape}")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.shape[2] == 4:
        alpha = image[..., 3:].astype(np.float32) * np.float32(1.0 / 255.0)
        rgb = image[..., :3].astype(np.float32) * alpha + np.float32(255.0) * (1.0 - alpha)
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def resize_for_proposals(image_rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Shrinks the image so its longer side is at most ``max_side`` (never enlarges it).

    METHOD.md, C8: proposals are computed, and the 800-pixel area filter applied, at this scale.
    ``INTER_AREA`` averages the source pixels, so fine texture does not alias into false edges.

    Args:
        image_rgb: uint8 [H, W, 3].
        max_side: the longest side allowed, pixels.

    Returns:
        uint8 [h, w, 3] with ``max(h, w) <= max_side`` (the input itself if already small enough).
    """
    height, width = image_rgb.shape[:2]
    longer = max(height, width)
    if longer <= max_side:
        return image_rgb
    scale = max_side / longer
    new_width = min(max_side, max(1, int(round(width * scale))))
    new_height = min(max_side, max(1, int(round(height * scale))))
    return cv2.resize(image_rgb, (new_width, new_height), interpolation=cv2.INTER_AREA)


def propose(image_rgb: np.ndarray, config: ProposalConfig,
            edge_detector: EdgeDetector | None = None, *,
            timings: dict[str, float] | None = None) -> Proposals:
    """The m candidate regions of one image (Algorithm 1, steps 1-3).

    Steps: resize so the longer side is <= ``config.proposal_max_side``; edges and orientation;
    EdgeBoxes (step 1); the geometric filter (step 2); normalized-cut selection of
    ``config.num_candidates`` boxes (step 3); conversion to normalized boxes.

    Args:
        image_rgb: uint8 image [H, W, 3] (RGB), [H, W] or [H, W, 1] (gray) or [H, W, 4] (RGBA).
        config: proposal settings.
        edge_detector: image -> (edges, orientation), e.g. from ``make_edge_detector(config)``;
            None builds one for this call (costly for ``hed``: pass one when calling repeatedly).
        timings: if given, seconds spent per step are added to it under ``resize``, ``edges``,
            ``edgeboxes``, ``filter`` and ``selection``.

    Returns:
        :class:`Proposals` with k <= m boxes; k = 0, without error, for a flat image or one too
        small to hold a box that passes the filter.

    Raises:
        ValueError: a non-uint8 image or a wrong shape; the message names what was received.
    """
    if edge_detector is None:
        edge_detector = make_edge_detector(config)
    clock = _Clock(timings)
    small = proposal_image(image_rgb, config)
    clock.lap("resize")
    if small is None:
        return Proposals.empty()
    edges, orientation = edge_detector(small)
    clock.lap("edges")
    return propose_from_edges(edges, orientation, config, timings=timings)


def proposal_image(image_rgb: np.ndarray, config: ProposalConfig) -> np.ndarray | None:
    """The image the edge detector sees: RGB, resized to ``config.proposal_max_side``.

    Args:
        image_rgb: uint8 image [H, W, 3] (RGB), [H, W] or [H, W, 1] (gray) or [H, W, 4] (RGBA).
        config: proposal settings.

    Returns:
        uint8 [h, w, 3] RGB with ``max(h, w) <= proposal_max_side``, or None when no box of
        ``min_box_area`` pixels fits in it (then no edge detector needs to run).

    Raises:
        ValueError: a non-uint8 image or a wrong shape; the message names what was received.
    """
    small = resize_for_proposals(to_rgb_uint8(image_rgb), config.proposal_max_side)
    height, width = small.shape[:2]
    if height * width < config.min_box_area or min(height, width) < 5:
        return None
    return small


def propose_from_edges(edges: np.ndarray, orientation: np.ndarray, config: ProposalConfig, *,
                       timings: dict[str, float] | None = None) -> Proposals:
    """The m candidate regions from an image's edge maps (Algorithm 1, steps 1-3 after the edges).

    EdgeBoxes (step 1), the geometric filter (step 2), the normalized-cut selection (step 3) and
    the conversion to normalized boxes: what :func:`propose` does once it has the edges.

    Args:
        edges: float32 [h, w] thinned edge strength in [0, 1] of the :func:`proposal_image`.
        orientation: float32 [h, w] edge-normal orientation in [0, pi).
        config: proposal settings.
        timings: as in :func:`propose` (``edgeboxes``, ``filter``, ``selection``).

    Returns:
        :class:`Proposals`, boxes normalized to the ``[h, w]`` image.
    """
    clock = _Clock(timings)
    height, width = edges.shape[:2]
    boxes_xywh, scores = edgeboxes.edge_boxes(edges, orientation, config)
    clock.lap("edgeboxes")
    boxes_xywh, scores = edgeboxes.geometric_filter(boxes_xywh, scores, config)
    clock.lap("filter")
    if boxes_xywh.shape[0] == 0:
        return Proposals.empty()
    keep = selection.normalized_cut_select(
        edgeboxes.xywh_to_xyxy(boxes_xywh), scores, config.num_candidates,
        affinity=config.affinity, n_init=config.kmeans_n_init, seed=config.proposal_seed,
        row_normalize=config.spectral_row_normalize, precision=config.selection_precision,
        affinity_format=config.affinity_format, sparse_solver=config.sparse_solver)
    clock.lap("selection")
    # The one conversion out of OpenCV's pixel (x, y, w, h) (edgeboxes.py documents the offset).
    boxes = edgeboxes.xywh_to_normalized_yxyx(boxes_xywh[keep], height, width)
    return Proposals(boxes, scores[keep].astype(np.float32))


class _Clock:
    """Adds the seconds between laps to ``timings[name]`` (a no-op without a dict)."""

    def __init__(self, timings: dict[str, float] | None):
        self._timings = timings
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        if self._timings is None:
            return
        now = time.perf_counter()
        self._timings[name] = self._timings.get(name, 0.0) + now - self._last
        self._last = now


# Outcome of one encoded image (propose_encoded): proposals found, none passed the filter, or the
# bytes are not an image.
STATUS_OK, STATUS_EMPTY, STATUS_CORRUPT = "ok", "empty", "corrupt"


@dataclasses.dataclass(frozen=True)
class ImageResult:
    """What the proposal runners store and count for one image.

    Attributes:
        filename: the ``image/filename`` key.
        proposals: the candidate regions (empty for ``corrupt`` and ``empty``).
        status: ``ok``, ``empty`` or ``corrupt``.
        message: why an image is ``corrupt`` (empty otherwise).
    """

    filename: str
    proposals: Proposals
    status: str
    message: str = ""


def decode_for_proposals(filename: str, data: bytes,
                         config: ProposalConfig) -> np.ndarray | ImageResult:
    """Decodes one encoded image by content into the image its edge detector sees.

    Args:
        filename: the ``image/filename`` key (for the result and messages).
        data: the encoded image bytes.
        config: proposal settings.

    Returns:
        The uint8 [h, w, 3] RGB :func:`proposal_image`, or, when there is nothing to detect
        edges on, the image's final :class:`ImageResult`: ``corrupt`` for bytes that are not an
        image (stored with no regions; it still gets its whole-image prediction downstream),
        ``empty`` for an image too small for any box.
    """
    try:
        image = io_lib.decode_image_bytes(data, filename)
    except io_lib.ImageDecodeError as error:
        return ImageResult(filename, Proposals.empty(), STATUS_CORRUPT, str(error))
    try:
        small = proposal_image(image, config)
    except Exception as error:  # Re-raised with the file's name.
        raise _failed(filename, image.shape, error) from error
    if small is None:
        return ImageResult(filename, Proposals.empty(), STATUS_EMPTY)
    return small


def result_from_edges(filename: str, edges: np.ndarray, orientation: np.ndarray,
                      config: ProposalConfig) -> ImageResult:
    """:func:`propose_from_edges` of one image as the runners store it.

    Raises:
        RuntimeError: the proposals failed; the message names the file.
    """
    try:
        proposals = propose_from_edges(edges, orientation, config)
    except Exception as error:  # Re-raised with the file's name.
        raise _failed(filename, edges.shape, error) from error
    return ImageResult(filename, proposals, STATUS_OK if len(proposals) else STATUS_EMPTY)


def _failed(filename: str, shape: tuple[int, ...], error: Exception) -> RuntimeError:
    return RuntimeError(f"Proposals failed for {filename} (shape {tuple(shape)}): "
                        f"{type(error).__name__}: {error}")


def propose_encoded(filename: str, data: bytes, config: ProposalConfig,
                    edge_detector: EdgeDetector) -> ImageResult:
    """Decodes one encoded image by content and proposes its regions: the per-image step that the
    local and Beam runners share (:func:`decode_for_proposals`, the edges, then
    :func:`result_from_edges`).

    Undecodable bytes are not an error: the image is stored with no regions (status ``corrupt``)
    and still gets its whole-image prediction downstream.

    Raises:
        RuntimeError: the edges or the proposals failed on a decodable image; the message names
            the file, which the traceback alone would not.
    """
    small = decode_for_proposals(filename, data, config)
    if isinstance(small, ImageResult):
        return small
    try:
        edges, orientation = edge_detector(small)
    except Exception as error:  # Re-raised with the file's name.
        raise _failed(filename, small.shape, error) from error
    return result_from_edges(filename, edges, orientation, config)
