"""Tests of the helpers every builder shares, and of the one error all manual builders share."""

import re
import zipfile

from etils import epath
import pytest

from affect_tf import testing
from affect_tf.datasets import builder_utils


@pytest.mark.parametrize("name, expected", [
    ("sad", "sadness"), ("Content", "contentment"), (" awe ", "awe"), ("Happy", "joy")])
def test_normalize_emotion_accepts_the_spellings_of_the_datasets(name, expected):
    assert builder_utils.normalize_emotion(name) == expected


def test_unknown_emotion_is_an_error_that_names_it():
    with pytest.raises(ValueError, match=r"Received: 'boredom'"):
        builder_utils.normalize_emotion("boredom")


def test_emotion_in_and_polarity():
    assert builder_utils.emotion_in("Sad", builder_utils.MIKELS_EMOTIONS) == "sadness"
    assert builder_utils.emotion_in("joy", builder_utils.MIKELS_EMOTIONS) is None
    assert builder_utils.emotion_in("photos", builder_utils.MIKELS_EMOTIONS) is None
    assert builder_utils.polarity("surprise") == "positive"
    assert builder_utils.polarity("Sad") == "negative"
    example = builder_utils.emotion_example(b"jpeg", "awe", "awe_0001.jpg", votes=3)
    assert example == {"image": b"jpeg", "label": "positive", "emotion": "awe",
                       "image/filename": "awe_0001.jpg", "votes": 3}


def test_zero_one_lines_tolerate_bom_crlf_tabs_and_backslashes():
    data = "\ufeffa b.jpg 1\r\n\r\nC:\\x\\c.jpg\t0  \r\n".encode()
    assert list(builder_utils.zero_one_lines(data, "f.txt", "path")) == [
        (1, "a b.jpg", 1), (3, "C:/x/c.jpg", 0)]
    with pytest.raises(ValueError, match=r"f\.txt, line 2: expected '<path> <0\|1>'.*'x.jpg 2'"):
        list(builder_utils.zero_one_lines("a.jpg 1\nx.jpg 2\n", "f.txt", "path"))


def test_not_found_error_lists_partial_copies_and_what_manual_dir_holds(tmp_path):
    (tmp_path / "photos").mkdir()
    error = builder_utils.not_found_error(
        "X was not found.", epath.Path(tmp_path), "Download X.", ["  a: missing b"])
    assert str(error) == (f"X was not found.\n  a: missing b\nmanual_dir {tmp_path} holds: "
                          "photos/\n\nDownload X.")


def test_find_flat_folder_prefers_the_extracted_folder_then_reads_the_zip(tmp_path):
    find = dict(top_folder="top", archive_name="top.zip", title="X", content="a.jpg",
                instructions="Download X.", holds_dataset=lambda names: "a.jpg" in names)
    with zipfile.ZipFile(tmp_path / "top.zip", "w") as archive:
        archive.writestr("top/a.jpg", b"zipped")
    zipped = builder_utils.find_flat_folder(epath.Path(tmp_path), **find)
    with zipped:
        assert isinstance(zipped, builder_utils.ZipFolder) and zipped.names() == ["a.jpg"]
    (tmp_path / "top").mkdir()
    (tmp_path / "top" / "a.jpg").write_bytes(b"extracted")
    extracted = builder_utils.find_flat_folder(epath.Path(tmp_path), **find)
    assert extracted.read_bytes("a.jpg") == b"extracted"
    assert builder_utils.find_flat_folder(epath.Path(tmp_path / "top" / "none"), **find) is None
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("top/b.jpg", b"")
    with pytest.raises(FileNotFoundError, match="the archive .*other.zip holds no a.jpg"):
        builder_utils.find_flat_folder(epath.Path(tmp_path / "other.zip"), **find)


# Every builder with a manual download turns TFDS's "does not exist or is empty" into a message
# naming the files that belong in manual_dir (builder_utils.manual_dir_or_raise).
@pytest.mark.parametrize("name, config, title, expected", [
    ("twitter1", "five_agree", "Twitter I", "twitter_five_agrees.txt"),
    ("twitter2", None, "Twitter II", "groundTruthLabel.txt"),
    ("emotion_roi", None, "EmotionROI", "ground_truth/<emotion>/<n>.jpg"),
    ("fi", None, "FI", "amusement/ anger/ awe/"),
    ("abstract_paintings", None, "Abstract paintings", "ABSTRACT_groundTruth.csv"),
    ("artphoto", None, "ArtPhoto", "<emotion>_<4 digits>.jpg"),
    ("flickr_vso", None, "Flickr VSO", "<manual_dir>/3244ANPs.txt"),
    ("iapsa", "category", "IAPSa", "mikels2005negativenorms.txt"),
])
def test_missing_manual_dir_is_a_clear_error(name, config, title, expected, tmp_path):
    pattern = f"^{re.escape(title)} needs a manual download(.|\n)*{re.escape(expected)}"
    with pytest.raises(FileNotFoundError, match=pattern):
        testing.build_dataset(name, tmp_path / "nowhere", tmp_path / "data", config)
