"""A first plan for the solver to improve on: round the LP relaxation, then repair it until valid.

The MILP alone can spend its whole time limit at the root node of large instances without finding
any plan (the plan that orders nothing is feasible but the solver's heuristics rarely try it). This
module turns an LP solution's order quantities and transfers into whole, MOQ- and pack-respecting ones,
then repairs the plan — delaying transfers, moving units between periods, cutting lines — until the
independent re-simulation reports no broken rule. The result is always a valid plan (in the worst case
the empty one); the best one is handed to HiGHS as a MIP start.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import SupportsInt, cast

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap

from optistock.backend.sets import ModelSets, round_down, round_up
from optistock.postprocess.simulate import TOLERANCE, PlanEvaluation, evaluate_plan
from optistock.preprocess.data import ProblemData

logger = logging.getLogger(__name__)

MAX_REPAIR_ROUNDS = 200
ROUNDING_TOLERANCE = 1e-6
"""Units below which rounding counts the plan level with the LP's arrivals."""


def round_lp_quantities(
    sets: ModelSets, lp_quantity: dict[tuple, float], sku_costs: Mapping[str, tuple[float, float]]
) -> pd.DataFrame:
    """Whole, MOQ- and pack-respecting order lines that track the LP's cumulative arrivals.

    For each (sku, warehouse), walking through the arrival periods, the LP's cumulative arrivals are
    compared with what has been ordered so far. Where they run ahead by ``behind`` units, an order on
    the line arriving in that period that the LP used most, sized to catch up (at least the MOQ,
    rounded up to the pack), is placed when it is worth its overshoot (:func:`worth_ordering`): the
    units short until the next order would cost more than holding the units bought ahead of the LP,
    plus buying those the LP never buys in the rest of the horizon. Rounding cumulative sums rather
    than single lines keeps the total bought, and so the service level, close to the LP's.

    ``sku_costs`` maps each SKU to its (holding, shortage) cost per unit and period
    (:func:`unit_costs`). The rule that came before, an order only once ``behind`` reached half the
    smallest allowed quantity, left the plan short wherever the LP bought a little each period
    (shortage costs about a hundred times holding in the benchmarks): on L (seed 0) its start plan
    cost 48.75 M, this rule's 47.20 M (``models/core.md`` §9).
    """
    arriving: dict[tuple[str, str, int], list[tuple]] = {}
    total: dict[tuple[str, str], float] = defaultdict(float)
    for key, quantity in lp_quantity.items():
        line = sets.lines[key]
        arriving.setdefault((line.sku, line.warehouse, line.arrival_period), []).append((quantity, key))
        total[(line.sku, line.warehouse)] += max(quantity, 0.0)
    pairs = sorted({(sku, warehouse) for sku, warehouse, _ in arriving})
    last_period = max((period for _, _, period in arriving), default=-1)
    horizon_end = max([cell[2] for cell in sets.stock_cells] + [last_period])
    rows = []
    for sku, warehouse in pairs:
        holding, shortage = sku_costs[sku]
        cumulative_lp = 0.0
        ordered = 0
        for period in range(last_period + 1):
            candidates = arriving.get((sku, warehouse, period))
            if not candidates:
                continue
            cumulative_lp += sum(max(quantity, 0.0) for quantity, _ in candidates)
            _, key = max(candidates)
            line = sets.lines[key]
            minimum = max(line.moq, line.pack_size)
            behind = cumulative_lp - ordered
            if behind <= ROUNDING_TOLERANCE:
                continue
            catch_up = round_up(max(behind - ROUNDING_TOLERANCE, minimum), line.pack_size)
            whole = min(catch_up, line.max_quantity)
            if whole < minimum:
                continue
            later = total[(sku, warehouse)] - cumulative_lp  # what the LP buys after this period
            if worth_ordering(
                behind,
                whole,
                later,
                periods_left=horizon_end - period + 1,
                holding=holding,
                shortage=shortage,
                unit_cost=line.unit_price + line.lane_cost,
            ):
                rows.append((*key, whole))
                ordered += whole
    return pd.DataFrame(rows, columns=["supplier", "sku", "warehouse", "order_period", "quantity"])


def worth_ordering(
    behind: float,
    whole: int,
    later: float,
    periods_left: int,
    holding: float,
    shortage: float,
    unit_cost: float,
) -> bool:
    """Whether rounding orders ``whole`` units where the plan is ``behind`` the LP's arrivals.

    Not ordering leaves ``behind`` units short: for one period where the LP buys at least ``whole``
    more ``later`` (the next period's check orders again), else for the ``periods_left`` to the
    horizon's end (the checks after may never order again: on L, counting one period there too left
    its start plan 0.4 M dearer). Ordering buys ``whole - behind`` units ahead of the LP, held for
    about a period where the LP buys them later; those beyond ``later`` are never needed: bought, and
    held to the end."""
    ahead = max(whole - behind, 0.0)
    unused = max(ahead - later, 0.0)
    short_for = 1 if later >= whole else periods_left
    cost_if_not = behind * shortage * short_for
    cost_if_ordered = (ahead - unused) * holding + unused * (unit_cost + holding * periods_left)
    return cost_if_not >= cost_if_ordered


def round_lp_transfers(lp_transfer: dict[tuple, float]) -> pd.DataFrame:
    """Whole transfers from LP ones (transfers have no fixed cost, MOQ or pack): on each link of each
    SKU, what has been shipped by each period is the LP's cumulative shipments rounded up, so the
    receiving warehouse is never a unit behind the LP's, and the sender gives less than one unit more
    over the horizon. Rounding each transfer down instead lost up to a unit per transfer, short at
    the warehouse the LP meant it for (``models/core.md`` §9 step 2)."""
    by_link: dict[tuple[str, str, str], list[tuple[int, float]]] = defaultdict(list)
    for (sku, source, target, period), quantity in lp_transfer.items():
        by_link[(sku, source, target)].append((int(period), max(float(quantity), 0.0)))
    rows = []
    for (sku, source, target), shipments in sorted(by_link.items()):
        cumulative = 0.0
        shipped = 0
        for period, quantity in sorted(shipments):
            cumulative += quantity
            whole = math.ceil(cumulative - ROUNDING_TOLERANCE) - shipped
            if whole >= 1:
                rows.append((sku, source, target, period, whole))
                shipped += whole
    return pd.DataFrame(rows, columns=["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"])


def round_lp_plan(
    problem: ProblemData, sets: ModelSets, lp_packs: dict[tuple, float], lp_transfer: dict[tuple, float]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An LP solution's pack counts (by line) and transfers (by arc) rounded into order lines and
    transfers (:func:`round_lp_quantities`, :func:`round_lp_transfers`); not yet repaired."""
    lp_quantity = {key: sets.lines[key].pack_size * float(packs) for key, packs in lp_packs.items()}
    skus = sorted({line.sku for line in sets.lines.values()})
    return round_lp_quantities(sets, lp_quantity, unit_costs(problem, skus)), round_lp_transfers(lp_transfer)


def unit_costs(problem: ProblemData, skus: Sequence[str]) -> dict[str, tuple[float, float]]:
    """The (holding, shortage) cost per unit and period of each SKU in ``skus``."""
    rows = problem.skus.loc[list(skus)]
    costs = zip(rows.index, rows["holding_cost"], rows["shortage_cost"], strict=True)
    return {str(sku): (float(holding), float(shortage)) for sku, holding, shortage in costs}


def repair_plan(
    problem: ProblemData, orders: pd.DataFrame, transfers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Change order lines and transfers until the plan breaks no rule; returns the repaired plan.

    Transfers that ship more than their warehouse has are cut back to what it has and the rest is
    shipped a period later. Where a supplier's
    capacity or a period's budget is exceeded, units are moved to the same line a few periods earlier
    (or, failing that, later) where there is room; what cannot be moved, and every
    other broken rule, is fixed by cutting or dropping lines, one rule family at a time. In the worst
    case this ends with the plan that does nothing.
    """
    orders = orders.reset_index(drop=True)
    transfers = transfers.reset_index(drop=True)
    for round_number in range(MAX_REPAIR_ROUNDS):
        evaluation = evaluate_plan(problem, orders, transfers)
        if evaluation.is_valid:
            logger.info(
                "start plan valid after %d repair round(s): %d lines, %d transfers",
                round_number,
                len(orders),
                len(transfers),
            )
            return orders, transfers
        if evaluation.overdrawn:
            fitted = fit_transfers_to_stock(problem, evaluation)
            if fitted is None:  # nothing the one pass sees as overdrawn (none expected): cell by cell
                fitted = _cut_overdrawn_transfers(problem, transfers, evaluation)
            transfers = fitted
            continue
        priced = orders.merge(
            evaluation.orders[
                ["supplier", "sku", "warehouse", "order_period", "line_value", "arrival_period"]
            ],
            on=["supplier", "sku", "warehouse", "order_period"],
        )
        offers = problem.offers.reindex(pd.MultiIndex.from_frame(priced[["supplier", "sku"]]))
        priced["_pack"] = offers["order_multiple"].to_numpy()
        priced["_minimum"] = np.maximum(offers["moq"].to_numpy(), offers["order_multiple"].to_numpy())
        shifted = _shift_in_time(problem, priced)
        if shifted is not None:
            orders = shifted
            continue
        changes = _shrink_lines(problem, priced, evaluation.inventory)
        if not changes:
            moved = ship_out_excess(problem, evaluation.inventory, transfers)
            if moved is None:
                break
            transfers = moved
            continue
        for row, quantity in changes.items():
            orders.at[row, "quantity"] = quantity
        orders = orders[orders["quantity"] > 0].reset_index(drop=True)
    logger.info("no valid rounded start plan found; starting from the empty plan")
    return orders.iloc[0:0], transfers.iloc[0:0]


SHIFT_PERIODS = 4
"""How many periods earlier or later :func:`_shift_in_time` looks for room."""


def _shift_in_time(problem: ProblemData, orders: pd.DataFrame) -> pd.DataFrame | None:
    """Move units out of order periods over budget or over a supplier's capacity into other periods of
    the same (supplier, sku, warehouse) that have room — up to ``SHIFT_PERIODS`` earlier first (the units
    arrive sooner), then later (they arrive late rather than not at all, and still inside the horizon);
    None when nothing could be moved.

    ``orders`` carries ``line_value``, ``_pack`` and ``_minimum`` per line. Moved quantities are whole
    packs; a line left below its MOQ is moved whole, and a new line gets at least its MOQ.
    """
    quantity = orders["quantity"].astype(int).to_numpy().copy()
    unit_price = (orders["line_value"] / orders["quantity"]).to_numpy()
    suppliers = orders["supplier"].astype(str).tolist()
    skus = orders["sku"].astype(str).tolist()
    warehouses = orders["warehouse"].astype(str).tolist()
    periods = orders["order_period"].astype(int).tolist()
    packs = orders["_pack"].astype(int).tolist()
    minimums = orders["_minimum"].astype(int).tolist()
    arrivals = orders["arrival_period"].astype(int).tolist()
    spend = orders.groupby("order_period")["line_value"].sum().to_dict()
    budget_room = {
        int(cast(SupportsInt, t)): float(a) - float(spend.get(t, 0.0)) for t, a in problem.budget.items()
    }
    units: dict[tuple[str, int], float] = defaultdict(float)
    for supplier, period, ordered in zip(suppliers, periods, quantity, strict=True):
        units[(supplier, period)] += float(ordered)
    line_at = {key: row for row, key in enumerate(zip(suppliers, skus, warehouses, periods, strict=True))}

    def room(supplier: str, period: int) -> tuple[float, float]:
        capacity = problem.supplier_capacity_in(supplier, period)
        units_room = (math.inf if math.isnan(capacity) else capacity) - units[(supplier, period)]
        return budget_room.get(period, math.inf), units_room

    added: dict[tuple[str, str, str, int], int] = defaultdict(int)
    moved_any = False
    for row in (int(r) for r in np.argsort(-quantity)):
        supplier, period = suppliers[row], periods[row]
        budget_excess = -budget_room.get(period, math.inf)
        units_excess = -room(supplier, period)[1]
        excess_units = max(budget_excess / max(unit_price[row], 1e-9), units_excess)
        if excess_units <= 1e-6 or quantity[row] <= 0:
            continue
        latest_order = period + (problem.periods - 1 - arrivals[row])
        later = range(period + 1, min(period + SHIFT_PERIODS, latest_order) + 1)
        for other in [*range(period - 1, max(period - 1 - SHIFT_PERIODS, -1), -1), *later]:
            target = (supplier, skus[row], warehouses[row], other)
            existing = quantity[line_at[target]] if target in line_at else added[target]
            move = round_up(excess_units, packs[row])
            if existing == 0:
                move = max(move, round_up(minimums[row], packs[row]))
            if quantity[row] - move < minimums[row]:
                move = int(quantity[row])
            money_room, units_room = room(supplier, other)
            if move <= 0 or move * unit_price[row] > money_room + 1e-6 or move > units_room + 1e-6:
                continue
            quantity[row] -= move
            if target in line_at:
                quantity[line_at[target]] += move
            else:
                added[target] += move
            value = move * unit_price[row]
            budget_room[period] = budget_room.get(period, math.inf) + value
            budget_room[other] = budget_room.get(other, math.inf) - value
            units[(supplier, period)] -= move
            units[(supplier, other)] += move
            moved_any = True
            break
    if not moved_any:
        return None
    rows = [
        (supplier, sku, warehouse, period, int(ordered))
        for supplier, sku, warehouse, period, ordered in zip(
            suppliers, skus, warehouses, periods, quantity, strict=True
        )
    ]
    rows += [(*key, ordered) for key, ordered in added.items()]
    merged = pd.DataFrame(rows, columns=["supplier", "sku", "warehouse", "order_period", "quantity"])
    merged = merged[merged["quantity"] > 0]
    return merged.groupby(["supplier", "sku", "warehouse", "order_period"], as_index=False).agg(
        quantity=("quantity", "sum")
    )


def fit_transfers_to_stock(problem: ProblemData, evaluation: PlanEvaluation) -> pd.DataFrame | None:
    """The evaluated plan's transfers (``evaluation.transfers``: those on a known link) cut back, in one
    pass forward through the periods, so that none ships more than its warehouse has on hand.

    Period by period, the transfers leaving a (sku, warehouse) that ships more than its end stock of the
    period before (its stock on hand in period 0) are scaled down to that stock, each rounded down to a
    whole unit, and what was cut is shipped on the same link one period later (dropped where it would
    arrive after the horizon). The stock of the next period follows from the transfers as cut. This is
    the transfer availability rule of ``models/core.md`` for stock that does not expire (perishable SKUs
    are never transferred); it replaces one re-simulation of the whole plan per period of delay. ``None``
    where no transfer ships more than its stock."""
    shipped = evaluation.transfers
    if shipped.empty:
        return None
    periods = problem.periods
    warehouses = problem.warehouses.index
    link = ["sku", "from_warehouse", "to_warehouse"]
    arcs = shipped.groupby(link, sort=False).ngroup().to_numpy()
    first = shipped.drop_duplicates(link)  # one row per arc, in the order of ``arcs``
    skus = pd.Index(first["sku"].unique())
    arc_sku = skus.get_indexer(pd.Index(first["sku"]))
    arc_from = warehouses.get_indexer(pd.Index(first["from_warehouse"]))
    arc_to = warehouses.get_indexer(pd.Index(first["to_warehouse"]))
    arc_lead = (first["arrival_period"] - first["ship_period"]).to_numpy(dtype=np.int64)
    quantity = np.zeros((len(first), periods))
    np.add.at(
        quantity, (arcs, shipped["ship_period"].to_numpy(dtype=np.int64)), shipped["quantity"].to_numpy(float)
    )

    inventory = evaluation.inventory[evaluation.inventory["sku"].isin(skus)]
    flow = np.zeros((len(skus), len(warehouses), periods))
    np.add.at(
        flow,
        (
            skus.get_indexer(pd.Index(inventory["sku"])),
            warehouses.get_indexer(pd.Index(inventory["warehouse"])),
            inventory["period"].to_numpy(dtype=np.int64),
        ),
        (inventory["arrivals"] - inventory["demand"]).to_numpy(dtype=float),
    )
    on_hand = problem.on_hand[problem.on_hand.index.get_level_values("sku").isin(skus)]
    net = np.zeros((len(skus), len(warehouses)))
    np.add.at(
        net,
        (
            skus.get_indexer(on_hand.index.get_level_values("sku")),
            warehouses.get_indexer(on_hand.index.get_level_values("warehouse")),
        ),
        on_hand.to_numpy(dtype=float),
    )
    every_arc = np.arange(len(first))
    cut_any = False
    for period in range(periods):
        available = np.maximum(net, 0.0)
        leaving = np.zeros_like(net)
        np.add.at(leaving, (arc_sku, arc_from), quantity[:, period])
        over = leaving > available + TOLERANCE
        if over.any():
            cut_any = True
            share = np.where(over, available / np.maximum(leaving, TOLERANCE), 1.0)[arc_sku, arc_from]
            before = quantity[:, period].copy()
            quantity[:, period] = np.where(share < 1.0, np.floor(before * share + TOLERANCE), before)
            if period + 1 < periods:
                still_arrives = period + 1 + arc_lead <= periods - 1
                quantity[still_arrives, period + 1] += (before - quantity[:, period])[still_arrives]
            leaving = np.zeros_like(net)
            np.add.at(leaving, (arc_sku, arc_from), quantity[:, period])
        arriving = np.zeros_like(net)
        sent = period - arc_lead
        landed = sent >= 0
        np.add.at(arriving, (arc_sku[landed], arc_to[landed]), quantity[every_arc[landed], sent[landed]])
        net = net + flow[:, :, period] + arriving - leaving

    if not cut_any:
        return None
    arc_rows, ship_periods = np.nonzero(quantity > TOLERANCE)
    return pd.DataFrame(
        {
            "sku": first["sku"].to_numpy()[arc_rows],
            "from_warehouse": first["from_warehouse"].to_numpy()[arc_rows],
            "to_warehouse": first["to_warehouse"].to_numpy()[arc_rows],
            "ship_period": ship_periods.astype(np.int64),
            "quantity": np.round(quantity[arc_rows, ship_periods]).astype(np.int64),
        }
    )


def _cut_overdrawn_transfers(
    problem: ProblemData, transfers: pd.DataFrame, evaluation: PlanEvaluation
) -> pd.DataFrame:
    """Scale the transfers leaving an overdrawn (sku, warehouse, period) down to the stock on hand and
    ship what was cut one period later instead (while it still arrives inside the horizon)."""
    available = evaluation.inventory.set_index(["sku", "warehouse", "period"])["end_stock"]
    transfers = transfers.copy()
    delayed: list[tuple[str, str, str, int, int]] = []
    for sku, warehouse, period in evaluation.overdrawn:
        leaving = (
            (transfers["sku"] == sku)
            & (transfers["from_warehouse"] == warehouse)
            & (transfers["ship_period"] == period)
        )
        if period > 0:
            on_hand = float(available.get((sku, warehouse, period - 1), 0.0))
        else:
            on_hand = float(problem.on_hand.get((sku, warehouse), 0.0))
        total = float(transfers.loc[leaving, "quantity"].sum())
        if total <= 0:
            continue
        share = max(on_hand, 0.0) / total
        before = transfers.loc[leaving, "quantity"].astype(int)
        after = (before * share).astype(int)
        transfers.loc[leaving, "quantity"] = after
        for row in before.index:
            destination = str(transfers.at[row, "to_warehouse"])
            lead = int(cast(SupportsInt, problem.transfer_links.at[(warehouse, destination), "lead_time"]))
            if int(before[row]) > int(after[row]) and period + 1 + lead <= problem.periods - 1:
                delayed.append((sku, warehouse, destination, period + 1, int(before[row]) - int(after[row])))
    if delayed:
        extra = pd.DataFrame(
            delayed, columns=["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"]
        )
        transfers = pd.concat([transfers[extra.columns], extra], ignore_index=True)
        keys = ["sku", "from_warehouse", "to_warehouse", "ship_period"]
        transfers = transfers.groupby(keys, as_index=False).agg(quantity=("quantity", "sum"))
    return transfers[transfers["quantity"] > 0].reset_index(drop=True)


def _shrink_lines(problem: ProblemData, orders: pd.DataFrame, inventory: pd.DataFrame) -> dict[int, int]:
    """New quantities (0 = drop) for lines whose change moves the plan towards validity.

    Purchase orders below their minimum value are dropped. Where a supplier's capacity, a period's
    budget or a warehouse's storage is exceeded, lines are first cut by stock they never use (units
    that stay on hand to the end of the horizon, so cutting them creates no backorder); only if that
    is not enough is the largest line cut by whole packs (not below its MOQ, else dropped). The caller
    re-simulates and repeats.
    """
    changes: dict[int, int] = {}
    if orders.empty:  # nothing left to cut (what is still broken is not the lines')
        return changes
    suppliers = problem.suppliers
    po_value = orders.groupby(["supplier", "warehouse", "order_period"])["line_value"].transform("sum")
    minimum = orders["supplier"].map(suppliers["min_order_value"]).astype(float).fillna(0.0)
    for row in np.flatnonzero((po_value + 1e-6 < minimum).to_numpy()):
        changes[int(row)] = 0
    if changes:
        return changes
    removable = _removable_units(orders, inventory)
    units = orders["quantity"].astype(float)
    ones = pd.Series(1.0, index=orders.index)
    for (supplier, period), group in orders.groupby(["supplier", "order_period"]):
        limit = problem.supplier_capacity_in(str(supplier), int(cast(SupportsInt, period)))
        if pd.notna(limit):
            _cut(
                orders, group, units, ones, float(group["quantity"].sum()) - float(limit), removable, changes
            )
    unit_price = orders["line_value"] / orders["quantity"]
    for period, group in orders.groupby("order_period"):
        if period in problem.budget.index:
            excess_value = float(group["line_value"].sum()) - float(problem.budget[period])
            _cut(orders, group, units, unit_price, excess_value, removable, changes)
    if changes:
        return changes
    volume = inventory["end_stock"] * inventory["sku"].map(problem.skus["unit_volume"])
    used = volume.groupby([inventory["warehouse"], inventory["period"]]).sum()
    capacity = problem.warehouses["capacity"]
    unit_volume = orders["sku"].map(problem.skus["unit_volume"]).astype(float)
    for key, value in used.items():
        warehouse, period = cast(tuple[str, int], key)
        excess = value - float(capacity[warehouse])
        if excess > 1e-6:
            arrived = orders[(orders["warehouse"] == warehouse) & (orders["arrival_period"] <= period)]
            _cut(orders, arrived, units, unit_volume, excess, removable, changes)
    return changes


def ship_out_excess(
    problem: ProblemData, inventory: pd.DataFrame, transfers: pd.DataFrame
) -> pd.DataFrame | None:
    """``transfers`` plus what brings each warehouse back within its storage capacity in the first
    period it holds too much, where cutting order lines cannot (stock on hand at the start beyond the
    capacity, or a rounded transfer of the LP's that leaves a fraction of a unit too much).

    In that period t the warehouse ships, from what it held at the end of t − 1 (its stock on hand in
    period 0) and does not ship already, the units of the bulkiest SKUs first, each rounded up to a whole
    unit, to the linked warehouse with the most room from their arrival to the end of the horizon (room
    shared out as this pass fills it; arrivals after the horizon are not allowed). Where no linked
    warehouse has such room, what is left goes on a link with a lead time, to the warehouse with the most
    room in the arrival period even if it has none: the units are in transit at the end of t, so the
    excess moves to a later period, where the next round ships it on or demand consumes it (found by
    fuzzing: with every warehouse full in the first periods, only such a chain of transfers, as the LP's,
    keeps stock on hand within storage). Perishable SKUs are not transferred. ``None`` where no warehouse
    holds too much or none of it can be shipped; a warehouse still over capacity, or one the shipped units
    now overfill, is mended by the next round of :func:`repair_plan`."""
    periods = problem.periods
    unit_volume = problem.skus["unit_volume"].astype(float)
    capacity = problem.warehouses["capacity"].astype(float)
    rows = inventory.assign(volume=inventory["end_stock"] * inventory["sku"].map(unit_volume).to_numpy())
    used = rows.groupby(["warehouse", "period"])["volume"].sum()
    excess = used - capacity.reindex(used.index.get_level_values("warehouse")).to_numpy()
    over = excess[excess > TOLERANCE]
    if over.empty:
        return None
    first_over: dict[str, tuple[int, float]] = {}  # warehouse → its first period over capacity, by how much
    for key, volume in over.sort_index().items():
        warehouse, period = cast(tuple[str, int], key)
        first_over.setdefault(str(warehouse), (int(period), float(volume)))
    room = (-excess).clip(lower=0.0).to_dict()  # (warehouse, period) → volume free

    def room_at(warehouse: str, period: int) -> float:
        return float(room.get((warehouse, period), capacity[warehouse]))

    by_cell = rows.set_index(["sku", "warehouse", "period"])
    perishable = set(problem.shelf_life)
    added: list[tuple[str, str, str, int, int]] = []
    for warehouse, (period, to_clear) in first_over.items():
        if period == 0:
            held = problem.on_hand.xs(warehouse, level="warehouse").astype(float)
        else:
            held = by_cell.xs((warehouse, period - 1), level=("warehouse", "period"))["end_stock"]
        shipping = by_cell.xs((warehouse, period), level=("warehouse", "period"))["transfers_out"]
        free = (held - shipping.reindex(held.index).fillna(0.0)).clip(lower=0.0)
        bulky = unit_volume.reindex(free.index).fillna(0.0).to_numpy() > 0
        free = free[(free >= 1.0) & bulky & ~free.index.isin(perishable)]
        reachable = [(destination, period + lead) for destination, lead in _links_from(problem, warehouse)]
        spaces = {
            (destination, arrival): min(room_at(destination, t) for t in range(arrival, periods))
            for destination, arrival in reachable
            if arrival <= periods - 1
        }
        links = sorted(spaces.items(), key=lambda item: -item[1])  # lasting room, the most first
        later = [link for link in spaces if link[1] > period]
        onward = max(later, key=lambda link: (room_at(*link), spaces[link]), default=None)
        if onward is not None:  # then the chain: whatever is left, room or not
            links.append((onward, math.inf))
        for (destination, arrival), space in links:
            for sku in sorted(free.index, key=lambda i: -unit_volume[i]):
                volume = float(unit_volume[sku])
                fits = int(space // volume) if math.isfinite(space) else int(free[sku])
                units = min(math.ceil(to_clear / volume - 1e-9), int(free[sku]), fits)
                if units <= 0 or to_clear <= TOLERANCE:
                    continue
                added.append((str(sku), warehouse, destination, period, units))
                free[sku] -= units
                to_clear -= units * volume
                space -= units * volume
                for t in range(arrival, periods):
                    room[(destination, t)] = room_at(destination, t) - units * volume
    if not added:
        return None
    extra = pd.DataFrame(added, columns=["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"])
    arc = ["sku", "from_warehouse", "to_warehouse", "ship_period"]
    together = pd.concat([transfers[[*arc, "quantity"]], extra], ignore_index=True)
    return together.groupby(arc, sort=False)["quantity"].sum().reset_index()


def _links_from(problem: ProblemData, warehouse: str) -> list[tuple[str, int]]:
    """The transfer links leaving ``warehouse``: (destination, lead time)."""
    links = problem.transfer_links
    if links.empty or warehouse not in links.index.get_level_values("from_warehouse"):
        return []
    leaving = links.xs(warehouse, level="from_warehouse")
    return [(str(destination), int(lead)) for destination, lead in leaving["lead_time"].items()]


def _removable_units(orders: pd.DataFrame, inventory: pd.DataFrame) -> pd.Series:
    """Per line: units that could be taken off it without any backorder or overdrawn transfer, i.e. the
    smallest spare stock of its SKU at its warehouse from its arrival to the end of the horizon."""
    frame = inventory.sort_values(["sku", "warehouse", "period"])
    next_out = frame.groupby(["sku", "warehouse"])["transfers_out"].shift(-1).fillna(0.0)
    spare = (frame["end_stock"] - next_out).clip(lower=0.0)
    suffix_min = spare.iloc[::-1].groupby([frame["sku"], frame["warehouse"]]).cummin().iloc[::-1]
    lookup = pd.Series(
        suffix_min.to_numpy(), index=pd.MultiIndex.from_frame(frame[["sku", "warehouse", "period"]])
    )
    keys = pd.MultiIndex.from_frame(orders[["sku", "warehouse", "arrival_period"]])
    return pd.Series(lookup.reindex(keys).fillna(0.0).to_numpy(), index=orders.index)


def _cut(
    orders: pd.DataFrame,
    group: pd.DataFrame,
    units: pd.Series,
    weight: pd.Series,
    excess: float,
    removable: pd.Series,
    changes: dict[int, int],
) -> None:
    """Remove ``excess`` (in units of ``weight`` per unit: 1, price or volume) from the lines of ``group``:
    first unused stock, one line per SKU and warehouse, then by cutting the largest line."""
    if excess <= 1e-6 or group.empty:
        return
    touched = {(orders.at[row, "sku"], orders.at[row, "warehouse"]) for row in changes}
    for row in removable[group.index].sort_values(ascending=False).index:
        if excess <= 1e-6:
            return
        row = int(row)
        pair = (orders.at[row, "sku"], orders.at[row, "warehouse"])
        if row in changes or pair in touched:
            continue
        pack = int(cast(SupportsInt, orders.at[row, "_pack"]))
        smallest = int(cast(SupportsInt, orders.at[row, "_minimum"]))
        quantity, spare = int(units[row]), float(removable[row])
        cut = min(round_up(excess / max(float(weight[row]), 1e-9), pack), round_down(spare, pack))
        if quantity - cut < smallest:
            cut = quantity if spare >= quantity else quantity - smallest
        if cut <= 0:
            continue
        changes[row] = quantity - cut
        touched.add(pair)
        excess -= cut * float(weight[row])
    if excess > 1e-6:
        open_rows = group.loc[[r for r in group.index if int(r) not in changes]]
        if not open_rows.empty:
            row = int(cast(SupportsInt, open_rows["quantity"].idxmax()))
            pack = int(cast(SupportsInt, orders.at[row, "_pack"]))
            smallest = int(cast(SupportsInt, orders.at[row, "_minimum"]))
            reduced = int(units[row]) - round_up(excess / max(float(weight[row]), 1e-9), pack)
            changes[row] = reduced if reduced >= smallest else 0


def order_variables(model: pyo.ConcreteModel) -> list[pyo.Var]:
    """Every 0/1 order decision of the model: ``po_open``, ``line_active``, ``segment_active``."""
    return [*model.po_open.values(), *model.line_active.values(), *model.segment_active.values()]


def start_values(
    model: pyo.ConcreteModel,
    sets: ModelSets,
    orders: pd.DataFrame,
    transfers: pd.DataFrame,
    inventory: pd.DataFrame,
    channels: pd.DataFrame | None = None,
) -> ComponentMap:
    """A complete assignment of the model's variables for a plan (order lines, transfers, its stock, its
    safety-stock shortfall, and with the extensions its waste and per-channel backorders).

    Lines and transfers of the plan that the model has no variable for are ignored; the caller makes
    sure the model's scope covers the plan.
    """
    values = ComponentMap()
    quantity = {
        (s, i, w, int(t)): float(q)
        for s, i, w, t, q in orders[["supplier", "sku", "warehouse", "order_period", "quantity"]].itertuples(
            index=False
        )
    }
    for key, var in model.packs.items():
        line = sets.lines[key]
        q = quantity.get(key, 0.0)
        values[var] = q / line.pack_size
        if key in model.line_active:
            values[model.line_active[key]] = 1.0 if q > 0 else 0.0
        for k, segment in enumerate(line.segments):
            chosen = q > 0 and segment.low <= q <= segment.high
            values[model.segment_active[(*key, k)]] = 1.0 if chosen else 0.0
            values[model.segment_quantity[(*key, k)]] = q if chosen else 0.0
    placed = {(s, w, t) for (s, i, w, t), q in quantity.items() if q > 0 and (s, i, w, t) in model.packs}
    for key, var in model.po_open.items():
        values[var] = 1.0 if key in placed else 0.0
    shipped = {
        (i, a, b, int(t)): float(q)
        for i, a, b, t, q in transfers[
            ["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"]
        ].itertuples(index=False)
    }
    for key, var in model.transfer.items():
        values[var] = shipped.get(key, 0.0)
    cells = inventory.set_index(["sku", "warehouse", "period"])
    end_stock = cells["end_stock"].to_dict()
    backorder = cells["backorder"].to_dict()
    for key, var in model.stock.items():
        values[var] = float(end_stock[key])
        values[model.backorder[key]] = float(backorder[key])
    for key, var in model.has_stock.items():
        values[var] = 1.0 if float(backorder[key]) <= 1e-9 else 0.0
    for key, var in model.safety_shortfall.items():
        values[var] = max(0.0, float(var.ub) - float(end_stock[key]))  # ub = the cell's safety stock
    if hasattr(model, "waste"):
        waste = cells["waste"].to_dict()
        for key, var in model.waste.items():
            values[var] = float(waste[key])
            values[model.expiring[key]] = 1.0 if float(waste[key]) > 1e-9 else 0.0
    if hasattr(model, "channel_backorder"):
        owed = (
            {
                (i, w, c, int(t)): float(b)
                for i, w, c, t, b in channels[
                    ["sku", "warehouse", "channel", "period", "backorder"]
                ].itertuples(index=False)
            }
            if channels is not None
            else {}
        )
        for key, var in model.channel_backorder.items():
            values[var] = owed.get(key, 0.0)
        for key, var in model.channel_in_stock.items():
            values[var] = 1.0 if float(backorder[key]) <= 1e-9 else 0.0
    return values
