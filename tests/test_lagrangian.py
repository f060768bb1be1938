"""The Lagrangian bound (``backend/lagrangian.py``): a true lower bound for any prices, and exact at the
right split of a shared order cost.

Priced by the LP's duals the bound is usually, not always, above the LP bound (the duals of
``purchase_order_used`` are not priced); the engine keeps the larger of the two.

Hand-solved case (two SKUs on one purchase order): supplier S1 charges 100 per order and sells both A
and B at 1 per unit; demand is 10 of A and 10 of B in period 0, lead time 0, no stock. The optimum
orders both on one purchase order: 20 + 100 = 120. With the order cost split μ = (μ_A, μ_B), each SKU
alone pays 10 + μ_i and the master adds min(0, 100 − μ_A − μ_B):

- μ = (50, 50): 60 + 60 + 0 = 120, the optimum exactly;
- μ = (100, 100): 110 + 110 − 100 = 120;
- μ = (0, 0): 10 + 10 + 0 = 20, a valid but weak bound;
- μ = (80, 0): 90 + 10 + 0 = 100.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import BASE_TABLES, write_scenario
from hypothesis import HealthCheck, given, settings
from test_properties import SOLVER, instances

from optistock.backend import decompose, lagrangian
from optistock.backend.decompose import GroupResult, GroupTask, InProcessRunner, one_by_one
from optistock.backend.model import build_model
from optistock.backend.sets import build_sets
from optistock.backend.solve import HighsSession
from optistock.postprocess.simulate import evaluate_plan
from optistock.preprocess.data import ProblemData, load_problem
from optistock.preprocess.scenario import SolverSettings
from optistock.synthetic import InstanceSize, generate_instance

SETTINGS = SolverSettings(time_limit=20, mip_gap=0.0, threads=1)

TWO_SKUS: dict[str, Any] = {
    **BASE_TABLES,
    "skus": [
        {"sku": sku, "unit_volume": 1.0, "holding_cost": 1.0, "shortage_cost": 100.0} for sku in ("A", "B")
    ],
    "suppliers": [{"supplier": "S1", "order_cost": 100.0, "min_order_value": 0.0}],
    "offers": [
        {"supplier": "S1", "sku": sku, "unit_price": 1.0, "moq": 0, "order_multiple": 1, "lead_time": 0}
        for sku in ("A", "B")
    ],
    "inventory": [{"sku": sku, "warehouse": "W1", "on_hand": 0} for sku in ("A", "B")],
    "demand": [{"sku": sku, "warehouse": "W1", "period": 0, "quantity": 10} for sku in ("A", "B")],
}


def _load(tables: dict[str, Any], periods: int, folder: Path) -> ProblemData:
    return load_problem(write_scenario(folder, tables, periods, SOLVER))


def _optimum(problem: ProblemData) -> float:
    """The exact model's proven optimum (every stock-sign binary, HiGHS to gap 0)."""
    model = build_model(problem, build_sets(problem, all_stock_sign_cells=True))
    if model.nvariables() == 0:
        return 0.0
    result = HighsSession(model).solve(SETTINGS)
    assert result.objective is not None and result.best_bound is not None
    assert result.objective == pytest.approx(result.best_bound, rel=1e-7, abs=1e-6)
    return result.objective


def _lp_prices(problem: ProblemData) -> tuple[lagrangian.Prices, float]:
    """Prices from the LP relaxation's duals, and the LP bound."""
    sets = build_sets(problem)
    model = build_model(problem, sets)
    if model.nvariables() == 0:
        return lagrangian.Prices({}, {}, {}), 0.0
    relaxation = HighsSession(model).relaxation({}, 20, 1, rows=lagrangian.link_rows(model))
    assert relaxation.objective is not None
    return lagrangian.prices_from_duals(sets, relaxation.duals), relaxation.objective


def _bound(
    problem: ProblemData, prices: lagrangian.Prices, groups: list[list[str]], time_limit: float = 20
) -> float:
    result = lagrangian.lagrangian_bound(
        problem, build_sets(problem), prices, groups, InProcessRunner(problem), SETTINGS, time_limit
    )
    assert result.solved_groups == len(groups)
    return result.bound


@pytest.mark.parametrize(
    ("share_a", "share_b", "expected"),
    [(50.0, 50.0, 120.0), (100.0, 100.0, 120.0), (0.0, 0.0, 20.0), (80.0, 0.0, 100.0)],
)
def test_hand_solved_split_of_a_shared_order_cost(
    tmp_path: Path, share_a: float, share_b: float, expected: float
) -> None:
    problem = _load(TWO_SKUS, 1, tmp_path)
    assert _optimum(problem) == pytest.approx(120.0)
    po = ("S1", "W1", 0)
    prices = lagrangian.Prices({(po, "A"): share_a, (po, "B"): share_b}, {}, {})
    assert _bound(problem, prices, [["A"], ["B"]]) == pytest.approx(expected)


def test_a_budget_price_is_paid_back_by_the_master(tmp_path: Path) -> None:
    """Budget 1,000 (not binding), λ = 0.5: each SKU pays 1.5 per unit, the master −0.5 · 1,000; with
    the order cost split 50/50 the bound is 2 · (15 + 50) − 500 = −370, far below the optimum 120 —
    a price on a slack limit only weakens the bound, it never overstates it."""
    tables = {**TWO_SKUS, "budget": [{"period": 0, "amount": 1000.0}]}
    problem = _load(tables, 1, tmp_path)
    po = ("S1", "W1", 0)
    prices = lagrangian.Prices({(po, "A"): 50.0, (po, "B"): 50.0}, {0: 0.5}, {})
    assert _bound(problem, prices, [["A"], ["B"]]) == pytest.approx(-370.0)


def test_lp_duals_price_the_hand_case_exactly(tmp_path: Path) -> None:
    problem = _load(TWO_SKUS, 1, tmp_path)
    prices, lp_bound = _lp_prices(problem)
    bound = _bound(problem, prices, [["A"], ["B"]])
    assert lp_bound - 1e-6 <= bound <= 120.0 + 1e-6


@pytest.mark.parametrize(("share", "expected"), [(50.0, 110.0), (60.0, 125.0)])
def test_a_minimum_order_value_price_is_charged_to_the_opened_order(
    tmp_path: Path, share: float, expected: float
) -> None:
    """MOV 30 on S1: the 20 units of value needed are not enough, so the optimum buys 10 more units of
    one SKU and holds them one period: 30 + 100 + 10 = 140. With ν = 0.5 each unit of value earns 0.5,
    so SKU i alone pays 10 · 0.5 + μ_i, and the master adds min(0, 100 + 0.5 · 30 − Σ μ):

    - μ = (50, 50): 2 · 55 + min(0, 15) = 110;
    - μ = (60, 60): 2 · 65 + min(0, −5) = 125; both below 140.
    """
    tables = {**TWO_SKUS, "suppliers": [{"supplier": "S1", "order_cost": 100.0, "min_order_value": 30.0}]}
    problem = _load(tables, 1, tmp_path)
    assert _optimum(problem) == pytest.approx(140.0)
    po = ("S1", "W1", 0)
    prices = lagrangian.Prices({(po, "A"): share, (po, "B"): share}, {}, {}, {po: 0.5})
    assert _bound(problem, prices, [["A"], ["B"]]) == pytest.approx(expected)


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_bound_priced_by_lp_duals_never_exceeds_the_optimum(case: tuple[dict[str, Any], int]) -> None:
    """On random small instances (MOQs, packs, price breaks, order costs, minimum order values,
    supplier capacity, storage, budget, transfers): Lagrangian bound ≤ proven optimum, with one group
    per SKU and with all SKUs in one group."""
    tables, periods = case
    with tempfile.TemporaryDirectory() as name:
        problem = _load({**BASE_TABLES, **tables}, periods, Path(name))
        optimum = _optimum(problem)
        prices, lp_bound = _lp_prices(problem)
        skus = sorted({cell[0] for cell in build_sets(problem).stock_cells})
        tolerance = 1e-6 * max(1.0, abs(optimum))
        by_lane = lagrangian.lane_split_prices(problem)
        for groups in ([[sku] for sku in skus], [skus]) if skus else ():
            bound = _bound(problem, prices, groups)
            assert bound <= optimum + tolerance, (groups, bound, optimum)
            bound = _bound_without_sets(problem, by_lane, groups)
            assert bound <= optimum + tolerance, ("by lane", groups, bound, optimum)
        assert lp_bound <= optimum + tolerance


def _bound_without_sets(problem: ProblemData, prices: lagrangian.Prices, groups: list[list[str]]) -> float:
    result = lagrangian.lagrangian_bound(
        problem, None, prices, groups, InProcessRunner(problem), SETTINGS, 20
    )
    assert result.solved_groups == len(groups)
    return result.bound


def test_lane_split_prices_share_each_order_over_the_skus_that_could_use_it(tmp_path: Path) -> None:
    """Without the whole model: S1's order cost 100 over the two demanded SKUs it offers (not C, which
    nobody demands), 50 each, the split that makes the hand case exact (120); a third demanded SKU on the
    lane makes it 100/3, and the bound then stays below the optimum."""
    tables = {
        **TWO_SKUS,
        "skus": [
            *TWO_SKUS["skus"],
            {"sku": "C", "unit_volume": 1.0, "holding_cost": 1.0, "shortage_cost": 1.0},
        ],
        "offers": [*TWO_SKUS["offers"], {**TWO_SKUS["offers"][0], "sku": "C"}],
    }
    problem = _load(tables, 1, tmp_path / "two")
    prices = lagrangian.lane_split_prices(problem)
    assert prices.lane_share == {("S1", "W1"): 50.0}
    assert _bound_without_sets(problem, prices, [["A"], ["B"], ["C"]]) == pytest.approx(120.0)
    tables["demand"] = [*TWO_SKUS["demand"], {"sku": "C", "warehouse": "W1", "period": 0, "quantity": 1}]
    problem = _load(tables, 1, tmp_path / "three")
    prices = lagrangian.lane_split_prices(problem)
    assert prices.lane_share == {("S1", "W1"): pytest.approx(100.0 / 3)}
    optimum = _optimum(problem)
    assert optimum == pytest.approx(100.0 + 21.0)  # one order: 21 units at 1
    # C alone would rather go short (1) than pay its share 33.3; A and B pay 10 + 33.3 each
    assert _bound_without_sets(problem, prices, [["A"], ["B"], ["C"]]) == pytest.approx(
        2 * (10 + 100 / 3) + 1
    )
    with pytest.raises(ValueError, match="whole model's sets"):
        lagrangian.lagrangian_bound(
            problem,
            None,
            lagrangian.equal_split_prices(build_sets(problem)),
            [["A"]],
            InProcessRunner(problem),
            SETTINGS,
            20,
        )


def test_a_share_rule_over_all_skus_gets_no_lagrangian_bound(tmp_path: Path) -> None:
    tables = {
        **TWO_SKUS,
        "sourcing": [{"supplier": "S1", "sku": "", "min_share": 0.5, "max_share": 1.0}],
    }
    assert not lagrangian.applicable(_load(tables, 1, tmp_path))
    assert lagrangian.applicable(_load(TWO_SKUS, 1, tmp_path / "plain"))


def test_on_the_s_benchmark_the_bound_beats_the_lp(tmp_path: Path) -> None:
    """The seeded S instance (20 SKUs, every core feature): priced by the LP's duals, five groups of
    four SKUs prove more than the LP relaxation does, and the bound stays below a valid plan's cost
    (the plan that orders nothing)."""
    from optistock.postprocess.extract import empty_plan
    from optistock.postprocess.simulate import evaluate_plan
    from optistock.synthetic import NAMED_SIZES, generate_instance, write_instance

    write_instance(generate_instance(NAMED_SIZES["S"], 0), tmp_path / "data")
    problem = _load_synthetic(tmp_path)
    prices, lp_bound = _lp_prices(problem)
    skus = sorted({cell[0] for cell in build_sets(problem).stock_cells})
    bound = _bound(problem, prices, [skus[i : i + 4] for i in range(0, len(skus), 4)], time_limit=5)
    assert bound > lp_bound * 1.001  # a group's bound at its time limit is valid too
    assert bound < evaluate_plan(problem, *empty_plan()).total_cost


def _load_synthetic(folder: Path) -> ProblemData:
    scenario = folder / "scenario.yaml"
    scenario.write_text(
        "name: s\ndata: data\nhorizon: {periods: 13}\nsolver: {time_limit: 20, mip_gap: 0.0, threads: 1}\n"
    )
    return load_problem(scenario)


def test_equal_split_prices_without_an_lp(tmp_path: Path) -> None:
    """Without LP duals the order cost is split equally over the SKUs on the order: μ = (50, 50), the
    split that makes the hand-solved case exact."""
    problem = _load(TWO_SKUS, 1, tmp_path)
    prices = lagrangian.equal_split_prices(build_sets(problem))
    po = ("S1", "W1", 0)
    assert prices.order_share == {(po, "A"): 50.0, (po, "B"): 50.0}
    assert _bound(problem, prices, [["A"], ["B"]]) == pytest.approx(120.0)


def test_groups_whose_milp_is_not_reached_count_their_lp_relaxation(tmp_path: Path) -> None:
    """A deadline already passed solves no group's MILP: each group counts its LP relaxation's optimum
    instead (the bound of the LP relaxations alone, below the MILPs' 120); where only LP relaxations
    are solved (``relaxed``), a group not reached counts 0 and the bound is the master's terms alone
    (0 here)."""
    problem = _load(TWO_SKUS, 1, tmp_path)
    sets = build_sets(problem)
    prices = lagrangian.equal_split_prices(sets)
    runner = InProcessRunner(problem)
    late = lagrangian.lagrangian_bound(problem, sets, prices, [["A"], ["B"]], runner, SETTINGS, 20, 0.0)
    relaxations = lagrangian.lagrangian_bound(
        problem, sets, prices, [["A"], ["B"]], runner, SETTINGS, 20, relaxed=True
    )
    assert late.solved_groups == late.lp_groups == relaxations.solved_groups == 2
    assert late.group_bounds == pytest.approx(relaxations.group_bounds)
    assert late.bound == pytest.approx(relaxations.bound)
    assert 0.0 < late.bound <= 120.0 + 1e-9
    assert late.orders.empty  # an LP relaxation makes no plan
    none = lagrangian.lagrangian_bound(
        problem, sets, prices, [["A"], ["B"]], runner, SETTINGS, 20, 0.0, relaxed=True
    )
    assert none.solved_groups == 0 and none.lp_groups == 0
    assert none.bound == pytest.approx(0.0)


def test_a_group_whose_milp_proves_nothing_counts_its_lp_relaxation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group whose MILP returns no bound (a solver stopped before its root) is not counted 0."""
    problem = _load(TWO_SKUS, 1, tmp_path)
    sets = build_sets(problem)
    prices = lagrangian.equal_split_prices(sets)
    runner = InProcessRunner(problem)
    solve_group = decompose.solve_group

    def milp_proves_nothing_for_b(problem: ProblemData, task: GroupTask) -> GroupResult:
        result = solve_group(problem, task)
        if task.members == ("B",) and not task.relaxed:
            return replace(result, bound=None)
        return result

    monkeypatch.setattr(decompose, "solve_group", milp_proves_nothing_for_b)
    result = lagrangian.lagrangian_bound(problem, sets, prices, [["A"], ["B"]], runner, SETTINGS, 20)
    relaxations = lagrangian.lagrangian_bound(
        problem, sets, prices, [["A"], ["B"]], runner, SETTINGS, 20, relaxed=True
    )
    assert result.solved_groups == 2 and result.lp_groups == 1
    assert result.group_bounds[("B",)] == pytest.approx(relaxations.group_bounds[("B",)])
    assert result.group_bounds[("A",)] >= relaxations.group_bounds[("A",)] - 1e-9


def test_limit_shares_add_up_to_one_per_limit(tmp_path: Path) -> None:
    problem = _load_synthetic_instance(tmp_path, seed=4)
    shares = lagrangian.limit_shares(problem)
    assert sum(shares.value.values()) == pytest.approx(1.0)
    for supplier in {s for s, _ in shares.units}:
        assert sum(v for (s, _), v in shares.units.items() if s == supplier) == pytest.approx(1.0)
    for warehouse in {w for w, _ in shares.volume}:
        assert sum(v for (w, _), v in shares.volume.items() if w == warehouse) == pytest.approx(1.0)
    assert all(v >= 0 for v in [*shares.value.values(), *shares.units.values(), *shares.volume.values()])


def test_group_shares_add_up_their_skus_shares(tmp_path: Path) -> None:
    """A group's share of each supplier's capacity and warehouse's storage is the sum of its SKUs'
    (looked up by SKU, not searched for); groups that split the SKUs split every share."""
    problem = _load_synthetic_instance(tmp_path, seed=4)
    shares = lagrangian.limit_shares(problem)
    skus = sorted({sku for _, sku in shares.units} | {sku for _, sku in shares.volume})
    groups = [skus[n : n + 3] for n in range(0, len(skus), 3)]
    for group in groups:
        own = shares.for_group(group)
        for supplier in {s for s, _ in shares.units}:
            expected = sum(v for (s, sku), v in shares.units.items() if s == supplier and sku in group)
            assert own.capacity.get(supplier, 0.0) == pytest.approx(expected, abs=1e-12)
        for warehouse in {w for w, _ in shares.volume}:
            expected = sum(v for (w, sku), v in shares.volume.items() if w == warehouse and sku in group)
            assert own.storage.get(warehouse, 0.0) == pytest.approx(expected, abs=1e-12)
        assert own.budget == pytest.approx(sum(shares.value.get(sku, 0.0) for sku in group))
    together = [shares.for_group(group) for group in groups]
    for supplier in {s for s, _ in shares.units}:
        assert sum(g.capacity.get(supplier, 0.0) for g in together) == pytest.approx(1.0)
    for warehouse in {w for w, _ in shares.volume}:
        assert sum(g.storage.get(warehouse, 0.0) for g in together) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [4, 5])
def test_fair_share_plans_solved_apart_fit_the_shared_limits_together(tmp_path: Path, seed: int) -> None:
    """Each group plans under its share of the budget and of every supplier's capacity, with every
    minimum order value in full: their plans together break none of those limits, while the bound's
    sub-problems (full limits, no minimum order value) together break one (seed 4: a supplier's
    capacity, seed 5: minimum order values). Each group's bound sub-problem costs no more than its
    fair-share one (a relaxation of it)."""
    problem = _load_synthetic_instance(tmp_path, seed)
    prices = lagrangian.lane_split_prices(problem)
    groups = [[sku] for sku in sorted({str(i) for i in problem.demand.index.get_level_values("sku")})]
    orders, transfers, planned, results = lagrangian.fair_share_plans(
        problem, prices, lagrangian.limit_shares(problem), groups, InProcessRunner(problem), SETTINGS, 20
    )
    assert planned == {group[0] for group in groups}
    plan = evaluate_plan(problem, orders, transfers)
    shared = ("budget", "supplier capacity", "minimum order value")
    assert [v for v in plan.violations if v.startswith(shared) or "minimum order value" in v] == []
    # the bound's sub-problems, each keeping the full limits and no minimum order value, do not fit together
    relaxed = lagrangian.lagrangian_bound(
        problem, None, prices, groups, InProcessRunner(problem), SETTINGS, 20
    )
    together = evaluate_plan(problem, relaxed.orders, relaxed.transfers)
    assert [v for v in together.violations if v.startswith(shared) or "minimum order value" in v] != []
    for group, fair in zip(groups, results, strict=True):
        assert fair.objective is not None
        full = _bound_without_sets(problem, prices, [group])
        assert full <= fair.objective + 1e-6 * max(1.0, abs(fair.objective)), group


def _load_synthetic_instance(tmp_path: Path, seed: int) -> ProblemData:
    size = InstanceSize(skus=8, warehouses=2, suppliers=3, periods=6)
    return load_problem(write_scenario(tmp_path, dict(generate_instance(size, seed)), size.periods, SOLVER))


STRANDED: dict[str, Any] = {
    **TWO_SKUS,
    "suppliers": [
        {"supplier": "X", "order_cost": 0.0, "min_order_value": 0.0, "capacity": 10},
        {"supplier": "Y", "order_cost": 0.0, "min_order_value": 0.0, "capacity": None},
    ],
    "offers": [
        {"supplier": "X", "sku": "A", "unit_price": 5.0, "moq": 0, "order_multiple": 1, "lead_time": 0},
        {"supplier": "X", "sku": "B", "unit_price": 5.0, "moq": 0, "order_multiple": 1, "lead_time": 0},
        {"supplier": "Y", "sku": "B", "unit_price": 1.0, "moq": 0, "order_multiple": 1, "lead_time": 0},
    ],
}
"""Hand case of stranded capacity: X (10 units a period) sells A and B at 5, Y (no limit) sells B at 1;
demand 10 of A and 10 of B in period 0. The optimum buys A from X and B from Y: 50 + 10 = 60. By
demand, A and B each get half of X's capacity, but B never buys from X: A can buy only 5 and runs 5
short (5 · 5 + 5 · 100 + B's 10 = 535)."""


def test_lp_use_of_the_shared_limits_is_read_from_the_groups_lp_relaxations(tmp_path: Path) -> None:
    """Each group's LP buys its 10 units where they are cheapest: A 10 from X for 50, B 10 from Y for 10,
    nothing left in stock."""
    problem = _load(STRANDED, 1, tmp_path)
    prices = lagrangian.lane_split_prices(problem)
    bound = lagrangian.lagrangian_bound(
        problem, None, prices, [["A"], ["B"]], InProcessRunner(problem), SETTINGS, 20, relaxed=True
    )
    assert bound.bound == pytest.approx(60.0)
    use_a, use_b = bound.use[("A",)], bound.use[("B",)]
    assert use_a.units == pytest.approx({("X", 0): 10.0})
    assert use_a.spend == pytest.approx({0: 50.0})
    assert use_b.units == pytest.approx({("Y", 0): 10.0})
    assert use_b.spend == pytest.approx({0: 10.0})
    assert sum(use_a.volume.values()) + sum(use_b.volume.values()) == pytest.approx(0.0)


def test_shares_by_lp_use_give_stranded_capacity_to_the_group_that_uses_it(tmp_path: Path) -> None:
    problem = _load(STRANDED, 1, tmp_path)
    prices = lagrangian.lane_split_prices(problem)
    groups = [["A"], ["B"]]
    demand = lagrangian.limit_shares(problem)
    by_demand = lagrangian.group_shares(problem, demand, groups, {})
    assert [share.of_capacity("X", 0) for share in by_demand] == pytest.approx([0.5, 0.5])
    bound = lagrangian.lagrangian_bound(
        problem, None, prices, groups, InProcessRunner(problem), SETTINGS, 20, relaxed=True
    )
    by_use = lagrangian.group_shares(problem, demand, groups, bound.use)
    assert [share.of_capacity("X", 0) for share in by_use] == pytest.approx([1.0, 0.0])
    costs = {}
    for name, used in (("demand", None), ("use", bound.use)):
        orders, transfers, _, _ = lagrangian.fair_share_plans(
            problem, prices, demand, groups, InProcessRunner(problem), SETTINGS, 20, used=used
        )
        plan = evaluate_plan(problem, orders, transfers)
        assert plan.is_valid, plan.violations
        costs[name] = plan.total_cost
    assert costs == pytest.approx({"demand": 535.0, "use": 60.0})


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_shares_by_lp_use_add_up_to_at_most_one_and_cover_each_use_that_fits(
    tmp_path: Path, seed: int
) -> None:
    """Per limit and period the groups' shares add up to at most 1 (to 1 where any group uses it); where
    the uses fit, every group's share covers its own use; groups without a known use (here every third)
    keep their demand shares."""
    problem = _load_synthetic_instance(tmp_path, seed)
    prices = lagrangian.lane_split_prices(problem)
    groups = [[sku] for sku in sorted({str(i) for i in problem.demand.index.get_level_values("sku")})]
    bound = lagrangian.lagrangian_bound(
        problem, None, prices, groups, InProcessRunner(problem), SETTINGS, 20, relaxed=True
    )
    used = {members: use for n, (members, use) in enumerate(sorted(bound.use.items())) if n % 3}
    demand = lagrangian.limit_shares(problem)
    shares = lagrangian.group_shares(problem, demand, groups, used)
    checked = 0
    for supplier in problem.suppliers.index:
        for t in range(problem.periods):
            limit = problem.supplier_capacity_in(str(supplier), t)
            if limit != limit or limit <= 0:  # no capacity (NaN) or an outage
                continue
            of_group = [share.of_capacity(str(supplier), t) for share in shares]
            uses = [
                used[tuple(g)].units.get((str(supplier), t), 0.0) if tuple(g) in used else None
                for g in groups
            ]
            assert all(share >= 0 for share in of_group)
            assert sum(of_group) <= 1.0 + 1e-9
            unknown = [n for n, use in enumerate(uses) if use is None]
            for n in unknown:
                assert of_group[n] == pytest.approx(
                    demand.for_group(groups[n]).capacity.get(str(supplier), 0.0)
                )
            total = sum(use for use in uses if use is not None)
            left = 1.0 - sum(of_group[n] for n in unknown)
            if 0 < total <= left * limit:
                checked += 1
                for share, use in zip(of_group, uses, strict=True):
                    if use is not None:
                        assert share * limit >= use - 1e-6
    for t in problem.budget.index:
        assert sum(share.of_budget(int(t)) for share in shares) <= 1.0 + 1e-9
    assert checked > 0


LUMPY_SKUS = [f"K{n}" for n in range(9)]
LUMPY: dict[str, Any] = {
    **BASE_TABLES,
    "skus": [
        {"sku": sku, "unit_volume": 1.0, "holding_cost": 0.01, "shortage_cost": 10.0} for sku in LUMPY_SKUS
    ],
    "offers": [
        {"supplier": "S1", "sku": sku, "unit_price": 1.0, "moq": 4, "order_multiple": 1, "lead_time": 0}
        for sku in LUMPY_SKUS
    ],
    "inventory": [{"sku": sku, "warehouse": "W1", "on_hand": 0} for sku in LUMPY_SKUS],
    "demand": [
        {"sku": sku, "warehouse": "W1", "period": t, "quantity": 1} for sku in LUMPY_SKUS for t in range(4)
    ],
    "budget": [{"period": t, "amount": 24.0} for t in range(4)],
}
"""Hand case of lumpy orders: nine SKUs each need 1 unit a period for 4 periods and can only be bought
4 at a time (MOQ 4, price 1; a unit short costs 10 a period). The budget is 24 a period; each SKU's LP
relaxation buys 1 unit a period (9 of the 24). Shares fixed up front give each SKU 1 + 15/9 < 4 a
period, so none can ever place an order: every SKU runs short 1 + 2 + 3 + 4 units (cost 100 each). Handed
out batch by batch (four at a time here), the first SKUs get 1 + 15/4 = 4.75 and order."""


def test_shares_handed_out_by_batch_let_groups_place_whole_orders(tmp_path: Path) -> None:
    problem = _load(LUMPY, 4, tmp_path)
    prices = lagrangian.lane_split_prices(problem)
    groups = [[sku] for sku in LUMPY_SKUS]
    bound = lagrangian.lagrangian_bound(
        problem, None, prices, groups, InProcessRunner(problem), SETTINGS, 20, relaxed=True
    )
    assert all(use.spend == pytest.approx(dict.fromkeys(range(4), 1.0)) for use in bound.use.values())
    demand = lagrangian.limit_shares(problem)
    fixed = lagrangian.group_shares(problem, demand, groups, bound.use)
    assert [share.of_budget(0) * 24.0 for share in fixed] == pytest.approx([1 + 15 / 9] * 9)
    orders, transfers, _, _ = lagrangian.fair_share_plans(
        problem, prices, demand, groups, InProcessRunner(problem), SETTINGS, 20, used=bound.use
    )
    plan = evaluate_plan(problem, orders, transfers)
    assert plan.is_valid, plan.violations
    ordering = {str(sku) for sku in orders["sku"]}
    assert set(LUMPY_SKUS[:4]) <= ordering  # the first batch: 4.75 each, enough for one order of 4
    assert plan.total_cost < 9 * 100.0 - 4 * 90.0  # each of the first four saves at least 90


@pytest.mark.parametrize("seed", [4, 5])
def test_share_ledger_never_hands_out_more_than_a_limit(tmp_path: Path, seed: int) -> None:
    """Grants of the groups out plus what the groups solved have ordered never exceed a budget or a
    supplier capacity, and a group's grant covers its promise wherever the limit has room for it."""
    problem = _load_synthetic_instance(tmp_path, seed)
    prices = lagrangian.lane_split_prices(problem)
    groups = [[sku] for sku in sorted({str(i) for i in problem.demand.index.get_level_values("sku")})]
    runner = InProcessRunner(problem)
    bound = lagrangian.lagrangian_bound(problem, None, prices, groups, runner, SETTINGS, 20, relaxed=True)
    promised = lagrangian.group_shares(
        problem, lagrangian.limit_shares(problem), groups, bound.use, unshared=lagrangian.ShareLedger.KINDS
    )
    ledger = lagrangian.ShareLedger(problem, groups, promised, batch=3)
    limits = ledger.limits
    assert limits and {key[0] for key in limits} == {"budget", "capacity"}
    ordered: dict[Any, float] = dict.fromkeys(limits, 0.0)
    list_price = problem.offers["unit_price"]
    for first in range(0, len(groups), 3):
        batch = groups[first : first + 3]
        granted = [ledger.grant(group) for group in batch]
        for key, amount in limits.items():
            out = sum(share.of(key) for share in granted) * amount
            assert ordered[key] + out <= amount * (1 + 1e-9) + 1e-9, key
        for group, share, promise in zip(batch, granted, promised[first : first + 3], strict=True):
            for key in limits:
                assert share.of(key) >= 0.0
                if ordered[key] == 0.0:  # nothing committed yet: room for every promise
                    assert share.of(key) >= promise.of(key) - 1e-12, (group, key)
        tasks = [
            GroupTask(
                tuple(group),
                lagrangian.fair_share_group_sets(problem, group, prices.for_group(group), share),
                None,
                SETTINGS,
                20,
            )
            for group, share in zip(batch, granted, strict=True)
        ]
        for result in runner.solve(tasks):
            ledger.record(result)
            assert result.orders is not None
            for row in result.orders.itertuples():
                value = row.quantity * float(list_price[(row.supplier, row.sku)])
                ordered[("budget", row.order_period)] = ordered.get(("budget", row.order_period), 0) + value
                key = ("capacity", row.supplier, row.order_period)
                if key in ordered:
                    ordered[key] += row.quantity
    for key, amount in limits.items():
        assert ordered.get(key, 0.0) <= amount * (1 + 1e-9) + 1e-9, key
    assert ledger.out == {}


class _TimedRunner:
    """Two slots whose results report given build times (the first group on each slot pays a one-off
    start of ``warm_up`` seconds) and no solve time, without solving anything: the batch scheduler's
    decisions depend only on the times reported and the clock."""

    slots = 2

    def __init__(self, warm_up: float) -> None:
        self.warm_up = warm_up
        self.solved = 0

    def solve(self, tasks: Sequence[GroupTask]) -> list[GroupResult]:
        results = []
        for task in tasks:
            build = self.warm_up if self.solved < self.slots else 0.05
            results.append(GroupResult(task.members, None, None, build, 0.0, bound=0.0))
            self.solved += 1
        return results

    def solve_as_ready(
        self, next_task: Callable[[], GroupTask | None], ahead: int = 0
    ) -> Iterator[GroupResult]:
        return one_by_one(self, next_task)


@pytest.mark.parametrize("solve", [lagrangian.solve_groups, lagrangian.solve_in_batches])
def test_a_one_off_start_on_each_worker_does_not_stop_the_groups(tmp_path: Path, solve: Any) -> None:
    """5,000 groups of 0.05 s each (their solves take no time) on two slots need 125 s; with 1,000 s
    left they all go, though each slot's first group took 60 s (by the mean, 15 s a group: 37,500 s);
    as slots free up (:func:`~optistock.backend.lagrangian.solve_groups`) or in batches."""
    sets = build_sets(_load(TWO_SKUS, 1, tmp_path))
    groups = [[f"G{n}"] for n in range(5000)]

    def task(group: Sequence[str], limit: float) -> GroupTask:
        return GroupTask(tuple(group), sets, None, SETTINGS, limit)

    runner = _TimedRunner(warm_up=60.0)
    results = solve(runner, groups, task, 2.0, time.perf_counter() + 1000.0)
    assert len(results) == 5000
    # the same groups with 100 s left would not all finish: stopped once four per slot are measured
    # (after the first batch of as many)
    results = solve(_TimedRunner(0.05), groups, task, 2.0, time.perf_counter() + 100.0)
    assert len(results) == 2 * lagrangian.STOP_SAMPLE_PER_SLOT == lagrangian.batch_size(_TimedRunner(0.05))


class _OutOfOrderRunner:
    """Three slots that take ``slots + ahead`` tasks at a time and hand their results back last first
    (as workers finishing out of order would), recording how many tasks were out at once."""

    slots = 3

    def __init__(self) -> None:
        self.most_out = 0

    def solve(self, tasks: Sequence[GroupTask]) -> list[GroupResult]:
        return [GroupResult(task.members, None, None, 0.0, 0.0, bound=0.0) for task in tasks]

    def solve_as_ready(
        self, next_task: Callable[[], GroupTask | None], ahead: int = 0
    ) -> Iterator[GroupResult]:
        while True:
            out = [task for task in (next_task() for _ in range(self.slots + ahead)) if task is not None]
            if not out:
                return
            self.most_out = max(self.most_out, len(out))
            yield from reversed(self.solve(out))


def test_solve_groups_keeps_tasks_queued_per_slot_and_returns_the_groups_order(tmp_path: Path) -> None:
    """The results come back in the groups' order whatever order they finish in; ``on_result`` sees
    them as they finish; every group is handed out once, with ``GROUPS_AHEAD_PER_SLOT`` tasks queued per
    slot beyond those solving."""
    sets = build_sets(_load(TWO_SKUS, 1, tmp_path))
    groups = [[f"G{n}"] * (1 + n % 2) for n in range(20)]
    made: list[tuple[str, ...]] = []
    seen: list[tuple[str, ...]] = []

    def task(group: Sequence[str], limit: float) -> GroupTask:
        made.append(tuple(group))
        return GroupTask(tuple(group), sets, None, SETTINGS, limit)

    runner = _OutOfOrderRunner()
    results = lagrangian.solve_groups(
        runner,
        groups,
        task,
        2.0,
        on_result=lambda r: seen.append(r.members),
        ahead_per_slot=lagrangian.GROUPS_AHEAD_PER_SLOT,
    )
    assert [r.members for r in results] == [tuple(g) for g in groups] == made
    assert seen != made and sorted(seen) == sorted(made)
    in_flight = runner.slots * (1 + lagrangian.GROUPS_AHEAD_PER_SLOT)
    assert runner.most_out == lagrangian.groups_in_flight(runner) == in_flight
