"""affect_tf.io: the project's image decoder against TensorFlow's (training's) decoder."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from affect_tf import io as io_lib


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_16_bit_grayscale_png_is_scaled_like_tensorflows_decoder_not_clipped():
    levels = (np.arange(4 * 256).reshape(4, 256) * 64).astype(np.uint16)  # 0 .. 65,472
    encoded = _png(levels)
    decoded = io_lib.decode_image_bytes(encoded)
    assert decoded.shape == (4, 256, 3) and decoded.dtype == np.uint8
    # Every level keeps its place on the 8-bit scale: the top of the ramp is 255, not the 4th
    # pixel (what clipping at 255 gave).
    np.testing.assert_array_equal(decoded[..., 0], (levels >> 8).astype(np.uint8))
    assert decoded[0, 3, 0] == 0 and decoded[-1, -1, 0] == 255
    trained_on = tf.io.decode_image(encoded, channels=3, expand_animations=False).numpy()
    np.testing.assert_array_equal(decoded, trained_on)


def test_an_8_bit_grayscale_png_keeps_its_levels():
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    decoded = io_lib.decode_image_bytes(_png(levels))
    np.testing.assert_array_equal(decoded, np.repeat(levels[..., None], 3, axis=-1))


@pytest.mark.parametrize("data, reason", [(b"", r"empty file \(0 bytes\)"),
                                          (b"not an image", "cannot decode as an image")])
def test_bad_bytes_name_what_was_received(data, reason):
    with pytest.raises(io_lib.ImageDecodeError, match=reason):
        io_lib.decode_image_bytes(data, name="x.jpg")
