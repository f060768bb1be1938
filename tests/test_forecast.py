"""Demand forecast from sales history: classification, known level and seasonality, intermittent demand,
and a run planned from a sales history whose plan passes the independent re-simulation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import BASE_TABLES, write_scenario
from independent_check import check_run
from ruamel.yaml import YAML

from optistock.cli import main
from optistock.forecast.demand import classify, default_season_length, forecast_demand
from optistock.preprocess.data import load_problem
from optistock.preprocess.scenario import ForecastSettings


def history(sku: str, warehouse: str, values: np.ndarray) -> pd.DataFrame:
    """Sales of ``values`` in the periods right before the horizon (the last one is period −1)."""
    return pd.DataFrame(
        {"sku": sku, "warehouse": warehouse, "period": np.arange(-len(values), 0), "quantity": values}
    )


def set_scenario_keys(path: Path, **sections: dict[str, Any]) -> None:
    """Merge ``sections`` into the scenario YAML at ``path``."""
    yaml = YAML(typ="safe")
    document = yaml.load(path.read_text(encoding="utf-8"))
    for key, values in sections.items():
        document.setdefault(key, {}).update(values)
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(document, handle)


@pytest.mark.parametrize(
    "sales, expected",
    [
        ([3, 5, 4, 6, 5], ("smooth", 1.0, 0.08)),  # sizes 3..6: var 1.04 / mean² 4.6² = 0.049
        ([1, 10, 1, 10], ("erratic", 1.0, 0.6694)),  # var 20.25 / 5.5² = 0.669
        ([0, 0, 5, 0, 5, 0, 0, 5], ("intermittent", 8 / 3, 0.0)),
        ([0, 0, 1, 0, 12, 0, 0, 2], ("lumpy", 8 / 3, 1.5)),  # sizes 1, 12, 2: var 24.67 / 5² = 0.987
        ([0, 0, 0], ("none", float("nan"), float("nan"))),
    ],
)
def test_syntetos_boylan_classes(sales: list[float], expected: tuple[str, float, float]) -> None:
    demand_class, adi, cv2 = classify(np.asarray(sales, dtype=float))
    assert demand_class == expected[0]
    if demand_class != "none":
        assert adi == pytest.approx(expected[1])
        positive = np.asarray([s for s in sales if s > 0], dtype=float)
        assert cv2 == pytest.approx(positive.var() / positive.mean() ** 2)
        assert (cv2 < 0.49) == (demand_class in ("smooth", "intermittent"))


def test_default_season_length_follows_the_period_length() -> None:
    assert [default_season_length(d) for d in (1, 7, 30, 14)] == [7, 52, 12, 1]


def test_smooth_seasonal_series_recovers_level_and_season() -> None:
    """Level 100, a season of 12 with amplitude 30, noise sd 2: the forecast of the next 12 periods is
    within 5 units of the true pattern everywhere, and its error std near the noise's."""
    rng = np.random.default_rng(7)
    m, n = 12, 72
    t = np.arange(-n, 24)
    truth = 100 + 30 * np.sin(2 * np.pi * t / m)
    sales = history("A", "W1", truth[:n] + rng.normal(0, 2, n))
    forecast = forecast_demand(sales, 24, ForecastSettings(season_length=m), period_length_days=30)
    assert forecast["demand_class"].iloc[0] == "smooth"
    assert forecast["method"].iloc[0].startswith("ETS(") and forecast["method"].iloc[0].endswith("m=12")
    assert forecast["period"].tolist() == list(range(24))
    np.testing.assert_allclose(forecast["quantity"], truth[n:], atol=5.0)
    assert 1.5 <= forecast["std"].iloc[0] <= 3.5


def test_weekly_series_with_a_yearly_season_is_decomposed() -> None:
    """A 52-week season is longer than ETS fits: MSTL takes it from three years of weekly sales."""
    rng = np.random.default_rng(3)
    n = 156
    t = np.arange(-n, 26)
    truth = 200 + 60 * np.cos(2 * np.pi * t / 52)
    sales = history("A", "W1", truth[:n] + rng.normal(0, 4, n))
    forecast = forecast_demand(sales, 26, ForecastSettings(), period_length_days=7)
    assert forecast["method"].iloc[0] == "MSTL(m=52)+ETS"
    np.testing.assert_allclose(forecast["quantity"], truth[n:], atol=12.0)


def test_noise_without_season_is_not_given_one() -> None:
    rng = np.random.default_rng(11)
    sales = history("A", "W1", 100 + rng.normal(0, 10, 104))
    forecast = forecast_demand(sales, 13, ForecastSettings(), period_length_days=7)
    assert not forecast["method"].iloc[0].startswith("MSTL")
    np.testing.assert_allclose(forecast["quantity"], 100.0, atol=4.0)
    assert 7.0 <= forecast["std"].iloc[0] <= 13.0


def test_intermittent_series_gets_croston_at_the_true_demand_rate() -> None:
    """Sales of 10 units in about one period of five: mean demand rate 2 units per period."""
    rng = np.random.default_rng(5)
    sales = history("B", "W2", np.where(rng.random(200) < 0.2, 10.0, 0.0))
    forecast = forecast_demand(sales, 8, ForecastSettings(), period_length_days=7)
    assert forecast["demand_class"].iloc[0] == "intermittent"
    assert forecast["method"].iloc[0] == "CrostonSBA"
    assert forecast["quantity"].nunique() == 1
    assert forecast["quantity"].iloc[0] == pytest.approx(2.0, rel=0.25)
    assert forecast["std"].iloc[0] > 0


def test_history_gap_before_the_horizon_is_skipped_and_zero_series_forecast_zero() -> None:
    """The table ends at period −3: the forecast of period 0 is the third step after it. A series that
    never sold is forecast 0; periods without a row are zero sales."""
    level = pd.DataFrame({"sku": "A", "warehouse": "W1", "period": np.arange(-40, -2), "quantity": 7.0})
    never = pd.DataFrame({"sku": "C", "warehouse": "W1", "period": [-30], "quantity": [0.0]})
    sparse = pd.DataFrame({"sku": "D", "warehouse": "W1", "period": [-40, -20], "quantity": [6.0, 6.0]})
    forecast = forecast_demand(pd.concat([level, never, sparse]), 3, ForecastSettings(), 7)
    by_sku = forecast.groupby("sku")
    assert by_sku["quantity"].max()["A"] == pytest.approx(7.0, abs=1e-6)
    assert by_sku["history_periods"].first().to_dict() == {"A": 38, "C": 28, "D": 38}
    assert forecast.loc[forecast["sku"] == "C", ["quantity", "std"]].to_numpy().sum() == 0.0
    assert forecast.loc[forecast["sku"] == "C", "method"].iloc[0] == "zero"
    assert forecast.loc[forecast["sku"] == "D", "demand_class"].iloc[0] == "intermittent"


def test_one_method_for_every_series() -> None:
    rng = np.random.default_rng(1)
    sales = history("A", "W1", 50 + rng.normal(0, 3, 60))
    forecast = forecast_demand(sales, 4, ForecastSettings(method="adida"), 7)
    assert set(forecast["method"]) == {"ADIDA"}
    assert forecast["quantity"].iloc[0] == pytest.approx(50, abs=3)


# --------------------------------------------------------------------------------------------------
# through the scenario and the run
# --------------------------------------------------------------------------------------------------

SKUS = [
    {"sku": "A", "unit_volume": 1.0, "holding_cost": 0.5, "shortage_cost": 20.0},
    {"sku": "B", "unit_volume": 1.0, "holding_cost": 0.5, "shortage_cost": 20.0},
]
OFFERS = [
    {"supplier": "S1", "sku": s, "unit_price": 2.0, "moq": 0, "order_multiple": 1, "lead_time": 1}
    for s in ("A", "B")
]


def daily_sales(start: str, days: int, seed: int = 0) -> pd.DataFrame:
    """Daily sales of A (about 4 a day) and B (a sale of 6 on about one day in ten), dated."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=days, freq="D").strftime("%Y-%m-%d")
    a = pd.DataFrame({"sku": "A", "warehouse": "W1", "date": dates, "quantity": rng.poisson(4, days)})
    b = pd.DataFrame({"sku": "B", "warehouse": "W1", "date": dates, "quantity": 0})
    b.loc[rng.random(days) < 0.1, "quantity"] = 6
    return pd.concat([a, b[b["quantity"] > 0]], ignore_index=True)


@pytest.fixture
def history_scenario(tmp_path: Path) -> Path:
    """Weekly horizon from 2027-01-04; 60 weeks of daily sales before it; no demand table."""
    tables = {
        **BASE_TABLES,
        "skus": SKUS,
        "offers": OFFERS,
        "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 20}],
        "sales_history": daily_sales("2025-11-03", 60 * 7),
    }
    del tables["demand"]
    path = write_scenario(tmp_path / "case", tables, 6, {"time_limit": 30, "mip_gap": 0.0})
    set_scenario_keys(path, horizon={"start": "2027-01-04", "period_length_days": 7})
    return path


def test_run_from_sales_history_writes_the_forecast_and_a_checked_plan(
    history_scenario: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", str(history_scenario), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["plan_check"] == {"valid": True, "violations": []}
    assert summary["forecast"]["series"] == 2
    forecast = pd.read_csv(out / "forecast.csv")
    assert forecast.groupby("sku")["demand_class"].first().to_dict() == {"A": "smooth", "B": "intermittent"}
    assert forecast.groupby("sku")["method"].first()["B"] == "CrostonSBA"
    # daily sales summed into weeks: about 28 a week for A (sd 5.3), 6 × 0.7 = 4.2 for B
    assert forecast.loc[forecast["sku"] == "A", "quantity"].mean() == pytest.approx(28, rel=0.25)
    assert forecast.loc[forecast["sku"] == "B", "quantity"].mean() == pytest.approx(4.2, rel=0.35)
    demand = pd.read_csv(out / "inputs" / "demand.csv")
    pd.testing.assert_frame_equal(demand, forecast[["sku", "warehouse", "period", "quantity", "std"]])
    assert not (out / "inputs" / "sales_history.csv").exists()
    independent = check_run(out, 6)
    assert independent.violations == []
    assert independent.total == pytest.approx(summary["objective"], rel=1e-9)
    # the resolved inputs re-run the same plan without the history
    again = tmp_path / "again"
    result = CliRunner().invoke(main, ["run", str(out / "inputs" / "scenario.yaml"), "--out", str(again)])
    assert result.exit_code == 0, result.output
    assert json.loads((again / "summary.json").read_text())["objective"] == pytest.approx(
        summary["objective"]
    )
    assert "forecast" not in json.loads((again / "summary.json").read_text())


def test_forecast_settings_come_from_the_scenario(history_scenario: Path) -> None:
    set_scenario_keys(history_scenario, forecast={"method": "croston_sba"})
    problem = load_problem(history_scenario)
    assert problem.forecast is not None
    assert set(problem.forecast["method"]) == {"CrostonSBA"}
    assert problem.demand.index.get_level_values("period").max() == 5


def test_demand_table_wins_over_sales_history_with_a_warning(history_scenario: Path) -> None:
    data = history_scenario.parent / "data"
    pd.DataFrame([{"sku": "A", "warehouse": "W1", "period": 0, "quantity": 3.0}]).to_csv(
        data / "demand.csv", index=False
    )
    problem = load_problem(history_scenario)
    assert problem.forecast is None
    assert problem.demand.to_dict() == {("A", "W1", 0): 3.0}
    assert any("demand is not forecast from" in w and "sales_history.csv" in w for w in problem.warnings)


def test_sales_inside_the_horizon_are_ignored_with_a_warning(tmp_path: Path) -> None:
    sales = pd.concat(
        [history("A", "W1", np.full(20, 5.0)), history("A", "W1", np.full(2, 9.0)).assign(period=[0, 1])]
    )
    tables = {**BASE_TABLES, "sales_history": sales}
    del tables["demand"]
    problem = load_problem(write_scenario(tmp_path / "case", tables, 4))
    assert any("2 row(s) at period 0 or later (first at line 22)" in w for w in problem.warnings)
    assert problem.demand.to_numpy() == pytest.approx(np.full(4, 5.0))


def test_unknown_forecast_key_is_bad_input(history_scenario: Path) -> None:
    set_scenario_keys(history_scenario, forecast={"seasons": 4})
    result = CliRunner().invoke(main, ["check", str(history_scenario)])
    assert result.exit_code == 2
    assert "forecast.seasons" in result.stderr and "unknown key" in result.stderr


@pytest.mark.parametrize("kind", ["timestamps", "dates"])
def test_parquet_dates_read_like_csv_dates(history_scenario: Path, kind: str) -> None:
    data = history_scenario.parent / "data"
    expected = load_problem(history_scenario).demand
    sales = pd.read_csv(data / "sales_history.csv")
    stamps = pd.to_datetime(sales["date"])
    sales["date"] = stamps if kind == "timestamps" else stamps.dt.date
    (data / "sales_history.csv").unlink()
    sales.to_parquet(data / "sales_history.parquet", index=False)
    pd.testing.assert_series_equal(load_problem(history_scenario).demand, expected)


DEMO = Path(__file__).resolve().parents[1] / "scenarios" / "demo"


def test_shipped_history_demo_is_reproducible_and_checks(tmp_path: Path) -> None:
    """``scenarios/demo/history`` is what make_history.py writes, and history.yaml loads: a forecast for
    every series that sold, seasonal ones decomposed, slow movers by Croston, receipts in periods."""
    import runpy

    script = runpy.run_path(str(DEMO / "make_history.py"))
    assert script["main"](["--out", str(tmp_path)]) == 0
    for written in sorted(tmp_path.glob("*.csv")):
        assert written.read_bytes() == (DEMO / "history" / written.name).read_bytes(), written.name
    assert not (DEMO / "history" / "demand.csv").exists()
    problem = load_problem(DEMO / "history.yaml")
    assert problem.forecast is not None
    methods = set(problem.forecast["method"])
    assert "CrostonSBA" in methods and "MSTL(m=52)+ETS" in methods
    assert problem.demand.index.get_level_values("period").max() == 25
    assert len(problem.receipts) == 609 and problem.receipts["order_period"].max() < 0
