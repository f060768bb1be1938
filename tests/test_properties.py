"""Property and differential tests on random small instances.

- Every written plan obeys every rule, and the independent re-simulation of the written files
  reproduces ``inventory_plan.csv``, each cost component and the reported objective.
- On tiny single-warehouse instances the engine's optimum equals the optimum found by exhaustive
  enumeration of every allowed order plan (an independent brute-force solver).
"""

from __future__ import annotations

import itertools
import math
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planning import solve

SOLVER = {"time_limit": 30, "mip_gap": 0.0, "threads": 1}


@st.composite
def instances(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    periods = draw(st.integers(2, 5))
    skus = [f"I{k}" for k in range(draw(st.integers(1, 2)))]
    warehouses = [f"W{k}" for k in range(draw(st.integers(1, 2)))]
    suppliers = [f"S{k}" for k in range(draw(st.integers(1, 2)))]
    money = st.integers(0, 40).map(float)
    tables: dict[str, Any] = {
        "skus": [
            {
                "sku": i,
                "unit_volume": draw(st.sampled_from([0.5, 1.0, 2.0])),
                "holding_cost": draw(money) / 10,
                "shortage_cost": draw(st.integers(1, 60)) / 2,
            }
            for i in skus
        ],
        "warehouses": [
            {"warehouse": w, "capacity": draw(st.sampled_from([40.0, 80.0, 1e5]))} for w in warehouses
        ],
        "suppliers": [
            {
                "supplier": s,
                "order_cost": draw(money),
                "min_order_value": draw(st.sampled_from([0.0, 0.0, 50.0])),
                "capacity": draw(st.sampled_from(["", "", 30])),
            }
            for s in suppliers
        ],
    }
    offers, breaks = [], []
    for i in skus:
        for s in draw(st.lists(st.sampled_from(suppliers), min_size=1, unique=True)):
            price = float(draw(st.integers(1, 10)))
            multiple = draw(st.sampled_from([1, 1, 5, 6]))
            moq = multiple * draw(st.integers(0, 3))
            offers.append(
                {
                    "supplier": s,
                    "sku": i,
                    "unit_price": price,
                    "moq": moq,
                    "order_multiple": multiple,
                    "lead_time": draw(st.integers(0, 2)),
                }
            )
            if draw(st.booleans()):
                breaks.append(
                    {
                        "supplier": s,
                        "sku": i,
                        "min_quantity": draw(st.integers(5, 30)),
                        "unit_price": price * 0.8,
                    }
                )
    tables["offers"] = offers
    if breaks:
        tables["price_breaks"] = breaks
    if draw(st.booleans()):
        tables["lanes"] = [
            {
                "supplier": s,
                "warehouse": w,
                "transit_time": draw(st.integers(0, 1)),
                "cost_per_unit": draw(money) / 20,
            }
            for s in suppliers
            for w in warehouses
            if draw(st.integers(0, 4)) > 0
        ]
    if len(warehouses) == 2 and draw(st.booleans()):
        tables["transfers"] = [
            {
                "from_warehouse": a,
                "to_warehouse": b,
                "lead_time": draw(st.integers(0, 1)),
                "cost_per_unit": 0.1,
            }
            for a, b in (("W0", "W1"), ("W1", "W0"))
        ]
    tables["demand"] = [
        {"sku": i, "warehouse": w, "period": t, "quantity": draw(st.integers(0, 12))}
        for i in skus
        for w in warehouses
        for t in range(periods)
    ]
    tables["inventory"] = [
        {"sku": i, "warehouse": w, "on_hand": draw(st.integers(0, 10))} for i in skus for w in warehouses
    ]
    if draw(st.booleans()):
        s, i = offers[0]["supplier"], offers[0]["sku"]
        tables["open_orders"] = [
            {
                "supplier": s,
                "sku": i,
                "warehouse": warehouses[-1],
                "arrival_period": draw(st.integers(0, periods - 1)),
                "quantity": 5,
            }
        ]
    if draw(st.booleans()):
        tables["budget"] = [{"period": t, "amount": float(draw(st.integers(0, 200)))} for t in range(periods)]
    return tables, periods


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_written_plan_obeys_every_rule_and_reproduces_its_cost(case: tuple[dict[str, Any], int]) -> None:
    tables, periods = case
    with tempfile.TemporaryDirectory() as folder:
        result, out, check = solve(Path(folder), tables, periods, SOLVER)  # asserts validity and cost
        inventory = pd.read_csv(out / "inventory_plan.csv")
        for row in inventory.itertuples(index=False):
            stock, backorder = check.stock[(row.sku, row.warehouse, int(row.period))]
            assert row.end_stock == pytest.approx(stock, abs=1e-6)
            assert row.backorder == pytest.approx(backorder, abs=1e-6)
        # the balance identity holds row by row in the written inventory plan
        inventory = inventory.sort_values(["sku", "warehouse", "period"])
        net = inventory["end_stock"] - inventory["backorder"]
        previous = net.groupby([inventory["sku"], inventory["warehouse"]]).shift(1)
        start = pd.read_csv(out / "inputs" / "inventory.csv").set_index(["sku", "warehouse"])["on_hand"]
        opening = [
            start.get((s, w), 0.0) for s, w in zip(inventory["sku"], inventory["warehouse"], strict=True)
        ]
        previous = previous.fillna(pd.Series(opening, index=inventory.index))
        change = (
            inventory["arrivals"]
            + inventory["transfers_in"]
            - inventory["transfers_out"]
            - inventory["demand"]
        )
        assert ((previous + change - net).abs() < 1e-6).all()
        assert result.summary["status"] == "optimal"
        assert result.summary["objective"] >= result.summary["best_bound"] - 1e-6 * max(
            1, result.summary["objective"]
        )


# ---------------------------------------------------------------- brute force


def brute_force_optimum(tables: dict[str, Any], periods: int) -> float:
    """Cheapest cost over every allowed order plan of a one-SKU, one-warehouse instance (no transfers,
    no lanes): each (offer, period) takes any quantity in {0} ∪ [moq, limit] on its pack grid, where the
    limit covers all demand and the supplier's minimum order value with one pack to spare."""
    sku = tables["skus"][0]
    supplier_rows = {s["supplier"]: s for s in tables["suppliers"]}
    demand = [0.0] * periods
    for row in tables["demand"]:
        demand[row["period"]] += row["quantity"]
    total = sum(demand)
    options = []
    lines = []
    for offer in tables["offers"]:
        pack = max(offer["order_multiple"], 1)
        low = max(offer["moq"], pack)
        low = math.ceil(low / pack) * pack
        min_value = supplier_rows[offer["supplier"]]["min_order_value"]
        limit = max(total, low, math.ceil(min_value / offer["unit_price"])) + pack
        quantities = [0, *range(low, int(limit) + 1, pack)]
        for t in range(periods - offer["lead_time"]):
            lines.append((offer, t))
            options.append(quantities)
    best = math.inf
    for choice in itertools.product(*options):
        net = float(tables["inventory"][0]["on_hand"])
        arrivals = [0.0] * periods
        cost = 0.0
        po_value: dict[tuple[str, int], float] = {}
        units: dict[tuple[str, int], float] = {}
        feasible = True
        for (offer, t), q in zip(lines, choice, strict=True):
            if q == 0:
                continue
            arrivals[t + offer["lead_time"]] += q
            cost += q * offer["unit_price"]
            key = (offer["supplier"], t)
            po_value[key] = po_value.get(key, 0.0) + q * offer["unit_price"]
            units[key] = units.get(key, 0.0) + q
        for (supplier, _), value in po_value.items():
            row = supplier_rows[supplier]
            cost += row["order_cost"]
            feasible &= value >= row["min_order_value"] - 1e-9
        for (supplier, _), quantity in units.items():
            capacity = supplier_rows[supplier].get("capacity", "")
            feasible &= capacity == "" or quantity <= float(capacity)
        if not feasible:
            continue
        for t in range(periods):
            net += arrivals[t] - demand[t]
            cost += sku["holding_cost"] * max(net, 0.0) + sku["shortage_cost"] * max(-net, 0.0)
        best = min(best, cost)
    return best


@st.composite
def tiny_instances(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    periods = draw(st.integers(2, 3))
    suppliers = ["S0", "S1"][: draw(st.integers(1, 2))]
    tables: dict[str, Any] = {
        "skus": [
            {
                "sku": "A",
                "unit_volume": 1.0,
                "holding_cost": float(draw(st.integers(0, 4))),
                "shortage_cost": float(draw(st.integers(1, 30))),
            }
        ],
        "warehouses": [{"warehouse": "W1", "capacity": 1e6}],
        "suppliers": [
            {
                "supplier": s,
                "order_cost": float(draw(st.integers(0, 50))),
                "min_order_value": float(draw(st.sampled_from([0, 0, 40]))),
                "capacity": draw(st.sampled_from(["", 12])),
            }
            for s in suppliers
        ],
        "offers": [
            {
                "supplier": s,
                "sku": "A",
                "unit_price": float(draw(st.integers(1, 6))),
                "moq": draw(st.sampled_from([0, 4, 8])),
                "order_multiple": draw(st.sampled_from([1, 3, 5])),
                "lead_time": draw(st.integers(0, 1)),
            }
            for s in suppliers
        ],
        "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": draw(st.integers(0, 6))}],
        "demand": [
            {"sku": "A", "warehouse": "W1", "period": t, "quantity": draw(st.integers(0, 9))}
            for t in range(periods)
        ],
    }
    return tables, periods


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_instances())
def test_optimum_matches_exhaustive_enumeration(case: tuple[dict[str, Any], int]) -> None:
    tables, periods = case
    expected = brute_force_optimum(tables, periods)
    with tempfile.TemporaryDirectory() as folder:
        _, _, check = solve(Path(folder), tables, periods, SOLVER)
    assert check.total == pytest.approx(expected, rel=1e-9, abs=1e-6)
