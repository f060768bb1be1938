"""``optistock compare``: KPIs of tiny runs whose optimal plans are known by hand, deltas, PO changes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import BASE_TABLES, write_scenario
from planning import demand_rows

from optistock.cli import main
from optistock.whatif.kpis import run_kpis

# One SKU, price 1, packs of 10, order cost 50, holding 0.1, shortage 100, 6 units on hand, demand 4 in
# each of 3 periods (21 days). The one optimal plan orders 10 in period 1 (lead time 0): stock 2, 8, 4.
TABLES: dict[str, Any] = {
    **BASE_TABLES,
    "skus": [{"sku": "A", "unit_volume": 2.0, "holding_cost": 0.1, "shortage_cost": 100.0}],
    "warehouses": [{"warehouse": "W1", "capacity": 100.0}],
    "suppliers": [{"supplier": "S1", "order_cost": 50.0, "min_order_value": 0.0}],
    "offers": [
        {"supplier": "S1", "sku": "A", "unit_price": 1.0, "moq": 0, "order_multiple": 10, "lead_time": 0}
    ],
    "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 6}],
    "demand": demand_rows("A", "W1", [4, 4, 4]),
    "budget": [{"period": t, "amount": 40.0} for t in range(3)],
}
WHAT_IF = """extends: scenario.yaml
scenarios:
  outage:
    changes:
      - supplier_outage: {supplier: S1}
  tariff:
    changes:
      - tariff: {percent: 50}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("compare")
    base = write_scenario(folder / "case", TABLES, 3, {"time_limit": 30, "mip_gap": 0.0})
    whatif = base.parent / "whatif.yaml"
    whatif.write_text(WHAT_IF, encoding="utf-8")
    runner = CliRunner()
    outs = {}
    for name, args in {
        "base": [str(base)],
        "outage": [str(whatif), "--scenario", "outage"],
        "tariff": [str(whatif), "--scenario", "tariff"],
    }.items():
        outs[name] = folder / name
        result = runner.invoke(main, ["run", *args, "--out", str(outs[name])])
        assert result.exit_code == 0, result.output
    return outs


def test_kpis_of_the_base_plan_by_hand(runs: dict[str, Path]) -> None:
    kpis = run_kpis(runs["base"])
    assert kpis["total_cost"] == pytest.approx(10 + 50 + 0.1 * (2 + 8 + 4))
    assert kpis["cost_holding"] == pytest.approx(1.4)
    assert kpis["purchase_spend"] == 10
    assert kpis["fill_rate"] == 1.0
    assert kpis["units_late"] == 0 and kpis["backorder_unit_periods"] == 0
    assert kpis["average_stock_value"] == pytest.approx(14 / 3)
    assert kpis["peak_stock_value"] == 8
    assert kpis["inventory_turns"] == pytest.approx(12 * (365 / 21) / (14 / 3))
    assert kpis["days_of_supply"] == pytest.approx((14 / 3) / (12 / 21))
    assert kpis["purchase_orders"] == 1 and kpis["order_lines"] == 1
    assert kpis["peak_storage_use[W1]"] == pytest.approx(8 * 2 / 100)
    assert kpis["budget_use"] == pytest.approx(10 / 120)
    assert kpis["spend[S1]"] == 10


def test_kpis_with_backorders_by_hand(runs: dict[str, Path]) -> None:
    """No supplier: stock 2, then backorders 2 and 6. Late units: min(4, 2) + min(4, 6) = 6 of 12."""
    kpis = run_kpis(runs["outage"])
    assert kpis["fill_rate"] == pytest.approx(0.5)
    assert kpis["units_late"] == 6
    assert kpis["backorder_unit_periods"] == 8
    assert kpis["end_backorder"] == 6
    assert kpis["cost_shortage"] == pytest.approx(800)
    assert kpis["average_stock_value"] == pytest.approx(2 / 3)
    assert kpis["inventory_turns"] == pytest.approx(6 * (365 / 21) / (2 / 3))
    assert kpis["purchase_orders"] == 0 and kpis["budget_use"] == 0


def test_compare_prints_deltas_and_po_changes(runs: dict[str, Path], tmp_path: Path) -> None:
    csv, excel = tmp_path / "cmp.csv", tmp_path / "cmp.xlsx"
    result = CliRunner().invoke(
        main,
        [
            "compare",
            str(runs["base"]),
            str(runs["outage"]),
            str(runs["tariff"]),
            "--csv",
            str(csv),
            "--excel",
            str(excel),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["kpi", "base", "outage", "tariff", "Δ", "outage", "Δ", "tariff"]
    assert "fill_rate" in result.stdout and "100.00%" in result.stdout and "-50.00 pp" in result.stdout
    assert "outage: removed PO-001-S1-W1  10.00 -> -  A 10" in result.stdout
    assert "tariff: changed PO-001-S1-W1  10.00 -> 15.00" in result.stdout

    table = pd.read_csv(csv, index_col="kpi")
    assert table.loc["total_cost", "Δ outage"] == pytest.approx(800.2 - 61.4)
    assert table.loc["purchase_spend", "Δ tariff"] == pytest.approx(5.0)
    assert math.isclose(table.loc["fill_rate", "Δ outage"], -0.5)
    changes = pd.read_csv(tmp_path / "cmp.po_changes.csv")
    assert changes[["run", "po_id", "change"]].values.tolist() == [
        ["outage", "PO-001-S1-W1", "removed"],
        ["tariff", "PO-001-S1-W1", "changed"],
    ]
    workbook = pd.read_excel(excel, sheet_name=None, index_col=None)
    assert set(workbook) == {"kpis", "po_changes"}
    assert workbook["kpis"].set_index("kpi").loc["total_cost", "base"] == pytest.approx(61.4)


def test_compare_of_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compare", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a run folder" in result.stderr
