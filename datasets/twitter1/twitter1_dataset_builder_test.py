"""Tests of the Twitter I builder on dummy data in both packagings.

``dummy_data/twitter_dataset/`` is packaging (a) (``images/`` + ``ground_truth/``), reached
through its parent folder; ``dummy_data_agg/`` is packaging (b) (``Agg_AMT_Candidates/`` with the
``*_agree.txt`` files beside it), passed as the top folder itself. In both, one listed image is
missing on disk and is skipped; (a) also holds a grayscale JPEG, a BOM, CRLF line ends, trailing
spaces, blank lines and a ``.DS_Store``.
"""

import pathlib

import tensorflow_datasets as tfds

from affect_tf.datasets.twitter1 import twitter1_dataset_builder

_HERE = pathlib.Path(__file__).parent
DUMMY_DATA = _HERE / "dummy_data"
DUMMY_DATA_AGG = _HERE / "dummy_data_agg"


class _Base(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = twitter1_dataset_builder.Builder
    # TFDS reads the dummy data from EXAMPLE_DIR (default: dummy_data/ beside the builder).
    EXAMPLE_DIR = str(DUMMY_DATA)
    SKIP_CHECKSUMS = True


class FiveAgreeTest(_Base):
    BUILDER_CONFIG_NAMES_TO_TEST = ["five_agree"]
    SPLITS = {"train": 3}


class FourAgreeTest(_Base):
    BUILDER_CONFIG_NAMES_TO_TEST = ["four_agree"]
    SPLITS = {"train": 5}


class ThreeAgreeTest(_Base):
    BUILDER_CONFIG_NAMES_TO_TEST = ["three_agree"]
    SPLITS = {"train": 7}  # 8 listed, one missing on disk.


class AggFiveAgreeTest(_Base):
    EXAMPLE_DIR = str(DUMMY_DATA_AGG)
    BUILDER_CONFIG_NAMES_TO_TEST = ["five_agree"]
    SPLITS = {"train": 2}


class AggFourAgreeTest(_Base):
    EXAMPLE_DIR = str(DUMMY_DATA_AGG)
    BUILDER_CONFIG_NAMES_TO_TEST = ["four_agree"]
    SPLITS = {"train": 3}


class AggThreeAgreeTest(_Base):
    EXAMPLE_DIR = str(DUMMY_DATA_AGG)
    BUILDER_CONFIG_NAMES_TO_TEST = ["three_agree"]
    SPLITS = {"train": 4}  # 5 listed, one missing on disk.


del _Base  # Only the concrete classes are tests.

if __name__ == "__main__":
    tfds.testing.test_main()
