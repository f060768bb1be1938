"""Benchmark runner: generate named synthetic instances and solve each one in a fresh subprocess.

Usage::

    python benchmarks/run.py --sizes S M --time-limit 60 --seed 0 [--repeat N] [--threads K]
                             [--results DIR] [--keep DIR]

For every named size (:data:`optistock.synthetic.NAMED_SIZES`) the instance is generated with the fixed
seed (plus the ``scenario.yaml`` that ``benchmarks/generate.py`` writes), then every case (size x repeat)
runs ``optistock.pipeline.run_scenario`` with an output folder in its own Python process, so that the
peak resident memory (``ru_maxrss`` of the child) belongs to that case alone.  One row per case is
recorded; with ``--repeat N`` the numeric columns of the reported row are medians over the N runs.

Results go to ``--results DIR`` (default ``benchmarks/results/``, git-ignored) as ``results.csv`` /
``results.json`` (one row per size, medians) and ``runs.csv`` (every run); the table is printed to stdout.
See ``benchmarks/README.md`` for the meaning of each column.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import logging
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

try:
    from optistock.synthetic import NAMED_SIZES, generate_instance, write_instance
except ImportError:  # running from a source checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from optistock.synthetic import NAMED_SIZES, generate_instance, write_instance

logger = logging.getLogger("optistock.benchmarks")

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "results"

#: Every field of a result row, in CSV / table order.
FIELDS: tuple[str, ...] = (
    "size",
    "approach",
    "skus",
    "warehouses",
    "suppliers",
    "periods",
    "variables",
    "integer_variables",
    "constraints",
    "first_feasible_s",
    "load_s",
    "build_s",
    "solve_s",
    "write_s",
    "wall_s",
    "objective",
    "best_bound",
    "gap",
    "status",
    "termination",
    "method",
    "peak_rss_mb",
    "peak_tree_rss_mb",
    "baseline_rss_mb",
    "process_s",
    "time_limit",
    "threads",
    "seed",
    "repeats",
    "error",
)

NUMERIC_FIELDS: frozenset[str] = frozenset(
    {
        "variables",
        "integer_variables",
        "constraints",
        "first_feasible_s",
        "load_s",
        "build_s",
        "solve_s",
        "write_s",
        "wall_s",
        "objective",
        "best_bound",
        "gap",
        "peak_rss_mb",
        "peak_tree_rss_mb",
        "baseline_rss_mb",
        "process_s",
    }
)

#: Printed table: (header, field, format).
TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("size", "size", "s"),
    ("approach", "approach", "s"),
    ("skus x wh x sup x T", "dims", "s"),
    ("vars", "variables", ",.0f"),
    ("int vars", "integer_variables", ",.0f"),
    ("cons", "constraints", ",.0f"),
    ("1st feas s", "first_feasible_s", ".2f"),
    ("load s", "load_s", ".2f"),
    ("build s", "build_s", ".2f"),
    ("solve s", "solve_s", ".2f"),
    ("write s", "write_s", ".2f"),
    ("wall s", "wall_s", ".2f"),
    ("objective", "objective", ",.2f"),
    ("best bound", "best_bound", ",.2f"),
    ("gap %", "gap_pct", ".2f"),
    ("status", "status", "s"),
    ("method", "method", "s"),
    ("peak RSS MB", "peak_rss_mb", ",.0f"),
    ("tree RSS MB", "peak_tree_rss_mb", ",.0f"),
)


@dataclass(frozen=True)
class CaseSpec:
    """One benchmark case: which instance to solve, where to write it, and the solver overrides."""

    size: str
    scenario: str
    out: str
    time_limit: float | None = None
    threads: int | None = None
    mip_gap: float | None = None
    solver_seed: int | None = None
    instance_seed: int = 0
    approach: str = "engine"
    """``engine``: optistock's own strategy (``solver.method: auto``); ``monolithic``: the plain model
    handed whole to the solver (``solver.method: monolithic``)."""
    workers: int | None = None
    scheduler: str | None = None


# --------------------------------------------------------------------------- #
# instances
# --------------------------------------------------------------------------- #


def _scenario_yaml(size_name: str, seed: int, fmt: str) -> str:
    """The ``scenario.yaml`` text of ``benchmarks/generate.py`` (loaded by file path, not by module name)."""
    spec = importlib.util.spec_from_file_location("_optistock_bench_generate", HERE / "generate.py")
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships next to this one
        raise ImportError(f"cannot load {HERE / 'generate.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text: str = module.scenario_yaml(size_name, NAMED_SIZES[size_name], seed, fmt)
    return text


def generate_case_instance(size_name: str, seed: int, folder: Path, fmt: str = "csv") -> Path:
    """Generate the named instance with ``seed`` into ``folder``; return its ``scenario.yaml`` path."""
    tables = generate_instance(NAMED_SIZES[size_name], seed)
    write_instance(tables, folder, fmt=fmt)
    scenario = folder / "scenario.yaml"
    scenario.write_text(_scenario_yaml(size_name, seed, fmt), encoding="utf-8")
    return scenario


# --------------------------------------------------------------------------- #
# one case (runs in the child process)
# --------------------------------------------------------------------------- #


def _maxrss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    ``ru_maxrss`` is in KiB on Linux and in bytes on macOS.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


class TreeMemory:
    """The peak of the resident memory of this process and all its descendants (the Dask workers and
    their nannies) added up, sampled every ``interval`` seconds in a background thread while in use as
    a context manager. ``ru_maxrss`` sees this process only; pages that processes share are counted
    once per process, so the sum is an upper bound."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)

    def _sample_once(self) -> None:
        root = psutil.Process()
        total = 0
        for process in [root, *root.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:  # ended between the listing and the reading
                continue
        self.peak_mb = max(self.peak_mb, total / (1024.0 * 1024.0))

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample_once()

    def __enter__(self) -> TreeMemory:
        self._sample_once()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample_once()


def _dims(size_name: str) -> dict[str, int]:
    size = NAMED_SIZES[size_name]
    return {
        "skus": size.skus,
        "warehouses": size.warehouses,
        "suppliers": size.suppliers,
        "periods": size.periods,
    }


def run_case_inprocess(spec: CaseSpec) -> dict[str, Any]:
    """Run one case in *this* process and return its result row (see :data:`FIELDS`).

    The peak RSS is that of the calling process, so call it from a fresh process (:func:`run_case` does)
    when the memory figure matters.
    """
    from optistock.pipeline import run_scenario  # imported here: the import is part of the baseline RSS

    baseline = _maxrss_mb()
    overrides = {
        "time_limit": spec.time_limit,
        "threads": spec.threads,
        "mip_gap": spec.mip_gap,
        "seed": spec.solver_seed,
        "method": "monolithic" if spec.approach == "monolithic" else "auto",
        "name": "cpsat" if spec.approach == "cpsat" else None,
        "workers": spec.workers,
        "scheduler": spec.scheduler,
    }
    started = time.perf_counter()
    with TreeMemory() as tree_memory:
        run = run_scenario(Path(spec.scenario), out=Path(spec.out), **overrides)
    wall = time.perf_counter() - started
    summary = run.summary
    history = summary.get("incumbent_history") or []
    model = summary.get("model", {})
    solver = summary.get("solver", {})
    timings = run.timings
    return {
        "size": spec.size,
        "approach": spec.approach,
        **_dims(spec.size),
        "variables": model.get("variables"),
        "integer_variables": model.get("integer_variables"),
        "constraints": model.get("constraints"),
        "first_feasible_s": float(history[0]["seconds"]) if history else None,
        "load_s": timings.get("load"),
        "build_s": timings.get("build"),
        "solve_s": timings.get("solve"),
        "write_s": timings.get("write"),
        "wall_s": wall,
        "objective": summary.get("objective"),
        "best_bound": summary.get("best_bound"),
        "gap": summary.get("gap"),
        "status": summary.get("status"),
        "termination": summary.get("termination"),
        "method": summary.get("method"),
        "peak_rss_mb": _maxrss_mb(),
        "peak_tree_rss_mb": tree_memory.peak_mb,
        "baseline_rss_mb": baseline,
        "process_s": None,
        "time_limit": solver.get("time_limit"),
        "threads": solver.get("threads"),
        "seed": spec.instance_seed,
        "repeats": 1,
        "error": None,
    }


def _child_main(spec_json: str, result_path: Path) -> int:
    """Entry point of the child process: run the case and write its row as JSON."""
    spec = CaseSpec(**json.loads(spec_json))
    try:
        row = run_case_inprocess(spec)
    except Exception as exc:  # recorded in the row; the parent reports it
        logger.exception("case %s failed", spec.size)
        row = {
            "size": spec.size,
            "approach": spec.approach,
            **_dims(spec.size),
            "status": "error",
            "error": f"{type(exc).__name__}: {exc}",
            "peak_rss_mb": _maxrss_mb(),
            "seed": spec.instance_seed,
            "repeats": 1,
        }
    result_path.write_text(json.dumps(row, default=str), encoding="utf-8")
    return 0


# --------------------------------------------------------------------------- #
# one case (parent side)
# --------------------------------------------------------------------------- #


def _error_row(spec: CaseSpec, status: str, message: str) -> dict[str, Any]:
    return {
        "size": spec.size,
        "approach": spec.approach,
        **_dims(spec.size),
        "status": status,
        "error": message,
        "seed": spec.instance_seed,
    }


def run_case(spec: CaseSpec, *, timeout: float | None = None, log_path: Path | None = None) -> dict[str, Any]:
    """Run one case in a fresh Python subprocess and return its result row (all :data:`FIELDS`).

    The child's log (stderr) goes to ``log_path`` (default: ``<out>.log``).  A crash, a timeout or an
    exception in the pipeline gives a row with ``status`` ``error`` / ``timeout`` and an ``error`` message.
    """
    out = Path(spec.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = log_path or out.with_name(out.name + ".log")
    result_path = out.with_name(out.name + ".result.json")
    result_path.unlink(missing_ok=True)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child-case",
        json.dumps(asdict(spec)),
        "--child-result",
        str(result_path),
    ]
    started = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        try:
            completed = subprocess.run(
                command, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            row = _error_row(spec, "timeout", f"no result within {timeout:g} s (log: {log_path})")
            return _complete(row)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0 or not result_path.exists():
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        message = f"child exited with {completed.returncode}: " + " | ".join(tail)
        return _complete(_error_row(spec, "error", message))
    row = json.loads(result_path.read_text(encoding="utf-8"))
    row["process_s"] = elapsed
    return _complete(row)


def _complete(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with every field of :data:`FIELDS` present (missing ones ``None``) and in order."""
    extra = {key: value for key, value in row.items() if key not in FIELDS}
    return {**{name: row.get(name) for name in FIELDS}, **extra}


# --------------------------------------------------------------------------- #
# aggregation and output
# --------------------------------------------------------------------------- #


def _median(values: Sequence[Any]) -> float | int | None:
    """Median of ``values`` (``None`` when empty); integer when the values are integers and it is whole."""
    if not values:
        return None
    middle = statistics.median(values)
    if all(isinstance(value, int) for value in values) and float(middle).is_integer():
        return int(middle)
    return float(middle)


def median_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One row for the repeats of a case: medians of the numeric fields, agreement of the others."""
    first = rows[0]
    merged: dict[str, Any] = {}
    for name in FIELDS:
        values = [row.get(name) for row in rows]
        present = [value for value in values if value is not None]
        if name in NUMERIC_FIELDS:
            merged[name] = _median(present)
        elif name == "repeats":
            merged[name] = len(rows)
        elif name in ("status", "method", "termination"):
            counts = Counter(str(value) for value in values)
            merged[name] = (
                str(values[0])
                if len(counts) == 1
                else ",".join(f"{value}x{count}" for value, count in sorted(counts.items()))
            )
        elif name == "error":
            errors = sorted({str(value) for value in present})
            merged[name] = "; ".join(errors) if errors else None
        else:
            merged[name] = first.get(name)
    return merged


def _cell(row: dict[str, Any], field: str, fmt: str) -> str:
    if field == "dims":
        return f"{row['skus']}x{row['warehouses']}x{row['suppliers']}x{row['periods']}"
    value = row.get("gap") if field == "gap_pct" else row.get(field)
    if value is None:
        return "-"
    if field == "gap_pct":
        value = 100.0 * float(value)
    return format(value, fmt) if fmt != "s" else str(value)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Plain-text table of ``rows``, columns aligned (text left, numbers right)."""
    headers = [header for header, _, _ in TABLE_COLUMNS]
    cells = [[_cell(row, field, fmt) for _, field, fmt in TABLE_COLUMNS] for row in rows]
    widths = [max([len(headers[i]), *(len(line[i]) for line in cells)]) for i in range(len(headers))]
    left = [fmt == "s" for _, _, fmt in TABLE_COLUMNS]

    def render(line: Sequence[str]) -> str:
        parts = [
            text.ljust(w) if is_left else text.rjust(w)
            for text, w, is_left in zip(line, widths, left, strict=True)
        ]
        return "  ".join(parts).rstrip()

    lines = [render(headers), "  ".join("-" * width for width in widths)]
    lines.extend(render(line) for line in cells)
    return "\n".join(lines)


def write_csv_rows(rows: Sequence[dict[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(FIELDS), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_results(
    results: Sequence[dict[str, Any]], runs: Sequence[dict[str, Any]], folder: Path, meta: dict[str, Any]
) -> None:
    """Write ``results.csv``, ``runs.csv`` and ``results.json`` (with run metadata) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_csv_rows(results, folder / "results.csv")
    write_csv_rows(runs, folder / "runs.csv")
    document = {"meta": meta, "results": list(results), "runs": list(runs)}
    (folder / "results.json").write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    try:
        from importlib.metadata import version

        versions = {name: version(name) for name in ("optistock", "highspy", "pyomo")}
    except Exception:  # pragma: no cover - metadata is optional
        versions = {}
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "sizes": args.sizes,
        "seed": args.seed,
        "time_limit": args.time_limit,
        "threads": args.threads,
        "mip_gap": args.mip_gap,
        "repeat": args.repeat,
        "approaches": args.approaches,
        "workers": args.workers,
        "scheduler": args.scheduler,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "versions": versions,
    }


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Benchmark optistock on named synthetic instances (one fresh process per case)."
    )
    parser.add_argument(
        "--sizes", nargs="+", choices=list(NAMED_SIZES), default=["S", "M"], help="named sizes (default: S M)"
    )
    parser.add_argument("--seed", type=int, default=0, help="instance generator seed (default: 0)")
    parser.add_argument(
        "--time-limit", type=float, default=60.0, help="solver time limit per case, seconds (default: 60)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="solver threads (default: the scenario's, 2)"
    )
    parser.add_argument("--mip-gap", type=float, default=None, help="relative gap (default: the scenario's)")
    parser.add_argument(
        "--solver-seed", type=int, default=None, help="solver random seed (default: scenario's)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per size; medians are reported (default: 1)"
    )
    parser.add_argument(
        "--format", dest="fmt", choices=["csv", "parquet"], default="csv", help="instance files"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=DEFAULT_RESULTS,
        help="folder for results.csv/.json (default: %(default)s)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep instances, plans and logs in DIR (default: a temp folder)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="kill a case after this many seconds (default: 3 x limit + 300)",
    )
    parser.add_argument(
        "--approaches",
        nargs="+",
        choices=["engine", "monolithic", "cpsat"],
        default=["engine", "monolithic"],
        help="solve each size with optistock's strategy, the plain monolithic model, and/or the strategy "
        "with CP-SAT as the full MILP's solver (default: engine and monolithic)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="Dask workers for fix-and-optimize (default: threads)"
    )
    parser.add_argument(
        "--scheduler", default=None, help="address of a Dask scheduler to solve sub-problems on"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--child-case", help=argparse.SUPPRESS)
    parser.add_argument("--child-result", type=Path, help=argparse.SUPPRESS)
    return parser


def run_benchmarks(args: argparse.Namespace, work: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Generate and run every case under ``work``; return (median rows, all runs)."""
    results: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    timeout = args.timeout if args.timeout is not None else 3 * args.time_limit + 300
    for size_name in args.sizes:
        size = NAMED_SIZES[size_name]
        case_dir = work / size_name
        started = time.perf_counter()
        scenario = generate_case_instance(size_name, args.seed, case_dir / "instance", fmt=args.fmt)
        logger.info(
            "%s: %dx%dx%dx%d generated (seed %d) in %.1fs",
            size_name,
            size.skus,
            size.warehouses,
            size.suppliers,
            size.periods,
            args.seed,
            time.perf_counter() - started,
        )
        for approach in args.approaches:
            size_runs: list[dict[str, Any]] = []
            for index in range(1, args.repeat + 1):
                spec = CaseSpec(
                    size=size_name,
                    scenario=str(scenario),
                    out=str(case_dir / f"{approach}-{index}"),
                    time_limit=args.time_limit,
                    threads=args.threads,
                    mip_gap=args.mip_gap,
                    solver_seed=args.solver_seed,
                    instance_seed=args.seed,
                    approach=approach,
                    workers=args.workers,
                    scheduler=args.scheduler,
                )
                logger.info(
                    "%s %s: run %d/%d (time limit %gs)",
                    size_name,
                    approach,
                    index,
                    args.repeat,
                    args.time_limit,
                )
                row = run_case(spec, timeout=timeout)
                row["run"] = index
                if row["error"]:
                    logger.error(
                        "%s %s run %d: %s: %s", size_name, approach, index, row["status"], row["error"]
                    )
                else:
                    logger.info(
                        "%s %s run %d: %s, objective %.2f, gap %.2f%%, %.1fs, peak RSS %.0f MB",
                        size_name,
                        approach,
                        index,
                        row["status"],
                        row["objective"],
                        100.0 * (row["gap"] or 0.0),
                        row["wall_s"],
                        row["peak_rss_mb"],
                    )
                size_runs.append(row)
            runs.extend(size_runs)
            results.append(median_row(size_runs))
    return results, runs


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmarks, print the table and write the results; return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if args.child_case is not None:
        if args.child_result is None:
            build_parser().error("--child-case needs --child-result")
        return _child_main(args.child_case, args.child_result)
    if args.repeat < 1:
        build_parser().error("--repeat must be at least 1")

    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        results, runs = run_benchmarks(args, args.keep.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="optistock-bench-") as tmp:
            results, runs = run_benchmarks(args, Path(tmp))
    write_results(results, runs, args.results, _meta(args))
    logger.info("results written to %s", args.results)

    repeats = f", median of {args.repeat} runs" if args.repeat > 1 else ""
    print(f"optistock benchmark: seed {args.seed}, time limit {args.time_limit:g}s{repeats}")
    print(format_table(results))
    return 0 if all(row["error"] is None for row in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
