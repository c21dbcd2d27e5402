"""The exported SavedModel: in-graph proposals against the OpenCV path, and serving latency.

On the test split of a finished run (the demo by default), with its exported SavedModel:

(a) accuracy of ``serving_default`` (regions proposed in the graph) and of
    ``predict_with_proposals`` fed the run's OpenCV proposal cache (the paper's path), and how
    often their top-1 regions overlap (IoU >= 0.5); with a ground-truth object box (the demo),
    how often each path's top-1 region finds the object.
(b) latency per image of ``serving_default`` at batch 1 and batch 32 (after a warm-up call), on
    whatever device TensorFlow picks (CPU here), the model loaded as a server loads it
    (``tf.saved_model.load``).

Usage (from the repository root, after the demo and its export; on 2 CPU cores the demo takes
~11 min, its export seconds, this benchmark ~5 min):
    .venv/bin/python -m affect_tf.main --flagfile=configs/demo.flags
    .venv/bin/python -m affect_tf.main --flagfile=configs/demo.flags --mode=export
    .venv/bin/python benchmarks/bench_serving.py
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from affect_tf import export as export_lib  # noqa: E402
from affect_tf import metrics as metrics_lib  # noqa: E402
from affect_tf import stages  # noqa: E402
from affect_tf.testing import finished_run  # noqa: E402


def test_inputs(run: stages.Run):
    """Encoded test images, labels, object boxes (or None) and cached proposals, in one order."""
    with np.load(run.predict_dir / "predictions_test.npz") as stored:
        predictions = dict(stored)
    names = predictions["filename"].tolist()
    encoded = {}
    for example in stages.data_lib.examples(run.builder, set(names)).as_numpy_iterator():
        encoded[example["image/filename"].decode()] = example["image"]
    images = [encoded[name] for name in names]
    return images, predictions


def call_in_batches(function, batch_size: int, **inputs) -> dict[str, np.ndarray]:
    count = len(inputs["images"])
    parts: dict[str, list] = {}
    for start in range(0, count, batch_size):
        batch = {key: tf.constant(value[start:start + batch_size])
                 for key, value in inputs.items()}
        for key, value in function(**batch).items():
            parts.setdefault(key, []).append(value.numpy())
    return {key: np.concatenate(values) for key, values in parts.items()}


def latency(function, images: list[bytes], batch_size: int, repeats: int) -> float:
    """Median seconds per image of ``function`` on batches of ``batch_size`` (after a warm-up)."""
    batch = tf.constant((images * (batch_size // len(images) + 1))[:batch_size])
    function(images=batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(images=batch)
        times.append((time.perf_counter() - start) / batch_size)
    return float(np.median(times))


def top1_normalized(outputs: dict, sizes: np.ndarray) -> np.ndarray:
    scale = np.concatenate([sizes, sizes], axis=1).astype(np.float32)
    return outputs["region_boxes"][:, 0] / scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="runs/demo", help="a finished run's workdir")
    parser.add_argument("--saved_model", default="",
                        help="the version folder (default: the highest in <workdir>/export)")
    parser.add_argument("--images", type=int, default=0, help="test images used (0: all)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per batch size")
    args = parser.parse_args()

    workdir = pathlib.Path(args.workdir)
    saved_model = pathlib.Path(args.saved_model) if args.saved_model else (
        workdir / "export" / str(export_lib.next_version(workdir / "export") - 1))
    run = finished_run(workdir)
    images, predictions = test_inputs(run)
    if args.images:
        images = images[:args.images]
        predictions = {key: value[:args.images] for key, value in predictions.items()}
    model = tf.saved_model.load(str(saved_model))
    serve = model.signatures[export_lib.SERVING_SIGNATURE]
    with_proposals = model.signatures[export_lib.PROPOSALS_SIGNATURE]

    start = time.perf_counter()
    graph = call_in_batches(serve, 32, images=np.array(images, dtype=object))
    graph_seconds = time.perf_counter() - start
    opencv = call_in_batches(
        with_proposals, 32, images=np.array(images, dtype=object), boxes=predictions["boxes"],
        objectness=predictions["objectness"], num_valid=predictions["num_valid"].astype(np.int32))
    labels = predictions["label"]
    sizes = np.array([[int(s) for s in tf.shape(tf.io.decode_image(data, channels=3))[:2]]
                      for data in images])
    graph_top, opencv_top = top1_normalized(graph, sizes), top1_normalized(opencv, sizes)
    overlap = metrics_lib.box_iou(graph_top, opencv_top) >= 0.5
    print(f"{len(images)} test images of {run.config.data.dataset}, SavedModel {saved_model}")
    print(f"(a) accuracy, in-graph proposals (serving_default):    "
          f"{np.mean(graph['label'] == labels):.4f}")
    print(f"    accuracy, OpenCV proposals (predict_with_proposals): "
          f"{np.mean(opencv['label'] == labels):.4f}")
    print(f"    top-1 regions overlap (IoU >= 0.5): {np.mean(overlap):.4f}")
    if "object_box" in predictions:
        truth = predictions["object_box"]
        for name, top in (("in-graph", graph_top), ("OpenCV", opencv_top)):
            hit = metrics_lib.box_iou(top, truth) >= 0.5
            print(f"    top-1 region on the object, {name}: {np.mean(hit):.4f}")
    print(f"    whole pass, in-graph proposals, batch 32: {graph_seconds / len(images):.3f} s/image")
    for batch_size in (1, 32):
        seconds = latency(serve, images[:batch_size], batch_size, args.repeats)
        print(f"(b) serving_default latency, batch {batch_size:2d}: {seconds * 1000:.0f} ms/image "
              f"({tf.config.list_logical_devices()[-1].device_type})")


if __name__ == "__main__":
    main()
