"""The Predictor: inputs decoded by the project's decoder (a bad one never fails a batch), the
box convention, a SavedModel and a finished run as models, and agreement with the evaluation and
with the SavedModel's serving_default.

The models are the shared finished tiny run (``finished``: conftest.py) and its export, written
outside the run's workdir (the run is only read).
"""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from affect_tf import evaluate as evaluate_lib
from affect_tf import fusion as fusion_lib
from affect_tf import io as io_lib
from affect_tf import predictor as predictor_lib
from affect_tf.config import LABEL_NAMES
from affect_tf.predictor import Predictor
from affect_tf.testing import photo_folder, rectangles_scene

RECORD_KEYS = {"source", "label", "label_index", "probabilities", "whole_image_probabilities",
               "image_size", "regions", "top_objectness", "top_senti", "error"}


@pytest.fixture(scope="module")
def models(exported_demo):
    """The finished run, its export and a Predictor of each."""
    config, export_root = exported_demo
    return {"config": config, "export": export_root,
            "saved_model": Predictor.load(export_root, batch_size=4),
            "workdir": Predictor.load(config.workdir, batch_size=4)}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    return folder, photo_folder(folder)


# ---- without a model -----------------------------------------------------------------------------

def test_every_kind_of_input_decodes_or_names_its_reason(tmp_path, photos):
    folder, expected = photos
    for name, reason in expected.items():
        decoded = predictor_lib.decode_input(str(folder / name))
        assert decoded.source == str(folder / name)
        if reason is None:
            assert decoded.error is None, (name, decoded.error)
            assert decoded.image.dtype == np.uint8 and decoded.image.shape[2] == 3
        else:
            assert decoded.image is None and reason in decoded.error, (name, decoded.error)
            assert "0x" not in decoded.error  # No object address: the same text every run.
    # CMYK and grayscale files become RGB of the right size.
    assert predictor_lib.decode_input(str(folder / "f_cmyk.jpg")).image.shape == (150, 200, 3)
    gray = predictor_lib.decode_input(str(folder / "e_grayscale.jpg")).image
    assert gray.shape == (150, 200, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    # Files that are not there or not files, and in-memory inputs.
    assert "No such file" in predictor_lib.decode_input(str(tmp_path / "gone.jpg")).error
    assert "a directory" in predictor_lib.decode_input(str(folder)).error
    png = (folder / "a_scene.png").read_bytes()
    assert predictor_lib.decode_input(png, 3).source == "<bytes 3>"
    assert predictor_lib.decode_input(b"", 4).error.startswith("empty file")
    array = rectangles_scene(1)
    assert predictor_lib.decode_input(array, 5).image is not None
    with pytest.raises(ValueError, match=r"uint8 RGB \[H, W, 3\].*float32 shape=\(2, 2, 3\)"):
        predictor_lib.decode_input(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(TypeError, match="Received: int"):
        predictor_lib.decode_input(7)


def test_boxes_are_x0_y0_x1_y1_in_the_images_own_pixels():
    # Normalized [y1, x1, y2, x2] of a 100 x 200 (H x W) image.
    assert predictor_lib.pixel_box([0.0, 0.0, 1.0, 1.0], 100, 200) == [0.0, 0.0, 200.0, 100.0]
    assert predictor_lib.pixel_box([0.25, 0.1, 0.5, 0.4], 100, 200) == [20.0, 25.0, 80.0, 50.0]
    assert predictor_lib.pixel_box([-0.1, 0.5, 1.2, 0.75], 100, 200) == [100.0, 0.0, 150.0, 100.0]


def test_a_model_path_is_resolved_or_refused_in_one_line(tmp_path, photos):
    folder, _ = photos
    with pytest.raises(predictor_lib.ModelError, match=r"--model .*gone: no such directory; "
                                                        r"expected an export directory"):
        predictor_lib.resolve_model(tmp_path / "gone")
    with pytest.raises(predictor_lib.ModelError, match="neither a SavedModel nor a finished run"):
        predictor_lib.resolve_model(folder)
    with pytest.raises(predictor_lib.ModelError, match="a file, not a directory"):
        predictor_lib.resolve_model(folder / "a_scene.png")
    for version in ("1", "3", "12"):
        (tmp_path / "export" / version).mkdir(parents=True)
        (tmp_path / "export" / version / "saved_model.pb").write_bytes(b"")
    (tmp_path / "export" / "20").mkdir()  # No saved_model.pb: not a version (half-written).
    assert predictor_lib.resolve_model(tmp_path / "export") == (
        "saved_model", tmp_path / "export" / "12", None)
    (tmp_path / "run" / "fold-2").mkdir(parents=True)
    (tmp_path / "run" / "config.json").write_text("{}")
    assert predictor_lib.resolve_model(tmp_path / "run") == ("workdir", tmp_path / "run", None)
    assert predictor_lib.resolve_model(tmp_path / "run" / "fold-2") == (
        "workdir", tmp_path / "run" / "fold-2", 2)


def test_a_broken_saved_model_is_refused_naming_it(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"not a protocol buffer")
    with pytest.raises(predictor_lib.ModelError, match=r"1: the SavedModel does not load"):
        Predictor.load(tmp_path)


# ---- with the models -----------------------------------------------------------------------------

def _check_record(record, reason):
    assert set(record) >= RECORD_KEYS
    if reason is not None:
        assert reason in record["error"]
        assert record["label"] is None and record["probabilities"] is None
        assert record["whole_image_probabilities"] is None and record["regions"] == []
        return
    assert record["error"] is None
    assert record["label"] == LABEL_NAMES[record["label_index"]]
    probabilities = [record["probabilities"][name] for name in LABEL_NAMES]
    assert record["label_index"] == int(np.argmax(probabilities))
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    assert sum(record["whole_image_probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    height, width = record["image_size"]
    assert 1 <= len(record["regions"]) <= 2  # K = 2 in the tiny run.
    for region in record["regions"]:
        x0, y0, x1, y1 = region["box"]
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        assert all(0 <= region[key] <= 1 for key in ("ar", "objectness", "senti"))
    ar = [region["ar"] for region in record["regions"]]
    assert ar == sorted(ar, reverse=True)


@pytest.mark.parametrize("kind", ["saved_model", "workdir"])
def test_a_folder_gets_one_record_per_file_in_order(models, photos, kind):
    folder, expected = photos
    predictor = models[kind]
    paths = [str(folder / name) for name in expected]
    records = predictor.predict(iter(paths))  # An iterator: read batch_size (4) at a time.
    assert [record["source"] for record in records] == paths
    for record, reason in zip(records, expected.values()):
        _check_record(record, reason)
    if kind == "saved_model":
        assert all(record["top_objectness"] is None for record in records)
    else:
        good = [record for record in records if record["error"] is None]
        assert all(record["top_objectness"]["objectness"] == 1.0 for record in good)
        assert all(record["top_senti"]["senti"] >= max(region["senti"] for region in
                                                       record["regions"]) for record in good)


def test_bytes_paths_and_arrays_of_one_image_agree(models, photos):
    folder, _ = photos
    predictor = models["saved_model"]
    path = folder / "a_scene.png"
    array = np.asarray(Image.open(path).convert("RGB"))
    by_path, by_bytes, by_array = predictor.predict([str(path), path.read_bytes(), array])
    assert by_bytes["source"] == "<bytes 1>" and by_array["source"] == "<array 2>"
    for other in (by_bytes, by_array):
        assert {key: value for key, value in other.items() if key != "source"} == {
            key: value for key, value in by_path.items() if key != "source"}
    # One input alone is one image (in a batch of one: float sums differ in the last digits).
    alone = predictor.predict(str(path))[0]["probabilities"]
    assert alone == pytest.approx(by_path["probabilities"], abs=1e-5)


def test_the_predictor_agrees_with_serving_default(models, photos):
    """The API and the SavedModel's own signature fed each file's bytes: labels equal,
    probabilities and boxes equal up to float sums (the predictor calls it 4 images at a time)."""
    folder, expected = photos
    names = [name for name, reason in expected.items() if reason is None]
    records = models["saved_model"].predict([str(folder / name) for name in names])
    model = tf.saved_model.load(str(models["export"] / "1"))
    served = model.signatures["serving_default"](
        images=tf.constant([(folder / name).read_bytes() for name in names]))
    served = {key: value.numpy() for key, value in served.items()}
    np.testing.assert_array_equal([record["label_index"] for record in records], served["label"])
    np.testing.assert_allclose([[r["probabilities"][n] for n in LABEL_NAMES] for r in records],
                               served["probabilities"], atol=1e-5)
    np.testing.assert_allclose(
        [[r["whole_image_probabilities"][n] for n in LABEL_NAMES] for r in records],
        served["whole_image_probabilities"], atol=1e-5)
    for index, record in enumerate(records):
        boxes = served["region_boxes"][index][served["region_valid"][index]]  # [y1, x1, y2, x2]
        np.testing.assert_allclose([region["box"] for region in record["regions"]],
                                   boxes[:, [1, 0, 3, 2]], atol=0.01)
        np.testing.assert_allclose([region["ar"] for region in record["regions"]],
                                   served["region_ar"][index][served["region_valid"][index]],
                                   atol=1e-5)


def test_the_cnn_sees_the_trained_pixels_and_the_proposals_pillows(photos):
    """An RGB JPEG is kept by the builders and decoded by TensorFlow in training (libjpeg's fast
    integer IDCT, a few levels from Pillow's); the CNN gets those pixels, as in serving; other
    files and arrays keep the Python decoder's pixels, which the builders store for them."""
    folder, _ = photos
    jpeg = predictor_lib.decode_input(str(folder / "c_photo.jpg"))
    pixels = predictor_lib.trained_pixels(jpeg)
    np.testing.assert_array_equal(
        pixels, tf.io.decode_image(jpeg.encoded, channels=3, expand_animations=False).numpy())
    assert 0 < np.abs(pixels.astype(int) - jpeg.image).max() <= 16
    png = predictor_lib.decode_input(str(folder / "a_scene.png"))
    np.testing.assert_array_equal(predictor_lib.trained_pixels(png), png.image)
    array = predictor_lib.decode_input(png.image)
    assert predictor_lib.trained_pixels(array) is array.image
    tiff = io.BytesIO()
    Image.fromarray(png.image).save(tiff, format="TIFF")  # Pillow reads it, TensorFlow does not.
    decoded = predictor_lib.decode_input(tiff.getvalue())
    assert decoded.error is None and predictor_lib.trained_pixels(decoded) is decoded.image


def test_the_runs_own_path_reproduces_its_evaluation(models):
    """A finished run as the model: its test images give the evaluation's whole-image
    probabilities, candidates (the proposal cache's), top-K boxes and fused labels."""
    from affect_tf.testing import finished_run

    run = finished_run(models["config"].workdir)
    config = run.scoring_config()  # The evaluation's regions, at its fitted temperature.
    with np.load(run.predict_dir / "predictions_test.npz") as stored:
        predictions = dict(stored)
    names = predictions["filename"].tolist()
    encoded = {example["image/filename"].decode(): example["image"] for example in
               _dataset_examples(run, names)}
    records = models["workdir"].predict([encoded[name] for name in names], candidates=True)

    np.testing.assert_allclose(
        [[r["whole_image_probabilities"][n] for n in LABEL_NAMES] for r in records],
        predictions["global_probs"], atol=1e-5)
    selected = evaluate_lib.select(predictions, config.regions, config.regions.selection)
    svm = fusion_lib.SVMFusion.load(str(run.eval_dir / f"svm_{config.regions.selection}"))
    labels = evaluate_lib.fuse(config.fusion.fusion, predictions["global_probs"], selected,
                               config.fusion, svm=svm)
    np.testing.assert_array_equal([record["label_index"] for record in records], labels)
    for index, record in enumerate(records):
        height, width = record["image_size"]
        count = int(predictions["num_valid"][index])
        np.testing.assert_allclose(
            [candidate["box"] for candidate in record["candidates"]],
            [predictor_lib.pixel_box(box, height, width)
             for box in predictions["boxes"][index, :count]], atol=0.011)
        valid = selected["region_valid"][index]
        np.testing.assert_allclose(
            [region["box"] for region in record["regions"]],
            [predictor_lib.pixel_box(box, height, width)
             for box in selected["region_boxes"][index][valid]], atol=0.011)


def _dataset_examples(run, names):
    from affect_tf import stages

    return stages.data_lib.examples(run.builder, set(names)).as_numpy_iterator()


def test_both_models_see_the_same_whole_image(models, photos):
    folder, expected = photos
    paths = [str(folder / name) for name, reason in expected.items() if reason is None]
    from_export = models["saved_model"].predict(paths)
    from_run = models["workdir"].predict(paths)
    np.testing.assert_allclose(
        [[r["whole_image_probabilities"][n] for n in LABEL_NAMES] for r in from_export],
        [[r["whole_image_probabilities"][n] for n in LABEL_NAMES] for r in from_run], atol=1e-4)
    assert models["saved_model"].model_id != models["workdir"].model_id
    assert models["saved_model"].model_id == Predictor.load(models["export"]).model_id


def test_a_large_or_odd_image_gets_a_record(models):
    # A 1-pixel image has no region; a tall one is decoded and warped like any other.
    tiny = io_lib.encode_png(np.full((1, 1, 3), 200, np.uint8))
    buffer = io.BytesIO()
    Image.fromarray(np.tile(rectangles_scene(3), (20, 1, 1))).save(buffer, format="JPEG")
    for kind in ("saved_model", "workdir"):
        one_pixel, tall = models[kind].predict([tiny, buffer.getvalue()])
        assert one_pixel["error"] is None and one_pixel["regions"] == []
        assert one_pixel["label"] in LABEL_NAMES
        assert tall["image_size"] == [3000, 200] and tall["regions"]


def test_a_run_with_unfinished_stages_is_refused(models, tmp_path):
    import shutil

    from affect_tf import errors

    config = models["config"]
    # A copy without its evaluation (nor the checkpoints and summaries, which no model needs).
    shutil.copytree(config.workdir, tmp_path / "run",
                    ignore=shutil.ignore_patterns("eval-*", "checkpoints", "tensorboard"))
    with pytest.raises(errors.MissingStageError, match=r"No evaluation .* run --mode=evaluate"):
        Predictor.load(tmp_path / "run")
