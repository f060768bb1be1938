"""One batch at a time per store, and no stale locks.

The lock is one the operating system or the database releases when its holder dies, so a batch killed
with ``kill -9`` (or a lost machine, for PostgreSQL) never blocks the next night:

- SQLite: an exclusive ``flock`` on ``<database file>.batch-lock`` beside the database;
- PostgreSQL: a session-level advisory lock held on a dedicated connection for the whole batch.

A second batch does not wait: it fails at once with :class:`LockedError` (exit 5) naming the holder.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from optistock.errors import LockedError, StoreError
from optistock.store.database import Store, display_url

ADVISORY_KEY = 0x6F707462  # "optb"


def _holder() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


class BatchLock:
    """``with BatchLock(store):`` — held until the block ends or the process dies."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._file: int | None = None
        self._connection: Any = None

    def __enter__(self) -> BatchLock:
        dialect = self.store.dialect
        if dialect == "sqlite":
            self._lock_file()
        elif dialect == "postgresql":
            self._lock_advisory()
        else:
            raise StoreError(
                f"store {display_url(self.store.url)}: the batch lock supports SQLite and PostgreSQL"
            )
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            os.close(self._file)
            self._file = None
        if self._connection is not None:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
            self._connection.close()
            self._connection = None

    def _lock_file(self) -> None:
        database = make_url(self.store.url).database
        if not database or database == ":memory:":
            raise StoreError("the batch needs a store in a file or a server, not an in-memory database")
        path = Path(database).resolve().with_name(Path(database).name + ".batch-lock")
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 4096, 0).decode("utf-8", "replace").strip()
            os.close(descriptor)
            raise LockedError(
                f"another batch holds the lock on store {display_url(self.store.url)} ({_describe(holder)}); "
                f"nothing was done"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(_holder()).encode(), 0)
        os.fsync(descriptor)
        self._file = descriptor

    def _lock_advisory(self) -> None:
        connection = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}).scalar()
        if not got:
            row = connection.execute(
                text(
                    "SELECT a.pid, a.client_addr, a.backend_start FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.objid = :key AND l.granted"
                ),
                {"key": ADVISORY_KEY},
            ).first()
            connection.close()
            holder = (
                "unknown holder" if row is None else f"server process {row[0]} from {row[1]} since {row[2]}"
            )
            shown = display_url(self.store.url)
            raise LockedError(f"another batch holds the lock on store {shown} ({holder}); nothing was done")
        self._connection = connection


def _describe(holder: str) -> str:
    try:
        info = json.loads(holder)
        return f"process {info['pid']} on {info['host']} since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"
