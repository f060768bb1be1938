"""A first plan for the solver to improve on: round the LP relaxation, then repair it until valid.

The MILP alone can spend its whole time limit at the root node of large instances without finding
any plan (the plan that orders nothing is feasible but the solver's heuristics rarely try it). This
module turns the LP relaxation's order quantities into whole, MOQ- and pack-respecting lines, then
removes lines until the independent re-simulation reports no broken rule. The result is always a valid
plan (in the worst case the empty one) and is handed to HiGHS as a MIP start.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap

from optistock.backend.sets import ModelSets, round_down, round_up
from optistock.postprocess.simulate import evaluate_plan
from optistock.preprocess.data import ProblemData

logger = logging.getLogger(__name__)

MAX_REPAIR_ROUNDS = 200


def round_lp_quantities(sets: ModelSets, lp_quantity: dict[tuple, float]) -> pd.DataFrame:
    """Whole, MOQ- and pack-respecting quantities that track the LP's cumulative quantities.

    For each (supplier, sku, warehouse), walking through the order periods, an order is placed when the
    LP's cumulative quantity runs ahead of what has been ordered so far by at least half the smallest
    allowed quantity, and it is sized to catch up (at least the MOQ, rounded to the pack). Rounding
    cumulative sums instead of single lines keeps the total bought close to the LP's.
    """
    by_lane: dict[tuple[str, str, str], list[tuple]] = {}
    for key in sorted(lp_quantity, key=lambda k: (k[0], k[1], k[2], k[3])):
        by_lane.setdefault((key[0], key[1], key[2]), []).append(key)
    rows = []
    for keys in by_lane.values():
        cumulative_lp = 0.0
        ordered = 0
        for key in keys:
            line = sets.lines[key]
            cumulative_lp += max(lp_quantity[key], 0.0)
            minimum = max(line.moq, line.pack_size)
            behind = cumulative_lp - ordered
            if behind < 0.5 * minimum:
                continue
            whole = round_up(max(behind - 1e-6, minimum), line.pack_size)
            whole = min(whole, round_down(line.max_quantity, line.pack_size))
            if whole >= minimum:
                rows.append((*key, whole))
                ordered += whole
    return pd.DataFrame(rows, columns=["supplier", "sku", "warehouse", "order_period", "quantity"])


def repair_plan(problem: ProblemData, orders: pd.DataFrame) -> pd.DataFrame:
    """Drop order lines until the plan (without transfers) breaks no rule; returns the kept lines."""
    no_transfers = pd.DataFrame(columns=["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"])
    orders = orders.reset_index(drop=True)
    for round_number in range(MAX_REPAIR_ROUNDS):
        evaluation = evaluate_plan(problem, orders, no_transfers)
        if evaluation.is_valid:
            logger.info("start plan valid after %d repair round(s): %d lines", round_number, len(orders))
            return orders
        priced = orders.merge(
            evaluation.orders[["supplier", "sku", "warehouse", "order_period", "line_value", "arrival_period"]],
            on=["supplier", "sku", "warehouse", "order_period"],
        )
        drop = _lines_to_drop(problem, priced, evaluation.inventory)
        if not drop:
            break
        orders = orders.drop(index=sorted(drop)).reset_index(drop=True)
    logger.info("no valid rounded start plan found; starting from the empty plan")
    return orders.iloc[0:0]


def _lines_to_drop(problem: ProblemData, orders: pd.DataFrame, inventory: pd.DataFrame) -> set[int]:
    """Indices of lines whose removal moves the plan towards validity (one rule family at a time)."""
    drop: set[int] = set()
    orders = orders.assign(_row=np.arange(len(orders)))
    suppliers = problem.suppliers
    # Minimum order value: drop purchase orders that do not reach it.
    po_value = orders.groupby(["supplier", "warehouse", "order_period"])["line_value"].transform("sum")
    minimum = orders["supplier"].map(suppliers["min_order_value"]).fillna(0.0)
    drop |= set(orders.loc[po_value + 1e-6 < minimum, "_row"])
    # Supplier capacity: drop the smallest lines of a supplier-period over capacity.
    capacity = orders["supplier"].map(suppliers["capacity"])
    for (_, _), group in orders[capacity.notna()].groupby(["supplier", "order_period"]):
        limit = float(suppliers.at[group["supplier"].iloc[0], "capacity"])
        drop |= _drop_smallest(group, "quantity", float(group["quantity"].sum()) - limit)
    # Budget: drop the smallest lines of a period over budget.
    for period, group in orders.groupby("order_period"):
        if period in problem.budget.index:
            drop |= _drop_smallest(group, "line_value", float(group["line_value"].sum()) - float(problem.budget[period]))
    if drop:
        return drop
    # Storage: for each warehouse-period over capacity, drop the latest large line that arrived by then.
    volume = inventory["end_stock"] * inventory["sku"].map(problem.skus["unit_volume"])
    used = volume.groupby([inventory["warehouse"], inventory["period"]]).sum()
    capacity_w = problem.warehouses["capacity"]
    for (warehouse, period), value in used.items():
        if value > float(capacity_w[warehouse]) + 1e-6:
            candidates = orders[(orders["warehouse"] == warehouse) & (orders["arrival_period"] <= period)]
            if len(candidates):
                unit_volume = candidates["sku"].map(problem.skus["unit_volume"])
                ranked = candidates.assign(_volume=candidates["quantity"] * unit_volume)
                drop.add(int(ranked.sort_values(["arrival_period", "_volume"]).iloc[-1]["_row"]))
    return drop


def _drop_smallest(group: pd.DataFrame, column: str, excess: float) -> set[int]:
    dropped: set[int] = set()
    if excess <= 1e-6:
        return dropped
    for _, row in group.sort_values(column).iterrows():
        dropped.add(int(row["_row"]))
        excess -= float(row[column])
        if excess <= 1e-6:
            break
    return dropped


def start_values(
    model: pyo.ConcreteModel, sets: ModelSets, orders: pd.DataFrame, transfers: pd.DataFrame, inventory: pd.DataFrame
) -> ComponentMap:
    """A complete assignment of the model's variables for a plan (order lines, transfers, its stock).

    Lines and transfers of the plan that the model has no variable for are ignored; the caller makes
    sure the model's scope covers the plan.
    """
    values = ComponentMap()
    quantity = {
        (s, i, w, int(t)): float(q)
        for s, i, w, t, q in orders[["supplier", "sku", "warehouse", "order_period", "quantity"]].itertuples(index=False)
    }
    for key, var in model.packs.items():
        line = sets.lines[key]
        q = quantity.get(key, 0.0)
        values[var] = q / line.pack_size
        if key in model.line_active:
            values[model.line_active[key]] = 1.0 if q > 0 else 0.0
        for k, segment in enumerate(line.segments):
            chosen = q > 0 and segment.low <= q <= segment.high
            values[model.segment_active[(*key, k)]] = 1.0 if chosen else 0.0
            values[model.segment_quantity[(*key, k)]] = q if chosen else 0.0
    placed = {(s, w, t) for (s, i, w, t), q in quantity.items() if q > 0 and (s, i, w, t) in model.packs}
    for key, var in model.po_open.items():
        values[var] = 1.0 if key in placed else 0.0
    shipped = {
        (i, a, b, int(t)): float(q)
        for i, a, b, t, q in transfers[["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"]].itertuples(
            index=False
        )
    }
    for key, var in model.transfer.items():
        values[var] = shipped.get(key, 0.0)
    cells = inventory.set_index(["sku", "warehouse", "period"])
    end_stock = cells["end_stock"].to_dict()
    backorder = cells["backorder"].to_dict()
    for key, var in model.stock.items():
        values[var] = float(end_stock[key])
        values[model.backorder[key]] = float(backorder[key])
    for key, var in model.has_stock.items():
        values[var] = 1.0 if float(backorder[key]) <= 1e-9 else 0.0
    return values
