"""Benchmark: the estimate from the scores alone (models/performance_estimate.py): its time, the
coverage of its bootstrap band on calibrated data, and the downturn and concept drift it misses.

Run: ``.venv/bin/python benchmarks/performance_estimate.py [--rows 100000] [--simulations 1000]``

It prints:

- the time of ``expected_auc_if_calibrated`` and of ``estimate_performance`` (200 draws) on N
  calibrated PDs (best of three);
- the coverage of the 95 % band: in how many of S simulations (500 rows, PDs of a calibrated
  logistic model ``sigmoid(-2 + x)``, ``x ~ N(0, 1)``, outcomes drawn from those PDs) the realised
  AUC and event rate fall inside the band made from the PDs alone;
- the simulated downturn (5,000 rows, outcomes drawn at logit + 1) and concept drift (outcomes
  independent of the score): the estimate against what is realised.

The figures: docs/backtesting.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.backtest_statistics import jeffreys_test  # noqa: E402
from models.performance_estimate import estimate_performance, expected_auc_if_calibrated  # noqa: E402
from models.statistics import rank_auc  # noqa: E402


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def best_of_three(fn) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--simulations", type=int, default=1000)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    p = sigmoid(-2.0 + rng.normal(size=args.rows))
    print(f"{args.rows:,} rows: expected AUC {best_of_three(lambda: expected_auc_if_calibrated(p)):.3f} s, "
          f"estimate with 200 draws {best_of_three(lambda: estimate_performance(p)):.2f} s")

    rng = np.random.default_rng(11)
    auc_in = rate_in = 0
    for r in range(args.simulations):
        q = sigmoid(-2.0 + rng.normal(size=500))
        y = (rng.random(500) < q).astype(int)
        est = estimate_performance(q, seed=r)
        auc_in += est.auc_low <= rank_auc(y, q) <= est.auc_high
        rate_in += est.event_rate_low <= y.mean() <= est.event_rate_high
    print(f"coverage of the 95 % band, {args.simulations} calibrated simulations of 500 rows: "
          f"AUC {auc_in / args.simulations:.1%}, event rate {rate_in / args.simulations:.1%}")

    n = 5000
    q = sigmoid(-2.0 + np.random.default_rng(16).normal(size=n))
    rng = np.random.default_rng(17)
    y_cal = (rng.random(n) < q).astype(int)
    y_down = (rng.random(n) < sigmoid(np.log(q / (1 - q)) + 1.0)).astype(int)
    y_drift = (rng.random(n) < q.mean()).astype(int)
    est = estimate_performance(q, seed=18)
    print(f"estimate on {n:,} rows: event rate {est.expected_event_rate:.3f} "
          f"[{est.event_rate_low:.3f}, {est.event_rate_high:.3f}], AUC {est.expected_auc:.3f} "
          f"[{est.auc_low:.3f}, {est.auc_high:.3f}]")
    for name, y in (("calibrated", y_cal), ("downturn (logit + 1)", y_down), ("concept drift", y_drift)):
        jeffreys = jeffreys_test(int(y.sum()), n, est.expected_event_rate)
        print(f"  realised, {name}: event rate {y.mean():.3f}, AUC {rank_auc(y, q):.3f}, "
              f"Jeffreys p at the mean PD {jeffreys:.2g}")


if __name__ == "__main__":
    main()
