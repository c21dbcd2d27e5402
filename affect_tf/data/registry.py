"""The project's TFDS builders: finding, registering and preparing them.

The builders live in the checkout's ``datasets/`` folder, importable as ``affect_tf.datasets``
(``affect_tf/__init__.py`` maps it from a checkout, setup.cfg when installed). TFDS registers a
builder when its ``<name>_dataset_builder`` module is imported.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import logging

import tensorflow_datasets as tfds

from affect_tf import preflight
from affect_tf.config import DataConfig
from affect_tf.errors import DataError


def builder_names() -> list[str]:
    """Names of the builders in ``datasets/`` (folders holding ``<name>_dataset_builder.py``).

    The folder scan is :func:`affect_tf.preflight.project_builders`, which needs no TFDS.
    """
    return list(preflight.project_builders())


def import_builders() -> None:
    """Imports every builder module, which registers it with TFDS."""
    for name in builder_names():
        importlib.import_module(f"affect_tf.datasets.{name}.{name}_dataset_builder")


def get_builder(config: DataConfig) -> tfds.core.DatasetBuilder:
    """Returns the TFDS builder of ``config.dataset`` (``name`` or ``name/config``).

    Raises:
        DataError: the name is not one of the project's builders nor a registered TFDS dataset.
    """
    import_builders()
    base_name = config.dataset.split("/")[0].split(":")[0]
    try:
        return tfds.builder(config.dataset, data_dir=config.data_dir or None)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise DataError(
            f"Unknown dataset; expected one of the project's builders {builder_names()} (with "
            f"/config where it has several) or a TFDS dataset. Received: dataset={config.dataset!r}"
            f" ({base_name!r} not found)") from error


@contextlib.contextmanager
def prepare_lock(config: DataConfig):
    """Holds ``<data_dir>/.<dataset>.prepare.lock`` exclusively: one run prepares a dataset in a
    data directory at a time; another waits (logged), then finds it prepared.

    An OS file lock (``flock``): the kernel releases it when its holder dies, so a killed run
    never blocks the next one.
    """
    root = preflight.tfds_data_dir(config)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f".{config.dataset.replace('/', '_')}.prepare.lock"
    with open(path, "a", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logging.info("prepare: another run is preparing %s in %s; waiting for it to finish",
                         config.dataset, root)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare(config: DataConfig, beam_options=None) -> tfds.core.DatasetBuilder:
    """Builds the dataset's TFRecords from the manual download (skipped when already prepared).

    TFDS writes into an ``incomplete`` directory and renames it when done, so a crash never leaves
    a partial dataset behind; runs preparing the same data directory at once take turns
    (:func:`prepare_lock`), the later ones finding the dataset ready.

    Args:
        config: which dataset, ``data_dir`` and ``manual_dir``.
        beam_options: ``apache_beam`` PipelineOptions for Beam builders (Flickr); None runs them
            locally with the DirectRunner.

    Returns:
        The prepared builder.
    """
    with prepare_lock(config):
        builder = get_builder(config)
        download_config = tfds.download.DownloadConfig(
            manual_dir=config.manual_dir or None, beam_options=beam_options)
        builder.download_and_prepare(download_config=download_config)
    return builder
