"""``optistock scenarios``, ``sweep`` and ``compare``: what-if analysis on the command line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
import pandas as pd

from optistock.cli_common import EXIT_CODES_HELP, handle_errors, scenario_names_option
from optistock.errors import InputError
from optistock.whatif.changes import describe_change
from optistock.whatif.compare import format_kpi_table, kpi_table, po_changes, write_comparison
from optistock.whatif.scenario_file import load_scenario_file, schema_text
from optistock.whatif.sweep import axes_with_origins, checked_solver_overrides, run_sweep, sweep_cases

logger = logging.getLogger("optistock")


@click.group(epilog=EXIT_CODES_HELP)
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


@click.command(epilog=EXIT_CODES_HELP)
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


@click.command(epilog=EXIT_CODES_HELP)
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
