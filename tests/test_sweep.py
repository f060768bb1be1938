"""``optistock sweep`` on a real ``dask.distributed`` cluster: cases, a failing case, the KPI table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import write_scenario
from test_compare import TABLES

from optistock.cli import main
from optistock.errors import InputError
from optistock.whatif.kpis import run_kpis
from optistock.whatif.sweep import AxisOrigin, parse_set_option, sweep_cases


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    return write_scenario(tmp_path / "case", TABLES, 3, {"time_limit": 30, "mip_gap": 0.0})


def test_cases_are_the_cartesian_product_with_one_change_per_kind() -> None:
    axes = {"budget.scale": [0.8, 1.0], "tariff.percent": [10], "tariff.supplier": ["S1", "S2"]}
    cases = sweep_cases(axes, {})
    assert [case.parameters for case in cases] == [
        {"budget.scale": 0.8, "tariff.percent": 10, "tariff.supplier": "S1"},
        {"budget.scale": 0.8, "tariff.percent": 10, "tariff.supplier": "S2"},
        {"budget.scale": 1.0, "tariff.percent": 10, "tariff.supplier": "S1"},
        {"budget.scale": 1.0, "tariff.percent": 10, "tariff.supplier": "S2"},
    ]
    assert cases[1].changes == [{"budget": {"scale": 0.8}}, {"tariff": {"percent": 10, "supplier": "S2"}}]
    assert cases[3].folder == "case-004_budget.scale=1.0_tariff.percent=10_tariff.supplier=S2"


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        ("budget.scale", "expected CHANGE.FIELD=VALUE"),
        ("budget.scal=1", "unknown field 'scal' of budget"),
        ("budgets.scale=1", "CHANGE one of"),
    ],
)
def test_bad_set_options(option: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        parse_set_option(option)


def test_bad_value_in_a_case_names_the_parameter() -> None:
    with pytest.raises(InputError) as caught:
        sweep_cases({"demand.scale": [1.0, -2.0]}, {"demand.scale": AxisOrigin()})
    assert "field '--set demand.scale'" in str(caught.value) and "case 2" in str(caught.value)


def test_sweep_on_a_local_cluster_reports_a_failing_case_and_writes_the_kpi_table(
    scenario: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sweep"
    # 6 units on hand of volume 2, demand 4: 2 units (volume 4) are left at the end of period 0 whatever
    # the plan, so a capacity of 3 cannot be met
    result = CliRunner().invoke(
        main,
        [
            "sweep",
            str(scenario),
            "--out",
            str(out),
            "--set",
            "warehouse_capacity.volume=100,50,3,30",
            "--workers",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert sorted(line[:5] for line in progress) == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert "3 of 4 case(s) solved" in result.stdout

    table = pd.read_csv(out / "kpis.csv")
    table["reason"] = table["reason"].fillna("")  # an empty reason reads back as NaN from CSV
    pd.testing.assert_frame_equal(table, pd.read_parquet(out / "kpis.parquet"), check_dtype=False)
    assert table["warehouse_capacity.volume"].tolist() == [100, 50, 3, 30]
    failed = table[table["case"] == 3].iloc[0]
    assert failed["status"] == "failed (exit 3)"
    assert "storage capacity: W1 in period 0 holds volume 4.000, capacity 3" in failed["reason"]
    assert not (out / "cases" / failed["folder"]).exists()
    assert f"failed: {failed['folder']}: hard constraints cannot be met" in result.stderr

    solved = table[table["case"] != 3]
    assert set(solved["status"]) == {"optimal"}
    for row in solved.to_dict("records"):
        folder = out / "cases" / row["folder"]
        summary = json.loads((folder / "summary.json").read_text())
        assert row["objective"] == pytest.approx(summary["objective"])
        assert row["total_cost"] == pytest.approx(summary["objective"])
        for component, value in summary["costs"].items():
            assert row[f"cost_{component}"] == pytest.approx(value)
        for kpi, value in run_kpis(folder).items():
            assert row[kpi] == pytest.approx(value, nan_ok=True), kpi
        assert summary["solver"]["threads"] == 1
        (change,) = summary["changes"]
        assert change["settings"] == {"volume": row["warehouse_capacity.volume"]}
        assert change["origin"].startswith("sweep case")
    # capacity 30 still holds the one optimal plan of the base (peak stock 8 × volume 2 = 16)
    assert solved["total_cost"].tolist() == pytest.approx([61.4] * 3)
    outcome = json.loads((out / "sweep.json").read_text())
    assert [case["status"] for case in outcome["cases"]] == [
        "optimal",
        "optimal",
        "failed (exit 3)",
        "optimal",
    ]


@pytest.fixture(scope="module")
def scheduler_address() -> Iterator[str]:
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def test_sweep_on_an_existing_cluster_with_yaml_axes_and_named_scenarios(
    scenario: Path, tmp_path: Path, scheduler_address: str
) -> None:
    whatif = scenario.parent / "whatif.yaml"
    whatif.write_text(
        "extends: scenario.yaml\nscenarios:\n  dear:\n    changes:\n      - tariff: {percent: 50}\n"
        "sweep:\n  demand.scale: [1.0, 2.0]\n",
        encoding="utf-8",
    )
    out = tmp_path / "sweep"
    result = CliRunner().invoke(
        main,
        ["sweep", str(whatif), "--out", str(out), "--scenario", "dear", "--scheduler", scheduler_address],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "kpis.csv")
    assert table["demand.scale"].tolist() == [1.0, 2.0]
    assert table["status"].tolist() == ["optimal", "optimal"]
    # demand ×1: one pack of 10 at price 1.5; the pack size makes the ×2 case dearer in purchases
    assert table["purchase_spend"].iloc[0] == pytest.approx(15.0)
    assert table["purchase_spend"].iloc[1] > 15.0
    summary = json.loads((out / "cases" / table["folder"].iloc[1] / "summary.json").read_text())
    assert [c["origin"] for c in summary["changes"]] == ["scenario dear", "sweep case 2"]
    assert summary["scenario"] == "test+dear"


def test_sweep_with_bad_input_writes_nothing(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    result = CliRunner().invoke(
        main,
        [
            "sweep",
            str(scenario),
            "--out",
            str(out),
            "--set",
            "tariff.percent=5",
            "--set",
            "tariff.supplier=S1,S9",
        ],
    )
    assert result.exit_code == 2
    assert "unknown supplier 'S9'" in result.stderr
    assert not out.exists()
