"""Benchmark: ``finml serve`` against a bare FastAPI endpoint calling the same pipeline's ``predict_proba``.

Run: ``.venv/bin/python benchmarks/serving.py [--candidate logistic] [--single 1000] [--batches 20]
[--mlflow-python PATH]``

It trains ``credit_risk`` with one scikit-learn candidate into a temporary registry (in-process, the
training steps without Prefect: ``tests/serving_registry.py``), then starts two servers (three with the
mlflow peer), each a uvicorn process of its own (one worker, access log off in each):

- ``finml``: the app of ``flows/serve.py`` (``create_app``) as ``finml serve`` runs it: the request
  schema, the champion check, the batch path (parse, table, score), points, grade, the ledger buffer;
- ``bare``: the floor, a FastAPI route that reads the JSON body, builds a DataFrame and returns
  ``pipeline.predict_proba(frame[features])[:, 1]`` of the same pipeline (loaded hash-checked from the
  same registry), nothing else;
- ``mlflow`` (the peer, only with ``--mlflow-python PATH`` or ``$FINML_BENCH_MLFLOW_PYTHON``: a Python
  of a separate environment with mlflow, which the project never installs; without one the peer is
  skipped with a printed line): ``mlflow models serve --env-manager local --workers 1`` of the same
  pipeline saved in MLflow's format with ``pyfunc_predict_fn="predict_proba"`` (mlflow 3.x: a FastAPI
  app under uvicorn), sent ``{"dataframe_records": [...]}`` of the same records
  (``benchmarks/serving_mlflow.py``). After the warm-up its probabilities of the first batch must
  equal the bare endpoint's to 1e-12.

One client (httpx, keep-alive) in this process then measures, alternating between the servers in
blocks of 20 requests so that all see the same machine load, in ``--rounds`` rounds (the best
round's figure of each server is kept: this VM's timings of the same call vary by a factor of two):

- latency of one applicant: ``--single`` sequential requests of one record (after a warm-up), p50
  and p99 of the time from send to parsed answer;
- throughput: ``--batches`` sequential requests of 1,000 records each, records per second (median
  of the per-request rates).

Targets (issue 17): p99 of one applicant at most 1.5 × the bare endpoint's and under 30 ms on a quiet
machine; throughput at least 0.7 × the bare endpoint's (the mlflow peer is printed with its own
ratios to the bare endpoint, and no target). It prints the figures with the load average;
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

from benchmarks import serving_mlflow  # noqa: E402


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

    mlflow_python, why = serving_mlflow.interpreter(args.mlflow_python)
    if mlflow_python is None:
        print(f"mlflow serve peer skipped: {why}")
    work = Path(tempfile.mkdtemp(prefix="finml-bench-serving-"))
    registry = work / "registry"
    t0 = time.perf_counter()
    version = train_version(credit_spec(args.candidate), registry, work / "reports")
    print(f"trained credit_risk v{version} ({args.candidate}) in {time.perf_counter() - t0:.1f} s; registry {registry}")
    single_records, batch_records = _records(args.single + 200, seed=1), _records(1000, seed=2)
    kinds = ["bare", "finml"] + (["mlflow"] if mlflow_python else [])
    paths = {"bare": "/score", "finml": "/v1/models/credit_risk/score", "mlflow": serving_mlflow.PATH}
    singles = {k: [json.dumps(r).encode() for r in single_records] for k in ("bare", "finml")}
    batch = {k: json.dumps(batch_records).encode() for k in ("bare", "finml")}
    if mlflow_python:
        mlflow_model, mlflow_versions = serving_mlflow.prepare(mlflow_python, ROOT, registry,
                                                               single_records + batch_records, work / "mlflow")
        singles["mlflow"] = [serving_mlflow.body([r]) for r in single_records]
        batch["mlflow"] = serving_mlflow.body(batch_records)
    servers = {kind: _start(kind, registry) for kind in ("bare", "finml")}
    headers = {"content-type": "application/json"}
    rounds: list[dict[str, dict[str, float]]] = []
    try:
        if mlflow_python:
            servers["mlflow"] = serving_mlflow.start(mlflow_python, ROOT, mlflow_model, _free_port())
        clients = {k: httpx.Client(base_url=url, timeout=60) for k, (_, url) in servers.items()}
        for kind, client in clients.items():  # warm-up (first-request costs, caches)
            for body in singles[kind][:100]:
                assert client.post(paths[kind], content=body, headers=headers).status_code == 200
            assert client.post(paths[kind], content=batch[kind], headers=headers).status_code == 200
        if mlflow_python:  # the same probabilities from both, once
            bare = clients["bare"].post(paths["bare"], content=batch["bare"], headers=headers).json()["scores"]
            peer = serving_mlflow.scores(clients["mlflow"].post(paths["mlflow"], content=batch["mlflow"],
                                                                headers=headers).json())
            gap = float(np.max(np.abs(np.asarray(peer) - np.asarray(bare))))
            assert len(peer) == len(bare) == 1000 and gap <= 1e-12, f"mlflow and bare scores differ by {gap}"
            print(f"mlflow serve answers the bare endpoint's probabilities (1,000 records, largest gap {gap:.1e})")
        for _ in range(args.rounds):
            latency: dict[str, list[float]] = {k: [] for k in kinds}
            rates: dict[str, list[float]] = {k: [] for k in kinds}
            block = 20
            for start in range(100, 100 + args.single, block):
                shift = start // block % len(kinds)
                for kind in kinds[shift:] + kinds[:shift]:
                    for body in singles[kind][start:start + block]:
                        t = time.perf_counter()
                        r = clients[kind].post(paths[kind], content=body, headers=headers)
                        r.json()
                        latency[kind].append(time.perf_counter() - t)
                        assert r.status_code == 200, r.text
            for i in range(args.batches):
                for kind in kinds[i % len(kinds):] + kinds[:i % len(kinds)]:
                    t = time.perf_counter()
                    r = clients[kind].post(paths[kind], content=batch[kind], headers=headers)
                    answered = r.json()
                    rates[kind].append(1000 / (time.perf_counter() - t))
                    assert r.status_code == 200
                    assert len(answered.get("results", answered.get("scores", answered.get("predictions")))) == 1000
            rounds.append({k: {"p50": _percentile(latency[k], 50) * 1000, "p99": _percentile(latency[k], 99) * 1000,
                               "rps": float(np.median(rates[k]))} for k in kinds})
        for client in clients.values():
            client.close()
    finally:
        for kind, (proc, _) in servers.items():
            if kind != "mlflow":
                proc.terminate()
        for kind, (proc, _) in servers.items():
            if kind == "mlflow":
                serving_mlflow.stop(proc)
            else:
                proc.wait(timeout=60)
    from models.ledger import read_ledger

    ledgered = len(read_ledger(registry, "credit_risk"))
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} on {os.cpu_count()} cores")
    def row(r: dict, m: str, fmt: str) -> str:
        return " / ".join(format(r[k][m], fmt) for k in kinds)

    for i, r in enumerate(rounds, 1):
        print(f"  round {i}: p50 {row(r, 'p50', '.2f')} ms, p99 {row(r, 'p99', '.2f')} ms, "
              f"{row(r, 'rps', ',.0f')} records/s ({' / '.join(kinds)})")
    best = {k: {"p50": min(r[k]["p50"] for r in rounds), "p99": min(r[k]["p99"] for r in rounds),
                "rps": max(r[k]["rps"] for r in rounds)} for k in kinds}
    p50, p99, rps = ({k: best[k][m] for k in best} for m in ("p50", "p99", "rps"))
    print(f"best of {len(rounds)} rounds:")
    peer = f"{'mlflow serve':>14}{'ratio':>8}" if mlflow_python else ""
    print(f"{'':32}{'bare predict_proba':>20}{'finml serve':>14}{'ratio':>8}{peer}")
    for label, m, fmt in (("one applicant, p50 (ms)", p50, ".2f"), ("one applicant, p99 (ms)", p99, ".2f"),
                          ("batches of 1,000 (records/s)", rps, ",.0f")):
        peer = f"{m['mlflow']:>14{fmt}}{m['mlflow'] / m['bare']:>8.2f}" if mlflow_python else ""
        print(f"{label:32}{m['bare']:>20{fmt}}{m['finml']:>14{fmt}}{m['finml'] / m['bare']:>8.2f}{peer}")
    print(f"({args.single} single requests and {args.batches} batches per server and round; the finml server "
          f"ledgered {ledgered:,} records)")
    if mlflow_python:
        v = mlflow_versions
        print(f"mlflow serve: mlflow {v['mlflow']} models serve (--env-manager local, 1 worker), a FastAPI {v['fastapi']} "
              f"app under uvicorn {v['uvicorn']}; pyfunc {v['predict_fn']} of the same pipeline (pickle, scikit-learn "
              f"{v['scikit-learn']}, signature enforced); interpreter {mlflow_python}")
    ok = p99["finml"] <= 1.5 * p99["bare"] and p99["finml"] < 30 and rps["finml"] >= 0.7 * rps["bare"]
    print(f"targets (p99 <= 1.5 x bare and < 30 ms; throughput >= 0.7 x bare): {'met' if ok else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", default="logistic", choices=["logistic", "gradient_boosting"])
    parser.add_argument("--single", type=int, default=1000, help="single-record requests per server")
    parser.add_argument("--batches", type=int, default=20, help="1,000-record requests per server and round")
    parser.add_argument("--rounds", type=int, default=3, help="measurement rounds (the best of each figure is kept)")
    parser.add_argument("--mlflow-python", default=None, metavar="PATH",
                        help="a Python with mlflow (never the project's environment) to add `mlflow models serve` as a "
                             f"peer (default: ${serving_mlflow.ENV_VAR}; neither: the peer is skipped)")
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
