"""Protocol splits on disk: ``splits-<fingerprint>.json`` in a work directory, checksummed.

The file holds each part's filenames, the protocol's description, the dataset's identity and the
label counts of each part; checksums over the lists and the counts detect a damaged file, which
is moved aside and computed again. Keyed by a fingerprint of the data settings (never paths) and
the dataset's content, so a rebuilt dataset gets new splits and moving the data changes nothing.
"""

from __future__ import annotations

import json
import logging
import pathlib

from affect_tf import artifacts
from affect_tf import io as io_lib
from affect_tf.data.splits import ProtocolSplits

_PARTS = ("train", "validation", "test")


def read(path: pathlib.Path, workdir: pathlib.Path) -> ProtocolSplits | None:
    """Stored splits whose checksums verify; a damaged file is moved to ``<workdir>/damaged/``.

    Returns:
        The splits, or None when there is no file or it was damaged (compute them again).
    """
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
        parts = {part: tuple(stored[part]) for part in _PARTS}
        if stored["checksum"] != artifacts.content_hash(parts):
            raise ValueError("the lists differ from their recorded checksum")
        counts = stored.get("label_counts")
        if counts is not None and stored.get("label_counts_checksum") != artifacts.content_hash(
                counts):
            raise ValueError("the label counts differ from their recorded checksum")
        return ProtocolSplits(**parts, protocol=stored["protocol"],
                              description=stored["description"], label_counts=counts)
    except (OSError, ValueError, KeyError, TypeError) as error:
        logging.warning("splits: %s is damaged (%s); computing the splits again.", path, error)
        artifacts.quarantine(path, workdir)
        return None


def write(path: pathlib.Path, splits: ProtocolSplits, *, dataset: str, dataset_id: str,
          num_examples: int) -> None:
    """Writes the splits atomically with their checksums and the dataset they belong to."""
    parts = splits.as_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    io_lib.atomic_write_json(path, {
        **parts, "protocol": splits.protocol, "description": splits.description,
        "dataset": dataset, "dataset_id": dataset_id, "num_examples": num_examples,
        "checksum": artifacts.content_hash(parts), "label_counts": splits.label_counts,
        "label_counts_checksum": artifacts.content_hash(splits.label_counts)})


def log_dataset_change(workdir: pathlib.Path, dataset: str, dataset_id: str,
                       num_examples: int) -> None:
    """Says so when splits of the same dataset exist for other content (a rebuilt dataset)."""
    for other in sorted(workdir.glob("splits-*.json")):
        try:
            stored = json.loads(other.read_text())
        except (OSError, ValueError):
            continue
        if stored.get("dataset") == dataset and stored.get("dataset_id") != dataset_id:
            logging.info("splits: the dataset changed since %s (%s -> %d examples): new splits "
                         "that include every current image", other.name,
                         stored.get("num_examples"), num_examples)
