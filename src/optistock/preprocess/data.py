"""``ProblemData``: the validated, indexed inputs of one planning problem."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import SupportsFloat, cast

import numpy as np
import pandas as pd

from optistock.preprocess.checks import (
    check_periods_not_negative,
    check_references,
    rows_beyond_horizon,
    usability_warnings,
)
from optistock.preprocess.commitments import Commitments, apply_commitments
from optistock.preprocess.scenario import LoadedScenario, Scenario, load_scenario
from optistock.preprocess.tables import TABLES, RawTable, read_tables

logger = logging.getLogger(__name__)


@dataclass
class ProblemData:
    """Validated inputs, indexed by their keys. Periods are 0..``periods``-1.

    Optional tables are always present as (possibly empty) frames; absent ``lanes`` are expanded to
    every supplier → warehouse pair with zero transit time and cost, as the contract says.
    """

    scenario: Scenario
    periods: int
    skus: pd.DataFrame  # index sku: unit_volume, holding_cost, shortage_cost
    warehouses: pd.DataFrame  # index warehouse: capacity
    suppliers: pd.DataFrame  # index supplier: order_cost, min_order_value, capacity (NaN = unlimited)
    offers: pd.DataFrame  # index (supplier, sku): unit_price, moq, order_multiple, lead_time
    price_breaks: pd.DataFrame  # index (supplier, sku, min_quantity): unit_price
    lanes: pd.DataFrame  # index (supplier, warehouse): transit_time, cost_per_unit
    transfer_links: pd.DataFrame  # index (from_warehouse, to_warehouse): lead_time, cost_per_unit
    demand: pd.Series  # index (sku, warehouse, period): quantity, periods inside the horizon
    on_hand: pd.Series  # index (sku, warehouse): stock at the start of period 0
    open_orders: pd.DataFrame  # supplier, sku, warehouse, arrival_period, quantity (inside the horizon)
    budget: pd.Series  # index period: amount
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    """The canonical input tables exactly as solved (written to a run's ``inputs/``)."""
    warnings: list[str] = field(default_factory=list)

    def price_schedule(self, supplier: str, sku: str) -> list[tuple[int, float]]:
        """(min_quantity, unit_price) steps of an offer, ascending, starting with (0, list price)."""
        steps = [(0, float(cast(SupportsFloat, self.offers.at[(supplier, sku), "unit_price"])))]
        steps.extend(self.price_breaks_by_offer.get((supplier, sku), []))
        return steps

    @cached_property
    def price_breaks_by_offer(self) -> dict[tuple[str, str], list[tuple[int, float]]]:
        """(min_quantity, unit_price) breaks of each offer that has any, ascending."""
        grouped: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for key, price in self.price_breaks["unit_price"].items():
            supplier, sku, min_quantity = cast(tuple[str, str, int], key)
            grouped.setdefault((supplier, sku), []).append((int(min_quantity), float(price)))
        for steps in grouped.values():
            steps.sort()
        return grouped


def _frame(tables: dict[str, RawTable], name: str) -> pd.DataFrame:
    if name in tables:
        return tables[name].frame
    return pd.DataFrame(
        {c: pd.Series(dtype=object if c in _ID_COLUMNS[name] else float) for c in TABLES[name].column_names}
    )


_ID_COLUMNS = {name: {c.name for c in spec.columns if c.kind.name == "ID"} for name, spec in TABLES.items()}


def load_problem(scenario_path: Path, commitments: Commitments | None = None) -> ProblemData:
    """Load the scenario and its tables, validate everything, and build :class:`ProblemData`."""
    loaded = load_scenario(scenario_path)
    return build_problem(loaded, commitments)


def build_problem(loaded: LoadedScenario, commitments: Commitments | None = None) -> ProblemData:
    """Validated, indexed inputs; ``commitments`` (firm purchase orders from the store) are added as
    open orders and deducted from the budget first (see :mod:`optistock.preprocess.commitments`)."""
    scenario = loaded.scenario
    periods = scenario.horizon.periods
    tables = read_tables(loaded.data_dir)
    warnings: list[str] = []
    if commitments is not None:
        warnings += apply_commitments(tables, commitments, scenario.horizon)
    check_references(tables)
    check_periods_not_negative(tables["demand"], "period")
    if "budget" in tables:
        check_periods_not_negative(tables["budget"], "period")

    warnings += rows_beyond_horizon(tables["demand"], "period", periods)
    if "open_orders" in tables:
        warnings += rows_beyond_horizon(tables["open_orders"], "arrival_period", periods)
    if "budget" in tables:
        warnings += rows_beyond_horizon(tables["budget"], "period", periods)

    skus = _frame(tables, "skus").set_index("sku")
    warehouses = _frame(tables, "warehouses").set_index("warehouse")
    suppliers = _frame(tables, "suppliers").set_index("supplier")
    offers = _frame(tables, "offers").set_index(["supplier", "sku"]).sort_index()
    offers["order_multiple"] = offers["order_multiple"].clip(lower=1)
    for column in ("moq", "order_multiple", "lead_time"):
        offers[column] = offers[column].astype(np.int64)
    price_breaks = _frame(tables, "price_breaks").astype({"min_quantity": np.int64})
    price_breaks = price_breaks.set_index(["supplier", "sku", "min_quantity"]).sort_index()

    if "lanes" in tables:
        lanes = _frame(tables, "lanes").set_index(["supplier", "warehouse"]).sort_index()
    else:
        index = pd.MultiIndex.from_product(
            [suppliers.index, warehouses.index], names=["supplier", "warehouse"]
        )
        lanes = pd.DataFrame({"transit_time": 0.0, "cost_per_unit": 0.0}, index=index)
    lanes["transit_time"] = lanes["transit_time"].astype(np.int64)
    transfer_links = _frame(tables, "transfers").set_index(["from_warehouse", "to_warehouse"]).sort_index()
    transfer_links["lead_time"] = transfer_links["lead_time"].astype(np.int64)

    demand_frame = _frame(tables, "demand")
    demand_frame = demand_frame[demand_frame["period"] < periods].astype({"period": np.int64})
    demand = demand_frame.set_index(["sku", "warehouse", "period"])["quantity"].sort_index()
    on_hand = _frame(tables, "inventory").set_index(["sku", "warehouse"])["on_hand"].sort_index()
    open_orders = _frame(tables, "open_orders")
    open_orders = open_orders[open_orders["arrival_period"] < periods].astype({"arrival_period": np.int64})
    open_orders = open_orders.reset_index(drop=True)
    budget_frame = _frame(tables, "budget")
    budget_frame = budget_frame[budget_frame["period"] < periods].astype({"period": np.int64})
    budget = budget_frame.set_index("period")["amount"].sort_index()

    demand_by_sku = demand.groupby(level="sku").sum()
    warnings += usability_warnings(offers, lanes, skus.index, demand_by_sku, periods)
    for warning in warnings:
        logger.warning(warning)

    canonical = {name: table.frame for name, table in tables.items()}
    return ProblemData(
        scenario=scenario,
        periods=periods,
        skus=skus,
        warehouses=warehouses,
        suppliers=suppliers,
        offers=offers,
        price_breaks=price_breaks,
        lanes=lanes,
        transfer_links=transfer_links,
        demand=demand,
        on_hand=on_hand,
        open_orders=open_orders,
        budget=budget,
        tables=canonical,
        warnings=warnings,
    )
