"""How a problem is solved: LP relaxation, a rounded start, relaxations and restrictions of the model,
SKU-group sub-problems, the full MILP (``models/core.md`` §9).

HiGHS solves small models to proven optimality directly. On the benchmark instances it does not: with
integral pack counts and price segments its search rarely improves a start plan and its bound stays
near the LP relaxation. So the strategy is:

1. solve the LP relaxation of the full model: a proven lower bound, quantities to round, and the duals
   that price the Lagrangian bound;
2. round them into a valid plan (:mod:`.heuristics`), also after slope scaling;
3. models with at most ``DIRECT_INTEGER_LIMIT`` integer variables — the *structure phase*: the MILP
   with pack counts and transfers continuous (a relaxation: a bound above the LP's), then the MILP
   restricted to the purchase orders, MOQ lines and price segments that relaxation chose (a
   restriction: valid plans);
4. larger ones: the *Lagrangian bound* (:mod:`.lagrangian`) over SKU groups priced by the LP duals,
   then *fix-and-optimize* — repeatedly solve the exact sub-problem of one SKU with the rest of the
   plan fixed, the SKUs furthest above their own LP bound first;
5. the full MILP for the time that is left, which may improve the plan and raise the bound.

Models too large to build whole (``GROUP_PATH_LINE_LIMIT``) skip 1-5: the bound is the Lagrangian
relaxation over SKU groups with their LP relaxations solved, the start plan the groups' plans under
shares of the shared limits, improved by fix-and-optimize (``_run_by_groups``).

Every plan kept is re-simulated and checked (:func:`evaluate_plan`) before it replaces the incumbent,
so the result is always valid; its gap is measured against the best proven bound.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap

from optistock.backend import arrays, lagrangian
from optistock.backend.cpsat import CpSatSession, whole_unit_data
from optistock.backend.decompose import (
    GroupResult,
    GroupRunner,
    GroupTask,
    group_runner,
    group_sets,
    plan_of,
)
from optistock.backend.heuristics import (
    order_variables,
    repair_plan,
    round_lp_plan,
    start_values,
)
from optistock.backend.lagrangian import link_rows
from optistock.backend.model import build_model
from optistock.backend.sets import ModelSets, PlanTotals, PurchaseOrder, build_sets
from optistock.backend.solve import (
    HighsSession,
    Relaxation,
    SolveResult,
    SolveStatus,
    VariableKey,
    quiet_highs,
    relative_gap,
)
from optistock.errors import InfeasibleError, InputError, NoSolutionError
from optistock.postprocess.extract import ORDER_COLUMNS, TRANSFER_COLUMNS, empty_plan, extract_plan
from optistock.postprocess.simulate import PlanEvaluation, cost_by_sku, evaluate_plan
from optistock.preprocess.data import ProblemData
from optistock.preprocess.scenario import SolverSettings

logger = logging.getLogger(__name__)

DIRECT_INTEGER_LIMIT = 3000
SUBPROBLEM_SKUS = 1
SUBPROBLEM_TIME_LIMIT = 3.0
PRIORITY_TIME_LIMIT = 30.0
"""Fix-and-optimize's time limit for the SKU with the largest own gap (the others' scale down with
their gaps to ``PRIORITY_MIN_TIME_LIMIT``)."""
PRIORITY_MIN_TIME_LIMIT = 10.0
"""The least time limit of a SKU ranked by its own gap. On L's plan after 600 s (seed 0; ad hoc
script, the 30 SKUs ranked 20-35 and 100-115 by own gap, all tried at 3 s in that run), 3 s found
nothing on any of them, 8 s found 51 k on 11 of them in 248 s, 15 s 125 k on 23 in 458 s; on M
most single-SKU sub-problems end below 10 s at the first cycle's gap."""
FIX_AND_OPTIMIZE_MIN_GAP = 1e-4
"""Fix-and-optimize's sub-problems stop at the run's ``mip_gap`` in its first cycle and at a quarter
of the previous cycle's in each later one, down to this (:func:`fix_and_optimize_gap`)."""
MIN_SUBPROBLEM_SECONDS = 0.2
"""Fix-and-optimize solves no sub-problem with less time left than this (it stops there)."""
FULL_MILP_RESERVE = 2.0
"""Seconds fix-and-optimize leaves the full MILP at least (it gets all that is left once a cycle of
fix-and-optimize at its tightest sub-problem gap improves nothing). On M it improved neither the plan
nor the bound in the 9 s it had when fix-and-optimize stopped at 85 % of the time limit;
fix-and-optimize there gains to the end."""
STRUCTURE_SHARE = 0.7
"""Share of the time limit for the structure phase: the pack relaxation, then the MILP restricted to
the purchase orders, MOQ lines and price segments the relaxation chose."""
STRUCTURE_RELAXATION_SHARE = 0.7
"""Of the structure phase, the share the pack relaxation may use (the restricted MILP gets the rest)."""
LAGRANGIAN_SHARE = 0.4
"""Share of the time limit the Lagrangian bound's sub-problems may use, all groups together."""
ARRAY_LINE_LIMIT = 100_000
"""Above this many order lines (and without model extensions) the full model is built from arrays and
only its LP relaxation is solved; every MILP is then a SKU-group sub-problem (``_run_large``)."""
GROUP_PATH_LINE_LIMIT = 250_000
"""Above this many order lines (estimated from the tables, :func:`estimated_lines`) the model is never
built whole, not even its sets: the bound and every plan come from SKU-group sub-problems
(``_run_by_groups``): L (at most 439,000 lines) and XL (8.6 M). On L the LP relaxation of the whole
model (array path) did not finish in the 150 s that path gives it, and building it took 1.6 GB."""
GROUP_PATH_BOUND_SHARE = 0.4
"""On that path, the Lagrangian bound (the groups' LP relaxations) may take this share of the time the
Dask cluster's start-up leaves (L needs 9 % of 10 minutes; XL about a third of an hour),"""
GROUP_PATH_PLAN_SHARE = 0.0
"""... the groups' fair-share MILPs this share of what the bound leaves (then the groups not reached get
their LP rounded). None: on L, with half of what the bound left (5 minutes), 7 of the 500 groups' MILPs
found a plan in their second each (a 4-SKU group of L finds none in 10 s either), so every group gets
its LP under its shares rounded, and fix-and-optimize the time;"""
SKU_BOUND_SHARE = 0.15
"""Before fix-and-optimize (on every path), the LP bounds of the SKUs alone, to take the SKUs with the
largest own gap first, may take this share of the time left (on L they took 29 s, on M 1.5 s)."""
SKU_BOUND_COST_FACTOR = 1.5
"""The SKUs' own LP bounds are expected to take about this many times the wall seconds of the groups'
LP bounds at the same prices (on L: 29 s against 19 s); where that exceeds their share, the groups'
bounds rank the SKUs instead (XL: 982 s for the groups)."""
GROUP_PATH_REPAIR_ROUNDS = 20
"""On that path, the groups' plans stop this many re-simulations of the empty plan before the time
limit, for the repair of their plans together. It takes 2 rounds on L since transfers are fitted to
their stock in one pass (:func:`~.heuristics.fit_transfers_to_stock`; 18 before, one per period of
delay, and on XL 25 rounds of about 53 s where the empty plan re-simulates in 7 s)."""
GROUP_PATH_BATCH = 4
"""On that path, fix-and-optimize merges the plans of this many groups per worker into the incumbent at
once (one re-simulation of the whole plan instead of one each)."""
LAGRANGIAN_GROUP_SKUS = 4
LAGRANGIAN_GROUP_TIME_LIMIT = 2.0
MAX_STOCK_SIGN_ROUNDS = 5
SLOPE_SCALING_ROUNDS = 12
SLOPE_SCALING_RESERVE = 0.5
"""Slope scaling stops once less than this share of the time limit is left ..."""
SLOPE_SCALING_RESERVE_DECOMPOSE = 0.8
"""... or this share, when fix-and-optimize comes next and needs the time."""


@dataclass
class Outcome:
    evaluation: PlanEvaluation
    result: SolveResult
    timings: dict[str, float]
    model_size: dict[str, int]
    method: str
    history: list[dict[str, float]] = field(default_factory=list)
    """(seconds, cost) each time the incumbent improved."""
    subproblems: dict[str, float] = field(default_factory=dict)


def model_size(model: pyo.ConcreteModel) -> dict[str, int]:
    variables = list(model.component_data_objects(pyo.Var, active=True))
    return {
        "variables": len(variables),
        "integer_variables": sum(1 for v in variables if v.is_integer()),
        "constraints": sum(1 for _ in model.component_data_objects(pyo.Constraint, active=True)),
    }


class Optimiser:
    """One solve of one problem under one set of solver settings."""

    def __init__(
        self,
        problem: ProblemData,
        settings: SolverSettings,
        start_plans: Sequence[tuple[pd.DataFrame, pd.DataFrame]] = (),
    ) -> None:
        self.problem = problem
        self.settings = settings
        self.start_plans = list(start_plans)
        """Plans (orders, transfers) to start from, e.g. last night's plan carried forward; each is
        repaired into a valid plan and competes with the engine's own start plans."""
        self.started = time.perf_counter()
        self.deadline = self.started + settings.time_limit
        self.timings = {"build": 0.0, "solve": 0.0}
        self.history: list[dict[str, float]] = []
        self.incumbent: PlanEvaluation | None = None
        self._main: tuple[pyo.ConcreteModel, HighsSession] | None = None
        """The full model and its HiGHS session, once built."""
        self.proven_bounds: list[float] = []
        """Lower bounds proven by relaxations solved along the way (besides the LP and the full MILP)."""
        self._slope_scaling_reserve = SLOPE_SCALING_RESERVE
        self._merge_seconds = 0.0
        """Seconds fix-and-optimize's last merge took (re-simulating the plan): kept free before
        ``until`` for the merge of the sub-problems still to come."""
        self._unchanged_plans = 0
        """Fix-and-optimize sub-problems whose plan was the incumbent's own (not re-simulated)."""
        self.subproblems: dict[str, float] = {"count": 0, "build_s": 0.0, "solve_s": 0.0}
        """Group sub-problems solved by fix-and-optimize, and their build and solve seconds summed
        over the workers that solved them."""

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def _offer(self, candidate: PlanEvaluation) -> bool:
        """Keep ``candidate`` if it is valid and cheaper than the incumbent."""
        if not candidate.is_valid:
            return False
        if self.incumbent is not None and candidate.total_cost >= self.incumbent.total_cost - 1e-7 * max(
            1.0, abs(self.incumbent.total_cost)
        ):
            return False
        self.incumbent = candidate
        self.history.append({"seconds": time.perf_counter() - self.started, "cost": candidate.total_cost})
        return True

    def _build(self, sets: ModelSets) -> tuple[pyo.ConcreteModel, HighsSession]:
        started = time.perf_counter()
        model = build_model(self.problem, sets)
        session = HighsSession(model)
        self.timings["build"] += time.perf_counter() - started
        return model, session

    def run(self) -> Outcome:
        if self.settings.name == "cpsat" and (fractional := whole_unit_data(self.problem)):
            raise InputError(  # refused before any solve, not after the time limit
                "solver.name cpsat needs whole units, but these inputs have fractional quantities: "
                + ", ".join(fractional)
                + "; use solver.name highs",
                field="solver.name",
            )
        if self.settings.method == "monolithic":
            return self._run_monolithic()
        if (
            self.settings.method in ("auto", "decompose")
            and lagrangian.applicable(self.problem)
            and too_large_to_build(self.problem)
        ):
            return self._run_by_groups()
        started = time.perf_counter()
        sets = build_sets(self.problem)
        self.timings["build"] += time.perf_counter() - started
        if (
            self.settings.method in ("auto", "decompose")
            and len(sets.lines) > ARRAY_LINE_LIMIT
            and arrays.supports(self.problem, sets)
        ):
            return self._run_large(sets)
        model, session = self._build(sets)
        self._main = (model, session)
        size = model_size(model)
        logger.info(
            "model: %(variables)d variables (%(integer_variables)d integer), %(constraints)d constraints",
            size,
        )
        solve_started = time.perf_counter()
        build_before_solve = self.timings["build"]
        if size["variables"] == 0:
            return self._nothing_to_decide(size)
        wanted: dict[VariableKey, pyo.Var] = {("packs", *k): v for k, v in model.packs.items()}
        wanted.update({("transfer", *k): v for k, v in model.transfer.items()})
        relaxation = session.relaxation(
            wanted,
            time_limit=max(self.remaining() / 4, 1.0),
            threads=self.settings.threads,
            rows=link_rows(model),
        )
        if relaxation.infeasible:
            raise InfeasibleError(diagnose_infeasibility(self.problem))
        decompose = self.settings.method == "decompose" or (
            self.settings.method == "auto" and size["integer_variables"] > DIRECT_INTEGER_LIMIT
        )
        self._slope_scaling_reserve = SLOPE_SCALING_RESERVE_DECOMPOSE if decompose else SLOPE_SCALING_RESERVE
        lp_bound = relaxation.objective
        if lp_bound is not None:
            logger.info("LP relaxation bound %.2f", lp_bound)
            self._offer_rounded(sets, relaxation)
            self._slope_scaling(session, model, sets, wanted, relaxation)
        orders, transfers = empty_plan()
        self._offer(evaluate_plan(self.problem, orders, transfers))
        for start_orders, start_transfers in self.start_plans:
            repaired = evaluate_plan(self.problem, *repair_plan(self.problem, start_orders, start_transfers))
            kept = self._offer(repaired)
            logger.info(
                "given start plan: cost %.2f (%s)", repaired.total_cost, "kept" if kept else "not better"
            )
        if self.incumbent is not None:
            logger.info(
                "start plan: cost %.2f (%d lines)", self.incumbent.total_cost, len(self.incumbent.orders)
            )

        method = "milp"
        if self.incumbent is not None and not decompose and self._solve_by_structure(model, session, sets):
            method = "structure + milp"
        if decompose and self.incumbent is not None:
            method = method.replace("milp", "fix-and-optimize + milp")
            with group_runner(self.problem, self.settings) as runner:
                if lagrangian.applicable(self.problem):
                    method = "lagrangian + " + method
                    self._lagrangian(runner, sets, relaxation)
                self._improve_by_sku_groups(
                    runner,
                    max([lp_bound or -math.inf, *self.proven_bounds]),
                    until=self.deadline - FULL_MILP_RESERVE,
                    priority=self._skus_by_own_gap(runner),
                    by_warehouse_first=True,
                )
        result = self._solve_full(model, session, sets)
        logger.info(
            "full MILP: %s (%s), objective %s, bound %s",
            result.status.value,
            result.termination,
            result.objective,
            result.best_bound,
        )
        # models rebuilt while solving (sub-problems, stock-sign rounds) count as build time, not solve time
        rebuild_seconds = self.timings["build"] - build_before_solve
        self.timings["solve"] = time.perf_counter() - solve_started - rebuild_seconds
        return self._finish(result, lp_bound, solve_started, size, method)

    def _run_large(self, sets: ModelSets) -> Outcome:
        """Models with more than ``ARRAY_LINE_LIMIT`` order lines: the full model is built only from
        arrays (:mod:`.arrays`, the same model as Pyomo's) for its LP relaxation — the bound, the rounded
        start and the Lagrangian prices — and every MILP is a SKU-group sub-problem: the Lagrangian bound,
        then fix-and-optimize for the rest of the time limit."""
        started = time.perf_counter()
        array_model = arrays.build_array_model(self.problem, sets)
        self.timings["build"] += time.perf_counter() - started
        size = {
            "variables": array_model.num_cols,
            "integer_variables": array_model.num_integer,
            "constraints": array_model.num_rows,
        }
        logger.info(
            "model (arrays): %(variables)d variables (%(integer_variables)d integer), %(constraints)d rows",
            size,
        )
        solve_started = time.perf_counter()
        build_before_solve = self.timings["build"]
        status, lp_bound, values = array_model.solve_lp(max(self.remaining() / 4, 1.0), self.settings.threads)
        if status is SolveStatus.INFEASIBLE:
            raise InfeasibleError(diagnose_infeasibility(self.problem))
        relaxation = Relaxation(infeasible=False, objective=lp_bound, values={})
        if lp_bound is not None and len(values):
            packs, transfer = array_model["packs"], array_model["transfer"]
            lp_values: dict[VariableKey, float] = {
                ("packs", *key): float(v)
                for key, v in zip(packs.keys, values[packs.index].tolist(), strict=True)
            }
            lp_values.update(
                {
                    ("transfer", *key): float(v)
                    for key, v in zip(transfer.keys, values[transfer.index].tolist(), strict=True)
                }
            )
            relaxation = Relaxation(False, lp_bound, lp_values, array_model.duals(lagrangian.ROW_FAMILIES))
            logger.info("LP relaxation bound %.2f", lp_bound)
            self._offer_rounded(sets, relaxation)
        del array_model, values
        if lp_bound is None and lagrangian.applicable(self.problem):
            logger.info("LP relaxation not solved in time: the bound and the plan from SKU groups only")
            del sets
            self.timings["solve"] = time.perf_counter() - solve_started
            return self._run_by_groups()
        orders, transfers = empty_plan()
        self._offer(evaluate_plan(self.problem, orders, transfers))
        for start_orders, start_transfers in self.start_plans:
            self._offer(
                evaluate_plan(self.problem, *repair_plan(self.problem, start_orders, start_transfers))
            )
        method = "arrays + fix-and-optimize"
        if self.incumbent is None:  # not even the empty plan is valid: _finish says so
            result = SolveResult(SolveStatus.NO_SOLUTION, "no valid start", None, None, "highs", "", 0.0)
            return self._finish(result, lp_bound, solve_started, size, method)
        with group_runner(self.problem, self.settings) as runner:
            if lagrangian.applicable(self.problem):
                method = "arrays + lagrangian + fix-and-optimize"
                self._lagrangian(runner, sets, relaxation)
            self._improve_by_sku_groups(
                runner,
                max([lp_bound or -math.inf, *self.proven_bounds]),
                until=self.deadline - 1.0,
                merge_size=runner.slots * GROUP_PATH_BATCH,
                shortest_first=True,
                priority=self._skus_by_own_gap(runner),
                by_warehouse_first=True,
            )
        rebuild_seconds = self.timings["build"] - build_before_solve
        self.timings["solve"] = time.perf_counter() - solve_started - rebuild_seconds
        result = SolveResult(
            SolveStatus.FEASIBLE, "no full MILP (model too large)", None, None, "highs", _highs_version(), 0.0
        )
        return self._finish(result, lp_bound, solve_started, size, method)

    def _run_by_groups(self) -> Outcome:
        """Models too large to build whole (over ``GROUP_PATH_LINE_LIMIT`` estimated order lines): no
        full model, no LP relaxation of it; every model built is a group's (``models/core.md`` §9, 7).

        1. The bound: the Lagrangian relaxation over groups of SKUs, each purchase order's fixed cost
           split equally over the SKUs that could use it (:func:`~.lagrangian.lane_split_prices`), with
           the groups' LP relaxations solved (valid, and weaker than their MILPs only by what HiGHS
           could not prove in the time anyway).
        2. The start plan: every group's plan under its share of every shared limit
           (:func:`~.lagrangian.fair_share_plans`), solved side by side; together, repaired.
        3. Fix-and-optimize until the time limit."""
        solve_started = time.perf_counter()
        self._offer(evaluate_plan(self.problem, *empty_plan()))
        # the groups' plans together are repaired after their phase: keep time for that many
        # re-simulations of the whole plan (on XL one takes 7 s and more)
        repair_reserve = GROUP_PATH_REPAIR_ROUNDS * (time.perf_counter() - solve_started)
        for start_orders, start_transfers in self.start_plans:
            self._offer(
                evaluate_plan(self.problem, *repair_plan(self.problem, start_orders, start_transfers))
            )
        method = "groups: lagrangian + fair shares + fix-and-optimize"
        size = {"variables": 0, "integer_variables": 0, "constraints": 0}
        groups = self._sku_groups(None)
        prices = lagrangian.lane_split_prices(self.problem)
        with group_runner(self.problem, self.settings) as runner:
            started = time.perf_counter()
            available = self.deadline - started  # the phases share what the cluster's start-up left
            bound = lagrangian.lagrangian_bound(
                self.problem,
                None,
                prices,
                groups,
                runner,
                self._sub_settings(runner),
                LAGRANGIAN_GROUP_TIME_LIMIT,
                deadline=started + GROUP_PATH_BOUND_SHARE * available,
                relaxed=True,
            )
            self.proven_bounds.append(bound.bound)
            size = dict(zip(size, bound.size, strict=True))
            self._count_subproblems(runner, bound.solved_groups, bound.build_seconds, bound.solve_seconds)
            bound_seconds = time.perf_counter() - started
            logger.info(
                "Lagrangian bound (groups' LP relaxations) %.2f (%d of %d groups, %.1f s)",
                bound.bound,
                bound.solved_groups,
                bound.groups,
                bound_seconds,
            )
            planning = time.perf_counter()
            orders, transfers, planned, results = lagrangian.fair_share_plans(
                self.problem,
                prices,
                lagrangian.limit_shares(self.problem),
                groups,
                runner,
                self._sub_settings(runner, mip_gap=min(self.settings.mip_gap / 4, 1e-3)),
                LAGRANGIAN_GROUP_TIME_LIMIT,
                deadline=planning + GROUP_PATH_PLAN_SHARE * (self.deadline - planning - repair_reserve),
                rest_deadline=self.deadline - 1.0 - repair_reserve,
                used=bound.use,
            )
            self._count_subproblems(
                runner,
                len(results),
                sum(r.build_seconds for r in results),
                sum(r.solve_seconds for r in results),
            )
            kept = self._offer_group_plans(orders, transfers, planned)
            logger.info(
                "fair-share plans of %d of %d groups (%d from their MILP, the others rounded LPs; %.1f s): "
                "%s, cost %s",
                sum(1 for r in results if r.orders is not None),
                len(groups),
                sum(1 for r in results if r.objective is not None),
                time.perf_counter() - planning,
                "kept" if kept else "not better",
                f"{self.incumbent.total_cost:.2f}" if self.incumbent is not None else "none",
            )
            if self.incumbent is not None:
                priority = self._skus_by_own_gap(runner, prices, (bound, bound_seconds))
                self._improve_by_sku_groups(
                    runner,
                    max(self.proven_bounds, default=None),
                    until=self.deadline - 1.0,
                    merge_size=runner.slots * GROUP_PATH_BATCH,
                    shortest_first=True,
                    priority=priority,
                    by_warehouse_first=True,
                )
        self.timings["solve"] = time.perf_counter() - solve_started - self.timings["build"]
        result = SolveResult(
            SolveStatus.FEASIBLE, "no full model (too large)", None, None, "highs", _highs_version(), 0.0
        )
        return self._finish(result, None, solve_started, size, method)

    def _skus_by_own_gap(
        self,
        runner: GroupRunner,
        prices: lagrangian.Prices | None = None,
        groups: tuple[lagrangian.LagrangianBound, float] | None = None,
    ) -> dict[str, float] | None:
        """The SKUs by their own gap, largest first, each with the time limit of its fix-and-optimize
        sub-problem. Its own gap is what the incumbent spends on a SKU
        (:func:`~optistock.postprocess.simulate.cost_by_sku`) less the LP bound of the SKU alone (its
        Lagrangian sub-problem at ``prices``, by lane if not given, solved on ``runner`` for at most
        ``SKU_BOUND_SHARE`` of the time left; ``None`` without an incumbent or where the Lagrangian
        relaxation is not valid). The gap of a plan
        sits in few SKUs (on L, 60 % of it in 15 % of them), and those are not the SKUs with the highest
        shortage cost, whose shortage is often unavoidable. HiGHS needs far longer than
        ``SUBPROBLEM_TIME_LIMIT`` to improve on the plan of such a SKU (on L's largest, 30 s: 4 % less
        than the plan; 3 s: nothing), so the time limit grows with the gap, from
        ``PRIORITY_MIN_TIME_LIMIT`` to ``PRIORITY_TIME_LIMIT`` for the largest. The SKUs' bounds together
        are one more Lagrangian bound (a SKU not reached counts 0).

        ``groups``: the groups' LP bounds at the same prices, already solved, and the wall seconds they
        took. Where solving the SKUs alone would not fit its share (estimated at
        ``SKU_BOUND_COST_FACTOR`` times those seconds: on XL about 1,000 s, where the share left 17 s
        for 8 of 20,000 SKUs), each group's gap is split over its SKUs instead
        (:func:`gaps_from_group_bounds`)."""
        if self.incumbent is None or not lagrangian.applicable(self.problem):
            return None
        started = time.perf_counter()
        budget = SKU_BOUND_SHARE * (self.deadline - started)
        own = cost_by_sku(self.problem, self.incumbent)
        if groups is not None and SKU_BOUND_COST_FACTOR * groups[1] > budget:
            gap = gaps_from_group_bounds(groups[0].group_bounds, own)
            logger.info(
                "SKUs ranked by their groups' LP bounds (%d groups): the SKUs' own LP bounds would take "
                "about %.0f s of the %.0f s share",
                len(groups[0].group_bounds),
                SKU_BOUND_COST_FACTOR * groups[1],
                budget,
            )
            return _priority_limits(gap)
        skus = _sku_order(self.problem)
        bound = lagrangian.lagrangian_bound(
            self.problem,
            None,
            prices or lagrangian.lane_split_prices(self.problem),
            [[sku] for sku in skus],
            runner,
            self._sub_settings(runner),
            LAGRANGIAN_GROUP_TIME_LIMIT,
            deadline=started + budget,
            relaxed=True,
        )
        self.proven_bounds.append(bound.bound)
        self._count_subproblems(runner, bound.solved_groups, bound.build_seconds, bound.solve_seconds)
        gap = {members[0]: float(own.get(members[0], 0.0)) - b for members, b in bound.group_bounds.items()}
        ranked = sorted(gap, key=lambda sku: -gap[sku])
        limits = _priority_limits(gap)
        logger.info(
            "SKUs' own LP bounds: %d of %d SKUs (%.1f s), bound %.2f; largest 10%% of gaps: %.0f of %.0f",
            bound.solved_groups,
            len(skus),
            time.perf_counter() - started,
            bound.bound,
            sum(gap[sku] for sku in ranked[: max(len(ranked) // 10, 1)]),
            sum(gap.values()),
        )
        return limits

    def _sub_settings(self, runner: GroupRunner, **update: object) -> SolverSettings:
        """The settings of sub-problems solved on ``runner``, with ``update``: one solver thread each
        where the runner solves several side by side, else the run's threads."""
        threads = 1 if runner.slots > 1 else self.settings.threads
        return self.settings.model_copy(update={"threads": threads, **update})

    def _count_subproblems(self, runner: GroupRunner, count: int, build_s: float, solve_s: float) -> None:
        self.subproblems["count"] += count
        self.subproblems["build_s"] += build_s
        self.subproblems["solve_s"] += solve_s
        if runner.slots == 1:  # built here, not on a worker
            self.timings["build"] += build_s

    def _offer_group_plans(
        self, orders: pd.DataFrame, transfers: pd.DataFrame, covered: frozenset[str]
    ) -> bool:
        """Offer the groups' plans for the SKUs in ``covered``, with the incumbent's (if any) for the
        others, repaired until the re-simulation finds no broken rule."""
        if self.incumbent is not None:
            orders, transfers = self._replacing(covered, [orders], [transfers])
        return self._offer(evaluate_plan(self.problem, *repair_plan(self.problem, orders, transfers)))

    def _replacing(
        self, skus: Collection[str], orders: Sequence[pd.DataFrame], transfers: Sequence[pd.DataFrame]
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The incumbent's orders and transfers with those of ``skus`` replaced by ``orders`` and
        ``transfers`` (not yet checked)."""
        assert self.incumbent is not None
        kept_orders = self.incumbent.orders[~self.incumbent.orders["sku"].isin(skus)]
        kept_transfers = self.incumbent.transfers[~self.incumbent.transfers["sku"].isin(skus)]
        return (
            pd.concat([kept_orders[orders[0].columns], *orders], ignore_index=True),
            pd.concat([kept_transfers[transfers[0].columns], *transfers], ignore_index=True),
        )

    def _sku_groups(self, sets: ModelSets | None) -> list[list[str]]:
        """Groups of ``LAGRANGIAN_GROUP_SKUS`` SKUs that share a main supplier, then the SKUs with stock but
        no demand (of the model's stock cells; of the SKU table without ``sets``)."""
        skus = _sku_order(self.problem)
        if sets is not None:
            others = {cell[0] for cell in sets.stock_cells}
        else:
            others = set(map(str, self.problem.skus.index))
        skus += sorted(others - set(skus))
        return [skus[i : i + LAGRANGIAN_GROUP_SKUS] for i in range(0, len(skus), LAGRANGIAN_GROUP_SKUS)]

    def _finish(
        self,
        result: SolveResult,
        lp_bound: float | None,
        solve_started: float,
        size: dict[str, int],
        method: str,
    ) -> Outcome:
        """The outcome: the incumbent, its gap to the best proven bound (LP or MILP) and its status."""
        if self.incumbent is None:
            stopped = (
                f"no plan found within the time limit of {self.settings.time_limit:g} s "
                f"(solver stopped: {result.termination})"
            )
            broken = broken_by_doing_nothing(self.problem, shown=3)
            if broken:  # what the search could not get past: say so, time may not help
                raise NoSolutionError(
                    f"{stopped}: the plan that orders and ships nothing breaks {broken}, and no plan "
                    "tried avoided it; check that transfers can relieve it, or raise solver.time_limit"
                )
            raise NoSolutionError(f"{stopped}; raise solver.time_limit or --time-limit")
        bounds = [b for b in (lp_bound, result.best_bound, *self.proven_bounds) if b is not None]
        best_bound = max(bounds) if bounds else None
        gap = relative_gap(self.incumbent.total_cost, best_bound)
        proven = (
            result.status is SolveStatus.OPTIMAL
            and result.objective is not None
            and abs(result.objective - self.incumbent.total_cost)
            <= 1e-6 * max(1.0, abs(self.incumbent.total_cost))
        )
        status = (
            SolveStatus.OPTIMAL
            if proven or (gap is not None and gap <= self.settings.mip_gap)
            else SolveStatus.FEASIBLE
        )
        final = SolveResult(
            status=status,
            termination=result.termination,
            objective=result.objective,
            best_bound=best_bound,
            solver=result.solver,
            solver_version=result.solver_version,
            seconds=time.perf_counter() - solve_started,
        )
        return Outcome(self.incumbent, final, self.timings, size, method, self.history, self.subproblems)

    def _run_monolithic(self) -> Outcome:
        """The whole model, with every stock-sign binary, handed to the solver as it is: no LP start,
        no rounding, no decomposition. Its plan is re-simulated and checked like any other; when the
        solver finds none in time, the result is the plan that orders nothing (if that is valid)."""
        started = time.perf_counter()
        sets = build_sets(self.problem, all_stock_sign_cells=True)
        self.timings["build"] += time.perf_counter() - started
        model, session = self._build(sets)
        size = model_size(model)
        solve_started = time.perf_counter()
        if size["variables"] == 0:
            return self._nothing_to_decide(size)
        result = self._milp_session(session, sets).solve(self.settings, time_limit=max(self.remaining(), 1.0))
        if result.status is SolveStatus.INFEASIBLE:
            raise InfeasibleError(diagnose_infeasibility(self.problem))
        if result.objective is not None:
            self._offer(evaluate_plan(self.problem, *extract_plan(model)))
        else:  # what the plain model gives when the solver finds nothing: the plan that orders nothing
            self._offer(evaluate_plan(self.problem, *empty_plan()))
        self.timings["solve"] = time.perf_counter() - solve_started
        return self._finish(result, None, solve_started, size, "monolithic")

    def _solve_by_structure(self, model: pyo.ConcreteModel, session: HighsSession, sets: ModelSets) -> bool:
        """The structure phase: decide *which* orders to place with pack sizes relaxed, then *how much*.

        1. **Pack relaxation**: the MILP with ``packs`` and ``transfer`` continuous. Only the 0/1
           decisions (purchase orders, MOQ lines, price segments) stay integral, which HiGHS solves far
           more easily. It is a relaxation, so its proven bound is a lower bound on the plan's cost,
           often well above the LP bound.
        2. **Restricted MILP**: the full MILP (integral packs) with every purchase order, MOQ line and
           price segment the relaxation left closed fixed to 0. It is a restriction, so its plans are
           plans of the model; the best is re-simulated (and repaired if it ships stock a warehouse
           did not have) and offered as incumbent.

        Whether the phase ran (it is skipped when too little time is left).
        """
        assert self.incumbent is not None
        phase = min(STRUCTURE_SHARE * self.settings.time_limit, self.remaining() - 1.0)
        if phase < 1.0 or not len(model.po_open):
            return False
        phase_end = time.perf_counter() + phase
        incumbent = self.incumbent
        start = start_values(
            model, sets, incumbent.orders, incumbent.transfers, incumbent.inventory, incumbent.channels
        )
        relaxed = session.solve_variant(
            self.settings,
            time_limit=STRUCTURE_RELAXATION_SHARE * phase,
            continuous=[*model.packs.values(), *model.transfer.values()],
            start=start,
            mip_gap=self.settings.mip_gap / 2,
        )
        logger.info(
            "pack relaxation: %s (%s), objective %s, bound %s",
            relaxed.status.value,
            relaxed.termination,
            relaxed.objective,
            relaxed.best_bound,
        )
        if relaxed.best_bound is not None:
            self.proven_bounds.append(relaxed.best_bound)
        if relaxed.objective is None:
            return True
        structure = order_variables(model)
        closed = [var for var in structure if (var.value or 0.0) < 0.5]
        restricted = session.solve_variant(
            self.settings,
            time_limit=max(phase_end - time.perf_counter(), 1.0),
            closed=closed,
            mip_gap=min(self.settings.mip_gap / 10, 1e-3),
        )
        logger.info(
            "restricted MILP (%d of %d order decisions closed): %s (%s), objective %s",
            len(closed),
            len(structure),
            restricted.status.value,
            restricted.termination,
            restricted.objective,
        )
        if restricted.objective is not None:
            self._offer_extracted(model)
        return True

    def _offer_extracted(self, model: pyo.ConcreteModel) -> None:
        """Offer the plan held in the model's variables, repaired first if it breaks a rule (a model
        without stock-sign binaries may ship stock a warehouse did not have)."""
        orders, transfers = extract_plan(model)
        candidate = evaluate_plan(self.problem, orders, transfers)
        if not candidate.is_valid:
            candidate = evaluate_plan(self.problem, *repair_plan(self.problem, orders, transfers))
        kept = self._offer(candidate)
        logger.info("restricted plan: cost %.2f (%s)", candidate.total_cost, "kept" if kept else "not better")

    def _offer_rounded(self, sets: ModelSets, relaxation: Relaxation) -> None:
        """Round an LP solution into a valid plan (see :mod:`.heuristics`) and keep it if it is better."""
        lp_packs = {key[1:]: value for key, value in relaxation.values.items() if key[0] == "packs"}
        lp_transfer = {key[1:]: value for key, value in relaxation.values.items() if key[0] == "transfer"}
        rounded = round_lp_plan(self.problem, sets, lp_packs, lp_transfer)
        orders, transfers = repair_plan(self.problem, *rounded)
        self._offer(evaluate_plan(self.problem, orders, transfers))

    def _slope_scaling(
        self,
        session: HighsSession,
        model: pyo.ConcreteModel,
        sets: ModelSets,
        wanted: dict[VariableKey, pyo.Var],
        relaxation: Relaxation,
    ) -> None:
        """Slope scaling: LPs in which each purchase order's fixed cost is charged per unit, at
        ``order_cost / quantity`` of the previous LP's order, each rounded into a candidate plan.

        The plain LP relaxation pays only a sliver of each fixed cost (``po_open`` is fractional), so it
        orders small amounts often. Charging the fixed cost per unit instead makes orders that are too
        small expensive; after a few rounds the LP's orders settle into lot sizes, which round well.
        """
        rounds_done = 0
        for _ in range(SLOPE_SCALING_ROUNDS):
            if self.remaining() < self._slope_scaling_reserve * self.settings.time_limit:
                break
            ordered: dict[PurchaseOrder, float] = defaultdict(float)
            for key, value in relaxation.values.items():
                if key[0] == "packs":
                    line = sets.lines[key[1:]]
                    ordered[(line.supplier, line.warehouse, line.order_period)] += line.pack_size * value
            extra = ComponentMap()
            for po, var in model.po_open.items():
                extra[var] = -sets.order_cost[po]
            for key, var in model.packs.items():
                line = sets.lines[key]
                po = (line.supplier, line.warehouse, line.order_period)
                lot = max(ordered[po], float(max(line.moq, line.pack_size)))
                extra[var] = line.pack_size * sets.order_cost[po] / lot
            scaled = session.relaxation(
                wanted,
                time_limit=max(self.remaining() / 8, 1.0),
                threads=self.settings.threads,
                extra_costs=extra,
            )
            if scaled.objective is None:
                break
            relaxation = scaled
            self._offer_rounded(sets, relaxation)
            rounds_done += 1
        if self.incumbent is not None:
            logger.info("slope scaling (%d rounds): best plan %.2f", rounds_done, self.incumbent.total_cost)

    def _nothing_to_decide(self, size: dict[str, int]) -> Outcome:
        """No order line or transfer can be placed: the plan that does nothing is the only one."""
        orders, transfers = empty_plan()
        self._offer(evaluate_plan(self.problem, orders, transfers))
        assert self.incumbent is not None
        if not self.incumbent.is_valid:
            raise InfeasibleError(diagnose_infeasibility(self.problem))
        cost = self.incumbent.total_cost
        result = SolveResult(SolveStatus.OPTIMAL, "nothing to decide", cost, cost, "highs", "", 0.0)
        return Outcome(self.incumbent, result, self.timings, size, "none", self.history, self.subproblems)

    def _milp_session(self, session: HighsSession, sets: ModelSets) -> HighsSession | CpSatSession:
        """What solves the full MILP: the HiGHS session, or CP-SAT on the same model (``solver.name``)."""
        if self.settings.name == "cpsat":
            started = time.perf_counter()
            translated = CpSatSession(session, self.problem, sets)
            self.timings["build"] += time.perf_counter() - started
            return translated
        return session

    def _solve_full(self, model: pyo.ConcreteModel, session: HighsSession, sets: ModelSets) -> SolveResult:
        """The full MILP from the incumbent, adding stock-sign binaries where a plan overdraws stock.

        Each better plan of HiGHS's search that overdraws stock is repaired and offered
        (:class:`OverdrawWatch`). Where the repair costs more than the plan by over the run's gap, or
        fails, the search in a model that phantom stock pays in is misled, so it stops and goes on with
        the binaries; else it searches on (phantom stock mostly ties with valid plans, see
        ``models/core.md`` §8). The last round searches to the time limit."""
        sign_cells: set[StockCell] = set()
        result: SolveResult | None = None
        for round_number in range(MAX_STOCK_SIGN_ROUNDS):
            milp = self._milp_session(session, sets)
            if self.incumbent is not None:
                incumbent = self.incumbent
                milp.set_start(
                    start_values(
                        model,
                        sets,
                        incumbent.orders,
                        incumbent.transfers,
                        incumbent.inventory,
                        incumbent.channels,
                    )
                )
            time_limit = max(self.remaining(), 1.0)
            watch = OverdrawWatch(self, model, sign_cells)
            if isinstance(milp, HighsSession) and round_number < MAX_STOCK_SIGN_ROUNDS - 1:
                result = milp.solve(self.settings, time_limit, stop_if=watch)
            else:
                result = milp.solve(self.settings, time_limit)
            if result.status is SolveStatus.INFEASIBLE:
                raise InfeasibleError(diagnose_infeasibility(self.problem))
            if result.status is SolveStatus.NO_SOLUTION:
                return result
            orders, transfers = extract_plan(model)
            candidate = evaluate_plan(self.problem, orders, transfers)
            if not self._offer(candidate) and candidate.overdrawn and not watch.saw(orders, transfers):
                self._offer_repaired(orders, transfers)
            new_cells = sign_cells_needed(candidate.overdrawn, sign_cells) | watch.cells
            if not new_cells or self.remaining() <= 1.0:
                break
            logger.info("adding stock-sign binaries for %d cell(s) and solving again", len(new_cells))
            sign_cells |= new_cells
            started = time.perf_counter()
            sets = build_sets(self.problem, sign_cells)
            self.timings["build"] += time.perf_counter() - started
            model, session = self._build(sets)
        assert result is not None
        return result

    def _offer_repaired(self, orders: pd.DataFrame, transfers: pd.DataFrame) -> PlanEvaluation:
        """A plan of the MILP that ships stock its warehouse does not have, with those transfers delayed
        or cut (:func:`repair_plan`), offered in its place; the repaired plan (which may be invalid
        where the repair failed). Such a plan mostly ties with the valid plan that ships the units a
        period later, which is what the repair makes of it (``models/core.md`` §8)."""
        repaired = evaluate_plan(self.problem, *repair_plan(self.problem, orders, transfers))
        if not repaired.is_valid:
            logger.info("the MILP's plan overdraws stock, and repairing it gave no valid plan")
            return repaired
        kept = self._offer(repaired)
        logger.info(
            "the MILP's plan overdraws stock: repaired, cost %.2f (%s)",
            repaired.total_cost,
            "kept" if kept else "not better",
        )
        return repaired

    def _lagrangian(
        self,
        runner: GroupRunner,
        sets: ModelSets | None,
        relaxation: Relaxation | None,
        share: float = LAGRANGIAN_SHARE,
    ) -> lagrangian.LagrangianBound | None:
        """The Lagrangian bound (:mod:`.lagrangian`) over groups of ``LAGRANGIAN_GROUP_SKUS`` SKUs that
        share a main supplier, priced by the LP's duals (equal shares of the fixed costs without them;
        by lane without the whole model's ``sets``), within ``share`` of the time limit; its groups'
        plans together, repaired, are offered as a plan. (Until 2026-12-05 a MILP over every SKU restricted
        to the purchase orders of those plans and the incumbent followed on models up to 100,000 lines; on
        M, seeds 0-2, it never improved the plan in its 21 s, which fix-and-optimize now gets.)"""
        started = time.perf_counter()
        groups = self._sku_groups(sets)
        budget = min(share * self.settings.time_limit, self.remaining() - 1.0)
        if budget <= 1.0 or not groups:
            return None
        sub_settings = self._sub_settings(runner, mip_gap=1e-4)
        if sets is None:
            prices = lagrangian.lane_split_prices(self.problem)
        elif relaxation is not None and relaxation.duals:
            prices = lagrangian.prices_from_duals(sets, relaxation.duals)
        else:
            prices = lagrangian.equal_split_prices(sets)
        result = lagrangian.lagrangian_bound(
            self.problem,
            sets,
            prices,
            groups,
            runner,
            sub_settings,
            LAGRANGIAN_GROUP_TIME_LIMIT,
            deadline=started + budget,
        )
        logger.info(
            "Lagrangian bound %.2f (%d of %d groups proven, %d of them by their LP relaxation, %.1f s)",
            result.bound,
            result.solved_groups,
            result.groups,
            result.lp_groups,
            time.perf_counter() - started,
        )
        self.proven_bounds.append(result.bound)
        self._count_subproblems(runner, result.solved_groups, result.build_seconds, result.solve_seconds)
        # the groups' plans, with the incumbent's for SKUs they do not cover, repaired, are a candidate
        kept = self._offer_group_plans(result.orders, result.transfers, result.planned_skus)
        logger.info("Lagrangian plan: %s", "kept" if kept else "not better")
        return result

    def _improve_by_sku_groups(
        self,
        runner: GroupRunner,
        lp_bound: float | None,
        until: float,
        merge_size: int = 1,
        shortest_first: bool = False,
        priority: Mapping[str, float] | None = None,
        by_warehouse_first: bool = False,
    ) -> None:
        """Fix-and-optimize over groups of SKUs until no group improves at the tightest sub-problem gap
        (:func:`fix_and_optimize_gap`, tightened cycle by cycle) or the time share is spent.

        Each group is solved as soon as one of the runner's slots is free (:meth:`_solve_as_ready`), and
        its plan is merged into the incumbent, ``merge_size`` plans at a time, and kept only if the merged
        plan is valid and cheaper.
        The SKUs in ``priority`` come first, in that order, each with its own time limit (the others get
        ``SUBPROBLEM_TIME_LIMIT``); then ``shortest_first`` takes the others in the
        order of the incumbent's shortage cost, highest first (where a cycle cannot cover every SKU, the
        SKUs with the most to gain come first); otherwise by main supplier.
        With ``by_warehouse_first`` the first cycle's sub-problems keep the incumbent's transfers and
        decide the order lines one warehouse at a time (:func:`~.decompose.solve_by_warehouse`): on 16
        of L's SKUs 690 a second where the free sub-problems found 115 (``models/core.md`` §9 step 4).
        """
        assert self.incumbent is not None
        skus = _sku_order(self.problem)
        if shortest_first:
            inventory = self.incumbent.inventory
            shortage = (
                (inventory["backorder"] * inventory["sku"].map(self.problem.skus["shortage_cost"]))
                .groupby(inventory["sku"])
                .sum()
            )
            skus = sorted(skus, key=lambda sku: -float(shortage.get(sku, 0.0)))
        limits = priority or {}
        if limits:
            skus = [*limits, *(sku for sku in skus if sku not in limits)]
        for cycle in range(20):
            cycle_gap = fix_and_optimize_gap(self.settings.mip_gap, cycle)
            sub_settings = self._sub_settings(runner, mip_gap=cycle_gap)
            offset = (cycle % 2) * (SUBPROBLEM_SKUS // 2)
            rotated = skus[offset:] + skus[:offset]
            groups = [rotated[i : i + SUBPROBLEM_SKUS] for i in range(0, len(rotated), SUBPROBLEM_SKUS)]
            solved = self._solve_as_ready(
                runner,
                groups,
                sub_settings,
                until,
                lp_bound,
                limits,
                merge_size,
                by_warehouse=by_warehouse_first and cycle == 0,
            )
            if solved.stopped is not None:
                logger.info(
                    "fix-and-optimize cycle %d: %s after %d of %d groups, cost %.2f "
                    "(%d sub-problem plan(s) so far equal to the incumbent's own)",
                    cycle,
                    solved.stopped,
                    solved.given,
                    len(groups),
                    self.incumbent.total_cost,
                    self._unchanged_plans,
                )
                return
            logger.info(
                "fix-and-optimize cycle %d (sub-problem gap %g): cost %.2f%s (%d sub-problem plan(s) so "
                "far equal to the incumbent's own)",
                cycle,
                cycle_gap,
                self.incumbent.total_cost,
                "" if solved.improved else " (no improvement)",
                self._unchanged_plans,
            )
            if not solved.improved and cycle_gap <= FIX_AND_OPTIMIZE_MIN_GAP:
                return

    def _solve_as_ready(
        self,
        runner: GroupRunner,
        groups: Sequence[Sequence[str]],
        settings: SolverSettings,
        until: float,
        lp_bound: float | None = None,
        limits: Mapping[str, float] | None = None,
        merge_size: int = 1,
        by_warehouse: bool = False,
    ) -> _Stream:
        """Solve the groups against the incumbent, each as soon as one of the runner's slots is free
        (:meth:`~.decompose.GroupRunner.solve_as_ready`), and merge their plans into it
        (:meth:`_merge`), ``merge_size`` at a time: one re-simulation for several plans where a
        re-simulation of the whole plan is dear (on L and XL), one by one elsewhere, so that each next
        sub-problem starts from every improvement before it. Until 2026-12-06 the groups were solved in
        batches, each waiting for its slowest sub-problem: on M, 37 % of the workers' time in
        fix-and-optimize went idle so.

        A group's time limit is its SKUs' largest in ``limits``, else ``SUBPROBLEM_TIME_LIMIT``, and at
        most the time left before ``until`` less the last merge's seconds. No group is given once that
        is under ``MIN_SUBPROBLEM_SECONDS`` or the incumbent is within the run's gap of ``lp_bound``.
        Sub-problems solved side by side each get their own use of every shared limit plus a share of its
        slack (:func:`~.decompose.group_sets`), one over the most that are solved or wait to be merged
        at once."""
        assert self.incumbent is not None
        stream = _Stream()
        waiting = iter(groups)
        unchanged: dict[tuple[str, ...], PlanRows] = {}
        share = 1.0 / (max(runner.slots, 1) + merge_size - 1)
        totals: tuple[PlanEvaluation, PlanTotals] | None = None  # of the incumbent they were taken from

        def next_task() -> GroupTask | None:
            nonlocal totals
            if stream.stopped is not None:
                return None
            for group in waiting:
                started = time.perf_counter()
                left = until - started - self._merge_seconds
                incumbent = self.incumbent
                assert incumbent is not None
                gap = relative_gap(incumbent.total_cost, lp_bound)
                if gap is not None and gap <= self.settings.mip_gap:
                    stream.stopped = "within the gap"
                    return None
                if min(SUBPROBLEM_TIME_LIMIT, left) <= MIN_SUBPROBLEM_SECONDS:
                    stream.stopped = "time limit"
                    return None
                stream.given += 1
                if totals is None or totals[0] is not incumbent:
                    totals = (incumbent, PlanTotals.of(self.problem, incumbent.orders, incumbent.inventory))
                members = set(group)
                start = plan_of(incumbent, members)
                own = PlanTotals.of(self.problem, start[0], start[2])
                sets = group_sets(self.problem, incumbent, members, share, totals[1], own)
                self.timings["build"] += time.perf_counter() - started
                if not sets.lines and not sets.transfer_arcs:
                    continue
                unchanged[tuple(group)] = plan_rows(start[0], start[1])
                limit = max((limits or {}).get(sku, SUBPROBLEM_TIME_LIMIT) for sku in group)
                return GroupTask(
                    tuple(group),
                    sets,
                    start,
                    settings,
                    min(limit, left),
                    by_warehouse=by_warehouse,
                )
            return None

        ready: list[GroupResult] = []
        for outcome in runner.solve_as_ready(next_task):
            self.subproblems["count"] += 1
            self.subproblems["build_s"] += outcome.build_seconds
            self.subproblems["solve_s"] += outcome.solve_seconds
            if runner.slots == 1:
                self.timings["build"] += outcome.build_seconds
            if outcome.orders is None or outcome.transfers is None:
                continue
            if plan_rows(outcome.orders, outcome.transfers) == unchanged.get(outcome.members):
                self._unchanged_plans += 1  # the incumbent's own plan for these SKUs: it would cost the same
                continue
            ready.append(outcome)
            if len(ready) >= merge_size:
                stream.improved |= self._merge(ready)
                ready = []
        if ready:
            stream.improved |= self._merge(ready)
        return stream

    def _merge(self, outcomes: Sequence[GroupResult]) -> bool:
        """Offer the incumbent with the plans of ``outcomes`` in place of its own: all of them in one
        re-simulation where there are more than two, and one at a time where that is not kept (a
        group whose plan breaks a shared rule is left out); whether any was kept."""
        started = time.perf_counter()
        improved = len(outcomes) > 2 and self._offer(self._merged(outcomes))
        if not improved:
            for outcome in outcomes:
                improved |= self._offer(self._merged([outcome]))
        self._merge_seconds = time.perf_counter() - started
        return improved

    def _merged(self, outcomes: Sequence[GroupResult]) -> PlanEvaluation:
        """The incumbent with the plans of ``outcomes``' groups in place of its own for their SKUs."""
        members = {sku for outcome in outcomes for sku in outcome.members}
        orders = [o.orders for o in outcomes if o.orders is not None]
        transfers = [o.transfers for o in outcomes if o.transfers is not None]
        return evaluate_plan(self.problem, *self._replacing(members, orders, transfers))


StockCell = tuple[str, str, int]


def sign_cells_needed(overdrawn: Collection[StockCell], known: Collection[StockCell]) -> set[StockCell]:
    """The cells (sku, warehouse, t − 1) whose stock-sign binary rules out what a plan overdrew in
    (sku, warehouse, t) (``models/core.md`` §8), less those the model has already."""
    return {(sku, warehouse, period - 1) for sku, warehouse, period in overdrawn if period > 0} - set(known)


TIE = 1e-4
"""Relative difference under which a repaired plan ties with the plan it repairs (:class:`OverdrawWatch`
with a ``mip_gap`` of 0)."""


class OverdrawWatch:
    """A :data:`~.solve.PlanCheck` for the full MILP of ``model``, which lacks stock-sign binaries other
    than ``known``: each plan of its search that ships stock a warehouse does not have where they would
    rule it out is repaired and offered (:meth:`Optimiser._offer_repaired`). Where the repair fails or
    costs more than the plan's objective by over the run's ``mip_gap`` (at least :data:`TIE`), phantom
    stock pays in this model, and the search stops; ``cells`` are then the binaries that rule it out.

    Found by fuzz runs (2026-12-06): on a 7-SKU instance the phantom plans tied with valid ones (the
    repair cost exactly the same), and stopping at the first one cost the search its progress (40 s:
    102,172.62 against 101,793.59 searching on); on a 5-SKU instance with storage halved the repair
    failed, and the search, run to the time limit, left no valid plan at all."""

    def __init__(self, optimiser: Optimiser, model: pyo.ConcreteModel, known: Collection[StockCell]) -> None:
        self.optimiser = optimiser
        self.model = model
        self.known = known
        self.cells: set[StockCell] = set()
        self._repaired: set[tuple[tuple[Any, ...], ...]] = set()

    def saw(self, orders: pd.DataFrame, transfers: pd.DataFrame) -> bool:
        """Whether this plan was repaired here already (the search's last plan usually was)."""
        return _plan_key(orders, transfers) in self._repaired

    def __call__(self, value_of: Callable[[pyo.Var], float], objective: float) -> bool:
        problem = self.optimiser.problem
        orders, transfers = extract_plan(self.model, value_of)
        needed = sign_cells_needed(evaluate_plan(problem, orders, transfers).overdrawn, self.known)
        if not needed:
            return False
        self._repaired.add(_plan_key(orders, transfers))
        repaired = self.optimiser._offer_repaired(orders, transfers)
        allowed = objective + max(self.optimiser.settings.mip_gap, TIE) * abs(objective)
        if repaired.is_valid and repaired.total_cost <= allowed:
            return False
        self.cells = needed
        logger.info("phantom stock pays in the MILP (%d cells): search stopped", len(needed))
        return True


def _plan_key(orders: pd.DataFrame, transfers: pd.DataFrame) -> tuple[tuple[Any, ...], ...]:
    """A plan's lines and transfers as one hashable value (both as :func:`extract_plan` orders them)."""
    return (*orders.itertuples(index=False, name=None), (), *transfers.itertuples(index=False, name=None))


def _highs_version() -> str:
    return str(quiet_highs().version())


def whole_model_affordable(problem: ProblemData) -> bool:
    """Whether building the whole model through Pyomo is affordable (at most ``ARRAY_LINE_LIMIT``
    estimated lines; on L it took 2 minutes and 6.5 GB): add-ons such as the marginal values need it."""
    return estimated_lines(problem) <= ARRAY_LINE_LIMIT and not too_large_to_build(problem)


def too_large_to_build(problem: ProblemData) -> bool:
    """Whether the model is never built whole (more than ``GROUP_PATH_LINE_LIMIT`` estimated lines)."""
    return estimated_lines(problem) > GROUP_PATH_LINE_LIMIT


def estimated_lines(problem: ProblemData) -> int:
    """Order lines the model would have, counted from the tables without building it: every offer of a
    demanded SKU, on every lane of its supplier, in every order period whose delivery arrives inside the
    horizon. ``build_sets`` drops some of them (offers switched off, bounds below one allowed quantity),
    never adds any."""
    demand = problem.demand.groupby(level="sku").sum()
    demanded = set(map(str, demand.index[demand > 0]))
    offers = problem.offers.reset_index()[["supplier", "sku", "lead_time"]]
    offers = offers[offers["sku"].astype(str).isin(demanded)]
    lanes = problem.lanes.reset_index()[["supplier", "transit_time"]]
    merged = offers.merge(lanes, on="supplier")
    return int((problem.periods - merged["lead_time"] - merged["transit_time"]).clip(lower=0).sum())


PlanRows = tuple[frozenset[tuple[object, ...]], frozenset[tuple[object, ...]]]


@dataclass
class _Stream:
    """How one pass of fix-and-optimize over its groups (:meth:`Optimiser._solve_as_ready`) went."""

    improved: bool = False
    """Whether any merge was kept."""
    given: int = 0
    """Groups taken from the list (those with nothing to decide included)."""
    stopped: str | None = None
    """Why it stopped giving out groups before the end of the list ("time limit", "within the gap")."""


def plan_rows(orders: pd.DataFrame, transfers: pd.DataFrame) -> PlanRows:
    """A plan's order lines and transfers as sets of (key, quantity) rows, whatever other columns its
    tables have: two plans with equal rows are the same plan. Fix-and-optimize does not re-simulate a
    sub-problem's plan equal to the incumbent's for its SKUs (on XL one re-simulation of the whole plan
    takes about 20 s, and a batch's plans are re-simulated one at a time when they do not all fit)."""
    return (
        frozenset(orders[ORDER_COLUMNS].itertuples(index=False, name=None)),
        frozenset(transfers[TRANSFER_COLUMNS].itertuples(index=False, name=None)),
    )


def gaps_from_group_bounds(group_bounds: Mapping[tuple[str, ...], float], own: pd.Series) -> dict[str, float]:
    """Each SKU's share of its group's gap: the group's gap (its SKUs' own costs in the plan, ``own``,
    less the group's bound) split in proportion to those costs (equally where they are all 0). Only the
    groups in ``group_bounds`` (those solved) get a gap."""
    gap: dict[str, float] = {}
    for members, bound in group_bounds.items():
        costs = [max(float(own.get(sku, 0.0)), 0.0) for sku in members]
        total = sum(costs)
        group_gap = total - bound
        for sku, cost in zip(members, costs, strict=True):
            gap[sku] = group_gap * (cost / total if total > 0 else 1.0 / len(members))
    return gap


def fix_and_optimize_gap(mip_gap: float, cycle: int) -> float:
    """The relative gap at which fix-and-optimize's sub-problems of ``cycle`` (0, 1, ...) stop: the
    run's ``mip_gap`` first, then a quarter of it per cycle, never below ``FIX_AND_OPTIMIZE_MIN_GAP``.

    A sub-problem's gap is relative to its SKUs' own cost, and most of what HiGHS finds on a single SKU
    it finds well before it proves a tight gap: on M's 60 s plan (seed 0), the 12 SKUs furthest above
    their own LP bounds, 30 s each at most, gained 17.4 k in 187 s at a gap of 0.1 %, 16.6 k in 97 s
    at 0.5 % and 16.2 k in 56 s at 1 %. So the first cycle, at the run's own gap, does about the same
    work in a third of the time; the later cycles, which pass over SKUs whose neighbours have changed,
    look closer."""
    return max(mip_gap / 4**cycle, min(mip_gap, FIX_AND_OPTIMIZE_MIN_GAP))


def _priority_limits(gap: Mapping[str, float]) -> dict[str, float]:
    """The SKUs with a positive gap, largest first, each with its fix-and-optimize time limit: from
    ``PRIORITY_TIME_LIMIT`` for the largest down with the gap, never below ``PRIORITY_MIN_TIME_LIMIT``."""
    ranked = sorted((sku for sku in gap if gap[sku] > 0), key=lambda sku: -gap[sku])
    if not ranked:
        return {}
    largest = gap[ranked[0]]
    return {sku: max(PRIORITY_MIN_TIME_LIMIT, PRIORITY_TIME_LIMIT * gap[sku] / largest) for sku in ranked}


def _sku_order(problem: ProblemData) -> list[str]:
    """SKUs grouped by their main supplier (so joint order costs are optimised together), then by name."""
    offers = problem.offers.reset_index()
    cheapest = offers.sort_values("unit_price").groupby("sku")["supplier"].first()
    demanded = problem.demand.groupby(level="sku").sum()
    skus = [str(s) for s in demanded.index[demanded > 0]]
    return sorted(skus, key=lambda sku: (str(cheapest.get(sku, "")), sku))


def broken_by_doing_nothing(problem: ProblemData, shown: int) -> str:
    """The hard rules the plan that orders and ships nothing breaks (the fixed inputs alone: stock on
    hand and open orders), the first ``shown`` of them; empty where it breaks none."""
    violations = evaluate_plan(problem, *empty_plan()).violations
    more = len(violations) - shown
    return "; ".join(violations[:shown]) + (f" (and {more} more)" if more > 0 else "")


def diagnose_infeasibility(problem: ProblemData) -> str:
    """Name the hard limits that the fixed inputs break, by re-simulating the plan that does nothing."""
    broken = broken_by_doing_nothing(problem, shown=5)
    if broken:
        return (
            "hard constraints cannot be met: stock on hand and open orders alone break "
            + broken
            + " — no transfers or orders can avoid it"
        )
    return (
        "hard constraints cannot be met (the solver proved the model infeasible; no single cause was found)"
    )
