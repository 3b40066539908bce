"""End-to-end fixtures: one trained registry for the whole session (trained through Prefect)."""

from __future__ import annotations

import pytest

from tests.helpers import BUILTIN_SPECS


@pytest.fixture(scope="session")
def trained(tmp_path_factory, prefect_api):
    """Train every built-in model once into a fresh registry (about 80 s) and point settings at it."""
    root = tmp_path_factory.mktemp("e2e")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FINML_REGISTRY_DIR", str(root / "registry"))
        mp.setenv("FINML_REPORTS_DIR", str(root / "reports"))
        mp.setenv("FINML_SPECS_DIR", str(BUILTIN_SPECS))
        mp.setenv("COLUMNS", "200")
        from flows.training import train_all

        summaries = {s["model"]: s for s in train_all()}
        yield {"root": root, "registry": root / "registry", "reports": root / "reports", "summaries": summaries,
               "mp": mp}


@pytest.fixture
def captured_events(monkeypatch):
    """Record every Prefect event our code emits (name, resource, payload)."""
    import prefect.events

    seen: list[dict] = []

    def fake_emit_event(event, resource, payload=None, **kwargs):
        seen.append({"event": event, "resource": resource, "payload": payload})

    monkeypatch.setattr(prefect.events, "emit_event", fake_emit_event)
    return seen
