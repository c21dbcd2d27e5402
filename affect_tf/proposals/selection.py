"""Normalized-cut selection of candidate regions (Algorithm 1, step 3).

From the n filtered EdgeBoxes proposals, keep m well-spread candidates: build the affinity W
between boxes (the paper: W_ij = IoU(b_i, b_j), pixel counts), the normalized Laplacian
``L = D^-1/2 (D - W) D^-1/2`` with ``D = diag(sum_j W_ij)``, its m eigenvectors of smallest
eigenvalue as the columns of V [n, m], k-means with m clusters on the rows of V, and in each
cluster the box of highest objectness. Unlike greedy NMS this yields a fixed number of regions.

Boxes here are ``[x1, y1, x2, y2]`` in any one coordinate frame (IoU is scale-invariant); areas are
``(x2 - x1) * (y2 - y1)``, so pixel ``[x, y, x + w, y + h]`` boxes give pixel-count overlaps.

Choices where the paper is silent, and one deviation from it (METHOD.md, C2 and D2):

* n <= m boxes: all are kept, no clustering.
* Rows of V are normalized to unit length before k-means (Ng, Jordan & Weiss, NIPS 2001). For the
  symmetric normalized Laplacian the eigenvectors are ``D^1/2`` times the cluster indicators, so
  unnormalized rows of low-degree boxes (small, isolated boxes, typical of a disconnected box graph
  where each component gives one zero eigenvalue) huddle near the origin and k-means merges them
  whatever their place in the image; unit rows put every component on its own point.
  ``row_normalize=False`` gives the paper's literal "k-means on the rows of V".
* Empty k-means clusters (fewer distinct rows than m, e.g. duplicate boxes) are filled with the
  best-scored boxes not yet selected, so exactly min(n, m) distinct boxes come back.
* A disconnected box graph (the sparse path): each component is solved alone and the eigenvalue-0
  eigenspace is spanned by the component indicators ``D^1/2 1``; the dense solver returns some
  rotation of it, which k-means clusters alike. With more components than m, the larger
  components get the m eigenvectors (:func:`_sparse_smallest_laplacian_eigenvectors`).

Speed (benchmarks/bench_proposals.py, one core): for the ~500-1,000 boxes of a photo the dense
LAPACK solver beats ARPACK, and in float32 it halves again with the same eigen-subspace (principal
cosines 1.0000 against float64 on the scikit-image photos), so float32 is the default precision.
Pixel boxes at the proposal scale (sides up to a few thousand pixels) have integer corners, so
their float32 areas and overlaps (integers below 2^24) are exact; only the IoU quotient rounds.
The paper's whole pool (EdgeBoxes capped at 10,000 boxes, as its toolbox caps: 1,900-9,100 boxes
after the filter on the photos) makes W [n, n] too large to solve densely (31 s for 7,900 boxes in
float32), yet only 12-21 % of it is non-zero: from 1,000 boxes up (``affinity_format="auto"``) W is
built from the overlapping pairs alone (:func:`sparse_affinity`) and its eigenvectors come per
connected component from ``sparse_solver``: ARPACK (``arpack``: 0.9-1.8 s for 7,900-9,100 boxes,
the dense path's candidates, all 50 of them on each photo) or block Lanczos (``block``, the
default: the whole selection 0.43 s median, 0.92 s p90 against ARPACK's 0.71 / 1.95 s; ~150
single sparse products traded for 14 products by a block of 16 vectors; an approximate subspace,
within 1 - cos = 4.7e-6 of the exact one, that keeps 0.89 of the exact candidates where another
k-means seed keeps 0.66, :data:`_BLOCK_WIDTH`). Cheaper approximations that skip pairs of boxes
(Nystrom's extension from 400 or 800 landmark boxes, the IoUs >= 0.1 alone) keep 0.60-0.67 of
them: as few as another k-means seed does, or fewer (benchmarks/bench_proposals.py
--approximations).
"""

from __future__ import annotations

import functools
import warnings
from typing import Callable

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import ThreadpoolController

from affect_tf.config import AFFINITIES, SPARSE_SOLVERS

EIGEN_SOLVERS = ("auto", "dense", "arpack")
# Floating-point precision of the affinity, the Laplacian and its eigenvectors.
PRECISIONS = ("float32", "float64")

# "auto" uses ARPACK from this many boxes up: below, the dense solver is faster and always exact.
# Measured single-threaded on EdgeBoxes boxes of a real photo, m = 50 (bench_proposals.py
# --solver_sweep): dense float64 and ARPACK (float64) cross near 400-500 boxes (0.022 s each at
# 500); dense float32 stays ahead up to ~1,700 (0.047 vs 0.084 s at 1,000, 0.15 vs 0.17 s at
# 1,500, 0.35 vs 0.31 s at 2,000).
_ARPACK_MIN_BOXES = {"float32": 1700, "float64": 400}

# Storage of the affinity W: dense (all n^2 pairs, n x n arrays), sparse (scipy.sparse, only the
# pairs of boxes that overlap: the same matrix entry for entry), or auto (sparse from
# _SPARSE_MIN_BOXES boxes up). ProposalConfig.affinity_format offers the same choices.
AFFINITY_FORMATS = ("auto", "dense", "sparse")

# "auto" builds W sparse from this many boxes up, and the sparse path solves a connected
# component of the box graph by ARPACK from this size up (LAPACK below). Measured single-threaded
# on the best-scored EdgeBoxes boxes of astronaut's uncapped pool, m = 50, embedding only
# (bench_proposals.py --solver_sweep): dense and sparse cross at 1,000 boxes (0.058 s each in
# float32), sparse wins from there (0.105 vs 0.155 s at 1,500, 0.19 vs 0.33 at 2,000, 0.32 vs 0.91
# at 3,000; float64 alike). The whole selection of 7,900 boxes: 1.5 s sparse, 8.5 s dense (ARPACK
# on the dense W), 31 s for the dense LAPACK eigenvectors alone; the same candidates.
_SPARSE_MIN_BOXES = {"float32": 1000, "float64": 1000}

# Candidate pairs per chunk of the sparse construction: its ~10 temporaries stay a few MB, in cache.
_PAIRS_PER_CHUNK = 1 << 17

# ARPACK's relative accuracy of the Ritz values: the eigen-subspace then agrees with LAPACK's to
# principal cosines >= 0.99999 on the photos, and a tighter tolerance costs ~20 % more products.
_ARPACK_TOLERANCE = 1e-5

# The sparse path's solver for a connected component of _SPARSE_MIN_BOXES boxes or more:
# "block" (block Lanczos: a few sparse products by a block of vectors, then Rayleigh-Ritz; an
# approximate eigen-subspace whose candidates match the exact ones as often as another k-means
# seed's do) or "arpack" (implicitly restarted Lanczos to _ARPACK_TOLERANCE: the exact
# subspace). ProposalConfig.sparse_solver offers these (config.SPARSE_SOLVERS).

# Block Lanczos (_block_lanczos_shape): blocks of _BLOCK_WIDTH vectors, and as many steps as make a
# Krylov space of at least _BLOCK_MIN_DIMENSION and _BLOCK_DIMENSION_PER_PAIR * k + _BLOCK_WIDTH
# vectors (b = 16, 13 steps, 224 vectors for m = 50). The accuracy follows the polynomial degree
# (the steps) more than the block's width, and a sparse product costs about as much per vector
# from 16 vectors up (2.1 ms per vector at 16, 1.7-1.8 at 32 and 64, 3.3 at 8, on a 9,100-box
# photo): narrow blocks and many steps reach the exact subspace with fewer products. Measured on
# the uncapped pools of 8 scikit-image photos (1,800-9,100 boxes, one thread; bench_proposals.py
# --subspace), against ARPACK's subspace: within 1 - cos = 4.7e-6 on every photo (the largest
# principal angle) at m = 50, 5e-10 at m = 20 and 1.6e-9 at m = 100, in half ARPACK's time
# (0.29 against 0.59 s median at m = 50). The candidates follow the subspace's accuracy with a
# cliff: k-means keeps the exact cut's candidates (0.89 of them, IoU >= 0.7) at this accuracy, and
# in a one-off sweep when this shape was chosen, Krylov spaces a few blocks shorter (1 - cos
# 1e-3 to 2e-2) moved as many candidates as another k-means seed does.
_BLOCK_WIDTH = 16
_BLOCK_MIN_DIMENSION = 208
_BLOCK_DIMENSION_PER_PAIR = 4
# The Krylov basis must stay orthonormal to this (max |K'K - I|); else ARPACK answers instead.
_BLOCK_ORTHONORMALITY_TOLERANCE = 1e-3


@functools.cache
def _threadpools() -> ThreadpoolController:
    """One controller of the BLAS / OpenMP pools (built once: scanning the libraries takes ms)."""
    return ThreadpoolController()


def _check_boxes(boxes_xyxy: np.ndarray, dtype=np.float64) -> np.ndarray:
    boxes = np.asarray(boxes_xyxy, dtype=dtype)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(
            f"boxes must be an array [n, 4] of [x1, y1, x2, y2]. Received: shape={boxes.shape}")
    return boxes


def _check_precision(precision: str) -> np.dtype:
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {', '.join(PRECISIONS)}. Received: precision={precision!r}")
    return np.dtype(precision)


def _intersections_and_areas(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise intersection areas [n, n] and box areas [n] (all n^2 pairs, vectorized).

    Computed in ``boxes.dtype``: float32 halves the memory traffic, which is what these outer
    operations cost.
    """
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[:, i]) for i in range(4))
    # In-place outer operations keep the temporaries to two n x n arrays.
    overlap_w = np.minimum.outer(x2, x2)
    overlap_w -= np.maximum.outer(x1, x1)
    np.maximum(overlap_w, 0.0, out=overlap_w)
    overlap_h = np.minimum.outer(y2, y2)
    overlap_h -= np.maximum.outer(y1, y1)
    np.maximum(overlap_h, 0.0, out=overlap_h)
    overlap_w *= overlap_h
    areas = np.maximum(x2 - x1, 0.0) * np.maximum(y2 - y1, 0.0)
    return overlap_w, areas


def iou_affinity(boxes_xyxy: np.ndarray, *, dtype=np.float64) -> np.ndarray:
    """The paper's affinity: W_ij = IoU(b_i, b_j) (Algorithm 1, step 3).

    Args:
        boxes_xyxy: [n, 4] boxes ``[x1, y1, x2, y2]``; pixel boxes give pixel-count areas.
        dtype: float64 or float32, the precision of the computation and of the result.

    Returns:
        [n, n] of ``dtype``, symmetric, in [0, 1], with ones on the diagonal (zero for a
        zero-area box).
    """
    boxes = _check_boxes(boxes_xyxy, dtype)
    intersection, areas = _intersections_and_areas(boxes)
    union = np.add.outer(areas, areas)
    union -= intersection
    # A pair of zero-area boxes has union 0: affinity 0, not NaN.
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def authors_affinity(boxes_xyxy: np.ndarray, *, dtype=np.float64) -> np.ndarray:
    """The authors' released-code affinity: intersection over the first box's area, symmetrized.

    ``A_ij = |b_i ∩ b_j| / |b_i|`` (asymmetric), then ``W = |A| + |A'|``; the diagonal is 2.

    Args:
        boxes_xyxy: [n, 4] boxes ``[x1, y1, x2, y2]``.
        dtype: float64 or float32, the precision of the computation and of the result.

    Returns:
        [n, n] of ``dtype``, symmetric, in [0, 2].
    """
    boxes = _check_boxes(boxes_xyxy, dtype)
    intersection, areas = _intersections_and_areas(boxes)
    ratio = np.divide(intersection, areas[:, None], out=np.zeros_like(intersection),
                      where=areas[:, None] > 0)
    return np.abs(ratio) + np.abs(ratio.T)


AFFINITY_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "iou": iou_affinity,
    "authors": authors_affinity,
}


def _row_indices(matrix: scipy.sparse.csr_array) -> np.ndarray:
    """Row index of every stored entry of a CSR matrix (int64 [nnz])."""
    return np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))


def _overlaps_of_rows(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, start: int,
                      counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The overlapping pairs ``(i, j)``, ``i < j``, of rows ``start .. start + len(counts) - 1``.

    Args:
        x1, y1, x2, y2: [n] corners of the boxes sorted by ``x1``.
        start: first row of the chunk.
        counts: [rows] candidates of each row: row i's are the boxes ``i + 1 .. i + counts[i]``,
            the run whose ``x1`` lies left of ``x2[i]`` (the others cannot overlap it).

    Returns:
        ``(rows, cols, intersections)``: int64 [k] row and column of each pair with a positive
        intersection, ordered by row then column, and [k] their intersection areas.
    """
    stop = start + counts.shape[0]
    firsts = np.cumsum(counts) - counts
    # Pair k of the chunk, the (k - firsts[i])-th candidate of its row i, is column i + 1 + that.
    columns = np.arange(int(counts.sum())) + np.repeat(np.arange(start + 1, stop + 1) - firsts,
                                                       counts)
    # The same arithmetic as _intersections_and_areas, so the entries agree bit for bit. The
    # vertical overlap first: it rejects most candidates (63 % on a photo's whole pool), and the
    # horizontal one is computed for the others only. Sorted by x1, max(x1_i, x1_j) is x1_j.
    overlap_h = np.minimum(np.repeat(y2[start:stop], counts), y2[columns])
    overlap_h -= np.maximum(np.repeat(y1[start:stop], counts), y1[columns])
    kept = np.flatnonzero(overlap_h > 0)
    rows, columns = np.repeat(np.arange(start, stop), counts)[kept], columns[kept]
    overlap_h = overlap_h[kept]
    overlap_w = np.minimum(x2[rows], x2[columns])
    overlap_w -= x1[columns]
    # Positive but for a box j of zero width (x1_j < x2_i by the choice of the candidates).
    kept = np.flatnonzero(overlap_w > 0)
    if kept.size < rows.size:
        rows, columns, overlap_w, overlap_h = (rows[kept], columns[kept], overlap_w[kept],
                                               overlap_h[kept])
    overlap_w *= overlap_h
    return rows, columns, overlap_w


def _sorted_upper_affinity(boxes: np.ndarray, affinity: str
                           ) -> tuple[np.ndarray, scipy.sparse.csr_array, np.ndarray]:
    """The affinity W of the boxes sorted by ``x1``, as its strictly upper triangle and diagonal.

    Only pairs of boxes that overlap are visited: sorted by x1, the boxes that can overlap box i
    from the right are the contiguous run with ``x1 < x2[i]``, which a binary search bounds. Most
    pairs of a photo's boxes do not overlap (12-21 % of W is non-zero on the photos), and nothing
    [n, n] is ever allocated. The pairs are processed in chunks of ``_PAIRS_PER_CHUNK``.

    Args:
        boxes: [n, 4] ``[x1, y1, x2, y2]`` (checked), of the dtype to compute in.
        affinity: ``iou`` or ``authors`` (see :func:`iou_affinity`, :func:`authors_affinity`).

    Returns:
        ``(order, upper, diagonal)``: int64 [n] the sort (position p holds box ``order[p]``);
        CSR [n, n] of ``boxes.dtype`` holding ``W[order][:, order]`` above the diagonal (stored
        entries: exactly the pairs with a positive intersection, all > 0); [n] its diagonal
        (1 for ``iou``, 2 for ``authors``, 0 for a zero-area box).
    """
    n = boxes.shape[0]
    order = np.argsort(boxes[:, 0], kind="stable")
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[order, i]) for i in range(4))
    areas = np.maximum(x2 - x1, 0.0) * np.maximum(y2 - y1, 0.0)
    counts = np.maximum(np.searchsorted(x1, x2, side="left") - np.arange(1, n + 1), 0)
    totals = np.cumsum(counts)
    pieces = [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, boxes.dtype))]
    start = 0
    while start < n:
        done = int(totals[start - 1]) if start else 0
        stop = max(int(np.searchsorted(totals, done + _PAIRS_PER_CHUNK, side="right")), start + 1)
        pieces.append(_overlaps_of_rows(x1, y1, x2, y2, start, counts[start:stop]))
        start = stop
    rows, columns, intersections = (np.concatenate(parts) for parts in zip(*pieces))
    first, second = areas[rows], areas[columns]
    if affinity == "iou":
        union = first + second
        union -= intersections
        values = intersections / union
        self_affinity = 1.0
    else:  # authors: |b_i n b_j| / |b_i| + |b_i n b_j| / |b_j| (authors_affinity).
        values = intersections / first + intersections / second
        self_affinity = 2.0
    # 32-bit indices where they fit (always, for boxes of one image): 10 % faster products.
    index_dtype = np.int32 if values.shape[0] < 2 ** 31 else np.int64
    indptr = np.zeros(n + 1, dtype=index_dtype)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    upper = scipy.sparse.csr_array((values, columns.astype(index_dtype), indptr), shape=(n, n))
    diagonal = np.where(areas > 0, self_affinity, 0.0).astype(boxes.dtype)
    return order, upper, diagonal


def sparse_affinity(boxes_xyxy: np.ndarray, *, affinity: str = "iou",
                    dtype=np.float64) -> scipy.sparse.csr_array:
    """The affinity W as a sparse matrix: only the pairs of boxes that overlap are stored.

    Entry for entry (bit for bit) the matrix that :func:`iou_affinity` or
    :func:`authors_affinity` returns, computed without any [n, n] array: for the thousands of
    boxes of an uncapped EdgeBoxes pool, where most pairs do not overlap.

    Args:
        boxes_xyxy: [n, 4] boxes ``[x1, y1, x2, y2]``.
        affinity: ``iou`` (paper) or ``authors``.
        dtype: float64 or float32, the precision of the computation and of the result.

    Returns:
        ``scipy.sparse.csr_array`` [n, n] of ``dtype``, symmetric, with the diagonal stored
        (zero-area boxes have none) and sorted indices.
    """
    _check_affinity(affinity)
    boxes = _check_boxes(boxes_xyxy, dtype)
    n = boxes.shape[0]
    order, upper, diagonal = _sorted_upper_affinity(boxes, affinity)
    rows, columns = order[_row_indices(upper)], order[upper.indices]
    on_diagonal = np.flatnonzero(diagonal)
    matrix = scipy.sparse.coo_array(
        (np.concatenate([upper.data, upper.data, diagonal[on_diagonal]]),
         (np.concatenate([rows, columns, order[on_diagonal]]),
          np.concatenate([columns, rows, order[on_diagonal]]))), shape=(n, n))
    return matrix.tocsr()


def _normalized_affinity(affinity: np.ndarray) -> np.ndarray:
    """``S = D^-1/2 W D^-1/2 = I - L``, in the affinity's precision (a new array).

    A box of zero degree (zero area) keeps a zero row and column instead of dividing by zero.
    """
    degree = affinity.sum(axis=1)
    inv_sqrt = np.divide(1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0)
    normalized = affinity * inv_sqrt[:, None]
    normalized *= inv_sqrt[None, :]
    return normalized


def _smallest_laplacian_eigenvectors(affinity: np.ndarray, num_vectors: int,
                                     solver: str) -> np.ndarray:
    """The eigenvectors of L = D^-1/2 (D - W) D^-1/2 with the smallest eigenvalues.

    Computed as the *largest* eigenvectors of ``S = I - L`` (same vectors), which is what ARPACK's
    Lanczos iteration finds fastest. The dense solver runs in the affinity's precision; ARPACK in
    float64 (its test for repeated eigenvalues needs it).

    Returns:
        [n, num_vectors] in the affinity's precision, columns in order of increasing eigenvalue
        of L.
    """
    n = affinity.shape[0]
    normalized = _normalized_affinity(affinity)
    if solver == "auto":
        solver = "arpack" if n >= _ARPACK_MIN_BOXES[affinity.dtype.name] else "dense"
    if solver == "arpack":
        vectors = _arpack_top_eigenvectors(affinity, normalized.astype(np.float64, copy=False),
                                           num_vectors)
        if vectors is not None:
            return vectors.astype(affinity.dtype, copy=False)
    # LAPACK's MRRR driver computes just the requested eigenpairs: ~2x faster than a full eigh
    # (the tridiagonal reduction, ~4/3 n^3 flops, is what remains).
    _, vectors = scipy.linalg.eigh(normalized, subset_by_index=[n - num_vectors, n - 1],
                                   driver="evr", overwrite_a=True, check_finite=False)
    return vectors[:, ::-1]


def _arpack_top_eigenvectors(affinity: np.ndarray, normalized: np.ndarray,
                             num_vectors: int) -> np.ndarray | None:
    """Top eigenvectors of S by ARPACK, or None when the dense solver must answer instead.

    Lanczos finds one vector per distinct eigenvalue: with a disconnected box graph (c components,
    eigenvalue 1 of multiplicity c) it can miss copies and return a wrong subspace. So the answer
    is used only when the number of eigenvalues at 1 it found matches min(c, m).
    """
    n = affinity.shape[0]
    if num_vectors >= n - 1:
        return None
    # A sparse graph: given a dense array, connected_components spends 2x longer validating it.
    components, _ = scipy.sparse.csgraph.connected_components(
        scipy.sparse.csr_array(affinity > 0), directed=False)
    # A fixed start vector keeps ARPACK (and so the selection) deterministic.
    start = np.full(n, 1.0 / np.sqrt(n))
    try:
        values, vectors = scipy.sparse.linalg.eigsh(normalized, k=num_vectors, which="LA",
                                                    v0=start, tol=1e-10)
    except scipy.sparse.linalg.ArpackError:
        return None
    if np.count_nonzero(values > 1.0 - 1e-8) != min(components, num_vectors):
        return None
    order = np.argsort(-values, kind="stable")
    return vectors[:, order]


def _normalized_sparse_affinity(upper: scipy.sparse.csr_array, diagonal: np.ndarray
                                ) -> tuple[scipy.sparse.csr_array, np.ndarray, np.ndarray]:
    """``S = D^-1/2 W D^-1/2`` of a symmetric W given as its strictly upper triangle and diagonal.

    Returns:
        ``(upper, diagonal, degree)``: S's upper triangle (CSR, W's dtype) and diagonal, and the
        float64 [n] degrees ``sum_j W_ij``. A box of zero degree (zero area) keeps a zero row and
        column, as in :func:`_normalized_affinity`.
    """
    n = upper.shape[0]
    data = upper.data.astype(np.float64)
    row_counts = np.diff(upper.indptr)
    row_sums = np.zeros(n)
    # Sums over each row's run of entries (no [nnz] row index array); empty rows stay 0.
    nonempty = np.flatnonzero(row_counts)
    if nonempty.size:
        row_sums[nonempty] = np.add.reduceat(data, upper.indptr[nonempty])
    degree = diagonal + row_sums + np.bincount(upper.indices, weights=data, minlength=n)
    inv_sqrt = np.divide(1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0)
    data *= inv_sqrt[upper.indices]
    data *= np.repeat(inv_sqrt, row_counts)
    normalized = scipy.sparse.csr_array((data.astype(upper.dtype), upper.indices, upper.indptr),
                                        shape=upper.shape)
    return normalized, (diagonal * inv_sqrt ** 2).astype(upper.dtype), degree


def _dense_top_eigenpairs(upper: scipy.sparse.csr_array, diagonal: np.ndarray,
                          k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenpairs of ``U + U' + diag(diagonal)`` by LAPACK, descending."""
    size = upper.shape[0]
    matrix = upper.toarray()
    matrix += matrix.T
    matrix[np.diag_indices(size)] += diagonal
    values, vectors = scipy.linalg.eigh(matrix, subset_by_index=[size - k, size - 1],
                                        driver="evr", overwrite_a=True, check_finite=False)
    return values[::-1], vectors[:, ::-1]


def _symmetric_product(upper: scipy.sparse.csr_array, diagonal: np.ndarray) -> Callable:
    """``X -> S X`` for ``S = U + U' + diag(diagonal)`` given by its strictly upper triangle U
    (CSR): one sparse product by U and one by U' (its CSC view, no copy), S itself never formed.
    ``X`` is [size] or [size, b]."""
    lower = upper.T  # CSC, the same arrays: its product is as fast as a CSR copy's.

    def multiply(x: np.ndarray) -> np.ndarray:
        product = upper @ x
        product += lower @ x
        product += (diagonal if x.ndim == 1 else diagonal[:, None]) * x
        return product

    return multiply


def _arpack_top_eigenpairs(upper: scipy.sparse.csr_array, diagonal: np.ndarray,
                           k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenpairs of ``S = U + U' + diag(diagonal)`` by ARPACK (implicitly
    restarted Lanczos) to :data:`_ARPACK_TOLERANCE`, in S's precision; LAPACK where ARPACK fails
    (with a warning). Values descending."""
    size, dtype = upper.shape[0], upper.dtype
    multiply = _symmetric_product(upper, diagonal)
    operator = scipy.sparse.linalg.LinearOperator(
        (size, size), matvec=lambda x: multiply(x.reshape(-1)), dtype=dtype)
    # A fixed start vector keeps ARPACK, hence the selection, deterministic.
    start = np.random.default_rng(0).standard_normal(size).astype(dtype)
    try:
        values, vectors = scipy.sparse.linalg.eigsh(operator, k=k, which="LA", v0=start,
                                                    tol=_ARPACK_TOLERANCE)
    except scipy.sparse.linalg.ArpackError as error:
        warnings.warn(f"ARPACK failed on a box graph of {size} boxes ({error}); solving it "
                      "with LAPACK instead (exact, slower).", RuntimeWarning, stacklevel=3)
        return _dense_top_eigenpairs(upper, diagonal, k)
    order = np.argsort(-values, kind="stable")
    return values[order], vectors[:, order]


def _orthonormal_columns(block: np.ndarray) -> np.ndarray:
    """Q of the thin QR decomposition of ``block`` [size, b], size >= b: [size, b].

    SciPy's LAPACK rather than ``np.linalg.qr``: on NumPy's wheel the latter took 38 ms for a
    7,780 x 64 float32 block against 7.6 ms (one thread), and the six decompositions of a block
    Lanczos run on the paper's whole pool cost a fifth of the selection.
    """
    return scipy.linalg.qr(block, mode="economic", overwrite_a=True, check_finite=False)[0]


def _block_lanczos_shape(k: int) -> tuple[int, int]:
    """``(width, steps)`` of the block Lanczos run for k eigenpairs: blocks of
    :data:`_BLOCK_WIDTH` vectors, and enough steps for a Krylov space of at least
    :data:`_BLOCK_MIN_DIMENSION` and ``_BLOCK_DIMENSION_PER_PAIR * k + _BLOCK_WIDTH`` vectors."""
    dimension = max(_BLOCK_MIN_DIMENSION, _BLOCK_DIMENSION_PER_PAIR * k + _BLOCK_WIDTH)
    return _BLOCK_WIDTH, -(-dimension // _BLOCK_WIDTH) - 1


def _block_lanczos_top_eigenpairs(upper: scipy.sparse.csr_array, diagonal: np.ndarray,
                                  k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Approximate k largest eigenpairs of ``S = U + U' + diag(diagonal)`` by block Lanczos.

    The Krylov space of a random block G of ``b`` vectors, ``span{G, S G, ..., S^q G}``
    (:func:`_block_lanczos_shape`: b = 16 and q = 13 for k = 50), built with full
    reorthogonalization; then Rayleigh-Ritz: the top k eigenpairs of ``K' S K`` (a small dense
    problem) lifted by K. The Krylov space may hold more eigenpairs than a block has vectors: what
    sets the accuracy is the polynomial degree q, so narrow blocks and many steps reach a given
    accuracy with fewer sparse products than wide blocks and few steps (:data:`_BLOCK_WIDTH`).
    Its cost is q + 1 sparse products by a block (each as fast per vector as several single
    products, which is what makes it cheaper than ARPACK's ~150 single ones), the
    reorthogonalization and the QR decompositions. The subspace is approximate: the candidates it
    yields match the exact ones more often than another k-means seed's do. A block method also
    finds eigenvalues repeated up to b times, which single-vector Lanczos can miss.

    Args:
        upper: CSR [size, size], S's strictly upper triangle (float32 or float64).
        diagonal: [size] S's diagonal.
        k: the number of eigenpairs, k < size.

    Returns:
        ``(values [k], vectors [size, k])``, values descending, in S's dtype; or None when the
        Krylov space would fill the whole space (a small component: LAPACK is exact and cheap
        there) or its basis lost orthonormality (the caller asks ARPACK instead).
    """
    size, dtype = upper.shape[0], upper.dtype
    width, steps = _block_lanczos_shape(k)
    dimension = width * (steps + 1)
    if dimension >= size:
        return None
    multiply = _symmetric_product(upper, diagonal)
    # The basis and its image, column block j holding S^j G orthonormalized and S times it:
    # Fortran order, so each block is a contiguous column range for the BLAS products.
    krylov = np.empty((size, dimension), dtype=dtype, order="F")
    images = np.empty_like(krylov)
    # A fixed start block keeps the selection deterministic.
    block = np.random.default_rng(0).standard_normal((size, width)).astype(dtype)
    for step in range(steps + 1):
        done = krylov[:, :step * width]
        # Block classical Gram-Schmidt against the whole basis so far, twice (one pass loses
        # orthogonality in floating point; "twice is enough"), then QR.
        for _ in range(2 if step else 0):
            block -= done @ (done.T @ block)
        columns = slice(step * width, (step + 1) * width)
        krylov[:, columns] = _orthonormal_columns(block)
        images[:, columns] = multiply(np.ascontiguousarray(krylov[:, columns]))
        block = images[:, columns].copy(order="F")
    gram = krylov.T @ krylov
    gram[np.diag_indices_from(gram)] -= 1.0
    if np.abs(gram).max() > _BLOCK_ORTHONORMALITY_TOLERANCE:
        return None
    projected = (krylov.T @ images).astype(np.float64)
    values, vectors = np.linalg.eigh((projected + projected.T) / 2.0)
    order = np.argsort(-values, kind="stable")[:k]
    return values[order].astype(dtype), krylov @ vectors[:, order].astype(dtype)


def _top_eigenpairs_of_component(upper: scipy.sparse.csr_array, diagonal: np.ndarray,
                                 k: int, solver: str = "block") -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenpairs of ``S = U + U' + diag(diagonal)``, one connected component.

    From ``_SPARSE_MIN_BOXES`` boxes up by ``solver``: ``block``
    (:func:`_block_lanczos_top_eigenpairs`, approximate, falling back to ARPACK where its basis
    degrades) or ``arpack`` (:func:`_arpack_top_eigenpairs`, exact); LAPACK below (exact).

    S of a connected graph has the simple eigenvalue 1, so the Lanczos pitfall of repeated
    eigenvalues (one copy found per distinct value) that disconnected graphs raise cannot occur at
    the top; the caller splits the graph into its components.

    Returns:
        ``(values [k], vectors [size, k])``, values descending, in S's dtype.
    """
    size, dtype = upper.shape[0], upper.dtype
    if size < _SPARSE_MIN_BOXES[dtype.name] or k >= size - 1:
        return _dense_top_eigenpairs(upper, diagonal, k)
    if solver == "block":
        pairs = _block_lanczos_top_eigenpairs(upper, diagonal, k)
        if pairs is not None:
            return pairs
    return _arpack_top_eigenpairs(upper, diagonal, k)


def _box_graph_components(upper: scipy.sparse.csr_array) -> tuple[int, np.ndarray]:
    """``(count, labels)``: the connected components of the box graph, given W's upper triangle.

    A photo's whole pool is nearly always one component (all 8 scikit-image photos), and a
    subgraph shows it at a fraction of the cost: each box joined to the first and the last box of
    its row (in x1 order, the nearest and the farthest box overlapping it from the right), 2n
    edges. If that subgraph is connected, so is the graph, whose edges include it; else the whole
    graph is searched. SciPy's search transposes the [nnz] pattern: 0.09 s of a 9,100-box photo's
    1.1 s selection, where the subgraph's takes 2 ms.

    Args:
        upper: CSR [n, n], W's strictly upper triangle (a stored entry is an edge).

    Returns:
        ``(count, labels)``: the number of components and int32 [n] each box's component, the
        labels of ``scipy.sparse.csgraph.connected_components``.
    """
    n = upper.shape[0]
    row_counts = np.diff(upper.indptr)
    rows = np.flatnonzero(row_counts)
    firsts = upper.indices[upper.indptr[rows]]
    lasts = upper.indices[upper.indptr[rows + 1] - 1]
    spanning = scipy.sparse.csr_array(
        (np.ones(2 * rows.size, np.int8), (np.tile(rows, 2), np.concatenate([firsts, lasts]))),
        shape=(n, n))
    count, labels = scipy.sparse.csgraph.connected_components(spanning, directed=False)
    if count == 1:
        return count, labels
    return scipy.sparse.csgraph.connected_components(upper, directed=False)


def _sparse_smallest_laplacian_eigenvectors(upper: scipy.sparse.csr_array, diagonal: np.ndarray,
                                            num_vectors: int,
                                            sparse_solver: str = "block") -> np.ndarray:
    """The eigenvectors of L with the smallest eigenvalues, W given sparse, one component at a time.

    L of a disconnected box graph is block diagonal, so its spectrum is the union of its
    components' spectra: each component is solved alone (:func:`_top_eigenpairs_of_component`,
    a box without overlaps directly), and the m smallest eigenvalues over all are kept. Eigenvalue
    0 has one eigenvector per component, ``D^1/2 1`` on its boxes (set exactly); where the dense
    solver returns any rotation of that eigenspace, this returns the component indicators, which
    k-means clusters alike (its distances are invariant to rotations of V). With more components
    than m, the larger components (then the one whose first box has the lower index: from
    :func:`box_embedding`, the leftmost) get the eigenvalue-0 vectors; the dense solver picks an
    arbitrary subspace of the eigenspace there.

    Args:
        upper: CSR [n, n], W's strictly upper triangle (non-negative, float32 or float64).
        diagonal: [n] W's diagonal.
        num_vectors: m < n.
        sparse_solver: ``block`` or ``arpack``, for components of 1,000 boxes or more
            (:func:`_top_eigenpairs_of_component`).

    Returns:
        [n, m] of W's dtype, columns in order of increasing eigenvalue of L.
    """
    n, dtype = upper.shape[0], upper.dtype
    normalized, self_loops, degree = _normalized_sparse_affinity(upper, diagonal)
    count, labels = _box_graph_components(upper)
    members = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=count))])
    sizes = np.diff(bounds)
    # Ties (eigenvalue 0 of several components) go to the larger component, then the lower index.
    rank = np.empty(count, dtype=np.int64)
    rank[np.lexsort((members[bounds[:-1]], -sizes))] = np.arange(count)
    eigenvalues, ranks, columns, blocks = [], [], [], []
    for component in range(count):
        boxes = members[bounds[component]:bounds[component + 1]]
        if boxes.size == 1:  # No overlap: S = [W_ii / d_i] = [1] ([0] for a zero-area box).
            values, vectors = (degree[boxes] > 0).astype(np.float64), np.ones((1, 1), dtype)
        else:
            part = normalized if count == 1 else normalized[boxes][:, boxes]
            values, vectors = _top_eigenpairs_of_component(
                part, self_loops[boxes], min(num_vectors, boxes.size), sparse_solver)
            # The top eigenpair of a connected graph's S, known exactly.
            values = values.copy()
            values[0] = 1.0
            vectors[:, 0] = np.sqrt(degree[boxes] / degree[boxes].sum())
        eigenvalues.append(1.0 - values.astype(np.float64))
        ranks.append(np.full(values.shape[0], rank[component]))
        columns.append(np.arange(values.shape[0]))
        blocks.append((boxes, vectors))
    owners = np.repeat(np.arange(count), [len(v) for v in eigenvalues])
    eigenvalues, ranks, columns = (np.concatenate(parts) for parts in
                                   (eigenvalues, ranks, columns))
    chosen = np.lexsort((columns, ranks, eigenvalues))[:num_vectors]
    embedding = np.zeros((n, num_vectors), dtype=dtype)
    for position, pick in enumerate(chosen):
        boxes, vectors = blocks[owners[pick]]
        embedding[boxes, position] = vectors[:, columns[pick]]
    return embedding


def spectral_embedding(affinity, num_clusters: int, *, row_normalize: bool = True,
                       solver: str = "auto", sparse_solver: str = "block") -> np.ndarray:
    """V: the ``num_clusters`` eigenvectors of smallest eigenvalue of the normalized Laplacian.

    Args:
        affinity: [n, n] symmetric non-negative affinity W, a numpy array or a scipy.sparse
            matrix (e.g. :func:`sparse_affinity`); float32 is solved in float32, any other type
            in float64.
        num_clusters: m, the number of eigenvectors (m < n).
        row_normalize: scale each row of V to unit length (module docstring); zero rows stay 0.
        solver: for a dense W: ``dense`` (LAPACK, exact), ``arpack`` (Lanczos; falls back to
            dense when the graph's components make it unreliable), or ``auto`` (ARPACK from 400
            boxes up in float64, from 1,700 in float32: where it starts to beat the dense
            solver). A sparse W is solved one connected component at a time, by
            ``sparse_solver`` from 1,000 boxes up and LAPACK below, whatever ``solver`` says.
        sparse_solver: for a sparse W: ``block`` (block Lanczos, approximate: the candidates
            move less than under another k-means seed; the selection 1.3x faster) or
            ``arpack`` (exact).

    Returns:
        [n, m] (float32 for a float32 affinity, else float64), row i the embedding of box i.
    """
    sparse = scipy.sparse.issparse(affinity)
    if not sparse:
        affinity = np.asarray(affinity)
    dtype = np.float32 if affinity.dtype == np.float32 else np.float64
    if affinity.ndim != 2 or affinity.shape[0] != affinity.shape[1]:
        raise ValueError(
            f"affinity must be a square matrix [n, n]. Received: shape={affinity.shape}")
    if solver not in EIGEN_SOLVERS:
        raise ValueError(
            f"solver must be one of {', '.join(EIGEN_SOLVERS)}. Received: solver={solver!r}")
    _check_sparse_solver(sparse_solver)
    if not 0 < num_clusters < affinity.shape[0]:
        raise ValueError(
            f"num_clusters must lie in [1, n) with n = {affinity.shape[0]} boxes. "
            f"Received: num_clusters={num_clusters}")
    # One BLAS thread (the k-means runs on one OpenMP thread too): for ~1,000 boxes it is as fast
    # as several, far faster on a busy machine (a 500-box dense eigh took 2.4 s on 2 contended
    # OpenBLAS threads, 0.03 s on one), and it makes the floating-point results, hence the
    # clusters, independent of the core count and of the proposal stage's worker count.
    with _threadpools().limit(limits=1):
        if sparse:
            affinity = scipy.sparse.csr_array(affinity, dtype=dtype)
            vectors = _sparse_smallest_laplacian_eigenvectors(
                scipy.sparse.triu(affinity, k=1, format="csr"), affinity.diagonal(),
                num_clusters, sparse_solver)
        else:
            vectors = _smallest_laplacian_eigenvectors(affinity.astype(dtype, copy=False),
                                                       num_clusters, solver)
    return _normalize_rows(vectors) if row_normalize else vectors


def _normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length; zero rows stay 0."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def resolve_affinity_format(affinity_format: str, num_boxes: int,
                            precision: str = "float32") -> str:
    """``dense`` or ``sparse``: what ``affinity_format`` means for ``num_boxes`` boxes.

    Raises:
        ValueError: an unknown format or precision.
    """
    if affinity_format not in AFFINITY_FORMATS:
        raise ValueError(
            f"affinity_format must be one of {', '.join(AFFINITY_FORMATS)}. "
            f"Received: affinity_format={affinity_format!r}")
    _check_precision(precision)
    if affinity_format != "auto":
        return affinity_format
    return "sparse" if num_boxes >= _SPARSE_MIN_BOXES[precision] else "dense"


def _check_sparse_solver(sparse_solver: str) -> None:
    if sparse_solver not in SPARSE_SOLVERS:
        raise ValueError(f"sparse_solver must be one of {', '.join(SPARSE_SOLVERS)}. "
                         f"Received: sparse_solver={sparse_solver!r}")


def _check_affinity(affinity: str) -> None:
    if affinity not in AFFINITY_FUNCTIONS:
        raise ValueError(
            f"affinity must be one of {', '.join(AFFINITIES)}. Received: affinity={affinity!r}")


def box_embedding(boxes_xyxy: np.ndarray, num_clusters: int, *, affinity: str = "iou",
                  affinity_format: str = "auto", precision: str = "float32",
                  row_normalize: bool = True, solver: str = "auto",
                  sparse_solver: str = "block") -> np.ndarray:
    """V of the boxes: W built dense or sparse, then :func:`spectral_embedding`.

    The sparse path works on the boxes sorted by x1 (:func:`_sorted_upper_affinity`) and puts the
    rows of V back in the boxes' order, so k-means sees the same rows in the same order as from
    the dense path.

    Args:
        boxes_xyxy: [n, 4] boxes ``[x1, y1, x2, y2]``, n > num_clusters.
        num_clusters: m, the number of eigenvectors.
        affinity: ``iou`` (paper) or ``authors``.
        affinity_format: ``dense`` (:data:`AFFINITY_FUNCTIONS`), ``sparse``
            (:func:`sparse_affinity`: the same W and eigen-subspace, without n x n arrays) or
            ``auto`` (sparse from 1,000 boxes up).
        precision: ``float32`` or ``float64``, of the affinity and the eigenvectors.
        row_normalize: see :func:`spectral_embedding`.
        solver: see :func:`spectral_embedding` (a dense W only).
        sparse_solver: see :func:`spectral_embedding` (a sparse W only).

    Returns:
        [n, m] of ``precision``, row i the embedding of box i.
    """
    _check_affinity(affinity)
    _check_sparse_solver(sparse_solver)
    dtype = _check_precision(precision)
    boxes = _check_boxes(boxes_xyxy, dtype)
    if resolve_affinity_format(affinity_format, boxes.shape[0], precision) == "dense":
        return spectral_embedding(AFFINITY_FUNCTIONS[affinity](boxes, dtype=dtype),
                                  num_clusters, row_normalize=row_normalize, solver=solver)
    if not 0 < num_clusters < boxes.shape[0]:
        raise ValueError(
            f"num_clusters must lie in [1, n) with n = {boxes.shape[0]} boxes. "
            f"Received: num_clusters={num_clusters}")
    order, upper, diagonal = _sorted_upper_affinity(boxes, affinity)
    with _threadpools().limit(limits=1):
        vectors = _sparse_smallest_laplacian_eigenvectors(upper, diagonal, num_clusters,
                                                          sparse_solver)
    embedding = np.empty_like(vectors)
    embedding[order] = vectors
    return _normalize_rows(embedding) if row_normalize else embedding


def normalized_cut_labels(boxes_xyxy: np.ndarray, num_clusters: int, *, affinity: str = "iou",
                          n_init: int = 10, seed: int = 0, row_normalize: bool = True,
                          solver: str = "auto", precision: str = "float32",
                          affinity_format: str = "auto",
                          sparse_solver: str = "block") -> np.ndarray:
    """Cluster labels of the boxes by normalized cut (e.g. to draw the clusters, paper Fig. 3).

    Args:
        boxes_xyxy: [n, 4] boxes ``[x1, y1, x2, y2]``, n > num_clusters.
        num_clusters: m.
        affinity: ``iou`` (paper) or ``authors``.
        n_init: k-means restarts (authors' code: 10); the best inertia wins.
        seed: k-means seed; equal inputs and seed give equal labels.
        row_normalize: see :func:`spectral_embedding`.
        solver: see :func:`spectral_embedding` (a dense W only).
        precision: ``float32`` or ``float64``, of the affinity, eigenvectors and k-means.
        affinity_format: ``dense`` (:data:`AFFINITY_FUNCTIONS`), ``sparse``
            (:func:`sparse_affinity`: the same W and eigen-subspace, without n x n arrays) or
            ``auto`` (sparse from 1,000 boxes up).
        sparse_solver: see :func:`spectral_embedding` (a sparse W only).

    Returns:
        int64 [n] cluster index per box in [0, m); some clusters may be empty when the embedding
        has fewer than m distinct rows.
    """
    _check_affinity(affinity)
    if n_init < 1:
        raise ValueError(f"n_init must be >= 1. Received: n_init={n_init}")
    embedding = box_embedding(boxes_xyxy, num_clusters, affinity=affinity,
                              affinity_format=affinity_format, precision=precision,
                              row_normalize=row_normalize, solver=solver,
                              sparse_solver=sparse_solver)
    return kmeans_labels(embedding, num_clusters, n_init=n_init, seed=seed)


def kmeans_labels(embedding: np.ndarray, num_clusters: int, *, n_init: int = 10,
                  seed: int = 0) -> np.ndarray:
    """k-means with m clusters on the rows of V (Algorithm 1, step 3), on one thread.

    Args:
        embedding: [n, m] rows of V (:func:`spectral_embedding`), n > m.
        num_clusters: m.
        n_init: k-means restarts; the best inertia wins.
        seed: k-means seed; equal inputs and seed give equal labels.

    Returns:
        int64 [n] cluster index per row in [0, m); some clusters may be empty when the rows hold
        fewer than m distinct points.
    """
    with warnings.catch_warnings(), _threadpools().limit(limits=1):
        # Fewer distinct rows than clusters is handled by the caller (empty clusters are filled).
        warnings.simplefilter("ignore", ConvergenceWarning)
        kmeans = KMeans(n_clusters=num_clusters, n_init=n_init, random_state=seed)
        labels = kmeans.fit_predict(embedding)
    return np.asarray(labels, dtype=np.int64)


def _best_of_each_cluster(labels: np.ndarray, scores: np.ndarray, by_score: np.ndarray,
                          num_clusters: int) -> np.ndarray:
    """The top-objectness box of each non-empty cluster, topped up to m from the best others.

    Args:
        labels: int [n] cluster of each box.
        scores: [n] objectness.
        by_score: int [n] box indices by score descending (ties by index).
        num_clusters: m <= n.

    Returns:
        int64 [m] distinct box indices, in no particular order.
    """
    n = labels.shape[0]
    # Sort by (label, score descending, index): the first box of each label run is its argmax.
    order = np.lexsort((np.arange(n), -scores, labels))
    sorted_labels = labels[order]
    firsts = np.ones(n, dtype=bool)
    firsts[1:] = sorted_labels[1:] != sorted_labels[:-1]
    selected = order[firsts]
    if selected.size < num_clusters:
        # Empty clusters (k-means found fewer distinct rows than m): fill from the best-scored
        # boxes not yet selected, so the output keeps exactly m regions.
        chosen = np.zeros(n, dtype=bool)
        chosen[selected] = True
        extra = by_score[~chosen[by_score]][:num_clusters - selected.size]
        selected = np.concatenate([selected, extra])
    if selected.size != num_clusters or np.unique(selected).size != num_clusters:
        raise RuntimeError(
            f"Normalized cut must select exactly m = {num_clusters} distinct boxes. "
            f"Received: {selected.size} indices, {np.unique(selected).size} distinct")
    return selected.astype(np.int64)


def normalized_cut_select(boxes: np.ndarray, scores: np.ndarray, num_clusters: int, *,
                          affinity: str = "iou", n_init: int = 10, seed: int = 0,
                          row_normalize: bool = True, solver: str = "auto",
                          precision: str = "float32", affinity_format: str = "auto",
                          sparse_solver: str = "block") -> np.ndarray:
    """Indices of the m candidate regions chosen by normalized cut (Algorithm 1, step 3).

    Args:
        boxes: [n, 4] boxes ``[x1, y1, x2, y2]`` (pixel boxes: ``[x, y, x + w, y + h]``).
        scores: [n] objectness; in each cluster the box of highest score is kept (argmax; ties go
            to the lower index).
        num_clusters: m (paper: 50; authors' code: 20).
        affinity: ``iou`` (paper) or ``authors`` (released code).
        n_init: k-means restarts.
        seed: k-means seed (deterministic output).
        row_normalize: unit-length rows of V before k-means (module docstring).
        solver: eigen-solver, see :func:`spectral_embedding`.
        precision: ``float32`` (default: the same eigen-subspace, 2x faster) or ``float64``.
        affinity_format: ``dense``, ``sparse`` or ``auto``, see :func:`normalized_cut_labels`.
        sparse_solver: ``block`` or ``arpack``, see :func:`spectral_embedding`.

    Returns:
        int64 [min(n, m)] distinct indices into ``boxes``, ordered by score descending (ties by
        index). With n <= m every box is kept and no clustering runs; n = 0 gives [].
    """
    boxes = _check_boxes(boxes)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.shape[0] != boxes.shape[0]:
        raise ValueError(
            "boxes and scores must have the same length. "
            f"Received: boxes.shape={boxes.shape}, scores.shape={scores.shape}")
    if num_clusters < 1:
        raise ValueError(f"num_clusters must be >= 1. Received: num_clusters={num_clusters}")
    resolve_affinity_format(affinity_format, 0, precision)  # Checks both, even with n <= m.
    _check_sparse_solver(sparse_solver)
    n = boxes.shape[0]
    by_score = np.argsort(-scores, kind="stable")
    if n <= num_clusters:
        return by_score.astype(np.int64)
    labels = normalized_cut_labels(boxes, num_clusters, affinity=affinity, n_init=n_init,
                                   seed=seed, row_normalize=row_normalize, solver=solver,
                                   precision=precision, affinity_format=affinity_format,
                                   sparse_solver=sparse_solver)
    return best_of_clusters(labels, scores, num_clusters)


def best_of_clusters(labels: np.ndarray, scores: np.ndarray, num_clusters: int) -> np.ndarray:
    """The candidates of given clusters: each cluster's top-objectness box, topped up to m.

    Args:
        labels: int [n] cluster of each box in [0, m), n >= m (:func:`normalized_cut_labels`).
        scores: [n] objectness.
        num_clusters: m.

    Returns:
        int64 [m] distinct box indices, ordered by score descending (ties by index).
    """
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    n = scores.shape[0]
    by_score = np.argsort(-scores, kind="stable")
    selected = _best_of_each_cluster(labels, scores, by_score, num_clusters)
    rank = np.empty(n, dtype=np.int64)
    rank[by_score] = np.arange(n)
    return selected[np.argsort(rank[selected], kind="stable")]
