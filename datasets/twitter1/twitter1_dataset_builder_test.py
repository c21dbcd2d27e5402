"""Tests of the Twitter I builder on dummy data in both packagings.

``dummy_data/twitter_dataset/`` is packaging (a) (``images/`` + ``ground_truth/``), reached
through its parent folder; ``dummy_data_agg/`` is packaging (b) (``Agg_AMT_Candidates/`` with the
``*_agree.txt`` files beside it), passed as the top folder itself. In both, one listed image is
missing on disk and is skipped; (a) also holds a grayscale JPEG, a BOM, CRLF line ends, trailing
spaces, blank lines and a ``.DS_Store``. The split sizes come first, then layouts, errors,
label parsing and example content.
"""

import logging
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from affect_tf import testing
from affect_tf.datasets.twitter1 import twitter1_dataset_builder as t1

_HERE = pathlib.Path(__file__).parent
DUMMY_DATA = _HERE / "dummy_data"
DUMMY_DATA_AGG = _HERE / "dummy_data_agg"


class _Base(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = t1.Builder
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


def test_locate_accepts_top_folder_and_its_parent():
    from_parent = t1.locate_dataset(DUMMY_DATA)
    from_top = t1.locate_dataset(DUMMY_DATA / "twitter_dataset")
    assert from_parent.root == from_top.root
    assert from_parent.image_prefix == "images"
    assert from_parent.label_files[5].name == "twitter_five_agrees.txt"


def test_locate_agg_label_files_inside_the_image_folder(tmp_path):
    top = tmp_path / "twitter"
    shutil.copytree(DUMMY_DATA_AGG, top)
    for name in ("five_agree.txt", "four_agree.txt", "three_agree.txt"):
        (top / name).rename(top / "Agg_AMT_Candidates" / name)
    for manual_dir in (tmp_path, top, top / "Agg_AMT_Candidates"):
        layout = t1.locate_dataset(manual_dir)
        assert layout.image_prefix == "Agg_AMT_Candidates"
        assert layout.image_dir == layout.label_files[3].parent


def test_wrong_manual_dir_names_expected_files(tmp_path):
    (tmp_path / "readme.txt").write_text("not the dataset")
    (tmp_path / "photos").mkdir()
    message = testing.locate_error(t1.locate_dataset, tmp_path)
    for expected in ("images/", "ground_truth/twitter_{five,four,three}_agrees.txt",
                     "Agg_AMT_Candidates/", "photos/, readme.txt"):
        assert expected in message


def test_partial_copy_names_the_missing_label_file(tmp_path):
    shutil.copytree(DUMMY_DATA / "twitter_dataset", tmp_path / "twitter_dataset")
    (tmp_path / "twitter_dataset" / "ground_truth" / "twitter_four_agrees.txt").unlink()
    with pytest.raises(FileNotFoundError, match="missing ground_truth/twitter_four_agrees.txt"):
        t1.locate_dataset(tmp_path)


def test_parse_label_file_tolerates_bom_crlf_blank_lines_and_paths():
    data = "\ufeffa.jpg 1\r\n\r\nimages/b.jpg 0   \r\nC:\\x\\c.jpg\t1\r\n\r\n".encode()
    assert t1.parse_label_file(data, "f.txt") == {"a.jpg": 1, "b.jpg": 0, "c.jpg": 1}


@pytest.mark.parametrize("bad_line", ["a.jpg", "a.jpg positive", "a.jpg 2", "a.jpg -1"])
def test_parse_label_file_names_file_and_line_of_a_malformed_line(bad_line):
    data = f"x.jpg 1\n\n{bad_line}\n"
    with pytest.raises(ValueError, match=r"f\.txt, line 3: expected '<file name> <0\|1>'"):
        t1.parse_label_file(data, "f.txt")


def test_parse_label_file_rejects_conflicting_duplicates():
    with pytest.raises(ValueError, match="line 2: a.jpg is listed again with label 0"):
        t1.parse_label_file("a.jpg 1\na.jpg 0\n", "f.txt")


def test_examples_content_and_skip_report(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        builder = testing.build_dataset(t1.Builder, DUMMY_DATA, tmp_path, "three_agree")
    examples = list(tfds.as_numpy(builder.as_dataset(split="train")))
    by_name = {ex["image/filename"].decode(): ex for ex in examples}
    assert sorted(by_name) == [f"images/{1000 + i}_{5000 + i}_k{i}ab.jpg" for i in range(7)]
    agreement = {name[7:11]: int(ex["agreement"]) for name, ex in by_name.items()}
    assert agreement == {"1000": 5, "1001": 5, "1002": 5, "1003": 4, "1004": 4, "1005": 3,
                         "1006": 3}
    labels = [int(by_name[name]["label"]) for name in sorted(by_name)]
    assert labels == [1, 0, 1, 1, 0, 1, 0]
    for example in examples:
        assert example["image"].ndim == 3 and example["image"].shape[-1] == 3
        assert example["image"].dtype == np.uint8
    # The grayscale JPEG was re-encoded to 3 channels.
    assert by_name["images/1004_5004_k4ab.jpg"]["image"].shape[-1] == 3
    assert "images/1007_5007_k7ab.jpg" in caplog.text  # listed but missing: reported
    assert "skipped 1" in caplog.text
