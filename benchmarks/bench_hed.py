"""HED edges for the proposal stage: bfloat16 vs float32, and batching photos of many sizes.

Three parts, on scikit-image's photographs (astronaut, chelsea, coffee, motorcycle_left, rocket;
JPEG-encoded once, as a dataset stores them) at ``ProposalConfig``'s defaults with
``edge_source=hed``:

1. **Cost per photo**, for each ``hed_precision``: float32, bfloat16 (VGG16 blocks 3-5 in
   bfloat16) and bfloat16_all (all five blocks). CPU seconds (``time.process_time``: every
   thread of this process) and wall seconds of each step of the stage: decode + resize, HED's
   network, orientation + thinning, EdgeBoxes + filter + normalized cut. The least of
   ``--repeats`` runs per photo counts (a shared machine only ever adds time). ``--threads``
   sets TensorFlow's, OpenCV's and BLAS's thread pools before they start. Target: the stage
   <= 0.6 CPU s per photo.
2. **Candidates kept.** The m = 50 candidates of the float32 network with the configured k-means
   seed are the reference; a candidate is kept when the other set holds a box with IoU >= 0.7
   with it. A lower precision may be the default only if it keeps at least what float32 keeps
   under another k-means seed (``proposal_seed`` + 1), the noise yardstick. Printed beside it:
   the same over 4 seeds (each precision against float32 at equal seeds; the yardstick over
   the ordered pairs of seeds), and the raw edge maps' max and mean absolute difference
   (probabilities in [0, 1]).
3. **Batching photos of many sizes** (``--mix N``). Seeded mixes of N image sizes (aspect ratios
   4:3, 3:2, 16:9, 1:1 and others up to 2:1, a quarter portrait): one where 70 % of the photos
   are larger than ``proposal_max_side`` (resized to a 500 px longer side) and the rest of any
   size from 200 px, one where all are. For each, the mean images per network call of the
   stage's buckets (``local_runner._hed_tasks``) against grouping each window of 4 batches
   apart (the stage's route before), counted without running the network; then images/s of
   the real network on the first ``--mix_images`` images of the first mix, both ways.

Usage (from the repository root; about 5 minutes on 2 shared cores at the defaults):
    .venv/bin/python benchmarks/bench_hed.py --threads 1
    .venv/bin/python benchmarks/bench_hed.py --threads 2 --mix 0
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="threads of every pool.")
    parser.add_argument("--repeats", type=int, default=2, help="runs per photo; the least counts.")
    parser.add_argument("--mix", type=int, default=1000,
                        help="image sizes of the batching mix (0: skip part 3).")
    parser.add_argument("--mix_images", type=int, default=48,
                        help="images of the mix run through the real network, both ways.")
    parser.add_argument("--batch_size", type=int, default=8, help="hed_batch_size.")
    return parser.parse_args(argv)


ARGS = _parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    # Before numpy, OpenCV and TensorFlow start their thread pools.
    for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                      "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ[_variable] = str(ARGS.threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from affect_tf.config import ProposalConfig  # noqa: E402
from affect_tf.io import encode_jpeg, encode_png  # noqa: E402
from affect_tf.proposals import edges, local_runner, pipeline  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee", "motorcycle_left", "rocket")
MATCH_IOU = 0.7
STAGE_TARGET_SECONDS = 0.6
# k-means seeds of the multi-seed yardstick (the configured seed and the next ones).
YARDSTICK_SEEDS = 4
# Aspect ratios (longer / shorter side) of the size mix and their shares; the rest arbitrary.
MIX_RATIOS = {4 / 3: 0.35, 3 / 2: 0.25, 16 / 9: 0.10, 1.0: 0.10}
MIX_PORTRAIT_SHARE = 0.25
MIX_LARGE_SHARE = 0.7
# The stage's route before the buckets: each window of this many batches grouped by size apart.
OLD_WINDOW_BATCHES = 4


def photos() -> list[tuple[str, bytes]]:
    try:
        from skimage import data  # pylint: disable=import-outside-toplevel
    except ImportError as error:
        raise SystemExit(f"scikit-image is needed: pip install -e '.[bench]'. Received: {error}")
    images = []
    for name in PHOTOS:
        image = data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(data, name)()
        images.append((name, encode_jpeg(image)))
    return images


def _timed(function, *args, **kwargs):
    """(result, CPU seconds, wall seconds)."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.process_time() - cpu, time.perf_counter() - wall


@dataclasses.dataclass
class PhotoRun:
    """One photo through the stage: CPU and wall seconds per step, the raw edge map, the boxes."""

    cpu: dict[str, float]
    wall: dict[str, float]
    probabilities: np.ndarray
    boxes: np.ndarray


def run_photo(name: str, data: bytes, config: ProposalConfig, detector) -> PhotoRun:
    """The stage's steps for one photo, each timed; the boxes must equal propose_encoded's."""
    cpu, wall = {}, {}
    small, cpu["decode+resize"], wall["decode+resize"] = _timed(
        pipeline.decode_for_proposals, name, data, config)
    probabilities, cpu["network"], wall["network"] = _timed(detector.edge_probabilities, small)
    (edge_map, orientation), cpu["orient+thin"], wall["orient+thin"] = _timed(
        edges.hed_edges_from_probabilities, probabilities)
    proposals, cpu["boxes+select"], wall["boxes+select"] = _timed(
        pipeline.propose_from_edges, edge_map, orientation, config)
    return PhotoRun(cpu, wall, probabilities, proposals.boxes)


def best_of(name: str, data: bytes, config: ProposalConfig, detector, repeats: int) -> PhotoRun:
    runs = [run_photo(name, data, config, detector) for _ in range(repeats)]
    first = runs[0]
    for run in runs[1:]:
        np.testing.assert_array_equal(run.boxes, first.boxes)  # Deterministic, or no yardstick.
    return PhotoRun({step: min(r.cpu[step] for r in runs) for step in first.cpu},
                    {step: min(r.wall[step] for r in runs) for step in first.wall},
                    first.probabilities, first.boxes)


def kept_fraction(reference: np.ndarray, other: np.ndarray, iou: float = MATCH_IOU) -> float:
    """Share of ``reference``'s boxes [k, 4] (normalized y1 x1 y2 x2) with an IoU >= ``iou``
    partner in ``other``."""
    if len(reference) == 0:
        return 1.0
    if len(other) == 0:
        return 0.0
    a, b = reference.astype(np.float64)[:, None], other.astype(np.float64)[None]
    height = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    width = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    intersection = height * width
    overlaps = intersection / np.maximum(_area(a) + _area(b) - intersection, 1e-12)
    return float(np.mean(overlaps.max(axis=1) >= iou))


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def bench_photos(args) -> None:
    config = ProposalConfig(edge_source="hed", hed_batch_size=args.batch_size)
    detectors = {precision: edges.HEDEdgeDetector(precision=precision)
                 for precision in edges.HED_BFLOAT16_BLOCKS}
    images = photos()
    for detector in detectors.values():  # Warm up: trace and build the kernels once.
        detector.edge_probabilities(np.zeros((64, 64, 3), np.uint8))
    print(f"bench_hed: {len(images)} photos, longer side <= {config.proposal_max_side} px, "
          f"{args.threads} thread(s) (load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores), least of {args.repeats} runs; CPU bfloat16 instructions: "
          f"{edges.cpu_has_bfloat16()}; TensorFlow's oneDNN kernels: "
          f"{edges.tensorflow_uses_onednn()}; hed_precision=auto resolves to "
          f"{edges.hed_precision_here('auto')}")
    runs: dict[str, list[PhotoRun]] = {precision: [] for precision in detectors}
    for name, data in images:
        for precision, detector in detectors.items():
            runs[precision].append(best_of(name, data, config, detector, args.repeats))
    print_costs(runs)
    print_candidates([name for name, _ in images], runs, config)


def print_costs(runs: dict[str, list[PhotoRun]]) -> None:
    steps = list(runs["float32"][0].cpu)
    print("\n== CPU s per photo (wall s), median over the photos ==")
    print(f"  {'step':<15s}" + "".join(f"{p:>22s}" for p in runs))
    for step in [*steps, "stage"]:
        line = f"  {step:<15s}"
        for precision_runs in runs.values():
            cpu = [sum(r.cpu.values()) if step == "stage" else r.cpu[step] for r in precision_runs]
            wall = [sum(r.wall.values()) if step == "stage" else r.wall[step]
                    for r in precision_runs]
            line += f"{np.median(cpu):14.3f} ({np.median(wall):5.3f})"
        print(line)
    for precision, precision_runs in runs.items():
        stage = float(np.median([sum(r.cpu.values()) for r in precision_runs]))
        verdict = "MET" if stage <= STAGE_TARGET_SECONDS else "MISSED"
        print(f"  stage with {precision} HED {verdict}: {stage:.3f} CPU s per photo (median) vs "
              f"target <= {STAGE_TARGET_SECONDS}")


def _boxes_by_seed(run: PhotoRun, config: ProposalConfig) -> list[np.ndarray]:
    """The candidates of one photo's edge map under k-means seeds ``proposal_seed + 0..3``."""
    edge_map, orientation = edges.hed_edges_from_probabilities(run.probabilities)
    boxes = [run.boxes]
    for offset in range(1, YARDSTICK_SEEDS):
        seeded = dataclasses.replace(config, proposal_seed=config.proposal_seed + offset)
        boxes.append(pipeline.propose_from_edges(edge_map, orientation, seeded).boxes)
    return boxes


def print_candidates(names: list[str], runs: dict[str, list[PhotoRun]],
                     config: ProposalConfig) -> None:
    """Kept candidates of each lower precision against float32, beside the seed yardstick."""
    seeded = {precision: [_boxes_by_seed(run, config) for run in precision_runs]
              for precision, precision_runs in runs.items()}
    reference = seeded["float32"]
    lower = [precision for precision in runs if precision != "float32"]
    print(f"\n== candidates of the float32 network kept (IoU >= {MATCH_IOU}), edge maps ==")
    print(f"  {'photo':<16s}{'seed+1':>8s}" + "".join(
        f"{p:>14s}{'max|diff|':>10s}{'mean|diff|':>11s}" for p in lower))
    for index, name in enumerate(names):
        line = f"  {name:<16s}{kept_fraction(reference[index][0], reference[index][1]):8.3f}"
        for precision in lower:
            difference = np.abs(runs["float32"][index].probabilities
                                - runs[precision][index].probabilities)
            line += (f"{kept_fraction(reference[index][0], seeded[precision][index][0]):14.3f}"
                     f"{difference.max():10.4f}{difference.mean():11.5f}")
        print(line)
    seed_kept = np.mean([kept_fraction(boxes[0], boxes[1]) for boxes in reference])
    pairs = [(a, b) for a in range(YARDSTICK_SEEDS) for b in range(YARDSTICK_SEEDS) if a != b]
    seeds_kept = np.mean([kept_fraction(boxes[a], boxes[b]) for boxes in reference
                          for a, b in pairs])
    print(f"  yardstick, float32 under another k-means seed: {seed_kept:.3f} (seed + 1), "
          f"{seeds_kept:.3f} (mean over the {len(pairs)} ordered pairs of {YARDSTICK_SEEDS} seeds)")
    for precision in lower:
        kept = np.mean([kept_fraction(full[0], low[0])
                        for full, low in zip(reference, seeded[precision])])
        kept_seeds = np.mean([kept_fraction(full[s], low[s]) for full, low
                              in zip(reference, seeded[precision]) for s in range(YARDSTICK_SEEDS)])
        verdict = "within" if kept >= seed_kept else "OUTSIDE"
        print(f"  {precision:<13s} keeps {kept:.3f} at the seed ({verdict} the yardstick "
              f"{seed_kept:.3f}); {kept_seeds:.3f} over {YARDSTICK_SEEDS} equal seeds")


def size_mix(count: int, max_side: int, large_share: float = MIX_LARGE_SHARE,
             seed: int = 0) -> list[tuple[int, int]]:
    """``count`` seeded (height, width) of resized photos, as a photo site's mix (docstring);
    ``large_share`` of them have a longer side of ``max_side``."""
    rng = np.random.default_rng(seed)
    ratios, shares = list(MIX_RATIOS), list(MIX_RATIOS.values())
    sizes = []
    for _ in range(count):
        pick = rng.random()
        ratio = next((r for r, edge in zip(ratios, np.cumsum(shares)) if pick < edge),
                     rng.uniform(1.0, 2.0))
        longer = max_side if rng.random() < large_share else int(rng.integers(200, max_side))
        shorter = max(1, round(longer / ratio))
        sizes.append((longer, shorter) if rng.random() < MIX_PORTRAIT_SHARE else (shorter, longer))
    return sizes


def old_calls(sizes: list[tuple[int, int]], batch_size: int) -> list[int]:
    """Images per call of the route before the buckets: each window of ``OLD_WINDOW_BATCHES``
    batches grouped by padded size apart, a partial call per size per window."""
    calls = []
    window = batch_size * OLD_WINDOW_BATCHES
    for start in range(0, len(sizes), window):
        groups: dict[tuple[int, int], int] = {}
        for height, width in sizes[start:start + window]:
            key = edges.hed_padded_shape(height, width)
            groups[key] = groups.get(key, 0) + 1
        for members in groups.values():
            calls += [min(batch_size, members - offset) for offset in range(0, members, batch_size)]
    return calls


class _CountingHED(edges.HEDEdgeDetector):
    """Records the batch of every network call; returns zeros (part 3 counts calls only)."""

    def __init__(self):
        super().__init__()
        self.calls: list[int] = []
        self._network = self._count

    def _count(self, batch):
        self.calls.append(batch.shape[0])
        return np.zeros(batch.shape[:3] + (1,), np.float32)


def _encoded(sizes, seed: int = 0) -> list[tuple[str, bytes]]:
    """A textured image per size, PNG-encoded, named by index."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), (512, 512))
    return [(f"mix/{index:05d}.png", encode_png(np.ascontiguousarray(base[:height, :width])))
            for index, (height, width) in enumerate(sizes)]


def bench_mix(args) -> None:
    config = ProposalConfig(edge_source="hed", hed_batch_size=args.batch_size)
    for large_share in (MIX_LARGE_SHARE, 1.0):
        sizes = size_mix(args.mix, config.proposal_max_side, large_share)
        padded = {edges.hed_padded_shape(*size) for size in sizes}
        counting = _CountingHED()
        for _ in local_runner._hed_tasks(iter(_encoded(sizes)), config, counting):
            pass
        before = old_calls(sizes, args.batch_size)
        print(f"\n== batching {len(sizes)} photo sizes, {large_share:.0%} with the longer side "
              f"{config.proposal_max_side} px ({len(padded)} padded sizes), batch "
              f"{args.batch_size} ==")
        print(f"  windows of {OLD_WINDOW_BATCHES} batches grouped apart: {len(before)} calls, "
              f"{np.mean(before):.2f} images per call, "
              f"{np.mean(np.equal(before, args.batch_size)):.0%} of calls full")
        print(f"  buckets over {local_runner.HED_PENDING_BATCHES} batches (the stage): "
              f"{len(counting.calls)} calls, {np.mean(counting.calls):.2f} images per call, "
              f"{np.mean(np.equal(counting.calls, args.batch_size)):.0%} of calls full")
    if args.mix_images <= 0:
        return
    sizes = size_mix(args.mix, config.proposal_max_side)
    named = _encoded(sizes[:args.mix_images], seed=1)
    detector = edges.HEDEdgeDetector()
    detector.edge_probabilities(np.zeros((64, 64, 3), np.uint8))  # Warm up.
    print(f"  the real network ({detector.compute_precision}) on the first {len(named)}, "
          f"decoding included:")
    for label in ("windows", "buckets"):
        cpu, wall = time.process_time(), time.perf_counter()
        if label == "windows":
            window = args.batch_size * OLD_WINDOW_BATCHES
            for start in range(0, len(named), window):
                images = [pipeline.decode_for_proposals(name, data, config)
                          for name, data in named[start:start + window]]
                detector.edge_probabilities_batch(images, batch_size=args.batch_size)
        else:
            for _ in local_runner._hed_tasks(iter(named), config, detector):
                pass
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"    {label:<8s} {len(named) / wall:6.2f} images/s wall, "
              f"{cpu / len(named):.3f} CPU s per image")


def main(args) -> None:
    sys.stdout.reconfigure(line_buffering=True)
    cv2.setNumThreads(args.threads)
    bench_photos(args)
    if args.mix > 0:
        bench_mix(args)


if __name__ == "__main__":
    main(ARGS)
