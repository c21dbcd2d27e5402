"""The in-graph EdgeBoxes (``affect_tf.proposals.graph_edgeboxes``) against OpenCV's, on photographs.

Images: the RGB photographs scikit-image ships (astronaut, chelsea, coffee, rocket,
motorcycle_left; install scikit-image with the ``bench`` or ``test`` extra), or every image of
``--folder``; each resized so its longer side is ``--side`` (the proposal scale,
``proposal_max_side``), as the proposal stage resizes it.

Three tables:

* **Boxes, same edge maps**: the project's gradient edges of each photo go to OpenCV's
  ``ximgproc`` EdgeBoxes (``edgeboxes.edge_boxes``) and to the XLA program
  (``graph_edgeboxes.edge_boxes_in_graph``) with the same settings (``--max_boxes``). Printed:
  each one's box count, the share of OpenCV's boxes the program also returns (the same
  ``(x, y, w, h)``) and the reverse, the largest relative score difference over the common boxes,
  and seconds per image (OpenCV: CPU seconds; the program: wall seconds after its compilation,
  which is printed once). OpenCV orders boxes of equal score by an unstable sort, so a box at the
  cap can differ.
* **Candidates kept**: the m candidates of the OpenCV path (``affect_tf.proposals.propose``:
  edges, EdgeBoxes, filter, normalized cut with scikit-learn's k-means) against the served
  graph's (``graph.propose_in_graph`` with ``box_engine`` ``edgeboxes`` and ``windows``): the
  share of the OpenCV path's candidates that the other set holds (a box with IoU >= 0.7). The
  yardstick is the OpenCV path against itself with only its k-means seed changed.
* **Seconds per image** of each in-graph engine, the whole served proposal graph (edges, boxes,
  cut), beside the OpenCV path's.
* With ``--demo_scenes N``, **exact agreement on the demo**: the first N scenes of the demo's
  generator (``generate_scenes`` with ``--scene_seed``, 256 px, the demo's m = 16 and 500 boxes):
  in how many the program returns OpenCV's box list exactly (the same boxes in the same order),
  and in how many the whole served proposal graph (``edgeboxes`` engine) returns the OpenCV
  path's m candidates (every box within 1e-6). A scene that differs differs by ties: distinct
  boxes of equal score, which OpenCV orders by libstdc++'s unstable sort. About 4 s a scene on
  one core.

Times are on ``--threads`` CPU threads (TensorFlow's intra- and inter-op pools, OpenCV, BLAS);
the least of ``--repeats`` runs counts.

Usage (from the repository root, the project installed in the venv; ~2-4 min with the defaults
on one core, XLA's compilations included):
    .venv/bin/python benchmarks/bench_graph_edgeboxes.py
    .venv/bin/python benchmarks/bench_graph_edgeboxes.py --side 256 --threads 2
    .venv/bin/python benchmarks/bench_graph_edgeboxes.py --folder ~/photos --images 10
    .venv/bin/python benchmarks/bench_graph_edgeboxes.py --images 1 --demo_scenes 40
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
import time

_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left")
MATCH_IOU = 0.7


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", default="", help="measure the images of this folder instead.")
    parser.add_argument("--images", type=int, default=0, help="use at most this many (0: all).")
    parser.add_argument("--side", type=int, default=500, help="proposal_max_side.")
    parser.add_argument("--max_boxes", type=int, default=500, help="EdgeBoxes' cap.")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for every pool.")
    parser.add_argument("--repeats", type=int, default=2, help="runs per image; the least counts.")
    parser.add_argument("--demo_scenes", type=int, default=0,
                        help="also count exact agreement on this many demo scenes (0: skip).")
    parser.add_argument("--scene_seed", type=int, default=7, help="the demo scenes' seed.")
    return parser.parse_args(argv)


ARGS = _parse_args()
# Thread pools are sized when numpy, OpenCV and TensorFlow start: set before importing them.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ[_variable] = str(ARGS.threads)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from affect_tf.config import ProposalConfig  # noqa: E402
from affect_tf.datasets.affect_demo import scenes as demo_scenes  # noqa: E402
from affect_tf.io import decode_image_bytes  # noqa: E402
from affect_tf.proposals import edgeboxes, edges, pipeline, selection  # noqa: E402
from affect_tf.proposals import graph as graph_proposals  # noqa: E402
from affect_tf.proposals import graph_edgeboxes  # noqa: E402

cv2.setNumThreads(ARGS.threads)
tf.config.threading.set_intra_op_parallelism_threads(ARGS.threads)
tf.config.threading.set_inter_op_parallelism_threads(ARGS.threads)

ENGINES = ("edgeboxes", "windows")


def load_photos(folder: str, limit: int) -> list[tuple[str, np.ndarray]]:
    """``(name, RGB uint8 [H, W, 3])`` of the folder's images, or scikit-image's photographs."""
    if folder:
        paths = sorted(p for p in pathlib.Path(folder).expanduser().iterdir()
                       if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp"))
        if not paths:
            raise SystemExit(f"--folder must hold JPEG/PNG/BMP/WebP images. Received: {folder} "
                             "holds none.")
        photos = [(p.name, pipeline.to_rgb_uint8(decode_image_bytes(p.read_bytes())))
                  for p in paths]
    else:
        try:
            from skimage import data
        except ImportError as error:
            raise SystemExit("scikit-image is needed for the default photographs: "
                             "pip install -e '.[bench]', or pass --folder.") from error
        photos = [(name, data.stereo_motorcycle()[0] if name == "motorcycle_left"
                   else getattr(data, name)()) for name in _PHOTOS]
    return photos[:limit] if limit else photos


def _least(function, repeats: int) -> tuple[object, float]:
    """``(result, least wall seconds)`` of ``repeats`` calls."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return result, best


def kept_fraction(reference_xyxy: np.ndarray, other_xyxy: np.ndarray) -> float:
    """Share of the reference boxes that some other box overlaps with IoU >= MATCH_IOU."""
    if len(reference_xyxy) == 0:
        return float("nan")
    if len(other_xyxy) == 0:
        return 0.0
    both = np.concatenate([reference_xyxy, other_xyxy]).astype(np.float64)
    overlaps = selection.iou_affinity(both)[:len(reference_xyxy), len(reference_xyxy):]
    return float(np.mean(overlaps.max(axis=1) >= MATCH_IOU))


def _yxyx_to_xyxy(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Normalized ``[y1, x1, y2, x2]`` -> pixel ``[x1, y1, x2, y2]``."""
    return np.stack([boxes[:, 1] * width, boxes[:, 0] * height,
                     boxes[:, 3] * width, boxes[:, 2] * height], axis=1)


def box_agreement(small: np.ndarray, config: ProposalConfig, detector, program) -> dict:
    """OpenCV's and the program's boxes on the same edge maps of one resized photo."""
    edge_map, orientation = detector(small)
    (cv_boxes, cv_scores), cv_seconds = _least(
        lambda: edgeboxes.edge_boxes(edge_map, orientation, config), ARGS.repeats)
    edge_tensor, orientation_tensor = tf.constant(edge_map), tf.constant(orientation)
    (graph_boxes, graph_scores), graph_seconds = _least(
        lambda: tuple(t.numpy() for t in program(edge_tensor, orientation_tensor)), ARGS.repeats)
    cv_keys = {tuple(box): score for box, score in zip(cv_boxes.tolist(), cv_scores.tolist())}
    graph_keys = {tuple(box): score
                  for box, score in zip(graph_boxes.tolist(), graph_scores.tolist())}
    common = cv_keys.keys() & graph_keys.keys()
    score_gap = max((abs(cv_keys[key] - graph_keys[key]) / max(abs(cv_keys[key]), 1e-12)
                     for key in common), default=0.0)
    return {"opencv": len(cv_keys), "graph": len(graph_keys),
            "opencv_in_graph": len(common) / max(len(cv_keys), 1),
            "graph_in_opencv": len(common) / max(len(graph_keys), 1),
            "score_gap": score_gap, "opencv_s": cv_seconds, "graph_s": graph_seconds}


def candidate_match(small: np.ndarray, config: ProposalConfig, detector, served) -> dict:
    """The OpenCV path's m candidates against another k-means seed's and each engine's."""
    height, width = small.shape[:2]
    reference, opencv_seconds = _least(lambda: pipeline.propose(small, config, detector),
                                       ARGS.repeats)
    other_seed = pipeline.propose(
        small, dataclasses.replace(config, proposal_seed=config.proposal_seed + 1), detector)
    reference_xyxy = _yxyx_to_xyxy(reference.boxes, height, width)
    row = {"yardstick": kept_fraction(reference_xyxy,
                                      _yxyx_to_xyxy(other_seed.boxes, height, width)),
           "opencv_s": opencv_seconds}
    image = tf.constant(small)
    for engine, function in served.items():
        (boxes, _, count), seconds = _least(lambda f=function: f(image), ARGS.repeats)
        graph_xyxy = _yxyx_to_xyxy(boxes.numpy()[:int(count)], height, width)
        row[engine] = kept_fraction(reference_xyxy, graph_xyxy)
        row[f"{engine}_s"] = seconds
    return row


# The demo's proposal settings (configs/demo.flags): m = 16, everything else the defaults.
DEMO_CANDIDATES = 16
DEMO_SIDE = 256


def _rows_sorted(boxes: np.ndarray) -> np.ndarray:
    """The boxes [k, 4] in lexicographic row order: the two paths order candidates of equal
    objectness alike only by chance, so they are compared as sets."""
    return boxes[np.lexsort(boxes.T[::-1])]


def demo_agreement(count: int, seed: int) -> None:
    """Exact agreement of the program and of the served proposal graph with OpenCV on demo scenes.

    Prints per scene whether the program's boxes are OpenCV's list (same boxes, same order) and
    whether the served graph's candidates are the OpenCV path's, then the two counts.
    """
    config = ProposalConfig(num_candidates=DEMO_CANDIDATES)
    detector = edges.make_edge_detector(config)
    settings = graph_edgeboxes.settings_for(config)
    program = tf.function(
        lambda e, o: graph_edgeboxes.edge_boxes_in_graph(e, o, config, settings),
        input_signature=[tf.TensorSpec([None, None], tf.float32)] * 2, autograph=False)
    served = tf.function(
        lambda image: graph_proposals.propose_in_graph(image, config, box_engine="edgeboxes"),
        input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)], autograph=False)
    print(f"\n== exact agreement on {count} demo scenes (generate_scenes seed {seed}, "
          f"{DEMO_SIDE} px, m = {DEMO_CANDIDATES}, max_boxes {config.max_boxes}) ==")
    same_lists = same_candidates = 0
    start = time.perf_counter()
    for index, image, _, _ in demo_scenes.generate_scenes(seed, count, DEMO_SIDE):
        small = pipeline.resize_for_proposals(image, config.proposal_max_side)
        edge_map, orientation = detector(small)
        opencv_boxes, _ = edgeboxes.edge_boxes(edge_map, orientation, config)
        graph_boxes, _ = program(tf.constant(edge_map), tf.constant(orientation))
        same_list = np.array_equal(graph_boxes.numpy(), opencv_boxes)
        reference = pipeline.propose(image, config, detector).boxes
        boxes, _, valid = served(tf.constant(image))
        ours = boxes.numpy()[:int(valid)]
        same = ours.shape == reference.shape and np.allclose(
            _rows_sorted(ours), _rows_sorted(reference), atol=1e-6)
        same_lists += same_list
        same_candidates += same
        print(f"  scene {index:3d}: EdgeBoxes list {'same' if same_list else 'differs'} "
              f"({len(opencv_boxes)} / {len(graph_boxes)} boxes), candidates "
              f"{'same' if same else 'differ'}", flush=True)
    print(f"  OpenCV's exact box list: {same_lists} of {count} scenes; the OpenCV path's "
          f"{DEMO_CANDIDATES} candidates: {same_candidates} of {count} "
          f"({100 * same_candidates / count:.0f} %); {time.perf_counter() - start:.0f} s")


def main() -> None:
    config = ProposalConfig(proposal_max_side=ARGS.side, max_boxes=ARGS.max_boxes)
    detector = edges.make_edge_detector(config)
    photos = [(name, pipeline.resize_for_proposals(pipeline.to_rgb_uint8(image), ARGS.side))
              for name, image in load_photos(ARGS.folder, ARGS.images)]
    print(f"bench_graph_edgeboxes: {len(photos)} images "
          f"({'--folder ' + ARGS.folder if ARGS.folder else 'scikit-image photographs'}), "
          f"longer side {ARGS.side} px, gradient edges, max_boxes {ARGS.max_boxes}, m = "
          f"{config.num_candidates}, {ARGS.threads} thread(s), TensorFlow {tf.__version__}, "
          f"least of {ARGS.repeats} runs")

    settings = graph_edgeboxes.settings_for(config)
    program = tf.function(
        lambda e, o: graph_edgeboxes.edge_boxes_in_graph(e, o, config, settings),
        input_signature=[tf.TensorSpec([None, None], tf.float32)] * 2, autograph=False)
    start = time.perf_counter()
    warm_edges, warm_orientation = detector(photos[0][1])
    program(tf.constant(warm_edges), tf.constant(warm_orientation))
    print(f"\n== boxes, same edge maps (XLA compilation and a first run: "
          f"{time.perf_counter() - start:.1f} s, once per canvas) ==")
    header = (f"  {'image':<24s}{'opencv':>8s}{'graph':>8s}{'cv in graph':>13s}"
              f"{'graph in cv':>13s}{'score gap':>11s}{'opencv s':>10s}{'graph s':>10s}")
    print(header)
    agreements = []
    for name, small in photos:
        row = box_agreement(small, config, detector, program)
        agreements.append(row)
        print(f"  {name[:23]:<24s}{row['opencv']:8d}{row['graph']:8d}"
              f"{row['opencv_in_graph']:13.3f}{row['graph_in_opencv']:13.3f}"
              f"{row['score_gap']:11.1e}{row['opencv_s']:10.3f}{row['graph_s']:10.2f}", flush=True)
    shares = np.array([[r["opencv_in_graph"], r["graph_in_opencv"]] for r in agreements])
    print(f"  mean: {shares[:, 0].mean():.3f} of OpenCV's boxes in the program's set, "
          f"{shares[:, 1].mean():.3f} the reverse (min {shares.min():.3f})")

    served = {engine: tf.function(
        lambda image, engine=engine: graph_proposals.propose_in_graph(
            image, config, box_engine=engine),
        input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)], autograph=False)
        for engine in ENGINES}
    start = time.perf_counter()
    for function in served.values():
        function(tf.constant(photos[0][1]))
    print(f"\n== candidates kept: share of the OpenCV path's m = {config.num_candidates} "
          f"candidates another set holds (IoU >= {MATCH_IOU}); seconds per image of the whole "
          f"proposal step (tracing and compilation: {time.perf_counter() - start:.1f} s) ==")
    print(f"  {'image':<24s}{'k-means seed + 1':>18s}" + "".join(f"{e:>12s}" for e in ENGINES)
          + f"{'opencv s':>10s}" + "".join(f"{e + ' s':>13s}" for e in ENGINES))
    rows = []
    for name, small in photos:
        row = candidate_match(small, config, detector, served)
        rows.append(row)
        print(f"  {name[:23]:<24s}{row['yardstick']:18.2f}"
              + "".join(f"{row[e]:12.2f}" for e in ENGINES) + f"{row['opencv_s']:10.3f}"
              + "".join(f"{row[e + '_s']:13.2f}" for e in ENGINES), flush=True)
    table = {key: np.array([r[key] for r in rows]) for key in rows[0]}
    print(f"  {'mean':<24s}{np.nanmean(table['yardstick']):18.2f}"
          + "".join(f"{np.nanmean(table[e]):12.2f}" for e in ENGINES)
          + f"{np.median(table['opencv_s']):10.3f}"
          + "".join(f"{np.median(table[e + '_s']):13.2f}" for e in ENGINES)
          + "   (seconds: median)")
    yardstick = np.nanmean(table["yardstick"])
    for engine in ENGINES:
        kept = np.nanmean(table[engine])
        verdict = "MET" if kept >= yardstick else "MISSED"
        print(f"  {engine}: candidates kept {kept:.2f} vs the yardstick's {yardstick:.2f} "
              f"(the OpenCV path under another k-means seed): {verdict}")
    if ARGS.demo_scenes > 0:
        demo_agreement(ARGS.demo_scenes, ARGS.scene_seed)


if __name__ == "__main__":
    sys.exit(main())
