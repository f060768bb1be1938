"""Semantic checks across tables: references between tables raise errors, unusable data gives warnings."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from optistock.errors import InputError
from optistock.preprocess.scenario import SourcingRule
from optistock.preprocess.tables import Column, RawTable

REFERENCES: dict[str, list[tuple[str, str, str]]] = {
    # table: [(column, referenced table, referenced column)]
    "supplier_capacity": [("supplier", "suppliers", "supplier")],
    "offers": [("supplier", "suppliers", "supplier"), ("sku", "skus", "sku")],
    "price_breaks": [("supplier", "suppliers", "supplier"), ("sku", "skus", "sku")],
    "lanes": [("supplier", "suppliers", "supplier"), ("warehouse", "warehouses", "warehouse")],
    "transfers": [("from_warehouse", "warehouses", "warehouse"), ("to_warehouse", "warehouses", "warehouse")],
    "demand": [("sku", "skus", "sku"), ("warehouse", "warehouses", "warehouse")],
    "inventory": [("sku", "skus", "sku"), ("warehouse", "warehouses", "warehouse")],
    "sourcing": [("supplier", "suppliers", "supplier")],
    "open_orders": [
        ("supplier", "suppliers", "supplier"),
        ("sku", "skus", "sku"),
        ("warehouse", "warehouses", "warehouse"),
    ],
    "service_levels": [("sku", "skus", "sku"), ("warehouse", "warehouses", "warehouse")],
    "safety_stock": [("sku", "skus", "sku"), ("warehouse", "warehouses", "warehouse")],
    "receipts": [
        ("supplier", "suppliers", "supplier"),
        ("sku", "skus", "sku"),
        ("warehouse", "warehouses", "warehouse"),
    ],
    "sales_history": [("sku", "skus", "sku"), ("warehouse", "warehouses", "warehouse")],
}


def check_references(tables: dict[str, RawTable]) -> None:
    """Every identifier must refer to a row of the table that defines it."""
    for name, references in REFERENCES.items():
        table = tables.get(name)
        if table is None:
            continue
        for column, target_name, target_column in references:
            known = set(tables[target_name].frame[target_column])
            unknown = ~table.frame[column].isin(known).to_numpy()
            if not _column_spec(table, column).required:
                unknown &= (table.frame[column] != "").to_numpy()  # blank: 'every'

            if unknown.any():
                position = int(np.flatnonzero(unknown)[0])
                value = table.frame[column].iloc[position]
                raise table.locate(
                    position, column, f"unknown {target_column} '{value}' (not in {target_name})"
                )
    breaks = tables.get("price_breaks")
    if breaks is not None:
        offers = tables["offers"].frame
        offer_keys = set(zip(offers["supplier"], offers["sku"], strict=True))
        for position, (supplier, sku) in enumerate(
            zip(breaks.frame["supplier"], breaks.frame["sku"], strict=True)
        ):
            if (supplier, sku) not in offer_keys:
                raise breaks.locate(
                    position,
                    "sku",
                    f"price break for supplier '{supplier}' and sku '{sku}', which has no offer",
                )
    transfers = tables.get("transfers")
    if transfers is not None:
        same = (transfers.frame["from_warehouse"] == transfers.frame["to_warehouse"]).to_numpy()
        if same.any():
            raise transfers.locate(
                int(np.flatnonzero(same)[0]), "to_warehouse", "a warehouse cannot transfer to itself"
            )
    open_orders = tables.get("open_orders")
    if open_orders is not None:
        check_periods_not_negative(open_orders, "arrival_period")


def _column_spec(table: RawTable, name: str) -> Column:
    return next(c for c in table.spec.columns if c.name == name)


def check_service_levels(tables: dict[str, RawTable]) -> None:
    """Service levels are probabilities strictly between 0 and 1."""
    table = tables.get("service_levels")
    if table is None:
        return
    too_high = (table.frame["service_level"] >= 1).to_numpy()
    if too_high.any():
        position = int(np.flatnonzero(too_high)[0])
        value = table.frame["service_level"].iloc[position]
        raise table.locate(
            position, "service_level", f"a service level must be between 0 and 1 (exclusive), got {value:g}"
        )


def check_feature_rules(tables: dict[str, RawTable]) -> None:
    """Shelf life, sales channels and sourcing rules: what the column types alone cannot say.

    - ``inventory.age`` must be below the SKU's ``shelf_life`` (stock already expired is bad input);
    - ``demand.channel`` may not be blank;
    - ``sourcing``: a named sku must exist and be offered by the supplier, ``min_share`` may not exceed
      ``max_share``, and a SKU (or "all SKUs") has at most one preferred supplier.
    """
    skus = tables["skus"].frame
    inventory = tables["inventory"]
    if "age" in inventory.frame.columns and "shelf_life" in skus.columns:
        life = inventory.frame["sku"].map(skus.set_index("sku")["shelf_life"])
        expired = (life.notna() & (inventory.frame["age"] >= life)).to_numpy()
        if expired.any():
            position = int(np.flatnonzero(expired)[0])
            raise inventory.locate(
                position,
                "age",
                f"age {int(inventory.frame['age'].iloc[position])} is not below the SKU's shelf life "
                f"{int(life.iloc[position])}: that stock has expired (leave it out)",
            )
    demand = tables.get("demand")  # absent when demand is forecast from the sales history
    if demand is not None and "channel" in demand.frame.columns:
        blank = (demand.frame["channel"] == "").to_numpy()
        if blank.any():
            raise demand.locate(int(np.flatnonzero(blank)[0]), "channel", "empty identifier")
    sourcing = tables.get("sourcing")
    if sourcing is None:
        return
    frame = sourcing.frame
    offers = tables["offers"].frame
    offered = set(zip(offers["supplier"], offers["sku"], strict=True))
    known_skus = set(skus["sku"])
    if "sku" in frame.columns:
        for position, (supplier, sku) in enumerate(zip(frame["supplier"], frame["sku"], strict=True)):
            if sku and sku not in known_skus:
                raise sourcing.locate(position, "sku", f"unknown sku '{sku}' (not in skus)")
            if sku and (supplier, sku) not in offered:
                raise sourcing.locate(position, "sku", f"supplier '{supplier}' has no offer for sku '{sku}'")
    if "min_share" in frame.columns and "max_share" in frame.columns:
        above = (frame["min_share"] > frame["max_share"]).to_numpy()
        if above.any():
            position = int(np.flatnonzero(above)[0])
            raise sourcing.locate(
                position,
                "min_share",
                f"min_share {frame['min_share'].iloc[position]:g} is above max_share "
                f"{frame['max_share'].iloc[position]:g}",
            )
    if "preferred" in frame.columns:
        scope = frame["sku"] if "sku" in frame.columns else pd.Series("", index=frame.index)
        marked = frame["preferred"] == 1
        repeated = (marked & scope.where(marked).duplicated(keep="first") & marked).to_numpy()
        if repeated.any():
            position = int(np.flatnonzero(repeated)[0])
            raise sourcing.locate(
                position,
                "preferred",
                f"a second preferred supplier for {scope.iloc[position] or 'all SKUs'}",
            )


def check_yaml_sourcing(
    rules: Sequence[SourcingRule], tables: dict[str, RawTable], locate: Callable[[int, str, str], InputError]
) -> None:
    """The scenario's ``sourcing:`` rules against the tables: known supplier, known and offered sku, at
    most one preferred supplier per SKU (with the ``sourcing`` table's). ``locate(k, field, message)``
    is the error for field ``field`` of rule ``k``."""
    suppliers = set(tables["suppliers"].frame["supplier"])
    skus = set(tables["skus"].frame["sku"])
    offers = tables["offers"].frame
    offered = set(zip(offers["supplier"], offers["sku"], strict=True))
    preferred: set[str] = set()
    table = tables.get("sourcing")
    if table is not None and "preferred" in table.frame.columns:
        marked = table.frame[table.frame["preferred"] == 1]
        scope = marked["sku"] if "sku" in marked.columns else pd.Series("", index=marked.index)
        preferred |= set(scope)
    for k, rule in enumerate(rules):
        if rule.supplier not in suppliers:
            raise locate(k, "supplier", f"unknown supplier '{rule.supplier}' (not in suppliers)")
        if rule.sku is not None and rule.sku not in skus:
            raise locate(k, "sku", f"unknown sku '{rule.sku}' (not in skus)")
        if rule.sku is not None and (rule.supplier, rule.sku) not in offered:
            raise locate(k, "sku", f"supplier '{rule.supplier}' has no offer for sku '{rule.sku}'")
        if rule.preferred:
            if (rule.sku or "") in preferred:
                raise locate(k, "preferred", f"a second preferred supplier for {rule.sku or 'all SKUs'}")
            preferred.add(rule.sku or "")


def check_periods_not_negative(table: RawTable, column: str) -> None:
    negative = (table.frame[column] < 0).to_numpy()
    if negative.any():
        raise table.locate(int(np.flatnonzero(negative)[0]), column, "periods start at 0")


def rows_beyond_horizon(table: RawTable, column: str, periods: int) -> list[str]:
    """Warnings for rows whose period lies at or after T; those rows are ignored."""
    beyond = (table.frame[column] >= periods).to_numpy()
    if not beyond.any():
        return []
    first = int(table.source_line[int(np.flatnonzero(beyond)[0])])
    where = "line" if table.is_csv else "row"
    return [
        f"{table.file}: {int(beyond.sum())} row(s) with {column} >= {periods} (first at {where} {first}) "
        "lie beyond the horizon and are ignored"
    ]


def usability_warnings(
    offers: pd.DataFrame, lanes: pd.DataFrame, skus: pd.Index, demand_by_sku: pd.Series, periods: int
) -> list[str]:
    """Legal data that cannot be used: offers that never arrive in time, SKUs with demand but no offer."""
    warnings: list[str] = []
    if not offers.empty:
        fastest_lane = lanes.groupby(level="supplier")["transit_time"].min()
        suppliers = offers.index.get_level_values("supplier")
        # Index.map accepts a Series as mapper; pandas-stubs only allows a Mapping or a callable.
        fastest = offers["lead_time"] + suppliers.map(fastest_lane).to_numpy()  # type: ignore[arg-type]
        never = offers.index[~(fastest <= periods - 1).to_numpy()]
        for supplier, sku in never:
            lead = int(offers.loc[(supplier, sku), "lead_time"])
            if supplier not in fastest_lane.index:
                warnings.append(
                    f"offer {supplier}/{sku}: supplier has no lane to any warehouse; it is never used"
                )
            else:
                warnings.append(
                    f"offer {supplier}/{sku}: lead time {lead} plus transit never arrives inside the "
                    f"{periods}-period horizon; it is never used"
                )
    offered = set(offers.index.get_level_values("sku"))
    for sku in skus:
        if sku not in offered and demand_by_sku.get(sku, 0.0) > 0:
            warnings.append(f"sku {sku} has demand but no offer: it can only be served from stock")
    return warnings
