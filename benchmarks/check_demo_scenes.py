"""Checks that the demo scenes (affect_tf/demo_scenes.py) have the properties the demo relies on.

Run from the repository root:

    .venv/bin/python benchmarks/check_demo_scenes.py               # 400 scenes, about 1 minute
    .venv/bin/python benchmarks/check_demo_scenes.py --count=1200  # the default config, ~3 min

It prints the generation time per scene and:

(a) Whole image vs object crop, with simple features and a logistic regression (5-fold CV):
    a 4x4x4 RGB histogram and a 16x16 "tiny image". The whole image should be only moderately
    predictable (target 60-80 %), the ground-truth crop nearly perfectly (target >= 95 %): the
    sentiment sits in a small region.
(b) EdgeBoxes on a thinned gradient edge map (OpenCV ximgproc; maxBoxes 1000, minBoxArea 800,
    maxAspectRatio 6, other parameters at OpenCV's defaults): how often the top-1 box hits the
    object (IoU >= 0.5; target well below 100 %, e.g. 10-40 %: clutter and decoys must compete)
    and how often one of the top 50 does (target > 80 %: the object must be a strong proposal).
(c) A proxy of the paper's region ranking (Eqs. 4-5) over each image's top-50 boxes: which box
    ranks first by objectness (min-max normalized), by Senti = 1 - normalized entropy of a
    classifier's prediction on the crop, and by AR; ranking by Senti or AR should hit the object
    more often than objectness alone. The classifier is a logistic regression on crop features
    (cheap, weak): a proxy only; the project ranks with its fine-tuned CNN.

The edge map here is deliberately simple (Sobel magnitude over colour channels, orientation by
Dollar's formula, non-maximum suppression along it); raw, unthinned gradient maps make EdgeBoxes
slow and its boxes poor (ARCHITECTURE.md). The project's proposal stage has its own.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

# Run from a checkout without installing: the repository root holds the affect_tf package.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from affect_tf import demo_scenes  # pylint: disable=wrong-import-position

IOU_HIT = 0.5


# ---------------------------------------------------------------------------------------------
# Features for (a) and (c).


def colour_histogram(image: np.ndarray, bins: int = 4) -> np.ndarray:
    """Joint RGB histogram float32 [bins**3] of a uint8 [H, W, 3] image, summing to 1."""
    quantized = (image.astype(np.int32) * bins) // 256
    index = (quantized[..., 0] * bins + quantized[..., 1]) * bins + quantized[..., 2]
    hist = np.bincount(index.ravel(), minlength=bins ** 3).astype(np.float32)
    return hist / hist.sum()


def tiny_image(image: np.ndarray, side: int = 16) -> np.ndarray:
    """The image area-resized to side x side, float32 [side * side * 3] in [0, 1]."""
    small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32).ravel() / 255.0


def features(image: np.ndarray, kind: str) -> np.ndarray:
    if kind == "hist":
        return colour_histogram(image)
    if kind == "tiny":
        return tiny_image(image)
    return np.concatenate([colour_histogram(image), tiny_image(image)])


def crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Crop of a uint8 [S, S, 3] image by a normalized [y1, x1, y2, x2] box (pixel edges)."""
    size = image.shape[0]
    top, left, bottom, right = np.round(np.asarray(box) * size).astype(int)
    return image[top:max(bottom, top + 1), left:max(right, left + 1)]


def make_classifier():
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))


def cv_accuracy(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    correct = 0
    for train, test in folds.split(x, y):
        model = make_classifier().fit(x[train], y[train])
        correct += int((model.predict(x[test]) == y[test]).sum())
    return correct / len(y)


# ---------------------------------------------------------------------------------------------
# Edges and EdgeBoxes for (b).


def _triangle_smooth(image: np.ndarray, radius: int) -> np.ndarray:
    """Separable triangle filter of the given radius (Dollar's convTri), float32 [H, W]."""
    kernel = np.concatenate([np.arange(1, radius + 2), np.arange(radius, 0, -1)]).astype(np.float32)
    kernel /= kernel.sum()
    return cv2.sepFilter2D(image, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT)


def thinned_edges(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thinned gradient edge map and its orientation, as EdgeBoxes takes them.

    Args:
        image: uint8 [H, W, 3] RGB.

    Returns:
        edges: float32 [H, W] in [0, 1], one pixel wide after non-maximum suppression.
        orientation: float32 [H, W] in [0, pi), the direction across the edge (Dollar's
            ``edgesDetect`` convention, which OpenCV's EdgeBoxes expects).
    """
    smooth = cv2.GaussianBlur(image.astype(np.float32) / 255.0, (0, 0), 1.0)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    # Colour edges: the strongest channel, so a hue change at equal brightness is still an edge.
    magnitude = np.sqrt(gx * gx + gy * gy).max(axis=2)
    magnitude /= max(float(magnitude.max()), 1e-6)
    # Orientation from second derivatives of the smoothed edge map (Dollar's formula).
    e = _triangle_smooth(magnitude, 4)
    exx = cv2.Sobel(e, cv2.CV_32F, 2, 0, ksize=3)
    exy = cv2.Sobel(e, cv2.CV_32F, 1, 1, ksize=3)
    eyy = cv2.Sobel(e, cv2.CV_32F, 0, 2, ksize=3)
    orientation = np.mod(np.arctan(eyy * np.sign(-exy) / (exx + 1e-5)), np.pi).astype(np.float32)
    # Non-maximum suppression along the orientation (radius 1, bilinear neighbours).
    h, w = magnitude.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = np.cos(orientation), np.sin(orientation)
    keep = np.ones_like(magnitude, dtype=bool)
    for step in (-1.0, 1.0):
        neighbour = cv2.remap(magnitude, xs + step * dx, ys + step * dy, cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        keep &= magnitude * 1.01 >= neighbour
    edges = np.where(keep, magnitude, 0.0).astype(np.float32)
    # Image borders carry no contour; suppress a 2-pixel frame as Dollar's edgesNms does.
    edges[:2], edges[-2:], edges[:, :2], edges[:, -2:] = 0, 0, 0, 0
    return edges, orientation


def edge_boxes(image: np.ndarray, max_boxes: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """EdgeBoxes proposals, best first.

    Returns:
        boxes float32 [N, 4] normalized [y1, x1, y2, x2]; scores float32 [N], descending.
    """
    edges, orientation = thinned_edges(image)
    generator = cv2.ximgproc.createEdgeBoxes()
    generator.setMaxBoxes(max_boxes)
    generator.setMinBoxArea(800)
    generator.setMaxAspectRatio(6)
    boxes, scores = generator.getBoundingBoxes(edges, orientation)
    if boxes is None or len(boxes) == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    x, y, bw, bh = boxes.T
    size_y, size_x = image.shape[:2]
    # OpenCV returns pixel (x, y, w, h); the project's convention is normalized [y1, x1, y2, x2].
    out = np.stack([y / size_y, x / size_x, (y + bh) / size_y, (x + bw) / size_x], axis=1)
    return np.clip(out, 0.0, 1.0), np.asarray(scores, np.float32).reshape(-1)


def iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """IoU float [N] of normalized [y1, x1, y2, x2] boxes [N, 4] with one box [4]."""
    top = np.maximum(boxes[:, 0], box[0])
    left = np.maximum(boxes[:, 1], box[1])
    bottom = np.minimum(boxes[:, 2], box[2])
    right = np.minimum(boxes[:, 3], box[3])
    inter = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + (box[2] - box[0]) * (box[3] - box[1]) - inter + 1e-12)


# ---------------------------------------------------------------------------------------------
# (c) Region ranking.


def senti_score(prob: np.ndarray) -> np.ndarray:
    """Senti (Eq. 4) of class probabilities [N, 2]: 1 - entropy / log 2, in [0, 1]."""
    prob = np.clip(prob, 1e-7, 1.0)
    return 1.0 + (prob * np.log(prob)).sum(axis=1) / np.log(2.0)


def ranking_hits(
        prob: np.ndarray, scores: np.ndarray, overlaps: np.ndarray, alpha: float,
) -> dict[str, bool]:
    """Whether the first box by obj / senti / ar has IoU >= 0.5 with the object.

    Args:
        prob: class probabilities [N, 2] of the N candidate crops.
        scores: EdgeBoxes scores [N].
        overlaps: IoU [N] of the candidates with the object's box.
        alpha: weight of Senti in AR (Eq. 5).
    """
    senti = senti_score(prob)
    span = scores.max() - scores.min()
    obj = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
    ar = np.sqrt((1.0 - alpha) * obj ** 2 + alpha * senti ** 2)  # Eq. 5
    return {name: bool(overlaps[int(np.argmax(rank))] >= IOU_HIT)
            for name, rank in (("obj", obj), ("senti", senti), ("ar", ar))}


def check_ranking_with_features(images, labels, boxes, proposals, args) -> None:
    """(c) with a logistic regression on crop features as the classifier, out of fold.

    A CNN fine-tuned on whole images sees every part of an image labelled with the image's label:
    it learns the object's cues, and what appears in both classes stays uninformative. Mimic that
    with a crop classifier trained on each training image's object crop and four of its other
    proposals (IoU < 0.3 with the object), all with the image's label.
    """
    kind = "hist+tiny"
    rng = np.random.default_rng(args.seed)
    object_x = np.stack([features(crop(image, box), kind) for image, box in zip(images, boxes)])
    region_x = [np.stack([features(crop(image, b), kind) for b in candidates])
                for image, (candidates, _) in zip(images, proposals)]
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=args.seed)
    hits = {"obj": [], "senti": [], "ar": []}
    for train, test in folds.split(object_x, labels):
        train_x, train_y = [object_x[train]], [labels[train]]
        for i in train:
            others = np.flatnonzero(iou(proposals[i][0], boxes[i]) < 0.3)
            chosen = rng.permutation(others)[:4]
            train_x.append(region_x[i][chosen])
            train_y.append(np.full(len(chosen), labels[i]))
        model = make_classifier().fit(np.concatenate(train_x), np.concatenate(train_y))
        for i in test:
            candidates, scores = proposals[i]
            for name, hit in ranking_hits(model.predict_proba(region_x[i]), scores,
                                          iou(candidates, boxes[i]), args.alpha).items():
                hits[name].append(hit)
    print(f"\n(c) first of the top {args.top} boxes hits the object (IoU >= {IOU_HIT}), ranked by"
          f" ... (classifier: logistic regression on {kind} crop features)")
    for name, values in hits.items():
        print(f"  {name:5s}: {100 * np.mean(values):5.1f} %")


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=400, help="number of scenes")
    parser.add_argument("--seed", type=int, default=demo_scenes.DATASET_SEED,
                        help="scene seed (default: the affect_demo dataset's)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--top", type=int, default=50, help="proposals kept per image (m)")
    parser.add_argument("--alpha", type=float, default=0.6, help="AR weight of Senti (Eq. 5)")
    args = parser.parse_args()

    start = time.perf_counter()
    scenes = [(image, label, box) for _, image, label, box
              in demo_scenes.generate_scenes(args.seed, args.count, args.size)]
    generation_s = time.perf_counter() - start
    images = [s[0] for s in scenes]
    labels = np.array([s[1] for s in scenes])
    boxes = np.stack([s[2] for s in scenes])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    print(f"scenes: {args.count} (seed {args.seed}, {args.size} px), "
          f"{int(labels.sum())} positive; generated in {generation_s:.1f} s "
          f"({1000 * generation_s / args.count:.1f} ms per scene)")
    print(f"object box area: {100 * areas.min():.2f}-{100 * areas.max():.2f} % of the image "
          f"(mean {100 * areas.mean():.2f} %)")

    # (a) Whole image vs ground-truth crop.
    print("\n(a) logistic regression, 5-fold CV accuracy (whole image | ground-truth crop)")
    crops = [crop(image, box) for image, box in zip(images, boxes)]
    for kind in ("hist", "tiny", "hist+tiny"):
        whole = np.stack([features(image, kind) for image in images])
        local = np.stack([features(c, kind) for c in crops])
        print(f"  {kind:10s} whole {100 * cv_accuracy(whole, labels, args.seed):5.1f} %   "
              f"crop {100 * cv_accuracy(local, labels, args.seed):5.1f} %")

    # (b) EdgeBoxes objectness.
    start = time.perf_counter()
    proposals = [edge_boxes(image) for image in images]
    edge_boxes_s = time.perf_counter() - start
    counts = np.array([len(p[0]) for p in proposals])
    first_hit = []  # rank (0-based) of the first box with IoU >= 0.5 in the top m, or -1
    best_iou = []
    for (candidates, _), box in zip(proposals, boxes):
        overlaps = iou(candidates[:args.top], box) if len(candidates) else np.zeros(0)
        hits = np.flatnonzero(overlaps >= IOU_HIT)
        first_hit.append(int(hits[0]) if len(hits) else -1)
        best_iou.append(float(overlaps.max()) if len(overlaps) else 0.0)
    first_hit = np.array(first_hit)
    found = first_hit >= 0
    print(f"\n(b) EdgeBoxes on thinned gradient edges: {counts.mean():.0f} boxes per image "
          f"(min {counts.min()}), {1000 * edge_boxes_s / args.count:.0f} ms per image")
    for k in (1, 5, 10, args.top):
        rate = np.mean(found & (first_hit < k))
        print(f"  object among the top {k:3d} boxes (IoU >= {IOU_HIT}): {100 * rate:5.1f} %")
    for label, name in ((0, "negative"), (1, "positive")):
        mine = labels == label
        print(f"  {name}: top 1 {100 * np.mean(found[mine] & (first_hit[mine] < 1)):5.1f} %, "
              f"top {args.top} {100 * np.mean(found[mine]):5.1f} %")
    print(f"  median rank of the first hit (when in the top {args.top}): "
          f"{np.median(first_hit[found]) + 1 if found.any() else float('nan'):.0f}; "
          f"mean best IoU in the top {args.top}: {np.mean(best_iou):.2f}")
    top1 = np.stack([p[0][0] for p in proposals if len(p[0])])
    top1_area = (top1[:, 2] - top1[:, 0]) * (top1[:, 3] - top1[:, 1])
    print(f"  top-1 box area: median {100 * np.median(top1_area):.1f} % of the image "
          f"(object box: {100 * np.median(areas):.1f} %)")

    # (c) Region ranking, on each image's top m proposals.
    proposals = [(candidates[:args.top], scores[:args.top]) for candidates, scores in proposals]
    if min(len(candidates) for candidates, _ in proposals) == 0:
        raise RuntimeError("An image has no EdgeBoxes proposal; cannot rank its regions.")
    check_ranking_with_features(images, labels, boxes, proposals, args)


if __name__ == "__main__":
    main()
