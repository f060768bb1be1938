"""Model extensions for shelf life, sales channels and sourcing rules (``models/extensions.md``).

Each extension adds its variables and constraint families to the model only when its data is present
(a SKU with ``shelf_life``, demand split over channels with different shortage costs, a ``sourcing``
share rule), so that a problem without them builds exactly the core model of ``models/core.md``. One
``define_*_constraints`` function per constraint family, named as in the written formulation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import pyomo.environ as pyo

from optistock.backend.sets import ModelSets, StockCell, network_units
from optistock.preprocess.data import ProblemData

EXTENSION_VARIABLES = ("waste", "expiring", "channel_backorder", "channel_in_stock")


def define_extension_variables(model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets) -> None:
    """Variables of the extensions (only where their data is present).

    - ``waste[i,w,t]`` ≥ 0 for (i, w, t) ∈ ``WASTE_CELLS``: units of a perishable SKU that expire in t
    - ``expiring[i,w,t]`` ∈ {0,1} on the same cells: 1 when units expire in t
    - ``channel_backorder[i,w,c,t]`` ∈ [0, cumulative demand of channel c] for (i, w, c, t) ∈
      ``CHANNEL_CELLS``: the part of backorder[i,w,t] owed to channel c
    - ``channel_in_stock[i,w,t]`` ∈ {0,1} for (i, w, t) ∈ ``CHANNEL_SPLIT_CELLS``: 1 when the end stock
      may be positive, 0 when a backorder may be
    """
    if sets.waste_cells:
        model.WASTE_CELLS = pyo.Set(initialize=sets.waste_cells, dimen=3, ordered=True)
        model.waste = pyo.Var(model.WASTE_CELLS, domain=pyo.NonNegativeReals)
        model.expiring = pyo.Var(model.WASTE_CELLS, domain=pyo.Binary)
    if sets.channel_splits:
        cells = []
        upper: dict[tuple[str, str, str, int], float] = {}
        for (i, w), split in sets.channel_splits.items():
            for channel, demand in split.demand.items():
                total = 0.0
                for t, quantity in enumerate(demand):
                    total += max(quantity, 0.0)
                    cells.append((i, w, channel, t))
                    upper[(i, w, channel, t)] = total
        model.CHANNEL_CELLS = pyo.Set(initialize=cells, dimen=4, ordered=True)
        model.channel_backorder = pyo.Var(
            model.CHANNEL_CELLS, domain=pyo.NonNegativeReals, bounds=lambda m, *c: (0, upper[c])
        )
        pair_cells = [
            (i, w, t)
            for (i, w) in sets.channel_splits
            for t in range(problem.periods)
            if sets.backorder_upper.get((i, w, t), 0.0) > 0
        ]
        model.CHANNEL_SPLIT_CELLS = pyo.Set(initialize=pair_cells, dimen=3, ordered=True)
        model.channel_in_stock = pyo.Var(model.CHANNEL_SPLIT_CELLS, domain=pyo.Binary)


def define_shelf_life_constraints(model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets) -> None:
    """shelf_life: end stock is only units young enough to be used next period; what is older expires.

    shelf_life_window: stock[i,w,t] ≤ R[i,w,t], the units that arrived in t − L_i + 2 … t (lines,
    open orders, and stock on hand whose age puts its arrival there);
    shelf_life_waste_on: waste[i,w,t] ≤ M_i · expiring[i,w,t];
    shelf_life_full: R[i,w,t] − stock[i,w,t] ≤ M_i · (1 − expiring[i,w,t]).
    Issuing is first-expired-first-out, so the end stock is the youngest units: min(stock before
    expiry, R). The two switched rows make the model's waste exactly that — waste only when the stock
    kept is all of R — so a plan cannot dispose of units early to save holding cost.
    """
    if not sets.waste_cells:
        return
    arriving: dict[StockCell, list[tuple]] = defaultdict(list)
    for key, line in sets.lines.items():
        arriving[(line.sku, line.warehouse, line.arrival_period)].append(key)
    bound = network_units(sets)

    def window(m: pyo.ConcreteModel, i: str, w: str, t: int) -> pyo.Expression:
        first = t - sets.shelf_life[i] + 2
        fixed = sum(units for arrived, units in sets.initial_cohorts.get((i, w), []) if arrived >= first)
        fixed += sum(sets.receipts.get((i, w, tau), 0.0) for tau in range(max(first, 0), t + 1))
        planned = [key for tau in range(max(first, 0), t + 1) for key in arriving.get((i, w, tau), ())]
        return pyo.quicksum(m.quantity[key] for key in planned) + fixed

    model.shelf_life_window = pyo.Constraint(
        model.WASTE_CELLS, rule=lambda m, i, w, t: m.stock[i, w, t] <= window(m, i, w, t)
    )
    model.shelf_life_waste_on = pyo.Constraint(
        model.WASTE_CELLS,
        rule=lambda m, i, w, t: m.waste[i, w, t] <= max(bound[i], 1.0) * m.expiring[i, w, t],
    )
    model.shelf_life_full = pyo.Constraint(
        model.WASTE_CELLS,
        rule=lambda m, i, w, t: (
            window(m, i, w, t) - m.stock[i, w, t] <= max(bound[i], 1.0) * (1 - m.expiring[i, w, t])
        ),
    )


def define_channel_backorder_constraints(
    model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets
) -> None:
    """channel_backorder: the backorder of a (sku, warehouse) is owed to its channels.

    channel_backorder_split: Σ_c channel_backorder[i,w,c,t] = backorder[i,w,t];
    channel_backorder_carry: channel_backorder[i,w,c,t] ≤ channel_backorder[i,w,c,t−1] + d[i,w,c,t]
    (a channel's backorder grows only by its own demand: units served are not taken back);
    channel_backorder_no_rationing: backorder[i,w,t] ≤ D[i,w,t] · (1 − channel_in_stock[i,w,t]);
    channel_stock_no_rationing: stock[i,w,t] ≤ M_i · channel_in_stock[i,w,t]
    (stock is not held back for a dearer channel's later demand while a channel waits: the contract's
    end stock is max(net, 0)). With shortage cost π_c per channel, the cheapest split serves the
    highest π_c first, which is the re-simulation's rule.
    """
    if not sets.channel_splits:
        return
    all_cells = [(i, w, t) for (i, w) in sets.channel_splits for t in range(problem.periods)]
    model.CHANNEL_PAIR_CELLS = pyo.Set(initialize=all_cells, dimen=3, ordered=True)
    model.channel_backorder_split = pyo.Constraint(
        model.CHANNEL_PAIR_CELLS,
        rule=lambda m, i, w, t: (
            pyo.quicksum(m.channel_backorder[i, w, c, t] for c in sets.channel_splits[(i, w)].demand)
            == m.backorder[i, w, t]
        ),
    )

    def carry(m: pyo.ConcreteModel, i: str, w: str, c: str, t: int) -> pyo.Expression:
        demand = sets.channel_splits[(i, w)].demand[c][t]
        previous = m.channel_backorder[i, w, c, t - 1] if t > 0 else 0.0
        return m.channel_backorder[i, w, c, t] <= previous + demand

    model.channel_backorder_carry = pyo.Constraint(model.CHANNEL_CELLS, rule=carry)
    bound = network_units(sets)
    model.channel_backorder_no_rationing = pyo.Constraint(
        model.CHANNEL_SPLIT_CELLS,
        rule=lambda m, i, w, t: (
            m.backorder[i, w, t] <= sets.backorder_upper[(i, w, t)] * (1 - m.channel_in_stock[i, w, t])
        ),
    )
    model.channel_stock_no_rationing = pyo.Constraint(
        model.CHANNEL_SPLIT_CELLS,
        rule=lambda m, i, w, t: m.stock[i, w, t] <= max(bound[i], 1.0) * m.channel_in_stock[i, w, t],
    )


def define_sourcing_share_constraints(
    model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets
) -> None:
    """sourcing_share: a supplier's share of the units bought of a SKU (or of all SKUs) over the horizon.

    sourcing_min_share: Σ_{l of s (and i)} q_l + F^s_r ≥ min_r · (Σ_{l of i} q_l + F_r);
    sourcing_max_share: Σ_{l of s (and i)} q_l + F^s_r ≤ max_r · (Σ_{l of i} q_l + F_r),
    for every rule r of the ``sourcing`` table with min_r > 0 (resp. max_r < 1); F are the units the fixed
    rest of the plan contributes in a SKU sub-problem (0 in the full model).
    """
    if not sets.share_rules:
        return
    rules = sets.share_rules
    # a rule without lines in the model (its SKU has no demand, or no SKU of a sub-problem is offered)
    # constrains nothing the model decides
    minimum = [k for k, data in enumerate(rules) if data.rule.min_share > 0 and data.all_lines]
    maximum = [k for k, data in enumerate(rules) if data.rule.max_share < 1 and data.all_lines]

    def units(m: pyo.ConcreteModel, k: int) -> tuple[pyo.Expression, pyo.Expression]:
        data = rules[k]
        own = pyo.quicksum(m.quantity[key] for key in data.supplier_lines) + data.fixed_supplier_units
        total = pyo.quicksum(m.quantity[key] for key in data.all_lines) + data.fixed_total_units
        return own, total

    def at_least(m: pyo.ConcreteModel, k: int) -> pyo.Expression:
        own, total = units(m, k)
        return own >= rules[k].rule.min_share * total

    def at_most(m: pyo.ConcreteModel, k: int) -> pyo.Expression:
        own, total = units(m, k)
        return own <= rules[k].rule.max_share * total

    model.MIN_SHARE_RULES = pyo.Set(initialize=minimum, ordered=True)
    model.MAX_SHARE_RULES = pyo.Set(initialize=maximum, ordered=True)
    model.sourcing_min_share = pyo.Constraint(model.MIN_SHARE_RULES, rule=at_least)
    model.sourcing_max_share = pyo.Constraint(model.MAX_SHARE_RULES, rule=at_most)


def waste_cost_expression(model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets) -> pyo.Expression:
    """cost_waste = Σ_{(i,w,t) ∈ WASTE_CELLS} c^waste_i · waste[i,w,t]."""
    cost = problem.waste_cost
    return pyo.quicksum(cost[c[0]] * model.waste[c] for c in sets.waste_cells)


def shortage_cost_terms(model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets) -> pyo.Expression:
    """Shortage cost: π_i · backorder on cells without a channel split (the channels' common cost where
    the pair's demand has channels), Σ_c π_c · channel_backorder on cells with one."""
    shortage = problem.skus["shortage_cost"]
    split, common = sets.channel_splits, sets.channel_cost
    plain = pyo.quicksum(
        common.get((c[0], c[1]), float(shortage[c[0]])) * model.backorder[c]
        for c in sets.stock_cells
        if (c[0], c[1]) not in split
    )
    if not split:
        return plain
    owed = pyo.quicksum(
        split[(i, w)].shortage_cost[c] * model.channel_backorder[i, w, c, t]
        for i, w, c, t in model.CHANNEL_CELLS
    )
    return plain + owed


EXTENSION_FAMILIES: tuple[Callable[[pyo.ConcreteModel, ProblemData, ModelSets], None], ...] = (
    define_shelf_life_constraints,
    define_channel_backorder_constraints,
    define_sourcing_share_constraints,
)
