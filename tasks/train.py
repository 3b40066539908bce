"""Fit candidates on training rows only, and re-score the champion on the same holdout."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from models.estimators import build_candidate, predict_scores, range_guard
from models.registry import ModelRegistry
from models.spec import CandidateSpec, ModelSpec
from tasks.split import SplitPlan
from tasks.step import step

log = logging.getLogger(__name__)


@dataclass
class FittedCandidate:
    """A candidate after training.

    Attributes:
        spec: the candidate's spec entry.
        pipeline: the fitted pipeline that would be promoted (None if fitting failed).
        holdout_scores: out-of-sample scores on ``plan.holdout`` rows, in that order.
        fit_seconds: wall time of all fits (folds and final refit).
        error: ``"ExceptionType: message"`` when fitting failed.
        details: facts of the fitted pipeline worth reporting: epochs trained, boosting
            iterations; ``constant_features`` (constant on its training rows, so left out of the
            model) and ``training_range`` (numeric feature → ``[min, max]`` on its training rows),
            from its :class:`models.estimators.TrainingRangeGuard`.
    """

    spec: CandidateSpec
    pipeline: Pipeline | None
    holdout_scores: np.ndarray | None
    fit_seconds: float
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def backtest(
    make: Callable[[], Pipeline], spec: ModelSpec, table: pd.DataFrame, plan: SplitPlan,
    features: list[str] | None = None,
) -> tuple[np.ndarray, Pipeline]:
    """Fit a fresh pipeline per fold on its training rows and score its test rows.

    Returns ``(scores on plan.holdout in order, the last fold's fitted pipeline)``.
    Preprocessing is part of the pipeline, so it is fitted on training rows only.
    ``features`` defaults to the spec's feature columns.
    """
    X = table[features or spec.feature_columns]
    y = table[spec.target_column]
    scores = []
    pipe = None
    for fold in plan.folds:
        pipe = make()
        pipe.fit(X.iloc[fold.train], y.iloc[fold.train])
        scores.append(predict_scores(pipe, X.iloc[fold.test], spec.estimator_task))
    return np.concatenate(scores), pipe


def linear_baseline_scores(spec: ModelSpec, table: pd.DataFrame, plan: SplitPlan) -> np.ndarray:
    """Holdout scores (``plan.holdout`` order) of a logistic regression with library defaults,
    backtested on the plan like a candidate: the linear reference of the leakage lift warning."""
    def make() -> Pipeline:
        return build_candidate("logistic_regression", spec.estimator_task, {}, spec.numeric_features,
                               spec.categorical_features)

    scores, _ = backtest(make, spec, table, plan)
    return scores


def _details(pipeline: Pipeline) -> dict[str, Any]:
    model = pipeline.steps[-1][1]
    out = {}
    for attr in ("n_epochs_", "n_iter_", "best_val_loss_"):
        value = getattr(model, attr, None)
        if value is not None:
            out[attr.rstrip("_")] = value.tolist() if hasattr(value, "tolist") else value
    guard = range_guard(pipeline)
    if guard is not None:
        out["constant_features"] = list(guard.constant_features_)
        out["training_range"] = {c: [low, high] for c, (low, high) in guard.training_range_.items()}
    return out


@step("fit-candidate", task_run_name="fit-{candidate.name}")
def fit_candidate(spec: ModelSpec, candidate: CandidateSpec, table: pd.DataFrame, plan: SplitPlan) -> FittedCandidate:
    """Train one candidate through the split plan; a failure is recorded, not raised.

    For a single holdout the promoted pipeline is the one evaluated. For walk-forward the
    backtest gives the holdout scores and the candidate is then refitted on every
    development row (``plan.final_train``) for production.
    """

    def make() -> Pipeline:
        return build_candidate(
            candidate.estimator, spec.estimator_task, candidate.params, spec.numeric_features, spec.categorical_features,
            spec.monotone_features,
        )

    started = time.perf_counter()
    try:
        scores, last = backtest(make, spec, table, plan)
        if plan.refit_final:
            final = make()
            final.fit(
                table[spec.feature_columns].iloc[plan.final_train],
                table[spec.target_column].iloc[plan.final_train],
            )
        else:
            final = last
        if not np.isfinite(scores).all():
            raise ValueError("the candidate produced non-finite scores on the holdout")
        return FittedCandidate(candidate, final, scores, time.perf_counter() - started, details=_details(final))
    except Exception as err:  # one failing candidate must not sink the others
        log.exception("candidate %s of %s failed", candidate.name, spec.name)
        return FittedCandidate(candidate, None, None, time.perf_counter() - started, error=f"{type(err).__name__}: {err}")


@dataclass
class ChampionScores:
    """The current champion re-scored on this run's holdout.

    Attributes:
        version: champion version number.
        scores: scores on ``plan.holdout`` rows (None if it could not be scored).
        method: ``"rescored"`` (the fitted champion predicted the holdout),
            ``"recipe_backtest"`` (its unfitted recipe was refitted fold by fold, because a
            walk-forward champion was fitted on rows that are test rows now), or
            ``"recipe_refit"`` (a single holdout whose rows differ from the champion's own —
            new data arrived, so a stratified split put rows the champion was trained on into
            this holdout: its recipe is refitted on this run's training rows, as the
            challengers were, instead of letting it predict rows it has seen).
        same_holdout: True when the holdout has the fingerprint recorded with the champion.
        error: why it could not be scored.
    """

    version: int
    scores: np.ndarray | None
    method: str
    same_holdout: bool | None = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def score_champion(
    spec: ModelSpec, registry: ModelRegistry, table: pd.DataFrame, plan: SplitPlan, holdout_sha256: str
) -> ChampionScores | None:
    """Score the champion on the same holdout as the challengers; None when there is none.

    The champion's files are hash-checked before loading. Missing feature columns or an
    integrity failure are returned as ``error`` (the gate then fails closed).
    """
    version = registry.champion()
    if version is None:
        return None
    method = "recipe_backtest" if plan.refit_final else "rescored"
    try:
        pipeline, version, metadata = registry.load_model(version)
    except Exception as err:
        return ChampionScores(version, None, method, error=f"{type(err).__name__}: {err}")
    recorded = metadata.get("holdout", {}).get("sha256")
    same = None if recorded is None else recorded == holdout_sha256
    if not plan.refit_final and same is False:
        method = "recipe_refit"
    try:
        needed = metadata.get("features", spec.feature_columns)
        missing = [c for c in needed if c not in table.columns]
        if missing:
            raise ValueError(f"the champion needs column(s) {missing} that this run's data does not have; if the "
                             f"spec dropped them on purpose, retire it: finml registry retire {spec.name} --reason …")
        if method != "rescored":  # a single holdout's plan has one fold: its training rows, this holdout
            scores, _ = backtest(lambda: clone(pipeline), spec, table, plan, features=needed)
        else:
            scores = predict_scores(pipeline, table[needed].iloc[plan.holdout], spec.estimator_task)
        return ChampionScores(version, np.asarray(scores, dtype=float), method, same, metadata=metadata)
    except Exception as err:
        return ChampionScores(version, None, method, same, error=f"{type(err).__name__}: {err}", metadata=metadata)
