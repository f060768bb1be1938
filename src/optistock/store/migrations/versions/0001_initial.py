"""Initial store: runs, purchase orders and their lines, append-only audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY_MESSAGE = "audit_events is append-only"


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("scenario", sa.String(200), nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("objective", sa.Float(), nullable=False),
        sa.Column("best_bound", sa.Float(), nullable=True),
        sa.Column("gap", sa.Float(), nullable=True),
        sa.Column("solver", sa.String(50), nullable=False),
        sa.Column("solver_version", sa.String(50), nullable=False),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.Column("output_dir", sa.Text(), nullable=False),
        sa.Column("periods", sa.Integer(), nullable=False),
        sa.Column("horizon_start", sa.Date(), nullable=True),
        sa.Column("period_length_days", sa.Integer(), nullable=False),
    )
    op.create_index("ix_runs_scenario", "runs", ["scenario"])
    op.create_index("ix_runs_input_hash", "runs", ["input_hash"])

    op.create_table(
        "purchase_orders",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("plan_po_id", sa.String(200), nullable=False),
        sa.Column("supplier", sa.String(200), nullable=False),
        sa.Column("warehouse", sa.String(200), nullable=False),
        sa.Column("order_period", sa.Integer(), nullable=False),
        sa.Column("order_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total_value", sa.Float(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_id", "plan_po_id", name="uq_purchase_orders_run_plan_po"),
        sa.CheckConstraint(
            "status IN ('proposed', 'approved', 'rejected', 'sent', 'superseded')",
            name="ck_purchase_orders_status",
        ),
    )
    op.create_index("ix_purchase_orders_run_id", "purchase_orders", ["run_id"])
    op.create_index("ix_purchase_orders_supplier", "purchase_orders", ["supplier"])
    op.create_index("ix_purchase_orders_status", "purchase_orders", ["status"])

    op.create_table(
        "purchase_order_lines",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("purchase_order_id", sa.Integer(), sa.ForeignKey("purchase_orders.id"), nullable=False),
        sa.Column("sku", sa.String(200), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("proposed_quantity", sa.Float(), nullable=False),
        sa.Column("unit_price", sa.Float(), nullable=False),
        sa.Column("line_value", sa.Float(), nullable=False),
        sa.Column("arrival_period", sa.Integer(), nullable=False),
        sa.Column("lead_time", sa.Integer(), nullable=False),
        sa.Column("transit_time", sa.Integer(), nullable=False),
        sa.Column("moq", sa.Integer(), nullable=False),
        sa.Column("order_multiple", sa.Integer(), nullable=False),
        sa.Column("price_schedule", sa.JSON(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.UniqueConstraint("purchase_order_id", "sku", name="uq_purchase_order_lines_po_sku"),
        sa.CheckConstraint("quantity >= 0", name="ck_purchase_order_lines_quantity"),
    )
    op.create_index(
        "ix_purchase_order_lines_purchase_order_id", "purchase_order_lines", ["purchase_order_id"]
    )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("purchase_order_id", sa.Integer(), sa.ForeignKey("purchase_orders.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("field", sa.String(200), nullable=True),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index("ix_audit_events_purchase_order_id", "audit_events", ["purchase_order_id"])
    _make_audit_append_only()


def _make_audit_append_only() -> None:
    """Database triggers refuse UPDATE and DELETE on the audit trail, whoever connects."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{operation.lower()} BEFORE {operation} ON audit_events "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    op.drop_table("audit_events")
    op.drop_table("purchase_order_lines")
    op.drop_table("purchase_orders")
    op.drop_table("runs")
