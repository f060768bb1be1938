"""Supplier reliability: the scorecard and lead-time statistics from the receipts history."""

from optistock.suppliers.scorecard import (
    LEAD_TIME_COLUMNS,
    SCORECARD_COLUMNS,
    lead_time_statistics,
    lead_time_table,
    supplier_scorecard,
)

__all__ = [
    "LEAD_TIME_COLUMNS",
    "SCORECARD_COLUMNS",
    "lead_time_statistics",
    "lead_time_table",
    "supplier_scorecard",
]
