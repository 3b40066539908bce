"""Drift of one column: its PSI and traffic light, or why it was not tested, and the state test
that tells a stuck, broken or changed feed (a *batch fault*) from an untestable column.

A column constant or entirely missing on either side is compared on its states (rows at the single
value, at other values, missing) by Fisher's exact test with Bonferroni and the PSI of the state
shares; the rules and their reasons are in ``docs/drift.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.records.drift import TESTED_STATUSES, UNTESTED_STATUSES
from models.spec import DriftSpec
from tasks.psi import (
    BinProfile,
    DriftError,
    Kind,
    as_float,
    fmt_edge,
    freeze_bins,
    profile_column,
    psi,
    traffic_light,
)


@dataclass
class FeatureDrift:
    """PSI and verdict of one column.

    Attributes:
        column: the column name.
        kind: ``"numeric"`` or ``"categorical"`` (the score is numeric).
        psi: the PSI (unitless, >= 0), or None when the column was not tested.
        status: one of :data:`TESTED_STATUSES` or :data:`UNTESTED_STATUSES`.
        note: why a column was not tested, in words ("" when tested).
        reference_rows, current_rows: rows of each frame (missing values included).
        reference_missing_share, current_missing_share: share of missing values in [0, 1]
            (None for a frame without rows or without the column).
        bins: one dict per frozen bin, in bin order: ``{"bin": label, "reference_share",
            "current_share"}`` (shares before flooring) and ``"psi_term"``, the bin's
            contribution to the PSI (None when not tested). Empty for an ``error`` column.
        batch_fault: True when a ``constant`` or ``all_missing`` column's states (rows at the
            single value, at other values, missing) differ between the reference and the batch
            beyond sampling noise (Fisher p-value below ``drift.fault_alpha``) and materially
            (state PSI at least ``drift.psi_significant``): a stuck, broken or changed feed.
        judged: counts in the dataset-drift share's denominator: a PSI verdict, or a state
            comparison of a column that is not the same single state in both frames.
        state_p_value, state_psi: the state comparison's p-value and the PSI of the state shares
            (None when not compared that way).
        psi_no_change: the PSI expected from sampling noise alone when nothing changed,
            ``(k - 1) * (1 / reference_rows + 1 / current_rows)`` for ``k`` occupied bins (the
            mean of PSI's asymptotic distribution ``(1/n + 1/m) chi2(k - 1)``, Yurdakul 2018);
            with ``psi_threshold: fixed``, when it reaches ``psi_moderate`` the note says the
            traffic light is not reliable.
        occupied_bins: ``k``, the bins holding rows in either frame (None when not tested).
        psi_p_value: the p-value of the PSI under no change, ``P(chi2(k - 1) >= PSI / (1/n + 1/m))``
            (None when not tested); ``psi_p_adjusted`` the same after Benjamini-Hochberg across the
            PSI-tested features of the batch (the column alone in :func:`column_drift`).
        decided_by: the rule that set a tested column's status, ``"fixed"`` (the thresholds) or
            ``"chi2"`` (the thresholds, for a PSI beyond sampling noise), the spec's
            ``drift.psi_threshold``; None when not tested.
    """

    column: str
    kind: str
    psi: float | None
    status: str
    note: str = ""
    reference_rows: int = 0
    current_rows: int = 0
    reference_missing_share: float | None = None
    current_missing_share: float | None = None
    bins: list[dict[str, Any]] = field(default_factory=list)
    batch_fault: bool = False
    judged: bool = False
    state_p_value: float | None = None
    state_psi: float | None = None
    psi_no_change: float | None = None
    occupied_bins: int | None = None
    psi_p_value: float | None = None
    psi_p_adjusted: float | None = None
    decided_by: str | None = None

    @property
    def tested(self) -> bool:
        """True when the column got a PSI traffic light (one of :data:`TESTED_STATUSES`)."""
        return self.status in TESTED_STATUSES


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _value_text(v: Any) -> str:
    return fmt_edge(v) if isinstance(v, float) else repr(v)


def column_drift(name: str, reference: pd.Series, current: pd.Series, kind: Kind, drift_spec: DriftSpec) -> FeatureDrift:
    """PSI and verdict of one column on bins frozen from ``reference``.

    Checks, in order (the first that applies sets the status; ``docs/drift.md``):
    ``error`` (non-numeric values in a numeric column), ``insufficient_data`` (fewer current
    rows than ``drift_spec.min_rows``), ``all_missing``, ``constant``; otherwise the PSI and
    its traffic light. Never raises for bad data: the problem is in ``status`` and ``note``.
    """
    ref_rows, cur_rows = len(reference), len(current)
    try:
        binning = freeze_bins(reference, kind, drift_spec.bins)
        ref = profile_column(binning, reference)
        cur = profile_column(binning, current)
    except DriftError as err:
        return FeatureDrift(name, kind, None, "error", str(err), ref_rows, cur_rows)

    out = FeatureDrift(name, kind, None, "", "", ref_rows, cur_rows,
                       _share(ref.missing, ref_rows), _share(cur.missing, cur_rows))
    r = ref.counts / ref_rows if ref_rows else np.zeros(binning.n_bins)
    c = cur.counts / cur_rows if cur_rows else np.zeros(binning.n_bins)
    out.bins = [{"bin": lab, "reference_share": float(a), "current_share": float(b), "psi_term": None}
                for lab, a, b in zip(binning.labels, r, c)]

    if cur_rows < drift_spec.min_rows:
        out.status = "insufficient_data"
        out.note = f"the batch has {cur_rows} rows, fewer than drift.min_rows = {drift_spec.min_rows}"
    elif cur.distinct == 0 or ref.distinct == 0:
        out.status = "all_missing"
        out.note = " and ".join(
            w for w, p in (("every current value is missing", cur), ("every reference value is missing", ref))
            if p.distinct == 0)
        _compare_states(out, reference, current, ref, cur, None, drift_spec)
    elif ref.distinct == 1 or cur.distinct == 1:
        out.status = "constant"
        parts = []
        if ref.distinct == 1:
            parts.append(f"the reference has a single value ({_value_text(ref.single_value)})")
        if cur.distinct == 1:
            parts.append(f"the current batch has a single value ({_value_text(cur.single_value)})")
        out.note = " and ".join(parts) + "; PSI not computed"
        single = ref.single_value if ref.distinct == 1 else cur.single_value
        _compare_states(out, reference, current, ref, cur, single, drift_spec)
    else:
        floor = drift_spec.psi_floor
        rf, cf = np.maximum(r, floor), np.maximum(c, floor)
        terms = (cf - rf) * np.log(cf / rf)
        out.psi = float(terms.sum())
        out.judged = True
        occupied = int(np.count_nonzero((ref.counts + cur.counts) > 0))
        out.occupied_bins = occupied
        out.psi_no_change = (occupied - 1) * (1 / ref_rows + 1 / cur_rows)
        out.psi_p_value = psi_p_value(out.psi, occupied, ref_rows, cur_rows)
        decide_psi(out, out.psi_p_value, 1, drift_spec)
        for row, t in zip(out.bins, terms):
            row["psi_term"] = float(t)
    return out


def psi_p_value(value: float, occupied_bins: int, reference_rows: int, current_rows: int) -> float:
    """p-value of a PSI under no change: ``P(chi2(k - 1) >= PSI / (1/n + 1/m))``, ``k`` occupied bins.

    Under no change, PSI is asymptotically ``(1/n + 1/m)`` times a chi-square with ``k - 1``
    degrees of freedom (Yurdakul 2018); ``scipy.stats.chi2.sf``. 1.0 with fewer than two occupied
    bins or an empty frame.
    """
    if occupied_bins < 2 or reference_rows < 1 or current_rows < 1:
        return 1.0
    from scipy.stats import chi2

    return float(chi2.sf(value / (1 / reference_rows + 1 / current_rows), occupied_bins - 1))


def decide_psi(out: FeatureDrift, p_adjusted: float, family: int, drift_spec: DriftSpec) -> None:
    """Set a PSI-tested column's ``status``, ``decided_by``, ``psi_p_adjusted`` and note by the spec's rule.

    ``fixed``: the traffic light (:func:`tasks.psi.traffic_light`); the note warns when
    ``psi_no_change`` reaches ``psi_moderate``. ``chi2``: the same traffic light when the PSI is
    beyond sampling noise (``p_adjusted``, the Benjamini-Hochberg p-value among ``family``
    features, below ``drift.psi_alpha``), otherwise ``stable`` with a note. So the chi2 rule only
    removes lights that noise explains: at volume, where every material change is beyond noise, it
    agrees with ``fixed``, and an immaterial change (PSI below ``psi_moderate``) stays stable however
    small its p-value.
    """
    out.psi_p_adjusted = p_adjusted
    out.decided_by = drift_spec.psi_threshold
    out.note = ""
    if drift_spec.psi_threshold == "fixed":
        out.status = traffic_light(out.psi, drift_spec)
        if out.psi_no_change >= drift_spec.psi_moderate:
            out.note = (f"PSI is about {out.psi_no_change:.2f} with no change at all at these sizes "
                        f"({out.occupied_bins} bins, "
                        f"{out.reference_rows:,} reference and {out.current_rows:,} batch rows; Yurdakul 2018): its "
                        "traffic light is unreliable at this batch size")
        return
    light = traffic_light(out.psi, drift_spec)
    across = f" across {family} features" if family > 1 else ""
    p_text = f"chi2 p = {p_adjusted:.3g} (Benjamini-Hochberg{across})" if family > 1 else f"chi2 p = {p_adjusted:.3g}"
    if light == "stable":
        out.status = light
    elif p_adjusted < drift_spec.psi_alpha:
        out.status = light
        out.note = f"chi2 rule: beyond sampling noise ({p_text} < psi_alpha {drift_spec.psi_alpha:g})"
    else:
        out.status = "stable"
        out.note = (f"chi2 rule: PSI {out.psi:.3f} would be {light} but is within sampling noise at these sizes "
                    f"({p_text} >= psi_alpha {drift_spec.psi_alpha:g})")


def apply_psi_rule(features: list[FeatureDrift], drift_spec: DriftSpec) -> None:
    """Judge the PSI-tested ``features`` of one batch together (:func:`decide_psi`): their p-values
    adjusted by Benjamini-Hochberg (``scipy.stats.false_discovery_control``, Benjamini & Hochberg
    1995) across them. Columns without a PSI are left as they are."""
    tested = [f for f in features if f.psi is not None and f.psi_p_value is not None]
    if not tested:
        return
    from scipy.stats import false_discovery_control

    adjusted = false_discovery_control([f.psi_p_value for f in tested], method="bh")
    for f, q in zip(tested, adjusted):
        decide_psi(f, float(q), len(tested), drift_spec)


def state_counts(values: pd.Series, profile: BinProfile, single: Any, kind: str) -> list[int]:
    """Rows of ``values`` at ``single``, at other non-missing values, and missing (3 ints).

    ``single`` None: no value is singled out (the first count is 0). Numeric values are equal
    to ``single`` within a relative 1e-6 (a float32 batch of 0.1 is at the reference's 0.1).
    """
    if single is None:
        at = 0
    elif kind == "numeric":  # float32 0.1 is 0.10000000149 as float64: equal to 1e-6 relative
        at = int(np.count_nonzero(np.isclose(as_float(values), float(single), rtol=1e-6, atol=0.0)))
    else:
        at = int(values.isin([single]).sum())
    return [at, profile.rows - profile.missing - at, profile.missing]


def state_test_pvalue(reference_states: list[int], current_states: list[int]) -> float:
    """p-value that the reference and the batch share one distribution over the states.

    For each state that occurs, Fisher's exact test (two-sided, ``scipy.stats.fisher_exact``)
    of its share in the reference against its share in the batch; the smallest p-value times
    the number of states tested (Bonferroni), at most 1. Exact at every size: a chi-square
    approximation called one stray missing value in 200 rows against a 50,000-row constant
    reference p = 3e-15 (Fisher: 0.004). 1.0 when fewer than two states occur, or a side has
    no rows.
    """
    from scipy.stats import fisher_exact

    ref, cur = np.asarray(reference_states, dtype=np.int64), np.asarray(current_states, dtype=np.int64)
    occurring = [i for i in range(len(ref)) if ref[i] + cur[i] > 0]
    if len(occurring) < 2 or ref.sum() == 0 or cur.sum() == 0:
        return 1.0
    p_values = [fisher_exact([[int(ref[i]), int(ref.sum() - ref[i])], [int(cur[i]), int(cur.sum() - cur[i])]]).pvalue
                for i in occurring]
    return float(min(1.0, len(occurring) * min(p_values)))


def _compare_states(out: FeatureDrift, reference: pd.Series, current: pd.Series, ref: BinProfile, cur: BinProfile,
                    single: Any, drift_spec: DriftSpec) -> None:
    """Judge a constant or all-missing column on its states; set ``judged``, ``batch_fault``, the note.

    A fault needs both evidence and size: the state test's p-value below ``drift.fault_alpha``
    and the PSI of the state shares at least ``drift.psi_significant`` (on a million rows a
    missing share moving from 1.0 % to 1.2 % is significant, and immaterial).
    """
    kind = out.kind
    r_states, c_states = state_counts(reference, ref, single, kind), state_counts(current, cur, single, kind)
    if sum(1 for a, b in zip(r_states, c_states) if a or b) < 2:
        out.note += "; the same single state in both frames, nothing to compare"
        return
    out.judged = True
    p_value = state_test_pvalue(r_states, c_states)
    r_share = np.asarray(r_states, dtype=float) / max(ref.rows, 1)
    c_share = np.asarray(c_states, dtype=float) / max(cur.rows, 1)
    size = psi(r_share, c_share, drift_spec.psi_floor)
    out.state_p_value, out.state_psi = p_value, size
    if p_value >= drift_spec.fault_alpha or size < drift_spec.psi_significant:
        out.note += f"; consistent with the reference (state PSI {size:.3f}, Fisher p = {p_value:.3g})"
        return
    out.batch_fault = True
    what = [f"{w} {a:.1%} -> {b:.1%}"
            for w, a, b in zip(("at " + (_value_text(single) if single is not None else "a value"),
                                "other values", "missing"), r_share, c_share) if a or b]
    if cur.distinct == 0:
        cause = "every batch value is missing though the reference has values: a broken feed?"
    elif ref.distinct == 0:
        cause = "the reference had no values and the batch has: a new or repaired feed?"
    elif cur.distinct == 1 and ref.distinct == 2:
        cause = "the batch lost the reference's values: a stuck feed?"
    elif ref.distinct == 1 and cur.distinct == 1:
        cause = "the single value changed or its missing share moved: a stuck or re-coded feed?"
    else:
        cause = "the batch has values the one-valued reference did not: a changed feed?"
    out.note += (f"; rows {', '.join(what)} (state PSI {size:.2f}, Fisher p = {p_value:.3g} < drift.fault_alpha "
                 f"{drift_spec.fault_alpha:g}): {cause}")


def absent_column(name: str, kind: str, reference: pd.DataFrame, current: pd.DataFrame) -> FeatureDrift | None:
    """An ``error`` :class:`FeatureDrift` naming the frame(s) that lack column ``name``, or None
    when both frames have it."""
    where = [w for w, df in (("reference", reference), ("current batch", current)) if name not in df.columns]
    if not where:
        return None
    return FeatureDrift(name, kind, None, "error", f"column {name!r} is absent from the " + " and the ".join(where),
                        len(reference), len(current))


__all__ = ["FeatureDrift", "TESTED_STATUSES", "UNTESTED_STATUSES", "absent_column", "apply_psi_rule", "column_drift",
           "decide_psi", "psi_p_value", "state_counts", "state_test_pvalue"]
