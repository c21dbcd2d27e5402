"""TensorFlow's native start-up lines, kept off stderr while it loads (both command lines)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

# TensorFlow's native libraries print these while loading, before its log level applies (twice:
# two libraries initialize logging), whatever TF_CPP_MIN_LOG_LEVEL says.
STARTUP_NOISE = ("All log messages before absl::InitializeLog", "oneDNN custom operations",
                 "cudart_stub.cc", "cuda_executor", "cuInit", "cpu_feature_guard.cc",
                 "To enable the following instructions", "rebuild TensorFlow with")


@contextlib.contextmanager
def without_native_startup_noise(quiet: bool):
    """Captures file descriptor 2 while TensorFlow loads and replays all but its start-up noise."""
    if not quiet:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines():
                if not any(noise in line for noise in STARTUP_NOISE):
                    print(line, file=sys.stderr)
