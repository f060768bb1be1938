"""The ``optistock`` command line. It only orchestrates the pipeline in :mod:`optistock.pipeline`.

Exit codes: 0 plan written; 1 unexpected error (a bug: ``--debug`` shows the traceback);
2 bad input (scenario YAML, an input table, a store that cannot be used, a refused purchase-order
command); 3 hard constraints cannot be met; 4 no plan found within the time limit; 6 a purchase order
changed since it was read; 5 (``batch``) another batch holds the lock.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path

import click

from optistock import __version__
from optistock.cli_batch import batch
from optistock.cli_common import (
    EXIT_CODES_HELP,
    db_option,
    echo_frame,
    handle_errors,
    scenario_names_option,
    store_at,
)
from optistock.cli_po import po
from optistock.cli_suppliers import suppliers
from optistock.cli_whatif import compare, scenarios, sweep
from optistock.console import log_stream
from optistock.pipeline import run_scenario
from optistock.preprocess.data import load_problem


@click.group(epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="optistock")
@click.option("-v", "--verbose", count=True, help="More log output (-vv shows the solver log).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors in the log.")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
def main(verbose: int, quiet: bool, debug: bool) -> None:
    """optistock: multi-warehouse procurement optimisation.

    Example: optistock run scenarios/demo/base.yaml --out runs/base
    """
    level = logging.WARNING if quiet else (logging.INFO if verbose < 2 else logging.DEBUG)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=log_stream()
    )
    if verbose < 2:
        for noisy in ("alembic", "distributed"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option(
    "--out", "out", required=True, type=click.Path(path_type=Path), help="Output folder of the plan."
)
@click.option("--time-limit", type=float, help="Solver time limit in seconds (overrides solver.time_limit).")
@click.option("--mip-gap", type=float, help="Relative MIP gap to stop at (overrides solver.mip_gap).")
@click.option("--threads", type=int, help="Solver threads (overrides solver.threads).")
@click.option("--seed", type=int, help="Solver random seed (overrides solver.seed).")
@click.option(
    "--solver",
    "solver_name",
    type=click.Choice(["highs", "cpsat"]),
    help="Solver of the full MILP (overrides solver.name).",
)
@click.option(
    "--method",
    type=click.Choice(["auto", "milp", "decompose", "monolithic"]),
    help="How to solve (overrides solver.method; see the README's performance section).",
)
@click.option(
    "--workers",
    type=int,
    help="Sub-problems solved at once by fix-and-optimize on a local Dask cluster "
    "(overrides solver.workers).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Dask scheduler (tcp://host:8786) whose workers solve the sub-problems "
    "(overrides solver.scheduler).",
)
@click.option(
    "--record",
    is_flag=True,
    help="Store the run and its purchase orders as proposals (see `optistock po`); older proposals "
    "of the same scenario that were never approved become superseded.",
)
@db_option
@click.option(
    "--no-firm-orders",
    is_flag=True,
    help="Do not read approved and sent purchase orders from the store as open orders.",
)
@scenario_names_option
@handle_errors
def run(
    scenario: Path,
    out: Path,
    time_limit: float | None,
    mip_gap: float | None,
    threads: int | None,
    seed: int | None,
    solver_name: str | None,
    method: str | None,
    workers: int | None,
    scheduler: str | None,
    record: bool,
    db: str | None,
    no_firm_orders: bool,
    scenario_names: tuple[str, ...] = (),
) -> None:
    """Plan purchases and transfers for SCENARIO and write the plan to --out.

    \b
    Examples:
      optistock run scenarios/demo/base.yaml --out runs/base --time-limit 30
      optistock run scenarios/demo/whatif.yaml --scenario demand-spike,budget-cut --out runs/spike-cut

      optistock run scenarios/demo/base.yaml --out runs/base --record --db sqlite:///plans.db

    Writes orders.csv, purchase_orders.csv, transfer_plan.csv, inventory_plan.csv, summary.json and the
    resolved inputs/ to --out, atomically: on any error nothing is written.

    With --record or --db, approved and sent purchase orders of earlier runs of the same scenario are
    read from the store as open orders (firm commitments; their spend is taken off the budget), so
    the plan never orders the same goods twice. With --record the run is stored in one transaction
    that commits only once --out is complete.
    """
    with ExitStack() as stack:
        store = stack.enter_context(store_at(db)) if (record or db) else None
        result = run_scenario(
            scenario,
            out,
            scenario_names,
            store=store,
            record=record,
            firm_orders=not no_firm_orders,
            name=solver_name,
            time_limit=time_limit,
            mip_gap=mip_gap,
            threads=threads,
            seed=seed,
            method=method,
            workers=workers,
            scheduler=scheduler,
        )
    summary = result.summary
    gap = summary["gap"]
    gap_text = "n/a" if gap is None else f"{100 * gap:.3f}%"
    click.echo(
        f"{summary['status']}: cost {summary['objective']:,.2f}, gap {gap_text}, "
        f"{summary['plan']['purchase_orders']} purchase orders, {summary['plan']['order_lines']} lines, "
        f"{summary['plan']['transfers']} transfers -> {out}"
    )
    kpis = summary["kpis"]
    click.echo(
        f"fill rate {100 * kpis['fill_rate']:.1f}%, "
        f"cycle service level {100 * kpis['cycle_service_level']:.1f}%"
        + (f" (target {100 * kpis['service_target']:.1f}%)" if kpis["service_target"] is not None else "")
        + f", capital tied up {kpis['capital_tied_up']:,.2f}, turns {kpis['inventory_turns']:.1f}/year"
    )
    service = summary.get("service")
    if service:
        reasons = ", ".join(f"{name} {count}" for name, count in service["shortfall_reasons"].items())
        click.echo(
            f"safety stock: {service['safety_stock_units']:,.0f} units in {service['safety_stock_cells']} "
            f"SKU-warehouses; below it in {service['shortfall_cells']} SKU-warehouse-periods"
            + (f" ({reasons}; see safety_stock_shortfalls.csv)" if reasons else "")
        )
    firm = summary.get("firm_orders")
    if firm and firm["lines"]:
        click.echo(
            f"firm orders: {firm['lines_pending']} lines of {len(firm['purchase_orders'])} approved/sent "
            "purchase orders taken as open orders"
        )
    stored = summary.get("store")
    if stored:
        click.echo(
            f"recorded as run {stored['run_id']}: {stored['purchase_orders_proposed']} purchase orders "
            f"proposed, {len(stored['superseded_purchase_orders'])} older proposals superseded "
            f"(review with `optistock po list --run {stored['run_id']}`)"
        )
    for warning in summary["warnings"]:
        click.echo(f"warning: {warning}", err=True)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("scenario", type=click.Path(path_type=Path))
@scenario_names_option
@handle_errors
def check(scenario: Path, scenario_names: tuple[str, ...] = ()) -> None:
    """Validate SCENARIO and its input tables without solving.

    \b
    Examples:
      optistock check scenarios/demo/base.yaml
      optistock check scenarios/demo/whatif.yaml --scenario supplier-outage
    """
    problem = load_problem(scenario, scenario_names)
    for change in problem.changes:
        click.echo(f"change ({change['origin']}, {change['source']}): {change['effect']}", err=True)
    for warning in problem.warnings:
        click.echo(f"warning: {warning}", err=True)
    if problem.forecast is not None:
        series = problem.forecast.drop_duplicates(["sku", "warehouse"])["demand_class"].value_counts()
        classes = ", ".join(f"{count} {name}" for name, count in series.items())
        click.echo(
            f"demand forecast from the sales history: {int(series.sum())} series ({classes})", err=True
        )
    click.echo(
        f"ok: {len(problem.skus)} SKUs, {len(problem.warehouses)} warehouses, "
        f"{len(problem.suppliers)} suppliers, "
        f"{len(problem.offers)} offers, {problem.periods} periods"
    )


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("scenario", type=click.Path(path_type=Path))
@scenario_names_option
@click.option(
    "--by",
    "level",
    type=click.Choice(["sku", "sku-warehouse", "all"]),
    default="sku",
    show_default=True,
    help="One row per SKU, per SKU and warehouse, or both.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@handle_errors
def classify(scenario: Path, level: str, fmt: str, scenario_names: tuple[str, ...] = ()) -> None:
    """ABC classes by consumption value and XYZ classes by demand variability of SCENARIO.

    Thresholds come from the scenario's classification: section (default ABC 80/15/5 % of
    consumption value, XYZ coefficient of variation up to 0.5 / 1.0). The classes are those of the
    input tables before any what-if change; every run writes them to classes.csv.

    \b
    Examples:
      optistock classify scenarios/demo/base.yaml
      optistock classify scenarios/demo/base.yaml --by sku-warehouse --format csv > classes.csv
    """
    problem = load_problem(scenario, scenario_names)
    table = problem.classes
    if level == "sku":
        table = table[table["warehouse"] == "*"].drop(columns="warehouse")
    elif level == "sku-warehouse":
        table = table[table["warehouse"] != "*"]
    if fmt == "table":
        sku_rows = problem.classes[problem.classes["warehouse"] == "*"]
        counts = sku_rows.groupby("abc_xyz").size()
        click.echo("SKUs per class: " + ", ".join(f"{label} {count}" for label, count in counts.items()))
    echo_frame(table.reset_index(drop=True), fmt)


main.add_command(po)
main.add_command(batch)
main.add_command(scenarios)
main.add_command(sweep)
main.add_command(compare)
main.add_command(suppliers)
