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


# The aspect ratios a random_area crop may take (width / height), as Inception-style crops do.
RANDOM_AREA_ASPECT_RANGE = (3.0 / 4.0, 4.0 / 3.0)


def train_transform(image: tf.Tensor, resize_size: int, crop_size: int, seed: tf.Tensor,
                    augmentation: str = "paper", crop_area_min: float = 0.08) -> tf.Tensor:
    """One training view of an image, then a random mirror.

    * ``paper`` (the authors' code): warp to resize_size^2, random crop_size^2 window.
    * ``random_area``: a random box covering [crop_area_min, 1] of the image's area with a width /
      height ratio in [3/4, 4/3], cut from the decoded image at its own resolution and warped to
      crop_size^2 (the Inception-style crop of Model Garden's classification input). The CNN then
      also sees objects at the scale of the region crops it scores later (a region is a box of the
      full-resolution image warped to the input size, ``regions.crop_regions``).

    Args:
        image: uint8 [H, W, 3].
        resize_size: side of the square the image is warped to (256; ``paper`` only).
        crop_size: side of the output (the CNN input, 224).
        seed: int [2] stateless seed.
        augmentation: ``paper`` or ``random_area`` (``TrainConfig.augmentation``).
        crop_area_min: smallest area fraction of a ``random_area`` box, in (0, 1].

    Returns:
        float32 [crop_size, crop_size, 3], RGB in [0, 255].
    """
    seeds = tf.random.experimental.stateless_split(seed, 2)
    if augmentation == "paper":
        resized = tf.image.resize(image, [resize_size, resize_size])
        crop = tf.image.stateless_random_crop(resized, [crop_size, crop_size, 3], seed=seeds[0])
    elif augmentation == "random_area":
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
            seed=seeds[0], min_object_covered=0.0, aspect_ratio_range=RANDOM_AREA_ASPECT_RANGE,
            area_range=(crop_area_min, 1.0), max_attempts=100,
            use_image_if_no_bounding_boxes=True)
        box = tf.slice(image, begin, size)
        crop = tf.image.resize(box, [crop_size, crop_size])
    else:
        raise ValueError("augmentation must be 'paper' or 'random_area'. "
                         f"Received: augmentation={augmentation!r}")
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
