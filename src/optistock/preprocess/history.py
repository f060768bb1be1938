"""History tables (``receipts``, ``sales_history``): periods before the horizon, dates → periods, checks.

History lies before the planning horizon, so its periods are numbered on the same axis: period 0 is the
first planning period, period −1 the one before it, and so on. A history table gives either period
columns or date columns (``order_period`` or ``order_date``…); dates are converted with the scenario's
``horizon.start`` and ``period_length_days``: period = floor((date − start) / length), so the day
before ``horizon.start`` lies in period −1.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from optistock.preprocess.scenario import Horizon
from optistock.preprocess.tables import RawTable

logger = logging.getLogger(__name__)

RECEIPT_COLUMNS = [
    "supplier",
    "sku",
    "warehouse",
    "order_period",
    "promised_period",
    "received_period",
    "quantity_ordered",
    "quantity_received",
]
"""The resolved ``receipts`` table (as written to a run's ``inputs/``): periods only."""

SALES_COLUMNS = ["sku", "warehouse", "period", "quantity"]
"""The resolved ``sales_history``: one row per SKU, warehouse and period (dates summed per period)."""


def given_column(table: RawTable, period_column: str) -> str:
    """The column of ``period_column``'s pair that the file gives (the period or the date column)."""
    for first, second in table.spec.either:
        if first == period_column:
            return second if table.frame[first].isna().all() and table.frame[second].notna().any() else first
    return period_column


def periods_from_dates(table: RawTable, date_column: str, horizon: Horizon, scenario_file: str) -> pd.Series:
    """Dates of ``date_column`` as period numbers (nullable integers; a blank date stays blank)."""
    dates = table.frame[date_column]
    filled = np.asarray(dates.notna(), dtype=bool)
    if horizon.start is None:
        raise table.locate(
            int(np.flatnonzero(filled)[0]),
            date_column,
            f"dates need horizon.start in the scenario ({scenario_file}) to be converted to periods; "
            "give horizon.start or use period numbers",
        )
    start = pd.Timestamp(horizon.start)
    days = (dates - start).dt.days.to_numpy(dtype=float)
    periods = np.floor_divide(days, horizon.period_length_days)
    return pd.Series(pd.array(np.where(filled, periods, np.nan), dtype="Int64"), index=dates.index)


def _resolve(table: RawTable, horizon: Horizon, scenario_file: str) -> pd.DataFrame:
    """``table.frame`` with every period/date pair resolved to its period column, the date columns dropped."""
    frame = table.frame.copy()
    for period_column, date_column in table.spec.either:
        if given_column(table, period_column) == date_column:
            frame[period_column] = periods_from_dates(table, date_column, horizon, scenario_file)
        else:
            frame[period_column] = pd.array(frame[period_column].to_numpy(dtype=float), dtype="Int64")
    return frame.drop(columns=[date for _, date in table.spec.either])


def resolve_receipts(table: RawTable, horizon: Horizon, scenario_file: str) -> pd.DataFrame:
    """The receipts as periods, checked: a received quantity needs a received period, nothing is promised
    or received before it was ordered."""
    frame = _resolve(table, horizon, scenario_file)
    received = frame["received_period"]
    ordered = frame["order_period"].to_numpy(dtype=np.int64)
    undated = np.asarray(received.isna(), dtype=bool) & (frame["quantity_received"].to_numpy() > 0)
    if undated.any():
        position = int(np.flatnonzero(undated)[0])
        raise table.locate(
            position,
            given_column(table, "received_period"),
            f"quantity_received is {frame['quantity_received'].iloc[position]:g} but the receipt has no "
            "received period or date (leave it blank only for lines never delivered, quantity_received 0)",
        )
    for column, verb in (("promised_period", "promised"), ("received_period", "received")):
        values = frame[column].to_numpy(dtype=float, na_value=np.nan)
        early = ~np.isnan(values) & (values < ordered)
        if early.any():
            position = int(np.flatnonzero(early)[0])
            raise table.locate(
                position,
                given_column(table, column),
                f"{verb} before it was ordered ({column} {int(values[position])} < order_period "
                f"{int(ordered[position])})",
            )
    frame["order_period"] = frame["order_period"].astype(np.int64)
    frame["promised_period"] = frame["promised_period"].astype(np.int64)
    return frame[RECEIPT_COLUMNS].reset_index(drop=True)


def resolve_sales_history(
    table: RawTable, horizon: Horizon, scenario_file: str
) -> tuple[pd.DataFrame, list[str]]:
    """The sales history as one row per SKU, warehouse and period before the horizon, and warnings.

    A repeated (sku, warehouse, period) — or (sku, warehouse, date) — is an error; dates in the same
    period are summed; rows at period 0 or later are not history and are ignored with a warning.
    """
    column = given_column(table, "period")
    key = ["sku", "warehouse", column]
    repeated = np.asarray(table.frame.duplicated(subset=key, keep="first"), dtype=bool)
    if repeated.any():
        position = int(np.flatnonzero(repeated)[0])
        row = table.frame.iloc[position]
        first = int(np.flatnonzero(np.asarray((table.frame[key] == row[key]).all(axis=1)))[0])
        value = row[column].date() if column == "date" else row[column]
        raise table.locate(
            position,
            column,
            f"sales of sku {row['sku']} at warehouse {row['warehouse']} for {column} {value} are given "
            f"twice; first at {'line' if table.is_csv else 'row'} {int(table.source_line[first])}",
        )
    frame = _resolve(table, horizon, scenario_file)
    warnings: list[str] = []
    inside = np.asarray(frame["period"] >= 0, dtype=bool)
    if inside.any():
        where = "line" if table.is_csv else "row"
        first_row = int(table.source_line[int(np.flatnonzero(inside)[0])])
        warnings.append(
            f"{table.file}: {int(inside.sum())} row(s) at period 0 or later (first at {where} {first_row}) "
            "are not history before the horizon and are ignored"
        )
        frame = frame[~inside]
    frame = frame.astype({"period": np.int64})
    sales = frame.groupby(["sku", "warehouse", "period"], sort=True)["quantity"].sum().reset_index()
    return sales[SALES_COLUMNS], warnings


def empty_receipts() -> pd.DataFrame:
    """A receipts table with no rows (no history given)."""
    ids = ("supplier", "sku", "warehouse")
    return pd.DataFrame(
        {
            c: pd.Series(dtype=object if c in ids else np.int64 if c.endswith("_period") else float)
            for c in RECEIPT_COLUMNS
        }
    )
