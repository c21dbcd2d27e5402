"""The paper's "VGGNet (ImageNet features)" baseline (Tables 2-3): pretrained features + PCA + SVM.

Yang et al. compare their method with a VGG16 that is *not* fine-tuned: the penultimate layer of
the ImageNet network (fc7, 4096-d) describes each whole image, PCA reduces it, and LIBSVM with its
default C = 1 classifies it (FI 70.64 %, Flickr 61.28 %; Table 3 for the small sets). Here:

* **Features** come from the backbone that ``--baseline_weights`` names (default ``imagenet``),
  never from the weights the classifier starts from: a transfer run starts from the
  FI-fine-tuned classifier, whose fc7 is no ImageNet feature. They are viewed as the evaluation
  views whole images (:func:`affect_tf.evaluate.whole_image_views`: warp to
  ``region_image_size``, resize to ``resize_size``, centre crop, or the 10 crops averaged).
  Weights with trained fc6/fc7 (``imagenet``, Keras' full VGG16 file) at a 224 px input give fc7
  (Keras ``fc2``, after its ReLU, as Caffe's in-place relu7 leaves it): the paper's row. Offline
  weights have no trained fc layers (``hed``: conv layers only; ``none``: nothing trained), so the
  feature is then conv5 (``block5_pool``) averaged over positions, 512-d: a stand-in for the
  paper's row, and the report's row name says which weights and layer it used
  (:func:`source_label`).
* **Classifier**: standardization, PCA and a linear SVM (``LinearSVC``, C = ``baseline_svm_c``,
  LIBSVM's default 1, with a linear kernel), all fitted on the fold's *training* part (the
  backbone never trained on it, so nothing leaks) and tested on the test part. The paper does
  not give the PCA dimension; ``baseline_pca_components`` (256) is capped by the number of
  training images and features.

Feature extraction (TensorFlow) and fitting (scikit-learn, imported inside the functions that fit,
as ``fusion.py`` does) are separate, so the stage caches the features and a new PCA or C setting
refits in seconds.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterable, Sequence

import numpy as np

from affect_tf import metrics as metrics_lib
from affect_tf.config import Config, ModelConfig, keras_vgg16_weights_file

# The row's key in metrics.json (``baselines``), the report and the folds' summary.
BASELINE_ROW = "pretrained_features+pca+svm"
FC7 = "fc7"
CONV5_GAP = "conv5_gap"
FEATURE_LAYERS = (FC7, CONV5_GAP)
# Weight sources that leave fc6 / fc7 with random values even where the architecture has them.
UNTRAINED_FC_SOURCES = ("hed", "none")
# Keras' name of the paper's fc7 (model.VGG16_FC_LAYERS: fc1 = fc6, fc2 = fc7).
_FC7_LAYER = "fc2"
_CONV5_LAYER = "block5_pool"
# The input side fc6 takes (model.VGG_HEAD_IMAGE_SIZE, not imported: model.py loads Keras, and
# preflight reads backbone_config before Keras loads).
_FC_IMAGE_SIZE = 224
# LinearSVC's default of 1,000 iterations stops short on thousands of standardized features; the
# same bound as the fusion's SVM (fusion.py).
_SVM_MAX_ITER = 100_000


def feature_layer(layer_names: Iterable[str], weights: str) -> str:
    """Which feature the baseline takes from a pretrained backbone.

    Args:
        layer_names: the names of the backbone's layers (``model.build_classifier``).
        weights: the weights source it was built from (``ModelConfig.weights``).

    Returns:
        ``"fc7"`` where the backbone has fc7 with trained values (any source but ``hed`` and
        ``none``, with the vgg head), else ``"conv5_gap"``.
    """
    names = set(layer_names)
    return FC7 if _FC7_LAYER in names and weights not in UNTRAINED_FC_SOURCES else CONV5_GAP


def is_imagenet(weights: str) -> bool:
    """Whether ``weights`` are ImageNet VGG16's: ``imagenet`` or a Keras ``vgg16_weights*.h5``
    file (the same weights, downloaded beforehand)."""
    return weights == "imagenet" or keras_vgg16_weights_file(weights) is not None


def _has_trained_fc(weights: str) -> bool:
    return weights == "imagenet" or keras_vgg16_weights_file(weights) == "top"


def backbone_config(config: Config) -> ModelConfig:
    """The architecture and weights the baseline's features come from.

    The weights are ``config.baselines.baseline_weights``, never ``config.model.weights`` (a
    transfer run starts from a fine-tuned classifier). The vgg head (fc6, fc7) is built where
    those weights have trained fc layers and the input is 224 px, as fc6 needs; otherwise the
    gap head, of which only the conv layers feed the features. Any other weights file is loaded
    by ``model.load_weights`` into the classifier's own architecture (the only one this project
    saves; a ``.keras`` file carries its own).

    Args:
        config: the run's settings.

    Returns:
        A ``ModelConfig`` for :func:`build_feature_extractor` (input side ``image_size`` as the
        classifier's, so the evaluation's whole-image views serve both).
    """
    weights, size = config.baselines.baseline_weights, config.model.image_size
    if weights in UNTRAINED_FC_SOURCES or is_imagenet(weights):
        head = "vgg" if _has_trained_fc(weights) and size == _FC_IMAGE_SIZE else "gap"
        return ModelConfig(weights=weights, head=head, image_size=size)
    head = "auto" if weights.endswith(".keras") else config.model.resolved_head
    return ModelConfig(weights=weights, head=head, image_size=size,
                       hidden_units=config.model.hidden_units)


def build_feature_extractor(model_config: ModelConfig, *, seed: int = 0):
    """The pretrained, not fine-tuned backbone cut at its feature layer.

    Args:
        model_config: the backbone's architecture and ``weights`` source
            (:func:`backbone_config`).
        seed: the seed of the randomly initialized layers (only ``weights='none'`` keeps any of
            them in the features).

    Returns:
        ``(extractor, layer)``: a ``keras.Model`` float32 RGB 0-255 ``[B, S, S, 3]`` ->
        features ``[B, D]`` float32 (D = 4096 for ``fc7``, 512 for ``conv5_gap``), and
        :func:`feature_layer`'s name for it.

    Raises:
        model.WeightsUnavailableError: ``weights='imagenet'`` and the download failed.
    """
    import keras  # pylint: disable=import-outside-toplevel  (fitting needs no TensorFlow)

    from affect_tf import model as model_lib  # pylint: disable=import-outside-toplevel

    # Built in float32 whatever policy a mixed-precision training left in force: the features,
    # hence their cache, must not depend on how the classifier was trained.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        backbone = model_lib.build_classifier(model_config, seed=seed)
        layer = feature_layer((item.name for item in backbone.layers), model_config.weights)
        if layer == FC7:
            outputs = backbone.get_layer(_FC7_LAYER).output
        else:
            outputs = keras.layers.GlobalAveragePooling2D(name="baseline_conv5_pool")(
                backbone.get_layer(_CONV5_LAYER).output)
        extractor = keras.Model(backbone.inputs, outputs, name=f"baseline_{layer}")
    finally:
        keras.config.set_dtype_policy(previous)
    return extractor, layer


def make_feature_fn(extractor, config: Config) -> Callable:
    """A ``tf.function`` evaluation images ``[B, R, R, 3]`` -> features ``[B, D]`` float32.

    The views are the evaluation's (:func:`affect_tf.evaluate.whole_image_views`); with
    ``ten_crop`` the 10 views' features are averaged, as the evaluation averages their softmax.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from affect_tf import evaluate as evaluate_lib  # pylint: disable=import-outside-toplevel

    image_size = config.model.image_size

    @tf.function(reduce_retracing=True)
    def features(region_images):
        views = evaluate_lib.whole_image_views(region_images, config)  # [V, B, S, S, 3]
        flat = tf.reshape(views, [-1, image_size, image_size, 3])
        values = tf.cast(extractor(flat, training=False), tf.float32)
        per_view = tf.reshape(values, [tf.shape(views)[0], -1, values.shape[-1]])
        return tf.reduce_mean(per_view, axis=0)

    return features


def extract_features(feature_fn: Callable, batches: Iterable[dict], *, total: int | None = None,
                     log=logging.info) -> dict[str, np.ndarray]:
    """Runs ``feature_fn`` over evaluation batches (``data.evaluation_pipeline``, as numpy).

    Returns:
        ``features`` [N, D] float32, ``label`` [N] int64, ``filename`` [N] str.

    Raises:
        ValueError: no batch at all (an empty part).
    """
    parts: dict[str, list] = {"features": [], "label": [], "filename": []}
    done, start, last_log = 0, time.perf_counter(), time.perf_counter()
    for batch in batches:
        parts["features"].append(np.asarray(feature_fn(batch["image"]), np.float32))
        parts["label"].append(np.asarray(batch["label"], np.int64))
        parts["filename"].append(np.asarray(batch["filename"]))
        done += int(parts["label"][-1].shape[0])
        if time.perf_counter() - last_log > 10 or (total and done >= total):
            rate = done / max(time.perf_counter() - start, 1e-9)
            log(f"baseline: features of {done}{'/' + str(total) if total else ''} images, "
                f"{rate:.1f}/s")
            last_log = time.perf_counter()
    if not parts["label"]:
        raise ValueError("No images to extract features from: the part is empty. "
                         "Received: 0 batches")
    arrays = {key: np.concatenate(values) for key, values in parts.items()}
    arrays["filename"] = arrays["filename"].astype(str)
    return arrays


def pca_components(requested: int, num_samples: int, num_features: int) -> int:
    """The PCA dimension actually used: ``requested`` capped by the samples and the features.

    PCA cannot return more components than ``min(num_samples, num_features)``.

    Args:
        requested: ``baseline_pca_components``; 0 means no PCA.
        num_samples: training images.
        num_features: feature dimension D.

    Returns:
        The number of components; 0 when ``requested`` is 0 (no PCA).

    Raises:
        ValueError: a negative request, or no samples or features.
    """
    if requested < 0:
        raise ValueError(f"requested must be >= 0 (0: no PCA). Received: requested={requested}")
    if num_samples < 1 or num_features < 1:
        raise ValueError("PCA needs at least one sample and one feature. Received: "
                         f"num_samples={num_samples}, num_features={num_features}")
    return min(requested, num_samples, num_features)


def _check_part(features, labels, name: str) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features)
    labels = np.asarray(labels)
    if features.ndim != 2:
        raise ValueError(f"{name} features must be 2-D [N, D]. Received: "
                         f"{name}_features.shape={features.shape}")
    if labels.shape != (features.shape[0],):
        raise ValueError(f"{name} labels must be [N] with N = the features' rows. Received: "
                         f"{name}_features.shape={features.shape}, "
                         f"{name}_labels.shape={labels.shape}")
    return features.astype(np.float32, copy=False), labels.astype(np.int64, copy=False)


def fit(train_features, train_labels, *, components: int, svm_c: float, seed: int):
    """Standardization, PCA and a linear SVM, fitted on training features only.

    Args:
        train_features: ``[N, D]`` features of the training part.
        train_labels: ``[N]`` in {0, 1}, both classes present.
        components: the requested PCA dimension (capped by :func:`pca_components`; 0: no PCA).
        svm_c: the SVM's C (> 0).
        seed: ``random_state`` of PCA and the SVM, so a fit is reproducible.

    Returns:
        A fitted ``sklearn.pipeline.Pipeline`` (``scale``, ``pca`` unless no PCA, ``svm``).

    Raises:
        ValueError: features not ``[N, D]``, labels not ``[N]``, labels outside {0, 1} or of one
            class only, or ``svm_c <= 0``.
    """
    # Imported here, as fusion.py does: extraction and the stages need no scikit-learn.
    from sklearn import decomposition, pipeline, preprocessing, svm  # noqa: PLC0415

    features, labels = _check_part(train_features, train_labels, "train")
    values = sorted(np.unique(labels).tolist())
    if values != [0, 1]:
        raise ValueError("train labels must hold both classes, 0 (negative) and 1 (positive). "
                         f"Received: label values {values}")
    if not svm_c > 0:
        raise ValueError(f"svm_c must be > 0. Received: svm_c={svm_c!r}")
    used = pca_components(components, *features.shape)
    # PCA on standardized features, so no single high-variance unit decides the components.
    steps = [("scale", preprocessing.StandardScaler())]
    if used:
        steps.append(("pca", decomposition.PCA(n_components=used, random_state=seed)))
    steps.append(("svm", svm.LinearSVC(C=svm_c, random_state=seed, max_iter=_SVM_MAX_ITER)))
    return pipeline.Pipeline(steps).fit(features, labels)


def evaluate(train: dict, test: dict, *, components: int, svm_c: float,
             seed: int) -> tuple[dict, dict]:
    """Fits on the training part's features and measures the test part.

    Args:
        train: ``features`` [N, D] and ``label`` [N] of the training part.
        test: ``features`` [M, D] and ``label`` [M] of the test part (never used to fit).
        components, svm_c, seed: as :func:`fit`.

    Returns:
        ``(metrics, details)``: the test metrics in the format of every row of metrics.json
        (:func:`affect_tf.metrics.classification_metrics`), and what the fit used:
        ``feature_dim``, ``pca_components`` (0: none), ``explained_variance`` (share of the
        standardized features' variance the components keep; None without PCA), ``svm_c``,
        ``train_count``.

    Raises:
        ValueError: as :func:`fit`, or test features whose D differs from the training part's.
    """
    train_features, train_labels = _check_part(train["features"], train["label"], "train")
    test_features, test_labels = _check_part(test["features"], test["label"], "test")
    if test_features.shape[1] != train_features.shape[1]:
        raise ValueError(
            f"test features must have the training part's dimension D = "
            f"{train_features.shape[1]}. Received: test_features.shape={test_features.shape}")
    model = fit(train_features, train_labels, components=components, svm_c=svm_c, seed=seed)
    pca = model.named_steps.get("pca")
    details = {
        "feature_dim": int(train_features.shape[1]),
        "pca_components": int(pca.n_components_) if pca is not None else 0,
        "explained_variance": (float(np.sum(pca.explained_variance_ratio_))
                               if pca is not None else None),
        "svm_c": float(svm_c),
        "train_count": int(train_features.shape[0]),
    }
    predictions = model.predict(test_features)
    return metrics_lib.classification_metrics(test_labels, predictions), details


def weights_name(weights: str) -> str:
    """How ``baseline_details`` records a weights source: its name, or a file's base name (where
    the file lies is no property of the result)."""
    return weights.replace("\\", "/").rsplit("/", 1)[-1]


def source_label(details: dict) -> str:
    """What the row's features are, in a few words: ``ImageNet fc7`` (the paper's row),
    ``ImageNet conv5``, ``HED conv5, not ImageNet``, ``random conv5, not ImageNet``, or a file's
    name with its layer and ``not ImageNet``."""
    weights = weights_name(str(details.get("weights", "?")))
    imagenet = details.get("imagenet", is_imagenet(weights))
    source = ("ImageNet" if imagenet else
              {"hed": "HED", "none": "random"}.get(weights, weights))
    layer = "fc7" if details.get("layer") == FC7 else "conv5"
    return f"{source} {layer}" + ("" if imagenet else ", not ImageNet")


def describe(details: dict) -> str:
    """The report's short account of the row: weights and feature, PCA and SVM, e.g. ``ImageNet
    fc7; not fine-tuned; PCA 256; linear SVM, C = 1``."""
    components = details.get("pca_components")
    pca = f"PCA {components}" if components else "no PCA"
    svm_c = details.get("svm_c")
    c = f"{svm_c:g}" if isinstance(svm_c, (int, float)) else "?"
    return f"{source_label(details)}; not fine-tuned; {pca}; linear SVM, C = {c}"


def summarize_details(details: Sequence[dict]) -> dict:
    """One fold's details, or several folds' with the PCA dimension of each (it may be capped
    differently where the training parts differ in size)."""
    first = dict(details[0])
    used = sorted({d.get("pca_components") for d in details})
    if len(used) > 1:
        first["pca_components"] = "-".join(str(value) for value in used)
    return first
