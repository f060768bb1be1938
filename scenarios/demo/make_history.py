"""Write the demo company's history: its tables without demand, two years of weekly sales and a year of
supplier receipts, both dated, into ``scenarios/demo/history/`` (the data of ``history.yaml``).

The sales of each SKU and warehouse are Poisson around the level of the demo's demand (so slow movers
come out intermittent), with a yearly season for every third SKU; the receipts follow each supplier's
offers and lanes with a delay and short-delivery pattern per supplier. Deterministic (seed 20261125):
re-running this script reproduces the files byte for byte.

Usage::

    python scenarios/demo/make_history.py [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DEMO_DATA = HERE / "data"
DEFAULT_OUT = HERE / "history"
SEED = 20261125
START = dt.date(2027, 1, 4)  # horizon.start of the demo
WEEKS = 104
DELAYS = {  # supplier → (possible delays against the promise in weeks, their probabilities)
    "SUP-01": ([0, 1], [0.95, 0.05]),
    "SUP-02": ([0, 1, 2], [0.7, 0.2, 0.1]),
    "SUP-03": ([-1, 0, 1, 3], [0.1, 0.5, 0.25, 0.15]),
    "SUP-04": ([0, 1], [0.85, 0.15]),
}
SHORT = {"SUP-01": 0.02, "SUP-02": 0.1, "SUP-03": 0.2, "SUP-04": 0.05}
"""Share of lines delivered short (80 % of the quantity)."""


def week(period: int, weekday: int = 0) -> str:
    """The date of ``weekday`` (0 = Monday) in ``period`` (weekly from START)."""
    return (START + dt.timedelta(days=7 * period + weekday)).isoformat()


def sales_history(rng: np.random.Generator) -> pd.DataFrame:
    demand = pd.read_csv(DEMO_DATA / "demand.csv")
    level = demand.groupby(["sku", "warehouse"], sort=True)["quantity"].mean()
    periods = np.arange(-WEEKS, 0)
    rows = []
    for number, ((sku, warehouse), mean) in enumerate(level.items()):
        season = 1 + 0.4 * np.sin(2 * np.pi * periods / 52) if number % 3 == 0 else np.ones(WEEKS)
        sold = rng.poisson(mean * season)
        for period, quantity in zip(periods, sold, strict=True):
            if quantity > 0:
                rows.append((sku, warehouse, week(int(period)), int(quantity)))
    return pd.DataFrame(rows, columns=["sku", "warehouse", "date", "quantity"])


def receipts(rng: np.random.Generator) -> pd.DataFrame:
    offers = pd.read_csv(DEMO_DATA / "offers.csv")
    lanes = pd.read_csv(DEMO_DATA / "lanes.csv").set_index(["supplier", "warehouse"])["transit_time"]
    rows = []
    for offer in offers.itertuples():
        for (supplier, warehouse), transit in lanes.items():
            if supplier != offer.supplier:
                continue
            for ordered in sorted(rng.choice(np.arange(-56, -6), size=3, replace=False)):
                promised = int(ordered) + int(offer.lead_time) + int(transit)
                delays, weights = DELAYS[str(supplier)]
                received = promised + int(rng.choice(delays, p=weights))
                received = max(received, int(ordered))
                quantity = max(int(offer.moq), int(offer.order_multiple) * int(rng.integers(2, 8)))
                got = round(0.8 * quantity) if rng.random() < SHORT[str(supplier)] else quantity
                rows.append(
                    (
                        supplier,
                        offer.sku,
                        warehouse,
                        week(int(ordered), int(rng.integers(0, 5))),
                        week(promised, 4),
                        week(received, int(rng.integers(0, 5))),
                        quantity,
                        got,
                    )
                )
    columns = [
        "supplier",
        "sku",
        "warehouse",
        "order_date",
        "promised_date",
        "received_date",
        "quantity_ordered",
        "quantity_received",
    ]
    return pd.DataFrame(rows, columns=columns)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for table in sorted(DEMO_DATA.glob("*.csv")):
        if table.name != "demand.csv":
            shutil.copyfile(table, args.out / table.name)
    rng = np.random.default_rng(SEED)
    sales_history(rng).to_csv(args.out / "sales_history.csv", index=False, lineterminator="\n")
    receipts(rng).to_csv(args.out / "receipts.csv", index=False, lineterminator="\n")
    print(f"wrote the demo history to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
