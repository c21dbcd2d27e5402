"""Where the classifier looks (the paper's Section 5): occlusion sensitivity and Grad-CAM.

* :func:`occlusion_map`: occlusion sensitivity (Zeiler & Fergus, 2014): a grey square slides over
  the image and the drop of the target class's probability marks what the decision rests on;
* :func:`grad_cam`: Grad-CAM (Selvaraju et al., 2017) on the last convolution layer;
* :func:`plot_saliency`: the image and both maps side by side, as one PNG.

The classifier is any Keras model from float RGB images in [0, 255] ``[B, H, W, 3]`` to ``[B, C]``
class scores: logits, as :func:`affect_tf.model.build_classifier` gives (a softmax is applied
here), or probabilities from a softmax layer (``from_logits=None`` tells them apart by the last
layer). Pure functions: nothing is written but :func:`plot_saliency`'s PNG.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

# visualize selects the headless Agg backend on import (pyplot picks its backend at the first
# figure, so the order of these imports does not matter).
from affect_tf import visualize
from affect_tf.config import LABEL_NAMES
from affect_tf.model import IMAGENET_BGR_MEAN

# The default occluder: the ImageNet mean colour (RGB). The classifier's first layer
# (VGGPreprocess) subtracts exactly this mean, so the square becomes zeros at the first
# convolution: no signal, rather than a grey that is itself a (dark) colour feature. 127.5 would
# leave a bias of up to 24 grey levels per channel.
IMAGENET_RGB_MEAN = tuple(reversed(IMAGENET_BGR_MEAN))


@dataclasses.dataclass(frozen=True)
class OcclusionResult:
    """:func:`occlusion_map`'s answer; ``R`` x ``C`` occluder positions on an ``H`` x ``W`` image.

    Attributes:
        probabilities: ``[R, C]`` float32, the target class's probability with the square there.
        drop: ``[R, C]`` float32, ``base_probability - probabilities`` (high = important).
        centres: ``[R, C, 2]`` float32, each square's centre ``(y, x)`` in pixels (the image
            spans ``[0, H] x [0, W]``).
        heat_map: ``[H, W]`` float32, each pixel the mean drop of the squares covering it.
        base_probability: the target class's probability on the unoccluded image.
        patch, stride: the square's side and step in pixels; target_class: the class scored.
    """

    probabilities: np.ndarray
    drop: np.ndarray
    centres: np.ndarray
    heat_map: np.ndarray
    base_probability: float
    patch: int
    stride: int
    target_class: int


@dataclasses.dataclass(frozen=True)
class GradCamResult:
    """:func:`grad_cam`'s answer: ``heat_map`` ``[H, W]`` float32 in [0, 1], the ``layer_name``
    it was taken at, and the target class's ``probability`` on the image."""

    heat_map: np.ndarray
    layer_name: str
    probability: float


def _outputs_logits(classifier: keras.Model, from_logits: bool | None) -> bool:
    """Logits unless the last layer is (or ends in) a softmax; ``sentiment_logits`` is not."""
    if from_logits is not None:
        return bool(from_logits)
    last = classifier.layers[-1]
    return not (isinstance(last, keras.layers.Softmax)
                or getattr(last, "activation", None) is keras.activations.softmax)


def _checked_inputs(classifier: keras.Model, image, target_class) -> np.ndarray:
    """``image`` as float32 ``[H, W, 3]`` fitting the classifier's input, or ValueError."""
    array = np.asarray(image, dtype=np.float32)
    if array.ndim != 3 or array.shape[-1] != 3 or 0 in array.shape:
        raise ValueError(f"image must be one RGB image [H, W, 3] (values 0..255), H, W > 0. "
                         f"Received: shape={np.shape(image)}")
    if not np.all(np.isfinite(array)):
        raise ValueError("image must hold finite values (RGB 0..255). Received: NaN or inf")
    expected = tuple(classifier.input_shape[1:3])
    if any(want is not None and want != got for want, got in zip(expected, array.shape[:2])):
        raise ValueError(f"The classifier takes {expected} images; resize the image first. "
                         f"Received: image of shape {array.shape}")
    classes = classifier.output_shape[-1]
    if isinstance(target_class, bool) or int(target_class) != target_class \
            or not 0 <= target_class < classes:
        raise ValueError(f"target_class must be a class index in [0, {classes}). "
                         f"Received: target_class={target_class!r}")
    return array


def _starts(size: int, patch: int, stride: int) -> np.ndarray:
    """Square positions along one side; the last one flush with the edge, so every pixel is
    covered (the heat map is then defined everywhere)."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return np.asarray(starts, np.int32)


# Kept per classifier and shape: the figures of several images of one run then trace once (a
# new tf.function per call would trace its graph again for every image).
@functools.lru_cache(maxsize=4)
def _occlusion_graph(classifier: keras.Model, logits: bool, height: int, width: int,
                     batch_size: int):
    """One tf.function: ``(image, tops, lefts, patch, fill, target) -> [N]`` probabilities.

    ``tops``, ``lefts`` ``[N]`` (N a multiple of ``batch_size``) place the squares; a top of
    ``height`` puts one outside the image (the unoccluded image and the padding). A batch's
    images come from broadcast masks; the while loop over batches (``tf.range``) keeps one copy
    of the classifier in the graph however many batches there are.
    """
    rows, columns = tf.range(height)[None, :, None], tf.range(width)[None, None, :]

    @tf.function(reduce_retracing=True)
    def probabilities(image, tops, lefts, patch, fill, target):
        batches = tf.shape(tops)[0] // batch_size
        result = tf.TensorArray(tf.float32, size=batches)
        for index in tf.range(batches):
            top = tops[index * batch_size:(index + 1) * batch_size, None, None]
            left = lefts[index * batch_size:(index + 1) * batch_size, None, None]
            inside = ((rows >= top) & (rows < top + patch)
                      & (columns >= left) & (columns < left + patch))  # [B, H, W]
            occluded = tf.where(inside[..., None], fill, image[None])  # [B, H, W, 3]
            scores = tf.cast(classifier(occluded, training=False), tf.float32)
            if logits:
                scores = tf.nn.softmax(scores, axis=-1)
            result = result.write(index, tf.gather(scores, target, axis=1))
        return result.concat()

    return probabilities


def occlusion_map(classifier: keras.Model, image, target_class: int, *,
                  patch_fraction: float = 0.25, stride_fraction: float = 0.125, fill=None,
                  batch_size: int = 64, from_logits: bool | None = None) -> OcclusionResult:
    """Occlusion sensitivity of one image: the target probability with a square hidden anywhere.

    Square side ``round(patch_fraction * min(H, W))`` pixels, step ``round(stride_fraction *
    min(H, W))`` (each >= 1); the last positions sit flush with the bottom and right edges. The
    ``P`` positions and the unoccluded image are classified in one graph, ``batch_size`` images
    per classifier call: ``ceil((P + 1) / batch_size)`` calls (the last batch padded).

    Args:
        classifier: float RGB ``[B, H, W, 3]`` in [0, 255] -> ``[B, C]`` logits or probabilities.
        image: RGB ``[H, W, 3]`` in [0, 255] (any numeric dtype), the classifier's input size.
        target_class: the class whose probability is tracked, in ``[0, C)``.
        patch_fraction, stride_fraction: side and step over the shorter side, each in (0, 1].
        fill: the square's colour, a grey level or ``(R, G, B)``; None: :data:`IMAGENET_RGB_MEAN`.
        batch_size: occluded images per classifier call, >= 1.
        from_logits: whether the classifier outputs logits; None: :func:`_outputs_logits`.

    Returns:
        An :class:`OcclusionResult`: grid ``[R, C]``, drop, centres, ``[H, W]`` heat map.

    Raises:
        ValueError: not one RGB image of the classifier's size, a class out of range, a
            fraction outside (0, 1], ``batch_size`` < 1, or a fill that is not 1 or 3 values.
    """
    array = _checked_inputs(classifier, image, target_class)
    for name, value in (("patch_fraction", patch_fraction), ("stride_fraction", stride_fraction)):
        if not 0 < value <= 1:
            raise ValueError(f"{name} must be in (0, 1] (a share of the image's shorter side). "
                             f"Received: {name}={value!r}")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer. Received: {batch_size=!r}")
    try:
        fill_rgb = np.asarray(IMAGENET_RGB_MEAN if fill is None else fill, np.float32).ravel()
    except (TypeError, ValueError):
        fill_rgb = np.asarray([np.nan])
    if fill_rgb.size not in (1, 3) or not np.all(np.isfinite(fill_rgb)):
        raise ValueError(f"fill must be a grey level or 3 values (R, G, B) in [0, 255]. "
                         f"Received: {fill=!r}")
    fill_rgb = np.broadcast_to(fill_rgb, (3,)).copy()

    height, width = array.shape[:2]
    side = min(height, width)
    patch = max(1, round(patch_fraction * side))
    stride = max(1, round(stride_fraction * side))
    tops, lefts = _starts(height, patch, stride), _starts(width, patch, stride)
    grid = (tops.size, lefts.size)
    positions = tops.size * lefts.size
    # The unoccluded image is one more "position", placed below the image; padding repeats it.
    batch = min(int(batch_size), positions + 1)
    total = -(-(positions + 1) // batch) * batch
    all_tops = np.full(total, height, np.int32)
    all_lefts = np.zeros(total, np.int32)
    all_tops[:positions] = np.repeat(tops, lefts.size)
    all_lefts[:positions] = np.tile(lefts, tops.size)

    run = _occlusion_graph(classifier, _outputs_logits(classifier, from_logits), height, width,
                           batch)
    scores = run(tf.constant(array), tf.constant(all_tops), tf.constant(all_lefts),
                 tf.constant(patch, tf.int32), tf.constant(fill_rgb),
                 tf.constant(int(target_class), tf.int32)).numpy()
    base = float(scores[positions])
    probabilities = scores[:positions].reshape(grid)
    drop = (base - probabilities).astype(np.float32)

    # Mean drop of the squares over each pixel, separably: with rows [R, H] and columns [C, W]
    # (which squares cover which row / column), the sum is rows^T @ drop @ columns: no P masks.
    rows = (np.arange(height) >= tops[:, None]) & (np.arange(height) < tops[:, None] + patch)
    columns = (np.arange(width) >= lefts[:, None]) & (np.arange(width) < lefts[:, None] + patch)
    total_drop = rows.T.astype(np.float64) @ drop @ columns.astype(np.float64)
    count = np.outer(rows.sum(0), columns.sum(0))  # >= 1 everywhere: _starts covers every pixel
    centres = np.stack(np.meshgrid(tops + patch / 2, lefts + patch / 2, indexing="ij"), axis=-1)
    return OcclusionResult(
        probabilities=probabilities.astype(np.float32), drop=drop,
        centres=centres.astype(np.float32), heat_map=(total_drop / count).astype(np.float32),
        base_probability=base, patch=patch, stride=stride, target_class=int(target_class))


def _flat_layers(model: keras.Model):
    """Every layer that is not itself a model, nested models opened, in graph order."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _flat_layers(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            yield layer


def _output_rank(layer) -> int | None:
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError):  # a layer never called, or shared (several outputs)
        return None


def _last_conv_layer(classifier: keras.Model, layer_name: str | None) -> str:
    """``layer_name`` checked (a rank-4 layer of the classifier), or the last convolution: the
    last rank-4 layer with a kernel (block5_conv3 for VGG16, not block5_pool, which halves the
    map's resolution and adds nothing Grad-CAM can weigh)."""
    maps = [layer for layer in _flat_layers(classifier) if _output_rank(layer) == 4]
    if layer_name is None:
        convolutions = [layer for layer in maps if getattr(layer, "kernel", None) is not None]
        if not convolutions:
            raise ValueError(f"{classifier.name} has no convolution layer (rank-4 output with a "
                             f"kernel) for Grad-CAM. Received: layers "
                             f"{[layer.name for layer in _flat_layers(classifier)]}")
        return convolutions[-1].name
    if layer_name not in {layer.name for layer in maps}:
        raise ValueError(f"layer_name must name a layer of {classifier.name} with a rank-4 "
                         f"output [B, h, w, k]; such layers: {[layer.name for layer in maps]}. "
                         f"Received: layer_name={layer_name!r}")
    return layer_name


def _two_outputs(model: keras.Model, layer_name: str):
    """``x -> (the layer's output, the model's output)``, through nested models.

    At the top level: one ``keras.Model`` with both outputs. Inside a nested model, whose inner
    tensors Keras 3 cannot wire to the outer inputs: the top-level layers replayed as a chain,
    the nested one split likewise (:func:`grad_cam` checks the replay's output).
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    for layer in layers:
        if layer.name == layer_name:
            split = keras.Model(model.inputs, [layer.output, model.outputs[0]])
            return lambda x: split(x, training=False)
    holder = next(layer for layer in layers if isinstance(layer, keras.Model)
                  and layer_name in {inner.name for inner in _flat_layers(layer)})
    inner = _two_outputs(holder, layer_name)

    def chain(x):
        for layer in layers:
            if layer is holder:
                features, x = inner(x)
            else:
                x = layer(x, training=False)
        return features, x

    return chain


def grad_cam(classifier: keras.Model, image, target_class: int, *, layer_name: str | None = None,
             from_logits: bool | None = None) -> GradCamResult:
    """Grad-CAM: a convolution layer's maps ``[h, w, k]`` weighted by the spatial mean of the
    target score's gradient, summed, ReLU, resized (bilinear) to ``[H, W]``, scaled to max 1.

    The score is the target logit (Selvaraju et al.: before the softmax) for a logits classifier,
    else the target probability (for 2 classes the same map, but it fades where the softmax
    saturates).

    Args:
        classifier: float RGB ``[B, H, W, 3]`` in [0, 255] -> ``[B, C]`` logits or probabilities;
            functional or sequential, possibly with nested models (e.g. a VGG16 base).
        image: RGB ``[H, W, 3]`` in [0, 255], the classifier's input size.
        target_class: the class explained, in ``[0, C)``.
        layer_name: the layer whose maps are weighted; None: the last convolution.
        from_logits: as in :func:`occlusion_map`.

    Returns:
        A :class:`GradCamResult`: ``heat_map`` ``[H, W]`` float32 in [0, 1] (all zeros when no
        location raises the score), the layer's name, the target's probability.

    Raises:
        ValueError: bad image or class (as :func:`occlusion_map`), a ``layer_name`` that is not
            a rank-4 layer, or a nested model that is not a chain of layers.
    """
    array = _checked_inputs(classifier, image, target_class)
    logits = _outputs_logits(classifier, from_logits)
    name = _last_conv_layer(classifier, layer_name)
    split = _two_outputs(classifier, name)
    batch = tf.constant(array[None])
    with tf.GradientTape() as tape:
        features, outputs = split(batch)
        score = tf.cast(outputs, tf.float32)[0, int(target_class)]
    gradients = tape.gradient(score, features)  # [1, h, w, k]
    if not np.allclose(outputs, classifier(batch, training=False), rtol=1e-4, atol=1e-5):
        raise ValueError(f"{classifier.name} could not be replayed up to {name!r}: a nested "
                         "model is followed only through a chain of single-input layers. "
                         f"Received: layer_name={layer_name!r}")
    if gradients is None:  # the score does not depend on the layer: an all-zero map
        gradients = tf.zeros_like(features)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)  # [1, 1, 1, k]
    cam = tf.nn.relu(tf.reduce_sum(tf.cast(features, tf.float32) * weights, axis=-1))[..., None]
    cam = tf.image.resize(cam, array.shape[:2], method="bilinear")[0, ..., 0].numpy()
    peak = float(cam.max())
    # A map with nothing positive stays zeros; dividing would give NaN.
    cam = np.clip(cam / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(cam)
    probabilities = tf.nn.softmax(outputs, axis=-1) if logits else outputs
    return GradCamResult(heat_map=cam.astype(np.float32), layer_name=name,
                         probability=float(probabilities[0, int(target_class)]))


def plot_saliency(image, occlusion: OcclusionResult, cam: GradCamResult,
                  path: str | pathlib.Path, *, title: str | None = None) -> pathlib.Path:
    """Three panels in one PNG: the image, the occlusion drop over it, Grad-CAM over it.

    The drop's scale is diverging, centred on 0 (red: hiding it lowers the target probability;
    blue: raises it); Grad-CAM's is [0, 1].

    Args:
        image: RGB ``[H, W, 3]`` in [0, 255].
        occlusion: :func:`occlusion_map`'s result for this image.
        cam: :func:`grad_cam`'s result for this image.
        path: the PNG file (folder created, written atomically by :func:`visualize.save_png`).
        title: an optional line above the panels.

    Returns:
        ``path`` as a :class:`pathlib.Path`.
    """
    shown = np.clip(np.asarray(image, np.float64), 0, 255).astype(np.uint8)
    limit = max(float(np.abs(occlusion.heat_map).max()), 1e-6)
    figure, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    axes[0].imshow(shown)
    target = occlusion.target_class
    name = LABEL_NAMES[target] if target < len(LABEL_NAMES) else f"class {target}"
    axes[0].set_title(f"image: P({name}) = {occlusion.base_probability:.3f}", fontsize=9)
    axes[1].imshow(shown)
    drop = axes[1].imshow(occlusion.heat_map, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.6)
    axes[1].set_title(f"occlusion drop ({occlusion.patch} px square, "
                      f"stride {occlusion.stride})", fontsize=9)
    axes[2].imshow(shown)
    heat = axes[2].imshow(cam.heat_map, cmap="jet", vmin=0, vmax=1, alpha=0.5)
    axes[2].set_title(f"Grad-CAM ({cam.layer_name})", fontsize=9)
    for axis, mappable in zip(axes, (None, drop, heat)):
        axis.axis("off")
        if mappable is not None:
            figure.colorbar(mappable, ax=axis, fraction=0.046, pad=0.04)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return visualize.save_png(figure, path)
