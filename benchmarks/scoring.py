"""Benchmark: rows per second of the ``score_batch`` flow against the champion's ``predict_proba``.

Run: ``.venv/bin/python benchmarks/scoring.py [--rows 1000000]``

It trains ``credit_risk`` into a temporary registry (through Prefect, embedded API), builds a
batch of N rows by resampling the real credit data (new ids), writes it as Parquet, then:

- direct: ``pipeline.predict_proba(frame[features])`` on the batch as read from the Parquet
  file (the same rows and objects the flow scores), with the champion pipeline as loaded
  from the registry (preprocessing + estimator);
- ``score_batch``: the whole flow — load and hash-check the version, read the Parquet file,
  validate it with the serving suite, build the table, score, and write stamped predictions
  to Parquet — timed from the call to its return.
  Against the embedded API by default; with ``PREFECT_API_URL`` set, against that server.

- the same steps as plain functions, without Prefect (load and hash-check the model, read,
  validate, table, score, write), each timed, to separate the work from the orchestration
  cost; and Prefect's own floor: a flow of the same shape (three tasks) doing nothing.

It prints the rates, each one's share of the direct rate, and the ceiling that Prefect's floor
alone leaves for that share. Repetitions are interleaved and the best of each is kept (this VM's
timings of the same call vary by a factor of two). The method and the latest figures:
docs/performance.md (scoring).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions of each side (best is kept)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="finml-bench-scoring-"))
    os.environ["FINML_REGISTRY_DIR"] = str(work / "registry")
    os.environ["FINML_REPORTS_DIR"] = str(work / "reports")
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect"))

    import numpy as np

    from flows.monitoring import score_batch
    from flows.training import train_model
    from models.registry import ModelRegistry
    from models.settings import get_settings
    from models.spec import find_spec
    from tasks.load import load_source

    settings = get_settings()
    spec = find_spec("credit_risk", settings.specs_dir)
    summary = train_model("credit_risk", reason="benchmark")
    pipeline, version, meta = ModelRegistry(settings.registry_dir, "credit_risk").load_model()
    print(f"champion: credit_risk v{version} ({summary['best_candidate']})")

    raw = load_source(spec).drop(columns=[spec.target.column])
    batch = raw.sample(n=args.rows, replace=True, random_state=0).reset_index(drop=True)
    batch["rownames"] = np.arange(1, len(batch) + 1)
    path = work / "batch.parquet"
    batch.to_parquet(path, index=False)
    features = meta["features"]
    import pandas as pd

    batch = pd.read_parquet(path)  # score what the flow scores: strings as read from the file

    from models.registry import now_utc
    from tasks.monitor import batch_table, load_batch
    from tasks.scoring import (
        LoadedVersion,
        predictions_frame,
        score_with_version,
        write_predictions,
    )
    from tasks.validate import validate_frame

    loaded = LoadedVersion(pipeline, version, meta, reference=pd.DataFrame())

    registry = ModelRegistry(settings.registry_dir, "credit_risk")

    def plain_steps(i: int) -> dict[str, float]:
        t = {}
        t0 = time.perf_counter()
        registry.load_model()  # hash check of every file, then unpickle + Keras load, as the flow does
        t["load model"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        frame, _ = load_batch.fn(spec, str(path))
        t["read"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert validate_frame(frame, spec, serving=True, engine="fast").success
        t["validate"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        table = batch_table.fn(spec, frame)
        t["table"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        scores = score_with_version.fn(spec, loaded, table)
        t["score"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        write_predictions.fn(predictions_frame(spec, table, scores, version, now_utc()), work / f"plain-{i}.parquet")
        t["write"] = time.perf_counter() - t0
        t["total"] = sum(t.values())
        return t

    from prefect import flow, task

    @task
    def nothing(x: int) -> int:
        return x

    @flow
    def empty_flow() -> int:  # score_batch's shape (three tasks), no work
        return nothing(nothing(nothing(0)))

    direct, flow_times, plain, floor = [], [], [], []
    for i in range(args.repeats):
        started = time.perf_counter()
        empty_flow()
        floor.append(time.perf_counter() - started)
        started = time.perf_counter()
        pipeline.predict_proba(batch[features])
        direct.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = score_batch("credit_risk", batch=str(path), output=str(work / f"scores-{i}.parquet"))
        flow_times.append(time.perf_counter() - started)
        assert result["rows"] == args.rows
        plain.append(plain_steps(i))

    d, f = min(direct), min(flow_times)
    best_plain = min(plain, key=lambda t: t["total"])
    n = args.rows
    print(f"rows: {n:,}; repetitions: {args.repeats} (best kept)")
    print(f"direct predict_proba:            {d:6.2f} s -> {n / d:>11,.0f} rows/s  (runs {', '.join(f'{t:.2f}' for t in direct)})")
    print(f"score_batch flow (Prefect):      {f:6.2f} s -> {n / f:>11,.0f} rows/s  (runs {', '.join(f'{t:.2f}' for t in flow_times)})")
    print(f"Prefect's floor: a flow of three no-op tasks: {min(floor):.2f} s  "
          f"(runs {', '.join(f'{t:.2f}' for t in floor)})")
    print(f"same steps without Prefect:      {best_plain['total']:6.2f} s -> {n / best_plain['total']:>11,.0f} rows/s  "
          + "(" + ", ".join(f"{k} {v:.2f}" for k, v in best_plain.items() if k != "total") + ")")
    for label, seconds in (("score_batch flow", f), ("steps without Prefect", best_plain["total"])):
        ratio = d / seconds
        print(f"share of the direct rate, {label}: {ratio:.2f}")
    ceiling = d / (d + min(floor))
    print(f"ceiling: the prediction alone plus Prefect's floor (no read, validation or write) would give about "
          f"{d:.2f} / ({d:.2f} + {min(floor):.2f}) = {ceiling:.2f} of the direct rate")
    print("note: Prefect 3.9's sync flow engine joins the flow-run heartbeat thread at exit, which sleeps in 1 s")
    print("      steps: a flow run ends on the next whole second after its work (an async flow would not wait, but")
    print("      a forgotten asyncio.run makes it a silent no-op; see docs/performance.md, scoring).")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
