"""The batch configuration file: a strict schema read from YAML, errors with their line."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from pydantic import Field, model_validator

from optistock.errors import InputError
from optistock.preprocess.scenario import StrictModel, line_of, read_yaml_mapping, validate_document
from optistock.preprocess.tables import TABLES

_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class SqlSource(StrictModel):
    url: str | None = None
    """SQLAlchemy URL to query (default: the store's database)."""
    tables: dict[str, str] = Field(min_length=1)
    """Input table name → SELECT query returning that table's columns."""


class Refresh(StrictModel):
    folder: Path | None = None
    """Folder of CSV/Parquet input tables (the core contract), relative to this file."""
    sql: SqlSource | None = None
    """Tables read by SQL queries; they take precedence over the folder."""

    @model_validator(mode="after")
    def _one_source_at_least(self) -> Refresh:
        if self.folder is None and self.sql is None:
            raise ValueError("give a folder, sql tables or both")
        return self


class BatchConfig(StrictModel):
    scenario: Path
    """The scenario to plan, relative to this file; its name identifies the plan in the store."""
    what_if_scenarios: list[str] = Field(default_factory=list)
    """Named scenarios of the main scenario file, planned after it on tonight's tables (outputs only,
    not recorded as proposals)."""
    what_if: list[Path] = Field(default_factory=list)
    """Scenario files planned after it on their own data (outputs only, not recorded as proposals)."""
    store: str | None = None
    """SQLAlchemy URL of the store (default: $OPTISTOCK_DB, else sqlite:///optistock.db here)."""
    output_root: Path
    """Folder that receives one folder per batch run, and logs/."""
    deadline: str | None = None
    """Wall-clock time by which the batch must be finished: "HH:MM" (next occurrence, local time)
    or an ISO date-time."""
    max_minutes: float | None = Field(default=None, gt=0)
    """Alternatively (or also; the earlier wins): minutes from the start of the batch."""
    refresh: Refresh | None = None
    """Where tonight's input tables come from (default: the scenario's own data folder)."""

    @model_validator(mode="after")
    def _a_deadline(self) -> BatchConfig:
        if self.deadline is None and self.max_minutes is None:
            raise ValueError("give a deadline (HH:MM or an ISO date-time) or max_minutes")
        return self


class LoadedBatchConfig:
    """A validated config with its paths resolved against the config file's folder."""

    def __init__(self, config: BatchConfig, path: Path) -> None:
        base = path.parent
        self.config = config
        self.path = path.resolve()
        self.scenario = (base / config.scenario).resolve()
        self.what_if = [(base / p).resolve() for p in config.what_if]
        self.output_root = (base / config.output_root).resolve()
        refresh = config.refresh
        self.refresh_folder = (
            (base / refresh.folder).resolve() if refresh is not None and refresh.folder is not None else None
        )
        self.sql = refresh.sql if refresh is not None else None


def load_batch_config(path: Path) -> LoadedBatchConfig:
    document = read_yaml_mapping(path, what="batch config")
    file = str(path)
    config = validate_document(BatchConfig, document, file)
    if config.deadline is not None:
        try:
            parse_deadline(config.deadline, dt.datetime.now())
        except ValueError as exc:
            raise InputError(
                str(exc), file=file, line=line_of(document, "deadline"), field="deadline"
            ) from exc
    loaded = LoadedBatchConfig(config, path)
    if config.what_if_scenarios and loaded.scenario.is_file():
        from optistock.whatif.scenario_file import load_scenario_file

        defined = load_scenario_file(loaded.scenario).scenarios
        for position, name in enumerate(config.what_if_scenarios):
            if name not in defined:
                names = ", ".join(defined) or "none"
                raise InputError(
                    f"unknown scenario '{name}' (defined in {loaded.scenario.name}: {names})",
                    file=file,
                    line=line_of(document, "what_if_scenarios", position),
                    field="what_if_scenarios",
                )
    for key, target in [("scenario", loaded.scenario), *[("what_if", p) for p in loaded.what_if]]:
        if not target.is_file():
            raise InputError(f"file not found: {target}", file=file, line=line_of(document, key), field=key)
    if loaded.refresh_folder is not None and not loaded.refresh_folder.is_dir():
        raise InputError(
            f"folder not found: {loaded.refresh_folder}",
            file=file,
            line=line_of(document, "refresh", "folder"),
            field="refresh.folder",
        )
    if loaded.sql is not None:
        for table in loaded.sql.tables:
            if table not in TABLES:
                raise InputError(
                    f"unknown input table '{table}' (tables: {', '.join(TABLES)})",
                    file=file,
                    line=line_of(document, "refresh", "sql", "tables", table),
                    field=f"refresh.sql.tables.{table}",
                )
    return loaded


def parse_deadline(text: str, now: dt.datetime) -> dt.datetime:
    """``HH:MM`` → its next occurrence after ``now`` (local time); else an ISO date-time (local when
    it has no zone). Returns a naive local date-time."""
    clock = _CLOCK.match(text.strip())
    if clock:
        at = now.replace(hour=int(clock.group(1)), minute=int(clock.group(2)), second=0, microsecond=0)
        return at if at > now else at + dt.timedelta(days=1)
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"'{text}' is not a deadline: use HH:MM or an ISO date-time (2027-01-05T05:30)"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone().replace(tzinfo=None)
    return moment


def batch_deadline(
    loaded: LoadedBatchConfig, started: dt.datetime, override: str | None = None
) -> dt.datetime:
    """The earliest of the configured deadline (or ``override``) and ``max_minutes`` after the start."""
    candidates = []
    text = override or loaded.config.deadline
    if text is not None:
        try:
            candidates.append(parse_deadline(text, started))
        except ValueError as exc:  # only an override can be bad here: the file's was checked on load
            raise InputError(str(exc), field="--deadline") from exc
    if loaded.config.max_minutes is not None:
        candidates.append(started + dt.timedelta(minutes=loaded.config.max_minutes))
    return min(candidates)
