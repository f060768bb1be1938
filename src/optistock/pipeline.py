"""The whole pipeline — load and validate → build → solve → results — as plain functions.

The CLI only orchestrates these; tests and benchmarks call them directly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError
from sqlalchemy.orm import Session

from optistock import __version__
from optistock.backend.solve import SolveResult, relative_gap
from optistock.backend.strategy import Optimiser, estimated_lines, whole_model_affordable
from optistock.errors import InputError, StoreError
from optistock.postprocess.explain import explain_lines
from optistock.postprocess.kpis import compute_kpis
from optistock.postprocess.marginal import compute_marginal_values
from optistock.postprocess.shortfalls import shortfall_table
from optistock.postprocess.simulate import PlanEvaluation
from optistock.postprocess.writer import write_csv, write_folder_atomically, write_json
from optistock.preprocess.commitments import Commitments
from optistock.preprocess.data import ProblemData, build_problem
from optistock.preprocess.scenario import Scenario, SolverSettings, dump_scenario
from optistock.store.database import Store, display_url
from optistock.store.records import firm_order_lines, record_run
from optistock.suppliers.scorecard import supplier_scorecard
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
    subproblems: dict[str, float] = field(default_factory=dict)
    """Fix-and-optimize group sub-problems: how many, and their build and solve seconds summed over
    the workers (``backend/decompose.py``)."""
    summary: dict[str, Any] = field(default_factory=dict)
    commitments: Commitments | None = None
    """Firm purchase orders from the store that this run took as given (``None``: no store used)."""
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


def solve_problem(
    problem: ProblemData,
    settings: SolverSettings,
    start_plans: Sequence[tuple[pd.DataFrame, pd.DataFrame]] = (),
) -> RunResult:
    """Build, solve and re-simulate (see :mod:`optistock.backend.strategy`); raises
    :class:`InfeasibleError` or :class:`NoSolutionError` when there is no plan to write.

    ``start_plans`` (orders, transfers) compete with the engine's own start plans, so the result is
    never worse than the best of them after repair."""
    outcome = Optimiser(problem, settings, start_plans).run()
    return RunResult(
        problem,
        outcome.result,
        outcome.evaluation,
        outcome.timings,
        outcome.model_size,
        method=outcome.method,
        history=outcome.history,
        subproblems=outcome.subproblems,
    )


def build_summary(run: RunResult, settings: SolverSettings, input_hash: str | None = None) -> dict[str, Any]:
    evaluation, result = run.evaluation, run.solve
    objective = evaluation.total_cost
    gap = relative_gap(objective, result.best_bound)
    inventory = evaluation.inventory
    return {
        "scenario": run.problem.scenario.name,
        "input_hash": input_hash,
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
            "method": settings.method,
            "workers": settings.workers if settings.workers is not None else settings.threads,
            "scheduler": settings.scheduler,
        },
        "model": run.model_size,
        "method": run.method,
        "subproblems": run.subproblems,
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
        **feature_summary(run.problem, evaluation),
        "plan_check": {"valid": evaluation.is_valid, "violations": evaluation.violations},
        "warnings": run.problem.warnings,
        "changes": run.problem.changes,
        "firm_orders": None if run.commitments is None else run.commitments.applied,
        "optistock_version": __version__,
    }


def feature_summary(problem: ProblemData, evaluation: PlanEvaluation) -> dict[str, Any]:
    """Summary entries of the extensions, present only with their data: ``waste`` (units and cost, by
    SKU), ``channels`` (demand, served and backordered unit-periods per channel) and ``sourcing`` (each
    share rule's units and share)."""
    extra: dict[str, Any] = {}
    if problem.shelf_life:
        wasted = evaluation.inventory.groupby("sku")["waste"].sum()
        extra["waste"] = {
            "units": float(wasted.sum()),
            "cost": evaluation.costs.get("waste", 0.0),
            "by_sku": {str(k): float(v) for k, v in wasted.items() if str(k) in problem.shelf_life},
        }
    if evaluation.channels is not None:
        totals = evaluation.channels.groupby("channel")[["demand", "served", "backorder"]].sum()
        extra["channels"] = {
            str(channel): {
                "demand_units": float(row["demand"]),
                "served_units": float(row["served"]),
                "backorder_unit_periods": float(row["backorder"]),
            }
            for channel, row in totals.iterrows()
        }
    if evaluation.sourcing is not None:
        extra["sourcing"] = evaluation.sourcing.to_dict("records")
    return extra


SummaryHook = Callable[[dict[str, Any]], dict[str, Any]]
"""Called with the summary just before ``summary.json`` is written; returns keys to add to it."""


def write_run(
    run: RunResult,
    settings: SolverSettings,
    out: Path,
    before_summary: SummaryHook | None = None,
    deadline: float | None = None,
) -> None:
    """Write the plan tables, the resolved inputs and ``summary.json`` to ``out`` atomically.

    ``before_summary`` runs inside the atomic write: if it raises, nothing is written. ``deadline``: see
    :func:`fill_run_folder`.
    """
    write_folder_atomically(
        out, lambda folder: fill_run_folder(run, settings, folder, before_summary, deadline=deadline)
    )


def fill_run_folder(
    run: RunResult,
    settings: SolverSettings,
    folder: Path,
    before_summary: SummaryHook | None = None,
    input_settings: SolverSettings | None = None,
    deadline: float | None = None,
) -> None:
    """Write a run's files into the (empty, not yet published) ``folder``.

    ``deadline`` (a ``time.monotonic()`` instant) bounds the marginal values, an add-on to the plan:
    they are skipped, with the reason in ``summary.json``, when building and solving their LP could
    not finish by then.

    ``inputs/scenario.yaml`` gets ``input_settings`` (default: ``settings``, the settings solved with):
    the nightly batch records the scenario's own settings there, not the time limit its deadline left,
    so that unchanged inputs hash alike from night to night.
    """
    started = time.perf_counter()
    evaluation = run.evaluation
    write_csv(evaluation.orders, folder / "orders.csv")
    write_csv(evaluation.purchase_orders, folder / "purchase_orders.csv")
    write_csv(evaluation.transfers, folder / "transfer_plan.csv")
    write_csv(evaluation.inventory, folder / "inventory_plan.csv")
    service_summary = write_inventory_reports(run.problem, evaluation, folder)
    if evaluation.channels is not None:
        write_csv(evaluation.channels, folder / "channel_plan.csv")
    write_inputs(run.problem, input_settings or settings, folder / "inputs")
    history = write_history_outputs(run.problem, folder)
    marginal_started = time.perf_counter()
    run.marginal_values, marginal_summary = _marginal_values(run, settings, deadline)
    if run.marginal_values is not None:
        write_csv(run.marginal_values, folder / "marginal_values.csv")
    run.timings["marginal_values"] = time.perf_counter() - marginal_started
    run.timings["write"] = time.perf_counter() - started - run.timings["marginal_values"]
    run.summary = build_summary(run, settings, input_hash=hash_folder(folder / "inputs"))
    run.summary["marginal_values"] = marginal_summary
    run.summary.update(service_summary)
    run.summary.update(history)
    if before_summary is not None:
        run.summary.update(before_summary(run.summary))
    write_json(run.summary, folder / "summary.json")


def write_inventory_reports(problem: ProblemData, evaluation: PlanEvaluation, folder: Path) -> dict[str, Any]:
    """Classes, stock policy, safety-stock shortfalls and KPI tables; returns the ``kpis`` and
    ``service`` entries of ``summary.json``."""
    write_csv(problem.classes, folder / "classes.csv")
    kpis = compute_kpis(problem, evaluation)
    write_csv(kpis.cells, folder / "kpis.csv")
    write_csv(kpis.summary, folder / "kpi_summary.csv")
    write_csv(kpis.by_period, folder / "kpis_by_period.csv")
    write_csv(kpis.supplier_spend, folder / "supplier_spend.csv")
    service: dict[str, Any] | None = None
    if len(problem.stock_policy):
        write_csv(problem.stock_policy, folder / "stock_policy.csv")
        shortfalls = shortfall_table(problem, evaluation)
        write_csv(shortfalls, folder / "safety_stock_shortfalls.csv")
        reasons = shortfalls["reason"].str.split("; ").explode().str.split(":").str[0]
        service = {
            "safety_stock_cells": len(problem.safety_stock),
            "safety_stock_units": float(problem.safety_stock.sum()),
            "shortfall_cells": len(shortfalls),
            "shortfall_unit_periods": float(shortfalls["shortfall"].sum()),
            "penalty": float(shortfalls["penalty"].sum()),
            "shortfall_reasons": {str(k): int(v) for k, v in reasons.value_counts().items()},
        }
    return {"kpis": kpis.totals, "service": service}


def write_history_outputs(problem: ProblemData, folder: Path) -> dict[str, Any]:
    """``forecast.csv`` when demand was forecast from the sales history, ``supplier_scorecard.csv``
    (per supplier and SKU) when the inputs include receipts; returns their ``summary.json`` entries."""
    entries: dict[str, Any] = {}
    if problem.forecast is not None:
        write_csv(problem.forecast, folder / "forecast.csv")
        series = problem.forecast.drop_duplicates(["sku", "warehouse"])
        entries["forecast"] = {
            "series": len(series),
            "demand_classes": {str(k): int(v) for k, v in series["demand_class"].value_counts().items()},
            "methods": {str(k): int(v) for k, v in series["method"].value_counts().items()},
        }
    if "receipts" in problem.tables:
        write_csv(supplier_scorecard(problem.receipts, by="sku"), folder / "supplier_scorecard.csv")
        by_supplier = supplier_scorecard(problem.receipts, by="supplier").set_index("supplier")
        entries["supplier_scorecard"] = {
            str(supplier): {
                "orders": int(row["orders"]),
                **{
                    key: None if pd.isna(row[key]) else float(row[key])
                    for key in ("on_time_rate", "fill_rate", "lead_time_mean", "lead_time_std")
                },
            }
            for supplier, row in by_supplier.iterrows()
        }
    return entries


MARGINAL_BUILD_FACTOR = 2.0
"""Building the fixed-plan LP of the marginal values takes up to about this many times the solve's
model build time (it has every stock-sign binary); used to decide whether a deadline leaves room."""


def _marginal_values(
    run: RunResult, settings: SolverSettings, deadline: float | None
) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    time_limit = None
    if not whole_model_affordable(run.problem):  # its fixed-plan LP is the whole model, through Pyomo
        lines = estimated_lines(run.problem)
        reason = f"skipped: the model is too large to build through Pyomo (up to {lines:,} order lines)"
        logger.info("marginal values %s", reason)
        return None, {"available": False, "reason": reason}
    if deadline is not None:
        left = deadline - time.monotonic()
        build = MARGINAL_BUILD_FACTOR * run.timings.get("build", 0.0)
        if left < build + 1.0:
            reason = f"skipped: {max(left, 0):.0f} s left before the deadline, about {build + 1:.0f} s needed"
            logger.info("marginal values %s", reason)
            return None, {"available": False, "reason": reason}
        time_limit = left - build
    return compute_marginal_values(
        run.problem, run.evaluation, threads=settings.threads, time_limit=time_limit
    )


def hash_folder(folder: Path) -> str:
    """SHA-256 over the relative paths and bytes of every file in ``folder`` (sorted)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def write_inputs(problem: ProblemData, settings: SolverSettings, folder: Path) -> None:
    """The resolved tables and scenario exactly as solved: ``optistock run inputs/scenario.yaml``
    re-runs it."""
    folder.mkdir()
    tables = dict(problem.tables)
    if len(problem.stock_policy):
        # the safety stock as solved (classes, class targets and lead times resolved), so that a re-run
        # of inputs/ keeps exactly these targets
        primary = problem.stock_policy[problem.stock_policy["primary"]]
        tables["safety_stock"] = primary[["sku", "warehouse", "safety_stock"]].rename(
            columns={"safety_stock": "quantity"}
        )
    for name, frame in tables.items():
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
    *,
    store: Store | None = None,
    record: bool = False,
    firm_orders: bool = True,
    **solver_overrides: Any,
) -> RunResult:
    """Load, build, solve, re-simulate and (when ``out`` is given) write one scenario.

    ``scenario_names`` are named scenarios of the file applied in order; ``extra_changes`` (located
    what-if changes, see :mod:`optistock.whatif.changes`) are applied after them.

    With a ``store``, approved and sent purchase orders of earlier runs of the same scenario (named
    as in its file, before ``scenario_names``) are inputs unless ``firm_orders`` is false (see
    :mod:`optistock.preprocess.commitments`); with ``record`` the run and its purchase orders are
    stored as proposals, in one transaction that commits only after the output folder is complete.
    """
    if record and (store is None or out is None):
        raise ValueError("recording a run needs a store and an output folder")
    started_at = dt.datetime.now(dt.timezone.utc)
    started = time.perf_counter()
    setup = load_scenario_file(scenario_path, scenario_names, extra_changes)
    commitments = None
    if store is not None and firm_orders:
        with store.transaction() as session:
            lines = firm_order_lines(session, setup.base_name)
        commitments = Commitments(lines, display_url(store.url), setup.base_name)
    problem = build_problem(setup.loaded, setup.changes, setup.classes, commitments)
    load_seconds = time.perf_counter() - started
    settings = with_overrides(problem, **solver_overrides)
    run = solve_problem(problem, settings)
    run.commitments = commitments
    run.timings = {"load": load_seconds, **run.timings}
    if out is None:
        run.summary = build_summary(run, settings)
    elif record:
        assert store is not None
        write_and_record(run, settings, out, store, started_at)
    else:
        write_run(run, settings, out)
    return run


def record_in_store(
    session: Session,
    store: Store,
    run: RunResult,
    explanations: pd.DataFrame,
    out: Path,
    started_at: dt.datetime,
) -> dict[str, Any]:
    """Insert the run and its purchase orders (the caller commits); the ``store`` entry of its summary."""
    stored = record_run(
        session,
        run.problem,
        run.summary,
        run.evaluation.orders,
        run.evaluation.purchase_orders,
        explanations,
        out,
        started_at,
    )
    return {
        "url": display_url(store.url),
        "run_id": stored.run_id,
        "purchase_orders_proposed": stored.purchase_orders,
        "superseded_purchase_orders": stored.superseded,
    }


def write_and_record(
    run: RunResult, settings: SolverSettings, out: Path, store: Store, started_at: dt.datetime
) -> None:
    """Write ``out`` atomically and record the run, in one transaction committed once ``out`` is in place."""
    explanations = explain_lines(run.problem, run.evaluation)
    used = run.commitments.lines if run.commitments is not None else None
    with store.session() as session:

        def record(summary: dict[str, Any]) -> dict[str, Any]:
            extra: dict[str, Any] = {
                "store": record_in_store(session, store, run, explanations, out, started_at)
            }
            if used is not None:
                assert run.commitments is not None
                now = firm_order_lines(session, run.commitments.scenario)
                if not _same_lines(now, used):
                    message = (
                        "purchase orders were approved, rejected or edited while this run was solving; "
                        "its plan does not reflect them: re-run to take them into account"
                    )
                    logger.warning(message)
                    extra["warnings"] = [*summary["warnings"], message]
            return extra

        write_run(run, settings, out, before_summary=record)
        try:
            session.commit()
        except Exception as exc:
            shutil.rmtree(out, ignore_errors=True)
            raise StoreError(f"store {display_url(store.url)}: could not record the run ({exc})") from exc


def _same_lines(a: Any, b: Any) -> bool:
    columns = ["purchase_order_id", "sku", "quantity"]
    return bool(a[columns].reset_index(drop=True).equals(b[columns].reset_index(drop=True)))
