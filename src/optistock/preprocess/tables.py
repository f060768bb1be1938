"""Input tables: the column contract, reading CSV or Parquet, and type validation with row numbers.

Every table is a file in the scenario's data folder named after the table (``skus.csv`` or
``skus.parquet``). Column names are part of the contract; extra columns are allowed and ignored.
Type checks live here; checks that relate tables to each other live in :mod:`.checks`.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
import pandas as pd

from optistock.errors import InputError


class Kind(Enum):
    ID = "identifier"
    INT = "whole number"
    FLOAT = "number"
    DATE = "date"


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool = True
    """A required column must be present and filled on every row."""
    minimum: float | None = 0.0
    """Smallest allowed value (inclusive) for numbers; ``None`` for no lower limit."""
    strictly_positive: bool = False
    default: float | None = None
    """Value used for blanks in an optional column (``None``: leave NaN, meaning 'no limit')."""
    maximum: float | None = None
    """Largest allowed value (inclusive) for numbers; ``None`` for no upper limit."""
    only_when_given: bool = False
    """An optional column that is left out of the canonical table when the file does not have it, so
    that tables without it stay exactly as they were (the shelf-life, channel and age columns). An
    optional identifier column of this kind may be blank (read as "")."""


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    required: bool = True
    description: str = ""
    either: tuple[tuple[str, str], ...] = ()
    """Pairs of alternative columns (a period and a date): exactly one of each pair is in the file."""
    required_unless: str | None = None
    """A required table that may be missing when this other table is given (demand ← sales_history)."""
    optional_key: tuple[str, ...] = ()
    """Columns (``only_when_given``) that become part of the key when the file has them."""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns if not c.only_when_given]

    @property
    def alternatives(self) -> set[str]:
        """Columns that belong to an :attr:`either` pair."""
        return {name for pair in self.either for name in pair}


def _id(name: str) -> Column:
    return Column(name, Kind.ID)


def _period_or_date(period: str, date: str, *, blank_allowed: bool = False) -> tuple[Column, Column]:
    """A history period (negative before the horizon: period 0 is the first planning period) and the
    date it may be given as instead (converted with ``horizon.start``, see :mod:`.history`)."""
    return (
        Column(period, Kind.INT, required=not blank_allowed, minimum=None),
        Column(date, Kind.DATE, required=not blank_allowed),
    )


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "skus",
            (
                _id("sku"),
                Column("unit_volume", Kind.FLOAT),
                Column("holding_cost", Kind.FLOAT),
                Column("shortage_cost", Kind.FLOAT),
                Column(
                    "shelf_life",
                    Kind.INT,
                    required=False,
                    strictly_positive=True,
                    minimum=None,
                    only_when_given=True,
                ),
                Column("waste_cost", Kind.FLOAT, required=False, only_when_given=True),
            ),
            key=("sku",),
            description="stock-keeping units",
        ),
        TableSpec(
            "warehouses",
            (_id("warehouse"), Column("capacity", Kind.FLOAT)),
            key=("warehouse",),
            description="warehouses and their storage volume",
        ),
        TableSpec(
            "suppliers",
            (
                _id("supplier"),
                Column("order_cost", Kind.FLOAT),
                Column("min_order_value", Kind.FLOAT, required=False, default=0.0),
                Column("capacity", Kind.FLOAT, required=False, default=None),
            ),
            key=("supplier",),
            description="suppliers: fixed cost per purchase order, minimum order value, capacity",
        ),
        TableSpec(
            "supplier_capacity",
            (_id("supplier"), Column("period", Kind.INT), Column("capacity", Kind.FLOAT)),
            key=("supplier", "period"),
            required=False,
            description="a supplier's capacity in one order period, replacing suppliers.capacity there "
            "(0 = the supplier takes no orders in that period: an outage)",
        ),
        TableSpec(
            "offers",
            (
                _id("supplier"),
                _id("sku"),
                Column("unit_price", Kind.FLOAT),
                Column("moq", Kind.INT),
                Column("order_multiple", Kind.INT),
                Column("lead_time", Kind.INT),
                Column("lead_time_std", Kind.FLOAT, required=False, default=0.0),
            ),
            key=("supplier", "sku"),
            description="which supplier sells which SKU, at what price and terms",
        ),
        TableSpec(
            "price_breaks",
            (
                _id("supplier"),
                _id("sku"),
                Column("min_quantity", Kind.INT, strictly_positive=True),
                Column("unit_price", Kind.FLOAT),
            ),
            key=("supplier", "sku", "min_quantity"),
            required=False,
            description="all-units quantity discounts",
        ),
        TableSpec(
            "lanes",
            (
                _id("supplier"),
                _id("warehouse"),
                Column("transit_time", Kind.INT),
                Column("cost_per_unit", Kind.FLOAT),
            ),
            key=("supplier", "warehouse"),
            required=False,
            description="supplier → warehouse shipping lanes",
        ),
        TableSpec(
            "transfers",
            (
                _id("from_warehouse"),
                _id("to_warehouse"),
                Column("lead_time", Kind.INT),
                Column("cost_per_unit", Kind.FLOAT),
            ),
            key=("from_warehouse", "to_warehouse"),
            required=False,
            description="warehouse → warehouse transfer links",
        ),
        TableSpec(
            "demand",
            (
                _id("sku"),
                _id("warehouse"),
                Column("period", Kind.INT),
                Column("quantity", Kind.FLOAT),
                Column("std", Kind.FLOAT, required=False, default=0.0),
                Column("channel", Kind.ID, required=False, only_when_given=True),
            ),
            key=("sku", "warehouse", "period"),
            optional_key=("channel",),
            description="demand per SKU, warehouse and period",
            required_unless="sales_history",
        ),
        TableSpec(
            "inventory",
            (
                _id("sku"),
                _id("warehouse"),
                Column("on_hand", Kind.FLOAT),
                Column("age", Kind.INT, required=False, default=0.0, only_when_given=True),
            ),
            key=("sku", "warehouse"),
            optional_key=("age",),
            description="stock on hand at the start of period 0",
        ),
        TableSpec(
            "open_orders",
            (
                _id("supplier"),
                _id("sku"),
                _id("warehouse"),
                Column("arrival_period", Kind.INT),
                Column("quantity", Kind.FLOAT),
            ),
            key=(),
            required=False,
            description="orders already placed; they arrive for sure",
        ),
        TableSpec(
            "service_levels",
            (
                _id("sku"),
                Column("warehouse", Kind.ID, required=False),
                Column("service_level", Kind.FLOAT, strictly_positive=True),
            ),
            key=("sku", "warehouse"),
            required=False,
            description="target cycle service level of a SKU (blank warehouse: at every warehouse) or of "
            "a SKU at one warehouse, overriding the scenario's class targets; strictly between 0 and 1",
        ),
        TableSpec(
            "safety_stock",
            (_id("sku"), _id("warehouse"), Column("quantity", Kind.FLOAT)),
            key=("sku", "warehouse"),
            required=False,
            description="safety stock of a SKU at a warehouse in units, used instead of the formula",
        ),
        TableSpec(
            "budget",
            (Column("period", Kind.INT), Column("amount", Kind.FLOAT)),
            key=("period",),
            required=False,
            description="purchase budget per order period",
        ),
        TableSpec(
            "receipts",
            (
                _id("supplier"),
                _id("sku"),
                _id("warehouse"),
                *_period_or_date("order_period", "order_date"),
                *_period_or_date("promised_period", "promised_date"),
                *_period_or_date("received_period", "received_date", blank_allowed=True),
                Column("quantity_ordered", Kind.FLOAT, strictly_positive=True),
                Column("quantity_received", Kind.FLOAT),
            ),
            key=(),
            required=False,
            description="supplier delivery history, one row per order line: when it was ordered, "
            "promised and received, how much was ordered and received (blank received: never delivered)",
            either=(
                ("order_period", "order_date"),
                ("promised_period", "promised_date"),
                ("received_period", "received_date"),
            ),
        ),
        TableSpec(
            "sales_history",
            (
                _id("sku"),
                _id("warehouse"),
                *_period_or_date("period", "date"),
                Column("quantity", Kind.FLOAT),
            ),
            key=(),
            required=False,
            description="past sales per SKU, warehouse and period (or date); the demand is forecast from "
            "it when the demand table is absent",
            either=(("period", "date"),),
        ),
        TableSpec(
            "channels",
            (
                _id("channel"),
                Column("priority", Kind.INT, required=False, only_when_given=True),
                Column("shortage_cost", Kind.FLOAT, required=False, only_when_given=True),
            ),
            key=("channel",),
            required=False,
            description="sales channels of demand.channel: who is served first when stock is short",
        ),
        TableSpec(
            "sourcing",
            (
                _id("supplier"),
                Column("sku", Kind.ID, required=False, only_when_given=True),
                Column("min_share", Kind.FLOAT, required=False, maximum=1.0, only_when_given=True),
                Column("max_share", Kind.FLOAT, required=False, maximum=1.0, only_when_given=True),
                Column("preferred", Kind.INT, required=False, maximum=1.0, only_when_given=True),
                Column("off", Kind.INT, required=False, maximum=1.0, only_when_given=True),
            ),
            key=("supplier",),
            optional_key=("sku",),
            required=False,
            description="sourcing rules: a supplier's share of a SKU's (blank sku: of all) units, "
            "preferred supplier, supplier or offer switched off",
        ),
    )
}


@dataclass
class RawTable:
    """One input table after type validation: canonical columns and where each row came from."""

    spec: TableSpec
    frame: pd.DataFrame
    file: str
    source_line: np.ndarray = field(repr=False)
    """For each row, its line in the CSV file (header = line 1) or its 1-based row in Parquet."""
    is_csv: bool = True

    def locate(self, position: int, column: str | None = None, message: str = "") -> InputError:
        """An :class:`InputError` pointing at row ``position`` (0-based) of this table."""
        number = int(self.source_line[position])
        if self.is_csv:
            return InputError(message, file=self.file, line=number, field=column)
        return InputError(message, file=self.file, row=number, field=column)


def find_table_file(data_dir: Path, name: str) -> Path | None:
    """The file holding table ``name``: ``name.csv`` or ``name.parquet`` (both present is an error)."""
    csv, parquet = data_dir / f"{name}.csv", data_dir / f"{name}.parquet"
    if csv.is_file() and parquet.is_file():
        raise InputError(f"both {csv.name} and {parquet.name} exist; keep one", file=str(data_dir))
    if csv.is_file():
        return csv
    if parquet.is_file():
        return parquet
    return None


def read_table(spec: TableSpec, path: Path) -> RawTable:
    """Read one table and validate its columns' presence and types, naming row and column on error."""
    file = str(path)
    is_csv = path.suffix == ".csv"
    try:
        if is_csv:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        else:
            frame = pd.read_parquet(path)
    except pd.errors.EmptyDataError as exc:
        raise InputError(
            "file is empty (a header line with the column names is required)", file=file
        ) from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise InputError(f"cannot read the file: {str(exc).strip()}", file=file) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    # pandas renames a repeated CSV header ("moq", "moq.1"): look for repeats in the header as written
    names = _csv_header(path) if is_csv else list(frame.columns)
    duplicated = [c for c in names if names.count(c) > 1]
    if duplicated:
        raise InputError(
            "column appears more than once", file=file, line=1 if is_csv else None, field=duplicated[0]
        )
    present = set(frame.columns)
    for column in spec.columns:
        if column.required and column.name not in present and column.name not in spec.alternatives:
            raise InputError(
                f"missing column (the {spec.name} table needs: {', '.join(_needed(spec))})",
                file=file,
                line=1 if is_csv else None,
                field=column.name,
            )
    for first, second in spec.either:
        if first in present and second in present:
            raise InputError(
                f"give either {first} or {second}, not both",
                file=file,
                line=1 if is_csv else None,
                field=second,
            )
        if first not in present and second not in present:
            raise InputError(
                f"missing column: {first} or {second} "
                f"(the {spec.name} table needs: {', '.join(_needed(spec))})",
                file=file,
                line=1 if is_csv else None,
                field=first,
            )
    source_line = _csv_source_lines(path, len(frame)) if is_csv else np.arange(len(frame)) + 1
    table = RawTable(spec, frame, file, source_line, is_csv)
    canonical = {}
    for column in spec.columns:
        if column.name in present:
            canonical[column.name] = _convert_column(table, column)
        elif not column.only_when_given:
            canonical[column.name] = _default_series(column, len(frame))
    table.frame = pd.DataFrame(canonical, index=pd.RangeIndex(len(frame)))
    _check_unique_key(table)
    return table


def _needed(spec: TableSpec) -> list[str]:
    """The columns of ``spec`` as a reader would list them: ``period|date`` for a pair."""
    if not spec.either:
        return spec.column_names
    pairs = {first: f"{first}|{second}" for first, second in spec.either}
    seconds = {second for _, second in spec.either}
    return [
        pairs.get(c.name, c.name)
        for c in spec.columns
        if c.name not in seconds and (c.required or c.name in pairs)
    ]


def _csv_header(path: Path) -> list[str]:
    """The column names of a CSV file as written (its first non-blank line)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for record in csv.reader(handle, skipinitialspace=True):
            if len(record) > 1 or "".join(record).strip():
                return [name.strip() for name in record]
    return []


def _csv_source_lines(path: Path, rows: int) -> np.ndarray:
    """The file line of each data row (header = line 1). pandas skips blank lines and a quoted field can
    span lines, so when the file has more lines than rows, the lines are counted again with :mod:`csv`."""
    naive = np.arange(rows) + 2
    raw = path.read_bytes()
    if raw.count(b"\n") + (not raw.endswith(b"\n")) == rows + 1:
        return naive  # one line per row: nothing skipped, nothing spans lines
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return naive
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    starts: list[int] = []
    end = 0
    for record in reader:
        start, end = end + 1, reader.line_num
        if len(record) <= 1 and not "".join(record).strip():
            continue  # a blank line: pandas skips it
        starts.append(start)
    lines = np.asarray(starts[1:], dtype=np.int64)  # the first record is the header
    return lines if len(lines) == rows else naive


def _default_series(column: Column, length: int) -> pd.Series:
    if column.kind is Kind.ID:
        return pd.Series([""] * length, dtype=object)
    if column.kind is Kind.DATE:
        return pd.Series(pd.NaT, index=pd.RangeIndex(length), dtype="datetime64[ns]")
    value = np.nan if column.default is None else column.default
    return pd.Series(np.full(length, value, dtype=float))


def _blank_mask(values: pd.Series) -> np.ndarray:
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        return np.asarray(values.isna() | (values.astype(str).str.strip() == ""), dtype=bool)
    return np.asarray(values.isna(), dtype=bool)


def _convert_column(table: RawTable, column: Column) -> pd.Series:
    raw = table.frame[column.name]
    blank = _blank_mask(raw)
    if column.kind is Kind.ID:
        if not column.required:
            return raw.where(~blank, "").astype(str).str.strip().astype(object)
        if blank.any():
            position = int(np.flatnonzero(blank)[0])
            raise table.locate(position, column.name, "empty identifier")
        return raw.astype(str).str.strip().astype(object)

    if blank.any() and column.required:
        position = int(np.flatnonzero(blank)[0])
        raise table.locate(position, column.name, f"value is missing (a {column.kind.value} is required)")
    if column.kind is Kind.DATE:
        return _convert_dates(table, column, raw, blank)
    numbers = pd.to_numeric(raw.where(~blank), errors="coerce").astype(float)
    not_numeric = np.asarray(numbers.isna(), dtype=bool) & ~blank
    if not_numeric.any():
        position = int(np.flatnonzero(not_numeric)[0])
        raise table.locate(
            position, column.name, f"expected a {column.kind.value}, got {raw.iloc[position]!r}"
        )
    values = numbers.to_numpy()
    filled = ~blank
    not_finite = filled & ~np.isfinite(values)
    if not_finite.any():
        position = int(np.flatnonzero(not_finite)[0])
        raise table.locate(
            position, column.name, f"expected a finite {column.kind.value}, got {raw.iloc[position]!r}"
        )
    if column.kind is Kind.INT:
        fractional = filled & (np.abs(values - np.round(values)) > 1e-9)
        if fractional.any():
            position = int(np.flatnonzero(fractional)[0])
            raise table.locate(position, column.name, f"expected a whole number, got {raw.iloc[position]!r}")
        values = np.round(values)
    if column.minimum is not None:
        too_small = filled & (values < column.minimum)
        if too_small.any():
            position = int(np.flatnonzero(too_small)[0])
            raise table.locate(
                position, column.name, f"must be >= {_fmt(column.minimum)}, got {raw.iloc[position]!r}"
            )
    if column.maximum is not None:
        too_large = filled & (values > column.maximum)
        if too_large.any():
            position = int(np.flatnonzero(too_large)[0])
            raise table.locate(
                position, column.name, f"must be <= {_fmt(column.maximum)}, got {raw.iloc[position]!r}"
            )
    if column.strictly_positive:
        not_positive = filled & (values <= 0)
        if not_positive.any():
            position = int(np.flatnonzero(not_positive)[0])
            raise table.locate(position, column.name, f"must be > 0, got {raw.iloc[position]!r}")
    if blank.any() and column.default is not None:
        values = np.where(blank, column.default, values)
    if column.kind is Kind.INT and not np.isnan(values).any():
        return pd.Series(values.astype(np.int64))
    return pd.Series(values, dtype=float)


def _convert_dates(table: RawTable, column: Column, raw: pd.Series, blank: np.ndarray) -> pd.Series:
    """Calendar dates (``YYYY-MM-DD`` in CSV; a date or timestamp column in Parquet), as midnight
    timestamps; blanks become NaT."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        dates = pd.Series(pd.to_datetime(raw), index=pd.RangeIndex(len(raw)))
        if isinstance(dates.dtype, pd.DatetimeTZDtype):
            dates = dates.dt.tz_localize(None)
        return dates.dt.normalize().astype("datetime64[ns]")
    text = raw.astype(object).where(~blank).map(lambda v: v if v is None or pd.isna(v) else str(v).strip())
    dates = pd.to_datetime(text, format="ISO8601", errors="coerce")
    bad = np.asarray(dates.isna(), dtype=bool) & ~blank
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise table.locate(position, column.name, f"expected a date (YYYY-MM-DD), got {raw.iloc[position]!r}")
    return pd.Series(dates.dt.normalize().to_numpy(dtype="datetime64[ns]"), index=pd.RangeIndex(len(raw)))


def _fmt(value: float) -> str:
    return str(int(value)) if math.isfinite(value) and value == int(value) else str(value)


def _check_unique_key(table: RawTable) -> None:
    key = list(table.spec.key) + [c for c in table.spec.optional_key if c in table.frame.columns]
    if not key:
        return
    duplicated = np.asarray(table.frame.duplicated(subset=key, keep="first"), dtype=bool)
    if duplicated.any():
        position = int(np.flatnonzero(duplicated)[0])
        row = table.frame.iloc[position]
        value = ", ".join(f"{k}={row[k]}" for k in key)
        first = int(np.flatnonzero(np.asarray((table.frame[key] == row[key]).all(axis=1)))[0])
        raise table.locate(
            position,
            ",".join(key),
            f"duplicate key ({value}); first given at {'line' if table.is_csv else 'row'} "
            f"{int(table.source_line[first])}",
        )


def read_tables(data_dir: Path) -> dict[str, RawTable]:
    """Read every table of the contract that is present; a required table that is missing is an error."""
    tables: dict[str, RawTable] = {}
    for name, spec in TABLES.items():
        path = find_table_file(data_dir, name)
        if path is None:
            waived = spec.required_unless is not None and find_table_file(data_dir, spec.required_unless)
            if spec.required and not waived:
                instead = (
                    f" (or {spec.required_unless}.csv to forecast it from)" if spec.required_unless else ""
                )
                raise InputError(
                    f"required table '{name}' is missing: expected {name}.csv or {name}.parquet{instead}",
                    file=str(data_dir / f"{name}.csv"),
                )
            continue
        tables[name] = read_table(spec, path)
    return tables
