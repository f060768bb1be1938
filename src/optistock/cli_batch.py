"""``optistock batch``: the unattended nightly re-plan."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from optistock.batch.logs import configure_batch_logging
from optistock.batch.runner import run_batch
from optistock.cli_common import db_option
from optistock.errors import ExitCode, OptistockError

logger = logging.getLogger("optistock.batch")

BATCH_EXIT_CODES = """\b
Exit codes:
  0  plan written (or inputs unchanged since the last published run)
  1  unexpected error (the log has the traceback)
  2  bad input or config: the file, line or row, and field are named
  3  hard constraints cannot be met (named)
  4  no plan within the deadline
  5  another batch holds the lock on the store
"""


@click.command(epilog=BATCH_EXIT_CODES)
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Plan again even if the inputs are unchanged since the last run.")
@click.option(
    "--deadline", help="Override the config's deadline: HH:MM (next occurrence) or an ISO date-time."
)
@db_option
@click.option(
    "--log-file", type=click.Path(path_type=Path), help="Also write the JSON log lines to this file."
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "text"]),
    default="auto",
    show_default=True,
    help="stderr log: auto = JSON lines unless stderr is a terminal.",
)
@click.pass_context
def batch(
    context: click.Context,
    config: Path,
    force: bool,
    deadline: str | None,
    db: str | None,
    log_file: Path | None,
    log_format: str,
) -> None:
    """Re-plan unattended: refresh the inputs, solve within the deadline, publish the run folder
    atomically and record its purchase orders as proposals in one transaction.

    \b
    Example:
      optistock batch scenarios/batch/demo-nightly.yaml
      optistock batch nightly.yaml --deadline 05:30 --log-file /var/log/optistock/batch.jsonl

    Each run's log is also kept as OUTPUT_ROOT/logs/<run>.jsonl next to OUTPUT_ROOT/<run>/.
    """
    root = context.find_root().params
    level = (
        logging.WARNING
        if root.get("quiet")
        else (logging.DEBUG if root.get("verbose", 0) >= 2 else logging.INFO)
    )
    configure_batch_logging(level, log_format, log_file)
    try:
        outcome = run_batch(config, force=force, deadline=deadline, db=db)
    except OptistockError as exc:
        sys.exit(int(exc.exit_code))  # already logged, with its exit code
    except Exception:
        if root.get("debug"):
            raise
        sys.exit(int(ExitCode.UNEXPECTED))
    if outcome.status == "unchanged":
        click.echo(f"unchanged: inputs as in run {outcome.run_id} ({outcome.run_dir}); nothing to do")
        return
    summary = outcome.summary
    gap = summary.get("gap")
    click.echo(
        f"planned: run {outcome.run_id}, cost {summary['objective']:,.2f}, "
        f"gap {'n/a' if gap is None else f'{100 * gap:.2f}%'}, "
        f"{summary['plan']['purchase_orders']} purchase orders proposed -> {outcome.run_dir} "
        f"(log: {outcome.log})"
    )
    for entry in outcome.what_if:
        click.echo(f"what-if {entry['what_if']}: {entry['status']} {entry.get('reason', '')}".rstrip())
