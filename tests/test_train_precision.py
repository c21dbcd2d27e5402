"""Mixed precision and XLA in training: finite losses, float32 outputs, float32-loadable weights.

CPUs have no fast float16 convolutions (a full float16 backward pass of VGG16 takes tens of
seconds even at 32 px), so the trained runs here update block5 and the head only
(``trainable_from``); every layer still runs forward under the mixed policy.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from affect_tf import model as model_lib
from affect_tf import train as train_lib
from affect_tf.config import ConfigError, ModelConfig, TrainConfig
from affect_tf.testing import REPO_ROOT, bfloat16_runs_here

IMAGE_SIZE = 32
BATCH = 2
COMPUTE_DTYPES = {"off": "float32", "float16": "float16", "bfloat16": "bfloat16"}


def _model_config(**kwargs) -> ModelConfig:
    return ModelConfig(**{"weights": "none", "head": "gap", "image_size": IMAGE_SIZE, **kwargs})


def _train_config(**kwargs) -> TrainConfig:
    defaults = {"batch_size": BATCH, "steps": 3, "checkpoint_every": 1,
                "log_every": 1, "trainable_from": "block5_conv1"}
    return TrainConfig(**{**defaults, **kwargs})


def _images(count: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (count, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    return images, (np.arange(count) % 2).astype(np.int64)


def _batches() -> tf.data.Dataset:
    """Endless ``(images [2, 32, 32, 3] float32 0-255, labels [2] int64)``, as fit takes them."""
    return tf.data.Dataset.from_tensor_slices(_images()).repeat().batch(BATCH)


@pytest.fixture(scope="module", params=["float16", "bfloat16"])
def trained(request, tmp_path_factory):
    """A 3-step run under a mixed policy with ``jit_compile``: (trainer, summary, directory)."""
    precision = request.param
    if precision == "bfloat16" and not bfloat16_runs_here():
        pytest.skip("this CPU's TensorFlow has no bfloat16 convolution")
    directory = tmp_path_factory.mktemp(f"train-{precision}")
    trainer = train_lib.Trainer(
        _model_config(), _train_config(mixed_precision=precision, jit_compile=True),
        str(directory))
    summary = trainer.fit(_batches(), log=lambda line: None)
    return trainer, summary, directory


def test_defaults_train_in_float32_without_xla(tmp_path):
    config = TrainConfig()
    assert config.mixed_precision == "off" and config.jit_compile is False
    trainer = train_lib.Trainer(_model_config(), _train_config(), str(tmp_path))
    assert trainer.loss_scale_optimizer is None
    assert isinstance(trainer.optimizer, keras.optimizers.SGD)
    assert {layer.compute_dtype for layer in trainer.model.layers} == {"float32"}
    # The float32 checkpoint layout: model, optimizer, step and the dropout layers' random state
    # (so a resumed run draws the masks an uninterrupted one draws), nothing more.
    assert _checkpoint_roots(trainer.manager.save()) == {
        "model", "optimizer", "step", "seed_generators"}


def _checkpoint_roots(prefix: str) -> set[str]:
    """The top-level entries of a checkpoint, without TensorFlow's own bookkeeping."""
    names = {name.split("/")[0] for name, _ in tf.train.list_variables(prefix)}
    return names - {"_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter"}


def test_trainer_trains_finite_under_mixed_policy_with_xla(trained):
    trainer, summary, _ = trained
    precision = trainer.config.mixed_precision
    assert summary["steps_run"] == 3 and np.isfinite(summary["loss"])
    model = trainer.model
    assert model.get_layer("block1_conv1").compute_dtype == COMPUTE_DTYPES[precision]
    # The logits layer and the output stay float32 under the mixed policy.
    assert model.get_layer(model_lib.LOGITS_LAYER).compute_dtype == "float32"
    assert model(_images(2)[0]).dtype == "float32"
    assert {variable.dtype for variable in model.weights} == {"float32"}
    # Built under the policy, then the process-wide policy is float32 again.
    assert keras.mixed_precision.global_policy().name == "float32"
    # At least one SGD update happened (float16 skips a step whose scaled gradients overflow).
    assert int(trainer.optimizer.iterations.numpy()) >= 1


def test_saved_classifier_loads_into_the_float32_evaluation(trained):
    trainer, _, directory = trained
    classifier = train_lib.load_classifier(_model_config(), str(directory))
    assert {layer.compute_dtype for layer in classifier.layers} == {"float32"}
    assert {variable.dtype for variable in classifier.weights} == {"float32"}
    for loaded, trained_variable in zip(classifier.weights, trainer.model.weights):
        assert loaded.path == trained_variable.path
        np.testing.assert_array_equal(loaded.numpy(), trained_variable.numpy())
    images = _images(4)[0]
    low = trainer.model(images, training=False).numpy()
    full = classifier(images, training=False).numpy()
    assert np.all(np.isfinite(full))
    # float16 / bfloat16 compute against float32 compute of the same weights.
    np.testing.assert_allclose(low, full, atol=0.1 * (np.abs(full).max() + 1))


def test_mixed_precision_checkpoint_restores_in_both_precisions(trained):
    trainer, _, directory = trained
    precision = trainer.config.mixed_precision
    plain = train_lib.Trainer(_model_config(), _train_config(), str(directory))
    assert plain.restore() == 3
    for restored, saved in zip(plain.model.weights, trainer.model.weights):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy())
    assert int(plain.optimizer.iterations.numpy()) == int(trainer.optimizer.iterations.numpy())
    again = train_lib.Trainer(
        _model_config(), _train_config(mixed_precision=precision), str(directory))
    assert again.restore() == 3
    extra = {"loss_scale"} if precision == "float16" else set()
    assert _checkpoint_roots(again.manager.latest_checkpoint) == {
        "model", "optimizer", "step", "seed_generators"} | extra
    if precision == "float16":
        assert float(again.loss_scale_optimizer.dynamic_scale.numpy()) == float(
            trainer.loss_scale_optimizer.dynamic_scale.numpy())


def test_float16_weight_decay_survives_loss_scaling(tmp_path):
    """With decay dominating the gradient, one float16 step moves the kernels as float32 does.

    The loss-scale optimizer divides what it receives by the scale (2^15 at first); a decay term
    not multiplied by the scale beforehand would shrink 32768-fold and the updates would differ.
    """
    updates = {}
    for precision in ("off", "float16"):
        trainer = train_lib.Trainer(
            _model_config(dropout=0.0),
            _train_config(mixed_precision=precision, weight_decay=10.0,
                          trainable_from="block5_conv3"),
            str(tmp_path / precision))
        if trainer.loss_scale_optimizer is not None:
            # A scale whose scaled gradients fit float16, so the first step is not skipped.
            trainer.loss_scale_optimizer.dynamic_scale.assign(128.0)
        step = trainer.step_function()
        kernels = [v for v in trainer.model.trainable_variables if v.path.endswith("kernel")]
        before = [kernel.numpy() for kernel in kernels]
        images, labels = next(iter(_batches()))
        loss, _ = step(images, labels)
        assert np.isfinite(float(loss))
        updates[precision] = {kernel.path: kernel.numpy() - start
                              for kernel, start in zip(kernels, before)}
    assert updates["off"].keys() == updates["float16"].keys()
    for path, reference in updates["off"].items():
        assert np.abs(reference).max() > 0, path
        error = np.linalg.norm(updates["float16"][path] - reference) / np.linalg.norm(reference)
        assert error < 0.05, f"{path}: relative difference {error:.3g} of the float16 update"


def test_unknown_precision_names_what_was_received():
    with pytest.raises(ConfigError, match="Received: mixed_precision='half'"):
        TrainConfig(mixed_precision="half").validate()
    with pytest.raises(ValueError, match="Received: mixed_precision='half'"):
        with train_lib.dtype_policy("half"):
            pass


@pytest.mark.slow
def test_benchmark_runs_on_cpu_with_tiny_settings():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_train_gpu.py"),
         "--image_size", "32", "--resize_size", "40", "--batch_size", "2", "--steps", "2",
         "--warmup", "1", "--images", "8"],
        capture_output=True, text=True, timeout=600, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "No GPU visible" in out
    for label in ("float32", "mixed bfloat16", "mixed bfloat16 + XLA"):
        assert any(line.startswith(label + " ") for line in out.splitlines()), out
    assert ">= 2x float32 images/s" in out and "input wait < 5 %" in out
