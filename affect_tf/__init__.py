"""affect_tf: visual sentiment prediction with affective regions (Yang et al., IEEE TMM 2018)."""

import importlib.util
import pathlib
import sys

__version__ = "0.1.0"


def _alias_checkout_datasets() -> None:
    """Makes the checkout's top-level ``datasets/`` folder importable as ``affect_tf.datasets``.

    Installed, setup.cfg maps that folder to ``affect_tf/datasets``. Run from a source checkout,
    ``affect_tf/`` has no such subfolder, so the builders are attached here. A top-level ``datasets``
    package is never created: it would shadow Hugging Face ``datasets``.
    """
    name = __name__ + ".datasets"
    package_dir = pathlib.Path(__file__).resolve().parent
    if name in sys.modules or (package_dir / "datasets").is_dir():
        return
    source = package_dir.parent / "datasets"
    if not (source / "__init__.py").is_file():
        return
    spec = importlib.util.spec_from_file_location(
            name, source / "__init__.py", submodule_search_locations=[str(source)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_alias_checkout_datasets()
