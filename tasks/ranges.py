"""Values outside a version's training range, per numeric feature: counted at scoring and at
monitoring, where a material share is a data-quality alarm (docs/data-quality.md); and, at scoring,
categories the version never saw in training, per categorical feature."""

from __future__ import annotations

from typing import Any

import pandas as pd

from models.spec import DriftSpec
from tasks.step import step


def out_of_range_report(pipeline, table: pd.DataFrame, share_limit: float, alpha: float) -> dict[str, Any] | None:
    """Per numeric feature, the batch rows whose value lies outside the version's training range.

    The range is the one the pipeline's :class:`models.estimators.TrainingRangeGuard` kept on its
    training rows. A feature's share is *material* when it is above ``share_limit`` and beyond
    sampling noise: for a continuous feature, a new draw from the training distribution falls
    outside the min and max of ``n`` training values with probability ``2 / (n + 1)`` (the
    order statistics of a sample are uniformly spaced in probability; e.g. David & Nagaraja,
    *Order Statistics*, 3rd ed., 2003, section 2.5), so the exact binomial test
    (``scipy.stats.binomtest``, one-sided) of the count against that rate must give a p-value
    below ``alpha``. Why: docs/data-quality.md (values outside the training range).

    Args:
        pipeline: the version's fitted pipeline; table: the batch's modelling table (rows × columns).
        share_limit: ``drift.out_of_range_share``; alpha: ``drift.fault_alpha``.

    Returns:
        None for a pipeline saved without the guard (no ranges kept); else ``rows`` (batch
        rows), ``training_rows``, ``share_limit``, ``features`` (column → ``rows``, ``share``,
        ``training_min``, ``training_max``, ``p_value``, ``material``; only columns with at
        least one row outside) and ``material`` (the columns whose share is material).
    """
    from scipy.stats import binomtest

    from models.estimators import range_guard

    guard = range_guard(pipeline)
    if guard is None:
        return None
    rows = len(table)
    n_train = int(getattr(guard, "n_training_rows_", 0))
    expected = min(1.0, 2.0 / (n_train + 1)) if n_train else 0.0
    features: dict[str, dict[str, Any]] = {}
    for col, count in guard.out_of_range_counts(table).items():
        if not count:
            continue
        share = count / rows
        p_value = float(binomtest(count, rows, expected, alternative="greater").pvalue) if expected else 0.0
        low, high = guard.training_range_[col]
        features[col] = {"rows": count, "share": share, "training_min": low, "training_max": high,
                         "p_value": p_value, "material": share > share_limit and p_value < alpha}
    return {"rows": rows, "training_rows": n_train, "share_limit": share_limit, "features": features,
            "material": [c for c, f in features.items() if f["material"]]}


def out_of_range_text(report: dict[str, Any] | None) -> str | None:
    """One line naming each feature with values outside its training range (None: nothing to say)."""
    if not report or not report["features"]:
        return None
    parts = [f"{c} {f['rows']} row(s) ({100 * f['share']:.2f} %; training range {f['training_min']:g} to "
             f"{f['training_max']:g}){' material' if f['material'] else ''}" for c, f in report["features"].items()]
    return "values outside the training range: " + ", ".join(parts)


@step("count-out-of-range")
def count_out_of_range(drift: DriftSpec, pipeline, table: pd.DataFrame) -> dict[str, Any] | None:
    """:func:`out_of_range_report` with the spec's ``drift.out_of_range_share`` and ``drift.fault_alpha``."""
    return out_of_range_report(pipeline, table, drift.out_of_range_share, drift.fault_alpha)


def unseen_categories_report(pipeline, table: pd.DataFrame, categorical: list[str]) -> dict[str, dict[str, Any]]:
    """Per categorical feature, the batch rows whose value the version never saw in training
    (:func:`models.estimators.unseen_category_mask`): the model scores such a row as if the
    feature had none of its known categories, so the value is not a factor it scored (and never
    an adverse-action reason, :func:`tasks.reasons.principal_reasons`). A column with ``allowed:``
    in the spec refuses such values at validation; this catches the columns without it.

    Returns:
        feature → ``{"rows": count, "values": up to 5 of the unseen values, most frequent first}``;
        only features with at least one such row (empty: none).
    """
    from models.estimators import unseen_category_mask

    out = {}
    for feature, mask in unseen_category_mask(pipeline, table, categorical).items():
        count = int(mask.sum())
        if count:
            values = table.loc[mask, feature].astype(object).value_counts().index[:5]
            out[feature] = {"rows": count, "values": [v.item() if hasattr(v, "item") else v for v in values]}
    return out


def unseen_categories_lines(report: dict[str, dict[str, Any]] | None) -> list[str]:
    """One line per categorical feature with categories unseen in training (none: an empty list)."""
    return [f"{c}: {f['rows']} row(s) with a category unseen in training ({', '.join(repr(v) for v in f['values'])}); "
            "scored as none of the known categories, never an adverse-action reason"
            for c, f in (report or {}).items()]


__all__ = ["count_out_of_range", "out_of_range_report", "out_of_range_text", "unseen_categories_lines",
           "unseen_categories_report"]
