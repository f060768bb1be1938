"""Where and why a plan keeps less than the safety stock.

For every SKU, warehouse and period whose end stock is below the safety stock, the reasons are checked
in this order, and every one that holds is reported (``reason`` joins them with ``; ``):

- ``lead time``: no order line or transfer can arrive by then (period < the earliest arrival over the
  offers that reach the warehouse and its inbound transfer links);
- ``storage capacity``: the warehouse is full — less than one unit of the SKU's volume is free;
- ``budget``: every order period whose lines could arrive in time has less budget left than one unit of
  the cheapest offer costs;
- ``supplier capacity``: every offer that could arrive in time belongs to a supplier with less capacity
  left, in every such order period, than the offer's minimum order;
- ``cost`` when none of those holds: topping up would cost more than the shortfall penalty saves (a
  purchase-order cost or MOQ for a few units, or stock that would be left over at the horizon's end).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optistock.postprocess.simulate import PlanEvaluation, safety_shortfall
from optistock.preprocess.data import ProblemData
from optistock.preprocess.service import replenishment_options

SHORTFALL_COLUMNS = [
    "sku",
    "warehouse",
    "period",
    "safety_stock",
    "end_stock",
    "shortfall",
    "penalty",
    "reason",
]


def shortfall_table(problem: ProblemData, evaluation: PlanEvaluation) -> pd.DataFrame:
    """One row per SKU, warehouse and period below its safety stock, with the reason (module docstring)."""
    if not problem.has_service_targets:
        return pd.DataFrame(columns=SHORTFALL_COLUMNS)
    inventory = evaluation.inventory
    short = safety_shortfall(problem, inventory, units=True)
    rows = inventory.loc[short > 1e-6, ["sku", "warehouse", "period", "end_stock"]].copy()
    if rows.empty:
        return pd.DataFrame(columns=SHORTFALL_COLUMNS)
    rows["shortfall"] = short[rows.index]
    rows["safety_stock"] = rows["end_stock"] + rows["shortfall"]
    rows["penalty"] = rows["shortfall"] * rows["sku"].map(problem.shortfall_penalty).astype(float)

    options = _options(problem)
    earliest = options.groupby(["sku", "warehouse"])["lead_time"].min().to_dict()
    inbound = problem.transfer_links["lead_time"].groupby(level="to_warehouse").min().to_dict()
    free_volume = _free_volume(problem, inventory)
    budget_left = problem.budget - evaluation.orders.groupby("order_period")["line_value"].sum().reindex(
        problem.budget.index, fill_value=0.0
    )
    used = evaluation.orders.groupby(["supplier", "order_period"])["quantity"].sum()
    supplier_used = {
        (str(s), int(t)): float(q)
        for s, t, q in zip(
            used.index.get_level_values(0), used.index.get_level_values(1), used.to_numpy(), strict=True
        )
    }
    volume = problem.skus["unit_volume"].astype(float)
    options_by_cell = {key: group for key, group in options.groupby(["sku", "warehouse"])}

    reasons: list[str] = []
    for sku, warehouse, period in zip(rows["sku"], rows["warehouse"], rows["period"], strict=True):
        found: list[str] = []
        first = min(earliest.get((sku, warehouse), np.inf), inbound.get(warehouse, np.inf))
        if period < first:
            found.append(
                "lead time"
                + (f": nothing can arrive before period {int(first)}" if np.isfinite(first) else "")
            )
        else:
            if free_volume.get((warehouse, int(period)), np.inf) < float(volume[sku]) - 1e-9:
                found.append("storage capacity")
            cell = options_by_cell.get((sku, warehouse))
            if cell is not None and len(cell):
                if _budget_binding(cell, int(period), budget_left):
                    found.append("budget")
                if _supplier_binding(problem, cell, int(period), supplier_used):
                    found.append("supplier capacity")
        reasons.append("; ".join(found) or "cost")
    rows["reason"] = reasons
    return rows[SHORTFALL_COLUMNS].reset_index(drop=True)


def _options(problem: ProblemData) -> pd.DataFrame:
    return replenishment_options(problem.offers, problem.lanes)


def _free_volume(problem: ProblemData, inventory: pd.DataFrame) -> dict[tuple[str, int], float]:
    volume = inventory["end_stock"] * inventory["sku"].map(problem.skus["unit_volume"]).astype(float)
    used = volume.groupby([inventory["warehouse"], inventory["period"]]).sum()
    warehouses = used.index.get_level_values(0)
    capacity = warehouses.map(problem.warehouses["capacity"].to_dict()).astype(float)
    periods = used.index.get_level_values(1)
    return {
        (str(w), int(t)): float(c - u)
        for w, t, c, u in zip(warehouses, periods, capacity, used.to_numpy(), strict=True)
    }


def _budget_binding(options: pd.DataFrame, period: int, budget_left: pd.Series) -> bool:
    """Every order period that could deliver by ``period`` has a budget with less than one unit left."""
    cheapest = float(options["unit_price"].min())
    latest = period - int(options["lead_time"].min())
    order_periods = range(0, latest + 1)
    if not len(order_periods):
        return False
    return all(t in budget_left.index and float(budget_left[t]) < cheapest - 1e-9 for t in order_periods)


def _supplier_binding(
    problem: ProblemData, options: pd.DataFrame, period: int, used: dict[tuple[str, int], float]
) -> bool:
    """Every offer that could deliver by ``period`` lacks supplier capacity for its minimum order."""
    any_in_time = False
    for supplier, lead_time, moq, multiple in zip(
        options["supplier"].astype(str),
        options["lead_time"].astype(int),
        options["moq"].astype(int),
        options["order_multiple"].astype(int),
        strict=True,
    ):
        minimum = max(moq, multiple, 1)
        for order_period in range(0, period - lead_time + 1):
            any_in_time = True
            capacity = problem.supplier_capacity_in(supplier, order_period)
            if np.isnan(capacity) or capacity - used.get((supplier, order_period), 0.0) >= minimum:
                return False
    return any_in_time
