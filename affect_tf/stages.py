"""The stages of a run and their chaining: prepare -> proposals -> train -> evaluate -> report.

Each stage writes its outputs in a directory named by the fingerprint of the settings it depends
on, so a stage whose outputs exist with the same settings is skipped, a changed setting reruns it
(and what depends on it), and a killed run resumes where it stopped (DECISIONS.md, "Runs").

Layout of ``<workdir>``::

    config.json                 the last run's full configuration
    splits-<fp>.json            protocol splits (train / validation / test filenames)
    proposals/<cache>/          proposal cache (chunks + meta.json), resumable
    train-<fp>/                 checkpoints/, classifier.weights.h5
    classifier.weights.h5       copy of the latest fine-tuned classifier (for transfer)
    eval-<fp>/                  predictions_*.npz, svm_*/, metrics.json
    metrics.json, report.md, figures/   the latest evaluation and its report
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import shutil
import time

import numpy as np

from affect_tf import config as config_lib
from affect_tf import data as data_lib
from affect_tf import evaluate as evaluate_lib
from affect_tf import model as model_lib
from affect_tf import report as report_lib
from affect_tf import train as train_lib
from affect_tf.config import Config
from affect_tf.proposals import cache as cache_lib
from affect_tf.proposals import stage as proposal_stage

STAGES = ("prepare", "proposals", "train", "evaluate", "report")
EVAL_PARTS = ("validation", "test")


def _write_json(path: pathlib.Path, payload) -> None:
    """Writes JSON atomically (temp file in the same directory, then rename)."""
    temporary = path.with_name(f".tmp-{path.name}")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    temporary.replace(path)


class Run:
    """One run's configuration, directories and the stages' shared state."""

    def __init__(self, config: Config):
        self.config = config
        self.workdir = pathlib.Path(config.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._builder = None
        self._splits = None
        self._index = None

    # Fingerprints: each stage's settings plus those of the stages it depends on.
    @property
    def data_fingerprint(self) -> str:
        return config_lib.fingerprint(self.config.data)

    @property
    def train_fingerprint(self) -> str:
        return config_lib.fingerprint(self.config.data, self.config.model, self.config.train)

    @property
    def eval_fingerprint(self) -> str:
        return config_lib.fingerprint(
            self.train_fingerprint, self.config.proposals, self.config.regions,
            self.config.fusion, self.config.ten_crop, self.config.train.resize_size,
            self.config.region_image_size)

    @property
    def train_dir(self) -> pathlib.Path:
        return self.workdir / f"train-{self.train_fingerprint}"

    @property
    def eval_dir(self) -> pathlib.Path:
        return self.workdir / f"eval-{self.eval_fingerprint}"

    @property
    def builder(self):
        if self._builder is None:
            self._builder = data_lib.get_builder(self.config.data)
            if not self._builder.is_prepared():
                raise FileNotFoundError(
                    f"Dataset {self.config.data.dataset!r} is not prepared in "
                    f"{self._builder.data_dir!r}; run --mode=prepare first (or --mode=all).")
        return self._builder

    @property
    def splits(self):
        """Protocol splits, computed once per data fingerprint and stored in the workdir."""
        if self._splits is None:
            path = self.workdir / f"splits-{self.data_fingerprint}.json"
            if path.is_file():
                stored = json.loads(path.read_text())
                self._splits = data_lib.ProtocolSplits(
                    tuple(stored["train"]), tuple(stored["validation"]), tuple(stored["test"]),
                    stored["protocol"], stored["description"])
            else:
                index = data_lib.read_index(self.builder)
                protocol = data_lib.choose_protocol(self.builder)
                self._splits = data_lib.protocol_splits(index, self.config.data, protocol)
                data_lib.log_splits(self.config.data.dataset, self._splits, index)
                _write_json(path, {**self._splits.as_dict(), "protocol": protocol,
                                   "description": self._splits.description})
        return self._splits


def prepare_stage(run: Run) -> None:
    start = time.perf_counter()
    builder = data_lib.prepare(run.config.data, beam_options=_beam_options(run.config))
    run._builder = builder
    logging.info("prepare: %s ready in %s (%.0f s): %s", builder.info.full_name, builder.data_dir,
                 time.perf_counter() - start,
                 {name: split.num_examples for name, split in builder.info.splits.items()})
    splits = run.splits
    logging.info("prepare: protocol %s (%s): %d train / %d validation / %d test", splits.protocol,
                 splits.description, len(splits.train), len(splits.validation), len(splits.test))


def _proposal_cache(run: Run):
    directory = cache_lib.cache_dir_for(
        str(run.workdir / "proposals"), run.config.data.dataset, run.config.proposals)
    return cache_lib.ProposalCache(directory, run.config.proposals)


def _beam_options(config: Config):
    """PipelineOptions from ``--beam_pipeline_options`` (None: Beam's defaults, DirectRunner)."""
    if not config.beam_pipeline_options:
        return None
    from apache_beam.options.pipeline_options import PipelineOptions  # noqa: PLC0415

    return PipelineOptions(config.beam_pipeline_options.split())


def proposals_stage(run: Run) -> None:
    """Proposals for every image (``proposal_scope=all``) or the validation and test parts."""
    config = run.config
    cache = _proposal_cache(run)
    if config.proposal_scope == "all":
        wanted = set(run.splits.train) | set(run.splits.validation) | set(run.splits.test)
    else:
        wanted = set(run.splits.validation) | set(run.splits.test)
    todo = wanted - cache.done_filenames()
    if not todo:
        logging.info("proposals: all %d images already in %s; skipped", len(wanted), cache.directory)
        return
    logging.info("proposals: %d of %d images to do (%s edges, %s runner), cache %s", len(todo),
                 len(wanted), config.proposals.edge_source, config.proposal_runner, cache.directory)
    if config.proposal_runner == "beam":
        from affect_tf.proposals import beam_stage  # noqa: PLC0415

        stats = beam_stage.run_beam_proposal_stage_tfds(
            run.builder, cache, config.proposals, filenames=todo,
            beam_options=_beam_options(config))
    else:
        images = ((name, data) for name, data in data_lib.encoded_images(run.builder)
                  if name in todo)
        stats = proposal_stage.run_proposal_stage(
            images, cache, config.proposals, num_workers=config.num_workers or os.cpu_count() or 1,
            total=len(todo))
    logging.info("proposals: %s", stats)


def train_stage(run: Run) -> None:
    config = run.config
    final = run.train_dir / train_lib.CLASSIFIER_FILE
    if final.is_file():
        logging.info("train: %s exists with the same settings; skipped", final)
    else:
        _write_json(run.train_dir.parent / f"{run.train_dir.name}.json", dataclasses.asdict(config))
        trainer = train_lib.Trainer(config.model, config.train, str(run.train_dir))
        dataset = data_lib.training_pipeline(
            data_lib.examples(run.builder, run.splits.train), image_size=config.model.image_size,
            resize_size=config.train.resize_size, batch_size=config.train.batch_size,
            seed=config.train.seed + trainer.restore())
        logging.info("train: %d images, %d steps of %d, weights %s, head %s", len(run.splits.train),
                     config.train.steps, config.train.batch_size, config.model.weights,
                     config.model.resolved_head)
        summary = trainer.fit(dataset, log=logging.info)
        logging.info("train: done %s", summary)
    # A stable path for transfer to the small sets (configs/*.flags use runs/fi/...).
    shutil.copyfile(final, run.workdir / train_lib.CLASSIFIER_FILE)


def _load_proposals(run: Run):
    return _proposal_cache(run).load()


def evaluate_stage(run: Run) -> None:
    config = run.config
    metrics_path = run.eval_dir / "metrics.json"
    if metrics_path.is_file():
        logging.info("evaluate: %s exists with the same settings; skipped", metrics_path)
        shutil.copyfile(metrics_path, run.workdir / "metrics.json")
        return
    run.eval_dir.mkdir(parents=True, exist_ok=True)
    classifier = train_lib.load_classifier(config.model, str(run.train_dir))
    proposals = _load_proposals(run)
    predict = evaluate_lib.make_predict_fn(classifier, config)
    extra_keys = tuple(k for k in ("object_box",) if k in run.builder.info.features)
    predictions = {}
    for part in EVAL_PARTS:
        path = run.eval_dir / f"predictions_{part}.npz"
        if path.is_file():
            with np.load(path) as stored:
                predictions[part] = dict(stored)
            continue
        names = getattr(run.splits, part)
        batches = data_lib.evaluation_pipeline(
            data_lib.examples(run.builder, names), resize_size=config.region_image_size,
            batch_size=config.eval_batch_size, proposals=proposals, extra_keys=extra_keys)
        logging.info("evaluate: %s, %d images", part, len(names))
        predictions[part] = evaluate_lib.collect_predictions(
            predict, batches.as_numpy_iterator(), extra_keys=extra_keys, total=len(names))
        temporary = path.with_name(f"tmp-{path.name}")
        np.savez(temporary, **predictions[part])
        temporary.replace(path)
    results, svms = evaluate_lib.evaluate_all(predictions["validation"], predictions["test"], config)
    for selection, svm in svms.items():
        svm.save(str(run.eval_dir / f"svm_{selection}"))
    payload = {
        "dataset": config.data.dataset,
        "protocol": run.splits.description,
        "counts": {part: len(getattr(run.splits, part)) for part in ("train", "validation", "test")},
        "reported": f"{config.regions.selection}+{config.fusion.fusion}",
        "top_k": config.regions.top_k,
        "results": results,
    }
    if "object_box" in extra_keys:
        payload["region_hit_rate"] = evaluate_lib.region_hit_rates(predictions["test"], config.regions)
    _write_json(metrics_path, payload)
    shutil.copyfile(metrics_path, run.workdir / "metrics.json")
    reported = results[payload["reported"]]
    logging.info("evaluate: global accuracy %.4f, %s accuracy %.4f", results["global"]["accuracy"],
                 payload["reported"], reported["accuracy"])


def report_stage(run: Run) -> None:
    metrics_path = run.eval_dir / "metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(
            f"No evaluation with these settings at {metrics_path}; run --mode=evaluate first.")
    path = report_lib.write_report(run.workdir, run.eval_dir, run.config)
    logging.info("report: %s", path)


_STAGE_FUNCTIONS = {
    "prepare": prepare_stage, "proposals": proposals_stage, "train": train_stage,
    "evaluate": evaluate_stage, "report": report_stage,
}


def run(config: Config) -> Run:
    """Runs ``config.mode`` (one stage, or all of them in order)."""
    model_lib.check_tensorflow_backend()
    current = Run(config)
    _write_json(current.workdir / "config.json", dataclasses.asdict(config))
    for name in (STAGES if config.mode == "all" else (config.mode,)):
        start = time.perf_counter()
        logging.info("stage %s ...", name)
        _STAGE_FUNCTIONS[name](current)
        logging.info("stage %s finished in %.1f s", name, time.perf_counter() - start)
    return current
