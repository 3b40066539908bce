"""Benchmark: ``finml serve`` against a bare FastAPI endpoint calling the same pipeline's ``predict_proba``.

Run: ``.venv/bin/python benchmarks/serving.py [--candidate logistic] [--single 1000] [--batches 20]``

It trains ``credit_risk`` with one scikit-learn candidate into a temporary registry (in-process, the
training steps without Prefect: ``tests/serving_registry.py``), then starts two servers, each a
uvicorn process of its own (one worker, access log off in both):

- ``finml``: the app of ``flows/serve.py`` (``create_app``) as ``finml serve`` runs it: the request
  schema, the champion check, the batch path (parse, table, score), points, grade, the ledger buffer;
- ``bare``: the floor, a FastAPI route that reads the JSON body, builds a DataFrame and returns
  ``pipeline.predict_proba(frame[features])[:, 1]`` of the same pipeline (loaded hash-checked from the
  same registry), nothing else.

One client (httpx, keep-alive) in this process then measures, alternating between the two servers in
blocks of 20 requests so that both see the same machine load, in ``--rounds`` rounds (the best
round's figure of each server is kept: this VM's timings of the same call vary by a factor of two):

- latency of one applicant: ``--single`` sequential requests of one record (after a warm-up), p50
  and p99 of the time from send to parsed answer;
- throughput: ``--batches`` sequential requests of 1,000 records each, records per second (median
  of the per-request rates).

Targets (issue 17): p99 of one applicant at most 1.5 × the bare endpoint's and under 30 ms on a quiet
machine; throughput at least 0.7 × the bare endpoint's. It prints the figures with the load average;
the latest are in docs/serving.md.
"""


import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _bare_app(registry: Path):
    """The floor: body → DataFrame → predict_proba, with the champion's pipeline."""
    import pandas as pd
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import Response
    from pydantic_core import from_json, to_json

    from models.registry import ModelRegistry

    pipeline, _, meta = ModelRegistry(registry, "credit_risk").load_model()
    features = list(meta["features"])
    app = FastAPI()

    def predict(body: bytes) -> bytes:
        records = from_json(body)
        frame = pd.DataFrame.from_records(records if isinstance(records, list) else [records])
        return to_json({"scores": pipeline.predict_proba(frame[features])[:, 1].tolist()})

    @app.post("/score")
    async def score(request: Request) -> Response:
        return Response(await run_in_threadpool(predict, await request.body()), media_type="application/json")

    return app


def serve(kind: str, registry: Path, port: int) -> None:
    """Run one server (the subprocess side of this script)."""
    from tasks.step import without_prefect

    without_prefect()
    import uvicorn

    if kind == "bare":
        app = _bare_app(registry)
    else:
        from flows.serve import ServiceConfig, create_app
        from models.settings import BUILTIN_SPECS_DIR

        app = create_app(["credit_risk"], ServiceConfig(registry, BUILTIN_SPECS_DIR, registry.parent / "reports"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(kind: str, registry: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--registry", str(registry), "--port", str(port)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/openapi.json", timeout=2)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the {kind} server did not start")


def _records(n: int, seed: int) -> list[dict]:
    """``n`` complete credit_data rows (resampled, new ids) as JSON records, without the label."""
    import numpy as np

    from models.settings import BUILTIN_SPECS_DIR
    from models.spec import find_spec
    from tasks.load import load_source, parse_declared_types

    spec = find_spec("credit_risk", BUILTIN_SPECS_DIR)
    rows = parse_declared_types(load_source(spec), spec).drop(columns=["Status"]).dropna()
    sample = rows.sample(n, replace=True, random_state=seed).reset_index(drop=True)
    sample["rownames"] = np.arange(1, n + 1) + seed * 10_000_000
    return json.loads(sample.to_json(orient="records"))


def _percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


def measure(args) -> None:
    import httpx
    import numpy as np

    from tests.serving_registry import credit_spec, train_version

    work = Path(tempfile.mkdtemp(prefix="finml-bench-serving-"))
    registry = work / "registry"
    t0 = time.perf_counter()
    version = train_version(credit_spec(args.candidate), registry, work / "reports")
    print(f"trained credit_risk v{version} ({args.candidate}) in {time.perf_counter() - t0:.1f} s; registry {registry}")
    servers = {kind: _start(kind, registry) for kind in ("bare", "finml")}
    paths = {"bare": "/score", "finml": "/v1/models/credit_risk/score"}
    singles = [json.dumps(r).encode() for r in _records(args.single + 200, seed=1)]
    batch = json.dumps(_records(1000, seed=2)).encode()
    headers = {"content-type": "application/json"}
    rounds: list[dict[str, dict[str, float]]] = []
    try:
        clients = {k: httpx.Client(base_url=url, timeout=60) for k, (_, url) in servers.items()}
        for kind, client in clients.items():  # warm-up (first-request costs, caches)
            for body in singles[:100]:
                assert client.post(paths[kind], content=body, headers=headers).status_code == 200
            assert client.post(paths[kind], content=batch, headers=headers).status_code == 200
        for _ in range(args.rounds):
            latency: dict[str, list[float]] = {"bare": [], "finml": []}
            rates: dict[str, list[float]] = {"bare": [], "finml": []}
            block = 20
            for start in range(100, 100 + args.single, block):
                for kind in ("bare", "finml") if start // block % 2 else ("finml", "bare"):
                    for body in singles[start:start + block]:
                        t = time.perf_counter()
                        r = clients[kind].post(paths[kind], content=body, headers=headers)
                        r.json()
                        latency[kind].append(time.perf_counter() - t)
                        assert r.status_code == 200, r.text
            for i in range(args.batches):
                for kind in ("bare", "finml") if i % 2 else ("finml", "bare"):
                    t = time.perf_counter()
                    r = clients[kind].post(paths[kind], content=batch, headers=headers)
                    answered = r.json()
                    rates[kind].append(1000 / (time.perf_counter() - t))
                    assert r.status_code == 200 and len(answered.get("results", answered.get("scores"))) == 1000
            rounds.append({k: {"p50": _percentile(latency[k], 50) * 1000, "p99": _percentile(latency[k], 99) * 1000,
                               "rps": float(np.median(rates[k]))} for k in ("bare", "finml")})
        for client in clients.values():
            client.close()
    finally:
        for proc, _ in servers.values():
            proc.terminate()
        for proc, _ in servers.values():
            proc.wait(timeout=60)
    from models.ledger import read_ledger

    ledgered = len(read_ledger(registry, "credit_risk"))
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} on {os.cpu_count()} cores")
    for i, r in enumerate(rounds, 1):
        print(f"  round {i}: p50 {r['bare']['p50']:.2f} / {r['finml']['p50']:.2f} ms, p99 {r['bare']['p99']:.2f} / "
              f"{r['finml']['p99']:.2f} ms, {r['bare']['rps']:,.0f} / {r['finml']['rps']:,.0f} records/s (bare / finml)")
    best = {k: {"p50": min(r[k]["p50"] for r in rounds), "p99": min(r[k]["p99"] for r in rounds),
                "rps": max(r[k]["rps"] for r in rounds)} for k in ("bare", "finml")}
    p50, p99, rps = ({k: best[k][m] for k in best} for m in ("p50", "p99", "rps"))
    print(f"best of {len(rounds)} rounds:")
    print(f"{'':32}{'bare predict_proba':>20}{'finml serve':>14}{'ratio':>8}")
    print(f"{'one applicant, p50 (ms)':32}{p50['bare']:>20.2f}{p50['finml']:>14.2f}{p50['finml'] / p50['bare']:>8.2f}")
    print(f"{'one applicant, p99 (ms)':32}{p99['bare']:>20.2f}{p99['finml']:>14.2f}{p99['finml'] / p99['bare']:>8.2f}")
    print(f"{'batches of 1,000 (records/s)':32}{rps['bare']:>20,.0f}{rps['finml']:>14,.0f}{rps['finml'] / rps['bare']:>8.2f}")
    print(f"({args.single} single requests and {args.batches} batches per server and round; the finml server "
          f"ledgered {ledgered:,} records)")
    ok = p99["finml"] <= 1.5 * p99["bare"] and p99["finml"] < 30 and rps["finml"] >= 0.7 * rps["bare"]
    print(f"targets (p99 <= 1.5 x bare and < 30 ms; throughput >= 0.7 x bare): {'met' if ok else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", default="logistic", choices=["logistic", "gradient_boosting"])
    parser.add_argument("--single", type=int, default=1000, help="single-record requests per server")
    parser.add_argument("--batches", type=int, default=20, help="1,000-record requests per server and round")
    parser.add_argument("--rounds", type=int, default=3, help="measurement rounds (the best of each figure is kept)")
    parser.add_argument("--serve", choices=["bare", "finml"], help=argparse.SUPPRESS)
    parser.add_argument("--registry", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.registry, args.port)
    else:
        measure(args)


if __name__ == "__main__":
    main()
