"""The ``optistock`` command line. It only orchestrates the pipeline in :mod:`optistock.pipeline`.

Exit codes: 0 plan written; 1 unexpected error (a bug: ``--debug`` shows the traceback);
2 bad input (scenario YAML or an input table); 3 hard constraints cannot be met;
4 no plan found within the time limit.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import pandas as pd

from optistock import __version__
from optistock.errors import ExitCode, InputError, OptistockError
from optistock.pipeline import run_scenario
from optistock.preprocess.data import load_problem
from optistock.whatif.changes import describe_change
from optistock.whatif.compare import format_kpi_table, kpi_table, po_changes, write_comparison
from optistock.whatif.scenario_file import load_scenario_file, schema_text
from optistock.whatif.sweep import axes_with_origins, checked_solver_overrides, run_sweep, sweep_cases

logger = logging.getLogger("optistock")

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = """\b
Exit codes:
  0  plan written
  1  unexpected error (use --debug for the traceback)
  2  bad input: scenario YAML or an input table (file, line and field are named)
  3  hard constraints cannot be met (the constraint, warehouse and period are named)
  4  no plan found within the time limit
"""


def _split_names(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name.strip() for text in value for name in text.split(",") if name.strip())


scenario_names_option = click.option(
    "--scenario",
    "scenario_names",
    multiple=True,
    callback=_split_names,
    help="Named scenario(s) of the file to apply, in order: --scenario a,b (see `optistock scenarios list`).",
)


def handle_errors(command: F) -> F:
    """One clear line on stderr and a documented exit code for every error; traceback with --debug."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return command(*args, **kwargs)
        except OptistockError as exc:
            if debug:
                logger.exception("failed")
            click.echo(f"error: {exc}", err=True)
            sys.exit(int(exc.exit_code))
        except click.exceptions.Exit:
            raise
        except Exception as exc:
            if debug:
                raise
            click.echo(
                f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for details)", err=True
            )
            sys.exit(int(ExitCode.UNEXPECTED))

    return wrapper  # type: ignore[return-value]


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
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option(
    "--out", "out", required=True, type=click.Path(path_type=Path), help="Output folder of the plan."
)
@click.option("--time-limit", type=float, help="Solver time limit in seconds (overrides solver.time_limit).")
@click.option("--mip-gap", type=float, help="Relative MIP gap to stop at (overrides solver.mip_gap).")
@click.option("--threads", type=int, help="Solver threads (overrides solver.threads).")
@click.option("--seed", type=int, help="Solver random seed (overrides solver.seed).")
@scenario_names_option
@handle_errors
def run(
    scenario: Path,
    out: Path,
    time_limit: float | None,
    mip_gap: float | None,
    threads: int | None,
    seed: int | None,
    scenario_names: tuple[str, ...] = (),
) -> None:
    """Plan purchases and transfers for SCENARIO and write the plan to --out.

    \b
    Examples:
      optistock run scenarios/demo/base.yaml --out runs/base --time-limit 30
      optistock run scenarios/demo/whatif.yaml --scenario demand-spike,budget-cut --out runs/spike-cut

    Writes orders.csv, purchase_orders.csv, transfer_plan.csv, inventory_plan.csv, summary.json and the
    resolved inputs/ to --out, atomically: on any error nothing is written.
    """
    result = run_scenario(
        scenario,
        out,
        scenario_names=scenario_names,
        time_limit=time_limit,
        mip_gap=mip_gap,
        threads=threads,
        seed=seed,
    )
    summary = result.summary
    gap = summary["gap"]
    gap_text = "n/a" if gap is None else f"{100 * gap:.3f}%"
    click.echo(
        f"{summary['status']}: cost {summary['objective']:,.2f}, gap {gap_text}, "
        f"{summary['plan']['purchase_orders']} purchase orders, {summary['plan']['order_lines']} lines, "
        f"{summary['plan']['transfers']} transfers -> {out}"
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
    click.echo(
        f"ok: {len(problem.skus)} SKUs, {len(problem.warehouses)} warehouses, "
        f"{len(problem.suppliers)} suppliers, "
        f"{len(problem.offers)} offers, {problem.periods} periods"
    )


@main.group(epilog=EXIT_CODES_HELP)
def scenarios() -> None:
    """Inspect scenario files: what they define, and their JSON Schema.

    \b
    Examples:
      optistock scenarios list scenarios/demo/whatif.yaml
      optistock scenarios schema --out scenarios/scenario.schema.json
    """


@scenarios.command("list", epilog=EXIT_CODES_HELP)
@click.argument("scenario", type=click.Path(path_type=Path))
@handle_errors
def list_scenarios(scenario: Path) -> None:
    """Show the base, its changes, the named scenarios and the sweep parameters defined in SCENARIO.

    \b
    Example:
      optistock scenarios list scenarios/demo/whatif.yaml
    """
    setup = load_scenario_file(scenario)
    base = setup.loaded.scenario
    chain = " -> ".join(str(path) for path in setup.files)
    click.echo(f"base: {base.name} ({base.horizon.periods} periods, data {setup.loaded.data_dir})")
    click.echo(f"  files: {chain}")
    for located in setup.changes:
        click.echo(f"  change: {describe_change(located.change)}  [{located.source}]")
    click.echo(f"scenarios ({len(setup.scenarios)}):")
    for name, named in setup.scenarios.items():
        click.echo(f"  {name}: {named.description}".rstrip())
        for change in named.changes:
            click.echo(f"    - {describe_change(change)}")
    if setup.sweep:
        click.echo("sweep:")
        for key, values in setup.sweep.items():
            click.echo(f"  {key} = {', '.join(str(v) for v in values)}")


@scenarios.command("schema", epilog=EXIT_CODES_HELP)
@click.option(
    "--out", "out", type=click.Path(path_type=Path), help="Write the schema to this file instead of stdout."
)
def schema(out: Path | None) -> None:
    """Print the JSON Schema of scenario files (for editor autocompletion).

    \b
    Example:
      optistock scenarios schema --out scenarios/scenario.schema.json
    """
    text = schema_text()
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Write the KPI table as CSV here.")
@click.option("--excel", "excel_path", type=click.Path(path_type=Path), help="Write an Excel workbook here.")
@handle_errors
def compare(run_dirs: tuple[Path, ...], csv_path: Path | None, excel_path: Path | None) -> None:
    """Compare written runs side by side, with deltas against the first run.

    Prints costs, purchase spend, fill rate, backorders, stock value, inventory turns, days of supply,
    POs and lines, peak storage use per warehouse, budget use and spend per supplier, then the purchase
    orders that appear, disappear or change. --csv also writes NAME.po_changes.csv beside the file;
    --excel writes the sheets kpis and po_changes.

    \b
    Example:
      optistock compare runs/base runs/spike runs/outage --excel runs/compare.xlsx
    """
    table = kpi_table(list(run_dirs))
    changes = po_changes(list(run_dirs))
    click.echo(format_kpi_table(table))
    click.echo("")
    if changes.empty:
        click.echo("purchase orders: no changes")
    else:
        click.echo(f"purchase orders: {len(changes)} change(s) against {table.columns[0]}")
        for row in changes.to_dict("records"):
            values = f"{_money(row['value_before'])} -> {_money(row['value_after'])}"
            click.echo(f"  {row['run']}: {row['change']:<7} {row['po_id']}  {values}  {row['detail']}")
    write_comparison(table, changes, csv_path, excel_path)


def _money(value: Any) -> str:
    return "-" if pd.isna(value) else f"{float(value):,.2f}"


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option(
    "--out", "out", required=True, type=click.Path(path_type=Path), help="Output folder of the sweep."
)
@click.option(
    "--set",
    "set_options",
    multiple=True,
    metavar="CHANGE.FIELD=V1,V2",
    help="A sweep parameter and its values (repeatable; replaces the file's sweep: entry of that name).",
)
@scenario_names_option
@click.option("--scheduler", help="Address of an existing Dask scheduler (default: a local cluster).")
@click.option(
    "--workers", type=click.IntRange(min=1), help="Workers of the local cluster (default: one per core)."
)
@click.option("--time-limit", type=float, help="Solver time limit per case in seconds.")
@click.option("--mip-gap", type=float, help="Relative MIP gap to stop at, per case.")
@click.option("--seed", type=int, help="Solver random seed.")
@handle_errors
def sweep(
    scenario: Path,
    out: Path,
    set_options: tuple[str, ...],
    scenario_names: tuple[str, ...],
    scheduler: str | None,
    workers: int | None,
    time_limit: float | None,
    mip_gap: float | None,
    seed: int | None,
) -> None:
    """Solve every combination of the sweep parameters in parallel on Dask.

    One run folder per case in --out/cases/, the combined KPI table --out/kpis.csv and kpis.parquet,
    and --out/sweep.json. A case that fails is reported with its reason; the others go on.
    Each case is solved with one solver thread.

    \b
    Examples:
      optistock sweep scenarios/demo/sweep.yaml --out runs/sweep
      optistock sweep scenarios/demo/base.yaml --out runs/sweep \\
          --set budget.scale=0.8,0.9,1.0,1.1 --set demand.scale=1.0,1.2
    """
    setup = load_scenario_file(scenario, scenario_names)
    axes, origins = axes_with_origins(setup.sweep, setup.sweep_origin, set_options)
    if not axes:
        raise InputError(
            "nothing to sweep: give --set CHANGE.FIELD=V1,V2 or a sweep: section", file=str(scenario)
        )
    overrides = checked_solver_overrides(setup, time_limit=time_limit, mip_gap=mip_gap, seed=seed)
    cases = sweep_cases(axes, origins)
    click.echo(f"sweep: {len(cases)} case(s) of {scenario}", err=True)

    def report(outcome: dict[str, Any], done: int, total: int) -> None:
        cost = outcome.get("objective")
        result = f"cost {cost:,.2f}" if isinstance(cost, float) else outcome["reason"]
        click.echo(f"[{done}/{total}] {outcome['folder']}: {outcome['status']}: {result}", err=True)

    table = run_sweep(
        scenario,
        out,
        cases,
        scenario_names,
        scheduler=scheduler,
        workers=workers,
        solver_overrides=overrides,
        progress=report,
    )
    failed = table["status"].astype(str).str.startswith("failed")
    click.echo(
        f"{len(table) - int(failed.sum())} of {len(table)} case(s) solved -> {out / 'kpis.csv'}, "
        f"{out / 'kpis.parquet'}"
    )
    for row in table[failed].to_dict("records"):
        click.echo(f"failed: {row['folder']}: {row['reason']}", err=True)
