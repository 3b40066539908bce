"""Fairness measurement for protected attributes (measured only, never features): per group of
each protected column (its declared bands for a numeric one), at the model's operating cut-off,
the base rate, the approval rate, the adverse impact ratio against a reference group (the
four-fifths screen) and the within-group ROC AUC; groups too small to judge are reported as such
and enter no ratio. Definitions and sources: ``docs/metrics.md`` (fairness).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.errors import DataError
from models.metrics import roc_auc
from models.spec import ModelSpec
from models.spec.monitoring import band_labels


def operating_cutoff(spec: ModelSpec, y: np.ndarray, scores: np.ndarray) -> tuple[float, str]:
    """The probability cut-off and how it was chosen (a sentence).

    ``fairness.cutoff`` when the spec sets one; else the score quantile that approves
    ``fairness.approval_rate`` of the rows, by default one minus the observed event rate
    (approve as many as historically performed well).
    """
    f = spec.fairness
    if f.cutoff is not None:
        return float(f.cutoff), f"fixed cut-off {f.cutoff:g} from the spec"
    rate = f.approval_rate if f.approval_rate is not None else 1.0 - float(np.mean(y))
    cutoff = float(np.quantile(scores, rate))
    source = "spec" if f.approval_rate is not None else "one minus the holdout event rate"
    return cutoff, f"cut-off {cutoff:.4f}: approves {rate:.1%} of the holdout ({source})"


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    return roc_auc(y, s) if len(np.unique(y)) >= 2 else None


def check_groupable(spec: ModelSpec, column: str, values: pd.Series) -> None:
    """Protected column ``column``'s values can be its groups: it has bands (``fairness.bands``),
    a list of ``allowed`` codes, or values that are not numbers. The spec refuses a column
    declared numeric without bands (``models.spec.checks.check_fairness_bands``); this is the
    same rule for a column whose type only the data shows.

    Raises:
        DataError: numbers without bands, naming ``fairness.bands.<column>`` and the number of
            distinct values.
    """
    if spec.fairness.groups_of(column) is not None or spec.columns[column].allowed is not None:
        return
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        raise DataError(f"fairness.bands.{column}: protected column {column!r} holds numbers "
                        f"({values.nunique()} distinct values); declare its bands (increasing cut points, "
                        f"e.g. {column}: [18, 25, 40, 60]) so that groups are not one value each")


def check_protected_groups(spec: ModelSpec, frame: pd.DataFrame) -> None:
    """:func:`check_groupable` on each protected column of ``frame`` (a development or modelling
    table), for a spec whose fairness is measured (binary classification): run before any
    candidate is fitted, so that a numeric column without bands stops the run at once rather
    than at the holdout evaluation.

    Raises:
        DataError: from :func:`check_groupable`.
    """
    if spec.task != "binary_classification":
        return
    for column in spec.protected_columns:
        if column in frame.columns:
            check_groupable(spec, column, frame[column])


MISSING_GROUP = "(missing)"
"""The group (fairness) or segment of the rows whose value is missing."""


def value_groups(values: pd.Series, edges: list[float] | None = None) -> np.ndarray:
    """Each row's group: with cut points ``edges``, the name of its band
    (:func:`models.spec.monitoring.band_labels`: ``< e0``, ``[e0, e1)``, ..., ``>= e_last``, each
    band holding its lower edge); without, the value itself; :data:`MISSING_GROUP` for a missing
    value. Shape ``(len(values),)``, dtype object."""
    missing = values.isna().to_numpy()
    if edges is None:
        return values.astype(object).where(~missing, MISSING_GROUP).to_numpy()
    bands = band_labels(list(edges))
    index = np.searchsorted(np.asarray(edges, dtype=float),
                            pd.to_numeric(values, errors="coerce").to_numpy(dtype=float), side="right")
    labels = np.asarray(bands, dtype=object)[np.minimum(index, len(bands) - 1)]
    return np.where(missing, MISSING_GROUP, labels)


def group_values(spec: ModelSpec, column: str, values: pd.Series) -> np.ndarray:
    """Each row's group of protected column ``column``: its band name for a banded column
    (``fairness.bands``), else the value itself; ``"(missing)"`` for a missing value
    (:func:`value_groups`).

    Raises:
        DataError: an unbanded column whose values are numbers (and not a list of ``allowed``
            codes), naming ``fairness.bands.<column>`` (:func:`check_groupable`).
    """
    edges = spec.fairness.bands.get(column) or None
    if edges is None:
        check_groupable(spec, column, values)
    return value_groups(values, edges)


def _reference(column: str, groups: list[dict[str, Any]], declared: Any, min_rows: int) -> tuple[dict | None, str]:
    """The reference group and how it was chosen (a sentence)."""
    if declared is not None:
        ref = next((g for g in groups if g["group"] == declared), None)
        if ref is None:
            return None, (f"the declared reference group {declared!r} (fairness.reference_groups.{column}) has no "
                          "holdout rows: no adverse impact ratio")
        if ref["too_small"]:
            return None, (f"the declared reference group {declared!r} has {ref['rows']} holdout rows, fewer than "
                          f"fairness.min_group_rows = {min_rows}: no adverse impact ratio")
        return ref, "declared in fairness.reference_groups"
    judged = [g for g in groups if not g["too_small"]]
    if not judged:
        return None, f"no group has {min_rows} holdout rows (fairness.min_group_rows): no adverse impact ratio"
    return max(judged, key=lambda g: g["rows"]), "the largest group"


def fairness_report(spec: ModelSpec, y: np.ndarray, scores: np.ndarray, protected: pd.DataFrame) -> dict[str, Any]:
    """Per protected column and group: rows, base rate, approval rate, AIR, within-group AUC.

    Args:
        y: 0/1 outcomes (1 = the adverse event); scores: predicted event probabilities.
        protected: the same rows' protected columns.

    An application is approved when its event probability is below the cut-off
    (:func:`operating_cutoff`). Groups are the values of a protected column, or its bands
    (``fairness.bands``) for a numeric one. A group of fewer than ``fairness.min_group_rows``
    rows is too small to judge: its rows, base rate and approval rate are reported, but no
    within-group ROC AUC and no adverse impact ratio, and it is never the reference. A judged
    group's adverse impact ratio is its approval rate / the reference group's: the one named in
    ``fairness.reference_groups``, else the largest group. The four-fifths rule flags a ratio
    below 0.8 (EEOC Uniform Guidelines, 29 CFR 1607.4(D)).

    Returns:
        ``{"cutoff", "cutoff_rule", "min_group_rows", "adverse_impact_ratio" (the lowest AIR over
        all columns and judged groups; None when no group has one), "attributes": {column:
        {"reference_group" (None when there is no usable reference), "reference_rule", "bands"
        (cut points or None), "notes" (sentences: groups too small, reference unusable),
        "groups": [{"group", "rows", "base_rate", "approval_rate", "roc_auc", "too_small",
        "adverse_impact_ratio", "reference"}]}}}``; groups in band order for a banded column,
        else sorted by name. Missing values form the group ``"(missing)"``.

    Raises:
        DataError: a numeric protected column without bands (:func:`group_values`).
    """
    y = np.asarray(y, dtype=float)
    scores = np.asarray(scores, dtype=float)
    cutoff, rule = operating_cutoff(spec, y, scores)
    approved = scores < cutoff
    min_rows = spec.fairness.min_group_rows
    out: dict[str, Any] = {"cutoff": cutoff, "cutoff_rule": rule, "min_group_rows": min_rows, "attributes": {},
                           "adverse_impact_ratio": None}
    lowest = None
    for column in spec.protected_columns:
        values = group_values(spec, column, protected[column].reset_index(drop=True))
        bands = spec.fairness.groups_of(column)
        groups = []
        for g in pd.unique(values):
            mask = values == g
            rows = int(mask.sum())
            small = spec.fairness.too_small(rows)
            groups.append({
                "group": g if isinstance(g, (str, int, float, bool)) else str(g), "rows": rows,
                "base_rate": float(y[mask].mean()), "approval_rate": float(approved[mask].mean()),
                "roc_auc": None if small else _auc(y[mask], scores[mask]), "too_small": small,
            })
        order = {b: i for i, b in enumerate(bands or [])}
        groups.sort(key=lambda g: (order.get(g["group"], len(order)), str(g["group"])))
        ref, ref_rule = _reference(column, groups, spec.fairness.reference_groups.get(column), min_rows)
        notes = [f"group {g['group']!r}: {g['rows']} holdout rows, too small to judge (fewer than "
                 f"fairness.min_group_rows = {min_rows}); it enters no ratio" for g in groups if g["too_small"]]
        if ref is None:
            notes.append(ref_rule)
        for g in groups:
            g["reference"] = g is ref
            usable = ref is not None and not g["too_small"] and ref["approval_rate"] > 0
            g["adverse_impact_ratio"] = g["approval_rate"] / ref["approval_rate"] if usable else None
            if not g["reference"] and g["adverse_impact_ratio"] is not None:
                lowest = g["adverse_impact_ratio"] if lowest is None else min(lowest, g["adverse_impact_ratio"])
        out["attributes"][column] = {
            "reference_group": None if ref is None else ref["group"], "reference_rule": ref_rule,
            "bands": spec.fairness.bands.get(column), "notes": notes, "groups": groups,
        }
    out["adverse_impact_ratio"] = lowest
    return out
