"""Constants of the proposal path shared by its two engines: the OpenCV one (edges.py,
edgeboxes.py) and the TensorFlow-op one of the served graph (graph.py). Defined once here, so the
two cannot drift apart, and importable without OpenCV or TensorFlow.
"""

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
GRADIENT_FLOOR = 1e-5

# The border ramp of the edge thinning (edgesNms' s; Dollar's edgesDetect.m feeds EdgeBoxes with
# s = 5): strengths fall linearly to 0 over this many pixels at the image's edge.
NMS_BORDER = 5

# EdgeBoxes needs a positive minimum box area to bound its sliding-window scales
# (scales = log(image side / sqrt(minBoxArea)) / log(step)): with min_box_area = 0 (the filter
# off) windows from 10 x 10 pixels up are generated.
MIN_GENERATED_BOX_AREA = 100.0

# The cap on EdgeBoxes' output in the authors' toolbox (pdollar/edges, edgeBoxesDemo.m:
# opts.maxBoxes = 1e4) and OpenCV's default: ProposalConfig.max_boxes at this value gives the
# paper's whole pool, the "thousands" of proposals of Algorithm 1 (2,000-9,000 boxes after the
# geometric filter on scikit-image's photos with gradient edges; with no cap at all astronaut
# gives 10,140 boxes instead of 10,000, motorcycle_left 12,337).
TOOLBOX_MAX_BOXES = 10_000

# The BSDS500 HED model was trained on Caffe-style input: BGR, minus this per-channel mean (used
# by the OpenCV path's edges.hed_input and the served graph's graph.graph_hed_input).
HED_BGR_MEAN = (104.00699, 116.66877, 122.67892)

# HED pools four times (stride 16): inputs padded to a multiple of it keep its side outputs
# aligned with the input when they are upsampled back.
HED_STRIDE = 16

# The triangle smoothing radius of the structured-edge orientation (Dollar's edgesDetect.m and
# OpenCV's computeOrientation), which HED's edge maps get their orientation from.
ORIENTATION_RADIUS = 4


def triangle_taps(radius: int) -> list[float]:
    """Dollar's ``convTri`` kernel of ``radius``: taps ``1, 2, .., r + 1, .., 2, 1`` over their
    sum (``2 r + 1`` floats; as float32 they equal a float32 division of the taps, bit for bit,
    which both engines' smoothing relies on)."""
    ramp = list(range(1, radius + 2))
    taps = ramp + ramp[-2::-1]
    total = float(sum(taps))
    return [tap / total for tap in taps]


def generation_limits(config) -> tuple[float, float]:
    """EdgeBoxes' ``(maxAspectRatio, minBoxArea)``, never tighter than the geometric filter.

    OpenCV's defaults (3 and 1000) never generate the boxes of aspect (3, 6] or area [800, 1000)
    that the paper's filter keeps (Algorithm 1, step 2), so the filter's own bounds are used. The
    authors' minimum side (``min_box_side``, 28 px) implies an area of at least its square, which
    only tightens generation where the filter would drop the boxes anyway. Both engines (OpenCV's
    and the graph's) generate with these.

    Args:
        config: a ``ProposalConfig``.

    Returns:
        ``(max_aspect_ratio, min_box_area)`` for ``setMaxAspectRatio`` / ``setMinBoxArea``.
    """
    min_area = max(float(config.min_box_area), float(config.min_box_side) ** 2,
                   MIN_GENERATED_BOX_AREA)
    return float(config.max_aspect_ratio), min_area
