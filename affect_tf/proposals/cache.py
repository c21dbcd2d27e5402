"""On-disk cache of the candidate regions of a dataset, keyed by the ``image/filename`` feature.

Layout of one cache directory (one per dataset x proposal settings, ARCHITECTURE.md):

* ``meta.json``: ``{"format_version", "fingerprint", "config"}``, the full :class:`ProposalConfig`
  the proposals were computed with. A directory is never reused with other settings. An
  unreadable ``meta.json`` in a directory whose name carries these settings' fingerprint is moved
  to ``damaged/`` and written again; the chunks are kept (each is verified when read).
* ``chunk-00000.npz``, ``chunk-00001.npz``, ...: each written atomically (a temporary name in the
  same directory, then ``os.replace``), so a killed run leaves whole chunks only. Every read
  validates a chunk whole: each zip member's CRC-32 (numpy checks it), the arrays' shapes, dtypes
  and ranges. A chunk that fails (truncated by a copy, a flipped bit, disk full) is never read as
  "no regions": the proposal stage moves it to ``damaged/`` and computes its images again
  (:meth:`ProposalCache.done_filenames` with ``repair=True``), and :meth:`ProposalCache.load`
  stops with an error naming the file and the fix. Arrays of a chunk of n images, m =
  ``num_candidates``:

  - ``filenames`` [n] str: the ``image/filename`` keys (content-stable, unlike ``tfds_id``);
  - ``boxes`` float32 [n, m, 4]: normalized ``[y1, x1, y2, x2]``, rows past ``num_valid`` zero;
  - ``objectness`` float32 [n, m]: EdgeBoxes scores, 0 past ``num_valid``;
  - ``num_valid`` int32 [n]: k <= m boxes of each image.

* ``hed_precision.json`` (HED edges only): ``{"hed_precision", "resolved"}``, what the setting
  resolved to in the run that computed the proposals (``auto`` depends on the machine:
  :meth:`ProposalCache.claim_hed_precision`), so a resumed run never adds another network's
  proposals to them.

One process writes to a cache directory at a time (the proposal stage's parent process).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import zipfile
import zlib
from typing import Iterable

import numpy as np

from affect_tf import io as io_lib
from affect_tf.errors import RunError
from affect_tf.config import ProposalConfig, fingerprint
from affect_tf.proposals import selection
from affect_tf.proposals.pipeline import Proposals

FORMAT_VERSION = 1
META_FILENAME = "meta.json"
HED_PRECISION_FILENAME = "hed_precision.json"
DAMAGED_DIR = "damaged"
_CHUNK_PATTERN = re.compile(r"^chunk-(\d{5,})\.npz$")
_CHUNK_KEYS = ("filenames", "boxes", "objectness", "num_valid")

logger = logging.getLogger(__name__)


# Settings that change how the proposals are computed, not what they are (the batched HED route
# gives the per-image maps exactly: tests/test_hed_batch.py); they stay out of the fingerprint,
# so changing them never recomputes a cache.
EXECUTION_ONLY_FIELDS = ("hed_batch_size",)

# An edge source's definition, where it changed after caches of it existed: part of the
# fingerprint, so a cache of the older definition is never read as this one's. Gradient edges 2:
# exact integer arithmetic (proposals/gradient_plan.py), the same map in the served graph.
EDGE_DEFINITIONS = {"gradient": 2}
# The same for the sparse normalized cut's solver, where the pool can reach it. Block Lanczos 2:
# blocks of 16 vectors and 13 steps (1 had 64 x 5): another approximate eigen-subspace, so some
# other candidates on the paper's whole pool.
SPARSE_SOLVER_DEFINITIONS = {"block": 2}


def proposal_fingerprint(config: ProposalConfig) -> str:
    """The fingerprint of every setting of ``config`` that can change the proposals.

    ``sparse_solver`` counts only where a sparse affinity can be built (``affinity_format``
    ``sparse``, or ``auto`` with ``max_boxes`` at or above the size it switches at): with the
    500-box default it cannot change a candidate, and leaving it out keeps the fingerprints (and
    the caches) of runs made before it existed.
    """
    return fingerprint({"__type__": type(config).__name__, **fingerprinted_settings(config)})


def fingerprinted_settings(config: ProposalConfig) -> dict:
    """The settings of ``config`` that :func:`proposal_fingerprint` covers, by name."""
    fields = {key: value for key, value in dataclasses.asdict(config).items()
              if key not in EXECUTION_ONLY_FIELDS}
    if not _reaches_sparse_solver(config):
        del fields["sparse_solver"]
    return {**fields, **_definitions(config)}


def _reaches_sparse_solver(config: ProposalConfig) -> bool:
    """Whether a pool of ``config.max_boxes`` boxes can get a sparse affinity, hence the solver."""
    return selection.resolve_affinity_format(config.affinity_format, config.max_boxes,
                                             config.selection_precision) == "sparse"


def _definitions(config: ProposalConfig) -> dict:
    """The definition versions that ``config`` reaches: ``{"edge_definition": version}`` for an
    edge source in :data:`EDGE_DEFINITIONS`, ``{"sparse_solver_definition": version}`` for a
    reachable solver in :data:`SPARSE_SOLVER_DEFINITIONS`; ``{}`` for neither."""
    definitions = {}
    if config.edge_source in EDGE_DEFINITIONS:
        definitions["edge_definition"] = EDGE_DEFINITIONS[config.edge_source]
    if _reaches_sparse_solver(config) and config.sparse_solver in SPARSE_SOLVER_DEFINITIONS:
        definitions["sparse_solver_definition"] = SPARSE_SOLVER_DEFINITIONS[config.sparse_solver]
    return definitions


class ProposalCacheError(RunError, ValueError):
    """A cache directory does not match the requested settings, or its metadata is unreadable,
    or it lacks (or holds damaged) proposals that a stage needs."""


class UnreadableMetaError(ProposalCacheError):
    """``meta.json`` is missing its fields or not JSON (a cache named for its settings rebuilds
    it; any other directory cannot be vouched for)."""


class DamagedChunkError(ProposalCacheError):
    """A chunk file does not load or holds malformed arrays."""


@dataclasses.dataclass(frozen=True, eq=False)
class ProposalArrays:
    """The candidate regions of many images, padded to m per image.

    Attributes:
        filenames: [N] str, sorted; the ``image/filename`` keys.
        boxes: float32 [N, m, 4] normalized ``[y1, x1, y2, x2]``; rows past ``num_valid`` are 0.
        objectness: float32 [N, m]; 0 past ``num_valid``.
        num_valid: int32 [N], the number of real boxes of each image (0 for an undecodable or
            flat image).
    """

    filenames: np.ndarray
    boxes: np.ndarray
    objectness: np.ndarray
    num_valid: np.ndarray

    def __len__(self) -> int:
        return int(self.filenames.shape[0])

    @property
    def num_candidates(self) -> int:
        """m, the padded number of boxes per image."""
        return int(self.boxes.shape[1])

    def proposals(self, row: int) -> Proposals:
        """The unpadded :class:`Proposals` of one row."""
        k = int(self.num_valid[row])
        return Proposals(self.boxes[row, :k].copy(), self.objectness[row, :k].copy())

    def content_id(self) -> str:
        """A hash of every array: what a downstream stage's fingerprint records of the cache."""
        digest = hashlib.sha256()
        digest.update("\n".join(str(name) for name in self.filenames).encode("utf-8"))
        for array in (self.boxes, self.objectness, self.num_valid):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]


def cache_dir_for(root: str | os.PathLike, dataset_name: str, config: ProposalConfig) -> str:
    """The cache directory of a dataset and proposal settings.

    ``<root>/<dataset name, '/' -> '_'>-<edge_source>-<affinity>-<fingerprint(config)>``; the
    readable parts are for people, the fingerprint (every field of ``config``) keeps settings apart.

    Args:
        root: the directory holding all proposal caches (e.g. ``<workdir>/proposals``).
        dataset_name: TFDS name, with its config (``twitter1/five_agree``).
        config: the proposal settings.

    Returns:
        The directory path (not created).
    """
    if not dataset_name:
        raise ValueError("dataset_name must be a TFDS dataset name. Received: dataset_name=''")
    name = dataset_name.replace("/", "_").replace(os.sep, "_")
    leaf = f"{name}-{config.edge_source}-{config.affinity}-{proposal_fingerprint(config)}"
    return os.path.join(os.fspath(root), leaf)


class ProposalCache:
    """The proposal cache of one dataset and one :class:`ProposalConfig` (module docstring).

    Creating it creates the directory and writes ``meta.json``; opening an existing directory
    checks that its ``meta.json`` records the same settings.
    """

    def __init__(self, directory: str | os.PathLike, config: ProposalConfig):
        """Args:
            directory: the cache directory (see :func:`cache_dir_for`).
            config: the settings the proposals are (to be) computed with.

        Raises:
            ConfigError: ``config`` is invalid.
            ProposalCacheError: ``meta.json`` records other settings or another format version, or
                cannot be read.
        """
        config.validate()
        self.directory = os.fspath(directory)
        self.config = config
        self.fingerprint = proposal_fingerprint(config)
        os.makedirs(self.directory, exist_ok=True)
        meta_path = os.path.join(self.directory, META_FILENAME)
        if os.path.exists(meta_path):
            try:
                self._check_meta(meta_path)
            except UnreadableMetaError:
                if not self._named_for_these_settings():
                    raise
                self._rebuild_meta(meta_path)
        else:
            self._write_meta(meta_path)

    def _write_meta(self, meta_path: str) -> None:
        io_lib.atomic_write_json(meta_path, {
            "format_version": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "config": {**dataclasses.asdict(self.config), **_definitions(self.config)},
        })

    def _named_for_these_settings(self) -> bool:
        """Whether the directory's name carries these settings' fingerprint (:func:`cache_dir_for`
        names every cache so): then it was created for exactly these settings."""
        return os.path.basename(os.path.normpath(self.directory)).endswith(f"-{self.fingerprint}")

    def _rebuild_meta(self, meta_path: str) -> None:
        """Replaces a damaged ``meta.json`` of a directory named for these settings, keeping the
        chunks: each is validated whole when read, so the good ones are used, a damaged one is
        set aside as always."""
        os.makedirs(os.path.join(self.directory, DAMAGED_DIR), exist_ok=True)
        target = os.path.join(self.directory, DAMAGED_DIR, META_FILENAME)
        shutil.move(meta_path, target)
        self._write_meta(meta_path)
        logger.warning(
            "The proposal cache metadata %s was unreadable (moved to %s); rebuilt it from the "
            "directory's settings fingerprint, keeping its %d chunks (each is verified when "
            "read).", meta_path, target, len(self.chunk_paths()))

    @property
    def num_candidates(self) -> int:
        """m, the padded number of boxes per image."""
        return self.config.num_candidates

    def _check_meta(self, meta_path: str) -> None:
        try:
            with open(meta_path, "r", encoding="utf-8") as handle:
                meta = json.load(handle)
            recorded = dict(meta["config"])
            version = meta["format_version"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UnreadableMetaError(
                f"Cannot read the proposal cache metadata {meta_path} ({error}); expected JSON "
                "with format_version, fingerprint and config. The directory's name does not "
                "carry these settings' fingerprint, so the chunks cannot be vouched for: open "
                "the cache with the directory cache_dir_for() names, or delete this one to "
                f"recompute. Received: {meta_path}") from error
        if version != FORMAT_VERSION:
            raise ProposalCacheError(
                f"Proposal cache {self.directory} has format version {version}, this code writes "
                f"{FORMAT_VERSION}; delete it to recompute. Received: format_version={version}")
        # Settings that cannot change the proposals (execution-only ones, a solver the settings
        # never reach) may differ or be missing in an older cache's record.
        expected = fingerprinted_settings(self.config)
        recorded = {key: value for key, value in recorded.items()
                    if key in expected or key not in dataclasses.asdict(self.config)}
        if recorded != expected:
            differences = ", ".join(
                f"{key}: cache {recorded.get(key, '<missing>')!r} vs requested "
                f"{expected.get(key, '<missing>')!r}"
                for key in sorted(set(recorded) | set(expected))
                if recorded.get(key, "<missing>") != expected.get(key, "<missing>"))
            raise ProposalCacheError(
                f"Proposal cache {self.directory} was computed with other proposal settings; use "
                "the directory cache_dir_for() names for these settings, or delete it. "
                f"Received: {differences}")

    def chunk_paths(self) -> list[str]:
        """The chunk files, in write order."""
        chunks = []
        for name in os.listdir(self.directory):
            match = _CHUNK_PATTERN.match(name)
            if match:
                chunks.append((int(match.group(1)), os.path.join(self.directory, name)))
        return [path for _, path in sorted(chunks)]

    def _read_chunk(self, path: str) -> dict[str, np.ndarray]:
        """A chunk's arrays, validated whole.

        Raises:
            DamagedChunkError: the file does not load (a truncated zip fails on opening: its
                directory is at the end; a flipped bit fails numpy's CRC-32 check), or an array
                has the wrong shape, dtype or values.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in _CHUNK_KEYS}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as error:
            raise DamagedChunkError(f"{path}: unreadable proposal cache chunk ({error})") from error
        problem = _chunk_problem(arrays, self.num_candidates)
        if problem:
            raise DamagedChunkError(f"{path}: malformed proposal cache chunk ({problem})")
        return arrays

    def _quarantine(self, path: str) -> None:
        target_dir = os.path.join(self.directory, DAMAGED_DIR)
        os.makedirs(target_dir, exist_ok=True)
        target = os.path.join(target_dir, os.path.basename(path))
        shutil.move(path, target)
        logger.warning("Moved the damaged proposal chunk %s to %s; its images will be computed "
                       "again.", path, target)

    def _verified_chunks(self, repair: bool) -> Iterable[dict[str, np.ndarray]]:
        """Every chunk's arrays; a damaged chunk is moved aside (``repair``) or raises."""
        for path in self.chunk_paths():
            try:
                yield self._read_chunk(path)
            except DamagedChunkError as error:
                if not repair:
                    raise DamagedChunkError(
                        f"{error}. Run the proposal stage (--mode=proposals, or --mode=all), "
                        "which moves the damaged chunk aside and computes its images again."
                    ) from error
                self._quarantine(path)

    def claim_hed_precision(self, resolved: str) -> None:
        """Records what ``hed_precision`` resolved to for the proposals of this cache, or checks
        that it resolves alike again.

        ``auto`` resolves per process (a GPU; the CPU's bfloat16 instructions; TensorFlow's
        oneDNN), and the cache is keyed by the setting: a run resumed where it resolves otherwise
        would add another network's proposals to the cache. The first run records it; chunks
        from before the record existed cannot be checked (logged).

        Args:
            resolved: what this process computes in (``edges.hed_precision_here``).

        Raises:
            ProposalCacheError: the record names another precision (the message says how to go
                on), or it cannot be read.
        """
        path = os.path.join(self.directory, HED_PRECISION_FILENAME)
        if not os.path.exists(path):
            if self.chunk_paths():
                logger.warning(
                    "The proposal cache %s holds chunks from before it recorded HED's precision; "
                    "recording %r (hed_precision=%r) for this run, which cannot check the older "
                    "chunks.", self.directory, resolved, self.config.hed_precision)
            io_lib.atomic_write_json(path, {"hed_precision": self.config.hed_precision,
                                            "resolved": resolved})
            return
        try:
            with open(path, "r", encoding="utf-8") as handle:
                recorded = json.load(handle)["resolved"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ProposalCacheError(
                f"Cannot read {path} ({error}); expected JSON with hed_precision and resolved: "
                "what HED computed the cached proposals in. Delete the cache directory to "
                f"compute them again. Received: {path}") from error
        if recorded != resolved:
            raise ProposalCacheError(
                f"The proposals in {self.directory} were computed with HED in {recorded}; "
                f"hed_precision={self.config.hed_precision!r} resolves to {resolved!r} in this "
                "process (auto: bfloat16 on a GPU, or on a CPU with bfloat16 instructions where "
                "TensorFlow runs oneDNN; float32 elsewhere). Resuming would mix two networks' "
                "proposals in one cache. Run where it resolves to "
                f"{recorded!r} (e.g. the machine or TF_ENABLE_ONEDNN_OPTS of the first run), or "
                "set --hed_precision explicitly, which starts another cache. "
                f"Received: recorded {recorded!r}, resolved {resolved!r}")

    def done_filenames(self, repair: bool = True) -> set[str]:
        """The filenames whose proposals are stored in chunks that pass validation.

        Args:
            repair: move damaged chunks to ``damaged/`` (their images then count as not done);
                False raises :class:`DamagedChunkError` instead.
        """
        done: set[str] = set()
        for arrays in self._verified_chunks(repair):
            done.update(str(name) for name in arrays["filenames"])
        return done

    def append(self, records: Iterable[tuple[str, Proposals]],
               chunk_id: int | None = None) -> str | None:
        """Writes one chunk holding the given images' proposals.

        Args:
            records: ``(filename, proposals)`` pairs; each ``proposals`` has k <= m boxes
                (normalized ``[y1, x1, y2, x2]``) and k objectness scores.
            chunk_id: the chunk's number. None (one writer) takes the next free number; parallel
                writers (Beam workers) pass ids that cannot collide.

        Returns:
            The chunk's path, or None when ``records`` is empty (nothing is written).

        Raises:
            ValueError: a record with more than m boxes or malformed arrays.
        """
        records = list(records)
        if not records:
            return None
        m = self.num_candidates
        n = len(records)
        filenames = np.asarray([str(name) for name, _ in records], dtype=np.str_)
        boxes = np.zeros((n, m, 4), np.float32)
        objectness = np.zeros((n, m), np.float32)
        num_valid = np.zeros((n,), np.int32)
        for row, (name, proposals) in enumerate(records):
            record_boxes = np.asarray(proposals.boxes, dtype=np.float32)
            record_objectness = np.asarray(proposals.objectness, dtype=np.float32)
            k = record_boxes.shape[0] if record_boxes.ndim == 2 else -1
            if not (0 <= k <= m and record_boxes.shape == (k, 4)
                    and record_objectness.shape == (k,)):
                raise ValueError(
                    f"Each record needs boxes [k, 4] and objectness [k] with k <= m = {m}. "
                    f"Received: {name}: boxes {record_boxes.shape}, "
                    f"objectness {record_objectness.shape}")
            boxes[row, :k] = record_boxes
            objectness[row, :k] = record_objectness
            num_valid[row] = k
        if chunk_id is None:
            paths = self.chunk_paths()
            last = _CHUNK_PATTERN.match(os.path.basename(paths[-1])).group(1) if paths else None
            index = int(last) + 1 if last is not None else 0
        else:
            index = int(chunk_id)
        path = os.path.join(self.directory, f"chunk-{index:05d}.npz")
        io_lib.atomic_save_npz(path, compressed=True, filenames=filenames, boxes=boxes,
                               objectness=objectness, num_valid=num_valid)
        return path

    def load(self, filenames: Iterable[str] | None = None) -> ProposalArrays:
        """Stored proposals merged over the chunks, sorted by filename; never partial.

        A filename stored in several chunks takes its last write.

        Args:
            filenames: the images a stage needs (None: every stored image). Each must be stored.

        Returns:
            :class:`ProposalArrays` of the requested (or all stored) filenames.

        Raises:
            DamagedChunkError: a chunk is damaged (the message names it and the fix).
            ProposalCacheError: a requested filename has no stored proposals.
        """
        m = self.num_candidates
        latest: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
        for arrays in self._verified_chunks(repair=False):
            for row, name in enumerate(arrays["filenames"]):
                latest[str(name)] = (arrays["boxes"][row], arrays["objectness"][row],
                                     int(arrays["num_valid"][row]))
        if filenames is None:
            names = sorted(latest)
        else:
            names = sorted(set(filenames))
            missing = [name for name in names if name not in latest]
            if missing:
                raise ProposalCacheError(
                    f"{len(missing)} of the {len(names)} images this stage needs have no "
                    f"proposals in {self.directory} (e.g. {missing[:3]}). Run the proposal "
                    "stage first (--mode=proposals, or --mode=all). "
                    f"Received: {len(latest)} images in the cache")
        if not names:
            return ProposalArrays(np.zeros((0,), np.str_), np.zeros((0, m, 4), np.float32),
                                  np.zeros((0, m), np.float32), np.zeros((0,), np.int32))
        return ProposalArrays(
            filenames=np.asarray(names, dtype=np.str_),
            boxes=np.stack([latest[name][0] for name in names]).astype(np.float32),
            objectness=np.stack([latest[name][1] for name in names]).astype(np.float32),
            num_valid=np.asarray([latest[name][2] for name in names], dtype=np.int32))

    def __repr__(self) -> str:
        return f"ProposalCache({self.directory!r}, fingerprint={self.fingerprint!r})"


def check_cache_matches(cache: ProposalCache, config: ProposalConfig) -> None:
    """Raises ValueError unless ``cache`` was opened with ``config`` (a stage writes with it)."""
    if cache.config != config:
        raise ValueError(
            "The cache was opened with other proposal settings than the stage runs with. "
            f"Received: cache fingerprint {cache.fingerprint}, config {config}")


def _chunk_problem(arrays: dict[str, np.ndarray], m: int) -> str:
    """What is wrong with a chunk's arrays (empty string: nothing)."""
    filenames, boxes = arrays["filenames"], arrays["boxes"]
    objectness, num_valid = arrays["objectness"], arrays["num_valid"]
    n = filenames.shape[0] if filenames.ndim == 1 else -1
    expected = {"filenames": (n,), "boxes": (n, m, 4), "objectness": (n, m), "num_valid": (n,)}
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            return f"{key} has shape {arrays[key].shape}, expected {shape} (m = {m})"
    if filenames.dtype.kind != "U" or len(set(filenames.tolist())) != n:
        return "filenames must be distinct strings"
    if not (np.issubdtype(boxes.dtype, np.floating) and np.issubdtype(objectness.dtype, np.floating)
            and np.issubdtype(num_valid.dtype, np.integer)):
        return (f"dtypes boxes {boxes.dtype}, objectness {objectness.dtype}, num_valid "
                f"{num_valid.dtype}; expected float, float, int")
    if np.any((num_valid < 0) | (num_valid > m)):
        return f"num_valid outside [0, {m}]"
    if not (np.all(np.isfinite(boxes)) and np.all(np.isfinite(objectness))):
        return "non-finite boxes or objectness"
    if np.any((boxes < 0.0) | (boxes > 1.0)):
        return "boxes outside [0, 1]"
    return ""
