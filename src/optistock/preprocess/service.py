"""Service levels, safety stock and the stock-policy figures reported with a plan.

Textbook formulas (periods are the time unit throughout):

- safety stock ``SS = z · sqrt((L + R) · σd² + d̄² · σL²)`` with ``z = Φ⁻¹(CSL)`` the normal quantile of
  the target cycle service level, ``L`` the replenishment lead time (offer lead time plus lane transit),
  ``R`` the review period, ``d̄`` and ``σd`` the mean demand per period and its forecast-error standard
  deviation, ``σL`` the standard deviation of the lead time: measured from the ``receipts`` history
  where the offer has at least two deliveries (sample standard deviation of received − ordered), else
  the offer's ``lead_time_std`` (0 when blank);
- reorder point ``ROP = d̄ · L + SS``, order-up-to level ``S = d̄ · (L + R) + SS``;
- economic order quantity ``EOQ = sqrt(2 · D · K / h)`` with ``D`` demand per period, ``K`` the fixed
  cost of a purchase order and ``h`` the holding cost per unit and period;
- newsvendor critical fractile ``cu / (cu + co)``: the service level at which one more unit costs as much
  in holding as it saves in shortage. With ``cu`` the shortage cost and ``co`` the holding cost per
  period it is the service level the cost parameters alone imply (``implied_service_level`` in the
  policy table: a target far above it is one the shortage cost does not pay for).

How the targets are found for a SKU at a warehouse, first match wins: the ``service_levels`` table's
row for that SKU and warehouse; its row for that SKU with a blank warehouse; the highest target among the
scenario's ``classes:`` the SKU belongs to; the target of its ABC-XYZ class (``AX``); of its ABC class;
of its XYZ class; ``service.default``. A ``safety_stock`` table row replaces the formula's value.

The demand figures are over the planning horizon: ``d̄`` is the mean of ``demand.quantity`` per period
(periods without a row count as 0), ``σd`` the root mean square of ``demand.std``. The lead time is that
of the SKU's *primary offer* for the warehouse — the offer with the lowest landed unit cost (list price
plus lane cost), ties broken by shorter lead time, then supplier name — unless a sourcing rule names a
``preferred`` supplier for the SKU (or for every SKU) whose offer reaches the warehouse; switched-off
offers are never used. A warehouse that no offer reaches
is replenished by transfer: its lead time is the shortest over its inbound links of the source's primary
lead time plus the link's lead time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import cast

import numpy as np
import pandas as pd

from optistock.preprocess.scenario import ServiceSettings

POLICY_COLUMNS = [
    "sku",
    "warehouse",
    "supplier",
    "replenished_via",
    "primary",
    "lead_time",
    "review_period",
    "mean_demand",
    "demand_std",
    "lead_time_std",
    "lead_time_std_source",
    "service_level",
    "target_source",
    "implied_service_level",
    "z",
    "safety_stock",
    "safety_stock_source",
    "reorder_point",
    "order_up_to",
    "eoq",
    "order_quantity",
]


def normal_quantile(probability: float) -> float:
    """z with Φ(z) = ``probability`` (standard normal)."""
    if not 0 < probability < 1:
        raise ValueError(f"probability must be strictly between 0 and 1, got {probability}")
    return NormalDist().inv_cdf(probability)


def safety_stock(
    service_level: float, lead_time: float, demand_mean: float, demand_std: float, lead_time_std: float = 0.0
) -> float:
    """``z · sqrt(L · σd² + d̄² · σL²)`` (``lead_time`` L includes the review period if there is one)."""
    z = normal_quantile(service_level)
    return z * math.sqrt(lead_time * demand_std**2 + demand_mean**2 * lead_time_std**2)


def economic_order_quantity(demand_rate: float, order_cost: float, holding_cost: float) -> float:
    """Harris' EOQ ``sqrt(2 D K / h)``; ``inf`` when holding is free and ordering is not."""
    if demand_rate <= 0 or order_cost <= 0:
        return 0.0
    if holding_cost <= 0:
        return math.inf
    return math.sqrt(2.0 * demand_rate * order_cost / holding_cost)


def critical_fractile(underage_cost: float, overage_cost: float) -> float:
    """Newsvendor critical ratio ``cu / (cu + co)``."""
    total = underage_cost + overage_cost
    if total <= 0:
        raise ValueError("underage and overage cost cannot both be zero")
    return underage_cost / total


def orderable_quantity(quantity: float, moq: int, pack: int) -> int:
    """``quantity`` rounded up to the offer's terms: a multiple of ``pack``, at least ``moq``."""
    pack = max(int(pack), 1)
    if not math.isfinite(quantity):
        return 0
    wanted = max(quantity, float(moq), float(pack))
    return int(math.ceil(wanted / pack - 1e-9) * pack)


@dataclass
class ServiceInputs:
    """The tables and settings the policy is computed from (canonical frames, see ``preprocess/tables``)."""

    settings: ServiceSettings
    periods: int
    skus: pd.DataFrame  # index sku: holding_cost, shortage_cost
    suppliers: pd.DataFrame  # index supplier: order_cost
    offers: pd.DataFrame  # index (supplier, sku): unit_price, moq, order_multiple, lead_time, lead_time_std
    lanes: pd.DataFrame  # index (supplier, warehouse): transit_time, cost_per_unit
    transfer_links: pd.DataFrame  # index (from_warehouse, to_warehouse): lead_time
    demand: pd.DataFrame  # sku, warehouse, period, quantity, std
    sku_classes: pd.DataFrame  # index sku: abc, xyz, abc_xyz
    user_classes: dict[str, list[str]]
    service_levels: pd.DataFrame  # sku, warehouse ('' = every warehouse), service_level
    fixed_safety_stock: pd.DataFrame  # sku, warehouse, quantity
    lead_time_std: pd.Series | None = None
    """Optional (supplier, sku) → lead-time standard deviation measured from the ``receipts`` history
    (:func:`optistock.suppliers.lead_time_table`); replaces the offers' ``lead_time_std`` where given."""
    preferred: dict[str, str] = field(default_factory=dict)
    """SKU → preferred supplier of the sourcing rules ("" key: for every SKU): its offer is primary."""
    switched_off: set[tuple[str, str]] = field(default_factory=set)
    """(supplier, sku) offers the sourcing rules switch off: never a replenishment option."""
    not_transferred: set[str] = field(default_factory=set)
    """SKUs that are never transferred (perishable): no warehouse is replenished through a link."""


def demand_statistics(demand: pd.DataFrame, periods: int) -> pd.DataFrame:
    """Index (sku, warehouse): ``mean_demand`` per period and ``demand_std`` (RMS of ``std``)."""
    inside = demand[(demand["period"] >= 0) & (demand["period"] < periods)]
    grouped = inside.groupby(["sku", "warehouse"])
    stats = pd.DataFrame(
        {
            "mean_demand": grouped["quantity"].sum() / periods,
            "demand_std": np.sqrt(
                (inside["std"].astype(float) ** 2).groupby([inside["sku"], inside["warehouse"]]).sum()
                / periods
            ),
        }
    )
    return stats


def replenishment_options(
    offers: pd.DataFrame,
    lanes: pd.DataFrame,
    lead_time_std: pd.Series | None = None,
    preferred: dict[str, str] | None = None,
    switched_off: set[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """Every offer that reaches a warehouse: sku, warehouse, supplier, lead_time (with transit),
    unit_price, landed_cost, moq, order_multiple, lead_time_std, primary (per sku-warehouse: the
    ``preferred`` supplier's offer — sku → supplier, key "" for every SKU — else the lowest landed cost).
    ``offers`` and ``lanes`` are indexed as in ``ProblemData``; ``lead_time_std`` (supplier, sku) replaces
    the offers' column where given; ``switched_off`` (supplier, sku) offers are left out."""
    offers = offers.reset_index()
    if switched_off:
        keep = [(s, i) not in switched_off for s, i in zip(offers["supplier"], offers["sku"], strict=True)]
        offers = offers[keep]
    lanes = lanes.reset_index()
    options = offers.merge(lanes, on="supplier", how="inner")
    preferred = preferred or {}
    options["_preferred"] = [
        preferred.get(sku, preferred.get("")) == supplier
        for sku, supplier in zip(options["sku"], options["supplier"], strict=True)
    ]
    options["lead_time"] = options["lead_time"].astype(np.int64) + options["transit_time"].astype(np.int64)
    options["landed_cost"] = options["unit_price"].astype(float) + options["cost_per_unit"].astype(float)
    options["lead_time_std_source"] = np.where(options["lead_time_std"] > 0, "offers", "")
    if lead_time_std is not None and len(lead_time_std):
        measured = np.asarray(
            options.set_index(["supplier", "sku"]).index.map(lead_time_std.to_dict()), dtype=float
        )
        found = ~np.isnan(measured)
        options["lead_time_std"] = np.where(found, measured, options["lead_time_std"])
        options["lead_time_std_source"] = np.where(found, "receipts", options["lead_time_std_source"])
    options = options.sort_values(
        ["sku", "warehouse", "_preferred", "landed_cost", "lead_time", "supplier"],
        ascending=[True, True, False, True, True, True],
        kind="stable",
    )
    options["primary"] = ~options.duplicated(["sku", "warehouse"], keep="first")
    columns = [
        "sku",
        "warehouse",
        "supplier",
        "lead_time",
        "unit_price",
        "landed_cost",
        "moq",
        "order_multiple",
    ]
    return options[[*columns, "lead_time_std", "lead_time_std_source", "primary"]].reset_index(drop=True)


def service_targets(inputs: ServiceInputs, cells: pd.Index) -> pd.DataFrame:
    """Index (sku, warehouse) = ``cells``: ``service_level`` (NaN: none) and ``target_source``."""
    settings = inputs.settings
    table = inputs.service_levels
    records = list(
        zip(
            table["sku"].astype(str),
            table["warehouse"].astype(str),
            table["service_level"].astype(float),
            strict=True,
        )
    )
    exact = {(sku, warehouse): level for sku, warehouse, level in records if warehouse != ""}
    per_sku = {sku: level for sku, warehouse, level in records if warehouse == ""}
    user_target: dict[str, tuple[float, str]] = {}
    for name, members in inputs.user_classes.items():
        if name in settings.targets:
            for sku in members:
                level = settings.targets[name]
                if sku not in user_target or level > user_target[sku][0]:
                    user_target[sku] = (level, f"class {name}")
    levels: list[float] = []
    sources: list[str] = []
    classes = inputs.sku_classes
    for sku, warehouse in cells:
        found: tuple[float, str] | None = None
        if (sku, warehouse) in exact:
            found = (exact[(sku, warehouse)], "service_levels table")
        elif sku in per_sku:
            found = (per_sku[sku], "service_levels table")
        elif sku in user_target:
            found = user_target[sku]
        elif sku in classes.index:
            for column in ("abc_xyz", "abc", "xyz"):
                label = str(classes.at[sku, column])
                if label in settings.targets:
                    found = (settings.targets[label], f"class {label}")
                    break
        if found is None and settings.default is not None:
            found = (settings.default, "default")
        levels.append(np.nan if found is None else found[0])
        sources.append("" if found is None else found[1])
    return pd.DataFrame({"service_level": levels, "target_source": sources}, index=cells)


def stock_policy(inputs: ServiceInputs) -> pd.DataFrame:
    """The policy table (:data:`POLICY_COLUMNS`): one row per SKU-warehouse with demand and each
    offer that reaches it (``primary`` marks the one the safety stock is based on), plus one row
    (``replenished_via`` = source warehouse) for a warehouse that only transfers can supply."""
    stats = demand_statistics(inputs.demand, inputs.periods)
    stats = stats[(stats["mean_demand"] > 0) | (stats["demand_std"] > 0)]
    fixed = inputs.fixed_safety_stock.set_index(["sku", "warehouse"])["quantity"]
    cells = stats.index.union(fixed.index) if len(fixed) else stats.index
    stats = stats.reindex(cells, fill_value=0.0)
    options = replenishment_options(
        inputs.offers, inputs.lanes, inputs.lead_time_std, inputs.preferred, inputs.switched_off
    )
    rows = options.merge(stats.reset_index(), on=["sku", "warehouse"], how="inner")
    rows["replenished_via"] = ""
    extra = _transfer_rows(options, stats, inputs.transfer_links, inputs.not_transferred)
    rows = pd.concat([rows, extra], ignore_index=True)
    rows["review_period"] = inputs.settings.review_period
    targets = service_targets(inputs, pd.MultiIndex.from_frame(rows[["sku", "warehouse"]]))
    rows["service_level"] = targets["service_level"].to_numpy()
    rows["target_source"] = targets["target_source"].to_numpy()
    holding = rows["sku"].map(inputs.skus["holding_cost"]).astype(float)
    shortage = rows["sku"].map(inputs.skus["shortage_cost"]).astype(float)
    rows["implied_service_level"] = [
        critical_fractile(b, h) if b + h > 0 else np.nan for b, h in zip(shortage, holding, strict=True)
    ]
    rows["z"] = [normal_quantile(level) if np.isfinite(level) else np.nan for level in rows["service_level"]]
    exposure = rows["lead_time"] + rows["review_period"]
    spread = np.sqrt(
        exposure * rows["demand_std"] ** 2 + rows["mean_demand"] ** 2 * rows["lead_time_std"] ** 2
    )
    formula = np.where(np.isfinite(rows["z"]), rows["z"] * spread, 0.0)
    rows["safety_stock"] = np.ceil(np.maximum(formula, 0.0) - 1e-9)
    rows["safety_stock_source"] = np.where(np.isfinite(rows["z"]), "formula", "")
    if len(fixed):
        key = pd.MultiIndex.from_frame(rows[["sku", "warehouse"]])
        given = key.map(fixed.to_dict())
        has = ~pd.isna(given)
        rows.loc[has, "safety_stock"] = np.asarray(given, dtype=float)[has]
        rows.loc[has, "safety_stock_source"] = "safety_stock table"
    rows["reorder_point"] = rows["mean_demand"] * rows["lead_time"] + rows["safety_stock"]
    rows["order_up_to"] = rows["mean_demand"] * exposure + rows["safety_stock"]
    order_cost = rows["supplier"].map(inputs.suppliers["order_cost"]).fillna(0.0).astype(float)
    rows["eoq"] = [
        economic_order_quantity(d, k, h)
        for d, k, h in zip(rows["mean_demand"], order_cost, holding, strict=True)
    ]
    rows["order_quantity"] = [
        orderable_quantity(q, int(m), int(p)) if via == "" else 0
        for q, m, p, via in zip(
            rows["eoq"],
            rows["moq"].fillna(0),
            rows["order_multiple"].fillna(1),
            rows["replenished_via"],
            strict=True,
        )
    ]
    rows["eoq"] = rows["eoq"].replace(np.inf, np.nan)
    rows["supplier"] = rows["supplier"].fillna("")
    return (
        rows[POLICY_COLUMNS]
        .sort_values(["sku", "warehouse", "primary", "supplier"], ascending=[True, True, False, True])
        .reset_index(drop=True)
    )


def _transfer_rows(
    options: pd.DataFrame, stats: pd.DataFrame, links: pd.DataFrame, not_transferred: set[str]
) -> pd.DataFrame:
    """Rows for SKU-warehouses that no offer reaches: replenished by the inbound transfer link with the
    shortest total lead time (``replenished_via`` = its source), or by nothing (``none``, lead time 0)."""
    reached = set(zip(options["sku"], options["warehouse"], strict=True))
    primary_rows = options[options["primary"]]
    primary = {
        (str(sku), str(warehouse)): (int(lead), float(std))
        for sku, warehouse, lead, std in zip(
            primary_rows["sku"],
            primary_rows["warehouse"],
            primary_rows["lead_time"],
            primary_rows["lead_time_std"],
            strict=True,
        )
    }
    std_source = {
        (str(sku), str(warehouse)): str(source)
        for sku, warehouse, source in zip(
            primary_rows["sku"], primary_rows["warehouse"], primary_rows["lead_time_std_source"], strict=True
        )
    }
    inbound: dict[str, list[tuple[str, int]]] = {}
    for link, lead in links["lead_time"].items():
        origin, destination = cast(tuple[str, str], link)
        inbound.setdefault(str(destination), []).append((str(origin), int(lead)))
    rows = []
    for cell, stat in stats.iterrows():
        sku, warehouse = cast(tuple[str, str], cell)
        if (sku, warehouse) in reached:
            continue
        best: tuple[int, str, float] | None = None
        for origin, lead in [] if sku in not_transferred else inbound.get(str(warehouse), []):
            if (sku, origin) in primary:
                source_lead, source_std = primary[(sku, origin)]
                if best is None or (source_lead + lead, origin) < (best[0], best[1]):
                    best = (source_lead + lead, origin, source_std)
        if best is None:  # nothing can replenish it: only the review period is exposed
            best = (0, "none", 0.0)
        source = std_source.get((sku, best[1]), "")
        rows.append(
            {
                "sku": sku,
                "warehouse": warehouse,
                "supplier": "",
                "lead_time": best[0],
                "lead_time_std": best[2],
                "lead_time_std_source": source,
                "primary": True,
                "replenished_via": best[1],
                "mean_demand": float(stat["mean_demand"]),
                "demand_std": float(stat["demand_std"]),
            }
        )
    return pd.DataFrame(rows)


def safety_stock_targets(policy: pd.DataFrame) -> pd.Series:
    """Index (sku, warehouse): the safety stock of the primary row, where it is positive."""
    primary = policy[policy["primary"] & (policy["safety_stock"] > 0)]
    return primary.set_index(["sku", "warehouse"])["safety_stock"].astype(float).sort_index()


def shortfall_penalty(
    settings: ServiceSettings | None, skus: pd.DataFrame, shortage: pd.Series | None = None
) -> pd.Series:
    """Penalty per unit and period of stock below safety stock, by SKU: ``service.shortfall_cost`` or
    halfway between holding and shortage cost; never above the shortage cost (serving demand first).

    ``shortage``: the cheapest backorder cost per SKU when sales channels price backorders their own way
    (default ``skus.shortage_cost``)."""
    holding = skus["holding_cost"].astype(float)
    if shortage is None:
        shortage = skus["shortage_cost"].astype(float)
    if settings is not None and settings.shortfall_cost is not None:
        return pd.Series(settings.shortfall_cost, index=skus.index).clip(upper=shortage)
    return (holding + shortage) / 2.0
