"""The paper's per-image figures, for a few test images of a finished evaluation.

``--mode=experiments`` draws, for each chosen test image (:func:`chosen_filenames`):

* ``saliency`` (Section 5): occlusion sensitivity and Grad-CAM of the image's true class
  (:mod:`affect_tf.experiments.saliency`) on its whole-image view (:func:`whole_image_view`);
* ``regions`` (Fig. 9): the image, its m candidates, and the top-1 region by Obj, Senti and AR
  (:func:`plot_top_regions`, from :func:`top_regions`);
* ``clusters`` (Fig. 3): the filtered EdgeBoxes pool coloured by normalized-cut cluster, the m
  selected candidates bold (:func:`proposal_clusters`, :func:`plot_proposal_clusters`);
* ``scores`` (Fig. 4): normalized Obj against Senti of the m candidates, the top K by AR
  ringed (:func:`candidate_scores`, :func:`plot_candidate_scores`).

Figs. 9 and 4 re-rank the evaluation's stored predictions with its own function
(:func:`affect_tf.evaluate.select`); the saliency maps run the classifier (a few dozen images per
test image); Fig. 3 recomputes the image's proposal pool with the run's proposal settings, the
steps of :func:`affect_tf.proposals.pipeline.propose_from_edges` with the clusters kept, so its m
selected boxes are the cached candidates (:func:`matches_candidates` checks it).

Boxes are normalized ``[y1, x1, y2, x2]`` in [0, 1] relative to the image, as the proposal cache
and the predictions hold them. Images are uint8 RGB ``[H, W, 3]`` as
:func:`affect_tf.io.decode_image_bytes` (the proposal stage's decoder) gives them. Nothing is
written but the PNGs (:func:`affect_tf.visualize.save_png`).
"""

from __future__ import annotations

import dataclasses
import pathlib
import time
from collections.abc import Mapping

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from matplotlib import colors as mpl_colors
from matplotlib.collections import PatchCollection

# visualize selects the headless Agg backend on import (pyplot picks its backend at the first
# figure, so the order of these imports does not matter).
from affect_tf import evaluate as evaluate_lib
from affect_tf import regions as regions_lib
from affect_tf import views as views_lib
from affect_tf import visualize
from affect_tf.config import (
    LABEL_NAMES,
    SELECTIONS,
    Config,
    ProposalConfig,
    RegionConfig,
)
from affect_tf.data.transforms import eval_transform
from affect_tf.experiments import saliency
from affect_tf.proposals import edgeboxes, pipeline, selection
from affect_tf.proposals.edges import EdgeDetector, make_edge_detector

# The figures of one image (file suffixes; the module docstring says what each is), in the
# order the report shows them (its captions: affect_tf/report.py, which imports no TensorFlow).
FIGURES = ("saliency", "regions", "clusters", "scores")
# The stage directory's subfolder that holds them.
FIGURE_DIR = "figures"
_SELECTION_TITLES = {"obj": "Obj", "senti": "Senti", "ar": "AR"}
# Fig. 9's panels left to right (SELECTIONS lists AR first).
_FIG9_ORDER = ("obj", "senti", "ar")


def chosen_filenames(test: Mapping[str, np.ndarray], region_config: RegionConfig,
                     count: int) -> list[str]:
    """The test images whose figures are drawn: the report's own choice
    (:func:`affect_tf.evaluate.figure_choice`): half positive, half negative (the extra one
    negative), the first of each class in the predictions' order; fewer where a class has too
    few images; none for ``count`` 0.

    Args:
        test: the test part's predictions (``label`` [N], ``filename`` [N], ...).
        region_config: the run's region settings (figure_choice ranks with them).
        count: how many images, >= 0.
    """
    if isinstance(count, bool) or int(count) != count or count < 0:
        raise ValueError(f"count must be an integer >= 0 (test images to draw). "
                         f"Received: count={count!r}")
    if count == 0 or len(test["label"]) == 0:
        return []
    return evaluate_lib.figure_choice(test, region_config, int(count))["filename"].tolist()


def image_predictions(predictions: Mapping[str, np.ndarray], row: int) -> dict[str, np.ndarray]:
    """One image's predictions as a part of one image: every per-image array's row ``row``,
    its leading axis kept (``candidate_probs`` [1, m, 2], ``boxes`` [1, m, 4], ...), so the
    evaluation's functions take it as they take a part."""
    count = len(predictions["label"])
    if isinstance(row, bool) or int(row) != row or not 0 <= row < count:
        raise ValueError(f"row must index one of the {count} images of the predictions. "
                         f"Received: row={row!r}")
    return {key: np.asarray(value)[row:row + 1] for key, value in predictions.items()
            if np.ndim(value) and np.shape(value)[0] == count}


def whole_image_view(image_rgb: np.ndarray, config: Config) -> np.ndarray:
    """What the CNN sees of the whole image at evaluation: warped to ``region_image_size``
    squared (:func:`affect_tf.data.transforms.eval_transform`, as the evaluation's batches),
    then the whole-image view of :mod:`affect_tf.views` (resized to ``resize_size``, centre
    ``image_size`` crop). With ``ten_crop`` the evaluation averages ten views; this is their
    centre one, so saliency has one image to explain.

    Args:
        image_rgb: uint8 RGB ``[H, W, 3]``.
        config: the run's settings (model sizes, ``region_image_size``).

    Returns:
        float32 ``[S, S, 3]`` RGB in [0, 255], S = ``config.model.image_size``.
    """
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[-1] != 3 or 0 in image.shape:
        raise ValueError(f"image_rgb must be one RGB image [H, W, 3], H, W > 0. "
                         f"Received: shape={image.shape}")
    warped = eval_transform(tf.convert_to_tensor(image), config.evaluation.region_image_size)
    settings = {**views_lib.view_settings(config), "ten_crop": False}
    return views_lib.whole_image_views(warped[tf.newaxis], **settings)[0, 0].numpy()


def top_regions(one: Mapping[str, np.ndarray],
                region_config: RegionConfig) -> dict[str, np.ndarray | None]:
    """The top-1 region of one image by each of :data:`~affect_tf.config.SELECTIONS`, ranked by
    :func:`affect_tf.evaluate.select` (whose rows are what :func:`~affect_tf.evaluate.
    figure_choice` draws for the report).

    Args:
        one: :func:`image_predictions` of the image.
        region_config: the run's region settings.

    Returns:
        ``{selection: box [4] normalized [y1, x1, y2, x2], or None}``: None where the image has
        no candidate (the evaluation then falls back to the whole image).
    """
    boxes = {}
    for name in SELECTIONS:
        selected = evaluate_lib.select(one, region_config, name)
        valid = bool(selected["region_valid"][0, 0])
        boxes[name] = selected["region_boxes"][0, 0] if valid else None
    return boxes


def candidate_scores(one: Mapping[str, np.ndarray],
                     region_config: RegionConfig) -> dict[str, np.ndarray]:
    """Normalized Obj, Senti (Eq. 4) and AR (Eq. 5) of one image's candidates, and its top K by
    AR, as :func:`affect_tf.evaluate.select` scores them.

    Args:
        one: :func:`image_predictions` of the image (k = ``num_valid`` real candidates).
        region_config: alpha, K, the objectness normalization and the AR formula.

    Returns:
        ``objectness_norm``, ``senti``, ``ar``: float32 [k]; ``top``: int [min(K, k)], indices
        into the k candidates, best AR first.
    """
    selected = evaluate_lib.select(one, region_config, "ar")
    count = min(int(one["num_valid"][0]), selected["ar"].shape[1])
    top = selected["region_indices"][0]
    return {"objectness_norm": selected["objectness_norm"][0, :count],
            "senti": selected["senti"][0, :count], "ar": selected["ar"][0, :count],
            "top": top[(top >= 0) & (top < count)]}


# eq=False: == on numpy fields would be ambiguous; compare the arrays.
@dataclasses.dataclass(frozen=True, eq=False)
class ProposalClusters:
    """One image's filtered EdgeBoxes pool, its normalized-cut clusters and the m it keeps.

    Attributes:
        pool_boxes: float32 [n, 4] normalized ``[y1, x1, y2, x2]``, by objectness descending.
        pool_objectness: float32 [n] EdgeBoxes scores.
        labels: int64 [n] cluster of each box in [0, m); with n <= m no clustering runs (as in
            the proposal stage) and each box is its own cluster.
        selected: int64 [k] indices into the pool, k = min(n, m), by objectness descending (the
            cache's order of the candidates).
    """

    pool_boxes: np.ndarray
    pool_objectness: np.ndarray
    labels: np.ndarray
    selected: np.ndarray

    @property
    def boxes(self) -> np.ndarray:
        """The k candidates' boxes, float32 [k, 4], as the proposal cache stores them."""
        return self.pool_boxes[self.selected]

    @property
    def objectness(self) -> np.ndarray:
        """The k candidates' objectness, float32 [k]."""
        return self.pool_objectness[self.selected]


def proposal_clusters(image_rgb: np.ndarray, config: ProposalConfig,
                      edge_detector: EdgeDetector | None = None) -> ProposalClusters:
    """The steps of the proposal stage on one image, with the pool and its clusters kept.

    :func:`~affect_tf.proposals.pipeline.proposal_image` (resize to ``proposal_max_side``), the
    edges, :func:`~affect_tf.proposals.edgeboxes.edge_boxes` (``max_boxes``) and the geometric
    filter, then, as :func:`~affect_tf.proposals.selection.normalized_cut_select` does, either
    every box (n <= m) or :func:`~affect_tf.proposals.selection.normalized_cut_labels` (the
    run's affinity, restarts, ``proposal_seed``, precision, format) and
    :func:`~affect_tf.proposals.selection.best_of_clusters`.

    Args:
        image_rgb: uint8 RGB ``[H, W, 3]`` (any uint8 image :func:`~affect_tf.proposals.
            pipeline.to_rgb_uint8` takes).
        config: the run's proposal settings.
        edge_detector: ``make_edge_detector(config)``'s (pass one for several images: HED's
            network loads once); None builds one.

    Returns:
        A :class:`ProposalClusters`; n = 0 for an image too small or flat for any box.
    """
    empty = ProposalClusters(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32),
                             np.zeros((0,), np.int64), np.zeros((0,), np.int64))
    small = pipeline.proposal_image(image_rgb, config)
    if small is None:
        return empty
    detector = make_edge_detector(config) if edge_detector is None else edge_detector
    edges, orientation = detector(small)
    boxes_xywh, scores = edgeboxes.edge_boxes(edges, orientation, config)
    boxes_xywh, scores = edgeboxes.geometric_filter(boxes_xywh, scores, config)
    count = boxes_xywh.shape[0]
    if count == 0:
        return empty
    if count <= config.num_candidates:
        labels = np.arange(count, dtype=np.int64)
        selected = np.argsort(-scores.astype(np.float64), kind="stable").astype(np.int64)
    else:
        labels = selection.normalized_cut_labels(
            edgeboxes.xywh_to_xyxy(boxes_xywh), config.num_candidates, affinity=config.affinity,
            n_init=config.kmeans_n_init, seed=config.proposal_seed,
            row_normalize=config.spectral_row_normalize, precision=config.selection_precision,
            affinity_format=config.affinity_format, sparse_solver=config.sparse_solver)
        selected = selection.best_of_clusters(labels, scores, config.num_candidates)
    height, width = edges.shape[:2]
    return ProposalClusters(
        pool_boxes=edgeboxes.xywh_to_normalized_yxyx(boxes_xywh, height, width),
        pool_objectness=scores.astype(np.float32), labels=np.asarray(labels, np.int64),
        selected=np.asarray(selected, np.int64))


def matches_candidates(clusters: ProposalClusters, one: Mapping[str, np.ndarray]) -> bool:
    """Whether the recomputed selection is the image's cached candidates, bit for bit: the same
    k boxes and objectness in the same order (``one``: :func:`image_predictions`, whose
    ``boxes``, ``objectness``, ``num_valid`` came from the proposal cache)."""
    count = int(one["num_valid"][0])
    return (count == clusters.selected.size
            and np.array_equal(clusters.boxes, np.asarray(one["boxes"][0, :count], np.float32))
            and np.array_equal(clusters.objectness,
                               np.asarray(one["objectness"][0, :count], np.float32)))


def _cluster_colours(labels: np.ndarray) -> np.ndarray:
    """RGB [n, 3] per box from its cluster: hues a golden angle apart, so clusters with near
    labels (not near boxes, but any 50 labels) still look different."""
    hues = (np.asarray(labels, np.float64) * 0.618033988749895) % 1.0
    return mpl_colors.hsv_to_rgb(np.stack([hues, np.full_like(hues, 0.85),
                                           np.full_like(hues, 1.0)], axis=-1).reshape(-1, 3))


def _rectangles(boxes: np.ndarray, height: int, width: int) -> list:
    """matplotlib Rectangles of normalized [y1, x1, y2, x2] boxes on a ``height`` x ``width``
    image (imshow's pixel-corner coordinates)."""
    return [plt.Rectangle((x1 * width, y1 * height), (x2 - x1) * width, (y2 - y1) * height)
            for y1, x1, y2, x2 in np.asarray(boxes, np.float64).reshape(-1, 4)]


def plot_proposal_clusters(image_rgb: np.ndarray, clusters: ProposalClusters,
                           path: str | pathlib.Path, *, title: str | None = None) -> pathlib.Path:
    """Fig. 3 as one PNG: the pool, each box in its cluster's colour (thin) with the m selected
    bold; beside it the m selected alone.

    Args:
        image_rgb: uint8 RGB ``[H, W, 3]``, the image the boxes are relative to.
        clusters: :func:`proposal_clusters` of the image.
        path: the PNG file (its folder is created).
        title: an optional line above the panels.

    Returns:
        ``path`` as a :class:`pathlib.Path`.
    """
    image = np.asarray(image_rgb)
    height, width = image.shape[:2]
    colours = _cluster_colours(clusters.labels)
    chosen = clusters.selected
    clustered = len(np.unique(clusters.labels))
    figure, axes = plt.subplots(1, 2, figsize=(8.4, 4.2), squeeze=False)
    panels = (
        (f"pool: {len(clusters.labels)} boxes, {clustered} clusters", True),
        (f"the m = {chosen.size} candidates (best of each cluster)", False),
    )
    for axis, (name, with_pool) in zip(axes.flat, panels):
        axis.imshow(image)
        axis.axis("off")
        axis.set_title(name, fontsize=9)
        if with_pool and len(clusters.labels):
            axis.add_collection(PatchCollection(
                _rectangles(clusters.pool_boxes, height, width), facecolor="none",
                edgecolor=colours, linewidth=0.6, alpha=0.55))
        if chosen.size:
            axis.add_collection(PatchCollection(
                _rectangles(clusters.boxes, height, width), facecolor="none",
                edgecolor=colours[chosen], linewidth=2.2))
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return visualize.save_png(figure, path, facecolor="#808080")


def plot_top_regions(image_rgb: np.ndarray, one: Mapping[str, np.ndarray],
                     region_config: RegionConfig, path: str | pathlib.Path, *,
                     title: str | None = None) -> pathlib.Path:
    """Fig. 9 as one PNG (:func:`affect_tf.visualize.draw_box_panels`): the image, its m
    candidates, the top-1 region by Obj, Senti and AR, and the object's box where the test
    part has one (``object_box``).

    Args:
        image_rgb: uint8 RGB ``[H, W, 3]``.
        one: :func:`image_predictions` of the image.
        region_config: the run's region settings.
        path: the PNG file (its folder is created).
        title: an optional line above the panels.

    Returns:
        ``path`` as a :class:`pathlib.Path`.
    """
    count = int(one["num_valid"][0])
    panels = [("image", np.zeros((0, 4)), visualize.CANDIDATE_COLOUR),
              (f"m = {count} candidates", one["boxes"][0, :count], visualize.CANDIDATE_COLOUR)]
    tops = top_regions(one, region_config)
    for name in _FIG9_ORDER:
        label = f"top-1 by {_SELECTION_TITLES[name]}"
        box = tops[name]
        panels.append((label if box is not None else f"{label}: none (no candidate)",
                       np.zeros((0, 4)) if box is None else box[None],
                       visualize.SELECTION_COLOURS[name]))
    if "object_box" in one:
        panels.append(("the object's box", one["object_box"][0][None],
                       visualize.SELECTION_COLOURS["truth"]))
    return visualize.draw_box_panels(np.asarray(image_rgb), panels, path, title=title)


def plot_candidate_scores(scores: Mapping[str, np.ndarray], region_config: RegionConfig,
                          path: str | pathlib.Path, *, title: str | None = None) -> pathlib.Path:
    """Fig. 4 as one PNG: each candidate at (normalized Obj, Senti), coloured by AR, the top K
    by AR ringed and numbered; with Eq. 5 (``ar_formula=paper``) its level lines, where AR is
    constant.

    Args:
        scores: :func:`candidate_scores` of the image.
        region_config: alpha, K and the AR formula (for the level lines and the legend).
        path: the PNG file (its folder is created).
        title: an optional line above the plot.

    Returns:
        ``path`` as a :class:`pathlib.Path`.
    """
    obj = np.asarray(scores["objectness_norm"], np.float64)
    senti = np.asarray(scores["senti"], np.float64)
    top = np.asarray(scores["top"], np.int64)
    figure, axis = plt.subplots(figsize=(5.2, 4.6))
    if region_config.ar_formula == "paper":
        grid = np.linspace(0.0, 1.0, 101)
        grid_obj, grid_senti = np.meshgrid(grid, grid)
        levels = regions_lib.ar_score(grid_obj, grid_senti, region_config.alpha).numpy()
        contours = axis.contour(grid_obj, grid_senti, levels, levels=np.linspace(0.1, 0.9, 9),
                                colors="#bbbbbb", linewidths=0.7)
        axis.clabel(contours, fontsize=6, fmt="%.1f")
    if obj.size:
        points = axis.scatter(obj, senti, c=scores["ar"], cmap="viridis", vmin=0, vmax=1, s=28,
                              edgecolors="none", zorder=2)
        figure.colorbar(points, ax=axis, label="AR (Eq. 5)")
        axis.scatter(obj[top], senti[top], s=110, facecolors="none",
                     edgecolors=visualize.SELECTION_COLOURS["ar"], linewidths=1.6, zorder=3,
                     label=f"top {top.size} by AR (K = {region_config.top_k})")
        for rank, index in enumerate(top, 1):
            axis.annotate(str(rank), (obj[index], senti[index]), textcoords="offset points",
                          xytext=(5, 4), fontsize=7, color=visualize.SELECTION_COLOURS["ar"])
        axis.legend(fontsize=8, loc="lower left")
    else:
        axis.text(0.5, 0.5, "no candidate", ha="center", va="center", transform=axis.transAxes)
    axis.set_xlim(-0.03, 1.03)
    axis.set_ylim(-0.03, 1.03)
    axis.set_xlabel(f"Obj (EdgeBoxes objectness, {region_config.obj_norm} over the image)")
    axis.set_ylabel("Senti (Eq. 4)")
    formula = (f"alpha = {region_config.alpha:g}" if region_config.ar_formula == "paper"
               else "the authors' formula")
    axis.set_title(title or f"The m = {obj.size} candidates ({formula})", fontsize=9)
    axis.grid(alpha=0.2)
    figure.tight_layout()
    return visualize.save_png(figure, path)


def draw_image_figures(image_rgb: np.ndarray, one: Mapping[str, np.ndarray],
                       classifier: keras.Model, config: Config, directory: str | pathlib.Path,
                       stem: str, *, edge_detector: EdgeDetector | None = None) -> dict:
    """Every figure of :data:`FIGURES` for one test image, as ``<stem>_<figure>.png`` in
    ``<directory>/figures/``.

    Args:
        image_rgb: uint8 RGB ``[H, W, 3]``, the image as the proposal stage decoded it.
        one: :func:`image_predictions` of the image (``label``, ``filename``,
            ``global_probs``, ``candidate_probs``, ``boxes``, ``objectness``, ``num_valid``).
        classifier: the run's classifier, float RGB ``[B, S, S, 3]`` -> ``[B, 2]`` logits.
        config: the run's settings.
        directory: the stage directory.
        stem: the files' common prefix (``image_00``).
        edge_detector: as in :func:`proposal_clusters`.

    Returns:
        ``filename``, ``label``, ``files`` (``{figure: path relative to directory}``, in
        :data:`FIGURES`' order), ``view_probability`` (the true class's probability on the
        saliency view), ``evaluation_probability`` (the stored whole-image one; equal up to
        rounding unless ``ten_crop``), ``pool_boxes`` (n), ``candidates`` (k),
        ``proposals_match`` (:func:`matches_candidates`), ``seconds``.
    """
    start = time.perf_counter()
    directory = pathlib.Path(directory)
    image = np.asarray(image_rgb)
    filename = str(one["filename"][0])
    label = int(one["label"][0])
    label_name = LABEL_NAMES[label] if 0 <= label < len(LABEL_NAMES) else f"class {label}"
    files = {name: f"{FIGURE_DIR}/{stem}_{name}.png" for name in FIGURES}
    heading = f"{filename} (true: {label_name})"

    view = whole_image_view(image, config)
    occlusion = saliency.occlusion_map(classifier, view, label,
                                       batch_size=config.evaluation.eval_batch_size)
    cam = saliency.grad_cam(classifier, view, label)
    saliency.plot_saliency(view, occlusion, cam, directory / files["saliency"], title=heading)

    plot_top_regions(image, one, config.regions, directory / files["regions"], title=heading)

    clusters = proposal_clusters(image, config.proposals, edge_detector)
    matched = matches_candidates(clusters, one)
    plot_proposal_clusters(image, clusters, directory / files["clusters"], title=heading + (
        "" if matched else "; recomputed candidates differ from the cached ones"))

    plot_candidate_scores(candidate_scores(one, config.regions), config.regions,
                          directory / files["scores"], title=f"{heading}: Obj vs Senti")
    return {
        "filename": filename, "label": label, "files": files,
        "view_probability": occlusion.base_probability,
        "evaluation_probability": float(one["global_probs"][0, label]),
        "pool_boxes": int(clusters.labels.size), "candidates": int(clusters.selected.size),
        "proposals_match": bool(matched), "seconds": time.perf_counter() - start,
    }


def write_image_figures(directory: str | pathlib.Path, images: Mapping[str, np.ndarray],
                        test: Mapping[str, np.ndarray], classifier: keras.Model, config: Config,
                        *, edge_detector: EdgeDetector | None = None) -> tuple[list[str], list]:
    """:func:`draw_image_figures` of each image, ``image_00``, ``image_01``, ... in the order of
    ``images``.

    Args:
        directory: the stage directory.
        images: ``{image/filename: uint8 RGB [H, W, 3]}`` of test images
            (:func:`chosen_filenames`).
        test: the test part's predictions; each filename of ``images`` must be one of them.
        classifier, config, edge_detector: as in :func:`draw_image_figures` (one edge detector
            is built for all images when None).

    Returns:
        The files written (paths relative to ``directory``) and one
        :func:`draw_image_figures` dict per image.
    """
    rows = {str(name): row for row, name in enumerate(np.asarray(test["filename"]).astype(str))}
    missing = [name for name in images if name not in rows]
    if missing:
        raise ValueError(f"images must be test images of the predictions. Received: "
                         f"{len(missing)} others, e.g. {missing[:3]}")
    if images and edge_detector is None:
        edge_detector = make_edge_detector(config.proposals)
    outputs, entries = [], []
    for index, (name, image) in enumerate(images.items()):
        entry = draw_image_figures(image, image_predictions(test, rows[name]), classifier, config,
                                   directory, f"image_{index:02d}", edge_detector=edge_detector)
        outputs += entry["files"].values()
        entries.append(entry)
    return outputs, entries
