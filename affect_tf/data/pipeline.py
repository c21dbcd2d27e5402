"""The tf.data input pipelines: training batches, and evaluation batches joined to proposals.

Both take a dataset of feature dicts with encoded images (:func:`affect_tf.data.reader.examples`)
and decode by content inside ``map``: no ``tf.py_function``, so nothing here needs Python per
element (ARCHITECTURE.md). Boxes are normalized ``[y1, x1, y2, x2]`` in [0, 1].
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from affect_tf.data.reader import FILENAME_KEY
from affect_tf.data.transforms import (
    center_crop,
    decode_image_tensor,
    eval_transform,
    train_transform,
)

if TYPE_CHECKING:  # Type only: the data package does not load the OpenCV proposal code.
    from affect_tf.proposals.cache import ProposalArrays


def _proposal_lookup(proposals: ProposalArrays):
    """A function filename -> (boxes [m, 4], objectness [m], num_valid) for tf.data.map.

    Filenames missing from the cache get no candidates (num_valid 0): the image still gets its
    whole-image prediction.
    """
    keys = tf.constant(np.asarray(proposals.filenames, dtype=str).astype(object), dtype=tf.string)
    rows = tf.range(len(proposals.filenames), dtype=tf.int64)
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, rows), -1)
    m = proposals.num_candidates
    # One zero row at the end serves every missing filename.
    boxes = tf.constant(np.concatenate([proposals.boxes, np.zeros((1, m, 4), np.float32)]))
    objectness = tf.constant(np.concatenate([proposals.objectness, np.zeros((1, m), np.float32)]))
    num_valid = tf.constant(np.concatenate([proposals.num_valid, [0]]).astype(np.int32))
    missing_row = tf.constant(len(proposals.filenames), tf.int64)

    def lookup(filename: tf.Tensor):
        row = table.lookup(filename)
        row = tf.where(row < 0, missing_row, row)
        return tf.gather(boxes, row), tf.gather(objectness, row), tf.gather(num_valid, row)

    return lookup


def training_pipeline(
        dataset: tf.data.Dataset, *, image_size: int, resize_size: int, batch_size: int, seed: int,
        shuffle_buffer: int = 2048, skip_batches: int = 0, augmentation: str = "paper",
        crop_area_min: float = 0.08,
) -> tf.data.Dataset:
    """Whole-image training batches: shuffled, repeated, augmented (Section 4.2).

    The sequence of batches depends only on ``dataset``'s order and ``seed``: the shuffle and
    every augmentation are seeded. A run resumed at step s passes ``skip_batches=s`` and gets
    exactly the batches s, s+1, ... that an uninterrupted run sees, so it ends with the same
    weights. The skipped elements are drawn through the shuffle (same order) but never decoded.

    Args:
        dataset: feature dicts with ``image`` (encoded) and ``label``, in a fixed order.
        image_size: side of the random crop (the CNN input).
        resize_size: side of the square each image is warped to first.
        batch_size: images per batch (the remainder of each pass is carried over, never dropped:
            the stream is endless).
        seed: the shuffle's and the augmentation's seed.
        shuffle_buffer: elements of the shuffle buffer.
        skip_batches: batches to skip from the start (the step a resumed run starts at).
        augmentation: ``paper`` or ``random_area`` (``transforms.train_transform``).
        crop_area_min: smallest area fraction of a ``random_area`` crop.

    Yields:
        (images float32 [B, image_size, image_size, 3] RGB 0-255, labels int64 [B]).
    """
    if skip_batches < 0:
        raise ValueError(f"skip_batches must be >= 0. Received: skip_batches={skip_batches}")
    dataset = dataset.map(lambda ex: (ex["image"], ex["label"]))
    dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()
    # One stateless seed per element: augmentation is reproducible whatever the parallelism.
    dataset = tf.data.Dataset.zip((dataset, tf.data.Dataset.random(seed=seed).batch(2)))
    # Before the decoding map: a resume skips the elements of finished steps without decoding.
    dataset = dataset.skip(skip_batches * batch_size)

    def transform(example, element_seed):
        encoded, label = example
        image = train_transform(decode_image_tensor(encoded), resize_size, image_size, element_seed,
                                augmentation, crop_area_min)
        return image, label

    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def calibration_pipeline(
        dataset: tf.data.Dataset, *, image_size: int, resize_size: int, batch_size: int,
) -> tf.data.Dataset:
    """Whole images in their evaluation view, in the dataset's order, once: for statistics.

    Each image is warped to ``resize_size`` and centre-cropped to ``image_size``, the view
    :func:`affect_tf.evaluate.whole_image_views` gives the CNN at test time.

    Yields:
        images float32 [B, image_size, image_size, 3] RGB 0-255 (the last batch may be smaller).
    """
    def view(example):
        image = eval_transform(decode_image_tensor(example["image"]), resize_size)
        return center_crop(image[tf.newaxis], image_size)[0]

    return dataset.map(view, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(
        tf.data.AUTOTUNE)


def evaluation_pipeline(
        dataset: tf.data.Dataset, *, resize_size: int, batch_size: int,
        proposals: ProposalArrays | None = None, extra_keys: tuple[str, ...] = (),
) -> tf.data.Dataset:
    """Evaluation batches in a deterministic order, with the image's proposals joined.

    Args:
        dataset: feature dicts with ``image`` (encoded), ``label``, ``image/filename``.
        resize_size: side of the square every image is warped to.
        batch_size: images per batch (the last batch may be smaller).
        proposals: the proposal cache's arrays, joined by ``image/filename`` (any row order);
            None: no proposal keys in the batches.
        extra_keys: further features passed through unchanged.

    Yields:
        dicts with ``image`` float32 [B, resize_size, resize_size, 3] RGB 0-255, ``label`` [B],
        ``filename`` [B] string, and with proposals ``boxes`` [B, m, 4] normalized
        [y1, x1, y2, x2], ``objectness`` [B, m], ``num_valid`` [B] int32; plus ``extra_keys``.
    """
    lookup = _proposal_lookup(proposals) if proposals is not None else None

    def transform(example):
        features = {
            "image": eval_transform(decode_image_tensor(example["image"]), resize_size),
            "label": example["label"],
            "filename": example[FILENAME_KEY],
        }
        for key in extra_keys:
            features[key] = example[key]
        if lookup is not None:
            features["boxes"], features["objectness"], features["num_valid"] = lookup(
                example[FILENAME_KEY])
        return features

    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
