"""affect_tf.served_eval: the served path's row, compared with the evaluated path's (no CNN)."""

import dataclasses

import numpy as np
import pytest

from affect_tf import evaluate as evaluate_lib
from affect_tf import served_eval
from affect_tf.testing import tiny_config


def _part(seed: int, count: int = 24, m: int = 4, shift: float = 0.0) -> dict:
    """Predictions of ``count`` images whose regions carry the label (a learnable SVM)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    strength = rng.uniform(0.55, 0.95, (count, m)) + shift
    positive = np.where(labels[:, None] == 1, strength, 1 - strength).clip(0.01, 0.99)
    y1, x1 = rng.uniform(0, 0.5, (count, m)), rng.uniform(0, 0.5, (count, m))
    boxes = np.stack([y1, x1, y1 + 0.4, x1 + 0.4], axis=-1).astype(np.float32)
    return {"label": labels, "filename": np.array([f"{i:02d}.png" for i in range(count)]),
            "global_probs": np.stack([np.full(count, 0.5), np.full(count, 0.5)], -1)
            .astype(np.float32),
            "candidate_probs": np.stack([1 - positive, positive], -1).astype(np.float32),
            "boxes": boxes, "objectness": rng.uniform(0, 1, (count, m)).astype(np.float32),
            "num_valid": np.full(count, m, np.int32), "image_ok": np.ones(count, bool)}


@pytest.fixture()
def config(tmp_path):
    config = tiny_config(tmp_path)
    # A fixed temperature: these tests are about how the two paths are compared.
    return dataclasses.replace(config, regions=dataclasses.replace(
        config.regions, top_k=2, senti_calibration="none"))


def _evaluated(config, validation, test):
    results, svms = evaluate_lib.evaluate_all(validation, test, config)
    return {"results": results}, svms[config.regions.selection]


def test_the_same_predictions_agree_everywhere(config):
    validation, test = _part(1), _part(2)
    metrics, svm = _evaluated(config, validation, test)
    summary, svms = served_eval.evaluate_served(validation, test, test, metrics, svm, config)
    assert summary["served_accuracy"] == summary["evaluated_accuracy"]
    assert summary["difference"] == 0
    assert summary["label_agreement"] == 1.0 and summary["whole_image_agreement"] == 1.0
    assert summary["top1_agreement"] == 1.0 and summary["top1_compared"] == len(test["label"])
    assert set(svms) == {"ar", "obj", "senti"} and summary["invalid_images"] == 0


def test_rows_are_matched_by_filename_and_a_file_that_did_not_decode_counts_wrong(config):
    validation, test = _part(1), _part(2)
    metrics, svm = _evaluated(config, validation, test)
    order = np.arange(len(test["label"]))[::-1]
    served = {key: value[order] for key, value in test.items()}  # Another order.
    served["image_ok"] = served["image_ok"].copy()
    served["image_ok"][0] = False
    summary, _ = served_eval.evaluate_served(validation, served, test, metrics, svm, config)
    labels = served_eval.reported_labels(served, config, svm)
    assert labels[0] == served_eval.INVALID_LABEL
    assert summary["invalid_images"] == 1
    assert summary["label_agreement"] == pytest.approx(1 - 1 / len(order))
    assert summary["served_accuracy"] == pytest.approx(
        summary["evaluated_accuracy"] - 1 / len(order))


def test_other_regions_change_the_top1_agreement_and_the_fitted_svm(config):
    validation, test = _part(1), _part(2)
    metrics, svm = _evaluated(config, validation, test)
    served_test = dict(test, boxes=np.clip(test["boxes"] + 0.5, 0, 1))  # Far from the others.
    summary, svms = served_eval.evaluate_served(_part(3, shift=-0.3), served_test, test,
                                                metrics, svm, config)
    assert summary["top1_agreement"] == 0.0
    assert not np.allclose(svms["ar"].coef, svm.coef)  # Fitted on the served validation part.


def test_parts_of_other_images_are_refused(config):
    validation, test = _part(1), _part(2)
    metrics, svm = _evaluated(config, validation, test)
    other = dict(test, filename=np.array([f"x{i}.png" for i in range(len(test["label"]))]))
    with pytest.raises(ValueError, match="must hold the same images"):
        served_eval.evaluate_served(validation, other, test, metrics, svm, config)
