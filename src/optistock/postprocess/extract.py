"""Read the plan out of a solved model: whole-number order lines and transfers as tidy frames."""

from __future__ import annotations

import pandas as pd
import pyomo.environ as pyo

ORDER_COLUMNS = ["supplier", "sku", "warehouse", "order_period", "quantity"]
"""The columns of a plan's order lines (what the model decides; prices and purchase orders follow)."""
TRANSFER_COLUMNS = ["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"]
"""The columns of a plan's transfers."""


def extract_plan(model: pyo.ConcreteModel) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Order lines (supplier, sku, warehouse, order_period, quantity) and transfers
    (sku, from_warehouse, to_warehouse, ship_period, quantity) with positive whole quantities."""
    lines = model.sets.lines
    order_rows = []
    for key, var in model.packs.items():
        packs = round(var.value or 0.0)
        if packs > 0:
            supplier, sku, warehouse, period = key
            order_rows.append((supplier, sku, warehouse, int(period), packs * lines[key].pack_size))
    orders = pd.DataFrame(order_rows, columns=ORDER_COLUMNS)
    transfer_rows = []
    for key, var in model.transfer.items():
        quantity = round(var.value or 0.0)
        if quantity > 0:
            sku, origin, destination, period = key
            transfer_rows.append((sku, origin, destination, int(period), quantity))
    transfers = pd.DataFrame(transfer_rows, columns=TRANSFER_COLUMNS)
    return orders.astype({"quantity": "int64"}), transfers.astype({"quantity": "int64"})


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
