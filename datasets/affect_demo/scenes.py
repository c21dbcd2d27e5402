"""Synthetic scenes for the embedded demo dataset ``affect_demo`` (numpy + OpenCV, no TensorFlow).

Each scene is a cluttered image in which ONE face carries the sentiment label by its expression
(smiling or laughing: positive; frowning or scowling: negative). In most scenes the face is
distant (its box covers 1.5-4 % of the image): once the 256 px scene is resized for the CNN
(72 px), its mouth is a sub-pixel smudge and the whole image says little, while a crop around
the face shows the expression clearly. The other scenes are close-ups (10-35 %), where the whole
image shows the expression: from those the CNN, trained on whole images as in the paper, learns
what a smile and a frown look like. This is the setting in which the paper's affective regions
help (Yang et al., TMM 2018). The face's tight box is known, so region discovery can be scored.

A scene is drawn in layers, all from one ``np.random.Generator`` (same state, same scene):

1. Background: a smooth two-colour gradient (desaturated mid-tones) with low-frequency blotches
   and fine noise.
2. Clutter: 6-12 label-independent shapes (rectangles, ellipses, polygons, thick lines) in muted
   colours; the first three larger than a distant face; most carry a dark outline (strong edges,
   as man-made things in photographs have).
3. Decoys: 1-2 distant faces with a neutral (straight) mouth. EdgeBoxes favours small, complete,
   high-contrast contours, so a decoy often outranks the object by objectness; a sentiment
   classifier finds no cue in it.
4. The sentiment object, drawn last, fully inside the image, placed where its ring contrasts with
   its surroundings: a face whose fill colour (``FACE_COLOURS``), ring (a pale halo or a black rim)
   and size do not depend on the label; only the expression does.

Box convention: boxes are normalized ``[y1, x1, y2, x2]`` in [0, 1] with pixel-edge coordinates:
multiplied by ``size`` they give ``[top, left, bottom, right]`` with ``bottom``/``right``
exclusive, so the object occupies rows ``top .. bottom - 1``. This is the project's convention
(what ``tf.image.crop_and_resize`` and ``tfds.features.BBoxFeature`` take).

The parameters below were chosen with ``benchmarks/check_demo_scenes.py`` and the demo's
validation split (``benchmarks/bench_demo_seeds.py``); the measured properties are listed in
``datasets/affect_demo/README.md``.
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

# The face's tight box (ring included) covers this fraction of the image area: distant faces and
# close-ups, the latter in CLOSE_UP_SHARE of the scenes (drawn independently of the label).
FAR_AREA_RANGE = (0.014, 0.03)
CLOSE_AREA_RANGE = (0.2, 0.6)
CLOSE_UP_SHARE = 0.5
# Every object box lies in this range (the union of the two above).
OBJECT_AREA_RANGE = (FAR_AREA_RANGE[0], CLOSE_AREA_RANGE[1])
# Width of the features' strokes as a fraction of the face radius.
FEATURE_WIDTH = 0.07
# The object keeps at least this many pixels (at 256 px; scaled with size) from the image border.
_BORDER_MARGIN = 6
# Counts per scene (inclusive ranges) and the share of clutter shapes with a dark outline.
# More decoys and outlines push the object down the objectness ranking.
_CLUTTER_COUNT = (6, 12)
_DECOY_COUNT = (1, 2)
_CLUTTER_OUTLINE_PROB = 0.7
# Placement: at least _MIN_SURROUND_CONTRAST of the pixels in a _SURROUND_WIDTH-pixel ring around
# the object must differ from its ring colour (halo or rim) by _MIN_SURROUND_DISTANCE (RGB).
_SURROUND_WIDTH = 4
_MIN_SURROUND_DISTANCE = 80.0
_MIN_SURROUND_CONTRAST = 0.95
# A pixel belongs to the object (for its box and mask) when its opacity is at least this.
_MASK_THRESHOLD = 0.25

# Expressions of the object, by class.
POSITIVE_SHAPES = ("smile", "laugh")
NEGATIVE_SHAPES = ("frown", "scowl")
CLUTTER_SHAPES = ("rectangle", "ellipse", "polygon", "line")

# Face fills (RGB), shared by both classes and by the decoys: the colour says nothing.
FACE_COLOURS = np.array([
    (250, 215, 40),   # yellow
    (255, 170, 60),   # orange
    (250, 150, 180),  # pink
    (240, 200, 160),  # beige
    (150, 200, 245),  # light blue
    (160, 225, 150),  # light green
    (200, 175, 235),  # lavender
    (235, 235, 230),  # off-white
], dtype=np.float32)
# Halo colours: pale, bright.
HALO_COLOURS = np.array([
    (255, 255, 245),  # white
    (255, 250, 185),  # pale yellow
    (255, 222, 236),  # pale pink
], dtype=np.float32)
# Clutter palette: muted mid-tones.
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
        object_mask: bool [size, size], True where the object (face plus halo or rim) is drawn
            with opacity >= 0.25.
        label: 0 (negative) or 1 (positive).
        object_shape: the face's expression, from ``POSITIVE_SHAPES`` or ``NEGATIVE_SHAPES``.
        close_up: whether the face is a close-up (``CLOSE_AREA_RANGE``) or distant.
    """

    image: np.ndarray
    box: np.ndarray
    object_mask: np.ndarray
    label: int
    object_shape: str
    close_up: bool


# ----------------------------------------------------------------------------------------------
# Drawing helpers. Every shape is rasterized into a float opacity mask [size, size] in [0, 1]
# (anti-aliased), then alpha-composited onto the float32 canvas; this handles transparency,
# outlines and the object's exact footprint the same way.


def _composite(canvas: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Blends ``colour`` (RGB [3]) into ``canvas`` (float32 [H, W, 3]) with opacity ``alpha``.

    Only the box of non-zero opacity is touched: outside it the blend is the identity, and the
    full-frame arithmetic was two thirds of the generation time.
    """
    rows = np.flatnonzero(alpha.any(axis=1))
    if rows.size == 0:
        return
    cols = np.flatnonzero(alpha.any(axis=0))
    window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    a = alpha[window][..., None]
    region = canvas[window]  # a view: blended in place
    region *= 1.0 - a
    region += a * colour


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
# Layer 2: clutter.


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


# ----------------------------------------------------------------------------------------------
# Layers 3 and 4: decoys and the sentiment object, both faces. A face is a filled disc (or slight
# ellipse) with a ring (bright halo or black rim, label-independent) and dark features (eyes,
# mouth, sometimes brows) whose sizes are fixed fractions of the face radius: a close-up face and
# a crop around a distant one show the same pattern at a similar scale, which is what lets a CNN
# trained on whole images read the expression in a region crop.


def _face_outline(rng: np.random.Generator) -> np.ndarray:
    """Outline [N, 2] (x, y) of an upright face: a circle or a slight ellipse, radius about 1."""
    theta = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    aspect = rng.uniform(0.85, 1.0)
    if rng.random() < 0.5:  # taller or wider, both seen
        return np.stack([aspect * np.cos(theta), np.sin(theta)], axis=1)
    return np.stack([np.cos(theta), aspect * np.sin(theta)], axis=1)


def _scale_for_area(extent: np.ndarray, area: float, edge_width: int) -> float:
    """Scale s of a unit outline so that its box, edge ring included, covers ``area`` pixels.

    Solves (w s + 2 e)(h s + 2 e) = area for s, with (w, h) = ``extent`` and e the ring width
    (plus half a pixel of anti-aliasing).
    """
    e = float(edge_width) + 0.5
    a, b, c = extent[0] * extent[1], 2 * e * (extent[0] + extent[1]), 4 * e * e - area
    return float((-b + np.sqrt(b * b - 4 * a * c)) / (2 * a))


def _fixed_point(point: np.ndarray) -> tuple[int, int]:
    """Pixel (x, y) as OpenCV fixed-point coordinates (shift=4, 1/16 px)."""
    return tuple(int(v) for v in np.round(np.asarray(point) * 16.0))


def _face_features(
        expression: str, center: np.ndarray, radius: float, size: int,
        rng: np.random.Generator) -> np.ndarray:
    """Opacity [size, size] of a face's eyes, mouth and brows for ``expression``.

    Expressions: ``smile`` (an upward arc), ``laugh`` (an open D-shaped mouth), ``frown`` (a
    downward arc), ``scowl`` (a downward arc under brows slanted down to the middle), ``neutral``
    (a straight mouth: the decoys). Strokes are ``FEATURE_WIDTH`` of the radius wide: 1-1.5 px
    on a distant face, of which the 72 px view the CNN gets of the scene (a 3.6x reduction) keeps
    a faint smudge, and 4-7 px on a close-up (1-2 px in that view); a crop around a distant
    face, resized to 64 px, shows them at 2-3 px.
    """
    features = np.zeros((size, size), np.uint8)
    width = max(1, int(round(FEATURE_WIDTH * radius)))
    eye_radius = max(1, int(round(0.12 * radius * 16)))
    for side in (-1, 1):
        eye = center + np.array([side * 0.35 * radius, -0.25 * radius])
        cv2.circle(features, _fixed_point(eye), eye_radius, 255, -1, cv2.LINE_AA, 4)
    depth = rng.uniform(0.28, 0.42)  # how curved the mouth is (fraction of the radius)
    half_width = rng.uniform(0.4, 0.52)
    if expression in ("smile", "laugh"):
        mouth = center + np.array([0.0, 0.12 * radius])
        axes = (int(round(half_width * radius * 16)), int(round(depth * radius * 16)))
        # OpenCV's angles run clockwise in image coordinates: 0..180 is the lower half (a smile).
        if expression == "smile":
            cv2.ellipse(features, _fixed_point(mouth), axes, 0, 15, 165, 255, width, cv2.LINE_AA, 4)
        else:
            cv2.ellipse(features, _fixed_point(mouth), axes, 0, 0, 180, 255, -1, cv2.LINE_AA, 4)
    elif expression in ("frown", "scowl"):
        mouth = center + np.array([0.0, (0.2 + depth) * radius])
        axes = (int(round(half_width * radius * 16)), int(round(depth * radius * 16)))
        cv2.ellipse(features, _fixed_point(mouth), axes, 0, 195, 345, 255, width, cv2.LINE_AA, 4)
        if expression == "scowl":
            for side in (-1, 1):  # brows high at the temples, low at the middle
                outer = center + np.array([side * 0.6 * radius, -0.58 * radius])
                inner = center + np.array([side * 0.15 * radius, -0.38 * radius])
                cv2.line(features, _fixed_point(outer), _fixed_point(inner), 255, width,
                         cv2.LINE_AA, 4)
    elif expression == "neutral":
        left = center + np.array([-half_width * radius, 0.35 * radius])
        right = center + np.array([half_width * radius, 0.35 * radius])
        cv2.line(features, _fixed_point(left), _fixed_point(right), 255, width, cv2.LINE_AA, 4)
    else:
        raise ValueError(f"Unknown expression. Expected one of {POSITIVE_SHAPES + NEGATIVE_SHAPES}"
                         f" or 'neutral'. Received: expression={expression!r}")
    return features.astype(np.float32) / 255.0


@dataclasses.dataclass(frozen=True)
class _FaceStyle:
    """How one face looks, label aside: outline, fill, ring and feature colours (RGB [3])."""

    outline: np.ndarray
    fill: np.ndarray
    ring_colour: np.ndarray
    ring_width: int
    feature_colour: np.ndarray


def _face_style(rng: np.random.Generator, size: int) -> _FaceStyle:
    """A random face look shared by both classes: palette, ring kind and width are label-free."""
    fill = _jitter(rng, FACE_COLOURS[int(rng.integers(len(FACE_COLOURS)))], 14)
    if rng.random() < 0.5:
        ring_colour, width = _jitter(rng, HALO_COLOURS[int(rng.integers(len(HALO_COLOURS)))], 6), 2
    else:
        ring_colour, width = np.full(3, rng.uniform(0, 12), np.float32), 3
    return _FaceStyle(
        outline=_face_outline(rng), fill=fill, ring_colour=ring_colour,
        ring_width=max(1, int(round(width * size / 256))),
        feature_colour=np.full(3, rng.uniform(10, 45), np.float32))


def _render_face(
        style: _FaceStyle, expression: str, center: np.ndarray, scale: float, size: int,
        rng: np.random.Generator,
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Rasterizes a face: ring, disc, then features.

    Args:
        style: its look.
        expression: see :func:`_face_features`.
        center: [2] pixel position (x, y) of the outline's origin.
        scale: pixels per outline unit (the face radius).
        size: image side.
        rng: draws the mouth's width and curvature.

    Returns:
        (footprint opacity [size, size], layers [(opacity [size, size], RGB [3]), ...] in
        drawing order).
    """
    body = _poly_mask(style.outline * scale + center, size)
    ring = _ring(body, style.ring_width)
    features = _face_features(expression, center, scale, size, rng) * body
    layers = [(ring, style.ring_colour), (body, style.fill), (features, style.feature_colour)]
    return np.maximum(body, ring), layers


def _draw_decoys(rng: np.random.Generator, canvas: np.ndarray, size: int) -> None:
    """Draws 1-2 label-independent decoys: distant faces with a neutral mouth.

    To EdgeBoxes a decoy looks just like a distant object (a small, complete, high-contrast
    contour: what its score favours), so objectness alone often ranks a decoy first; it carries
    no sentiment, so a classifier's Senti on its crop is low and AR can rank the object above it.
    """
    count = int(rng.integers(_DECOY_COUNT[0], _DECOY_COUNT[1] + 1))
    for _ in range(count):
        style = _face_style(rng, size)
        extent = style.outline.max(axis=0) - style.outline.min(axis=0)
        scale = _scale_for_area(extent, rng.uniform(*FAR_AREA_RANGE) * size * size,
                                style.ring_width)
        half = extent * scale / 2.0 + style.ring_width
        center = rng.uniform(half, size - half)
        _, layers = _render_face(style, "neutral", center, scale, size, rng)
        for alpha, colour in layers:
            _composite(canvas, alpha, colour)


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box (top, left, bottom, right), bottom/right exclusive, of a bool mask [H, W]."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _random_placement(
        rng: np.random.Generator, style: _FaceStyle, expression: str,
        area_range: tuple[float, float], size: int,
) -> tuple[tuple[int, int, int, int], np.ndarray, list] | None:
    """One random size and position of the object, rendered but not yet drawn.

    Returns:
        (tight box (top, left, bottom, right) in pixels, mask bool [size, size], the layers to
        composite), or None when the object leaves the image or misses ``area_range``.
    """
    outline = style.outline
    extent = outline.max(axis=0) - outline.min(axis=0)  # (width, height) at scale 1
    margin = max(2, int(round(_BORDER_MARGIN * size / 256)))
    image_area = float(size * size)
    # Aim inside the range: the rendered box's anti-aliasing adds a pixel or so.
    low, high = area_range
    target = rng.uniform(low + 0.1 * (high - low), high - 0.1 * (high - low))
    scale = _scale_for_area(extent, target * image_area, style.ring_width)
    half = extent * scale / 2.0 + style.ring_width + margin
    if np.any(2 * half >= size):
        return None
    center = rng.uniform(half, size - half)
    footprint, layers = _render_face(style, expression, center, scale, size, rng)
    mask = footprint >= _MASK_THRESHOLD
    if not mask.any():
        return None
    top, left, bottom, right = _tight_box(mask)
    fraction = (bottom - top) * (right - left) / image_area
    inside = top >= 1 and left >= 1 and bottom <= size - 1 and right <= size - 1
    if not (low <= fraction <= high) or not inside:
        return None
    return (top, left, bottom, right), mask, layers


def _place_object(
        rng: np.random.Generator, canvas: np.ndarray, label: int, close_up: bool, size: int,
) -> tuple[str, np.ndarray, np.ndarray]:
    """Draws the sentiment object (a face whose expression is the label) onto ``canvas``.

    Args:
        rng: the scene's generator.
        canvas: float32 [size, size, 3], drawn on in place.
        label: 0 (negative: frown or scowl) or 1 (positive: smile or laugh).
        close_up: the face fills ``CLOSE_AREA_RANGE`` of the image instead of ``FAR_AREA_RANGE``.
        size: image side.

    Returns:
        (expression, box float32 [4] normalized [y1, x1, y2, x2], object mask bool [size, size]).
    """
    family = POSITIVE_SHAPES if label == POSITIVE else NEGATIVE_SHAPES
    expression = family[int(rng.integers(len(family)))]
    style = _face_style(rng, size)
    area_range = CLOSE_AREA_RANGE if close_up else FAR_AREA_RANGE
    best = None
    for _ in range(40):
        placement = _random_placement(rng, style, expression, area_range, size)
        if placement is None:
            continue
        box, mask, layers = placement
        # Local contrast: the face's ring must differ from what surrounds it, all the way round;
        # a dark rim touching dark clutter would merge with it in any edge map. Retry placements
        # and keep the best.
        surround = _ring(mask.astype(np.float32), _SURROUND_WIDTH) > 0.5
        distance = np.linalg.norm(canvas[surround] - style.ring_colour, axis=1)
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
    return expression, np.array(box, np.float32) / np.float32(size), mask


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
    close_up = bool(rng.random() < CLOSE_UP_SHARE)
    canvas = _background(rng, size)
    _draw_clutter(rng, canvas, size)
    _draw_decoys(rng, canvas, size)
    kind, box, mask = _place_object(rng, canvas, int(label), close_up, size)
    image = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return DemoScene(image=image, box=box, object_mask=mask, label=int(label), object_shape=kind,
                     close_up=close_up)


def generate_scene(
        rng: np.random.Generator, label: int, size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Generates one scene whose sentiment is carried by one face's expression.

    Args:
        rng: the only source of randomness; the same generator state gives the same scene.
        label: 0 (negative: a frowning or scowling face) or 1 (positive: a smiling or laughing
            face).
        size: side of the square image in pixels.

    Returns:
        image: uint8 [size, size, 3], RGB.
        box: float32 [4], the object's tight box, normalized ``[y1, x1, y2, x2]`` in [0, 1]
            (pixel edges; covers ``OBJECT_AREA_RANGE`` of the image and lies fully inside it).
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
