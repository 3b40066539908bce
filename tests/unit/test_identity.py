"""Who acts (issue 18 §1): every history line names who, by the one rule of models/identity.py —
a deployment run's starter, FINML_USER, the operating-system user."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest

from models import identity
from models.identity import AUTOMATION, SCHEDULE, current_user, deployment_starter
from models.records.registry import Stopped, parse_event
from models.registry import ModelRegistry


def write(folder: Path, version: int) -> dict:
    (folder / "model").mkdir()
    (folder / "model" / "weights.bin").write_bytes(b"w" * 32)
    return {"model": "m"}


@pytest.fixture
def as_os_user(monkeypatch):
    """No FINML_USER; the operating system says the user is ``os-carol`` (getpass reads LOGNAME first)."""
    monkeypatch.delenv("FINML_USER", raising=False)
    monkeypatch.setenv("LOGNAME", "os-carol")
    return "os-carol"


def test_finml_user_is_recorded_on_every_history_line(tmp_path, monkeypatch):
    monkeypatch.setenv("FINML_USER", "alice@bank")
    reg = ModelRegistry(tmp_path, "m")
    reg.publish(write, promote=True, history_event={"event": "promoted"})
    reg.publish(write, promote=False, history_event={"event": "registered"})
    reg.rollback(2, reason="v2 is better on the new data")
    reg.retire_champion(reason="feature dropped")
    lines = [json.loads(raw) for raw in reg.history_path.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["promoted", "registered", "rolled_back", "champion_retired"]
    assert [line["who"] for line in lines] == ["alice@bank"] * 4
    assert [e.who for e in reg.history_events()] == ["alice@bank"] * 4


def test_without_finml_user_the_operating_system_user_is_recorded(tmp_path, as_os_user):
    assert getpass.getuser() == "os-carol"
    reg = ModelRegistry(tmp_path, "m")
    reg.publish(write, promote=True, history_event={"event": "promoted"})
    assert reg.history()[-1]["who"] == "os-carol"


def test_a_blank_finml_user_counts_as_unset(tmp_path, monkeypatch, as_os_user):
    monkeypatch.setenv("FINML_USER", "   ")
    assert current_user() == "os-carol"


def test_no_user_anywhere_is_recorded_as_unknown(monkeypatch):
    monkeypatch.delenv("FINML_USER", raising=False)

    def no_user():
        raise KeyError("getpwuid(): uid not found: 1234")

    monkeypatch.setattr(identity.getpass, "getuser", no_user)
    assert current_user() == "unknown"


def test_a_deployment_runs_starter_comes_before_finml_user(tmp_path, monkeypatch):
    monkeypatch.setenv("FINML_USER", "worker-account")
    assert current_user(SCHEDULE) == "schedule"
    assert current_user(None) == "worker-account"
    assert current_user("  ") == "worker-account"
    reg = ModelRegistry(tmp_path, "m")
    reg.append_history(Stopped(run_id="r1", reason="schedule", error="DataValidationError", cause="x",
                               who=current_user(AUTOMATION)))
    assert reg.history()[-1]["who"] == "automation"  # given on the event: kept, not replaced by FINML_USER


@pytest.mark.parametrize(("kind", "name", "auto", "expected"), [
    ("USER", "dana@bank", False, "dana@bank"),  # Prefect Cloud: the user who started the run
    ("user", " erik ", False, "erik"),
    ("AUTOMATION", "retrain credit_risk on drift", False, "automation"),  # self-hosted: a deployment trigger
    ("AUTOMATION", None, True, "automation"),
    (None, None, True, "schedule"),  # the scheduler made the run (auto_scheduled)
    (None, None, False, None),  # started by hand on a self-hosted server: Prefect does not know
    ("USER", "", False, None),
])
def test_deployment_starter_reads_what_prefect_records(kind, name, auto, expected):
    assert deployment_starter(kind, name, auto) == expected


def test_an_old_history_line_without_who_reads_as_none():
    event = parse_event({"event": "promoted", "version": 1, "ts": "2026-01-01T00:00:00+00:00"})
    assert event.who is None and "who" not in event.to_json()


def test_run_starter_outside_a_flow_run_is_none():
    from flows.naming import run_starter

    assert run_starter() is None
