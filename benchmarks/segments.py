"""Benchmark: the segment table (``tasks.segments.measure_segments``) against the whole-batch drift
step it repeats per segment (``tasks.drift.compute_drift``).

Data (fixed seed): a reference of 100,000 rows and a batch of 200,000 rows x 12 features
(8 numeric, 4 categorical), a score and a 0/1 outcome; segments: a categorical feature of 4
values and missing ones, a protected age in 4 fairness bands and a numeric feature in 3 bands
(12 segments). Prints the wall time of each (best of 3) and their ratio.

Run: ``.venv/bin/python benchmarks/segments.py`` (a few seconds).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NUMERIC = [f"x{i}" for i in range(8)]
CATEGORICAL = ["region", "c1", "c2", "c3"]


def _spec():
    from models.spec import parse_spec

    columns = {"account": {"role": "id", "dtype": "integer"}, "age": {"role": "protected", "dtype": "integer"}}
    columns |= {c: {"role": "numeric"} for c in NUMERIC}
    columns |= {c: {"role": "categorical", "max_null_share": 0.1} for c in CATEGORICAL}
    return parse_spec({
        "name": "bench", "task": "binary_classification", "description": "d", "intended_use": "benchmark",
        "limitations": ["synthetic"], "source": {"kind": "file", "path": "x.csv"}, "columns": columns,
        "target": {"column": "y", "positive": 1}, "table": {"min_rows": 1}, "split": {"method": "stratified_holdout"},
        "candidates": [{"name": "lr", "estimator": "logistic_regression"}],
        "gate": {"primary_metric": "roc_auc", "rules": [{"kind": "threshold", "metric": "roc_auc", "min": 0.6}]},
        "fairness": {"bands": {"age": [25, 40, 60]}},
        "segments": ["region", "age", {"column": "x0", "bands": [-0.5, 0.5]}],
    })


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = {c: rng.standard_normal(n) for c in NUMERIC}
    out["region"] = rng.choice(np.array(["n", "s", "e", "w", None], dtype=object), n, p=[0.4, 0.3, 0.2, 0.09, 0.01])
    for c in CATEGORICAL[1:]:
        out[c] = rng.choice(np.array(list("abcdef"), dtype=object), n)
    out["age"] = rng.integers(18, 90, n)
    out["score"] = rng.uniform(0, 1, n)
    out["y"] = (rng.random(n) < out["score"]).astype(float)
    return pd.DataFrame(out)


def _best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    from tasks.drift import compute_drift
    from tasks.segments import measure_segments

    spec = _spec()
    reference, current = _frame(100_000, 1), _frame(200_000, 2)
    rows = measure_segments(spec, current, reference, outcome_column="y")
    whole = _best(lambda: compute_drift(reference, current, NUMERIC, CATEGORICAL, spec.drift, score_column="score"))
    table = _best(lambda: measure_segments(spec, current, reference, outcome_column="y"))
    print(f"reference {len(reference):,} rows, batch {len(current):,} rows, {len(NUMERIC) + len(CATEGORICAL)} features, "
          f"{len(rows)} segments")
    print(f"whole-batch drift (compute_drift): {whole:.2f} s")
    print(f"segment table (measure_segments, PSI + outcome figures): {table:.2f} s ({table / whole:.1f}x the whole-batch "
          "drift step)")


if __name__ == "__main__":
    main()
