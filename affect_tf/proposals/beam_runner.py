"""The proposal stage as an Apache Beam pipeline, for a cluster (Dataflow, Flink, Spark).

Same results, cache and resume behaviour as :func:`affect_tf.proposals.local_runner.run_proposal_stage`:
images already in the cache are skipped, an undecodable image is stored with no boxes (counted in
the ``corrupt`` Beam metric and logged by name on its worker), and each bundle of up to
``chunk_size`` results is written as one atomic chunk. Chunk numbers are derived from the
filenames they hold, so parallel workers never collide and a retried bundle rewrites the same
chunk. The cache directory must be visible to every worker (local disk for the DirectRunner; a
shared file system on a cluster).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Iterable

from affect_tf.config import ProposalConfig
from affect_tf.proposals.cache import ProposalCache, check_cache_matches

logger = logging.getLogger(__name__)
_NAMESPACE = "affect_tf.proposals"


def chunk_id_for(filenames: Iterable[str]) -> int:
    """A chunk number determined by the filenames it holds (12 digits, collision-safe in practice).

    Starts at 10**12 so these chunks sort after those a single writer numbers 0, 1, 2, ...
    """
    digest = hashlib.sha256("\n".join(sorted(filenames)).encode("utf-8")).hexdigest()
    return 10**12 + int(digest[:15], 16) % 10**12


def build_pipeline(root, examples, cache_directory: str, config: ProposalConfig, *,
                   chunk_size: int = 64):
    """Adds the proposal transforms to a Beam pipeline.

    Args:
        root: the ``beam.Pipeline``.
        examples: a PCollection of ``(image/filename, encoded bytes)``.
        cache_directory: the :class:`ProposalCache` directory (its meta.json already written).
        config: proposal settings.
        chunk_size: the most images per written chunk.

    Returns:
        The PCollection of written chunk paths.
    """
    import apache_beam as beam  # noqa: PLC0415  (optional at import time of the package)

    class ProposeFn(beam.DoFn):
        """Decodes and proposes one image; builds its edge detector once per worker."""

        def __init__(self, proposal_config: ProposalConfig):
            self.config = proposal_config
            self.detector = None
            self.counters = {name: beam.metrics.Metrics.counter(_NAMESPACE, name)
                             for name in ("ok", "empty", "corrupt")}

        def setup(self):
            from affect_tf.proposals.edges import make_edge_detector  # noqa: PLC0415

            self.detector = make_edge_detector(self.config)

        def process(self, element):
            from affect_tf.proposals.pipeline import propose_encoded  # noqa: PLC0415

            filename, data = element
            result = propose_encoded(filename, bytes(data), self.config, self.detector)
            self.counters[result.status].inc()
            if result.message:
                logger.warning("proposals: %s: %s", result.filename, result.message)
            yield result.filename, result.proposals

    def write_chunk(records):
        cache = ProposalCache(cache_directory, config)
        records = list(records)
        return cache.append(records, chunk_id=chunk_id_for(name for name, _ in records))

    return (examples
            | "Propose" >> beam.ParDo(ProposeFn(config))
            | "Chunk" >> beam.BatchElements(min_batch_size=1, max_batch_size=chunk_size)
            | "WriteChunk" >> beam.Map(write_chunk))


def _run(pipeline, examples, cache: ProposalCache, config: ProposalConfig, chunk_size: int,
         skipped_done: int) -> dict:
    """Runs the pipeline to the end and reads its counters into stats."""
    import apache_beam as beam  # noqa: PLC0415

    build_pipeline(pipeline, examples, cache.directory, config, chunk_size=chunk_size)
    result = pipeline.run()
    result.wait_until_finish()
    stats = {"processed": 0, "ok": 0, "empty": 0, "corrupt": 0, "skipped_done": skipped_done}
    for name in ("ok", "empty", "corrupt"):
        query = result.metrics().query(beam.metrics.MetricsFilter().with_name(name))
        stats[name] = int(sum(counter.committed or counter.attempted or 0
                              for counter in query["counters"]))
    stats["processed"] = stats["ok"] + stats["empty"] + stats["corrupt"]
    return stats


def run_beam_proposal_stage(examples: Iterable[tuple[str, bytes]], cache: ProposalCache,
                            config: ProposalConfig, *, beam_options=None,
                            chunk_size: int = 64) -> dict:
    """Runs the proposal stage as a Beam pipeline over in-memory ``examples`` not yet cached.

    Args:
        examples: ``(image/filename, encoded bytes)`` pairs (each filename computed once).
        cache: the cache to complete.
        config: proposal settings (must be the cache's).
        beam_options: ``apache_beam`` PipelineOptions (default: the DirectRunner).
        chunk_size: the most images per chunk.

    Returns:
        Stats: ``processed`` (ok + empty + corrupt), ``ok``, ``empty``, ``corrupt``,
        ``skipped_done``.
    """
    import apache_beam as beam  # noqa: PLC0415

    check_cache_matches(cache, config)
    done = cache.done_filenames()
    pending, seen, skipped = [], set(), 0
    for filename, data in examples:
        if filename in done or filename in seen:
            skipped += filename in done
            continue
        seen.add(filename)
        pending.append((filename, data))
    if not pending:
        return {"processed": 0, "ok": 0, "empty": 0, "corrupt": 0, "skipped_done": skipped}
    pipeline = beam.Pipeline(options=beam_options)
    return _run(pipeline, pipeline | "Images" >> beam.Create(pending), cache, config, chunk_size,
                skipped)


def run_beam_proposal_stage_tfds(builder, cache: ProposalCache, config: ProposalConfig, *,
                                 filenames: Iterable[str] | None = None, beam_options=None,
                                 chunk_size: int = 64) -> dict:
    """The cluster path: workers read the prepared TFDS shards themselves (``ReadFromTFDS``).

    Args:
        builder: a prepared TFDS builder (its data_dir visible to the workers).
        cache: the cache to complete (a directory visible to the workers).
        config: proposal settings (must be the cache's).
        filenames: only these ``image/filename`` keys (None: every example of every split).
        beam_options: ``apache_beam`` PipelineOptions (default: the DirectRunner).
        chunk_size: the most images per chunk.

    Returns:
        Stats as :func:`run_beam_proposal_stage` (``skipped_done``: cached before the run).
    """
    import apache_beam as beam  # noqa: PLC0415
    import tensorflow_datasets as tfds  # noqa: PLC0415

    check_cache_matches(cache, config)
    done = frozenset(cache.done_filenames())
    wanted = frozenset(filenames) if filenames is not None else None
    decoders = {key: tfds.decode.SkipDecoding() for key, feature in builder.info.features.items()
                if isinstance(feature, tfds.features.Image)}

    def keep(pair) -> bool:
        return pair[0] not in done and (wanted is None or pair[0] in wanted)

    pipeline = beam.Pipeline(options=beam_options)
    reads = []
    for split in sorted(builder.info.splits.keys()):
        reads.append(pipeline | f"Read-{split}" >> tfds.beam.ReadFromTFDS(
            builder, split=split, decoders=decoders))
    examples = (reads | "Splits" >> beam.Flatten()
                | "AsNumpy" >> beam.Map(tfds.as_numpy)
                | "Pairs" >> beam.Map(lambda ex: (ex["image/filename"].decode("utf-8"),
                                                  ex["image"]))
                | "NotDone" >> beam.Filter(keep))
    skipped = len(done if wanted is None else done & wanted)
    return _run(pipeline, examples, cache, config, chunk_size, skipped)
