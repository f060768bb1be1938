"""The store: migrations, schema, recording runs, the append-only audit trail, and opening errors.

Runs on SQLite and, when ``OPTISTOCK_TEST_PG_URL`` is set, on PostgreSQL with the same code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import create_engine, delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from store_support import START, record, write_procurement

from optistock.cli import main
from optistock.errors import StoreError
from optistock.pipeline import hash_folder
from optistock.store.database import alembic_config, open_store
from optistock.store.schema import AuditEvent, Base, PurchaseOrder, PurchaseOrderLine, Run


def test_a_new_store_is_migrated_to_the_newest_revision_and_matches_the_orm(store_url: str) -> None:
    store = open_store(store_url)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with store.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head
        # the migrations and the ORM classes describe the same schema
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    store.close()
    again = open_store(store_url)  # opening an up-to-date store changes nothing
    with again.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head
    again.close()


def test_a_store_from_a_newer_optistock_is_refused_untouched(store_url: str, tmp_path: Path) -> None:
    open_store(store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(StoreError, match="newer than this optistock"):
        open_store(store_url)
    result = CliRunner().invoke(main, ["po", "list", "--db", store_url])
    assert result.exit_code == 2
    assert "9999_future" in result.output and "newer" in result.output
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999_future"
    engine.dispose()


@pytest.mark.parametrize(
    "make_url, message",
    [
        (lambda tmp: f"sqlite:///{tmp / 'missing' / 'store.db'}", "does not exist"),
        (lambda tmp: f"sqlite:///{tmp / 'garbage.db'}", "cannot open the database"),
        (lambda tmp: "nosuchdb://user@host/db", "not a usable database URL"),
    ],
    ids=["missing-folder", "not-a-database", "unknown-dialect"],
)
def test_a_database_that_cannot_be_opened_is_exit_2_with_the_url(
    tmp_path: Path, make_url: object, message: str
) -> None:
    (tmp_path / "garbage.db").write_bytes(b"this is not an SQLite file at all" * 100)
    url = make_url(tmp_path)  # type: ignore[operator]
    result = CliRunner().invoke(main, ["po", "list", "--db", url])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert (tmp_path / "garbage.db").read_bytes().startswith(b"this is not")


def test_the_audit_trail_cannot_be_updated_or_deleted(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    record(write_procurement(tmp_path / "s"), tmp_path / "run", store)
    for statement in (update(AuditEvent).values(actor="mallory"), delete(AuditEvent)):
        with pytest.raises(DBAPIError, match="append-only"), store.transaction() as session:
            session.execute(statement)
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) > 0
        assert "mallory" not in session.scalars(select(AuditEvent.actor)).all()
    store.close()


def test_a_recorded_run_matches_its_output_files(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    out = tmp_path / "run"
    result = record(write_procurement(tmp_path / "s"), out, store)
    summary = json.loads((out / "summary.json").read_text())
    orders = pd.read_csv(out / "orders.csv")
    purchase_orders = pd.read_csv(out / "purchase_orders.csv")
    assert not purchase_orders.empty

    with store.transaction() as session:
        run = session.scalars(select(Run)).one()
        assert run.id == summary["store"]["run_id"]
        assert run.scenario == "weekly"
        assert run.input_hash == summary["input_hash"] == hash_folder(out / "inputs")
        assert run.objective == pytest.approx(summary["objective"]) == pytest.approx(result.objective)
        assert run.status == summary["status"]
        assert run.solver == "highs" and run.solver_version == summary["solver"]["version"]
        assert Path(run.output_dir) == out.resolve()
        assert run.horizon_start == START and run.period_length_days == 7 and run.periods == 4
        assert set(run.timings) >= {"load", "solve", "write"}

        stored = session.scalars(select(PurchaseOrder).order_by(PurchaseOrder.plan_po_id)).all()
        assert [po.plan_po_id for po in stored] == sorted(purchase_orders["po_id"])
        for po in stored:
            expected = purchase_orders.set_index("po_id").loc[po.plan_po_id]
            assert (po.supplier, po.warehouse, po.order_period) == (
                expected["supplier"],
                expected["warehouse"],
                expected["order_period"],
            )
            assert po.total_value == pytest.approx(expected["total_value"])
            assert po.status == "proposed" and po.version == 1
            assert po.order_date == START + pd.Timedelta(days=7 * po.order_period)
            lines = orders[orders["po_id"] == po.plan_po_id].set_index("sku")
            assert sorted(line.sku for line in po.lines) == sorted(lines.index)
            for line in po.lines:
                assert line.quantity == line.proposed_quantity == lines.at[line.sku, "quantity"]
                assert line.unit_price == pytest.approx(lines.at[line.sku, "unit_price"])
                assert line.arrival_period == lines.at[line.sku, "arrival_period"]
                assert line.explanation  # a buyer-readable reason for every line
            events = session.scalars(select(AuditEvent).where(AuditEvent.purchase_order_id == po.id)).all()
            assert [(e.action, e.actor, e.new_value) for e in events] == [
                ("proposed", "optistock", "proposed")
            ]
        line_count = session.scalar(select(func.count()).select_from(PurchaseOrderLine))
        assert line_count == len(orders)
    store.close()


def test_a_newer_run_supersedes_only_unapproved_proposals_of_the_same_scenario(
    store_url: str, tmp_path: Path
) -> None:
    from optistock.store.workflow import PORef, decide

    store = open_store(store_url)
    weekly = write_procurement(tmp_path / "weekly")
    other = write_procurement(tmp_path / "other", name="other-scenario")
    record(weekly, tmp_path / "w1", store)
    record(other, tmp_path / "o1", store)
    with store.transaction() as session:
        first = session.scalars(select(PurchaseOrder).where(PurchaseOrder.run_id == 1)).all()
        other_ids = session.scalars(select(PurchaseOrder.id).where(PurchaseOrder.run_id == 2)).all()
    approved, *proposed = sorted(po.id for po in first)
    decide(store, [PORef(approved)], "approve", "alice")

    second = record(weekly, tmp_path / "w2", store)
    assert sorted(second.summary["store"]["superseded_purchase_orders"]) == proposed
    with store.transaction() as session:
        status = dict(session.execute(select(PurchaseOrder.id, PurchaseOrder.status)).all())
        notes = session.scalars(select(AuditEvent.note).where(AuditEvent.action == "superseded")).all()
    assert status[approved] == "approved"
    assert all(status[i] == "superseded" for i in proposed)
    assert all(status[i] == "proposed" for i in other_ids)
    assert len(notes) == len(proposed) and all("run 3" in note for note in notes)
    store.close()


def test_stores_opened_at_the_same_moment_are_migrated_once(store_url: str) -> None:
    import threading

    barrier = threading.Barrier(4)
    errors: list[Exception] = []

    def open_concurrently() -> None:
        barrier.wait()
        try:
            open_store(store_url).close()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_concurrently) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    engine = create_engine(store_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


def test_a_database_with_clashing_tables_but_no_optistock_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'theirs.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE runs (id INTEGER PRIMARY KEY, note TEXT)"))
    engine.dispose()
    with pytest.raises(StoreError, match="holds other tables"):
        open_store(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        tables = connection.execute(text("SELECT name FROM sqlite_master WHERE type='table'")).scalars().all()
    engine.dispose()
    assert tables == ["runs"]
