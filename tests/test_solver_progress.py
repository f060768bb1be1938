"""HiGHS's MILP progress reaches the log (the nightly batch's JSON log carries it as ``solver_progress``),
and its banner does not reach stdout."""

from __future__ import annotations

import logging
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyomo.environ as pyo
import pytest

from optistock.backend.solve import HighsSession, SolveStatus
from optistock.preprocess.scenario import SolverSettings


def _covering_model() -> pyo.ConcreteModel:
    """An integer covering problem on which HiGHS finds several plans before the optimum."""
    generator = random.Random(1)
    model = pyo.ConcreteModel()
    model.I = pyo.RangeSet(0, 39)
    model.x = pyo.Var(model.I, domain=pyo.NonNegativeIntegers, bounds=(0, 10))
    weight = {i: generator.randint(3, 19) for i in model.I}
    cost = {i: generator.randint(3, 19) for i in model.I}
    model.cover = pyo.Constraint(expr=sum(weight[i] * model.x[i] for i in model.I) >= 1371)
    model.odd = pyo.Constraint(expr=sum(model.x[i] for i in model.I if i % 2) <= 30)
    model.cost = pyo.Objective(expr=sum(cost[i] * model.x[i] for i in model.I))
    return model


def test_every_better_plan_the_milp_finds_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    model = _covering_model()
    with caplog.at_level(logging.INFO, logger="optistock.backend.solve"):
        result = HighsSession(model).solve(SolverSettings(time_limit=30, mip_gap=0.0))
    records = [r for r in caplog.records if r.getMessage().startswith("solver: better plan")]
    assert records, "no progress logged"
    found = [r.solver_progress["objective"] for r in records]  # type: ignore[attr-defined]
    assert found == sorted(found, reverse=True)  # each one better than the last
    assert found[-1] == pytest.approx(result.objective)


def test_a_plan_check_sees_every_better_plan_and_can_stop_the_search() -> None:
    """``stop_if`` gets each better plan as a variable → value function, with its objective. Stopping
    at the first one ends the search soon after ("interrupted" at HiGHS's next interrupt callback: the
    plan kept is that one or one found before the interrupt, not the optimum); never stopping changes
    nothing."""
    settings = SolverSettings(time_limit=30, mip_gap=0.0, threads=1)
    seen: list[tuple[float, float]] = []

    def watch(value_of: Callable[[pyo.Var], float], objective: float) -> bool:
        cost = sum(coefficient * value_of(var) for var, coefficient in costs)
        seen.append((cost, objective))
        return False

    model = _covering_model()
    costs = [(var, model.cost.expr.args[i].args[0]) for i, var in enumerate(model.x.values())]
    full = HighsSession(model).solve(settings, stop_if=watch)
    assert full.status is SolveStatus.OPTIMAL and full.termination != "interrupted"
    assert len(seen) >= 2
    assert all(cost == pytest.approx(objective) for cost, objective in seen)
    assert [cost for cost, _ in seen] == sorted((cost for cost, _ in seen), reverse=True)
    assert seen[-1][0] == pytest.approx(full.objective)

    first = _covering_model()
    stopped = HighsSession(first).solve(settings, stop_if=lambda value_of, objective: True)
    assert stopped.termination == "interrupted" and stopped.status is SolveStatus.FEASIBLE
    assert stopped.objective is not None and full.objective is not None
    assert full.objective + 0.5 < stopped.objective <= seen[0][0]
    assert pyo.value(first.cost) == pytest.approx(stopped.objective)


@pytest.mark.parametrize("via", ["quiet_highs", "arrays"])
def test_no_highs_banner_reaches_stdout(via: str) -> None:
    """HiGHS prints a banner on stdout with a process's first instance; optistock's instances, made
    directly or by the array builder (as on the Dask workers), leave stdout to optistock."""
    make = {
        "quiet_highs": "from optistock.backend.solve import quiet_highs; quiet_highs(); quiet_highs()",
        "arrays": (
            "from optistock.synthetic import InstanceSize, generate_instance\n"
            "from optistock.backend import arrays\n"
            f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "from conftest import write_scenario\n"
            "import tempfile, pathlib\n"
            "from optistock.preprocess.data import load_problem\n"
            "from optistock.backend.sets import build_sets\n"
            "size = InstanceSize(skus=2, warehouses=2, suppliers=2, periods=3)\n"
            "folder = pathlib.Path(tempfile.mkdtemp())\n"
            "path = write_scenario(folder, dict(generate_instance(size, 0)), size.periods, {})\n"
            "problem = load_problem(path)\n"
            "model = arrays.build_array_model(problem, build_sets(problem))\n"
            "print('lp', model.solve_lp(10.0)[0].value)"
        ),
    }[via]
    done = subprocess.run(
        [sys.executable, "-c", make + "\nprint('done')"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HiGHS" not in done.stdout
    assert done.stdout.splitlines()[-1] == "done"
    if via == "arrays":
        assert done.stdout.splitlines()[0] == "lp optimal"


def test_a_plain_highs_instance_does_print_the_banner() -> None:
    """The check above can fail: without ``quiet_highs`` the first instance prints it."""
    done = subprocess.run(
        [sys.executable, "-c", "import highspy; highspy.Highs(); print('done')"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "HiGHS" in done.stdout


@pytest.mark.parametrize("command", ["run", "batch"])
def test_the_progress_reaches_the_console_log(tmp_path: Path, command: str) -> None:
    """Pyomo redirects file descriptors 1 and 2 while HiGHS solves; the console log writes to a
    duplicate of standard error (``optistock.console.log_stream``), so HiGHS's progress, logged in the
    middle of the solve, is not lost (it was, until 2026-12-06). The demo's full MILP improves on its
    start plan within a second; the batch's log on stderr is JSON lines."""
    demo = Path(__file__).parents[1] / "scenarios" / "demo"
    scenario = tmp_path / "demo.yaml"
    scenario.write_text(
        f"name: demo-quick\ndata: {demo / 'data'}\nhorizon:\n  periods: 26\n"
        "solver:\n  time_limit: 5\n  method: milp\n  threads: 1\n",
        encoding="utf-8",
    )
    if command == "run":
        arguments = ["run", str(scenario), "--out", str(tmp_path / "out")]
    else:
        config = tmp_path / "nightly.yaml"
        config.write_text(
            f"scenario: {scenario}\nstore: sqlite:///{tmp_path / 'store.db'}\noutput_root: runs\n"
            "max_minutes: 5\n",
            encoding="utf-8",
        )
        arguments = ["batch", str(config), "--log-format", "json"]
    done = subprocess.run(
        [sys.executable, "-c", "from optistock.cli import main; main()", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "solver: better plan after" in done.stderr
