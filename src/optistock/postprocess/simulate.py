"""Re-simulation of a plan under the rules of the data contract.

Given order lines and transfers, this module recomputes everything else exactly as the contract
defines it — arrival periods, unit prices from the price breaks, purchase orders, stock and backorders
period by period, the cost of every component — and lists every rule the plan breaks. It does not look
at the optimisation model at all, which makes it the engine's own independent check: every plan is
re-simulated before it is written, and the reported objective is the cost computed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pandas as pd

from optistock.preprocess.data import ProblemData

TOLERANCE = 1e-6
COST_COMPONENTS = ("purchase", "ordering", "transport", "transfer", "holding", "shortage")
"""The money components of every plan's cost; a plan with safety-stock targets adds ``safety_stock``,
the shortfall penalty (not money spent, but part of what the model minimises and reports)."""

ORDER_COLUMNS = [
    "po_id",
    "supplier",
    "sku",
    "warehouse",
    "order_period",
    "arrival_period",
    "quantity",
    "unit_price",
    "line_value",
]
PO_COLUMNS = ["po_id", "supplier", "warehouse", "order_period", "lines", "total_value"]
TRANSFER_COLUMNS = ["sku", "from_warehouse", "to_warehouse", "ship_period", "arrival_period", "quantity"]
INVENTORY_COLUMNS = [
    "sku",
    "warehouse",
    "period",
    "arrivals",
    "open_order_arrivals",
    "transfers_in",
    "transfers_out",
    "demand",
    "end_stock",
    "backorder",
]
WASTE_COLUMN = "waste"
"""Column of ``inventory_plan.csv`` with the units that expire in the period (only with shelf lives)."""
CHANNEL_COLUMNS = ["sku", "warehouse", "channel", "period", "demand", "served", "backorder"]
SOURCING_COLUMNS = ["rule", "supplier", "sku", "units", "total_units", "share", "min_share", "max_share"]


@dataclass
class PlanEvaluation:
    """A plan with everything derived from it, its cost and the rules it breaks (empty when valid)."""

    orders: pd.DataFrame
    purchase_orders: pd.DataFrame
    transfers: pd.DataFrame
    inventory: pd.DataFrame
    costs: dict[str, float]
    violations: list[str] = field(default_factory=list)
    overdrawn: list[tuple[str, str, int]] = field(default_factory=list)
    """(sku, warehouse, ship period) where transfers ship more than the warehouse had on hand."""
    channels: pd.DataFrame | None = None
    """With ``demand.channel``: demand, served units and end-of-period backorder per (sku, warehouse,
    channel, period) (``CHANNEL_COLUMNS``)."""
    sourcing: pd.DataFrame | None = None
    """With share rules: each rule's units, the total they are a share of, and the share
    (``SOURCING_COLUMNS``)."""

    @property
    def total_cost(self) -> float:
        return float(sum(self.costs.values()))

    @property
    def is_valid(self) -> bool:
        return not self.violations


def po_id(supplier: str, warehouse: str, order_period: int) -> str:
    """Stable purchase-order identifier: one PO per supplier, warehouse and order period."""
    return f"PO-{order_period:03d}-{supplier}-{warehouse}"


def evaluate_plan(problem: ProblemData, orders: pd.DataFrame, transfers: pd.DataFrame) -> PlanEvaluation:
    """Re-simulate ``orders`` (supplier, sku, warehouse, order_period, quantity) and ``transfers``
    (sku, from_warehouse, to_warehouse, ship_period, quantity); lines with quantity 0 are dropped."""
    violations: list[str] = []
    orders = orders.loc[
        orders["quantity"] > TOLERANCE, ["supplier", "sku", "warehouse", "order_period", "quantity"]
    ]
    orders = orders.copy().reset_index(drop=True)
    transfers = transfers.loc[
        transfers["quantity"] > TOLERANCE,
        ["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"],
    ]
    transfers = transfers.copy().reset_index(drop=True)

    orders_out = _price_and_check_orders(problem, orders, violations)
    purchase_orders = _purchase_orders(problem, orders_out, violations)
    _check_supplier_capacity(problem, orders_out, violations)
    _check_budget(problem, orders_out, violations)
    sourcing = _check_sourcing(problem, orders_out, violations)
    transfers_out = _check_transfers(problem, transfers, violations)
    overdrawn: list[tuple[str, str, int]] = []
    inventory = _simulate_stock(problem, orders_out, transfers_out, violations, overdrawn)
    channels = _serve_channels(problem, inventory) if len(problem.channel_demand) else None

    skus = problem.skus
    sku_shortage = inventory["backorder"] * inventory["sku"].map(skus["shortage_cost"]).astype(float)
    if channels is None:
        shortage = float(sku_shortage.sum())
    else:
        split = pd.MultiIndex.from_frame(channels[["sku", "warehouse"]].drop_duplicates())
        unsplit = ~pd.MultiIndex.from_frame(inventory[["sku", "warehouse"]]).isin(split)
        shortage = float(channels["_cost"].sum()) + float(sku_shortage[unsplit].sum())
    costs = {
        "purchase": float(orders_out["line_value"].astype(float).sum()),
        "ordering": float(
            purchase_orders["supplier"].map(problem.suppliers["order_cost"]).astype(float).sum()
        ),
        "transport": float(orders_out["_lane_cost"].astype(float).sum()),
        "transfer": float(transfers_out["_link_cost"].astype(float).sum()),
        "holding": float((inventory["end_stock"] * inventory["sku"].map(skus["holding_cost"])).sum()),
        "shortage": shortage,
    }
    inventory_columns = list(INVENTORY_COLUMNS)
    if problem.shelf_life:
        costs["waste"] = float((inventory[WASTE_COLUMN] * inventory["sku"].map(problem.waste_cost)).sum())
        inventory_columns.append(WASTE_COLUMN)
    if problem.has_service_targets:
        costs["safety_stock"] = float(safety_shortfall(problem, inventory).sum())
    return PlanEvaluation(
        orders=orders_out[ORDER_COLUMNS],
        purchase_orders=purchase_orders[PO_COLUMNS],
        transfers=transfers_out[TRANSFER_COLUMNS],
        inventory=inventory[inventory_columns],
        costs=costs,
        violations=violations,
        overdrawn=overdrawn,
        channels=None if channels is None else channels[CHANNEL_COLUMNS],
        sourcing=sourcing,
    )


def cost_by_sku(problem: ProblemData, evaluation: PlanEvaluation) -> pd.Series:
    """Each SKU's own part of the plan's cost: purchase, transport, transfer, holding and shortage (at
    the SKU's shortage cost, channels aside), without the purchase orders' fixed costs, which the SKUs
    on an order share. Without channels, shelf lives and safety-stock targets these parts and the
    ``ordering`` cost add up to the plan's total cost."""
    orders, transfers, inventory = evaluation.orders, evaluation.transfers, evaluation.inventory
    skus = problem.skus
    lane_key = pd.MultiIndex.from_frame(orders[["supplier", "warehouse"]])
    lane_cost = problem.lanes["cost_per_unit"].reindex(lane_key).fillna(0.0).to_numpy(dtype=float)
    link_key = pd.MultiIndex.from_frame(transfers[["from_warehouse", "to_warehouse"]])
    link_cost = problem.transfer_links["cost_per_unit"].reindex(link_key).fillna(0.0).to_numpy(dtype=float)
    parts = [
        (orders["line_value"].astype(float) + orders["quantity"].astype(float) * lane_cost).groupby(
            orders["sku"]
        ),
        (transfers["quantity"].astype(float) * link_cost).groupby(transfers["sku"]),
        (
            inventory["end_stock"] * inventory["sku"].map(skus["holding_cost"]).astype(float)
            + inventory["backorder"] * inventory["sku"].map(skus["shortage_cost"]).astype(float)
        ).groupby(inventory["sku"]),
    ]
    total = pd.Series(0.0, index=pd.Index(skus.index.astype(str), name="sku"))
    for part in parts:
        total = total.add(part.sum(), fill_value=0.0)
    return total


def safety_shortfall(problem: ProblemData, inventory: pd.DataFrame, *, units: bool = False) -> pd.Series:
    """Per row of ``inventory``: the penalty of end stock below the safety stock (``units``: the units
    short), max(0, SS_iw − end_stock) × penalty_i; 0 where the SKU-warehouse has no target."""
    key = pd.MultiIndex.from_frame(inventory[["sku", "warehouse"]])
    target = (
        pd.Series(key.map(problem.safety_stock.to_dict()), index=inventory.index).astype(float).fillna(0.0)
    )
    short = (target - inventory["end_stock"].astype(float)).clip(lower=0.0)
    if units:
        return short
    return short * inventory["sku"].map(problem.shortfall_penalty).astype(float)


def _line_label(row: pd.Series) -> str:
    return f"{row['supplier']}/{row['sku']}/{row['warehouse']}/period {int(row['order_period'])}"


def _price_and_check_orders(
    problem: ProblemData, orders: pd.DataFrame, violations: list[str]
) -> pd.DataFrame:
    keys = pd.MultiIndex.from_frame(orders[["supplier", "sku"]])
    has_offer = keys.isin(problem.offers.index)
    lane_keys = pd.MultiIndex.from_frame(orders[["supplier", "warehouse"]])
    has_lane = lane_keys.isin(problem.lanes.index)
    for position in np.flatnonzero(~has_offer):
        violations.append(f"order {_line_label(orders.iloc[position])}: no such offer")
    for position in np.flatnonzero(~has_lane):
        violations.append(f"order {_line_label(orders.iloc[position])}: no lane from supplier to warehouse")
    orders = orders[has_offer & has_lane].reset_index(drop=True)
    if problem.sourcing.off_suppliers or problem.sourcing.off_offers:
        for row, (supplier, sku) in enumerate(zip(orders["supplier"], orders["sku"], strict=True)):
            if problem.sourcing.is_off(str(supplier), str(sku)):
                violations.append(f"order {_line_label(orders.iloc[row])}: supplier or offer switched off")
    offers = problem.offers.reindex(pd.MultiIndex.from_frame(orders[["supplier", "sku"]]))
    lanes = problem.lanes.reindex(pd.MultiIndex.from_frame(orders[["supplier", "warehouse"]]))
    quantity = orders["quantity"].to_numpy(dtype=float)
    lead = offers["lead_time"].to_numpy() + lanes["transit_time"].to_numpy()
    orders["arrival_period"] = (orders["order_period"].to_numpy() + lead).astype(np.int64)
    orders["order_period"] = orders["order_period"].astype(np.int64)
    checks = [
        (np.abs(quantity - np.round(quantity)) > TOLERANCE, "quantity is not a whole number"),
        (quantity + TOLERANCE < offers["moq"].to_numpy(), "quantity below the MOQ"),
        (
            np.abs(
                quantity / offers["order_multiple"].to_numpy()
                - np.round(quantity / offers["order_multiple"].to_numpy())
            )
            > TOLERANCE,
            "quantity is not a multiple of the order multiple",
        ),
        (orders["order_period"].to_numpy() < 0, "order period before the horizon"),
        (orders["arrival_period"].to_numpy() > problem.periods - 1, "arrives after the end of the horizon"),
    ]
    for mask, message in checks:
        for position in np.flatnonzero(mask):
            violations.append(
                f"order {_line_label(orders.iloc[position])}: {message} (quantity {quantity[position]:g})"
            )
    prices = offers["unit_price"].to_numpy(dtype=float).copy()
    if not problem.price_breaks.empty and len(orders):
        breaks = problem.price_breaks.reset_index()
        candidates = orders.reset_index().merge(breaks, on=["supplier", "sku"], suffixes=("", "_break"))
        candidates = candidates[candidates["quantity"] + 1e-9 >= candidates["min_quantity"]]
        best = candidates.sort_values("min_quantity").groupby("index").tail(1)
        prices[best["index"].to_numpy()] = best["unit_price"].to_numpy(dtype=float)
    orders["unit_price"] = prices
    orders["line_value"] = quantity * prices
    orders["_lane_cost"] = quantity * lanes["cost_per_unit"].to_numpy(dtype=float)
    orders["po_id"] = [
        po_id(s, w, int(t))
        for s, w, t in zip(orders["supplier"], orders["warehouse"], orders["order_period"], strict=True)
    ]
    return orders.sort_values(["order_period", "supplier", "warehouse", "sku"]).reset_index(drop=True)


def _purchase_orders(problem: ProblemData, orders: pd.DataFrame, violations: list[str]) -> pd.DataFrame:
    grouped = orders.groupby(["po_id", "supplier", "warehouse", "order_period"], sort=True)
    purchase_orders = grouped.agg(lines=("sku", "size"), total_value=("line_value", "sum")).reset_index()
    minimum = purchase_orders["supplier"].map(problem.suppliers["min_order_value"]).fillna(0.0).to_numpy()
    short = purchase_orders["total_value"].to_numpy() + 1e-6 < minimum
    for position in np.flatnonzero(short):
        row = purchase_orders.iloc[position]
        violations.append(
            f"purchase order {row['po_id']}: value {row['total_value']:.2f} below the supplier's minimum "
            f"order value {minimum[position]:.2f}"
        )
    return purchase_orders.sort_values(["order_period", "supplier", "warehouse"]).reset_index(drop=True)


def _check_supplier_capacity(problem: ProblemData, orders: pd.DataFrame, violations: list[str]) -> None:
    units = orders.groupby(["supplier", "order_period"])["quantity"].sum()
    for key, quantity in units.items():
        supplier, period = cast(tuple[str, int], key)
        capacity = problem.supplier_capacity_in(supplier, int(period))
        if pd.notna(capacity) and quantity > capacity + TOLERANCE:
            violations.append(
                f"supplier capacity: {supplier} in period {period} ordered {quantity:g} units, "
                f"capacity {capacity:g}"
            )


def _check_budget(problem: ProblemData, orders: pd.DataFrame, violations: list[str]) -> None:
    spend = orders.groupby("order_period")["line_value"].sum()
    for period, amount in problem.budget.items():
        spent = float(spend.get(period, 0.0))
        if spent > amount * (1 + 1e-9) + 1e-6:
            violations.append(f"budget: period {period} spends {spent:.2f}, budget {amount:.2f}")


def _check_sourcing(problem: ProblemData, orders: pd.DataFrame, violations: list[str]) -> pd.DataFrame | None:
    """Each share rule: the supplier's units of the SKU (or of all SKUs) over the horizon against
    min_share and max_share of all units bought of it (planned lines; open orders do not count)."""
    rules = problem.sourcing.shares
    if not rules:
        return None
    rows = []
    for rule in rules:
        scope = orders if rule.sku is None else orders[orders["sku"] == rule.sku]
        total = float(scope["quantity"].sum())
        units = float(scope.loc[scope["supplier"] == rule.supplier, "quantity"].sum())
        share = units / total if total > 0 else 0.0
        if units + TOLERANCE < rule.min_share * total:
            violations.append(
                f"sourcing: {rule.label}: {rule.supplier} has {units:g} of {total:g} units "
                f"({share:.1%}), below the minimum share {rule.min_share:.1%}"
            )
        if units > rule.max_share * total + TOLERANCE:
            violations.append(
                f"sourcing: {rule.label}: {rule.supplier} has {units:g} of {total:g} units "
                f"({share:.1%}), above the maximum share {rule.max_share:.1%}"
            )
        limits = (rule.min_share, rule.max_share)
        rows.append((rule.label, rule.supplier, rule.sku or "", units, total, share, *limits))
    return pd.DataFrame(rows, columns=SOURCING_COLUMNS)


def _check_transfers(problem: ProblemData, transfers: pd.DataFrame, violations: list[str]) -> pd.DataFrame:
    links = pd.MultiIndex.from_frame(transfers[["from_warehouse", "to_warehouse"]])
    known = links.isin(problem.transfer_links.index)
    for position in np.flatnonzero(~known):
        row = transfers.iloc[position]
        violations.append(
            f"transfer {row['sku']} {row['from_warehouse']}→{row['to_warehouse']}: no such link"
        )
    transfers = transfers[known].reset_index(drop=True)
    link = problem.transfer_links.reindex(
        pd.MultiIndex.from_frame(transfers[["from_warehouse", "to_warehouse"]])
    )
    quantity = transfers["quantity"].to_numpy(dtype=float)
    transfers["ship_period"] = transfers["ship_period"].astype(np.int64)
    transfers["arrival_period"] = (transfers["ship_period"].to_numpy() + link["lead_time"].to_numpy()).astype(
        np.int64
    )
    transfers["_link_cost"] = quantity * link["cost_per_unit"].to_numpy(dtype=float)
    bad = (
        (np.abs(quantity - np.round(quantity)) > TOLERANCE)
        | (transfers["ship_period"].to_numpy() < 0)
        | (transfers["arrival_period"].to_numpy() > problem.periods - 1)
        | ~transfers["sku"].isin(problem.skus.index).to_numpy()
    )
    for position in np.flatnonzero(bad):
        row = transfers.iloc[position]
        violations.append(
            f"transfer {row['sku']} {row['from_warehouse']}→{row['to_warehouse']} "
            f"period {row['ship_period']}: "
            "unknown SKU, fractional quantity or outside the horizon"
        )
    perishable = transfers["sku"].isin(list(problem.shelf_life)).to_numpy()
    for position in np.flatnonzero(perishable) if problem.shelf_life else ():
        row = transfers.iloc[position]
        violations.append(
            f"transfer {row['sku']} {row['from_warehouse']}→{row['to_warehouse']} "
            f"period {row['ship_period']}: SKU has a shelf life; perishable SKUs are not transferred"
        )
    return transfers.sort_values(["ship_period", "sku", "from_warehouse", "to_warehouse"]).reset_index(
        drop=True
    )


def _simulate_stock(
    problem: ProblemData,
    orders: pd.DataFrame,
    transfers: pd.DataFrame,
    violations: list[str],
    overdrawn: list[tuple[str, str, int]],
) -> pd.DataFrame:
    """Period-by-period stock balance on dense (sku, warehouse, period) arrays."""
    skus, warehouses, periods = problem.skus.index, problem.warehouses.index, problem.periods
    shape = (len(skus), len(warehouses), periods)

    def dense(sku: pd.Series, warehouse: pd.Series, period: pd.Series, quantity: pd.Series) -> np.ndarray:
        array = np.zeros(shape)
        period_values = period.to_numpy(dtype=np.int64)
        inside = (period_values >= 0) & (period_values < periods)
        np.add.at(
            array,
            (
                skus.get_indexer(pd.Index(sku))[inside],
                warehouses.get_indexer(pd.Index(warehouse))[inside],
                period_values[inside],
            ),
            quantity.to_numpy(dtype=float)[inside],
        )
        return array

    planned = dense(orders["sku"], orders["warehouse"], orders["arrival_period"], orders["quantity"])
    open_orders = problem.open_orders
    received = dense(
        open_orders["sku"], open_orders["warehouse"], open_orders["arrival_period"], open_orders["quantity"]
    )
    transfers_in = dense(
        transfers["sku"], transfers["to_warehouse"], transfers["arrival_period"], transfers["quantity"]
    )
    transfers_out = dense(
        transfers["sku"], transfers["from_warehouse"], transfers["ship_period"], transfers["quantity"]
    )
    demand_index = problem.demand.index
    demand = dense(
        demand_index.get_level_values("sku").to_series(),
        demand_index.get_level_values("warehouse").to_series(),
        demand_index.get_level_values("period").to_series(),
        problem.demand.reset_index(drop=True),
    )
    start = np.zeros(shape[:2])
    on_hand = problem.on_hand
    np.add.at(
        start,
        (
            skus.get_indexer(on_hand.index.get_level_values("sku")),
            warehouses.get_indexer(on_hand.index.get_level_values("warehouse")),
        ),
        on_hand.to_numpy(dtype=float),
    )
    flow = planned + received + transfers_in - transfers_out - demand
    net = start[:, :, None] + np.cumsum(flow, axis=2)
    waste = np.zeros(shape)
    initial: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for key, units in problem.stock_ages.items():
        sku, warehouse, age = cast(tuple[str, str, int], key)
        if units > 0:
            initial.setdefault((str(sku), str(warehouse)), []).append((-int(age), float(units)))
    for sku, life in problem.shelf_life.items():
        i = skus.get_loc(sku)
        for w, warehouse in enumerate(warehouses):
            cohorts = initial.get((sku, str(warehouse)), [])
            arrivals = planned[i, w] + received[i, w] + transfers_in[i, w]
            issues = demand[i, w] + transfers_out[i, w]
            net[i, w], waste[i, w] = fifo_with_expiry(cohorts, arrivals, issues, life)
    end_stock = np.maximum(net, 0.0)
    backorder = np.maximum(-net, 0.0)

    available = np.concatenate([start[:, :, None], end_stock[:, :, :-1]], axis=2)
    overdrawn_mask = transfers_out > available + TOLERANCE
    for i, w, t in zip(*np.nonzero(overdrawn_mask), strict=True):
        overdrawn.append((str(skus[i]), str(warehouses[w]), int(t)))
        violations.append(
            f"transfer availability: {skus[i]} at {warehouses[w]} ships {transfers_out[i, w, t]:g} "
            f"in period {t} "
            f"with {available[i, w, t]:g} on hand"
        )
    volume = np.einsum("iwt,i->wt", end_stock, problem.skus["unit_volume"].to_numpy(dtype=float))
    capacity = problem.warehouses["capacity"].to_numpy(dtype=float)
    over = volume > capacity[:, None] * (1 + 1e-9) + TOLERANCE
    for w, t in zip(*np.nonzero(over), strict=True):
        violations.append(
            f"storage capacity: {warehouses[w]} in period {t} holds volume {volume[w, t]:.3f}, "
            f"capacity {capacity[w]:g}"
        )

    index = pd.MultiIndex.from_product(
        [skus, warehouses, range(periods)], names=["sku", "warehouse", "period"]
    )
    inventory = pd.DataFrame(
        {
            "arrivals": (planned + received).ravel(),
            "open_order_arrivals": received.ravel(),
            "transfers_in": transfers_in.ravel(),
            "transfers_out": transfers_out.ravel(),
            "demand": demand.ravel(),
            "end_stock": end_stock.ravel(),
            "backorder": backorder.ravel(),
            WASTE_COLUMN: waste.ravel(),
        },
        index=index,
    )
    return inventory.reset_index()


def fifo_with_expiry(
    cohorts: list[tuple[int, float]], arrivals: np.ndarray, issues: np.ndarray, shelf_life: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stock of one perishable SKU at one warehouse, unit by unit age: net position and waste per period.

    ``cohorts`` are the (arrival period, units) of the stock on hand at the start (an age g arrived in
    −g). A unit that arrives in period a can be issued in a … a + shelf_life − 1; what is still on hand
    at the end of a + shelf_life − 1 is waste in that period. Each period: the arrivals join the stock,
    the backlog and then ``issues`` (demand, transfers out) take the oldest units first (FIFO), and what
    cannot be issued is backordered; then expired units are wasted.
    """
    stock = sorted(cohorts)
    backlog = 0.0
    periods = len(arrivals)
    net = np.zeros(periods)
    waste = np.zeros(periods)
    for t in range(periods):
        if arrivals[t] > 0:
            stock.append((t, float(arrivals[t])))
        wanted = backlog + float(issues[t])
        while wanted > 0 and stock:
            arrived, units = stock[0]
            taken = min(units, wanted)
            wanted -= taken
            if taken >= units - 1e-12:
                stock.pop(0)
            else:
                stock[0] = (arrived, units - taken)
        backlog = wanted
        while stock and stock[0][0] + shelf_life - 1 <= t:
            waste[t] += stock.pop(0)[1]
        net[t] = sum(units for _, units in stock) - backlog
    return net, waste


def _serve_channels(problem: ProblemData, inventory: pd.DataFrame) -> pd.DataFrame:
    """Split each (sku, warehouse)'s backorder over its sales channels.

    Every period, the units served — the backlog carried in plus the period's demand, less the end
    backorder — go to the channels in :meth:`ProblemData.channel_rank` order (highest shortage cost
    first, then priority, then name): each channel's outstanding units (its backlog plus its demand)
    are served before the next channel gets any. ``_cost`` is the channel's shortage cost of the row.
    """
    backorder = inventory.set_index(["sku", "warehouse", "period"])["backorder"]
    by_pair: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    periods = problem.periods
    for key, quantity in problem.channel_demand.items():
        sku, warehouse, channel, period = cast(tuple[str, str, str, int], key)
        per_channel = by_pair.setdefault((str(sku), str(warehouse)), {})
        per_channel.setdefault(str(channel), np.zeros(periods))[int(period)] += float(quantity)
    rows = []
    for (sku, warehouse), per_channel in sorted(by_pair.items()):
        ranked = [c for c in problem.channel_rank(sku) if c in per_channel]
        carried = dict.fromkeys(ranked, 0.0)
        for t in range(periods):
            outstanding = {c: carried[c] + per_channel[c][t] for c in ranked}
            to_serve = max(sum(outstanding.values()) - float(backorder[(sku, warehouse, t)]), 0.0)
            for channel in ranked:
                served = min(outstanding[channel], to_serve)
                to_serve -= served
                carried[channel] = outstanding[channel] - served
                rows.append(
                    (
                        sku,
                        warehouse,
                        channel,
                        t,
                        float(per_channel[channel][t]),
                        served,
                        carried[channel],
                        carried[channel] * problem.channel_shortage_cost(sku, channel),
                    )
                )
    return pd.DataFrame(rows, columns=[*CHANNEL_COLUMNS, "_cost"])
