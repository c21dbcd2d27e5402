"""Tests of the FI builder on dummy data in the distribution's layout.

``dummy_data/emotion_dataset/`` has the eight emotion folders with one image each, plus a
truncated JPEG (amusement_0002.jpg, skipped and reported), a CMYK JPEG (fear_0002.jpg), a
grayscale JPEG (sadness_0002.jpg), a ``.DS_Store`` and a ``Thumbs.db``; it is reached through
its parent folder. ``dummy_data_lists/`` adds Caffe list files (``train.txt`` with CRLF,
``val.txt`` with ``emotion_dataset/``-prefixed paths, ``test.txt`` with one image not on disk)
beside ``emotion_dataset/``, so the build has train / validation / test splits. The split sizes
come first, then layout, errors, list files and example content.
"""

import logging
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from affect_tf import testing
from affect_tf.datasets.fi import fi_dataset_builder as fi

_HERE = pathlib.Path(__file__).parent
DUMMY_DATA = _HERE / "dummy_data"
DUMMY_DATA_LISTS = _HERE / "dummy_data_lists"


class FiTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = fi.Builder
    # TFDS reads the dummy data from EXAMPLE_DIR (default: dummy_data/ beside the builder).
    EXAMPLE_DIR = str(DUMMY_DATA)
    SKIP_CHECKSUMS = True
    SPLITS = {"train": 10}  # 11 image files, one truncated.


class FiListsTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = fi.Builder
    EXAMPLE_DIR = str(DUMMY_DATA_LISTS)
    SKIP_CHECKSUMS = True
    SPLITS = {"train": 12, "validation": 2, "test": 2}  # test.txt lists 3, one missing.


def test_locate_accepts_top_folder_and_its_parent():
    root, folders = fi.locate_dataset(DUMMY_DATA)
    assert root == fi.locate_dataset(DUMMY_DATA / "emotion_dataset")[0]
    assert list(folders) == list(fi.EMOTIONS)


def test_locate_matches_other_spellings_of_the_folders(tmp_path):
    for folder in ("Amusement", "Anger", "Awe", "Content", "Disgust", "Excitement", "Fear", "Sad"):
        (tmp_path / folder).mkdir()
    _, folders = fi.locate_dataset(tmp_path)
    assert folders["sadness"].name == "Sad" and folders["contentment"].name == "Content"


def test_wrong_manual_dir_names_expected_and_missing_folders(tmp_path):
    (tmp_path / "emotion_dataset" / "awe").mkdir(parents=True)
    (tmp_path / "emotion_dataset" / "fear").mkdir()
    (tmp_path / "FI.zip").write_bytes(b"PK")
    message = testing.locate_error(fi.locate_dataset, tmp_path)
    assert "the eight folders amusement, anger, awe, contentment, disgust, excitement, fear, " \
        "sadness" in message
    assert "emotion_dataset: missing amusement/, anger/, contentment/, disgust/, excitement/, " \
        "sadness/" in message
    assert "holds: FI.zip, emotion_dataset/" in message


def test_parse_list_file_tolerates_crlf_bom_spaces_and_backslashes():
    data = "\ufeffamusement/a 1.jpg 1\r\n\r\nC:\\fi\\fear\\b.jpg\t0  \r\n".encode()
    assert fi.parse_list_file(data, "train.txt") == [
        (1, "amusement/a 1.jpg", 1), (3, "C:/fi/fear/b.jpg", 0)]


@pytest.mark.parametrize("bad_line", ["awe/x.jpg", "awe/x.jpg positive", "awe/x.jpg 2"])
def test_parse_list_file_names_file_and_line_of_a_malformed_line(bad_line):
    with pytest.raises(ValueError, match=r"val\.txt, line 2: expected '<relative path> <0\|1>'"):
        fi.parse_list_file(f"awe/y.jpg 1\n{bad_line}\n", "val.txt")


def test_resolve_lists_checks_labels_duplicates_and_reports_missing():
    images = {"awe/awe_1.jpg": "awe", "Sad/sad_1.jpg": "sadness"}
    names = {"train": "train.txt", "test": "test.txt"}
    found, missing = fi.resolve_lists(
        {"train": [(1, "/data/emotion_dataset/awe/awe_1.jpg", 1), (2, "sad_1.jpg", 0)],
         "test": [(1, "fear/fear_9.jpg", 0)]}, images, names)
    assert found == {"train": ["awe/awe_1.jpg", "Sad/sad_1.jpg"], "test": []}
    assert missing == {"train": [], "test": ["fear/fear_9.jpg"]}
    with pytest.raises(ValueError, match=r"train\.txt, line 1: awe/awe_1.jpg is labelled 0 but "
                                         r"its folder \(awe\) is positive \(1\)"):
        fi.resolve_lists({"train": [(1, "awe/awe_1.jpg", 0)]}, images, names)
    with pytest.raises(ValueError, match=r"test\.txt, line 4: awe/awe_1.jpg is listed again "
                                         r"\(first in train\.txt, line 1\)"):
        fi.resolve_lists({"train": [(1, "awe/awe_1.jpg", 1)], "test": [(4, "awe/awe_1.jpg", 1)]},
                         images, names)


def test_list_files_without_train_txt_are_an_error(tmp_path):
    shutil.copytree(DUMMY_DATA_LISTS, tmp_path / "fi")
    (tmp_path / "fi" / "train.txt").unlink()
    with pytest.raises(FileNotFoundError, match="but no train.txt beside them"):
        fi.find_list_files(tmp_path / "fi", tmp_path / "fi" / "emotion_dataset")


def test_examples_content_and_skip_report(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        builder = testing.build_dataset(fi.Builder, DUMMY_DATA, tmp_path)
    examples = list(tfds.as_numpy(builder.as_dataset(split="train")))
    emotions = builder.info.features["emotion"].names
    by_name = {ex["image/filename"].decode(): ex for ex in examples}
    assert len(by_name) == 10 and "amusement/amusement_0002.jpg" not in by_name
    for name, example in by_name.items():
        emotion = emotions[example["emotion"]]
        assert name.startswith(emotion + "/")
        assert int(example["label"]) == (emotion in ("amusement", "awe", "contentment",
                                                     "excitement"))
        assert example["image"].shape[-1] == 3 and example["image"].dtype == np.uint8
    # The CMYK and the grayscale JPEG decode to 3 channels; the grayscale one stays grey.
    grey = by_name["sadness/sadness_0002.jpg"]["image"]
    assert np.array_equal(grey[..., 0], grey[..., 1])
    assert by_name["fear/fear_0002.jpg"]["image"].shape[-1] == 3
    assert "amusement/amusement_0002.jpg" in caplog.text and "Truncated" in caplog.text
    assert "skipped 1" in caplog.text


def test_list_splits_content(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        builder = testing.build_dataset(fi.Builder, DUMMY_DATA_LISTS, tmp_path)
    names = {split: sorted(ex["image/filename"].decode()
                           for ex in tfds.as_numpy(builder.as_dataset(split=split)))
             for split in ("train", "validation", "test")}
    assert names["validation"] == ["disgust/disgust_0002.jpg", "excitement/excitement_0002.jpg"]
    assert names["test"] == ["fear/fear_0002.jpg", "sadness/sadness_0002.jpg"]
    assert len(names["train"]) == 12
    assert "sadness/sadness_0009.jpg" in caplog.text  # listed in test.txt, not on disk


def test_archive_file_as_manual_dir_is_a_clear_error(tmp_path):
    archive = tmp_path / "FI.zip"
    archive.write_bytes(b"PK\x03\x04")
    with pytest.raises(FileNotFoundError, match="folder holding the extracted archive"):
        testing.build_dataset(fi.Builder, archive, tmp_path / "data")
