"""Benchmark: wall time of ``train_all`` on the built-in models, sequential against parallel threads.

Run: ``.venv/bin/python benchmarks/parallel.py [--models a b ...] [--repeats 1]`` (``make benchmark-parallel``)

Each configuration runs in a fresh Python process with its own empty registry and Prefect home
(embedded API): ``FINML_TASK_RUNNER=sequential`` (one thread: models one after the other, and the
candidates of each model one after the other) and ``FINML_TASK_RUNNER=threads`` (a pool of one
thread per core, for the models of ``train_all`` and for the candidates inside each model).
Inside the process a trivial flow runs first so that the embedded API's start-up (6–11 s) is not
counted; then ``train_all`` is timed from the call to its return. The process's total time is
printed too. With ``--repeats N`` the two configurations alternate and the best of each is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = """
import json, os, sys, time
from prefect import flow

@flow
def warm_up():
    return 1

warm_up()  # start the embedded API before the clock starts
from flows.runners import make_task_runner
from flows.training import train_all
models = json.loads(sys.argv[1]) or None
t0 = time.perf_counter()
rows = train_all.with_options(task_runner=make_task_runner())(reason="benchmark", models=models)  # as `finml train`
seconds = time.perf_counter() - t0
print("RESULT " + json.dumps({"seconds": seconds, "rows": [
    {"model": r["model"], "gate": r["gate"], "version": r["version"]} for r in rows]}))
"""


def run_once(runner: str, models: list[str], workers: int | None) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"finml-bench-parallel-{runner}-"))
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "FINML_DASK_ADDRESS")}
    env.update({
        "FINML_TASK_RUNNER": runner, "FINML_REGISTRY_DIR": str(work / "registry"),
        "FINML_REPORTS_DIR": str(work / "reports"), "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "GX_ANALYTICS_ENABLED": "False", "TF_CPP_MIN_LOG_LEVEL": "3",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    })
    if workers:
        env["FINML_MAX_WORKERS"] = str(workers)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(models)], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    total = time.perf_counter() - t0
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"{runner} run failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result = json.loads(line[len("RESULT "):])
    result["process_seconds"] = total
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=[], help="models to train (default: every built-in spec)")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs of each configuration; best kept")
    parser.add_argument("--workers", type=int, default=None, help="threads of the parallel run (default: one per core)")
    args = parser.parse_args()

    from models.settings import get_settings
    from models.spec import list_specs

    models = args.models or [s.name for s in list_specs(get_settings().specs_dir)]
    cores = os.cpu_count() or 1
    print(f"train_all on {len(models)} models ({', '.join(models)}); {cores} cores; "
          f"parallel = {args.workers or cores} threads")
    best: dict[str, dict] = {}
    for i in range(args.repeats):
        for runner in ("sequential", "threads"):
            r = run_once(runner, models, args.workers)
            print(f"  run {i + 1} {runner:<10} train_all {r['seconds']:7.1f} s   (process {r['process_seconds']:6.1f} s)  "
                  + ", ".join(f"{x['model']}:{x['gate']}" for x in r["rows"]), flush=True)
            if runner not in best or r["seconds"] < best[runner]["seconds"]:
                best[runner] = r
    seq, par = best["sequential"]["seconds"], best["threads"]["seconds"]
    print()
    print("| configuration | train_all wall time (s) | whole process (s) |")
    print("|---|---|---|")
    print(f"| sequential (FINML_TASK_RUNNER=sequential) | {seq:.1f} | {best['sequential']['process_seconds']:.1f} |")
    print(f"| parallel threads (FINML_TASK_RUNNER=threads) | {par:.1f} | {best['threads']['process_seconds']:.1f} |")
    print(f"\nspeed-up: {seq / par:.2f}x on {cores} cores")


if __name__ == "__main__":
    main()
