"""The edge sources on the demo: how often the candidates, and the top-1 region, find the object.

On the first N scenes of the affect_demo dataset (``datasets/affect_demo/scenes.py``: the
dataset's seed, size and label sequence), for each edge source (``gradient``, ``hed``, and
``sed`` when ``--sed_model_path`` names the structured-edge model; otherwise it is skipped and the
reason printed), the proposals at the demo's settings (``configs/demo.flags`` read as
``affect_tf.main`` reads it: m = 16 candidates, 500 EdgeBoxes boxes, ...), and per source:

* any candidate: share of scenes where one of the m candidates has IoU >= 0.5 with the object's
  box (the ceiling of every ranking);
* top-1 obj: share where the candidate of highest objectness does;
* top-1 AR (only with ``--workdir``, a finished demo run: ``classifier.weights.h5`` and
  ``config.json`` at its root): share where the region ranked first by AR (Eq. 5: objectness and
  the Senti of that run's classifier on the candidate crop) does, computed as the run's evaluation
  computes it (``affect_tf.data.evaluation_pipeline``, ``affect_tf.evaluate.make_predict_fn`` and
  ``region_hit_rates``, the run's region settings);
* CPU s/image: CPU seconds of this process per scene for ``affect_tf.proposals.propose`` (edges,
  EdgeBoxes, filter, normalized cut; the scenes are rendered, not decoded), every thread pool at
  one thread, as benchmarks/bench_proposals.py measures; the mean over the scenes.

With ``--workdir``, the scenes are the first N of that run's test part (its classifier never
trained on them); without, the first N of the dataset.

Usage (from the repository root; ~3 min on 2 cores for 60 scenes, HED most of it):
    .venv/bin/python benchmarks/bench_edge_sources.py
    .venv/bin/python benchmarks/bench_edge_sources.py --scenes 100 --workdir runs/demo
    .venv/bin/python benchmarks/bench_edge_sources.py --sed_model_path model.yml.gz
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
import tempfile

# One core, as benchmarks/bench_proposals.py measures: set before numpy, OpenCV and TensorFlow
# start their thread pools.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ[_variable] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from affect_tf import config as config_lib  # noqa: E402
from affect_tf.io import encode_png  # noqa: E402
from affect_tf.metrics import box_iou  # noqa: E402
from affect_tf.proposals import edges, pipeline  # noqa: E402
from affect_tf.testing import cpu_seconds, finished_run  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# A box hits the object at this IoU or more with the object's box (the evaluation's threshold).
HIT_IOU = 0.5


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=60, help="the first N scenes of the dataset.")
    parser.add_argument("--edge_sources", default=",".join(config_lib.EDGE_SOURCES),
                        help="comma-separated edge sources to compare.")
    parser.add_argument("--sed_model_path", default="",
                        help="the structured-edge model.yml.gz (sed is skipped without it).")
    parser.add_argument("--flagfile", default=str(REPO_ROOT / "configs" / "demo.flags"),
                        help="the flagfile whose proposal settings are used.")
    parser.add_argument("--workdir", default="",
                        help="a finished demo run, for the top-1 AR hit rate (empty: skip).")
    args = parser.parse_args(argv)
    if args.scenes < 1:
        parser.error(f"--scenes must be >= 1. Received: {args.scenes}")
    unknown = set(args.edge_sources.split(",")) - set(config_lib.EDGE_SOURCES)
    if unknown:
        parser.error(f"--edge_sources must name some of {', '.join(config_lib.EDGE_SOURCES)}. "
                     f"Received: {args.edge_sources!r}")
    return args


def flagfile_config(path: str) -> config_lib.Config:
    """The run configuration a flagfile gives, parsed by ``affect_tf.main``'s own flags."""
    from affect_tf import main as main_lib  # pylint: disable=import-outside-toplevel

    main_lib.FLAGS([sys.argv[0], f"--flagfile={path}"])
    return main_lib.config_from_flags()


@dataclasses.dataclass(frozen=True)
class Scene:
    """One demo scene: its dataset file name, uint8 [S, S, 3] RGB image, label and the object's
    box, float32 [4] normalized [y1, x1, y2, x2]."""

    filename: str
    image: np.ndarray
    label: int
    box: np.ndarray


def demo_scenes(dataset: str, count: int, names: list[str] | None = None) -> list[Scene]:
    """The first ``count`` scenes of ``dataset`` (``affect_demo`` or ``affect_demo/<config>``),
    or of ``names`` (``scene_00042.png``, ...) when given, rendered as its builder renders them:
    same seed, size and label sequence."""
    # pylint: disable=import-outside-toplevel
    from affect_tf.datasets.affect_demo import scenes
    from affect_tf.datasets.affect_demo.affect_demo_dataset_builder import Builder

    name = dataset.partition("/")[2] or Builder.DEFAULT_CONFIG_NAME
    matches = [c for c in Builder.BUILDER_CONFIGS if c.name == name]
    if not matches:
        raise SystemExit(f"dataset must be affect_demo or affect_demo/<config> with a config of "
                         f"{[c.name for c in Builder.BUILDER_CONFIGS]}. Received: {dataset!r}")
    built = matches[0]
    # The labels are a permutation of the whole dataset's: drawn for all of it, then indexed.
    labels = scenes.scene_labels(built.seed, built.num_images)
    indices = (sorted(int(name.split("_")[1].split(".")[0]) for name in names)
               if names is not None else range(built.num_images))
    result = []
    for index in list(indices)[:count]:
        label = labels[index]
        scene = scenes.render_scene(scenes.scene_rng(built.seed, index), int(label),
                                    built.image_size)
        result.append(Scene(f"scene_{index:05d}.png", scene.image, int(label),
                            np.asarray(scene.box, np.float32)))
    return result


@dataclasses.dataclass
class SourceResult:
    """One edge source on the scenes: each scene's proposals and CPU seconds."""

    proposals: list[pipeline.Proposals]
    seconds: list[float]

    def any_candidate(self, scenes: list[Scene]) -> np.ndarray:
        return np.array([len(p) > 0 and box_iou(p.boxes, s.box).max() >= HIT_IOU
                         for p, s in zip(self.proposals, scenes)])

    def top1_objectness(self, scenes: list[Scene]) -> np.ndarray:
        # Proposals rows are ordered by objectness, descending.
        return np.array([len(p) > 0 and box_iou(p.boxes[:1], s.box)[0] >= HIT_IOU
                         for p, s in zip(self.proposals, scenes)])


def run_source(scenes: list[Scene], config: config_lib.ProposalConfig) -> SourceResult:
    """Proposals of every scene with ``config.edge_source``, each timed in CPU seconds."""
    detector = edges.make_edge_detector(config)
    detector(scenes[0].image[:64, :64])  # Warm up: HED builds its network on the first call.
    proposals, seconds = [], []
    for scene in scenes:
        result, cpu = cpu_seconds(pipeline.propose, scene.image, config, detector)
        proposals.append(result)
        seconds.append(cpu)
    return SourceResult(proposals, seconds)


def region_hit_rates(run_config: config_lib.Config, workdir: pathlib.Path, scenes: list[Scene],
                     proposal_config: config_lib.ProposalConfig,
                     result: SourceResult) -> dict[str, float]:
    """Top-1 hit rates by AR, Obj and Senti with the run's classifier, as its evaluation computes
    them: the proposals go through a proposal cache into the evaluation pipeline."""
    # pylint: disable=import-outside-toplevel
    import tensorflow as tf

    from affect_tf import data as data_lib
    from affect_tf import evaluate as evaluate_lib
    from affect_tf import train as train_lib
    from affect_tf.proposals import cache as cache_lib

    with tempfile.TemporaryDirectory() as directory:
        cache = cache_lib.ProposalCache(directory, proposal_config)
        cache.append([(s.filename, p) for s, p in zip(scenes, result.proposals)])
        arrays = cache.load([s.filename for s in scenes])
    examples = tf.data.Dataset.from_tensor_slices({
        "image": [encode_png(s.image) for s in scenes],
        "label": [s.label for s in scenes],
        data_lib.FILENAME_KEY: [s.filename for s in scenes],
        "object_box": np.stack([s.box for s in scenes]),
    })
    batches = data_lib.evaluation_pipeline(
        examples, resize_size=run_config.evaluation.region_image_size,
        batch_size=run_config.evaluation.eval_batch_size, proposals=arrays,
        extra_keys=("object_box",))
    classifier = train_lib.load_classifier(run_config.model, str(workdir))
    predictions = evaluate_lib.collect_predictions(
        evaluate_lib.make_predict_fn(classifier, run_config), batches.as_numpy_iterator(),
        extra_keys=("object_box",), log=lambda message: None)
    return evaluate_lib.region_hit_rates(predictions, run_config.regions, threshold=HIT_IOU)


def _rate(hits: np.ndarray) -> str:
    return f"{100 * np.mean(hits):5.1f} % ({int(np.sum(hits)):3d}/{len(hits)})"


def main(argv=None) -> None:
    args = _parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    cv2.setNumThreads(1)
    config = flagfile_config(args.flagfile)
    proposal_config = dataclasses.replace(config.proposals, sed_model_path=args.sed_model_path)
    run = None
    if args.workdir:
        workdir = pathlib.Path(args.workdir)
        missing = [name for name in ("classifier.weights.h5", "config.json")
                   if not (workdir / name).is_file()]
        if missing:
            raise SystemExit(f"--workdir must be a finished run with classifier.weights.h5 and "
                             f"config.json at its root. Received: {workdir} without {missing}")
        run = finished_run(workdir)
    dataset = run.config.data.dataset if run else config.data.dataset
    # With a run, its test part: scenes its classifier never trained on.
    scenes = demo_scenes(dataset, args.scenes, list(run.splits.test) if run else None)
    p = proposal_config
    print(f"bench_edge_sources: the first {len(scenes)} scenes of "
          f"{'the test part of ' + args.workdir if run else dataset}; proposals at "
          f"{pathlib.Path(args.flagfile).name}'s settings: m = {p.num_candidates}, max_boxes "
          f"{p.max_boxes}, k-means restarts {p.kmeans_n_init}, {p.selection_precision} "
          f"selection, longer side <= {p.proposal_max_side} px; hit: IoU >= {HIT_IOU} with the "
          f"object's box")
    if run:
        print(f"top-1 AR: classifier of {args.workdir} (alpha {run.config.regions.alpha}, "
              f"{run.config.regions.ar_formula} formula, objectness {run.config.regions.obj_norm})")
    header = f"  {'edge source':<12s} {'any candidate':>18s} {'top-1 obj':>18s}"
    header += f" {'top-1 AR':>18s}" if run else ""
    print("\n" + header + f" {'CPU s/image':>12s}")
    for source in args.edge_sources.split(","):
        source_config = dataclasses.replace(proposal_config, edge_source=source)
        try:
            source_config.validate()
        except config_lib.ConfigError as error:
            print(f"  {source:<12s} skipped: {error}")
            continue
        result = run_source(scenes, source_config)
        line = (f"  {source:<12s} {_rate(result.any_candidate(scenes)):>18s} "
                f"{_rate(result.top1_objectness(scenes)):>18s}")
        if run:
            rates = region_hit_rates(run.scoring_config(), workdir, scenes, source_config,
                                     result)
            hits = int(np.round(rates["ar"] * len(scenes)))
            line += f" {100 * rates['ar']:5.1f} % ({hits:3d}/{len(scenes)})"
        print(line + f" {np.mean(result.seconds):12.3f}")
        if run and (rates["obj"], rates["best_candidate"]) != (
                np.mean(result.top1_objectness(scenes)), np.mean(result.any_candidate(scenes))):
            # The evaluation's own Obj and ceiling rates must agree with the columns above.
            print(f"    (the evaluation path gives other Obj / any-candidate rates: {rates})")


if __name__ == "__main__":
    main()
