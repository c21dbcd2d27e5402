"""Tests of the FI builder on dummy data in the distribution's layout.

``dummy_data/emotion_dataset/`` has the eight emotion folders with one image each, plus a
truncated JPEG (amusement_0002.jpg, skipped and reported), a CMYK JPEG (fear_0002.jpg), a
grayscale JPEG (sadness_0002.jpg), a ``.DS_Store`` and a ``Thumbs.db``; it is reached through
its parent folder. ``dummy_data_lists/`` adds Caffe list files (``train.txt`` with CRLF,
``val.txt`` with ``emotion_dataset/``-prefixed paths, ``test.txt`` with one image not on disk)
beside ``emotion_dataset/``, so the build has train / validation / test splits.
"""

import pathlib

import tensorflow_datasets as tfds

from affect_tf.datasets.fi import fi_dataset_builder

_HERE = pathlib.Path(__file__).parent
DUMMY_DATA = _HERE / "dummy_data"
DUMMY_DATA_LISTS = _HERE / "dummy_data_lists"


class FiTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = fi_dataset_builder.Builder
    # TFDS reads the dummy data from EXAMPLE_DIR (default: dummy_data/ beside the builder).
    EXAMPLE_DIR = str(DUMMY_DATA)
    SKIP_CHECKSUMS = True
    SPLITS = {"train": 10}  # 11 image files, one truncated.


class FiListsTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = fi_dataset_builder.Builder
    EXAMPLE_DIR = str(DUMMY_DATA_LISTS)
    SKIP_CHECKSUMS = True
    SPLITS = {"train": 12, "validation": 2, "test": 2}  # test.txt lists 3, one missing.


if __name__ == "__main__":
    tfds.testing.test_main()
