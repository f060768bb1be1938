"""Differential test of the extensions: on tiny random instances with a shelf life, two sales channels
and (sometimes) a share rule, the engine's optimum equals the optimum found by enumerating every allowed
order plan and simulating each unit by hand — an independent brute-force solver that shares no code
with the model or the re-simulation.
"""

from __future__ import annotations

import itertools
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import BASE_TABLES, write_scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optistock.pipeline import run_scenario

SOLVER = {"time_limit": 30, "mip_gap": 0.0, "threads": 1}
CHANNELS = ("web", "store")


def unit_by_unit_cost(tables: dict[str, Any], periods: int, arrivals: list[int]) -> float:
    """Holding, shortage and waste cost of a plan's arrivals, one unit at a time: every unit carries its
    last usable period; demand (backlog first) takes the units that expire first; units past their last
    usable period are waste; short units go to the channel with the higher shortage cost first."""
    sku = tables["skus"][0]
    life = int(sku["shelf_life"])
    start = tables["inventory"][0]
    units = [-int(start["age"]) + life - 1] * int(start["on_hand"])
    cost_of = {row["channel"]: float(row["shortage_cost"]) for row in tables["channels"]}
    order = sorted(CHANNELS, key=lambda c: -cost_of[c])
    owed = dict.fromkeys(CHANNELS, 0)
    cost = 0.0
    for t in range(periods):
        units += [t + life - 1] * arrivals[t]
        units.sort()
        for row in tables["demand"]:
            if row["period"] == t:
                owed[row["channel"]] += int(row["quantity"])
        for channel in order:
            served = min(owed[channel], len(units))
            del units[:served]
            owed[channel] -= served
        expired = [u for u in units if u <= t]
        units = [u for u in units if u > t]
        cost += float(sku["waste_cost"]) * len(expired) + float(sku["holding_cost"]) * len(units)
        cost += sum(cost_of[c] * owed[c] for c in CHANNELS)
    return cost


def brute_force_optimum(tables: dict[str, Any], periods: int) -> float:
    supplier_rows = {s["supplier"]: s for s in tables["suppliers"]}
    total = sum(int(row["quantity"]) for row in tables["demand"])
    rule = tables.get("sourcing", [None])[0]
    lines, options = [], []
    for offer in tables["offers"]:
        pack = offer["order_multiple"]
        low = math.ceil(max(offer["moq"], pack) / pack) * pack
        for t in range(periods):
            lines.append((offer, t))
            options.append([0, *range(low, total + pack + 1, pack)])
    best = math.inf
    for choice in itertools.product(*options):
        arrivals = [0] * periods
        cost = 0.0
        bought = dict.fromkeys(supplier_rows, 0)
        placed = set()
        for (offer, t), q in zip(lines, choice, strict=True):
            if q:
                arrivals[t] += q
                cost += q * offer["unit_price"]
                bought[offer["supplier"]] += q
                placed.add((offer["supplier"], t))
        if rule is not None and bought[rule["supplier"]] < rule["min_share"] * sum(bought.values()) - 1e-9:
            continue
        cost += sum(supplier_rows[s]["order_cost"] for s, _ in placed)
        best = min(best, cost + unit_by_unit_cost(tables, periods, arrivals))
    return best


@st.composite
def tiny_instances(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    two_suppliers = draw(st.booleans())
    periods = 2 if two_suppliers else draw(st.integers(2, 4))
    suppliers = ["S0", "S1"] if two_suppliers else ["S0"]
    life = draw(st.integers(1, 3))
    tables: dict[str, Any] = {
        "skus": [
            {
                "sku": "A",
                "unit_volume": 1.0,
                "holding_cost": float(draw(st.integers(0, 4))),
                "shortage_cost": float(draw(st.integers(1, 20))),
                "shelf_life": life,
                "waste_cost": float(draw(st.integers(0, 6))),
            }
        ],
        "warehouses": [{"warehouse": "W1", "capacity": 1e6}],
        "suppliers": [
            {"supplier": s, "order_cost": float(draw(st.integers(0, 30))), "min_order_value": 0.0}
            for s in suppliers
        ],
        "offers": [
            {
                "supplier": s,
                "sku": "A",
                "unit_price": float(draw(st.integers(1, 5))),
                "moq": draw(st.sampled_from([0, 6])),
                "order_multiple": draw(st.sampled_from([2, 3])),
                "lead_time": 0,
            }
            for s in suppliers
        ],
        "inventory": [
            {
                "sku": "A",
                "warehouse": "W1",
                "on_hand": draw(st.integers(0, 6)),
                "age": draw(st.integers(0, life - 1)),
            }
        ],
        "demand": [
            {"sku": "A", "warehouse": "W1", "period": t, "quantity": draw(st.integers(0, 4)), "channel": c}
            for t in range(periods)
            for c in CHANNELS
        ],
        "channels": [{"channel": c, "shortage_cost": float(draw(st.integers(1, 20)))} for c in CHANNELS],
    }
    if two_suppliers and draw(st.booleans()):
        tables["sourcing"] = [{"supplier": "S1", "sku": "A", "min_share": draw(st.sampled_from([0.25, 0.5]))}]
    return tables, periods


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_instances())
def test_optimum_matches_unit_by_unit_enumeration(case: tuple[dict[str, Any], int]) -> None:
    tables, periods = case
    expected = brute_force_optimum(tables, periods)
    with tempfile.TemporaryDirectory() as folder:
        path = write_scenario(Path(folder), {**BASE_TABLES, **tables}, periods, SOLVER)
        run = run_scenario(path, None)
    assert run.evaluation.is_valid, run.evaluation.violations
    assert run.objective == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert run.solve.objective == pytest.approx(expected, rel=1e-9, abs=1e-6)
