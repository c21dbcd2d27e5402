"""Figures: top affective regions drawn on images (Fig. 9 of the paper): a grid of images with
one box per selection (:func:`draw_top_regions`, the report's), or one image in panels
(:func:`draw_box_panels`, the predictions of :mod:`affect_tf.predict`)."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")  # Headless: figures are written to files, never shown.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from affect_tf import io as io_lib  # noqa: E402
from affect_tf.config import LABEL_NAMES  # noqa: E402

SELECTION_COLOURS = {"ar": "#e41a1c", "obj": "#377eb8", "senti": "#4daf4a", "truth": "#ffffff"}


def save_png(figure, path: str | pathlib.Path, **savefig_options) -> pathlib.Path:
    """Writes ``figure`` as a 90 dpi PNG atomically (:func:`affect_tf.io.atomic_write`: a reader
    never sees half a file), creating the folder, and closes it."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return io_lib.atomic_write(path, lambda handle: figure.savefig(
            handle, format="png", dpi=90, **savefig_options))
    finally:
        plt.close(figure)


def draw_top_regions(
        images: list[np.ndarray], boxes: dict[str, np.ndarray], labels, titles=None,
        path: str | pathlib.Path = "regions.png", columns: int = 4,
) -> pathlib.Path:
    """Draws one box per selection on each image and saves the grid as PNG.

    Args:
        images: N uint8 RGB arrays [H, W, 3] (any sizes).
        boxes: ``{name: [N, 4]}`` normalized [y1, x1, y2, x2]; names ``ar``, ``obj``, ``senti``
            and optionally ``truth`` (the ground-truth box, dashed).
        labels: [N] int, 0 = negative, 1 = positive.
        titles: optional N strings shown above the images (default: the true label).
        path: where the PNG goes.
        columns: images per row.

    Returns:
        The PNG path.
    """
    count = len(images)
    if count == 0:
        raise ValueError("draw_top_regions needs at least one image. Received: 0 images")
    rows = int(np.ceil(count / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3.2 * rows), squeeze=False)
    for position, axis in enumerate(axes.flat):
        axis.axis("off")
        if position >= count:
            continue
        image = images[position]
        height, width = image.shape[:2]
        axis.imshow(image)
        # AR last and thicker: it often coincides with the Obj or Senti box.
        for name in sorted(boxes, key=lambda n: n == "ar"):
            y1, x1, y2, x2 = np.asarray(boxes[name][position], dtype=np.float64)
            if y2 <= y1 or x2 <= x1:
                continue
            axis.add_patch(plt.Rectangle(
                (x1 * width, y1 * height), (x2 - x1) * width, (y2 - y1) * height, fill=False,
                edgecolor=SELECTION_COLOURS.get(name, "#ffff33"), linewidth=3 if name == "ar" else 2,
                linestyle="--" if name == "truth" else "-"))
        title = titles[position] if titles is not None else LABEL_NAMES[int(labels[position])]
        axis.set_title(title, fontsize=9)
    handles = [plt.Line2D([], [], color=SELECTION_COLOURS.get(n, "#ffff33"), linewidth=2,
                          linestyle="--" if n == "truth" else "-", label=n) for n in boxes]
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    return save_png(figure, path, facecolor="#808080")


CANDIDATE_COLOUR = "#ffff33"


def draw_box_panels(
        image: np.ndarray, panels: list[tuple[str, np.ndarray, str]],
        path: str | pathlib.Path = "panels.png", title: str | None = None,
) -> pathlib.Path:
    """One image in several panels side by side, each with its own boxes, saved as PNG: the
    layout of the paper's Fig. 9 (whole image, the m candidates, the top-1 region by Obj, Senti
    and AR).

    Args:
        image: uint8 RGB ``[H, W, 3]`` (any size).
        panels: ``(title, boxes, colour)`` per panel; ``boxes`` ``[n, 4]`` normalized
            ``[y1, x1, y2, x2]`` (n may be 0: the bare image); ``colour`` a matplotlib colour
            (:data:`SELECTION_COLOURS` for ``ar``, ``obj``, ``senti``; :data:`CANDIDATE_COLOUR`).
        path: where the PNG goes (its folder is created).
        title: optional line above the panels.

    Returns:
        The PNG path.
    """
    if not panels:
        raise ValueError("draw_box_panels needs at least one panel. Received: 0 panels")
    height, width = image.shape[:2]
    figure, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.4), squeeze=False)
    for axis, (name, boxes, colour) in zip(axes.flat, panels):
        axis.axis("off")
        axis.imshow(image)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        linewidth = 1 if len(boxes) > 4 else 2.5
        for y1, x1, y2, x2 in boxes:
            if y2 <= y1 or x2 <= x1:
                continue
            axis.add_patch(plt.Rectangle((x1 * width, y1 * height), (x2 - x1) * width,
                                         (y2 - y1) * height, fill=False, edgecolor=colour,
                                         linewidth=linewidth))
        axis.set_title(name, fontsize=9)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return save_png(figure, path, facecolor="#808080")
