"""Approved and sent purchase orders are commitments: the next run takes them as open orders.

On the hand-checked instance (see ``test_po_workflow``) the first run proposes one purchase order
from S1 in period 0: A 100 and B 40 units arriving in period 1, value 1,000, plan cost 1,066 of which
holding is 16. Once that order is approved, the same plan is already bought: the next run must
propose nothing and cost exactly the holding of 16, and its inputs must show why.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from independent_check import check_run
from store_support import START, procurement_tables, record, write_procurement

from optistock.cli import main
from optistock.errors import InputError
from optistock.store.database import Store, open_store
from optistock.store.workflow import PORef, decide, export_purchase_orders, list_purchase_orders


@pytest.fixture
def store(tmp_path: Path) -> Any:
    opened = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.close()


def first_run(store: Store, tmp_path: Path, decision: str | None = "approve", **kwargs: Any) -> int:
    record(write_procurement(tmp_path / "week1", **kwargs), tmp_path / "run1", store)
    (po_id,) = list_purchase_orders(store, status="proposed")["id"].tolist()
    if decision is not None:
        decide(store, [PORef(int(po_id))], decision, "buyer")
    return int(po_id)


def summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize("sent", [False, True], ids=["approved", "sent"])
def test_a_firm_order_is_not_bought_again(store: Store, tmp_path: Path, sent: bool) -> None:
    po_id = first_run(store, tmp_path)
    if sent:
        export_purchase_orders(store, "approved", "csv", tmp_path / "outbox", "buyer")
    out = tmp_path / "run2"
    second = record(tmp_path / "week1" / "scenario.yaml", out, store)
    assert second.evaluation.orders.empty
    assert second.objective == pytest.approx(16.0)  # only holding: the purchase is already committed
    check = check_run(out, 4)
    assert check.violations == [] and check.total == pytest.approx(16.0)
    open_orders = pd.read_csv(out / "inputs" / "open_orders.csv")
    assert sorted(
        open_orders[["supplier", "sku", "warehouse", "arrival_period", "quantity"]].values.tolist()
    ) == [
        ["S1", "A", "W1", 1, 100.0],
        ["S1", "B", "W1", 1, 40.0],
    ]
    budget = pd.read_csv(out / "inputs" / "budget.csv").set_index("period")["amount"]
    assert budget[0] == pytest.approx(1e6 - 1000.0) and budget[1] == pytest.approx(1e6)
    firm = summary(out)["firm_orders"]
    assert firm["purchase_orders"] == [po_id] and firm["lines_pending"] == 2
    assert firm["budget_committed"] == {"0": 1000.0}
    # the firm order stays as it was; nothing new was proposed
    listing = list_purchase_orders(store)
    assert listing.set_index("id").at[po_id, "status"] == ("sent" if sent else "approved")
    assert len(listing) == 1


def test_rejected_orders_are_not_commitments(store: Store, tmp_path: Path) -> None:
    first_run(store, tmp_path, decision="reject")
    second = record(tmp_path / "week1" / "scenario.yaml", tmp_path / "run2", store)
    assert second.objective == pytest.approx(1066.0)
    assert summary(tmp_path / "run2")["firm_orders"]["lines"] == 0
    assert len(list_purchase_orders(store, status="proposed")) == 1


def test_no_firm_orders_plans_as_if_nothing_was_ordered(store: Store, tmp_path: Path) -> None:
    first_run(store, tmp_path)
    second = record(tmp_path / "week1" / "scenario.yaml", tmp_path / "run2", store, firm_orders=False)
    assert second.objective == pytest.approx(1066.0)
    assert summary(tmp_path / "run2")["firm_orders"] is None


def test_next_weeks_run_moves_arrivals_by_calendar_date(store: Store, tmp_path: Path) -> None:
    first_run(store, tmp_path)
    # one week later: the order (placed in the old period 0, arriving on 2027-01-11) arrives in the new
    # period 0, and its spend belongs to a period before the new horizon: no budget is taken off
    scenario = write_procurement(tmp_path / "week2", start=START + dt.timedelta(days=7))
    out = tmp_path / "run2"
    record(scenario, out, store)
    open_orders = pd.read_csv(out / "inputs" / "open_orders.csv")
    assert set(open_orders["arrival_period"]) == {0}
    budget = pd.read_csv(out / "inputs" / "budget.csv")
    assert (budget["amount"] == 1e6).all()
    assert summary(out)["firm_orders"]["budget_committed"] == {}


def test_orders_that_arrived_before_the_new_horizon_are_part_of_stock_on_hand(
    store: Store, tmp_path: Path
) -> None:
    first_run(store, tmp_path)
    scenario = write_procurement(tmp_path / "week3", start=START + dt.timedelta(days=14))
    out = tmp_path / "run2"
    record(scenario, out, store)
    firm = summary(out)["firm_orders"]
    assert firm["lines_arrived_before_start"] == 2 and firm["lines_pending"] == 0
    assert (
        not (out / "inputs" / "open_orders.csv").exists()
        or pd.read_csv(out / "inputs" / "open_orders.csv").empty
    )


def test_without_start_dates_periods_are_numbered_alike(store: Store, tmp_path: Path) -> None:
    first_run(store, tmp_path, start=None)
    out = tmp_path / "run2"
    record(tmp_path / "week1" / "scenario.yaml", out, store)
    assert set(pd.read_csv(out / "inputs" / "open_orders.csv")["arrival_period"]) == {1}


def test_firm_spend_above_the_budget_leaves_no_budget_and_warns(store: Store, tmp_path: Path) -> None:
    first_run(store, tmp_path)
    tables = procurement_tables(budget=600.0)
    scenario = write_procurement(tmp_path / "tight", tables={"budget": tables["budget"]})
    out = tmp_path / "run2"
    record(scenario, out, store)
    budget = pd.read_csv(out / "inputs" / "budget.csv").set_index("period")["amount"]
    assert budget[0] == 0.0
    assert any("firm orders already spend 1,000.00 in period 0" in w for w in summary(out)["warnings"])
    assert check_run(out, 4).violations == []


def test_a_firm_order_for_a_sku_that_is_gone_is_bad_input_naming_the_order(
    store: Store, tmp_path: Path
) -> None:
    po_id = first_run(store, tmp_path)
    tables = procurement_tables()
    without_b = {
        name: [row for row in rows if row.get("sku") != "B"]
        for name, rows in tables.items()
        if name in ("skus", "offers", "inventory", "demand")
    }
    scenario = write_procurement(tmp_path / "no-b", tables=without_b)
    with pytest.raises(InputError, match=f"approved purchase order {po_id} has a line for sku 'B'"):
        record(scenario, tmp_path / "run2", store)
    assert not (tmp_path / "run2").exists()
    result = CliRunner().invoke(
        main, ["run", str(scenario), "--out", str(tmp_path / "run2"), "--record", "--db", store.url]
    )
    assert result.exit_code == 2 and "sku 'B'" in result.output and "field 'sku'" in result.output
    assert len(list_purchase_orders(store)) == 1  # nothing recorded
