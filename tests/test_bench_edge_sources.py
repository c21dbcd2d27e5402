"""Smoke test of benchmarks/bench_edge_sources.py: 3 demo scenes, gradient edges (~6 s)."""

import os
import re
import subprocess
import sys

from affect_tf.testing import REPO_ROOT


def test_bench_edge_sources_prints_a_row_per_source_and_skips_sed_without_its_model():
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_edge_sources.py", "--scenes", "3",
         "--edge_sources", "gradient,sed"],
        cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout
    assert "the first 3 scenes of affect_demo" in output
    assert "m = 16" in output, "the demo's settings, read from configs/demo.flags"
    row = re.search(r"^\s+gradient\s+(\S+) % \(\s*(\d)/3\)\s+(\S+) % \(\s*(\d)/3\)\s+(\S+)$",
                    output, re.MULTILINE)
    assert row, output
    any_hit, top1_hit, seconds = float(row.group(1)), float(row.group(3)), float(row.group(5))
    assert 0 <= top1_hit <= any_hit <= 100 and seconds > 0
    assert re.search(r"^\s+sed\s+skipped: .*sed_model_path", output, re.MULTILINE), output
