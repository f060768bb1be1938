"""Deterministic generator of realistic synthetic procurement instances.

The generator produces every input table of the optistock data contract
(``skus``, ``warehouses``, ``suppliers``, ``offers``, ``price_breaks``,
``lanes``, ``transfers``, ``demand``, ``inventory``, ``open_orders`` and
``budget``) as :class:`pandas.DataFrame` objects.  All randomness comes from a
single :func:`numpy.random.default_rng` stream seeded by the caller, so the same
size and seed always give identical tables (and byte-identical files).

Everything is vectorised over SKUs / offers / demand rows, so the largest named
size (20,000 SKUs x 10 warehouses x 26 periods = 5.2M demand rows) generates in
a few seconds.

Modelling choices (units: currency units, volume in litres, periods in weeks):

* SKU demand scale is lognormal (ABC-like skew: the top 20% of SKUs carry
  roughly 70-80% of the volume); unit price is lognormal in [1, 500] and mildly
  anti-correlated with demand; unit volume is lognormal and mildly correlated
  with price.
* Weekly demand per (SKU, warehouse) follows the SKU scale times a warehouse
  share, a company-wide and an SKU-specific annual seasonality and a small
  trend.  Regular items draw Poisson quantities around that mean; about 15% of
  the SKUs (biased towards slow movers) are intermittent (Bernoulli occurrence
  times a shifted Poisson size) and have many zero periods.  ``std`` is the
  forecast error of the generating model (Poisson noise plus a per-SKU
  multiplicative error of 15-45% for regular items).
* Holding cost is 20-30% of the price per year (per week); shortage cost is
  25-75% of the price per week (a unit short for a few weeks costs more
  than buying it, so plans do not give up on demand near the end of the horizon).
* Pack sizes (``order_multiple``) come from the usual pack sizes, larger for
  cheap, small items, and never much larger than a few weeks of demand.
* Warehouse capacity covers 4-8 weeks of average demand volume, and always
  leaves room above the fixed inputs (initial stock plus open orders) plus the
  largest minimum order.
* Budgets are 120-160% of the average expected purchase spend per period (and
  never below 1.5 times the most expensive single minimum order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "NAMED_SIZES",
    "PACK_SIZES",
    "TABLES",
    "InstanceSize",
    "generate_instance",
    "write_instance",
]

#: Table names in the order they are generated and written.
TABLES: tuple[str, ...] = (
    "skus",
    "warehouses",
    "suppliers",
    "offers",
    "price_breaks",
    "lanes",
    "transfers",
    "demand",
    "inventory",
    "open_orders",
    "budget",
)

#: Typical pack sizes used for ``order_multiple``.
PACK_SIZES: tuple[int, ...] = (1, 6, 10, 12, 24, 50, 100)

_WEEKS_PER_YEAR = 52.0


@dataclass(frozen=True)
class InstanceSize:
    """Dimensions of a synthetic instance."""

    skus: int
    warehouses: int
    suppliers: int
    periods: int

    def __post_init__(self) -> None:
        """Validate that every dimension is a positive integer."""
        for name in ("skus", "warehouses", "suppliers", "periods"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"InstanceSize.{name} must be a positive integer, got {value!r}")

    @property
    def demand_rows(self) -> int:
        """Number of rows of the (dense) demand table."""
        return self.skus * self.warehouses * self.periods


#: Named benchmark sizes (skus x warehouses x suppliers x periods).
NAMED_SIZES: dict[str, InstanceSize] = {
    "S": InstanceSize(skus=20, warehouses=2, suppliers=3, periods=13),
    "M": InstanceSize(skus=200, warehouses=3, suppliers=4, periods=13),
    "L": InstanceSize(skus=2000, warehouses=5, suppliers=6, periods=26),
    "XL": InstanceSize(skus=20000, warehouses=10, suppliers=8, periods=26),
}


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def _ids(prefix: str, count: int, min_width: int) -> np.ndarray:
    """Return ``count`` identifiers like ``SKU-00001`` as an object array."""
    width = max(min_width, len(str(count)))
    return np.array([f"{prefix}-{i:0{width}d}" for i in range(1, count + 1)], dtype=object)


def _ceil_to_multiple(values: np.ndarray, multiple: np.ndarray) -> np.ndarray:
    """Round positive ``values`` up to the next multiple of ``multiple`` (int64)."""
    result: np.ndarray = np.ceil(values / multiple).astype(np.int64) * multiple
    return result.astype(np.int64)


def _nice_round_up(value: float) -> float:
    """Round ``value`` up to a 'nice' number (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 0.0
    exponent = math.floor(math.log10(value))
    base = 10.0**exponent
    for step in (1.0, 2.0, 5.0, 10.0):
        if step * base >= value:
            return step * base
    return 10.0 * base  # pragma: no cover - unreachable


def _seasonality(rng: np.random.Generator, n_skus: int, periods: int) -> np.ndarray:
    """Return an ``(n_skus, periods)`` multiplicative seasonality/trend factor."""
    t = np.arange(periods, dtype=np.float64)
    # Company-wide annual cycle (so budgets and capacities bind in peak weeks).
    company_amp = rng.uniform(0.08, 0.2)
    company_phase = rng.uniform(0.0, 2.0 * np.pi)
    company = company_amp * np.sin(2.0 * np.pi * t / _WEEKS_PER_YEAR + company_phase)
    # SKU-specific cycle: many items almost flat, some strongly seasonal.
    amp = rng.uniform(0.0, 0.4, n_skus) * (rng.random(n_skus) < 0.6)
    phase = rng.uniform(0.0, 2.0 * np.pi, n_skus)
    sku_cycle = amp[:, None] * np.sin(2.0 * np.pi * t[None, :] / _WEEKS_PER_YEAR + phase[:, None])
    # Small linear trend (+-1% per week).
    trend = rng.uniform(-0.01, 0.01, n_skus)[:, None] * (t[None, :] - (periods - 1) / 2.0)
    return np.clip(1.0 + company[None, :] + sku_cycle + trend, 0.05, None)


# --------------------------------------------------------------------------- #
# generator
# --------------------------------------------------------------------------- #


def generate_instance(size: InstanceSize, seed: int) -> dict[str, pd.DataFrame]:
    """Generate a synthetic procurement instance.

    Args:
        size: Instance dimensions.
        seed: Seed for :func:`numpy.random.default_rng`; equal seeds and sizes
            give identical tables.

    Returns:
        Mapping from table name (see :data:`TABLES`) to DataFrame.  Identifiers
        are strings (``SKU-00001``, ``WH-01``, ``SUP-01``), periods are
        integers ``0 .. periods - 1``, all numbers are non-negative and counts,
        quantities and lead times are ``int64``.
    """
    rng = np.random.default_rng(seed)
    n, n_wh, n_sup, n_per = size.skus, size.warehouses, size.suppliers, size.periods

    sku_ids = _ids("SKU", n, 5)
    wh_ids = _ids("WH", n_wh, 2)
    sup_ids = _ids("SUP", n_sup, 2)

    # ------------------------------------------------------------------ SKUs
    z_demand = rng.standard_normal(n)
    z_price = rng.standard_normal(n)
    z_volume = rng.standard_normal(n)
    weekly_mean = np.clip(np.exp(np.log(20.0) + 1.6 * z_demand), 0.2, 5000.0)
    base_price = np.round(np.clip(np.exp(np.log(15.0) + 0.95 * z_price - 0.25 * z_demand), 1.0, 500.0), 2)
    unit_volume = np.round(np.clip(np.exp(np.log(1.5) + 0.9 * z_volume + 0.35 * z_price), 0.02, 150.0), 3)
    holding_rate = rng.uniform(0.20, 0.30, n) / _WEEKS_PER_YEAR
    holding_cost = np.maximum(np.round(base_price * holding_rate, 4), 0.0001)
    shortage_cost = np.maximum(np.round(base_price * rng.uniform(0.25, 0.75, n), 2), 0.01)

    skus = pd.DataFrame(
        {
            "sku": sku_ids,
            "unit_volume": unit_volume,
            "holding_cost": holding_cost,
            "shortage_cost": shortage_cost,
        }
    )

    # ------------------------------------------------------------ suppliers
    # Supplier "size" weights make some suppliers carry most of the assortment.
    sup_weight = rng.lognormal(0.0, 0.5, n_sup)
    sup_base_lead = rng.choice(np.arange(4), size=n_sup, p=[0.15, 0.35, 0.3, 0.2])

    # ---------------------------------------------------------------- offers
    n_offers_per_sku = rng.choice(np.array([1, 2, 3]), size=n, p=[0.2, 0.6, 0.2])
    n_offers_per_sku = np.minimum(n_offers_per_sku, n_sup)
    # Weighted sampling without replacement via the Gumbel-top-k trick.
    keys = np.log(sup_weight)[None, :] + rng.gumbel(size=(n, n_sup))
    ranked = np.argsort(-keys, axis=1, kind="stable")
    take = np.arange(n_sup)[None, :] < n_offers_per_sku[:, None]
    off_sku = np.broadcast_to(np.arange(n)[:, None], (n, n_sup))[take]
    off_sup = ranked[take]
    order = np.lexsort((off_sup, off_sku))
    off_sku, off_sup = off_sku[order], off_sup[order]
    n_off = off_sku.size

    off_price = np.round(base_price[off_sku] * (1.0 + rng.uniform(-0.04, 0.06, n_off)), 2)
    off_price = np.clip(off_price, 1.0, 500.0)

    # Pack size tier from price and volume: cheap, small items come in big packs.
    pack_options = np.array(
        [
            [50, 100, 100, 50],  # very cheap and small
            [12, 24, 50, 24],
            [6, 10, 12, 24],
            [1, 6, 6, 10],
            [1, 1, 1, 6],  # expensive or bulky
        ]
    )
    sku_value = base_price * np.sqrt(unit_volume)
    tier = np.digitize(sku_value, [1.0, 4.0, 15.0, 60.0])
    pack = pack_options[tier[off_sku], rng.integers(0, pack_options.shape[1], n_off)]
    # Never much more than ~4 weeks of total demand per pack.
    pack_cap = np.maximum(1.0, 4.0 * weekly_mean[off_sku])
    packs = np.array(PACK_SIZES)
    largest_fitting = packs[np.searchsorted(packs, pack_cap, side="right") - 1]
    order_multiple = np.minimum(pack, largest_fitting).astype(np.int64)
    moq_factor = rng.choice(np.array([1, 1, 1, 2, 3, 5]), size=n_off)
    moq = order_multiple * moq_factor
    moq = np.where(moq > np.maximum(4.0 * weekly_mean[off_sku], order_multiple), order_multiple, moq)
    moq = moq.astype(np.int64)
    lead_time = np.clip(
        sup_base_lead[off_sup] + rng.choice(np.array([-1, 0, 0, 1]), size=n_off), 0, 4
    ).astype(np.int64)

    offers = pd.DataFrame(
        {
            "supplier": sup_ids[off_sup],
            "sku": sku_ids[off_sku],
            "unit_price": off_price,
            "moq": moq,
            "order_multiple": order_multiple,
            "lead_time": lead_time,
        }
    )

    # Cheapest ("primary") offer per SKU: offers are sorted by SKU.
    by_price = np.lexsort((off_price, off_sku))
    first = np.ones(n_off, dtype=bool)
    first[1:] = off_sku[by_price][1:] != off_sku[by_price][:-1]
    primary = by_price[first]  # offer index of the cheapest offer, one per SKU
    primary_price = off_price[primary]
    primary_sup = off_sup[primary]

    # ---------------------------------------------------------- price breaks
    has_breaks = rng.random(n_off) < 0.3
    n_breaks = np.where(has_breaks, rng.choice(np.array([1, 2]), size=n_off, p=[0.55, 0.45]), 0)
    weeks1 = rng.uniform(2.0, 6.0, n_off)
    q1 = np.maximum(
        moq * rng.choice(np.array([2, 3, 5]), size=n_off),
        _ceil_to_multiple(weeks1 * weekly_mean[off_sku], order_multiple),
    )
    q2 = q1 * rng.choice(np.array([2, 3]), size=n_off)
    d1 = rng.uniform(0.03, 0.06, n_off)
    d2 = d1 + rng.uniform(0.02, 0.04, n_off)
    p1 = np.round(off_price * (1.0 - d1), 2)
    p2 = np.minimum(np.round(off_price * (1.0 - d2), 2), p1 - 0.01)
    b1 = n_breaks >= 1
    b2 = n_breaks >= 2
    pb_idx = np.concatenate([np.flatnonzero(b1), np.flatnonzero(b2)])
    pb_qty = np.concatenate([q1[b1], q2[b2]])
    pb_price = np.concatenate([p1[b1], p2[b2]])
    pb_order = np.lexsort((pb_qty, pb_idx))
    pb_idx, pb_qty, pb_price = pb_idx[pb_order], pb_qty[pb_order], pb_price[pb_order]
    price_breaks = pd.DataFrame(
        {
            "supplier": sup_ids[off_sup[pb_idx]],
            "sku": sku_ids[off_sku[pb_idx]],
            "min_quantity": pb_qty.astype(np.int64),
            "unit_price": pb_price,
        }
    )

    # ----------------------------------------------------------------- lanes
    typical_price = float(np.median(off_price))
    lane_ok = np.ones((n_sup, n_wh), dtype=bool)
    if n_sup >= 2:
        for w in range(1, n_wh):  # loop over warehouses only (small)
            if rng.random() < 0.35:
                lane_ok[rng.integers(n_sup), w] = False
    lane_sup, lane_wh = np.nonzero(lane_ok)
    n_lanes = lane_sup.size
    lanes = pd.DataFrame(
        {
            "supplier": sup_ids[lane_sup],
            "warehouse": wh_ids[lane_wh],
            "transit_time": rng.choice(np.arange(3), size=n_lanes, p=[0.3, 0.5, 0.2]).astype(np.int64),
            "cost_per_unit": np.round(typical_price * rng.uniform(0.0, 0.03, n_lanes), 2),
        }
    )

    # ------------------------------------------------------------- transfers
    if n_wh <= 3:
        pairs = [(a, b) for a in range(n_wh) for b in range(n_wh) if a != b]
    else:
        # Hub (WH-01 <-> every warehouse) plus a ring among the other warehouses.
        pair_set = {(0, w) for w in range(1, n_wh)} | {(w, 0) for w in range(1, n_wh)}
        spokes = list(range(1, n_wh))
        pair_set |= {(a, b) for a, b in zip(spokes, spokes[1:] + spokes[:1], strict=True)}
        pairs = sorted(pair_set)
    tr_from = np.array([a for a, _ in pairs], dtype=np.int64)
    tr_to = np.array([b for _, b in pairs], dtype=np.int64)
    transfers = pd.DataFrame(
        {
            "from_warehouse": wh_ids[tr_from],
            "to_warehouse": wh_ids[tr_to],
            "lead_time": np.ones(len(pairs), dtype=np.int64),
            "cost_per_unit": np.round(typical_price * rng.uniform(0.01, 0.04, len(pairs)), 2),
        }
    )

    # ---------------------------------------------------------------- demand
    wh_share = rng.dirichlet(np.full(n_wh, 3.0))
    wh_share[0] *= 1.5  # the first warehouse is the main distribution centre
    wh_share /= wh_share.sum()
    listed = np.ones((n, n_wh), dtype=bool)
    if n_wh > 1:
        listed[:, 1:] = rng.random((n, n_wh - 1)) >= 0.1
    sku_wh_noise = rng.lognormal(0.0, 0.4, (n, n_wh))
    sku_wh_mean = weekly_mean[:, None] * wh_share[None, :] * sku_wh_noise * listed
    season = _seasonality(rng, n, n_per)
    mean = sku_wh_mean[:, :, None] * season[:, None, :]  # (n, n_wh, n_per)

    intermittent = rng.random(n) < np.where(weekly_mean < 10.0, 0.3, 0.05)
    # Regular items: Poisson around a mildly perturbed mean.
    cv = rng.uniform(0.15, 0.45, n)
    qty = rng.poisson(mean * rng.lognormal(0.0, 0.1, mean.shape))
    std = np.sqrt(mean + (cv[:, None, None] * mean) ** 2)
    # Intermittent items: occurrence probability p, size 1 + Poisson(s - 1).
    if intermittent.any():
        m_int = mean[intermittent]
        p_occ = rng.uniform(0.15, 0.5, int(intermittent.sum()))[:, None, None]
        s_size = np.maximum(m_int / p_occ, 1.0)
        occurs = rng.random(m_int.shape) < p_occ * (m_int > 0)
        q_int = occurs * (1 + rng.poisson(s_size - 1.0))
        var_int = p_occ * (s_size - 1.0 + s_size**2) - (p_occ * s_size) ** 2
        qty[intermittent] = q_int
        std[intermittent] = np.sqrt(np.maximum(var_int, 0.0)) * (m_int > 0)
    std = np.round(std, 2)

    n_rows = n * n_wh * n_per
    demand = pd.DataFrame(
        {
            "sku": np.repeat(sku_ids, n_wh * n_per),
            "warehouse": np.tile(np.repeat(wh_ids, n_per), n),
            "period": np.tile(np.arange(n_per, dtype=np.int64), n * n_wh),
            "quantity": qty.reshape(n_rows).astype(np.int64),
            "std": std.reshape(n_rows),
        }
    )

    # ------------------------------------------------------------- inventory
    avg_wh_demand = mean.mean(axis=2)  # (n, n_wh)
    # Opening stock covers the SKU's fastest supplier lead time plus 1-4 weeks, as a company that plans
    # ahead holds; about 8% of the SKU-warehouse pairs start empty.
    fastest_lead = np.full(n, np.inf)
    np.minimum.at(fastest_lead, off_sku, lead_time.astype(np.float64))
    cover = (fastest_lead[:, None] + rng.uniform(1.0, 4.0, (n, n_wh))) * (rng.random((n, n_wh)) >= 0.08)
    on_hand = np.round(avg_wh_demand * cover).astype(np.int64)
    inventory = pd.DataFrame(
        {
            "sku": np.repeat(sku_ids, n_wh),
            "warehouse": np.tile(wh_ids, n),
            "on_hand": on_hand.reshape(n * n_wh),
        }
    )

    # ----------------------------------------------------------- open orders
    n_open = min(n_off, max(1, round(0.05 * n_off)))
    oo_off = np.sort(rng.choice(n_off, size=n_open, replace=False))
    oo_sup = off_sup[oo_off]
    oo_sku = off_sku[oo_off]
    oo_wh = rng.integers(0, n_wh, n_open)
    oo_wh = np.where(lane_ok[oo_sup, oo_wh], oo_wh, 0)  # every supplier reaches WH-01
    oo_period = rng.integers(0, min(4, n_per), n_open).astype(np.int64)
    oo_weeks = rng.uniform(1.0, 4.0, n_open)
    oo_qty = np.maximum(
        moq[oo_off],
        _ceil_to_multiple(np.maximum(oo_weeks * avg_wh_demand[oo_sku, oo_wh], 1.0), order_multiple[oo_off]),
    ).astype(np.int64)
    open_orders = pd.DataFrame(
        {
            "supplier": sup_ids[oo_sup],
            "sku": sku_ids[oo_sku],
            "warehouse": wh_ids[oo_wh],
            "arrival_period": oo_period,
            "quantity": oo_qty,
        }
    )

    # ------------------------------------------------------------ warehouses
    avg_volume = (avg_wh_demand * unit_volume[:, None]).sum(axis=0)  # per warehouse
    fixed_volume = (on_hand * unit_volume[:, None]).sum(axis=0)
    fixed_volume += np.bincount(oo_wh, weights=oo_qty * unit_volume[oo_sku], minlength=n_wh)
    largest_moq_volume = float(np.max(moq * unit_volume[off_sku]))
    capacity = np.maximum(
        avg_volume * rng.uniform(4.0, 8.0, n_wh),
        1.25 * fixed_volume + largest_moq_volume,
    )
    capacity = np.ceil(np.maximum(capacity, 1.0))
    warehouses = pd.DataFrame({"warehouse": wh_ids, "capacity": capacity})

    # ------------------------------------------------------------- suppliers
    total_mean = mean.sum(axis=1).mean(axis=1)  # avg weekly units per SKU
    sup_units = np.bincount(primary_sup, weights=total_mean, minlength=n_sup)
    sup_spend = np.bincount(primary_sup, weights=total_mean * primary_price, minlength=n_sup)
    sup_max_moq = np.zeros(n_sup)
    np.maximum.at(sup_max_moq, off_sup, moq.astype(np.float64))
    # About 40% of the suppliers (at least one, never all) have a tight capacity.
    binding = np.zeros(n_sup, dtype=bool)
    if n_sup >= 2:
        n_binding = min(n_sup - 1, max(1, round(0.4 * n_sup)))
        binding[rng.choice(n_sup, size=n_binding, replace=False)] = True
    tight = rng.uniform(1.2, 1.6, n_sup) * sup_units + 2.0 * sup_max_moq
    loose = np.array([_nice_round_up(10.0 * float(total_mean.sum()) + 1.0)] * n_sup)
    sup_capacity = np.where(binding, np.ceil(tight), loose).astype(np.int64)

    mov_choice = rng.choice(np.array([100.0, 250.0, 500.0, 1000.0]), size=n_sup)
    mov_cap = 0.5 * sup_spend
    nice = np.array([0.0, 100.0, 250.0, 500.0, 1000.0])
    mov_fit = nice[np.searchsorted(nice, mov_cap, side="right") - 1]
    min_order_value = np.where(rng.random(n_sup) < 0.5, 0.0, np.minimum(mov_choice, mov_fit))
    suppliers = pd.DataFrame(
        {
            "supplier": sup_ids,
            "order_cost": np.round(rng.uniform(25.0, 250.0, n_sup), 2),
            "min_order_value": min_order_value,
            "capacity": sup_capacity,
        }
    )

    # ---------------------------------------------------------------- budget
    avg_spend = float(np.sum(total_mean * primary_price))
    cheapest_moq_spend = np.full(n, np.inf)
    np.minimum.at(cheapest_moq_spend, off_sku, moq * off_price)
    floor = 1.5 * float(np.max(cheapest_moq_spend))
    amount = np.maximum(avg_spend * rng.uniform(1.2, 1.6, n_per), floor)
    budget = pd.DataFrame({"period": np.arange(n_per, dtype=np.int64), "amount": np.round(amount, 2)})

    tables = {
        "skus": skus,
        "warehouses": warehouses,
        "suppliers": suppliers,
        "offers": offers,
        "price_breaks": price_breaks,
        "lanes": lanes,
        "transfers": transfers,
        "demand": demand,
        "inventory": inventory,
        "open_orders": open_orders,
        "budget": budget,
    }
    return {name: tables[name] for name in TABLES}


def write_instance(tables: dict[str, pd.DataFrame], folder: Path, fmt: str = "csv") -> None:
    """Write each table to ``folder/<table>.<fmt>``.

    Args:
        tables: Mapping from table name to DataFrame (as returned by
            :func:`generate_instance`).
        folder: Destination folder; created (with parents) if missing.
        fmt: ``"csv"`` (comma separated, header, no index, LF line endings)
            or ``"parquet"``.

    Raises:
        ValueError: If ``fmt`` is not supported.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unsupported format {fmt!r}; expected 'csv' or 'parquet'")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        path = folder / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False, lineterminator="\n")
        else:
            frame.to_parquet(path, index=False, engine="pyarrow", compression="zstd")
