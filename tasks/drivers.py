"""Global drivers of a fitted candidate: permutation importance, coefficients of a linear model
and partial dependence, measured on the holdout (the ``drivers`` section of a spec).

Every function takes the pipeline as promoted (``Pipeline([training_range, preprocess, model])``)
and a frame with the model's feature columns, so it works alike for scikit-learn and Keras
candidates. Method and reading: docs/interpretability.md.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from models.estimators import predict_scores
from models.metrics import METRICS
from models.spec.explain import DriversSpec
from tasks.selection import comparison_metric
from tasks.step import step

logger = logging.getLogger(__name__)

__all__ = ["drivers_metric", "explain_selected", "global_drivers", "linear_coefficients", "partial_dependence_curves",
           "permutation_drivers", "sample_rows"]

_DEFAULT_METRIC = {"binary_classification": "roc_auc", "direction": "roc_auc", "regression": "rmse"}


def drivers_metric(primary_metric: str, task: str) -> str:
    """The metric permutation importance is measured by: the metric candidates are compared on
    (:func:`tasks.selection.comparison_metric`: the primary metric, or ``roc_auc`` for
    ``roc_auc_ci_low`` and ``rmse`` for ``rmse_ratio_vs_persistence``) when it has a direction, else
    ``roc_auc`` for classifiers and ``rmse`` for regression."""
    metric = comparison_metric(primary_metric)
    if metric is not None and METRICS[metric].higher_is_better is not None:
        return metric
    return _DEFAULT_METRIC.get(task, "roc_auc")


def sample_rows(n_rows: int, section: DriversSpec) -> np.ndarray:
    """Positions of the rows used: all ``n_rows``, or ``section.max_rows`` of them drawn without
    replacement with ``section.seed``, ascending."""
    if n_rows <= section.max_rows:
        return np.arange(n_rows)
    rng = np.random.default_rng(section.seed)
    return np.sort(rng.choice(n_rows, size=section.max_rows, replace=False))


def permutation_drivers(section: DriversSpec, pipeline, X: pd.DataFrame, y: np.ndarray, task: str,
                        metric: str) -> list[dict[str, Any]]:
    """Permutation importance of every column of ``X`` (``sklearn.inspection.permutation_importance``).

    Args:
        section: the spec's ``drivers`` section (repeats, seed).
        pipeline: a fitted pipeline taking ``X``; X: feature frame, shape (n, k); y: labels, shape (n,).
        task: the estimator task (``binary_classification`` or ``regression``), for the scores.
        metric: a catalogue metric with ``fn`` and a direction (:func:`drivers_metric`).

    Returns:
        One dict per feature, most important first (ties by column order): ``feature``,
        ``importance`` (mean loss of ``metric`` when the column is shuffled, in the metric's units;
        positive means the model needs the feature, around 0 that it does not), ``std`` (over the
        repeats), ``rank`` (1-based).
    """
    from sklearn.inspection import permutation_importance

    info = METRICS[metric]
    sign = 1.0 if info.higher_is_better else -1.0

    def scorer(estimator, X_, y_) -> float:
        return sign * float(info.fn(np.asarray(y_), predict_scores(estimator, X_, task)))

    result = permutation_importance(pipeline, X, np.asarray(y), scoring=scorer, n_repeats=section.repeats,
                                    random_state=section.seed, n_jobs=1)
    order = sorted(range(X.shape[1]), key=lambda j: (-result.importances_mean[j], j))
    return [{"feature": str(X.columns[j]), "importance": float(result.importances_mean[j]),
             "std": float(result.importances_std[j]), "rank": r + 1} for r, j in enumerate(order)]


def linear_coefficients(pipeline) -> list[dict[str, Any]] | None:
    """The coefficients of a linear final estimator on its own inputs, largest magnitude first;
    None for a model without ``coef_`` (trees, networks).

    The dense preprocessing standardises numeric features (``StandardScaler`` after median
    imputation), so a numeric feature's coefficient is per standard deviation of the training
    rows: the standardised coefficient; a category's is its one-hot indicator's, against the
    model's intercept; ``missingindicator_<col>`` is the imputation's missing flag.

    Returns:
        One dict per model input: ``input`` (the preprocessed column's name), ``coefficient``
        (log-odds per unit of the input for logistic regression, target units for a linear
        regression), ``rank`` (1-based by absolute value).
    """
    final = pipeline.steps[-1][1]
    coef = getattr(final, "coef_", None)
    if coef is None:
        return None
    coef = np.asarray(coef, dtype=float).ravel()
    try:
        names = [str(n) for n in pipeline.steps[-2][1].get_feature_names_out()]
    except (AttributeError, ValueError):
        names = [f"x{j}" for j in range(len(coef))]
    if len(names) != len(coef):
        names = [f"x{j}" for j in range(len(coef))]
    order = sorted(range(len(coef)), key=lambda j: (-abs(coef[j]), j))
    return [{"input": names[j], "coefficient": float(coef[j]), "rank": r + 1} for r, j in enumerate(order)]


def _grid(values: pd.Series, categorical: bool, points: int) -> list[Any]:
    observed = values.dropna()
    if observed.empty:
        return []
    if categorical or not pd.api.types.is_numeric_dtype(observed):
        return [v.item() if hasattr(v, "item") else v for v in observed.value_counts().index[:points]]
    grid = np.unique(np.quantile(observed.to_numpy(dtype=float), np.linspace(0.05, 0.95, points)))
    if pd.api.types.is_integer_dtype(observed):
        grid = np.unique(np.round(grid))
    return [float(g) for g in grid]


def partial_dependence_curves(section: DriversSpec, pipeline, X: pd.DataFrame, task: str, features: list[str],
                              categorical: list[str]) -> list[dict[str, Any]]:
    """Partial dependence (Friedman 2001) of the model's score on each of ``features``: the mean
    score over the rows of ``X`` with the feature set to each grid point, every other feature as
    observed (the average of the individual conditional expectation curves).

    Returns:
        One dict per feature with a grid: ``feature``, ``kind`` (``numeric`` or ``categorical``),
        ``grid`` (the values, numeric quantiles 5 %..95 % or the most frequent levels),
        ``average_score`` (same length: mean probability of the event for classifiers, mean forecast
        for regression).
    """
    out = []
    for feature in features:
        is_cat = feature in categorical
        grid = _grid(X[feature], is_cat, section.grid_points)
        if not grid:
            continue
        averages = []
        for value in grid:
            varied = X.copy()
            if is_cat:
                varied[feature] = pd.Series([value] * len(varied), index=varied.index, dtype=X[feature].dtype)
            else:
                varied[feature] = value
            averages.append(float(np.mean(predict_scores(pipeline, varied, task))))
        out.append({"feature": feature, "kind": "categorical" if is_cat else "numeric", "grid": grid,
                    "average_score": averages})
    return out


def global_drivers(section: DriversSpec, pipeline, X: pd.DataFrame, y: np.ndarray, *, task: str,
                   primary_metric: str, categorical: list[str], in_sample: bool) -> dict[str, Any]:
    """The drivers record of a version (``metadata.json`` → ``drivers``).

    Args:
        section: the spec's ``drivers`` section.
        pipeline: the fitted pipeline of the selected candidate; X: its holdout rows' features
            (shape (n, k), the spec's feature columns), y: their labels (shape (n,)).
        task: the estimator task; primary_metric: the spec's gate metric (:func:`drivers_metric`).
        categorical: the categorical feature columns (their partial dependence is per level).
        in_sample: True when the pipeline was refitted on the holdout rows too (walk-forward):
            the figures then describe the fitted relationship, not out-of-sample loss.

    Returns:
        ``metric``, ``rows`` (rows used), ``holdout_rows``, ``repeats``, ``seed``, ``in_sample``,
        ``permutation_importance`` (:func:`permutation_drivers`), ``coefficients`` (candidate name →
        :func:`linear_coefficients`, filled by :func:`explain_selected` for every linear candidate),
        ``partial_dependence``
        (:func:`partial_dependence_curves` of the ``partial_dependence_features`` most important).
    """
    rows = sample_rows(len(X), section)
    Xs = X.iloc[rows].reset_index(drop=True)
    ys = np.asarray(y)[rows]
    metric = drivers_metric(primary_metric, task)
    importance = permutation_drivers(section, pipeline, Xs, ys, task, metric)
    top = [d["feature"] for d in importance[: section.partial_dependence_features]]
    pd_rows = Xs.iloc[sample_rows(len(Xs), section.model_copy(update={"max_rows": min(section.max_rows, 1000)}))]
    return {
        "metric": metric, "rows": len(rows), "holdout_rows": len(X), "repeats": section.repeats,
        "seed": section.seed, "in_sample": bool(in_sample),
        "permutation_importance": importance,
        "coefficients": {},
        "partial_dependence": partial_dependence_curves(section, pipeline, pd_rows.reset_index(drop=True), task, top,
                                                        categorical),
    }


@step("explain-drivers")
def explain_selected(spec, evaluation, fitted: list, plan) -> dict[str, Any]:
    """The global drivers (:func:`global_drivers`) of the selected candidate of a training run
    on its holdout rows, measured as the spec's ``drivers`` section says.

    Args:
        spec: the model spec; evaluation: the holdout evaluation (``tasks.evaluate.HoldoutEvaluation``);
        fitted: the fitted candidates; plan: the split plan (a walk-forward plan refits the
            promoted model on the holdout rows: the drivers are then in-sample).

    Returns:
        The drivers record, or ``{"error": "<type>: <text>"}`` when they could not be measured
        (the run goes on; the card says so).
    """
    best = next(fc for fc in fitted if fc.spec.name == evaluation.best)
    X = evaluation.holdout[spec.feature_columns].reset_index(drop=True)
    try:
        record = global_drivers(spec.drivers, best.pipeline, X, evaluation.y, task=spec.estimator_task,
                                primary_metric=spec.gate.primary_metric, categorical=list(spec.categorical_features),
                                in_sample=bool(plan.refit_final))
        for fc in fitted:  # every linear candidate's coefficients, selected or not: the validator's benchmark
            if fc.error is None and (coefs := linear_coefficients(fc.pipeline)) is not None:
                record["coefficients"][fc.spec.name] = coefs
        record["selected"] = best.spec.name
        return record
    except (ValueError, TypeError, KeyError) as err:  # evidence, not a decision: the card names the failure
        logger.warning("%s: drivers could not be measured: %s", spec.name, err)
        return {"error": f"{type(err).__name__}: {err}"}
