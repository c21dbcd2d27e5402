"""tf.data input pipeline: decoding by content, augmentation, batching, the proposal join."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from affect_tf import data
from affect_tf.proposals.cache import ProposalArrays


def encode(image: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    pil = Image.fromarray(image)
    if fmt == "GIF":
        pil = pil.convert("P")
    pil.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def gradient_image():
    y, x = np.mgrid[0:40, 0:60]
    return np.stack([x * 4, y * 6, np.full_like(x, 128)], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP"])
def test_decode_by_content_eagerly_and_in_tf_data(fmt, gradient_image):
    encoded = encode(gradient_image, fmt)
    eager = data.decode_image_tensor(tf.constant(encoded)).numpy()
    assert eager.shape == (40, 60, 3) and eager.dtype == np.uint8
    tolerance = 40 if fmt in ("JPEG", "GIF") else 0
    assert np.abs(eager.astype(int) - gradient_image.astype(int)).mean() <= tolerance
    in_graph = next(iter(tf.data.Dataset.from_tensors(encoded).map(data.decode_image_tensor)))
    np.testing.assert_array_equal(in_graph.numpy(), eager)


def test_grayscale_and_rgba_decode_to_three_channels():
    gray = np.full((10, 12), 77, np.uint8)
    rgba = np.zeros((10, 12, 4), np.uint8)
    for image in (gray, rgba):
        decoded = data.decode_image_tensor(tf.constant(encode(image, "PNG")))
        assert decoded.shape == (10, 12, 3)


def example_dataset(images, labels):
    encoded = [encode(img, "PNG") for img in images]
    names = [f"im_{i}.png" for i in range(len(images))]
    return tf.data.Dataset.from_tensor_slices(
        {"image": encoded, "label": labels, data.FILENAME_KEY: names})


def test_training_pipeline_shapes_range_and_determinism(gradient_image):
    dataset = example_dataset([gradient_image] * 6, [0, 1, 0, 1, 0, 1])
    pipeline = data.training_pipeline(dataset, image_size=32, resize_size=40, batch_size=4, seed=3)
    images, labels = next(iter(pipeline))
    assert images.shape == (4, 32, 32, 3) and images.dtype == tf.float32
    assert labels.shape == (4,)
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 255.0
    again, _ = next(iter(data.training_pipeline(
        dataset, image_size=32, resize_size=40, batch_size=4, seed=3)))
    np.testing.assert_allclose(images.numpy(), again.numpy())


def test_random_area_views_zoom_in_reproducibly_and_the_paper_views_stay_put(gradient_image):
    seed = tf.constant([5, 7], tf.int64)
    image = tf.constant(gradient_image)
    paper = data.train_transform(image, 40, 32, seed)
    assert paper.shape == (32, 32, 3)
    # random_area: each view a box of crop_area_min..1 of the 40 x 60 image, warped to 32 x 32.
    views = [data.train_transform(image, 40, 32, tf.constant([5, i], tf.int64),
                                  augmentation="random_area", crop_area_min=0.1)
             for i in range(12)]
    assert all(view.shape == (32, 32, 3) for view in views)
    np.testing.assert_array_equal(
        views[3].numpy(), data.train_transform(image, 40, 32, tf.constant([5, 3], tf.int64),
                                               augmentation="random_area",
                                               crop_area_min=0.1).numpy())
    # The blue-green gradient spans 0-236 in x over the image: a zoomed view spans less of it.
    spans = [float(tf.reduce_max(v[..., 0]) - tf.reduce_min(v[..., 0])) for v in views]
    assert min(spans) < 0.8 * 236
    # crop_area_min = 1: the whole image, only warped (and maybe mirrored).
    whole = data.train_transform(image, 40, 32, seed, augmentation="random_area",
                                 crop_area_min=1.0)
    assert float(tf.reduce_max(whole[..., 0]) - tf.reduce_min(whole[..., 0])) > 0.9 * 236
    with pytest.raises(ValueError, match="augmentation must be 'paper' or 'random_area'. "
                                         "Received: augmentation='zoom'"):
        data.train_transform(image, 40, 32, seed, augmentation="zoom")


def test_evaluation_pipeline_joins_proposals_by_filename(gradient_image):
    dataset = example_dataset([gradient_image] * 3, [0, 1, 1])
    boxes = np.zeros((2, 5, 4), np.float32)
    boxes[0, :2] = [[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]]
    boxes[1, :1] = [[0.1, 0.2, 0.3, 0.4]]
    # Rows out of filename order: the join is by name, not by position.
    table = ProposalArrays(
        filenames=np.array(["im_2.png", "im_0.png"]), boxes=boxes,
        objectness=np.arange(10, dtype=np.float32).reshape(2, 5),
        num_valid=np.array([2, 1], np.int32))
    batch = next(iter(data.evaluation_pipeline(
        dataset, resize_size=48, batch_size=3, proposals=table)))
    assert batch["image"].shape == (3, 48, 48, 3)
    np.testing.assert_array_equal(batch["num_valid"].numpy(), [1, 0, 2])  # im_1 is not cached.
    np.testing.assert_allclose(batch["boxes"][0, 0].numpy(), [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(batch["boxes"][2, :2].numpy(), boxes[0, :2])
    np.testing.assert_allclose(batch["boxes"][1].numpy(), 0.0)
    np.testing.assert_allclose(batch["objectness"][0].numpy(), [5, 6, 7, 8, 9])


def test_ten_crops_and_center_crop():
    images = tf.reshape(tf.range(2 * 8 * 8 * 3, dtype=tf.float32), [2, 8, 8, 3])
    crops = data.ten_crops(images, 6)
    assert crops.shape == (10, 2, 6, 6, 3)
    np.testing.assert_array_equal(crops[0].numpy(), images[:, :6, :6].numpy())
    np.testing.assert_array_equal(crops[5].numpy(), images[:, :6, :6][:, :, ::-1].numpy())
    np.testing.assert_array_equal(data.center_crop(images, 6).numpy(), images[:, 1:7, 1:7].numpy())
