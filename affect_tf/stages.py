"""The stages of a run and their chaining: prepare -> proposals -> train -> evaluate -> report.

Each stage reads inputs -> does its work -> writes outputs: where its directory is, its
fingerprint and the verified lookups of earlier stages' outputs are the workspace's
(:class:`affect_tf.workspace.Run`); a stage finishes by writing a manifest with the hash of every
output (:mod:`affect_tf.artifacts`). It is skipped only when that manifest verifies, so a changed
input always reruns what depends on it, and a damaged output is moved (with its manifest) to
``<workdir>/damaged/`` and recomputed, or stops the run with a message naming the file and the
fix. Stages that resume part by part (:func:`_resume_parts`) keep a part after a kill only when
its own record verifies it (:func:`affect_tf.artifacts.verified_part`).

``evaluate`` has two steps with their own fingerprints: ``predict`` (the CNN over whole images and
every candidate region; depends on the classifier, the proposals and the crop settings) and
``fuse`` (top-K by AR / Obj / Senti and the fusions; depends on K, alpha, beta, ...), so changing
K, alpha, beta or the fusion reuses the CNN's predictions.

``baseline`` (the paper's "VGGNet (ImageNet features)" row, :mod:`affect_tf.baselines`) has two
steps likewise: features of the pretrained, not fine-tuned backbone for the training and test
parts (depends on the weights' content, the view settings and the parts), then PCA + linear SVM
(depends on the features and the baseline's PCA and C), so a new PCA or C refits in seconds.

Layout of ``<workdir>``::

    .lock                       the running run's pid and host (one run per workdir)
    config.json                 the last finished run's full configuration
    splits-<fp>.json            protocol splits (train / validation / test filenames), checksummed
    proposals/<cache>/          proposal cache (chunks + meta.json), resumable
    train-<fp>/                 checkpoints/ (the last), classifier.weights.h5, manifest.json
    classifier.weights.h5       link to the latest fine-tuned classifier (for transfer)
    predict-<fp>/               predictions_{validation,test}.npz (+ .sha256.json records),
                                manifest.json
    eval-<fp>/                  metrics.json, svm_*/, figure_inputs.npz, manifest.json
    baseline_features-<fp>/     features_{train,test}.npz (+ records), manifest.json
    baseline-<fp>/              metrics.json (the baseline's row), manifest.json
    experiments-<fp>/           --mode=experiments: sweeps and region quality (CSV, PNG,
                                summary.json), figures/ (per test image: saliency, Figs. 3,
                                4, 9), manifest.json
    handcrafted_features-<fp>/  --mode=experiments: one hand-crafted baseline's features of the
                                training and test parts (+ records), manifest.json
    handcrafted-<fp>/           its linear SVMs' rows: handcrafted.csv, handcrafted.json,
                                manifest.json
    metrics.json, report.md, figures/   the latest evaluation and its report, written together
    damaged/                    files found damaged, moved aside
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import pathlib
import shutil
import time
from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from affect_tf import artifacts
from affect_tf import baselines as baselines_lib
from affect_tf import data as data_lib
from affect_tf import errors
from affect_tf import evaluate as evaluate_lib
from affect_tf import io as io_lib
from affect_tf import model as model_lib
from affect_tf import preflight
from affect_tf import report as report_lib
from affect_tf import train as train_lib
from affect_tf import workspace
from affect_tf.config import Config
from affect_tf.proposals import cache as cache_lib
from affect_tf.proposals import local_runner
from affect_tf.workspace import (
    BASELINE_PARTS,
    EVAL_PARTS,
    FEATURE_KEYS,
    Run,
)

# The experiments' cheap half (sweeps and region quality re-read the evaluation's predictions;
# the figures of a few test images) is part of the whole job; the hand-crafted baselines, which
# describe every image of the parts, are not.
STAGES = ("prepare", "proposals", "train", "evaluate", "baseline", "experiments", "report")
# The report always follows an evaluation (and the baseline, which --nobaseline turns off), so
# report.md and the root metrics.json describe the same one.
MODE_STAGES = {"all": STAGES, "evaluate": ("evaluate", "baseline", "report"),
               # On request: the hand-crafted baselines too, then the report collects them.
               "experiments": ("experiments", "handcrafted", "report")}
# Stages that run once for the dataset; the others run once per fold of the protocol.
SHARED_STAGES = ("prepare", "proposals")


def proposal_cache(run: Run) -> cache_lib.ProposalCache:
    """The run's proposal cache (:meth:`affect_tf.workspace.Run.proposal_cache`)."""
    return run.proposal_cache()


def _beam_options(config: Config):
    """PipelineOptions from ``--beam_pipeline_options`` (None: Beam's defaults, DirectRunner)."""
    if not config.proposal_stage.beam_pipeline_options:
        return None
    from apache_beam.options.pipeline_options import PipelineOptions  # noqa: PLC0415

    return PipelineOptions(config.proposal_stage.beam_pipeline_options.split())


# ---- the stages ----------------------------------------------------------------------------------

def prepare_stage(run: Run) -> None:
    start = time.perf_counter()
    builder = data_lib.prepare(run.config.data, beam_options=_beam_options(run.config))
    run.attach_builder(builder)
    logging.info("prepare: %s ready in %s (%.0f s): %s", builder.info.full_name, builder.data_dir,
                 time.perf_counter() - start,
                 {name: split.num_examples for name, split in builder.info.splits.items()})
    folds = run.folds()
    for fold_run in ([run] if folds is None else [run.for_fold(fold) for fold in folds]):
        fold_run.workdir.mkdir(parents=True, exist_ok=True)
        splits = fold_run.splits
        logging.info("prepare: %s: protocol %s (%s): %d train / %d validation / %d test",
                     fold_run.workdir, splits.protocol, splits.description, len(splits.train),
                     len(splits.validation), len(splits.test))
        try:
            data_lib.check_parts(splits, fold_run.where)
        except errors.DataError as error:  # Preparing alone is fine; training will refuse.
            logging.warning("prepare: %s", error)


def proposals_stage(run: Run) -> None:
    """Proposals for every image (``proposal_scope=all``) or the validation and test parts."""
    config = run.config
    cache = run.proposal_cache()
    if run.folds() is not None or config.proposal_stage.proposal_scope == "all":
        # Every image is a test image in some fold: the folds share one cache.
        wanted = set(run.index().filenames.tolist())
    else:
        wanted = set(run.splits.validation) | set(run.splits.test)
    todo = wanted - cache.done_filenames(repair=True)
    if not todo:
        logging.info("proposals: all %d images already in %s; skipped", len(wanted),
                     cache.directory)
        return
    logging.info("proposals: %d of %d images to do (%s edges, %s runner), cache %s", len(todo),
                 len(wanted), config.proposals.edge_source, config.proposal_stage.proposal_runner,
                 cache.directory)
    if config.proposal_stage.proposal_runner == "beam":
        from affect_tf.proposals import beam_runner  # noqa: PLC0415

        stats = beam_runner.run_beam_proposal_stage_tfds(
            run.builder, cache, config.proposals, filenames=todo,
            beam_options=_beam_options(config))
    else:
        images = ((name, data) for name, data in data_lib.encoded_images(run.builder)
                  if name in todo)
        stats = local_runner.run_proposal_stage(
            images, cache, config.proposals,
            num_workers=config.proposal_stage.num_workers or os.cpu_count() or 1,
            commit_seconds=config.proposal_stage.proposal_commit_seconds, total=len(todo))
    logging.info("proposals: %s", stats)


def train_stage(run: Run) -> None:
    config = run.config
    # Before any image is trained on: parts that could give no number stop the run here.
    data_lib.check_parts(run.splits, run.where)
    directory, stage_fingerprint = run.train_dir, run.train_fingerprint
    final = directory / train_lib.CLASSIFIER_FILE
    existed = directory.exists()
    manifest = run.reuse("train", stage_fingerprint)
    if manifest is None:
        if final.exists():  # Written by a run whose manifest is missing or does not verify.
            artifacts.quarantine(final, run.workdir)
        _train(run, existed)
        manifest = artifacts.write_manifest(
            directory, "train", stage_fingerprint, outputs=[train_lib.CLASSIFIER_FILE],
            inputs={"train_part": run.part_id("train"), "dataset": run.dataset_id,
                    "weights": workspace.weights_id(config.model.weights)})
    run.verified["train"] = manifest
    _link_latest_classifier(final, run.workdir / train_lib.CLASSIFIER_FILE)


def _train(run: Run, existed: bool) -> None:
    """Fine-tunes (resuming from the last checkpoint); a run that fails before its first
    checkpoint leaves no directory behind (``existed``: the directory was there before)."""
    config = run.config
    try:
        trainer = train_lib.Trainer(
            config.model, config.train, str(run.train_dir), seed=config.seed,
            summary_dir=str(run.workdir / "tensorboard" / run.train_dir.name))
        io_lib.atomic_write_json(run.train_dir / "config.json", dataclasses.asdict(config))
        start_step = trainer.restore()
        dataset = data_lib.training_pipeline(
            data_lib.examples(run.builder, run.splits.train), image_size=config.model.image_size,
            resize_size=config.model.resize_size, batch_size=config.train.batch_size,
            seed=config.seed, skip_batches=start_step,
            augmentation=config.train.augmentation, crop_area_min=config.train.crop_area_min)
        logging.info("train: %d images, %d steps of %d, weights %s, head %s",
                     len(run.splits.train), config.train.steps, config.train.batch_size,
                     config.model.weights, config.model.resolved_head)
        # Precise batch-norm statistics over the training part's evaluation views (train.py).
        calibration = data_lib.calibration_pipeline(
            data_lib.examples(run.builder, run.splits.train), image_size=config.model.image_size,
            resize_size=config.model.resize_size, batch_size=config.evaluation.eval_batch_size)
        summary = trainer.fit(dataset, start_step=start_step, log=logging.info,
                              calibration=calibration)
        logging.info("train: done %s", summary)
    except BaseException:
        checkpoints = run.train_dir / "checkpoints"
        if not existed and not any(checkpoints.glob("ckpt-*.index")):
            shutil.rmtree(run.train_dir, ignore_errors=True)
        raise


def _link_latest_classifier(source: pathlib.Path, target: pathlib.Path) -> None:
    """A stable path for transfer to the small sets (configs/*.flags use runs/fi/...): a hard
    link, so the 57 MB-500 MB file is stored once; a copy where links are impossible."""
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copyfile(source, temporary)
    os.replace(temporary, target)


def _resume_parts(directory: pathlib.Path, stage_fingerprint: str, prefix: str,
                  parts: tuple[str, ...], make_compute) -> list[str]:
    """The resumable per-part loop of a stage: ``<prefix>_<part>.npz`` for each part.

    A part whose record verifies (:func:`affect_tf.artifacts.verified_part`: written whole by a
    run with this fingerprint, unchanged since) is kept; any other is computed and written with
    its record. The model is built only when a part needs computing.

    Args:
        directory: the stage directory.
        stage_fingerprint: the stage's fingerprint.
        prefix: the file name's prefix (``predictions``, ``features``).
        parts: the parts, in order.
        make_compute: ``() -> compute``, where ``compute(part) -> {name: array}``; called once.

    Returns:
        The part files' names, for the stage's manifest.
    """
    directory.mkdir(parents=True, exist_ok=True)
    compute, names = None, []
    for part in parts:
        path = directory / f"{prefix}_{part}.npz"
        names.append(path.name)
        if artifacts.verified_part(path, stage_fingerprint):
            continue  # Finished before a kill; the manifest will cover it.
        if compute is None:
            compute = make_compute()
        arrays = compute(part)
        artifacts.write_part(path, stage_fingerprint,
                             lambda target, arrays=arrays: io_lib.atomic_save_npz(target, **arrays))
    return names


def predict_stage(run: Run) -> artifacts.Manifest:
    """Whole-image and candidate-region predictions of the validation and test parts."""
    config = run.config
    directory, stage_fingerprint = run.predict_dir, run.predict_fingerprint
    manifest = run.reuse("predict", stage_fingerprint)
    if manifest is not None:
        return manifest
    extra_keys = tuple(k for k in ("object_box",) if k in run.builder.info.features)

    def make_compute():
        classifier = train_lib.load_classifier(config.model, str(run.train_dir))
        predict = evaluate_lib.make_predict_fn(classifier, config)

        def compute(part: str) -> dict:
            names = getattr(run.splits, part)
            batches = data_lib.evaluation_pipeline(
                data_lib.examples(run.builder, names),
                resize_size=config.evaluation.region_image_size,
                batch_size=config.evaluation.eval_batch_size, proposals=run.proposals(),
                extra_keys=extra_keys)
            logging.info("evaluate: %s, %d images", part, len(names))
            return evaluate_lib.collect_predictions(
                predict, batches.as_numpy_iterator(), extra_keys=extra_keys, total=len(names))

        return compute

    outputs = _resume_parts(directory, stage_fingerprint, "predictions", EVAL_PARTS, make_compute)
    run.verified["predict"] = artifacts.write_manifest(
        directory, "predict", stage_fingerprint, outputs=outputs,
        inputs={"classifier": run.train_manifest().content_id,
                "proposals": run.proposals().content_id()})
    return run.verified["predict"]


def evaluate_stage(run: Run) -> None:
    """Predictions (reused when their inputs are unchanged), then every selection x fusion, and
    what the report's figure shows (so the report reads no dataset)."""
    config = run.config
    predictions_manifest = predict_stage(run)
    stage_fingerprint = run.eval_fingerprint(predictions_manifest)
    if run.reuse("eval", stage_fingerprint) is not None:
        return
    predictions = run.load_predictions()
    directory = run.stage_dir("eval", stage_fingerprint)
    payload, svms = _evaluation(run, predictions)
    outputs = ["metrics.json", report_lib.FIGURE_FILE]
    for selection, svm in svms.items():
        svm.save(str(directory / f"svm_{selection}"))
        outputs += [str(path.relative_to(directory))
                    for path in sorted((directory / f"svm_{selection}").iterdir())]
    io_lib.atomic_write_json(directory / "metrics.json", payload)
    _save_figure_inputs(run, predictions["test"], directory / report_lib.FIGURE_FILE)
    _write_eval_summaries(run.workdir / "tensorboard" / directory.name, payload, config.train.steps)
    run.verified["eval"] = artifacts.write_manifest(
        directory, "evaluate", stage_fingerprint, outputs=outputs,
        inputs={"predictions": predictions_manifest.content_id})
    reported = payload["results"][payload["reported"]]
    logging.info("evaluate: global accuracy %.4f, %s accuracy %.4f",
                 payload["results"]["global"]["accuracy"], payload["reported"],
                 reported["accuracy"])


def _evaluation(run: Run, predictions: dict[str, dict]) -> tuple[dict, dict]:
    """metrics.json's content (every row at K and at K = 1, hit rates, the temperature Senti
    read) and the fitted SVMs."""
    config = run.scoring_config(predictions["validation"])
    results, svms = evaluate_lib.evaluate_all(predictions["validation"], predictions["test"],
                                              config)
    payload = {
        "dataset": config.data.dataset,
        "protocol": run.splits.description,
        "counts": {part: len(getattr(run.splits, part))
                   for part in ("train", "validation", "test")},
        "reported": f"{config.regions.selection}+{config.fusion.fusion}",
        "top_k": config.regions.top_k,
        # 1 unless --senti_calibration fitted it (affect_tf/calibration.py).
        "senti_temperature": config.regions.senti_temperature,
        # One fold of several: never set beside the paper's mean over folds (report.py).
        "fold": config.data.fold if run.protocol in data_lib.FOLD_PROTOCOLS else None,
        "results": results,
    }
    if config.regions.top_k != 1:
        # The K = 1 rows of the paper's Tables 2-3, from the same predictions (no CNN call).
        one_region = dataclasses.replace(config, regions=dataclasses.replace(config.regions,
                                                                             top_k=1))
        payload["results_k1"], _ = evaluate_lib.evaluate_all(
            predictions["validation"], predictions["test"], one_region)
    if "object_box" in predictions["test"]:
        payload["region_hit_rate"] = evaluate_lib.region_hit_rates(predictions["test"],
                                                                   config.regions)
    return payload, svms


def _save_figure_inputs(run: Run, test: dict, path: pathlib.Path) -> None:
    """The figure's images (encoded, as stored in the dataset) and their top-1 boxes."""
    choice = evaluate_lib.figure_choice(test, run.scoring_config().regions)
    names = choice["filename"].tolist()
    encoded = _encoded_images(run, names)
    images = {f"image_{index}": np.frombuffer(encoded[name], dtype=np.uint8)
              for index, name in enumerate(names)}
    io_lib.atomic_save_npz(path, **choice, **images)


def _encoded_images(run: Run, names: list[str]) -> dict[str, bytes]:
    """``{image/filename: encoded bytes, as stored in the dataset}`` of ``names``, in their
    order (reads only their examples)."""
    encoded = {example[data_lib.FILENAME_KEY].decode(): example["image"]
               for example in data_lib.examples(run.builder, names).as_numpy_iterator()}
    return {name: encoded[name] for name in names}


def _stimuli_maps(run: Run, names: list[str]) -> Iterator[np.ndarray]:
    """The dataset's stimuli maps of ``names`` (its ``stimuli_map`` feature: EmotionROI's), in
    their order: an iterator of uint8 [H, W] maps, each checked to be its image's size, the size
    the predictions' normalized boxes refer to (:func:`ground_truth.aligned_map`).

    Reads only their examples and keeps each one's encoded map and its image's size, never the
    images: the maps are decoded one at a time as region quality scores them.

    Raises:
        errors.DataError: a name has no example (at the read), or a map does not decode or is
            not its image's size (as the iterator reaches it).
    """
    from affect_tf.experiments import ground_truth  # noqa: PLC0415  (only --mode=experiments)

    if not names:  # An empty filter table cannot be built; nothing to read.
        return iter(())
    stored = {}
    for example in data_lib.examples(run.builder, names).as_numpy_iterator():
        name = example[data_lib.FILENAME_KEY].decode()
        stored[name] = (example["stimuli_map"],
                        ground_truth.encoded_image_size(example["image"], name))
    missing = [name for name in names if name not in stored]
    if missing:
        raise errors.DataError(
            f"{len(missing)} test images of the predictions are not in the dataset, e.g. "
            f"{', '.join(missing[:3])}: the dataset changed after the evaluation; run "
            "--mode=evaluate again.")
    return (ground_truth.aligned_map(*stored[name], name) for name in names)


def _write_eval_summaries(directory: pathlib.Path, metrics: dict, step: int) -> None:
    """TensorBoard scalars of an evaluation: every row's metrics, at the training's last step."""
    writer = tf.summary.create_file_writer(str(directory))
    with writer.as_default(step=step):
        for row, values in metrics["results"].items():
            for key in ("accuracy", "balanced_accuracy", "recall_negative", "recall_positive"):
                tf.summary.scalar(f"test/{row}/{key}", values[key])
        for name, value in metrics.get("region_hit_rate", {}).items():
            tf.summary.scalar(f"test/region_hit_rate/{name}", value)
    writer.close()


def baseline_features_stage(run: Run) -> artifacts.Manifest:
    """Features of the training and test parts' whole images from the pretrained backbone
    (``baseline_weights``, :func:`affect_tf.baselines.backbone_config`)."""
    config = run.config
    backbone = baselines_lib.backbone_config(config)
    directory, stage_fingerprint = run.baseline_features_dir, run.baseline_features_fingerprint
    manifest = run.reuse("baseline_features", stage_fingerprint)
    if manifest is not None:
        return manifest

    def make_compute():
        # The baseline's own weights: a transfer run's classifier file never feeds it.
        extractor, layer = baselines_lib.build_feature_extractor(backbone, seed=config.seed)
        feature_fn = baselines_lib.make_feature_fn(extractor, config)
        logging.info("baseline: %s features of the %s weights (--baseline_weights), not "
                     "fine-tuned", layer, backbone.weights)

        def compute(part: str) -> dict:
            names = getattr(run.splits, part)
            batches = data_lib.evaluation_pipeline(
                data_lib.examples(run.builder, names),
                resize_size=config.evaluation.region_image_size,
                batch_size=config.evaluation.eval_batch_size)
            logging.info("baseline: features of the %s part, %d images", part, len(names))
            arrays = baselines_lib.extract_features(feature_fn, batches.as_numpy_iterator(),
                                                    total=len(names))
            return {**arrays, "layer": np.asarray(layer)}

        return compute

    outputs = _resume_parts(directory, stage_fingerprint, "features", BASELINE_PARTS,
                            make_compute)
    manifest = artifacts.write_manifest(
        directory, "baseline_features", stage_fingerprint, outputs=outputs,
        inputs={"dataset": run.dataset_id, "train_part": run.part_id("train"),
                "test_part": run.part_id("test"),
                "weights": workspace.weights_id(backbone.weights)})
    run.verified["baseline_features"] = manifest
    return manifest


def baseline_stage(run: Run) -> None:
    """The paper's "VGGNet (ImageNet features)" row: features (reused when their inputs are
    unchanged), then standardization, PCA and a linear SVM fitted on the training part."""
    config = run.config
    if not config.baselines.baseline:
        logging.info("baseline: off (--nobaseline); skipped")
        return
    features_manifest = baseline_features_stage(run)
    stage_fingerprint = run.baseline_fingerprint(features_manifest)
    if run.reuse("baseline", stage_fingerprint) is not None:
        return
    directory = run.stage_dir("baseline", stage_fingerprint)
    parts = run.load_parts(run.baseline_features_dir, "features", BASELINE_PARTS, FEATURE_KEYS,
                           ("features", "label", "filename"))
    metrics, details = baselines_lib.evaluate(
        parts["train"], parts["test"], components=config.baselines.baseline_pca_components,
        svm_c=config.baselines.baseline_svm_c, seed=config.seed)
    weights = config.baselines.baseline_weights  # the features' weights, not the classifier's start
    details.update(
        weights=baselines_lib.weights_name(weights),
        imagenet=baselines_lib.is_imagenet(weights),
        layer=str(parts["train"]["layer"]), views=10 if config.evaluation.ten_crop else 1)
    row = baselines_lib.BASELINE_ROW
    io_lib.atomic_write_json(directory / "metrics.json",
                             {"baselines": {row: metrics}, "baseline_details": {row: details}})
    run.verified["baseline"] = artifacts.write_manifest(
        directory, "baseline", stage_fingerprint, outputs=["metrics.json"],
        inputs={"features": features_manifest.content_id})
    logging.info("baseline: %s (%s): accuracy %.4f", row, baselines_lib.describe(details),
                 metrics["accuracy"])


def experiments_stage(run: Run) -> None:
    """The sweeps (Figs. 6-7) and region quality (Section 4.6) from the verified predictions
    (:mod:`affect_tf.experiments.runner`): no CNN pass, seconds on any dataset; then the
    per-image figures of ``experiment_images`` test images, which run the classifier and the
    proposal steps on those images only."""
    from affect_tf.experiments import runner  # noqa: PLC0415  (only this mode needs it)

    predictions_manifest = run.predict_manifest()
    stage_fingerprint = run.experiments_fingerprint(predictions_manifest)
    if run.reuse("experiments", stage_fingerprint) is not None:
        return
    predictions = run.load_predictions()
    directory = run.stage_dir("experiments", stage_fingerprint)
    # The dataset's own stimuli maps (EmotionROI), where it has them: region quality's ground
    # truth; the demo's face map comes from the predictions' object_box inside run_all.
    stimuli_maps = (_stimuli_maps(run, predictions["test"]["filename"].astype(str).tolist())
                    if "stimuli_map" in run.builder.info.features else None)
    outputs, summary = runner.run_all(directory, predictions["validation"], predictions["test"],
                                      run.scoring_config(predictions["validation"]),
                                      stimuli_maps=stimuli_maps)
    if run.config.experiments.experiment_images > 0:
        outputs += _experiment_figures(run, directory, predictions["test"], summary)
    run.verified["experiments"] = artifacts.write_manifest(
        directory, "experiments", stage_fingerprint, outputs=outputs,
        inputs={"predictions": predictions_manifest.content_id})
    best = summary["best_alpha_beta_on_validation"]
    logging.info("experiments: %s; best on validation: alpha %.1f, beta %.1f (AR + sum %.4f)",
                 directory, best["alpha"], best["beta"], best["validation_ar_sum"])


def _experiment_figures(run: Run, directory: pathlib.Path, test: dict, summary: dict) -> list[str]:
    """The per-image figures of ``experiment_images`` test images
    (:mod:`affect_tf.experiments.figures`), listed in ``summary["figures"]`` (summary.json is
    written again with them). Returns the files written, relative to ``directory``."""
    from affect_tf.experiments import figures  # noqa: PLC0415  (only this mode needs it)

    config = run.scoring_config()
    start = time.perf_counter()
    images = {}
    for name, data in _encoded_images(run, figures.chosen_filenames(
            test, config.regions, config.experiments.experiment_images)).items():
        try:  # The proposal stage's decoder: Fig. 3 recomputes its pool from these pixels.
            images[name] = io_lib.decode_image_bytes(data, name)
        except io_lib.ImageDecodeError as error:
            logging.warning("experiments: no figures of %s: %s", name, error)
    classifier = train_lib.load_classifier(config.model, str(run.train_dir)) if images else None
    outputs, summary["figures"] = figures.write_image_figures(directory, images, test, classifier,
                                                              config)
    for entry in summary["figures"]:
        if not entry["proposals_match"]:
            logging.warning("experiments: %s: the recomputed proposals' %d candidates are not the "
                            "cached ones (Fig. 3 shows the recomputed selection)",
                            entry["filename"], entry["candidates"])
    io_lib.atomic_write_json(directory / "summary.json", summary)
    logging.info("experiments: figures of %d test images in %s (%.1f s)", len(images),
                 directory / figures.FIGURE_DIR, time.perf_counter() - start)
    return outputs


def handcrafted_stage(run: Run) -> None:
    """The hand-crafted baselines of ``--handcrafted`` (Tables 2-3): features of the training
    and test parts, cached per baseline, then a linear SVM each
    (:mod:`affect_tf.experiments.handcrafted_stage`)."""
    from affect_tf.experiments import handcrafted_stage as stage_lib  # noqa: PLC0415

    stage_lib.run_stage(run)


def report_stage(run: Run) -> None:
    """``report.md``, its figure and the root ``metrics.json``, all from one verified evaluation
    (and the verified baseline row, unless --nobaseline; and the served path's row, once
    --mode=export has measured it against this evaluation; and the hand-crafted baselines' rows,
    once --mode=experiments has computed them for these parts and settings)."""
    run.eval_manifest()
    directory = run.eval_dir
    extra = {}
    if run.config.baselines.baseline:
        manifest = run.baseline_manifest()
        extra = json.loads((run.stage_dir("baseline", manifest.fingerprint)
                            / "metrics.json").read_text())
    served = run.served_manifest()
    if served is not None:  # --mode=export measured the served path against this evaluation.
        summary = json.loads((run.stage_dir("served", served.fingerprint)
                              / "metrics.json").read_text())
        extra["served"] = {key: value for key, value in summary.items() if key != "results"}
    from affect_tf.experiments import handcrafted_stage as handcrafted_lib  # noqa: PLC0415

    handcrafted = handcrafted_lib.finished_results(run)
    if handcrafted is not None:  # --mode=experiments computed the rows of --handcrafted.
        extra["handcrafted"] = handcrafted
    experiments = run.experiments_manifest()
    path = report_lib.write_report(
        run.workdir, directory, run.predict_dir, run.config, extra_metrics=extra,
        experiments_dir=(None if experiments is None
                         else run.stage_dir("experiments", experiments.fingerprint)))
    if extra:
        merged = {**json.loads((directory / "metrics.json").read_text()), **extra}
        io_lib.atomic_write_json(run.workdir / "metrics.json", merged)
    else:
        metrics = (directory / "metrics.json").read_bytes()
        io_lib.atomic_write(run.workdir / "metrics.json", lambda handle: handle.write(metrics))
    logging.info("report: %s", path)


def served_stage(run: Run) -> artifacts.Manifest:
    """The served path evaluated as its own row (:mod:`affect_tf.served_eval`): the exported
    graph's in-graph proposals and views over the validation and test parts' stored bytes, every
    selection x fusion with SVMs fitted on the served validation predictions, and the reported
    row beside the evaluation's. Resumable per part, like the predictions."""
    from affect_tf import export as export_lib  # noqa: PLC0415  (only --mode=export needs it)
    from affect_tf import fusion as fusion_lib  # noqa: PLC0415
    from affect_tf import served_eval  # noqa: PLC0415

    # Before any work: edges the served graph cannot compute stop here, naming the fix.
    edges = run.served_edges()
    eval_manifest = run.eval_manifest()
    stage_fingerprint = run.served_fingerprint()
    manifest = run.reuse("served", stage_fingerprint)
    if manifest is not None:
        return manifest
    directory = run.stage_dir("served", stage_fingerprint)
    # One temperature for both paths: the evaluation's, fitted on its validation predictions
    # (read after the reuse check: a finished stage costs no read of them).
    evaluated = run.load_predictions()
    config = run.scoring_config(evaluated["validation"])

    def make_compute():
        classifier = train_lib.load_classifier(config.model, str(run.train_dir))
        predict = served_eval.make_served_predict_fn(export_lib.ServingGraph(classifier, config))

        def compute(part: str) -> dict:
            names = getattr(run.splits, part)
            # The stored bytes, as a client would send them: the graph decodes them itself.
            batches = data_lib.examples(run.builder, names).map(
                lambda example: {"image": example["image"], "label": example["label"],
                                 "filename": example[data_lib.FILENAME_KEY]}).batch(
                config.evaluation.eval_batch_size)
            logging.info("served path: %s, %d images", part, len(names))
            return served_eval.collect_served_predictions(
                predict, batches.as_numpy_iterator(), total=len(names))

        return compute

    outputs = _resume_parts(directory, stage_fingerprint, "predictions", EVAL_PARTS, make_compute)
    served = run.load_parts(directory, "predictions", EVAL_PARTS, served_eval.PREDICTION_KEYS,
                            served_eval.PREDICTION_KEYS)
    selection = config.regions.selection
    evaluated_svm = (fusion_lib.SVMFusion.load(str(run.eval_dir / f"svm_{selection}"))
                     if config.fusion.fusion == "concat" else None)
    summary, svms = served_eval.evaluate_served(
        served["validation"], served["test"], evaluated["test"],
        json.loads((run.eval_dir / "metrics.json").read_text()), evaluated_svm, config)
    summary["served_edges"] = edges  # What the row was measured with (the report, the asset).
    for name, svm in svms.items():
        svm.save(str(directory / f"svm_{name}"))
        outputs += [str(path.relative_to(directory))
                    for path in sorted((directory / f"svm_{name}").iterdir())]
    io_lib.atomic_write_json(directory / "metrics.json", summary)
    outputs.append("metrics.json")
    run.verified["served"] = artifacts.write_manifest(
        directory, "served", stage_fingerprint, outputs=outputs,
        inputs={"evaluation": eval_manifest.content_id})
    logging.info("served path: %s accuracy %.4f (evaluated %.4f), same label on %.1f %% of the "
                 "test images", summary["reported"], summary["served_accuracy"],
                 summary["evaluated_accuracy"], 100 * summary["label_agreement"])
    return run.verified["served"]


def export_stage(run: Run) -> None:
    """The SavedModel for TF Serving from the run's verified classifier and fitted fusions: the
    evaluation's SVM for ``predict_with_proposals``, the served evaluation's for
    ``serving_default`` (:func:`served_stage`), whose figures go beside the model."""
    from affect_tf import export as export_lib  # noqa: PLC0415  (only this mode needs it)
    from affect_tf import fusion as fusion_lib  # noqa: PLC0415
    from affect_tf import served_eval  # noqa: PLC0415

    config = run.scoring_config()
    run.eval_manifest()  # The export serves the evaluation's fitted fusion.
    served_dir = run.stage_dir("served", served_stage(run).fingerprint)
    classifier = train_lib.load_classifier(config.model, str(run.train_dir))
    svm = served_svm = None
    if config.fusion.fusion == "concat":
        name = f"svm_{config.regions.selection}"
        svm = fusion_lib.SVMFusion.load(str(run.eval_dir / name))
        served_svm = fusion_lib.SVMFusion.load(str(served_dir / name))
    graph = export_lib.ServingGraph(classifier, config, svm, served_svm)
    target = export_lib.write_saved_model(
        graph, config.export.export_dir or run.workdir / "export", config.export.export_version,
        extra_files={export_lib.SERVED_EVALUATION_FILE: served_eval.evaluation_asset(
            json.loads((served_dir / "metrics.json").read_text()), config,
            run.splits.description)})
    python_ops = export_lib.python_backed_ops(target)
    if python_ops:
        raise RuntimeError(f"The SavedModel {target} holds Python-backed ops TF Serving cannot "
                           f"run. Received: {python_ops}")
    logging.info("export: SavedModel for TF Serving in %s (signatures %s, %s)", target,
                 export_lib.SERVING_SIGNATURE, export_lib.PROPOSALS_SIGNATURE)
    if (run.workdir / "report.md").exists():
        report_stage(run)  # The report gains the served row it now has.


_STAGE_FUNCTIONS = {
    "prepare": prepare_stage, "proposals": proposals_stage, "train": train_stage,
    "evaluate": evaluate_stage, "baseline": baseline_stage, "report": report_stage,
    "export": export_stage, "experiments": experiments_stage,
    "handcrafted": handcrafted_stage,
}


def _run_stages(run: Run, names) -> None:
    for name in names:
        start = time.perf_counter()
        logging.info("stage %s ... (%s)", name, run.workdir)
        _STAGE_FUNCTIONS[name](run)
        logging.info("stage %s finished in %.1f s", name, time.perf_counter() - start)


def _run_folds(run: Run, names, folds: list[int]) -> None:
    """Each fold's stages in ``<workdir>/fold-<N>/`` (a rerun resumes at the first unfinished
    one), then the folds' mean and sd at the root when a report was asked for."""
    if "export" in names and len(folds) > 1:
        raise errors.RunError(f"--mode=export serves one fold's model; the protocol has folds "
                              f"{folds}: pass --fold=N. Received: fold=-1")
    fold_runs = [run.for_fold(fold) for fold in folds]
    for fold_run in fold_runs:
        fold_run.workdir.mkdir(parents=True, exist_ok=True)
        _run_stages(fold_run, names)
    if "report" in names:
        path = report_lib.write_fold_report(
            run.workdir, {fold: fold_run.workdir for fold, fold_run in zip(folds, fold_runs)},
            run.config, protocol=run.protocol)
        logging.info("report: %s (mean and sd over folds %s)", path, folds)


def run(config: Config, *, preflight_checked: bool = False, lock_held: bool = False) -> Run:
    """Runs ``config.mode`` (one stage, or all of them in order) under the workdir's lock.

    Preparing the data and the proposals happens once; training, evaluation and the report run
    once per fold of the protocol (``--fold=-1``: every fold, each in ``<workdir>/fold-<N>/``,
    then their mean and sd in the root ``metrics.json`` and ``report.md``).

    Args:
        config: the run's settings.
        preflight_checked: the caller already ran :func:`affect_tf.preflight.check` (the command
            line does, before TensorFlow loads); skips doing it twice.
        lock_held: the caller holds the workdir's :class:`~affect_tf.artifacts.WorkdirLock` (the
            command line takes it before TensorFlow loads).

    Raises:
        preflight.PreflightError: a setting that can be checked without data is wrong.
        artifacts.WorkdirLockedError: another live run uses the work directory.
    """
    if not preflight_checked:
        preflight.check(config)
    model_lib.check_tensorflow_backend()
    current = Run(config)
    names = MODE_STAGES.get(config.mode, (config.mode,))
    with contextlib.nullcontext() if lock_held else artifacts.WorkdirLock(current.workdir):
        try:
            _run_stages(current, [name for name in names if name in SHARED_STAGES])
            per_fold = [name for name in names if name not in SHARED_STAGES]
            if per_fold:
                folds = current.folds()
                if folds is None:
                    _run_stages(current, per_fold)
                else:
                    _run_folds(current, per_fold, folds)
        except tf.errors.DataLossError as error:
            raise _damaged_dataset_error(current, error) from error
        io_lib.atomic_write_json(current.workdir / "config.json", dataclasses.asdict(config))
    return current


def _damaged_dataset_error(run: Run, error: tf.errors.DataLossError) -> errors.DataError:
    """What to say when TensorFlow found a corrupt record: which files, and how to rebuild."""
    builder = run.builder
    damaged = data_lib.damaged_record_files(builder)
    files = ", ".join(damaged) if damaged else f"a TFRecord file in {builder.data_dir}"
    return errors.DataError(
        f"The prepared dataset {run.config.data.dataset} is damaged: {files} fails its checksum "
        f"({error.message.splitlines()[0][:120]}). Delete {builder.data_dir} and run "
        "--mode=prepare (or --mode=all) again with its --manual_dir; the runs' later stages are "
        "kept where the rebuilt data is the same.")
