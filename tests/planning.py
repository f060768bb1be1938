"""Test helpers: solve a scenario given as Python literals and check it with the independent checker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from conftest import BASE_TABLES, write_scenario
from independent_check import Check, check_run

from optistock.pipeline import RunResult, run_scenario


def solve(
    folder: Path, tables: dict[str, Any], periods: int, solver: dict[str, Any] | None = None
) -> tuple[RunResult, Path, Check]:
    """Write ``BASE_TABLES`` overridden by ``tables``, solve, write to ``folder/out``, check independently.

    Asserts the invariants every written plan must satisfy: valid under the independent checker, and
    the reported objective and costs equal to the cost recomputed from the written files.
    """
    path = write_scenario(folder, {**BASE_TABLES, **tables}, periods, solver)
    out = folder / "out"
    result = run_scenario(path, out)
    check = check_run(out, periods)
    assert check.violations == [], check.violations
    summary = json.loads((out / "summary.json").read_text())
    assert abs(summary["objective"] - check.total) <= 1e-6 * max(1.0, abs(check.total))
    for component, value in check.costs.items():
        assert abs(summary["costs"][component] - value) <= 1e-6 * max(1.0, abs(value)), component
    return result, out, check


def orders_of(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "orders.csv")


def transfers_of(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "transfer_plan.csv")


def summary_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text())


def demand_rows(sku: str, warehouse: str, quantities: list[float]) -> list[dict[str, Any]]:
    return [
        {"sku": sku, "warehouse": warehouse, "period": t, "quantity": q} for t, q in enumerate(quantities)
    ]
