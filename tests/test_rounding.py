"""Rounding an LP solution into whole order lines and transfers (``optistock.backend.heuristics``).

The rule orders where the units short until the next order would cost more than the units bought ahead
of the LP (:func:`~optistock.backend.heuristics.worth_ordering`). Checked by hand on the rule itself and
on one SKU whose LP buys one unit a period under an MOQ of four, and against the re-simulation of the
rounded plan; transfers by hand on their cumulative shipments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import BASE_TABLES, write_scenario

from optistock.backend.heuristics import round_lp_quantities, round_lp_transfers, unit_costs, worth_ordering
from optistock.backend.sets import build_sets
from optistock.postprocess.simulate import evaluate_plan
from optistock.preprocess.data import load_problem

PERIODS = 8
TRANSFER_COLUMNS = ["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"]


@pytest.mark.parametrize(
    ("behind", "whole", "later", "periods_left", "shortage", "expected"),
    [
        # mid-horizon: 1 unit short for a period (100) against 3 units held a period (3)
        (1.0, 4, 7.0, 8, 100.0, True),
        # mid-horizon, shortage cheaper than holding the overshoot: 1 × 2 < 3 × 1
        (1.0, 4, 7.0, 8, 2.0, False),
        # last period, LP buys nothing later: 0.5 short for 1 period (50) against 3.5 units bought and
        # held to the end, never used: 3.5 × (10 + 1) = 38.5
        (0.5, 4, 0.0, 1, 100.0, True),
        # the same with a cheap shortage: 0.5 against 38.5
        (0.5, 4, 0.0, 1, 1.0, False),
        # two periods left: 0.5 × 30 × 2 = 30 against 3.5 × (10 + 2) = 42
        (0.5, 4, 0.0, 2, 30.0, False),
        # ... and 0.5 × 50 × 2 = 50 against 42
        (0.5, 4, 0.0, 2, 50.0, True),
        # the LP buys 2 of the 3.5 ahead later, less than a whole order: short to the end unless ordered,
        # 0.5 × 15 × 2 = 15 against 2 × 1 + 1.5 × (10 + 2) = 20 ...
        (0.5, 4, 2.0, 2, 15.0, False),
        # ... and 0.5 × 30 × 2 = 30 against 20
        (0.5, 4, 2.0, 2, 30.0, True),
    ],
)
def test_worth_ordering_weighs_shortage_against_the_overshoot(
    behind: float, whole: int, later: float, periods_left: int, shortage: float, expected: bool
) -> None:
    """Hand-computed: holding 1 and unit cost 10 per unit throughout."""
    decision = worth_ordering(
        behind, whole, later, periods_left=periods_left, holding=1.0, shortage=shortage, unit_cost=10.0
    )
    assert decision is expected


def _one_sku(folder: Path, shortage_cost: float) -> Path:
    """SKU A, demand 1 in every period, nothing on hand, one offer: price 10, MOQ 4, lead time 0."""
    tables: dict[str, Any] = {
        **BASE_TABLES,
        "skus": [{"sku": "A", "unit_volume": 1.0, "holding_cost": 1.0, "shortage_cost": shortage_cost}],
        "offers": [
            {"supplier": "S1", "sku": "A", "unit_price": 10.0, "moq": 4, "order_multiple": 1, "lead_time": 0}
        ],
        "demand": [{"sku": "A", "warehouse": "W1", "period": t, "quantity": 1} for t in range(PERIODS)],
    }
    return write_scenario(folder, tables, PERIODS)


def _rounded(scenario: Path, lp: dict[int, float]) -> tuple[list[tuple[int, int]], float]:
    """The rounded orders (period, quantity) and the backorders of the re-simulated plan, summed."""
    problem = load_problem(scenario)
    sets = build_sets(problem)
    lp_quantity = {("S1", "A", "W1", t): lp.get(t, 0.0) for t in range(PERIODS)}
    assert set(lp_quantity) <= set(sets.lines)
    orders = round_lp_quantities(sets, lp_quantity, unit_costs(problem, ["A"]))
    evaluation = evaluate_plan(problem, orders, pd.DataFrame(columns=TRANSFER_COLUMNS))
    assert evaluation.is_valid
    rounded = sorted(zip(orders["order_period"].astype(int), orders["quantity"].astype(int), strict=True))
    return rounded, float(evaluation.inventory["backorder"].sum())


def test_an_lp_buying_one_unit_a_period_is_rounded_to_moq_orders_never_behind(tmp_path: Path) -> None:
    """The LP buys 1 a period. With shortage at 100 a unit-period and holding at 1, being a unit short
    for a period costs more than holding three units ahead, so rounding orders the MOQ of 4 in periods
    0 and 4, as soon as it falls behind; the plan is never short. (The rule before waited until it was
    two units behind: orders in periods 1 and 5, a unit short in periods 0 and 4.)"""
    assert _rounded(_one_sku(tmp_path, 100.0), dict.fromkeys(range(PERIODS), 1.0)) == ([(0, 4), (4, 4)], 0.0)


def test_a_sliver_the_lp_buys_at_the_end_is_left_short_when_shortage_is_cheap(tmp_path: Path) -> None:
    """The LP buys 4 in period 0 and 0.5 in the last period (7). Buying the MOQ of 4 there for half a
    unit costs 3.5 × (10 + 1) = 38.5 in units never used; half a unit short for that one period costs
    0.5 × 1 at a shortage cost of 1 (not ordered), 0.5 × 100 at 100 (ordered)."""
    lp = {0: 4.0, 7: 0.5}
    # backorders at the ends of periods 4 to 7: 1, 2, 3, 4 unserved; with the order arriving in 7, 0 then
    assert _rounded(_one_sku(tmp_path / "cheap", 1.0), lp) == ([(0, 4)], 1.0 + 2.0 + 3.0 + 4.0)
    assert _rounded(_one_sku(tmp_path / "dear", 100.0), lp) == ([(0, 4), (7, 4)], 1.0 + 2.0 + 3.0 + 0.0)


def test_transfers_are_rounded_on_their_cumulative_shipments() -> None:
    """The LP ships 0.4 a period on one link for five periods (2 in all): cumulative 0.4, 0.8, 1.2, 1.6
    and 2.0, rounded up 1, 1, 2, 2, 2: one unit in period 0 and one in period 2, never behind the LP.
    Rounding each transfer down shipped nothing. Another link's 2.5 in period 1 ships 3."""
    lp = {("A", "W1", "W2", t): 0.4 for t in range(5)}
    lp[("A", "W2", "W1", 1)] = 2.5
    rounded = round_lp_transfers(lp)
    assert sorted(rounded.itertuples(index=False, name=None)) == [
        ("A", "W1", "W2", 0, 1),
        ("A", "W1", "W2", 2, 1),
        ("A", "W2", "W1", 1, 3),
    ]
