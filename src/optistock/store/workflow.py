"""The purchase-order workflow: list, show, approve, reject, edit, export and history.

Allowed transitions (anything else is refused with a :class:`WorkflowError`)::

    proposed → approved | rejected        (a buyer decides)
    approved → sent | rejected            (sent by ``po export``)
    proposed → superseded                 (only by recording a newer run of the same scenario)

Every change bumps the purchase order's ``version`` and appends audit events in the same transaction.
A reference may pin the version the user looked at (``17@3``): if the order changed since, the command
is refused with a :class:`ConflictError` and nothing is changed. Rows are locked while a command
decides (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serialises writers with ``BEGIN IMMEDIATE``),
and the version is checked again when the change is written.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from optistock.errors import ConflictError, OptistockError, WorkflowError
from optistock.postprocess.writer import safe_name
from optistock.store.database import Store
from optistock.store.records import period_date
from optistock.store.schema import AuditEvent, POStatus, PurchaseOrder, PurchaseOrderLine, Run, utc_now

logger = logging.getLogger(__name__)

TRANSITIONS: dict[str, frozenset[str]] = {
    POStatus.PROPOSED.value: frozenset({POStatus.APPROVED.value, POStatus.REJECTED.value}),
    POStatus.APPROVED.value: frozenset({POStatus.SENT.value, POStatus.REJECTED.value}),
}
"""Transitions a user may make, by current status (superseding is done by recording a run)."""

ACTION_STATUS = {"approve": POStatus.APPROVED.value, "reject": POStatus.REJECTED.value}

LIST_COLUMNS = [
    "id",
    "version",
    "status",
    "run_id",
    "scenario",
    "plan_po_id",
    "supplier",
    "warehouse",
    "order_period",
    "order_date",
    "lines",
    "total_value",
]
HISTORY_COLUMNS = ["at", "actor", "action", "field", "old_value", "new_value", "note"]
EXPORT_COLUMNS = [
    "po_number",
    "plan_po_id",
    "supplier",
    "ship_to_warehouse",
    "order_period",
    "order_date",
    "delivery_period",
    "delivery_date",
    "sku",
    "quantity",
    "unit_price",
    "line_value",
    "po_total",
]
EXPORT_FORMATS = ("csv", "xlsx", "json")

_REFERENCE = re.compile(r"^\s*(?:PO)?(\d+)(?:@(\d+))?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class PORef:
    """A purchase order as the user named it: its id and, optionally, the version they looked at."""

    id: int
    version: int | None = None

    def __str__(self) -> str:
        return f"{self.id}" if self.version is None else f"{self.id}@{self.version}"


def parse_reference(text: str) -> PORef:
    """``17`` or ``17@3`` (id at version 3); raises :class:`WorkflowError` otherwise."""
    match = _REFERENCE.match(text)
    if match is None:
        raise WorkflowError(
            f"'{text}' is not a purchase-order id: use the number from `optistock po list`, "
            "optionally with @VERSION (e.g. 17 or 17@3)"
        )
    version = match.group(2)
    return PORef(int(match.group(1)), None if version is None else int(version))


def as_utc(moment: dt.datetime) -> dt.datetime:
    """Timestamps are stored in UTC; SQLite returns them without a time zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def _actor(by: str) -> str:
    actor = by.strip()
    if not actor:
        raise WorkflowError("--by must name who makes the change")
    return actor


def _load_for_update(session: Session, ref: PORef) -> PurchaseOrder:
    po = session.scalars(
        select(PurchaseOrder)
        .where(PurchaseOrder.id == ref.id)
        .options(selectinload(PurchaseOrder.lines))
        .with_for_update()
    ).one_or_none()
    if po is None:
        raise WorkflowError(f"purchase order {ref.id} does not exist (see `optistock po list`)")
    if ref.version is not None and po.version != ref.version:
        raise ConflictError(
            f"purchase order {po.id} changed since version {ref.version} (now version {po.version}, "
            f"{po.status}); nothing was changed: look again with `optistock po show {po.id}` and retry"
        )
    return po


def _commit(session: Session, what: str) -> None:
    try:
        session.commit()
    except StaleDataError as exc:
        session.rollback()
        raise ConflictError(f"{what}: someone else changed it at the same time; nothing was changed") from exc


def _audit(
    session: Session,
    po: PurchaseOrder,
    actor: str,
    action: str,
    field: str | None,
    old: Any,
    new: Any,
    note: str | None,
) -> None:
    session.add(
        AuditEvent(
            purchase_order_id=po.id,
            actor=actor,
            action=action,
            field=field,
            old_value=None if old is None else str(old),
            new_value=None if new is None else str(new),
            note=note,
        )
    )


def _transition(session: Session, po: PurchaseOrder, new_status: str, actor: str, note: str | None) -> None:
    allowed = TRANSITIONS.get(po.status, frozenset())
    if new_status not in allowed:
        options = ", ".join(sorted(allowed)) or "nothing (final)"
        raise WorkflowError(
            f"purchase order {po.id} is {po.status}: it cannot become {new_status} "
            f"(from {po.status} it can become {options})"
        )
    old = po.status
    po.status = new_status
    po.updated_at = utc_now()
    _audit(session, po, actor, new_status, "status", old, new_status, note)


def decide(store: Store, references: Sequence[PORef], action: str, by: str, note: str | None = None) -> None:
    """Approve or reject purchase orders, all or none: any refusal leaves every one unchanged."""
    actor = _actor(by)
    new_status = ACTION_STATUS[action]
    with store.session() as session:
        for ref in references:
            po = _load_for_update(session, ref)
            _transition(session, po, new_status, actor, note)
        _commit(session, f"{action} {', '.join(str(r) for r in references)}")
    logger.info("%s: %s by %s", new_status, ", ".join(str(r) for r in references), actor)


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def list_purchase_orders(
    store: Store, run_id: int | None = None, supplier: str | None = None, status: str | None = None
) -> pd.DataFrame:
    """Purchase orders (newest run first) as a tidy table with :data:`LIST_COLUMNS`."""
    with store.session() as session:
        query = (
            select(PurchaseOrder, Run.scenario)
            .join(Run)
            .options(selectinload(PurchaseOrder.lines))
            .order_by(PurchaseOrder.run_id.desc(), PurchaseOrder.order_period, PurchaseOrder.id)
        )
        if run_id is not None:
            query = query.where(PurchaseOrder.run_id == run_id)
        if supplier is not None:
            query = query.where(PurchaseOrder.supplier == supplier)
        if status is not None:
            query = query.where(PurchaseOrder.status == status)
        rows = [
            {
                "id": po.id,
                "version": po.version,
                "status": po.status,
                "run_id": po.run_id,
                "scenario": scenario,
                "plan_po_id": po.plan_po_id,
                "supplier": po.supplier,
                "warehouse": po.warehouse,
                "order_period": po.order_period,
                "order_date": po.order_date,
                "lines": sum(1 for line in po.lines if line.quantity > 0),
                "total_value": round(po.total_value, 2),
            }
            for po, scenario in session.execute(query).all()
        ]
    return pd.DataFrame(rows, columns=LIST_COLUMNS)


@dataclass
class PurchaseOrderView:
    """One purchase order as ``po show`` presents it."""

    header: dict[str, Any]
    lines: pd.DataFrame
    explanations: list[str] = field(default_factory=list)


LINE_COLUMNS = [
    "sku",
    "quantity",
    "proposed_quantity",
    "unit_price",
    "line_value",
    "moq",
    "order_multiple",
    "arrival_period",
    "delivery_date",
]


def show_purchase_order(store: Store, ref: PORef) -> PurchaseOrderView:
    with store.session() as session:
        po = session.get(PurchaseOrder, ref.id, options=[selectinload(PurchaseOrder.lines)])
        if po is None:
            raise WorkflowError(f"purchase order {ref.id} does not exist (see `optistock po list`)")
        run = po.run
        lines = [line for line in po.lines if line.quantity > 0 or line.proposed_quantity > 0]
        arrival = [
            period_date(run.horizon_start, line.arrival_period, run.period_length_days) for line in lines
        ]
        header = {
            "id": po.id,
            "version": po.version,
            "status": po.status,
            "run": run.id,
            "scenario": run.scenario,
            "plan_po_id": po.plan_po_id,
            "supplier": po.supplier,
            "ship_to": po.warehouse,
            "order_period": po.order_period,
            "order_date": po.order_date,
            "delivery_dates": sorted({d for d in arrival if d is not None}),
            "lines": sum(1 for line in lines if line.quantity > 0),
            "units": sum(line.quantity for line in lines),
            "total_value": round(po.total_value, 2),
            "updated_at": po.updated_at,
        }
        table = pd.DataFrame(
            [
                {
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "proposed_quantity": line.proposed_quantity,
                    "unit_price": line.unit_price,
                    "line_value": round(line.line_value, 2),
                    "moq": line.moq,
                    "order_multiple": line.order_multiple,
                    "arrival_period": line.arrival_period,
                    "delivery_date": date,
                }
                for line, date in zip(lines, arrival, strict=True)
            ],
            columns=LINE_COLUMNS,
        )
        explanations = [f"{line.sku}: {line.explanation}" for line in lines]
    return PurchaseOrderView(header, table, explanations)


def history(store: Store, ref: PORef) -> pd.DataFrame:
    """The audit trail of one purchase order, oldest first."""
    with store.session() as session:
        if session.get(PurchaseOrder, ref.id) is None:
            raise WorkflowError(f"purchase order {ref.id} does not exist (see `optistock po list`)")
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.purchase_order_id == ref.id).order_by(AuditEvent.id)
        ).all()
        rows = [{column: getattr(event, column) for column in HISTORY_COLUMNS} for event in events]
    for row in rows:
        row["at"] = as_utc(row["at"]).isoformat(timespec="seconds")
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


# --------------------------------------------------------------------------------------------------
# Editing a line
# --------------------------------------------------------------------------------------------------


def unit_price_at(schedule: Sequence[Sequence[float]], quantity: float) -> float:
    """All-units price: the price of the highest break whose minimum quantity ``quantity`` reaches."""
    price = float(schedule[0][1])
    for minimum, step_price in schedule:
        if quantity >= minimum:
            price = float(step_price)
    return price


def check_line_quantity(line: PurchaseOrderLine, quantity: float) -> None:
    """MOQ and pack multiple of the line's offer; 0 removes the line."""
    where = f"purchase order {line.purchase_order_id}, sku {line.sku}"
    if not quantity >= 0 or quantity != int(quantity):
        raise WorkflowError(f"{where}: quantity must be a whole number of units ≥ 0 (got {quantity:g})")
    if quantity == 0:
        return
    if int(quantity) % line.order_multiple:
        lower = int(quantity) // line.order_multiple * line.order_multiple
        raise WorkflowError(
            f"{where}: quantity {quantity:g} is not a multiple of the pack size {line.order_multiple} "
            f"(nearest: {lower} or {lower + line.order_multiple})"
        )
    if quantity < line.moq:
        raise WorkflowError(f"{where}: quantity {quantity:g} is below the minimum order quantity {line.moq}")


@dataclass
class EditOutcome:
    """What an edit changed, and the plan-level warnings it raised (budget, capacities, PO minimum)."""

    old_quantity: float
    new_quantity: float
    old_unit_price: float
    new_unit_price: float
    warnings: list[str] = field(default_factory=list)
    cost_before: float | None = None
    cost_after: float | None = None


def edit_line(
    store: Store, ref: PORef, sku: str, quantity: float, by: str, note: str | None = None
) -> EditOutcome:
    """Change one line's quantity on a proposed purchase order; the price follows the price breaks.

    MOQ and pack multiple are enforced (a :class:`WorkflowError`, nothing changed); a change that breaks
    the budget, a supplier or storage capacity, or the PO minimum value is allowed but reported in
    ``warnings``, found by re-simulating the run's whole plan with the edit (see
    :func:`optistock.store.review.plan_warnings`).
    """
    from optistock.store.review import plan_warnings

    actor = _actor(by)
    with store.session() as session:
        po = _load_for_update(session, ref)
        if po.status != POStatus.PROPOSED.value:
            raise WorkflowError(
                f"purchase order {po.id} is {po.status}: only proposed orders can be edited "
                "(reject it and plan again to change an approved order)"
            )
        line = next((line for line in po.lines if line.sku == sku), None)
        if line is None:
            skus = ", ".join(line.sku for line in po.lines)
            raise WorkflowError(f"purchase order {po.id} has no line for sku '{sku}' (its lines: {skus})")
        check_line_quantity(line, quantity)
        remaining = sum(other.quantity for other in po.lines if other is not line) + quantity
        if remaining <= 0:
            raise WorkflowError(
                f"purchase order {po.id}: this would remove its last line; reject the order instead"
            )
        outcome = EditOutcome(
            line.quantity, quantity, line.unit_price, unit_price_at(line.price_schedule, quantity)
        )
        if quantity == line.quantity:
            raise WorkflowError(f"purchase order {po.id}, sku {sku}: quantity is already {quantity:g}")
        review = plan_warnings(session, po, {sku: quantity})
        outcome.warnings = review.warnings
        outcome.cost_before, outcome.cost_after = review.cost_before, review.cost_after

        old_value = po.total_value
        line.quantity = float(quantity)
        line.unit_price = outcome.new_unit_price
        line.line_value = float(quantity) * outcome.new_unit_price
        po.total_value = sum(other.line_value for other in po.lines)
        po.updated_at = utc_now()
        _audit(session, po, actor, "edited", f"{sku}.quantity", outcome.old_quantity, quantity, note)
        if outcome.new_unit_price != outcome.old_unit_price:
            _audit(
                session,
                po,
                actor,
                "edited",
                f"{sku}.unit_price",
                outcome.old_unit_price,
                outcome.new_unit_price,
                "price break",
            )
        _audit(
            session, po, actor, "edited", "total_value", round(old_value, 2), round(po.total_value, 2), None
        )
        _commit(session, f"edit of purchase order {po.id}")
    logger.info(
        "purchase order %d, %s: %g -> %g by %s (%d warnings)",
        ref.id,
        sku,
        outcome.old_quantity,
        quantity,
        actor,
        len(outcome.warnings),
    )
    return outcome


# --------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------


@dataclass
class ExportOutcome:
    files: list[Path]
    purchase_orders: list[int]


def export_purchase_orders(store: Store, status: str, fmt: str, out: Path, by: str) -> ExportOutcome:
    """Write one file per supplier with the lines a supplier needs; exported approved orders become
    ``sent`` in the same transaction, which commits only after every file is in place."""
    if fmt not in EXPORT_FORMATS:
        raise WorkflowError(f"unknown export format '{fmt}' (use one of {', '.join(EXPORT_FORMATS)})")
    if status not in (POStatus.APPROVED.value, POStatus.SENT.value):
        raise WorkflowError(f"only approved (or, to send again, sent) orders can be exported, not {status}")
    actor = _actor(by)
    written: list[Path] = []
    with store.session() as session:
        orders = session.scalars(
            select(PurchaseOrder)
            .where(PurchaseOrder.status == status)
            .options(selectinload(PurchaseOrder.lines))
            .order_by(PurchaseOrder.supplier, PurchaseOrder.order_period, PurchaseOrder.id)
            .with_for_update()
        ).all()
        if not orders:
            return ExportOutcome([], [])
        rows = []
        for po in orders:
            run = po.run
            for line in po.lines:
                if line.quantity <= 0:
                    continue
                rows.append(
                    {
                        "po_number": po.id,
                        "plan_po_id": po.plan_po_id,
                        "supplier": po.supplier,
                        "ship_to_warehouse": po.warehouse,
                        "order_period": po.order_period,
                        "order_date": po.order_date,
                        "delivery_period": line.arrival_period,
                        "delivery_date": period_date(
                            run.horizon_start, line.arrival_period, run.period_length_days
                        ),
                        "sku": line.sku,
                        "quantity": line.quantity,
                        "unit_price": line.unit_price,
                        "line_value": round(line.line_value, 2),
                        "po_total": round(po.total_value, 2),
                    }
                )
            if status == POStatus.APPROVED.value:
                _transition(session, po, POStatus.SENT.value, actor, f"exported as {fmt} to {out}")
        table = pd.DataFrame(rows, columns=EXPORT_COLUMNS)
        session.flush()
        try:
            out.mkdir(parents=True, exist_ok=True)
            for supplier, lines in table.groupby("supplier", sort=True):
                path = out / f"{safe_name(str(supplier), fallback='supplier')}.{fmt}"
                _write_atomically(lines.reset_index(drop=True), path, fmt)
                written.append(path)
            _commit(session, "export")
        except (OSError, OptistockError):
            for path in written:
                path.unlink(missing_ok=True)
            raise
    logger.info("exported %d purchase orders to %d files in %s", len(orders), len(written), out)
    return ExportOutcome(written, [po.id for po in orders])


def _write_atomically(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        if fmt == "csv":
            frame.to_csv(temporary, index=False, lineterminator="\n")
        elif fmt == "xlsx":
            frame.to_excel(temporary, index=False, sheet_name="purchase order lines", engine="openpyxl")
        else:
            frame.to_json(temporary, orient="records", date_format="iso", indent=2)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
