"""``ProblemData``: the validated, indexed inputs of one planning problem."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, SupportsFloat, cast

import numpy as np
import pandas as pd

from optistock.errors import InputError
from optistock.forecast.demand import forecast_demand
from optistock.preprocess.checks import (
    check_feature_rules,
    check_periods_not_negative,
    check_references,
    check_service_levels,
    check_yaml_sourcing,
    rows_beyond_horizon,
    usability_warnings,
)
from optistock.preprocess.classify import class_members, classify, sku_classes
from optistock.preprocess.commitments import Commitments, apply_commitments
from optistock.preprocess.history import empty_receipts, resolve_receipts, resolve_sales_history
from optistock.preprocess.scenario import (
    ForecastSettings,
    LoadedScenario,
    Scenario,
    ServiceSettings,
    SourcingRule,
    line_of,
)
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


def _no_channel_demand() -> pd.Series:
    return pd.Series(
        dtype=float, index=pd.MultiIndex.from_tuples([], names=["sku", "warehouse", "channel", "period"])
    )


@dataclass(frozen=True)
class ShareRule:
    """A sourcing rule on a supplier's share of units bought over the horizon (planned lines only).

    ``sku`` None: the share of all units bought, over every SKU. ``label`` names the rule's row in the
    ``sourcing`` table (for messages)."""

    supplier: str
    sku: str | None
    min_share: float
    max_share: float
    label: str


@dataclass
class SourcingRules:
    """The ``sourcing`` table, read: share rules, preferred suppliers and what is switched off."""

    shares: list[ShareRule]
    preferred_by_sku: dict[str, str] = field(default_factory=dict)
    """SKU → preferred supplier ("" key: the rule for all SKUs)."""
    off_suppliers: set[str] = field(default_factory=set)
    off_offers: set[tuple[str, str]] = field(default_factory=set)
    """(supplier, sku) offers switched off."""

    def is_off(self, supplier: str, sku: str) -> bool:
        """True when the supplier, or its offer of ``sku``, is switched off: no order may use it."""
        return supplier in self.off_suppliers or (supplier, sku) in self.off_offers

    def preferred(self, sku: str) -> str | None:
        return self.preferred_by_sku.get(sku, self.preferred_by_sku.get(""))

    @property
    def active(self) -> bool:
        return bool(self.shares or self.off_suppliers or self.off_offers or self.preferred_by_sku)


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

    receipts: pd.DataFrame = field(default_factory=empty_receipts)
    """The supplier delivery history (optional ``receipts`` table) with periods, dates resolved: supplier,
    sku, warehouse, order_period, promised_period, received_period (blank: never delivered),
    quantity_ordered, quantity_received. See :mod:`optistock.suppliers` for what is derived from it."""
    forecast: pd.DataFrame | None = None
    """The demand forecast from ``sales_history`` (``forecast.csv``, see :mod:`optistock.forecast`);
    ``None`` when the demand table was given."""
    stock_ages: pd.Series = field(
        default_factory=lambda: pd.Series(
            dtype=float, index=pd.MultiIndex.from_tuples([], names=["sku", "warehouse", "age"])
        )
    )
    """index (sku, warehouse, age): stock on hand at the start of period 0 by age in periods (the optional
    ``inventory.age`` column; without it every unit has age 0). Sums to ``on_hand``."""
    channel_demand: pd.Series = field(default_factory=lambda: _no_channel_demand())
    """index (sku, warehouse, channel, period): demand per sales channel (the optional ``demand.channel``
    column); empty without it. ``demand`` is its sum over channels."""
    channels: pd.DataFrame = field(default_factory=pd.DataFrame)
    """index channel: priority (NaN = none), shortage_cost (NaN = the SKU's) — the ``channels`` table."""
    sourcing: SourcingRules = field(default_factory=lambda: SourcingRules([]))
    """Sourcing rules from the optional ``sourcing`` table (see :class:`SourcingRules`)."""

    @property
    def has_service_targets(self) -> bool:
        """True when some SKU-warehouse has a safety-stock target (the model then has the soft floor)."""
        return len(self.safety_stock) > 0

    def for_skus(self, skus: Collection[str]) -> ProblemData:
        """The same problem with only the rows of ``skus`` in the SKU-keyed tables that
        :func:`~optistock.backend.sets.build_sets` reads (skus, offers, price breaks, demand, stock, open
        orders, safety stock, stock ages, channel demand). Every other table is shared as it is.

        A SKU-group sub-problem is built from it, so that building it costs what the group costs and not
        what the whole problem costs; the rows are located once per problem (:attr:`_rows_by_sku`)."""
        positions = self._rows_by_sku
        members = sorted(set(skus))

        def rows(name: str, table: Any) -> Any:
            found = [positions[name][sku] for sku in members if sku in positions[name]]
            taken = np.sort(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
            return table.iloc[taken]

        return replace(
            self,
            skus=rows("skus", self.skus),
            offers=rows("offers", self.offers),
            price_breaks=rows("price_breaks", self.price_breaks),
            demand=rows("demand", self.demand),
            on_hand=rows("on_hand", self.on_hand),
            open_orders=rows("open_orders", self.open_orders),
            safety_stock=rows("safety_stock", self.safety_stock),
            stock_ages=rows("stock_ages", self.stock_ages),
            channel_demand=rows("channel_demand", self.channel_demand),
        )

    @cached_property
    def _rows_by_sku(self) -> dict[str, dict[str, np.ndarray]]:
        """Row positions of each SKU in the tables :meth:`for_skus` slices."""
        tables: dict[str, pd.DataFrame | pd.Series] = {
            "skus": self.skus,
            "offers": self.offers,
            "price_breaks": self.price_breaks,
            "demand": self.demand,
            "on_hand": self.on_hand,
            "open_orders": self.open_orders,
            "safety_stock": self.safety_stock,
            "stock_ages": self.stock_ages,
            "channel_demand": self.channel_demand,
        }
        positions: dict[str, dict[str, np.ndarray]] = {}
        for name, table in tables.items():
            if len(table) == 0:
                positions[name] = {}
                continue
            if isinstance(table, pd.DataFrame) and "sku" in table.columns:
                keys = table["sku"].astype(str).to_numpy()
            else:
                keys = table.index.get_level_values("sku").astype(str).to_numpy()
            grouped = pd.Series(keys).groupby(keys).indices
            positions[name] = {str(k): np.asarray(v, dtype=np.int64) for k, v in grouped.items()}
        return positions

    @cached_property
    def shelf_life(self) -> dict[str, int]:
        """Shelf life in periods of each perishable SKU (``skus.shelf_life``); SKUs without one are absent."""
        if "shelf_life" not in self.skus.columns:
            return {}
        return {str(i): int(v) for i, v in self.skus["shelf_life"].items() if pd.notna(v)}

    @cached_property
    def waste_cost(self) -> dict[str, float]:
        """Cost per wasted unit of each perishable SKU: ``skus.waste_cost``, or when blank the SKU's lowest
        list price (``offers.unit_price``) over its offers, 0 without offers."""
        given = self.skus["waste_cost"] if "waste_cost" in self.skus.columns else None
        prices = self.offers["unit_price"].groupby(level="sku").min() if len(self.offers) else pd.Series()
        costs: dict[str, float] = {}
        for sku in self.shelf_life:
            value = given[sku] if given is not None else np.nan
            costs[sku] = float(value) if pd.notna(value) else float(prices.get(sku, 0.0))
        return costs

    @cached_property
    def channel_order(self) -> list[str]:
        """Channels in the order they are served when stock is short, for a SKU with equal channel costs:
        ascending ``priority`` (channels without one last), then by name (see :meth:`channel_rank`)."""
        names = sorted({str(c) for c in self.channel_demand.index.get_level_values("channel")})
        priority = self.channels["priority"] if "priority" in self.channels.columns else pd.Series()
        return sorted(
            names,
            key=lambda c: (0, float(priority[c]), c) if pd.notna(priority.get(c, np.nan)) else (1, 0.0, c),
        )

    def channel_shortage_cost(self, sku: str, channel: str) -> float:
        """Shortage cost per unit and period of ``channel``'s backorders of ``sku``:
        ``channels.shortage_cost`` if given, else the SKU's ``skus.shortage_cost``."""
        own = self.channels["shortage_cost"] if "shortage_cost" in self.channels.columns else pd.Series()
        value = own.get(channel, np.nan)
        if pd.notna(value):
            return float(value)
        return float(cast(SupportsFloat, self.skus.at[sku, "shortage_cost"]))

    def channel_rank(self, sku: str) -> list[str]:
        """The channels of ``sku`` in serving order: highest shortage cost first, then ``channel_order``."""
        position = {c: k for k, c in enumerate(self.channel_order)}
        return sorted(self.channel_order, key=lambda c: (-self.channel_shortage_cost(sku, c), position[c]))

    def preferred_supplier(self, sku: str) -> str | None:
        """The SKU's primary supplier: the one marked ``preferred`` in the sourcing rules (for the SKU, else
        for all SKUs, if it offers the SKU and is not switched off), else its offer with the lowest list
        price (then the supplier's name); None when the SKU has no usable offer."""
        usable = [str(s) for s, i in self.offers.index if i == sku and not self.sourcing.is_off(str(s), sku)]
        if not usable:
            return None
        chosen = self.sourcing.preferred(sku)
        if chosen is not None and chosen in usable:
            return chosen
        prices = {s: float(cast(SupportsFloat, self.offers.at[(s, sku), "unit_price"])) for s in usable}
        return min(usable, key=lambda s: (prices[s], s))

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
    check_feature_rules(tables)
    if scenario.sourcing:
        check_yaml_sourcing(scenario.sourcing, tables, _yaml_locator(loaded))
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


def _cheapest_backorder(skus: pd.DataFrame, channels: pd.DataFrame, channel_demand: pd.Series) -> pd.Series:
    """Per SKU, the lowest shortage cost of any backorder it can have: the SKU's, or with sales channels
    the cheapest of its channels' (a channel without its own cost has the SKU's)."""
    cheapest = skus["shortage_cost"].astype(float).copy()
    if len(channel_demand) == 0 or "shortage_cost" not in channels.columns:
        return cheapest
    own = channels["shortage_cost"].astype(float)
    pairs = channel_demand.index.to_frame(index=False)[["sku", "channel"]].drop_duplicates()
    for sku, channel in zip(pairs["sku"], pairs["channel"], strict=True):
        cost = own.get(channel, np.nan)
        if pd.notna(cost):
            cheapest[sku] = min(float(cheapest[sku]), float(cost))
    return cheapest


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
    if "channel" in demand_frame.columns:
        channel_demand = (
            demand_frame.groupby(["sku", "warehouse", "channel", "period"])["quantity"].sum().sort_index()
        )
        demand = demand_frame.groupby(["sku", "warehouse", "period"])["quantity"].sum().sort_index()
    else:
        channel_demand = _no_channel_demand()
        demand = demand_frame.set_index(["sku", "warehouse", "period"])["quantity"].sort_index()
    inventory = frame_of("inventory")
    if "age" in inventory.columns:
        stock_ages = (
            inventory.astype({"age": np.int64})
            .groupby(["sku", "warehouse", "age"])["on_hand"]
            .sum()
            .sort_index()
        )
        on_hand = inventory.groupby(["sku", "warehouse"])["on_hand"].sum().sort_index()
    else:
        on_hand = inventory.set_index(["sku", "warehouse"])["on_hand"].sort_index()
        stock_ages = on_hand.to_frame().assign(age=0).set_index("age", append=True)["on_hand"]
    channels = frame_of("channels").set_index("channel")
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
    sourcing = sourcing_rules(frames.get("sourcing"), scenario.sourcing or [])
    warnings += _extension_warnings(channels, channel_demand, sourcing)
    for warning in warnings:
        logger.warning(warning)

    if class_table is None:
        class_table = classify_frames(scenario, frames)
    perishable = set(skus.index[skus["shelf_life"].notna()]) if "shelf_life" in skus.columns else set()
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
                preferred=dict(sourcing.preferred_by_sku),
                switched_off={(str(s), str(i)) for s, i in offers.index if sourcing.is_off(str(s), str(i))},
                not_transferred=set(perishable),
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
        shortfall_penalty=shortfall_penalty(
            scenario.service, skus, _cheapest_backorder(skus, channels, channel_demand)
        ),
        receipts=frames["receipts"].copy() if "receipts" in frames else empty_receipts(),
        forecast=forecast,
        stock_ages=stock_ages,
        channel_demand=channel_demand,
        channels=channels,
        sourcing=sourcing,
    )


def _extension_warnings(
    channels: pd.DataFrame, channel_demand: pd.Series, sourcing: SourcingRules
) -> list[str]:
    """Legal extension data that has no effect: channels no demand row names, minimum shares of one SKU
    (or of all SKUs) that add up to more than 1 (only buying nothing meets them)."""
    warnings: list[str] = []
    used = set(channel_demand.index.get_level_values("channel"))
    for channel in channels.index:
        if channel not in used:
            warnings.append(f"channel {channel} (channels table) has no demand row; it is not used")
    minimum: dict[str | None, float] = {}
    for rule in sourcing.shares:
        minimum[rule.sku] = minimum.get(rule.sku, 0.0) + rule.min_share
    for sku, total in minimum.items():
        if total > 1 + 1e-9:
            warnings.append(
                f"sourcing: the minimum shares for {sku or 'all SKUs'} add up to {total:g} > 1; "
                "only buying none of it meets them"
            )
    return warnings


def _yaml_locator(loaded: LoadedScenario) -> Callable[[int, str, str], InputError]:
    """Errors about rule k of the scenario's ``sourcing:`` section, with the file and line it is on."""

    def locate(k: int, field_name: str, message: str) -> InputError:
        if loaded.sourcing_origin is None:
            return InputError(message, file=str(loaded.path), field=f"sourcing.{k}.{field_name}")
        path, document = loaded.sourcing_origin
        return InputError(
            message,
            file=str(path),
            line=line_of(document, "sourcing", k, field_name),
            field=f"sourcing.{k}.{field_name}",
        )

    return locate


def sourcing_rules(table: pd.DataFrame | None, yaml_rules: Sequence[SourcingRule] = ()) -> SourcingRules:
    """Read the (validated) ``sourcing`` table — one rule per row, blank sku = every SKU — and then the
    scenario's ``sourcing:`` rules (the same fields)."""
    rules = SourcingRules([])
    records = [] if table is None else table.to_dict("records")
    records += [
        {
            "supplier": rule.supplier,
            "sku": rule.sku or "",
            "min_share": np.nan if rule.min_share is None else rule.min_share,
            "max_share": np.nan if rule.max_share is None else rule.max_share,
            "preferred": int(rule.preferred),
            "off": int(rule.off),
            "_label": f"scenario sourcing rule {k + 1}",
        }
        for k, rule in enumerate(yaml_rules)
    ]
    for position, row in enumerate(records):
        supplier = str(row["supplier"])
        sku = str(row.get("sku", "") or "")
        label = f"{row.get('_label', f'sourcing row {position + 1}')} ({supplier}/{sku or 'all SKUs'})"
        low, high = row.get("min_share", np.nan), row.get("max_share", np.nan)
        if pd.notna(low) or pd.notna(high):
            rules.shares.append(
                ShareRule(
                    supplier,
                    sku or None,
                    float(low) if pd.notna(low) else 0.0,
                    float(high) if pd.notna(high) else 1.0,
                    label,
                )
            )
        if pd.notna(row.get("preferred", np.nan)) and int(row["preferred"]) == 1:
            rules.preferred_by_sku[sku] = supplier
        if pd.notna(row.get("off", np.nan)) and int(row["off"]) == 1:
            if sku:
                rules.off_offers.add((supplier, sku))
            else:
                rules.off_suppliers.add(supplier)
    return rules
