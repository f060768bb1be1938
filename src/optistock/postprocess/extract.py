"""Read the plan out of a solved model: whole-number order lines and transfers as tidy frames."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pyomo.environ as pyo

ORDER_COLUMNS = ["supplier", "sku", "warehouse", "order_period", "quantity"]
"""The columns of a plan's order lines (what the model decides; prices and purchase orders follow)."""
TRANSFER_COLUMNS = ["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"]
"""The columns of a plan's transfers."""


def extract_plan(
    model: pyo.ConcreteModel, value_of: Callable[[pyo.Var], float] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Order lines (supplier, sku, warehouse, order_period, quantity) and transfers
    (sku, from_warehouse, to_warehouse, ship_period, quantity) with positive whole quantities.

    ``value_of`` gives a variable's value in the solution to read (e.g. a plan the solver has just
    found, :data:`~optistock.backend.solve.PlanCheck`); by default the values the variables hold."""
    value = value_of or _held_value
    lines = model.sets.lines
    order_rows = []
    for key, var in model.packs.items():
        packs = round(value(var))
        if packs > 0:
            supplier, sku, warehouse, period = key
            order_rows.append((supplier, sku, warehouse, int(period), packs * lines[key].pack_size))
    orders = pd.DataFrame(order_rows, columns=ORDER_COLUMNS)
    transfer_rows = []
    for key, var in model.transfer.items():
        quantity = round(value(var))
        if quantity > 0:
            sku, origin, destination, period = key
            transfer_rows.append((sku, origin, destination, int(period), quantity))
    transfers = pd.DataFrame(transfer_rows, columns=TRANSFER_COLUMNS)
    return orders.astype({"quantity": "int64"}), transfers.astype({"quantity": "int64"})


def _held_value(var: pyo.Var) -> float:
    return float(var.value or 0.0)


def empty_plan() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plan that orders and ships nothing."""
    orders = pd.DataFrame(
        {
            "supplier": pd.Series(dtype=object),
            "sku": pd.Series(dtype=object),
            "warehouse": pd.Series(dtype=object),
            "order_period": pd.Series(dtype="int64"),
            "quantity": pd.Series(dtype="int64"),
        }
    )
    transfers = pd.DataFrame(
        {
            "sku": pd.Series(dtype=object),
            "from_warehouse": pd.Series(dtype=object),
            "to_warehouse": pd.Series(dtype=object),
            "ship_period": pd.Series(dtype="int64"),
            "quantity": pd.Series(dtype="int64"),
        }
    )
    return orders, transfers
