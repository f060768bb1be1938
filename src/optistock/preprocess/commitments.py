"""Firm orders — purchase orders already approved or sent — become inputs of the next run.

They are commitments: the goods will arrive, and the money is spent in the order's period. Given the
firm lines (read from the store by :func:`optistock.store.records.firm_order_lines`), this module

- adds every line that arrives inside the new horizon to ``open_orders`` (supplier, sku, warehouse, arrival
  period, quantity), so the new plan counts on it instead of buying the same quantity again;
- lowers ``budget.amount`` of an order period that lies inside the new horizon by the value of the
  firm lines ordered in it.

Periods are matched by calendar date: a line arrives on ``horizon_start + arrival_period × length`` of
the run that proposed it, which falls into period ⌊(arrival date − new start) / new length⌋ of the new
run. When either run has no ``horizon.start``, both are taken to number their periods alike. Lines that
arrived before the new horizon starts are skipped: they are part of the stock on hand.

Supplier capacity is one number per supplier and period in the table contract, so it cannot carry
commitments; it is left as it is (documented in the README).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from optistock.errors import InputError
from optistock.preprocess.scenario import Horizon
from optistock.preprocess.tables import TABLES

logger = logging.getLogger(__name__)

FIRM_LINE_COLUMNS = [
    "purchase_order_id",
    "status",
    "supplier",
    "sku",
    "warehouse",
    "quantity",
    "line_value",
    "order_period",
    "arrival_period",
    "horizon_start",
    "period_length_days",
]


@dataclass
class Commitments:
    """Firm order lines and where they came from (a store URL, for messages)."""

    lines: pd.DataFrame
    source: str
    scenario: str = ""
    """The scenario name the firm orders were read for."""
    applied: dict[str, Any] = field(default_factory=dict)
    """What :func:`apply_commitments` did, for ``summary.json``."""


def _new_period(old_period: int, old_start: dt.date | None, old_length: int, horizon: Horizon) -> int:
    if old_start is None or horizon.start is None:
        return old_period
    date = old_start + dt.timedelta(days=old_period * old_length)
    return (date - horizon.start).days // horizon.period_length_days


def apply_commitments(
    frames: dict[str, pd.DataFrame], commitments: Commitments, horizon: Horizon
) -> list[str]:
    """Add firm lines to ``open_orders`` and deduct their value from ``budget`` (replacing those frames
    in ``frames``, the validated canonical tables).

    Returns warnings for the run. Raises :class:`InputError` when a firm line names a supplier, SKU or
    warehouse that the input tables no longer have (the commitment could not be represented).
    """
    lines = commitments.lines
    warnings: list[str] = []
    if lines.empty:
        commitments.applied = _applied([], 0, 0, 0, 0, 0.0, {})
        return warnings
    known = {
        "supplier": set(frames["suppliers"]["supplier"]),
        "sku": set(frames["skus"]["sku"]),
        "warehouse": set(frames["warehouses"]["warehouse"]),
    }
    records: list[Any] = list(lines.itertuples(index=False))
    for row in records:
        for column, values in known.items():
            value = getattr(row, column)
            if value not in values:
                raise InputError(
                    f"{row.status} purchase order {row.purchase_order_id} has a line for {column} "
                    f"'{value}', which {column}s.csv no longer lists; restore it or "
                    f"reject the order",
                    file=f"store {commitments.source}",
                    field=column,
                )

    arrival = [
        _new_period(int(r.arrival_period), r.horizon_start, int(r.period_length_days), horizon)
        for r in records
    ]
    ordered = [
        _new_period(int(r.order_period), r.horizon_start, int(r.period_length_days), horizon) for r in records
    ]
    lines = lines.assign(new_arrival_period=arrival, new_order_period=ordered)
    pending = lines[(lines["new_arrival_period"] >= 0) & (lines["new_arrival_period"] < horizon.periods)]
    arrived = int((lines["new_arrival_period"] < 0).sum())
    after_horizon = int((lines["new_arrival_period"] >= horizon.periods).sum())
    if arrived:
        logger.info("%d firm order lines arrived before the horizon starts (part of stock on hand)", arrived)

    rows = pd.DataFrame(
        {
            "supplier": pending["supplier"].astype(object),
            "sku": pending["sku"].astype(object),
            "warehouse": pending["warehouse"].astype(object),
            "arrival_period": pending["new_arrival_period"].astype(np.int64),
            "quantity": pending["quantity"].astype(float),
        }
    )
    rows = rows[TABLES["open_orders"].column_names].reset_index(drop=True)
    if "open_orders" in frames:
        frames["open_orders"] = pd.concat([frames["open_orders"], rows], ignore_index=True)
    elif not rows.empty:
        frames["open_orders"] = rows

    committed = (
        lines[(lines["new_order_period"] >= 0) & (lines["new_order_period"] < horizon.periods)]
        .groupby("new_order_period")["line_value"]
        .sum()
    )
    budget_committed: dict[int, float] = {}
    if "budget" in frames and not committed.empty:
        budget = frames["budget"] = frames["budget"].copy()
        for period, value in committed.items():
            mask = budget["period"] == period
            if not mask.any():
                continue
            before = float(budget.loc[mask, "amount"].iloc[0])
            after = before - float(value)
            if after < 0:
                warnings.append(
                    f"firm orders already spend {float(value):,.2f} in period {period}, more than its "
                    f"budget {before:,.2f}; no budget is left for new orders in that period"
                )
                after = 0.0
            budget.loc[mask, "amount"] = after
            budget_committed[int(cast(int, period))] = float(value)
    commitments.applied = _applied(
        sorted(int(i) for i in lines["purchase_order_id"].unique()),
        len(lines),
        len(pending),
        arrived,
        after_horizon,
        float(pending["quantity"].sum()),
        budget_committed,
    )
    for warning in warnings:
        logger.warning(warning)
    logger.info(
        "firm orders: %d lines of %d purchase orders added as open orders",
        len(pending),
        lines["purchase_order_id"].nunique(),
    )
    return warnings


def _applied(
    purchase_orders: list[int],
    lines: int,
    pending: int,
    arrived: int,
    after_horizon: int,
    units_pending: float,
    budget_committed: dict[int, float],
) -> dict[str, Any]:
    return {
        "purchase_orders": purchase_orders,
        "lines": lines,
        "lines_pending": pending,
        "lines_arrived_before_start": arrived,
        "lines_arriving_after_horizon": after_horizon,
        "units_pending": units_pending,
        "budget_committed": budget_committed,
    }
