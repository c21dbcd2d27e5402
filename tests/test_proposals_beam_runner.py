"""The proposal stage as an Apache Beam pipeline (DirectRunner): same cache, results, resume."""

import numpy as np
import pytest

from affect_tf.config import ProposalConfig
from affect_tf.proposals import beam_runner
from affect_tf.proposals import cache as cache_lib
from affect_tf.proposals import local_runner
from affect_tf.testing import encoded_examples

CONFIG = ProposalConfig(num_candidates=8, max_boxes=300, kmeans_n_init=3)


def _examples():
    pairs = encoded_examples(5, prefix="img", height=120, width=160)
    return pairs + [("img/corrupt.jpg", b"\xff\xd8\xff not really a jpeg")]


def test_beam_stage_matches_the_local_stage_and_resumes(tmp_path):
    local = cache_lib.ProposalCache(tmp_path / "local", CONFIG)
    local_runner.run_proposal_stage(_examples(), local, CONFIG)
    beam_cache = cache_lib.ProposalCache(tmp_path / "beam", CONFIG)
    # A first, partial run (as if killed after two images), then the full run resumes.
    first = beam_runner.run_beam_proposal_stage(_examples()[:2], beam_cache, CONFIG, chunk_size=2)
    assert first["processed"] == 2
    stats = beam_runner.run_beam_proposal_stage(_examples(), beam_cache, CONFIG, chunk_size=2)
    assert stats["skipped_done"] == 2 and stats["processed"] == 4 and stats["corrupt"] == 1
    expected, got = local.load(), beam_cache.load()
    np.testing.assert_array_equal(expected.filenames, got.filenames)
    np.testing.assert_array_equal(expected.num_valid, got.num_valid)
    np.testing.assert_allclose(expected.boxes, got.boxes)
    np.testing.assert_allclose(expected.objectness, got.objectness)
    corrupt = list(got.filenames).index("img/corrupt.jpg")
    assert got.num_valid[corrupt] == 0
    again = beam_runner.run_beam_proposal_stage(_examples(), beam_cache, CONFIG)
    assert again["processed"] == 0 and again["skipped_done"] == 6


def test_chunk_ids_are_stable_and_sort_after_sequential_chunks():
    a = beam_runner.chunk_id_for(["b", "a"])
    assert a == beam_runner.chunk_id_for(["a", "b"])
    assert a != beam_runner.chunk_id_for(["a", "c"])
    assert a >= 10**12


def test_beam_stage_rejects_a_cache_of_other_settings(tmp_path):
    cache = cache_lib.ProposalCache(tmp_path, CONFIG)
    with pytest.raises(ValueError, match="other proposal settings"):
        beam_runner.run_beam_proposal_stage(_examples(), cache, ProposalConfig(num_candidates=9))
