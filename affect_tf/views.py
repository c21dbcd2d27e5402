"""The whole-image view: what the CNN sees of a whole image at test time, in one place.

The evaluation, the regions' fallback, the pretrained-features baseline and the served model all
take their whole-image probabilities here. Images come in as the evaluation warps them
(``[B, R, R, 3]``, RGB 0-255, R = ``region_image_size``); they are resized to ``resize_size`` as
in training, then centre-cropped to the CNN's input side (one view) or cut into the authors' ten
crops (4 corners + centre, each mirrored), whose softmaxes are averaged.
"""

from __future__ import annotations

import tensorflow as tf

from affect_tf.data.transforms import center_crop, ten_crops


def whole_image_views(images: tf.Tensor, *, image_size: int, resize_size: int,
                      ten_crop: bool) -> tf.Tensor:
    """The views ``[V, B, S, S, 3]`` of ``images`` [B, R, R, 3] (S = ``image_size``; V = 1, or
    10 with ``ten_crop``)."""
    images = tf.image.resize(images, [resize_size, resize_size])
    if ten_crop:
        return ten_crops(images, image_size)
    return center_crop(images, image_size)[tf.newaxis]


def whole_image_probs(classifier, images: tf.Tensor, *, image_size: int, resize_size: int,
                      ten_crop: bool) -> tf.Tensor:
    """Whole-image class probabilities ``[B, 2]`` float32: the softmax of the classifier on
    :func:`whole_image_views`, averaged over the ten views with ``ten_crop``."""
    views = whole_image_views(tf.cast(images, tf.float32), image_size=image_size,
                              resize_size=resize_size, ten_crop=ten_crop)
    if ten_crop:
        flat = tf.reshape(views, [-1, image_size, image_size, 3])
        probs = tf.nn.softmax(tf.cast(classifier(flat, training=False), tf.float32), axis=-1)
        return tf.reduce_mean(tf.reshape(probs, [10, -1, probs.shape[-1]]), axis=0)
    return tf.nn.softmax(tf.cast(classifier(views[0], training=False), tf.float32), axis=-1)


def view_settings(config) -> dict:
    """The view's settings of a run :class:`~affect_tf.config.Config`, as keyword arguments."""
    return {"image_size": config.model.image_size, "resize_size": config.model.resize_size,
            "ten_crop": config.evaluation.ten_crop}
