"""Helpers shared by the TFDS builders in ``datasets/``: labels, image decoding, skip reports.

No TensorFlow import here: builders run these inside ``_generate_examples`` (and Beam workers).
"""

from __future__ import annotations

import dataclasses
import io
import logging
from typing import Iterable

import numpy as np
from PIL import Image

# Class index 0 = negative, 1 = positive everywhere (DECISIONS.md).
LABEL_NAMES = ("negative", "positive")

# Mikels' eight emotions and their polarity (PAPER.md, Section 4.1).
MIKELS_EMOTIONS = (
    "amusement", "anger", "awe", "contentment", "disgust", "excitement", "fear", "sadness")
POSITIVE_EMOTIONS = frozenset({"amusement", "awe", "contentment", "excitement", "joy", "surprise"})
NEGATIVE_EMOTIONS = frozenset({"anger", "disgust", "fear", "sadness"})

# Spellings seen in the distributed sets (DATASETS.md): `sad`, `Sad`, `Content`, ...
_EMOTION_ALIASES = {
    "sad": "sadness",
    "content": "contentment",
    "amused": "amusement",
    "angry": "anger",
    "disgusted": "disgust",
    "excited": "excitement",
    "afraid": "fear",
    "scared": "fear",
    "happiness": "joy",
    "happy": "joy",
    "surprised": "surprise",
}


def normalize_emotion(name: str) -> str:
    """Maps a dataset's spelling of an emotion to its canonical lower-case name.

    Args:
        name: e.g. ``"Sad"``, ``"sadness"``, ``"Content"``, ``" awe "``.

    Returns:
        The canonical name, e.g. ``"sadness"``, ``"contentment"``, ``"awe"``.

    Raises:
        ValueError: the name is no known emotion.
    """
    key = name.strip().lower()
    key = _EMOTION_ALIASES.get(key, key)
    if key not in POSITIVE_EMOTIONS and key not in NEGATIVE_EMOTIONS:
        known = sorted(POSITIVE_EMOTIONS | NEGATIVE_EMOTIONS | set(_EMOTION_ALIASES))
        raise ValueError(f"Unknown emotion name; expected one of {known}. Received: {name!r}")
    return key


def polarity(emotion: str) -> str:
    """Binary label name (``"negative"`` / ``"positive"``) of an emotion, in any spelling."""
    return "positive" if normalize_emotion(emotion) in POSITIVE_EMOTIONS else "negative"


class ImageDecodeError(ValueError):
    """The bytes are not an image that can be decoded."""


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decodes image bytes by content (JPEG, PNG, GIF, BMP, TIFF...), whatever the file name says.

    Palette, RGBA (composited on white), grayscale and CMYK images become 3-channel RGB; an
    animated GIF gives its first frame.

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
            if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
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


def image_for_tfds(data: bytes, name: str) -> bytes:
    """Returns bytes TFDS can store as a 3-channel image: JPEG kept as is, anything else re-encoded.

    Real JPEG files are passed through untouched (no recompression). PNG/GIF/BMP/CMYK files,
    including those misnamed ``.jpg`` (Twitter II), are decoded by content and stored as PNG so no
    quality is lost. A JPEG that is grayscale or CMYK is re-encoded as RGB.

    Raises:
        ImageDecodeError: the bytes do not decode.
    """
    image = decode_image(data, name)
    if is_jpeg(data):
        with Image.open(io.BytesIO(data)) as probe:
            if probe.mode == "RGB":
                return data
    return encode_png(image)


@dataclasses.dataclass
class SkipReport:
    """Collects the files a builder skipped (missing or undecodable) and logs them with a total."""

    dataset: str
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)

    def skip(self, name: str, reason: str) -> None:
        self.skipped[name] = reason
        logging.warning("%s: skipping %s: %s", self.dataset, name, reason)

    def log_total(self, kept: int) -> None:
        if self.skipped:
            logging.warning(
                "%s: kept %d examples, skipped %d: %s", self.dataset, kept, len(self.skipped),
                ", ".join(sorted(self.skipped)))
        else:
            logging.info("%s: kept %d examples, skipped none", self.dataset, kept)


def read_text_lines(data: bytes | str) -> list[str]:
    """Splits a text file into lines, tolerating CRLF/CR line ends, a BOM and blank lines."""
    if isinstance(data, bytes):
        data = data.decode("utf-8-sig", errors="replace")
    return [line for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()]


def first_existing(candidates: Iterable) -> object | None:
    """Returns the first path in ``candidates`` that exists (``epath.Path``-like), else None."""
    for path in candidates:
        if path.exists():
            return path
    return None
