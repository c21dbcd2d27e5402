"""The hand-crafted baselines of ``--mode=experiments`` (the paper's Tables 2-3): each baseline's
features of the run's training and test parts, then a linear SVM per baseline.

Two steps with their own fingerprints, as the pretrained-features baseline
(:func:`affect_tf.stages.baseline_stage`), so that a new SVM C refits in seconds:

* ``handcrafted_features-<fp>/``, one per baseline: ``features_{train,test}.npz`` (each with its
  ``.sha256.json`` record, so a killed run keeps a finished part) and ``manifest.json``. The
  fingerprint covers the baseline, every descriptor parameter of
  :mod:`affect_tf.experiments.handcrafted`, the longer side images are shrunk to, for a local
  baseline its encoder (kind, codebook size, descriptor sample, the run's seed: the codebook is
  fitted on the training part only), and the two parts' ids (dataset content and filenames).
  Not the SVM's C.
* ``handcrafted-<fp>/``: ``handcrafted.csv`` and ``handcrafted.json`` (the same rows, plus C),
  ``manifest.json``. The fingerprint covers each features manifest's content id, C and the seed.

Images are the dataset's stored bytes, decoded by :func:`affect_tf.io.decode_image_bytes` (the
proposal stage's decoder) on the pool's workers (:func:`handcrafted_eval.ordered_map`, every core
this process may use); the thread that feeds the pool only reads records. Damaged outputs are
never trusted: a manifest that does not verify moves the damaged file aside
(:meth:`affect_tf.workspace.Run.reuse`) and the part is computed again.

The report reads ``handcrafted.json`` through :func:`finished_results` (no TensorFlow call, no
image).
"""

from __future__ import annotations

import json
import logging
import pathlib
import time
from collections.abc import Iterator

import numpy as np

from affect_tf import artifacts, errors
from affect_tf import config as config_lib
from affect_tf import data as data_lib
from affect_tf import io as io_lib
from affect_tf import metrics as metrics_lib
from affect_tf.experiments import handcrafted, handcrafted_eval, sweeps
from affect_tf.workspace import Run

FEATURES_STAGE = "handcrafted_features"
STAGE = "handcrafted"
# Fitted on the training part, scored on the test part; no setting is chosen on validation.
PARTS = ("train", "test")
FEATURE_KEYS = ("features", "label", "filename", "seconds")
PER_IMAGE_KEYS = ("features", "label", "filename")
CSV_FILE = "handcrafted.csv"
JSON_FILE = "handcrafted.json"
# Bumped when the descriptors' or encoders' code changes in a way their parameters do not show,
# so features of the older code are not reused.
FEATURES_FORMAT = 1
# Bumped when the results' form changes.
RESULTS_FORMAT = 1


def descriptor_parameters() -> dict:
    """Every numeric parameter of :mod:`affect_tf.experiments.handcrafted` (its upper-case
    constants: colour levels, LBP bins, Gabor and GIST banks, SIFT and HOG geometry, the k-means
    and GMM settings, ...), so that changing any of them changes the features' fingerprint."""
    return {name: value for name, value in sorted(vars(handcrafted).items())
            if name.lstrip("_").isupper() and isinstance(value, (int, float))
            and not isinstance(value, bool)}


def features_settings(name: str, codebook_size: int, seed: int) -> dict:
    """What one baseline's features depend on besides the images (the fingerprint's settings).

    Args:
        name: a key of :data:`handcrafted.REGISTRY`.
        codebook_size: ``--handcrafted_codebook_size`` (0: the encoding's default).
        seed: the run's seed (the encoder's descriptor sample and clustering).

    Returns:
        A JSON-able dict; a global baseline's has no encoder, hence no seed: its features are
        the same for any seed.
    """
    baseline = handcrafted.get_baseline(name)
    settings = {"baseline": name, "max_side": handcrafted.MAX_SIDE,
                "parameters": descriptor_parameters(), "format": FEATURES_FORMAT}
    if baseline.local:
        settings["encoder"] = {
            "kind": baseline.encoding, "size": resolved_codebook_size(name, codebook_size),
            "max_descriptors": handcrafted_eval.DEFAULT_MAX_DESCRIPTORS, "seed": seed}
    return settings


def resolved_codebook_size(name: str, codebook_size: int) -> int | None:
    """K of a local baseline's encoder (0: its encoding's default); None for a global one."""
    baseline = handcrafted.get_baseline(name)
    if not baseline.local:
        return None
    return codebook_size or handcrafted.DEFAULT_CODEBOOK_SIZES[baseline.encoding]


def features_fingerprint(run: Run, name: str) -> str:
    """The fingerprint of ``handcrafted_features-<fp>/`` of baseline ``name`` in ``run``."""
    experiments = run.config.experiments
    return config_lib.fingerprint(
        FEATURES_STAGE, features_settings(name, experiments.handcrafted_codebook_size,
                                          run.config.seed),
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
    sized and iterable twice (an encoder's fit, then the encoding) without holding the part's
    images in memory. Each pass records the filenames and labels in the order it read them."""

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


# ---- the features of one baseline -------------------------------------------------------------

def _fit_encoder(run: Run, name: str) -> handcrafted.Encoder:
    """The local baseline's encoder, fitted on the training part's descriptors only."""
    size = resolved_codebook_size(name, run.config.experiments.handcrafted_codebook_size)
    start = time.perf_counter()
    try:
        encoder = handcrafted_eval.fit_descriptor_encoder(
            _Part(run, "train"), name, size=size, seed=run.config.seed, decode=_decode)
    except ValueError as error:
        # The library's message names the size and the descriptors it received.
        raise errors.RunError(
            f"{name}: its encoder cannot be fitted on the training part of {run.where} "
            f"({error}). Pass a smaller --handcrafted_codebook_size, or leave {name} out of "
            "--handcrafted.") from error
    logging.info("handcrafted: %s: %s encoder of K = %d fitted on the training part (%.1f s)",
                 name, encoder.kind, encoder.size, time.perf_counter() - start)
    return encoder


def _describe_part(run: Run, name: str, part: str,
                   encoder: handcrafted.Encoder | None) -> dict[str, np.ndarray]:
    """``{"features": [N, D] float32, "label": [N] int64, "filename": [N] str}`` of a part."""
    items = _Part(run, part)
    logging.info("handcrafted: %s of the %s part, %d images", name, part, len(items))
    # Rows in the order the part was read, which the filenames and labels recorded.
    features = handcrafted_eval.extract_features(items, name, encoder=encoder, decode=_decode)
    return {"features": features, "label": np.asarray(items.labels, np.int64),
            "filename": np.asarray(items.filenames)}


def features_step(run: Run, name: str) -> artifacts.Manifest:
    """One baseline's features of the training and test parts, reused when their manifest
    verifies; else each part whose record does not verify is computed (the encoder, for a
    local baseline, fitted once on the training part) and the manifest written.

    Returns:
        The features stage's manifest (its content id feeds the results' fingerprint).
    """
    baseline = handcrafted.get_baseline(name)
    fingerprint = features_fingerprint(run, name)
    manifest = run.reuse(FEATURES_STAGE, fingerprint)
    if manifest is not None:
        return manifest
    directory = run.stage_dir(FEATURES_STAGE, fingerprint)
    encoder, outputs = None, []
    for part in PARTS:
        path = directory / f"features_{part}.npz"
        outputs.append(path.name)
        if artifacts.verified_part(path, fingerprint):
            continue  # Written whole before a kill, or kept when another part was damaged.
        start = time.perf_counter()
        if baseline.local and encoder is None:
            encoder = _fit_encoder(run, name)
        arrays = _describe_part(run, name, part, encoder)
        # What computing the part took (the encoder's fit included where it was fitted for it):
        # the table's extraction time, stored so that reused features still report it.
        arrays["seconds"] = np.float64(time.perf_counter() - start)
        artifacts.write_part(path, fingerprint,
                             lambda target, arrays=arrays: io_lib.atomic_save_npz(target, **arrays))
    return artifacts.write_manifest(
        directory, FEATURES_STAGE, fingerprint, outputs=outputs,
        inputs={"baseline": name, "dataset": run.dataset_id,
                "train_part": run.part_id("train"), "test_part": run.part_id("test")})


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
    manifests = {name: features_step(run, name) for name in names}
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
    or a file of it or of its features no longer verifies (logged; the report leaves the table
    out, and the next ``--mode=experiments`` computes it again)."""
    config = run.config
    names = handcrafted.parse_names(config.experiments.handcrafted)
    if not names:
        return None
    try:
        manifests = {}
        for name in names:
            fingerprint = features_fingerprint(run, name)
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
