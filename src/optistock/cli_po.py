"""``optistock po``: review, approve, reject, edit, export and trace proposed purchase orders."""

from __future__ import annotations

import json
from pathlib import Path

import click

from optistock.cli_common import EXIT_CODES_HELP, db_option, echo_frame, handle_errors, print_table, store_at
from optistock.store.schema import POStatus
from optistock.store.workflow import (
    EXPORT_FORMATS,
    decide,
    edit_line,
    export_purchase_orders,
    history,
    list_purchase_orders,
    parse_reference,
    show_purchase_order,
)

STATUSES = [status.value for status in POStatus]

PO_HELP = (
    EXIT_CODES_HELP
    + """\b
Purchase-order ids are the numbers in `optistock po list`. Append @VERSION (e.g. 17@3) to act only
if the order is still the version you looked at; otherwise the command is refused (exit 6).
"""
)


@click.group(epilog=PO_HELP)
def po() -> None:
    """Review the purchase orders recorded runs proposed, decide on them and send them.

    \b
    Example (the whole workflow):
      optistock run scenarios/demo/base.yaml --out runs/base --record
      optistock po list --status proposed
      optistock po show 17
      optistock po edit 17 --sku SKU-003 --quantity 240 --by alice
      optistock po approve 17 18 --by alice --note "checked with finance"
      optistock po export --format xlsx --out outbox/ --by alice
      optistock po history 17
    """


@po.command("list", epilog=PO_HELP)
@click.option("--run", "run_id", type=int, help="Only this run's purchase orders.")
@click.option("--supplier", help="Only this supplier's purchase orders.")
@click.option("--status", type=click.Choice(STATUSES), help="Only purchase orders with this status.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@db_option
@handle_errors
def list_command(
    run_id: int | None, supplier: str | None, status: str | None, fmt: str, db: str | None
) -> None:
    """List purchase orders, newest run first.

    \b
    Example:
      optistock po list --status proposed --supplier ACME
      optistock po list --run 3 --format csv > run3.csv
    """
    with store_at(db) as store:
        table = list_purchase_orders(store, run_id, supplier, status)
    echo_frame(table, fmt, empty="no purchase orders match")


@po.command("show", epilog=PO_HELP)
@click.argument("po_id")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@db_option
@handle_errors
def show_command(po_id: str, fmt: str, db: str | None) -> None:
    """Show one purchase order: lines, totals, dates and why each line is there.

    \b
    Example:
      optistock po show 17
    """
    with store_at(db) as store:
        view = show_purchase_order(store, parse_reference(po_id))
    if fmt == "json":
        document = {
            "purchase_order": view.header,
            "lines": view.lines.to_dict("records"),
            "why": view.explanations,
        }
        click.echo(json.dumps(document, indent=2, default=str))
        return
    header = view.header
    dates = ", ".join(str(d) for d in header["delivery_dates"]) or "n/a (scenario has no horizon.start)"
    click.echo(
        f"Purchase order {header['id']} (version {header['version']}): {header['status']}\n"
        f"  supplier {header['supplier']} -> {header['ship_to']}, run {header['run']} "
        f"({header['scenario']}, {header['plan_po_id']})\n"
        f"  order period {header['order_period']}, order date {header['order_date'] or 'n/a'}, "
        f"delivery {dates}\n"
        f"  {header['lines']} lines, {header['units']:,.0f} units, total {header['total_value']:,.2f}"
    )
    print_table(view.lines)
    click.echo("Why these lines:")
    for explanation in view.explanations:
        click.echo(f"  - {explanation}")


def _decision(action: str) -> click.Command:
    """``po approve`` and ``po reject``: the same command with a different target status."""
    help_text = (
        f"{action.capitalize()} purchase orders, all or none: if any one is refused, none changes.\n\n"
        f"\b\nExample:\n  optistock po {action} 17 18@2 --by alice --note 'as discussed'"
    )

    @po.command(action, help=help_text, epilog=PO_HELP)
    @click.argument("po_ids", nargs=-1, required=True)
    @click.option("--by", required=True, help="Who decides (recorded in the audit trail).")
    @click.option("--note", help="Why (recorded in the audit trail).")
    @db_option
    @handle_errors
    def command(po_ids: tuple[str, ...], by: str, note: str | None, db: str | None) -> None:
        references = [parse_reference(text) for text in po_ids]
        with store_at(db) as store:
            decide(store, references, action, by, note)
        done = "approved" if action == "approve" else "rejected"
        click.echo(f"{done}: {', '.join(str(r.id) for r in references)} (by {by})")

    return command


approve_command = _decision("approve")
reject_command = _decision("reject")


@po.command("edit", epilog=PO_HELP)
@click.argument("po_id")
@click.option("--sku", required=True, help="The line to change.")
@click.option("--quantity", required=True, type=float, help="New quantity in units (0 removes the line).")
@click.option("--by", required=True, help="Who edits (recorded in the audit trail).")
@click.option("--note", help="Why (recorded in the audit trail).")
@db_option
@handle_errors
def edit_command(po_id: str, sku: str, quantity: float, by: str, note: str | None, db: str | None) -> None:
    """Change the quantity of one line of a proposed purchase order.

    The quantity must respect the offer's MOQ and pack multiple (else nothing changes, exit 2); the
    unit price follows the price breaks. The run's whole plan is re-simulated with the change and
    any limit it now breaks (budget, supplier capacity, storage, PO minimum value) is reported as a
    warning.

    \b
    Example:
      optistock po edit 17 --sku SKU-003 --quantity 240 --by alice --note "promo stock"
    """
    reference = parse_reference(po_id)
    with store_at(db) as store:
        outcome = edit_line(store, reference, sku, quantity, by, note)
    click.echo(
        f"purchase order {reference.id}, {sku}: {outcome.old_quantity:g} -> {outcome.new_quantity:g} units "
        f"at {outcome.new_unit_price:g}/unit (was {outcome.old_unit_price:g})"
    )
    if outcome.cost_before is not None and outcome.cost_after is not None:
        delta = outcome.cost_after - outcome.cost_before
        click.echo(f"plan cost {outcome.cost_before:,.2f} -> {outcome.cost_after:,.2f} ({delta:+,.2f})")
    for warning in outcome.warnings:
        click.echo(f"warning: {warning}", err=True)


@po.command("export", epilog=PO_HELP)
@click.option(
    "--status",
    type=click.Choice([POStatus.APPROVED.value, POStatus.SENT.value]),
    default=POStatus.APPROVED.value,
    show_default=True,
    help="Which orders to export; approved ones become sent.",
)
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="csv", show_default=True)
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Folder for the files.")
@click.option("--by", required=True, help="Who sends (recorded in the audit trail).")
@db_option
@handle_errors
def export_command(status: str, fmt: str, out: Path, by: str, db: str | None) -> None:
    """Write one file per supplier with its order lines; exported approved orders become sent.

    The files are written first and the orders marked sent in the same transaction, which commits
    only when every file is in place.

    \b
    Example:
      optistock po export --format xlsx --out outbox/2027-01-04 --by alice
    """
    with store_at(db) as store:
        outcome = export_purchase_orders(store, status, fmt, out, by)
    if not outcome.files:
        click.echo(f"no {status} purchase orders to export")
        return
    click.echo(
        f"exported {len(outcome.purchase_orders)} purchase orders to {len(outcome.files)} files in {out}"
    )
    for path in outcome.files:
        click.echo(f"  {path}")


@po.command("history", epilog=PO_HELP)
@click.argument("po_id")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@db_option
@handle_errors
def history_command(po_id: str, fmt: str, db: str | None) -> None:
    """Show the audit trail of a purchase order: who changed what, when, old -> new.

    \b
    Example:
      optistock po history 17
    """
    with store_at(db) as store:
        table = history(store, parse_reference(po_id))
    echo_frame(table, fmt)
