"""Config validation, the flags derived from it, and every flagfile parsing into a valid Config."""

import dataclasses
import json
import typing

import pytest
from absl import flags

from affect_tf import config as config_lib
from affect_tf import main
from affect_tf.testing import REPO_ROOT

FLAGFILES = sorted(p.name for p in (REPO_ROOT / "configs").glob("*.flags"))
SECTION_ORDER = ["Run", "Data", "Proposals", "Proposal stage", "Model", "Train", "Evaluation",
                 "Regions", "Fusion", "Baseline", "Export", "Experiments"]


def _leaf_paths(cls=config_lib.Config, path=()):
    """Attribute paths of every leaf field of ``cls``, read from dataclasses.fields alone."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[field.name]):
            yield from _leaf_paths(hints[field.name], path + (field.name,))
        else:
            yield path + (field.name,)


def _get(config, path):
    for name in path:
        config = getattr(config, name)
    return config


def _replace(config, path, value):
    if len(path) == 1:
        return dataclasses.replace(config, **{path[0]: value})
    return dataclasses.replace(
        config, **{path[0]: _replace(getattr(config, path[0]), path[1:], value)})


# Valid values of string settings that a suffix would make invalid (a list of names).
_OTHER_VALUES = {"handcrafted": "gch,hog_fv"}


def _other_value(setting):
    """A valid value different from the default, of the setting's own type."""
    default = setting.default
    if setting.name in _OTHER_VALUES:
        return _OTHER_VALUES[setting.name]
    if setting.choices:
        return next(choice for choice in setting.choices if choice != default)
    if setting.type is bool:
        return not default
    if setting.type is int:
        return default + 1
    if setting.type is float:
        return default / 2 if default else 0.5
    return f"{default}changed" if default else "changed"


def test_defaults_are_the_papers():
    config = config_lib.Config().validate()
    assert config.proposals.num_candidates == 50
    assert config.proposals.min_box_area == 800
    assert config.proposals.max_aspect_ratio == 6
    assert config.regions.alpha == 0.6 and config.fusion.beta == 0.3
    assert config.regions.top_k == 8 and config.fusion.fusion == "concat"
    assert config.train.batch_size == 64 and config.train.steps == 100_000
    assert config.train.conv_learning_rate == 0.001 and config.train.head_learning_rate == 0.01
    assert config.model.image_size == 224


@pytest.mark.parametrize("path, value, message", [
    (("regions", "top_k"), 51, "top_k=51, num_candidates=50"),
    (("fusion", "fusion"), "avg", "Received: fusion='avg'"),
    (("regions", "alpha"), 1.5, "alpha must lie in [0, 1]. Received: alpha=1.5"),
    (("proposals", "edge_source"), "sed", "sed_model_path"),
    (("proposals", "proposal_max_side"), 0, "must be > 0. Received: proposal_max_side=0"),
    (("proposals", "edge_boxes_alpha"), 1.0, "Received: edge_boxes_alpha=1.0"),
    (("data", "fold"), 5, "Received: fold=5"),
    (("data", "num_folds"), 1, "num_folds must be >= 2. Received: num_folds=1"),
    (("data", "dataset"), "", "Received: dataset=''"),
    (("model", "resize_size"), 100, "resize_size=100, image_size=224"),
    (("mode",), "fit", "Received: mode='fit'"),
    (("model", "image_size"), 16, "Received: image_size=16"),
])
def test_invalid_configs_name_what_was_received(path, value, message):
    pattern = message.replace("(", r"\(").replace("[", r"\[")
    with pytest.raises(config_lib.ConfigError, match=pattern):
        _replace(config_lib.Config(), path, value).validate()


def test_fingerprint_is_stable_and_sensitive():
    a = config_lib.fingerprint(config_lib.ProposalConfig())
    assert a == config_lib.fingerprint(config_lib.ProposalConfig())
    assert a != config_lib.fingerprint(config_lib.ProposalConfig(num_candidates=20))
    assert len(a) == 16


def test_a_stored_config_reads_back_whatever_section_held_a_setting():
    config = dataclasses.replace(config_lib.Config(), seed=7,
                                 regions=config_lib.RegionConfig(top_k=3))
    stored = json.loads(json.dumps(dataclasses.asdict(config)))
    assert config_lib.from_stored(stored) == config
    # Before the seed became the run's, config.json held it in the training section; a
    # setting this version no longer knows is ignored.
    del stored["seed"]
    stored["train"]["seed"] = 7
    stored["train"]["retired_setting"] = 1
    assert config_lib.from_stored(stored) == config


def test_the_train_fingerprint_of_a_finished_run_does_not_move_with_the_seeds_section():
    # The seed and resize_size were hashed among the training section's fields when they lived
    # there: a run finished then keeps its train fingerprint (its classifier is reused). The
    # literals are what that version computed for seed 5, paper and random_area augmentation.
    from affect_tf import workspace  # pylint: disable=import-outside-toplevel

    def train_fingerprint(seed, **changes):
        train = config_lib.TrainConfig(**changes)
        return config_lib.fingerprint(
            workspace._train_settings(train, seed, 256))  # pylint: disable=protected-access

    assert train_fingerprint(5) == "f81fce5e5717c5c9"
    assert train_fingerprint(5, augmentation="random_area") == "2e26383922dce495"
    assert train_fingerprint(6) != train_fingerprint(5)


def test_keras_vgg16_weights_file_decides_the_auto_head():
    assert config_lib.keras_vgg16_weights_file("imagenet") is None
    assert config_lib.keras_vgg16_weights_file(
        "/m/vgg16_weights_tf_dim_ordering_tf_kernels.h5") == "top"
    assert config_lib.keras_vgg16_weights_file(
        "C:\\m\\vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5") == "notop"
    assert config_lib.keras_vgg16_weights_file("runs/fi/classifier.weights.h5") is None
    head = lambda weights: config_lib.ModelConfig(weights=weights).resolved_head  # noqa: E731
    assert head("imagenet") == "vgg" and head("hed") == "gap"
    assert head("vgg16_weights_tf_dim_ordering_tf_kernels.h5") == "vgg"
    assert head("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5") == "gap"


def test_setting_names_must_be_unique_across_sections():
    @dataclasses.dataclass(frozen=True)
    class Part:
        seed: int = config_lib.setting(0, "A seed.")

    @dataclasses.dataclass(frozen=True)
    class Root:
        seed: int = config_lib.setting(0, "Another seed.")
        part: Part = dataclasses.field(default_factory=Part)

    with pytest.raises(TypeError, match="unique across sections.*Received: seed in Root and Part"):
        config_lib.settings(Root)


@pytest.fixture
def parsed_flags(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # Flagfiles are named relative to the repository root.
    yield flags.FLAGS
    flags.FLAGS.unparse_flags()


@pytest.mark.parametrize("path", list(_leaf_paths()), ids=lambda path: ".".join(path))
def test_every_leaf_field_is_a_flag_that_a_flagfile_sets(path, parsed_flags, tmp_path):
    setting = next(s for s in config_lib.settings() if s.path == path)
    assert setting.name == path[-1]  # The flag's name is the field's name.
    value = _other_value(setting)
    flagfile = tmp_path / "override.flags"
    flagfile.write_text(f"--{setting.name}={value}\n" if setting.type is not bool
                        else f"--{'' if value else 'no'}{setting.name}\n")
    parsed_flags(["affect_tf", f"--flagfile={flagfile}"])
    config = main.config_from_flags(parsed_flags)
    assert _get(config, path) == value
    assert config == _replace(config_lib.Config(), path, value)


def test_no_flags_give_the_default_config(parsed_flags):
    parsed_flags(["affect_tf"])
    assert main.config_from_flags(parsed_flags) == config_lib.Config().validate()


def test_helpfull_groups_the_flags_by_section_in_data_flow_order():
    groups = {module: {flag.name for flag in module_flags}
              for module, module_flags in flags.FLAGS.flags_by_module_dict().items()
              if module[:1].isdigit()}
    def title(module):  # "03. Proposal stage (affect_tf.config.ProposalStageConfig)"
        return module.split(" ", 1)[1].rsplit(" (", 1)[0]

    titles = [title(module) for module in sorted(groups)]
    assert titles == SECTION_ORDER
    for setting in config_lib.settings():
        (module,) = [m for m in groups if setting.name in groups[m]]
        assert title(module) == setting.section.TITLE


@pytest.mark.parametrize("flagfile", FLAGFILES)
def test_every_flagfile_parses_into_a_valid_config(flagfile, parsed_flags):
    parsed_flags(["affect_tf", f"--flagfile=configs/{flagfile}"])
    config = main.config_from_flags(parsed_flags)
    assert config.workdir.startswith("runs/")
    assert config.data.dataset
    lines = (REPO_ROOT / "configs" / flagfile).read_text().splitlines()
    assert lines[0].startswith("# ")
    assert f"-m affect_tf.main --flagfile=configs/{flagfile}" in lines[0]
    header = [line for line in lines if line.startswith("# ")]
    assert any(line.startswith("# Runtime:") for line in header)
    assert any(line.startswith("# Paper") for line in header)


@pytest.mark.parametrize("flagfile", [f for f in FLAGFILES if f != "demo.flags"])
def test_dataset_flagfiles_state_the_papers_numbers_and_both_runtimes(flagfile, parsed_flags):
    from affect_tf import report

    parsed_flags(["affect_tf", f"--flagfile=configs/{flagfile}"])
    dataset = main.config_from_flags(parsed_flags).data.dataset
    header = " ".join(line for line in (REPO_ROOT / "configs" / flagfile).read_text().splitlines()
                      if line.startswith("# "))
    paper = report.PAPER_ACCURACY[dataset]
    # The numbers the report sets beside the run's: the fine-tuned CNN and AR + concatenation.
    for row in ("fine-tuned VGG16", "ar+concat (K=8)"):
        assert f"{paper[row]:.2f}" in header, (flagfile, row, paper[row])
    assert "GPU" in header and "2 CPU cores" in header


@pytest.mark.parametrize("flagfile", FLAGFILES)
def test_flagfiles_state_only_what_differs_from_the_defaults(flagfile, parsed_flags):
    lines = (REPO_ROOT / "configs" / flagfile).read_text().splitlines()
    names = [line[2:].split("=", 1)[0] for line in lines if line.startswith("--")]
    assert "flagfile" not in names  # No nesting: there are no shared defaults to include.
    # Every flagfile names its dataset, even the demo's (the default, but no paper value).
    names = [name for name in names if name != "dataset"]
    parsed_flags(["affect_tf", f"--flagfile=configs/{flagfile}"])
    repeated = [name for name in names if parsed_flags[name].value == parsed_flags[name].default]
    assert not repeated, f"{flagfile} repeats the defaults of {repeated}"


@pytest.mark.parametrize("flagfile", [f for f in FLAGFILES if f != "demo.flags"])
def test_dataset_flagfiles_keep_the_papers_values(flagfile, parsed_flags):
    parsed_flags(["affect_tf", f"--flagfile=configs/{flagfile}"])
    config = main.config_from_flags(parsed_flags)
    assert config.model.image_size == 224
    assert config.proposals.num_candidates == 50
    assert config.regions.top_k == 8
    assert config.train.batch_size == 64


@pytest.mark.parametrize("user_level, verbosity, expected", [
    (None, 0, "3"), (None, 1, "0"), ("1", 0, "1"), ("1", 2, "1")])
def test_tensorflow_start_up_logs_follow_verbosity(user_level, verbosity, expected, monkeypatch):
    monkeypatch.setattr(main, "_TF_LOG_LEVEL_FROM_USER", user_level is not None)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", user_level or "3")
    main._quiet_tensorflow_unless_verbose(verbosity)
    assert main.os.environ["TF_CPP_MIN_LOG_LEVEL"] == expected


@pytest.mark.parametrize("flagfile", [f for f in FLAGFILES if f != "demo.flags"])
def test_the_authors_code_overlay_follows_any_dataset_flagfile(flagfile, parsed_flags):
    parsed_flags(["affect_tf", f"--flagfile=configs/{flagfile}",
                  "--flagfile=configs/variants/authors_code.flags"])
    config = main.config_from_flags(parsed_flags)
    assert (config.proposals.affinity, config.proposals.num_candidates) == ("authors", 20)
    assert (config.proposals.min_box_side, config.proposals.max_box_side) == (28, 500)
    assert config.regions.ar_formula == "authors" and config.model.region_context == 16
    assert config.evaluation.ten_crop
    assert config.train.batch_size == 32 and config.train.steps == 20_000
    assert config.train.head_learning_rate / config.train.conv_learning_rate == pytest.approx(10)
    assert config.train.lr_decay_every == 4000
    assert config.regions.top_k == 8  # K = 8, as in both the paper and the code.
