"""The dataset builders' image decoder as TensorFlow ops, and per-image failure in a batch.

The served model receives the files a user sends, not the bytes a builder stored, so it must
decode them as *builder then training* do. A builder (``datasets/builder_utils.image_for_tfds``)
keeps a 3-component JPEG as it is, which training decodes with ``tf.io.decode_image``; any other
file is decoded by :func:`affect_tf.io.decode_image_bytes` (Pillow: alpha composited on white,
16-bit levels scaled by ``v >> 8``, grayscale and CMYK to RGB, a GIF's first frame) and stored as
a lossless PNG of those pixels. :func:`decode_as_builders` gives the same pixels from the original
bytes, in ops TF Serving runs:

* JPEG of 3 components: ``tf.io.decode_jpeg`` with TensorFlow's default IDCT, as training.
  Grayscale and CMYK JPEG: the ``INTEGER_ACCURATE`` IDCT, which is libjpeg's ``ISLOW`` that
  Pillow uses (TensorFlow's default, ``INTEGER_FAST``, differs from it by up to 5 levels).
* PNG (any bit depth, palette, grey, alpha): RGBA, then composited on white with the integer
  formula Pillow's ``alpha_composite`` computes on an opaque background,
  ``(c a + 255 (255 - a) + 127) // 255`` (equal for all 65,536 pairs ``(c, a)``; tested).
* GIF: the first frame. TensorFlow's GIF decoder has no alpha (it blacks out the transparent
  colour), so a GIF whose first frame declares a transparent colour is refused.
* BMP: 24 and 32 bits per pixel as TensorFlow decodes them; 8 bits through the file's palette
  (TensorFlow returns the palette indices); other depths are refused.

Refused or undecodable bytes raise ``InvalidArgumentError`` like TensorFlow's decoders do:
:func:`map_decodable` turns that into a per-image ``ok = False`` instead of a failed batch.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

# The first bytes of each format (GIF: both versions).
_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"
_GIF = (b"GIF87a", b"GIF89a")
_BMP = b"BM"
# GIF block introducers (GIF89a specification): an extension, a graphic control extension's
# label, an image descriptor.
_GIF_EXTENSION, _GIF_GRAPHIC_CONTROL, _GIF_IMAGE = 0x21, 0xF9, 0x2C
# The 8-bit BMP's fields (little-endian): bits per pixel at byte 28, colours used at 46, the DIB
# header's size at 14 (the palette follows the 14-byte file header and the DIB header).
_BMP_BITS_OFFSET, _BMP_COLOURS_OFFSET, _BMP_DIB_SIZE_OFFSET, _BMP_FILE_HEADER = 28, 46, 14, 14
# The PNG's colour type: the IHDR chunk's 10th byte (signature 8, length 4, type 4, width 4,
# height 4, bit depth 1); types 4 and 6 carry alpha.
_PNG_COLOUR_TYPE_OFFSET = 25


def _starts_with(encoded: tf.Tensor, magic: bytes) -> tf.Tensor:
    return tf.equal(tf.strings.substr(encoded, 0, len(magic)), magic)


def composite_on_white(rgba: tf.Tensor) -> tf.Tensor:
    """uint8 RGBA ``[H, W, 4]`` -> uint8 RGB ``[H, W, 3]`` over white, as Pillow rounds it."""
    values = tf.cast(rgba, tf.int32)
    alpha = values[..., 3:]
    composited = (values[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255
    return tf.cast(composited, tf.uint8)


def _bytes(encoded: tf.Tensor) -> tf.Tensor:
    """int32 ``[n]``: the file's bytes."""
    return tf.cast(tf.io.decode_raw(encoded, tf.uint8), tf.int32)


def _little_endian(values: tf.Tensor, offset: int, width: int) -> tf.Tensor:
    """The unsigned little-endian integer of ``width`` bytes at ``offset`` (0 past the end)."""
    total = tf.constant(0, tf.int32)
    size = tf.size(values)
    for index in range(width):
        byte = tf.where(offset + index < size, values[tf.minimum(offset + index, size - 1)], 0)
        total += byte * (256 ** index)
    return total


def gif_first_frame_transparent(encoded: tf.Tensor) -> tf.Tensor:
    """bool ``[]``: a graphic control extension before the GIF's first image sets transparency.

    Walks the blocks after the header, the logical screen descriptor and the global colour table
    (GIF89a): extensions are skipped sub-block by sub-block until the first image descriptor; a
    graphic control extension met on the way is the first frame's, and bit 0 of its packed byte
    is its transparency flag. Truncated or malformed files answer False (the decoder refuses them).
    """
    values = _bytes(encoded)
    size = tf.size(values)

    def at(position):
        return tf.where(position < size, values[tf.clip_by_value(position, 0, size - 1)], -1)

    packed = at(10)
    colour_table = tf.where(packed >= 0x80, 3 * tf.bitwise.left_shift(2, packed & 7), 0)

    def skip_sub_blocks(position):
        # A run of [length, data...] sub-blocks ended by a zero length.
        position = tf.while_loop(lambda p: (p < size) & (at(p) > 0),
                                 lambda p: [p + at(p) + 1], [position])[0]
        return position + 1

    def walk(position, transparent, done):
        introducer, label = at(position), at(position + 1)
        control = (introducer == _GIF_EXTENSION) & (label == _GIF_GRAPHIC_CONTROL)
        extension = (introducer == _GIF_EXTENSION) & ~control
        next_position = tf.cond(extension, lambda: skip_sub_blocks(position + 2),
                                lambda: position + 1)
        found = control & ((at(position + 3) & 1) == 1)
        return next_position, transparent | found, done | ~extension

    _, transparent, _ = tf.while_loop(
        lambda position, transparent, done: ~done & (position < size), walk,
        [13 + colour_table, tf.constant(False), tf.constant(False)])
    return transparent


def _decode_gif(encoded: tf.Tensor) -> tf.Tensor:
    refused = tf.debugging.Assert(
        ~gif_first_frame_transparent(encoded),
        ["The served model cannot decode a GIF whose first frame has a transparent colour "
         "(TensorFlow's GIF decoder has no alpha channel); send it as PNG."])
    with tf.control_dependencies([refused]):
        return tf.io.decode_gif(encoded)[0]


def _decode_bmp(encoded: tf.Tensor) -> tf.Tensor:
    values = _bytes(encoded)
    bits = _little_endian(values, _BMP_BITS_OFFSET, 2)
    refused = tf.debugging.Assert(
        (bits == 8) | (bits == 24) | (bits == 32),
        ["The served model decodes BMP files of 8, 24 or 32 bits per pixel. Received bits:",
         bits])

    def palette_lookup():
        indices = tf.cast(tf.io.decode_bmp(encoded, channels=0)[..., 0], tf.int32)
        colours = _little_endian(values, _BMP_COLOURS_OFFSET, 4)
        colours = tf.where(colours == 0, 256, colours)
        start = _BMP_FILE_HEADER + _little_endian(values, _BMP_DIB_SIZE_OFFSET, 4)
        palette = tf.reshape(values[start:start + 4 * colours], [-1, 4])  # B, G, R, reserved.
        tf.debugging.assert_less(tf.reduce_max(indices), tf.shape(palette)[0],
                                 message="BMP pixel index past its palette")
        return tf.cast(tf.gather(palette[:, 2::-1], indices), tf.uint8)

    with tf.control_dependencies([refused]):
        return tf.cond(bits == 8, palette_lookup,
                       lambda: tf.io.decode_bmp(encoded, channels=3))


def png_has_alpha(encoded: tf.Tensor) -> tf.Tensor:
    """bool ``[]``: the PNG has an alpha channel (colour types 4, 6) or a ``tRNS`` chunk before
    its image data (a transparent palette entry or colour)."""
    colour_type = _bytes(tf.strings.substr(encoded, _PNG_COLOUR_TYPE_OFFSET, 1))
    header = tf.strings.split(encoded, sep=b"IDAT", maxsplit=1)[0]
    transparency_chunk = tf.size(tf.strings.split(header, sep=b"tRNS", maxsplit=1)) > 1
    return tf.reduce_any(colour_type >= 4) | transparency_chunk


def _decode_png(encoded: tf.Tensor) -> tf.Tensor:
    # Only files with transparency go through RGBA: TensorFlow fills the alpha of a 1-, 2- or
    # 4-bit palette PNG without tRNS with that depth's maximum (15 for 4 bits), not 255.
    return tf.cond(png_has_alpha(encoded),
                   lambda: composite_on_white(tf.io.decode_png(encoded, channels=4)),
                   lambda: tf.io.decode_png(encoded, channels=3))


def _decode_jpeg(encoded: tf.Tensor) -> tf.Tensor:
    components = tf.io.extract_jpeg_shape(encoded)[2]
    return tf.cond(
        components == 3,
        lambda: tf.io.decode_jpeg(encoded, channels=3),
        lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"))


def _refuse_unknown(encoded: tf.Tensor) -> tf.Tensor:
    refused = tf.debugging.Assert(
        False, ["Expected JPEG, PNG, GIF or BMP bytes. Received a file starting with:",
                tf.strings.substr(encoded, 0, 8)])
    with tf.control_dependencies([refused]):
        return tf.zeros([1, 1, 3], tf.uint8)


def decode_as_builders(encoded: tf.Tensor) -> tf.Tensor:
    """uint8 RGB ``[H, W, 3]``: the pixels training sees of these bytes (module docstring).

    Args:
        encoded: string ``[]``, one encoded file.

    Raises:
        tf.errors.InvalidArgumentError (when run): bytes that are not a supported image, a
            truncated or corrupt file, a GIF with a transparent first frame, a BMP of another
            depth than 8, 24 or 32 bits.
    """
    branches = [
        (_starts_with(encoded, _JPEG), lambda: _decode_jpeg(encoded)),
        (_starts_with(encoded, _PNG), lambda: _decode_png(encoded)),
        (_starts_with(encoded, _GIF[0]) | _starts_with(encoded, _GIF[1]),
         lambda: _decode_gif(encoded)),
        (_starts_with(encoded, _BMP), lambda: _decode_bmp(encoded)),
    ]
    # The first format whose signature matches decodes; no match is refused.
    image = tf.case(branches, default=lambda: _refuse_unknown(encoded), exclusive=False)
    image = tf.ensure_shape(image, [None, None, 3])
    tf.debugging.assert_positive(tf.size(image), message="zero-size image")
    return image


def map_decodable(encoded_batch: tf.Tensor, per_image: Callable, output_signature):
    """``per_image(decode_as_builders(x))`` for each file; a file that fails gets ``ok = False``.

    One undecodable file must not fail a served batch, and TensorFlow's decoders raise rather
    than return a status, so each file runs through a ``tf.data`` map whose errors
    ``ignore_errors`` drops; the survivors carry their index back to their row.

    Args:
        encoded_batch: string ``[B]`` (B may be 0).
        per_image: uint8 ``[H, W, 3]`` -> a nest of tensors matching ``output_signature``.
        output_signature: the nest of ``tf.TensorSpec`` of one image's outputs (fully defined
            shapes).

    Returns:
        ``(outputs, ok)``: the nest with a leading ``[B]`` axis (zeros in failed rows) and
        bool ``[B]``.
    """
    count = tf.shape(encoded_batch)[0]
    specs = tf.nest.flatten(output_signature)
    dataset = tf.data.Dataset.from_tensor_slices((tf.range(count), encoded_batch))
    dataset = dataset.map(lambda index, encoded: (
        index, tuple(tf.nest.flatten(per_image(decode_as_builders(encoded))))))
    dataset = dataset.ignore_errors()
    # The survivors in one batch (one copy of each, where appending them one by one copies the
    # batch so far each time), behind one sentinel row of index -1, so that the batch exists
    # even when no file decodes.
    sentinel = tf.data.Dataset.from_tensors(
        (tf.constant(-1, tf.int32), tuple(tf.zeros(spec.shape, spec.dtype) for spec in specs)))
    dataset = sentinel.concatenate(dataset).batch(tf.cast(count, tf.int64) + 1)
    # A served request builds this dataset anew on every call, and tf.data's default graph
    # rewrites (run when its iterator is made) cost more than decoding a batch: off, with the
    # autotuner (nothing to tune in one pass). Measured on the demo's model, 2 cores:
    # predict_with_proposals at batch 1 took 815 ms with them, 216 ms without.
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False
    indices, values = dataset.with_options(options).get_single_element()
    indices, values = indices[1:], [value[1:] for value in values]
    ok = tf.scatter_nd(indices[:, None], tf.ones_like(indices), [count]) > 0
    rows = [tf.scatter_nd(indices[:, None], value, tf.concat([[count], tf.shape(value)[1:]], 0))
            for value in values]
    return tf.nest.pack_sequence_as(output_signature, rows), ok
