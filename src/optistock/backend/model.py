"""The procurement MILP in Pyomo: one function per constraint family, named as in ``models/core.md``.

Every ``define_*_constraints`` function adds one constraint family — one or a few Pyomo constraint
components, each named in its docstring exactly as in the written formulation — and states the equations.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable
from typing import cast

import pyomo.environ as pyo

from optistock.backend import extensions
from optistock.backend.sets import Line, ModelSets, build_sets, network_units
from optistock.preprocess.data import ProblemData

logger = logging.getLogger(__name__)

VARIABLES = (
    "packs",
    "line_active",
    "segment_active",
    "segment_quantity",
    "po_open",
    "transfer",
    "stock",
    "backorder",
    "has_stock",
    "safety_shortfall",
)


def build_model(problem: ProblemData, sets: ModelSets | None = None) -> pyo.ConcreteModel:
    """Build the whole model: sets, variables, every constraint family, objective."""
    sets = sets or build_sets(problem)
    model = pyo.ConcreteModel(name=f"optistock:{problem.scenario.name}")
    model.sets = sets  # kept for result extraction
    define_variables(model, problem, sets)
    extensions.define_extension_variables(model, problem, sets)
    for family in CONSTRAINT_FAMILIES + extensions.EXTENSION_FAMILIES:
        family(model, problem, sets)
    define_objective(model, problem, sets)
    return model


def define_variables(model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets) -> None:
    """Decision variables and their bounds.

    - ``packs[l]`` ∈ ℤ₊, ≤ U_l / m_l: number of packs on order line l; quantity q_l = m_l · packs[l]
    - ``line_active[l]`` ∈ {0,1} for lines with MOQ above one pack and no price breaks
    - ``segment_active[l,k]`` ∈ {0,1}, ``segment_quantity[l,k]`` ≥ 0 for lines whose offer has price breaks
    - ``po_open[s,w,t]`` ∈ {0,1}: purchase order of supplier s to warehouse w in period t is placed
    - ``transfer[i,w,v,t]`` ∈ ℤ₊: units of sku i shipped from w to v in period t
    - ``stock[i,w,t]``, ``backorder[i,w,t]`` ≥ 0: end-of-period stock and backorder
    - ``has_stock[i,w,t]`` ∈ {0,1} where stock may leave w by transfer in t+1 (stock sign)
    - ``safety_shortfall[i,w,t]`` ∈ [0, SS_iw]: end stock missing to the safety stock SS_iw, for the
      SKU-warehouses with a safety-stock target
    """
    lines = sets.lines
    model.LINES = pyo.Set(initialize=list(lines), dimen=4, ordered=True)
    model.packs = pyo.Var(
        model.LINES,
        domain=pyo.NonNegativeIntegers,
        bounds=lambda m, *key: (0, lines[key].max_quantity // lines[key].pack_size),
    )
    activated = [key for key, line in lines.items() if line.needs_activation and not line.segments]
    model.ACTIVATED_LINES = pyo.Set(initialize=activated, dimen=4, ordered=True)
    model.line_active = pyo.Var(model.ACTIVATED_LINES, domain=pyo.Binary)
    segments = [(*key, k) for key, line in lines.items() for k in range(len(line.segments))]
    model.SEGMENTS = pyo.Set(initialize=segments, dimen=5, ordered=True)
    model.segment_active = pyo.Var(model.SEGMENTS, domain=pyo.Binary)
    model.segment_quantity = pyo.Var(
        model.SEGMENTS,
        domain=pyo.NonNegativeReals,
        bounds=lambda m, s, i, w, t, k: (0, lines[(s, i, w, t)].segments[k].high),
    )
    model.PURCHASE_ORDERS = pyo.Set(initialize=list(sets.purchase_orders), dimen=3, ordered=True)
    model.po_open = pyo.Var(model.PURCHASE_ORDERS, domain=pyo.Binary)
    model.TRANSFER_ARCS = pyo.Set(initialize=list(sets.transfer_arcs), dimen=4, ordered=True)
    model.transfer = pyo.Var(model.TRANSFER_ARCS, domain=pyo.NonNegativeIntegers)
    model.STOCK_CELLS = pyo.Set(initialize=sets.stock_cells, dimen=3, ordered=True)
    model.stock = pyo.Var(
        model.STOCK_CELLS,
        domain=pyo.NonNegativeReals,
        bounds=lambda m, *c: (0, None if math.isinf(sets.stock_upper[c]) else sets.stock_upper[c]),
    )
    model.backorder = pyo.Var(
        model.STOCK_CELLS, domain=pyo.NonNegativeReals, bounds=lambda m, *c: (0, sets.backorder_upper[c])
    )
    model.SHIPPING_CELLS = pyo.Set(initialize=sets.shipping_cells, dimen=3, ordered=True)
    model.has_stock = pyo.Var(model.SHIPPING_CELLS, domain=pyo.Binary)

    targets = problem.safety_stock
    protected = [c for c in sets.stock_cells if (c[0], c[1]) in targets.index]
    model.SAFETY_CELLS = pyo.Set(initialize=protected, dimen=3, ordered=True)
    model.safety_shortfall = pyo.Var(
        model.SAFETY_CELLS,
        domain=pyo.NonNegativeReals,
        bounds=lambda m, i, w, t: (0, float(targets[(i, w)])),
    )

    model.quantity = pyo.Expression(model.LINES, rule=lambda m, *key: lines[key].pack_size * m.packs[key])
    model.line_value = pyo.Expression(model.LINES, rule=_line_value_rule)


def _line_value_rule(model: pyo.ConcreteModel, *key: object) -> pyo.Expression:
    line = model.sets.lines[key]
    if line.segments:
        return pyo.quicksum(
            segment.unit_price * model.segment_quantity[(*key, k)] for k, segment in enumerate(line.segments)
        )
    return line.unit_price * model.quantity[key]


def define_min_order_quantity_constraints(
    model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets
) -> None:
    """min_order_quantity: q_l ≥ moq_l · line_active[l]; max_order_quantity: q_l ≤ U_l · line_active[l]
    (lines with MOQ above one pack and no price breaks: a line is either 0 or between MOQ and U_l)."""

    def rule(m: pyo.ConcreteModel, *key: object) -> pyo.Expression:
        return sets.lines[cast(Line, key)].moq * m.line_active[key] <= m.quantity[key]

    model.min_order_quantity = pyo.Constraint(model.ACTIVATED_LINES, rule=rule)
    model.max_order_quantity = pyo.Constraint(
        model.ACTIVATED_LINES,
        rule=lambda m, *key: m.quantity[key] <= sets.lines[key].max_quantity * m.line_active[key],
    )


def define_price_segment_constraints(model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets) -> None:
    """price_segment: all-units price breaks as disjoint quantity ranges, at most one chosen per line.

    price_segment_choice: Σ_k segment_active[l,k] ≤ 1;
    price_segment_quantity: q_l = Σ_k segment_quantity[l,k];
    price_segment_low: low_k · segment_active[l,k] ≤ segment_quantity[l,k];
    price_segment_high: segment_quantity[l,k] ≤ high_k · segment_active[l,k].
    Range k is [max(moq, break_k), break_{k+1} − 1] rounded inward to pack multiples, so the price of
    the chosen range is exactly the contract's price for that quantity.
    """
    segmented = [key for key, line in sets.lines.items() if line.segments]
    model.SEGMENTED_LINES = pyo.Set(initialize=segmented, dimen=4, ordered=True)

    def one_segment(m: pyo.ConcreteModel, *key: object) -> pyo.Expression:
        return (
            pyo.quicksum(
                m.segment_active[(*key, k)] for k in range(len(sets.lines[cast(Line, key)].segments))
            )
            <= 1
        )

    def quantity_split(m: pyo.ConcreteModel, *key: object) -> pyo.Expression:
        parts = pyo.quicksum(
            m.segment_quantity[(*key, k)] for k in range(len(sets.lines[cast(Line, key)].segments))
        )
        return m.quantity[key] == parts

    model.price_segment_choice = pyo.Constraint(model.SEGMENTED_LINES, rule=one_segment)
    model.price_segment_quantity = pyo.Constraint(model.SEGMENTED_LINES, rule=quantity_split)

    def low(m: pyo.ConcreteModel, s: str, i: str, w: str, t: int, k: int) -> pyo.Expression:
        segment = sets.lines[(s, i, w, t)].segments[k]
        return segment.low * m.segment_active[s, i, w, t, k] <= m.segment_quantity[s, i, w, t, k]

    def high(m: pyo.ConcreteModel, s: str, i: str, w: str, t: int, k: int) -> pyo.Expression:
        segment = sets.lines[(s, i, w, t)].segments[k]
        return m.segment_quantity[s, i, w, t, k] <= segment.high * m.segment_active[s, i, w, t, k]

    model.price_segment_low = pyo.Constraint(model.SEGMENTS, rule=low)
    model.price_segment_high = pyo.Constraint(model.SEGMENTS, rule=high)


def _line_on(model: pyo.ConcreteModel, key: tuple) -> pyo.Expression | None:
    """The 0/1 expression telling whether line ``key`` is used, when the line has one."""
    line = model.sets.lines[key]
    if line.segments:
        return pyo.quicksum(model.segment_active[(*key, k)] for k in range(len(line.segments)))
    if line.needs_activation:
        return model.line_active[key]
    return None


def define_purchase_order_link_constraints(
    model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets
) -> None:
    """purchase_order_link: a line can only be ordered on an open purchase order (s, w, t).

    Lines with a 0/1 variable: on_l ≤ po_open[s,w,t].  Other lines: q_l ≤ U_l · po_open[s,w,t].
    purchase_order_used: po_open[s,w,t] ≤ Σ_l on_l + Σ_l packs[l] (no empty purchase orders).
    """
    model.purchase_order_link = pyo.Constraint(model.LINES, rule=_link_rule)

    def used(m: pyo.ConcreteModel, s: str, w: str, t: int) -> pyo.Expression:
        terms = []
        for key in sets.purchase_orders[(s, w, t)]:
            on = _line_on(m, key)
            terms.append(m.packs[key] if on is None else on)
        return m.po_open[s, w, t] <= pyo.quicksum(terms)

    model.purchase_order_used = pyo.Constraint(model.PURCHASE_ORDERS, rule=used)


def _link_rule(model: pyo.ConcreteModel, *key: object) -> pyo.Expression:
    s, _, w, t = key
    on = _line_on(model, key)
    if on is None:
        return model.quantity[key] <= model.sets.lines[key].max_quantity * model.po_open[s, w, t]
    return on <= model.po_open[s, w, t]


def define_min_order_value_constraints(
    model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets
) -> None:
    """min_order_value: Σ_{lines of PO (s,w,t)} value_l ≥ MOV_s · po_open[s,w,t]."""
    minimum = sets.min_order_value
    with_minimum = [po for po in sets.purchase_orders if minimum[po] > 0]
    model.MOV_ORDERS = pyo.Set(initialize=with_minimum, dimen=3, ordered=True)
    model.min_order_value = pyo.Constraint(
        model.MOV_ORDERS,
        rule=lambda m, s, w, t: (
            pyo.quicksum(m.line_value[key] for key in sets.purchase_orders[(s, w, t)])
            >= minimum[(s, w, t)] * m.po_open[s, w, t]
        ),
    )


def define_supplier_capacity_constraints(
    model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets
) -> None:
    """supplier_capacity: Σ_{i,w} q[s,i,w,t] ≤ capacity_s for every supplier with a capacity and period t."""
    capacity = sets.supplier_capacity
    by_supplier_period: dict[tuple[str, int], list[tuple]] = defaultdict(list)
    for key in sets.lines:
        if (key[0], key[3]) in capacity:
            by_supplier_period[(key[0], key[3])].append(key)
    binding = {
        k: keys
        for k, keys in by_supplier_period.items()
        if sum(sets.lines[x].max_quantity for x in keys) > capacity[k]
    }
    model.CAPACITATED = pyo.Set(initialize=sorted(binding), dimen=2, ordered=True)
    model.supplier_capacity = pyo.Constraint(
        model.CAPACITATED,
        rule=lambda m, s, t: pyo.quicksum(m.quantity[key] for key in binding[(s, t)]) <= capacity[(s, t)],
    )


def define_budget_constraints(model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets) -> None:
    """budget: Σ_{lines ordered in t} value_l ≤ budget_t for every period with a budget row."""
    by_period: dict[int, list[tuple]] = defaultdict(list)
    for key in sets.lines:
        by_period[key[3]].append(key)
    periods = [t for t in sets.budget if by_period.get(t)]
    model.BUDGET_PERIODS = pyo.Set(initialize=periods, ordered=True)
    model.budget = pyo.Constraint(
        model.BUDGET_PERIODS,
        rule=lambda m, t: pyo.quicksum(m.line_value[key] for key in by_period[t]) <= sets.budget[t],
    )


def define_stock_balance_constraints(model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets) -> None:
    """stock_balance: for every (i, w, t)

    stock[i,w,t] − backorder[i,w,t] = stock[i,w,t−1] − backorder[i,w,t−1]
        + Σ_{lines (s,i,w,τ) arriving in t} q + open_orders[i,w,t]
        + Σ_{arcs (i,v,w,τ) arriving in t} transfer − Σ_v transfer[i,w,v,t] − demand[i,w,t],

    with stock[i,w,−1] − backorder[i,w,−1] = on_hand[i,w]; − waste[i,w,t] on the cells of perishable
    SKUs where units can expire (``models/extensions.md``).
    """
    arrivals: dict[tuple[str, str, int], list[tuple]] = defaultdict(list)
    for key, line in sets.lines.items():
        arrivals[(line.sku, line.warehouse, line.arrival_period)].append(key)
    inbound: dict[tuple[str, str, int], list[tuple]] = defaultdict(list)
    outbound: dict[tuple[str, str, int], list[tuple]] = defaultdict(list)
    for arc, arrival in sets.transfer_arcs.items():
        sku, origin, destination, ship = arc
        inbound[(sku, destination, arrival)].append(arc)
        outbound[(sku, origin, ship)].append(arc)
    model.outbound = outbound
    waste_cells = set(sets.waste_cells)

    def rule(m: pyo.ConcreteModel, i: str, w: str, t: int) -> pyo.Expression:
        previous = m.stock[i, w, t - 1] - m.backorder[i, w, t - 1] if t > 0 else sets.on_hand.get((i, w), 0.0)
        inflow = pyo.quicksum(m.quantity[key] for key in arrivals.get((i, w, t), ()))
        inflow += pyo.quicksum(m.transfer[arc] for arc in inbound.get((i, w, t), ()))
        outflow = pyo.quicksum(m.transfer[arc] for arc in outbound.get((i, w, t), ()))
        fixed = sets.receipts.get((i, w, t), 0.0) - sets.demand.get((i, w, t), 0.0)
        if (i, w, t) in waste_cells:
            outflow += m.waste[i, w, t]
        return m.stock[i, w, t] - m.backorder[i, w, t] == previous + inflow - outflow + fixed

    model.stock_balance = pyo.Constraint(model.STOCK_CELLS, rule=rule)


def define_storage_capacity_constraints(
    model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets
) -> None:
    """storage_capacity: Σ_i unit_volume_i · stock[i,w,t] ≤ capacity_{w,t} for every warehouse and period."""
    volume = problem.skus["unit_volume"]
    cells: dict[tuple[str, int], list[tuple[str, str, int]]] = defaultdict(list)
    for cell in sets.stock_cells:
        if float(volume[cell[0]]) > 0:
            cells[(cell[1], cell[2])].append(cell)
    model.STORAGE = pyo.Set(initialize=sorted(cells), dimen=2, ordered=True)
    model.storage_capacity = pyo.Constraint(
        model.STORAGE,
        rule=lambda m, w, t: (
            pyo.quicksum(float(volume[c[0]]) * m.stock[c] for c in cells[(w, t)])
            <= sets.storage_capacity[(w, t)]
        ),
    )


def define_transfer_availability_constraints(
    model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets
) -> None:
    """transfer_availability: Σ_v transfer[i,w,v,t] ≤ stock[i,w,t−1] (t ≥ 1), ≤ on_hand[i,w] (t = 0).

    A warehouse ships only what it held at the end of the previous period. Together with the stock-sign
    constraints below, stock[i,w,t−1] equals max(net, 0) wherever a transfer may leave.
    """
    cells = sorted(model.outbound)
    model.SHIP_CELLS = pyo.Set(initialize=cells, dimen=3, ordered=True)

    def rule(m: pyo.ConcreteModel, i: str, w: str, t: int) -> pyo.Expression:
        shipped = pyo.quicksum(m.transfer[arc] for arc in m.outbound[(i, w, t)])
        available = m.stock[i, w, t - 1] if t > 0 else sets.on_hand.get((i, w), 0.0)
        return shipped <= available

    model.transfer_availability = pyo.Constraint(model.SHIP_CELLS, rule=rule)


def define_stock_sign_constraints(model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets) -> None:
    """stock_sign: where stock can leave by transfer, stock and backorder are not both positive.

    stock_sign_backorder: backorder[i,w,t] ≤ B_{i,w,t} · (1 − has_stock[i,w,t]);
    stock_sign_shipping: Σ_v transfer[i,w,v,t+1] ≤ S_{i,w,t} · has_stock[i,w,t],
    with B the cumulative demand (a valid bound on the backorder) and S a bound on stock. Without this a
    plan could carry stock and backorder at once and ship stock the warehouse does not have.
    """

    def no_backorder(m: pyo.ConcreteModel, i: str, w: str, t: int) -> pyo.Expression:
        return m.backorder[i, w, t] <= sets.backorder_upper[(i, w, t)] * (1 - m.has_stock[i, w, t])

    shipping_bound = _shipping_bound(problem, sets)

    def ship_only_with_stock(m: pyo.ConcreteModel, i: str, w: str, t: int) -> pyo.Expression:
        shipped = pyo.quicksum(m.transfer[arc] for arc in m.outbound[(i, w, t + 1)])
        return shipped <= shipping_bound[i] * m.has_stock[i, w, t]

    model.stock_sign_backorder = pyo.Constraint(model.SHIPPING_CELLS, rule=no_backorder)
    model.stock_sign_shipping = pyo.Constraint(model.SHIPPING_CELLS, rule=ship_only_with_stock)


def define_safety_stock_constraints(model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets) -> None:
    """safety_stock: a soft floor of safety stock, for every period,

    safety_stock_target: stock[i,w,t] + safety_shortfall[i,w,t] ≥ SS_iw.

    Falling short costs the shortfall penalty per unit and period (``cost_safety_stock``),
    which lies between the holding and the shortage cost, so the plan keeps safety stock where it can
    and never backorders demand to keep it.
    """
    targets = problem.safety_stock
    model.safety_stock_target = pyo.Constraint(
        model.SAFETY_CELLS,
        rule=lambda m, i, w, t: m.stock[i, w, t] + m.safety_shortfall[i, w, t] >= float(targets[(i, w)]),
    )


def _shipping_bound(problem: ProblemData, sets: ModelSets) -> dict[str, float]:
    """Units of a SKU that can ever be in the network (at least 1), from :func:`network_units`."""
    total = network_units(sets)
    return {str(sku): max(total.get(str(sku), 0.0), 1.0) for sku in problem.skus.index}


def define_objective(model: pyo.ConcreteModel, problem: ProblemData, sets: ModelSets) -> None:
    """total_cost = purchase + ordering + transport + transfer + holding + shortage + safety_stock, as
    components ``cost_purchase`` … ``cost_safety_stock`` (Pyomo expressions) so results can report each
    one; ``cost_safety_stock`` is the safety-stock shortfall penalty, zero without service targets. With
    a shelf life also + ``cost_waste``, and with channel splits ``cost_shortage`` prices each channel's
    backorder (``models/extensions.md``)."""
    transfer_cost = problem.transfer_links["cost_per_unit"]
    holding = problem.skus["holding_cost"]
    shortage = problem.skus["shortage_cost"]
    model.cost_purchase = pyo.Expression(expr=pyo.quicksum(model.line_value[key] for key in sets.lines))
    model.cost_ordering = pyo.Expression(
        expr=pyo.quicksum(sets.order_cost[po] * model.po_open[po] for po in sets.purchase_orders)
    )
    model.cost_transport = pyo.Expression(
        expr=pyo.quicksum(
            line.lane_cost * model.quantity[key] for key, line in sets.lines.items() if line.lane_cost
        )
    )
    model.cost_transfer = pyo.Expression(
        expr=pyo.quicksum(
            float(transfer_cost[(arc[1], arc[2])]) * model.transfer[arc] for arc in sets.transfer_arcs
        )
    )
    model.cost_holding = pyo.Expression(
        expr=pyo.quicksum(float(holding[c[0]]) * model.stock[c] for c in sets.stock_cells)
    )
    if sets.channel_splits or sets.channel_cost:
        model.cost_shortage = pyo.Expression(expr=extensions.shortage_cost_terms(model, problem, sets))
    else:
        model.cost_shortage = pyo.Expression(
            expr=pyo.quicksum(float(shortage[c[0]]) * model.backorder[c] for c in sets.stock_cells)
        )
    penalty = problem.shortfall_penalty
    model.cost_safety_stock = pyo.Expression(
        expr=pyo.quicksum(float(penalty[c[0]]) * model.safety_shortfall[c] for c in model.SAFETY_CELLS)
    )
    total = (
        model.cost_purchase
        + model.cost_ordering
        + model.cost_transport
        + model.cost_transfer
        + model.cost_holding
        + model.cost_shortage
        + model.cost_safety_stock
    )
    if sets.waste_cells:
        model.cost_waste = pyo.Expression(expr=extensions.waste_cost_expression(model, problem, sets))
        total += model.cost_waste
    model.total_cost = pyo.Objective(expr=total, sense=pyo.minimize)


CONSTRAINT_FAMILIES: tuple[Callable[[pyo.ConcreteModel, ProblemData, ModelSets], None], ...] = (
    define_min_order_quantity_constraints,
    define_price_segment_constraints,
    define_purchase_order_link_constraints,
    define_min_order_value_constraints,
    define_supplier_capacity_constraints,
    define_budget_constraints,
    define_stock_balance_constraints,
    define_storage_capacity_constraints,
    define_transfer_availability_constraints,
    define_stock_sign_constraints,
    define_safety_stock_constraints,
)
