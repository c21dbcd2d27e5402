"""What a run leaves on disk, and how it is trusted again: stage manifests, quarantine, the lock.

A stage writes its outputs into its own directory and, last of all, a ``manifest.json`` that
records the stage's fingerprint and the SHA-256 of every output file. A later run skips the stage
only when the manifest exists and every file still has the recorded hash; a manifest whose files
do not match means a damaged output (a truncated copy, a flipped bit, a file deleted by hand),
which is moved aside to ``<workdir>/damaged/`` and recomputed, or, where this run cannot
recompute it, stops the run with a message naming the file and the fix.

The manifest's ``content_id`` (a hash of the fingerprint and the output hashes) is what a
downstream stage puts into its own fingerprint, so a stage whose inputs changed is never skipped
(METHOD.md, "Runs and their files").

One run per work directory at a time: :class:`WorkdirLock`.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import hashlib
import json
import logging
import os
import pathlib
import shutil
import socket
import time
from typing import Any, Iterable

from affect_tf import io as io_lib
from affect_tf.errors import RunError

MANIFEST_FILE = "manifest.json"
DAMAGED_DIR = "damaged"
LOCK_FILE = ".lock"

logger = logging.getLogger(__name__)


class DamagedArtifactError(RunError, RuntimeError):
    """A file the run needs is missing, truncated or altered, and this run cannot recompute it.

    Attributes:
        path: the damaged file (the manifest itself, or one output it lists), when known.
    """

    def __init__(self, message: str, path: os.PathLike | str | None = None):
        super().__init__(message)
        self.path = pathlib.Path(path) if path is not None else None


class WorkdirLockedError(RunError, RuntimeError):
    """Another live run holds the work directory."""


def content_hash(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (used for ids of content, not settings)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A finished stage: its fingerprint, what it read, and the hash of each output file.

    Attributes:
        stage: the stage's name (``train``, ``predict``, ...).
        fingerprint: the stage's settings-and-inputs fingerprint (also its directory's suffix).
        outputs: ``{path relative to the stage directory: sha256 hex}``.
        inputs: ids of the content the stage read (``{"splits": "...", ...}``), for people.
        content_id: hash of fingerprint and outputs; downstream fingerprints include it.
    """

    stage: str
    fingerprint: str
    outputs: dict[str, str]
    inputs: dict[str, Any]
    content_id: str


def write_manifest(directory: os.PathLike | str, stage: str, fingerprint: str,
                   outputs: Iterable[str], inputs: dict[str, Any] | None = None) -> Manifest:
    """Hashes the stage's output files and writes ``manifest.json`` atomically, last.

    Args:
        directory: the stage directory.
        stage: the stage's name.
        fingerprint: the stage's fingerprint.
        outputs: paths of output files relative to ``directory`` (each must exist).
        inputs: ids of what the stage read.

    Returns:
        The written :class:`Manifest`.
    """
    directory = pathlib.Path(directory)
    hashes = {name: io_lib.sha256_file(directory / name) for name in sorted(outputs)}
    manifest = Manifest(stage, fingerprint, hashes, dict(inputs or {}),
                        content_hash(stage, fingerprint, hashes))
    io_lib.atomic_write_json(directory / MANIFEST_FILE, dataclasses.asdict(manifest))
    return manifest


def read_manifest(directory: os.PathLike | str, fingerprint: str) -> Manifest | None:
    """The verified manifest of a finished stage, or None when the stage has not finished.

    Args:
        directory: the stage directory.
        fingerprint: the fingerprint the caller expects.

    Returns:
        The manifest when it exists and every output file has its recorded hash; None when
        there is no manifest (the stage never finished here).

    Raises:
        DamagedArtifactError: the manifest is unreadable, records another fingerprint, or an
            output file is missing or differs from its hash; the message names the file.
    """
    path = pathlib.Path(directory) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        manifest = Manifest(**json.loads(path.read_text()))
        if not isinstance(manifest.outputs, dict) or not all(
                isinstance(value, str) for value in manifest.outputs.values()):
            raise TypeError(f"outputs must map file names to hashes, got {manifest.outputs!r:.80}")
    except (OSError, ValueError, TypeError) as error:
        raise DamagedArtifactError(f"{path}: unreadable stage manifest ({error})",
                                   path) from error
    if manifest.fingerprint != fingerprint:
        raise DamagedArtifactError(
            f"{path}: records fingerprint {manifest.fingerprint}, expected {fingerprint}", path)
    for name, expected in manifest.outputs.items():
        file = pathlib.Path(directory) / name
        if not file.is_file():
            raise DamagedArtifactError(f"{file}: listed in {path} but missing", file)
        if io_lib.sha256_file(file) != expected:
            raise DamagedArtifactError(
                f"{file}: content differs from the hash recorded when it was written "
                "(truncated or altered)", file)
    return manifest


def quarantine(path: os.PathLike | str, workdir: os.PathLike | str) -> pathlib.Path | None:
    """Moves a damaged file or directory to ``<workdir>/damaged/<time>-<name>`` (kept for a look).

    Returns:
        The new location, or None when ``path`` does not exist.
    """
    path = pathlib.Path(path)
    if not path.exists():
        return None
    target_dir = pathlib.Path(workdir) / DAMAGED_DIR
    target_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    target = target_dir / f"{stamp}-{path.name}"
    shutil.move(str(path), str(target))
    logger.warning("Moved the damaged %s to %s", path, target)
    return target


def verified_stage(directory: os.PathLike | str, fingerprint: str, workdir: os.PathLike | str,
                   stage: str) -> Manifest | None:
    """The stage's verified manifest; a damaged stage is moved aside and None returned.

    For stages this run can recompute: the caller treats None as "not done" and runs the stage.
    The manifest goes to ``<workdir>/damaged/``, and so does the damaged output it names (kept
    for a look, never overwritten by the recomputation); outputs that still verify stay, and a
    stage that resumes part by part (:func:`verified_part`) reuses them.
    """
    try:
        return read_manifest(directory, fingerprint)
    except DamagedArtifactError as error:
        logger.warning("%s: %s; the stage runs again.", stage, error)
        if error.path is not None and error.path.name != MANIFEST_FILE:
            quarantine(error.path, workdir)
        quarantine(pathlib.Path(directory) / MANIFEST_FILE, workdir)
        return None


# ---- parts of a stage that resumes part by part ---------------------------------------------

def _part_record_path(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(f"{path.name}.sha256.json")


def write_part(path: os.PathLike | str, fingerprint: str, write) -> None:
    """Writes one part of a stage (atomically, through ``write(path)``), then its record.

    The record ``<name>.sha256.json`` holds the stage's fingerprint and the part's hash; only a
    part whose record verifies is reused after a kill (:func:`verified_part`), so a file that a
    kill left without its record, or that changed since, is computed again.

    Args:
        path: the part's file.
        fingerprint: the stage's fingerprint.
        write: a function that writes the file at ``path`` atomically.
    """
    path = pathlib.Path(path)
    write(path)
    io_lib.atomic_write_json(_part_record_path(path), {
        "fingerprint": fingerprint, "sha256": io_lib.sha256_file(path)})


def verified_part(path: os.PathLike | str, fingerprint: str) -> bool:
    """Whether a part :func:`write_part` wrote is whole: its record names this stage's
    fingerprint and the file's current hash. A part without a record is never trusted."""
    path = pathlib.Path(path)
    try:
        record = json.loads(_part_record_path(path).read_text())
        return (record["fingerprint"] == fingerprint and path.is_file()
                and io_lib.sha256_file(path) == record["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _process_start_time(pid: int) -> str | None:
    """The kernel's start time of a process (Linux), to tell a live owner from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process of this host has this pid (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # Alive, owned by someone else.
    return True


class WorkdirLock:
    """An exclusive lock on a work directory: ``<workdir>/.lock`` holding owner pid and host.

    A second run on the same directory stops at once with a message naming the holder. A lock
    left by a run that died (same host, pid no longer alive or reused) is taken over with a
    warning. A lock from another host cannot be checked and is never taken over.
    """

    def __init__(self, workdir: os.PathLike | str):
        self.path = pathlib.Path(workdir) / LOCK_FILE
        self.owner = {"pid": os.getpid(), "host": socket.gethostname(),
                      "started": datetime.datetime.now().isoformat(timespec="seconds"),
                      "process_start": _process_start_time(os.getpid())}
        self.held = False

    def _create(self) -> bool:
        try:
            descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w") as handle:
            json.dump(self.owner, handle)
        return True

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def _is_stale(self, holder: dict) -> bool:
        if holder.get("host") != self.owner["host"]:
            return False
        pid = holder.get("pid")
        if not isinstance(pid, int) or not pid_alive(pid):
            return True
        recorded = holder.get("process_start")
        return recorded is not None and recorded != _process_start_time(pid)

    def acquire(self) -> "WorkdirLock":
        """Takes the lock, or raises :class:`WorkdirLockedError` naming the live holder."""
        for _ in range(3):  # A stale lock removed by a competing run: try again.
            if self._create():
                self.held = True
                return self
            holder = self._holder()
            if not holder:
                time.sleep(0.2)  # The holder may be writing its lock this instant.
                holder = self._holder()
            if not holder and self.path.exists():
                # A lock file being written this instant, or an empty one from a crash mid-write.
                holder = {"pid": None, "host": self.owner["host"]}
            if not self._is_stale(holder):
                raise WorkdirLockedError(
                    f"The work directory {self.path.parent} is in use by another run (pid "
                    f"{holder.get('pid')} on host {holder.get('host')}, since "
                    f"{holder.get('started')}). Wait for it to finish, or pass another "
                    f"--workdir; if that run is dead on another host, delete {self.path}. "
                    f"Received: workdir={str(self.path.parent)!r}")
            logger.warning("Taking over the lock of a run that is no longer alive: %s (%s)",
                           self.path, holder)
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        raise WorkdirLockedError(f"Could not take the lock {self.path}: another run keeps "
                                 "taking it. Received: workdir=" + repr(str(self.path.parent)))

    def release(self) -> None:
        if self.held:
            try:
                if self._holder().get("pid") == self.owner["pid"]:
                    self.path.unlink()
            except OSError as error:
                if error.errno != errno.ENOENT:
                    raise
            self.held = False

    def __enter__(self) -> "WorkdirLock":
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()
