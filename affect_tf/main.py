r"""Command line of affect_tf: flags -> Config -> the stages of --mode.

    python -m affect_tf.main --flagfile=configs/demo.flags
    python -m affect_tf.main --flagfile=configs/fi.flags --mode=train

Run flagfiles from the repository root (they nest ``--flagfile=configs/base.flags``). This is the
only module that reads flags; everything else takes a :class:`affect_tf.config.Config`.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from affect_tf import config as config_lib  # noqa: E402

_D = config_lib  # Defaults come from the dataclasses, so flags and Config never disagree.
_data, _prop, _model = _D.DataConfig(), _D.ProposalConfig(), _D.ModelConfig()
_train, _regions, _fusion, _run = _D.TrainConfig(), _D.RegionConfig(), _D.FusionConfig(), _D.Config()

# Run.
flags.DEFINE_enum("mode", _run.mode, _D.MODES, "Which stage(s) to run; 'all' chains them.")
flags.DEFINE_string("workdir", _run.workdir, "Where every output of the run goes.")
flags.DEFINE_integer("eval_batch_size", _run.eval_batch_size, "Images per evaluation batch.")
flags.DEFINE_integer("num_workers", _run.num_workers,
                     "Worker processes of the local proposal stage (0: one per CPU core).")
flags.DEFINE_float("proposal_commit_seconds", _run.proposal_commit_seconds,
                   "Commit a proposal cache chunk at least this often (seconds of work at risk).")
flags.DEFINE_enum("proposal_scope", _run.proposal_scope, _D.PROPOSAL_SCOPES,
                  "Proposals for every image (all) or only this run's validation/test parts.")
flags.DEFINE_enum("proposal_runner", _run.proposal_runner, _D.PROPOSAL_RUNNERS,
                  "Proposal stage on local worker processes or as an Apache Beam pipeline.")
flags.DEFINE_string("beam_pipeline_options", _run.beam_pipeline_options,
                    "Apache Beam options (space-separated), e.g. '--runner=DataflowRunner ...'.")
flags.DEFINE_boolean("ten_crop", _run.ten_crop, "Whole-image test on 10 crops (authors' code).")
flags.DEFINE_integer("region_image_size", _run.region_image_size,
                     "Evaluation: side of the warped image region crops are taken from.")
# Data.
flags.DEFINE_string("dataset", _data.dataset, "TFDS name, e.g. fi or twitter1/five_agree.")
flags.DEFINE_string("data_dir", _data.data_dir, "TFDS data directory (empty: TFDS default).")
flags.DEFINE_string("manual_dir", _data.manual_dir, "Folder holding the manual download.")
flags.DEFINE_integer("fold", _data.fold, "Cross-validation fold used as test (0-based).")
flags.DEFINE_integer("num_folds", _data.num_folds, "Folds of the cross-validation.")
flags.DEFINE_integer("split_seed", _data.split_seed, "Seed of the protocol splits.")
flags.DEFINE_float("validation_fraction", _data.validation_fraction,
                   "Share of the training part held out for validation.")
flags.DEFINE_float("test_fraction", _data.test_fraction, "Test share of the holdout protocol.")
flags.DEFINE_integer("max_examples", _data.max_examples, "Cap per split (0: all; smoke runs).")
# Proposals.
flags.DEFINE_enum("edge_source", _prop.edge_source, _D.EDGE_SOURCES, "Edge map for EdgeBoxes.")
flags.DEFINE_string("sed_model_path", _prop.sed_model_path, "Structured-edge model.yml.gz.")
flags.DEFINE_integer("proposal_max_side", _prop.max_side, "Longer side for proposals (px).")
flags.DEFINE_float("min_box_area", _prop.min_box_area, "Drop smaller boxes (px at max side).")
flags.DEFINE_float("max_aspect_ratio", _prop.max_aspect_ratio, "Drop boxes more elongated.")
flags.DEFINE_integer("min_box_side", _prop.min_box_side, "Authors' filter: min side (0: off).")
flags.DEFINE_integer("max_box_side", _prop.max_box_side, "Authors' filter: max side (0: off).")
flags.DEFINE_integer("max_boxes", _prop.max_boxes, "EdgeBoxes boxes before filtering.")
flags.DEFINE_integer("num_candidates", _prop.num_candidates, "m, candidates after normalized cut.")
flags.DEFINE_enum("affinity", _prop.affinity, _D.AFFINITIES, "Normalized-cut affinity.")
flags.DEFINE_integer("kmeans_n_init", _prop.kmeans_n_init, "k-means restarts.")
flags.DEFINE_integer("proposal_seed", _prop.seed, "Seed of the proposal selection.")
# Model.
flags.DEFINE_string("weights", _model.weights, "imagenet, hed, none, or a weights file path.")
flags.DEFINE_enum("head", _model.head, _D.HEADS, "Classifier head.")
flags.DEFINE_integer("hidden_units", _model.hidden_units, "Hidden units of the gap head.")
flags.DEFINE_float("dropout", _model.dropout, "Dropout rate of the head.")
flags.DEFINE_integer("image_size", _model.image_size, "CNN input side (images and crops).")
flags.DEFINE_integer("region_context", _model.region_context, "Context pixels around regions.")
# Training.
flags.DEFINE_integer("batch_size", _train.batch_size, "Training batch size.")
flags.DEFINE_integer("steps", _train.steps, "SGD iterations.")
flags.DEFINE_float("conv_learning_rate", _train.conv_learning_rate, "LR of pretrained layers.")
flags.DEFINE_float("head_learning_rate", _train.head_learning_rate, "LR of the new last layer.")
flags.DEFINE_float("momentum", _train.momentum, "SGD momentum.")
flags.DEFINE_float("weight_decay", _train.weight_decay, "L2 weight decay.")
flags.DEFINE_integer("lr_decay_every", _train.lr_decay_every, "Step decay period (0: none).")
flags.DEFINE_float("lr_decay_factor", _train.lr_decay_factor, "Step decay divisor.")
flags.DEFINE_integer("resize_size", _train.resize_size, "Resize before the random crop.")
flags.DEFINE_integer("checkpoint_every", _train.checkpoint_every, "Steps between checkpoints.")
flags.DEFINE_integer("log_every", _train.log_every, "Steps between progress lines.")
flags.DEFINE_string("trainable_from", _train.trainable_from, "First trainable layer (empty: all).")
flags.DEFINE_integer("seed", _train.seed, "Seed of initialization, shuffling, augmentation.")
# Regions and fusion.
flags.DEFINE_integer("top_k", _regions.top_k, "K affective regions per image.")
flags.DEFINE_float("alpha", _regions.alpha, "Weight of Senti in the AR score (Eq. 5).")
flags.DEFINE_enum("selection", _regions.selection, _D.SELECTIONS, "Rank regions by this score.")
flags.DEFINE_enum("obj_norm", _regions.obj_norm, _D.OBJ_NORMS, "Objectness normalization.")
flags.DEFINE_enum("ar_formula", _regions.ar_formula, _D.AR_FORMULAS, "AR score formula.")
flags.DEFINE_integer("crops_per_call", _regions.crops_per_call, "Region crops per CNN call.")
flags.DEFINE_enum("fusion", _fusion.fusion, _D.FUSIONS, "The reported fusion.")
flags.DEFINE_float("beta", _fusion.beta, "Weight of the regions in sum pooling (Eq. 7).")
flags.DEFINE_enum("svm_kernel", _fusion.svm_kernel, _D.SVM_KERNELS, "SVM of the concatenation.")
flags.DEFINE_float("svm_c", _fusion.svm_c, "SVM regularization constant.")

FLAGS = flags.FLAGS


def config_from_flags(values=FLAGS) -> config_lib.Config:
    """Builds and validates the run configuration from parsed flags."""
    v = values
    return config_lib.Config(
        workdir=v.workdir, mode=v.mode, eval_batch_size=v.eval_batch_size,
        num_workers=v.num_workers,
        proposal_commit_seconds=v.proposal_commit_seconds, ten_crop=v.ten_crop,
        proposal_scope=v.proposal_scope, proposal_runner=v.proposal_runner,
        beam_pipeline_options=v.beam_pipeline_options,
        region_image_size=v.region_image_size,
        data=config_lib.DataConfig(
            dataset=v.dataset, data_dir=v.data_dir, manual_dir=v.manual_dir, fold=v.fold,
            num_folds=v.num_folds, split_seed=v.split_seed,
            validation_fraction=v.validation_fraction, test_fraction=v.test_fraction,
            max_examples=v.max_examples),
        proposals=config_lib.ProposalConfig(
            edge_source=v.edge_source, sed_model_path=v.sed_model_path,
            max_side=v.proposal_max_side, min_box_area=v.min_box_area,
            max_aspect_ratio=v.max_aspect_ratio, min_box_side=v.min_box_side,
            max_box_side=v.max_box_side, max_boxes=v.max_boxes, num_candidates=v.num_candidates,
            affinity=v.affinity, kmeans_n_init=v.kmeans_n_init, seed=v.proposal_seed),
        model=config_lib.ModelConfig(
            weights=v.weights, head=v.head, hidden_units=v.hidden_units, dropout=v.dropout,
            image_size=v.image_size, region_context=v.region_context),
        train=config_lib.TrainConfig(
            batch_size=v.batch_size, steps=v.steps, conv_learning_rate=v.conv_learning_rate,
            head_learning_rate=v.head_learning_rate, momentum=v.momentum,
            weight_decay=v.weight_decay, lr_decay_every=v.lr_decay_every,
            lr_decay_factor=v.lr_decay_factor, resize_size=v.resize_size,
            checkpoint_every=v.checkpoint_every, log_every=v.log_every,
            trainable_from=v.trainable_from, seed=v.seed),
        regions=config_lib.RegionConfig(
            top_k=v.top_k, alpha=v.alpha, selection=v.selection, obj_norm=v.obj_norm,
            ar_formula=v.ar_formula, crops_per_call=v.crops_per_call),
        fusion=config_lib.FusionConfig(
            fusion=v.fusion, beta=v.beta, svm_kernel=v.svm_kernel, svm_c=v.svm_c),
    ).validate()


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments (use --flag=value): {argv[1:]}")
    try:
        config = config_from_flags()
    except config_lib.ConfigError as error:
        logging.error("Invalid configuration: %s", error)
        return 2
    from affect_tf import stages  # noqa: PLC0415  (TensorFlow loads only after the flags parse)

    stages.run(config)
    return 0


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    sys.exit(run())
