"""The web front end's parts without a trained registry: the path check of served files, the model
card's rendering, the SVG charts, open alarms, FINML_UI_URL links, and ``finml ui`` as the
background process ``finml server start`` launches (real HTTP, raw paths)."""

from __future__ import annotations

import http.client
import os
import signal
import time

import pytest

from flows.server import free_port
from models.settings import Settings
from tasks.ui_files import ui_link
from tasks.ui_charts import Chart, Series, line_chart
from tasks.ui_files import render_card, safe_file
from tasks.ui_pages import open_alarms


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "reports"
    (root / "m" / "run").mkdir(parents=True)
    (root / "m" / "run" / "report.html").write_text("<html>ok</html>")
    (root / "m" / "run" / "model.joblib").write_bytes(b"pickle")
    (root / "m" / ".hidden.html").write_text("x")
    (tmp_path / "secret.html").write_text("secret")
    (root / "m" / "link.html").symlink_to(tmp_path / "secret.html")
    (root / "m" / "inner.html").symlink_to(root / "m" / "run" / "report.html")  # a link, even inside
    (root / "m" / "out").symlink_to(tmp_path)
    return root


def test_safe_file_serves_a_report_and_refuses_everything_else(tree):
    assert safe_file(tree, "m/run/report.html") == (tree / "m/run/report.html").resolve()
    for rel in ["", "/etc/passwd", "../secret.html", "m/../../secret.html", "m/./run/report.html", "m/.hidden.html",
                "m/link.html", "m/inner.html", "m/out/secret.html", "m/run/model.joblib", "m/run", "m/run/none.html",
                "m\\..\\secret.html", "m/run/report.html\x00.png"]:
        assert safe_file(tree, rel) is None, rel


def test_a_registry_root_reached_through_a_link_still_serves_its_files(tree, tmp_path):
    (tmp_path / "via").symlink_to(tree)
    assert safe_file(tmp_path / "via", "m/run/report.html") == (tree / "m/run/report.html").resolve()


def test_the_card_renders_tables_rewrites_relative_plots_and_escapes_raw_html():
    html = render_card("# Card\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![roc](reports/roc_curve.png) "
                       "[abs](https://example.org/x) <script>alert(1)</script>", "/registry/m/versions/3/")
    assert "<h1>Card</h1>" in html and "<td>1</td>" in html
    assert '<img src="/registry/m/versions/3/reports/roc_curve.png" alt="roc"' in html
    assert 'href="https://example.org/x"' in html
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_the_chart_draws_each_value_the_band_and_skips_missing_points():
    svg = line_chart(Chart("t <b>", ["a", "b", "c"], [Series("s&1", [0.1, None, 0.3])], references=[("sig", 0.25)],
                           band=[(0.0, 0.2), None, (0.1, 0.2)]))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count('class="point"') == 2 and 'data-value="0.1"' in svg and 'data-value="0.3"' in svg
    assert "<polyline" not in svg  # the missing middle point breaks the line into single points
    assert 'class="band"' in svg and 't &lt;b&gt;' in svg and "s&amp;1" in svg
    assert "no data" in line_chart(Chart("empty", []))


def test_open_alarms_are_the_champions_alarms_since_its_last_clear_run_and_since_it_became_champion():
    def run(version, verdict, ts):
        return {"version": version, "verdict": verdict, "ts": ts, "summary": verdict}

    history = [{"event": "promoted", "version": 1, "champion_after": 1, "ts": "2026-01-01T00:00:00+00:00"}]
    lines = [run(1, "drift", "2026-01-02T00:00:00+00:00"), run(1, "stable", "2026-01-03T00:00:00+00:00"),
             run(1, "feature_drift", "2026-01-04T00:00:00+00:00"), run(2, "drift", "2026-01-05T00:00:00+00:00"),
             run(1, "data_quality_alarm", "2026-01-06T00:00:00+00:00")]
    assert [a["ts"][:10] for a in open_alarms(lines, history, 1)] == ["2026-01-04", "2026-01-06"]
    assert open_alarms(lines, history, None) == []
    # v2 promoted, then v1 rolled back to: v1's alarms from before the rollback are not open
    history += [{"event": "promoted", "version": 2, "champion_after": 2, "ts": "2026-01-04T12:00:00+00:00"},
                {"event": "rolled_back", "version": 1, "champion_after": 1, "ts": "2026-01-05T12:00:00+00:00"}]
    assert [a["ts"][:10] for a in open_alarms(lines, history, 1)] == ["2026-01-06"]


def test_links_use_finml_ui_url_when_set(tmp_path):
    reports, registry = tmp_path / "reports", tmp_path / "registry"
    page = reports / "m" / "monitoring" / "2026 run" / "drift_report.html"
    with_ui = Settings(ui_url="http://ui:4400/", reports_dir=reports, registry_dir=registry)
    assert ui_link(page.as_uri(), with_ui) == "http://ui:4400/reports/m/monitoring/2026%20run/drift_report.html"
    assert ui_link((registry / "m/versions/1/model_card.md").as_uri(), with_ui) == \
        "http://ui:4400/registry/m/versions/1/model_card.md"
    assert ui_link("models/m/versions/1", with_ui) == "http://ui:4400/models/m/versions/1"
    outside = (tmp_path / "elsewhere.html").as_uri()
    assert ui_link(outside, with_ui) == outside
    assert ui_link(page.as_uri(), Settings(ui_url=None, reports_dir=reports)) == page.as_uri()


def _status(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)  # sent as written: http.client does not normalise ".."
        return conn.getresponse().status
    finally:
        conn.close()


def test_finml_ui_runs_as_a_background_process_and_refuses_traversal_over_http(tmp_path):
    from flows.ui import launch

    registry, reports = tmp_path / "registry", tmp_path / "reports"
    (reports / "m").mkdir(parents=True)
    (reports / "m" / "r.html").write_text("<p>report</p>")
    (tmp_path / "secret.html").write_text("secret")
    port, logs = free_port(), {}
    env = {**os.environ, "FINML_REGISTRY_DIR": str(registry), "FINML_REPORTS_DIR": str(reports)}
    env.pop("FINML_UI_URL", None)
    pid, url = launch("127.0.0.1", port, env, tmp_path, tmp_path, 120, logs)
    try:
        assert url == f"http://127.0.0.1:{port}" and env["FINML_UI_URL"] == url and logs["ui"] == str(tmp_path / "ui.log")
        assert _status(port, "/") == 200 and _status(port, "/reports/m/r.html") == 200
        for path in ["/reports/../secret.html", "/reports/%2e%2e/secret.html", "/reports/m/../../secret.html",
                     f"/reports/{tmp_path}/secret.html", f"/reports//{tmp_path}/secret.html"]:
            assert _status(port, path) == 404, path
        assert not registry.exists()  # an empty registry is shown, not created
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
            except ChildProcessError:
                break
            time.sleep(0.2)
        else:
            os.kill(pid, signal.SIGKILL)


def test_the_timeline_says_why_a_run_stopped_and_who_acted():
    from models.records.registry import Promoted, Stopped
    from tasks.ui_pages import event_details, who

    stopped = Stopped(error="DataValidationError", cause="column 'Income': 12 values below 0", reason="schedule")
    assert event_details(stopped) == "DataValidationError: column 'Income': 12 values below 0 (reason: schedule)"
    assert who(stopped) is None
    assert who(Promoted.from_stored({"event": "promoted", "version": 3, "who": "alice"})) == "alice"


def test_a_model_page_links_its_back_test_reports(tmp_path):
    from fastapi.testclient import TestClient

    from flows.ui import create_app
    from models.ledger import append_backtest

    registry, reports = tmp_path / "registry", tmp_path / "reports"
    (registry / "m").mkdir(parents=True)
    page = reports / "m" / "backtest" / "2026-01-01T000000Z-abcd" / "backtest.html"
    page.parent.mkdir(parents=True)
    page.write_text("<h1>Back-test</h1>")
    append_backtest(registry, "m", {"event": "backtest", "ts": "2026-01-01T00:00:00+00:00", "champion": 2,
                                    "matured": 1234, "report": str(page)})
    client = TestClient(create_app(registry, reports))
    html = client.get("/models/m").text
    link = "/reports/m/backtest/2026-01-01T000000Z-abcd/backtest.html"
    assert f'<a class="backtest-link" href="{link}">' in html and ">1234<" in html and ">v2<" in html
    assert client.get(link).text == "<h1>Back-test</h1>"
