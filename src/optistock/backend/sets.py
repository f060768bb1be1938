"""Index sets and tight bounds of the procurement model, computed from ``ProblemData`` with pandas.

Kept apart from the Pyomo model so that the sets can be inspected and tested on their own, and so that
another modelling backend could reuse them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import SupportsFloat, SupportsInt, cast

import pandas as pd

from optistock.postprocess.simulate import PlanEvaluation
from optistock.preprocess.data import ProblemData, ShareRule

Line = tuple[str, str, str, int]  # (supplier, sku, warehouse, order period)
PurchaseOrder = tuple[str, str, int]  # (supplier, warehouse, order period)
TransferArc = tuple[str, str, str, int]  # (sku, from warehouse, to warehouse, ship period)
StockCell = tuple[str, str, int]  # (sku, warehouse, period)


@dataclass(frozen=True)
class PriceSegment:
    """A quantity range [low, high] (both multiples of the pack size) bought at one all-units price."""

    low: int
    high: int
    unit_price: float


@dataclass
class LineData:
    supplier: str
    sku: str
    warehouse: str
    order_period: int
    arrival_period: int
    pack_size: int
    moq: int
    max_quantity: int
    """Upper bound on the line's quantity: a multiple of the pack size (see ``line_quantity_bound``)."""
    unit_price: float
    lane_cost: float
    segments: list[PriceSegment] = field(default_factory=list)
    """Price segments, only for offers with price breaks."""

    @property
    def key(self) -> Line:
        return (self.supplier, self.sku, self.warehouse, self.order_period)

    @property
    def needs_activation(self) -> bool:
        """A 0/1 variable is needed when the MOQ is above one pack or the price depends on the quantity."""
        return bool(self.segments) or self.moq > self.pack_size


@dataclass
class ShareRuleData:
    """A sourcing share rule in the model: the lines it counts and, in a SKU sub-problem, the units the
    fixed rest of the plan already contributes (see :func:`restrict_to_residual`)."""

    rule: ShareRule
    supplier_lines: list[Line]
    """Lines of the rule's supplier (and SKU)."""
    all_lines: list[Line]
    """Lines of the rule's SKU (every SKU for a rule on all SKUs), any supplier."""
    fixed_supplier_units: float = 0.0
    fixed_total_units: float = 0.0


@dataclass
class ChannelSplit:
    """A (sku, warehouse) whose demand comes from channels with different shortage costs: its backorder
    is split over the channels in the model."""

    demand: dict[str, list[float]]
    """Channel → demand per period."""
    shortage_cost: dict[str, float]
    """Channel → shortage cost per unit and period."""


@dataclass
class ModelSets:
    lines: dict[Line, LineData]
    purchase_orders: dict[PurchaseOrder, list[Line]]
    transfer_arcs: dict[TransferArc, int]
    """Arc → arrival period."""
    stock_cells: list[StockCell]
    stock_upper: dict[StockCell, float]
    backorder_upper: dict[StockCell, float]
    demand: dict[StockCell, float]
    receipts: dict[StockCell, float]
    """Open orders arriving per cell."""
    on_hand: dict[tuple[str, str], float]
    shipping_cells: list[StockCell]
    """Cells (sku, w, t) with a stock-sign binary: a transfer can leave w in t+1 and backorders are
    possible."""
    supplier_capacity: dict[tuple[str, int], float]
    """Units a supplier can still deliver per order period (finite capacities only)."""
    budget: dict[int, float]
    """Purchase budget per order period (periods with a budget row only)."""
    storage_capacity: dict[tuple[str, int], float]
    """Storage volume available per warehouse and period."""
    order_cost: dict[PurchaseOrder, float]
    """Fixed cost of placing each purchase order."""
    min_order_value: dict[PurchaseOrder, float]
    """Minimum value of each purchase order once placed."""
    shelf_life: dict[str, int] = field(default_factory=dict)
    """Shelf life of the perishable SKUs in scope."""
    initial_cohorts: dict[tuple[str, str], list[tuple[int, float]]] = field(default_factory=dict)
    """(sku, warehouse) of a perishable SKU → (arrival period = −age, units) of the stock on hand."""
    waste_cells: list[StockCell] = field(default_factory=list)
    """Cells (i, w, t) of perishable SKUs where units can expire: t at or after the first expiry."""
    channel_splits: dict[tuple[str, str], ChannelSplit] = field(default_factory=dict)
    channel_cost: dict[tuple[str, str], float] = field(default_factory=dict)
    """(sku, warehouse) with channel demand, not split, whose channels' common shortage cost is not the
    SKU's: that cost prices its backorder."""
    share_rules: list[ShareRuleData] = field(default_factory=list)


def round_up(value: float, multiple: int) -> int:
    return int(math.ceil(value / multiple - 1e-9) * multiple)


def round_down(value: float, multiple: int) -> int:
    return int(math.floor(value / multiple + 1e-9) * multiple)


def line_quantity_bound(
    need: float,
    moq: int,
    pack: int,
    largest_break: int,
    min_order_value: float,
    lowest_price: float,
    supplier_capacity: float,
) -> int:
    """Largest quantity an optimal plan can need on one line, as a multiple of the pack size.

    ``need`` is what the line's warehouse can pass on to demand (see :func:`warehouse_needs`). Buying
    more is never cheaper, except where a larger quantity is forced or rewarded: the MOQ, the largest
    price break, or reaching the supplier's minimum order value with this line alone. If a plan has
    lines above the bound, cutting the last-arriving one back to it keeps its price, its MOQ and the
    minimum order value satisfied, only removes stock that is never used, and lowers cost. The
    supplier's capacity per period caps the bound.
    """
    largest = max(need, moq, largest_break)
    if min_order_value > 0 and lowest_price > 0:
        largest = max(largest, min_order_value / lowest_price)
    bound = round_up(largest, pack)
    if not math.isnan(supplier_capacity):
        bound = min(bound, round_down(supplier_capacity, pack))
    return bound


def warehouse_needs(problem: ProblemData) -> dict[tuple[str, str], float]:
    """Units of each SKU that stock arriving at a warehouse can ever serve.

    A warehouse without outgoing transfer links can only serve its own demand, less its stock on hand
    and open orders (not less them for a perishable SKU: they may expire first). One with links can
    pass stock on to every warehouse it reaches (directly or in several hops), so it may serve all of
    their demand.
    """
    links: dict[str, set[str]] = {}
    for origin, destination in problem.transfer_links.index:
        links.setdefault(str(origin), set()).add(str(destination))
    demand = problem.demand.groupby(level=["sku", "warehouse"]).sum()
    on_hand = problem.on_hand.groupby(level=["sku", "warehouse"]).sum()
    open_orders = problem.open_orders.groupby(["sku", "warehouse"])["quantity"].sum()
    needs: dict[tuple[str, str], float] = {}
    by_sku: dict[str, dict[str, float]] = {}
    for key, quantity in demand.items():
        sku, warehouse = cast(tuple[str, str], key)
        by_sku.setdefault(str(sku), {})[str(warehouse)] = float(quantity)
    for sku, per_warehouse in by_sku.items():
        for warehouse in problem.warehouses.index:
            warehouse = str(warehouse)
            reach = _reachable(links, warehouse)
            if reach == {warehouse}:
                supply = float(on_hand.get((sku, warehouse), 0.0)) + float(
                    open_orders.get((sku, warehouse), 0.0)
                )
                if sku in problem.shelf_life:
                    supply = 0.0  # stock on hand and open orders may expire before the demand comes
                needs[(sku, warehouse)] = max(per_warehouse.get(warehouse, 0.0) - supply, 0.0)
            else:
                needs[(sku, warehouse)] = sum(per_warehouse.get(v, 0.0) for v in reach)
    return needs


def _reachable(links: dict[str, set[str]], start: str) -> set[str]:
    seen = {start}
    frontier = [start]
    while frontier:
        for nxt in links.get(frontier.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return seen


def price_segments(
    schedule: list[tuple[int, float]], moq: int, pack: int, max_quantity: int
) -> list[PriceSegment]:
    """Split [moq, max_quantity] into all-units price ranges; empty ranges are dropped."""
    segments: list[PriceSegment] = []
    first_pack = max(pack, round_up(moq, pack))
    for position, (threshold, price) in enumerate(schedule):
        low = max(first_pack, round_up(threshold, pack))
        if position + 1 < len(schedule):
            high = round_down(schedule[position + 1][0] - 1, pack)
        else:
            high = max_quantity
        high = min(high, max_quantity)
        if low <= high:
            segments.append(PriceSegment(low, high, price))
    return segments


def build_sets(
    problem: ProblemData,
    stock_sign_cells: Iterable[StockCell] = (),
    skus: Collection[str] | None = None,
    all_stock_sign_cells: bool = False,
) -> ModelSets:
    """All index sets, bounds and resource limits of the model.

    ``skus`` restricts the model to those SKUs (a sub-problem; see :func:`restrict_to_residual`).
    ``stock_sign_cells`` are the (sku, warehouse, period) cells that get a stock-sign binary (see
    ``define_stock_sign_constraints``); the pipeline adds them lazily, only where a solution shipped
    stock that re-simulation shows the warehouse did not have. ``all_stock_sign_cells`` adds them
    everywhere they could matter instead.
    """
    if skus is not None:
        problem = problem.for_skus(skus)  # the group's rows only: the loops below cost what it costs
    periods = problem.periods
    demand_by_sku = problem.demand.groupby(level="sku").sum()
    demanded = set(demand_by_sku.index[demand_by_sku > 0])
    in_scope = (lambda sku: True) if skus is None else set(skus).__contains__
    needs = warehouse_needs(problem)
    suppliers = problem.suppliers
    lanes_by_supplier: dict[str, list[tuple[str, int, float]]] = {}
    # columns as lists, not iterrows: a group sub-problem reads the whole problem's lanes and links, and
    # a pandas row per lane, link and offer took 10 of an XL group's 46 ms (sets and arrays)
    lanes = problem.lanes
    for (supplier, warehouse), transit, lane_cost in zip(
        lanes.index, lanes["transit_time"].tolist(), lanes["cost_per_unit"].tolist(), strict=True
    ):
        lane = (str(warehouse), int(transit), float(lane_cost))
        lanes_by_supplier.setdefault(str(supplier), []).append(lane)

    lines: dict[Line, LineData] = {}
    offers = problem.offers
    for (supplier, sku), pack, moq, lead, unit_price in zip(
        offers.index,
        offers["order_multiple"].astype(int).tolist(),
        offers["moq"].astype(int).tolist(),
        offers["lead_time"].astype(int).tolist(),
        offers["unit_price"].astype(float).tolist(),
        strict=True,
    ):
        if sku not in demanded or not in_scope(sku) or problem.sourcing.is_off(supplier, sku):
            continue
        schedule = problem.price_schedule(supplier, sku)
        lowest_price = min(price for _, price in schedule)
        min_order_value = float(cast(float, suppliers.at[supplier, "min_order_value"]))  # unique index
        for warehouse, transit, lane_cost in lanes_by_supplier.get(supplier, []):
            uncapped = line_quantity_bound(
                needs.get((sku, warehouse), 0.0),
                moq,
                pack,
                schedule[-1][0],
                min_order_value,
                lowest_price,
                math.nan,
            )
            segments_by_bound: dict[int, list[PriceSegment]] = {}
            for order_period in range(periods - lead - transit):
                period_capacity = problem.supplier_capacity_in(supplier, order_period)
                bound = (
                    uncapped
                    if math.isnan(period_capacity)
                    else min(uncapped, round_down(period_capacity, pack))
                )
                if bound < max(moq, pack, 1):
                    continue  # nothing to serve, or the supplier's capacity is below one allowed quantity
                if bound not in segments_by_bound:
                    segments_by_bound[bound] = (
                        price_segments(schedule, moq, pack, bound) if len(schedule) > 1 else []
                    )
                segments = segments_by_bound[bound]
                if len(schedule) > 1 and not segments:
                    continue
                line = LineData(
                    supplier,
                    sku,
                    warehouse,
                    order_period,
                    order_period + lead + transit,
                    pack,
                    moq,
                    bound,
                    unit_price,
                    lane_cost,
                    segments,
                )
                lines[line.key] = line

    purchase_orders: dict[PurchaseOrder, list[Line]] = {}
    for key in lines:
        purchase_orders.setdefault((key[0], key[2], key[3]), []).append(key)

    on_hand_items = cast("Iterable[tuple[tuple[str, str], float]]", problem.on_hand.items())
    on_hand = {(str(i), str(w)): float(q) for (i, w), q in on_hand_items if q > 0 and in_scope(i)}
    receipts: dict[StockCell, float] = {}
    for row in problem.open_orders.itertuples(index=False):
        if in_scope(row.sku):
            cell = (str(row.sku), str(row.warehouse), int(cast(SupportsInt, row.arrival_period)))
            receipts[cell] = receipts.get(cell, 0.0) + float(cast(SupportsFloat, row.quantity))
    demand_items = cast("Iterable[tuple[tuple[str, str, int], float]]", problem.demand.items())
    demand = {(str(i), str(w), int(t)): float(q) for (i, w, t), q in demand_items if q != 0 and in_scope(i)}

    stocked = {i for i in demanded if in_scope(i)} | {i for i, _ in on_hand} | {i for i, _, _ in receipts}
    transfer_arcs: dict[TransferArc, int] = {}
    links = problem.transfer_links
    for (origin, destination), lead in zip(links.index, links["lead_time"].astype(int).tolist(), strict=True):
        for sku in sorted(stocked - set(problem.shelf_life)):  # perishable SKUs are not transferred
            for ship_period in range(periods - lead):
                transfer_arcs[(sku, str(origin), str(destination), ship_period)] = ship_period + lead

    pairs: set[tuple[str, str]] = set(on_hand)
    pairs |= {(i, w) for i, w, _ in demand} | {(i, w) for i, w, _ in receipts}
    pairs |= {(key[1], key[2]) for key in lines}
    pairs |= {(i, w) for i, _, w, _ in transfer_arcs} | {(i, w) for i, w, _, _ in transfer_arcs}
    # a safety-stock target's shortfall is costed even where nothing else happens
    pairs |= {(str(i), str(w)) for i, w in problem.safety_stock.index if in_scope(i)}
    stock_cells = [(i, w, t) for i, w in sorted(pairs) for t in range(periods)]

    cumulative_demand: dict[StockCell, float] = {}
    for i, w in sorted(pairs):
        total = 0.0
        for t in range(periods):
            total += max(demand.get((i, w, t), 0.0), 0.0)
            cumulative_demand[(i, w, t)] = total
    # plain dicts: a pandas lookup per stock cell and purchase order took 2.5 of an L group's 15 ms
    volume = {str(i): float(v) for i, v in problem.skus["unit_volume"].items()}
    capacity = {str(w): float(c) for w, c in problem.warehouses["capacity"].items()}
    stock_upper: dict[StockCell, float] = {}
    for i, w, t in stock_cells:
        vol = volume[i]
        stock_upper[(i, w, t)] = capacity[w] / vol if vol > 0 else math.inf

    arcs_leaving: set[tuple[str, str, int]] = {(i, w, t) for i, w, _, t in transfer_arcs}
    candidates = stock_cells if all_stock_sign_cells else set(stock_sign_cells)
    shipping_cells = sorted(
        cell
        for cell in candidates
        if (cell[0], cell[1], cell[2] + 1) in arcs_leaving and cumulative_demand.get(cell, 0.0) > 0
    )

    shelf_life = {i: life for i, life in problem.shelf_life.items() if in_scope(i)}
    initial_cohorts: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for age_key, units in problem.stock_ages.items():
        sku, warehouse, age = cast(tuple[str, str, int], age_key)
        if str(sku) in shelf_life and units > 0:
            initial_cohorts.setdefault((str(sku), str(warehouse)), []).append((-int(age), float(units)))
    waste_cells = []
    for i, w, t in stock_cells if shelf_life else ():
        if i in shelf_life:
            oldest = min((arrived for arrived, _ in initial_cohorts.get((i, w), [])), default=0)
            if t >= oldest + shelf_life[i] - 1:
                waste_cells.append((i, w, t))

    splits, common_cost = _channel_splits(problem, in_scope)
    suppliers_capacity = problem.suppliers["capacity"]
    minimum_value = {str(s): float(v) for s, v in problem.suppliers["min_order_value"].fillna(0.0).items()}
    order_cost = {str(s): float(c) for s, c in problem.suppliers["order_cost"].items()}
    return ModelSets(
        lines=lines,
        purchase_orders=purchase_orders,
        transfer_arcs=transfer_arcs,
        stock_cells=stock_cells,
        stock_upper=stock_upper,
        backorder_upper=cumulative_demand,
        demand=demand,
        receipts=receipts,
        on_hand=on_hand,
        shipping_cells=shipping_cells,
        supplier_capacity={
            (str(s), t): limit
            for s in suppliers_capacity.index
            for t in range(periods)
            if not math.isnan(limit := problem.supplier_capacity_in(str(s), t))
        },
        budget={int(cast(SupportsInt, t)): float(amount) for t, amount in problem.budget.items()},
        storage_capacity={(w, t): c for w, c in capacity.items() for t in range(periods)},
        order_cost={po: order_cost[po[0]] for po in purchase_orders},
        min_order_value={po: minimum_value[po[0]] for po in purchase_orders},
        shelf_life=shelf_life,
        initial_cohorts=initial_cohorts,
        waste_cells=waste_cells,
        channel_splits=splits,
        channel_cost=common_cost,
        share_rules=_share_rules(problem, lines, in_scope),
    )


def _channel_splits(
    problem: ProblemData, in_scope: Callable[[str], bool]
) -> tuple[dict[tuple[str, str], ChannelSplit], dict[tuple[str, str], float]]:
    """The (sku, warehouse) pairs whose channels have different shortage costs, and the common shortage
    cost of the other pairs with channel demand where it is not the SKU's. Where all channels of a pair
    cost the same, how a backorder is split over them does not change the cost, so the model keeps one
    backorder there (the re-simulation still reports each channel)."""
    demand: dict[tuple[str, str], dict[str, list[float]]] = {}
    for key, quantity in problem.channel_demand.items():
        sku, warehouse, channel, period = cast(tuple[str, str, str, int], key)
        if not in_scope(str(sku)):
            continue
        per_channel = demand.setdefault((str(sku), str(warehouse)), {})
        per_channel.setdefault(str(channel), [0.0] * problem.periods)[int(period)] += float(quantity)
    splits: dict[tuple[str, str], ChannelSplit] = {}
    common: dict[tuple[str, str], float] = {}
    for (sku, warehouse), per_channel in sorted(demand.items()):
        if sum(sum(quantities) for quantities in per_channel.values()) <= 0:
            continue  # nothing is demanded, nothing can be owed (and the pair may have no stock cells)
        costs = {channel: problem.channel_shortage_cost(sku, channel) for channel in per_channel}
        if len(set(costs.values())) > 1:
            splits[(sku, warehouse)] = ChannelSplit(per_channel, costs)
        else:
            cost = next(iter(costs.values()))
            if cost != float(cast(SupportsFloat, problem.skus.at[sku, "shortage_cost"])):
                common[(sku, warehouse)] = cost
    return splits, common


def _share_rules(
    problem: ProblemData, lines: dict[Line, LineData], in_scope: Callable[[str], bool]
) -> list[ShareRuleData]:
    """Share rules that apply to the lines in scope (a rule on one SKU only where that SKU is in scope)."""
    rules = []
    for rule in problem.sourcing.shares:
        if rule.sku is not None and not in_scope(rule.sku):
            continue
        counted = [key for key in lines if rule.sku is None or key[1] == rule.sku]
        own = [key for key in counted if key[0] == rule.supplier]
        rules.append(ShareRuleData(rule, own, counted))
    return rules


def network_units(sets: ModelSets) -> dict[str, float]:
    """Units of each SKU that can ever be in the network: stock on hand, open orders and every order
    line's quantity bound (a bound on stock, backorder and transfers alike)."""
    total: dict[str, float] = defaultdict(float)
    for (sku, _), quantity in sets.on_hand.items():
        total[sku] += quantity
    for (sku, _, _), quantity in sets.receipts.items():
        total[sku] += quantity
    for line in sets.lines.values():
        total[line.sku] += line.max_quantity
    return total


@dataclass(frozen=True)
class PlanTotals:
    """What a plan uses of the limits its SKUs share: units by (supplier, order period), spend by order
    period, stored volume by (warehouse, period), and per purchase order (supplier, warehouse, order
    period) its value and number of lines. One plan's totals less those of some of its SKUs are the
    totals of the others (:meth:`minus`), without filtering the whole plan for every sub-problem."""

    units: pd.Series
    spend: pd.Series
    volume: pd.Series
    po_value: pd.Series
    po_lines: pd.Series

    @classmethod
    def of(cls, problem: ProblemData, orders: pd.DataFrame, inventory: pd.DataFrame) -> PlanTotals:
        """The totals of evaluated ``orders`` (with ``line_value``) and ``inventory`` (``end_stock``)."""
        volume = inventory["end_stock"] * inventory["sku"].map(problem.skus["unit_volume"]).astype(float)
        purchase_orders = orders.groupby(["supplier", "warehouse", "order_period"])["line_value"]
        return cls(
            units=orders.groupby(["supplier", "order_period"])["quantity"].sum(),
            spend=orders.groupby("order_period")["line_value"].sum(),
            volume=volume.groupby([inventory["warehouse"], inventory["period"]]).sum(),
            po_value=purchase_orders.sum(),
            po_lines=purchase_orders.size(),
        )

    def minus(self, part: PlanTotals) -> PlanTotals:
        """These totals less ``part``'s (the totals of some of the same plan's SKUs)."""
        return PlanTotals(
            units=self.units.sub(part.units, fill_value=0.0),
            spend=self.spend.sub(part.spend, fill_value=0.0),
            volume=self.volume.sub(part.volume, fill_value=0.0),
            po_value=self.po_value.sub(part.po_value, fill_value=0.0),
            po_lines=self.po_lines.sub(part.po_lines, fill_value=0),
        )


def restrict_to_residual(
    sets: ModelSets,
    problem: ProblemData,
    others: PlanEvaluation,
    totals: PlanTotals | None = None,
) -> ModelSets:
    """Turn the sets of a SKU sub-problem into the residual problem left by the plan ``others`` of the
    remaining SKUs: their units, spend and stored volume are taken off the shared limits, and purchase
    orders they already place cost nothing more and need only the rest of the minimum order value.
    ``totals`` are ``others``' :class:`PlanTotals` where already known (then only sourcing share rules
    read ``others.orders``)."""
    if totals is None:
        totals = PlanTotals.of(problem, others.orders, others.inventory)
    for key, capacity in sets.supplier_capacity.items():
        sets.supplier_capacity[key] = max(capacity - float(totals.units.get(key, 0.0)), 0.0)
    for period, amount in sets.budget.items():
        sets.budget[period] = max(amount - float(totals.spend.get(period, 0.0)), 0.0)
    for key, capacity in sets.storage_capacity.items():
        sets.storage_capacity[key] = max(capacity - float(totals.volume.get(key, 0.0)), 0.0)
    for data in sets.share_rules:
        rule = data.rule
        scope = others.orders if rule.sku is None else others.orders[others.orders["sku"] == rule.sku]
        data.fixed_total_units = float(scope["quantity"].sum())
        data.fixed_supplier_units = float(scope.loc[scope["supplier"] == rule.supplier, "quantity"].sum())
    for po in sets.purchase_orders:
        if totals.po_lines.get(po, 0) > 0:
            sets.order_cost[po] = 0.0
            sets.min_order_value[po] = max(sets.min_order_value[po] - float(totals.po_value[po]), 0.0)
    return sets
