"""Tests of affect_tf.regions: Eqs. 4-5 by hand, crops, the batched top-K graph.

The CNN is replaced by a tiny Keras model whose logits depend on the crop's mean colour only
(logit_neg = 0, logit_pos = (mean R - mean B) / 50), so every crop's probabilities are known.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from affect_tf import regions
from affect_tf.config import RegionConfig

CROP = 8
RED, BLUE, GRAY, MIX = (255, 0, 0), (0, 0, 200), (128, 128, 128), (200, 0, 55)
# Inset quadrant boxes, [y1, x1, y2, x2]: bilinear sampling stays inside one colour.
TL, TR = [0.05, 0.05, 0.45, 0.45], [0.05, 0.55, 0.45, 0.95]
BL, BR = [0.55, 0.05, 0.95, 0.45], [0.55, 0.55, 0.95, 0.95]
WHOLE = [0.0, 0.0, 1.0, 1.0]


def _colour_classifier():
    inputs = keras.Input((CROP, CROP, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(2, name="colour_logits")
    model = keras.Model(inputs, dense(pooled))
    dense.set_weights([np.array([[0, 1 / 50], [0, 0], [0, -1 / 50]], np.float32),
                       np.zeros(2, np.float32)])
    return model


def _probs(rgb):
    """Expected softmax of the colour classifier for a crop of mean colour ``rgb``."""
    d = (rgb[0] - rgb[2]) / 50.0
    positive = 1.0 / (1.0 + math.exp(-d))
    return np.array([1.0 - positive, positive])


def _senti(p):
    entropy = -sum(v * math.log(v) for v in p if v > 0)
    return 1.0 - entropy / math.log(len(p))


def _quadrant_image(tl, tr, bl, br, size=32):
    image = np.zeros((size, size, 3), np.float32)
    h = size // 2
    image[:h, :h], image[:h, h:], image[h:, :h], image[h:, h:] = tl, tr, bl, br
    return image


@pytest.fixture(scope="module")
def classifier():
    return _colour_classifier()


@pytest.fixture(scope="module")
def batch():
    images = np.stack([_quadrant_image(RED, BLUE, GRAY, MIX),
                       _quadrant_image(BLUE, RED, MIX, GRAY)])
    boxes = np.array([[TL, TR, BL, BR, WHOLE]] * 2, np.float32)
    # Image 0: objectness ranks gray > mix > blue > whole > red; image 1 has 2 valid slots and a
    # padding slot with the highest objectness, which must never be chosen.
    objectness = np.array([[1, 3, 5, 4, 2], [2, 7, 100, 0, 0]], np.float32)
    num_valid = np.array([5, 2], np.int32)
    global_probs = np.array([[0.3, 0.7], [0.8, 0.2]], np.float32)
    return {"image": images, "boxes": boxes, "objectness": objectness, "num_valid": num_valid,
            "global_probs": global_probs}


def _discover(classifier, batch, **config):
    cfg = RegionConfig(**{"top_k": 3, **config})
    return regions.discover_regions(
        classifier, batch["image"], batch["boxes"], batch["objectness"], batch["num_valid"],
        batch["global_probs"], config=cfg, crop_size=CROP)


def _assert_same_outputs(out, reference, context=""):
    """Every output of :func:`regions.discover_regions` in ``reference`` matches ``out``."""
    for key, value in reference.items():
        np.testing.assert_allclose(out[key].numpy(), value.numpy(), atol=1e-6,
                                   err_msg=f"{context}{key}")


# Eq. 4 ------------------------------------------------------------------------------------------

def test_sentiment_score_by_hand():
    senti = regions.sentiment_score([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0], [0.9, 0.1]]).numpy()
    # [0.9, 0.1]: H = 0.9 * 0.1053605 + 0.1 * 2.3025851 = 0.3250830 nats; / ln 2 = 0.4689956.
    np.testing.assert_allclose(senti, [0.0, 1.0, 1.0, 1.0 - 0.4689956], atol=1e-6)


def test_sentiment_score_any_number_of_classes():
    senti = regions.sentiment_score(np.array([[1 / 3] * 3, [1.0, 0.0, 0.0]])).numpy()
    np.testing.assert_allclose(senti, [0.0, 1.0], atol=1e-6)
    with pytest.raises(ValueError, match="Received: probs.shape"):
        regions.sentiment_score([[1.0]])


# Objectness normalization -------------------------------------------------------------------------

def test_normalize_objectness_minmax_masked():
    obj = [[3.0, 1.0, 2.0, 100.0], [2.0, 2.0, 9.0, 9.0], [5.0, 6.0, 7.0, 8.0]]
    valid = [[True, True, True, False], [True, True, False, False], [False] * 4]
    got = regions.normalize_objectness(obj, valid, "minmax").numpy()
    np.testing.assert_allclose(got, [[1.0, 0.0, 0.5, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0] * 4])


def test_normalize_objectness_max():
    obj = [[2.0, 4.0, 1.0, 100.0], [0.0, 0.0, 1.0, 1.0]]
    valid = [[True, True, True, False], [True, True, False, False]]
    got = regions.normalize_objectness(obj, valid, "max").numpy()
    np.testing.assert_allclose(got, [[0.5, 1.0, 0.25, 0.0], [1.0, 1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="Received: mode='median'"):
        regions.normalize_objectness(obj, valid, "median")


# Eq. 5 --------------------------------------------------------------------------------------------

def test_ar_score_paper_by_hand():
    # sqrt(0.4 * 0.5^2 + 0.6 * 0.8^2) = sqrt(0.1 + 0.384) = sqrt(0.484) = 0.6957011
    ar = regions.ar_score([[0.5, 1.0, 0.0]], [[0.8, 0.0, 1.0]], alpha=0.6).numpy()
    np.testing.assert_allclose(ar, [[0.6957011, math.sqrt(0.4), math.sqrt(0.6)]], atol=1e-6)
    np.testing.assert_allclose(regions.ar_score([[0.3]], [[0.9]], alpha=0.0).numpy(), [[0.3]])
    np.testing.assert_allclose(regions.ar_score([[0.3]], [[0.9]], alpha=1.0).numpy(), [[0.9]])
    masked = regions.ar_score([[0.5, 1.0]], [[0.8, 1.0]], alpha=0.6, valid=[[True, False]])
    np.testing.assert_allclose(masked.numpy(), [[0.6957011, 0.0]], atol=1e-6)


def test_ar_score_authors_by_hand():
    # Senti min-max over the valid three: [0.2, 0.6, 1.0] -> [0, 0.5, 1]; AR = 0.4 S + 0.6 O.
    ar = regions.ar_score([[1.0, 0.0, 0.5, 1.0]], [[0.2, 0.6, 1.0, 0.9]], alpha=0.99,
                          formula="authors", valid=[[True, True, True, False]]).numpy()
    np.testing.assert_allclose(ar, [[0.6, 0.2, 0.7, 0.0]], atol=1e-6)
    with pytest.raises(ValueError, match="Received: formula='mean'"):
        regions.ar_score([[0.5]], [[0.5]], alpha=0.6, formula="mean")


# Crops --------------------------------------------------------------------------------------------

def test_crop_regions_quadrant_colours(batch):
    crops = regions.crop_regions(batch["image"], batch["boxes"][:, :4], CROP).numpy()
    assert crops.shape == (8, CROP, CROP, 3)
    expected = [RED, BLUE, GRAY, MIX, BLUE, RED, MIX, GRAY]  # image-major: crop b * m + j
    for crop, colour in zip(crops, expected):
        np.testing.assert_allclose(crop, np.broadcast_to(colour, crop.shape), atol=1e-3)


def test_add_context_by_hand():
    # 4 px of context at 32: the box spans 24 px, so it grows by 0.5 * 4 / 24 per side.
    got = regions.add_context([[0.25, 0.25, 0.75, 0.75], [0.0, 0.0, 0.5, 0.5]], 32, 4).numpy()
    g = 0.5 * 4 / 24
    np.testing.assert_allclose(got, [[0.25 - g, 0.25 - g, 0.75 + g, 0.75 + g],
                                     [0.0, 0.0, 0.5 + g, 0.5 + g]], atol=1e-6)
    np.testing.assert_array_equal(regions.add_context([[0.1, 0.2, 0.3, 0.4]], 32, 0).numpy(),
                                  np.float32([[0.1, 0.2, 0.3, 0.4]]))
    with pytest.raises(ValueError, match="Received: context_pixels=16"):
        regions.add_context([[0.1, 0.2, 0.3, 0.4]], 32, 16)


def test_crop_with_context_sees_the_neighbours(batch):
    plain = regions.crop_regions(batch["image"][:1], batch["boxes"][:1, :1], CROP).numpy()
    wide = regions.crop_regions(batch["image"][:1], batch["boxes"][:1, :1], CROP,
                                context_pixels=2).numpy()
    grown = regions.add_context(batch["boxes"][:1, :1], CROP, 2)
    same = regions.crop_regions(batch["image"][:1], grown, CROP).numpy()
    np.testing.assert_allclose(wide, same)
    assert plain[0, :, :, 2].max() < 1e-3  # red only
    assert wide[0, :, -1, 2].max() > 50  # the blue neighbour shows at the right edge


# The region graph ---------------------------------------------------------------------------------

def _expected_image0():
    colours = [RED, BLUE, GRAY, MIX]
    whole = tuple(np.mean([RED, BLUE, GRAY, MIX], axis=0))
    probs = np.array([_probs(c) for c in colours + [whole]])
    senti = np.array([_senti(p) for p in probs])
    obj = np.array([1, 3, 5, 4, 2], np.float64)
    obj = (obj - obj.min()) / (obj.max() - obj.min())
    ar = np.sqrt(0.4 * obj ** 2 + 0.6 * senti ** 2)
    return probs, senti, obj, ar


def test_candidate_scores_match_hand_computation(classifier, batch):
    out = _discover(classifier, batch)
    probs, senti, obj, ar = _expected_image0()
    np.testing.assert_allclose(out["candidate_probs"].numpy()[0], probs, atol=1e-5)
    np.testing.assert_allclose(out["senti"].numpy()[0], senti, atol=1e-5)
    np.testing.assert_allclose(out["objectness_norm"].numpy()[0], obj, atol=1e-6)
    np.testing.assert_allclose(out["ar"].numpy()[0], ar, atol=1e-5)
    # Image 1 (quadrants permuted): the crops come from image 1, not image 0.
    np.testing.assert_allclose(out["candidate_probs"].numpy()[1, :2], [_probs(BLUE), _probs(RED)],
                               atol=1e-5)


@pytest.mark.parametrize("selection, expected", [
    # obj: gray (5) > mix (4) > blue (3); senti: red > blue > mix;
    # AR (alpha 0.6): blue 0.744 > red 0.733 > mix 0.723 (see _expected_image0).
    ("obj", [2, 3, 1]), ("senti", [0, 1, 3]), ("ar", [1, 0, 3])])
def test_selection_picks_expected_indices(classifier, batch, selection, expected):
    out = _discover(classifier, batch, selection=selection)
    np.testing.assert_array_equal(out["region_indices"].numpy()[0], expected)
    probs, senti, obj, ar = _expected_image0()
    score = {"obj": obj, "senti": senti, "ar": ar}[selection]
    np.testing.assert_array_equal(np.argsort(-score, kind="stable")[:3], expected)
    np.testing.assert_allclose(out["region_scores"].numpy()[0], score[expected], atol=1e-5)
    np.testing.assert_allclose(out["region_boxes"].numpy()[0], batch["boxes"][0][expected])
    np.testing.assert_allclose(out["region_probs"].numpy()[0], probs[expected], atol=1e-5)
    assert out["region_valid"].numpy()[0].all()


def test_top_k_padding_when_fewer_valid_than_k(classifier, batch):
    out = _discover(classifier, batch, selection="obj")
    # Image 1: two valid slots (objectness 2, 7); slot 2 (objectness 100) is padding.
    np.testing.assert_array_equal(out["region_indices"].numpy()[1], [1, 0, -1])
    np.testing.assert_array_equal(out["region_valid"].numpy()[1], [True, True, False])
    np.testing.assert_allclose(out["region_boxes"].numpy()[1, 2], [0, 0, 1, 1])
    np.testing.assert_allclose(out["region_probs"].numpy()[1, 2], batch["global_probs"][1])
    assert out["region_scores"].numpy()[1, 2] == 0.0
    # Padding candidates are not classified: they carry the whole-image prediction, score 0.
    np.testing.assert_allclose(out["candidate_probs"].numpy()[1, 2:],
                               np.broadcast_to(batch["global_probs"][1], (3, 2)))
    for key in ("senti", "objectness_norm", "ar"):
        np.testing.assert_array_equal(out[key].numpy()[1, 2:], 0.0)


def test_k_larger_than_m(classifier, batch):
    out = _discover(classifier, batch, top_k=7, selection="senti")
    assert out["region_indices"].shape == (2, 7)
    np.testing.assert_array_equal(out["region_indices"].numpy()[0], [0, 1, 3, 4, 2, -1, -1])
    np.testing.assert_allclose(out["region_boxes"].numpy()[0, 5:], [[0, 0, 1, 1]] * 2)
    np.testing.assert_allclose(out["region_probs"].numpy()[0, 5:], [batch["global_probs"][0]] * 2)


def test_no_candidates_at_all(classifier, batch):
    out = regions.discover_regions(
        classifier, batch["image"], batch["boxes"][:, :0], batch["objectness"][:, :0],
        np.zeros(2, np.int32), batch["global_probs"], config=RegionConfig(top_k=2),
        crop_size=CROP)
    np.testing.assert_array_equal(out["region_indices"].numpy(), -1)
    np.testing.assert_allclose(out["region_probs"].numpy(),
                               np.repeat(batch["global_probs"][:, None], 2, axis=1))


@pytest.mark.parametrize("crops_per_call", [1, 3, 1000])
def test_chunked_equals_unchunked(classifier, batch, crops_per_call):
    reference = _discover(classifier, batch, crops_per_call=10)  # every valid crop in one call
    out = _discover(classifier, batch, crops_per_call=crops_per_call)
    _assert_same_outputs(out, reference)


def test_graph_runs_in_tf_function(classifier, batch):
    eager = _discover(classifier, batch, crops_per_call=2)
    cfg = RegionConfig(top_k=3, crops_per_call=2)

    @tf.function
    def run(images, boxes, objectness, num_valid, global_probs):
        return regions.discover_regions(classifier, images, boxes, objectness, num_valid,
                                        global_probs, config=cfg, crop_size=CROP)

    out = run(batch["image"], batch["boxes"], batch["objectness"], batch["num_valid"],
              batch["global_probs"])
    _assert_same_outputs(out, eager)


def test_graph_runs_in_dataset_map(classifier, batch):
    eager = _discover(classifier, batch, crops_per_call=2)
    cfg = RegionConfig(top_k=3, crops_per_call=2)
    # Unbatched examples, batched in the pipeline, regions found inside map.
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(2).map(
        lambda x: regions.discover_regions(classifier, x["image"], x["boxes"], x["objectness"],
                                           x["num_valid"], x["global_probs"], config=cfg,
                                           crop_size=CROP))
    out = next(iter(dataset))
    _assert_same_outputs(out, eager)


def test_authors_formula_and_max_norm_run(classifier, batch):
    out = _discover(classifier, batch, ar_formula="authors", obj_norm="max")
    _, senti, _, _ = _expected_image0()
    obj = np.array([1, 3, 5, 4, 2]) / 5
    senti_mm = (senti - senti.min()) / (senti.max() - senti.min())
    np.testing.assert_allclose(out["ar"].numpy()[0], 0.4 * senti_mm + 0.6 * obj, atol=1e-5)


def test_region_discovery_layer(classifier, batch):
    layer = regions.RegionDiscovery(classifier, top_k=3, crops_per_call=2)
    out = layer(batch)
    reference = _discover(classifier, batch)
    _assert_same_outputs(out, reference)
    # Without global_probs the layer computes them from the whole image.
    inputs = {k: v for k, v in batch.items() if k != "global_probs"}
    out = layer(inputs)
    whole = tuple(np.mean([RED, BLUE, GRAY, MIX], axis=0))
    np.testing.assert_allclose(out["global_probs"].numpy(), [_probs(whole)] * 2, atol=1e-5)
    restored = regions.RegionDiscovery.from_config(layer.get_config())
    assert restored.get_config()["top_k"] == 3 and restored.get_config()["crops_per_call"] == 2
    restored.classifier.set_weights(classifier.get_weights())
    np.testing.assert_array_equal(restored(batch)["region_indices"].numpy(),
                                  reference["region_indices"].numpy())
    from_cfg = regions.RegionDiscovery.from_region_config(
        classifier, RegionConfig(top_k=2, selection="obj"))
    assert from_cfg.get_config()["selection"] == "obj"
    with pytest.raises(ValueError, match="Received: selection='area'"):
        regions.RegionDiscovery(classifier, selection="area")
    with pytest.raises(ValueError, match="Missing: \\['boxes'\\]"):
        layer({k: v for k, v in batch.items() if k != "boxes"})


def test_select_regions_reranks_known_probabilities(classifier, batch):
    # The CNN runs once; every selection is then a re-ranking of the same candidate_probs.
    probs = _discover(classifier, batch)["candidate_probs"]
    for selection in ("ar", "obj", "senti"):
        cfg = RegionConfig(top_k=3, selection=selection)
        direct = _discover(classifier, batch, selection=selection)
        selected = regions.select_regions(probs, batch["objectness"], batch["num_valid"],
                                          batch["boxes"], batch["global_probs"], config=cfg)
        _assert_same_outputs(selected, direct, context=f"{selection}: ")
