"""Supplier reliability from the ``receipts`` history: on-time rate, fill rate and lead-time statistics.

One receipts row is one order line (see :mod:`optistock.preprocess.history` for its periods):

- **on time**: received in or before the promised period (``received_period <= promised_period``); a
  line never delivered (blank received period) is late. on_time_rate = on-time lines / lines.
- **fill rate**: units received up to the quantity ordered, over units ordered —
  Σ min(received, ordered) / Σ ordered — so an over-delivery does not hide a short one.
- **lead time** L = received_period − order_period, in periods, over the lines delivered (any quantity
  > 0): what the warehouse saw, the supplier's lead time plus the transit time. lead_time_mean is the
  mean, lead_time_std the sample standard deviation (ddof = 1): NaN with fewer than two deliveries, since
  one observation says nothing about the spread; lead_time_mean is NaN without any delivery.
- **delay_mean**: mean of received_period − promised_period over the delivered lines (negative: early).

Lines are counted alike whatever their size (a line-level, not unit-weighted, lead time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from optistock.preprocess.data import ProblemData

ScorecardLevel = Literal["supplier", "sku", "warehouse"]

LEVEL_KEYS: dict[str, list[str]] = {
    "supplier": ["supplier"],
    "sku": ["supplier", "sku"],
    "warehouse": ["supplier", "sku", "warehouse"],
}
"""``--by``: supplier totals, per supplier and SKU, per supplier, SKU and warehouse."""

SCORECARD_COLUMNS = [
    "orders",
    "units_ordered",
    "units_received",
    "on_time_rate",
    "fill_rate",
    "lead_time_mean",
    "lead_time_std",
    "lead_time_observations",
    "delay_mean",
]

LEAD_TIME_COLUMNS = ["lead_time_mean", "lead_time_std", "observations"]


def _line_measures(receipts: pd.DataFrame) -> pd.DataFrame:
    received = receipts["received_period"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    delivered = ~np.isnan(received) & (receipts["quantity_received"].to_numpy(dtype=float) > 0)
    ordered = receipts["quantity_ordered"].to_numpy(dtype=float)
    got = receipts["quantity_received"].to_numpy(dtype=float)
    return receipts.assign(
        on_time=~np.isnan(received) & (received <= receipts["promised_period"].to_numpy(dtype=float)),
        filled=np.minimum(got, ordered),
        lead_time=np.where(delivered, received - receipts["order_period"].to_numpy(dtype=float), np.nan),
        delay=np.where(delivered, received - receipts["promised_period"].to_numpy(dtype=float), np.nan),
    )


def supplier_scorecard(receipts: pd.DataFrame, by: ScorecardLevel = "supplier") -> pd.DataFrame:
    """The scorecard of the resolved ``receipts`` table, one row per group of ``by`` (see
    :data:`LEVEL_KEYS`), sorted by the keys; columns: the keys, then :data:`SCORECARD_COLUMNS`."""
    keys = LEVEL_KEYS[by]
    if receipts.empty:
        return pd.DataFrame(columns=[*keys, *SCORECARD_COLUMNS])
    lines = _line_measures(receipts)
    grouped = lines.groupby(keys, sort=True)
    table = pd.DataFrame(
        {
            "orders": grouped.size(),
            "units_ordered": grouped["quantity_ordered"].sum(),
            "units_received": grouped["quantity_received"].sum(),
            "on_time_rate": grouped["on_time"].mean(),
            "fill_rate": grouped["filled"].sum() / grouped["quantity_ordered"].sum(),
            "lead_time_mean": grouped["lead_time"].mean(),
            "lead_time_std": grouped["lead_time"].std(ddof=1),
            "lead_time_observations": grouped["lead_time"].count(),
            "delay_mean": grouped["delay"].mean(),
        }
    )
    return table.reset_index()[[*keys, *SCORECARD_COLUMNS]]


def lead_time_table(receipts: pd.DataFrame, keys: Sequence[str] = ("supplier", "sku")) -> pd.DataFrame:
    """Observed lead times (received − ordered, in periods) of the resolved ``receipts``, indexed by
    ``keys``: ``lead_time_mean``, ``lead_time_std`` (sample; NaN below two observations) and
    ``observations`` (lines delivered). Groups without any delivery are left out."""
    keys = list(keys)
    index = pd.MultiIndex.from_tuples([], names=keys) if len(keys) > 1 else pd.Index([], name=keys[0])
    empty = pd.DataFrame({c: pd.Series(dtype=float) for c in LEAD_TIME_COLUMNS}, index=index)
    if receipts.empty:
        return empty.astype({"observations": np.int64})
    lines = _line_measures(receipts)
    lines = lines[lines["lead_time"].notna()]
    if lines.empty:
        return empty.astype({"observations": np.int64})
    grouped = lines.groupby(keys, sort=True)["lead_time"]
    return pd.DataFrame(
        {
            "lead_time_mean": grouped.mean(),
            "lead_time_std": grouped.std(ddof=1),
            "observations": grouped.count().astype(np.int64),
        }
    )


def lead_time_statistics(problem: ProblemData, *, by_warehouse: bool = False) -> pd.DataFrame:
    """Observed lead-time statistics for safety stock, from the scenario's ``receipts`` table.

    Indexed by (supplier, sku) — or (supplier, sku, warehouse) with ``by_warehouse``, where transit times
    differ between warehouses — with columns ``lead_time_mean`` and ``lead_time_std`` (periods; the std is
    the sample standard deviation, NaN with fewer than two deliveries) and ``observations`` (delivered
    lines). Empty (same columns) when the scenario has no receipts; a pair without a delivery has no row.
    The lead time observed is received − ordered: the offer's ``lead_time`` plus the lane's
    ``transit_time`` in the planning model's terms.
    """
    keys = ("supplier", "sku", "warehouse") if by_warehouse else ("supplier", "sku")
    return lead_time_table(problem.receipts, keys)
