"""Fine-tuning the VGG16 classifier on whole images (Section 3.2, Eqs. 2-3; Section 4.2).

SGD with momentum and per-layer learning rates as in the paper and the authors' Caffe setup:
pretrained layers at ``conv_learning_rate`` (0.001), the new last layer at ``head_learning_rate``
(0.01), L2 weight decay added to the gradient of every kernel. A per-variable learning rate is
implemented by scaling that variable's gradient by ``head / conv`` before a single SGD optimizer:
with momentum SGD the update is linear in the gradient, so this equals Caffe's ``lr_mult``.

Checkpoints are written every ``checkpoint_every`` steps; a killed run resumes from the last one.
Training runs under ``tf.distribute`` (``TrainConfig.distribution``): by default MirroredStrategy
when several GPUs are visible, or MultiWorkerMirroredStrategy across machines. The batch size is
the global one; each replica's loss is divided by it, the optimizer sums the replicas' gradients,
and batch normalization is synchronized across replicas, so N replicas train the weights one
device does up to float rounding (tests/test_train_distribute.py).

Speed on a GPU (``benchmarks/bench_train_gpu.py``): ``mixed_precision`` builds the classifier under
Keras' ``mixed_float16`` or ``mixed_bfloat16`` policy (float16 / bfloat16 compute, float32
variables, float32 logits), with dynamic loss scaling for float16; ``jit_compile`` compiles the
training step with XLA. Neither changes what is saved: the classifier's variables are float32
under every policy, so the float32 evaluation loads them, and the checkpoint keeps the float32
layout (the loss scale is an extra entry).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pathlib
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from affect_tf import io as io_lib
from affect_tf import model as model_lib
from affect_tf.config import DISTRIBUTIONS, ModelConfig, TrainConfig
from affect_tf.errors import MissingStageError, RunError

CLASSIFIER_FILE = "classifier.weights.h5"

# TrainConfig.mixed_precision -> the Keras dtype policy the classifier is built under.
DTYPE_POLICIES = {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


@contextlib.contextmanager
def dtype_policy(mixed_precision: str):
    """Keras' global dtype policy set for ``mixed_precision`` inside the block, restored after.

    A layer keeps the policy it was built under, so the block only needs to cover building;
    restoring it keeps whatever is built later in the process (the evaluation's classifier, the
    region graph) float32.

    Args:
        mixed_precision: a ``TrainConfig.mixed_precision`` value: ``off``, ``float16``,
            ``bfloat16``.

    Raises:
        ValueError: ``mixed_precision`` is none of those.
    """
    if mixed_precision not in DTYPE_POLICIES:
        raise ValueError(f"mixed_precision must be one of {', '.join(DTYPE_POLICIES)}. "
                         f"Received: mixed_precision={mixed_precision!r}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(DTYPE_POLICIES[mixed_precision])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


class DistributionError(RunError, ValueError):
    """``distribution=multi_worker`` cannot start or resume: no ``TF_CONFIG``, the strategy asked
    for after TensorFlow's first op, or workers that restored different steps."""


def distribution_strategy(distribution: str = "auto") -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy that ``TrainConfig.distribution`` names.

    Args:
        distribution: ``auto``: MirroredStrategy over every GPU when there are several, else the
            default strategy (one device); ``one_device``: OneDeviceStrategy on the first GPU, or
            the CPU; ``mirrored``: MirroredStrategy over every GPU, or over every logical CPU
            device when there is no GPU (tests split the CPU in two); ``multi_worker``:
            MultiWorkerMirroredStrategy over the cluster of the ``TF_CONFIG`` environment
            variable, every GPU (or the CPU) of each worker. TensorFlow accepts it only before
            its first op, so the program makes it at start-up (``affect_tf.main``) and later calls
            return that one.

    Raises:
        ValueError: an unknown ``distribution``.
        DistributionError: ``multi_worker`` without ``TF_CONFIG`` (a worker started without it
            would train alone, silently), or asked for the first time after TensorFlow's first
            op.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}. "
                         f"Received: distribution={distribution!r}")
    if distribution == "multi_worker":
        # Before anything that starts TensorFlow's runtime, listing devices included.
        return _STRATEGIES.get(("multi_worker",)) or _multi_worker_strategy()
    gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
    if distribution == "auto":
        if len(gpus) < 2:
            return tf.distribute.get_strategy()
        distribution = "mirrored"
    devices = gpus or [device.name for device in tf.config.list_logical_devices("CPU")]
    if distribution == "one_device":
        return tf.distribute.OneDeviceStrategy(devices[0])
    key = ("mirrored", *devices)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = tf.distribute.MirroredStrategy(devices)
    return _STRATEGIES[key]


# One strategy per process and kind, made on first use and reused by every later Trainer (the
# folds of a protocol, a benchmark's configurations). Each MirroredStrategy numbers its collective
# all-reduces from the same start, so a second one over the same devices reuses the first's keys
# and TensorFlow aborts with "Shape mismatch in the collective instance"; and TensorFlow
# configures the collective ops of MultiWorkerMirroredStrategy once, when its runtime starts, so
# that one must be made before any other op.
_STRATEGIES: dict[tuple[str, ...], tf.distribute.Strategy] = {}


def _multi_worker_strategy() -> tf.distribute.Strategy:
    if not os.environ.get("TF_CONFIG"):
        raise DistributionError(
            "distribution=multi_worker reads the cluster from the TF_CONFIG environment "
            "variable (every worker's host:port and this process's task index); set it on each "
            "worker (README, 'Training on several GPUs or machines'). Received: TF_CONFIG unset")
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:
        raise DistributionError(
            "distribution=multi_worker must make its strategy before TensorFlow runs its first "
            "op (collective ops are configured when TensorFlow's runtime starts): call "
            "affect_tf.train.distribution_strategy('multi_worker') at the start of the program, "
            f"as affect_tf.main does. Received: {error}") from error
    _STRATEGIES[("multi_worker",)] = strategy
    return strategy


def synchronize_batch_norm(model: keras.Model, strategy: tf.distribute.Strategy) -> list[str]:
    """Makes every BatchNormalization layer use the global batch's statistics across replicas.

    Under MirroredStrategy each replica sees only its slice of the global batch, and a BN layer
    in training mode normalizes by that slice's mean and variance unless it is synchronized (an
    all-reduce of the sums). Unsynchronized, 2 replicas trained the tiny GAP-head classifier to
    other weights than one device (updates 34-91 % apart after 1-3 steps); synchronized, they
    agree within float rounding (tests/test_train_distribute.py). ``synchronized`` is read at
    each call and is no weight, so the saved classifier and the evaluation are unchanged.

    Args:
        model: the classifier; its BN layers are changed in place.
        strategy: the training strategy; nothing changes with one replica.

    Returns:
        The names of the layers synchronized (empty with one replica or no BN layer).
    """
    if strategy.num_replicas_in_sync < 2:
        return []
    names = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
            names.append(layer.name)
    return names


def _layer_multipliers(config: TrainConfig) -> tuple[float, float]:
    """(new layers, pretrained layers) multipliers of the base rate of :func:`learning_rate_schedule`.

    The base is the conv rate, so new layers get head / conv; with a conv rate of 0 the base is
    the head rate and the pretrained layers are frozen (multiplier 0).
    """
    if config.conv_learning_rate > 0:
        return config.head_learning_rate / config.conv_learning_rate, 1.0
    return 1.0, 0.0


def learning_rate_multipliers(model: keras.Model, config: TrainConfig) -> list[float]:
    """Per trainable variable: its learning rate over the schedule's base (``lr_mult``)."""
    new_layers = model_lib.new_layer_names(model)
    new, pretrained = _layer_multipliers(config)
    multipliers = []
    for variable in model.trainable_variables:
        layer_name = variable.path.split("/")[-2] if "/" in variable.path else ""
        multipliers.append(new if layer_name in new_layers else pretrained)
    return multipliers


def learning_rates_at(config: TrainConfig, step: int) -> dict[str, float]:
    """The conv-layer and new-layer learning rates in force at ``step`` (for TensorBoard)."""
    schedule = learning_rate_schedule(config)
    base = float(schedule(step)) if callable(schedule) else float(schedule)
    new, pretrained = _layer_multipliers(config)
    return {"learning_rate/pretrained_layers": base * pretrained,
            "learning_rate/new_layers": base * new}


def learning_rate_schedule(config: TrainConfig):
    """Constant (the paper) or step decay every ``lr_decay_every`` steps (the authors' code)."""
    base = config.conv_learning_rate if config.conv_learning_rate > 0 else config.head_learning_rate
    if not config.lr_decay_every:
        return base
    boundaries = list(range(config.lr_decay_every, max(config.steps, 1), config.lr_decay_every))
    values = [base / config.lr_decay_factor ** i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def _is_kernel(variable) -> bool:
    return variable.path.endswith("kernel")


class Trainer:
    """Holds the classifier, optimizer and checkpoint of one fine-tuning run.

    Args:
        model_config: the classifier to build.
        train_config: the optimization.
        directory: where checkpoints and the final weights go.
        seed: the classifier's initialization seed (the run's ``seed``; the pipeline's shuffling
            and augmentation take it separately).
        summary_dir: where TensorBoard event files go (loss, accuracy, learning rates at each
            progress line); None writes none.

    The classifier is built under the dtype policy of ``train_config.mixed_precision``; with
    ``float16`` the gradients go through ``loss_scale_optimizer`` (a Keras
    ``LossScaleOptimizer`` around the SGD), which is None otherwise.
    """

    def __init__(self, model_config: ModelConfig, train_config: TrainConfig, directory: str,
                 *, seed: int = 0, summary_dir: str | None = None):
        self.summary_dir = summary_dir
        self.seed = seed
        self.model_config = model_config
        self.config = train_config
        self.directory = pathlib.Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.strategy = distribution_strategy(train_config.distribution)
        self._build()

    def _build(self) -> None:
        """The classifier, optimizer, step counter and checkpoint, freshly initialized."""
        model_config, train_config = self.model_config, self.config
        with self.strategy.scope():
            with dtype_policy(train_config.mixed_precision):
                self.model = model_lib.build_classifier(model_config, seed=self.seed)
            _warn_if_policy_not_applied(self.model, train_config.mixed_precision)
            synchronize_batch_norm(self.model, self.strategy)
            if train_config.trainable_from:
                model_lib.set_trainable_from(self.model, train_config.trainable_from)
            sgd = keras.optimizers.SGD(
                learning_rate=learning_rate_schedule(train_config), momentum=train_config.momentum)
            # float16 gradients of small losses underflow to 0 without loss scaling; bfloat16
            # has float32's exponent range and needs none.
            self.loss_scale_optimizer = (keras.optimizers.LossScaleOptimizer(sgd)
                                         if train_config.mixed_precision == "float16" else None)
            # What applies the gradients: the loss-scale optimizer unscales them, skips a step
            # whose gradients are not finite (and halves the scale), then lets the SGD update the
            # variables. A skipped step counts in `step` (the run's length), not in the SGD's
            # iterations (the learning-rate schedule's clock): a few steps out of thousands.
            self.optimizer = self.loss_scale_optimizer or sgd
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.multipliers = learning_rate_multipliers(self.model, train_config)
        # The SGD under the name "optimizer" in every precision, so a checkpoint has the float32
        # run's layout (a float32 Trainer restores a mixed-precision checkpoint and vice versa);
        # the loss scale and its counter are the extra entry "loss_scale".
        extra = {"loss_scale": self.loss_scale_optimizer} if self.loss_scale_optimizer else {}
        # Dropout draws its masks from Keras seed generators whose state a tf.train.Checkpoint
        # of the model does not reach; saved beside it, a resumed run draws the masks an
        # uninterrupted one draws at the same step.
        seed_states = {str(index): variable for index, variable in enumerate(
            variable for variable in self.model.variables
            if variable.path.endswith("seed_generator_state"))}
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=sgd, step=self.step, seed_generators=seed_states, **extra)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(self.directory / "checkpoints"), max_to_keep=2)

    def restore(self) -> int:
        """Restores the latest readable checkpoint; returns the step it reached (0 if none).

        A checkpoint that does not restore (truncated by a full disk, altered) is moved to
        ``damaged/`` beside ``checkpoints/`` with a warning, and the one before it is tried. A
        failed restore may have set some variables and left restorations pending (TensorFlow
        applies them to variables created later, reading the moved file); the classifier,
        optimizer and checkpoint are therefore built afresh before the next try, so the run goes
        on exactly as one that never saw the damaged file.

        Under ``multi_worker`` each worker restores from its own directory, and all must reach
        the same step (:meth:`_check_workers_agree`).
        """
        step = self._restore_latest()
        self._check_workers_agree(step)
        return step

    def _restore_latest(self) -> int:
        for prefix in reversed(self._checkpoint_prefixes()):
            try:
                # Partial: a float32 run restores a float16 run's checkpoint (its loss scale
                # is an extra entry) and vice versa.
                self.checkpoint.restore(prefix).expect_partial()
            except (tf.errors.OpError, ValueError, IndexError, KeyError, OSError) as error:
                logging.warning("Checkpoint %s does not restore (%s: %s); moving it aside and "
                                "trying the previous one.", prefix, type(error).__name__, error)
                self._quarantine_checkpoint(prefix)
                self._build()
                continue
            logging.info("Resumed from %s at step %d", prefix, int(self.step.numpy()))
            return int(self.step.numpy())
        return 0

    def _check_workers_agree(self, step: int) -> None:
        """Stops a multi-worker run whose workers restored different steps.

        Each worker checkpoints into its own directory at the same steps, so they agree unless a
        worker's directory was lost or a kill interrupted one worker's save; resuming them at
        different steps would train on other batches than an uninterrupted run (and hang once
        the first worker finishes). Nothing to check with one worker.

        Raises:
            DistributionError: the workers' steps differ; the message lists them.
        """
        if not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return
        local = self.strategy.run(lambda: tf.constant([step], tf.int64))
        steps = [int(value) for value in self.strategy.gather(local, axis=0).numpy()]
        if len(set(steps)) > 1:
            raise DistributionError(
                "The workers restored different checkpoints, so they cannot resume together: "
                "copy the checkpoints/ folder of the chief's (worker 0's) training directory "
                f"over this worker's ({self.directory / 'checkpoints'}) and restart every "
                f"worker. Received: steps per replica={steps}")

    def _quarantine_checkpoint(self, prefix: str) -> None:
        damaged = self.directory / "damaged"
        damaged.mkdir(exist_ok=True)
        for path in pathlib.Path(prefix).parent.glob(pathlib.Path(prefix).name + ".*"):
            shutil.move(str(path), str(damaged / path.name))
        self._reset_manager()

    def _checkpoint_prefixes(self) -> list[str]:
        """Prefixes of the checkpoints on disk, oldest first (read from the files themselves:
        the manager's list forgets checkpoints written by another manager)."""
        directory = self.directory / "checkpoints"
        return sorted((str(path)[: -len(".index")] for path in directory.glob("ckpt-*.index")),
                      key=lambda prefix: int(prefix.rsplit("-", 1)[1]))

    def _reset_manager(self, keep_last: int = 2) -> None:
        """Re-reads the checkpoint list from the files that remain."""
        directory = self.directory / "checkpoints"
        # Names relative to the directory, so a copied or moved run still finds its checkpoints.
        remaining = [os.path.basename(prefix) for prefix in self._checkpoint_prefixes()]
        if remaining:
            # The CheckpointState text proto that tf.train.get_checkpoint_state reads.
            lines = [f'model_checkpoint_path: "{remaining[-1]}"']
            lines += [f'all_model_checkpoint_paths: "{name}"' for name in remaining]
            io_lib.atomic_write_text(directory / "checkpoint", "\n".join(lines) + "\n")
        elif (directory / "checkpoint").exists():
            (directory / "checkpoint").unlink()
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(directory), max_to_keep=keep_last)

    def keep_last_checkpoint_only(self) -> None:
        """A finished run keeps one checkpoint (resume or continue training), not the history."""
        for prefix in self._checkpoint_prefixes()[:-1]:
            for path in pathlib.Path(prefix).parent.glob(pathlib.Path(prefix).name + ".*"):
                path.unlink()
        self._reset_manager()

    def _train_step_fn(self, global_batch_size: int):
        model, optimizer = self.model, self.optimizer
        multipliers = self.multipliers
        # The optimizer sums the replicas' gradients: each replica adds its share of the decay
        # term, so N replicas add it once, as one device does.
        decay = self.config.weight_decay / self.strategy.num_replicas_in_sync
        loss_scaling = self.loss_scale_optimizer

        def step_fn(images, labels):
            with tf.GradientTape() as tape:
                logits = model(images, training=True)
                # Eq. 3: softmax cross-entropy averaged over the global batch.
                per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32))
                loss = tf.reduce_sum(per_example) / global_batch_size
                differentiated = loss_scaling.scale_loss(loss) if loss_scaling else loss
            variables = model.trainable_variables
            gradients = tape.gradient(differentiated, variables)
            # The loss-scale optimizer divides every gradient it receives by the scale, so the
            # decay term, which is not part of the scaled loss, is multiplied by it here.
            scale = loss_scaling.dynamic_scale if loss_scaling else 1.0
            updates = []
            for gradient, variable, multiplier in zip(gradients, variables, multipliers):
                if decay and _is_kernel(variable):
                    # Caffe-style L2 weight decay.
                    gradient = gradient + (decay * scale) * variable
                updates.append((gradient * multiplier, variable))
            optimizer.apply_gradients(updates)
            correct = tf.reduce_sum(tf.cast(
                tf.equal(tf.argmax(logits, axis=-1), tf.cast(labels, tf.int64)), tf.float32))
            return loss, correct

        return step_fn

    def step_function(self):
        """The compiled SGD step :meth:`fit` runs, over the strategy's replicas.

        Compiled with XLA when ``TrainConfig.jit_compile`` is set (the whole step, replicas
        included, as Keras' ``jit_compile=True`` does); otherwise a plain ``tf.function``.

        Returns:
            A function ``(images [B, S, S, 3] float32 RGB 0-255, labels [B]) -> (loss, correct)``:
            the mean loss over the global batch (float32 scalar) and the number of correctly
            classified images (float32 scalar), reduced over replicas. Inputs are the batches of
            ``strategy.experimental_distribute_dataset``.
        """
        step_fn = self._train_step_fn(self.config.batch_size)
        strategy = self.strategy

        # None (tf.function's default), not False, when off: the default run compiles exactly
        # as before this setting existed; False would be an explicit opt-out of XLA.
        @tf.function(jit_compile=True if self.config.jit_compile else None)
        def distributed_step(images, labels):
            loss, correct = strategy.run(step_fn, args=(images, labels))
            loss = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
            correct = strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None)
            return loss, correct

        return distributed_step

    def _check_finite(self, loss: float, step: int) -> None:
        if not np.isfinite(loss):
            raise FloatingPointError(
                f"Training diverged: loss is {loss} at step {step}; lower the learning "
                f"rates. Received: conv_learning_rate={self.config.conv_learning_rate}, "
                f"head_learning_rate={self.config.head_learning_rate}")

    def _write_summaries(self, step: int, summary: dict) -> None:
        if self.summary_dir is None:
            return
        if getattr(self, "_writer", None) is None:
            self._writer = tf.summary.create_file_writer(self.summary_dir)
        values = {"train/loss": summary["loss"], "train/accuracy": summary["accuracy"],
                  "train/images_per_second": summary["images_per_second"],
                  **learning_rates_at(self.config, step)}
        with self._writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)
        self._writer.flush()

    def fit(self, dataset: tf.data.Dataset, *, start_step: int | None = None,
            log=logging.info, calibration: tf.data.Dataset | None = None) -> dict:
        """Runs SGD until ``config.steps``, resuming from the latest checkpoint.

        Args:
            dataset: endless batches ``(images [B, S, S, 3] float32 RGB 0-255, labels [B])`` of
                global batch size ``config.batch_size``.
            start_step: the step :meth:`restore` returned, when the caller already restored (to
                seed the input pipeline); None restores here.
            log: where progress lines go.
            calibration: finite batches of images [b, S, S, 3] in their evaluation view, in a
                fixed order; when given and the model has batch-normalization layers, their
                statistics are computed over it (:func:`recalibrate_batch_norm`, up to
                ``config.bn_calibration_images`` images) before the classifier is saved. Being
                deterministic, it gives the same classifier after a resume.

        Returns:
            Summary: steps run in this call, final step, last loss / accuracy, images per second.
        """
        if start_step is None:
            start_step = self.restore()
        total = self.config.steps
        if start_step < total:
            summary = self._run_steps(dataset, start_step, log)
        else:
            log(f"Training already finished ({start_step}/{total} steps)")
            summary = {"steps_run": 0, "step": start_step}
        if calibration is not None and self.config.bn_calibration_images > 0:
            calibrated = recalibrate_batch_norm(
                self.model, calibration.unbatch().take(self.config.bn_calibration_images).batch(
                    64))
            if calibrated:
                log(f"Batch-norm statistics of {', '.join(calibrated)} computed over "
                    f"{calibrated[next(iter(calibrated))]} training images")
        self.save_classifier()
        self.keep_last_checkpoint_only()
        return summary

    def _run_steps(self, dataset: tf.data.Dataset, start_step: int, log) -> dict:
        """SGD from ``start_step`` to ``config.steps``, with progress lines and checkpoints."""
        config, total = self.config, self.config.steps
        distributed_step = self.step_function()
        iterator = iter(self.strategy.experimental_distribute_dataset(
            _one_stream_for_all_workers(dataset, self.strategy)))
        window = _ProgressWindow(config.batch_size, total)
        run_start = time.perf_counter()
        step, summary = start_step, {}
        while step < total:
            images, labels = next(iterator)
            loss, correct = distributed_step(images, labels)
            step = int(self.step.assign_add(1).numpy())
            self._check_finite(float(loss), step)
            window.add(float(loss), float(correct))
            if step % config.log_every == 0 or step == total:
                summary = window.close(step, log)
                self._write_summaries(step, summary)
            if step % config.checkpoint_every == 0 or step == total:
                self.manager.save(checkpoint_number=step)
        summary.update({"steps_run": step - start_step, "step": step,
                        "seconds": time.perf_counter() - run_start})
        return summary

    def save_classifier(self) -> pathlib.Path:
        """Writes the fine-tuned weights atomically (temp file, then rename)."""
        path = self.directory / CLASSIFIER_FILE
        # Keras wants the ".weights.h5" ending, so the temporary name keeps it.
        temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        self.model.save_weights(str(temporary))
        temporary.replace(path)
        return path


def _one_stream_for_all_workers(dataset: tf.data.Dataset,
                                strategy: tf.distribute.Strategy) -> tf.data.Dataset:
    """Under ``multi_worker``, every worker reads the whole batch stream and keeps its slices.

    tf.distribute's default (AUTO) would shard a TFRecord-backed dataset by file: each worker
    would shuffle, augment and skip (on resume) its own files, so the global batches would
    differ from a one-machine run's and a resume would skip the wrong elements. DATA sharding
    keeps the one seeded stream: each global batch is split into per-replica slices and each
    worker keeps its own, at the cost of every worker decoding the whole global batch. A
    one-machine strategy shards nothing, so the dataset is returned unchanged there.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def recalibrate_batch_norm(model: keras.Model, batches: tf.data.Dataset) -> dict[str, int]:
    """Sets every BatchNormalization layer's moving statistics to exact ones over ``batches``.

    During fine-tuning a BN layer's moving mean and variance average batch statistics of
    features that keep changing (the conv layers learn too), so at the end they describe
    earlier features: on the demo the GAP head's logits were offset by several units and
    validation accuracy fell from 95 % (batch statistics) to 69 % (moving averages). Exact
    statistics of the final network over a fixed set of images ("precise BN") remove that lag.
    Layers are done in order, each with the layers before it already recalibrated, as inference
    sees them.

    Args:
        model: a functional Keras model; its BN layers' ``moving_mean`` / ``moving_variance``
            are assigned in place.
        batches: finite batches of model inputs [b, S, S, 3].

    Returns:
        ``{layer name: images used}`` for each recalibrated layer (empty without BN layers).

    Raises:
        ValueError: ``batches`` is empty.
    """
    layers = [layer for layer in model.layers
              if isinstance(layer, keras.layers.BatchNormalization)]
    used = {}
    for layer in layers:
        features = keras.Model(model.input, layer.input)
        count, total, total_squares = 0, 0.0, 0.0
        for images in batches:
            # float64 sums: a million-element feature sum in float32 loses the variance.
            values = tf.cast(features(images, training=False), tf.float64)
            values = tf.reshape(values, [-1, values.shape[-1]])
            count += int(values.shape[0])
            total += tf.reduce_sum(values, axis=0)
            total_squares += tf.reduce_sum(tf.square(values), axis=0)
        if count == 0:
            raise ValueError("Batch-norm recalibration needs images. Received: 0 batches")
        mean = total / count
        variance = tf.maximum(total_squares / count - tf.square(mean), 0.0)
        layer.moving_mean.assign(tf.cast(mean, layer.moving_mean.dtype))
        layer.moving_variance.assign(tf.cast(variance, layer.moving_variance.dtype))
        used[layer.name] = count
    return used


def _warn_if_policy_not_applied(model: keras.Model, mixed_precision: str) -> None:
    """Warns when the classifier does not compute in the precision asked for.

    A saved ``.keras`` classifier (``ModelConfig.weights``) carries each layer's dtype policy, so
    it keeps float32 compute under a mixed policy: training is then correct but not faster.
    """
    expected = keras.DTypePolicy(DTYPE_POLICIES[mixed_precision]).compute_dtype
    conv = model.get_layer(model_lib.VGG16_CONV_LAYERS[0])
    if conv.compute_dtype != expected:
        logging.warning(
            "mixed_precision=%s, but the classifier computes in %s (a saved .keras classifier "
            "keeps the dtype policy it was saved with). Expected compute dtype: %s.",
            mixed_precision, conv.compute_dtype, expected)


class _ProgressWindow:
    """Loss, accuracy and speed over the steps since the last progress line."""

    def __init__(self, batch_size: int, total: int):
        self.batch_size, self.total = batch_size, total
        self._reset()

    def _reset(self) -> None:
        self.loss, self.correct, self.steps = 0.0, 0.0, 0
        self.start = time.perf_counter()

    def add(self, loss: float, correct: float) -> None:
        self.loss += loss
        self.correct += correct
        self.steps += 1

    def close(self, step: int, log) -> dict:
        """Logs the window's line, starts a new window, and returns the window's summary."""
        rate = self.steps * self.batch_size / max(time.perf_counter() - self.start, 1e-9)
        eta = (self.total - step) * self.batch_size / max(rate, 1e-9)
        summary = {"loss": self.loss / self.steps,
                   "accuracy": self.correct / (self.steps * self.batch_size),
                   "images_per_second": rate}
        log(f"step {step}/{self.total} loss {summary['loss']:.4f} "
            f"train accuracy {summary['accuracy']:.3f} {rate:.1f} images/s ETA {eta:.0f}s")
        self._reset()
        return summary


def load_classifier(model_config: ModelConfig, directory: str) -> keras.Model:
    """Builds the classifier and loads the fine-tuned weights a :class:`Trainer` saved.

    Raises:
        MissingStageError: training has not finished in ``directory``.
    """
    path = pathlib.Path(directory) / CLASSIFIER_FILE
    if not path.is_file():
        raise MissingStageError(
            f"No fine-tuned classifier at {path}; run --mode=train first (or --mode=all).")
    # The architecture comes from the config; the weights source is irrelevant here.
    classifier = model_lib.build_classifier(_without_download(model_config))
    classifier.load_weights(str(path))
    return classifier


def _without_download(model_config: ModelConfig) -> ModelConfig:
    """The same architecture with random initial weights (they are overwritten by a load)."""
    return dataclasses.replace(model_config, weights="none", head=model_config.resolved_head)
