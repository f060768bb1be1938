"""Side-by-side comparison of written runs: KPIs with deltas against the first run, and PO changes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from optistock.whatif.kpis import read_run_csv, run_kpis

PO_CHANGE_COLUMNS = ["run", "po_id", "change", "value_before", "value_after", "detail"]


def run_labels(run_dirs: Sequence[Path]) -> list[str]:
    """A short, unique label per run: its folder name (with the parent's when names repeat)."""
    labels = [path.name or str(path) for path in run_dirs]
    if len(set(labels)) < len(labels):
        labels = [f"{path.parent.name}/{path.name}" for path in run_dirs]
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return unique


def kpi_table(run_dirs: Sequence[Path]) -> pd.DataFrame:
    """KPIs (rows) of each run (columns), then ``Δ LABEL`` = run − first run for each later run.

    A KPI that exists in only some runs (a supplier or warehouse that is not everywhere) is NaN where
    it is missing.
    """
    labels = run_labels(run_dirs)
    columns = {label: pd.Series(run_kpis(path)) for label, path in zip(labels, run_dirs, strict=True)}
    order: list[str] = []
    for series in columns.values():
        order += [name for name in series.index if name not in order]
    table = pd.DataFrame(columns).reindex(order)
    first = labels[0]
    for label in labels[1:]:
        table[f"Δ {label}"] = table[label] - table[first]
    table.index.name = "kpi"
    return table


def po_changes(run_dirs: Sequence[Path]) -> pd.DataFrame:
    """Purchase orders that appear, disappear or change (lines, quantities or value) in each later run
    compared with the first."""
    labels = run_labels(run_dirs)
    base_pos, base_lines = _purchase_orders(run_dirs[0])
    rows = []
    for label, path in zip(labels[1:], run_dirs[1:], strict=True):
        pos, lines = _purchase_orders(path)
        for po in sorted(set(base_pos) | set(pos)):
            before, after = base_pos.get(po), pos.get(po)
            if before is None:
                rows.append((label, po, "added", math.nan, after, _lines_text(lines.get(po, {}))))
            elif after is None:
                rows.append((label, po, "removed", before, math.nan, _lines_text(base_lines.get(po, {}))))
            elif base_lines.get(po) != lines.get(po) or abs(before - after) > 1e-6:
                detail = _line_diff(base_lines.get(po, {}), lines.get(po, {}))
                rows.append((label, po, "changed", before, after, detail))
    return pd.DataFrame(rows, columns=PO_CHANGE_COLUMNS)


def _purchase_orders(run_dir: Path) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    purchase_orders = read_run_csv(run_dir / "purchase_orders.csv")
    orders = read_run_csv(run_dir / "orders.csv")
    values = {
        str(p): float(v)
        for p, v in zip(purchase_orders["po_id"], purchase_orders["total_value"], strict=True)
    }
    lines: dict[str, dict[str, float]] = {}
    for po, sku, quantity in zip(orders["po_id"], orders["sku"], orders["quantity"], strict=True):
        lines.setdefault(str(po), {})[str(sku)] = float(quantity)
    return values, lines


def _lines_text(lines: dict[str, float]) -> str:
    return ", ".join(f"{sku} {quantity:g}" for sku, quantity in sorted(lines.items()))


def _line_diff(before: dict[str, float], after: dict[str, float]) -> str:
    parts = []
    for sku in sorted(set(before) | set(after)):
        old, new = before.get(sku, 0.0), after.get(sku, 0.0)
        if abs(old - new) > 1e-9:
            parts.append(f"{sku} {old:g} -> {new:g}")
    return ", ".join(parts)


def format_kpi_table(table: pd.DataFrame) -> str:
    """The KPI table as aligned text: shares as percentages, money and units with separators."""
    header = ["kpi", *table.columns]
    body = []
    for kpi, row in table.iterrows():
        cells = [str(kpi)]
        for column in table.columns:
            cells.append(_format_value(str(kpi), float(row[column]), delta=str(column).startswith("Δ")))
        body.append(cells)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(header))]
    for cells in body:
        lines.append(
            "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells))
        )
    return "\n".join(lines)


def _format_value(kpi: str, value: float, delta: bool) -> str:
    if math.isnan(value):
        return "-"
    share = kpi in ("fill_rate", "budget_use", "cycle_service_level") or kpi.startswith("peak_storage_use")
    sign = "+" if delta else ""
    if share:
        return f"{100 * value:{sign},.2f}%" if not delta else f"{100 * value:+,.2f} pp"
    if kpi in ("purchase_orders", "order_lines"):
        return f"{value:{sign},.0f}"
    return f"{value:{sign},.2f}"


def write_comparison(
    table: pd.DataFrame, changes: pd.DataFrame, csv: Path | None, excel: Path | None
) -> None:
    """Write the KPI table (and the PO changes next to it, ``NAME.po_changes.csv``) as CSV and/or as
    an Excel workbook with the sheets ``kpis`` and ``po_changes``."""
    if csv is not None:
        table.to_csv(csv, lineterminator="\n")
        changes.to_csv(csv.with_name(f"{csv.stem}.po_changes.csv"), index=False, lineterminator="\n")
    if excel is not None:
        with pd.ExcelWriter(excel, engine="openpyxl") as writer:
            table.to_excel(writer, sheet_name="kpis")
            changes.to_excel(writer, sheet_name="po_changes", index=False)
