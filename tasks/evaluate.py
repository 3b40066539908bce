"""Holdout evaluation: every candidate's metrics on the same holdout rows, the selection by the
spec's primary metric, and the champion's re-scoring on those rows. The metrics themselves and
their definitions live in the catalogue (:mod:`models.metrics`, ``docs/metrics.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.metrics import (
    METRICS,
    MetricError,
    decile_table,
    directional_accuracy,
    is_better,
    metrics_for,
    rmse,
    roc_auc_ci,
    shown_metrics,
)
from models.records.gate import ChampionRescoring
from models.spec import ModelSpec
from tasks.compare import holdout_time_order
from tasks.fairness import fairness_report
from tasks.selection import simplest_within_noise
from tasks.step import step

__all__ = [
    "CandidateEvaluation", "HoldoutEvaluation", "MetricError", "baseline_fits", "baseline_scores", "batch_baselines",
    "candidates_table", "forecasts_volatility",
    "compute_metrics", "evaluate_fitted", "fold_metrics", "rescore_champion", "select_best",
]


def compute_metrics(
    spec: ModelSpec, y: np.ndarray, scores: np.ndarray, baselines: dict[str, np.ndarray] | None = None,
    protected: pd.DataFrame | None = None,
) -> dict[str, float]:
    """The metrics of the spec's task for one set of scores (a holdout, a monitoring batch).

    Every catalogue metric with a function that applies to the task (:func:`models.metrics.metrics_for`),
    then the values that need more than labels and scores: the upper DeLong bound of ROC AUC
    (``roc_auc_ci_high``), the naive baselines' values, and the adverse impact ratio.

    Args:
        y: outcomes, shape (n,); scores: the model's scores on the same rows (probabilities
            of the event for classifiers, forecasts in the target's units for regression).
        baselines: naive forecasts on the same rows (``persistence``, ``majority``), for the
            ratios and accuracies against them.
        protected: the rows' protected columns, for fairness metrics (binary classification
            with protected columns only).

    Raises:
        MetricError: unusable labels or scores (a single class, non-finite values, lengths).
    """
    baselines = baselines or {}
    out = {name: METRICS[name].fn(y, scores) for name in metrics_for(spec.task, forecasts_volatility(spec))}
    if spec.is_classifier:
        out["roc_auc_ci_high"] = roc_auc_ci(y, scores)[1]
        if spec.task == "direction":
            for name, b in baselines.items():
                out[f"{name}_directional_accuracy"] = directional_accuracy(y, b)
        if protected is not None and spec.protected_columns and spec.task == "binary_classification":
            out["adverse_impact_ratio"] = fairness_report(spec, y, scores, protected)["adverse_impact_ratio"]
    elif baselines.get("persistence") is not None:
        base = rmse(y, baselines["persistence"])
        out["baseline_rmse"] = base
        out["rmse_ratio_vs_persistence"] = out["rmse"] / base if base > 0 else float("inf")
    return out


def forecasts_volatility(spec: ModelSpec) -> bool:
    """The spec's label is a volatility (its feature builder says so): the volatility losses apply."""
    return bool(getattr(spec.builder, "forecasts_volatility", False))


def baseline_scores(spec: ModelSpec, table: pd.DataFrame, plan, fitted: bool = True) -> dict[str, np.ndarray]:
    """The baselines of the spec's feature builder on the holdout rows (empty without one); with
    ``fitted=False`` only the naive ones that need no fit (persistence, majority)."""
    builder = spec.builder
    if builder is None or not hasattr(builder, "baseline_scores"):
        return {}
    return builder.baseline_scores(table, plan, fitted=fitted)


def baseline_fits(spec: ModelSpec, table: pd.DataFrame, plan) -> tuple[dict[str, np.ndarray], dict[str, Any] | None]:
    """The baselines on the holdout rows and, for fitted volatility baselines, their per-fold record
    (:meth:`models.features.RealisedVolatilityBuilder.fit_baselines`; None otherwise)."""
    builder = spec.builder
    if builder is None or not hasattr(builder, "fit_baselines"):
        return baseline_scores(spec, table, plan), None
    forecasts, fits = builder.fit_baselines(table, plan)
    return forecasts, None if fits is None else fits.record()


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
    names = [m for m in shown_metrics(spec.task, forecasts_volatility(spec))
             if not METRICS[m].needs_protected or spec.protected_columns]
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
        folds: the selected candidate's metrics on each walk-forward test block
            (:func:`fold_metrics`); empty for a single holdout.
        selection: how the candidate was chosen when the spec's rule is ``simplest_within_noise``
            (:func:`tasks.selection.simplest_within_noise`); None for ``best``.
        forecast: volatility forecasters' comparison of every candidate and baseline
            (:func:`tasks.forecast_eval.forecast_comparison`); None for other models.
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
    folds: list[dict[str, Any]] = field(default_factory=list)
    selection: dict[str, Any] | None = None
    forecast: dict[str, Any] | None = None

    @property
    def baseline(self) -> np.ndarray | None:
        """The persistence forecast on the holdout rows (forecasters), for plots."""
        return self.baselines.get("persistence")


def fold_metrics(spec: ModelSpec, plan, y: np.ndarray, scores: np.ndarray,
                 baselines: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The metrics of one candidate on each walk-forward test block (empty for a single holdout).

    Args:
        plan: the split plan (``tasks.split.SplitPlan``); y, scores, baselines: the labels, the
            candidate's scores and the naive forecasts on ``plan.holdout`` rows, in fold order.

    Returns:
        One dict per fold, in time order: ``fold`` (0-based), ``test_rows``, ``metrics`` (as
        :func:`compute_metrics`; empty when a block's labels or scores give none) and ``error``
        (the MetricError's text, or None). The folds' dates are in the split's description
        (``SplitPlan.describe``).
    """
    if plan.method != "walk_forward":
        return []
    out, start = [], 0
    for k, fold in enumerate(plan.folds):
        block = slice(start, start + len(fold.test))
        start = block.stop
        row: dict[str, Any] = {"fold": k, "test_rows": len(fold.test), "metrics": {}, "error": None}
        try:
            row["metrics"] = compute_metrics(spec, y[block], scores[block], {n: b[block] for n, b in baselines.items()})
        except MetricError as err:
            row["error"] = f"MetricError: {err}"
        out.append(row)
    return out


def _protected(spec: ModelSpec, table: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame | None:
    cols = [c for c in spec.protected_columns if c in table.columns]
    return table[cols].iloc[rows].reset_index(drop=True) if cols else None


def threshold_failures(spec: ModelSpec, evaluations: list) -> dict[str, list[str]]:
    """Per evaluated candidate, the sentences of the gate's threshold rules its holdout metrics fail
    (:func:`tasks.gate.threshold_verdict`); a candidate that could not be evaluated fails none here
    (it is not eligible anyway)."""
    from models.spec import ThresholdRule
    from tasks.gate import threshold_verdict

    rules = [r for r in spec.gate.rules if isinstance(r, ThresholdRule)]
    return {e.name: [v.sentence for v in (threshold_verdict(r, e.metrics) for r in rules) if not v.passed]
            for e in evaluations if e.error is None}


@step("evaluate-fitted")
def evaluate_fitted(spec: ModelSpec, table: pd.DataFrame, plan, fitted: list) -> HoldoutEvaluation:
    """Compute the holdout metrics of each fitted candidate and select the best by the spec's
    primary metric.

    Args:
        table: the modelling table; plan: its split plan (``plan.holdout`` rows are judged).
        fitted: the fitted candidates (``tasks.train.FittedCandidate``), with their holdout scores.

    Raises:
        ValueError: no candidate could be evaluated.
    """
    from tasks.load import fingerprint

    rows = plan.holdout
    y = table[spec.target_column].to_numpy(dtype=float)[rows]
    baselines, fits = baseline_fits(spec, table, plan)
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
    selection = None
    if spec.selection_rule == "simplest_within_noise":
        scores_of = {fc.spec.name: fc.holdout_scores for fc in fitted}
        time_ordered, horizon = holdout_time_order(spec)
        selection = simplest_within_noise(
            [{"name": e.name, "estimator": e.estimator, "scores": scores_of[e.name] if e.error is None else None}
             for e in evaluations], best.name, y, spec.gate.primary_metric, time_ordered=time_ordered, horizon=horizon,
            threshold_failures=threshold_failures(spec, evaluations))
        best = next(e for e in evaluations if e.name == selection["chosen"])
    chosen = next(fc for fc in fitted if fc.spec.name == best.name)
    scores = np.asarray(chosen.holdout_scores, dtype=float)
    holdout = table.iloc[rows].copy()
    holdout["score"] = scores
    sha = fingerprint(holdout[spec.feature_columns + [spec.target_column]]).sha256
    deciles = decile_table(y, scores) if spec.is_classifier else []
    fairness = (fairness_report(spec, y, scores, protected)
                if protected is not None and spec.task == "binary_classification" else None)
    forecast = None
    if forecasts_volatility(spec):
        from tasks.forecast_eval import forecast_comparison

        forecast = forecast_comparison(spec, plan, y, {fc.spec.name: fc.holdout_scores for fc in fitted
                                                       if fc.error is None}, best.name, baselines, fits)
    return HoldoutEvaluation(
        evaluations, candidates_table(evaluations, spec, best.name), best.name, dict(best.metrics),
        holdout.reset_index(drop=True), y, scores, baselines, deciles, fairness, sha,
        fold_metrics(spec, plan, y, scores, baselines), selection, forecast,
    )


def batch_baselines(spec: ModelSpec, table: pd.DataFrame, rows: np.ndarray,
                    train_event_rate: float | None) -> dict[str, np.ndarray]:
    """Naive forecasts on rows of a scoring/monitoring batch (no folds: ``majority`` uses the
    version's training event rate)."""
    builder = spec.builder
    if builder is None:
        return {}
    return builder.baselines_on(table, rows, train_event_rate)


@step("rescore-champion")
def rescore_champion(spec: ModelSpec, registry_root, table: pd.DataFrame, plan,
                     holdout_sha256: str) -> ChampionRescoring | None:
    """The champion's scores and metrics on this run's holdout rows, or None when there is none.

    The scores (on ``plan.holdout`` rows) feed the gate's paired comparisons; they are not part
    of the record's JSON. A champion that cannot be scored, or whose scores give no metrics,
    comes back with ``error`` set (the gate then fails closed).
    """
    from models.registry import ModelRegistry
    from tasks.train import score_champion

    found = score_champion(spec, ModelRegistry(registry_root, spec.name), table, plan, holdout_sha256)
    if found is None:
        return None
    metrics, error = None, found.error
    if found.scores is not None:
        y = table[spec.target_column].to_numpy(dtype=float)[plan.holdout]
        try:
            metrics = compute_metrics(spec, y, found.scores, baseline_scores(spec, table, plan, fitted=False),
                                      _protected(spec, table, plan.holdout))
        except MetricError as err:
            error = f"MetricError: {err}"
    return ChampionRescoring(version=found.version, method=found.method, same_holdout=found.same_holdout,
                             metrics=metrics, error=error, scores=found.scores)
