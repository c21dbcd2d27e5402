"""Checks before TensorFlow loads: what they read of the builders without importing them."""

import importlib

import pytest

from affect_tf import preflight


@pytest.mark.parametrize("name", sorted(preflight.project_builders()))
def test_config_names_read_without_importing_equal_the_builders_configs(name):
    module = preflight.project_builders()[name]
    builder = importlib.import_module(
        f"affect_tf.datasets.{name}.{name}_dataset_builder").Builder
    declared = tuple(config.name for config in builder.BUILDER_CONFIGS or ())
    assert preflight.builder_config_names(module) == declared
