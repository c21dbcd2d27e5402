"""OpenCV's EdgeBoxes, step for step, in TensorFlow ops compiled by XLA (Algorithm 1, step 1).

The served graph cannot call OpenCV, and an approximation of EdgeBoxes moves the candidates far
more than noise does. This module is the same algorithm as OpenCV's ``ximgproc::EdgeBoxes``
(Zitnick & Dollar, ECCV 2014, as ported to OpenCV contrib's ``edgeboxes.cpp``), written in
TensorFlow ops:

1. ``clusterEdges``: edge pixels above ``edgeMinMag`` are grouped by OpenCV's greedy walk (from
   each unassigned pixel in scan order, repeatedly step to the listed neighbour whose orientation
   differs least from the pixel it was listed from, until the differences sum to
   ``edgeMergeThr``); groups of magnitude <= ``clusterMinMag`` are dissolved and their pixels
   join the best-aligned neighbouring group, pass after pass. Each group's magnitude, mean
   position and mean orientation give the affinity of groups within 2 pixels of each other,
   ``|cos(theta_i - theta_ij) cos(theta_j - theta_ij)|^gamma`` (the paper's Eq. of edge-group
   affinity).
2. ``scoreBox``: a box's score is the magnitude of the groups it contains minus that of the groups
   connected to its boundary (the max-product of affinities along a path of groups inside the box,
   pruned below 0.05) minus the edges of its centre half, over its half-perimeter to the power
   kappa.
3. ``scoreAllBoxes``: every window of OpenCV's sliding grid (scales in steps of
   ``sqrt(1 / alpha)``, aspect ratios in steps of ``(1 + alpha) / (2 alpha)``) is scored, each one
   with a non-zero score refined by OpenCV's coordinate search (``refineBox``).
4. ``boxesNms``: greedy non-maximum suppression at ``beta`` in score order, at most ``maxBoxes``.

The sequential parts (the walk, the merge passes, the suppression) are XLA while loops; a box's
score is computed by a lane of a lock-step engine that scores many boxes at once, each lane
walking the box's groups as OpenCV walks them (a list per box, a cursor that goes back to a group
whose weight improved), so every float operation of a score happens in OpenCV's order. XLA keeps
a loop's large buffers in place only when each iteration writes them before it reads them, so
every loop here applies the previous iteration's writes first.

Float arithmetic is OpenCV's, operation for operation: the groups' neighbour lists are in the
order OpenCV's pixel scan first meets each pair, a box's group weights are subtracted in list
order, and a product is kept from being fused into the subtraction (XLA:CPU contracts
``v - a * b`` into one fused multiply-add, which rounds once where OpenCV's build rounds twice).
XLA:CPU's ``cos`` and ``atan2`` are glibc's ``cosf`` and ``atan2f`` bit for bit, so the affinities
match too, but for one thing: OpenCV squares an affinity with ``powf(a, 2)``, which glibc does
not round correctly in about 0.06 % of cases, where XLA computes ``a * a`` (on astronaut at 128
px one pair of groups differs by an ulp, and 18 of its 913 boxes by <= 3e-7 relative). Where the
lists differ otherwise, it is between distinct boxes of exactly equal score, which OpenCV orders
by an unstable sort (libstdc++'s introsort, in its scoring, its suppression and its final sort)
and this module by grid order. OpenCV's own figures depend on its build in the same way (its
libm, whether its compiler contracts to FMA).

Layout: the maps are transposed as OpenCV's implementation transposes them, so index
``p = x * S + y`` walks pixels in OpenCV's scan order (x outer, y inner). Boxes are OpenCV's
``(x, y, w, h)`` rectangles (``edgeboxes.py``'s convention, with the +1 offset of the MATLAB
original added on output).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import tensorflow as tf

from affect_tf.proposals import constants

# OpenCV's defaults for the settings ProposalConfig does not expose (createEdgeBoxes()).
EDGE_MIN_MAG = 0.1
EDGE_MERGE_THR = 0.5
CLUSTER_MIN_MAG = 0.5
GAMMA = 2.0
KAPPA = 1.5
# Groups within this many pixels of each other get an affinity (clusterEdges' ``rad``).
AFFINITY_RADIUS = 2
# scoreBox stops following a path once its product of affinities falls below this.
MIN_PATH_WEIGHT = 0.05
# OpenCV tabulates pow(1 / i, kappa) for half-perimeters i below this.
SCALE_NORM_SIZE = 10_000

_PI = np.float32(math.pi)
# Entries of the walk's candidate list are searched in chunks of this many (two-level argmin).
_CHUNK = 512
# Neighbours of a pixel in OpenCV's order (xd outer, yd inner), centre excluded.
_NEIGHBOURS = [(xd, yd) for xd in (-1, 0, 1) for yd in (-1, 0, 1) if (xd, yd) != (0, 0)]
# Group neighbours (and boundary runs) a lane handles per step.
_LANE_WIDTH = 8
_CONSUMED = np.float32(1000.0)


@dataclasses.dataclass(frozen=True)
class EdgeBoxesSettings:
    """What the compiled program is specialised on (one compilation per distinct value).

    Attributes:
        canvas: S, the side of the square the maps are padded to (``proposal_max_side``).
        alpha, beta, min_score, max_boxes: OpenCV's settings of the same names.
        max_aspect_ratio, min_box_area: ``setMaxAspectRatio`` / ``setMinBoxArea`` (see
            ``edgeboxes.generation_limits``).
        lanes: boxes scored at once by the lock-step engine.
        max_groups: the most edge groups an image may have (tables are ``lanes x max_groups``).
        max_pairs: the most pairs of groups within ``AFFINITY_RADIUS`` of each other.
    """

    canvas: int
    alpha: float = 0.65
    beta: float = 0.75
    min_score: float = 0.01
    max_boxes: int = 10_000
    max_aspect_ratio: float = 3.0
    min_box_area: float = 1000.0
    lanes: int = 256
    max_groups: int = 8192
    max_pairs: int = 65_536


# ------------------------------------------------------------------------------------------------
# Small helpers.


def _put(table: tf.Tensor, index: tf.Tensor, value: tf.Tensor) -> tf.Tensor:
    """``table[index] = value`` for a flat table; writes to the last slot are discarded."""
    index = tf.reshape(index, [-1, 1])
    value = tf.reshape(tf.cast(value, table.dtype), [-1])
    return tf.tensor_scatter_nd_update(table, index, value)


def _compact(mask: tf.Tensor, capacity: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Positions of the True entries of a 1-D mask, in order, padded to ``capacity`` with -1."""
    mask = tf.reshape(mask, [-1])
    rank = tf.cumsum(tf.cast(mask, tf.int32)) - 1
    target = tf.where(mask, rank, capacity)
    positions = tf.range(tf.size(mask), dtype=tf.int32)
    out = _put(tf.fill([capacity + 1], -1), target, positions)
    return out[:capacity], tf.reduce_sum(tf.cast(mask, tf.int32))


def _first_min(values: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(minimum, index of its first occurrence) along the last axis (C's strict ``<`` scan)."""
    smallest = tf.reduce_min(values, axis=-1)
    size = tf.shape(values)[-1]
    index = tf.reduce_min(
        tf.where(values == smallest[..., None], tf.range(size), size), axis=-1)
    return smallest, index


def _pick(rows: tf.Tensor, column: tf.Tensor) -> tf.Tensor:
    """``rows[i, column[i]]`` for int32 rows [L, C] (elementwise: XLA's batched gather is slow)."""
    chosen = tf.equal(tf.range(rows.shape[1])[None, :], column[:, None])
    return tf.reduce_sum(tf.where(chosen, rows, 0), axis=1)


def _orientation_difference(o1: tf.Tensor, o0: tf.Tensor) -> tf.Tensor:
    """``|o1 - o0| / pi`` folded to [0, 0.5] (clusterEdges' ``v``), float32 as OpenCV."""
    v = tf.abs(o1 - o0) / _PI
    return tf.where(v > 0.5, 1.0 - v, v)


def scale_norm_table(kappa: float = KAPPA) -> np.ndarray:
    """OpenCV's ``_scaleNorm``: float32 ``pow(1.f / i, kappa)`` for i < 10,000 (i = 0: inf)."""
    with np.errstate(divide="ignore"):
        inverse = np.float32(1.0) / np.arange(SCALE_NORM_SIZE, dtype=np.float32)
    return np.power(inverse.astype(np.float64), kappa).astype(np.float32)


def grid_shapes(settings: EdgeBoxesSettings) -> tuple[list[tuple[int, int, int, int]], np.ndarray]:
    """scoreAllBoxes' window shapes, and how many scales an image of each longer side uses.

    Float32 arithmetic as OpenCV's (``float`` locals, ``logf`` / ``powf``).

    Returns:
        ``(shapes, scales_for_side)``: ``(scale, height, width, step_y, step_x)`` per shape in
        OpenCV's order (scale outer, aspect inner) for the scales a ``canvas``-sided image uses,
        and int32 [canvas + 1], the number of scales an image whose longer side is i uses.
    """
    f32 = np.float32
    alpha = f32(settings.alpha)
    sx_step = np.sqrt(f32(1.0) / alpha)
    ay_step = (f32(1.0) + alpha) / (f32(2.0) * alpha)
    xy_step_ratio = (f32(1.0) - alpha) / (f32(1.0) + alpha)
    min_size = np.sqrt(f32(settings.min_box_area))
    ay_rad = int(np.log(f32(settings.max_aspect_ratio)) / np.log(ay_step * ay_step))
    sides = np.arange(settings.canvas + 1, dtype=np.float32)
    with np.errstate(divide="ignore"):
        scales = np.ceil(np.log(sides / min_size) / np.log(sx_step))
    scales_for_side = np.maximum(np.nan_to_num(scales, neginf=0.0), 0).astype(np.int32)
    shapes = []
    for s in range(int(scales_for_side[-1])):
        for a in range(2 * ay_rad + 1):
            ay = np.power(ay_step, f32(a - ay_rad))
            sx = min_size * np.power(sx_step, f32(s))
            bh = int(sx / ay)
            ky = max(2, int(f32(bh) * xy_step_ratio))
            bw = int(sx * ay)
            kx = max(2, int(f32(bw) * xy_step_ratio))
            shapes.append((s, bh, bw, ky, kx))
    return shapes, scales_for_side


# ------------------------------------------------------------------------------------------------
# 1. clusterEdges.


def _walk_groups(seg: tf.Tensor, orient: tf.Tensor, canvas: int) -> tuple[tf.Tensor, tf.Tensor]:
    """OpenCV's greedy walk: every pixel marked 0 gets a group id (ids from 1, in scan order).

    Args:
        seg: int32 [T] flat labels (-1: no edge or border, 0: edge pixel), T = ``canvas ** 2``
            rounded up to whole chunks plus one spare slot; the last slot absorbs no-op writes.
        orient: float32 [T] orientation, same layout.
        canvas: S.

    Returns:
        ``(seg, next_id)``: labels with every 0 replaced by its walk's id, and the next free id.
    """
    total = seg.shape[0]
    spare = total - 1
    chunks = total // _CHUNK
    seeds, num_seeds = _compact(tf.equal(seg, 0), total)
    offsets = tf.constant([xd * canvas + yd for xd, yd in _NEIGHBOURS], tf.int32)
    positions = tf.range(_CHUNK, dtype=tf.int32)

    def step(t, walking, pixel, group, assign_group, sum_v, count, consume, assign, listed_new,
             listed_stamp, seg, listed, cand_v, cand_p, chunk_min):
        seg = _put(seg, assign, assign_group)
        cand_v = _put(cand_v, consume, _CONSUMED)
        listed = _put(listed, listed_new, tf.fill([len(_NEIGHBOURS)], listed_stamp))

        seed = seeds[tf.minimum(t, total - 1)]
        starts = ~walking & (t < num_seeds) & (tf.gather(seg, tf.maximum(seed, 0)) == 0)
        active = walking | starts
        current = tf.where(walking, pixel, tf.maximum(seed, 0))
        count = tf.where(walking, count, 0)
        sum_v = tf.where(walking, sum_v, 0.0)
        chunk_min = tf.where(walking, chunk_min, _CONSUMED)

        # List the unlisted, ungrouped neighbours of the current pixel, in OpenCV's order.
        neighbours = tf.clip_by_value(current + offsets, 0, spare)
        eligible = (active & (tf.gather(seg, neighbours) == 0)
                    & (tf.gather(listed, neighbours) != group))
        v = _orientation_difference(tf.gather(orient, neighbours), tf.gather(orient, current))
        v = tf.where(eligible, v, _CONSUMED)
        slots = count + tf.cumsum(tf.cast(eligible, tf.int32)) - 1
        slots = tf.where(eligible, slots, spare)
        cand_v = _put(cand_v, slots, v)
        cand_p = _put(cand_p, slots, neighbours)
        count = count + tf.reduce_sum(tf.cast(eligible, tf.int32))
        chunk_min = tf.tensor_scatter_nd_min(chunk_min, (slots // _CHUNK)[:, None], v)
        # The chunk whose entry was consumed last iteration: its minimum again.
        consumed_chunk = consume // _CHUNK
        block = tf.gather(tf.reshape(cand_v, [chunks, _CHUNK]), consumed_chunk)
        block = tf.where(consumed_chunk * _CHUNK + positions < count, block, _CONSUMED)
        chunk_min = tf.where(walking & (consume != spare),
                             _put(chunk_min, consumed_chunk[None], tf.reduce_min(block)[None]),
                             chunk_min)
        # The first listed entry of smallest difference (OpenCV's strict '<' scan).
        min_v, best_chunk = _first_min(chunk_min)
        block = tf.gather(tf.reshape(cand_v, [chunks, _CHUNK]), best_chunk)
        block = tf.where(best_chunk * _CHUNK + positions < count, block, _CONSUMED)
        _, offset = _first_min(block)
        best = best_chunk * _CHUNK + offset
        sum_v = sum_v + min_v
        goes_on = active & (sum_v < EDGE_MERGE_THR)

        next_state = (
            tf.where(goes_on, t, t + 1),
            goes_on,
            tf.where(goes_on, tf.gather(cand_p, tf.minimum(best, spare)), 0),
            tf.where(active & ~goes_on, group + 1, group),
            group,
            sum_v,
            count,
            tf.where(goes_on, best, spare),
            tf.where(active, current, spare),
            tf.where(eligible, neighbours, spare),
            group,
            seg, listed, cand_v, cand_p, chunk_min)
        return next_state

    state = (tf.constant(0), tf.constant(False), tf.constant(0), tf.constant(1), tf.constant(0),
             tf.constant(0.0), tf.constant(0), tf.constant(spare), tf.constant(spare),
             tf.fill([len(_NEIGHBOURS)], spare), tf.constant(0),
             seg, tf.fill([total], -1), tf.fill([total], _CONSUMED), tf.zeros([total], tf.int32),
             tf.fill([chunks], _CONSUMED))
    state = tf.while_loop(lambda t, walking, *_: walking | (t < num_seeds), step, state,
                          maximum_iterations=2 * total + 2)
    group, assign_group, assign, seg = state[3], state[4], state[8], state[11]
    return _put(seg, assign, assign_group), group


def _merge_small_groups(seg: tf.Tensor, edge: tf.Tensor, orient: tf.Tensor,
                        canvas: int) -> tf.Tensor:
    """Dissolves groups of magnitude <= clusterMinMag; their pixels join neighbouring groups.

    OpenCV's passes in scan order, each pixel seeing the labels given earlier in the same pass,
    until a pass labels nothing (a pixel with no grouped neighbour ever stays 0).

    Args:
        seg: int32 [T] labels from :func:`_walk_groups`. edge, orient: float32 [T] maps.
        canvas: S.

    Returns:
        int32 [T] labels.
    """
    total = seg.shape[0]
    spare = total - 1
    ids = tf.maximum(seg, 0)
    magnitude = tf.math.unsorted_segment_sum(tf.where(seg > 0, edge, 0.0), ids, total)
    small = (seg > 0) & (tf.gather(magnitude, ids) <= CLUSTER_MIN_MAG)
    seg = tf.where(small, 0, seg)
    pixels, num_pixels = _compact(tf.equal(seg, 0), total)
    offsets = tf.constant([xd * canvas + yd for xd, yd in _NEIGHBOURS], tf.int32)

    def step(i, labelled, write_at, write_id, seg):
        seg = _put(seg, write_at[None], write_id[None])
        pixel = tf.maximum(pixels[tf.minimum(i, total - 1)], 0)
        open_pixel = tf.gather(seg, pixel) == 0
        neighbours = pixel + offsets
        labels = tf.gather(seg, neighbours)
        v = _orientation_difference(tf.gather(orient, neighbours), tf.gather(orient, pixel))
        v = tf.where(labels > 0, v, _CONSUMED)
        min_v, first = _first_min(v)
        label = tf.where(min_v < _CONSUMED, tf.gather(labels, first), 0)
        labelled = labelled + tf.cast(open_pixel & (label > 0), tf.int32)
        at_end = i + 1 >= num_pixels
        # A pass that labelled something starts another.
        next_i = tf.where(at_end, tf.where(labelled > 0, 0, num_pixels), i + 1)
        labelled = tf.where(at_end, 0, labelled)
        return (next_i, labelled, tf.where(open_pixel, pixel, spare), label, seg)

    state = (tf.constant(0), tf.constant(0), tf.constant(spare), tf.constant(0), seg)
    _, _, write_at, write_id, seg = tf.while_loop(
        lambda i, *_: i < num_pixels, step, state)
    return _put(seg, write_at[None], write_id[None])


@dataclasses.dataclass
class _Groups:
    """Edge groups of one image and the tables scoreBox reads (flat, OpenCV's transposed layout).

    Attributes:
        magnitude: float32 [G] summed edge magnitude per group (G = ``max_groups``; id 0 unused).
        last_x, last_y: int32 [G] the group's last pixel in scan order (OpenCV's ``_segP``).
        adjacency_start: int32 [G + 1] CSR offsets of each group's neighbours.
        adjacency_group: int32 [2 * max_pairs] neighbour ids; adjacency_weight: their affinities.
        group_integral, edge_integral: float32 [(S + 1) ** 2] integral images (index
            ``x * (S + 1) + y``) of group magnitudes placed at their last pixel, and of edges above
            edgeMinMag.
        runs: int32 [2 * S * (S + 1)]: per row y, the group ids of its runs along x (from index
            ``y * (S + 1)``); then per column x, those along y (from ``S * (S + 1) + x * (S + 1)``).
        run_index_rows, run_index_columns: int32 [S * S]: the run a pixel ``x * S + y`` is in.
        num_groups: int32 scalar, ids in use (+1).
        fits: bool scalar, False where the image has more groups or pairs than the settings'
            capacities (the tables are then incomplete).
    """

    magnitude: tf.Tensor
    last_x: tf.Tensor
    last_y: tf.Tensor
    adjacency_start: tf.Tensor
    adjacency_group: tf.Tensor
    adjacency_weight: tf.Tensor
    group_integral: tf.Tensor
    edge_integral: tf.Tensor
    runs: tf.Tensor
    run_index_rows: tf.Tensor
    run_index_columns: tf.Tensor
    num_groups: tf.Tensor
    fits: tf.Tensor


def _integral(values: tf.Tensor, canvas: int) -> tf.Tensor:
    """float32 [(S + 1) ** 2] integral image of values [S, S] (transposed layout), zero-bordered.

    OpenCV's float32 recurrence ``I[x + 1][y + 1] = ((v[x][y] + I[x][y + 1]) + I[x + 1][y]) -
    I[x][y]``, rounded as OpenCV rounds it (a cumulative sum rounds differently, by up to 1e-3 on
    a 100 px image, which moves scores). Entries of one anti-diagonal do not depend on each other,
    so the loop runs over the 2 S anti-diagonals, each computed at once: row d of the skewed
    array holds ``I[X, d - X]``.
    """
    size = canvas + 1
    column = tf.range(size)

    def diagonal(table, d):
        # Entries (X, d - X) of a [size, size] table, zero outside it.
        y = d - column
        inside = (y >= 0) & (y < size)
        return tf.where(inside, tf.gather(table, column * size + tf.clip_by_value(y, 0, size - 1)),
                        0.0)

    padded = tf.reshape(tf.pad(values, [[1, 0], [1, 0]]), [size * size])

    def step(d, before_last, last, rows):
        shifted = lambda row: tf.concat([[0.0], row[:-1]], 0)  # noqa: E731  row[X - 1]
        # ((v[X-1][Y-1] + I[X-1][Y]) + I[X][Y-1]) - I[X-1][Y-1], Y = d - X.
        current = ((diagonal(padded, d) + shifted(last)) + last) - shifted(before_last)
        y = d - column
        current = tf.where((column >= 1) & (y >= 1) & (y < size), current, 0.0)
        rows = tf.tensor_scatter_nd_update(rows, [[d]], current[None])
        return d + 1, last, current, rows

    rows = tf.zeros([2 * size, size])
    _, _, _, rows = tf.while_loop(
        lambda d, *_: d < 2 * size - 1, step,
        (tf.constant(2), tf.zeros([size]), tf.zeros([size]), rows))
    x = tf.repeat(tf.range(size), size)
    y = tf.tile(tf.range(size), [size])
    return tf.gather(tf.reshape(rows, [-1]), (x + y) * size + x)


def _runs(seg2d: tf.Tensor, canvas: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Runs of equal labels along axis 0 of ``seg2d`` [A, B], per index of axis 1.

    OpenCV's ``_hIdxs`` / ``_hIdxImg`` (and ``_vIdxs`` / ``_vIdxImg`` on the transpose): for each
    b, the list of labels starting a run along a (beginning with a 0 entry), and for each (a, b)
    the list index of the run holding it.

    Returns:
        ``(lists, index)``: int32 [B * (S + 1)] (list of b from ``b * (S + 1)``) and int32 [A, B].
    """
    previous = tf.pad(seg2d[:-1], [[1, 0], [0, 0]])  # A 0 before the first pixel, as OpenCV.
    starts = tf.not_equal(seg2d, previous)
    index = tf.cumsum(tf.cast(starts, tf.int32), axis=0)
    columns = tf.broadcast_to(tf.range(canvas)[None, :], tf.shape(seg2d))
    target = tf.where(starts, columns * (canvas + 1) + index, canvas * (canvas + 1))
    lists = _put(tf.zeros([canvas * (canvas + 1) + 1], tf.int32), target, seg2d)
    return lists[:-1], index


def _group_tables(seg: tf.Tensor, edge: tf.Tensor, orient: tf.Tensor, width: tf.Tensor,
                  height: tf.Tensor, settings: EdgeBoxesSettings) -> _Groups:
    """Renumbers groups densely and builds scoreBox's tables (clusterEdges' tail, prepDataStructs).

    Args:
        seg: int32 [T] labels after merging; edge, orient: float32 [T] (transposed, flat).
        width, height: the image's size (OpenCV's ``w``, ``h``).
        settings: ``canvas``, ``max_groups``, ``max_pairs``.
    """
    canvas, max_groups = settings.canvas, settings.max_groups
    area = canvas * canvas
    seg, edge, orient = seg[:area], edge[:area], orient[:area]
    ids = tf.maximum(seg, 0)
    magnitude = tf.math.unsorted_segment_sum(tf.where(seg > 0, edge, 0.0), ids, area)
    kept = magnitude > 0
    new_id = tf.cumsum(tf.cast(kept, tf.int32))
    num_groups = new_id[-1] + 1
    # XLA drops assertions: the caller checks ``fits`` (:func:`edge_boxes_in_graph`).
    fits = num_groups <= max_groups
    seg = tf.where(seg > 0, tf.minimum(tf.gather(new_id, ids), max_groups - 1), seg)
    ids = tf.maximum(seg, 0)
    pixel = tf.range(area, dtype=tf.int32)
    x = tf.cast(pixel // canvas, tf.float32)
    y = tf.cast(pixel % canvas, tf.float32)
    m = tf.where(seg > 0, edge, 0.0)

    def group_sum(values):
        return tf.math.unsorted_segment_sum(values, ids, max_groups)

    magnitude = group_sum(m)
    safe = tf.where(magnitude > 0, magnitude, 1.0)
    mean_x = group_sum(m * x) / safe
    mean_y = group_sum(m * y) / safe
    mean_o = tf.atan2(group_sum(m * tf.sin(2.0 * orient)) / safe,
                      group_sum(m * tf.cos(2.0 * orient)) / safe) / 2.0
    last = tf.math.unsorted_segment_max(tf.where(seg > 0, pixel, -1), ids, max_groups)
    last = tf.maximum(last, 0)
    last_x, last_y = last // canvas, last % canvas

    # Pairs of groups within AFFINITY_RADIUS pixels (centre pixel inside the radius margin).
    # OpenCV appends a pair to both groups' neighbour lists when its scan (pixel x outer, y
    # inner, then the offsets) first meets it; scoreBox visits neighbours in that order, and the
    # order decides the order it subtracts group weights in (the last bits of a score). So each
    # pair keeps the index of its first occurrence, ``pixel * offsets + offset``.
    seg2d = tf.reshape(seg, [canvas, canvas])
    xs = tf.range(canvas)[:, None]
    ys = tf.range(canvas)[None, :]
    margin = ((xs >= AFFINITY_RADIUS) & (xs < width - AFFINITY_RADIUS)
              & (ys >= AFFINITY_RADIUS) & (ys < height - AFFINITY_RADIUS))
    radius = AFFINITY_RADIUS
    padded = tf.pad(seg2d, [[radius, radius], [radius, radius]], constant_values=-1)
    keys = []
    for xd in range(-radius, radius + 1):
        for yd in range(-radius, radius + 1):
            other = padded[radius + xd:radius + xd + canvas, radius + yd:radius + yd + canvas]
            valid = margin & (seg2d > 0) & (other > seg2d)
            key = seg2d * max_groups + other
            # Most pairs repeat down a column: keep the first of each run.
            repeat = tf.pad(valid[:, :-1] & tf.equal(key[:, :-1], key[:, 1:]),
                            [[0, 0], [1, 0]])
            keys.append(tf.where(valid & ~repeat, key, -1))
    num_offsets = len(keys)
    keys = tf.reshape(tf.stack(keys), [-1])
    found, num_found = _compact(keys >= 0, settings.max_pairs * 4)
    fits = fits & (num_found <= settings.max_pairs * 4)
    safe_found = tf.maximum(found, 0)
    occurrence = tf.cast((safe_found % area) * num_offsets + safe_found // area, tf.int64)
    occurrences = area * num_offsets
    big = max_groups * max_groups
    pair_keys = tf.where(found >= 0, tf.gather(keys, safe_found), big)
    # Sorted by pair, then by occurrence: the first entry of each pair is its first occurrence.
    ranked = tf.sort(tf.cast(pair_keys, tf.int64) * occurrences + occurrence)
    pair_keys = tf.cast(ranked // occurrences, tf.int32)
    first = tf.concat([[True], pair_keys[1:] != pair_keys[:-1]], axis=0) & (pair_keys < big)
    unique, num_pairs = _compact(first, settings.max_pairs)
    fits = fits & (num_pairs <= settings.max_pairs)
    pair_keys = tf.gather(pair_keys, tf.maximum(unique, 0))
    pair_occurrence = tf.gather(ranked % occurrences, tf.maximum(unique, 0))
    pair_valid = unique >= 0
    s0 = tf.where(pair_valid, pair_keys // max_groups, 0)
    s1 = tf.where(pair_valid, pair_keys % max_groups, 0)
    theta = tf.atan2(tf.gather(mean_y, s0) - tf.gather(mean_y, s1),
                     tf.gather(mean_x, s0) - tf.gather(mean_x, s1)) + _PI / 2.0
    affinity = tf.abs(tf.cos(tf.gather(mean_o, s0) - theta) * tf.cos(tf.gather(mean_o, s1) - theta))
    affinity = tf.pow(affinity, GAMMA)
    # Both directions, by source, then by the pair's first occurrence (CSR).
    source = tf.concat([tf.where(pair_valid, s0, max_groups),
                        tf.where(pair_valid, s1, max_groups)], 0)
    target = tf.concat([s1, s0], 0)
    weight = tf.concat([affinity, affinity], 0)
    occurrence = tf.concat([pair_occurrence, pair_occurrence], 0)
    order = tf.argsort(tf.cast(source, tf.int64) * occurrences + occurrence)
    source, target, weight = (tf.gather(source, order), tf.gather(target, order),
                              tf.gather(weight, order))
    degree = tf.math.unsorted_segment_sum(tf.ones_like(source), source, max_groups + 1)
    adjacency_start = tf.concat([[0], tf.cumsum(degree[:max_groups])], 0)

    # Integral images (prepDataStructs): from pixel 1 on in both axes, as OpenCV's loops.
    inside = (xs >= 1) & (xs < width) & (ys >= 1) & (ys < height)
    has_group = (tf.range(max_groups) > 0) & (magnitude > 0)
    placed = tf.scatter_nd(
        tf.stack([tf.where(has_group, last_x, canvas), last_y], 1),
        tf.where(has_group, magnitude, 0.0), [canvas + 1, canvas])[:canvas]
    edge2d = tf.reshape(edge, [canvas, canvas])
    strong = tf.where(inside & (edge2d > EDGE_MIN_MAG), edge2d, 0.0)
    group_integral = _integral(tf.where(inside, placed, 0.0), canvas)
    edge_integral = _integral(strong, canvas)

    row_lists, row_index = _runs(seg2d, canvas)              # along x, per row y
    column_lists, column_index = _runs(tf.transpose(seg2d), canvas)  # along y, per column x
    return _Groups(
        magnitude=magnitude, last_x=last_x, last_y=last_y, adjacency_start=adjacency_start,
        adjacency_group=target, adjacency_weight=weight, group_integral=group_integral,
        edge_integral=edge_integral, runs=tf.concat([row_lists, column_lists], 0),
        run_index_rows=tf.reshape(row_index, [area]),
        run_index_columns=tf.reshape(tf.transpose(column_index), [area]),
        num_groups=num_groups, fits=fits)


# ------------------------------------------------------------------------------------------------
# 2-3. scoreBox and refineBox of every window, by lanes in lock-step.


def _lane_engine(grid: tf.Tensor, valid: tf.Tensor, groups: _Groups, width: tf.Tensor,
                 height: tf.Tensor, settings: EdgeBoxesSettings,
                 scale_norm: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """scoreAllBoxes' scoring and refinement of every window (OpenCV's ``scoreBox`` and
    ``refineBox``), ``settings.lanes`` windows at a time.

    A lane takes a window, scores it, and if the score is not zero refines it to the end (the
    coordinate search of ``refineBox``: each round halves the steps, stopping once both are <= 2,
    then for y start, y end, x start, x end tries the box grown by the step, and if that is not
    better the box shrunk by it, keeping the try if it beats the box), then takes the next window.
    Scoring a candidate: its edge mass from the integral images, the early exit below
    ``min_score``, then the groups its four sides cross (weight 1), then the groups reachable from
    them through the affinities, each keeping the largest product of affinities along a path of
    groups whose last pixel lies in the box (pruned below ``MIN_PATH_WEIGHT``). As OpenCV, a lane
    keeps the groups in a list in the order they join, walks it with a cursor, and sends the
    cursor back to a listed group whose weight improved once the current group's neighbours are
    done; then it subtracts the weighted magnitudes of the listed groups inside the box, in list
    order (phases 0 scan, 1 walk, 2 sum, 3 scored, 4 idle).

    Args:
        grid: int32 [N, 4] windows ``(y, x, h, w)`` (before clamping); valid: bool [N].
        groups: the image's tables; width, height: its size.
        settings: ``lanes``, ``max_groups``, ``min_score``, ``alpha``.
        scale_norm: float32 [10000], :func:`scale_norm_table`.

    Returns:
        ``(boxes, scores)``: int32 [N, 4] the refined boxes ``(y, x, h, w)`` clamped to the image
        and float32 [N] their scores (0: no score, or not valid).
    """
    canvas, lanes, max_groups = settings.canvas, settings.lanes, settings.max_groups
    size = grid.shape[0]
    side = canvas + 1
    column_base = canvas * side
    min_score = np.float32(settings.min_score)
    ratio = np.float32((np.float32(1) - np.float32(settings.alpha))
                       / (np.float32(1) + np.float32(settings.alpha)))
    work, num_work = _compact(valid, size)
    table = lanes * max_groups
    spare = table  # Writes here are discarded.
    lane = tf.range(lanes)
    lane_base = lane * max_groups
    k = tf.range(_LANE_WIDTH)
    # The groups a lane reads: the boundary runs, then the adjacency lists (one gather for both).
    num_runs = tf.size(groups.runs)
    stream_group = tf.concat([groups.runs, groups.adjacency_group], 0)
    stream_weight = tf.concat([tf.ones_like(groups.runs, tf.float32), groups.adjacency_weight], 0)
    stream_size = tf.size(stream_group)
    group_info = tf.stack([tf.cast(groups.last_x, tf.float32), tf.cast(groups.last_y, tf.float32),
                           groups.magnitude], axis=1)
    # 1, but not a constant XLA could fold away (see the subtraction in ``step``).
    one = tf.cast(width >= 0, tf.float32)

    def rect(integral, ax0, ay0, ax1, ay1):
        # ((I(x0, y0) + I(x1 + 1, y1 + 1)) - I(x1 + 1, y0)) - I(x0, y1 + 1), OpenCV's order.
        return ((tf.gather(integral, ax0 * side + ay0)
                 + tf.gather(integral, (ax1 + 1) * side + ay1 + 1))
                - tf.gather(integral, (ax1 + 1) * side + ay0)
                - tf.gather(integral, ax0 * side + ay1 + 1))

    def prepare(candidate):
        """Clamps candidates [L, 4] and computes what scoring them needs (scoreBox's start)."""
        y, x, h, w = tf.unstack(candidate, axis=1)
        y1 = tf.clip_by_value(y + h, 0, height - 1)
        y0 = tf.clip_by_value(y, 0, height - 1)
        x1 = tf.clip_by_value(x + w, 0, width - 1)
        x0 = tf.clip_by_value(x, 0, width - 1)
        half_h, half_w = (y1 - y0) // 2, (x1 - x0) // 2
        mass = rect(groups.group_integral, x0, y0, x1, y1)
        y0m = y0 + half_h // 2
        x0m = x0 + half_w // 2
        mass = mass - rect(groups.edge_integral, x0m, y0m, x0m + half_w, y0m + half_h)
        norm = tf.gather(scale_norm, tf.minimum(half_w + half_h, SCALE_NORM_SIZE - 1))
        rows, columns = groups.run_index_rows, groups.run_index_columns
        starts = tf.stack([
            y0 * side + tf.gather(rows, x0 * canvas + y0),
            y1 * side + tf.gather(rows, x0 * canvas + y1),
            column_base + x0 * side + tf.gather(columns, x0 * canvas + y0),
            column_base + x1 * side + tf.gather(columns, x1 * canvas + y0)], 1)
        ends = tf.stack([
            y0 * side + tf.gather(rows, x1 * canvas + y0),
            y1 * side + tf.gather(rows, x1 * canvas + y1),
            column_base + x0 * side + tf.gather(columns, x0 * canvas + y1),
            column_base + x1 * side + tf.gather(columns, x1 * canvas + y1)], 1)
        clamped = tf.stack([y0, x0, y1 - y0, x1 - x0], 1)
        return clamped, mass, norm, mass * norm >= min_score, starts, ends

    def moved(box, side_index, grow, y_step, x_step):
        """refineBox's tries: the box with one side moved out (grow) or in by the step."""
        y, x, h, w = tf.unstack(box, axis=1)
        sign = tf.where(grow, 1, -1)
        dy, dx = sign * y_step, sign * x_step
        y = tf.where(side_index == 0, y - dy, y)
        h = tf.where((side_index == 0) | (side_index == 1), h + dy, h)
        x = tf.where(side_index == 2, x - dx, x)
        w = tf.where((side_index == 2) | (side_index == 3), w + dx, w)
        return tf.stack([y, x, h, w], 1)

    def step(next_work, item, stage, box, best, y_step, x_step, side_index, attempt,
             candidate, value, norm, phase, scan, scan_pos, starts, ends, cursor, length,
             current, adj_pos, adj_end, current_weight, rewind, stamp, join_at, join_stamp,
             join_position, weight_at, weight_value, list_at, list_group, member, position,
             weight, listed, out_boxes, out_scores):
        # The previous step's writes first (module docstring).
        member = _put(member, join_at, join_stamp)
        position = _put(position, join_at, join_position)
        weight = _put(weight, weight_at, weight_value)
        listed = _put(listed, list_at, list_group)

        # Lanes whose candidate is scored decide what comes next (scoreAllBoxes / refineBox).
        finished = phase == 3
        score = value * norm
        score = tf.where(score < min_score, 0.0, score)
        first_score = finished & (stage == 0)
        refining = finished & (stage == 1)
        initial_steps_y = tf.cast(tf.cast(candidate[:, 2], tf.float32) * ratio, tf.int32) // 2
        initial_steps_x = tf.cast(tf.cast(candidate[:, 3], tf.float32) * ratio, tf.int32) // 2
        starts_refining = first_score & (score != 0.0)
        too_small = (initial_steps_y <= 2) & (initial_steps_x <= 2)
        box = tf.where(first_score[:, None], candidate, box)
        best = tf.where(first_score, score, best)
        y_step = tf.where(starts_refining, tf.maximum(initial_steps_y, 1), y_step)
        x_step = tf.where(starts_refining, tf.maximum(initial_steps_x, 1), x_step)
        # A grown try that is no better is followed by the shrunk one; a better try is kept.
        retry = refining & (attempt == 0) & (score <= best)
        accept = refining & (score > best)
        box = tf.where(accept[:, None], candidate, box)
        best = tf.where(accept, score, best)
        side_done = refining & ~retry
        next_side = side_index + 1
        round_done = side_done & (next_side == 4)
        halved_y, halved_x = y_step // 2, x_step // 2
        rounds_over = round_done & (halved_y <= 2) & (halved_x <= 2)
        y_step = tf.where(round_done, tf.maximum(halved_y, 1), y_step)
        x_step = tf.where(round_done, tf.maximum(halved_x, 1), x_step)
        side_index = tf.where(side_done, tf.where(round_done, 0, next_side),
                              tf.where(starts_refining, 0, side_index))
        attempt = tf.where(retry, 1, tf.where(side_done | starts_refining, 0, attempt))
        stage = tf.where(starts_refining, 1, stage)
        done = (first_score & ((score == 0.0) | too_small)) | rounds_over
        out_boxes = tf.tensor_scatter_nd_update(out_boxes, tf.where(done, item, size)[:, None], box)
        out_scores = _put(out_scores, tf.where(done, item, size), best)
        goes_on = finished & ~done

        # Lanes without a window take their next one: lane i the windows i, i + L, i + 2 L, ...
        # (a prefix sum over the lanes to share one queue costs XLA O(L^2) per step).
        idle = done | (item < 0)
        position_in_work = next_work * lanes + lane
        take = idle & (position_in_work < num_work)
        item = tf.where(take, tf.gather(work, tf.minimum(position_in_work, size - 1)),
                        tf.where(idle, -1, item))
        next_work = next_work + tf.cast(take, tf.int32)
        stage = tf.where(take, 0, stage)

        # New candidates: a window, or refineBox's next try.
        tries = moved(box, side_index, attempt == 0, y_step, x_step)
        fresh = take | goes_on
        raw = tf.where(take[:, None], tf.gather(grid, tf.maximum(item, 0)), tries)
        clamped, new_mass, new_norm, passes, new_starts, new_ends = prepare(raw)
        candidate = tf.where(fresh[:, None], clamped, candidate)
        value = tf.where(fresh, new_mass, value)
        norm = tf.where(fresh, new_norm, norm)
        starts = tf.where(fresh[:, None], new_starts, starts)
        ends = tf.where(fresh[:, None], new_ends, ends)
        phase = tf.where(fresh, tf.where(passes, 0, 3), tf.where(idle, 4, phase))
        scan = tf.where(fresh, 0, scan)
        scan_pos = tf.where(fresh, new_starts[:, 0], scan_pos)
        cursor = tf.where(fresh, 0, cursor)
        length = tf.where(fresh, 0, length)
        current = tf.where(fresh, -1, current)
        # Stamps mark a lane's own table rows, so a count per lane keeps them unique.
        stamp = tf.where(fresh, stamp + 1, stamp)

        # Up to 8 groups per lane and step. Phase 0: the groups the candidate's four sides cross
        # (weight 1), listed in order. Phase 1: scoreBox's walk down its list: the neighbours of
        # the listed group at the cursor (its weight times their affinity); a better weight for a
        # listed group sends the cursor back to it once this group is done, as OpenCV's
        # ``i = min(i, sMap[q] - 1)``. Phase 2: the listed groups inside the box are subtracted
        # in list order. Phase 3: scored.
        in_scan = phase == 0
        in_walk = phase == 1
        in_sum = phase == 2
        pops = in_walk & (current < 0)
        empty = cursor >= length
        popping = pops & ~empty
        popped = tf.gather(listed, lane_base + tf.minimum(cursor, max_groups - 1))
        current = tf.where(popping, popped, current)
        walking = in_walk & (current >= 0)
        safe_current = tf.maximum(current, 0)
        current_weight = tf.where(popping, tf.gather(weight, lane_base + safe_current),
                                  current_weight)
        adj_pos = tf.where(popping, tf.gather(groups.adjacency_start, safe_current), adj_pos)
        adj_end = tf.where(popping, tf.gather(groups.adjacency_start, safe_current + 1), adj_end)
        rewind = tf.where(popping, max_groups, rewind)
        # In phase 2 ``cursor`` runs down the list again, 8 entries a step.
        sum_entries = cursor[:, None] + k[None, :]
        summed = in_sum[:, None] & (sum_entries < length[:, None])
        sum_group = tf.gather(listed, lane_base[:, None] + tf.minimum(sum_entries, max_groups - 1))
        scan_end = _pick(ends, scan)
        scan_entries = scan_pos[:, None] + k[None, :]
        walk_entries = adj_pos[:, None] + k[None, :]
        entries = tf.minimum(tf.where(in_scan[:, None], scan_entries, num_runs + walk_entries),
                             stream_size - 1)
        valid = tf.where(in_scan[:, None], scan_entries <= scan_end[:, None],
                         walking[:, None] & (walk_entries < adj_end[:, None]))
        group = tf.where(summed, sum_group, tf.where(valid, tf.gather(stream_group, entries), 0))
        path = (tf.where(in_scan, 1.0, current_weight)[:, None]
                * tf.gather(stream_weight, entries))
        # A side can cross a group twice within 8 runs: its first crossing counts.
        repeated = tf.reduce_any((group[:, :, None] == group[:, None, :])
                                 & (k[None, :, None] > k[None, None, :]), axis=2)
        live = valid & (group > 0) & ~repeated & (path >= MIN_PATH_WEIGHT)
        slot = lane_base[:, None] + group
        is_member = tf.gather(member, slot) == stamp[:, None]
        held = tf.gather(weight, slot)
        info = tf.gather(group_info, group)  # [L, 8, 3]: last x, last y, magnitude.
        y0, x0, h, w = (tf.cast(candidate[:, i:i + 1], tf.float32) for i in range(4))
        group_inside = ((info[..., 0] >= x0) & (info[..., 0] <= x0 + w)
                        & (info[..., 1] >= y0) & (info[..., 1] <= y0 + h))
        # Boundary groups join whatever their position; others only from inside the box.
        improves = live & is_member & (path > held)
        joins = live & ~is_member & (in_scan[:, None] | group_inside)
        rewind = tf.minimum(rewind, tf.reduce_min(
            tf.where(improves, tf.gather(position, slot), max_groups), axis=1))
        join_rank = tf.cumsum(tf.cast(joins, tf.int32), axis=1) - 1
        new_position = length[:, None] + join_rank
        length = length + tf.reduce_sum(tf.cast(joins, tf.int32), axis=1)
        # v -= sWts[i] * segMag[k], one entry after the other as OpenCV. The product times a
        # run-time one: XLA:CPU fuses a multiply feeding a subtraction into one FMA (another
        # rounding), but not a product that is multiplied again (times one: the same value).
        products = held * info[..., 2] * one
        subtracted = summed & group_inside
        for entry in range(_LANE_WIDTH):
            value = tf.where(subtracted[:, entry], value - products[:, entry], value)

        scan_done = in_scan & (scan_pos + _LANE_WIDTH > scan_end)
        scan = tf.where(scan_done, scan + 1, scan)
        scan_pos = tf.where(scan_done, _pick(starts, scan),
                            tf.where(in_scan, scan_pos + _LANE_WIDTH, scan_pos))
        phase = tf.where(in_scan & (scan == 4), 1, phase)
        adj_pos = tf.where(walking, adj_pos + _LANE_WIDTH, adj_pos)
        group_done = walking & (adj_pos >= adj_end)
        cursor = tf.where(group_done, tf.minimum(cursor + 1, rewind), cursor)
        current = tf.where(group_done, -1, current)
        # The walk ends where the cursor reaches the list's end; the sum starts at its head.
        walk_over = pops & empty
        phase = tf.where(walk_over, 2, phase)
        cursor = tf.where(walk_over, 0, tf.where(in_sum, cursor + _LANE_WIDTH, cursor))
        phase = tf.where(in_sum & (cursor >= length), 3, phase)

        # Writes, applied at the start of the next step.
        join_slot = tf.where(joins, slot, spare)
        weight_slot = tf.where(joins | improves, slot, spare)
        stamps = tf.broadcast_to(stamp[:, None], [lanes, _LANE_WIDTH])
        list_slot = tf.where(joins, lane_base[:, None] + new_position, spare)
        flat = lambda tensor: tf.reshape(tensor, [-1])  # noqa: E731
        return (next_work, item, stage, box, best, y_step, x_step, side_index, attempt,
                candidate, value, norm, phase, scan, scan_pos, starts, ends, cursor, length,
                current, adj_pos, adj_end, current_weight, rewind, stamp,
                flat(join_slot), flat(stamps), flat(new_position), flat(weight_slot), flat(path),
                flat(list_slot), flat(group), member, position, weight, listed, out_boxes,
                out_scores)

    zeros = tf.zeros([lanes], tf.int32)
    boxes = tf.zeros([lanes, 4], tf.int32)
    no_write = tf.fill([lanes * _LANE_WIDTH], spare)
    no_value = tf.zeros([lanes * _LANE_WIDTH], tf.int32)
    stamp_table = tf.zeros([table + 1], tf.int32)
    state = (zeros, tf.fill([lanes], -1), zeros, boxes,
             tf.zeros([lanes]), zeros, zeros, zeros, zeros, boxes, tf.zeros([lanes]),
             tf.zeros([lanes]), tf.fill([lanes], 4), zeros, zeros, boxes, boxes, zeros, zeros,
             tf.fill([lanes], -1), zeros, zeros, tf.zeros([lanes]), zeros, zeros,
             no_write, no_value, no_value, no_write, tf.zeros([lanes * _LANE_WIDTH]),
             no_write, no_value,
             stamp_table, stamp_table, tf.zeros([table + 1]), stamp_table,
             tf.zeros([size + 1, 4], tf.int32), tf.zeros([size + 1]))

    def more(next_work, item, *_):
        return tf.reduce_any(next_work * lanes + lane < num_work) | tf.reduce_any(item >= 0)

    state = tf.while_loop(more, step, state)
    return state[-2][:size], state[-1][:size]


# ------------------------------------------------------------------------------------------------
# The window grid and boxesNms.


def _grid(width: tf.Tensor, height: tf.Tensor,
          settings: EdgeBoxesSettings) -> tuple[tf.Tensor, tf.Tensor]:
    """scoreAllBoxes' windows ``(y, x, h, w)`` in OpenCV's order, padded to a fixed count.

    Returns:
        ``(boxes, valid)``: int32 [N, 4] and bool [N]; N is the count for a full canvas.
    """
    shapes, scales_for_side = grid_shapes(settings)
    canvas = settings.canvas
    num_scales = tf.gather(tf.constant(scales_for_side), tf.maximum(width, height))
    boxes, valid = [], []
    for scale, bh, bw, ky, kx in shapes:
        nx = max(0, -(-(canvas - bw + kx) // kx))
        ny = max(0, -(-(canvas - bh + ky) // ky))
        if nx == 0 or ny == 0:
            continue
        xs = tf.repeat(tf.range(nx) * kx, ny)
        ys = tf.tile(tf.range(ny) * ky, [nx])
        boxes.append(tf.stack([ys, xs, tf.fill([nx * ny], bh), tf.fill([nx * ny], bw)], 1))
        valid.append((xs < width - bw + kx) & (ys < height - bh + ky) & (scale < num_scales))
    return tf.concat(boxes, 0), tf.concat(valid, 0)


def _box_overlap(box: tf.Tensor, kept: tf.Tensor) -> tf.Tensor:
    """OpenCV's ``boxesOverlap(box, kept[i])`` for every row of kept (float32 IoU, w * h areas)."""
    ay, ax, ah, aw = tf.unstack(box)
    by, bx, bh, bw = tf.unstack(kept, axis=1)
    ay1, ax1 = ay + ah, ax + aw
    by1, bx1 = by + bh, bx + bw
    empty = (ay >= ay1) | (ax >= ax1) | (ay >= by1) | (ax >= bx1)
    area_a = tf.cast(aw, tf.float32) * tf.cast(ah, tf.float32)
    area_b = tf.cast(bw, tf.float32) * tf.cast(bh, tf.float32)
    inter = tf.cast(tf.maximum(0, tf.minimum(ay1, by1) - tf.maximum(ay, by))
                    * tf.maximum(0, tf.minimum(ax1, bx1) - tf.maximum(ax, bx)), tf.float32)
    return tf.where(empty, 0.0, inter / (area_a + area_b - inter))


def _suppress(boxes: tf.Tensor, scores: tf.Tensor, count: tf.Tensor,
              settings: EdgeBoxesSettings) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """OpenCV's ``boxesNms``: greedy, in score order, a box kept unless it overlaps a kept one by
    more than beta, until ``max_boxes`` are kept (with ``beta > 0.99``: all, sorted).

    Args:
        boxes: int32 [N, 4] ``(y, x, h, w)`` sorted by score descending; scores: float32 [N];
        count: the number of valid rows.

    Returns:
        ``(boxes, scores, kept)``: int32 [max_boxes, 4], float32 [max_boxes], int32 count.
    """
    limit = settings.max_boxes
    if settings.beta > 0.99:
        rows = tf.minimum(count, limit)
        pad = tf.maximum(limit - tf.shape(boxes)[0], 0)
        out_boxes = tf.pad(boxes, [[0, pad], [0, 0]])[:limit]
        out_scores = tf.pad(scores, [[0, pad]])[:limit]
        valid = tf.range(limit) < rows
        return (tf.where(valid[:, None], out_boxes, 0), tf.where(valid, out_scores, 0.0), rows)
    beta = np.float32(settings.beta)

    def step(i, kept_count, write_at, write_box, write_score, kept, kept_scores):
        kept = tf.tensor_scatter_nd_update(kept, write_at[None, None], write_box[None])
        kept_scores = _put(kept_scores, write_at[None], write_score[None])
        box = boxes[i]
        overlap = _box_overlap(box, kept[:limit])
        overlap = tf.where(tf.range(limit) < kept_count, overlap, 0.0)
        keep = tf.reduce_all(overlap <= beta)
        return (i + 1, kept_count + tf.cast(keep, tf.int32),
                tf.where(keep, kept_count, limit), box, scores[i], kept, kept_scores)

    state = (tf.constant(0), tf.constant(0), tf.constant(limit), tf.zeros([4], tf.int32),
             tf.constant(0.0), tf.zeros([limit + 1, 4], tf.int32), tf.zeros([limit + 1]))
    state = tf.while_loop(lambda i, kept_count, *_: (i < count) & (kept_count < limit), step,
                          state)
    _, kept_count, write_at, write_box, write_score, kept, kept_scores = state
    kept = tf.tensor_scatter_nd_update(kept, write_at[None, None], write_box[None])
    kept_scores = _put(kept_scores, write_at[None], write_score[None])
    return kept[:limit], kept_scores[:limit], kept_count


def edge_boxes_canvas(edges: tf.Tensor, orientation: tf.Tensor, height: tf.Tensor,
                      width: tf.Tensor, settings: EdgeBoxesSettings
                      ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """EdgeBoxes of one edge map on a padded canvas (call :func:`compiled_edge_boxes`'s result).

    Args:
        edges: float32 [S, S] thinned edge strength in [0, 1], the image at the top left, zeros
            beyond ``height`` x ``width``.
        orientation: float32 [S, S] edge-normal orientation in [0, pi), same layout.
        height, width: int32 scalars, the image's size (each >= 1, <= S).
        settings: the program's settings.

    Returns:
        ``(boxes_xywh, scores, count, fits)``: int32 [max_boxes, 4] OpenCV rectangles
        ``(x, y, w, h)`` with the +1 offset (``edgeboxes.py``), float32 [max_boxes] scores sorted
        descending, the int32 number of valid rows, and bool: False where the image exceeded
        the settings' capacities (``max_groups``, ``max_pairs``; the boxes are then not
        OpenCV's: :func:`edge_boxes_in_graph` raises).
    """
    canvas = settings.canvas
    area = canvas * canvas
    total = -(-(area + 1) // _CHUNK) * _CHUNK
    edge_t = tf.reshape(tf.transpose(edges), [area])
    orient_t = tf.reshape(tf.transpose(orientation), [area])
    edge_flat = tf.pad(edge_t, [[0, total - area]])
    orient_flat = tf.pad(orient_t, [[0, total - area]])
    pixel = tf.range(total)
    x, y = pixel // canvas, pixel % canvas
    interior = (pixel < area) & (x >= 1) & (x < width - 1) & (y >= 1) & (y < height - 1)
    seg = tf.where(interior & (edge_flat > EDGE_MIN_MAG), 0, -1)
    seg, _ = _walk_groups(seg, orient_flat, canvas)
    seg = _merge_small_groups(seg, edge_flat, orient_flat, canvas)
    groups = _group_tables(seg, edge_flat, orient_flat, width, height, settings)
    scale_norm = tf.constant(scale_norm_table())

    grid, valid = _grid(width, height, settings)
    boxes, scores = _lane_engine(grid, valid, groups, width, height, settings, scale_norm)
    nonzero = valid & (scores != 0.0)
    # Sort the boxes of non-zero score (ties: grid order) and suppress.
    ranked = tf.where(nonzero, scores, -1.0)
    order = tf.argsort(ranked, direction="DESCENDING", stable=True)
    count = tf.reduce_sum(tf.cast(nonzero, tf.int32))
    kept, kept_scores, kept_count = _suppress(tf.gather(boxes, order), tf.gather(scores, order),
                                              count, settings)
    y0, x0, h, w = tf.unstack(kept, axis=1)
    xywh = tf.stack([x0 + 1, y0 + 1, w, h], axis=1)
    valid_rows = tf.range(settings.max_boxes) < kept_count
    return (tf.where(valid_rows[:, None], xywh, 0), tf.where(valid_rows, kept_scores, 0.0),
            kept_count, groups.fits)


@functools.lru_cache(maxsize=None)
def compiled_edge_boxes(settings: EdgeBoxesSettings):
    """:func:`edge_boxes_canvas` as an XLA-compiled ``tf.function`` for ``settings.canvas``.

    Returns:
        ``fn(edges, orientation, height, width) -> (boxes_xywh, scores, count, fits)``.
    """
    canvas = settings.canvas

    @tf.function(jit_compile=True, input_signature=[
        tf.TensorSpec([canvas, canvas], tf.float32), tf.TensorSpec([canvas, canvas], tf.float32),
        tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)])
    def edge_boxes(edges, orientation, height, width):
        return edge_boxes_canvas(edges, orientation, height, width, settings)

    return edge_boxes


def settings_for(config) -> EdgeBoxesSettings:
    """The settings the OpenCV path runs EdgeBoxes with (``edgeboxes.edge_boxes``), for a
    ``ProposalConfig``: its alpha, beta, minimum score and box cap, the generation limits of
    ``constants.generation_limits``, on a canvas of ``proposal_max_side``."""
    max_aspect_ratio, min_box_area = constants.generation_limits(config)
    return EdgeBoxesSettings(
        canvas=int(config.proposal_max_side), alpha=float(config.edge_boxes_alpha),
        beta=float(config.edge_boxes_beta), min_score=float(config.edge_boxes_min_score),
        max_boxes=int(config.max_boxes), max_aspect_ratio=max_aspect_ratio,
        min_box_area=min_box_area)


def edge_boxes_in_graph(edges: tf.Tensor, orientation: tf.Tensor, config,
                        settings: EdgeBoxesSettings | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """OpenCV's EdgeBoxes of one edge map, in the graph: ``edgeboxes.edge_boxes``' twin.

    Args:
        edges: float32 [h, w] thinned edge strength in [0, 1], h, w <= ``proposal_max_side``.
        orientation: float32 [h, w] edge-normal orientation in [0, pi).
        config: a ``ProposalConfig`` (:func:`settings_for`).
        settings: the compiled program's settings; None: ``settings_for(config)``.

    Returns:
        ``(boxes_xywh, scores)``: int32 [n, 4] OpenCV rectangles ``(x, y, w, h)`` with the +1
        offset, float32 [n] sorted descending, ``n <= max_boxes``; n = 0 where OpenCV's path
        gives none (a side below 5 pixels, fewer pixels than ``min_box_area``, no edge).

    Raises:
        tf.errors.InvalidArgumentError: an image with more edge groups or pairs of groups than
            the compiled tables hold (at run time, naming the capacity).
    """
    settings = settings_for(config) if settings is None else settings
    canvas = settings.canvas
    shape = tf.shape(edges)
    height, width = shape[0], shape[1]
    pad = [[0, canvas - height], [0, canvas - width]]
    program = compiled_edge_boxes(settings)

    def run():
        boxes, scores, count, fits = program(tf.pad(edges, pad), tf.pad(orientation, pad),
                                             height, width)
        check = tf.debugging.Assert(fits, [
            f"EdgeBoxes in the graph: this image has more edge groups than {settings.max_groups} "
            f"or more neighbouring pairs of groups than {settings.max_pairs}, the capacities "
            "its program was compiled with (graph_edgeboxes.EdgeBoxesSettings)."])
        with tf.control_dependencies([check]):
            return boxes[:count], scores[:count]

    def none():
        return tf.zeros([0, 4], tf.int32), tf.zeros([0], tf.float32)

    # The OpenCV path's early exits (edgeboxes.edge_boxes).
    has_room = ((tf.minimum(height, width) >= 5)
                & (tf.cast(height * width, tf.float32) >= float(config.min_box_area))
                & tf.reduce_any(edges > 0))
    return tf.cond(has_room, run, none)
