"""Batch logging: one JSON object per line for machines, a readable display for people.

Every record carries ``time``, ``level``, ``logger`` and ``message``, plus whatever the code passed in
``extra`` (``phase``, ``run_id``, ``time_limit``, …) and ``elapsed_s`` since the batch started.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.logging import RichHandler

from optistock.console import log_stream

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_STARTED = time.monotonic()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "elapsed_s": round(time.monotonic() - _STARTED, 3),
        }
        document.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_info:
            document["traceback"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


def json_handler(stream: IO[str]) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    return handler


def configure_batch_logging(level: int, fmt: str, log_file: Path | None) -> None:
    """Replace the root handlers: JSON lines on stderr unless it is a terminal (``fmt`` ``auto``), or
    as forced by ``fmt``; also JSON lines to ``log_file`` when given."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    stream = log_stream()
    stderr: logging.Handler = (
        json_handler(stream)
        if as_json
        else RichHandler(console=Console(file=stream, stderr=True), show_path=False, rich_tracebacks=False)
    )
    stderr.setLevel(level)
    root.addHandler(stderr)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        to_file = json_handler(log_file.open("a", encoding="utf-8"))
        to_file.setLevel(min(level, logging.INFO))
        root.addHandler(to_file)
    root.setLevel(min(level, logging.INFO))  # the run log keeps INFO whatever stderr shows
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))


class RunLog:
    """``with RunLog(path):`` — every log record of the batch also goes to ``path`` as JSON lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handler: logging.Handler | None = None

    def __enter__(self) -> RunLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = json_handler(self.path.open("a", encoding="utf-8"))
        self.handler.setLevel(logging.INFO)
        logging.getLogger().addHandler(self.handler)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            self.handler.close()
