"""Population stability index on bins frozen from the reference sample, and its traffic light.

The credit-risk convention (Siddiqi 2006, ch. 8; Yurdakul 2018): quantile bins of a numeric column
and one bin per category are fixed on the reference, every batch row is counted into them, and
``PSI = sum((c_b - r_b) * ln(c_b / r_b))`` over the floored shares. The conventions (edges, the
missing and ``<other>`` bins, the floor, the thresholds) are in ``docs/drift.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import pandas as pd

from models.spec import DriftSpec

Kind = Literal["numeric", "categorical"]

MISSING_LABEL = "<missing>"
OTHER_LABEL = "<other>"


class DriftError(ValueError):
    """A column cannot be binned (a numeric column holding non-numbers, an unknown kind)."""


@dataclass(frozen=True)
class Binning:
    """Bins frozen from the reference sample of one column.

    Attributes:
        kind: ``"numeric"`` or ``"categorical"``.
        edges: numeric only: the sorted unique interior edges ``e1 < ... < ek`` (float64,
            possibly empty), each midway between two adjacent distinct reference values; bins
            are ``(-inf, e1], ..., (ek, +inf)`` then missing.
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


def as_float(values: pd.Series) -> np.ndarray:
    """The column as float64 with NaN for missing; a view for a float64 column (no copy)."""
    try:
        return values.to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError) as err:
        raise DriftError(f"column {values.name!r} is declared numeric but holds {values.dtype} values: {err}") from None


def fmt_edge(x: float) -> str:
    """A bin edge or a value for labels and notes: 6 significant digits (``0.1``, ``1.5e+06``)."""
    return f"{x:.6g}"


def _midpoint(a: float, b: float) -> float:
    """A point strictly between the distinct values ``a < b`` that keeps ``a`` at or below it and
    ``b`` above it (``a/2 + b/2`` cannot overflow; adjacent floats give ``a``)."""
    m = a / 2 + b / 2
    return m if a <= m < b else a


def _edge_labels(edges: np.ndarray) -> list[str]:
    """The edges as text, with the fewest significant digits (from 6) that keep them distinct."""
    for digits in range(6, 18):
        text = [f"{e:.{digits}g}" for e in edges]
        if len(set(text)) == len(text):
            return text
    return [repr(float(e)) for e in edges]


def _numeric_binning(x: np.ndarray, n_bins: int) -> Binning:
    finite = np.sort(x[np.isfinite(x)])
    distinct = np.unique(finite)
    if distinct.size <= 1:
        edges = np.empty(0)
    elif distinct.size <= n_bins:  # one bin per reference value
        edges = np.array([_midpoint(a, b) for a, b in pairwise(distinct)])
    else:
        q = np.arange(1, n_bins) / n_bins
        at = np.unique(np.quantile(finite, q, method="inverted_cdf"))
        nxt = np.searchsorted(distinct, at, side="right")  # the next distinct reference value above each
        keep = nxt < distinct.size  # no edge at the reference maximum
        edges = np.array([_midpoint(a, distinct[i]) for a, i in zip(at[keep], nxt[keep])])
    edges = np.ascontiguousarray(edges, dtype="float64")
    if edges.size == 0:
        labels = ["(-inf, +inf)"]
    else:
        bounds = ["-inf"] + _edge_labels(edges) + ["+inf"]
        labels = [f"({lo}, {hi}]" for lo, hi in pairwise(bounds[:-1])]
        labels.append(f"({bounds[-2]}, +inf)")
    return Binning("numeric", edges=edges, labels=tuple(labels) + (MISSING_LABEL,))


def _categorical_binning(values: pd.Series) -> Binning:
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    cats = list(np.asarray(uniques, dtype=object))
    counts = np.bincount(codes[codes >= 0], minlength=len(cats)) if len(cats) else np.zeros(0, dtype=np.int64)
    order = sorted(range(len(cats)), key=lambda i: (-int(counts[i]), str(cats[i])))
    categories = tuple(py_scalar(cats[i]) for i in order)
    labels = tuple(str(c) for c in categories) + (OTHER_LABEL, MISSING_LABEL)
    return Binning("categorical", categories=categories, labels=labels)


def py_scalar(v: Any) -> Any:
    """A NumPy scalar as the Python value (``np.int64(2)`` -> ``2``); anything else unchanged."""
    return v.item() if isinstance(v, np.generic) else v


def freeze_bins(reference: pd.Series, kind: Kind, n_bins: int) -> Binning:
    """Bins of one column, frozen on the reference sample (conventions in ``docs/drift.md``).

    Numeric: each edge lies midway between two adjacent distinct reference values, so that no
    reference value sits on an edge and rounding noise in a batch (``35 -> 35.00000000000001``)
    moves no row across one. A column with at most ``n_bins`` distinct finite reference values
    gets one bin per value (edges at the midpoints between consecutive values); otherwise the
    edges follow the interior quantiles ``1/k, ..., (k-1)/k`` of the finite reference values
    (``numpy.quantile(method="inverted_cdf")``, Hyndman & Fan type 1): each edge is the
    midpoint between the quantile value and the next distinct reference value above it (none at
    the reference maximum), so the reference counts per bin are those of right-closed bins at the
    quantile values. Bins ``(-inf, e1], ..., (ek, +inf)`` and a missing bin; a value exactly on an
    edge belongs to the bin below it. Categorical: the reference's categories by descending
    frequency, ``<other>`` for unseen ones, and ``<missing>``.

    Args:
        reference: the reference values of the column (missing values allowed).
        kind: ``"numeric"`` (quantile bins) or ``"categorical"`` (one bin per category).
        n_bins: numeric only: the number of quantile bins asked for (``drift.bins``); tied
            or discrete data gets fewer, a constant column one.

    Raises:
        DriftError: unknown kind, or a numeric column that holds non-numbers.
    """
    if kind == "numeric":
        return _numeric_binning(as_float(reference), n_bins)
    if kind == "categorical":
        return _categorical_binning(reference)
    raise DriftError(f"unknown column kind {kind!r}; use 'numeric' or 'categorical'")


@dataclass
class BinProfile:
    """Counts of one column over the frozen bins, and what the status checks need.

    Attributes:
        counts: rows per bin, int64, shape ``(binning.n_bins,)`` (the missing bin last).
        rows, missing: rows of the column, and how many are missing.
        distinct: distinct non-missing values, capped at 2 (0, 1 or "2 or more").
        single_value: the value when ``distinct == 1`` (a Python scalar), else None.
    """

    counts: np.ndarray  # int64, one per bin (missing last)
    rows: int
    missing: int
    distinct: int  # distinct non-missing values, capped at 2 (0, 1 or "2 or more")
    single_value: Any = None  # the value when distinct == 1


def profile_column(binning: Binning, values: pd.Series) -> BinProfile:
    """Count ``values`` into the bins of ``binning``: one ``numpy.searchsorted`` pass (numeric) or
    one ``pandas.factorize`` (categorical), without copying the column.

    Raises:
        DriftError: a numeric binning given values that are not numbers.
    """
    rows = len(values)
    if binning.kind == "numeric":
        x = as_float(values)
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
        return BinProfile(counts.astype(np.int64), rows, missing, distinct, single)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    per_unique = np.bincount(codes + 1, minlength=len(uniques) + 1)  # slot 0: missing
    missing = int(per_unique[0])
    n_cat = len(binning.categories)
    seen = pd.Index(list(binning.categories), dtype=object)
    target = seen.get_indexer(pd.Index(np.asarray(uniques, dtype=object), dtype=object))
    target = np.where(target < 0, n_cat, target)  # unseen -> <other>
    if len(uniques):
        counts = np.bincount(target, weights=per_unique[1:], minlength=n_cat + 1).astype(np.int64)
    else:
        counts = np.zeros(n_cat + 1, dtype=np.int64)
    counts = np.append(counts, missing)
    distinct = min(len(uniques), 2)
    single = py_scalar(np.asarray(uniques, dtype=object)[0]) if len(uniques) == 1 else None
    return BinProfile(counts, rows, missing, distinct, single)


def bin_shares(binning: Binning, values: pd.Series) -> np.ndarray:
    """Share of ``values`` in each bin of ``binning`` (missing bin last), before flooring.

    Shares are over all rows, missing values included, and sum to 1 (all zeros for an empty
    series). Shape ``(binning.n_bins,)``, float64.
    """
    p = profile_column(binning, values)
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
