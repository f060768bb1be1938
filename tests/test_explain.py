"""``explain_lines``: why each proposed order line, on tiny hand-checkable plans.

Most cases build a scenario with the conftest helpers, load it as ``ProblemData``, write a plan by hand,
re-simulate it with ``evaluate_plan`` and check the explanation against numbers worked out in the
docstring. No solver is needed except in the last, end-to-end test.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import BASE_TABLES, write_scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optistock.pipeline import run_scenario
from optistock.postprocess.explain import EXPLAIN_COLUMNS, allocate_supply, explain_lines
from optistock.postprocess.simulate import PlanEvaluation, evaluate_plan
from optistock.preprocess.data import ProblemData, load_problem

Factory = Callable[..., Path]


def offer(
    supplier: str = "S1",
    sku: str = "A",
    price: float = 10.0,
    moq: int = 0,
    multiple: int = 1,
    lead: int = 0,
) -> dict[str, Any]:
    return {
        "supplier": supplier,
        "sku": sku,
        "unit_price": price,
        "moq": moq,
        "order_multiple": multiple,
        "lead_time": lead,
    }


def supplier(name: str = "S1", capacity: float | None = None) -> dict[str, Any]:
    return {
        "supplier": name,
        "order_cost": 0.0,
        "min_order_value": 0.0,
        "capacity": "" if capacity is None else capacity,
    }


def demand(sku: str, warehouse: str, quantities: list[float]) -> list[dict[str, Any]]:
    return [
        {"sku": sku, "warehouse": warehouse, "period": t, "quantity": q} for t, q in enumerate(quantities)
    ]


def line(
    quantity: float, period: int = 0, supplier: str = "S1", sku: str = "A", warehouse: str = "W1"
) -> dict[str, Any]:
    return {
        "supplier": supplier,
        "sku": sku,
        "warehouse": warehouse,
        "order_period": period,
        "quantity": quantity,
    }


def transfer(quantity: float, ship: int, source: str, target: str, sku: str = "A") -> dict[str, Any]:
    return {
        "sku": sku,
        "from_warehouse": source,
        "to_warehouse": target,
        "ship_period": ship,
        "quantity": quantity,
    }


def evaluate(
    problem: ProblemData, lines: list[dict[str, Any]], transfers: list[dict[str, Any]] | None = None
) -> PlanEvaluation:
    orders = pd.DataFrame(lines, columns=["supplier", "sku", "warehouse", "order_period", "quantity"])
    moves = pd.DataFrame(
        transfers or [], columns=["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"]
    )
    return evaluate_plan(problem, orders, moves)


def explain(
    factory: Factory,
    tables: dict[str, Any],
    periods: int,
    lines: list[dict[str, Any]],
    transfers: list[dict[str, Any]] | None = None,
) -> tuple[pd.DataFrame, PlanEvaluation, ProblemData]:
    problem = load_problem(factory(tables, periods))
    evaluation = evaluate(problem, lines, transfers)
    return explain_lines(problem, evaluation), evaluation, problem


def reasons(row: pd.Series) -> list[str]:
    return [] if row["bound_by"] == "" else row["bound_by"].split("; ")


# ---------------------------------------------------------------- what a line covers


def test_fifo_covers_exact_periods_and_units(scenario_factory: Factory) -> None:
    """Demand 10 per period over periods 0–4 (50), on hand 15, one line of 40 arriving in period 1.

    On hand serves period 0 (10) and 5 of period 1; the line serves the other 5 of period 1 and periods
    2–4 (30): 35 units of demand in periods 1–4, and 40 − 35 = 5 units are left at the horizon end."""
    result, evaluation, problem = explain(
        scenario_factory,
        {
            "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 15}],
            "demand": demand("A", "W1", [10] * 5),
        },
        5,
        [line(40, period=1)],
    )
    assert list(result.columns) == EXPLAIN_COLUMNS
    row = result.iloc[0]
    assert row["covered_demand_units"] == pytest.approx(35)
    assert (row["first_period"], row["last_period"]) == (1, 4)
    assert row["transferred_units"] == 0
    assert row["leftover_units"] == pytest.approx(5)
    assert row["covers"] == "demand at W1 in periods 1–4 (35 units); 5 units left at horizon end"
    assert row["bound_by"] == ""

    allocation = allocate_supply(problem, evaluation)
    on_hand = allocation[allocation["source"] == "on_hand"]
    assert on_hand[["use", "period", "units"]].values.tolist() == [["demand", 0, 10.0], ["demand", 1, 5.0]]
    from_line = allocation[allocation["line"] == 0]
    assert from_line[["use", "period", "units"]].values.tolist() == [
        ["demand", 1, 5.0],
        ["demand", 2, 10.0],
        ["demand", 3, 10.0],
        ["demand", 4, 10.0],
        ["leftover", 4, 5.0],
    ]


def test_line_covering_exactly_its_demand(scenario_factory: Factory) -> None:
    """Demand 10/period over 6 periods, on hand 15, a line of 30 arriving in period 1: 5 of period 1 and
    periods 2–4 in full (5 + 10 + 10 + 5 = 30, period 4 only half); nothing left over."""
    result, _, _ = explain(
        scenario_factory,
        {
            "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 15}],
            "demand": demand("A", "W1", [10] * 6),
        },
        6,
        [line(30, period=1)],
    )
    row = result.iloc[0]
    assert row["covered_demand_units"] == pytest.approx(30)
    assert (row["first_period"], row["last_period"]) == (1, 4)
    assert row["leftover_units"] == 0
    assert row["covers"] == "demand at W1 in periods 1–4 (30 units)"
    assert row["explanation"].startswith("Covers demand at W1 in periods 1–4 (30 u); sized to the demand")


def test_same_period_lines_are_allocated_by_supplier_after_open_orders(scenario_factory: Factory) -> None:
    """Period 0: an open order of 5, then S1's line of 10, then S2's line of 10 (by supplier, although
    S2 is listed first); demand 12 in period 0 and 8 in period 1.

    Open order → 5 of period 0; S1 → 7 of period 0 and 3 of period 1; S2 → 5 of period 1, 5 left."""
    result, _, _ = explain(
        scenario_factory,
        {
            "suppliers": [supplier("S1"), supplier("S2")],
            "offers": [offer("S1"), offer("S2")],
            "open_orders": [
                {"supplier": "S1", "sku": "A", "warehouse": "W1", "arrival_period": 0, "quantity": 5}
            ],
            "demand": demand("A", "W1", [12, 8]),
        },
        2,
        [line(10, supplier="S2"), line(10, supplier="S1")],
    )
    by_supplier = result.set_index("supplier")
    assert by_supplier.loc["S1", "covered_demand_units"] == pytest.approx(10)
    assert (by_supplier.loc["S1", "first_period"], by_supplier.loc["S1", "last_period"]) == (0, 1)
    assert by_supplier.loc["S2", "covered_demand_units"] == pytest.approx(5)
    assert by_supplier.loc["S2", "first_period"] == 1
    assert by_supplier.loc["S2", "leftover_units"] == pytest.approx(5)


def test_backorder_is_served_by_a_later_line(scenario_factory: Factory) -> None:
    """Demand 10 in period 0 and 10 in period 1, no stock; a line of 25 arrives in period 1.

    The 10 units of period 0 wait as a backorder and are served first by the line, then period 1; 5 are
    left. Its covers text says 10 of the 20 units were backordered."""
    result, evaluation, problem = explain(
        scenario_factory, {"demand": demand("A", "W1", [10, 10])}, 2, [line(25, period=1)]
    )
    row = result.iloc[0]
    assert row["covered_demand_units"] == pytest.approx(20)
    assert (row["first_period"], row["last_period"]) == (0, 1)
    assert row["leftover_units"] == pytest.approx(5)
    assert row["covers"] == (
        "demand at W1 in periods 0–1 (20 units, 10 of them backordered); 5 units left at horizon end"
    )
    allocation = allocate_supply(problem, evaluation)
    assert allocation[allocation["use"] == "demand"][["period", "units"]].values.tolist() == [
        [0, 10.0],
        [1, 10.0],
    ]


def test_transfers_out_are_attributed_to_the_line(scenario_factory: Factory) -> None:
    """Line of 50 at W1 in period 0; W1 demand 10 in periods 0 and 2; 25 shipped W1 → W2 in period 1
    (lead 1, arrives in period 2) where W2 needs 20 in period 2.

    W1: 50 − 10 (period 0) − 25 (transfer) − 10 (period 2) = 5 left. The transfer-in lot at W2 serves
    W2's 20 and leaves 5."""
    result, evaluation, problem = explain(
        scenario_factory,
        {
            "warehouses": [{"warehouse": "W1", "capacity": 1e6}, {"warehouse": "W2", "capacity": 1e6}],
            "transfers": [
                {"from_warehouse": "W1", "to_warehouse": "W2", "lead_time": 1, "cost_per_unit": 0.1}
            ],
            "demand": demand("A", "W1", [10, 0, 10]) + demand("A", "W2", [0, 0, 20]),
        },
        3,
        [line(50)],
        [transfer(25, 1, "W1", "W2")],
    )
    assert evaluation.is_valid, evaluation.violations
    row = result.iloc[0]
    assert row["covered_demand_units"] == pytest.approx(20)
    assert (row["first_period"], row["last_period"]) == (0, 2)
    assert row["transferred_units"] == pytest.approx(25)
    assert row["leftover_units"] == pytest.approx(5)
    assert row["covers"] == (
        "demand at W1 in periods 0–2 (20 units); 25 units shipped to W2 in period 1; "
        "5 units left at horizon end"
    )
    allocation = allocate_supply(problem, evaluation)
    at_w2 = allocation[allocation["warehouse"] == "W2"]
    assert at_w2[["source", "use", "units"]].values.tolist() == [
        ["transfer_in", "demand", 20.0],
        ["transfer_in", "leftover", 5.0],
    ]


def test_line_arriving_after_the_horizon_covers_nothing(scenario_factory: Factory) -> None:
    """Lead time 2 in a 2-period horizon: the re-simulation flags it; the explanation counts it as left."""
    result, evaluation, _ = explain(
        scenario_factory, {"offers": [offer(lead=2)], "demand": demand("A", "W1", [5, 5])}, 2, [line(10)]
    )
    assert not evaluation.is_valid
    row = result.iloc[0]
    assert row["leftover_units"] == pytest.approx(10)
    assert row["covered_demand_units"] == 0
    assert pd.isna(row["first_period"])
    assert "outside the horizon" in row["covers"]


def test_no_lines_gives_an_empty_frame(scenario_factory: Factory) -> None:
    result, _, _ = explain(scenario_factory, {"demand": demand("A", "W1", [5])}, 1, [])
    assert result.empty
    assert list(result.columns) == EXPLAIN_COLUMNS


# ---------------------------------------------------------------- what bound the quantity


def test_moq_binds(scenario_factory: Factory) -> None:
    """MOQ 50, packs of 10, demand 30: a line of 50 sits at the MOQ (20 left, two packs: not rounding);
    a line of 60 does not; an MOQ equal to one pack never counts as binding."""
    tables = {"offers": [offer(moq=50, multiple=10)], "demand": demand("A", "W1", [30])}
    result, _, _ = explain(scenario_factory, tables, 1, [line(50)])
    assert reasons(result.iloc[0]) == ["MOQ"]
    assert result.iloc[0]["leftover_units"] == pytest.approx(20)
    assert "bound by MOQ" in result.iloc[0]["explanation"]
    result, _, _ = explain(scenario_factory, tables, 1, [line(60)])
    assert "MOQ" not in reasons(result.iloc[0])
    pack_sized = {"offers": [offer(moq=10, multiple=10)], "demand": demand("A", "W1", [10])}
    result, _, _ = explain(scenario_factory, pack_sized, 1, [line(10)])
    assert reasons(result.iloc[0]) == []


def test_pack_multiple_rounds_up(scenario_factory: Factory) -> None:
    """Packs of 12, demand 30: 36 (3 packs) leaves 6 < 12, rounded up to the pack; 48 leaves 18 ≥ 12."""
    tables = {"offers": [offer(multiple=12)], "demand": demand("A", "W1", [30])}
    result, _, _ = explain(scenario_factory, tables, 1, [line(36)])
    assert reasons(result.iloc[0]) == ["pack multiple"]
    assert result.iloc[0]["leftover_units"] == pytest.approx(6)
    result, _, _ = explain(scenario_factory, tables, 1, [line(48)])
    assert reasons(result.iloc[0]) == []


def test_price_break_reached_or_just_in_tier(scenario_factory: Factory) -> None:
    """List price 10, break at 100 for 8, packs of 12, demand 90.

    108: 96 (one pack less) is below 100 and costs 10 > 8: "price break at 100 reached".
    120: 108 is still in the tier: only "price break at 100". 96: no break at all."""
    tables = {
        "offers": [offer(multiple=12)],
        "price_breaks": [{"supplier": "S1", "sku": "A", "min_quantity": 100, "unit_price": 8.0}],
        "demand": demand("A", "W1", [90]),
    }
    result, evaluation, _ = explain(scenario_factory, tables, 1, [line(108)])
    assert evaluation.orders["unit_price"].tolist() == [8.0]
    assert reasons(result.iloc[0]) == ["price break at 100 reached"]
    assert "bound by price break at 100 reached" in result.iloc[0]["explanation"]
    result, _, _ = explain(scenario_factory, tables, 1, [line(120)])
    assert reasons(result.iloc[0]) == ["price break at 100"]
    assert "priced at the 100+ break" in result.iloc[0]["explanation"]
    result, _, _ = explain(scenario_factory, tables, 1, [line(96)])
    assert reasons(result.iloc[0]) == ["pack multiple"]


def test_min_order_value_binds(scenario_factory: Factory) -> None:
    """Minimum order value 500 at price 10, demand 30: a line of 50 (value 500) would drop to 490 with
    one unit less, so the minimum binds; a line of 60 (590 → 580) does not."""
    tables = {
        "suppliers": [{**supplier(), "min_order_value": 500.0}],
        "offers": [offer(price=10.0)],
        "demand": demand("A", "W1", [30]),
    }
    result, evaluation, _ = explain(scenario_factory, tables, 1, [line(50)])
    assert evaluation.is_valid
    assert reasons(result.iloc[0]) == ["min order value"]
    result, _, _ = explain(scenario_factory, tables, 1, [line(60)])
    assert reasons(result.iloc[0]) == []
    assert "no binding limit found" in result.iloc[0]["explanation"]


def test_supplier_capacity_binds(scenario_factory: Factory) -> None:
    """S1 sells A and B, 40 + 20 = 60 units ordered in period 0. Capacity 60: one more unit would exceed
    it on both lines. Capacity 61: one more unit (61) still fits, so it does not bind."""

    def tables(capacity: float) -> dict[str, Any]:
        return {
            "skus": [dict(BASE_TABLES["skus"][0]), {**BASE_TABLES["skus"][0], "sku": "B"}],
            "suppliers": [supplier(capacity=capacity)],
            "offers": [offer(sku="A"), offer(sku="B")],
            "demand": demand("A", "W1", [40]) + demand("B", "W1", [20]),
        }

    plan = [line(40, sku="A"), line(20, sku="B")]
    result, evaluation, _ = explain(scenario_factory, tables(60), 1, plan)
    assert evaluation.is_valid
    assert [reasons(row) for _, row in result.iterrows()] == [["supplier capacity"]] * 2
    result, _, _ = explain(scenario_factory, tables(61), 1, plan)
    assert [reasons(row) for _, row in result.iterrows()] == [[], []]


def test_budget_binds(scenario_factory: Factory) -> None:
    """Budget 300 in period 0 at price 10: 30 units spend 300 and one more would exceed it; 29 units
    spend 290 and one more (300) still fits. Period 1 has no budget row."""
    tables = {
        "offers": [offer(price=10.0)],
        "budget": [{"period": 0, "amount": 300.0}],
        "demand": demand("A", "W1", [30, 30]),
    }
    result, _, _ = explain(scenario_factory, tables, 2, [line(30, period=0), line(30, period=1)])
    assert [reasons(row) for _, row in result.iterrows()] == [["budget"], []]
    result, _, _ = explain(scenario_factory, tables, 2, [line(29, period=0)])
    assert reasons(result.iloc[0]) == []


def test_storage_binds(scenario_factory: Factory) -> None:
    """Capacity 50, unit volume 1: 50 units arriving in period 0 for demand in period 1 fill W1 in
    period 0. With capacity 100 there is room for another unit."""

    def tables(capacity: float) -> dict[str, Any]:
        return {
            "warehouses": [{"warehouse": "W1", "capacity": capacity}],
            "demand": demand("A", "W1", [0, 50]),
        }

    result, evaluation, _ = explain(scenario_factory, tables(50), 2, [line(50)])
    assert evaluation.is_valid
    assert reasons(result.iloc[0]) == ["storage"]
    result, _, _ = explain(scenario_factory, tables(100), 2, [line(50)])
    assert reasons(result.iloc[0]) == []


# ---------------------------------------------------------------- cost against the next-best supplier


def test_next_best_supplier_with_price_breaks_and_lane_costs(scenario_factory: Factory) -> None:
    """A line of 60 from S1 (price 10, lane 1.0): landed 11.00.

    - S2: list 12, break at 50 for 9; lane 1.5 → 9 + 1.5 = 10.50 at 60.
    - S3: list 9.5, MOQ 100 in packs of 25, break at 100 for 8; lane 2.0 → priced at 100: 8 + 2 = 10.00.
    - S4: price 1 but no lane to W1: not an alternative.
    Next best S3 at 10.00 for 100 units, lead time 2 + transit 1 = 3, (10 − 11) / 11 = −9.1 %."""
    tables = {
        "warehouses": [{"warehouse": "W1", "capacity": 1e6}, {"warehouse": "W2", "capacity": 1e6}],
        "suppliers": [supplier("S1"), supplier("S2"), supplier("S3"), supplier("S4")],
        "offers": [
            offer("S1", price=10.0),
            offer("S2", price=12.0, lead=1),
            offer("S3", price=9.5, moq=100, multiple=25, lead=2),
            offer("S4", price=1.0),
        ],
        "price_breaks": [
            {"supplier": "S2", "sku": "A", "min_quantity": 50, "unit_price": 9.0},
            {"supplier": "S3", "sku": "A", "min_quantity": 100, "unit_price": 8.0},
        ],
        "lanes": [
            {"supplier": "S1", "warehouse": "W1", "transit_time": 0, "cost_per_unit": 1.0},
            {"supplier": "S2", "warehouse": "W1", "transit_time": 0, "cost_per_unit": 1.5},
            {"supplier": "S3", "warehouse": "W1", "transit_time": 1, "cost_per_unit": 2.0},
            {"supplier": "S4", "warehouse": "W2", "transit_time": 0, "cost_per_unit": 0.0},
        ],
        "demand": demand("A", "W1", [60, 0, 0, 0]),
    }
    result, _, _ = explain(scenario_factory, tables, 4, [line(60)])
    row = result.iloc[0]
    assert row["landed_unit_cost"] == pytest.approx(11.0)
    assert row["next_best_supplier"] == "S3"
    assert row["next_best_unit_cost"] == pytest.approx(10.0)
    assert row["next_best_lead_time"] == 3
    assert row["next_best_quantity"] == pytest.approx(100)
    assert row["explanation"] == (
        "Covers demand at W1 in period 0 (60 u); sized to the demand it covers; "
        "landed 11.00/u vs S3 10.00/u at its minimum allowed 100 u (-9.1%, lead time 3 vs 0)"
    )
    # without S3's break, S2 (10.50 at 60 units, no rounding) is the next best
    tables["price_breaks"] = tables["price_breaks"][:1]
    result, _, _ = explain(scenario_factory, tables, 4, [line(60)])
    row = result.iloc[0]
    assert (row["next_best_supplier"], row["next_best_unit_cost"]) == ("S2", pytest.approx(10.5))
    assert row["next_best_quantity"] == pytest.approx(60)
    assert "vs S2 10.50/u (-4.5%, lead time 1 vs 0)" in row["explanation"]


def test_only_supplier(scenario_factory: Factory) -> None:
    result, _, _ = explain(scenario_factory, {"demand": demand("A", "W1", [5])}, 1, [line(5)])
    row = result.iloc[0]
    assert pd.isna(row["next_best_supplier"])
    assert pd.isna(row["next_best_unit_cost"])
    assert pd.isna(row["next_best_lead_time"])
    assert row["explanation"].endswith("landed 1.00/u; only supplier for this SKU at W1")


# ---------------------------------------------------------------- properties on random plans


@st.composite
def random_plans(draw: st.DrawFn) -> tuple[dict[str, Any], int, list[dict[str, Any]], list[dict[str, Any]]]:
    periods = draw(st.integers(2, 5))
    skus = ["A", "B"][: draw(st.integers(1, 2))]
    warehouses = ["W0", "W1"]
    suppliers = ["S0", "S1"]
    tables: dict[str, Any] = {
        "skus": [{"sku": i, "unit_volume": 1.0, "holding_cost": 1.0, "shortage_cost": 10.0} for i in skus],
        "warehouses": [{"warehouse": w, "capacity": 1e6} for w in warehouses],
        "suppliers": [supplier(s) for s in suppliers],
        "offers": [offer(s, i, lead=draw(st.integers(0, 1))) for s in suppliers for i in skus],
        "transfers": [
            {
                "from_warehouse": a,
                "to_warehouse": b,
                "lead_time": draw(st.integers(0, 1)),
                "cost_per_unit": 0.0,
            }
            for a, b in (("W0", "W1"), ("W1", "W0"))
        ],
        "demand": [
            {"sku": i, "warehouse": w, "period": t, "quantity": draw(st.integers(0, 12))}
            for i in skus
            for w in warehouses
            for t in range(periods)
        ],
        "inventory": [
            {"sku": i, "warehouse": w, "on_hand": draw(st.integers(0, 10))} for i in skus for w in warehouses
        ],
        "open_orders": [
            {"supplier": "S0", "sku": skus[0], "warehouse": "W1", "arrival_period": t, "quantity": 4}
            for t in draw(st.lists(st.integers(0, periods - 1), max_size=2))
        ],
    }
    lines = draw(
        st.lists(
            st.builds(
                line,
                quantity=st.integers(1, 30),
                period=st.integers(0, periods - 1),
                supplier=st.sampled_from(suppliers),
                sku=st.sampled_from(skus),
                warehouse=st.sampled_from(warehouses),
            ),
            max_size=8,
        )
    )
    moves = draw(
        st.lists(
            st.builds(
                lambda q, t, a, i: transfer(q, t, a, "W1" if a == "W0" else "W0", i),
                st.integers(1, 10),
                st.integers(0, periods - 2),
                st.sampled_from(warehouses),
                st.sampled_from(skus),
            ),
            max_size=3,
        )
    )
    return tables, periods, lines, moves


@settings(derandomize=True, max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_plans())
def test_every_unit_is_accounted_for(
    case: tuple[dict[str, Any], int, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    """Per line, covered + transferred + leftover = quantity. Per (sku, warehouse), demand served plus
    demand never served = total demand; on plans that never ship stock they do not have, the demand
    never served is the backorder at the horizon end and the leftover lots are the end stock."""
    tables, periods, lines, moves = case
    with tempfile.TemporaryDirectory() as folder:
        problem = load_problem(write_scenario(Path(folder), {**BASE_TABLES, **tables}, periods))
    evaluation = evaluate(problem, lines, moves)
    result = explain_lines(problem, evaluation)

    assert len(result) == len(evaluation.orders)
    assert result["po_id"].tolist() == evaluation.orders["po_id"].tolist()
    total = result["covered_demand_units"] + result["transferred_units"] + result["leftover_units"]
    assert ((total - result["quantity"]).abs() < 1e-6).all()
    assert (result["explanation"].str.len() > 0).all()

    allocation = allocate_supply(problem, evaluation)
    last = evaluation.inventory[evaluation.inventory["period"] == periods - 1].set_index(["sku", "warehouse"])
    total_demand = evaluation.inventory.groupby(["sku", "warehouse"])["demand"].sum()
    shipped = evaluation.transfers.groupby(["sku", "from_warehouse"])["quantity"].sum()
    for key, cell in allocation.groupby(["sku", "warehouse"]):
        served = cell.loc[cell["use"] == "demand", "units"].sum()
        unserved = cell.loc[cell["use"] == "unserved_demand", "units"].sum()
        assert served + unserved == pytest.approx(total_demand[key])
        moved = cell.loc[cell["use"].isin(["transfer", "unserved_transfer"]), "units"].sum()
        assert moved == pytest.approx(shipped.get(key, 0.0))
        if not evaluation.overdrawn:
            assert served == pytest.approx(total_demand[key] - last.loc[key, "backorder"])
            left = cell.loc[cell["use"] == "leftover", "units"].sum()
            assert left == pytest.approx(last.loc[key, "end_stock"])


# ---------------------------------------------------------------- end to end


def test_explains_a_solved_plan(scenario_factory: Factory) -> None:
    """Two suppliers (S2 cheaper but MOQ 40), demand over four periods: every solved line is explained."""
    path = scenario_factory(
        {
            "suppliers": [supplier("S1"), supplier("S2")],
            "offers": [offer("S1", price=10.0, multiple=5), offer("S2", price=8.0, moq=40, lead=1)],
            "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 5}],
            "demand": demand("A", "W1", [10, 15, 20, 25]),
        },
        4,
    )
    run = run_scenario(path)
    result = explain_lines(run.problem, run.evaluation)
    assert len(run.evaluation.orders) > 0
    assert len(result) == len(run.evaluation.orders)
    assert result["po_id"].tolist() == run.evaluation.orders["po_id"].tolist()
    assert (result["explanation"].str.len() > 0).all()
    assert result["explanation"].str.startswith("Covers ").all()
    backorder = run.evaluation.inventory.loc[run.evaluation.inventory["period"] == 3, "backorder"].sum()
    assert result["covered_demand_units"].sum() == pytest.approx(70 - 5 - backorder)
