"""Abstract paintings (Machajdik & Hanbury, ACM MM 2010): 280 paintings, 228 with a clear emotion.

The archive ``testImages_abstract.zip`` holds one flat folder ``testImages_abstract/`` of
``abstract_<4 digits>.jpg`` paintings and ``ABSTRACT_groundTruth.csv``: for each painting, how
many of the ~14 raters (on the authors' web survey) chose each of Mikels' eight emotions. The CSV
is comma-separated with strings in *single* quotes; its first column has an empty header and holds
the file name (``'abstract_0001.jpg'``), then integer vote counts in the columns ``Amusement,
Anger, Awe, Content, Disgust, Excitement, Fear, Sad``.

Label: the emotion with the most votes, and its polarity. Paintings whose top vote count is shared
by two or more emotions are dropped (280 -> 228, the set used by the literature); the number of
ties is logged. The vote vector is kept as the ``votes`` feature, in Mikels' order (the same as
the CSV's), so other labellings (vote distributions, polarity by summed votes) can be derived.

No official split (the protocol is stratified 5-fold cross-validation, derived by
``affect_tf.data``): everything is in ``train``.

Features: ``image`` (3-channel; the JPEG bytes as distributed, or a lossless PNG re-encoding for
non-RGB files), ``label`` (negative / positive), ``emotion`` (Mikels' eight), ``votes`` (int32
[8], Mikels' order) and ``image/filename`` (the file name as the CSV and the archive give it, e.g.
``abstract_0001.jpg``; also the example key and the proposal-cache key).
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from typing import Iterator, Sequence

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from affect_tf.datasets import builder_utils

_HOMEPAGE = "https://www.imageemotion.org/"
_TOP_FOLDER = "testImages_abstract"
_ARCHIVE = "testImages_abstract.zip"
GROUND_TRUTH = "ABSTRACT_groundTruth.csv"

# Published counts (README.md beside this file): paintings in the CSV, and those kept once ties
# are dropped.
EXPECTED_COUNTS = {"listed": 280, "kept": 228}

# The CSV's own column order, used only when a copy has lost its header row.
_DEFAULT_COLUMNS = ("Amusement", "Anger", "Awe", "Content", "Disgust", "Excitement", "Fear", "Sad")

_MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download `{_ARCHIVE}` from the image-emotion page of Machajdik & Hanbury: {_HOMEPAGE}
Then pass as `manual_dir` any of:
  (a) the extracted folder `{_TOP_FOLDER}/` itself (flat: abstract_<4 digits>.jpg and
      {GROUND_TRUTH}),
  (b) the folder you extracted the archive into (it holds `{_TOP_FOLDER}/`),
  (c) a folder holding `{_ARCHIVE}` as downloaded (read in place, nothing is extracted).
"""


@dataclasses.dataclass(frozen=True)
class Row:
    """One painting of the ground-truth CSV.

    Attributes:
        filename: e.g. ``"abstract_0001.jpg"`` (quotes removed).
        votes: int32 [8], vote counts in Mikels' order (``builder_utils.MIKELS_EMOTIONS``).
        line: 1-based line number in the CSV, for messages.
    """

    filename: str
    votes: np.ndarray
    line: int


def _cells(line: str) -> list[str]:
    """Splits one CSV line: commas, single-quoted strings, spaces after commas tolerated."""
    cells = next(csv.reader([line], quotechar="'", skipinitialspace=True))
    # A trailing comma leaves an empty last cell that no column owns.
    while cells and not cells[-1].strip():
        cells.pop()
    return [cell.strip().strip("'\"").strip() for cell in cells]


def _vote(cell: str, source: str, number: int, column: str) -> int:
    """Parses one vote count; integral floats (``3.0``, as a spreadsheet re-save writes) pass."""
    try:
        value = float(cell)
    except ValueError:
        value = float("nan")
    if not value.is_integer() or value < 0:
        raise ValueError(
            f"{source}, line {number}: column {column!r} must hold a vote count (an integer >= 0). "
            f"Received: {cell!r}")
    return int(value)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def parse_ground_truth(data: bytes | str, source: str = GROUND_TRUTH) -> list[Row]:
    """Parses ``ABSTRACT_groundTruth.csv``.

    Tolerates CRLF / CR line ends, a UTF-8 BOM, blank lines, quoted or unquoted header cells, the
    spellings of ``builder_utils.normalize_emotion`` (``Sad``, ``Content``, ``sadness``...) and
    columns in any order. A copy without its header row is read in the original column order.

    Args:
        data: the file's bytes or text.
        source: the file's name, used in error messages.

    Returns:
        The rows in file order.

    Raises:
        ValueError: an unknown or missing emotion column, a row with the wrong number of cells, a
            vote that is not a non-negative integer, or a file name listed twice; the message
            names the file and the line.
    """
    lines = builder_utils.numbered_lines(data)
    if not lines:
        raise ValueError(f"{source} is empty; expected a header row and one row per painting.")
    number, first = lines[0]
    header = _cells(first)
    if len(header) > 1 and not all(_is_number(cell) for cell in header[1:]):
        column_names, lines = header[1:], lines[1:]
    else:
        logging.warning("%s has no header row; assuming the columns %s", source, _DEFAULT_COLUMNS)
        column_names = list(_DEFAULT_COLUMNS)
    try:
        emotions = [builder_utils.normalize_emotion(name) for name in column_names]
    except ValueError as error:
        raise ValueError(f"{source}, line {number}: unknown emotion column ({error}). Expected the "
                         f"header ,{','.join(_DEFAULT_COLUMNS)}. Received: {first!r}") from None
    if sorted(emotions) != sorted(builder_utils.MIKELS_EMOTIONS):
        raise ValueError(
            f"{source}, line {number}: expected one column per Mikels emotion "
            f"({', '.join(_DEFAULT_COLUMNS)}) after the file-name column. Received: {first!r}")
    order = [emotions.index(emotion) for emotion in builder_utils.MIKELS_EMOTIONS]

    rows, seen = [], {}
    for number, line in lines:
        cells = _cells(line)
        if len(cells) != 1 + len(emotions) or not cells[0]:
            raise ValueError(
                f"{source}, line {number}: expected a quoted file name and {len(emotions)} vote "
                f"counts ({len(emotions) + 1} comma-separated cells). Received: {line!r}")
        filename = cells[0]
        if filename in seen:
            raise ValueError(f"{source}, line {number}: {filename} is listed twice (first on line "
                             f"{seen[filename]}).")
        seen[filename] = number
        votes = [_vote(cell, source, number, column)
                 for cell, column in zip(cells[1:], column_names)]
        rows.append(Row(filename, np.asarray([votes[i] for i in order], np.int32), number))
    return rows


def top_emotion(votes: Sequence[int]) -> str | None:
    """The emotion with the most votes, or None when the top count is tied (or no votes at all).

    Args:
        votes: [8] counts in Mikels' order.
    """
    votes = np.asarray(votes)
    winners = np.flatnonzero(votes == votes.max())
    if len(winners) != 1 or votes.max() <= 0:
        return None
    return builder_utils.MIKELS_EMOTIONS[int(winners[0])]


def _find_csv(names: Sequence[str]) -> str | None:
    """The ground-truth CSV among a folder's file names; the case of the name is not trusted."""
    matches = [name for name in names if name.lower() == GROUND_TRUTH.lower()]
    return matches[0] if matches else None


def locate_dataset(
        manual_dir: epath.PathLike) -> builder_utils.DiskFolder | builder_utils.ZipFolder:
    """Finds the folder holding ``ABSTRACT_groundTruth.csv``: extracted first, then the archive.

    Args:
        manual_dir: what the user passed as ``manual_dir``.

    Returns:
        The folder holding the CSV and the paintings, on disk or inside the archive.

    Raises:
        FileNotFoundError: no CSV in ``manual_dir``, its subfolders or the archive; the message
            names what was expected and what ``manual_dir`` holds.
    """
    manual_dir = epath.Path(manual_dir)
    source = builder_utils.find_flat_folder(
        manual_dir, _TOP_FOLDER, _ARCHIVE, _find_csv, title="Abstract", content=GROUND_TRUTH,
        instructions=_MANUAL_DOWNLOAD_INSTRUCTIONS)
    if source is None:
        raise builder_utils.not_found_error(
            f"Abstract paintings were not found in manual_dir. Expected {GROUND_TRUTH} and "
            f"abstract_<4 digits>.jpg paintings in manual_dir or in its subfolder {_TOP_FOLDER}/, "
            f"or a {_ARCHIVE} archive.", manual_dir, _MANUAL_DOWNLOAD_INSTRUCTIONS)
    return source


def select_examples(rows: Sequence[Row], names: Sequence[str],
                    report: builder_utils.SkipReport) -> list[tuple[str, Row, str]]:
    """Labels the CSV rows, drops ties and reports what the folder and the CSV disagree on.

    Args:
        rows: the parsed CSV.
        names: the file names in the dataset folder.
        report: rows whose painting is not on disk, and paintings no row labels, go here.

    Returns:
        ``(file name on disk, row, emotion)`` for every untied row whose painting exists, sorted
        by file name.
    """
    on_disk = {name: name for name in names if builder_utils.is_image_name(name)}
    # A copy that went through a case-insensitive file system may spell suffixes differently.
    by_lower = {name.lower(): name for name in on_disk}
    selected, ties, listed = [], [], set()
    for row in rows:
        name = on_disk.get(row.filename) or by_lower.get(row.filename.lower())
        if name:
            listed.add(name)
        emotion = top_emotion(row.votes)
        if emotion is None:
            ties.append(row.filename)
        elif name is None:
            report.skip(row.filename, f"listed on line {row.line} of {GROUND_TRUTH} but missing")
        else:
            selected.append((name, row, emotion))
    for name in sorted(set(on_disk) - listed):
        report.skip(name, f"no row in {GROUND_TRUTH}, so no label")
    if ties:
        # Expected (52 of 280 in the original): the tie rule of README.md beside this file, not a
        # failure.
        logging.info("abstract_paintings: dropped %d of %d paintings whose top vote is tied: %s",
                     len(ties), len(rows), ", ".join(sorted(ties)))
    return sorted(selected)


class Builder(builder_utils.ManualDownloadBuilder, tfds.core.GeneratorBasedBuilder,
              title="Abstract paintings", homepage=_HOMEPAGE,
              emotions=builder_utils.MIKELS_EMOTIONS):
    """DatasetBuilder for the Abstract paintings of Machajdik & Hanbury."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: ties dropped (280 -> 228), votes kept."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS

    def _features(self) -> dict[str, tfds.features.FeatureConnector]:
        return {"votes": tfds.features.Tensor(
            shape=(len(self.EMOTION_NAMES),), dtype=np.int32,
            doc="Rater votes per emotion, in the order of the `emotion` names.")}

    def _manual_split_generators(self, manual_dir: epath.Path):
        return {"train": self._generate_examples(locate_dataset(manual_dir))}

    def _generate_examples(self, source) -> Iterator[tuple[str, dict]]:
        report = builder_utils.SkipReport("abstract_paintings")
        with source:
            names = source.names()
            csv_name = _find_csv(names)
            rows = parse_ground_truth(source.read_bytes(csv_name), f"{source}/{csv_name}")
            for name, row, emotion in select_examples(rows, names, report):
                image = builder_utils.folder_image_or_skip(source, name, report)
                if image is not None:
                    yield report.keep(row.filename, builder_utils.emotion_example(
                        image, emotion, row.filename, votes=row.votes))
        report.log_total()
