"""Twitter I (You et al., AAAI 2015): 1,269 tweeted images with AMT sentiment labels.

Five Amazon Mechanical Turk workers labelled each image positive or negative. The dataset comes
in three nested subsets by agreement, one builder config each (five ⊂ four ⊂ three, identical
labels where they overlap):

================  ========  ========  ========
config            images    positive  negative
================  ========  ========  ========
``five_agree``    882       581       301
``four_agree``    1,116     689       427
``three_agree``   1,269     769       500
================  ========  ========  ========

Two packagings circulate and both are accepted (``manual_dir`` is the archive's top folder, for
example ``twitter_dataset/``, or the folder that holds it):

* ``images/<userid>_<tweetid>_<mediakey>.jpg`` with
  ``ground_truth/twitter_{five,four,three}_agrees.txt``;
* ``Agg_AMT_Candidates/<...>.jpg`` with ``{five,four,three}_agree.txt`` beside that folder or
  inside it.

Each label-file line is ``<file name> <0|1>`` (1 = positive). There is no official split (the
protocol is 5-fold cross-validation, derived by ``affect_tf.data``): everything is in ``train``.

Features: ``image`` (3-channel; the JPEG bytes as distributed), ``label`` (negative / positive),
``image/filename`` (the path inside the archive's top folder, e.g. ``images/<name>.jpg``: the
stable key of the proposal cache) and ``agreement`` (3, 4 or 5: how many of the five workers
agreed, i.e. the smallest subset that holds the image, so ``three_agree`` can be filtered down to
the others).
"""

from __future__ import annotations

import dataclasses
import logging

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from affect_tf.datasets import builder_utils

_HOMEPAGE = "https://www.cs.rochester.edu/u/qyou/DeepSent/deepsentiment.html"

# Number of agreeing workers -> how the subset is spelled in the two packagings' file names.
_AGREEMENT_WORDS = {5: "five", 4: "four", 3: "three"}

# Published counts (README.md beside this file; You et al. 2015): (total, positive, negative).
EXPECTED_COUNTS = {5: (882, 581, 301), 4: (1116, 689, 427), 3: (1269, 769, 500)}

_AGG_FOLDER = "Agg_AMT_Candidates"

_MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Request the Twitter I archive (57.4 MB) from the PCNN / "DeepSent" project page of Quanzeng You
(University of Rochester): {homepage}
Extract it and pass the extracted folder (or the folder you extracted it into) as `manual_dir`.
Either packaging is accepted:
  (a) images/<userid>_<tweetid>_<mediakey>.jpg
      ground_truth/twitter_five_agrees.txt, twitter_four_agrees.txt, twitter_three_agrees.txt
  (b) Agg_AMT_Candidates/<...>.jpg
      five_agree.txt, four_agree.txt, three_agree.txt (beside Agg_AMT_Candidates/ or inside it)
Label-file lines: `<file name> <0|1>`, 1 = positive.
""".format(homepage=_HOMEPAGE)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where one copy of Twitter I keeps its images and label files.

    Attributes:
        root: the archive's top folder (holds ``images/`` or ``Agg_AMT_Candidates/``).
        image_dir: the folder holding the images.
        image_prefix: ``image/filename`` prefix: ``"images"`` or ``"Agg_AMT_Candidates"``.
        label_files: agreement (5, 4, 3) -> label file.
    """

    root: epath.Path
    image_dir: epath.Path
    image_prefix: str
    label_files: dict[int, epath.Path]


def _ground_truth_layout(root: epath.Path) -> tuple[Layout | None, list[str]]:
    """Probes packaging (a); returns the layout or the markers missing under ``root``."""
    label_files = {n: root / "ground_truth" / f"twitter_{word}_agrees.txt"
                   for n, word in _AGREEMENT_WORDS.items()}
    missing = [] if (root / "images").is_dir() else ["images/"]
    missing += [f"ground_truth/{path.name}" for path in label_files.values() if not path.is_file()]
    if missing:
        return None, missing
    return Layout(root, root / "images", "images", label_files), []


def _agg_layout(root: epath.Path) -> tuple[Layout | None, list[str]]:
    """Probes packaging (b); returns the layout or the markers missing under ``root``."""
    names = {n: f"{word}_agree.txt" for n, word in _AGREEMENT_WORDS.items()}
    if (root / _AGG_FOLDER).is_dir():
        image_dir, label_dirs = root / _AGG_FOLDER, [root, root / _AGG_FOLDER]
    elif root.name == _AGG_FOLDER:
        # manual_dir is the image folder itself, label files inside it (the parent is outside
        # manual_dir and is not searched).
        image_dir, label_dirs = root, [root]
    else:
        return None, [f"{_AGG_FOLDER}/"] + list(names.values())
    for label_dir in label_dirs:
        label_files = {n: label_dir / name for n, name in names.items()}
        if all(path.is_file() for path in label_files.values()):
            return Layout(root, image_dir, _AGG_FOLDER, label_files), []
    return None, [name for name in names.values()
                  if not any((label_dir / name).is_file() for label_dir in label_dirs)]


def locate_dataset(manual_dir: epath.Path) -> Layout:
    """Finds Twitter I in ``manual_dir`` or one of its subfolders, in either packaging.

    Args:
        manual_dir: what the user passed as ``manual_dir``.

    Returns:
        The layout found (packaging (a) is preferred when a folder holds both).

    Raises:
        FileNotFoundError: neither packaging is there; the message names the expected files,
            what is missing where, and what ``manual_dir`` holds.
    """
    manual_dir = epath.Path(manual_dir)
    partial = []
    for root in builder_utils.candidate_roots(manual_dir):
        # A packaging's markers partly present in a folder: worth naming, with what it lacks.
        started = {
            _ground_truth_layout: (root / "images").is_dir() or (root / "ground_truth").is_dir(),
            _agg_layout: (root / _AGG_FOLDER).is_dir() or root.name == _AGG_FOLDER,
        }
        for probe, seen in started.items():
            layout, missing = probe(root)
            if layout is not None:
                return layout
            if root == manual_dir or seen:
                partial.append(f"  {root}: missing {', '.join(missing)}")
    raise builder_utils.not_found_error(
        "Twitter I was not found in manual_dir. Expected, in manual_dir or one subfolder below "
        "it, either images/ + ground_truth/twitter_{five,four,three}_agrees.txt, or "
        f"{_AGG_FOLDER}/ + {{five,four,three}}_agree.txt.",
        manual_dir, _MANUAL_DOWNLOAD_INSTRUCTIONS, partial)


def parse_label_file(data: bytes | str, name: str) -> dict[str, int]:
    """Parses a Twitter I label file: one ``<file name> <0|1>`` a line, 1 = positive.

    CRLF line ends, a BOM, blank lines and trailing spaces are tolerated. A path in the first
    column (``images/x.jpg``, ``C:\\data\\x.jpg``) is reduced to its file name.

    Args:
        data: the file's content.
        name: the file's name, for error messages.

    Returns:
        file name -> 0 (negative) or 1 (positive), in file order.

    Raises:
        ValueError: a malformed line (file and line number named), or one file listed twice
            with two labels.
    """
    labels: dict[str, int] = {}
    for number, path, label in builder_utils.zero_one_lines(data, name, "file name"):
        file_name = path.rsplit("/", 1)[-1]
        if labels.get(file_name, label) != label:
            raise ValueError(
                f"{name}, line {number}: {file_name} is listed again with label {label}, "
                f"after label {labels[file_name]}.")
        labels[file_name] = label
    return labels


class Twitter1Config(tfds.core.BuilderConfig):
    """One agreement subset of Twitter I."""

    def __init__(self, *, agreement: int, **kwargs):
        """Creates the config.

        Args:
            agreement: how many of the five AMT workers at least agree (5, 4 or 3).
            **kwargs: passed to ``tfds.core.BuilderConfig``.
        """
        super().__init__(**kwargs)
        self.agreement = agreement


# The configs' names as a literal: the command line checks --dataset=<name>/<config> before
# TensorFlow loads, reading this without importing the module (tests check it equals
# Builder.BUILDER_CONFIGS).
CONFIG_NAMES = ("five_agree", "four_agree", "three_agree")


class Builder(builder_utils.ManualDownloadBuilder, tfds.core.GeneratorBasedBuilder,
              title="Twitter I", homepage=_HOMEPAGE):
    """Twitter I (You et al., AAAI 2015), one config per AMT agreement subset."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: both packagings, agreement feature."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [
        Twitter1Config(
            name=f"{word}_agree", agreement=n,
            description=(f"Images on whose sentiment at least {n} of the 5 AMT workers agree "
                         f"({EXPECTED_COUNTS[n][0]:,} images)."))
        for n, word in _AGREEMENT_WORDS.items()
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "five_agree"

    def _features(self) -> dict[str, tfds.features.FeatureConnector]:
        return {"agreement": tfds.features.Scalar(
            dtype=np.int32, doc="How many of the 5 AMT workers agreed (3, 4 or 5).")}

    def _manual_split_generators(self, manual_dir: epath.Path):
        layout = locate_dataset(manual_dir)
        logging.info("twitter1: reading %s (image folder %s)", layout.root, layout.image_dir)

        all_labels = {n: parse_label_file(path.read_bytes(), str(path))
                      for n, path in layout.label_files.items()}
        wanted = self.builder_config.agreement
        labels = all_labels[wanted]
        agreements = {}
        for file_name, label in labels.items():
            # The smallest subset holding the image: five ⊂ four ⊂ three.
            agreements[file_name] = max(n for n, subset in all_labels.items()
                                        if file_name in subset or n == wanted)
            for n, subset in all_labels.items():
                if subset.get(file_name, label) != label:
                    logging.warning(
                        "twitter1: %s is labelled %d in %s but %d in %s; using the latter.",
                        file_name, subset[file_name], layout.label_files[n].name, label,
                        layout.label_files[wanted].name)

        positive = sum(labels.values())
        expected = EXPECTED_COUNTS[wanted]
        logging.info(
            "twitter1/%s: %d images listed (%d positive / %d negative); published: %d (%d / %d).",
            self.builder_config.name, len(labels), positive, len(labels) - positive, *expected)
        return {"train": self._generate_examples(layout, labels, agreements)}

    def _generate_examples(self, layout: Layout, labels: dict[str, int],
                           agreements: dict[str, int]):
        report = builder_utils.SkipReport(f"twitter1/{self.builder_config.name}")
        # One listing of the image folder, so a file name whose case differs from the label
        # file's still resolves, and missing files are known without one stat per image.
        on_disk = {path.name: path for path in layout.image_dir.iterdir()
                   if builder_utils.is_image_name(path.name)}
        by_lower = {name.lower(): name for name in on_disk}
        for file_name in sorted(labels):
            disk_name = file_name if file_name in on_disk else by_lower.get(file_name.lower())
            filename = f"{layout.image_prefix}/{disk_name or file_name}"
            if disk_name is None:
                report.skip(filename, "listed in the label file but missing on disk")
                continue
            image = builder_utils.load_image_or_skip(on_disk[disk_name], filename, report)
            if image is not None:
                yield report.keep(filename, {"image": image, "label": labels[file_name],
                                             "image/filename": filename,
                                             "agreement": agreements[file_name]})
        report.log_total()
