"""Speed of the proposal stage (edges -> EdgeBoxes -> filter -> normalized cut), on one core.

Per edge source (``gradient``, ``hed``) it prints the mean seconds per image of each step of
``affect_tf.proposals.propose`` and of the whole stage (``run_proposal_stage`` on encoded JPEG
bytes: decoding, proposals and cache writes), and the recall of the synthetic scenes' objects
(IoU >= 0.7) by all filtered EdgeBoxes boxes and by the m = 50 selected candidates. Then the
normalized-cut selection on exactly 1,000 boxes, with its parts (affinity, eigenvectors by the
dense and the ARPACK solver, k-means with 10 / 3 / 1 restarts, and how far fewer restarts move the
selection), and the dense-vs-ARPACK eigen-solver times from 200 to 1,000 boxes.

Targets (printed as MET / MISSED with the figure):
    whole stage < 0.25 s per image with gradient edges;
    selection < 0.1 s for 1,000 boxes.

Images: realistic synthetic photos (smooth backgrounds, textured patches, 3-8 overlapping objects,
clutter, camera blur, sensor noise, JPEG) at 500 px on the longer side, seeded; or the files of
``--image_glob`` (e.g. matplotlib's ``mpl-data/sample_data/grace_hopper.jpg``, a real photo).

Usage (from the repository root):
    python benchmarks/bench_proposals.py                          # ~3 min on 1 core (HED ~2/3)
    python benchmarks/bench_proposals.py --edge_source gradient --images 40
    python benchmarks/bench_proposals.py --image_glob '/photos/*.jpg'
"""

from __future__ import annotations

import argparse
import glob
import os
import pathlib
import sys
import tempfile
import time

# One core: set before numpy, OpenCV and TensorFlow start their thread pools.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ[_variable] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from affect_tf.io import decode_image_bytes, encode_jpeg  # noqa: E402
from affect_tf.config import ProposalConfig  # noqa: E402
from affect_tf.proposals import edgeboxes, edges, pipeline, selection  # noqa: E402
from affect_tf.proposals.cache import ProposalCache  # noqa: E402
from affect_tf.proposals.local_runner import run_proposal_stage  # noqa: E402

STAGE_TARGET_SECONDS = 0.25
SELECTION_TARGET_SECONDS = 0.1
STEPS = ("resize", "edges", "edgeboxes", "filter", "selection")


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20, help="synthetic photos per source.")
    parser.add_argument("--hed_images", type=int, default=4,
                        help="images for the HED source (a few seconds each on one core).")
    parser.add_argument("--edge_source", default="all", choices=("all", "gradient", "hed"))
    parser.add_argument("--image_glob", default="",
                        help="use these image files instead of synthetic photos.")
    parser.add_argument("--max_side", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs of the 1,000-box selection; the median counts.")
    return parser.parse_args(argv)


def make_synthetic_photo(rng: np.random.Generator, longer_side: int = 500):
    """A photo-like scene and the pixel-corner boxes [x1, y1, x2, y2] of its visible objects.

    Returns:
        ``(image uint8 [H, W, 3] RGB, boxes float32 [k, 4])``.
    """
    aspect = rng.choice([4 / 3, 3 / 2, 1.0, 3 / 4, 2 / 3])
    if aspect >= 1:
        width, height = longer_side, int(round(longer_side / aspect))
    else:
        height, width = longer_side, int(round(longer_side * aspect))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    # Background: low-frequency colour field, a shading gradient, maybe a horizon.
    low = rng.uniform(0, 1, (4, 5, 3)).astype(np.float32)
    image = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    image = 0.25 + 0.5 * image + 0.15 * (yy / height)[..., None] * rng.uniform(-1, 1, 3).astype(
        np.float32)
    if rng.uniform() < 0.5:
        split = int(height * rng.uniform(0.3, 0.7))
        image[split:] = image[split:] * rng.uniform(0.5, 0.9) + rng.uniform(0, 0.2, 3).astype(
            np.float32)
    labels = np.full((height, width), -1, np.int32)
    num_objects = int(rng.integers(3, 9))
    for index in range(num_objects):
        object_w = int(rng.uniform(0.08, 0.6) * width)
        object_h = min(int(object_w * rng.uniform(0.4, 2.2)), int(0.9 * height))
        cx = rng.uniform(object_w / 2, width - object_w / 2)
        cy = rng.uniform(object_h / 2, height - object_h / 2)
        mask = np.zeros((height, width), np.uint8)
        kind = rng.integers(3)
        if kind == 0:
            cv2.ellipse(mask, (int(cx), int(cy)), (object_w // 2, object_h // 2), 0, 0, 360, 1, -1)
        elif kind == 1:
            cv2.rectangle(mask, (int(cx - object_w / 2), int(cy - object_h / 2)),
                          (int(cx + object_w / 2), int(cy + object_h / 2)), 1, -1)
        else:
            angles = np.sort(rng.uniform(0, 2 * np.pi, 7))
            points = np.stack([cx + object_w / 2 * np.cos(angles) * rng.uniform(0.6, 1, 7),
                               cy + object_h / 2 * np.sin(angles) * rng.uniform(0.6, 1, 7)], 1)
            cv2.fillPoly(mask, [points.astype(np.int32)], 1)
        colour = rng.uniform(0, 1, 3).astype(np.float32)
        shade = (0.8 + 0.4 * (xx - cx) / max(object_w, 1))[..., None]
        texture = cv2.GaussianBlur(rng.normal(0, 0.08, (height, width)).astype(np.float32), (0, 0),
                                   rng.uniform(0.8, 3))[..., None]
        inside = mask.astype(bool)
        image = np.where(inside[..., None], np.clip(colour * shade + texture, 0, 1), image)
        labels[inside] = index
    # Textured patches (foliage, fabric): strong band-pass noise.
    for _ in range(int(rng.integers(1, 4))):
        patch_w, patch_h = int(rng.uniform(0.2, 0.7) * width), int(rng.uniform(0.2, 0.7) * height)
        px, py = int(rng.uniform(0, width - patch_w)), int(rng.uniform(0, height - patch_h))
        noise = rng.normal(0, rng.uniform(0.08, 0.2), (patch_h, patch_w)).astype(np.float32)
        noise = cv2.GaussianBlur(noise, (0, 0), rng.uniform(0.7, 2.0))[..., None] * 2.5
        image[py:py + patch_h, px:px + patch_w] = np.clip(
            image[py:py + patch_h, px:px + patch_w] + noise, 0, 1)
    # Clutter: small blobs and thin lines.
    for _ in range(int(rng.integers(5, 30))):
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        cv2.circle(image, centre, int(rng.uniform(2, 12)),
                   tuple(float(v) for v in rng.uniform(0, 1, 3)), -1, cv2.LINE_AA)
    for _ in range(int(rng.integers(0, 6))):
        start = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        end = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        cv2.line(image, start, end, tuple(float(v) for v in rng.uniform(0, 1, 3)), 1, cv2.LINE_AA)
    # Sensor noise, lens blur, JPEG.
    image = cv2.GaussianBlur(image + rng.normal(0, 0.02, image.shape).astype(np.float32),
                             (0, 0), 0.8)
    image = decode_image_bytes(encode_jpeg(np.clip(image * 255, 0, 255).astype(np.uint8), quality=85))
    boxes = []
    for index in range(num_objects):
        ys, xs = np.nonzero(labels == index)
        if ys.size >= 800:  # Mostly hidden objects are no ground truth.
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return image, np.asarray(boxes, np.float32).reshape(-1, 4)


def _load_images(args):
    if args.image_glob:
        paths = sorted(glob.glob(args.image_glob))
        if not paths:
            raise SystemExit(f"--image_glob matched no file. Received: {args.image_glob!r}")
        images = []
        for path in paths[:args.images]:
            with open(path, "rb") as handle:
                image = decode_image_bytes(handle.read(), path)
            images.append((pipeline.resize_for_proposals(image, args.max_side), None))
        return images, f"{len(images)} files from {args.image_glob}"
    rng = np.random.default_rng(args.seed)
    images = [make_synthetic_photo(rng, args.max_side) for _ in range(args.images)]
    return images, f"{len(images)} synthetic photos, seed {args.seed}"


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return selection.iou_affinity(np.concatenate([a, b]))[:len(a), len(a):]


class _Timer:
    """Accumulates wall seconds and this process's CPU seconds per name.

    The machine may be shared: with every thread pool at one thread, the process CPU time is what
    the code costs on one dedicated core, while wall time also counts waiting for a busy core.
    """

    def __init__(self):
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def __call__(self, name: str, function, *args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(*args, **kwargs)
        self.wall.setdefault(name, []).append(time.perf_counter() - wall)
        self.cpu.setdefault(name, []).append(time.process_time() - cpu)
        return result

    def line(self, name: str, label: str = "") -> str:
        cpu, wall = np.mean(self.cpu[name]), np.mean(self.wall[name])
        return f"  {label or name:<10s} {cpu:7.3f} s/image CPU ({wall:.3f} s wall)"


def _verdict(value: float, target: float) -> str:
    return f"{'MET' if value < target else 'MISSED'} ({value:.3f} s vs target < {target} s)"


def _steps(image: np.ndarray, config: ProposalConfig, detector, timer: _Timer):
    """``propose``'s steps one by one, timed; returns the filtered boxes and the selection."""
    small = timer("resize", pipeline.resize_for_proposals, image, config.proposal_max_side)
    edge_map, orientation = timer("edges", detector, small)
    boxes, scores = timer("edgeboxes", edgeboxes.edge_boxes, edge_map, orientation, config)
    boxes, scores = timer("filter", edgeboxes.geometric_filter, boxes, scores, config)
    keep = np.zeros((0,), np.int64)
    if len(boxes):
        keep = timer("selection", selection.normalized_cut_select, edgeboxes.xywh_to_xyxy(boxes),
                     scores, config.num_candidates, affinity=config.affinity,
                     n_init=config.kmeans_n_init, seed=config.proposal_seed)
    return boxes, keep


def bench_source(source: str, images, config: ProposalConfig) -> float:
    """Per-step means, recall and the whole stage for one edge source; returns the stage's mean
    CPU seconds per image."""
    detector = edges.make_edge_detector(config)
    detector(images[0][0])  # Warm up (HED: builds the network).
    timer = _Timer()
    found_all, found_selected, counts = [], [], []
    for image, truth in images:
        boxes, keep = _steps(image, config, detector, timer)
        proposals = timer("propose", pipeline.propose, image, config, detector)
        counts.append(len(boxes))
        if truth is not None and len(truth):
            every = edgeboxes.xywh_to_xyxy(boxes)
            found_all.extend(_iou(truth, every).max(axis=1) >= 0.7 if len(every) else
                             [False] * len(truth))
            found_selected.extend(_iou(truth, every[keep]).max(axis=1) >= 0.7 if len(keep) else
                                  [False] * len(truth))
        assert len(proposals) == len(keep), "the timed steps must match propose()"
    n = len(images)
    with tempfile.TemporaryDirectory() as directory:
        cache = ProposalCache(directory, config)
        examples = [(f"{index:05d}.jpg", encode_jpeg(image)) for index, (image, _) in
                    enumerate(images)]
        timer("stage", run_proposal_stage, examples, cache, config, edge_detector=detector,
              log_every_seconds=1e9)
    stage_cpu = timer.cpu["stage"][0] / n
    stage_wall = timer.wall["stage"][0] / n
    print(f"\n== edge source: {source} ({n} images) ==")
    for step in STEPS:
        if step in timer.cpu:
            print(timer.line(step))
    print(timer.line("propose") + f", max {np.max(timer.cpu['propose']):.3f} s CPU")
    print(f"  {'stage':<10s} {stage_cpu:7.3f} s/image CPU ({stage_wall:.3f} s wall): decode + "
          "propose + cache")
    print(f"  boxes after the filter: mean {np.mean(counts):.0f}, max {np.max(counts)}")
    if found_all:
        print(f"  object recall at IoU >= 0.7: {np.mean(found_all):.2f} by all filtered boxes, "
              f"{np.mean(found_selected):.2f} by the {config.num_candidates} selected "
              f"({len(found_all)} objects)")
    return stage_cpu


def _median_seconds(function, repeats: int) -> tuple[float, float]:
    """Median (CPU, wall) seconds of ``repeats`` calls."""
    cpu_times, wall_times = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        cpu_times.append(time.process_time() - cpu)
        wall_times.append(time.perf_counter() - wall)
    return float(np.median(cpu_times)), float(np.median(wall_times))


def _fmt(seconds: tuple[float, float]) -> str:
    return f"{seconds[0]:.4f} s CPU ({seconds[1]:.4f} s wall)"


def _thousand_boxes(images, config: ProposalConfig) -> tuple[np.ndarray, np.ndarray]:
    """1,000 real EdgeBoxes boxes (pixel [x1, y1, x2, y2]) and scores from the busiest image."""
    generous = ProposalConfig(max_boxes=4000, edge_boxes_min_score=0.005)
    best = (np.zeros((0, 4)), np.zeros((0,)))
    for image, _ in images:
        edge_map, orientation = edges.gradient_edges(image)
        boxes, scores = edgeboxes.geometric_filter(
            *edgeboxes.edge_boxes(edge_map, orientation, generous), config)
        if len(boxes) > len(best[0]):
            best = (edgeboxes.xywh_to_xyxy(boxes), scores)
        if len(best[0]) >= 1000:
            break
    boxes, scores = best
    if len(boxes) < 1000:  # Top up with random boxes (only if the images are very plain).
        rng = np.random.default_rng(0)
        extra = 1000 - len(boxes)
        corners = rng.uniform(0, 400, size=(extra, 2))
        boxes = np.concatenate([boxes, np.concatenate(
            [corners, corners + rng.uniform(30, 300, size=(extra, 2))], axis=1)])
        scores = np.concatenate([scores, rng.uniform(0, 0.05, size=extra)])
    return boxes[:1000], scores[:1000].astype(np.float64)


def bench_selection(images, config: ProposalConfig, repeats: int) -> float:
    """The 1,000-box selection and its parts; returns its median CPU seconds."""
    from sklearn.cluster import KMeans  # pylint: disable=import-outside-toplevel

    boxes, scores = _thousand_boxes(images, config)
    m = config.num_candidates

    def select(n_init):
        return selection.normalized_cut_select(boxes, scores, m, affinity=config.affinity,
                                               n_init=n_init, seed=config.proposal_seed)

    select(config.kmeans_n_init)  # Warm up.
    total = _median_seconds(lambda: select(config.kmeans_n_init), repeats)
    affinity = selection.iou_affinity(boxes)
    print(f"\n== normalized-cut selection, {len(boxes)} boxes, m = {m} ==")
    seconds = _median_seconds(lambda: selection.iou_affinity(boxes), repeats)
    print(f"  affinity (IoU)        {_fmt(seconds)}")
    for solver in ("dense", "arpack"):
        seconds = _median_seconds(
            lambda: selection.spectral_embedding(affinity, m, solver=solver), repeats)
        print(f"  eigenvectors {solver:<8s} {_fmt(seconds)}")
    embedding = selection.spectral_embedding(affinity, m)
    reference = set(select(10).tolist())
    for n_init in (10, 3, 1):
        seconds = _median_seconds(
            lambda: KMeans(n_clusters=m, n_init=n_init,
                           random_state=config.proposal_seed).fit(embedding),
            repeats)
        inertia = KMeans(n_clusters=m, n_init=n_init, random_state=config.proposal_seed).fit(
            embedding).inertia_
        shared = len(reference & set(select(n_init).tolist()))
        print(f"  k-means n_init={n_init:<3d}    {_fmt(seconds)}, inertia {inertia:.2f}, "
              f"selection shares {shared}/{m} boxes with n_init=10")
    print(f"  whole selection (n_init={config.kmeans_n_init}): {_fmt(total)}, median of {repeats}")
    print("\n== eigenvectors, dense LAPACK (evr) vs ARPACK, m = 50 ==")
    for n in (200, 400, 700, 1000):
        sub = selection.iou_affinity(boxes[:n])
        dense = _median_seconds(lambda: selection.spectral_embedding(sub, m, solver="dense"), 3)
        arpack = _median_seconds(lambda: selection.spectral_embedding(sub, m, solver="arpack"), 3)
        print(f"  n = {n:4d}: dense {_fmt(dense)}, arpack {_fmt(arpack)}")
    return total[0]


def main(argv=None) -> None:
    args = _parse_args(argv)
    cv2.setNumThreads(1)
    images, description = _load_images(args)
    print(f"bench_proposals: {description}, longer side {args.max_side} px, one core "
          f"(cv2 threads 1, BLAS/OpenMP/TF threads 1); CPU = this process's CPU seconds, the "
          f"cost on a dedicated core; wall also counts waiting on a shared machine "
          f"(load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    sources = ("gradient", "hed") if args.edge_source == "all" else (args.edge_source,)
    stage_means = {}
    for source in sources:
        config = ProposalConfig(edge_source=source, proposal_max_side=args.max_side)
        subset = images[:args.hed_images] if source == "hed" else images
        stage_means[source] = bench_source(source, subset, config)
    selection_seconds = bench_selection(images, ProposalConfig(proposal_max_side=args.max_side),
                                        args.repeats)
    print("\n== targets (CPU seconds on one core) ==")
    if "gradient" in stage_means:
        verdict = _verdict(stage_means["gradient"], STAGE_TARGET_SECONDS)
        print(f"  whole stage, gradient edges: {verdict}")
    if "hed" in stage_means:
        print(f"  whole stage, HED edges (no target): {stage_means['hed']:.3f} s/image")
    print(f"  selection, 1,000 boxes:      {_verdict(selection_seconds, SELECTION_TARGET_SECONDS)}")


if __name__ == "__main__":
    main()
