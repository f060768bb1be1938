"""An independent re-implementation of the core data contract, used only by the tests.

It reads a run's written files (``inputs/`` and the plan CSVs) with plain Python loops — no code
shared with the engine — re-simulates stock, checks every rule and recomputes the cost, so tests can
compare the engine's own account against it.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

EPS = 1e-6


def _rows(folder: Path, name: str) -> list[dict[str, str]] | None:
    path = folder / f"{name}.csv"
    if not path.exists():
        return None
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _num(value: str | None, default: float = 0.0) -> float:
    if value is None or value.strip() == "" or value.strip().lower() == "nan":
        return default
    return float(value)


@dataclass
class Check:
    costs: dict[str, float]
    violations: list[str] = field(default_factory=list)
    stock: dict[tuple[str, str, int], tuple[float, float]] = field(default_factory=dict)
    """(sku, warehouse, period) -> (end stock, backorder)."""

    @property
    def total(self) -> float:
        return sum(self.costs.values())


def check_run(run_dir: Path, periods: int) -> Check:
    data, plan = run_dir / "inputs", run_dir
    skus = {r["sku"]: r for r in _rows(data, "skus") or []}
    warehouses = {r["warehouse"]: _num(r["capacity"]) for r in _rows(data, "warehouses") or []}
    suppliers = {r["supplier"]: r for r in _rows(data, "suppliers") or []}
    offers = {(r["supplier"], r["sku"]): r for r in _rows(data, "offers") or []}
    breaks: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for r in _rows(data, "price_breaks") or []:
        breaks[(r["supplier"], r["sku"])].append((_num(r["min_quantity"]), _num(r["unit_price"])))
    lane_rows = _rows(data, "lanes")
    lanes = (
        None
        if lane_rows is None
        else {
            (r["supplier"], r["warehouse"]): (int(_num(r["transit_time"])), _num(r["cost_per_unit"]))
            for r in lane_rows
        }
    )
    links = {
        (r["from_warehouse"], r["to_warehouse"]): (int(_num(r["lead_time"])), _num(r["cost_per_unit"]))
        for r in _rows(data, "transfers") or []
    }
    budget = {int(_num(r["period"])): _num(r["amount"]) for r in _rows(data, "budget") or []}

    costs = dict.fromkeys(("purchase", "ordering", "transport", "transfer", "holding", "shortage"), 0.0)
    violations: list[str] = []
    flow: dict[tuple[str, str, int], float] = defaultdict(float)
    shipped: dict[tuple[str, str, int], float] = defaultdict(float)
    po_value: dict[tuple[str, str, int], float] = defaultdict(float)
    supplier_units: dict[tuple[str, int], float] = defaultdict(float)
    spend: dict[int, float] = defaultdict(float)

    for r in _rows(plan, "orders") or []:
        s, i, w, t, q = r["supplier"], r["sku"], r["warehouse"], int(r["order_period"]), _num(r["quantity"])
        offer = offers.get((s, i))
        if offer is None:
            violations.append(f"no offer {s}/{i}")
            continue
        if lanes is not None and (s, w) not in lanes:
            violations.append(f"no lane {s}->{w}")
            continue
        transit, lane_cost = (0, 0.0) if lanes is None else lanes[(s, w)]
        arrival = t + int(_num(offer["lead_time"])) + transit
        if arrival != int(r["arrival_period"]):
            violations.append(f"arrival period of {s}/{i}/{w}/{t}")
        if t < 0 or arrival > periods - 1:
            violations.append(f"outside horizon {s}/{i}/{w}/{t}")
        if q != math.floor(q) or q <= 0:
            violations.append(f"quantity {q} of {s}/{i}/{w}/{t}")
        if q < _num(offer["moq"]) - EPS:
            violations.append(f"moq {s}/{i}/{w}/{t}")
        multiple = max(_num(offer["order_multiple"]), 1.0)
        if abs(q / multiple - round(q / multiple)) > EPS:
            violations.append(f"multiple {s}/{i}/{w}/{t}")
        price = _num(offer["unit_price"])
        for threshold, break_price in sorted(breaks[(s, i)]):
            if q >= threshold - EPS:
                price = break_price
        if abs(price - _num(r["unit_price"])) > 1e-9:
            violations.append(f"unit price {s}/{i}/{w}/{t}: {r['unit_price']} != {price}")
        costs["purchase"] += q * price
        costs["transport"] += q * lane_cost
        po_value[(s, w, t)] += q * price
        supplier_units[(s, t)] += q
        spend[t] += q * price
        if 0 <= arrival < periods:
            flow[(i, w, arrival)] += q
    for (s, _, _), value in po_value.items():
        costs["ordering"] += _num(suppliers[s]["order_cost"])
        if value < _num(suppliers[s].get("min_order_value")) - 1e-6:
            violations.append(f"min order value {s}")
    period_capacity = {
        (r["supplier"], int(_num(r["period"]))): _num(r["capacity"])
        for r in _rows(data, "supplier_capacity") or []
    }
    for (s, t), units in supplier_units.items():
        capacity = period_capacity.get((s, t), _num(suppliers[s].get("capacity"), default=math.inf))
        if units > capacity + EPS:
            violations.append(f"supplier capacity {s}/{t}")
    for t, amount in budget.items():
        if spend.get(t, 0.0) > amount + 1e-6:
            violations.append(f"budget {t}")
    for r in _rows(plan, "transfer_plan") or []:
        i, a, b, t, q = (
            r["sku"],
            r["from_warehouse"],
            r["to_warehouse"],
            int(r["ship_period"]),
            _num(r["quantity"]),
        )
        if (a, b) not in links:
            violations.append(f"no transfer link {a}->{b}")
            continue
        lead, cost = links[(a, b)]
        if int(r["arrival_period"]) != t + lead or t + lead > periods - 1 or t < 0:
            violations.append(f"transfer timing {i}/{a}/{b}/{t}")
        if q != math.floor(q) or q <= 0:
            violations.append(f"transfer quantity {q}")
        costs["transfer"] += q * cost
        shipped[(i, a, t)] += q
        flow[(i, a, t)] -= q
        flow[(i, b, t + lead)] += q
    for r in _rows(data, "open_orders") or []:
        t = int(_num(r["arrival_period"]))
        if 0 <= t < periods:
            flow[(r["sku"], r["warehouse"], t)] += _num(r["quantity"])
    for r in _rows(data, "demand") or []:
        t = int(_num(r["period"]))
        if 0 <= t < periods:
            flow[(r["sku"], r["warehouse"], t)] -= _num(r["quantity"])
    start = {(r["sku"], r["warehouse"]): _num(r["on_hand"]) for r in _rows(data, "inventory") or []}

    stock: dict[tuple[str, str, int], tuple[float, float]] = {}
    volume: dict[tuple[str, int], float] = defaultdict(float)
    for i, sku in skus.items():
        for w in warehouses:
            net = start.get((i, w), 0.0)
            for t in range(periods):
                if shipped[(i, w, t)] > max(net, 0.0) + EPS:
                    violations.append(f"ships stock it does not have {i}/{w}/{t}")
                net += flow[(i, w, t)]
                on_hand, backorder = max(net, 0.0), max(-net, 0.0)
                stock[(i, w, t)] = (on_hand, backorder)
                costs["holding"] += _num(sku["holding_cost"]) * on_hand
                costs["shortage"] += _num(sku["shortage_cost"]) * backorder
                volume[(w, t)] += _num(sku["unit_volume"]) * on_hand
    for (w, t), used in volume.items():
        if used > warehouses[w] + 1e-6:
            violations.append(f"storage {w}/{t}: {used} > {warehouses[w]}")
    return Check(costs, violations, stock)
