"""affect_tf.experiments.sweeps: the alpha / beta (Fig. 6) and K (Fig. 7) sweeps on made-up
predictions; the point at the run's own settings is the evaluation's own figure."""

import csv
import dataclasses
import sys

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from affect_tf import evaluate as evaluate_lib
from affect_tf.config import Config, FusionConfig, RegionConfig
from affect_tf.experiments import sweeps
from affect_tf.testing import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import bench_demo_seeds as bench  # noqa: E402  pylint: disable=wrong-import-position

CANDIDATES = 6


def make_predictions(seed: int, count: int = 60, m: int = CANDIDATES) -> dict:
    """Predictions as the evaluation stores them: a noisy whole image, candidates of which the
    first two lean to the true class (more strongly the higher their objectness), padding after
    ``num_valid`` (one image has no candidate at all)."""
    rng = np.random.default_rng(seed)
    labels = np.tile([0, 1], count // 2 + 1)[:count].astype(np.int64)
    rng.shuffle(labels)
    sign = np.where(labels == 1, 1.0, -1.0)
    positive = 1 / (1 + np.exp(-(0.4 * sign + rng.normal(0, 1.0, count))))
    global_probs = np.stack([1 - positive, positive], axis=-1).astype(np.float32)
    lean = np.zeros((count, m))
    lean[:, :2] = 1.5
    region_positive = 1 / (1 + np.exp(-(lean * sign[:, None] + rng.normal(0, 1.2, (count, m)))))
    candidate_probs = np.stack([1 - region_positive, region_positive], axis=-1).astype(np.float32)
    objectness = rng.uniform(0, 1, (count, m)).astype(np.float32)
    num_valid = rng.integers(1, m + 1, count).astype(np.int32)
    num_valid[0] = 0
    corner = rng.uniform(0, 0.5, (count, m, 2))
    size = rng.uniform(0.1, 0.5, (count, m, 2))
    boxes = np.concatenate([corner, corner + size], axis=-1).astype(np.float32)
    for index in range(count):  # padding slots, as the evaluation stores them
        candidate_probs[index, num_valid[index]:] = global_probs[index]
        objectness[index, num_valid[index]:] = 0
        boxes[index, num_valid[index]:] = 0
    return {"label": labels, "filename": np.asarray([f"{seed}-{i}.png" for i in range(count)]),
            "global_probs": global_probs, "candidate_probs": candidate_probs,
            "objectness": objectness, "num_valid": num_valid, "boxes": boxes}


@pytest.fixture(scope="module")
def parts():
    return make_predictions(1), make_predictions(2, count=80)


def _run_config(top_k=3, alpha=0.6, beta=0.3, svm_features="probabilities", seed=7) -> Config:
    return dataclasses.replace(
        Config(), seed=seed, regions=RegionConfig(top_k=top_k, alpha=alpha),
        fusion=FusionConfig(beta=beta, svm_features=svm_features))


@pytest.mark.parametrize("svm_features", ["probabilities", "log_probabilities"])
def test_the_point_at_the_runs_settings_is_the_evaluations_own_figure(parts, svm_features):
    validation, test = parts
    config = _run_config(svm_features=svm_features)
    results, _ = evaluate_lib.evaluate_all(validation, test, config)
    grid = sweeps.alpha_beta_sweep(validation, test, config.regions, config.fusion,
                                   alphas=[0.2, config.regions.alpha, 1.0],
                                   betas=[0.0, config.fusion.beta])
    own = [row for row in grid
           if row["alpha"] == config.regions.alpha and row["beta"] == config.fusion.beta]
    assert len(own) == 1
    assert own[0]["test_ar_sum"] == results["ar+sum"]["accuracy"]
    by_k = sweeps.top_k_sweep(validation, test, config.regions, config.fusion,
                              ks=[1, config.regions.top_k], seed=config.seed)
    row = by_k[1]
    assert row["top_k"] == config.regions.top_k
    assert row["test_ar_concat"] == results["ar+concat"]["accuracy"]
    assert row["test_ar_sum"] == results["ar+sum"]["accuracy"]
    assert row["test_ar_max"] == results["ar+max"]["accuracy"]


def test_validation_figures_are_direct_or_cross_validated_as_the_demo_benchmark(parts):
    validation, test = parts
    regions, fusion = RegionConfig(top_k=4, alpha=0.6), FusionConfig(beta=0.3)
    row, = sweeps.top_k_sweep(validation, test, regions, fusion, ks=[4], seed=3)
    selected = evaluate_lib.select(validation, regions, "ar")
    for fusion_name in ("sum", "max"):
        predicted = evaluate_lib.fuse(fusion_name, validation["global_probs"], selected, fusion)
        assert row[f"validation_ar_{fusion_name}"] == np.mean(predicted == validation["label"])
    # Never the SVM's in-sample accuracy: each fold predicted by an SVM fitted on the others.
    labels, correct = validation["label"], 0
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=3)
    for fitted, held_out in folds.split(np.zeros(len(labels)), labels):
        svm = evaluate_lib.fit_svm({k: v[fitted] for k, v in validation.items()},
                                   {k: v[fitted] for k, v in selected.items()}, fusion, 3)
        predicted = evaluate_lib.fuse("concat", validation["global_probs"][held_out],
                                      {k: v[held_out] for k, v in selected.items()}, fusion,
                                      svm=svm)
        correct += int(np.sum(predicted == labels[held_out]))
    assert row["validation_ar_concat_cv"] == correct / len(labels)
    # The demo benchmark's validation rows are this function's.
    assert bench._cross_validated_concat(  # pylint: disable=protected-access
        validation, regions, fusion, "ar", seed=3) == row["validation_ar_concat_cv"]


def test_alpha_beta_rows_cover_the_grid_and_beta_zero_is_the_whole_image(parts):
    validation, test = parts
    alphas, betas = [0.0, 0.5, 1.0], [0.0, 0.3, 1.0]
    rows = sweeps.alpha_beta_sweep(validation, test, RegionConfig(top_k=2), FusionConfig(),
                                   alphas, betas)
    assert [(row["alpha"], row["beta"]) for row in rows] == [(a, b) for a in alphas for b in betas]
    assert all(row["top_k"] == 2 for row in rows)
    # beta = 0 leaves only the whole image in Eq. 7 (its argmax), whatever alpha ranks.
    for name, part in (("validation", validation), ("test", test)):
        whole = np.mean(np.argmax(part["global_probs"], axis=-1) == part["label"])
        for row in rows:
            if row["beta"] == 0.0:
                assert row[f"{name}_ar_sum"] == whole
            assert 0.0 <= row[f"{name}_ar_sum"] <= 1.0


def test_every_k_is_capped_at_the_candidates_once(parts):
    validation, test = parts
    rows = sweeps.top_k_sweep(validation, test, RegionConfig(), FusionConfig(),
                              ks=[1, 3, CANDIDATES + 2, 50], seed=0)
    assert [row["top_k"] for row in rows] == [1, 3, CANDIDATES]
    assert set(rows[0]) == {"top_k", "alpha", "beta", "validation_ar_sum", "test_ar_sum",
                            "validation_ar_max", "test_ar_max", "validation_ar_concat_cv",
                            "test_ar_concat"}
    # K = 1: max and sum pooling of one region can differ, but both are accuracies.
    assert all(0.0 <= value <= 1.0 for row in rows for key, value in row.items()
               if key.endswith(("_sum", "_max", "_cv", "_concat")))


def test_bad_settings_say_what_was_expected_and_received(parts):
    validation, test = parts
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]. Received: alpha=1.5"):
        sweeps.alpha_beta_sweep(validation, test, RegionConfig(), FusionConfig(), [1.5], [0.3])
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 1\]. Received: beta=-0.1"):
        sweeps.alpha_beta_sweep(validation, test, RegionConfig(), FusionConfig(), [0.6], [-0.1])
    with pytest.raises(ValueError, match="at least one value. Received: alphas=\\[\\]"):
        sweeps.alpha_beta_sweep(validation, test, RegionConfig(), FusionConfig(), [], [0.3])
    with pytest.raises(ValueError, match="positive integer. Received: K=0"):
        sweeps.top_k_sweep(validation, test, RegionConfig(), FusionConfig(), [0], seed=0)
    with pytest.raises(ValueError, match="positive integer. Received: K=2.5"):
        sweeps.top_k_sweep(validation, test, RegionConfig(), FusionConfig(), [2.5], seed=0)
    partial = {key: value for key, value in test.items() if key != "objectness"}
    with pytest.raises(ValueError, match="test predictions lack objectness.*Received: keys"):
        sweeps.top_k_sweep(validation, partial, RegionConfig(), FusionConfig(), [2], seed=0)


def test_cross_validation_needs_every_class_in_every_fold(parts):
    validation, _ = parts
    few = {key: value[:8] for key, value in validation.items()}
    few["label"] = np.asarray([0, 0, 0, 0, 0, 0, 1, 1])
    selected = evaluate_lib.select(few, RegionConfig(top_k=2), "ar")
    with pytest.raises(ValueError, match="at least 5 images of each class. Received: 6 negative "
                                         "and 2 positive"):
        sweeps.cross_validated_concat(few, selected, FusionConfig(), seed=0)


def test_csv_is_written_whole_and_reads_back_exactly(tmp_path):
    rows = [{"alpha": 0.1, "beta": 0.3, "test_ar_sum": 2 / 3},
            {"alpha": 0.6, "beta": 0.3, "test_ar_sum": 0.7, "note": "extra"}]
    path = sweeps.write_csv(rows, tmp_path / "out" / "sweep.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        read = list(csv.DictReader(handle))
    assert list(read[0]) == ["alpha", "beta", "test_ar_sum", "note"]
    assert float(read[0]["test_ar_sum"]) == 2 / 3 and read[0]["note"] == ""
    assert read[1]["note"] == "extra"
    assert [p.name for p in path.parent.iterdir()] == ["sweep.csv"]  # no temporary file left
    sweeps.write_csv(rows[:1], path)  # replaces the old table
    assert path.read_text().count("\n") == 2
    with pytest.raises(ValueError, match="at least one row. Received: 0 rows"):
        sweeps.write_csv([], tmp_path / "empty.csv")


def test_figures_are_written_as_png(parts, tmp_path):
    validation, test = parts
    grid = sweeps.alpha_beta_sweep(validation, test, RegionConfig(top_k=2), FusionConfig(),
                                   [0.0, 0.6, 1.0], [0.1, 0.3])
    by_k = sweeps.top_k_sweep(validation, test, RegionConfig(), FusionConfig(), [2, 1], seed=0)
    for path in (sweeps.plot_alpha_beta(grid, tmp_path / "fig6" / "alpha_beta.png"),
                 sweeps.plot_top_k(by_k, tmp_path / "top_k.png")):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="needs 'validation_ar_sum' in every row"):
        sweeps.plot_alpha_beta([{"alpha": 0.5, "beta": 0.3}], tmp_path / "bad.png")
