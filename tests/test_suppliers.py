"""Supplier reliability from receipts: hand-computed scorecard, lead-time statistics for safety stock, dates
converted to periods, ``optistock suppliers scorecard``, and bad history input (exit 2, file, row, field)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import BASE_TABLES, write_scenario
from test_bad_input import as_parquet, assert_located, error_line, run_bad
from test_forecast import set_scenario_keys

from optistock.cli import main
from optistock.preprocess.data import load_problem
from optistock.preprocess.history import RECEIPT_COLUMNS
from optistock.suppliers import lead_time_statistics, supplier_scorecard

START = dt.date(2027, 1, 4)

TABLES: dict[str, Any] = {
    **BASE_TABLES,
    "skus": [{"sku": s, "unit_volume": 1.0, "holding_cost": 1.0, "shortage_cost": 100.0} for s in ("A", "B")],
    "warehouses": [{"warehouse": "W1", "capacity": 1e6}, {"warehouse": "W2", "capacity": 1e6}],
    "suppliers": [{"supplier": s, "order_cost": 0.0, "min_order_value": 0.0} for s in ("S1", "S2")],
    "offers": [
        {"supplier": s, "sku": i, "unit_price": 1.0, "moq": 0, "order_multiple": 1, "lead_time": 1}
        for s in ("S1", "S2")
        for i in ("A", "B")
    ],
    "demand": [{"sku": "A", "warehouse": "W1", "period": 0, "quantity": 5.0}],
}

# (supplier, sku, warehouse, ordered, promised, received, quantity ordered, quantity received)
RECEIPTS = [
    ("S1", "A", "W1", -10, -8, -8, 100, 100),  # on time, lead time 2, delay 0
    ("S1", "A", "W1", -6, -4, -3, 100, 90),  # late, lead time 3, delay 1, 90 filled
    ("S1", "A", "W2", -5, -3, -1, 50, 60),  # late, lead time 4, delay 2, over-delivery: 50 filled
    ("S1", "B", "W1", -4, -2, None, 40, 0),  # never delivered: late, no lead time
    ("S2", "A", "W1", -9, -7, -8, 80, 80),  # early: on time, lead time 1, delay -1
]
COLUMNS = RECEIPT_COLUMNS


def receipts_in_periods() -> pd.DataFrame:
    frame = pd.DataFrame(RECEIPTS, columns=COLUMNS)
    frame["received_period"] = frame["received_period"].astype("Int64")
    ids = {column: object for column in ("supplier", "sku", "warehouse")}
    return frame.astype({**ids, "quantity_ordered": float, "quantity_received": float})


def as_date(period: float | None, weekday: int) -> str:
    """A day of ``period`` (weekly from START): its Monday + ``weekday`` days."""
    if period is None or pd.isna(period):
        return ""
    return (START + dt.timedelta(days=7 * int(period) + weekday)).isoformat()


def receipts_in_dates() -> pd.DataFrame:
    """The same receipts, dated on different weekdays of their periods."""
    rows = []
    for i, (s, k, w, ordered, promised, received, q_ordered, q_received) in enumerate(RECEIPTS):
        rows.append(
            {
                "supplier": s,
                "sku": k,
                "warehouse": w,
                "order_date": as_date(ordered, i % 7),
                "promised_date": as_date(promised, 6 - i % 7),
                "received_date": as_date(received, (2 * i) % 7),
                "quantity_ordered": q_ordered,
                "quantity_received": q_received,
            }
        )
    return pd.DataFrame(rows)


def test_scorecard_by_supplier_by_hand() -> None:
    table = supplier_scorecard(receipts_in_periods(), by="supplier").set_index("supplier")
    s1, s2 = table.loc["S1"], table.loc["S2"]
    assert (s1["orders"], s1["units_ordered"], s1["units_received"]) == (4, 290, 250)
    assert s1["on_time_rate"] == pytest.approx(1 / 4)
    assert s1["fill_rate"] == pytest.approx((100 + 90 + 50 + 0) / 290)
    assert s1["lead_time_mean"] == pytest.approx(3.0)  # 2, 3, 4
    assert s1["lead_time_std"] == pytest.approx(1.0)  # sample std of 2, 3, 4
    assert s1["lead_time_observations"] == 3
    assert s1["delay_mean"] == pytest.approx(1.0)
    assert (s2["orders"], s2["on_time_rate"], s2["fill_rate"], s2["lead_time_mean"]) == (1, 1.0, 1.0, 1.0)
    assert np.isnan(s2["lead_time_std"]) and s2["delay_mean"] == -1.0


def test_scorecard_by_sku_and_warehouse_by_hand() -> None:
    by_sku = supplier_scorecard(receipts_in_periods(), by="sku").set_index(["supplier", "sku"])
    assert list(by_sku.index) == [("S1", "A"), ("S1", "B"), ("S2", "A")]
    assert by_sku.loc[("S1", "A"), "fill_rate"] == pytest.approx(240 / 250)
    assert by_sku.loc[("S1", "A"), "on_time_rate"] == pytest.approx(1 / 3)
    never = by_sku.loc[("S1", "B")]
    assert (never["on_time_rate"], never["fill_rate"], never["lead_time_observations"]) == (0.0, 0.0, 0)
    assert np.isnan(never["lead_time_mean"]) and np.isnan(never["lead_time_std"])
    by_warehouse = supplier_scorecard(receipts_in_periods(), by="warehouse")
    assert len(by_warehouse) == 4
    w1 = by_warehouse.set_index(["supplier", "sku", "warehouse"]).loc[("S1", "A", "W1")]
    assert (w1["lead_time_mean"], w1["lead_time_std"]) == (2.5, pytest.approx(np.sqrt(0.5)))


@pytest.fixture
def receipts_scenario(tmp_path: Path) -> Path:
    """The receipts given as dates, with a weekly horizon starting on START."""
    path = write_scenario(tmp_path / "case", {**TABLES, "receipts": receipts_in_dates()}, 3)
    set_scenario_keys(path, horizon={"start": START.isoformat()})
    return path


def test_dates_become_the_same_periods(receipts_scenario: Path) -> None:
    problem = load_problem(receipts_scenario)
    pd.testing.assert_frame_equal(problem.receipts, receipts_in_periods())


def test_lead_time_statistics_for_safety_stock(receipts_scenario: Path) -> None:
    problem = load_problem(receipts_scenario)
    stats = lead_time_statistics(problem)
    assert stats.index.names == ["supplier", "sku"]
    assert list(stats.columns) == ["lead_time_mean", "lead_time_std", "observations"]
    assert list(stats.index) == [("S1", "A"), ("S2", "A")]  # S1/B was never delivered
    assert stats.loc[("S1", "A")].tolist() == [3.0, 1.0, 3]
    assert np.isnan(stats.loc[("S2", "A"), "lead_time_std"])
    per_warehouse = lead_time_statistics(problem, by_warehouse=True)
    assert per_warehouse.index.names == ["supplier", "sku", "warehouse"]
    assert per_warehouse.loc[("S1", "A", "W2"), "lead_time_mean"] == 4.0
    assert per_warehouse.loc[("S1", "A", "W2"), "observations"] == 1


def test_no_receipts_gives_empty_statistics(tmp_path: Path) -> None:
    problem = load_problem(write_scenario(tmp_path / "case", TABLES, 3))
    stats = lead_time_statistics(problem)
    assert stats.empty and list(stats.columns) == ["lead_time_mean", "lead_time_std", "observations"]
    assert stats.index.names == ["supplier", "sku"]


def test_run_writes_the_scorecard_and_the_resolved_receipts(receipts_scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", str(receipts_scenario), "--out", str(out)])
    assert result.exit_code == 0, result.output
    card = pd.read_csv(out / "supplier_scorecard.csv")
    assert list(card.columns[:3]) == ["supplier", "sku", "orders"]
    assert len(card) == 3
    resolved = pd.read_csv(out / "inputs" / "receipts.csv")
    assert list(resolved.columns) == COLUMNS
    assert resolved["received_period"].tolist()[:3] == [-8, -3, -1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["supplier_scorecard"]["S1"]["orders"] == 4
    assert summary["supplier_scorecard"]["S2"]["lead_time_std"] is None
    assert summary["plan_check"]["valid"]
    # the resolved inputs read back as they are (periods, no dates needed)
    again = load_problem(out / "inputs" / "scenario.yaml")
    pd.testing.assert_frame_equal(again.receipts, receipts_in_periods())


def test_without_history_tables_the_run_folder_is_unchanged(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path / "case", TABLES, 3)
    out = tmp_path / "run"
    assert CliRunner().invoke(main, ["run", str(scenario), "--out", str(out)]).exit_code == 0
    assert not (out / "supplier_scorecard.csv").exists() and not (out / "forecast.csv").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert "forecast" not in summary and "supplier_scorecard" not in summary
    assert "forecast" not in (out / "inputs" / "scenario.yaml").read_text()


# --------------------------------------------------------------------------------------------------
# optistock suppliers scorecard
# --------------------------------------------------------------------------------------------------


def test_scorecard_command_prints_the_table(receipts_scenario: Path) -> None:
    result = CliRunner().invoke(main, ["suppliers", "scorecard", str(receipts_scenario)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    s1 = next(line for line in lines if "S1" in line)
    assert "0.25" in s1 and "0.83" in s1 and "290" in s1
    assert any("S2" in line for line in lines)


def test_scorecard_command_by_sku_writes_csv(receipts_scenario: Path, tmp_path: Path) -> None:
    target = tmp_path / "card.csv"
    result = CliRunner().invoke(
        main, ["suppliers", "scorecard", str(receipts_scenario), "--by", "sku", "--csv", str(target)]
    )
    assert result.exit_code == 0, result.output
    written = pd.read_csv(target)
    expected = supplier_scorecard(receipts_in_periods(), by="sku")
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)


def test_scorecard_without_receipts_is_bad_input(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path / "case", TABLES, 3)
    result = CliRunner().invoke(main, ["suppliers", "scorecard", str(scenario)])
    assert result.exit_code == 2
    assert "no receipts table" in error_line(result)


def test_scorecard_with_bad_level_is_a_usage_error(receipts_scenario: Path) -> None:
    result = CliRunner().invoke(main, ["suppliers", "scorecard", str(receipts_scenario), "--by", "region"])
    assert result.exit_code == 2 and "region" in result.output


# --------------------------------------------------------------------------------------------------
# bad history input: exit 2, one line naming file, line (CSV) or row (Parquet) and field
# --------------------------------------------------------------------------------------------------


def receipt(**changes: Any) -> dict[str, Any]:
    row = dict(zip(COLUMNS, RECEIPTS[0], strict=True))
    return {**row, **changes}


def sale(**changes: Any) -> dict[str, Any]:
    return {"sku": "A", "warehouse": "W1", "period": -1, "quantity": 4.0, **changes}


HistoryCase = tuple[dict[str, Any], str, int, str, str]

BAD_HISTORY: list[HistoryCase] = [
    ({"receipts": [receipt(), receipt(sku="Z")]}, "receipts.csv", 3, "sku", "unknown sku 'Z'"),
    ({"receipts": [receipt(supplier="S9")]}, "receipts.csv", 2, "supplier", "unknown supplier 'S9'"),
    ({"receipts": [receipt(warehouse="W7")]}, "receipts.csv", 2, "warehouse", "unknown warehouse 'W7'"),
    (
        {"receipts": [receipt(), receipt(received_period=-11)]},
        "receipts.csv",
        3,
        "received_period",
        "received before it was ordered",
    ),
    (
        {"receipts": [receipt(promised_period=-12)]},
        "receipts.csv",
        2,
        "promised_period",
        "promised before it was ordered",
    ),
    (
        {"receipts": [receipt(received_period="", quantity_received=5)]},
        "receipts.csv",
        2,
        "received_period",
        "no received period",
    ),
    ({"receipts": [receipt(quantity_received=-1)]}, "receipts.csv", 2, "quantity_received", ">= 0"),
    ({"receipts": [receipt(quantity_ordered=0)]}, "receipts.csv", 2, "quantity_ordered", "> 0"),
    ({"receipts": [receipt(order_period=-2.5)]}, "receipts.csv", 2, "order_period", "whole number"),
    ({"sales_history": [sale(), sale(sku="Q")]}, "sales_history.csv", 3, "sku", "unknown sku 'Q'"),
    ({"sales_history": [sale(warehouse="WX")]}, "sales_history.csv", 2, "warehouse", "unknown warehouse"),
    ({"sales_history": [sale(quantity=-3)]}, "sales_history.csv", 2, "quantity", ">= 0"),
    ({"sales_history": [sale(), sale()]}, "sales_history.csv", 3, "period", "given twice; first at line 2"),
]


@pytest.mark.parametrize("tables, file, line, field, fragment", BAD_HISTORY)
def test_bad_history_rows(
    scenario_factory: Callable[..., Path],
    tables: dict[str, Any],
    file: str,
    line: int,
    field: str,
    fragment: str,
) -> None:
    message = run_bad(scenario_factory({**TABLES, **tables}, 3))
    assert_located(message, file, line=line, field=field)
    assert fragment in message


def dated_case(scenario_factory: Callable[..., Path], table: str, rows: list[dict[str, Any]]) -> Path:
    scenario = scenario_factory({**TABLES, table: rows}, 3)
    set_scenario_keys(scenario, horizon={"start": START.isoformat()})
    return scenario


def test_unparseable_date(scenario_factory: Callable[..., Path]) -> None:
    rows = [{"sku": "A", "warehouse": "W1", "date": d, "quantity": 1} for d in ("2026-12-01", "2026-13-45")]
    message = run_bad(dated_case(scenario_factory, "sales_history", rows))
    assert_located(message, "sales_history.csv", line=3, field="date")
    assert "expected a date (YYYY-MM-DD), got '2026-13-45'" in message


def test_received_date_before_order_date(scenario_factory: Callable[..., Path]) -> None:
    rows = receipts_in_dates().to_dict("records")
    rows[2]["received_date"] = "2026-01-01"
    message = run_bad(dated_case(scenario_factory, "receipts", rows))
    assert_located(message, "receipts.csv", line=4, field="received_date")
    assert "received before it was ordered" in message


def test_dates_without_horizon_start(scenario_factory: Callable[..., Path]) -> None:
    scenario = scenario_factory({**TABLES, "receipts": receipts_in_dates()}, 3)
    message = run_bad(scenario)
    assert_located(message, "receipts.csv", line=2, field="order_date")
    assert "dates need horizon.start" in message and "scenario.yaml" in message


def test_period_and_date_columns_together(scenario_factory: Callable[..., Path]) -> None:
    rows = [{**sale(), "date": "2026-12-01"}]
    message = run_bad(dated_case(scenario_factory, "sales_history", rows))
    assert_located(message, "sales_history.csv", line=1, field="date")
    assert "give either period or date, not both" in message


def test_history_without_period_or_date(scenario_factory: Callable[..., Path]) -> None:
    message = run_bad(
        scenario_factory({**TABLES, "sales_history": [{"sku": "A", "warehouse": "W1", "quantity": 1}]}, 3)
    )
    assert_located(message, "sales_history.csv", line=1, field="period")
    assert "missing column: period or date" in message


def test_bad_parquet_history_names_the_row(scenario_factory: Callable[..., Path]) -> None:
    scenario = scenario_factory(TABLES, 3)
    frame = receipts_in_periods()
    frame.loc[3, "sku"] = "NOPE"
    as_parquet(scenario, "receipts", frame)
    message = run_bad(scenario)
    assert_located(message, "receipts.parquet", row=4, field="sku")


def test_missing_demand_without_sales_history_is_still_an_error(
    scenario_factory: Callable[..., Path],
) -> None:
    scenario = scenario_factory(TABLES, 3)
    (scenario.parent / "data" / "demand.csv").unlink()
    message = run_bad(scenario)
    assert "required table 'demand' is missing: expected demand.csv or demand.parquet" in message
    assert "demand.csv" in message


def test_removing_a_warehouse_drops_its_receipts(receipts_scenario: Path) -> None:
    child = receipts_scenario.parent / "without-w2.yaml"
    child.write_text(
        "extends: scenario.yaml\nchanges:\n  - remove_warehouse: {warehouse: W2}\n", encoding="utf-8"
    )
    problem = load_problem(child)
    assert set(problem.receipts["warehouse"]) == {"W1"} and len(problem.receipts) == 4
    assert "1 receipts rows" in problem.changes[0]["effect"]
