"""Does the demo show the paper's idea on any machine? The demo over split seeds x numeric paths.

Different machines round differently (oneDNN kernels, thread counts, instruction sets), and a
300-step fine-tuning amplifies a last-bit difference into another classifier. One machine stands
in for several by changing its numeric path; each path is one environment for the run:

- ``default``: this machine as it is (oneDNN on, every core);
- ``onednn0``: ``TF_ENABLE_ONEDNN_OPTS=0`` (TensorFlow's own kernels instead of oneDNN's);
- ``one_thread``: one core (``taskset``) and ``TF_NUM_INTRAOP_THREADS=1``, ``..._INTEROP_...=1``
  (every reduction summed in one order);
- ``onednn0_one_thread``: both.

For each seed and path, runs the demo (``python -m affect_tf.main --flagfile=configs/demo.flags
--split_seed=<seed>``) in ``<root>/seed-<seed>-<path>/`` (a finished run is reused: every stage
is skipped when its verified outputs exist; one-thread runs go two at a time, each on its own
core, when the machine has two), then prints per run:

- the whole image's accuracy (the fine-tuned CNN alone, the paper's baseline), the same through a
  linear SVM on its two probabilities (fitted on the validation part: the concatenation without
  regions, to tell the regions' gain from the SVM's re-weighting), AR + concatenation's (K of the
  demo), its gain over the whole image, and Obj / Senti + concatenation for comparison;
- how often the top-1 region by AR, the top-1 box by objectness and the top-1 by Senti hit the
  face (IoU >= 0.5), and how often any candidate does (the ceiling of every ranking);
- the run's wall time (when this script ran it).

``--part=test`` (default) reads the report's test metrics (``metrics.json``). ``--part=validation``
computes the same rows on the validation part, where the demo's settings were chosen (never on
test): the whole image and the hit rates directly, the concatenation SVMs by stratified 5-fold
cross-validation inside the validation part (it is trained there, so its in-sample accuracy would
flatter it).

Then the mean and sample sd over runs, and the targets, each over every run: AR + concatenation
beats the whole image by at least 3 points in every run and by at least 5 on average; it is at
least Obj + concatenation on average and never more than 1 point below it; the top-1 AR region
finds the face more often than the top-1 objectness box in every run. Exit status 0 when all
are met.

Usage (from the repository root; each new run is one demo run, ~11 min on 2 idle cores, about
twice that for a one-thread run):
    .venv/bin/python benchmarks/bench_demo_seeds.py      # seeds 20180101 1 2 x default, onednn0
    .venv/bin/python benchmarks/bench_demo_seeds.py --paths one_thread onednn0_one_thread
    .venv/bin/python benchmarks/bench_demo_seeds.py --part=validation --no_run
    .venv/bin/python benchmarks/bench_demo_seeds.py --no_run --svm_data   # the SVM-data study
    .venv/bin/python benchmarks/bench_demo_seeds.py --seeds 4 5 --root=/tmp/demo_grid
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import os
import subprocess
import sys
import time

import numpy as np
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit
from sklearn.svm import LinearSVC

from affect_tf import artifacts
from affect_tf import calibration
from affect_tf import config as config_lib
from affect_tf import evaluate as evaluate_lib
from affect_tf.experiments import sweeps
from affect_tf.config import FusionConfig, RegionConfig

# The checkout: the demo runs there (its flagfile names paths relative to it), and a relative
# --root is taken from it.
REPO = pathlib.Path(__file__).resolve().parents[1]

# The targets, in points (issue: every run, and on average over the grid).
MIN_GAIN_EVERY_RUN = 3.0
MIN_GAIN_ON_AVERAGE = 5.0
MAX_SHORTFALL_TO_OBJ = 1.0

# Each numeric path: the environment of its runs, and whether it runs on one core.
NUMERIC_PATHS = {
    "default": ({}, False),
    "onednn0": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, False),
    "one_thread": ({}, True),
    "onednn0_one_thread": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, True),
}
_ONE_THREAD_ENV = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                   "OMP_NUM_THREADS": "1"}


def demo_command(workdir: pathlib.Path, seed: int, path: str, flagfile: str, extra: list[str],
                 data_dir: str | None, core: int | None) -> tuple[list[str], dict]:
    """The command line and environment of one demo run on ``path`` (``core``: one-thread runs)."""
    environment, one_thread = NUMERIC_PATHS[path]
    environment = {**os.environ, **environment, **(_ONE_THREAD_ENV if one_thread else {})}
    command = [sys.executable, "-m", "affect_tf.main", f"--flagfile={flagfile}",
               f"--workdir={workdir}", f"--split_seed={seed}", *extra]
    if data_dir:
        command.append(f"--data_dir={data_dir}")
    if one_thread:
        command = ["taskset", "-c", str(core or 0), *command]
    return command, environment


def run_demos(runs: list[tuple[int, str]], root: pathlib.Path, flagfile: str, extra: list[str],
              data_dir: str | None) -> dict[tuple[int, str], float]:
    """Runs (or resumes) the demo for each (seed, path); returns each run's wall time in seconds.

    Runs on every core go one after the other; one-thread runs go as many at a time as there
    are cores (at most two), each pinned to its own.
    """
    walls: dict[tuple[int, str], float] = {}
    cores = sorted(os.sched_getaffinity(0))[:2]
    whole_machine = [run for run in runs if not NUMERIC_PATHS[run[1]][1]]
    single = [run for run in runs if NUMERIC_PATHS[run[1]][1]]
    batches = [[run] for run in whole_machine] + [single[i:i + len(cores)]
                                                  for i in range(0, len(single), len(cores))]
    root.mkdir(parents=True, exist_ok=True)
    for batch in batches:
        started = []
        for (seed, path), core in zip(batch, cores):
            workdir = root / f"seed-{seed}-{path}"
            log = workdir.with_suffix(".log")
            print(f"seed {seed}, {path}: running the demo in {workdir} (log: {log})", flush=True)
            command, environment = demo_command(workdir, seed, path, flagfile, extra, data_dir,
                                                core)
            stream = open(log, "w", encoding="utf-8")  # pylint: disable=consider-using-with
            process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=stream,
                                       stderr=subprocess.STDOUT)
            started.append(((seed, path), process, stream, time.perf_counter(), log))
        for key, process, stream, start, log in started:
            status = process.wait()
            stream.close()
            if status != 0:
                raise SystemExit(f"The demo for seed {key[0]} on {key[1]} failed with exit "
                                 f"status {status}; see {log}")
            walls[key] = time.perf_counter() - start
    return walls


def _stage_manifest(directory: pathlib.Path) -> artifacts.Manifest | None:
    """The verified manifest of ``<stage>-<fingerprint>`` (output hashes checked), or None."""
    try:
        return artifacts.read_manifest(directory, directory.name.split("-", 1)[1])
    except artifacts.DamagedArtifactError as error:
        raise SystemExit(f"{directory} is damaged ({error}); rerun the demo for this seed.") \
            from error


def _evaluated_predictions_dir(workdir: pathlib.Path) -> pathlib.Path:
    """The predictions behind the run's report: the verified evaluation whose results are the
    root metrics.json's, then the verified predictions it read (never merely the newest)."""
    reported = json.loads((workdir / "metrics.json").read_text())["results"]
    for eval_dir in sorted(workdir.glob("eval-*")):
        manifest = _stage_manifest(eval_dir)
        if manifest is None or json.loads(
                (eval_dir / "metrics.json").read_text())["results"] != reported:
            continue
        for predict_dir in sorted(workdir.glob("predict-*")):
            predictions = _stage_manifest(predict_dir)
            if predictions is not None and (
                    predictions.content_id == manifest.inputs.get("predictions")):
                return predict_dir
    raise SystemExit(f"No verified evaluation and predictions behind {workdir}/metrics.json. "
                     f"Expected eval-<fp>/ and predict-<fp>/ with manifests; received: "
                     f"{sorted(p.name for p in workdir.iterdir())}")


def _predictions(workdir: pathlib.Path, part: str) -> dict:
    with np.load(_evaluated_predictions_dir(workdir) / f"predictions_{part}.npz") as stored:
        return {key: stored[key] for key in stored.files}


def _whole_image_svm(train: dict, test: dict, seed: int) -> float:
    """Accuracy on ``test`` of a linear SVM on the whole image's probabilities alone, fitted on
    ``train``: the concatenation without regions. What AR + concatenation gains over it comes
    from the regions, not from the SVM re-weighting the CNN's two outputs."""
    svm = LinearSVC(C=1.0, random_state=seed).fit(train["global_probs"], train["label"])
    return float(np.mean(svm.predict(test["global_probs"]) == test["label"]))


def _stored_config(workdir: pathlib.Path) -> config_lib.Config:
    """The finished run's configuration (its config.json, read as any version wrote it)."""
    return config_lib.from_stored(json.loads((workdir / "config.json").read_text()))


def _scoring_config(workdir: pathlib.Path) -> config_lib.Config:
    """The run's settings with the temperature of --senti_calibration fitted on its validation
    predictions, as its evaluation scored regions (affect_tf.calibration.resolve)."""
    return calibration.resolve(_stored_config(workdir), _predictions(workdir, "validation"))


def test_row(workdir: pathlib.Path) -> dict:
    """The demo's test metrics from its root metrics.json (and its stored predictions)."""
    metrics = json.loads((workdir / "metrics.json").read_text())
    results, hits = metrics["results"], metrics.get("region_hit_rate", {})
    seed = _stored_config(workdir).seed
    return {"whole": results["global"]["accuracy"],
            "whole_svm": _whole_image_svm(_predictions(workdir, "validation"),
                                          _predictions(workdir, "test"), seed),
            "ar_concat": results["ar+concat"]["accuracy"],
            "obj_concat": results["obj+concat"]["accuracy"],
            "senti_concat": results["senti+concat"]["accuracy"], "hit_ar": hits.get("ar", np.nan),
            "hit_obj": hits.get("obj", np.nan), "hit_senti": hits.get("senti", np.nan),
            "hit_any": hits.get("best_candidate", np.nan)}


def _cross_validated_whole_svm(part: dict, seed: int, folds: int = 5) -> float:
    labels, correct = part["label"], 0
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, held_out in splitter.split(np.zeros(len(labels)), labels):
        correct += _whole_image_svm({k: v[train] for k, v in part.items()},
                                    {k: v[held_out] for k, v in part.items()}, seed) * len(held_out)
    return correct / len(labels)


def _cross_validated_concat(part: dict, regions: RegionConfig, fusion: FusionConfig,
                            selection: str, seed: int) -> float:
    """Accuracy of the concatenation SVM by stratified 5-fold cross-validation inside ``part``
    (:func:`affect_tf.experiments.sweeps.cross_validated_concat`, regions chosen by ``selection``)."""
    return sweeps.cross_validated_concat(part, evaluate_lib.select(part, regions, selection),
                                         fusion, seed)


def validation_row(workdir: pathlib.Path) -> dict:
    """The same rows on the validation part (the SVM rows by cross-validation inside it)."""
    config = _scoring_config(workdir)
    regions, fusion, seed = config.regions, config.fusion, config.seed
    part = _predictions(workdir, "validation")
    hits = (evaluate_lib.region_hit_rates(part, regions) if "object_box" in part else {})
    whole = float(np.mean(np.argmax(part["global_probs"], axis=-1) == part["label"]))
    return {"whole": whole, "whole_svm": _cross_validated_whole_svm(part, seed),
            **{f"{selection}_concat": _cross_validated_concat(part, regions, fusion, selection,
                                                              seed)
               for selection in ("ar", "obj", "senti")},
            "hit_ar": hits.get("ar", np.nan), "hit_obj": hits.get("obj", np.nan),
            "hit_senti": hits.get("senti", np.nan), "hit_any": hits.get("best_candidate", np.nan)}


def _mean_sd(values) -> tuple[float, float]:
    values = np.asarray(values, np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


# The table's columns: (row key, header, width); every value is a fraction, printed in %.
_COLUMNS = (("whole", "whole", 6), ("whole_svm", "whole+SVM", 9), ("ar_concat", "AR+concat", 9),
            ("gain", "gain", 6), ("obj_concat", "Obj+concat", 10),
            ("senti_concat", "Senti+concat", 12), ("hit_ar", "hit AR", 6),
            ("hit_obj", "hit Obj", 7), ("hit_senti", "hit Senti", 9), ("hit_any", "any", 5))


def targets(rows: dict[tuple[int, str], dict]) -> dict[str, bool]:
    """The issue's targets over the grid (each row: one seed on one numeric path)."""
    # Rounded to 1e-6 points: accuracies are counts over the test part, and a difference of
    # two of them must not miss a target by a float's last bit.
    gains = [round(100 * (row["ar_concat"] - row["whole"]), 6) for row in rows.values()]
    to_obj = [round(100 * (row["ar_concat"] - row["obj_concat"]), 6) for row in rows.values()]
    return {
        f"AR + concatenation >= whole image + {MIN_GAIN_EVERY_RUN:g} in every run":
            min(gains) >= MIN_GAIN_EVERY_RUN,
        f"... and >= + {MIN_GAIN_ON_AVERAGE:g} on average":
            round(float(np.mean(gains)), 6) >= MIN_GAIN_ON_AVERAGE,
        "AR + concatenation >= Obj + concatenation on average":
            round(float(np.mean(to_obj)), 6) >= 0.0,
        f"... and never more than {MAX_SHORTFALL_TO_OBJ:g} below it":
            min(to_obj) >= -MAX_SHORTFALL_TO_OBJ,
        "top-1 AR region on the face more often than top-1 objectness in every run":
            all(row["hit_ar"] > row["hit_obj"] for row in rows.values()),
    }


def print_table(rows: dict[tuple[int, str], dict], part: str) -> bool:
    """Prints the grid, its mean, sd and range, and the targets; returns whether all are met."""
    rows = {key: {**row, "gain": row["ar_concat"] - row["whole"]} for key, row in rows.items()}
    name_width = max(len(f"{seed} {path}") for seed, path in rows) if rows else 4
    header = " | ".join([f"{'seed, path':<{name_width}}",
                         *(f"{title:>{width}}" for _, title, width in _COLUMNS), "  wall"])
    print(f"\nDemo over split seeds x numeric paths, {part} part (accuracy and hit rates in %)")
    print(header)
    print("-" * len(header))

    def line(name: str, values: dict, wall: str) -> None:
        cells = [f"{100 * values[key]:>+{width}.2f}" if key == "gain"
                 else f"{100 * values[key]:>{width}.2f}" for key, _, width in _COLUMNS]
        print(" | ".join([f"{name:<{name_width}}", *cells, wall]))

    for (seed, path), row in rows.items():
        line(f"{seed} {path}", row, f"{row['wall'] / 60:5.1f}m" if row.get("wall") else "     -")
    for label, index in (("mean", 0), ("sd", 1)):
        line(label, {key: _mean_sd([row[key] for row in rows.values()])[index]
                     for key, _, _ in _COLUMNS}, "")
    for key, title in (("whole", "whole image"), ("ar_concat", "AR + concatenation"),
                       ("gain", "gain")):
        values = [100 * row[key] for row in rows.values()]
        print(f"range of {title}: {min(values):.2f} to {max(values):.2f}")
    checks = targets(rows)
    for name, met in checks.items():
        print(f"target: {name}: {'met' if met else 'MISSED'}")
    return all(checks.values())


SVM_DATA_FRACTIONS = (0.25, 0.5, 1.0)


def _concat_accuracy(train: dict, test: dict, regions: RegionConfig, fusion: FusionConfig,
                     seed: int) -> float:
    """Test accuracy of AR + concatenation with its SVM fitted on ``train``'s predictions."""
    svm = evaluate_lib.fit_svm(train, evaluate_lib.select(train, regions, "ar"), fusion, seed)
    predicted = evaluate_lib.fuse("concat", test["global_probs"],
                                  evaluate_lib.select(test, regions, "ar"), fusion, svm=svm)
    return float(np.mean(predicted == test["label"]))


def svm_data_row(workdir: pathlib.Path, repeats: int = 5) -> dict:
    """How AR + concatenation's test accuracy depends on the SVM's data, on one finished run.

    ``validation_<f>``: the SVM fitted on a stratified random fraction f of the validation part
    (mean over ``repeats`` draws; f = 1 is the run's own figure). ``test_cv``: the SVM fitted by
    5-fold cross-fitting inside the test part (each fifth predicted by an SVM fitted on the other
    four: about 1.8 times the validation part's images, from the same CNN): what more
    SVM data of the same kind would give.
    """
    config = _scoring_config(workdir)
    regions, fusion, seed = config.regions, config.fusion, config.seed
    validation, test = _predictions(workdir, "validation"), _predictions(workdir, "test")

    def subset(part: dict, indices) -> dict:
        return {key: value[indices] for key, value in part.items()}

    row = {}
    for fraction in SVM_DATA_FRACTIONS:
        if fraction == 1.0:
            row["validation_1"] = _concat_accuracy(validation, test, regions, fusion, seed)
            continue
        splitter = StratifiedShuffleSplit(n_splits=repeats, train_size=fraction, random_state=seed)
        row[f"validation_{fraction:g}"] = float(np.mean([
            _concat_accuracy(subset(validation, chosen), test, regions, fusion, seed)
            for chosen, _ in splitter.split(np.zeros(len(validation["label"])),
                                            validation["label"])]))
    correct = 0
    for fitted, held_out in StratifiedKFold(n_splits=5, shuffle=True, random_state=seed).split(
            np.zeros(len(test["label"])), test["label"]):
        correct += _concat_accuracy(subset(test, fitted), subset(test, held_out), regions,
                                    fusion, seed) * len(held_out)
    row["test_cv"] = correct / len(test["label"])
    row["validation_images"] = len(validation["label"])
    return row


def print_svm_data(rows: dict[tuple[int, str], dict]) -> None:
    """The SVM-data table: AR + concatenation (test, %) against what its SVM was fitted on."""
    columns = [f"validation_{f:g}" for f in SVM_DATA_FRACTIONS] + ["test_cv"]
    print("\nAR + concatenation's test accuracy (%) by the SVM's data: a fraction of the "
          "validation part (mean of 5 draws), or 5-fold cross-fitting inside the test part")
    print(" | ".join(["seed, path".ljust(26), "val images", *(f"{c:>14}" for c in columns)]))
    for (seed, path), row in rows.items():
        print(" | ".join([f"{seed} {path}".ljust(26), f"{row['validation_images']:>10}",
                          *(f"{100 * row[c]:>14.2f}" for c in columns)]))
    print(" | ".join(["mean".ljust(26), " " * 10,
                      *(f"{np.mean([100 * r[c] for r in rows.values()]):>14.2f}"
                        for c in columns)]))


SVM_VARIANTS = tuple((kind, c) for kind in ("probabilities", "log_probabilities")
                     for c in (0.01, 0.1, 1.0))


def svm_variant_rows(workdir: pathlib.Path) -> dict[tuple[str, float], tuple[float, float]]:
    """AR + concatenation with each SVM feature kind and C: (validation 5-fold CV, test)."""
    config = _scoring_config(workdir)
    regions, fusion, seed = config.regions, config.fusion, config.seed
    validation, test = _predictions(workdir, "validation"), _predictions(workdir, "test")
    rows = {}
    for kind, c in SVM_VARIANTS:
        variant = dataclasses.replace(fusion, svm_features=kind, svm_c=c)
        rows[(kind, c)] = (_cross_validated_concat(validation, regions, variant, "ar", seed),
                           _concat_accuracy(validation, test, regions, variant, seed))
    return rows


def print_svm_variants(rows: dict[tuple[int, str], dict]) -> None:
    """The SVM-variant table: validation CV and test accuracy (%) of each feature kind and C."""
    print("\nAR + concatenation (%) by the SVM's features and C: validation 5-fold CV / test")
    print(" | ".join(["seed, path".ljust(26),
                      *(f"{kind[:5]} C={c:g}".rjust(15) for kind, c in SVM_VARIANTS)]))
    for (seed, path), variants in rows.items():
        print(" | ".join([f"{seed} {path}".ljust(26),
                          *(f"{100 * variants[key][0]:6.2f}/{100 * variants[key][1]:6.2f}".rjust(15)
                            for key in SVM_VARIANTS)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[20180101, 1, 2],
                        help="split seeds (--split_seed of each run)")
    parser.add_argument("--paths", nargs="+", default=["default", "onednn0"],
                        choices=sorted(NUMERIC_PATHS), help="numeric paths (see above)")
    parser.add_argument("--root", default="runs/demo_grid",
                        help="one workdir per run under it: <root>/seed-<seed>-<path>")
    parser.add_argument("--flagfile", default="configs/demo.flags")
    parser.add_argument("--data_dir", default=None, help="TFDS data directory for the runs")
    parser.add_argument("--part", choices=("test", "validation"), default="test")
    parser.add_argument("--no_run", action="store_true",
                        help="only read finished runs under --root")
    parser.add_argument("--svm_data", action="store_true",
                        help="also print how AR + concatenation depends on the SVM's data, "
                        "its features and C")
    parser.add_argument("extra", nargs="*", help="more flags for every run, after --")
    args = parser.parse_args()
    root = pathlib.Path(args.root)
    if not root.is_absolute():
        root = REPO / root
    grid = [(seed, path) for seed in args.seeds for path in args.paths]
    walls = ({} if args.no_run
             else run_demos(grid, root, args.flagfile, args.extra, args.data_dir))
    read = test_row if args.part == "test" else validation_row
    rows = {(seed, path): {**read(root / f"seed-{seed}-{path}"),
                           "wall": walls.get((seed, path))} for seed, path in grid}
    met = print_table(rows, args.part)
    if args.svm_data:
        print_svm_data({key: svm_data_row(root / f"seed-{key[0]}-{key[1]}") for key in grid})
        print_svm_variants({key: svm_variant_rows(root / f"seed-{key[0]}-{key[1]}")
                            for key in grid})
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
