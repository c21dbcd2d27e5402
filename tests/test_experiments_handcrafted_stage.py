"""The hand-crafted baselines in --mode=experiments: the setting and its refusals, what the
descriptors' and features' fingerprints cover, the descriptors' file, the report's tables (one
run, the folds), and the stage on a finished tiny demo run: CSV, report, features reused on a
rerun and on a new C, descriptors shared by a descriptor's baselines and reused by a new
codebook, a damaged features or descriptors file recomputed."""

import csv
import io
import json
import pathlib

import numpy as np
import pytest

from affect_tf import artifacts
from affect_tf import config as config_lib
from affect_tf import data as data_lib
from affect_tf import errors, stages
from affect_tf import report as report_lib
from affect_tf.experiments import handcrafted, handcrafted_eval, handcrafted_stage
from affect_tf.io import decode_image_bytes
from affect_tf.testing import replace_config

# Two cheap global baselines and a local one with a small codebook: seconds on the tiny run.
BASELINES = "gch,lbp,hog_bow"


def _rows(path: pathlib.Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _only(workdir, pattern: str) -> pathlib.Path:
    (directory,) = pathlib.Path(workdir).glob(pattern)
    return directory


def _count_calls(monkeypatch) -> dict[str, list]:
    """Counts the library calls that describe images (a global baseline's features, a local
    descriptor's sets) or fit an encoder on cached descriptors, still running them."""
    calls = {"extract": [], "describe": [], "fit": []}
    extract, describe = handcrafted_eval.extract_features, handcrafted_eval.describe_local
    fit = handcrafted_eval.fit_encoder_from_descriptors

    def counting_extract(images, name, **kwargs):
        calls["extract"].append(name)
        return extract(images, name, **kwargs)

    def counting_describe(images, kind, **kwargs):
        calls["describe"].append(kind)
        return describe(images, kind, **kwargs)

    def counting_fit(sets, name, **kwargs):
        calls["fit"].append(name)
        return fit(sets, name, **kwargs)

    monkeypatch.setattr(handcrafted_eval, "extract_features", counting_extract)
    monkeypatch.setattr(handcrafted_eval, "describe_local", counting_describe)
    monkeypatch.setattr(handcrafted_eval, "fit_encoder_from_descriptors", counting_fit)
    return calls


def _forbid_describing(monkeypatch, kind: str) -> None:
    """Makes the ``kind`` local descriptor raise: a run that still describes an image fails."""
    title, _, dim = handcrafted.LOCAL_DESCRIPTORS[kind]

    def refuse(image):
        raise AssertionError(f"{kind} described an image; its cached descriptors should serve")

    monkeypatch.setitem(handcrafted.LOCAL_DESCRIPTORS, kind, (title, refuse, dim))


def _features(directory: pathlib.Path) -> dict[str, dict]:
    """``{part: {"features", "label", "filename"}}`` of a features directory."""
    loaded = {}
    for part in handcrafted_stage.PARTS:
        with np.load(directory / f"features_{part}.npz") as stored:
            loaded[part] = {key: stored[key] for key in ("features", "label", "filename")}
    return loaded


def _current(run_config, name: str) -> tuple[pathlib.Path, pathlib.Path]:
    """The features directory of baseline ``name`` and the results directory that the run's
    settings name now (both finished and verified)."""
    run = stages.Run(run_config)
    results = handcrafted_stage.finished_results(run)
    assert results is not None
    kind, descriptors = handcrafted.get_baseline(name).descriptor, None
    if kind is not None:
        fingerprint = handcrafted_stage.descriptors_fingerprint(run, kind)
        descriptors = artifacts.read_manifest(
            run.stage_dir(handcrafted_stage.DESCRIPTORS_STAGE, fingerprint), fingerprint)
    features_dir = run.stage_dir(handcrafted_stage.FEATURES_STAGE,
                                 handcrafted_stage.features_fingerprint(run, name, descriptors))
    return features_dir, run.workdir / results["directory"]


def _scores(results_dir: pathlib.Path) -> list[dict]:
    """The rows of ``handcrafted.json`` without their timings (which vary from run to run)."""
    rows = json.loads((results_dir / handcrafted_stage.JSON_FILE).read_text())["rows"]
    return [{key: value for key, value in row.items() if not key.endswith("_seconds")}
            for row in rows]


# ---- the setting ------------------------------------------------------------------------------

def test_parse_names_reads_a_list_all_and_nothing():
    assert handcrafted.parse_names(" GCH, lbp ,gch,") == ("gch", "lbp")
    assert handcrafted.parse_names("all") == tuple(handcrafted.REGISTRY)
    assert handcrafted.parse_names("") == handcrafted.parse_names(" , ") == ()


@pytest.mark.parametrize("text, detail", [
    ("gch,nope", "'nope' is not a baseline"),
    ("gch, sentibank", "SentiBank is not built here: the responses"),
    ("all,gch", "'all' names every baseline and stands alone"),
])
def test_a_bad_baseline_is_refused_naming_what_was_received(text, detail):
    with pytest.raises(config_lib.ConfigError) as raised:
        config_lib.ExperimentsConfig(handcrafted=text).validate()
    message = str(raised.value)
    assert detail in message and f"Received: handcrafted={text!r}" in message
    if "all," not in text:
        assert "gch, lch, lbp, gabor, gist, sift_bow" in message  # the valid names


def test_the_default_is_the_global_baselines_and_c_must_be_positive():
    experiments = config_lib.ExperimentsConfig()
    assert all(not handcrafted.get_baseline(name).local
               for name in handcrafted.parse_names(experiments.handcrafted))
    with pytest.raises(config_lib.ConfigError, match="Received: handcrafted_svm_c=0"):
        config_lib.ExperimentsConfig(handcrafted_svm_c=0.0).validate()


def test_the_features_fingerprint_covers_the_encoder_and_the_parameters_not_c():
    global_settings = handcrafted_stage.features_settings("gch", 0, seed=0)
    assert "encoder" not in global_settings  # no seed either: nothing is fitted
    assert global_settings == handcrafted_stage.features_settings("gch", 8, seed=5)
    assert global_settings["parameters"]["GIST_SCALES"] == handcrafted.GIST_SCALES
    assert global_settings["max_side"] == handcrafted.MAX_SIDE
    local = handcrafted_stage.features_settings("hog_bow", 0, seed=0, descriptors_id="d1")
    assert local["encoder"] == {"kind": "bow", "size": 512, "seed": 0,
                                "max_descriptors": handcrafted_eval.DEFAULT_MAX_DESCRIPTORS}
    # The descriptors' content stands for the descriptor parameters and the images.
    assert local["descriptors"] == "d1" and "parameters" not in local
    # 0 means the encoding's usual size; another size or seed is another encoder.
    assert local == handcrafted_stage.features_settings("hog_bow", 512, seed=0,
                                                        descriptors_id="d1")
    assert local != handcrafted_stage.features_settings("hog_bow", 8, seed=0,
                                                        descriptors_id="d1")
    assert local != handcrafted_stage.features_settings("hog_bow", 0, seed=1,
                                                        descriptors_id="d1")
    assert local != handcrafted_stage.features_settings("hog_bow", 0, seed=0,
                                                        descriptors_id="d2")
    assert "svm_c" not in json.dumps(local)
    with pytest.raises(ValueError, match="Received: descriptors_id=None"):
        handcrafted_stage.features_settings("hog_bow", 0, seed=0)
    with pytest.raises(ValueError, match="Received: descriptors_id='d1'"):
        handcrafted_stage.features_settings("gch", 0, seed=0, descriptors_id="d1")


def test_the_descriptors_fingerprint_covers_the_descriptor_not_the_encoder():
    settings = handcrafted_stage.descriptors_settings("hog")
    assert settings["descriptor"] == "hog" and settings["max_side"] == handcrafted.MAX_SIDE
    assert settings["parameters"]["HOG_CELL"] == handcrafted.HOG_CELL
    assert not {"encoder", "seed", "size"} & set(settings)
    assert settings != handcrafted_stage.descriptors_settings("dsift")
    # The three encodings of a descriptor share its descriptors.
    assert {handcrafted.get_baseline(f"sift_{encoding}").descriptor
            for encoding in handcrafted.ENCODINGS} == {"sift"}
    assert handcrafted.get_baseline("gch").descriptor is None
    with pytest.raises(ValueError, match="Received: kind='sift_bow'"):
        handcrafted_stage.descriptors_settings("sift_bow")


def test_the_descriptors_file_is_nps_own_file_written_streaming():
    sets = [np.random.default_rng(index).normal(size=(rows, 5)) for index, rows
            in enumerate([3, 0, 7, 1])]
    handle = io.BytesIO()
    counts = handcrafted_stage.write_ragged_npy(handle, iter(sets), 5)
    np.testing.assert_array_equal(counts, [3, 0, 7, 1])
    assert counts.dtype == np.int64
    expected = io.BytesIO()
    np.save(expected, np.concatenate(sets).astype(np.float16))
    assert handle.getvalue() == expected.getvalue()  # byte for byte np.save's file
    handle.seek(0)
    stored = np.load(handle)
    assert stored.dtype == np.float16 and stored.shape == (11, 5)
    assert handcrafted_stage.write_ragged_npy(io.BytesIO(), [], 5).shape == (0,)
    with pytest.raises(ValueError, match=r"set 1 must be \[n, 5\]. Received: shape=\(2, 4\)"):
        handcrafted_stage.write_ragged_npy(io.BytesIO(), [sets[0], np.zeros((2, 4))], 5)


# ---- the report -------------------------------------------------------------------------------

def _results(accuracy: float, names=("gch", "hog_fv")) -> dict:
    return {"svm_c": 1.0, "seed": 0, "directory": "handcrafted-0123",
            "rows": [{"baseline": name, "title": handcrafted.get_baseline(name).title,
                      "accuracy": accuracy, "balanced_accuracy": accuracy - 0.1,
                      "extract_seconds": 2.0, "svm_seconds": 0.1} for name in names]}


def test_the_report_sets_each_row_beside_the_papers_number():
    text = "\n".join(report_lib.handcrafted_section(_results(0.7), "twitter1/five_agree"))
    assert "### Hand-crafted baselines (Tables 2-3)" in text
    assert "| GCH (`gch`) | 70.00 | 60.00 | 67.91 | 2.0 | 0.1 |" in text
    assert "| HOG + Fisher vector (`hog_fv`) | 70.00 | 60.00 | 76.07 |" in text
    assert "Table 3 of Yang et al." in text and "`handcrafted-0123/handcrafted.csv`" in text
    for title in handcrafted.NOT_BUILT:  # with the paper's number and why
        assert f"- {title} (" in text
    assert "- DeepSentiBank (76.35): the outputs of Chen et al.'s CNN" in text
    # One fold of several, or a dataset the paper does not have: no paper number.
    one_fold = "\n".join(report_lib.handcrafted_section(_results(0.7), "twitter2",
                                                        one_fold=True))
    assert "| GCH (`gch`) | 70.00 | 60.00 | - |" in one_fold
    demo = "\n".join(report_lib.handcrafted_section(_results(0.7), "affect_demo/tiny"))
    assert "| GCH (`gch`) | 70.00 | 60.00 | - |" in demo
    assert "reports no hand-crafted numbers for this dataset" in demo
    fi = "\n".join(report_lib.handcrafted_section(_results(0.7), "fi"))
    assert "Table 2 of Yang et al. has no hand-crafted row" in fi
    assert "- DeepSentiBank (61.54)" in fi


def test_the_folds_report_averages_the_rows_and_sets_the_paper_beside_the_mean():
    per_fold = {0: {"handcrafted": _results(0.6)}, 1: {"handcrafted": _results(0.8)},
                2: {"handcrafted": _results(0.7, names=("gch",))}}
    summary = report_lib.summarize_handcrafted(per_fold)
    assert list(summary["titles"]) == ["gch"]  # the rows every fold has
    assert summary["mean"]["gch"]["accuracy"] == pytest.approx(0.7)
    assert summary["sd"]["gch"]["accuracy"] == pytest.approx(0.1)
    assert summary["accuracy_per_fold"]["gch"] == [0.6, 0.8, 0.7]
    text = "\n".join(report_lib.handcrafted_fold_section(summary, "iapsa"))
    assert ("| GCH (`gch`) | 70.00 ± 10.00 | 60.00 ± 10.00 | 60.00 | 80.00 | 70.00 | 71.76 |"
            in text)
    assert report_lib.summarize_handcrafted({0: {"handcrafted": _results(0.6)}, 1: {}}) is None


# ---- the stage on the tiny demo run -----------------------------------------------------------

def test_experiments_evaluate_the_baselines_and_reuse_their_features(copy_of, monkeypatch):
    config, _ = copy_of
    workdir = pathlib.Path(config.workdir)
    # No per-image figures: they are another stage's, and take seconds an image.
    run_config = replace_config(config, mode="experiments", experiment_images=0,
                                handcrafted=BASELINES, handcrafted_codebook_size=8)
    calls = _count_calls(monkeypatch)
    stages.run(run_config)
    assert sorted(calls["extract"]) == ["gch", "gch", "lbp", "lbp"]
    assert calls["describe"] == ["hog", "hog"]  # the training and test parts' HOG, once each
    assert calls["fit"] == ["hog_bow"]  # once, on the training part
    features_dirs = sorted(workdir.glob("handcrafted_features-*"))
    assert len(features_dirs) == 3
    descriptors_dir = _only(workdir, "handcrafted_descriptors-*")
    assert {path.name for path in descriptors_dir.iterdir()} == {
        "manifest.json", *(f"{stem}_{part}.{ext}{record}"
                           for stem, ext in (("descriptors", "npy"), ("index", "npz"))
                           for part in ("train", "test") for record in ("", ".sha256.json"))}
    for directory in features_dirs:
        assert {path.name for path in directory.iterdir()} >= {
            "features_train.npz", "features_test.npz", "manifest.json"}
    results_dir = _only(workdir, "handcrafted-*")
    rows = _rows(results_dir / "handcrafted.csv")
    assert [row["baseline"] for row in rows] == ["gch", "lbp", "hog_bow"]
    with np.load(features_dirs[0] / "features_test.npz") as stored:
        test_images = len(stored["label"])
    for row in rows:
        assert 0 <= float(row["accuracy"]) <= 1 and 0 <= float(row["balanced_accuracy"]) <= 1
        assert int(row["test_images"]) == test_images
        assert float(row["extract_seconds"]) > 0 and float(row["svm_seconds"]) >= 0
    assert next(row for row in rows if row["baseline"] == "hog_bow")["dim"] == "8"
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert [row["baseline"] for row in metrics["handcrafted"]["rows"]] == ["gch", "lbp", "hog_bow"]
    report = (workdir / "report.md").read_text()
    assert "### Hand-crafted baselines (Tables 2-3)" in report
    assert f"| GCH (`gch`) | {100 * float(rows[0]['accuracy']):.2f} |" in report
    assert f"`{results_dir.name}/handcrafted.csv`" in report and "SentiBank" in report
    # --mode=all ran the experiments with the default experiment_images; this one is new.
    experiments_dirs = sorted(workdir.glob("experiments-*"))
    assert len(experiments_dirs) == 2

    # The same settings again: everything reused, nothing described or fitted.
    for names in calls.values():
        names.clear()
    stages.run(run_config)
    assert calls == {"extract": [], "describe": [], "fit": []}

    # Another C: the SVMs refit on the cached features; the sweeps are not rerun.
    stages.run(replace_config(run_config, handcrafted_svm_c=0.01))
    assert calls == {"extract": [], "describe": [], "fit": []}
    assert len(list(workdir.glob("handcrafted-*"))) == 2
    assert sorted(workdir.glob("handcrafted_features-*")) == features_dirs
    assert sorted(workdir.glob("experiments-*")) == experiments_dirs
    assert "(C = 0.01)" in (workdir / "report.md").read_text()


def test_a_damaged_features_file_is_recomputed_never_trusted(copy_of, monkeypatch):
    config, _ = copy_of
    workdir = pathlib.Path(config.workdir)
    run_config = replace_config(config, mode="experiments", experiment_images=0,
                                handcrafted="gch")
    stages.run(run_config)
    directory = _only(workdir, "handcrafted_features-*")
    path = directory / "features_train.npz"
    with np.load(path) as stored:
        original = stored["features"].copy()
    path.write_bytes(path.read_bytes()[:-20] + b"\0" * 20)  # same size, other bytes
    calls = _count_calls(monkeypatch)
    stages.run(run_config)
    assert calls == {"extract": ["gch"], "describe": [], "fit": []}  # the damaged part only
    with np.load(path) as stored:
        np.testing.assert_array_equal(stored["features"], original)
    assert any(item.name.endswith("features_train.npz")
               for item in (workdir / "damaged").iterdir())
    assert "### Hand-crafted baselines" in (workdir / "report.md").read_text()

    # A codebook larger than the training part's descriptors stops the stage with the fix.
    with pytest.raises(errors.RunError, match=r"Received: size=100000, descriptors.shape=\(\d+, "
                                              r"36\)\)\. Pass a smaller --handcrafted_codebook"):
        stages.run(replace_config(run_config, handcrafted="hog_bow",
                                  handcrafted_codebook_size=100_000))


def test_a_new_codebook_refits_from_the_cached_descriptors_without_describing(copy_of,
                                                                               monkeypatch):
    config, _ = copy_of
    workdir = pathlib.Path(config.workdir)
    run_config = replace_config(config, mode="experiments", experiment_images=0,
                                handcrafted="hog_bow,hog_vlad", handcrafted_codebook_size=4)
    calls = _count_calls(monkeypatch)
    stages.run(run_config)
    # Both baselines encode HOG: one descriptors directory, each part described once.
    assert calls["describe"] == ["hog", "hog"]
    assert calls["fit"] == ["hog_bow", "hog_vlad"]
    descriptors_dir = _only(workdir, "handcrafted_descriptors-*")
    descriptors_bytes = (descriptors_dir / "descriptors_train.npy").read_bytes()

    # Another codebook size: no image is described (HOG would raise), both encoders refit.
    _forbid_describing(monkeypatch, "hog")
    for names in calls.values():
        names.clear()
    new_config = replace_config(run_config, handcrafted_codebook_size=8)
    stages.run(new_config)
    assert calls == {"extract": [], "describe": [], "fit": ["hog_bow", "hog_vlad"]}
    assert _only(workdir, "handcrafted_descriptors-*") == descriptors_dir
    assert (descriptors_dir / "descriptors_train.npy").read_bytes() == descriptors_bytes
    assert {row["baseline"]: row["dim"] for row in _rows(
        _current(new_config, "hog_bow")[1] / "handcrafted.csv")} == {"hog_bow": "8",
                                                                     "hog_vlad": str(8 * 36)}
    assert len(list(workdir.glob("handcrafted_features-*"))) == 4  # K = 4 and 8, each baseline
    monkeypatch.undo()

    # The features from the cache are the library's from the images themselves (the same
    # float16 descriptors, the same sample, the same encoder), in the stored order.
    cached = _features(_current(new_config, "hog_bow")[0])
    run = stages.Run(new_config)
    images = {}
    for part in handcrafted_stage.PARTS:
        for example in data_lib.examples(run.builder,
                                         list(getattr(run.splits, part))).as_numpy_iterator():
            images[example[data_lib.FILENAME_KEY].decode()] = example["image"]
    train, test = handcrafted_eval.baseline_features(
        "hog_bow", [images[name] for name in cached["train"]["filename"]],
        [images[name] for name in cached["test"]["filename"]], size=8, seed=config.seed,
        decode=decode_image_bytes)
    np.testing.assert_array_equal(cached["train"]["features"], train)
    np.testing.assert_array_equal(cached["test"]["features"], test)


@pytest.mark.parametrize("damaged", ["descriptors_train.npy", "index_test.npz"])
def test_a_damaged_descriptors_file_is_recomputed_to_the_same_bytes(copy_of, monkeypatch,
                                                                    damaged):
    config, _ = copy_of
    workdir = pathlib.Path(config.workdir)
    run_config = replace_config(config, mode="experiments", experiment_images=0,
                                handcrafted="hog_bow", handcrafted_codebook_size=4)
    stages.run(run_config)
    descriptors_dir = _only(workdir, "handcrafted_descriptors-*")
    original = {path.name: path.read_bytes() for path in descriptors_dir.glob("descriptors_*")}
    features_dir, results_dir = _current(run_config, "hog_bow")
    features, scores = _features(features_dir), _scores(results_dir)
    path = descriptors_dir / damaged
    data = bytearray(path.read_bytes())
    middle = slice(len(data) // 2, len(data) // 2 + 16)
    data[middle] = bytes(255 - byte for byte in data[middle])
    path.write_bytes(bytes(data))  # same size, other bytes

    calls = _count_calls(monkeypatch)
    stages.run(run_config)
    assert calls["describe"] == ["hog"]  # the damaged part only; the other still verifies
    assert any(item.name.endswith(damaged) for item in (workdir / "damaged").iterdir())
    assert _only(workdir, "handcrafted_descriptors-*") == descriptors_dir
    assert {path.name: path.read_bytes()
            for path in descriptors_dir.glob("descriptors_*")} == original
    # The part's description time is new, hence the descriptors' content id and the features'
    # directory; the features and the scores are the undamaged run's.
    features_again, results_again = _current(run_config, "hog_bow")
    assert features_again != features_dir
    again = _features(features_again)
    for part in handcrafted_stage.PARTS:
        for key, value in features[part].items():
            np.testing.assert_array_equal(again[part][key], value)
    assert _scores(results_again) == scores
