"""CP-SAT as a second backend for the same model, cross-checked against HiGHS.

Hand-solved case (``test_hand_solved_with_cpsat``): one SKU, order cost 50, price 1, holding 1, demand 5
in each of two periods, no stock. Ordering 10 at once costs 50 + 10 + 5 = 65, twice 110: optimum 65.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import BASE_TABLES, write_scenario
from hypothesis import HealthCheck, given, settings
from planning import solve
from test_properties import SOLVER, instances

from optistock.backend.cpsat import CpSatSession, decimal_scale, whole_unit_data
from optistock.backend.model import build_model
from optistock.backend.sets import build_sets
from optistock.backend.solve import HighsSession, SolveStatus
from optistock.errors import InputError
from optistock.postprocess.extract import extract_plan
from optistock.postprocess.simulate import evaluate_plan
from optistock.preprocess.data import ProblemData, load_problem
from optistock.preprocess.scenario import SolverSettings

SETTINGS = SolverSettings(time_limit=30, mip_gap=0.0, threads=1)

FIXED_COST: dict[str, Any] = {
    "suppliers": [{"supplier": "S1", "order_cost": 50.0, "min_order_value": 0.0}],
    "demand": [{"sku": "A", "warehouse": "W1", "period": t, "quantity": 5} for t in (0, 1)],
}


def _load(tables: dict[str, Any], periods: int, folder: Path) -> ProblemData:
    return load_problem(write_scenario(folder, {**BASE_TABLES, **tables}, periods, SOLVER))


def test_decimal_scale() -> None:
    assert decimal_scale(np.array([1.0, 2.0])) == (1, True)
    assert decimal_scale(np.array([0.5, 2.25])) == (100, True)
    assert decimal_scale(np.array([0.0595, 12.85])) == (10_000, True)
    assert decimal_scale(np.array([1 / 3])) == (1_000_000, False)


def test_hand_solved_with_cpsat(tmp_path: Path) -> None:
    problem = _load(FIXED_COST, 2, tmp_path)
    sets = build_sets(problem, all_stock_sign_cells=True)
    model = build_model(problem, sets)
    result = CpSatSession(HighsSession(model), problem, sets).solve(SETTINGS)
    assert result.status is SolveStatus.OPTIMAL
    assert result.solver == "cpsat"
    assert result.objective == pytest.approx(65.0)
    assert result.best_bound == pytest.approx(65.0)
    orders, _ = extract_plan(model)
    assert orders["quantity"].tolist() == [10]


def test_fractional_prices_keep_the_bound_below_the_cost(tmp_path: Path) -> None:
    """A price of 1/3 cannot be scaled whole: the objective is rounded down, so the bound is below the
    exact optimum (65 − 10 + 10/3 = 58.33…) and the plan is the same."""
    offers = [{**BASE_TABLES["offers"][0], "unit_price": 1 / 3}]
    problem = _load({**FIXED_COST, "offers": offers}, 2, tmp_path)
    sets = build_sets(problem, all_stock_sign_cells=True)
    model = build_model(problem, sets)
    result = CpSatSession(HighsSession(model), problem, sets).solve(SETTINGS)
    assert result.objective == pytest.approx(55.0 + 10 / 3)
    assert result.best_bound is not None
    assert result.best_bound <= 55.0 + 10 / 3 + 1e-9
    assert result.best_bound >= 55.0 + 10 / 3 - 1e-3


def test_fractional_demand_is_refused(tmp_path: Path) -> None:
    demand = [{"sku": "A", "warehouse": "W1", "period": 0, "quantity": 2.5}]
    problem = _load({"demand": demand}, 1, tmp_path)
    assert whole_unit_data(problem) == ["demand.quantity"]
    sets = build_sets(problem)
    with pytest.raises(InputError, match="whole units"):
        CpSatSession(HighsSession(build_model(problem, sets)), problem, sets)


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_cpsat_and_highs_agree_on_the_optimum(case: tuple[dict[str, Any], int]) -> None:
    """Random small instances (MOQ, packs, price breaks, order costs, minimum order values, capacity,
    storage, budget, transfers), the exact model with every stock-sign binary, solved from scratch by
    each backend: same optimum, CP-SAT's plan re-simulates valid at that cost, and its bound is below."""
    tables, periods = case
    with tempfile.TemporaryDirectory() as name:
        problem = _load(tables, periods, Path(name))
        sets = build_sets(problem, all_stock_sign_cells=True)
        highs_model = build_model(problem, sets)
        if highs_model.nvariables() == 0:
            return
        optimum = HighsSession(highs_model).solve(SETTINGS).objective
        assert optimum is not None
        model = build_model(problem, sets)
        result = CpSatSession(HighsSession(model), problem, sets).solve(SETTINGS)
        assert result.status is SolveStatus.OPTIMAL
        assert result.objective == pytest.approx(optimum, rel=1e-6, abs=1e-6)
        assert result.best_bound is not None
        assert result.best_bound <= optimum + 1e-6 * max(1.0, abs(optimum))
        evaluation = evaluate_plan(problem, *extract_plan(model))
        assert evaluation.is_valid, evaluation.violations
        assert evaluation.total_cost == pytest.approx(optimum, rel=1e-6, abs=1e-6)


def test_engine_with_cpsat_writes_a_checked_plan(tmp_path: Path) -> None:
    """The whole pipeline with ``solver: {name: cpsat}``: the plan passes the independent check (in
    ``planning.solve``), its cost is the hand-solved optimum, and the summary names CP-SAT."""
    result, _, check = solve(tmp_path, FIXED_COST, 2, {**SOLVER, "name": "cpsat"})
    assert check.total == pytest.approx(65.0)
    assert result.solve.solver == "cpsat"


def test_engine_refuses_fractional_units_for_cpsat_before_solving(tmp_path: Path) -> None:
    from optistock.pipeline import run_scenario

    demand = [{"sku": "A", "warehouse": "W1", "period": 0, "quantity": 2.5}]
    path = write_scenario(tmp_path, {**BASE_TABLES, "demand": demand}, 1, {**SOLVER, "name": "cpsat"})
    with pytest.raises(InputError, match="whole units"):
        run_scenario(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
