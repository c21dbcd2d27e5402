"""HED's VGG16 blocks in bfloat16 (ProposalConfig.hed_precision; proposals/edges.py).

Tolerances, on the raw edge maps (probabilities in [0, 1]) of two scikit-image photos at the
proposal stage's size (longer side 500 px), against the float32 network. Measured on this
machine (AVX512_BF16) over astronaut, chelsea, coffee, motorcycle_left and rocket
(benchmarks/bench_hed.py): blocks 3-5 in bfloat16 (``bfloat16``) moved pixels by at most 0.0017
and 0.00016 on average; all five blocks (``bfloat16_all``) by at most 0.0143 and 0.00098 on
average. The bounds are about 3x those: bfloat16 rounds each weight and activation to 8
significant bits, and another CPU's kernels may round and sum in another order.
"""

import types

import numpy as np
import pytest

from affect_tf.config import ConfigError, ProposalConfig
from affect_tf.proposals import cache as cache_lib
from affect_tf.proposals import edges as edges_lib
from affect_tf.proposals import pipeline
from affect_tf.testing import bfloat16_runs_here

# (max |difference|, mean |difference|) allowed per precision. Measured max for bfloat16: 0.0017
# (TensorFlow 2.20-era install), 0.0056 on chelsea with TensorFlow 2.21.0: oneDNN's kernels move it.
TOLERANCES = {"bfloat16": (0.01, 0.0005), "bfloat16_all": (0.04, 0.003)}
PHOTOS = ("chelsea", "coffee")

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu vme sse avx2 avx512f avx512_bf16 avx512_vnni
"""


def test_cpu_bfloat16_flags_are_read_from_cpuinfo():
    assert edges_lib.cpu_has_bfloat16(CPUINFO)
    assert edges_lib.cpu_has_bfloat16(CPUINFO.replace("avx512_bf16", "amx_bf16 amx_tile"))
    assert not edges_lib.cpu_has_bfloat16(CPUINFO.replace("avx512_bf16", "avx512bw"))
    assert not edges_lib.cpu_has_bfloat16("Processor\t: AArch64\nFeatures\t: fp asimd\n")
    assert isinstance(edges_lib.cpu_has_bfloat16(), bool)  # This machine's, whatever it is.


@pytest.mark.parametrize("gpu, cpu_bfloat16, expected", [
    (False, False, "float32"), (False, True, "bfloat16"), (True, False, "bfloat16")])
def test_auto_is_bfloat16_where_the_hardware_computes_it(gpu, cpu_bfloat16, expected):
    assert edges_lib.resolve_hed_precision("auto", gpu=gpu, cpu_bfloat16=cpu_bfloat16) == expected
    for precision in edges_lib.HED_BFLOAT16_BLOCKS:
        assert edges_lib.resolve_hed_precision(
            precision, gpu=gpu, cpu_bfloat16=cpu_bfloat16) == precision


def test_onednn_is_read_as_tensorflow_reads_it():
    assert edges_lib.onednn_from_environment(None)
    for on in ("1", "true", "True", " 1 "):
        assert edges_lib.onednn_from_environment(on)
    for off in ("0", "false", "FALSE", " 0"):
        assert not edges_lib.onednn_from_environment(off)
    assert isinstance(edges_lib.tensorflow_uses_onednn(), bool)  # This process's, whatever it is.


@pytest.mark.parametrize("onednn, expected", [(True, "bfloat16"), (False, "float32")])
def test_auto_is_float32_on_a_bfloat16_cpu_without_onednn(monkeypatch, onednn, expected):
    # Without oneDNN TensorFlow's bfloat16 convolutions are slower than its float32 ones.
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    if tf.config.list_logical_devices("GPU"):
        pytest.skip("auto is bfloat16 on a GPU, whatever the CPU")
    monkeypatch.setattr(edges_lib, "cpu_has_bfloat16", lambda: True)
    monkeypatch.setattr(edges_lib, "tensorflow_uses_onednn", lambda: onednn)
    assert edges_lib.hed_precision_here("auto") == expected
    assert edges_lib.hed_precision_here("bfloat16_all") == "bfloat16_all"


def test_unknown_precision_names_what_was_received():
    with pytest.raises(ValueError, match="Received: hed_precision='half'"):
        edges_lib.HEDEdgeDetector(precision="half")
    with pytest.raises(ConfigError, match="Received: hed_precision='half'"):
        ProposalConfig(hed_precision="half").validate()


def test_the_setting_reaches_the_detector_and_the_cache_fingerprint():
    config = ProposalConfig(edge_source="hed", hed_precision="float32")
    assert ProposalConfig().hed_precision == "auto"
    assert edges_lib.make_edge_detector(config).precision == "float32"
    fingerprints = {cache_lib.proposal_fingerprint(ProposalConfig(hed_precision=precision))
                    for precision in ("auto", *edges_lib.HED_BFLOAT16_BLOCKS)}
    assert len(fingerprints) == 4, "the precision changes the proposals: it keys the cache"


def test_a_model_of_another_layout_is_refused():
    import keras

    model = types.SimpleNamespace(block1=keras.Sequential([keras.layers.Dense(2, name="odd")]))
    with pytest.raises(ValueError, match=r"Received: block1 layer odd \(Dense\)"):
        edges_lib.hed_network(model, "float32")
    with pytest.raises(ValueError, match="Received: precision='float16'"):
        edges_lib.hed_network(model, "float16")


@pytest.fixture(scope="module")
def float32_detector():
    return edges_lib.HEDEdgeDetector(precision="float32")


def test_the_float32_graph_is_the_models_own_call(float32_detector):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)
    batch = edges_lib.hed_input(image)[None]
    graph = float32_detector.edge_probabilities(image)
    assert float32_detector.compute_precision == "float32"
    own = np.asarray(float32_detector._load()(batch, training=False))[0, :48, :80, 0]
    np.testing.assert_allclose(graph, own, rtol=0, atol=1e-5)


@pytest.mark.parametrize("precision", list(TOLERANCES))
def test_bfloat16_edge_maps_agree_with_float32_on_photos(precision, float32_detector):
    data = pytest.importorskip("skimage.data")
    if not bfloat16_runs_here():
        pytest.skip("this CPU's TensorFlow has no bfloat16 convolution")
    detector = edges_lib.HEDEdgeDetector(precision=precision)
    max_tolerance, mean_tolerance = TOLERANCES[precision]
    for name in PHOTOS:
        image = pipeline.resize_for_proposals(getattr(data, name)(), 500)
        full = float32_detector.edge_probabilities(image)
        low = detector.edge_probabilities(image)
        assert detector.compute_precision == precision
        assert low.shape == full.shape and low.dtype == np.float32
        difference = np.abs(low - full)
        assert 0 < difference.max() <= max_tolerance, (name, difference.max())
        assert difference.mean() <= mean_tolerance, (name, difference.mean())
