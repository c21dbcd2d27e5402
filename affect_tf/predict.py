r"""Predict the sentiment and affective regions of your own photos, from the command line.

    python -m affect_tf.predict --model=runs/demo/export photos/ more/*.jpg --output=out.jsonl
    python -m affect_tf.predict --model=runs/demo photos/ --output=out.csv --html=gallery \
        --figures=8

``--model``: an export directory (``--mode=export``; its highest version, regions proposed in the
graph) or a finished run's workdir (the paper's OpenCV proposals, as the evaluation:
:mod:`affect_tf.predictor`). ``PATH``: files, folders (every file below them, recursively, in
name order; hidden names skipped) or glob patterns (``"photos/**/*.jpg"``); each file is decoded
by its content, whatever its name says.

Output: one line per file, in input order, naming its file: JSON Lines (stdout by default, or
``--output=FILE``), CSV when the name ends in ``.csv``. A line holds ``file``, ``model`` (the
model's content id) and the predictor's record (``label``, ``label_index``, ``probabilities``,
``whole_image_probabilities``, ``image_size``, ``regions`` with boxes ``[x0, y0, x1, y1]`` in the
image's pixels, ``top_objectness``, ``top_senti``, ``error``). A file that cannot be read (not an
image, truncated, empty, no permission) gets a line with its ``error`` and no prediction; the
summary on stderr lists them, and the command still exits 0. CSV has the columns of
:data:`CSV_COLUMNS`, the regions and top boxes as JSON (a newline in a file name is written
``\n``). A file named twice is predicted once; what the command writes (``--output``, the
gallery, the figures) is never taken as input, even inside a folder given.

Resuming: files are read ``--batch_size`` at a time (bounded memory; the file list is streamed)
and each line is written whole and flushed as its batch finishes. Run a killed command again with
the same ``--output``: the lines already there for the same model are kept, a partial last line
is dropped, and only the rest is computed and appended, so the file ends as an uninterrupted
run's (batches are cut at the same files, so every file is predicted in the same company). An
output of another model, or a file that is no output of this command, is refused.

``--html=DIR`` writes a static gallery (:mod:`affect_tf.gallery`); ``--figures=N`` a Fig. 9-like
PNG for each of the first N readable photos (in ``--figures_dir``, by default ``DIR/figures``
with ``--html``, else beside ``--output``). Exit status: 0 when every file has its line (readable
or not), 2 with one line on stderr for a bad ``--model`` or ``--output``, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import glob
import io
import json
import os
import pathlib
import sys
import time
from typing import Callable, Iterable, Iterator, Sequence, TextIO

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's C++ start-up lines stay hidden unless the user exported a level (as main.py).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from affect_tf import errors  # noqa: E402
from affect_tf import gallery as gallery_lib  # noqa: E402
from affect_tf import predictor as predictor_lib  # noqa: E402
from affect_tf import startup  # noqa: E402

LINE_KEYS = ("file", "model", "label", "label_index", "probabilities",
             "whole_image_probabilities", "image_size", "regions", "top_objectness", "top_senti",
             "error")
CSV_COLUMNS = ("file", "model", "label", "label_index", "p_negative", "p_positive",
               "whole_p_negative", "whole_p_positive", "height", "width", "regions",
               "top_objectness", "top_senti", "error")
_JSON_PREFIX = b'{"file": '
PROGRESS_SECONDS = 2.0


class OutputError(errors.RunError):
    """--output cannot be written or resumed (it is a folder, another model's, not ours)."""


# ---- the files -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class InputFile:
    """One file to predict.

    Attributes:
        name: the path as the output names it (as given, or joined below a given folder).
        path: where to read it; None when the argument names nothing readable.
        error: why there is nothing to read (``path`` None), else None.
    """

    name: str
    path: str | None
    error: str | None = None


def _has_magic(argument: str) -> bool:
    return any(character in argument for character in "*?[")


def _walk(folder: str) -> Iterator[InputFile]:
    """Every file below ``folder``, depth first, entries in name order, hidden names skipped."""
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as error:
        yield InputFile(folder, None, f"cannot list the folder: {error.strerror or error}")
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path)
        else:
            yield InputFile(entry.path, entry.path)


def _expand(argument: str, warn: Callable[[str], None]) -> Iterator[InputFile]:
    if os.path.isdir(argument):
        yield from _walk(argument)
    elif os.path.lexists(argument):
        yield InputFile(argument, argument)
    elif _has_magic(argument):
        matches = sorted(glob.iglob(argument, recursive=True))
        if not matches:
            warn(f"{argument} matches no file")
        for match in matches:
            yield from (_walk(match) if os.path.isdir(match) else [InputFile(match, match)])
    else:
        yield InputFile(argument, None, "no such file or directory")


def iter_inputs(arguments: Sequence[str], exclude: Sequence[str] = (),
                warn: Callable[[str], None] = lambda message: None) -> Iterator[InputFile]:
    """The files that ``arguments`` name, streamed in input order, each once.

    Args:
        arguments: files, folders (recursive) or glob patterns.
        exclude: files and folders never taken (the output, the gallery).
        warn: called with a line for each pattern that matches nothing.
    """
    excluded = [os.path.realpath(path) for path in exclude]
    seen = set()
    for argument in arguments:
        for item in _expand(argument, warn):
            key = os.path.realpath(item.path) if item.path is not None else item.name
            if key in seen or any(key == path or key.startswith(path + os.sep)
                                  for path in excluded):
                continue
            seen.add(key)
            yield item


# ---- lines -----------------------------------------------------------------------------------

def line_of(record: dict, name: str, model_id: str) -> dict:
    """The output line of one predictor record (:data:`LINE_KEYS`, in that order)."""
    line = {"file": name, "model": model_id}
    line.update({key: record.get(key) for key in LINE_KEYS[2:]})
    return line


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=True, allow_nan=False)


def _csv_name(name: str) -> str:
    """A file name on one physical CSV line (a newline in a name is written ``\\n``)."""
    return name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def _csv_unname(text: str) -> str:
    out, escaped = [], False
    for character in text:
        if escaped:
            out.append({"n": "\n", "r": "\r"}.get(character, character))
            escaped = False
        elif character == "\\":
            escaped = True
        else:
            out.append(character)
    return "".join(out)


def _csv_row(values: Sequence) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode("utf-8")


def _optional_json(value) -> str:
    return "" if value is None else _json(value)


def format_line(line: dict, kind: str) -> bytes:
    """One line's bytes, ending in a newline: ``jsonl`` or ``csv`` (:data:`CSV_COLUMNS`)."""
    if kind == "jsonl":
        return (_json(line) + "\n").encode("ascii")
    probabilities = line["probabilities"] or {}
    whole = line["whole_image_probabilities"] or {}
    size = line["image_size"] or ["", ""]
    return _csv_row([
        _csv_name(line["file"]), line["model"], line["label"] or "",
        "" if line["label_index"] is None else line["label_index"],
        probabilities.get("negative", ""), probabilities.get("positive", ""),
        whole.get("negative", ""), whole.get("positive", ""), size[0], size[1],
        _json(line["regions"]), _optional_json(line["top_objectness"]),
        _optional_json(line["top_senti"]), line["error"] or ""])


def _parse_csv(text: str) -> dict | None:
    rows = list(csv.reader([text]))
    if len(rows) != 1 or len(rows[0]) != len(CSV_COLUMNS):
        return None
    row = dict(zip(CSV_COLUMNS, rows[0]))

    def number(key: str, kind=float):
        return kind(row[key]) if row[key] != "" else None

    def pair(negative: str, positive: str):
        if row[negative] == "":
            return None
        return {"negative": float(row[negative]), "positive": float(row[positive])}

    return {
        "file": _csv_unname(row["file"]), "model": row["model"], "label": row["label"] or None,
        "label_index": number("label_index", int),
        "probabilities": pair("p_negative", "p_positive"),
        "whole_image_probabilities": pair("whole_p_negative", "whole_p_positive"),
        "image_size": ([int(row["height"]), int(row["width"])] if row["height"] != ""
                       else None),
        "regions": json.loads(row["regions"]),
        "top_objectness": json.loads(row["top_objectness"]) if row["top_objectness"] else None,
        "top_senti": json.loads(row["top_senti"]) if row["top_senti"] else None,
        "error": row["error"] or None}


def parse_line(raw: bytes, kind: str) -> dict | None:
    """A written line back as a dict (:func:`line_of`'s form), or None when it is not one."""
    try:
        if kind == "jsonl":
            line = json.loads(raw.decode("ascii"))
        else:
            line = _parse_csv(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, TypeError, KeyError):
        return None
    if not isinstance(line, dict) or not isinstance(line.get("file"), str) or not isinstance(
            line.get("model"), str):
        return None
    return line


# ---- the output ------------------------------------------------------------------------------

class Output:
    """Where the lines go: stdout, or a file that a rerun resumes (module docstring).

    Args:
        path: the file; None or ``-`` for stdout.
        model_id: the predictor's :attr:`~affect_tf.predictor.Predictor.model_id`.
        keep_lines: keep the finished lines whole (the gallery needs them); otherwise only
            their ``label`` and ``error``.
        stdout: the stream for ``-`` (default ``sys.stdout``).

    Attributes:
        kind: ``jsonl``, or ``csv`` for a name ending in ``.csv``.
        finished: ``{file: line}`` of the lines an earlier run left (kept, not computed again).
        dropped_partial: the earlier run was cut in the middle of a line, which was dropped.

    Raises:
        OutputError: the file is a folder, cannot be read or written, holds another model's
            lines or lines that are not this command's.
    """

    def __init__(self, path: str | None, model_id: str, keep_lines: bool = False,
                 stdout: TextIO | None = None):
        self.path = None if path in (None, "", "-") else pathlib.Path(path)
        self.kind = "csv" if self.path is not None and self.path.suffix.lower() == ".csv" \
            else "jsonl"
        self.model_id = model_id
        self.finished: dict[str, dict] = {}
        self.dropped_partial = False
        self._keep_lines = keep_lines
        self._stdout = stdout or sys.stdout
        self._fd = None
        if self.path is not None:
            self._open()

    @property
    def name(self) -> str:
        return "stdout" if self.path is None else str(self.path)

    def _refuse(self, why: str) -> OutputError:
        return OutputError(f"--output {self.path}: {why}")

    def _open(self) -> None:
        if self.path.is_dir():
            raise self._refuse("a folder; pass a file name (.jsonl, or .csv for CSV).")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            keep = self._resume() if self.path.exists() else 0
        except OSError as error:
            raise self._refuse(f"cannot be read ({error.strerror or error}).") from error
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
            os.ftruncate(self._fd, keep)  # Drops a partial last line.
            os.lseek(self._fd, keep, os.SEEK_SET)
            if keep == 0 and self.kind == "csv":
                self._write(_csv_row(CSV_COLUMNS))
        except OSError as error:
            raise self._refuse(f"cannot be written ({error.strerror or error}).") from error

    def _resume(self) -> int:
        """Reads the finished lines an earlier run left, a line at a time; returns how many
        bytes to keep (every whole line; a partial last line, cut by a kill, is dropped).

        Raises:
            OutputError: a line that is not this command's, or another model's.
        """
        keep = 0
        with open(self.path, "rb") as handle:
            if self.kind == "csv":
                header = _csv_row(CSV_COLUMNS)
                first = handle.readline()
                if first != header and header.startswith(first):
                    return 0  # Empty, or killed while writing the header.
                if first != header:
                    raise self._refuse("exists and is not a CSV output of affect_tf.predict "
                                       "(its header differs); pass another --output.")
                keep = len(header)
            for number, raw in enumerate(handle, start=1 + (self.kind == "csv")):
                if not raw.endswith(b"\n"):  # The last line, cut by a kill.
                    if self.kind == "jsonl" and not (raw[:1] == b"{" and
                                                     _JSON_PREFIX.startswith(raw[:9])):
                        raise self._refuse("exists and is not an output of affect_tf.predict; "
                                           "pass another --output.")
                    self.dropped_partial = True  # Its file is computed again.
                    break
                line = parse_line(raw[:-1], self.kind)
                if line is None:
                    raise self._refuse(
                        f"line {number} is not a line of affect_tf.predict; this command "
                        "appends only to its own output: pass another --output.")
                if line["model"] != self.model_id:
                    raise self._refuse(
                        f"holds predictions of another model ({line['model']}; this one is "
                        f"{self.model_id}). Pass another --output, or delete it to start again.")
                self.finished[line["file"]] = line if self._keep_lines else {
                    "label": line.get("label"), "error": line.get("error")}
                keep += len(raw)
        return keep

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def write(self, line: dict) -> None:
        """Writes one line whole (one write call, then flushed)."""
        data = format_line(line, self.kind)
        if self._fd is None:
            self._stdout.write(data.decode("utf-8"))
            self._stdout.flush()
        else:
            self._write(data)

    def sync(self) -> None:
        """Makes the lines written so far durable (after each batch)."""
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None


# ---- progress --------------------------------------------------------------------------------

class Progress:
    """Lines on stderr, at most every :data:`PROGRESS_SECONDS`: files done, rate, ETA."""

    def __init__(self, total: int, stream: TextIO, every: float = PROGRESS_SECONDS):
        self.total = total
        self.stream = stream
        self.every = every
        self.done = 0
        self.kept = 0
        self.computed = 0
        self.start = time.monotonic()
        self._last = self.start
        self._shown = -1  # ``done`` when the last line was printed.

    def update(self, computed: int = 0, kept: int = 0, force: bool = False) -> None:
        self.done += computed + kept
        self.computed += computed
        self.kept += kept
        now = time.monotonic()
        if self.done == self._shown or (not force and now - self._last < self.every):
            return
        self._last, self._shown = now, self.done
        elapsed = max(now - self.start, 1e-9)
        rate = self.computed / elapsed
        left = self.total - self.done
        eta = f"ETA {left / rate:.0f} s" if rate > 0 and left > 0 else "ETA -"
        kept = f", {self.kept} kept from before" if self.kept else ""
        print(f"predict: {self.done}/{self.total} files{kept}, {rate:.2f} files/s, {eta}",
              file=self.stream, flush=True)


# ---- the command -----------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m affect_tf.predict", description=__doc__.split("\n\n")[0],
        epilog="Example: python -m affect_tf.predict --model=runs/demo/export photos/ "
               "--output=photos.jsonl --html=photos_gallery --figures=4")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="image files, folders (recursive) or glob patterns")
    parser.add_argument("--model", required=True,
                        help="an export directory (--mode=export) or a finished run's workdir")
    parser.add_argument("--output", default="-",
                        help="JSON Lines file (CSV when it ends in .csv); '-' (default): stdout. "
                             "An existing output of the same model is resumed")
    parser.add_argument("--batch_size", type=int, default=predictor_lib.DEFAULT_BATCH_SIZE,
                        help="images per model call (bounds memory)")
    parser.add_argument("--html", default="", help="write a static gallery into this folder")
    parser.add_argument("--figures", type=int, default=0,
                        help="Fig. 9-like PNGs of the first N readable photos")
    parser.add_argument("--figures_dir", default="",
                        help="where the figures go (default: HTML/figures with --html, else "
                             "<output>_figures, or predict_figures for stdout)")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch_size must be >= 1. Received: {args.batch_size}")
    if args.figures < 0:
        parser.error(f"--figures must be >= 0. Received: {args.figures}")
    return args


def figures_dir(args: argparse.Namespace) -> pathlib.Path:
    """Where ``--figures`` go (``--figures_dir``'s help)."""
    if args.figures_dir:
        return pathlib.Path(args.figures_dir)
    if args.html:
        return pathlib.Path(args.html) / "figures"
    if args.output not in ("", "-"):
        output = pathlib.Path(args.output)
        return output.with_name(f"{output.stem}_figures")
    return pathlib.Path("predict_figures")


def load_predictor(model: str, batch_size: int) -> predictor_lib.Predictor:
    """The predictor of ``--model``, TensorFlow's native start-up lines kept off stderr."""
    with startup.without_native_startup_noise(os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "3"):
        import tensorflow  # noqa: F401, PLC0415  (loads here, its noise filtered)
    return predictor_lib.Predictor.load(model, batch_size=batch_size)


def predict_files(args: argparse.Namespace, predictor: predictor_lib.Predictor,
                  stderr: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Predicts every file of ``args.paths`` into ``args.output`` (module docstring).

    Returns:
        The exit status: 0.

    Raises:
        OutputError: ``--output`` cannot be written or resumed.
    """
    stderr = stderr or sys.stderr
    start = time.monotonic()
    output = Output(args.output, predictor.model_id, keep_lines=bool(args.html), stdout=stdout)
    if output.finished or output.dropped_partial:
        print(f"predict: resuming {output.name}: {len(output.finished)} files already done"
              f"{', a partial last line dropped' if output.dropped_partial else ''}",
              file=stderr)
    gallery = (gallery_lib.Gallery(args.html, model=predictor.description)
               if args.html else None)
    figure_dir = figures_dir(args) if args.figures else None
    exclude = [path for path in (output.path, args.html, figure_dir) if path]

    def warn(message: str) -> None:
        print(f"predict: warning: {message}", file=stderr)

    total = sum(1 for _ in iter_inputs(args.paths, exclude, warn))
    print(f"predict: {total} files, model {predictor.description}", file=stderr)
    progress = Progress(total, stderr)
    counts = {"positive": 0, "negative": 0}
    unreadable: list[tuple[str, str]] = []
    readable_before = 0  # Readable files before the current one (for --figures).
    position = 0
    figures_written = 0
    try:
        for group in predictor_lib.chunks(iter_inputs(args.paths, exclude), args.batch_size):
            positions = range(position + 1, position + 1 + len(group))
            position += len(group)
            pending = [item.name not in output.finished for item in group]
            figure_paths = [None] * len(group)
            if not any(pending):  # Every line is there: skipped, unless a figure is missing.
                lines = [output.finished[item.name] for item in group]
                decoded = [None] * len(group)
                figure_paths = _figure_paths([line["error"] is None for line in lines],
                                             positions, group, figure_dir, args.figures,
                                             readable_before)
            if any(pending) or any(path is not None and not path.exists()
                                   for path in figure_paths):
                decoded = [predictor_lib.Decoded(item.name, None, item.error)
                           if item.error is not None
                           else predictor_lib.decode_file(item.path, item.name)
                           for item in group]
                figure_paths = _figure_paths([item.error is None for item in decoded],
                                             positions, group, figure_dir, args.figures,
                                             readable_before)
                records = predictor.predict_decoded(
                    decoded, candidates=figure_dir is not None and predictor.has_candidates)
                lines = []
                for index, (item, record) in enumerate(zip(group, records)):
                    line = line_of(record, item.name, predictor.model_id)
                    figure = figure_paths[index]
                    if figure is not None and (pending[index] or not figure.exists()):
                        gallery_lib.write_figure(record, decoded[index].image, figure)
                        figures_written += 1
                    if pending[index]:
                        output.write(line)
                    else:  # The line already written stays what this file is counted as.
                        line = output.finished[item.name]
                    lines.append(line)
                output.sync()
            for index, (item, line) in enumerate(zip(group, lines)):
                if line["error"] is not None:
                    unreadable.append((item.name, line["error"]))
                else:
                    readable_before += 1
                    counts[line["label"]] += 1
                if gallery is not None:
                    gallery.add(line, image=decoded[index].image if decoded[index] else None,
                                path=item.path, figure=figure_paths[index])
            progress.update(computed=sum(pending), kept=len(group) - sum(pending))
    except KeyboardInterrupt:
        output.close()
        print(f"predict: interrupted after {progress.done} of {total} files; run the same "
              "command again to resume.", file=stderr)
        return 130
    output.close()
    progress.update(force=True)
    index = gallery.close() if gallery is not None else None
    _summary(stderr, total, progress, counts, unreadable, output, index, figure_dir,
             figures_written, time.monotonic() - start)
    return 0


def _figure_paths(readable: Sequence[bool], positions: Iterable[int],
                  group: Sequence[InputFile], figure_dir: pathlib.Path | None, count: int,
                  readable_before: int) -> list[pathlib.Path | None]:
    """The Fig. 9 path of each file of a batch that gets one (the first ``count`` readable
    files of the input; ``readable_before`` of them came in earlier batches), else None."""
    paths = []
    for item, position, good in zip(group, positions, readable):
        if figure_dir is None or not good or readable_before >= count:
            paths.append(None)
            continue
        readable_before += 1
        paths.append(figure_dir / f"{position:06d}-{gallery_lib.safe_stem(item.name)}.png")
    return paths


def _summary(stream: TextIO, total: int, progress: Progress, counts: dict,
             unreadable: list[tuple[str, str]], output: Output, index, figure_dir,
             figures_written: int, seconds: float) -> None:
    labelled = counts["positive"] + counts["negative"]
    kept = f", {progress.kept} kept from {output.name}" if progress.kept else ""
    print(f"predict: {total} files in {seconds:.1f} s: {labelled} labelled ({counts['positive']} "
          f"positive, {counts['negative']} negative), {len(unreadable)} unreadable; "
          f"{progress.computed} computed now{kept}", file=stream)
    if unreadable:
        print("predict: unreadable files:", file=stream)
        for name, reason in unreadable:
            print(f"  {name}: {reason}", file=stream)
    where = [f"lines: {output.name}"]
    if index is not None:
        where.append(f"gallery: {index}")
    if figure_dir is not None:
        where.append(f"figures: {figures_written} new in {figure_dir}")
    print(f"predict: {'; '.join(where)}", file=stream)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def main(argv: Sequence[str] | None = None,
         predictor: predictor_lib.Predictor | None = None) -> int:
    """The command (module docstring); ``predictor``: one already loaded (tests)."""
    args = parse_args(argv)
    try:
        if args.output not in ("", "-") and pathlib.Path(args.output).is_dir():
            raise OutputError(f"--output {args.output}: a folder; pass a file name (.jsonl, or "
                              ".csv for CSV).")
        if predictor is None:
            try:
                predictor = load_predictor(args.model, args.batch_size)
            except OSError as error:
                raise predictor_lib.ModelError(
                    f"--model {args.model}: cannot be read ({error}).") from error
        else:
            predictor.batch_size = args.batch_size
        return predict_files(args, predictor)
    except errors.RunError as error:
        print(f"predict: error: {_one_line(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
