"""Paired comparison of two models on the same holdout rows, with a confidence interval.

Used by the gate for champion and baseline rules. ``diff`` is always the first model's
advantage in the metric's better direction (positive = the challenger is better). Each metric's
function, direction and per-row loss come from the catalogue (:mod:`models.metrics`), the
statistics from :mod:`models.statistics`. Methods and their sources: ``docs/gates.md``.
"""

from __future__ import annotations

import math

import numpy as np

from models.metrics import METRICS, ROW_COMPARABLE, MetricError, MetricFn, advantage
from models.records.gate import Comparison
from models.statistics import (
    StatisticsError,
    bootstrap_indices,
    delong_difference,
    diebold_mariano_interval,
    percentile_interval,
)

__all__ = ["Comparison", "ComparisonError", "bootstrap", "delong", "diebold_mariano", "holdout_time_order", "metric_function",
           "point_only"]


def holdout_time_order(spec) -> tuple[bool, int]:
    """How a spec's holdout rows must be compared: ``(time_ordered, horizon)``. A walk-forward
    holdout is time-ordered (circular-block bootstrap); the feature builder's label horizon in rows
    sets the Diebold-Mariano lags and the block length floor (1 without a builder)."""
    builder = spec.builder
    return spec.split.method == "walk_forward", getattr(builder, "horizon", 1) if builder else 1


class ComparisonError(ValueError):
    """The two models cannot be compared (different lengths, unsupported metric or method)."""


def metric_function(metric: str) -> MetricFn:
    """The catalogue's ``f(y, scores) -> value`` of a row-comparable metric.

    Raises:
        ComparisonError: a metric that needs more than labels and scores (ratios against a
            baseline, fairness) or has an interval of its own.
    """
    if metric not in ROW_COMPARABLE:
        raise ComparisonError(f"metric {metric!r} cannot be compared row by row; use a threshold rule")
    return METRICS[metric].fn


def _arrays(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, a, b = (np.asarray(v, dtype=float) for v in (y, a, b))
    if not (len(y) == len(a) == len(b)):
        raise ComparisonError("labels and both models' scores must have the same length")
    return y, a, b


def bootstrap(
    metric: str, y: np.ndarray, a: np.ndarray, b: np.ndarray, *, change: str = "absolute",
    confidence: float = 0.95, n_boot: int = 1000, seed: int = 0, block: int | None = None,
) -> Comparison:
    """Paired (block) bootstrap interval of the advantage of ``a`` over ``b``.

    Each replicate resamples row indices once and recomputes both models' metric on them; the
    interval is the percentile interval of the replicated advantages.

    Args:
        y: outcomes, shape (n,); a, b: the two models' scores on the same rows.
        block: resample circular blocks of this many consecutive rows (time-ordered data), or
            rows one by one when None.

    Replicates whose metric is undefined (a single class drawn) are dropped and counted.

    Raises:
        ComparisonError: lengths differ, or the metric is not row-comparable.
    """
    fn = metric_function(metric)
    fast = METRICS[metric].fast
    y, a, b = _arrays(y, a, b)
    n = len(y)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        idx = bootstrap_indices(rng, n, block)
        try:
            d = advantage(metric, fast(y[idx], a[idx]), fast(y[idx], b[idx]), change)
        except MetricError:  # e.g. the KS statistic of a replicate that drew one class only
            continue
        if math.isfinite(d):
            diffs.append(d)
    va, vb = fn(y, a), fn(y, b)
    lo, hi = percentile_interval(diffs, confidence)
    how = f"circular blocks of {block} rows" if block and block > 1 else "rows"
    return Comparison(metric=metric, change=change, method="bootstrap", confidence=confidence, value_a=va, value_b=vb,
                      diff=advantage(metric, va, vb, change), ci_low=lo, ci_high=hi, rows=n, replicates=len(diffs),
                      note=f"paired bootstrap of {how}, {len(diffs)} replicates, percentile interval")


def delong(y: np.ndarray, a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> Comparison:
    """DeLong interval of ``AUC(a) - AUC(b)`` for two scores of the same rows.

    Raises:
        ComparisonError: lengths differ, or fewer than two events or two non-events.
    """
    y, a, b = _arrays(y, a, b)
    try:
        d = delong_difference(y, a, b, confidence)
    except StatisticsError as err:
        raise ComparisonError(str(err)) from None
    return Comparison(metric="roc_auc", change="absolute", method="delong", confidence=confidence, value_a=d.auc_a,
                      value_b=d.auc_b, diff=d.diff, ci_low=d.low, ci_high=d.high, rows=len(y), replicates=0,
                      note=f"DeLong variance of the paired AUC difference (se {d.se:.4f}), normal interval")


def diebold_mariano(
    metric: str, y: np.ndarray, a: np.ndarray, b: np.ndarray, horizon: int = 1, confidence: float = 0.95
) -> Comparison:
    """Diebold-Mariano interval of the mean loss differential ``loss(b) - loss(a)``.

    ``diff`` is in loss units: the MSE difference for mse/rmse, the MAE difference for mae, the
    accuracy difference for directional accuracy; positive means ``a`` forecasts better.

    Raises:
        ComparisonError: the metric has no per-row loss, lengths differ, or fewer than 10 rows.
    """
    info = METRICS.get(metric)
    if info is None or info.loss is None:
        raise ComparisonError(f"Diebold-Mariano needs a per-row loss; {metric!r} has none")
    y, a, b = _arrays(y, a, b)
    try:
        dm = diebold_mariano_interval(info.loss(y, b) - info.loss(y, a), horizon, confidence)
    except StatisticsError as err:
        raise ComparisonError(str(err)) from None
    va, vb = info.fn(y, a), info.fn(y, b)
    what = "miss" if metric == "directional_accuracy" else "loss"
    return Comparison(metric=metric, change="absolute", method="diebold_mariano", confidence=confidence, value_a=va,
                      value_b=vb, diff=dm.mean, ci_low=dm.low, ci_high=dm.high, rows=len(y), replicates=0,
                      note=f"Diebold-Mariano on the {what} differential, {dm.lags} autocovariance lag(s) with "
                           f"{dm.weights}, HLN-corrected se {dm.se:.3g}")


def point_only(metric: str, y: np.ndarray, a: np.ndarray, b: np.ndarray, change: str = "absolute") -> Comparison:
    """The point advantage without an interval.

    Raises:
        ComparisonError: the metric is not row-comparable.
    """
    fn = metric_function(metric)
    y, a, b = (np.asarray(v, dtype=float) for v in (y, a, b))
    va, vb = fn(y, a), fn(y, b)
    return Comparison(metric=metric, change=change, method="none", confidence=0.0, value_a=va, value_b=vb,
                      diff=advantage(metric, va, vb, change), ci_low=None, ci_high=None, rows=len(y))
