"""TFDS builders of the eight benchmark datasets and the embedded demo (``affect_tf.datasets``).

Layout: one folder per dataset, ``<name>/``, holding ``<name>_dataset_builder.py`` (class
``Builder``), ``README.md`` (TFDS's description: what goes in ``manual_dir``), ``CITATIONS.bib``,
``dummy_data*/`` (a few files in the real layout, with its quirks) and the tests. Helpers shared
by the builders are in ``builder_utils.py``; the demo's scene generator is
``affect_demo/scenes.py``.

This folder is importable as ``affect_tf.datasets`` both installed (setup.cfg maps it there) and
from a checkout (``affect_tf/__init__.py`` aliases it). TFDS looks for ``README.md`` and
``CITATIONS.bib`` under the folder its module name gives, ``affect_tf/datasets/<name>``, which
exists only when installed; so every ``Builder`` sets ``pkg_dir_path`` to its own folder (the
builders of manually downloaded sets through ``builder_utils.ManualDownloadBuilder``).

Tests: one test file per module, beside it, named ``<module>_test.py``. A builder's
``<name>_dataset_builder_test.py`` holds first the ``tfds.testing.DatasetBuilderTestCase``
classes (split sizes on ``dummy_data*/``), then plain pytest functions for everything else:
parsing quirks, layouts and error messages, example content. Build a dataset in a test with
``affect_tf.testing.build_dataset``.
"""
