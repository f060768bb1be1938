"""The store's tables as SQLAlchemy ORM classes.

The schema itself is created and changed only by the Alembic migrations in ``migrations/versions``;
these classes describe it for the code (``tests/test_store.py`` checks that both agree).

- ``runs``: one row per recorded optimisation run.
- ``purchase_orders``: the purchase orders a run proposed, with their workflow status and a version
  number that every change increments (optimistic concurrency).
- ``purchase_order_lines``: their lines, with the offer terms needed to re-check an edit and the
  explanation of why the line is there.
- ``audit_events``: every change, append-only (database triggers refuse UPDATE and DELETE).
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class POStatus(str, Enum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    SENT = "sent"
    SUPERSEDED = "superseded"


FIRM_STATUSES = (POStatus.APPROVED.value, POStatus.SENT.value)
"""Statuses of purchase orders that are commitments: the next run reads them as open orders."""


class Base(DeclarativeBase):
    pass


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scenario: Mapped[str] = mapped_column(String(200), index=True)
    input_hash: Mapped[str] = mapped_column(String(64), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    status: Mapped[str] = mapped_column(String(32))
    objective: Mapped[float] = mapped_column(Float)
    best_bound: Mapped[float | None] = mapped_column(Float, nullable=True)
    gap: Mapped[float | None] = mapped_column(Float, nullable=True)
    solver: Mapped[str] = mapped_column(String(50))
    solver_version: Mapped[str] = mapped_column(String(50))
    timings: Mapped[dict[str, Any]] = mapped_column(JSON)
    output_dir: Mapped[str] = mapped_column(Text)
    periods: Mapped[int] = mapped_column(Integer)
    horizon_start: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    period_length_days: Mapped[int] = mapped_column(Integer)

    purchase_orders: Mapped[list[PurchaseOrder]] = relationship(back_populates="run")


class PurchaseOrder(Base):
    __tablename__ = "purchase_orders"
    __table_args__ = (UniqueConstraint("run_id", "plan_po_id", name="uq_purchase_orders_run_plan_po"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    plan_po_id: Mapped[str] = mapped_column(String(200))
    """The purchase order's id in the run's ``orders.csv`` / ``purchase_orders.csv``."""
    supplier: Mapped[str] = mapped_column(String(200), index=True)
    warehouse: Mapped[str] = mapped_column(String(200))
    order_period: Mapped[int] = mapped_column(Integer)
    order_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    total_value: Mapped[float] = mapped_column(Float)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    run: Mapped[Run] = relationship(back_populates="purchase_orders")
    lines: Mapped[list[PurchaseOrderLine]] = relationship(
        back_populates="purchase_order", order_by="PurchaseOrderLine.sku"
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy's declarative hook)


class PurchaseOrderLine(Base):
    __tablename__ = "purchase_order_lines"
    __table_args__ = (UniqueConstraint("purchase_order_id", "sku", name="uq_purchase_order_lines_po_sku"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    purchase_order_id: Mapped[int] = mapped_column(ForeignKey("purchase_orders.id"), index=True)
    sku: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[float] = mapped_column(Float)
    proposed_quantity: Mapped[float] = mapped_column(Float)
    unit_price: Mapped[float] = mapped_column(Float)
    line_value: Mapped[float] = mapped_column(Float)
    arrival_period: Mapped[int] = mapped_column(Integer)
    lead_time: Mapped[int] = mapped_column(Integer)
    transit_time: Mapped[int] = mapped_column(Integer)
    moq: Mapped[int] = mapped_column(Integer)
    order_multiple: Mapped[int] = mapped_column(Integer)
    price_schedule: Mapped[list[Any]] = mapped_column(JSON)
    """[[min_quantity, unit_price], ...] ascending, starting at [0, list price] (all-units breaks)."""
    explanation: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)

    purchase_order: Mapped[PurchaseOrder] = relationship(back_populates="lines")


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    purchase_order_id: Mapped[int] = mapped_column(ForeignKey("purchase_orders.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    field: Mapped[str | None] = mapped_column(String(200), nullable=True)
    old_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    new_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
