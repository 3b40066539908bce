"""The scoring service (flows/serve.py) on real credit_risk versions: served scores equal the
pipeline's, bad records get 422 naming the field and the rule, the champion is followed through a
rollback during a stream of requests, every scored record reaches the ledger, and a non-local bind
needs its token."""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from flows.serve import ServeConfigError, ServiceConfig, create_app
from models.ledger import read_ledger
from models.registry import ModelRegistry
from models.settings import BUILTIN_SPECS_DIR
from tests.serving_registry import credit_spec, train_two_versions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A registry with credit_risk v1 (logistic, C = 1) and v2 (logistic, C = 0.2: other scores; the champion)."""
    base = tmp_path_factory.mktemp("serving")
    registry, reports = base / "registry", base / "reports"
    train_two_versions(registry, reports)
    return registry


@pytest.fixture
def registry(trained, tmp_path):
    """A copy of the trained registry this test may change (rollback, ledger)."""
    copy = tmp_path / "registry"
    shutil.copytree(trained, copy)
    return copy


@pytest.fixture(scope="module")
def later():
    """The later (out-of-time) rows of credit_data as read, declared types parsed."""
    from tasks.load import load_source, parse_declared_types, split_out_of_time

    spec = credit_spec("logistic")
    return split_out_of_time(parse_declared_types(load_source(spec), spec), spec)[1].reset_index(drop=True)


def records_of(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON records (missing values as null), without the label."""
    return json.loads(frame.drop(columns=["Status"]).to_json(orient="records"))


def config(registry: Path, tmp_path: Path, **kw) -> ServiceConfig:
    return ServiceConfig(registry, BUILTIN_SPECS_DIR, tmp_path / "reports", **kw)


def test_the_served_score_is_the_pipelines_probability_with_points_grade_and_reasons(registry, tmp_path, later):
    gaps = later.drop(columns=["Status"]).isna().any(axis=1)
    rows = pd.concat([later[gaps].head(8), later[~gaps].head(32)]).sort_index()
    assert rows["Income"].isna().any()  # missing values are sent as null and scored as the batch scores them
    with TestClient(create_app(["credit_risk"], config(registry, tmp_path))) as client:
        answer = client.post("/v1/models/credit_risk/score?reasons=4", json=records_of(rows))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "credit_risk" and body["version"] == 2
    results = body["results"]
    pipeline, version, meta = ModelRegistry(registry, "credit_risk").load_model()
    expected = pipeline.predict_proba(rows[meta["features"]])[:, 1]
    assert version == 2 and [r["id"] for r in results] == rows["rownames"].tolist()
    np.testing.assert_allclose([r["score"] for r in results], expected, rtol=0, atol=1e-12)
    factor = 50 / math.log(2)  # the spec's scorecard: 600 points at good:bad odds 19:1, 50 points to double them
    for r, p in zip(results, expected):
        assert r["model"] == "credit_risk" and r["version"] == 2
        assert abs(r["points"] - (600 + factor * (math.log((1 - p) / p) - math.log(19)))) <= 0.5 + 1e-9
        bounds = [0.05, 0.10, 0.20, 0.35, 0.55]  # the spec's rating scale A..E, F above
        assert r["grade"] == "ABCDEF"[sum(p > b for b in bounds)]
    # reasons: those of the batch path (principal_reasons on the version's record), declined rows only
    from tasks.reasons import principal_reasons

    spec = credit_spec("logistic", C=0.2)
    batch = principal_reasons(spec.reasons, pipeline, rows[meta["features"]].reset_index(drop=True), expected,
                              meta["reasons"], 4)
    assert batch["declined"].any() and not batch["declined"].all()
    for i, r in enumerate(results):
        assert r["declined"] == bool(batch["declined"][i])
        want = [batch[f"reason_{j}"][i] for j in range(1, 5) if isinstance(batch[f"reason_{j}"][i], str)]
        assert [x["code"] for x in r["reasons"]] == want
        if not r["declined"]:
            assert r["reasons"] == []


def test_one_record_as_an_object_is_answered_like_a_list_of_one(registry, tmp_path, later):
    record = records_of(later.iloc[:1])[0]
    with TestClient(create_app(["credit_risk"], config(registry, tmp_path))) as client:
        one = client.post("/v1/models/credit_risk/score", json=record).json()["results"]
        many = client.post("/v1/models/credit_risk/score", json=[dict(record, rownames=99_999)]).json()["results"]
    assert len(one) == 1 and one[0]["score"] == many[0]["score"] and "reasons" not in one[0]


def test_a_bad_record_gets_422_naming_the_field_and_the_rule(registry, tmp_path, later):
    good = records_of(later.iloc[:2])
    bad = dict(good[1], Seniority=81, Home="castle", Age=None, Incme=3000)
    del bad["Time"]
    with TestClient(create_app(["credit_risk"], config(registry, tmp_path)), raise_server_exceptions=False) as client:
        answer = client.post("/v1/models/credit_risk/score", json=[good[0], bad])
        text = client.post("/v1/models/credit_risk/score", json=dict(good[0], Amount="800"))
        repeated = client.post("/v1/models/credit_risk/score", json=[good[0], good[0]])
        broken = client.post("/v1/models/credit_risk/score", content=b'[{"Seniority": 9,',
                             headers={"content-type": "application/json"})
        reasons = client.post("/v1/models/credit_risk/score?reasons=9", json=good[0])
    assert answer.status_code == 422 and answer.json()["version"] == 2
    found = {(d["record"], d["field"], d["rule"]) for d in answer.json()["detail"]}
    assert found == {(1, "Seniority", "max"), (1, "Home", "allowed"), (1, "Age", "max_null_share"),
                     (1, "Incme", "unknown field"), (1, "Time", "required")}
    assert "80" in next(d["message"] for d in answer.json()["detail"] if d["field"] == "Seniority")
    assert text.status_code == 422 and [(d["field"], d["rule"]) for d in text.json()["detail"]] == [("Amount", "dtype")]
    assert repeated.status_code == 422 and repeated.json()["detail"][0] | {"message": ""} == {
        "record": 1, "field": "rownames", "rule": "unique", "input": good[0]["rownames"], "message": ""}
    assert broken.status_code == 422 and broken.json()["detail"][0]["rule"] == "json"
    assert reasons.status_code == 422 and reasons.json()["detail"][0]["field"] == "reasons"


def test_a_bad_query_parameter_is_answered_in_the_services_422_format(registry, tmp_path, later):
    good = records_of(later.iloc[:1])[0]
    with TestClient(create_app(["credit_risk"], config(registry, tmp_path)), raise_server_exceptions=False) as client:
        word = client.post("/v1/models/credit_risk/score?reasons=x", json=good)
        far = client.post("/v1/models/credit_risk/score?as_of=2999-01-01", json=good)
    assert word.status_code == 422 and [(d["record"], d["field"], d["rule"], d["input"]) for d in word.json()["detail"]] == [
        (None, "reasons", "reasons", "x")]
    assert far.status_code == 422 and far.json()["detail"][0]["field"] == "as_of"
    assert "outside 1677-09-21 .. 2262-04-11" in far.json()["detail"][0]["message"]


def test_a_body_over_the_limit_or_too_many_records_gets_413(registry, tmp_path, later):
    records = records_of(later.iloc[:30])
    small = len(json.dumps(records[:10]).encode())
    app = create_app(["credit_risk"], config(registry, tmp_path, max_body_bytes=small + 10, max_records=5))
    with TestClient(app) as client:
        assert client.post("/v1/models/credit_risk/score", json=records).status_code == 413  # Content-Length
        chunked = client.post("/v1/models/credit_risk/score", content=iter([json.dumps(records).encode()]),
                              headers={"content-type": "application/json"})
        assert chunked.status_code == 413  # no Content-Length: counted while reading
        too_many = client.post("/v1/models/credit_risk/score", json=records[:6])
        assert too_many.status_code == 413 and "FINML_SERVE_MAX_RECORDS" in too_many.json()["detail"]
        assert client.post("/v1/models/credit_risk/score", json=records[:5]).status_code == 200


def test_every_scored_record_is_in_the_ledger_after_shutdown(registry, tmp_path, later):
    records = records_of(later.iloc[:25])
    app = create_app(["credit_risk"], config(registry, tmp_path, flush_seconds=3600))  # only the shutdown flushes
    with TestClient(app) as client:
        scores = []
        for chunk in (records[:1], records[1:10], records[10:]):
            scores += [r["score"] for r in client.post("/v1/models/credit_risk/score", json=chunk).json()["results"]]
        assert read_ledger(registry, "credit_risk").empty and app.state.service.ledger.waiting == 25
    ledger = read_ledger(registry, "credit_risk")
    assert sorted(ledger["id"].astype(int)) == sorted(r["rownames"] for r in records)
    by_id = dict(zip(ledger["id"].astype(int), ledger["score"]))
    assert [by_id[r["rownames"]] for r in records] == scores
    assert set(ledger["model_version"]) == {2} and ledger["run_id"].str.startswith("serve-").all()
    assert ledger["grade"].notna().all()


def test_a_non_local_bind_needs_the_token_and_refuses_a_request_without_it(registry, tmp_path, later):
    with pytest.raises(ServeConfigError, match="FINML_SERVE_TOKEN"):
        create_app(["credit_risk"], config(registry, tmp_path, host="0.0.0.0"))
    app = create_app(["credit_risk"], config(registry, tmp_path, host="0.0.0.0", token="s3cret-token"))
    record = records_of(later.iloc[:1])[0]
    with TestClient(app) as client:
        assert client.post("/v1/models/credit_risk/score", json=record).status_code == 401
        wrong = client.post("/v1/models/credit_risk/score", json=record, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert client.get("/v1/models").status_code == 401
        assert client.get("/health").status_code == 200  # probes need no token
        right = client.post("/v1/models/credit_risk/score", json=record,
                            headers={"Authorization": "Bearer s3cret-token"})
        assert right.status_code == 200 and right.json()["version"] == 2


def test_the_models_are_described(registry, tmp_path):
    with TestClient(create_app(None, config(registry, tmp_path))) as client:
        listed = client.get("/v1/models").json()["models"]
        one = client.get("/v1/models/credit_risk").json()
        paths = client.get("/openapi.json").json()["paths"]
        assert client.get("/v1/models/nope").status_code == 404
    assert listed == [{"model": "credit_risk", "version": 2, "task": "binary_classification",
                       "grades": list("ABCDEF"), "points_scale": one["points_scale"], "reasons": True}]
    props = one["record_schema"]["properties"]
    assert props["Seniority"]["maximum"] == 80 and props["Home"]["anyOf"][0]["enum"][-1] == "rent"
    assert "Status" not in props and one["record_schema"]["additionalProperties"] is False
    body = paths["/v1/models/credit_risk/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["oneOf"][0]["properties"]["Age"]["minimum"] == 18


def _serve_in_thread(app):
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_rollback_during_a_stream_of_requests_is_followed_without_a_failed_request(registry, tmp_path, later):
    record = records_of(later.iloc[:1])[0]
    server, thread, url = _serve_in_thread(create_app(["credit_risk"], config(registry, tmp_path)))
    seen: list[tuple[float, float, int, int | None, float | None]] = []  # (sent, answered, status, version, score)
    stop = threading.Event()

    def stream(worker: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            i = 0
            while not stop.is_set():
                i += 1
                sent = time.monotonic()
                r = client.post("/v1/models/credit_risk/score", json=dict(record, rownames=worker * 1_000_000 + i))
                body = r.json() if r.status_code == 200 else {}
                seen.append((sent, time.monotonic(), r.status_code, body.get("version"),
                             body["results"][0]["score"] if body else None))

    workers = [threading.Thread(target=stream, args=(w,)) for w in range(1, 4)]
    try:
        for w in workers:
            w.start()
        while len(seen) < 30:
            time.sleep(0.01)
        before = time.monotonic()
        ModelRegistry(registry, "credit_risk").rollback(1, reason="serving test: rollback under load")
        after = time.monotonic()
        while sum(1 for s in list(seen) if s[0] > after) < 30:
            time.sleep(0.01)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=30)
        server.should_exit = True
        thread.join(timeout=30)
    assert {s[2] for s in seen} == {200}  # no failed request
    assert {s[3] for s in seen if s[1] < before} == {2}
    assert {s[3] for s in seen if s[0] > after} == {1}  # every request sent after the rollback: version 1
    pipelines = {v: ModelRegistry(registry, "credit_risk").load_model(v)[0] for v in (1, 2)}
    features = credit_spec("logistic").feature_columns
    X = later.iloc[:1][features]
    for v in (1, 2):
        scores = [s[4] for s in seen if s[3] == v]
        assert scores and max(abs(x - pipelines[v].predict_proba(X)[0, 1]) for x in scores) < 1e-12
    assert pipelines[1].predict_proba(X)[0, 1] != pipelines[2].predict_proba(X)[0, 1]
    ledger = read_ledger(registry, "credit_risk")  # the shutdown flushed every answered request
    assert len(ledger) == len(seen) and dict(ledger["model_version"].value_counts()) == dict(
        pd.Series([s[3] for s in seen]).value_counts())


def test_a_new_champion_whose_files_changed_is_refused_not_loaded(registry, tmp_path, later, monkeypatch):
    record = records_of(later.iloc[:1])[0]
    app = create_app(["credit_risk"], config(registry, tmp_path))
    model_file = next((registry / "credit_risk" / "versions" / "1" / "model").iterdir())
    model_file.chmod(0o644)
    model_file.write_bytes(model_file.read_bytes() + b"tampered")
    loads = []
    import models.estimators

    real = models.estimators.load_pipeline_bytes
    monkeypatch.setattr(models.estimators, "load_pipeline_bytes", lambda files: loads.append(1) or real(files))
    monkeypatch.setattr(ModelRegistry, "verify", lambda self, version: {})  # let the alias move onto the damaged version
    ModelRegistry(registry, "credit_risk").rollback(1, reason="serving test")
    monkeypatch.undo()
    with TestClient(app) as client:
        answer = client.post("/v1/models/credit_risk/score", json=record)
        health = client.get("/health")
    assert answer.status_code == 503
    assert "credit_risk version 1 failed its integrity check" in answer.json()["detail"]
    assert f"model/{model_file.name}" in answer.json()["detail"]  # the changed file is named
    assert health.status_code == 503 and health.json()["models"] == {"credit_risk": None}
    assert loads == []  # nothing was unpickled


def test_the_service_runs_without_importing_prefect(trained, tmp_path, later):
    record = json.dumps(records_of(later.iloc[:1])[0])
    code = f"""
import sys
from tasks.step import without_prefect
without_prefect()
from pathlib import Path
from fastapi.testclient import TestClient
from flows.serve import ServiceConfig, create_app
from models.settings import BUILTIN_SPECS_DIR
app = create_app(["credit_risk"], ServiceConfig(Path({str(trained)!r}), BUILTIN_SPECS_DIR, Path({str(tmp_path)!r}),
                 flush_seconds=3600))
with TestClient(app) as c:
    r = c.post("/v1/models/credit_risk/score", content={record!r}, headers={{"content-type": "application/json"}})
    assert r.status_code == 200, r.text
app.state.service.ledger.unledgered  # scored rows were queued
print(sorted(m for m in sys.modules if m == "prefect" or m.startswith("prefect.")))
"""
    shutil.copytree(trained, tmp_path / "unused")  # keep the shared registry's ledger empty: score a copy
    code = code.replace(repr(str(trained)), repr(str(tmp_path / "unused")))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_finml_serve_refuses_to_start_on_a_non_local_address_without_a_token(registry, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app

    monkeypatch.setenv("FINML_REGISTRY_DIR", str(registry))
    monkeypatch.delenv("FINML_SERVE_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve", "credit_risk", "--host", "0.0.0.0", "--port", "4599"])
    assert result.exit_code == 2 and "FINML_SERVE_TOKEN" in result.output


def test_in_signed_mode_a_signed_rollback_is_followed_and_a_forged_one_is_refused(registry, tmp_path, later,
                                                                                  monkeypatch):
    from models.audit import attest_unsigned
    from models.integrity import chain_record
    from models.jsonl import append_jsonl
    from models.records.registry import RolledBack
    from models.signing import generate_keypair

    private, public = tmp_path / "signing.pem", tmp_path / "verify.pem"
    generate_keypair(private, public)
    monkeypatch.setenv("FINML_SIGNING_KEY_FILE", str(private))  # the training role vouches for v1 and v2
    assert attest_unsigned(ModelRegistry(registry, "credit_risk"), "serving test") == [1, 2]
    monkeypatch.delenv("FINML_SIGNING_KEY_FILE")
    monkeypatch.setenv("FINML_VERIFY_KEY_FILE", str(public))  # the service: a scoring worker, public key only
    record = records_of(later.iloc[:1])[0]
    with TestClient(create_app(["credit_risk"], config(registry, tmp_path))) as client:
        assert client.post("/v1/models/credit_risk/score", json=record).json()["version"] == 2
        monkeypatch.setenv("FINML_SIGNING_KEY_FILE", str(private))
        ModelRegistry(registry, "credit_risk").rollback(1, reason="serving test: signed rollback")
        monkeypatch.delenv("FINML_SIGNING_KEY_FILE")
        assert client.post("/v1/models/credit_risk/score", json=record).json()["version"] == 1
        history = registry / "credit_risk" / "history.jsonl"  # someone without the key moves the champion back
        forged = RolledBack(version=2, previous_champion=1, champion_after=2, reason="forged").to_json()
        append_jsonl(history, chain_record(forged, history, None, False))
        answer = client.post("/v1/models/credit_risk/score", json=record)
    assert answer.status_code == 503
    assert answer.json()["detail"].startswith("credit_risk: history.jsonl fails its signature check")
