"""Twitter II (Borth et al., ACM MM 2013, SentiBank): 603 tweeted images, 470 pos. / 133 neg.

As distributed (``twitter.rar`` from Columbia DVMM's VSO download page)::

    twitter/
      groundTruthLabel.txt        TAB-separated, CRLF, header "Image<TAB>Sentiment",
                                  rows "1.jpg<TAB>positive|negative"; ids 1..810
      readme.txt
      partition1/ .. partition5/  <N>.jpg (121/121/121/121/119) and <N>_<hashtag>.txt metadata

``manual_dir`` is the extracted ``twitter/`` folder or the folder that holds it.

The label file lists 810 ids but only 603 have an image (retweets were removed): ids without an
image are expected and only counted. Sixteen ``.jpg`` files are really PNG (one RGBA) or GIF
(palette): they are decoded by content and stored as 3-channel PNG; real JPEGs are stored as
distributed. The five partitions are the official folds: each example carries its ``fold``
(1..5, from ``partitionN``) and everything is in one ``train`` split.

Features: ``image``, ``label`` (negative / positive), ``image/filename`` (path inside
``twitter/``, e.g. ``partition1/1.jpg``) and ``fold`` (int32, 1..5).

(The paper's Table 1 gives 596 images, 463 / 133; its text and the distribution give 603.)
"""

from __future__ import annotations

import logging
import re

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from affect_tf.config import LABEL_NAMES
from affect_tf.datasets import builder_utils

_HOMEPAGE = "https://www.ee.columbia.edu/ln/dvmm/vso/download/twitter_dataset.html"

_LABEL_FILE = "groundTruthLabel.txt"
_NUM_FOLDS = 5
_PARTITIONS = tuple(f"partition{fold}" for fold in range(1, _NUM_FOLDS + 1))

# Published counts (README.md beside this file; Borth et al. 2013): total, positive, negative,
# labelled ids.
EXPECTED_COUNTS = (603, 470, 133)
EXPECTED_LABELLED_IDS = 810

# Images are `<N>.jpg`; metadata `<N>_<hashtag>.txt` and readme.txt do not match.
_IMAGE_NAME = re.compile(r"^(\d+)\.(jpe?g|png|gif)$", re.IGNORECASE)

_MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download `twitter.rar` (Twitter images dataset) from Columbia DVMM's Visual Sentiment Ontology
(VSO / SentiBank) download page: {homepage}
Extract it and pass the extracted `twitter/` folder (or the folder that holds it) as
`manual_dir`. It must contain:
  groundTruthLabel.txt            (Image<TAB>Sentiment rows: 1.jpg<TAB>positive)
  partition1/ ... partition5/     (<N>.jpg images; <N>_<hashtag>.txt files are ignored)
""".format(homepage=_HOMEPAGE)


def locate_dataset(manual_dir: epath.Path) -> epath.Path:
    """Returns the ``twitter/`` folder: ``manual_dir`` itself or one of its subfolders.

    Raises:
        FileNotFoundError: no folder holds ``groundTruthLabel.txt`` and ``partition1..5``; the
            message names what is missing where and what ``manual_dir`` holds.
    """
    manual_dir = epath.Path(manual_dir)
    partial = []
    for root in builder_utils.candidate_roots(manual_dir):
        missing = [] if (root / _LABEL_FILE).is_file() else [_LABEL_FILE]
        missing += [f"{name}/" for name in _PARTITIONS if not (root / name).is_dir()]
        if not missing:
            return root
        if root == manual_dir or len(missing) < 1 + _NUM_FOLDS:
            partial.append(f"  {root}: missing {', '.join(missing)}")
    raise builder_utils.not_found_error(
        f"Twitter II was not found in manual_dir. Expected, in manual_dir or one subfolder below "
        f"it (the extracted twitter/), {_LABEL_FILE} and {', '.join(_PARTITIONS)}/.",
        manual_dir, _MANUAL_DOWNLOAD_INSTRUCTIONS, partial)


def parse_ground_truth(data: bytes | str, name: str = _LABEL_FILE) -> dict[int, str]:
    """Parses ``groundTruthLabel.txt``: an ``Image<TAB>Sentiment`` header, then ``N.jpg<TAB>label``.

    TABs or spaces separate the columns; CRLF, a BOM, blank lines and trailing spaces are
    tolerated; labels are matched case-insensitively. The header is recognized (and skipped) on
    the first non-blank line only.

    Args:
        data: the file's content.
        name: the file's name, for error messages.

    Returns:
        image id N -> ``"positive"`` or ``"negative"``, in file order.

    Raises:
        ValueError: a malformed line or an id listed twice (file and line number named).
    """
    labels: dict[int, str] = {}
    for index, (number, line) in enumerate(builder_utils.numbered_lines(data)):
        fields = line.split()
        if index == 0 and [field.lower() for field in fields] == ["image", "sentiment"]:
            continue
        match = _IMAGE_NAME.match(fields[0]) if len(fields) == 2 else None
        if match is None or fields[1].lower() not in LABEL_NAMES:
            raise ValueError(
                f"{name}, line {number}: expected '<N>.jpg<TAB>positive|negative'. "
                f"Received: {line!r}")
        image_id = int(match.group(1))
        if image_id in labels:
            raise ValueError(f"{name}, line {number}: image {image_id} is listed twice.")
        labels[image_id] = fields[1].lower()
    return labels


def index_images(root: epath.Path) -> dict[int, tuple[int, str]]:
    """Lists ``partitionN/<id>.<ext>`` images: id -> (fold, file name).

    Files that are not ``<digits>.jpg|jpeg|png|gif`` (tweet metadata ``<N>_<hashtag>.txt``,
    OS litter) are ignored. An id found in two partitions keeps its first (lowest) fold; the
    second copy is logged.
    """
    images: dict[int, tuple[int, str]] = {}
    for fold, partition in enumerate(_PARTITIONS, start=1):
        for path in sorted((root / partition).iterdir(), key=lambda path: path.name):
            match = _IMAGE_NAME.match(path.name)
            if match is None or builder_utils.is_stray_name(path.name) or path.is_dir():
                continue
            image_id = int(match.group(1))
            if image_id in images:
                first_fold, first_name = images[image_id]
                logging.warning("twitter2: image %d is in partition%d/%s and partition%d/%s; "
                                "keeping the first.", image_id, first_fold, first_name, fold,
                                path.name)
                continue
            images[image_id] = (fold, path.name)
    return images


class Builder(builder_utils.ManualDownloadBuilder, tfds.core.GeneratorBasedBuilder,
              title="Twitter II", homepage=_HOMEPAGE):
    """Twitter II (Borth et al., 2013): 603 images, official five folds as the `fold` feature."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: fold feature, non-JPEG files decoded by content."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS

    def _features(self) -> dict[str, tfds.features.FeatureConnector]:
        return {"fold": tfds.features.Scalar(
            dtype=np.int32, doc="Official fold 1..5 (the partitionN folder).")}

    def _manual_split_generators(self, manual_dir: epath.Path):
        root = locate_dataset(manual_dir)
        label_path = root / _LABEL_FILE
        labels = parse_ground_truth(label_path.read_bytes(), str(label_path))
        images = index_images(root)

        # The distribution lists 810 ids for 603 images (retweets removed): expected, so only
        # counted here, not reported one by one.
        without_image = sorted(set(labels) - set(images))
        positive = sum(labels[image_id] == "positive" for image_id in images if image_id in labels)
        labelled = sum(image_id in labels for image_id in images)
        per_fold = [sum(image_fold == fold for image_fold, _ in images.values())
                    for fold in range(1, _NUM_FOLDS + 1)]
        logging.info(
            "twitter2: %d labelled ids (published %d), %d without an image (expected); %d images "
            "on disk, per fold %s (published 121/121/121/121/119); %d labelled: %d positive / "
            "%d negative (published %d: %d / %d).", len(labels), EXPECTED_LABELLED_IDS,
            len(without_image), len(images), per_fold, labelled, positive, labelled - positive,
            *EXPECTED_COUNTS)
        return {"train": self._generate_examples(root, labels, images)}

    def _generate_examples(self, root: epath.Path, labels: dict[int, str],
                           images: dict[int, tuple[int, str]]):
        report = builder_utils.SkipReport("twitter2")
        # Deterministic order: by fold, then by numeric id.
        for image_id, (fold, file_name) in sorted(images.items(), key=lambda kv: (kv[1][0], kv[0])):
            filename = f"partition{fold}/{file_name}"
            if image_id not in labels:
                report.skip(filename, f"no row for {image_id}.jpg in {_LABEL_FILE}")
                continue
            image = builder_utils.load_image_or_skip(root / filename, filename, report)
            if image is not None:
                yield report.keep(filename, {"image": image, "label": labels[image_id],
                                             "image/filename": filename, "fold": fold})
        report.log_total()
