"""The paper's "VGGNet (ImageNet features)" baseline: pretrained features + PCA + linear SVM.

The fitting functions on seeded synthetic features; the feature extractor on a small stand-in
backbone (fc7 path, no download) and on the real VGG16 with random weights (conv5 path); the
folds' summary; and one tiny demo run: the row in metrics.json and report.md, and a new SVM C
that refits without extracting the features again.
"""

import json
import pathlib

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
    resized = tf.image.resize(images, [config.model.resize_size] * 2)
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
    assert "(ImageNet fc7;" in line and "35.00 ± 7.07" in line and "| 40.00 | 30.00 |" in line
    assert line.endswith("| 67.61 |"), "Table 3's VGGNet (ImageNet features) row, ArtPhoto"


@pytest.mark.parametrize("dataset, paper", [("fi", "70.64"), ("flickr_vso", "61.28"),
                                            ("twitter1/five_agree", "83.44"),
                                            ("emotion_roi", "72.25"), ("affect_demo", "-")])
def test_the_report_sets_the_row_beside_the_papers_number(dataset, paper):
    metrics = _fold_metrics(0.8, dataset) | {"fold": None}
    (line,) = [line for line in report_lib.results_table(metrics) if line.startswith(f"| {ROW}")]
    assert "| 40.00 |" in line and line.endswith(f"| {paper} |")


# ---- the baseline's own weights ---------------------------------------------------------------

_CLASSIFIER = "/runs/fi/classifier.weights.h5"
_KERAS_TOP = "/m/vgg16_weights_tf_dim_ordering_tf_kernels.h5"
_KERAS_NOTOP = "/m/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


@pytest.mark.parametrize("baseline_weights, image_size, head", [
    ("imagenet", 224, "vgg"),      # the paper's row: fc7 of ImageNet VGG16
    ("imagenet", 64, "gap"),       # fc6 needs 224 px: conv5 of the ImageNet weights
    (_KERAS_TOP, 224, "vgg"),      # ImageNet's weights offline, with fc layers
    (_KERAS_NOTOP, 224, "gap"),    # ImageNet's conv layers only
    ("hed", 224, "gap"),           # offline conv weights, no trained fc layers
    ("none", 224, "gap"),
])
def test_the_backbone_takes_the_baseline_weights_never_the_classifiers(
        tmp_path, baseline_weights, image_size, head):
    # A transfer run (the small sets' protocol): the classifier starts from FI's fine-tuned file.
    config = tiny_config(tmp_path, baseline_weights=baseline_weights,
                         model={"weights": _CLASSIFIER, "head": "vgg" if image_size == 224
                                else "gap", "image_size": image_size,
                                "resize_size": max(256, image_size)},
                         region_image_size=max(256, image_size))
    backbone = baselines_lib.backbone_config(config)
    assert backbone.weights == baseline_weights and backbone.weights != config.model.weights
    assert backbone.resolved_head == head and backbone.image_size == image_size


def test_another_weights_file_is_loaded_into_the_classifiers_architecture(tmp_path):
    config = tiny_config(tmp_path, baseline_weights="/elsewhere/other.weights.h5",
                         model={"hidden_units": 8})
    backbone = baselines_lib.backbone_config(config)
    assert (backbone.weights, backbone.resolved_head, backbone.hidden_units) == (
        "/elsewhere/other.weights.h5", "gap", 8)


def test_baseline_weights_default_to_imagenet_and_must_not_be_empty():
    from affect_tf import config as config_lib

    assert config_lib.Config().baselines.baseline_weights == "imagenet"
    with pytest.raises(config_lib.ConfigError, match="Received: baseline_weights=''"):
        config_lib.Config(baselines=config_lib.BaselineConfig(baseline_weights="")).validate()


@pytest.mark.parametrize("weights, layer, label", [
    ("imagenet", "fc7", "ImageNet fc7"),
    ("imagenet", "conv5_gap", "ImageNet conv5"),
    ("vgg16_weights_tf_dim_ordering_tf_kernels.h5", "fc7", "ImageNet fc7"),
    ("hed", "conv5_gap", "HED conv5, not ImageNet"),
    ("none", "conv5_gap", "random conv5, not ImageNet"),
    ("classifier.weights.h5", "fc7", "classifier.weights.h5 fc7, not ImageNet"),
])
def test_the_rows_name_says_which_weights_and_layer_it_used(weights, layer, label):
    details = {"weights": weights, "layer": layer, "pca_components": 256, "svm_c": 1.0}
    assert baselines_lib.source_label(details) == label
    assert baselines_lib.describe(details) == (
        f"{label}; not fine-tuned; PCA 256; linear SVM, C = 1")


def test_a_stand_in_row_is_named_so_in_the_report_and_keeps_its_metrics_key():
    metrics = _fold_metrics(0.8, "twitter1/five_agree") | {"fold": None}
    metrics["baseline_details"][ROW] |= {"weights": "hed", "imagenet": False,
                                         "layer": "conv5_gap", "feature_dim": 512}
    (line,) = [line for line in report_lib.results_table(metrics) if line.startswith(f"| {ROW}")]
    assert line.startswith(f"| {ROW} (HED conv5, not ImageNet;")
    assert line.endswith("| 83.44 |"), "the paper's ImageNet number, beside the stand-in"
    note = " ".join(report_lib._baseline_note(metrics["baseline_details"]))
    assert "not the paper's ImageNet fc7" in note and "--baseline_weights" in note


@pytest.mark.parametrize("dataset, expected", [
    ("fi", "Table 2"), ("flickr_vso", "Table 2"), ("iapsa", "FI, then on this set"),
    ("twitter1/three_agree", "FI, then on this set"), ("affect_demo", "no numbers")])
def test_the_caption_says_what_the_papers_numbers_are(dataset, expected):
    caption = report_lib.paper_caption(dataset)
    assert expected in caption
    if dataset != "affect_demo":
        assert "not fine-tuned" in caption and ROW in caption


def test_preflight_checks_the_baseline_weights_where_the_baseline_runs(tmp_path, monkeypatch):
    from affect_tf import preflight

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    offline = lambda: False  # noqa: E731
    config = tiny_config(tmp_path, baseline_weights="imagenet")  # classifier: random weights
    for mode in ("all", "evaluate"):
        with pytest.raises(preflight.PreflightError,
                           match="--baseline_weights=imagenet.*--baseline_weights=hed"):
            preflight.check(replace_config(config, mode=mode), imagenet_reachable=offline)
    # Runs that build no baseline need no ImageNet weights.
    preflight.check(replace_config(config, baseline=False), imagenet_reachable=offline)
    preflight.check(replace_config(config, mode="prepare"), imagenet_reachable=offline)
    with pytest.raises(preflight.PreflightError, match="--baseline_weights file .* does not"):
        preflight.check(replace_config(config, baseline_weights=str(tmp_path / "x.weights.h5")),
                        imagenet_reachable=offline)
    # conv5 of ImageNet at this 32 px input: the notop file, once cached, is enough.
    models = tmp_path / "keras" / "models"
    models.mkdir(parents=True)
    (models / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    preflight.check(config, imagenet_reachable=lambda: pytest.fail("asked the network"))


# ---- a tiny run ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny demo run (random weights: conv5 features) and its root metrics."""
    from affect_tf import stages

    config = tiny_config(tmp_path_factory.mktemp("baseline"))
    stages.run(config)
    return config, json.loads((pathlib.Path(config.workdir) / "metrics.json").read_text())


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
    assert f"| {ROW} (random conv5, not ImageNet;" in report
    assert report.count(f"| {ROW}") == 1, "not repeated in the K = 1 table"


def test_a_transfer_run_takes_baseline_features_from_baseline_weights_not_its_classifier(
        finished, tmp_path, monkeypatch):
    # The small sets' protocol: --weights is another run's fine-tuned classifier. The baseline
    # must describe images with its own weights (here hed, offline), never that file's.
    from affect_tf import data as data_lib
    from affect_tf import stages

    first, _ = finished
    classifier = str(pathlib.Path(first.workdir) / "classifier.weights.h5")
    config = replace_config(first, workdir=str(tmp_path / "transfer"), baseline_weights="hed",
                            model={"weights": classifier})
    original = baselines_lib.build_feature_extractor
    built = []

    def spy(model_config, **kwargs):
        built.append(model_config.weights)
        return original(model_config, **kwargs)

    monkeypatch.setattr(baselines_lib, "build_feature_extractor", spy)
    stages.run(config)
    assert built == ["hed"], "the baseline's backbone was built from its own weights only"

    run = stages.Run(config)
    with np.load(run.baseline_features_dir / "features_test.npz") as stored:
        stored = {key: stored[key] for key in ("features", "filename")}

    def features_of(model_config):
        extractor, _ = original(model_config, seed=config.seed)
        batches = data_lib.evaluation_pipeline(
            data_lib.examples(run.builder, run.splits.test),
            resize_size=config.evaluation.region_image_size,
            batch_size=config.evaluation.eval_batch_size)
        arrays = baselines_lib.extract_features(baselines_lib.make_feature_fn(extractor, config),
                                                batches.as_numpy_iterator(), log=lambda *_: None)
        order = {name: i for i, name in enumerate(arrays["filename"])}
        return arrays["features"][[order[name] for name in stored["filename"]]]

    from_baseline = features_of(baselines_lib.backbone_config(config))
    from_classifier = features_of(config.model)  # what the baseline read before: the file
    np.testing.assert_allclose(stored["features"], from_baseline, rtol=1e-4, atol=1e-4)
    assert not np.allclose(stored["features"], from_classifier, rtol=1e-2, atol=1e-2)

    metrics = json.loads((pathlib.Path(config.workdir) / "metrics.json").read_text())
    details = metrics["baseline_details"][ROW]
    assert (details["weights"], details["imagenet"], details["layer"]) == (
        "hed", False, "conv5_gap")
    assert ROW in metrics["baselines"], "the metrics.json key stays the same"
    report = (pathlib.Path(config.workdir) / "report.md").read_text()
    assert f"| {ROW} (HED conv5, not ImageNet;" in report
    assert "classifier.weights.h5" not in report.split("Weights:")[1].split("\n", 1)[1]


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
    from affect_tf import errors

    with pytest.raises(errors.MissingStageError, match="--nobaseline"):
        stages.run(replace_config(config, mode="report", baseline_pca_components=3))
