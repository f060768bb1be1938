"""Demand forecasts from sales history (see :mod:`.demand`)."""

from optistock.forecast.demand import FORECAST_COLUMNS, classify, forecast_demand

__all__ = ["FORECAST_COLUMNS", "classify", "forecast_demand"]
