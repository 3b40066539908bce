"""Fairness measurement for protected attributes (measured only, never features): per group of
each protected column, at the model's operating cut-off, the base rate, the approval rate, the
adverse impact ratio against a reference group (the four-fifths screen) and the within-group
ROC AUC. Definitions and sources: ``docs/metrics.md`` (fairness).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.metrics import roc_auc
from models.spec import ModelSpec


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


def fairness_report(spec: ModelSpec, y: np.ndarray, scores: np.ndarray, protected: pd.DataFrame) -> dict[str, Any]:
    """Per protected column and group: rows, base rate, approval rate, AIR, within-group AUC.

    Args:
        y: 0/1 outcomes (1 = the adverse event); scores: predicted event probabilities.
        protected: the same rows' protected columns.

    An application is approved when its event probability is below the cut-off
    (:func:`operating_cutoff`). A group's adverse impact ratio is its approval rate / the
    reference group's: the one named in ``fairness.reference_groups``, else the group with the
    highest approval rate. The four-fifths rule flags a ratio below 0.8 (EEOC Uniform
    Guidelines, 29 CFR 1607.4(D)).

    Returns:
        ``{"cutoff", "cutoff_rule", "adverse_impact_ratio" (the lowest AIR over all columns and
        groups; None when no group has one), "attributes": {column: {"reference_group",
        "groups": [ {...} ]}}}``. Groups with a missing value are reported as ``"(missing)"``.
    """
    y = np.asarray(y, dtype=float)
    scores = np.asarray(scores, dtype=float)
    cutoff, rule = operating_cutoff(spec, y, scores)
    approved = scores < cutoff
    out: dict[str, Any] = {"cutoff": cutoff, "cutoff_rule": rule, "attributes": {}, "adverse_impact_ratio": None}
    lowest = None
    for column in spec.protected_columns:
        values = protected[column].astype(object).where(protected[column].notna(), "(missing)").to_numpy()
        groups = []
        for g in pd.unique(values):
            mask = values == g
            groups.append({
                "group": g if isinstance(g, (str, int, float, bool)) else str(g), "rows": int(mask.sum()),
                "base_rate": float(y[mask].mean()), "approval_rate": float(approved[mask].mean()),
                "roc_auc": _auc(y[mask], scores[mask]),
            })
        ref_value = spec.fairness.reference_groups.get(column)
        ref = next((g for g in groups if g["group"] == ref_value), None)
        if ref is None:
            ref = max(groups, key=lambda g: g["approval_rate"])
        for g in groups:
            g["adverse_impact_ratio"] = (g["approval_rate"] / ref["approval_rate"]) if ref["approval_rate"] > 0 else None
            g["reference"] = g is ref
            if not g["reference"] and g["adverse_impact_ratio"] is not None:
                lowest = g["adverse_impact_ratio"] if lowest is None else min(lowest, g["adverse_impact_ratio"])
        out["attributes"][column] = {"reference_group": ref["group"], "groups": sorted(groups, key=lambda g: str(g["group"]))}
    out["adverse_impact_ratio"] = lowest
    return out
