"""Helpers shared by the TFDS builders in ``datasets/``: labels, image decoding, skip reports.

No TensorFlow import here: builders run these inside ``_generate_examples`` (and Beam workers).
The few helpers that need TFDS (``common_features``) import it when called.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from typing import Callable, Iterable, TYPE_CHECKING

import numpy as np
from PIL import Image

from affect_tf.io import ImageDecodeError, decode_image_bytes, encode_png, is_jpeg

if TYPE_CHECKING:
    from etils import epath
    import tensorflow_datasets as tfds

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


def image_for_tfds(data: bytes, name: str) -> bytes:
    """Returns bytes TFDS can store as a 3-channel image: JPEG kept as is, anything else re-encoded.

    Real JPEG files are passed through untouched (no recompression). PNG/GIF/BMP/CMYK files,
    including those misnamed ``.jpg`` (Twitter II), are decoded by content and stored as PNG so no
    quality is lost. A JPEG that is grayscale or CMYK is re-encoded as RGB.

    Raises:
        ImageDecodeError: the bytes do not decode.
    """
    image = decode_image_bytes(data, name)
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


# ---------------------------------------------------------------------------------------------
# Added with the Twitter I / Twitter II / EmotionROI / FI builders: locating the dataset root in
# `manual_dir`, ignoring OS litter, and numbered label-file lines for error messages.
# ---------------------------------------------------------------------------------------------

# Files that archives made on macOS / Windows carry and that are never data. AppleDouble files
# (`._name.jpg`) even carry an image suffix, so they must be filtered by name, not by suffix.
STRAY_FILE_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "__macosx"})
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp")


def is_stray_name(name: str) -> bool:
    """True for OS litter: ``.DS_Store``, ``Thumbs.db``, ``desktop.ini``, ``__MACOSX``, ``._*``."""
    return name.lower() in STRAY_FILE_NAMES or name.startswith("._")


def is_image_name(name: str) -> bool:
    """True when a file name has an image suffix (any case) and is not OS litter."""
    return not is_stray_name(name) and name.lower().endswith(IMAGE_SUFFIXES)


def numbered_lines(data: bytes | str) -> list[tuple[int, str]]:
    """Splits a text file into ``(line_number, stripped_line)`` pairs, skipping blank lines.

    Like ``read_text_lines`` (CRLF / CR line ends, a UTF-8 BOM and blank lines tolerated), but
    keeps the 1-based line number of the original file so that a parser can say where a
    malformed line is. Leading and trailing whitespace (trailing spaces, TABs) is stripped.

    Args:
        data: the file's bytes (decoded as UTF-8, BOM removed) or text.

    Returns:
        A list of ``(number, line)`` for every non-blank line, in file order.
    """
    if isinstance(data, bytes):
        data = data.decode("utf-8-sig", errors="replace")
    data = data.lstrip("\ufeff")
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [(number, line.strip()) for number, line in enumerate(lines, start=1) if line.strip()]


def candidate_roots(manual_dir) -> list:
    """Folders where an extracted archive's top folder may be: ``manual_dir``, then its children.

    Users either point ``manual_dir`` at the archive's top folder itself or at the folder they
    extracted the archive into (its parent). Builders test their marker files in each candidate,
    in this order: ``manual_dir`` first, then its immediate subfolders sorted by name (OS litter
    such as ``__MACOSX`` skipped).

    Args:
        manual_dir: an ``epath.Path``-like folder (``iterdir``, ``is_dir``, ``name``).

    Returns:
        The candidate folders; just ``[manual_dir]`` when it has no subfolders or does not exist.
    """
    candidates = [manual_dir]
    if manual_dir.is_dir():
        children = [child for child in manual_dir.iterdir()
                    if child.is_dir() and not is_stray_name(child.name)]
        candidates.extend(sorted(children, key=lambda child: child.name))
    return candidates


def describe_dir(path, limit: int = 15) -> str:
    """Short listing of a folder for error messages, e.g. ``'images/, readme.txt (+3 more)'``.

    Args:
        path: an ``epath.Path``-like folder.
        limit: how many entries to name before summarizing the rest.

    Returns:
        The sorted entries (folders end with ``/``), ``'(empty)'`` or ``'(does not exist)'``.
    """
    if not path.exists():
        return "(does not exist)"
    if not path.is_dir():
        return "(a file, not a folder)"
    names = sorted(child.name + ("/" if child.is_dir() else "") for child in path.iterdir())
    if not names:
        return "(empty)"
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} (+{len(names) - limit} more)"


def _image_or_skip(read: Callable[[], bytes], name: str, report: SkipReport,
                   missing_reason: str) -> bytes | None:
    """Reads one image with ``read`` and returns TFDS-ready bytes, or records why it was skipped.

    The body of ``load_image_or_skip`` and ``folder_image_or_skip``, which differ only in how the
    bytes are read and in how a missing file is described.

    Args:
        read: reads the file's bytes; raises ``FileNotFoundError`` / ``IsADirectoryError`` when
            the file is missing and another ``OSError`` when it cannot be read.
        name: the example's stable name, used in the report and in decode errors.
        report: where skipped files are recorded.
        missing_reason: the reason recorded for a missing file.

    Returns:
        ``image_for_tfds`` bytes, or None when the file was skipped.
    """
    try:
        data = read()
    except (FileNotFoundError, IsADirectoryError):
        report.skip(name, missing_reason)
        return None
    except OSError as error:
        report.skip(name, f"cannot be read ({error})")
        return None
    try:
        return image_for_tfds(data, name)
    except ImageDecodeError as error:
        report.skip(name, str(error))
        return None


def load_image_or_skip(path, name: str, report: SkipReport) -> bytes | None:
    """Reads one image file and returns TFDS-ready bytes, or records why it was skipped.

    Builders call this per example so that one missing, unreadable or undecodable file is
    reported (``report.skip``) instead of stopping the whole build halfway.

    Args:
        path: an ``epath.Path``-like file.
        name: the example's stable name (relative path), used in the report.
        report: where skipped files are recorded.

    Returns:
        ``image_for_tfds`` bytes (the JPEG as is, or a lossless PNG re-encoding), or None when
        the file is missing, unreadable or does not decode.
    """
    return _image_or_skip(path.read_bytes, name, report, "listed but missing on disk")


# ---------------------------------------------------------------------------------------------
# Added with the ArtPhoto / Abstract / IAPSa / Flickr builders: reading a flat folder in place
# inside the distributed .zip archive, so that the archive file itself can serve as manual_dir.
# ---------------------------------------------------------------------------------------------


class ZipFolder:
    """One folder inside a .zip archive, read in place: what extracting the archive would give.

    Lets a builder accept the archive as distributed (e.g. ``testImages_artphoto.zip``) besides its
    extracted copy. Members under ``__MACOSX/`` and OS litter (``.DS_Store``, ``._*``) are
    invisible. The archive is opened on first read and stays open until ``close()``.

    Args:
        zip_path: an ``epath.Path``-like file (``open("rb")``, ``name``).
        folder: the folder inside the archive, ``""`` for its top level, e.g.
            ``"testImages_artphoto"``.
    """

    def __init__(self, zip_path, folder: str = ""):
        self.zip_path = zip_path
        self.folder = folder.strip("/")
        self._file = None
        self._zip = None

    @staticmethod
    def folders(zip_path) -> dict[str, list[str]]:
        """Maps each folder of the archive (``""`` = top level) to the files directly inside it.

        Raises:
            zipfile.BadZipFile: the file is not a zip archive.
        """
        import zipfile  # pylint: disable=g-import-not-at-top

        listing: dict[str, list[str]] = {}
        with zip_path.open("rb") as handle, zipfile.ZipFile(handle) as archive:
            for member in archive.namelist():
                parts = member.rstrip("/").split("/")
                if member.endswith("/") or any(is_stray_name(part) for part in parts):
                    continue
                listing.setdefault("/".join(parts[:-1]), []).append(parts[-1])
        return {folder: sorted(names) for folder, names in listing.items()}

    def __str__(self) -> str:
        return f"{self.zip_path}:{self.folder}/" if self.folder else f"{self.zip_path}:"

    def names(self) -> list[str]:
        """Sorted names of the files directly inside the folder (OS litter removed)."""
        return self.folders(self.zip_path).get(self.folder, [])

    def read_bytes(self, name: str) -> bytes:
        """Reads one file of the folder.

        Raises:
            FileNotFoundError: no such member.
        """
        import zipfile  # pylint: disable=g-import-not-at-top

        if self._zip is None:
            self._file = self.zip_path.open("rb")
            self._zip = zipfile.ZipFile(self._file)
        member = f"{self.folder}/{name}" if self.folder else name
        try:
            return self._zip.read(member)
        except KeyError:
            # The same exception as a missing file on disk, so callers handle both alike.
            raise FileNotFoundError(f"{self.zip_path} has no member {member}") from None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._file.close()
            self._zip = self._file = None

    def __enter__(self) -> "ZipFolder":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class DiskFolder:
    """A folder on disk with the interface of ``ZipFolder`` (``names``, ``read_bytes``, ``close``).

    Args:
        path: an ``epath.Path``-like folder.
    """

    def __init__(self, path):
        self.path = path

    def __str__(self) -> str:
        return str(self.path)

    def names(self) -> list[str]:
        """Sorted names of the files directly inside the folder (OS litter and folders removed)."""
        return sorted(child.name for child in self.path.iterdir()
                      if not is_stray_name(child.name) and not child.is_dir())

    def read_bytes(self, name: str) -> bytes:
        return (self.path / name).read_bytes()

    def close(self) -> None:
        pass

    def __enter__(self) -> "DiskFolder":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def folder_image_or_skip(folder, name: str, report: SkipReport) -> bytes | None:
    """``load_image_or_skip`` for one file of a ``DiskFolder`` or ``ZipFolder``.

    Args:
        folder: a ``DiskFolder`` or ``ZipFolder``.
        name: the file name inside the folder; also the name used in the report.
        report: where a missing, unreadable or undecodable file is recorded.

    Returns:
        ``image_for_tfds`` bytes, or None when the file was skipped.
    """
    return _image_or_skip(lambda: folder.read_bytes(name), name, report, "listed but missing")


# ---------------------------------------------------------------------------------------------
# Shared by the builders' `_info` and `_split_generators`: the features every dataset has and the
# check that a manual download is in place.
# ---------------------------------------------------------------------------------------------


def common_features(**extra_features) -> tfds.features.FeaturesDict:
    """The features of every builder, plus its own: ``image``, ``label`` and ``image/filename``.

    ``image`` is a 3-channel ``tfds.features.Image`` with ``encoding_format`` left None:
    ``image_for_tfds`` stores real RGB JPEGs as distributed and anything else (grayscale / CMYK
    JPEG, PNG, GIF, files misnamed ``.jpg``) as PNG; ``tf.image.decode_image`` reads both.
    ``label`` is the binary ``ClassLabel`` of ``LABEL_NAMES``; ``image/filename`` is ``Text``.
    Keep these as they are: already prepared datasets were written with them.

    TFDS is imported here, when called (from a builder's ``_info``), so that this module stays
    importable without TensorFlow.

    Args:
        **extra_features: the builder's own features by name, e.g.
            ``emotion=tfds.features.ClassLabel(...)``. A common name (``image``) replaces the
            common feature, e.g. to fix the ``encoding_format``.

    Returns:
        The ``FeaturesDict``: the common features, then ``extra_features`` in their order.
    """
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top,redefined-outer-name

    features = {
        "image": tfds.features.Image(shape=(None, None, 3)),
        "label": tfds.features.ClassLabel(names=list(LABEL_NAMES)),
        "image/filename": tfds.features.Text(),
    }
    features.update(extra_features)
    return tfds.features.FeaturesDict(features)


def manual_dir_or_raise(dl_manager: tfds.download.DownloadManager, dataset_title: str,
                        instructions: str) -> epath.Path:
    """Returns ``dl_manager.manual_dir``, or says what belongs there when it is unusable.

    Args:
        dl_manager: the builder's download manager.
        dataset_title: the dataset's name in the message, e.g. ``"Twitter I"``.
        instructions: the builder's manual download instructions, appended to the message.

    Returns:
        The manual folder (``epath.Path``).

    Raises:
        FileNotFoundError: ``manual_dir`` is not given, missing, empty or not a folder; the
            message starts with ``"<dataset_title> needs a manual download"`` and ends with
            ``instructions``.
    """
    try:
        return dl_manager.manual_dir
    except (AssertionError, OSError) as error:
        # TFDS's own message says only "does not exist or is empty" (or, for a file such as
        # the unextracted archive, fails listing it): name what belongs there.
        raise FileNotFoundError(
            f"{dataset_title} needs a manual download: manual_dir must be an existing, "
            f"non-empty folder holding the extracted archive ({error})."
            f"\n\n{instructions}") from error
