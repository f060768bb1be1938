"""The purchase-order workflow: transitions, edits re-checked against the offer and the plan, exports,
the audit trail, bad input on the command line, and firm orders feeding the next run.

The instance (``store_support.procurement_tables``) is small enough to check by hand: its optimal plan
is one purchase order from S1 in period 0 with A 100 units at the 8.00 break price and B 40 at 5.00
(purchase 1,000 + order cost 50 + holding 16 = 1,066).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select
from store_support import START, procurement_tables, record, write_procurement

from optistock.cli import main
from optistock.errors import ConflictError, WorkflowError
from optistock.store.database import Store, open_store
from optistock.store.schema import AuditEvent, PurchaseOrder
from optistock.store.workflow import (
    TRANSITIONS,
    PORef,
    decide,
    edit_line,
    export_purchase_orders,
    history,
    list_purchase_orders,
    parse_reference,
    show_purchase_order,
)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def recorded(store: Store, folder: Path, **tables: Any) -> int:
    """Record the instance (with ``tables`` replaced); the id of its single purchase order."""
    record(write_procurement(folder / "scenario", tables=tables or None), folder / "run", store)
    listing = list_purchase_orders(store, status="proposed")
    assert len(listing) == 1, listing
    return int(listing["id"].iloc[0])


def status_and_version(store: Store, po_id: int) -> tuple[str, int, int]:
    with store.transaction() as session:
        po = session.get(PurchaseOrder, po_id)
        assert po is not None
        events = len(session.scalars(select(AuditEvent).where(AuditEvent.purchase_order_id == po_id)).all())
        return po.status, po.version, events


def test_the_hand_checked_plan_is_one_purchase_order_at_the_break_price(store: Store, tmp_path: Path) -> None:
    po_id = recorded(store, tmp_path)
    view = show_purchase_order(store, PORef(po_id))
    assert view.header["supplier"] == "S1" and view.header["order_date"] == START
    lines = view.lines.set_index("sku")
    assert lines.at["A", "quantity"] == 100 and lines.at["A", "unit_price"] == 8.0
    assert lines.at["B", "quantity"] == 40 and lines.at["B", "unit_price"] == 5.0
    assert view.header["total_value"] == 1000.0
    assert [str(d) for d in view.header["delivery_dates"]] == ["2027-01-11"]  # lead time 1 week
    assert any("price break at 100" in text for text in view.explanations)


# --------------------------------------------------------------------------------------------------
# Transitions
# --------------------------------------------------------------------------------------------------

PATHS = {
    "proposed": [],
    "approved": [("approve",)],
    "rejected": [("reject",)],
    "sent": [("approve",), ("export",)],
}


def bring_to(store: Store, po_id: int, status: str, tmp_path: Path) -> None:
    for (step,) in PATHS[status]:
        if step == "export":
            export_purchase_orders(store, "approved", "csv", tmp_path / "outbox", "carol")
        else:
            decide(store, [PORef(po_id)], step, "carol")


@pytest.mark.parametrize("start", ["proposed", "approved", "rejected", "sent"])
@pytest.mark.parametrize("action", ["approve", "reject"])
def test_only_allowed_transitions_happen_and_refusals_change_nothing(
    store: Store, tmp_path: Path, start: str, action: str
) -> None:
    po_id = recorded(store, tmp_path)
    bring_to(store, po_id, start, tmp_path)
    target = {"approve": "approved", "reject": "rejected"}[action]
    before = status_and_version(store, po_id)
    assert before[0] == start
    if target in TRANSITIONS.get(start, frozenset()):
        decide(store, [PORef(po_id)], action, "dave", note="ok")
        status, version, events = status_and_version(store, po_id)
        assert (status, version, events) == (target, before[1] + 1, before[2] + 1)
        last = history(store, PORef(po_id)).iloc[-1]
        assert (last["actor"], last["old_value"], last["new_value"], last["note"]) == (
            "dave",
            start,
            target,
            "ok",
        )
    else:
        with pytest.raises(WorkflowError, match=f"is {start}: it cannot become {target}"):
            decide(store, [PORef(po_id)], action, "dave")
        assert status_and_version(store, po_id) == before


def test_a_superseded_proposal_can_no_longer_be_decided(store: Store, tmp_path: Path) -> None:
    po_id = recorded(store, tmp_path)
    record(tmp_path / "scenario" / "scenario.yaml", tmp_path / "run2", store)
    assert status_and_version(store, po_id)[0] == "superseded"
    for action in ("approve", "reject"):
        with pytest.raises(WorkflowError, match="superseded"):
            decide(store, [PORef(po_id)], action, "dave")


def test_deciding_several_orders_is_all_or_nothing(store: Store, tmp_path: Path) -> None:
    first = recorded(store, tmp_path / "a")
    record(write_procurement(tmp_path / "b", name="other"), tmp_path / "b-run", store)
    second = int(list_purchase_orders(store, status="proposed").query("id != @first")["id"].iloc[0])
    decide(store, [PORef(second)], "reject", "erin")
    before = status_and_version(store, first)
    with pytest.raises(WorkflowError, match=f"purchase order {second} is rejected"):
        decide(store, [PORef(first), PORef(second)], "approve", "erin")
    assert status_and_version(store, first) == before
    with pytest.raises(WorkflowError, match="does not exist"):
        decide(store, [PORef(first), PORef(9999)], "approve", "erin")
    assert status_and_version(store, first) == before


def test_a_pinned_version_that_changed_is_a_conflict_and_changes_nothing(
    store: Store, tmp_path: Path
) -> None:
    po_id = recorded(store, tmp_path)
    edit_line(store, PORef(po_id), "B", 45, "frank")  # version 1 -> 2
    before = status_and_version(store, po_id)
    with pytest.raises(ConflictError, match="changed since version 1"):
        decide(store, [PORef(po_id, 1)], "approve", "grace")
    assert status_and_version(store, po_id) == before
    decide(store, [PORef(po_id, 2)], "approve", "grace")
    assert status_and_version(store, po_id)[:2] == ("approved", 3)


@pytest.mark.parametrize(
    "text, expected",
    [("17", PORef(17)), ("17@3", PORef(17, 3)), (" PO17 ", PORef(17)), ("po5@1", PORef(5, 1))],
)
def test_purchase_order_references(text: str, expected: PORef) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "17@", "@3", "1.5", "-2"])
def test_malformed_purchase_order_references_are_refused(text: str) -> None:
    with pytest.raises(WorkflowError, match="is not a purchase-order id"):
        parse_reference(text)


# --------------------------------------------------------------------------------------------------
# Editing
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sku, quantity, message",
    [
        ("A", 95, "not a multiple of the pack size 10 \\(nearest: 90 or 100\\)"),
        ("A", 10, "below the minimum order quantity 20"),
        ("B", 42, "not a multiple of the pack size 5"),
        ("A", -10, "whole number of units ≥ 0"),
        ("A", 20.5, "whole number of units ≥ 0"),
        ("C", 10, "has no line for sku 'C'"),
        ("A", 100, "quantity is already 100"),
    ],
)
def test_an_edit_that_breaks_the_offer_terms_is_refused_and_changes_nothing(
    store: Store, tmp_path: Path, sku: str, quantity: float, message: str
) -> None:
    po_id = recorded(store, tmp_path)
    before = status_and_version(store, po_id)
    with pytest.raises(WorkflowError, match=message):
        edit_line(store, PORef(po_id), sku, quantity, "heidi")
    assert status_and_version(store, po_id) == before
    assert show_purchase_order(store, PORef(po_id)).header["total_value"] == 1000.0


def test_an_edit_below_a_price_break_reprices_the_line_and_reports_the_plan_cost(
    store: Store, tmp_path: Path
) -> None:
    po_id = recorded(store, tmp_path)
    outcome = edit_line(store, PORef(po_id), "A", 90, "ivan", note="less")
    # 90 units lose the break at 100: list price 10.00. Plan cost by hand: purchase 900 + 200,
    # ordering 50, holding 0.1 × (A: 60 + 30 + 0, B: 40 + 20 + 20 ... ) — see the docstring of the module.
    assert (outcome.old_unit_price, outcome.new_unit_price) == (8.0, 10.0)
    assert outcome.cost_before == pytest.approx(1066.0)
    # holding: A ends periods 1..3 with 60, 30, 0; B with 20, 20, 0 -> 130 unit-periods × 0.1
    assert outcome.cost_after == pytest.approx(1100.0 + 50.0 + 13.0)
    assert outcome.warnings == []
    view = show_purchase_order(store, PORef(po_id))
    lines = view.lines.set_index("sku")
    assert (lines.at["A", "quantity"], lines.at["A", "proposed_quantity"], lines.at["A", "unit_price"]) == (
        90,
        100,
        10.0,
    )
    assert view.header["total_value"] == 1100.0
    trail = history(store, PORef(po_id))
    edits = trail[trail["action"] == "edited"][["field", "old_value", "new_value"]].values.tolist()
    assert edits == [
        ["A.quantity", "100.0", "90"],
        ["A.unit_price", "8.0", "10.0"],
        ["total_value", "1000.0", "1100.0"],
    ]


def test_an_edit_that_breaks_budget_capacity_and_storage_is_allowed_with_warnings(
    store: Store, tmp_path: Path
) -> None:
    tables = procurement_tables(budget=1000.0)
    tables["suppliers"][0]["capacity"] = 150.0
    tables["warehouses"][0]["capacity"] = 150.0
    po_id = recorded(store, tmp_path, **{k: tables[k] for k in ("budget", "suppliers", "warehouses")})
    small = edit_line(store, PORef(po_id), "B", 45, "judy")  # 1,025 > budget 1,000; units and volume fit
    assert len(small.warnings) == 1 and small.warnings[0].startswith("budget: period 0 spends 1025.00")
    large = edit_line(store, PORef(po_id), "A", 200, "judy")
    kinds = {warning.split(":")[0] for warning in large.warnings}
    # the budget, already broken, is reported again because the amount changed
    assert kinds == {"budget", "storage capacity", "supplier capacity"}
    # stock of A after arrival: 200 - 30 = 170 (+ B 20) in period 1, 140 + 25 in period 2, both > 150
    assert sum(w.startswith("storage capacity: W1 in period") for w in large.warnings) == 2
    assert any("S1 in period 0 ordered 245 units, capacity 150" in w for w in large.warnings)


def test_removing_lines_down_to_the_last_one_is_refused(store: Store, tmp_path: Path) -> None:
    po_id = recorded(store, tmp_path)
    edit_line(store, PORef(po_id), "B", 0, "ken")
    view = show_purchase_order(store, PORef(po_id))
    assert view.header["lines"] == 1 and view.header["total_value"] == 800.0
    with pytest.raises(WorkflowError, match="remove its last line; reject the order instead"):
        edit_line(store, PORef(po_id), "A", 0, "ken")


def test_only_proposed_orders_can_be_edited(store: Store, tmp_path: Path) -> None:
    po_id = recorded(store, tmp_path)
    decide(store, [PORef(po_id)], "approve", "leo")
    with pytest.raises(WorkflowError, match="only proposed orders can be edited"):
        edit_line(store, PORef(po_id), "A", 110, "leo")


def test_an_edit_without_the_run_folder_still_checks_the_offer_and_says_what_it_skipped(
    store: Store, tmp_path: Path
) -> None:
    po_id = recorded(store, tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "run")
    outcome = edit_line(store, PORef(po_id), "A", 110, "mia")
    assert outcome.new_unit_price == 8.0
    assert len(outcome.warnings) == 1 and "not re-checked" in outcome.warnings[0]


# --------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_export_writes_one_file_per_supplier_and_marks_the_orders_sent(
    store: Store, tmp_path: Path, fmt: str
) -> None:
    po_id = recorded(store, tmp_path)
    decide(store, [PORef(po_id)], "approve", "nina")
    outcome = export_purchase_orders(store, "approved", fmt, tmp_path / "outbox", "nina")
    assert [p.name for p in outcome.files] == [f"S1.{fmt}"]
    path = outcome.files[0]
    frame = {
        "csv": lambda: pd.read_csv(path),
        "xlsx": lambda: pd.read_excel(path),
        "json": lambda: pd.DataFrame(json.loads(path.read_text())),
    }[fmt]()
    assert sorted(frame["sku"]) == ["A", "B"]
    assert frame.set_index("sku")["quantity"].to_dict() == {"A": 100, "B": 40}
    assert set(frame["po_number"]) == {po_id} and set(frame["ship_to_warehouse"]) == {"W1"}
    assert {str(d)[:10] for d in frame["delivery_date"]} == {"2027-01-11"}
    assert frame["line_value"].sum() == pytest.approx(1000.0)
    assert status_and_version(store, po_id)[0] == "sent"
    assert history(store, PORef(po_id)).iloc[-1]["action"] == "sent"
    again = export_purchase_orders(store, "approved", fmt, tmp_path / "outbox2", "nina")
    assert again.files == [] and not (tmp_path / "outbox2").exists()


def test_an_export_that_cannot_write_leaves_the_orders_approved(store: Store, tmp_path: Path) -> None:
    po_id = recorded(store, tmp_path)
    decide(store, [PORef(po_id)], "approve", "olga")
    blocked = tmp_path / "outbox"
    blocked.write_text("a file where the folder should be")
    with pytest.raises(OSError):
        export_purchase_orders(store, "approved", "csv", blocked, "olga")
    assert status_and_version(store, po_id)[0] == "approved"
    assert history(store, PORef(po_id)).iloc[-1]["action"] == "approved"


# --------------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------------


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def test_the_workflow_end_to_end_on_the_command_line(store_url: str, tmp_path: Path) -> None:
    scenario = write_procurement(tmp_path / "scenario")
    result = cli("run", str(scenario), "--out", str(tmp_path / "run"), "--record", "--db", store_url)
    assert result.exit_code == 0, result.output
    assert "recorded as run 1: 1 purchase orders proposed" in result.output
    listing = json.loads(cli("po", "list", "--format", "json", "--db", store_url).output)
    assert [(row["id"], row["status"], row["total_value"]) for row in listing] == [(1, "proposed", 1000.0)]
    shown = cli("po", "show", "1", "--db", store_url)
    assert shown.exit_code == 0 and "S1 -> W1" in shown.output and "2027-01-11" in shown.output
    assert "Why these lines:" in shown.output
    edited = cli("po", "edit", "1", "--sku", "A", "--quantity", "110", "--by", "pat", "--db", store_url)
    assert edited.exit_code == 0, edited.output
    assert "100 -> 110 units at 8/unit" in edited.output
    approved = cli("po", "approve", "1@2", "--by", "pat", "--note", "fine", "--db", store_url)
    assert approved.exit_code == 0, approved.output
    exported = cli("po", "export", "--out", str(tmp_path / "outbox"), "--by", "pat", "--db", store_url)
    assert exported.exit_code == 0 and (tmp_path / "outbox" / "S1.csv").is_file()
    trail = cli("po", "history", "1", "--format", "csv", "--db", store_url)
    actions = pd.read_csv(__import__("io").StringIO(trail.output))["action"].tolist()
    assert actions == ["proposed", "edited", "edited", "approved", "sent"]
    listed = cli("po", "list", "--status", "sent", "--supplier", "S1", "--format", "csv", "--db", store_url)
    assert listed.output.count("\n") == 2  # header and the one order


@pytest.mark.parametrize(
    "args, exit_code, message",
    [
        (["po", "approve", "42", "--by", "x"], 2, "purchase order 42 does not exist"),
        (["po", "show", "42"], 2, "purchase order 42 does not exist"),
        (["po", "history", "abc"], 2, "'abc' is not a purchase-order id"),
        (["po", "approve", "1"], 2, "Missing option '--by'"),
        (["po", "approve", "1", "--by", "  "], 2, "--by must name who makes the change"),
        (["po", "reject", "1@7", "--by", "x"], 6, "changed since version 7"),
        (["po", "edit", "1", "--sku", "A", "--quantity", "15", "--by", "x"], 2, "not a multiple"),
        (
            ["po", "edit", "1", "--sku", "A", "--quantity", "lots", "--by", "x"],
            2,
            "'lots' is not a valid float",
        ),
        (["po", "export", "--out", "o", "--by", "x", "--format", "pdf"], 2, "'pdf' is not one of"),
        (["po", "list", "--status", "pending"], 2, "'pending' is not one of"),
    ],
)
def test_bad_workflow_commands_give_one_clear_message_and_change_nothing(
    store_url: str, tmp_path: Path, args: list[str], exit_code: int, message: str
) -> None:
    store = open_store(store_url)
    recorded(store, tmp_path)
    before = status_and_version(store, 1)
    result = cli(*args, "--db", store_url)
    assert result.exit_code == exit_code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert status_and_version(store, 1) == before
    store.close()


def test_the_store_defaults_to_optistock_db_here_or_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPTISTOCK_DB", raising=False)
    scenario = write_procurement(tmp_path / "scenario")
    assert cli("run", str(scenario), "--out", "run", "--record").exit_code == 0
    assert (tmp_path / "optistock.db").is_file()
    assert "1000.0" in cli("po", "list", "--format", "csv").output
    elsewhere = tmp_path / "elsewhere.db"
    monkeypatch.setenv("OPTISTOCK_DB", f"sqlite:///{elsewhere}")
    from optistock.store.workflow import LIST_COLUMNS

    assert cli("po", "list", "--format", "csv").output.strip() == ",".join(LIST_COLUMNS)  # new, empty
    assert elsewhere.is_file()
