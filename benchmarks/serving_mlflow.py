"""The ``mlflow models serve`` peer of ``benchmarks/serving.py``, run from a separate interpreter.

mlflow is never installed into the project's environment (nor listed in its dependencies): the
peer runs only when ``--mlflow-python PATH`` (or ``FINML_BENCH_MLFLOW_PYTHON``) names a Python
interpreter that has mlflow and the project's scikit-learn, pandas and numpy versions. That
interpreter, with ``PYTHONPATH`` = the project root (the pickle refers to ``models.estimators``):

1. saves the champion's pipeline in MLflow's format: the same hash-checked bytes the bare server
   loads (``ModelRegistry.load_verified``), unpickled under ``models.compat.library_guard`` in that
   interpreter, written by ``mlflow.sklearn.save_model`` with ``serialization_format="pickle"``
   (mlflow's default, skops, refuses the finml classes without a list of trusted types),
   ``pyfunc_predict_fn="predict_proba"`` (so that the answers are probabilities; older mlflow
   versions without it answer labels, and the score check in ``serving.py`` then fails) and a
   signature inferred from the benchmark's records (so that mlflow keeps the feature columns, as
   the bare endpoint's ``frame[features]`` does, and enforces their types);
2. runs ``mlflow models serve -m <dir> --env-manager local --workers 1`` on 127.0.0.1 (mlflow 3.x
   execs ``uvicorn`` from ``PATH``: the interpreter's folder is put first; access log off and log
   level ``warning`` through ``UVICORN_*`` variables, as in the two other servers; mlflow's own
   log at ERROR, else it writes a warning per request about the record id, a column the
   signature does not have and mlflow drops).

Requests: ``POST /invocations`` with ``{"dataframe_records": [...]}``; answer
``{"predictions": [[p0, p1], ...]}``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ENV_VAR = "FINML_BENCH_MLFLOW_PYTHON"
PATH = "/invocations"

_SAVE = r"""
import inspect, json, sys
from importlib.metadata import version
from pathlib import Path

import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature

from models.compat import library_guard
from models.estimators import PIPELINE_FILE, load_pipeline_bytes

job = json.loads(Path(sys.argv[1]).read_text())
with library_guard("credit_risk", job["version"], job["metadata"]):
    pipeline = load_pipeline_bytes({PIPELINE_FILE: Path(job["pipeline"]).read_bytes()})
frame = pd.DataFrame.from_records(job["records"])[job["features"]]
extra = {}
if "pyfunc_predict_fn" in inspect.signature(mlflow.sklearn.save_model).parameters:
    extra["pyfunc_predict_fn"] = "predict_proba"
libraries = ("mlflow", "scikit-learn", "pandas", "numpy")
mlflow.sklearn.save_model(pipeline, job["out"], serialization_format="pickle",
                          signature=infer_signature(frame, pipeline.predict_proba(frame)),
                          pip_requirements=[f"{name}=={version(name)}" for name in libraries], **extra)
found = {name: version(name) for name in libraries + ("uvicorn", "fastapi")}
print(json.dumps({**found, "predict_fn": extra.get("pyfunc_predict_fn", "predict")}))
"""


def interpreter(given: str | None) -> tuple[str | None, str]:
    """The mlflow interpreter to use: ``given`` (``--mlflow-python``), else ``$FINML_BENCH_MLFLOW_PYTHON``;
    returns ``(path or None, why none)``."""
    path = given or os.environ.get(ENV_VAR) or None
    if path is None:
        return None, f"no --mlflow-python PATH and no {ENV_VAR}: mlflow is not in the project's environment"
    return path, ""


def body(records: list[dict]) -> bytes:
    """The ``/invocations`` request body of ``records`` (JSON records of one request)."""
    return json.dumps({"dataframe_records": records}).encode()


def scores(answer: dict) -> list[float]:
    """P(positive) per record from an ``/invocations`` answer (``predict_proba``'s second column)."""
    return [row[1] for row in answer["predictions"]]


def prepare(python: str, root: Path, registry: Path, records: list[dict], work: Path) -> tuple[Path, dict]:
    """Save the champion of ``registry``'s credit_risk in MLflow's format with ``python``.

    Args:
        records: the benchmark's JSON records (the signature's column types are inferred from them).
    Returns:
        ``(model folder, versions)``: ``versions`` maps mlflow, scikit-learn, pandas, numpy, uvicorn and
        fastapi to the versions in ``python``'s environment, and ``predict_fn`` to the pyfunc method.
    Raises:
        SystemExit: the interpreter cannot save the model (its output is printed).
    """
    from models.estimators import PIPELINE_FILE
    from models.registry import ModelRegistry

    pipeline, verified = ModelRegistry(registry, "credit_risk").load_verified()
    features = list(verified.metadata["features"])
    work.mkdir(parents=True, exist_ok=True)
    checked = work / PIPELINE_FILE
    checked.write_bytes(verified.files[f"model/{PIPELINE_FILE}"])
    job = work / "job.json"
    job.write_text(json.dumps({"version": verified.version, "metadata": verified.metadata, "pipeline": str(checked),
                               "features": features, "records": records, "out": str(work / "model")}))
    done = subprocess.run([python, "-c", _SAVE, str(job)], cwd=work, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)})
    if done.returncode != 0:
        raise SystemExit(f"{python} could not save the pipeline in MLflow's format:\n{done.stderr[-3000:]}")
    return work / "model", json.loads(done.stdout.strip().splitlines()[-1])


def start(python: str, root: Path, model: Path, port: int) -> tuple[subprocess.Popen, str]:
    """Start ``mlflow models serve`` of ``model`` on 127.0.0.1:``port`` (own process group, output in
    ``serve.log`` next to the model folder) and wait (up to 120 s) until ``/ping`` answers."""
    import httpx

    env = {**os.environ, "PYTHONPATH": str(root), "PATH": f"{Path(python).parent}{os.pathsep}{os.environ['PATH']}",
           "UVICORN_ACCESS_LOG": "false", "UVICORN_LOG_LEVEL": "warning", "MLFLOW_LOGGING_LEVEL": "ERROR"}
    log = (model.parent / "serve.log").open("wb")
    proc = subprocess.Popen([python, "-m", "mlflow", "models", "serve", "-m", str(model), "--env-manager", "local",
                             "--workers", "1", "-h", "127.0.0.1", "-p", str(port)],
                            cwd=model.parent, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/ping", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop(proc)
    tail = (model.parent / "serve.log").read_text(errors="replace")[-3000:]
    raise SystemExit(f"mlflow models serve did not start:\n{tail}")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (the mlflow command and the uvicorn it runs), then wait."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        print("mlflow models serve did not stop in 60 s: killed", file=sys.stderr)
