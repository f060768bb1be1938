"""Shared helpers: write small scenarios from Python literals."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from ruamel.yaml import YAML

from optistock.preprocess.tables import TABLES

BASE_TABLES: dict[str, list[dict[str, Any]]] = {
    "skus": [{"sku": "A", "unit_volume": 1.0, "holding_cost": 1.0, "shortage_cost": 100.0}],
    "warehouses": [{"warehouse": "W1", "capacity": 1e6}],
    "suppliers": [{"supplier": "S1", "order_cost": 0.0, "min_order_value": 0.0}],
    "offers": [
        {"supplier": "S1", "sku": "A", "unit_price": 1.0, "moq": 0, "order_multiple": 1, "lead_time": 0}
    ],
    "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 0}],
    "demand": [],
}


def write_scenario(
    folder: Path,
    tables: dict[str, list[dict[str, Any]] | pd.DataFrame],
    periods: int,
    solver: dict[str, Any] | None = None,
    name: str = "test",
) -> Path:
    """Write ``tables`` as CSV into ``folder/data`` and a scenario YAML next to it; returns the YAML path."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    for table, rows in tables.items():
        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
        if frame.empty and table in TABLES:
            frame = pd.DataFrame(columns=TABLES[table].column_names)
        frame.to_csv(data / f"{table}.csv", index=False)
    scenario = {
        "name": name,
        "data": "data",
        "horizon": {"periods": periods},
        "solver": {"time_limit": 60, "mip_gap": 0.0, "threads": 1, **(solver or {})},
    }
    path = folder / "scenario.yaml"
    with path.open("w", encoding="utf-8") as handle:
        YAML(typ="safe").dump(scenario, handle)
    return path


@pytest.fixture
def scenario_factory(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1_000_000))

    def make(tables: dict[str, Any], periods: int, solver: dict[str, Any] | None = None) -> Path:
        merged = {**BASE_TABLES, **tables}
        return write_scenario(tmp_path / f"s{next(counter)}", merged, periods, solver)

    return make


PG_URL_ENV = "OPTISTOCK_TEST_PG_URL"
"""A PostgreSQL URL for the store tests (``.ci/run`` starts a server and sets it); unset: SQLite only."""


def _worker_database(url: str) -> str:
    """This pytest-xdist worker's own PostgreSQL test database, ``<database>_<worker>`` on the server of
    ``url``, created on first use, so that workers running at once never empty each other's store;
    ``url`` itself outside xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    from sqlalchemy import create_engine, make_url, text

    given = make_url(url)
    name = f"{given.database}_{worker}"
    engine = create_engine(given, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        found = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name})
        if found.scalar() is None:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return given.set(database=name).render_as_string(hide_password=False)


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store: an SQLite file, or the PostgreSQL test database emptied (skipped without one)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(f"PostgreSQL store tests need {PG_URL_ENV} (set by .ci/run)")
    url = _worker_database(url)
    _reset_postgres(url)
    return url
