"""Tests of the Flickr VSO builder: the Beam build on dummy data, then the ANP-list quirks."""

import logging
import pathlib

import pytest
import tensorflow_datasets as tfds

from affect_tf import testing
from affect_tf.datasets import builder_utils
from affect_tf.datasets.flickr_vso import flickr_vso_dataset_builder as flickr

_DUMMY_DATA = pathlib.Path(__file__).parent / "dummy_data"


class FlickrVsoTest(tfds.testing.DatasetBuilderTestCase):
    """Built with Apache Beam (DirectRunner). dark_night 2 + happy_dog 2 (a grayscale JPEG and a
    PNG named .jpg) + beautiful_sky 1 (its HTML-as-.jpg skipped) = 5; plain_wall (sentiment 0)
    and mystery_cat (not in the list) give nothing."""

    DATASET_CLASS = flickr.Builder
    # TFDS 4.9 reads the dummy folder from EXAMPLE_DIR (it has no DUMMY_DATA attribute).
    EXAMPLE_DIR = str(_DUMMY_DATA)
    SPLITS = {"train": 5}


def test_parse_anp_list_skips_header_and_adjective_lines():
    anps = flickr.parse_anp_list((_DUMMY_DATA / "3244ANPs.txt").read_bytes())
    assert sorted(anps) == ["beautiful_flowers", "beautiful_sky", "dark_night", "happy_dog",
                            "plain_wall"]
    night = anps["dark_night"]
    assert (night.sentiment, night.num_images, night.line) == (-1.41, 1_660_000, 8)
    assert anps["plain_wall"].sentiment == 0.0


def test_indented_anp_starting_with_a_digit_is_kept():
    text = "h1\n1 3d [sentiment: 0.5]\n  3d_movie [sentiment: 0.80] [#imgs: 9,000]\n"
    assert list(flickr.parse_anp_list(text)) == ["3d_movie"]


def test_parse_anp_list_tolerates_bom_blank_lines_and_missing_count():
    text = "\ufeffheader\n\n\n  Cute_Kitten [sentiment:1.5]\r\n  sad_face [sentiment: -.9] \n"
    anps = flickr.parse_anp_list(text.encode())
    assert anps["cute_kitten"].name == "Cute_Kitten" and anps["cute_kitten"].num_images is None
    assert anps["sad_face"].sentiment == pytest.approx(-0.9)


def test_malformed_line_after_header_names_file_and_line():
    text = "h1\nh2\nh3\n  dark_night [sentiment: -1.41] [#imgs: 1,660,000]\n  dark_day sentiment\n"
    with pytest.raises(ValueError, match=r"ANPs.txt, line 5: expected `<adjective>_<noun>"):
        flickr.parse_anp_list(text, "ANPs.txt")
    twice = "  dark_night [sentiment: -1.41]\n  dark_night [sentiment: 1.0]\n"
    with pytest.raises(ValueError, match=r"line 2: dark_night is listed again"):
        flickr.parse_anp_list(twice)
    with pytest.raises(ValueError, match=r"no ANP line found"):
        flickr.parse_anp_list("just\na header\n")


def test_plan_folders_reports_unknown_and_drops_zero(caplog):
    anps = flickr.parse_anp_list((_DUMMY_DATA / "3244ANPs.txt").read_bytes())
    report = builder_utils.SkipReport("flickr_vso")
    with caplog.at_level(logging.INFO):
        plan = flickr.plan_folders(["plain_wall", "Dark_Night", "mystery_cat"], anps, report)
    assert plan[0] == ("Dark_Night", "dark_night", -1.41)
    assert plan[1][:2] == ("mystery_cat", None) and plan[2] == ("plain_wall", None, 0.0)
    assert list(report.skipped) == ["bi_concepts1553/mystery_cat/"]
    assert "sentiment 0" in caplog.text and "3 of the 5 listed ANPs have no folder" in caplog.text


def test_beam_steps_without_a_pipeline():
    images = str(_DUMMY_DATA / "bi_concepts1553")
    listed = list(flickr.list_folder(("dark_night", "dark_night", -1.41), images,
                                     "bi_concepts1553"))
    assert listed == [
        ("dark_night", -1.41, "bi_concepts1553/dark_night/2240468651_3f0c5b8e21.jpg"),
        ("dark_night", -1.41, "bi_concepts1553/dark_night/3326731084_9a1d2c7e55.jpg")]
    assert list(flickr.list_folder(("plain_wall", None, 0.0), images, "bi_concepts1553")) == []
    ((key, example),) = flickr.read_example(listed[0], str(_DUMMY_DATA))
    assert key == example["image/filename"] == listed[0][2]
    assert example["label"] == "negative" and example["anp"] == "dark_night"
    broken = ("beautiful_sky", 1.89, "bi_concepts1553/beautiful_sky/6023318870_1f4a8b2c93.jpg")
    assert list(flickr.read_example(broken, str(_DUMMY_DATA))) == []
    missing = ("beautiful_sky", 1.89, "bi_concepts1553/beautiful_sky/gone.jpg")
    assert list(flickr.read_example(missing, str(_DUMMY_DATA))) == []


def test_locate_accepts_root_and_parent(tmp_path):
    assert flickr.locate_dataset(_DUMMY_DATA).root == _DUMMY_DATA
    assert flickr.locate_dataset(_DUMMY_DATA.parent).root == _DUMMY_DATA


def test_wrong_manual_dir_names_expected_and_found(tmp_path):
    (tmp_path / "bi_concepts1553").mkdir()
    (tmp_path / "anp_list.csv").write_text("x")
    message = testing.locate_error(flickr.locate_dataset, tmp_path)
    assert "3244ANPs.txt beside the folder bi_concepts1553/" in message
    assert "holds: anp_list.csv, bi_concepts1553/" in message
