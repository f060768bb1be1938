"""``optistock batch``: the nightly re-plan, end to end, with a deadline and nothing half-written.

Order of work (each phase is logged with its name):

1. ``config``: read the batch config; fix the deadline.
2. ``lock``: open the store and take the batch lock (exit 5 if another batch holds it).
3. ``recover``: finish or undo what a killed batch left (see :func:`recover`).
4. ``load``: snapshot tonight's tables (SQL, refresh folder, scenario data), add firm orders, validate.
5. ``unchanged?``: if a run of this scenario with the same input hash is already published, stop
   (exit 0) unless ``force``.
6. ``solve``: with the time the deadline leaves, starting from last night's plan carried forward.
7. ``write`` → ``files_written`` → ``store_committed`` → ``published``: the run folder is filled as
   ``.NAME.partial``, its store rows are inserted in one transaction, the transaction commits (the
   commit point), and the folder is renamed to ``NAME``.
8. ``what_if``: the what-if scenarios, each written atomically under ``NAME/what-if/``, while time lasts.

Crash safety: before the commit nothing of the run exists in the store and its folder is hidden
(``.partial``); the next batch deletes such folders. After the commit the run exists and its complete
folder is either in place or still hidden; the next batch finishes the rename first thing.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import signal
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from optistock.backend.heuristics import repair_plan
from optistock.backend.solve import relative_gap
from optistock.batch.config import LoadedBatchConfig, batch_deadline, load_batch_config
from optistock.batch.lock import BatchLock
from optistock.batch.logs import RunLog
from optistock.batch.refresh import Snapshot, build_snapshot
from optistock.errors import InputError, NoSolutionError, OptistockError
from optistock.pipeline import (
    RunResult,
    fill_run_folder,
    hash_folder,
    record_in_store,
    solve_problem,
    write_inputs,
    write_run,
)
from optistock.postprocess.explain import explain_lines
from optistock.postprocess.simulate import evaluate_plan
from optistock.postprocess.writer import fsync_tree, safe_name
from optistock.preprocess.commitments import Commitments
from optistock.preprocess.data import ProblemData, build_problem
from optistock.preprocess.scenario import LoadedScenario, SolverSettings
from optistock.store.database import Store, display_url, open_store
from optistock.store.records import firm_order_lines
from optistock.store.schema import POStatus, PurchaseOrder, Run
from optistock.whatif.scenario_file import load_scenario_file

logger = logging.getLogger(__name__)

KILL_AT_ENV = "OPTISTOCK_BATCH_KILL_AT"
"""Fault injection for the crash tests: the batch kills itself (SIGKILL) when it reaches this phase."""

WRITE_RESERVE_SECONDS = 5.0
WRITE_RESERVE_SHARE = 0.05
"""Time kept back from the solver for writing and recording: max(5 s, 5 % of what is left)."""
MAIN_SHARE_WITH_WHAT_IFS = 0.6
"""Share of the remaining time the main plan may use when what-if scenarios follow it."""
MIN_SOLVE_SECONDS = 1.0
PUBLISH_SECONDS = 3.0
"""Time kept for recording, committing and renaming after the marginal values (which may be skipped)."""
PARTIAL_SUFFIX = ".partial"
WORK_PREFIX = ".work-"
"""A batch's private working folder (tonight's snapshot of the tables, the resolved inputs) is a hidden
``OUTPUT_ROOT/.work-…`` folder, deleted when the batch ends; one left by a killed batch is deleted by the
next one's recovery. (Until 2026-12-06 it lay in the system's temporary folder, where every killed batch
left one behind.)"""


@dataclass
class BatchOutcome:
    status: str
    """``planned`` (a new run was published) or ``unchanged`` (same inputs as a published run)."""
    run_id: int
    run_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)
    what_if: list[dict[str, Any]] = field(default_factory=list)
    log: Path | None = None
    """The run's log (``OUTPUT_ROOT/logs/NAME.jsonl``)."""


def checkpoint(phase: str, **fields: Any) -> None:
    """Log entering ``phase``; the fault-injection hook of the crash tests fires here."""
    logger.info("phase: %s", phase, extra={"phase": phase, **fields})
    if os.environ.get(KILL_AT_ENV) == phase:
        os.kill(os.getpid(), signal.SIGKILL)


def run_batch(
    config_path: Path, *, force: bool = False, deadline: str | None = None, db: str | None = None
) -> BatchOutcome:
    """Run the batch described by ``config_path``; every failure is logged (with its exit code) and
    raised as the :class:`OptistockError` that says what happened."""
    started = dt.datetime.now()
    with ExitStack() as stack:
        try:
            outcome = _run(config_path, started, stack, force, deadline, db)
        except OptistockError as exc:
            logger.error("batch failed: %s", exc, extra={"exit_code": int(exc.exit_code)})
            raise
        except Exception as exc:
            logger.exception("batch failed unexpectedly: %s", exc, extra={"exit_code": 1})
            raise
        logger.info(
            "batch done: %s, run %d",
            outcome.status,
            outcome.run_id,
            extra={"exit_code": 0, "run_id": outcome.run_id, "run_dir": str(outcome.run_dir)},
        )
        return outcome
    raise AssertionError("unreachable")  # pragma: no cover (ExitStack does not swallow exceptions)


def _run(
    config_path: Path,
    started: dt.datetime,
    stack: ExitStack,
    force: bool,
    deadline: str | None,
    db: str | None,
) -> BatchOutcome:
    clock = time.monotonic()
    checkpoint("config", config=str(config_path))
    loaded = load_batch_config(config_path)
    deadline_at = batch_deadline(loaded, started, deadline)
    seconds = (deadline_at - started).total_seconds()
    if seconds <= 0:
        raise InputError(
            f"the deadline {deadline_at:%Y-%m-%d %H:%M} has already passed", file=str(config_path)
        )
    end = clock + seconds
    scenario_name = load_scenario_file(loaded.scenario).loaded.scenario.name
    log_path = loaded.output_root / "logs" / f"{run_folder_name(scenario_name, started)}.jsonl"
    stack.enter_context(RunLog(log_path))
    logger.info(
        "deadline %s (%.0f s from now)",
        deadline_at.isoformat(timespec="seconds"),
        seconds,
        extra={"deadline": deadline_at.isoformat(timespec="seconds"), "run_log": str(log_path)},
    )
    checkpoint("lock")
    store = open_store(db or loaded.config.store)
    try:
        with BatchLock(store):
            recover(loaded.output_root, store)
            loaded.output_root.mkdir(parents=True, exist_ok=True)
            work = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix=WORK_PREFIX, dir=loaded.output_root))
            )
            outcome = _plan(loaded, store, started, end, force, work)
    finally:
        store.close()
    outcome.log = log_path
    return outcome


def _plan(
    loaded: LoadedBatchConfig, store: Store, started: dt.datetime, end: float, force: bool, work: Path
) -> BatchOutcome:
    checkpoint("load")
    setup = load_scenario_file(loaded.scenario)
    scenario = setup.loaded.scenario
    with store.transaction() as session:
        firm = Commitments(
            firm_order_lines(session, setup.base_name), display_url(store.url), setup.base_name
        )
    snapshot = build_snapshot(loaded, setup.loaded.data_dir, store.url, work / "tables")
    tonight = LoadedScenario(
        scenario=scenario,
        path=setup.loaded.path,
        data_dir=snapshot.folder,
        sourcing_origin=setup.loaded.sourcing_origin,
    )
    try:
        problem = build_problem(tonight, setup.changes, setup.classes, firm)
    except InputError as exc:
        raise snapshot.locate(exc) from exc
    input_settings = scenario.solver
    write_inputs(problem, input_settings, work / "inputs")
    input_hash = hash_folder(work / "inputs")
    logger.info("inputs loaded: hash %s", input_hash[:12], extra={"input_hash": input_hash})

    published = _published_run(store, scenario.name, input_hash)
    if published is not None and not force:
        logger.info(
            "inputs unchanged since run %d: its plan stands (use --force to plan again)",
            published.id,
            extra={"run_id": published.id},
        )
        return BatchOutcome("unchanged", published.id, Path(published.output_dir))

    start_plans, carried = _carried_plan(store, problem)
    left = end - time.monotonic()
    reserve = max(WRITE_RESERVE_SECONDS, WRITE_RESERVE_SHARE * left)
    share = MAIN_SHARE_WITH_WHAT_IFS if loaded.what_if else 1.0
    time_limit = min(input_settings.time_limit, (left - reserve) * share)
    if time_limit < MIN_SOLVE_SECONDS:
        raise NoSolutionError(f"the deadline leaves {max(left, 0):.0f} s: no time to plan")
    settings = input_settings.model_copy(update={"time_limit": time_limit})
    checkpoint("solve", time_limit=round(time_limit, 1))
    run = solve_problem(problem, settings, start_plans)
    run.commitments = firm
    logger.info(
        "plan: cost %.2f, %d purchase orders",
        run.objective,
        len(run.evaluation.purchase_orders),
        extra={
            "objective": run.objective,
            "best_bound": run.solve.best_bound,
            "gap": relative_gap(run.objective, run.solve.best_bound),
        },
    )
    batch_info = {
        "deadline_seconds_left_at_solve": round(left, 1),
        "time_limit": time_limit,
        "carried_plan": carried,
    }
    run_id, run_dir = _publish(
        run, settings, input_settings, loaded.output_root, store, started, batch_info, end
    )
    what_if = _what_ifs(loaded, firm, run_dir, end, snapshot)
    return BatchOutcome("planned", run_id, run_dir, run.summary, what_if)


def _published_run(store: Store, scenario: str, input_hash: str) -> Run | None:
    with store.transaction() as session:
        runs = session.scalars(
            select(Run).where(Run.scenario == scenario, Run.input_hash == input_hash).order_by(Run.id.desc())
        ).all()
    return next((run for run in runs if Path(run.output_dir).is_dir()), None)


def _carried_plan(
    store: Store, problem: ProblemData
) -> tuple[list[tuple[pd.DataFrame, pd.DataFrame]], dict[str, Any] | None]:
    """Last run's still-undecided proposals and its transfers, moved to tonight's periods by date and
    repaired into a valid plan: the start the solver must beat. Approved and sent orders are already
    open orders; rejected ones were refused by a buyer."""
    scenario = problem.scenario
    with store.transaction() as session:
        last = session.scalars(
            select(Run).where(Run.scenario == scenario.name).order_by(Run.id.desc()).limit(1)
        ).one_or_none()
        if last is None or not Path(last.output_dir).is_dir():
            return [], None
        undecided = set(
            session.scalars(
                select(PurchaseOrder.plan_po_id).where(
                    PurchaseOrder.run_id == last.id, PurchaseOrder.status == POStatus.PROPOSED.value
                )
            ).all()
        )
        last_start, last_id, folder = last.horizon_start, last.id, Path(last.output_dir)
    try:
        orders = pd.read_csv(folder / "orders.csv", dtype={"supplier": str, "sku": str, "warehouse": str})
        transfers = pd.read_csv(
            folder / "transfer_plan.csv", dtype={"sku": str, "from_warehouse": str, "to_warehouse": str}
        )
    except (OSError, ValueError) as exc:
        logger.warning("last night's plan cannot be read (%s): not carried forward", exc)
        return [], None
    shift = 0
    if last_start is not None and scenario.horizon.start is not None:
        shift = (scenario.horizon.start - last_start).days // scenario.horizon.period_length_days
    orders = orders[orders["po_id"].isin(undecided)].assign(order_period=lambda f: f["order_period"] - shift)
    orders = orders[(orders["order_period"] >= 0) & (orders["order_period"] < problem.periods)]
    transfers = transfers.assign(ship_period=lambda f: f["ship_period"] - shift)
    transfers = transfers[(transfers["ship_period"] >= 0) & (transfers["ship_period"] < problem.periods)]
    try:
        repaired = repair_plan(problem, orders.reset_index(drop=True), transfers.reset_index(drop=True))
        evaluation = evaluate_plan(problem, *repaired)
    except (KeyError, ValueError) as exc:  # a plan naming things tonight's tables no longer have
        logger.warning("last night's plan does not fit tonight's inputs (%s): not carried forward", exc)
        return [], None
    carried = {
        "run_id": last_id,
        "lines": len(orders),
        "lines_after_repair": len(evaluation.orders),
        "cost": evaluation.total_cost,
        "valid": evaluation.is_valid,
    }
    logger.info(
        "carried forward from run %d: %d lines, cost %.2f after repair",
        last_id,
        len(evaluation.orders),
        evaluation.total_cost,
        extra={"carried_plan": carried},
    )
    return [repaired], carried


def run_folder_name(scenario: str, started: dt.datetime) -> str:
    return f"{started:%Y-%m-%dT%H%M%S}-{safe_name(scenario)}"


def _publish(
    run: RunResult,
    settings: SolverSettings,
    input_settings: SolverSettings,
    root: Path,
    store: Store,
    started: dt.datetime,
    batch_info: dict[str, Any],
    end: float,
) -> tuple[int, Path]:
    """Write the run folder hidden, record the run in one transaction, commit, then reveal the folder."""
    checkpoint("write")
    root.mkdir(parents=True, exist_ok=True)
    name = run_folder_name(run.problem.scenario.name, started)
    final = root / name
    suffix = 1
    while final.exists() or (root / f".{final.name}{PARTIAL_SUFFIX}").exists():
        suffix += 1
        final = root / f"{name}-{suffix}"
    partial = root / f".{final.name}{PARTIAL_SUFFIX}"
    explanations = explain_lines(run.problem, run.evaluation)
    session = store.session()
    run_id = -1
    try:
        partial.mkdir()

        def record(summary: dict[str, Any]) -> dict[str, Any]:
            nonlocal run_id
            stored = record_in_store(
                session, store, run, explanations, final, started.astimezone(dt.timezone.utc)
            )
            run_id = stored["run_id"]
            return {"store": stored, "batch": batch_info}

        fill_run_folder(
            run,
            settings,
            partial,
            before_summary=record,
            input_settings=input_settings,
            deadline=end - PUBLISH_SECONDS,
        )
        fsync_tree(partial)
        checkpoint("files_written")
        session.commit()
    except BaseException:
        session.rollback()
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        session.close()
    checkpoint("store_committed", run_id=run_id)
    partial.rename(final)
    _fsync_folder(root)
    checkpoint("published", run_id=run_id, run_dir=str(final))
    return run_id, final


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def recover(root: Path, store: Store) -> list[str]:
    """Finish or undo what a killed batch left in ``root``: a hidden ``.NAME.partial`` folder whose run
    the store has committed is renamed to ``NAME``; any other is deleted, as are a batch's working
    folders (``.work-…``) and leftovers of atomic writes of what-if folders. Returns what was done (also
    logged). Runs under the batch lock, so no working folder deleted here belongs to a live batch."""
    checkpoint("recover")
    if not root.is_dir():
        return []
    actions: list[str] = []
    with store.transaction() as session:
        committed = set(session.scalars(select(Run.output_dir)).all())
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(WORK_PREFIX) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            actions.append(f"removed {entry.name}: the working folder of a batch that was stopped")
            continue
        if not (entry.name.startswith(".") and entry.name.endswith(PARTIAL_SUFFIX) and entry.is_dir()):
            continue
        final = root / entry.name[1 : -len(PARTIAL_SUFFIX)]
        if str(final) in committed and not final.exists():
            entry.rename(final)
            actions.append(f"completed {final.name}: its run was recorded but the folder not yet in place")
        else:
            shutil.rmtree(entry, ignore_errors=True)
            actions.append(f"removed {entry.name}: left by a batch stopped before it recorded its run")
    for leftover in root.glob("*/what-if/.*"):
        if ".tmp-" in leftover.name or ".old-" in leftover.name:
            shutil.rmtree(leftover, ignore_errors=True)
            actions.append(f"removed {leftover.relative_to(root)}: an unfinished what-if write")
    for action in actions:
        logger.warning("recovery: %s", action)
    return actions


def _what_ifs(
    loaded: LoadedBatchConfig, firm: Commitments, run_dir: Path, end: float, snapshot: Snapshot
) -> list[dict[str, Any]]:
    """Plan each what-if while time lasts: named scenarios of the main file on tonight's tables, then
    what-if files on their own data; each written atomically to ``run_dir/what-if/<name>/``."""
    jobs: list[tuple[str, Path, list[str]]] = [
        (name, loaded.scenario, [name]) for name in loaded.config.what_if_scenarios
    ] + [(str(given), path, []) for given, path in zip(loaded.config.what_if, loaded.what_if, strict=True)]
    results: list[dict[str, Any]] = []
    for index, (label, path, names) in enumerate(jobs):
        checkpoint("what_if", what_if=label)
        left = end - time.monotonic()
        reserve = max(WRITE_RESERVE_SECONDS, WRITE_RESERVE_SHARE * left)
        time_limit = (left - reserve) / (len(jobs) - index)
        entry: dict[str, Any] = {"what_if": label}
        if time_limit < MIN_SOLVE_SECONDS:
            entry.update(status="skipped", reason="no time left before the deadline")
            logger.warning("what-if %s skipped: no time left before the deadline", label)
            results.append(entry)
            continue
        try:
            setup = load_scenario_file(path, names)
            target = setup.loaded
            if names:  # a named scenario of the main file: tonight's tables, not the file's data folder
                target = LoadedScenario(
                    scenario=target.scenario,
                    path=target.path,
                    data_dir=snapshot.folder,
                    sourcing_origin=target.sourcing_origin,
                )
            commitments = Commitments(firm.lines, firm.source, firm.scenario)
            try:
                problem = build_problem(target, setup.changes, setup.classes, commitments)
            except InputError as exc:
                raise snapshot.locate(exc) from exc
            solver = target.scenario.solver
            settings = solver.model_copy(update={"time_limit": min(solver.time_limit, time_limit)})
            run = solve_problem(problem, settings)
            run.commitments = commitments
            out = run_dir / "what-if" / safe_name(target.scenario.name)
            write_run(run, settings, out, deadline=end - PUBLISH_SECONDS)
            entry.update(status="planned", objective=run.objective, out=str(out))
            logger.info("what-if %s: cost %.2f -> %s", label, run.objective, out)
        except OptistockError as exc:
            entry.update(status="failed", reason=str(exc), exit_code=int(exc.exit_code))
            logger.error("what-if %s failed: %s", label, exc)
        results.append(entry)
    return results
