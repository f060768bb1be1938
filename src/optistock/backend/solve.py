"""Solve a built model with HiGHS and normalise what the solver says into a small result type."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import highspy
import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from optistock.preprocess.scenario import SolverSettings

VariableKey = tuple[Any, ...]  # (name, *index) of a variable asked for in the LP relaxation

logger = logging.getLogger(__name__)


_first_highs_made = False


def quiet_highs() -> highspy.Highs:
    """A new HiGHS instance with its output off.

    HiGHS prints its banner on stdout when a process makes its first instance, before any option can
    be set. The first instance made here is made with the process's stdout (the file descriptor HiGHS
    writes to) sent to the null device, so that optistock's stdout, its Dask workers' included,
    carries only what optistock writes itself."""
    global _first_highs_made
    if _first_highs_made:
        highs = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 1)
                highs = highspy.Highs()
                _flush_c_stdout()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _first_highs_made = True
    highs.setOptionValue("output_flag", False)
    return highs


def _flush_c_stdout() -> None:
    """Flush the C library's stdout buffer (where HiGHS's banner waits when stdout is a pipe)."""
    with contextlib.suppress(OSError, AttributeError, TypeError):  # no C library by that name (not POSIX)
        ctypes.CDLL(None).fflush(None)


class SolveStatus(str, Enum):
    """Normalised outcome of a solve; raw solver statuses never leave this module."""

    OPTIMAL = "optimal"
    """Proven optimal within the requested relative gap."""
    FEASIBLE = "feasible"
    """A plan was found, but the solver stopped (time limit) before proving the requested gap."""
    NO_SOLUTION = "no_solution"
    """The solver stopped before finding any plan."""
    INFEASIBLE = "infeasible"
    """No plan can satisfy the hard constraints."""


@dataclass(frozen=True)
class SolveResult:
    status: SolveStatus
    termination: str
    objective: float | None
    """The solver's objective of its best plan (before re-simulation)."""
    best_bound: float | None
    solver: str
    solver_version: str
    seconds: float


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """|objective − bound| / |objective|, the MIP gap as HiGHS defines it (0 when both are 0)."""
    if objective is None or bound is None or not math.isfinite(bound):
        return None
    difference = max(objective - bound, 0.0)
    if difference <= 1e-9 * max(1.0, abs(objective)):
        return 0.0
    return difference / abs(objective) if objective != 0 else math.inf


_scheduler_threads: int | None = None


def _use_threads(threads: int) -> None:
    """HiGHS keeps one global thread scheduler per process, sized by the first solve; a later solve
    asking for another thread count fails unless the scheduler is reset first."""
    global _scheduler_threads
    if _scheduler_threads is not None and _scheduler_threads != threads:
        highspy.Highs.resetGlobalScheduler(True)
    _scheduler_threads = threads


@dataclass(frozen=True)
class Relaxation:
    """Outcome of the LP relaxation: a lower bound on the MILP and the values asked for."""

    infeasible: bool
    objective: float | None
    values: dict[VariableKey, float]
    duals: dict[Any, float] = field(default_factory=dict)
    """Row duals of the constraints asked for (HiGHS's sign: ≤ 0 on a binding ≤ row of a minimisation)."""


PROGRESS_EVERY_SECONDS = 10.0
"""How often the MILP's incumbent and bound are logged while HiGHS searches."""


class SolverProgress:
    """Logs HiGHS's MILP progress (INFO, with ``extra={"solver_progress": {...}}`` for JSON logs): every
    better plan it finds, and its incumbent and bound every :data:`PROGRESS_EVERY_SECONDS`."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.next_tick = started + PROGRESS_EVERY_SECONDS

    def _log(self, what: str, event: Any) -> None:
        out = event.data_out
        progress = {
            "seconds": round(time.perf_counter() - self.started, 2),
            "objective": out.objective_function_value
            if math.isfinite(out.objective_function_value)
            else None,
            "bound": out.mip_dual_bound if math.isfinite(out.mip_dual_bound) else None,
            "gap": out.mip_gap if math.isfinite(out.mip_gap) else None,
        }
        logger.info(
            "solver: %s after %.1f s: plan %s, bound %s",
            what,
            progress["seconds"],
            progress["objective"],
            progress["bound"],
            extra={"solver_progress": progress},
        )

    def on_better_plan(self, event: Any) -> None:
        self._log("better plan", event)

    def on_tick(self, event: Any) -> None:
        now = time.perf_counter()
        if now >= self.next_tick:
            self.next_tick = now + PROGRESS_EVERY_SECONDS
            self._log("searching", event)


HighsOptions = Mapping[str, bool | int | float]
"""HiGHS options by name, for one solve (:meth:`HighsSession.solve`, :meth:`HighsSession.solve_variant`)."""


PlanCheck = Callable[[Callable[[pyo.Var], float], float], bool]
"""Looks at a plan the MILP search has just found, given as a function from a model variable to its value
in that plan, and at its objective; ``True`` stops the search (:meth:`HighsSession.solve`)."""


class PlanWatch:
    """Hands every better plan HiGHS finds to a :data:`PlanCheck`; once the check says stop, the search
    is interrupted at HiGHS's next interrupt callback (a better-plan callback cannot interrupt), and the
    solve ends with the best plan so far, as at a time limit."""

    def __init__(self, session: HighsSession, check: PlanCheck) -> None:
        self.session = session
        self.check = check
        self.stopped = False

    def on_better_plan(self, event: Any) -> None:
        if self.stopped:
            return
        solution = event.data_out.mip_solution
        objective = float(event.data_out.objective_function_value)
        self.stopped = self.check(lambda var: float(solution[self.session._column(var)]), objective)

    def on_tick(self, event: Any) -> None:
        if self.stopped:
            event.interrupt()


def _interrupt_expected(record: logging.LogRecord) -> bool:
    """Drops Pyomo's warning about HiGHS's status after an interrupt that :class:`PlanWatch` asked for."""
    return "kInterrupt" not in record.getMessage()


def highs_result(highs: highspy.Highs, started: float, version: str) -> SolveResult:
    """The normalised account of a finished ``highs.run()`` on a model passed to highspy directly:
    status, objective of the best plan, and the proven bound (the MILP's dual bound, or the objective of
    a model solved without branching)."""
    status = highs.getModelStatus()
    info = highs.getInfo()
    has_solution = info.primal_solution_status == 2
    if status in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
        normalised = SolveStatus.INFEASIBLE
    elif not has_solution:
        normalised = SolveStatus.NO_SOLUTION
    elif status == highspy.HighsModelStatus.kOptimal:
        normalised = SolveStatus.OPTIMAL
    else:
        normalised = SolveStatus.FEASIBLE
    if info.mip_node_count >= 0:
        bound: float | None = float(info.mip_dual_bound)
    else:
        bound = float(info.objective_function_value) if normalised is SolveStatus.OPTIMAL else None
    return SolveResult(
        status=normalised,
        termination=highs.modelStatusToString(status),
        objective=float(info.objective_function_value) if has_solution else None,
        best_bound=bound if bound is not None and math.isfinite(bound) else None,
        solver="highs",
        solver_version=version,
        seconds=time.perf_counter() - started,
    )


class HighsSession:
    """One model loaded into HiGHS through Pyomo's persistent interface.

    Besides the MILP solve it offers the LP relaxation (for the start heuristic) and MIP starts, which
    Pyomo's interface does not expose: both work on the underlying ``highspy.Highs`` object through the
    interface's variable → column map.
    """

    def __init__(self, model: pyo.ConcreteModel) -> None:
        self.model = model
        self.solver = Highs()
        if not self.solver.available():
            raise RuntimeError("the HiGHS solver (python package highspy) is not available")
        self.version = ".".join(str(part) for part in self.solver.version())
        self.solver.set_instance(model)
        self._relaxed: highspy.Highs | None = None
        self._base_costs: list[float] = []

    @property
    def _highs(self) -> highspy.Highs:
        return self.solver._solver_model

    def _column(self, var: pyo.Var) -> int:
        return int(self.solver._pyomo_var_to_solver_var_map[id(var)])

    def relaxation(
        self,
        variables: Mapping[VariableKey, pyo.Var],
        time_limit: float,
        threads: int,
        extra_costs: Mapping[pyo.Var, float] | None = None,
        rows: Mapping[Any, Any] | None = None,
    ) -> Relaxation:
        """Solve the LP relaxation; values of ``variables`` in its optimal solution.

        ``extra_costs`` are added to the objective coefficients of the given variables for this solve
        only (used by slope scaling); the relaxation is kept between calls so re-solves start warm.
        ``rows`` maps keys to Pyomo constraints whose duals are wanted (the Lagrangian bound's prices).
        """
        _use_threads(threads)
        if self._relaxed is None:
            lp = self._highs.getLp()
            lp.integrality_ = []
            self._relaxed = quiet_highs()
            self._relaxed.passModel(lp)
            self._base_costs = list(lp.col_cost_)
        relaxed = self._relaxed
        relaxed.setOptionValue("threads", threads)
        relaxed.setOptionValue("time_limit", max(time_limit, 1.0))
        costs = list(self._base_costs)
        for var, extra in (extra_costs or {}).items():
            costs[self._column(var)] += extra
        relaxed.changeColsCost(len(costs), list(range(len(costs))), costs)
        relaxed.run()
        status = relaxed.getModelStatus()
        if status == highspy.HighsModelStatus.kInfeasible:
            return Relaxation(infeasible=True, objective=None, values={})
        if status != highspy.HighsModelStatus.kOptimal:
            return Relaxation(infeasible=False, objective=None, values={})
        column_values = relaxed.getSolution().col_value
        objective = float(relaxed.getInfo().objective_function_value)
        values = {key: float(column_values[self._column(var)]) for key, var in variables.items()}
        duals: dict[Any, float] = {}
        if rows:
            row_duals = relaxed.getSolution().row_dual
            row_of = self.solver._pyomo_con_to_solver_con_map
            duals = {key: float(row_duals[row_of[con]]) for key, con in rows.items() if con in row_of}
        return Relaxation(infeasible=False, objective=objective, values=values, duals=duals)

    def set_start(self, values: ComponentMap) -> None:
        """Hand HiGHS a complete assignment as MIP start (ignored by HiGHS if it is infeasible)."""
        solution = highspy.HighsSolution()
        columns = [0.0] * self._highs.getNumCol()
        for var, value in values.items():
            columns[self._column(var)] = value
        solution.col_value = columns
        solution.value_valid = True
        if self._highs.setSolution(solution) != highspy.HighsStatus.kOk:
            logger.warning("HiGHS refused the start plan")

    def solve_variant(
        self,
        settings: SolverSettings,
        time_limit: float,
        continuous: Iterable[pyo.Var] = (),
        closed: Iterable[pyo.Var] = (),
        start: ComponentMap | None = None,
        mip_gap: float | None = None,
        kept: Mapping[pyo.Var, float] | None = None,
        options: HighsOptions | None = None,
    ) -> SolveResult:
        """Solve a variant of the loaded MILP on a copy of it, leaving the loaded model as it is.

        ``continuous`` variables lose their integrality (the variant is then a *relaxation*: its bound
        is a lower bound on the MILP), ``closed`` variables are fixed to 0 and ``kept`` ones to the
        given values (a *restriction*: its plans are plans of the MILP). ``options``: more HiGHS
        options for this solve. On success the model's variables hold the variant's best solution.
        """
        started = time.perf_counter()
        _use_threads(settings.threads)
        lp = self._highs.getLp()
        integrality = list(lp.integrality_)
        if integrality:
            for var in continuous:
                integrality[self._column(var)] = highspy.HighsVarType.kContinuous
            lp.integrality_ = integrality
        lower, upper = list(lp.col_lower_), list(lp.col_upper_)
        for var in closed:
            column = self._column(var)
            lower[column], upper[column] = 0.0, 0.0
        for var, value in (kept or {}).items():
            column = self._column(var)
            lower[column], upper[column] = value, value
        lp.col_lower_, lp.col_upper_ = lower, upper
        variant = quiet_highs()
        variant.setOptionValue("output_flag", logger.isEnabledFor(logging.DEBUG))
        variant.passModel(lp)
        for option, value in {
            "time_limit": max(time_limit, 0.5),
            "mip_rel_gap": settings.mip_gap if mip_gap is None else mip_gap,
            "threads": settings.threads,
            "random_seed": settings.seed,
            "mip_feasibility_tolerance": 1e-7,
            "primal_feasibility_tolerance": 1e-8,
            **(options or {}),
        }.items():
            variant.setOptionValue(option, value)
        if start is not None:
            solution = highspy.HighsSolution()
            columns = [0.0] * variant.getNumCol()
            for var, value in start.items():
                columns[self._column(var)] = value
            solution.col_value = columns
            solution.value_valid = True
            variant.setSolution(solution)
        variant.run()
        result = highs_result(variant, started, self.version)
        if result.objective is not None:
            values = variant.getSolution().col_value
            for var in self.model.component_data_objects(pyo.Var, active=True):
                column = self.solver._pyomo_var_to_solver_var_map.get(id(var))
                if column is not None:
                    var.set_value(values[column], skip_validation=True)
        return result

    def solve(
        self,
        settings: SolverSettings,
        time_limit: float | None = None,
        stop_if: PlanCheck | None = None,
        options: HighsOptions | None = None,
    ) -> SolveResult:
        """Solve under ``settings``; on success the model's variables hold the best plan found.

        ``stop_if`` sees every better plan the search finds and may stop the search early; the result
        is then that of an interrupted search (termination "interrupted"): the best plan so far and the
        bound proven so far. ``options``: more HiGHS options for this solve only."""
        started = time.perf_counter()
        _use_threads(settings.threads)

        progress = SolverProgress(started)
        listeners = [(progress.on_better_plan, progress.on_tick)]
        watch = PlanWatch(self, stop_if) if stop_if is not None else None
        if watch is not None:
            listeners.append((watch.on_better_plan, watch.on_tick))
        improving, interrupt = self._highs.cbMipImprovingSolution, self._highs.cbMipInterrupt
        for on_better_plan, on_tick in listeners:
            improving.subscribe(on_better_plan)
            interrupt.subscribe(on_tick)
        pyomo_highs_log = logging.getLogger("pyomo.contrib.solver.solvers.highs")
        pyomo_highs_log.addFilter(_interrupt_expected)
        before = {option: self._highs.getOptionValue(option)[1] for option in options or {}}
        try:
            results = self._solve(settings, time_limit, options or {})
        finally:
            for option, value in before.items():  # Pyomo's persistent HiGHS would keep them
                self._highs.setOptionValue(option, value)
            pyomo_highs_log.removeFilter(_interrupt_expected)
            for on_better_plan, on_tick in listeners:
                improving.unsubscribe(on_better_plan)
                interrupt.unsubscribe(on_tick)
        result = self._result(results, started)
        if watch is not None and watch.stopped and result.status is not SolveStatus.OPTIMAL:
            return replace(result, termination="interrupted")
        return result

    def _solve(self, settings: SolverSettings, time_limit: float | None, options: HighsOptions) -> Any:
        return self.solver.solve(
            self.model,
            time_limit=time_limit if time_limit is not None else settings.time_limit,
            rel_gap=settings.mip_gap,
            threads=settings.threads,
            load_solutions=False,
            raise_exception_on_nonoptimal_result=False,
            tee=logger.isEnabledFor(logging.DEBUG),
            solver_options={
                "random_seed": settings.seed,
                "mip_feasibility_tolerance": 1e-7,
                "primal_feasibility_tolerance": 1e-8,
                **options,
            },
        )

    def _result(self, results: Any, started: float) -> SolveResult:
        """The normalised account of a finished solve; loads the plan into the model's variables."""
        seconds = time.perf_counter() - started
        termination = results.termination_condition
        has_solution = results.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible)
        if termination in (TerminationCondition.provenInfeasible, TerminationCondition.infeasibleOrUnbounded):
            status = SolveStatus.INFEASIBLE
        elif not has_solution:
            status = SolveStatus.NO_SOLUTION
        elif termination is TerminationCondition.convergenceCriteriaSatisfied:
            status = SolveStatus.OPTIMAL
        else:
            status = SolveStatus.FEASIBLE
        if has_solution:
            results.solution_loader.load_vars()
        objective = results.incumbent_objective if has_solution else None
        bound = results.objective_bound
        logger.debug(
            "HiGHS %s: %s (%s), objective %s, bound %s, %.2fs",
            self.version,
            status.value,
            termination.name,
            objective,
            bound,
            seconds,
        )
        return SolveResult(
            status=status,
            termination=termination.name,
            objective=objective,
            best_bound=bound if bound is not None and math.isfinite(bound) else None,
            solver="highs",
            solver_version=self.version,
            seconds=seconds,
        )
