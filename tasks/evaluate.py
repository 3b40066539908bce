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

- ROC AUC confidence interval: DeLong (1988) variance (``tasks.compare.roc_auc_interval``).
- Expected calibration error: ``sum_b (n_b / N) |mean p_b - event rate_b|`` over score deciles
  (equal-frequency bins; Naeini, Cooper & Hauskrecht, AAAI 2015). Calibration ratio: mean
  predicted probability / observed event rate (calibration-in-the-large; ideal 1).
- Rank ordering: deciles of the score from least to most risky; the event rate should rise
  from each decile to the next. ``max_rank_reversal`` is the largest fall (0 = monotone).
- Direction models: directional accuracy = share of rows where ``1[p >= 0.5]`` equals the
  outcome.

Regression: RMSE, MSE, MAE, and the RMSE ratio against a naive baseline forecast (for the
volatility forecaster, persistence: next week's volatility equals last week's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.spec import METRICS, ModelSpec
from tasks.step import step


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


def decile_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Equal-frequency score bins, least risky first: rows, events, event rate, mean predicted.

    Rows are ordered by score and cut into at most ``n_bins`` groups of about equal size (the
    cuts of ``numpy.array_split``). Rows with the same score always fall in the same group: a
    cut inside a run of tied scores moves to the nearer end of the run. The table therefore
    depends on the (label, score) pairs only, never on row order, and heavily tied scores give
    fewer, larger groups (a constant score gives one).
    """
    y, p = _check(y, p)
    order = np.argsort(p, kind="stable")
    ps = p[order]
    n = len(ps)
    k = min(n_bins, n)
    sizes = [len(part) for part in np.array_split(np.arange(n), k)] if n else []
    cuts = set()
    for cut in np.cumsum(sizes)[:-1]:
        start = int(np.searchsorted(ps, ps[cut], side="left"))   # first row of the tie run at the cut
        end = int(np.searchsorted(ps, ps[cut], side="right"))    # one past its last row
        cuts.add(start if cut - start <= end - cut else end)
    bounds = [0, *sorted(c for c in cuts if 0 < c < n), n]
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi <= lo:
            continue
        idx = order[lo:hi]
        out.append({
            "decile": len(out) + 1, "rows": int(len(idx)), "min_score": float(p[idx].min()),
            "max_score": float(p[idx].max()), "events": int(y[idx].sum()), "event_rate": float(y[idx].mean()),
            "mean_predicted": float(p[idx].mean()),
        })
    return out


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Weighted mean absolute gap between mean predicted probability and event rate per decile."""
    table = decile_table(y, p, n_bins)
    total = sum(r["rows"] for r in table)
    return float(sum(r["rows"] / total * abs(r["mean_predicted"] - r["event_rate"]) for r in table))


def max_rank_reversal(table: list[dict[str, float]]) -> float:
    """Largest fall of the event rate from one decile to the next riskier one (0 = monotone)."""
    rates = [r["event_rate"] for r in table]
    return float(max([0.0] + [rates[k] - rates[k + 1] for k in range(len(rates) - 1)]))


def directional_accuracy(y: np.ndarray, p: np.ndarray) -> float:
    """Share of rows whose predicted direction ``1[p >= 0.5]`` equals the outcome."""
    y, p = _check(y, p)
    return float(np.mean((p >= 0.5).astype(float) == y))


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """All classification metrics of the catalogue on one holdout."""
    from tasks.compare import roc_auc_interval

    auc = roc_auc(y, p)
    low, high = roc_auc_interval(y, p)
    deciles = decile_table(y, p)
    observed = float(np.mean(y))
    return {
        "roc_auc": auc,
        "roc_auc_ci_low": low,
        "roc_auc_ci_high": high,
        "gini": 2.0 * auc - 1.0,
        "ks": ks_statistic(y, p),
        "brier": brier_score(y, p),
        "log_loss": log_loss(y, p),
        "average_precision": average_precision(y, p),
        "ece": expected_calibration_error(y, p),
        "calibration_ratio": float(np.mean(p)) / observed if observed > 0 else float("nan"),
        "max_rank_reversal": max_rank_reversal(deciles),
    }


def regression_metrics(y: np.ndarray, f: np.ndarray, baseline: np.ndarray | None = None) -> dict[str, float]:
    """RMSE and MAE; with a baseline forecast also the baseline's RMSE and the ratio."""
    out = {"rmse": rmse(y, f), "mse": rmse(y, f) ** 2, "mae": mae(y, f)}
    if baseline is not None:
        base = rmse(y, baseline)
        out["baseline_rmse"] = base
        out["rmse_ratio_vs_persistence"] = out["rmse"] / base if base > 0 else float("inf")
    return out


def compute_metrics(
    spec: ModelSpec, y: np.ndarray, scores: np.ndarray, baselines: dict[str, np.ndarray] | None = None,
    protected: pd.DataFrame | None = None,
) -> dict[str, float]:
    """The metrics of the spec's task for one set of holdout scores.

    Args:
        baselines: naive forecasts on the same rows (``persistence``, ``majority``), for the
            ratios and accuracies against them.
        protected: the holdout's protected columns, for fairness metrics (binary
            classification with protected columns only).
    """
    baselines = baselines or {}
    if not spec.is_classifier:
        return regression_metrics(y, scores, baselines.get("persistence"))
    out = classification_metrics(y, scores)
    if spec.task == "direction":
        out["directional_accuracy"] = directional_accuracy(y, scores)
        for name, b in baselines.items():
            out[f"{name}_directional_accuracy"] = directional_accuracy(y, b)
    if protected is not None and spec.protected_columns and spec.task == "binary_classification":
        from tasks.fairness import fairness_report

        out["adverse_impact_ratio"] = fairness_report(spec, y, scores, protected)["adverse_impact_ratio"]
    return out


def baseline_scores(spec: ModelSpec, table: pd.DataFrame, plan) -> dict[str, np.ndarray]:
    """Naive forecasts of the spec's feature builder on the holdout rows (empty without one)."""
    builder = spec.builder
    if builder is None or not hasattr(builder, "baseline_scores"):
        return {}
    return builder.baseline_scores(table, plan)


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


def report_metrics(task: str) -> list[str]:
    """The metrics shown per candidate in tables (the rest stay in the metadata)."""
    if task == "regression":
        return ["rmse", "mae", "rmse_ratio_vs_persistence"]
    shown = ["roc_auc", "ks", "gini", "brier", "log_loss", "average_precision", "ece"]
    return shown + (["directional_accuracy"] if task == "direction" else ["adverse_impact_ratio"])


def candidates_table(evaluations: list[CandidateEvaluation], spec: ModelSpec, best: str | None) -> list[dict[str, Any]]:
    """Rows for reports: one per candidate with its metrics, fit time and selection mark."""
    names = [m for m in report_metrics(spec.task) if m != "adverse_impact_ratio" or spec.protected_columns]
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
        y: the holdout labels; scores: the selected candidate's scores (same order).
        baselines: naive forecasts on the holdout rows (``persistence``, ``majority``).
        deciles: the selected candidate's score deciles (classifiers; see ``decile_table``).
        fairness: the selected candidate's fairness report (models with protected columns).
        holdout_sha256: fingerprint of the holdout's features and labels, recorded with the
            version so a later run can tell whether it judges on the same holdout.
    """

    evaluations: list[CandidateEvaluation]
    rows: list[dict[str, Any]]
    best: str
    metrics: dict[str, float]
    holdout: pd.DataFrame
    y: np.ndarray
    scores: np.ndarray
    baselines: dict[str, np.ndarray]
    deciles: list[dict[str, float]]
    fairness: dict[str, Any] | None
    holdout_sha256: str

    @property
    def baseline(self) -> np.ndarray | None:
        """The persistence forecast on the holdout rows (forecasters), for plots."""
        return self.baselines.get("persistence")


def _protected(spec: ModelSpec, table: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame | None:
    cols = [c for c in spec.protected_columns if c in table.columns]
    return table[cols].iloc[rows].reset_index(drop=True) if cols else None


def evaluate_fitted(spec: ModelSpec, table: pd.DataFrame, plan, fitted: list) -> HoldoutEvaluation:
    """Compute the holdout metrics of each fitted candidate and select the best.

    Raises:
        ValueError: no candidate could be evaluated.
    """
    from tasks.fairness import fairness_report
    from tasks.load import fingerprint

    rows = plan.holdout
    y = table[spec.target_column].to_numpy(dtype=float)[rows]
    baselines = baseline_scores(spec, table, plan)
    protected = _protected(spec, table, rows)
    evaluations = []
    for fc in fitted:
        ev = CandidateEvaluation(fc.spec.name, fc.spec.estimator, fit_seconds=fc.fit_seconds, error=fc.error,
                                 details=fc.details)
        if fc.error is None:
            try:
                ev.metrics = compute_metrics(spec, y, fc.holdout_scores, baselines, protected)
            except MetricError as err:
                ev.error = f"MetricError: {err}"
        evaluations.append(ev)
    best = select_best(evaluations, spec.gate.primary_metric)
    chosen = next(fc for fc in fitted if fc.spec.name == best.name)
    scores = np.asarray(chosen.holdout_scores, dtype=float)
    holdout = table.iloc[rows].copy()
    holdout["score"] = scores
    sha = fingerprint(holdout[spec.feature_columns + [spec.target_column]]).sha256
    deciles = decile_table(y, scores) if spec.is_classifier else []
    fairness = (fairness_report(spec, y, scores, protected)
                if protected is not None and spec.task == "binary_classification" else None)
    return HoldoutEvaluation(
        evaluations, candidates_table(evaluations, spec, best.name), best.name, dict(best.metrics),
        holdout.reset_index(drop=True), y, scores, baselines, deciles, fairness, sha,
    )


def batch_baselines(spec: ModelSpec, table: pd.DataFrame, rows: np.ndarray, train_event_rate: float | None) -> dict[str, np.ndarray]:
    """Naive forecasts on rows of a scoring/monitoring batch (no folds: ``majority`` uses the
    version's training event rate)."""
    builder = spec.builder
    if builder is None:
        return {}
    return builder.baselines_on(table, rows, train_event_rate)


# --------------------------------------------------------------------------- Prefect tasks



@step("evaluate-candidates")
def evaluate_candidates(spec: ModelSpec, table: pd.DataFrame, plan, fitted: list) -> HoldoutEvaluation:
    """Holdout metrics per candidate and the selection by the spec's primary metric."""
    return evaluate_fitted(spec, table, plan, fitted)


@step("rescore-champion")
def rescore_champion(spec: ModelSpec, registry_root, table: pd.DataFrame, plan, holdout_sha256: str) -> dict[str, Any] | None:
    """The champion's metrics and scores on this run's holdout, or None when there is none.

    Returns ``{"version", "method", "same_holdout", "metrics", "scores", "error"}`` (``scores``
    on ``plan.holdout`` rows, for the gate's paired comparisons; not part of the record).
    """
    from models.registry import ModelRegistry
    from tasks.train import score_champion

    found = score_champion(spec, ModelRegistry(registry_root, spec.name), table, plan, holdout_sha256)
    if found is None:
        return None
    out = {"version": found.version, "method": found.method, "same_holdout": found.same_holdout,
           "metrics": None, "scores": found.scores, "error": found.error}
    if found.scores is not None:
        y = table[spec.target_column].to_numpy(dtype=float)[plan.holdout]
        try:
            out["metrics"] = compute_metrics(spec, y, found.scores, baseline_scores(spec, table, plan),
                                             _protected(spec, table, plan.holdout))
        except MetricError as err:
            out["error"] = f"MetricError: {err}"
    return out
