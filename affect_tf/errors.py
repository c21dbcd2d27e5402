"""Failures whose message is the whole story: the command line prints it as one line, exit 2.

A :class:`RunError` says what is wrong (the file or the setting), what was received and the fix;
no traceback adds anything a user needs. Everything else that fails is a bug and keeps its
traceback. Nothing here imports TensorFlow.
"""

from __future__ import annotations


class RunError(Exception):
    """A run cannot go on for a reason the user can fix; the message names it and the fix."""


class MissingStageError(RunError):
    """A stage needs the output of an earlier stage that has not run with these settings."""


class DataError(RunError):
    """The prepared dataset cannot be read, or its splits cannot serve the protocol."""
