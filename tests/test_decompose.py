"""Fix-and-optimize over SKU groups on Dask workers, and the monolithic baseline (``solver.method``).

- Slack splitting: groups solved side by side get limits that add up to at most the real limit.
- Every decomposed plan, in this process, on a local Dask cluster or on a cluster given by its
  scheduler address, is valid under the independent checker, costs at least the proven optimum, and
  reports a bound no higher than that optimum.
- The monolithic formulation and the engine's own strategy reach the same proven optimum.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import BASE_TABLES, write_scenario
from hypothesis import HealthCheck, given, settings
from independent_check import check_run
from planning import solve
from test_properties import instances

from optistock.backend import lagrangian, strategy
from optistock.backend.decompose import (
    DaskRunner,
    GroupResult,
    GroupTask,
    InProcessRunner,
    group_runner,
    group_sets,
    one_by_one,
    plan_of,
    plan_without,
    solve_group,
)
from optistock.backend.heuristics import repair_plan, start_values
from optistock.backend.model import build_model
from optistock.backend.sets import build_sets
from optistock.backend.solve import HighsSession, SolveStatus
from optistock.backend.strategy import Optimiser, estimated_lines, plan_rows
from optistock.cli import main
from optistock.errors import InfeasibleError, NoSolutionError
from optistock.pipeline import run_scenario
from optistock.postprocess.extract import ORDER_COLUMNS, TRANSFER_COLUMNS, empty_plan
from optistock.postprocess.simulate import PlanEvaluation, cost_by_sku, evaluate_plan
from optistock.preprocess.data import ProblemData, load_problem
from optistock.synthetic import InstanceSize, generate_instance

SIZE = InstanceSize(skus=10, warehouses=2, suppliers=2, periods=5)
"""Three groups of at most four SKUs; small enough to prove the optimum in seconds."""


def _write(folder: Path, seed: int, solver: dict[str, Any]) -> Path:
    return write_scenario(folder, dict(generate_instance(SIZE, seed)), SIZE.periods, solver)


def _optimum(folder: Path, seed: int) -> float:
    result = run_scenario(_write(folder, seed, {"method": "monolithic", "time_limit": 60}))
    assert result.solve.status.value == "optimal"
    return result.objective


def _checked(out: Path) -> dict[str, Any]:
    """The run's summary, after the independent checker found the written plan valid and its cost."""
    check = check_run(out, SIZE.periods)
    assert check.violations == [], check.violations
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    assert summary["objective"] == pytest.approx(check.total, rel=1e-9, abs=1e-6)
    return summary


def test_slack_splitting_never_hands_out_more_than_the_limit(tmp_path: Path) -> None:
    scenario = _write(tmp_path, 3, {})
    problem = load_problem(scenario)
    incumbent = Optimiser(problem, problem.scenario.solver.model_copy(update={"time_limit": 5})).run()
    plan = incumbent.evaluation
    skus = sorted(plan.orders["sku"].unique())
    assert len(skus) >= 4, "the instance should order several SKUs"
    groups = [set(skus[: len(skus) // 2]), set(skus[len(skus) // 2 :])]
    outside = plan_without(plan, groups[0] | groups[1])
    whole = build_sets(problem)  # the real limits
    split = [group_sets(problem, plan, group, 0.5) for group in groups]
    outside_units = outside.orders.groupby(["supplier", "order_period"])["quantity"].sum()
    outside_spend = outside.orders.groupby("order_period")["line_value"].sum()
    checked = 0
    for key, limit in whole.supplier_capacity.items():
        shares = [sets.supplier_capacity[key] for sets in split if key in sets.supplier_capacity]
        if len(shares) == 2:
            assert sum(shares) + float(outside_units.get(key, 0.0)) <= limit + 1e-6
            checked += 1
    for period, amount in whole.budget.items():
        shares = [sets.budget[period] for sets in split if period in sets.budget]
        if len(shares) == 2:
            assert sum(shares) + float(outside_spend.get(period, 0.0)) <= amount + 1e-6
            checked += 1
    assert checked > 0
    for sets, group in zip(split, groups, strict=True):
        own = plan.orders[plan.orders["sku"].isin(group)]
        for period, spend in own.groupby("order_period")["line_value"].sum().items():
            if period in sets.budget:
                assert sets.budget[period] >= spend - 1e-6, "a group keeps room for its own plan"


@pytest.mark.parametrize(("seed", "workers"), [(0, 1), (1, 2)])
def test_decomposed_plan_is_valid_and_its_bound_is_true(tmp_path: Path, seed: int, workers: int) -> None:
    optimum = _optimum(tmp_path / "reference", seed)
    scenario = _write(tmp_path / "case", seed, {"method": "decompose", "workers": workers, "time_limit": 30})
    out = tmp_path / "out"
    run_scenario(scenario, out)
    summary = _checked(out)
    assert summary["method"] == "lagrangian + fix-and-optimize + milp"
    assert summary["subproblems"]["count"] > 0
    assert summary["solver"]["workers"] == workers
    assert summary["objective"] >= optimum - 1e-6 * optimum
    assert summary["best_bound"] <= optimum + 1e-6 * optimum


@pytest.mark.parametrize(("seed", "workers"), [(2, 1), (3, 2)])
def test_a_model_too_large_to_build_is_planned_and_bounded_by_groups(
    tmp_path: Path, seed: int, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path of models over ``GROUP_PATH_LINE_LIMIT`` lines (forced here): no whole model, the
    Lagrangian bound priced by lane and fix-and-optimize from its groups' plans. The plan is valid under
    the independent checker at the cost it reports, no cheaper than the proven optimum, and the bound
    no higher than it."""
    from optistock.backend import strategy

    optimum = _optimum(tmp_path / "reference", seed)
    monkeypatch.setattr(strategy, "GROUP_PATH_LINE_LIMIT", 0)
    scenario = _write(tmp_path / "case", seed, {"workers": workers, "time_limit": 20})
    out = tmp_path / "out"
    run_scenario(scenario, out)
    summary = _checked(out)
    assert summary["method"] == "groups: lagrangian + fair shares + fix-and-optimize"
    assert summary["marginal_values"]["available"] is False  # their LP would be the whole model
    assert summary["subproblems"]["count"] > 0
    assert summary["objective"] >= optimum - 1e-6 * optimum
    assert 0 < summary["best_bound"] <= optimum + 1e-6 * optimum


def test_the_group_path_names_what_no_plan_got_past(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """W1 holds 8 units in a capacity of 5 and has no transfer link: no plan is valid. The whole model
    proves that (exit 3); the group path (forced here) builds no whole model and cannot, so it ends
    without a plan (exit 4), naming the rule the plan that does nothing breaks, not only the time."""
    tables: dict[str, Any] = {
        **BASE_TABLES,
        "warehouses": [{"warehouse": "W1", "capacity": 5}],
        "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 8}],
        "demand": [{"sku": "A", "warehouse": "W1", "period": 1, "quantity": 2}],
    }
    scenario = write_scenario(tmp_path, tables, periods=2, solver={"time_limit": 5})
    with pytest.raises(InfeasibleError):
        run_scenario(scenario, None)
    monkeypatch.setattr(strategy, "GROUP_PATH_LINE_LIMIT", 0)
    with pytest.raises(NoSolutionError, match=r"breaks storage capacity: W1 in period 0 holds volume 8\.000"):
        run_scenario(scenario, None)


@pytest.mark.parametrize("seed", [0, 4])
def test_skus_by_own_gap_rank_by_cost_above_a_true_bound(tmp_path: Path, seed: int) -> None:
    """Fix-and-optimize's priority (``_skus_by_own_gap``), from the empty plan: the SKUs' own LP bounds
    together are a true lower bound (no higher than the proven optimum); every SKU ranked costs the empty
    plan more than its own bound (a shortage), the largest gap first with ``PRIORITY_TIME_LIMIT``, the
    others' limits falling with their gaps and never below ``PRIORITY_MIN_TIME_LIMIT``."""
    optimum = _optimum(tmp_path / "reference", seed)
    problem = load_problem(_write(tmp_path / "case", seed, {}))
    optimiser = Optimiser(problem, problem.scenario.solver.model_copy(update={"time_limit": 60}))
    assert optimiser._skus_by_own_gap(InProcessRunner(problem)) is None, "no incumbent yet"
    optimiser.incumbent = evaluate_plan(problem, *empty_plan())
    limits = optimiser._skus_by_own_gap(InProcessRunner(problem))
    assert limits is not None and limits
    (bound,) = optimiser.proven_bounds
    assert 0 < bound <= optimum + 1e-6 * optimum
    values = list(limits.values())
    assert values[0] == pytest.approx(strategy.PRIORITY_TIME_LIMIT)
    assert values == sorted(values, reverse=True)
    assert min(values) >= strategy.PRIORITY_MIN_TIME_LIMIT
    own = cost_by_sku(problem, optimiser.incumbent)
    backordered = set(optimiser.incumbent.inventory.query("backorder > 0")["sku"])
    for sku in limits:
        assert own[sku] > 0 and sku in backordered


def test_group_gaps_are_split_over_their_skus_by_own_cost() -> None:
    """Hand-checked: group (A, B) costs 30 + 10 against a bound of 20, so A gets 15 and B 5; group (C, D)
    costs nothing against a bound of 0 (split equally: 0 each); group (E,) costs 4 against a bound of 6
    (a negative gap). Only positive gaps get a limit, the largest ``PRIORITY_TIME_LIMIT``, the others
    scaled with their gap and never below ``PRIORITY_MIN_TIME_LIMIT``."""
    own = pd.Series({"A": 30.0, "B": 10.0, "C": 0.0, "E": 4.0})
    gap = strategy.gaps_from_group_bounds({("A", "B"): 20.0, ("C", "D"): 0.0, ("E",): 6.0}, own)
    assert gap == pytest.approx({"A": 15.0, "B": 5.0, "C": 0.0, "D": 0.0, "E": -2.0})
    limits = strategy._priority_limits(gap)
    assert list(limits) == ["A", "B"]
    assert limits["A"] == pytest.approx(strategy.PRIORITY_TIME_LIMIT)
    floor, top = strategy.PRIORITY_MIN_TIME_LIMIT, strategy.PRIORITY_TIME_LIMIT
    assert limits["B"] == pytest.approx(max(floor, top / 3))


def test_priority_limits_scale_with_the_gap_down_to_their_floor() -> None:
    """Hand-checked with 30 s for the largest gap and a floor of 10 s: gaps 100, 50 and 10 get 30, 15
    and 10 (3 scaled, raised to the floor); gaps of 0 or below get none."""
    assert (strategy.PRIORITY_TIME_LIMIT, strategy.PRIORITY_MIN_TIME_LIMIT) == (30.0, 10.0)
    limits = strategy._priority_limits({"C": 10.0, "A": 100.0, "D": 0.0, "B": 50.0, "E": -5.0})
    assert list(limits) == ["A", "B", "C"]
    assert limits == pytest.approx({"A": 30.0, "B": 15.0, "C": 10.0})


@pytest.mark.parametrize("seed", [0, 4])
def test_skus_ranked_by_group_bounds_when_their_own_bounds_would_not_fit(tmp_path: Path, seed: int) -> None:
    """With the groups' LP bounds given and said to have taken far longer than the SKUs' share, no SKU
    is solved alone (no new proven bound) and the ranking is the groups' gaps split by own cost; with
    the same bounds said to have been quick, the SKUs' own LP bounds are solved as before."""
    problem = load_problem(_write(tmp_path, seed, {}))
    optimiser = Optimiser(problem, problem.scenario.solver.model_copy(update={"time_limit": 60}))
    optimiser.incumbent = evaluate_plan(problem, *empty_plan())
    runner = InProcessRunner(problem)
    prices = lagrangian.lane_split_prices(problem)
    groups = optimiser._sku_groups(None)
    bound = lagrangian.lagrangian_bound(
        problem, None, prices, groups, runner, optimiser._sub_settings(runner), 2.0, relaxed=True
    )
    assert bound.solved_groups == len(groups)
    slow = optimiser._skus_by_own_gap(runner, prices, (bound, 1e6))
    assert optimiser.proven_bounds == []
    own = cost_by_sku(problem, optimiser.incumbent)
    expected = strategy.gaps_from_group_bounds(bound.group_bounds, own)
    assert slow is not None and slow
    assert list(slow) == sorted((s for s in expected if expected[s] > 0), key=lambda s: -expected[s])
    for members, group_bound in bound.group_bounds.items():  # the shares add up to the group's gap
        assert sum(expected[s] for s in members) == pytest.approx(
            sum(float(own.get(s, 0.0)) for s in members) - group_bound, abs=1e-6
        )
    quick = optimiser._skus_by_own_gap(runner, prices, (bound, 0.0))
    assert quick is not None and len(optimiser.proven_bounds) == 1
    assert optimiser.proven_bounds[0] <= bound.bound + 1e-6 * abs(bound.bound)  # singletons: weaker


class _StartEchoingRunner:
    """Stands in for sub-problems whose solver found nothing better than their MIP start: each returns
    the incumbent's own plan for its SKUs, except the SKUs in ``changed``, whose orders it drops. It
    keeps every task it was given (``seen``)."""

    slots = 2

    def __init__(self, changed: frozenset[str] = frozenset()) -> None:
        self.changed = changed
        self.tasks = 0
        self.seen: list[Any] = []

    def solve(self, tasks: Any) -> list[GroupResult]:
        self.tasks += len(tasks)
        self.seen.extend(tasks)
        results = []
        for task in tasks:
            orders, transfers = task.start[0][ORDER_COLUMNS], task.start[1][TRANSFER_COLUMNS]
            if self.changed & set(task.members):
                orders = orders.iloc[0:0]
            results.append(GroupResult(task.members, orders, transfers, 0.0, 0.0))
        return results

    def solve_as_ready(self, next_task: Callable[[], GroupTask | None]) -> Iterator[GroupResult]:
        return one_by_one(self, next_task)


def test_sub_problem_plans_equal_to_the_incumbents_are_not_re_simulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fix-and-optimize's merge (``_solve_as_ready``): a sub-problem plan with the same order lines and
    transfers as the incumbent's for its SKUs is not re-simulated; one that differs is, once."""
    run = run_scenario(_write(tmp_path, 0, {"time_limit": 20}))
    problem = run.problem
    optimiser = Optimiser(problem, problem.scenario.solver.model_copy(update={"time_limit": 60}))
    optimiser.incumbent = run.evaluation
    simulated: list[int] = []

    def counted(*args: Any) -> Any:
        simulated.append(1)
        return evaluate_plan(*args)

    monkeypatch.setattr(strategy, "evaluate_plan", counted)
    ordered = sorted(set(run.evaluation.orders["sku"]))
    batch = [[sku] for sku in ordered]
    settings = problem.scenario.solver
    echo = _StartEchoingRunner()
    assert optimiser._solve_as_ready(echo, batch, settings, until=time.perf_counter() + 60).improved is False
    assert echo.tasks == len(batch) > 0 and simulated == []
    assert optimiser._unchanged_plans == len(batch)
    assert optimiser.incumbent is run.evaluation
    one = _StartEchoingRunner(frozenset(ordered[:1]))
    optimiser._solve_as_ready(one, batch, settings, until=time.perf_counter() + 60)
    assert len(simulated) == 1


def test_each_sub_problem_gets_at_most_the_time_left(tmp_path: Path) -> None:
    """Groups asking for 30 s with 40 s left each get at most 40 s less the last merge's seconds; once
    that is under ``MIN_SUBPROBLEM_SECONDS`` no group is given out, and the pass says why."""
    run = run_scenario(_write(tmp_path, 0, {"time_limit": 20}))
    problem = run.problem
    optimiser = Optimiser(problem, problem.scenario.solver.model_copy(update={"time_limit": 60}))
    optimiser.incumbent = run.evaluation
    skus = sorted(set(run.evaluation.inventory["sku"]))
    settings = problem.scenario.solver
    groups = [[sku] for sku in skus[:4]]
    optimiser._merge_seconds = 5.0
    recorder = _StartEchoingRunner()
    stream = optimiser._solve_as_ready(
        recorder, groups, settings, until=time.perf_counter() + 40, limits=dict.fromkeys(skus, 30.0)
    )
    assert stream.stopped is None and stream.given == 4
    assert [task.time_limit for task in recorder.seen] == [30.0] * 4
    recorder = _StartEchoingRunner()
    optimiser._solve_as_ready(
        recorder, groups, settings, until=time.perf_counter() + 20, limits=dict.fromkeys(skus, 30.0)
    )
    assert len(recorder.seen) == 4
    assert all(14.0 < task.time_limit <= 15.0 for task in recorder.seen)
    recorder = _StartEchoingRunner()
    stream = optimiser._solve_as_ready(recorder, groups, settings, until=time.perf_counter() + 5.1)
    assert recorder.seen == [] and stream.given == 0 and stream.stopped == "time limit"


@pytest.mark.parametrize("ahead", [0, 3])
def test_the_dask_runner_gives_the_next_task_only_after_a_result(tmp_path: Path, ahead: int) -> None:
    """``DaskRunner.solve_as_ready`` on a local cluster of two workers: two tasks and ``ahead`` queued
    at first, then one for each result handed back, and every task's result comes back once."""
    problem = load_problem(_write(tmp_path, 0, {"threads": 2, "workers": 2}))
    sets = build_sets(problem)
    settings = problem.scenario.solver
    tasks = [GroupTask((f"T{n}",), sets, None, settings, 10.0, relaxed=True) for n in range(7)]
    given: list[int] = []
    handed_back = 0

    def next_task() -> GroupTask | None:
        given.append(handed_back)
        return tasks[len(given) - 1] if len(given) <= len(tasks) else None

    members = []
    with group_runner(problem, settings) as runner:
        assert isinstance(runner, DaskRunner) and runner.slots == 2
        for result in runner.solve_as_ready(next_task, ahead=ahead):
            members.append(result.members)
            assert result.bound is not None and result.bound > 0
            handed_back += 1
    assert sorted(members) == sorted(task.members for task in tasks)
    # the first 2 + ahead before any result; each later one right after one more result was handed back
    assert given[: 2 + ahead] == [0] * (2 + ahead) and given[2 + ahead :] == list(range(1, len(tasks) + 1))


@pytest.mark.parametrize(
    ("mip_gap", "expected"),
    [
        (0.01, [0.01, 0.0025, 0.000625, 0.00015625, 1e-4, 1e-4]),
        (0.005, [0.005, 0.00125, 0.0003125, 1e-4, 1e-4, 1e-4]),
        (5e-5, [5e-5] * 6),
        (0.0, [0.0] * 6),
    ],
)
def test_fix_and_optimize_gap_starts_at_the_runs_gap_and_tightens_by_four(
    mip_gap: float, expected: list[float]
) -> None:
    gaps = [strategy.fix_and_optimize_gap(mip_gap, cycle) for cycle in range(6)]
    assert gaps == pytest.approx(expected, rel=1e-12, abs=0.0)


@pytest.mark.parametrize("by_warehouse_first", [False, True])
def test_fix_and_optimize_tightens_the_sub_problem_gap_before_it_gives_up(
    tmp_path: Path, by_warehouse_first: bool
) -> None:
    """A cycle that improves nothing at a loose sub-problem gap is followed by one at a tighter gap,
    until ``FIX_AND_OPTIMIZE_MIN_GAP``; then fix-and-optimize stops. With ``by_warehouse_first`` the
    first cycle's sub-problems, and only those, decide one warehouse at a time."""
    run = run_scenario(_write(tmp_path, 0, {"time_limit": 20}))
    problem = run.problem
    optimiser = Optimiser(
        problem, problem.scenario.solver.model_copy(update={"time_limit": 600, "mip_gap": 0.01})
    )
    optimiser.incumbent = run.evaluation

    echo = _StartEchoingRunner()
    optimiser._improve_by_sku_groups(
        echo, None, until=time.perf_counter() + 600, by_warehouse_first=by_warehouse_first
    )
    gaps = [task.settings.mip_gap for task in echo.seen]
    per_cycle = sorted(set(gaps), reverse=True)
    assert per_cycle == pytest.approx([0.01, 0.0025, 0.000625, 0.00015625, 1e-4], rel=1e-12)
    assert echo.tasks == 5 * gaps.count(0.01) > 0  # every cycle passes over the same SKUs
    assert [task.by_warehouse for task in echo.seen] == [by_warehouse_first and gap == 0.01 for gap in gaps]
    assert optimiser.incumbent is run.evaluation


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_sub_problem_by_warehouse_keeps_the_transfers_and_its_start(tmp_path: Path, seed: int) -> None:
    """``GroupTask.by_warehouse``: each SKU's sub-problem ships exactly the incumbent's transfers, and
    its plan, merged into the incumbent, is valid and never costs more, although HiGHS may stop anywhere
    within a gap of 50 %: every step starts from the plan of the step before, which it keeps unless
    it finds a cheaper one."""
    run = run_scenario(_write(tmp_path, seed, {"time_limit": 20}))
    problem, incumbent = run.problem, run.evaluation
    settings = problem.scenario.solver.model_copy(update={"threads": 1, "mip_gap": 0.5})
    optimiser = Optimiser(problem, settings)
    optimiser.incumbent = incumbent
    shipping = sorted(set(incumbent.transfers.loc[incumbent.transfers["quantity"] > 0, "sku"]))
    assert shipping, "the instance should ship something between its warehouses"
    for sku in shipping:
        start = plan_of(incumbent, {sku})
        task = GroupTask(
            (sku,), group_sets(problem, incumbent, {sku}), start, settings, 10.0, by_warehouse=True
        )
        result = solve_group(problem, task)
        assert result.orders is not None and result.transfers is not None
        assert plan_rows(result.orders, result.transfers)[1] == plan_rows(*start[:2])[1], sku
        merged = evaluate_plan(problem, *optimiser._replacing({sku}, [result.orders], [result.transfers]))
        assert merged.is_valid, sku
        assert merged.total_cost <= incumbent.total_cost + 1e-6, sku
        assert result.objective is not None and result.bound is None


def _optimum_with_transfers_kept(problem: ProblemData, incumbent: PlanEvaluation, sku: str) -> float:
    """The proven optimum of ``sku``'s sub-problem with the incumbent's transfers kept, all its
    warehouses solved at once (the reference of :func:`solve_by_warehouse`)."""
    sets = group_sets(problem, incumbent, {sku})
    model = build_model(problem, sets)
    start = start_values(model, sets, *plan_of(incumbent, {sku}))
    for var in model.transfer.values():
        var.setlb(start[var])
        var.setub(start[var])
    settings = problem.scenario.solver.model_copy(update={"threads": 1, "mip_gap": 0.0})
    result = HighsSession(model).solve(settings, time_limit=60)
    assert result.status is SolveStatus.OPTIMAL and result.objective is not None
    return result.objective


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_one_pass_over_the_warehouses_reaches_the_optimum_with_the_transfers_kept(
    tmp_path: Path, seed: int
) -> None:
    """With the transfers kept, a SKU's warehouses share only the budget and the supplier capacities.
    Without either, one pass of ``solve_by_warehouse`` at a gap of 0 must end at the proven optimum of
    the SKU's sub-problem solved whole with the same transfers, and ship exactly those transfers (a
    differential test: a pass that skipped a warehouse, or kept a variable of the warehouse it decides,
    ends above it; one that left the transfers free ships others). The start is the optimal plan's
    transfers without any order line (repaired), so that most SKUs have something to gain."""
    size = InstanceSize(skus=6, warehouses=3, suppliers=2, periods=10)
    tables = {name: frame for name, frame in generate_instance(size, seed).items() if name != "budget"}
    tables["suppliers"] = tables["suppliers"].assign(capacity=None)
    run = run_scenario(write_scenario(tmp_path, tables, size.periods, {"time_limit": 5, "mip_gap": 0.01}))
    problem = run.problem
    no_orders = empty_plan()[0]
    incumbent = evaluate_plan(problem, *repair_plan(problem, no_orders, run.evaluation.transfers))
    assert incumbent.is_valid and len(incumbent.transfers) > 0
    settings = problem.scenario.solver.model_copy(update={"threads": 1, "mip_gap": 0.0})
    compared = improved = 0
    for sku in map(str, problem.skus.index):
        sets = group_sets(problem, incumbent, {sku})
        if len({line[2] for line in sets.lines}) < 2:
            continue
        start = plan_of(incumbent, {sku})
        task = GroupTask((sku,), sets, start, settings, 60.0, by_warehouse=True)
        result = solve_group(problem, task)
        assert result.objective == pytest.approx(
            _optimum_with_transfers_kept(problem, incumbent, sku), rel=1e-7, abs=1e-6
        ), sku
        assert result.orders is not None and result.transfers is not None
        assert plan_rows(result.orders, result.transfers)[1] == plan_rows(*start[:2])[1], sku
        compared += 1
        improved += len(result.orders) > 0
    assert compared >= 2 and improved >= 2


@pytest.mark.parametrize("seed", [0, 1])
def test_each_skus_own_cost_adds_up_to_the_plan_cost_less_order_costs(tmp_path: Path, seed: int) -> None:
    """``cost_by_sku`` (the ranking of fix-and-optimize on the group path): per SKU its lines' value and
    lane cost, its transfers, holding and shortage; with the purchase orders' fixed costs, the plan's
    cost. Checked against the parts recomputed row by row from the written plan."""
    result = run_scenario(_write(tmp_path, seed, {"time_limit": 20}))
    problem, plan = result.problem, result.evaluation
    own = cost_by_sku(problem, plan)
    assert len(plan.orders) > 0
    assert float(own.sum()) + plan.costs["ordering"] == pytest.approx(plan.total_cost, rel=1e-9)
    sku = str(plan.orders["sku"].iloc[0])
    lines = plan.orders[plan.orders["sku"] == sku]
    moved = plan.transfers[plan.transfers["sku"] == sku]
    cells = plan.inventory[plan.inventory["sku"] == sku]
    expected = sum(
        row.line_value + row.quantity * problem.lanes.loc[(row.supplier, row.warehouse), "cost_per_unit"]
        for row in lines.itertuples()
    )
    expected += sum(
        row.quantity * problem.transfer_links.loc[(row.from_warehouse, row.to_warehouse), "cost_per_unit"]
        for row in moved.itertuples()
    )
    expected += float(
        (cells["end_stock"] * problem.skus.loc[sku, "holding_cost"]).sum()
        + (cells["backorder"] * problem.skus.loc[sku, "shortage_cost"]).sum()
    )
    assert own[sku] == pytest.approx(expected, rel=1e-9)


def test_estimated_lines_never_undercount(tmp_path: Path) -> None:
    for seed in range(3):
        problem = load_problem(_write(tmp_path / str(seed), seed, {}))
        lines = len(build_sets(problem).lines)
        assert lines <= estimated_lines(problem) <= 3 * lines


def test_subproblems_run_on_the_cluster_of_a_given_scheduler(tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    scenario = _write(tmp_path, 1, {"time_limit": 30})
    out = tmp_path / "out"
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        address = cluster.scheduler_address
        result = CliRunner().invoke(
            main,
            ["run", str(scenario), "--out", str(out), "--method", "decompose", "--scheduler", address],
        )
        assert result.exit_code == 0, result.output
        assert "solve_group" in cluster.scheduler.task_prefixes
    summary = _checked(out)
    assert summary["solver"]["scheduler"] == address
    assert summary["subproblems"]["count"] > 0


def test_an_unreachable_scheduler_is_one_clear_error(tmp_path: Path) -> None:
    scenario = _write(tmp_path, 0, {"time_limit": 10})
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(scenario),
            "--out",
            str(out),
            "--method",
            "decompose",
            "--scheduler",
            "tcp://127.0.0.1:9",
        ],
    )
    assert result.exit_code != 0
    assert "tcp://127.0.0.1:9" in result.output
    assert not out.exists()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=instances())
def test_monolithic_and_engine_reach_the_same_optimum(case: tuple[dict[str, Any], int]) -> None:
    import tempfile

    tables, periods = case
    with tempfile.TemporaryDirectory() as tmp:
        engine, _, _ = solve(Path(tmp) / "engine", tables, periods, {"mip_gap": 0.0, "time_limit": 30})
        plain, _, _ = solve(
            Path(tmp) / "plain", tables, periods, {"mip_gap": 0.0, "time_limit": 30, "method": "monolithic"}
        )
    assert engine.solve.status.value == plain.solve.status.value == "optimal"
    assert plain.objective == pytest.approx(engine.objective, rel=1e-6, abs=1e-6)
    assert plain.method in ("monolithic", "none")  # "none": no order or transfer can be placed


def test_monolithic_plan_is_resimulated_not_trusted(tmp_path: Path) -> None:
    """The monolithic solve reports the cost of its plan re-simulated from the written files."""
    scenario = _write(tmp_path, 2, {"method": "monolithic", "time_limit": 30})
    out = tmp_path / "out"
    result = run_scenario(scenario, out)
    summary = _checked(out)
    evaluation = evaluate_plan(result.problem, result.evaluation.orders, result.evaluation.transfers)
    assert summary["objective"] == pytest.approx(evaluation.total_cost, rel=1e-9)
    assert summary["solver_objective"] == pytest.approx(summary["objective"], rel=1e-6)


def test_a_rounded_group_plan_comes_from_either_builder_and_repairs_into_a_valid_plan(tmp_path: Path) -> None:
    """``GroupTask.rounded``: the group's LP relaxation rounded into whole packs, built from arrays (no
    extensions: the generated instance) or through Pyomo (the fresh demo: shelf life, channels)."""
    from optistock.backend.decompose import GroupTask, solve_group
    from optistock.backend.heuristics import repair_plan

    fresh = Path(__file__).resolve().parents[1] / "scenarios" / "demo-fresh" / "fresh.yaml"
    for problem in (load_problem(_write(tmp_path, 1, {})), load_problem(fresh)):
        members = tuple(sorted({str(i) for i in problem.demand.index.get_level_values("sku")}))
        sets = build_sets(problem, skus=set(members))
        settings = problem.scenario.solver.model_copy(update={"threads": 1})
        result = solve_group(problem, GroupTask(members, sets, None, settings, 5.0, rounded=True))
        assert result.orders is not None and result.transfers is not None
        assert len(result.orders) > 0 and result.bound is None
        packs = result.orders.merge(problem.offers.reset_index(), on=["supplier", "sku"])
        assert (packs["quantity"] % packs["order_multiple"].clip(lower=1) == 0).all()
        plan = evaluate_plan(problem, *repair_plan(problem, result.orders, result.transfers))
        assert plan.is_valid, plan.violations
        assert plan.total_cost < evaluate_plan(problem, *empty_plan()).total_cost


def test_an_array_lp_not_solved_in_time_falls_back_to_the_group_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model on the array path whose LP relaxation is not solved in its time (here: the LP reports no
    solution, as at a time limit) is planned and bounded by groups instead, validly."""
    from optistock.backend import arrays, strategy
    from optistock.backend.solve import SolveStatus

    optimum = _optimum(tmp_path / "reference", 4)
    monkeypatch.setattr(strategy, "ARRAY_LINE_LIMIT", 0)
    real_solve_lp = arrays.ArrayModel.solve_lp
    calls: list[int] = []

    def whole_lp_times_out(self: arrays.ArrayModel, *args: Any, **kwargs: Any) -> Any:
        calls.append(self.num_cols)
        if len(calls) == 1:  # the whole model's LP, the first one solved (the groups' come later)
            return SolveStatus.NO_SOLUTION, None, np.empty(0)
        return real_solve_lp(self, *args, **kwargs)

    monkeypatch.setattr(arrays.ArrayModel, "solve_lp", whole_lp_times_out)
    out = tmp_path / "out"
    run_scenario(_write(tmp_path / "case", 4, {"workers": 1, "time_limit": 20}), out)
    summary = _checked(out)
    assert summary["method"] == "groups: lagrangian + fair shares + fix-and-optimize"
    assert summary["objective"] >= optimum - 1e-6 * optimum
    assert 0 < summary["best_bound"] <= optimum + 1e-6 * optimum
    assert calls[0] > max(calls[1:]), "the first LP was the whole model's"
