"""Build benchmark: the time and memory to build the model and hand it to HiGHS, Pyomo against arrays.

Usage::

    python benchmarks/build.py --sizes S M L [--seed 0] [--repeat N] [--results DIR] [--keep DIR]

For every named size the instance is generated with the seed (as ``benchmarks/generate.py`` writes it),
then each case runs in a fresh Python subprocess, so that its peak resident memory (``ru_maxrss``) is
its own:

- ``sets``: load the scenario and ``build_sets`` (the baseline both builders start from);
- ``pyomo``: the same, then ``build_model`` and ``HighsSession(model)`` (Pyomo's persistent interface);
- ``arrays``: the same, then ``build_array_model`` (numpy arrays, one ``passModel`` call).

The table (medians over ``--repeat`` runs) is printed and written to ``DIR/build.csv`` (default
``benchmarks/results/``, git-ignored); every run goes to ``DIR/build_runs.csv``.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:
    from optistock.synthetic import NAMED_SIZES, generate_instance, write_instance
except ImportError:  # running from a source checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from optistock.synthetic import NAMED_SIZES, generate_instance, write_instance

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "results"
CASES = ("sets", "pyomo", "arrays")
FIELDS = (
    "size",
    "case",
    "load_s",
    "sets_s",
    "build_s",
    "hand_off_s",
    "model_s",
    "peak_rss_mb",
    "columns",
    "integer_columns",
    "rows",
    "nonzeros",
    "repeats",
)
NUMERIC = {"load_s", "sets_s", "build_s", "hand_off_s", "model_s", "peak_rss_mb"}
TABLE = (
    ("size", "size", "s"),
    ("case", "case", "s"),
    ("sets s", "sets_s", ".2f"),
    ("build s", "build_s", ".2f"),
    ("hand-off s", "hand_off_s", ".2f"),
    ("build+hand-off s", "model_s", ".2f"),
    ("peak RSS MB", "peak_rss_mb", ".0f"),
    ("columns", "columns", ","),
    ("integer", "integer_columns", ","),
    ("rows", "rows", ","),
    ("nonzeros", "nonzeros", ","),
)


def generate(size: str, seed: int, folder: Path) -> Path:
    """The named instance and the ``scenario.yaml`` of ``benchmarks/generate.py``; returns its path."""
    spec = importlib.util.spec_from_file_location("_optistock_bench_generate", HERE / "generate.py")
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships next to this one
        raise ImportError(f"cannot load {HERE / 'generate.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    write_instance(generate_instance(NAMED_SIZES[size], seed), folder)
    scenario = folder / "scenario.yaml"
    scenario.write_text(module.scenario_yaml(size, NAMED_SIZES[size], seed, "csv"), encoding="utf-8")
    return scenario


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def run_case_inprocess(case: str, scenario: Path) -> dict[str, Any]:
    """One case in this process (call it in a fresh one: the peak RSS is the process's)."""
    from optistock.backend.arrays import build_array_model
    from optistock.backend.model import build_model
    from optistock.backend.sets import build_sets
    from optistock.backend.solve import HighsSession
    from optistock.preprocess.data import load_problem

    started = time.perf_counter()
    problem = load_problem(scenario)
    loaded = time.perf_counter()
    sets = build_sets(problem)
    row: dict[str, Any] = {"case": case, "load_s": loaded - started, "sets_s": time.perf_counter() - loaded}
    if case == "pyomo":
        begin = time.perf_counter()
        model = build_model(problem, sets)
        built = time.perf_counter()
        session = HighsSession(model)
        highs = session._highs
        row.update(build_s=built - begin, hand_off_s=time.perf_counter() - built, peak_rss_mb=_peak_mb())
        row.update(columns=highs.getNumCol(), rows=highs.getNumRow(), nonzeros=highs.getNumNz())
        row["integer_columns"] = sum(int(v) != 0 for v in highs.getLp().integrality_)  # after the peak
    elif case == "arrays":
        array = build_array_model(problem, sets)
        row.update(
            build_s=array.timings["arrays"], hand_off_s=array.timings["hand_off"], peak_rss_mb=_peak_mb()
        )
        row.update(columns=array.num_cols, rows=array.num_rows, nonzeros=array.highs.getNumNz())
        row["integer_columns"] = array.num_integer
    if "build_s" in row:
        row["model_s"] = row["build_s"] + row["hand_off_s"]
    row.setdefault("peak_rss_mb", _peak_mb())
    return row


def run_case(size: str, case: str, scenario: Path) -> dict[str, Any]:
    """One case in a fresh subprocess; its row (``error`` set when the child failed)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", case, str(scenario)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        tail = " | ".join(completed.stderr.strip().splitlines()[-3:])
        return {"size": size, "case": case, "error": f"exit {completed.returncode}: {tail}"}
    row = json.loads(completed.stdout.strip().splitlines()[-1])
    return {"size": size, **row}


def median_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {**rows[0], "repeats": len(rows)}
    for name in NUMERIC:
        values = [row[name] for row in rows if row.get(name) is not None]
        merged[name] = statistics.median(values) if values else None
    return merged


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    def cell(row: dict[str, Any], field: str, fmt: str) -> str:
        value = row.get(field)
        return "-" if value is None else format(value, fmt) if fmt != "s" else str(value)

    cells = [[header for header, _, _ in TABLE]]
    cells += [[cell(row, field, fmt) for _, field, fmt in TABLE] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(TABLE))]
    left = [fmt == "s" for _, _, fmt in TABLE]

    def render(line: Sequence[str]) -> str:
        parts = [
            t.ljust(w) if is_left else t.rjust(w) for t, w, is_left in zip(line, widths, left, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([render(cells[0]), "  ".join("-" * w for w in widths), *map(render, cells[1:])])


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=[*FIELDS, "error"], extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time building the model: Pyomo against arrays.")
    parser.add_argument("--sizes", nargs="+", default=["S", "M"], choices=list(NAMED_SIZES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the table reports medians")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--keep", type=Path, help="keep the generated instances here")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "SCENARIO"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_case_inprocess(args.child[0], Path(args.child[1]))))
        return 0

    with tempfile.TemporaryDirectory(prefix="optistock-build-") as temporary:
        work = args.keep or Path(temporary)
        medians: list[dict[str, Any]] = []
        runs: list[dict[str, Any]] = []
        for size in args.sizes:
            scenario = generate(size, args.seed, work / size)
            for case in args.cases:
                rows = []
                for repeat in range(args.repeat):
                    row = {**run_case(size, case, scenario), "repeat": repeat}
                    print(f"{size} {case} run {repeat + 1}: {row}", file=sys.stderr, flush=True)
                    rows.append(row)
                runs.extend(rows)
                good = [row for row in rows if "error" not in row]
                medians.append(median_row(good) if good else rows[0])
    args.results.mkdir(parents=True, exist_ok=True)
    write_csv(medians, args.results / "build.csv")
    write_csv(runs, args.results / "build_runs.csv")
    print(format_table(medians))
    return 1 if any("error" in row for row in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
