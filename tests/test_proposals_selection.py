"""Normalized-cut selection (affect_tf/proposals/selection.py)."""

import dataclasses

import numpy as np
import pytest

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
