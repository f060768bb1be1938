"""Opening the store: the database URL, engine settings, and schema migrations applied on open.

The URL comes from ``--db``, else the ``OPTISTOCK_DB`` environment variable, else ``optistock.db`` in
the working folder (SQLite). Any SQLAlchemy URL works; SQLite and PostgreSQL are tested.

Every write runs in one transaction. On SQLite transactions start with ``BEGIN IMMEDIATE`` so that
concurrent writers queue (``busy_timeout``) instead of failing half-way; on PostgreSQL rows are locked
with ``SELECT … FOR UPDATE`` by the workflow. Migrations run inside a transaction too (serialised by an
advisory lock on PostgreSQL), so a failed upgrade leaves the previous schema in place.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from optistock.errors import StoreError

logger = logging.getLogger(__name__)

DB_ENV = "OPTISTOCK_DB"
DEFAULT_DB_FILE = "optistock.db"
MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 60_000
_MIGRATION_LOCK_KEY = 0x6F707469  # "opti": PostgreSQL advisory lock serialising migrations


def resolve_url(url: str | None) -> str:
    """``url``, else ``$OPTISTOCK_DB``, else SQLite ``optistock.db`` in the working folder."""
    if url:
        return url
    if os.environ.get(DB_ENV):
        return os.environ[DB_ENV]
    return f"sqlite:///{Path.cwd() / DEFAULT_DB_FILE}"


def display_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


@dataclass
class Store:
    """An open store: an engine whose schema is at the newest revision, and a session factory."""

    engine: Engine
    url: str

    def __post_init__(self) -> None:
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    def session(self) -> Session:
        """A session for callers that commit themselves (``with store.session() as s: … s.commit()``);
        closing it without a commit rolls everything back."""
        return self._sessions()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str | None = None) -> Store:
    """Connect to the store at ``url`` (see :func:`resolve_url`) and bring its schema up to date.

    Raises :class:`StoreError` when the database cannot be opened or was written by a newer optistock.
    """
    resolved = resolve_url(url)
    shown = display_url(resolved)
    try:
        engine = _create_engine(resolved)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"store {shown}: not a usable database URL ({exc})") from exc
    try:
        _migrate(engine, shown)
    except StoreError:
        engine.dispose()
        raise
    except (OperationalError, DBAPIError) as exc:
        engine.dispose()
        reason = str(exc.orig) if getattr(exc, "orig", None) is not None else str(exc)
        raise StoreError(f"store {shown}: cannot open the database ({reason})") from exc
    return Store(engine, resolved)


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).parent
        if not folder.is_dir():
            raise StoreError(f"store {url}: folder {folder} does not exist")
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (see "begin").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock at the start: concurrent writers wait their turn instead of failing
        # with "database is locked" when a reader tries to upgrade to a writer.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _migrate(engine: Engine, shown: str) -> None:
    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    known = {revision.revision for revision in script.walk_revisions()}
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        current = MigrationContext.configure(connection).get_current_revision()
        if current is not None and current not in known:
            raise StoreError(
                f"store {shown}: its schema (revision {current}) is newer than this optistock "
                f"knows (newest {head}); upgrade optistock to use it"
            )
        if current == head:
            return
        if current is None and _has_foreign_tables(connection):
            raise StoreError(
                f"store {shown}: the database holds other tables named like optistock's but no optistock "
                "schema; use another database"
            )
        logger.info("store %s: upgrading schema %s -> %s", shown, current or "(empty)", head)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _has_foreign_tables(connection: Any) -> bool:
    """True when tables with the store's names exist although no optistock schema was recorded."""
    tables = set(inspect(connection).get_table_names())
    return bool(tables & {"runs", "purchase_orders", "purchase_order_lines", "audit_events"})
