"""How close the in-graph proposals (affect_tf.proposals.graph) come to the OpenCV path.

On ``--scenes`` demo scenes (datasets/affect_demo/scenes.py, default size 256 px, seeded, balanced
labels) both paths propose m candidates with the same ``ProposalConfig`` (gradient edges):

* OpenCV: ``affect_tf.proposals.propose`` (edges, EdgeBoxes, filter, normalized cut).
* in-graph: ``affect_tf.proposals.graph`` under ``tf.function``, at batch 1
  (``propose_in_graph``) and batch 32 (``propose_batch_in_graph`` on decoded images).

Printed per path: the share of scenes where some candidate hits the object's ground-truth box
(IoU >= 0.5), the share where the top-objectness candidate hits it, the mean over scenes of the
best candidate's IoU with the object, the mean number of candidates and the mean seconds per
image on the CPU (after a warm-up; OpenCV's proposals one image at a time). Then their
agreement: the mean, over every OpenCV candidate, of its best IoU with the in-graph candidates of
the same scene (and the reverse), the share of scenes whose top-1 boxes overlap with IoU >= 0.5,
and the largest difference between the batch-32 and batch-1 boxes (0: the same answer).

With ``--folder``, the images of a folder instead (every JPEG/PNG, warped to ``--size`` so they
batch; no ground truth, so only speed and the two paths' agreement), and with ``--gpu 1`` the
in-graph path runs on the GPU when TensorFlow sees one (the OpenCV path stays on the CPU): the
in-graph variant of the serving export over a folder in batches, in images/s, beside the CPU path.

Usage (from the repository root; ~1.5 min with the defaults on one core):
    .venv/bin/python benchmarks/bench_graph_proposals.py
    .venv/bin/python benchmarks/bench_graph_proposals.py --scenes 50 --threads 2
    .venv/bin/python benchmarks/bench_graph_proposals.py --folder ~/photos --size 500 \
        --batch 64 --gpu 1
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time


# (flag, default, help); every flag is an integer.
_FLAGS = (
    ("--scenes", 200, "demo scenes."),
    ("--seed", 0, "seed of the scenes."),
    ("--size", 256, "scene side (the demo's: 256)."),
    ("--batch", 32, "batch of the batched graph."),
    ("--threads", 1, "CPU threads for TensorFlow, OpenCV and BLAS (default: one core)."),
)


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag, default, help_text in _FLAGS:
        parser.add_argument(flag, type=int, default=default, help=help_text)
    parser.add_argument("--folder", default="", help="images of this folder instead of scenes.")
    parser.add_argument("--gpu", type=int, default=0,
                        help="1: run the in-graph path on the GPU when one is visible.")
    return parser.parse_args(argv)


ARGS = _parse_args()
# Thread pools are sized when numpy, OpenCV and TensorFlow start: set before importing them.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = str(ARGS.threads)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if not ARGS.gpu:
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from affect_tf.proposals import graph as graph_proposals  # noqa: E402
from affect_tf.config import ProposalConfig  # noqa: E402
from affect_tf.datasets.affect_demo import scenes as demo_scenes  # noqa: E402
from affect_tf.metrics import box_iou  # noqa: E402
from affect_tf.proposals import pipeline  # noqa: E402
from affect_tf.proposals.edges import make_edge_detector  # noqa: E402

HIT_IOU = 0.5


def make_scenes(seed: int, count: int, size: int) -> tuple[list[np.ndarray], np.ndarray]:
    """``count`` demo scenes: uint8 [size, size, 3] images and float32 [count, 4] object boxes."""
    images, boxes = [], []
    for _, image, _, box in demo_scenes.generate_scenes(seed, count, size):
        images.append(image)
        boxes.append(box)
    return images, np.stack(boxes)


def folder_images(folder: str, size: int) -> list[np.ndarray]:
    """Every JPEG/PNG of ``folder`` (sorted), RGB, warped to ``size`` x ``size`` so they batch."""
    paths = sorted(path for path in pathlib.Path(folder).expanduser().iterdir()
                   if path.suffix.lower() in (".jpg", ".jpeg", ".png"))
    images = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is not None:
            images.append(cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (size, size),
                                     interpolation=cv2.INTER_AREA))
    if not images:
        raise SystemExit(f"--folder must hold JPEG or PNG images. Received: {folder} with "
                         f"{len(paths)} such files, none readable")
    return images


def run_opencv(images, config: ProposalConfig) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """The OpenCV path on every image: (boxes [k, 4] per image, objectness [k], s per image)."""
    detector = make_edge_detector(config)
    pipeline.propose(images[0], config, detector)  # Warm-up (first-call costs).
    boxes, scores = [], []
    start = time.perf_counter()
    for image in images:
        proposals = pipeline.propose(image, config, detector)
        boxes.append(proposals.boxes)
        scores.append(proposals.objectness)
    return boxes, scores, (time.perf_counter() - start) / len(images)


def run_graph_single(images, config: ProposalConfig):
    """``propose_in_graph`` under tf.function (unknown H, W), one image per call."""
    spec = tf.TensorSpec([None, None, 3], tf.uint8)
    function = tf.function(lambda image: graph_proposals.propose_in_graph(image, config),
                           input_signature=[spec], autograph=False)
    function(images[0])  # Trace and warm up.
    boxes, scores = [], []
    start = time.perf_counter()
    for image in images:
        box, score, valid = function(image)
        boxes.append(box.numpy()[:int(valid)])
        scores.append(score.numpy()[:int(valid)])
    return boxes, scores, (time.perf_counter() - start) / len(images)


def run_graph_batched(images, config: ProposalConfig, batch: int) -> tuple[np.ndarray, float]:
    """``propose_batch_in_graph`` on decoded batches: (boxes [N, m, 4], seconds per image)."""
    spec = tf.TensorSpec([None, None, None, 3], tf.uint8)
    function = tf.function(
        lambda batch_images: graph_proposals.propose_batch_in_graph(batch_images, config),
        input_signature=[spec], autograph=False)
    stacked = np.stack(images)
    function(stacked[:batch])  # Trace and warm up.
    boxes = []
    start = time.perf_counter()
    for first in range(0, len(images), batch):
        boxes.append(function(stacked[first:first + batch])[0].numpy())
    return np.concatenate(boxes), (time.perf_counter() - start) / len(images)


def hit_rates(candidates: list[np.ndarray], truth: np.ndarray) -> dict[str, float]:
    """Share of scenes with some candidate / the top-1 at IoU >= 0.5 with the object, the mean
    best IoU with it, and the mean candidate count."""
    any_hit, top_hit, best = [], [], []
    for boxes, box in zip(candidates, truth):
        ious = box_iou(boxes, box[None, :]) if len(boxes) else np.zeros(1)
        any_hit.append(bool(ious.max() >= HIT_IOU))
        top_hit.append(bool(ious[0] >= HIT_IOU))
        best.append(float(ious.max()))
    return {"any": float(np.mean(any_hit)), "top": float(np.mean(top_hit)),
            "best": float(np.mean(best)),
            "count": float(np.mean([len(boxes) for boxes in candidates]))}


def agreement(reference: list[np.ndarray], other: list[np.ndarray]) -> tuple[float, float]:
    """(mean over reference candidates of the best IoU with ``other``'s, top-1 overlap share)."""
    best, top = [], []
    for ref, oth in zip(reference, other):
        if len(ref) == 0:
            continue
        if len(oth) == 0:
            best.extend([0.0] * len(ref))
            top.append(False)
            continue
        ious = box_iou(ref[:, None, :], oth[None, :, :])
        best.extend(ious.max(axis=1).tolist())
        top.append(bool(ious[0, 0] >= HIT_IOU))
    return float(np.mean(best)), float(np.mean(top))


def main() -> None:
    config = ProposalConfig(edge_source="gradient")
    cv2.setNumThreads(ARGS.threads)
    tf.config.threading.set_intra_op_parallelism_threads(ARGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(ARGS.threads)
    gpus = tf.config.list_physical_devices("GPU")
    device = (f"GPU ({tf.config.experimental.get_device_details(gpus[0]).get('device_name')})"
              if gpus else "CPU")
    if ARGS.folder:
        images, truth = folder_images(ARGS.folder, ARGS.size), None
        source = f"{len(images)} images of {ARGS.folder}, warped to {ARGS.size} px"
    else:
        images, truth = make_scenes(ARGS.seed, ARGS.scenes, ARGS.size)
        source = f"{ARGS.scenes} demo scenes, {ARGS.size} px, seed {ARGS.seed}"
    print(f"{source}; m = {config.num_candidates}; {ARGS.threads} thread(s); in-graph path on "
          f"the {device}; TensorFlow {tf.__version__}")
    cv_boxes, _, cv_seconds = run_opencv(images, config)
    tf_boxes, _, tf_seconds = run_graph_single(images, config)
    batch_boxes, batch_seconds = run_graph_batched(images, config, ARGS.batch)
    padded = np.zeros_like(batch_boxes)
    for index, boxes in enumerate(tf_boxes):
        padded[index, :len(boxes)] = boxes
    print(f"{'path':<10} {'any hit':>8} {'top-1 hit':>10} {'best IoU':>9} {'boxes':>6} "
          f"{'s / image':>24} {'images / s':>22}")
    for name, boxes, seconds, rate in (
            ("opencv", cv_boxes, f"{cv_seconds:.4f}", f"{1 / cv_seconds:.1f}"),
            ("in-graph", tf_boxes, f"{tf_seconds:.4f} (b1) {batch_seconds:.4f} (b{ARGS.batch})",
             f"{1 / tf_seconds:.1f} (b1) {1 / batch_seconds:.1f} (b{ARGS.batch})")):
        if truth is None:
            print(f"{name:<10} {'-':>8} {'-':>10} {'-':>9} "
                  f"{np.mean([len(b) for b in boxes]):>6.1f} {seconds:>24} {rate:>22}")
            continue
        rates = hit_rates(boxes, truth)
        print(f"{name:<10} {rates['any']:>8.3f} {rates['top']:>10.3f} {rates['best']:>9.3f} "
              f"{rates['count']:>6.1f} {seconds:>24} {rate:>22}")
    mean_best, top_overlap = agreement(cv_boxes, tf_boxes)
    reverse_best, _ = agreement(tf_boxes, cv_boxes)
    print(f"mean best IoU of each OpenCV candidate with the in-graph ones: {mean_best:.3f}")
    print(f"mean best IoU of each in-graph candidate with the OpenCV ones: {reverse_best:.3f}")
    print(f"top-1 boxes overlap (IoU >= {HIT_IOU}): {top_overlap:.3f} of the scenes")
    print(f"batch {ARGS.batch} vs batch 1, largest box difference: "
          f"{np.abs(batch_boxes - padded).max():.2e}")


if __name__ == "__main__":
    main()
