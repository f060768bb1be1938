"""Stock valuation and inventory KPIs of a re-simulated plan.

**Valuation.** Stock is valued per SKU across the network — the warehouses' end stock plus transfers in
transit, N_t — with one unit cost u_t per SKU and period, so a unit is worth the same wherever it lies:

- ``weighted_average`` (default, perpetual moving average): u_t = (value of N_{t−1} + value received in
  t) / (N_{t−1} + units received in t); the stock keeps u_t until the next receipt;
- ``fifo``: N_t consists of the N_t most recently received units, valued at their own prices.

Receipts are the plan's order lines at their unit price (price breaks applied, lane costs excluded),
open orders at the list price of their offer, and the opening stock — the oldest layer — at the SKU's
standard cost (its lowest list price; 0 without an offer). The cost of goods sold in t is
value(N_{t−1}) + value received − value(N_t) − the value of the units that expire in t (shelf life; valued
at u_t), spread over the warehouses by units served.

**KPIs** per SKU, warehouse and period (``kpis.csv``), per SKU-warehouse, SKU, warehouse and in total
(``kpi_summary.csv``), per period (``kpis_by_period.csv``) and per supplier (``supplier_spend.csv``):

- ``stock_value`` = end stock × u_t; ``capital_tied_up`` = the average over the periods of the stock
  value (in total, transfers in transit included);
- ``served`` = demand + backorder_{t−1} − backorder_t; ``served_on_time`` = demand − min(demand,
  backorder_t) (the backorder left at the end of a period is its newest demand); ``fill_rate`` =
  Σ served_on_time / Σ demand (1 without demand);
- ``stock_out``: backorder at the end of the period; ``stockout_periods`` counts them;
  ``cycle_service_level`` = the share of periods with demand that end without a stock-out, reported
  against the ``service_target``;
- ``inventory_turns`` = cost of goods sold per year / capital tied up; ``days_of_supply`` = capital tied
  up / cost of goods sold per day (per period and cell: end stock / average daily demand);
- ``excess_units`` = max(0, end stock − ``kpis.excess_cover_periods`` × average demand per period);
- ``spend`` per supplier: the value of its order lines, with its share of all spend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from optistock.postprocess.simulate import PlanEvaluation, safety_shortfall
from optistock.preprocess.classify import ALL, unit_costs
from optistock.preprocess.data import ProblemData

EPS = 1e-9


@dataclass
class KpiTables:
    cells: pd.DataFrame
    """``kpis.csv``: one row per SKU, warehouse and period."""
    summary: pd.DataFrame
    """``kpi_summary.csv``: per SKU-warehouse, SKU, warehouse and total (``level``)."""
    by_period: pd.DataFrame
    """``kpis_by_period.csv``: network totals per period."""
    supplier_spend: pd.DataFrame
    """``supplier_spend.csv``: spend, units, lines and purchase orders per supplier."""
    totals: dict[str, Any]
    """The headline figures, for ``summary.json``."""


def network_valuation(
    receipts_units: np.ndarray,
    receipts_value: np.ndarray,
    opening_units: np.ndarray,
    opening_cost: np.ndarray,
    network_stock: np.ndarray,
    method: str,
) -> tuple[np.ndarray, np.ndarray]:
    """(value of the network stock, cost of goods sold), each (SKUs × periods).

    ``receipts_*`` (SKUs × periods) are the units and value received in each period, ``network_stock``
    the units held (warehouses and in transit) at the end of each period.
    """
    skus, periods = network_stock.shape
    value = np.zeros((skus, periods))
    if method == "fifo":
        # layers: opening stock (oldest), then each period's receipts at their average price
        layer_units = np.concatenate([opening_units[:, None], receipts_units], axis=1)
        layer_value = np.concatenate([(opening_units * opening_cost)[:, None], receipts_value], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            layer_cost = np.where(
                layer_units > EPS, layer_value / np.where(layer_units > EPS, layer_units, 1), 0
            )
        for t in range(periods):
            units = layer_units[:, : t + 2][:, ::-1]  # newest first
            newer = np.cumsum(units, axis=1) - units
            taken = np.clip(network_stock[:, t : t + 1] - newer, 0.0, units)
            value[:, t] = (taken * layer_cost[:, : t + 2][:, ::-1]).sum(axis=1)
    else:
        cost = opening_cost.astype(float).copy()
        held_units = opening_units.astype(float).copy()
        held_value = held_units * cost
        for t in range(periods):
            units = held_units + receipts_units[:, t]
            total = held_value + receipts_value[:, t]
            cost = np.where(units > EPS, total / np.where(units > EPS, units, 1.0), cost)
            value[:, t] = network_stock[:, t] * cost
            held_units, held_value = network_stock[:, t], value[:, t]
    previous = np.concatenate([(opening_units * opening_cost)[:, None], value[:, :-1]], axis=1)
    cogs = np.maximum(previous + receipts_value - value, 0.0)
    return value, cogs


def compute_kpis(problem: ProblemData, evaluation: PlanEvaluation) -> KpiTables:
    """The KPI tables of a plan (see the module docstring)."""
    settings = problem.scenario.kpis
    skus, warehouses, periods = problem.skus.index, problem.warehouses.index, problem.periods
    n_sku, n_wh = len(skus), len(warehouses)
    inventory = evaluation.inventory.sort_values(["sku", "warehouse", "period"]).reset_index(drop=True)
    inventory["safety_shortfall"] = safety_shortfall(problem, inventory, units=True)
    shape = (n_sku, n_wh, periods)

    def cube(column: str) -> np.ndarray:
        array = np.zeros(shape)
        array[
            skus.get_indexer(pd.Index(inventory["sku"])),
            warehouses.get_indexer(pd.Index(inventory["warehouse"])),
            inventory["period"].to_numpy(dtype=np.int64),
        ] = inventory[column].to_numpy(dtype=float)
        return array

    demand, backorder, end_stock = cube("demand"), cube("backorder"), cube("end_stock")
    standard_cost = unit_costs(problem.offers.reset_index(), skus).to_numpy(dtype=float)

    receipts_units = np.zeros((n_sku, periods))
    receipts_value = np.zeros((n_sku, periods))
    orders = evaluation.orders
    inside = orders["arrival_period"].between(0, periods - 1)
    rows = skus.get_indexer(pd.Index(orders.loc[inside, "sku"]))
    cols = orders.loc[inside, "arrival_period"].to_numpy(dtype=np.int64)
    np.add.at(receipts_units, (rows, cols), orders.loc[inside, "quantity"].to_numpy(dtype=float))
    np.add.at(receipts_value, (rows, cols), orders.loc[inside, "line_value"].to_numpy(dtype=float))
    open_orders = problem.open_orders
    if len(open_orders):
        price = pd.Series(
            pd.MultiIndex.from_frame(open_orders[["supplier", "sku"]]).map(
                problem.offers["unit_price"].to_dict()
            ),
            index=open_orders.index,
        ).astype(float)
        price = price.fillna(open_orders["sku"].map(pd.Series(standard_cost, index=skus)))
        rows = skus.get_indexer(pd.Index(open_orders["sku"]))
        cols = open_orders["arrival_period"].to_numpy(dtype=np.int64)
        quantity = open_orders["quantity"].to_numpy(dtype=float)
        np.add.at(receipts_units, (rows, cols), quantity)
        np.add.at(receipts_value, (rows, cols), quantity * price.to_numpy(dtype=float))
    opening = np.zeros(n_sku)
    np.add.at(
        opening,
        skus.get_indexer(pd.Index(problem.on_hand.index.get_level_values("sku"))),
        problem.on_hand.to_numpy(),
    )

    in_transit = np.zeros((n_sku, periods))
    transfers = evaluation.transfers
    for sku_row, start, arrival, moved in zip(
        skus.get_indexer(pd.Index(transfers["sku"])),
        transfers["ship_period"].astype(int),
        transfers["arrival_period"].astype(int),
        transfers["quantity"].astype(float),
        strict=True,
    ):
        in_transit[sku_row, start : min(arrival, periods)] += moved
    network = end_stock.sum(axis=1) + in_transit
    value, cogs = network_valuation(
        receipts_units, receipts_value, opening, standard_cost, network, settings.valuation
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        unit_cost = np.where(network > EPS, value / np.where(network > EPS, network, 1.0), np.nan)
    # carry the last known cost through periods without stock (for valuing excess and display)
    unit_cost = pd.DataFrame(unit_cost).T.ffill().T.fillna(pd.Series(standard_cost)).to_numpy()
    unit_cost = np.where(np.isnan(unit_cost), standard_cost[:, None], unit_cost)
    # units that expire (shelf life) leave the stock without being sold: their value is waste, not COGS
    waste = cube("waste").sum(axis=1) if "waste" in inventory.columns else np.zeros((n_sku, periods))
    waste_value = np.minimum(waste * unit_cost, cogs)
    cogs = cogs - waste_value

    previous_backorder = np.concatenate([np.zeros((n_sku, n_wh, 1)), backorder[:, :, :-1]], axis=2)
    served = np.maximum(demand + previous_backorder - backorder, 0.0)
    served_on_time = demand - np.minimum(demand, backorder)
    network_served = served.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        issue_cost = np.where(
            network_served > EPS, cogs / np.where(network_served > EPS, network_served, 1), 0.0
        )
    cell_cogs = served * issue_cost[:, None, :]
    stock_value = end_stock * unit_cost[:, None, :]
    mean_demand = demand.mean(axis=2) if periods else np.zeros((n_sku, n_wh))
    days = float(problem.scenario.horizon.period_length_days)
    with np.errstate(divide="ignore", invalid="ignore"):
        days_of_supply = np.where(
            mean_demand[:, :, None] > EPS, end_stock / (mean_demand[:, :, None] / days), np.nan
        )
    excess_units = np.maximum(end_stock - settings.excess_cover_periods * mean_demand[:, :, None], 0.0)
    stock_out = backorder > EPS
    shortfall = cube("safety_shortfall")

    cells = inventory[["sku", "warehouse", "period"]].copy()
    index = (
        skus.get_indexer(pd.Index(cells["sku"])),
        warehouses.get_indexer(pd.Index(cells["warehouse"])),
        cells["period"].to_numpy(dtype=np.int64),
    )
    cells["demand"] = demand[index]
    cells["served"] = served[index]
    cells["served_on_time"] = served_on_time[index]
    cells["backorder"] = backorder[index]
    cells["stock_out"] = stock_out[index]
    cells["end_stock"] = end_stock[index]
    cells["unit_cost"] = unit_cost[index[0], index[2]]
    cells["stock_value"] = stock_value[index]
    cells["cost_of_goods_sold"] = cell_cogs[index]
    cells["days_of_supply"] = days_of_supply[index]
    cells["excess_units"] = excess_units[index]
    cells["excess_value"] = cells["excess_units"] * cells["unit_cost"]
    target = pd.MultiIndex.from_frame(cells[["sku", "warehouse"]]).map(problem.safety_stock.to_dict())
    cells["safety_stock"] = pd.Series(target, index=cells.index).astype(float).fillna(0.0)
    cells["safety_shortfall"] = shortfall[index]
    cells = cells[(cells.drop(columns=["sku", "warehouse", "period", "unit_cost"]) != 0).any(axis=1)]
    cells = cells.reset_index(drop=True)

    in_transit_value = (in_transit * unit_cost).sum(axis=0)
    by_period = pd.DataFrame({"period": range(periods)})
    by_period["stock_value"] = stock_value.sum(axis=(0, 1))
    by_period["in_transit_value"] = in_transit_value
    by_period["demand"] = demand.sum(axis=(0, 1))
    by_period["served_on_time"] = served_on_time.sum(axis=(0, 1))
    by_period["backorder"] = backorder.sum(axis=(0, 1))
    by_period["stock_out_cells"] = stock_out.sum(axis=(0, 1))
    by_period["cost_of_goods_sold"] = cogs.sum(axis=0)
    by_period["waste_value"] = waste_value.sum(axis=0)
    by_period["excess_value"] = (excess_units * unit_cost[:, None, :]).sum(axis=(0, 1))
    by_period["safety_shortfall"] = shortfall.sum(axis=(0, 1))
    by_period["spend"] = (
        by_period["period"].map(orders.groupby("order_period")["line_value"].sum()).fillna(0.0)
    )

    per_cell = {
        "demand": demand,
        "served_on_time": served_on_time,
        "stock_out": stock_out,
        "stock_value": stock_value,
        "cost_of_goods_sold": cell_cogs,
        "excess_value": excess_units * unit_cost[:, None, :],
        "safety_shortfall": shortfall,
    }
    summary = _summary_rows(problem, per_cell, periods, days)
    total_row = summary[summary["level"] == "total"].iloc[0]
    capital = float((by_period["stock_value"] + by_period["in_transit_value"]).mean()) if periods else 0.0
    total_cogs = float(cogs.sum())
    horizon_days = periods * days
    supplier_spend = _supplier_spend(problem, evaluation)
    totals: dict[str, Any] = {
        "valuation": settings.valuation,
        "capital_tied_up": capital,
        "peak_stock_value": float(by_period["stock_value"].max()) if periods else 0.0,
        "end_stock_value": float(by_period["stock_value"].iloc[-1]) if periods else 0.0,
        "cost_of_goods_sold": total_cogs,
        "waste_value": float(waste_value.sum()),
        "inventory_turns": _ratio(total_cogs * 365.0 / horizon_days, capital),
        "days_of_supply": _ratio(capital, total_cogs / horizon_days),
        "fill_rate": float(total_row["fill_rate"]),
        "cycle_service_level": float(total_row["cycle_service_level"]),
        "service_target": _none_if_nan(total_row["service_target"]),
        "stockout_periods": int(stock_out.sum()),
        "average_excess_value": float(by_period["excess_value"].mean()) if periods else 0.0,
        "safety_shortfall_unit_periods": float(shortfall.sum()),
        "spend_by_supplier": dict(
            zip(supplier_spend["supplier"].astype(str), supplier_spend["spend"].astype(float), strict=True)
        ),
    }
    return KpiTables(cells, summary, by_period, supplier_spend, totals)


def _summary_rows(
    problem: ProblemData, per_cell: dict[str, np.ndarray], periods: int, days: float
) -> pd.DataFrame:
    """``kpi_summary.csv`` from the (SKU × warehouse × period) arrays ``per_cell``."""
    skus, warehouses = problem.skus.index, problem.warehouses.index
    grid = pd.MultiIndex.from_product([skus, warehouses], names=["sku", "warehouse"]).to_frame(index=False)
    demand, stock_out = per_cell["demand"], per_cell["stock_out"]
    grid["demand"] = demand.sum(axis=2).ravel()
    grid["served_on_time"] = per_cell["served_on_time"].sum(axis=2).ravel()
    grid["demand_periods"] = (demand > EPS).sum(axis=2).ravel()
    grid["stockout_periods"] = stock_out.sum(axis=2).ravel()
    grid["periods_met"] = ((demand > EPS) & ~stock_out).sum(axis=2).ravel()
    grid["stock_value_sum"] = per_cell["stock_value"].sum(axis=2).ravel()
    grid["cost_of_goods_sold"] = per_cell["cost_of_goods_sold"].sum(axis=2).ravel()
    grid["excess_value_sum"] = per_cell["excess_value"].sum(axis=2).ravel()
    grid["safety_shortfall_unit_periods"] = per_cell["safety_shortfall"].sum(axis=2).ravel()
    key = pd.MultiIndex.from_frame(grid[["sku", "warehouse"]])
    policy = problem.stock_policy
    if len(policy):
        primary = policy[policy["primary"]].set_index(["sku", "warehouse"])
        grid["service_target"] = (
            pd.Series(key.map(primary["service_level"].to_dict())).astype(float).to_numpy()
        )
        grid["safety_stock"] = pd.Series(key.map(primary["safety_stock"].to_dict())).astype(float).to_numpy()
    else:
        grid["service_target"] = np.nan
        grid["safety_stock"] = np.nan
    grid = grid[(grid["demand"] > 0) | (grid["stock_value_sum"] > 0) | (grid["stockout_periods"] > 0)]

    levels = [
        ("sku_warehouse", ["sku", "warehouse"]),
        ("sku", ["sku"]),
        ("warehouse", ["warehouse"]),
        ("total", []),
    ]
    frames = []
    for level, keys in levels:
        frames.append(_aggregate(grid, keys, level, periods, days))
    table = pd.concat(frames, ignore_index=True)
    classes = problem.classes
    if len(classes):
        sku_level = classes[classes["warehouse"] == ALL].set_index("sku")
        pair_level = classes[classes["warehouse"] != ALL].set_index(["sku", "warehouse"])
        for column in ("abc", "xyz"):
            by_pair = pd.MultiIndex.from_frame(table[["sku", "warehouse"]]).map(pair_level[column].to_dict())
            by_sku = table["sku"].map(sku_level[column])
            table[column] = np.where(table["level"] == "sku_warehouse", by_pair, by_sku)
            table[column] = table[column].where(table["level"].isin(["sku_warehouse", "sku"]), "")
            table[column] = table[column].fillna("")
    return table


def _aggregate(grid: pd.DataFrame, keys: list[str], level: str, periods: int, days: float) -> pd.DataFrame:
    sums = ["demand", "served_on_time", "demand_periods", "stockout_periods", "periods_met"]
    sums += ["stock_value_sum", "cost_of_goods_sold", "excess_value_sum", "safety_shortfall_unit_periods"]
    weighted = grid.assign(
        target_weight=np.where(grid["service_target"].notna(), grid["demand"], 0.0),
        target_value=grid["service_target"].fillna(0.0) * grid["demand"],
    )
    if keys:
        grouped = weighted.groupby(keys)
        frame = grouped[[*sums, "target_weight", "target_value", "safety_stock"]].sum(min_count=1)
        frame = frame.reset_index()
    else:
        frame = (
            weighted[[*sums, "target_weight", "target_value", "safety_stock"]].sum(min_count=1).to_frame().T
        )
    for column in ("sku", "warehouse"):
        if column not in frame:
            frame[column] = ALL
    frame["level"] = level
    frame["fill_rate"] = np.where(
        frame["demand"] > EPS, frame["served_on_time"] / frame["demand"].where(frame["demand"] > EPS, 1), 1.0
    )
    frame["cycle_service_level"] = np.where(
        frame["demand_periods"] > 0,
        frame["periods_met"] / frame["demand_periods"].where(frame["demand_periods"] > 0, 1),
        1.0,
    )
    frame["service_target"] = np.where(
        frame["target_weight"] > EPS,
        frame["target_value"] / frame["target_weight"].where(frame["target_weight"] > EPS, 1),
        np.nan,
    )
    frame["capital_tied_up"] = frame["stock_value_sum"] / max(periods, 1)
    frame["average_excess_value"] = frame["excess_value_sum"] / max(periods, 1)
    horizon_days = max(periods, 1) * days
    frame["inventory_turns"] = [
        _ratio(c * 365.0 / horizon_days, k)
        for c, k in zip(frame["cost_of_goods_sold"], frame["capital_tied_up"], strict=True)
    ]
    frame["days_of_supply"] = [
        _ratio(k, c / horizon_days)
        for c, k in zip(frame["cost_of_goods_sold"], frame["capital_tied_up"], strict=True)
    ]
    columns = [
        "level",
        "sku",
        "warehouse",
        "demand",
        "served_on_time",
        "fill_rate",
        "stockout_periods",
        "cycle_service_level",
        "service_target",
        "safety_stock",
        "safety_shortfall_unit_periods",
        "capital_tied_up",
        "cost_of_goods_sold",
        "inventory_turns",
        "days_of_supply",
        "average_excess_value",
    ]
    return frame[columns]


def _supplier_spend(problem: ProblemData, evaluation: PlanEvaluation) -> pd.DataFrame:
    orders = evaluation.orders
    grouped = orders.groupby("supplier")
    table = pd.DataFrame(
        {
            "purchase_orders": evaluation.purchase_orders.groupby("supplier").size(),
            "order_lines": grouped.size(),
            "units": grouped["quantity"].sum(),
            "spend": grouped["line_value"].sum(),
        }
    ).reindex(problem.suppliers.index, fill_value=0)
    table = table.fillna(0)
    total = float(table["spend"].sum())
    table["share"] = table["spend"] / total if total > 0 else 0.0
    table.index.name = "supplier"
    return table.reset_index()


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > EPS else float("nan")


def _none_if_nan(value: Any) -> float | None:
    number = float(value)
    return None if np.isnan(number) else number
