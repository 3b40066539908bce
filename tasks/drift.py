"""Drift of a batch against the reference sample: PSI on frozen bins, and an Evidently report.

The platform's drift *decision* is the population stability index (PSI) of every feature and
of the model score, computed on bins frozen from the reference sample and on every row of the
batch (Siddiqi, *Credit Risk Scorecards*, Wiley 2006, ch. 8; Yurdakul, "Statistical Properties
of Population Stability Index", PhD thesis, Western Michigan University, 2018)::

    PSI = sum over bins b of (c_b - r_b) * ln(c_b / r_b)

where ``r_b`` and ``c_b`` are the shares of the reference and of the current batch in bin
``b`` (each share over all rows, missing values included), and a share below
``drift.psi_floor`` (1e-4) is raised to the floor so that an empty bin keeps PSI finite. The
floored shares are not renormalised; two bins empty on both sides contribute 0.

Bins (frozen on the reference, the credit-risk convention; Evidently's own PSI bins the
reference and the current data *together*, see ``/work/shared/STACK-NOTES.md``):

- numeric: the interior quantiles ``q = 1/k, ..., (k-1)/k`` (``k = drift.bins``) of the
  reference's non-missing values, taken as observed values (``numpy.quantile``,
  ``method="inverted_cdf"``, Hyndman & Fan type 1), made unique, and without edges at or above
  the reference maximum. The intervals are ``(-inf, e1], (e1, e2], ..., (ek, +inf)``, so every
  bin holds reference rows, and tied or discrete data simply gets fewer bins. ``±inf`` values
  fall in the outer bins; NaN / None / ``pd.NA`` go to a bin of their own.
- categorical: one bin per category seen in the reference (ordered by reference frequency),
  ``<other>`` for categories not seen in the reference, and ``<missing>``.

Traffic light per feature (``models.spec.DriftSpec``): ``psi < psi_moderate`` (0.1) stable,
``psi_moderate <= psi < psi_significant`` (0.25) moderate, ``psi >= psi_significant``
significant. A feature is *tested* when it gets one of these three statuses; the others are
reported and never counted as drift:

- ``error``: the column is absent from a frame, or a numeric column holds non-numbers;
- ``insufficient_data``: the batch has fewer rows than ``drift.min_rows``;
- ``all_missing``: every current value is missing, or every reference value is;
- ``constant``: the reference has a single distinct non-missing value, or the current batch
  has exactly one (the note says which). PSI on a single value says nothing about the
  population.

A ``constant`` or ``all_missing`` column is still compared, on its *states*: rows at the single
value, rows at other values, missing rows. It is a *batch fault* (``FeatureDrift.batch_fault``)
when the states differ beyond sampling noise (per state, Fisher's exact test of its share in the
reference against the batch, Bonferroni over the states: p below ``drift.fault_alpha``, 0.001)
*and* materially (the PSI of the state shares at least ``drift.psi_significant``).
That covers a feed stuck on one value or entirely missing while the reference varied, a feature
that was constant or empty in the reference and now has other values, and a jump of the
missing share of a one-valued column. A rare flag that is all zero in a small batch is *not* a
fault (its probability under the reference is not small), so the rule does not cry wolf on
healthy batches. A batch fault is not counted as drift (retraining on a broken feed is not the
remedy), but :func:`tasks.monitor.decide_verdict` turns it into the verdict
``data_quality_alarm`` ahead of drift and breaches, so such a batch is never called stable.

PSI has a sampling floor: with nothing changed its mean is about ``(k - 1) * (1/n + 1/m)`` for
``k`` occupied bins, ``m`` reference and ``n`` batch rows (Yurdakul 2018: PSI is asymptotically
``(1/n + 1/m)`` times a chi-square with ``k - 1`` degrees of freedom). A 50-category feature on a
300-row batch sits near 0.18 with no change at all; such features get a note saying their traffic
light is unreliable at that size (``FeatureDrift.psi_no_change``).

Dataset drift: the share of *judged* features whose status is ``significant``, where a
feature is judged when it got a PSI, or when it was compared on its states and is not the
same single state on both sides (a column constant at one value, or missing, in both frames
tells nothing and is left out). Faulted and one-sided constant features count in the
denominator as not drifted, so a broken feed cannot inflate the drift share of the remaining
features. ``dataset_drift = judged > 0 and share >= drift.dataset_drift_share``. The score's PSI is
reported beside the features (prediction drift) and is not part of that share.

Cost: one pass of ``numpy.searchsorted`` per numeric column and one ``pandas.factorize`` per
categorical column over the batch; the frame is never copied (measured by
``benchmarks/drift.py``: 1,000,000 rows x 20 columns against 100,000 reference rows).

The Evidently report (:func:`evidently_drift_report`) is for people: Evidently 0.7's
``DataDriftPreset`` and ``DataSummaryPreset`` on a bounded random sample (at most
``drift.evidently_sample_rows`` rows of each frame), run only on the columns Evidently can
handle. Evidently is imported inside that function only (3-4 s).
"""

from __future__ import annotations

import html
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from models.spec import DriftSpec

log = logging.getLogger(__name__)

Kind = Literal["numeric", "categorical"]

TESTED_STATUSES = ("stable", "moderate", "significant")
"""Statuses of a feature whose PSI was computed and judged."""
UNTESTED_STATUSES = ("constant", "all_missing", "insufficient_data", "error")
"""Statuses of a feature reported without a PSI verdict; never counted as drift."""

MISSING_LABEL = "<missing>"
OTHER_LABEL = "<other>"


class DriftError(ValueError):
    """A column cannot be binned (a numeric column holding non-numbers, an unknown kind)."""


# --------------------------------------------------------------------------- bins


@dataclass(frozen=True)
class Binning:
    """Bins frozen from the reference sample of one column.

    Attributes:
        kind: ``"numeric"`` or ``"categorical"``.
        edges: numeric only: the sorted unique interior edges ``e1 < ... < ek`` (float64,
            possibly empty); bins are ``(-inf, e1], ..., (ek, +inf)`` then missing.
        categories: categorical only: the reference's categories (Python scalars, by
            descending reference frequency); bins are those, then ``<other>``, then missing.
        labels: one readable label per bin, in bin order (the missing bin last).
    """

    kind: Kind
    edges: np.ndarray | None = None
    categories: tuple[Any, ...] | None = None
    labels: tuple[str, ...] = ()

    @property
    def n_bins(self) -> int:
        """Number of bins, the missing bin (and ``<other>``) included."""
        return len(self.labels)


def _as_float(values: pd.Series) -> np.ndarray:
    """The column as float64 with NaN for missing; a view for a float64 column (no copy)."""
    try:
        return values.to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError) as err:
        raise DriftError(f"column {values.name!r} is declared numeric but holds {values.dtype} values: {err}") from None


def _fmt_edge(x: float) -> str:
    return f"{x:.6g}"


def _numeric_binning(x: np.ndarray, n_bins: int) -> Binning:
    finite = x[np.isfinite(x)]
    if finite.size:
        q = np.arange(1, n_bins) / n_bins
        edges = np.unique(np.quantile(finite, q, method="inverted_cdf"))
        top = np.nanmax(x[~np.isnan(x)])  # may be +inf: then no edge is dropped
        edges = edges[edges < top]
    else:
        edges = np.empty(0)
    edges = np.ascontiguousarray(edges, dtype="float64")
    if edges.size == 0:
        labels = ["(-inf, +inf)"]
    else:
        bounds = ["-inf"] + [_fmt_edge(e) for e in edges] + ["+inf"]
        labels = [f"({lo}, {hi}]" for lo, hi in zip(bounds[:-2], bounds[1:-1])]
        labels.append(f"({bounds[-2]}, +inf)")
    return Binning("numeric", edges=edges, labels=tuple(labels) + (MISSING_LABEL,))


def _categorical_binning(values: pd.Series) -> Binning:
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    cats = list(np.asarray(uniques, dtype=object))
    counts = np.bincount(codes[codes >= 0], minlength=len(cats)) if len(cats) else np.zeros(0, dtype=np.int64)
    order = sorted(range(len(cats)), key=lambda i: (-int(counts[i]), str(cats[i])))
    categories = tuple(_py(cats[i]) for i in order)
    labels = tuple(str(c) for c in categories) + (OTHER_LABEL, MISSING_LABEL)
    return Binning("categorical", categories=categories, labels=labels)


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def freeze_bins(reference: pd.Series, kind: Kind, n_bins: int) -> Binning:
    """Bins of one column, frozen on the reference sample (see the module docstring).

    Args:
        reference: the reference values of the column (missing values allowed).
        kind: ``"numeric"`` (quantile bins) or ``"categorical"`` (one bin per category).
        n_bins: numeric only: the number of quantile bins asked for (``drift.bins``); tied
            or discrete data gets fewer, a constant column one.

    Raises:
        DriftError: unknown kind, or a numeric column that holds non-numbers.
    """
    if kind == "numeric":
        return _numeric_binning(_as_float(reference), n_bins)
    if kind == "categorical":
        return _categorical_binning(reference)
    raise DriftError(f"unknown column kind {kind!r}; use 'numeric' or 'categorical'")


@dataclass
class _Profile:
    """Counts of one column over the bins, and what the status checks need."""

    counts: np.ndarray  # int64, one per bin (missing last)
    rows: int
    missing: int
    distinct: int  # distinct non-missing values, capped at 2 (0, 1 or "2 or more")
    single_value: Any = None  # the value when distinct == 1


def _profile(binning: Binning, values: pd.Series) -> _Profile:
    rows = len(values)
    if binning.kind == "numeric":
        x = _as_float(values)
        nan = np.isnan(x)
        missing = int(np.count_nonzero(nan))
        counts = np.bincount(np.searchsorted(binning.edges, x, side="left"), minlength=len(binning.edges) + 1)
        counts = np.append(counts, 0)
        counts[-2] -= missing  # NaN sorts last: searchsorted put every NaN in the top value bin
        counts[-1] = missing
        distinct, single = 0, None
        if missing < rows:
            lo, hi = np.nanmin(x), np.nanmax(x)
            distinct = 1 if lo == hi else 2
            single = float(lo) if distinct == 1 else None
        return _Profile(counts.astype(np.int64), rows, missing, distinct, single)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    per_unique = np.bincount(codes + 1, minlength=len(uniques) + 1)  # slot 0: missing
    missing = int(per_unique[0])
    n_cat = len(binning.categories)
    target = pd.Index(list(binning.categories), dtype=object).get_indexer(pd.Index(np.asarray(uniques, dtype=object), dtype=object))
    target = np.where(target < 0, n_cat, target)  # unseen -> <other>
    counts = np.bincount(target, weights=per_unique[1:], minlength=n_cat + 1).astype(np.int64) if len(uniques) else np.zeros(n_cat + 1, dtype=np.int64)
    counts = np.append(counts, missing)
    distinct = min(len(uniques), 2)
    single = _py(np.asarray(uniques, dtype=object)[0]) if len(uniques) == 1 else None
    return _Profile(counts, rows, missing, distinct, single)


def bin_shares(binning: Binning, values: pd.Series) -> np.ndarray:
    """Share of ``values`` in each bin of ``binning`` (missing bin last), before flooring.

    Shares are over all rows, missing values included, and sum to 1 (all zeros for an empty
    series). Shape ``(binning.n_bins,)``, float64.
    """
    p = _profile(binning, values)
    return p.counts / p.rows if p.rows else np.zeros(binning.n_bins)


def psi(ref_shares: np.ndarray, cur_shares: np.ndarray, floor: float = 1e-4) -> float:
    """Population stability index of two share vectors over the same bins.

    ``sum((c - r) * ln(c / r))`` after raising every share below ``floor`` to ``floor``
    (Siddiqi 2006, ch. 8; Yurdakul 2018). Non-negative; 0 for identical shares. Unitless.

    Raises:
        ValueError: the vectors differ in length, or ``floor`` is not positive.
    """
    r = np.asarray(ref_shares, dtype=float)
    c = np.asarray(cur_shares, dtype=float)
    if r.shape != c.shape:
        raise ValueError(f"share vectors differ in length ({r.size} and {c.size})")
    if not floor > 0:
        raise ValueError("floor must be positive")
    r = np.maximum(r, floor)
    c = np.maximum(c, floor)
    return float(np.sum((c - r) * np.log(c / r)))


def traffic_light(value: float, drift_spec: DriftSpec) -> str:
    """``stable`` / ``moderate`` / ``significant`` for a PSI value, from the spec's thresholds."""
    if value >= drift_spec.psi_significant:
        return "significant"
    if value >= drift_spec.psi_moderate:
        return "moderate"
    return "stable"


# --------------------------------------------------------------------------- per column


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
            when it reaches ``psi_moderate`` the note says the traffic light is not reliable.
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

    @property
    def tested(self) -> bool:
        return self.status in TESTED_STATUSES


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _value_text(v: Any) -> str:
    return _fmt_edge(v) if isinstance(v, float) else repr(v)


def column_drift(name: str, reference: pd.Series, current: pd.Series, kind: Kind, drift_spec: DriftSpec) -> FeatureDrift:
    """PSI and verdict of one column on bins frozen from ``reference``.

    Checks, in order (the first that applies sets the status; see the module docstring):
    ``error`` (non-numeric values in a numeric column), ``insufficient_data`` (fewer current
    rows than ``drift_spec.min_rows``), ``all_missing``, ``constant``; otherwise the PSI and
    its traffic light. Never raises for bad data: the problem is in ``status`` and ``note``.
    """
    ref_rows, cur_rows = len(reference), len(current)
    try:
        binning = freeze_bins(reference, kind, drift_spec.bins)
        ref = _profile(binning, reference)
        cur = _profile(binning, current)
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
        out.status = traffic_light(out.psi, drift_spec)
        out.judged = True
        occupied = int(np.count_nonzero((ref.counts + cur.counts) > 0))
        out.psi_no_change = (occupied - 1) * (1 / ref_rows + 1 / cur_rows)
        if out.psi_no_change >= drift_spec.psi_moderate:
            out.note = (f"PSI is about {out.psi_no_change:.2f} with no change at all at these sizes ({occupied} bins, "
                        f"{ref_rows:,} reference and {cur_rows:,} batch rows; Yurdakul 2018): its traffic light "
                        "is unreliable at this batch size")
        for row, t in zip(out.bins, terms):
            row["psi_term"] = float(t)
    return out


def state_counts(values: pd.Series, profile: _Profile, single: Any, kind: str) -> list[int]:
    """Rows of ``values`` at ``single``, at other non-missing values, and missing (3 ints).

    ``single`` None: no value is singled out (the first count is 0). Numeric values are equal
    to ``single`` within a relative 1e-6 (a float32 batch of 0.1 is at the reference's 0.1).
    """
    if single is None:
        at = 0
    elif kind == "numeric":  # float32 0.1 is 0.10000000149 as float64: equal to 1e-6 relative
        at = int(np.count_nonzero(np.isclose(_as_float(values), float(single), rtol=1e-6, atol=0.0)))
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


def _compare_states(out: FeatureDrift, reference: pd.Series, current: pd.Series, ref: _Profile, cur: _Profile,
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


def _absent(name: str, kind: str, reference: pd.DataFrame, current: pd.DataFrame) -> FeatureDrift | None:
    where = [w for w, df in (("reference", reference), ("current batch", current)) if name not in df.columns]
    if not where:
        return None
    return FeatureDrift(name, kind, None, "error", f"column {name!r} is absent from the " + " and the ".join(where),
                        len(reference), len(current))


# --------------------------------------------------------------------------- whole batch


@dataclass
class DriftResult:
    """PSI drift of a batch: every feature, the score, and the dataset-drift decision.

    Attributes:
        features: one :class:`FeatureDrift` per feature, numeric then categorical, in the
            order given.
        score: the model score's drift (numeric bins), or None when no score column was given.
        tested: number of *judged* features (``FeatureDrift.judged``: a PSI verdict, or a state
            comparison of a constant / all-missing column), the drift share's denominator.
        drifted: names of the features whose status is ``significant``.
        drifted_share: ``len(drifted) / tested`` (0.0 when nothing was judged).
        dataset_drift: ``tested > 0 and drifted_share >= threshold_share``.
        batch_faults: names of the features whose ``batch_fault`` is set (stuck, broken or
            changed feed; not drift, but never stable, see :func:`tasks.monitor.decide_verdict`).
        threshold_share: ``drift.dataset_drift_share`` used for the decision.
        reference_rows, current_rows: rows of the two frames.
        seconds: wall time of :func:`compute_drift`.
    """

    features: list[FeatureDrift]
    score: FeatureDrift | None
    tested: int
    drifted: list[str]
    drifted_share: float
    dataset_drift: bool
    threshold_share: float
    reference_rows: int
    current_rows: int
    seconds: float = 0.0
    batch_faults: list[str] = field(default_factory=list)

    def top_features(self, k: int = 5) -> list[FeatureDrift]:
        """The ``k`` tested features with the largest PSI, largest first (ties by name)."""
        tested = [f for f in self.features if f.tested]
        return sorted(tested, key=lambda f: (-f.psi, f.column))[:k]

    def as_rows(self) -> list[dict[str, Any]]:
        """Flat rows for a table artifact: one per feature, then the score (``role`` says which).

        Keys: column, role, kind, status, psi (6 decimals), bins, reference_missing_share,
        current_missing_share (4 decimals), reference_rows, current_rows, note.
        """
        def row(f: FeatureDrift, role: str) -> dict[str, Any]:
            rnd = lambda v, n: None if v is None else round(v, n)  # noqa: E731
            return {"column": f.column, "role": role, "kind": f.kind, "status": f.status, "psi": rnd(f.psi, 6),
                    "bins": len(f.bins), "reference_missing_share": rnd(f.reference_missing_share, 4),
                    "current_missing_share": rnd(f.current_missing_share, 4), "reference_rows": f.reference_rows,
                    "current_rows": f.current_rows, "note": f.note}
        rows = [row(f, "feature") for f in self.features]
        if self.score is not None:
            rows.append(row(self.score, "score"))
        return rows

    def summary(self) -> dict[str, Any]:
        """The decision in a small JSON-ready dict (for history records and events)."""
        return {
            "tested": self.tested, "drifted": list(self.drifted), "drifted_share": self.drifted_share,
            "dataset_drift": self.dataset_drift, "threshold_share": self.threshold_share,
            "top_features": [f.column for f in self.top_features(3)],
            "score_psi": None if self.score is None else self.score.psi,
            "score_status": None if self.score is None else self.score.status,
            "not_tested": {f.column: f.status for f in self.features if not f.tested},
            "batch_faults": list(self.batch_faults),
        }


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    drift_spec: DriftSpec,
    score_column: str | None = None,
) -> DriftResult:
    """PSI of every feature (and of the score) of ``current`` on bins frozen from ``reference``.

    Args:
        reference: the reference sample (the version's ``reference.parquet``).
        current: the batch; every row is used, and neither frame is copied.
        numeric, categorical: the feature columns of each kind (id columns are not passed).
        drift_spec: bins, floor, traffic-light thresholds, ``dataset_drift_share``, ``min_rows``.
        score_column: the model score column (present in both frames), binned as numeric.

    Returns:
        A :class:`DriftResult`. Bad columns (absent, all missing, constant, non-numeric) get
        a status and a note instead of raising.
    """
    t0 = time.perf_counter()
    features: list[FeatureDrift] = []
    for kind, names in (("numeric", numeric), ("categorical", categorical)):
        for name in names:
            features.append(_absent(name, kind, reference, current)
                            or column_drift(name, reference[name], current[name], kind, drift_spec))
    score = None
    if score_column is not None:
        score = (_absent(score_column, "numeric", reference, current)
                 or column_drift(score_column, reference[score_column], current[score_column], "numeric", drift_spec))
    judged = [f for f in features if f.judged]
    drifted = [f.column for f in judged if f.status == "significant"]
    share = len(drifted) / len(judged) if judged else 0.0
    return DriftResult(
        features=features, score=score, tested=len(judged), drifted=drifted, drifted_share=share,
        dataset_drift=bool(judged) and share >= drift_spec.dataset_drift_share,
        threshold_share=drift_spec.dataset_drift_share, reference_rows=len(reference), current_rows=len(current),
        seconds=time.perf_counter() - t0, batch_faults=[f.column for f in features if f.batch_fault],
    )


# --------------------------------------------------------------------------- Evidently


def _sample(df: pd.DataFrame, columns: list[str], n: int, seed: int) -> pd.DataFrame:
    """At most ``n`` random rows (seeded, in original order) of ``columns``; copies only those."""
    if len(df) > n:
        rows = np.sort(np.random.default_rng(seed).choice(len(df), size=n, replace=False))
        out = df.iloc[rows, df.columns.get_indexer(columns)]
    else:
        out = df.loc[:, columns]
    return out.reset_index(drop=True)


def _evidently_skip_reason(ref: pd.Series, cur: pd.Series, kind: str) -> str | None:
    """Why Evidently cannot take this column (it raises or reports nonsense), or None."""
    if kind == "numeric":
        r = pd.to_numeric(ref, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        c = pd.to_numeric(cur, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        if np.count_nonzero(~np.isnan(r)) < ref.notna().sum() or np.count_nonzero(~np.isnan(c)) < cur.notna().sum():
            return "declared numeric but holds non-numeric values"
        r, c = r[np.isfinite(r)], c[np.isfinite(c)]
        if c.size == 0:
            return "all values missing in the sampled current rows"
        if r.size == 0:
            return "all values missing in the sampled reference rows"
        if r.min() == r.max():
            return f"constant in the sampled reference rows (single value {_fmt_edge(float(r[0]))})"
        return None
    if cur.notna().sum() == 0:
        return "all values missing in the sampled current rows"
    if ref.notna().sum() == 0:
        return "all values missing in the sampled reference rows"
    if ref.nunique(dropna=True) <= 1:
        return f"constant in the sampled reference rows (single value {ref.dropna().iloc[0]!r})"
    return None


def _category_label(v: Any) -> Any:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))  # an integer code read as float because of a missing value: 2.0 -> "2"
    return str(v)


def _category_labels(values: pd.Series) -> pd.Series:
    """A categorical sample as an object column of strings, every missing marker as NaN.

    Evidently 0.7 raises on labels that are floats (``type numpy.float64 not supported as
    Label``) and on ``pd.NA`` in ``string``/``boolean``/``Int64`` columns ("boolean value of NA is
    ambiguous"), and one such column stops the whole report. Integral floats lose their ``.0``
    so that an integer-coded category compares equal across a reference without missing values
    (int) and a batch with some (float).
    """
    missing = values.isna().to_numpy()
    out = np.array([np.nan if m else _category_label(v) for v, m in zip(values.tolist(), missing)], dtype=object)
    return pd.Series(out, index=values.index, name=values.name)


def _banner(title: str, note: str, skipped: dict[str, str]) -> str:
    parts = ['<div id="finml-sample-banner" style="font-family:sans-serif;padding:12px 16px;margin:8px;'
             'border:1px solid #c9a227;background:#fff8e1;border-radius:4px">']
    if title:
        parts.append(f"<h2 style='margin:0 0 6px 0'>{html.escape(title)}</h2>")
    parts.append(f"<p style='margin:0'>{html.escape(note)}</p>")
    if skipped:
        items = "".join(f"<li>{html.escape(c)}: {html.escape(r)}</li>" for c, r in skipped.items())
        parts.append(f"<p style='margin:6px 0 0 0'>Columns not sent to Evidently:</p><ul style='margin:0'>{items}</ul>")
    parts.append("</div>")
    return "".join(parts)


def _status_text(status: Any) -> str:
    return str(getattr(status, "value", status))


def _read_snapshot(d: dict[str, Any]) -> dict[str, Any]:
    """Evidently's verdicts from ``snapshot.dict()``: per-column drift tests and the share test.

    Measured on Evidently 0.7.23: metric configs have ``type`` ``evidently:metric_v2:ValueDrift``
    (one per column, with ``column``, ``method``, ``threshold``; ``value`` the score) and
    ``evidently:metric_v2:DriftedColumnsCount`` (``value`` ``{"count", "share"}``); each has a
    test whose ``status`` (a ``TestStatus`` enum) is ``FAIL`` on drift.
    """
    per_column: dict[str, dict[str, Any]] = {}
    out: dict[str, Any] = {"drifted_count": None, "drifted_share": None, "dataset_drift": None}
    for m in d.get("metrics", []):
        cfg = m.get("config", {})
        typ = str(cfg.get("type", ""))
        if typ.endswith(":ValueDrift"):
            v = m.get("value")
            per_column[cfg["column"]] = {"method": cfg.get("method"), "threshold": cfg.get("threshold"),
                                         "score": None if v is None else float(v), "drifted": None}
        elif typ.endswith(":DriftedColumnsCount"):
            v = m.get("value") or {}
            out["drifted_count"] = None if v.get("count") is None else int(v["count"])
            out["drifted_share"] = None if v.get("share") is None else float(v["share"])
    for t in d.get("tests", []):
        params = (t.get("metric_config") or {}).get("params") or {}
        typ = str(params.get("type", ""))
        status = _status_text(t.get("status"))
        if typ.endswith(":ValueDrift") and params.get("column") in per_column:
            per_column[params["column"]]["drifted"] = status == "FAIL"
            per_column[params["column"]]["description"] = t.get("description")
        elif typ.endswith(":DriftedColumnsCount"):
            out["dataset_drift"] = status == "FAIL"
    out["per_column"] = per_column
    return out


def evidently_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    drift_spec: DriftSpec,
    html_path: Path,
    seed: int = 0,
    title: str = "",
) -> dict[str, Any]:
    """Evidently 0.7 data-drift and data-summary report on a bounded random sample, as HTML.

    At most ``drift_spec.evidently_sample_rows`` random rows (``seed``) of each frame go to
    Evidently; the HTML opens with a banner stating both sample sizes (the platform's PSI
    decision, :func:`compute_drift`, uses every row). Columns Evidently raises on or
    misreports (STACK-NOTES) are checked first and skipped with a reason: absent from a
    frame, all missing in either sample, constant in the reference sample, non-numeric
    values in a numeric column. Evidently is not called when the batch is empty, has fewer
    rows than ``drift_spec.min_rows`` (it flags almost every column on a handful of rows), or
    no column remains. Methods: ``num_method`` / ``cat_method`` at ``stattest_threshold``,
    per-column overrides from ``drift_spec.columns``, dataset drift at
    ``dataset_drift_share``. An exception inside Evidently is recorded in ``error``, not raised.

    Returns a JSON-ready dict: ``ran`` (bool), ``reason`` (why not, or None), ``error``,
    ``html_path`` (str, or None when no HTML was written), ``current_rows``,
    ``reference_rows``, ``current_sample_rows``, ``reference_sample_rows``, ``sample_note``
    (the banner sentence), ``columns`` (sent), ``skipped`` (``{column: reason}``),
    ``drifted_count``, ``drifted_share`` and ``dataset_drift`` (Evidently's, over the columns
    sent), ``per_column`` (``{column: {method, threshold, score, drifted, description}}``) and
    ``seconds``.
    """
    t0 = time.perf_counter()
    html_path = Path(html_path)
    n = drift_spec.evidently_sample_rows
    cur_n, ref_n = min(len(current), n), min(len(reference), n)
    note = (f"Evidently drift report on a random sample of {cur_n:,} of {len(current):,} current rows and "
            f"{ref_n:,} of {len(reference):,} reference rows (seed {seed}); the platform's PSI decision uses every row.")
    out: dict[str, Any] = {
        "ran": False, "reason": None, "error": None, "html_path": None,
        "current_rows": len(current), "reference_rows": len(reference),
        "current_sample_rows": cur_n, "reference_sample_rows": ref_n, "sample_note": note,
        "columns": [], "skipped": {}, "drifted_count": None, "drifted_share": None, "dataset_drift": None,
        "per_column": {}, "seconds": 0.0,
    }
    kinds = {c: "numeric" for c in numeric} | {c: "categorical" for c in categorical}
    present = []
    for col in kinds:
        where = [w for w, df in (("reference", reference), ("current batch", current)) if col not in df.columns]
        if where:
            out["skipped"][col] = "absent from the " + " and the ".join(where)
        else:
            present.append(col)

    def done(reason: str) -> dict[str, Any]:
        out["reason"] = reason
        out["sample_note"] = f"Evidently not run: {reason}"
        out["seconds"] = time.perf_counter() - t0
        return out

    if len(current) == 0:
        return done("the current batch is empty")
    if len(reference) == 0:
        return done("the reference is empty")
    if len(current) < drift_spec.min_rows:
        return done(f"the batch has {len(current)} rows, fewer than drift.min_rows = {drift_spec.min_rows}")

    cur_s = _sample(current, present, n, seed)
    ref_s = _sample(reference, present, n, seed + 1)
    cols = []
    for col in present:
        reason = _evidently_skip_reason(ref_s[col], cur_s[col], kinds[col])
        if reason:
            out["skipped"][col] = reason
        else:
            cols.append(col)
    if not cols:
        return done("no column left that Evidently can compare")
    num_cols = [c for c in cols if kinds[c] == "numeric"]
    cat_cols = [c for c in cols if kinds[c] == "categorical"]
    for c in num_cols:  # nullable / object numbers as float64 (on the sample only)
        if cur_s[c].dtype != "float64" or ref_s[c].dtype != "float64":
            cur_s[c] = pd.to_numeric(cur_s[c]).astype("float64")
            ref_s[c] = pd.to_numeric(ref_s[c]).astype("float64")
    for c in cat_cols:  # categories as plain strings, missing as NaN (on the sample only)
        cur_s[c] = _category_labels(cur_s[c])
        ref_s[c] = _category_labels(ref_s[c])
    out["columns"] = cols

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    per_method = {c: o.method for c, o in drift_spec.columns.items() if c in cols and o.method}
    per_threshold = {c: o.threshold for c, o in drift_spec.columns.items() if c in cols and o.threshold}
    definition = DataDefinition(numerical_columns=num_cols, categorical_columns=cat_cols)
    report = Report(
        [
            DataDriftPreset(columns=cols, num_method=drift_spec.num_method, cat_method=drift_spec.cat_method,
                            threshold=drift_spec.stattest_threshold, per_column_method=per_method or None,
                            per_column_threshold=per_threshold or None, drift_share=drift_spec.dataset_drift_share),
            DataSummaryPreset(columns=cols),
        ],
        # The per-column drift verdicts exist only as tests, and tests are produced only when
        # the Report itself has include_tests=True (the presets' own flags are not enough).
        include_tests=True,
    )
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy divide-by-zero warnings on empty categories
            snapshot = report.run(Dataset.from_pandas(cur_s, data_definition=definition),
                                  Dataset.from_pandas(ref_s, data_definition=definition))
            page = snapshot.get_html_str(as_iframe=False)
        verdicts = _read_snapshot(snapshot.dict())
    except Exception as err:  # noqa: BLE001 - a broken human report must not stop monitoring
        log.warning("Evidently report failed: %s: %s", type(err).__name__, err)
        out["error"] = f"{type(err).__name__}: {err}"
        out["seconds"] = time.perf_counter() - t0
        return out
    marker = page.find("<body>")
    banner = _banner(title, note, out["skipped"])
    page = page[: marker + 6] + banner + page[marker + 6:] if marker >= 0 else banner + page
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(page, encoding="utf-8")
    out.update(verdicts)
    out["ran"] = True
    out["html_path"] = str(html_path)
    out["seconds"] = time.perf_counter() - t0
    return out


__all__ = [
    "Binning", "DriftError", "DriftResult", "FeatureDrift", "TESTED_STATUSES", "UNTESTED_STATUSES",
    "bin_shares", "column_drift", "compute_drift", "evidently_drift_report", "freeze_bins", "psi", "traffic_light",
]
