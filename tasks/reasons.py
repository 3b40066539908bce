"""Adverse-action reasons: for every application a version declines, the principal reasons, the
features that raise its risk most against a reference profile stored with the version (the
``reasons`` section of a spec, :class:`models.spec.explain.ReasonsSpec`).

At promotion, :func:`adverse_action_record` stores in ``metadata.json`` (``reasons``) the
operating cut-off, the reference profile (:func:`reference_profile`), each feature's reason text
and, for the model card, how often each candidate's top reason agrees with the logistic
candidate's. At scoring, :func:`principal_reasons` adds ``reason_i``, ``reason_i_text`` and
``reason_i_contribution`` columns. Method and sources (12 CFR 1002.9, its official commentary,
FCRA): docs/interpretability.md (adverse-action reasons).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from models.errors import RegistryError, UsageError
from models.estimators import input_features
from models.spec.explain import ReasonsSpec
from tasks.step import step

__all__ = ["MAX_REASONS", "ReasonCountError", "ReasonsUnavailableError", "adverse_action_record",
           "check_reason_count", "drop_unseen_categories", "explain_rows", "feature_contributions", "logistic_points", "principal_reasons",
           "rank_reasons", "reason_columns", "reason_features", "reasons_card_section", "reasons_summary",
           "reference_profile", "stored_reasons"]

logger = logging.getLogger(__name__)

MAX_REASONS = 5
"""Most reasons a row may get: Regulation B's commentary finds "more than four reasons is not
likely to be helpful" (comment 9(b)(2)-1); the FCRA adds a fifth key factor when it is the number
of inquiries (15 U.S.C. 1681g(f)(9))."""

_TASK = "binary_classification"


class ReasonCountError(UsageError):
    """The number of reasons asked for (``--reasons``) is not a whole number from 1 to 5."""


class ReasonsUnavailableError(RegistryError):
    """The version has no adverse-action record to score reasons with (another task, written before
    reasons were recorded, or its record could not be prepared at promotion)."""


def check_reason_count(k: Any, name: str = "--reasons") -> int:
    """The number of reasons asked for, checked: a whole number from 1 to :data:`MAX_REASONS`.

    Raises:
        ReasonCountError: naming ``name`` (the option or parameter) and the value given.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= MAX_REASONS:
        raise ReasonCountError(f"{name} {k!r}: give a whole number of reasons from 1 to {MAX_REASONS} (Regulation B's "
                               "commentary: more than four reasons is not likely to be helpful; the FCRA allows a fifth "
                               "when it is the number of inquiries)")
    return int(k)


def reason_columns(k: int) -> list[str]:
    """The output columns of ``k`` reasons, in order: ``reason_1``, ``reason_1_text``,
    ``reason_1_contribution``, ``reason_2``, …"""
    return [f"reason_{i}{suffix}" for i in range(1, k + 1) for suffix in ("", "_text", "_contribution")]


def _native(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _mode(values: pd.Series) -> Any:
    """The most frequent non-missing value (ties: the smallest by its text); None when all are missing."""
    counts = values.dropna().astype(object).value_counts()
    if counts.empty:
        return None
    top = counts[counts == counts.max()].index
    return _native(min(top, key=str))


def reference_profile(section: ReasonsSpec, X: pd.DataFrame, scores: np.ndarray, cutoff: float,
                      categorical: list[str]) -> dict[str, Any]:
    """The reference applicant the reasons compare with, from the holdout.

    Args:
        section: the spec's ``reasons`` section (``reference``, ``margin_rows``).
        X: holdout features, shape (n, m); scores: the version's event probabilities on them, (n,).
        cutoff: the operating cut-off (approved: score below it).
        categorical: the categorical features (their reference is the most frequent category).

    Returns:
        ``{"kind", "rows" (applicants averaged), "score_range" ([lowest, highest] score of them),
        "values": {feature: mean of the present values of a numeric feature, most frequent
        category of a categorical one (None when all are missing)}}``. ``passing_margin``: the
        ``margin_rows`` approved rows with the highest scores below the cut-off, those at or just
        above the minimum passing score (comment 9(b)(2)-5 of Regulation B); ``all``: every row.

    Raises:
        ValueError: no holdout row is approved at the cut-off (``passing_margin``).
    """
    scores = np.asarray(scores, dtype=float)
    if section.reference == "all":
        rows = np.arange(len(X))
    else:
        approved = np.flatnonzero(scores < cutoff)
        if approved.size == 0:
            raise ValueError(f"no holdout application is approved at the cut-off {cutoff:.4f}: no passing-margin "
                             "reference profile (use reasons.reference: all)")
        rows = approved[np.argsort(-scores[approved], kind="stable")[: section.margin_rows]]
    group = X.iloc[rows]
    values: dict[str, Any] = {}
    for feature in X.columns:
        if feature in categorical:
            values[feature] = _mode(group[feature])
        else:
            present = pd.to_numeric(group[feature], errors="coerce").dropna()
            values[feature] = float(present.mean()) if len(present) else None
    return {"kind": section.reference, "rows": len(rows),
            "score_range": [float(scores[rows].min()), float(scores[rows].max())], "values": values}


def _constant(value: Any, rows: int, numeric: bool) -> np.ndarray:
    if numeric:
        return np.full(rows, np.nan if value is None else float(value))
    out = np.empty(rows, dtype=object)
    out[:] = np.nan if value is None else value
    return out


def feature_contributions(pipeline, X: pd.DataFrame, values: dict[str, Any], features: list[str],
                          categorical: list[str], scores: np.ndarray | None = None) -> np.ndarray:
    """Each feature's contribution to each row's event probability against the reference.

    ``contribution[i, j] = score(x_i) − score(x_i with feature j set to values[j])``: positive when
    row i's value of feature j raises its risk above what the reference value would give. One
    prediction over all rows per feature (``len(features)`` calls in all), never one per row.

    Args:
        pipeline: the version's fitted pipeline; X: rows × the version's features (n, m).
        values: the reference profile's values (:func:`reference_profile`); features: the
            columns to vary, the result's column order; categorical: those set as categories.
        scores: the rows' scores when already computed (else predicted here).

    Returns:
        Shape (len(X), len(features)), on the probability scale.
    """
    from models.estimators import predict_scores

    base = predict_scores(pipeline, X, _TASK) if scores is None else np.asarray(scores, dtype=float)
    out = np.zeros((len(X), len(features)))
    if len(X) == 0:
        return out
    for j, feature in enumerate(features):
        varied = X.assign(**{feature: _constant(values.get(feature), len(X), feature not in categorical)})
        out[:, j] = base - predict_scores(pipeline, varied, _TASK)
    return out


def drop_unseen_categories(contributions: np.ndarray, pipeline, X: pd.DataFrame, features: list[str],
                           categorical: list[str]) -> np.ndarray:
    """Set to NaN, in place, the contribution of a categorical feature on each row whose category
    the pipeline never saw in training (:func:`models.estimators.unseen_category_mask`): so it is
    never a reason there.

    Why: the model scored such a row as having none of the known categories (all one-hot indicators
    zero), not its value; substituting the reference category then measures an encoding artefact,
    and Regulation B's commentary requires the reasons of a scoring system to relate to factors
    actually scored (comment 9(b)(2)-4). Scoring warns per such column
    (:func:`tasks.ranges.unseen_categories_report`).

    Args:
        contributions: shape (len(X), len(features)), :func:`feature_contributions`.

    Returns:
        ``contributions`` itself.
    """
    from models.estimators import unseen_category_mask

    for feature, mask in unseen_category_mask(pipeline, X, categorical).items():
        if feature in features:
            contributions[mask, features.index(feature)] = np.nan
    return contributions


def rank_reasons(contributions: np.ndarray, k: int, groups: list | np.ndarray | None = None,
                 floor: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` principal reasons of each row: the columns with the largest positive contribution.

    A factor that lowers the risk, or leaves it unchanged (contribution ≤ 0 or missing), is never a
    reason; nor one below ``floor``. Ties keep the column order (a stable sort): callers pass the
    columns in spec order. With ``groups`` (one label per column: its reason text), the reasons are
    distinct statements: a column whose group was already given on the row, at a larger or tied
    contribution, is skipped and the next distinct one taken (the statement stands once, at the
    rank, code and contribution of its largest contributor).

    Args:
        contributions: shape (n, m), e.g. :func:`feature_contributions`.
        groups: length m, or None (every column its own statement).
        floor: the smallest contribution that may be a reason (``reasons.min_contribution``).

    Returns:
        ``(index, value)``, both shape (n, k): the column of each reason (-1 where a row has fewer
        than ``k`` reasons) and its contribution (NaN there).
    """
    c = np.asarray(contributions, dtype=float)
    n, m = c.shape
    order = np.argsort(-np.where(np.isnan(c), -np.inf, c), axis=1, kind="stable")
    value = np.take_along_axis(c, order, axis=1)
    eligible = (value > 0) & (value >= floor)
    if groups is not None and m:
        code = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)[1].ravel()[order]
        for p in range(1, m):  # a statement already given further left on the row (sorted) is a repeat
            eligible[:, p] &= ~(code[:, :p] == code[:, p:p + 1]).any(axis=1)
    pick = np.argsort(~eligible, axis=1, kind="stable")[:, :k]  # the first k eligible, in rank order
    keep = np.take_along_axis(eligible, pick, axis=1)
    index = np.where(keep, np.take_along_axis(order, pick, axis=1), -1)
    value = np.where(keep, np.take_along_axis(value, pick, axis=1), np.nan)
    if index.shape[1] < k:
        pad = k - index.shape[1]
        index = np.hstack([index, np.full((n, pad), -1)])
        value = np.hstack([value, np.full((n, pad), np.nan)])
    return index, value


def principal_reasons(section: ReasonsSpec, pipeline, X: pd.DataFrame, scores: np.ndarray, stored: dict[str, Any],
                      k: int) -> pd.DataFrame:
    """The adverse-action columns of scored rows.

    Args:
        section: the ``reasons`` section of the spec stored with the version (``explain``).
        pipeline: the version's pipeline; X: the scored rows' features (n, m); scores: their
            event probabilities, shape (n,).
        stored: the version's ``reasons`` record (:func:`adverse_action_record`): ``cutoff``,
            ``reference.values``, ``features`` (the candidate reasons in spec column order: the
            tie-break), ``categorical``, ``texts``.
        k: reasons per row, 1..5 (:func:`check_reason_count`).

    Returns:
        n rows (index 0..n-1): ``declined`` (score at or above the cut-off), then per reason
        ``reason_i`` (the feature's name, its code), ``reason_i_text`` and ``reason_i_contribution``
        (the probability the factor adds against the reference, at least ``section.min_contribution``;
        one statement per text, :func:`rank_reasons`), filled for declined rows
        (every row with ``explain: all``), missing elsewhere and where a row has fewer reasons.
        Codes and texts are categoricals (Parquet stores them dictionary-encoded).

    Raises:
        ReasonCountError: ``k`` outside 1..5.
    """
    k = check_reason_count(k)
    scores = np.asarray(scores, dtype=float)
    features = list(stored["features"])
    declined = scores >= float(stored["cutoff"])
    rows = np.arange(len(X)) if section.explain == "all" else np.flatnonzero(declined)
    categorical = list(stored.get("categorical", []))
    contributions = feature_contributions(pipeline, X.iloc[rows], stored["reference"]["values"], features,
                                          categorical, scores[rows])
    drop_unseen_categories(contributions, pipeline, X.iloc[rows], features, categorical)
    texts = [stored["texts"].get(f, f) for f in features]
    index, value = rank_reasons(contributions, k, texts, section.min_contribution)
    text_levels = list(dict.fromkeys(texts))
    text_code = np.array([text_levels.index(t) for t in texts] + [-1])  # position -1 → missing
    out = pd.DataFrame({"declined": declined})
    for i in range(k):
        codes = np.full(len(X), -1)
        codes[rows] = index[:, i]
        contribution = np.full(len(X), np.nan)
        contribution[rows] = value[:, i]
        out[f"reason_{i + 1}"] = pd.Categorical.from_codes(codes, categories=features)
        out[f"reason_{i + 1}_text"] = pd.Categorical.from_codes(text_code[codes], categories=text_levels)
        out[f"reason_{i + 1}_contribution"] = contribution
    return out


def stored_reasons(metadata: dict[str, Any], model: str, version: int) -> dict[str, Any]:
    """The ``reasons`` record of a version's metadata, to score reasons with.

    Raises:
        ReasonsUnavailableError: naming the model and version, and why (no record: another task or a
            version promoted before reasons were recorded, so retrain; a record holding an error).
    """
    record = metadata.get("reasons")
    if not record:
        task = metadata.get("task")
        why = (f"its task is {task}; reasons are for binary_classification" if task != "binary_classification"
               else "it was promoted before adverse-action reasons were recorded; train a new version")
        raise ReasonsUnavailableError(f"{model} version {version} has no reference profile for adverse-action reasons "
                                      f"(--reasons): {why}")
    if record.get("error"):
        raise ReasonsUnavailableError(f"{model} version {version}: its adverse-action reasons could not be prepared at "
                                      f"promotion ({record['error']}); train a new version")
    return record


def reasons_summary(frame: pd.DataFrame, stored: dict[str, Any], k: int, explain: str) -> dict[str, Any]:
    """What the scoring result says about the reasons of :func:`principal_reasons`'s ``frame``:
    ``k``, ``explain``, ``cutoff``, ``reference`` (its kind), ``declined_rows``, ``explained_rows``,
    ``without_reason`` (declined rows where no feature alone raises the risk against the reference
    by the materiality floor: the decline comes from the features together) and
    ``approved_without_reason`` (with ``explain: all``: approved rows without a reason, whose
    features lower the risk or raise it only immaterially; 0 otherwise)."""
    declined = frame["declined"].to_numpy(dtype=bool)
    explained = declined if explain == "declined" else np.ones(len(frame), dtype=bool)
    none = frame["reason_1"].isna().to_numpy()
    return {"k": k, "explain": explain, "cutoff": float(stored["cutoff"]), "reference": stored["reference"]["kind"],
            "declined_rows": int(declined.sum()), "explained_rows": int(explained.sum()),
            "without_reason": int((declined & none).sum()),
            "approved_without_reason": int((explained & ~declined & none).sum())}


# --------------------------------------------------------------------------- the exact linear ranking


def logistic_points(pipeline, X: pd.DataFrame, values: dict[str, Any], features: list[str],
                    categorical: list[str]) -> np.ndarray:
    """The exact points-below-reference of a logistic pipeline: per row and feature, the log-odds
    the feature's value adds against the reference value, ``Σ coef · (input(value) − input(reference))``
    over the feature's inputs on the model's own scale (standardised numeric value and its missing
    indicator, one-hot categories).

    Args:
        pipeline: ``Pipeline([training_range, preprocess, model])`` with a linear ``model.coef_``;
        X: rows × features (n, m); values: the reference profile's values; features: result order;
        categorical: the categorical features.

    Returns:
        Shape (n, len(features)), in log-odds of the event; for the same rows, sorting it gives
        the ranking :func:`feature_contributions` must give (the logistic link is increasing).

    Raises:
        ValueError: the pipeline's final step has no coefficients, or its inputs cannot be mapped.
    """
    coef = getattr(pipeline.steps[-1][1], "coef_", None)
    if coef is None:
        raise ValueError("the final estimator has no coefficients: not a linear model")
    coef = np.asarray(coef, dtype=float).ravel()
    transform = pipeline[:-1]
    reference = pd.DataFrame({f: _constant(values.get(f), 1, f not in categorical) for f in X.columns})
    diff = (np.asarray(transform.transform(X), dtype=float)
            - np.asarray(transform.transform(reference), dtype=float)) * coef
    owners = input_features(pipeline.steps[-2][1])
    if len(owners) != len(coef):
        raise ValueError(f"cannot map the model's {len(coef)} inputs to its features ({len(owners)} found)")
    position = {f: j for j, f in enumerate(features)}
    out = np.zeros((len(X), len(features)))
    for i, owner in enumerate(owners):
        if owner in position:
            out[:, position[owner]] += diff[:, i]
    return out


# --------------------------------------------------------------------------- at promotion


def reason_features(spec) -> list[str]:
    """The features that may be reasons, in spec column order (the tie-break): the model's
    features only; protected, excluded and id columns never."""
    never = {c for c, s in spec.columns.items() if s.role in ("protected", "excluded", "id", "datetime")}
    position = {c: i for i, c in enumerate(spec.columns)}
    features = [f for f in spec.feature_columns if f not in never]
    return sorted(features, key=lambda f: (position.get(f, len(position)), spec.feature_columns.index(f)))


def _candidate_reasons(spec, pipeline, X: pd.DataFrame, y: np.ndarray, features: list[str]):
    from models.estimators import predict_scores
    from tasks.fairness import operating_cutoff

    scores = predict_scores(pipeline, X, _TASK)
    cutoff, rule = operating_cutoff(spec, y, scores)
    categorical = list(spec.categorical_features)
    profile = reference_profile(spec.reasons, X, scores, cutoff, categorical)
    declined = np.flatnonzero(scores >= cutoff)
    c = feature_contributions(pipeline, X.iloc[declined], profile["values"], features, categorical, scores[declined])
    drop_unseen_categories(c, pipeline, X.iloc[declined], features, categorical)
    return scores, cutoff, rule, profile, declined, c


@step("adverse-action-reasons")
def adverse_action_record(spec, evaluation, fitted: list, k: int | None = None) -> dict[str, Any] | None:
    """The ``reasons`` record of a version (``metadata.json``), measured on the holdout.

    The cut-off is :func:`tasks.fairness.operating_cutoff` on the selected pipeline's holdout
    scores (``fairness.cutoff`` / ``fairness.approval_rate`` / one minus the holdout event rate:
    the same rule, and for a model not refitted on the holdout the same value, as the card's
    fairness section); the reference profile is :func:`reference_profile` of the same rows.
    ``k``: the reasons per row the agreement is measured at (None: the spec's ``reasons.k``, else
    the advised 4).

    Returns:
        None for a task other than binary classification; else ``cutoff``, ``cutoff_rule``,
        ``reference`` (:func:`reference_profile`), ``features`` (reason candidates in spec column
        order), ``categorical``, ``texts`` (feature → reason text), ``holdout_rows``,
        ``holdout_declined``, and ``agreement``: ``exact`` (for a logistic candidate: declined
        holdout rows whose top-``k`` reasons equal the exact points ranking,
        :func:`logistic_points`), ``candidates`` (name → rows declined by it and the logistic
        candidate, and how many have the same top reason); or ``{"error": ...}`` when it could not
        be measured (the run goes on; scoring with reasons then refuses this version).
    """
    if spec.task != "binary_classification":
        return None
    k = k or spec.reasons.k or 4  # the agreement is measured at the number of reasons the spec gives
    best = next(fc for fc in fitted if fc.spec.name == evaluation.best)
    features = reason_features(spec)
    X = evaluation.holdout[spec.feature_columns].reset_index(drop=True)
    y = np.asarray(evaluation.y, dtype=float)
    try:
        _, cutoff, rule, profile, declined, _ = _candidate_reasons(spec, best.pipeline, X, y, features)
        record: dict[str, Any] = {
            "cutoff": cutoff, "cutoff_rule": rule, "reference": profile, "features": features,
            "categorical": [f for f in features if f in spec.categorical_features],
            "texts": {f: spec.reason_text(f) for f in features}, "holdout_rows": len(X),
            "holdout_declined": int(declined.size), "selected": best.spec.name,
            "agreement": _agreement(spec, fitted, X, y, features, k),
        }
        return record
    except (ValueError, TypeError, KeyError) as err:  # evidence, not a decision: the card names the failure
        logger.warning("%s: adverse-action reasons could not be prepared: %s", spec.name, err)
        return {"error": f"{type(err).__name__}: {err}"}


def _agreement(spec, fitted: list, X: pd.DataFrame, y: np.ndarray, features: list[str], k: int) -> dict[str, Any]:
    """How each candidate's reasons compare with the logistic candidate's on the holdout."""
    usable = [fc for fc in fitted if fc.error is None]
    logistic = next((fc for fc in usable if fc.spec.estimator == "logistic_regression"), None)
    if logistic is None:
        return {"baseline": None, "exact": None, "candidates": {}}
    top: dict[str, pd.Series] = {}
    exact = None
    texts = [spec.reason_text(f) for f in features]
    floor = spec.reasons.min_contribution
    for fc in usable:
        _, _, _, profile, declined, c = _candidate_reasons(spec, fc.pipeline, X, y, features)
        index, _ = rank_reasons(c, k, texts, floor)
        top[fc.spec.name] = pd.Series(index[:, 0], index=declined)
        if fc is logistic:  # the exact ranking under the same rules: distinct texts; unseen categories and
            # factors below the materiality floor (a probability: compared on the contribution) left out
            points = logistic_points(fc.pipeline, X.iloc[declined], profile["values"], features,
                                     list(spec.categorical_features))
            points[np.isnan(c) | (c < floor)] = np.nan
            exact_index, _ = rank_reasons(points, k, texts)
            exact = {"rows": int(declined.size), "agreeing": int(np.all(exact_index == index, axis=1).sum()), "k": k}
    base = top[logistic.spec.name]
    candidates = {}
    for name, series in top.items():
        if name == logistic.spec.name:
            continue
        both = series.index.intersection(base.index)
        a, b = series.loc[both].to_numpy(), base.loc[both].to_numpy()
        with_reason = (a >= 0) & (b >= 0)
        candidates[name] = {"rows": int(with_reason.sum()), "agreeing": int((a[with_reason] == b[with_reason]).sum())}
    return {"baseline": logistic.spec.name, "exact": exact, "candidates": candidates}


def reasons_card_section(meta: dict[str, Any]) -> list[str]:
    """The model card's Adverse-action reasons section (``meta["reasons"]``); nothing for a
    version without it (other tasks, or written before reasons were recorded)."""
    record = meta.get("reasons")
    if not record:
        return []
    lines = ["## Adverse-action reasons", ""]
    if record.get("error"):
        return lines + [f"_Could not be prepared: {record['error']}; scoring with --reasons refuses this version._", ""]
    ref = record["reference"]
    who = ("the approved holdout applicants nearest the cut-off (passing margin)" if ref["kind"] == "passing_margin"
           else "all holdout applicants")
    lines += [(f"Declined: score at or above {record['cutoff']:.4f} ({record['cutoff_rule']}); "
               f"{record['holdout_declined']} of {record['holdout_rows']} holdout rows. `finml score --reasons K` names, "
               "for each declined row, the features whose value raises its probability most against a reference "
               f"profile: {who}, {ref['rows']} rows with scores {ref['score_range'][0]:.4f}–{ref['score_range'][1]:.4f}."),
              "", "| feature | reference value | reason text |", "|---|---|---|"]
    for f in record["features"]:
        v = ref["values"].get(f)
        shown = "missing" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
        lines.append(f"| `{f}` | {shown} | {record['texts'][f]} |")
    agreement = record.get("agreement") or {}
    if agreement.get("baseline"):
        lines += ["", f"Agreement with the logistic candidate `{agreement['baseline']}` on the holdout:", ""]
        exact = agreement.get("exact")
        if exact:
            lines.append(f"- `{agreement['baseline']}`: its top {exact['k']} reasons (k = reasons.k of the spec, "
                         "else the advised 4) equal the exact points-below-reference ranking (coefficient × input "
                         f"difference) on {exact['agreeing']} of {exact['rows']} declined rows.")
        for name, a in agreement["candidates"].items():
            share = f"{a['agreeing'] / a['rows']:.1%}" if a["rows"] else "n/a"
            lines.append(f"- `{name}`: same top reason on {a['agreeing']} of {a['rows']} rows both decline ({share}).")
    return lines + [""]


@step("adverse-action-reasons-of-batch")
def explain_rows(section: ReasonsSpec, pipeline, X: pd.DataFrame, scores: np.ndarray, stored: dict[str, Any],
                 k: int) -> pd.DataFrame:
    """:func:`principal_reasons` as a step of the scoring flow."""
    return principal_reasons(section, pipeline, X, scores, stored, k)
