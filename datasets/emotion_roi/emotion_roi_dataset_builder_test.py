"""Tests of the EmotionROI builder on dummy data in the distribution's layout.

``dummy_data/EmotionROI/`` holds two images per emotion with their stimuli maps (one map of
another size, one grey map stored as RGB), a ``Thumbs.db``, and the split files: ``training.txt``
with CRLF line ends, ``testing.txt`` with trailing spaces, blank lines and one image that is not
on disk (skipped). It is reached through its parent folder. The split sizes come first, then
layouts, errors, split parsing, map handling and example content.
"""

import io
import logging
import pathlib
import shutil

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from affect_tf import testing
from affect_tf.datasets.emotion_roi import emotion_roi_dataset_builder as roi
from affect_tf.io import ImageDecodeError

DUMMY_DATA = pathlib.Path(__file__).parent / "dummy_data"
TOP = DUMMY_DATA / "EmotionROI"


class EmotionRoiTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = roi.Builder
    # TFDS reads the dummy data from EXAMPLE_DIR (default: dummy_data/ beside the builder).
    EXAMPLE_DIR = str(DUMMY_DATA)
    SKIP_CHECKSUMS = True
    SPLITS = {"train": 8, "test": 4}  # testing.txt lists 5, one missing on disk.


def test_locate_accepts_top_folder_and_its_parent():
    assert roi.locate_dataset(DUMMY_DATA) == roi.locate_dataset(TOP)


def test_emotion6_layout_names_the_missing_maps(tmp_path):
    emotion6 = tmp_path / "Emotion6"
    shutil.copytree(TOP / "images", emotion6 / "images")
    (emotion6 / "ground_truth.txt").write_text("[image_filename]\tvalence\tarousal\n")
    message = testing.locate_error(roi.locate_dataset, tmp_path)
    assert "stimuli maps are missing" in message
    assert "ground_truth/<emotion>/<n>.jpg" in message
    assert "this is Emotion6" in message
    assert "training_testing_split/training.txt" in message


def test_wrong_manual_dir_names_expected_files(tmp_path):
    (tmp_path / "EmotionROI.zip").write_bytes(b"PK\x03\x04")
    message = testing.locate_error(roi.locate_dataset, tmp_path)
    assert "images/, ground_truth/ and training_testing_split/training.txt, testing.txt" in message
    assert "holds: EmotionROI.zip" in message


def test_missing_split_file_is_named(tmp_path):
    shutil.copytree(TOP, tmp_path / "EmotionROI")
    (tmp_path / "EmotionROI" / "training_testing_split" / "testing.txt").unlink()
    with pytest.raises(FileNotFoundError, match="missing training_testing_split/testing.txt"):
        roi.locate_dataset(tmp_path)


def test_parse_split_file_tolerates_crlf_bom_paths_case_and_extra_columns():
    data = "\ufeffanger/1.jpg\r\n\r\nimages\\Joy\\2.JPG  \r\nSurprise/3.jpg 1\r\n".encode()
    assert roi.parse_split_file(data, "t.txt") == [
        ("anger", "1.jpg"), ("joy", "2.jpg"), ("surprise", "3.jpg")]


@pytest.mark.parametrize(
    "bad_line", ["1.jpg", "amusement/1.jpg", "anger/readme.txt", "neutral/4.jpg"])
def test_parse_split_file_names_file_and_line_of_a_malformed_line(bad_line):
    with pytest.raises(ValueError, match=r"t\.txt, line 2: expected '<emotion>/<n>\.jpg'"):
        roi.parse_split_file(f"anger/1.jpg\n{bad_line}\n", "t.txt")


def test_parse_split_file_rejects_duplicates():
    with pytest.raises(ValueError,
                       match=r"line 3: anger/1.jpg is listed again \(first on line 1\)"):
        roi.parse_split_file("anger/1.jpg\nfear/1.jpg\nanger/1.jpg\n", "t.txt")


def test_overlapping_split_files_are_an_error(tmp_path):
    shutil.copytree(TOP, tmp_path / "EmotionROI")
    with open(tmp_path / "EmotionROI" / "training_testing_split" / "testing.txt", "a") as f:
        f.write("anger/1.jpg\n")
    with pytest.raises(ValueError, match="share 1 images, e.g. anger/1.jpg"):
        testing.build_dataset(roi.Builder, tmp_path, tmp_path / "data")


def test_stimuli_map_kept_converted_or_resized():
    grey = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8), "L")
    jpeg = io.BytesIO()
    grey.save(jpeg, format="JPEG")
    assert roi.stimuli_map_for_tfds(jpeg.getvalue(), "m.jpg", (8, 6)) == jpeg.getvalue()
    rgb = io.BytesIO()
    grey.convert("RGB").save(rgb, format="JPEG")
    converted = Image.open(io.BytesIO(roi.stimuli_map_for_tfds(rgb.getvalue(), "m.jpg", (8, 6))))
    assert converted.mode == "L" and converted.size == (8, 6)
    resized = Image.open(io.BytesIO(roi.stimuli_map_for_tfds(jpeg.getvalue(), "m.jpg", (16, 12))))
    assert resized.mode == "L" and resized.size == (16, 12)
    with pytest.raises(ImageDecodeError):
        roi.stimuli_map_for_tfds(b"not an image", "m.jpg", (8, 6))


def test_examples_content_and_skip_report(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        builder = testing.build_dataset(roi.Builder, DUMMY_DATA, tmp_path)
    emotions = builder.info.features["emotion"].names
    test = {ex["image/filename"].decode(): ex
            for ex in tfds.as_numpy(builder.as_dataset(split="test"))}
    assert sorted(test) == ["images/disgust/2.jpg", "images/fear/2.jpg", "images/sadness/2.jpg",
                            "images/surprise/2.jpg"]
    for name, example in test.items():
        emotion = name.split("/")[1]
        assert emotions[example["emotion"]] == emotion
        assert int(example["label"]) == (emotion in ("joy", "surprise"))
        assert example["image"].shape[-1] == 3
        assert example["stimuli_map"].shape == example["image"].shape[:2] + (1,)
    # fear/2.jpg's map is 8x8 in the dummy data: resized to the image, and said so.
    assert "ground_truth/fear/2.jpg is 8x8" in caplog.text
    assert "images/surprise/3.jpg" in caplog.text and "skipped 1" in caplog.text
    train = list(tfds.as_numpy(builder.as_dataset(split="train")))
    assert sum(int(ex["label"]) for ex in train) == 3  # joy/1, joy/2, surprise/1
