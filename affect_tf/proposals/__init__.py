"""Candidate regions (Algorithm 1, steps 1-3): edges, EdgeBoxes, geometric filter, normalized cut.

Everything that leaves this package is a normalized ``[y1, x1, y2, x2]`` float32 box in [0, 1]
(``tf.image.crop_and_resize``'s convention); OpenCV's pixel ``(x, y, w, h)`` stays inside.
TensorFlow is imported only by the HED edge detector, lazily.
"""

from affect_tf.proposals.cache import (
    ProposalArrays,
    ProposalCache,
    ProposalCacheError,
    cache_dir_for,
)
from affect_tf.proposals.edgeboxes import edge_boxes, geometric_filter, xywh_to_normalized_yxyx
from affect_tf.proposals.edges import (
    GradientEdgeDetector,
    HEDEdgeDetector,
    StructuredEdgeDetector,
    gradient_edges,
    make_edge_detector,
    orientation_from_edges,
    thin_edges,
)
from affect_tf.proposals.pipeline import Proposals, propose
from affect_tf.proposals.selection import authors_affinity, iou_affinity, normalized_cut_select
from affect_tf.proposals.local_runner import run_proposal_stage

__all__ = [
    "GradientEdgeDetector",
    "HEDEdgeDetector",
    "ProposalArrays",
    "ProposalCache",
    "ProposalCacheError",
    "Proposals",
    "StructuredEdgeDetector",
    "authors_affinity",
    "cache_dir_for",
    "edge_boxes",
    "geometric_filter",
    "gradient_edges",
    "iou_affinity",
    "make_edge_detector",
    "normalized_cut_select",
    "orientation_from_edges",
    "propose",
    "run_proposal_stage",
    "thin_edges",
    "xywh_to_normalized_yxyx",
]
