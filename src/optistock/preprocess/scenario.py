"""The scenario file: a strict pydantic schema read from YAML with line numbers in every error."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.reader import ReaderError

from optistock.errors import InputError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every scenario section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Horizon(StrictModel):
    periods: int = Field(ge=1)
    """Number of planning periods T; periods are numbered 0..T-1."""
    start: dt.date | None = None
    """Calendar date of the first day of period 0 (optional; used for dates on purchase orders)."""
    period_length_days: int = Field(default=7, ge=1)
    """Length of one period in days (default 7: weekly buckets)."""


class SolverSettings(StrictModel):
    name: Literal["highs", "cpsat"] = "highs"
    """MILP solver of the full model. ``highs`` (default). ``cpsat``: OR-Tools CP-SAT solves the same
    model, translated from what HiGHS was given (``backend/cpsat.py``; needs whole units); the LP
    relaxation, the structure phase and the sub-problems stay on HiGHS."""
    time_limit: float = Field(default=60.0, gt=0)
    """Wall-clock limit of the solve, in seconds."""
    mip_gap: float = Field(default=0.005, ge=0, le=1)
    """Relative optimality gap at which the solver may stop (0.005 = 0.5 %)."""
    threads: int = Field(default=1, ge=1)
    """Solver threads."""
    seed: int = Field(default=0, ge=0)
    """Random seed of the solver; same inputs, settings and seed give the same plan."""
    method: Literal["auto", "milp", "decompose", "monolithic"] = "auto"
    """How the model is solved. ``milp``: from a rounded-LP start, the MILP with pack counts relaxed
    (a proven bound), the MILP restricted to the orders it chose, then the full MILP. ``decompose``: the
    Lagrangian bound over SKU groups, the MILP restricted to their orders, fix-and-optimize over SKU
    groups (sub-problems on Dask workers), then the full MILP for the time left. ``auto``:
    ``decompose`` for models with more than 3,000 integer variables, else ``milp``.
    ``monolithic``: the whole model handed to the solver as it is, with no start plan and no
    decomposition (the benchmark's baseline)."""
    workers: int | None = Field(default=None, ge=1)
    """Sub-problems solved at once by ``decompose`` on a local Dask cluster of this many single-threaded
    worker processes (default: ``threads``; 1 solves them in this process)."""
    scheduler: str | None = None
    """Address of a running Dask scheduler (``tcp://host:8786``) whose workers solve the sub-problems
    instead of a local cluster."""


DEFAULT_ABC: dict[Literal["A", "B", "C"], float] = {"A": 0.80, "B": 0.15, "C": 0.05}
DEFAULT_XYZ: dict[Literal["X", "Y"], float] = {"X": 0.5, "Y": 1.0}


class ClassificationSettings(StrictModel):
    abc: dict[Literal["A", "B", "C"], float] = Field(default_factory=lambda: dict(DEFAULT_ABC))
    """Shares of total consumption value (demand × unit cost) that classes A, B and C cover, in that
    order; they must add up to 1 (default 80 / 15 / 5 %)."""
    xyz: dict[Literal["X", "Y"], float] = Field(default_factory=lambda: dict(DEFAULT_XYZ))
    """Upper limits of the coefficient of variation of demand for classes X and Y; above Y's is Z."""

    @model_validator(mode="after")
    def _check_limits(self) -> ClassificationSettings:
        if set(self.abc) != {"A", "B", "C"}:
            raise ValueError("abc needs a share for each of A, B and C")
        if any(share < 0 for share in self.abc.values()) or abs(sum(self.abc.values()) - 1.0) > 1e-9:
            raise ValueError(f"abc shares must be >= 0 and add up to 1 (got {dict(self.abc)})")
        if set(self.xyz) != {"X", "Y"}:
            raise ValueError("xyz needs an upper limit for each of X and Y")
        if not 0 <= self.xyz["X"] <= self.xyz["Y"]:
            raise ValueError(f"xyz limits must satisfy 0 <= X <= Y (got {dict(self.xyz)})")
        return self


class ServiceSettings(StrictModel):
    targets: dict[str, Annotated[float, Field(gt=0, lt=1)]] = Field(default_factory=dict)
    """Target cycle service level by class: an ABC class (``A``), an XYZ class (``X``), both (``AX``) or
    a class of the ``classes:`` mapping; each strictly between 0 and 1."""
    default: float | None = Field(default=None, gt=0, lt=1)
    """Target for SKUs that no class target covers (none: no safety stock for them)."""
    review_period: int = Field(default=1, ge=0)
    """Periods between two reviews, added to the lead time in the safety-stock formula."""
    shortfall_cost: float | None = Field(default=None, gt=0)
    """Penalty per unit and period of end stock below safety stock (default: halfway between the SKU's
    holding and shortage cost, so holding safety stock beats the penalty and serving demand beats
    keeping safety stock)."""


class KpiSettings(StrictModel):
    valuation: Literal["weighted_average", "fifo"] = "weighted_average"
    """How stock is valued: at the moving weighted-average purchase cost, or first-in first-out."""
    excess_cover_periods: float = Field(default=8.0, gt=0)
    """Stock beyond this many periods of average demand counts as excess stock."""


ForecastMethod = Literal["auto", "ets", "croston_sba", "adida"]


class ForecastSettings(StrictModel):
    """How the demand table is forecast from the ``sales_history`` table (used only when the scenario
    has a sales history and no demand table)."""

    method: ForecastMethod = "auto"
    """``auto``: each series by its Syntetos–Boylan class — exponential smoothing (AutoETS, seasonal
    when the history allows) for smooth and erratic demand, Croston SBA for intermittent and lumpy
    demand; or one method for every series: ``ets``, ``croston_sba`` or ``adida``."""
    season_length: int | None = Field(default=None, ge=1)
    """Periods per season (1: no seasonality). Default from the period length: 7 for daily periods,
    52 for weekly, 12 for monthly (28–31 days), else 1. Seasonality is used only where a series has
    at least two full seasons of history."""


class SourcingRule(StrictModel):
    """One sourcing rule; the same fields as a row of the ``sourcing`` table."""

    supplier: str = Field(min_length=1)
    """The supplier the rule is about."""
    sku: str | None = None
    """The SKU; left out: the rule is on all SKUs together."""
    min_share: float | None = Field(default=None, ge=0, le=1)
    """Minimum share (0–1) of the units bought of the SKU (of all SKUs) over the horizon."""
    max_share: float | None = Field(default=None, ge=0, le=1)
    """Maximum share (0–1) of the units bought of the SKU (of all SKUs) over the horizon."""
    preferred: bool = False
    """The SKU's (every SKU's) primary supplier, for other parts of optistock; no effect on the plan."""
    off: bool = False
    """Switched off: the supplier (no sku) or its offer of the SKU takes no orders."""

    @field_validator("max_share")
    @classmethod
    def _not_below_minimum(cls, value: float | None, info: ValidationInfo) -> float | None:
        minimum = info.data.get("min_share")
        if value is not None and minimum is not None and minimum > value:
            raise ValueError(f"max_share {value:g} is below min_share {minimum:g}")
        return value


class Scenario(StrictModel):
    name: str = Field(min_length=1)
    """Name of the scenario, recorded with every run."""
    description: str = ""
    """Free text for the reader."""
    data: Path
    """Folder with the input tables, relative to the YAML file."""
    horizon: Horizon
    """Planning horizon."""
    solver: SolverSettings = SolverSettings()
    """Solver settings; each can be overridden on the command line."""
    classification: ClassificationSettings = ClassificationSettings()
    """ABC / XYZ classification thresholds."""
    service: ServiceSettings | None = None
    """Service-level targets and safety stock (none: no safety stock, plain cost minimisation)."""
    kpis: KpiSettings = KpiSettings()
    """How the run's inventory KPIs are computed."""
    forecast: ForecastSettings | None = None
    """How demand is forecast from ``sales_history`` (defaults: see its keys)."""
    sourcing: list[SourcingRule] | None = None
    """Sourcing rules, added to those of the optional ``sourcing`` table (see README)."""


class LoadedScenario(BaseModel):
    """A validated scenario together with where it came from."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    scenario: Scenario
    path: Path
    data_dir: Path
    sourcing_origin: tuple[Path, Any] | None = None
    """The file and parsed YAML document that gave ``scenario.sourcing`` (to locate its errors)."""


class _Constructor(RoundTripConstructor):
    """Round-trip constructor that leaves an impossible date (``2024-02-30``) as text, so that the
    schema reports it with its key and line instead of the YAML library raising a bare ValueError."""

    def construct_yaml_timestamp(self, node: Any, values: Any = None) -> Any:
        try:
            return super().construct_yaml_timestamp(node, values)
        except ValueError:
            return str(node.value)


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_yaml_timestamp)


def _line_of(node: Any, loc: tuple[int | str, ...]) -> int | None:
    """1-based YAML line of the deepest node on ``loc`` that exists in the parsed document."""
    line: int | None = None
    for key in loc:
        if isinstance(node, CommentedMap):
            # the schema sees every key as text (see _to_plain): a key written as 7 is located as "7"
            key = next((k for k in node if k == key or str(k) == key), key)
            if key in node:
                line = node.lc.key(key)[0] + 1
                node = node[key]
                continue
            return line if line is not None else node.lc.line + 1
        if isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
            line = node.lc.item(key)[0] + 1
            node = node[key]
            continue
        break
    return line


def _describe_validation_error(err: ValidationError, document: Any, file: str) -> InputError:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    field = ".".join(str(part) for part in loc) or None
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key (not part of the schema)"
    elif first["type"] == "missing":
        message = "required key is missing"
    elif first["type"] == "value_error" and not loc:
        message = message.removeprefix("Value error, ")  # a rule about the document as a whole
    elif first["type"] == "value_error":
        message = f"{message.removeprefix('Value error, ')} (got {first.get('input')!r})"
    else:
        message = f"{message} (got {first.get('input')!r})"
    line = _line_of(document, loc) if loc else document.lc.line + 1
    return InputError(message, file=file, line=line, field=field)


def read_yaml_mapping(path: Path, what: str = "scenario") -> CommentedMap:
    """Parse a YAML file whose top level is a mapping, keeping line numbers; errors are
    :class:`InputError` with the file and line."""
    file = str(path)
    if not path.is_file():
        raise InputError(f"{what} file not found", file=file)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            "not UTF-8 text (save the file as UTF-8)", file=file, line=raw.count(b"\n", 0, exc.start) + 1
        ) from exc
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise InputError(f"YAML syntax error: {exc.problem or exc.context}", file=file, line=line) from exc
    except ReaderError as exc:
        raise InputError(
            f"YAML syntax error: unacceptable character #x{exc.character:04x}: {exc.reason}",
            file=file,
            line=text.count("\n", 0, exc.position) + 1,
        ) from exc
    if not isinstance(document, CommentedMap):
        raise InputError(f"the {what} must be a YAML mapping of keys to values", file=file, line=1)
    return document


def validate_document(model: type[M], document: CommentedMap, file: str) -> M:
    """``model`` validated from a parsed YAML mapping; the first error names its key and line."""
    try:
        return model.model_validate(_to_plain(document))
    except ValidationError as exc:
        raise _describe_validation_error(exc, document, file) from exc


def line_of(document: CommentedMap, *keys: int | str) -> int | None:
    """1-based line of ``keys`` (a path into the document) in its YAML file."""
    return _line_of(document, keys)


def load_scenario(path: Path) -> LoadedScenario:
    """Read and validate a scenario YAML file; any problem raises :class:`InputError` with its line."""
    file = str(path)
    document = read_yaml_mapping(path)
    scenario = validate_document(Scenario, document, file)
    data_dir = (path.parent / scenario.data).resolve()
    if not data_dir.is_dir():
        raise InputError(
            f"data folder '{scenario.data}' does not exist (resolved to {data_dir})",
            file=file,
            line=_line_of(document, ("data",)),
            field="data",
        )
    origin = (path, document) if scenario.sourcing is not None else None
    return LoadedScenario(scenario=scenario, path=path.resolve(), data_dir=data_dir, sourcing_origin=origin)


def _to_plain(node: Any) -> Any:
    if isinstance(node, CommentedMap):
        return {str(k): _to_plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [_to_plain(v) for v in node]
    return node


def dump_scenario(scenario: Scenario, path: Path) -> None:
    """Write a scenario as YAML (used for the resolved ``inputs/scenario.yaml`` of a run)."""
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(scenario.model_dump(mode="json", exclude_none=True), handle)
