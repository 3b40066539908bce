"""Leakage guards, run on the development data before any candidate is fitted: a single-feature
screen (ROC AUC for classifiers, Spearman correlation for regression), a missingness screen (the
ROC AUC of "feature is missing" alone), a refusal of id-like numeric features, a point-in-time
check of the feature builders, and a count of holdout rows duplicating training rows; after the
candidates are evaluated, a warning when the selected model's ROC AUC is far above the best
single feature's and a linear baseline's. What each guard measures, its limits and why:
docs/data-quality.md (leakage guards).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from models.errors import LeakageError
from models.spec import ModelSpec
from tasks.step import step
from tasks.time_axis import point_text

log = logging.getLogger(__name__)


RAISE_ONLY_WITH_REASON = "raise it only with a documented reason"
"""How a leakage message says a limit may be changed."""


def setting_hint(setting: str, limit: float | None = None, change: str = RAISE_ONLY_WITH_REASON) -> str:
    """The sentence a leakage message ends with: the dotted spec setting that controls the stop and
    how to change it, e.g. ``"(limit 0.95: leakage.max_single_feature_auc in the spec; raise it
    only with a documented reason)"``."""
    value = "" if limit is None else f"limit {limit:g}: "
    return f"({value}{setting} in the spec; {change})"


def _orientation_free_auc(y: np.ndarray, x: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2 or len(np.unique(x)) < 2:
        return None
    auc = float(roc_auc_score(y, x))
    return max(auc, 1.0 - auc)


def out_of_fold_event_rate(values: pd.Series, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Each row's category event rate among the rows of the other folds (target encoding out of
    fold, as in Micci-Barreca, "A preprocessing scheme for high-cardinality categorical
    attributes", SIGKDD Explorations 3(1), 2001, used here for screening only).

    Args:
        values: the categorical column, shape (n,); missing values form a category of their own.
        y: 0/1 labels, shape (n,).
        folds: number of folds (rows are assigned by a seeded permutation).

    Returns:
        Rates in [0, 1], shape (n,); a category absent from the other folds gets their overall rate.
    """
    keys = pd.Series(values.astype(object).where(values.notna(), "(missing)").to_numpy(), dtype=object)
    codes, _ = pd.factorize(keys)
    n = len(codes)
    fold = np.random.default_rng(seed).permutation(n) % max(2, folds)
    n_cat = int(codes.max()) + 1 if n else 0
    rows_all = np.bincount(codes, minlength=n_cat)
    events_all = np.bincount(codes, weights=y, minlength=n_cat)
    out = np.empty(n, dtype=float)
    for k in range(max(2, folds)):
        inside = fold == k
        rows_k = rows_all - np.bincount(codes[inside], minlength=n_cat)
        events_k = events_all - np.bincount(codes[inside], weights=y[inside], minlength=n_cat)
        outside = n - int(inside.sum())
        prior = (float(y.sum()) - float(y[inside].sum())) / outside if outside else 0.5
        rate = np.where(rows_k > 0, events_k / np.maximum(rows_k, 1), prior)
        out[inside] = rate[codes[inside]]
    return out


def single_feature_screen(spec: ModelSpec, table: pd.DataFrame, train_rows: np.ndarray) -> list[dict[str, Any]]:
    """The screening statistic of every feature on the training rows (no exception raised here).

    Returns one dict per feature: ``column``, ``statistic`` (``roc_auc`` or ``abs_spearman``),
    ``value`` (None when undefined, e.g. a constant column), ``limit``, ``flagged``.
    """
    rows = table.iloc[train_rows]
    y = rows[spec.target_column].to_numpy(dtype=float)
    out = []
    for col in spec.feature_columns:
        values = rows[col]
        if spec.is_classifier:
            if col in spec.categorical_features:
                x = out_of_fold_event_rate(values, y)
                ok = np.ones(len(x), dtype=bool)
            else:
                x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
                ok = np.isfinite(x)
            value = _orientation_free_auc(y[ok], x[ok]) if ok.sum() > 10 else None
            limit, statistic = spec.leakage.max_single_feature_auc, "roc_auc"
        else:
            x = pd.to_numeric(values, errors="coerce")
            ok = x.notna().to_numpy()
            value = None
            if ok.sum() > 10 and x[ok].nunique() > 1:
                value = abs(float(pd.Series(y[ok]).corr(pd.Series(x[ok].to_numpy()), method="spearman")))
            limit, statistic = spec.leakage.max_abs_correlation, "abs_spearman"
        out.append({"column": col, "statistic": statistic, "value": value, "limit": limit,
                    "flagged": value is not None and value > limit})
    return out


def check_single_feature_leakage(spec: ModelSpec, table: pd.DataFrame, train_rows: np.ndarray) -> list[dict[str, Any]]:
    """Run the screen and stop on a flagged feature.

    Raises:
        LeakageError: naming every flagged column with its statistic.
    """
    screen = single_feature_screen(spec, table, train_rows)
    flagged = [s for s in screen if s["flagged"]]
    if flagged:
        detail = ", ".join(f"{s['column']!r} ({s['statistic']} {s['value']:.4f} > {s['limit']:g})" for s in flagged)
        setting = "leakage.max_single_feature_auc" if spec.is_classifier else "leakage.max_abs_correlation"
        raise LeakageError(
            f"{spec.name}: probable target leakage: {detail} on the training rows alone; a feature this "
            "predictive is usually derived from the outcome. Remove it, or mark it role 'excluded' with a reason "
            + setting_hint(setting, flagged[0]["limit"]),
            [s["column"] for s in flagged], setting,
        )
    return screen


def missingness_screen(spec: ModelSpec, table: pd.DataFrame, train_rows: np.ndarray) -> list[dict[str, Any]]:
    """The ROC AUC of each feature's missing-value indicator against the target, on the training rows
    (classifiers; an empty list for regression).

    For a 0/1 indicator the orientation-free ROC AUC is ``0.5 + |m1 - m0| / 2``, with ``m1`` and
    ``m0`` the missing shares among events and non-events: a fee recorded for 60 % of defaults
    and no other row scores 0.80. Only features with both missing and present values on the
    training rows are listed.

    Returns:
        One dict per such feature: ``column``, ``missing_share``, ``value`` (the ROC AUC),
        ``limit`` (``leakage.max_missingness_auc``), ``flagged``.
    """
    if not spec.is_classifier:
        return []
    rows = table.iloc[train_rows]
    y = rows[spec.target_column].to_numpy(dtype=float)
    limit = spec.leakage.max_missingness_auc
    out = []
    for col in spec.feature_columns:
        missing = rows[col].isna().to_numpy()
        if not 0 < missing.sum() < len(missing):
            continue
        value = _orientation_free_auc(y, missing.astype(float))
        out.append({"column": col, "missing_share": float(missing.mean()), "value": value, "limit": limit,
                    "flagged": value is not None and value > limit})
    return out


def check_missingness_leakage(spec: ModelSpec, table: pd.DataFrame, train_rows: np.ndarray) -> list[dict[str, Any]]:
    """Run :func:`missingness_screen` and stop on a flagged feature.

    Raises:
        LeakageError: naming every feature whose presence alone predicts the target above the limit.
    """
    screen = missingness_screen(spec, table, train_rows)
    flagged = [s for s in screen if s["flagged"]]
    if flagged:
        detail = ", ".join(f"{s['column']!r} (ROC AUC of 'is missing' {s['value']:.4f} > {s['limit']:g}, "
                           f"missing on {s['missing_share']:.1%} of the rows)" for s in flagged)
        raise LeakageError(
            f"{spec.name}: probable target leakage through missingness: {detail} on the training rows alone; a "
            "value recorded mostly for one class (a fee charged after a default) tells the outcome by being there. "
            "Remove it, or mark it role 'excluded' with a reason "
            + setting_hint("leakage.max_missingness_auc", flagged[0]["limit"],
                           "raise it only with a documented reason that this missingness is known at decision time"),
            [s["column"] for s in flagged], "leakage.max_missingness_auc",
        )
    return screen


def id_like_features(spec: ModelSpec, table: pd.DataFrame, min_rows: int = 20) -> list[str]:
    """Numeric features unique on every row and monotone with row order (an id or a row counter
    declared as a feature), on the development table in its row order.

    A column with a missing value, or with fewer than ``min_rows`` rows, is never id-like.
    """
    out = []
    if len(table) < min_rows:
        return out
    for col in spec.numeric_features:
        values = pd.to_numeric(table[col], errors="coerce")
        if values.isna().any() or values.nunique() != len(values):
            continue
        if values.is_monotonic_increasing or values.is_monotonic_decreasing:
            out.append(col)
    return out


def check_id_like_features(spec: ModelSpec, table: pd.DataFrame) -> list[str]:
    """Refuse id-like numeric features (:func:`id_like_features`).

    Raises:
        LeakageError: naming each one.
    """
    found = id_like_features(spec, table)
    if found:
        raise LeakageError(
            f"{spec.name}: feature(s) {found} take a different value on every row and grow (or shrink) with the "
            "row order: an identifier or a row counter declared as a feature, which lets a model learn the row's "
            "position (its date) rather than the applicant. Declare it role 'id' (or 'excluded' with a reason) "
            f"under columns in the spec (columns.{found[0]}.role); no limit controls this check.",
            found,
        )
    return found


def model_lift_check(spec: ModelSpec, screen: list[dict[str, Any]], model_auc: float | None,
                     linear_auc: float | None) -> dict[str, Any] | None:
    """Whether the selected model's holdout ROC AUC is far above what a single feature and a
    linear baseline reach (a warning, never a refusal). Classifiers only (None otherwise).

    A leak that needs a combination of features (or a non-linear one) passes the single-feature
    screen; a model far better than both simple references is the symptom left.

    Args:
        screen: :func:`single_feature_screen`'s rows (training rows).
        model_auc: the selected candidate's holdout ROC AUC; linear_auc: the linear baseline's
            (logistic regression) holdout ROC AUC; either None when unknown.

    Returns:
        ``model_auc``, ``best_single_feature`` (column), ``best_single_feature_auc``,
        ``linear_auc``, ``lift`` (model − the better of the two references), ``limit``
        (``leakage.max_auc_lift``) and ``warning`` (a sentence, or None).
    """
    if not spec.is_classifier:
        return None
    rated = [s for s in screen if s.get("statistic") == "roc_auc" and s.get("value") is not None]
    best = max(rated, key=lambda s: s["value"], default=None)
    refs = [v for v in (best["value"] if best else None, linear_auc) if v is not None]
    limit = spec.leakage.max_auc_lift
    lift = model_auc - max(refs) if model_auc is not None and refs else None
    warning = None
    if lift is not None and lift > limit:
        warning = (f"the selected model's holdout ROC AUC {model_auc:.4f} is {lift:.4f} above the better of the best "
                   f"single feature ({best['column'] if best else '-'}: {_fmt_auc(best['value'] if best else None)}) "
                   f"and the linear baseline ({_fmt_auc(linear_auc)}), more than {limit:g} (leakage.max_auc_lift): look for "
                   "a leak that combines features before trusting it")
    return {"model_auc": model_auc, "best_single_feature": best["column"] if best else None,
            "best_single_feature_auc": best["value"] if best else None, "linear_auc": linear_auc,
            "lift": lift, "limit": limit, "warning": warning}


def _fmt_auc(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def check_point_in_time(spec: ModelSpec, raw: pd.DataFrame, table: pd.DataFrame, cuts=(0.5, 0.75, 0.95)) -> dict[str, Any]:
    """Rebuild the features from raw rows cut at several dates and compare (feature builders only).

    Args:
        raw: the development raw rows (time column parsed); table: their full build.
        cuts: where to cut, as shares of the raw rows.

    Raises:
        LeakageError: naming each feature whose value before a cut changed when later rows
            were removed.
    """
    builder = spec.builder
    if builder is None or not spec.leakage.point_in_time_check:
        return {"checked": False}
    time_col = spec.time_axis
    ordered = raw.sort_values(time_col, kind="stable").reset_index(drop=True)
    full = table.set_index(time_col)
    bad: dict[str, str] = {}
    for share in cuts:
        cut = int(len(ordered) * share)
        if cut < 50:
            continue
        partial = builder.build(ordered.iloc[:cut], require_target=False).set_index(time_col)
        common = partial.index.intersection(full.index)
        for col in builder.built_feature_names:  # extra_features are the row's own values
            a = partial.loc[common, col].to_numpy(dtype=float)
            b = full.loc[common, col].to_numpy(dtype=float)
            if not np.allclose(a, b, rtol=1e-12, atol=1e-12, equal_nan=True):
                bad.setdefault(col, point_text(ordered[time_col].iloc[cut - 1], spec.time_kind))
    if bad:
        detail = ", ".join(f"{c!r} (changed before the cut at {d})" for c, d in bad.items())
        raise LeakageError(
            f"{spec.name}: features use data after their own date: {detail}; a feature builder must use only rows "
            "up to each row's own date "
            + setting_hint("leakage.point_in_time_check", None,
                           "turn it off only with a documented reason; the builder is the thing to fix"),
            list(bad), "leakage.point_in_time_check",
        )
    return {"checked": True, "cuts": list(cuts), "features": list(builder.built_feature_names)}


def duplicate_rows(spec: ModelSpec, table: pd.DataFrame, plan) -> dict[str, Any]:
    """Test rows whose features and label equal a row of *their own fold's* training rows
    (reported, not raised).

    Each fold's test block is compared with that fold's training rows only: in a walk-forward
    backtest a later fold trains on the earlier test blocks, so pooling the folds' training rows
    would count most holdout rows as duplicates of themselves.

    Args:
        table: the modelling table; plan: its split plan (``tasks.split.SplitPlan``).

    Returns:
        ``holdout_rows``, ``duplicated_in_training`` (sum over the folds), ``share`` (of the
        holdout rows, 0.0 for an empty holdout) and ``per_fold``: one dict per fold with
        ``test_rows`` and ``duplicated_in_training``.
    """
    cols = spec.feature_columns + [spec.target_column]
    hashes = pd.util.hash_pandas_object(table[cols], index=False).to_numpy()
    per_fold = []
    for fold in plan.folds:
        dup = int(np.isin(hashes[fold.test], hashes[fold.train]).sum())
        per_fold.append({"test_rows": len(fold.test), "duplicated_in_training": dup})
    rows = sum(f["test_rows"] for f in per_fold)
    dup = sum(f["duplicated_in_training"] for f in per_fold)
    return {"holdout_rows": rows, "duplicated_in_training": dup, "share": dup / rows if rows else 0.0,
            "per_fold": per_fold}


# --------------------------------------------------------------------------- Prefect tasks


@step("leakage-guards")
def leakage_guards(spec: ModelSpec, raw_development: pd.DataFrame, table: pd.DataFrame, plan) -> dict[str, Any]:
    """Id-like features, single-feature and missingness screens on the first fold's training rows,
    point-in-time check, duplicates.

    Raises:
        LeakageError: an id-like feature, a flagged feature (alone or by its missingness) or a
            feature that looks ahead (named).
    """
    check_id_like_features(spec, table)
    screen = check_single_feature_leakage(spec, table, plan.folds[0].train)
    missingness = check_missingness_leakage(spec, table, plan.folds[0].train)
    pit = check_point_in_time(spec, raw_development, table)
    return {"single_feature_screen": screen, "missingness_screen": missingness, "point_in_time": pit,
            "duplicates": duplicate_rows(spec, table, plan)}


@step("model-lift-check")
def model_lift_warning(spec: ModelSpec, leakage: dict[str, Any], evaluation, table: pd.DataFrame,
                       plan) -> dict[str, Any]:
    """The leakage record with ``model_lift`` added (:func:`model_lift_check`); logs its warning.

    The linear baseline is the best ``logistic_regression`` candidate's holdout ROC AUC, or,
    without one, a logistic regression backtested on the same plan
    (:func:`tasks.train.linear_baseline_scores`).
    """
    if not spec.is_classifier:
        return leakage
    from sklearn.metrics import roc_auc_score

    from tasks.train import linear_baseline_scores

    linear = [e.metrics.get("roc_auc") for e in evaluation.evaluations
              if e.estimator == "logistic_regression" and e.error is None and e.metrics.get("roc_auc") is not None]
    if linear:
        linear_auc = float(max(linear))
    else:
        scores = linear_baseline_scores(spec, table, plan)
        linear_auc = float(roc_auc_score(evaluation.y, scores)) if len(np.unique(evaluation.y)) == 2 else None
    lift = model_lift_check(spec, leakage.get("single_feature_screen", []), evaluation.metrics.get("roc_auc"),
                            linear_auc)
    if lift and lift["warning"]:
        log.warning("%s: %s", spec.name, lift["warning"])
    return {**leakage, "model_lift": lift}
