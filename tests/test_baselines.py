"""The paper's "VGGNet (ImageNet features)" baseline: pretrained features + PCA + linear SVM.

The fitting functions on seeded synthetic features; the feature extractor on a small stand-in
backbone (fc7 path, no download) and on the real VGG16 with random weights (conv5 path); the
folds' summary; and one tiny demo run: the row in metrics.json and report.md, and a new SVM C
that refits without extracting the features again.
"""

import json
import pathlib
import shutil

import numpy as np
import pytest

from affect_tf import baselines as baselines_lib
from affect_tf import metrics as metrics_lib
from affect_tf import report as report_lib
from affect_tf.testing import replace_config, tiny_config

ROW = baselines_lib.BASELINE_ROW


def _separable(seed, count, dim=12, flip=False):
    """Features whose first four coordinates carry the label (flipped on request) by their sign,
    the rest noise: the label's direction is the first principal component, even standardized."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    features = rng.normal(0, 1, (count, dim)).astype(np.float32)
    signal = np.where(labels == 1, 3.0, -3.0)[:, None]
    features[:, :4] = signal + rng.normal(0, 0.3, (count, 4))
    return {"features": features, "label": 1 - labels if flip else labels}


# ---- fitting ---------------------------------------------------------------------------------

@pytest.mark.parametrize("requested, samples, features, expected", [
    (256, 1000, 4096, 256), (256, 40, 4096, 40), (256, 1000, 100, 100), (0, 1000, 4096, 0)])
def test_pca_components_are_capped_by_samples_and_features(requested, samples, features,
                                                           expected):
    assert baselines_lib.pca_components(requested, samples, features) == expected


def test_pca_components_reject_a_negative_request():
    with pytest.raises(ValueError, match=r"Received: requested=-1"):
        baselines_lib.pca_components(-1, 10, 10)


def test_evaluate_caps_the_pca_and_reports_rows_like_every_other_row():
    train, test = _separable(0, 20, dim=50), _separable(1, 10, dim=50)
    metrics, details = baselines_lib.evaluate(train, test, components=256, svm_c=1.0, seed=0)
    assert set(metrics) == set(metrics_lib.classification_metrics([0, 1], [0, 1]))
    assert metrics["count"] == 10 and 0.0 <= metrics["accuracy"] <= 1.0
    assert details["pca_components"] == 20, "capped by the 20 training images"
    assert details["feature_dim"] == 50 and details["train_count"] == 20
    assert 0.0 < details["explained_variance"] <= 1.0 + 1e-6
    _, without = baselines_lib.evaluate(train, test, components=0, svm_c=1.0, seed=0)
    assert without["pca_components"] == 0 and without["explained_variance"] is None


def test_the_svm_is_fitted_on_the_training_part_only():
    train = _separable(0, 40)
    # Test labels contradict the features: a fit that saw them could not score 0 on them.
    flipped, same = _separable(1, 20, flip=True), _separable(1, 20)
    wrong, _ = baselines_lib.evaluate(train, flipped, components=4, svm_c=1.0, seed=0)
    right, _ = baselines_lib.evaluate(train, same, components=4, svm_c=1.0, seed=0)
    assert wrong["accuracy"] == 0.0 and right["accuracy"] == 1.0
    model = baselines_lib.fit(train["features"], train["label"], components=4, svm_c=1.0, seed=0)
    assert model.named_steps["pca"].n_components_ == 4
    np.testing.assert_array_equal(model.predict(same["features"]), same["label"])


def test_fits_are_reproducible():
    train, test = _separable(2, 30, dim=20), _separable(3, 30, dim=20)
    first = baselines_lib.evaluate(train, test, components=8, svm_c=0.1, seed=5)
    assert baselines_lib.evaluate(train, test, components=8, svm_c=0.1, seed=5) == first


@pytest.mark.parametrize("train, test, message", [
    ({"features": np.zeros(5), "label": np.zeros(5)}, None,
     r"2-D \[N, D\]. Received: train_features.shape=\(5,\)"),
    ({"features": np.zeros((5, 3)), "label": np.zeros(4)}, None,
     r"Received: train_features.shape=\(5, 3\), train_labels.shape=\(4,\)"),
    ({"features": np.zeros((4, 12)), "label": np.ones(4)}, None, r"Received: label values \[1\]"),
    (None, {"features": np.zeros((3, 7)), "label": np.zeros(3)},
     r"dimension D = 12. Received: test_features.shape=\(3, 7\)"),
])
def test_shape_and_label_errors_name_what_was_received(train, test, message):
    train = train or _separable(0, 10)
    test = test or _separable(1, 4)
    with pytest.raises(ValueError, match=message):
        baselines_lib.evaluate(train, test, components=4, svm_c=1.0, seed=0)


# ---- the features ----------------------------------------------------------------------------

@pytest.mark.parametrize("names, weights, expected", [
    (("block5_pool", "fc1", "fc2"), "imagenet", "fc7"),
    (("block5_pool", "fc1", "fc2"), "/m/vgg16_weights_tf_dim_ordering_tf_kernels.h5", "fc7"),
    (("block5_pool", "fc1", "fc2"), "hed", "conv5_gap"),
    (("block5_pool", "fc1", "fc2"), "none", "conv5_gap"),
    (("block5_pool", "global_pool"), "imagenet", "conv5_gap"),
])
def test_fc7_only_where_it_was_trained(names, weights, expected):
    assert baselines_lib.feature_layer(names, weights) == expected


def _small_vgg(config, seed=0):
    """A stand-in with the layer names of model.build_classifier's vgg head (no download)."""
    import keras

    size = config.image_size
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="block5_conv3",
                            kernel_initializer=keras.initializers.GlorotUniform(seed))(inputs)
    x = keras.layers.MaxPooling2D(8, name="block5_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(6, activation="relu", name="fc1",
                           kernel_initializer=keras.initializers.GlorotUniform(seed + 1))(x)
    x = keras.layers.Dense(5, activation="relu", name="fc2",
                           kernel_initializer=keras.initializers.GlorotUniform(seed + 2))(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="sentiment_logits")(x))


@pytest.mark.parametrize("weights, layer, dim", [("imagenet", "fc7", 5), ("hed", "conv5_gap", 4)])
@pytest.mark.parametrize("ten_crop", [False, True])
def test_features_of_the_evaluation_views(tmp_path, monkeypatch, weights, layer, dim, ten_crop):
    import keras
    import tensorflow as tf

    from affect_tf import data as data_lib
    from affect_tf import model as model_lib

    monkeypatch.setattr(model_lib, "build_classifier", _small_vgg)
    config = tiny_config(tmp_path, ten_crop=ten_crop, model={"weights": weights, "head": "vgg"})
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")  # as a mixed-precision training may leave it
    try:
        extractor, found = baselines_lib.build_feature_extractor(config.model, seed=0)
    finally:
        keras.config.set_dtype_policy(previous)
    assert found == layer
    images = tf.constant(np.random.default_rng(0).uniform(0, 255, (3, 64, 64, 3)), tf.float32)
    features = baselines_lib.make_feature_fn(extractor, config)(images).numpy()
    assert features.shape == (3, dim) and features.dtype == np.float32
    resized = tf.image.resize(images, [config.train.resize_size] * 2)
    if ten_crop:
        crops = data_lib.ten_crops(resized, config.model.image_size)
        expected = np.mean([extractor(crop).numpy() for crop in crops], axis=0)
    else:
        expected = extractor(data_lib.center_crop(resized, config.model.image_size)).numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)


def test_real_vgg16_with_random_weights_gives_pooled_conv5(tmp_path):
    config = tiny_config(tmp_path)
    extractor, layer = baselines_lib.build_feature_extractor(config.model, seed=0)
    assert layer == "conv5_gap" and extractor.output_shape == (None, 512)


def test_extract_features_stacks_batches_and_refuses_an_empty_part():
    batches = [{"image": np.zeros((2, 4)), "label": np.array([0, 1]),
                "filename": np.array([b"a.png", b"b.png"])},
               {"image": np.ones((1, 4)), "label": np.array([1]), "filename": np.array([b"c.png"])}]
    arrays = baselines_lib.extract_features(lambda images: images[:, :3] + 1, batches,
                                            log=lambda *_: None)
    assert arrays["features"].shape == (3, 3) and arrays["features"].dtype == np.float32
    assert arrays["filename"].tolist() == ["a.png", "b.png", "c.png"]
    np.testing.assert_array_equal(arrays["label"], [0, 1, 1])
    with pytest.raises(ValueError, match="Received: 0 batches"):
        baselines_lib.extract_features(lambda images: images, [])


# ---- the report ------------------------------------------------------------------------------

def _fold_metrics(accuracy, dataset="artphoto"):
    row = {"accuracy": accuracy, "balanced_accuracy": accuracy, "recall_negative": accuracy,
           "recall_positive": accuracy, "count": 10}
    details = {"weights": "imagenet", "layer": "fc7", "feature_dim": 4096, "pca_components": 256,
               "svm_c": 1.0, "train_count": 100, "views": 1}
    return {"dataset": dataset, "top_k": 8, "reported": "ar+concat", "fold": 0,
            "results": {"global": row, "ar+concat": row},
            "baselines": {ROW: dict(row, accuracy=accuracy / 2)},
            "baseline_details": {ROW: details}}


def test_the_folds_summary_has_the_baseline_row_with_mean_and_sd():
    summary = report_lib.summarize_folds({0: _fold_metrics(0.8), 1: _fold_metrics(0.6)})
    assert summary["mean"][ROW]["accuracy"] == pytest.approx(0.35)
    assert summary["sd"][ROW]["accuracy"] == pytest.approx(np.std([0.4, 0.3], ddof=1))
    assert summary["baseline_details"][ROW]["layer"] == "fc7"
    (line,) = [line for line in report_lib.fold_table(summary) if line.startswith(f"| {ROW}")]
    assert "imagenet VGG16 fc7" in line and "35.00 ± 7.07" in line and "| 40.00 | 30.00 |" in line
    assert line.endswith("| - |"), "PAPER.md has no small-set number for this row"


@pytest.mark.parametrize("dataset, paper", [("fi", "70.64"), ("flickr_vso", "61.28"),
                                            ("twitter1/five_agree", "-")])
def test_the_report_sets_the_row_beside_the_papers_number(dataset, paper):
    metrics = _fold_metrics(0.8, dataset) | {"fold": None}
    (line,) = [line for line in report_lib.results_table(metrics) if line.startswith(f"| {ROW}")]
    assert "| 40.00 |" in line and line.endswith(f"| {paper} |")


# ---- a tiny run ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny demo run (random weights: conv5 features) and its root metrics."""
    from affect_tf import stages

    config = tiny_config(tmp_path_factory.mktemp("baseline"))
    stages.run(config)
    return config, json.loads((pathlib.Path(config.workdir) / "metrics.json").read_text())


@pytest.fixture
def copy_of(finished, tmp_path):
    config, metrics = finished
    shutil.copytree(config.workdir, tmp_path / "run")
    return replace_config(config, workdir=str(tmp_path / "run")), metrics


class Counter:
    """Counts calls of a module's function (feature extraction, the CNN's predictions)."""

    def __init__(self, monkeypatch, module, name):
        self.calls = 0
        original = getattr(module, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)


def test_the_row_is_in_metrics_json_and_the_report(finished):
    config, metrics = finished
    row = metrics["baselines"][ROW]
    assert set(row) == set(metrics["results"]["global"])
    assert row["count"] == metrics["counts"]["test"] and 0.0 <= row["accuracy"] <= 1.0
    details = metrics["baseline_details"][ROW]
    assert details["layer"] == "conv5_gap" and details["feature_dim"] == 512
    assert details["train_count"] == metrics["counts"]["train"]
    assert details["pca_components"] == min(256, metrics["counts"]["train"])
    report = (pathlib.Path(config.workdir) / "report.md").read_text()
    assert f"| {ROW} (none VGG16 conv5 average-pooled" in report
    assert report.count(f"| {ROW}") == 1, "not repeated in the K = 1 table"


def test_another_svm_c_refits_without_extracting_features(copy_of, monkeypatch):
    from affect_tf import evaluate as evaluate_lib
    from affect_tf import stages

    config, metrics = copy_of
    extraction = Counter(monkeypatch, baselines_lib, "extract_features")
    cnn = Counter(monkeypatch, evaluate_lib, "collect_predictions")
    stages.run(replace_config(config, mode="evaluate", baseline_svm_c=0.25))
    assert extraction.calls == 0 and cnn.calls == 0
    workdir = pathlib.Path(config.workdir)
    changed = json.loads((workdir / "metrics.json").read_text())
    assert changed["baseline_details"][ROW]["svm_c"] == 0.25
    assert changed["results"] == metrics["results"]
    assert "C = 0.25" in (workdir / "report.md").read_text()
    assert len(list(workdir.glob("baseline-*"))) == 2
    assert len(list(workdir.glob("baseline_features-*"))) == 1


def test_a_damaged_feature_file_is_extracted_again_to_the_same_row(copy_of, monkeypatch):
    from affect_tf import stages

    config, metrics = copy_of
    run = stages.Run(config)
    path = run.baseline_features_dir / "features_test.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x5A
    path.write_bytes(bytes(data))
    extraction = Counter(monkeypatch, baselines_lib, "extract_features")
    stages.run(replace_config(config, mode="evaluate"))
    assert extraction.calls == 1, "only the damaged part"
    assert json.loads((pathlib.Path(config.workdir) / "metrics.json").read_text()) == metrics


def test_nobaseline_reports_without_the_row_and_report_alone_brings_it_back(copy_of):
    from affect_tf import stages

    config, metrics = copy_of
    workdir = pathlib.Path(config.workdir)
    stages.run(replace_config(config, mode="report", baseline=False))
    assert "baselines" not in json.loads((workdir / "metrics.json").read_text())
    assert ROW not in (workdir / "report.md").read_text()
    stages.run(replace_config(config, mode="report"))
    assert json.loads((workdir / "metrics.json").read_text()) == metrics
    # A baseline that never ran stops the report, naming the fix.
    with pytest.raises(FileNotFoundError, match="--nobaseline"):
        stages.run(replace_config(config, mode="report", baseline_pca_components=3))
