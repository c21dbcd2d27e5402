"""The hand-crafted baselines of ``--mode=experiments`` (the paper's Tables 2-3): each baseline's
features of the run's training and test parts, then a linear SVM per baseline.

Three steps with their own fingerprints, as the pretrained-features baseline
(:func:`affect_tf.stages.baseline_stage`), so that describing the images, the expensive part,
happens once per local descriptor, and a new encoder or SVM setting refits in seconds:

* ``handcrafted_descriptors-<fp>/``, one per *local descriptor* (``sift``, ``dsift``, ``hog``:
  :attr:`handcrafted.Baseline.descriptor`; ``sift_bow``, ``sift_vlad`` and ``sift_fv`` share
  one): every image's local descriptors of each part, ``descriptors_{train,test}.npy`` (one
  ``[total, d]`` float16 array, the images' sets one after another, written as they are computed
  and read back as a memory map) and ``index_{train,test}.npz`` (``count`` ``[N]`` int64 rows
  per image, ``label`` ``[N]``, ``filename`` ``[N]``, in the order the part was read, and
  ``seconds``, what describing the part took); each file with its ``.sha256.json`` record, so a
  killed run keeps a finished part, and ``manifest.json``. The fingerprint covers the
  descriptor, the longer side images are shrunk to, every numeric parameter of
  :mod:`affect_tf.experiments.handcrafted` (:func:`descriptor_parameters`),
  :data:`DESCRIPTORS_FORMAT` and the two parts' ids (dataset content and filenames); not the
  encoder, its size or the seed.
* ``handcrafted_features-<fp>/``, one per baseline: ``features_{train,test}.npz`` (each with its
  record) and ``manifest.json``. A global baseline's fingerprint covers the baseline, the
  descriptor parameters and the longer side; a local baseline's, its descriptors' manifest
  content id (which stands for all of those) and its encoder: kind, codebook size, descriptor
  sample, the run's seed (the codebook is fitted on the training part's cached descriptors
  only, every part encoded from its cached descriptors: no image is described). Both cover
  their format number (:data:`GLOBAL_FEATURES_FORMAT`, :data:`LOCAL_FEATURES_FORMAT`) and the
  two parts' ids, not the SVM's C.
* ``handcrafted-<fp>/``: ``handcrafted.csv`` and ``handcrafted.json`` (the same rows, plus C),
  ``manifest.json``. The fingerprint covers each features manifest's content id, C and the seed.

Descriptors are kept as float16 (:data:`handcrafted_eval.DESCRIPTOR_DTYPE`): their rows are unit
vectors, which float16's 11 significant bits hold to a relative 5e-4, and the cache is half
float32's. Features are always encoded from the stored float16 values, also right after they
are computed, so a resumed or repeated run writes the same features as an uninterrupted one. At
``MAX_SIDE`` = 256 px the cache costs, per image (n descriptors x d values x 2 bytes, plus 8
bytes of count): SIFT about 500 x 128 x 2 = 128 KB at most (its 500 strongest keypoints; the
demo's plain scenes have 77 on average, 20 KB); dense SIFT 31 x 31 = 961 x 128 x 2 = 246 KB on
a square image (182 KB at 4:3, 31 x 23 descriptors); HOG 961 x 36 x 2 = 69 KB (51 KB at 4:3).
Dense SIFT of EmotionROI's 1,980 images is about 0.5 GB on disk; of FI's 23,308, 5.7 GB.
Describing a part streams its descriptors to disk, and encoding reads them through the memory
map, so memory holds the images in flight and the encoder's sample, not the part.

Images are the dataset's stored bytes, decoded by :func:`affect_tf.io.decode_image_bytes` (the
proposal stage's decoder) on the pool's workers (:func:`handcrafted_eval.ordered_map`, every core
this process may use); the thread that feeds the pool only reads records. Damaged outputs are
never trusted: a manifest that does not verify moves the damaged file aside
(:meth:`affect_tf.workspace.Run.reuse`) and the part is computed again. Deleting a descriptors
directory to save disk makes the next run describe the images again: the local baselines'
features fingerprints name their descriptors' content.

The report reads ``handcrafted.json`` through :func:`finished_results` (no TensorFlow call, no
image).
"""

from __future__ import annotations

import json
import logging
import pathlib
import time
from collections.abc import Iterable, Iterator

import numpy as np

from affect_tf import artifacts, errors
from affect_tf import config as config_lib
from affect_tf import data as data_lib
from affect_tf import io as io_lib
from affect_tf import metrics as metrics_lib
from affect_tf.experiments import handcrafted, handcrafted_eval, sweeps
from affect_tf.workspace import Run

DESCRIPTORS_STAGE = "handcrafted_descriptors"
FEATURES_STAGE = "handcrafted_features"
STAGE = "handcrafted"
# Fitted on the training part, scored on the test part; no setting is chosen on validation.
PARTS = ("train", "test")
INDEX_KEYS = ("count", "label", "filename", "seconds")
INDEX_PER_IMAGE_KEYS = ("count", "label", "filename")
FEATURE_KEYS = ("features", "label", "filename", "seconds")
PER_IMAGE_KEYS = ("features", "label", "filename")
CSV_FILE = "handcrafted.csv"
JSON_FILE = "handcrafted.json"
# Bumped when the local descriptors' code or their files' form changes in a way their
# parameters do not show, so descriptors of the older code are not reused.
DESCRIPTORS_FORMAT = 1
# Bumped when the descriptors' or encoders' code changes in a way their parameters do not show,
# so features of the older code are not reused; one number for the global baselines' features,
# one for the local ones' (2: encoded from the cached float16 descriptors), so that a change of
# one kind leaves the other's cached features valid.
GLOBAL_FEATURES_FORMAT = 1
LOCAL_FEATURES_FORMAT = 2
# Bumped when the results' form changes.
RESULTS_FORMAT = 1


def descriptor_parameters() -> dict:
    """Every numeric parameter of :mod:`affect_tf.experiments.handcrafted` (its upper-case
    constants: colour levels, LBP bins, Gabor and GIST banks, SIFT and HOG geometry, the k-means
    and GMM settings, ...), so that changing any of them changes the local descriptors' and the
    global features' fingerprints (hence, through the descriptors' content, the local ones')."""
    return {name: value for name, value in sorted(vars(handcrafted).items())
            if name.lstrip("_").isupper() and isinstance(value, (int, float))
            and not isinstance(value, bool)}


def descriptors_settings(kind: str) -> dict:
    """What a local descriptor's cached sets depend on besides the images (the fingerprint's
    settings): not the encoder, its size or the seed, which the baselines sharing it differ by.

    Args:
        kind: a key of :data:`handcrafted.LOCAL_DESCRIPTORS` (``sift``, ``dsift``, ``hog``).

    Raises:
        ValueError: an unknown kind.
    """
    if kind not in handcrafted.LOCAL_DESCRIPTORS:
        raise ValueError(f"kind must be one of {tuple(handcrafted.LOCAL_DESCRIPTORS)}. "
                         f"Received: kind={kind!r}")
    return {"descriptor": kind, "max_side": handcrafted.MAX_SIDE,
            "parameters": descriptor_parameters(), "format": DESCRIPTORS_FORMAT}


def descriptors_fingerprint(run: Run, kind: str) -> str:
    """The fingerprint of ``handcrafted_descriptors-<fp>/`` of local descriptor ``kind``."""
    return config_lib.fingerprint(DESCRIPTORS_STAGE, descriptors_settings(kind),
                                  run.part_id("train"), run.part_id("test"))


def features_settings(name: str, codebook_size: int, seed: int,
                      descriptors_id: str | None = None) -> dict:
    """What one baseline's features depend on besides the images (the fingerprint's settings).

    Args:
        name: a key of :data:`handcrafted.REGISTRY`.
        codebook_size: ``--handcrafted_codebook_size`` (0: the encoding's default).
        seed: the run's seed (the encoder's descriptor sample and clustering).
        descriptors_id: a local baseline's descriptors' manifest content id (they stand for the
            descriptor, its parameters and the images); None for a global one.

    Returns:
        A JSON-able dict; a global baseline's has no encoder, hence no seed: its features are
        the same for any seed.

    Raises:
        ValueError: a local baseline without ``descriptors_id``, or a global one with it.
    """
    baseline = handcrafted.get_baseline(name)
    if baseline.local != (descriptors_id is not None):
        raise ValueError(f"{name}: a local baseline's features are encoded from its cached "
                         "descriptors (their content id), a global one's are not. Received: "
                         f"descriptors_id={descriptors_id!r}")
    if not baseline.local:
        return {"baseline": name, "max_side": handcrafted.MAX_SIDE,
                "parameters": descriptor_parameters(), "format": GLOBAL_FEATURES_FORMAT}
    return {"baseline": name, "descriptors": descriptors_id, "format": LOCAL_FEATURES_FORMAT,
            "encoder": {"kind": baseline.encoding,
                        "size": resolved_codebook_size(name, codebook_size),
                        "max_descriptors": handcrafted_eval.DEFAULT_MAX_DESCRIPTORS,
                        "seed": seed}}


def resolved_codebook_size(name: str, codebook_size: int) -> int | None:
    """K of a local baseline's encoder (0: its encoding's default); None for a global one."""
    baseline = handcrafted.get_baseline(name)
    if not baseline.local:
        return None
    return codebook_size or handcrafted.DEFAULT_CODEBOOK_SIZES[baseline.encoding]


def features_fingerprint(run: Run, name: str,
                         descriptors: artifacts.Manifest | None = None) -> str:
    """The fingerprint of ``handcrafted_features-<fp>/`` of baseline ``name`` in ``run``;
    ``descriptors``: a local baseline's descriptors' manifest (None for a global one)."""
    experiments = run.config.experiments
    return config_lib.fingerprint(
        FEATURES_STAGE, features_settings(
            name, experiments.handcrafted_codebook_size, run.config.seed,
            None if descriptors is None else descriptors.content_id),
        run.part_id("train"), run.part_id("test"))


def results_fingerprint(manifests: dict[str, artifacts.Manifest], c: float, seed: int) -> str:
    """The fingerprint of ``handcrafted-<fp>/``: the features (by content, in the rows' order),
    the SVM's C and its random_state."""
    return config_lib.fingerprint(
        STAGE, [[name, manifest.content_id] for name, manifest in manifests.items()], c, seed,
        f"handcrafted-format-{RESULTS_FORMAT}")


# ---- reading a part ---------------------------------------------------------------------------

def _decode(item: tuple[str, bytes]) -> np.ndarray:
    """``(filename, encoded bytes)`` -> uint8 RGB ``[H, W, 3]``, on a pool worker; module-level,
    so a process pool can send it."""
    filename, data = item
    return io_lib.decode_image_bytes(data, filename)


class _Part:
    """A part's ``(filename, encoded bytes)`` items, read from the dataset at each iteration:
    sized, without holding the part's images in memory. Each pass records the filenames and
    labels in the order it read them."""

    def __init__(self, run: Run, part: str):
        self._run, self._names = run, list(getattr(run.splits, part))
        self.filenames: list[str] = []
        self.labels: list[int] = []

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        self.filenames, self.labels = [], []
        examples = data_lib.examples(self._run.builder, self._names).as_numpy_iterator()
        for example in examples:
            filename = example[data_lib.FILENAME_KEY].decode()
            self.filenames.append(filename)
            self.labels.append(int(example["label"]))
            yield filename, example["image"]


# ---- the local descriptors of both parts ------------------------------------------------------

def write_ragged_npy(handle, sets: Iterable[np.ndarray], dim: int) -> np.ndarray:
    """Writes sets ``[n_i, dim]`` one after another as one ``.npy`` array ``[total, dim]`` of
    float16, streaming: a part's descriptors are never held at once.

    The header goes first with a zero length, the rows follow as they come, and the header is
    rewritten with the total: numpy pads a header for any axis length up to 21 digits, so the
    two are the same size and the file is byte for byte ``np.save`` of the concatenated sets.

    Args:
        handle: a seekable binary file, at its start.
        sets: arrays ``[n_i, dim]`` (any float dtype; rounded to float16), read once.
        dim: d, the rows' length.

    Returns:
        ``[N]`` int64: the rows of each set.

    Raises:
        ValueError: a set that is not ``[n, dim]``.
    """
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f2")), "fortran_order": False,
              "shape": (0, dim)}
    np.lib.format.write_array_header_1_0(handle, header)
    data_start = handle.tell()
    counts = []
    for index, values in enumerate(sets):
        if np.ndim(values) != 2 or np.shape(values)[1] != dim:
            raise ValueError(f"descriptor set {index} must be [n, {dim}]. Received: "
                             f"shape={np.shape(values)}")
        handle.write(np.ascontiguousarray(values, dtype="<f2").tobytes())
        counts.append(len(values))
    end = handle.tell()
    handle.seek(0)
    header["shape"] = (int(sum(counts)), dim)
    np.lib.format.write_array_header_1_0(handle, header)
    if handle.tell() != data_start:  # numpy's padding changed: the rows would be misread
        raise RuntimeError(f"the .npy header of shape {header['shape']} is {handle.tell()} "
                           f"bytes, not the {data_start} written before the rows")
    handle.seek(end)
    return np.asarray(counts, np.int64)


def _describe_local_part(run: Run, kind: str, part: str, directory: pathlib.Path,
                         fingerprint: str) -> None:
    """Describes a part's images by ``kind`` and writes ``descriptors_<part>.npy``, then
    ``index_<part>.npz`` (each with its record: the index last, so a part is whole only when
    both verify)."""
    items = _Part(run, part)
    dim = handcrafted.LOCAL_DESCRIPTORS[kind][2]
    start = time.perf_counter()
    sets = handcrafted_eval.describe_local(items, kind, decode=_decode)
    written = {}

    # Streamed: each image's descriptors go to disk as the pool yields them, so the part's are
    # never held at once.
    def write(target: pathlib.Path) -> None:
        def stream(handle) -> None:
            written["count"] = write_ragged_npy(handle, sets, dim)
        io_lib.atomic_write(target, stream)

    values_path = directory / f"descriptors_{part}.npy"
    artifacts.write_part(values_path, fingerprint, write)
    seconds = time.perf_counter() - start
    index = {"count": written["count"], "label": np.asarray(items.labels, np.int64),
             "filename": np.asarray(items.filenames), "seconds": np.float64(seconds)}
    artifacts.write_part(directory / f"index_{part}.npz", fingerprint,
                         lambda target: io_lib.atomic_save_npz(target, **index))
    logging.info("handcrafted: %s descriptors of the %s part: %d images, %d descriptors, "
                 "%.1f MB as float16 (%.1f s)", kind, part, len(items), int(index["count"].sum()),
                 values_path.stat().st_size / 1e6, seconds)


def descriptors_step(run: Run, kind: str) -> artifacts.Manifest:
    """A local descriptor's sets of every image of the training and test parts, reused when
    their manifest verifies; else each part whose two files do not both verify is described
    again and the manifest written.

    Args:
        run: the run (its parts and workdir).
        kind: a key of :data:`handcrafted.LOCAL_DESCRIPTORS`.

    Returns:
        The descriptors stage's manifest (its content id feeds the features' fingerprints of
        every baseline encoding ``kind``).
    """
    fingerprint = descriptors_fingerprint(run, kind)
    manifest = run.reuse(DESCRIPTORS_STAGE, fingerprint)
    directory = run.stage_dir(DESCRIPTORS_STAGE, fingerprint)
    if manifest is not None:
        logging.info("handcrafted: %s descriptors of the training and test parts reused from %s "
                     "(no image described)", kind, directory)
        return manifest
    outputs = []
    for part in PARTS:
        files = [directory / f"descriptors_{part}.npy", directory / f"index_{part}.npz"]
        outputs += [path.name for path in files]
        if all(artifacts.verified_part(path, fingerprint) for path in files):
            logging.info("handcrafted: %s descriptors of the %s part reused from %s", kind, part,
                         directory)
            continue  # Written whole before a kill, or kept when another part was damaged.
        logging.info("handcrafted: %s descriptors of the %s part, %d images, extracted", kind,
                     part, len(getattr(run.splits, part)))
        _describe_local_part(run, kind, part, directory, fingerprint)
    return artifacts.write_manifest(
        directory, DESCRIPTORS_STAGE, fingerprint, outputs=outputs,
        inputs={"descriptor": kind, "dataset": run.dataset_id,
                "train_part": run.part_id("train"), "test_part": run.part_id("test")})


def load_descriptors(run: Run, kind: str, manifest: artifacts.Manifest
                     ) -> dict[str, tuple[handcrafted_eval.DescriptorSets, dict]]:
    """A verified descriptors stage's parts: ``{part: (sets, index)}``, the sets reading
    ``descriptors_<part>.npy`` through a memory map, ``index`` its ``count``, ``label``,
    ``filename`` (``[N]`` each, in read order) and ``seconds``.

    Raises:
        DamagedArtifactError: a file that changed after its manifest was verified.
    """
    directory = run.stage_dir(DESCRIPTORS_STAGE, manifest.fingerprint)
    indices = run.load_parts(directory, "index", PARTS, INDEX_KEYS, INDEX_PER_IMAGE_KEYS)
    dim = handcrafted.LOCAL_DESCRIPTORS[kind][2]
    loaded = {}
    for part in PARTS:
        path = directory / f"descriptors_{part}.npy"
        try:
            values = np.load(path, mmap_mode="r")
            if values.dtype != np.float16 or values.ndim != 2 or values.shape[1] != dim:
                raise ValueError(f"expected [total, {dim}] float16, found {values.shape} "
                                 f"{values.dtype}")
            sets = handcrafted_eval.DescriptorSets(values, indices[part]["count"])
        except (OSError, ValueError) as error:
            raise artifacts.DamagedArtifactError(
                f"{path} changed while the run read it ({error}); run the same command again.",
                path) from error
        loaded[part] = (sets, indices[part])
    return loaded


# ---- the features of one baseline -------------------------------------------------------------

def _fit_encoder(run: Run, name: str,
                 train_sets: handcrafted_eval.DescriptorSets) -> handcrafted.Encoder:
    """The local baseline's encoder, fitted on the training part's cached descriptors only."""
    size = resolved_codebook_size(name, run.config.experiments.handcrafted_codebook_size)
    start = time.perf_counter()
    try:
        encoder = handcrafted_eval.fit_encoder_from_descriptors(train_sets, name, size=size,
                                                                seed=run.config.seed)
    except ValueError as error:
        # The library's message names the size and the descriptors it received.
        raise errors.RunError(
            f"{name}: its encoder cannot be fitted on the training part of {run.where} "
            f"({error}). Pass a smaller --handcrafted_codebook_size, or leave {name} out of "
            "--handcrafted.") from error
    logging.info("handcrafted: %s: %s encoder of K = %d fitted on the training part's cached "
                 "descriptors (%.1f s)", name, encoder.kind, encoder.size,
                 time.perf_counter() - start)
    return encoder


def _encode_part(name: str, part: str, sets: handcrafted_eval.DescriptorSets, index: dict,
                 encoder: handcrafted.Encoder) -> dict[str, np.ndarray]:
    """``{"features": [N, D] float32, "label": [N] int64, "filename": [N] str}`` of a part,
    encoded from its cached descriptors (rows in the index's order)."""
    start = time.perf_counter()
    features = handcrafted_eval.encode_descriptors(sets, encoder)
    logging.info("handcrafted: %s: the %s part's %d images encoded from their cached "
                 "descriptors (%.1f s)", name, part, len(sets), time.perf_counter() - start)
    return {"features": features, "label": index["label"], "filename": index["filename"]}


def _describe_part(run: Run, name: str, part: str) -> dict[str, np.ndarray]:
    """``{"features": [N, D] float32, "label": [N] int64, "filename": [N] str}`` of a part, for
    a global baseline: every image described."""
    items = _Part(run, part)
    logging.info("handcrafted: %s of the %s part, %d images", name, part, len(items))
    # Rows in the order the part was read, which the filenames and labels recorded.
    features = handcrafted_eval.extract_features(items, name, decode=_decode)
    return {"features": features, "label": np.asarray(items.labels, np.int64),
            "filename": np.asarray(items.filenames)}


def features_step(run: Run, name: str,
                  descriptors: artifacts.Manifest | None = None) -> artifacts.Manifest:
    """One baseline's features of the training and test parts, reused when their manifest
    verifies; else each part whose record does not verify is computed and the manifest written:
    a global baseline describes the part's images; a local one fits its encoder once on the
    training part's cached descriptors and encodes the part's cached descriptors.

    Args:
        run: the run.
        name: a key of :data:`handcrafted.REGISTRY`.
        descriptors: a local baseline's descriptors' manifest (:func:`descriptors_step`); None:
            computed or verified here.

    Returns:
        The features stage's manifest (its content id feeds the results' fingerprint).
    """
    baseline = handcrafted.get_baseline(name)
    if baseline.local and descriptors is None:
        descriptors = descriptors_step(run, baseline.descriptor)
    fingerprint = features_fingerprint(run, name, descriptors)
    manifest = run.reuse(FEATURES_STAGE, fingerprint)
    if manifest is not None:
        return manifest
    directory = run.stage_dir(FEATURES_STAGE, fingerprint)
    encoder, cached, outputs = None, None, []
    for part in PARTS:
        path = directory / f"features_{part}.npz"
        outputs.append(path.name)
        if artifacts.verified_part(path, fingerprint):
            continue  # Written whole before a kill, or kept when another part was damaged.
        start = time.perf_counter()
        if baseline.local:
            if cached is None:
                cached = load_descriptors(run, baseline.descriptor, descriptors)
                encoder = _fit_encoder(run, name, cached["train"][0])
            arrays = _encode_part(name, part, *cached[part], encoder)
            # Describing the part's images counts too, though it happened once for every
            # baseline of this descriptor: the row's time is what the baseline costs alone.
            described = float(cached[part][1]["seconds"])
        else:
            arrays, described = _describe_part(run, name, part), 0.0
        # What computing the part took (the encoder's fit included where it was fitted for it):
        # the table's extraction time, stored so that reused features still report it.
        arrays["seconds"] = np.float64(described + time.perf_counter() - start)
        artifacts.write_part(path, fingerprint,
                             lambda target, arrays=arrays: io_lib.atomic_save_npz(target, **arrays))
    return artifacts.write_manifest(
        directory, FEATURES_STAGE, fingerprint, outputs=outputs,
        inputs={"baseline": name, "dataset": run.dataset_id,
                "train_part": run.part_id("train"), "test_part": run.part_id("test"),
                **({"descriptors": descriptors.content_id} if baseline.local else {})})


# ---- the stage --------------------------------------------------------------------------------

def score(name: str, train: dict, test: dict, c: float, seed: int) -> dict:
    """One row of the table: standardization + linear SVM fitted on ``train``, metrics on
    ``test``.

    Args:
        name: the baseline's registry key.
        train, test: ``{"features": [N, D], "label": [N], "seconds": []}`` of each part.
        c: the SVM's C.
        seed: the SVM's random_state.

    Returns:
        ``baseline``, ``title``, ``encoding``, ``dim``, ``accuracy``, ``balanced_accuracy``,
        ``recall_negative``, ``recall_positive`` (in [0, 1]; NaN for a class absent from the
        test part, and a ``note``), ``train_images``, ``test_images``, ``extract_seconds`` (both
        parts, when they were computed), ``svm_seconds``.
    """
    baseline = handcrafted.get_baseline(name)
    start = time.perf_counter()
    predicted = handcrafted_eval.fit_and_predict(train["features"], train["label"],
                                                 test["features"], c=c, seed=seed)
    svm_seconds = time.perf_counter() - start
    metrics = metrics_lib.classification_metrics(test["label"], predicted)
    row = {"baseline": name, "title": baseline.title, "encoding": baseline.encoding or "",
           "dim": int(train["features"].shape[1])}
    row.update({key: metrics[key] for key in
                ("accuracy", "balanced_accuracy", "recall_negative", "recall_positive")})
    row.update(train_images=len(train["label"]), test_images=len(test["label"]),
               extract_seconds=round(float(train["seconds"]) + float(test["seconds"]), 3),
               svm_seconds=round(svm_seconds, 3))
    if "note" in metrics:
        row["note"] = metrics["note"]
    return row


def run_stage(run: Run) -> artifacts.Manifest | None:
    """Every baseline of ``--handcrafted``: its features (cached), then its SVM's test metrics
    in ``handcrafted-<fp>/handcrafted.{csv,json}``. Nothing when the list is empty.

    Returns:
        The results' manifest, or None when no baseline is asked for.

    Raises:
        errors.RunError: a local baseline's codebook cannot be fitted (too few descriptors).
        affect_tf.io.ImageDecodeError: an image of a part does not decode (names the file).
    """
    config = run.config
    names = handcrafted.parse_names(config.experiments.handcrafted)
    if not names:
        logging.info("handcrafted: no baseline asked for (--handcrafted is empty); skipped")
        return None
    descriptors: dict[str, artifacts.Manifest] = {}  # by local descriptor, shared
    manifests = {}
    for name in names:
        kind = handcrafted.get_baseline(name).descriptor
        if kind is not None and kind not in descriptors:
            descriptors[kind] = descriptors_step(run, kind)
        manifests[name] = features_step(run, name, descriptors.get(kind))
    c = config.experiments.handcrafted_svm_c
    fingerprint = results_fingerprint(manifests, c, config.seed)
    manifest = run.reuse(STAGE, fingerprint)
    if manifest is not None:
        return manifest
    directory = run.stage_dir(STAGE, fingerprint)
    rows = []
    for name, features in manifests.items():
        parts = run.load_parts(run.stage_dir(FEATURES_STAGE, features.fingerprint), "features",
                               PARTS, FEATURE_KEYS, PER_IMAGE_KEYS)
        rows.append(score(name, parts["train"], parts["test"], c, config.seed))
        logging.info("handcrafted: %s (%s): test accuracy %.4f, balanced %.4f (SVM %.1f s)",
                     name, rows[-1]["title"], rows[-1]["accuracy"],
                     rows[-1]["balanced_accuracy"], rows[-1]["svm_seconds"])
    sweeps.write_csv(rows, directory / CSV_FILE)
    io_lib.atomic_write_json(directory / JSON_FILE, {"svm_c": c, "seed": config.seed,
                                                     "rows": rows})
    manifest = artifacts.write_manifest(
        directory, STAGE, fingerprint, outputs=[CSV_FILE, JSON_FILE],
        inputs={name: features.content_id for name, features in manifests.items()})
    logging.info("handcrafted: %s in %s", ", ".join(names), directory / CSV_FILE)
    return manifest


def finished_results(run: Run) -> dict | None:
    """``handcrafted.json`` of the finished stage for the run's current settings and parts:
    ``{"svm_c", "seed", "rows": [row of :func:`score`], "directory"}`` (``directory``: the
    stage's, relative to the workdir), or None when ``--mode=experiments`` has not computed it,
    or a file of it, of its features or of the local baselines' descriptors no longer verifies
    (logged; the report leaves the table out, and the next ``--mode=experiments`` computes it
    again)."""
    config = run.config
    names = handcrafted.parse_names(config.experiments.handcrafted)
    if not names:
        return None
    try:
        manifests, descriptors = {}, {}
        for name in names:
            kind = handcrafted.get_baseline(name).descriptor
            if kind is not None and kind not in descriptors:
                fingerprint = descriptors_fingerprint(run, kind)
                descriptors[kind] = artifacts.read_manifest(
                    run.stage_dir(DESCRIPTORS_STAGE, fingerprint), fingerprint)
                if descriptors[kind] is None:
                    return None
            fingerprint = features_fingerprint(run, name, descriptors.get(kind))
            manifests[name] = artifacts.read_manifest(
                run.stage_dir(FEATURES_STAGE, fingerprint), fingerprint)
            if manifests[name] is None:
                return None
        fingerprint = results_fingerprint(manifests, config.experiments.handcrafted_svm_c,
                                          config.seed)
        directory = run.stage_dir(STAGE, fingerprint)
        if artifacts.read_manifest(directory, fingerprint) is None:
            return None
    except artifacts.DamagedArtifactError as error:
        logging.warning("report: no hand-crafted baselines: %s; --mode=experiments computes "
                        "them again", error)
        return None
    results = json.loads((directory / JSON_FILE).read_text())
    return {**results, "directory": str(pathlib.Path(directory).relative_to(run.workdir))}
