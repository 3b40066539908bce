"""Leakage guards, run on the development data before any candidate is fitted: a single-feature
screen (ROC AUC for classifiers, Spearman correlation for regression), a point-in-time check of
the feature builders, and a count of holdout rows duplicating training rows. What each guard
measures, its limits and why: docs/data-quality.md (leakage guards).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.errors import DataError
from models.spec import ModelSpec
from tasks.step import step


class LeakageError(DataError):
    """Probable target leakage: the message names the columns and the evidence."""

    def __init__(self, message: str, columns: list[str]):
        super().__init__(message)
        self.columns = columns


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
        raise LeakageError(
            f"{spec.name}: probable target leakage: {detail} on the training rows alone; a feature this "
            "predictive is usually derived from the outcome. Remove it, or mark it role 'excluded' with a reason.",
            [s["column"] for s in flagged],
        )
    return screen


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
    time_col = spec.time_column
    ordered = raw.sort_values(time_col, kind="stable").reset_index(drop=True)
    full = table.set_index(time_col)
    bad: dict[str, str] = {}
    for share in cuts:
        cut = int(len(ordered) * share)
        if cut < 50:
            continue
        partial = builder.build(ordered.iloc[:cut], require_target=False).set_index(time_col)
        common = partial.index.intersection(full.index)
        for col in builder.feature_names:
            a = partial.loc[common, col].to_numpy(dtype=float)
            b = full.loc[common, col].to_numpy(dtype=float)
            if not np.allclose(a, b, rtol=1e-12, atol=1e-12, equal_nan=True):
                bad.setdefault(col, str(pd.Timestamp(ordered[time_col].iloc[cut - 1]).date()))
    if bad:
        detail = ", ".join(f"{c!r} (changed before the cut at {d})" for c, d in bad.items())
        raise LeakageError(f"{spec.name}: features use data after their own date: {detail}", list(bad))
    return {"checked": True, "cuts": list(cuts), "features": list(builder.feature_names)}


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
    """Single-feature screen on the first fold's training rows, point-in-time check, duplicates.

    Raises:
        LeakageError: a flagged feature or a feature that looks ahead (named).
    """
    screen = check_single_feature_leakage(spec, table, plan.folds[0].train)
    pit = check_point_in_time(spec, raw_development, table)
    return {"single_feature_screen": screen, "point_in_time": pit, "duplicates": duplicate_rows(spec, table, plan)}
