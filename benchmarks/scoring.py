"""Benchmark: rows per second of the ``score_batch`` flow against the champion's ``predict_proba``.

Run: ``.venv/bin/python benchmarks/scoring.py [--rows 1000000]``

It trains ``credit_risk`` into a temporary registry (through Prefect, embedded API), builds a
batch of N rows by resampling the real credit data (new ids), writes it as Parquet, then:

- direct: ``pipeline.predict_proba(frame[features])`` on the in-memory frame (the champion
  pipeline as loaded from the registry: preprocessing + estimator);
- ``score_batch``: the whole flow — read the Parquet file, validate it with the serving
  suite, build the table, load and hash-check the version, score, and write stamped
  predictions to Parquet — timed from the call to its return.

It prints both rates and their ratio (target: at least 0.8), and the flow's phases.
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
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions of each side (best is kept)")
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

    direct = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        pipeline.predict_proba(batch[features])
        direct.append(time.perf_counter() - started)

    flow_times = []
    for i in range(args.repeats):
        out = work / f"scores-{i}.parquet"
        started = time.perf_counter()
        result = score_batch("credit_risk", batch=str(path), output=str(out))
        flow_times.append(time.perf_counter() - started)
        assert result["rows"] == args.rows

    d, f = min(direct), min(flow_times)
    print(f"rows: {args.rows:,}")
    print(f"direct predict_proba: {d:.2f} s  -> {args.rows / d:,.0f} rows/s   (runs: {', '.join(f'{t:.2f}' for t in direct)})")
    print(f"score_batch flow:     {f:.2f} s  -> {args.rows / f:,.0f} rows/s   (runs: {', '.join(f'{t:.2f}' for t in flow_times)})")
    ratio = d / f
    print(f"ratio score_batch / direct rate: {ratio:.2f}  (target >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'})")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
