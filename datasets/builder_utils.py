"""Helpers shared by the TFDS builders in ``datasets/`` (imported as ``affect_tf.datasets``).

What every builder needs beyond its own parser: emotion names and their polarity, label-file
lines, finding the dataset in ``manual_dir`` (extracted folder or ``.zip`` archive), TFDS-ready
image bytes, a report of skipped files, the features and ``DatasetInfo`` all builders share, the
folder TFDS reads a builder's README.md from, and ``ManualDownloadBuilder``, the ``_info`` and
``_split_generators`` of every builder whose data the user downloads by hand.

TensorFlow Datasets is imported only inside the helpers that build TFDS objects
(``common_features``, ``dataset_info``, ``ManualDownloadBuilder``'s methods), so the parsers and
folder helpers import fast and run anywhere a Beam worker does. The image codec lives in
``affect_tf.io``.
"""

from __future__ import annotations

import abc
import dataclasses
import io
import logging
import sys
from typing import Any, Callable, ClassVar, Iterator, Sequence, TYPE_CHECKING
import zipfile

from PIL import Image

from affect_tf.config import LABEL_NAMES
from affect_tf.io import ImageDecodeError, decode_image_bytes, encode_png, is_jpeg

if TYPE_CHECKING:
    from etils import epath
    import tensorflow_datasets as tfds

# Mikels' eight emotions and their polarity (the paper's Section 4.1); EmotionROI adds joy and
# surprise (positive).
MIKELS_EMOTIONS = (
    "amusement", "anger", "awe", "contentment", "disgust", "excitement", "fear", "sadness")
POSITIVE_EMOTIONS = frozenset({"amusement", "awe", "contentment", "excitement", "joy", "surprise"})
NEGATIVE_EMOTIONS = frozenset({"anger", "disgust", "fear", "sadness"})

# Spellings seen in the distributed sets (README.md beside this file): `sad`, `Sad`, `Content`, ...
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

# Files that archives made on macOS / Windows carry and that are never data. AppleDouble files
# (`._name.jpg`) even carry an image suffix, so they must be filtered by name, not by suffix.
STRAY_FILE_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "__macosx"})
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp")


# ---------------------------------------------------------------------------------------------
# Emotions and labels.
# ---------------------------------------------------------------------------------------------


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


def emotion_in(name: str, emotions: Sequence[str]) -> str | None:
    """Canonical emotion of ``name`` when it is one of ``emotions``, else None (never raises).

    For names that may or may not be an emotion (a folder, a file-name prefix): ``Sad`` ->
    ``sadness``; ``joy`` -> None when ``emotions`` are Mikels' eight; ``photos`` -> None.
    """
    try:
        emotion = normalize_emotion(name)
    except ValueError:
        return None
    return emotion if emotion in emotions else None


def polarity(emotion: str) -> str:
    """Binary label name (``"negative"`` / ``"positive"``) of an emotion, in any spelling."""
    return LABEL_NAMES[int(normalize_emotion(emotion) in POSITIVE_EMOTIONS)]


def emotion_example(image: bytes, emotion: str, filename: str, **extra) -> dict:
    """The example of an emotion-labelled image: polarity ``label``, ``emotion``, and ``extra``.

    Args:
        image: ``image_for_tfds`` bytes.
        emotion: canonical emotion name (a name of the builder's ``emotion`` ClassLabel).
        filename: the ``image/filename`` feature.
        **extra: the builder's own features.
    """
    return {"image": image, "label": polarity(emotion), "emotion": emotion,
            "image/filename": filename, **extra}


# ---------------------------------------------------------------------------------------------
# Label and list files.
# ---------------------------------------------------------------------------------------------


def numbered_lines(data: bytes | str) -> list[tuple[int, str]]:
    """Splits a text file into ``(line_number, stripped_line)`` pairs, skipping blank lines.

    CRLF / CR line ends and a UTF-8 BOM are tolerated; the 1-based line number of the original
    file is kept so that a parser can say where a malformed line is. Leading and trailing
    whitespace (trailing spaces, TABs) is stripped.

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


def zero_one_lines(data: bytes | str, name: str,
                   first_column: str) -> Iterator[tuple[int, str, int]]:
    """Reads ``<path> <0|1>`` lines (0 = negative, 1 = positive), as Twitter I and FI lists are.

    The label is the last whitespace-separated column, so the path may contain spaces;
    backslashes in it become ``/``. Lines as :func:`numbered_lines` reads them.

    Args:
        data: the file's content.
        name: the file's name, for error messages.
        first_column: what the first column holds, for error messages (``"file name"``).

    Yields:
        ``(line number, path, label)`` per line, in file order.

    Raises:
        ValueError: a line without exactly a path and a 0/1 (file and line number named).
    """
    for number, line in numbered_lines(data):
        fields = line.rsplit(None, 1)
        if len(fields) != 2 or fields[1] not in ("0", "1"):
            raise ValueError(
                f"{name}, line {number}: expected '<{first_column}> <0|1>' (0 = negative, "
                f"1 = positive). Received: {line!r}")
        yield number, fields[0].replace("\\", "/"), int(fields[1])


# ---------------------------------------------------------------------------------------------
# Finding the dataset in manual_dir.
# ---------------------------------------------------------------------------------------------


def is_stray_name(name: str) -> bool:
    """True for OS litter: ``.DS_Store``, ``Thumbs.db``, ``desktop.ini``, ``__MACOSX``, ``._*``."""
    return name.lower() in STRAY_FILE_NAMES or name.startswith("._")


def is_image_name(name: str) -> bool:
    """True when a file name has an image suffix (any case) and is not OS litter."""
    return not is_stray_name(name) and name.lower().endswith(IMAGE_SUFFIXES)


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


def not_found_error(expected: str, manual_dir, instructions: str,
                    partial: Sequence[str] = ()) -> FileNotFoundError:
    """The error of a builder that did not find its dataset in ``manual_dir``.

    The message reads: what was expected, then one line per folder that holds part of the
    dataset (and what it lacks), what ``manual_dir`` holds, and the download instructions.

    Args:
        expected: e.g. ``"Twitter II was not found in manual_dir. Expected, ..."``.
        manual_dir: an ``epath.Path``-like folder.
        instructions: the builder's ``MANUAL_DOWNLOAD_INSTRUCTIONS``.
        partial: lines such as ``"  <folder>: missing groundTruthLabel.txt"``.

    Returns:
        The ``FileNotFoundError`` to raise.
    """
    lines = [expected, *partial, f"manual_dir {manual_dir} holds: {describe_dir(manual_dir)}"]
    return FileNotFoundError("\n".join(lines) + "\n\n" + instructions)


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


# ---------------------------------------------------------------------------------------------
# Flat folders, on disk or inside the distributed .zip archive.
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


def find_flat_folder(manual_dir: epath.Path, top_folder: str, archive_name: str,
                     holds_dataset: Callable[[Sequence[str]], bool], *, title: str,
                     content: str, instructions: str) -> DiskFolder | ZipFolder | None:
    """Finds a dataset distributed as one flat folder in a .zip: extracted first, then zipped.

    Searched in this order: ``manual_dir`` and its subfolders (``top_folder`` first), then the
    archive read in place: ``manual_dir`` itself when it is a ``.zip`` file, or
    ``manual_dir/<archive_name>``, whose folders are tried ``top_folder`` first.

    Args:
        manual_dir: what the user passed as ``manual_dir``.
        top_folder: the archive's folder, e.g. ``"testImages_artphoto"``.
        archive_name: the archive as distributed, e.g. ``"testImages_artphoto.zip"``.
        holds_dataset: whether a folder's file names (OS litter removed) are the dataset's.
        title: the dataset's name in messages, e.g. ``"ArtPhoto"``.
        content: what the archive must hold, for messages, e.g. ``"ABSTRACT_groundTruth.csv"``.
        instructions: the builder's ``MANUAL_DOWNLOAD_INSTRUCTIONS``.

    Returns:
        The folder, on disk or inside the archive (logged); None when there is neither.

    Raises:
        FileNotFoundError: an archive was found but no folder of it holds the dataset.
    """
    candidates = candidate_roots(manual_dir)
    # The archive's own top folder first, whatever order the other subfolders sort in.
    candidates.sort(key=lambda path: path != manual_dir and path.name != top_folder)
    for folder in candidates:
        if folder.is_dir() and holds_dataset(DiskFolder(folder).names()):
            logging.info("%s: reading %s", title, folder)
            return DiskFolder(folder)
    archives = [manual_dir] if manual_dir.name.lower().endswith(".zip") else []
    archives += [manual_dir / archive_name] if manual_dir.is_dir() else []
    for archive in archives:
        if archive.is_file():
            folders = ZipFolder.folders(archive)
            for folder in sorted(folders, key=lambda name: (name != top_folder, name)):
                if holds_dataset(folders[folder]):
                    logging.info("%s: reading %s:%s/", title, archive, folder)
                    return ZipFolder(archive, folder)
            raise FileNotFoundError(
                f"{title}: the archive {archive} holds no {content} (folders inside: "
                f"{sorted(folders) or 'none'}). Expected the archive as downloaded.\n\n"
                + instructions)
    return None


# ---------------------------------------------------------------------------------------------
# Images and skipped files.
# ---------------------------------------------------------------------------------------------


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
    """Counts the examples a build writes and the files it skips (missing or undecodable).

    A builder's ``_generate_examples`` yields ``report.keep(key, example)``, calls
    ``report.skip(name, reason)`` for each file it leaves out, and ends with ``report.log_total()``.

    Attributes:
        dataset: the name in the log, e.g. ``"fi/train"``.
        skipped: file name -> why it was skipped.
        kept: how many examples were kept.
    """

    dataset: str
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    kept: int = 0

    def keep(self, key: str, example: dict) -> tuple[str, dict]:
        """Counts one example; returns ``(key, example)`` for the builder to yield."""
        self.kept += 1
        return key, example

    def skip(self, name: str, reason: str) -> None:
        self.skipped[name] = reason
        logging.warning("%s: skipping %s: %s", self.dataset, name, reason)

    def log_total(self) -> None:
        if self.skipped:
            logging.warning(
                "%s: kept %d examples, skipped %d: %s", self.dataset, self.kept,
                len(self.skipped), ", ".join(sorted(self.skipped)))
        else:
            logging.info("%s: kept %d examples, skipped none", self.dataset, self.kept)


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


def folder_image_or_skip(folder: DiskFolder | ZipFolder, name: str,
                         report: SkipReport) -> bytes | None:
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
# What every builder's `_info` returns, and where its metadata is.
# ---------------------------------------------------------------------------------------------


def package_dir(module_file: str) -> epath.Path:
    """The folder of a builder's module: its ``pkg_dir_path``, where TFDS reads its metadata.

    TFDS looks for a builder's ``README.md`` (the description) and ``CITATIONS.bib`` under the
    folder its module name gives, ``affect_tf/datasets/<name>``, which exists only in an installed
    copy (``datasets/`` is mapped there); the builder's own folder holds them in a checkout too.

    Args:
        module_file: the builder module's ``__file__``.

    Returns:
        The folder holding the module, its ``README.md`` and ``CITATIONS.bib``.
    """
    from etils import epath  # pylint: disable=g-import-not-at-top,redefined-outer-name

    return epath.Path(module_file).parent


def common_features(**extra_features) -> tfds.features.FeaturesDict:
    """The features of every builder, plus its own: ``image``, ``label`` and ``image/filename``.

    ``image`` is a 3-channel ``tfds.features.Image`` with ``encoding_format`` left None:
    ``image_for_tfds`` stores real RGB JPEGs as distributed and anything else (grayscale / CMYK
    JPEG, PNG, GIF, files misnamed ``.jpg``) as PNG; ``tf.image.decode_image`` reads both.
    ``label`` is the binary ``ClassLabel`` of ``LABEL_NAMES``; ``image/filename`` is ``Text``.
    Keep these as they are: already prepared datasets were written with them.

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


def emotion_feature(emotions: Sequence[str]) -> tfds.features.ClassLabel:
    """The ``emotion`` feature of a builder whose images each carry one of ``emotions``.

    Args:
        emotions: canonical emotion names, in the order of the class indices.
    """
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top,redefined-outer-name

    return tfds.features.ClassLabel(names=list(emotions))


def dataset_info(builder: tfds.core.DatasetBuilder, *, homepage: str | None = None,
                 **extra_features) -> tfds.core.DatasetInfo:
    """The ``DatasetInfo`` of a builder of this folder: what its ``_info`` returns.

    Description and citation come from the builder's ``README.md`` and ``CITATIONS.bib`` (its
    ``pkg_dir_path``); supervised keys are ``("image", "label")``.

    Args:
        builder: the builder (``self`` in ``_info``).
        homepage: the dataset's web page.
        **extra_features: the builder's own features, as :func:`common_features` takes them.
    """
    return builder.dataset_info_from_configs(
        features=common_features(**extra_features),
        supervised_keys=("image", "label"),
        homepage=homepage,
    )


class ManualDownloadBuilder(abc.ABC):
    """The ``_info`` and ``_split_generators`` of a builder whose data the user downloads by hand.

    Mixed in before TFDS's base, so its methods take the place of TFDS's abstract ones; the
    class statement names the dataset::

        class Builder(builder_utils.ManualDownloadBuilder, tfds.core.GeneratorBasedBuilder,
                      title="ArtPhoto", homepage=_HOMEPAGE, emotions=MIKELS_EMOTIONS):

    The builder still sets TFDS's ``VERSION``, ``RELEASE_NOTES`` and
    ``MANUAL_DOWNLOAD_INSTRUCTIONS``; it implements ``_manual_split_generators`` and
    ``_generate_examples``, and ``_features`` when it has features of its own.

    Attributes:
        DATASET_TITLE: the dataset's name in messages (``title``), e.g. ``"Twitter I"``.
        HOMEPAGE: the dataset's web page (``homepage``; None: it has none).
        EMOTION_NAMES: the names of the builder's ``emotion`` ClassLabel (``emotions``; None: it
            has no such feature).
        pkg_dir_path: TFDS's attribute, set to the folder of the builder's module
            (:func:`package_dir`).
    """

    DATASET_TITLE: ClassVar[str]
    HOMEPAGE: ClassVar[str | None]
    EMOTION_NAMES: ClassVar[Sequence[str] | None]

    def __init_subclass__(cls, *, title: str, homepage: str | None = None,
                          emotions: Sequence[str] | None = None, **kwargs):
        """Records the class statement's ``title``, ``homepage`` and ``emotions``.

        Args:
            title: the dataset's name in messages, e.g. ``"Twitter I"``.
            homepage: the dataset's web page, or None.
            emotions: the names of the ``emotion`` ClassLabel, or None for no such feature.
            **kwargs: for TFDS's own ``__init_subclass__`` (``skip_registration``).
        """
        cls.DATASET_TITLE, cls.HOMEPAGE, cls.EMOTION_NAMES = title, homepage, emotions
        # TFDS would read README.md and CITATIONS.bib from the folder the module's name gives,
        # which only an installed copy has (see package_dir). Set before TFDS's own hook runs,
        # so the class is complete when TFDS registers it.
        cls.pkg_dir_path = package_dir(sys.modules[cls.__module__].__file__)
        super().__init_subclass__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        names = self.EMOTION_NAMES
        emotion = {} if names is None else {"emotion": emotion_feature(names)}
        return dataset_info(self, homepage=self.HOMEPAGE, **emotion, **self._features())

    def _features(self) -> dict[str, Any]:
        """The builder's features beyond the common ones and ``emotion``, by name (none here)."""
        return {}

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        manual_dir = manual_dir_or_raise(dl_manager, self.DATASET_TITLE,
                                         self.MANUAL_DOWNLOAD_INSTRUCTIONS)
        return self._manual_split_generators(manual_dir)

    @abc.abstractmethod
    def _manual_split_generators(self, manual_dir: epath.Path) -> dict[str, Any]:
        """What ``_split_generators`` returns, from the manual folder.

        Args:
            manual_dir: ``dl_manager.manual_dir``, known to be an existing, non-empty folder.

        Returns:
            Split name -> the generator ``_generate_examples`` returns for it.
        """
