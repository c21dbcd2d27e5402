"""The project's TFDS builders: finding, registering and preparing them.

The builders live in the checkout's ``datasets/`` folder, importable as ``affect_tf.datasets``
(``affect_tf/__init__.py`` maps it from a checkout, setup.cfg when installed). TFDS registers a
builder when its ``<name>_dataset_builder`` module is imported.
"""

from __future__ import annotations

import importlib

import tensorflow_datasets as tfds

from affect_tf import preflight
from affect_tf.config import DataConfig


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
