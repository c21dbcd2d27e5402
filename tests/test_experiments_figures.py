"""affect_tf.experiments.figures: the per-image figures of --mode=experiments (saliency, Figs. 3,
4, 9) on seeded scenes and hand-made predictions, and the stage on a finished tiny demo run: the
files, the manifest, the report's links, and Fig. 3's selection equal to the proposal cache."""

import json
import math
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from affect_tf import data as data_lib
from affect_tf import evaluate as evaluate_lib
from affect_tf import io as io_lib
from affect_tf import model as model_lib
from affect_tf import stages
from affect_tf.config import ProposalConfig, RegionConfig
from affect_tf.experiments import figures
from affect_tf.proposals import pipeline
from affect_tf.testing import rectangles_scene, replace_config, tiny_config

PNG = b"\x89PNG\r\n\x1a\n"
# The tiny run's proposal settings: m = 6 of at most 200 EdgeBoxes boxes.
PROPOSALS = ProposalConfig(num_candidates=6, max_boxes=200, kmeans_n_init=2)
REGIONS = RegionConfig(top_k=2)


def _predictions(boxes: np.ndarray, objectness: np.ndarray, positive: np.ndarray, *,
                 labels=(1,), num_valid=None) -> dict:
    """A test part's predictions from per-candidate P(positive) ``[N, m]`` (whole image 0.5)."""
    positive = np.asarray(positive, np.float32)
    count, m = positive.shape
    return {
        "label": np.asarray(labels, np.int64),
        "filename": np.asarray([f"images/{index:03d}.png" for index in range(count)]),
        "global_probs": np.full((count, 2), 0.5, np.float32),
        "candidate_probs": np.stack([1 - positive, positive], axis=-1),
        "boxes": np.asarray(boxes, np.float32).reshape(count, m, 4),
        "objectness": np.asarray(objectness, np.float32).reshape(count, m),
        "num_valid": np.asarray([m] * count if num_valid is None else num_valid, np.int32),
    }


def _hand_made() -> dict:
    """Two images, m = 4: Obj ranks candidate 0 first, Senti candidate 3 (P = 0.99), AR (alpha
    0.6) candidate 2 (Obj 0.8, P = 0.95); the second image has no candidate."""
    boxes = np.asarray([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.1, 0.2, 0.6, 0.9],
                        [0.7, 0.0, 0.9, 0.3]])
    return _predictions(np.stack([boxes, np.zeros_like(boxes)]),
                        [[1.0, 0.0, 0.8, 0.1], [0, 0, 0, 0]],
                        [[0.6, 0.5, 0.95, 0.99], [0.5, 0.5, 0.5, 0.5]],
                        labels=(1, 0), num_valid=(4, 0))


@pytest.fixture(scope="module")
def classifier():
    return model_lib.build_classifier(tiny_config("/nonexistent").model, seed=0)


def test_proposal_clusters_reproduce_the_proposal_stage_and_keep_the_clusters():
    image = rectangles_scene(3, count=4)
    clusters = figures.proposal_clusters(image, PROPOSALS)
    expected = pipeline.propose(image, PROPOSALS)
    n = clusters.labels.size
    assert n > PROPOSALS.num_candidates  # the normalized cut ran
    np.testing.assert_array_equal(clusters.boxes, expected.boxes)
    np.testing.assert_array_equal(clusters.objectness, expected.objectness)
    assert clusters.pool_boxes.shape == (n, 4) and clusters.pool_objectness.shape == (n,)
    assert set(clusters.labels.tolist()) <= set(range(PROPOSALS.num_candidates))
    # Pool by objectness descending; each candidate the best box of its own cluster.
    assert np.all(np.diff(clusters.pool_objectness) <= 0)
    for index in clusters.selected:
        same = clusters.labels == clusters.labels[index]
        assert clusters.pool_objectness[index] == clusters.pool_objectness[same].max()


def test_a_pool_of_at_most_m_boxes_is_kept_whole_and_a_flat_image_has_none(tmp_path):
    image = rectangles_scene(3, count=4)
    wide = ProposalConfig(num_candidates=200, max_boxes=200)
    clusters = figures.proposal_clusters(image, wide)
    expected = pipeline.propose(image, wide)
    np.testing.assert_array_equal(clusters.boxes, expected.boxes)
    np.testing.assert_array_equal(clusters.labels, np.arange(clusters.labels.size))
    assert clusters.selected.size == clusters.labels.size

    flat = figures.proposal_clusters(np.full((60, 80, 3), 90, np.uint8), PROPOSALS)
    assert flat.labels.size == flat.selected.size == 0 and flat.boxes.shape == (0, 4)
    path = figures.plot_proposal_clusters(np.full((60, 80, 3), 90, np.uint8), flat,
                                          tmp_path / "flat.png")
    assert path.read_bytes()[:8] == PNG


def test_matches_candidates_compares_boxes_objectness_and_count():
    image = rectangles_scene(3, count=4)
    clusters = figures.proposal_clusters(image, PROPOSALS)
    k = clusters.selected.size
    one = _predictions(clusters.boxes[None], clusters.objectness[None], np.full((1, k), 0.7))
    assert figures.matches_candidates(clusters, one)
    shifted = dict(one, boxes=one["boxes"] + np.float32(1e-3))
    assert not figures.matches_candidates(clusters, shifted)
    assert not figures.matches_candidates(clusters, dict(one, num_valid=np.asarray([k - 1])))


def test_top_regions_are_the_reports_choice_and_none_without_candidates():
    test = _hand_made()
    first = figures.top_regions(figures.image_predictions(test, 0), REGIONS)
    np.testing.assert_array_equal(first["obj"], test["boxes"][0, 0])
    np.testing.assert_array_equal(first["senti"], test["boxes"][0, 3])
    np.testing.assert_array_equal(first["ar"], test["boxes"][0, 2])
    choice = evaluate_lib.figure_choice(test, REGIONS, count=2)
    assert choice["filename"].tolist() == [test["filename"][0], test["filename"][1]]
    for name in ("obj", "senti", "ar"):
        np.testing.assert_array_equal(first[name], choice[f"boxes_{name}"][0])
    assert figures.top_regions(figures.image_predictions(test, 1), REGIONS) == {
        "ar": None, "obj": None, "senti": None}


def test_candidate_scores_are_the_evaluations_obj_senti_and_ar():
    test = _hand_made()
    scores = figures.candidate_scores(figures.image_predictions(test, 0), REGIONS)
    np.testing.assert_allclose(scores["objectness_norm"], [1.0, 0.0, 0.8, 0.1], atol=1e-6)
    senti = [1 + (p * math.log(p) + (1 - p) * math.log(1 - p)) / math.log(2)
             for p in (0.6, 0.5, 0.95, 0.99)]
    np.testing.assert_allclose(scores["senti"], senti, atol=1e-5)
    ar = np.sqrt(0.4 * scores["objectness_norm"] ** 2 + 0.6 * np.asarray(senti) ** 2)
    np.testing.assert_allclose(scores["ar"], ar, atol=1e-5)
    assert scores["top"].tolist() == np.argsort(-ar)[:REGIONS.top_k].tolist() == [2, 3]
    empty = figures.candidate_scores(figures.image_predictions(test, 1), REGIONS)
    assert empty["senti"].size == empty["top"].size == 0


def test_plots_of_figs_9_and_4_with_and_without_candidates(tmp_path):
    test = dict(_hand_made(), object_box=np.asarray([[0.1, 0.2, 0.6, 0.9]] * 2, np.float32))
    image = rectangles_scene(5)[::2, ::2]  # 75 x 100
    for row in (0, 1):
        one = figures.image_predictions(test, row)
        regions = figures.plot_top_regions(image, one, REGIONS, tmp_path / f"regions_{row}.png")
        scores = figures.plot_candidate_scores(figures.candidate_scores(one, REGIONS), REGIONS,
                                               tmp_path / f"scores_{row}.png", title="t")
        assert regions.read_bytes()[:8] == PNG and scores.read_bytes()[:8] == PNG
    authors = RegionConfig(top_k=2, ar_formula="authors")
    one = figures.image_predictions(test, 0)
    path = figures.plot_candidate_scores(figures.candidate_scores(one, authors), authors,
                                         tmp_path / "authors.png")
    assert path.read_bytes()[:8] == PNG


def test_whole_image_view_is_the_evaluations_whole_image_view(tmp_path):
    config = tiny_config(tmp_path)
    image = rectangles_scene(7)[:48, :64]
    view = figures.whole_image_view(image, config)
    assert view.shape == (32, 32, 3) and view.dtype == np.float32
    # The evaluation's batches: TensorFlow's decoder, warp to region_image_size, then the view.
    examples = tf.data.Dataset.from_tensors({
        "image": io_lib.encode_png(image), "label": tf.constant(1, tf.int64),
        data_lib.FILENAME_KEY: "a.png"})
    batch = next(iter(data_lib.evaluation_pipeline(
        examples, resize_size=config.evaluation.region_image_size, batch_size=1)))
    expected = evaluate_lib.whole_image_views(batch["image"], config)[0, 0].numpy()
    np.testing.assert_array_equal(view, expected)


def test_draw_image_figures_writes_the_four_pngs(classifier, tmp_path):
    # A fixed temperature, as the stage passes (Run.scoring_config): T = 2.
    config = tiny_config(tmp_path, regions={"senti_calibration": "none", "senti_temperature": 2.0})
    image = rectangles_scene(3, count=2)
    candidates = pipeline.propose(image, config.proposals)
    k, m = len(candidates), config.proposals.num_candidates
    boxes, objectness = np.zeros((1, m, 4), np.float32), np.zeros((1, m), np.float32)
    boxes[0, :k], objectness[0, :k] = candidates.boxes, candidates.objectness
    positive = np.linspace(0.1, 0.9, m)[None]
    one = _predictions(boxes, objectness, positive, num_valid=(k,))
    entry = figures.draw_image_figures(image, one, classifier, config, tmp_path / "stage",
                                       "image_00")
    assert list(entry["files"]) == list(figures.FIGURES)
    for path in entry["files"].values():
        assert path.startswith("figures/image_00_")
        assert (tmp_path / "stage" / path).read_bytes()[:8] == PNG
    assert entry["proposals_match"] and entry["candidates"] == k
    assert entry["pool_boxes"] >= k and entry["label"] == 1
    expected = float(tf.nn.softmax(classifier(
        figures.whole_image_view(image, config)[None], training=False))[0, 1])
    assert entry["view_probability"] == pytest.approx(expected, abs=1e-5)
    assert entry["evaluation_probability"] == 0.5 and entry["seconds"] > 0
    json.dumps(entry)  # what summary.json stores


def test_chosen_filenames_and_bad_input():
    test = _predictions(np.zeros((6, 1, 4)), np.zeros((6, 1)), np.full((6, 1), 0.5),
                        labels=(0, 1, 0, 1, 1, 0))
    names = test["filename"]
    assert figures.chosen_filenames(test, REGIONS, 3) == [names[1], names[0], names[2]]
    assert figures.chosen_filenames(test, REGIONS, 0) == []
    with pytest.raises(ValueError, match="Received: count=-1"):
        figures.chosen_filenames(test, REGIONS, -1)
    with pytest.raises(ValueError, match="Received: row=6"):
        figures.image_predictions(test, 6)
    with pytest.raises(ValueError, match=r"Received: shape=\(8, 8\)"):
        figures.whole_image_view(np.zeros((8, 8), np.uint8), tiny_config("/nonexistent"))
    with pytest.raises(ValueError, match="Received: 1 others, e.g. \\['x.png'\\]"):
        figures.write_image_figures("/nonexistent", {"x.png": np.zeros((8, 8, 3), np.uint8)},
                                    test, None, tiny_config("/nonexistent"))


def test_experiments_draw_the_figures_of_two_test_images(copy_of):
    config, _ = copy_of
    config = replace_config(config, mode="experiments", experiment_images=2)
    stages.run(config)
    # The run's own (--mode=all left one with its default experiment_images beside it).
    run = stages.Run(config)
    directory = run.stage_dir("experiments", run.experiments_manifest().fingerprint)
    summary = json.loads((directory / "summary.json").read_text())
    manifest = json.loads((directory / "manifest.json").read_text())
    entries = summary["figures"]
    assert len(entries) == 2 and {entry["label"] for entry in entries} == {0, 1}
    report = (pathlib.Path(config.workdir) / "report.md").read_text()
    assert "### Per-image figures (2 test images" in report
    for index, entry in enumerate(entries):
        assert entry["proposals_match"], entry
        for name, path in entry["files"].items():
            assert path == f"figures/image_{index:02d}_{name}.png"
            assert (directory / path).read_bytes()[:8] == PNG
            assert path in manifest["outputs"]
            assert f"]({directory.name}/{path})" in report
    # Fig. 3's selection, recomputed from the dataset's bytes, is the proposal cache's.
    cache = run.proposals()
    rows = {name: row for row, name in enumerate(cache.filenames.tolist())}
    for name, data in stages._encoded_images(run, [e["filename"] for e in entries]).items():
        clusters = figures.proposal_clusters(io_lib.decode_image_bytes(data), config.proposals)
        cached = cache.proposals(rows[name])
        np.testing.assert_array_equal(clusters.boxes, cached.boxes)
        np.testing.assert_array_equal(clusters.objectness, cached.objectness)
