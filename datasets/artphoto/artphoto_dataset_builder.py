"""ArtPhoto (Machajdik & Hanbury, ACM MM 2010): 806 artistic photographs, Mikels' eight emotions.

The archive ``testImages_artphoto.zip`` holds one flat folder ``testImages_artphoto/`` of
``<emotion>_<4 digits>.jpg`` files plus ``ReadMe.rtf`` (and a stray ``.DS_Store``). The emotion is
the file-name prefix; sadness is spelled ``sad``:

===========  ======  =========
emotion      images  polarity
===========  ======  =========
amusement    101     positive
anger        77      negative
awe          102     positive
contentment  70      positive
disgust      70      negative
excitement   105     positive
fear         115     negative
sad          166     negative
===========  ======  =========

806 images: 378 positive, 428 negative. No official split (the protocol is stratified 5-fold
cross-validation, derived by ``affect_tf.data``): everything is in ``train``.

``manual_dir`` may be the extracted ``testImages_artphoto/`` folder, the folder holding it, or a
folder holding the ``testImages_artphoto.zip`` archive itself (read in place, not extracted).

Features: ``image`` (3-channel; the JPEG bytes as distributed, or a lossless PNG re-encoding for
grayscale/CMYK/non-JPEG files), ``label`` (negative / positive), ``emotion`` (Mikels' eight) and
``image/filename`` (the file name inside ``testImages_artphoto/``, e.g. ``sad_0001.jpg``; also the
example key and the proposal-cache key).
"""

from __future__ import annotations

import logging
import re
from typing import Iterator, Sequence

from etils import epath
import tensorflow_datasets as tfds

from affect_tf.datasets import builder_utils

_HOMEPAGE = "https://www.imageemotion.org/"
_TOP_FOLDER = "testImages_artphoto"
_ARCHIVE = "testImages_artphoto.zip"

# Published counts (README.md beside this file; Machajdik & Hanbury 2010): (total, positive,
# negative).
EXPECTED_COUNTS = (806, 378, 428)

# `<emotion>_<digits>.<image suffix>`. The digit count is not enforced (4 in the real archive):
# a renamed copy with 3 or 5 digits still has an unambiguous label.
_NAME_PATTERN = re.compile(r"^([A-Za-z]+)_(\d+)\.[A-Za-z]+$")

_MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download `{_ARCHIVE}` from the image-emotion page of Machajdik & Hanbury: {_HOMEPAGE}
Then pass as `manual_dir` any of:
  (a) the extracted folder `{_TOP_FOLDER}/` itself (flat: <emotion>_<4 digits>.jpg, ReadMe.rtf),
  (b) the folder you extracted the archive into (it holds `{_TOP_FOLDER}/`),
  (c) a folder holding `{_ARCHIVE}` as downloaded (read in place, nothing is extracted).
File-name prefixes: amusement, anger, awe, contentment, disgust, excitement, fear, sad.
"""


def emotion_from_name(name: str) -> str | None:
    """Mikels emotion named by an ArtPhoto file name, or None when the name carries none.

    Args:
        name: a file name such as ``"sad_0001.jpg"`` or ``"Amusement_0012.JPG"``.

    Returns:
        The canonical emotion (``"sadness"``, ``"amusement"``), or None when the name does not
        follow ``<emotion>_<digits>.<suffix>`` or its prefix is not one of Mikels' eight.
    """
    match = _NAME_PATTERN.match(name)
    if match is None:
        return None
    # Mikels' eight only: normalize_emotion also knows EmotionROI's joy and surprise.
    return builder_utils.emotion_in(match.group(1), builder_utils.MIKELS_EMOTIONS)


def _holds_artphoto(names: Sequence[str]) -> bool:
    """True when a folder's file names include at least one labelled ArtPhoto image."""
    return any(builder_utils.is_image_name(name) and emotion_from_name(name) for name in names)


def locate_dataset(
        manual_dir: epath.PathLike) -> builder_utils.DiskFolder | builder_utils.ZipFolder:
    """Finds the ArtPhoto images in ``manual_dir``: extracted folder first, then the archive.

    Args:
        manual_dir: what the user passed as ``manual_dir``.

    Returns:
        The folder holding the images, on disk or inside ``testImages_artphoto.zip``.

    Raises:
        FileNotFoundError: no ArtPhoto image in ``manual_dir``, in any subfolder of it, or in the
            archive; the message names what was expected and what ``manual_dir`` holds.
    """
    manual_dir = epath.Path(manual_dir)
    source = builder_utils.find_flat_folder(
        manual_dir, _TOP_FOLDER, _ARCHIVE, _holds_artphoto, title="ArtPhoto",
        content="<emotion>_<digits>.jpg image", instructions=_MANUAL_DOWNLOAD_INSTRUCTIONS)
    if source is None:
        raise builder_utils.not_found_error(
            "ArtPhoto was not found in manual_dir. Expected files named <emotion>_<4 digits>.jpg "
            f"(e.g. amusement_0001.jpg, sad_0001.jpg) in manual_dir, in its subfolder "
            f"{_TOP_FOLDER}/, or a {_ARCHIVE} archive.", manual_dir, _MANUAL_DOWNLOAD_INSTRUCTIONS)
    return source


def list_examples(names: Sequence[str], report: builder_utils.SkipReport) -> list[tuple[str, str]]:
    """Selects the labelled images of a folder listing.

    Args:
        names: the file names in the dataset folder (OS litter already removed).
        report: images whose name carries no Mikels emotion are recorded here as skipped.

    Returns:
        Sorted ``(file name, emotion)`` pairs.
    """
    examples = []
    for name in sorted(names):
        if not builder_utils.is_image_name(name):
            # ReadMe.rtf and the like: documentation, not data.
            logging.info("artphoto: ignoring %s (not an image)", name)
            continue
        emotion = emotion_from_name(name)
        if emotion is None:
            # Skipped rather than fatal: there is no label file to be malformed, only a file
            # name outside the convention (a renamed copy, a file added by hand). It is named in
            # the report and in the total logged at the end, and the published count tells the
            # user whether anything is missing.
            report.skip(name, "file name is not <emotion>_<digits>.<suffix> with one of "
                        f"Mikels' emotions {list(builder_utils.MIKELS_EMOTIONS)} (sad = sadness)")
            continue
        examples.append((name, emotion))
    return examples


class Builder(builder_utils.ManualDownloadBuilder, tfds.core.GeneratorBasedBuilder,
              title="ArtPhoto", homepage=_HOMEPAGE, emotions=builder_utils.MIKELS_EMOTIONS):
    """DatasetBuilder for ArtPhoto."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS

    def _manual_split_generators(self, manual_dir: epath.Path):
        return {"train": self._generate_examples(locate_dataset(manual_dir))}

    def _generate_examples(self, source) -> Iterator[tuple[str, dict]]:
        report = builder_utils.SkipReport("artphoto")
        with source:
            for name, emotion in list_examples(source.names(), report):
                image = builder_utils.folder_image_or_skip(source, name, report)
                if image is not None:
                    yield report.keep(name, builder_utils.emotion_example(image, emotion, name))
        report.log_total()
