"""Textbook instances with published optimal values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from planning import demand_rows, orders_of, solve


def uncapacitated_lot_sizing(
    order_cost: float, holding: float, shortage: float, demand: list[float]
) -> dict[str, Any]:
    """One SKU, one supplier, one warehouse, no lead time, free units: only K and h matter."""
    return {
        "skus": [{"sku": "A", "unit_volume": 1.0, "holding_cost": holding, "shortage_cost": shortage}],
        "suppliers": [{"supplier": "S1", "order_cost": order_cost, "min_order_value": 0.0}],
        "offers": [
            {"supplier": "S1", "sku": "A", "unit_price": 0.0, "moq": 0, "order_multiple": 1, "lead_time": 0}
        ],
        "demand": demand_rows("A", "W1", demand),
    }


def test_wagner_whitin_example(tmp_path: Path) -> None:
    """Wagner–Whitin (one SKU, one supplier, one warehouse, no lead time): K = 500 per order, h = 2 per unit
    and period, demand 90, 120, 80, 70. The optimal plan orders 210 in period 0 (covering periods 0–1)
    and 150 in period 2 (covering 2–3): cost 2·500 + 2·(120 + 70) = 1380."""
    result, out, check = solve(
        tmp_path, uncapacitated_lot_sizing(500.0, 2.0, 1000.0, [90, 120, 80, 70]), periods=4
    )
    assert check.total == pytest.approx(1380.0)
    assert result.summary["status"] == "optimal"
    assert result.summary["gap"] == pytest.approx(0.0, abs=1e-6)
    orders = orders_of(out)
    assert orders[["order_period", "quantity"]].values.tolist() == [[0, 210], [2, 150]]


@pytest.mark.parametrize(
    ("order_cost", "holding", "demand", "expected"),
    [
        # Silver–Meal style checks worked by hand: with K small every period is ordered separately,
        # with K large one order covers the whole horizon.
        (10.0, 1.0, [20, 20, 20], 30.0),  # three orders: 3·10
        (1000.0, 1.0, [20, 20, 20], 1000.0 + 20 * 1 + 20 * 2),  # one order of 60: K + holding 20 + 40
    ],
)
def test_lot_sizing_extremes(
    tmp_path: Path, order_cost: float, holding: float, demand: list[float], expected: float
) -> None:
    _, _, check = solve(
        tmp_path, uncapacitated_lot_sizing(order_cost, holding, 1e4, demand), periods=len(demand)
    )
    assert check.total == pytest.approx(expected)
