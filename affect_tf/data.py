"""Datasets: builder registration, preparation, protocol splits and the tf.data input pipeline.

This is the only module that imports TFDS and registers the builders of ``datasets/``
(importable as ``affect_tf.datasets``). Builders expose a dataset as its owners split it; the
evaluation protocol of the paper (Section 4.2) is derived here, seeded and stratified by label:

* ``holdout`` (FI, Flickr, the demo): 80 % train / 5 % validation / 15 % test, or the builder's
  own ``train``/``validation``/``test`` when it has them (FI with the authors' list files).
* ``official`` (EmotionROI): the official ``train``/``test``; validation carved from train.
* ``official_folds`` (Twitter II): the five official partitions (``fold`` feature) are the folds.
* ``kfold`` (the other small sets): stratified k-fold; validation carved from each training part.

Boxes everywhere are normalized ``[y1, x1, y2, x2]`` in [0, 1].
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import pathlib
from typing import Iterator

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from affect_tf.config import DataConfig

# Sets the paper splits 80 / 5 / 15 at random (Section 4.2); the demo follows the same protocol.
HOLDOUT_DATASETS = frozenset({"fi", "flickr_vso", "affect_demo"})
PROTOCOLS = ("holdout", "official", "official_folds", "kfold")
FILENAME_KEY = "image/filename"


def builder_names() -> list[str]:
    """Names of the builders in ``datasets/`` (folders holding ``<name>_dataset_builder.py``)."""
    import affect_tf.datasets as datasets_package  # noqa: PLC0415  (resolved at call time)

    names = []
    for root in datasets_package.__path__:
        for folder in sorted(pathlib.Path(root).iterdir()):
            if (folder / f"{folder.name}_dataset_builder.py").is_file():
                names.append(folder.name)
    return names


def import_builders() -> None:
    """Imports every builder module, which registers it with TFDS."""
    for name in builder_names():
        importlib.import_module(f"affect_tf.datasets.{name}.{name}_dataset_builder")


def get_builder(config: DataConfig) -> tfds.core.DatasetBuilder:
    """Returns the TFDS builder of ``config.dataset`` (``name`` or ``name/config``).

    Raises:
        ValueError: the name is not one of the project's builders nor a registered TFDS dataset.
    """
    import_builders()
    base_name = config.dataset.split("/")[0].split(":")[0]
    try:
        return tfds.builder(config.dataset, data_dir=config.data_dir or None)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ValueError(
            f"Unknown dataset; expected one of the project's builders {builder_names()} (with "
            f"/config where it has several) or a TFDS dataset. Received: dataset={config.dataset!r}"
            f" ({base_name!r} not found)") from error


def prepare(config: DataConfig, beam_options=None) -> tfds.core.DatasetBuilder:
    """Builds the dataset's TFRecords from the manual download (skipped when already prepared).

    TFDS writes into an ``incomplete`` directory and renames it when done, so a crash never leaves
    a partial dataset behind.

    Args:
        config: which dataset, ``data_dir`` and ``manual_dir``.
        beam_options: ``apache_beam`` PipelineOptions for Beam builders (Flickr); None runs them
            locally with the DirectRunner.

    Returns:
        The prepared builder.
    """
    builder = get_builder(config)
    download_config = tfds.download.DownloadConfig(
        manual_dir=config.manual_dir or None, beam_options=beam_options)
    builder.download_and_prepare(download_config=download_config)
    return builder


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
    """Reads filenames, labels, official splits and folds of every example (images skipped)."""
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


def choose_protocol(builder: tfds.core.DatasetBuilder) -> str:
    """The evaluation protocol of a dataset (see the module docstring)."""
    splits = set(builder.info.splits.keys())
    if "test" in splits:
        return "official"
    if "fold" in builder.info.features:
        return "official_folds"
    if builder.name in HOLDOUT_DATASETS:
        return "holdout"
    return "kfold"


@dataclasses.dataclass(frozen=True)
class ProtocolSplits:
    """Filenames of each protocol part, each sorted. ``description`` says how they were made."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    test: tuple[str, ...]
    protocol: str
    description: str

    def as_dict(self) -> dict[str, tuple[str, ...]]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


def _stratified_holdout(
        indices: np.ndarray, labels: np.ndarray, fraction: float, seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Splits ``indices`` into (kept, held out) with ``fraction`` held out per label, seeded."""
    rng = np.random.default_rng(seed)
    kept, held = [], []
    for label in np.unique(labels[indices]):
        members = indices[labels[indices] == label]
        members = members[rng.permutation(len(members))]
        count = int(round(fraction * len(members)))
        held.append(members[:count])
        kept.append(members[count:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


def _stratified_folds(indices: np.ndarray, labels: np.ndarray, num_folds: int, seed: int) -> np.ndarray:
    """Assigns each index a fold in [0, num_folds), balanced per label, seeded."""
    rng = np.random.default_rng(seed)
    folds = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels[indices]):
        members = indices[labels[indices] == label]
        members = members[rng.permutation(len(members))]
        folds[members] = np.arange(len(members)) % num_folds
    return folds


def protocol_splits(
        index: DatasetIndex, config: DataConfig, protocol: str,
) -> ProtocolSplits:
    """Derives (train, validation, test) for any dataset, fold and seed.

    Args:
        index: from :func:`read_index`.
        config: ``fold``, ``num_folds``, ``split_seed``, ``validation_fraction`` (share of the
            training part held out for validation), ``test_fraction`` (test share of the
            ``holdout`` protocol); the defaults give the paper's 80 / 5 / 15.
        protocol: one of :data:`PROTOCOLS`.

    Returns:
        The three parts as sorted filename tuples. Parts never overlap.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}. Received: protocol={protocol!r}")
    # Work on filename-sorted positions so the result does not depend on the read order.
    order = np.argsort(index.filenames.astype(str))
    filenames, labels = index.filenames[order], index.labels[order]
    splits, folds = index.official_splits[order], index.folds[order]
    everything = np.arange(len(filenames))
    seed = config.split_seed
    validation = None
    if protocol == "holdout" and {"train", "test"} <= set(splits):
        train = everything[splits == "train"]
        test = everything[splits == "test"]
        if "validation" in set(splits):
            validation = everything[splits == "validation"]
        description = "the dataset's own train/validation/test lists"
    elif protocol == "holdout":
        rest, test = _stratified_holdout(everything, labels, config.test_fraction, seed)
        train = rest
        description = f"stratified random holdout, test {config.test_fraction:.0%}, seed {seed}"
    elif protocol == "official":
        train = everything[splits != "test"]
        test = everything[splits == "test"]
        if "validation" in set(splits):
            validation = everything[splits == "validation"]
            train = everything[splits == "train"]
        description = "official train/test split"
    elif protocol == "official_folds":
        fold_ids = np.unique(folds)
        if len(fold_ids) < 2 or config.fold >= len(fold_ids):
            raise ValueError(
                f"official_folds needs fold < number of official folds {len(fold_ids)}. "
                f"Received: fold={config.fold}")
        test_fold = fold_ids[config.fold]
        train, test = everything[folds != test_fold], everything[folds == test_fold]
        description = f"official fold {test_fold} of {len(fold_ids)} as test"
    else:
        assigned = _stratified_folds(everything, labels, config.num_folds, seed)
        train, test = everything[assigned != config.fold], everything[assigned == config.fold]
        description = f"stratified {config.num_folds}-fold, fold {config.fold} as test, seed {seed}"
    if validation is None:
        train, validation = _stratified_holdout(train, labels, config.validation_fraction, seed + 1)
        description += f"; validation {config.validation_fraction:.1%} of the training part"

    def names(positions: np.ndarray) -> tuple[str, ...]:
        return tuple(sorted(str(f) for f in filenames[positions]))

    result = ProtocolSplits(names(train), names(validation), names(test), protocol, description)
    if config.max_examples:
        cap = config.max_examples
        result = dataclasses.replace(
            result, train=result.train[:cap], validation=result.validation[:cap],
            test=result.test[:cap], description=result.description + f"; capped at {cap} each")
    return result


def examples(builder: tfds.core.DatasetBuilder, filenames=None) -> tf.data.Dataset:
    """Every example of the builder (all splits), images as encoded bytes, optionally filtered.

    Args:
        builder: a prepared builder.
        filenames: keep only these ``image/filename`` keys (None: all).

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


def load_protocol(
        config: DataConfig, builder: tfds.core.DatasetBuilder | None = None,
) -> tuple[tf.data.Dataset, tf.data.Dataset, tf.data.Dataset]:
    """(train, validation, test) examples of any prepared dataset, fold and seed.

    Args:
        config: dataset, fold, seed and fractions.
        builder: a prepared builder (default: ``get_builder(config)``).

    Returns:
        Three datasets of feature dicts (images as encoded bytes; decode with
        :func:`decode_image_tensor` or feed :func:`training_pipeline` / :func:`evaluation_pipeline`).
    """
    builder = builder or get_builder(config)
    splits = protocol_splits(read_index(builder), config, choose_protocol(builder))
    return tuple(examples(builder, names) for names in (splits.train, splits.validation, splits.test))


def encoded_images(builder: tfds.core.DatasetBuilder) -> Iterator[tuple[str, bytes]]:
    """Yields ``(image/filename, encoded image bytes)`` of every example, for the proposal stage."""
    dataset = examples(builder).map(lambda ex: (ex[FILENAME_KEY], ex["image"]))
    for filename, data in dataset.as_numpy_iterator():
        yield filename.decode("utf-8"), data


def decode_image_tensor(encoded: tf.Tensor) -> tf.Tensor:
    """Decodes JPEG / PNG / GIF / BMP bytes by content to uint8 RGB [H, W, 3] (first GIF frame)."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def train_transform(image: tf.Tensor, resize_size: int, crop_size: int, seed: tf.Tensor) -> tf.Tensor:
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


@dataclasses.dataclass(frozen=True)
class ProposalTable:
    """Proposal cache arrays joined to examples by ``image/filename``.

    Attributes:
        filenames: [N] str.
        boxes: float32 [N, m, 4], normalized [y1, x1, y2, x2], zero-padded.
        objectness: float32 [N, m], zero-padded.
        num_valid: int32 [N].
    """

    filenames: np.ndarray
    boxes: np.ndarray
    objectness: np.ndarray
    num_valid: np.ndarray

    @property
    def num_candidates(self) -> int:
        return int(self.boxes.shape[1])


def _proposal_lookup(proposals: ProposalTable):
    """A function filename -> (boxes [m,4], objectness [m], num_valid) for tf.data.map.

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
        shuffle_buffer: int = 2048,
) -> tf.data.Dataset:
    """Whole-image training batches: shuffled, repeated, augmented (Section 4.2).

    Yields:
        (images float32 [B, image_size, image_size, 3] RGB 0-255, labels int64 [B]).
    """
    dataset = dataset.map(lambda ex: (ex["image"], ex["label"]))
    dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()
    # One stateless seed per element: augmentation is reproducible whatever the parallelism.
    dataset = tf.data.Dataset.zip((dataset, tf.data.Dataset.random(seed=seed).batch(2)))

    def transform(example, element_seed):
        encoded, label = example
        image = train_transform(decode_image_tensor(encoded), resize_size, image_size, element_seed)
        return image, label

    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def evaluation_pipeline(
        dataset: tf.data.Dataset, *, resize_size: int, batch_size: int,
        proposals: ProposalTable | None = None, extra_keys: tuple[str, ...] = (),
) -> tf.data.Dataset:
    """Evaluation batches in a deterministic order, with the image's proposals joined.

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


def count_labels(labels) -> dict[str, int]:
    labels = np.asarray(labels)
    return {"negative": int((labels == 0).sum()), "positive": int((labels == 1).sum())}


def log_splits(name: str, splits: ProtocolSplits, index: DatasetIndex) -> None:
    label_of = dict(zip(index.filenames, index.labels))
    for part, names in splits.as_dict().items():
        counts = count_labels([label_of[n] for n in names])
        logging.info("%s %s: %d images (%d positive, %d negative)", name, part, len(names),
                     counts["positive"], counts["negative"])
