"""The web front end (``finml ui``) on a real registry built by the flows (tests/ui_registry.py):
what each page shows against the registry's files, the files it serves and refuses, that it never
writes, that a broken model folder is an error on its page, and the Prefect link artifacts."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import stat
from pathlib import Path
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

from flows.ui import create_app
from models.registry import ModelRegistry
from tests.ui_registry import DROPPED, UI_URL, ui_registry  # noqa: F401 (the fixture)

MODEL = "credit_risk"


@pytest.fixture(scope="module")
def client(ui_registry):  # noqa: F811
    return TestClient(create_app(ui_registry["registry"], ui_registry["reports"]))


@pytest.fixture(scope="module")
def reg(ui_registry):  # noqa: F811
    return ModelRegistry(ui_registry["registry"], MODEL)


def _rows(html: str, table_id: str) -> list[list[str]]:
    """The text of each cell of each row of ``<table id=table_id>`` (tags stripped)."""
    body = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S).group(1)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def test_the_models_page_shows_the_champion_aliases_json_names_with_its_metric(client, ui_registry):  # noqa: F811
    aliases = json.loads((ui_registry["registry"] / MODEL / "aliases.json").read_text())
    assert aliases == {"champion": 1}  # the rollback made v1 the champion again after v2's promotion
    meta = json.loads((ui_registry["registry"] / MODEL / "versions/1/metadata.json").read_text())
    header, row = _rows(client.get("/").text, "models")
    cells = dict(zip(header, row))
    assert cells["champion"] == f"v{aliases['champion']}"
    assert cells["primary metric"] == "roc_auc" and cells["value"] == f"{meta['metrics']['roc_auc']:.4f}"
    assert cells["versions"] == "2"
    last = [json.loads(line) for line in (ui_registry["registry"] / MODEL / "monitoring.jsonl").read_text().splitlines()][-1]
    assert cells["last monitoring"] == f"{last['verdict']} (v1, {last['ts']})"
    assert cells["open alarms"] == "none"
    assert cells["last training"].startswith("promoted v2") and cells["promoted"] == "yes"


def test_the_model_page_lists_versions_history_monitoring_and_every_evidently_report(client, reg, ui_registry):  # noqa: F811
    html = client.get(f"/models/{MODEL}").text
    versions = _rows(html, "versions")
    for row, n in zip(versions[1:], (1, 2), strict=True):
        meta = reg.version_metadata(n)
        assert row[0].startswith(f"v{n}") and row[1] == f"{meta.metrics['roc_auc']:.4f}" and row[2] == "PASS"
        assert row[3] == meta.created_at and row[4] == meta.run.reason
        commit = next(e for e in reg.history_events() if e.event == "promoted" and e.version == n)
        assert commit.who and row[5] == commit.who  # who: the commit line's (FINML_USER or the OS user)
    assert "champion" in versions[1][0] and "champion" not in versions[2][0]
    timeline = _rows(html, "timeline")[1:]
    assert [r[1] for r in timeline] == ["promoted", "rejected", "champion_retired", "promoted", "rolled_back"]
    strip = re.search(r'<div id="timeline-chart">(.*?)</div>', html, re.S).group(1)
    assert re.findall(r'class="event" data-event="([^"]+)"', strip) == [r[1] for r in timeline]
    assert "champion v2 → v1 (reason: UI test rollback to v1)" in timeline[4][5]
    assert "does not meet the required margin" in timeline[1][5]
    evidence = re.search(r'href="(/reports/[^"]+/model_card.md)"', html).group(1)
    card = client.get(evidence).text  # the rejected run's model card, rendered, with its plots beside it
    assert "<h1>Model card: credit_risk — challenger NOT promoted</h1>" in card
    plots = re.findall(r'<img src="([^"]+)"', card)
    assert plots and all(p.startswith(evidence.rsplit("/", 1)[0] + "/reports/") for p in plots)
    assert all(client.get(p).headers["content-type"] == "image/png" for p in plots)
    assert client.get(evidence + "?raw=1").text.startswith("# Model card")
    records = reg.monitoring_records()
    links = re.findall(r'class="evidently-link" href="([^"]+)"', html)
    assert len(links) == len(records) == 2
    for link, record in zip(links, records):
        assert Path(ui_registry["reports"], unquote(link.removeprefix("/reports/"))).resolve() == \
            Path(record.evidently.html_path).resolve()
        page = client.get(link)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.content == Path(record.evidently.html_path).read_bytes()


def test_the_trend_charts_draw_the_recorded_psi_and_performance(client, reg):
    html = client.get(f"/models/{MODEL}").text
    records = reg.monitoring_records()
    psi = re.search(r'<div id="psi-chart">(.*?)</div>', html, re.S).group(1)
    drawn = [float(v) for v in re.findall(r'data-series="score" data-value="([^"]+)"', psi)]
    assert drawn == [r.drift.score_psi for r in records]
    age = [float(v) for v in re.findall(r'data-series="Age" data-value="([^"]+)"', psi)]
    assert age == [r.drift.features["Age"].psi for r in records]
    assert sorted(float(v) for v in re.findall(r'class="reference" data-value="([^"]+)"', psi)) == [0.1, 0.25]
    perf = re.search(r'<div id="performance-chart">(.*?)</div>', html, re.S).group(1)
    batch = [float(v) for v in re.findall(r'data-series="roc_auc on the batch" data-value="([^"]+)"', perf)]
    assert batch == [r.performance.changes["roc_auc"].batch for r in records]
    assert 'class="band"' in perf


def test_the_version_page_renders_the_card_gate_lineage_spec_and_verified_files(client, reg):
    meta = reg.version_metadata(1)
    html = client.get(f"/models/{MODEL}/versions/1").text
    assert f"verified when this page loaded ({len(meta.files)} files)" in html
    img = re.findall(r'<img src="([^"]+)"', html)
    assert f"/registry/{MODEL}/versions/1/reports/roc_curve.png" in img
    png = client.get(f"/registry/{MODEL}/versions/1/reports/roc_curve.png")
    assert png.headers["content-type"] == "image/png"
    assert png.content == (reg.version_dir(1) / "reports/roc_curve.png").read_bytes()
    assert "<h1>Model card: credit_risk v1</h1>" in html
    gate = _rows(html, "gate")[1:]
    assert [(r[0], r[1], r[4]) for r in gate] == [
        (v.rule, v.metric, ("PASS" if v.passed else "FAIL") if v.applicable else "n/a") for v in meta.gate.verdicts]
    lineage = dict((r[0], r[1]) for r in _rows(html, "lineage"))
    assert lineage["data fingerprint"] == meta.data["sha256"] and lineage["spec sha256"] == meta.spec_sha256
    assert lineage["commit"].startswith(meta.lineage.git.commit)
    files = {r[0]: (r[1], r[2]) for r in _rows(html, "files")[1:]}
    assert files == {p: (h, "verified") for p, h in meta.files.items()}
    assert "Seniority:" in re.search(r'<pre id="spec">(.*?)</pre>', html, re.S).group(1)


def test_compare_shows_both_versions_metrics_gates_features_and_the_spec_diff(client, reg):
    m1, m2 = reg.version_metadata(1), reg.version_metadata(2)
    html = client.get(f"/models/{MODEL}/compare?a=1&b=2").text
    metrics = {r[0].replace(" (primary)", ""): r[1:] for r in _rows(html, "metrics")[1:]}
    assert metrics["roc_auc"] == [f"{m1.metrics['roc_auc']:.4f}", f"{m2.metrics['roc_auc']:.4f}",
                                  f"{m2.metrics['roc_auc'] - m1.metrics['roc_auc']:.4f}"]
    assert f"removed in v2: {DROPPED}" in html and "added in v2: none" in html
    diff = re.sub(r"<[^>]+>", "", re.search(r'<pre class="diff" id="spec-diff">(.*?)</pre>', html, re.S).group(1))
    lines = diff.splitlines()
    assert lines[:2] == ["--- v1 spec", "+++ v2 spec"]
    for sign, text in (("+", "role: excluded"), ("-", "role: numeric"), ("+", "reason: dropped by the UI test"),
                       ("-", "C: 1.0"), ("+", "C: 0.5")):
        assert any(line.startswith(sign) and line[1:].strip() == text for line in lines), (sign, text)
    gate = _rows(html, "gate-compare")[1:]
    assert len(gate) == len({(v.rule, v.metric) for v in m1.gate.verdicts + m2.gate.verdicts})


def _raw_get(app, path: str) -> int:
    """The status of GET ``path`` sent to the ASGI app as is (no client normalises ``..``)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": unquote(path), "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test")], "server": ("test", 80), "client": ("127.0.0.1", 1)}
    seen = {}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]

    asyncio.run(app(scope, receive, send))
    return seen["status"]


def test_files_outside_the_registry_and_reports_folders_are_refused(ui_registry):  # noqa: F811
    root = ui_registry["root"]
    secret = root / "secret.txt"
    secret.write_text("not to be served")
    evil = ui_registry["reports"] / MODEL / "evil.txt"
    evil.symlink_to(secret)
    linked_dir = ui_registry["reports"] / MODEL / "linked"
    linked_dir.symlink_to(root)
    app = create_app(ui_registry["registry"], ui_registry["reports"])
    try:
        assert _raw_get(app, f"/registry/{MODEL}/versions/1/reports/roc_curve.png") == 200
        for path in ["/reports/../secret.txt", "/reports/%2e%2e/secret.txt", "/reports/%2E%2E/secret.txt",
                     "/reports/..%2fsecret.txt", "/registry/../secret.txt", "/registry/%2e%2e/secret.txt",
                     f"/reports/../registry/{MODEL}/aliases.json", f"/reports/%2e%2e/registry/{MODEL}/aliases.json",
                     f"/registry/{MODEL}/versions/1/../../../secret.txt",
                     f"/reports//{secret}", f"/reports/{secret}", f"/registry/%2F{str(secret).lstrip('/')}",
                     "/reports//etc/passwd", f"/reports/{MODEL}/evil.txt", f"/reports/{MODEL}/linked/secret.txt",
                     f"/registry/{MODEL}/versions/1/model/pipeline.joblib", f"/registry/{MODEL}/history.jsonl",
                     f"/registry/{MODEL}/.lock", f"/registry/{MODEL}/versions/1/reference.parquet"]:
            assert _raw_get(app, path) == 404, path
        client = TestClient(app)
        assert client.get(f"/reports/{MODEL}/evil.txt").status_code == 404
        assert client.get("/reports/%2e%2e/secret.txt").status_code == 404
    finally:
        evil.unlink()
        linked_dir.unlink()


def _snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames, "."]:
            path = Path(dirpath) / name
            st = os.lstat(path)
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else None
            out[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return out


def test_crawling_every_page_leaves_the_registry_untouched(client, ui_registry):  # noqa: F811
    before = _snapshot(ui_registry["registry"])
    seen, todo = set(), ["/", f"/models/{MODEL}/compare?a=1&b=2", f"/models/{MODEL}/compare?a=2&b=1"]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url)
        assert response.status_code == 200, url
        if response.headers["content-type"].startswith("text/html") and not url.startswith("/reports/"):
            todo += [u for u in re.findall(r'(?:href|src)="(/[^"#]*)"', response.text) if u not in seen]
    assert {f"/models/{MODEL}/versions/1", f"/models/{MODEL}/versions/2"} <= seen
    assert sum(u.startswith("/reports/") for u in seen) >= 3 and sum(u.startswith("/registry/") for u in seen) >= 10
    assert _snapshot(ui_registry["registry"]) == before
    assert not (ui_registry["registry"] / MODEL / ".lock.owner").exists()


def test_a_broken_model_folder_is_an_error_on_its_page_not_a_500(ui_registry, tmp_path):  # noqa: F811
    registry = tmp_path / "registry"
    shutil.copytree(ui_registry["registry"], registry, symlinks=True)
    for dirpath, _, filenames in os.walk(registry):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(Path(dirpath) / name, 0o644)
    broken = registry / "broken_model"
    (broken / "versions").mkdir(parents=True)
    (broken / "history.jsonl").write_text("not json\n{}\n")
    with open(registry / MODEL / "versions/2/reports/roc_curve.png", "ab") as fh:
        fh.write(b"tampered")
    client = TestClient(create_app(registry, ui_registry["reports"]), raise_server_exceptions=False)
    rows = {r[0]: r for r in _rows(client.get("/").text, "models")[1:]}
    assert rows["broken_model"][1].startswith("cannot be read: RegistryError") and "line 1" in rows["broken_model"][1]
    assert rows[MODEL][1] == "v1"  # the intact model is still listed in full
    page = client.get("/models/broken_model")
    assert page.status_code == 200 and "This model cannot be read: RegistryError" in page.text
    model = client.get(f"/models/{MODEL}").text
    versions = {r[0].split()[0]: r for r in _rows(model, "versions")[1:]}
    assert "IntegrityError" in versions["v2"][1] and "reports/roc_curve.png" in versions["v2"][1]
    assert versions["v1"][2] == "PASS"
    v2 = client.get(f"/models/{MODEL}/versions/2")
    assert v2.status_code == 200 and "Hash check FAILED" in v2.text and "reports/roc_curve.png" in v2.text
    assert 'id="card"' not in v2.text  # nothing of a version that fails its check is shown
    assert "not verified" in v2.text
    assert "IntegrityError" in client.get(f"/models/{MODEL}/compare?a=1&b=2").text


def test_the_link_artifacts_point_at_the_web_front_end(ui_registry, reg):  # noqa: F811
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as c:
        def links(key):
            found = c.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            targets = [re.fullmatch(r"\[.*\]\((.*)\)", a.data).group(1) for a in found]  # stored as [text](link)
            return sorted(t for t in targets if t.startswith(UI_URL))  # not other tests' runs

        reports = ui_registry["reports"].resolve()
        expected = sorted(f"{UI_URL}/reports/{Path(r.evidently.html_path).resolve().relative_to(reports).as_posix()}"
                          for r in reg.monitoring_records())
        assert links("credit-risk-evidently-report") == expected
        monitored = [f"{UI_URL}/models/{MODEL}"] * len(reg.monitoring_records())  # each monitoring run: the trends
        assert len(monitored) >= 1
        assert links("credit-risk-registry-page") == sorted(
            [f"{UI_URL}/models/{MODEL}/versions/1", f"{UI_URL}/models/{MODEL}", f"{UI_URL}/models/{MODEL}/versions/2",
             *monitored])


def test_the_markdown_artifacts_name_the_card_and_the_evidently_reports_in_the_web_front_end(ui_registry, reg):  # noqa: F811
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from tasks.report import MODEL_CARD_LINE

    with get_client(sync_client=True) as c:
        def lines(key, start):
            found = c.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            return sorted(line for a in found for line in (a.data or "").splitlines()
                          if line.startswith(start) and UI_URL in line)  # not other tests' runs

        reports = ui_registry["reports"].resolve()
        rejected = next(e for e in reg.history_events() if e.event == "rejected")
        card = (Path(rejected.evidence).resolve().parent / "model_card.md").relative_to(reports).as_posix()
        assert lines("credit-risk-training-summary", MODEL_CARD_LINE) == [f"{MODEL_CARD_LINE} <{UI_URL}/reports/{card}>"]
        evidently = lines("credit-risk-monitoring-verdict", "Evidently report:")
        assert [line.split(">")[0] for line in evidently] == sorted(
            f"Evidently report: <{UI_URL}/reports/{Path(r.evidently.html_path).resolve().relative_to(reports).as_posix()}"
            for r in reg.monitoring_records())
