"""The nightly batch: end to end, idempotent, deadline, lock, bad refreshed inputs, SQL refresh,
carried-forward start, what-if scenarios, config errors and JSON logs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from ruamel.yaml import YAML
from store_support import record, write_procurement

from optistock.batch.lock import BatchLock
from optistock.batch.runner import KILL_AT_ENV, run_batch
from optistock.errors import InputError, LockedError
from optistock.pipeline import hash_folder
from optistock.store.database import open_store
from optistock.store.workflow import PORef, decide, list_purchase_orders

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from optistock.cli import main; main()"]


def write_config(folder: Path, **settings: Any) -> Path:
    document = {
        "output_root": "out",
        "max_minutes": 10,
        "store": f"sqlite:///{folder / 'store.db'}",
        **settings,
    }
    path = folder / "nightly.yaml"
    with path.open("w", encoding="utf-8") as handle:
        YAML(typ="safe").dump(document, handle)
    return path


def nightly(folder: Path, refresh: bool = True, **settings: Any) -> Path:
    """The hand-checked procurement instance, planned nightly from a refresh folder (a copy of its data)."""
    scenario = write_procurement(folder / "scenario")
    extra: dict[str, Any] = {"scenario": str(scenario.relative_to(folder))}
    if refresh:
        shutil.copytree(folder / "scenario" / "data", folder / "refresh")
        extra["refresh"] = {"folder": "refresh"}
    return write_config(folder, **extra, **settings)


def batch_cli(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "batch", str(config), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def working_folders(root: Path) -> list[Path]:
    """The batch working folders (tonight's tables and inputs) in ``root``."""
    return [p for p in root.iterdir() if p.name.startswith(".work-")] if root.exists() else []


def visible_runs(root: Path) -> list[str]:
    return (
        sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and p.name != "logs")
        if root.exists()
        else []
    )


def store_state(config: Path) -> tuple[int, list[tuple[int, str, int]]]:
    """(number of runs, (id, status, version) of every purchase order)."""
    from sqlalchemy import func, select

    from optistock.store.schema import Run

    store = open_store(f"sqlite:///{config.parent / 'store.db'}")
    listing = list_purchase_orders(store)
    with store.transaction() as session:
        runs = int(session.scalar(select(func.count()).select_from(Run)) or 0)
    state = sorted(zip(listing["id"], listing["status"], listing["version"], strict=True))
    store.close()
    return runs, state


def test_batch_end_to_end_then_idempotent_with_json_logs(tmp_path: Path) -> None:
    config = nightly(tmp_path)
    first = batch_cli(config)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.startswith("planned: run 1, cost 1,066.00")
    records = [json.loads(line) for line in first.stderr.splitlines()]  # every stderr line is JSON
    phases = [r["phase"] for r in records if "phase" in r]
    assert phases == [
        "config",
        "lock",
        "recover",
        "load",
        "solve",
        "write",
        "files_written",
        "store_committed",
        "published",
    ]
    assert records[-1]["exit_code"] == 0 and records[-1]["run_id"] == 1
    (run_dir,) = visible_runs(tmp_path / "out")
    logs = list((tmp_path / "out" / "logs").glob("*.jsonl"))
    assert [p.stem for p in logs] == [run_dir]  # the run's log is kept next to its folder
    assert {json.loads(line)["message"] for line in logs[0].read_text().splitlines()} >= {"phase: published"}
    summary = json.loads((tmp_path / "out" / run_dir / "summary.json").read_text())
    assert summary["store"]["run_id"] == 1 and summary["batch"]["time_limit"] <= 60

    second = batch_cli(config)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stdout.startswith("unchanged: inputs as in run 1")
    assert visible_runs(tmp_path / "out") == [run_dir]
    assert store_state(config)[0] == 1

    forced = batch_cli(config, "--force")
    assert forced.returncode == 0 and forced.stdout.startswith("planned: run 2")
    assert len(visible_runs(tmp_path / "out")) == 2


def test_the_demo_scenario_runs_nightly_and_is_idempotent(tmp_path: Path) -> None:
    shutil.copytree(REPO / "scenarios" / "demo", tmp_path / "demo")
    config = write_config(tmp_path, scenario="demo/base.yaml", max_minutes=0.5)
    first = batch_cli(config)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.startswith("planned: run 1"), first.stdout[:500]  # no solver banner of a worker
    (run_dir,) = visible_runs(tmp_path / "out")
    summary = json.loads((tmp_path / "out" / run_dir / "summary.json").read_text())
    assert summary["plan_check"]["valid"] and summary["plan"]["purchase_orders"] > 0
    assert summary["batch"]["time_limit"] < 30  # the deadline, not the scenario's 45 s, set the limit
    again = batch_cli(config)
    assert again.returncode == 0 and again.stdout.startswith("unchanged")
    assert visible_runs(tmp_path / "out") == [run_dir]


def test_the_deadline_is_kept_on_an_instance_too_large_to_prove_optimal(tmp_path: Path) -> None:
    from optistock.synthetic import NAMED_SIZES, generate_instance, write_instance

    write_instance(generate_instance(NAMED_SIZES["M"], 7), tmp_path / "big" / "data")
    scenario = tmp_path / "big" / "scenario.yaml"
    scenario.write_text(
        "name: big\ndata: data\nhorizon: {periods: 13}\nsolver: {time_limit: 600, mip_gap: 0.0, threads: 1}\n"
    )
    config = write_config(tmp_path, scenario="big/scenario.yaml", max_minutes=0.5)
    started = time.monotonic()
    result = batch_cli(config)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in result.stderr.splitlines()]
    # the batch's own clock: from its first log line to its last, inside the 30 s it was given
    assert records[-1]["elapsed_s"] - records[0]["elapsed_s"] <= 30 + 5, records[-1]
    assert elapsed <= 30 + 20  # plus interpreter start-up, generously
    (run_dir,) = visible_runs(tmp_path / "out")
    summary = json.loads((tmp_path / "out" / run_dir / "summary.json").read_text())
    assert summary["gap"] is not None and summary["gap"] > 0  # not proven optimal: says how far


def test_a_second_batch_on_the_same_store_exits_5_and_does_nothing(tmp_path: Path) -> None:
    config = nightly(tmp_path)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    with BatchLock(store):
        result = batch_cli(config)
        with pytest.raises(LockedError, match="another batch holds the lock"):
            run_batch(config)
    store.close()
    assert result.returncode == 5
    assert f"process {os.getpid()}" in result.stderr
    assert visible_runs(tmp_path / "out") == []
    assert batch_cli(config).returncode == 0  # released: the next batch runs


@pytest.mark.parametrize("phase", ["load", "solve", "write", "files_written"])
def test_a_batch_killed_before_its_commit_leaves_nothing_and_the_next_one_runs(
    tmp_path: Path, phase: str
) -> None:
    config = nightly(tmp_path)
    assert batch_cli(config).returncode == 0  # last night
    (previous,) = visible_runs(tmp_path / "out")
    previous_hash = hash_folder(tmp_path / "out" / previous)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    decide(store, [PORef(1)], "approve", "buyer")
    store.close()
    before = store_state(config)
    (tmp_path / "refresh" / "demand.csv").write_text(
        (tmp_path / "refresh" / "demand.csv").read_text().replace("A,W1,2,30", "A,W1,2,35")
    )  # new demand tonight

    assert working_folders(tmp_path / "out") == []  # last night's, deleted when it ended
    killed = batch_cli(config, env={KILL_AT_ENV: phase})
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert visible_runs(tmp_path / "out") == [previous]
    assert hash_folder(tmp_path / "out" / previous) == previous_hash
    assert store_state(config) == before  # no run, no proposal, the approval untouched
    assert len(working_folders(tmp_path / "out")) == 1  # hidden, and left for the next batch

    after = batch_cli(config)
    assert after.returncode == 0, after.stderr[-2000:]
    assert len(visible_runs(tmp_path / "out")) == 2
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".partial")]
    assert working_folders(tmp_path / "out") == []
    messages = [json.loads(line)["message"] for line in after.stderr.splitlines()]
    assert any(m.startswith("recovery: removed .work-") for m in messages)
    assert store_state(config)[0] == 2


def test_a_batch_killed_after_its_commit_is_completed_by_the_next_one(tmp_path: Path) -> None:
    config = nightly(tmp_path)
    killed = batch_cli(config, env={KILL_AT_ENV: "store_committed"})
    assert killed.returncode == -9
    assert visible_runs(tmp_path / "out") == []  # the complete folder is still hidden
    hidden = [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".partial")]
    assert len(hidden) == 1 and (hidden[0] / "summary.json").is_file()
    after = batch_cli(config)
    assert after.returncode == 0, after.stderr[-2000:]
    assert after.stdout.startswith("unchanged: inputs as in run 1")  # recovered, then idempotent
    assert visible_runs(tmp_path / "out") == [hidden[0].name[1 : -len(".partial")]]
    assert any("recovery: completed" in json.loads(line)["message"] for line in after.stderr.splitlines())


def test_a_batch_killed_while_the_solver_runs_leaves_nothing(tmp_path: Path) -> None:
    from optistock.synthetic import NAMED_SIZES, generate_instance, write_instance

    write_instance(generate_instance(NAMED_SIZES["S"], 3), tmp_path / "s" / "data")
    (tmp_path / "s" / "scenario.yaml").write_text(
        "name: s\ndata: data\nhorizon: {periods: 13}\nsolver: {time_limit: 8, mip_gap: 0.0, threads: 1}\n"
    )
    config = write_config(tmp_path, scenario="s/scenario.yaml")
    process = subprocess.Popen([*CLI, "batch", str(config)], stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:
        if json.loads(line).get("phase") == "solve":
            time.sleep(1.0)
            process.kill()
            break
    assert process.wait(timeout=60) == -9
    assert visible_runs(tmp_path / "out") == []
    assert store_state(config)[0] == 0
    assert batch_cli(config).returncode == 0


def test_a_stale_lock_of_a_killed_batch_does_not_block(tmp_path: Path) -> None:
    config = nightly(tmp_path)
    assert batch_cli(config, env={KILL_AT_ENV: "recover"}).returncode == -9  # killed holding the lock
    assert batch_cli(config).returncode == 0


BAD_TABLES = [
    ("demand.csv", lambda t: t.replace("A,W1,1,30", "A,W1,1,lots"), "line 3", "quantity"),
    ("inventory.csv", lambda t: t.replace("A,W1,0", "A,W1,-5"), "line 2", "on_hand"),
    ("offers.csv", lambda t: t.replace(",lead_time", ",lead"), None, "lead_time"),
    ("demand.csv", lambda t: t.replace("B,W1,1,20", "Z,W1,1,20"), "line 7", "sku"),
    ("skus.csv", lambda t: t + "A,1.0,0.1,50.0\n", "line 4", "sku"),
    ("offers.csv", lambda t: t.replace("S1,A,10.0,20,", "S1,A,10.0,2.5,"), "line 2", "moq"),
    ("suppliers.csv", lambda t: t.replace("S1,50.0,", "S1,,"), "line 2", "order_cost"),
    ("demand.csv", lambda t: t.replace("A,W1,0,0", "A,W1,-1,0"), "line 2", "period"),
    ("demand.csv", lambda t: t.replace("A,W1,3,30", "A,W1,3,nan"), "line 5", "quantity"),
    ("inventory.csv", lambda t: t.replace("B,W1,0", "B,W9,0"), "line 3", "warehouse"),
    ("offers.csv", lambda t: t.replace("S2,B,", "S9,B,"), "line 5", "supplier"),
    ("skus.csv", None, None, None),
]
"""Each kind of bad input of the core contract: wrong type, negative, missing column, unknown sku,
duplicate key, not a whole number, blank, negative period, NaN, unknown warehouse and supplier, and a
required table missing everywhere."""


@pytest.mark.parametrize("table, corrupt, where, field", BAD_TABLES)
def test_bad_refreshed_tables_exit_2_and_leave_last_night_and_approvals_untouched(
    tmp_path: Path, table: str, corrupt: Any, where: str | None, field: str | None
) -> None:
    config = nightly(tmp_path)
    assert batch_cli(config).returncode == 0
    (previous,) = visible_runs(tmp_path / "out")
    previous_hash = hash_folder(tmp_path / "out" / previous)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    decide(store, [PORef(1)], "approve", "buyer")
    store.close()
    before = store_state(config)
    path = tmp_path / "refresh" / table
    if corrupt is None:
        path.unlink()
        (tmp_path / "scenario" / "data" / table).unlink()  # gone everywhere
    else:
        text = path.read_text()
        assert corrupt(text) != text
        path.write_text(corrupt(text))
    result = batch_cli(config)
    assert result.returncode == 2, result.stderr[-2000:]
    error = json.loads(result.stderr.splitlines()[-1])
    assert error["level"] == "error" and error["exit_code"] == 2
    message = error["message"]
    if corrupt is None:
        assert "skus" in message and "looked in" in message
    else:
        assert str(path) in message  # the real file, not the batch's snapshot copy
        assert f"field '{field}'" in message
        if where is not None:
            assert where in message
    assert visible_runs(tmp_path / "out") == [previous]
    assert hash_folder(tmp_path / "out" / previous) == previous_hash
    assert store_state(config) == before


def test_tables_can_be_refreshed_by_sql_and_errors_name_the_query_row(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    config = nightly(tmp_path, refresh=False)
    erp = f"sqlite:///{tmp_path / 'erp.db'}"
    engine = create_engine(erp)
    forecast = pd.DataFrame(
        {"item": ["A", "A", "B"], "site": ["W1", "W1", "W1"], "week": [1, 2, 1], "units": [40.0, 40.0, 10.0]}
    )
    forecast.to_sql("forecast", engine, index=False)
    engine.dispose()
    query = (
        "SELECT item AS sku, site AS warehouse, week AS period, units AS quantity FROM forecast ORDER BY week"
    )
    write_config(
        tmp_path,
        scenario="scenario/scenario.yaml",
        refresh={"sql": {"url": erp, "tables": {"demand": query}}},
    )
    result = batch_cli(config)
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = visible_runs(tmp_path / "out")
    demand = pd.read_csv(tmp_path / "out" / run_dir / "inputs" / "demand.csv")
    assert sorted(demand[["sku", "period", "quantity"]].values.tolist()) == [
        ["A", 1, 40.0],
        ["A", 2, 40.0],
        ["B", 1, 10.0],
    ]

    engine = create_engine(erp)
    pd.DataFrame({"item": ["A"], "site": ["W1"], "week": [3], "units": [-5.0]}).to_sql(
        "forecast", engine, index=False, if_exists="append"
    )
    engine.dispose()
    bad = batch_cli(config)
    assert bad.returncode == 2
    message = json.loads(bad.stderr.splitlines()[-1])["message"]
    assert (
        "query refresh.sql.tables.demand" in message and "row 4" in message and "field 'quantity'" in message
    )

    write_config(
        tmp_path,
        scenario="scenario/scenario.yaml",
        refresh={"sql": {"url": erp, "tables": {"demand": "SELECT * FROM no_such_table"}}},
    )
    broken = batch_cli(config)
    assert broken.returncode == 2 and "no_such_table" in broken.stderr


def test_tonight_starts_from_last_nights_plan_and_is_never_worse(tmp_path: Path) -> None:
    config = nightly(tmp_path)
    assert batch_cli(config).returncode == 0
    again = batch_cli(config, "--force")
    assert again.returncode == 0
    runs = visible_runs(tmp_path / "out")
    summary = json.loads((tmp_path / "out" / runs[-1] / "summary.json").read_text())
    carried = summary["batch"]["carried_plan"]
    assert carried["run_id"] == 1 and carried["valid"] and carried["cost"] == pytest.approx(1066.0)
    assert summary["objective"] <= carried["cost"] + 1e-6


def test_what_if_scenarios_run_after_the_plan_and_are_not_proposals(tmp_path: Path) -> None:
    config = nightly(tmp_path)
    main_file = tmp_path / "scenario" / "scenario.yaml"
    main_file.write_text(
        main_file.read_text() + "scenarios:\n  double:\n    changes:\n      - demand: {scale: 2}\n"
    )
    write_procurement(tmp_path / "spike", name="demand-spike")
    demand = pd.read_csv(tmp_path / "spike" / "data" / "demand.csv")
    demand["quantity"] *= 3
    demand.to_csv(tmp_path / "spike" / "data" / "demand.csv", index=False)
    write_procurement(tmp_path / "broken", name="broken")
    (tmp_path / "broken" / "data" / "skus.csv").write_text("sku,unit_volume\nA,1\n")
    # tonight's demand differs from the scenario's data folder: the named what-if must use tonight's
    refreshed = pd.read_csv(tmp_path / "refresh" / "demand.csv")
    refreshed.loc[refreshed["quantity"] > 0, "quantity"] += 10
    refreshed.to_csv(tmp_path / "refresh" / "demand.csv", index=False)
    write_config(
        tmp_path,
        scenario="scenario/scenario.yaml",
        refresh={"folder": "refresh"},
        what_if_scenarios=["double"],
        what_if=["spike/scenario.yaml", "broken/scenario.yaml"],
    )
    result = batch_cli(config)
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = visible_runs(tmp_path / "out")
    what_if = tmp_path / "out" / run_dir / "what-if"
    assert sorted(p.name for p in what_if.iterdir()) == ["demand-spike", "weekly+double"]
    double_demand = pd.read_csv(what_if / "weekly+double" / "inputs" / "demand.csv")
    assert sorted(double_demand["quantity"]) == sorted(2 * refreshed["quantity"])
    spike_summary = json.loads((what_if / "demand-spike" / "summary.json").read_text())
    assert spike_summary["scenario"] == "demand-spike" and spike_summary["objective"] > 1066.0
    assert "what-if double: planned" in result.stdout
    assert "what-if spike/scenario.yaml: planned" in result.stdout
    assert "what-if broken/scenario.yaml: failed" in result.stdout  # the broken file is reported ...
    assert store_state(config)[0] == 1  # ... and only the main plan is in the store


@pytest.mark.parametrize(
    "content, line, message",
    [
        ("scenario: s.yaml\noutput_root: out\nmax_minutes: 5\ncolour: blue\n", 4, "unknown key"),
        ("scenario: s.yaml\noutput_root: out\n", 1, "give a deadline"),
        ("scenario: s.yaml\noutput_root: out\ndeadline: soon\n", 3, "'soon' is not a deadline"),
        ("scenario: missing.yaml\noutput_root: out\nmax_minutes: 5\n", 1, "file not found"),
        ("scenario: s.yaml\noutput_root: out\nmax_minutes: -1\n", 3, "greater than 0"),
        ("scenario: s.yaml\noutput_root: [out\nmax_minutes: 5\n", 3, "YAML syntax error"),
        (
            "scenario: s.yaml\noutput_root: out\nmax_minutes: 5\nwhat_if_scenarios: [nope]\n",
            4,
            "unknown scenario",
        ),
        (
            "scenario: s.yaml\noutput_root: out\nmax_minutes: 5\n"
            "refresh:\n  sql:\n    tables:\n      demmand: x\n",
            7,
            "unknown input table 'demmand'",
        ),
    ],
)
def test_config_errors_name_the_line_and_exit_2(
    tmp_path: Path, content: str, line: int, message: str
) -> None:
    write_procurement(tmp_path / "x")
    shutil.copy(tmp_path / "x" / "scenario.yaml", tmp_path / "s.yaml")
    (tmp_path / "data").symlink_to(tmp_path / "x" / "data")
    config = tmp_path / "nightly.yaml"
    config.write_text(content)
    with pytest.raises(InputError, match=message) as caught:
        run_batch(config)
    assert caught.value.line == line
    result = batch_cli(config)
    assert result.returncode == 2 and message.split("'")[0] in result.stderr


def test_inputs_hash_alike_in_a_recorded_run_and_in_the_batch(tmp_path: Path) -> None:
    config = nightly(tmp_path)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    record(tmp_path / "scenario" / "scenario.yaml", tmp_path / "manual", store)
    store.close()
    result = batch_cli(config)  # the refresh folder is a copy of the same tables
    assert result.returncode == 0
    assert result.stdout.startswith("unchanged: inputs as in run 1")


def test_the_shipped_nightly_config_is_valid() -> None:
    from optistock.batch.config import load_batch_config

    loaded = load_batch_config(REPO / "scenarios" / "batch" / "demo-nightly.yaml")
    assert loaded.scenario == REPO / "scenarios" / "demo" / "whatif.yaml"
    assert loaded.config.what_if_scenarios == ["supplier-outage"]
    assert loaded.refresh_folder == REPO / "scenarios" / "demo" / "data"


def test_a_bad_deadline_on_the_command_line_is_exit_2(tmp_path: Path) -> None:
    result = batch_cli(nightly(tmp_path), "--deadline", "25:99")
    assert result.returncode == 2
    error = json.loads(result.stderr.splitlines()[-1])
    assert "field '--deadline'" in error["message"] and "'25:99' is not a deadline" in error["message"]
    assert visible_runs(tmp_path / "out") == []
