"""Concurrent buyers lose nothing: decisions on a changed order are refused, edits are never lost.

Each worker has its own connection pool (as separate ``optistock`` processes would), and they start
together at a barrier. Runs on SQLite and, with ``OPTISTOCK_TEST_PG_URL``, on PostgreSQL.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from store_support import record, write_procurement

from optistock.errors import ConflictError, OptistockError
from optistock.store.database import open_store
from optistock.store.workflow import PORef, decide, edit_line, history, show_purchase_order

WORKERS = 6


def recorded_order(url: str, tmp_path: Path) -> int:
    store = open_store(url)
    record(write_procurement(tmp_path / "scenario"), tmp_path / "run", store)
    store.close()
    return 1


def race(url: str, jobs: list[Callable[[Any], Any]]) -> list[Any]:
    """Run each job with its own store, all released at once; the result or the exception of each."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[Any] = [None] * len(jobs)

    def work(index: int) -> None:
        store = open_store(url)
        try:
            barrier.wait()
            outcomes[index] = jobs[index](store)
        except Exception as exc:
            outcomes[index] = exc
        finally:
            store.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return outcomes


def test_only_one_of_several_simultaneous_decisions_on_the_same_version_wins(
    store_url: str, tmp_path: Path
) -> None:
    po_id = recorded_order(store_url, tmp_path)
    actions = ["approve" if i % 2 else "reject" for i in range(WORKERS)]
    jobs = [
        (lambda store, a=action, i=i: decide(store, [PORef(po_id, 1)], a, f"buyer{i}"))
        for i, action in enumerate(actions)
    ]
    outcomes = race(store_url, jobs)
    winners = [i for i, outcome in enumerate(outcomes) if outcome is None]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, ConflictError) for i, o in enumerate(outcomes) if i != winners[0]), outcomes
    store = open_store(store_url)
    view = show_purchase_order(store, PORef(po_id))
    expected = {"approve": "approved", "reject": "rejected"}[actions[winners[0]]]
    assert (view.header["status"], view.header["version"]) == (expected, 2)
    trail = history(store, PORef(po_id))
    decisions = trail[trail["action"].isin(["approved", "rejected"])]
    assert decisions[["actor", "new_value"]].values.tolist() == [[f"buyer{winners[0]}", expected]]
    store.close()


def test_simultaneous_edits_are_applied_one_after_another_and_none_is_lost(
    store_url: str, tmp_path: Path
) -> None:
    po_id = recorded_order(store_url, tmp_path)
    quantities = [20 + 10 * i for i in range(WORKERS)]  # all different from each other and from 100
    jobs = [
        (lambda store, q=q, i=i: edit_line(store, PORef(po_id), "A", q, f"buyer{i}"))
        for i, q in enumerate(quantities)
    ]
    outcomes = race(store_url, jobs)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    store = open_store(store_url)
    trail = history(store, PORef(po_id))
    edits = trail[trail["field"] == "A.quantity"]
    assert len(edits) == WORKERS
    # every edit saw the one before it: the chain of old -> new values is unbroken
    for previous, current in zip(edits.itertuples(), edits.iloc[1:].itertuples(), strict=False):
        assert float(current.old_value) == float(previous.new_value)
    assert float(edits.iloc[0]["old_value"]) == 100.0
    assert sorted(float(e) for e in edits["new_value"]) == quantities
    view = show_purchase_order(store, PORef(po_id))
    final = float(edits.iloc[-1]["new_value"])
    lines = view.lines.set_index("sku")
    assert lines.at["A", "quantity"] == final
    assert view.header["version"] == 1 + WORKERS
    assert view.header["total_value"] == pytest.approx((lines["quantity"] * lines["unit_price"]).sum())
    store.close()


def test_a_decision_and_an_edit_at_the_same_time_never_approve_unseen_changes(
    store_url: str, tmp_path: Path
) -> None:
    po_id = recorded_order(store_url, tmp_path)
    jobs = [
        lambda store: edit_line(store, PORef(po_id, 1), "B", 60, "editor"),
        lambda store: decide(store, [PORef(po_id, 1)], "approve", "approver"),
    ]
    edited, approved = race(store_url, jobs)
    store = open_store(store_url)
    view = show_purchase_order(store, PORef(po_id))
    b_quantity = view.lines.set_index("sku").at["B", "quantity"]
    if approved is None:  # the approval came first: the edit of an approved order is refused
        assert isinstance(edited, OptistockError)
        assert (view.header["status"], b_quantity) == ("approved", 40)
    else:  # the edit came first: approving version 1 is a conflict
        assert edited is not None and not isinstance(edited, Exception)
        assert isinstance(approved, ConflictError)
        assert (view.header["status"], b_quantity) == ("proposed", 60)
    store.close()


def test_separate_processes_deciding_at_once_exit_0_once_and_6_otherwise(
    store_url: str, tmp_path: Path
) -> None:
    po_id = recorded_order(store_url, tmp_path)
    command = [sys.executable, "-c", "from optistock.cli import main; main()", "-q", "po"]
    processes = [
        subprocess.Popen(
            [*command, action, f"{po_id}@1", "--by", f"p{i}", "--db", store_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, action in enumerate(["approve", "reject", "approve", "reject"])
    ]
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in processes]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 6, 6, 6], results
    assert all("changed since version 1" in err for code, err in results if code == 6)
