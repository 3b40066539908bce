"""The statistics of the gate's comparisons, on plain arrays: DeLong's variance of ROC AUC (one
implementation of the mid-rank structural components, for one AUC and for a paired difference),
the Diebold-Mariano interval with the Harvey-Leybourne-Newbold correction, and the resampling
indices of the paired bootstrap (rows, or circular blocks for time-ordered rows).

Imports numpy and scipy only; nothing here knows a metric's name. Formulas and sources:
``docs/gates.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class StatisticsError(ValueError):
    """The data cannot carry the statistic (too few rows, events or non-events)."""


def _z(confidence: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(0.5 + confidence / 2))


# --------------------------------------------------------------------------- DeLong


def _auc_from_ranks(rank_sum_events: float, m: int, n: int) -> float:
    """Mann-Whitney: AUC from the sum of the events' mid-ranks among all ``m + n`` rows."""
    return float((rank_sum_events - m * (m + 1) / 2) / (m * n))


def rank_auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC from mid-ranks (ties count one half), without input checks; ``nan`` without
    events or non-events. Equal to scikit-learn's ``roc_auc_score`` and about 20 times faster
    on 1,000 rows, for resampling loops."""
    from scipy import stats

    pos = np.asarray(y) == 1
    m = int(pos.sum())
    n = len(pos) - m
    if m == 0 or n == 0:
        return float("nan")
    return _auc_from_ranks(stats.rankdata(s)[pos].sum(), m, n)


@dataclass(frozen=True)
class DelongComponents:
    """The structural components of one score's ROC AUC (DeLong et al. 1988).

    Attributes:
        auc: the area under the ROC curve (ties count one half).
        v10: one value per event, shape (m,): the share of non-events it outranks.
        v01: one value per non-event, shape (n,): the share of events that outrank it.
    """

    auc: float
    v10: np.ndarray
    v01: np.ndarray


def delong_components(y: np.ndarray, s: np.ndarray) -> DelongComponents:
    """AUC and structural components of score ``s`` for 0/1 labels ``y`` (same length).

    Computed from mid-ranks (Sun & Xu 2014): ``O(N log N)`` instead of all event/non-event pairs.

    Raises:
        StatisticsError: fewer than two events or two non-events.
    """
    y = np.asarray(y, dtype=float)
    s = np.asarray(s, dtype=float)
    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    if m < 2 or n < 2:
        raise StatisticsError("DeLong needs at least two events and two non-events")
    from scipy import stats

    x, z = s[pos], s[neg]
    tx = stats.rankdata(x, method="average")
    tz = stats.rankdata(z, method="average")
    tall = stats.rankdata(np.concatenate([x, z]), method="average")
    auc = _auc_from_ranks(tall[:m].sum(), m, n)
    return DelongComponents(auc, (tall[:m] - tx) / n, 1.0 - (tall[m:] - tz) / m)


def auc_interval(y: np.ndarray, s: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """DeLong normal interval of one ROC AUC, clipped to [0, 1]; ``(nan, nan)`` when fewer than
    two events or non-events."""
    try:
        c = delong_components(y, s)
    except StatisticsError:
        return float("nan"), float("nan")
    se = math.sqrt(np.var(c.v10, ddof=1) / len(c.v10) + np.var(c.v01, ddof=1) / len(c.v01))
    z = _z(confidence)
    return max(0.0, float(c.auc - z * se)), min(1.0, float(c.auc + z * se))


@dataclass(frozen=True)
class DelongDifference:
    """``AUC(a) - AUC(b)`` on the same rows with its DeLong normal interval."""

    auc_a: float
    auc_b: float
    diff: float
    low: float
    high: float
    se: float


def delong_difference(y: np.ndarray, a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> DelongDifference:
    """DeLong interval of the difference of two correlated ROC AUCs (two scores of the same rows).

    Raises:
        StatisticsError: fewer than two events or two non-events.
    """
    ca, cb = delong_components(y, a), delong_components(y, b)
    m, n = len(ca.v10), len(ca.v01)
    cov = np.cov(np.vstack([ca.v10, cb.v10])) / m + np.cov(np.vstack([ca.v01, cb.v01])) / n
    diff = ca.auc - cb.auc
    se = math.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0))
    z = _z(confidence)
    return DelongDifference(ca.auc, cb.auc, float(diff), float(diff - z * se), float(diff + z * se), se)


# --------------------------------------------------------------------------- Diebold-Mariano


@dataclass(frozen=True)
class DieboldMariano:
    """The mean of a loss differential with its HLN-corrected Student-t interval.

    Attributes:
        mean: mean of ``d``; low, high: its interval; se: the corrected standard error.
        lags: autocovariance lags used (``horizon - 1``).
        weights: ``"equal weights"``, or the Bartlett fallback in words.
    """

    mean: float
    low: float
    high: float
    se: float
    lags: int
    weights: str


def diebold_mariano_interval(d: np.ndarray, horizon: int = 1, confidence: float = 0.95) -> DieboldMariano:
    """Interval of the mean loss differential ``d`` (one value per row, time order).

    Variance: autocovariances up to lag ``horizon - 1`` with equal weights (Diebold & Mariano
    1995); when that sum is not positive, Bartlett (Newey-West) weights. The standard error is
    divided by the Harvey, Leybourne & Newbold (1997) factor
    ``sqrt((n + 1 - 2h + h(h - 1)/n) / n)``; Student-t quantile with ``n - 1`` degrees of freedom.

    Raises:
        StatisticsError: fewer than 10 rows.
    """
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n < 10:
        raise StatisticsError("Diebold-Mariano needs at least 10 rows")
    mean = float(d.mean())
    dc = d - mean
    lags = max(0, int(horizon) - 1)
    gamma0 = float(dc @ dc) / n
    gammas = [float(dc[k:] @ dc[:-k]) / n for k in range(1, lags + 1)]
    var = gamma0 + 2 * sum(gammas)
    weights = "equal weights"
    if var <= 0:
        var = gamma0 + 2 * sum((1 - k / (lags + 1)) * g for k, g in enumerate(gammas, start=1))
        weights = "Bartlett weights (the equal-weight sum was not positive)"
    var = max(var, gamma0 * 1e-12, 1e-300)
    h = max(1, int(horizon))
    correction = math.sqrt(max((n + 1 - 2 * h + h * (h - 1) / n) / n, 1e-12))
    se = math.sqrt(var / n) / correction
    from scipy import stats

    t = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1))
    return DieboldMariano(mean, mean - t * se, mean + t * se, se, lags, weights)


# --------------------------------------------------------------------------- bootstrap


def circular_block_indices(rng: np.random.Generator, n: int, block: int) -> np.ndarray:
    """Row indices of one circular-block bootstrap replicate, shape (n,).

    ``ceil(n / block)`` blocks of ``block`` consecutive rows, each starting at a uniformly drawn
    row and wrapping from the last row to the first (Politis & Romano 1992), cut to ``n`` rows.
    Every position of every block is uniform over the rows, so each row is drawn once per
    replicate on average: the ends are not under-sampled as with moving blocks that stop at
    the last row.
    """
    starts = rng.integers(0, n, size=int(math.ceil(n / block)))
    return ((starts[:, None] + np.arange(block)[None, :]) % n).ravel()[:n]


def bootstrap_indices(rng: np.random.Generator, n: int, block: int | None = None) -> np.ndarray:
    """One replicate's row indices: circular blocks when ``block > 1``, else rows drawn one by one."""
    if block and block > 1:
        return circular_block_indices(rng, n, block)
    return rng.integers(0, n, size=n)


def block_length(n: int, horizon: int = 1) -> int:
    """The block length for a time-ordered holdout of ``n`` rows: ``max(horizon, round(n ** (1/3)))``
    (the ``n^(1/3)`` rate of Hall, Horowitz & Jing 1995; at least the label horizon, so that
    overlapping targets stay inside one block)."""
    return max(int(horizon), round(n ** (1 / 3)))


def percentile_interval(values: list[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The equal-tailed percentile interval of bootstrap replicates; ``(nan, nan)`` without any."""
    if len(values) == 0:
        return float("nan"), float("nan")
    alpha = 1 - confidence
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


# --------------------------------------------------------------------------- calibration in the large


@dataclass(frozen=True)
class RateTest:
    """An observed event rate against a predicted probability (:func:`rate_test`).

    ``p_value``: two-sided exact binomial p-value of ``events`` in ``rows`` under the predicted
    probability; ``jeffreys_low``, ``jeffreys_high``: the equal-tailed Jeffreys interval of the
    observed rate at ``confidence``.
    """

    events: int
    rows: int
    predicted: float
    p_value: float
    jeffreys_low: float
    jeffreys_high: float
    confidence: float

    @property
    def observed(self) -> float:
        """``events / rows``."""
        return self.events / self.rows


def rate_test(events: int, rows: int, predicted: float, confidence: float = 0.99) -> RateTest:
    """Exact binomial test and Jeffreys interval of an observed event rate against a predicted one.

    Args:
        events: observed events (defaults), ``0 <= events <= rows``; rows: labelled rows (> 0).
        predicted: the predicted event probability (the mean predicted PD), in [0, 1].
        confidence: level of the Jeffreys interval, in (0, 1).

    Returns:
        :class:`RateTest`. The p-value is ``scipy.stats.binomtest(events, rows, predicted)``
        (two-sided, exact; Clopper & Pearson's binomial reasoning); the Jeffreys interval is the
        ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of
        ``Beta(events + 1/2, rows - events + 1/2)`` (``scipy.stats.beta``), with 0 as the lower
        end when ``events == 0`` and 1 as the upper end when ``events == rows`` (Brown, Cai &
        DasGupta, "Interval Estimation for a Binomial Proportion", Statistical Science 16, 2001;
        the ECB's "Instructions for reporting the validation results of internal models", 2019,
        back-test PD with the Jeffreys test).

    Raises:
        StatisticsError: ``rows < 1``, ``events`` outside ``[0, rows]``, ``predicted`` outside
            [0, 1] or not finite, or ``confidence`` outside (0, 1).
    """
    from scipy import stats

    if rows < 1 or not 0 <= events <= rows:
        raise StatisticsError(f"need 0 <= events <= rows and rows >= 1 (events {events}, rows {rows})")
    if not (math.isfinite(predicted) and 0.0 <= predicted <= 1.0):
        raise StatisticsError(f"the predicted probability must be in [0, 1], got {predicted}")
    if not 0.0 < confidence < 1.0:
        raise StatisticsError(f"confidence must be in (0, 1), got {confidence}")
    p_value = float(stats.binomtest(int(events), int(rows), float(predicted)).pvalue)
    tail = (1.0 - confidence) / 2
    a, b = events + 0.5, rows - events + 0.5
    low = 0.0 if events == 0 else float(stats.beta.ppf(tail, a, b))
    high = 1.0 if events == rows else float(stats.beta.ppf(1.0 - tail, a, b))
    return RateTest(events=int(events), rows=int(rows), predicted=float(predicted), p_value=min(1.0, p_value),
                    jeffreys_low=low, jeffreys_high=high, confidence=confidence)
