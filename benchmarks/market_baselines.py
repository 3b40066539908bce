"""Benchmark: market_forecast's training with the volatility baselines (issue 19: EWMA, GARCH, GJR,
HAR, log-HAR fitted in every walk-forward fold) against training with persistence only.

On the built-in S&P 500 data (development rows 1950-2015, five walk-forward folds), without Prefect:
the modelling table is built for each spec, every candidate is fitted once through the folds and on
all development rows (``tasks.train.fit_candidate``; the candidates do not depend on the baselines,
so their fits serve both), then ``tasks.evaluate.evaluate_fitted`` runs once with the built-in spec
(all six baselines, the forecast comparison with its Diebold-Mariano intervals) and once with the
same spec declaring ``baselines: [persistence]`` (today's behaviour). Training time = table +
candidates + evaluation. The flow's fixed costs (loading, validation, Prefect, the registry) come
on top of both and would only shrink the ratio.

Run: ``.venv/bin/python benchmarks/market_baselines.py`` (``--no-keras`` skips the Keras candidate,
the slowest; a few minutes on two cores with it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-keras", action="store_true", help="leave the Keras candidate out")
    args = parser.parse_args()

    from models.spec import ModelSpec, find_spec
    from tasks.evaluate import evaluate_fitted
    from tasks.load import load_source, modelling_table, parse_declared_types, split_out_of_time
    from tasks.split import walk_forward
    from tasks.train import fit_candidate

    spec = find_spec("market_forecast", ROOT / "models" / "specs")
    data = spec.model_dump(mode="json")
    data["features_from"]["params"]["baselines"] = ["persistence"]
    data["features_from"]["params"].pop("garch_innovations", None)
    plain = ModelSpec.model_validate(data)
    development, _ = split_out_of_time(parse_declared_types(load_source(spec), spec), spec)
    candidates = [c for c in spec.candidates if not (args.no_keras and c.estimator == "keras_mlp")]

    figures = {}
    for label, s in (("with baselines", spec), ("persistence only", plain)):
        start = time.perf_counter()
        table = modelling_table(development, s)
        figures[label] = {"table": time.perf_counter() - start}
    s = spec.split
    plan = walk_forward(len(table), s.n_folds, s.test_share, s.gap)

    start = time.perf_counter()
    fitted = [fit_candidate.fn(plain, c, table, plan) for c in candidates]
    fit_seconds = time.perf_counter() - start
    print(f"candidates fitted through {len(plan.folds)} folds and on all {len(table)} rows: "
          f"{', '.join(f'{f.spec.name} {f.fit_seconds:.1f} s' for f in fitted)} ({fit_seconds:.1f} s)")

    with_table = modelling_table(development, spec)
    for label, s, t in (("with baselines", spec, with_table), ("persistence only", plain, table)):
        start = time.perf_counter()
        evaluation = evaluate_fitted.fn(s, t, plan, fitted)
        figures[label]["evaluate"] = time.perf_counter() - start
        figures[label]["baselines"] = sorted(evaluation.baselines)
        if evaluation.forecast and evaluation.forecast["fits"]:
            seconds = evaluation.forecast["fits"]["seconds"]
            print("baseline fits over all folds: " + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()))
    print()
    print(f"{'':18} {'table s':>8} {'candidates s':>13} {'evaluate s':>11} {'total s':>8}")
    for label, f in figures.items():
        f["total"] = f["table"] + fit_seconds + f["evaluate"]
        print(f"{label:18} {f['table']:8.2f} {fit_seconds:13.1f} {f['evaluate']:11.2f} {f['total']:8.1f}   "
              f"{', '.join(f['baselines'])}")
    ratio = figures["with baselines"]["total"] / figures["persistence only"]["total"]
    print(f"\ntraining time with the baselines / without: {ratio:.3f} (issue 19 target: below 2)")


if __name__ == "__main__":
    main()
