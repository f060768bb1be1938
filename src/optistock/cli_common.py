"""What every ``optistock`` command shares: error handling, exit codes, the ``--db`` option, tables."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
import pandas as pd
from rich.console import Console
from rich.table import Table

from optistock.errors import ExitCode, OptistockError
from optistock.store.database import DB_ENV, Store, open_store

logger = logging.getLogger("optistock")

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = """\b
Exit codes:
  0  plan written
  1  unexpected error (use --debug for the traceback)
  2  bad input: scenario YAML or an input table (file, line and field are named)
  3  hard constraints cannot be met (the constraint, warehouse and period are named)
  4  no plan found within the time limit
  5  (optistock batch) another batch holds the lock on the store
  6  conflict: a purchase order changed since it was read (nothing changed; retry)
"""


def handle_errors(command: F) -> F:
    """One clear line on stderr and a documented exit code for every error; traceback with --debug."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return command(*args, **kwargs)
        except OptistockError as exc:
            if debug:
                logger.exception("failed")
            click.echo(f"error: {exc}", err=True)
            sys.exit(int(exc.exit_code))
        except click.exceptions.Exit:
            raise
        except Exception as exc:
            if debug:
                raise
            click.echo(
                f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for details)", err=True
            )
            sys.exit(int(ExitCode.UNEXPECTED))

    return wrapper  # type: ignore[return-value]


def _split_names(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name.strip() for text in value for name in text.split(",") if name.strip())


scenario_names_option = click.option(
    "--scenario",
    "scenario_names",
    multiple=True,
    callback=_split_names,
    help="Named scenario(s) of the file to apply, in order: --scenario a,b (see `optistock scenarios list`).",
)


def db_option(command: F) -> F:
    """``--db URL``: the store (default ``$OPTISTOCK_DB``, else ``optistock.db`` here)."""
    return click.option(
        "--db",
        "db",
        metavar="URL",
        help=f"Store database as an SQLAlchemy URL (default: ${DB_ENV}, else sqlite:///optistock.db here).",
    )(command)


@contextmanager
def store_at(db: str | None) -> Iterator[Store]:
    """The store at ``db`` (see :func:`optistock.store.database.resolve_url`), closed afterwards."""
    store = open_store(db)
    try:
        yield store
    finally:
        store.close()


def print_table(frame: pd.DataFrame, title: str | None = None) -> None:
    """A readable table on stdout (plain text when not on a terminal)."""
    table = Table(title=title, show_lines=False)
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(str(column), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*("" if pd.isna(value) else _cell(value) for value in row))
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def echo_frame(frame: pd.DataFrame, fmt: str, empty: str = "nothing to show") -> None:
    """``frame`` on stdout as ``csv``, ``json`` (records) or a readable ``table``."""
    if fmt == "csv":
        click.echo(frame.to_csv(index=False, lineterminator="\n"), nl=False)
    elif fmt == "json":
        click.echo(frame.to_json(orient="records", date_format="iso", indent=2))
    elif frame.empty:
        click.echo(empty)
    else:
        print_table(frame)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value != int(value) or abs(value) >= 1000 else f"{value:g}"
    return str(value)
