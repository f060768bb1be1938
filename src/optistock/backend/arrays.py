"""The core MILP of ``models/core.md`` built from numpy arrays and handed to HiGHS in one call.

``model.py`` is the reference: the Pyomo model users read and extend. On large instances building it
and handing it to HiGHS through Pyomo's persistent interface costs minutes and gigabytes, so this module
builds *the same model* — the same variables with the same bounds, integrality and costs, the same rows
in the same order, the same objective — straight from the index sets of :mod:`.sets`, vectorised with
numpy, and passes it to ``highspy`` in a single ``passModel`` call. ``tests/test_array_model.py`` checks
on many random instances that both builders give the same model, column for column and row for row, and
the same LP and MILP optima.

Only the core constraint families are built here. A model with an extension of ``models/extensions.md``
(shelf life, channel splits or channel costs, share rules) is left to Pyomo: see :func:`supports`.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import highspy
import numpy as np
import pandas as pd

from optistock.backend.model import VARIABLES
from optistock.backend.sets import ModelSets, network_units
from optistock.backend.solve import SolveResult, SolveStatus, _use_threads, highs_result, quiet_highs
from optistock.preprocess.data import ProblemData

ROW_FAMILIES = (
    "min_order_quantity",
    "max_order_quantity",
    "price_segment_choice",
    "price_segment_quantity",
    "price_segment_low",
    "price_segment_high",
    "purchase_order_link",
    "purchase_order_used",
    "min_order_value",
    "supplier_capacity",
    "budget",
    "stock_balance",
    "storage_capacity",
    "transfer_availability",
    "stock_sign_backorder",
    "stock_sign_shipping",
    "safety_stock_target",
)
"""Constraint components of the core model, in the order ``build_model`` declares them (and Pyomo's
persistent interface hands their rows to HiGHS)."""

logger = logging.getLogger(__name__)

INF = math.inf
_INT = np.int64
_CONTINUOUS, _INTEGER = 0, 1


class UnsupportedModelError(ValueError):
    """The problem needs a model extension the array builder does not build; use the Pyomo model."""


@dataclass
class Block:
    """The index keys of one variable (or constraint) family and the column (or row) of each key."""

    keys: list[Any]
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)


@dataclass
class ArrayModel:
    """The core MILP loaded into a ``highspy.Highs``, with the key → column map of every variable."""

    highs: highspy.Highs
    columns: dict[str, Block]
    """Variable family (``model.VARIABLES``) → its keys (the Pyomo index) and columns."""
    rows: dict[str, Block]
    """Constraint component (``ROW_FAMILIES``) → its keys (the Pyomo index) and rows."""
    num_cols: int
    num_rows: int
    num_nonzeros: int
    integrality: np.ndarray
    """HiGHS integrality per column (0 continuous, 1 integer), to restore after an LP solve."""
    offset: float
    pack_size: np.ndarray
    """Pack size of each order line, in the order of ``columns["packs"]``."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent building the arrays (``arrays``) and in HiGHS's ``passModel`` (``hand_off``)."""
    version: str = ""
    """HiGHS version."""
    row_duals: np.ndarray = field(default_factory=lambda: np.empty(0))
    """Row duals of the last optimal :meth:`solve_lp` (HiGHS's signs)."""

    def duals(self, families: Iterable[str]) -> dict[tuple[Any, ...], float]:
        """The last LP's row duals of the given constraint families, keyed (family, *row key)."""
        out: dict[tuple[Any, ...], float] = {}
        if not len(self.row_duals):
            return out
        for family in families:
            block = self.rows.get(family)
            if block is None:
                continue
            for key, row in zip(block.keys, block.index.tolist(), strict=True):
                out[(family, *(key if isinstance(key, tuple) else (key,)))] = float(self.row_duals[row])
        return out

    @property
    def num_integer(self) -> int:
        return int(np.count_nonzero(self.integrality))

    def __getitem__(self, family: str) -> Block:
        return self.columns[family]

    def solve_lp(self, time_limit: float, threads: int = 1) -> tuple[SolveStatus, float | None, np.ndarray]:
        """Solve the LP relaxation (integrality dropped for this solve only): status, objective and the
        column values (empty without an optimal solution)."""
        _use_threads(threads)
        highs = self.highs
        integer = np.flatnonzero(self.integrality).astype(np.int32)
        if len(integer):
            highs.changeColsIntegrality(
                len(integer), integer, np.full(len(integer), _CONTINUOUS, dtype=np.uint8)
            )
        try:
            highs.setOptionValue("threads", threads)
            highs.setOptionValue("time_limit", max(float(time_limit), 0.5))
            highs.run()
            status = highs.getModelStatus()
            if status == highspy.HighsModelStatus.kModelEmpty:  # nothing to decide: the empty plan
                return SolveStatus.OPTIMAL, self.offset, np.empty(0)
            if status == highspy.HighsModelStatus.kInfeasible:
                return SolveStatus.INFEASIBLE, None, np.empty(0)
            if status != highspy.HighsModelStatus.kOptimal:
                return SolveStatus.NO_SOLUTION, None, np.empty(0)
            solution = highs.getSolution()
            values = np.asarray(solution.col_value, dtype=float)
            self.row_duals = np.asarray(solution.row_dual, dtype=float)
            return SolveStatus.OPTIMAL, float(highs.getInfo().objective_function_value), values
        finally:
            if len(integer):
                highs.changeColsIntegrality(
                    len(integer), integer, np.full(len(integer), _INTEGER, dtype=np.uint8)
                )
            highs.clearSolver()

    def solve_milp(
        self,
        time_limit: float,
        threads: int = 1,
        mip_gap: float = 0.0,
        start: Mapping[str, np.ndarray] | None = None,
        seed: int = 0,
    ) -> tuple[SolveResult, np.ndarray]:
        """Solve the MILP with the options ``HighsSession.solve`` uses; ``start`` gives values per
        variable family (in the order of its keys; families left out start at 0) as a MIP start.
        Returns the normalised result and the column values (empty without a plan)."""
        started = time.perf_counter()
        _use_threads(threads)
        highs = self.highs
        for option, value in {
            "time_limit": float(time_limit),
            "mip_rel_gap": float(mip_gap),
            "threads": threads,
            "random_seed": seed,
            "mip_feasibility_tolerance": 1e-7,
            "primal_feasibility_tolerance": 1e-8,
        }.items():
            highs.setOptionValue(option, value)
        if start is not None:
            columns = np.zeros(self.num_cols)
            for family, values in start.items():
                columns[self.columns[family].index] = np.asarray(values, dtype=float)
            solution = highspy.HighsSolution()
            solution.col_value = columns
            solution.value_valid = True
            if highs.setSolution(solution) == highspy.HighsStatus.kError:
                logger.warning("HiGHS refused the start plan")
        highs.run()
        if (
            highs.getModelStatus() == highspy.HighsModelStatus.kModelEmpty
        ):  # nothing to decide: the empty plan
            seconds = time.perf_counter() - started
            empty = SolveResult(
                SolveStatus.OPTIMAL, "Empty", self.offset, self.offset, "highs", self.version, seconds
            )
            return empty, np.empty(0)
        result = highs_result(highs, started, self.version)
        if result.objective is None:
            return result, np.empty(0)
        return result, np.asarray(highs.getSolution().col_value, dtype=float)

    def values(self, family: str, col_values: np.ndarray) -> np.ndarray:
        """The values of one variable family, in the order of its keys."""
        return np.asarray(col_values)[self.columns[family].index]

    def plan(self, col_values: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Order lines and transfers with positive whole quantities, exactly as
        :func:`optistock.postprocess.extract.extract_plan` reads them from the Pyomo model."""
        packs = np.rint(self.values("packs", col_values)).astype(np.int64)
        keys = self.columns["packs"].keys
        order_rows = [
            (*keys[n][:3], int(keys[n][3]), int(packs[n] * self.pack_size[n]))
            for n in np.flatnonzero(packs > 0)
        ]
        orders = pd.DataFrame(
            order_rows, columns=["supplier", "sku", "warehouse", "order_period", "quantity"]
        )
        shipped = np.rint(self.values("transfer", col_values)).astype(np.int64)
        arcs = self.columns["transfer"].keys
        transfer_rows = [
            (*arcs[n][:3], int(arcs[n][3]), int(shipped[n])) for n in np.flatnonzero(shipped > 0)
        ]
        transfers = pd.DataFrame(
            transfer_rows, columns=["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"]
        )
        return orders.astype({"quantity": "int64"}), transfers.astype({"quantity": "int64"})


def supports(problem: ProblemData, sets: ModelSets) -> bool:
    """True when the model has only the core families of ``models/core.md``; False when an extension of
    ``models/extensions.md`` is present (shelf life, channel splits or costs, share rules)."""
    return not (
        sets.shelf_life or sets.waste_cells or sets.channel_splits or sets.channel_cost or sets.share_rules
    )


def _extensions_present(sets: ModelSets) -> list[str]:
    present = {
        "shelf life": bool(sets.shelf_life or sets.waste_cells),
        "channel splits": bool(sets.channel_splits),
        "channel shortage costs": bool(sets.channel_cost),
        "share rules": bool(sets.share_rules),
    }
    return [name for name, found in present.items() if found]


class _Matrix:
    """Rows collected family by family as coordinate triplets."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.blocks: dict[str, Block] = {}
        self.count = 0

    def family(self, name: str, keys: list[Any], lower: Any, upper: Any) -> int:
        """Open a family of ``len(keys)`` rows; returns its first row."""
        n = len(keys)
        first = self.count
        self.blocks[name] = Block(keys, np.arange(first, first + n, dtype=_INT))
        self.lower.append(np.broadcast_to(np.asarray(lower, dtype=float), (n,)))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=float), (n,)))
        self.count += n
        return first

    def add(self, rows: np.ndarray, cols: np.ndarray, vals: Any) -> None:
        rows = np.asarray(rows, dtype=_INT)
        self.rows.append(rows)
        self.cols.append(np.asarray(cols, dtype=_INT))
        self.vals.append(np.broadcast_to(np.asarray(vals, dtype=float), rows.shape))

    def compressed(self, num_cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Column-wise (CSC) start, index and value arrays; duplicates summed, zeros dropped."""
        rows = np.concatenate(self.rows) if self.rows else np.empty(0, dtype=_INT)
        cols = np.concatenate(self.cols) if self.cols else np.empty(0, dtype=_INT)
        vals = np.concatenate(self.vals) if self.vals else np.empty(0)
        key = cols * max(self.count, 1) + rows
        order = np.argsort(key, kind="stable")
        key, vals = key[order], vals[order]
        if len(key) > 1 and bool(np.any(key[1:] == key[:-1])):
            first = np.concatenate(([True], key[1:] != key[:-1]))
            starts = np.flatnonzero(first)
            vals = np.add.reduceat(vals, starts)
            key = key[starts]
        nonzero = vals != 0.0
        key, vals = key[nonzero], vals[nonzero]
        cols, rows = np.divmod(key, max(self.count, 1))
        start = np.zeros(num_cols + 1, dtype=_INT)
        np.cumsum(np.bincount(cols, minlength=num_cols), out=start[1:])
        return start, rows, vals


def _fromiter(values: Iterable[Any], dtype: Any, count: int) -> np.ndarray:
    return np.fromiter(values, dtype=dtype, count=count)


def _sku_values(problem: ProblemData, column: str, skus: Iterable[str]) -> dict[str, float]:
    """``problem.skus[column]`` of ``skus`` only, as a dict. A group sub-problem is built with the whole
    problem's tables: a dict of all of XL's 20,000 SKUs took about 10 ms per column and group (under a
    profiler), four of them 40 of the 180 ms of a group's sets and arrays."""
    wanted = sorted(set(skus))
    values = problem.skus[column].loc[wanted].astype(float).tolist()
    return dict(zip(wanted, values, strict=True))


def build_array_model(problem: ProblemData, sets: ModelSets) -> ArrayModel:
    """Build the model ``build_model(problem, sets)`` builds, from arrays, and load it into HiGHS."""
    if not supports(problem, sets):
        raise UnsupportedModelError(
            "the array builder builds only the core model of models/core.md; this problem needs "
            f"{', '.join(_extensions_present(sets))} (models/extensions.md): build it with "
            "optistock.backend.model.build_model instead"
        )
    started = time.perf_counter()
    lines = sets.lines
    line_keys = list(lines)
    line_data = list(lines.values())
    n_lines = len(line_keys)
    pack = _fromiter((x.pack_size for x in line_data), float, n_lines)
    moq = _fromiter((x.moq for x in line_data), float, n_lines)
    max_quantity = _fromiter((x.max_quantity for x in line_data), float, n_lines)
    max_packs = _fromiter((x.max_quantity // x.pack_size for x in line_data), float, n_lines)
    price = _fromiter((x.unit_price for x in line_data), float, n_lines)
    lane_cost = _fromiter((x.lane_cost for x in line_data), float, n_lines)
    n_segments = _fromiter((len(x.segments) for x in line_data), _INT, n_lines)
    line_period = _fromiter((key[3] for key in line_keys), _INT, n_lines)
    segmented = np.flatnonzero(n_segments > 0)
    activated = np.flatnonzero((n_segments == 0) & (moq > pack))
    plain = np.flatnonzero((n_segments == 0) & ~(moq > pack))

    # segments (s, i, w, t, k), line by line as in model.SEGMENTS
    n_seg = int(n_segments.sum())
    segment_line = np.repeat(np.arange(n_lines, dtype=_INT), n_segments)
    segment_keys = [(*line_keys[n], k) for n in segmented.tolist() for k in range(n_segments[n])]
    segments = [segment for n in segmented.tolist() for segment in line_data[n].segments]
    segment_low = _fromiter((x.low for x in segments), float, n_seg)
    segment_high = _fromiter((x.high for x in segments), float, n_seg)
    segment_price = _fromiter((x.unit_price for x in segments), float, n_seg)

    cells = sets.stock_cells
    n_cells = len(cells)
    cell_skus = {cell[0] for cell in cells}
    cell_index = {cell: n for n, cell in enumerate(cells)}
    cell_period = _fromiter((c[2] for c in cells), _INT, n_cells)
    previous = _fromiter((cell_index.get((i, w, t - 1), -1) for i, w, t in cells), _INT, n_cells)
    if bool(np.any((previous < 0) & (cell_period > 0))):
        raise ValueError("stock cells must hold every period from 0 of each (sku, warehouse)")

    purchase_orders = list(sets.purchase_orders)
    po_index = {po: n for n, po in enumerate(purchase_orders)}
    arcs = list(sets.transfer_arcs)
    n_arcs = len(arcs)
    shipping = sets.shipping_cells
    targets = problem.safety_stock
    target_items = cast("Iterable[tuple[tuple[str, str], float]]", targets.items()) if len(targets) else ()
    target_of = {(str(i), str(w)): float(q) for (i, w), q in target_items}
    protected = [c for c in cells if (c[0], c[1]) in target_of] if target_of else []

    # ---------------------------------------------------------------- columns
    sizes = {
        "packs": n_lines,
        "line_active": len(activated),
        "segment_active": n_seg,
        "segment_quantity": n_seg,
        "po_open": len(purchase_orders),
        "transfer": n_arcs,
        "stock": n_cells,
        "backorder": n_cells,
        "has_stock": len(shipping),
        "safety_shortfall": len(protected),
    }
    base: dict[str, int] = {}
    offset_so_far = 0
    for family in VARIABLES:
        base[family] = offset_so_far
        offset_so_far += sizes[family]
    num_cols = offset_so_far
    col_lower = np.zeros(num_cols)
    col_upper = np.ones(num_cols)  # binaries unless set below
    col_cost = np.zeros(num_cols)
    integrality = np.zeros(num_cols, dtype=np.uint8)

    def span(family: str) -> slice:
        return slice(base[family], base[family] + sizes[family])

    packs_col = np.arange(n_lines, dtype=_INT) + base["packs"]
    active_col = np.full(n_lines, -1, dtype=_INT)
    active_col[activated] = np.arange(len(activated), dtype=_INT) + base["line_active"]
    seg_active_col = np.arange(n_seg, dtype=_INT) + base["segment_active"]
    seg_quantity_col = np.arange(n_seg, dtype=_INT) + base["segment_quantity"]
    po_col_of = np.arange(len(purchase_orders), dtype=_INT) + base["po_open"]
    transfer_col = np.arange(n_arcs, dtype=_INT) + base["transfer"]
    stock_col = np.arange(n_cells, dtype=_INT) + base["stock"]
    backorder_col = np.arange(n_cells, dtype=_INT) + base["backorder"]
    has_stock_col = np.arange(len(shipping), dtype=_INT) + base["has_stock"]
    shortfall_col = np.arange(len(protected), dtype=_INT) + base["safety_shortfall"]

    col_upper[span("packs")] = max_packs
    integrality[span("packs")] = _INTEGER
    for family in ("line_active", "segment_active", "po_open", "has_stock"):
        integrality[span(family)] = _INTEGER
    col_upper[span("segment_quantity")] = segment_high
    col_upper[span("transfer")] = INF
    integrality[span("transfer")] = _INTEGER
    stock_upper = _fromiter((sets.stock_upper[c] for c in cells), float, n_cells)
    backorder_upper = _fromiter((sets.backorder_upper[c] for c in cells), float, n_cells)
    col_upper[span("stock")] = stock_upper
    col_upper[span("backorder")] = backorder_upper
    col_upper[span("safety_shortfall")] = _fromiter(
        (target_of[(c[0], c[1])] for c in protected), float, len(protected)
    )

    # objective: purchase + ordering + transport + transfer + holding + shortage + safety stock
    unsegmented = n_segments == 0
    packs_cost = np.where(unsegmented, price * pack, 0.0)
    packs_cost = np.where(lane_cost != 0, packs_cost + lane_cost * pack, packs_cost)
    col_cost[span("packs")] = packs_cost
    col_cost[span("segment_quantity")] = segment_price
    col_cost[span("po_open")] = _fromiter(
        (sets.order_cost[po] for po in purchase_orders), float, len(po_index)
    )
    link_cost = problem.transfer_links["cost_per_unit"]
    link_items = cast("Iterable[tuple[tuple[str, str], float]]", link_cost.items())
    link_cost_of = {(str(a), str(b)): float(c) for (a, b), c in link_items}
    col_cost[span("transfer")] = _fromiter((link_cost_of[(a[1], a[2])] for a in arcs), float, n_arcs)
    holding = _sku_values(problem, "holding_cost", cell_skus)
    shortage = _sku_values(problem, "shortage_cost", cell_skus)
    col_cost[span("stock")] = _fromiter((holding[c[0]] for c in cells), float, n_cells)
    col_cost[span("backorder")] = _fromiter((shortage[c[0]] for c in cells), float, n_cells)
    if protected:
        penalty = {str(i): float(p) for i, p in problem.shortfall_penalty.items()}
        col_cost[span("safety_shortfall")] = _fromiter(
            (penalty[c[0]] for c in protected), float, len(protected)
        )

    # ---------------------------------------------------------------- rows
    matrix = _Matrix()
    segment_start = np.concatenate(([0], np.cumsum(n_segments)[:-1])).astype(_INT)

    def line_terms(rows: np.ndarray, members: np.ndarray, kind: str, sign: float) -> None:
        """Add sign · on_l (kind "on": the line's 0/1 expression, or packs) or sign · value_l (kind
        "value") of each line ``members[n]`` to row ``rows[n]``."""
        has = n_segments[members] > 0
        counts = n_segments[members[has]]
        total = int(counts.sum())
        within = np.arange(total, dtype=_INT) - np.repeat(np.cumsum(counts) - counts, counts)
        segment = np.repeat(segment_start[members[has]], counts) + within
        segment_rows = np.repeat(rows[has], counts)
        others, other_rows = members[~has], rows[~has]
        if kind == "on":
            matrix.add(segment_rows, seg_active_col[segment], sign)
            switched = active_col[others] >= 0
            matrix.add(other_rows[switched], active_col[others[switched]], sign)
            matrix.add(other_rows[~switched], packs_col[others[~switched]], sign)
        else:
            matrix.add(segment_rows, seg_quantity_col[segment], sign * segment_price[segment])
            matrix.add(other_rows, packs_col[others], sign * (price[others] * pack[others]))

    activated_keys = [line_keys[n] for n in activated.tolist()]
    n_act = len(activated)

    # min_order_quantity: moq·line_active − m·packs ≤ 0; max_order_quantity: m·packs − U·line_active ≤ 0
    first = matrix.family("min_order_quantity", activated_keys, -INF, 0.0)
    rows = np.arange(n_act, dtype=_INT) + first
    matrix.add(rows, active_col[activated], moq[activated])
    matrix.add(rows, packs_col[activated], -pack[activated])
    first = matrix.family("max_order_quantity", activated_keys, -INF, 0.0)
    rows = np.arange(n_act, dtype=_INT) + first
    matrix.add(rows, packs_col[activated], pack[activated])
    matrix.add(rows, active_col[activated], -max_quantity[activated])

    # price segments
    segmented_keys = [line_keys[n] for n in segmented.tolist()]
    segment_row = np.full(n_lines, -1, dtype=_INT)
    segment_row[segmented] = np.arange(len(segmented), dtype=_INT)
    first = matrix.family("price_segment_choice", segmented_keys, -INF, 1.0)
    matrix.add(segment_row[segment_line] + first, seg_active_col, 1.0)
    first = matrix.family("price_segment_quantity", segmented_keys, 0.0, 0.0)
    matrix.add(np.arange(len(segmented), dtype=_INT) + first, packs_col[segmented], pack[segmented])
    matrix.add(segment_row[segment_line] + first, seg_quantity_col, -1.0)
    first = matrix.family("price_segment_low", segment_keys, -INF, 0.0)
    rows = np.arange(n_seg, dtype=_INT) + first
    matrix.add(rows, seg_active_col, segment_low)
    matrix.add(rows, seg_quantity_col, -1.0)
    first = matrix.family("price_segment_high", segment_keys, -INF, 0.0)
    rows = np.arange(n_seg, dtype=_INT) + first
    matrix.add(rows, seg_quantity_col, 1.0)
    matrix.add(rows, seg_active_col, -segment_high)

    # purchase_order_link: on_l − po_open ≤ 0, or m·packs − U·po_open ≤ 0 for lines without a 0/1
    line_po = _fromiter((po_index[(k[0], k[2], k[3])] for k in line_keys), _INT, n_lines)
    first = matrix.family("purchase_order_link", line_keys, -INF, 0.0)
    matrix.add(segment_line + first, seg_active_col, 1.0)
    matrix.add(activated + first, active_col[activated], 1.0)
    matrix.add(plain + first, packs_col[plain], pack[plain])
    matrix.add(plain + first, po_col_of[line_po[plain]], -max_quantity[plain])
    switched = np.concatenate((segmented, activated))
    matrix.add(switched + first, po_col_of[line_po[switched]], -1.0)

    # purchase_order_used: po_open − Σ on_l (or packs) ≤ 0, over each PO's lines
    line_position = {key: n for n, key in enumerate(line_keys)}
    member_po = np.repeat(
        np.arange(len(purchase_orders), dtype=_INT),
        _fromiter((len(v) for v in sets.purchase_orders.values()), _INT, len(purchase_orders)),
    )
    member_line = _fromiter(
        (line_position[k] for members in sets.purchase_orders.values() for k in members), _INT, len(member_po)
    )
    first = matrix.family("purchase_order_used", purchase_orders, -INF, 0.0)
    matrix.add(np.arange(len(purchase_orders), dtype=_INT) + first, po_col_of, 1.0)
    line_terms(member_po + first, member_line, "on", -1.0)

    # min_order_value: MOV·po_open − Σ value_l ≤ 0 for POs with a minimum
    minimum = _fromiter((sets.min_order_value[po] for po in purchase_orders), float, len(purchase_orders))
    with_minimum = np.flatnonzero(minimum > 0)
    mov_row = np.full(len(purchase_orders), -1, dtype=_INT)
    mov_row[with_minimum] = np.arange(len(with_minimum), dtype=_INT)
    first = matrix.family("min_order_value", [purchase_orders[n] for n in with_minimum.tolist()], -INF, 0.0)
    matrix.add(mov_row[with_minimum] + first, po_col_of[with_minimum], minimum[with_minimum])
    keep = mov_row[member_po] >= 0
    line_terms(mov_row[member_po[keep]] + first, member_line[keep], "value", -1.0)

    # supplier_capacity: Σ m·packs ≤ capacity for (s, t) whose lines could exceed it
    capacity = sets.supplier_capacity
    capacity_keys = sorted(capacity)
    capacity_id = {key: n for n, key in enumerate(capacity_keys)}
    line_capacity = _fromiter((capacity_id.get((k[0], k[3]), -1) for k in line_keys), _INT, n_lines)
    counted = line_capacity >= 0
    reach = np.bincount(line_capacity[counted], weights=max_quantity[counted], minlength=len(capacity_keys))
    limit = np.array([capacity[key] for key in capacity_keys], dtype=float)
    binding = np.flatnonzero(reach > limit) if len(capacity_keys) else np.empty(0, dtype=_INT)
    capacity_row = np.full(len(capacity_keys), -1, dtype=_INT)
    capacity_row[binding] = np.arange(len(binding), dtype=_INT)
    first = matrix.family(
        "supplier_capacity", [capacity_keys[n] for n in binding.tolist()], -INF, limit[binding]
    )
    capped = np.flatnonzero(counted)
    capped = capped[capacity_row[line_capacity[capped]] >= 0]
    matrix.add(capacity_row[line_capacity[capped]] + first, packs_col[capped], pack[capped])

    # budget: Σ value_l ≤ budget_t for every budget period with lines
    ordered_in = set(np.unique(line_period).tolist())
    budget_periods = [t for t in sets.budget if t in ordered_in]
    budget_row = {t: n for n, t in enumerate(budget_periods)}
    first = matrix.family(
        "budget", budget_periods, -INF, np.array([sets.budget[t] for t in budget_periods], dtype=float)
    )
    if budget_periods:
        period_row = np.full(int(line_period.max()) + 1, -1, dtype=_INT)
        for t, n in budget_row.items():
            if 0 <= t < len(period_row):
                period_row[t] = n
        budgeted = np.flatnonzero(period_row[line_period] >= 0)
        line_terms(period_row[line_period[budgeted]] + first, budgeted, "value", 1.0)

    # stock_balance: stock − backorder − (stock − backorder)[t−1] − arrivals − transfers in + transfers out
    #   = on_hand (t = 0) + open orders − demand
    on_hand = sets.on_hand
    fixed = np.zeros(n_cells)
    for cell, quantity in sets.receipts.items():
        if cell in cell_index:
            fixed[cell_index[cell]] += quantity
    for cell, quantity in sets.demand.items():
        if cell in cell_index:
            fixed[cell_index[cell]] -= quantity
    opening = _fromiter((on_hand.get((i, w), 0.0) if t == 0 else 0.0 for i, w, t in cells), float, n_cells)
    first = matrix.family("stock_balance", list(cells), opening + fixed, opening + fixed)
    rows = np.arange(n_cells, dtype=_INT) + first
    matrix.add(rows, stock_col, 1.0)
    matrix.add(rows, backorder_col, -1.0)
    later = np.flatnonzero(previous >= 0)
    matrix.add(rows[later], stock_col[previous[later]], -1.0)
    matrix.add(rows[later], backorder_col[previous[later]], 1.0)
    arrival_cell = _fromiter(
        (cell_index.get((x.sku, x.warehouse, x.arrival_period), -1) for x in line_data), _INT, n_lines
    )
    arriving = np.flatnonzero(arrival_cell >= 0)
    matrix.add(arrival_cell[arriving] + first, packs_col[arriving], -pack[arriving])
    origin = np.empty(n_arcs, dtype=_INT)
    destination = np.empty(n_arcs, dtype=_INT)
    for n, ((i, w, v, t), arrival) in enumerate(sets.transfer_arcs.items()):
        origin[n] = cell_index.get((i, w, t), -1)
        destination[n] = cell_index.get((i, v, arrival), -1)
    if bool(np.any(origin < 0)):
        raise ValueError("every transfer arc must leave from a stock cell")
    inbound = np.flatnonzero(destination >= 0)
    matrix.add(destination[inbound] + first, transfer_col[inbound], -1.0)
    matrix.add(origin + first, transfer_col, 1.0)

    # storage_capacity: Σ volume_i · stock ≤ capacity_{w,t}
    volume_of = _sku_values(problem, "unit_volume", cell_skus)
    cell_volume = _fromiter((volume_of[c[0]] for c in cells), float, n_cells)
    stored = np.flatnonzero(cell_volume > 0)
    storage_keys = sorted({(cells[n][1], cells[n][2]) for n in stored.tolist()})
    storage_id = {key: n for n, key in enumerate(storage_keys)}
    first = matrix.family(
        "storage_capacity",
        storage_keys,
        -INF,
        np.array([sets.storage_capacity[key] for key in storage_keys], dtype=float),
    )
    storage_row = _fromiter(
        (storage_id[(cells[n][1], cells[n][2])] for n in stored.tolist()), _INT, len(stored)
    )
    matrix.add(storage_row + first, stock_col[stored], cell_volume[stored])

    # transfer_availability: Σ_v transfer[i,w,v,t] − stock[i,w,t−1] ≤ 0 (t ≥ 1), ≤ on_hand (t = 0)
    ship_cells = np.unique(origin)
    if any(a >= b for a, b in itertools.pairwise(cells)):  # not sorted: order as sorted(keys)
        ship_cells = np.array(sorted(ship_cells.tolist(), key=cells.__getitem__), dtype=_INT)
    ship_row = np.full(n_cells, -1, dtype=_INT)
    ship_row[ship_cells] = np.arange(len(ship_cells), dtype=_INT)
    first_period = cell_period[ship_cells] == 0
    first = matrix.family(
        "transfer_availability",
        [cells[n] for n in ship_cells.tolist()],
        -INF,
        np.where(first_period, opening[ship_cells], 0.0),
    )
    matrix.add(ship_row[origin] + first, transfer_col, 1.0)
    drawn = ship_cells[~first_period]
    matrix.add(ship_row[drawn] + first, stock_col[previous[drawn]], -1.0)

    # stock sign: backorder + B·has_stock ≤ B; Σ_v transfer[i,w,v,t+1] − S_i·has_stock ≤ 0
    shipping_cell = _fromiter((cell_index[c] for c in shipping), _INT, len(shipping))
    next_cell = _fromiter((cell_index.get((i, w, t + 1), -1) for i, w, t in shipping), _INT, len(shipping))
    sign_bound = backorder_upper[shipping_cell]
    first = matrix.family("stock_sign_backorder", list(shipping), -INF, sign_bound)
    rows = np.arange(len(shipping), dtype=_INT) + first
    matrix.add(rows, backorder_col[shipping_cell], 1.0)
    matrix.add(rows, has_stock_col, sign_bound)
    units = network_units(sets)
    network = {i: max(units.get(i, 0.0), 1.0) for i in {c[0] for c in shipping}}
    first = matrix.family("stock_sign_shipping", list(shipping), -INF, 0.0)
    rows = np.arange(len(shipping), dtype=_INT) + first
    matrix.add(rows, has_stock_col, -_fromiter((network[c[0]] for c in shipping), float, len(shipping)))
    sign_row = np.full(n_cells, -1, dtype=_INT)
    valid_next = next_cell >= 0
    sign_row[next_cell[valid_next]] = np.flatnonzero(valid_next)
    leaving = np.flatnonzero(sign_row[origin] >= 0)
    matrix.add(sign_row[origin[leaving]] + first, transfer_col[leaving], 1.0)

    # safety_stock_target: stock + safety_shortfall ≥ SS_iw
    protected_cell = _fromiter((cell_index[c] for c in protected), _INT, len(protected))
    first = matrix.family("safety_stock_target", protected, col_upper[span("safety_shortfall")].copy(), INF)
    rows = np.arange(len(protected), dtype=_INT) + first
    matrix.add(rows, stock_col[protected_cell], 1.0)
    matrix.add(rows, shortfall_col, 1.0)

    # ---------------------------------------------------------------- hand-off
    start, index, value = matrix.compressed(num_cols)
    row_lower = np.concatenate(matrix.lower) if matrix.lower else np.empty(0)
    row_upper = np.concatenate(matrix.upper) if matrix.upper else np.empty(0)
    built = time.perf_counter()
    highs = quiet_highs()
    status = highs.passModel(
        num_cols,
        matrix.count,
        len(value),
        1,  # column-wise
        1,  # minimise
        0.0,
        col_cost,
        col_lower,
        col_upper,
        np.ascontiguousarray(row_lower),
        np.ascontiguousarray(row_upper),
        start[:num_cols].astype(np.int32),
        index.astype(np.int32),
        value,
        integrality.astype(np.int32),
    )
    if status == highspy.HighsStatus.kError:
        raise RuntimeError("HiGHS refused the array model")
    columns = {
        "packs": Block(line_keys, packs_col),
        "line_active": Block(activated_keys, active_col[activated]),
        "segment_active": Block(segment_keys, seg_active_col),
        "segment_quantity": Block(segment_keys, seg_quantity_col),
        "po_open": Block(purchase_orders, po_col_of),
        "transfer": Block(arcs, transfer_col),
        "stock": Block(list(cells), stock_col),
        "backorder": Block(list(cells), backorder_col),
        "has_stock": Block(list(shipping), has_stock_col),
        "safety_shortfall": Block(protected, shortfall_col),
    }
    return ArrayModel(
        highs=highs,
        columns=columns,
        rows=matrix.blocks,
        num_cols=num_cols,
        num_rows=matrix.count,
        num_nonzeros=len(value),
        integrality=integrality,
        offset=0.0,
        pack_size=pack.astype(np.int64),
        timings={"arrays": built - started, "hand_off": time.perf_counter() - built},
        version=".".join(str(part) for part in highs.version()),
    )
