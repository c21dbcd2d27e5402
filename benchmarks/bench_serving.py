"""The exported SavedModel: the served row beside the evaluated one, and serving latency.

On the test part of a finished, exported run (the demo by default; a fold of a dataset
flagfile's run with ``--fold``):

(a) the rows the run measured (``--mode=export`` evaluates the served path as its own row:
    ``affect_tf.served_eval``): the reported row's accuracy on the paper path (the run's OpenCV
    proposals, ``predict_with_proposals``) and on the served path (proposals in the graph,
    ``serving_default``), how often they give the same label and the same top-1 region;
    then the SavedModel itself, loaded as a server loads it (``tf.saved_model.load``), on the
    same test images: its two signatures' accuracies must equal those rows (a model that is not
    the evaluated one shows here);
(b) latency per image at batch 1 and batch 32 (after a warm-up call), on whatever device
    TensorFlow picks: ``serving_default`` (everything in the graph, with the edges the export
    serves; and, as timing variants saved beside it, with each other ``--edge_sources`` the
    graph computes (gradient or HED) and ``--box_engines`` (``windows``, the sliding-window
    approximation; ``edgeboxes``, OpenCV's EdgeBoxes in XLA-compiled ops: ``--served_boxes``)),
    and the paper path as a server would run it: the OpenCV proposals of each image with gradient and
    with HED edges (CPU, one image at a time, as the proposal stage computes them), then
    ``predict_with_proposals``.

Usage (from the repository root, after the run and its export; on 2 CPU cores the demo takes
~11 min, its export (with the served evaluation) ~15-30 min with the default ``edgeboxes`` boxes
(~2 min with ``--served_boxes=windows``), this benchmark ~5 min per box engine timed, more with
``edgeboxes`` (seconds an image on a CPU; ``--images`` and ``--repeats`` bound it)):
    .venv/bin/python -m affect_tf.main --flagfile=configs/demo.flags
    .venv/bin/python -m affect_tf.main --flagfile=configs/demo.flags --mode=export
    .venv/bin/python benchmarks/bench_serving.py
    # a dataset flagfile's run: each fold has its own model; export one, measure it
    .venv/bin/python -m affect_tf.main --flagfile=configs/twitter1.flags --mode=export --fold=0
    .venv/bin/python benchmarks/bench_serving.py --workdir=runs/twitter1 --fold=0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from affect_tf import export as export_lib  # noqa: E402
from affect_tf import fusion as fusion_lib  # noqa: E402
from affect_tf import io as io_lib  # noqa: E402
from affect_tf import metrics as metrics_lib  # noqa: E402
from affect_tf import report as report_lib  # noqa: E402
from affect_tf import stages  # noqa: E402
from affect_tf import train as train_lib  # noqa: E402
from affect_tf.proposals import pipeline as proposal_pipeline  # noqa: E402
from affect_tf.proposals.edges import make_edge_detector  # noqa: E402
from affect_tf.testing import finished_run, replace_config  # noqa: E402


def the_run(workdir: pathlib.Path, fold: int | None) -> stages.Run:
    """The finished run of ``workdir``, or of its fold ``fold`` (a protocol with folds keeps
    each fold's model in ``<workdir>/fold-<N>/``).

    Raises:
        SystemExit: a run of several folds and no ``--fold``, naming the folds there are.
    """
    run = finished_run(workdir)
    if run.protocol not in stages.data_lib.FOLD_PROTOCOLS:
        if fold is not None:
            raise SystemExit(f"{workdir}'s protocol ({run.protocol}) has no folds. "
                             f"Received: --fold={fold}")
        return run
    every_fold = list(range(stages.data_lib.fold_count(run.index(), run.config.data,
                                                       run.protocol)))
    if fold is None and run.config.data.fold >= 0:
        fold = run.config.data.fold  # The run was of one fold: its model is the exported one.
    if fold is None or fold not in every_fold:
        raise SystemExit(f"{workdir} is a run of the folds {every_fold}, each with its own "
                         f"model: pass --fold=N. Received: --fold={fold}")
    return run.for_fold(fold)


def test_inputs(run: stages.Run):
    """Encoded test images and the evaluation's test predictions, in the predictions' order."""
    with np.load(run.predict_dir / "predictions_test.npz") as stored:
        predictions = dict(stored)
    names = predictions["filename"].tolist()
    encoded = {}
    for example in stages.data_lib.examples(run.builder, set(names)).as_numpy_iterator():
        encoded[example["image/filename"].decode()] = example["image"]
    return [encoded[name] for name in names], predictions


def call_in_batches(function, batch_size: int, **inputs) -> dict[str, np.ndarray]:
    count = len(inputs["images"])
    parts: dict[str, list] = {}
    for start in range(0, count, batch_size):
        batch = {key: tf.constant(value[start:start + batch_size])
                 for key, value in inputs.items()}
        for key, value in function(**batch).items():
            parts.setdefault(key, []).append(value.numpy())
    return {key: np.concatenate(values) for key, values in parts.items()}


def _repeat(items: list, count: int) -> list:
    return (items * (count // len(items) + 1))[:count]


def latency(function, batch_size: int, repeats: int, **inputs) -> float:
    """Median seconds per image of ``function`` on one batch of ``batch_size`` (after a
    warm-up call)."""
    batch = {key: tf.constant(np.asarray(_repeat(list(value), batch_size)))
             for key, value in inputs.items()}
    function(**batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(**batch)
        times.append((time.perf_counter() - start) / batch_size)
    return float(np.median(times))


def proposal_seconds(images: list[bytes], config, edge_source: str, count: int) -> float:
    """Median CPU-path seconds per image of the OpenCV proposals with ``edge_source`` edges
    (decode included), over ``count`` images."""
    proposal_config = dataclasses.replace(config.proposals, edge_source=edge_source)
    detector = make_edge_detector(proposal_config)
    times = []
    for data in _repeat(images, count):
        start = time.perf_counter()
        proposal_pipeline.propose(io_lib.decode_image_bytes(data), proposal_config, detector)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def variant_serving(run: stages.Run, edge_source: str, boxes: str, directory: pathlib.Path):
    """``serving_default`` of the run's classifier with its in-graph proposals on
    ``edge_source`` edges and ``boxes`` (``served_boxes``), saved and loaded as a server would:
    for timing only (both signatures carry the evaluation's SVM; the export's own served row is
    measured with its own)."""
    config = replace_config(run.scoring_config(), edge_source=edge_source, served_edges="run",
                            served_boxes=boxes)
    classifier = train_lib.load_classifier(config.model, str(run.train_dir))
    svm = (fusion_lib.SVMFusion.load(str(run.eval_dir / f"svm_{config.regions.selection}"))
           if config.fusion.fusion == "concat" else None)
    target = export_lib.write_saved_model(export_lib.ServingGraph(classifier, config, svm, svm),
                                          directory, 1)
    return tf.saved_model.load(str(target)).signatures[export_lib.SERVING_SIGNATURE]


def _share(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def top1_normalized(outputs: dict, sizes: np.ndarray) -> np.ndarray:
    scale = np.concatenate([sizes, sizes], axis=1).astype(np.float32)
    return outputs["region_boxes"][:, 0] / scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="runs/demo", help="a finished run's workdir")
    parser.add_argument("--fold", type=int, default=None,
                        help="the fold whose model was exported (runs of several folds)")
    parser.add_argument("--saved_model", default="",
                        help="the version folder (default: the highest in the run's export "
                             "folder)")
    parser.add_argument("--images", type=int, default=0, help="test images used (0: all)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per batch size")
    parser.add_argument("--proposal_images", type=int, default=16,
                        help="images timed for the OpenCV proposals of each edge source")
    parser.add_argument("--edge_sources", nargs="+", default=["gradient", "hed"])
    parser.add_argument("--box_engines", nargs="+", default=["windows", "edgeboxes"],
                        help="in-graph box engines timed (ExportConfig.served_boxes)")
    args = parser.parse_args()

    run = the_run(pathlib.Path(args.workdir), args.fold)
    export_dir = pathlib.Path(run.config.export.export_dir or run.workdir / "export")
    saved_model = pathlib.Path(args.saved_model) if args.saved_model else (
        export_dir / str(export_lib.next_version(export_dir) - 1))
    served_manifest = run.served_manifest()
    if served_manifest is None:
        raise SystemExit(f"{run.workdir} has no served evaluation for its current evaluation: "
                         "run --mode=export with the run's flags first.")
    served = json.loads((run.stage_dir("served", served_manifest.fingerprint)
                         / "metrics.json").read_text())
    images, predictions = test_inputs(run)
    if args.images:
        images = images[:args.images]
        predictions = {key: value[:args.images] for key, value in predictions.items()}
    model = tf.saved_model.load(str(saved_model))
    serve = model.signatures[export_lib.SERVING_SIGNATURE]
    with_proposals = model.signatures[export_lib.PROPOSALS_SIGNATURE]
    encoded = np.array(images, dtype=object)
    proposals = {"boxes": predictions["boxes"], "objectness": predictions["objectness"],
                 "num_valid": predictions["num_valid"].astype(np.int32)}

    graph = call_in_batches(serve, 32, images=encoded)
    opencv = call_in_batches(with_proposals, 32, images=encoded, **proposals)
    labels = predictions["label"]
    sizes = np.array([io_lib.decode_image_bytes(data).shape[:2] for data in images])
    graph_top, opencv_top = top1_normalized(graph, sizes), top1_normalized(opencv, sizes)
    print(f"{len(images)} test images of {run.config.data.dataset} ({run.workdir}), "
          f"SavedModel {saved_model}")
    print(f"(a) {served['reported']}, test accuracy     measured by the run   the SavedModel")
    print(f"    evaluated (OpenCV proposals)      {served['evaluated_accuracy']:.4f}"
          f"               {np.mean(opencv['label'] == labels):.4f}")
    print(f"    served (in-graph proposals)       {served['served_accuracy']:.4f}"
          f"               {np.mean(graph['label'] == labels):.4f}")
    print(f"    same label on {served['label_agreement']:.4f} of the test images; same top-1 "
          f"region (IoU >= 0.5) {_share(served['top1_agreement'])} (the run), "
          f"{np.mean(metrics_lib.box_iou(graph_top, opencv_top) >= 0.5):.4f} (the SavedModel)")
    if "object_box" in predictions:
        truth = predictions["object_box"]
        for name, top in (("in-graph", graph_top), ("OpenCV", opencv_top)):
            hit = metrics_lib.box_iou(top, truth) >= 0.5
            print(f"    top-1 region on the object, {name}: {np.mean(hit):.4f}")
    device = tf.config.list_logical_devices()[-1].device_type
    print(f"(b) latency per image on {device} (ms; median of {args.repeats} calls)")
    print("    path                                         batch 1   batch 32")
    served_edges = report_lib.served_edges_of(served)
    row = [latency(serve, size, args.repeats, images=images) for size in (1, 32)]
    print(f"    serving_default (in-graph, {report_lib.edges_in_words(served_edges)}: the export)   "
          f"{row[0] * 1e3:7.0f}   {row[1] * 1e3:8.0f}")
    exported = (served_edges["edge_source"], served_edges.get("boxes", "windows"))
    for edge_source in args.edge_sources:
        for boxes in args.box_engines:
            if (edge_source, boxes) == exported or edge_source == "sed":
                continue
            with tempfile.TemporaryDirectory() as directory:
                variant = variant_serving(run, edge_source, boxes, pathlib.Path(directory))
                row = [latency(variant, size, args.repeats, images=images) for size in (1, 32)]
            print(f"    serving_default (in-graph, {edge_source} edges, {boxes} boxes: a timing "
                  f"variant)   {row[0] * 1e3:7.0f}   {row[1] * 1e3:8.0f}")
    model_only = [latency(with_proposals, size, args.repeats, images=images,
                          **{key: list(value) for key, value in proposals.items()})
                  for size in (1, 32)]
    for edge_source in args.edge_sources:
        seconds = proposal_seconds(images, run.config, edge_source, args.proposal_images)
        print(f"    OpenCV proposals ({edge_source:8s}) + predict_with_proposals "
              f"{(seconds + model_only[0]) * 1e3:5.0f}   {(seconds + model_only[1]) * 1e3:8.0f}"
              f"   (proposals {seconds * 1e3:.0f} ms of it, one image at a time)")


if __name__ == "__main__":
    main()
