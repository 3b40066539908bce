"""The supervisors' back-tests of a probability-of-default (PD) model, on plain arrays: rating
grades and their table, the Jeffreys and exact binomial tests of a grade's PD, discriminatory
power against the initial validation, the Herfindahl concentration of obligors over grades, the
migration matrix with its matrix-weighted bandwidths, and the long-run average default rate.

Source of every test: European Central Bank, "Instructions for reporting the validation results
of internal models: IRB Pillar I models for credit risk", February 2019 (here "ECB
instructions"). The ECB sets no pass/fail thresholds: each function returns p-values or figures,
coloured by the spec's ``validation.policy``. Imports numpy and scipy only (and the spec's
rating section). Reading: docs/backtesting.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.spec.rating import RatingScaleSpec
from models.statistics import StatisticsError, delong_components

__all__ = ["AucChangeTest", "Concentration", "Migration", "assign_grades", "auc_change_test", "binomial_test",
           "grade_table", "herfindahl", "jeffreys_test", "long_run_default_rate", "matrix_weighted_bandwidths",
           "migration_matrix"]


def _probabilities(pd_values) -> np.ndarray:
    p = np.asarray(pd_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"PDs must be one-dimensional, got shape {p.shape}")
    if np.isnan(p).any():
        raise ValueError(f"{int(np.isnan(p).sum())} PD(s) are missing (NaN): a missing score has no grade")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("PDs must be probabilities in [0, 1]")
    return p


def assign_grades(pd_values, scale: RatingScaleSpec) -> np.ndarray:
    """The grade of each PD: its index into ``scale.names`` (0 = best grade), shape (n,), int.

    Grade ``i`` holds the PDs in ``(b_{i-1}, b_i]`` of the scale's upper bounds
    (:attr:`RatingScaleSpec.upper_bounds`): a PD equal to a bound is in the lower (better) grade;
    a PD of 0 is in the first grade, a PD of 1 in the last (open-ended) one.

    Raises:
        ValueError: a PD that is NaN or outside [0, 1], or an array that is not one-dimensional.
    """
    p = _probabilities(pd_values)
    return np.searchsorted(np.asarray(scale.upper_bounds), p, side="left").astype(int)


def jeffreys_test(defaults: int, obligors: int, pd: float) -> float | None:
    """One-sided Jeffreys test of a grade's PD: ``p = F(pd)``, ``F`` the CDF of
    ``Beta(D + 1/2, N − D + 1/2)`` (the posterior of the default rate under the Jeffreys prior);
    a small p says the observed default rate is above what the PD allows (the PD is too low).
    ECB instructions §2.5.3.1. None for a grade without obligors.

    Raises:
        StatisticsError: ``defaults`` outside ``[0, obligors]`` or ``pd`` outside [0, 1].
    """
    _check_counts(defaults, obligors, pd)
    if obligors == 0:
        return None
    from scipy import stats

    return float(stats.beta.cdf(pd, defaults + 0.5, obligors - defaults + 0.5))


def binomial_test(defaults: int, obligors: int, pd: float) -> float | None:
    """One-sided exact binomial test of a grade's PD: ``p = P(X >= D)`` for ``X ~ Binomial(N, pd)``
    (``scipy.stats.binom.sf(D − 1, N, pd)``), small when there are more defaults than the PD
    allows. The classical test of the Basel Committee's Working Paper 14, "Studies on the validation
    of internal rating systems", 2005. None for a grade without obligors.

    Raises:
        StatisticsError: ``defaults`` outside ``[0, obligors]`` or ``pd`` outside [0, 1].
    """
    _check_counts(defaults, obligors, pd)
    if obligors == 0:
        return None
    from scipy import stats

    return float(stats.binom.sf(defaults - 1, obligors, pd))


def _check_counts(defaults: int, obligors: int, pd: float) -> None:
    if obligors < 0 or not 0 <= defaults <= obligors:
        raise StatisticsError(f"need 0 <= defaults <= obligors (defaults {defaults}, obligors {obligors})")
    if not (math.isfinite(pd) and 0.0 <= pd <= 1.0):
        raise StatisticsError(f"the PD must be in [0, 1], got {pd}")


def grade_table(pd_values, outcomes, scale: RatingScaleSpec) -> list[dict]:
    """The grade table: one row per grade of ``scale``, best first, empty grades included.

    Args:
        pd_values: PDs, shape (n,), in [0, 1]. outcomes: 0/1 defaults, shape (n,).

    Returns:
        Rows ``{grade, min_pd, max_pd, obligors, defaults, mean_pd, default_rate, share}``:
        ``min_pd`` / ``max_pd`` the grade's PD interval ``(min_pd, max_pd]`` (None for the last
        grade's upper end; 0 for the first's lower), ``mean_pd`` the mean PD of its obligors (the
        grade's PD the tests use), ``default_rate`` defaults / obligors, ``share`` obligors / n
        (``mean_pd`` and ``default_rate`` None for an empty grade).

    Raises:
        ValueError: the PDs are invalid (:func:`assign_grades`), outcomes are not 0/1, or the
            lengths differ.
    """
    p = _probabilities(pd_values)
    y = np.asarray(outcomes, dtype=float)
    if y.shape != p.shape:
        raise ValueError(f"PDs and outcomes differ in length ({len(p)} and {len(y)})")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("outcomes must be 0 (no default) or 1 (default)")
    grade = assign_grades(p, scale)
    bounds = [0.0, *scale.upper_bounds, None]
    rows = []
    for i, name in enumerate(scale.names):
        inside = grade == i
        n, d = int(inside.sum()), int(y[inside].sum())
        rows.append({"grade": name, "min_pd": bounds[i], "max_pd": bounds[i + 1], "obligors": n, "defaults": d,
                     "mean_pd": float(p[inside].mean()) if n else None, "default_rate": d / n if n else None,
                     "share": n / len(p) if len(p) else 0.0})
    return rows


@dataclass(frozen=True)
class AucChangeTest:
    """Discriminatory power now against the initial validation (:func:`auc_change_test`): the two
    AUCs, the DeLong standard error of the current one, ``S`` and its one-sided p-value."""

    auc_initial: float
    auc_current: float
    se_current: float
    statistic: float
    p_value: float


def auc_change_test(auc_initial: float, outcomes, scores) -> AucChangeTest:
    """Test of a fall in ROC AUC from the initial validation: ``S = (AUC_init − AUC_curr) / s``
    with ``s`` the DeLong standard error of the current AUC (:func:`models.statistics.delong_components`,
    ``s² = var(V10)/m + var(V01)/n``), ``p = 1 − Φ(S)``: small when the current AUC is well below
    the initial one. ECB instructions, "current AUC vs. AUC at the time of initial validation".

    Args:
        auc_initial: the AUC at initial validation (the version's holdout AUC), in [0, 1].
        outcomes: 0/1 defaults, shape (n,). scores: PDs (or any score rising with risk), shape (n,).

    Raises:
        StatisticsError: fewer than two defaults or non-defaults, or a zero standard error.
    """
    from scipy import stats

    c = delong_components(outcomes, scores)
    se = math.sqrt(np.var(c.v10, ddof=1) / len(c.v10) + np.var(c.v01, ddof=1) / len(c.v01))
    if se == 0:
        raise StatisticsError("the current AUC has a zero DeLong standard error (perfect separation)")
    statistic = (float(auc_initial) - c.auc) / se
    return AucChangeTest(auc_initial=float(auc_initial), auc_current=c.auc, se_current=se, statistic=statistic,
                         p_value=float(stats.norm.sf(statistic)))


@dataclass(frozen=True)
class Concentration:
    """Concentration of obligors over ``grades`` grades (:func:`herfindahl`)."""

    grades: int
    cv: float
    herfindahl_index: float


def herfindahl(obligors) -> Concentration:
    """The Herfindahl index of obligors over grades, with its coefficient of variation::

        R_i = N_i / N,   CV = sqrt(K · Σ (R_i − 1/K)²),   HI = 1 + ln((CV² + 1) / K) / ln K

    over all ``K`` grades of the scale (empty grades included). HI is 0 when obligors are spread
    evenly, 1 when all are in one grade; since ``CV² + 1 = K · Σ R_i²`` it is the classical
    Herfindahl-Hirschman sum ``Σ R_i²`` rescaled from ``[1/K, 1]`` to ``[0, 1]`` on a log scale.
    ECB instructions (concentration in rating grades). The ECB text itself was not at hand to
    re-read; the formula agrees with an independent public implementation and with the two limits
    above.

    Args:
        obligors: obligors per grade, shape (K,), K >= 2, not all zero.

    Raises:
        StatisticsError: fewer than two grades, a negative count, or no obligor.
    """
    n = np.asarray(obligors, dtype=float)
    if n.ndim != 1 or len(n) < 2:
        raise StatisticsError("the Herfindahl index needs at least two grades")
    if (n < 0).any() or n.sum() == 0:
        raise StatisticsError("obligor counts must be >= 0 and not all zero")
    k = len(n)
    r = n / n.sum()
    cv = math.sqrt(k * float(((r - 1.0 / k) ** 2).sum()))
    return Concentration(grades=k, cv=cv, herfindahl_index=1.0 + math.log((cv * cv + 1.0) / k) / math.log(k))


@dataclass(frozen=True)
class Migration:
    """Grades of the same obligors at two dates (or from two versions): ``counts[i][j]`` obligors
    in grade ``i`` at the first and ``j`` at the second; ``rates`` the same per row of the first
    grade (None for a grade without obligors); the matrix-weighted bandwidths (None when no
    obligor could move that way)."""

    grades: list[str]
    counts: list[list[int]]
    rates: list[list[float] | None]
    upper_mwb: float | None
    lower_mwb: float | None
    obligors: int


def migration_matrix(first, second, names: list[str]) -> Migration:
    """The migration matrix between two gradings of the same obligors (same order), with the
    matrix-weighted bandwidths of :func:`matrix_weighted_bandwidths`.

    Args:
        first, second: grade indices into ``names`` (0 = best), shape (n,) each, same obligors.
        names: the grade names, best first (K >= 2).

    Raises:
        ValueError: the lengths differ, or an index outside ``[0, K)``.
    """
    a, b = np.asarray(first), np.asarray(second)
    k = len(names)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"the two gradings must have the same obligors (lengths {a.shape} and {b.shape})")
    if len(a) and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= k):
        raise ValueError(f"grade indices must be in [0, {k})")
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (a.astype(int), b.astype(int)), 1)
    lower, upper = matrix_weighted_bandwidths(counts)
    rows = counts.sum(axis=1)
    rates = [None if rows[i] == 0 else (counts[i] / rows[i]).tolist() for i in range(k)]
    return Migration(grades=list(names), counts=counts.tolist(), rates=rates, upper_mwb=upper, lower_mwb=lower,
                     obligors=len(a))


def matrix_weighted_bandwidths(counts) -> tuple[float | None, float | None]:
    """``(lower, upper)`` matrix-weighted bandwidths of a K × K migration count matrix (rows: grade
    at the first date, best first), ECB instructions §2.6 (stability, customer migrations)::

        p_ij = n_ij / N_i
        MWB_upper = Σ_{i=1}^{K-1} Σ_{j=i+1}^{K} |i − j| N_i p_ij / M_upper
        M_upper   = Σ_{i=1}^{K-1} max(|i − K|, |i − 1|) N_i Σ_{j=i+1}^{K} p_ij
        MWB_lower = Σ_{i=2}^{K} Σ_{j=1}^{i-1} |i − j| N_i p_ij / M_lower
        M_lower   = Σ_{i=2}^{K} max(|i − K|, |i − 1|) N_i Σ_{j=1}^{i-1} p_ij

    ``upper`` measures moves to worse grades (above the diagonal), ``lower`` to better ones, each
    in [0, 1] (0: no move, 1: every mover as far as its grade allows). None when no obligor moved
    that way (the normaliser is 0). Checked against MathWorks' ``risk.validation.matrixWeightedBandwidth``
    worked example (0.3306, 0.6066).

    Raises:
        ValueError: not a square matrix of at least 2 × 2 non-negative counts.
    """
    n = np.asarray(counts, dtype=float)
    if n.ndim != 2 or n.shape[0] != n.shape[1] or n.shape[0] < 2 or (n < 0).any():
        raise ValueError(f"a migration matrix is a K x K (K >= 2) matrix of counts, got shape {n.shape}")
    k = n.shape[0]
    i, j = np.indices((k, k)) + 1
    reach = np.maximum(np.abs(i - k), np.abs(i - 1))  # the farthest a move from grade i can go
    distance = np.abs(i - j)
    above, below = j > i, j < i
    # N_i p_ij = n_ij, so the sums need only the counts
    m_up, m_lo = float((reach * n * above).sum()), float((reach * n * below).sum())
    upper = float((distance * n * above).sum()) / m_up if m_up else None
    lower = float((distance * n * below).sum()) / m_lo if m_lo else None
    return lower, upper


def long_run_default_rate(vintages, pd_values, outcomes) -> dict:
    """The long-run average default rate across vintages against the mean PD.

    Per vintage (scoring month, quarter or year): obligors, defaults, default rate, mean PD. The
    long-run average default rate is the arithmetic mean of the vintages' one-year default rates
    (EBA Guidelines on PD estimation, EBA/GL/2017/16, §§ 80–81: a simple average unless the
    weighting is justified), compared with the arithmetic mean of the vintages' mean PDs; the
    obligor-weighted (pooled) rate is given beside it.

    Args:
        vintages: a vintage label per obligor, shape (n,) (sortable). pd_values: PDs, shape (n,).
        outcomes: 0/1 defaults, shape (n,).

    Returns:
        ``{vintages: [{vintage, obligors, defaults, default_rate, mean_pd}], long_run_default_rate,
        long_run_mean_pd, pooled_default_rate, pooled_mean_pd, difference}`` (``difference`` =
        long-run default rate − long-run mean PD).

    Raises:
        ValueError: no obligor, lengths differ, invalid PDs or outcomes.
    """
    p = _probabilities(pd_values)
    y = np.asarray(outcomes, dtype=float)
    v = np.asarray(vintages)
    if not (len(p) == len(y) == len(v)) or len(p) == 0:
        raise ValueError("vintages, PDs and outcomes must have the same, non-zero length")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("outcomes must be 0 (no default) or 1 (default)")
    rows = []
    for label in sorted(set(v.tolist())):
        inside = v == label
        n, d = int(inside.sum()), int(y[inside].sum())
        rows.append({"vintage": label, "obligors": n, "defaults": d, "default_rate": d / n,
                     "mean_pd": float(p[inside].mean())})
    lra = float(np.mean([r["default_rate"] for r in rows]))
    lra_pd = float(np.mean([r["mean_pd"] for r in rows]))
    return {"vintages": rows, "long_run_default_rate": lra, "long_run_mean_pd": lra_pd,
            "pooled_default_rate": float(y.mean()), "pooled_mean_pd": float(p.mean()), "difference": lra - lra_pd}
