"""Service levels and safety stock: textbook formulas, hand-solved plans with a safety-stock floor, the
reasons given for every shortfall, target precedence, and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import BASE_TABLES, write_scenario
from independent_check import check_run
from ruamel.yaml import YAML

from optistock.cli import main
from optistock.pipeline import run_scenario
from optistock.preprocess.data import load_problem
from optistock.preprocess.service import (
    critical_fractile,
    economic_order_quantity,
    normal_quantile,
    orderable_quantity,
    safety_stock,
)

# --------------------------------------------------------------------------------------------------
# textbook formulas
# --------------------------------------------------------------------------------------------------


def test_normal_quantiles() -> None:
    assert normal_quantile(0.5) == pytest.approx(0.0, abs=1e-12)
    assert normal_quantile(0.90) == pytest.approx(1.281552, abs=1e-6)
    assert normal_quantile(0.95) == pytest.approx(1.644854, abs=1e-6)
    assert normal_quantile(0.99) == pytest.approx(2.326348, abs=1e-6)
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            normal_quantile(bad)


def test_safety_stock_with_demand_uncertainty_only() -> None:
    """Chopra & Meindl, Example 12-3: weekly demand 2,500 (σ 500), lead time 2 weeks, CSL 90 % →
    σ_L = sqrt(2)·500 = 707 and ss = 1.2816 · 707 = 906."""
    assert safety_stock(0.90, 2, 2500, 500) == pytest.approx(906, abs=0.5)


def test_safety_stock_with_lead_time_uncertainty() -> None:
    """Chopra & Meindl, Example 12-6: daily demand 2,500 (σ 500), lead time 7 days (σ 7 days), CSL 90 %:
    σ_L = sqrt(7·500² + 2500²·7²) = 17,550 and ss = F⁻¹(0.9) · 17,550 ≈ 22,490."""
    sigma = math.sqrt(7 * 500**2 + 2500**2 * 7**2)
    assert sigma == pytest.approx(17_550, abs=1)
    assert safety_stock(0.90, 7, 2500, 500, 7) == pytest.approx(1.2815516 * sigma, rel=1e-7)
    assert safety_stock(0.90, 7, 2500, 500, 7) == pytest.approx(22_490, rel=2e-3)


def test_economic_order_quantity() -> None:
    """Chopra & Meindl, Example 11-1: D = 12,000 per year, S = 4,000, h = 20 % of 500 → EOQ = 980."""
    assert economic_order_quantity(12_000, 4_000, 100) == pytest.approx(979.8, abs=0.1)
    assert economic_order_quantity(0, 4_000, 100) == 0.0
    assert economic_order_quantity(10, 0, 100) == 0.0
    assert economic_order_quantity(10, 5, 0) == math.inf


def test_newsvendor_critical_fractile() -> None:
    """Price 180, cost 110, salvage 90: underage 70, overage 20, critical ratio 0.7778 (Cachon &
    Terwiesch, the O'Neill Hammer 3/2), whose z is 0.7647."""
    assert critical_fractile(70, 20) == pytest.approx(0.77778, abs=1e-5)
    assert normal_quantile(critical_fractile(70, 20)) == pytest.approx(0.7647, abs=1e-4)
    assert critical_fractile(1, 1) == 0.5
    with pytest.raises(ValueError):
        critical_fractile(0, 0)


def test_orderable_quantity_respects_moq_and_pack() -> None:
    assert orderable_quantity(979.8, 1000, 50) == 1000
    assert orderable_quantity(1020, 0, 50) == 1050
    assert orderable_quantity(3.2, 0, 1) == 4
    assert orderable_quantity(0.0, 0, 12) == 12


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def scenario_with(folder: Path, tables: dict[str, Any], periods: int, **sections: Any) -> Path:
    """``BASE_TABLES`` overridden by ``tables``, with extra top-level YAML ``sections``."""
    path = write_scenario(folder, {**BASE_TABLES, **tables}, periods, {"time_limit": 60})
    yaml = YAML(typ="safe")
    document = yaml.load(path.read_text(encoding="utf-8"))
    document.update(sections)
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(document, handle)
    return path


def steady(quantity: float, std: float, periods: int, sku: str = "A", warehouse: str = "W1") -> list[dict]:
    return [
        {"sku": sku, "warehouse": warehouse, "period": t, "quantity": quantity, "std": std}
        for t in range(periods)
    ]


ONE_SKU: dict[str, Any] = {
    "skus": [{"sku": "A", "unit_volume": 1.0, "holding_cost": 1.0, "shortage_cost": 100.0}],
    "offers": [
        {"supplier": "S1", "sku": "A", "unit_price": 1.0, "moq": 0, "order_multiple": 1, "lead_time": 1}
    ],
    "demand": steady(10, 5, 4),
}
"""Demand 10 (σ 5) in each of 4 periods, lead time 1, review period 1: at CSL 95 % the safety stock is
1.6449 · sqrt(2 · 25) = 11.63 → 12 units, the penalty (1 + 100) / 2 = 50.5 per unit and period."""


def recomputed_penalty(out: Path) -> float:
    """Σ max(0, SS − end stock) × penalty from the written files alone."""
    inventory = pd.read_csv(out / "inventory_plan.csv")
    targets = pd.read_csv(out / "inputs" / "safety_stock.csv").set_index(["sku", "warehouse"])["quantity"]
    skus = pd.read_csv(out / "inputs" / "skus.csv").set_index("sku")
    service = YAML(typ="safe").load((out / "inputs" / "scenario.yaml").read_text(encoding="utf-8"))
    service = service.get("service") or {}
    if service.get("shortfall_cost") is not None:
        penalty = skus["shortage_cost"].clip(upper=float(service["shortfall_cost"]))
    else:
        penalty = (skus["holding_cost"] + skus["shortage_cost"]) / 2
    total = 0.0
    for row in inventory.itertuples():
        target = float(targets.get((row.sku, row.warehouse), 0.0))
        total += max(0.0, target - row.end_stock) * float(penalty[row.sku])
    return total


def solve_with_service(
    folder: Path, tables: dict[str, Any], periods: int, **sections: Any
) -> tuple[dict, Path]:
    out = folder / "out"
    run_scenario(scenario_with(folder, tables, periods, **sections), out)
    summary = json.loads((out / "summary.json").read_text())
    check = check_run(out, periods)
    assert check.violations == []
    # the objective = the core cost recomputed independently + the shortfall penalty from the files
    assert summary["objective"] == pytest.approx(check.total + recomputed_penalty(out), rel=1e-9)
    assert summary["costs"]["safety_stock"] == pytest.approx(recomputed_penalty(out), rel=1e-9)
    return summary, out


# --------------------------------------------------------------------------------------------------
# the safety-stock floor in the optimisation
# --------------------------------------------------------------------------------------------------


def test_plan_keeps_safety_stock_after_the_lead_time(tmp_path: Path) -> None:
    """Nothing can arrive in period 0: 10 backordered and 12 short of safety stock there. From period 1
    the plan keeps exactly 12: it buys 10 + 10 + 12 = 32, then 10 and 10. Cost: purchase 52, holding
    3 · 12 = 36, shortage 10 · 100 = 1000, penalty 12 · 50.5 = 606; total 1694."""
    summary, out = solve_with_service(tmp_path, ONE_SKU, 4, service={"targets": {"A": 0.95}})
    assert summary["status"] == "optimal"
    assert summary["objective"] == pytest.approx(1694.0)
    assert summary["costs"]["safety_stock"] == pytest.approx(606.0)
    inventory = pd.read_csv(out / "inventory_plan.csv")
    assert inventory["end_stock"].tolist() == [0, 12, 12, 12]
    policy = pd.read_csv(out / "stock_policy.csv")
    assert policy.loc[0, "safety_stock"] == 12
    assert policy.loc[0, "service_level"] == 0.95 and policy.loc[0, "target_source"] == "class A"
    assert policy.loc[0, "implied_service_level"] == pytest.approx(100 / 101)
    assert policy.loc[0, "reorder_point"] == pytest.approx(10 * 1 + 12)
    assert policy.loc[0, "order_up_to"] == pytest.approx(10 * 2 + 12)
    shortfalls = pd.read_csv(out / "safety_stock_shortfalls.csv")
    assert shortfalls[["period", "shortfall"]].values.tolist() == [[0, 12]]
    assert shortfalls.loc[0, "reason"].startswith("lead time")
    assert summary["service"]["shortfall_reasons"] == {"lead time": 1}
    kpis = summary["kpis"]
    assert kpis["fill_rate"] == pytest.approx(30 / 40)
    assert kpis["cycle_service_level"] == pytest.approx(3 / 4)
    assert kpis["service_target"] == pytest.approx(0.95)
    assert kpis["stockout_periods"] == 1


def test_without_service_targets_nothing_changes(tmp_path: Path) -> None:
    """The same instance without service: the plan keeps no stock, no penalty component exists."""
    out = tmp_path / "out"
    run_scenario(scenario_with(tmp_path, ONE_SKU, 4), out)
    summary = json.loads((out / "summary.json").read_text())
    assert "safety_stock" not in summary["costs"]
    assert summary["service"] is None
    assert summary["objective"] == pytest.approx(40 + 1000)
    assert not (out / "stock_policy.csv").exists()
    assert pd.read_csv(out / "inventory_plan.csv")["end_stock"].tolist() == [0, 0, 0, 0]


def test_a_cheap_penalty_is_paid_instead_of_holding(tmp_path: Path) -> None:
    """shortfall_cost 0.5 < holding 1: keeping safety stock costs more than falling short."""
    summary, out = solve_with_service(
        tmp_path, ONE_SKU, 4, service={"targets": {"A": 0.95}, "shortfall_cost": 0.5}
    )
    assert pd.read_csv(out / "inventory_plan.csv")["end_stock"].tolist() == [0, 0, 0, 0]
    assert summary["costs"]["safety_stock"] == pytest.approx(4 * 12 * 0.5)
    reasons = pd.read_csv(out / "safety_stock_shortfalls.csv")["reason"].tolist()
    assert reasons[0].startswith("lead time") and reasons[1:] == ["cost"] * 3


@pytest.mark.parametrize(
    ("limit", "reason"),
    [
        ({"budget": [{"period": t, "amount": 10.0} for t in range(4)]}, "budget"),
        ({"warehouses": [{"warehouse": "W1", "capacity": 5.0}]}, "storage capacity"),
        (
            {"suppliers": [{"supplier": "S1", "order_cost": 0.0, "min_order_value": 0.0, "capacity": 10}]},
            "supplier capacity",
        ),
    ],
)
def test_shortfall_reasons_name_the_binding_limit(tmp_path: Path, limit: dict[str, Any], reason: str) -> None:
    """Lead time 0 and 20 on hand: demand is met, but the limit stops the plan from holding 12."""
    tables = {
        **ONE_SKU,
        "offers": [
            {"supplier": "S1", "sku": "A", "unit_price": 1.0, "moq": 0, "order_multiple": 1, "lead_time": 0}
        ],
        "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 0}],
        **limit,
    }
    summary, out = solve_with_service(tmp_path, tables, 4, service={"targets": {"A": 0.95}})
    shortfalls = pd.read_csv(out / "safety_stock_shortfalls.csv")
    assert len(shortfalls) == 4
    assert all(reason in text for text in shortfalls["reason"])
    assert summary["kpis"]["fill_rate"] == pytest.approx(1.0)


def test_penalty_is_capped_at_the_shortage_cost(tmp_path: Path) -> None:
    path = scenario_with(tmp_path, ONE_SKU, 4, service={"targets": {"A": 0.95}, "shortfall_cost": 1000})
    problem = load_problem(path)
    assert problem.shortfall_penalty["A"] == 100.0


def test_rerun_of_the_inputs_folder_reproduces_the_plan(tmp_path: Path) -> None:
    """inputs/ holds the resolved safety stock: re-running it gives the same objective."""
    summary, out = solve_with_service(tmp_path, ONE_SKU, 4, service={"targets": {"A": 0.95}})
    again = run_scenario(out / "inputs" / "scenario.yaml", tmp_path / "again")
    assert again.summary["objective"] == pytest.approx(summary["objective"])


# --------------------------------------------------------------------------------------------------
# how targets and safety stock are found
# --------------------------------------------------------------------------------------------------

THREE_SKUS: dict[str, Any] = {
    "skus": [
        {"sku": name, "unit_volume": 1.0, "holding_cost": 1.0, "shortage_cost": 100.0} for name in "ABC"
    ],
    "warehouses": [{"warehouse": "W1", "capacity": 1e6}, {"warehouse": "W2", "capacity": 1e6}],
    "offers": [
        {"supplier": "S1", "sku": name, "unit_price": 1.0, "moq": 0, "order_multiple": 1, "lead_time": 1}
        for name in "ABC"
    ],
    "lanes": [{"supplier": "S1", "warehouse": "W1", "transit_time": 1, "cost_per_unit": 0.0}],
    "transfers": [{"from_warehouse": "W1", "to_warehouse": "W2", "lead_time": 2, "cost_per_unit": 0.1}],
    "demand": steady(100, 20, 4, "A")
    + steady(30, 10, 4, "B")
    + steady(5, 4, 4, "C")
    + steady(5, 4, 4, "C", "W2"),
    "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 0}],
}
"""Consumption values 400, 120, 40 (of 560): A (share before it 0), B (0.71 before it: still A at 80 %)…
with ``abc: {A: 0.5, B: 0.3, C: 0.2}``: A is A, B is B (0.71 < 0.8), C is C (0.93 ≥ 0.8)."""


def policy_of(tmp_path: Path, tables: dict[str, Any], **sections: Any) -> pd.DataFrame:
    problem = load_problem(scenario_with(tmp_path, tables, 4, **sections))
    return problem.stock_policy.set_index(["sku", "warehouse"])


def test_targets_by_class_table_and_default(tmp_path: Path) -> None:
    tables = {
        **THREE_SKUS,
        "service_levels": [
            {"sku": "B", "warehouse": "", "service_level": 0.80},
            {"sku": "C", "warehouse": "W2", "service_level": 0.99},
        ],
    }
    policy = policy_of(
        tmp_path,
        tables,
        classification={"abc": {"A": 0.5, "B": 0.3, "C": 0.2}},
        service={"targets": {"A": 0.98, "B": 0.95}, "default": 0.9},
    )
    assert policy.loc[("A", "W1"), "service_level"] == 0.98
    assert policy.loc[("A", "W1"), "target_source"] == "class A"
    assert policy.loc[("B", "W1"), "service_level"] == 0.80  # the table beats class B
    assert policy.loc[("C", "W1"), "service_level"] == 0.90  # class C has no target: the default
    assert policy.loc[("C", "W1"), "target_source"] == "default"
    assert policy.loc[("C", "W2"), "service_level"] == 0.99


def test_user_classes_and_combined_classes_set_targets(tmp_path: Path) -> None:
    path = scenario_with(
        tmp_path,
        THREE_SKUS,
        4,
        classification={"abc": {"A": 0.5, "B": 0.3, "C": 0.2}},
        classes={"key": ["C"]},
        service={"targets": {"AX": 0.97, "A": 0.5, "key": 0.93}},
    )
    policy = load_problem(path).stock_policy.set_index(["sku", "warehouse"])
    assert policy.loc[("A", "W1"), "service_level"] == 0.97  # AX beats A
    assert policy.loc[("C", "W1"), "service_level"] == 0.93
    assert pd.isna(policy.loc[("B", "W1"), "service_level"])  # no target: no safety stock
    assert policy.loc[("B", "W1"), "safety_stock"] == 0


def test_safety_stock_uses_primary_lead_time_review_period_and_lead_time_std(tmp_path: Path) -> None:
    """A at W1: lead time 1 + transit 1 + review 2 = 4 periods, σd 20, σL 0.5, d̄ 100:
    z(0.95) · sqrt(4 · 400 + 100² · 0.25) = 1.6449 · sqrt(4100) = 105.3 → 106. At W2 (only by transfer
    from W1, 2 periods): L = 2 + 2, review 2, no σL for C (σd 4): 1.6449 · sqrt(6 · 16) = 16.1 → 17."""
    tables = {
        **THREE_SKUS,
        "offers": [
            {
                "supplier": "S1",
                "sku": name,
                "unit_price": 1.0,
                "moq": 0,
                "order_multiple": 1,
                "lead_time": 1,
                "lead_time_std": 0.5 if name == "A" else 0.0,
            }
            for name in "ABC"
        ],
    }
    policy = policy_of(tmp_path, tables, service={"default": 0.95, "review_period": 2})
    assert policy.loc[("A", "W1"), "lead_time"] == 2
    assert policy.loc[("A", "W1"), "safety_stock"] == math.ceil(1.644854 * math.sqrt(4 * 400 + 100**2 * 0.25))
    assert policy.loc[("C", "W2"), "replenished_via"] == "W1"
    assert policy.loc[("C", "W2"), "lead_time"] == 4
    assert policy.loc[("C", "W2"), "safety_stock"] == math.ceil(1.644854 * math.sqrt(6 * 16))


def test_primary_offer_is_the_lowest_landed_cost(tmp_path: Path) -> None:
    tables = {
        **ONE_SKU,
        "suppliers": [
            {"supplier": "S1", "order_cost": 10.0, "min_order_value": 0.0},
            {"supplier": "S2", "order_cost": 10.0, "min_order_value": 0.0},
        ],
        "offers": [
            {"supplier": "S1", "sku": "A", "unit_price": 1.0, "moq": 0, "order_multiple": 1, "lead_time": 1},
            {"supplier": "S2", "sku": "A", "unit_price": 0.9, "moq": 25, "order_multiple": 5, "lead_time": 3},
        ],
        "lanes": [
            {"supplier": "S1", "warehouse": "W1", "transit_time": 0, "cost_per_unit": 0.0},
            {"supplier": "S2", "warehouse": "W1", "transit_time": 0, "cost_per_unit": 0.2},
        ],
    }
    policy = policy_of(tmp_path, tables, service={"default": 0.95}).reset_index()
    primary = policy[policy["primary"]]
    assert primary["supplier"].tolist() == ["S1"]  # 1.0 landed beats 0.9 + 0.2
    s2 = policy[policy["supplier"] == "S2"].iloc[0]
    # EOQ sqrt(2 · 10 · 10 / 1) = 14.1 → at least the MOQ 25, a multiple of 5
    assert s2["eoq"] == pytest.approx(math.sqrt(200))
    assert s2["order_quantity"] == 25
    assert s2["safety_stock"] == math.ceil(1.644854 * math.sqrt(4 * 25))


def test_safety_stock_table_replaces_the_formula(tmp_path: Path) -> None:
    tables = {**ONE_SKU, "safety_stock": [{"sku": "A", "warehouse": "W1", "quantity": 3}]}
    _summary, out = solve_with_service(tmp_path, tables, 4, service={"targets": {"A": 0.95}})
    policy = pd.read_csv(out / "stock_policy.csv")
    assert policy.loc[0, "safety_stock"] == 3 and policy.loc[0, "safety_stock_source"] == "safety_stock table"
    assert pd.read_csv(out / "inventory_plan.csv")["end_stock"].tolist() == [0, 3, 3, 3]


def test_service_levels_table_alone_turns_safety_stock_on(tmp_path: Path) -> None:
    tables = {**ONE_SKU, "service_levels": [{"sku": "A", "warehouse": "W1", "service_level": 0.95}]}
    summary, _out = solve_with_service(tmp_path, tables, 4)
    assert summary["service"]["safety_stock_units"] == 12


def test_class_filter_of_what_if_changes_uses_computed_classes(tmp_path: Path) -> None:
    path = scenario_with(
        tmp_path,
        THREE_SKUS,
        4,
        classification={"abc": {"A": 0.5, "B": 0.3, "C": 0.2}},
        changes=[{"demand": {"scale": 2, "class": "A"}}],
    )
    demand = load_problem(path).demand.groupby(level="sku").sum()
    assert demand.to_dict() == {"A": 800.0, "B": 120.0, "C": 40.0}


# --------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("table", "rows", "expected"),
    [
        (
            "service_levels",
            [{"sku": "A", "warehouse": "W1", "service_level": 1.0}],
            ("line 2", "service_level", "between 0 and 1"),
        ),
        (
            "service_levels",
            [{"sku": "A", "warehouse": "W1", "service_level": 0}],
            ("line 2", "service_level", "> 0"),
        ),
        (
            "service_levels",
            [
                {"sku": "A", "warehouse": "W1", "service_level": 0.9},
                {"sku": "Z", "warehouse": "", "service_level": 0.9},
            ],
            ("line 3", "sku", "unknown sku 'Z'"),
        ),
        (
            "service_levels",
            [{"sku": "A", "warehouse": "W9", "service_level": 0.9}],
            ("line 2", "warehouse", "unknown warehouse 'W9'"),
        ),
        ("safety_stock", [{"sku": "A", "warehouse": "W1", "quantity": -1}], ("line 2", "quantity", ">= 0")),
        (
            "demand",
            [{"sku": "A", "warehouse": "W1", "period": 0, "quantity": 1, "std": -2}],
            ("line 2", "std", ">= 0"),
        ),
    ],
)
def test_bad_service_tables(tmp_path: Path, table: str, rows: list[dict], expected: tuple[str, ...]) -> None:
    path = scenario_with(tmp_path, {**ONE_SKU, table: rows}, 4, service={"targets": {"A": 0.95}})
    code, output = run_cli("check", str(path))
    assert code == 2, output
    assert f"{table}.csv" in output
    for text in expected:
        assert text in output, output


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"service": {"targets": {"D": 0.9}}}, ("line", "service.targets.D", "unknown class 'D'")),
        ({"service": {"targets": {"A": 1.2}}}, ("line", "service.targets.A", "less than 1")),
        ({"service": {"targets": {"A": 0}}}, ("line", "service.targets.A", "greater than 0")),
        ({"service": {"default": 1}}, ("line", "service.default", "less than 1")),
        (
            {"classification": {"abc": {"A": 0.8, "B": 0.3, "C": 0.1}}},
            ("line", "classification", "add up to 1"),
        ),
        ({"classification": {"xyz": {"X": 2, "Y": 1}}}, ("line", "classification", "X <= Y")),
        ({"kpis": {"valuation": "lifo"}}, ("line", "kpis.valuation", "fifo")),
    ],
)
def test_bad_service_yaml(tmp_path: Path, section: dict[str, Any], expected: tuple[str, ...]) -> None:
    path = scenario_with(tmp_path, ONE_SKU, 4, **section)
    code, output = run_cli("check", str(path))
    assert code == 2, output
    assert "scenario.yaml" in output
    for text in expected:
        assert text in output, output


def test_classify_command(tmp_path: Path) -> None:
    path = scenario_with(tmp_path, THREE_SKUS, 4, classification={"abc": {"A": 0.5, "B": 0.3, "C": 0.2}})
    code, output = run_cli("classify", str(path), "--format", "csv")
    assert code == 0, output
    table = pd.read_csv(pd.io.common.StringIO(output))
    assert table.set_index("sku")["abc"].to_dict() == {"A": "A", "B": "B", "C": "C"}
    code, output = run_cli("classify", str(path), "--by", "sku-warehouse", "--format", "csv")
    table = pd.read_csv(pd.io.common.StringIO(output))
    assert set(zip(table["sku"], table["warehouse"], strict=True)) == {
        ("A", "W1"),
        ("B", "W1"),
        ("C", "W1"),
        ("C", "W2"),
    }
    code, output = run_cli("classify", str(tmp_path / "missing.yaml"))
    assert code == 2


# --------------------------------------------------------------------------------------------------
# differential: the model's objective against the re-simulation of its own plan
# --------------------------------------------------------------------------------------------------


def random_instance(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    skus = ["A", "B"]
    warehouses = ["W1", "W2"]
    periods = 5
    return {
        "skus": [
            {
                "sku": s,
                "unit_volume": 1.0,
                "holding_cost": float(rng.uniform(0.2, 2)),
                "shortage_cost": float(rng.uniform(5, 40)),
            }
            for s in skus
        ],
        "warehouses": [{"warehouse": w, "capacity": float(rng.integers(40, 200))} for w in warehouses],
        "suppliers": [
            {"supplier": "S1", "order_cost": float(rng.uniform(0, 30)), "min_order_value": 0.0},
            {"supplier": "S2", "order_cost": float(rng.uniform(0, 30)), "min_order_value": 0.0},
        ],
        "offers": [
            {
                "supplier": sup,
                "sku": s,
                "unit_price": float(rng.uniform(1, 5)),
                "moq": int(rng.integers(0, 15)),
                "order_multiple": int(rng.choice([1, 5])),
                "lead_time": int(rng.integers(0, 2)),
            }
            for sup in ("S1", "S2")
            for s in skus
        ],
        "transfers": [{"from_warehouse": "W1", "to_warehouse": "W2", "lead_time": 1, "cost_per_unit": 0.2}],
        "inventory": [
            {"sku": s, "warehouse": w, "on_hand": float(rng.integers(0, 20))}
            for s in skus
            for w in warehouses
        ],
        "demand": [
            {
                "sku": s,
                "warehouse": w,
                "period": t,
                "quantity": float(rng.integers(0, 15)),
                "std": float(rng.uniform(0, 6)),
            }
            for s in skus
            for w in warehouses
            for t in range(periods)
        ],
        "budget": [{"period": t, "amount": float(rng.uniform(30, 120))} for t in range(periods)],
    }


@pytest.mark.parametrize("seed", range(6))
def test_model_objective_equals_resimulated_cost_with_safety_stock(tmp_path: Path, seed: int) -> None:
    """Random small instances with MOQ, packs, budget, storage and transfers, solved to optimality:
    the MILP's own objective (with its shortfall variables) equals the cost of re-simulating its plan,
    the plan passes the independent check, and its penalty is recomputed from the files."""
    summary, _ = solve_with_service(
        tmp_path, random_instance(seed), 5, service={"targets": {"A": 0.95, "B": 0.9, "C": 0.85}}
    )
    assert summary["status"] == "optimal"
    assert summary["solver_objective"] == pytest.approx(summary["objective"], rel=1e-6, abs=1e-6)


def test_safety_stock_where_nothing_moves_is_costed_by_model_and_resimulation(tmp_path: Path) -> None:
    """A safety-stock row for a SKU-warehouse without demand, stock or supply: the shortfall is
    unavoidable, and the model counts it exactly as the re-simulation does (objective = bound)."""
    tables = {
        **ONE_SKU,
        "warehouses": [{"warehouse": "W1", "capacity": 1e6}, {"warehouse": "W2", "capacity": 1e6}],
        "lanes": [{"supplier": "S1", "warehouse": "W1", "transit_time": 0, "cost_per_unit": 0.0}],
        "safety_stock": [{"sku": "A", "warehouse": "W2", "quantity": 2}],
    }
    summary, out = solve_with_service(tmp_path, tables, 4)
    assert summary["costs"]["safety_stock"] == pytest.approx(4 * 2 * 50.5)
    assert summary["status"] == "optimal" and summary["gap"] == pytest.approx(0.0, abs=1e-9)
    reasons = pd.read_csv(out / "safety_stock_shortfalls.csv").set_index("warehouse")["reason"]
    assert set(reasons["W2"]) == {"lead time"}


def test_explanations_name_the_safety_stock(tmp_path: Path) -> None:
    """Stock is issued first-in first-out, so the 12 units left at the end are the last line's 10 and
    2 of the one before: both explanations say they are kept as safety stock."""
    from optistock.postprocess.explain import explain_lines
    from optistock.postprocess.simulate import evaluate_plan

    _, out = solve_with_service(tmp_path, ONE_SKU, 4, service={"targets": {"A": 0.95}})
    problem = load_problem(out / "inputs" / "scenario.yaml")
    orders = pd.read_csv(out / "orders.csv")
    transfers = pd.read_csv(out / "transfer_plan.csv")
    explained = explain_lines(problem, evaluate_plan(problem, orders, transfers)).set_index("order_period")
    assert explained["leftover_units"].to_dict() == {0: 0, 1: 2, 2: 10}
    assert "safety stock" not in explained.loc[0, "bound_by"]
    for period in (1, 2):
        assert "safety stock" in explained.loc[period, "bound_by"]
        assert "left at horizon end (safety stock 12)" in explained.loc[period, "explanation"]


def test_lead_time_variability_from_receipts_feeds_safety_stock(tmp_path: Path) -> None:
    """S1 delivered A after 1, 3, 1 and 3 periods: sample σL = sqrt(4/3). With d̄ 10, σd 5, L + R = 2:
    SS = 1.6449 · sqrt(2 · 25 + 100 · 4/3) = 22.27 → 23; the offers' own lead_time_std (0.1) is replaced."""
    receipts = [
        {
            "supplier": "S1",
            "sku": "A",
            "warehouse": "W1",
            "order_period": start,
            "promised_period": start + 1,
            "received_period": start + lead,
            "quantity_ordered": 10,
            "quantity_received": 10,
        }
        for start, lead in [(-10, 1), (-8, 3), (-6, 1), (-4, 3)]
    ]
    offers = [{**ONE_SKU["offers"][0], "lead_time_std": 0.1}]
    policy = policy_of(
        tmp_path, {**ONE_SKU, "offers": offers, "receipts": receipts}, service={"default": 0.95}
    )
    row = policy.loc[("A", "W1")]
    assert row["lead_time_std"] == pytest.approx(math.sqrt(4 / 3))
    assert row["lead_time_std_source"] == "receipts"
    assert row["safety_stock"] == math.ceil(1.644854 * math.sqrt(2 * 25 + 100 * 4 / 3))
    without = policy_of(tmp_path / "offers", {**ONE_SKU, "offers": offers}, service={"default": 0.95})
    assert without.loc[("A", "W1"), "lead_time_std_source"] == "offers"
    assert without.loc[("A", "W1"), "safety_stock"] == math.ceil(1.644854 * math.sqrt(2 * 25 + 100 * 0.01))


def test_sourcing_rules_choose_the_primary_offer(tmp_path: Path) -> None:
    """A preferred supplier's offer is primary even when dearer; a switched-off offer is no option."""
    tables = {
        **ONE_SKU,
        "suppliers": [
            {"supplier": "S1", "order_cost": 10.0, "min_order_value": 0.0},
            {"supplier": "S2", "order_cost": 10.0, "min_order_value": 0.0},
            {"supplier": "S3", "order_cost": 10.0, "min_order_value": 0.0},
        ],
        "offers": [
            {"supplier": s, "sku": "A", "unit_price": p, "moq": 0, "order_multiple": 1, "lead_time": lt}
            for s, p, lt in [("S1", 1.0, 1), ("S2", 2.0, 3), ("S3", 0.5, 1)]
        ],
    }
    rules = [{"supplier": "S2", "sku": "A", "preferred": True}, {"supplier": "S3", "sku": "A", "off": True}]
    policy = policy_of(tmp_path, tables, service={"default": 0.95}, sourcing=rules).reset_index()
    assert policy.loc[policy["primary"], "supplier"].tolist() == ["S2"]
    assert set(policy["supplier"]) == {"S1", "S2"}
    assert policy.loc[policy["primary"], "lead_time"].tolist() == [3]


def test_penalty_stays_below_the_cheapest_channel_backorder(tmp_path: Path) -> None:
    """A marketplace whose backorders cost 2 caps the penalty at (holding 1 + 2) / 2 = 1.5, so the model
    never keeps stock and a cheap channel's backorder at once."""
    demand = [{**row, "channel": channel} for row in steady(5, 2, 4) for channel in ("web", "market")]
    tables = {
        **ONE_SKU,
        "demand": demand,
        "channels": [{"channel": "web", "shortage_cost": 100.0}, {"channel": "market", "shortage_cost": 2.0}],
    }
    problem = load_problem(scenario_with(tmp_path, tables, 4, service={"default": 0.95}))
    assert problem.shortfall_penalty["A"] == pytest.approx(1.5)
    assert problem.has_service_targets
