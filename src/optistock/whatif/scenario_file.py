"""Scenario files with inheritance, changes, named scenarios and sweeps.

A scenario file is the core scenario (``name``, ``data``, ``horizon``, ``solver``; see
:mod:`optistock.preprocess.scenario`) plus:

- ``extends: base.yaml`` — start from another scenario file (relative to this one) and state only what
  differs: keys of ``horizon``, ``solver``, ``classification``, ``service`` and ``kpis`` override one
  by one, ``classes``, ``scenarios`` and ``sweep`` entries override by name, and ``changes`` are
  appended after the extended file's changes;
- ``changes:`` — what-if changes applied to the input tables (:mod:`.changes`), in order;
- ``classes:`` — SKU classes for the ``class`` filter of demand changes (``{fast: [A, B]}``) and for
  service targets; the computed ABC / XYZ classes (``A``, ``X``, ``AX`` …) can be used there too;
- ``scenarios:`` — named bundles of changes on this base; ``--scenario a,b`` applies several in order;
- ``sweep:`` — parameter values for ``optistock sweep`` (``{budget.scale: [0.8, 1.0]}``).

Every file is validated on its own against a strict schema, so an error names the file it is in and
its line; a circular ``extends`` and a missing file are errors too.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from ruamel.yaml.comments import CommentedMap

from optistock.errors import InputError
from optistock.preprocess.scenario import (
    ClassificationSettings,
    ForecastMethod,
    KpiSettings,
    LoadedScenario,
    Scenario,
    ServiceSettings,
    SourcingRule,
    StrictModel,
    line_of,
    read_yaml_mapping,
    validate_document,
)
from optistock.whatif.changes import CHANGE_KINDS, Change, LocatedChange

SweepValue = float | int | str
SweepAxes = dict[str, list[SweepValue]]


class NamedScenario(StrictModel):
    description: str = ""
    """What this scenario asks, for the reader and ``optistock scenarios list``."""
    changes: list[Change] = Field(default_factory=list)
    """Changes applied, in order, after the base's own changes."""


class WhatIfSections(StrictModel):
    classes: dict[str, list[str]] = Field(default_factory=dict)
    """SKU classes for the ``class`` filter of demand changes: class name → SKUs."""
    changes: list[Change] = Field(default_factory=list)
    """What-if changes applied to the input tables, in order."""
    scenarios: dict[str, NamedScenario] = Field(default_factory=dict)
    """Named what-if scenarios on this base; ``optistock run FILE --scenario a,b`` applies them."""
    sweep: SweepAxes = Field(default_factory=dict)
    """Values to sweep for ``optistock sweep``: ``CHANGE.FIELD`` → list of values (Cartesian product)."""


class ScenarioFile(Scenario, WhatIfSections):
    """A complete scenario file (one without ``extends``)."""

    extends: None = None
    """Not used in a complete file."""


class HorizonPatch(StrictModel):
    periods: int | None = Field(default=None, ge=1)
    """Number of planning periods T; periods are numbered 0..T-1."""
    start: dt.date | None = None
    """Calendar date of the first day of period 0."""
    period_length_days: int | None = Field(default=None, ge=1)
    """Length of one period in days."""


class SolverPatch(StrictModel):
    name: Literal["highs", "cpsat"] | None = None
    """MILP solver. HiGHS is the default and the only one required."""
    time_limit: float | None = Field(default=None, gt=0)
    """Wall-clock limit of the solve, in seconds."""
    mip_gap: float | None = Field(default=None, ge=0, le=1)
    """Relative optimality gap at which the solver may stop."""
    threads: int | None = Field(default=None, ge=1)
    """Solver threads."""
    seed: int | None = Field(default=None, ge=0)
    """Random seed of the solver."""


class ForecastPatch(StrictModel):
    method: ForecastMethod | None = None
    """``auto`` (by demand class), ``ets``, ``croston_sba`` or ``adida``."""
    season_length: int | None = Field(default=None, ge=1)
    """Periods per season (1: no seasonality)."""


class ScenarioPatch(WhatIfSections):
    """A scenario file that ``extends`` another: every key is optional and overrides the extended file."""

    extends: str | None = None
    """Scenario file this one starts from, relative to this file; this file states only what differs."""
    name: str | None = Field(default=None, min_length=1)
    """Name of the scenario, recorded with every run."""
    description: str | None = None
    """Free text for the reader."""
    data: Path | None = None
    """Folder with the input tables, relative to this YAML file."""
    horizon: HorizonPatch | None = None
    """Planning horizon (keys given here override the extended file's)."""
    solver: SolverPatch | None = None
    """Solver settings (keys given here override the extended file's)."""
    classification: ClassificationSettings | None = None
    """ABC / XYZ thresholds (keys given here override the extended file's)."""
    service: ServiceSettings | None = None
    """Service-level targets and safety stock (keys given here override the extended file's)."""
    kpis: KpiSettings | None = None
    """How inventory KPIs are computed (keys given here override the extended file's)."""
    forecast: ForecastPatch | None = None
    """How demand is forecast from sales_history (keys given here override the extended file's)."""
    sourcing: list[SourcingRule] | None = None
    """Sourcing rules; given here, they replace the extended file's."""


@dataclass
class _Layer:
    """One file of an ``extends`` chain."""

    path: Path
    document: CommentedMap
    values: BaseModel


@dataclass
class ScenarioSetup:
    """A scenario file resolved through its ``extends`` chain, with the changes to apply."""

    loaded: LoadedScenario
    changes: list[LocatedChange]
    classes: dict[str, list[str]]
    scenarios: dict[str, NamedScenario]
    sweep: SweepAxes
    files: list[Path]
    """The files of the chain, the extended ones first."""
    applied: list[str] = field(default_factory=list)
    """Names of the named scenarios applied."""
    base_name: str = ""
    """The scenario's name before named scenarios were applied (``loaded`` is named ``base+a+b``)."""
    sweep_origin: dict[str, tuple[Path, CommentedMap]] = field(default_factory=dict)
    """Where each sweep axis was written (file and document)."""


def _read_chain(path: Path, stack: list[Path]) -> list[_Layer]:
    document = read_yaml_mapping(path)
    if "extends" not in document:
        return [_Layer(path, document, validate_document(ScenarioFile, document, str(path)))]
    values: BaseModel = validate_document(ScenarioPatch, document, str(path))
    assert isinstance(values, ScenarioPatch)
    line = line_of(document, "extends")
    if values.extends is None or not values.extends.strip():
        raise InputError(
            "extends needs the path of a scenario file", file=str(path), line=line, field="extends"
        )
    parent = (path.parent / values.extends).resolve()
    chain = [*stack, path.resolve()]
    if parent in chain:
        cycle = " -> ".join(p.name for p in [*chain[chain.index(parent) :], parent])
        raise InputError(f"circular extends: {cycle}", file=str(path), line=line, field="extends")
    if not parent.is_file():
        raise InputError(
            f"extended scenario file not found: {values.extends} (resolved to {parent})",
            file=str(path),
            line=line,
            field="extends",
        )
    return [*_read_chain(parent, chain), _Layer(path, document, values)]


def load_scenario_file(
    path: Path, scenario_names: Sequence[str] = (), extra_changes: Sequence[LocatedChange] = ()
) -> ScenarioSetup:
    """Read ``path`` and the files it extends, select the named scenarios and collect the changes.

    Every problem raises :class:`InputError` naming the file, its line and the field.
    """
    layers = _read_chain(path, [])
    core: dict[str, Any] = {"horizon": {}, "solver": {}}
    data_from: _Layer | None = None
    classes: dict[str, list[str]] = {}
    scenarios: dict[str, tuple[_Layer, NamedScenario]] = {}
    sweep: SweepAxes = {}
    sweep_origin: dict[str, tuple[Path, CommentedMap]] = {}
    changes: list[LocatedChange] = []
    sourcing_from: tuple[Path, CommentedMap] | None = None
    for layer in layers:
        values = layer.values
        for key in ("name", "description"):
            if getattr(values, key) is not None:
                core[key] = getattr(values, key)
        if getattr(values, "sourcing", None) is not None:
            core["sourcing"] = values.sourcing  # type: ignore[attr-defined]
            sourcing_from = (layer.path, layer.document)
        data = getattr(values, "data", None)
        if data is not None:
            core["data"] = data
            data_from = layer
        for section in ("horizon", "solver", "forecast", "classification", "service", "kpis"):
            given = getattr(values, section)
            if given is not None:
                core.setdefault(section, {}).update(given.model_dump(exclude_unset=True, exclude_none=True))
        assert isinstance(values, WhatIfSections)
        classes.update(values.classes)
        for name, named in values.scenarios.items():
            scenarios[name] = (layer, named)
        for key, axis in values.sweep.items():
            sweep[key] = axis
            sweep_origin[key] = (layer.path, layer.document)
        origin = "base" if layer is layers[-1] else f"extends {layer.path.name}"
        changes += [
            LocatedChange(change, origin, str(layer.path), layer.document, ("changes", i), layer.path.parent)
            for i, change in enumerate(values.changes)
        ]

    _check_service_classes(layers, classes)
    top = layers[-1]
    try:
        scenario = Scenario.model_validate(core)
    except ValidationError as exc:  # every file was valid on its own: only a key missing everywhere
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        missing = first["type"] == "missing"
        raise InputError(
            "required key is missing (in this file and in the files it extends)"
            if missing
            else f"{first['msg']} (got {first.get('input')!r})",
            file=str(top.path),
            line=line_of(top.document, *loc),
            field=".".join(str(part) for part in loc),
        ) from exc
    assert data_from is not None
    data_dir = (data_from.path.parent / scenario.data).resolve()
    if not data_dir.is_dir():
        raise InputError(
            f"data folder '{scenario.data}' does not exist (resolved to {data_dir})",
            file=str(data_from.path),
            line=line_of(data_from.document, "data"),
            field="data",
        )

    applied: list[str] = []
    for name in scenario_names:
        if name not in scenarios:
            defined = ", ".join(scenarios) or f"none: {top.path.name} has no scenarios: section"
            raise InputError(
                f"unknown scenario '{name}' (defined: {defined})", file=str(top.path), field="--scenario"
            )
        layer, named = scenarios[name]
        changes += [
            LocatedChange(
                change,
                f"scenario {name}",
                str(layer.path),
                layer.document,
                ("scenarios", name, "changes", i),
                layer.path.parent,
            )
            for i, change in enumerate(named.changes)
        ]
        applied.append(name)
    changes += list(extra_changes)
    base_name = scenario.name
    if applied:
        scenario = scenario.model_copy(update={"name": "+".join([scenario.name, *applied])})
    for key in sweep:
        file, document = sweep_origin[key]
        check_sweep_key(key, file=str(file), line=line_of(document, "sweep", key))
    loaded = LoadedScenario(
        scenario=scenario, path=top.path.resolve(), data_dir=data_dir, sourcing_origin=sourcing_from
    )
    return ScenarioSetup(
        loaded=loaded,
        changes=changes,
        classes=classes,
        scenarios={name: named for name, (_, named) in scenarios.items()},
        sweep=sweep,
        files=[layer.path for layer in layers],
        applied=applied,
        base_name=base_name,
        sweep_origin=sweep_origin,
    )


COMPUTED_CLASSES = tuple("ABCXYZ") + tuple(a + x for a in "ABC" for x in "XYZ")
"""Class labels every scenario knows: ABC, XYZ and their combinations (see ``preprocess/classify``)."""


def _check_service_classes(layers: list[_Layer], classes: dict[str, list[str]]) -> None:
    """Every class named in ``service.targets`` is a computed class or one of the ``classes:`` mapping."""
    for layer in layers:
        service = getattr(layer.values, "service", None)
        if service is None:
            continue
        for name in service.targets:
            if name not in COMPUTED_CLASSES and name not in classes:
                own = f"; classes: {', '.join(sorted(classes))}" if classes else ""
                raise InputError(
                    f"unknown class '{name}' (ABC / XYZ classes: A, B, C, X, Y, Z, AX … CZ{own})",
                    file=str(layer.path),
                    line=line_of(layer.document, "service", "targets", name),
                    field=f"service.targets.{name}",
                )


def check_sweep_key(key: str, *, file: str | None = None, line: int | None = None) -> tuple[str, str]:
    """``CHANGE.FIELD`` of a sweep axis, checked against the change vocabulary."""
    kind, dot, name = key.partition(".")
    field_name = f"sweep.{key}" if file else f"--set {key}"
    if not dot or kind not in CHANGE_KINDS:
        raise InputError(
            f"a sweep parameter is CHANGE.FIELD with CHANGE one of {', '.join(CHANGE_KINDS)}",
            file=file,
            line=line,
            field=field_name,
        )
    spec = CHANGE_KINDS[kind]
    fields = {info.alias or attribute for attribute, info in spec.model_fields.items()}
    if name not in fields:
        raise InputError(
            f"unknown field '{name}' of {kind} (fields: {', '.join(sorted(fields))})",
            file=file,
            line=line,
            field=field_name,
        )
    return kind, name


def schema_document() -> dict[str, Any]:
    """The JSON Schema of scenario files (``scenarios/scenario.schema.json``)."""
    schema = ScenarioPatch.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "optistock scenario file"
    schema["description"] = (
        "An optistock scenario: name, data, horizon and solver (required unless given by the file named "
        "in extends), plus what-if changes, named scenarios and sweep parameters."
    )
    return schema


def schema_text() -> str:
    return json.dumps(schema_document(), indent=2, sort_keys=True) + "\n"
