"""The proposal stage: candidate regions for every image of a dataset, resumable and parallel.

It reads ``(image/filename, encoded bytes)`` pairs, skips the filenames already in the cache,
decodes each image by content, runs :func:`~affect_tf.proposals.pipeline.propose`, and appends
a chunk to the :class:`~affect_tf.proposals.cache.ProposalCache` every ``chunk_size`` images, so a
killed run loses at most one chunk and the next run resumes where it stopped.

With ``num_workers > 1`` the images go to a pool of processes started with ``spawn``: the parent
may have TensorFlow loaded, and forking a process after TensorFlow has started its threads is
unsafe. Each worker builds its edge detector once (the HED network, for ``hed``). Results are in
input order and identical to a single-process run: the selection runs its linear algebra on one
thread in both (selection.py), and the OpenCV steps are per-pixel operations whose values do not
depend on the thread count. (HED edges come from TensorFlow's CPU kernels, whose reductions may
differ in the last bits with another thread count.)

A script that calls this with ``num_workers > 1`` must guard its entry point with
``if __name__ == "__main__":``, as ``spawn`` imports the main module in each worker.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import multiprocessing
import os
import time
from typing import Iterable, Iterator


from affect_tf.io import ImageDecodeError, decode_image_bytes
from affect_tf.config import ProposalConfig
from affect_tf.proposals.cache import ProposalCache, check_cache_matches
from affect_tf.proposals.edges import EdgeDetector, make_edge_detector
from affect_tf.proposals.pipeline import Proposals, propose

logger = logging.getLogger(__name__)

# Status of one image.
_OK, _EMPTY, _CORRUPT = "ok", "empty", "corrupt"

# Set in each worker process by _init_worker: the settings and the worker's own edge detector.
_WORKER: dict = {}


def _process_one(filename: str, data: bytes, config: ProposalConfig,
                 edge_detector: EdgeDetector) -> tuple[str, Proposals, str, str]:
    """Decodes and proposes one image.

    Returns:
        ``(filename, proposals, status, message)``; status ``corrupt`` (undecodable bytes: empty
        proposals, message says why), ``empty`` (no box passed) or ``ok``.

    Raises:
        RuntimeError: any other failure, naming the file.
    """
    try:
        image = decode_image_bytes(data, filename)
    except ImageDecodeError as error:
        return filename, Proposals.empty(), _CORRUPT, str(error)
    try:
        proposals = propose(image, config, edge_detector)
    except Exception as error:  # Re-raised with the file's name, which the traceback lacks.
        raise RuntimeError(
            f"Proposals failed for {filename} (decoded shape {image.shape}): "
            f"{type(error).__name__}: {error}") from error
    return filename, proposals, (_OK if len(proposals) else _EMPTY), ""


def _init_worker(config: ProposalConfig, threads_per_worker: int) -> None:
    """Worker initializer: thread limits, then one edge detector per process."""
    # Before TensorFlow or OpenCV start their pools: num_workers pools of all cores would
    # oversubscribe the machine.
    for variable in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(variable, str(threads_per_worker))
    import cv2  # pylint: disable=import-outside-toplevel
    cv2.setNumThreads(threads_per_worker)
    _WORKER["config"] = config
    _WORKER["edge_detector"] = make_edge_detector(config)


def _worker_process_one(filename: str, data: bytes) -> tuple[str, Proposals, str, str]:
    return _process_one(filename, data, _WORKER["config"], _WORKER["edge_detector"])


class _Progress:
    """Logs done / total, images per second and the ETA every ``every_seconds``."""

    def __init__(self, total: int | None, every_seconds: float):
        self.total = total
        self.every_seconds = every_seconds
        self.start = time.monotonic()
        self.last_log = self.start
        self.done = 0  # Images accounted for in this run: computed or skipped.
        self.computed = 0

    def update(self, computed: int = 0, skipped: int = 0, force: bool = False) -> None:
        self.computed += computed
        self.done += computed + skipped
        now = time.monotonic()
        if not force and now - self.last_log < self.every_seconds:
            return
        self.last_log = now
        elapsed = max(now - self.start, 1e-9)
        rate = self.computed / elapsed
        if self.total:
            remaining = max(self.total - self.done, 0)
            eta = f"{remaining / rate:.0f} s" if rate > 0 else "?"
            logger.info("proposals: %d/%d images (%.1f%%), %.2f images/s, ETA %s", self.done,
                        self.total, 100.0 * self.done / self.total, rate, eta)
        else:
            logger.info("proposals: %d images, %.2f images/s", self.done, rate)


def _pending(examples: Iterable[tuple[str, bytes]], done: set[str], stats: dict,
             progress: _Progress) -> Iterator[tuple[str, bytes]]:
    """The examples still to compute: not in the cache, first occurrence only."""
    seen: set[str] = set()
    for filename, data in examples:
        filename = filename.decode("utf-8") if isinstance(filename, bytes) else str(filename)
        if filename in done:
            stats["skipped_done"] += 1
            progress.update(skipped=1)
            continue
        if filename in seen:
            stats["duplicates"] += 1
            progress.update(skipped=1)
            continue
        seen.add(filename)
        yield filename, bytes(data) if not isinstance(data, bytes) else data


def _results_in_process(pending: Iterator[tuple[str, bytes]], config: ProposalConfig,
                        edge_detector: EdgeDetector | None):
    detector = edge_detector if edge_detector is not None else make_edge_detector(config)
    for filename, data in pending:
        yield _process_one(filename, data, config, detector)


def _results_in_pool(pending: Iterator[tuple[str, bytes]], config: ProposalConfig,
                     num_workers: int):
    """Results in input order, with at most a few images per worker in flight (bounded memory:
    ``Executor.map`` and ``Pool.imap`` would read the whole input ahead)."""
    threads = max(1, (os.cpu_count() or 1) // num_workers)
    context = multiprocessing.get_context("spawn")
    in_flight_limit = 4 * num_workers
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=num_workers, mp_context=context, initializer=_init_worker,
            initargs=(config, threads)) as executor:
        futures: collections.deque = collections.deque()
        try:
            for filename, data in pending:
                futures.append(executor.submit(_worker_process_one, filename, data))
                if len(futures) >= in_flight_limit:
                    yield futures.popleft().result()
            while futures:
                yield futures.popleft().result()
        finally:
            for future in futures:
                future.cancel()


def run_proposal_stage(examples: Iterable[tuple[str, bytes]], cache: ProposalCache,
                       config: ProposalConfig, *, num_workers: int = 1, chunk_size: int = 64,
                       total: int | None = None, log_every_seconds: float = 10.0,
                       edge_detector: EdgeDetector | None = None) -> dict:
    """Computes and caches the candidate regions of every image not cached yet.

    Args:
        examples: ``(image/filename, encoded image bytes)`` pairs, read lazily (a generator over
            a TFDS split is fine); a filename seen twice is computed once.
        cache: where results go; must have been opened with ``config``.
        config: proposal settings.
        num_workers: processes; 1 computes in this process.
        chunk_size: images per cache chunk (a kill loses at most this many).
        total: number of examples, for the progress log's percentage and ETA (optional).
        log_every_seconds: seconds between progress log lines.
        edge_detector: optional detector for the in-process path (``num_workers == 1``), e.g. a
            HED detector already loaded; by default one is built from ``config``. Workers always
            build their own.

    Returns:
        Stats: ``processed`` (images computed in this run, corrupt ones included),
        ``skipped_done`` (already cached), ``duplicates`` (repeated filenames in the input),
        ``corrupt`` (undecodable: stored with no boxes), ``empty`` (decoded, but no box passed the
        filter), ``seconds`` (wall time).

    Raises:
        ValueError: bad arguments (``ConfigError`` for invalid settings), or a cache opened with
            other settings.
        RuntimeError: ``propose`` failed on a decodable image (the message names it); the chunks
            written so far are kept and a rerun resumes.
    """
    config.validate()
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1. Received: num_workers={num_workers}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1. Received: chunk_size={chunk_size}")
    check_cache_matches(cache, config)
    start = time.monotonic()
    stats = {"processed": 0, "skipped_done": 0, "duplicates": 0, "corrupt": 0, "empty": 0,
             "seconds": 0.0}
    done = cache.done_filenames()
    progress = _Progress(total, log_every_seconds)
    logger.info("proposals: %d images already in %s", len(done), cache.directory)
    pending = _pending(examples, done, stats, progress)
    if num_workers == 1:
        results = _results_in_process(pending, config, edge_detector)
    else:
        results = _results_in_pool(pending, config, num_workers)
    records: list[tuple[str, Proposals]] = []
    try:
        for filename, proposals, status, message in results:
            records.append((filename, proposals))
            stats["processed"] += 1
            if status == _CORRUPT:
                stats["corrupt"] += 1
                logger.warning("proposals: %s is not a decodable image, stored with no "
                               "regions: %s", filename, message)
            elif status == _EMPTY:
                stats["empty"] += 1
            if len(records) >= chunk_size:
                cache.append(records)
                records = []
            progress.update(computed=1)
    finally:
        # Whatever stops the loop (the end, an error, Ctrl-C), keep what was computed.
        if records:
            cache.append(records)
        if hasattr(results, "close"):
            results.close()
    stats["seconds"] = time.monotonic() - start
    progress.update(force=True)
    logger.info("proposals: done: %s", stats)
    return stats
