"""The proposal stage on this machine: candidate regions for every image, resumable and parallel.

It reads ``(image/filename, encoded bytes)`` pairs, skips the filenames already in the cache,
runs :func:`~affect_tf.proposals.pipeline.propose_encoded` on each, and commits a chunk to the
:class:`~affect_tf.proposals.cache.ProposalCache` at least every ``commit_seconds``, so a killed run
loses at most that much work and the next run resumes where it stopped.

With ``num_workers > 1`` the images go to a pool of processes started with ``spawn``: the parent
may have TensorFlow loaded, and forking a process after TensorFlow has started its threads is
unsafe. Each worker builds its edge detector once (the HED network, for ``hed``) and dies with
its parent, whatever kills the parent (Linux: ``PR_SET_PDEATHSIG``; elsewhere a watchdog
thread), so a killed run leaves no worker behind. Results are in input order and identical to a
single-process run: the selection runs its linear algebra on one thread in both (selection.py),
and the OpenCV steps are per-pixel operations whose values do not depend on the thread count.
(HED edges come from TensorFlow's CPU kernels, whose reductions may differ in the last bits with
another thread count.)

HED edges (``edge_source='hed'``) with ``hed_batch_size >= 2`` take another route: this process
decodes the pending images and runs the HED network on them in batches (on the GPU when
TensorFlow sees one: one process holds the network, instead of one copy per worker), and the
workers get each image's raw edge map for the per-pixel rest (orientation, thinning, EdgeBoxes,
selection). Images wait in buckets of one padded size (``edges.hed_padded_shape``) until a bucket
holds a full batch, so photos of many sizes still fill their calls, and each image's network input
is the one it gets alone: the cache holds what the per-image route computes (up to the last bits
of TensorFlow's kernels, as above). At most ``HED_PENDING_BATCHES`` batches' worth of images wait;
beyond that the bucket of the oldest waiting image runs part-full. Chunks, resume and the input
order of the results are the same on both routes; a kill also loses the images waiting in
buckets (at most ``HED_PENDING_BATCHES * hed_batch_size``).

A script that calls this with ``num_workers > 1`` must guard its entry point with
``if __name__ == "__main__":``, as ``spawn`` imports the main module in each worker.
"""

from __future__ import annotations

import collections
import concurrent.futures
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Callable, Iterable, Iterator, Union

import numpy as np

from affect_tf.config import ProposalConfig
from affect_tf.proposals.cache import ProposalCache, check_cache_matches
from affect_tf.proposals.edges import (
    EdgeDetector, HEDEdgeDetector, hed_edges_from_probabilities, hed_padded_shape,
    hed_precision_here, make_edge_detector)
from affect_tf.proposals.pipeline import (
    STATUS_CORRUPT, STATUS_EMPTY, ImageResult, Proposals, decode_for_proposals, propose_encoded,
    result_from_edges)

logger = logging.getLogger(__name__)

# A chunk also closes at this many images, whatever the time: bounds the parent's memory.
MAX_CHUNK_IMAGES = 4096

# Batched HED lets up to this many batches' worth of decoded images wait in buckets of one padded
# size, so that rarer sizes still fill their calls. At batch 8 a call held 7.2 images on average
# (78 % of calls full) on 1,000 photos resized to a 500 px longer side, 3.2 (23 %) when 30 % of
# them are smaller photos of any size; grouping each window of 4 batches apart, the route before,
# held 2.7 and 1.8 (benchmarks/bench_hed.py). 64 batches would give 7.2 and 4.0: little more for
# four times the memory. The bound caps memory (decoded images of <= 500 px: ~0.1 GB) and how
# long an image waits. On a CPU fuller calls change little (HED costs the same CPU time per image
# at batch 1 and 8); on a GPU they are what batching is for.
HED_PENDING_BATCHES = 16
# The images handed to the workers ahead of their results, in batches: they finish one batch's
# per-pixel work while this process runs the network on the next.
HED_IN_FLIGHT_BATCHES = 4

# What the parent hands on per image: a finished result, or a worker task (function, *args).
_Task = Union[ImageResult, tuple]

# Set in each worker process by _init_worker: the settings and the worker's own edge detector.
_WORKER: dict = {}

_PR_SET_PDEATHSIG = 1  # From <linux/prctl.h>.


def _die_with_parent(parent_pid: int) -> None:
    """Ends this worker when its parent ends, even by SIGKILL (which runs no clean-up)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            # The parent may have died before the call: then no signal will ever come.
            if os.getppid() != parent_pid:
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _init_worker(config: ProposalConfig, threads_per_worker: int, parent_pid: int) -> None:
    """Worker initializer: tie the worker to its parent, thread limits, one edge detector."""
    _die_with_parent(parent_pid)
    # Before TensorFlow or OpenCV start their pools: num_workers pools of all cores would
    # oversubscribe the machine.
    for variable in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(variable, str(threads_per_worker))
    import cv2  # pylint: disable=import-outside-toplevel
    cv2.setNumThreads(threads_per_worker)
    _WORKER["config"] = config
    _WORKER["edge_detector"] = make_edge_detector(config)


def _worker_propose(filename: str, data: bytes) -> ImageResult:
    return propose_encoded(filename, data, _WORKER["config"], _WORKER["edge_detector"])


def _finish_hed(filename: str, probabilities: np.ndarray, config: ProposalConfig) -> ImageResult:
    """The rest of one image after the batched HED network: orientation, thinning, proposals."""
    try:
        edges, orientation = hed_edges_from_probabilities(probabilities)
    except Exception as error:  # Re-raised with the file's name.
        raise RuntimeError(f"HED edges failed for {filename} (shape {probabilities.shape}): "
                           f"{type(error).__name__}: {error}") from error
    return result_from_edges(filename, edges, orientation, config)


def _worker_finish_hed(filename: str, probabilities: np.ndarray) -> ImageResult:
    return _finish_hed(filename, probabilities, _WORKER["config"])


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


def _batched_hed(config: ProposalConfig,
                 edge_detector: EdgeDetector | None) -> HEDEdgeDetector | None:
    """The HED detector to run in batches in this process, or None for the per-image route.

    Batched: ``edge_source='hed'`` with ``hed_batch_size >= 2``, and no edge detector passed
    other than a :class:`HEDEdgeDetector` (any other callable is called image by image).
    """
    if config.edge_source != "hed" or config.hed_batch_size < 2:
        return None
    if edge_detector is None:
        return HEDEdgeDetector(precision=config.hed_precision)
    return edge_detector if isinstance(edge_detector, HEDEdgeDetector) else None


def _check_hed_precision(config: ProposalConfig, edge_detector: EdgeDetector | None) -> None:
    """A HED detector passed in must compute what the cache's settings say (its fingerprint)."""
    if isinstance(edge_detector, HEDEdgeDetector) and (
            edge_detector.precision != config.hed_precision):
        raise ValueError(
            "The HED detector passed in computes in another precision than the settings the "
            "cache is keyed by; build it with HEDEdgeDetector(precision=config.hed_precision). "
            f"Received: detector precision={edge_detector.precision!r}, "
            f"hed_precision={config.hed_precision!r}")


def _per_image_tasks(pending: Iterator[tuple[str, bytes]]) -> Iterator[_Task]:
    for filename, data in pending:
        yield (_worker_propose, filename, data)


def _hed_tasks(pending: Iterator[tuple[str, bytes]], config: ProposalConfig,
               detector: HEDEdgeDetector) -> Iterator[_Task]:
    """Decodes the pending images here and runs HED on them in full batches of one padded size.

    Each decodable image joins the bucket of its padded size; a bucket runs when it holds
    ``hed_batch_size`` images, or, when more than :data:`HED_PENDING_BATCHES` batches' worth of
    images wait, the bucket holding the oldest waiting image runs as it is; at the end every
    bucket runs, oldest first.

    Yields:
        In input order, each image's finished result (undecodable, or too small for a box) or its
        task for a worker: ``(_worker_finish_hed, filename, probabilities)``.
    """
    batch_size = config.hed_batch_size
    limit = batch_size * HED_PENDING_BATCHES
    buckets: dict[tuple[int, int], list[tuple[int, str, np.ndarray]]] = {}
    ready: dict[int, _Task] = {}
    waiting = next_out = 0
    for position, (filename, data) in enumerate(pending):
        item = decode_for_proposals(filename, data, config)
        if isinstance(item, ImageResult):
            ready[position] = item
        else:
            key = hed_padded_shape(*item.shape[:2])
            buckets.setdefault(key, []).append((position, filename, item))
            waiting += 1
            if len(buckets[key]) >= batch_size:
                waiting -= _run_hed_bucket(buckets, key, detector, batch_size, ready)
            elif waiting > limit:
                waiting -= _run_hed_bucket(buckets, _oldest_bucket(buckets), detector,
                                           batch_size, ready)
        while next_out in ready:
            yield ready.pop(next_out)
            next_out += 1
    while buckets:
        _run_hed_bucket(buckets, _oldest_bucket(buckets), detector, batch_size, ready)
    while next_out in ready:
        yield ready.pop(next_out)
        next_out += 1


def _oldest_bucket(buckets: dict) -> tuple[int, int]:
    """The padded size whose bucket holds the image that has waited longest."""
    return min(buckets, key=lambda key: buckets[key][0][0])


def _run_hed_bucket(buckets: dict, key: tuple[int, int], detector: HEDEdgeDetector,
                    batch_size: int, ready: dict[int, _Task]) -> int:
    """Runs HED on the bucket of padded size ``key`` (removed from ``buckets``) and files each
    image's worker task in ``ready`` under its input position; returns the images it held."""
    members = buckets.pop(key)
    images = [image for _, _, image in members]
    try:
        maps = detector.edge_probabilities_batch(images, batch_size=batch_size)
    except Exception as error:  # Re-raised with the files' names.
        raise RuntimeError(
            f"HED failed on {len(images)} images ({', '.join(name for _, name, _ in members)}), "
            f"shapes {sorted({image.shape for image in images})}: "
            f"{type(error).__name__}: {error}") from error
    for (position, name, _), probabilities in zip(members, maps):
        ready[position] = (_worker_finish_hed, name, probabilities)
    return len(members)


def _results_in_process(pending: Iterator[tuple[str, bytes]], config: ProposalConfig,
                        edge_detector: EdgeDetector | None) -> Iterator[ImageResult]:
    hed = _batched_hed(config, edge_detector)
    if hed is not None:
        for task in _hed_tasks(pending, config, hed):
            yield task if isinstance(task, ImageResult) else _finish_hed(*task[1:], config)
        return
    detector = edge_detector if edge_detector is not None else make_edge_detector(config)
    for filename, data in pending:
        yield propose_encoded(filename, data, config, detector)


def _results_in_pool(pending: Iterator[tuple[str, bytes]], config: ProposalConfig,
                     num_workers: int,
                     edge_detector: EdgeDetector | None) -> Iterator[ImageResult]:
    """Results in input order, with at most a few images per worker in flight (bounded memory:
    ``Executor.map`` and ``Pool.imap`` would read the whole input ahead)."""
    threads = max(1, (os.cpu_count() or 1) // num_workers)
    context = multiprocessing.get_context("spawn")
    in_flight_limit = 4 * num_workers
    hed = _batched_hed(config, edge_detector)
    if hed is not None:
        tasks = _hed_tasks(pending, config, hed)
        in_flight_limit = max(in_flight_limit, config.hed_batch_size * HED_IN_FLIGHT_BATCHES)
    else:
        tasks = _per_image_tasks(pending)
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=num_workers, mp_context=context, initializer=_init_worker,
            initargs=(config, threads, os.getpid())) as executor:
        futures: collections.deque = collections.deque()
        try:
            for task in tasks:
                futures.append(_submit(executor, task))
                if len(futures) >= in_flight_limit:
                    yield futures.popleft().result()
            while futures:
                yield futures.popleft().result()
        finally:
            for future in futures:
                future.cancel()


def _submit(executor: concurrent.futures.Executor, task: _Task) -> concurrent.futures.Future:
    """A worker's future for a task, or an already finished one for a result made here."""
    if isinstance(task, ImageResult):
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_result(task)
        return future
    function: Callable = task[0]
    return executor.submit(function, *task[1:])


class _ChunkWriter:
    """Collects results and commits them as one cache chunk every ``commit_seconds`` (or at
    :data:`MAX_CHUNK_IMAGES` images), so a kill loses at most that much work."""

    def __init__(self, cache: ProposalCache, commit_seconds: float):
        self.cache = cache
        self.commit_seconds = commit_seconds
        self.records: list[tuple[str, Proposals]] = []
        self.last_commit = time.monotonic()

    def add(self, result: ImageResult) -> None:
        self.records.append((result.filename, result.proposals))
        due = time.monotonic() - self.last_commit >= self.commit_seconds
        if due or len(self.records) >= MAX_CHUNK_IMAGES:
            self.commit()

    def commit(self) -> None:
        if self.records:
            self.cache.append(self.records)
            self.records = []
        self.last_commit = time.monotonic()


def _count(result: ImageResult, stats: dict) -> None:
    stats["processed"] += 1
    if result.status == STATUS_CORRUPT:
        stats["corrupt"] += 1
        logger.warning("proposals: %s is not a decodable image, stored with no regions: %s",
                       result.filename, result.message)
    elif result.status == STATUS_EMPTY:
        stats["empty"] += 1


def run_proposal_stage(examples: Iterable[tuple[str, bytes]], cache: ProposalCache,
                       config: ProposalConfig, *, num_workers: int = 1,
                       commit_seconds: float = 30.0, total: int | None = None,
                       log_every_seconds: float = 10.0,
                       edge_detector: EdgeDetector | None = None) -> dict:
    """Computes and caches the candidate regions of every image not cached yet.

    Args:
        examples: ``(image/filename, encoded image bytes)`` pairs, read lazily (a generator over
            a TFDS split is fine); a filename seen twice is computed once.
        cache: where results go; must have been opened with ``config``. Damaged chunks found in
            it are moved aside and their images computed again.
        config: proposal settings.
        num_workers: processes; 1 computes in this process.
        commit_seconds: a chunk is committed at least this often (0: after every image), so a
            kill loses at most this much work.
        total: number of examples, for the progress log's percentage and ETA (optional).
        log_every_seconds: seconds between progress log lines.
        edge_detector: optional detector for the in-process path (``num_workers == 1``), e.g. a
            HED detector already loaded; by default one is built from ``config``. Workers build
            their own, except that a :class:`HEDEdgeDetector` passed here is the one batched in
            this process with ``hed_batch_size >= 2`` (whatever ``num_workers``).

    Returns:
        Stats: ``processed`` (images computed in this run, corrupt ones included),
        ``skipped_done`` (already cached), ``duplicates`` (repeated filenames in the input),
        ``corrupt`` (undecodable: stored with no boxes), ``empty`` (decoded, but no box passed the
        filter), ``seconds`` (wall time).

    Raises:
        ValueError: bad arguments (``ConfigError`` for invalid settings), a cache opened with
            other settings, or a :class:`HEDEdgeDetector` of another ``hed_precision``.
        RuntimeError: ``propose`` failed on a decodable image (the message names it); the chunks
            written so far are kept and a rerun resumes.
    """
    config.validate()
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1. Received: num_workers={num_workers}")
    if commit_seconds < 0:
        raise ValueError(f"commit_seconds must be >= 0. Received: commit_seconds={commit_seconds}")
    check_cache_matches(cache, config)
    _check_hed_precision(config, edge_detector)
    if config.edge_source == "hed":
        cache.claim_hed_precision(hed_precision_here(config.hed_precision))
    start = time.monotonic()
    stats = {"processed": 0, "skipped_done": 0, "duplicates": 0, "corrupt": 0, "empty": 0,
             "seconds": 0.0}
    done = cache.done_filenames(repair=True)
    progress = _Progress(total, log_every_seconds)
    logger.info("proposals: %d images already in %s", len(done), cache.directory)
    pending = _pending(examples, done, stats, progress)
    if num_workers == 1:
        results = _results_in_process(pending, config, edge_detector)
    else:
        results = _results_in_pool(pending, config, num_workers, edge_detector)
    writer = _ChunkWriter(cache, commit_seconds)
    try:
        for result in results:
            writer.add(result)
            _count(result, stats)
            progress.update(computed=1)
    finally:
        # Whatever stops the loop (the end, an error, Ctrl-C), keep what was computed.
        writer.commit()
        results.close()
    stats["seconds"] = time.monotonic() - start
    progress.update(force=True)
    logger.info("proposals: done: %s", stats)
    return stats
