"""Which candidate becomes the challenger: the best by the primary metric, or the simplest whose
primary metric is not significantly worse than the best's (the spec's ``selection``).

The comparison is the gate's paired machinery on the same holdout rows (:mod:`tasks.compare`):
DeLong for ROC AUC, Diebold-Mariano for forecast losses on time-ordered rows, a paired (block)
bootstrap otherwise. Why prefer the simpler model: docs/interpretability.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.metrics import METRICS, ROW_COMPARABLE
from models.statistics import block_length
from tasks.compare import ComparisonError, bootstrap, delong, diebold_mariano

__all__ = ["SIMPLICITY", "comparison_metric", "simplest_within_noise"]

SIMPLICITY: dict[str, int] = {"logistic_regression": 0, "linear_regression": 0, "hist_gradient_boosting": 1,
                              "keras_mlp": 2}
"""Order of simplicity of the built-in estimators (0 simplest): a linear model's drivers are its
coefficients, a boosted tree's need permutation or partial dependence, a network's cannot be read
from its weights."""

_COMPARED_AS = {"roc_auc_ci_low": "roc_auc", "rmse_ratio_vs_persistence": "rmse"}
CONFIDENCE = 0.95
"""Two-sided confidence of the interval of the best candidate's advantage."""


def comparison_metric(primary_metric: str) -> str | None:
    """The row-comparable metric candidates are compared on: the primary metric itself, or the one
    it is built from (``roc_auc_ci_low`` → ``roc_auc``, ``rmse_ratio_vs_persistence`` → ``rmse``);
    None when there is none."""
    metric = _COMPARED_AS.get(primary_metric, primary_metric)
    return metric if metric in ROW_COMPARABLE else None


def _compare(metric: str, y: np.ndarray, a: np.ndarray, b: np.ndarray, time_ordered: bool, horizon: int, seed: int):
    if METRICS[metric].delong:
        return delong(y, a, b, CONFIDENCE)
    if time_ordered and METRICS[metric].loss is not None:
        return diebold_mariano(metric, y, a, b, horizon=horizon, confidence=CONFIDENCE)
    block = block_length(len(y), horizon) if time_ordered else None
    return bootstrap(metric, y, a, b, confidence=CONFIDENCE, n_boot=1000, seed=seed, block=block)


def simplest_within_noise(candidates: list[dict[str, Any]], best: str, y: np.ndarray, primary_metric: str, *,
                          time_ordered: bool = False, horizon: int = 1, seed: int = 0,
                          threshold_failures: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Choose the simplest candidate whose primary metric is not significantly worse than the best's.

    Each usable candidate is compared with the best one on the same rows: the best's advantage
    and its 95 % interval. A candidate is *within noise* when the interval's lower bound is at or
    below 0 (the best is not significantly better); among those, the simplest estimator
    (:data:`SIMPLICITY`, then spec order) that meets every threshold rule of the gate is chosen (a
    simpler model that fails, say, the four-fifths screen is passed over for an equally accurate one
    that meets it: the search for a less discriminatory alternative, docs/interpretability.md). When
    no candidate within noise meets them, the simplest within noise is chosen and the gate rejects it.
    The best candidate is always within noise.

    Args:
        candidates: in spec order, dicts with ``name``, ``estimator``, ``scores`` (holdout scores,
            shape (n,), or None for a candidate that failed).
        best: the name of the best candidate by the primary metric.
        y: holdout labels, shape (n,).
        primary_metric: the spec's gate metric (:func:`comparison_metric`).
        time_ordered, horizon: a walk-forward holdout (Diebold-Mariano lags, bootstrap blocks).
        threshold_failures: per candidate name, the sentences of the gate's threshold rules it fails
            on the holdout (absent or empty: it meets them all).

    Returns:
        The selection record: ``rule`` (``simplest_within_noise``), ``best_by_metric``, ``chosen``,
        ``metric`` (compared on), ``comparisons`` (per other candidate: ``candidate``,
        ``estimator``, ``method``, ``best_advantage``, ``ci_low``, ``ci_high``, ``within_noise``),
        ``passed_over`` (candidates within noise and simpler than the chosen one that fail a threshold
        rule, with the rules' sentences) and ``reason`` (a sentence for the card). When the metric cannot be compared row by row,
        or a comparison fails, the best candidate is kept and the reason says why.
    """
    by_name = {c["name"]: c for c in candidates}
    record: dict[str, Any] = {"rule": "simplest_within_noise", "best_by_metric": best, "chosen": best,
                              "metric": comparison_metric(primary_metric), "comparisons": []}
    metric = record["metric"]
    if metric is None:
        record["reason"] = (f"{best} has the best {primary_metric}; {primary_metric} cannot be compared row by row, "
                            "so the best is kept")
        return record
    eligible = [(SIMPLICITY.get(by_name[best]["estimator"], 9), candidates.index(by_name[best]), best)]
    for c in candidates:
        if c["name"] == best or c.get("scores") is None:
            continue
        try:
            comp = _compare(metric, y, np.asarray(by_name[best]["scores"], float), np.asarray(c["scores"], float),
                            time_ordered, horizon, seed)
        except ComparisonError as err:
            record["comparisons"].append({"candidate": c["name"], "estimator": c["estimator"], "error": str(err)})
            continue
        within = bool(comp.ci_low <= 0)
        record["comparisons"].append({
            "candidate": c["name"], "estimator": c["estimator"], "method": comp.method,
            "best_advantage": float(comp.diff), "ci_low": float(comp.ci_low), "ci_high": float(comp.ci_high),
            "within_noise": within,
        })
        if within:
            eligible.append((SIMPLICITY.get(c["estimator"], 9), candidates.index(c), c["name"]))
    failures = threshold_failures or {}
    meeting = [e for e in eligible if not failures.get(e[2])]
    chosen = min(meeting or eligible)[2]
    record["chosen"] = chosen
    rank = min(meeting or eligible)
    record["passed_over"] = [{"candidate": e[2], "fails": list(failures[e[2]])}
                             for e in sorted(eligible) if e < rank and failures.get(e[2])] if meeting else []
    if chosen == best:
        simpler = [c for c in record["comparisons"] if SIMPLICITY.get(c["estimator"], 9)
                   < SIMPLICITY.get(by_name[best]["estimator"], 9) and "error" not in c and not c["within_noise"]]
        worse = ", ".join(f"{c['candidate']}: {c['best_advantage']:+.4f}, 95 % interval "
                          f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]" for c in simpler)
        if record["passed_over"]:
            record["reason"] = f"{best} has the best {metric}" + (
                f"; simpler candidates significantly worse: {worse}" if simpler else "")
        elif simpler:
            record["reason"] = f"{best} has the best {metric} and every simpler candidate is significantly worse ({worse})"
        else:
            record["reason"] = f"{best} has the best {metric} and is the simplest candidate within noise"
    else:
        comp = next(c for c in record["comparisons"] if c["candidate"] == chosen)
        record["reason"] = (f"{chosen} ({by_name[chosen]['estimator']}) is the simplest candidate not significantly "
                            f"worse than the best, {best}: the best's advantage in {metric} is "
                            f"{comp['best_advantage']:+.4f}, 95 % interval [{comp['ci_low']:+.4f}, "
                            f"{comp['ci_high']:+.4f}] ({comp['method']}), which includes 0")
    if record["passed_over"]:
        record["reason"] += "; passed over, within noise but failing the gate's thresholds: " + "; ".join(
            f"{p['candidate']} ({', '.join(p['fails'])})" for p in record["passed_over"])
    elif not meeting:
        record["reason"] += "; no candidate within noise meets the gate's thresholds"
    return record
