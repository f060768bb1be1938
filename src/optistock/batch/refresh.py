"""Tonight's input tables: one snapshot folder built from SQL queries, a refresh folder and the
scenario's own data folder (in that order of precedence), with errors pointing at the real source."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pandas.errors import DatabaseError
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from optistock.batch.config import LoadedBatchConfig
from optistock.errors import InputError
from optistock.preprocess.tables import TABLES, find_table_file
from optistock.store.database import display_url

logger = logging.getLogger(__name__)


@dataclass
class Snapshot:
    folder: Path
    origin: dict[str, str] = field(default_factory=dict)
    """Snapshot file → where its rows came from (a file, or a query)."""
    from_query: set[str] = field(default_factory=set)
    """Snapshot files written from SQL query results (their CSV line n is result row n − 1)."""
    searched: str = ""
    """Where tables were looked for, for errors about a table that is missing everywhere."""

    def locate(self, error: InputError) -> InputError:
        """``error`` re-pointed from the snapshot copy to the real source of the rows."""
        if error.file is None or error.file not in self.origin:
            if error.file is not None and error.file.startswith(str(self.folder)):
                name = Path(error.file).name
                return InputError(f"{error.detail} (looked in {self.searched})", file=name, field=error.field)
            return error
        if error.file in self.from_query:
            row = error.line - 1 if error.line is not None else error.row
            return InputError(error.detail, file=self.origin[error.file], row=row, field=error.field)
        return InputError(
            error.detail, file=self.origin[error.file], line=error.line, row=error.row, field=error.field
        )


def build_snapshot(loaded: LoadedBatchConfig, data_dir: Path, store_url: str, folder: Path) -> Snapshot:
    """Copy or query every input table into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    searched = [str(p) for p in (loaded.refresh_folder, data_dir) if p is not None]
    snapshot = Snapshot(folder, searched=", ".join(searched))
    queries = loaded.sql.tables if loaded.sql is not None else {}
    for name in TABLES:
        if name in queries:
            _query_table(loaded, name, queries[name], store_url, snapshot)
            continue
        source = None
        if loaded.refresh_folder is not None:
            source = find_table_file(loaded.refresh_folder, name)
        if source is None:
            source = find_table_file(data_dir, name)
        if source is None:
            continue
        copy = folder / source.name
        shutil.copy2(source, copy)
        snapshot.origin[str(copy)] = str(source)
    logger.info(
        "input tables refreshed: %d files, %d from SQL", len(snapshot.origin), len(snapshot.from_query)
    )
    return snapshot


def _query_table(
    loaded: LoadedBatchConfig, name: str, query: str, store_url: str, snapshot: Snapshot
) -> None:
    url = loaded.sql.url if loaded.sql is not None and loaded.sql.url else store_url
    where = f"refresh.sql.tables.{name}"
    try:
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                frame = pd.read_sql_query(text(query), connection)
        finally:
            engine.dispose()
    except (SQLAlchemyError, DatabaseError, ImportError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise InputError(
            f"query on {display_url(url)} failed: {reason}", file=str(loaded.path), field=where
        ) from exc
    path = snapshot.folder / f"{name}.csv"
    frame.to_csv(path, index=False, lineterminator="\n")
    snapshot.origin[str(path)] = f"query {where} on {display_url(url)}"
    snapshot.from_query.add(str(path))
