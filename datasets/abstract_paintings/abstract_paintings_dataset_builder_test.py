"""Tests of the Abstract paintings builder: the TFDS contract on dummy data, then CSV quirks."""

import pathlib
import zipfile

import numpy as np
import pytest
import tensorflow_datasets as tfds

from affect_tf import testing
from affect_tf.datasets import builder_utils
from affect_tf.datasets.abstract_paintings import abstract_paintings_dataset_builder as abstract

_DUMMY_DATA = pathlib.Path(__file__).parent / "dummy_data"
_HEADER = "'','Amusement','Anger','Awe','Content','Disgust','Excitement','Fear','Sad'"


class AbstractPaintingsTest(tfds.testing.DatasetBuilderTestCase):
    """dummy_data/testImages_abstract: 6 CSV rows (CRLF) -> 4 examples: one tie dropped, one
    painting missing; abstract_0007.jpg has no row (reported)."""

    DATASET_CLASS = abstract.Builder
    # TFDS 4.9 reads the dummy folder from EXAMPLE_DIR (it has no DUMMY_DATA attribute).
    EXAMPLE_DIR = str(_DUMMY_DATA)
    SPLITS = {"train": 4}


def test_parse_single_quoted_csv_with_crlf_and_bom():
    data = ("\ufeff" + _HEADER + "\r\n\r\n'abstract_0001.jpg',6,1,2,1,0,3,1,0\r\n").encode()
    (row,) = abstract.parse_ground_truth(data)
    assert row.filename == "abstract_0001.jpg" and row.line == 3
    np.testing.assert_array_equal(row.votes, [6, 1, 2, 1, 0, 3, 1, 0])
    assert row.votes.dtype == np.int32


def test_parse_accepts_unquoted_reordered_header_and_spaces():
    text = ",Sad, Fear,Excitement,Disgust,Content,Awe,Anger,Amusement\n" \
           "'abstract_0009.jpg', 1, 2, 3, 4, 5, 6, 7, 8.0,\n"
    (row,) = abstract.parse_ground_truth(text)
    # Back in Mikels' order: amusement ... sadness.
    np.testing.assert_array_equal(row.votes, [8, 7, 6, 5, 4, 3, 2, 1])


def test_parse_without_header_uses_the_original_order():
    (row,) = abstract.parse_ground_truth("'abstract_0001.jpg',1,2,3,4,5,6,7,8\n")
    np.testing.assert_array_equal(row.votes, np.arange(1, 9))


@pytest.mark.parametrize("row, message", [
    ("'abstract_0001.jpg',1,2,3", "line 2: expected a quoted file name and 8 vote counts"),
    ("'abstract_0001.jpg',1,2,3,4,5,6,7,x", "line 2: column 'Sad' must hold a vote count"),
    ("'abstract_0001.jpg',1,2,3,4,5,6,7,-1", "Received: '-1'"),
    ("'abstract_0001.jpg',1,2,3,4,5,6,7,1.5", "Received: '1.5'"),
])
def test_malformed_rows_name_file_and_line(row, message):
    with pytest.raises(ValueError, match=message) as error:
        abstract.parse_ground_truth(f"{_HEADER}\n{row}\n", "gt.csv")
    assert str(error.value).startswith("gt.csv, line 2")


def test_unknown_column_and_duplicate_rows_are_errors():
    with pytest.raises(ValueError, match="line 1: unknown emotion column"):
        abstract.parse_ground_truth(_HEADER.replace("Awe", "Boredom") + "\n")
    with pytest.raises(ValueError, match="expected one column per Mikels emotion"):
        abstract.parse_ground_truth(_HEADER.replace("'Awe'", "'Fear'") + "\n")
    row = "'abstract_0001.jpg',1,2,3,4,5,6,7,8"
    with pytest.raises(ValueError, match="line 3: abstract_0001.jpg is listed twice .*line 2"):
        abstract.parse_ground_truth(f"{_HEADER}\n{row}\n{row}\n")


def test_top_emotion_drops_ties():
    assert abstract.top_emotion([6, 1, 2, 1, 0, 3, 1, 0]) == "amusement"
    assert abstract.top_emotion([0, 0, 0, 0, 0, 0, 0, 5]) == "sadness"
    assert abstract.top_emotion([1, 0, 4, 2, 0, 1, 4, 2]) is None
    assert abstract.top_emotion([0] * 8) is None


def test_select_examples_reports_missing_and_unlisted():
    rows = abstract.parse_ground_truth(
        (_DUMMY_DATA / "testImages_abstract" / abstract.GROUND_TRUTH).read_bytes())
    names = builder_utils.DiskFolder(_DUMMY_DATA / "testImages_abstract").names()
    report = builder_utils.SkipReport("abstract_paintings")
    selected = abstract.select_examples(rows, names, report)
    assert [(name, emotion) for name, _, emotion in selected] == [
        ("abstract_0001.jpg", "amusement"), ("abstract_0002.jpg", "sadness"),
        ("abstract_0005.jpg", "contentment"), ("abstract_0006.jpg", "disgust")]
    assert sorted(report.skipped) == ["abstract_0004.jpg", "abstract_0007.jpg"]
    assert "line 5" in report.skipped["abstract_0004.jpg"]


def test_build_from_archive_keeps_votes(tmp_path):
    with zipfile.ZipFile(tmp_path / "testImages_abstract.zip", "w") as archive:
        for path in sorted((_DUMMY_DATA / "testImages_abstract").iterdir()):
            archive.write(path, f"testImages_abstract/{path.name}")
    examples = testing.examples_by_filename(
        testing.build_dataset(abstract.Builder, tmp_path, tmp_path / "data"))
    assert sorted(examples) == [
        "abstract_0001.jpg", "abstract_0002.jpg", "abstract_0005.jpg", "abstract_0006.jpg"]
    sad = examples["abstract_0002.jpg"]
    np.testing.assert_array_equal(sad["votes"], [0, 2, 1, 1, 2, 0, 3, 5])
    assert sad["label"] == 0 and sad["emotion"] == builder_utils.MIKELS_EMOTIONS.index("sadness")
    assert examples["abstract_0005.jpg"]["label"] == 1
    assert examples["abstract_0001.jpg"]["image"].shape == (17, 20, 3)


def test_wrong_manual_dir_names_expected_and_found(tmp_path):
    (tmp_path / "testImages_artphoto").mkdir()
    message = testing.locate_error(abstract.locate_dataset, tmp_path)
    assert "ABSTRACT_groundTruth.csv" in message and "testImages_abstract" in message
    assert "holds: testImages_artphoto/" in message


def test_locate_accepts_top_folder_and_parent_and_any_csv_case(tmp_path):
    assert abstract.locate_dataset(_DUMMY_DATA).path.name == "testImages_abstract"
    top = _DUMMY_DATA / "testImages_abstract"
    assert abstract.locate_dataset(top).path == top
    (tmp_path / "abstract_groundtruth.CSV").write_text(_HEADER + "\n")
    assert abstract.locate_dataset(tmp_path).path == tmp_path
