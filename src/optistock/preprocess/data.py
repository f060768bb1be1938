"""``ProblemData``: the validated, indexed inputs of one planning problem."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, SupportsFloat, cast

import numpy as np
import pandas as pd

from optistock.forecast.demand import forecast_demand
from optistock.preprocess.checks import (
    check_periods_not_negative,
    check_references,
    check_service_levels,
    rows_beyond_horizon,
    usability_warnings,
)
from optistock.preprocess.classify import class_members, classify, sku_classes
from optistock.preprocess.commitments import Commitments, apply_commitments
from optistock.preprocess.history import empty_receipts, resolve_receipts, resolve_sales_history
from optistock.preprocess.scenario import ForecastSettings, LoadedScenario, Scenario, ServiceSettings
from optistock.preprocess.service import (
    POLICY_COLUMNS,
    ServiceInputs,
    safety_stock_targets,
    shortfall_penalty,
    stock_policy,
)
from optistock.preprocess.tables import TABLES, read_tables
from optistock.suppliers import lead_time_table
from optistock.whatif.changes import LocatedChange, apply_changes
from optistock.whatif.scenario_file import load_scenario_file

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
    supplier_period_capacity: pd.Series = field(
        default_factory=lambda: pd.Series(
            dtype=float, index=pd.MultiIndex.from_tuples([], names=["supplier", "period"])
        )
    )
    """index (supplier, period): the supplier's capacity in that order period, replacing
    ``suppliers.capacity`` there (the optional ``supplier_capacity`` table; 0 is an outage)."""
    changes: list[dict[str, Any]] = field(default_factory=list)
    """The what-if changes applied to the input tables, in order (see :mod:`optistock.whatif`)."""
    classes: pd.DataFrame = field(default_factory=pd.DataFrame)
    """ABC / XYZ classes per SKU and SKU-warehouse (:mod:`.classify`), from the tables before changes."""
    stock_policy: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Safety stock, reorder point and EOQ per SKU-warehouse-offer (:mod:`.service`); empty when the
    scenario sets no service targets."""
    safety_stock: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    """index (sku, warehouse): safety stock the plan should keep at the end of every period."""
    shortfall_penalty: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    """index sku: penalty per unit and period of end stock below ``safety_stock``."""

    @property
    def has_service_targets(self) -> bool:
        return len(self.safety_stock) > 0

    receipts: pd.DataFrame = field(default_factory=empty_receipts)
    """The supplier delivery history (optional ``receipts`` table) with periods, dates resolved: supplier,
    sku, warehouse, order_period, promised_period, received_period (blank: never delivered),
    quantity_ordered, quantity_received. See :mod:`optistock.suppliers` for what is derived from it."""
    forecast: pd.DataFrame | None = None
    """The demand forecast from ``sales_history`` (``forecast.csv``, see :mod:`optistock.forecast`);
    ``None`` when the demand table was given."""

    def supplier_capacity_in(self, supplier: str, period: int) -> float:
        """Units ``supplier`` can take in order period ``period``; NaN means unlimited."""
        override = self._capacity_overrides.get((supplier, period))
        if override is not None:
            return override
        return self._base_capacity[supplier]

    @cached_property
    def _base_capacity(self) -> dict[str, float]:
        """``suppliers.capacity`` by supplier, as a dict: looked up once per line and period."""
        return {str(s): float(c) for s, c in self.suppliers["capacity"].items()}

    @cached_property
    def _capacity_overrides(self) -> dict[tuple[str, int], float]:
        items = cast("Sequence[tuple[tuple[str, int], float]]", list(self.supplier_period_capacity.items()))
        return {(str(s), int(t)): float(c) for (s, t), c in items}

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


def _empty_frame(name: str) -> pd.DataFrame:
    """An optional table that is absent: no rows, the contract's columns."""
    return pd.DataFrame(
        {c: pd.Series(dtype=object if c in _ID_COLUMNS[name] else float) for c in TABLES[name].column_names}
    )


_ID_COLUMNS = {name: {c.name for c in spec.columns if c.kind.name == "ID"} for name, spec in TABLES.items()}


def load_problem(
    scenario_path: Path, scenario_names: Sequence[str] = (), extra_changes: Sequence[LocatedChange] = ()
) -> ProblemData:
    """Load the scenario (following ``extends``, applying its ``changes``, then those of the named
    ``scenario_names`` in order, then ``extra_changes``) and its tables, validate everything, and build
    :class:`ProblemData`."""
    setup = load_scenario_file(scenario_path, scenario_names, extra_changes)
    return build_problem(setup.loaded, setup.changes, setup.classes)


def build_problem(
    loaded: LoadedScenario,
    changes: Sequence[LocatedChange] = (),
    classes: dict[str, list[str]] | None = None,
    commitments: Commitments | None = None,
) -> ProblemData:
    """Read and check the tables of ``loaded``, apply the what-if ``changes`` (located changes, see
    :func:`optistock.whatif.changes.apply_changes`), then the ``commitments`` (firm purchase orders from
    the store, added as open orders and deducted from the budget, see
    :mod:`optistock.preprocess.commitments`) and build :class:`ProblemData`.

    Commitments come last: they are fixed amounts, so a what-if budget cut scales the budget and the
    committed spend is then taken off what is left.
    """
    scenario = loaded.scenario
    periods = scenario.horizon.periods
    tables = read_tables(loaded.data_dir)
    warnings: list[str] = []
    check_references(tables)
    check_service_levels(tables)
    for name in ("demand", "budget", "supplier_capacity"):
        if name in tables:
            check_periods_not_negative(tables[name], "period")

    if "demand" in tables:
        warnings += rows_beyond_horizon(tables["demand"], "period", periods)
    if "open_orders" in tables:
        warnings += rows_beyond_horizon(tables["open_orders"], "arrival_period", periods)
    for name in ("budget", "supplier_capacity"):
        if name in tables:
            warnings += rows_beyond_horizon(tables[name], "period", periods)

    frames = {name: table.frame for name, table in tables.items() if name != "sales_history"}
    if "receipts" in tables:
        frames["receipts"] = resolve_receipts(tables["receipts"], scenario.horizon, str(loaded.path))
    forecast = None
    if "sales_history" in tables:
        sales, notes = resolve_sales_history(tables["sales_history"], scenario.horizon, str(loaded.path))
        if "demand" in tables:
            warnings.append(
                f"{tables['demand'].file} is given, so demand is not forecast from "
                f"{tables['sales_history'].file}"
            )
        else:
            warnings += notes
            settings = scenario.forecast or ForecastSettings()
            forecast = forecast_demand(sales, periods, settings, scenario.horizon.period_length_days)
            frames["demand"] = forecast[TABLES["demand"].column_names].reset_index(drop=True)
    class_table = classify_frames(scenario, frames)
    user_classes = dict(classes or {})
    change_log: list[dict[str, Any]] = []
    if changes:
        filter_classes = {**class_members(class_table), **user_classes}
        frames, change_log = apply_changes(frames, changes, periods=periods, classes=filter_classes)
    if commitments is not None:
        frames = dict(frames)
        warnings += apply_commitments(frames, commitments, scenario.horizon)
    return problem_from_frames(
        scenario, frames, warnings, change_log, class_table, user_classes, forecast=forecast
    )


def classify_frames(scenario: Scenario, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The ABC / XYZ class table of canonical input ``frames``."""
    return classify(
        pd.Index(frames["skus"]["sku"], name="sku"),
        frames["offers"],
        frames["demand"],
        scenario.horizon.periods,
        scenario.classification,
    )


def problem_from_frames(
    scenario: Scenario,
    frames: dict[str, pd.DataFrame],
    warnings: list[str],
    change_log: list[dict[str, Any]] | None = None,
    class_table: pd.DataFrame | None = None,
    user_classes: dict[str, list[str]] | None = None,
    *,
    forecast: pd.DataFrame | None = None,
) -> ProblemData:
    """Index validated canonical tables (``frames``: table name → frame with the contract's columns).

    ``class_table``: the ABC / XYZ classes (default: computed from ``frames``); ``user_classes``: the
    scenario's ``classes:`` mapping, for service targets by class."""
    periods = scenario.horizon.periods
    warnings = list(warnings)

    def frame_of(name: str) -> pd.DataFrame:
        if name in frames:
            return frames[name].copy()
        return _empty_frame(name)

    skus = frame_of("skus").set_index("sku")
    warehouses = frame_of("warehouses").set_index("warehouse")
    suppliers = frame_of("suppliers").set_index("supplier")
    offers = frame_of("offers").set_index(["supplier", "sku"]).sort_index()
    offers["order_multiple"] = offers["order_multiple"].clip(lower=1)
    for column in ("moq", "order_multiple", "lead_time"):
        offers[column] = offers[column].astype(np.int64)
    price_breaks = frame_of("price_breaks").astype({"min_quantity": np.int64})
    price_breaks = price_breaks.set_index(["supplier", "sku", "min_quantity"]).sort_index()

    if "lanes" in frames:
        lanes = frame_of("lanes").set_index(["supplier", "warehouse"]).sort_index()
    else:
        index = pd.MultiIndex.from_product(
            [suppliers.index, warehouses.index], names=["supplier", "warehouse"]
        )
        lanes = pd.DataFrame({"transit_time": 0.0, "cost_per_unit": 0.0}, index=index)
    lanes["transit_time"] = lanes["transit_time"].astype(np.int64)
    transfer_links = frame_of("transfers").set_index(["from_warehouse", "to_warehouse"]).sort_index()
    transfer_links["lead_time"] = transfer_links["lead_time"].astype(np.int64)

    demand_frame = frame_of("demand")
    demand_frame = demand_frame[demand_frame["period"] < periods].astype({"period": np.int64})
    demand = demand_frame.set_index(["sku", "warehouse", "period"])["quantity"].sort_index()
    on_hand = frame_of("inventory").set_index(["sku", "warehouse"])["on_hand"].sort_index()
    open_orders = frame_of("open_orders")
    open_orders = open_orders[open_orders["arrival_period"] < periods].astype({"arrival_period": np.int64})
    open_orders = open_orders.reset_index(drop=True)
    budget_frame = frame_of("budget")
    budget_frame = budget_frame[budget_frame["period"] < periods].astype({"period": np.int64})
    budget = budget_frame.set_index("period")["amount"].sort_index()
    capacity_frame = frame_of("supplier_capacity")
    capacity_frame = capacity_frame[capacity_frame["period"] < periods].astype({"period": np.int64})
    supplier_period_capacity = capacity_frame.set_index(["supplier", "period"])["capacity"].sort_index()

    demand_by_sku = demand.groupby(level="sku").sum()
    warnings += usability_warnings(offers, lanes, skus.index, demand_by_sku, periods)
    for warning in warnings:
        logger.warning(warning)

    if class_table is None:
        class_table = classify_frames(scenario, frames)
    policy = pd.DataFrame(columns=POLICY_COLUMNS)
    if scenario.service is not None or "service_levels" in frames or "safety_stock" in frames:
        policy = stock_policy(
            ServiceInputs(
                settings=scenario.service or ServiceSettings(),
                periods=periods,
                skus=skus,
                suppliers=suppliers,
                offers=offers,
                lanes=lanes,
                transfer_links=transfer_links,
                demand=demand_frame,
                sku_classes=sku_classes(class_table),
                user_classes=user_classes or {},
                service_levels=frame_of("service_levels"),
                fixed_safety_stock=frame_of("safety_stock"),
                lead_time_std=lead_time_table(frames["receipts"])["lead_time_std"].dropna()
                if "receipts" in frames
                else None,
            )
        )
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
        tables=dict(frames),
        warnings=warnings,
        supplier_period_capacity=supplier_period_capacity,
        changes=list(change_log or []),
        classes=class_table,
        stock_policy=policy,
        safety_stock=safety_stock_targets(policy) if len(policy) else pd.Series(dtype=float),
        shortfall_penalty=shortfall_penalty(scenario.service, skus),
        receipts=frames["receipts"].copy() if "receipts" in frames else empty_receipts(),
        forecast=forecast,
    )
