"""The what-if examples shipped in ``scenarios/demo`` load, validate and change what they say they change.

They are not solved here (each is a 45-second demo solve); `optistock check` goes through the same
loading, change and validation path as `optistock run`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from optistock.cli import main
from optistock.preprocess.data import ProblemData, load_problem
from optistock.whatif.scenario_file import load_scenario_file

DEMO = Path(__file__).resolve().parents[1] / "scenarios" / "demo"
STANDALONE = ["demand-spike", "supplier-outage", "budget-cut", "lead-time-shock", "tariff"]


@pytest.fixture(scope="module")
def base_problem() -> ProblemData:
    return load_problem(DEMO / "base.yaml")


@pytest.mark.parametrize("name", STANDALONE)
def test_standalone_what_if_files_check_and_match_the_named_scenarios(name: str) -> None:
    result = CliRunner().invoke(main, ["check", str(DEMO / f"{name}.yaml")])
    assert result.exit_code == 0, result.output
    standalone = load_problem(DEMO / f"{name}.yaml")
    named = load_problem(DEMO / "whatif.yaml", [name])
    assert [c["settings"] for c in standalone.changes] == [c["settings"] for c in named.changes]
    for table, frame in standalone.tables.items():
        assert frame.equals(named.tables[table]), table


def test_every_named_scenario_of_whatif_yaml_checks() -> None:
    setup = load_scenario_file(DEMO / "whatif.yaml")
    assert set(STANDALONE) <= set(setup.scenarios)
    for name in setup.scenarios:
        result = CliRunner().invoke(main, ["check", str(DEMO / "whatif.yaml"), "--scenario", name])
        assert result.exit_code == 0, (name, result.output)


def test_the_examples_change_what_they_describe(base_problem: ProblemData) -> None:
    spike = load_problem(DEMO / "demand-spike.yaml")
    assert spike.demand.sum() > base_problem.demand.sum()
    assert spike.demand.xs(0, level="period").sum() == base_problem.demand.xs(0, level="period").sum()
    outage = load_problem(DEMO / "supplier-outage.yaml")
    assert [outage.supplier_capacity_in("SUP-03", t) for t in (5, 6, 12, 13)] == [20000, 0, 0, 20000]
    cut = load_problem(DEMO / "budget-cut.yaml")
    assert cut.budget.sum() == pytest.approx(0.8 * base_problem.budget.sum())
    shock = load_problem(DEMO / "lead-time-shock.yaml")
    difference = shock.offers["lead_time"] - base_problem.offers["lead_time"]
    assert set(difference.xs("SUP-04", level="supplier")) == {2}
    assert set(difference.drop("SUP-04", level="supplier")) == {0}
    tariff = load_problem(DEMO / "tariff.yaml")
    ratio = tariff.offers["unit_price"] / base_problem.offers["unit_price"]
    assert ratio.xs("SUP-01", level="supplier").round(12).unique().tolist() == [1.15]


def test_sweep_example_defines_eight_cases() -> None:
    setup = load_scenario_file(DEMO / "sweep.yaml")
    assert setup.sweep == {"budget.scale": [0.8, 0.9, 1.0, 1.1], "demand.scale": [1.0, 1.2]}


def test_service_example_sets_safety_stock_by_class(base_problem: ProblemData) -> None:
    """Every SKU-warehouse with demand gets its class's target; A items get the highest safety stock
    factor; the base scenario has none."""
    assert not base_problem.has_service_targets
    service = load_problem(DEMO / "service.yaml")
    policy = service.stock_policy[service.stock_policy["primary"]]
    classes = service.classes[service.classes["warehouse"] == "*"].set_index("sku")["abc"]
    expected = policy["sku"].map(classes).map({"A": 0.98, "B": 0.95, "C": 0.90})
    assert (policy["service_level"].to_numpy() == expected.to_numpy()).all()
    assert service.has_service_targets and (service.safety_stock > 0).all()
    assert set(classes) == {"A", "B", "C"}
