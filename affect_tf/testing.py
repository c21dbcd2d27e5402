"""One kit of small, seeded fakes for the tests and benchmarks (no network, no download).

Importable from the installed package, so test modules (run with ``--import-mode=importlib``,
which cannot import each other) and benchmarks share it instead of each writing their own.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pathlib
from typing import Any, Callable

import numpy as np

from affect_tf import config as config_lib
from affect_tf.io import encode_png

# The checkout's root (tests and flagfiles live there); meaningless for an installed copy.
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def rectangles_scene(seed: int, height: int = 150, width: int = 200, count: int = 3) -> np.ndarray:
    """A dark image with ``count`` bright rectangles at seeded places: uint8 RGB [H, W, 3].

    Cheap, yet EdgeBoxes finds real boxes in it, which is all most proposal tests need.
    """
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 30, np.uint8)
    for _ in range(count):
        w, h = rng.integers(40, 90), rng.integers(40, 80)
        x, y = rng.integers(0, width - w), rng.integers(0, height - h)
        image[y:y + h, x:x + w] = rng.integers(120, 255, size=3)
    return image


def synthetic_photo(rng: np.random.Generator, height: int = 375, width: int = 500,
                    shapes: int = 12) -> np.ndarray:
    """Photo-like uint8 RGB [H, W, 3]: a smooth background, noise, and ellipses with hard edges.

    For benchmarks of decoding and resizing, whose cost depends on size more than on content.
    Proposal speed depends on content: measure it on real photographs (bench_proposals.py).
    """
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    image = np.stack([np.sin(3 * x + rng.random() * 6), np.cos(2 * y + rng.random() * 6),
                      np.sin(2 * (x + y))], axis=-1) * 50 + 120
    for _ in range(shapes):
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        ry, rx = rng.integers(10, max(11, height // 4)), rng.integers(10, max(11, width // 4))
        mask = ((np.arange(height)[:, None] - cy) / ry) ** 2 + (
            (np.arange(width)[None] - cx) / rx) ** 2 < 1
        image[mask] = rng.integers(0, 255, 3)
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def encoded_examples(count: int, start: int = 0, prefix: str = "images",
                     **scene_args) -> list[tuple[str, bytes]]:
    """``(image/filename, PNG bytes)`` pairs of :func:`rectangles_scene` ``start..count-1``."""
    return [(f"{prefix}/{index:03d}.png", encode_png(rectangles_scene(index, **scene_args)))
            for index in range(start, count)]


def replace_config(config: config_lib.Config, **overrides: Any) -> config_lib.Config:
    """``config`` with fields replaced: a section's name takes a dict of its fields, any other
    name is a setting (a leaf name, whatever section holds it, as on the command line).

    Example: ``replace_config(c, mode="evaluate", regions={"top_k": 1}, ten_crop=True)``.
    """
    paths = {setting.name: setting.path for setting in config_lib.settings()}
    for name, value in overrides.items():
        section = getattr(config, name, None)
        if isinstance(value, dict) and dataclasses.is_dataclass(section):
            config = dataclasses.replace(config, **{name: dataclasses.replace(section, **value)})
        elif name in paths:
            config = _replace_leaf(config, paths[name], value)
        else:
            raise TypeError(f"replace_config: {name!r} is neither a section nor a setting. "
                            f"Received: {name}={value!r}")
    return config.validate()


def _replace_leaf(node: Any, path: tuple[str, ...], value: Any) -> Any:
    if len(path) == 1:
        return dataclasses.replace(node, **{path[0]: value})
    return dataclasses.replace(
        node, **{path[0]: _replace_leaf(getattr(node, path[0]), path[1:], value)})


def tiny_config(root: str | os.PathLike, **overrides: Any) -> config_lib.Config:
    """The demo job shrunk to seconds: 48 scenes, 32 px CNN, 6 candidates, 4 SGD steps, random
    weights for the classifier and the baseline (offline), the figures of one test image.

    Args:
        root: a scratch directory; the run goes to ``root/run``, the TFDS data to ``root/tfds``.
        overrides: as :func:`replace_config`.
    """
    root = pathlib.Path(root)
    config = config_lib.Config(
        workdir=str(root / "run"), mode="all",
        data=config_lib.DataConfig(dataset="affect_demo/tiny", data_dir=str(root / "tfds"),
                                   validation_fraction=0.3, test_fraction=0.3),
        proposals=config_lib.ProposalConfig(num_candidates=6, max_boxes=200, kmeans_n_init=2),
        model=config_lib.ModelConfig(weights="none", head="gap", image_size=32, resize_size=40),
        evaluation=config_lib.EvaluationConfig(eval_batch_size=8, region_image_size=64),
        train=config_lib.TrainConfig(batch_size=8, steps=4, checkpoint_every=2, log_every=2),
        # The demo's fitted temperature: every consumer of the predictions must resolve it.
        regions=config_lib.RegionConfig(top_k=2, crops_per_call=16,
                                        senti_calibration="temperature"),
        # Random weights for the baseline too: offline (ImageNet's would need a download) and
        # fast (conv5 features, no 4096-wide fc layers).
        baselines=config_lib.BaselineConfig(baseline_weights="none"),
        # --mode=all draws the experiments' per-image figures: one image keeps that path
        # exercised in every tiny run at a quarter of the default's cost.
        experiments=config_lib.ExperimentsConfig(experiment_images=1),
        # The sliding-window boxes: the tiny runs' exports test the served machinery, which is
        # the same for both engines; OpenCV's EdgeBoxes in XLA (the default) compiles for tens
        # of seconds per canvas and has tests of its own.
        export=config_lib.ExportConfig(served_boxes="windows"),
    )
    return replace_config(config, **overrides)


def build_dataset(builder: str | type, manual_dir: str | os.PathLike,
                  data_dir: str | os.PathLike, config: str | None = None):
    """Prepares a builder of ``datasets/`` from ``manual_dir`` into ``data_dir``, as users do.

    Args:
        builder: a ``Builder`` class, or a dataset folder's name (``"twitter1"``).
        manual_dir: the folder handed to the builder as ``manual_dir``.
        data_dir: where the TFRecords go (a scratch directory).
        config: the builder config's name; None for the default.

    Returns:
        The prepared ``tfds.core.DatasetBuilder``; read it with ``as_dataset``.
    """
    # Imported here: TFDS loads TensorFlow, which the scene and config helpers do not need.
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    if isinstance(builder, str):
        builder = importlib.import_module(
            f"affect_tf.datasets.{builder}.{builder}_dataset_builder").Builder
    prepared = builder(data_dir=str(data_dir), config=config)
    prepared.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return prepared


def examples_by_filename(builder, split: str = "train") -> dict[str, dict]:
    """A prepared builder's examples, as numpy, keyed by their decoded ``image/filename``."""
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    return {example["image/filename"].decode(): example
            for example in tfds.as_numpy(builder.as_dataset(split=split))}


def locate_error(locate: Callable[[Any], Any], manual_dir: str | os.PathLike) -> str:
    """The message of the ``FileNotFoundError`` that ``locate(manual_dir)`` must raise.

    Raises:
        AssertionError: ``locate`` found a dataset there.
    """
    try:
        locate(manual_dir)
    except FileNotFoundError as error:
        return str(error)
    raise AssertionError(f"{locate.__name__}({manual_dir}) raised no FileNotFoundError.")


def cli_flags(config: config_lib.Config) -> list[str]:
    """The command-line flags that give ``config`` (every setting that differs from its default).

    Lets a test run a :func:`tiny_config` job through ``python -m affect_tf.main`` as users do.
    """
    flags = []
    for setting in config_lib.settings():
        value = config
        for name in setting.path:
            value = getattr(value, name)
        if value == setting.default:
            continue
        if setting.type is bool:
            flags.append(f"--{setting.name}" if value else f"--no{setting.name}")
        else:
            flags.append(f"--{setting.name}={value}")
    return flags


def run_cli(*args: str, cwd: str | os.PathLike = REPO_ROOT, timeout: float = 600,
            python_path: tuple[str, ...] = ()):
    """Runs ``python -m affect_tf.main ARGS`` in a fresh process, on the CPU, as a user does.

    Args:
        args: the command line's flags.
        cwd: where it runs (flagfiles name paths relative to the repository root).
        timeout: seconds before the run is killed (the test then fails).
        python_path: directories put before this checkout on ``PYTHONPATH``.

    Returns:
        ``(subprocess.CompletedProcess with text stdout / stderr, seconds it took)``.
    """
    import subprocess  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel
    import time  # pylint: disable=import-outside-toplevel

    checkout = str(pathlib.Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((*python_path, checkout)),
               CUDA_VISIBLE_DEVICES="")
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "affect_tf.main", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout)
    return result, time.monotonic() - start


def cpu_seconds(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """Calls ``function(*args, **kwargs)``; returns its result and the CPU seconds it took.

    CPU time of this process (``time.process_time``, all threads), not wall time: on a machine
    shared with other jobs, it still measures the work done. Benchmarks that want one core's
    figure set every thread pool to one thread before numpy, OpenCV and TensorFlow load.
    """
    import time  # pylint: disable=import-outside-toplevel

    start = time.process_time()
    result = function(*args, **kwargs)
    return result, time.process_time() - start


def write_jpeg_records(path: str | os.PathLike, count: int, height: int,
                       width: int) -> list[str]:
    """Writes ``count`` :func:`synthetic_photo` JPEGs (seed 0, quality 90) to a TFRecord file.

    Each record holds ``image`` (the JPEG bytes), ``image/filename`` (``img_00000.jpg``, ...) and
    ``label`` (``index % 2``): what a prepared dataset's examples hold, for the input-pipeline and
    training benchmarks. Read it back with :func:`read_jpeg_records`.

    Returns:
        The file names, in record order.
    """
    # Imported here: the other helpers of this kit do not need TensorFlow.
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from affect_tf.io import encode_jpeg  # pylint: disable=import-outside-toplevel

    def feature(value) -> tf.train.Feature:
        if isinstance(value, int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    rng = np.random.default_rng(0)
    names = []
    with tf.io.TFRecordWriter(str(path)) as writer:
        for index in range(count):
            name = f"img_{index:05d}.jpg"
            names.append(name)
            example = {"image": feature(encode_jpeg(synthetic_photo(rng, height, width),
                                                    quality=90)),
                       "image/filename": feature(name.encode()), "label": feature(index % 2)}
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=example)).SerializeToString())
    return names


def read_jpeg_records(path: str | os.PathLike):
    """The examples of a :func:`write_jpeg_records` file: a ``tf.data.Dataset`` of dicts with
    ``image`` (encoded), ``image/filename`` and ``label``, parsed in parallel."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    spec = {"image": tf.io.FixedLenFeature([], tf.string),
            "image/filename": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64)}
    return tf.data.TFRecordDataset(str(path)).map(
        lambda record: tf.io.parse_single_example(record, spec),
        num_parallel_calls=tf.data.AUTOTUNE)


def finished_run(workdir: str | os.PathLike):
    """The run whose last finished configuration is ``<workdir>/config.json``, as a
    ``stages.Run``: for scripts that read a finished run's files (predictions, classifier).

    Settings the stored configuration holds but this version no longer knows are ignored.
    """
    import json  # pylint: disable=import-outside-toplevel

    from affect_tf import stages  # pylint: disable=import-outside-toplevel

    stored = json.loads((pathlib.Path(workdir) / "config.json").read_text())
    return stages.Run(config_lib.from_stored(stored).validate())


def bfloat16_runs_here() -> bool:
    """Whether this machine's TensorFlow runs a bfloat16 convolution (tests of the bfloat16
    paths skip where it does not)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    try:
        kernel = tf.ones((3, 3, 3, 4), tf.bfloat16)
        tf.nn.conv2d(tf.ones((1, 8, 8, 3), tf.bfloat16), kernel, 1, "SAME").numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError,
            tf.errors.UnimplementedError):
        return False
    return True


# What photo_folder writes, in the order a walk of the folder gives (entries by name, a folder
# where its name sorts): file name -> None (a readable photo) or a fragment of the reason an
# unreadable one gets (affect_tf.predictor).
PHOTO_FOLDER_FILES = {
    "a_scene.png": None, "b_scene.png": None, "c_photo.jpg": None,
    "d_png_named.jpg": None, "e_grayscale.jpg": None, "f_cmyk.jpg": None,
    "h_truncated.jpg": "truncated", "i_notes.txt": "cannot identify image file",
    "j_empty.jpg": "empty file (0 bytes)", "nested/g_scene.png": None,
}


def photo_folder(directory: str | os.PathLike) -> dict[str, str | None]:
    """Writes a folder as a user's photo folder may hold it (seeded :func:`rectangles_scene`):
    PNG and RGB JPEG photos, a PNG named ``.jpg``, a grayscale and a CMYK JPEG, one photo in a
    subfolder, a truncated JPEG, a text file, an empty file, and a hidden file (``.DS_Store``,
    which folder walks skip).

    Returns:
        :data:`PHOTO_FOLDER_FILES`: each file's path relative to ``directory`` -> None (a photo)
        or a fragment of the reason it is unreadable.
    """
    import io  # pylint: disable=import-outside-toplevel

    from PIL import Image  # pylint: disable=import-outside-toplevel

    directory = pathlib.Path(directory)
    (directory / "nested").mkdir(parents=True, exist_ok=True)

    def save(name: str, image: np.ndarray, **options) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, **options)
        (directory / name).write_bytes(buffer.getvalue())
        return buffer.getvalue()

    save("a_scene.png", rectangles_scene(11), format="PNG")
    save("b_scene.png", rectangles_scene(12, height=120, width=90), format="PNG")
    jpeg = save("c_photo.jpg", rectangles_scene(13), format="JPEG", quality=92)
    save("d_png_named.jpg", rectangles_scene(14), format="PNG")
    save("e_grayscale.jpg", rectangles_scene(15)[..., 1], format="JPEG", quality=92)
    buffer = io.BytesIO()
    Image.fromarray(rectangles_scene(16)).convert("CMYK").save(buffer, format="JPEG", quality=92)
    (directory / "f_cmyk.jpg").write_bytes(buffer.getvalue())
    save("nested/g_scene.png", rectangles_scene(17), format="PNG")
    (directory / "h_truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (directory / "i_notes.txt").write_text("These are not pixels.\n")
    (directory / "j_empty.jpg").write_bytes(b"")
    (directory / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return dict(PHOTO_FOLDER_FILES)
