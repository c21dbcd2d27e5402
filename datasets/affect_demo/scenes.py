"""Synthetic scenes for the embedded demo dataset ``affect_demo`` (numpy + OpenCV, no TensorFlow).

Each scene is a cluttered image in which ONE small object (its box covers 2-5 % of the image)
carries the sentiment label, so the whole image is a diluted view of the cue while a crop around
the object shows little else: the setting in which the paper's affective regions help (Yang et
al., TMM 2018). The object's tight box is known, so region discovery can be scored.

A scene is drawn in layers, all from one ``np.random.Generator`` (same state, same scene):

1. Background: a smooth two-colour gradient (desaturated mid-tones) with low-frequency blotches
   and fine noise.
2. Clutter: 6-12 label-independent shapes (rectangles, ellipses, polygons, thick lines) in muted
   colours that belong to neither class; the first three larger than the object; most carry a
   dark outline (strong edges, as man-made things in photographs have).
3. Distractors: 1-3 label-independent shapes that carry the objects' colours on non-object shapes
   and without a halo or rim (warm rectangles, bars and polygons; dark ellipses; warm/dark
   stripes), so the colour statistics of the whole image are a weak cue.
4. Decoys: 1-2 label-independent shapes of the object's size and shape families with an object-like
   halo or rim, but a muted fill. EdgeBoxes favours small, complete, high-contrast contours, so a
   decoy often outranks the object by objectness; a sentiment classifier finds no cue in it.
5. The sentiment object, drawn last, fully inside the image, placed where it contrasts with its
   surroundings:
   - positive (1): warm bright fill (yellow, golden, orange, pink, coral), rounded shape (circle
     or ellipse, smooth blob, smiley, flower = a star with rounded points) and a bright halo;
   - negative (0): dark or cool fill (dark blue, navy, purple, dark red, near-black), angular
     shape (triangle, jagged star, cross, lightning bolt) and a black rim.

Box convention: boxes are normalized ``[y1, x1, y2, x2]`` in [0, 1] with pixel-edge coordinates:
multiplied by ``size`` they give ``[top, left, bottom, right]`` with ``bottom``/``right``
exclusive, so the object occupies rows ``top .. bottom - 1``. This is the project's convention
(what ``tf.image.crop_and_resize`` and ``tfds.features.BBoxFeature`` take).

The parameters below were tuned with ``benchmarks/check_demo_scenes.py``; the measured properties
are listed in ``datasets/affect_demo/README.md``.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import cv2
import numpy as np

# Class indices, as everywhere in the project (affect_tf.config.LABEL_NAMES).
NEGATIVE, POSITIVE = 0, 1

# Seed of the affect_demo dataset (both configs). A fixed constant so that every build of the
# dataset, anywhere, holds the same images; the date of the paper's journal issue (2018-09-01).
DATASET_SEED = 20180901

# The object's tight box covers this fraction of the image area (the issue asks for 2-5 %).
OBJECT_AREA_RANGE = (0.02, 0.05)
# Box areas are drawn from this narrower range so the rendered box (whose outline/halo and
# anti-aliasing add a pixel or two) stays inside OBJECT_AREA_RANGE without many retries.
_TARGET_AREA_RANGE = (0.024, 0.045)
# The object keeps at least this many pixels (at 256 px; scaled with size) from the image border.
_BORDER_MARGIN = 6
# Counts per scene (inclusive ranges) and the share of clutter shapes with a dark outline.
# More decoys and outlines push the object down the objectness ranking (fewer top-1 hits, but
# also fewer top-50 hits); more distractors dilute whole-image colour statistics.
_CLUTTER_COUNT = (6, 12)
_DISTRACTOR_COUNT = (1, 3)
_DECOY_COUNT = (1, 2)
_CLUTTER_OUTLINE_PROB = 0.7
# Width in pixels (at 256 px) of the positive object's bright halo and the negative object's black
# rim. The rim is wider because the dark fill gives its inner edge little contrast: with 2-3 px
# rims, angular negative objects were much weaker EdgeBoxes proposals than the positive ones.
_HALO_WIDTH = 2
_RIM_WIDTH = 4
# Placement: at least _MIN_SURROUND_CONTRAST of the pixels in a _SURROUND_WIDTH-pixel ring around
# the object must differ from its outer colour (halo or rim) by _MIN_SURROUND_DISTANCE (RGB).
_SURROUND_WIDTH = 4
_MIN_SURROUND_DISTANCE = 80.0
_MIN_SURROUND_CONTRAST = 0.95
# A pixel belongs to the object (for its box and mask) when its opacity is at least this.
_MASK_THRESHOLD = 0.25

POSITIVE_SHAPES = ("circle", "blob", "smiley", "flower")
NEGATIVE_SHAPES = ("triangle", "jagged_star", "cross", "bolt")
CLUTTER_SHAPES = ("rectangle", "ellipse", "polygon", "line")

# Object fills (RGB). Positive: warm and bright; negative: dark or cool. They never appear in the
# clutter palette below, only in the label-independent distractors (without halo or rim).
POSITIVE_COLOURS = np.array([
    (250, 215, 40),   # yellow
    (255, 185, 25),   # golden
    (255, 140, 30),   # orange
    (250, 105, 170),  # pink
    (255, 125, 95),   # coral
], dtype=np.float32)
NEGATIVE_COLOURS = np.array([
    (18, 28, 105),    # dark blue
    (15, 20, 65),     # navy
    (72, 22, 98),     # purple
    (105, 14, 22),    # dark red
    (26, 26, 32),     # near-black
], dtype=np.float32)
# Halo of positive objects: pale, bright.
HALO_COLOURS = np.array([
    (255, 255, 245),  # white
    (255, 250, 185),  # pale yellow
    (255, 222, 236),  # pale pink
], dtype=np.float32)
# Clutter palette, shared by both classes: muted mid-tones that belong to neither class.
CLUTTER_COLOURS = np.array([
    (128, 128, 128), (176, 176, 170), (205, 188, 150), (140, 102, 72), (128, 128, 72),
    (140, 165, 128), (100, 120, 142), (82, 140, 140), (160, 84, 64), (160, 150, 186),
    (140, 175, 200), (232, 222, 198), (70, 72, 78), (190, 140, 110), (110, 150, 96),
], dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class DemoScene:
    """One rendered scene.

    Attributes:
        image: uint8 [size, size, 3], RGB.
        box: float32 [4], the object's tight box, normalized ``[y1, x1, y2, x2]`` (pixel edges;
            ``y2``/``x2`` exclusive once multiplied by ``size``).
        object_mask: bool [size, size], True where the object (fill plus halo or rim) is drawn
            with opacity >= 0.25.
        label: 0 (negative) or 1 (positive).
        object_shape: name of the object's shape, from ``POSITIVE_SHAPES`` or ``NEGATIVE_SHAPES``.
    """

    image: np.ndarray
    box: np.ndarray
    object_mask: np.ndarray
    label: int
    object_shape: str


# ----------------------------------------------------------------------------------------------
# Drawing helpers. Every shape is rasterized into a float opacity mask [size, size] in [0, 1]
# (anti-aliased), then alpha-composited onto the float32 canvas; this handles transparency,
# outlines and the object's exact footprint the same way.


def _composite(canvas: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Blends ``colour`` (RGB [3]) into ``canvas`` (float32 [H, W, 3]) with opacity ``alpha``."""
    a = alpha[..., None]
    canvas *= 1.0 - a
    canvas += a * colour


def _poly_mask(points: np.ndarray, size: int) -> np.ndarray:
    """Filled polygon ``points`` (float [N, 2], pixel x, y) as an anti-aliased opacity mask.

    Returns:
        float32 [size, size] in [0, 1].
    """
    mask = np.zeros((size, size), np.uint8)
    # Fixed-point coordinates (shift=4, 1/16 px) keep the anti-aliased edge of small shapes smooth.
    pts = np.round(points * 16.0).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) / 255.0


def _ring(mask: np.ndarray, width: int) -> np.ndarray:
    """Opacity of a ring ``width`` px wide around the shape in ``mask`` ([H, W] in [0, 1])."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return np.clip(cv2.dilate(mask, kernel) - mask, 0.0, 1.0)


def _jitter(rng: np.random.Generator, colour: np.ndarray, amount: float) -> np.ndarray:
    return np.clip(colour + rng.uniform(-amount, amount, size=3), 0, 255).astype(np.float32)


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    """Rotates ``points`` [N, 2] (x, y) by ``angle`` radians about the origin."""
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, s], [-s, c]], dtype=np.float64)


def _polar(radii: np.ndarray, theta: np.ndarray) -> np.ndarray:
    return np.stack([radii * np.cos(theta), radii * np.sin(theta)], axis=1)


# ----------------------------------------------------------------------------------------------
# Layer 1: background.


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth random colour gradient plus low-contrast blotches and noise.

    Returns:
        float32 [size, size, 3], RGB, roughly in [0, 255] (clipped at the end).
    """
    # Two desaturated mid-to-light colours, so both dark negative and bright positive objects
    # stand out against it.
    hsv = np.stack([
        rng.uniform(0, 180, 2), rng.uniform(10, 90, 2), rng.uniform(115, 215, 2)], axis=1)
    colours = cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    coords = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    t = np.clip((xx * np.cos(angle) + yy * np.sin(angle)) * 0.5 + 0.5, 0.0, 1.0)[..., None]
    canvas = (1.0 - t) * colours[0] + t * colours[1]
    # Blotches: a coarse random grid, upsampled smoothly (low frequencies only: no strong edges).
    grid = rng.normal(0.0, 12.0, size=(5, 5, 3)).astype(np.float32)
    canvas += cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    # Faint texture: fine noise, lightly smoothed, like film grain.
    noise = rng.normal(0.0, 7.0, size=(size, size, 3)).astype(np.float32)
    canvas += cv2.GaussianBlur(noise, (3, 3), 0.8)
    return canvas


# ----------------------------------------------------------------------------------------------
# Layer 2 and 3: clutter and distractors.


def _clutter_mask(
        rng: np.random.Generator, kind: str, center: np.ndarray, radius: float, size: int,
) -> np.ndarray:
    """Opacity mask [size, size] of one clutter shape of ``kind`` around ``center`` (x, y px)."""
    angle = rng.uniform(0, np.pi)
    aspect = rng.uniform(0.35, 1.0)
    if kind == "rectangle":
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
        corners *= np.array([radius, radius * aspect])
        return _poly_mask(_rotate(corners, angle) + center, size)
    if kind == "ellipse":
        theta = np.linspace(0, 2 * np.pi, 96, endpoint=False)
        points = np.stack([radius * np.cos(theta), radius * aspect * np.sin(theta)], axis=1)
        return _poly_mask(_rotate(points, angle) + center, size)
    if kind == "polygon":
        count = int(rng.integers(3, 8))
        theta = np.sort(rng.uniform(0, 2 * np.pi, count))
        points = _polar(radius * rng.uniform(0.55, 1.0, count), theta)
        return _poly_mask(points + center, size)
    if kind == "line":
        direction = np.array([np.cos(angle), np.sin(angle)])
        start, end = center - radius * direction, center + radius * direction
        mask = np.zeros((size, size), np.uint8)
        thickness = int(rng.integers(3, 11))
        cv2.line(mask, tuple(int(v) for v in np.round(start)), tuple(int(v) for v in np.round(end)),
                 255, thickness, lineType=cv2.LINE_AA)
        return mask.astype(np.float32) / 255.0
    raise ValueError(f"Unknown clutter shape. Received: kind={kind!r}")


def _draw_clutter(rng: np.random.Generator, canvas: np.ndarray, size: int) -> None:
    """Draws 6-12 label-independent shapes in muted colours, some semi-transparent."""
    count = int(rng.integers(_CLUTTER_COUNT[0], _CLUTTER_COUNT[1] + 1))
    for i in range(count):
        kind = CLUTTER_SHAPES[int(rng.integers(len(CLUTTER_SHAPES)))]
        # The first three are larger than any object, so the object is never the dominant thing
        # in the scene; the others range from smaller than the object to somewhat larger.
        radius = size * (rng.uniform(0.13, 0.3) if i < 3 else rng.uniform(0.04, 0.13))
        center = rng.uniform(0.05, 0.95, size=2) * size
        mask = _clutter_mask(rng, kind, center, radius, size)
        colour = _jitter(rng, CLUTTER_COLOURS[int(rng.integers(len(CLUTTER_COLOURS)))], 18)
        _composite(canvas, mask * rng.uniform(0.55, 1.0), colour)
        # Most get a dark outline: strong edges, as man-made things in photographs have, which
        # group into many proposals of every size around and across the object.
        if kind != "line" and rng.random() < _CLUTTER_OUTLINE_PROB:
            outline = _ring(mask, int(rng.integers(1, 4)))
            _composite(canvas, outline * rng.uniform(0.6, 1.0), _jitter(rng, np.full(3, 45.0), 25))


def _draw_distractors(rng: np.random.Generator, canvas: np.ndarray, size: int) -> None:
    """Draws label-independent shapes that carry the objects' colours on non-object shapes.

    ``warm_angular``: a positive colour on a rectangle, bar or polygon; ``dark_rounded``: a
    negative colour on an ellipse; ``two_tone``: stripes of one positive and one negative colour.
    None has a halo or rim. Every scene thus holds warm and dark colours whatever its label, so
    the colour statistics of the whole image are a weak cue, while the object's colour still
    dominates a crop around it.
    """
    count = int(rng.integers(_DISTRACTOR_COUNT[0], _DISTRACTOR_COUNT[1] + 1))
    for _ in range(count):
        kind = ("warm_angular", "dark_rounded", "two_tone")[int(rng.integers(3))]
        radius = size * rng.uniform(0.06, 0.16)
        center = rng.uniform(0.08, 0.92, size=2) * size
        warm = _jitter(rng, POSITIVE_COLOURS[int(rng.integers(len(POSITIVE_COLOURS)))], 15)
        dark = _jitter(rng, NEGATIVE_COLOURS[int(rng.integers(len(NEGATIVE_COLOURS)))], 12)
        if kind == "warm_angular":
            shape = ("rectangle", "line", "polygon")[int(rng.integers(3))]
            _composite(canvas, _clutter_mask(rng, shape, center, radius, size), warm)
        elif kind == "dark_rounded":
            _composite(canvas, _clutter_mask(rng, "ellipse", center, radius, size), dark)
        else:
            shape = ("rectangle", "ellipse")[int(rng.integers(2))]
            mask = _clutter_mask(rng, shape, center, radius, size)
            # Stripes of random period and direction split the shape between the two colours.
            period = rng.uniform(6, 14)
            angle = rng.uniform(0, np.pi)
            yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
            phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period
            stripes = (np.floor(phase) % 2).astype(np.float32)
            _composite(canvas, mask * stripes, warm)
            _composite(canvas, mask * (1.0 - stripes), dark)


# ----------------------------------------------------------------------------------------------
# Layers 4 and 5: decoys and the sentiment object. Their shapes are outlines in unit coordinates
# (radius about 1), scaled to the size wanted.


def _positive_outline(rng: np.random.Generator, kind: str) -> np.ndarray:
    """Rounded outline [N, 2] (x, y) of a positive object, centred at 0, radius about 1."""
    theta = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    if kind in ("circle", "smiley"):
        aspect = 1.0 if kind == "smiley" else rng.uniform(0.75, 1.0)
        return np.stack([np.cos(theta), aspect * np.sin(theta)], axis=1)
    if kind == "blob":
        radii = np.ones_like(theta)
        for k in (2, 3, 4):
            radii += rng.uniform(0.03, 0.09) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        return _polar(radii, theta)
    if kind == "flower":
        # A star with rounded points: lobes of a cosine, never a corner.
        lobes = int(rng.integers(5, 8))
        depth = rng.uniform(0.1, 0.18)
        radii = 1.0 - depth + depth * np.cos(lobes * theta + rng.uniform(0, 2 * np.pi))
        return _polar(radii, theta)
    raise ValueError(f"Unknown positive shape. Received: kind={kind!r}")


def _negative_outline(rng: np.random.Generator, kind: str) -> np.ndarray:
    """Angular outline [N, 2] (x, y) of a negative object, centred at 0, radius about 1."""
    if kind == "triangle":
        theta = np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.2, 0.2, 3)
        return _polar(np.ones(3), theta)
    if kind == "jagged_star":
        spikes = int(rng.integers(5, 10))
        theta = np.linspace(0, 2 * np.pi, 2 * spikes, endpoint=False)
        theta += rng.uniform(-0.25, 0.25, 2 * spikes) * np.pi / spikes
        radii = np.where(np.arange(2 * spikes) % 2 == 0, rng.uniform(0.85, 1.0, 2 * spikes),
                         rng.uniform(0.3, 0.5, 2 * spikes))
        return _polar(radii, theta)
    if kind == "cross":
        # An X (or +) of two bars, 12 corners.
        w = rng.uniform(0.2, 0.3)
        arm = np.array([[1.0, -w], [1.0, w], [w, w]])
        return np.concatenate([_rotate(arm, quarter * np.pi / 2) for quarter in range(4)])
    if kind == "bolt":
        # A lightning bolt: a zig-zag band with sharp corners.
        points = np.array([
            [-0.2, -1.0], [0.7, -1.0], [0.2, -0.2], [0.8, -0.2], [-0.4, 1.0], [-0.05, 0.15],
            [-0.65, 0.15]])
        return points + rng.uniform(-0.06, 0.06, points.shape)
    raise ValueError(f"Unknown negative shape. Received: kind={kind!r}")


def _outline(rng: np.random.Generator, kind: str) -> np.ndarray:
    """Outline [N, 2] (x, y) of shape ``kind``, randomly rotated (not a smiley) and stretched."""
    if kind in POSITIVE_SHAPES:
        outline = _positive_outline(rng, kind)
    else:
        outline = _negative_outline(rng, kind)
    if kind != "smiley":  # a face stays upright
        outline = _rotate(outline, rng.uniform(0, 2 * np.pi))
    stretch = rng.uniform(0.85, 1.15)
    return outline * np.array([stretch, 1.0 / stretch])


def _scale_for_area(extent: np.ndarray, area: float, edge_width: int) -> float:
    """Scale s of a unit outline so that its box, edge ring included, covers ``area`` pixels.

    Solves (w s + 2 e)(h s + 2 e) = area for s, with (w, h) = ``extent`` and e the ring width
    (plus half a pixel of anti-aliasing).
    """
    e = float(edge_width) + 0.5
    a, b, c = extent[0] * extent[1], 2 * e * (extent[0] + extent[1]), 4 * e * e - area
    return float((-b + np.sqrt(b * b - 4 * a * c)) / (2 * a))


def _smiley_features(center: np.ndarray, radius: float, size: int) -> np.ndarray:
    """Opacity [size, size] of a smiley's eyes and mouth (face of ``radius`` px at ``center``)."""
    features = np.zeros((size, size), np.uint8)
    for side in (-1, 1):
        eye = center + np.array([side * 0.35 * radius, -0.25 * radius])
        cv2.circle(features, tuple(int(v) for v in np.round(eye * 16)),
                   max(1, int(round(0.13 * radius * 16))), 255, -1, cv2.LINE_AA, 4)
    mouth = center + np.array([0.0, 0.05 * radius])
    cv2.ellipse(features, tuple(int(v) for v in np.round(mouth * 16)),
                (int(round(0.5 * radius * 16)), int(round(0.45 * radius * 16))), 0, 20, 160, 255,
                max(1, int(round(0.1 * radius))), cv2.LINE_AA, 4)
    return features.astype(np.float32) / 255.0


def _render_shape(
        outline: np.ndarray, center: np.ndarray, scale: float, fill: np.ndarray,
        edge_colour: np.ndarray, edge_width: int, size: int, smiley: bool = False,
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Rasterizes a filled outline with a ring (halo or rim) around it.

    Args:
        outline: [N, 2] unit outline (x, y).
        center: [2] pixel position (x, y) of the outline's origin.
        scale: pixels per outline unit.
        fill, edge_colour: RGB [3] of the body and of the ring.
        edge_width: ring width in pixels.
        size: image side.
        smiley: also draw a smiley's eyes and mouth, in a darkened fill colour.

    Returns:
        (footprint opacity [size, size], layers [(opacity [size, size], RGB [3]), ...] in
        drawing order).
    """
    body = _poly_mask(outline * scale + center, size)
    ring = _ring(body, edge_width)
    layers = [(ring, edge_colour), (body, fill)]
    if smiley:
        layers.append((_smiley_features(center, scale, size), fill * 0.45))
    return np.maximum(body, ring), layers


def _halo_colour(rng: np.random.Generator) -> np.ndarray:
    return _jitter(rng, HALO_COLOURS[int(rng.integers(len(HALO_COLOURS)))], 6)


def _rim_colour(rng: np.random.Generator) -> np.ndarray:
    return np.full(3, rng.uniform(0, 12), np.float32)


def _draw_ringed_shape(
        rng: np.random.Generator, canvas: np.ndarray, kind: str, fill: np.ndarray,
        edge_colour: np.ndarray, width: int, size: int,
) -> None:
    """Draws a shape of ``kind`` with a ring, at a random place, its box 1.5-5 % of the image."""
    outline = _outline(rng, kind)
    extent = outline.max(axis=0) - outline.min(axis=0)
    offset = (outline.max(axis=0) + outline.min(axis=0)) / 2.0
    edge_width = max(1, int(round(width * size / 256)))
    scale = _scale_for_area(extent, rng.uniform(0.015, 0.05) * size * size, edge_width)
    half = extent * scale / 2.0 + edge_width
    center = rng.uniform(half, size - half) - offset * scale
    _, layers = _render_shape(outline, center, scale, fill, edge_colour, edge_width, size)
    for alpha, colour in layers:
        _composite(canvas, alpha, colour)


def _draw_decoys(rng: np.random.Generator, canvas: np.ndarray, size: int) -> None:
    """Draws label-independent decoys: object-sized shapes with an object-like ring, muted fill.

    Decoys take their shape from either class's object family and their ring from either (a
    bright halo or a dark rim), but their fill from the muted clutter palette. To EdgeBoxes they
    look just like the object (a small, complete, high-contrast contour: what its score favours),
    so objectness alone often ranks a decoy first; they carry no sentiment cue.
    """
    count = int(rng.integers(_DECOY_COUNT[0], _DECOY_COUNT[1] + 1))
    kinds = ("circle", "blob", "flower") + NEGATIVE_SHAPES
    for _ in range(count):
        kind = kinds[int(rng.integers(len(kinds)))]
        fill = _jitter(rng, CLUTTER_COLOURS[int(rng.integers(len(CLUTTER_COLOURS)))], 18)
        if rng.random() < 0.5:
            _draw_ringed_shape(rng, canvas, kind, fill, _halo_colour(rng), _HALO_WIDTH, size)
        else:
            _draw_ringed_shape(rng, canvas, kind, fill, _rim_colour(rng), _RIM_WIDTH, size)


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box (top, left, bottom, right), bottom/right exclusive, of a bool mask [H, W]."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _object_style(rng: np.random.Generator, label: int) -> tuple[str, np.ndarray, np.ndarray, int]:
    """The object's look for a label: (shape name, fill colour, halo or rim colour, edge width).

    The edge width is in pixels at 256 px; colours are float [3] RGB in 0..255.
    """
    if label == POSITIVE:
        kind = POSITIVE_SHAPES[int(rng.integers(len(POSITIVE_SHAPES)))]
        fill = _jitter(rng, POSITIVE_COLOURS[int(rng.integers(len(POSITIVE_COLOURS)))], 12)
        # A bright halo: a glowing, rounded border is part of the positive cue.
        return kind, fill, _halo_colour(rng), _HALO_WIDTH
    kind = NEGATIVE_SHAPES[int(rng.integers(len(NEGATIVE_SHAPES)))]
    fill = _jitter(rng, NEGATIVE_COLOURS[int(rng.integers(len(NEGATIVE_COLOURS)))], 10)
    # A black rim: crisp and angular. Wider than the halo: the dark fill gives the rim's inner
    # edge little contrast, so the outer edge has to carry the contour.
    return kind, fill, _rim_colour(rng), _RIM_WIDTH


def _random_placement(
        rng: np.random.Generator, outline: np.ndarray, fill: np.ndarray, edge_colour: np.ndarray,
        edge_width: int, size: int, smiley: bool,
) -> tuple[tuple[int, int, int, int], np.ndarray, list] | None:
    """One random size and position of the object, rendered but not yet drawn.

    Returns:
        (tight box (top, left, bottom, right) in pixels, mask bool [size, size], the layers to
        composite), or None when the object leaves the image or misses the 2-5 % area range.
    """
    extent = outline.max(axis=0) - outline.min(axis=0)  # (width, height) at scale 1
    offset = (outline.max(axis=0) + outline.min(axis=0)) / 2.0
    margin = max(2, int(round(_BORDER_MARGIN * size / 256)))
    image_area = float(size * size)
    scale = _scale_for_area(extent, rng.uniform(*_TARGET_AREA_RANGE) * image_area, edge_width)
    half = extent * scale / 2.0 + edge_width + margin
    center = rng.uniform(half, size - half) - offset * scale
    footprint, layers = _render_shape(
        outline, center, scale, fill, edge_colour, edge_width, size, smiley=smiley)
    mask = footprint >= _MASK_THRESHOLD
    if not mask.any():
        return None
    top, left, bottom, right = _tight_box(mask)
    fraction = (bottom - top) * (right - left) / image_area
    inside = top >= 1 and left >= 1 and bottom <= size - 1 and right <= size - 1
    if not (OBJECT_AREA_RANGE[0] <= fraction <= OBJECT_AREA_RANGE[1]) or not inside:
        return None
    return (top, left, bottom, right), mask, layers


def _place_object(
        rng: np.random.Generator, canvas: np.ndarray, label: int, size: int,
) -> tuple[str, np.ndarray, np.ndarray]:
    """Draws the sentiment object onto ``canvas`` (float32 [size, size, 3]).

    Returns:
        (shape name, box float32 [4] normalized [y1, x1, y2, x2], object mask bool [size, size]).
    """
    kind, fill, edge_colour, width = _object_style(rng, label)
    outline = _outline(rng, kind)
    edge_width = max(1, int(round(width * size / 256)))
    best = None
    for _ in range(40):
        placement = _random_placement(
            rng, outline, fill, edge_colour, edge_width, size, smiley=kind == "smiley")
        if placement is None:
            continue
        box, mask, layers = placement
        # Local contrast: the object's outer colour (halo or rim) must differ from what
        # surrounds it, all the way round; a dark object touching dark clutter would merge with it
        # in any edge map. Retry placements and keep the best.
        surround = _ring(mask.astype(np.float32), _SURROUND_WIDTH) > 0.5
        distance = np.linalg.norm(canvas[surround] - edge_colour, axis=1)
        contrast = float(np.mean(distance >= _MIN_SURROUND_DISTANCE))
        if best is None or contrast > best[0]:
            best = (contrast, box, mask, layers)
        if contrast >= _MIN_SURROUND_CONTRAST:
            break
    if best is None:
        raise RuntimeError("Could not place the object inside the image; is size too small?")
    _, box, mask, layers = best
    for alpha, colour in layers:
        _composite(canvas, alpha, colour)
    return kind, np.array(box, np.float32) / np.float32(size), mask


# ----------------------------------------------------------------------------------------------
# Public API.


def render_scene(rng: np.random.Generator, label: int, size: int = 256) -> DemoScene:
    """Renders one scene with everything known about it (image, box, object mask, shape).

    Args:
        rng: the only source of randomness; the same generator state gives the same scene.
        label: 0 (negative) or 1 (positive).
        size: side of the square image in pixels (>= 64; the dataset uses 256).

    Returns:
        A :class:`DemoScene`.

    Raises:
        ValueError: ``label`` is not 0 or 1, or ``size`` is below 64.
    """
    if label not in (NEGATIVE, POSITIVE):
        raise ValueError(f"label must be 0 (negative) or 1 (positive). Received: label={label!r}")
    if size < 64:
        raise ValueError(f"size must be at least 64 pixels. Received: size={size!r}")
    canvas = _background(rng, size)
    _draw_clutter(rng, canvas, size)
    _draw_distractors(rng, canvas, size)
    _draw_decoys(rng, canvas, size)
    kind, box, mask = _place_object(rng, canvas, int(label), size)
    image = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return DemoScene(image=image, box=box, object_mask=mask, label=int(label), object_shape=kind)


def generate_scene(
        rng: np.random.Generator, label: int, size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Generates one scene whose sentiment is carried by a small object.

    Args:
        rng: the only source of randomness; the same generator state gives the same scene.
        label: 0 (negative: dark/cool angular object) or 1 (positive: warm bright rounded object).
        size: side of the square image in pixels.

    Returns:
        image: uint8 [size, size, 3], RGB.
        box: float32 [4], the object's tight box, normalized ``[y1, x1, y2, x2]`` in [0, 1]
            (pixel edges; covers 2-5 % of the image and lies fully inside it).
    """
    scene = render_scene(rng, label, size)
    return scene.image, scene.box


def scene_labels(seed: int, count: int) -> np.ndarray:
    """Balanced, shuffled labels int64 [count]: count // 2 negatives and the rest positives."""
    if count < 0:
        raise ValueError(f"count must be >= 0. Received: count={count!r}")
    labels = np.zeros(count, np.int64)
    labels[count // 2:] = POSITIVE
    return np.random.default_rng([seed, 0]).permutation(labels)


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of scene ``index``: an independent stream per (seed, index).

    Independent streams make scene ``index`` depend on the seed, its index and its label only, so
    scenes can be generated in any order or in parallel (e.g. Beam workers) with the same result.
    """
    return np.random.default_rng([seed, 1, index])


def generate_scenes(
        seed: int, count: int, size: int = 256,
) -> Iterator[tuple[int, np.ndarray, int, np.ndarray]]:
    """Yields ``count`` scenes with a balanced, shuffled label sequence, all fixed by ``seed``.

    Args:
        seed: non-negative integer; the same seed gives the same labels and images.
        count: number of scenes.
        size: side of the square images in pixels.

    Yields:
        (index, image uint8 [size, size, 3] RGB, label int, box float32 [4] normalized
        ``[y1, x1, y2, x2]``), for index 0 .. count - 1.
    """
    for index, label in enumerate(scene_labels(seed, count)):
        image, box = generate_scene(scene_rng(seed, index), int(label), size)
        yield index, image, int(label), box
