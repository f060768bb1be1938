"""The ``optistock`` command: outputs, exit codes, determinism, re-running a plan from its inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import BASE_TABLES, write_scenario
from independent_check import check_run
from planning import demand_rows

from optistock.cli import main
from optistock.postprocess.simulate import INVENTORY_COLUMNS, ORDER_COLUMNS, PO_COLUMNS, TRANSFER_COLUMNS

TABLES = {
    **BASE_TABLES,
    "skus": [
        {"sku": "A", "unit_volume": 1.0, "holding_cost": 0.5, "shortage_cost": 20.0},
        {"sku": "B", "unit_volume": 2.0, "holding_cost": 0.2, "shortage_cost": 15.0},
    ],
    "warehouses": [{"warehouse": "W1", "capacity": 500.0}, {"warehouse": "W2", "capacity": 300.0}],
    "suppliers": [
        {"supplier": "S1", "order_cost": 40.0, "min_order_value": 100.0, "capacity": 200},
        {"supplier": "S2", "order_cost": 25.0, "min_order_value": 0.0, "capacity": ""},
    ],
    "offers": [
        {"supplier": "S1", "sku": "A", "unit_price": 4.0, "moq": 20, "order_multiple": 10, "lead_time": 1},
        {"supplier": "S2", "sku": "A", "unit_price": 4.4, "moq": 0, "order_multiple": 1, "lead_time": 0},
        {"supplier": "S1", "sku": "B", "unit_price": 9.0, "moq": 0, "order_multiple": 6, "lead_time": 1},
    ],
    "price_breaks": [{"supplier": "S1", "sku": "A", "min_quantity": 100, "unit_price": 3.6}],
    "transfers": [
        {"from_warehouse": "W1", "to_warehouse": "W2", "lead_time": 1, "cost_per_unit": 0.3},
        {"from_warehouse": "W2", "to_warehouse": "W1", "lead_time": 1, "cost_per_unit": 0.3},
    ],
    "inventory": [
        {"sku": "A", "warehouse": "W1", "on_hand": 30},
        {"sku": "B", "warehouse": "W2", "on_hand": 12},
    ],
    "open_orders": [{"supplier": "S2", "sku": "B", "warehouse": "W1", "arrival_period": 1, "quantity": 10}],
    "budget": [{"period": t, "amount": 800.0} for t in range(6)],
    "demand": demand_rows("A", "W1", [10, 15, 20, 15, 10, 25])
    + demand_rows("A", "W2", [5, 5, 10, 5, 5, 5])
    + demand_rows("B", "W1", [3, 4, 5, 4, 3, 6])
    + demand_rows("B", "W2", [2, 2, 2, 2, 2, 2]),
}
PERIODS = 6


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    return write_scenario(tmp_path / "case", TABLES, PERIODS, {"time_limit": 30, "mip_gap": 0.0})


def run(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def test_run_writes_every_output_with_the_contract_columns(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    result = run("run", str(scenario), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "optimal" in result.stdout
    expected = {
        "orders.csv": ORDER_COLUMNS,
        "purchase_orders.csv": PO_COLUMNS,
        "transfer_plan.csv": TRANSFER_COLUMNS,
        "inventory_plan.csv": INVENTORY_COLUMNS,
    }
    for name, columns in expected.items():
        assert list(pd.read_csv(out / name).columns) == columns, name
    summary = json.loads((out / "summary.json").read_text())
    for key in ("status", "objective", "best_bound", "gap", "costs", "timings", "solver"):
        assert key in summary
    assert set(summary["timings"]) >= {"load", "build", "solve", "write"}
    assert summary["solver"]["name"] == "highs" and summary["solver"]["version"]
    check = check_run(out, PERIODS)
    assert check.violations == []
    assert summary["objective"] == pytest.approx(check.total, rel=1e-9)
    orders = pd.read_csv(out / "orders.csv")
    assert (orders["quantity"] == orders["quantity"].round()).all()
    assert orders["line_value"].to_numpy() == pytest.approx(
        (orders["quantity"] * orders["unit_price"]).to_numpy()
    )
    pos = pd.read_csv(out / "purchase_orders.csv").set_index("po_id")
    assert pos["lines"].sum() == len(orders)
    assert pos["total_value"].to_dict() == pytest.approx(
        orders.groupby("po_id")["line_value"].sum().to_dict()
    )


def test_same_inputs_give_the_same_plan_and_inputs_folder_reruns_it(scenario: Path, tmp_path: Path) -> None:
    first, second, rerun = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert run("run", str(scenario), "--out", str(first)).exit_code == 0
    assert run("run", str(scenario), "--out", str(second)).exit_code == 0
    assert run("run", str(first / "inputs" / "scenario.yaml"), "--out", str(rerun)).exit_code == 0
    for name in ("orders.csv", "transfer_plan.csv", "inventory_plan.csv"):
        assert (first / name).read_text() == (second / name).read_text() == (rerun / name).read_text(), name


def test_cli_flags_override_solver_settings(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    assert (
        run(
            "run",
            str(scenario),
            "--out",
            str(out),
            "--time-limit",
            "12",
            "--mip-gap",
            "0.02",
            "--threads",
            "2",
        ).exit_code
        == 0
    )
    solver = json.loads((out / "summary.json").read_text())["solver"]
    assert (solver["time_limit"], solver["mip_gap"], solver["threads"]) == (12.0, 0.02, 2)
    resolved = (out / "inputs" / "scenario.yaml").read_text()
    assert "time_limit: 12" in resolved


@pytest.mark.parametrize(("flag", "value"), [("--time-limit", "-5"), ("--mip-gap", "2"), ("--threads", "0")])
def test_out_of_range_solver_flags_are_bad_input(
    scenario: Path, tmp_path: Path, flag: str, value: str
) -> None:
    out = tmp_path / "plan"
    result = run("run", str(scenario), "--out", str(out), flag, value)
    assert result.exit_code == 2
    assert flag in result.stderr
    assert not out.exists()


def test_parquet_tables_give_the_same_plan_as_csv(scenario: Path, tmp_path: Path) -> None:
    data = scenario.parent / "data"
    parquet_case = tmp_path / "parquet"
    (parquet_case / "data").mkdir(parents=True)
    for csv_file in data.glob("*.csv"):
        frame = pd.read_csv(csv_file)
        frame.to_parquet(parquet_case / "data" / f"{csv_file.stem}.parquet", index=False)
    (parquet_case / "scenario.yaml").write_text(scenario.read_text())
    assert run("run", str(scenario), "--out", str(tmp_path / "from_csv")).exit_code == 0
    assert (
        run("run", str(parquet_case / "scenario.yaml"), "--out", str(tmp_path / "from_parquet")).exit_code
        == 0
    )
    assert (tmp_path / "from_csv" / "orders.csv").read_text() == (
        tmp_path / "from_parquet" / "orders.csv"
    ).read_text()


def test_bad_input_leaves_an_existing_output_folder_untouched(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    assert run("run", str(scenario), "--out", str(out)).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    (scenario.parent / "data" / "skus.csv").write_text(
        "sku,unit_volume,holding_cost,shortage_cost\nA,x,1,1\n"
    )
    result = run("run", str(scenario), "--out", str(out))
    assert result.exit_code == 2
    assert "skus.csv" in result.stderr and "line 2" in result.stderr and "unit_volume" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_infeasible_inputs_exit_3_with_the_limit_named(tmp_path: Path) -> None:
    tables = {**TABLES, "inventory": [{"sku": "A", "warehouse": "W2", "on_hand": 400}], "transfers": []}
    path = write_scenario(tmp_path / "case", tables, PERIODS)
    result = run("run", str(path), "--out", str(tmp_path / "plan"))
    assert result.exit_code == 3
    assert "storage capacity" in result.stderr and "W2" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "plan").exists()


def test_every_command_has_help_with_an_example_and_the_exit_codes() -> None:
    import click

    def paths(group: click.Group, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
        found = []
        for name, command in group.commands.items():
            found.append((*prefix, name))
            if isinstance(command, click.Group):
                found += paths(command, (*prefix, name))
        return found

    commands = paths(main, ())
    assert ("po", "approve") in commands and ("po", "export") in commands
    for command in commands:
        result = run(*command, "--help")
        assert result.exit_code == 0
        assert "Example" in result.output, command
        assert "Exit codes" in result.output, command
    assert "Exit codes" in run("--help").output
