"""The hand-crafted baselines in --mode=experiments: the setting and its refusals, what the
features' fingerprint covers, the report's tables (one run, the folds), and the stage on a
finished tiny demo run: CSV, report, features reused on a rerun and on a new C, a damaged
features file recomputed."""

import csv
import json
import pathlib

import numpy as np
import pytest

from affect_tf import config as config_lib
from affect_tf import errors, stages
from affect_tf import report as report_lib
from affect_tf.experiments import handcrafted, handcrafted_eval, handcrafted_stage
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
    """Counts the library calls that describe images or fit an encoder, still running them."""
    calls = {"extract": [], "fit": []}
    extract, fit = handcrafted_eval.extract_features, handcrafted_eval.fit_descriptor_encoder

    def counting_extract(images, name, **kwargs):
        calls["extract"].append(name)
        return extract(images, name, **kwargs)

    def counting_fit(images, name, **kwargs):
        calls["fit"].append(name)
        return fit(images, name, **kwargs)

    monkeypatch.setattr(handcrafted_eval, "extract_features", counting_extract)
    monkeypatch.setattr(handcrafted_eval, "fit_descriptor_encoder", counting_fit)
    return calls


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
    local = handcrafted_stage.features_settings("hog_bow", 0, seed=0)
    assert local["encoder"] == {"kind": "bow", "size": 512, "seed": 0,
                                "max_descriptors": handcrafted_eval.DEFAULT_MAX_DESCRIPTORS}
    # 0 means the encoding's usual size; another size or seed is another encoder.
    assert local == handcrafted_stage.features_settings("hog_bow", 512, seed=0)
    assert local != handcrafted_stage.features_settings("hog_bow", 8, seed=0)
    assert local != handcrafted_stage.features_settings("hog_bow", 0, seed=1)
    assert "svm_c" not in json.dumps(local)


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
    assert sorted(calls["extract"]) == ["gch", "gch", "hog_bow", "hog_bow", "lbp", "lbp"]
    assert calls["fit"] == ["hog_bow"]  # once, on the training part
    features_dirs = sorted(workdir.glob("handcrafted_features-*"))
    assert len(features_dirs) == 3
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
    calls["extract"].clear()
    calls["fit"].clear()
    stages.run(run_config)
    assert calls == {"extract": [], "fit": []}

    # Another C: the SVMs refit on the cached features; the sweeps are not rerun.
    stages.run(replace_config(run_config, handcrafted_svm_c=0.01))
    assert calls == {"extract": [], "fit": []}
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
    assert calls["extract"] == ["gch"]  # the damaged part only; the test part still verifies
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
