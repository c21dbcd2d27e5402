"""Flickr VSO (Borth et al., ACM MM 2013): ~484k Flickr images weakly labelled by their ANP.

The Visual Sentiment Ontology (VSO, SentiBank) is a list of Adjective-Noun Pairs (ANPs) such as
``dark_night``, each with a sentiment score from the adjective and noun sentiment values
(-2 ... +2) and the Flickr images retrieved by searching for it. Users gather the images under
``bi_concepts1553/<adjective_noun>/<file>.jpg`` (the 1,553 ANPs with detectors) beside the ANP
list ``3244ANPs.txt``: three header lines, then lines like
``  dark_night [sentiment: -1.41] [#imgs: 1,660,000]``; lines starting with a digit are adjective
summaries and are skipped.

Label (weak): the sign of the image's ANP sentiment, positive > 0 > negative. ANPs scored exactly
0 carry no polarity: their images are dropped and counted. Images in a folder whose ANP is not in
the list are skipped and reported (per folder, and counted). The paper's table counts 484,222
images: 435,798 positive, 48,424 negative.

No official split (80 / 5 / 15 with a fixed seed, derived by ``affect_tf.data``): everything is in
``train``.

The build runs on Apache Beam, TFDS's scalable path: the driver reads the ANP list and lists the
ANP folders (cheap), then the pipeline lists each folder's images, redistributes them, and reads /
checks / encodes each image on the workers. The same code runs on the local DirectRunner and
unchanged on Dataflow, Flink or Spark (see README.md). Skips are Beam counters (namespace
``flickr_vso``) and are logged, with their totals, at the end of the build.

Features: ``image`` (3-channel; the JPEG bytes as downloaded, or a lossless PNG re-encoding for
PNG/GIF/grayscale/CMYK files), ``label`` (negative / positive), ``image/filename`` (the path from
the dataset root, ``bi_concepts1553/<anp>/<file>``: also the example key and the proposal-cache
key), ``anp`` (as spelled in the ANP list) and ``anp_sentiment`` (its float score).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Iterator, Sequence

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from affect_tf.datasets import builder_utils
from affect_tf.io import ImageDecodeError

_HOMEPAGE = "https://www.ee.columbia.edu/ln/dvmm/vso/download/sentibank.html"
_IMAGES_FOLDER = "bi_concepts1553"
_ANP_LIST = "3244ANPs.txt"
_COUNTER_NAMESPACE = "flickr_vso"

# Published counts (Borth et al. 2013, the paper's dataset table): (total, positive, negative).
EXPECTED_COUNTS = (484_222, 435_798, 48_424)

# `dark_night [sentiment: -1.41] [#imgs: 1,660,000]`; the image count is optional.
_ANP_LINE = re.compile(
    r"(?P<anp>[^\s\[\]]+)\s*\[\s*sentiment\s*:\s*(?P<score>[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)"
    r"\s*\](?:\s*\[\s*#\s*imgs\s*:\s*(?P<count>[\d,]+)\s*\])?", re.IGNORECASE)

_MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Get the VSO / SentiBank material from Columbia DVMM's VSO download page: {_HOMEPAGE}
(the ANP list `{_ANP_LIST}` and the per-ANP Flickr image lists; the images themselves are fetched
from Flickr with the image lists). Arrange them as:
  <manual_dir>/{_ANP_LIST}
  <manual_dir>/{_IMAGES_FOLDER}/<adjective_noun>/<file>.jpg     e.g. {_IMAGES_FOLDER}/dark_night/...
`manual_dir` may also be the folder holding that folder. ~484k images (~50 GB): build with a
Beam runner sized for it (see datasets/flickr_vso/README.md).
"""


@dataclasses.dataclass(frozen=True)
class Anp:
    """One ANP of the list: name as spelled there, sentiment score, image count (or None)."""

    name: str
    sentiment: float
    num_images: int | None
    line: int


def parse_anp_list(data: bytes | str, source: str = _ANP_LIST) -> dict[str, Anp]:
    """Parses ``3244ANPs.txt``.

    Lines before the first ANP line are the header (three in the original) and are skipped, as
    are lines starting with a digit (adjective summaries) and blank lines. CRLF line ends and a
    BOM are tolerated.

    Args:
        data: the file's bytes or text.
        source: the file's name, for messages.

    Returns:
        ANPs by lower-case name (folder names are matched case-insensitively).

    Raises:
        ValueError: a malformed line after the header, or an ANP listed twice with different
            scores; the message names the file and line.
    """
    if isinstance(data, bytes):
        data = data.decode("utf-8-sig", errors="replace")
    anps: dict[str, Anp] = {}
    header = []
    for number, raw in enumerate(data.lstrip("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _ANP_LINE.fullmatch(line)
        # Adjective summaries start with a digit; ANP lines are indented. An indented line that
        # is a well-formed ANP line stays an ANP even if its name starts with a digit (`3d_...`).
        if line[0].isdigit() and (match is None or not raw[0].isspace()):
            continue
        if match is None:
            if not anps:
                header.append(line)
                continue
            raise ValueError(
                f"{source}, line {number}: expected `<adjective>_<noun> [sentiment: <score>] "
                f"[#imgs: <count>]` or an adjective summary starting with a digit. "
                f"Received: {line!r}")
        name = match.group("anp")
        count = match.group("count")
        anp = Anp(name, float(match.group("score")),
                  int(count.replace(",", "")) if count else None, number)
        previous = anps.get(name.lower())
        if previous is not None and previous.sentiment != anp.sentiment:
            raise ValueError(
                f"{source}, line {number}: {name} is listed again with sentiment {anp.sentiment} "
                f"(line {previous.line}: {previous.sentiment}).")
        anps.setdefault(name.lower(), anp)
    if header:
        logging.info("flickr_vso: %s header lines skipped: %s", source, header)
    if not anps:
        raise ValueError(f"{source}: no ANP line found; expected lines like "
                         "`  dark_night [sentiment: -1.41] [#imgs: 1,660,000]`.")
    return anps


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the dataset is: its root, the ANP list and the folder of ANP image folders."""

    root: epath.Path
    anp_list: epath.Path
    images: epath.Path


def _probe(folder: epath.Path) -> Layout | None:
    if not folder.is_dir():
        return None
    anp_lists, image_folders = [], []
    for child in sorted(folder.iterdir(), key=lambda path: path.name):
        name = child.name.lower()
        if re.fullmatch(r"\d*anps?\.txt", name) and not child.is_dir():
            anp_lists.append(child)
        elif name.startswith("bi_concepts") and child.is_dir():
            image_folders.append(child)
    if not anp_lists or not image_folders:
        return None
    # The documented names first, should a copy hold several candidates.
    anp_list = next((p for p in anp_lists if p.name == _ANP_LIST), anp_lists[0])
    images = next((p for p in image_folders if p.name == _IMAGES_FOLDER), image_folders[0])
    return Layout(folder, anp_list, images)


def locate_dataset(manual_dir: epath.PathLike) -> Layout:
    """Finds ``3244ANPs.txt`` beside ``bi_concepts1553/`` in ``manual_dir`` or a subfolder.

    Raises:
        FileNotFoundError: neither level holds both; the message names them and what
            ``manual_dir`` holds.
    """
    manual_dir = epath.Path(manual_dir)
    for folder in builder_utils.candidate_roots(manual_dir):
        layout = _probe(folder)
        if layout is not None:
            return layout
    raise builder_utils.not_found_error(
        f"Flickr VSO was not found in manual_dir. Expected {_ANP_LIST} beside the folder "
        f"{_IMAGES_FOLDER}/ (one subfolder of images per ANP, e.g. {_IMAGES_FOLDER}/dark_night/), "
        f"in manual_dir or in one subfolder of it.", manual_dir, _MANUAL_DOWNLOAD_INSTRUCTIONS)


def plan_folders(folder_names: Sequence[str], anps: dict[str, Anp],
                 report: builder_utils.SkipReport) -> list[tuple[str, str | None, float]]:
    """Matches the ANP folders to the list.

    Args:
        folder_names: the subfolders of ``bi_concepts1553/``.
        anps: the parsed ANP list.
        report: folders whose ANP is not in the list are recorded here.

    Returns:
        Sorted ``(folder, anp, sentiment)``; ``anp`` is None for folders to count but not
        use: ANP unknown (reported) or sentiment exactly 0 (no polarity; logged).
    """
    plan, zero, matched = [], [], 0
    for folder in sorted(folder_names):
        anp = anps.get(folder.lower())
        matched += anp is not None
        if anp is None:
            report.skip(f"{_IMAGES_FOLDER}/{folder}/", f"ANP not in {_ANP_LIST}")
            plan.append((folder, None, float("nan")))
        elif anp.sentiment == 0:
            zero.append(anp.name)
            plan.append((folder, None, 0.0))
        else:
            plan.append((folder, anp.name, anp.sentiment))
    if zero:
        logging.warning("flickr_vso: dropping the images of %d ANPs with sentiment 0 (no "
                        "polarity): %s", len(zero), ", ".join(zero))
    used = sum(anp is not None for _, anp, _ in plan)
    # Expected: the list has 3,244 ANPs, the image folder only the 1,553 with detectors.
    logging.info("flickr_vso: %d folders, %d used; %d of the %d listed ANPs have no folder",
                 len(plan), used, len(anps) - matched, len(anps))
    return plan


def _counter(name: str):
    beam = tfds.core.lazy_imports.apache_beam
    return beam.metrics.Metrics.counter(_COUNTER_NAMESPACE, name)


def list_folder(item: tuple[str, str | None, float], images: str,
                prefix: str) -> Iterator[tuple[str, float, str]]:
    """Beam step: the images of one ANP folder, as ``(anp, sentiment, relative path)``.

    Folders of unknown or zero-sentiment ANPs yield nothing; their images are only counted.

    Args:
        item: ``(folder, anp or None, sentiment)`` from ``plan_folders``.
        images: the ``bi_concepts1553`` folder (a string: Beam pickles the arguments).
        prefix: ``image/filename`` prefix, the images folder's name.
    """
    folder, anp, sentiment = item
    names = sorted(child.name for child in (epath.Path(images) / folder).iterdir()
                   if builder_utils.is_image_name(child.name))
    if anp is None:
        reason = "images_zero_sentiment" if sentiment == 0 else "images_unknown_anp"
        _counter(reason).inc(len(names))
        return
    _counter("anp_folders_listed").inc()
    for name in names:
        yield anp, sentiment, f"{prefix}/{folder}/{name}"


def read_example(item: tuple[str, float, str], root: str) -> Iterator[tuple[str, dict]]:
    """Beam step: reads, checks and encodes one image; yields nothing (counted) on failure.

    Args:
        item: ``(anp, sentiment, relative path)`` from ``list_folder``.
        root: the dataset root (a string: Beam pickles the arguments).
    """
    anp, sentiment, relative = item
    try:
        data = (epath.Path(root) / relative).read_bytes()
    except OSError as error:
        _counter("images_unreadable").inc()
        logging.warning("flickr_vso: skipping %s: cannot be read (%s)", relative, error)
        return
    try:
        image = builder_utils.image_for_tfds(data, relative)
    except ImageDecodeError as error:
        _counter("images_undecodable").inc()
        logging.warning("flickr_vso: skipping %s", error)  # the message names the file
        return
    _counter("images_written").inc()
    yield relative, {
        "image": image,
        "label": "positive" if sentiment > 0 else "negative",
        "image/filename": relative,
        "anp": anp,
        "anp_sentiment": np.float32(sentiment),
    }


class Builder(builder_utils.ManualDownloadBuilder, tfds.core.GeneratorBasedBuilder,
              title="Flickr VSO", homepage=_HOMEPAGE):
    """DatasetBuilder for the Flickr set of the Visual Sentiment Ontology (Apache Beam build)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: label = sign of the ANP sentiment, 0 dropped."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS

    def _features(self) -> dict[str, tfds.features.FeatureConnector]:
        return {
            "anp": tfds.features.Text(doc="Adjective-noun pair, e.g. dark_night."),
            "anp_sentiment": tfds.features.Scalar(
                dtype=np.float32, doc="The ANP's sentiment score in the VSO list."),
        }

    def _manual_split_generators(self, manual_dir: epath.Path):
        layout = locate_dataset(manual_dir)
        anps = parse_anp_list(layout.anp_list.read_bytes(), layout.anp_list.name)
        report = builder_utils.SkipReport("flickr_vso")
        folders = [child.name for child in layout.images.iterdir()
                   if not builder_utils.is_stray_name(child.name) and child.is_dir()]
        plan = plan_folders(folders, anps, report)
        if not any(anp for _, anp, _ in plan):
            raise FileNotFoundError(
                f"Flickr VSO: no folder of {layout.images} is an ANP of {layout.anp_list} with a "
                f"non-zero sentiment (folders: {builder_utils.describe_dir(layout.images)}).")
        return {"train": self._generate_examples(layout, plan)}

    def _generate_examples(self, layout: Layout, plan):
        # A PTransform, not a generator: TFDS then builds the split with Apache Beam. The plan
        # (one item per ANP folder, ~1.5k) is all that goes into the pipeline graph; listing the
        # ~484k files happens on the workers, so no runner's job-size limit is approached.
        beam = tfds.core.lazy_imports.apache_beam
        return (
            "ListAnpFolders" >> beam.Create(plan)
            | "ListImages" >> beam.FlatMap(
                list_folder, images=str(layout.images), prefix=layout.images.name)
            # Folders hold hundreds of images each: without this, one worker would read a whole
            # folder (the steps fuse); with it, images spread over all workers.
            | "Redistribute" >> beam.Reshuffle()
            | "ReadImages" >> beam.FlatMap(read_example, root=str(layout.root)))

    def _process_pipeline_result(self, pipeline_result) -> None:
        """Logs the Beam counters: images written and skipped, by reason."""
        if pipeline_result is None:
            return
        beam = tfds.core.lazy_imports.apache_beam
        try:
            query = pipeline_result.metrics().query(
                beam.metrics.MetricsFilter().with_namespace(_COUNTER_NAMESPACE))
        except (AttributeError, NotImplementedError) as error:
            # Some runners do not report metrics to the launcher; the UI still shows them.
            logging.info("flickr_vso: counters unavailable from this runner (%s)", error)
            return
        totals = {counter.key.metric.name: counter.committed
                  if counter.committed is not None else counter.attempted
                  for counter in query["counters"]}
        skipped = sum(value for name, value in totals.items()
                      if name in ("images_unreadable", "images_undecodable", "images_unknown_anp"))
        (logging.warning if skipped else logging.info)("flickr_vso: %s", ", ".join(
            f"{name}={value}" for name, value in sorted(totals.items())))
