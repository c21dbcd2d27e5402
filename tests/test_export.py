"""The SavedModel for TF Serving: signatures, no Python ops, a fresh-process reload that matches
the in-memory evaluation, the REST / gRPC request shapes, and bad input."""

import base64
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from affect_tf import evaluate as evaluate_lib
from affect_tf import export as export_lib
from affect_tf import fusion as fusion_lib
from affect_tf import io as io_lib
from affect_tf import served_eval
from affect_tf.config import ExportConfig
from affect_tf.testing import replace_config, tiny_config

_RELOAD = r"""
import sys
import numpy as np
import tensorflow as tf

model = tf.saved_model.load(sys.argv[1])
inputs = dict(np.load(sys.argv[2], allow_pickle=True))  # The test's own file: object array of bytes.
with_proposals = model.signatures["predict_with_proposals"](
    images=tf.constant(inputs["images"]), boxes=tf.constant(inputs["boxes"]),
    objectness=tf.constant(inputs["objectness"]), num_valid=tf.constant(inputs["num_valid"]))
served = model.signatures["serving_default"](images=tf.constant(inputs["images"]))
arrays = {f"proposals_{key}": value.numpy() for key, value in with_proposals.items()}
arrays.update({f"served_{key}": value.numpy() for key, value in served.items()})
np.savez(sys.argv[3], **arrays)
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A finished tiny run, its export, and the evaluation's test predictions and images."""
    from affect_tf import stages

    root = tmp_path_factory.mktemp("export")
    # The SVM on log-probabilities (the demo's choice): the served graph must apply the same
    # transform as the evaluation (the evaluation's own tests cover plain probabilities).
    config = tiny_config(root, fusion={"svm_features": "log_probabilities"})
    stages.run(config)
    run = stages.run(replace_config(config, mode="export"))
    with np.load(run.predict_dir / "predictions_test.npz") as stored:
        predictions = dict(stored)
    names = set(predictions["filename"].tolist())
    images = {}
    for example in stages.data_lib.examples(run.builder, names).as_numpy_iterator():
        images[example["image/filename"].decode()] = example["image"]
    encoded = np.array([images[name] for name in predictions["filename"]], dtype=object)
    return config, run, root / "run" / "export" / "1", predictions, encoded


def _reload(saved_model, inputs, tmp_path):
    """Runs both signatures in a fresh Python process (as a server would load the model)."""
    import affect_tf

    np.savez(tmp_path / "inputs.npz", **inputs)
    (tmp_path / "reload.py").write_text(_RELOAD)
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(affect_tf.__file__).parents[1]),
               CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, str(tmp_path / "reload.py"), str(saved_model),
         str(tmp_path / "inputs.npz"), str(tmp_path / "outputs.npz")],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(tmp_path / "outputs.npz", allow_pickle=True) as stored:  # label_name: bytes.
        return dict(stored)


def test_reloaded_model_matches_the_in_memory_evaluation(exported, tmp_path):
    _, run, saved_model, predictions, encoded = exported
    # The regions as the evaluation scored them: with the temperature fitted on its validation
    # part, which both signatures carry.
    config = run.scoring_config()
    assert config.regions.senti_temperature != 1.0
    inputs = {"images": encoded, "boxes": predictions["boxes"],
              "objectness": predictions["objectness"],
              "num_valid": predictions["num_valid"].astype(np.int32)}
    outputs = _reload(saved_model, inputs, tmp_path)

    # The evaluation's own numbers: the reported selection's top K, fused by the fitted SVM.
    selected = evaluate_lib.select(predictions, config.regions, config.regions.selection)
    svm = fusion_lib.SVMFusion.load(str(run.eval_dir / f"svm_{config.regions.selection}"))
    labels = evaluate_lib.fuse(config.fusion.fusion, predictions["global_probs"], selected,
                               config.fusion, svm=svm)
    np.testing.assert_array_equal(outputs["proposals_label"], labels)
    np.testing.assert_allclose(outputs["proposals_whole_image_probabilities"],
                               predictions["global_probs"], atol=1e-4)
    sizes = np.array([io_lib.decode_image_bytes(data).shape[:2] for data in encoded])
    scale = np.concatenate([sizes, sizes], axis=1)[:, None, :].astype(np.float32)
    np.testing.assert_allclose(outputs["proposals_region_boxes"],
                               selected["region_boxes"] * scale, atol=1e-3)
    np.testing.assert_array_equal(outputs["proposals_region_valid"], selected["region_valid"])
    np.testing.assert_allclose(outputs["proposals_region_ar"],
                               np.where(selected["region_valid"], selected["region_scores"], 0),
                               atol=1e-4)

    _assert_serving_default_is_the_served_row(outputs, run, predictions, scale)


def _assert_serving_default_is_the_served_row(outputs, run, predictions, scale):
    """serving_default is the served evaluation's path: its in-graph candidates, fused by the
    SVM fitted on that path's validation predictions (the served row of the report)."""
    config = run.scoring_config()
    served_dir = run.stage_dir("served", run.served_manifest().fingerprint)
    with np.load(served_dir / "predictions_test.npz") as stored:
        served = dict(stored)
    order = [served["filename"].tolist().index(name) for name in predictions["filename"]]
    served = {key: value[order] for key, value in served.items()}
    served_svm = fusion_lib.SVMFusion.load(str(served_dir / f"svm_{config.regions.selection}"))
    np.testing.assert_array_equal(outputs["served_label"],
                                  served_eval.reported_labels(served, config, served_svm))
    assert np.all(outputs["served_image_ok"])
    np.testing.assert_allclose(outputs["served_whole_image_probabilities"],
                               served["global_probs"], atol=1e-4)
    served_selected = evaluate_lib.select(served, config.regions, config.regions.selection)
    np.testing.assert_allclose(outputs["served_region_boxes"],
                               served_selected["region_boxes"] * scale, atol=1e-3)
    np.testing.assert_array_equal(outputs["served_region_valid"], served_selected["region_valid"])
    decision = served_svm.decision_function(np.asarray(fusion_lib.concat_features(
        served["global_probs"], served_selected["region_probs"], config.fusion.svm_features)))
    np.testing.assert_allclose(outputs["served_probabilities"][:, 1],
                               1 / (1 + np.exp(-decision)), atol=1e-4)


def test_the_served_row_is_measured_reported_and_shipped(exported):
    config, run, saved_model, _, _ = exported
    served = json.loads((run.stage_dir("served", run.served_manifest().fingerprint)
                         / "metrics.json").read_text())
    evaluated = json.loads((run.eval_dir / "metrics.json").read_text())
    assert served["evaluated_accuracy"] == evaluated["results"][served["reported"]]["accuracy"]
    assert 0 <= served["served_accuracy"] <= 1 and 0 <= served["label_agreement"] <= 1
    assert served["invalid_images"] == 0 and served["test_images"] == evaluated["counts"]["test"]
    root = json.loads((run.workdir / "metrics.json").read_text())
    assert root["served"]["served_accuracy"] == served["served_accuracy"]
    assert "## The served model" in (run.workdir / "report.md").read_text()
    asset = json.loads((saved_model / export_lib.EXTRA_ASSETS
                        / export_lib.SERVED_EVALUATION_FILE).read_text())
    assert asset["serving_default"]["accuracy"] == served["served_accuracy"]
    assert asset["predict_with_proposals"]["accuracy"] == served["evaluated_accuracy"]
    # The row says which edges it was measured with, and the asset which edges are served.
    assert served["served_edges"] == {"edge_source": "gradient"}
    assert asset["serving_default"]["edges"] == {"edge_source": "gradient"}
    assert "gradient edges" in asset["serving_default"]["proposals"]
    assert "in the graph (gradient edges" in (run.workdir / "report.md").read_text()


def test_the_saved_model_holds_no_python_backed_op(exported, tmp_path):
    saved_model = exported[2]
    assert export_lib.python_backed_ops(saved_model) == []

    # The check finds one where there is one.
    class WithPython(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x):
            return tf.py_function(lambda v: v * 2, [x], tf.float32)

    tf.saved_model.save(WithPython(), str(tmp_path / "python"))
    assert export_lib.python_backed_ops(tmp_path / "python") == ["EagerPyFunc"]


def test_saved_model_cli_lists_both_signatures(exported):
    saved_model = exported[2]
    cli = pathlib.Path(sys.executable).with_name("saved_model_cli")
    command = [str(cli)] if cli.exists() else [
        sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    result = subprocess.run([*command, "show", "--dir", str(saved_model), "--all"],
                            capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    for text in ("signature_def['serving_default']", "signature_def['predict_with_proposals']",
                 "inputs['images'] tensor_info:", "dtype: DT_STRING",
                 "outputs['region_boxes'] tensor_info:", "outputs['label_name'] tensor_info:"):
        assert text in result.stdout, text


def test_the_clients_predict_request_feeds_the_signature(exported):
    from affect_tf import serving_client

    _, _, saved_model, _, encoded = exported
    images = [bytes(data) for data in encoded[:2]]
    request = serving_client.predict_request(images)
    assert request.model_spec.name == "affect_tf"
    # TF Serving turns each input TensorProto back into a tensor and calls the signature.
    model = tf.saved_model.load(str(saved_model))
    signature = model.signatures[request.model_spec.signature_name]
    feeds = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
    outputs = signature(**feeds)
    assert outputs["label"].shape == [2] and outputs["region_boxes"].shape[:2] == [2, 2]
    direct = signature(images=tf.constant(images))
    np.testing.assert_array_equal(outputs["label"], direct["label"])
    # The REST body of the same request carries the same bytes.
    body = json.loads(json.dumps(serving_client.rest_body(images)))
    assert body["signature_name"] == "serving_default"
    assert [base64.b64decode(item["b64"]) for item in body["instances"]] == images


def test_a_bad_file_fails_its_own_row_only(exported):
    _, _, saved_model, _, encoded = exported
    model = tf.saved_model.load(str(saved_model))
    serve = model.signatures["serving_default"]
    one_pixel = io_lib.encode_png(np.full((1, 1, 3), 200, np.uint8))
    huge = tf.io.encode_jpeg(tf.zeros([10_000, 120, 3], tf.uint8)).numpy()  # 10,000 px tall.
    good = bytes(encoded[0])
    truncated = good[:len(good) * 7 // 10]  # Starts like a JPEG, its decoder raises.
    batch = [b"this is not an image", b"", one_pixel, huge, truncated, good]
    outputs = {key: value.numpy() for key, value in serve(images=tf.constant(batch)).items()}
    np.testing.assert_array_equal(outputs["image_ok"], [False, False, True, True, False, True])
    bad = ~outputs["image_ok"]
    assert outputs["label"][bad].tolist() == [-1, -1, -1]
    assert outputs["label_name"][bad].tolist() == [b"invalid_image"] * 3
    assert set(outputs["label"][~bad].tolist()) <= {0, 1}
    assert not outputs["region_valid"][:3].any() and not outputs["region_valid"][bad].any()
    # No made-up numbers for a file that did not decode; real ones for the others.
    for key in ("probabilities", "whole_image_probabilities", "region_boxes", "region_ar"):
        assert np.isnan(outputs[key][bad]).all(), key
        assert np.isfinite(outputs[key][~bad]).all(), key
    # The good file's answer does not depend on its neighbours.
    alone = serve(images=tf.constant([good]))
    np.testing.assert_allclose(outputs["probabilities"][-1], alone["probabilities"].numpy()[0],
                               rtol=1e-6, atol=1e-6)
    empty = serve(images=tf.constant([], tf.string))
    assert empty["label"].shape == [0] and empty["probabilities"].shape == [0, 2]


def test_kernel_svm_concatenation_is_refused_before_any_stage(tmp_path):
    from affect_tf import preflight

    config = tiny_config(tmp_path, mode="export", fusion={"svm_kernel": "rbf"})
    with pytest.raises(preflight.PreflightError, match="kernel SVM is evaluation-only"):
        preflight.check(config)


@pytest.mark.parametrize("fusion", ["max", "sum"])
def test_pooling_fusions_run_in_the_graph_as_in_the_evaluation(exported, fusion):
    from affect_tf import train as train_lib

    _, run, _, predictions, encoded = exported
    config = replace_config(run.scoring_config(), fusion={"fusion": fusion, "beta": 0.5})
    classifier = train_lib.load_classifier(config.model, str(run.train_dir))
    graph = export_lib.ServingGraph(classifier, config)
    outputs = tf.function(graph.predict_with_proposals)(
        tf.constant(list(encoded)), tf.constant(predictions["boxes"]),
        tf.constant(predictions["objectness"]), tf.constant(predictions["num_valid"]))
    selected = evaluate_lib.select(predictions, config.regions, config.regions.selection)
    labels = evaluate_lib.fuse(fusion, predictions["global_probs"], selected, config.fusion)
    np.testing.assert_array_equal(outputs["label"].numpy(), labels)


def test_a_killed_exports_temporary_folder_is_removed_by_the_next(tmp_path):
    # A kill between write_out and the rename leaves .tmp-<version>-<pid>/; the next export
    # removes it when that pid is gone, and never a live export's.
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout.strip()
    dead = tmp_path / f".tmp-3-{dead_pid}"
    live = tmp_path / f".tmp-4-{os.getpid()}"
    for folder in (dead, live):
        (folder / "variables").mkdir(parents=True)
    assert export_lib.remove_dead_temporaries(tmp_path) == [dead]
    assert not dead.exists() and live.exists()


# ------------------------------------------------------------------------------------------------
# The served edges: the run's (gradient or HED in the graph), gradient on request, never sed.


@pytest.fixture(scope="module")
def classifier(exported):
    from affect_tf import train as train_lib

    run = exported[1]
    return train_lib.load_classifier(run.config.model, str(run.train_dir))


def _hed_config(run, **overrides):
    """The run's scoring settings with HED edges at a small proposal scale (HED stays cheap) and
    max pooling (no SVM to fit for a graph of other edges)."""
    return replace_config(run.scoring_config(), fusion={"fusion": "max"},
                          proposals={"edge_source": "hed", "hed_precision": "float32",
                                     "proposal_max_side": 96}, **overrides)


def _served_equals_its_proposals(graph, encoded, tmp_path, **propose_options) -> np.ndarray:
    """Exports ``graph``, reloads it, and checks that ``serving_default`` answers as
    ``predict_with_proposals`` given ``propose_in_graph(**propose_options)``'s candidates.

    Returns:
        float32 [B, m, 4] those candidates.
    """
    from affect_tf.proposals import graph as graph_proposals

    target = export_lib.write_saved_model(graph, tmp_path / "export")
    assert export_lib.python_backed_ops(target) == []
    model = tf.saved_model.load(str(target))
    images = tf.constant(list(encoded))
    served = model.signatures["serving_default"](images=images)
    propose = tf.function(
        lambda image: graph_proposals.propose_in_graph(image, graph.config.proposals,
                                                       **propose_options),
        input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)], autograph=False)
    proposals = [propose(io_lib.decode_image_bytes(bytes(data))) for data in encoded]
    boxes, objectness, num_valid = (tf.stack(list(parts)) for parts in zip(*proposals))
    assert np.all(num_valid.numpy() > 0)
    given = model.signatures["predict_with_proposals"](
        images=images, boxes=boxes, objectness=objectness, num_valid=num_valid)
    for key in ("region_boxes", "region_ar", "probabilities"):
        np.testing.assert_allclose(served[key].numpy(), given[key].numpy(), atol=1e-4,
                                   err_msg=key)
    np.testing.assert_array_equal(served["region_valid"].numpy(), given["region_valid"].numpy())
    return boxes.numpy()


def test_hed_edges_are_served_in_the_graph(exported, classifier, tmp_path):
    from affect_tf.proposals import edges as edges_lib
    from affect_tf.proposals import graph as graph_proposals

    _, run, _, _, encoded = exported
    config = _hed_config(run)
    graph = export_lib.ServingGraph(classifier, config)
    assert graph.edges == {"edge_source": "hed", "hed_precision": "float32"}
    # The same image through propose_in_graph with the graph's HED edges (its own network on
    # the same model), then classified by the other signature: the same answer.
    edge_fn = graph_proposals.graph_hed_edges(edges_lib.hed_network(graph.hed_model, "float32"))
    boxes = _served_equals_its_proposals(graph, encoded[:2], tmp_path, edge_fn=edge_fn)

    # And not the gradient edges' candidates.
    gradient = tf.function(
        lambda image: graph_proposals.propose_in_graph(image, config.proposals),
        input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)], autograph=False)
    gradient_boxes = gradient(io_lib.decode_image_bytes(bytes(encoded[0])))[0].numpy()
    assert not np.allclose(gradient_boxes, boxes[0], atol=1e-3)


def test_served_edges_gradient_serves_gradient_edges(exported, classifier):
    from affect_tf.proposals import graph as graph_proposals

    _, run, _, _, encoded = exported
    config = _hed_config(run, served_edges="gradient")
    graph = export_lib.ServingGraph(classifier, config)
    assert graph.edges == {"edge_source": "gradient"} and graph.hed_model is None
    _, _, _, boxes, _, _ = tf.function(graph.decode_and_propose)(tf.constant(list(encoded[:1])))
    expected = graph_proposals.propose_in_graph(io_lib.decode_image_bytes(bytes(encoded[0])),
                                                config.proposals)[0]
    np.testing.assert_allclose(boxes.numpy()[0], expected.numpy(), atol=1e-5)


def test_structured_edges_are_refused_before_any_work(exported, classifier):
    from affect_tf import preflight, stages
    from affect_tf.config import ConfigError

    config, run, _, _, _ = exported
    structured = {"edge_source": "sed", "sed_model_path": "/no/such/model.yml.gz"}
    sed = replace_config(config, proposals=structured)
    scoring = replace_config(run.scoring_config(), proposals=structured)  # What graphs get.
    message = r"cannot compute sed edges.*--served_edges=gradient.*Received: served_edges='run'"
    with pytest.raises(ConfigError, match=message):
        export_lib.ServingGraph(classifier, scoring)
    with pytest.raises(preflight.PreflightError, match=message):
        preflight.check(replace_config(sed, mode="export"))
    before = sorted(run.workdir.iterdir())
    with pytest.raises(ConfigError, match=message):
        stages.served_stage(stages.Run(sed))
    assert sorted(run.workdir.iterdir()) == before
    assert stages.Run(sed).served_manifest() is None  # The report of such a run has no row.
    # --served_edges=gradient serves (and measures) gradient edges instead.
    allowed = replace_config(sed, served_edges="gradient")
    preflight.check(replace_config(allowed, mode="export"))
    graph = export_lib.ServingGraph(classifier, replace_config(scoring, served_edges="gradient"))
    assert graph.edges == {"edge_source": "gradient"}


def test_the_served_fingerprint_follows_the_served_edges(exported, monkeypatch):
    from affect_tf import config as config_lib
    from affect_tf import stages
    from affect_tf import workspace
    from affect_tf.proposals import cache as cache_lib

    config, run, _, _, _ = exported
    # A gradient-edge run keeps the fingerprint it had before the served edges existed.
    old = config_lib.fingerprint(
        run.eval_fingerprint(run.predict_manifest()),
        cache_lib.proposal_fingerprint(config.proposals),
        workspace._fields(config.evaluation, "eval_batch_size"),
        f"served-format-{workspace.SERVED_FORMAT}")
    assert run.served_fingerprint() == old
    assert stages.Run(replace_config(config, served_edges="gradient")).served_fingerprint() == old

    def fingerprint(**overrides):
        other = stages.Run(replace_config(config, proposals={"edge_source": "hed"}, **overrides))
        other.predict_manifest = run.predict_manifest  # The same evaluation to compare with.
        return other.served_fingerprint()

    # A HED run measures its served row again when it serves other edges, or HED in another
    # precision: "auto" counts as what it resolves to on the machine that serves the row.
    from affect_tf.proposals import edges as edges_lib

    monkeypatch.setattr(edges_lib, "cpu_has_bfloat16", lambda: False)
    float32 = fingerprint()
    assert float32 != fingerprint(served_edges="gradient")
    monkeypatch.setattr(edges_lib, "cpu_has_bfloat16", lambda: True)
    assert fingerprint() != float32


def test_the_report_names_the_served_edges(exported):
    from affect_tf import report

    _, run, _, _, _ = exported
    served = json.loads((run.stage_dir("served", run.served_manifest().fingerprint)
                         / "metrics.json").read_text())
    served["served_edges"] = {"edge_source": "hed", "hed_precision": "bfloat16"}
    assert "in the graph (HED edges in bfloat16" in "\n".join(report.served_section(served))
    del served["served_edges"]  # A row measured before the summary named its edges.
    assert "in the graph (gradient edges" in "\n".join(report.served_section(served))
    asset = json.loads(served_eval.evaluation_asset(served, run.config, "holdout"))
    assert asset["serving_default"]["edges"] == {"edge_source": "gradient"}


def test_served_boxes_edgeboxes_serves_opencvs_edgeboxes(exported, classifier, tmp_path):
    from affect_tf.proposals import graph as graph_proposals

    _, run, _, _, encoded = exported
    config = replace_config(run.scoring_config(), fusion={"fusion": "max"},
                            proposals={"proposal_max_side": 96}, served_boxes="edgeboxes")
    graph = export_lib.ServingGraph(classifier, config)
    assert graph.edges == {"edge_source": "gradient", "boxes": "edgeboxes"}
    # The same candidates as propose_in_graph with OpenCV's EdgeBoxes, classified by the other
    # signature: the same answer; and not the sliding windows' candidates.
    boxes = _served_equals_its_proposals(graph, encoded[:2], tmp_path, box_engine="edgeboxes")
    windows = graph_proposals.propose_in_graph(io_lib.decode_image_bytes(bytes(encoded[0])),
                                               config.proposals)[0].numpy()
    assert not np.allclose(windows, boxes[0], atol=1e-3)


def test_served_boxes_are_fingerprinted_reported_and_bounded(exported):
    from affect_tf import preflight, report, stages
    from affect_tf.config import ConfigError

    config, run, _, _, _ = exported
    faithful = stages.Run(replace_config(config, served_boxes="edgeboxes"))
    faithful.predict_manifest = run.predict_manifest
    assert faithful.served_fingerprint() != run.served_fingerprint()
    served = {"edge_source": "gradient", "boxes": "edgeboxes"}
    assert "OpenCV's EdgeBoxes" in report.edges_in_words(served)
    assert "sliding windows" in report.edges_in_words({"edge_source": "gradient"})
    # The paper's whole pool runs in every other mode; its export is refused, naming windows.
    whole_pool = replace_config(config, served_boxes="edgeboxes", proposals={"max_boxes": 10000})
    with pytest.raises(ConfigError, match=r"at most 2000 boxes.*--served_boxes=windows.*"
                                          r"Received: max_boxes=10000"):
        whole_pool.served_box_engine()
    with pytest.raises(preflight.PreflightError, match=r"at most 2000 boxes"):
        preflight.check(replace_config(whole_pool, mode="export"),
                        imagenet_reachable=lambda: False)
    assert replace_config(whole_pool, served_boxes="windows").served_box_engine() == "windows"
    assert ExportConfig().served_boxes == "edgeboxes"  # The faithful engine is the default.


@pytest.mark.slow
def test_the_default_engines_export_answers_as_its_served_row(exported, tmp_path):
    """The default export (OpenCV's EdgeBoxes in XLA), reloaded in a fresh process: its
    serving_default gives the labels, boxes and probabilities its served evaluation measured."""
    import shutil

    from affect_tf import stages

    config, _, _, predictions, encoded = exported
    # A copy: the module's run keeps its windows row for the other tests.
    shutil.copytree(config.workdir, tmp_path / "run")
    default_engine = replace_config(config, workdir=str(tmp_path / "run"), mode="export",
                                    served_boxes=ExportConfig().served_boxes)
    run = stages.run(default_engine)
    saved_model = max((tmp_path / "run" / "export").iterdir(), key=lambda p: int(p.name))
    asset = json.loads((saved_model / export_lib.EXTRA_ASSETS
                        / export_lib.SERVED_EVALUATION_FILE).read_text())
    assert asset["serving_default"]["edges"] == {"edge_source": "gradient", "boxes": "edgeboxes"}
    inputs = {"images": encoded, "boxes": predictions["boxes"],
              "objectness": predictions["objectness"],
              "num_valid": predictions["num_valid"].astype(np.int32)}
    outputs = _reload(saved_model, inputs, tmp_path)
    sizes = np.array([io_lib.decode_image_bytes(data).shape[:2] for data in encoded])
    scale = np.concatenate([sizes, sizes], axis=1)[:, None, :].astype(np.float32)
    _assert_serving_default_is_the_served_row(outputs, run, predictions, scale)
