"""Tests of the Twitter II builder on dummy data in the distribution's layout.

``dummy_data/twitter/`` reproduces the quirks in miniature: a CRLF, TAB-separated
``groundTruthLabel.txt`` with its header that lists ids 1..12 of which only 7 have an image, an
image (13.jpg) without a row, a PNG named ``.jpg`` (2.jpg), an RGBA PNG named ``.jpg`` (4.jpg), a
palette GIF named ``.jpg`` (5.jpg), ``<N>_<hashtag>.txt`` tweet metadata and ``readme.txt``.
It is reached through its parent folder, as when the archive is extracted into ``manual_dir``.
The split size comes first, then layout, errors, label parsing and example content.
"""

import logging
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from affect_tf import testing
from affect_tf.datasets.twitter2 import twitter2_dataset_builder as t2
from affect_tf.io import decode_image_bytes

DUMMY_DATA = pathlib.Path(__file__).parent / "dummy_data"


class Twitter2Test(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = t2.Builder
    # TFDS reads the dummy data from EXAMPLE_DIR (default: dummy_data/ beside the builder).
    EXAMPLE_DIR = str(DUMMY_DATA)
    SKIP_CHECKSUMS = True
    SPLITS = {"train": 7}  # 8 images on disk, one (13.jpg) without a label row.


def test_locate_accepts_top_folder_and_its_parent():
    assert t2.locate_dataset(DUMMY_DATA) == t2.locate_dataset(DUMMY_DATA / "twitter")


def test_wrong_manual_dir_names_expected_files(tmp_path):
    (tmp_path / "twitter" / "partition1").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("")
    message = testing.locate_error(t2.locate_dataset, tmp_path)
    assert "groundTruthLabel.txt and partition1, partition2, partition3, partition4, partition5/" \
        in message
    assert "twitter: missing groundTruthLabel.txt, partition2/" in message
    assert "holds: notes.txt, twitter/" in message


def test_parse_ground_truth_header_crlf_tabs_spaces_case():
    data = (b"\xef\xbb\xbfImage\tSentiment\r\n1.jpg\tpositive\r\n\r\n2.jpg negative  \r\n"
            b"3.JPG\tPositive\r\n")
    assert t2.parse_ground_truth(data) == {1: "positive", 2: "negative", 3: "positive"}


@pytest.mark.parametrize("bad_line", [
    "4.jpg\tneutral", "4.jpg", "four.jpg\tpositive", "4.jpg\tpositive\textra", "Image\tSentiment"])
def test_parse_ground_truth_names_file_and_line_of_a_malformed_line(bad_line):
    data = f"Image\tSentiment\r\n1.jpg\tpositive\r\n{bad_line}\r\n"
    expected = r"gt\.txt, line 3: expected '<N>\.jpg<TAB>positive\|negative'"
    with pytest.raises(ValueError, match=expected):
        t2.parse_ground_truth(data, "gt.txt")


def test_parse_ground_truth_rejects_an_id_listed_twice():
    with pytest.raises(ValueError, match="line 3: image 1 is listed twice"):
        t2.parse_ground_truth("Image\tSentiment\n1.jpg\tpositive\n1.jpg\tnegative\n", "gt.txt")


def test_index_ignores_metadata_and_readme():
    images = t2.index_images(DUMMY_DATA / "twitter")
    assert images == {1: (1, "1.jpg"), 2: (1, "2.jpg"), 4: (2, "4.jpg"), 5: (2, "5.jpg"),
                      7: (3, "7.jpg"), 9: (4, "9.jpg"), 11: (5, "11.jpg"), 13: (5, "13.jpg")}


def test_examples_content_and_skip_report(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        builder = testing.build_dataset(t2.Builder, DUMMY_DATA, tmp_path)
    examples = list(tfds.as_numpy(builder.as_dataset(split="train", shuffle_files=False)))
    by_name = {ex["image/filename"].decode(): ex for ex in examples}
    assert {name: (int(ex["fold"]), int(ex["label"])) for name, ex in by_name.items()} == {
        "partition1/1.jpg": (1, 1), "partition1/2.jpg": (1, 0), "partition2/4.jpg": (2, 1),
        "partition2/5.jpg": (2, 1), "partition3/7.jpg": (3, 0), "partition4/9.jpg": (4, 1),
        "partition5/11.jpg": (5, 1)}
    for example in examples:
        assert example["image"].shape[-1] == 3 and example["image"].dtype == np.uint8
    # PNG / RGBA PNG / palette GIF named .jpg: stored losslessly as the 3-channel RGB decoding.
    for name in ("partition1/2.jpg", "partition2/4.jpg", "partition2/5.jpg"):
        expected = decode_image_bytes((DUMMY_DATA / "twitter" / name).read_bytes())
        np.testing.assert_array_equal(by_name[name]["image"], expected)
    # A real RGB JPEG is stored byte for byte as distributed.
    raw = builder.as_dataset(split="train", decoders={"image": tfds.decode.SkipDecoding()})
    raw_bytes = {ex["image/filename"].decode(): ex["image"] for ex in tfds.as_numpy(raw)}
    assert raw_bytes["partition1/1.jpg"] == (DUMMY_DATA / "twitter/partition1/1.jpg").read_bytes()
    assert raw_bytes["partition2/5.jpg"].startswith(b"\x89PNG")
    assert "partition5/13.jpg" in caplog.text and "skipped 1" in caplog.text
    assert "5 without an image (expected)" in caplog.text
