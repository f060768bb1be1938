"""HiGHS's MILP progress reaches the log (the nightly batch's JSON log carries it as ``solver_progress``)."""

from __future__ import annotations

import logging
import random

import pyomo.environ as pyo
import pytest

from optistock.backend.solve import HighsSession
from optistock.preprocess.scenario import SolverSettings


def test_every_better_plan_the_milp_finds_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    generator = random.Random(1)
    model = pyo.ConcreteModel()
    model.I = pyo.RangeSet(0, 39)
    model.x = pyo.Var(model.I, domain=pyo.NonNegativeIntegers, bounds=(0, 10))
    weight = {i: generator.randint(3, 19) for i in model.I}
    cost = {i: generator.randint(3, 19) for i in model.I}
    model.cover = pyo.Constraint(expr=sum(weight[i] * model.x[i] for i in model.I) >= 1371)
    model.odd = pyo.Constraint(expr=sum(model.x[i] for i in model.I if i % 2) <= 30)
    model.cost = pyo.Objective(expr=sum(cost[i] * model.x[i] for i in model.I))
    with caplog.at_level(logging.INFO, logger="optistock.backend.solve"):
        result = HighsSession(model).solve(SolverSettings(time_limit=30, mip_gap=0.0))
    records = [r for r in caplog.records if r.getMessage().startswith("solver: better plan")]
    assert records, "no progress logged"
    found = [r.solver_progress["objective"] for r in records]  # type: ignore[attr-defined]
    assert found == sorted(found, reverse=True)  # each one better than the last
    assert found[-1] == pytest.approx(result.objective)
