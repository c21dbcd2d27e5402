"""Image ops of the input pipeline: decoding by content, training augmentation, test crops.

TensorFlow ops only, so they run eagerly, inside ``tf.data.Dataset.map`` and in a served graph.
Images are RGB: uint8 ``[H, W, 3]`` once decoded, float32 in [0, 255] once resized (the
classifier subtracts the mean itself).
"""

from __future__ import annotations

import tensorflow as tf


def decode_image_tensor(encoded: tf.Tensor) -> tf.Tensor:
    """Decodes JPEG / PNG / GIF / BMP bytes by content to uint8 RGB [H, W, 3] (first GIF frame)."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def train_transform(image: tf.Tensor, resize_size: int, crop_size: int,
                    seed: tf.Tensor) -> tf.Tensor:
    """Training augmentation of the authors' code: warp to resize_size^2, random crop, mirror.

    Args:
        image: uint8 [H, W, 3].
        resize_size: side of the square the image is warped to (256).
        crop_size: side of the random crop (the CNN input, 224).
        seed: int [2] stateless seed.

    Returns:
        float32 [crop_size, crop_size, 3], RGB in [0, 255].
    """
    resized = tf.image.resize(image, [resize_size, resize_size])
    seeds = tf.random.experimental.stateless_split(seed, 2)
    crop = tf.image.stateless_random_crop(resized, [crop_size, crop_size, 3], seed=seeds[0])
    return tf.image.stateless_random_flip_left_right(crop, seed=seeds[1])


def eval_transform(image: tf.Tensor, resize_size: int) -> tf.Tensor:
    """Evaluation: warp to resize_size^2 (normalized boxes keep their meaning under a warp).

    Returns:
        float32 [resize_size, resize_size, 3], RGB in [0, 255].
    """
    return tf.image.resize(image, [resize_size, resize_size])


def center_crop(images: tf.Tensor, crop_size: int) -> tf.Tensor:
    """Central crop_size^2 window of a batch [B, S, S, 3] (the single-crop test of the paper)."""
    size = tf.shape(images)[1]
    offset = (size - crop_size) // 2
    return images[:, offset:offset + crop_size, offset:offset + crop_size, :]


def ten_crops(images: tf.Tensor, crop_size: int) -> tf.Tensor:
    """The authors' 10-crop test: 4 corners + centre, each mirrored.

    Args:
        images: [B, S, S, 3].
        crop_size: side of each crop.

    Returns:
        [10, B, crop_size, crop_size, 3].
    """
    size = tf.shape(images)[1]
    far = size - crop_size
    mid = far // 2
    crops = [images[:, y:y + crop_size, x:x + crop_size, :]
             for y, x in ((0, 0), (0, far), (far, 0), (far, far), (mid, mid))]
    crops += [tf.image.flip_left_right(c) for c in crops]
    return tf.stack(crops)
