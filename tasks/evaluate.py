"""Holdout metrics of the field, candidate selection, and re-scoring of the champion.

Classification (scores are probabilities of the positive class, the event):

- ROC AUC: area under the ROC curve (scikit-learn ``roc_auc_score``).
- Gini: ``2 * AUC - 1`` (the accuracy ratio of the CAP curve; Basel Committee, Working
  Paper 14, "Studies on the Validation of Internal Rating Systems", 2005, section III).
- KS statistic: the largest distance between the score distributions of events and
  non-events, ``max_s |F_event(s) - F_non-event(s)| = max |TPR - FPR|`` over thresholds.
- Brier score: ``mean((p - y)^2)`` (Brier, Monthly Weather Review 78, 1950).
- Log loss: ``-mean(y log p + (1 - y) log(1 - p))``, p clipped to [1e-15, 1 - 1e-15].
- Average precision: area under the precision-recall curve (scikit-learn).

Regression: RMSE, MAE, and the RMSE ratio against a naive baseline forecast (for the
volatility forecaster, persistence: next week's volatility equals last week's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.spec import METRICS, ModelSpec


class MetricError(ValueError):
    """Metric inputs are unusable (length mismatch, a single class, non-finite values)."""


def _check(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float).ravel()
    s = np.asarray(s, dtype=float).ravel()
    if y.shape != s.shape:
        raise MetricError(f"labels ({y.shape[0]}) and scores ({s.shape[0]}) differ in length")
    if y.size == 0:
        raise MetricError("no rows to evaluate")
    if not (np.isfinite(y).all() and np.isfinite(s).all()):
        raise MetricError("labels and scores must be finite")
    return y, s


def _check_binary(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, p = _check(y, p)
    if not np.isin(y, (0.0, 1.0)).all():
        raise MetricError("labels must be 0 or 1")
    if y.min() == y.max():
        raise MetricError("the labels have a single class; rank metrics are undefined")
    return y, p


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve, in [0, 1]; 0.5 is no discrimination."""
    from sklearn.metrics import roc_auc_score

    y, p = _check_binary(y, p)
    return float(roc_auc_score(y, p))


def gini(y: np.ndarray, p: np.ndarray) -> float:
    """Gini coefficient (accuracy ratio) = 2 * ROC AUC - 1, in [-1, 1]."""
    return 2.0 * roc_auc(y, p) - 1.0


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov-Smirnov statistic between the score distributions of events and non-events."""
    from sklearn.metrics import roc_curve

    y, p = _check_binary(y, p)
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(np.abs(tpr - fpr)))


def brier_score(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared difference between the probability and the 0/1 outcome, in [0, 1]."""
    y, p = _check(y, p)
    return float(np.mean((p - y) ** 2))


def log_loss(y: np.ndarray, p: np.ndarray, eps: float = 1e-15) -> float:
    """Binary cross-entropy in nats per row."""
    y, p = _check(y, p)
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the precision-recall curve (step-wise, scikit-learn's definition)."""
    from sklearn.metrics import average_precision_score

    y, p = _check_binary(y, p)
    return float(average_precision_score(y, p))


def rmse(y: np.ndarray, f: np.ndarray) -> float:
    """Root mean squared error, in the target's units."""
    y, f = _check(y, f)
    return float(math.sqrt(np.mean((f - y) ** 2)))


def mae(y: np.ndarray, f: np.ndarray) -> float:
    """Mean absolute error, in the target's units."""
    y, f = _check(y, f)
    return float(np.mean(np.abs(f - y)))


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """All classification metrics of the catalogue on one holdout."""
    auc = roc_auc(y, p)
    return {
        "roc_auc": auc,
        "gini": 2.0 * auc - 1.0,
        "ks": ks_statistic(y, p),
        "brier": brier_score(y, p),
        "log_loss": log_loss(y, p),
        "average_precision": average_precision(y, p),
    }


def regression_metrics(y: np.ndarray, f: np.ndarray, baseline: np.ndarray | None = None) -> dict[str, float]:
    """RMSE and MAE; with a baseline forecast also the baseline's RMSE and the ratio."""
    out = {"rmse": rmse(y, f), "mae": mae(y, f)}
    if baseline is not None:
        base = rmse(y, baseline)
        out["baseline_rmse"] = base
        out["rmse_ratio_vs_persistence"] = out["rmse"] / base if base > 0 else float("inf")
    return out


def compute_metrics(spec: ModelSpec, y: np.ndarray, scores: np.ndarray, baseline: np.ndarray | None = None) -> dict[str, float]:
    """The metrics of the spec's task for one set of holdout scores."""
    if spec.task == "binary_classification":
        return classification_metrics(y, scores)
    return regression_metrics(y, scores, baseline)


def baseline_forecast(spec: ModelSpec, table: pd.DataFrame, rows: np.ndarray) -> np.ndarray | None:
    """The naive forecast of the spec's feature builder on the given rows, if it has one."""
    builder = spec.builder
    column = getattr(builder, "baseline_column", None) if builder is not None else None
    if column is None:
        return None
    return table[column].to_numpy(dtype=float)[rows]


def is_better(metric: str, a: float, b: float) -> bool:
    """True if value ``a`` is strictly better than ``b`` for this metric."""
    if METRICS[metric].higher_is_better:
        return a > b
    return a < b


@dataclass
class CandidateEvaluation:
    """A candidate's holdout metrics (or why it has none)."""

    name: str
    estimator: str
    metrics: dict[str, float] = field(default_factory=dict)
    fit_seconds: float = 0.0
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def select_best(evaluations: list[CandidateEvaluation], metric: str) -> CandidateEvaluation:
    """The candidate with the best value of ``metric``; ties go to the earlier candidate.

    Raises:
        ValueError: no candidate produced the metric (all failed).
    """
    usable = [e for e in evaluations if e.error is None and math.isfinite(e.metrics.get(metric, float("nan")))]
    if not usable:
        reasons = "; ".join(f"{e.name}: {e.error or 'no ' + metric}" for e in evaluations)
        raise ValueError(f"no candidate could be evaluated on {metric!r} ({reasons})")
    best = usable[0]
    for e in usable[1:]:
        if is_better(metric, e.metrics[metric], best.metrics[metric]):
            best = e
    return best


def candidates_table(evaluations: list[CandidateEvaluation], spec: ModelSpec, best: str | None) -> list[dict[str, Any]]:
    """Rows for reports: one per candidate with its metrics, fit time and selection mark."""
    names = [m for m in METRICS if spec.task in METRICS[m].tasks]
    rows = []
    for e in evaluations:
        row: dict[str, Any] = {"candidate": e.name, "estimator": e.estimator}
        for m in names:
            v = e.metrics.get(m)
            row[m] = None if v is None else round(float(v), 6)
        row["fit_seconds"] = round(e.fit_seconds, 2)
        row["selected"] = e.name == best
        row["error"] = e.error
        rows.append(row)
    return rows


@dataclass
class HoldoutEvaluation:
    """Every candidate judged on the same holdout, and the one selected.

    Attributes:
        evaluations: per-candidate metrics (or errors), in spec order.
        rows: the same as report rows (``candidates_table``).
        best: name of the selected candidate.
        metrics: the selected candidate's metrics.
        holdout: the holdout rows of the modelling table with a ``score`` column (the
            selected candidate's out-of-sample score); in fold order.
        baseline: the naive forecast on the holdout rows (forecasters), else None.
        holdout_sha256: fingerprint of the holdout's features and labels, recorded with the
            version so a later run can tell whether it judges on the same holdout.
    """

    evaluations: list[CandidateEvaluation]
    rows: list[dict[str, Any]]
    best: str
    metrics: dict[str, float]
    holdout: pd.DataFrame
    baseline: np.ndarray | None
    holdout_sha256: str


def evaluate_fitted(spec: ModelSpec, table: pd.DataFrame, plan, fitted: list) -> HoldoutEvaluation:
    """Compute the holdout metrics of each fitted candidate and select the best.

    Raises:
        ValueError: no candidate could be evaluated.
    """
    from tasks.load import fingerprint

    rows = plan.holdout
    y = table[spec.target_column].to_numpy(dtype=float)[rows]
    baseline = baseline_forecast(spec, table, rows)
    evaluations = []
    for fc in fitted:
        ev = CandidateEvaluation(fc.spec.name, fc.spec.estimator, fit_seconds=fc.fit_seconds, error=fc.error,
                                 details=fc.details)
        if fc.error is None:
            try:
                ev.metrics = compute_metrics(spec, y, fc.holdout_scores, baseline)
            except MetricError as err:
                ev.error = f"MetricError: {err}"
        evaluations.append(ev)
    best = select_best(evaluations, spec.gate.primary_metric)
    chosen = next(fc for fc in fitted if fc.spec.name == best.name)
    holdout = table.iloc[rows].copy()
    holdout["score"] = chosen.holdout_scores
    sha = fingerprint(holdout[spec.feature_columns + [spec.target_column]]).sha256
    return HoldoutEvaluation(
        evaluations, candidates_table(evaluations, spec, best.name), best.name, dict(best.metrics),
        holdout.reset_index(drop=True), baseline, sha,
    )


# --------------------------------------------------------------------------- Prefect tasks

from prefect import task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402


@task(name="evaluate-candidates", cache_policy=NO_CACHE)
def evaluate_candidates(spec: ModelSpec, table: pd.DataFrame, plan, fitted: list) -> HoldoutEvaluation:
    """Holdout metrics per candidate and the selection by the spec's primary metric."""
    return evaluate_fitted(spec, table, plan, fitted)


@task(name="rescore-champion", cache_policy=NO_CACHE)
def rescore_champion(spec: ModelSpec, registry_root, table: pd.DataFrame, plan, holdout_sha256: str) -> dict[str, Any] | None:
    """The champion's metrics on this run's holdout, or None when there is no champion.

    Returns ``{"version", "method", "same_holdout", "metrics", "error"}``.
    """
    from models.registry import ModelRegistry
    from tasks.train import score_champion

    found = score_champion(spec, ModelRegistry(registry_root, spec.name), table, plan, holdout_sha256)
    if found is None:
        return None
    out = {"version": found.version, "method": found.method, "same_holdout": found.same_holdout,
           "metrics": None, "error": found.error}
    if found.scores is not None:
        y = table[spec.target_column].to_numpy(dtype=float)[plan.holdout]
        try:
            out["metrics"] = compute_metrics(spec, y, found.scores, baseline_forecast(spec, table, plan.holdout))
        except MetricError as err:
            out["error"] = f"MetricError: {err}"
    return out
