"""A real Prefect server for the integration tests: PostgreSQL-backed, a worker, every deployment.

One session-scoped fixture starts it with the same code as ``make server`` (``flows.server``): a
database of our own (``finml_it_<random>``, dropped at the end), isolated ``PREFECT_HOME``,
registry and reports folders, a free port, a fast worker poll. Teardown stops everything even when
a test failed, and the last check is that no process carrying this session's tag is left; should
the test process be killed before its teardown, a watchdog on it stops the server.

PostgreSQL: ``FINML_IT_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``, an admin
connection used to create and drop the test database). When it cannot be reached the tests use
SQLite instead, except in CI (``CI=true``), where PostgreSQL is required.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BUILTIN_SPECS, ROOT

ADMIN_URL = os.environ.get("FINML_IT_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_URL, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _create_database() -> tuple[str | None, str]:
    """Create ``finml_it_<random>``; returns (name, asyncpg URL) or (None, reason) when unreachable."""
    name = f"finml_it_{secrets.token_hex(4)}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as err:  # no server, refused, bad credentials
        return None, f"{type(err).__name__}: {err}"
    base = ADMIN_URL.replace("postgresql://", "postgresql+asyncpg://", 1).rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def _drop_database(name: str) -> None:
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def client(api_url: str):
    """A synchronous Prefect client for this server (independent of any harness settings)."""
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(api_url)


def wait_for(predicate, timeout: float, interval: float = 1.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """Start the server, deploy prefect.yaml, start a worker; yield what tests need; stop all."""
    from flows.server import ServerOptions, free_port, start, stop, tagged_processes

    root = tmp_path_factory.mktemp("prefect-server")
    home, registry, reports = root / "home", root / "registry", root / "reports"
    db_name, db_url = _create_database()
    if db_name is None:
        if IN_CI:
            pytest.fail(f"CI needs PostgreSQL at {ADMIN_URL} for the integration tests: {db_url}")
        database, db_note = f"sqlite+aiosqlite:///{home / 'server.db'}", f"SQLite (PostgreSQL unreachable: {db_url})"
    else:
        database, db_note = db_url, f"PostgreSQL database {db_name}"
    env = {
        "PREFECT_HOME": str(home),
        "FINML_REGISTRY_DIR": str(registry),
        "FINML_REPORTS_DIR": str(reports),
        "FINML_SPECS_DIR": str(BUILTIN_SPECS),
        "FINML_PROJECT_DIR": str(ROOT),
        "FINML_TASK_RUNNER": None,
        "FINML_DASK_ADDRESS": None,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "GX_ANALYTICS_ENABLED": "False",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    # owner: if this test process dies (SIGTERM, kill -9) before its teardown, a watchdog stops the server
    options = ServerOptions(project_dir=ROOT, home=home, port=free_port(), database_url=database, env=env, timeout=240,
                            owner=os.getpid())
    state = None
    started = time.monotonic()
    try:
        state = start(options)
        print(f"\nintegration server on {state.ui_url} ({db_note}), up in {time.monotonic() - started:.1f} s")
        yield {
            "state": state, "api_url": state.api_url, "ui_url": state.ui_url, "database": db_note, "home": home,
            "registry": registry, "reports": reports, "root": root,
            "env": {**{k: v for k, v in os.environ.items() if k not in env or env[k] is not None},
                    **{k: v for k, v in env.items() if v is not None}, "PREFECT_API_URL": state.api_url},
        }
    finally:
        state_dir = Path(home) / "finml-server"
        report = stop(state_dir, grace=30)
        left = tagged_processes(str(state_dir.resolve()))
        if db_name:
            try:
                _drop_database(db_name)
            except Exception as err:  # report, but the process check below matters more
                print(f"could not drop the test database {db_name}: {err}")
        assert not left and not report.left, f"processes left running after teardown: {left or report.left}"
