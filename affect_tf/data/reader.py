"""Reading a prepared dataset: every example with its image still encoded, and the label index.

Images stay encoded bytes here (``tfds.decode.SkipDecoding``): they are decoded by content later,
in the tf.data pipeline or by the proposal stage. Examples are joined to everything else (splits,
proposal cache) by the content-stable ``image/filename`` key, never by ``tfds_id``, which depends
on sharding (ARCHITECTURE.md).
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

FILENAME_KEY = "image/filename"


def _skip_image_decoding(builder: tfds.core.DatasetBuilder) -> dict:
    """Decoders that keep every Image feature as encoded bytes (decoded later, by content)."""
    return {
        key: tfds.decode.SkipDecoding()
        for key, feature in builder.info.features.items()
        if isinstance(feature, tfds.features.Image)
    }


def _read(builder: tfds.core.DatasetBuilder, split: str) -> tf.data.Dataset:
    return builder.as_dataset(
        split=split, shuffle_files=False, decoders=_skip_image_decoding(builder),
        read_config=tfds.ReadConfig(try_autocache=False))


@dataclasses.dataclass(frozen=True)
class DatasetIndex:
    """Labels and bookkeeping of every example, without images.

    Attributes:
        filenames: [N] str, the content-stable ``image/filename`` keys.
        labels: [N] int, 0 = negative, 1 = positive.
        official_splits: [N] str, the builder split each example comes from.
        folds: [N] int, the official fold (Twitter II) or -1.
    """

    filenames: np.ndarray
    labels: np.ndarray
    official_splits: np.ndarray
    folds: np.ndarray


def read_index(builder: tfds.core.DatasetBuilder) -> DatasetIndex:
    """Reads filenames, labels, official splits and folds of every example (images skipped).

    Raises:
        ValueError: two examples share an ``image/filename`` (it is the join key).
    """
    filenames, labels, splits, folds = [], [], [], []
    has_fold = "fold" in builder.info.features
    for split in sorted(builder.info.splits.keys()):
        dataset = _read(builder, split).map(
            lambda ex: (ex[FILENAME_KEY], ex["label"], ex["fold"] if has_fold else -1),
            num_parallel_calls=tf.data.AUTOTUNE)
        for filename, label, fold in dataset.as_numpy_iterator():
            filenames.append(filename.decode("utf-8"))
            labels.append(int(label))
            splits.append(split)
            folds.append(int(fold))
    if len(set(filenames)) != len(filenames):
        raise ValueError(
            f"{builder.name}: image/filename must be unique; found {len(filenames)} examples but "
            f"{len(set(filenames))} distinct filenames")
    return DatasetIndex(
        np.asarray(filenames, dtype=object), np.asarray(labels, dtype=np.int64),
        np.asarray(splits, dtype=object), np.asarray(folds, dtype=np.int64))


def examples(builder: tfds.core.DatasetBuilder,
             filenames: Iterable[str] | None = None) -> tf.data.Dataset:
    """Every example of the builder (all splits), images as encoded bytes, optionally filtered.

    Args:
        builder: a prepared builder.
        filenames: keep only these ``image/filename`` keys (None: all), e.g. one part of
            :func:`affect_tf.data.splits.protocol_splits`.

    Returns:
        A dataset of feature dicts in a deterministic order.
    """
    datasets = [_read(builder, split) for split in sorted(builder.info.splits.keys())]
    dataset = datasets[0]
    for other in datasets[1:]:
        dataset = dataset.concatenate(other)
    if filenames is not None:
        keys = tf.constant(sorted(filenames), dtype=tf.string)
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, tf.ones_like(keys, dtype=tf.int64)), 0)
        dataset = dataset.filter(lambda ex: table.lookup(ex[FILENAME_KEY]) > 0)
    return dataset


def encoded_images(builder: tfds.core.DatasetBuilder) -> Iterator[tuple[str, bytes]]:
    """Yields ``(image/filename, encoded image bytes)`` of every example, for the proposal stage."""
    dataset = examples(builder).map(lambda ex: (ex[FILENAME_KEY], ex["image"]))
    for filename, data in dataset.as_numpy_iterator():
        yield filename.decode("utf-8"), data


def damaged_record_files(builder: tfds.core.DatasetBuilder) -> list[str]:
    """The prepared dataset's TFRecord files that fail their CRC checks (read whole, in order).

    A TFRecord stores a CRC-32C of every record; TensorFlow's reader stops at the first mismatch
    with a DataLossError that names no file. This finds which file it was.
    """
    damaged = []
    for path in sorted(tf.io.gfile.glob(f"{builder.data_dir}/*.tfrecord*")):
        try:
            for _ in tf.data.TFRecordDataset(path):
                pass
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError):
            damaged.append(path)
    return damaged
