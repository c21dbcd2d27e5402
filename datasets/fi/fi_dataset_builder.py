"""FI, Flickr & Instagram (You, Luo, Jin, Yang, AAAI 2016): 23,308 images in Mikels' 8 emotions.

As distributed (by request to the authors)::

    emotion_dataset/
      amusement/ anger/ awe/ contentment/ disgust/ excitement/ fear/ sadness/
        <file>.jpg                      e.g. amusement_0001.jpg

``manual_dir`` is the ``emotion_dataset/`` folder or the folder that holds it. The images found
are counted, not checked against a list: some copies hold ~23,185 images (banned pictures
removed) instead of 23,308. Polarity: amusement, awe, contentment, excitement -> positive
(16,430 in the paper's Table 1); anger, disgust, fear, sadness -> negative (6,878).

Splits:

* by default one ``train`` split holding everything (``affect_tf.data`` derives the paper's
  random 80 / 5 / 15 split with a fixed seed);
* optionally, the Caffe list files the paper's authors used: when ``train.txt`` is present in
  ``manual_dir`` or in ``emotion_dataset/``, the lists present among ``train.txt``, ``val.txt``
  (or ``validation.txt``) and ``test.txt`` become the ``train``, ``validation`` and ``test``
  splits. Each line is ``<relative path> <0|1>`` (0 = negative); the path is matched on its last
  two components (``<emotion>/<file>``), or on the file name alone when it has one, so lists
  written relative to any folder work. The 0/1 must agree with the folder's polarity. Listed
  images missing on disk are skipped and reported; images in no list are left out (counted).

Features: ``image`` (3-channel), ``label`` (negative / positive), ``emotion`` (Mikels' eight,
alphabetical) and ``image/filename`` (path inside ``emotion_dataset/``, e.g.
``amusement/amusement_0001.jpg``). Files that do not decode (a few truncated downloads) are
skipped and reported.
"""

from __future__ import annotations

import logging

from etils import epath
import tensorflow_datasets as tfds

from affect_tf.config import LABEL_NAMES
from affect_tf.datasets import builder_utils

EMOTIONS = builder_utils.MIKELS_EMOTIONS

# Optional Caffe list files: split -> accepted file names, in order of preference.
LIST_FILES = {"train": ("train.txt",), "validation": ("val.txt", "validation.txt"),
              "test": ("test.txt",)}

# Published counts (README.md beside this file; You et al. 2016): all images, and the copies
# without the banned pictures (about).
EXPECTED_TOTAL = 23308
EXPECTED_TOTAL_REDUCED = 23185

_MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Request FI (the Flickr & Instagram emotion dataset) from its authors: Quanzeng You, Jiebo Luo,
Hailin Jin, Jianchao Yang, "Building a Large Scale Dataset for Image Emotion Recognition: The Fine
Print and The Benchmark", AAAI 2016.
Extract it and pass the extracted `emotion_dataset/` folder (or the folder that holds it) as
`manual_dir`. It must contain one folder per emotion:
  amusement/ anger/ awe/ contentment/ disgust/ excitement/ fear/ sadness/   (<file>.jpg)
Optional: Caffe list files train.txt, val.txt (or validation.txt), test.txt, lines
`<relative path> <0|1>` (0 = negative), in `manual_dir` or in `emotion_dataset/`, to use that
split instead of one `train` split.
"""


def _emotion_folders(root: epath.Path) -> dict[str, epath.Path]:
    """emotion -> its folder under ``root`` (names matched in any spelling / case)."""
    folders = {}
    if root.is_dir():
        for path in sorted(root.iterdir(), key=lambda path: path.name):
            emotion = builder_utils.emotion_in(path.name, EMOTIONS) if path.is_dir() else None
            if emotion is not None and emotion not in folders:
                folders[emotion] = path
    return folders


def locate_dataset(manual_dir: epath.Path) -> tuple[epath.Path, dict[str, epath.Path]]:
    """Finds ``emotion_dataset/``: ``manual_dir`` itself or one of its subfolders.

    Returns:
        The folder and its emotion folders (emotion -> folder).

    Raises:
        FileNotFoundError: no folder holds all eight emotion folders; the message names the
            expected and the missing folders and what ``manual_dir`` holds.
    """
    manual_dir = epath.Path(manual_dir)
    partial = []
    for root in builder_utils.candidate_roots(manual_dir):
        folders = _emotion_folders(root)
        if len(folders) == len(EMOTIONS):
            return root, folders
        if folders or root == manual_dir:
            missing = [f"{emotion}/" for emotion in EMOTIONS if emotion not in folders]
            partial.append(f"  {root}: missing {', '.join(missing)}")
    raise builder_utils.not_found_error(
        "FI was not found in manual_dir. Expected, in manual_dir or one subfolder below it (the "
        f"extracted emotion_dataset/), the eight folders {', '.join(EMOTIONS)}.",
        manual_dir, _MANUAL_DOWNLOAD_INSTRUCTIONS, partial)


def index_images(folders: dict[str, epath.Path]) -> dict[str, str]:
    """Lists the images of each emotion folder: relative path -> emotion.

    Relative paths keep the folder and file names as on disk, e.g.
    ``"amusement/amusement_0001.jpg"``. Non-image files and OS litter are ignored.
    """
    images = {}
    for emotion, folder in folders.items():
        for path in folder.iterdir():
            if builder_utils.is_image_name(path.name) and not path.is_dir():
                images[f"{folder.name}/{path.name}"] = emotion
    return images


def find_list_files(manual_dir: epath.Path, root: epath.Path) -> dict[str, epath.Path]:
    """Finds the optional Caffe list files, in ``root`` first, then in ``manual_dir``.

    Returns:
        split -> list file for the lists present; empty when there is no ``train.txt``.

    Raises:
        FileNotFoundError: ``val.txt`` / ``test.txt`` without ``train.txt``.
    """
    found = {}
    for split, names in LIST_FILES.items():
        for folder in dict.fromkeys([root, epath.Path(manual_dir)]):
            path = next((folder / name for name in names if (folder / name).is_file()), None)
            if path is not None:
                found[split] = path
                break
    if found and "train" not in found:
        raise FileNotFoundError(
            f"FI: found the list file(s) {', '.join(str(path) for path in found.values())} but "
            f"no train.txt beside them. Provide train.txt (and optionally val.txt, test.txt), "
            "or remove the lists to get one `train` split with every image.")
    return found


def parse_list_file(data: bytes | str, name: str) -> list[tuple[int, str, int]]:
    """Parses a Caffe list file: ``<relative path> <0|1>`` a line, 0 = negative.

    CRLF, a BOM, blank lines and trailing spaces are tolerated; a path may contain spaces (the
    label is the last column) and backslashes.

    Args:
        data: the file's content.
        name: the file's name, for error messages.

    Returns:
        ``(line number, path with forward slashes, label)`` per line, in file order.

    Raises:
        ValueError: a malformed line (file and line number named).
    """
    return list(builder_utils.zero_one_lines(data, name, "relative path"))


def resolve_lists(lists: dict[str, list[tuple[int, str, int]]], images: dict[str, str],
                  names: dict[str, str]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Maps each list entry onto an image on disk and checks its label.

    Args:
        lists: split -> parsed entries (``parse_list_file``).
        images: relative path on disk -> emotion (``index_images``).
        names: split -> list file name, for messages.

    Returns:
        ``(found, missing)``: split -> relative paths on disk, in list order; and split ->
        the listed paths with no image on disk (the build reports them as skipped).

    Raises:
        ValueError: a label that contradicts the folder's polarity, a file name that matches
            images in two folders, or an image listed twice (file and line number named).
    """
    by_key, by_name = {}, {}
    for path, emotion in images.items():
        file_name = path.rsplit("/", 1)[-1].lower()
        by_key[(emotion, file_name)] = path
        by_name.setdefault(file_name, []).append(path)
    resolved, missing, first_seen = {}, {}, {}
    for split, entries in lists.items():
        resolved[split], missing[split] = [], []
        for number, listed, label in entries:
            parts = [part for part in listed.split("/") if part]
            file_name = parts[-1].lower()
            emotion = builder_utils.emotion_in(parts[-2], EMOTIONS) if len(parts) >= 2 else None
            path = by_key.get((emotion, file_name))
            if path is None and emotion is None:
                # No emotion folder in the listed path: the file name alone (unique in FI).
                candidates = by_name.get(file_name, [])
                if len(candidates) > 1:
                    raise ValueError(
                        f"{names[split]}, line {number}: {listed} matches several images "
                        f"({', '.join(sorted(candidates))}); list it as <emotion>/<file>.")
                path = candidates[0] if candidates else None
            if path is None:
                missing[split].append(listed)
                continue
            expected = LABEL_NAMES.index(builder_utils.polarity(images[path]))
            if label != expected:
                raise ValueError(
                    f"{names[split]}, line {number}: {listed} is labelled {label} but its folder "
                    f"({images[path]}) is {LABEL_NAMES[expected]} ({expected}).")
            if path in first_seen:
                raise ValueError(f"{names[split]}, line {number}: {path} is listed again (first "
                                 f"in {first_seen[path]}).")
            first_seen[path] = f"{names[split]}, line {number}"
            resolved[split].append(path)
    return resolved, missing


class Builder(builder_utils.ManualDownloadBuilder, tfds.core.GeneratorBasedBuilder,
              title="FI", emotions=EMOTIONS):
    """FI (You et al., 2016): 8 emotion folders; one `train` split, or the Caffe lists' splits."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: folders counted as found, optional Caffe lists."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS

    def _manual_split_generators(self, manual_dir: epath.Path):
        root, folders = locate_dataset(manual_dir)
        images = index_images(folders)
        per_emotion = {emotion: sum(e == emotion for e in images.values()) for emotion in EMOTIONS}
        positive = sum(builder_utils.polarity(e) == "positive" for e in images.values())
        logging.info(
            "fi: %d images in %s: %s; %d positive / %d negative (published %d, or about %d "
            "without the banned pictures).", len(images), root, per_emotion, positive,
            len(images) - positive, EXPECTED_TOTAL, EXPECTED_TOTAL_REDUCED)

        list_files = find_list_files(manual_dir, root)
        if not list_files:
            return {"train": self._generate_examples("train", root, sorted(images), images, [])}
        lists = {split: parse_list_file(path.read_bytes(), str(path))
                 for split, path in list_files.items()}
        resolved, missing = resolve_lists(lists, images,
                                          {s: p.name for s, p in list_files.items()})
        listed = {path for paths in resolved.values() for path in paths}
        unlisted = sorted(set(images) - listed)
        logging.info("fi: splits from list files %s: %s; %d images on disk are in no list and "
                     "are left out%s", {s: str(p) for s, p in list_files.items()},
                     {s: len(p) for s, p in resolved.items()}, len(unlisted),
                     (": " + ", ".join(unlisted[:20])) if unlisted else ".")
        return {split: self._generate_examples(split, root, paths, images, missing[split])
                for split, paths in resolved.items()}

    def _generate_examples(self, split: str, root: epath.Path, paths: list[str],
                           images: dict[str, str], missing: list[str]):
        report = builder_utils.SkipReport(f"fi/{split}")
        for listed in missing:
            report.skip(listed, "listed but missing on disk")
        for path in sorted(paths):
            image = builder_utils.load_image_or_skip(root / path, path, report)
            if image is not None:
                yield report.keep(path, builder_utils.emotion_example(image, images[path], path))
        report.log_total()
