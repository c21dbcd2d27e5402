"""Sentiment of any photos: a :class:`Predictor` from an export or a finished run, one record each.

    from affect_tf.predictor import Predictor
    predictor = Predictor.load("runs/demo/export")       # or the run itself: "runs/demo"
    for record in predictor.predict(["photo.jpg", open("b.png", "rb").read(), array]):
        print(record["label"], record["probabilities"], record["regions"][:1])

Two kinds of model, one record format:

* an **export directory** (``--mode=export``): the SavedModel's ``serving_default``, regions
  proposed in the graph (:mod:`affect_tf.export`). Given the export root, the highest numeric
  version folder is used. Needs nothing but the folder.
* a **finished run's workdir** (``config.json``; ``<workdir>/fold-<N>`` for one fold of a k-fold
  run): the evaluation's own path, the paper's: OpenCV proposals of :mod:`affect_tf.proposals`
  with the run's settings, the run's verified classifier and
  :func:`affect_tf.evaluate.make_predict_fn` (whole image + every candidate through
  :mod:`affect_tf.regions`), :func:`affect_tf.evaluate.select` and the run's fitted fusion. The
  run's manifests are verified first, which reads its prepared dataset (the fingerprints name
  which classifier and fusion belong to the run), so the dataset must still be in ``data_dir``.

Every input is first decoded in Python by the project's decoder
(:func:`affect_tf.io.decode_image_bytes`: by content, whatever the name says; grayscale, CMYK,
palette and transparent images become RGB), so an unreadable input (not an image, truncated,
0 bytes, an unreadable file) gets a record with an ``error`` and no prediction while the rest of
the batch is predicted; nothing it refuses reaches TensorFlow. The CNN then sees the pixels
training sees of the same file (:func:`trained_pixels`): a dataset builder keeps a 3-component
JPEG as it is, which training decodes with TensorFlow's decoder (libjpeg's fast integer IDCT, a
few levels from Pillow's accurate one), and stores any other file as the Python decoder's pixels;
:mod:`affect_tf.data.served_decode` computes both from the original bytes, as the SavedModel
does. A SavedModel is sent the bytes themselves; a file its graph does not decode (TIFF, WebP, a
GIF with a transparent colour...) is sent again as the Python decoder's pixels (lossless PNG),
which is what training would see of it; in-memory arrays are sent that way from the start.
A run's proposals come from the Python decoder's pixels, as its proposal stage computed them.

A record (a dict; the JSON Lines of :mod:`affect_tf.predict` are these, plus ``file`` and
``model``):

* ``source``: the file path, or ``<bytes N>`` / ``<array N>`` (N: the input's position).
* ``label``: ``negative`` / ``positive``; ``label_index``: 0 / 1 (class 0 negative, 1 positive).
* ``probabilities``: ``{"negative": p0, "positive": p1}``, the fused prediction (max / sum
  pooling: the pooled vector normalized; concatenation + SVM: ``sigmoid`` of the SVM's margin for
  positive, as the export, not calibrated).
* ``whole_image_probabilities``: the fine-tuned CNN on the whole image alone.
* ``image_size``: ``[height, width]`` in pixels.
* ``regions``: the top-K regions by the run's ``--selection`` (AR by default), best first, only
  real regions (an image with fewer than K candidates has fewer): ``box``, ``ar``,
  ``objectness`` (normalized per image, as Eq. 5 uses it) and ``senti`` (Eq. 4).
* ``top_objectness``, ``top_senti``: the top-1 region by normalized objectness and by Senti
  (a run's workdir only; None from a SavedModel, whose outputs hold the top K alone).
* ``candidates`` (a run's workdir only, and only with ``candidates=True``): all m candidates, in
  proposal order, with the same keys as a region.
* ``error``: None, or why the input could not be read; the prediction keys are then None and
  ``regions`` is empty: nothing is made up.

**Boxes** are ``[x0, y0, x1, y1]`` in the image's own pixels (the decoded image at its full
size, whatever the model resized it to): x to the right, y down, ``(0, 0)`` the top-left corner of
the top-left pixel and ``(width, height)`` the bottom-right corner of the bottom-right pixel, so
a box covers ``x0 <= x < x1`` and ``y0 <= y < y1`` and the whole image is
``[0, 0, width, height]``. (Inside the project boxes are normalized ``[y1, x1, y2, x2]``; this
is the one conversion out, :func:`pixel_box`.) Floats are rounded: probabilities and scores to 6
decimals, boxes to 2.
"""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import os
import pathlib
import re
import stat
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from affect_tf import errors
from affect_tf import io as io_lib
from affect_tf.config import LABEL_NAMES

# Files larger than this are not read (no photo is; it bounds a batch's memory).
MAX_FILE_BYTES = 1 << 30
# Images per model call of Predictor.predict.
DEFAULT_BATCH_SIZE = 16
PROBABILITY_DECIMALS = 6
BOX_DECIMALS = 2
_FOLD_DIR = re.compile(r"^fold-(\d+)$")
# PIL names the in-memory file in some messages ("<_io.BytesIO object at 0x7f...>"): an address
# that changes from run to run, and says nothing about the file.
_BYTES_IO_REPR = re.compile(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>")


class ModelError(errors.RunError):
    """The model path is not a usable export directory or finished run (one line: what was
    received and what is expected)."""


# ---- inputs ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class Decoded:
    """One input after decoding.

    Attributes:
        source: the file path, or ``<bytes N>`` / ``<array N>``.
        image: uint8 ``[H, W, 3]`` RGB of :func:`affect_tf.io.decode_image_bytes`, or None when
            the input could not be read.
        error: None, or the reason (one line, without the source's name).
        encoded: the input's bytes (None for an array or an unreadable input).
    """

    source: str
    image: np.ndarray | None
    error: str | None = None
    encoded: bytes | None = None


def _one_line(text: str) -> str:
    return " ".join(_BYTES_IO_REPR.sub("", str(text)).split())


def read_file(path: str | os.PathLike) -> bytes:
    """The bytes of a file, refusing what cannot be a photo.

    Raises:
        OSError: the file cannot be read (the message says why: missing, a directory, no
            permission, larger than :data:`MAX_FILE_BYTES`).
    """
    status = os.stat(path)
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, "a directory, not a file", os.fspath(path))
    if not stat.S_ISREG(status.st_mode):  # A FIFO or a device would block or never end.
        raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_FILE_BYTES:
            raise OSError(errno.EFBIG, f"{size} bytes, larger than the {MAX_FILE_BYTES} bytes "
                          "a photo may have; not read", os.fspath(path))
        return handle.read()


def decode_bytes(data: bytes, source: str) -> Decoded:
    """Decodes encoded bytes with :func:`affect_tf.io.decode_image_bytes`; a failure becomes a
    :class:`Decoded` with its reason."""
    data = bytes(data)
    try:
        return Decoded(source, io_lib.decode_image_bytes(data, source), encoded=data)
    except io_lib.ImageDecodeError as error:
        reason = str(error)
        if reason.startswith(f"{source}: "):
            reason = reason[len(source) + 2:]
        return Decoded(source, None, _one_line(reason))


def decode_file(path: str | os.PathLike, source: str | None = None) -> Decoded:
    """Reads and decodes one file; an unreadable or undecodable file gives its reason."""
    source = os.fspath(path) if source is None else source
    try:
        data = read_file(path)
    except OSError as error:
        return Decoded(source, None, _one_line(f"cannot read the file: {error.strerror or error}"))
    return decode_bytes(data, source)


def check_array(image: Any) -> np.ndarray:
    """An in-memory image as the models take it.

    Raises:
        ValueError: not a uint8 array ``[H, W, 3]`` with H, W >= 1 (a caller's mistake, not an
            unreadable file: it is raised, not recorded).
    """
    if (not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3
            or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0):
        described = (f"{type(image).__name__} dtype={image.dtype} shape={image.shape}"
                     if isinstance(image, np.ndarray) else type(image).__name__)
        raise ValueError("An image array must be uint8 RGB [H, W, 3] with H, W >= 1 (decode "
                         f"files with affect_tf.io.decode_image_bytes). Received: {described}")
    return np.ascontiguousarray(image)


def decode_input(item: Any, position: int = 0) -> Decoded:
    """One input of :meth:`Predictor.predict`: bytes, a file path or a uint8 array.

    Args:
        item: encoded bytes (``bytes``, ``bytearray``, ``memoryview``), a path (``str`` or
            ``os.PathLike``), a uint8 ``[H, W, 3]`` RGB array, or a :class:`Decoded`.
        position: the input's position, naming in-memory inputs (``<bytes 3>``).

    Raises:
        ValueError: an array that is not uint8 ``[H, W, 3]``.
        TypeError: anything else.
    """
    if isinstance(item, Decoded):
        return item
    if isinstance(item, (bytes, bytearray, memoryview)):
        return decode_bytes(bytes(item), f"<bytes {position}>")
    if isinstance(item, (str, os.PathLike)):
        return decode_file(item)
    if isinstance(item, np.ndarray):
        return Decoded(f"<array {position}>", check_array(item))
    raise TypeError("An input must be encoded bytes, a file path or a uint8 [H, W, 3] array. "
                    f"Received: {type(item).__name__}")


def _inputs(images: Any) -> Iterable[Any]:
    """``images`` as an iterable of single inputs (one path, bytes or array is one input)."""
    if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview, Decoded)):
        return [images]
    if isinstance(images, np.ndarray):
        return [images] if images.ndim == 3 else list(images)
    return images


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last may be shorter), read lazily."""
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ---- records ---------------------------------------------------------------------------------

def pixel_box(box_yxyx: Sequence[float], height: int, width: int) -> list[float]:
    """A normalized ``[y1, x1, y2, x2]`` box as ``[x0, y0, x1, y1]`` in pixels of an image
    ``height`` x ``width`` (module docstring), clipped to the image, rounded to 2 decimals."""
    y1, x1, y2, x2 = (float(value) for value in box_yxyx)
    return [round(min(max(x1 * width, 0.0), width), BOX_DECIMALS),
            round(min(max(y1 * height, 0.0), height), BOX_DECIMALS),
            round(min(max(x2 * width, 0.0), width), BOX_DECIMALS),
            round(min(max(y2 * height, 0.0), height), BOX_DECIMALS)]


def _score(value) -> float:
    return round(float(value), PROBABILITY_DECIMALS)


def _probabilities(values) -> dict[str, float]:
    return {name: _score(value) for name, value in zip(LABEL_NAMES, values)}


def _region(box_yxyx, height: int, width: int, ar, objectness, senti) -> dict:
    return {"box": pixel_box(box_yxyx, height, width), "ar": _score(ar),
            "objectness": _score(objectness), "senti": _score(senti)}


def error_record(source: str, reason: str) -> dict:
    """The record of an input that could not be read: its reason, no prediction."""
    return {"source": source, "label": None, "label_index": None, "probabilities": None,
            "whole_image_probabilities": None, "image_size": None, "regions": [],
            "top_objectness": None, "top_senti": None, "error": reason}


def _record(source: str, image_size, probabilities, whole, label: int, regions: list[dict],
            top_objectness=None, top_senti=None) -> dict:
    label = int(label)
    return {"source": source, "label": LABEL_NAMES[label], "label_index": label,
            "probabilities": _probabilities(probabilities),
            "whole_image_probabilities": _probabilities(whole),
            "image_size": [int(image_size[0]), int(image_size[1])], "regions": regions,
            "top_objectness": top_objectness, "top_senti": top_senti, "error": None}


# ---- the two kinds of model --------------------------------------------------------------------

def encode_png_fast(image: np.ndarray) -> bytes:
    """Lossless PNG of a uint8 ``[H, W, 3]`` image, at the fastest compression level."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def trained_pixels(item: Decoded) -> np.ndarray:
    """The pixels training sees of a decoded input: uint8 ``[H, W, 3]``.

    Its bytes through :func:`affect_tf.data.served_decode.decode_as_builders` (the builders' and
    training's decoder); the Python decoder's pixels when there are no bytes (an array) or the
    graph decoder refuses them (a builder stores those files as those very pixels).
    """
    if item.encoded is None:
        return item.image
    import tensorflow as tf  # noqa: PLC0415

    try:
        pixels = _graph_decoder()(tf.constant(item.encoded)).numpy()
    except tf.errors.InvalidArgumentError:
        return item.image
    return pixels if pixels.shape == item.image.shape else item.image


_GRAPH_DECODER = None


def _graph_decoder():
    """:func:`~affect_tf.data.served_decode.decode_as_builders` as one traced function."""
    global _GRAPH_DECODER  # pylint: disable=global-statement
    if _GRAPH_DECODER is None:
        import tensorflow as tf  # noqa: PLC0415

        from affect_tf.data import served_decode  # noqa: PLC0415

        _GRAPH_DECODER = tf.function(served_decode.decode_as_builders,
                                     input_signature=[tf.TensorSpec([], tf.string)])
    return _GRAPH_DECODER


def _hash_tree(directory: pathlib.Path) -> str:
    """Content id of every file under ``directory`` (names and bytes)."""
    from affect_tf import artifacts  # noqa: PLC0415

    files = sorted(path for path in directory.rglob("*") if path.is_file())
    return artifacts.content_hash([(str(path.relative_to(directory)), io_lib.sha256_file(path))
                                   for path in files])


class _SavedModelBackend:
    """``serving_default`` of an exported SavedModel (regions proposed in the graph)."""

    kind = "saved_model"
    _OUTPUTS = ("label", "probabilities", "whole_image_probabilities", "region_boxes",
                "region_ar", "region_objectness", "region_senti", "region_valid", "image_ok")

    def __init__(self, directory: pathlib.Path):
        import tensorflow as tf  # noqa: PLC0415

        from affect_tf import export as export_lib  # noqa: PLC0415

        try:
            model = tf.saved_model.load(str(directory))
        except Exception as error:  # pylint: disable=broad-except  (any failure: not a model)
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
            raise ModelError(f"--model {directory}: the SavedModel does not load "
                             f"({_one_line(first)[:300]}).") from error
        signature = model.signatures.get(export_lib.SERVING_SIGNATURE)
        outputs = set(signature.structured_outputs) if signature is not None else set()
        missing = sorted(set(self._OUTPUTS) - outputs)
        if missing:
            raise ModelError(f"--model {directory}: not an affect_tf export (its "
                             f"{export_lib.SERVING_SIGNATURE} signature lacks {missing}); export "
                             "one with --mode=export.")
        self._tf = tf
        self._model = model  # Keeps the signature's variables alive.
        self._serve = signature
        self.directory = directory
        self.model_id = f"savedmodel-{_hash_tree(directory)}"
        self.description = f"SavedModel {directory} (regions proposed in the graph)"

    def _serve_encoded(self, encoded: list[bytes]) -> dict[str, np.ndarray]:
        tensors = self._serve(images=self._tf.constant(encoded, dtype=self._tf.string))
        return {key: np.array(value) for key, value in tensors.items()}  # Writable copies.

    def predict(self, decoded: list[Decoded], candidates: bool) -> list[dict]:
        del candidates  # The SavedModel returns the top K alone.
        # The bytes themselves; the graph decodes them as training does, and a file it refuses
        # fails its own row only, to be sent again as the pixels training would see of it.
        outputs = self._serve_encoded([encode_png_fast(item.image) if item.encoded is None
                                       else item.encoded for item in decoded])
        refused = np.flatnonzero(~outputs["image_ok"])
        if refused.size:
            again = self._serve_encoded([encode_png_fast(decoded[index].image)
                                         for index in refused])
            for key, values in outputs.items():
                values[refused] = again[key]
        records = []
        for index, item in enumerate(decoded):
            height, width = item.image.shape[:2]
            if not outputs["image_ok"][index]:  # Cannot happen for a PNG of decoded pixels.
                records.append(error_record(item.source, "the SavedModel could not decode it"))
                continue
            scale = np.array([height, width, height, width], np.float64)
            regions = [
                _region(outputs["region_boxes"][index, slot] / scale, height, width,
                        outputs["region_ar"][index, slot],
                        outputs["region_objectness"][index, slot],
                        outputs["region_senti"][index, slot])
                for slot in range(outputs["region_valid"].shape[1])
                if outputs["region_valid"][index, slot]]
            records.append(_record(item.source, (height, width), outputs["probabilities"][index],
                                   outputs["whole_image_probabilities"][index],
                                   outputs["label"][index], regions))
        return records


def stored_config(workdir: pathlib.Path):
    """The configuration of the run finished in ``workdir`` (its ``config.json``).

    Settings the stored configuration holds but this version no longer knows are ignored; the
    work directory is the one given (the run may have been moved).
    """
    from affect_tf import config as config_lib  # noqa: PLC0415

    path = workdir / "config.json"
    try:
        stored = json.loads(path.read_text())
        return dataclasses.replace(config_lib.from_stored(stored),
                                   workdir=str(workdir)).validate()
    except (OSError, ValueError, TypeError, AttributeError) as error:
        raise ModelError(f"--model {workdir}: {path} is not a finished run's configuration "
                         f"({_one_line(error)[:300]}).") from error


class _WorkdirBackend:
    """A finished run's own path: OpenCV proposals, its classifier, regions and fusion."""

    kind = "workdir"

    def __init__(self, workdir: pathlib.Path, fold: int | None):
        import tensorflow as tf  # noqa: PLC0415

        from affect_tf import artifacts  # noqa: PLC0415
        from affect_tf import evaluate as evaluate_lib  # noqa: PLC0415
        from affect_tf import fusion as fusion_lib  # noqa: PLC0415
        from affect_tf import train as train_lib  # noqa: PLC0415
        from affect_tf import workspace  # noqa: PLC0415
        from affect_tf.data import transforms  # noqa: PLC0415
        from affect_tf.proposals import edges as edges_lib  # noqa: PLC0415

        root = workdir.parent if fold is not None else workdir
        run = workspace.Run(stored_config(root))
        folds = run.folds()
        if fold is not None:
            if folds is None:
                raise ModelError(f"--model {workdir}: the run in {root} has no folds (protocol "
                                 f"{run.protocol}); pass --model={root}.")
            run = run.for_fold(fold)
        elif folds is not None:
            raise ModelError(f"--model {workdir}: the run has folds {folds} (protocol "
                             f"{run.protocol}), each with its own classifier; pass "
                             f"--model={workdir / f'fold-{folds[0]}'} (or another fold).")
        run.train_manifest()  # Verified (hashes) before use; stops naming the stage to run.
        eval_manifest = run.eval_manifest()
        # The evaluation's region settings, its fitted temperature included.
        config = run.scoring_config()
        self._tf = tf
        self._evaluate = evaluate_lib
        self._fusion = fusion_lib
        self._transforms = transforms
        self.config = config
        self.classifier = train_lib.load_classifier(config.model, str(run.train_dir))
        self.svm = None
        if config.fusion.fusion == "concat":
            self.svm = fusion_lib.SVMFusion.load(
                str(run.eval_dir / f"svm_{config.regions.selection}"))
        self._predict_fn = evaluate_lib.make_predict_fn(self.classifier, config)
        self._edges = edges_lib.make_edge_detector(config.proposals)
        # The evaluation's content id covers the classifier, the proposals it was given and the
        # fusion; the cache folder's name, the proposal settings new images get.
        cache = pathlib.Path(run.proposal_cache().directory).name
        self.model_id = f"workdir-{artifacts.content_hash(eval_manifest.content_id, cache)}"
        self.description = (
            f"run {run.workdir} ({config.proposals.edge_source} edges, OpenCV proposals, "
            f"m = {config.proposals.num_candidates}, K = {config.regions.top_k}, "
            f"{config.regions.selection} + {config.fusion.fusion})")

    def _proposals(self, image: np.ndarray):
        """Boxes ``[m, 4]`` normalized ``[y1, x1, y2, x2]``, objectness ``[m]``, num_valid: the
        proposal stage's per-image step, padded to m as the evaluation's proposal join pads."""
        from affect_tf.proposals import pipeline as proposal_pipeline  # noqa: PLC0415

        m = self.config.proposals.num_candidates
        found = proposal_pipeline.propose(image, self.config.proposals, self._edges)
        count = min(len(found), m)
        boxes = np.zeros((m, 4), np.float32)
        objectness = np.zeros((m,), np.float32)
        boxes[:count] = found.boxes[:count]
        objectness[:count] = found.objectness[:count]
        return boxes, objectness, count

    def predict(self, decoded: list[Decoded], candidates: bool) -> list[dict]:
        tf = self._tf
        size = self.config.evaluation.region_image_size
        proposals = [self._proposals(item.image) for item in decoded]
        views = []
        for item in decoded:
            views.append(self._transforms.eval_transform(tf.constant(trained_pixels(item)), size))
        batch = {
            "image": tf.stack(views),
            "boxes": tf.constant(np.stack([p[0] for p in proposals])),
            "objectness": tf.constant(np.stack([p[1] for p in proposals])),
            "num_valid": tf.constant(np.array([p[2] for p in proposals], np.int32)),
        }
        outputs = self._predict_fn(batch)
        predictions = {"global_probs": outputs["global_probs"].numpy(),
                       "candidate_probs": outputs["candidate_probs"].numpy(),
                       **{key: batch[key].numpy() for key in ("boxes", "objectness", "num_valid")}}
        regions = self.config.regions
        chosen = self._evaluate.select(predictions, regions, regions.selection)
        top_obj = self._evaluate.select(predictions, regions, "obj")
        top_senti = self._evaluate.select(predictions, regions, "senti")
        probabilities, labels = self._fuse(predictions["global_probs"], chosen)
        records = []
        for index, item in enumerate(decoded):
            height, width = item.image.shape[:2]

            def region(slot: int, index=index, height=height, width=width) -> dict:
                return _region(predictions["boxes"][index, slot], height, width,
                               chosen["ar"][index, slot], chosen["objectness_norm"][index, slot],
                               chosen["senti"][index, slot])

            def top(selected: dict, index=index) -> dict | None:
                return (region(int(selected["region_indices"][index, 0]))
                        if selected["region_valid"][index, 0] else None)

            record = _record(
                item.source, (height, width), probabilities[index],
                predictions["global_probs"][index], labels[index],
                [region(int(slot)) for slot, valid in zip(chosen["region_indices"][index],
                                                          chosen["region_valid"][index]) if valid],
                top(top_obj), top(top_senti))
            if candidates:
                record["candidates"] = [region(slot)
                                        for slot in range(int(predictions["num_valid"][index]))]
            records.append(record)
        return records

    def _fuse(self, global_probs: np.ndarray, selected: dict) -> tuple[np.ndarray, np.ndarray]:
        """Fused probabilities ``[B, 2]`` and labels ``[B]``: the labels are
        :func:`affect_tf.evaluate.fuse`'s (the evaluation's), the probabilities as the export
        gives them (module docstring)."""
        fusion = self.config.fusion
        labels = self._evaluate.fuse(fusion.fusion, global_probs, selected, fusion, svm=self.svm)
        if fusion.fusion == "concat":
            features = np.asarray(self._fusion.concat_features(
                global_probs, selected["region_probs"], fusion.svm_features))
            margin = self.svm.decision_function(features)
            positive = 1.0 / (1.0 + np.exp(-np.clip(margin, -500, 500)))
            return np.stack([1.0 - positive, positive], axis=-1), labels
        if fusion.fusion == "max":
            fused = np.asarray(self._fusion.max_pooling(global_probs, selected["region_probs"]),
                               np.float64)
        else:
            fused = np.asarray(self._fusion.sum_pooling(
                global_probs, selected["region_probs"], fusion.beta, selected["region_valid"]),
                np.float64)
        return fused / np.maximum(fused.sum(axis=-1, keepdims=True), 1e-12), labels


def _latest_version(directory: pathlib.Path) -> pathlib.Path | None:
    versions = [path for path in directory.iterdir()
                if path.is_dir() and path.name.isdigit() and (path / "saved_model.pb").is_file()]
    return max(versions, key=lambda path: int(path.name)) if versions else None


def resolve_model(path: str | os.PathLike) -> tuple[str, pathlib.Path, int | None]:
    """What ``path`` holds, without loading anything.

    Returns:
        ``("saved_model", version folder, None)`` for a SavedModel folder or an export root (its
        highest numeric version with a ``saved_model.pb``); ``("workdir", folder, fold)`` for a
        finished run (``config.json``; fold N for ``<workdir>/fold-N``, else None).

    Raises:
        ModelError: none of these; the message names what was received and what is expected.
    """
    directory = pathlib.Path(path).expanduser()
    expected = ("expected an export directory (saved_model.pb, or version folders 1/, 2/ ... "
                "written by --mode=export) or a finished run's workdir (with its config.json)")
    if not directory.exists():
        raise ModelError(f"--model {directory}: no such directory; {expected}.")
    if not directory.is_dir():
        raise ModelError(f"--model {directory}: a file, not a directory; {expected}.")
    if (directory / "saved_model.pb").is_file():
        return "saved_model", directory, None
    version = _latest_version(directory)
    if version is not None:
        return "saved_model", version, None
    if (directory / "config.json").is_file():
        return "workdir", directory, None
    fold = _FOLD_DIR.match(directory.name)
    if fold and (directory.parent / "config.json").is_file():
        return "workdir", directory, int(fold.group(1))
    raise ModelError(f"--model {directory}: neither a SavedModel nor a finished run; {expected}.")


class Predictor:
    """Predicts sentiment and affective regions of any images (module docstring).

    Build it with :meth:`load`.

    Attributes:
        kind: ``saved_model`` or ``workdir``.
        model_id: an id of the model's content (a SavedModel's files; a run's verified
            evaluation and proposal settings): equal ids give equal predictions.
        description: one line naming the model, for logs.
        batch_size: images per model call of :meth:`predict`.
    """

    def __init__(self, backend, batch_size: int = DEFAULT_BATCH_SIZE):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
        self._backend = backend
        self.kind = backend.kind
        self.model_id = backend.model_id
        self.description = backend.description
        self.batch_size = int(batch_size)

    @classmethod
    def load(cls, path: str | os.PathLike, batch_size: int = DEFAULT_BATCH_SIZE) -> "Predictor":
        """Loads an export directory or a finished run (:func:`resolve_model`).

        Raises:
            ModelError: not a usable model (missing, not an export, a SavedModel that does not
                load, a run with folds given at its root).
            errors.RunError: a run whose stages are unfinished or damaged, or whose dataset is
                gone (the message names the stage or file and the fix).
        """
        kind, directory, fold = resolve_model(path)
        if kind == "saved_model":
            return cls(_SavedModelBackend(directory), batch_size)
        return cls(_WorkdirBackend(directory, fold), batch_size)

    @property
    def has_candidates(self) -> bool:
        """Whether records can carry every candidate and the top-1 by objectness and Senti."""
        return self.kind == "workdir"

    def predict(self, images: Any, *, candidates: bool = False) -> list[dict]:
        """One record per input, in input order (module docstring).

        Args:
            images: an iterable of inputs, each encoded bytes, a file path or a uint8
                ``[H, W, 3]`` RGB array (one such input alone is one image; a 4-D uint8 array
                ``[N, H, W, 3]`` is N images). Inputs are decoded ``batch_size`` at a time, so an
                iterator of paths is never held whole.
            candidates: add every candidate to the records (a run's workdir only).

        Returns:
            The records; unreadable inputs have an ``error`` and no prediction.

        Raises:
            ValueError: an array that is not uint8 ``[H, W, 3]``.
            TypeError: an input of another type.
        """
        records = []
        position = 0
        for chunk in chunks(_inputs(images), self.batch_size):
            decoded = []
            for item in chunk:
                decoded.append(decode_input(item, position))
                position += 1
            records += self.predict_decoded(decoded, candidates=candidates)
        return records

    def predict_decoded(self, decoded: Sequence[Decoded], *,
                        candidates: bool = False) -> list[dict]:
        """Records of already decoded inputs, in one model call (the caller bounds the batch).

        Inputs with an ``error`` get their error record and are not sent to the model.
        """
        good = [item for item in decoded if item.error is None]
        predicted = iter(self._backend.predict(good, candidates) if good else [])
        return [next(predicted) if item.error is None else error_record(item.source, item.error)
                for item in decoded]
