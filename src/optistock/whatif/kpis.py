"""Key performance indicators of a written run folder, computed from its files alone.

Definitions (T periods of ``period_length_days`` days; d demand, b end-of-period backorder of a
(sku, warehouse, period) cell; backorders are served first-in first-out):

- ``fill_rate``: share of demand served on time, Σ (d − min(d, b)) / Σ d — the backorder left at the
  end of a period is its newest demand, so min(d, b) units of that period's demand are late (1 when
  there is no demand);
- ``units_late`` = Σ min(d, b); ``backorder_unit_periods`` = Σ b; ``end_backorder`` = Σ b in T−1;
- stock value, turns and days of supply come from the run's own valuation (``summary.json["kpis"]``,
  see :mod:`optistock.postprocess.kpis`): ``average_stock_value`` is its capital tied up (stock in
  warehouses and in transit at weighted-average or FIFO cost), ``inventory_turns`` the cost of goods
  sold per year over it, ``days_of_supply`` it over the cost of goods sold per day; with them come
  ``cycle_service_level``, ``stockout_periods``, ``average_excess_value`` and
  ``safety_shortfall_unit_periods``. For a run folder written before those existed, stock is valued at
  each SKU's lowest list price and the value of demand served stands in for the cost of goods sold;
- ``peak_storage_use[W]``: the largest share of warehouse W's capacity used by end-of-period stock;
- ``budget_use``: purchase value ordered in periods with a budget divided by their budget;
- ``spend[S]``: purchase value ordered from supplier S.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ruamel.yaml import YAML

from optistock.errors import InputError

COST_KPIS = ("purchase", "ordering", "transport", "transfer", "holding", "shortage")


def read_run_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError("not a run folder: file missing", file=str(path))
    return pd.read_csv(path)


def read_summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "summary.json"
    if not path.is_file():
        raise InputError("not a run folder (no summary.json)", file=str(run_dir))
    summary: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return summary


def run_kpis(run_dir: Path) -> dict[str, float]:
    """The KPIs of the run written in ``run_dir`` (see the module docstring), in a fixed order."""
    summary = read_summary(run_dir)
    orders = read_run_csv(run_dir / "orders.csv")
    purchase_orders = read_run_csv(run_dir / "purchase_orders.csv")
    inventory = read_run_csv(run_dir / "inventory_plan.csv")
    inputs = run_dir / "inputs"
    skus = read_run_csv(inputs / "skus.csv").set_index("sku")
    offers = read_run_csv(inputs / "offers.csv")
    warehouses = read_run_csv(inputs / "warehouses.csv").set_index("warehouse")
    suppliers = read_run_csv(inputs / "suppliers.csv")["supplier"].astype(str).tolist()
    budget_path = inputs / "budget.csv"
    budget = pd.read_csv(budget_path) if budget_path.is_file() else pd.DataFrame(columns=["period", "amount"])
    scenario = YAML(typ="safe").load((inputs / "scenario.yaml").read_text(encoding="utf-8"))
    periods = int(scenario["horizon"]["periods"])
    days = periods * int(scenario["horizon"].get("period_length_days", 7))

    kpis: dict[str, float] = {"total_cost": float(summary["objective"])}
    for component in COST_KPIS:
        kpis[f"cost_{component}"] = float(summary["costs"][component])
    for component, value in summary["costs"].items():  # waste, safety_stock: only where they apply
        if component not in COST_KPIS:
            kpis[f"cost_{component}"] = float(value)
    kpis["purchase_spend"] = float(orders["line_value"].sum())

    demand = inventory["demand"].to_numpy(dtype=float)
    backorder = inventory["backorder"].to_numpy(dtype=float)
    late = np.minimum(np.maximum(demand, 0.0), backorder)
    total_demand = float(np.maximum(demand, 0.0).sum())
    kpis["fill_rate"] = 1.0 if total_demand <= 0 else float(1.0 - late.sum() / total_demand)
    kpis["units_late"] = float(late.sum())
    kpis["backorder_unit_periods"] = float(backorder.sum())
    last = inventory["period"] == periods - 1
    end_backorder = float(inventory.loc[last, "backorder"].sum())
    kpis["end_backorder"] = end_backorder

    unit_value = offers.groupby("sku")["unit_price"].min()
    value = inventory["sku"].map(unit_value).fillna(0.0).astype(float)
    stock_value = (inventory["end_stock"] * value).groupby(inventory["period"]).sum()
    stock_value = stock_value.reindex(range(periods), fill_value=0.0)
    average_stock = float(stock_value.mean())
    kpis["average_stock_value"] = average_stock
    kpis["peak_stock_value"] = float(stock_value.max())
    served_units = (inventory["demand"].clip(lower=0.0)).groupby(inventory["sku"]).sum()
    final_backlog = inventory.loc[last].groupby("sku")["backorder"].sum()
    served = (served_units - final_backlog.reindex(served_units.index, fill_value=0.0)).clip(lower=0.0)
    served_value = float((served * unit_value.reindex(served.index).fillna(0.0)).sum())
    if average_stock > 0 and served_value > 0:
        kpis["inventory_turns"] = served_value * (365.0 / days) / average_stock
        kpis["days_of_supply"] = average_stock / (served_value / days)
    else:
        kpis["inventory_turns"] = math.nan
        kpis["days_of_supply"] = math.nan if served_value > 0 or average_stock > 0 else 0.0
    inventory_kpis = summary.get("kpis")
    if inventory_kpis:  # the run's own valuation (postprocess/kpis): weighted-average or FIFO cost
        kpis["average_stock_value"] = float(inventory_kpis["capital_tied_up"])
        kpis["peak_stock_value"] = float(inventory_kpis["peak_stock_value"])
        kpis["inventory_turns"] = float(inventory_kpis["inventory_turns"])
        kpis["days_of_supply"] = float(inventory_kpis["days_of_supply"])
        kpis["cycle_service_level"] = float(inventory_kpis["cycle_service_level"])
        kpis["stockout_periods"] = float(inventory_kpis["stockout_periods"])
        kpis["average_excess_value"] = float(inventory_kpis["average_excess_value"])
        kpis["safety_shortfall_unit_periods"] = float(inventory_kpis["safety_shortfall_unit_periods"])
    kpis["purchase_orders"] = float(len(purchase_orders))
    kpis["order_lines"] = float(len(orders))

    volume = inventory["end_stock"] * inventory["sku"].map(skus["unit_volume"]).astype(float)
    peak_volume = volume.groupby([inventory["warehouse"], inventory["period"]]).sum().groupby(level=0).max()
    for warehouse, capacity in warehouses["capacity"].items():
        peak = float(peak_volume.get(warehouse, 0.0))
        kpis[f"peak_storage_use[{warehouse}]"] = peak / float(capacity) if capacity > 0 else math.nan
    spend_by_period = orders.groupby("order_period")["line_value"].sum()
    budget = budget[budget["period"] < periods]
    total_budget = float(budget["amount"].sum())
    if len(budget) and total_budget > 0:
        spent = float(spend_by_period.reindex(budget["period"].to_numpy(), fill_value=0.0).sum())
        kpis["budget_use"] = spent / total_budget
    else:
        kpis["budget_use"] = math.nan
    spend_by_supplier = orders.groupby("supplier")["line_value"].sum()
    for supplier in suppliers:
        kpis[f"spend[{supplier}]"] = float(spend_by_supplier.get(supplier, 0.0))
    return kpis
