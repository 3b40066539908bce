"""The web front end's errors on a small real registry (two credit_risk versions trained in-process,
tests/serving_registry.py, ~6 s): a damaged ``aliases.json`` or ``history.jsonl`` is an error on
each page, never a 500; an ill-formed version or compare query is the site's own 404 or 400 page,
never FastAPI's JSON 422; the markdown artifacts name the front end's addresses with FINML_UI_URL;
IPv6 hosts are bracketed in URLs and unbracketed for binding."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from flows.ui import create_app
from tests.serving_registry import train_two_versions

MODEL = "credit_risk"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """credit_risk v1 and v2 (v2 the champion), and a rejected run's card and an Evidently report in the reports folder."""
    base = tmp_path_factory.mktemp("uierrors")
    registry, reports = base / "registry", base / "reports"
    train_two_versions(registry, reports)
    (reports / MODEL / "monitoring" / "run-1").mkdir(parents=True)
    (reports / MODEL / "monitoring" / "run-1" / "drift_report.html").write_text("<h1>Evidently</h1>")
    return registry, reports


def _copy(trained, tmp_path, name: str | None = None, text: str | None = None) -> TestClient:
    registry = tmp_path / "registry"
    shutil.copytree(trained[0], registry)
    if name:
        (registry / MODEL / name).write_text(text)
    return TestClient(create_app(registry, trained[1]), raise_server_exceptions=False)


def _errors(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", e).strip() for e in re.findall(r'<div class="error"[^>]*>(.*?)</div>', html, re.S)]


PAGES = ["/", f"/models/{MODEL}", f"/models/{MODEL}/versions/1", f"/models/{MODEL}/compare?a=1&b=2",
         f"/registry/{MODEL}/versions/1/model_card.md", f"/registry/{MODEL}/versions/1/reports/roc_curve.png",
         f"/reports/{MODEL}/monitoring/run-1/drift_report.html"]


def test_a_damaged_alias_file_is_an_error_on_every_page_that_reads_it_not_a_500(trained, tmp_path):
    client = _copy(trained, tmp_path, "aliases.json", "{not json")
    status = {p: client.get(p).status_code for p in PAGES}
    assert status == {p: 200 for p in PAGES}
    version = client.get(f"/models/{MODEL}/versions/1").text
    assert [e.split(" (")[0] for e in _errors(version)] == [
        f"This model's aliases cannot be read: RegistryError: {tmp_path / 'registry' / MODEL / 'aliases.json'}: "
        "damaged alias file"]
    assert "verified when this page loaded" in version and 'id="card"' in version  # the version itself is intact
    assert "<h1>Model card: credit_risk v1</h1>" in version
    assert "This model cannot be read: RegistryError" in client.get(f"/models/{MODEL}").text
    assert "damaged alias file" in client.get("/").text


def test_a_damaged_history_is_an_error_on_every_page_not_a_500_nor_a_failed_hash_check(trained, tmp_path):
    client = _copy(trained, tmp_path, "history.jsonl", "not json\n{}\n")
    assert {p: client.get(p).status_code for p in PAGES} == {p: 200 for p in PAGES}
    errors = _errors(client.get(f"/models/{MODEL}/versions/1").text)
    assert len(errors) == 2 and errors[0].startswith("This model's aliases cannot be read: RegistryError")
    assert errors[1].startswith("This version cannot be checked: RegistryError") and "line 1 is damaged" in errors[1]
    assert "line 1 is damaged" in _errors(client.get(f"/models/{MODEL}/compare?a=1&b=2").text)[0]


def test_a_tampered_file_is_still_a_failed_hash_check(trained, tmp_path):
    client = _copy(trained, tmp_path)
    with open(tmp_path / "registry" / MODEL / "versions/2/reports/roc_curve.png", "ab") as fh:
        fh.write(b"x")
    html = client.get(f"/models/{MODEL}/versions/2").text
    assert _errors(html)[0].startswith("Hash check FAILED: IntegrityError") and "reports/roc_curve.png" in html
    assert " (champion)</h1>" in html  # the aliases are read apart from the check


@pytest.mark.parametrize("text", ["abc", "1.0", "%201", "1%20", "+1", "0", "-1", "00", "%C2%B2", "1e0", "9" * 19])
def test_an_ill_formed_version_is_the_sites_404_page(trained, tmp_path, text):
    response = _copy(trained, tmp_path).get(f"/models/{MODEL}/versions/{text}")
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    assert "is not a version number (a positive integer, digits only)" in _errors(response.text)[0]


def test_well_formed_versions_and_unknown_ones(trained, tmp_path):
    client = _copy(trained, tmp_path)
    assert client.get(f"/models/{MODEL}/versions/2").status_code == 200
    assert "<h1>credit_risk v1</h1>" in client.get(f"/models/{MODEL}/versions/01").text  # digits only: 01 is 1
    missing = client.get(f"/models/{MODEL}/versions/3")
    assert missing.status_code == 404 and _errors(missing.text) == [f"{MODEL}: no version 3"]
    assert client.get("/models/nope/versions/1").status_code == 404
    assert client.get(f"/models/{MODEL}/compare?a=1&b=3").status_code == 404


@pytest.mark.parametrize("query, wrong", [("a=x", "a='x', b missing"), ("a=1", "b missing"), ("", "a missing, b missing"),
                                          ("a=1&b=%202", "b=' 2'"), ("a=1.0&b=2", "a='1.0'"), ("a=0&b=-2", "a='0', b='-2'")])
def test_a_bad_compare_query_is_the_sites_400_page(trained, tmp_path, query, wrong):
    response = _copy(trained, tmp_path).get(f"/models/{MODEL}/compare?{query}")
    assert response.status_code == 400 and response.headers["content-type"].startswith("text/html")
    assert _errors(response.text) == ["compare needs two version numbers, ?a=&lt;n&gt;&amp;b=&lt;m&gt; (positive integers, "
                                      f"digits only): {wrong}".replace("'", "&#39;")]


def test_unknown_routes_methods_and_failures_are_the_sites_pages(trained, tmp_path, monkeypatch):
    client = _copy(trained, tmp_path)
    page = client.get("/nothing/here")
    assert page.status_code == 404 and "<title>Not found" in page.text and _errors(page.text) == ["no such page here"]
    post = client.post(f"/models/{MODEL}")
    assert post.status_code == 405 and post.headers["content-type"].startswith("text/html") and "GET" in post.headers["allow"]
    import flows.ui

    def broken(*args):
        raise RuntimeError("boom /secret/path")

    monkeypatch.setattr(flows.ui, "models_overview", broken)
    failed = TestClient(create_app(tmp_path / "registry", trained[1]), raise_server_exceptions=False).get("/")
    assert failed.status_code == 500 and failed.headers["content-type"].startswith("text/html")
    assert "Traceback" not in failed.text and "/secret/path" not in failed.text
    assert _errors(failed.text) == ["this page could not be made (RuntimeError); the log of finml ui has the details"]


# ---- the markdown artifacts with FINML_UI_URL ------------------------------------------------------

def _summary(evidence: Path) -> str:
    from tasks.report import training_summary_markdown

    decision = {"promoted": False, "version": None, "champion_after": 1, "reason": "threshold", "evidence_path": str(evidence)}
    return training_summary_markdown(MODEL, decision, {"roc_auc": 0.6}, "roc_auc", [], {"verdicts": []},
                                     "binary_classification", {"rows": 3, "development_rows": 3, "sha256": "ab" * 32})


def _outcome(markdown: str):
    from types import SimpleNamespace

    return SimpleNamespace(artifacts=[{"key": "credit-risk-training-summary", "data": markdown}])


def test_a_rejected_runs_summary_names_its_card_in_the_front_end_with_finml_ui_url(tmp_path, monkeypatch):
    from flows.cli.common import model_card_line
    from tasks.report import MODEL_CARD_LINE

    reports = tmp_path / "reports"
    evidence = reports / MODEL / "rejected" / "2026 run" / "rejected.json"
    monkeypatch.setenv("FINML_REPORTS_DIR", str(reports))
    monkeypatch.setenv("FINML_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.delenv("FINML_UI_URL", raising=False)
    card = evidence.parent.resolve() / "model_card.md"
    assert f"{MODEL_CARD_LINE} `{card}`" in _summary(evidence).splitlines()  # unchanged without the setting
    assert model_card_line(_outcome(_summary(evidence))) == f"{MODEL_CARD_LINE} {card}"
    monkeypatch.setenv("FINML_UI_URL", "http://ui.test:4400/")
    url = f"http://ui.test:4400/reports/{MODEL}/rejected/2026%20run/model_card.md"
    assert f"{MODEL_CARD_LINE} <{url}>" in _summary(evidence).splitlines()
    assert model_card_line(_outcome(_summary(evidence))) == f"{MODEL_CARD_LINE} {url}"  # finml train --deployment
    outside = tmp_path / "elsewhere" / "rejected.json"
    assert f"{MODEL_CARD_LINE} `{outside.parent.resolve() / 'model_card.md'}`" in _summary(outside)


def test_the_monitoring_verdict_names_the_evidently_report_in_the_front_end_with_finml_ui_url(tmp_path, monkeypatch):
    from models.records.monitoring import MonitoringRecord
    from tasks.monitor import drift_markdown

    root = Path(__file__).resolve().parents[1] / "data" / "legacy_registry" / MODEL / "monitoring.jsonl"
    record = MonitoringRecord.from_stored(json.loads(root.read_text().splitlines()[-1]))
    html = tmp_path / "reports" / MODEL / "monitoring" / "2026-12-02T031030Z-8be412be" / "drift_report.html"
    record = record.model_copy(update={"evidently": record.evidently.model_copy(update={"html_path": str(html)})})
    monkeypatch.setenv("FINML_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.delenv("FINML_UI_URL", raising=False)
    note = record.evidently.sample_note
    assert f"Evidently report: `{html}` ({note})" in drift_markdown(record).splitlines()
    monkeypatch.setenv("FINML_UI_URL", "http://ui.test:4400")
    assert (f"Evidently report: <http://ui.test:4400/reports/{MODEL}/monitoring/2026-12-02T031030Z-8be412be/"
            f"drift_report.html> ({note})") in drift_markdown(record).splitlines()


# ---- IPv6 hosts ----------------------------------------------------------------------------------

def test_ipv6_hosts_are_bracketed_in_urls_and_bound_without_brackets():
    from flows.server_address import bind_host, http_url

    assert [bind_host(h) for h in ("::1", "[::1]", "127.0.0.1", "localhost", "[fe80::1]")] == \
        ["::1", "::1", "127.0.0.1", "localhost", "fe80::1"]
    assert http_url("::1", 4514) == http_url("[::1]", 4514) == "http://[::1]:4514"
    assert http_url("127.0.0.1", 4400) == "http://127.0.0.1:4400" and http_url("localhost", 1) == "http://localhost:1"
    for bad in ("[localhost]", "[127.0.0.1]", "[::1", "::1]", "[]"):
        with pytest.raises(ValueError, match="brackets go only around an IPv6 address"):
            bind_host(bad)


def test_finml_ui_and_serve_print_a_bracketed_ipv6_address_and_bind_it_bare(trained, monkeypatch):
    import flows.serve
    import flows.server
    import flows.ui
    from flows.cli import app

    bound = []
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setenv("FINML_REGISTRY_DIR", str(trained[0]))
    monkeypatch.setenv("FINML_REPORTS_DIR", str(trained[1]))
    monkeypatch.setattr(flows.server, "_port_free", lambda host, port: bound.append(("free", host)) or True)
    monkeypatch.setattr(flows.ui, "run", lambda registry, reports, host, port: bound.append(("ui", host, port)))
    monkeypatch.setattr(flows.serve, "run", lambda app, host, port: bound.append(("serve", host, port)))
    for host in ("::1", "[::1]"):
        ui = CliRunner().invoke(app, ["ui", "--host", host, "--port", "4514"])
        assert ui.exit_code == 0, ui.output
        assert ui.output.startswith("finml ui on http://[::1]:4514 (registry")
        served = CliRunner().invoke(app, ["serve", "--host", host, "--port", "4515"])
        assert served.exit_code == 0, served.output
        assert "on http://[::1]:4515  (docs: http://[::1]:4515/docs)" in served.output
    assert bound == [("free", "::1"), ("ui", "::1", 4514), ("serve", "::1", 4515)] * 2
    refused = CliRunner().invoke(app, ["ui", "--host", "[localhost]"])
    assert refused.exit_code == 2 and "brackets go only around an IPv6 address" in refused.output


def test_the_port_check_binds_ipv6_addresses():
    import socket

    from flows.server import _port_free, free_port

    port = free_port("::1")
    assert _port_free("::1", port) and _port_free("127.0.0.1", free_port())
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", port))
        s.listen()
        assert not _port_free("::1", port)
