"""The stream log records go to on the console."""

from __future__ import annotations

import io
import os
import sys
from typing import TextIO


def log_stream() -> TextIO:
    """A stream on a duplicate of standard error's file descriptor (``sys.stderr`` itself where it has
    none, e.g. under a test runner that replaces it).

    While HiGHS solves through Pyomo, Pyomo redirects file descriptors 1 and 2 to keep the solver's
    own output off the console; a log handler writing to ``sys.stderr`` would lose every record of that
    time — HiGHS's progress (``solver: better plan …``) among them. The duplicate is not redirected."""
    try:
        descriptor = sys.stderr.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return sys.stderr
    return os.fdopen(
        os.dup(descriptor),
        "w",
        buffering=1,
        encoding=sys.stderr.encoding or "utf-8",
        errors="backslashreplace",
        closefd=True,
    )
