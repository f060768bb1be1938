"""Benchmark the purchase-order store: recording a run and the workflow commands, per database.

One instance (a named synthetic size) is solved once; then, ``--repeat`` times on a fresh store, each
operation is timed and the medians printed (milliseconds):

- ``explain``: the why-this-line explanations of every order line;
- ``record``: writing the output folder and storing the run, its purchase orders, lines and audit
  events (one transaction; the explanations are computed again inside);
- ``list``, ``show``: ``po list`` over every order, ``po show`` of the largest one;
- ``edit``: one line edit, including re-simulating the run's whole plan for warnings;
- ``approve``: approving every order in one command;
- ``export``: exporting them as CSV (one file per supplier, orders become sent);
- ``firm``: reading the firm lines back and applying them to the next run's tables.

    python benchmarks/store.py --size M --time-limit 20 --repeat 5 [--pg-url postgresql+psycopg://…]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import generate_case_instance  # noqa: E402

from optistock.pipeline import RunResult, run_scenario, with_overrides, write_and_record  # noqa: E402
from optistock.postprocess.explain import explain_lines  # noqa: E402
from optistock.preprocess.commitments import Commitments  # noqa: E402
from optistock.preprocess.data import build_problem  # noqa: E402
from optistock.store.database import open_store  # noqa: E402
from optistock.store.records import firm_order_lines  # noqa: E402
from optistock.store.workflow import (  # noqa: E402
    PORef,
    decide,
    edit_line,
    export_purchase_orders,
    list_purchase_orders,
    show_purchase_order,
)
from optistock.whatif.scenario_file import load_scenario_file  # noqa: E402

logger = logging.getLogger("benchmarks.store")


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = function()
    return 1000 * (time.perf_counter() - started), value


def one_round(run: RunResult, scenario: Path, url: str, work: Path) -> dict[str, float]:
    """Time every operation once on a fresh store at ``url`` for the solved ``run``."""
    store = open_store(url)
    times: dict[str, float] = {}
    settings = with_overrides(run.problem, time_limit=ARGS.time_limit)
    started_at = dt.datetime.now(dt.timezone.utc)
    times["explain"], _ = timed(lambda: explain_lines(run.problem, run.evaluation))
    times["record"], _ = timed(lambda: write_and_record(run, settings, work / "run", store, started_at))
    listing = list_purchase_orders(store)
    times["list"], _ = timed(lambda: list_purchase_orders(store))
    largest = int(listing.sort_values("lines").iloc[-1]["id"])
    times["show"], view = timed(lambda: show_purchase_order(store, PORef(largest)))
    line = view.lines.iloc[0]
    new_quantity = float(line["quantity"]) + max(int(line["order_multiple"]), 1)
    times["edit"], _ = timed(
        lambda: edit_line(store, PORef(largest), str(line["sku"]), new_quantity, "bench")
    )
    ids = [PORef(int(i)) for i in listing["id"]]
    times["approve"], _ = timed(lambda: decide(store, ids, "approve", "bench"))
    times["export"], _ = timed(
        lambda: export_purchase_orders(store, "approved", "csv", work / "outbox", "bench")
    )

    def firm() -> None:
        setup = load_scenario_file(scenario)
        with store.transaction() as session:
            lines = firm_order_lines(session, setup.base_name)
        build_problem(setup.loaded, setup.changes, setup.classes, Commitments(lines, url, setup.base_name))

    times["firm"], _ = timed(firm)
    times["orders"] = float(len(listing))
    times["lines"] = float(listing["lines"].sum())
    store.close()
    return times


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        scenario = generate_case_instance(ARGS.size, ARGS.seed, root / "instance")
        run = run_scenario(scenario, None, time_limit=ARGS.time_limit, threads=1)
        backends = [("sqlite", None)] + ([("postgresql", ARGS.pg_url)] if ARGS.pg_url else [])
        results: dict[str, dict[str, float]] = {}
        for name, url in backends:
            rounds = []
            for index in range(ARGS.repeat):
                work = root / f"{name}-{index}"
                work.mkdir()
                if url is None:
                    round_url = f"sqlite:///{work / 'store.db'}"
                else:
                    round_url = url
                    _reset_postgres(url)
                rounds.append(one_round(run, scenario, round_url, work))
            results[name] = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    columns = ["orders", "lines", "explain", "record", "list", "show", "edit", "approve", "export", "firm"]
    print(f"size {ARGS.size}, seed {ARGS.seed}, medians of {ARGS.repeat} rounds, milliseconds")
    print(f"{'store':<11}" + "".join(f"{c:>9}" for c in columns))
    for name, row in results.items():
        print(f"{name:<11}" + "".join(f"{row[c]:>9.0f}" for c in columns))
    if ARGS.json:
        Path(ARGS.json).write_text(json.dumps(results, indent=2))
    return 0


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="M", help="named instance size (S, M, L, XL)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=20.0, help="solver time limit (s)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg-url", help="also benchmark this PostgreSQL database (it is emptied!)")
    parser.add_argument("--json", help="write the medians to this JSON file")
    return parser.parse_args()


if __name__ == "__main__":
    ARGS = parse()
    sys.exit(main())
