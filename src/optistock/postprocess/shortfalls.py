"""Where and why a plan keeps less than the safety stock.

For every SKU, warehouse and period whose end stock is below the safety stock, the reasons are checked
in this order, and every one that holds is reported (``reason`` joins them with ``; ``):

- ``lead time``: no order line or transfer can arrive by then (period < the earliest arrival over the
  offers that reach the warehouse and are not switched off, and its inbound transfer links unless the
  SKU is perishable);
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
    rows = inventory.loc[short > 1e-6, ["sku", "warehouse", "period", "end_stock"]].reset_index(drop=True)
    if rows.empty:
        return pd.DataFrame(columns=SHORTFALL_COLUMNS)
    rows["shortfall"] = short[short > 1e-6].to_numpy()
    rows["safety_stock"] = rows["end_stock"] + rows["shortfall"]
    rows["penalty"] = rows["shortfall"] * rows["sku"].map(problem.shortfall_penalty).astype(float)
    period = rows["period"].to_numpy(dtype=np.int64)
    cell = pd.MultiIndex.from_frame(rows[["sku", "warehouse"]])

    switched_off = {
        (str(s), str(i)) for s, i in problem.offers.index if problem.sourcing.is_off(str(s), str(i))
    }
    options = replenishment_options(problem.offers, problem.lanes, switched_off=switched_off)
    by_offer = options.groupby(["sku", "warehouse"])["lead_time"].min()
    by_transfer = problem.transfer_links["lead_time"].groupby(level="to_warehouse").min()
    transferable = ~rows["sku"].isin(list(problem.shelf_life)).to_numpy()  # perishables never move
    first = np.fmin(
        np.asarray(cell.map(by_offer.to_dict()), dtype=float),
        np.where(transferable, rows["warehouse"].map(by_transfer).to_numpy(dtype=float), np.nan),
    )
    lead_time = period < np.nan_to_num(first, nan=np.inf)

    free = _free_volume(problem, inventory)
    room = pd.Series(pd.MultiIndex.from_frame(rows[["warehouse", "period"]]).map(free)).astype(float)
    storage = ~lead_time & (
        room.to_numpy() < rows["sku"].map(problem.skus["unit_volume"]).to_numpy(float) - 1e-9
    )
    budget = ~lead_time & _budget_binding(problem, evaluation, options, rows)
    supplier = ~lead_time & _supplier_binding(problem, evaluation, options, rows)

    reasons = []
    for late, first_arrival, full, broke, capped in zip(
        lead_time, first, storage, budget, supplier, strict=True
    ):
        if late:
            reasons.append(
                "lead time"
                + (
                    f": nothing can arrive before period {int(first_arrival)}"
                    if np.isfinite(first_arrival)
                    else ""
                )
            )
            continue
        found = [
            name
            for name, on in (("storage capacity", full), ("budget", broke), ("supplier capacity", capped))
            if on
        ]
        reasons.append("; ".join(found) or "cost")
    rows["reason"] = reasons
    return rows[SHORTFALL_COLUMNS]


def _free_volume(problem: ProblemData, inventory: pd.DataFrame) -> dict[tuple[str, int], float]:
    """(warehouse, period) → storage volume left free by the plan's end stock."""
    volume = inventory["end_stock"] * inventory["sku"].map(problem.skus["unit_volume"]).astype(float)
    used = volume.groupby([inventory["warehouse"], inventory["period"]]).sum()
    warehouses = used.index.get_level_values(0)
    capacity = warehouses.map(problem.warehouses["capacity"].to_dict()).astype(float)
    periods = used.index.get_level_values(1)
    return {
        (str(w), int(t)): float(c - u)
        for w, t, c, u in zip(warehouses, periods, capacity, used.to_numpy(), strict=True)
    }


def _prefix_max(values: np.ndarray) -> np.ndarray:
    """Running maximum along the last axis."""
    return np.maximum.accumulate(values, axis=-1) if values.shape[-1] else values


def _budget_binding(
    problem: ProblemData, evaluation: PlanEvaluation, options: pd.DataFrame, rows: pd.DataFrame
) -> np.ndarray:
    """Per row: every order period whose lines could arrive by the row's period has a budget with less
    left than one unit of the cell's cheapest offer costs (a period without a budget never binds)."""
    periods = problem.periods
    left = np.full(periods, np.inf)
    spent = evaluation.orders.groupby("order_period")["line_value"].sum()
    for t, amount in zip(problem.budget.index.astype(int), problem.budget.to_numpy(dtype=float), strict=True):
        left[t] = amount - float(spent.get(t, 0.0))
    most_left = _prefix_max(left)
    cell = pd.MultiIndex.from_frame(rows[["sku", "warehouse"]])
    grouped = options.groupby(["sku", "warehouse"])
    cheapest = np.asarray(cell.map(grouped["unit_price"].min().to_dict()), dtype=float)
    fastest = np.asarray(cell.map(grouped["lead_time"].min().to_dict()), dtype=float)
    latest = rows["period"].to_numpy(dtype=float) - fastest  # NaN: no offer reaches the cell
    valid = np.isfinite(latest) & (latest >= 0)
    index = np.clip(np.nan_to_num(latest, nan=-1), 0, max(periods - 1, 0)).astype(np.int64)
    return valid & (most_left[index] < cheapest - 1e-9) if periods else np.zeros(len(rows), dtype=bool)


def _supplier_binding(
    problem: ProblemData, evaluation: PlanEvaluation, options: pd.DataFrame, rows: pd.DataFrame
) -> np.ndarray:
    """Per row: some offer could deliver in time, and every one that could has a supplier with less
    capacity left than its minimum order in every order period that would deliver in time."""
    periods = problem.periods
    suppliers = problem.suppliers.index
    room = np.full((len(suppliers), periods), np.inf)
    used = evaluation.orders.groupby(["supplier", "order_period"])["quantity"].sum()
    for i, supplier in enumerate(suppliers):
        for t in range(periods):
            capacity = problem.supplier_capacity_in(str(supplier), t)
            if not np.isnan(capacity):
                room[i, t] = capacity - float(used.get((supplier, t), 0.0))
    most_room = _prefix_max(room)
    pairs = (
        rows[["sku", "warehouse", "period"]].reset_index(names="row").merge(options, on=["sku", "warehouse"])
    )
    if pairs.empty or not periods:
        return np.zeros(len(rows), dtype=bool)
    latest = pairs["period"].to_numpy(dtype=np.int64) - pairs["lead_time"].to_numpy(dtype=np.int64)
    in_time = latest >= 0
    minimum = np.maximum(np.maximum(pairs["moq"].to_numpy(int), pairs["order_multiple"].to_numpy(int)), 1)
    supplier_row = suppliers.get_indexer(pd.Index(pairs["supplier"]))
    blocked = most_room[supplier_row, np.clip(latest, 0, periods - 1)] < minimum
    pairs["in_time"] = in_time
    pairs["open"] = in_time & ~blocked
    per_row = pairs.groupby("row")[["in_time", "open"]].any()
    binding = per_row["in_time"] & ~per_row["open"]
    return binding.reindex(range(len(rows)), fill_value=False).to_numpy(dtype=bool)
