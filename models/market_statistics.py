"""The statistics a risk quant asks of a market model, on plain arrays: the Value-at-Risk of a
volatility forecast, the VaR back-tests (Kupiec's proportion of failures, Christoffersen's
independence and conditional coverage, the Basel traffic light), the Pesaran-Timmermann test of
directional accuracy, and the model confidence set of Hansen, Lunde and Nason.

Imports numpy, scipy and (for the model confidence set only) ``arch``; nothing here knows a spec.
Formulas and sources: ``docs/gates.md`` ("Market models: VaR back-test, model confidence set,
Pesaran-Timmermann").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from models.statistics import StatisticsError

BASEL_WINDOW = 250
"""Trading days of the Basel traffic light (Basel Committee on Banking Supervision 1996,
"Supervisory framework for the use of backtesting in conjunction with the internal models
approach to market risk capital requirements", table 2)."""

BASEL_YELLOW = 0.95
"""Cumulative binomial probability from which the Basel table's yellow zone starts."""

BASEL_RED = 0.9999
"""Cumulative binomial probability from which the Basel table's red zone starts."""

BASEL_PLUS_FACTOR = {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0, 5: 0.40, 6: 0.50, 7: 0.65, 8: 0.75, 9: 0.85}
"""The Basel table's plus factor (added to the capital multiplier of 3) by exception count in 250
days at 99 %; 1.00 from 10 exceptions (BCBS 1996, table 2)."""


def var_quantile(level: float, distribution: str = "normal", dof: float | None = None) -> float:
    """The multiple of the daily volatility that is the one-day VaR at ``level`` (a positive number).

    - ``normal``: ``z = Phi^{-1}(level)`` (2.3263 at 0.99);
    - ``t``: the quantile of Student's t with ``dof`` degrees of freedom *scaled to unit variance*,
      ``t_dof^{-1}(level) * sqrt((dof - 2) / dof)`` (2.6065 at 0.99 with 5 dof), so that ``sigma``
      stays the standard deviation of the return.

    Raises:
        StatisticsError: ``level`` outside (0.5, 1), an unknown distribution, or ``dof`` missing or
            not above 2 for ``t`` (the variance is infinite at 2 and below).
    """
    from scipy import stats

    if not 0.5 < level < 1:
        raise StatisticsError(f"VaR level must be in (0.5, 1), got {level}")
    if distribution == "normal":
        return float(stats.norm.ppf(level))
    if distribution == "t":
        if dof is None or not dof > 2:
            raise StatisticsError(f"the t distribution needs dof > 2 (unit variance), got {dof}")
        return float(stats.t.ppf(level, dof) * math.sqrt((dof - 2) / dof))
    raise StatisticsError(f"unknown VaR distribution {distribution!r}: 'normal' or 't'")


def var_exceptions(returns: np.ndarray, var: np.ndarray) -> np.ndarray:
    """1 where the realised return falls below minus the VaR (a loss beyond the VaR), else 0.

    Args:
        returns: realised returns, shape (n,); var: the VaR of each (positive: a loss), shape (n,).

    Raises:
        StatisticsError: shapes differ or a value is not finite.
    """
    r, v = np.asarray(returns, dtype=float), np.asarray(var, dtype=float)
    if r.shape != v.shape or r.ndim != 1:
        raise StatisticsError(f"returns and VaR must be 1-d of one length, got {r.shape} and {v.shape}")
    if not (np.isfinite(r).all() and np.isfinite(v).all()):
        raise StatisticsError("returns and VaR must be finite")
    return (r < -v).astype(int)


def _xlogy(x: float, y: float) -> float:
    """``x * ln(y)``, 0 when ``x == 0`` (the ``0 * ln 0 = 0`` convention of the likelihoods)."""
    return 0.0 if x == 0 else x * math.log(y)


def _chi2_sf(lr: float, df: int) -> float:
    from scipy import stats

    return float(stats.chi2.sf(max(lr, 0.0), df))


def kupiec_pof(exceptions: np.ndarray, level: float) -> dict[str, Any]:
    """Kupiec's proportion-of-failures likelihood-ratio test of unconditional coverage.

    With ``x`` exceptions in ``n`` days and ``p = 1 - level``:
    ``LR_pof = -2 ln[(1-p)^(n-x) p^x] + 2 ln[(1-x/n)^(n-x) (x/n)^x]``, asymptotically chi-squared
    with 1 degree of freedom under a correct coverage (Kupiec, "Techniques for verifying the
    accuracy of risk measurement models", J. Derivatives 3(2), 1995).

    Returns:
        ``{exceptions, days, expected_rate, observed_rate, lr, p_value}``.

    Raises:
        StatisticsError: no days, or values other than 0 and 1.
    """
    e = _indicator(exceptions)
    n, x, p = len(e), int(e.sum()), 1.0 - level
    phat = x / n
    lr = -2 * (_xlogy(n - x, 1 - p) + _xlogy(x, p)) + 2 * (_xlogy(n - x, 1 - phat) + _xlogy(x, phat))
    return {"exceptions": x, "days": n, "expected_rate": p, "observed_rate": phat, "lr": float(lr),
            "p_value": _chi2_sf(lr, 1)}


def christoffersen(exceptions: np.ndarray, level: float) -> dict[str, Any]:
    """Christoffersen's independence test and the conditional-coverage test.

    With ``n_ij`` the days in state ``j`` after a day in state ``i`` (1 = exception),
    ``pi01 = n01 / (n00 + n01)``, ``pi11 = n11 / (n10 + n11)`` and ``pi = (n01 + n11) / (n - 1)``:
    ``LR_ind = -2 ln[(1-pi)^(n00+n10) pi^(n01+n11)] + 2 ln[(1-pi01)^n00 pi01^n01 (1-pi11)^n10 pi11^n11]``,
    chi-squared with 1 degree of freedom under independence; ``LR_cc = LR_pof + LR_ind``,
    chi-squared with 2 (Christoffersen, "Evaluating interval forecasts", International Economic
    Review 39(4), 1998; the sum uses Kupiec's LR on all ``n`` days, the usual practical form).

    Returns:
        ``{n00, n01, n10, n11, pi01, pi11, lr_ind, p_value_ind, lr_cc, p_value_cc}``; ``pi11`` is
        None when no exception is followed by a day (its term is then 1).

    Raises:
        StatisticsError: fewer than 2 days, or values other than 0 and 1.
    """
    e = _indicator(exceptions)
    if len(e) < 2:
        raise StatisticsError("the independence test needs at least 2 days")
    prev, nxt = e[:-1], e[1:]
    n00 = int(((prev == 0) & (nxt == 0)).sum())
    n01 = int(((prev == 0) & (nxt == 1)).sum())
    n10 = int(((prev == 1) & (nxt == 0)).sum())
    n11 = int(((prev == 1) & (nxt == 1)).sum())
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else None
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    restricted = _xlogy(n00 + n10, 1 - pi) + _xlogy(n01 + n11, pi)
    free = _xlogy(n00, 1 - pi01) + _xlogy(n01, pi01)
    if pi11 is not None:
        free += _xlogy(n10, 1 - pi11) + _xlogy(n11, pi11)
    lr_ind = float(-2 * restricted + 2 * free)
    lr_cc = kupiec_pof(e, level)["lr"] + lr_ind
    return {"n00": n00, "n01": n01, "n10": n10, "n11": n11, "pi01": pi01, "pi11": pi11,
            "lr_ind": lr_ind, "p_value_ind": _chi2_sf(lr_ind, 1), "lr_cc": float(lr_cc),
            "p_value_cc": _chi2_sf(lr_cc, 2)}


def traffic_light(exceptions: np.ndarray, level: float = 0.99) -> dict[str, Any]:
    """The Basel traffic light over the last :data:`BASEL_WINDOW` days (all days when fewer).

    The Basel table (BCBS 1996, table 2: 250 days at 99 %, green 0-4 exceptions, yellow 5-9,
    red 10 or more) is built from the cumulative binomial probability ``P(X <= k)`` of ``k``
    exceptions when the coverage is right: green below 95 %, yellow from 95 %, red from 99.99 %.
    The same rule is applied here to the days actually available and to ``p = 1 - level``, so on
    250 days at 99 % it gives the table itself, and on fewer days (or another level) it gives the
    zones the table's construction implies: ``scaled`` is then True and ``note`` says so. The plus
    factor is given for the table's own case only (250 days at 99 %).

    Returns:
        ``{zone, exceptions, days, level, cumulative_probability, yellow_from, red_from, scaled,
        plus_factor, note}``: ``yellow_from`` / ``red_from`` are the fewest exceptions in that zone.

    Raises:
        StatisticsError: no days, or values other than 0 and 1.
    """
    from scipy import stats

    e = _indicator(exceptions)[-BASEL_WINDOW:]
    n, k, p = len(e), int(e.sum()), 1.0 - level
    cdf = stats.binom.cdf(np.arange(n + 1), n, p)
    yellow_from = int(np.argmax(cdf >= BASEL_YELLOW)) if (cdf >= BASEL_YELLOW).any() else n + 1
    red_from = int(np.argmax(cdf >= BASEL_RED)) if (cdf >= BASEL_RED).any() else n + 1
    zone = "red" if k >= red_from else "yellow" if k >= yellow_from else "green"
    table_case = n == BASEL_WINDOW and math.isclose(level, 0.99)
    note = None
    if not table_case:
        why = []
        if n < BASEL_WINDOW:
            why.append(f"{n} days instead of {BASEL_WINDOW}")
        if not math.isclose(level, 0.99):
            why.append(f"level {level:g} instead of 0.99")
        note = (f"scaled: {' and '.join(why)}; zones from the binomial cumulative probabilities as the Basel table "
                f"builds them (yellow from {yellow_from}, red from {red_from} exceptions)")
    plus = (BASEL_PLUS_FACTOR.get(k, 1.0) if table_case else None)
    return {"zone": zone, "exceptions": k, "days": n, "level": level, "cumulative_probability": float(cdf[k]),
            "yellow_from": yellow_from, "red_from": red_from, "scaled": not table_case, "plus_factor": plus,
            "note": note}


def pesaran_timmermann(actual: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Pesaran and Timmermann's test of directional accuracy against independence.

    With ``P`` the share of correctly predicted directions, ``Py`` and ``Px`` the shares of up
    outcomes and up forecasts, ``P* = Py Px + (1-Py)(1-Px)`` (the hit rate of a forecast
    independent of the outcome), ``V(P) = P*(1-P*)/n`` and
    ``V(P*) = (2Py-1)^2 Px(1-Px)/n + (2Px-1)^2 Py(1-Py)/n + 4 Py Px (1-Py)(1-Px)/n^2``:
    ``S = (P - P*) / sqrt(V(P) - V(P*))``, asymptotically standard normal under independence;
    the p-value is one-sided (``1 - Phi(S)``: skill is a hit rate above ``P*``). Pesaran and
    Timmermann, "A simple nonparametric test of predictive performance", J. Business & Economic
    Statistics 10(4), 1992.

    Args:
        actual, predicted: directions, 1 = up and 0 = not up, shape (n,).

    Returns:
        ``{rows, hit_rate, expected_hit_rate, statistic, p_value, note}``; ``statistic`` and
        ``p_value`` are None (``note`` says why) when the forecast or the outcome never changes
        direction (``V(P) - V(P*)`` is then 0: no test of timing exists).

    Raises:
        StatisticsError: lengths differ, fewer than 2 rows, or values other than 0 and 1.
    """
    from scipy import stats

    y, x = _indicator(actual), _indicator(predicted)
    if len(y) != len(x) or len(y) < 2:
        raise StatisticsError(f"actual and predicted need one length of at least 2 rows, got {len(y)} and {len(x)}")
    n = len(y)
    p_hit, py, px = float(np.mean(y == x)), float(y.mean()), float(x.mean())
    p_star = py * px + (1 - py) * (1 - px)
    v_p = p_star * (1 - p_star) / n
    v_star = ((2 * py - 1) ** 2 * px * (1 - px) / n + (2 * px - 1) ** 2 * py * (1 - py) / n
              + 4 * py * px * (1 - py) * (1 - px) / n**2)
    out: dict[str, Any] = {"rows": n, "hit_rate": p_hit, "expected_hit_rate": p_star, "statistic": None,
                           "p_value": None, "note": None}
    if v_p - v_star <= 1e-15:
        constant = "forecast" if px in (0.0, 1.0) else "outcome"
        out["note"] = f"the {constant} never changes direction on these rows: no test of timing skill exists"
        return out
    s = (p_hit - p_star) / math.sqrt(v_p - v_star)
    out["statistic"], out["p_value"] = float(s), float(stats.norm.sf(s))
    return out


def model_confidence_set(losses: dict[str, np.ndarray], size: float = 0.10, reps: int = 1000,
                         block_size: int | None = None, seed: int = 0, method: str = "R") -> dict[str, Any]:
    """The model confidence set of Hansen, Lunde and Nason (2011, Econometrica 79(2)), through
    ``arch.bootstrap.MCS`` (stationary bootstrap, the package's default; ``method`` ``R`` or ``max``).

    The set holds the best models with probability ``1 - size``: models are removed one by one while
    the test of equal expected loss rejects at ``size``; a model's MCS p-value is the largest test
    p-value up to its removal, and the set is the models whose p-value is at least ``size``.

    Args:
        losses: per-row losses by model name, every array of one length ``n`` (rows in time order).
        block_size: the bootstrap's mean block length (None: arch's ``sqrt(n)``).

    Returns:
        ``{size, method, reps, block_size, rows, included, excluded, p_values}``: names in the set and
        out of it (in the order given), and each model's MCS p-value. Models with identical losses
        are one model to the test (arch's statistic divides by their zero variance) and share its verdict.

    Raises:
        StatisticsError: fewer than 2 models, fewer than 10 rows, lengths differ, or a loss not finite.
    """
    import pandas as pd
    from arch.bootstrap import MCS

    if len(losses) < 2:
        raise StatisticsError("a model confidence set needs at least 2 models")
    frame = pd.DataFrame({name: np.asarray(v, dtype=float) for name, v in losses.items()})
    if len(frame) < 10 or not np.isfinite(frame.to_numpy()).all():
        raise StatisticsError(f"a model confidence set needs at least 10 rows of finite losses, got {len(frame)}")
    same_as: dict[str, str] = {}  # a model whose losses equal an earlier one's takes its place (arch divides by 0)
    for i, name in enumerate(frame.columns):
        twin = next((o for o in frame.columns[:i] if o not in same_as and np.array_equal(frame[o], frame[name])), None)
        if twin is not None:
            same_as[name] = twin
    distinct = frame.drop(columns=list(same_as))
    if distinct.shape[1] < 2:
        p_values, kept = {str(c): 1.0 for c in distinct.columns}, set(distinct.columns)
    else:
        mcs = MCS(distinct, size=size, reps=reps, block_size=block_size, method=method, seed=seed)
        mcs.compute()
        p_values = {str(k): float(v) for k, v in mcs.pvalues["Pvalue"].items()}
        kept = set(mcs.included)
    p_values |= {name: p_values[twin] for name, twin in same_as.items()}
    included = [name for name in losses if same_as.get(name, name) in kept]
    return {"size": size, "method": method, "reps": reps, "block_size": block_size, "rows": len(frame),
            "included": included, "excluded": [n for n in losses if n not in included],
            "p_values": {name: p_values[name] for name in losses}}


def _indicator(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values)
    if v.ndim != 1 or len(v) == 0:
        raise StatisticsError(f"expected a non-empty 1-d sequence of 0 and 1, got shape {v.shape}")
    if not np.isin(v, (0, 1)).all():
        raise StatisticsError("expected values 0 and 1 only")
    return v.astype(int)


__all__ = ["BASEL_PLUS_FACTOR", "BASEL_WINDOW", "christoffersen", "kupiec_pof", "model_confidence_set",
           "pesaran_timmermann", "traffic_light", "var_exceptions", "var_quantile"]
