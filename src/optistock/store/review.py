"""Re-checking an edited purchase order against the whole plan of its run.

An edit can keep every line rule (MOQ, pack multiple, price breaks) and still break a plan-level limit:
the budget of the order period, the supplier's capacity, storage at the warehouse, or the PO minimum
value. Those are found the same way every plan is checked before it is written — by re-simulating it
(:func:`optistock.postprocess.simulate.evaluate_plan`) on the run's resolved inputs (``inputs/`` in
its output folder) — once as stored and once with the edit; the rules the edit newly breaks are
returned as warnings, with the plan's cost before and after.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from optistock.errors import OptistockError
from optistock.postprocess.simulate import evaluate_plan
from optistock.preprocess.data import load_problem
from optistock.store.schema import POStatus, PurchaseOrder

logger = logging.getLogger(__name__)

PLAN_STATUSES = (POStatus.PROPOSED.value, POStatus.APPROVED.value, POStatus.SENT.value)
"""Purchase orders of a run that still belong to its plan (rejected and superseded ones do not)."""


@dataclass
class PlanReview:
    warnings: list[str] = field(default_factory=list)
    cost_before: float | None = None
    cost_after: float | None = None


def plan_warnings(session: Session, edited: PurchaseOrder, new_quantities: dict[str, float]) -> PlanReview:
    """Rules of the run's plan that ``new_quantities`` (sku → quantity on ``edited``) newly break."""
    run = edited.run
    inputs = Path(run.output_dir) / "inputs" / "scenario.yaml"
    if not inputs.is_file():
        return PlanReview(
            [f"budget and capacities not re-checked: the run's inputs are gone ({inputs} not found)"]
        )
    try:
        problem = load_problem(inputs)
    except OptistockError as exc:
        return PlanReview([f"budget and capacities not re-checked: the run's inputs cannot be read ({exc})"])
    orders = _plan_orders(session, run.id)
    transfers_file = Path(run.output_dir) / "transfer_plan.csv"
    transfers = (
        pd.read_csv(transfers_file, dtype={"sku": str, "from_warehouse": str, "to_warehouse": str})
        if transfers_file.is_file()
        else pd.DataFrame(columns=["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"])
    )
    before = evaluate_plan(problem, orders, transfers)
    changed = orders.copy()
    for sku, quantity in new_quantities.items():
        mask = (changed["purchase_order_id"] == edited.id) & (changed["sku"] == sku)
        changed.loc[mask, "quantity"] = float(quantity)
    after = evaluate_plan(problem, changed, transfers)
    new = [violation for violation in after.violations if violation not in set(before.violations)]
    return PlanReview(new, before.total_cost, after.total_cost)


def _plan_orders(session: Session, run_id: int) -> pd.DataFrame:
    orders = session.scalars(
        select(PurchaseOrder)
        .where(PurchaseOrder.run_id == run_id, PurchaseOrder.status.in_(PLAN_STATUSES))
        .options(selectinload(PurchaseOrder.lines))
    ).all()
    rows = [
        {
            "purchase_order_id": po.id,
            "supplier": po.supplier,
            "sku": line.sku,
            "warehouse": po.warehouse,
            "order_period": po.order_period,
            "quantity": line.quantity,
        }
        for po in orders
        for line in po.lines
    ]
    return pd.DataFrame(
        rows, columns=["purchase_order_id", "supplier", "sku", "warehouse", "order_period", "quantity"]
    )
