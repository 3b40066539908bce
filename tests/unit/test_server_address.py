"""The CLI finds the server `finml server start` recorded (flows/server_address.py): used when it
is alive and answers, never when PREFECT_API_URL is set or FINML_USE_SERVER=0, ignored when dead,
silent or unreadable."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading

import pytest

from flows.server_address import recorded_server, state_dir_for, use_recorded_server


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args):
        pass


@pytest.fixture()
def health_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()


def _record(home, api_url: str, pid: int) -> None:
    folder = state_dir_for(home)
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({"api_url": api_url, "server_pid": pid}))


def test_a_live_answering_server_is_used(tmp_path, monkeypatch, health_server):
    import os

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    _record(tmp_path, health_server, os.getpid())
    assert recorded_server() == health_server
    env = {}
    assert use_recorded_server(env) == health_server and env == {"PREFECT_API_URL": health_server}
    assert use_recorded_server({"PREFECT_API_URL": "http://elsewhere/api"}) is None  # the user's choice wins
    assert use_recorded_server({"FINML_USE_SERVER": "0"}) is None


def test_a_dead_silent_or_unreadable_record_is_ignored(tmp_path, monkeypatch, health_server):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    assert recorded_server() is None  # no state file
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _record(tmp_path, health_server, int(done.stdout))  # that process has ended
    assert recorded_server() is None and use_recorded_server({}) is None
    import os

    (state_dir_for(tmp_path) / "state.json").write_text(json.dumps({"api_url": "http://127.0.0.1:9/api",
                                                                     "server_pid": os.getpid()}))
    assert recorded_server() is None  # alive, but nothing answers
    (state_dir_for(tmp_path) / "state.json").write_text("{not json")
    assert recorded_server() is None
