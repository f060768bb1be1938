"""Fix-and-optimize over SKU groups, with the group sub-problems solved in parallel on Dask workers.

SKUs interact only through purchase orders (fixed cost, minimum order value), supplier capacity,
budget and storage. A *group sub-problem* is the exact model of a few SKUs with the rest of the
incumbent plan fixed (:func:`group_sets`): what the other SKUs use is taken off the shared limits,
and purchase orders they already place are paid for.

Several groups are solved at once, each against the incumbent of when it was given to a worker
(:meth:`GroupRunner.solve_as_ready`: a worker that finishes gets the next group at once). So that their
new plans fit together, each of k groups solved or waiting to be merged at once gets its own current
use of every shared limit plus 1/k of the limit's slack (*slack splitting*): any combination of the
plans of groups given out against the same incumbent then respects supplier capacity, budget and
storage. What slack splitting cannot share out — a minimum order value that two groups both stop
contributing to, a sourcing share, slack that a plan merged meanwhile took — is caught by the *repair
step*: each group's plan is merged into the incumbent one at a time, re-simulated by
:func:`evaluate_plan`, and kept only if the merged plan is valid and cheaper. The incumbent is therefore
always a valid plan.

Where the sub-problems run is a :class:`GroupRunner`: in this process, one after the other
(:class:`InProcessRunner`), or on the workers of a Dask cluster (:class:`DaskRunner`) — a local cluster
of one single-threaded worker process per solver thread by default, or the cluster of a running
scheduler (``solver.scheduler`` / ``optistock run --scheduler ADDRESS``). Each worker solves with one
HiGHS thread; the problem data is sent to every worker once.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap

from optistock.backend import arrays
from optistock.backend.heuristics import round_lp_plan, start_values
from optistock.backend.model import build_model
from optistock.backend.sets import ModelSets, PlanTotals, build_sets, restrict_to_residual
from optistock.backend.solve import HighsOptions, HighsSession, SolveStatus
from optistock.errors import InputError
from optistock.postprocess.extract import empty_plan, extract_plan
from optistock.postprocess.simulate import PlanEvaluation
from optistock.preprocess.data import ProblemData
from optistock.preprocess.scenario import SolverSettings

logger = logging.getLogger(__name__)

LP_FALLBACK_TIME_LIMIT = 5.0
"""Seconds for a group's LP relaxation when its MILP found no plan in time (it takes milliseconds)."""
SCHEDULER_TIMEOUT = "10s"
"""How long to wait for the Dask scheduler given by ``solver.scheduler`` to answer."""
FIX_AND_OPTIMIZE_HIGHS_OPTIONS: HighsOptions = {"mip_allow_restart": False}
"""HiGHS options of fix-and-optimize's sub-problems (a group's MILP from a start, whole or
:func:`solve_by_warehouse`'s steps). They are small after presolve (about 300 rows and columns for one
SKU of L by warehouse, 300-700 variables for one SKU of M), and HiGHS's restart (a second presolve once
enough integer columns are fixed at the root) costs time without finding more. Ad hoc script, each SKU
solved with and without the restart in turn in one process, samples of the dearest SKUs:

- L's plan after 160 s (seed 0), by warehouse, 30 s each at a gap of 1 %, two samples of 24: 55.3 s
  against 62.5 s (55,310 simplex iterations against 81,926) and 24.4 s against 27.1 s (34,694 against
  37,582), for gains of 42.9 k and 24.2 k either way (the plans without the restart 19 and 89 cheaper
  in all);
- M's 60 s plan (seed 0), each SKU whole with free transfers (as from the second cycle on), 10 s each
  at a gap of 0.25 %, 16 SKUs: 22.9 s against 33.3 s (100,535 simplex iterations against 121,909),
  gains 1,711 against 1,714; another 16: 4.8 s against 5.6 s (2,619 against 3,364), gains 512
  against 495."""


@dataclass(frozen=True)
class GroupTask:
    """Everything a worker needs to solve one group sub-problem (the problem data is sent apart)."""

    members: tuple[str, ...]
    sets: ModelSets | Callable[[ProblemData], ModelSets]
    """The sub-problem's sets, or how the worker builds them from the problem data (a picklable
    callable, e.g. a ``functools.partial`` of a module-level function): then the builds run in
    parallel on the workers instead of one after the other here."""
    start: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame | None] | None
    """The incumbent's orders, transfers, inventory and channels of the group's SKUs (the MIP start);
    ``None`` for none (the Lagrangian sub-problems)."""
    settings: SolverSettings
    time_limit: float
    relaxed: bool = False
    """Solve only the LP relaxation: its optimum is the result's bound, and there is no plan."""
    rounded: bool = False
    """Solve only the LP relaxation and round it into the plan (no MILP, no bound): the quick plan of a
    group left without time for its MILP (:func:`round_lp_quantities`; not yet checked against the shared
    limits)."""
    by_warehouse: bool = False
    """Keep the start's transfers and decide the order lines of one warehouse at a time, the other
    warehouses' kept as they are then (ignored without a ``start``; :func:`solve_by_warehouse`)."""


@dataclass(frozen=True)
class LimitUse:
    """What a group's solution uses of the shared limits (``models/core.md`` §4: supplier capacity,
    budget, storage): the inputs of the limit shares of :func:`~.lagrangian.group_shares`."""

    units: dict[tuple[str, int], float] = field(default_factory=dict)
    """(supplier, order period) → units ordered (supplier capacity)."""
    spend: dict[int, float] = field(default_factory=dict)
    """Order period → value ordered at list prices (budget; price breaks only lower it)."""
    volume: dict[tuple[str, int], float] = field(default_factory=dict)
    """(warehouse, period) → volume of the end stock (storage)."""


def lp_limit_use(
    problem: ProblemData, sets: ModelSets, model: arrays.ArrayModel, values: np.ndarray
) -> LimitUse:
    """The shared limits used by the solution ``values`` of a group's array model (e.g. its LP
    relaxation's, fractional quantities and all)."""
    line_keys = model["packs"].keys
    quantity = model.values("packs", values) * model.pack_size
    price = np.fromiter((sets.lines[key].unit_price for key in line_keys), float, len(line_keys))
    units: dict[tuple[str, int], float] = defaultdict(float)
    spend: dict[int, float] = defaultdict(float)
    for (supplier, _, _, period), ordered, value in zip(
        line_keys, quantity.tolist(), (quantity * price).tolist(), strict=True
    ):
        if ordered > 0:
            units[(supplier, period)] += ordered
            spend[period] += value
    unit_volume = problem.skus["unit_volume"]
    volume: dict[tuple[str, int], float] = defaultdict(float)
    for (sku, warehouse, period), stock in zip(
        model["stock"].keys, model.values("stock", values).tolist(), strict=True
    ):
        if stock > 0:
            volume[(warehouse, period)] += stock * float(unit_volume[sku])
    return LimitUse(dict(units), dict(spend), dict(volume))


@dataclass(frozen=True)
class GroupResult:
    members: tuple[str, ...]
    orders: pd.DataFrame | None
    """The sub-problem's best plan for the group's SKUs; ``None`` when the solver found none."""
    transfers: pd.DataFrame | None
    build_seconds: float
    solve_seconds: float
    objective: float | None = None
    """The sub-problem's objective of that plan."""
    bound: float | None = None
    """The solver's proven lower bound on the sub-problem's optimum."""
    size: tuple[int, int, int] = (0, 0, 0)
    """Variables, integer variables and constraints of the sub-problem's model."""
    use: LimitUse | None = None
    """What the LP relaxation's solution uses of the shared limits (``relaxed`` tasks of models built
    from arrays only)."""


def solve_group(problem: ProblemData, task: GroupTask) -> GroupResult:
    """Build and solve one group sub-problem (runs on a worker); its plan for the group's SKUs."""
    started = time.perf_counter()
    sets = task.sets if isinstance(task.sets, ModelSets) else task.sets(problem)
    if task.start is None and arrays.supports(problem, sets):
        return _solve_group_from_arrays(problem, task, sets, started)
    model = build_model(problem, sets)
    if model.nvariables() == 0:  # nothing to decide and nothing to pay
        orders, transfers = extract_plan(model)
        return GroupResult(
            task.members, orders, transfers, time.perf_counter() - started, 0.0, objective=0.0, bound=0.0
        )
    size = (
        model.nvariables(),
        sum(1 for var in model.component_data_objects(pyo.Var) if not var.is_continuous()),
        model.nconstraints(),
    )
    start = start_values(model, sets, *task.start) if task.start is not None else None
    if start is not None and task.by_warehouse:
        return solve_by_warehouse(task, model, start, started, size)
    session = HighsSession(model)
    if task.relaxed:
        built = time.perf_counter()
        relaxation = session.relaxation({}, task.time_limit, task.settings.threads)
        return GroupResult(
            task.members,
            None,
            None,
            built - started,
            time.perf_counter() - built,
            bound=relaxation.objective,
            size=size,
        )
    if task.rounded:
        built = time.perf_counter()
        wanted: dict[tuple[Any, ...], pyo.Var] = {("packs", *k): v for k, v in model.packs.items()}
        wanted.update({("transfer", *k): v for k, v in model.transfer.items()})
        relaxation = session.relaxation(wanted, LP_FALLBACK_TIME_LIMIT, task.settings.threads)
        plan = None
        if relaxation.objective is not None:
            packs = {key[1:]: value for key, value in relaxation.values.items() if key[0] == "packs"}
            moved = {key[1:]: value for key, value in relaxation.values.items() if key[0] == "transfer"}
            plan = round_lp_plan(problem, sets, packs, moved)
        return GroupResult(
            task.members,
            plan[0] if plan is not None else None,
            plan[1] if plan is not None else None,
            built - started,
            time.perf_counter() - built,
            size=size,
        )
    if start is not None:
        session.set_start(start)
    built = time.perf_counter()
    result = session.solve(
        task.settings,
        time_limit=task.time_limit,
        options=FIX_AND_OPTIMIZE_HIGHS_OPTIONS if start is not None else None,
    )
    solved = time.perf_counter()
    if result.objective is None:
        return GroupResult(
            task.members, None, None, built - started, solved - built, bound=result.best_bound, size=size
        )
    orders, transfers = extract_plan(model)
    return GroupResult(
        task.members,
        orders,
        transfers,
        built - started,
        solved - built,
        objective=result.objective,
        bound=result.best_bound,
        size=size,
    )


def order_variables_by_warehouse(model: pyo.ConcreteModel) -> dict[str, list[pyo.Var]]:
    """The integer variables that decide the order lines of each warehouse: the lines' packs, MOQ and
    price segment binaries (indexed by line (s, i, w, t[, k])) and the purchase orders (s, w, t). With
    these kept, a segment's quantity is the line's (``price_segment_quantity``); it is left free, so
    that a solution's rounding error in it cannot make the next step infeasible."""
    found: dict[str, list[pyo.Var]] = defaultdict(list)
    for component, position in (
        (model.packs, 2),
        (model.line_active, 2),
        (model.segment_active, 2),
        (model.po_open, 1),
    ):
        for key, var in component.items():
            found[str(key[position])].append(var)
    return dict(sorted(found.items()))


def solve_by_warehouse(
    task: GroupTask, model: pyo.ConcreteModel, start: ComponentMap, started: float, size: tuple[int, int, int]
) -> GroupResult:
    """The group's order lines decided one warehouse at a time (``GroupTask.by_warehouse``).

    Each step solves the group's model with its transfers and the other warehouses' order variables
    kept at the plan of the step before (at first the start): a restriction, whose plan is never dearer
    than that plan (HiGHS starts from it). With the transfers kept, a warehouse's lines meet the other
    warehouses' only in the shared budget and supplier capacities, so where those do not bind one pass
    over the warehouses reaches the optimum of the sub-problem with the transfers kept. HiGHS finds that
    far faster in several small steps than at once: on 16 SKUs of an L plan, 30.9 s for a gain of
    21.4 k, where the sub-problem of each SKU with its transfers kept took 280 s for 18.3 k
    (``models/core.md`` §9 step 4). Each step gets an equal share of the time the steps before left.
    The result has no bound: the steps are restrictions."""
    session = HighsSession(model)
    built = time.perf_counter()
    variables = list(model.component_data_objects(pyo.Var, active=True))
    integral = [not var.is_continuous() for var in variables]
    plan = ComponentMap((var, start.get(var, 0.0)) for var in variables)
    for var in variables:
        var.set_value(plan[var], skip_validation=True)
    objective = float(pyo.value(model.total_cost.expr))  # the start's
    by_warehouse = order_variables_by_warehouse(model)
    transfers = list(model.transfer.values())
    deadline = built + task.time_limit
    for step, warehouse in enumerate(by_warehouse):
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        kept = ComponentMap((var, plan[var]) for var in transfers)
        for other, others in by_warehouse.items():
            if other != warehouse:
                kept.update((var, plan[var]) for var in others)
        result = session.solve_variant(
            task.settings,
            left / (len(by_warehouse) - step),
            start=plan,
            kept=kept,
            options=FIX_AND_OPTIMIZE_HIGHS_OPTIONS,
        )
        if result.objective is not None and result.objective < objective:
            objective = result.objective
            for var, whole in zip(variables, integral, strict=True):
                value = float(var.value) if var.value is not None else 0.0
                plan[var] = float(round(value)) if whole else value
    for var in variables:
        var.set_value(plan[var], skip_validation=True)
    orders, transfers_out = extract_plan(model)
    return GroupResult(
        task.members,
        orders,
        transfers_out,
        built - started,
        time.perf_counter() - built,
        objective=objective,
        size=size,
    )


def _solve_group_from_arrays(
    problem: ProblemData, task: GroupTask, sets: ModelSets, started: float
) -> GroupResult:
    """A sub-problem without a start and without extensions, built from arrays (:mod:`.arrays`, the
    same model as Pyomo's, in a fraction of the time) and solved by highspy directly."""
    model = arrays.build_array_model(problem, sets)
    size = (model.num_cols, model.num_integer, model.num_rows)
    built = time.perf_counter()
    if task.rounded:
        rounded = _rounded_lp_plan(problem, model, sets, task.settings.threads)
        orders, transfers = rounded if rounded is not None else (None, None)
        return GroupResult(
            task.members, orders, transfers, built - started, time.perf_counter() - built, size=size
        )
    if task.relaxed:
        status, objective, values = model.solve_lp(task.time_limit, task.settings.threads)
        bound = objective if status is SolveStatus.OPTIMAL else None
        solved = time.perf_counter()
        use = lp_limit_use(problem, sets, model, values) if bound is not None and len(values) else None
        return GroupResult(
            task.members, None, None, built - started, solved - built, bound=bound, size=size, use=use
        )
    result, values = model.solve_milp(
        task.time_limit, task.settings.threads, task.settings.mip_gap, seed=task.settings.seed
    )
    if result.objective is None:  # no plan in time: the LP relaxation's, rounded (repaired when merged)
        rounded = _rounded_lp_plan(problem, model, sets, task.settings.threads)
        solved = time.perf_counter()
        orders, transfers = rounded if rounded is not None else (None, None)
        return GroupResult(
            task.members,
            orders,
            transfers,
            built - started,
            solved - built,
            bound=result.best_bound,
            size=size,
        )
    solved = time.perf_counter()
    orders, transfers = model.plan(values) if len(values) else empty_plan()
    return GroupResult(
        task.members,
        orders,
        transfers,
        built - started,
        solved - built,
        objective=result.objective,
        bound=result.best_bound,
        size=size,
    )


def _rounded_lp_plan(
    problem: ProblemData, model: arrays.ArrayModel, sets: ModelSets, threads: int
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The LP relaxation's quantities rounded into whole lines that respect MOQs and packs, and its
    transfers rounded (:func:`round_lp_plan`); not yet checked against the shared limits."""
    status, _, values = model.solve_lp(LP_FALLBACK_TIME_LIMIT, threads)
    if status is not SolveStatus.OPTIMAL or not len(values):
        return None
    packs = dict(zip(model["packs"].keys, model.values("packs", values).tolist(), strict=True))
    moved = dict(zip(model["transfer"].keys, model.values("transfer", values).tolist(), strict=True))
    return round_lp_plan(problem, sets, packs, moved)


def plan_without(incumbent: PlanEvaluation, members: set[str], inventory: bool = True) -> PlanEvaluation:
    """The incumbent restricted to the SKUs outside ``members`` (without its inventory rows unless
    ``inventory``).

    SKUs are simulated independently of each other, so the rows of the other SKUs are exactly what
    re-simulating their plan alone would give; the shared limits are not checked here.
    """
    rows = incumbent.inventory
    return PlanEvaluation(
        orders=incumbent.orders[~incumbent.orders["sku"].isin(members)],
        purchase_orders=incumbent.purchase_orders.iloc[0:0],
        transfers=incumbent.transfers[~incumbent.transfers["sku"].isin(members)],
        inventory=rows[~rows["sku"].isin(members)] if inventory else rows.iloc[0:0],
        costs={},
    )


def group_sets(
    problem: ProblemData,
    incumbent: PlanEvaluation,
    members: set[str],
    slack_share: float = 1.0,
    totals: PlanTotals | None = None,
    own: PlanTotals | None = None,
) -> ModelSets:
    """The sets of the sub-problem of ``members`` with the rest of ``incumbent`` fixed.

    With ``slack_share`` s < 1 each shared limit (supplier capacity, budget, storage) is cut to the
    group's own current use plus s times the slack the incumbent leaves, so that groups solved side by
    side with shares adding up to at most 1 cannot together exceed the limit. ``totals`` are the
    incumbent's :class:`~.sets.PlanTotals` where the caller has them (several groups of one incumbent):
    the rest's are then those less the group's own, not a pass over the whole plan per group.
    ``own`` are the group's own totals where the caller has them (from :func:`plan_of`).
    """
    sets = build_sets(problem, skus=members, all_stock_sign_cells=True)
    if own is None:
        own_orders, _, own_inventory, _ = plan_of(incumbent, members)
        own = PlanTotals.of(problem, own_orders, own_inventory)
    if totals is None:
        sets = restrict_to_residual(sets, problem, plan_without(incumbent, members))
    else:
        others = plan_without(incumbent, members, inventory=False)
        sets = restrict_to_residual(sets, problem, others, totals.minus(own))
    if slack_share >= 1.0:
        return sets
    _share_slack(sets.supplier_capacity, own.units, slack_share)
    _share_slack(sets.budget, own.spend, slack_share)
    _share_slack(sets.storage_capacity, own.volume, slack_share)
    return sets


def _share_slack(limits: dict[Any, float], used: pd.Series, share: float) -> None:
    """Cut each residual limit to the group's own use plus ``share`` of the slack above it."""
    for key, residual in limits.items():
        own = float(used.get(key, 0.0))
        if residual > own:
            limits[key] = own + share * (residual - own)


class GroupRunner(Protocol):
    """Solves group sub-problems: a batch at once (results in the order of the tasks), or a stream that
    keeps every slot busy."""

    slots: int
    """How many sub-problems it solves at the same time."""

    def solve(self, tasks: Sequence[GroupTask]) -> list[GroupResult]: ...

    def solve_as_ready(
        self, next_task: Callable[[], GroupTask | None], ahead: int = 0
    ) -> Iterator[GroupResult]:
        """Each result as soon as its sub-problem is solved. Whenever a slot is free, ``next_task()``
        gives it the next task (``None``: there is none); after the first ``slots + ahead`` tasks it is
        called only after a result has been handed back, so a task it makes sees what the caller did
        with the results before it (fix-and-optimize: the incumbent they improved). ``ahead`` tasks
        wait queued for a slot, so that a slot does not wait for the round trip of its next task where
        sub-problems take a fraction of a second (the Lagrangian groups' LPs); a runner that solves
        one at a time ignores it."""
        ...


def one_by_one(runner: GroupRunner, next_task: Callable[[], GroupTask | None]) -> Iterator[GroupResult]:
    """:meth:`GroupRunner.solve_as_ready` of a runner that solves one sub-problem at a time."""
    while (task := next_task()) is not None:
        yield from runner.solve([task])


class InProcessRunner:
    """Solves the sub-problems in this process, one after the other."""

    slots = 1

    def __init__(self, problem: ProblemData) -> None:
        self.problem = problem

    def solve(self, tasks: Sequence[GroupTask]) -> list[GroupResult]:
        return [solve_group(self.problem, task) for task in tasks]

    def solve_as_ready(
        self, next_task: Callable[[], GroupTask | None], ahead: int = 0
    ) -> Iterator[GroupResult]:
        return one_by_one(self, next_task)


class DaskRunner:
    """Solves the sub-problems on the workers of a Dask cluster, as many at once as it has threads."""

    def __init__(self, client: Any, problem: ProblemData) -> None:
        self.client = client
        self.slots = max(sum(client.nthreads().values()), 1)
        self.problem = client.scatter(problem, broadcast=True)

    def solve(self, tasks: Sequence[GroupTask]) -> list[GroupResult]:
        futures = [self._submit(task) for task in tasks]
        results: list[GroupResult] = self.client.gather(futures)
        return results

    def solve_as_ready(
        self, next_task: Callable[[], GroupTask | None], ahead: int = 0
    ) -> Iterator[GroupResult]:
        """``slots + ahead`` tasks at first, then one more each time a result comes back (in the order
        they finish, not the order they were given), so no worker waits for a slower one's
        sub-problem."""
        from dask.distributed import as_completed

        running = as_completed()

        def give() -> None:
            task = next_task()
            if task is not None:
                running.add(self._submit(task))

        for _ in range(self.slots + max(ahead, 0)):
            give()
        for future in running:
            result: GroupResult = future.result()
            yield result
            give()

    def _submit(self, task: GroupTask) -> Any:
        return self.client.submit(solve_group, self.problem, task, pure=False)


@contextmanager
def group_runner(problem: ProblemData, settings: SolverSettings) -> Iterator[GroupRunner]:
    """The runner ``settings`` ask for: the Dask cluster at ``settings.scheduler``; else a local Dask
    cluster of ``settings.workers`` (default: ``settings.threads``) single-threaded worker processes;
    with one worker, this process."""
    workers = settings.workers if settings.workers is not None else settings.threads
    if settings.scheduler is None and workers <= 1:
        yield InProcessRunner(problem)
        return
    from dask.distributed import Client, LocalCluster

    # importing distributed sets its own loggers to INFO; keep them quiet unless debugging
    logging.getLogger("distributed").setLevel(
        logging.INFO if logger.isEnabledFor(logging.DEBUG) else logging.WARNING
    )
    started = time.perf_counter()
    if settings.scheduler is not None:
        try:
            client = Client(settings.scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(
                f"cannot reach the Dask scheduler at {settings.scheduler} within {SCHEDULER_TIMEOUT}: {exc}",
                field="solver.scheduler",
            ) from exc
        cluster = None
    else:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            # a free port: None still binds 8787 and warns when another run (or the sweep) holds it
            dashboard_address=":0",
            silence_logs=logging.WARNING,
        )
        client = Client(cluster)
    try:
        runner = DaskRunner(client, problem)
        logger.info(
            "Dask %s: %d worker thread(s), ready in %.1f s",
            settings.scheduler or "local cluster",
            runner.slots,
            time.perf_counter() - started,
        )
        yield runner
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def plan_of(
    incumbent: PlanEvaluation, members: set[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """The incumbent's orders, transfers, inventory and channels of the SKUs in ``members``."""
    channels = incumbent.channels
    return (
        incumbent.orders[incumbent.orders["sku"].isin(members)],
        incumbent.transfers[incumbent.transfers["sku"].isin(members)],
        incumbent.inventory[incumbent.inventory["sku"].isin(members)],
        None if channels is None else channels[channels["sku"].isin(members)],
    )
