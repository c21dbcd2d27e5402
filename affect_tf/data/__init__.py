"""Datasets, from a TFDS builder to the batches the CNN sees. The only package that imports TFDS.

The flow, one module per step:

* :mod:`~affect_tf.data.registry`: the builders of ``datasets/`` (``affect_tf.datasets``):
  ``builder_names``, ``import_builders``, ``get_builder``, ``prepare``.
* :mod:`~affect_tf.data.reader`: a prepared dataset's examples with images still encoded, keyed
  by ``FILENAME_KEY``: ``DatasetIndex``, ``read_index``, ``examples``, ``encoded_images``,
  ``damaged_record_files``.
* :mod:`~affect_tf.data.splits`: the paper's protocols (Section 4.2) from the index:
  ``PROTOCOLS``, ``FOLD_PROTOCOLS``, ``ProtocolSplits``, ``check_parts``, ``choose_protocol``,
  ``fold_count``, ``protocol_splits``, ``log_splits``.
* :mod:`~affect_tf.data.split_store`: splits on disk (``splits-<fingerprint>.json``, checksummed):
  ``read``, ``write``, ``log_dataset_change``.
* :mod:`~affect_tf.data.transforms`: TF image ops: ``decode_image_tensor``, ``train_transform``,
  ``eval_transform``, ``center_crop``, ``ten_crops``.
* :mod:`~affect_tf.data.pipeline`: tf.data batches: ``training_pipeline``,
  ``calibration_pipeline`` (evaluation views, for batch-norm statistics), and
  ``evaluation_pipeline`` joined to a proposal cache's ``ProposalArrays`` by filename.

The names above are re-exported here: ``from affect_tf import data`` then ``data.examples(...)``.
Boxes everywhere are normalized ``[y1, x1, y2, x2]`` in [0, 1].
"""

from affect_tf.data.pipeline import calibration_pipeline, evaluation_pipeline, training_pipeline
from affect_tf.data.reader import (
    FILENAME_KEY,
    DatasetIndex,
    damaged_record_files,
    encoded_images,
    examples,
    read_index,
)
from affect_tf.data.registry import builder_names, get_builder, import_builders, prepare
from affect_tf.data.splits import (
    FOLD_PROTOCOLS,
    PROTOCOLS,
    ProtocolSplits,
    check_parts,
    choose_protocol,
    fold_count,
    log_splits,
    protocol_splits,
)
from affect_tf.data.transforms import (
    center_crop,
    decode_image_tensor,
    eval_transform,
    ten_crops,
    train_transform,
)

__all__ = [
    "FILENAME_KEY",
    "FOLD_PROTOCOLS",
    "PROTOCOLS",
    "DatasetIndex",
    "ProtocolSplits",
    "builder_names",
    "calibration_pipeline",
    "center_crop",
    "check_parts",
    "choose_protocol",
    "damaged_record_files",
    "fold_count",
    "decode_image_tensor",
    "encoded_images",
    "eval_transform",
    "evaluation_pipeline",
    "examples",
    "get_builder",
    "import_builders",
    "log_splits",
    "prepare",
    "protocol_splits",
    "read_index",
    "ten_crops",
    "train_transform",
    "training_pipeline",
]
