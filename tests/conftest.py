"""Shared test fixtures: isolated settings, small specs, and one Prefect harness per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One terminal width for every test process, set before flows.cli is imported (its consoles read
# it live): 200 columns unless a test gives its own, whatever the shell or pytest-xdist's worker had.
os.environ["COLUMNS"] = "200"


@pytest.fixture
def finml_env(tmp_path, monkeypatch):
    """Point the registry, reports and specs folders at a fresh temporary directory."""
    registry = tmp_path / "registry"
    reports = tmp_path / "reports"
    specs = tmp_path / "specs"
    specs.mkdir()
    monkeypatch.setenv("FINML_REGISTRY_DIR", str(registry))
    monkeypatch.setenv("FINML_REPORTS_DIR", str(reports))
    monkeypatch.setenv("FINML_SPECS_DIR", str(specs))
    return {"root": tmp_path, "registry": registry, "reports": reports, "specs": specs}


@pytest.fixture(scope="session")
def prefect_api():
    """One ephemeral Prefect API (SQLite) for the whole test session (it costs ~10 s to start); its
    server dies with this process, even when the test run is killed."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.lifetime import tie_ephemeral_server

    tie_ephemeral_server()

    with prefect_test_harness(server_startup_timeout=120):
        yield
