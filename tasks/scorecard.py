"""Scorecard points (the ``scorecard`` section of a spec): a probability of the event (bad)
restated on a points scale, for scoring output and the model card.

Scaling ("points to double the odds"; Siddiqi, *Credit Risk Scorecards: Developing and
Implementing Intelligent Credit Scoring*, Wiley 2006, "Scorecard scaling")::

    odds   = (1 − p) / p                         good:bad odds of an event probability p
    factor = pdo / ln 2
    offset = base_points − factor · ln(base_odds)
    points = offset + factor · ln(odds)          = offset − factor · logit(p)

so an application at ``base_odds`` scores ``base_points`` and every ``pdo`` points double the
odds. For a logistic model, ``logit(p) = b0 + Σ_j w_j z_j`` over its (standardised or indicator)
inputs, so a feature's points are ``(offset − factor · b0) / n − factor · Σ_{j of the feature} w_j z_j``
(the neutral offset split evenly over the ``n`` features, Siddiqi's convention) and a row's
feature points sum to its points. Reading: docs/interpretability.md (Scorecard points).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from models.spec.explain import ScorecardSpec
from models.estimators import input_features, logistic_parts

logger = logging.getLogger(__name__)

__all__ = ["PROBABILITY_EPSILON", "feature_points", "integer_points", "points_from_log_odds",
           "points_from_probability", "points_table", "scale_text", "scaling", "scorecard_card_section", "scorecard_of",
           "scorecard_points", "scorecard_record"]

PROBABILITY_EPSILON = 1e-9
"""Probabilities are clipped to ``[ε, 1 − ε]`` before the odds are taken: a model may return
exactly 0 or 1 (a logistic model beyond a log-odds of about ±37 in float64), whose odds are
infinite. With ε = 1e-9 the points stay within ``offset ± factor · 20.7`` (±1,496 points at a
pdo of 50); a probability inside the interval is never changed (log-odds within ±20.7)."""

_MISSING_LEVEL = "missing"
"""The value the dense preprocessing imputes for a missing category (``models.estimators``)."""

_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
"""The holdout quantiles of a numeric feature shown in the card's points table."""


def scaling(section: ScorecardSpec) -> tuple[float, float]:
    """``(factor, offset)`` of the scale: ``factor = pdo / ln 2`` (points per unit of ln odds),
    ``offset = base_points − factor · ln(base_odds)`` (the points at good:bad odds 1:1)."""
    factor = section.pdo / math.log(2.0)
    return factor, section.base_points - factor * math.log(section.base_odds)


def points_from_probability(section: ScorecardSpec, p: np.ndarray) -> np.ndarray:
    """Unrounded points of event probabilities ``p`` (shape (n,), in [0, 1]):
    ``offset + factor · ln((1 − p) / p)``, with ``p`` clipped to ``[ε, 1 − ε]``
    (:data:`PROBABILITY_EPSILON`). More points, less risk. NaN stays NaN.

    Raises:
        ValueError: a probability outside [0, 1].
    """
    p = np.asarray(p, dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("scorecard points need probabilities in [0, 1]")
    factor, offset = scaling(section)
    q = np.clip(p, PROBABILITY_EPSILON, 1.0 - PROBABILITY_EPSILON)
    return offset + factor * (np.log1p(-q) - np.log(q))


def points_from_log_odds(section: ScorecardSpec, log_odds: np.ndarray) -> np.ndarray:
    """Unrounded points of the event's log-odds ``ln(p / (1 − p))`` (shape (n,)):
    ``offset − factor · log_odds`` (no clipping)."""
    factor, offset = scaling(section)
    return offset - factor * np.asarray(log_odds, dtype=float)


def integer_points(points: np.ndarray) -> np.ndarray:
    """Whole points, rounded half up (``floor(x + 0.5)``: 612.5 → 613), the rounding of a printed
    scorecard, rather than Python's and NumPy's round-half-to-even. Shape kept; int64.

    Raises:
        ValueError: a NaN or infinite value (it has no whole points).
    """
    points = np.asarray(points, dtype=float)
    if not np.all(np.isfinite(points)):
        raise ValueError("scorecard points of a missing or infinite score cannot be rounded")
    return np.floor(points + 0.5).astype(np.int64)


def scale_text(section: ScorecardSpec | None) -> str | None:
    """The scale in words (``"600 points at good:bad odds 19:1, 50 points to double the odds"``);
    None without a section."""
    if section is None:
        return None
    return (f"{section.base_points:g} points at good:bad odds {section.base_odds:g}:1, {section.pdo:g} points to "
            "double the odds")


def scorecard_points(section: ScorecardSpec, scores: np.ndarray) -> np.ndarray:
    """The ``points`` column of scoring output: :func:`integer_points` of
    :func:`points_from_probability` of the scores (event probabilities, shape (n,))."""
    return integer_points(points_from_probability(section, scores))


# --------------------------------------------------------------------------- per-feature points


def feature_points(section: ScorecardSpec, pipeline, X: pd.DataFrame) -> pd.DataFrame | None:
    """Each row's points per feature, for a logistic pipeline (``Pipeline([training_range,
    preprocess, model])`` as :func:`models.estimators.build_candidate` builds it).

    A feature's points are ``(offset − factor · b0) / n − factor · Σ_j w_j z_j`` over the model's
    inputs ``z_j`` from that feature (its standardised value and missing indicator, or its
    one-hot indicators), ``b0`` the intercept, ``n`` the number of features: the row's points
    sum to ``offset − factor · logit(p)``, its (unrounded) points.

    Args:
        section: the spec's ``scorecard`` section; pipeline: a fitted pipeline; X: rows × the
            model's feature columns (shape (n, k)).

    Returns:
        A frame of shape (n, k), columns those of ``X``, index ``X``'s, in points (unrounded);
        None when the final estimator is not a binary logistic regression on a column
        transformer (the points of other models are not a sum over features).

    Raises:
        ValueError: the preprocessing's outputs cannot be traced to the features.
    """
    parts = logistic_parts(pipeline)
    if parts is None:
        return None
    prep, model = parts
    factor, offset = scaling(section)
    Z = np.asarray(pipeline[:-1].transform(X), dtype=float)
    coef = np.asarray(model.coef_, dtype=float).ravel()
    owners = np.asarray(input_features(prep), dtype=object)
    features = list(X.columns)
    share = (offset - factor * float(np.ravel(model.intercept_)[0])) / len(features)
    out = {}
    for f in features:
        mask = owners == f
        out[f] = share - factor * (Z[:, mask] @ coef[mask] if mask.any() else np.zeros(len(X)))
    return pd.DataFrame(out, index=X.index)


def _representatives(X: pd.DataFrame, feature: str, categorical: bool, prep) -> list[tuple[str, Any]]:
    """``(label, value)`` pairs shown for a feature: the levels the model knows (categorical),
    or holdout quantiles 5 %..95 % (numeric), and ``(missing)`` when the model has a missing
    indicator or level for it. A numeric feature whose holdout values are all whole numbers (a
    count such as dependants) is shown at values it takes: its quantiles by the inverted empirical
    distribution (``numpy.quantile(method="inverted_cdf")``, Hyndman & Fan type 1), not
    interpolated ones such as 0.25 dependants."""
    if categorical:
        for name, trans, cols in prep.transformers_:
            onehot = dict(getattr(trans, "steps", [])).get("onehot")
            if onehot is not None and feature in list(cols):
                levels = onehot.categories_[list(cols).index(feature)]
                return [("(missing)", None) if lv == _MISSING_LEVEL else (str(lv), lv) for lv in levels]
        return []
    values = pd.to_numeric(X[feature], errors="coerce").dropna().to_numpy(dtype=float)
    pairs: list[tuple[str, Any]] = []
    if len(values):
        whole = bool(np.all(values == np.round(values)))
        qs = np.quantile(values, _QUANTILES, method="inverted_cdf" if whole else "linear")
        seen = set()
        for q, v in zip(_QUANTILES, qs):
            if v not in seen:
                seen.add(v)
                pairs.append((f"{v:.6g} (holdout {q:.0%} quantile)", float(v)))
    if f"missingindicator_{feature}" in {str(n) for n in prep.get_feature_names_out()}:
        pairs.append(("(missing)", np.nan))
    return pairs


def points_table(section: ScorecardSpec, pipeline, X: pd.DataFrame, categorical: list[str]) -> dict[str, Any] | None:
    """The card's points table of a logistic pipeline: per feature, its points at representative
    values (:func:`feature_points` of ``X``'s first row with only that feature changed; a
    feature's points depend on its own value alone).

    Args:
        X: the holdout rows × feature columns (quantiles of numeric features are taken on them).
        categorical: the categorical feature columns.

    Returns:
        ``{"share": (offset − factor · b0) / n, "features": [{"feature", "kind", "coefficients"
        (the model inputs of the feature → coefficient), "rows": [{"value", "points"}]}]}``; None
        for a model that is not logistic (:func:`feature_points`).
    """
    parts = logistic_parts(pipeline)
    if parts is None or len(X) == 0:
        return None
    prep, model = parts
    factor, offset = scaling(section)
    names = [str(n) for n in prep.get_feature_names_out()]
    owners = input_features(prep)
    coef = np.asarray(model.coef_, dtype=float).ravel()
    features = []
    for f in X.columns:
        is_cat = f in categorical
        pairs = _representatives(X, f, is_cat, prep)
        rows = []
        if pairs:
            probe = pd.concat([X.iloc[[0]]] * len(pairs), ignore_index=True)
            values = [v for _, v in pairs]
            probe[f] = pd.Series(values, dtype=object) if is_cat else pd.Series(values, dtype=float)
            pts = feature_points(section, pipeline, probe)[f].to_numpy()
            rows = [{"value": label, "points": float(p)} for (label, _), p in zip(pairs, pts)]
        features.append({"feature": str(f), "kind": "categorical" if is_cat else "numeric",
                         "coefficients": {n: float(c) for n, o, c in zip(names, owners, coef) if o == f},
                         "rows": rows})
    return {"share": (offset - factor * float(np.ravel(model.intercept_)[0])) / X.shape[1], "features": features}


def scorecard_record(section: ScorecardSpec, pipeline, X: pd.DataFrame, *, cutoff: float, cutoff_rule: str,
                     candidate: str, estimator: str, categorical: list[str]) -> dict[str, Any]:
    """The ``scorecard`` record of a version's metadata: the scale, the operating cut-off in
    points and the selected candidate's points table.

    Args:
        section: the spec's ``scorecard`` section; pipeline: the selected candidate's fitted
            pipeline; X: its holdout rows × feature columns.
        cutoff, cutoff_rule: the operating cut-off probability and how it was chosen
            (:func:`tasks.fairness.operating_cutoff`); candidate, estimator: the selected candidate.
        categorical: the categorical feature columns.

    Returns:
        ``{"base_points", "base_odds", "pdo", "factor", "offset", "epsilon", "rounding",
        "cutoff": {"probability", "points" (unrounded), "whole_points", "rule"}, "candidate",
        "estimator", "table" (:func:`points_table`, None for a model that is not logistic),
        "table_note" (why there is no table, or None)}``.
    """
    factor, offset = scaling(section)
    cut = float(points_from_probability(section, np.array([cutoff]))[0])
    table, note = None, None
    try:
        table = points_table(section, pipeline, X, categorical)
        if table is None:
            note = (f"the per-feature points table needs an additive model (a logistic candidate); {candidate} "
                    f"({estimator}) is not one: its points come from its probability alone")
    except ValueError as err:  # evidence, not a decision: the card names the failure
        logger.warning("scorecard points table could not be built: %s", err)
        note = f"the per-feature points table could not be built: {err}"
    return {"base_points": section.base_points, "base_odds": section.base_odds, "pdo": section.pdo,
            "factor": factor, "offset": offset, "epsilon": PROBABILITY_EPSILON, "rounding": "half up to whole points",
            "cutoff": {"probability": float(cutoff), "points": cut, "whole_points": int(integer_points([cut])[0]),
                       "rule": cutoff_rule},
            "candidate": candidate, "estimator": estimator, "table": table, "table_note": note}


def scorecard_of(spec, evaluation, best) -> dict[str, Any] | None:
    """:func:`scorecard_record` of a training run's selected candidate (``best``, a
    ``tasks.train.FittedCandidate``) on its holdout (``evaluation``, a
    ``tasks.evaluate.HoldoutEvaluation``), at the operating cut-off of
    :func:`tasks.fairness.operating_cutoff`; None when the spec has no ``scorecard`` section."""
    if spec.scorecard is None:
        return None
    from tasks.fairness import operating_cutoff

    cutoff, rule = operating_cutoff(spec, evaluation.y, evaluation.scores)
    X = evaluation.holdout[spec.feature_columns].reset_index(drop=True)
    return scorecard_record(spec.scorecard, best.pipeline, X, cutoff=cutoff, cutoff_rule=rule,
                            candidate=best.spec.name, estimator=best.spec.estimator,
                            categorical=list(spec.categorical_features))


def scorecard_card_section(meta: dict[str, Any]) -> list[str]:
    """The model card's Scorecard points section (``meta["scorecard"]``, :func:`scorecard_record`);
    nothing when the version has no scorecard."""
    sc = meta.get("scorecard")
    if not sc:
        return []
    cut = sc["cutoff"]
    lines = ["## Scorecard points", "",
             (f"Scale: {sc['base_points']:g} points at good:bad odds {sc['base_odds']:g}:1 (event probability "
             f"{1 / (1 + sc['base_odds']):.2%}), {sc['pdo']:g} points to double the odds: points = "
             f"{sc['offset']:.4f} + {sc['factor']:.4f} · ln((1 − p) / p) (factor = pdo / ln 2, offset = base points − "
             f"factor · ln(base odds); Siddiqi 2006), p clipped to [{sc['epsilon']:g}, 1 − {sc['epsilon']:g}]. "
             "Scoring output carries them in the `points` column, rounded half up to whole points. More points, "
             "less risk."), "",
             (f"Operating cut-off: probability {cut['probability']:.4f} = **{cut['points']:.1f} points** "
             f"({cut['whole_points']} in whole points); {cut['rule']}. An application is approved when its "
             "probability is below the cut-off, that is when its unrounded points are above it."), ""]
    table = sc.get("table")
    if not table:
        return lines + [f"_Per-feature points: {sc.get('table_note') or 'not recorded'}._", ""]
    lines += [(f"Points of `{sc['candidate']}` ({sc['estimator']}, the selected candidate) per feature: each feature "
              f"gets the neutral share (offset − factor · intercept) / n = {table['share']:.2f} points, minus factor × "
              "coefficient × its standardised value (numeric; a missing value: its imputed median and missing "
              "indicator) or × its level's indicator (categorical; a level unseen in training gets the share alone). "
              "A row's feature points sum to its unrounded points."), "",
              "| feature | value | points |", "|---|---|---|"]
    for f in table["features"]:
        lines += [f"| `{f['feature']}` | {r['value']} | {r['points']:.1f} |" for r in f["rows"]]
    return lines + [""]
