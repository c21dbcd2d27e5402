"""affect_tf.experiments.ground_truth and region quality's two sources on one code path: the
EmotionROI builder's dummy data read back through the stage's reader (maps checked against their
images' sizes), the demo's face drawn as a map from its box, and the runner and report on both."""

import csv
import io
import json
import pathlib
import types

import numpy as np
from PIL import Image
import pytest

from affect_tf import errors
from affect_tf import report as report_lib
from affect_tf import stages
from affect_tf import testing
from affect_tf.config import Config, RegionConfig
from affect_tf.datasets.affect_demo import scenes
from affect_tf.datasets.emotion_roi import emotion_roi_dataset_builder as roi
from affect_tf.experiments import ground_truth, region_quality, runner

DUMMY_DATA = pathlib.Path(roi.__file__).parent / "dummy_data"
# The dummy data's test split (testing.txt lists a fifth image that is not on disk).
TEST_NAMES = ["images/disgust/2.jpg", "images/fear/2.jpg", "images/sadness/2.jpg",
              "images/surprise/2.jpg"]
WHOLE, QUARTER, FACE, ELSEWHERE = [0, 0, 1, 1], [0, 0, 0.5, 0.5], [0.25, 0.25, 0.5, 0.5], \
    [0.6, 0.6, 0.95, 0.95]


def _encoded(array: np.ndarray, image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=image_format)
    return buffer.getvalue()


def fake_predictions(count: int, first_box, second_box) -> dict:
    """Two candidates an image: the first sure of its class and of low objectness (the top-1 by
    AR and Senti), the second undecided and of high objectness (the top-1 by objectness)."""
    labels = np.arange(count) % 2
    confident = np.where(labels[:, None] == 1, [0.01, 0.99], [0.99, 0.01])
    probs = np.stack([confident, np.full((count, 2), 0.5)], axis=1).astype(np.float32)
    return {
        "label": labels.astype(np.int64), "filename": np.asarray(TEST_NAMES[:count] + [
            f"extra/{index}.jpg" for index in range(count - len(TEST_NAMES))]),
        "boxes": np.tile(np.asarray([first_box, second_box], np.float32), (count, 1, 1)),
        "candidate_probs": probs,
        "global_probs": np.where(labels[:, None] == 1, [0.4, 0.6], [0.6, 0.4]).astype(np.float32),
        "objectness": np.tile(np.asarray([0.1, 0.9], np.float32), (count, 1)),
        "num_valid": np.full(count, 2, np.int32)}


def _config(workdir) -> Config:
    """Default settings but K = 2, the fake predictions' m (the K sweep stops at m)."""
    return Config(workdir=str(workdir), regions=RegionConfig(top_k=2)).validate()


@pytest.fixture(scope="module")
def emotion_roi(tmp_path_factory):
    """The EmotionROI builder's dummy data, prepared (its map of another size resized)."""
    return testing.build_dataset(roi.Builder, DUMMY_DATA, tmp_path_factory.mktemp("roi"))


# ---------------------------------------------------------------------------------------------
# Decoding and aligning a stored map.


def test_a_grey_png_or_jpeg_map_decodes_to_uint8_height_by_width():
    grey = np.arange(6 * 10, dtype=np.uint8).reshape(6, 10) * 4
    png = ground_truth.aligned_map(_encoded(grey, "PNG"), (6, 10), "images/a/1.jpg")
    assert png.dtype == np.uint8 and png.shape == (6, 10)
    np.testing.assert_array_equal(png, grey)  # PNG is lossless
    jpeg = ground_truth.aligned_map(_encoded(grey, "JPEG"), (6, 10), "images/a/1.jpg")
    assert jpeg.shape == (6, 10) and np.abs(jpeg.astype(int) - grey).max() < 16
    assert ground_truth.encoded_image_size(_encoded(np.zeros((6, 10, 3), np.uint8), "JPEG"),
                                           "x") == (6, 10)


def test_a_map_of_another_size_is_refused_naming_the_file_and_both_sizes():
    stored = _encoded(np.zeros((8, 8), np.uint8), "PNG")
    with pytest.raises(errors.DataError,
                       match=r"images/fear/2.jpg: its stimuli map is 8 x 8 pixels \(height x "
                             r"width\) but the image is 12 x 13\. .*rebuild the dataset"):
        ground_truth.aligned_map(stored, (12, 13), "images/fear/2.jpg")
    # Transposed is not the same size either.
    with pytest.raises(errors.DataError, match="is 6 x 10 pixels .* the image is 10 x 6"):
        ground_truth.aligned_map(_encoded(np.zeros((6, 10), np.uint8), "PNG"), (10, 6), "x")


def test_a_map_that_is_not_a_grey_image_is_refused_with_what_was_received():
    rgb = _encoded(np.zeros((6, 10, 3), np.uint8), "PNG")
    with pytest.raises(errors.DataError, match=r"m.jpg: its stimuli map must be a 1-channel "
                                               r"8-bit image .*Received: mode 'RGB', 10 x 6"):
        ground_truth.decode_map(rgb, "m.jpg")
    with pytest.raises(errors.DataError, match=r"m.jpg: its stimuli map does not decode as an "
                                               r"image \(12 bytes"):
        ground_truth.decode_map(b"not an image", "m.jpg")
    with pytest.raises(errors.DataError, match="m.jpg: its image does not decode"):
        ground_truth.encoded_image_size(b"", "m.jpg")


# ---------------------------------------------------------------------------------------------
# The demo's face as a map.


@pytest.mark.parametrize("index", range(6))
def test_the_face_map_is_the_face_the_demo_draws(index):
    scene = scenes.render_scene(scenes.scene_rng(scenes.DATASET_SEED, index), index % 2)
    face = ground_truth.face_map(scene.box, 256, 256)
    assert face.dtype == np.uint8 and set(np.unique(face)) == {0, 255}
    drawn = face > 0
    # Its pixels' tight box is object_box, and it is the drawn face (ring included) to within
    # the pixels of its edge: an ellipse inscribed in the box, not the box.
    rows, columns = np.nonzero(drawn)
    top, left, bottom, right = np.round(np.asarray(scene.box) * 256).astype(int)
    assert (rows.min(), columns.min(), rows.max() + 1, columns.max() + 1) == (
        top, left, bottom, right)
    overlap = np.sum(drawn & scene.object_mask) / np.sum(drawn | scene.object_mask)
    assert overlap > 0.95, (index, scene.close_up, overlap)


def test_the_ellipse_covers_pi_over_four_of_its_box_and_never_nothing():
    box = [0.25, 0.125, 0.75, 0.625]  # 128 x 128 pixels of a 256 x 256 map
    precision, recall = region_quality.precision_recall(
        region_quality.ellipse_map(box, 256, 256), box)
    assert precision[0] == pytest.approx(np.pi / 4, abs=0.01) and recall[0] == 1.0
    np.testing.assert_array_equal(precision[:-1], precision[0])  # binary: flat below gamma = 1
    assert np.count_nonzero(region_quality.ellipse_map([0.5, 0.5, 0.501, 0.502], 20, 20)) == 1
    assert np.all(region_quality.ellipse_map(WHOLE, 1, 1) == 255)
    with pytest.raises(ValueError, match="y1 < y2 and x1 < x2.*Received: box=\\[0.6, 0.0, 0.2"):
        ground_truth.face_map([0.6, 0.0, 0.2, 1.0], 8, 8)


# ---------------------------------------------------------------------------------------------
# The maps as region quality reads them: once, in order, one at a time.


def test_region_quality_reads_a_generator_of_maps_once_and_counts_it():
    predictions = fake_predictions(3, FACE, ELSEWHERE)
    maps = [region_quality.box_map(FACE, 40 + 8 * index, 64) for index in range(3)]
    from_list = region_quality.top1_region_quality(predictions, maps, RegionConfig())
    from_generator = region_quality.top1_region_quality(
        predictions, (stimuli_map for stimuli_map in maps), RegionConfig())
    for selection in ("ar", "obj", "senti"):
        np.testing.assert_array_equal(from_generator[selection]["precision"],
                                      from_list[selection]["precision"])
    assert from_list["ar"]["mean_recall"] == 1.0 and from_list["obj"]["mean_recall"] == 0.0
    for wrong in (2, 4):
        with pytest.raises(ValueError, match=f"one stimuli map per image of the predictions "
                                             f"\\(3\\). Received: {wrong} maps"):
            region_quality.top1_region_quality(
                predictions, (maps[0] for _ in range(wrong)), RegionConfig())


# ---------------------------------------------------------------------------------------------
# The stage's reader and the runner on EmotionROI's dummy data, and on the demo's face.


def test_the_stage_reads_emotion_roi_maps_at_their_images_size(emotion_roi):
    stored = testing.examples_by_filename(emotion_roi, "test")
    assert sorted(stored) == TEST_NAMES
    names = TEST_NAMES[::-1]  # any order: the predictions'
    maps = list(stages._stimuli_maps(types.SimpleNamespace(builder=emotion_roi), names))
    for name, stimuli_map in zip(names, maps):
        assert stimuli_map.dtype == np.uint8
        # What TFDS decodes, at the image's size (fear/2.jpg's 8 x 8 map was resized to it). The
        # grey levels may differ by one: TensorFlow's JPEG decoder uses another inverse DCT than
        # PIL's (which the proposal stage decodes the images with, too).
        assert stimuli_map.shape == stored[name]["image"].shape[:2]
        np.testing.assert_allclose(stimuli_map, stored[name]["stimuli_map"][..., 0], atol=1)


def test_the_runner_scores_emotion_roi_maps_and_the_report_says_so(emotion_roi, tmp_path):
    test = fake_predictions(4, WHOLE, QUARTER)
    validation = fake_predictions(6, WHOLE, QUARTER)
    maps = list(stages._stimuli_maps(types.SimpleNamespace(builder=emotion_roi), TEST_NAMES))
    config = _config(tmp_path)
    # The dataset's maps come first even where the predictions carry an object box too.
    test["object_box"] = np.tile(np.asarray(FACE, np.float32), (4, 1))
    outputs, summary = runner.run_all(tmp_path, validation, test, config,
                                      stimuli_maps=iter(maps))
    assert {"region_quality.csv", "region_quality.png", "summary.json"} <= set(outputs)
    quality = summary["region_quality"]
    assert quality["ground_truth_kind"] == ground_truth.STIMULI_MAPS and quality["images"] == 4
    assert (quality["ar"]["paper_precision"], quality["ar"]["paper_recall"]) == (0.69, 0.59)

    # About the figures of region quality on the maps TFDS decodes itself (one grey level apart
    # at most, above), in the predictions' order.
    stored = testing.examples_by_filename(emotion_roi, "test")
    expected = region_quality.top1_region_quality(
        test, [stored[name]["stimuli_map"][..., 0] for name in TEST_NAMES], config.regions)
    for selection in ("ar", "obj", "senti"):
        for key in ("mean_precision", "mean_recall"):
            assert quality[selection][key] == pytest.approx(expected[selection][key], abs=0.01)
    # What the thresholds force with these maps (every pixel marked: 48 and up): at gamma = 0
    # the whole image (AR's top-1) is all ground truth, the quarter (Obj's) a part of it; the
    # whole image covers the ground truth at every threshold where one is left.
    with (tmp_path / "region_quality.csv").open(newline="") as handle:
        rows = [{key: float(value) for key, value in row.items()}
                for row in csv.DictReader(handle)]
    assert len(rows) == 256
    assert rows[0]["ar_precision"] == 1.0 and 0 < rows[0]["obj_recall"] < 1
    ar_recall = np.asarray([row["ar_recall"] for row in rows])
    brightest = max(int(stimuli_map.max()) for stimuli_map in maps)
    np.testing.assert_array_equal(ar_recall[:brightest], 1.0)
    assert np.all(np.isnan(ar_recall[brightest:]))

    report = "\n".join(report_lib.experiments_section(tmp_path.parent, tmp_path))
    assert "against the dataset's stimuli maps (EmotionROI's `stimuli_map`)" in report
    assert "4 test images" in report and "AR 0.69 precision / 0.59 recall" in report
    assert "objectness box 0.63 / 0.53" in report


def test_the_runner_scores_the_demo_face_as_a_map(tmp_path):
    test = fake_predictions(4, FACE, ELSEWHERE)
    test["object_box"] = np.tile(np.asarray(FACE, np.float32), (4, 1))
    _, summary = runner.run_all(tmp_path, fake_predictions(6, FACE, ELSEWHERE), test,
                                _config(tmp_path))
    quality = json.loads((tmp_path / "summary.json").read_text())["region_quality"]
    assert quality == summary["region_quality"]
    assert quality["ground_truth_kind"] == ground_truth.FACE_MAPS
    # AR's top-1 is the face's box: all of the face, on pi / 4 of the box; Obj's misses it.
    assert quality["ar"]["mean_recall"] == 1.0
    assert quality["ar"]["mean_precision"] == pytest.approx(np.pi / 4, abs=0.02)
    assert quality["obj"]["mean_precision"] == 0.0
    report = "\n".join(report_lib.experiments_section(tmp_path.parent, tmp_path))
    assert "the demo's face drawn as a stimuli map" in report and "for scale only" in report


def test_a_stored_map_of_another_size_stops_the_stage_naming_it(tmp_path, monkeypatch):
    keep_as_distributed = roi.stimuli_map_for_tfds

    def unresized(data, name, size):  # fear/2.jpg's 8 x 8 map stored as it is
        return data if name == "ground_truth/fear/2.jpg" else keep_as_distributed(data, name, size)

    monkeypatch.setattr(roi, "stimuli_map_for_tfds", unresized)
    builder = testing.build_dataset(roi.Builder, DUMMY_DATA, tmp_path)
    maps = stages._stimuli_maps(types.SimpleNamespace(builder=builder), TEST_NAMES)
    assert next(maps).shape == (13, 12)  # disgust/2.jpg, as it should be
    with pytest.raises(errors.DataError, match=r"images/fear/2.jpg: its stimuli map is 8 x 8 "
                                               r"pixels \(height x width\) but the image is "
                                               r"13 x 12"):
        next(maps)
