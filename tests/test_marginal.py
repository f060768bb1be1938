"""Marginal values of budget, storage and supplier capacity: hand-checked values and finite differences.

For every limit, the reported value per unit must agree with re-solving the fixed-plan LP with the limit
moved: the LP's optimal value v(b) is convex and piecewise linear in the limit b, so the dual lies
between the one-sided slopes, (v(b) − v(b+δ))/δ ≤ value ≤ (v(b−δ) − v(b))/δ.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import BASE_TABLES, write_scenario
from planning import demand_rows
from test_cli import PERIODS, TABLES

from optistock.backend.sets import ModelSets
from optistock.pipeline import RunResult, run_scenario
from optistock.postprocess.marginal import MARGINAL_COLUMNS, MarginalValueError, solve_fixed_plan_lp
from optistock.preprocess.data import load_problem

SOLVER = {"time_limit": 30, "mip_gap": 0.0}


def solve(folder: Path, tables: dict[str, Any], periods: int) -> tuple[RunResult, pd.DataFrame]:
    path = write_scenario(folder, {**BASE_TABLES, **tables}, periods, SOLVER)
    result = run_scenario(path, folder / "out")
    values = pd.read_csv(folder / "out" / "marginal_values.csv")
    assert list(values.columns) == MARGINAL_COLUMNS
    return result, values


def value_of(values: pd.DataFrame, limit: str, period: int, **names: str) -> float:
    rows = values[(values["limit"] == limit) & (values["period"] == period)]
    for column, name in names.items():
        rows = rows[rows[column] == name]
    assert len(rows) == 1
    return float(rows["value_per_unit"].iloc[0])


def moved(result: RunResult, adjust: Callable[[ModelSets], None]) -> float | None:
    try:
        return solve_fixed_plan_lp(result.problem, result.evaluation, adjust).objective
    except MarginalValueError:
        return None  # the fixed plan's decisions leave no room for the smaller limit


def test_budget_value_by_hand(tmp_path: Path) -> None:
    """Budget 5 in period 0 buys 5 of the 10 units needed then; each unit more of budget avoids one
    period of backorder (100) and the unit is bought anyway, in period 1 otherwise: value 100."""
    tables = {
        "demand": demand_rows("A", "W1", [10, 10]),
        "budget": [{"period": 0, "amount": 5.0}, {"period": 1, "amount": 1000.0}],
    }
    result, values = solve(tmp_path / "budget", tables, 2)
    assert value_of(values, "budget", 0) == pytest.approx(100.0)
    assert value_of(values, "budget", 1) == pytest.approx(0.0)
    assert (
        "1,000 more budget in period 0 saves about 100,000.00"
        in result.summary["marginal_values"]["highlights"]
    )
    # the same change made in the input table, re-solved with the plan's decisions fixed
    more = write_scenario(
        tmp_path / "more",
        {**BASE_TABLES, **tables, "budget": [{"period": 0, "amount": 6.0}, {"period": 1, "amount": 1000.0}]},
        2,
        SOLVER,
    )
    base_lp = solve_fixed_plan_lp(result.problem, result.evaluation).objective
    more_lp = solve_fixed_plan_lp(load_problem(more), result.evaluation).objective
    assert base_lp - more_lp == pytest.approx(100.0)


def test_storage_value_by_hand(tmp_path: Path) -> None:
    """S1 (price 1) cannot deliver in period 1, S2 costs 5; room for 4 units bought early in period 0.
    One more unit of room replaces an S2 unit by an S1 unit held one period: 5 − 1 − 0.1 = 3.9."""
    tables = {
        "skus": [{"sku": "A", "unit_volume": 1.0, "holding_cost": 0.1, "shortage_cost": 100.0}],
        "warehouses": [{"warehouse": "W1", "capacity": 4.0}],
        "suppliers": [
            {"supplier": "S1", "order_cost": 0.0, "min_order_value": 0.0},
            {"supplier": "S2", "order_cost": 0.0, "min_order_value": 0.0},
        ],
        "offers": [
            {"supplier": "S1", "sku": "A", "unit_price": 1.0, "moq": 0, "order_multiple": 1, "lead_time": 0},
            {"supplier": "S2", "sku": "A", "unit_price": 5.0, "moq": 0, "order_multiple": 1, "lead_time": 0},
        ],
        "supplier_capacity": [{"supplier": "S1", "period": 1, "capacity": 0}],
        "demand": demand_rows("A", "W1", [0, 10]),
    }
    result, values = solve(tmp_path, tables, 2)
    assert value_of(values, "storage_capacity", 0, warehouse="W1") == pytest.approx(3.9)
    assert value_of(values, "storage_capacity", 1, warehouse="W1") == pytest.approx(0.0)
    # S1's capacity in its outage period is worth 0 here: the plan places no S1 order in period 1 and
    # the marginal LP keeps the plan's purchase orders (opening one is a discrete change: sweep it)
    assert value_of(values, "supplier_capacity", 1, supplier="S1") == 0.0
    assert result.summary["objective"] == pytest.approx(4 * 1 + 0.4 + 6 * 5)


def test_supplier_capacity_value_by_hand(tmp_path: Path) -> None:
    """S1 (price 1) delivers at most 6 units per period, S2 costs 2.5: one more unit saves 1.5."""
    tables = {
        "suppliers": [
            {"supplier": "S1", "order_cost": 0.0, "min_order_value": 0.0, "capacity": 6},
            {"supplier": "S2", "order_cost": 0.0, "min_order_value": 0.0, "capacity": ""},
        ],
        "offers": [
            {"supplier": "S1", "sku": "A", "unit_price": 1.0, "moq": 0, "order_multiple": 1, "lead_time": 0},
            {"supplier": "S2", "sku": "A", "unit_price": 2.5, "moq": 0, "order_multiple": 1, "lead_time": 0},
        ],
        "demand": demand_rows("A", "W1", [10]),
    }
    _, values = solve(tmp_path, tables, 1)
    assert value_of(values, "supplier_capacity", 0, supplier="S1") == pytest.approx(1.5)
    assert len(values) == 2  # W1 storage in period 0 and S1's capacity; S2 is unlimited
    assert value_of(values, "storage_capacity", 0, warehouse="W1") == 0.0


def test_every_reported_value_matches_finite_differences(tmp_path: Path) -> None:
    """The richer instance of the CLI tests, with a tight budget and little storage and capacity."""
    tables = {
        **TABLES,
        "budget": [{"period": t, "amount": 150.0} for t in range(PERIODS)],
        "warehouses": [{"warehouse": "W1", "capacity": 60.0}, {"warehouse": "W2", "capacity": 40.0}],
    }
    path = write_scenario(tmp_path, tables, PERIODS, SOLVER)
    result = run_scenario(path, tmp_path / "out")
    values = pd.read_csv(tmp_path / "out" / "marginal_values.csv")
    assert (values["value_per_unit"] >= 0).all()
    assert (values["value_per_unit"] > 1e-6).sum() >= 2, values  # the instance has binding limits
    base = solve_fixed_plan_lp(result.problem, result.evaluation).objective
    delta = 1e-3
    checked = 0
    for row in values.to_dict("records"):
        limit, period = row["limit"], int(row["period"])
        key: Any = period
        if limit == "storage_capacity":
            key = (row["warehouse"], period)
        elif limit == "supplier_capacity":
            key = (row["supplier"], period)
        field = {
            "budget": "budget",
            "storage_capacity": "storage_capacity",
            "supplier_capacity": "supplier_capacity",
        }

        def shift(amount: float, key: Any = key, name: str = field[limit]) -> Callable[[ModelSets], None]:
            def adjust(sets: ModelSets) -> None:
                limits = getattr(sets, name)
                limits[key] = limits[key] + amount

            return adjust

        up = moved(result, shift(delta))
        assert up is not None
        assert (base - up) / delta <= row["value_per_unit"] + 1e-6, row
        down = moved(result, shift(-delta))
        if down is not None:
            assert row["value_per_unit"] <= (down - base) / delta + 1e-6, row
            checked += 1
    assert checked >= len(values) // 2


def test_the_fixed_plan_lp_is_never_worse_than_the_plan(tmp_path: Path) -> None:
    """The written plan is feasible in the fixed-plan LP, so the LP costs at most the plan's cost."""
    path = write_scenario(tmp_path, TABLES, PERIODS, SOLVER)
    result = run_scenario(path, tmp_path / "out")
    lp = result.summary["marginal_values"]["fixed_plan_lp_objective"]
    assert lp <= result.summary["objective"] + 1e-6


def test_nothing_to_decide_gives_zero_values(tmp_path: Path) -> None:
    result, values = solve(tmp_path, {"budget": [{"period": 0, "amount": 10.0}]}, 2)
    assert result.summary["marginal_values"]["available"] is True
    assert values["limit"].tolist() == ["budget", "storage_capacity", "storage_capacity"]
    assert (values["value_per_unit"] == 0).all()
