"""Performance expected from the scores alone, before outcomes mature: the event rate and the ROC
AUC a probability-of-default (PD) model should show *if it is calibrated*, with a bootstrap band.

The idea is NannyML's confidence-based performance estimation (CBPE): when the model's
probabilities are calibrated, each scored row is an event with probability ``p_i``, so every
expected count (events, event/non-event pairs in the right order) follows from the scores
(NannyML documentation, "Estimation of Performance of the Monitored Model", the page
``docs/how_it_works/performance_estimation.rst`` of https://github.com/NannyML/nannyml). The code here
is our own, for the pairwise form of the AUC below; nothing is taken from NannyML.

What it cannot see is said in :data:`WARNING`, which every record carries: the estimate assumes
calibration holds, so a downturn (more defaults at the same scores) or concept drift (a changed
relationship between features and outcome) leaves it unchanged. Reading: docs/backtesting.md.
Imports numpy (and scipy through :mod:`models.statistics`) only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from models.statistics import percentile_interval

__all__ = ["DEFAULT_DRAWS", "WARNING", "PerformanceEstimate", "estimate_performance", "expected_auc_if_calibrated",
           "expected_event_rate", "pairwise_auc"]

DEFAULT_DRAWS = 200
"""Bootstrap draws of the band by default (our convention: enough for a 95 % percentile band's
ends to be stable to about 0.01 on a few hundred rows)."""

WARNING = ("Estimated from the scores alone: assumes the model stays calibrated; it cannot see a change in the "
           "relationship between features and outcome (concept drift) or a downturn that raises default rates at "
           "the same scores.")
"""The fixed text every estimate carries, shown wherever the estimate is shown."""


def _pds(pd_values) -> np.ndarray:
    p = np.asarray(pd_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"PDs must be one-dimensional, got shape {p.shape}")
    if len(p) == 0:
        raise ValueError("no PD: an estimate needs at least one scored row")
    if not np.isfinite(p).all():
        raise ValueError(f"{int((~np.isfinite(p)).sum())} PD(s) are missing or infinite")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("PDs must be probabilities in [0, 1]")
    return p


def pairwise_auc(scores, positive, negative, self_pairs: bool = False) -> float | None:
    """The ROC AUC of weighted rows: the share of (event, non-event) pairs in which the event has
    the higher score, a tie counting one half::

        AUC = Σ_{i,j} a_i b_j [1(s_i > s_j) + ½ · 1(s_i = s_j)] / Σ_{i,j} a_i b_j

    where row ``i`` stands for ``a_i`` events and ``b_i`` non-events at score ``s_i``. With 0/1
    labels ``y`` (``a = y``, ``b = 1 − y``) it is the Mann–Whitney AUC (scikit-learn's
    ``roc_auc_score``). With ``self_pairs=False`` the terms ``i = j`` are left out of both sums
    (a row is not paired with itself; needed when ``a_i`` and ``b_i`` are the two chances of one
    row, as in :func:`expected_auc_if_calibrated`).

    Computed in ``O(n log n)``: the rows are grouped by distinct score (sorted, ties together);
    a group's events beat the non-events of all lower groups and tie with its own.

    Args:
        scores: shape (n,), finite. positive, negative: weights ``a``, ``b``, shape (n,), >= 0.
        self_pairs: whether the pairs ``(i, i)`` count.

    Returns:
        The AUC, or None when there is no (event, non-event) pair (the denominator is 0).

    Raises:
        ValueError: shapes that differ or are not one-dimensional, a score that is not finite, or
            a weight that is negative or not finite.
    """
    s = np.asarray(scores, dtype=float)
    a = np.asarray(positive, dtype=float)
    b = np.asarray(negative, dtype=float)
    if not (s.ndim == 1 and s.shape == a.shape == b.shape):
        raise ValueError(f"scores and weights must be one-dimensional of one length, got shapes {s.shape}, "
                         f"{a.shape}, {b.shape}")
    if not (np.isfinite(s).all() and np.isfinite(a).all() and np.isfinite(b).all()) or (a < 0).any() or (b < 0).any():
        raise ValueError("scores must be finite and weights finite and >= 0")
    _, group = np.unique(s, return_inverse=True)  # group index rises with the score
    group = group.ravel()
    a_g = np.bincount(group, weights=a)
    b_g = np.bincount(group, weights=b)
    below = np.cumsum(b_g) - b_g  # non-event weight of all strictly lower scores
    numerator = float(a_g @ below + 0.5 * (a_g @ b_g))
    denominator = float(a.sum() * b.sum())
    if not self_pairs:
        own = float(a @ b)
        numerator -= 0.5 * own  # a row tied with itself
        denominator -= own
    if denominator <= 0:
        return None
    return min(1.0, max(0.0, numerator / denominator))


def expected_auc_if_calibrated(pd_values) -> float | None:
    """The ROC AUC expected if the model is calibrated (CBPE-style): each row ``i`` is an event
    with probability ``p_i``, independently, so the pair ``(i, j)``, ``i ≠ j``, is an
    (event, non-event) pair with probability ``p_i (1 − p_j)``::

        E_AUC = Σ_{i≠j} p_i (1 − p_j) [1(p_i > p_j) + ½ · 1(p_i = p_j)]  /  Σ_{i≠j} p_i (1 − p_j)

    This is a **ratio of expectations**: the expected number of correctly ordered pairs over the
    expected number of (event, non-event) pairs, not the expectation of the realised AUC (a ratio
    of random counts); the two differ by ``O(1/n)``. NannyML's CBPE builds the expected ROC curve
    from expected confusion-matrix counts at every threshold; its area is the same sum with the
    ``i = j`` terms kept (``½ p_i (1 − p_i)`` in the numerator, ``p_i (1 − p_i)`` in the
    denominator), which we leave out because a row cannot be both an event and a non-event.
    ``O(n log n)`` by sorting (:func:`pairwise_auc`), ties handled as above.

    Args:
        pd_values: PDs, shape (n,), in [0, 1], n >= 1.

    Returns:
        ``E_AUC`` in [0, 1] (0.5 when all PDs are equal), or None when no pair can be an
        (event, non-event) pair (one row, or every PD 0, or every PD 1).

    Raises:
        ValueError: no PD, a PD missing or outside [0, 1], or not one-dimensional.
    """
    p = _pds(pd_values)
    return pairwise_auc(p, p, 1.0 - p, self_pairs=False)


def expected_event_rate(pd_values) -> float:
    """The event (default) rate expected if the model is calibrated: the mean PD, ``Σ p_i / n``.

    Raises:
        ValueError: as :func:`expected_auc_if_calibrated`.
    """
    return float(_pds(pd_values).mean())


@dataclass(frozen=True)
class PerformanceEstimate:
    """The event rate and ROC AUC expected from ``rows`` scores if the model is calibrated
    (:func:`estimate_performance`), each with its bootstrap percentile band at ``confidence``.

    Attributes:
        rows: scored rows the estimate is made on.
        expected_event_rate: the mean PD; ``event_rate_low`` / ``event_rate_high`` its band.
        expected_auc: :func:`expected_auc_if_calibrated` (None without a possible pair);
            ``auc_low`` / ``auc_high`` its band (None when no draw had both classes).
        draws: bootstrap draws made; ``draws_without_auc``: draws with a class missing (no AUC;
            the AUC band is over the others). seed: the generator's seed. confidence: the band's level.
        warning: :data:`WARNING`, the estimate's blind spots.
    """

    rows: int
    expected_event_rate: float
    event_rate_low: float
    event_rate_high: float
    expected_auc: float | None
    auc_low: float | None
    auc_high: float | None
    draws: int
    draws_without_auc: int
    seed: int
    confidence: float
    warning: str = WARNING

    def as_dict(self) -> dict:
        """The record as a plain JSON-ready dict (same keys as the attributes)."""
        return asdict(self)


def estimate_performance(pd_values, draws: int = DEFAULT_DRAWS, seed: int = 0,
                         confidence: float = 0.95) -> PerformanceEstimate:
    """The expected event rate and AUC of :func:`expected_event_rate` and
    :func:`expected_auc_if_calibrated`, with a bootstrap band of what a calibrated model would
    realise on a sample like this one.

    Each of the ``draws`` draws resamples the ``n`` rows with replacement, then draws every
    resampled row's outcome ``y ~ Bernoulli(p)``, and computes the draw's realised event rate and
    AUC (:func:`pairwise_auc`; no AUC when the draw has no event or no non-event). The band is the
    equal-tailed percentile interval of the draws (2.5 % and 97.5 % at ``confidence = 0.95``;
    :func:`models.statistics.percentile_interval`). For speed a draw is made by counts: a row drawn
    ``w`` times gets ``Binomial(w, p)`` events among its copies, which has the same distribution as
    ``w`` separate Bernoulli draws (``O(n)`` per draw after one sort).

    The band holds both the outcome noise and the sampling noise of the rows; for the realised
    figures of these very rows under a calibrated model it covered them about as often as
    ``confidence`` says (measured: 95.9 % for the AUC, 96.2 % for the event rate, 1,000
    simulations of 500 rows; docs/backtesting.md). It assumes calibration: see :data:`WARNING`.

    Args:
        pd_values: PDs, shape (n,), in [0, 1], n >= 1.
        draws: bootstrap draws (>= 1; default :data:`DEFAULT_DRAWS`).
        seed: seed of ``numpy.random.default_rng``; the same seed and PDs give the same band.
        confidence: level of the band, in (0, 1).

    Raises:
        ValueError: invalid PDs (as :func:`expected_auc_if_calibrated`), ``draws < 1`` or
            ``confidence`` outside (0, 1).
    """
    p = _pds(pd_values)
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise ValueError(f"draws must be a whole number >= 1, got {draws!r}")
    if not (isinstance(confidence, (int, float)) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    n = len(p)
    rng = np.random.default_rng(seed)
    order = np.argsort(p, kind="stable")
    p_sorted = p[order]
    _, group = np.unique(p_sorted, return_inverse=True)
    groups = int(group.max()) + 1
    rates, aucs = np.empty(draws), []
    for k in range(draws):
        copies = np.bincount(rng.integers(0, n, size=n), minlength=n)
        events = rng.binomial(copies, p_sorted)
        non_events = copies - events
        rates[k] = events.sum() / n
        auc = _grouped_auc(group, groups, events, non_events)
        if auc is not None:
            aucs.append(auc)
    rate_low, rate_high = percentile_interval(rates, confidence)
    auc_low, auc_high = percentile_interval(aucs, confidence) if aucs else (None, None)
    return PerformanceEstimate(rows=n, expected_event_rate=float(p.mean()), event_rate_low=rate_low,
                               event_rate_high=rate_high, expected_auc=pairwise_auc(p, p, 1.0 - p),
                               auc_low=auc_low, auc_high=auc_high, draws=int(draws),
                               draws_without_auc=int(draws) - len(aucs), seed=int(seed), confidence=float(confidence))


def _grouped_auc(group: np.ndarray, groups: int, events: np.ndarray, non_events: np.ndarray) -> float | None:
    """:func:`pairwise_auc` with ``self_pairs=True`` for counts on rows already grouped by score."""
    total_a, total_b = int(events.sum()), int(non_events.sum())
    if total_a == 0 or total_b == 0:
        return None
    a_g = np.bincount(group, weights=events, minlength=groups)
    b_g = np.bincount(group, weights=non_events, minlength=groups)
    below = np.cumsum(b_g) - b_g
    value = float(a_g @ below + 0.5 * (a_g @ b_g)) / (total_a * total_b)
    return min(1.0, max(0.0, value)) if math.isfinite(value) else None
