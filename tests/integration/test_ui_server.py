"""``finml server start`` runs ``finml ui`` beside the Prefect server: tagged like the other
processes, its URL in the state and in the workers' ``FINML_UI_URL``, stopped by ``finml server
stop``; a busy UI port is refused before anything starts."""

from __future__ import annotations

import json
import socket
import urllib.request

import psutil
import pytest

from flows.server import ServerError, ServerOptions, free_port, start, stop, tagged_processes


def test_server_start_runs_the_web_front_end_and_stop_ends_it(tmp_path):
    home, ui_port = tmp_path / "home", free_port()
    env = {"FINML_REGISTRY_DIR": str(tmp_path / "registry"), "FINML_REPORTS_DIR": str(tmp_path / "reports"),
           "FINML_UI_URL": None}
    state_dir = (home / "finml-server").resolve()
    try:
        state = start(ServerOptions(home=home, port=free_port(), worker=False, deploy=False, ui_port=ui_port, env=env,
                                    timeout=180))
        assert state.finml_ui_url == f"http://127.0.0.1:{ui_port}"
        with urllib.request.urlopen(state.finml_ui_url + "/", timeout=10) as resp:
            assert resp.status == 200 and "The registry at" in resp.read().decode()
        saved = json.loads((state_dir / "state.json").read_text())
        assert saved["finml_ui_url"] == state.finml_ui_url and saved["ui_pid"] == state.ui_pid
        assert saved["logs"]["ui"] == str(state_dir / "ui.log")
        ui = psutil.Process(state.ui_pid)
        assert "ui" in ui.cmdline() and ui.environ()["FINML_SERVER_TAG"] == str(state_dir)
        assert state.ui_pid in tagged_processes(str(state_dir))
        import os
        import subprocess
        import sys

        status = subprocess.run([sys.executable, "-m", "flows.cli", "server", "status", "--json"], capture_output=True,
                                text=True, timeout=120, env={**os.environ, "PREFECT_HOME": str(home)})
        assert status.returncode == 0, status.stdout + status.stderr  # healthy, every process alive
        info = json.loads(status.stdout)
        assert info["healthy"] and info["api_url"] == state.api_url and info["server_pid"] == state.server_pid
        assert info["deployment_rows"] == []  # deploy=False
    finally:
        report = stop(state_dir, grace=20)
    assert report.left == [] and tagged_processes(str(state_dir)) == []
    assert report.stopped.get(state.ui_pid) == "SIGTERM"  # uvicorn ends on SIGTERM


def test_a_busy_ui_port_is_refused_before_the_server_starts(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ServerError, match=f"port {port} .*finml ui"):
            start(ServerOptions(home=tmp_path / "home", port=free_port(), ui_port=port, timeout=30))
    assert not (tmp_path / "home" / "finml-server" / "server.log").exists()
    assert tagged_processes(str((tmp_path / "home" / "finml-server").resolve())) == []
