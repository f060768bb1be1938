"""A SKU group's sets are the whole problem's sets restricted to the group.

``build_sets(problem, skus=G)`` reads only the group's rows (:meth:`ProblemData.for_skus`). SKUs interact
only through shared limits, so every SKU-keyed element (lines and their bounds and price segments,
transfer arcs, stock cells and their bounds, demand, receipts, stock on hand, shelf life, channel
splits) must be exactly the full problem's element, and the shared limits exactly the full problem's.
Checked on the shipped demos (price breaks, service targets, shelf life, channels, sourcing rules) and
on generated instances.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import write_scenario

from optistock.backend.decompose import group_sets
from optistock.backend.sets import ModelSets, PlanTotals, build_sets
from optistock.postprocess.extract import empty_plan
from optistock.postprocess.simulate import PlanEvaluation, evaluate_plan
from optistock.preprocess.data import ProblemData, load_problem
from optistock.synthetic import InstanceSize, generate_instance

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def restricted(full: ModelSets, group: set[str]) -> dict[str, Any]:
    """The SKU-keyed parts of ``full`` that belong to ``group``, and the shared limits as they are."""

    def own(mapping: dict[Any, Any]) -> dict[Any, Any]:
        return {key: value for key, value in mapping.items() if key[0] in group}

    lines = {key: line for key, line in full.lines.items() if key[1] in group}
    orders = {(key[0], key[2], key[3]) for key in lines}
    return {
        "lines": lines,
        "purchase_orders": {
            po: [key for key in keys if key[1] in group]
            for po, keys in full.purchase_orders.items()
            if po in orders
        },
        "transfer_arcs": own(full.transfer_arcs),
        "stock_cells": [cell for cell in full.stock_cells if cell[0] in group],
        "stock_upper": own(full.stock_upper),
        "backorder_upper": own(full.backorder_upper),
        "demand": own(full.demand),
        "receipts": own(full.receipts),
        "on_hand": own(full.on_hand),
        "shipping_cells": [cell for cell in full.shipping_cells if cell[0] in group],
        "supplier_capacity": full.supplier_capacity,
        "budget": full.budget,
        "storage_capacity": full.storage_capacity,
        "order_cost": {po: cost for po, cost in full.order_cost.items() if po in orders},
        "min_order_value": {po: value for po, value in full.min_order_value.items() if po in orders},
        "shelf_life": {sku: life for sku, life in full.shelf_life.items() if sku in group},
        "initial_cohorts": own(full.initial_cohorts),
        "waste_cells": [cell for cell in full.waste_cells if cell[0] in group],
        "channel_splits": own(full.channel_splits),
        "channel_cost": own(full.channel_cost),
    }


def as_parts(sets: ModelSets) -> dict[str, Any]:
    return {name: getattr(sets, name) for name in restricted(sets, set())}


def problems(tmp_path: Path) -> list[ProblemData]:
    loaded = [
        load_problem(SCENARIOS / "demo" / "base.yaml"),
        load_problem(SCENARIOS / "demo" / "service.yaml"),
        load_problem(SCENARIOS / "demo-fresh" / "fresh.yaml"),
    ]
    size = InstanceSize(skus=9, warehouses=3, suppliers=3, periods=6)
    for seed in range(3):
        folder = tmp_path / f"seed{seed}"
        folder.mkdir()
        loaded.append(
            load_problem(write_scenario(folder, dict(generate_instance(size, seed)), size.periods, {}))
        )
    return loaded


def test_group_sets_are_the_full_sets_restricted_to_the_group(tmp_path: Path) -> None:
    checked = 0
    for number, problem in enumerate(problems(tmp_path)):
        skus = sorted(map(str, problem.skus.index))
        full = build_sets(problem, all_stock_sign_cells=True)
        groups = [{sku} for sku in skus[:6]] + [set(skus[::2]), set(skus[1:4]), set(skus)]
        for group in groups:
            got = as_parts(build_sets(problem, skus=group, all_stock_sign_cells=True))
            want = restricted(full, group)
            for name, value in want.items():
                assert got[name] == value, (number, sorted(group), name)
            checked += 1
    assert checked >= 40


def test_for_skus_keeps_only_the_groups_rows_and_all_of_them() -> None:
    problem = load_problem(SCENARIOS / "demo-fresh" / "fresh.yaml")
    sku = str(problem.skus.index[0])
    part = problem.for_skus([sku])
    assert list(part.skus.index) == [sku]
    assert set(part.demand.index.get_level_values("sku")) == {sku}
    assert len(part.demand) == int((problem.demand.index.get_level_values("sku") == sku).sum())
    assert len(part.channel_demand) == int(
        (problem.channel_demand.index.get_level_values("sku") == sku).sum()
    )
    assert part.suppliers is problem.suppliers  # shared tables are not copied
    assert len(part.demand) < len(problem.demand)
    assert len(problem.for_skus(["no such SKU"]).offers) == 0


def _some_plan(problem: ProblemData) -> PlanEvaluation:
    """Every (sku, warehouse)'s whole demand ordered in period 0 from its first offer with a lane (valid
    or not: only the totals matter here)."""
    lanes = set(problem.lanes.index)
    demand = problem.demand.groupby(level=["sku", "warehouse"]).sum()
    rows = []
    for (sku, warehouse), units in demand.items():
        for (supplier, offered), offer in problem.offers.iterrows():
            if offered == sku and (supplier, warehouse) in lanes and units > 0:
                pack = max(int(offer["order_multiple"]), 1)
                quantity = max(int(offer["moq"]), -(-int(units) // pack) * pack)
                rows.append((supplier, sku, warehouse, 0, -(-quantity // pack) * pack))
                break
    orders = pd.DataFrame(rows, columns=["supplier", "sku", "warehouse", "order_period", "quantity"])
    return evaluate_plan(problem, orders, empty_plan()[1])


def test_residual_limits_from_plan_totals_equal_those_from_the_rest_of_the_plan(tmp_path: Path) -> None:
    """``group_sets`` with the incumbent's ``PlanTotals`` (less the group's own) gives the same residual
    supplier capacity, budget, storage, order costs and minimum order values as from the rest of the
    plan filtered row by row."""
    compared = 0
    for number, problem in enumerate(problems(tmp_path)):
        incumbent = _some_plan(problem)
        assert len(incumbent.orders) > 0
        totals = PlanTotals.of(problem, incumbent.orders, incumbent.inventory)
        skus = sorted(map(str, problem.skus.index))
        for group in [{skus[0]}, set(skus[::2]), set(skus)]:
            for share in (1.0, 0.5):
                want = group_sets(problem, incumbent, group, share)
                got = group_sets(problem, incumbent, group, share, totals)
                for name in (
                    "supplier_capacity",
                    "budget",
                    "storage_capacity",
                    "order_cost",
                    "min_order_value",
                ):
                    expected, actual = getattr(want, name), getattr(got, name)
                    assert expected.keys() == actual.keys(), (number, name)
                    for key, value in expected.items():
                        assert actual[key] == pytest.approx(value, rel=1e-9, abs=1e-6), (number, name, key)
                compared += 1
    assert compared >= 30
