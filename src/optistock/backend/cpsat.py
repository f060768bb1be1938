"""OR-Tools CP-SAT as a second backend for the same model (``solver: {name: cpsat}``).

One source of truth: CP-SAT gets the model that Pyomo built and handed to HiGHS — the columns, bounds,
integrality, rows and objective of the loaded :class:`~optistock.backend.solve.HighsSession`, read back
with ``getLp()`` — never a second formulation. CP-SAT needs integer variables and integer coefficients:

- **Every column becomes an integer variable.** The continuous columns (``stock``, ``backorder``,
  ``segment_quantity``, ``safety_shortfall`` and the extensions' quantities) take whole values at an
  optimum when every quantity that enters them is whole: demand, stock on hand, open orders and safety
  stock (checked by :func:`whole_unit_data`; a problem with fractional units is refused with an
  :class:`~optistock.errors.InputError`). Order and transfer quantities are whole by construction, so
  every stock balance then has a whole right-hand side, and stock and backorder, which are max(net, 0)
  and max(−net, 0) at an optimum, are whole too.
- **Unbounded columns** (stock of a SKU without volume) get the bound :func:`unit_ceiling`: twice every
  unit that can ever be in the network, which no quantity of a valid plan exceeds.
- **Rows** are scaled by the smallest power of ten (up to 10⁶) that makes their coefficients whole; the
  bounds are then rounded inward (a ≤ bound down, a ≥ bound up), which keeps exactly the integer points.
  A row that cannot be made whole is refused.
- **The objective** is scaled by the smallest power of ten (up to 10⁶) that makes it whole and, where it
  cannot, every coefficient is rounded *down*. All columns are non-negative, so CP-SAT's objective
  never exceeds the true cost of a plan, and CP-SAT's best bound divided by the scale is a true lower
  bound. The plan itself is re-simulated by the engine, so the reported cost is exact either way.

The engine uses it for the full MILP (the last step of the strategy) and for the monolithic baseline;
the LP relaxation, the structure phase and the sub-problems stay on HiGHS, which CP-SAT has no LP for.
"""

from __future__ import annotations

import logging
import math
import time
from importlib.metadata import version
from typing import Any

import numpy as np
import pyomo.environ as pyo
from ortools.sat.python import cp_model
from pyomo.common.collections import ComponentMap

from optistock.backend.sets import ModelSets, network_units
from optistock.backend.solve import HighsSession, SolveResult, SolveStatus
from optistock.errors import InputError
from optistock.preprocess.data import ProblemData
from optistock.preprocess.scenario import SolverSettings

logger = logging.getLogger(__name__)

MAX_SCALE_DIGITS = 6
"""Rows and the objective are scaled by at most 10**MAX_SCALE_DIGITS to make them whole."""


def decimal_scale(values: np.ndarray, max_digits: int = MAX_SCALE_DIGITS) -> tuple[int, bool]:
    """The smallest power of ten 10**k (k ≤ ``max_digits``) making every value whole, and whether it does
    (if not, 10**max_digits and False)."""
    for digits in range(max_digits + 1):
        scaled = values * 10**digits
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-9 * np.maximum(1.0, np.abs(scaled))):
            return 10**digits, True
    return 10**max_digits, False


def whole_unit_data(problem: ProblemData) -> list[str]:
    """The inputs with fractional units (empty when CP-SAT can take the model)."""
    checks = {
        "demand.quantity": problem.demand.to_numpy(dtype=float),
        "inventory.on_hand": problem.on_hand.to_numpy(dtype=float),
        "open_orders.quantity": problem.open_orders["quantity"].to_numpy(dtype=float),
        "safety stock": problem.safety_stock.to_numpy(dtype=float),
    }
    return [name for name, values in checks.items() if len(values) and not decimal_scale(values, 0)[1]]


def unit_ceiling(problem: ProblemData, sets: ModelSets) -> float:
    """A bound on every quantity of a valid plan: twice every unit that can ever be in the network plus
    all demand (stock, backorders and transfers are each at most that)."""
    demand = float(problem.demand.clip(lower=0).sum())
    return 2.0 * (sum(network_units(sets).values()) + demand) + 1.0


class CpSatSession:
    """The model loaded into HiGHS, translated for CP-SAT; same ``set_start`` / ``solve`` as HiGHS."""

    def __init__(self, highs: HighsSession, problem: ProblemData, sets: ModelSets) -> None:
        fractional = whole_unit_data(problem)
        if fractional:
            raise InputError(
                "solver.name cpsat needs whole units, but these inputs have fractional quantities: "
                + ", ".join(fractional)
                + "; use solver.name highs",
                field="solver.name",
            )
        self.highs = highs
        self.model = highs.model
        self.cp = cp_model.CpModel()
        lp = highs._highs.getLp()
        lower, upper = np.asarray(lp.col_lower_), np.asarray(lp.col_upper_)
        if np.any(lower < -1e-9):
            raise InputError("solver.name cpsat needs non-negative variables", field="solver.name")
        ceiling = unit_ceiling(problem, sets)
        self.columns = [
            self.cp.new_int_var(
                math.ceil(lo - 1e-9),
                math.floor(min(hi, ceiling) + 1e-9) if math.isfinite(hi) else math.floor(ceiling),
                f"x{j}",
            )
            for j, (lo, hi) in enumerate(zip(lower, upper, strict=True))
        ]
        self._add_rows(lp)
        costs = np.asarray(lp.col_cost_, dtype=float)
        self.scale, exact = decimal_scale(costs)
        coefficients = np.floor(costs * self.scale + 1e-9).astype(np.int64)
        self.offset = float(lp.offset_)
        self.cp.minimize(sum(int(c) * self.columns[j] for j, c in enumerate(coefficients) if c != 0))
        if not exact:
            logger.info(
                "CP-SAT objective rounded down at 1/%d: its bound stays a true lower bound", self.scale
            )

    def _add_rows(self, lp: Any) -> None:
        matrix = lp.a_matrix_
        starts, index, values = (
            np.asarray(matrix.start_),
            np.asarray(matrix.index_),
            np.asarray(matrix.value_),
        )
        rows: list[list[tuple[int, float]]] = [[] for _ in range(lp.num_row_)]
        if matrix.format_ == 1:  # column-wise
            for column in range(lp.num_col_):
                for k in range(starts[column], starts[column + 1]):
                    rows[index[k]].append((column, values[k]))
        else:
            for row in range(lp.num_row_):
                rows[row] = [(int(index[k]), values[k]) for k in range(starts[row], starts[row + 1])]
        for row, terms in enumerate(rows):
            coefficients = np.array([value for _, value in terms], dtype=float)
            scale, exact = decimal_scale(coefficients) if terms else (1, True)
            if not exact:
                raise InputError(
                    f"solver.name cpsat cannot scale row {row} of the model to whole coefficients; "
                    "use solver.name highs",
                    field="solver.name",
                )
            expression = sum(round(value * scale) * self.columns[column] for column, value in terms)
            low, high = float(lp.row_lower_[row]), float(lp.row_upper_[row])
            if math.isfinite(low):
                self.cp.add(expression >= math.ceil(low * scale - 1e-6))
            if math.isfinite(high):
                self.cp.add(expression <= math.floor(high * scale + 1e-6))

    def set_start(self, values: ComponentMap) -> None:
        """Hint a complete assignment (CP-SAT's solution hint)."""
        self.cp.clear_hints()
        for var, value in values.items():
            column = self.highs._column(var)
            self.cp.add_hint(self.columns[column], round(value))

    def solve(self, settings: SolverSettings, time_limit: float | None = None) -> SolveResult:
        started = time.perf_counter()
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(time_limit or settings.time_limit, 0.5)
        solver.parameters.num_workers = max(settings.threads, 1)
        solver.parameters.random_seed = settings.seed
        solver.parameters.relative_gap_limit = settings.mip_gap
        code = solver.solve(self.cp)
        has_solution = code in (cp_model.OPTIMAL, cp_model.FEASIBLE)
        if code == cp_model.MODEL_INVALID:
            raise RuntimeError(f"CP-SAT rejected the model: {self.cp.validate()}")
        if code == cp_model.INFEASIBLE:
            status = SolveStatus.INFEASIBLE
        elif not has_solution:
            status = SolveStatus.NO_SOLUTION
        elif code == cp_model.OPTIMAL:
            status = SolveStatus.OPTIMAL
        else:
            status = SolveStatus.FEASIBLE
        objective = None
        if has_solution:
            values = [solver.value(column) for column in self.columns]
            column_of = self.highs.solver._pyomo_var_to_solver_var_map
            for var in self.model.component_data_objects(pyo.Var, active=True):
                column = column_of.get(id(var))
                if column is not None:
                    var.set_value(float(values[column]), skip_validation=True)
            objective = float(pyo.value(self.model.total_cost))
        bound = solver.best_objective_bound / self.scale + self.offset
        return SolveResult(
            status=status,
            termination=solver.status_name(code),
            objective=objective,
            best_bound=bound if math.isfinite(bound) and status is not SolveStatus.INFEASIBLE else None,
            solver="cpsat",
            solver_version=version("ortools"),
            seconds=time.perf_counter() - started,
        )
