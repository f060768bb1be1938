"""A Lagrangian lower bound: the model split into SKU-group sub-problems, the coupling priced.

SKUs interact only through purchase orders (one fixed cost and one minimum order value per supplier,
warehouse and period, whatever SKUs are on it), the budget and the supplier capacity (and storage,
which every group keeps on its own). The *Lagrangian relaxation* ``models/core.md`` §9 describes
drops that coupling and prices it instead:

- every group G gets its own copy of each purchase order p it can use, and pays μ_pG for opening it;
  the master pays F_p − Σ_G μ_pG for the real one, whose best value is min(0, F_p − Σ_G μ_pG);
- the budget of period t is priced at λ_t ≥ 0 per unit of purchase value, the capacity of supplier s in
  t at λ_st ≥ 0 per unit; the master pays −λ_t·B_t and −λ_st·Cap_st;
- the minimum order value of p is priced at ν_p ≥ 0: every unit of value on p earns ν_p, and the real
  order pays ν_p·MOV_p more when opened, so the master's term is min(0, F_p + ν_p·MOV_p − Σ_G μ_pG);
- each group keeps the capacity, storage and (where it can) budget limits for itself alone (valid: the
  other SKUs' use is never negative), and its own copies of ``purchase_order_used``.

For any μ, λ ≥ 0 the sum of the groups' proven bounds plus the master's terms is a lower bound on the
optimal cost of the plan: the relaxation only removes constraints or moves them into the objective with
non-negative prices, and SKUs in no group contribute 0 (no cost is negative). The prices come from the
duals of the LP relaxation; the sub-problems keep pack sizes, MOQs and price breaks integral, which is
where the LP is weak, so the bound is usually well above the LP bound (not always: the LP's duals on
``purchase_order_used`` are not priced).

Each group's plan is also a piece of a plan: the pieces together, repaired (:func:`repair_plan`) until
the re-simulation finds no broken shared limit, are offered to the incumbent.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from typing import Any

import pandas as pd

from optistock.backend.decompose import GroupResult, GroupRunner, GroupTask, LimitUse
from optistock.backend.sets import ModelSets, PriceSegment, PurchaseOrder, build_sets
from optistock.postprocess.extract import empty_plan
from optistock.preprocess.data import ProblemData
from optistock.preprocess.scenario import SolverSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prices:
    """Lagrangian prices of the coupling constraints (all ≥ 0)."""

    order_share: dict[tuple[PurchaseOrder, str], float]
    """μ: what SKU i pays for using purchase order p; a group pays the sum over its SKUs."""
    budget: dict[int, float]
    """λ_t per unit of purchase value ordered in t."""
    capacity: dict[tuple[str, int], float]
    """λ_st per unit ordered from s in t."""
    order_value: dict[PurchaseOrder, float] = field(default_factory=dict)
    """ν_p per unit of value on purchase order p (its minimum order value's price)."""
    lane_share: dict[tuple[str, str], float] = field(default_factory=dict)
    """μ by (supplier, warehouse) instead of by purchase order and SKU: what every SKU pays for any
    purchase order on that lane (:func:`lane_split_prices`). Used only without ``order_share``; the
    shares of one order then never add up to more than its fixed cost, so its master term is 0."""

    def for_group(self, members: Collection[str]) -> Prices:
        """The prices a group's sub-problem reads: ``order_share`` of its own SKUs only."""
        own = set(members)
        return replace(self, order_share={key: v for key, v in self.order_share.items() if key[1] in own})


@dataclass(frozen=True)
class LagrangianBound:
    bound: float
    """The proven lower bound on the optimal cost."""
    solved_groups: int
    """Groups that count a proven bound (their MILP's, or their LP relaxation's: ``lp_groups``)."""
    groups: int
    orders: pd.DataFrame
    """The groups' plans together (shared limits not yet checked)."""
    transfers: pd.DataFrame
    build_seconds: float = 0.0
    """Build and solve seconds of the groups' sub-problems, summed over the workers."""
    solve_seconds: float = 0.0
    size: tuple[int, int, int] = (0, 0, 0)
    """Variables, integer variables and constraints, summed over the groups' sub-problems."""
    planned_skus: frozenset[str] = frozenset()
    """The SKUs of the groups whose sub-problem found a plan (``orders`` covers them)."""
    use: dict[tuple[str, ...], LimitUse] = field(default_factory=dict)
    """Group → what its LP relaxation's solution uses of the shared limits (``relaxed`` only)."""
    group_bounds: dict[tuple[str, ...], float] = field(default_factory=dict)
    """Group → its sub-problem's proven bound (the groups solved)."""
    lp_groups: int = 0
    """Groups whose MILP was not reached or proved nothing, counted by their LP relaxation."""


def _relaxed_task(
    task: Callable[[Sequence[str], float], GroupTask], group: Sequence[str], limit: float
) -> GroupTask:
    """``task``'s sub-problem of ``group``, its LP relaxation only."""
    return replace(task(group, limit), relaxed=True)


def applicable(problem: ProblemData) -> bool:
    """Whether the relaxation is valid for this problem: a sourcing share over all SKUs couples them in a
    way a group cannot keep for itself alone, so such problems get no Lagrangian bound."""
    return not any(rule.sku is None for rule in problem.sourcing.shares)


PROGRESS_INTERVAL = 60.0
"""Seconds between two progress lines of :func:`solve_groups` and :func:`solve_in_batches` in the log."""
GROUPS_AHEAD_PER_SLOT = 3
"""Groups :func:`solve_groups` keeps queued for each slot beyond the one it solves, so that a slot never
waits for its next task's round trip (the bound's LPs of four SKUs take a tenth of a second)."""
STOP_SAMPLE_PER_SLOT = 4
"""Groups per slot :func:`solve_groups` solves before it judges, from their times, whether the groups
left can still all be solved by the deadline."""
MIN_GROUP_TIME_LIMIT = 0.2
"""Seconds a group's sub-problem gets at least (below it HiGHS rarely finishes its root LP)."""
LP_FILL_IN_SECONDS = 5.0
"""Seconds past its deadline :func:`lagrangian_bound` may spend on the LP relaxations of the groups
whose MILP was not reached or proved nothing (a 4-SKU group's LP of M takes milliseconds)."""

ROW_FAMILIES = ("purchase_order_link", "budget", "supplier_capacity", "min_order_value")
"""The constraints whose duals price the coupling."""


def prices_from_duals(sets: ModelSets, duals: Mapping[tuple, float]) -> Prices:
    """Prices from the LP relaxation's row duals, keyed (constraint name, *index) for the constraints of
    :data:`ROW_FAMILIES`. Any non-negative prices give a valid bound; the prices are the duals'
    magnitudes, whatever side of its inequality a builder puts a row's terms on.

    A line's link row reads on_l − po_open_p ≤ 0 (coefficient 1 on po_open) or q_l − U_l·po_open_p ≤ 0
    (coefficient U_l); the price its SKU pays for p is the row's dual times that coefficient, which is
    what the LP's po_open_p credits to that SKU.
    """
    share: dict[tuple[PurchaseOrder, str], float] = defaultdict(float)
    for key, line in sets.lines.items():
        dual = abs(duals.get(("purchase_order_link", *key), 0.0))
        if dual <= 0:
            continue
        coefficient = 1.0 if (line.segments or line.needs_activation) else float(line.max_quantity)
        share[((line.supplier, line.warehouse, line.order_period), line.sku)] += dual * coefficient
    budget = {t: abs(duals.get(("budget", t), 0.0)) for t in sets.budget}
    capacity = {key: abs(duals.get(("supplier_capacity", *key), 0.0)) for key in sets.supplier_capacity}
    order_value = {po: abs(duals.get(("min_order_value", *po), 0.0)) for po in sets.purchase_orders}
    return Prices(dict(share), budget, capacity, {po: v for po, v in order_value.items() if v > 0})


def equal_split_prices(sets: ModelSets) -> Prices:
    """Prices without an LP: each purchase order's fixed cost split equally over the SKUs that have a
    line on it, and no price on the budget, capacity or minimum order values. Valid like any other
    prices (the master term min(0, F_p − Σ μ_p) is then 0); used when the LP relaxation gave no duals."""
    skus: dict[PurchaseOrder, set[str]] = defaultdict(set)
    for po, lines in sets.purchase_orders.items():
        skus[po].update(line[1] for line in lines)
    share = {(po, sku): sets.order_cost[po] / len(members) for po, members in skus.items() for sku in members}
    return Prices(share, {}, {})


def lane_split_prices(problem: ProblemData) -> Prices:
    """Prices without the whole model: the fixed cost F_s of every purchase order of supplier s to
    warehouse w split equally over the n_sw SKUs that could ever be on it (demanded, offered by s and
    not switched off; s delivers to w), μ = F_s / n_sw per SKU, and nothing on the other limits. At
    most n_sw SKUs have lines on an order, so the shares never add up to more than F_s. Used where the
    model is too large to build whole (no LP duals)."""
    demand = problem.demand[problem.demand > 0]
    demanded = set(map(str, demand.index.get_level_values("sku")))
    offered: dict[str, set[str]] = defaultdict(set)
    for supplier, sku in problem.offers.index:
        if str(sku) in demanded and not problem.sourcing.is_off(str(supplier), str(sku)):
            offered[str(supplier)].add(str(sku))
    costs = problem.suppliers["order_cost"]
    share: dict[tuple[str, str], float] = {}
    for supplier, warehouse in problem.lanes.index:
        count = len(offered.get(str(supplier), ()))
        if count:
            share[(str(supplier), str(warehouse))] = float(costs[supplier]) / count
    return Prices({}, {}, {}, lane_share=share)


def priced_group_sets(problem: ProblemData, members: Sequence[str], prices: Prices) -> ModelSets:
    """The sets of group ``members``'s Lagrangian sub-problem: its own model with the prices in it.

    Its purchase orders cost μ_pG and need no minimum value; a line of purchase order p bought in t
    costs (1 + λ_t − ν_p) times its value; λ_st is added to every unit's lane cost (the lines are copied
    only where some of these prices are set: on XL the copies took a fifth of a group's build). The
    group keeps the budget of t for itself, scaled by 1 + λ_t so that the row is unchanged, unless some
    order of t has a price ν_p (then the factors differ between lines and the row is dropped).
    """
    sets = build_sets(problem, skus=set(members))
    priced_value_periods = {po[2] for po in prices.order_value}
    for po in sets.purchase_orders:
        if prices.lane_share:
            skus = {line[1] for line in sets.purchase_orders[po]}
            sets.order_cost[po] = prices.lane_share.get((po[0], po[1]), 0.0) * len(skus)
        else:
            sets.order_cost[po] = sum(prices.order_share.get((po, sku), 0.0) for sku in members)
        sets.min_order_value[po] = 0.0
    priced_lines = bool(prices.budget or prices.order_value or prices.capacity)
    for key, line in list(sets.lines.items()) if priced_lines else ():
        po = (line.supplier, line.warehouse, line.order_period)
        factor = 1.0 + prices.budget.get(line.order_period, 0.0) - prices.order_value.get(po, 0.0)
        sets.lines[key] = replace(
            line,
            unit_price=line.unit_price * factor,
            lane_cost=line.lane_cost + prices.capacity.get((line.supplier, line.order_period), 0.0),
            segments=[
                PriceSegment(segment.low, segment.high, segment.unit_price * factor)
                for segment in line.segments
            ],
        )
    for t, amount in list(sets.budget.items()):
        if t in priced_value_periods:
            del sets.budget[t]
        else:  # every line of t has the factor 1 + λ_t: the scaled row is the group's own budget row
            sets.budget[t] = amount * (1.0 + prices.budget.get(t, 0.0))
    return sets


def master_terms(sets: ModelSets, prices: Prices) -> float:
    """The bound's terms outside the groups: Σ_p min(0, F_p + ν_p·MOV_p − Σ μ_p) − Σ λ_t B_t −
    Σ λ_st Cap_st."""
    paid: dict[PurchaseOrder, float] = defaultdict(float)
    for (po, _), value in prices.order_share.items():
        paid[po] += value
    orders = sum(
        min(
            0.0,
            sets.order_cost.get(po, 0.0)
            + prices.order_value.get(po, 0.0) * sets.min_order_value.get(po, 0.0)
            - paid[po],
        )
        for po in set(paid) | set(prices.order_value)
    )
    budget = sum(price * sets.budget[t] for t, price in prices.budget.items() if t in sets.budget)
    capacity = sum(
        price * sets.supplier_capacity[key]
        for key, price in prices.capacity.items()
        if key in sets.supplier_capacity
    )
    return orders - budget - capacity


def lagrangian_bound(
    problem: ProblemData,
    sets: ModelSets | None,
    prices: Prices,
    groups: Sequence[Sequence[str]],
    runner: GroupRunner,
    settings: SolverSettings,
    time_limit: float,
    deadline: float = math.inf,
    min_time_limit: float = MIN_GROUP_TIME_LIMIT,
    relaxed: bool = False,
) -> LagrangianBound:
    """Solve the groups' priced sub-problems on ``runner`` (LPs by :func:`solve_groups`, MILPs by
    :func:`solve_in_batches`) and add up the bound. ``relaxed`` solves only their LP relaxations,
    whose optima are lower bounds on theirs: a weaker bound, and no plans, in a fraction of the time.
    Where the groups' MILPs are solved, a group whose MILP was not reached by ``deadline`` or proved
    nothing counts its LP relaxation's optimum instead, solved within ``LP_FILL_IN_SECONDS`` after the
    deadline (on M, seed 1, two of 50 groups not reached, counted 0, once took the bound from 1.75 M
    to 1.18 M); a group without either counts 0.

    ``sets`` are the whole model's, for the master terms; ``None`` where the model is too large to build
    whole, which only ``lane_share`` prices allow (their master terms are 0)."""
    if prices.order_share and prices.lane_share:
        raise ValueError("prices have shares by order and by lane: their master terms are not known")
    if sets is None and (prices.order_share or prices.budget or prices.capacity or prices.order_value):
        raise ValueError("prices on the coupling rows need the whole model's sets for the master terms")

    def task(group: Sequence[str], limit: float) -> GroupTask:
        build = partial(priced_group_sets, members=tuple(group), prices=prices.for_group(group))
        return GroupTask(tuple(group), build, None, settings, limit, relaxed=relaxed)

    if relaxed:
        results = solve_groups(
            runner, groups, task, time_limit, deadline, min_time_limit, ahead_per_slot=GROUPS_AHEAD_PER_SLOT
        )
    else:
        results = solve_in_batches(runner, groups, task, time_limit, deadline, min_time_limit)
    group_bounds = {
        result.members: max(result.bound, 0.0)
        for result in results
        if result.bound is not None and math.isfinite(result.bound)
    }
    filled = 0
    unproven = [group for group in groups if tuple(group) not in group_bounds]
    if unproven and not relaxed:
        lp_task = partial(_relaxed_task, task)
        fill_deadline = max(deadline, time.perf_counter()) + LP_FILL_IN_SECONDS
        lp_results = solve_groups(
            runner,
            unproven,
            lp_task,
            time_limit,
            fill_deadline,
            min_time_limit,
            ahead_per_slot=GROUPS_AHEAD_PER_SLOT,
        )
        for result in lp_results:
            if result.bound is not None and math.isfinite(result.bound):
                group_bounds[result.members] = max(result.bound, 0.0)
                filled += 1
    total = master_terms(sets, prices) if sets is not None else 0.0
    total += sum(group_bounds.values())
    solved = len(group_bounds)
    orders, transfers, planned = _plans(results)
    size = [sum(result.size[k] for result in results) for k in range(3)]
    return LagrangianBound(
        bound=total,
        solved_groups=solved,
        groups=len(groups),
        lp_groups=filled,
        orders=orders,
        transfers=transfers,
        build_seconds=sum(result.build_seconds for result in results),
        solve_seconds=sum(result.solve_seconds for result in results),
        size=(size[0], size[1], size[2]),
        planned_skus=planned,
        use={result.members: result.use for result in results if result.use is not None},
        group_bounds=group_bounds,
    )


def batch_size(runner: GroupRunner) -> int:
    """How many groups :func:`solve_in_batches` hands ``runner`` at once: four per slot."""
    return max(runner.slots, 1) * 4


class _GroupClock:
    """The time limits and the stop rule of :func:`solve_in_batches` and :func:`solve_groups`, from what
    the groups solved so far took.

    Each group gets at most ``time_limit`` seconds, less where the groups left would not all be solved
    by the deadline otherwise (the time left shared out over them, less the median build time), never
    less than ``min_time_limit``; HiGHS may overrun a short limit (its root node is not interrupted),
    so the limits are scaled by how far the solves overran theirs. The groups left would not all be
    solved in time once, at the median cost of a group at the shortest limit, they would end past the
    deadline. Medians, not means: a worker's first group also pays its one-off start (its index of the
    problem's rows, imports), which on XL is many groups' worth and must not be charged to every group.
    They are renewed once per ``slots`` results (for thousands of groups, one median per group would
    cost seconds of the main process)."""

    def __init__(self, slots: int, time_limit: float, deadline: float, min_time_limit: float) -> None:
        self.slots = max(slots, 1)
        self.time_limit = time_limit
        self.deadline = deadline
        self.min_time_limit = min_time_limit
        self.builds: list[float] = []
        self.shortest: list[float] = []  # build plus solve up to the shortest limit, per group
        self.limits = 0.0  # the time limits of the groups solved, summed
        self.solves = 0.0  # their solve seconds, summed
        self.medians: tuple[int, float, float] = (0, 0.0, 0.0)  # of (groups, builds, shortest)

    @property
    def solved(self) -> int:
        return len(self.builds)

    def add(self, result: GroupResult, limit: float) -> None:
        """Count ``result``, whose group was given ``limit`` seconds."""
        self.builds.append(result.build_seconds)
        self.shortest.append(result.build_seconds + min(result.solve_seconds, self.min_time_limit))
        self.limits += limit
        self.solves += result.solve_seconds

    def _renewed(self) -> tuple[int, float, float]:
        if self.medians[0] == 0 or self.solved - self.medians[0] >= self.slots:
            self.medians = (self.solved, statistics.median(self.builds), statistics.median(self.shortest))
        return self.medians

    def limit(self, now: float, left: int) -> float:
        """The time limit of the next group, with ``left`` groups (it among them) still to be solved."""
        if not math.isfinite(self.deadline):
            return max(self.time_limit, self.min_time_limit)
        if not self.solved:
            return max(min(self.time_limit, (self.deadline - now) * self.slots / left), self.min_time_limit)
        _, overhead, _ = self._renewed()
        overrun = max(self.solves / self.limits, 1.0) if self.limits > 0 else 1.0
        limit = min(self.time_limit, ((self.deadline - now) * self.slots / left - overhead) / overrun)
        return max(limit, self.min_time_limit)

    def out_of_time(self, now: float, left: int, sample: int = 1) -> bool:
        """Whether the ``left`` groups would not all be solved by the deadline (judged once ``sample``
        groups are solved)."""
        if not math.isfinite(self.deadline) or self.solved < max(sample, 1):
            return False
        _, _, shortest = self._renewed()
        return now + left * shortest / self.slots > self.deadline


def solve_in_batches(
    runner: GroupRunner,
    groups: Sequence[Sequence[str]],
    task: Callable[[Sequence[str], float], GroupTask],
    time_limit: float,
    deadline: float = math.inf,
    min_time_limit: float = MIN_GROUP_TIME_LIMIT,
    on_result: Callable[[GroupResult], None] | None = None,
) -> list[GroupResult]:
    """Solve ``task(group, limit)`` for every group on ``runner``, in batches of :func:`batch_size`,
    until ``deadline`` (a ``time.perf_counter()`` value); ``on_result`` sees each result before the
    next batch's tasks are made. For MILPs, whose phase ends at its deadline whatever their number:
    handed out as slots free up (:func:`solve_groups`), M's 50 Lagrangian groups proved a bound about
    3 k lower (1,929,220 and 1,929,059 against 1,931,912 and 1,932,101 in runs of the same hour).

    The time limits, and when it stops early, are :class:`_GroupClock`'s, judged at each batch. The
    workers build the sub-problems (:class:`GroupTask`)."""
    results: list[GroupResult] = []
    clock = _GroupClock(runner.slots, time_limit, deadline, min_time_limit)
    started = reported = time.perf_counter()
    batch = batch_size(runner)
    for first in range(0, len(groups), batch):
        now = time.perf_counter()
        if now >= deadline:
            break
        if clock.out_of_time(now, len(groups) - first):
            logger.info("%d of %d groups would not be solved in time; stopped", first, len(groups))
            break
        limit = clock.limit(now, len(groups) - first)
        tasks = [task(group, limit) for group in groups[first : first + batch]]
        solved = runner.solve(tasks)
        for made, result in zip(tasks, solved, strict=True):
            if on_result is not None:
                on_result(result)
            clock.add(result, made.time_limit)
        results.extend(solved)
        if time.perf_counter() >= reported + PROGRESS_INTERVAL:
            reported = time.perf_counter()
            logger.info("%d of %d groups solved, %.0f s", len(results), len(groups), reported - started)
    return results


def groups_in_flight(runner: GroupRunner, ahead_per_slot: int = GROUPS_AHEAD_PER_SLOT) -> int:
    """How many groups :func:`solve_groups` has out on ``runner`` at once: one solving on each slot and
    ``ahead_per_slot`` more queued for it."""
    return max(runner.slots, 1) * (1 + ahead_per_slot)


def solve_groups(
    runner: GroupRunner,
    groups: Sequence[Sequence[str]],
    task: Callable[[Sequence[str], float], GroupTask],
    time_limit: float,
    deadline: float = math.inf,
    min_time_limit: float = MIN_GROUP_TIME_LIMIT,
    on_result: Callable[[GroupResult], None] | None = None,
    ahead_per_slot: int = 0,
) -> list[GroupResult]:
    """Solve ``task(group, limit)`` for the groups on ``runner``, in their order, each handed out as
    soon as a slot is free (:meth:`~.decompose.GroupRunner.solve_as_ready`, with ``ahead_per_slot``
    more queued per slot: ``GROUPS_AHEAD_PER_SLOT`` suits LPs of a tenth of a second, whose round trip
    would leave a slot idle, not MILPs of seconds, which would still run when the deadline comes),
    until ``deadline`` (a ``time.perf_counter()`` value); ``on_result`` sees each result, in the order
    they finish, before the next task is made. The results come back in the groups' order; they are
    those of a first part of ``groups``.

    The LPs of the Lagrangian bound and of the fair shares went in batches of four per slot
    (:func:`solve_in_batches`), each batch waiting for its slowest group, until 2026-12-06: on 400 of
    XL's groups and two workers, 94 s where this takes 33–40 s, with the same bound.

    The time limits, and when it stops early, are :class:`_GroupClock`'s, the groups out now counted
    among those still to be solved; whether the groups left fit is judged once
    ``STOP_SAMPLE_PER_SLOT`` groups per slot are solved. The workers build the sub-problems
    (:class:`GroupTask`)."""
    results: list[GroupResult] = []
    clock = _GroupClock(runner.slots, time_limit, deadline, min_time_limit)
    given: dict[tuple[str, ...], float] = {}  # the time limit each group was given
    handed = 0
    stopped = False
    started = reported = time.perf_counter()

    def next_task() -> GroupTask | None:
        nonlocal handed, stopped
        now = time.perf_counter()
        if stopped or handed >= len(groups) or now >= deadline:
            return None
        left = len(groups) - len(results)  # the groups out now are still to be solved too
        if clock.out_of_time(now, left, clock.slots * STOP_SAMPLE_PER_SLOT):
            logger.info("%d of %d groups would not be solved in time; stopped", handed, len(groups))
            stopped = True
            return None
        made = task(groups[handed], clock.limit(now, left))
        handed += 1
        given[made.members] = made.time_limit
        return made

    for result in runner.solve_as_ready(next_task, ahead=clock.slots * ahead_per_slot):
        if on_result is not None:
            on_result(result)
        results.append(result)
        clock.add(result, given.get(result.members, 0.0))
        if time.perf_counter() >= reported + PROGRESS_INTERVAL:
            reported = time.perf_counter()
            logger.info("%d of %d groups solved, %.0f s", len(results), len(groups), reported - started)
    position = {tuple(group): n for n, group in enumerate(groups)}
    return sorted(results, key=lambda result: position.get(result.members, len(groups)))


def _plans(results: Sequence[GroupResult]) -> tuple[pd.DataFrame, pd.DataFrame, frozenset[str]]:
    """The groups' plans together, and the SKUs they cover."""
    orders = [r.orders for r in results if r.orders is not None and r.transfers is not None]
    transfers = [r.transfers for r in results if r.orders is not None and r.transfers is not None]
    planned = frozenset(sku for r in results if r.orders is not None for sku in r.members)
    empty_orders, empty_transfers = empty_plan()
    return (
        pd.concat(orders, ignore_index=True) if orders else empty_orders,
        pd.concat(transfers, ignore_index=True) if transfers else empty_transfers,
        planned,
    )


@dataclass(frozen=True)
class LimitShares:
    """Each SKU's share of the shared limits, for plans of SKU groups that fit together
    (:func:`fair_share_group_sets`): of the budget by demand value, of a supplier's capacity by the
    demanded units among the SKUs it offers, of a warehouse's storage by demanded volume there."""

    value: dict[str, float]
    units: dict[tuple[str, str], float]
    """(supplier, sku) → share."""
    volume: dict[tuple[str, str], float]
    """(warehouse, sku) → share."""

    def for_group(self, members: Collection[str]) -> GroupShares:
        """The shares of a group: its SKUs' shares added up, the same in every period."""
        own = sorted(set(members))
        capacity: dict[str, float] = defaultdict(float)
        storage: dict[str, float] = defaultdict(float)
        for sku in own:
            by_supplier, by_warehouse = self._by_sku.get(sku, ([], []))
            for supplier, share in by_supplier:
                capacity[supplier] += share
            for warehouse, share in by_warehouse:
                storage[warehouse] += share
        return GroupShares(sum(self.value.get(sku, 0.0) for sku in own), dict(capacity), dict(storage))

    @cached_property
    def _by_sku(self) -> dict[str, tuple[list[tuple[str, float]], list[tuple[str, float]]]]:
        """Each SKU's (supplier, share) and (warehouse, share) pairs: a group's shares are looked up, not
        searched for among every SKU's (which took XL's 5,000 groups 87 s in the main process)."""
        by_sku: dict[str, tuple[list[tuple[str, float]], list[tuple[str, float]]]] = {}
        for (supplier, sku), share in self.units.items():
            by_sku.setdefault(sku, ([], []))[0].append((supplier, share))
        for (warehouse, sku), share in self.volume.items():
            by_sku.setdefault(sku, ([], []))[1].append((warehouse, share))
        return by_sku


@dataclass(frozen=True)
class GroupShares:
    """One group's share of every shared limit: ``budget`` of each period's budget, ``capacity[s]`` of
    supplier s's capacity and ``storage[w]`` of warehouse w's storage in every period, except where
    ``by_key`` gives the share of one period's limit: ``("budget", t)``, ``("capacity", s, t)``,
    ``("storage", w, t)``."""

    budget: float
    capacity: dict[str, float]
    storage: dict[str, float]
    by_key: dict[tuple[Any, ...], float] = field(default_factory=dict)

    def of(self, key: tuple[Any, ...]) -> float:
        """The share of the limit ``key``: ``("budget", t)``, ``("capacity", s, t)`` or
        ``("storage", w, t)``."""
        if key in self.by_key:
            return self.by_key[key]
        if key[0] == "budget":
            return self.budget
        return (self.capacity if key[0] == "capacity" else self.storage).get(key[1], 0.0)

    def of_budget(self, period: int) -> float:
        return self.of(("budget", period))

    def of_capacity(self, supplier: str, period: int) -> float:
        return self.of(("capacity", supplier, period))

    def of_storage(self, warehouse: str, period: int) -> float:
        return self.of(("storage", warehouse, period))


def limit_shares(problem: ProblemData) -> LimitShares:
    """Every SKU's :class:`LimitShares`, from its demand over the horizon; each kind sums to 1 (over the
    SKUs of a supplier, of a warehouse)."""
    demand = problem.demand[problem.demand > 0]
    units = demand.groupby(level="sku").sum()
    price = problem.offers["unit_price"].groupby(level="sku").min()
    value = (units * price.reindex(units.index).fillna(0.0)).astype(float)
    total_value = float(value.sum())
    by_value = {str(k): float(v) / total_value for k, v in value.items()} if total_value > 0 else {}
    offered = problem.offers.reset_index()[["supplier", "sku"]]
    offered = offered[offered["sku"].isin(units.index)]
    offered = offered.assign(units=offered["sku"].map(units).astype(float))
    per_supplier = offered.groupby("supplier")["units"].transform("sum")
    by_units = {
        (str(supplier), str(sku)): float(own) / float(total)
        for supplier, sku, own, total in zip(
            offered["supplier"],
            offered["sku"],
            offered["units"].to_numpy(),
            per_supplier.to_numpy(),
            strict=True,
        )
        if total > 0
    }
    volume = demand.groupby(level=["sku", "warehouse"]).sum()
    unit_volume = problem.skus["unit_volume"]
    volume = volume * unit_volume.reindex(volume.index.get_level_values("sku")).to_numpy()
    per_warehouse = volume.groupby(level="warehouse").transform("sum")
    by_volume = {
        (str(w), str(i)): float(v) / float(total)
        for (i, w), v, total in zip(volume.index, volume.to_numpy(), per_warehouse.to_numpy(), strict=True)
        if total > 0
    }
    return LimitShares(by_value, by_units, by_volume)


def group_shares(
    problem: ProblemData,
    shares: LimitShares,
    groups: Sequence[Sequence[str]],
    used: Mapping[tuple[str, ...], LimitUse],
    unshared: Collection[str] = (),
) -> list[GroupShares]:
    """Every group's share of every shared limit, from what the groups' LP relaxations use of them
    (``used``; :class:`~.decompose.LimitUse`) where known, else from demand (:class:`LimitShares`).
    The slack of the kinds of limit in ``unshared`` (``"budget"``, ``"capacity"``, ``"storage"``) is
    not shared out (:class:`ShareLedger` hands it out instead).

    Demand shares strand capacity: a SKU offered by three suppliers holds a share of each though it
    buys from one. So for each limit C of one period, the groups whose use u_g is known share what the
    others' demand shares leave, m·C: where their uses add up to U ≥ m·C each gets m·u_g/U of C (its
    use scaled down to fit); otherwise each gets u_g/C (its whole use) plus its part, by demand, of
    the slack (m·C − U)/C. The shares of one limit add up to at most 1, so plans solved apart within
    them fit together."""
    base = [shares.for_group(group) for group in groups]
    known = [n for n, group in enumerate(groups) if tuple(group) in used]
    if not known:
        return base
    limits = shared_limits(problem)
    use = {n: _use_by_key(used[tuple(groups[n])]) for n in known}
    by_key: dict[int, dict[tuple[Any, ...], float]] = {n: {} for n in known}
    unknown = [n for n in range(len(groups)) if tuple(groups[n]) not in used]
    for key, limit in limits.items():
        total = sum(use[n].get(key, 0.0) for n in known)
        if limit <= 0 or total <= 0:
            continue  # demand shares
        left = max(1.0 - sum(base[n].of(key) for n in unknown), 0.0)
        demand_known = sum(base[n].of(key) for n in known)
        for n in known:
            own = use[n].get(key, 0.0)
            if total >= left * limit:
                by_key[n][key] = left * own / total
            elif key[0] in unshared:
                by_key[n][key] = own / limit
            else:
                weight = base[n].of(key) / demand_known if demand_known > 0 else 1.0 / len(known)
                by_key[n][key] = own / limit + (left - total / limit) * weight
    return [replace(base[n], by_key=by_key[n]) if n in by_key else base[n] for n in range(len(groups))]


def shared_limits(problem: ProblemData) -> dict[tuple[Any, ...], float]:
    """Every shared limit of one period: ``("budget", t)``, ``("capacity", s, t)`` and
    ``("storage", w, t)`` → its amount (limits that are not set are left out)."""
    limits: dict[tuple[Any, ...], float] = {}
    for t, amount in zip(problem.budget.index.tolist(), problem.budget.tolist(), strict=True):
        limits[("budget", int(t))] = float(amount)
    for supplier in problem.suppliers.index:
        for t in range(problem.periods):
            capacity = problem.supplier_capacity_in(str(supplier), t)
            if not math.isnan(capacity):
                limits[("capacity", str(supplier), t)] = capacity
    for warehouse, capacity in problem.warehouses["capacity"].items():
        if not math.isnan(float(capacity)):
            for t in range(problem.periods):
                limits[("storage", str(warehouse), t)] = float(capacity)
    return limits


class ShareLedger:
    """The budget and the supplier capacities handed out to the groups as they are solved, so that each
    group can place whole orders (MOQs, packs) where its promised share — what its LP relaxation used,
    :func:`group_shares` — holds only a fraction of one.

    A group handed out gets its promise plus an equal part, among the ``batch`` groups that can be out
    at once (:func:`batch_size`, as many as :func:`groups_in_flight`) less those out now, of what is
    *free*: the limit less what the groups already solved have ordered (their orders' units, and their
    value at list prices, which price breaks only lower), less what the groups out now were granted,
    less the promises of the groups not yet handed out. So every group gets at least its promise while
    the limit allows, and the commitments and grants together never exceed the limit: the plans,
    solved apart, still fit together. Storage keeps the promised shares (what a plan stores is known
    only after re-simulating it). Where the groups are handed out as slots free up
    (:func:`solve_groups`), they finish in an order that depends on the workers' timing, so what is
    free for a group, and with it the plan, may differ from run to run."""

    KINDS = ("budget", "capacity")
    """The kinds of limit handed out here."""

    def __init__(
        self,
        problem: ProblemData,
        groups: Sequence[Sequence[str]],
        promised: Sequence[GroupShares],
        batch: int,
    ) -> None:
        self.limits = {
            key: amount
            for key, amount in shared_limits(problem).items()
            if key[0] in self.KINDS and amount > 0
        }
        self.promise = {tuple(group): share for group, share in zip(groups, promised, strict=True)}
        self.unhanded: dict[tuple[Any, ...], float] = {
            key: sum(share.of(key) for share in promised) * amount for key, amount in self.limits.items()
        }
        self.committed: dict[tuple[Any, ...], float] = defaultdict(float)
        self.granted: dict[tuple[Any, ...], float] = defaultdict(float)
        self.out: dict[tuple[str, ...], dict[tuple[Any, ...], float]] = {}
        self.batch = max(batch, 1)
        self.groups_left = len(groups)
        offers = problem.offers.reset_index()
        self.list_price = {
            (str(s), str(i)): float(p)
            for s, i, p in zip(offers["supplier"], offers["sku"], offers["unit_price"], strict=True)
        }

    def grant(self, group: Sequence[str]) -> GroupShares:
        """The shares group ``group`` plans under (it is out until :meth:`record`)."""
        members = tuple(group)
        promise = self.promise[members]
        among = max(min(self.batch - len(self.out), self.groups_left), 1)
        self.groups_left -= 1
        grants: dict[tuple[Any, ...], float] = {}
        for key, amount in self.limits.items():
            own = promise.of(key) * amount
            self.unhanded[key] -= own
            free = amount - self.committed[key] - self.granted[key] - max(self.unhanded[key], 0.0)
            grants[key] = own + (free - own) / among if free > own else max(free, 0.0)
            self.granted[key] += grants[key]
        self.out[members] = grants
        return replace(
            promise,
            by_key={**promise.by_key, **{key: g / self.limits[key] for key, g in grants.items()}},
        )

    def record(self, result: GroupResult) -> None:
        """Replace what group ``result.members`` was granted by what its plan orders."""
        for key, amount in self.out.pop(result.members, {}).items():
            self.granted[key] -= amount
        orders = result.orders
        if orders is None or not len(orders):
            return
        for supplier, sku, period, quantity in zip(
            orders["supplier"].tolist(),
            orders["sku"].tolist(),
            orders["order_period"].tolist(),
            orders["quantity"].tolist(),
            strict=True,
        ):
            self.committed[("capacity", str(supplier), int(period))] += quantity
            self.committed[("budget", int(period))] += quantity * self.list_price[(str(supplier), str(sku))]


def _use_by_key(use: LimitUse) -> dict[tuple[Any, ...], float]:
    keyed: dict[tuple[Any, ...], float] = {("budget", t): v for t, v in use.spend.items()}
    keyed.update({("capacity", s, t): v for (s, t), v in use.units.items()})
    keyed.update({("storage", w, t): v for (w, t), v in use.volume.items()})
    return keyed


def fair_share_group_sets(
    problem: ProblemData, members: Sequence[str], prices: Prices, shares: GroupShares
) -> ModelSets:
    """The sets of a group's *plan* sub-problem: its order costs priced like the bound's
    (:func:`priced_group_sets`), but every shared limit cut to the group's share (:class:`GroupShares`)
    and every minimum order value kept in full. The shares of all groups add up to at most each limit,
    so the groups' plans, solved side by side and independently, fit together (storage only nearly: a
    group keeps room for its own stock on hand and open orders; the repair step settles the rest).
    Unlike the bound's, this is a restriction, not a relaxation: its optimum bounds nothing."""
    sets = priced_group_sets(problem, members, prices)
    minimum_items = problem.suppliers["min_order_value"].fillna(0.0).items()
    minimum = {str(supplier): float(value) for supplier, value in minimum_items}
    for po in sets.purchase_orders:
        sets.min_order_value[po] = minimum[po[0]]
    for t in sets.budget:
        sets.budget[t] *= shares.of_budget(t)
    for supplier, t in sets.supplier_capacity:
        sets.supplier_capacity[(supplier, t)] *= shares.of_capacity(supplier, t)
    fixed: dict[str, float] = defaultdict(float)  # volume of the group's own stock and open orders
    unit_volume = problem.skus["unit_volume"]
    for (sku, warehouse), units in sets.on_hand.items():
        fixed[warehouse] += units * float(unit_volume[sku])
    for (sku, warehouse, _), units in sets.receipts.items():
        fixed[warehouse] += units * float(unit_volume[sku])
    for (warehouse, t), limit in sets.storage_capacity.items():
        share = shares.of_storage(warehouse, t)
        sets.storage_capacity[(warehouse, t)] = min(limit, max(share * limit, fixed[warehouse]))
    return sets


def fair_share_plans(
    problem: ProblemData,
    prices: Prices,
    shares: LimitShares,
    groups: Sequence[Sequence[str]],
    runner: GroupRunner,
    settings: SolverSettings,
    time_limit: float,
    deadline: float = math.inf,
    rest_deadline: float = math.inf,
    used: Mapping[tuple[str, ...], LimitUse] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, frozenset[str], list[GroupResult]]:
    """Every group's plan from its :func:`fair_share_group_sets` sub-problem, solved independently on
    ``runner``: the plans together, the SKUs they cover, and the results. The groups' shares come from
    ``used`` where given (:func:`group_shares`), else from demand. Groups whose MILP is not reached by
    ``deadline`` get their LP relaxation rounded instead (``GroupTask.rounded``), until
    ``rest_deadline``."""
    promised = group_shares(problem, shares, groups, used or {}, unshared=ShareLedger.KINDS)
    ledger = ShareLedger(problem, groups, promised, batch_size(runner))

    def task(group: Sequence[str], limit: float, rounded: bool = False) -> GroupTask:
        build = partial(
            fair_share_group_sets,
            members=tuple(group),
            prices=prices.for_group(group),
            shares=ledger.grant(group),
        )
        return GroupTask(tuple(group), build, None, settings, limit, rounded=rounded)

    results = solve_in_batches(runner, groups, task, time_limit, deadline, on_result=ledger.record)
    left = groups[len(results) :]
    if left:
        logger.info("%d groups left without time for their MILP: their LP relaxations rounded", len(left))
        results += solve_groups(
            runner,
            left,
            partial(task, rounded=True),
            time_limit,
            rest_deadline,
            min_time_limit=0.0,
            on_result=ledger.record,
            ahead_per_slot=GROUPS_AHEAD_PER_SLOT,
        )
    orders, transfers, planned = _plans(results)
    return orders, transfers, planned, results


def link_rows(model: object) -> dict[tuple, object]:
    """The Pyomo constraints of :data:`ROW_FAMILIES`, keyed (constraint name, *index)."""
    rows: dict[tuple, object] = {}
    for family in ROW_FAMILIES:
        for key, con in getattr(model, family).items():
            rows[(family, *(key if isinstance(key, tuple) else (key,)))] = con
    return rows
