"""Recording runs and their proposed purchase orders; reading firm orders back for the next run."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from optistock.preprocess.commitments import FIRM_LINE_COLUMNS
from optistock.preprocess.data import ProblemData
from optistock.store.schema import (
    FIRM_STATUSES,
    AuditEvent,
    POStatus,
    PurchaseOrder,
    PurchaseOrderLine,
    Run,
    utc_now,
)

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "optistock"


@dataclass
class RunRecord:
    """What :func:`record_run` stored."""

    run_id: int
    purchase_orders: int
    superseded: list[int]


def period_date(start: dt.date | None, period: int, length_days: int) -> dt.date | None:
    """First day of ``period`` when the horizon has a start date."""
    return None if start is None else start + dt.timedelta(days=period * length_days)


def record_run(
    session: Session,
    problem: ProblemData,
    summary: dict[str, Any],
    orders: pd.DataFrame,
    purchase_orders: pd.DataFrame,
    explanations: pd.DataFrame,
    output_dir: Path,
    started_at: dt.datetime,
) -> RunRecord:
    """Insert the run, its purchase orders as proposals (with an audit event each) and supersede the
    never-approved proposals of older runs of the same scenario. The caller owns the transaction."""
    horizon = problem.scenario.horizon
    run = Run(
        scenario=problem.scenario.name,
        input_hash=summary["input_hash"],
        started_at=started_at,
        finished_at=utc_now(),
        status=summary["status"],
        objective=float(summary["objective"]),
        best_bound=summary["best_bound"],
        gap=summary["gap"],
        solver=summary["solver"]["name"],
        solver_version=str(summary["solver"]["version"]),
        timings=summary["timings"],
        output_dir=str(output_dir.resolve()),
        periods=problem.periods,
        horizon_start=horizon.start,
        period_length_days=horizon.period_length_days,
    )
    session.add(run)
    session.flush()
    superseded = _supersede_older_proposals(session, run)

    why: dict[tuple[str, str, str, int], dict[Any, Any]] = {
        (str(r["supplier"]), str(r["sku"]), str(r["warehouse"]), int(r["order_period"])): r
        for r in explanations.to_dict("records")
    }
    offers: dict[Any, dict[Any, Any]] = problem.offers.to_dict("index")
    transit: dict[Any, Any] = problem.lanes["transit_time"].to_dict()
    for po in _records(purchase_orders):
        record = PurchaseOrder(
            run_id=run.id,
            plan_po_id=str(po.po_id),
            supplier=str(po.supplier),
            warehouse=str(po.warehouse),
            order_period=int(po.order_period),
            order_date=period_date(horizon.start, int(po.order_period), horizon.period_length_days),
            status=POStatus.PROPOSED.value,
            total_value=float(po.total_value),
        )
        session.add(record)
        for line in _records(orders[orders["po_id"] == po.po_id]):
            key = (str(line.supplier), str(line.sku))
            offer = offers[key]
            explanation = why[
                (str(line.supplier), str(line.sku), str(line.warehouse), int(line.order_period))
            ]
            details = {
                column: _plain(value)
                for column, value in explanation.items()
                if column not in ("explanation", "po_id", "quantity")
            }
            record.lines.append(
                PurchaseOrderLine(
                    sku=str(line.sku),
                    quantity=float(line.quantity),
                    proposed_quantity=float(line.quantity),
                    unit_price=float(line.unit_price),
                    line_value=float(line.line_value),
                    arrival_period=int(line.arrival_period),
                    lead_time=int(offer["lead_time"]),
                    transit_time=int(transit[(line.supplier, line.warehouse)]),
                    moq=int(offer["moq"]),
                    order_multiple=int(offer["order_multiple"]),
                    price_schedule=[[q, p] for q, p in problem.price_schedule(*key)],
                    explanation=str(explanation["explanation"]),
                    details=details,
                )
            )
        session.flush()
        session.add(
            AuditEvent(
                purchase_order_id=record.id,
                actor=SYSTEM_ACTOR,
                action="proposed",
                field="status",
                new_value=POStatus.PROPOSED.value,
                note=f"proposed by run {run.id} of scenario {run.scenario}",
            )
        )
    session.flush()
    logger.info(
        "recorded run %d: %d purchase orders proposed, %d older proposals superseded",
        run.id,
        len(purchase_orders),
        len(superseded),
    )
    return RunRecord(run.id, len(purchase_orders), superseded)


def _records(frame: pd.DataFrame) -> list[Any]:
    """Rows as objects with attribute access (``row.supplier``), typed loosely for the checker."""
    return list(frame.itertuples(index=False))


def _plain(value: Any) -> Any:
    """A JSON-friendly Python value (NaN/NA → None, numpy scalars → Python)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _supersede_older_proposals(session: Session, run: Run) -> list[int]:
    stale = session.scalars(
        select(PurchaseOrder)
        .join(Run)
        .where(
            Run.scenario == run.scenario,
            Run.id != run.id,
            PurchaseOrder.status == POStatus.PROPOSED.value,
        )
        .order_by(PurchaseOrder.id)
        .with_for_update()
    ).all()
    for po in stale:
        po.status = POStatus.SUPERSEDED.value
        po.updated_at = utc_now()
        session.add(
            AuditEvent(
                purchase_order_id=po.id,
                actor=SYSTEM_ACTOR,
                action="superseded",
                field="status",
                old_value=POStatus.PROPOSED.value,
                new_value=POStatus.SUPERSEDED.value,
                note=f"superseded by run {run.id}",
            )
        )
    return [po.id for po in stale]


def firm_order_lines(session: Session, scenario: str) -> pd.DataFrame:
    """Lines (quantity > 0) of approved and sent purchase orders of runs of ``scenario``, with what
    :func:`optistock.preprocess.commitments.apply_commitments` needs."""
    rows = session.execute(
        select(
            PurchaseOrder.id,
            PurchaseOrder.status,
            PurchaseOrder.supplier,
            PurchaseOrderLine.sku,
            PurchaseOrder.warehouse,
            PurchaseOrderLine.quantity,
            PurchaseOrderLine.line_value,
            PurchaseOrder.order_period,
            PurchaseOrderLine.arrival_period,
            Run.horizon_start,
            Run.period_length_days,
        )
        .join(PurchaseOrderLine, PurchaseOrderLine.purchase_order_id == PurchaseOrder.id)
        .join(Run, Run.id == PurchaseOrder.run_id)
        .where(
            Run.scenario == scenario,
            PurchaseOrder.status.in_(FIRM_STATUSES),
            PurchaseOrderLine.quantity > 0,
        )
        .order_by(PurchaseOrder.id, PurchaseOrderLine.sku)
    ).all()
    return pd.DataFrame([tuple(row) for row in rows], columns=FIRM_LINE_COLUMNS)
