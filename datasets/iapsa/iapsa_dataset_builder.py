"""IAPSa (Mikels et al., 2005): IAPS pictures with one of Mikels' eight emotion categories.

Two sources, both by licence or request:

* the IAPS pictures (Lang, Bradley & Cuthbert; CSEA, University of Florida), named
  ``<IAPS number>.jpg`` with the decimal kept (``2352.1.jpg``), usually in
  ``IAPS 2008 1-20/IAPS 1-20 Images/``;
* Mikels' norm files, ``mikels2005negativenorms.txt`` and ``mikels2005positivenorms.txt`` (CSV
  copies circulate), supplementary material of Mikels et al., Behavior Research Methods 2005: a
  ``Picture`` column (the IAPS number), a ``Category`` column of letter codes and per-emotion
  ``<Emotion>Mean`` / ``<Emotion>SD`` columns (1-7 ratings).

Category codes are read per file, because the same letter means different emotions in the two
files: negative file A anger, D disgust, F fear, S sadness; positive file A (or Am) amusement, Aw
awe, C contentment, E excitement; U undifferentiated in both. Full words and the common
abbreviations (``Angr``, ``Sadn``, ``Cont``, ``Exci``...) are accepted; blends are written as
several codes (``AD``, ``D/F``, ``Disgust-Fear``). An unknown code is an error naming the file and
line. Because the positive file's codes were not verified against a real copy, the build logs, per
code, how often the coded emotion is also the one with the highest mean, and warns when they
disagree for most pictures.

Two labellings (builder configs):

* ``category`` (default): IAPSa proper, the pictures whose Category names exactly one emotion
  (undifferentiated and blended pictures are dropped and counted); 395 pictures expected, 209
  positive and 186 negative. Polarity comes from the file a picture is listed in.
* ``argmax_means``: every picture with an image, labelled by the emotion with the highest of its
  four means (exact ties dropped and counted).

No official split (stratified 5-fold cross-validation, derived by ``affect_tf.data``): everything
is in ``train``.

Features: ``image`` (3-channel; JPEG bytes as distributed, or a lossless PNG re-encoding for
grayscale IAPS pictures), ``label``, ``emotion`` (Mikels' eight), ``image/filename`` (the image's
file name, e.g. ``2352.1.jpg``: the folders above it differ between copies, so the name alone is
the stable key), ``iaps_number`` (text, e.g. ``2352.1``), ``category`` (the Category code as
written), ``emotion_means`` and ``emotion_sds`` (float32 [8] in Mikels' order; NaN for the four
emotions of the other polarity, which were not rated, and for absent columns or blank cells).
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import logging
import math
import re
from typing import Iterator, Sequence

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from affect_tf.config import LABEL_NAMES
from affect_tf.datasets import builder_utils

_HOMEPAGE = "https://csea.phhp.ufl.edu/media.html"
UNDIFFERENTIATED = "undifferentiated"

# Published count of IAPSa (README.md beside this file [I]): (total, positive, negative).
EXPECTED_COUNTS = (395, 209, 186)

_EMOTIONS_OF = {
    "negative": ("anger", "disgust", "fear", "sadness"),
    "positive": ("amusement", "awe", "contentment", "excitement"),
}

# Category codes per file, upper case. Single letters as Mikels coded them (README.md beside this
# file), plus the spellings a re-typed copy may use. Blends are parsed as a sequence of these,
# longest first.
_CODES = {
    "negative": {
        "A": "anger", "AN": "anger", "ANG": "anger", "ANGR": "anger", "ANGER": "anger",
        "ANGRY": "anger",
        "D": "disgust", "DIS": "disgust", "DISG": "disgust", "DISGUST": "disgust",
        "DISGUSTED": "disgust",
        "F": "fear", "FE": "fear", "FEA": "fear", "FEAR": "fear", "AFRAID": "fear",
        "S": "sadness", "SA": "sadness", "SAD": "sadness", "SADN": "sadness", "SADNESS": "sadness",
    },
    "positive": {
        "A": "amusement", "AM": "amusement", "AMU": "amusement", "AMUS": "amusement",
        "AMUSE": "amusement", "AMUSED": "amusement", "AMUSEMENT": "amusement",
        "AW": "awe", "AWE": "awe",
        "C": "contentment", "CO": "contentment", "CON": "contentment", "CONT": "contentment",
        "CONTENT": "contentment", "CONTENTMENT": "contentment",
        "E": "excitement", "EX": "excitement", "EXC": "excitement", "EXCI": "excitement",
        "EXCITE": "excitement", "EXCITED": "excitement", "EXCITEMENT": "excitement",
    },
}
for _table in _CODES.values():
    _table.update({code: UNDIFFERENTIATED for code in (
        "U", "UN", "UND", "UNDIF", "UNDIFF", "UNDIFFERENTIATED")})

# Header spellings (lower case, letters and digits only) of the two key columns.
_PICTURE_COLUMNS = ("picture", "pic", "iaps", "iapsnumber", "iapsno", "iapsnum", "picturenumber",
                    "pictureno", "picno", "picnum", "slide", "slideno", "image", "imageno")
_CATEGORY_COLUMNS = ("category", "cat", "categories", "emotioncategory", "emotion", "class")

_NORM_SUFFIXES = (".txt", ".csv", ".tsv", ".dat")

_MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
IAPSa needs two things, both under licence / by request:
  1. The IAPS pictures: request them from the Center for the Study of Emotion and Attention
     (CSEA), University of Florida: {_HOMEPAGE}
     They come named <IAPS number>.jpg (e.g. 1050.jpg, 2352.1.jpg), typically in
     `IAPS 2008 1-20/IAPS 1-20 Images/`.
  2. Mikels' norm files `mikels2005negativenorms.txt` and `mikels2005positivenorms.txt` (CSV
     copies are accepted), from the supplementary material (Psychonomic Society archive) of
     Mikels et al., "Emotional category data on images from the International Affective
     Picture System", Behavior Research Methods 37(4), 2005.
Put both in `manual_dir`, in any subfolders: the norm files and the images are searched for
recursively (image names are matched to the norm files' Picture numbers).
"""


@dataclasses.dataclass(frozen=True)
class Picture:
    """One row of a Mikels norm file.

    Attributes:
        number: canonical IAPS number, e.g. ``"2352.1"``, ``"1050"``.
        polarity: ``"negative"`` or ``"positive"``: which file the row is in.
        category: the Category cell as written, e.g. ``"F"``, ``"AD"`` (``""`` when the file has
            no Category column).
        emotions: the emotions the category names (may hold ``UNDIFFERENTIATED``).
        means: float32 [8], Mikels' order; NaN where not rated.
        sds: float32 [8], likewise.
        source: the norm file's name; line: 1-based line number, for messages.
    """

    number: str
    polarity: str
    category: str
    emotions: frozenset
    means: np.ndarray
    sds: np.ndarray
    source: str
    line: int


def canonical_number(text: str) -> str | None:
    """Canonical IAPS number: ``"1050.0"`` -> ``"1050"``, ``"2352.10"`` -> ``"2352.1"``.

    Spreadsheet copies store picture numbers as floats, so trailing zeros of the decimal part
    carry no meaning. Returns None when ``text`` is not a number.
    """
    text = text.strip()
    if not re.fullmatch(r"\d+(\.\d+)?", text):
        return None
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def parse_category(code: str, polarity: str) -> frozenset:
    """The emotions a Category code names, read with the code table of one file.

    Args:
        code: e.g. ``"F"``, ``"Aw"``, ``"AD"``, ``"D/F"``, ``"Disgust-Fear"``, ``"U"``.
        polarity: which file the code comes from: ``"negative"`` or ``"positive"``.

    Returns:
        A set of canonical emotion names, possibly with ``UNDIFFERENTIATED``.

    Raises:
        ValueError: empty, or a part that is no code of this file (message without location;
            the caller adds file and line).
    """
    table = _CODES[polarity]
    words = [word.upper() for word in re.split(r"[^A-Za-z]+", code) if word]
    if not words:
        raise ValueError(f"empty Category; expected one of the {polarity} file's codes "
                         f"{_known_codes(polarity)}. Received: {code!r}")
    emotions = set()
    for word in words:
        if word in table:
            emotions.add(table[word])
            continue
        # Concatenated codes (`AD`, `AwC`): longest code first at each position.
        start = 0
        while start < len(word):
            for end in range(len(word), start, -1):
                if word[start:end] in table:
                    emotions.add(table[word[start:end]])
                    start = end
                    break
            else:
                raise ValueError(
                    f"unknown Category code {word[start:]!r} in {code!r}; the {polarity} file's "
                    f"codes are {_known_codes(polarity)} (or their full names)")
    return frozenset(emotions)


def _known_codes(polarity: str) -> str:
    singles = {code: name for code, name in _CODES[polarity].items()
               if len(code) <= 2 and code not in ("AN", "FE", "SA", "CO", "EX", "UN")}
    return ", ".join(f"{code}={name}" for code, name in sorted(singles.items()))


def _header_key(cell: str) -> str:
    return re.sub(r"[^a-z0-9]", "", cell.lower())


def _rating_column(key: str, polarity: str) -> tuple[str, str] | None:
    """``("anger", "mean")`` for headers like ``AngerMean``, ``AngrMean``, ``Mean Anger``,
    ``SadnSD``, ``anger_sd``; None for other columns. Only this file's emotions are matched."""
    for statistic, suffixes in (("mean", ("mean", "avg")), ("sd", ("sd", "std", "stdev"))):
        for suffix in suffixes:
            for stem in (key[:-len(suffix)] if key.endswith(suffix) else None,
                         key[len(suffix):] if key.startswith(suffix) else None):
                if not stem or len(stem) < 3:
                    continue
                # `Angr`, `Sadn`, `Disg`: a prefix-ish abbreviation; each letter in order.
                matches = [emotion for emotion in _EMOTIONS_OF[polarity]
                           if emotion.startswith(stem[:3]) and _is_subsequence(stem, emotion)]
                if len(matches) == 1:
                    return matches[0], statistic
    return None


def _is_subsequence(short: str, long: str) -> bool:
    letters = iter(long)
    return all(letter in letters for letter in short)


def _split(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        cells = line.split()
    else:
        cells = next(csv.reader([line], delimiter=delimiter, skipinitialspace=True))
    return [cell.strip().strip("'\"").strip() for cell in cells]


def _float(cell: str, source: str, number: int, column: str) -> float:
    if cell in ("", ".", "-", "NA", "N/A", "nan", "NaN"):
        return math.nan
    try:
        return float(cell)
    except ValueError:
        raise ValueError(f"{source}, line {number}: column {column!r} must hold a number. "
                         f"Received: {cell!r}") from None


@dataclasses.dataclass(frozen=True)
class _Columns:
    """What a norm file's header row says: where the columns the builder reads are.

    Attributes:
        line: the header's 1-based line number.
        delimiter: ``"\t"``, ``","``, ``";"``, or None for runs of spaces.
        keys: the header cells, lower case, letters and digits only (``"fearmean"``).
        picture: the picture column's index.
        category: the Category column's index, None when the file has none.
        ratings: column index -> (index in Mikels' order, ``"mean"`` or ``"sd"``).
    """

    line: int
    delimiter: str | None
    keys: list[str]
    picture: int
    category: int | None
    ratings: dict[int, tuple[int, str]]


def _decode(data: bytes | str) -> str:
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            # Norm files of 2005 may be Latin-1 / Mac Roman; only ASCII columns matter here.
            return data.decode("latin-1")
    return data


def _columns(line: int, delimiter: str | None, keys: list[str], polarity: str) -> _Columns:
    """Reads a header row's cells (``keys``, normalized) into a :class:`_Columns`."""
    ratings = {}
    for column, key in enumerate(keys):
        rating = _rating_column(key, polarity)
        if rating is not None:
            ratings[column] = (builder_utils.MIKELS_EMOTIONS.index(rating[0]), rating[1])
    return _Columns(
        line, delimiter, keys,
        picture=next(i for i, key in enumerate(keys) if key in _PICTURE_COLUMNS),
        category=next((i for i, key in enumerate(keys) if key in _CATEGORY_COLUMNS), None),
        ratings=ratings)


def _find_header(lines: list[tuple[int, str]], polarity: str,
                 source: str) -> tuple[_Columns, list[tuple[int, str]]]:
    """Finds the header among the first ten lines: the first that names a picture column.

    Returns:
        The header's columns and the lines below it.

    Raises:
        ValueError: no such line.
    """
    for index, (number, line) in enumerate(lines[:10]):
        delimiter = next((d for d in ("\t", ",", ";") if d in line), None)
        keys = [_header_key(cell) for cell in _split(line, delimiter)]
        if any(key in _PICTURE_COLUMNS for key in keys):
            return _columns(number, delimiter, keys, polarity), lines[index + 1:]
    first = lines[0][1] if lines else "(empty file)"
    raise ValueError(
        f"{source}: no header row found; expected a line naming a picture column "
        f"(Picture / IAPS), a Category column and <Emotion>Mean / <Emotion>SD columns. "
        f"Received first line: {first!r}")


def _row_cells(line: str, number: int, columns: _Columns, source: str) -> list[str]:
    """A row's cells, one per header column (missing trailing cells are blank)."""
    width = len(columns.keys)
    cells = _split(line, columns.delimiter)
    while len(cells) > width and not cells[-1]:
        cells.pop()
    if len(cells) > width:
        raise ValueError(f"{source}, line {number}: {len(cells)} cells but the header (line "
                         f"{columns.line}) names {width} columns. Received: {line!r}")
    return cells + [""] * (width - len(cells))


def _parse_row(line: str, number: int, columns: _Columns, polarity: str, source: str) -> Picture:
    """One row of a norm file as a :class:`Picture`; errors name the file and line."""
    cells = _row_cells(line, number, columns, source)
    picture = canonical_number(cells[columns.picture])
    if picture is None:
        raise ValueError(f"{source}, line {number}: the {columns.keys[columns.picture]!r} column "
                         f"must hold an IAPS number such as 1050 or 2352.1. Received: {line!r}")
    category, emotions = "", frozenset()
    if columns.category is not None:
        category = cells[columns.category]
        try:
            emotions = parse_category(category, polarity)
        except ValueError as error:
            raise ValueError(f"{source}, line {number}: {error}") from None
    means = np.full(len(builder_utils.MIKELS_EMOTIONS), np.nan, np.float32)
    sds = means.copy()
    for column, (index, statistic) in columns.ratings.items():
        value = _float(cells[column], source, number, columns.keys[column])
        (means if statistic == "mean" else sds)[index] = value
    return Picture(picture, polarity, category, emotions, means, sds, source, number)


def parse_norms(data: bytes | str, polarity: str, source: str) -> list[Picture]:
    """Parses one Mikels norm file (TAB, comma, semicolon or space separated).

    The header row is the first line with a picture column (``Picture``, ``IAPS``, ``Pic #``...;
    case and spaces ignored); lines above it (a title) are skipped. CRLF, a BOM and blank lines
    are tolerated; columns other than the picture, category and rating columns are ignored.

    Args:
        data: the file's bytes or text.
        polarity: ``"negative"`` or ``"positive"``: which file this is.
        source: the file's name, for messages.

    Returns:
        The rows in file order.

    Raises:
        ValueError: no header, a malformed row, an unknown category code, a picture listed twice;
            the message names the file and line.
    """
    # Not `numbered_lines`: it strips TABs too, and a leading empty TAB cell is a column.
    lines = [(number, line.strip(" \ufeff")) for number, line in
             enumerate(_decode(data).splitlines(), start=1) if line.strip()]
    columns, rows = _find_header(lines, polarity, source)
    keys = columns.keys
    logging.info("iapsa: %s header (line %d): picture=%r category=%r ratings=%s", source,
                 columns.line, keys[columns.picture],
                 keys[columns.category] if columns.category is not None else None,
                 {keys[c]: v for c, v in columns.ratings.items()})
    pictures, seen = [], {}
    for number, line in rows:
        picture = _parse_row(line, number, columns, polarity, source)
        if picture.number in seen:
            raise ValueError(f"{source}, line {number}: picture {picture.number} is listed twice "
                             f"(first on line {seen[picture.number]}).")
        seen[picture.number] = number
        pictures.append(picture)
    return pictures


@dataclasses.dataclass(frozen=True)
class Sources:
    """What ``locate_dataset`` found: the two norm files and the images by IAPS number."""

    norm_files: dict  # polarity -> epath.Path
    images: dict  # canonical IAPS number -> epath.Path


# How deep below manual_dir files are looked for: `IAPS 2008 1-20/IAPS 1-20 Images/x.jpg` is 3
# deep; the bound leaves room for a folder or two more and stops a symlink loop.
_MAX_DEPTH = 6


def _walk(folder: epath.Path, depth: int = 0) -> Iterator[epath.Path]:
    """All files under ``folder``, sorted, OS litter (``.DS_Store``, ``__MACOSX/``) skipped."""
    for child in sorted(folder.iterdir(), key=lambda path: path.name):
        if builder_utils.is_stray_name(child.name):
            continue
        if child.is_dir():
            if depth < _MAX_DEPTH:
                yield from _walk(child, depth + 1)
        else:
            yield child


def _norm_polarity(name: str) -> str | None:
    name = name.lower()
    if not name.endswith(_NORM_SUFFIXES) or "norm" not in name:
        return None
    return next((polarity for polarity in LABEL_NAMES if polarity in name), None)


def locate_dataset(manual_dir: epath.PathLike) -> Sources:
    """Finds the two norm files and the IAPS images anywhere under ``manual_dir``.

    Args:
        manual_dir: what the user passed as ``manual_dir``.

    Returns:
        The norm files (a ``.txt`` preferred over a CSV copy) and the images by IAPS number (the
        first in path order when a number has several files).

    Raises:
        FileNotFoundError: a norm file, or every image, is missing; the message names what was
            expected and what ``manual_dir`` holds.
    """
    manual_dir = epath.Path(manual_dir)
    norms = collections.defaultdict(list)
    images, duplicates = {}, []
    if manual_dir.is_dir():
        for path in _walk(manual_dir):
            polarity = _norm_polarity(path.name)
            if polarity:
                norms[polarity].append(path)
                continue
            if not builder_utils.is_image_name(path.name):
                continue
            number = canonical_number(path.name.rsplit(".", 1)[0])
            if number is None:
                continue
            if number in images:
                duplicates.append(f"{path} (kept {images[number]})")
            else:
                images[number] = path
    if duplicates:
        logging.warning("iapsa: %d IAPS numbers have several image files; using the first: %s",
                        len(duplicates), "; ".join(duplicates))
    missing = [f"mikels2005{polarity}norms.txt" for polarity in LABEL_NAMES if not norms[polarity]]
    found = sorted(str(path) for paths in norms.values() for path in paths)
    if missing or not images:
        what = ", ".join(missing + ([] if images else ["<IAPS number>.jpg images"]))
        raise builder_utils.not_found_error(
            f"IAPSa: not found under manual_dir: {what}. Expected, anywhere under manual_dir, "
            f"mikels2005negativenorms.txt and mikels2005positivenorms.txt (or .csv copies) and "
            f"the IAPS pictures named <IAPS number>.jpg (e.g. 1050.jpg, 2352.1.jpg). Found "
            f"{len(images)} IAPS images and the norm files {found or 'none'}.",
            manual_dir, _MANUAL_DOWNLOAD_INSTRUCTIONS)
    chosen = {}
    for polarity in LABEL_NAMES:
        candidates = sorted(norms[polarity], key=lambda p: (p.suffix.lower() != ".txt", str(p)))
        chosen[polarity] = candidates[0]
        if len(candidates) > 1:
            logging.warning("iapsa: several %s norm files; using %s, ignoring %s", polarity,
                            candidates[0], ", ".join(str(p) for p in candidates[1:]))
    return Sources(chosen, images)


def check_codes_against_means(pictures: Sequence[Picture]) -> dict[str, tuple[int, int]]:
    """How often a single-emotion code agrees with the arg-max of the picture's four means.

    The positive file's letter codes are not verified (README.md beside this file): if a code is
    mapped to the wrong emotion, its pictures' highest mean will mostly be another emotion. Warns
    for a code whose pictures agree less than half the time.

    Returns:
        ``"<polarity>:<emotion>" -> (agreeing, rated)``.
    """
    stats = collections.defaultdict(lambda: [0, 0])
    for picture in pictures:
        if len(picture.emotions) != 1 or UNDIFFERENTIATED in picture.emotions:
            continue
        (emotion,) = picture.emotions
        rated = [builder_utils.MIKELS_EMOTIONS.index(e) for e in _EMOTIONS_OF[picture.polarity]]
        means = picture.means[rated]
        if np.isnan(means).any():
            continue
        key = f"{picture.polarity}:{emotion}"
        stats[key][1] += 1
        stats[key][0] += builder_utils.MIKELS_EMOTIONS[rated[int(np.argmax(means))]] == emotion
    for key, (agree, total) in sorted(stats.items()):
        logging.info("iapsa: category %s agrees with the highest mean for %d of %d pictures",
                     key, agree, total)
        if total >= 5 and agree * 2 < total:
            logging.warning(
                "iapsa: category %s agrees with the highest of the four means for only %d of %d "
                "pictures: the file's letter code may mean another emotion. Check the code table "
                "in iapsa_dataset_builder.py against the file's documentation.", key, agree, total)
    return {key: tuple(value) for key, value in stats.items()}


def label_pictures(pictures: Sequence[Picture], labelling: str) -> list[tuple[Picture, str]]:
    """Picks the pictures of a labelling and their emotion.

    Args:
        pictures: both files' rows.
        labelling: ``"category"`` (exactly one emotion named) or ``"argmax_means"``.

    Returns:
        ``(picture, emotion)`` pairs in input order.

    Raises:
        ValueError: the files lack the columns the labelling needs.
    """
    selected, dropped = [], collections.Counter()
    for picture in pictures:
        if labelling == "category":
            if not picture.category:
                raise ValueError(f"{picture.source} has no Category column; the `category` "
                                 "labelling needs it (the `argmax_means` config does not).")
            if UNDIFFERENTIATED in picture.emotions:
                dropped["undifferentiated"] += 1
            elif len(picture.emotions) > 1:
                dropped["blended (several emotions)"] += 1
            else:
                selected.append((picture, next(iter(picture.emotions))))
        elif labelling == "argmax_means":
            rated = [builder_utils.MIKELS_EMOTIONS.index(e)
                     for e in _EMOTIONS_OF[picture.polarity]]
            means = picture.means[rated]
            if np.isnan(means).all():
                raise ValueError(
                    f"{picture.source}, line {picture.line}: no <Emotion>Mean values for picture "
                    f"{picture.number}; the `argmax_means` labelling needs the columns "
                    f"{[e.capitalize() + 'Mean' for e in _EMOTIONS_OF[picture.polarity]]}.")
            if np.isnan(means).any():
                dropped["a blank mean"] += 1
            elif np.count_nonzero(means == means.max()) > 1:
                dropped["tied highest mean"] += 1
            else:
                emotion = builder_utils.MIKELS_EMOTIONS[rated[int(np.argmax(means))]]
                selected.append((picture, emotion))
        else:
            raise ValueError(f"labelling must be 'category' or 'argmax_means'. "
                             f"Received: {labelling!r}")
    for reason, count in sorted(dropped.items()):
        logging.info("iapsa (%s): dropped %d pictures: %s", labelling, count, reason)
    return selected


# The configs' names as a literal: the command line checks --dataset=<name>/<config> before
# TensorFlow loads, reading this without importing the module (tests check it equals
# Builder.BUILDER_CONFIGS).
CONFIG_NAMES = ("category", "argmax_means")


class Builder(builder_utils.ManualDownloadBuilder, tfds.core.GeneratorBasedBuilder,
              title="IAPSa", homepage=_HOMEPAGE, emotions=builder_utils.MIKELS_EMOTIONS):
    """DatasetBuilder for IAPSa (IAPS pictures with Mikels' emotion categories)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: `category` and `argmax_means` configs."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="category", description=(
            "IAPSa proper: pictures whose Mikels category names exactly one emotion "
            "(undifferentiated and blended pictures dropped); 395 expected.")),
        tfds.core.BuilderConfig(name="argmax_means", description=(
            "All rated pictures with an image, labelled by the highest of their four emotion "
            "means (exact ties dropped).")),
    ]

    def _features(self) -> dict[str, tfds.features.FeatureConnector]:
        per_emotion = (len(self.EMOTION_NAMES),)
        return {
            "iaps_number": tfds.features.Text(),
            "category": tfds.features.Text(),
            "emotion_means": tfds.features.Tensor(
                shape=per_emotion, dtype=np.float32,
                doc="Mean 1-7 rating per emotion, order of `emotion`; NaN where not rated."),
            "emotion_sds": tfds.features.Tensor(
                shape=per_emotion, dtype=np.float32,
                doc="Standard deviation of the ratings, like `emotion_means`."),
        }

    def _manual_split_generators(self, manual_dir: epath.Path):
        sources = locate_dataset(manual_dir)
        pictures = []
        for polarity in LABEL_NAMES:
            path = sources.norm_files[polarity]
            pictures += parse_norms(path.read_bytes(), polarity, path.name)
        numbers = collections.Counter(picture.number for picture in pictures)
        both = sorted(number for number, count in numbers.items() if count > 1)
        if both:
            raise ValueError(
                f"IAPSa: pictures {both} are listed in both norm files "
                f"({sources.norm_files['negative']}, {sources.norm_files['positive']}); a picture "
                "is either negative or positive. Are the two files swapped or merged?")
        check_codes_against_means(pictures)
        selected = label_pictures(pictures, self.builder_config.name)
        return {"train": self._generate_examples(selected, sources.images)}

    def _generate_examples(self, selected, images) -> Iterator[tuple[str, dict]]:
        report = builder_utils.SkipReport(f"iapsa/{self.builder_config.name}")
        for picture, emotion in sorted(selected, key=lambda item: item[0].number):
            path = images.get(picture.number)
            if path is None:
                report.skip(f"{picture.number}.jpg", f"listed on line {picture.line} of "
                            f"{picture.source} but no image has this number")
                continue
            image = builder_utils.load_image_or_skip(path, path.name, report)
            if image is not None:
                # The emotion's polarity is the file's: each file's codes name its own emotions.
                yield report.keep(path.name, builder_utils.emotion_example(
                    image, emotion, path.name, iaps_number=picture.number,
                    category=picture.category, emotion_means=picture.means,
                    emotion_sds=picture.sds))
        report.log_total()
