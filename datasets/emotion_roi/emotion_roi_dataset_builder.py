"""EmotionROI (Peng, Sadovnik, Gallagher, Chen, ICIP 2016): 1,980 images with emotion stimuli maps.

As distributed (``EmotionROI.zip``, Kuan-Chuan Peng's page at Cornell)::

    images/<emotion>/<n>.jpg            anger, disgust, fear, joy, sadness, surprise (330 each)
    ground_truth/<emotion>/<n>.jpg      grey-level emotion stimuli map, same relative name
    training_testing_split/training.txt one "<emotion>/<n>.jpg" a line
    training_testing_split/testing.txt

``manual_dir`` is the extracted archive's top folder or the folder that holds it. The official
split gives the ``train`` and ``test`` splits (said to be 1,386 / 594; the counts found are
logged). Polarity: joy, surprise -> positive; anger, disgust, fear, sadness -> negative
(660 / 1,320).

Features: ``image`` (3-channel), ``label`` (negative / positive), ``emotion`` (the six classes),
``image/filename`` (e.g. ``images/anger/1.jpg``) and ``stimuli_map`` (1-channel, the same size
as ``image``; needed by the region-quality evaluation, which binarizes it).

The same images circulate as Emotion6 (``ground_truth.txt`` of valence / arousal / votes and no
maps); with such a copy the build stops with an error that names the missing maps.
"""

from __future__ import annotations

import io
import logging

from etils import epath
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from affect_tf.datasets import builder_utils
from affect_tf.io import ImageDecodeError, decode_image_bytes, encode_png, is_jpeg

_HOMEPAGE = "http://chenlab.ece.cornell.edu/downloads.html"

EMOTIONS = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
_SPLIT_DIR = "training_testing_split"
_SPLIT_FILES = {"train": "training.txt", "test": "testing.txt"}

# Published counts: images per emotion, and the official split [I] (README.md beside this file).
EXPECTED_PER_EMOTION = 330
EXPECTED_SPLITS = {"train": 1386, "test": 594}

_MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download `EmotionROI.zip` from the authors' page at Cornell (Kuan-Chuan Peng; Chen lab
downloads): {homepage}
Extract it and pass the extracted folder (or the folder you extracted it into) as `manual_dir`.
It must contain:
  images/<emotion>/<n>.jpg           (anger, disgust, fear, joy, sadness, surprise)
  ground_truth/<emotion>/<n>.jpg     (emotion stimuli maps, same names as the images)
  training_testing_split/training.txt and testing.txt  (lines `<emotion>/<n>.jpg`)
Emotion6 (same images, ground_truth.txt, no maps) is not enough: the maps are required.
""".format(homepage=_HOMEPAGE)


def _missing_markers(root: epath.Path) -> list[str]:
    missing = [f"{name}/" for name in ("images", "ground_truth") if not (root / name).is_dir()]
    missing += [f"{_SPLIT_DIR}/{name}" for name in _SPLIT_FILES.values()
                if not (root / _SPLIT_DIR / name).is_file()]
    return missing


def locate_dataset(manual_dir: epath.Path) -> epath.Path:
    """Returns the EmotionROI top folder: ``manual_dir`` itself or one of its subfolders.

    Raises:
        FileNotFoundError: the markers are not there; an Emotion6-only copy (``images/`` without
            ``ground_truth/``) gets a message that names the missing stimuli maps.
    """
    manual_dir = epath.Path(manual_dir)
    partial = []
    for root in builder_utils.candidate_roots(manual_dir):
        missing = _missing_markers(root)
        if not missing:
            return root
        if (root / "images").is_dir() and not (root / "ground_truth").is_dir():
            emotion6 = " (ground_truth.txt found: this is Emotion6)" if (
                root / "ground_truth.txt").is_file() else ""
            raise FileNotFoundError(
                f"EmotionROI's emotion stimuli maps are missing: {root} has images/ but no "
                f"ground_truth/<emotion>/<n>.jpg maps{emotion6}. Emotion6 has the same images but "
                "not the maps, which every example needs (the region-quality evaluation uses "
                f"them). Also missing: {', '.join(m for m in missing if m != 'ground_truth/')}."
                f"\n{root} holds: {builder_utils.describe_dir(root)}\n\n"
                + _MANUAL_DOWNLOAD_INSTRUCTIONS)
        if root == manual_dir or len(missing) < 4:
            partial.append(f"  {root}: missing {', '.join(missing)}")
    raise builder_utils.not_found_error(
        "EmotionROI was not found in manual_dir. Expected, in manual_dir or one subfolder below "
        f"it, images/, ground_truth/ and {_SPLIT_DIR}/training.txt, testing.txt.",
        manual_dir, _MANUAL_DOWNLOAD_INSTRUCTIONS, partial)


def index_tree(folder: epath.Path) -> dict[tuple[str, str], str]:
    """Lists ``<emotion>/<file>`` images under ``images/`` or ``ground_truth/``.

    Emotion folder names are matched in any case; other folders and OS litter are ignored.

    Returns:
        ``(emotion, lower-case file name)`` -> path relative to ``folder``'s parent, e.g.
        ``("anger", "1.jpg") -> "images/anger/1.jpg"``.
    """
    index = {}
    for emotion_dir in sorted(folder.iterdir(), key=lambda path: path.name):
        emotion = (builder_utils.emotion_in(emotion_dir.name, EMOTIONS)
                   if emotion_dir.is_dir() else None)
        if emotion is None:
            if emotion_dir.is_dir() and not builder_utils.is_stray_name(emotion_dir.name):
                logging.warning("emotion_roi: ignoring %s/%s/: not one of %s", folder.name,
                                emotion_dir.name, ", ".join(EMOTIONS))
            continue
        for path in emotion_dir.iterdir():
            if builder_utils.is_image_name(path.name):
                relative = f"{folder.name}/{emotion_dir.name}/{path.name}"
                index[(emotion, path.name.lower())] = relative
    return index


def parse_split_file(data: bytes | str, name: str) -> list[tuple[str, str]]:
    """Parses a split file: one ``<emotion>/<n>.jpg`` a line.

    CRLF, a BOM, blank lines and trailing spaces are tolerated; backslashes and a leading
    ``images/`` (or any longer path) are accepted, only the last two components count; columns
    after the first (a label, say) are ignored.

    Args:
        data: the file's content.
        name: the file's name, for error messages.

    Returns:
        ``(emotion, lower-case file name)`` per line, in file order.

    Raises:
        ValueError: a malformed line, an unknown emotion or a line listed twice (file and line
            number named).
    """
    entries, seen = [], {}
    for number, line in builder_utils.numbered_lines(data):
        # Only the first column counts: tolerate a trailing label or comment column.
        parts = [part for part in line.split()[0].replace("\\", "/").split("/") if part]
        emotion = builder_utils.emotion_in(parts[-2], EMOTIONS) if len(parts) >= 2 else None
        if emotion is None or not builder_utils.is_image_name(parts[-1]):
            raise ValueError(
                f"{name}, line {number}: expected '<emotion>/<n>.jpg' with emotion one of "
                f"{', '.join(EMOTIONS)}. Received: {line!r}")
        entry = (emotion, parts[-1].lower())
        if entry in seen:
            raise ValueError(f"{name}, line {number}: {line} is listed again (first on line "
                             f"{seen[entry]}).")
        seen[entry] = number
        entries.append(entry)
    return entries


def stimuli_map_for_tfds(data: bytes, name: str, size: tuple[int, int]) -> bytes:
    """Returns the grey-level map as 1-channel image bytes of the given size.

    A grayscale JPEG of the right size is kept as distributed; anything else (an RGB-encoded
    grey map, another format, another size) is converted to 8-bit grey and stored as PNG.

    Args:
        data: the map file's bytes.
        name: for messages.
        size: ``(width, height)`` of the image the map belongs to.

    Raises:
        ImageDecodeError: the map does not decode.
    """
    rgb = decode_image_bytes(data, name)  # Validates the whole file, whatever its format.
    with Image.open(io.BytesIO(data)) as probe:
        mode, map_size = probe.mode, probe.size
    if is_jpeg(data) and mode == "L" and map_size == size:
        return data
    grey = Image.fromarray(rgb).convert("L")
    if grey.size != size:
        # The evaluation binarizes the map and compares it with boxes in the image's pixel frame,
        # so the map must cover the image pixel for pixel: stretch it (bilinear, grey levels) to
        # the image's size rather than store a map that does not align.
        logging.warning("emotion_roi: %s is %dx%d but its image is %dx%d; resized to match.",
                        name, *map_size, *size)
        grey = grey.resize(size, Image.BILINEAR)
    return encode_png(np.asarray(grey))


class Builder(builder_utils.ManualDownloadBuilder, tfds.core.GeneratorBasedBuilder,
              title="EmotionROI", homepage=_HOMEPAGE, emotions=EMOTIONS):
    """EmotionROI (Peng et al., 2016): official train/test split, stimuli maps as a feature."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: official split, stimuli maps."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS

    def _features(self) -> dict[str, tfds.features.FeatureConnector]:
        return {"stimuli_map": tfds.features.Image(
            shape=(None, None, 1),
            doc="Grey-level emotion stimuli map (0..255), the size of `image`.")}

    def _manual_split_generators(self, manual_dir: epath.Path):
        root = locate_dataset(manual_dir)
        images = index_tree(root / "images")
        maps = index_tree(root / "ground_truth")
        splits = {}
        for split, file_name in _SPLIT_FILES.items():
            path = root / _SPLIT_DIR / file_name
            splits[split] = parse_split_file(path.read_bytes(), str(path))

        overlap = sorted(set(splits["train"]) & set(splits["test"]))
        if overlap:
            raise ValueError(
                f"{_SPLIT_DIR}/training.txt and testing.txt share {len(overlap)} images, e.g. "
                + ", ".join(f"{emotion}/{name}" for emotion, name in overlap[:5])
                + ": the official split must be disjoint.")
        unlisted = sorted(set(images) - set(splits["train"]) - set(splits["test"]))
        if unlisted:
            logging.warning("emotion_roi: %d images are in neither split file and are left out: "
                            "%s", len(unlisted), ", ".join(images[key] for key in unlisted[:20]))
        per_emotion = {emotion: sum(key[0] == emotion for key in images) for emotion in EMOTIONS}
        logging.info(
            "emotion_roi: %d images on disk %s (published %d each), %d maps; split files list "
            "train %d / test %d (published %d / %d [I]).", len(images), per_emotion,
            EXPECTED_PER_EMOTION, len(maps), len(splits["train"]), len(splits["test"]),
            EXPECTED_SPLITS["train"], EXPECTED_SPLITS["test"])
        return {split: self._generate_examples(split, root, entries, images, maps)
                for split, entries in splits.items()}

    def _generate_examples(self, split: str, root: epath.Path, entries: list[tuple[str, str]],
                           images: dict[tuple[str, str], str], maps: dict[tuple[str, str], str]):
        report = builder_utils.SkipReport(f"emotion_roi/{split}")
        for key in sorted(entries):
            emotion, file_name = key
            filename = images.get(key, f"images/{emotion}/{file_name}")
            if key not in images:
                report.skip(filename, f"listed in {_SPLIT_FILES[split]} but missing on disk")
                continue
            if key not in maps:
                report.skip(filename, f"no stimuli map ground_truth/{emotion}/{file_name}")
                continue
            image = builder_utils.load_image_or_skip(root / filename, filename, report)
            if image is None:
                continue
            with Image.open(io.BytesIO(image)) as probe:
                size = probe.size
            try:
                stimuli_map = stimuli_map_for_tfds((root / maps[key]).read_bytes(), maps[key], size)
            except (OSError, ImageDecodeError) as error:
                report.skip(filename, f"its stimuli map {maps[key]} is unreadable ({error})")
                continue
            yield report.keep(filename, builder_utils.emotion_example(
                image, emotion, filename, stimuli_map=stimuli_map))
        report.log_total()
