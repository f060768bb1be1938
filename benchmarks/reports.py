"""Time and memory of the inventory reports on named synthetic sizes: classification and stock policy (at
load), valuation and KPIs, and the safety-stock shortfall reasons.

Usage::

    python benchmarks/reports.py --sizes S M L [--seed 0] [--repeat 3]

Each size is generated with the benchmark generator and loaded with service targets by ABC class
(``A: 0.98, B: 0.95, C: 0.90``). The plan whose reports are timed orders nothing, so every SKU-warehouse
with demand is short of safety stock in every period: the worst case for the shortfall reasons, and the
same table sizes as any plan for the KPIs. Each phase is timed ``--repeat`` times in this process; the
table gives medians in seconds and the peak RSS of the process after all of them.
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import pandas as pd

try:
    from optistock.synthetic import NAMED_SIZES, generate_instance, write_instance
except ImportError:  # a source checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from optistock.synthetic import NAMED_SIZES, generate_instance, write_instance

from optistock.postprocess.kpis import compute_kpis
from optistock.postprocess.shortfalls import shortfall_table
from optistock.postprocess.simulate import evaluate_plan
from optistock.preprocess.data import load_problem

logger = logging.getLogger("benchmarks.reports")
T = TypeVar("T")

SCENARIO = """\
name: reports-{size}
data: .
horizon: {{periods: {periods}, start: 2027-01-04}}
service:
  targets: {{A: 0.98, B: 0.95, C: 0.90}}
"""


def _timed(repeat: int, work: Callable[[], T]) -> tuple[float, T]:
    """Median seconds of ``repeat`` calls of ``work`` and its last result."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=["S", "M"], choices=sorted(NAMED_SIZES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    for name in args.sizes:
        size = NAMED_SIZES[name]
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            write_instance(generate_instance(size, args.seed), root)
            (root / "scenario.yaml").write_text(
                SCENARIO.format(size=name, periods=size.periods), encoding="utf-8"
            )
            load_s, problem = _timed(args.repeat, partial(load_problem, root / "scenario.yaml"))
        empty_orders = pd.DataFrame(columns=["supplier", "sku", "warehouse", "order_period", "quantity"])
        empty_transfers = pd.DataFrame(
            columns=["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"]
        )
        evaluate_s, evaluation = _timed(
            args.repeat, partial(evaluate_plan, problem, empty_orders, empty_transfers)
        )
        kpi_s, _ = _timed(args.repeat, partial(compute_kpis, problem, evaluation))
        shortfall_s, shortfalls = _timed(args.repeat, partial(shortfall_table, problem, evaluation))
        rows.append(
            {
                "size": name,
                "cells": len(evaluation.inventory),
                "safety_stock_cells": len(problem.safety_stock),
                "shortfall_rows": len(shortfalls),
                "load_s (classes + policy)": round(load_s, 2),
                "evaluate_s": round(evaluate_s, 2),
                "kpis_s": round(kpi_s, 2),
                "shortfalls_s": round(shortfall_s, 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
        logger.warning("%s done", name)
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
