"""``optistock suppliers``: supplier reliability from the receipts history."""

from __future__ import annotations

from pathlib import Path

import click

from optistock.cli_common import EXIT_CODES_HELP, handle_errors, print_table, scenario_names_option
from optistock.errors import InputError
from optistock.postprocess.writer import write_csv
from optistock.preprocess.data import load_problem
from optistock.suppliers.scorecard import LEVEL_KEYS, ScorecardLevel, supplier_scorecard


@click.group(epilog=EXIT_CODES_HELP)
def suppliers() -> None:
    """Supplier reliability from the receipts table of a scenario.

    \b
    Example:
      optistock suppliers scorecard scenarios/demo/history.yaml --by sku
    """


@suppliers.command("scorecard", epilog=EXIT_CODES_HELP)
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option(
    "--by",
    type=click.Choice(list(LEVEL_KEYS)),
    default="supplier",
    show_default=True,
    help="One row per supplier, per supplier and SKU, or per supplier, SKU and warehouse.",
)
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Also write the table as CSV here.")
@scenario_names_option
@handle_errors
def scorecard(
    scenario: Path, by: ScorecardLevel, csv_path: Path | None, scenario_names: tuple[str, ...] = ()
) -> None:
    """Show on-time rate, fill rate and lead-time mean and std from SCENARIO's receipts table.

    A receipt line is on time when received_period <= promised_period (never delivered: late); the fill
    rate is units received (up to the quantity ordered) over units ordered; the lead time is
    received - ordered, in periods, over the lines delivered (std: sample, blank below two).

    \b
    Examples:
      optistock suppliers scorecard scenarios/demo/history.yaml
      optistock suppliers scorecard scenarios/demo/history.yaml --by sku --csv scorecard.csv
    """
    problem = load_problem(scenario, scenario_names)
    if "receipts" not in problem.tables:
        raise InputError(
            "no receipts table: the scorecard needs receipts.csv or receipts.parquet in the data folder",
            file=str(scenario),
        )
    table = supplier_scorecard(problem.receipts, by=by)
    print_table(table, title=f"supplier scorecard ({len(problem.receipts)} receipt lines, periods)")
    if csv_path is not None:
        write_csv(table, csv_path)
        click.echo(f"wrote {csv_path}", err=True)
