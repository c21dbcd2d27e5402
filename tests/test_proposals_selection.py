"""Normalized-cut selection (affect_tf/proposals/selection.py)."""

import dataclasses

import numpy as np
import pytest
import scipy.sparse.csgraph
import scipy.sparse.linalg

from affect_tf.config import ProposalConfig
from affect_tf.proposals import selection


def _three_groups(rng, per_group=30):
    """Jittered boxes [x1, y1, x2, y2] around three distant places, and random scores."""
    centres = [(60, 60, 40, 50), (300, 80, 60, 40), (150, 300, 50, 70)]  # cx, cy, half w, half h
    boxes, groups = [], []
    for group, (cx, cy, hw, hh) in enumerate(centres):
        jitter = rng.uniform(-6, 6, size=(per_group, 4))
        for dx1, dy1, dx2, dy2 in jitter:
            boxes.append([cx - hw + dx1, cy - hh + dy1, cx + hw + dx2, cy + hh + dy2])
            groups.append(group)
    scores = rng.uniform(0.0, 1.0, size=len(boxes))
    return np.asarray(boxes), scores, np.asarray(groups)


def test_iou_affinity_hand_computed():
    boxes = np.asarray([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 20]])
    affinity = selection.iou_affinity(boxes)
    expected = np.asarray([
        [1.0, 50 / 150, 0.0, 100 / 200],
        [50 / 150, 1.0, 0.0, 50 / 250],
        [0.0, 0.0, 1.0, 0.0],
        [100 / 200, 50 / 250, 0.0, 1.0],
    ])
    np.testing.assert_allclose(affinity, expected)
    assert affinity.shape == (4, 4)


def test_iou_affinity_of_zero_area_boxes_is_finite():
    affinity = selection.iou_affinity(np.asarray([[0, 0, 0, 10], [0, 0, 0, 10], [0, 0, 5, 5]]))
    assert np.all(np.isfinite(affinity))
    assert affinity[0, 1] == 0.0 and affinity[2, 2] == 1.0


def test_authors_affinity_hand_computed():
    boxes = np.asarray([[0, 0, 10, 10], [0, 0, 20, 10], [30, 30, 40, 40]])
    affinity = selection.authors_affinity(boxes)
    # |A n B| = 100; 100 / |A| + 100 / |B| = 1 + 0.5. Each box with itself: 1 + 1.
    expected = np.asarray([[2.0, 1.5, 0.0], [1.5, 2.0, 0.0], [0.0, 0.0, 2.0]])
    np.testing.assert_allclose(affinity, expected)


@pytest.mark.parametrize("affinity", ["iou", "authors"])
@pytest.mark.parametrize("solver", ["dense", "arpack"])
def test_normalized_cut_keeps_the_best_box_of_each_group(affinity, solver):
    rng = np.random.default_rng(3)
    boxes, scores, groups = _three_groups(rng)
    selected = selection.normalized_cut_select(boxes, scores, 3, affinity=affinity, seed=0,
                                               solver=solver)
    assert selected.dtype == np.int64 and selected.shape == (3,)
    assert sorted(groups[selected]) == [0, 1, 2], "one box per group"
    for group in range(3):
        members = np.flatnonzero(groups == group)
        assert members[np.argmax(scores[members])] in selected, "the best-scored of each group"
    assert np.all(np.diff(scores[selected]) <= 0), "ordered by score, descending"


def test_normalized_cut_with_few_boxes_keeps_all_sorted_by_score():
    boxes = np.asarray([[0, 0, 10, 10], [50, 50, 70, 70], [5, 5, 15, 15]])
    scores = np.asarray([0.2, 0.9, 0.5])
    np.testing.assert_array_equal(selection.normalized_cut_select(boxes, scores, 3), [1, 2, 0])
    np.testing.assert_array_equal(selection.normalized_cut_select(boxes, scores, 50), [1, 2, 0])


def test_normalized_cut_of_no_boxes_is_empty():
    selected = selection.normalized_cut_select(np.zeros((0, 4)), np.zeros((0,)), 50)
    assert selected.shape == (0,) and selected.dtype == np.int64


def test_normalized_cut_is_deterministic_under_a_seed():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 400, size=(300, 2))
    sizes = rng.uniform(30, 200, size=(300, 2))
    boxes = np.concatenate([corners, corners + sizes], axis=1)
    scores = rng.uniform(size=300)
    first = selection.normalized_cut_select(boxes, scores, 20, seed=7)
    second = selection.normalized_cut_select(boxes.copy(), scores.copy(), 20, seed=7)
    np.testing.assert_array_equal(first, second)
    assert np.unique(first).size == 20


def test_normalized_cut_of_duplicate_boxes_gives_distinct_indices():
    boxes = np.asarray([[0, 0, 10, 10]] * 10 + [[100, 100, 120, 120], [200, 0, 230, 40]], float)
    scores = np.linspace(1.0, 0.1, 12)
    selected = selection.normalized_cut_select(boxes, scores, 5)
    assert selected.shape == (5,) and np.unique(selected).size == 5
    assert {0, 10, 11} <= set(selected.tolist()), "each place, by its best box"


def test_normalized_cut_fills_empty_clusters_with_the_best_remaining_boxes(monkeypatch):
    # k-means that leaves clusters 2 and 3 of m = 4 empty, as with fewer distinct rows than m.
    class TwoClusterKMeans:
        def __init__(self, n_clusters, n_init, random_state):
            assert (n_clusters, n_init, random_state) == (4, 10, 0)

        def fit_predict(self, embedding):
            return np.asarray([0, 0, 0, 1, 1, 1, 1, 0])

    monkeypatch.setattr(selection, "KMeans", TwoClusterKMeans)
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 100, size=(8, 2))
    boxes = np.concatenate([corners, corners + 50], axis=1)
    scores = np.asarray([0.1, 0.5, 0.3, 0.2, 0.9, 0.4, 0.6, 0.8])
    selected = selection.normalized_cut_select(boxes, scores, 4)
    # Cluster bests: 7 (0.8) and 4 (0.9); then the best remaining: 6 (0.6), 1 (0.5).
    np.testing.assert_array_equal(selected, [4, 7, 6, 1])


def test_normalized_cut_on_a_disconnected_graph():
    # 60 disjoint boxes: 60 components, the eigenvalue 0 of L has multiplicity 60 > m = 50.
    xs = np.arange(60) * 20.0
    boxes = np.stack([xs, np.zeros(60), xs + 10, np.full(60, 10.0)], axis=1)
    scores = np.random.default_rng(1).uniform(size=60)
    for solver in ("dense", "arpack", "auto"):
        selected = selection.normalized_cut_select(boxes, scores, 50, solver=solver)
        assert selected.shape == (50,) and np.unique(selected).size == 50


def test_arpack_and_dense_solvers_agree_on_a_connected_graph():
    rng = np.random.default_rng(5)
    corners = rng.uniform(0, 300, size=(500, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(40, 250, size=(500, 2))], axis=1)
    affinity = selection.iou_affinity(boxes)
    dense = selection.spectral_embedding(affinity, 20, solver="dense", row_normalize=False)
    arpack = selection.spectral_embedding(affinity, 20, solver="arpack", row_normalize=False)
    # Same subspace (eigenvectors are defined up to sign): all principal cosines ~1.
    cosines = np.linalg.svd(dense.T @ arpack, compute_uv=False)
    np.testing.assert_allclose(cosines, 1.0, atol=1e-6)


def test_spectral_embedding_rows_are_unit_length():
    rng = np.random.default_rng(2)
    boxes, _, _ = _three_groups(rng, per_group=10)
    embedding = selection.spectral_embedding(selection.iou_affinity(boxes), 3)
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0)


def test_normalized_cut_rejects_bad_arguments():
    boxes = np.asarray([[0, 0, 10, 10], [1, 1, 11, 11]])
    with pytest.raises(ValueError, match="same length"):
        selection.normalized_cut_select(boxes, np.ones(3), 1)
    with pytest.raises(ValueError, match="Received: shape=\\(2, 3\\)"):
        selection.normalized_cut_select(np.ones((2, 3)), np.ones(2), 1)
    with pytest.raises(ValueError, match="affinity=.*cosine"):
        selection.normalized_cut_select(boxes, np.ones(2), 1, affinity="cosine")


def _random_boxes(rng, n):
    corners = rng.uniform(0, 400, size=(n, 2))
    return np.concatenate([corners, corners + rng.uniform(20, 200, size=(n, 2))], axis=1)


@pytest.mark.parametrize("precision", selection.PRECISIONS)
@pytest.mark.parametrize("n_init", [1, 10])
@pytest.mark.parametrize("n", [12, 16, 300])
def test_selection_returns_m_boxes_each_the_best_of_its_cluster(precision, n_init, n):
    """Exactly min(n, m) distinct boxes; with n > m, the top-objectness box of every cluster."""
    rng = np.random.default_rng(11)
    boxes, scores, m = _random_boxes(rng, n), rng.uniform(size=n), 16
    selected = selection.normalized_cut_select(boxes, scores, m, n_init=n_init, seed=4,
                                               precision=precision)
    assert selected.dtype == np.int64 and selected.shape == (min(n, m),)
    assert np.unique(selected).size == min(n, m)
    assert np.all(np.diff(scores[selected]) <= 0), "ordered by score, descending"
    if n <= m:
        np.testing.assert_array_equal(np.sort(selected), np.arange(n))
        return
    labels = selection.normalized_cut_labels(boxes, m, n_init=n_init, seed=4, precision=precision)
    bests = {int(np.flatnonzero(labels == c)[np.argmax(scores[labels == c])])
             for c in np.unique(labels)}
    assert bests <= set(selected.tolist()), "the top-objectness box of each cluster"
    assert len(bests) == np.unique(labels).size


def test_float32_affinity_and_subspace_match_float64():
    rng = np.random.default_rng(6)
    boxes = np.round(_random_boxes(rng, 400))  # Pixel corners: float32 areas are exact.
    for name, function in selection.AFFINITY_FUNCTIONS.items():
        single, double = function(boxes, dtype=np.float32), function(boxes)
        assert single.dtype == np.float32 and double.dtype == np.float64, name
        np.testing.assert_allclose(single, double, rtol=1e-6, atol=1e-7)
    single = selection.spectral_embedding(selection.iou_affinity(boxes, dtype=np.float32), 20,
                                          row_normalize=False)
    double = selection.spectral_embedding(selection.iou_affinity(boxes), 20, row_normalize=False)
    assert single.dtype == np.float32 and double.dtype == np.float64
    cosines = np.linalg.svd(double.T @ single.astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(cosines, 1.0, atol=1e-4)


def test_precision_choices_match_the_config_setting():
    field = {f.name: f for f in dataclasses.fields(ProposalConfig)}["selection_precision"]
    assert field.metadata["choices"] == selection.PRECISIONS
    assert ProposalConfig().selection_precision in selection.PRECISIONS


def test_normalized_cut_rejects_an_unknown_precision():
    boxes = np.asarray([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]])
    with pytest.raises(ValueError, match="Received: precision='float16'"):
        selection.normalized_cut_select(boxes, np.ones(3), 2, precision="float16")


# ---------------------------------------------------------------------------------------------
# The sparse affinity and its normalized cut.


def _pixel_boxes(rng, n, image=400, smallest=5, largest=150):
    """Random integer pixel boxes [x1, y1, x2, y2] (float32 areas and overlaps are exact)."""
    corners = np.round(rng.uniform(0, image, size=(n, 2)))
    return np.concatenate([corners, corners + np.round(rng.uniform(smallest, largest, (n, 2)))],
                          axis=1)


def _principal_cosines(a, b):
    """Cosines of the principal angles between the column spaces of a and b (1: same space)."""
    qa, _ = np.linalg.qr(np.asarray(a, np.float64))
    qb, _ = np.linalg.qr(np.asarray(b, np.float64))
    return np.linalg.svd(qa.T @ qb, compute_uv=False)


def _embedding(boxes, m, affinity_format, precision="float64", row_normalize=False,
               sparse_solver="arpack"):
    """V of the boxes with W built dense (solved by LAPACK) or sparse (exact: ARPACK above
    _SPARSE_MIN_BOXES boxes, LAPACK below)."""
    return selection.box_embedding(boxes, m, affinity_format=affinity_format, precision=precision,
                                   row_normalize=row_normalize, solver="dense",
                                   sparse_solver=sparse_solver)


def _same_partition(a, b):
    """Labels a and b split the items alike (equal up to renaming the clusters)."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affinity", ["iou", "authors"])
def test_sparse_affinity_equals_the_dense_one_entry_for_entry(affinity, dtype):
    rng = np.random.default_rng(21)
    boxes = np.concatenate([
        _pixel_boxes(rng, 150),
        rng.uniform(0, 300, size=(40, 4)).cumsum(axis=1) / 2,  # Real-valued corners.
        [[10, 10, 10, 50], [10, 10, 50, 10], [10, 10, 5, 5]],  # Zero width, zero height, negative.
        [[0, 0, 20, 20], [20, 0, 40, 20], [0, 0, 20, 20]],  # Touching edges; a duplicate.
    ])
    dense = selection.AFFINITY_FUNCTIONS[affinity](boxes, dtype=dtype)
    sparse = selection.sparse_affinity(boxes, affinity=affinity, dtype=dtype)
    assert sparse.dtype == dtype and sparse.shape == dense.shape
    assert sparse.has_sorted_indices
    np.testing.assert_array_equal(sparse.toarray(), dense)  # Bit for bit, not just close.
    assert np.all(sparse.data > 0), "only overlapping pairs (and positive diagonals) are stored"
    assert sparse.nnz == np.count_nonzero(dense)


def test_sparse_affinity_of_no_box_and_of_one_box():
    assert selection.sparse_affinity(np.zeros((0, 4))).shape == (0, 0)
    np.testing.assert_array_equal(selection.sparse_affinity([[0, 0, 4, 4]]).toarray(), [[1.0]])
    with pytest.raises(ValueError, match="Received: affinity='cosine'"):
        selection.sparse_affinity([[0, 0, 4, 4]], affinity="cosine")


@pytest.mark.parametrize("arpack", [False, True], ids=["lapack", "arpack"])
@pytest.mark.parametrize("precision, atol", [("float32", 1e-4), ("float64", 1e-7)])
@pytest.mark.parametrize("n, m", [(60, 5), (300, 20)])
def test_sparse_and_dense_normalized_cuts_span_the_same_eigenvectors(n, m, precision, atol,
                                                                    arpack, monkeypatch):
    # The sparse path solves a component by LAPACK below _SPARSE_MIN_BOXES boxes and by ARPACK
    # above; lowering the bound runs ARPACK on these small sets.
    calls = []
    if arpack:
        monkeypatch.setitem(selection._SPARSE_MIN_BOXES, precision, 0)
        eigsh = scipy.sparse.linalg.eigsh
        monkeypatch.setattr(selection.scipy.sparse.linalg, "eigsh",
                            lambda *args, **kwargs: calls.append(1) or eigsh(*args, **kwargs))
    rng = np.random.default_rng(n)
    boxes = _pixel_boxes(rng, n, largest=250)
    dense = _embedding(boxes, m, "dense", precision)
    sparse = _embedding(boxes, m, "sparse", precision)
    assert len(calls) == int(arpack), "ARPACK runs where asked, and only there"
    assert sparse.dtype == dense.dtype == np.dtype(precision) and sparse.shape == (n, m)
    # Eigenvectors are defined up to sign (and rotation within a repeated eigenvalue): compare
    # the subspaces.
    np.testing.assert_allclose(_principal_cosines(dense, sparse), 1.0, atol=atol)


@pytest.mark.parametrize("arpack", [False, True], ids=["lapack", "arpack"])
def test_sparse_and_dense_normalized_cuts_give_the_same_clusters(arpack, monkeypatch):
    if arpack:
        monkeypatch.setitem(selection._SPARSE_MIN_BOXES, "float32", 0)
    rng = np.random.default_rng(8)
    boxes, scores, groups = _three_groups(rng, per_group=40)
    for m in (3, 6):
        labels = {fmt: selection.normalized_cut_labels(boxes, m, n_init=1, affinity_format=fmt,
                                                       sparse_solver="arpack")
                  for fmt in ("dense", "sparse")}
        assert _same_partition(labels["dense"], labels["sparse"]), m
    dense, sparse = (selection.normalized_cut_select(boxes, scores, 3, affinity_format=fmt,
                                                     sparse_solver="arpack")
                     for fmt in ("dense", "sparse"))
    np.testing.assert_array_equal(dense, sparse)


def _separate_groups(rng, sizes, isolated):
    """Groups of overlapping pixel boxes far apart (one component each), then isolated boxes."""
    boxes = []
    for index, size in enumerate(sizes):
        x = 1000.0 * index
        corners = np.round(rng.uniform(x, x + 60, size=(size, 2)))
        boxes.append(np.concatenate([corners, corners + np.round(rng.uniform(60, 120, (size, 2)))],
                                    axis=1))
    xs = 1000.0 * (len(sizes) + np.arange(isolated))
    boxes.append(np.stack([xs, np.zeros(isolated), xs + 10, np.full(isolated, 10.0)], axis=1))
    return np.concatenate(boxes)


@pytest.mark.parametrize("arpack", [False, True], ids=["lapack", "arpack"])
def test_sparse_normalized_cut_of_components_and_isolated_boxes(arpack, monkeypatch):
    if arpack:
        monkeypatch.setitem(selection._SPARSE_MIN_BOXES, "float64", 0)
    rng = np.random.default_rng(4)
    sizes, isolated = (40, 25, 3, 2), 3
    boxes = _separate_groups(rng, sizes, isolated)
    components = np.repeat(np.arange(len(sizes) + isolated), list(sizes) + [1] * isolated)
    count = len(sizes) + isolated  # 7 components: eigenvalue 0 of L has multiplicity 7.
    for m in (count, count + 5):
        dense = _embedding(boxes, m, "dense")
        sparse = _embedding(boxes, m, "sparse")
        np.testing.assert_allclose(_principal_cosines(dense, sparse), 1.0, atol=1e-7)
    # With m = 7 the eigenvectors are the component indicators: unit rows put each component on
    # its own point, and each cluster keeps its component's best box.
    embedding = _embedding(boxes, count, "sparse", row_normalize=True)
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0)
    points = np.unique(np.round(embedding, 6), axis=0)
    assert points.shape[0] == count
    scores = rng.uniform(size=boxes.shape[0])
    for fmt in ("dense", "sparse"):
        selected = selection.normalized_cut_select(boxes, scores, count, affinity_format=fmt,
                                                   precision="float64", sparse_solver="arpack")
        assert sorted(components[selected]) == list(range(count)), fmt
        for component in range(count):
            members = np.flatnonzero(components == component)
            assert members[np.argmax(scores[members])] in selected, (fmt, component)


def test_sparse_normalized_cut_with_more_components_than_clusters():
    # 60 disjoint boxes and a zero-area box: 61 components, m = 50 (as the dense test above).
    xs = np.arange(60) * 20.0
    boxes = np.concatenate([np.stack([xs, np.zeros(60), xs + 10, np.full(60, 10.0)], axis=1),
                            [[5, 5, 5, 9]]])
    scores = np.random.default_rng(1).uniform(size=61)
    embedding = _embedding(boxes, 50, "sparse")
    assert np.all(np.isfinite(embedding))
    # The eigenvalue-0 vectors go to the 50 leftmost boxes (ties: the larger component, then the
    # leftmost); the zero-area box (degree 0, eigenvalue 1) and the last ten get none.
    np.testing.assert_array_equal(np.abs(embedding[:50]), np.eye(50))
    assert not np.any(embedding[50:])
    selected = selection.normalized_cut_select(boxes, scores, 50, affinity_format="sparse")
    assert selected.shape == (50,) and np.unique(selected).size == 50


def test_arpack_failure_falls_back_to_lapack(monkeypatch):
    monkeypatch.setitem(selection._SPARSE_MIN_BOXES, "float64", 0)
    rng = np.random.default_rng(9)
    boxes = _pixel_boxes(rng, 120, largest=250)
    expected = _embedding(boxes, 10, "dense")

    def failing_eigsh(*args, **kwargs):
        raise scipy.sparse.linalg.ArpackNoConvergence("no convergence", np.zeros(0),
                                                      np.zeros((0, 0)))

    monkeypatch.setattr(selection.scipy.sparse.linalg, "eigsh", failing_eigsh)
    with pytest.warns(RuntimeWarning, match="ARPACK failed on a box graph of 120 boxes"):
        got = _embedding(boxes, 10, "sparse")
    np.testing.assert_allclose(_principal_cosines(expected, got), 1.0, atol=1e-7)


def _overlapping_pool(rng, n):
    """A photo-like pool: n integer pixel boxes of many sizes over a 500 x 400 image, one
    connected box graph (the big boxes overlap everything)."""
    sizes = np.round(np.exp(rng.uniform(np.log(30), np.log(400), size=(n, 2))))
    corners = np.round(rng.uniform(0, 1, size=(n, 2)) * (np.asarray([500, 400]) - sizes))
    return np.concatenate([corners, corners + sizes], axis=1)


def _kept(reference, other, threshold=0.7):
    """Share of the reference's boxes that ``other`` also holds (IoU >= threshold)."""
    overlaps = selection.iou_affinity(np.concatenate([reference, other]))[
        :len(reference), len(reference):]
    return float(np.mean(overlaps.max(axis=1) >= threshold))


def test_block_lanczos_candidates_move_no_more_than_another_kmeans_seed():
    # The yardstick: the approximate (block) eigen-subspace may move the candidates as
    # much as k-means' own seed does, no more. 1,500 boxes, one component: the block solver runs.
    rng = np.random.default_rng(17)
    boxes = _overlapping_pool(rng, 1500)
    scores = rng.uniform(size=boxes.shape[0])
    m, seeds = 30, (0, 1, 2, 3)

    def candidates(solver, seed):
        return boxes[selection.normalized_cut_select(boxes, scores, m, n_init=1, seed=seed,
                                                     affinity_format="sparse",
                                                     sparse_solver=solver)]

    exact = {seed: candidates("arpack", seed) for seed in seeds}
    block = {seed: candidates("block", seed) for seed in seeds}
    yardstick = np.mean([_kept(exact[a], exact[b]) for a in seeds for b in seeds if a < b])
    kept = np.mean([_kept(exact[seed], block[seed]) for seed in seeds])
    assert yardstick < 1.0, "k-means seeds must move some candidates for the test to mean much"
    assert kept >= yardstick, (kept, yardstick)
    # Deterministic: the same call gives the same candidates.
    np.testing.assert_array_equal(block[0], candidates("block", 0))


def test_block_lanczos_ritz_values_bound_the_top_eigenvalues():
    rng = np.random.default_rng(5)
    boxes = _overlapping_pool(rng, 1200)
    _, upper, diagonal = selection._sorted_upper_affinity(boxes.astype(np.float64), "iou")
    normalized, self_loops, _ = selection._normalized_sparse_affinity(upper, diagonal)
    exact, _ = selection._dense_top_eigenpairs(normalized, self_loops, 20)
    values, vectors = selection._block_lanczos_top_eigenpairs(normalized, self_loops, 20)
    assert vectors.shape == (1200, 20)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(20), atol=1e-8)
    # Rayleigh-Ritz values from below (Cauchy interlacing); the top ones converge first.
    assert np.all(values <= exact + 1e-10)
    np.testing.assert_allclose(values[:5], exact[:5], atol=1e-6)


def test_block_lanczos_shape_grows_with_the_eigenpairs_wanted():
    # m = 50 (the paper): blocks of 16, 13 steps (224 >= 4 m + 16 vectors); never fewer than 13
    # blocks.
    assert selection._block_lanczos_shape(50) == (16, 13)
    assert selection._block_lanczos_shape(20) == (16, 12)
    width, steps = selection._block_lanczos_shape(100)
    assert width == 16 and width * (steps + 1) >= 4 * 100 + 16


def test_block_lanczos_subspace_is_the_exact_one_in_float32():
    # The accuracy that keeps the candidates of the exact cut: on a photo-like pool of 2,500 boxes
    # and m = 50 (one component, float32 as the pipeline runs it), the block subspace's principal
    # cosines with ARPACK's are all above 1 - 1e-4 (k-means moves candidates from ~1e-3 on).
    rng = np.random.default_rng(23)
    boxes = _overlapping_pool(rng, 2500)
    exact = _embedding(boxes, 50, "sparse", precision="float32", sparse_solver="arpack")
    block = _embedding(boxes, 50, "sparse", precision="float32", sparse_solver="block")
    assert _principal_cosines(exact, block).min() > 1.0 - 1e-4


def test_block_lanczos_hands_over_to_arpack_where_it_cannot_answer(monkeypatch):
    monkeypatch.setitem(selection._SPARSE_MIN_BOXES, "float64", 0)
    calls = []
    eigsh = scipy.sparse.linalg.eigsh
    monkeypatch.setattr(selection.scipy.sparse.linalg, "eigsh",
                        lambda *args, **kwargs: calls.append(1) or eigsh(*args, **kwargs))
    rng = np.random.default_rng(6)
    small = _pixel_boxes(rng, 120, largest=250)  # The Krylov space (208 vectors) would fill it.
    expected = _embedding(small, 10, "dense")
    got = _embedding(small, 10, "sparse", sparse_solver="block")
    assert len(calls) == 1
    np.testing.assert_allclose(_principal_cosines(expected, got), 1.0, atol=1e-7)
    # A Krylov basis that lost orthonormality is not used either.
    monkeypatch.setattr(selection, "_BLOCK_ORTHONORMALITY_TOLERANCE", -1.0)
    boxes = _overlapping_pool(rng, 400)
    expected = _embedding(boxes, 10, "dense")
    got = _embedding(boxes, 10, "sparse", sparse_solver="block")
    assert len(calls) == 2
    np.testing.assert_allclose(_principal_cosines(expected, got), 1.0, atol=1e-6)


def test_unknown_sparse_solver_is_refused():
    boxes = np.asarray([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]])
    with pytest.raises(ValueError, match="sparse_solver must be one of block, arpack. "
                                         "Received: sparse_solver='lobpcg'"):
        selection.normalized_cut_select(boxes, np.ones(3), 2, sparse_solver="lobpcg")
    field = {f.name: f for f in dataclasses.fields(ProposalConfig)}["sparse_solver"]
    assert field.metadata["choices"] == selection.SPARSE_SOLVERS


def test_spectral_embedding_takes_a_sparse_affinity():
    rng = np.random.default_rng(12)
    boxes = _pixel_boxes(rng, 200, largest=250)
    for dtype in (np.float32, np.float64):
        sparse = selection.spectral_embedding(selection.sparse_affinity(boxes, dtype=dtype), 10)
        dense = selection.spectral_embedding(selection.iou_affinity(boxes, dtype=dtype), 10)
        assert sparse.dtype == dense.dtype == dtype
        np.testing.assert_allclose(np.linalg.norm(sparse, axis=1), 1.0, rtol=1e-5)
        np.testing.assert_allclose(_principal_cosines(dense, sparse), 1.0, atol=1e-4)


def test_auto_affinity_format_switches_to_sparse_by_the_number_of_boxes():
    bound = selection._SPARSE_MIN_BOXES["float32"]
    assert selection.resolve_affinity_format("auto", bound - 1) == "dense"
    assert selection.resolve_affinity_format("auto", bound) == "sparse"
    assert selection.resolve_affinity_format("dense", 10 * bound) == "dense"
    assert selection.resolve_affinity_format("sparse", 3) == "sparse"
    boxes = np.asarray([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]])
    with pytest.raises(ValueError, match="Received: affinity_format='csr'"):
        selection.normalized_cut_select(boxes, np.ones(3), 2, affinity_format="csr")


def test_affinity_format_choices_match_the_config_setting():
    field = {f.name: f for f in dataclasses.fields(ProposalConfig)}["affinity_format"]
    assert field.metadata["choices"] == selection.AFFINITY_FORMATS
    assert ProposalConfig().affinity_format == "auto"


def test_the_pipeline_passes_the_affinity_format(monkeypatch):
    from affect_tf.proposals import pipeline  # pylint: disable=import-outside-toplevel

    seen = []
    original = selection.normalized_cut_select

    def recording_select(*args, **kwargs):
        seen.append((kwargs["affinity_format"], kwargs["sparse_solver"]))
        return original(*args, **kwargs)

    monkeypatch.setattr(selection, "normalized_cut_select", recording_select)
    edges = np.zeros((64, 64), np.float32)
    for k in (8, 20, 36, 52):  # A grid of thin lines: EdgeBoxes finds many boxes.
        edges[k, 4:60] = edges[4:60, k] = 1.0
    orientation = np.zeros_like(edges)
    orientation[:, [8, 20, 36, 52]] = np.pi / 2
    config = ProposalConfig(affinity_format="sparse", sparse_solver="arpack", num_candidates=4,
                            min_box_area=50)
    proposals = pipeline.propose_from_edges(edges, orientation, config)
    assert seen == [("sparse", "arpack")] and len(proposals) == 4


@pytest.mark.parametrize("case", ["connected", "components", "no_overlap", "one_box"])
def test_box_graph_components_equal_a_search_of_the_whole_graph(case, monkeypatch):
    rng = np.random.default_rng(11)
    boxes = {"connected": _overlapping_pool(rng, 300),
             "components": _separate_groups(rng, (40, 25, 3, 2), 3),
             "no_overlap": _separate_groups(rng, (), 5),
             "one_box": np.asarray([[0.0, 0.0, 10.0, 10.0]])}[case]
    _, upper, _ = selection._sorted_upper_affinity(boxes, "iou")
    expected_count, expected = scipy.sparse.csgraph.connected_components(upper, directed=False)
    searches = []
    search = scipy.sparse.csgraph.connected_components

    def counted_search(graph, **kwargs):
        searches.append(graph.nnz)
        return search(graph, **kwargs)

    monkeypatch.setattr(scipy.sparse.csgraph, "connected_components", counted_search)
    count, labels = selection._box_graph_components(upper)
    assert count == expected_count
    # The same partition (labels may be numbered otherwise).
    assert np.unique(np.stack([labels, expected]), axis=1).shape[1] == count
    # A connected graph is recognized from its 2n-edge subgraph alone.
    assert len(searches) == (1 if count == 1 else 2)
