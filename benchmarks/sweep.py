"""Benchmark of ``optistock sweep``: the same cases solved one after the other in this process, and on
local Dask clusters of 1..N single-threaded workers.

    python benchmarks/sweep.py --size S --cases 4 --time-limit 10 --workers 1 2

Generates the named synthetic instance (``optistock.synthetic``) with a fixed seed, sweeps
``budget.scale`` over ``--cases`` values, and prints the wall-clock time of each way of running them
(including the cluster's start-up) and the speed-up over the sequential loop. Results also go to
``benchmarks/results/sweep.json`` with the machine and versions. Quote timings with the core count: on a
machine shared with other work the speed-up is lower than the worker count.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from optistock import __version__
from optistock.pipeline import run_scenario
from optistock.synthetic import NAMED_SIZES, generate_instance, write_instance
from optistock.whatif.sweep import located_changes, run_sweep, sweep_cases

HERE = Path(__file__).resolve().parent
logger = logging.getLogger("optistock.benchmarks.sweep")


def write_case(size: str, seed: int, folder: Path, time_limit: float) -> Path:
    write_instance(generate_instance(NAMED_SIZES[size], seed), folder / "data")
    scenario = folder / "scenario.yaml"
    scenario.write_text(
        f"name: sweep-{size}-{seed}\ndata: data\nhorizon:\n  periods: {NAMED_SIZES[size].periods}\n"
        f"solver:\n  time_limit: {time_limit}\n  mip_gap: 0.01\n  threads: 1\n  seed: 0\n",
        encoding="utf-8",
    )
    return scenario


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="S", choices=sorted(NAMED_SIZES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    scales = [round(0.7 + 0.1 * i, 2) for i in range(args.cases)]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        scenario = write_case(args.size, args.seed, work / "instance", args.time_limit)
        cases = sweep_cases({"budget.scale": list(scales)}, {})
        started = time.perf_counter()
        costs = []
        for case in cases:
            result = run_scenario(
                scenario, work / "sequential" / case.folder, extra_changes=located_changes(case), threads=1
            )
            costs.append(result.summary["objective"])
        sequential = time.perf_counter() - started
        rows.append({"mode": "sequential (one process)", "seconds": sequential, "speed_up": 1.0})
        for workers in args.workers:
            started = time.perf_counter()
            table = run_sweep(scenario, work / f"dask-{workers}", cases, workers=workers)
            seconds = time.perf_counter() - started
            solved = int((~table["status"].astype(str).str.startswith("failed")).sum())
            rows.append(
                {
                    "mode": f"dask, {workers} worker(s)",
                    "seconds": seconds,
                    "speed_up": sequential / seconds,
                    "solved": solved,
                }
            )
    print(f"{args.cases} cases of size {args.size}, time limit {args.time_limit:g} s, {os.cpu_count()} cores")
    for row in rows:
        print(f"  {row['mode']:<26} {row['seconds']:8.1f} s   speed-up {row['speed_up']:.2f}")
    args.results.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": "python benchmarks/sweep.py " + " ".join(argv or []),
        "platform": platform.platform(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "optistock": __version__,
        "size": args.size,
        "cases": args.cases,
        "time_limit": args.time_limit,
        "sequential_costs": costs,
    }
    (args.results / "sweep.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
