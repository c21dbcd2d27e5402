"""Tests of the EmotionROI builder on dummy data in the distribution's layout.

``dummy_data/EmotionROI/`` holds two images per emotion with their stimuli maps (one map of
another size, one grey map stored as RGB), a ``Thumbs.db``, and the split files: ``training.txt``
with CRLF line ends, ``testing.txt`` with trailing spaces, blank lines and one image that is not
on disk (skipped). It is reached through its parent folder.
"""

import pathlib

import tensorflow_datasets as tfds

from affect_tf.datasets.emotion_roi import emotion_roi_dataset_builder

DUMMY_DATA = pathlib.Path(__file__).parent / "dummy_data"


class EmotionRoiTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = emotion_roi_dataset_builder.Builder
    # TFDS reads the dummy data from EXAMPLE_DIR (default: dummy_data/ beside the builder).
    EXAMPLE_DIR = str(DUMMY_DATA)
    SKIP_CHECKSUMS = True
    SPLITS = {"train": 8, "test": 4}  # testing.txt lists 5, one missing on disk.


if __name__ == "__main__":
    tfds.testing.test_main()
