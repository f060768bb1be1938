"""Differential test between two solvers: the engine (HiGHS) against SCIP (shipped with OR-Tools).

The exact model of a random small instance — with every stock-sign binary, so no lazy step is involved —
is written as MPS by Pyomo and solved by SCIP through OR-Tools. Its optimal objective must equal the cost
of the plan the engine writes (proven optimal by HiGHS).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import BASE_TABLES, write_scenario
from hypothesis import HealthCheck, given, settings
from ortools.linear_solver.python import model_builder
from planning import solve
from test_properties import SOLVER, instances

from optistock.backend.model import build_model
from optistock.backend.sets import build_sets
from optistock.preprocess.data import load_problem


def scip_optimum(scenario: Path, folder: Path) -> float:
    problem = load_problem(scenario)
    model = build_model(problem, build_sets(problem, all_stock_sign_cells=True))
    mps = folder / "model.mps"
    model.write(str(mps), format="mps")
    exported = model_builder.Model()
    exported.import_from_mps_file(str(mps))
    solver = model_builder.Solver("scip")
    solver.set_time_limit_in_seconds(60)
    status = solver.solve(exported)
    assert status == model_builder.SolveStatus.OPTIMAL
    return float(solver.objective_value)


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_highs_engine_and_scip_agree_on_the_optimum(case: tuple[dict[str, Any], int]) -> None:
    tables, periods = case
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        _, _, check = solve(folder / "engine", tables, periods, SOLVER)
        scenario = write_scenario(folder / "scip", {**BASE_TABLES, **tables}, periods, SOLVER)
        assert check.total == pytest.approx(scip_optimum(scenario, folder), rel=1e-6, abs=1e-4)
