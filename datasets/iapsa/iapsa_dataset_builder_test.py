"""Tests of the IAPSa builder: the TFDS contract for both configs, then norm-file quirks."""

import io
import logging
import pathlib

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from affect_tf import testing
from affect_tf.config import LABEL_NAMES
from affect_tf.datasets import builder_utils
from affect_tf.datasets.iapsa import iapsa_dataset_builder as iapsa

_DUMMY_DATA = pathlib.Path(__file__).parent / "dummy_data"
_NEG_HEADER = ("Picture\tCategory\tAngrMean\tAngrSD\tDisgMean\tDisgSD\tFearMean\tFearSD\t"
               "SadnMean\tSadnSD")
_EMOTION = builder_utils.MIKELS_EMOTIONS.index


class IapsaCategoryTest(tfds.testing.DatasetBuilderTestCase):
    """Dummy norms: 7 negative rows (F, D, A, S, AD, U, S whose image is missing) and 6 positive
    (A, Aw, C, E, AC, U) -> 8 single-category pictures with an image."""

    DATASET_CLASS = iapsa.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["category"]
    # TFDS 4.9 reads the dummy folder from EXAMPLE_DIR (it has no DUMMY_DATA attribute).
    EXAMPLE_DIR = str(_DUMMY_DATA)
    SPLITS = {"train": 8}


class IapsaArgmaxMeansTest(tfds.testing.DatasetBuilderTestCase):
    """All 12 rated pictures with an image, less 2040 (two means tied at 3.5) -> 11."""

    DATASET_CLASS = iapsa.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["argmax_means"]
    EXAMPLE_DIR = str(_DUMMY_DATA)
    SPLITS = {"train": 11}


def test_canonical_number():
    assert iapsa.canonical_number("1050") == "1050"
    assert iapsa.canonical_number(" 1050.0 ") == "1050"
    assert iapsa.canonical_number("2352.10") == "2352.1"
    assert iapsa.canonical_number("2352.1") == "2352.1"
    assert iapsa.canonical_number("Snake") is None
    assert iapsa.canonical_number("") is None


@pytest.mark.parametrize("code, polarity, expected", [
    ("A", "negative", {"anger"}),
    ("A", "positive", {"amusement"}),
    ("Am", "positive", {"amusement"}),
    ("Aw", "positive", {"awe"}),
    ("AW", "positive", {"awe"}),
    ("C", "positive", {"contentment"}),
    ("E", "positive", {"excitement"}),
    ("S", "negative", {"sadness"}),
    ("sadness", "negative", {"sadness"}),
    ("Content", "positive", {"contentment"}),
    ("AD", "negative", {"anger", "disgust"}),
    ("D/F", "negative", {"disgust", "fear"}),
    ("Disgust-Fear", "negative", {"disgust", "fear"}),
    ("AwC", "positive", {"awe", "contentment"}),
    ("AAw", "positive", {"amusement", "awe"}),
    ("U", "positive", {iapsa.UNDIFFERENTIATED}),
    ("Undifferentiated", "negative", {iapsa.UNDIFFERENTIATED}),
])
def test_parse_category(code, polarity, expected):
    assert iapsa.parse_category(code, polarity) == expected


@pytest.mark.parametrize("code, polarity", [
    ("Aw", "negative"), ("C", "negative"), ("S", "positive"), ("Q", "negative"), ("", "positive"),
    ("1", "negative")])
def test_unknown_codes_are_errors_that_list_the_codes(code, polarity):
    with pytest.raises(ValueError, match=f"{polarity} file's codes"):
        iapsa.parse_category(code, polarity)


def test_parse_norms_tab_crlf_with_title_and_blank_cells():
    text = ("Mikels et al. (2005) negative norms\r\n\r\n" + _NEG_HEADER + "\r\n"
            "1050\tF\t1.2\t0.5\t2.0\t1.0\t4.5\t1.6\t1.3\t0.6\r\n"
            "2352.10\tAD\t4.6\t\t4.7\t2.0\t3.2\t1.8\t\t\r\n")
    first, second = iapsa.parse_norms(text.encode(), "negative", "neg.txt")
    assert (first.number, first.category, first.emotions, first.line) == (
        "1050", "F", {"fear"}, 4)
    assert first.means[_EMOTION("fear")] == pytest.approx(4.5)
    assert first.sds[_EMOTION("sadness")] == pytest.approx(0.6)
    # The positive emotions were not rated in the negative file.
    assert np.isnan(first.means[[_EMOTION(e) for e in ("amusement", "awe")]]).all()
    assert second.number == "2352.1" and second.emotions == {"anger", "disgust"}
    assert np.isnan(second.sds[_EMOTION("anger")]) and np.isnan(second.means[_EMOTION("sadness")])


def test_parse_norms_csv_copy_with_header_variants():
    text = ('"IAPS #", "category", "Amusement Mean", "Awe_SD", "awe mean", "CONTENTMENT MEAN",'
            '"Excitement Mean", Desc\n'
            '1463.0, A, 5.1, 1.5, 2.3, 4.2, 3.1, "Kittens, two"\n')
    (row,) = iapsa.parse_norms(text, "positive", "pos.csv")
    assert row.number == "1463" and row.emotions == {"amusement"}
    np.testing.assert_allclose(row.means[[_EMOTION(e) for e in iapsa._EMOTIONS_OF["positive"]]],
                               [5.1, 2.3, 4.2, 3.1])
    assert row.sds[_EMOTION("awe")] == pytest.approx(1.5)


def test_parse_norms_errors_name_file_and_line():
    with pytest.raises(ValueError, match=r"neg.txt, line 3: unknown Category code 'X'"):
        iapsa.parse_norms(_NEG_HEADER + "\n1050\tF\n1051\tX\n", "negative", "neg.txt")
    with pytest.raises(ValueError, match=r"neg.txt, line 2: the 'picture' column must hold"):
        iapsa.parse_norms(_NEG_HEADER + "\nSnake\tF\n", "negative", "neg.txt")
    with pytest.raises(ValueError, match=r"line 3: picture 1050 is listed twice"):
        iapsa.parse_norms(_NEG_HEADER + "\n1050\tF\n1050.0\tS\n", "negative", "neg.txt")
    with pytest.raises(ValueError, match=r"line 2: column 'fearmean' must hold a number"):
        iapsa.parse_norms(_NEG_HEADER + "\n1050\tF\t1\t1\t1\t1\thigh\n", "negative", "neg.txt")
    with pytest.raises(ValueError, match=r"neg.txt: no header row found"):
        iapsa.parse_norms("1050\tF\n", "negative", "neg.txt")


def test_wrong_manual_dir_names_expected_and_found(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "1050.jpg").write_bytes(b"\xff\xd8\xff")
    (tmp_path / "mikels2005negativenorms.txt").write_text(_NEG_HEADER + "\n")
    message = testing.locate_error(iapsa.locate_dataset, tmp_path)
    assert "not found under manual_dir: mikels2005positivenorms.txt." in message
    assert "Found 1 IAPS images" in message and "images/" in message
    assert "CSEA" in message


def test_locate_finds_nested_images_and_prefers_txt(tmp_path):
    sources = iapsa.locate_dataset(_DUMMY_DATA)
    assert sources.images["2352.1"].name == "2352.1.jpg"
    assert len(sources.images) == 13
    assert sources.norm_files["negative"].name == "mikels2005negativenorms.txt"


def test_labellings_on_dummy_data(caplog):
    sources = iapsa.locate_dataset(_DUMMY_DATA)
    pictures = []
    for polarity in LABEL_NAMES:
        path = sources.norm_files[polarity]
        pictures += iapsa.parse_norms(path.read_bytes(), polarity, path.name)
    category = {p.number: e for p, e in iapsa.label_pictures(pictures, "category")}
    assert category == {"1050": "fear", "3000": "disgust", "6350": "anger", "9040": "sadness",
                        "9570": "sadness", "1463": "amusement", "5830": "awe",
                        "2352.1": "contentment", "8370": "excitement"}
    argmax = {p.number: e for p, e in iapsa.label_pictures(pictures, "argmax_means")}
    assert argmax["9410"] == "disgust" and argmax["1750"] == "contentment"
    assert "2040" not in argmax  # tie
    with caplog.at_level(logging.INFO):
        stats = iapsa.check_codes_against_means(pictures)
    assert stats["positive:awe"] == (1, 1)


def test_code_mismatch_warns():
    means = np.full(8, np.nan, np.float32)
    means[[_EMOTION(e) for e in iapsa._EMOTIONS_OF["positive"]]] = [1, 6, 2, 2]  # awe highest
    pictures = [iapsa.Picture(str(1000 + i), "positive", "A", frozenset({"amusement"}), means,
                              means, "pos.txt", i) for i in range(6)]
    stats = iapsa.check_codes_against_means(pictures)
    assert stats == {"positive:amusement": (0, 6)}


def test_build_reports_missing_and_converts_grayscale(tmp_path):
    examples = testing.examples_by_filename(
        testing.build_dataset(iapsa.Builder, _DUMMY_DATA, tmp_path / "data", "category"))
    assert "9570.jpg" not in examples  # listed, image missing: skipped
    assert "7000.jpg" not in examples  # an IAPS picture Mikels did not rate
    kiss = examples["2352.1.jpg"]
    assert kiss["iaps_number"] == b"2352.1" and kiss["category"] == b"C"
    assert kiss["label"] == 1 and kiss["emotion"] == _EMOTION("contentment")
    assert kiss["emotion_means"][_EMOTION("contentment")] == pytest.approx(5.3)
    assert np.isnan(kiss["emotion_means"][_EMOTION("fear")])
    child = examples["9040.jpg"]
    assert child["label"] == 0 and child["image"].shape == (12, 16, 3)


def test_picture_in_both_files_is_an_error(tmp_path):
    image = io.BytesIO()
    Image.new("RGB", (8, 8)).save(image, format="JPEG")
    (tmp_path / "1050.jpg").write_bytes(image.getvalue())
    (tmp_path / "Mikels2005NegativeNorms.txt").write_text(_NEG_HEADER + "\n1050\tF\n")
    (tmp_path / "mikels2005positivenorms.csv").write_text("Picture,Category\n1050.0,C\n")
    with pytest.raises(ValueError, match=r"pictures \['1050'\] are listed in both norm files"):
        testing.build_dataset(iapsa.Builder, tmp_path, tmp_path / "data", "category")
