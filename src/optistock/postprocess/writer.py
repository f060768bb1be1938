"""Write a run's output folder atomically: everything goes to a temporary sibling folder first."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)


def safe_name(text: str, fallback: str = "unnamed") -> str:
    """``text`` as a file or folder name: runs of other characters than letters, digits and ``._+-``
    become ``_``, and it never starts or ends with ``.`` or ``_`` (so it is never hidden)."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._") or fallback


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n")


def write_json(document: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


def write_folder_atomically(target: Path, fill: Callable[[Path], None]) -> None:
    """Call ``fill(tmp)`` on a fresh temporary folder beside ``target``, then move it into place.

    Readers see either the previous complete folder or the new complete one, never a mix: the old
    folder (if any) is renamed aside, the new one renamed in, and only then is the old one deleted.
    If ``fill`` raises, the temporary folder is removed and ``target`` is untouched.
    """
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        fill(staging)
        fsync_tree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    backup: Path | None = None
    if target.exists():
        backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        backup.rmdir()
        target.rename(backup)
    staging.rename(target)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
    logger.info("wrote %s", target)


def fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder`` to disk (before it is renamed into place)."""
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
