"""The CLI finds the server `finml server start` recorded (flows/server_address.py): used when it
is alive and answers, never when PREFECT_API_URL is set or FINML_USE_SERVER=0, ignored when dead,
silent or unreadable; its recorded front end (finml ui) becomes the command's FINML_UI_URL unless set."""

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


def test_the_recorded_front_end_gives_finml_ui_url_to_a_command_that_uses_the_server(tmp_path, monkeypatch, health_server):
    import os

    from flows.server_address import recorded_ui

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    _record(tmp_path, health_server, os.getpid())
    state = state_dir_for(tmp_path) / "state.json"
    recorded = json.loads(state.read_text())
    ui = "http://127.0.0.1:4400"
    state.write_text(json.dumps({**recorded, "finml_ui_url": ui, "ui_pid": os.getpid()}))
    env = {}
    assert use_recorded_server(env) == health_server
    assert env == {"PREFECT_API_URL": health_server, "FINML_UI_URL": ui}
    for given in ("http://elsewhere:1", ""):  # the user's choice wins, an empty one (no links) too
        env = {"FINML_UI_URL": given}
        assert use_recorded_server(env) == health_server and env["FINML_UI_URL"] == given
    env = {"PREFECT_API_URL": "http://elsewhere/api"}
    assert use_recorded_server(env) is None and "FINML_UI_URL" not in env  # not this server: not its front end
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    state.write_text(json.dumps({**recorded, "finml_ui_url": ui, "ui_pid": int(done.stdout)}))  # the UI has stopped
    env = {}
    assert use_recorded_server(env) == health_server and env == {"PREFECT_API_URL": health_server}
    assert recorded_ui() is None
    state.write_text(json.dumps({**recorded, "finml_ui_url": None, "ui_pid": 0}))  # started with --no-ui
    assert recorded_ui() is None


def test_the_settings_of_the_command_follow_the_exported_address(tmp_path, monkeypatch, health_server):
    import os

    from models.settings import get_settings
    from tasks.ui_files import ui_link

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    for name in ("PREFECT_API_URL", "FINML_UI_URL", "FINML_USE_SERVER"):  # restored after the test, set or not
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("FINML_REPORTS_DIR", str(tmp_path / "reports"))
    _record(tmp_path, health_server, os.getpid())
    state = state_dir_for(tmp_path) / "state.json"
    state.write_text(json.dumps({**json.loads(state.read_text()), "finml_ui_url": "http://127.0.0.1:4400",
                                 "ui_pid": os.getpid()}))
    assert get_settings().ui_url is None
    assert use_recorded_server() == health_server  # os.environ, as the console script calls it
    assert get_settings().ui_url == "http://127.0.0.1:4400"
    report = (tmp_path / "reports" / "m" / "r.html").as_uri()
    assert ui_link(report) == "http://127.0.0.1:4400/reports/m/r.html"
    assert os.environ["PREFECT_API_URL"] == health_server
