"""ABC / XYZ classification of SKUs and SKU-warehouse pairs.

- **ABC** ranks by consumption value over the horizon: Σ demand × unit cost, the unit cost being the
  SKU's lowest list price among its offers (0 without an offer). Ranked from the highest value, an item
  is A while the items ranked before it hold less than the A share of the total value, B while they hold
  less than the A + B share, C otherwise — so the most valuable item is always A. Ties are ranked by name;
  items without consumption value are C.
- **XYZ** classes by the coefficient of variation of demand per period, CV = σ / μ, where μ is the
  mean demand per period over the horizon (periods without a row count as 0) and σ² = the variance of
  the per-period means plus the mean of the forecast-error variances (``demand.std``²): the variability
  of demand in a period drawn at random. X: CV ≤ the X limit, Y: CV ≤ the Y limit, Z otherwise (also Z:
  no demand at all).

Classes are computed per SKU (over all warehouses) and per SKU-warehouse pair. The SKU classes drive
service targets and the ``class`` filter of what-if changes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optistock.preprocess.scenario import ClassificationSettings

CLASS_COLUMNS = [
    "sku",
    "warehouse",
    "unit_cost",
    "demand",
    "consumption_value",
    "value_share",
    "cumulative_share",
    "abc",
    "mean_demand",
    "demand_cv",
    "xyz",
    "abc_xyz",
]
ALL = "*"
"""The ``warehouse`` of a SKU-level row."""


def unit_costs(offers: pd.DataFrame, skus: pd.Index) -> pd.Series:
    """Lowest list price of each SKU among its offers (``offers`` has columns sku, unit_price); 0 when
    the SKU has no offer."""
    if len(offers) == 0:
        return pd.Series(0.0, index=skus, dtype=float)
    lowest = offers.groupby("sku")["unit_price"].min().astype(float)
    return lowest.reindex(skus, fill_value=0.0)


def abc_classes(values: pd.Series, settings: ClassificationSettings) -> pd.DataFrame:
    """ABC class of each item of ``values`` (consumption value, indexed by item), with its share and
    the cumulative share of the items ranked up to and including it."""
    order = sorted(values.index, key=lambda item: (-float(values[item]), str(item)))
    ranked = values.reindex(order).astype(float)
    total = float(ranked.sum())
    share = ranked / total if total > 0 else ranked * 0.0
    cumulative = share.cumsum()
    before = cumulative - share
    a_limit = settings.abc["A"]
    b_limit = settings.abc["A"] + settings.abc["B"]
    tol = 1e-12
    labels = np.where(before < a_limit - tol, "A", np.where(before < b_limit - tol, "B", "C"))
    labels = np.where(ranked.to_numpy() > 0, labels, "C")
    return pd.DataFrame(
        {
            "value_share": share,
            "cumulative_share": cumulative,
            "abc": pd.Series(labels, index=ranked.index, dtype=object),
        },
        index=ranked.index,
    )


def xyz_class(cv: float, settings: ClassificationSettings) -> str:
    if not np.isfinite(cv):
        return "Z"
    if cv <= settings.xyz["X"] + 1e-12:
        return "X"
    if cv <= settings.xyz["Y"] + 1e-12:
        return "Y"
    return "Z"


def classify(
    skus: pd.Index,
    offers: pd.DataFrame,
    demand: pd.DataFrame,
    periods: int,
    settings: ClassificationSettings,
) -> pd.DataFrame:
    """The class table: one row per SKU (``warehouse`` = ``*``) and one per SKU-warehouse with demand.

    ``offers`` has columns sku, unit_price; ``demand`` has sku, warehouse, period, quantity, std (rows
    beyond the horizon are ignored).
    """
    cost = unit_costs(offers, skus)
    demand = demand[(demand["period"] >= 0) & (demand["period"] < periods)]
    demand = demand.assign(
        quantity=demand["quantity"].astype(float),
        period=demand["period"].astype(np.int64),
        variance=demand["std"].astype(float) ** 2,
    )
    rows: list[pd.DataFrame] = []
    for keys in (["sku"], ["sku", "warehouse"]):
        by_period = demand.groupby([*keys, "period"])[["quantity", "variance"]].sum()
        means = by_period["quantity"].unstack("period").reindex(columns=range(periods), fill_value=0.0)
        variances = by_period["variance"].unstack("period").reindex(columns=range(periods), fill_value=0.0)
        if keys == ["sku"]:
            means = means.reindex(pd.Index(skus, name="sku"))
            variances = variances.reindex(means.index)
        dense = means.fillna(0.0).to_numpy(dtype=float)
        dense_var = variances.fillna(0.0).to_numpy(dtype=float)
        mu = dense.mean(axis=1) if periods else np.zeros(len(dense))
        sigma = np.sqrt(dense.var(axis=1) + dense_var.mean(axis=1)) if periods else np.zeros(len(dense))
        with np.errstate(divide="ignore", invalid="ignore"):
            cv = np.where(mu > 0, sigma / np.where(mu > 0, mu, 1.0), np.inf)
        frame = pd.DataFrame(index=means.index)
        sku_of = frame.index.get_level_values("sku")
        if keys == ["sku"]:
            frame["warehouse"] = ALL
        frame["unit_cost"] = cost.reindex(sku_of).to_numpy(dtype=float)
        frame["demand"] = dense.sum(axis=1)
        frame["consumption_value"] = frame["demand"] * frame["unit_cost"]
        frame = frame.join(abc_classes(frame["consumption_value"], settings))
        frame["mean_demand"] = mu
        frame["demand_cv"] = cv
        frame["xyz"] = pd.Series([xyz_class(c, settings) for c in cv], index=frame.index, dtype=object)
        frame["abc_xyz"] = frame["abc"].astype(str) + frame["xyz"].astype(str)
        rows.append(frame.reset_index())
    table = pd.concat(rows, ignore_index=True)
    table["demand_cv"] = table["demand_cv"].replace(np.inf, np.nan)
    return table[CLASS_COLUMNS].sort_values(["sku", "warehouse"], kind="stable").reset_index(drop=True)


def class_members(table: pd.DataFrame) -> dict[str, list[str]]:
    """Class label → SKUs, from the SKU-level rows: ``A`` … ``C``, ``X`` … ``Z`` and ``AX`` … ``CZ``."""
    sku_rows = table[table["warehouse"] == ALL]
    members: dict[str, list[str]] = {}
    for column in ("abc", "xyz", "abc_xyz"):
        for label, group in sku_rows.groupby(column):
            members[str(label)] = sorted(str(s) for s in group["sku"])
    return members


def sku_classes(table: pd.DataFrame) -> pd.DataFrame:
    """SKU-level rows indexed by sku with their abc, xyz and abc_xyz labels."""
    return table[table["warehouse"] == ALL].set_index("sku")[["abc", "xyz", "abc_xyz"]]
