"""Config validation and every flagfile parsing into a valid Config."""

import dataclasses
import pathlib

import pytest
from absl import flags

from affect_tf import config as config_lib
from affect_tf import main

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
FLAGFILES = sorted(p.name for p in (REPO_ROOT / "configs").glob("*.flags") if p.name != "base.flags")


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


@pytest.mark.parametrize("change, message", [
    (lambda c: dataclasses.replace(c, regions=dataclasses.replace(c.regions, top_k=51)),
     "top_k=51, num_candidates=50"),
    (lambda c: dataclasses.replace(c, fusion=dataclasses.replace(c.fusion, fusion="avg")),
     "Received: fusion='avg'"),
    (lambda c: dataclasses.replace(c, regions=dataclasses.replace(c.regions, alpha=1.5)),
     "Received: alpha=1.5"),
    (lambda c: dataclasses.replace(c, proposals=dataclasses.replace(c.proposals, edge_source="sed")),
     "sed_model_path"),
    (lambda c: dataclasses.replace(c, data=dataclasses.replace(c.data, fold=5)),
     "Received: fold=5"),
    (lambda c: dataclasses.replace(c, train=dataclasses.replace(c.train, resize_size=100)),
     "resize_size=100, image_size=224"),
    (lambda c: dataclasses.replace(c, mode="fit"), "Received: mode='fit'"),
    (lambda c: dataclasses.replace(c, model=dataclasses.replace(c.model, image_size=16)),
     "Received: image_size=16"),
])
def test_invalid_configs_name_what_was_received(change, message):
    with pytest.raises(config_lib.ConfigError, match=message.replace("(", r"\(")):
        change(config_lib.Config()).validate()


def test_fingerprint_is_stable_and_sensitive():
    a = config_lib.fingerprint(config_lib.ProposalConfig())
    assert a == config_lib.fingerprint(config_lib.ProposalConfig())
    assert a != config_lib.fingerprint(config_lib.ProposalConfig(num_candidates=20))
    assert len(a) == 16


@pytest.fixture
def parsed_flags(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # flagfiles nest configs/base.flags, relative to the root.
    yield flags.FLAGS
    flags.FLAGS.unparse_flags()


@pytest.mark.parametrize("flagfile", FLAGFILES)
def test_every_flagfile_parses_into_a_valid_config(flagfile, parsed_flags):
    parsed_flags(["affect_tf", f"--flagfile=configs/{flagfile}"])
    config = main.config_from_flags(parsed_flags)
    assert config.workdir.startswith("runs/")
    assert config.data.dataset
    first_line = (REPO_ROOT / "configs" / flagfile).read_text().splitlines()[0]
    assert first_line.startswith("# ") and f"-m affect_tf.main --flagfile=configs/{flagfile}" in first_line


@pytest.mark.parametrize("flagfile", [f for f in FLAGFILES if f != "demo.flags"])
def test_dataset_flagfiles_keep_the_papers_values(flagfile, parsed_flags):
    parsed_flags(["affect_tf", f"--flagfile=configs/{flagfile}"])
    config = main.config_from_flags(parsed_flags)
    assert config.model.image_size == 224
    assert config.proposals.num_candidates == 50
    assert config.regions.top_k == 8
    assert config.train.batch_size == 64


def test_flags_and_config_defaults_agree(parsed_flags):
    parsed_flags(["affect_tf"])
    assert main.config_from_flags(parsed_flags) == config_lib.Config().validate()
