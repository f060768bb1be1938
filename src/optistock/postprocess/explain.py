"""Why each proposed purchase-order line: what it covers, what bound its quantity, what it beat.

Buyers review every proposed order line. :func:`explain_lines` gives each line of a re-simulated plan
(:class:`~optistock.postprocess.simulate.PlanEvaluation`) a short, actionable explanation:

- **what it covers**, from a FIFO allocation of every unit of supply to the consumption it serves
  (:func:`allocate_supply`);
- **what bound its quantity**: MOQ, pack multiple, a price break, minimum order value, supplier
  capacity, budget or storage;
- **what it beat**: its landed unit cost against the cheapest other supplier for the same SKU and
  warehouse at the same quantity.

Everything is read from the problem data and the re-simulated plan; the optimisation model is not
consulted. Explanations are descriptive: a "bound" is a limit the line sits at (one more pack would
break it, or one pack less would lose it), not a proof that the limit was what the optimiser traded off.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import numpy as np
import pandas as pd

from optistock.postprocess.simulate import TOLERANCE, PlanEvaluation
from optistock.preprocess.data import ProblemData

logger = logging.getLogger(__name__)

EXPLAIN_COLUMNS = [
    "po_id",
    "supplier",
    "sku",
    "warehouse",
    "order_period",
    "quantity",
    "covers",
    "covered_demand_units",
    "first_period",
    "last_period",
    "transferred_units",
    "leftover_units",
    "bound_by",
    "landed_unit_cost",
    "next_best_supplier",
    "next_best_unit_cost",
    "next_best_lead_time",
    "next_best_quantity",
    "explanation",
]
"""Columns of :func:`explain_lines`, in order."""

ALLOCATION_COLUMNS = [
    "sku",
    "warehouse",
    "source",
    "line",
    "supply_period",
    "use",
    "period",
    "to_warehouse",
    "units",
]
"""Columns of :func:`allocate_supply`, in order."""

SOURCES = ("on_hand", "open_order", "transfer_in", "line")
"""Kinds of supply lot, in the order lots arriving in the same period are queued (lines last)."""

EPSILON = 1e-9
"""Quantities at or below this are treated as zero by the FIFO allocation."""

RELATIVE = 1e-9
"""Relative tolerance of the budget and storage rules, as in the re-simulation's checks."""


# ---------------------------------------------------------------- FIFO allocation


class _Record(NamedTuple):
    sku: Hashable
    warehouse: Hashable
    source: str
    line: int
    supply_period: int
    use: str
    period: int
    to_warehouse: Hashable
    units: float


@dataclass
class _Lot:
    source: str
    line: int
    period: int
    remaining: float


@dataclass
class _Request:
    use: str  # "demand" or "transfer"
    period: int
    to_warehouse: Hashable
    remaining: float


@dataclass
class _Ledger:
    """FIFO queues of one (sku, warehouse): lots in stock and requests waiting for supply.

    At any moment at most one of the two queues is non-empty: new supply first serves the waiting
    requests (oldest first), and a new request is first served from the lots in stock (oldest first).
    """

    sku: Hashable
    warehouse: Hashable
    records: list[_Record]
    lots: deque[_Lot] = field(default_factory=deque)
    waiting: deque[_Request] = field(default_factory=deque)

    def _match(self, lot: _Lot, request: _Request) -> None:
        units = min(lot.remaining, request.remaining)
        lot.remaining -= units
        request.remaining -= units
        self.records.append(
            _Record(
                self.sku,
                self.warehouse,
                lot.source,
                lot.line,
                lot.period,
                request.use,
                request.period,
                request.to_warehouse,
                units,
            )
        )

    def supply(self, lot: _Lot) -> None:
        while lot.remaining > EPSILON and self.waiting:
            request = self.waiting[0]
            self._match(lot, request)
            if request.remaining <= EPSILON:
                self.waiting.popleft()
        if lot.remaining > EPSILON:
            self.lots.append(lot)

    def consume(self, request: _Request) -> None:
        while request.remaining > EPSILON and self.lots:
            lot = self.lots[0]
            self._match(lot, request)
            if lot.remaining <= EPSILON:
                self.lots.popleft()
        if request.remaining > EPSILON:
            self.waiting.append(request)

    def close(self, last_period: int) -> None:
        """Record what is left at the horizon end: unused lots and requests never served."""
        for lot in self.lots:
            self.records.append(
                _Record(
                    self.sku,
                    self.warehouse,
                    lot.source,
                    lot.line,
                    lot.period,
                    "leftover",
                    last_period,
                    None,
                    lot.remaining,
                )
            )
        for request in self.waiting:
            self.records.append(
                _Record(
                    self.sku,
                    self.warehouse,
                    "none",
                    -1,
                    -1,
                    f"unserved_{request.use}",
                    request.period,
                    request.to_warehouse,
                    request.remaining,
                )
            )
        self.lots.clear()
        self.waiting.clear()


def _period_arrays(
    frame: pd.DataFrame, keys: list[str], period: str, value: str, periods: int
) -> dict[tuple[Any, Any], np.ndarray]:
    """Dense per-period arrays of ``value`` for each key pair (periods outside the horizon dropped)."""
    arrays: dict[tuple[Any, Any], np.ndarray] = {}
    if frame.empty:
        return arrays
    period_values = frame[period].to_numpy(dtype=np.int64)
    values = frame[value].to_numpy(dtype=float)
    inside = (period_values >= 0) & (period_values < periods)
    for key, positions in frame.groupby(keys, sort=False).indices.items():
        selected = positions[inside[positions]]
        array = np.zeros(periods)
        np.add.at(array, period_values[selected], values[selected])
        sku, warehouse = cast(tuple[Any, Any], key)
        arrays[(sku, warehouse)] = array
    return arrays


def _allocate(problem: ProblemData, evaluation: PlanEvaluation) -> list[_Record]:
    """FIFO allocation of every (sku, warehouse); its records (see :func:`allocate_supply`)."""
    periods = problem.periods
    inventory = evaluation.inventory
    keys = ["sku", "warehouse"]
    demand = _period_arrays(inventory, keys, "period", "demand", periods)
    open_orders = _period_arrays(inventory, keys, "period", "open_order_arrivals", periods)
    transfers_in = _period_arrays(inventory, keys, "period", "transfers_in", periods)
    on_hand = {(k[0], k[1]): float(v) for k, v in problem.on_hand.items()}  # type: ignore[index]
    negative = [
        name
        for name, arrays in (("demand", demand), ("open orders", open_orders))
        if any((array < -EPSILON).any() for array in arrays.values())
    ] + (["on hand"] if any(value < -EPSILON for value in on_hand.values()) else [])
    if negative:
        logger.warning("explain: negative %s quantities are ignored by the allocation", ", ".join(negative))

    orders = evaluation.orders
    # lines arriving in the same period at the same (sku, warehouse): by supplier, then po_id, then row
    line_order = np.lexsort(
        (
            np.arange(len(orders)),
            orders["po_id"].astype(str).to_numpy(),
            orders["supplier"].astype(str).to_numpy(),
        )
    )
    lines: dict[tuple[Any, Any, int], list[_Lot]] = {}
    line_sku = orders["sku"].to_numpy()
    line_warehouse = orders["warehouse"].to_numpy()
    line_arrival = orders["arrival_period"].to_numpy(dtype=np.int64)
    line_quantity = orders["quantity"].to_numpy(dtype=float)
    for position in line_order:
        arrival = int(line_arrival[position])
        if 0 <= arrival < periods:
            lines.setdefault((line_sku[position], line_warehouse[position], arrival), []).append(
                _Lot("line", int(position), arrival, float(line_quantity[position]))
            )

    shipments: dict[tuple[Any, Any, int], list[tuple[Hashable, float]]] = {}
    transfers = evaluation.transfers.sort_values(["to_warehouse", "arrival_period"], kind="stable")
    for sku, source, target, ship, quantity in zip(
        transfers["sku"],
        transfers["from_warehouse"],
        transfers["to_warehouse"],
        transfers["ship_period"],
        transfers["quantity"],
        strict=True,
    ):
        if 0 <= int(ship) < periods:
            shipments.setdefault((sku, source, int(ship)), []).append((target, float(quantity)))

    pairs = dict.fromkeys([*demand, *open_orders, *transfers_in, *on_hand])
    pairs.update(dict.fromkeys((sku, warehouse) for sku, warehouse, _ in [*lines, *shipments]))
    records: list[_Record] = []
    zeros = np.zeros(periods)
    for sku, warehouse in pairs:
        ledger = _Ledger(sku, warehouse, records)
        pair_demand = demand.get((sku, warehouse), zeros)
        pair_open = open_orders.get((sku, warehouse), zeros)
        pair_in = transfers_in.get((sku, warehouse), zeros)
        opening = on_hand.get((sku, warehouse), 0.0)
        for t in range(periods):
            # transfers ship stock on hand at the end of t-1, before anything arrives in t
            for target, quantity in shipments.get((sku, warehouse, t), ()):
                ledger.consume(_Request("transfer", t, target, quantity))
            if t == 0 and opening > EPSILON:
                ledger.supply(_Lot("on_hand", -1, 0, opening))
            if pair_open[t] > EPSILON:
                ledger.supply(_Lot("open_order", -1, t, float(pair_open[t])))
            if pair_in[t] > EPSILON:
                ledger.supply(_Lot("transfer_in", -1, t, float(pair_in[t])))
            for lot in lines.get((sku, warehouse, t), ()):
                ledger.supply(_Lot(lot.source, lot.line, lot.period, lot.remaining))
            if pair_demand[t] > EPSILON:
                ledger.consume(_Request("demand", t, None, float(pair_demand[t])))
        ledger.close(periods - 1)
    return records


def allocate_supply(problem: ProblemData, evaluation: PlanEvaluation) -> pd.DataFrame:
    """FIFO allocation of every unit of supply of a re-simulated plan to the consumption it serves.

    Per (sku, warehouse), period by period, in this order within a period t:

    1. transfers leaving in t take stock on hand at the end of t-1 (the contract's rule), destinations
       in order of ``to_warehouse``;
    2. supply arriving in t is queued as lots, in the order of :data:`SOURCES`: on-hand stock (period 0
       only), open-order arrivals, transfers in, then the plan's order lines,
       those of the same period sorted by supplier, then ``po_id``, then row position;
    3. demand of t is served.

    Quantities are taken to be non-negative, as the loader enforces; negative on-hand, open-order,
    transfer or demand quantities (a hand-built ``ProblemData``) are ignored with a warning.

    Requests are served by the oldest lots first; a request that finds no stock waits (a backorder) and is
    served, oldest request first, by the next supply that arrives. Lines arriving outside the horizon
    are not allocated.

    Returns one row per match between a lot and a use, with columns :data:`ALLOCATION_COLUMNS`:
    ``source`` (one of :data:`SOURCES`, or ``"none"`` for unserved requests), ``line`` (row position in
    ``evaluation.orders``, -1 for other sources), ``supply_period`` (the lot's arrival period), ``use``
    (``"demand"``, ``"transfer"``, ``"leftover"`` — still in stock at the horizon end —,
    ``"unserved_demand"`` or ``"unserved_transfer"``), ``period``
    (the demand period, the ship period, or the last period for leftovers), ``to_warehouse`` (transfers
    only) and ``units``.

    For a plan that ships no more than it has on hand (no ``evaluation.overdrawn``), the unserved demand
    of a (sku, warehouse) is its backorder at the end of the horizon, and its leftover lots its end
    stock.
    """
    records = _allocate(problem, evaluation)
    frame = pd.DataFrame.from_records(records, columns=ALLOCATION_COLUMNS)
    return frame.astype({"line": np.int64, "supply_period": np.int64, "period": np.int64, "units": float})


# ---------------------------------------------------------------- per-line summary of the allocation


@dataclass
class _LineUse:
    covered: float = 0.0
    late: float = 0.0
    first: int | None = None
    last: int | None = None
    transferred: float = 0.0
    shipped: dict[Hashable, list[float]] = field(default_factory=dict)  # to -> [units, first, last]
    leftover: float = 0.0


def _line_uses(records: Sequence[_Record], count: int) -> list[_LineUse]:
    uses = [_LineUse() for _ in range(count)]
    for record in records:
        if record.line < 0:
            continue
        use = uses[record.line]
        if record.use == "demand":
            use.covered += record.units
            if record.period < record.supply_period:
                use.late += record.units
            use.first = record.period if use.first is None else min(use.first, record.period)
            use.last = record.period if use.last is None else max(use.last, record.period)
        elif record.use == "transfer":
            use.transferred += record.units
            shipped = use.shipped.setdefault(record.to_warehouse, [0.0, record.period, record.period])
            shipped[0] += record.units
            shipped[1] = min(shipped[1], record.period)
            shipped[2] = max(shipped[2], record.period)
        elif record.use == "leftover":
            use.leftover += record.units
    return uses


# ---------------------------------------------------------------- text helpers


def _units(value: float) -> str:
    if abs(value - round(value)) < 1e-6:
        return f"{round(value):,}"
    return f"{value:,.2f}"


def _count(value: float, unit: str) -> str:
    """``value`` with its unit word, singular for exactly one ("1 unit", "2 units", "1 u")."""
    word = unit.removesuffix("s") if abs(value - 1) < 1e-9 else unit
    return f"{_units(value)} {word}"


def _money(value: float) -> str:
    return f"{value:,.2f}" if abs(value) >= 1 or value == 0 else f"{value:.4g}"


def _periods(first: int, last: int) -> str:
    return f"period {first}" if first == last else f"periods {first}–{last}"


def _covers_text(
    use: _LineUse,
    warehouse: Hashable,
    arrival: int,
    periods: int,
    quantity: float,
    unit: str,
    safety_stock: float = 0.0,
) -> str:
    if not 0 <= arrival < periods:
        return f"nothing: arrives in period {arrival}, outside the horizon ({_count(quantity, unit)})"
    parts = []
    if use.covered > EPSILON and use.first is not None and use.last is not None:
        late = f", {_units(use.late)} of them backordered" if use.late > EPSILON else ""
        parts.append(
            f"demand at {warehouse} in {_periods(use.first, use.last)} ({_count(use.covered, unit)}{late})"
        )
    else:
        parts.append(f"no demand at {warehouse}")
    for target, (units, first, last) in sorted(use.shipped.items(), key=lambda item: str(item[0])):
        parts.append(f"{_count(units, unit)} shipped to {target} in {_periods(int(first), int(last))}")
    if use.leftover > EPSILON:
        kept = f" (safety stock {_units(safety_stock)})" if safety_stock > 0 else ""
        parts.append(f"{_count(use.leftover, unit)} left at horizon end{kept}")
    return "; ".join(parts)


# ---------------------------------------------------------------- bounds


def _price_at(schedule: Sequence[tuple[int, float]], quantity: float) -> float:
    """All-units price of ``quantity``: the price of the highest step with min_quantity ≤ quantity."""
    steps = [step[0] for step in schedule]
    position = bisect.bisect_right(steps, quantity + 1e-9) - 1
    return schedule[max(position, 0)][1]


def _price_break_reason(
    schedule: Sequence[tuple[int, float]], quantity: float, multiple: int
) -> tuple[str, bool]:
    """("price break at N reached" | "price break at N" | "", whether it binds)."""
    reached = [step for step in schedule[1:] if step[0] <= quantity + 1e-9]
    if not reached:
        return "", False
    threshold = reached[-1][0]
    one_pack_less = quantity - multiple
    if (
        one_pack_less < threshold - 1e-9
        and _price_at(schedule, one_pack_less) > _price_at(schedule, quantity) + 1e-12
    ):
        return f"price break at {threshold} reached", True
    return f"price break at {threshold}", False


# ---------------------------------------------------------------- next-best supplier


@dataclass
class _Alternative:
    supplier: Hashable
    landed: float
    lead_time: int
    quantity: float


def _alternatives_by_cell(
    problem: ProblemData,
) -> dict[tuple[Any, Any], list[tuple[Any, int, int, float, int]]]:
    """(sku, warehouse) → [(supplier, moq, multiple, lane cost, total lead time)] of every usable offer."""
    lanes = problem.lanes
    lanes_by_supplier: dict[Any, list[tuple[Any, float, int]]] = {}
    for (supplier, warehouse), cost, transit in zip(
        lanes.index,
        lanes["cost_per_unit"].to_numpy(dtype=float),
        lanes["transit_time"].to_numpy(),
        strict=True,
    ):
        lanes_by_supplier.setdefault(supplier, []).append((warehouse, float(cost), int(transit)))
    cells: dict[tuple[Any, Any], list[tuple[Any, int, int, float, int]]] = {}
    offers = problem.offers
    for (supplier, sku), moq, multiple, lead in zip(
        offers.index,
        offers["moq"].to_numpy(),
        offers["order_multiple"].to_numpy(),
        offers["lead_time"].to_numpy(),
        strict=True,
    ):
        for warehouse, cost, transit in lanes_by_supplier.get(supplier, []):
            cells.setdefault((sku, warehouse), []).append(
                (supplier, int(moq), max(int(multiple), 1), cost, int(lead) + transit)
            )
    return cells


# ---------------------------------------------------------------- main entry point


def explain_lines(problem: ProblemData, evaluation: PlanEvaluation) -> pd.DataFrame:
    """One explanation row per row of ``evaluation.orders``, in the same order and with the same index.

    Columns (:data:`EXPLAIN_COLUMNS`):

    - ``po_id``, ``supplier``, ``sku``, ``warehouse``, ``order_period``, ``quantity``: copied from the line.
    - ``covers``: the consumption the line's units serve in the FIFO allocation of :func:`allocate_supply`
      (lines arriving in the same period at the same SKU and warehouse are allocated by supplier, then
      ``po_id``; on-hand stock, open orders and transfers in of that period come before them), e.g.
      ``"demand at W1 in periods 3–7 (412 units, 20 of them backordered); 40 units shipped to W2 in
      period 4; 12 units left at horizon end"``. "Backordered" units are demand of a period before the
      line's arrival, served late by it.
    - ``covered_demand_units``: units of demand at the line's own warehouse that the line serves;
      ``first_period``, ``last_period`` (nullable Int64): first and last period of that demand, NA when
      it serves none.
    - ``transferred_units``: units of the line shipped on to other warehouses by transfers (not followed
      further); ``leftover_units``: units still in stock at the end of the horizon (all units of a line
      that arrives outside the horizon). ``covered_demand_units + transferred_units + leftover_units ==
      quantity``.
    - ``bound_by``: ``"; "``-joined, in this order, the limits the quantity sits at (``""`` when none: the
      line is simply sized to the demand it covers; the explanation says "no binding limit found" when
      such a line still has units left at the horizon end). With q the quantity, m the offer's order multiple:

      * ``"safety stock"``: the line has units left at the horizon end and its SKU-warehouse has a
        safety-stock target (they are kept as safety stock).
      * ``"MOQ"``: |q − moq| ≤ 1e-6 and moq > m.
      * ``"pack multiple"``: m > 1 and 1e-6 < leftover_units < m − 1e-6 (the line exceeds the
        consumption it serves by less than one pack: it was rounded up to a whole pack).
      * ``"price break at N reached"``: N is the highest price-break min_quantity ≤ q, q − m < N and the
        all-units price of q − m is higher than that of q (one pack less loses the break);
        ``"price break at N"`` when q is in the tier of break N but not at its edge (informational).
      * ``"min order value"``: the supplier's minimum order value M > 0 and the purchase value V of the
        line's purchase order satisfies V − p·m + 1e-6 < M, p the line's unit price (one pack less on
        this line would leave the purchase order below the minimum, by the re-simulation's check).
      * ``"supplier capacity"``: the supplier has a finite capacity C and its total ordered units U in
        the line's order period satisfy U + m > C + 1e-6 (one more pack would exceed it).
      * ``"budget"``: the order period has a budget B and the purchase value V of all lines ordered in
        it satisfies V + p·m > B·(1 + 1e-9) + 1e-6, p the line's unit price (one more pack at the line's
        price would exceed it, using the re-simulation's tolerance).
      * ``"storage"``: the SKU's unit volume v > 0 and the warehouse's stored volume S = Σ unit_volume ×
        end_stock in the line's arrival period satisfies S + v·m > capacity·(1 + 1e-9) + 1e-6.

    - ``landed_unit_cost``: unit_price + the lane's cost_per_unit to the warehouse.
    - ``next_best_supplier``, ``next_best_unit_cost``, ``next_best_lead_time``, ``next_best_quantity``:
      the cheapest other supplier with an offer for the SKU and a lane to the warehouse, by landed unit
      cost (all-units price at quantity q', plus lane cost; ties by supplier name). q' is q raised to
      the alternative's MOQ and rounded up to its order multiple (q' > q is noted in the explanation).
      The lead time is the offer's lead_time plus the lane's transit_time. All NA when there is none.
    - ``explanation``: one sentence combining the above, e.g. ``"Covers demand at W1 in periods 3–7
      (412 u); bound by MOQ; landed 4.20/u vs S2 4.65/u (+10.7%, lead time 3 vs 1)"`` or ``"...; landed
      4.20/u; only supplier for this SKU at W1"``.
    """
    started = time.perf_counter()
    orders = evaluation.orders
    count = len(orders)
    records = _allocate(problem, evaluation)
    uses = _line_uses(records, count)

    supplier = orders["supplier"].to_numpy()
    sku = orders["sku"].to_numpy()
    warehouse = orders["warehouse"].to_numpy()
    order_period = orders["order_period"].to_numpy(dtype=np.int64)
    arrival = orders["arrival_period"].to_numpy(dtype=np.int64)
    quantity = orders["quantity"].to_numpy(dtype=float)
    unit_price = orders["unit_price"].to_numpy(dtype=float)

    offer_keys = pd.MultiIndex.from_arrays([supplier, sku])
    offers = problem.offers.reindex(offer_keys)
    moq = offers["moq"].to_numpy(dtype=float)
    multiple = np.maximum(offers["order_multiple"].to_numpy(dtype=float), 1.0)
    lanes = problem.lanes.reindex(pd.MultiIndex.from_arrays([supplier, warehouse]))
    lane_cost = lanes["cost_per_unit"].fillna(0.0).to_numpy(dtype=float)
    own_lead = arrival - order_period

    # minimum order value: purchase value of the line's purchase order
    minimum_value = orders["supplier"].map(problem.suppliers["min_order_value"]).fillna(0.0).to_numpy(float)
    po_value = orders.groupby("po_id")["line_value"].transform("sum").to_numpy(dtype=float)
    minimum_binds = (minimum_value > 0) & (po_value - unit_price * multiple + TOLERANCE < minimum_value)

    # supplier capacity: units per (supplier, order period)
    capacity = orders["supplier"].map(problem.suppliers["capacity"]).to_numpy(dtype=float)
    supplier_units = orders.groupby(["supplier", "order_period"])["quantity"].transform("sum").to_numpy(float)
    capacity_binds = ~np.isnan(capacity) & (supplier_units + multiple > capacity + TOLERANCE)

    # budget: purchase value per order period
    budget = orders["order_period"].map(problem.budget).to_numpy(dtype=float)
    spend = orders.groupby("order_period")["line_value"].transform("sum").to_numpy(dtype=float)
    budget_binds = ~np.isnan(budget) & (spend + unit_price * multiple > budget * (1 + RELATIVE) + TOLERANCE)

    # storage: stored volume of the line's warehouse in its arrival period
    inventory = evaluation.inventory
    volume_per_unit = problem.skus["unit_volume"]
    stored = (
        (inventory["end_stock"] * inventory["sku"].map(volume_per_unit).fillna(0.0))
        .groupby([inventory["warehouse"], inventory["period"]])
        .sum()
    )
    stored_at = stored.reindex(pd.MultiIndex.from_arrays([warehouse, arrival])).fillna(0.0).to_numpy(float)
    line_volume = orders["sku"].map(volume_per_unit).fillna(0.0).to_numpy(dtype=float)
    storage_capacity = orders["warehouse"].map(problem.warehouses["capacity"]).to_numpy(dtype=float)
    storage_binds = (
        (line_volume > 0)
        & ~np.isnan(storage_capacity)
        & (stored_at + line_volume * multiple > storage_capacity * (1 + RELATIVE) + TOLERANCE)
    )

    cells = _alternatives_by_cell(problem)
    rows: list[dict[str, Any]] = []
    for k in range(count):
        use = uses[k]
        q, m = float(quantity[k]), float(multiple[k])
        target = float(problem.safety_stock.get((sku[k], warehouse[k]), 0.0))
        covers = _covers_text(use, warehouse[k], int(arrival[k]), problem.periods, q, "units", target)
        if not 0 <= int(arrival[k]) < problem.periods:
            use.leftover = q

        binding: list[str] = []
        if use.leftover > TOLERANCE and target > 0:
            binding.append("safety stock")
        if abs(q - moq[k]) <= TOLERANCE and moq[k] > m:
            binding.append("MOQ")
        if m > 1 and TOLERANCE < use.leftover < m - TOLERANCE:
            binding.append("pack multiple")
        schedule = problem.price_schedule(supplier[k], sku[k])
        tier, tier_binds = _price_break_reason(schedule, q, int(m))
        if tier:
            binding.append(tier)
        if minimum_binds[k]:
            binding.append("min order value")
        if capacity_binds[k]:
            binding.append("supplier capacity")
        if budget_binds[k]:
            binding.append("budget")
        if storage_binds[k]:
            binding.append("storage")

        landed = float(unit_price[k] + lane_cost[k])
        alternative = _cheapest_other(problem, cells.get((sku[k], warehouse[k]), []), supplier[k], sku[k], q)

        sentence = [
            "Covers " + _covers_text(use, warehouse[k], int(arrival[k]), problem.periods, q, "u", target)
        ]
        limits = [reason for reason in binding if reason != tier or tier_binds]
        if limits:
            sentence.append("bound by " + ", ".join(limits))
        elif use.leftover > TOLERANCE:
            sentence.append("no binding limit found")
        else:
            sentence.append("sized to the demand it covers")
        if tier and not tier_binds:
            sentence.append(f"priced at the {tier.removeprefix('price break at ')}+ break")
        if alternative is None:
            sentence.append(f"landed {_money(landed)}/u; only supplier for this SKU at {warehouse[k]}")
        else:
            at = ""
            if alternative.quantity > q + TOLERANCE:
                at = f" at its minimum allowed {_units(alternative.quantity)} u"
            difference = ""
            if landed > 0:
                difference = f"{(alternative.landed - landed) / landed * 100:+.1f}%, "
            sentence.append(
                f"landed {_money(landed)}/u vs {alternative.supplier} {_money(alternative.landed)}/u{at} "
                f"({difference}lead time {alternative.lead_time} vs {int(own_lead[k])})"
            )
        rows.append(
            {
                "covers": covers,
                "covered_demand_units": use.covered,
                "first_period": use.first,
                "last_period": use.last,
                "transferred_units": use.transferred,
                "leftover_units": use.leftover,
                "bound_by": "; ".join(binding),
                "landed_unit_cost": landed,
                "next_best_supplier": None if alternative is None else alternative.supplier,
                "next_best_unit_cost": np.nan if alternative is None else alternative.landed,
                "next_best_lead_time": None if alternative is None else alternative.lead_time,
                "next_best_quantity": np.nan if alternative is None else alternative.quantity,
                "explanation": "; ".join(sentence),
            }
        )

    details = pd.DataFrame.from_records(rows, columns=EXPLAIN_COLUMNS[6:], index=orders.index)
    result = pd.concat([orders[EXPLAIN_COLUMNS[:6]], details], axis=1)
    result = result.astype(
        {
            "covers": object,
            "covered_demand_units": float,
            "first_period": "Int64",
            "last_period": "Int64",
            "transferred_units": float,
            "leftover_units": float,
            "bound_by": object,
            "landed_unit_cost": float,
            "next_best_supplier": object,
            "next_best_unit_cost": float,
            "next_best_lead_time": "Int64",
            "next_best_quantity": float,
            "explanation": object,
        }
    )
    logger.debug("explained %d order lines in %.3f s", count, time.perf_counter() - started)
    return result[EXPLAIN_COLUMNS]


def _cheapest_other(
    problem: ProblemData,
    candidates: Sequence[tuple[Any, int, int, float, int]],
    own_supplier: Any,
    sku: Any,
    quantity: float,
) -> _Alternative | None:
    """Cheapest other supplier by landed unit cost at the quantity it would have to ship (see
    :func:`explain_lines`), ties by supplier name; None when there is none."""
    best: _Alternative | None = None
    for supplier, moq, multiple, lane_cost, lead in candidates:
        if supplier == own_supplier:
            continue
        allowed = math.ceil(max(quantity, float(moq), float(multiple)) / multiple - 1e-9) * multiple
        landed = _price_at(problem.price_schedule(supplier, sku), allowed) + lane_cost
        if best is None or (landed, str(supplier)) < (best.landed, str(best.supplier)):
            best = _Alternative(supplier, landed, lead, float(allowed))
    return best
