"""Checks that the demo scenes (datasets/affect_demo/scenes.py) have what the demo relies on.

Run from the repository root:

    .venv/bin/python benchmarks/check_demo_scenes.py               # 400 scenes, about 1 minute
    .venv/bin/python benchmarks/check_demo_scenes.py --count=1200  # the default config, ~3 min

It prints the generation time per scene and:

(a) Whole image vs object crop, with simple features and a logistic regression (5-fold CV):
    a 4x4x4 RGB histogram and a 16x16 "tiny image". The whole image should be only moderately
    predictable (target 60-80 %), the ground-truth crop nearly perfectly (target >= 95 %): the
    sentiment sits in a small region.
(b) The project's proposals (``affect_tf.proposals``: the edge map of ``ProposalConfig``'s
    default source, EdgeBoxes and the paper's geometric filter, all at their defaults; no
    normalized cut): how often the top-1 box hits the object (IoU >= 0.5; target well below
    100 %, e.g. 10-40 %: clutter and decoys must compete) and how often one of the top 50 does
    (target > 80 %: the object must be a strong proposal).
(c) A proxy of the paper's region ranking (Eqs. 4-5) over each image's top-50 boxes: which box
    ranks first by objectness (min-max normalized), by Senti (``affect_tf.regions``) of a
    classifier's prediction on the crop, and by AR; ranking by Senti or AR should hit the object
    more often than objectness alone. The classifier is a logistic regression on crop features
    (cheap, weak): a proxy only; the project ranks with its fine-tuned CNN.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from affect_tf.config import LABEL_NAMES, ProposalConfig
from affect_tf.datasets.affect_demo import scenes as demo_scenes
from affect_tf.metrics import box_iou
from affect_tf.proposals import edgeboxes
from affect_tf.proposals.edges import make_edge_detector
from affect_tf.regions import sentiment_score

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
# (b) The project's proposals.


def proposals(image: np.ndarray, config: ProposalConfig,
              detector) -> tuple[np.ndarray, np.ndarray]:
    """EdgeBoxes boxes that pass the geometric filter, best first.

    The demo's 256 px scenes are below ``ProposalConfig``'s resize limit, so they are used as is.

    Returns:
        boxes float32 [N, 4] normalized [y1, x1, y2, x2]; scores float32 [N], descending.
    """
    edges, orientation = detector(image)
    boxes_xywh, scores = edgeboxes.edge_boxes(edges, orientation, config)
    boxes_xywh, scores = edgeboxes.geometric_filter(boxes_xywh, scores, config)
    height, width = image.shape[:2]
    return edgeboxes.xywh_to_normalized_yxyx(boxes_xywh, height, width), scores


def report_proposals(candidates: list, boxes: np.ndarray, labels: np.ndarray, top: int,
                     seconds: float) -> None:
    """(b): how often the object is among an image's first boxes, by class."""
    counts = np.array([len(c[0]) for c in candidates])
    first_hit, best_iou = [], []  # rank (0-based) of the first hit in the top m, or -1
    for (image_boxes, _), box in zip(candidates, boxes):
        overlaps = box_iou(image_boxes[:top], box)
        hits = np.flatnonzero(overlaps >= IOU_HIT)
        first_hit.append(int(hits[0]) if len(hits) else -1)
        best_iou.append(float(overlaps.max()) if len(overlaps) else 0.0)
    first_hit = np.array(first_hit)
    found = first_hit >= 0
    print(f"\n(b) the project's proposals (EdgeBoxes + filter): {counts.mean():.0f} boxes per "
          f"image (min {counts.min()}), {1000 * seconds / len(candidates):.0f} ms per image")
    for k in (1, 5, 10, top):
        rate = np.mean(found & (first_hit < k))
        print(f"  object among the top {k:3d} boxes (IoU >= {IOU_HIT}): {100 * rate:5.1f} %")
    for label, name in enumerate(LABEL_NAMES):
        mine = labels == label
        print(f"  {name}: top 1 {100 * np.mean(found[mine] & (first_hit[mine] < 1)):5.1f} %, "
              f"top {top} {100 * np.mean(found[mine]):5.1f} %")
    print(f"  median rank of the first hit (when in the top {top}): "
          f"{np.median(first_hit[found]) + 1 if found.any() else float('nan'):.0f}; "
          f"mean best IoU in the top {top}: {np.mean(best_iou):.2f}")
    top1 = np.stack([c[0][0] for c in candidates if len(c[0])])
    top1_area = (top1[:, 2] - top1[:, 0]) * (top1[:, 3] - top1[:, 1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    print(f"  top-1 box area: median {100 * np.median(top1_area):.1f} % of the image "
          f"(object box: {100 * np.median(areas):.1f} %)")


# ---------------------------------------------------------------------------------------------
# (c) Region ranking.


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
    senti = sentiment_score(prob).numpy()
    span = scores.max() - scores.min()
    obj = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
    ar = np.sqrt((1.0 - alpha) * obj ** 2 + alpha * senti ** 2)  # Eq. 5
    return {name: bool(overlaps[int(np.argmax(rank))] >= IOU_HIT)
            for name, rank in (("obj", obj), ("senti", senti), ("ar", ar))}


def check_ranking_with_features(images, labels, boxes, candidates, args) -> None:
    """(c) with a logistic regression on crop features as the classifier, out of fold.

    A CNN fine-tuned on whole images sees every part of an image labelled with the image's label:
    it learns the object's cues, and what appears in both classes stays uninformative. Mimic that
    with a crop classifier trained on each training image's object crop and four of its other
    proposals (IoU < 0.3 with the object), all with the image's label.
    """
    kind = "hist+tiny"
    rng = np.random.default_rng(args.seed)
    object_x = np.stack([features(crop(image, box), kind) for image, box in zip(images, boxes)])
    region_x = [np.stack([features(crop(image, b), kind) for b in image_boxes])
                for image, (image_boxes, _) in zip(images, candidates)]
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=args.seed)
    hits = {"obj": [], "senti": [], "ar": []}
    for train, test in folds.split(object_x, labels):
        train_x, train_y = [object_x[train]], [labels[train]]
        for i in train:
            others = np.flatnonzero(box_iou(candidates[i][0], boxes[i]) < 0.3)
            chosen = rng.permutation(others)[:4]
            train_x.append(region_x[i][chosen])
            train_y.append(np.full(len(chosen), labels[i]))
        model = make_classifier().fit(np.concatenate(train_x), np.concatenate(train_y))
        for i in test:
            image_boxes, scores = candidates[i]
            for name, hit in ranking_hits(model.predict_proba(region_x[i]), scores,
                                          box_iou(image_boxes, boxes[i]), args.alpha).items():
                hits[name].append(hit)
    print(f"\n(c) first of the top {args.top} boxes hits the object (IoU >= {IOU_HIT}), ranked by"
          f" ... (classifier: logistic regression on {kind} crop features)")
    for name, values in hits.items():
        print(f"  {name:5s}: {100 * np.mean(values):5.1f} %")


# ---------------------------------------------------------------------------------------------


def check_whole_vs_crop(images, labels, boxes, seed: int) -> None:
    """(a): logistic regression accuracy on whole images and on ground-truth crops."""
    print("\n(a) logistic regression, 5-fold CV accuracy (whole image | ground-truth crop)")
    crops = [crop(image, box) for image, box in zip(images, boxes)]
    for kind in ("hist", "tiny", "hist+tiny"):
        whole = np.stack([features(image, kind) for image in images])
        local = np.stack([features(c, kind) for c in crops])
        print(f"  {kind:10s} whole {100 * cv_accuracy(whole, labels, seed):5.1f} %   "
              f"crop {100 * cv_accuracy(local, labels, seed):5.1f} %")


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

    check_whole_vs_crop(images, labels, boxes, args.seed)

    config = ProposalConfig()
    detector = make_edge_detector(config)
    start = time.perf_counter()
    candidates = [proposals(image, config, detector) for image in images]
    report_proposals(candidates, boxes, labels, args.top, time.perf_counter() - start)

    candidates = [(image_boxes[:args.top], scores[:args.top])
                  for image_boxes, scores in candidates]
    if min(len(image_boxes) for image_boxes, _ in candidates) == 0:
        raise RuntimeError("An image has no proposal; cannot rank its regions.")
    check_ranking_with_features(images, labels, boxes, candidates, args)


if __name__ == "__main__":
    main()
