"""Keep ``models/extensions.md`` and the extension families of the Pyomo model in step.

A small instance with every extension (a perishable SKU, channels with different shortage costs, a
minimum and a maximum share rule) is built; the components that the extensions add to the core model
must be exactly the names under the document's headings and in its set table, every one non-empty, and
every extension family's docstring must name the constraint components it creates.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyomo.environ as pyo
import pytest
from conftest import write_scenario

from optistock.backend import extensions
from optistock.backend.model import VARIABLES, build_model
from optistock.preprocess.data import ProblemData, load_problem

DOC = Path(__file__).resolve().parents[1] / "models" / "extensions.md"
CORE = Path(__file__).resolve().parents[1] / "models" / "core.md"
HEADING = re.compile(r"^### (Variable|Expression|Constraint) `([A-Za-z_]\w*)`\s*$", re.MULTILINE)
SET_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \|", re.MULTILINE)

TABLES = {
    "skus": [
        {"sku": "A", "unit_volume": 1.0, "holding_cost": 0.5, "shortage_cost": 50.0, "shelf_life": 2},
        {"sku": "B", "unit_volume": 1.0, "holding_cost": 0.5, "shortage_cost": 50.0, "shelf_life": ""},
    ],
    "warehouses": [{"warehouse": "W1", "capacity": 500.0}],
    "suppliers": [
        {"supplier": "S1", "order_cost": 10.0, "min_order_value": 0.0},
        {"supplier": "S2", "order_cost": 10.0, "min_order_value": 0.0},
    ],
    "offers": [
        {"supplier": s, "sku": i, "unit_price": p, "moq": 0, "order_multiple": 1, "lead_time": 0}
        for s, i, p in [("S1", "A", 1.0), ("S2", "A", 1.5), ("S1", "B", 2.0), ("S2", "B", 1.0)]
    ],
    "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 4, "age": 1}],
    "demand": [
        {"sku": i, "warehouse": "W1", "period": t, "quantity": 3, "channel": c}
        for i in ("A", "B")
        for c in ("web", "store")
        for t in range(4)
    ],
    "channels": [{"channel": "web", "shortage_cost": 80.0}, {"channel": "store", "shortage_cost": ""}],
    "sourcing": [
        {"supplier": "S2", "sku": "A", "min_share": 0.2, "max_share": ""},
        {"supplier": "S2", "sku": "", "min_share": "", "max_share": 0.9},
    ],
}


@pytest.fixture(scope="module")
def problem(tmp_path_factory: pytest.TempPathFactory) -> ProblemData:
    return load_problem(write_scenario(tmp_path_factory.mktemp("extensions"), TABLES, periods=4))


@pytest.fixture(scope="module")
def model(problem: ProblemData) -> pyo.ConcreteModel:
    return build_model(problem)


@pytest.fixture(scope="module")
def core_model(problem: ProblemData) -> set[str]:
    return set(re.findall(r"`([A-Za-z_]\w*)`", CORE.read_text(encoding="utf-8")))


def _names(model: pyo.ConcreteModel, ctype: type) -> set[str]:
    return {c.local_name for c in model.component_objects(ctype, descend_into=True)}


def _headings(kind: str) -> set[str]:
    return {name for found, name in HEADING.findall(DOC.read_text(encoding="utf-8")) if found == kind}


def test_extension_components_match_the_document(model: pyo.ConcreteModel, core_model: set[str]) -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert _names(model, pyo.Constraint) - core_model == _headings("Constraint")
    assert (
        _names(model, pyo.Var) - set(VARIABLES)
        == _headings("Variable")
        == set(extensions.EXTENSION_VARIABLES)
    )
    assert _names(model, pyo.Set) - core_model == set(SET_ROW.findall(doc))
    assert {"cost_waste"} == _headings("Expression")
    assert "cost_waste" in {arg.local_name for arg in model.total_cost.expr.args}


def test_every_extension_component_is_exercised(model: pyo.ConcreteModel) -> None:
    names = _headings("Constraint") | _headings("Variable") | set(SET_ROW.findall(DOC.read_text("utf-8")))
    empty = [name for name in names if len(getattr(model, name)) == 0]
    assert not empty, f"the test instance does not exercise {empty}"


@pytest.mark.parametrize("family", extensions.EXTENSION_FAMILIES, ids=lambda f: f.__name__)
def test_family_docstring_names_its_components(family: object, model: pyo.ConcreteModel) -> None:
    name = getattr(family, "__name__", "")
    docstring = getattr(family, "__doc__", "") or ""
    stem = name.removeprefix("define_").removesuffix("_constraints")
    assert docstring.lstrip().startswith(f"{stem}:")
    created = {c for c in _headings("Constraint") if c.startswith(stem.split("_")[0])}
    assert created
    unnamed = {c for c in created if not re.search(rf"\b{c}\b", docstring)}
    assert not unnamed, f"{name}'s docstring does not name {sorted(unnamed)}"


def test_without_their_data_no_extension_component_is_built(tmp_path: Path) -> None:
    plain = {
        **TABLES,
        "skus": [{k: v for k, v in row.items() if k != "shelf_life"} for row in TABLES["skus"]],
        "inventory": [{"sku": "A", "warehouse": "W1", "on_hand": 4}],
        "demand": [
            {"sku": i, "warehouse": "W1", "period": t, "quantity": 6} for i in ("A", "B") for t in range(4)
        ],
    }
    del plain["channels"], plain["sourcing"]
    model = build_model(load_problem(write_scenario(tmp_path, plain, periods=4)))
    added = _headings("Constraint") | _headings("Variable") | _headings("Expression")
    added |= set(SET_ROW.findall(DOC.read_text("utf-8")))
    assert not [name for name in added if hasattr(model, name)]
