"""Bad input: every problem with the scenario YAML or an input table gives one clear line on stderr naming
the file, the line (CSV, header = line 1; YAML) or row (Parquet, 1-based), and the field; exit code 2; and
nothing written to ``--out``. Legal but unusable data gives warnings (exit 0) instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from optistock.cli import main

Factory = Callable[..., Path]

# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------

LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING) ")


def sku(name: str = "A", **changes: Any) -> dict[str, Any]:
    return {"sku": name, "unit_volume": 1.0, "holding_cost": 1.0, "shortage_cost": 100.0, **changes}


def warehouse(name: str = "W1", **changes: Any) -> dict[str, Any]:
    return {"warehouse": name, "capacity": 1e6, **changes}


def supplier(name: str = "S1", **changes: Any) -> dict[str, Any]:
    return {"supplier": name, "order_cost": 0.0, "min_order_value": 0.0, **changes}


def offer(supplier: str = "S1", sku: str = "A", **changes: Any) -> dict[str, Any]:
    return {
        "supplier": supplier,
        "sku": sku,
        "unit_price": 1.0,
        "moq": 0,
        "order_multiple": 1,
        "lead_time": 0,
        **changes,
    }


def demand(sku: str = "A", warehouse: str = "W1", period: Any = 0, quantity: Any = 5.0) -> dict[str, Any]:
    return {"sku": sku, "warehouse": warehouse, "period": period, "quantity": quantity}


def inventory(sku: str = "A", warehouse: str = "W1", on_hand: Any = 0.0) -> dict[str, Any]:
    return {"sku": sku, "warehouse": warehouse, "on_hand": on_hand}


def price_break(
    min_quantity: Any, unit_price: Any = 0.9, supplier: str = "S1", sku: str = "A"
) -> dict[str, Any]:
    return {"supplier": supplier, "sku": sku, "min_quantity": min_quantity, "unit_price": unit_price}


def lane(supplier: str = "S1", warehouse: str = "W1", **changes: Any) -> dict[str, Any]:
    return {"supplier": supplier, "warehouse": warehouse, "transit_time": 0, "cost_per_unit": 0.0, **changes}


def transfer(source: str = "W1", target: str = "W2", **changes: Any) -> dict[str, Any]:
    return {"from_warehouse": source, "to_warehouse": target, "lead_time": 1, "cost_per_unit": 0.1, **changes}


def open_order(
    supplier: str = "S1", sku: str = "A", warehouse: str = "W1", arrival_period: Any = 1, quantity: Any = 3.0
) -> dict[str, Any]:
    return {
        "supplier": supplier,
        "sku": sku,
        "warehouse": warehouse,
        "arrival_period": arrival_period,
        "quantity": quantity,
    }


def budget(period: Any = 0, amount: Any = 100.0) -> dict[str, Any]:
    return {"period": period, "amount": amount}


TWO_WAREHOUSES = [warehouse("W1"), warehouse("W2")]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def run_cli(scenario: Path, out: Path) -> Result:
    return invoke("run", scenario, "--out", out)


def out_folder(scenario: Path) -> Path:
    return scenario.parent / "runs" / "out"


def error_line(result: Result) -> str:
    """The single ``error:`` line of a failed command; anything else on stderr may only be log records."""
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    others = [line for line in lines if not line.startswith("error:") and not LOG_RECORD.match(line)]
    assert others == [], f"more than one line of error text: {result.stderr!r}"
    assert "unexpected" not in errors[0], errors[0]
    return errors[0]


def assert_nothing_written(out: Path) -> None:
    assert not out.exists(), f"{out} was written"
    if out.parent.exists():
        leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
        assert leftovers == [], leftovers


def run_bad(scenario: Path) -> str:
    """Run ``optistock run`` on a bad scenario: exit 2, one error line, nothing written; returns the line."""
    out = out_folder(scenario)
    result = run_cli(scenario, out)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    line = error_line(result)
    assert_nothing_written(out)
    return line


def assert_located(
    message: str, file: str, *, line: int | None = None, row: int | None = None, field: str | None = None
) -> None:
    """``message`` names ``file`` followed directly by its line or row, and the field."""
    assert file in message, message
    if line is not None:
        assert re.search(rf"{re.escape(file)}, line {line}\b", message), message
        assert not re.search(r"\brow \d", message), message
    if row is not None:
        assert re.search(rf"{re.escape(file)}, row {row}\b", message), message
        assert not re.search(r"\bline \d", message), message
    if field is not None:
        assert f"field '{field}'" in message, message


def data_dir(scenario: Path) -> Path:
    return scenario.parent / "data"


def as_parquet(scenario: Path, table: str, frame: pd.DataFrame) -> None:
    """Replace ``table``'s CSV by a Parquet file holding ``frame``."""
    folder = data_dir(scenario)
    (folder / f"{table}.csv").unlink(missing_ok=True)
    frame.to_parquet(folder / f"{table}.parquet", index=False)


def summary_of(scenario: Path) -> dict[str, Any]:
    out = out_folder(scenario)
    result = run_cli(scenario, out)
    assert result.exit_code == 0, (result.output, result.exception)
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    summary["_stderr"] = result.stderr
    return summary


# --------------------------------------------------------------------------------------------------
# CSV cell errors: (tables, file, line, field, message fragment)
# --------------------------------------------------------------------------------------------------

CSV_CELL_ERRORS: list[Any] = [
    # wrong type
    pytest.param(
        {"skus": [sku("A"), sku("B", unit_volume="abc")]},
        "skus.csv",
        3,
        "unit_volume",
        "expected a number, got 'abc'",
        id="abc-in-number",
    ),
    pytest.param(
        {"warehouses": [warehouse(capacity="lots")]},
        "warehouses.csv",
        2,
        "capacity",
        "expected a number",
        id="text-capacity",
    ),
    pytest.param(
        {"demand": [demand(), demand(period=1, quantity="five")]},
        "demand.csv",
        3,
        "quantity",
        "expected a number",
        id="text-demand-quantity",
    ),
    pytest.param({"offers": [offer(moq=2.5)]}, "offers.csv", 2, "moq", "whole number", id="fractional-moq"),
    pytest.param(
        {"offers": [offer(lead_time=1.5)]},
        "offers.csv",
        2,
        "lead_time",
        "whole number",
        id="fractional-lead-time",
    ),
    pytest.param(
        {"offers": [offer(order_multiple="x")]},
        "offers.csv",
        2,
        "order_multiple",
        "whole number",
        id="text-order-multiple",
    ),
    pytest.param(
        {"demand": [demand(period=0), demand(period=2.5)]},
        "demand.csv",
        3,
        "period",
        "whole number",
        id="fractional-period",
    ),
    pytest.param(
        {"lanes": [lane(transit_time=0.5)]},
        "lanes.csv",
        2,
        "transit_time",
        "whole number",
        id="fractional-transit-time",
    ),
    # negative where not allowed
    pytest.param(
        {"warehouses": [warehouse(capacity=-1)]},
        "warehouses.csv",
        2,
        "capacity",
        "must be >= 0",
        id="negative-capacity",
    ),
    pytest.param(
        {"skus": [sku("A"), sku("B", holding_cost=-0.5)]},
        "skus.csv",
        3,
        "holding_cost",
        "must be >= 0",
        id="negative-holding-cost",
    ),
    pytest.param(
        {"inventory": [inventory(on_hand=-3)]},
        "inventory.csv",
        2,
        "on_hand",
        "must be >= 0",
        id="negative-on-hand",
    ),
    pytest.param(
        {"demand": [demand(), demand(period=1), demand(period=2, quantity=-1)]},
        "demand.csv",
        4,
        "quantity",
        "must be >= 0",
        id="negative-demand",
    ),
    pytest.param(
        {"open_orders": [open_order(quantity=-2)]},
        "open_orders.csv",
        2,
        "quantity",
        "must be >= 0",
        id="negative-open-order",
    ),
    pytest.param(
        {"offers": [offer(unit_price=-1)]}, "offers.csv", 2, "unit_price", "must be >= 0", id="negative-price"
    ),
    pytest.param(
        {"suppliers": [supplier(capacity=10), supplier("S2", capacity=-10)]},
        "suppliers.csv",
        3,
        "capacity",
        "must be >= 0",
        id="negative-supplier-capacity",
    ),
    pytest.param(
        {"price_breaks": [price_break(0)]},
        "price_breaks.csv",
        2,
        "min_quantity",
        "must be > 0",
        id="zero-min-quantity",
    ),
    # blank / NaN / infinite in a required column
    pytest.param(
        {"skus": [sku(shortage_cost=None)]}, "skus.csv", 2, "shortage_cost", "missing", id="blank-number"
    ),
    pytest.param(
        {"warehouses": [warehouse("W1"), warehouse("W2", capacity="  ")]},
        "warehouses.csv",
        3,
        "capacity",
        "missing",
        id="whitespace-number",
    ),
    pytest.param(
        {"offers": [offer(unit_price="nan")]}, "offers.csv", 2, "unit_price", "'nan'", id="nan-text"
    ),
    pytest.param({"demand": [demand(quantity="NaN")]}, "demand.csv", 2, "quantity", "'NaN'", id="NaN-text"),
    pytest.param(
        {"suppliers": [supplier(order_cost="inf")]},
        "suppliers.csv",
        2,
        "order_cost",
        "finite",
        id="infinite-number",
    ),
    pytest.param({"offers": [offer(sku="")]}, "offers.csv", 2, "sku", "empty identifier", id="blank-id"),
    pytest.param(
        {"demand": [demand(), demand(warehouse="  ", period=1)]},
        "demand.csv",
        3,
        "warehouse",
        "empty identifier",
        id="whitespace-id",
    ),
    # negative periods
    pytest.param({"demand": [demand(period=-1)]}, "demand.csv", 2, "period", "0", id="negative-period"),
    pytest.param(
        {"budget": [budget(0), budget(-2)]}, "budget.csv", 3, "period", "0", id="negative-budget-period"
    ),
    pytest.param(
        {"open_orders": [open_order(arrival_period=-1)]},
        "open_orders.csv",
        2,
        "arrival_period",
        "0",
        id="negative-arrival-period",
    ),
]


@pytest.mark.parametrize(("tables", "file", "line", "field", "fragment"), CSV_CELL_ERRORS)
def test_bad_cell_in_csv(
    scenario_factory: Factory, tables: dict[str, Any], file: str, line: int, field: str, fragment: str
) -> None:
    message = run_bad(scenario_factory(tables, 4))
    assert_located(message, file, line=line, field=field)
    assert fragment in message


# --------------------------------------------------------------------------------------------------
# duplicate keys: both lines are named
# --------------------------------------------------------------------------------------------------

DUPLICATES: list[Any] = [
    pytest.param({"skus": [sku("A"), sku("A", unit_volume=2.0)]}, "skus.csv", 3, 2, "sku", id="sku"),
    pytest.param({"skus": [sku("A"), sku("B"), sku(" A ")]}, "skus.csv", 4, 2, "sku", id="sku-with-spaces"),
    pytest.param(
        {"warehouses": [warehouse("W1"), warehouse("W2"), warehouse("W1")]},
        "warehouses.csv",
        4,
        2,
        "warehouse",
        id="warehouse",
    ),
    pytest.param(
        {"offers": [offer(), offer(unit_price=2.0)]}, "offers.csv", 3, 2, "supplier,sku", id="offer"
    ),
    pytest.param(
        {"demand": [demand(period=0), demand(period=1), demand(period=0, quantity=7)]},
        "demand.csv",
        4,
        2,
        "sku,warehouse,period",
        id="demand",
    ),
    pytest.param(
        {"demand": [demand(period="1"), demand(period="1.0")]},
        "demand.csv",
        3,
        2,
        "sku,warehouse,period",
        id="demand-same-number-spelt-differently",
    ),
    pytest.param(
        {"price_breaks": [price_break(10), price_break(20, 0.8), price_break(10, 0.85)]},
        "price_breaks.csv",
        4,
        2,
        "supplier,sku,min_quantity",
        id="price-break",
    ),
    pytest.param(
        {"inventory": [inventory(), inventory(on_hand=4)]},
        "inventory.csv",
        3,
        2,
        "sku,warehouse",
        id="inventory",
    ),
    pytest.param(
        {"lanes": [lane(), lane(transit_time=1)]}, "lanes.csv", 3, 2, "supplier,warehouse", id="lane"
    ),
    pytest.param(
        {"budget": [budget(0), budget(1), budget(2), budget(1)]}, "budget.csv", 5, 3, "period", id="budget"
    ),
]


@pytest.mark.parametrize(("tables", "file", "line", "first", "field"), DUPLICATES)
def test_duplicate_key_names_both_lines(
    scenario_factory: Factory, tables: dict[str, Any], file: str, line: int, first: int, field: str
) -> None:
    message = run_bad(scenario_factory(tables, 4))
    assert_located(message, file, line=line, field=field)
    assert "duplicate" in message
    assert re.search(rf"\bline {first}\b", message), message


# --------------------------------------------------------------------------------------------------
# references between tables
# --------------------------------------------------------------------------------------------------

REFERENCE_ERRORS: list[Any] = [
    pytest.param(
        {"offers": [offer(), offer("S9")]}, "offers.csv", 3, "supplier", "'S9'", id="offer-supplier"
    ),
    pytest.param({"offers": [offer(sku="Z")]}, "offers.csv", 2, "sku", "'Z'", id="offer-sku"),
    pytest.param(
        {"demand": [demand(), demand(warehouse="W9")]},
        "demand.csv",
        3,
        "warehouse",
        "'W9'",
        id="demand-warehouse",
    ),
    pytest.param({"demand": [demand(sku="Z")]}, "demand.csv", 2, "sku", "'Z'", id="demand-sku"),
    pytest.param(
        {"lanes": [lane(), lane(warehouse="W9")]}, "lanes.csv", 3, "warehouse", "'W9'", id="lane-warehouse"
    ),
    pytest.param({"lanes": [lane(supplier="S9")]}, "lanes.csv", 2, "supplier", "'S9'", id="lane-supplier"),
    pytest.param(
        {"open_orders": [open_order(), open_order(sku="Z")]},
        "open_orders.csv",
        3,
        "sku",
        "'Z'",
        id="open-order-sku",
    ),
    pytest.param(
        {"open_orders": [open_order(warehouse="W9")]},
        "open_orders.csv",
        2,
        "warehouse",
        "'W9'",
        id="open-order-warehouse",
    ),
    pytest.param(
        {"open_orders": [open_order(supplier="S9")]},
        "open_orders.csv",
        2,
        "supplier",
        "'S9'",
        id="open-order-supplier",
    ),
    pytest.param(
        {"inventory": [inventory(), inventory(warehouse="W9")]},
        "inventory.csv",
        3,
        "warehouse",
        "'W9'",
        id="inventory-warehouse",
    ),
    pytest.param(
        {"warehouses": TWO_WAREHOUSES, "transfers": [transfer(), transfer("W7", "W1")]},
        "transfers.csv",
        3,
        "from_warehouse",
        "'W7'",
        id="transfer-from",
    ),
    pytest.param(
        {"transfers": [transfer("W1", "W9")]}, "transfers.csv", 2, "to_warehouse", "'W9'", id="transfer-to"
    ),
    pytest.param(
        {
            "suppliers": [supplier("S1"), supplier("S2")],
            "price_breaks": [price_break(10), price_break(10, supplier="S2")],
        },
        "price_breaks.csv",
        3,
        "sku",
        "no offer",
        id="price-break-without-offer",
    ),
    pytest.param(
        {"price_breaks": [price_break(10, sku="Z")]},
        "price_breaks.csv",
        2,
        "sku",
        "'Z'",
        id="price-break-unknown-sku",
    ),
    pytest.param(
        {"warehouses": TWO_WAREHOUSES, "transfers": [transfer("W1", "W2"), transfer("W2", "W2")]},
        "transfers.csv",
        3,
        "to_warehouse",
        "itself",
        id="transfer-to-itself",
    ),
]


@pytest.mark.parametrize(("tables", "file", "line", "field", "fragment"), REFERENCE_ERRORS)
def test_bad_reference(
    scenario_factory: Factory, tables: dict[str, Any], file: str, line: int, field: str, fragment: str
) -> None:
    message = run_bad(scenario_factory(tables, 4))
    assert_located(message, file, line=line, field=field)
    assert fragment in message


# --------------------------------------------------------------------------------------------------
# the same errors in Parquet files: 1-based row numbers instead of lines
# --------------------------------------------------------------------------------------------------

PARQUET_ERRORS: list[Any] = [
    pytest.param(
        {},
        "skus",
        pd.DataFrame([sku("A"), sku("B")]).assign(unit_volume=["1", "abc"]),
        2,
        "unit_volume",
        "expected a number",
        id="abc-in-number",
    ),
    pytest.param({}, "offers", pd.DataFrame([offer(moq=2.5)]), 1, "moq", "whole number", id="fractional-moq"),
    pytest.param(
        {},
        "demand",
        pd.DataFrame([demand(period=0), demand(period=1), demand(period=2.5)]),
        3,
        "period",
        "whole number",
        id="fractional-period",
    ),
    pytest.param(
        {},
        "warehouses",
        pd.DataFrame([warehouse(capacity=-1.0)]),
        1,
        "capacity",
        ">= 0",
        id="negative-capacity",
    ),
    pytest.param(
        {}, "inventory", pd.DataFrame([inventory(on_hand=-1.0)]), 1, "on_hand", ">= 0", id="negative-on-hand"
    ),
    pytest.param(
        {},
        "skus",
        pd.DataFrame([sku("A"), sku("B", holding_cost=None)]),
        2,
        "holding_cost",
        "missing",
        id="null-number",
    ),
    pytest.param(
        {},
        "skus",
        pd.DataFrame([sku("A"), sku("B", holding_cost=float("nan"))]),
        2,
        "holding_cost",
        "missing",
        id="nan-number",
    ),
    pytest.param(
        {},
        "suppliers",
        pd.DataFrame([supplier(order_cost=float("inf"))]),
        1,
        "order_cost",
        "finite",
        id="infinite-number",
    ),
    pytest.param(
        {}, "offers", pd.DataFrame([offer(), offer(sku=None)]), 2, "sku", "empty identifier", id="null-id"
    ),
    pytest.param(
        {}, "skus", pd.DataFrame([sku("A"), sku("B"), sku("A")]), 3, "sku", "row 1", id="duplicate-sku"
    ),
    pytest.param(
        {},
        "demand",
        pd.DataFrame([demand(period=0), demand(period=0)]),
        2,
        "sku,warehouse,period",
        "row 1",
        id="duplicate-demand",
    ),
    pytest.param(
        {}, "offers", pd.DataFrame([offer(), offer("S9")]), 2, "supplier", "'S9'", id="unknown-supplier"
    ),
    pytest.param(
        {"warehouses": TWO_WAREHOUSES},
        "transfers",
        pd.DataFrame([transfer(), transfer("W1", "W1")]),
        2,
        "to_warehouse",
        "itself",
        id="transfer-to-itself",
    ),
    pytest.param({}, "demand", pd.DataFrame([demand(period=-1)]), 1, "period", "0", id="negative-period"),
    pytest.param(
        {"suppliers": [supplier("S1"), supplier("S2")]},
        "price_breaks",
        pd.DataFrame([price_break(5, supplier="S2")]),
        1,
        "sku",
        "no offer",
        id="price-break-without-offer",
    ),
]


@pytest.mark.parametrize(("tables", "table", "frame", "row", "field", "fragment"), PARQUET_ERRORS)
def test_bad_parquet_names_row(
    scenario_factory: Factory,
    tables: dict[str, Any],
    table: str,
    frame: pd.DataFrame,
    row: int,
    field: str,
    fragment: str,
) -> None:
    scenario = scenario_factory(tables, 4)
    as_parquet(scenario, table, frame)
    message = run_bad(scenario)
    assert_located(message, f"{table}.parquet", row=row, field=field)
    assert fragment in message


def test_valid_parquet_tables_are_accepted(scenario_factory: Factory) -> None:
    scenario = scenario_factory({"demand": [demand(period=1)]}, 3)
    as_parquet(scenario, "demand", pd.DataFrame([demand(period=1)]))
    as_parquet(scenario, "offers", pd.DataFrame([offer()]))
    summary = summary_of(scenario)
    assert summary["plan"]["demand_units"] == pytest.approx(5.0)
    assert summary["plan"]["units_ordered"] >= 5


# --------------------------------------------------------------------------------------------------
# whole-file problems
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["skus", "warehouses", "suppliers", "offers", "inventory", "demand"])
def test_missing_required_table(scenario_factory: Factory, table: str) -> None:
    scenario = scenario_factory({}, 4)
    (data_dir(scenario) / f"{table}.csv").unlink()
    message = run_bad(scenario)
    assert f"{table}.csv" in message and f"{table}.parquet" in message
    assert "missing" in message


def test_missing_optional_table_is_fine(scenario_factory: Factory) -> None:
    result = invoke("check", scenario_factory({}, 4))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("table", "rows", "column"),
    [
        pytest.param("offers", [{k: v for k, v in offer().items() if k != "moq"}], "moq", id="offers-moq"),
        pytest.param("skus", [{k: v for k, v in sku().items() if k != "sku"}], "sku", id="skus-sku"),
        pytest.param(
            "demand", [{k: v for k, v in demand().items() if k != "period"}], "period", id="demand-period"
        ),
        pytest.param(
            "inventory", [{"sku": "A", "warehouse": "W1", "stock": 3}], "on_hand", id="inventory-on-hand"
        ),
    ],
)
def test_missing_column(
    scenario_factory: Factory, table: str, rows: list[dict[str, Any]], column: str
) -> None:
    scenario = scenario_factory({table: rows}, 4)
    message = run_bad(scenario)
    assert_located(message, f"{table}.csv", line=1, field=column)
    assert "missing column" in message

    as_parquet(scenario, table, pd.DataFrame(rows))
    message = run_bad(scenario)
    assert_located(message, f"{table}.parquet", field=column)
    assert "missing column" in message


def test_missing_optional_column_is_fine(scenario_factory: Factory) -> None:
    suppliers = [{"supplier": "S1", "order_cost": 5.0}]
    result = invoke("check", scenario_factory({"suppliers": suppliers}, 4))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("content", ["", "\n", "   \n\n"], ids=["empty", "newline", "blank-lines"])
def test_empty_csv_file(scenario_factory: Factory, content: str) -> None:
    scenario = scenario_factory({}, 4)
    (data_dir(scenario) / "offers.csv").write_text(content, encoding="utf-8")
    message = run_bad(scenario)
    assert "offers.csv" in message
    assert "empty" in message


def test_empty_parquet_file(scenario_factory: Factory) -> None:
    scenario = scenario_factory({}, 4)
    (data_dir(scenario) / "offers.csv").unlink()
    (data_dir(scenario) / "offers.parquet").write_bytes(b"")
    message = run_bad(scenario)
    assert "offers.parquet" in message


def test_header_only_table_without_rows(scenario_factory: Factory) -> None:
    """A header without rows is an empty table: here the offer then refers to an unknown SKU."""
    scenario = scenario_factory({}, 4)
    (data_dir(scenario) / "skus.csv").write_text(
        "sku,unit_volume,holding_cost,shortage_cost\n", encoding="utf-8"
    )
    message = run_bad(scenario)
    assert_located(message, "offers.csv", line=2, field="sku")
    assert "unknown sku 'A'" in message


def test_csv_and_parquet_of_the_same_table(scenario_factory: Factory) -> None:
    scenario = scenario_factory({}, 4)
    pd.DataFrame([sku()]).to_parquet(data_dir(scenario) / "skus.parquet", index=False)
    message = run_bad(scenario)
    assert "skus.csv" in message and "skus.parquet" in message


def test_unparsable_csv(scenario_factory: Factory) -> None:
    scenario = scenario_factory({}, 4)
    path = data_dir(scenario) / "warehouses.csv"
    path.write_text("warehouse,capacity\nW1,100\nW2,100,7,8\n", encoding="utf-8")
    message = run_bad(scenario)
    assert "warehouses.csv" in message
    assert re.search(r"\bline 3\b", message), message


def test_csv_not_utf8(scenario_factory: Factory) -> None:
    scenario = scenario_factory({}, 4)
    (data_dir(scenario) / "warehouses.csv").write_bytes(b"warehouse,capacity\nW\xe91,100\n")
    message = run_bad(scenario)
    assert "warehouses.csv" in message


OFFERS_HEADER = "supplier,sku,unit_price,moq,order_multiple,lead_time"
SKUS_HEADER = "sku,unit_volume,holding_cost,shortage_cost"


@pytest.mark.parametrize(
    ("table", "content", "line", "field"),
    [
        pytest.param(
            "offers",
            f"{OFFERS_HEADER}\n\nS1,A,1.0,0,1,0\n\n   \nS1,A,1.0,2.5,1,0\n",
            6,
            "moq",
            id="blank-lines",
        ),
        pytest.param(
            "offers", f"\n\n{OFFERS_HEADER}\nS1,A,1.0,-1,1,0\n", 4, "moq", id="blank-lines-before-header"
        ),
        pytest.param(
            "offers", f"{OFFERS_HEADER}\r\n\r\nS1,A,1.0,0,1,x\r\n", 3, "lead_time", id="crlf-blank-line"
        ),
        pytest.param(
            "offers", f"{OFFERS_HEADER}\rS1,A,1.0,0,1,0\r\rS1,A,x,0,1,0\r", 4, "unit_price", id="cr-only"
        ),
        pytest.param(
            "skus",
            f'{SKUS_HEADER},note\nA,1,1,100,"two\nlines"\nB,1,-1,100,x\n',
            4,
            "holding_cost",
            id="quoted-field-spanning-lines",
        ),
        pytest.param(
            "skus",
            f'{SKUS_HEADER},note\n\nA,1,1,100,"a\n\nb"\n\nB,1,1,,x\n\n\n',
            7,
            "shortage_cost",
            id="quoted-field-and-blank-lines",
        ),
        pytest.param(
            "skus",
            f"{SKUS_HEADER}\nA,1,1,100\n\nB,1,1,100\n\n\n",
            None,
            None,
            id="trailing-blank-lines-valid",
        ),
    ],
)
def test_line_numbers_are_lines_of_the_file(
    scenario_factory: Factory, table: str, content: str, line: int | None, field: str | None
) -> None:
    """The line is the line in the file: blank lines (skipped as rows) and lines inside quotes count."""
    scenario = scenario_factory({}, 4)
    (data_dir(scenario) / f"{table}.csv").write_bytes(content.encode("utf-8"))
    if line is None:
        result = invoke("check", scenario)
        assert result.exit_code == 0, result.output
        return
    message = run_bad(scenario)
    assert_located(message, f"{table}.csv", line=line, field=field)


@pytest.mark.parametrize(
    "header",
    [
        "sku,unit_volume,holding_cost,shortage_cost,unit_volume",
        "sku,unit_volume,holding_cost,shortage_cost, sku ",
    ],
)
def test_repeated_column_in_csv_header(scenario_factory: Factory, header: str) -> None:
    scenario = scenario_factory({}, 4)
    (data_dir(scenario) / "skus.csv").write_text(f"{header}\nA,1,1,100,2\n", encoding="utf-8")
    message = run_bad(scenario)
    repeated = header.rsplit(",", 1)[1].strip()
    assert_located(message, "skus.csv", line=1, field=repeated)
    assert "more than once" in message


def test_line_numbers_count_blank_lines_in_duplicates(scenario_factory: Factory) -> None:
    scenario = scenario_factory({}, 4)
    path = data_dir(scenario) / "skus.csv"
    path.write_text(
        "sku,unit_volume,holding_cost,shortage_cost\r\n\r\nA,1,1,100\r\nB,1,1,100\r\n\r\nA,1,1,100\r\n",
        encoding="utf-8",
    )
    message = run_bad(scenario)
    assert_located(message, "skus.csv", line=6, field="sku")
    assert re.search(r"first given at line 3\b", message), message


def test_utf8_bom_and_extra_columns_are_accepted(scenario_factory: Factory) -> None:
    scenario = scenario_factory({}, 4)
    path = data_dir(scenario) / "skus.csv"
    path.write_text("sku,unit_volume,holding_cost,shortage_cost,comment\nA,1,1,100,x\n", encoding="utf-8-sig")
    result = invoke("check", scenario)
    assert result.exit_code == 0, result.output


def test_existing_out_folder_is_untouched_on_bad_input(scenario_factory: Factory) -> None:
    scenario = scenario_factory({"offers": [offer(moq=1.5)]}, 4)
    out = out_folder(scenario)
    out.mkdir(parents=True)
    (out / "summary.json").write_text("old", encoding="utf-8")
    result = run_cli(scenario, out)
    assert result.exit_code == 2
    error_line(result)
    assert [p.name for p in out.parent.iterdir()] == ["out"]
    assert [p.name for p in out.iterdir()] == ["summary.json"]
    assert (out / "summary.json").read_text(encoding="utf-8") == "old"


# --------------------------------------------------------------------------------------------------
# the scenario YAML
# --------------------------------------------------------------------------------------------------

VALID_YAML = "name: test\ndata: data\nhorizon:\n  periods: 4\nsolver:\n  time_limit: 60\n  threads: 1\n"

YAML_ERRORS: list[Any] = [
    pytest.param(
        "name: test\ndata: data\nhorizon:\n  periods: 4\n bad: x\n", 5, None, "syntax", id="bad-indentation"
    ),
    pytest.param(
        "name: test\ndata: data\nhorizon: {periods: 4\nsolver: {}\n",
        4,
        None,
        "syntax",
        id="unclosed-flow-mapping",
    ),
    pytest.param(
        "name: test\ndata: data\nhorizon:\n  periods: 4: 5\n", 4, None, "syntax", id="colon-in-value"
    ),
    pytest.param("name: test\ndata: data\nhorizon:\n\tperiods: 4\n", 4, None, "syntax", id="tab"),
    pytest.param(
        "name: test\ndata: data\nhorizon:\n  periods: 4\nname: other\n",
        5,
        None,
        "duplicate",
        id="duplicate-key",
    ),
    pytest.param(
        "name: test\ndata: data\nhorizon:\n  periods: 4\nsolver:\n  threads: 1\n  name: \x07\n",
        7,
        None,
        "character",
        id="control-character",
    ),
    pytest.param(
        "name: test\ndata: data\nhorizon: {periods: 4, foo: 1}\n",
        3,
        "horizon.foo",
        "unknown key",
        id="unknown-nested-key",
    ),
    pytest.param(
        "name: test\ndata: data\n\nhorizon:\n  periods: 4\ncolour: red\n",
        6,
        "colour",
        "unknown key",
        id="unknown-top-key",
    ),
    pytest.param(
        "name: test\ndata: data\nhorizon:\n  periods: 4\nsolver:\n  time_limit: 5\n  treads: 2\n",
        7,
        "solver.treads",
        "unknown key",
        id="misspelt-solver-key",
    ),
    pytest.param(
        "name: test\ndata: data\nhorizon:\n  periods: 4\n7: x\n", 5, "7", "unknown key", id="number-as-key"
    ),
    pytest.param(
        "name: test\ndata: data\nhorizon:\n  periods: many\n", 4, "horizon.periods", "many", id="periods-many"
    ),
    pytest.param(
        "name: test\ndata: data\nhorizon:\n  periods: 2.5\n",
        4,
        "horizon.periods",
        "2.5",
        id="periods-fraction",
    ),
    pytest.param(
        "name: test\ndata: data\nhorizon:\n  periods: 0\n", 4, "horizon.periods", "0", id="periods-zero"
    ),
    pytest.param("name: test\ndata: data\nhorizon: 4\n", 3, "horizon", "4", id="horizon-not-mapping"),
    pytest.param(
        "name: test\ndata: data\nhorizon:\n  periods: 4\n  start: 2024-02-30\n",
        5,
        "horizon.start",
        "2024-02-30",
        id="impossible-date",
    ),
    pytest.param(
        "name: test\ndata: data\nhorizon:\n  periods: 4\n  start: soon\n",
        5,
        "horizon.start",
        "soon",
        id="date-text",
    ),
    pytest.param(
        "name: test\ndata: data\nhorizon:\n  periods: 4\nsolver:\n  name: gurobi\n",
        6,
        "solver.name",
        "gurobi",
        id="unknown-solver",
    ),
    pytest.param(
        "name: test\ndata: data\nhorizon:\n  periods: 4\nsolver:\n  threads: two\n",
        6,
        "solver.threads",
        "two",
        id="threads-text",
    ),
    pytest.param(
        "name: test\ndata: data\nhorizon:\n  periods: 4\nsolver:\n  mip_gap: -0.1\n",
        6,
        "solver.mip_gap",
        "-0.1",
        id="negative-gap",
    ),
    pytest.param(
        "name: test\ndata: nowhere\nhorizon:\n  periods: 4\n", 2, "data", "nowhere", id="data-folder-missing"
    ),
    pytest.param(
        "name: test\ndata: data/skus.csv\nhorizon:\n  periods: 4\n",
        2,
        "data",
        "does not exist",
        id="data-is-a-file",
    ),
    pytest.param("name: test\ndata:\nhorizon:\n  periods: 4\n", 2, "data", "", id="data-empty"),
    pytest.param("name: test\nhorizon:\n  periods: 4\n", None, "data", "missing", id="data-key-missing"),
    pytest.param("name: test\ndata: data\n", None, "horizon", "missing", id="horizon-missing"),
    pytest.param(
        "name: test\ndata: data\nhorizon:\n  start: 2024-01-01\n",
        3,
        "horizon.periods",
        "missing",
        id="periods-missing",
    ),
    pytest.param("- name: test\n- data: data\n", 1, None, "mapping", id="list-document"),
    pytest.param("", None, None, "mapping", id="empty-document"),
]


@pytest.mark.parametrize(("text", "line", "field", "fragment"), YAML_ERRORS)
def test_bad_scenario_yaml(
    scenario_factory: Factory, text: str, line: int | None, field: str | None, fragment: str
) -> None:
    scenario = scenario_factory({}, 4)
    scenario.write_text(text, encoding="utf-8")
    message = run_bad(scenario)
    assert_located(message, "scenario.yaml", line=line, field=field)
    assert fragment in message


def test_valid_handwritten_yaml(scenario_factory: Factory) -> None:
    """The baseline of the YAML cases above is valid."""
    scenario = scenario_factory({}, 4)
    scenario.write_text(VALID_YAML + "  # comment\n", encoding="utf-8")
    result = invoke("check", scenario)
    assert result.exit_code == 0, result.output
    assert "4 periods" in result.stdout


def test_scenario_yaml_not_utf8(scenario_factory: Factory) -> None:
    scenario = scenario_factory({}, 4)
    scenario.write_bytes(b"name: test\ndata: data\nhorizon:\n  periods: 4\ndescription: caf\xe9\n")
    message = run_bad(scenario)
    assert_located(message, "scenario.yaml", line=5)


@pytest.mark.parametrize("name", ["missing.yaml", "sub/missing.yaml"])
def test_scenario_file_does_not_exist(tmp_path: Path, name: str) -> None:
    message = run_bad(tmp_path / name)
    assert "missing.yaml" in message
    assert "not found" in message


def test_scenario_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "scenario.yaml").mkdir()
    message = run_bad(tmp_path / "scenario.yaml")
    assert "scenario.yaml" in message


# --------------------------------------------------------------------------------------------------
# `optistock check` reports the same errors
# --------------------------------------------------------------------------------------------------

CHECK_CASES: list[Any] = [
    pytest.param({"offers": [offer(moq=2.5)]}, None, id="fractional-moq"),
    pytest.param({"skus": [sku(), sku()]}, None, id="duplicate-sku"),
    pytest.param({"demand": [demand(warehouse="W9")]}, None, id="unknown-warehouse"),
    pytest.param({}, "name: test\ndata: data\nhorizon: {periods: 4, foo: 1}\n", id="unknown-yaml-key"),
    pytest.param({}, "name: test\ndata: data\nhorizon:\n  periods: many\n", id="periods-many"),
]


@pytest.mark.parametrize(("tables", "yaml_text"), CHECK_CASES)
def test_check_reports_the_same_error(
    scenario_factory: Factory, tables: dict[str, Any], yaml_text: str | None
) -> None:
    scenario = scenario_factory(tables, 4)
    if yaml_text is not None:
        scenario.write_text(yaml_text, encoding="utf-8")
    run_message = run_bad(scenario)
    result = invoke("check", scenario)
    assert result.exit_code == 2, result.output
    assert error_line(result) == run_message
    assert result.stdout == ""


def test_check_succeeds_on_a_valid_scenario(scenario_factory: Factory) -> None:
    scenario = scenario_factory({"demand": [demand(period=1)]}, 4)
    result = invoke("check", scenario)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: 1 SKUs, 1 warehouses, 1 suppliers, 1 offers, 4 periods")
    assert "error" not in result.output
    assert set(scenario.parent.iterdir()) == {data_dir(scenario), scenario}


def test_check_prints_warnings(scenario_factory: Factory) -> None:
    scenario = scenario_factory({"offers": [offer(lead_time=9)], "demand": [demand(period=1)]}, 4)
    result = invoke("check", scenario)
    assert result.exit_code == 0, result.output
    assert "warning: offer S1/A" in result.stderr
    assert "ok:" in result.stdout


# --------------------------------------------------------------------------------------------------
# legal but unusable data: warnings, exit 0
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lead_time", [4, 5, 40])
def test_offer_that_never_arrives_warns(scenario_factory: Factory, lead_time: int) -> None:
    scenario = scenario_factory({"offers": [offer(lead_time=lead_time)], "demand": [demand(period=3)]}, 4)
    summary = summary_of(scenario)
    matching = [w for w in summary["warnings"] if "S1/A" in w and "never" in w]
    assert len(matching) == 1, summary["warnings"]
    assert f"lead time {lead_time}" in matching[0]
    assert matching[0] in summary["_stderr"]
    assert summary["plan"]["units_ordered"] == 0


def test_offer_arriving_in_last_period_does_not_warn(scenario_factory: Factory) -> None:
    summary = summary_of(scenario_factory({"offers": [offer(lead_time=3)], "demand": [demand(period=3)]}, 4))
    assert summary["warnings"] == []
    assert summary["plan"]["units_ordered"] == 5


def test_offer_that_arrives_only_through_slow_lane_warns(scenario_factory: Factory) -> None:
    scenario = scenario_factory(
        {"offers": [offer(lead_time=1)], "lanes": [lane(transit_time=3)], "demand": [demand(period=3)]}, 4
    )
    summary = summary_of(scenario)
    assert any("S1/A" in w and "never" in w for w in summary["warnings"]), summary["warnings"]


def test_supplier_without_lane_warns(scenario_factory: Factory) -> None:
    scenario = scenario_factory(
        {
            "suppliers": [supplier("S1"), supplier("S2")],
            "offers": [offer(), offer("S2", unit_price=0.5)],
            "lanes": [lane()],
            "demand": [demand(period=1)],
        },
        4,
    )
    summary = summary_of(scenario)
    assert any("S2/A" in w and "no lane" in w for w in summary["warnings"]), summary["warnings"]
    assert not any("S1/A" in w for w in summary["warnings"]), summary["warnings"]


def test_sku_with_demand_but_no_offer_warns(scenario_factory: Factory) -> None:
    scenario = scenario_factory(
        {"skus": [sku("A"), sku("B")], "demand": [demand("A", period=1), demand("B", period=2, quantity=3)]},
        4,
    )
    summary = summary_of(scenario)
    matching = [w for w in summary["warnings"] if "sku B" in w and "no offer" in w]
    assert len(matching) == 1, summary["warnings"]
    assert not any("sku A" in w for w in summary["warnings"])
    assert matching[0] in summary["_stderr"]


def test_sku_without_offer_or_demand_does_not_warn(scenario_factory: Factory) -> None:
    summary = summary_of(scenario_factory({"skus": [sku("A"), sku("B")], "demand": [demand(period=1)]}, 4))
    assert summary["warnings"] == []


def test_demand_beyond_horizon_is_ignored_with_warning(scenario_factory: Factory) -> None:
    rows = [
        demand(period=0, quantity=2),
        demand(period=3, quantity=3),
        demand(period=4, quantity=100),
        demand(period=9, quantity=100),
    ]
    summary = summary_of(scenario_factory({"demand": rows}, 4))
    matching = [w for w in summary["warnings"] if "demand.csv" in w]
    assert len(matching) == 1, summary["warnings"]
    assert "2 row(s)" in matching[0] and re.search(r"\bline 4\b", matching[0]) and "ignored" in matching[0]
    assert matching[0] in summary["_stderr"]
    assert summary["plan"]["demand_units"] == pytest.approx(5.0)
    assert summary["plan"]["units_ordered"] == 5


def test_demand_beyond_horizon_in_parquet_names_row(scenario_factory: Factory) -> None:
    scenario = scenario_factory({}, 2)
    as_parquet(scenario, "demand", pd.DataFrame([demand(period=0), demand(period=1), demand(period=2)]))
    summary = summary_of(scenario)
    matching = [w for w in summary["warnings"] if "demand.parquet" in w]
    assert len(matching) == 1 and re.search(r"\brow 3\b", matching[0]), summary["warnings"]
    assert summary["plan"]["demand_units"] == pytest.approx(10.0)


def test_open_orders_and_budget_beyond_horizon_are_ignored_with_warning(scenario_factory: Factory) -> None:
    scenario = scenario_factory(
        {
            "demand": [demand(period=1)],
            "open_orders": [
                open_order(arrival_period=1, quantity=2),
                open_order(arrival_period=7, quantity=50),
            ],
            "budget": [budget(0, 1000), budget(5, 0)],
        },
        4,
    )
    summary = summary_of(scenario)
    assert any("open_orders.csv" in w and "line 3" in w for w in summary["warnings"]), summary["warnings"]
    assert any("budget.csv" in w and "line 3" in w for w in summary["warnings"]), summary["warnings"]
    assert summary["plan"]["units_ordered"] == 3
