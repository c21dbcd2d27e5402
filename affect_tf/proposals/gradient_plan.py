"""The fixed-point plan of the gradient edge map, shared by its two implementations.

The gradient edges (``edges.gradient_edges`` with OpenCV and NumPy, ``graph.graph_gradient_edges``
with TensorFlow ops) must give the same map to the last bit: EdgeBoxes is chaotic in its input
(a float32 rounding difference of 1e-7 in a few pixels moves a few of its boxes, and the normalized
cut then picks other candidates), and the served graph has to find the regions the evaluation
found. Floating-point filters cannot promise that: OpenCV, NumPy and TensorFlow sum a
convolution's taps in different orders, with or without fused multiply-adds, differently on
different CPUs. So every step before the last is integer arithmetic, carried in float64 where all
values stay integers below 2**53 (then any summation order gives the same exact result):

1. Smoothing with integer Gaussian taps (:func:`integer_gaussian_taps`, summing to about 128) of
   the uint8 image: integers below 255 * 128**2.
2. Sobel derivatives (integers, unscaled), per channel ``gx**2 + gy**2`` (below 2**50), the
   channel with the largest of it (the first on a tie).
3. The magnitude in steps of :data:`MAGNITUDE_STEP`: ``floor(sqrt(g2) / 16)``; ``sqrt`` is
   correctly rounded in IEEE 754, so every implementation gets the same integer.
4. Surround suppression in integers: ``side**2 * q - floor(strength * sum of q over the window)``.
5. Non-maximum suppression with bilinear weights quantized to 1/:data:`DIRECTION_ONE`:
   ``floor(1024 * sqrt(gx**2 / g2))``, then exact integer comparisons.
6. The border ramp as integer distances, and one float64 multiplication by a constant per ramp
   width (:meth:`GradientPlan.edge_scale`) that maps the integer to the edge strength, rounded to
   float32 once.

The orientation is ``atan2`` in float64 rounded to float32: the two libraries' ``atan2`` differ by
at most a few float64 units in the last place, which rounds to the same float32 except within
that distance of a rounding boundary (about one pixel in 10**8).

Conventions: images are uint8 RGB ``[H, W, 3]``; maps are ``[H, W]``.
"""

from __future__ import annotations

import dataclasses
import math

# The magnitude's integer step: q = floor(sqrt(gx^2 + gy^2) / MAGNITUDE_STEP). With taps summing
# to 128 one grey level per pixel is 8 * 128^2 = 131,072 units of the Sobel response, so a step of
# 16 resolves 1/8192 of a grey level per pixel.
MAGNITUDE_STEP = 16
# The non-maximum suppression's interpolation weights, in units of 1 / DIRECTION_ONE.
DIRECTION_ONE = 1024
# The Gaussian taps' target sum (their actual sum normalizes the result).
TAPS_TOTAL = 128
# Exact integers in float64.
_EXACT_LIMIT = 2 ** 53


def integer_gaussian_taps(sigma: float, total: int = TAPS_TOTAL) -> list[int]:
    """Integer Gaussian taps: ``round(total * g_i)`` of the normalized Gaussian of ``sigma`` over
    radius ``4 sigma`` (OpenCV's for float images), zero taps at both ends dropped.

    Args:
        sigma: standard deviation in pixels; 0 disables smoothing (``[1]``).
        total: the sum the rounded taps aim at.

    Returns:
        An odd-length symmetric list of positive ints (``[1, 5, 14, 27, 34, 27, 14, 5, 1]`` for
        sigma 1.5).

    Raises:
        ValueError: a negative sigma.
    """
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0. Received: sigma={sigma}")
    if sigma == 0:
        return [1]
    radius = max(1, int(round(4.0 * sigma)))
    weights = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
    norm = sum(weights)
    taps = [int(round(total * weight / norm)) for weight in weights]
    while taps[0] == 0:
        taps = taps[1:-1]
    return taps


@dataclasses.dataclass(frozen=True)
class GradientPlan:
    """Every integer and constant of one gradient edge setting (module docstring).

    Attributes:
        taps: the integer Gaussian taps (:func:`integer_gaussian_taps`).
        surround_side: ``2 r + 1`` of the surround window; 1 when suppression is off.
        surround_strength: the surround mean's weight; 0 when suppression is off.
        magnitude_floor: magnitudes (in steps) below this are zeroed.
        gain: the magnitude (per pixel, image in [0, 1]) that maps to edge strength 1.
        border: the thinning's border ramp width in pixels.
    """

    taps: tuple[int, ...]
    surround_side: int
    surround_strength: float
    magnitude_floor: float
    gain: float
    border: int

    @property
    def unit_slope(self) -> int:
        """Sobel units (unscaled, on smoothed uint8 pixels) of a slope of 1 per pixel in the
        [0, 1] image: ``8 * 255 * sum(taps)**2``."""
        return 8 * 255 * sum(self.taps) ** 2

    def edge_scale(self, ramp_width: int) -> float:
        """The float64 factor from the integer thinned map times the ramp (``ry * rx``, each in
        ``0..ramp_width``) to edge strength: ``step / (side^2 * unit_slope * width^2 * gain)``.
        One correctly rounded product, the same in every implementation."""
        width = max(ramp_width, 1)
        return MAGNITUDE_STEP / (self.surround_side ** 2 * self.unit_slope * width ** 2
                                 * self.gain)

    def edge_scales(self) -> list[float]:
        """:meth:`edge_scale` for ramp widths ``0..border`` (a table both implementations
        index with the image's own width)."""
        return [self.edge_scale(width) for width in range(self.border + 1)]


def gradient_plan(*, sigma: float, surround_radius: int, surround_strength: float, gain: float,
                  floor: float, border: int) -> GradientPlan:
    """The plan of one gradient edge setting, checked to stay exact.

    Args:
        sigma: Gaussian smoothing in pixels (0 disables).
        surround_radius: r of the ``(2 r + 1)^2`` surround window (0 disables).
        surround_strength: weight of the surround mean (0 disables).
        gain: magnitude mapped to edge strength 1 (> 0).
        floor: magnitudes below this (per pixel, image in [0, 1]) are zeroed.
        border: the border ramp width in pixels (>= 0).

    Raises:
        ValueError: a setting out of range, or one whose integers would leave float64's exact
            range (a surround window too large).
    """
    if gain <= 0:
        raise ValueError(f"gain must be > 0. Received: gain={gain}")
    if surround_radius < 0 or surround_strength < 0 or border < 0:
        raise ValueError(
            "surround_radius, surround_strength and border must be >= 0. Received: "
            f"surround_radius={surround_radius}, surround_strength={surround_strength}, "
            f"border={border}")
    suppress = surround_radius > 0 and surround_strength > 0
    taps = tuple(integer_gaussian_taps(sigma))
    plan = GradientPlan(taps=taps, surround_side=2 * surround_radius + 1 if suppress else 1,
                        surround_strength=float(surround_strength) if suppress else 0.0,
                        magnitude_floor=floor * 8 * 255 * sum(taps) ** 2 / MAGNITUDE_STEP,
                        gain=float(gain), border=int(border))
    # The largest products: the suppressed magnitude (side^2 x the largest q, a colour step of 255
    # along both axes) times the thinning's weights (DIRECTION_ONE^2) or the ramp (border^2).
    largest_q = math.sqrt(2.0) * 4 * 255 * sum(taps) ** 2 / MAGNITUDE_STEP
    largest = plan.surround_side ** 2 * largest_q * max(DIRECTION_ONE, border) ** 2
    if largest >= _EXACT_LIMIT:
        raise ValueError(
            "The gradient edges' integers would exceed 2**53 (float64's exact range) with "
            f"surround_radius={surround_radius}, sigma={sigma}, border={border}; use a smaller "
            "surround window.")
    return plan
