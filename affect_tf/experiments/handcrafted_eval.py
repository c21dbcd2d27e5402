"""Running a hand-crafted baseline: features of many images over a pool, the encoder fitted on a
training part, and the linear SVM's test accuracy.

The protocol is the pretrained-features baseline's (``affect_tf.baselines``): everything that is
fitted (a local descriptor's codebook or GMM, the standardization, the SVM) sees the fold's
training part only, and every fit takes the seed. A hand-crafted row of Tables 2-3:

    train_x, test_x = baseline_features("hog_fv", train_images, test_images, seed=0)
    accuracy = fit_and_score(train_x, train_labels, test_x, test_labels, c=1.0, seed=0)

Images are described in parallel, in their input order, over ``workers`` threads (default: every
core this process may use) or processes (``pool="process"``, started by ``spawn``: forking a
process that holds TensorFlow's threads can deadlock). Threads are the default: OpenCV, NumPy's
array operations and SciPy's FFTs release the GIL, nothing is pickled, and a spawned process
takes a second or more to import its modules.

A local baseline's descriptors are rounded to float16 (:data:`DESCRIPTOR_DTYPE`) as soon as they
are computed, on every path: the stage caches them at that precision
(:mod:`affect_tf.experiments.handcrafted_stage`), and an encoder fitted or applied here on
images gives the same numbers as one fitted and applied on those cached descriptors. Both paths
share one sampling rule (:func:`sample_descriptors`, per image then overall, seeded):

    sets = list(describe_local(train_images, "sift"))  # [n_i, 128] float16 each
    encoder = fit_encoder_from_descriptors(sets, "sift_vlad", size=64, seed=0)
    train_x = encode_descriptors(sets, encoder)  # == baseline_features(...)[0]
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import math
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np
import threadpoolctl

from affect_tf.experiments import handcrafted

# Training descriptors an encoder is fitted on, at most: enough for a 512-word codebook or a
# 32-component GMM in 128-d, small enough to hold (51 MB) and to fit in a minute.
DEFAULT_MAX_DESCRIPTORS = 100_000
# Local descriptors' precision, wherever they are kept or encoded: unit rows need no more than
# float16's 11 significant bits (a relative error of 5e-4, far below what moves a descriptor to
# another codeword), and the stage's cache of every descriptor of a dataset is half float32's.
DESCRIPTOR_DTYPE = np.float16
POOLS = ("thread", "process")
# Images in flight per worker: keeps every worker busy without reading a whole part into memory.
_IN_FLIGHT_PER_WORKER = 4
# LinearSVC's default 1,000 iterations stop short on thousands of standardized features; the
# bound of baselines.py and fusion.py.
_SVM_MAX_ITER = 100_000


def default_workers() -> int:
    """The cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


# --- the pool ----------------------------------------------------------------------------------

_installed: Callable | None = None


def _install(fn: Callable) -> None:
    """A process worker's initializer: the task function is sent once per worker, not once per
    image (an encoder's codebook is up to half a megabyte); the worker's BLAS and OpenCV run on
    one thread, the pool being the parallelism."""
    global _installed  # one per worker process
    _installed = fn
    threadpoolctl.threadpool_limits(limits=1, user_api="blas")
    cv2.setNumThreads(1)


def _call_installed(item):
    return _installed(item)


def ordered_map(fn: Callable, items: Iterable, *, workers: int | None = None,
                pool: str = "thread") -> Iterator:
    """``fn`` over ``items`` on a pool, results in the input order.

    At most ``4 * workers`` items are in flight, so a long iterable (a dataset read from disk)
    is never held in memory at once. One worker runs in this thread, with no pool. With more,
    BLAS is held to one thread per worker while the map runs (this process's limit, restored at
    the end). A script using ``pool="process"`` needs the ``if __name__ == "__main__":`` guard
    that ``spawn`` requires.

    Args:
        fn: a picklable callable (a module-level function or a ``functools.partial`` of one)
            where ``pool="process"``.
        items: any iterable, read once.
        workers: pool size; None: :func:`default_workers`.
        pool: ``thread`` or ``process``.

    Raises:
        ValueError: an unknown pool or workers < 1; whatever ``fn`` raises, from the first
            failing item in order (the items not started are cancelled).
    """
    workers = default_workers() if workers is None else workers
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}. Received: pool={pool!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1. Received: workers={workers}")
    if workers == 1:
        yield from map(fn, items)
        return
    if pool == "thread":
        executor, task = concurrent.futures.ThreadPoolExecutor(workers), fn
    else:
        executor = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_install,
            initargs=(fn,))
        task = _call_installed
    pending: collections.deque = collections.deque()
    # BLAS on one thread per worker (restored on exit): the encoders' small matrix products on
    # every core at once, inside a pool that already occupies them, ran 14 times slower
    # (a Fisher vector of 827 dense SIFTs: 143 ms with 2 BLAS threads, 11 ms with 1).
    limits = threadpoolctl.threadpool_limits(limits=1, user_api="blas")
    try:
        for item in items:
            pending.append(executor.submit(task, item))
            if len(pending) >= _IN_FLIGHT_PER_WORKER * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        limits.restore_original_limits()


# --- features ----------------------------------------------------------------------------------

def _describe(item, name: str, max_side: int, decode: Callable | None) -> np.ndarray:
    # Decoded here, on the worker: a part read from disk is decoded in parallel, not by the
    # thread that feeds the pool.
    image = item if decode is None else decode(item)
    return handcrafted.REGISTRY[name].describe(handcrafted.prepare(image, max_side))


def _local_descriptors(item, *, kind: str, max_side: int,
                       decode: Callable | None = None) -> np.ndarray:
    """One image's local descriptors ``[n, d]``, rounded to :data:`DESCRIPTOR_DTYPE`."""
    image = item if decode is None else decode(item)
    describe = handcrafted.LOCAL_DESCRIPTORS[kind][1]
    return describe(handcrafted.prepare(image, max_side)).astype(DESCRIPTOR_DTYPE)


def _global_feature(image, *, name: str, max_side: int,
                    decode: Callable | None = None) -> np.ndarray:
    return _describe(image, name, max_side, decode)


def _encoded_feature(image, *, kind: str, encoder: handcrafted.Encoder, max_side: int,
                     decode: Callable | None = None) -> np.ndarray:
    return encoder.encode(_local_descriptors(image, kind=kind, max_side=max_side, decode=decode))


def _sample_rows(descriptors: np.ndarray, index: int, per_image: int, seed: int) -> np.ndarray:
    """At most ``per_image`` rows of image ``index``'s descriptors ``[n, d]``, in their order."""
    if len(descriptors) <= per_image:
        return descriptors
    # Seeded by (seed, image index), not by the order workers finish in: the sample, hence the
    # codebook, is the same for any number of workers, and whether the descriptors were just
    # computed or read from the stage's cache.
    rng = np.random.default_rng([seed, index])
    return descriptors[np.sort(rng.choice(len(descriptors), per_image, replace=False))]


def _descriptor_sample(indexed_image, *, kind: str, per_image: int, seed: int,
                       max_side: int, decode: Callable | None = None) -> np.ndarray:
    index, image = indexed_image
    descriptors = _local_descriptors(image, kind=kind, max_side=max_side, decode=decode)
    return _sample_rows(descriptors, index, per_image, seed)


def _per_image_share(count: int, max_descriptors: int) -> int:
    """``ceil(max_descriptors / count)``, after checking both; ``count`` is the images'."""
    if count < 1 or max_descriptors < 1:
        raise ValueError("Fitting an encoder needs images and max_descriptors >= 1. Received: "
                         f"{count} images, max_descriptors={max_descriptors}")
    return math.ceil(max_descriptors / count)


def _cut(samples: list[np.ndarray], max_descriptors: int, seed: int) -> np.ndarray:
    """The images' samples ``[m_i, d]`` pooled, then cut to ``max_descriptors`` rows with
    ``seed`` (the rows keep their order): ``[min(sum m_i, max_descriptors), d]``."""
    descriptors = np.concatenate(samples)
    if len(descriptors) > max_descriptors:
        keep = np.random.default_rng(seed).choice(len(descriptors), max_descriptors,
                                                  replace=False)
        descriptors = descriptors[np.sort(keep)]
    return descriptors


def _local_baseline(name: str) -> handcrafted.Baseline:
    baseline = handcrafted.get_baseline(name)
    if not baseline.local:
        raise ValueError(f"{name} is a global descriptor: nothing to fit. Received: name={name!r}")
    return baseline


def _check_encoder(baseline: handcrafted.Baseline, encoder) -> None:
    if not baseline.local:
        if encoder is not None:
            raise ValueError(f"{baseline.name} is a global descriptor and takes no encoder. "
                             f"Received: encoder of kind {encoder.kind!r}")
        return
    if encoder is None:
        raise ValueError(f"{baseline.name} describes an image by local descriptors and needs an "
                         "encoder fitted on the training part (fit_descriptor_encoder). "
                         "Received: encoder=None")
    if encoder.kind != baseline.encoding or encoder.means.shape[1] != baseline.dim:
        raise ValueError(f"{baseline.name} needs a {baseline.encoding!r} encoder of "
                         f"{baseline.dim}-d descriptors. Received: kind {encoder.kind!r}, "
                         f"means {encoder.means.shape}")


def _stack(rows: list[np.ndarray], empty: str) -> np.ndarray:
    """Per-image rows ``[D]`` -> ``[N, D]`` float32; ``empty``: the error when N = 0."""
    if not rows:
        raise ValueError(empty)
    return np.stack(rows).astype(np.float32, copy=False)


def extract_features(images: Iterable, name: str, *,
                     encoder: handcrafted.Encoder | None = None, workers: int | None = None,
                     pool: str = "thread", max_side: int = handcrafted.MAX_SIDE,
                     decode: Callable | None = None) -> np.ndarray:
    """One baseline's feature of every image, computed in parallel.

    Args:
        images: uint8 RGB arrays ``[H, W, 3]``, any sizes; read once.
        name: a key of :data:`handcrafted.REGISTRY`.
        encoder: for a local baseline, its encoder fitted on the training part
            (:func:`fit_descriptor_encoder`); None for a global one.
        workers, pool: as :func:`ordered_map`.
        max_side: longer side images are shrunk to first (:func:`handcrafted.prepare`).
        decode: None when ``images`` are images; else a function ``item -> uint8 RGB [H, W, 3]``
            that the workers apply to each item (e.g. encoded bytes), picklable where
            ``pool="process"``.

    Returns:
        ``[N, D]`` float32, row i for image i (a local baseline's encoded from its descriptors
        rounded to float16, as :func:`encode_descriptors` encodes cached ones).

    Raises:
        ValueError: an unknown name, a missing, superfluous or mismatched encoder, a bad image
            (:func:`handcrafted.check_image`), or no image at all.
    """
    baseline = handcrafted.get_baseline(name)
    _check_encoder(baseline, encoder)
    if baseline.local:
        fn = functools.partial(_encoded_feature, kind=baseline.descriptor, encoder=encoder,
                               max_side=max_side, decode=decode)
    else:
        fn = functools.partial(_global_feature, name=name, max_side=max_side, decode=decode)
    return _stack(list(ordered_map(fn, images, workers=workers, pool=pool)),
                  f"No images to describe with {name}. Received: 0 images")


def describe_local(images: Iterable, kind: str, *, workers: int | None = None,
                   pool: str = "thread", max_side: int = handcrafted.MAX_SIDE,
                   decode: Callable | None = None) -> Iterator[np.ndarray]:
    """Every image's local descriptors, computed in parallel, yielded in the input order.

    Args:
        images: uint8 RGB arrays ``[H, W, 3]`` (or items ``decode`` turns into them); read once.
        kind: a key of :data:`handcrafted.LOCAL_DESCRIPTORS` (``sift``, ``dsift``, ``hog``; a
            local baseline's :attr:`handcrafted.Baseline.descriptor`).
        workers, pool, max_side, decode: as :func:`extract_features`.

    Returns:
        An iterator of ``[n_i, d]`` :data:`DESCRIPTOR_DTYPE` (float16), one per image,
        n_i >= 0; the images are described as it is read.

    Raises:
        ValueError: an unknown kind (at once), or a bad image (:func:`handcrafted.check_image`;
            when the iterator reaches it).
    """
    if kind not in handcrafted.LOCAL_DESCRIPTORS:
        raise ValueError(f"kind must be one of {tuple(handcrafted.LOCAL_DESCRIPTORS)}. "
                         f"Received: kind={kind!r}")
    fn = functools.partial(_local_descriptors, kind=kind, max_side=max_side, decode=decode)
    return ordered_map(fn, images, workers=workers, pool=pool)


class DescriptorSets(Sequence):
    """Images' descriptor sets kept as one array: item i is image i's ``[counts[i], d]`` rows.

    The form the stage caches a part in; ``values`` may be a read-only memory map, which a
    set's slice reads only when it is used.

    Args:
        values: ``[total, d]``, the sets one after another.
        counts: ``[N]`` non-negative ints summing to ``total``.

    Raises:
        ValueError: values not 2-D, counts not 1-D, negative, or not summing to ``total``.
    """

    def __init__(self, values: np.ndarray, counts):
        counts = np.asarray(counts)
        if np.ndim(values) != 2 or counts.ndim != 1 or not np.issubdtype(counts.dtype,
                                                                          np.integer):
            raise ValueError("descriptor sets need values [total, d] and integer counts [N]. "
                             f"Received: values.shape={np.shape(values)}, "
                             f"counts.shape={counts.shape}, counts.dtype={counts.dtype}")
        if np.any(counts < 0) or int(counts.sum()) != len(values):
            raise ValueError(f"counts must be >= 0 and sum to the {len(values)} rows of values. "
                             f"Received: counts summing to {int(counts.sum())}, min "
                             f"{int(counts.min()) if len(counts) else 0}")
        self.values = values
        self.offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])  # [N + 1]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:
        if not -len(self) <= index < len(self):
            raise IndexError(f"image {index} of {len(self)} descriptor sets")
        index %= len(self)
        return self.values[self.offsets[index]:self.offsets[index + 1]]


def sample_descriptors(descriptor_sets: Sequence, *,
                       max_descriptors: int = DEFAULT_MAX_DESCRIPTORS,
                       seed: int = 0) -> np.ndarray:
    """The descriptors an encoder is fitted on, drawn from every training image's set.

    Every image contributes at most ``ceil(max_descriptors / N)`` of its rows, drawn with a
    generator seeded by ``(seed, image index)``; the pooled sample is then cut to
    ``max_descriptors`` rows with ``seed``. :func:`fit_descriptor_encoder` draws the same rows
    from the images themselves.

    Args:
        descriptor_sets: N sets ``[n_i, d]`` in the part's order (a list, or
            :class:`DescriptorSets` of a cached part).
        max_descriptors: the most rows returned (>= 1).
        seed: the sample's seed.

    Returns:
        ``[m, d]``, m <= max_descriptors, in the images' order, the sets' dtype.

    Raises:
        ValueError: no set, or max_descriptors < 1.
    """
    per_image = _per_image_share(len(descriptor_sets), max_descriptors)
    samples = [_sample_rows(np.asarray(descriptors), index, per_image, seed)
               for index, descriptors in enumerate(descriptor_sets)]
    return _cut(samples, max_descriptors, seed)


def fit_encoder_from_descriptors(descriptor_sets: Sequence, name: str, *,
                                 size: int | None = None,
                                 max_descriptors: int = DEFAULT_MAX_DESCRIPTORS,
                                 seed: int = 0) -> handcrafted.Encoder:
    """Fits a local baseline's encoder on a sample (:func:`sample_descriptors`) of the
    *training* images' descriptor sets, already computed (no image is described).

    Args:
        descriptor_sets: the training part's N sets ``[n_i, d]`` (:func:`describe_local`).
        name: a local baseline of the registry (``sift_bow``, ..., ``hog_fv``).
        size, max_descriptors, seed: as :func:`fit_descriptor_encoder`.

    Returns:
        The fitted :class:`handcrafted.Encoder`.

    Raises:
        ValueError: a global baseline, no set, max_descriptors < 1, sets that are not
            ``[n, d]`` of the baseline's d, or fewer descriptors than ``size``.
    """
    baseline = _local_baseline(name)
    descriptors = sample_descriptors(descriptor_sets, max_descriptors=max_descriptors, seed=seed)
    if descriptors.ndim != 2 or descriptors.shape[1] != baseline.dim:
        raise ValueError(f"{name} is fitted on {baseline.dim}-d descriptors. Received: "
                         f"sample of shape {descriptors.shape}")
    return handcrafted.fit_encoder(baseline.encoding, descriptors, size, seed)


def encode_descriptors(descriptor_sets: Iterable, encoder: handcrafted.Encoder, *,
                       workers: int | None = None, pool: str = "thread") -> np.ndarray:
    """Every image's feature from its descriptor set (no image is described).

    Args:
        descriptor_sets: sets ``[n_i, d]``, read once (a list, or :class:`DescriptorSets`).
        encoder: fitted on the training part's descriptors.
        workers, pool: as :func:`ordered_map`.

    Returns:
        ``[N, encoder.dim]`` float32, row i for set i.

    Raises:
        ValueError: a set that is not ``[n, d]`` of the encoder's d, or no set at all.
    """
    rows = list(ordered_map(encoder.encode, descriptor_sets, workers=workers, pool=pool))
    return _stack(rows, f"No descriptor sets to encode with the {encoder.kind!r} encoder. "
                        "Received: 0 sets")


def fit_descriptor_encoder(images: Sequence, name: str, *, size: int | None = None,
                           max_descriptors: int = DEFAULT_MAX_DESCRIPTORS, seed: int = 0,
                           workers: int | None = None, pool: str = "thread",
                           max_side: int = handcrafted.MAX_SIDE,
                           decode: Callable | None = None) -> handcrafted.Encoder:
    """Fits a local baseline's encoder on descriptors of the *training* images.

    The sample is :func:`sample_descriptors`'s: every image contributes at most
    ``ceil(max_descriptors / N)`` descriptors, drawn with a generator seeded by
    ``(seed, image index)``, so the sample spans the whole part and does not depend on the
    number of workers; the pooled sample is then cut to ``max_descriptors`` with ``seed``. Each
    worker keeps only its image's sample, so the part's descriptors are never held at once.

    Args:
        images: the training part's uint8 RGB images; a sized collection (its length sets the
            per-image share).
        name: a local baseline of the registry (``sift_bow``, ..., ``hog_fv``).
        size: codebook size K; None: :data:`handcrafted.DEFAULT_CODEBOOK_SIZES`.
        max_descriptors: the most descriptors the fit sees (>= 1).
        seed: the sample's and the clustering's seed.
        workers, pool, max_side, decode: as :func:`extract_features`.

    Returns:
        The fitted :class:`handcrafted.Encoder`.

    Raises:
        ValueError: a global baseline, images without a length or empty, max_descriptors < 1,
            or fewer descriptors than ``size``.
    """
    baseline = _local_baseline(name)
    try:
        count = len(images)
    except TypeError:
        raise ValueError("images must be a sized collection (a list, or a sequence reading from "
                         f"disk). Received: {type(images).__name__}") from None
    fn = functools.partial(_descriptor_sample, kind=baseline.descriptor, seed=seed,
                           max_side=max_side, per_image=_per_image_share(count, max_descriptors),
                           decode=decode)
    samples = list(ordered_map(fn, enumerate(images), workers=workers, pool=pool))
    return handcrafted.fit_encoder(baseline.encoding, _cut(samples, max_descriptors, seed),
                                   size, seed)


def baseline_features(name: str, train_images: Sequence, test_images: Iterable, *,
                      seed: int = 0, size: int | None = None,
                      max_descriptors: int = DEFAULT_MAX_DESCRIPTORS,
                      workers: int | None = None, pool: str = "thread",
                      max_side: int = handcrafted.MAX_SIDE,
                      decode: Callable | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A baseline's features of a fold: the encoder (local baselines) fitted on the training
    images only, then both parts described.

    Args:
        name: a key of :data:`handcrafted.REGISTRY`.
        train_images: the training part; a sized collection, read twice by a local baseline
            (fit, then encode), so not a one-shot iterator.
        test_images: the test part, read once.
        seed, size, max_descriptors: as :func:`fit_descriptor_encoder`.
        workers, pool, max_side, decode: as :func:`extract_features`.

    Returns:
        ``(train [N, D], test [M, D])`` float32.

    Raises:
        ValueError: as :func:`extract_features` and :func:`fit_descriptor_encoder`, or a
            one-shot iterator as the training part of a local baseline.
    """
    baseline = handcrafted.get_baseline(name)
    encoder = None
    if baseline.local:
        if iter(train_images) is train_images:
            raise ValueError("train_images is read twice (fit, then encode): pass a list or "
                             "another collection, not a one-shot iterator. Received: "
                             f"{type(train_images).__name__}")
        encoder = fit_descriptor_encoder(train_images, name, size=size,
                                         max_descriptors=max_descriptors, seed=seed,
                                         workers=workers, pool=pool, max_side=max_side,
                                         decode=decode)
    options = {"encoder": encoder, "workers": workers, "pool": pool, "max_side": max_side,
               "decode": decode}
    return (extract_features(train_images, name, **options),
            extract_features(test_images, name, **options))


# --- the classifier ----------------------------------------------------------------------------

def _check_part(features, labels, part: str) -> tuple[np.ndarray, np.ndarray]:
    features, labels = np.asarray(features), np.asarray(labels)
    if features.ndim != 2 or labels.shape != features.shape[:1]:
        raise ValueError(f"{part} features must be [N, D] and labels [N]. Received: "
                         f"{part}_features.shape={features.shape}, "
                         f"{part}_labels.shape={labels.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError(f"{part} features must be finite. Received: "
                         f"{int(np.sum(~np.isfinite(features)))} non-finite values")
    return features.astype(np.float32, copy=False), labels


def fit_and_score(train_features, train_labels, test_features, test_labels, c: float = 1.0,
                  seed: int = 0) -> float:
    """Standardization and a linear SVM fitted on the training part; accuracy on the test part.

    Args:
        train_features: ``[N, D]``; train_labels: ``[N]`` with at least two classes.
        test_features: ``[M, D]``; test_labels: ``[M]`` (never used to fit).
        c: the SVM's C (> 0).
        seed: ``random_state`` of the SVM.

    Returns:
        Test accuracy in [0, 1].

    Raises:
        ValueError: as :func:`fit_and_predict`, or test labels that are not ``[M]``.
    """
    _, test_y = _check_part(test_features, test_labels, "test")
    predicted = fit_and_predict(train_features, train_labels, test_features, c=c, seed=seed)
    return float(np.mean(predicted == test_y))


def fit_and_predict(train_features, train_labels, test_features, c: float = 1.0,
                    seed: int = 0) -> np.ndarray:
    """Standardization and a linear SVM fitted on the training part; its labels of the test
    part (so a caller computes any metric: accuracy, balanced accuracy, per-class recall).

    The paper's classifier for every hand-crafted row (LIBSVM, linear kernel, C = 1 by default);
    ``LinearSVC`` solves it with the squared hinge, and ``dual="auto"`` lets scikit-learn pick
    the primal or the dual problem, whichever suits the shape (the primal where images outnumber
    features).

    Args:
        train_features: ``[N, D]``; train_labels: ``[N]`` with at least two classes.
        test_features: ``[M, D]``, M >= 1.
        c: the SVM's C (> 0).
        seed: ``random_state`` of the SVM.

    Returns:
        ``[M]`` predicted labels (the training labels' dtype).

    Raises:
        ValueError: shapes that do not match, non-finite features, one training class only,
            no test image, or ``c <= 0``.
    """
    # Imported here, as baselines.py does: describing images needs no scikit-learn.
    from sklearn import pipeline, preprocessing, svm

    train_x, train_y = _check_part(train_features, train_labels, "train")
    test_x, _ = _check_part(test_features, np.zeros(np.shape(test_features)[:1]), "test")
    if test_x.shape[1] != train_x.shape[1]:
        raise ValueError(f"test features must have the training part's D = {train_x.shape[1]}. "
                         f"Received: test_features.shape={test_x.shape}")
    classes = np.unique(train_y)
    if len(classes) < 2:
        raise ValueError("train labels must hold at least two classes. Received: label values "
                         f"{classes.tolist()}")
    if not c > 0:
        raise ValueError(f"c must be > 0. Received: c={c!r}")
    if len(test_x) == 0:
        raise ValueError("No test images to score. Received: test_features.shape="
                         f"{test_x.shape}")
    model = pipeline.make_pipeline(
        preprocessing.StandardScaler(),
        svm.LinearSVC(C=c, dual="auto", random_state=seed, max_iter=_SVM_MAX_ITER))
    model.fit(train_x, train_y)
    return model.predict(test_x)
