"""Tiny hand-checkable cases, one per rule of the data contract.

Each case is small enough to work out by hand; the expected plan or cost is derived in the docstring.
Every solve also goes through the independent checker (see ``planning.solve``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyomo.environ as pyo
import pytest
from conftest import BASE_TABLES, write_scenario
from planning import demand_rows, orders_of, solve, summary_of, transfers_of

from optistock.backend.model import build_model
from optistock.backend.sets import build_sets
from optistock.backend.strategy import Optimiser, OverdrawWatch
from optistock.errors import InfeasibleError
from optistock.postprocess.extract import ORDER_COLUMNS, TRANSFER_COLUMNS, empty_plan, extract_plan
from optistock.postprocess.simulate import evaluate_plan
from optistock.preprocess.data import load_problem


def sku(name: str = "A", volume: float = 1.0, holding: float = 0.1, shortage: float = 100.0) -> dict:
    return {"sku": name, "unit_volume": volume, "holding_cost": holding, "shortage_cost": shortage}


def offer(
    supplier: str = "S1",
    sku_name: str = "A",
    price: float = 10.0,
    moq: int = 0,
    multiple: int = 1,
    lead: int = 0,
) -> dict:
    return {
        "supplier": supplier,
        "sku": sku_name,
        "unit_price": price,
        "moq": moq,
        "order_multiple": multiple,
        "lead_time": lead,
    }


def supplier(
    name: str = "S1", order_cost: float = 0.0, min_value: float = 0.0, capacity: float | None = None
) -> dict:
    row = {"supplier": name, "order_cost": order_cost, "min_order_value": min_value}
    row["capacity"] = "" if capacity is None else capacity
    return row


def test_moq_raises_the_order(tmp_path: Path) -> None:
    """Demand 30, MOQ 50, shortage 100/unit/period: buy 50 at 10 (500), hold 20 for 2 periods at 1 (40)."""
    _, out, check = solve(
        tmp_path, {"offers": [offer(moq=50)], "demand": demand_rows("A", "W1", [30, 0])}, periods=2
    )
    orders = orders_of(out)
    assert orders["quantity"].tolist() == [50]
    assert check.total == pytest.approx(500 + 1.0 * 20 * 2)


def test_order_multiple_rounds_up_to_whole_packs(tmp_path: Path) -> None:
    """Demand 30, packs of 12: 36 units (3 packs), 6 left over."""
    _, out, _ = solve(
        tmp_path, {"offers": [offer(multiple=12)], "demand": demand_rows("A", "W1", [30])}, periods=1
    )
    assert orders_of(out)["quantity"].tolist() == [36]


def test_price_break_makes_buying_more_cheaper(tmp_path: Path) -> None:
    """Demand 90 at 10 = 900; 100 at the break price 8 = 800 plus 10 units held (1 each): buy 100."""
    _, out, check = solve(
        tmp_path,
        {
            "offers": [offer()],
            "price_breaks": [{"supplier": "S1", "sku": "A", "min_quantity": 100, "unit_price": 8.0}],
            "demand": demand_rows("A", "W1", [90]),
        },
        periods=1,
    )
    orders = orders_of(out)
    assert orders["quantity"].tolist() == [100]
    assert orders["unit_price"].tolist() == [8.0]
    assert check.total == pytest.approx(800 + 10.0)


def test_highest_price_break_applies(tmp_path: Path) -> None:
    """Breaks at 50 (9) and 100 (7): a quantity of 120 is priced at 7, not 9."""
    _, out, _ = solve(
        tmp_path,
        {
            "offers": [offer()],
            "price_breaks": [
                {"supplier": "S1", "sku": "A", "min_quantity": 50, "unit_price": 9.0},
                {"supplier": "S1", "sku": "A", "min_quantity": 100, "unit_price": 7.0},
            ],
            "demand": demand_rows("A", "W1", [120]),
        },
        periods=1,
    )
    assert orders_of(out)[["quantity", "unit_price"]].values.tolist() == [[120, 7.0]]


def test_purchase_order_fixed_cost_is_shared_by_its_lines(tmp_path: Path) -> None:
    """Two SKUs from one supplier to one warehouse in one period: one PO, order cost paid once."""
    _, out, check = solve(
        tmp_path,
        {
            "skus": [sku("A"), sku("B")],
            "suppliers": [supplier(order_cost=50.0)],
            "offers": [offer(sku_name="A"), offer(sku_name="B")],
            "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 0}],
            "demand": demand_rows("A", "W1", [10]) + demand_rows("B", "W1", [20]),
        },
        periods=1,
    )
    pos = (out / "purchase_orders.csv").read_text().strip().splitlines()
    assert len(pos) == 2  # header + one PO
    assert check.costs["ordering"] == pytest.approx(50.0)
    assert summary_of(out)["plan"]["order_lines"] == 2


def test_min_order_value_forces_a_larger_order(tmp_path: Path) -> None:
    """Demand 30 at 10 = 300 but the supplier's minimum order is 500: order 50 (cheaper than 30 short)."""
    _, out, _ = solve(
        tmp_path,
        {
            "suppliers": [supplier(min_value=500.0)],
            "offers": [offer()],
            "demand": demand_rows("A", "W1", [30]),
        },
        periods=1,
    )
    assert orders_of(out)["quantity"].tolist() == [50]


def test_supplier_capacity_splits_orders_over_periods(tmp_path: Path) -> None:
    """100 units needed in period 1, the supplier delivers at most 60 per period: 40 + 60 (or 60 + 40)."""
    _, out, _ = solve(
        tmp_path,
        {
            "suppliers": [supplier(capacity=60)],
            "offers": [offer()],
            "demand": demand_rows("A", "W1", [0, 100]),
        },
        periods=2,
    )
    orders = orders_of(out)
    assert orders["quantity"].sum() == 100
    assert orders.groupby("order_period")["quantity"].sum().max() <= 60


def test_budget_limits_spend_per_period(tmp_path: Path) -> None:
    """Budget 300 per period at price 10: at most 30 units per period; 80 units due in period 2 need all
    three periods (30 + 30 + 20) and nothing is short."""
    _, out, check = solve(
        tmp_path,
        {
            "offers": [offer()],
            "budget": [{"period": t, "amount": 300.0} for t in range(3)],
            "demand": demand_rows("A", "W1", [0, 0, 80]),
        },
        periods=3,
    )
    spend = orders_of(out).groupby("order_period")["line_value"].sum()
    assert spend.max() <= 300 + 1e-9
    assert check.costs["shortage"] == 0.0


def test_storage_capacity_caps_end_stock(tmp_path: Path) -> None:
    """Warehouse holds 10 volume units, unit volume 2, high order cost: never more than 5 units held."""
    _, _, check = solve(
        tmp_path,
        {
            "skus": [sku(volume=2.0)],
            "warehouses": [{"warehouse": "W1", "capacity": 10.0}],
            "suppliers": [supplier(order_cost=1000.0)],
            "offers": [offer()],
            "demand": demand_rows("A", "W1", [4, 4, 4, 4]),
        },
        periods=4,
    )
    assert max(stock for stock, _ in check.stock.values()) <= 5 + 1e-9


def test_lead_time_and_transit_delay_arrival(tmp_path: Path) -> None:
    """Lead time 1 + transit 1: an order in period t arrives in t + 2; demand in periods 0 and 1 cannot be
    met and is backordered (10 short in period 0, 20 in period 1) until the arrival in period 2."""
    _, out, check = solve(
        tmp_path,
        {
            "offers": [offer(lead=1)],
            "lanes": [{"supplier": "S1", "warehouse": "W1", "transit_time": 1, "cost_per_unit": 0.5}],
            "demand": demand_rows("A", "W1", [10, 10, 10]),
        },
        periods=3,
    )
    orders = orders_of(out)
    assert orders["arrival_period"].tolist() == [2]
    assert orders["quantity"].tolist() == [30]
    assert check.costs["shortage"] == pytest.approx(100 * (10 + 20))
    assert check.costs["transport"] == pytest.approx(0.5 * 30)


def test_lanes_restrict_which_warehouses_a_supplier_reaches(tmp_path: Path) -> None:
    """Only S2 has a lane to W1, although S1 is cheaper: the order goes to S2."""
    _, out, _ = solve(
        tmp_path,
        {
            "suppliers": [supplier("S1"), supplier("S2")],
            "offers": [offer("S1", price=5.0), offer("S2", price=10.0)],
            "lanes": [{"supplier": "S2", "warehouse": "W1", "transit_time": 0, "cost_per_unit": 0.0}],
            "demand": demand_rows("A", "W1", [10]),
        },
        periods=1,
    )
    assert orders_of(out)["supplier"].tolist() == ["S2"]


def test_transfer_moves_stock_between_warehouses(tmp_path: Path) -> None:
    """W2 holds 100, W1 needs 50 from period 1 and no supplier reaches W1: ship 50 in period 0 (lead 1)."""
    _, out, check = solve(
        tmp_path,
        {
            "warehouses": [{"warehouse": "W1", "capacity": 1e6}, {"warehouse": "W2", "capacity": 1e6}],
            "lanes": [{"supplier": "S1", "warehouse": "W2", "transit_time": 0, "cost_per_unit": 0.0}],
            "transfers": [
                {"from_warehouse": "W2", "to_warehouse": "W1", "lead_time": 1, "cost_per_unit": 1.0}
            ],
            "inventory": [{"sku": "A", "warehouse": "W2", "on_hand": 100}],
            "demand": demand_rows("A", "W1", [0, 50]),
        },
        periods=2,
    )
    transfers = transfers_of(out)
    assert transfers[["ship_period", "arrival_period", "quantity"]].values.tolist() == [[0, 1, 50]]
    assert check.costs["shortage"] == 0.0
    assert orders_of(out).empty


PHANTOM_STOCK: dict = {
    "skus": [sku(holding=1.0, shortage=100.0)],
    "warehouses": [{"warehouse": "W1", "capacity": 1e6}, {"warehouse": "W2", "capacity": 1e6}],
    "offers": [offer(price=1.0, lead=1)],
    "lanes": [{"supplier": "S1", "warehouse": "W1", "transit_time": 0, "cost_per_unit": 0.0}],
    "transfers": [{"from_warehouse": "W1", "to_warehouse": "W2", "lead_time": 1, "cost_per_unit": 0.0}],
    "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 0}],
    "demand": [
        *demand_rows("A", "W1", [10, 0, 0, 0]),
        {"sku": "A", "warehouse": "W2", "period": 2, "quantity": 50},
    ],
}
"""W1 is backordered at the end of period 0 (demand 10, nothing on hand, supply takes one period); W2
needs 50 in period 2 and is supplied only from W1 (one period in transit). The optimum orders 60 in
period 0 and ships 50 in period 2, the first period after they arrive: 60 bought, 10 short in period
0 (1,000), 50 held in period 1 (50), 50 short at W2 in period 2 (5,000): 6,110. Shipping them in
period 1 instead, from 'phantom' stock, would serve W2 in time."""

PHANTOM_OPTIMUM = 60 + 1_000 + 50 + 5_000


def test_a_warehouse_never_ships_stock_it_does_not_have(tmp_path: Path) -> None:
    """W1 of :data:`PHANTOM_STOCK` cannot ship in period 1: stock and backorder must not both be
    positive. The plan ships the 50 in period 2 and costs 6,110, the optimum."""
    _, out, check = solve(tmp_path, PHANTOM_STOCK, periods=4)
    transfers = transfers_of(out)
    assert transfers[["ship_period", "quantity"]].values.tolist() == [[2, 50]]
    assert check.total == pytest.approx(PHANTOM_OPTIMUM)


def test_a_plan_on_phantom_stock_is_repaired_at_no_cost(tmp_path: Path) -> None:
    """The MILP without stock-sign binaries (``models/core.md`` §8) accepts the phantom plan of
    :data:`PHANTOM_STOCK`: 50 shipped in period 1, W1 carrying 50 in stock and 60 in backorder at the
    end of period 0 (50 + 6,000) and nothing after, and W2 served in time: 60 + 6,050 = 6,110, a tie
    with the optimum. Repaired, its transfer waits a period for W1's stock: the optimum itself, which
    the optimiser keeps in place of the empty plan it had."""
    problem = load_problem(write_scenario(tmp_path, {**BASE_TABLES, **PHANTOM_STOCK}, periods=4))
    optimiser = Optimiser(problem, problem.scenario.solver)
    optimiser._offer(evaluate_plan(problem, *empty_plan()))
    orders = pd.DataFrame([("S1", "A", "W1", 0, 60)], columns=ORDER_COLUMNS)
    transfers = pd.DataFrame([("A", "W1", "W2", 1, 50)], columns=TRANSFER_COLUMNS)
    assert evaluate_plan(problem, orders, transfers).overdrawn == [("A", "W1", 1)]
    optimiser._offer_repaired(orders, transfers)
    assert optimiser.incumbent is not None and optimiser.incumbent.is_valid
    assert optimiser.incumbent.total_cost == pytest.approx(PHANTOM_OPTIMUM)
    assert optimiser.incumbent.transfers[["ship_period", "quantity"]].values.tolist() == [[2, 50]]


@pytest.mark.parametrize(
    ("ship_period", "objective", "stops"),
    [(1, PHANTOM_OPTIMUM, False), (1, PHANTOM_OPTIMUM - 110.0, True), (2, PHANTOM_OPTIMUM, False)],
)
def test_the_milp_search_stops_only_where_phantom_stock_pays(
    tmp_path: Path, ship_period: int, objective: float, stops: bool
) -> None:
    """:class:`OverdrawWatch` on the full model of :data:`PHANTOM_STOCK`, built without stock-sign
    binaries. A plan shipping the 50 units in period 1 overdraws W1; repaired, it is the optimum, which
    becomes the incumbent. If the search valued that plan at its repaired cost (a tie), the search goes
    on; if at 110 less (phantom stock paying), it stops, naming the binary of W1 in period 0 that rules
    the plan out. A plan shipping in period 2 overdraws nothing and is left to the search (nothing is
    repaired or offered)."""
    problem = load_problem(write_scenario(tmp_path, {**BASE_TABLES, **PHANTOM_STOCK}, periods=4))
    optimiser = Optimiser(problem, problem.scenario.solver)
    optimiser._offer(evaluate_plan(problem, *empty_plan()))
    model = build_model(problem, build_sets(problem))
    plan = {("S1", "A", "W1", 0): 60.0, ("A", "W1", "W2", ship_period): 50.0}

    def value_of(var: pyo.Var) -> float:
        return plan.get(var.index(), 0.0)

    watch = OverdrawWatch(optimiser, model, known=set())
    assert watch(value_of, objective) is stops
    assert watch.cells == ({("A", "W1", 0)} if stops else set())
    assert watch.saw(*extract_plan(model, value_of)) is (ship_period == 1)  # not repaired again after
    assert optimiser.incumbent is not None
    # the repaired optimum, or (nothing repaired) still the empty plan: 10 short at W1 for 4 periods and
    # 50 at W2 for 2, at 100 a unit and period
    empty = 100 * (10 * 4 + 50 * 2)
    assert optimiser.incumbent.total_cost == pytest.approx(PHANTOM_OPTIMUM if ship_period == 1 else empty)


def test_backorders_accumulate_and_are_served_later(tmp_path: Path) -> None:
    """No offer arrives before period 2: 5 + 10 units short in periods 0 and 1, then all served."""
    _, _, check = solve(
        tmp_path,
        {"offers": [offer(lead=2)], "demand": demand_rows("A", "W1", [5, 5, 5])},
        periods=3,
    )
    assert check.stock[("A", "W1", 0)] == (0.0, 5.0)
    assert check.stock[("A", "W1", 1)] == (0.0, 10.0)
    assert check.stock[("A", "W1", 2)] == (0.0, 0.0)
    assert check.costs["shortage"] == pytest.approx(100 * 15)


def test_open_orders_arrive_for_sure_and_are_not_reordered(tmp_path: Path) -> None:
    """An open order of 40 arriving in period 1 covers demand 40 there: nothing new is ordered."""
    _, out, check = solve(
        tmp_path,
        {
            "open_orders": [
                {"supplier": "S1", "sku": "A", "warehouse": "W1", "arrival_period": 1, "quantity": 40}
            ],
            "demand": demand_rows("A", "W1", [0, 40]),
        },
        periods=2,
    )
    assert orders_of(out).empty
    assert check.total == 0.0


def test_orders_arriving_after_the_horizon_are_not_allowed(tmp_path: Path) -> None:
    """Lead time 2 in a 2-period horizon: no order can arrive, the demand stays short, and a warning
    says so."""
    _, out, check = solve(
        tmp_path, {"offers": [offer(lead=2)], "demand": demand_rows("A", "W1", [0, 5])}, periods=2
    )
    assert orders_of(out).empty
    assert check.costs["shortage"] == pytest.approx(500)
    assert any("never arrives" in warning for warning in summary_of(out)["warnings"])


def test_cheaper_supplier_wins_and_split_follows_capacity(tmp_path: Path) -> None:
    """S1 costs 8 but delivers at most 30 per period, S2 costs 9: 30 from S1, the remaining 20 from S2."""
    _, out, _ = solve(
        tmp_path,
        {
            "suppliers": [supplier("S1", capacity=30), supplier("S2")],
            "offers": [offer("S1", price=8.0), offer("S2", price=9.0)],
            "demand": demand_rows("A", "W1", [50]),
        },
        periods=1,
    )
    by_supplier = orders_of(out).groupby("supplier")["quantity"].sum().to_dict()
    assert by_supplier == {"S1": 30, "S2": 20}


def test_infeasible_fixed_inputs_are_named(tmp_path: Path) -> None:
    """On-hand stock of 200 volume units in a warehouse that holds 100, nowhere to ship it: infeasible,
    and the message names the storage limit, the warehouse, the period and the amounts."""
    with pytest.raises(InfeasibleError) as error:
        solve(
            tmp_path,
            {
                "warehouses": [{"warehouse": "W1", "capacity": 100.0}],
                "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 200}],
                "demand": demand_rows("A", "W1", [0, 0]),
            },
            periods=2,
        )
    message = str(error.value)
    assert "storage capacity" in message and "W1" in message and "period 0" in message and "200" in message
    assert not (tmp_path / "out").exists()
