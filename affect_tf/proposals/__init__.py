"""Candidate regions (Algorithm 1, steps 1-3): edges, EdgeBoxes, geometric filter, normalized cut.

Two engines share one set of constants (:mod:`~affect_tf.proposals.constants`):

* the OpenCV path of the proposal stage: ``edges`` -> ``edgeboxes`` -> ``selection``, one image
  at a time (``pipeline``), run locally (``local_runner``) or on Beam (``beam_runner``) into the
  ``cache``;
* the TensorFlow-op path of the served graph (:mod:`~affect_tf.proposals.graph`), which needs
  neither OpenCV nor scikit-learn.

Everything that leaves this package is a normalized ``[y1, x1, y2, x2]`` float32 box in [0, 1]
(``tf.image.crop_and_resize``'s convention); OpenCV's pixel ``(x, y, w, h)`` stays inside.
The names below load their module on first use, so ``import affect_tf.proposals.graph`` (the
served graph) never loads OpenCV, and the OpenCV path loads TensorFlow only for HED edges.
"""

import importlib

_EXPORTS = {
    "ProposalArrays": "cache", "ProposalCache": "cache", "ProposalCacheError": "cache",
    "cache_dir_for": "cache",
    "edge_boxes": "edgeboxes", "geometric_filter": "edgeboxes",
    "xywh_to_normalized_yxyx": "edgeboxes",
    "GradientEdgeDetector": "edges", "HEDEdgeDetector": "edges",
    "StructuredEdgeDetector": "edges", "gradient_edges": "edges", "make_edge_detector": "edges",
    "orientation_from_edges": "edges", "thin_edges": "edges",
    "Proposals": "pipeline", "propose": "pipeline",
    "authors_affinity": "selection", "iou_affinity": "selection",
    "normalized_cut_select": "selection", "sparse_affinity": "selection",
    "run_proposal_stage": "local_runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
