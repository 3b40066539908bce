"""Benchmark: our drift step against Evidently's DataDriftPreset on every row.

Data (fixed seed): a reference of 100,000 rows and a current batch of 1,000,000 rows x 20
feature columns (14 numeric, three of them with missing values; 6 categorical held as
pandas ``object`` strings, two with missing values, two with categories the reference never
saw; a mild shift in a few columns), plus a model-score column.

Each measured step runs in its own fresh process (``multiprocessing``, spawn), so memory
is isolated:

(i)  our whole drift step: ``compute_drift`` on every row (20 features + the score) followed
     by ``evidently_drift_report`` on its bounded sample, HTML written to a temporary folder;
(ii) Evidently 0.7 ``DataDriftPreset()`` with default settings on every row of the same 20
     columns (``report.run`` only, no HTML).

In each process the data is generated and Evidently imported *before* the measurement (the
import, 3-4 s, is a one-off cost of a process and is printed separately). Right before the
step the kernel's RSS high-water mark is reset (``echo 5 > /proc/self/clear_refs``); after it
``VmHWM`` is read from ``/proc/self/status``. Two memory figures are printed: the process's
peak RSS during the step (VmHWM, everything resident: data, libraries, step), and the
increase of that peak over the RSS just before the step (what the step itself added).

Run: ``.venv/bin/python benchmarks/drift.py`` (about 2 minutes; Evidently on 1M rows is
most of it).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

REF_ROWS = 100_000
CUR_ROWS = 1_000_000
SEED = 20240601
NUMERIC = [f"num_{i:02d}" for i in range(14)]
CATEGORICAL = [f"cat_{i}" for i in range(6)]
TARGET_SPEEDUP = 20.0
TARGET_PEAK_GB = 1.5


def make_data():
    """Reference and current frames (features + ``score``), deterministic."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEED)

    def frame(n: int, current: bool) -> pd.DataFrame:
        cols: dict[str, object] = {}
        for i, name in enumerate(NUMERIC):
            shift = 0.15 if (current and i in (0, 1, 2)) else 0.0  # mild shift (in sd units)
            if i % 3 == 0:
                x = rng.lognormal(mean=1.0 + shift, sigma=0.6, size=n)      # amounts
            elif i % 3 == 1:
                x = rng.normal(loc=shift, scale=1.0, size=n)
            else:
                x = rng.poisson(lam=3.0 + 3 * shift, size=n).astype(float)  # counts: tied values
            if i in (3, 7, 11):  # missing values
                x[rng.random(n) < (0.08 if current and i == 3 else 0.05)] = np.nan
            cols[name] = x
        for j, name in enumerate(CATEGORICAL):
            k = 4 + 2 * j
            levels = np.array([f"{name}_L{v}" for v in range(k + (2 if current and j in (1, 4) else 0))], dtype=object)
            p = np.linspace(2.0, 1.0, len(levels))
            if current and j in (1, 4):
                p[-2:] = 0.005 * p[:-2].sum()  # unseen categories, about 0.5 % each
            if current and j == 0:
                p[0] *= 1.3  # mild shift in one category's share
            x = levels[rng.choice(len(levels), size=n, p=p / p.sum())]
            x = x.astype(str).astype(object)  # one str object per row, as when read from a file
            if j in (2, 5):
                x[rng.random(n) < 0.03] = None
            cols[name] = x
        df = pd.DataFrame(cols)
        z = df["num_01"].to_numpy() + 0.1 * np.nan_to_num(df["num_00"].to_numpy())
        df["score"] = 1.0 / (1.0 + np.exp(-(z - 1.5)))
        return df

    return frame(REF_ROWS, current=False), frame(CUR_ROWS, current=True)


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _hwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def _reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _measure(step):
    """Run ``step()`` with the high-water mark reset; (result, seconds, peak kB, rss-before kB)."""
    import gc

    gc.collect()
    _reset_hwm()
    before = _rss_kb()
    t0 = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - t0
    return result, seconds, _hwm_kb(), before


def run_ours(queue) -> None:
    warnings.simplefilter("ignore")
    from models.spec import DriftSpec
    from tasks.drift import compute_drift, evidently_drift_report

    reference, current = make_data()
    t0 = time.perf_counter()
    import evidently  # noqa: F401  (one-off import cost, measured apart)
    import evidently.presets  # noqa: F401
    import_s = time.perf_counter() - t0
    spec = DriftSpec()
    numeric = list(NUMERIC)
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "drift_report.html"
        times: dict[str, float] = {}

        def step():
            t = time.perf_counter()
            result = compute_drift(reference, current, numeric, CATEGORICAL, spec, score_column="score")
            times["psi"] = time.perf_counter() - t
            t = time.perf_counter()
            ev = evidently_drift_report(reference, current, numeric + ["score"], CATEGORICAL, spec, html, seed=0,
                                        title="benchmark")
            times["evidently_sample"] = time.perf_counter() - t
            return result, ev

        (result, ev), seconds, peak, before = _measure(step)
        html_mb = html.stat().st_size / 1e6 if html.exists() else 0.0
    queue.put({
        "seconds": seconds, "peak_kb": peak, "before_kb": before, "import_s": import_s,
        "psi_s": times["psi"], "evidently_sample_s": times["evidently_sample"], "html_mb": html_mb,
        "tested": result.tested, "drifted": result.drifted, "drifted_share": result.drifted_share,
        "dataset_drift": result.dataset_drift, "score_psi": result.score.psi, "score_status": result.score.status,
        "top": [(f.column, round(f.psi, 4), f.status) for f in result.top_features(5)],
        "statuses": {f.column: f.status for f in result.features},
        "ev_ran": ev.ran, "ev_error": ev.error, "ev_columns": len(ev.columns), "ev_skipped": ev.skipped,
        "ev_drifted": ev.drifted_count, "ev_share": ev.drifted_share,
        "ev_sample": (ev.current_sample_rows, ev.reference_sample_rows),
    })


def run_evidently_all_rows(queue) -> None:
    warnings.simplefilter("ignore")
    reference, current = make_data()
    t0 = time.perf_counter()
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    import_s = time.perf_counter() - t0
    cols = NUMERIC + CATEGORICAL
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)

    def step():
        report = Report([DataDriftPreset()])
        cur = Dataset.from_pandas(current[cols], data_definition=definition)
        ref = Dataset.from_pandas(reference[cols], data_definition=definition)
        snap = report.run(cur, ref)
        return snap.dict()

    d, seconds, peak, before = _measure(step)
    drifted = next((m["value"] for m in d["metrics"] if str(m["config"].get("type", "")).endswith(":DriftedColumnsCount")), None)
    queue.put({"seconds": seconds, "peak_kb": peak, "before_kb": before, "import_s": import_s, "drifted": drifted})


def _in_fresh_process(target):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(queue,))
    proc.start()
    result = queue.get()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"{target.__name__} exited with {proc.exitcode}")
    return result


def main() -> None:
    gb = lambda kb: kb / 1024 / 1024  # noqa: E731
    print(f"drift benchmark: reference {REF_ROWS:,} rows, current {CUR_ROWS:,} rows x {len(NUMERIC) + len(CATEGORICAL)} "
          f"columns ({len(NUMERIC)} numeric, {len(CATEGORICAL)} categorical object strings) + score; "
          f"{os.cpu_count()} CPUs; seed {SEED}")
    print("each step runs in its own fresh spawned process; data generated and evidently imported before the step")
    print("load average before: %.2f %.2f %.2f (other work on the machine slows every figure)\n" % os.getloadavg())

    ours = _in_fresh_process(run_ours)
    print("(i) our drift step = compute_drift on every row (20 features + score) + evidently_drift_report on a sample")
    print(f"    wall time of the step:           {ours['seconds']:8.2f} s")
    print(f"      of which PSI on every row:     {ours['psi_s']:8.2f} s")
    print(f"      of which Evidently on sample:  {ours['evidently_sample_s']:8.2f} s "
          f"({ours['ev_sample'][0]:,} current / {ours['ev_sample'][1]:,} reference rows, {ours['ev_columns']} columns, "
          f"HTML {ours['html_mb']:.1f} MB)")
    print(f"    evidently import (one-off per process, not in the step): {ours['import_s']:.2f} s")
    print(f"    process peak RSS during the step (VmHWM):        {gb(ours['peak_kb']):6.2f} GB")
    print(f"    RSS just before the step (data + libraries):     {gb(ours['before_kb']):6.2f} GB")
    print(f"    increase of the peak over that (step's own):     {gb(ours['peak_kb'] - ours['before_kb']):6.2f} GB")
    print(f"    PSI verdict: {ours['tested']} tested, drifted {ours['drifted']} (share {ours['drifted_share']:.2f}), "
          f"dataset drift {ours['dataset_drift']}; score PSI {ours['score_psi']:.4f} ({ours['score_status']})")
    print(f"    top PSI: {ours['top']}")
    untested = {k: v for k, v in ours["statuses"].items() if v not in ('stable', 'moderate', 'significant')}
    print(f"    not tested: {untested or 'none'}")
    print(f"    Evidently on the sample: ran {ours['ev_ran']}, error {ours['ev_error']}, drifted {ours['ev_drifted']} "
          f"(share {ours['ev_share']}), skipped {ours['ev_skipped'] or 'none'}\n")

    ev = _in_fresh_process(run_evidently_all_rows)
    print("(ii) Evidently DataDriftPreset() defaults on every row, same 20 columns (report.run only, no HTML)")
    print(f"    wall time of the step:           {ev['seconds']:8.2f} s")
    print(f"    evidently import (one-off per process, not in the step): {ev['import_s']:.2f} s")
    print(f"    process peak RSS during the step (VmHWM):        {gb(ev['peak_kb']):6.2f} GB")
    print(f"    RSS just before the step (data + libraries):     {gb(ev['before_kb']):6.2f} GB")
    print(f"    increase of the peak over that (step's own):     {gb(ev['peak_kb'] - ev['before_kb']):6.2f} GB")
    print(f"    Evidently verdict: {ev['drifted']}\n")

    ratio = ev["seconds"] / ours["seconds"]
    ratio_psi = ev["seconds"] / ours["psi_s"]
    print(f"speed ratio Evidently-all-rows / our whole step: {ratio:6.1f}x   (target >= {TARGET_SPEEDUP:.0f}x: "
          f"{'MET' if ratio >= TARGET_SPEEDUP else 'NOT MET'})")
    print(f"speed ratio Evidently-all-rows / our PSI only:   {ratio_psi:6.1f}x")
    print(f"speed ratio including each process's evidently import: "
          f"{(ev['seconds'] + ev['import_s']) / (ours['seconds'] + ours['import_s']):6.1f}x")
    print("load average after:  %.2f %.2f %.2f" % os.getloadavg())
    print(f"our process peak RSS during the step: {gb(ours['peak_kb']):.2f} GB   (target < {TARGET_PEAK_GB} GB: "
          f"{'MET' if gb(ours['peak_kb']) < TARGET_PEAK_GB else 'NOT MET'}); the step's own increase "
          f"{gb(ours['peak_kb'] - ours['before_kb']):.2f} GB")


if __name__ == "__main__":
    main()
