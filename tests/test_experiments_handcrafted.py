"""The hand-crafted baselines: descriptor shapes and normalization, sanity and invariance checks,
encoders, toy sets a descriptor must separate perfectly, the pool, and bad input."""

import numpy as np
import pytest

from affect_tf.experiments import handcrafted as hc
from affect_tf.experiments import handcrafted_eval as he

GLOBAL_DIMS = {"gch": 64, "lch": 1024, "lbp": 59, "gabor": 64, "gist": 512}
# Descriptors that are histograms: non-negative, summing to 1.
HISTOGRAMS = ("gch", "lch", "lbp")
LOCAL_FUNCTIONS = {"sift": (hc.sift_descriptors, 128), "dsift": (hc.dense_sift_descriptors, 128),
                   "hog": (hc.hog_descriptors, 36)}


def noise_image(seed, shape=(48, 64), low=0, high=256):
    return np.random.default_rng(seed).integers(low, high, (*shape, 3), dtype=np.uint8)


def stripes(shape=(64, 64), period=4, vertical=True, low=100, high=156, phase=0):
    """Binary stripes, half a period dark and half light, varying along x if ``vertical``."""
    axis = np.arange(shape[1] if vertical else shape[0])
    line = np.where((axis + phase) % period < period // 2, low, high).astype(np.uint8)
    grey = np.broadcast_to(line[None, :] if vertical else line[:, None], shape)
    return np.repeat(grey[..., None], 3, axis=2).copy()


def scene(seed, shape=(96, 128)):
    """A textured image with corners and blobs, where SIFT finds keypoints."""
    rng = np.random.default_rng(seed)
    image = np.full((*shape, 3), 90, np.uint8)
    for _ in range(12):
        y, x = rng.integers(0, shape[0] - 16), rng.integers(0, shape[1] - 16)
        h, w = rng.integers(6, 16, size=2)
        image[y:y + h, x:x + w] = rng.integers(0, 256, 3)
    return image


# --- global descriptors ------------------------------------------------------------------------

@pytest.mark.parametrize("name", GLOBAL_DIMS)
@pytest.mark.parametrize("shape", [(48, 64), (16, 16), (17, 40)])
def test_global_descriptor_shape_and_normalization(name, shape):
    baseline = hc.get_baseline(name)
    vector = baseline.describe(noise_image(1, shape))
    assert not baseline.local and baseline.dim == GLOBAL_DIMS[name]
    assert vector.shape == (GLOBAL_DIMS[name],) and vector.dtype == np.float32
    assert np.all(np.isfinite(vector)) and np.all(vector >= 0)
    if name in HISTOGRAMS:
        assert vector.sum() == pytest.approx(1.0, abs=1e-5)


def test_gch_counts_the_quantized_colours():
    image = np.zeros((16, 32, 3), np.uint8)
    image[:, :16] = (255, 0, 0)  # level (3, 0, 0): bin 48
    image[:, 16:] = (70, 130, 200)  # levels (1, 2, 3): bin 16 + 8 + 3 = 27
    vector = hc.gch(image)
    assert vector[48] == vector[27] == pytest.approx(0.5)
    assert np.count_nonzero(vector) == 2


def test_gch_ignores_the_layout_lch_keeps_it():
    image = noise_image(2, (32, 48))
    for moved in (np.rot90(image), image[:, ::-1], image[::-1]):
        np.testing.assert_array_equal(hc.gch(np.ascontiguousarray(moved)), hc.gch(image))
    # A mirror (width divisible by 4) mirrors the grid of LCH's blocks, column by column.
    blocks = hc.lch(image).reshape(4, 4, 64)
    np.testing.assert_allclose(hc.lch(np.ascontiguousarray(image[:, ::-1])).reshape(4, 4, 64),
                               blocks[:, ::-1], atol=1e-7)
    assert not np.allclose(hc.lch(np.ascontiguousarray(image[:, ::-1])), hc.lch(image))


def test_lbp_uniform_table_and_known_patterns():
    assert int((hc._UNIFORM_BIN < 58).sum()) == 58
    # A flat image: every neighbour >= the centre, code 255, one uniform bin.
    flat = hc.lbp(np.full((16, 16, 3), 77, np.uint8))
    assert flat.max() == pytest.approx(1.0) and flat[58] == 0
    # A checkerboard: around a light pixel the dark 4-neighbours alternate with the light
    # diagonals (8 transitions, non-uniform); around a dark one all are >= it (code 255).
    board = ((np.indices((20, 20)).sum(axis=0) % 2) * 255).astype(np.uint8)
    histogram = hc.lbp(np.repeat(board[..., None], 3, axis=2))
    assert histogram[58] == pytest.approx(0.5)
    assert histogram[hc._UNIFORM_BIN[255]] == pytest.approx(0.5)
    assert np.argmax(flat) == hc._UNIFORM_BIN[255]


def test_lbp_is_invariant_to_brightness_and_permuted_by_rotation():
    image = noise_image(3, (40, 56), high=200)
    np.testing.assert_array_equal(hc.lbp(image + np.uint8(40)), hc.lbp(image))
    # A quarter turn rotates every ring by two positions: uniform codes stay uniform, so the
    # histogram is a permutation of the original's.
    np.testing.assert_allclose(np.sort(hc.lbp(np.ascontiguousarray(np.rot90(image)))),
                               np.sort(hc.lbp(image)), atol=1e-7)


def test_gabor_is_zero_on_a_flat_image_and_finds_the_stripes_orientation():
    np.testing.assert_allclose(hc.gabor(np.full((32, 32, 3), 200, np.uint8)), 0, atol=1e-5)
    finest_means = {vertical: hc.gabor(stripes(vertical=vertical)).reshape(4, 8, 2)[0, :, 0]
                    for vertical in (True, False)}
    assert np.argmax(finest_means[True]) == 0  # theta = 0: the kernel varies along x
    assert np.argmax(finest_means[False]) == 4  # theta = 90 degrees


def test_gist_finds_the_stripes_orientation_and_ignores_brightness_gain():
    energy = {vertical: hc.gist(stripes(vertical=vertical)).reshape(4, 8, 16).mean(axis=2)
              for vertical in (True, False)}
    assert np.argmax(energy[True][0]) == 0 and np.argmax(energy[False][0]) == 4
    # The prefilter normalizes the log image's local contrast: a brighter copy of a scene
    # changes GIST far less than another scene does.
    image = noise_image(4, (64, 64), low=20, high=120)
    base, bright, other = hc.gist(image), hc.gist(image * np.uint8(2)), hc.gist(noise_image(5))
    assert np.linalg.norm(bright - base) < 0.2 * np.linalg.norm(other - base)


# --- local descriptors -------------------------------------------------------------------------

@pytest.mark.parametrize("name", LOCAL_FUNCTIONS)
def test_local_descriptors_have_unit_rows(name):
    function, dim = LOCAL_FUNCTIONS[name]
    descriptors = function(scene(6))
    assert descriptors.ndim == 2 and descriptors.shape[1] == dim and len(descriptors) > 0
    assert descriptors.dtype == np.float32
    norms = np.linalg.norm(descriptors, axis=1)
    assert np.all((np.abs(norms - 1) < 1e-4) | (norms == 0))


def test_grid_descriptor_counts():
    image = noise_image(7, (256, 256))
    assert hc.dense_sift_descriptors(image).shape == (31 * 31, 128)
    assert hc.hog_descriptors(image).shape == (31 * 31, 36)
    # Sides not divisible by 8: HOG takes the centre crop, 64 x 96 -> 7 x 11 blocks.
    assert hc.hog_descriptors(noise_image(7, (70, 100))).shape == (7 * 11, 36)
    assert hc.dense_sift_descriptors(noise_image(7, (16, 16))).shape == (1, 128)


def test_a_flat_image_has_no_sift_keypoints_and_encodes_to_zeros():
    flat = np.full((64, 64, 3), 128, np.uint8)
    assert hc.sift_descriptors(flat).shape == (0, 128)
    encoder = hc.Encoder("vlad", np.random.default_rng(0).normal(size=(4, 128)))
    np.testing.assert_array_equal(encoder.encode(hc.sift_descriptors(flat)), 0)


def test_prepare_bounds_the_longer_side_and_never_enlarges():
    assert hc.prepare(noise_image(8, (1000, 500))).shape == (256, 128, 3)
    assert hc.prepare(noise_image(8, (2000, 40))).shape == (256, 16, 3)  # short side kept >= 16
    small = noise_image(8, (100, 200))
    assert hc.prepare(small) is small


# --- encoders ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def descriptor_sample():
    rng = np.random.default_rng(9)
    return rng.normal(size=(400, 8)) + np.repeat(rng.normal(scale=4, size=(4, 8)), 100, axis=0)


@pytest.mark.parametrize("kind,dim", [("bow", 4), ("vlad", 32), ("fv", 64)])
def test_encoder_shapes_norms_and_seeding(descriptor_sample, kind, dim):
    encoder = hc.fit_encoder(kind, descriptor_sample, size=4, seed=0)
    assert encoder.dim == dim and encoder.size == 4
    vector = encoder.encode(descriptor_sample[:50])
    assert vector.shape == (dim,) and vector.dtype == np.float32
    norm = vector.sum() if kind == "bow" else np.linalg.norm(vector)
    assert norm == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(encoder.encode(np.zeros((0, 8))), np.zeros(dim))
    again = hc.fit_encoder(kind, descriptor_sample, size=4, seed=0)
    np.testing.assert_array_equal(again.means, encoder.means)


def test_fisher_vector_of_the_means_is_finite(descriptor_sample):
    encoder = hc.fit_encoder("fv", descriptor_sample, size=4, seed=0)
    vector = encoder.encode(encoder.means)
    assert np.all(np.isfinite(vector)) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    # Far from every component the posteriors are computed in the log domain, not 0 / 0.
    assert np.all(np.isfinite(encoder.encode(np.full((3, 8), 1e3))))


def test_vlad_is_zero_on_the_centres_and_bow_counts_them():
    centres = np.eye(3)
    np.testing.assert_array_equal(hc.vlad_encode(centres, centres), 0)
    np.testing.assert_allclose(hc.bow_encode(centres[[0, 0, 2, 2]] + 0.01, centres),
                               [0.5, 0, 0.5])


def test_encoders_refuse_mismatched_descriptors(descriptor_sample):
    encoder = hc.fit_encoder("bow", descriptor_sample, size=4, seed=0)
    with pytest.raises(ValueError, match=r"\[n, 8\]. Received: shape=\(5, 7\)"):
        encoder.encode(np.zeros((5, 7)))
    with pytest.raises(ValueError, match="at least 500 descriptors"):
        hc.fit_encoder("bow", descriptor_sample, size=500)
    with pytest.raises(ValueError, match="kind='pca'"):
        hc.fit_encoder("pca", descriptor_sample)


# --- toy sets, end to end ----------------------------------------------------------------------

def colour_set():
    """40 noise images, reddish or bluish, alternating labels."""
    rng = np.random.default_rng(10)
    images, labels = [], []
    for index in range(40):
        image = rng.integers(0, 110, (32, 32, 3), dtype=np.uint8)
        channel = 0 if index % 2 else 2  # label 1: red, label 0: blue
        image[..., channel] = rng.integers(140, 256, (32, 32), dtype=np.uint8)
        images.append(image)
        labels.append(index % 2)
    return images, np.array(labels)


def texture_set():
    """40 grey images of mean 128: stripes of random period and orientation (label 1) or
    low-amplitude noise (label 0)."""
    rng = np.random.default_rng(11)
    images, labels = [], []
    for index in range(40):
        if index % 2:
            image = stripes((48, 48), period=int(rng.choice([4, 6, 8])),
                            vertical=bool(rng.integers(2)), phase=int(rng.integers(8)))
        else:
            grey = rng.integers(100, 157, (48, 48), dtype=np.uint8)
            image = np.repeat(grey[..., None], 3, axis=2)
        images.append(image)
        labels.append(index % 2)
    return images, np.array(labels)


def test_gch_separates_a_colour_set_perfectly():
    images, labels = colour_set()
    features = he.extract_features(images, "gch", workers=2)
    assert features.shape == (40, 64)
    assert he.fit_and_score(features[:20], labels[:20], features[20:], labels[20:]) == 1.0


def test_lbp_separates_a_texture_set_perfectly():
    images, labels = texture_set()
    assert np.mean([image.mean() for image in images[1::2]]) == pytest.approx(128, abs=1)
    features = he.extract_features(images, "lbp", workers=2)
    assert he.fit_and_score(features[:20], labels[:20], features[20:], labels[20:]) == 1.0


@pytest.mark.parametrize("name", [name for name, entry in hc.REGISTRY.items() if entry.local])
def test_every_local_baseline_end_to_end(name):
    images = [scene(seed, (48, 64)) for seed in range(8)]
    train, test = he.baseline_features(name, images[:6], images[6:], size=4,
                                       max_descriptors=300, seed=0, workers=2)
    baseline = hc.get_baseline(name)
    dim = {"bow": 4, "vlad": 4 * baseline.dim, "fv": 8 * baseline.dim}[baseline.encoding]
    assert train.shape == (6, dim) and test.shape == (2, dim)
    assert train.dtype == np.float32 and np.all(np.isfinite(train)) and np.all(np.isfinite(test))


def test_the_pool_keeps_order_and_the_sample_ignores_the_worker_count():
    images = [scene(seed, (40, 40)) for seed in range(10)]
    serial = he.extract_features(images, "gist", workers=1)
    np.testing.assert_array_equal(he.extract_features(iter(images), "gist", workers=3), serial)
    encoders = [he.fit_descriptor_encoder(images, "hog_vlad", size=4, max_descriptors=100,
                                          seed=1, workers=workers) for workers in (1, 2)]
    np.testing.assert_array_equal(encoders[0].means, encoders[1].means)


def _sampling_rule(sets, max_descriptors, seed):
    """The encoder's sample as documented, written out: per image at most
    ceil(max_descriptors / N) rows drawn by a generator seeded by (seed, image index), pooled,
    then cut to max_descriptors with seed; rows keep their order."""
    share = -(-max_descriptors // len(sets))
    samples = []
    for index, rows in enumerate(sets):
        if len(rows) > share:
            rows = rows[np.sort(np.random.default_rng([seed, index]).choice(len(rows), share,
                                                                             replace=False))]
        samples.append(rows)
    pooled = np.concatenate(samples)
    if len(pooled) > max_descriptors:
        pooled = pooled[np.sort(np.random.default_rng(seed).choice(len(pooled), max_descriptors,
                                                                   replace=False))]
    return pooled


def test_the_sample_of_cached_descriptors_follows_the_rule_for_any_worker_count():
    images = [scene(seed, (40 + 8 * (seed % 3), 48)) for seed in range(7)]
    described = {workers: list(he.describe_local(images, "hog", workers=workers))
                 for workers in (1, 2, 3)}
    sets = described[1]
    assert all(values.dtype == np.float16 and values.shape[1] == 36 for values in sets)
    for other in (described[2], described[3]):
        assert all(np.array_equal(a, b) for a, b in zip(sets, other))
    ragged = he.DescriptorSets(np.concatenate(sets), [len(values) for values in sets])
    assert len(ragged) == 7 and all(np.array_equal(ragged[i], sets[i]) for i in range(7))
    np.testing.assert_array_equal(ragged[-1], sets[-1])
    # 7 images of 20-30 rows: a share of ceil(100 / 7) = 15 each, then the cut to 100.
    sample = he.sample_descriptors(ragged, max_descriptors=100, seed=3)
    assert sample.shape == (100, 36) and sample.dtype == np.float16
    np.testing.assert_array_equal(sample, _sampling_rule(sets, 100, 3))
    np.testing.assert_array_equal(he.sample_descriptors(sets, max_descriptors=100, seed=3),
                                  sample)
    assert not np.array_equal(he.sample_descriptors(sets, max_descriptors=100, seed=4), sample)
    # Everything fits under a large bound: every row, in order.
    np.testing.assert_array_equal(he.sample_descriptors(ragged, max_descriptors=10_000),
                                  ragged.values)
    # The encoder fitted on the cached sets is the one fitted on the images, for any workers,
    # and encoding the cached sets gives the images' features.
    encoder = he.fit_encoder_from_descriptors(ragged, "hog_vlad", size=4, max_descriptors=100,
                                              seed=3)
    for workers in (1, 2):
        direct = he.fit_descriptor_encoder(images, "hog_vlad", size=4, max_descriptors=100,
                                           seed=3, workers=workers)
        np.testing.assert_array_equal(direct.means, encoder.means)
    np.testing.assert_array_equal(he.encode_descriptors(ragged, encoder, workers=2),
                                  he.extract_features(images, "hog_vlad", encoder=encoder))


def test_cached_descriptor_sets_refuse_what_does_not_add_up():
    values = np.zeros((5, 36), np.float16)
    with pytest.raises(ValueError, match="sum to the 5 rows of values. Received: counts "
                                         "summing to 4"):
        he.DescriptorSets(values, [2, 2])
    with pytest.raises(ValueError, match=r"Received: values.shape=\(5,\)"):
        he.DescriptorSets(np.zeros(5), [5])
    with pytest.raises(IndexError, match="image 2 of 2"):
        he.DescriptorSets(values, [2, 3])[2]
    with pytest.raises(ValueError, match=r"Received: 0 images, max_descriptors=10"):
        he.sample_descriptors([], max_descriptors=10)
    with pytest.raises(ValueError, match=r"36-d descriptors. Received: sample of shape"):
        he.fit_encoder_from_descriptors([np.zeros((8, 128), np.float16)], "hog_bow", size=2)
    with pytest.raises(ValueError, match="gch is a global descriptor"):
        he.fit_encoder_from_descriptors([values], "gch")
    with pytest.raises(ValueError, match="Received: kind='hog_bow'"):
        he.describe_local([], "hog_bow")
    encoder = hc.fit_encoder("bow", np.eye(36), size=2)
    with pytest.raises(ValueError, match="0 sets"):
        he.encode_descriptors([], encoder)


def test_workers_decode_the_items_and_the_svm_gives_its_labels():
    from affect_tf.io import decode_image_bytes, encode_png

    images = [scene(seed, (40, 48)) for seed in range(6)]
    encoded = [encode_png(image) for image in images]
    for name in ("gist", "hog_bow"):
        decoded = he.baseline_features(name, encoded[:4], encoded[4:], size=4, workers=2,
                                       decode=decode_image_bytes)
        direct = he.baseline_features(name, images[:4], images[4:], size=4, workers=2)
        for got, expected in zip(decoded, direct):
            np.testing.assert_array_equal(got, expected)
    images, labels = colour_set()
    features = he.extract_features(images, "gch", workers=2)
    predicted = he.fit_and_predict(features[:20], labels[:20], features[20:])
    np.testing.assert_array_equal(predicted, labels[20:])


def test_a_process_pool_gives_the_threads_result():
    images, _ = colour_set()
    np.testing.assert_array_equal(he.extract_features(images[:6], "lch", workers=2,
                                                      pool="process"),
                                  he.extract_features(images[:6], "lch", workers=1))


# --- the registry and bad input ----------------------------------------------------------------

def test_registry_names_and_what_is_not_built():
    local = [f"{d}_{e}" for d in ("sift", "dsift", "hog") for e in ("bow", "vlad", "fv")]
    assert list(hc.REGISTRY) == [*GLOBAL_DIMS, *local]
    assert hc.get_baseline("hog_fv").title == "HOG + Fisher vector"
    assert set(hc.NOT_BUILT) == {"ColorName + BoW", "PAEF", "SentiBank", "DeepSentiBank"}
    with pytest.raises(ValueError, match="SentiBank is not built here"):
        hc.get_baseline("sentibank")
    with pytest.raises(ValueError, match="known: gch, lch"):
        hc.get_baseline("surf_bow")


BAD_IMAGES = [
    (np.zeros((32, 32), np.uint8), r"a grey image.*shape=\(32, 32\)"),
    (np.zeros((32, 32, 4), np.uint8), r"shape=\(32, 32, 4\)"),
    (np.zeros((32, 32, 3), np.float32), "dtype=float32"),
    (np.zeros((8, 32, 3), np.uint8), r">= 16 px. Received: shape=\(8, 32, 3\)"),
    ([[0, 0, 0]], "Received: list"),
]
DESCRIBERS = [hc.prepare, hc.gch, hc.lch, hc.lbp, hc.gabor, hc.gist, hc.sift_descriptors,
              hc.dense_sift_descriptors, hc.hog_descriptors]


@pytest.mark.parametrize("image,message", BAD_IMAGES)
@pytest.mark.parametrize("function", DESCRIBERS, ids=lambda fn: fn.__name__)
def test_bad_images_are_refused_naming_what_was_received(function, image, message):
    with pytest.raises(ValueError, match=message):
        function(image)


def test_extraction_and_scoring_refuse_bad_arguments():
    images, _ = colour_set()
    with pytest.raises(ValueError, match="needs an encoder fitted on the training part"):
        he.extract_features(images[:2], "sift_bow")
    with pytest.raises(ValueError, match="0 images"):
        he.extract_features([], "gch")
    with pytest.raises(ValueError, match="not a one-shot iterator"):
        he.baseline_features("hog_bow", iter(images), images)
    with pytest.raises(ValueError, match="pool='fork'"):
        he.extract_features(images[:2], "gch", workers=2, pool="fork")
    features = np.ones((4, 3))
    with pytest.raises(ValueError, match=r"two classes. Received: label values \[1\]"):
        he.fit_and_score(features, np.ones(4, int), features, np.ones(4, int))
    with pytest.raises(ValueError, match=r"D = 3. Received: test_features.shape=\(4, 2\)"):
        he.fit_and_score(features, [0, 1, 0, 1], np.ones((4, 2)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="c must be > 0"):
        he.fit_and_score(features, [0, 1, 0, 1], features, [0, 1, 0, 1], c=0)
