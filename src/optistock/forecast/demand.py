"""The demand table forecast from the sales history, with statsforecast (Nixtla).

Each (sku, warehouse) series runs from its first row in ``sales_history`` to the last period of the whole
table; periods without a row are zero sales. Every series is put in its Syntetos–Boylan class from

- ADI, the average inter-demand interval: periods / periods with sales > 0, and
- CV², the squared coefficient of variation of the non-zero sales (population variance / mean²),

with the published cut-offs 1.32 and 0.49: *smooth* (ADI < 1.32, CV² < 0.49), *erratic* (ADI < 1.32),
*intermittent* (CV² < 0.49) or *lumpy*; a series without any sale is *none*.

``method: auto`` forecasts smooth and erratic series with exponential smoothing and intermittent and lumpy
ones with Croston's method with the Syntetos–Boylan bias correction (the method Syntetos and Boylan
recommend in both quadrants). Exponential smoothing is statsforecast's AutoETS (model chosen by AICc;
seasonal when ``season_length`` m > 1 and the series holds two full seasons); AutoETS does not fit seasons
longer than 24 periods, so for m > 24 the series is decomposed with MSTL (STL seasonality, AutoETS on the
rest) when its seasonal strength, 1 − var(remainder) / var(seasonal + remainder), reaches 0.64 — pure
noise over two or three seasons scores about 0.3 to 0.5. Series shorter than 8 periods, too short for
AutoETS, get their mean.

The forecast of period t (0..T−1) is the model's mean forecast, at least 0; its ``std`` is the standard
deviation of the one-step forecast error, estimated as the root mean square of the in-sample one-step
residuals (sales − fitted; for MSTL the decomposition's fit) — the same for every period, as the demand
table's ``std`` is per period. With fewer than two residuals it is the sample standard deviation of the
history.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from optistock.preprocess.scenario import ForecastSettings

logger = logging.getLogger(__name__)

ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49
MIN_ETS_HISTORY = 8
"""Shortest series fitted with AutoETS; shorter ones get their mean."""
ETS_MAX_SEASON = 24
"""Longest season AutoETS fits; longer ones are decomposed with MSTL."""
SEASONAL_STRENGTH = 0.64
"""Seasonal strength from which MSTL's season is used (for seasons longer than ``ETS_MAX_SEASON``)."""

FORECAST_COLUMNS = [
    "sku",
    "warehouse",
    "period",
    "quantity",
    "std",
    "method",
    "demand_class",
    "adi",
    "cv2",
    "history_periods",
]
"""``forecast.csv``: the demand rows with how each series was forecast."""


def default_season_length(period_length_days: int) -> int:
    """Periods per year-or-week cycle: 7 for daily periods, 52 for weekly, 12 for monthly, else 1."""
    if period_length_days == 1:
        return 7
    if period_length_days == 7:
        return 52
    if 28 <= period_length_days <= 31:
        return 12
    return 1


def classify(sales: np.ndarray) -> tuple[str, float, float]:
    """Syntetos–Boylan class of a series, with its ADI and CV² (NaN when there is no sale)."""
    positive = sales[sales > 0]
    if len(positive) == 0:
        return "none", float("nan"), float("nan")
    adi = len(sales) / len(positive)
    mean = float(positive.mean())
    cv2 = float(positive.var() / mean**2)
    frequent, steady = adi < ADI_CUTOFF, cv2 < CV2_CUTOFF
    if frequent:
        return ("smooth" if steady else "erratic"), adi, cv2
    return ("intermittent" if steady else "lumpy"), adi, cv2


@dataclass
class SeriesForecast:
    mean: np.ndarray
    """Forecast of the periods after the history, the first one right after it."""
    std: float
    method: str


def forecast_series(sales: np.ndarray, horizon: int, method: str, season_length: int) -> SeriesForecast:
    """Forecast ``horizon`` periods after ``sales`` with ``method`` (``ets``, ``croston_sba``, ``adida``)."""
    if method == "ets" and len(sales) < MIN_ETS_HISTORY:
        return SeriesForecast(np.full(horizon, float(sales.mean())), _sample_std(sales), "mean")
    from statsforecast.models import ADIDA, MSTL, AutoETS, CrostonSBA

    sales = sales.astype(float)

    model: Any
    if method == "croston_sba":
        model, label = CrostonSBA(), "CrostonSBA"
    elif method == "adida":
        model, label = ADIDA(), "ADIDA"
    else:
        seasonal = season_length > 1 and len(sales) >= 2 * season_length
        model, label = None, ""
        if seasonal and season_length > ETS_MAX_SEASON:
            mstl = MSTL(season_length=season_length, trend_forecaster=AutoETS(model="ZZN"))
            if _seasonal_strength(mstl.fit(sales).model_) >= SEASONAL_STRENGTH:
                model, label = mstl, f"MSTL(m={season_length})+ETS"
            seasonal = False
        if model is None:
            m = season_length if seasonal else 1
            model = AutoETS(season_length=m).fit(sales)
            label = str(model.model_.get("method", "ETS(constant)")) + (f" m={m}" if m > 1 else "")
    if not hasattr(model, "model_"):
        model.fit(sales)
    mean = np.asarray(model.predict(h=horizon)["mean"], dtype=float)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Computing fitted values", UserWarning)  # ADIDA: fine here
        fitted = np.asarray(model.predict_in_sample()["fitted"], dtype=float)
    residuals = sales - fitted
    residuals = residuals[np.isfinite(residuals)]
    std = float(np.sqrt(np.mean(residuals**2))) if len(residuals) >= 2 else _sample_std(sales)
    return SeriesForecast(mean, std, label)


def _sample_std(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _seasonal_strength(decomposition: pd.DataFrame) -> float:
    remainder = decomposition["remainder"].to_numpy(dtype=float)
    detrended = decomposition["seasonal"].to_numpy(dtype=float) + remainder
    spread = float(np.var(detrended))
    return 0.0 if spread <= 0 else max(0.0, 1.0 - float(np.var(remainder)) / spread)


def forecast_demand(
    sales: pd.DataFrame, periods: int, settings: ForecastSettings, period_length_days: int
) -> pd.DataFrame:
    """Forecast periods 0..``periods``−1 of every (sku, warehouse) in the resolved ``sales``
    (sku, warehouse, period < 0, quantity); rows as :data:`FORECAST_COLUMNS`."""
    started = time.perf_counter()
    if sales.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in FORECAST_COLUMNS})
    season_length = settings.season_length or default_season_length(period_length_days)
    last = int(sales["period"].max())
    skipped = -1 - last  # periods between the end of the history and period 0
    frames: list[pd.DataFrame] = []
    for (sku, warehouse), rows in sales.groupby(["sku", "warehouse"], sort=True):
        first = int(rows["period"].min())
        series = np.zeros(last - first + 1)
        series[rows["period"].to_numpy(dtype=np.int64) - first] = rows["quantity"].to_numpy(dtype=float)
        demand_class, adi, cv2 = classify(series)
        if demand_class == "none":
            forecast = SeriesForecast(np.zeros(skipped + periods), 0.0, "zero")
        else:
            method = settings.method
            if method == "auto":
                method = "ets" if demand_class in ("smooth", "erratic") else "croston_sba"
            forecast = forecast_series(series, skipped + periods, method, season_length)
        frames.append(
            pd.DataFrame(
                {
                    "sku": sku,
                    "warehouse": warehouse,
                    "period": np.arange(periods, dtype=np.int64),
                    "quantity": np.round(np.clip(forecast.mean[skipped:], 0.0, None), 6),
                    "std": round(forecast.std, 6),
                    "method": forecast.method,
                    "demand_class": demand_class,
                    "adi": round(adi, 4),
                    "cv2": round(cv2, 4),
                    "history_periods": len(series),
                }
            )
        )
    result = pd.concat(frames, ignore_index=True)[FORECAST_COLUMNS]
    logger.info(
        "demand forecast from sales history: %d series, %s, in %.1f s",
        len(frames),
        ", ".join(
            f"{n} {c}"
            for c, n in result.drop_duplicates(["sku", "warehouse"])["demand_class"].value_counts().items()
        ),
        time.perf_counter() - started,
    )
    return result
