"""Tests of the Twitter II builder on dummy data in the distribution's layout.

``dummy_data/twitter/`` reproduces the quirks in miniature: a CRLF, TAB-separated
``groundTruthLabel.txt`` with its header that lists ids 1..12 of which only 7 have an image, an
image (13.jpg) without a row, a PNG named ``.jpg`` (2.jpg), an RGBA PNG named ``.jpg`` (4.jpg), a
palette GIF named ``.jpg`` (5.jpg), ``<N>_<hashtag>.txt`` tweet metadata and ``readme.txt``.
It is reached through its parent folder, as when the archive is extracted into ``manual_dir``.
"""

import pathlib

import tensorflow_datasets as tfds

from affect_tf.datasets.twitter2 import twitter2_dataset_builder

DUMMY_DATA = pathlib.Path(__file__).parent / "dummy_data"


class Twitter2Test(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = twitter2_dataset_builder.Builder
    # TFDS reads the dummy data from EXAMPLE_DIR (default: dummy_data/ beside the builder).
    EXAMPLE_DIR = str(DUMMY_DATA)
    SKIP_CHECKSUMS = True
    SPLITS = {"train": 7}  # 8 images on disk, one (13.jpg) without a label row.


if __name__ == "__main__":
    tfds.testing.test_main()
