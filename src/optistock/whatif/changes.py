"""What-if changes in the planner's vocabulary, applied to the canonical input tables.

A change is a one-key mapping in a scenario file's ``changes:`` list, for example::

    changes:
      - demand: {scale: 1.3, sku: [A, B], periods: [4, 8]}
      - supplier_outage: {supplier: S2, from_period: 5}
      - tariff: {percent: 15, supplier: S1}
      - budget: {scale: 0.8}

The schema is strict (unknown keys are errors) and every field carries its documentation, so the JSON
Schema published from it (``optistock scenarios schema``) lets editors autocomplete it.

:func:`apply_changes` is a pure function: it takes the canonical tables (table name → frame with the
contract's columns, as read by :mod:`optistock.preprocess.tables`), applies the changes in order and
returns new tables plus a log of what each change did. Names that do not exist, factors that make no
sense and files that cannot be read are :class:`InputError` naming the scenario file, the line of the
change and its field.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, SupportsFloat, cast

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from optistock.errors import InputError
from optistock.preprocess.checks import check_periods_not_negative, check_references
from optistock.preprocess.scenario import line_of
from optistock.preprocess.tables import TABLES, RawTable, read_table

logger = logging.getLogger(__name__)

Names = str | list[str]
PeriodRange = tuple[int, int]


class ChangeSpec(BaseModel):
    """Base of every change: unknown keys are errors, numbers must be finite."""

    model_config = ConfigDict(
        extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False, populate_by_name=True
    )


def _check_period_range(value: PeriodRange | None) -> PeriodRange | None:
    if value is not None:
        first, last = value
        if first < 0 or last < first:
            raise ValueError("periods is [first, last] with 0 <= first <= last")
    return value


def _exactly_one(spec: BaseModel, fields: Sequence[str]) -> None:
    given = [name for name in fields if getattr(spec, name) is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(fields)} (got {', '.join(given) or 'none'})")


class DemandChange(ChangeSpec):
    scale: float = Field(ge=0)
    """Factor on the demand quantity (and its std): 1.3 is +30 %, 0 removes the demand."""
    sku: Names | None = None
    """Only these SKUs (default: all)."""
    warehouse: Names | None = None
    """Only these warehouses (default: all)."""
    sku_class: Names | None = Field(default=None, alias="class")
    """Only the SKUs of these classes (the scenario's ``classes:`` mapping)."""
    periods: PeriodRange | None = None
    """Only these periods, [first, last] inclusive (default: all)."""

    _periods = field_validator("periods")(_check_period_range)


class LeadTimeChange(ChangeSpec):
    add: int | None = None
    """Periods added to the lead time (negative shortens it; the result must stay >= 0)."""
    scale: float | None = Field(default=None, ge=0)
    """Factor on the lead time, rounded to the nearest whole period."""
    supplier: Names | None = None
    """Only the offers of these suppliers (default: all)."""
    sku: Names | None = None
    """Only the offers of these SKUs (default: all)."""

    @model_validator(mode="after")
    def _one_operation(self) -> LeadTimeChange:
        _exactly_one(self, ("add", "scale"))
        return self


class SupplierOutage(ChangeSpec):
    supplier: str
    """The supplier that takes no orders."""
    from_period: int = Field(default=0, ge=0)
    """First order period of the outage."""
    to_period: int | None = Field(default=None, ge=0)
    """Last order period of the outage, inclusive (default: the end of the horizon)."""


class SupplierCapacityChange(ChangeSpec):
    supplier: Names
    """The supplier(s) whose capacity (units per order period) changes."""
    units: float | None = Field(default=None, ge=0)
    """New capacity in units per order period."""
    scale: float | None = Field(default=None, ge=0)
    """Factor on the capacity (an unlimited capacity stays unlimited)."""
    from_period: int | None = Field(default=None, ge=0)
    """First order period the change applies to (default: 0)."""
    to_period: int | None = Field(default=None, ge=0)
    """Last order period the change applies to, inclusive (default: the end of the horizon)."""

    @model_validator(mode="after")
    def _one_operation(self) -> SupplierCapacityChange:
        _exactly_one(self, ("units", "scale"))
        return self


class TariffChange(ChangeSpec):
    percent: float = Field(ge=-100)
    """Price change in percent on unit prices and price breaks: 15 is +15 %, -10 a 10 % discount."""
    supplier: Names | None = None
    """Only the offers of these suppliers (default: all)."""
    sku: Names | None = None
    """Only the offers of these SKUs (default: all)."""


class BudgetChange(ChangeSpec):
    amount: float | None = Field(default=None, ge=0)
    """Set the budget of every period in ``periods`` to this amount."""
    scale: float | None = Field(default=None, ge=0)
    """Factor on the existing budget rows in ``periods``."""
    total: float | None = Field(default=None, ge=0)
    """Spread this total over ``periods``: in proportion to the existing budget, evenly if none."""
    periods: PeriodRange | None = None
    """Order periods affected, [first, last] inclusive (default: the whole horizon)."""

    _periods = field_validator("periods")(_check_period_range)

    @model_validator(mode="after")
    def _one_operation(self) -> BudgetChange:
        _exactly_one(self, ("amount", "scale", "total"))
        return self


class WarehouseCapacityChange(ChangeSpec):
    warehouse: Names | None = None
    """The warehouse(s) whose storage volume changes (default: all)."""
    volume: float | None = Field(default=None, ge=0)
    """New storage capacity (volume)."""
    scale: float | None = Field(default=None, ge=0)
    """Factor on the storage capacity."""

    @model_validator(mode="after")
    def _one_operation(self) -> WarehouseCapacityChange:
        _exactly_one(self, ("volume", "scale"))
        return self


class RemoveWarehouse(ChangeSpec):
    warehouse: str
    """The warehouse to take out, with its demand, stock, open orders, lanes and transfer links."""


class RemoveTransfer(ChangeSpec):
    from_warehouse: str
    """Origin of the transfer link to remove."""
    to_warehouse: str
    """Destination of the transfer link to remove."""


TableName = Literal[
    "skus",
    "warehouses",
    "suppliers",
    "supplier_capacity",
    "offers",
    "price_breaks",
    "lanes",
    "transfers",
    "demand",
    "inventory",
    "open_orders",
    "budget",
]


class ReplaceTable(ChangeSpec):
    table: TableName
    """The input table to replace."""
    file: str
    """CSV or Parquet file with the new table, relative to the scenario file that names it."""


CHANGE_KINDS: dict[str, type[ChangeSpec]] = {
    "demand": DemandChange,
    "lead_time": LeadTimeChange,
    "supplier_outage": SupplierOutage,
    "supplier_capacity": SupplierCapacityChange,
    "tariff": TariffChange,
    "budget": BudgetChange,
    "warehouse_capacity": WarehouseCapacityChange,
    "remove_warehouse": RemoveWarehouse,
    "remove_transfer": RemoveTransfer,
    "replace_table": ReplaceTable,
}


class Change(ChangeSpec):
    """One change: exactly one of the keys below."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    demand: DemandChange | None = None
    """Scale demand, optionally only for some SKUs, warehouses, classes or periods."""
    lead_time: LeadTimeChange | None = None
    """Add periods to, or scale, the lead time of offers (by supplier, SKU)."""
    supplier_outage: SupplierOutage | None = None
    """A supplier takes no orders from ``from_period`` on (to ``to_period``)."""
    supplier_capacity: SupplierCapacityChange | None = None
    """Set or scale a supplier's capacity (units per order period), optionally for some periods."""
    tariff: TariffChange | None = None
    """Change unit prices and price breaks by a percentage (by supplier, SKU)."""
    budget: BudgetChange | None = None
    """Set, scale or spread the purchase budget per order period."""
    warehouse_capacity: WarehouseCapacityChange | None = None
    """Set or scale warehouse storage capacity."""
    remove_warehouse: RemoveWarehouse | None = None
    """Take a warehouse out of the network."""
    remove_transfer: RemoveTransfer | None = None
    """Take a transfer link out of the network."""
    replace_table: ReplaceTable | None = None
    """Replace a whole input table with another file."""

    @model_validator(mode="after")
    def _one_kind(self) -> Change:
        given = [kind for kind in CHANGE_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a change has exactly one of the keys {', '.join(CHANGE_KINDS)} "
                f"(got {', '.join(given) or 'none'})"
            )
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in CHANGE_KINDS if getattr(self, kind) is not None)

    @property
    def spec(self) -> ChangeSpec:
        spec: ChangeSpec = getattr(self, self.kind)
        return spec


@dataclass(frozen=True)
class LocatedChange:
    """A change with where it was written, so that errors can name the file, line and field."""

    change: Change
    origin: str
    """Which part of the scenario it comes from: ``base``, ``scenario NAME`` or ``--set``."""
    file: str | None = None
    """The scenario file that states the change (None: the command line)."""
    document: Any = None
    """The parsed YAML document of ``file`` (line numbers)."""
    path: tuple[str | int, ...] = ()
    """Where the change sits in ``document``, e.g. ``("changes", 2)``."""
    base_dir: Path = Path(".")
    """Folder that relative file names in the change are resolved against."""
    label: str | None = None
    """Name of the change on the command line (``--set budget.scale``), when it comes from there."""

    @property
    def source(self) -> str:
        if self.file is None:
            return self.label or self.origin
        line = line_of(self.document, *self.path)
        return f"{self.file}:{line}" if line is not None else self.file

    def error(self, message: str, *field: str | int) -> InputError:
        """An :class:`InputError` at the line of ``field`` of this change (e.g. ``"sku"``)."""
        kind = self.change.kind
        if self.file is None:
            return InputError(message, field=self.label or ".".join(str(p) for p in (kind, *field)))
        loc = (*self.path, kind, *field)
        return InputError(
            message,
            file=self.file,
            line=line_of(self.document, *loc),
            field=".".join(str(part) for part in loc),
        )


def describe_change(change: Change) -> str:
    """One line, as it would be written in YAML: ``tariff: {percent: 15.0, supplier: S1}``."""
    settings = change.spec.model_dump(mode="json", exclude_none=True, by_alias=True)
    return f"{change.kind}: {{{', '.join(f'{key}: {value}' for key, value in settings.items())}}}"


def _as_list(names: Names | None) -> list[str] | None:
    if names is None:
        return None
    return [names] if isinstance(names, str) else [str(name) for name in names]


@dataclass
class _Context:
    tables: dict[str, pd.DataFrame]
    located: LocatedChange
    periods: int
    classes: dict[str, list[str]]

    def frame(self, name: str) -> pd.DataFrame:
        """A copy of table ``name`` (an empty one with the contract's columns when absent)."""
        if name in self.tables:
            return self.tables[name].copy()
        columns = TABLES[name].column_names
        ids = {c.name for c in TABLES[name].columns if c.kind.name == "ID"}
        ints = {c.name for c in TABLES[name].columns if c.kind.name == "INT"}
        return pd.DataFrame(
            {c: pd.Series(dtype=object if c in ids else np.int64 if c in ints else float) for c in columns}
        )

    def known(self, names: list[str] | None, table: str, column: str, field: str) -> list[str] | None:
        """``names`` after checking that each is a row of ``table`` (an error at ``field`` otherwise)."""
        if names is None:
            return None
        existing = set(self.frame(table)[column].astype(str))
        for name in names:
            if name not in existing:
                known = ", ".join(sorted(existing)[:10]) + (", …" if len(existing) > 10 else "")
                raise self.located.error(f"unknown {column} '{name}' (known: {known})", field)
        return names

    def period(self, value: int | None, field: str) -> None:
        if value is not None and value >= self.periods:
            raise self.located.error(
                f"period {value} is outside the horizon (periods 0..{self.periods - 1})", field
            )

    def period_mask(self, values: pd.Series, periods: PeriodRange | None) -> np.ndarray:
        if periods is None:
            return np.ones(len(values), dtype=bool)
        self.period(periods[0], "periods")
        self.period(periods[1], "periods")
        array = values.to_numpy()
        return np.asarray((array >= periods[0]) & (array <= periods[1]), dtype=bool)


def _mask(frame: pd.DataFrame, column: str, names: list[str] | None) -> np.ndarray:
    if names is None:
        return np.ones(len(frame), dtype=bool)
    return np.asarray(frame[column].astype(str).isin(names).to_numpy(), dtype=bool)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.4g}"


def _apply_demand(ctx: _Context, spec: DemandChange) -> str:
    skus = ctx.known(_as_list(spec.sku), "skus", "sku", "sku")
    warehouses = ctx.known(_as_list(spec.warehouse), "warehouses", "warehouse", "warehouse")
    classes = _as_list(spec.sku_class)
    class_skus: list[str] | None = None
    if classes is not None:
        class_skus = []
        for name in classes:
            if name not in ctx.classes:
                defined = ", ".join(sorted(ctx.classes)) or "none: add a classes: mapping to the scenario"
                raise ctx.located.error(f"unknown class '{name}' (defined: {defined})", "class")
            members = ctx.known(ctx.classes[name], "skus", "sku", "class")
            class_skus += members or []
    demand = ctx.frame("demand")
    mask = _mask(demand, "sku", skus) & _mask(demand, "warehouse", warehouses)
    mask &= _mask(demand, "sku", class_skus) & ctx.period_mask(demand["period"], spec.periods)
    before = float(demand.loc[mask, "quantity"].sum())
    demand.loc[mask, "quantity"] = demand.loc[mask, "quantity"] * spec.scale
    demand.loc[mask, "std"] = demand.loc[mask, "std"] * spec.scale
    ctx.tables["demand"] = demand
    return (
        f"scaled {int(mask.sum())} demand rows by {spec.scale:g}: "
        f"{_fmt(before)} -> {_fmt(before * spec.scale)} units"
    )


def _apply_lead_time(ctx: _Context, spec: LeadTimeChange) -> str:
    suppliers = ctx.known(_as_list(spec.supplier), "suppliers", "supplier", "supplier")
    skus = ctx.known(_as_list(spec.sku), "skus", "sku", "sku")
    offers = ctx.frame("offers")
    mask = _mask(offers, "supplier", suppliers) & _mask(offers, "sku", skus)
    old = offers.loc[mask, "lead_time"].to_numpy(dtype=np.int64)
    if spec.add is not None:
        new = old + spec.add
        if (new < 0).any():
            raise ctx.located.error(
                f"lead time would become negative ({int(new.min())} periods) for some offers", "add"
            )
        what = f"{spec.add:+d} periods"
    else:
        assert spec.scale is not None
        new = np.floor(old * spec.scale + 0.5).astype(np.int64)
        what = f"x{spec.scale:g} (rounded to whole periods)"
    offers.loc[mask, "lead_time"] = new
    offers["lead_time"] = offers["lead_time"].astype(np.int64)
    ctx.tables["offers"] = offers
    return f"lead time of {int(mask.sum())} offers {what}"


def _upsert_supplier_periods(
    ctx: _Context, supplier: str, periods: range, capacity: dict[int, float]
) -> pd.DataFrame:
    table = ctx.frame("supplier_capacity")
    keep = ~((table["supplier"].astype(str) == supplier) & table["period"].isin(list(periods)))
    rows = pd.DataFrame(
        {
            "supplier": pd.Series([supplier] * len(capacity), dtype=object),
            "period": pd.Series(list(capacity), dtype=np.int64),
            "capacity": pd.Series(list(capacity.values()), dtype=float),
        }
    )
    table = pd.concat([table[keep], rows], ignore_index=True) if len(rows) else table[keep]
    table = table.astype({"period": np.int64, "capacity": float})
    return table.sort_values(["supplier", "period"]).reset_index(drop=True)


def _period_range(ctx: _Context, first: int | None, last: int | None) -> range:
    ctx.period(first, "from_period")
    ctx.period(last, "to_period")
    start = 0 if first is None else first
    stop = ctx.periods - 1 if last is None else last
    if stop < start:
        raise ctx.located.error(f"to_period {stop} is before from_period {start}", "to_period")
    return range(start, stop + 1)


def _current_capacity(ctx: _Context, supplier: str, period: int) -> float:
    table = ctx.frame("supplier_capacity")
    rows = table[(table["supplier"].astype(str) == supplier) & (table["period"] == period)]
    if len(rows):
        return float(rows["capacity"].iloc[0])
    suppliers = ctx.frame("suppliers").set_index("supplier")
    return float(cast(SupportsFloat, suppliers.at[supplier, "capacity"]))


def _apply_supplier_outage(ctx: _Context, spec: SupplierOutage) -> str:
    ctx.known([spec.supplier], "suppliers", "supplier", "supplier")
    periods = _period_range(ctx, spec.from_period, spec.to_period)
    ctx.tables["supplier_capacity"] = _upsert_supplier_periods(
        ctx, spec.supplier, periods, {t: 0.0 for t in periods}
    )
    return f"supplier {spec.supplier} takes no orders in periods {periods.start}..{periods.stop - 1}"


def _apply_supplier_capacity(ctx: _Context, spec: SupplierCapacityChange) -> str:
    suppliers = ctx.known(_as_list(spec.supplier), "suppliers", "supplier", "supplier") or []
    whole_horizon = spec.from_period is None and spec.to_period is None
    periods = _period_range(ctx, spec.from_period, spec.to_period)
    effects = []
    for supplier in suppliers:
        if whole_horizon:
            table = ctx.frame("suppliers")
            row = table["supplier"].astype(str) == supplier
            old = float(table.loc[row, "capacity"].iloc[0])
            new = spec.units if spec.units is not None else old * float(spec.scale or 0.0)
            table.loc[row, "capacity"] = new
            ctx.tables["suppliers"] = table
            overrides = ctx.frame("supplier_capacity")
            mine = overrides["supplier"].astype(str) == supplier
            if mine.any():
                if spec.units is not None:
                    overrides.loc[mine, "capacity"] = spec.units
                else:
                    overrides.loc[mine, "capacity"] = overrides.loc[mine, "capacity"] * float(spec.scale or 0)
                ctx.tables["supplier_capacity"] = overrides
            shown = "unlimited" if math.isnan(new) else _fmt(new)
            before = "unlimited" if math.isnan(old) else _fmt(old)
            effects.append(f"{supplier} {before} -> {shown} units per period")
        else:
            values: dict[int, float] = {}
            for period in periods:
                old = _current_capacity(ctx, supplier, period)
                new = spec.units if spec.units is not None else old * float(spec.scale or 0.0)
                if not math.isnan(new):
                    values[period] = new
            ctx.tables["supplier_capacity"] = _upsert_supplier_periods(ctx, supplier, periods, values)
            what = f"{_fmt(spec.units)} units" if spec.units is not None else f"x{spec.scale:g}"
            effects.append(f"{supplier} {what} in periods {periods.start}..{periods.stop - 1}")
    return "supplier capacity: " + "; ".join(effects)


def _apply_tariff(ctx: _Context, spec: TariffChange) -> str:
    suppliers = ctx.known(_as_list(spec.supplier), "suppliers", "supplier", "supplier")
    skus = ctx.known(_as_list(spec.sku), "skus", "sku", "sku")
    factor = 1.0 + spec.percent / 100.0
    counts = []
    for name in ("offers", "price_breaks"):
        if name not in ctx.tables:
            continue
        table = ctx.frame(name)
        mask = _mask(table, "supplier", suppliers) & _mask(table, "sku", skus)
        table.loc[mask, "unit_price"] = table.loc[mask, "unit_price"] * factor
        ctx.tables[name] = table
        counts.append(f"{int(mask.sum())} {name.replace('_', ' ')}")
    return f"prices {spec.percent:+g} % on {' and '.join(counts)}"


def _apply_budget(ctx: _Context, spec: BudgetChange) -> str:
    first, last = spec.periods if spec.periods is not None else (0, ctx.periods - 1)
    ctx.period(first, "periods")
    ctx.period(last, "periods")
    periods = list(range(first, last + 1))
    budget = ctx.frame("budget")
    in_range = budget["period"].isin(periods).to_numpy()
    before = float(budget.loc[in_range, "amount"].sum())
    if spec.scale is not None:
        if not in_range.any():
            raise ctx.located.error(
                f"there is no budget in periods {first}..{last} to scale; use amount or total instead",
                "scale",
            )
        budget.loc[in_range, "amount"] = budget.loc[in_range, "amount"] * spec.scale
    else:
        if spec.amount is not None:
            amounts = dict.fromkeys(periods, spec.amount)
        else:
            assert spec.total is not None
            existing = budget[in_range].set_index("period")["amount"]
            weights = {t: float(existing.get(t, 0.0)) for t in periods}
            if sum(weights.values()) <= 0:
                weights = dict.fromkeys(periods, 1.0)
            share = sum(weights.values())
            amounts = {t: spec.total * weight / share for t, weight in weights.items()}
        rows = pd.DataFrame(
            {
                "period": pd.Series(list(amounts), dtype=np.int64),
                "amount": pd.Series(list(amounts.values()), dtype=float),
            }
        )
        budget = pd.concat([budget[~in_range], rows], ignore_index=True)
    budget = budget.astype({"period": np.int64, "amount": float})
    ctx.tables["budget"] = budget.sort_values("period").reset_index(drop=True)
    after = float(budget.loc[budget["period"].isin(periods), "amount"].sum())
    return f"budget of periods {first}..{last}: {_fmt(before)} -> {_fmt(after)}"


def _apply_warehouse_capacity(ctx: _Context, spec: WarehouseCapacityChange) -> str:
    warehouses = ctx.known(_as_list(spec.warehouse), "warehouses", "warehouse", "warehouse")
    table = ctx.frame("warehouses")
    mask = _mask(table, "warehouse", warehouses)
    before = float(table.loc[mask, "capacity"].sum())
    if spec.volume is not None:
        table.loc[mask, "capacity"] = spec.volume
    else:
        table.loc[mask, "capacity"] = table.loc[mask, "capacity"] * float(spec.scale or 0.0)
    ctx.tables["warehouses"] = table
    after = float(table.loc[mask, "capacity"].sum())
    return f"storage capacity of {int(mask.sum())} warehouse(s): {_fmt(before)} -> {_fmt(after)}"


def _apply_remove_warehouse(ctx: _Context, spec: RemoveWarehouse) -> str:
    ctx.known([spec.warehouse], "warehouses", "warehouse", "warehouse")
    warehouses = ctx.frame("warehouses")
    if len(warehouses) == 1:
        raise ctx.located.error("cannot remove the only warehouse", "warehouse")
    ctx.tables["warehouses"] = warehouses[warehouses["warehouse"] != spec.warehouse].reset_index(drop=True)
    dropped: list[str] = []
    columns = {
        "lanes": ["warehouse"],
        "transfers": ["from_warehouse", "to_warehouse"],
        "demand": ["warehouse"],
        "inventory": ["warehouse"],
        "open_orders": ["warehouse"],
        "receipts": ["warehouse"],
    }
    for name, names in columns.items():
        if name not in ctx.tables:
            continue
        table = ctx.frame(name)
        gone = np.zeros(len(table), dtype=bool)
        for column in names:
            gone |= (table[column] == spec.warehouse).to_numpy()
        if gone.any():
            detail = f"{int(gone.sum())} {name} rows"
            if name == "demand":
                detail += f" ({_fmt(float(table.loc[gone, 'quantity'].sum()))} units of demand)"
            dropped.append(detail)
        ctx.tables[name] = table[~gone].reset_index(drop=True)
    return f"removed warehouse {spec.warehouse}" + (f": dropped {', '.join(dropped)}" if dropped else "")


def _apply_remove_transfer(ctx: _Context, spec: RemoveTransfer) -> str:
    ctx.known([spec.from_warehouse], "warehouses", "warehouse", "from_warehouse")
    ctx.known([spec.to_warehouse], "warehouses", "warehouse", "to_warehouse")
    links = ctx.frame("transfers")
    match = (
        (links["from_warehouse"] == spec.from_warehouse) & (links["to_warehouse"] == spec.to_warehouse)
    ).to_numpy()
    if not match.any():
        raise ctx.located.error(
            f"there is no transfer link {spec.from_warehouse} -> {spec.to_warehouse}", "from_warehouse"
        )
    ctx.tables["transfers"] = links[~match].reset_index(drop=True)
    return f"removed transfer link {spec.from_warehouse} -> {spec.to_warehouse}"


def _wrap(name: str, frame: pd.DataFrame) -> RawTable:
    """A table that was already validated, for the cross-table checks (rows counted from 1)."""
    return RawTable(
        TABLES[name],
        frame,
        f"{name} table (after the scenario's changes)",
        np.arange(len(frame)) + 1,
        is_csv=False,
    )


def _apply_replace_table(ctx: _Context, spec: ReplaceTable) -> str:
    path = ctx.located.base_dir / spec.file
    if not path.is_file():
        raise ctx.located.error(f"file not found: {path}", "file")
    if path.suffix not in (".csv", ".parquet"):
        raise ctx.located.error("the file must be a .csv or .parquet file", "file")
    replacement = read_table(TABLES[spec.table], path)
    raw = {name: _wrap(name, frame) for name, frame in ctx.tables.items() if name != spec.table}
    raw[spec.table] = replacement
    for required in ("skus", "warehouses", "suppliers", "offers"):
        if required not in raw:
            raw[required] = _wrap(required, ctx.frame(required))
    check_references(raw)
    for column in ("period", "arrival_period"):
        if column in replacement.frame.columns:
            check_periods_not_negative(replacement, column)
    ctx.tables[spec.table] = replacement.frame
    return f"table {spec.table} replaced by {path} ({len(replacement.frame)} rows)"


_APPLY: dict[str, Any] = {
    "demand": _apply_demand,
    "lead_time": _apply_lead_time,
    "supplier_outage": _apply_supplier_outage,
    "supplier_capacity": _apply_supplier_capacity,
    "tariff": _apply_tariff,
    "budget": _apply_budget,
    "warehouse_capacity": _apply_warehouse_capacity,
    "remove_warehouse": _apply_remove_warehouse,
    "remove_transfer": _apply_remove_transfer,
    "replace_table": _apply_replace_table,
}


def apply_changes(
    tables: dict[str, pd.DataFrame],
    changes: Sequence[LocatedChange],
    *,
    periods: int,
    classes: dict[str, list[str]] | None = None,
) -> tuple[dict[str, pd.DataFrame], list[dict[str, Any]]]:
    """Apply ``changes`` in order to the canonical ``tables`` (which are not modified).

    Returns the new tables and the change log: for each change its kind, its settings as written,
    where it was written (``source``: file and line), which part of the scenario it belongs to
    (``origin``) and what it did (``effect``).
    """
    current = dict(tables)
    log: list[dict[str, Any]] = []
    for located in changes:
        change = located.change
        ctx = _Context(current, located, periods, classes or {})
        effect = _APPLY[change.kind](ctx, change.spec)
        entry = {
            "kind": change.kind,
            "settings": change.spec.model_dump(mode="json", exclude_none=True, by_alias=True),
            "origin": located.origin,
            "source": located.source,
            "effect": effect,
        }
        logger.info("change %s from %s (%s): %s", change.kind, entry["source"], located.origin, effect)
        log.append(entry)
    return current, log
