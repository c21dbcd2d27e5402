"""affect_tf.data.served_decode: the served graph decodes a user's file into the pixels training
sees of the same file (a builder's stored bytes, decoded by training's decoder), pixel for pixel,
for every format a builder accepts; a file it cannot serve fails its own row only."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from affect_tf import io as io_lib
from affect_tf.data import served_decode, transforms
from affect_tf.datasets import builder_utils

HEIGHT, WIDTH = 21, 26


def _save(image: Image.Image, file_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=file_format, **options)
    return buffer.getvalue()


def _files() -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (HEIGHT, WIDTH), dtype=np.uint8)
    grey = rgb[..., 1].copy()
    palette = Image.fromarray(rgb).quantize(16)  # A 4-bit palette PNG.
    frames = [Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8))
              .quantize(32) for _ in range(3)]
    wide = rng.integers(0, 65536, (HEIGHT, WIDTH, 4), dtype=np.uint16)
    return {
        "jpeg_rgb": _save(Image.fromarray(rgb), "JPEG", quality=90),
        "jpeg_grey": _save(Image.fromarray(grey), "JPEG", quality=90),
        "jpeg_cmyk": _save(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=90),
        "png_rgb": _save(Image.fromarray(rgb), "PNG"),
        "png_rgba": _save(Image.fromarray(np.dstack([rgb, alpha])), "PNG"),
        "png_grey": _save(Image.fromarray(grey), "PNG"),
        "png_grey_alpha": _save(Image.fromarray(np.dstack([grey, alpha]), "LA"), "PNG"),
        "png_palette": _save(palette, "PNG"),
        "png_palette_transparent": _save(palette, "PNG", transparency=3),
        "png_16_bit_grey": _save(Image.fromarray(wide[..., 0]), "PNG"),
        "png_16_bit_rgb": tf.io.encode_png(wide[..., :3]).numpy(),
        "png_16_bit_rgba": tf.io.encode_png(wide).numpy(),
        "gif_animated": _save(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "bmp_24": _save(Image.fromarray(rgb), "BMP"),
        "bmp_32": _save(Image.fromarray(np.dstack([rgb, alpha])), "BMP"),
        "bmp_8_palette": _save(palette, "BMP"),
        "bmp_8_grey": _save(Image.fromarray(grey), "BMP"),
    }


FILES = _files()


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_served_pixels_are_the_trained_pixels(name):
    data = FILES[name]
    served = served_decode.decode_as_builders(tf.constant(data)).numpy()
    # What training reads: the builder's stored bytes through training's decoder.
    stored = builder_utils.image_for_tfds(data, name)
    trained = transforms.decode_image_tensor(tf.constant(stored)).numpy()
    assert served.dtype == np.uint8 and served.shape == (HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(served, trained)
    if name != "jpeg_rgb":  # Kept as is by the builder; the rest are the project decoder's pixels.
        np.testing.assert_array_equal(served, io_lib.decode_image_bytes(data))


def test_transparency_is_composited_on_white():
    pixels = np.zeros((2, 3, 4), np.uint8)
    pixels[..., 0] = 200
    pixels[0, :, 3] = 0  # Fully transparent: white.
    pixels[1, :, 3] = 255  # Opaque: the colour itself.
    served = served_decode.decode_as_builders(tf.constant(_save(Image.fromarray(pixels), "PNG")))
    np.testing.assert_array_equal(served.numpy()[0], np.full((3, 3), 255))
    np.testing.assert_array_equal(served.numpy()[1], np.tile([200, 0, 0], (3, 1)))


def test_the_compositing_formula_equals_pillows_for_every_colour_and_alpha():
    colour, alpha = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    rgba = np.stack([colour, colour, colour, alpha], axis=-1).astype(np.uint8)
    white = Image.new("RGBA", (256, 256), (255, 255, 255, 255))
    expected = np.asarray(Image.alpha_composite(white, Image.fromarray(rgba, "RGBA")).convert("RGB"))
    np.testing.assert_array_equal(served_decode.composite_on_white(tf.constant(rgba)).numpy(),
                                  expected)


def _refusals() -> dict[str, bytes]:
    frame = Image.fromarray(np.random.default_rng(1).integers(0, 256, (6, 7, 3), np.uint8))
    jpeg = FILES["jpeg_rgb"]
    return {
        "not an image": b"this is not an image",
        "empty": b"",
        "truncated jpeg": jpeg[:len(jpeg) * 6 // 10],
        "truncated png": FILES["png_rgb"][:200],
        "gif with a transparent colour": _save(frame.quantize(8), "GIF", transparency=2),
        "1-bit bmp": _save(Image.fromarray(np.eye(8, dtype=bool)), "BMP"),
    }


@pytest.mark.parametrize("name", sorted(_refusals()))
def test_a_file_it_cannot_serve_raises_like_a_decoder(name):
    with pytest.raises(tf.errors.InvalidArgumentError):
        served_decode.decode_as_builders(tf.constant(_refusals()[name]))


def test_gif_transparency_is_read_from_the_first_frames_control_block():
    frame = Image.fromarray(np.random.default_rng(2).integers(0, 256, (6, 7, 3), np.uint8))
    opaque = _save(frame.quantize(8), "GIF")
    transparent = _save(frame.quantize(8), "GIF", transparency=2)
    assert not served_decode.gif_first_frame_transparent(tf.constant(opaque)).numpy()
    assert served_decode.gif_first_frame_transparent(tf.constant(transparent)).numpy()
    assert not served_decode.gif_first_frame_transparent(tf.constant(transparent[:12])).numpy()


def test_map_decodable_answers_each_row_and_an_empty_batch():
    specs = (tf.TensorSpec([4, 4, 3], tf.float32), tf.TensorSpec([2], tf.int32))

    @tf.function
    def views(encoded):
        return served_decode.map_decodable(
            encoded, lambda image: (tf.image.resize(image, [4, 4]), tf.shape(image)[:2]), specs)

    refusals = _refusals()
    batch = [FILES["png_rgba"], refusals["truncated jpeg"], FILES["jpeg_cmyk"], refusals["empty"],
             refusals["gif with a transparent colour"], FILES["bmp_8_palette"]]
    (images, sizes), ok = views(tf.constant(batch))
    np.testing.assert_array_equal(ok.numpy(), [True, False, True, False, False, True])
    np.testing.assert_array_equal(sizes.numpy()[ok.numpy()], [[HEIGHT, WIDTH]] * 3)
    assert not images.numpy()[~ok.numpy()].any()
    expected = tf.image.resize(served_decode.decode_as_builders(tf.constant(batch[2])), [4, 4])
    np.testing.assert_array_equal(images.numpy()[2], expected.numpy())
    (images, sizes), ok = views(tf.constant([], tf.string))
    assert images.shape == (0, 4, 4, 3) and sizes.shape == (0, 2) and ok.shape == (0,)
