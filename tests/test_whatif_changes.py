"""The what-if change vocabulary on the canonical tables: hand-checkable effects of every change kind."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import write_scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli import PERIODS, TABLES

from optistock.errors import InputError
from optistock.preprocess.tables import read_tables
from optistock.whatif.changes import Change, LocatedChange, apply_changes


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("tables")
    write_scenario(folder, TABLES, PERIODS)
    return {name: table.frame for name, table in read_tables(folder / "data").items()}


def located(document: dict[str, Any], base_dir: Path = Path(".")) -> LocatedChange:
    return LocatedChange(Change.model_validate(document), origin="test", base_dir=base_dir)


def apply(
    frames: dict[str, pd.DataFrame], *documents: dict[str, Any], classes: dict[str, list[str]] | None = None
) -> tuple[dict[str, pd.DataFrame], list[dict[str, Any]]]:
    return apply_changes(frames, [located(d) for d in documents], periods=PERIODS, classes=classes)


def demand_of(tables: dict[str, pd.DataFrame], sku: str, warehouse: str) -> list[float]:
    demand = tables["demand"]
    rows = demand[(demand["sku"] == sku) & (demand["warehouse"] == warehouse)].sort_values("period")
    return rows["quantity"].tolist()


def test_demand_scale_filtered_by_sku_warehouse_and_periods(frames: dict[str, pd.DataFrame]) -> None:
    tables, log = apply(frames, {"demand": {"scale": 2, "sku": "A", "warehouse": ["W1"], "periods": [1, 3]}})
    assert demand_of(tables, "A", "W1") == [10, 30, 40, 30, 10, 25]
    assert demand_of(tables, "A", "W2") == demand_of(frames, "A", "W2")
    assert demand_of(tables, "B", "W1") == demand_of(frames, "B", "W1")
    assert log[0]["kind"] == "demand" and "3 demand rows" in log[0]["effect"]
    assert log[0]["settings"] == {"scale": 2.0, "sku": "A", "warehouse": ["W1"], "periods": [1, 3]}


def test_demand_scale_by_class(frames: dict[str, pd.DataFrame]) -> None:
    tables, _ = apply(frames, {"demand": {"scale": 0.5, "class": "bulky"}}, classes={"bulky": ["B"]})
    assert demand_of(tables, "B", "W2") == [1, 1, 1, 1, 1, 1]
    assert demand_of(tables, "A", "W1") == demand_of(frames, "A", "W1")


def test_changes_do_not_modify_their_input(frames: dict[str, pd.DataFrame]) -> None:
    before = {name: frame.copy() for name, frame in frames.items()}
    apply(
        frames,
        {"demand": {"scale": 3}},
        {"tariff": {"percent": 50}},
        {"remove_warehouse": {"warehouse": "W2"}},
    )
    for name, frame in before.items():
        pd.testing.assert_frame_equal(frames[name], frame)


def test_lead_time_add_and_scale(frames: dict[str, pd.DataFrame]) -> None:
    tables, _ = apply(frames, {"lead_time": {"add": 2, "supplier": "S1"}})
    offers = tables["offers"].set_index(["supplier", "sku"])["lead_time"]
    assert offers.to_dict() == {("S1", "A"): 3, ("S2", "A"): 0, ("S1", "B"): 3}
    tables, _ = apply(frames, {"lead_time": {"scale": 2.5, "sku": "B"}})
    assert tables["offers"].set_index(["supplier", "sku"])["lead_time"][("S1", "B")] == 3  # 2.5 → 3
    assert tables["offers"]["lead_time"].dtype == np.int64


def test_lead_time_cannot_become_negative(frames: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(InputError, match="negative"):
        apply(frames, {"lead_time": {"add": -1}})


def test_supplier_outage_sets_capacity_zero_from_period(frames: dict[str, pd.DataFrame]) -> None:
    tables, log = apply(frames, {"supplier_outage": {"supplier": "S2", "from_period": 4}})
    rows = tables["supplier_capacity"]
    assert rows.to_dict("list") == {"supplier": ["S2", "S2"], "period": [4, 5], "capacity": [0.0, 0.0]}
    assert "periods 4..5" in log[0]["effect"]


def test_supplier_capacity_whole_horizon_and_some_periods(frames: dict[str, pd.DataFrame]) -> None:
    tables, _ = apply(frames, {"supplier_capacity": {"supplier": "S1", "units": 150}})
    assert tables["suppliers"].set_index("supplier")["capacity"]["S1"] == 150
    tables, _ = apply(
        frames, {"supplier_capacity": {"supplier": "S1", "scale": 0.5, "from_period": 2, "to_period": 3}}
    )
    assert tables["supplier_capacity"].to_dict("list") == {
        "supplier": ["S1", "S1"],
        "period": [2, 3],
        "capacity": [100.0, 100.0],
    }
    tables, _ = apply(frames, {"supplier_capacity": {"supplier": "S2", "scale": 0.5}})
    assert math.isnan(tables["suppliers"].set_index("supplier")["capacity"]["S2"])  # unlimited stays so


def test_outage_then_capacity_scale_keeps_the_outage(frames: dict[str, pd.DataFrame]) -> None:
    tables, _ = apply(
        frames,
        {"supplier_outage": {"supplier": "S1", "from_period": 5}},
        {"supplier_capacity": {"supplier": "S1", "scale": 2}},
    )
    assert tables["suppliers"].set_index("supplier")["capacity"]["S1"] == 400
    assert tables["supplier_capacity"]["capacity"].tolist() == [0.0]


def test_tariff_changes_offers_and_price_breaks_of_one_supplier(frames: dict[str, pd.DataFrame]) -> None:
    tables, _ = apply(frames, {"tariff": {"percent": 25, "supplier": "S1"}})
    prices = tables["offers"].set_index(["supplier", "sku"])["unit_price"]
    assert prices.to_dict() == {("S1", "A"): 5.0, ("S2", "A"): 4.4, ("S1", "B"): 11.25}
    assert tables["price_breaks"]["unit_price"].tolist() == [4.5]


def test_budget_amount_scale_and_total(frames: dict[str, pd.DataFrame]) -> None:
    tables, _ = apply(frames, {"budget": {"amount": 100, "periods": [4, 5]}})
    assert tables["budget"]["amount"].tolist() == [800, 800, 800, 800, 100, 100]
    tables, _ = apply(frames, {"budget": {"scale": 0.25}})
    assert tables["budget"]["amount"].tolist() == [200] * 6
    tables, _ = apply(frames, {"budget": {"amount": 100, "periods": [0, 0]}}, {"budget": {"total": 1100}})
    # spread in proportion to the budget there: 100 : 800 × 5
    assert tables["budget"]["amount"].tolist() == pytest.approx([1100 / 41] + [8800 / 41] * 5)


def test_budget_total_without_a_budget_is_spread_evenly(frames: dict[str, pd.DataFrame]) -> None:
    without = {name: frame for name, frame in frames.items() if name != "budget"}
    tables, _ = apply(without, {"budget": {"total": 600, "periods": [0, 2]}})
    assert tables["budget"].to_dict("list") == {"period": [0, 1, 2], "amount": [200.0, 200.0, 200.0]}
    with pytest.raises(InputError, match="no budget"):
        apply(without, {"budget": {"scale": 0.9}})


def test_warehouse_capacity(frames: dict[str, pd.DataFrame]) -> None:
    tables, _ = apply(frames, {"warehouse_capacity": {"scale": 0.5}})
    assert tables["warehouses"]["capacity"].tolist() == [250, 150]
    tables, _ = apply(frames, {"warehouse_capacity": {"warehouse": "W2", "volume": 42}})
    assert tables["warehouses"]["capacity"].tolist() == [500, 42]


def test_remove_warehouse_drops_everything_that_refers_to_it(frames: dict[str, pd.DataFrame]) -> None:
    tables, log = apply(frames, {"remove_warehouse": {"warehouse": "W2"}})
    assert tables["warehouses"]["warehouse"].tolist() == ["W1"]
    assert set(tables["demand"]["warehouse"]) == {"W1"}
    assert tables["transfers"].empty
    assert set(tables["inventory"]["warehouse"]) == {"W1"}
    assert "(47 units of demand)" in log[0]["effect"]  # A: 35 and B: 12 units at W2


def test_remove_transfer_link(frames: dict[str, pd.DataFrame]) -> None:
    tables, _ = apply(frames, {"remove_transfer": {"from_warehouse": "W1", "to_warehouse": "W2"}})
    assert tables["transfers"][["from_warehouse", "to_warehouse"]].values.tolist() == [["W2", "W1"]]
    with pytest.raises(InputError, match="no transfer link W1 -> W1"):
        apply(frames, {"remove_transfer": {"from_warehouse": "W1", "to_warehouse": "W1"}})


def test_replace_table(frames: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    (tmp_path / "peak.csv").write_text("sku,warehouse,period,quantity\nA,W1,0,99\n", encoding="utf-8")
    tables, log = apply_changes(
        frames,
        [located({"replace_table": {"table": "demand", "file": "peak.csv"}}, base_dir=tmp_path)],
        periods=PERIODS,
    )
    assert tables["demand"]["quantity"].tolist() == [99]
    assert "1 rows" in log[0]["effect"]


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"demand": {"scale": 1.1, "sku": ["A", "Z"]}}, "unknown sku 'Z'"),
        ({"demand": {"scale": 1.1, "warehouse": "W9"}}, "unknown warehouse 'W9'"),
        ({"demand": {"scale": 1.1, "class": "fast"}}, "unknown class 'fast'"),
        ({"demand": {"scale": 1.1, "periods": [2, 6]}}, "outside the horizon"),
        ({"tariff": {"percent": 5, "supplier": "S7"}}, "unknown supplier 'S7'"),
        ({"supplier_outage": {"supplier": "S3"}}, "unknown supplier 'S3'"),
        ({"supplier_outage": {"supplier": "S1", "from_period": 6}}, "outside the horizon"),
        ({"supplier_outage": {"supplier": "S1", "from_period": 3, "to_period": 2}}, "before from_period"),
        ({"remove_warehouse": {"warehouse": "W3"}}, "unknown warehouse 'W3'"),
        ({"replace_table": {"table": "demand", "file": "nowhere.csv"}}, "file not found"),
    ],
)
def test_bad_names_are_input_errors(
    frames: dict[str, pd.DataFrame], document: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(InputError) as caught:
        apply(frames, document)
    assert fragment in str(caught.value)


# --------------------------------------------------------------------------------------------------
# properties of the vocabulary
# --------------------------------------------------------------------------------------------------

FACTORS = st.floats(min_value=0.05, max_value=20, allow_nan=False)
SKUS = st.sampled_from([None, "A", "B", ["A", "B"]])
WAREHOUSES = st.sampled_from([None, "W1", "W2", ["W1", "W2"]])
PERIOD_RANGES = st.one_of(
    st.none(), st.tuples(st.integers(0, PERIODS - 1), st.integers(0, PERIODS - 1)).map(lambda p: sorted(p))
)


def _selector(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(FACTORS, SKUS, WAREHOUSES, PERIOD_RANGES)
def test_demand_scale_then_its_inverse_restores_demand(
    frames: dict[str, pd.DataFrame], factor: float, sku: Any, warehouse: Any, periods: Any
) -> None:
    selector = _selector(sku=sku, warehouse=warehouse, periods=periods)
    scaled, _ = apply(frames, {"demand": {"scale": factor, **selector}})
    restored, _ = apply(scaled, {"demand": {"scale": 1 / factor, **selector}})
    np.testing.assert_allclose(restored["demand"]["quantity"], frames["demand"]["quantity"], rtol=1e-12)
    changed = ~np.isclose(scaled["demand"]["quantity"], frames["demand"]["quantity"])
    demand = frames["demand"]
    selected = np.ones(len(demand), dtype=bool)
    if sku is not None:
        selected &= demand["sku"].isin([sku] if isinstance(sku, str) else sku).to_numpy()
    if warehouse is not None:
        selected &= (
            demand["warehouse"].isin([warehouse] if isinstance(warehouse, str) else warehouse).to_numpy()
        )
    if periods is not None:
        selected &= demand["period"].between(*periods).to_numpy()
    assert not (changed & ~selected).any()  # nothing outside the filters moves


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.sampled_from(
        [
            {"demand": {"scale": 1.0}},
            {"tariff": {"percent": 0}},
            {"lead_time": {"add": 0}},
            {"lead_time": {"scale": 1.0}},
            {"budget": {"scale": 1.0}},
            {"warehouse_capacity": {"scale": 1.0}},
            {"supplier_capacity": {"supplier": ["S1", "S2"], "scale": 1.0}},
        ]
    ),
    SKUS,
)
def test_neutral_changes_change_nothing(
    frames: dict[str, pd.DataFrame], document: dict[str, Any], sku: Any
) -> None:
    kind = next(iter(document))
    if sku is not None and kind in ("demand", "tariff", "lead_time"):
        document = {kind: {**document[kind], "sku": sku}}
    tables, _ = apply(frames, document)
    assert set(tables) == set(frames)
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(tables[name], frame, check_dtype=False)


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.floats(min_value=-90, max_value=200), st.floats(min_value=-90, max_value=200))
def test_tariffs_compound(frames: dict[str, pd.DataFrame], first: float, second: float) -> None:
    tables, _ = apply(frames, {"tariff": {"percent": first}}, {"tariff": {"percent": second}})
    expected = frames["offers"]["unit_price"] * (1 + first / 100) * (1 + second / 100)
    np.testing.assert_allclose(tables["offers"]["unit_price"], expected, rtol=1e-12)
