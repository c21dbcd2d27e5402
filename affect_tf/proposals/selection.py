"""Normalized-cut selection of candidate regions (Algorithm 1, step 3).

From the n filtered EdgeBoxes proposals, keep m well-spread candidates: build the affinity W
between boxes (the paper: W_ij = IoU(b_i, b_j), pixel counts), the normalized Laplacian
``L = D^-1/2 (D - W) D^-1/2`` with ``D = diag(sum_j W_ij)``, its m eigenvectors of smallest
eigenvalue as the columns of V [n, m], k-means with m clusters on the rows of V, and in each
cluster the box of highest objectness. Unlike greedy NMS this yields a fixed number of regions.

Boxes here are ``[x1, y1, x2, y2]`` in any one coordinate frame (IoU is scale-invariant); areas are
``(x2 - x1) * (y2 - y1)``, so pixel ``[x, y, x + w, y + h]`` boxes give pixel-count overlaps.

Choices where the paper is silent (DECISIONS.md, "Proposals and selection"):

* n <= m boxes: all are kept, no clustering.
* Rows of V are normalized to unit length before k-means (Ng, Jordan & Weiss, NIPS 2001). For the
  symmetric normalized Laplacian the eigenvectors are ``D^1/2`` times the cluster indicators, so
  unnormalized rows of low-degree boxes (small, isolated boxes, typical of a disconnected box graph
  where each component gives one zero eigenvalue) huddle near the origin and k-means merges them
  whatever their place in the image; unit rows put every component on its own point.
  ``row_normalize=False`` gives the paper's literal "k-means on the rows of V".
* Empty k-means clusters (fewer distinct rows than m, e.g. duplicate boxes) are filled with the
  best-scored boxes not yet selected, so exactly min(n, m) distinct boxes come back.

Speed (benchmarks/bench_proposals.py, one core): for the ~500-1,000 boxes of a photo the dense
LAPACK solver beats ARPACK, and in float32 it halves again with the same eigen-subspace (principal
cosines 1.0000 against float64 on the scikit-image photos), so float32 is the default precision.
Pixel boxes at the proposal scale (sides up to a few thousand pixels) have integer corners, so
their float32 areas and overlaps (integers below 2^24) are exact; only the IoU quotient rounds.
"""

from __future__ import annotations

import functools
import warnings
from typing import Callable

import numpy as np
import scipy.linalg
import scipy.sparse.csgraph
import scipy.sparse.linalg
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import ThreadpoolController

from affect_tf.config import AFFINITIES

EIGEN_SOLVERS = ("auto", "dense", "arpack")
# Floating-point precision of the affinity, the Laplacian and its eigenvectors.
PRECISIONS = ("float32", "float64")

# "auto" uses ARPACK from this many boxes up: below, the dense solver is faster and always exact.
# Measured single-threaded on EdgeBoxes boxes of a real photo, m = 50 (bench_proposals.py
# --solver_sweep): dense float64 and ARPACK (float64) cross near 400-500 boxes (0.022 s each at
# 500); dense float32 stays ahead up to ~1,700 (0.047 vs 0.084 s at 1,000, 0.15 vs 0.17 s at
# 1,500, 0.35 vs 0.31 s at 2,000).
_ARPACK_MIN_BOXES = {"float32": 1700, "float64": 400}


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


def spectral_embedding(affinity: np.ndarray, num_clusters: int, *, row_normalize: bool = True,
                       solver: str = "auto") -> np.ndarray:
    """V: the ``num_clusters`` eigenvectors of smallest eigenvalue of the normalized Laplacian.

    Args:
        affinity: [n, n] symmetric non-negative affinity W; float32 is solved in float32, any
            other type in float64.
        num_clusters: m, the number of eigenvectors (m < n).
        row_normalize: scale each row of V to unit length (module docstring); zero rows stay 0.
        solver: ``dense`` (LAPACK, exact), ``arpack`` (Lanczos; falls back to dense when the
            graph's components make it unreliable), or ``auto`` (ARPACK from 400 boxes up in
            float64, from 1,700 in float32: where it starts to beat the dense solver).

    Returns:
        [n, m] (float32 for a float32 affinity, else float64), row i the embedding of box i.
    """
    affinity = np.asarray(affinity)
    if affinity.dtype != np.float32:
        affinity = affinity.astype(np.float64)
    if affinity.ndim != 2 or affinity.shape[0] != affinity.shape[1]:
        raise ValueError(
            f"affinity must be a square matrix [n, n]. Received: shape={affinity.shape}")
    if solver not in EIGEN_SOLVERS:
        raise ValueError(
            f"solver must be one of {', '.join(EIGEN_SOLVERS)}. Received: solver={solver!r}")
    if not 0 < num_clusters < affinity.shape[0]:
        raise ValueError(
            f"num_clusters must lie in [1, n) with n = {affinity.shape[0]} boxes. "
            f"Received: num_clusters={num_clusters}")
    # One BLAS thread (the k-means runs on one OpenMP thread too): for ~1,000 boxes it is as fast
    # as several, far faster on a busy machine (a 500-box dense eigh took 2.4 s on 2 contended
    # OpenBLAS threads, 0.03 s on one), and it makes the floating-point results, hence the
    # clusters, independent of the core count and of the proposal stage's worker count.
    with _threadpools().limit(limits=1):
        vectors = _smallest_laplacian_eigenvectors(affinity, num_clusters, solver)
    if row_normalize:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return vectors


def normalized_cut_labels(boxes_xyxy: np.ndarray, num_clusters: int, *, affinity: str = "iou",
                          n_init: int = 10, seed: int = 0, row_normalize: bool = True,
                          solver: str = "auto", precision: str = "float32") -> np.ndarray:
    """Cluster labels of the boxes by normalized cut (e.g. to draw the clusters, paper Fig. 3).

    Args:
        boxes_xyxy: [n, 4] boxes ``[x1, y1, x2, y2]``, n > num_clusters.
        num_clusters: m.
        affinity: ``iou`` (paper) or ``authors``.
        n_init: k-means restarts (authors' code: 10); the best inertia wins.
        seed: k-means seed; equal inputs and seed give equal labels.
        row_normalize: see :func:`spectral_embedding`.
        solver: see :func:`spectral_embedding`.
        precision: ``float32`` or ``float64``, of the affinity, eigenvectors and k-means.

    Returns:
        int64 [n] cluster index per box in [0, m); some clusters may be empty when the embedding
        has fewer than m distinct rows.
    """
    if affinity not in AFFINITY_FUNCTIONS:
        raise ValueError(
            f"affinity must be one of {', '.join(AFFINITIES)}. Received: affinity={affinity!r}")
    if n_init < 1:
        raise ValueError(f"n_init must be >= 1. Received: n_init={n_init}")
    dtype = _check_precision(precision)
    boxes = _check_boxes(boxes_xyxy)
    embedding = spectral_embedding(AFFINITY_FUNCTIONS[affinity](boxes, dtype=dtype), num_clusters,
                                   row_normalize=row_normalize, solver=solver)
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
                          precision: str = "float32") -> np.ndarray:
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
    _check_precision(precision)
    n = boxes.shape[0]
    by_score = np.argsort(-scores, kind="stable")
    if n <= num_clusters:
        return by_score.astype(np.int64)
    labels = normalized_cut_labels(boxes, num_clusters, affinity=affinity, n_init=n_init,
                                   seed=seed, row_normalize=row_normalize, solver=solver,
                                   precision=precision)
    selected = _best_of_each_cluster(labels, scores, by_score, num_clusters)
    rank = np.empty(n, dtype=np.int64)
    rank[by_score] = np.arange(n)
    return selected[np.argsort(rank[selected], kind="stable")]
