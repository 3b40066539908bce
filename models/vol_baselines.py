"""Volatility baselines fitted inside the walk-forward folds: EWMA (RiskMetrics), GARCH(1,1),
GJR-GARCH(1,1,1), HAR-RV and log-HAR, each fitted on one fold's training rows only and forecasting
the candidates' target on that fold's test rows.

The target (:class:`models.features.RealisedVolatilityBuilder`) is the annualised realised volatility
of the next ``h`` trading days, ``sqrt(A / h * sum_{i=1..h} r_{t+i}^2)`` for the daily log returns
``r`` and ``A`` trading days a year. A variance model's forecast of that target at the close of day
``t`` is ``sqrt(A / h * sum_{i=1..h} E_t[r_{t+i}^2])`` (the square root of the expected variance, as
practitioners quote it; Jensen's gap is not corrected). Every forecast at row ``t`` uses returns of
rows ``<= t`` only, and every fitted parameter uses the fold's training rows only.

Sources: J.P. Morgan/Reuters, *RiskMetrics — Technical Document*, 4th ed., 1996 (EWMA, λ = 0.94
for daily data); Bollerslev, J. Econometrics 31, 1986 (GARCH); Glosten, Jagannathan and Runkle,
J. Finance 48, 1993 (GJR); Corsi, J. Financial Econometrics 7(2), 2009 (HAR-RV). GARCH and GJR are
estimated by the ``arch`` package (quasi-)maximum likelihood on returns ×100, as its documentation
advises for its optimiser. The rules and a worked comparison: ``docs/metrics.md`` (volatility baselines).

Imports numpy here and ``arch`` and scipy inside the functions that need them.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FITTED_BASELINES = ("ewma", "garch", "gjr", "har", "log_har")
"""Baselines fitted on each fold's training rows (persistence needs no fit)."""

VOLATILITY_BASELINES = ("persistence", *FITTED_BASELINES)
"""Every baseline a realised-volatility spec may declare (``features_from.params.baselines``)."""

HAR_WINDOWS = (1, 5, 22)
"""Corsi's (2009) daily, weekly and monthly realised-volatility windows, in trading days."""

LOG_FLOOR = 1e-3
"""Smallest annualised volatility whose log the log-HAR takes (0.1 %: a day with a zero return would
otherwise have a log of minus infinity)."""

RETURN_SCALE = 100.0
"""Returns are multiplied by this for ``arch`` (percent returns), whose optimiser is tuned for
variances of order 1."""


class BaselineFitError(ValueError):
    """A baseline cannot be fitted on a fold's training rows (too few rows, non-finite returns, no
    convergence)."""


def ewma_variance(r: np.ndarray, lam: float, initial: float) -> np.ndarray:
    """RiskMetrics' exponentially weighted variance: ``v_t = lam * v_{t-1} + (1 - lam) * r_t^2``
    with ``v_{-1} = initial``; ``v_t`` is the forecast, at the close of day ``t``, of every later
    day's squared return (the EWMA forecast is flat across horizons).

    Args:
        r: daily log returns, shape (n,), finite; lam: the decay in (0, 1); initial: ``v_{-1}``.

    Returns:
        ``v``, shape (n,), in squared return units.
    """
    from scipy.signal import lfilter

    r2 = np.asarray(r, dtype=float) ** 2
    out, _ = lfilter([1.0 - lam], [1.0, -lam], r2, zi=[lam * initial])
    return out


def har_design(r: np.ndarray, trading_days: int, log: bool = False) -> np.ndarray:
    """The HAR-RV regressors of each row: a constant and the annualised realised volatilities of
    the last 1, 5 and 22 days, ``sqrt(A / w * sum_{i=0..w-1} r_{t-i}^2)`` (their logs, floored at
    :data:`LOG_FLOOR`, for the log-HAR).

    Args:
        r: daily log returns of consecutive rows, shape (n,).

    Returns:
        Shape (n, 4); rows with fewer than 22 returns behind them hold NaN.
    """
    r2 = np.asarray(r, dtype=float) ** 2
    csum = np.concatenate([[0.0], np.cumsum(r2)])
    cols = [np.ones(len(r2))]
    for w in HAR_WINDOWS:
        s = np.full(len(r2), np.nan)
        s[w - 1:] = csum[w:] - csum[:-w]
        vol = np.sqrt(trading_days / w * s)
        cols.append(np.log(np.maximum(vol, LOG_FLOOR)) if log else vol)
    return np.column_stack(cols)


def fit_har(X: np.ndarray, y: np.ndarray, log: bool = False) -> dict[str, float]:
    """Least-squares HAR coefficients on the rows with complete regressors.

    Args:
        X: :func:`har_design` rows, shape (n, 4); y: the target volatilities of the same rows.
        log: regress ``ln y`` (floored at :data:`LOG_FLOOR`) on the log regressors.

    Returns:
        ``intercept``, ``daily``, ``weekly``, ``monthly``, the rows used and, for the log-HAR, the
        residual variance ``s2`` (the forecast is ``exp(fit + s2 / 2)``, the mean of a log-normal).

    Raises:
        BaselineFitError: fewer than 30 complete rows.
    """
    y = np.asarray(y, dtype=float)
    target = np.log(np.maximum(y, LOG_FLOOR)) if log else y
    ok = np.isfinite(X).all(axis=1) & np.isfinite(target)
    if ok.sum() < 30:
        raise BaselineFitError(f"{int(ok.sum())} training rows with 22 days of returns; HAR needs 30")
    beta, *_ = np.linalg.lstsq(X[ok], target[ok], rcond=None)
    out = {"intercept": float(beta[0]), "daily": float(beta[1]), "weekly": float(beta[2]),
           "monthly": float(beta[3]), "rows": int(ok.sum())}
    if log:
        resid = target[ok] - X[ok] @ beta
        out["s2"] = float(resid @ resid / max(int(ok.sum()) - 4, 1))
    return out


def har_forecast(X: np.ndarray, coef: dict[str, float], log: bool = False) -> np.ndarray:
    """The HAR forecast of rows ``X`` (:func:`har_design`) with coefficients of :func:`fit_har`."""
    beta = np.array([coef["intercept"], coef["daily"], coef["weekly"], coef["monthly"]])
    fit = X @ beta
    return np.exp(fit + coef["s2"] / 2) if log else fit


def fit_garch(r: np.ndarray, train_end: int, test: slice, horizon: int, trading_days: int, *,
              asymmetric: bool = False, dist: str = "normal") -> tuple[np.ndarray, dict[str, Any]]:
    """GARCH(1,1) (or GJR-GARCH(1,1,1), ``asymmetric``) with a zero mean, estimated on returns
    ``r[:train_end]`` only, then run with those fixed parameters over the later rows: the forecast at
    each row ``t`` of ``test`` uses returns up to ``t`` (``arch``'s ``forecast(start=...)``, one
    filtering pass, no refit).

    Args:
        r: daily log returns of consecutive rows, shape (n,), finite up to ``test.stop``.
        train_end: rows ``0 .. train_end - 1`` estimate the parameters.
        test: the rows to forecast (``test.start >= train_end``).
        horizon, trading_days: ``h`` and ``A`` of the target.
        dist: innovations, ``normal`` or ``t`` (Student).

    Returns:
        ``(forecast, record)``: the annualised ``h``-day volatility forecast of each test row, shape
        ``(len(test),)``, and the fitted parameters (returns in percent: ``omega`` in %²), the
        log-likelihood, the rows and whether the optimiser converged.

    Raises:
        BaselineFitError: fewer than 100 training rows, non-finite returns, or an optimiser that did not
            converge (its parameters are not a maximum of the likelihood: the baseline is left out,
            docs/metrics.md, rather than judged on arbitrary forecasts).
    """
    from arch import arch_model

    r = np.asarray(r, dtype=float)[: test.stop]
    if train_end < 100:
        raise BaselineFitError(f"{train_end} training rows; GARCH needs 100")
    if not np.isfinite(r).all():
        raise BaselineFitError("the returns hold missing or non-finite values")
    model = arch_model(RETURN_SCALE * r, mean="Zero", vol="GARCH", p=1, o=1 if asymmetric else 0, q=1,
                       dist=dist, rescale=False)
    with warnings.catch_warnings():  # convergence is recorded, not printed
        warnings.simplefilter("ignore")
        res = model.fit(disp="off", last_obs=train_end, show_warning=False)
        fc = res.forecast(horizon=horizon, start=test.start, reindex=False)
    if res.convergence_flag != 0:
        raise BaselineFitError(f"the optimiser did not converge on {train_end} training rows "
                               f"(arch convergence flag {res.convergence_flag})")
    variance = np.asarray(fc.variance, dtype=float)[: test.stop - test.start]  # %² per day, rows t, days t+1..t+h
    forecast = np.sqrt(trading_days / horizon * variance.sum(axis=1)) / RETURN_SCALE
    params = {k: float(v) for k, v in res.params.items()}
    record = {"params": params, "loglikelihood": float(res.loglikelihood), "rows": int(res.nobs),
              "converged": bool(res.convergence_flag == 0), "distribution": dist}
    return forecast, record


@dataclass
class FoldBaselines:
    """The fitted baselines of a walk-forward plan.

    Attributes:
        forecasts: per baseline, its forecasts on the holdout rows in fold order (the order of
            ``plan.holdout``), shape (holdout rows,).
        folds: per fold, ``fold`` (0-based), ``train_rows`` and each baseline's fitted parameters.
        errors: a baseline that failed in some fold, with the reason; it has no forecasts.
        seconds: wall time of each baseline's fits over all folds.
    """

    forecasts: dict[str, np.ndarray] = field(default_factory=dict)
    folds: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """JSON-ready: ``folds``, ``errors``, ``seconds`` (the forecasts stay out)."""
        return {"folds": self.folds, "errors": self.errors,
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}


def _contiguous(rows: np.ndarray) -> slice:
    rows = np.asarray(rows)
    if len(rows) == 0 or not np.array_equal(rows, np.arange(rows[0], rows[-1] + 1)):
        raise BaselineFitError("a fold's rows are not consecutive; the volatility baselines need a walk-forward plan")
    return slice(int(rows[0]), int(rows[-1]) + 1)


def fold_baselines(r: np.ndarray, y: np.ndarray, folds: list, names: list[str], *, horizon: int, trading_days: int,
                   ewma_lambda: float = 0.94, dist: str = "normal") -> FoldBaselines:
    """Fit each named baseline of :data:`FITTED_BASELINES` on every fold's training rows and forecast
    that fold's test rows.

    Args:
        r: daily log returns of the modelling table's rows (consecutive trading days), shape (n,).
        y: the target of the same rows (HAR regressions), shape (n,).
        folds: the plan's folds (``train`` and ``test`` row positions, each consecutive, training
            rows before test rows; :class:`tasks.split.Fold`).
        names: the baselines to fit (others are ignored).
        ewma_lambda: RiskMetrics' decay; dist: GARCH/GJR innovations, ``normal`` or ``t``.

    Returns:
        :class:`FoldBaselines`. EWMA starts each fold from the mean squared return of its training
        rows (``v_{-1}``); the HAR coefficients come from the training rows' labels, which end before
        the test block (the split's gap, proven by :func:`tasks.split.check_no_lookahead`).
    """
    r = np.asarray(r, dtype=float)
    y = np.asarray(y, dtype=float)
    out = FoldBaselines()
    wanted = [n for n in FITTED_BASELINES if n in names]
    pieces: dict[str, list[np.ndarray]] = {n: [] for n in wanted}
    designs = {log: har_design(r, trading_days, log) for log in (False, True)
               if ("log_har" if log else "har") in wanted}
    for k, fold in enumerate(folds):
        train, test = _contiguous(fold.train), _contiguous(fold.test)
        row: dict[str, Any] = {"fold": k, "train_rows": train.stop - train.start}
        for name in wanted:
            if name in out.errors:
                continue
            start = time.perf_counter()
            try:
                pieces[name].append(_one(name, r, y, train, test, designs, horizon, trading_days, ewma_lambda, dist,
                                         row))
            except (ValueError, RuntimeError, np.linalg.LinAlgError) as err:  # BaselineFitError, arch's own
                out.errors[name] = f"fold {k}: {err}"
            out.seconds[name] = out.seconds.get(name, 0.0) + time.perf_counter() - start
        out.folds.append(row)
    for name in wanted:
        if name not in out.errors:
            out.forecasts[name] = np.concatenate(pieces[name]) if pieces[name] else np.array([])
    return out


def _one(name: str, r, y, train: slice, test: slice, designs, horizon: int, trading_days: int, lam: float, dist: str,
         row: dict[str, Any]) -> np.ndarray:
    """One baseline's forecasts on one fold's test rows; its parameters go into ``row[name]``."""
    if name == "ewma":
        if not np.isfinite(r[: test.stop]).all():
            raise BaselineFitError("the returns hold missing or non-finite values")
        initial = float(np.mean(r[train] ** 2))
        v = ewma_variance(r[: test.stop], lam, initial)[test]
        row[name] = {"lambda": lam, "initial_variance": initial}
        return np.sqrt(trading_days * v)
    if name in ("garch", "gjr"):
        forecast, record = fit_garch(r, train.stop, test, horizon, trading_days, asymmetric=name == "gjr", dist=dist)
        row[name] = record
        return forecast
    log = name == "log_har"
    X = designs[log]
    coef = fit_har(X[train], y[train], log=log)
    row[name] = coef
    forecast = har_forecast(X[test], coef, log=log)
    if not np.isfinite(forecast).all():
        raise BaselineFitError("a test row has fewer than 22 days of returns behind it")
    return forecast


def persistence_of_garch(params: dict[str, float]) -> float:
    """``alpha + gamma / 2 + beta`` of a fitted GARCH/GJR record's ``params`` (below 1: the variance
    reverts to its long-run level); ``nan`` without them."""
    try:
        return params["alpha[1]"] + params.get("gamma[1]", 0.0) / 2 + params["beta[1]"]
    except KeyError:
        return math.nan
