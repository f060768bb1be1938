"""Shelf life, sales channels and sourcing rules (issue 8): hand-checked optima, model = re-simulation.

Every instance is small enough to solve by hand; the expected costs are worked out in the comments. Each
run also checks that the MILP's own objective equals the re-simulated cost of its plan, which fails
when the model and the re-simulation disagree on waste, channel backorders or shares.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from optistock.backend.heuristics import repair_plan
from optistock.cli import main
from optistock.pipeline import RunResult, run_scenario
from optistock.postprocess.simulate import evaluate_plan, fifo_with_expiry
from optistock.preprocess.data import load_problem


def sku(name: str = "A", **extra: Any) -> dict[str, Any]:
    return {"sku": name, "unit_volume": 1.0, "holding_cost": 0.1, "shortage_cost": 100.0, **extra}


def offer(supplier: str = "S1", name: str = "A", **extra: Any) -> dict[str, Any]:
    base = {"supplier": supplier, "sku": name, "unit_price": 1.0, "moq": 0, "order_multiple": 1}
    return {**base, "lead_time": 0, **extra}


def demand(quantities: list[float], name: str = "A", **extra: Any) -> list[dict[str, Any]]:
    return [
        {"sku": name, "warehouse": "W1", "period": t, "quantity": q, **extra}
        for t, q in enumerate(quantities)
    ]


def solve(make: Callable[..., Path], tables: dict[str, Any], periods: int) -> RunResult:
    path = make(tables, periods)
    run = run_scenario(path, path.parent / "out")
    assert run.evaluation.is_valid, run.evaluation.violations
    # the model's optimum is the re-simulated cost of its plan: both sides agree
    assert run.solve.objective == pytest.approx(run.objective, abs=1e-6)
    return run


def ordered(run: RunResult) -> list[tuple[str, int, int]]:
    orders = run.evaluation.orders
    return [
        (str(s), int(t), int(q))
        for s, t, q in orders[["supplier", "order_period", "quantity"]].itertuples(index=False)
    ]


# ------------------------------------------------------------------------------------------------ shelf life


def test_fifo_with_expiry_by_hand() -> None:
    # 15 units aged 1 with shelf life 3 (usable through period 1), 4 arrive in period 1, demand 5 a period
    net, waste = fifo_with_expiry([(-1, 15.0)], np.array([0, 4, 0, 0.0]), np.array([5, 5, 5, 5.0]), 3)
    # t0: 10 old left; t1: 5 old issued, 5 old expire, 4 new left; t2: 4 issued, 1 short; t3: 6 short
    assert waste.tolist() == [0, 5, 0, 0]
    assert net.tolist() == [10, 4, -1, -6]


def test_perishable_sku_is_ordered_in_smaller_more_frequent_lots(
    scenario_factory: Callable[..., Path],
) -> None:
    base = {
        "suppliers": [{"supplier": "S1", "order_cost": 100.0, "min_order_value": 0.0}],
        "demand": demand([10] * 6),
    }
    # no shelf life: one lot of 60 = 60 + 100 + holding 0.1·(50+40+30+20+10) = 175
    durable = solve(scenario_factory, {**base, "skus": [sku()]}, 6)
    assert ordered(durable) == [("S1", 0, 60)]
    assert durable.objective == pytest.approx(175.0)
    # shelf life 2: a unit arriving in t serves t and t+1, so three lots of 20 = 60 + 300 + 0.1·30 = 363
    fresh = solve(scenario_factory, {**base, "skus": [sku(shelf_life=2)]}, 6)
    assert ordered(fresh) == [("S1", 0, 20), ("S1", 2, 20), ("S1", 4, 20)]
    assert fresh.objective == pytest.approx(363.0)
    assert fresh.evaluation.costs["waste"] == 0.0
    assert "waste" not in durable.evaluation.costs


def test_waste_is_counted_and_not_disposed_of_early(scenario_factory: Callable[..., Path]) -> None:
    # MOQ 30, shelf life 2, demand 10 a period: each lot serves two periods and 10 units expire.
    # Lots in periods 0 and 2: purchase 60, holding 5·20·2 = 200, waste 1·20 = 20 → 280. A model that
    # could throw the 10 surplus units away on arrival would claim 60 + 100 + 20 = 180.
    tables = {
        "skus": [sku(holding_cost=5.0, shelf_life=2, waste_cost=1.0)],
        "offers": [offer(moq=30)],
        "demand": demand([10] * 4),
    }
    run = solve(scenario_factory, tables, 4)
    assert ordered(run) == [("S1", 0, 30), ("S1", 2, 30)]
    assert run.objective == pytest.approx(280.0)
    assert run.evaluation.inventory["waste"].tolist() == [0, 10, 0, 10]
    assert run.evaluation.costs["waste"] == pytest.approx(20.0)


def test_aged_initial_stock_expires_and_waste_cost_defaults_to_lowest_price(
    scenario_factory: Callable[..., Path],
) -> None:
    # 15 units aged 1, shelf life 3: usable in periods 0 and 1, 5 expire at the end of period 1 (waste
    # cost = lowest list price 1, not S2's 3). Periods 2, 3 are bought: 10 + holding 0.1·10 + waste 5 = 16
    tables = {
        "skus": [sku(shelf_life=3)],
        "suppliers": [
            {"supplier": "S1", "order_cost": 0.0, "min_order_value": 0.0},
            {"supplier": "S2", "order_cost": 0.0, "min_order_value": 0.0},
        ],
        "offers": [offer(), offer("S2", unit_price=3.0)],
        "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 15, "age": 1}],
        "demand": demand([5] * 4),
    }
    run = solve(scenario_factory, tables, 4)
    assert run.problem.waste_cost == {"A": 1.0}
    assert run.objective == pytest.approx(16.0)
    assert run.evaluation.inventory["waste"].tolist() == [0, 5, 0, 0]


def test_stock_that_expires_first_does_not_cap_the_order_lines(scenario_factory: Callable[..., Path]) -> None:
    # 1 unit on hand with shelf life 1 expires at the end of period 0; the period-1 demand of 1 needs a
    # pack of 2 (purchase 2, the spare unit wasted at cost 0) rather than a backorder costing 3
    tables = {
        "skus": [sku(shortage_cost=3.0, shelf_life=1, waste_cost=0.0)],
        "offers": [offer(order_multiple=2)],
        "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 1}],
        "demand": demand([0, 1]),
    }
    run = solve(scenario_factory, tables, 2)
    assert ordered(run) == [("S1", 1, 2)]
    assert run.objective == pytest.approx(2.0)


def test_perishable_skus_are_not_transferred(scenario_factory: Callable[..., Path]) -> None:
    tables = {
        "skus": [sku(shelf_life=3)],
        "warehouses": [{"warehouse": "W1", "capacity": 1e6}, {"warehouse": "W2", "capacity": 1e6}],
        "transfers": [{"from_warehouse": "W1", "to_warehouse": "W2", "lead_time": 0, "cost_per_unit": 0}],
        "demand": demand([5, 5]),
    }
    problem = load_problem(scenario_factory(tables, 2))
    moved = pd.DataFrame(
        [("A", "W1", "W2", 0, 1)],
        columns=["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"],
    )
    orders = pd.DataFrame(columns=["supplier", "sku", "warehouse", "order_period", "quantity"])
    violations = evaluate_plan(problem, orders, moved).violations
    assert any("perishable SKUs are not transferred" in v for v in violations), violations


# ------------------------------------------------------------------------------------------------ channels


def channel_rows(run: RunResult) -> dict[tuple[str, int], tuple[float, float, float]]:
    assert run.evaluation.channels is not None
    return {
        (str(c), int(t)): (float(d), float(s), float(b))
        for c, t, d, s, b in run.evaluation.channels[
            ["channel", "period", "demand", "served", "backorder"]
        ].itertuples(index=False)
    }


def test_channel_with_higher_shortage_cost_is_served_first(scenario_factory: Callable[..., Path]) -> None:
    # 10 on hand, 8 + 8 wanted in period 0, lead time 1: web (cost 10) gets 8, retail (cost 2) 2 and
    # waits one period for 6 more → purchase 6 + shortage 2·6 = 18
    tables = {
        "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 10}],
        "offers": [offer(lead_time=1)],
        "demand": demand([8, 0], channel="web") + demand([8, 0], channel="retail"),
        "channels": [
            {"channel": "web", "shortage_cost": 10.0},
            {"channel": "retail", "shortage_cost": 2.0},
        ],
    }
    run = solve(scenario_factory, tables, 2)
    rows = channel_rows(run)
    assert rows[("web", 0)] == (8, 8, 0)
    assert rows[("retail", 0)] == (8, 2, 6)
    assert rows[("retail", 1)] == (0, 6, 0)
    assert run.objective == pytest.approx(18.0)


def test_channel_priority_breaks_equal_costs(scenario_factory: Callable[..., Path]) -> None:
    tables = {
        "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 10}],
        "offers": [offer(lead_time=1)],
        "demand": demand([8, 0], channel="web") + demand([8, 0], channel="retail"),
        "channels": [{"channel": "web", "priority": 2}, {"channel": "retail", "priority": 1}],
    }
    run = solve(scenario_factory, tables, 2)
    rows = channel_rows(run)
    assert rows[("retail", 0)] == (8, 8, 0)
    assert rows[("web", 0)] == (8, 2, 6)
    assert run.objective == pytest.approx(6 + 100.0 * 6)


def test_served_units_are_not_taken_back_from_a_cheaper_channel(
    scenario_factory: Callable[..., Path],
) -> None:
    # 5 on hand; cheap channel wants 10 in period 0, dear channel 3 in period 1; supply arrives in 2.
    # Period 0: 5 served to cheap, 5 owed (cost 5). Period 1: cheap still owed 5, dear owed 3:
    # 5 + 30 = 35. Period 2: the 8 missing units arrive. Total 8 + 5 + 35 = 48. Moving served units
    # from the cheap to the dear channel in period 1 would claim 8 + 5 + 8 = 21, and holding 3 of the 5
    # units back for the dear channel (rationing, which the contract does not do) 8 + 3 + 8·2 = 27.
    tables = {
        "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 5}],
        "offers": [offer(lead_time=2)],
        "demand": demand([10, 0, 0], channel="cheap") + demand([0, 3, 0], channel="dear"),
        "channels": [
            {"channel": "cheap", "shortage_cost": 1.0},
            {"channel": "dear", "shortage_cost": 10.0},
        ],
    }
    run = solve(scenario_factory, tables, 3)
    assert run.objective == pytest.approx(48.0)
    assert channel_rows(run)[("dear", 1)] == (3, 0, 3)


# ------------------------------------------------------------------------------------------------ sourcing

TWO_SUPPLIERS = {
    "suppliers": [
        {"supplier": "S1", "order_cost": 0.0, "min_order_value": 0.0},
        {"supplier": "S2", "order_cost": 0.0, "min_order_value": 0.0},
    ],
    "offers": [offer(), offer("S2", unit_price=2.0)],
    "demand": demand([10]),
}


@pytest.mark.parametrize(
    ("rules", "split", "cost"),
    [
        ([], {"S1": 10}, 10.0),  # no rule: all from the cheaper S1
        ([{"supplier": "S2", "sku": "A", "min_share": 0.3}], {"S1": 7, "S2": 3}, 13.0),
        ([{"supplier": "S1", "sku": "A", "max_share": 0.5}], {"S1": 5, "S2": 5}, 15.0),
        ([{"supplier": "S1", "off": 1}], {"S2": 10}, 20.0),  # supplier switched off
        ([{"supplier": "S1", "sku": "A", "off": 1}], {"S2": 10}, 20.0),  # offer switched off
        ([{"supplier": "S2", "sku": "A", "preferred": 1}], {"S1": 10}, 10.0),  # preference is no rule
    ],
)
def test_sourcing_rule_changes_the_split(
    scenario_factory: Callable[..., Path], rules: list[dict[str, Any]], split: dict[str, int], cost: float
) -> None:
    tables = dict(TWO_SUPPLIERS)
    if rules:
        tables["sourcing"] = rules
    run = solve(scenario_factory, tables, 1)
    units = run.evaluation.orders.groupby("supplier")["quantity"].sum().to_dict()
    assert units == split
    assert run.objective == pytest.approx(cost)


def test_share_rule_on_a_sku_without_demand_is_harmless(scenario_factory: Callable[..., Path]) -> None:
    tables = {
        **TWO_SUPPLIERS,
        "skus": [sku("A"), sku("B")],
        "offers": [offer(), offer("S2", unit_price=2.0), offer("S2", "B")],
        "sourcing": [{"supplier": "S2", "sku": "B", "min_share": 0.5}],
    }
    assert solve(scenario_factory, tables, 1).objective == pytest.approx(10.0)


def test_share_of_all_skus(scenario_factory: Callable[..., Path]) -> None:
    # A and B, 10 each; S2 (price 2) must have a quarter of all units: 5 units → 15 + 10 = 25
    tables = {
        **TWO_SUPPLIERS,
        "skus": [sku("A"), sku("B")],
        "offers": [offer(), offer("S2", unit_price=2.0), offer(name="B"), offer("S2", "B", unit_price=2.0)],
        "inventory": [],
        "demand": demand([10]) + demand([10], name="B"),
        "sourcing": [{"supplier": "S2", "sku": "", "min_share": 0.25}],
    }
    run = solve(scenario_factory, tables, 1)
    assert run.evaluation.orders.groupby("supplier")["quantity"].sum().to_dict() == {"S1": 15, "S2": 5}
    assert run.objective == pytest.approx(25.0)
    assert run.evaluation.sourcing is not None
    assert run.evaluation.sourcing["share"].tolist() == [0.25]


def test_preferred_supplier_is_exposed(scenario_factory: Callable[..., Path]) -> None:
    plain = load_problem(scenario_factory(TWO_SUPPLIERS, 1))
    assert plain.preferred_supplier("A") == "S1"  # the cheapest offer
    marked = load_problem(
        scenario_factory({**TWO_SUPPLIERS, "sourcing": [{"supplier": "S2", "sku": "A", "preferred": 1}]}, 1)
    )
    assert marked.preferred_supplier("A") == "S2"


def test_unused_channels_and_impossible_shares_are_warnings(scenario_factory: Callable[..., Path]) -> None:
    tables = {
        **TWO_SUPPLIERS,
        "channels": [{"channel": "web", "priority": 1}],
        "sourcing": [
            {"supplier": "S1", "sku": "A", "min_share": 0.6},
            {"supplier": "S2", "sku": "A", "min_share": 0.5},
        ],
    }
    warnings = load_problem(scenario_factory(tables, 1)).warnings
    assert "channel web (channels table) has no demand row; it is not used" in warnings
    assert any("minimum shares for A add up to 1.1 > 1" in w for w in warnings), warnings


def test_start_plan_breaking_a_share_is_repaired_into_a_valid_plan(
    scenario_factory: Callable[..., Path],
) -> None:
    problem = load_problem(
        scenario_factory({**TWO_SUPPLIERS, "sourcing": [{"supplier": "S2", "sku": "A", "min_share": 0.3}]}, 1)
    )
    all_s1 = pd.DataFrame(
        [("S1", "A", "W1", 0, 10)], columns=["supplier", "sku", "warehouse", "order_period", "quantity"]
    )
    transfers = pd.DataFrame(columns=["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"])
    assert not evaluate_plan(problem, all_s1, transfers).is_valid
    repaired = evaluate_plan(problem, *repair_plan(problem, all_s1, transfers))
    assert repaired.is_valid


# ------------------------------------------------------------------------------------------------ together


ALL_FEATURES_PERIODS = 5


def all_features() -> dict[str, Any]:
    return {
        **TWO_SUPPLIERS,
        "skus": [sku("A", shelf_life=2), sku("B")],
        "suppliers": [
            {"supplier": "S1", "order_cost": 20.0, "min_order_value": 0.0, "capacity": 30},
            {"supplier": "S2", "order_cost": 5.0, "min_order_value": 0.0},
        ],
        "offers": [
            offer(moq=12),
            offer("S2", unit_price=2.0),
            offer(name="B"),
            offer("S2", "B", unit_price=1.5),
        ],
        "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 6, "age": 1}],
        "demand": demand([4, 6, 5, 7, 3], channel="web")
        + demand([3, 0, 4, 2, 5], channel="store")
        + demand([5, 5, 5, 5, 5], name="B", channel="web"),
        "channels": [{"channel": "web", "shortage_cost": 40.0}, {"channel": "store", "priority": 1}],
        "sourcing": [{"supplier": "S2", "sku": "B", "min_share": 0.4}],
        "budget": [{"period": 0, "amount": 60.0}],
    }


def test_all_features_written_plan_matches_its_files(scenario_factory: Callable[..., Path]) -> None:
    tables = all_features()
    path = scenario_factory(tables, ALL_FEATURES_PERIODS)
    out = path.parent / "run"
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["plan_check"]["valid"]
    assert set(summary["costs"]) == {
        "purchase",
        "ordering",
        "transport",
        "transfer",
        "holding",
        "shortage",
        "waste",
    }
    assert set(summary["channels"]) == {"web", "store"}
    assert summary["marginal_values"]["available"], summary["marginal_values"]
    # re-simulating the written files gives the reported objective
    problem = load_problem(out / "inputs" / "scenario.yaml")
    orders = pd.read_csv(out / "orders.csv")
    transfers = pd.read_csv(out / "transfer_plan.csv")
    again = evaluate_plan(problem, orders, transfers)
    assert again.is_valid
    assert again.total_cost == pytest.approx(summary["objective"], abs=1e-6)
    channels = pd.read_csv(out / "channel_plan.csv")
    assert channels["demand"].sum() == pytest.approx(pd.DataFrame(tables["demand"])["quantity"].sum())
    assert summary["objective"] == pytest.approx(summary["solver_objective"], rel=1e-6)


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("table", "rows", "line", "field", "says"),
    [
        ("skus", [sku(shelf_life=0)], 2, "shelf_life", "must be > 0"),
        ("skus", [sku(shelf_life=-3)], 2, "shelf_life", "must be > 0"),
        ("sourcing", [{"supplier": "S2", "sku": "A", "min_share": 1.5}], 2, "min_share", "must be <= 1"),
        ("sourcing", [{"supplier": "S2", "sku": "A", "max_share": -0.1}], 2, "max_share", "must be >= 0"),
        (
            "sourcing",
            [
                {"supplier": "S1", "sku": "", "max_share": 0.9},
                {"supplier": "S2", "min_share": 0.6, "max_share": 0.4},
            ],
            3,
            "min_share",
            "min_share 0.6 is above max_share 0.4",
        ),
        ("sourcing", [{"supplier": "S3", "sku": "A"}], 2, "supplier", "unknown supplier 'S3'"),
        ("sourcing", [{"supplier": "S1", "sku": "B"}], 2, "sku", "unknown sku 'B'"),
    ],
)
def test_bad_extension_input_is_exit_2_naming_file_line_and_field(
    scenario_factory: Callable[..., Path],
    table: str,
    rows: list[dict[str, Any]],
    line: int,
    field: str,
    says: str,
) -> None:
    from test_bad_input import assert_located, run_bad

    message = run_bad(scenario_factory({**TWO_SUPPLIERS, table: rows}, 1))
    assert_located(message, f"{table}.csv", line=line, field=field)
    assert says in message, message


def test_expired_initial_stock_and_blank_channel_are_bad_input(scenario_factory: Callable[..., Path]) -> None:
    from test_bad_input import assert_located, run_bad

    aged = {
        "skus": [sku(shelf_life=3)],
        "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 5, "age": 3}],
        "demand": demand([1]),
    }
    message = run_bad(scenario_factory(aged, 1))
    assert_located(message, "inventory.csv", line=2, field="age")
    assert "not below the SKU's shelf life 3" in message
    blank = {"demand": [*demand([1], channel="web"), {**demand([1])[0], "period": 1, "channel": ""}]}
    message = run_bad(scenario_factory(blank, 2))
    assert_located(message, "demand.csv", line=3, field="channel")


def test_fix_and_optimize_keeps_every_rule(
    scenario_factory: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SKU sub-problems (fix-and-optimize) with shelf life, channels and a share rule on all SKUs: the
    rest of the plan's units count in the share, and the result is valid and as good as the MILP's."""
    from optistock.backend import strategy

    tables = all_features()
    tables["sourcing"] = [*tables["sourcing"], {"supplier": "S1", "sku": "", "max_share": 0.7}]
    direct = solve(scenario_factory, tables, ALL_FEATURES_PERIODS)
    monkeypatch.setattr(strategy, "DIRECT_INTEGER_LIMIT", 0)
    path = scenario_factory(tables, ALL_FEATURES_PERIODS)
    improved = run_scenario(path, None)
    assert improved.method == "fix-and-optimize + milp"
    assert improved.evaluation.is_valid, improved.evaluation.violations
    assert improved.objective == pytest.approx(direct.objective, rel=1e-6)


def test_shipped_fresh_demo_checks() -> None:
    scenario = Path(__file__).resolve().parents[1] / "scenarios" / "demo-fresh" / "fresh.yaml"
    result = CliRunner().invoke(main, ["check", str(scenario)])
    assert result.exit_code == 0, result.output
    problem = load_problem(scenario)
    assert problem.shelf_life == {"YOGHURT": 3}
    assert problem.channel_order == ["store", "web"]
    assert problem.preferred_supplier("COFFEE") == "ROASTER"


# ------------------------------------------------------------------------------------------------ YAML rules


def with_yaml_rules(path: Path, text: str) -> Path:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    return path


def test_sourcing_rules_in_the_scenario_file(scenario_factory: Callable[..., Path]) -> None:
    path = with_yaml_rules(
        scenario_factory(TWO_SUPPLIERS, 1), "sourcing:\n  - {supplier: S2, sku: A, min_share: 0.3}\n"
    )
    run = run_scenario(path, path.parent / "out")
    assert run.evaluation.orders.groupby("supplier")["quantity"].sum().to_dict() == {"S1": 7, "S2": 3}
    assert run.objective == pytest.approx(13.0)
    # the resolved inputs keep the rule: re-running them gives the same plan
    again = run_scenario(path.parent / "out" / "inputs" / "scenario.yaml", None)
    assert again.objective == pytest.approx(13.0)


@pytest.mark.parametrize(
    ("rules", "line", "field", "says"),
    [
        (
            "  - {supplier: S2, sku: A, min_share: 1.5}\n",
            2,
            "sourcing.0.min_share",
            "less than or equal to 1",
        ),
        (
            "  - {supplier: S1, off: true}\n  - supplier: S2\n    min_share: 0.6\n    max_share: 0.4\n",
            5,
            "sourcing.1.max_share",
            "max_share 0.4 is below min_share 0.6",
        ),
        (
            "  - {supplier: S2, off: true}\n  - {supplier: S9, sku: A}\n",
            3,
            "sourcing.1.supplier",
            "unknown supplier",
        ),
        ("  - supplier: S1\n    sku: Z\n", 3, "sourcing.0.sku", "unknown sku 'Z'"),
    ],
)
def test_bad_sourcing_rules_in_the_scenario_file_are_exit_2(
    scenario_factory: Callable[..., Path], rules: str, line: int, field: str, says: str
) -> None:
    from test_bad_input import assert_located, run_bad

    path = scenario_factory(TWO_SUPPLIERS, 1)
    first = len(path.read_text(encoding="utf-8").splitlines()) + 1  # the line of "sourcing:"
    message = run_bad(with_yaml_rules(path, "sourcing:\n" + rules))
    assert_located(message, "scenario.yaml", line=first + line - 1, field=field)
    assert says in message, message
