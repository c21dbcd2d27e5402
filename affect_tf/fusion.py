"""Fusion of the whole-image and affective-region predictions (Section 3.4, Eqs. 6-8).

* :func:`max_pooling` (Eq. 6) and :func:`sum_pooling` (Eq. 7) combine probabilities directly;
  :class:`FusionLayer` wraps them as a Keras layer for graphs and the SavedModel.
* :func:`concat_features` (Eq. 8) lays the K + 1 predictions side by side for :class:`SVMFusion`,
  a linear SVM by default, exportable as a Dense layer (METHOD.md, C6); kernel SVMs are
  evaluation-only.

Probabilities are ``[..., C]`` with index 0 = negative, 1 = positive. The fusion ops are written
once, in TensorFlow, for graphs and numpy callers alike: they accept arrays or tensors and return
tensors (``np.asarray`` turns one into an array).
"""

from __future__ import annotations

import json
import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from affect_tf.config import SVM_KERNELS

LINEAR_WEIGHTS_FILE = "svm.npz"
RBF_MODEL_FILE = "svm.joblib"
META_FILE = "svm.json"
POOLINGS = ("max", "sum")
# Enough iterations for LinearSVC to converge on (K + 1) * 2 probability features.
_LINEAR_MAX_ITER = 100_000


def _probabilities(global_probs, region_probs) -> tuple[tf.Tensor, tf.Tensor]:
    """Both inputs as tensors of ``global_probs``' dtype (an array's own; float32 for lists)."""
    global_probs = tf.convert_to_tensor(global_probs)
    return global_probs, tf.cast(tf.convert_to_tensor(region_probs), global_probs.dtype)


def max_pooling(global_probs, region_probs) -> tf.Tensor:
    """Elementwise maximum of the whole-image and the K region predictions (Eq. 6).

    Rows of the result need not sum to 1; the predicted class is its argmax. Empty region slots
    holding the whole-image prediction (METHOD.md, C5) leave the result unchanged.

    Args:
        global_probs: ``[B, C]`` whole-image probabilities (tensor or array).
        region_probs: ``[B, K, C]`` region probabilities.

    Returns:
        ``[B, C]`` tensor of ``global_probs``' dtype; numpy callers take ``np.asarray`` of it.
    """
    global_probs, region_probs = _probabilities(global_probs, region_probs)
    return tf.maximum(global_probs, tf.reduce_max(region_probs, axis=1))


def sum_pooling(global_probs, region_probs, beta: float, region_valid=None) -> tf.Tensor:
    """Weighted sum of the whole-image and the mean region prediction (Eq. 7).

    Y = (1 - beta) * Y_global + beta * mean_j Y_AR_j, the mean taken over the valid regions only,
    so padding slots never change the result; an image without a valid region gets Y_global.

    Args:
        global_probs: ``[B, C]`` (tensor or array).
        region_probs: ``[B, K, C]``.
        beta: weight of the regions, in [0, 1] (paper: 0.3).
        region_valid: optional ``[B, K]`` bool; None: every slot is a region.

    Returns:
        ``[B, C]`` tensor of ``global_probs``' dtype; numpy callers take ``np.asarray`` of it.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must lie in [0, 1]. Received: beta={beta!r}")
    global_probs, region_probs = _probabilities(global_probs, region_probs)
    # The mean is taken in float64, where the sum of K float32 probabilities is (almost always)
    # exact: the fused score, hence its argmax near a tie, does not depend on summation order.
    regions64 = tf.cast(region_probs, tf.float64)
    if region_valid is None:
        weights = tf.ones_like(regions64[..., 0])
    else:
        weights = tf.cast(tf.convert_to_tensor(region_valid), tf.float64)
    count = tf.reduce_sum(weights, axis=1, keepdims=True)  # [B, 1]
    total = tf.reduce_sum(regions64 * weights[..., None], axis=1)
    mean = tf.where(count > 0, total / tf.maximum(count, 1.0), tf.cast(global_probs, tf.float64))
    fused = tf.cast((1.0 - beta) * global_probs, tf.float64) + beta * mean
    return tf.cast(fused, global_probs.dtype)


# log_probabilities clips probabilities here first: a saturated softmax gives exact zeros.
LOG_PROBABILITY_FLOOR = 1e-6


def concat_features(global_probs, region_probs, kind: str = "probabilities") -> tf.Tensor:
    """The SVM feature of Eq. 8: ``[Y_global, Y_AR_1, ..., Y_AR_K]``.

    Args:
        global_probs: ``[B, C]`` (tensor or array).
        region_probs: ``[B, K, C]`` (best region first; empty slots hold Y_global).
        kind: ``probabilities`` (Eq. 8) or ``log_probabilities`` (``log(max(Y, 1e-6))``
            element-wise; ``FusionConfig.svm_features``).

    Returns:
        ``[B, (K + 1) * C]`` tensor of ``global_probs``' dtype; numpy callers take ``np.asarray``.

    Raises:
        ValueError: ``kind`` is neither.
    """
    if kind not in ("probabilities", "log_probabilities"):
        raise ValueError("kind must be 'probabilities' or 'log_probabilities'. "
                         f"Received: kind={kind!r}")
    global_probs, region_probs = _probabilities(global_probs, region_probs)
    stacked = tf.concat([global_probs[:, None, :], region_probs], axis=1)
    if kind == "log_probabilities":
        stacked = tf.math.log(tf.maximum(stacked, LOG_PROBABILITY_FLOOR))
    return tf.reshape(stacked, [tf.shape(stacked)[0], -1])


@keras.saving.register_keras_serializable(package="affect_tf")
class FusionLayer(keras.layers.Layer):
    """Max (Eq. 6) or sum (Eq. 7) pooling of the global and region predictions, as a layer.

    Concatenation (Eq. 8) is not a pooling: build :func:`concat_features` and
    ``SVMFusion.to_dense_layer()`` instead.

    Args:
        fusion: ``max`` or ``sum``.
        beta: weight of the regions in sum pooling (paper: 0.3); unused by ``max``.
        **kwargs: ``keras.layers.Layer`` arguments.

    Call arguments:
        global_probs: ``[B, C]``.
        region_probs: ``[B, K, C]``.
        region_valid: optional ``[B, K]`` bool (sum pooling averages valid regions only).

    Returns:
        ``[B, C]`` fused scores; argmax is the prediction.
    """

    def __init__(self, fusion: str = "max", beta: float = 0.3, **kwargs):
        super().__init__(**kwargs)
        if fusion not in POOLINGS:
            hint = (" (concatenation is classified by SVMFusion: use concat_features and "
                    "SVMFusion.to_dense_layer())") if fusion == "concat" else ""
            raise ValueError(
                f"fusion must be one of 'max', 'sum'{hint}. Received: fusion={fusion!r}")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must lie in [0, 1]. Received: beta={beta!r}")
        self.fusion = fusion
        self.beta = beta
        self.built = True  # no weights

    def call(self, global_probs, region_probs, region_valid=None):
        if self.fusion == "max":
            return max_pooling(global_probs, region_probs)
        return sum_pooling(global_probs, region_probs, self.beta, region_valid)

    def compute_output_shape(self, global_probs_shape, region_probs_shape=None,
                             region_valid_shape=None):
        return tuple(global_probs_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"fusion": self.fusion, "beta": self.beta})
        return config


class SVMFusion:
    """SVM on concatenated predictions (Eq. 8); class 1 (positive) where the decision is > 0.

    Train it on predictions the CNN did not train on (validation split or out-of-fold predictions;
    METHOD.md, C6).

    Args:
        kernel: ``linear`` (``LinearSVC``, exportable with :meth:`to_dense_layer`) or ``rbf``
            (``SVC``, evaluation only).
        c: regularization constant C (LIBSVM default: 1).
        seed: ``random_state`` of the solver, so fits are reproducible.
    """

    def __init__(self, kernel: str = "linear", c: float = 1.0, seed: int = 0):
        if kernel not in SVM_KERNELS:
            raise ValueError(
                f"kernel must be one of {', '.join(SVM_KERNELS)}. Received: kernel={kernel!r}")
        if not c > 0:
            raise ValueError(f"c must be > 0. Received: c={c!r}")
        self.kernel = kernel
        self.c = float(c)
        self.seed = int(seed)
        self.feature_dim: int | None = None
        self.coef: np.ndarray | None = None       # linear: [D] float64
        self.intercept: float | None = None       # linear
        self._svc = None                          # rbf: the fitted sklearn.svm.SVC

    @property
    def fitted(self) -> bool:
        return self.feature_dim is not None

    def _check_features(self, features, fitting: bool = False) -> np.ndarray:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2:
            raise ValueError(
                f"features must be 2-D [N, D]. Received: features.shape={features.shape}")
        if not fitting:
            if not self.fitted:
                raise RuntimeError("SVMFusion is not fitted yet: call fit(features, labels) first.")
            if features.shape[1] != self.feature_dim:
                raise ValueError(
                    f"Feature dimension mismatch: expected {self.feature_dim} features per row "
                    f"(as fitted), received {features.shape[1]}. "
                    f"Received: features.shape={features.shape}")
        return features

    def fit(self, features, labels) -> "SVMFusion":
        """Fits the SVM.

        Args:
            features: ``[N, D]`` (e.g. :func:`concat_features`, D = (K + 1) * 2).
            labels: ``[N]`` in {0, 1}, both classes present.

        Returns:
            self.
        """
        # Imported here: graphs that only use the pooling layers need no scikit-learn.
        from sklearn import svm  # pylint: disable=import-outside-toplevel

        features = self._check_features(features, fitting=True)
        labels = np.asarray(labels).reshape(-1)
        if labels.shape[0] != features.shape[0]:
            raise ValueError(
                f"features and labels must have the same length. Received: "
                f"features.shape={features.shape}, labels.shape={labels.shape}")
        values = set(np.unique(labels).tolist())
        if not values <= {0, 1}:
            raise ValueError(
                "labels must be 0 (negative) or 1 (positive). "
                f"Received: label values {sorted(values)}")
        if len(values) < 2:
            raise ValueError(
                "labels must contain both classes (0 and 1) to fit an SVM. "
                f"Received: only {sorted(values)}")
        labels = labels.astype(np.int64)
        if self.kernel == "linear":
            model = svm.LinearSVC(C=self.c, random_state=self.seed, max_iter=_LINEAR_MAX_ITER,
                                  dual="auto")
            model.fit(features, labels)
            # classes_ is [0, 1], so decision > 0 means class 1 (positive).
            self.coef = model.coef_.reshape(-1).astype(np.float64)
            self.intercept = float(model.intercept_.reshape(-1)[0])
            self._svc = None
        else:
            # gamma="scale" (scikit-learn's default) adapts to the feature spread; LIBSVM's
            # 1/D default is the same order for probability features.
            model = svm.SVC(kernel="rbf", C=self.c, gamma="scale", random_state=self.seed)
            model.fit(features, labels)
            self._svc = model
            self.coef = None
            self.intercept = None
        self.feature_dim = int(features.shape[1])
        return self

    def decision_function(self, features) -> np.ndarray:
        """Signed distance to the margin, ``[N]`` float64; > 0 means positive (class 1)."""
        features = self._check_features(features)
        if self.kernel == "linear":
            return features @ self.coef + self.intercept
        return np.asarray(self._svc.decision_function(features), dtype=np.float64)

    def predict(self, features) -> np.ndarray:
        """Predicted labels ``[N]`` int64 (1 = positive, 0 = negative)."""
        return (self.decision_function(features) > 0).astype(np.int64)

    def save(self, directory: str) -> None:
        """Writes ``svm.json`` (kernel, C, seed, feature dim) and ``svm.npz`` (linear: coef,
        intercept) or ``svm.joblib`` (rbf) into ``directory`` (created if needed)."""
        if not self.fitted:
            raise RuntimeError("SVMFusion is not fitted yet: call fit(features, labels) first.")
        os.makedirs(directory, exist_ok=True)
        meta = {"kernel": self.kernel, "c": self.c, "seed": self.seed,
                "feature_dim": self.feature_dim}
        if self.kernel == "linear":
            np.savez(os.path.join(directory, LINEAR_WEIGHTS_FILE), coef=self.coef,
                     intercept=np.array([self.intercept]))
        else:
            import joblib  # pylint: disable=import-outside-toplevel
            joblib.dump(self._svc, os.path.join(directory, RBF_MODEL_FILE))
        with open(os.path.join(directory, META_FILE), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2)

    @classmethod
    def load(cls, directory: str) -> "SVMFusion":
        """Reads an SVM written by :meth:`save`."""
        meta_path = os.path.join(directory, META_FILE)
        if not os.path.isfile(meta_path):
            raise FileNotFoundError(
                f"No saved SVM in {directory!r}: {META_FILE} is missing.")
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        svm_fusion = cls(kernel=meta["kernel"], c=meta["c"], seed=meta.get("seed", 0))
        if svm_fusion.kernel == "linear":
            with np.load(os.path.join(directory, LINEAR_WEIGHTS_FILE)) as data:
                svm_fusion.coef = data["coef"].astype(np.float64)
                svm_fusion.intercept = float(data["intercept"][0])
        else:
            import joblib  # pylint: disable=import-outside-toplevel
            svm_fusion._svc = joblib.load(os.path.join(directory, RBF_MODEL_FILE))
        svm_fusion.feature_dim = int(meta["feature_dim"])
        return svm_fusion

    def to_dense_layer(self, name: str = "svm_fusion") -> keras.layers.Dense:
        """The linear SVM as a built ``Dense(2)`` layer for the exported graph.

        Its logits are ``[0, d]`` with d the decision value, so ``argmax`` equals :meth:`predict`
        (ties at d = 0 go to class 0 in both) and ``softmax`` gives ``sigmoid(d)`` for positive.

        Raises:
            ValueError: the kernel is not linear (kernel SVMs are evaluation-only).
        """
        if self.kernel != "linear":
            raise ValueError(
                "Only a linear SVM can be exported as a Dense layer; kernel SVMs are "
                "evaluation-only. Fit SVMFusion(kernel='linear') to export. "
                f"Received: kernel={self.kernel!r}")
        if not self.fitted:
            raise RuntimeError("SVMFusion is not fitted yet: call fit(features, labels) first.")
        layer = keras.layers.Dense(2, name=name)
        layer.build((None, self.feature_dim))
        kernel = np.zeros((self.feature_dim, 2), np.float32)
        kernel[:, 1] = self.coef
        bias = np.array([0.0, self.intercept], np.float32)
        layer.set_weights([kernel, bias])
        return layer
