"""Tests of the ArtPhoto builder: the TFDS contract on dummy data, then the quirks and errors."""

import io
import pathlib
import zipfile

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from affect_tf import testing
from affect_tf.datasets import builder_utils
from affect_tf.datasets.artphoto import artphoto_dataset_builder as artphoto

_DUMMY_DATA = pathlib.Path(__file__).parent / "dummy_data"


class ArtPhotoTest(tfds.testing.DatasetBuilderTestCase):
    """dummy_data/testImages_artphoto: 9 colour JPEGs, 1 grayscale JPEG, 1 corrupt JPEG,
    ReadMe.rtf and .DS_Store -> 10 examples (the corrupt one is skipped and reported)."""

    DATASET_CLASS = artphoto.Builder
    # TFDS 4.9 reads the dummy folder from EXAMPLE_DIR (it has no DUMMY_DATA attribute); this is
    # also its default, `<builder folder>/dummy_data`, spelled out for readers.
    EXAMPLE_DIR = str(_DUMMY_DATA)
    SPLITS = {"train": 10}


def _jpeg(mode: str = "RGB", size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 128).save(buffer, format="JPEG")
    return buffer.getvalue()


def _examples(manual_dir, data_dir) -> dict[str, dict]:
    """Builds ArtPhoto from ``manual_dir``; its examples by file name."""
    return testing.examples_by_filename(
        testing.build_dataset(artphoto.Builder, manual_dir, data_dir))


def test_emotion_from_name():
    assert artphoto.emotion_from_name("sad_0001.jpg") == "sadness"
    assert artphoto.emotion_from_name("Amusement_0101.JPG") == "amusement"
    assert artphoto.emotion_from_name("contentment_0070.jpg") == "contentment"
    assert artphoto.emotion_from_name("joy_0001.jpg") is None  # EmotionROI's, not Mikels'
    assert artphoto.emotion_from_name("happy_0001.jpg") is None
    assert artphoto.emotion_from_name("ReadMe.rtf") is None
    assert artphoto.emotion_from_name("fear0001.jpg") is None


def test_list_examples_ignores_documents_and_reports_unknown_prefixes():
    report = builder_utils.SkipReport("artphoto")
    examples = artphoto.list_examples(
        ["ReadMe.rtf", "sad_0001.jpg", "happy_0003.jpg", "awe_0002.jpg", "notes.txt"], report)
    assert examples == [("awe_0002.jpg", "awe"), ("sad_0001.jpg", "sadness")]
    assert list(report.skipped) == ["happy_0003.jpg"]
    assert "Mikels' emotions" in report.skipped["happy_0003.jpg"]


def test_locate_accepts_top_folder_parent_and_archive(tmp_path):
    top = artphoto.locate_dataset(_DUMMY_DATA / "testImages_artphoto")
    parent = artphoto.locate_dataset(_DUMMY_DATA)
    assert top.names() == parent.names()
    assert ".DS_Store" not in top.names()

    with zipfile.ZipFile(tmp_path / "testImages_artphoto.zip", "w") as archive:
        for path in sorted((_DUMMY_DATA / "testImages_artphoto").iterdir()):
            archive.write(path, f"testImages_artphoto/{path.name}")
        archive.writestr("__MACOSX/testImages_artphoto/._sad_0001.jpg", b"\x00\x05\x16\x07")
    zipped = artphoto.locate_dataset(tmp_path)
    assert isinstance(zipped, builder_utils.ZipFolder)
    assert zipped.names() == top.names()
    assert zipped.read_bytes("sad_0001.jpg") == top.read_bytes("sad_0001.jpg")
    zipped.close()


def test_build_from_archive_matches_build_from_folder(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    with zipfile.ZipFile(manual / "testImages_artphoto.zip", "w") as archive:
        for path in sorted((_DUMMY_DATA / "testImages_artphoto").iterdir()):
            archive.write(path, f"testImages_artphoto/{path.name}")
    from_zip = _examples(manual, tmp_path / "zip_data")
    from_folder = _examples(_DUMMY_DATA / "testImages_artphoto", tmp_path / "folder_data")
    assert sorted(from_zip) == sorted(from_folder)
    assert "fear_0002.jpg" not in from_zip  # corrupt: skipped, not fatal
    sad = from_folder["sad_0001.jpg"]
    assert sad["label"] == 0 and sad["emotion"] == builder_utils.MIKELS_EMOTIONS.index("sadness")
    assert from_folder["awe_0001.jpg"]["label"] == 1
    # The grayscale JPEG comes out with three channels.
    assert from_folder["sad_0002.jpg"]["image"].shape == (10, 12, 3)
    # A colour JPEG is stored byte for byte: decoding gives the file's own pixels.
    original = np.asarray(Image.open(_DUMMY_DATA / "testImages_artphoto" / "awe_0001.jpg"))
    assert np.abs(from_folder["awe_0001.jpg"]["image"].astype(int) - original).max() <= 2


def test_unknown_prefix_is_skipped_not_fatal(tmp_path):
    root = tmp_path / "testImages_artphoto"
    root.mkdir()
    (root / "awe_0001.jpg").write_bytes(_jpeg())
    (root / "anger_0001.jpg").write_bytes(_jpeg("L"))
    (root / "happy_0001.jpg").write_bytes(_jpeg())
    (root / "._awe_0001.jpg").write_bytes(b"\x00\x05\x16\x07")  # AppleDouble litter
    (root / "Thumbs.db").write_bytes(b"\x00")
    examples = _examples(tmp_path, tmp_path / "data")
    assert sorted(examples) == ["anger_0001.jpg", "awe_0001.jpg"]


def test_wrong_manual_dir_names_expected_and_found(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "ground_truth.txt").write_text("x")
    message = testing.locate_error(artphoto.locate_dataset, tmp_path)
    assert "amusement_0001.jpg" in message and "testImages_artphoto" in message
    assert "ground_truth.txt, images/" in message
    assert "imageemotion.org" in message


def test_archive_without_images_is_a_clear_error(tmp_path):
    with zipfile.ZipFile(tmp_path / "testImages_artphoto.zip", "w") as archive:
        archive.writestr("testImages_artphoto/ReadMe.rtf", "{\\rtf1}")
    with pytest.raises(FileNotFoundError, match="holds no <emotion>_<digits>.jpg"):
        artphoto.locate_dataset(tmp_path)


def test_dummy_data_is_the_real_layout():
    # Guard against the dummy folder drifting from README.md beside this file: flat, with the litter.
    root = _DUMMY_DATA / "testImages_artphoto"
    names = {path.name for path in root.iterdir()}
    # (.DS_Store is there too in the checkout; setuptools globs skip dot-files when installing.)
    assert {"ReadMe.rtf", "sad_0001.jpg"} <= names
    assert all(path.is_file() for path in root.iterdir())
