"""The paper's hand-crafted baselines (Tables 2-3): descriptors, their encoders, and a registry.

Yang et al. compare their method with hand-crafted features classified by a linear SVM: global
colour histograms (GCH, LCH), texture (LBP, Gabor, GIST) and local descriptors (SIFT, dense SIFT,
HOG) encoded as bags of words, VLAD or Fisher vectors. The paper gives none of their parameters;
the ones below are the usual ones of each descriptor's own literature, each stated where it is
set. Here:

* **Input**: one uint8 RGB image ``[H, W, 3]`` (what ``affect_tf.io.decode_image_bytes`` returns,
  grey files included). A 2-D grey array is refused, not guessed at: the colour descriptors need
  three channels, and the decoder never produces one. Sides under :data:`MIN_SIDE` are refused
  (HOG's block and the Gabor pyramid need them).
* **Size**: :func:`prepare` first shrinks an image so that its longer side is at most
  :data:`MAX_SIDE` = 256 px (area interpolation; never enlarged), so every descriptor's cost is
  bounded whatever the dataset's resolution. The descriptor functions themselves take any size.
* **Global descriptors** (image -> ``[D]`` float32): :func:`gch` (64), :func:`lch` (1024),
  :func:`lbp` (59), :func:`gabor` (64), :func:`gist` (512).
* **Local descriptors** (image -> ``[n, d]`` float32, each row L2-normalized, ``n`` may be 0):
  :func:`sift_descriptors` (128), :func:`dense_sift_descriptors` (128), :func:`hog_descriptors`
  (36). An :class:`Encoder`, fitted on *training* descriptors only by :func:`fit_encoder`, turns
  a set into one vector: bag of words, VLAD or the improved Fisher vector.
* :data:`REGISTRY` maps each baseline's name (``gch``, ..., ``sift_bow``, ..., ``hog_fv``) to its
  :class:`Baseline`; :data:`NOT_BUILT` lists the paper's rows that cannot be built honestly here,
  with the reason; :func:`parse_names` reads a list of names (``--handcrafted``).

Everything is deterministic: descriptors have no randomness, and the encoders' fits take a seed.
No scikit-image at run time; scikit-learn is imported only inside :func:`fit_encoder`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import cv2
import numpy as np
import scipy.fft

# Longer side of every image a baseline describes: bounds the cost per image (dense SIFT keeps
# about a thousand descriptors, the Gabor bank's FFTs stay small) at a resolution where colour and
# texture statistics are already stable.
MAX_SIDE = 256
# Shorter side below which an image is refused: HOG needs one 16 px block, the 4-level Gabor
# pyramid 2 px at its top level.
MIN_SIDE = 16

# GCH / LCH: 4 levels per channel (the top 2 bits of each 8-bit value), 4^3 = 64 colours.
COLOUR_LEVELS = 4
COLOUR_BINS = COLOUR_LEVELS ** 3
_LEVEL_SHIFT = 6  # 8 bits - log2(COLOUR_LEVELS)
LCH_GRID = 4

# LBP: 8 neighbours at radius 1, taken as the 3x3 ring (Ojala et al.'s original operator; the
# circular version interpolates the four diagonals, which changes little at radius 1 and costs a
# bilinear interpolation per pixel). Non-rotation-invariant uniform patterns: 58 + 1 for the rest.
LBP_BINS = 59
# Neighbours in circular order (0, 45, ..., 315 degrees; rows grow downwards), so that the code's
# circular bit transitions are the ring's.
_LBP_OFFSETS = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))

# Gabor: OpenCV's kernels at wavelength 4 px on a 4-level Gaussian pyramid (wavelengths 4, 8,
# 16, 32 px of the bounded image: one small kernel instead of ones up to 109 px wide), 8
# orientations; sigma = 0.56 wavelength is a one-octave bandwidth, aspect 0.5 the usual one.
GABOR_WAVELENGTH = 4.0
GABOR_LEVELS = 4
GABOR_ORIENTATIONS = 8
GABOR_SIGMA = 0.56 * GABOR_WAVELENGTH
GABOR_ASPECT = 0.5

# GIST (a reimplementation of Oliva & Torralba's descriptor after their reference code's steps,
# not a port of it): grey image resized and centre-cropped to 128 x 128, prefiltered (log,
# whitening, local contrast normalization), a 4-scale x 8-orientation Gabor bank applied in the
# frequency domain, energy averaged over a 4 x 4 grid: 4 x 8 x 16 = 512 values.
GIST_SIZE = 128
GIST_GRID = 4
GIST_SCALES = 4
GIST_ORIENTATIONS = 8
GIST_PREFILTER_CYCLES = 4.0  # cycles per image of the whitening filter
GIST_PAD = 32  # symmetric extension before filtering, so the FFT's wrap-around stays outside
GIST_PEAK_FREQUENCY = 0.25  # cycles / pixel of the finest scale; each next scale halves it
GIST_RADIAL_WIDTH = 0.35  # Gaussian widths, relative to the scale's peak frequency
GIST_ANGULAR_WIDTH = 0.2

# Local descriptors.
SIFT_MAX_KEYPOINTS = 500  # the strongest; bounds n and the cost of encoding
DSIFT_STEP = 8  # px between dense keypoints
DSIFT_BIN = 4  # px per spatial bin: 4 x 4 bins make a 16 px patch
# OpenCV's SIFT bins are 3 * size / 2 px wide for a keypoint of diameter ``size``.
_SIFT_BIN_PER_SIZE = 1.5
SIFT_DIM = 128
HOG_CELL = 8  # Dalal & Triggs: 8 px cells, 2 x 2-cell blocks at an 8 px stride, 9 unsigned bins
HOG_BLOCK = 2 * HOG_CELL
HOG_BINS = 9
HOG_DIM = 4 * HOG_BINS

# Encoders. Codebook sizes: the paper gives none; these are the common ones for each encoding
# (a Fisher vector is 2 K d long: 32 x 128 x 2 = 8192, as VLAD's 64 x 128).
ENCODINGS = ("bow", "vlad", "fv")
DEFAULT_CODEBOOK_SIZES = {"bow": 512, "vlad": 64, "fv": 32}
# Variance floor of the GMM, for unit-norm descriptors (a 128-d unit vector's values vary by
# about 1 / 128 each): keeps a component from collapsing onto repeated descriptors.
_GMM_REG_COVAR = 1e-4
_GMM_MAX_ITER = 100
_KMEANS_INIT = 3
_KMEANS_BATCH = 4096


# --- input ------------------------------------------------------------------------------------

def check_image(image) -> np.ndarray:
    """The image, checked: a uint8 RGB array ``[H, W, 3]`` with both sides >= :data:`MIN_SIDE`.

    Raises:
        ValueError: anything else, naming what was received (a 2-D grey array included).
    """
    if not isinstance(image, np.ndarray):
        raise ValueError("image must be a numpy uint8 array [H, W, 3] (RGB). Received: "
                         f"{type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        hint = (" (a grey image: decode files with affect_tf.io.decode_image_bytes, which returns"
                " RGB, or stack the channel: np.repeat(image[..., None], 3, axis=2))"
                if image.ndim == 2 else "")
        raise ValueError(f"image must be [H, W, 3] (RGB){hint}. Received: shape={image.shape}")
    if image.dtype != np.uint8:
        raise ValueError("image must be uint8 (0-255). Received: "
                         f"dtype={image.dtype}, shape={image.shape}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(f"image sides must be >= {MIN_SIDE} px. Received: shape={image.shape}")
    return image


def bound_size(image: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """Shrinks ``image`` ``[H, W, C]`` so that its longer side is at most ``max_side``.

    Area interpolation (each output pixel averages the input pixels it covers, so no aliasing);
    an image already small enough is returned as it is, never enlarged. The shorter side is kept
    at :data:`MIN_SIDE` or more where it had that much.

    Raises:
        ValueError: ``max_side < MIN_SIDE``.
    """
    if max_side < MIN_SIDE:
        raise ValueError(f"max_side must be >= {MIN_SIDE}. Received: max_side={max_side}")
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image
    size = (min(width, max(MIN_SIDE, round(width * scale))),
            min(height, max(MIN_SIDE, round(height * scale))))
    return cv2.resize(np.ascontiguousarray(image), size, interpolation=cv2.INTER_AREA)


def prepare(image, max_side: int = MAX_SIDE) -> np.ndarray:
    """:func:`check_image` then :func:`bound_size`: what every baseline describes."""
    return bound_size(check_image(image), max_side)


def grey(image: np.ndarray) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` -> uint8 luma ``[H, W]`` (ITU-R 601 weights, OpenCV's)."""
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)


# --- colour ------------------------------------------------------------------------------------

def colour_codes(image: np.ndarray) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` -> ``[H, W]`` int colour index in [0, 64): r * 16 + g * 4 + b of
    the 4-level quantized channels."""
    levels = (image >> _LEVEL_SHIFT).astype(np.intp)
    return (levels[..., 0] * COLOUR_LEVELS + levels[..., 1]) * COLOUR_LEVELS + levels[..., 2]


def gch(image) -> np.ndarray:
    """Global colour histogram: uint8 RGB ``[H, W, 3]`` -> ``[64]`` float32, sums to 1."""
    codes = colour_codes(check_image(image))
    counts = np.bincount(codes.ravel(), minlength=COLOUR_BINS)
    return (counts / codes.size).astype(np.float32)


def lch(image, grid: int = LCH_GRID) -> np.ndarray:
    """Local colour histograms: a 64-bin histogram of each block of a ``grid x grid`` partition.

    Each block's histogram is normalized by its own pixel count (blocks differ by a pixel where a
    side does not divide), then the whole is divided by the number of blocks.

    Args:
        image: uint8 RGB ``[H, W, 3]``.
        grid: blocks per side (4: the usual 4 x 4).

    Returns:
        ``[grid * grid * 64]`` float32 (1024 for the 4 x 4 grid), block-major (row, column,
        colour), summing to 1.
    """
    codes = colour_codes(check_image(image))
    height, width = codes.shape
    block_rows = np.arange(height) * grid // height  # [H] in [0, grid)
    block_cols = np.arange(width) * grid // width
    block = block_rows[:, None] * grid + block_cols[None, :]
    counts = np.bincount((block * COLOUR_BINS + codes).ravel(),
                         minlength=grid * grid * COLOUR_BINS).reshape(grid * grid, COLOUR_BINS)
    histograms = counts / counts.sum(axis=1, keepdims=True) / (grid * grid)
    return histograms.reshape(-1).astype(np.float32)


# --- LBP ---------------------------------------------------------------------------------------

def _uniform_lookup() -> np.ndarray:
    """``[256]`` uint8: the LBP bin of each 8-bit code; uniform codes (at most 2 circular 0/1
    transitions) get bins 0-57 in increasing code order, every other code bin 58."""
    codes = np.arange(256, dtype=np.uint8)
    rotated = (codes >> 1) | ((codes & 1) << 7)
    transitions = np.unpackbits((codes ^ rotated)[:, None], axis=1).sum(axis=1)
    uniform = transitions <= 2
    lookup = np.full(256, LBP_BINS - 1, dtype=np.uint8)
    lookup[uniform] = np.arange(int(uniform.sum()))
    return lookup


_UNIFORM_BIN = _uniform_lookup()
assert int(_UNIFORM_BIN.max()) == LBP_BINS - 1 and int((_UNIFORM_BIN < LBP_BINS - 1).sum()) == 58


def lbp_codes(grey_image: np.ndarray) -> np.ndarray:
    """8-neighbour LBP codes of a uint8 grey image ``[H, W]`` -> uint8 ``[H - 2, W - 2]``.

    Bit p is set where neighbour p (circular order, :data:`_LBP_OFFSETS`) is >= the centre; the
    border pixels, lacking a full ring, get no code.
    """
    height, width = grey_image.shape
    centre = grey_image[1:-1, 1:-1]
    codes = np.zeros(centre.shape, dtype=np.uint8)
    for bit, (dy, dx) in enumerate(_LBP_OFFSETS):
        neighbour = grey_image[1 + dy:height - 1 + dy, 1 + dx:width - 1 + dx]
        codes |= (neighbour >= centre).astype(np.uint8) << bit
    return codes


def lbp(image) -> np.ndarray:
    """Uniform LBP histogram: uint8 RGB ``[H, W, 3]`` -> ``[59]`` float32, sums to 1.

    Invariant to any increasing grey-level transform, since only the signs of neighbour - centre
    count.
    """
    codes = lbp_codes(grey(check_image(image)))
    counts = np.bincount(_UNIFORM_BIN[codes].ravel(), minlength=LBP_BINS)
    return (counts / codes.size).astype(np.float32)


# --- Gabor -------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def gabor_kernels() -> np.ndarray:
    """OpenCV's Gabor kernels, one complex kernel per orientation: ``[8, k, k]`` complex64,
    even (cosine) + i odd (sine) part, k = 15. The even part's mean is removed: a flat region
    must give no texture energy, whatever its brightness."""
    half = math.ceil(3 * GABOR_SIGMA)
    size = (2 * half + 1, 2 * half + 1)
    kernels = []
    for index in range(GABOR_ORIENTATIONS):
        theta = math.pi * index / GABOR_ORIENTATIONS
        even, odd = (cv2.getGaborKernel(size, GABOR_SIGMA, theta, GABOR_WAVELENGTH, GABOR_ASPECT,
                                        psi, ktype=cv2.CV_64F) for psi in (0.0, math.pi / 2))
        kernels.append((even - even.mean()) + 1j * odd)
    bank = np.stack(kernels).astype(np.complex64)
    bank.setflags(write=False)
    return bank


@functools.lru_cache(maxsize=16)
def _gabor_spectra(shape: tuple[int, int]) -> np.ndarray:
    """The kernels' FFTs at an FFT size ``shape``, cached: a dataset's bounded images share a few
    sizes."""
    spectra = scipy.fft.fft2(gabor_kernels(), s=shape, axes=(-2, -1)).astype(np.complex64)
    spectra.setflags(write=False)
    return spectra


def gabor_magnitudes(grey_image: np.ndarray) -> np.ndarray:
    """Magnitude of the Gabor bank's response: float32 grey ``[H, W]`` -> ``[8, H, W]`` float32.

    Filtered through the FFT (one forward transform, one inverse per orientation: several times
    faster than 16 spatial filterings) on a reflected border, as ``cv2.filter2D`` would pad.
    """
    height, width = grey_image.shape
    half = gabor_kernels().shape[-1] // 2
    padded = cv2.copyMakeBorder(grey_image, half, half, half, half, cv2.BORDER_REFLECT_101)
    shape = (scipy.fft.next_fast_len(height + 2 * half),
             scipy.fft.next_fast_len(width + 2 * half))
    spectrum = scipy.fft.fft2(padded, s=shape)
    response = scipy.fft.ifft2(spectrum[None] * _gabor_spectra(shape), axes=(-2, -1))
    # A kernel stored from index 0 shifts the output by its full width: pixel (y, x) of the
    # image is output (y + 2 half, x + 2 half); the wrap-around lands before that window.
    window = response[:, 2 * half:2 * half + height, 2 * half:2 * half + width]
    return np.abs(window).astype(np.float32)


def gabor(image) -> np.ndarray:
    """Gabor texture statistics: uint8 RGB ``[H, W, 3]`` -> ``[4 * 8 * 2]`` = ``[64]`` float32.

    For each pyramid level (wavelengths 4, 8, 16, 32 px) and orientation, the mean and the
    standard deviation of the response magnitude over the image (grey values in [0, 1]); laid
    out ``[level, orientation, (mean, std)]``.
    """
    level = grey(check_image(image)).astype(np.float32) / 255.0
    features = []
    for index in range(GABOR_LEVELS):
        if index:
            level = cv2.pyrDown(level)
        magnitude = gabor_magnitudes(level)
        features.append(np.stack([magnitude.mean(axis=(1, 2)), magnitude.std(axis=(1, 2))],
                                 axis=-1))
    return np.stack(features).reshape(-1).astype(np.float32)


# --- GIST --------------------------------------------------------------------------------------

def _square(grey_image: np.ndarray, size: int) -> np.ndarray:
    """Resizes the shorter side to ``size`` (area when shrinking, bilinear when enlarging), then
    crops the centre ``[size, size]``, as the reference GIST does."""
    height, width = grey_image.shape
    scale = size / min(height, width)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    resized = cv2.resize(grey_image, new,
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (new[1] - size) // 2, (new[0] - size) // 2
    return resized[top:top + size, left:left + size]


def gist_prefilter(grey_image: np.ndarray) -> np.ndarray:
    """GIST's prefilter: float grey 0-255 ``[H, W]`` -> ``[H, W]`` float64.

    Log intensities, whitened (minus their Gaussian low-pass at 4 cycles per image), then divided
    by the local contrast (the low-passed square's root), so that illumination and global
    contrast do not reach the Gabor energies.
    """
    pad = 5  # symmetric border against the FFT's wrap-around
    image = np.pad(np.log1p(np.asarray(grey_image, np.float64)), pad, mode="symmetric")
    rows, cols = image.shape
    fy = scipy.fft.fftfreq(rows)[:, None] * rows  # cycles per (padded) image
    fx = scipy.fft.fftfreq(cols)[None, :] * cols
    sigma = GIST_PREFILTER_CYCLES / math.sqrt(math.log(2))
    low_pass = np.exp(-(fy ** 2 + fx ** 2) / sigma ** 2)
    whitened = image - np.real(scipy.fft.ifft2(scipy.fft.fft2(image) * low_pass))
    contrast = np.sqrt(np.abs(np.real(scipy.fft.ifft2(scipy.fft.fft2(whitened ** 2) * low_pass))))
    return (whitened / (0.2 + contrast))[pad:-pad, pad:-pad]


@functools.lru_cache(maxsize=1)
def gist_transfer_functions() -> np.ndarray:
    """The GIST bank's transfer functions: ``[4 * 8, N, N]`` float32, N = 128 + 2 * 32.

    A Gabor filter's transfer function is a Gaussian around its peak frequency; each scale s
    peaks at 0.25 / 2^s cycles / pixel, each orientation at angle pi o / 8, and the Gaussian's
    widths grow with the peak (a constant bandwidth in octaves). One lobe only, so the response
    is complex and its magnitude is the local energy. Zero at DC.
    """
    size = GIST_SIZE + 2 * GIST_PAD
    fy = scipy.fft.fftfreq(size)[:, None]
    fx = scipy.fft.fftfreq(size)[None, :]
    bank = []
    for scale in range(GIST_SCALES):
        peak = GIST_PEAK_FREQUENCY / 2 ** scale
        for index in range(GIST_ORIENTATIONS):
            theta = math.pi * index / GIST_ORIENTATIONS
            along = fx * math.cos(theta) + fy * math.sin(theta)
            across = -fx * math.sin(theta) + fy * math.cos(theta)
            bank.append(np.exp(-0.5 * ((along - peak) / (GIST_RADIAL_WIDTH * peak)) ** 2
                               - 0.5 * (across / (GIST_ANGULAR_WIDTH * peak)) ** 2))
    transfer = np.stack(bank).astype(np.float32)
    transfer[:, 0, 0] = 0.0
    transfer.setflags(write=False)
    return transfer


def gist(image) -> np.ndarray:
    """GIST (a reimplementation): uint8 RGB ``[H, W, 3]`` -> ``[512]`` float32.

    Grey, resized and centre-cropped to 128 x 128, :func:`gist_prefilter`, filtered by
    :func:`gist_transfer_functions` (symmetric 32 px extension), and each filter's response
    magnitude averaged over a 4 x 4 grid of 32 px blocks; laid out
    ``[scale, orientation, grid row, grid column]``.
    """
    square = _square(grey(check_image(image)), GIST_SIZE)
    filtered = np.pad(gist_prefilter(square.astype(np.float64)), GIST_PAD, mode="symmetric")
    spectrum = scipy.fft.fft2(filtered.astype(np.float32))
    energy = np.abs(scipy.fft.ifft2(spectrum[None] * gist_transfer_functions(), axes=(-2, -1)))
    energy = energy[:, GIST_PAD:GIST_PAD + GIST_SIZE, GIST_PAD:GIST_PAD + GIST_SIZE]
    block = GIST_SIZE // GIST_GRID
    blocks = energy.reshape(-1, GIST_GRID, block, GIST_GRID, block).mean(axis=(2, 4))
    return blocks.reshape(-1).astype(np.float32)


# --- local descriptors -------------------------------------------------------------------------

def _unit_rows(descriptors, dim: int) -> np.ndarray:
    """``[n, dim]`` float32 with each nonzero row scaled to unit L2 norm: SIFT (norm 512 in
    OpenCV) and HOG then share one scale, which the GMM's variance floor assumes."""
    if descriptors is None:
        return np.zeros((0, dim), np.float32)
    values = np.asarray(descriptors, np.float32).reshape(-1, dim)
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    return np.divide(values, norms, out=np.zeros_like(values), where=norms > 0)


def sift_descriptors(image) -> np.ndarray:
    """SIFT at OpenCV's detected keypoints (the strongest 500): uint8 RGB ``[H, W, 3]`` ->
    ``[n, 128]`` float32, unit rows; n = 0 for an image without keypoints (a flat one)."""
    sift = cv2.SIFT_create(nfeatures=SIFT_MAX_KEYPOINTS)  # per call: thread-safe, ~1 us
    _, descriptors = sift.detectAndCompute(grey(check_image(image)), None)
    return _unit_rows(descriptors, SIFT_DIM)


def dense_grid(height: int, width: int, step: int = DSIFT_STEP,
               patch: int = 4 * DSIFT_BIN) -> np.ndarray:
    """Centres ``[n, 2]`` (x, y) float32 of a regular grid of ``patch``-wide patches every
    ``step`` px, the patches inside the image (at least one centre for sides >= ``patch``)."""
    half = patch / 2
    xs = np.arange(half, width - half + 1, step, dtype=np.float32)
    ys = np.arange(half, height - half + 1, step, dtype=np.float32)
    grid_x, grid_y = np.meshgrid(xs, ys)
    return np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)


def dense_sift_descriptors(image) -> np.ndarray:
    """Upright SIFT on a grid: a 16 px patch (4 px bins) every 8 px at a single scale.

    Args:
        image: uint8 RGB ``[H, W, 3]``.

    Returns:
        ``[n, 128]`` float32, unit rows (all-zero on flat patches), n = the grid's size
        (31 x 31 = 961 on a 256 px square).
    """
    grey_image = grey(check_image(image))
    size = DSIFT_BIN / _SIFT_BIN_PER_SIZE
    keypoints = [cv2.KeyPoint(float(x), float(y), size, 0.0)
                 for x, y in dense_grid(*grey_image.shape)]
    _, descriptors = cv2.SIFT_create().compute(grey_image, keypoints)
    return _unit_rows(descriptors, SIFT_DIM)


def hog_descriptors(image) -> np.ndarray:
    """HOG blocks as local descriptors: OpenCV's HOG (8 px cells, 16 px blocks every 8 px, 9
    unsigned orientations, L2-Hys; the strongest channel's gradient) on the centre crop whose
    sides are multiples of 8.

    Args:
        image: uint8 RGB ``[H, W, 3]``.

    Returns:
        ``[n, 36]`` float32, one unit row per block (zero on flat blocks);
        n = (H // 8 - 1) * (W // 8 - 1).
    """
    image = check_image(image)
    height, width = (side // HOG_CELL * HOG_CELL for side in image.shape[:2])
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    crop = np.ascontiguousarray(image[top:top + height, left:left + width])
    hog = cv2.HOGDescriptor((width, height), (HOG_BLOCK, HOG_BLOCK), (HOG_CELL, HOG_CELL),
                            (HOG_CELL, HOG_CELL), HOG_BINS)
    return _unit_rows(hog.compute(crop), HOG_DIM)


# --- encoders ----------------------------------------------------------------------------------

def _check_descriptors(descriptors, dim: int | None = None) -> np.ndarray:
    values = np.asarray(descriptors)
    if values.ndim != 2 or (dim is not None and values.shape[1] != dim):
        want = f"[n, {dim}]" if dim is not None else "[n, d]"
        raise ValueError(f"descriptors must be {want}. Received: shape={values.shape}")
    if not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"descriptors must be numbers. Received: dtype={values.dtype}")
    return values.astype(np.float64)


def power_l2(vector: np.ndarray) -> np.ndarray:
    """Signed square root then L2 normalization (Perronnin et al.'s "improved" normalization:
    damps the bursts of repeated descriptors); the zero vector stays zero. ``[D]`` -> float32."""
    powered = np.sign(vector) * np.sqrt(np.abs(vector))
    norm = float(np.linalg.norm(powered))
    return (powered / norm if norm > 0 else powered).astype(np.float32)


def nearest_centres(descriptors: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index ``[n]`` of the nearest centre (Euclidean) of each descriptor ``[n, d]``; centres
    ``[K, d]``."""
    distances = (np.sum(descriptors ** 2, axis=1)[:, None] - 2 * descriptors @ centres.T
                 + np.sum(centres ** 2, axis=1)[None, :])
    return np.argmin(distances, axis=1)


def bow_encode(descriptors, centres: np.ndarray) -> np.ndarray:
    """Bag of words: ``[n, d]`` -> ``[K]`` float32, the share of descriptors nearest each centre
    (sums to 1; zeros for n = 0)."""
    values = _check_descriptors(descriptors, centres.shape[1])
    counts = np.bincount(nearest_centres(values, centres), minlength=len(centres))
    return (counts / max(len(values), 1)).astype(np.float32)


def vlad_encode(descriptors, centres: np.ndarray) -> np.ndarray:
    """VLAD: ``[n, d]`` -> ``[K * d]`` float32, the sum of residuals (descriptor - its nearest
    centre) per centre, then :func:`power_l2` (zeros for n = 0)."""
    values = _check_descriptors(descriptors, centres.shape[1])
    assignment = np.eye(len(centres))[nearest_centres(values, centres)]  # [n, K] one-hot
    residuals = assignment.T @ values - assignment.sum(axis=0)[:, None] * centres
    return power_l2(residuals.reshape(-1))


def gmm_posteriors(descriptors: np.ndarray, weights: np.ndarray, means: np.ndarray,
                   variances: np.ndarray) -> np.ndarray:
    """Posterior ``[n, K]`` of each diagonal Gaussian for each descriptor ``[n, d]`` (computed in
    the log domain, so far descriptors do not underflow to 0 / 0)."""
    precision = 1.0 / variances
    log_density = -0.5 * (np.sum(np.log(2 * np.pi * variances), axis=1)[None, :]
                          + (descriptors ** 2) @ precision.T
                          - 2 * descriptors @ (means * precision).T
                          + np.sum(means ** 2 * precision, axis=1)[None, :])
    log_joint = log_density + np.log(weights)[None, :]
    log_joint -= log_joint.max(axis=1, keepdims=True)
    joint = np.exp(log_joint)
    return joint / joint.sum(axis=1, keepdims=True)


def fisher_encode(descriptors, weights: np.ndarray, means: np.ndarray,
                  variances: np.ndarray) -> np.ndarray:
    """Improved Fisher vector (Perronnin, Sánchez & Mensink, ECCV 2010) of a descriptor set.

    Gradients of the set's mean log-likelihood with respect to the diagonal GMM's means and
    standard deviations, normalized by the Fisher information, then :func:`power_l2`.

    Args:
        descriptors: ``[n, d]``.
        weights: ``[K]`` mixture weights; means, variances: ``[K, d]``.

    Returns:
        ``[2 * K * d]`` float32: the K x d mean gradients, then the K x d deviation gradients;
        zeros for n = 0.
    """
    values = _check_descriptors(descriptors, means.shape[1])
    count = len(values)
    if count == 0:
        return np.zeros(2 * means.size, np.float32)
    posterior = gmm_posteriors(values, weights, means, variances)  # [n, K]
    mass = posterior.sum(axis=0)[:, None]  # [K, 1]
    first = posterior.T @ values  # [K, d]
    second = posterior.T @ values ** 2
    sqrt_weights = np.sqrt(weights)[:, None]
    d_means = (first - mass * means) / np.sqrt(variances) / (count * sqrt_weights)
    d_sigmas = (((second - 2 * means * first + mass * means ** 2) / variances - mass)
                / (count * np.sqrt(2.0) * sqrt_weights))
    return power_l2(np.concatenate([d_means.reshape(-1), d_sigmas.reshape(-1)]))


@dataclasses.dataclass(frozen=True, eq=False)
class Encoder:
    """A fitted encoder: a descriptor set ``[n, d]`` -> one vector ``[dim]``.

    Attributes:
        kind: ``bow``, ``vlad`` or ``fv``.
        means: ``[K, d]``: the k-means centres (bow, vlad) or the GMM's means (fv).
        weights: ``[K]`` mixture weights (fv only).
        variances: ``[K, d]`` diagonal variances (fv only).
    """

    kind: str
    means: np.ndarray
    weights: np.ndarray | None = None
    variances: np.ndarray | None = None

    def __post_init__(self):
        if self.kind not in ENCODINGS:
            raise ValueError(f"kind must be one of {ENCODINGS}. Received: kind={self.kind!r}")
        if np.ndim(self.means) != 2:
            raise ValueError(f"means must be [K, d]. Received: shape={np.shape(self.means)}")
        if self.kind == "fv" and (np.shape(self.weights) != (len(self.means),)
                                  or np.shape(self.variances) != np.shape(self.means)):
            raise ValueError("a Fisher encoder needs weights [K] and variances [K, d] beside "
                             f"means [K, d]. Received: means {np.shape(self.means)}, weights "
                             f"{np.shape(self.weights)}, variances {np.shape(self.variances)}")

    @property
    def size(self) -> int:
        """K, the codebook's size."""
        return int(self.means.shape[0])

    @property
    def dim(self) -> int:
        """Length of an encoded vector: K, K d or 2 K d."""
        k, d = self.means.shape
        return {"bow": k, "vlad": k * d, "fv": 2 * k * d}[self.kind]

    def encode(self, descriptors) -> np.ndarray:
        """``[n, d]`` -> ``[dim]`` float32 (:func:`bow_encode`, :func:`vlad_encode`,
        :func:`fisher_encode`)."""
        if self.kind == "bow":
            return bow_encode(descriptors, self.means)
        if self.kind == "vlad":
            return vlad_encode(descriptors, self.means)
        return fisher_encode(descriptors, self.weights, self.means, self.variances)


def fit_encoder(kind: str, descriptors, size: int | None = None, seed: int = 0) -> Encoder:
    """Fits an encoder on training descriptors (never on a test part's).

    Args:
        kind: ``bow`` or ``vlad`` (a ``MiniBatchKMeans`` codebook), or ``fv`` (a diagonal
            ``GaussianMixture``, initialized by k-means).
        descriptors: ``[n, d]`` training descriptors, n >= size.
        size: K; None takes :data:`DEFAULT_CODEBOOK_SIZES`.
        seed: ``random_state`` of the clustering, so a fit is reproducible.

    Returns:
        The fitted :class:`Encoder` (float64 parameters).

    Raises:
        ValueError: an unknown kind, descriptors not ``[n, d]``, size < 1 or n < size.
    """
    # Imported here, as baselines.py does: describing images needs no scikit-learn.
    from sklearn import cluster, mixture

    if kind not in ENCODINGS:
        raise ValueError(f"kind must be one of {ENCODINGS}. Received: kind={kind!r}")
    size = DEFAULT_CODEBOOK_SIZES[kind] if size is None else size
    values = _check_descriptors(descriptors)
    if size < 1 or len(values) < size:
        raise ValueError(f"fitting {size} clusters needs size >= 1 and at least {size} "
                         f"descriptors. Received: size={size}, descriptors.shape={values.shape}")
    if kind == "fv":
        gmm = mixture.GaussianMixture(n_components=size, covariance_type="diag",
                                      reg_covar=_GMM_REG_COVAR, max_iter=_GMM_MAX_ITER,
                                      random_state=seed).fit(values)
        # A component no descriptor supports could reach weight 0; 1 / sqrt(w) must stay finite.
        weights = np.maximum(gmm.weights_, np.finfo(np.float64).tiny)
        return Encoder("fv", gmm.means_, weights / weights.sum(), gmm.covariances_)
    kmeans = cluster.MiniBatchKMeans(n_clusters=size, n_init=_KMEANS_INIT,
                                     batch_size=_KMEANS_BATCH, random_state=seed).fit(values)
    return Encoder(kind, kmeans.cluster_centers_.astype(np.float64))


# --- registry ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Baseline:
    """One row of the paper's hand-crafted baselines.

    Attributes:
        name: the registry's key, e.g. ``gch`` or ``hog_fv``.
        title: the paper's name of the row, e.g. ``HOG + Fisher vector``.
        describe: a module-level function (so a process pool can send it): uint8 RGB image
            ``[H, W, 3]`` -> ``[D]`` (global) or ``[n, d]`` (local) float32.
        encoding: None for a global descriptor; ``bow``, ``vlad`` or ``fv`` for a local one.
        dim: D of a global descriptor, d of a local one.
        descriptor: for a local baseline, the key of :data:`LOCAL_DESCRIPTORS` it encodes
            (``sift``, ``dsift``, ``hog``): the baselines that share it share its descriptors;
            None for a global one.
    """

    name: str
    title: str
    describe: Callable[[np.ndarray], np.ndarray]
    encoding: str | None
    dim: int
    descriptor: str | None = None

    @property
    def local(self) -> bool:
        """Whether the image gives a descriptor set that an :class:`Encoder` must encode."""
        return self.encoding is not None


GLOBAL_DESCRIPTORS = {
    "gch": ("GCH", gch, COLOUR_BINS),
    "lch": ("LCH", lch, LCH_GRID * LCH_GRID * COLOUR_BINS),
    "lbp": ("LBP", lbp, LBP_BINS),
    "gabor": ("Gabor", gabor, GABOR_LEVELS * GABOR_ORIENTATIONS * 2),
    "gist": ("GIST", gist, GIST_SCALES * GIST_ORIENTATIONS * GIST_GRID * GIST_GRID),
}
LOCAL_DESCRIPTORS = {
    "sift": ("SIFT", sift_descriptors, SIFT_DIM),
    "dsift": ("DenseSIFT", dense_sift_descriptors, SIFT_DIM),
    "hog": ("HOG", hog_descriptors, HOG_DIM),
}
_ENCODING_TITLES = {"bow": "BoW", "vlad": "VLAD", "fv": "Fisher vector"}

REGISTRY: dict[str, Baseline] = {
    **{name: Baseline(name, title, fn, None, dim)
       for name, (title, fn, dim) in GLOBAL_DESCRIPTORS.items()},
    **{f"{name}_{encoding}": Baseline(f"{name}_{encoding}",
                                      f"{title} + {_ENCODING_TITLES[encoding]}", fn, encoding, dim,
                                      descriptor=name)
       for name, (title, fn, dim) in LOCAL_DESCRIPTORS.items() for encoding in ENCODINGS},
}

# The paper's rows that cannot be built honestly here, and why (data for the report).
NOT_BUILT: dict[str, str] = {
    "ColorName + BoW": "needs van de Weijer et al.'s learned colour-name table (RGB -> 11 "
                       "colour-name probabilities, learned from web images); not in this "
                       "environment, and a hand-made mapping would be another descriptor",
    "PAEF": "Zhao et al.'s principles-of-art features rest on their own code and on saliency "
            "and segmentation models the paper does not specify; a reimplementation from the "
            "description would be a different feature under the same name",
    "SentiBank": "the responses of Borth et al.'s 1,200 trained adjective-noun-pair detectors; "
                 "the trained detectors are external and not available offline",
    "DeepSentiBank": "the outputs of Chen et al.'s CNN trained on 2,089 adjective-noun pairs; "
                     "its trained weights are external and not available offline",
}


def _letters(name: str) -> str:
    return "".join(char for char in name.lower() if char.isalnum())


def get_baseline(name: str) -> Baseline:
    """The registry's entry for ``name``.

    Raises:
        ValueError: an unknown name (the message lists the known ones, and says why a row of
            :data:`NOT_BUILT` is missing).
    """
    if name in REGISTRY:
        return REGISTRY[name]
    for title, reason in NOT_BUILT.items():
        if _letters(name) == _letters(title):  # "colorname_bow" names "ColorName + BoW"
            raise ValueError(f"{title} is not built here: {reason}. Received: name={name!r}")
    raise ValueError(f"Unknown baseline; known: {', '.join(REGISTRY)}. Received: name={name!r}")


def parse_names(text: str) -> tuple[str, ...]:
    """The baselines a comma-separated list names, in its order (``--handcrafted``).

    Names are the registry's keys, case and spaces ignored; ``all`` means every one of
    :data:`REGISTRY`; an empty text means none. A name given twice counts once.

    Args:
        text: e.g. ``"gch, lbp,hog_fv"``.

    Returns:
        Keys of :data:`REGISTRY`, e.g. ``("gch", "lbp", "hog_fv")``; ``()`` for an empty text.

    Raises:
        ValueError: a name that is not in the registry (the message lists the known ones, and
            says why a row of :data:`NOT_BUILT` is missing), or ``all`` beside other names.
    """
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if "all" in names:
        if names != ["all"]:
            raise ValueError("'all' names every baseline and stands alone. Received: "
                             f"handcrafted={text!r}")
        return tuple(REGISTRY)
    for name in names:
        if name in REGISTRY:
            continue
        detail = f"{name!r} is not a baseline."
        for title, reason in NOT_BUILT.items():
            if _letters(name) == _letters(title):
                detail = f"{title} is not built here: {reason}."
        raise ValueError(f"handcrafted lists baselines, comma-separated, of: "
                         f"{', '.join(REGISTRY)} (all: every one; empty: none). {detail} "
                         f"Received: handcrafted={text!r}")
    return tuple(dict.fromkeys(names))
