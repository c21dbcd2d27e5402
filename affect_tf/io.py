"""Files in and out: the image codec (bytes <-> uint8 RGB arrays) and atomic, checksummed writes.

No TensorFlow here: the dataset builders, the proposal workers and the stages all use it. The
TensorFlow decoder of the input pipeline is :func:`affect_tf.data.decode_image_tensor`.

Every file a run writes goes through :func:`atomic_write` (a temporary name in the same directory,
flushed and fsynced, then ``os.replace``), so a kill leaves either the old file or the new one,
never half of one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
from typing import Any, Callable, BinaryIO

import numpy as np
from PIL import Image

PathLike = str | os.PathLike


class ImageDecodeError(ValueError):
    """The bytes are not an image that can be decoded."""


# Pillow's modes of 16-bit (and 32-bit integer) grayscale: its convert("RGB") clips them at 255,
# turning everything above 255 of 65,535 white.
_WIDE_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _wide_gray_to_rgb(values: np.ndarray) -> np.ndarray:
    """16-bit grey levels [H, W] to uint8 RGB [H, W, 3], as TensorFlow's decoder scales them.

    ``tf.io.decode_image`` (training's decoder) converts 16 bits to 8 by dropping the low byte
    (``v >> 8``), so a 16-bit PNG gives the same pixels to the proposals and to the CNN. A 32-bit
    integer image is read as 16-bit levels (values outside [0, 65535] clipped).
    """
    levels = np.clip(values.astype(np.int64), 0, 65535) >> 8
    return np.repeat(levels.astype(np.uint8)[..., None], 3, axis=-1)


def decode_image_bytes(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decodes image bytes by content (JPEG, PNG, GIF, BMP, TIFF...), whatever the file name says.

    Palette, RGBA (composited on white), grayscale and CMYK images become 3-channel RGB; an
    animated GIF gives its first frame; 16-bit grayscale is scaled to 8 bits as TensorFlow's
    decoder scales it (``v >> 8``), not clipped.

    Args:
        data: the encoded file.
        name: used in the error message.

    Returns:
        uint8 array [H, W, 3], RGB.

    Raises:
        ImageDecodeError: empty, truncated or unknown bytes, or a zero-size image.
    """
    if not data:
        raise ImageDecodeError(f"{name}: empty file (0 bytes), expected an encoded image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.mode in _WIDE_GRAY_MODES:
                array = _wide_gray_to_rgb(np.asarray(image))
            else:
                if image.mode in ("RGBA", "LA") or (
                        image.mode == "P" and "transparency" in image.info):
                    rgba = image.convert("RGBA")
                    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                    image = Image.alpha_composite(background, rgba)
                array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageDecodeError(
            f"{name}: cannot decode as an image ({len(data)} bytes; {error})") from error
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageDecodeError(f"{name}: zero-size image {array.shape}")
    return array


def encode_jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    """Encodes an RGB uint8 array [H, W, 3] as JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def encode_png(image: np.ndarray) -> bytes:
    """Encodes a uint8 array [H, W] or [H, W, 3] as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def is_jpeg(data: bytes) -> bool:
    """True when the bytes start with the JPEG SOI marker."""
    return data[:3] == b"\xff\xd8\xff"


def atomic_write(path: PathLike, write: Callable[[BinaryIO], Any]) -> pathlib.Path:
    """Writes a file through ``write(handle)`` so that readers never see half of it.

    The bytes go to a temporary name in the same directory (same file system, so the rename is
    atomic), are flushed and fsynced, and the file is then renamed over ``path``. On any error the
    temporary file is removed and ``path`` is left as it was.

    Args:
        path: the destination; its directory must exist.
        write: called once with a binary file handle.

    Returns:
        ``path`` as a :class:`pathlib.Path`.
    """
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def atomic_write_text(path: PathLike, text: str) -> pathlib.Path:
    """Writes UTF-8 text atomically (:func:`atomic_write`)."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda handle: handle.write(data))


def strict_json_value(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) replaced by None, recursively.

    Strict JSON has no NaN or Infinity tokens (Python writes them, most other parsers refuse
    them), so a metric that could not be computed is written as null. Dicts, lists and tuples
    are walked; numpy scalars become Python numbers (a numpy float32 would otherwise be written
    as a string by ``default=str``, hiding a NaN); anything else is returned unchanged.
    """
    if isinstance(value, dict):
        return {key: strict_json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json_value(item) for item in value]
    if isinstance(value, np.generic) and isinstance(value.item(), (bool, int, float)):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def atomic_write_json(path: PathLike, payload: Any) -> pathlib.Path:
    """Writes strict JSON (sorted keys, indented) atomically (:func:`atomic_write`).

    NaN and infinities are written as null (:func:`strict_json_value`), and ``allow_nan=False``
    makes any that slipped through an error instead of an invalid file.
    """
    text = json.dumps(strict_json_value(payload), indent=2, sort_keys=True, default=str,
                      allow_nan=False)
    return atomic_write_text(path, text + "\n")


def atomic_save_npz(path: PathLike, *, compressed: bool = False, **arrays: np.ndarray) -> pathlib.Path:
    """Saves named arrays as ``.npz`` atomically. Each zip member carries a CRC-32 that numpy's
    loader checks on read, so a flipped bit or a truncation is detected, not silently read."""
    save = np.savez_compressed if compressed else np.savez
    return atomic_write(path, lambda handle: save(handle, **arrays))


def sha256_file(path: PathLike, block_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks (bounded memory for large checkpoints)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(block_size), b""):
            digest.update(block)
    return digest.hexdigest()
