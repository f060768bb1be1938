"""Stock valuation and inventory KPIs, checked on plans small enough to value by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import BASE_TABLES, write_scenario
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from optistock.postprocess.kpis import compute_kpis, network_valuation
from optistock.postprocess.simulate import evaluate_plan
from optistock.preprocess.data import load_problem

# One SKU; S1 sells at 2 (the lowest list price: the standard cost of the opening stock), S2 at 4.
# 10 on hand; the plan buys 10 from S2 arriving in period 0; demand 5, 10, 0, 0 (7-day periods).
TABLES: dict[str, Any] = {
    **BASE_TABLES,
    "skus": [{"sku": "A", "unit_volume": 1.0, "holding_cost": 0.1, "shortage_cost": 10.0}],
    "suppliers": [
        {"supplier": "S1", "order_cost": 0.0, "min_order_value": 0.0},
        {"supplier": "S2", "order_cost": 0.0, "min_order_value": 0.0},
    ],
    "offers": [
        {"supplier": "S1", "sku": "A", "unit_price": 2.0, "moq": 0, "order_multiple": 1, "lead_time": 0},
        {"supplier": "S2", "sku": "A", "unit_price": 4.0, "moq": 0, "order_multiple": 1, "lead_time": 0},
    ],
    "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 10}],
    "demand": [
        {"sku": "A", "warehouse": "W1", "period": t, "quantity": q} for t, q in enumerate([5, 10, 0, 0])
    ],
}
ORDERS = pd.DataFrame([{"supplier": "S2", "sku": "A", "warehouse": "W1", "order_period": 0, "quantity": 10}])
NO_TRANSFERS = pd.DataFrame(columns=["sku", "from_warehouse", "to_warehouse", "ship_period", "quantity"])


def kpis_for(tmp_path: Path, valuation: str, cover: float = 8.0) -> Any:
    path = write_scenario(tmp_path / valuation, TABLES, 4)
    yaml = YAML(typ="safe")
    document = yaml.load(path.read_text(encoding="utf-8"))
    document["kpis"] = {"valuation": valuation, "excess_cover_periods": cover}
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(document, handle)
    problem = load_problem(path)
    evaluation = evaluate_plan(problem, ORDERS, NO_TRANSFERS)
    assert evaluation.is_valid
    return compute_kpis(problem, evaluation)


def test_weighted_average_valuation_by_hand(tmp_path: Path) -> None:
    """Stock 15, 5, 5, 5. Average cost after the receipt (10·2 + 10·4) / 20 = 3: values 45, 15, 15, 15;
    cost of goods sold 20 + 40 − 45 = 15, then 30. Capital tied up 90 / 4 = 22.5; 28 days: turns
    45 · 365/28 / 22.5, days of supply 22.5 / (45 / 28) = 14."""
    kpis = kpis_for(tmp_path, "weighted_average")
    assert kpis.by_period["stock_value"].tolist() == pytest.approx([45, 15, 15, 15])
    assert kpis.by_period["cost_of_goods_sold"].tolist() == pytest.approx([15, 30, 0, 0])
    assert kpis.totals["capital_tied_up"] == pytest.approx(22.5)
    assert kpis.totals["inventory_turns"] == pytest.approx(45 * 365 / 28 / 22.5)
    assert kpis.totals["days_of_supply"] == pytest.approx(14.0)
    assert kpis.cells["unit_cost"].tolist() == pytest.approx([3, 3, 3, 3])


def test_fifo_valuation_by_hand(tmp_path: Path) -> None:
    """FIFO: the 15 left after period 0 are the 10 new units at 4 and 5 old at 2 (50); then the 5
    newest at 4 (20). Cost of goods sold 60 − 50 = 10, then 30."""
    kpis = kpis_for(tmp_path, "fifo")
    assert kpis.by_period["stock_value"].tolist() == pytest.approx([50, 20, 20, 20])
    assert kpis.by_period["cost_of_goods_sold"].tolist() == pytest.approx([10, 30, 0, 0])
    assert kpis.totals["capital_tied_up"] == pytest.approx(27.5)


def test_service_kpis_and_excess_by_hand(tmp_path: Path) -> None:
    """No backorders: fill rate 1 and every period with demand met. Average demand 15 / 4 = 3.75 per
    period; with 1 period of cover the excess is 15 − 3.75 = 11.25 in period 0, then 1.25."""
    kpis = kpis_for(tmp_path, "weighted_average", cover=1.0)
    assert kpis.totals["fill_rate"] == 1.0
    assert kpis.totals["cycle_service_level"] == 1.0
    assert kpis.totals["stockout_periods"] == 0
    assert kpis.cells["excess_units"].tolist() == pytest.approx([11.25, 1.25, 1.25, 1.25])
    days = kpis.cells["days_of_supply"].tolist()
    assert days == pytest.approx([15 / (3.75 / 7), 5 / (3.75 / 7), 5 / (3.75 / 7), 5 / (3.75 / 7)])
    total = kpis.summary[kpis.summary["level"] == "total"].iloc[0]
    assert total["demand"] == 15 and total["served_on_time"] == 15
    spend = kpis.supplier_spend.set_index("supplier")
    assert spend.loc["S2", "spend"] == 40 and spend.loc["S2", "share"] == 1.0
    assert spend.loc["S1", "spend"] == 0


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.integers(0, 20), st.floats(0.5, 10.0), st.integers(0, 20)), min_size=1, max_size=8
    ),
    opening=st.integers(0, 20),
)
def test_valuation_conserves_value(data: list[tuple[int, float, int]], opening: int) -> None:
    """Property, both methods: value(end) = value(start) + receipts − cost of goods sold (nothing is
    created or lost), the stock value is never negative, and FIFO never values stock above the dearest
    layer nor below the cheapest."""
    receipts = np.array([[float(units) for units, _, _ in data]])
    prices = np.array([[price for _, price, _ in data]])
    stock = float(opening)
    levels = []
    for units, _, issued in data:
        stock = max(stock + units - issued, 0.0)
        levels.append(stock)
    network = np.array([levels])
    for method in ("weighted_average", "fifo"):
        value, cogs = network_valuation(
            receipts, receipts * prices, np.array([float(opening)]), np.array([3.0]), network, method
        )
        assert (value >= -1e-9).all()
        assert value[0, -1] == pytest.approx(
            opening * 3.0 + float((receipts * prices).sum()) - cogs.sum(), abs=1e-6
        )
        cheapest = min(3.0, *prices[0]) if opening else float(prices[0].min())
        dearest = max(3.0, *prices[0]) if opening else float(prices[0].max())
        held = network[0] > 0
        unit = value[0, held] / network[0, held]
        assert (unit >= min(cheapest, 3.0) - 1e-9).all() and (unit <= max(dearest, 3.0) + 1e-9).all()
