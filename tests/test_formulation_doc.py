"""Keep the written formulation ``models/core.md`` and the Pyomo model in step.

A small instance that exercises every constraint family is built with every stock-sign cell; the
component names on the built model must be exactly the names under the document's headings, every
documented family must be non-empty on that instance, and every ``define_*`` function must name in its
docstring the components it creates.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyomo.environ as pyo
import pytest
from conftest import write_scenario

from optistock.backend import model as model_module
from optistock.backend.model import CONSTRAINT_FAMILIES, VARIABLES, build_model, define_variables
from optistock.backend.sets import ModelSets, build_sets
from optistock.preprocess.data import ProblemData, load_problem

DOC = Path(__file__).resolve().parents[1] / "models" / "core.md"

HEADING = re.compile(r"^### (Variable|Expression|Constraint|Objective) `([A-Za-z_]\w*)`\s*$", re.MULTILINE)
SET_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \|", re.MULTILINE)

# Components whose defining function's docstring does not (yet) name them. model.py is owned elsewhere;
# this list may only shrink: the test fails when a docstring starts naming one (remove it here) and when
# a new component is left unnamed.

TABLES: dict[str, Any] = {
    "skus": [
        {"sku": "A", "unit_volume": 1.0, "holding_cost": 0.5, "shortage_cost": 50.0},
        {"sku": "B", "unit_volume": 2.0, "holding_cost": 0.8, "shortage_cost": 80.0},
    ],
    "warehouses": [{"warehouse": "W1", "capacity": 500.0}, {"warehouse": "W2", "capacity": 400.0}],
    "suppliers": [
        # S1: order cost, minimum order value and a capacity below the sum of its line bounds
        {"supplier": "S1", "order_cost": 25.0, "min_order_value": 60.0, "capacity": 60},
        {"supplier": "S2", "order_cost": 10.0, "min_order_value": 0.0, "capacity": ""},
    ],
    "offers": [
        # S1/A: MOQ above one pack, no breaks -> line_active
        {"supplier": "S1", "sku": "A", "unit_price": 2.0, "moq": 12, "order_multiple": 4, "lead_time": 0},
        # S1/B: price breaks -> price segments
        {"supplier": "S1", "sku": "B", "unit_price": 3.0, "moq": 0, "order_multiple": 5, "lead_time": 1},
        # S2/A: plain line, no 0/1 variable
        {"supplier": "S2", "sku": "A", "unit_price": 2.5, "moq": 0, "order_multiple": 1, "lead_time": 1},
    ],
    "price_breaks": [
        {"supplier": "S1", "sku": "B", "min_quantity": 20, "unit_price": 2.7},
        {"supplier": "S1", "sku": "B", "min_quantity": 40, "unit_price": 2.4},
    ],
    "lanes": [
        {"supplier": "S1", "warehouse": "W1", "transit_time": 0, "cost_per_unit": 0.1},
        {"supplier": "S1", "warehouse": "W2", "transit_time": 1, "cost_per_unit": 0.2},
        {"supplier": "S2", "warehouse": "W1", "transit_time": 0, "cost_per_unit": 0.0},
    ],
    "transfers": [{"from_warehouse": "W1", "to_warehouse": "W2", "lead_time": 1, "cost_per_unit": 0.3}],
    "inventory": [
        {"sku": "A", "warehouse": "W1", "on_hand": 10},
        {"sku": "B", "warehouse": "W2", "on_hand": 5},
    ],
    "open_orders": [{"supplier": "S2", "sku": "A", "warehouse": "W2", "arrival_period": 1, "quantity": 6}],
    # demand at the shipping warehouse W1 too, so stock-sign cells exist
    "demand": [
        {"sku": sku, "warehouse": warehouse, "period": t, "quantity": quantity}
        for sku, warehouse, quantity in [("A", "W1", 8), ("A", "W2", 6), ("B", "W2", 9), ("B", "W1", 3)]
        for t in range(4)
    ],
    "budget": [{"period": 0, "amount": 150.0}, {"period": 1, "amount": 150.0}],
    # a safety-stock target, so safety_shortfall and safety_stock_target exist
    "safety_stock": [{"sku": "A", "warehouse": "W1", "quantity": 4}],
}


@pytest.fixture(scope="module")
def problem(tmp_path_factory: pytest.TempPathFactory) -> ProblemData:
    return load_problem(write_scenario(tmp_path_factory.mktemp("formulation"), TABLES, periods=4))


@pytest.fixture(scope="module")
def sets(problem: ProblemData) -> ModelSets:
    return build_sets(problem, all_stock_sign_cells=True)


@pytest.fixture(scope="module")
def model(problem: ProblemData, sets: ModelSets) -> pyo.ConcreteModel:
    return build_model(problem, sets)


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _headings(doc: str, kind: str) -> list[str]:
    return [name for found_kind, name in HEADING.findall(doc) if found_kind == kind]


def _names(model: pyo.ConcreteModel, ctype: type) -> set[str]:
    return {c.local_name for c in model.component_objects(ctype, descend_into=True)}


def _objective_section(doc: str) -> str:
    start = doc.index("### Objective `")
    end = doc.find("\n## ", start)
    return doc[start : end if end >= 0 else len(doc)]


def test_headings_are_unique(doc: str) -> None:
    names = [name for _, name in HEADING.findall(doc)]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})


def test_constraint_headings_match_model(model: pyo.ConcreteModel, doc: str) -> None:
    assert set(_headings(doc, "Constraint")) == _names(model, pyo.Constraint)


def test_variable_headings_match_model(model: pyo.ConcreteModel, doc: str) -> None:
    documented = set(_headings(doc, "Variable"))
    assert documented == _names(model, pyo.Var)
    assert documented == set(VARIABLES)


def test_expression_headings_and_cost_components_match_model(model: pyo.ConcreteModel, doc: str) -> None:
    components = set(re.findall(r"`(cost_\w+)`", _objective_section(doc)))
    assert components, "the objective section lists no cost_* components"
    assert set(_headings(doc, "Expression")) | components == _names(model, pyo.Expression)
    in_objective = {arg.local_name for arg in model.total_cost.expr.args}
    assert in_objective == components


def test_objective_matches_model(model: pyo.ConcreteModel, doc: str) -> None:
    objectives = list(model.component_objects(pyo.Objective))
    assert [o.local_name for o in objectives] == _headings(doc, "Objective") == ["total_cost"]
    assert objectives[0].sense == pyo.minimize


def test_index_sets_match_model(model: pyo.ConcreteModel, doc: str) -> None:
    assert set(SET_ROW.findall(doc)) == _names(model, pyo.Set)


def test_every_documented_family_is_exercised(model: pyo.ConcreteModel, doc: str) -> None:
    documented = _headings(doc, "Constraint") + _headings(doc, "Variable")
    # names missing from the model are reported by the heading tests
    empty = [name for name in documented if hasattr(model, name) and len(getattr(model, name)) == 0]
    assert not empty, f"the test instance does not exercise {empty}"


def _components_by_family(problem: ProblemData, sets: ModelSets) -> dict[str, set[str]]:
    """Constraint components created by each ``define_*`` function, found by building step by step."""
    model = pyo.ConcreteModel()
    model.sets = sets
    define_variables(model, problem, sets)
    created: dict[str, set[str]] = {}
    for family in CONSTRAINT_FAMILIES:
        before = _names(model, pyo.Constraint)
        family(model, problem, sets)
        created[family.__name__] = _names(model, pyo.Constraint) - before
    return created


def test_every_family_function_creates_documented_components(
    problem: ProblemData, sets: ModelSets, model: pyo.ConcreteModel
) -> None:
    created = _components_by_family(problem, sets)
    for name, components in created.items():
        assert components, f"{name} created no constraint component"
    assert set().union(*created.values()) == _names(model, pyo.Constraint)


@pytest.mark.parametrize("family", CONSTRAINT_FAMILIES, ids=lambda f: f.__name__)
def test_family_docstring_names_its_components(
    family: Callable[..., Any], problem: ProblemData, sets: ModelSets
) -> None:
    name = family.__name__
    docstring = family.__doc__ or ""
    stem = name.removeprefix("define_").removesuffix("_constraints")
    assert docstring.lstrip().startswith(f"{stem}:"), f"{name}'s docstring should open with '{stem}:'"
    created = _components_by_family(problem, sets)[name]
    unnamed = {c for c in created if not re.search(rf"\b{c}\b", docstring)}
    assert not unnamed, f"{name}'s docstring does not name {sorted(unnamed)}"


def test_every_define_function_is_used() -> None:
    defined = {n for n in dir(model_module) if n.startswith("define_") and n.endswith("_constraints")}
    assert defined == {f.__name__ for f in CONSTRAINT_FAMILIES}
