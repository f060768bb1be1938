"""Scenario files with extends, changes and named scenarios: loading, bad input, and solved plans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import write_scenario
from independent_check import check_run
from test_cli import PERIODS, TABLES

from optistock.cli import main
from optistock.pipeline import run_scenario
from optistock.postprocess.simulate import evaluate_plan
from optistock.preprocess.data import load_problem
from optistock.whatif.scenario_file import load_scenario_file, schema_text

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write_scenario(tmp_path / "case", TABLES, PERIODS, {"time_limit": 30, "mip_gap": 0.0})


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def child(base: Path, text: str, name: str = "whatif.yaml") -> Path:
    path = base.parent / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_extends_inherits_and_overrides(base: Path) -> None:
    path = child(
        base,
        "extends: ../scenario.yaml\nname: tighter\nsolver:\n  time_limit: 7\n"
        "changes:\n  - budget: {scale: 0.5}\n",
        name="sub/whatif.yaml",
    )
    setup = load_scenario_file(path)
    scenario = setup.loaded.scenario
    assert scenario.name == "tighter"
    assert scenario.solver.time_limit == 7 and scenario.solver.mip_gap == 0.0  # one key overridden
    assert scenario.horizon.periods == PERIODS
    assert setup.loaded.data_dir == (base.parent / "data").resolve()  # relative to the file that says it
    assert setup.files == [base, path]
    assert load_problem(path).budget.tolist() == [400.0] * PERIODS


def test_changes_of_a_chain_apply_root_first_then_named_scenarios_in_order(base: Path) -> None:
    child(base, "extends: scenario.yaml\nchanges:\n  - budget: {amount: 100}\n", name="middle.yaml")
    path = child(
        base,
        "extends: middle.yaml\nchanges:\n  - budget: {scale: 3}\nscenarios:\n"
        "  half:\n    changes:\n      - budget: {scale: 0.5}\n"
        "  flat:\n    description: one amount\n    changes:\n      - budget: {amount: 50}\n",
    )
    assert load_problem(path).budget.tolist() == [300.0] * PERIODS
    assert load_problem(path, ["half", "flat"]).budget.tolist() == [50.0] * PERIODS
    problem = load_problem(path, ["flat", "half"])
    assert problem.budget.tolist() == [25.0] * PERIODS
    assert problem.scenario.name == "test+flat+half"
    assert [c["origin"] for c in problem.changes] == [
        "extends middle.yaml",
        "base",
        "scenario flat",
        "scenario half",
    ]
    assert problem.changes[0]["source"] == f"{base.parent / 'middle.yaml'}:3"
    assert problem.changes[3]["source"] == f"{path}:7"


BAD_CHILDREN: list[Any] = [
    pytest.param(
        "extends: scenario.yaml\nchanges:\n  - demnd: {scale: 2}\n",
        3,
        "changes.0.demnd",
        "unknown key",
        id="kind",
    ),
    pytest.param(
        "extends: scenario.yaml\nchanges:\n  - demand:\n      scale: 2\n      skus: [A]\n",
        5,
        "changes.0.demand.skus",
        "unknown key",
        id="field",
    ),
    pytest.param(
        "extends: scenario.yaml\nchanges:\n  - demand: {scale: -1}\n",
        3,
        "changes.0.demand.scale",
        "-1",
        id="negative",
    ),
    pytest.param(
        "extends: scenario.yaml\nchanges:\n  - demand: {scale: lots}\n",
        3,
        "changes.0.demand.scale",
        "lots",
        id="text",
    ),
    pytest.param(
        "extends: scenario.yaml\nchanges:\n  - demand: {scale: .nan}\n",
        3,
        "changes.0.demand.scale",
        "finite",
        id="nan",
    ),
    pytest.param(
        "extends: scenario.yaml\nchanges:\n  - budget: {scale: 1, amount: 2}\n",
        3,
        "changes.0.budget",
        "give exactly one of amount, scale, total (got amount, scale)",
        id="two-ops",
    ),
    pytest.param(
        "extends: scenario.yaml\nchanges:\n  - budget: {scale: 1}\n    tariff: {percent: 2}\n",
        3,
        "changes.0",
        "exactly one",
        id="two-kinds",
    ),
    pytest.param(
        "extends: scenario.yaml\nchanges:\n  - tariff: {percent: 5}\n"
        "  - demand:\n      scale: 2\n      sku: [A, Q]\n",
        6,
        "changes.1.demand.sku",
        "unknown sku 'Q'",
        id="unknown-sku",
    ),
    pytest.param(
        "extends: scenario.yaml\nchanges:\n  - supplier_outage:\n      supplier: S9\n",
        4,
        "changes.0.supplier_outage.supplier",
        "unknown supplier 'S9'",
        id="unknown-supplier",
    ),
    pytest.param(
        "extends: scenario.yaml\nchanges:\n  - remove_warehouse: {warehouse: W7}\n",
        3,
        "changes.0.remove_warehouse.warehouse",
        "unknown warehouse 'W7'",
        id="unknown-warehouse",
    ),
    pytest.param(
        "extends: scenario.yaml\nchanges:\n  - replace_table: {table: orders, file: x.csv}\n",
        3,
        "changes.0.replace_table.table",
        "orders",
        id="unknown-table",
    ),
    pytest.param(
        "extends: scenario.yaml\nchanges:\n  - replace_table:\n      table: demand\n      file: none.csv\n",
        5,
        "changes.0.replace_table.file",
        "not found",
        id="missing-file",
    ),
    pytest.param(
        "extends: scenario.yaml\nscenarios:\n  s:\n    changes:\n      - lead_time: {add: 1, supplier: X}\n",
        5,
        "scenarios.s.changes.0.lead_time.supplier",
        "unknown supplier 'X'",
        id="in-named-scenario",
    ),
    pytest.param("extends: scenario.yaml\ncolour: red\n", 2, "colour", "unknown key", id="unknown-top-key"),
    pytest.param("extends: nowhere.yaml\n", 1, "extends", "not found", id="missing-extended-file"),
    pytest.param(
        "extends: whatif.yaml\n", 1, "extends", "circular extends: whatif.yaml -> whatif.yaml", id="self"
    ),
    pytest.param(
        "extends: scenario.yaml\nsweep:\n  budget.scal: [1]\n",
        3,
        "sweep.budget.scal",
        "unknown field",
        id="sweep",
    ),
]


@pytest.mark.parametrize(("text", "line", "field", "fragment"), BAD_CHILDREN)
def test_bad_what_if_input_names_file_line_and_field(
    base: Path, tmp_path: Path, text: str, line: int, field: str, fragment: str
) -> None:
    path = child(base, text)
    scenarios = ["s"] if "scenarios:" in text else []
    args = ["run", path, "--out", tmp_path / "out", *(["--scenario", *scenarios] if scenarios else [])]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"error: {path}, line {line}, field '{field}'"), message
    assert fragment in message
    assert not (tmp_path / "out").exists()


def test_circular_extends_names_the_cycle(base: Path) -> None:
    child(base, "extends: b.yaml\n", name="a.yaml")
    path = child(base, "extends: a.yaml\nname: b\n", name="b.yaml")
    result = invoke("check", path)
    assert result.exit_code == 2
    assert "circular extends: b.yaml -> a.yaml -> b.yaml" in result.stderr
    assert "a.yaml, line 1, field 'extends'" in result.stderr


def test_error_in_an_extended_file_is_located_there(base: Path) -> None:
    child(base, "extends: scenario.yaml\nchanges:\n  - tariff: {percent: ten}\n", name="middle.yaml")
    path = child(base, "extends: middle.yaml\n")
    result = invoke("check", path)
    assert result.exit_code == 2
    assert f"{base.parent / 'middle.yaml'}, line 3, field 'changes.0.tariff.percent'" in result.stderr


def test_missing_core_key_in_chain_is_reported(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "parent.yaml").write_text("extends: child.yaml\n", encoding="utf-8")
    (tmp_path / "root.yaml").write_text("name: x\ndata: data\n", encoding="utf-8")
    path = tmp_path / "leaf.yaml"
    path.write_text("extends: root.yaml\n", encoding="utf-8")
    result = invoke("check", path)
    assert result.exit_code == 2
    assert "field 'horizon'" in result.stderr and "required key is missing" in result.stderr


def test_unknown_named_scenario(base: Path, tmp_path: Path) -> None:
    path = child(base, "extends: scenario.yaml\nscenarios:\n  spike:\n    changes: []\n")
    result = invoke("run", path, "--out", tmp_path / "out", "--scenario", "spike,slump")
    assert result.exit_code == 2
    assert "unknown scenario 'slump' (defined: spike)" in result.stderr
    assert "field '--scenario'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_scenarios_list(base: Path) -> None:
    path = child(
        base,
        "extends: scenario.yaml\nchanges:\n  - tariff: {percent: 15, supplier: S1}\nscenarios:\n"
        "  spike:\n    description: demand +30 %\n    changes:\n      - demand: {scale: 1.3}\n"
        "sweep:\n  budget.scale: [0.8, 1.0]\n",
    )
    result = invoke("scenarios", "list", path)
    assert result.exit_code == 0, result.output
    assert f"change: tariff: {{percent: 15.0, supplier: S1}}  [{path}:3]" in result.stdout
    assert "  spike: demand +30 %\n    - demand: {scale: 1.3}" in result.stdout
    assert "budget.scale = 0.8, 1.0" in result.stdout


def test_published_schema_is_up_to_date() -> None:
    committed = (REPO / "scenarios" / "scenario.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(), "run: optistock scenarios schema --out scenarios/scenario.schema.json"
    schema = json.loads(committed)
    assert schema["additionalProperties"] is False
    assert {"extends", "changes", "scenarios", "sweep", "classes", "data", "horizon"} <= set(
        schema["properties"]
    )
    change = schema["$defs"]["Change"]
    assert change["additionalProperties"] is False
    assert "supplier_outage" in change["properties"]
    assert change["properties"]["tariff"]["description"]


def test_supplier_outage_plan(base: Path, tmp_path: Path) -> None:
    """S1 is the cheaper supplier of A; from period 2 on only S2 may be used, and the plan says why."""
    path = child(
        base,
        "extends: scenario.yaml\nscenarios:\n  outage:\n    changes:\n"
        "      - supplier_outage: {supplier: S1, from_period: 2}\n",
    )
    out = tmp_path / "out"
    before = run_scenario(base, tmp_path / "before")
    result = run_scenario(path, out, ["outage"])
    orders = pd.read_csv(out / "orders.csv")
    assert not ((orders["supplier"] == "S1") & (orders["order_period"] >= 2)).any()
    assert (before.evaluation.orders["supplier"] == "S1").any()
    check = check_run(out, PERIODS)  # the independent checker reads inputs/supplier_capacity.csv too
    assert check.violations == []
    assert result.summary["objective"] == pytest.approx(check.total)
    assert result.summary["objective"] >= before.summary["objective"] - 1e-6  # fewer options never help
    assert [c["kind"] for c in result.summary["changes"]] == ["supplier_outage"]
    record = json.loads((out / "inputs" / "changes.json").read_text())
    assert record["changes"][0]["effect"] == "supplier S1 takes no orders in periods 2..5"
    rerun = run_scenario(out / "inputs" / "scenario.yaml")
    assert rerun.summary["objective"] == pytest.approx(result.summary["objective"])
    assert rerun.summary["changes"] == []


def test_re_simulation_rejects_orders_in_an_outage(base: Path) -> None:
    path = child(
        base, "extends: scenario.yaml\nchanges:\n  - supplier_outage: {supplier: S2, from_period: 1}\n"
    )
    problem = load_problem(path)
    orders = pd.DataFrame(
        [("S2", "A", "W1", 0, 5), ("S2", "A", "W1", 1, 5)],
        columns=["supplier", "sku", "warehouse", "order_period", "quantity"],
    )
    transfers = pd.DataFrame(columns=["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"])
    evaluation = evaluate_plan(problem, orders, transfers)
    assert evaluation.violations == ["supplier capacity: S2 in period 1 ordered 5 units, capacity 0"]


def test_supplier_capacity_table_in_the_data_folder(tmp_path: Path) -> None:
    """The per-period capacity table is part of the input contract, not only of what-if changes."""
    tables = {**TABLES, "supplier_capacity": [{"supplier": "S1", "period": 0, "capacity": 30}]}
    path = write_scenario(tmp_path / "case", tables, PERIODS, {"time_limit": 30, "mip_gap": 0.0})
    result = run_scenario(path, tmp_path / "out")
    orders = result.evaluation.orders
    assert orders.loc[(orders["supplier"] == "S1") & (orders["order_period"] == 0), "quantity"].sum() <= 30
    assert check_run(tmp_path / "out", PERIODS).violations == []


@pytest.mark.parametrize("command", ["list", "schema"])
def test_scenarios_subcommands_have_help_with_an_example(command: str) -> None:
    result = invoke("scenarios", command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output and "Exit codes" in result.output


def test_replacement_table_with_a_missing_column_is_located_in_its_file(base: Path) -> None:
    (base.parent / "peak.csv").write_text("sku,warehouse,period\nA,W1,0\n", encoding="utf-8")
    path = child(
        base, "extends: scenario.yaml\nchanges:\n  - replace_table: {table: demand, file: peak.csv}\n"
    )
    result = invoke("check", path)
    assert result.exit_code == 2
    assert f"error: {base.parent / 'peak.csv'}, line 1, field 'quantity': missing column" in result.stderr


def test_bad_value_in_a_yaml_sweep_axis_names_its_line(base: Path, tmp_path: Path) -> None:
    path = child(
        base, "extends: scenario.yaml\nsweep:\n  budget.scale: [1.0, 0.9]\n  demand.scale: [1.0, -3]\n"
    )
    result = invoke("sweep", path, "--out", tmp_path / "sweep")
    assert result.exit_code == 2
    assert f"error: {path}, line 4, field 'sweep.demand.scale': case 2: " in result.stderr
    assert not (tmp_path / "sweep").exists()


def test_class_with_an_unknown_sku(base: Path) -> None:
    path = child(
        base,
        "extends: scenario.yaml\nclasses:\n  fast: [A, Z]\nchanges:\n  - demand: {scale: 2, class: fast}\n",
    )
    result = invoke("check", path)
    assert result.exit_code == 2
    assert f"{path}, line 5, field 'changes.0.demand.class': unknown sku 'Z'" in result.stderr


def test_check_with_named_scenarios_lists_the_changes(base: Path) -> None:
    path = child(
        base, "extends: scenario.yaml\nscenarios:\n  dear:\n    changes:\n      - tariff: {percent: 10}\n"
    )
    result = invoke("check", path, "--scenario", "dear")
    assert result.exit_code == 0, result.output
    assert f"change (scenario dear, {path}:5): prices +10 % on 3 offers and 1 price breaks" in result.stderr


def test_shipped_scenario_files_validate_against_the_published_schema() -> None:
    """What editors check with the schema agrees with what optistock accepts."""
    import jsonschema
    from ruamel.yaml import YAML

    schema = json.loads((REPO / "scenarios" / "scenario.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    files = sorted((REPO / "scenarios" / "demo").glob("*.yaml"))
    assert len(files) >= 8
    for path in files:
        document = json.loads(
            json.dumps(YAML(typ="safe").load(path.read_text(encoding="utf-8")), default=str)
        )
        assert list(validator.iter_errors(document)) == [], path.name
    bad = {"extends": "base.yaml", "changes": [{"demand": {"scale": -1, "skus": ["A"]}}], "colour": "red"}
    messages = sorted(error.message for error in validator.iter_errors(bad))
    assert any("colour" in message for message in messages)
    assert any("-1" in message for message in messages) or any("skus" in message for message in messages)
    two_kinds = {"changes": [{"budget": {"scale": 1.0}, "tariff": {"percent": 5}}]}
    assert list(validator.iter_errors(two_kinds)), "a change has exactly one key"


def test_outage_over_the_whole_horizon_equals_removing_the_suppliers_offers(
    base: Path, tmp_path: Path
) -> None:
    """Differential: the per-period capacity of an outage against the same supplier without offers."""
    path = child(base, "extends: scenario.yaml\nchanges:\n  - supplier_outage: {supplier: S1}\n")
    outage = run_scenario(path, tmp_path / "outage")
    tables = {**TABLES, "offers": [o for o in TABLES["offers"] if o["supplier"] != "S1"], "price_breaks": []}
    removed = run_scenario(
        write_scenario(tmp_path / "removed", tables, PERIODS, {"time_limit": 30, "mip_gap": 0.0})
    )
    assert outage.summary["status"] == removed.summary["status"] == "optimal"
    assert outage.summary["objective"] == pytest.approx(removed.summary["objective"])
    assert set(outage.evaluation.orders["supplier"]) <= {"S2"}
    assert check_run(tmp_path / "outage", PERIODS).violations == []


def test_inputs_of_a_run_with_every_kind_of_change_reproduce_it(base: Path, tmp_path: Path) -> None:
    (base.parent / "stock.csv").write_text(
        "sku,warehouse,on_hand\nA,W1,40\nB,W1,5\nA,W2,3\n", encoding="utf-8"
    )
    path = child(
        base,
        "extends: scenario.yaml\nclasses:\n  main: [A]\nchanges:\n"
        "  - demand: {scale: 1.2, class: main, periods: [1, 4]}\n"
        "  - lead_time: {add: 1, sku: B}\n"
        "  - supplier_outage: {supplier: S2, from_period: 4}\n"
        "  - supplier_capacity: {supplier: S1, units: 150, from_period: 1, to_period: 2}\n"
        "  - tariff: {percent: 10, sku: A}\n"
        "  - budget: {total: 3000}\n"
        "  - warehouse_capacity: {warehouse: W2, scale: 0.5}\n"
        "  - remove_transfer: {from_warehouse: W2, to_warehouse: W1}\n"
        "  - replace_table: {table: inventory, file: stock.csv}\n",
    )
    out = tmp_path / "out"
    result = run_scenario(path, out)
    assert [c["kind"] for c in result.summary["changes"]] == [
        "demand",
        "lead_time",
        "supplier_outage",
        "supplier_capacity",
        "tariff",
        "budget",
        "warehouse_capacity",
        "remove_transfer",
        "replace_table",
    ]
    check = check_run(out, PERIODS)
    assert check.violations == []
    assert result.summary["objective"] == pytest.approx(check.total)
    rerun = run_scenario(out / "inputs" / "scenario.yaml", tmp_path / "rerun")
    assert rerun.summary["objective"] == pytest.approx(result.summary["objective"])
    for name in ("orders.csv", "transfer_plan.csv", "inventory_plan.csv"):
        assert (out / name).read_text() == (tmp_path / "rerun" / name).read_text(), name
