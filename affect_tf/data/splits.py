"""The paper's evaluation protocols (Section 4.2), derived from a dataset's label index.

Builders expose a dataset as its owners split it; the protocol splits are derived here, seeded and
stratified by label, from a :class:`~affect_tf.data.reader.DatasetIndex`:

* ``holdout`` (FI, Flickr, the demo): 80 % train / 5 % validation / 15 % test, or the builder's
  own ``train``/``validation``/``test`` when it has them (FI with the authors' list files).
* ``official`` (EmotionROI): the official ``train``/``test``; validation carved from train.
* ``official_folds`` (Twitter II): the five official partitions (``fold`` feature) are the folds.
* ``kfold`` (the other small sets): stratified k-fold; validation carved from each training part.

Where a protocol has no validation part of its own, it is carved from the training part (for the
SVM and hyperparameters; METHOD.md, "Protocol per dataset" and D4).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from affect_tf.config import LABEL_NAMES, PROTOCOLS, DataConfig
from affect_tf.errors import DataError
from affect_tf.data.reader import DatasetIndex

# Sets the paper splits 80 / 5 / 15 at random (Section 4.2); the demo follows the same protocol.
HOLDOUT_DATASETS = frozenset({"fi", "flickr_vso", "affect_demo"})
# Protocols whose folds each give a test part; the others give one train / validation / test.
FOLD_PROTOCOLS = ("official_folds", "kfold")


@dataclasses.dataclass(frozen=True)
class ProtocolSplits:
    """Filenames of each protocol part, each sorted. ``description`` says how they were made."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    test: tuple[str, ...]
    protocol: str
    description: str
    # {part: {class name: images}}; None for splits stored before the counts were recorded.
    label_counts: dict[str, dict[str, int]] | None = dataclasses.field(default=None,
                                                                        compare=False)

    def as_dict(self) -> dict[str, tuple[str, ...]]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


def _label_counts(splits: ProtocolSplits, index: DatasetIndex) -> dict[str, dict[str, int]]:
    label_of = dict(zip(index.filenames.tolist(), index.labels.tolist()))
    return {part: {name: sum(label_of[n] == label for n in names)
                   for label, name in enumerate(LABEL_NAMES)}
            for part, names in splits.as_dict().items()}


@dataclasses.dataclass(frozen=True)
class _Parts:
    """Positions into a filename-sorted index; ``validation`` None: carve it from ``train``."""

    train: np.ndarray
    validation: np.ndarray | None
    test: np.ndarray
    description: str


def choose_protocol(builder, requested: str = "auto") -> str:
    """The evaluation protocol of a TFDS builder (see the module docstring), or ``requested``
    when it is not ``auto`` (``DataConfig.protocol``)."""
    if requested != "auto":
        return requested
    splits = set(builder.info.splits.keys())
    if "test" in splits:
        return "official"
    if "fold" in builder.info.features:
        return "official_folds"
    if builder.name in HOLDOUT_DATASETS:
        return "holdout"
    return "kfold"


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


def fold_count(index: DatasetIndex, config: DataConfig, protocol: str) -> int:
    """How many test folds the protocol has on this dataset (1 for holdout and official)."""
    if protocol == "kfold":
        return config.num_folds
    if protocol == "official_folds":
        return len(np.unique(index.folds))
    return 1


def _stratified_folds(indices: np.ndarray, labels: np.ndarray, num_folds: int,
                      seed: int) -> np.ndarray:
    """Assigns each index a fold in [0, num_folds), balanced per label, seeded."""
    rng = np.random.default_rng(seed)
    folds = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels[indices]):
        members = indices[labels[indices] == label]
        members = members[rng.permutation(len(members))]
        folds[members] = np.arange(len(members)) % num_folds
    return folds


def _sorted_by_filename(index: DatasetIndex) -> DatasetIndex:
    """The index in filename order, so that splits do not depend on the order it was read in."""
    order = np.argsort(index.filenames.astype(str))
    return DatasetIndex(index.filenames[order], index.labels[order],
                        index.official_splits[order], index.folds[order])


def _holdout_parts(index: DatasetIndex, config: DataConfig) -> _Parts:
    splits = index.official_splits
    everything = np.arange(len(splits))
    if {"train", "test"} <= set(splits):
        validation = everything[splits == "validation"] if "validation" in set(splits) else None
        return _Parts(everything[splits == "train"], validation, everything[splits == "test"],
                      "the dataset's own train/validation/test lists")
    train, test = _stratified_holdout(everything, index.labels, config.test_fraction,
                                      config.split_seed)
    return _Parts(train, None, test, f"stratified random holdout, test {config.test_fraction:.0%}, "
                                     f"seed {config.split_seed}")


def _official_parts(index: DatasetIndex, config: DataConfig) -> _Parts:
    del config  # The official lists need no setting.
    splits = index.official_splits
    everything = np.arange(len(splits))
    test = everything[splits == "test"]
    if "validation" in set(splits):
        return _Parts(everything[splits == "train"], everything[splits == "validation"], test,
                      "official train/test split")
    return _Parts(everything[splits != "test"], None, test, "official train/test split")


def _official_fold_parts(index: DatasetIndex, config: DataConfig) -> _Parts:
    folds = index.folds
    everything = np.arange(len(folds))
    fold_ids = np.unique(folds)
    if len(fold_ids) < 2 or not 0 <= config.fold < len(fold_ids):
        raise ValueError(
            f"official_folds needs fold < number of official folds {len(fold_ids)}. "
            f"Received: fold={config.fold}")
    test_fold = fold_ids[config.fold]
    return _Parts(everything[folds != test_fold], None, everything[folds == test_fold],
                  f"official fold {test_fold} of {len(fold_ids)} as test")


def _kfold_parts(index: DatasetIndex, config: DataConfig) -> _Parts:
    if not 0 <= config.fold < config.num_folds:
        raise ValueError(f"kfold needs a fold in [0, num_folds={config.num_folds}). "
                         f"Received: fold={config.fold}")
    everything = np.arange(len(index.labels))
    assigned = _stratified_folds(everything, index.labels, config.num_folds, config.split_seed)
    return _Parts(everything[assigned != config.fold], None, everything[assigned == config.fold],
                  f"stratified {config.num_folds}-fold, fold {config.fold} as test, "
                  f"seed {config.split_seed}")


_PROTOCOL_PARTS = {
    "holdout": _holdout_parts,
    "official": _official_parts,
    "official_folds": _official_fold_parts,
    "kfold": _kfold_parts,
}


def _with_validation(parts: _Parts, labels: np.ndarray, config: DataConfig) -> _Parts:
    """Carves the validation part from the training part where the protocol has none."""
    if parts.validation is not None:
        return parts
    # seed + 1: the carving draws apart from the holdout / fold draw made with the same seed.
    train, validation = _stratified_holdout(parts.train, labels, config.validation_fraction,
                                            config.split_seed + 1)
    return _Parts(train, validation, parts.test, parts.description
                  + f"; validation {config.validation_fraction:.1%} of the training part")


def _capped(splits: ProtocolSplits, cap: int) -> ProtocolSplits:
    """At most ``cap`` filenames in each part (``DataConfig.max_examples``; 0: no cap)."""
    if not cap:
        return splits
    return dataclasses.replace(
        splits, train=splits.train[:cap], validation=splits.validation[:cap],
        test=splits.test[:cap], description=splits.description + f"; capped at {cap} each")


def protocol_splits(
        index: DatasetIndex, config: DataConfig, protocol: str,
) -> ProtocolSplits:
    """Derives (train, validation, test) for any dataset, fold and seed.

    Args:
        index: from :func:`affect_tf.data.reader.read_index`.
        config: ``fold``, ``num_folds``, ``split_seed``, ``validation_fraction`` (share of the
            training part held out for validation), ``test_fraction`` (test share of the
            ``holdout`` protocol), ``max_examples``; the defaults give the paper's 80 / 5 / 15.
        protocol: one of :data:`PROTOCOLS`.

    Returns:
        The three parts as sorted filename tuples. Parts never overlap.

    Raises:
        ValueError: an unknown protocol, or a fold the dataset's official folds do not have.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}. Received: protocol={protocol!r}")
    index = _sorted_by_filename(index)
    parts = _with_validation(_PROTOCOL_PARTS[protocol](index, config), index.labels, config)

    def names(positions: np.ndarray) -> tuple[str, ...]:
        return tuple(sorted(str(f) for f in index.filenames[positions]))

    splits = _capped(ProtocolSplits(names(parts.train), names(parts.validation),
                                    names(parts.test), protocol, parts.description),
                     config.max_examples)
    return dataclasses.replace(splits, label_counts=_label_counts(splits, index))


def log_splits(name: str, splits: ProtocolSplits, index: DatasetIndex) -> None:
    """Logs the size and label balance of each part."""
    label_of = dict(zip(index.filenames, index.labels))
    for part, names in splits.as_dict().items():
        labels = np.asarray([label_of[n] for n in names])
        logging.info("%s %s: %d images (%d positive, %d negative)", name, part, len(names),
                     int((labels == 1).sum()), int((labels == 0).sum()))


def check_parts(splits: ProtocolSplits, where: str) -> None:
    """Stops a protocol whose parts cannot give a number: before any training, with the fix.

    The training part must hold both classes (a classifier of one class learns nothing), the
    validation part too (the concatenation SVM is fitted on it), and the test part at least one
    image. A test part with one class only is allowed: the missing class's recall is then
    undefined (null in ``metrics.json``, said so in the report).

    Args:
        splits: the protocol's parts, with their ``label_counts`` (splits stored without them
            pass).
        where: what the parts belong to, for the message (``fold 3 in runs/x``).

    Raises:
        DataError: a part is empty, or the training or validation part misses a class.
    """
    if splits.label_counts is None:
        return
    fix = ("use fewer folds (--num_folds), a larger --validation_fraction or --test_fraction, or "
           "a dataset with more images of each class")
    for part, needs_both in (("train", True), ("validation", True), ("test", False)):
        counts = splits.label_counts[part]
        total = sum(counts.values())
        if not total:
            raise DataError(f"The {part} part of {where} is empty ({splits.description}): {fix}. "
                            f"Received: 0 {part} images")
        if needs_both and min(counts.values()) == 0:
            raise DataError(
                f"The {part} part of {where} holds one class only ({counts}); "
                f"{'the classifier' if part == 'train' else 'the concatenation SVM'} needs "
                f"both: {fix}. Received: {total} {part} images")
