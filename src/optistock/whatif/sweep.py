"""Parameter sweeps: the Cartesian product of change values, solved in parallel on ``dask.distributed``.

A sweep axis is ``CHANGE.FIELD`` with a list of values (``budget.scale: [0.8, 1.0]``), from the scenario
file's ``sweep:`` section or ``--set budget.scale=0.8,1.0`` (which replaces an axis of the same name).
Each case applies, after the scenario's own changes and the named scenarios, one change per change kind
built from its values: ``--set tariff.percent=10,20 --set tariff.supplier=S1,S2`` gives four tariff
changes, each with a percent and a supplier.

Every case is validated before any is solved (bad input: nothing is written). Cases run as tasks on
a Dask cluster — a ``LocalCluster`` with one single-threaded worker process per core by default, or an
existing cluster (``--scheduler ADDRESS``; its workers need optistock installed and must see the
scenario files and the output folder) — each solved with one solver thread. A case that fails is
reported with its reason and does not stop the others. The output folder holds one run folder per
case under ``cases/``, the combined KPI table ``kpis.csv`` and ``kpis.parquet``, and ``sweep.json``
(axes and the outcome of every case).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from optistock.errors import InputError, OptistockError
from optistock.pipeline import run_scenario
from optistock.postprocess.writer import write_json
from optistock.preprocess.data import load_problem
from optistock.preprocess.scenario import SolverSettings, line_of
from optistock.whatif.changes import Change, LocatedChange
from optistock.whatif.kpis import run_kpis
from optistock.whatif.scenario_file import ScenarioSetup, SweepAxes, SweepValue, check_sweep_key

logger = logging.getLogger(__name__)

CASE_COLUMNS = ["case", "folder", "status", "reason", "objective", "best_bound", "gap", "seconds"]


@dataclass(frozen=True)
class AxisOrigin:
    """Where a sweep axis was written: a scenario file and line, or the command line."""

    file: str | None = None
    line: int | None = None

    def error(self, key: str, message: str) -> InputError:
        if self.file is None:
            return InputError(message, field=f"--set {key}")
        return InputError(message, file=self.file, line=self.line, field=f"sweep.{key}")


@dataclass(frozen=True)
class SweepCase:
    number: int
    parameters: dict[str, SweepValue]
    changes: list[dict[str, dict[str, SweepValue]]] = field(default_factory=list)
    """The case's changes as YAML would write them: ``[{budget: {scale: 0.8}}]``."""

    @property
    def name(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.parameters.items()) or "base"

    @property
    def folder(self) -> str:
        label = "_".join(f"{key}={value}" for key, value in self.parameters.items())
        safe = re.sub(r"[^A-Za-z0-9._=+-]", "-", label)
        return f"case-{self.number:03d}" + (f"_{safe}" if safe else "")


def parse_value(text: str) -> SweepValue:
    """A value of ``--set``: an integer, a number or else text."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_set_option(text: str) -> tuple[str, list[SweepValue]]:
    """``KEY=V1,V2,...`` of ``--set``; the key is checked against the change vocabulary."""
    key, equals, values = text.partition("=")
    key = key.strip()
    if not equals or not values.strip():
        raise InputError(
            "expected CHANGE.FIELD=VALUE[,VALUE...] (e.g. budget.scale=0.8,1.0)", field=f"--set {text}"
        )
    check_sweep_key(key)
    return key, [parse_value(value) for value in values.split(",") if value.strip()]


def sweep_cases(axes: SweepAxes, origins: dict[str, AxisOrigin]) -> list[SweepCase]:
    """The Cartesian product of the axes, in axis order, each case with its changes validated."""
    keys = list(axes)
    for key in keys:
        if not axes[key]:
            raise origins.get(key, AxisOrigin()).error(key, "a sweep parameter needs at least one value")
    cases = []
    for number, values in enumerate(itertools.product(*(axes[key] for key in keys)), start=1):
        parameters = dict(zip(keys, values, strict=True))
        grouped: dict[str, dict[str, SweepValue]] = {}
        for key, value in parameters.items():
            kind, name = check_sweep_key(key)
            grouped.setdefault(kind, {})[name] = value
        changes = [{kind: settings} for kind, settings in grouped.items()]
        for change in changes:
            kind = next(iter(change))
            try:
                Change.model_validate(change)
            except ValidationError as exc:
                first = exc.errors()[0]
                loc = [str(part) for part in first["loc"]]
                key = ".".join(loc[:2]) if len(loc) >= 2 else kind
                origin = origins.get(key, origins.get(next(k for k in keys if k.startswith(kind + "."))))
                raise (origin or AxisOrigin()).error(
                    key, f"case {number}: {first['msg']} (got {first.get('input')!r})"
                ) from exc
        cases.append(SweepCase(number, parameters, changes))
    return cases


def checked_solver_overrides(setup: ScenarioSetup, **overrides: Any) -> dict[str, Any]:
    """The solver flags that were given, checked against the scenario's settings like ``optistock run``
    checks them (a bad value is an :class:`InputError` naming the flag)."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        SolverSettings.model_validate({**setup.loaded.scenario.solver.model_dump(), **given})
    except ValidationError as exc:
        first = exc.errors()[0]
        flag = "--" + str(first["loc"][0]).replace("_", "-")
        raise InputError(f"{first['msg']} (got {first.get('input')!r})", field=flag) from exc
    return given


def located_changes(case: SweepCase) -> list[LocatedChange]:
    return [
        LocatedChange(
            Change.model_validate(change), origin=f"sweep case {case.number}", label=f"sweep {case.name}"
        )
        for change in case.changes
    ]


def solve_case(
    scenario_path: str,
    scenario_names: Sequence[str],
    case: SweepCase,
    out_dir: str,
    solver_overrides: dict[str, Any],
) -> dict[str, Any]:
    """Solve and write one case (runs on a Dask worker); failures are returned, not raised."""
    started = time.perf_counter()
    outcome: dict[str, Any] = {"case": case.number, "folder": case.folder, "reason": ""}
    try:
        result = run_scenario(
            Path(scenario_path),
            Path(out_dir),
            scenario_names=scenario_names,
            extra_changes=located_changes(case),
            **{**solver_overrides, "threads": 1},
        )
        summary = result.summary
        outcome.update(
            status=summary["status"],
            objective=summary["objective"],
            best_bound=summary["best_bound"],
            gap=summary["gap"],
        )
    except OptistockError as exc:
        outcome.update(status=f"failed (exit {int(exc.exit_code)})", reason=str(exc))
    except Exception as exc:  # a bug in one case must not stop the others
        logger.exception("case %s failed", case.number)
        outcome.update(status="failed (exit 1)", reason=f"unexpected {type(exc).__name__}: {exc}")
    outcome["seconds"] = time.perf_counter() - started
    return outcome


@contextmanager
def dask_client(scheduler: str | None, workers: int | None, cases: int) -> Iterator[Any]:
    """A client of the cluster at ``scheduler``, or of a fresh ``LocalCluster`` of single-threaded
    worker processes (one per core, at most one per case, or ``workers``)."""
    from dask.distributed import Client, LocalCluster

    if not logger.isEnabledFor(logging.DEBUG):
        logging.getLogger("distributed").setLevel(logging.WARNING)  # cluster chatter only with -vv
    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    count = workers or max(1, min(os.cpu_count() or 1, cases))
    logger.info("starting a local Dask cluster: %d worker(s), 1 thread each", count)
    with (
        LocalCluster(
            n_workers=count, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


ProgressCallback = Callable[[dict[str, Any], int, int], None]


def run_sweep(
    scenario_path: Path,
    out: Path,
    cases: Sequence[SweepCase],
    scenario_names: Sequence[str] = (),
    scheduler: str | None = None,
    workers: int | None = None,
    solver_overrides: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
) -> pd.DataFrame:
    """Validate every case, solve them on Dask, write the case folders and the KPI table; returns it."""
    from dask.distributed import as_completed  # imported here: dask is slow to import, run does not need it

    overrides = {key: value for key, value in (solver_overrides or {}).items() if value is not None}
    for case in cases:  # bad input in any case: stop before anything is written
        load_problem(scenario_path, scenario_names, located_changes(case))
    out.mkdir(parents=True, exist_ok=True)
    (out / "cases").mkdir(exist_ok=True)
    outcomes: dict[int, dict[str, Any]] = {}
    with dask_client(scheduler, workers, len(cases)) as client:
        futures = [
            client.submit(
                solve_case,
                str(scenario_path.resolve()),
                list(scenario_names),
                case,
                str((out / "cases" / case.folder).resolve()),
                overrides,
                pure=False,
                key=f"optistock-case-{case.number}-{os.getpid()}-{time.time_ns()}",
            )
            for case in cases
        ]
        for done, future in enumerate(as_completed(futures), start=1):
            outcome = future.result()
            outcomes[outcome["case"]] = outcome
            if progress is not None:
                progress(outcome, done, len(cases))
    rows = []
    for case in cases:
        outcome = outcomes[case.number]
        row: dict[str, Any] = {column: outcome.get(column, math.nan) for column in CASE_COLUMNS}
        row.update(case.parameters)
        if not str(outcome["status"]).startswith("failed"):
            row.update(run_kpis(out / "cases" / case.folder))
        rows.append(row)
    columns = ["case", "folder", *cases[0].parameters, *CASE_COLUMNS[2:]] if cases else CASE_COLUMNS
    table = pd.DataFrame(rows)
    table = table[columns + [c for c in table.columns if c not in columns]]
    table.to_csv(out / "kpis.csv", index=False, lineterminator="\n")
    table.to_parquet(out / "kpis.parquet", index=False)
    write_json(
        {
            "scenario": str(scenario_path),
            "scenarios_applied": list(scenario_names),
            "cases": [{**outcomes[case.number], "parameters": case.parameters} for case in cases],
        },
        out / "sweep.json",
    )
    return table


def axes_with_origins(
    file_axes: SweepAxes, file_origins: dict[str, tuple[Path, Any]], set_options: Sequence[str]
) -> tuple[SweepAxes, dict[str, AxisOrigin]]:
    """The scenario file's sweep axes, replaced or extended by ``--set`` options, with their origins."""
    axes: SweepAxes = dict(file_axes)
    origins = {
        key: AxisOrigin(str(path), line_of(document, "sweep", key))
        for key, (path, document) in file_origins.items()
    }
    for text in set_options:
        key, values = parse_set_option(text)
        axes[key] = values
        origins[key] = AxisOrigin()
    return axes, origins
