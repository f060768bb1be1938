"""Marginal values of the hard limits: what one more unit of budget, storage or supplier capacity is worth.

The plan's discrete decisions are fixed — which purchase orders are placed, which lines are used,
which price segment each line is bought in, and the stock-sign binaries — and the quantities (order
packs, transfers, stock, backorders) are left continuous. That LP is solved with HiGHS, and the dual
price of each limit's row is its marginal value: how much the cost falls per unit the limit is raised,
with the plan's structure kept. It is a local, linear estimate ("1,000 more budget in period 3 saves
about X"): it holds for small moves of one limit; a large move may change which orders are worth
placing, which only a new solve shows.

The model creates a row only where a limit can bind (``BUDGET_PERIODS``, ``STORAGE``, ``CAPACITATED``
in ``models/core.md``); a limit without a row has marginal value 0.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, SupportsInt, cast

import pandas as pd
import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from optistock.backend.heuristics import start_values
from optistock.backend.model import build_model
from optistock.backend.sets import ModelSets, build_sets
from optistock.backend.solve import _use_threads
from optistock.postprocess.simulate import PlanEvaluation
from optistock.preprocess.data import ProblemData

logger = logging.getLogger(__name__)

MARGINAL_COLUMNS = ["limit", "supplier", "warehouse", "period", "capacity", "used", "value_per_unit"]
BINARY_VARIABLES = ("line_active", "segment_active", "po_open", "has_stock", "expiring", "channel_in_stock")
BUDGET_STEP = 1000.0
"""Budget marginal values are quoted per this many currency units in the summary."""


@dataclass
class FixedPlanLP:
    """The LP of a plan with its discrete decisions fixed: its optimum and the duals of the limits."""

    objective: float
    budget: dict[int, float] = field(default_factory=dict)
    """Order period → dual of its ``budget`` row (cost change per unit more budget; ≤ 0)."""
    storage: dict[tuple[str, int], float] = field(default_factory=dict)
    """(warehouse, period) → dual of its ``storage_capacity`` row."""
    supplier: dict[tuple[str, int], float] = field(default_factory=dict)
    """(supplier, period) → dual of its ``supplier_capacity`` row."""


class MarginalValueError(RuntimeError):
    """The fixed-plan LP could not be solved (the summary says so; the run is still written)."""


def solve_fixed_plan_lp(
    problem: ProblemData,
    evaluation: PlanEvaluation,
    adjust_limits: Callable[[ModelSets], None] | None = None,
    threads: int = 1,
    time_limit: float | None = None,
) -> FixedPlanLP:
    """Solve the LP of ``evaluation``'s plan with its discrete decisions fixed.

    ``adjust_limits`` may change the limits in the model's sets before the model is built (tests move a
    limit by a small amount to check the duals by finite differences).
    """
    # Limits are kept out of the variable bounds, so that their whole price shows on their rows: the
    # line bounds are computed without supplier capacity (which then always gets a row where it can
    # bind), and the stock bounds V_w / vol_i, which repeat the storage rows, are dropped.
    uncapped = dataclasses.replace(
        problem,
        suppliers=problem.suppliers.assign(capacity=math.nan),
        supplier_period_capacity=problem.supplier_period_capacity.iloc[:0],
    )
    sets = build_sets(uncapped, all_stock_sign_cells=True)
    sets.supplier_capacity = {
        (str(s), t): limit
        for s in problem.suppliers.index
        for t in range(problem.periods)
        if not math.isnan(limit := problem.supplier_capacity_in(str(s), t))
    }
    sets.stock_upper = dict.fromkeys(sets.stock_upper, math.inf)
    if adjust_limits is not None:
        adjust_limits(sets)
    model = build_model(uncapped, sets)
    planned = evaluation.orders
    unknown = [
        key
        for key in zip(
            planned["supplier"], planned["sku"], planned["warehouse"], planned["order_period"], strict=True
        )
        if (key[0], key[1], key[2], int(key[3])) not in sets.lines
    ]
    if unknown:
        raise MarginalValueError(f"{len(unknown)} plan line(s) lie outside the model, e.g. {unknown[0]}")
    values = start_values(
        model, sets, evaluation.orders, evaluation.transfers, evaluation.inventory, evaluation.channels
    )
    for name in BINARY_VARIABLES:
        if not hasattr(model, name):
            continue  # an extension's binaries (``expiring``) exist only with its data
        for var in getattr(model, name).values():
            var.fix(round(values[var]))
    for var, value in values.items():
        if not var.fixed:
            var.set_value(value, skip_validation=True)
    pyo.TransformationFactory("core.relax_integer_vars").apply_to(model)
    if next(model.component_data_objects(pyo.Var), None) is None:
        return FixedPlanLP(objective=evaluation.total_cost)  # nothing to decide: no limit has a row
    solver = Highs()
    _use_threads(threads)
    results = solver.solve(
        model,
        threads=threads,
        time_limit=time_limit,
        load_solutions=False,
        raise_exception_on_nonoptimal_result=False,
        tee=logger.isEnabledFor(logging.DEBUG),
    )
    if results.termination_condition is not TerminationCondition.convergenceCriteriaSatisfied:
        raise MarginalValueError(f"the fixed-plan LP ended with {results.termination_condition.name}")
    results.solution_loader.load_vars()
    duals = results.solution_loader.get_duals()
    objective = float(pyo.value(model.total_cost))
    return FixedPlanLP(
        objective=objective,
        budget={int(t): float(duals[model.budget[t]]) for t in model.BUDGET_PERIODS},
        storage={(str(w), int(t)): float(duals[model.storage_capacity[w, t]]) for w, t in model.STORAGE},
        supplier={
            (str(s), int(t)): float(duals[model.supplier_capacity[s, t]]) for s, t in model.CAPACITATED
        },
    )


def marginal_value_table(problem: ProblemData, evaluation: PlanEvaluation, lp: FixedPlanLP) -> pd.DataFrame:
    """One row per limit (budget per period, storage per warehouse and period, supplier capacity per
    supplier and period): its capacity, what the plan uses of it, and ``value_per_unit``, the cost saved
    per unit more of it (0 where the model has no row for it)."""
    rows: list[dict[str, Any]] = []
    orders = evaluation.orders
    spend = orders.groupby("order_period")["line_value"].sum()
    for period, amount in problem.budget.items():
        t = int(cast(SupportsInt, period))
        rows.append(
            {
                "limit": "budget",
                "period": t,
                "capacity": float(amount),
                "used": float(spend.get(t, 0.0)),
                "value_per_unit": -lp.budget.get(t, 0.0),
            }
        )
    inventory = evaluation.inventory
    volume = (
        (inventory["end_stock"] * inventory["sku"].map(problem.skus["unit_volume"]))
        .groupby([inventory["warehouse"], inventory["period"]])
        .sum()
    )
    for warehouse, capacity in problem.warehouses["capacity"].items():
        for t in range(problem.periods):
            rows.append(
                {
                    "limit": "storage_capacity",
                    "warehouse": str(warehouse),
                    "period": t,
                    "capacity": float(capacity),
                    "used": float(volume.get((warehouse, t), 0.0)),
                    "value_per_unit": -lp.storage.get((str(warehouse), t), 0.0),
                }
            )
    units = orders.groupby(["supplier", "order_period"])["quantity"].sum()
    for supplier in problem.suppliers.index:
        for t in range(problem.periods):
            capacity = problem.supplier_capacity_in(str(supplier), t)
            if math.isnan(capacity):
                continue
            rows.append(
                {
                    "limit": "supplier_capacity",
                    "supplier": str(supplier),
                    "period": t,
                    "capacity": capacity,
                    "used": float(units.get((supplier, t), 0.0)),
                    "value_per_unit": -lp.supplier.get((str(supplier), t), 0.0),
                }
            )
    table = pd.DataFrame(rows, columns=MARGINAL_COLUMNS)
    table["value_per_unit"] = table["value_per_unit"].astype(float).clip(lower=0.0).round(9) + 0.0
    return table


def describe_marginal_values(table: pd.DataFrame, count: int = 5) -> list[str]:
    """Sentences for the most valuable limits, e.g. "1,000 more budget in period 3 saves about 812.40"."""
    valuable = table[table["value_per_unit"] > 1e-9].sort_values("value_per_unit", ascending=False)
    sentences = []
    for row in valuable.head(count).to_dict("records"):
        if row["limit"] == "budget":
            sentences.append(
                f"{BUDGET_STEP:,.0f} more budget in period {row['period']} saves about "
                f"{BUDGET_STEP * row['value_per_unit']:,.2f}"
            )
        elif row["limit"] == "storage_capacity":
            sentences.append(
                f"1 more unit of storage volume at {row['warehouse']} in period {row['period']} saves about "
                f"{row['value_per_unit']:,.2f}"
            )
        else:
            sentences.append(
                f"1 more unit of {row['supplier']}'s capacity in period {row['period']} saves about "
                f"{row['value_per_unit']:,.2f}"
            )
    return sentences


def compute_marginal_values(
    problem: ProblemData, evaluation: PlanEvaluation, threads: int = 1, time_limit: float | None = None
) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """The marginal-value table of a plan and its entry for ``summary.json``; the table is None (and the
    entry says why) when the fixed-plan LP cannot be solved (within ``time_limit`` seconds, if given)."""
    try:
        lp = solve_fixed_plan_lp(problem, evaluation, threads=threads, time_limit=time_limit)
    except MarginalValueError as exc:
        logger.warning("marginal values not available: %s", exc)
        return None, {"available": False, "reason": str(exc)}
    except Exception as exc:  # an add-on to the plan: a failure here must not lose the plan itself
        logger.warning("marginal values not available (unexpected %s: %s)", type(exc).__name__, exc)
        logger.debug("marginal values failed", exc_info=True)
        return None, {"available": False, "reason": f"unexpected {type(exc).__name__}: {exc}"}
    table = marginal_value_table(problem, evaluation, lp)
    return table, {
        "available": True,
        "method": "duals of the LP with the plan's purchase orders, lines, price segments and "
        "stock-sign decisions fixed (quantities continuous)",
        "fixed_plan_lp_objective": lp.objective,
        "file": "marginal_values.csv",
        "highlights": describe_marginal_values(table),
    }
