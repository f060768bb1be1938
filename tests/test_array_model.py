"""The array builder (``backend/arrays.py``) builds the same model as the Pyomo builder (``model.py``).

On many random instances — with and without every stock-sign cell, with and without safety-stock
targets — both models are loaded into HiGHS and compared column by column (bounds, integrality,
objective coefficient) and row by row (bounds and coefficients, in the same row order), and their LP
and MILP optima must agree. On the seeded synthetic S instance the column counts, the integrality and
the LP optimum must agree. A solved array model's plan has the format of ``extract_plan`` and its
re-simulated cost is the model's objective. Problems with a model extension are refused.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import highspy
import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest
from conftest import BASE_TABLES, write_scenario
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_formulation_doc import TABLES as FORMULATION_TABLES
from test_properties import instances

from optistock.backend.arrays import (
    ROW_FAMILIES,
    ArrayModel,
    UnsupportedModelError,
    build_array_model,
    supports,
)
from optistock.backend.model import VARIABLES, build_model
from optistock.backend.sets import ModelSets, build_sets
from optistock.backend.solve import HighsSession, SolveStatus
from optistock.postprocess.extract import extract_plan
from optistock.postprocess.simulate import evaluate_plan
from optistock.preprocess.data import ProblemData, load_problem
from optistock.preprocess.scenario import SolverSettings
from optistock.synthetic import NAMED_SIZES, generate_instance, write_instance

EXACT = SolverSettings(time_limit=30, mip_gap=0.0, threads=1)
TOLERANCE = {"rel": 1e-6, "abs": 1e-6}


@st.composite
def instances_with_targets(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    """The property tests' random instances, some with fixed safety-stock targets."""
    tables, periods = draw(instances())
    if draw(st.booleans()):
        pairs = [(i["sku"], w["warehouse"]) for i in tables["skus"] for w in tables["warehouses"]]
        chosen = draw(st.lists(st.sampled_from(pairs), min_size=1, unique=True))
        tables["safety_stock"] = [
            {"sku": i, "warehouse": w, "quantity": draw(st.integers(0, 8))} for i, w in chosen
        ]
    return tables, periods


def load(folder: Path, tables: dict[str, Any], periods: int) -> ProblemData:
    return load_problem(write_scenario(folder, {**BASE_TABLES, **tables}, periods))


def pyomo_lp(model: pyo.ConcreteModel) -> tuple[HighsSession, Any]:
    session = HighsSession(model)
    return session, session._highs.getLp()


def rows_of(lp: Any, column_map: np.ndarray) -> pd.DataFrame:
    """The constraint matrix as (row, column, value) triplets, columns renamed by ``column_map``,
    sorted."""
    matrix = lp.a_matrix_
    rowwise = matrix.format_ == highspy.MatrixFormat.kRowwise
    counts = np.diff(np.asarray(matrix.start_))
    outer = np.repeat(np.arange(lp.num_row_ if rowwise else lp.num_col_), counts)
    inner = np.asarray(matrix.index_, dtype=np.int64)
    rows, columns = (outer, inner) if rowwise else (inner, outer)
    frame = pd.DataFrame(
        {"row": rows, "col": column_map[columns], "value": np.asarray(matrix.value_, dtype=float)}
    )
    frame = frame[frame["value"] != 0]
    return frame.sort_values(["row", "col"]).reset_index(drop=True)


def integrality(lp: Any) -> np.ndarray:
    """1 for an integer column, 0 for a continuous one (HiGHS keeps no list for an LP)."""
    values = np.asarray([int(v) for v in lp.integrality_], dtype=np.int64)
    return values if len(values) else np.zeros(lp.num_col_, dtype=np.int64)


def assert_same_model(array: ArrayModel, model: pyo.ConcreteModel, session: HighsSession, lp: Any) -> None:
    """Same columns (by variable and index), bounds, integrality, costs; same rows in the same order."""
    mine = array.highs.getLp()
    assert mine.num_col_ == lp.num_col_ == array.num_cols
    assert mine.num_row_ == lp.num_row_ == array.num_rows
    # each Pyomo column → the array column of the same variable and index
    to_array = np.full(lp.num_col_, -1, dtype=np.int64)
    for family in VARIABLES:
        block = array.columns[family]
        var = getattr(model, family)
        assert len(block.keys) == len(var), family
        assert set(block.keys) == set(var.keys()), family
        for key, column in zip(block.keys, block.index.tolist(), strict=True):
            to_array[session._column(var[key])] = column
    assert sorted(to_array.tolist()) == list(range(array.num_cols))
    at = np.argsort(to_array)  # array column c ← Pyomo column at[c]
    for attribute in ("col_lower_", "col_upper_", "col_cost_"):
        np.testing.assert_allclose(
            np.asarray(getattr(mine, attribute)),
            np.asarray(getattr(lp, attribute))[at],
            rtol=1e-12,
            err_msg=attribute,
        )
    assert integrality(mine).tolist() == integrality(lp)[at].tolist()
    assert mine.offset_ == pytest.approx(lp.offset_)
    # rows: every constraint of the Pyomo model, in the same order, with the same keys
    row_map = session.solver._pyomo_con_to_solver_con_map
    names = {c.local_name for c in model.component_objects(pyo.Constraint)}
    assert names == set(ROW_FAMILIES)
    for name in ROW_FAMILIES:
        component = getattr(model, name)
        block = array.rows[name]
        assert len(block.keys) == len(component), name
        for key, row in zip(block.keys, block.index.tolist(), strict=True):
            assert row_map[component[key]] == row, (name, key)
    for attribute in ("row_lower_", "row_upper_"):
        np.testing.assert_allclose(
            np.asarray(getattr(mine, attribute)),
            np.asarray(getattr(lp, attribute)),
            rtol=1e-12,
            err_msg=attribute,
        )
    expected = rows_of(lp, to_array)
    got = rows_of(mine, np.arange(mine.num_col_))
    pd.testing.assert_frame_equal(got[["row", "col"]], expected[["row", "col"]])
    np.testing.assert_allclose(got["value"].to_numpy(), expected["value"].to_numpy(), rtol=1e-12)


def check_equivalent(problem: ProblemData, sets: ModelSets, milp: bool = True) -> ArrayModel:
    assert supports(problem, sets)
    model = build_model(problem, sets)
    session, lp = pyomo_lp(model)
    array = build_array_model(problem, sets)
    assert_same_model(array, model, session, lp)
    reference = session.relaxation({}, time_limit=30, threads=1)
    status, objective, _ = array.solve_lp(time_limit=30, threads=1)
    if array.num_cols == 0:  # nothing to decide; HighsSession reports no solution for an empty model
        assert status is SolveStatus.OPTIMAL and objective == 0.0
        assert reference.objective in (None, 0.0)
        return array
    if reference.infeasible:
        assert status is SolveStatus.INFEASIBLE
    else:
        assert status is SolveStatus.OPTIMAL and reference.objective is not None
        assert objective == pytest.approx(reference.objective, **TOLERANCE)
    if milp:
        expected = session.solve(EXACT)
        result, values = array.solve_milp(time_limit=30, threads=1, mip_gap=0.0)
        assert result.status is expected.status
        if expected.status is SolveStatus.OPTIMAL:
            assert expected.objective is not None
            assert result.objective == pytest.approx(expected.objective, **TOLERANCE)
            assert float(values @ np.asarray(array.highs.getLp().col_cost_)) == pytest.approx(
                expected.objective, **TOLERANCE
            )
    return array


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(instances_with_targets())
def test_array_and_pyomo_models_are_the_same_on_random_instances(case: tuple[dict[str, Any], int]) -> None:
    tables, periods = case
    with tempfile.TemporaryDirectory() as name:
        problem = load(Path(name), tables, periods)
        check_equivalent(problem, build_sets(problem))
        array = check_equivalent(problem, build_sets(problem, all_stock_sign_cells=True))
        for name in ROW_FAMILIES:  # --hypothesis-show-statistics: how often each family is exercised
            if len(array.rows[name]):
                event(f"has {name}")


def test_formulation_instance_exercises_every_family(tmp_path: Path) -> None:
    """The instance of test_formulation_doc.py has every row family of the core model non-empty."""
    problem = load_problem(write_scenario(tmp_path, FORMULATION_TABLES, periods=4))
    sets = build_sets(problem, all_stock_sign_cells=True)
    array = build_array_model(problem, sets)
    assert all(len(array.rows[name]) for name in ROW_FAMILIES)
    assert all(len(array.columns[family]) for family in VARIABLES)
    check_equivalent(problem, sets)


@pytest.fixture(scope="module")
def synthetic_problems(tmp_path_factory: pytest.TempPathFactory) -> dict[int, ProblemData]:
    problems = {}
    for seed in (0, 1, 2):
        folder = tmp_path_factory.mktemp(f"synthetic{seed}")
        write_instance(generate_instance(NAMED_SIZES["S"], seed), folder)
        scenario = folder / "scenario.yaml"
        scenario.write_text(
            f"name: bench-S-{seed}\ndata: .\nhorizon:\n  periods: {NAMED_SIZES['S'].periods}\n"
            "solver:\n  time_limit: 60\n  mip_gap: 0.01\n  threads: 1\n",
            encoding="utf-8",
        )
        problems[seed] = load_problem(scenario)
    return problems


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_array_and_pyomo_models_are_the_same_on_the_synthetic_instance(
    seed: int, synthetic_problems: dict[int, ProblemData]
) -> None:
    problem = synthetic_problems[seed]
    sets = build_sets(problem)
    model = build_model(problem, sets)
    session, lp = pyomo_lp(model)
    array = build_array_model(problem, sets)
    assert array.num_cols == lp.num_col_
    assert array.num_integer == int(np.count_nonzero(integrality(lp)))
    assert_same_model(array, model, session, lp)
    reference = session.relaxation({}, time_limit=60, threads=1)
    status, objective, _ = array.solve_lp(time_limit=60, threads=1)
    assert status is SolveStatus.OPTIMAL and reference.objective is not None
    assert objective == pytest.approx(reference.objective, rel=1e-6)


def solved_plan(problem: ProblemData) -> tuple[ArrayModel, np.ndarray, float]:
    array = build_array_model(problem, build_sets(problem, all_stock_sign_cells=True))
    result, values = array.solve_milp(time_limit=30, threads=1, mip_gap=0.0)
    assert result.status is SolveStatus.OPTIMAL and result.objective is not None
    return array, values, result.objective


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(instances_with_targets())
def test_the_array_plan_is_valid_and_costs_the_objective(case: tuple[dict[str, Any], int]) -> None:
    tables, periods = case
    with tempfile.TemporaryDirectory() as name:
        problem = load(Path(name), tables, periods)
        array, values, objective = solved_plan(problem)
        evaluation = evaluate_plan(problem, *array.plan(values))
        assert evaluation.is_valid, evaluation.violations
        assert evaluation.total_cost == pytest.approx(objective, **TOLERANCE)


def test_the_array_plan_reads_like_extract_plan(tmp_path: Path) -> None:
    """The same column values read by ``ArrayModel.plan`` and, loaded into the Pyomo model, by
    ``extract_plan`` give equal frames (columns, dtypes, rows)."""
    problem = load_problem(write_scenario(tmp_path, FORMULATION_TABLES, periods=4))
    sets = build_sets(problem, all_stock_sign_cells=True)
    array, values, objective = solved_plan(problem)
    orders, transfers = array.plan(values)
    assert len(orders) and len(transfers)
    model = build_model(problem, sets)
    for family in VARIABLES:
        var = getattr(model, family)
        for key, column in zip(array.columns[family].keys, array.columns[family].index.tolist(), strict=True):
            var[key].set_value(float(values[column]), skip_validation=True)
    assert pyo.value(model.total_cost) == pytest.approx(objective, **TOLERANCE)
    expected_orders, expected_transfers = extract_plan(model)
    pd.testing.assert_frame_equal(orders, expected_orders)
    pd.testing.assert_frame_equal(transfers, expected_transfers)
    evaluation = evaluate_plan(problem, orders, transfers)
    assert evaluation.is_valid and evaluation.total_cost == pytest.approx(objective, **TOLERANCE)


def test_a_mip_start_is_used(tmp_path: Path) -> None:
    """Started from its own optimum, the MILP returns a plan at least as good."""
    problem = load_problem(write_scenario(tmp_path, FORMULATION_TABLES, periods=4))
    array, values, objective = solved_plan(problem)
    start = {family: array.values(family, values) for family in VARIABLES}
    result, _ = array.solve_milp(time_limit=30, threads=1, mip_gap=0.0, start=start)
    assert result.objective is not None and result.objective <= objective + 1e-6
    empty = array.plan(np.zeros(array.num_cols))
    assert empty[0].empty and empty[1].empty


def test_extensions_are_left_to_pyomo(tmp_path: Path) -> None:
    tables = {
        **BASE_TABLES,
        "skus": [
            {"sku": "A", "unit_volume": 1.0, "holding_cost": 0.1, "shortage_cost": 100.0, "shelf_life": 2}
        ],
        "demand": [{"sku": "A", "warehouse": "W1", "period": t, "quantity": 10} for t in range(4)],
    }
    problem = load_problem(write_scenario(tmp_path, tables, periods=4))
    sets = build_sets(problem)
    assert sets.shelf_life and not supports(problem, sets)
    with pytest.raises(UnsupportedModelError, match="shelf life"):
        build_array_model(problem, sets)
    # the same instance without a shelf life is supported
    core = {**tables, "skus": [{k: v for k, v in tables["skus"][0].items() if k != "shelf_life"}]}
    problem = load_problem(write_scenario(tmp_path / "core", core, periods=4))
    assert supports(problem, build_sets(problem))
