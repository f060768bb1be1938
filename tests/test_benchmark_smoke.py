"""Smoke test of ``benchmarks/run.py``: one size-S case end to end, and deterministic generation.

No wall-clock assertions: only that the row is complete and the plan it describes is valid.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

from optistock.postprocess.simulate import evaluate_plan
from optistock.preprocess.data import load_problem
from optistock.synthetic import NAMED_SIZES, generate_instance

RUNNER_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
SEED = 1
TIME_LIMIT = 10.0

Case = tuple[dict[str, Any], Path, Path]


@pytest.fixture(scope="module")
def runner() -> ModuleType:
    """``benchmarks/run.py`` imported by file path (the benchmarks folder is not a package)."""
    name = "optistock_benchmarks_run"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, RUNNER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", params=["engine", "monolithic"])
def case(
    runner: ModuleType, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Case:
    """Run the size-S case once per approach (fresh subprocess, short time limit): (row, scenario path,
    output folder)."""
    work = tmp_path_factory.mktemp("bench")
    scenario = runner.generate_case_instance("S", SEED, work / "instance")
    out = work / "run-1"
    spec = runner.CaseSpec(
        size="S",
        scenario=str(scenario),
        out=str(out),
        time_limit=TIME_LIMIT,
        instance_seed=SEED,
        approach=request.param,
    )
    row = runner.run_case(spec, timeout=300)
    assert row["approach"] == request.param
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert (summary["method"] == "monolithic") == (request.param == "monolithic")
    return row, scenario, out


def test_row_has_every_field(runner: ModuleType, case: Case) -> None:
    row, _, _ = case
    assert row["error"] is None, row["error"]
    assert set(runner.FIELDS) <= set(row)
    size = NAMED_SIZES["S"]
    assert (row["skus"], row["warehouses"], row["suppliers"], row["periods"]) == (
        size.skus,
        size.warehouses,
        size.suppliers,
        size.periods,
    )
    always_set = set(runner.FIELDS) - {"error"}
    missing = sorted(name for name in always_set if row[name] is None)
    assert not missing, f"fields without a value: {missing}"
    for name in ("variables", "integer_variables", "constraints"):
        assert isinstance(row[name], int) and row[name] > 0
    assert row["integer_variables"] <= row["variables"]
    for name in ("first_feasible_s", "load_s", "build_s", "solve_s", "write_s", "wall_s", "peak_rss_mb"):
        assert row[name] >= 0.0
    assert row["peak_rss_mb"] >= row["baseline_rss_mb"] > 0.0
    assert row["peak_tree_rss_mb"] > 0.0
    assert row["seed"] == SEED
    assert row["time_limit"] == TIME_LIMIT


def test_plan_is_valid_and_resimulates_to_the_objective(case: Case) -> None:
    row, scenario, out = case
    assert row["status"] in ("optimal", "feasible")
    objective, bound = float(row["objective"]), float(row["best_bound"])
    # the bound is a proven lower bound on the cost (tolerance: the engine's own 1e-6 relative)
    assert objective >= bound - 1e-6 * max(1.0, abs(bound))
    assert 0.0 <= row["gap"] <= 1.0

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["plan_check"]["valid"]
    assert summary["objective"] == pytest.approx(objective, rel=1e-12)

    # re-simulate the written plan from scratch: same cost, no violations
    problem = load_problem(scenario)
    orders = pd.read_csv(out / "orders.csv")
    transfers = pd.read_csv(out / "transfer_plan.csv")
    evaluation = evaluate_plan(problem, orders, transfers)
    assert evaluation.is_valid, evaluation.violations
    assert evaluation.total_cost == pytest.approx(summary["objective"], rel=1e-9, abs=1e-6)


def test_tree_memory_counts_the_memory_of_child_processes(runner: ModuleType) -> None:
    """A child process holding 300 MiB raises the tree's peak by about that much; this process's own
    ``ru_maxrss`` does not see it."""
    hold = "import time; block = b'x' * (300 * 2**20); print('ready', flush=True); time.sleep(3)"
    with runner.TreeMemory(interval=0.1) as memory:
        alone = memory.peak_mb
        child = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        child.wait()
    assert memory.peak_mb >= alone + 290.0


def test_generation_is_deterministic(runner: ModuleType, tmp_path: Path) -> None:
    first = generate_instance(NAMED_SIZES["S"], SEED)
    second = generate_instance(NAMED_SIZES["S"], SEED)
    assert list(first) == list(second)
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name], check_exact=True)

    # the runner's files (tables and scenario.yaml) are byte-identical too
    paths = [runner.generate_case_instance("S", SEED, tmp_path / f"gen{i}") for i in (1, 2)]
    files = sorted(p.name for p in paths[0].parent.iterdir())
    assert files == sorted(p.name for p in paths[1].parent.iterdir())
    for name in files:
        assert (paths[0].parent / name).read_bytes() == (paths[1].parent / name).read_bytes(), name

    other = generate_instance(NAMED_SIZES["S"], SEED + 1)
    assert not other["demand"].equals(first["demand"])


def test_median_row_and_table(runner: ModuleType) -> None:
    base: dict[str, Any] = dict.fromkeys(runner.FIELDS)
    base.update(size="S", approach="engine", skus=20, warehouses=2, suppliers=3, periods=13, variables=10)
    base.update(status="feasible")
    rows = [{**base, "wall_s": 1.0, "objective": 5.0}, {**base, "wall_s": 3.0, "objective": 7.0}]
    merged = runner.median_row(rows)
    assert merged["wall_s"] == 2.0
    assert merged["objective"] == 6.0
    assert merged["variables"] == 10 and isinstance(merged["variables"], int)
    assert merged["status"] == "feasible"
    assert merged["repeats"] == 2
    lines = runner.format_table([merged]).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("size") and "peak RSS MB" in lines[0]
    assert lines[2].startswith("S ") and "engine" in lines[2] and "20x2x3x13" in lines[2]
