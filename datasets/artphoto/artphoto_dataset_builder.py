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

from affect_tf import builder_utils

_HOMEPAGE = "https://www.imageemotion.org/"
_TOP_FOLDER = "testImages_artphoto"
_ARCHIVE = "testImages_artphoto.zip"

# Published counts (DATASETS.md; Machajdik & Hanbury 2010): (total, positive, negative).
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
    try:
        emotion = builder_utils.normalize_emotion(match.group(1))
    except ValueError:
        return None
    # normalize_emotion also knows EmotionROI's joy/surprise, which ArtPhoto never uses.
    return emotion if emotion in builder_utils.MIKELS_EMOTIONS else None


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
    candidates = builder_utils.candidate_roots(manual_dir)
    # The archive's own top folder first, whatever order the other subfolders sort in.
    candidates.sort(key=lambda path: path != manual_dir and path.name != _TOP_FOLDER)
    for folder in candidates:
        disk_folder = builder_utils.DiskFolder(folder)
        if folder.is_dir() and _holds_artphoto(disk_folder.names()):
            return disk_folder
    archives = [manual_dir] if manual_dir.name.lower().endswith(".zip") else []
    archives += [manual_dir / _ARCHIVE] if manual_dir.is_dir() else []
    for archive in archives:
        if archive.is_file():
            folders = builder_utils.ZipFolder.folders(archive)
            for folder in sorted(folders, key=lambda name: (name != _TOP_FOLDER, name)):
                if _holds_artphoto(folders[folder]):
                    return builder_utils.ZipFolder(archive, folder)
            raise FileNotFoundError(
                f"ArtPhoto: the archive {archive} holds no <emotion>_<digits>.jpg image (folders "
                f"inside: {sorted(folders) or 'none'}). Expected the archive as downloaded.\n\n"
                + _MANUAL_DOWNLOAD_INSTRUCTIONS)
    raise FileNotFoundError(
        f"ArtPhoto was not found in manual_dir. Expected files named <emotion>_<4 digits>.jpg "
        f"(e.g. amusement_0001.jpg, sad_0001.jpg) in manual_dir, in its subfolder {_TOP_FOLDER}/, "
        f"or a {_ARCHIVE} archive.\nmanual_dir {manual_dir} holds: "
        f"{builder_utils.describe_dir(manual_dir)}\n\n" + _MANUAL_DOWNLOAD_INSTRUCTIONS)


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


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for ArtPhoto."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS
    # TFDS looks for README.md / CITATIONS.bib under `resource_path("affect_tf")/datasets/...`,
    # which does not exist in a source checkout (datasets/ is aliased into the package).
    pkg_dir_path = epath.Path(__file__).parent

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=builder_utils.common_features(
                emotion=tfds.features.ClassLabel(names=list(builder_utils.MIKELS_EMOTIONS))),
            supervised_keys=("image", "label"),
            homepage=_HOMEPAGE,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        source = locate_dataset(dl_manager.manual_dir)
        logging.info("artphoto: reading %s", source)
        return {"train": self._generate_examples(source)}

    def _generate_examples(self, source) -> Iterator[tuple[str, dict]]:
        report = builder_utils.SkipReport("artphoto")
        kept = 0
        try:
            for name, emotion in list_examples(source.names(), report):
                image = builder_utils.folder_image_or_skip(source, name, report)
                if image is None:
                    continue
                kept += 1
                yield name, {
                    "image": image,
                    "label": builder_utils.polarity(emotion),
                    "emotion": emotion,
                    "image/filename": name,
                }
        finally:
            source.close()
        report.log_total(kept)
