"""A small procurement instance for the purchase-order store tests, and helpers to record it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from conftest import write_scenario
from ruamel.yaml import YAML

from optistock.pipeline import RunResult, run_scenario
from optistock.store.database import Store

START = dt.date(2027, 1, 4)


def procurement_tables(budget: float = 1e6) -> dict[str, list[dict[str, Any]]]:
    """Two SKUs, one warehouse, two suppliers over 4 weekly periods.

    S1 is cheap (lead time 1, order cost 50; A: MOQ 20, pack 10, break at 100 units → 8.0; B: pack 5),
    S2 dearer but immediate (lead time 0). Stock is empty, so period-0 demand is served by S2 or
    backordered, and later demand is cheapest from one S1 order in period 0.
    """
    return {
        "skus": [
            {"sku": "A", "unit_volume": 1.0, "holding_cost": 0.1, "shortage_cost": 50.0},
            {"sku": "B", "unit_volume": 1.0, "holding_cost": 0.1, "shortage_cost": 50.0},
        ],
        "warehouses": [{"warehouse": "W1", "capacity": 1000.0}],
        "suppliers": [
            {"supplier": "S1", "order_cost": 50.0, "min_order_value": 0.0},
            {"supplier": "S2", "order_cost": 10.0, "min_order_value": 0.0},
        ],
        "offers": [
            {
                "supplier": "S1",
                "sku": "A",
                "unit_price": 10.0,
                "moq": 20,
                "order_multiple": 10,
                "lead_time": 1,
            },
            {"supplier": "S1", "sku": "B", "unit_price": 5.0, "moq": 0, "order_multiple": 5, "lead_time": 1},
            {"supplier": "S2", "sku": "A", "unit_price": 12.0, "moq": 0, "order_multiple": 1, "lead_time": 0},
            {"supplier": "S2", "sku": "B", "unit_price": 6.0, "moq": 0, "order_multiple": 1, "lead_time": 0},
        ],
        "price_breaks": [{"supplier": "S1", "sku": "A", "min_quantity": 100, "unit_price": 8.0}],
        "inventory": [
            {"sku": "A", "warehouse": "W1", "on_hand": 0},
            {"sku": "B", "warehouse": "W1", "on_hand": 0},
        ],
        "demand": [
            {"sku": sku, "warehouse": "W1", "period": t, "quantity": q}
            for sku, quantities in (("A", [0, 30, 30, 30]), ("B", [0, 20, 0, 20]))
            for t, q in enumerate(quantities)
        ],
        "budget": [{"period": t, "amount": budget} for t in range(4)],
    }


def write_procurement(
    folder: Path,
    name: str = "weekly",
    start: dt.date | None = START,
    tables: dict[str, list[dict[str, Any]]] | None = None,
    periods: int = 4,
) -> Path:
    """Write the instance (optionally with ``tables`` replaced) with a ``horizon.start``; the YAML path."""
    path = write_scenario(folder, {**procurement_tables(), **(tables or {})}, periods, name=name)
    yaml = YAML(typ="safe")
    document = yaml.load(path.read_text())
    if start is not None:
        document["horizon"]["start"] = start
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(document, handle)
    return path


def record(scenario: Path, out: Path, store: Store, **options: Any) -> RunResult:
    return run_scenario(scenario, out, store=store, record=True, **options)
