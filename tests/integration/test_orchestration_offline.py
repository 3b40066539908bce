"""Orchestration checks that need no server: clear failures without a Prefect API, run names,
and the server lifecycle's guards. Each CLI check runs in a fresh process with a clean Prefect
environment (an in-process test harness would otherwise provide an API URL)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.naming import monitoring_run_name, training_run_name
from flows.server import ServerError, ServerOptions, free_port, redact, start, stop, tagged_processes, work_pools
from tests.helpers import ROOT

BIN = Path(sys.executable).parent


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "FINML_"))}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "FINML_REGISTRY_DIR": str(tmp_path / "registry"), "FINML_REPORTS_DIR": str(tmp_path / "reports"),
                "COLUMNS": "250"})
    env.update(extra)
    return env


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_dask_runner_refuses_to_run_without_a_prefect_api(tmp_path):
    code = ("from flows.runners import OrchestrationError, make_task_runner\n"
            "try:\n    make_task_runner()\nexcept OrchestrationError as err:\n    print('REFUSED', err)\n"
            "else:\n    print('ACCEPTED')\n")
    out = _run([sys.executable, "-c", code], _clean_env(tmp_path, FINML_TASK_RUNNER="dask"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("REFUSED"), out.stdout
    assert "needs a real Prefect API" in out.stdout and "PREFECT_API_URL" in out.stdout
    # a scheduler address alone selects Dask too
    out = _run([sys.executable, "-c", code], _clean_env(tmp_path, FINML_DASK_ADDRESS="tcp://127.0.0.1:8786"))
    assert out.stdout.startswith("REFUSED"), out.stdout


def test_cli_training_with_dask_and_no_api_fails_before_any_work(tmp_path):
    out = _run([str(BIN / "finml"), "train", "credit_risk"], _clean_env(tmp_path, FINML_TASK_RUNNER="dask"))
    assert out.returncode == 1
    assert "the Dask task runner needs a real Prefect API" in _flat(out.stderr)
    assert not (tmp_path / "registry").exists()


def test_cli_deployment_without_prefect_api_url_fails_clearly(tmp_path):
    for cmd in (["train", "credit_risk", "--deployment"], ["monitor", "credit_risk", "--demo-period", "--deployment"]):
        out = _run([str(BIN / "finml"), *cmd], _clean_env(tmp_path))
        assert out.returncode == 1, out.stdout
        assert "PREFECT_API_URL is not set" in _flat(out.stderr)


def test_cli_deployment_with_an_unreachable_server_fails_clearly(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/api"
    out = _run([str(BIN / "finml"), "train", "credit_risk", "--deployment"], _clean_env(tmp_path, PREFECT_API_URL=url))
    assert out.returncode == 1
    assert f"cannot reach the Prefect API at {url}" in _flat(out.stderr)


def test_run_names_carry_model_version_and_outcome():
    assert training_run_name("credit_risk", 3, "train-credit_risk-2026-01-02T0304") == "train-credit_risk-v3-2026-01-02T0304"
    assert training_run_name("credit_risk", None, "train-credit_risk-2026-01-02T0304") == \
        "train-credit_risk-rejected-2026-01-02T0304"
    assert monitoring_run_name("loan_evaluation", 2, "performance_breach", "monitor-loan_evaluation-champion-2026-01-02T0304") \
        == "monitor-loan_evaluation-v2-performance-breach-2026-01-02T0304"
    assert training_run_name("m", 1, "renamed-by-hand").startswith("train-m-v1-20")


def test_server_start_refuses_a_busy_port_and_leaves_nothing(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ServerError, match=f"port {port}"):
            start(ServerOptions(home=tmp_path / "home", port=port, timeout=30))
    assert tagged_processes(str((tmp_path / "home" / "finml-server").resolve())) == []
    report = stop(tmp_path / "home" / "finml-server")
    assert report.stopped == {} and report.left == []


def test_work_pools_come_from_prefect_yaml_and_passwords_are_redacted():
    assert work_pools(ROOT) == ["finml-pool"]
    assert redact("postgresql+asyncpg://me:secret@db:5432/prefect") == "postgresql+asyncpg://me:***@db:5432/prefect"
    assert redact("sqlite+aiosqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"


def test_stop_sweeps_every_process_carrying_the_tag(tmp_path):
    """A process a worker left behind (own session, parent gone) is found by its tag and ended."""
    state_dir = (tmp_path / "home" / "finml-server").resolve()
    state_dir.mkdir(parents=True)
    env = {**os.environ, "FINML_SERVER_TAG": str(state_dir)}
    # a shell that ignores SIGTERM and starts a child in a new session, like a flow run of a process worker
    stray = subprocess.Popen(["bash", "-c", "trap '' TERM; setsid sleep 300 & wait"], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(tagged_processes(str(state_dir))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(tagged_processes(str(state_dir))) >= 2
        report = stop(state_dir, grace=2)
        assert report.left == []
        assert "SIGKILL" in report.stopped.values()  # the shell ignored SIGTERM
        assert tagged_processes(str(state_dir)) == []
    finally:
        if stray.poll() is None:
            stray.kill()
        stray.wait(10)


def test_the_server_database_is_the_one_prefect_is_configured_with_however_it_was_set(tmp_path):
    """It used to read PREFECT_SERVER_DATABASE_CONNECTION_URL alone: the older alias or a profile
    setting (`prefect config set`) silently gave a production server SQLite."""
    probe = [str(BIN / "python"), "-c", "from flows.server import configured_database_url as c; print(c())"]
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/prod"
    assert _run(probe, _clean_env(tmp_path)).stdout.strip() == "None"  # Prefect's default SQLite file
    assert _run(probe, _clean_env(tmp_path, PREFECT_API_DATABASE_CONNECTION_URL=url)).stdout.strip() == url
    assert _run(probe, _clean_env(tmp_path, PREFECT_SERVER_DATABASE_CONNECTION_URL=url)).stdout.strip() == url
    env = _clean_env(tmp_path)
    done = _run([str(BIN / "prefect"), "config", "set", f"PREFECT_SERVER_DATABASE_CONNECTION_URL={url}/profile"], env)
    assert done.returncode == 0, done.stderr
    assert _run(probe, env).stdout.strip() == f"{url}/profile"


def test_the_server_client_sends_the_configured_basic_auth(tmp_path):
    """With PREFECT_SERVER_API_AUTH_STRING on the server, `finml server start` failed with 401 on its
    first call: its client did not send PREFECT_API_AUTH_STRING."""
    import base64

    probe = [str(BIN / "python"), "-c",
             "from flows.server import _client; print(_client('http://127.0.0.1:1/api')._client.headers.get('authorization'))"]
    out = _run(probe, _clean_env(tmp_path, PREFECT_API_AUTH_STRING="admin:pw")).stdout.strip()
    assert out == "Basic " + base64.b64encode(b"admin:pw").decode()
    assert _run(probe, _clean_env(tmp_path)).stdout.strip() == "None"


def test_an_sql_source_that_fails_once_is_loaded_on_the_retry_and_a_bad_query_fails_at_once(tmp_path, prefect_api,
                                                                                              monkeypatch):
    """The load-data task retries a connection failure (Prefect retries), never a bad query."""
    import sqlite3

    import sqlalchemy
    from prefect import flow
    from sqlalchemy.exc import OperationalError

    from models.spec import find_spec, parse_spec
    from tasks.load import DataSourceError, TransientSourceError, load_data, load_source
    from tests.helpers import BUILTIN_SPECS, builtin_spec_dict

    rows = load_source(find_spec("credit_risk", BUILTIN_SPECS))
    db = tmp_path / "bank.db"
    with sqlite3.connect(db) as conn:
        rows.to_sql("applications", conn, index=False)
    data = builtin_spec_dict("credit_risk")
    data["source"] = {"kind": "sql", "url": f"sqlite:///{db}", "query": "SELECT * FROM applications ORDER BY rownames"}
    attempts = []
    connect = sqlalchemy.engine.Engine.connect

    def refused_once(self, *args, **kwargs):
        attempts.append(1)
        if len(attempts) == 1:
            raise OperationalError("connect", {}, ConnectionRefusedError("connection refused"))
        return connect(self, *args, **kwargs)

    monkeypatch.setattr(sqlalchemy.engine.Engine, "connect", refused_once)
    quick = load_data.with_options(retry_delay_seconds=0)

    @flow
    def load(spec):
        return quick(spec)

    loaded = load(parse_spec(data))
    assert len(attempts) == 2 and len(loaded.frame) == len(rows)
    attempts.clear()
    attempts.append(1)  # from here on every connection succeeds
    data["source"]["query"] = "SELECT * FROM no_such_table ORDER BY 1"
    with pytest.raises(DataSourceError, match="query failed") as failed:
        load(parse_spec(data))
    assert not isinstance(failed.value, TransientSourceError)
    assert len(attempts) == 2  # one attempt, no retry


def test_a_server_started_for_an_owner_stops_when_the_owner_is_killed_9(tmp_path):
    """What the integration fixture relies on: a test run killed before its teardown leaves no server."""
    home = tmp_path / "home"
    state_dir = (home / "finml-server").resolve()
    code = ("import os, sys, time\n"
            "from flows.server import ServerOptions, start\n"
            f"start(ServerOptions(home={str(home)!r}, port=int(sys.argv[1]), worker=False, deploy=False, timeout=120,\n"
            "                    owner=os.getpid()))\n"
            "print('up', flush=True)\n"
            "time.sleep(120)\n")
    owner = subprocess.Popen([sys.executable, "-c", code, str(free_port())], cwd=ROOT, env=_clean_env(tmp_path),
                             stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "up"
        assert tagged_processes(str(state_dir))
        owner.kill()
        owner.wait(10)
        deadline = time.monotonic() + 30
        while ((state_dir / "state.json").exists() or tagged_processes(str(state_dir))) and time.monotonic() < deadline:
            time.sleep(0.2)  # the watchdog's stop() removes the state file once nothing is left
        assert tagged_processes(str(state_dir)) == []
        assert not (state_dir / "state.json").exists()
    finally:
        if owner.poll() is None:
            owner.kill()
        stop(state_dir, grace=5)
