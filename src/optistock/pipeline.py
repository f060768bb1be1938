"""The whole pipeline — load and validate → build → solve → results — as plain functions.

The CLI only orchestrates these; tests and benchmarks call them directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from optistock import __version__
from optistock.backend.solve import SolveResult, relative_gap
from optistock.backend.strategy import Optimiser
from optistock.errors import InputError
from optistock.postprocess.marginal import compute_marginal_values
from optistock.postprocess.simulate import PlanEvaluation
from optistock.postprocess.writer import write_csv, write_folder_atomically, write_json
from optistock.preprocess.data import ProblemData, build_problem
from optistock.preprocess.scenario import Scenario, SolverSettings, dump_scenario
from optistock.whatif.changes import LocatedChange
from optistock.whatif.scenario_file import load_scenario_file

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    """Everything a run produced: the solver's account, the re-simulated plan and the summary."""

    problem: ProblemData
    solve: SolveResult
    evaluation: PlanEvaluation
    timings: dict[str, float]
    model_size: dict[str, int]
    method: str = "milp"
    history: list[dict[str, float]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    marginal_values: pd.DataFrame | None = None
    """Value of one more unit of each budget, storage and supplier limit (see ``postprocess/marginal``)."""

    @property
    def objective(self) -> float:
        """Cost of the plan, recomputed from the plan by re-simulation (what ``summary.json`` reports)."""
        return self.evaluation.total_cost


def with_overrides(problem: ProblemData, **overrides: Any) -> SolverSettings:
    """The scenario's solver settings with the given (non-None) values replaced."""
    updates = {key: value for key, value in overrides.items() if value is not None}
    try:
        return SolverSettings.model_validate({**problem.scenario.solver.model_dump(), **updates})
    except ValidationError as exc:
        first = exc.errors()[0]
        flag = "--" + str(first["loc"][0]).replace("_", "-")
        raise InputError(f"{first['msg']} (got {first.get('input')!r})", field=flag) from exc


def solve_problem(problem: ProblemData, settings: SolverSettings) -> RunResult:
    """Build, solve and re-simulate (see :mod:`optistock.backend.strategy`); raises
    :class:`InfeasibleError` or :class:`NoSolutionError` when there is no plan to write."""
    outcome = Optimiser(problem, settings).run()
    return RunResult(
        problem,
        outcome.result,
        outcome.evaluation,
        outcome.timings,
        outcome.model_size,
        method=outcome.method,
        history=outcome.history,
    )


def build_summary(run: RunResult, settings: SolverSettings) -> dict[str, Any]:
    evaluation, result = run.evaluation, run.solve
    objective = evaluation.total_cost
    gap = relative_gap(objective, result.best_bound)
    inventory = evaluation.inventory
    return {
        "scenario": run.problem.scenario.name,
        "status": result.status.value,
        "termination": result.termination,
        "objective": objective,
        "best_bound": result.best_bound,
        "gap": gap,
        "solver_objective": result.objective,
        "costs": evaluation.costs,
        "timings": run.timings,
        "solver": {
            "name": result.solver,
            "version": result.solver_version,
            "time_limit": settings.time_limit,
            "mip_gap": settings.mip_gap,
            "threads": settings.threads,
            "seed": settings.seed,
        },
        "model": run.model_size,
        "method": run.method,
        "incumbent_history": run.history,
        "plan": {
            "order_lines": len(evaluation.orders),
            "purchase_orders": len(evaluation.purchase_orders),
            "transfers": len(evaluation.transfers),
            "units_ordered": int(evaluation.orders["quantity"].sum()),
            "units_transferred": int(evaluation.transfers["quantity"].sum()),
            "demand_units": float(inventory["demand"].sum()),
            "backorder_unit_periods": float(inventory["backorder"].sum()),
        },
        "plan_check": {"valid": evaluation.is_valid, "violations": evaluation.violations},
        "warnings": run.problem.warnings,
        "changes": run.problem.changes,
        "optistock_version": __version__,
    }


def write_run(run: RunResult, settings: SolverSettings, out: Path) -> None:
    """Write the plan tables, the resolved inputs and ``summary.json`` to ``out`` atomically."""

    def fill(folder: Path) -> None:
        started = time.perf_counter()
        evaluation = run.evaluation
        write_csv(evaluation.orders, folder / "orders.csv")
        write_csv(evaluation.purchase_orders, folder / "purchase_orders.csv")
        write_csv(evaluation.transfers, folder / "transfer_plan.csv")
        write_csv(evaluation.inventory, folder / "inventory_plan.csv")
        write_inputs(run.problem, settings, folder / "inputs")
        marginal_started = time.perf_counter()
        run.marginal_values, marginal_summary = compute_marginal_values(
            run.problem, evaluation, threads=settings.threads
        )
        if run.marginal_values is not None:
            write_csv(run.marginal_values, folder / "marginal_values.csv")
        run.timings["marginal_values"] = time.perf_counter() - marginal_started
        run.timings["write"] = time.perf_counter() - started - run.timings["marginal_values"]
        run.summary = build_summary(run, settings)
        run.summary["marginal_values"] = marginal_summary
        write_json(run.summary, folder / "summary.json")

    write_folder_atomically(out, fill)


def write_inputs(problem: ProblemData, settings: SolverSettings, folder: Path) -> None:
    """The resolved tables and scenario exactly as solved: ``optistock run inputs/scenario.yaml``
    re-runs it."""
    folder.mkdir()
    for name, frame in problem.tables.items():
        write_csv(frame, folder / f"{name}.csv")
    if problem.changes:
        # the tables above already include the changes: this is the record, not something to re-apply
        write_json({"scenario": problem.scenario.name, "changes": problem.changes}, folder / "changes.json")
    resolved: Scenario = problem.scenario.model_copy(update={"data": Path("."), "solver": settings})
    dump_scenario(resolved, folder / "scenario.yaml")


def run_scenario(
    scenario_path: Path,
    out: Path | None = None,
    scenario_names: Sequence[str] = (),
    extra_changes: Sequence[LocatedChange] = (),
    **solver_overrides: Any,
) -> RunResult:
    """Load, build, solve, re-simulate and (when ``out`` is given) write one scenario.

    ``scenario_names`` are named scenarios of the file applied in order; ``extra_changes`` (located
    what-if changes, see :mod:`optistock.whatif.changes`) are applied after them.
    """
    started = time.perf_counter()
    setup = load_scenario_file(scenario_path, scenario_names, extra_changes)
    problem = build_problem(setup.loaded, setup.changes, setup.classes)
    load_seconds = time.perf_counter() - started
    settings = with_overrides(problem, **solver_overrides)
    run = solve_problem(problem, settings)
    run.timings = {"load": load_seconds, **run.timings}
    if out is not None:
        write_run(run, settings, out)
    else:
        run.summary = build_summary(run, settings)
    return run
