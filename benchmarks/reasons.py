"""Benchmark: scoring credit_risk with ``--reasons 4`` against plain scoring, in one run.

Run: ``.venv/bin/python benchmarks/reasons.py [--rows 100000] [--repeats 3]``

It trains ``credit_risk`` into a temporary registry (``finml train`` in a child process, so that
this process's peak memory is the scoring's alone), builds a batch of N rows by resampling the real
credit data (new ids), writes it as Parquet, then, repetitions interleaved and the best kept:

- plain: the ``score_batch`` flow (load and hash-check the version, read, validate, build the
  table, score, write stamped predictions);
- reasons: the same flow with ``reasons=4`` (the same work, plus one prediction per feature over
  the declined rows and the ranking: ``tasks.reasons.principal_reasons``);
- and the scoring step alone against the scoring step plus the reasons, without reading,
  validation, writing or Prefect (``predict`` against ``predict + principal_reasons``).

It prints both times, their ratio (target at most 15: issue 15, Speed), the peak resident memory
of this process (``resource.getrusage``, target under 2 GB) and the peak of Python/NumPy
allocations during the reasons alone (``tracemalloc``). The figures: docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 15.0
TARGET_PEAK_MB = 2048.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions of each side (best is kept)")
    parser.add_argument("--k", type=int, default=4, help="reasons per declined row")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="finml-bench-reasons-"))
    os.environ["FINML_REGISTRY_DIR"] = str(work / "registry")
    os.environ["FINML_REPORTS_DIR"] = str(work / "reports")
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect"))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", "train", "credit_risk"],
                   cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True, stdout=subprocess.DEVNULL)
    print(f"trained credit_risk in a child process ({time.perf_counter() - started:.0f} s)")

    import numpy as np

    from flows.monitoring import score_batch
    from models.registry import ModelRegistry
    from models.settings import get_settings
    from models.spec import find_spec
    from tasks.load import load_source
    from tasks.monitor import batch_table, load_batch
    from tasks.reasons import principal_reasons

    settings = get_settings()
    spec = find_spec("credit_risk", settings.specs_dir)
    pipeline, version, meta = ModelRegistry(settings.registry_dir, "credit_risk").load_model()
    print(f"champion: credit_risk v{version} ({meta['selected_candidate']['name']}); "
          f"cut-off {meta['reasons']['cutoff']:.4f}, reference {meta['reasons']['reference']['kind']}")

    raw = load_source(spec).drop(columns=[spec.target.column])
    batch = raw.sample(n=args.rows, replace=True, random_state=0).reset_index(drop=True)
    batch["rownames"] = np.arange(1, len(batch) + 1)
    path = work / "batch.parquet"
    batch.to_parquet(path, index=False)
    frame, _ = load_batch.fn(spec, str(path))
    table = batch_table.fn(spec, frame)
    X = table[meta["features"]]

    plain, with_reasons, predict_only, predict_and_reasons = [], [], [], []
    declined = None
    for i in range(args.repeats):
        t0 = time.perf_counter()
        score_batch("credit_risk", batch=str(path), output=str(work / f"plain-{i}.parquet"))
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = score_batch("credit_risk", batch=str(path), output=str(work / f"reasons-{i}.parquet"), reasons=args.k)
        with_reasons.append(time.perf_counter() - t0)
        declined = result["reasons"]["declined_rows"]
        t0 = time.perf_counter()
        scores = pipeline.predict_proba(X)[:, 1]
        predict_only.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        scores = pipeline.predict_proba(X)[:, 1]
        principal_reasons(spec.reasons, pipeline, X, scores, meta["reasons"], args.k)
        predict_and_reasons.append(time.perf_counter() - t0)

    tracemalloc.start()
    out = principal_reasons(spec.reasons, pipeline, X, scores, meta["reasons"], args.k)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux

    p, r = min(plain), min(with_reasons)
    d, e = min(predict_only), min(predict_and_reasons)
    n = args.rows
    features = len(meta["reasons"]["features"])
    print(f"rows: {n:,}; declined: {declined:,} ({declined / n:.1%}); features varied: {features}; "
          f"k = {args.k}; repetitions: {args.repeats} (best kept)")
    print(f"score_batch flow, plain:          {p:6.2f} s  (runs {', '.join(f'{t:.2f}' for t in plain)})")
    print(f"score_batch flow, --reasons {args.k}:     {r:6.2f} s  (runs {', '.join(f'{t:.2f}' for t in with_reasons)})")
    print(f"ratio, whole flow:                {r / p:6.2f} x  (target <= {TARGET_RATIO:g} x: "
          f"{'met' if r / p <= TARGET_RATIO else 'NOT MET'})")
    print(f"predict alone:                    {d:6.2f} s;  predict + reasons: {e:.2f} s;  ratio {e / d:.2f} x "
          f"(about 1 + {features} x {declined / n:.2f} = {1 + features * declined / n:.1f} predictions' worth)")
    print(f"peak resident memory of this process: {peak_mb:,.0f} MB  (target < {TARGET_PEAK_MB:,.0f} MB: "
          f"{'met' if peak_mb < TARGET_PEAK_MB else 'NOT MET'})")
    print(f"peak Python/NumPy allocations during the reasons alone (tracemalloc): {traced_peak / 2**20:,.0f} MB")
    print(f"rows with a first reason among the declined: {int(out['reason_1'].notna().sum()):,} of {declined:,}")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
