"""The Value-at-Risk back-test of a volatility forecast (the spec's ``var`` section): on the holdout
at training, and on every monitored batch whose rows carry returns.

YAML → :class:`models.spec.VarSpec` → :func:`var_backtest`, which takes that section. The
statistics are :mod:`models.market_statistics`; the conversion of the forecast to a daily VaR and
its sources: ``docs/gates.md`` ("Market models").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from models.market_statistics import christoffersen, kupiec_pof, traffic_light, var_exceptions, var_quantile
from models.spec import ModelSpec, VarSpec
from models.statistics import StatisticsError
from tasks.step import step

__all__ = ["backtest_batch", "batch_var_backtest", "daily_sigma", "holdout_var_backtest", "next_day_returns",
           "var_backtest", "var_card_lines", "var_sentence"]


def daily_sigma(forecast: np.ndarray, trading_days: int) -> np.ndarray:
    """The forecast daily standard deviation of log returns from the volatility builder's forecast.

    The target is ``sqrt(A / h * sum_{i=1..h} r_{t+i}^2)`` (:class:`models.features.RealisedVolatilityBuilder`),
    an annualised root mean square of the next ``h`` daily returns: its square over ``A`` is the mean
    daily variance of those days, so ``sigma_t = forecast_t / sqrt(A)``, used as the next day's
    (the forecast is taken as flat over the ``h`` days). A negative forecast (a linear model can give
    one) is taken as 0: its VaR is 0 and every loss is an exception.

    Args:
        forecast: annualised volatilities (fractions: 0.15 = 15 %), shape (n,); trading_days: ``A``.
    """
    return np.clip(np.asarray(forecast, dtype=float), 0.0, None) / math.sqrt(trading_days)


def var_backtest(var_spec: VarSpec, forecast: np.ndarray, next_returns: np.ndarray, trading_days: int,
                 times: pd.Series | None = None) -> dict[str, Any]:
    """The back-test of the one-day VaR ``q * sigma_t`` against the next day's log return.

    Args:
        var_spec: the spec's ``var`` section (level, distribution, dof).
        forecast: the annualised volatility forecasts of days ``t``, shape (n,) (:func:`daily_sigma`).
        next_returns: the log return of day ``t + 1`` for each, shape (n,); rows where it is missing
            (the batch's last day) are left out.
        times: the rows' times, for the back-test's period (None: no period).

    Returns:
        ``{level, distribution, dof, quantile, days, exceptions, expected_exceptions, exception_rate,
        mean_var, period, kupiec, christoffersen, traffic_light}`` (:mod:`models.market_statistics`);
        ``mean_var`` is the mean one-day VaR as a share of the position (0.02: 2 %).

    Raises:
        StatisticsError: fewer than 2 days with a next-day return, or shapes that differ.
    """
    f, r = np.asarray(forecast, dtype=float), np.asarray(next_returns, dtype=float)
    if f.shape != r.shape:
        raise StatisticsError(f"forecasts and next-day returns differ in shape: {f.shape} and {r.shape}")
    keep = np.isfinite(r) & np.isfinite(f)
    if keep.sum() < 2:
        raise StatisticsError(f"a VaR back-test needs at least 2 days with a next-day return, got {int(keep.sum())}")
    q = var_quantile(var_spec.level, var_spec.distribution, var_spec.dof)
    var = q * daily_sigma(f[keep], trading_days)
    exc = var_exceptions(r[keep], var)
    period = None
    if times is not None:
        kept = pd.Series(times).reset_index(drop=True)[keep]
        period = [_day(kept.iloc[0]), _day(kept.iloc[-1])]
    n = int(keep.sum())
    return {"level": var_spec.level, "distribution": var_spec.distribution, "dof": var_spec.dof, "quantile": q,
            "days": n, "exceptions": int(exc.sum()), "expected_exceptions": n * (1 - var_spec.level),
            "exception_rate": float(exc.mean()), "mean_var": float(var.mean()), "period": period,
            "kupiec": kupiec_pof(exc, var_spec.level), "christoffersen": christoffersen(exc, var_spec.level),
            "traffic_light": traffic_light(exc, var_spec.level)}


def _day(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return str(value.date()) if value == value.normalize() else value.isoformat()
    return value.item() if hasattr(value, "item") else value


def next_day_returns(spec: ModelSpec, raw: pd.DataFrame, times: pd.Series) -> np.ndarray:
    """The log return of the day after each of ``times``, from the raw rows (prices or returns, as the
    builder reads them: :func:`models.market_rows.daily_log_returns`); NaN where the raw rows hold no
    later day.

    Raises:
        MarketDataError: the raw rows' prices or returns are unusable (as when the table was built).
    """
    from models import market_rows

    builder = spec.builder
    df = market_rows.order_by_time(raw, builder.time_column)
    r = market_rows.daily_log_returns(df, builder.params)
    following = pd.Series(r.shift(-1).to_numpy(dtype=float), index=df[builder.time_column].to_numpy())
    return following.reindex(pd.Series(times).to_numpy()).to_numpy(dtype=float)


def _trading_days(spec: ModelSpec) -> int:
    return spec.builder.params.trading_days


def holdout_var_backtest(spec: ModelSpec, development: pd.DataFrame, evaluation) -> dict[str, Any] | None:
    """The VaR back-test of the selected candidate's holdout forecasts, and of each naive baseline's.

    Args:
        development: the raw development rows (the next-day returns come from them).
        evaluation: the holdout evaluation (:class:`tasks.evaluate.HoldoutEvaluation`): its holdout
            rows' times, the selected candidate's scores, the baselines.

    Returns:
        None without a ``var`` section; else the selected candidate's :func:`var_backtest` with
        ``candidate`` (its name) and ``baselines`` (name → back-test, or ``{"error": ...}``); a
        back-test that cannot be computed is ``{"error": "..."}``.
    """
    if spec.var is None:
        return None
    times = evaluation.holdout[spec.builder.time_column]
    nxt = next_day_returns(spec, development, times)
    days = _trading_days(spec)
    out = {"candidate": evaluation.best, **_safe(spec.var, evaluation.scores, nxt, days, times)}
    out["baselines"] = {name: _safe(spec.var, b, nxt, days, times) for name, b in evaluation.baselines.items()}
    return out


def batch_var_backtest(spec: ModelSpec, frame: pd.DataFrame, table: pd.DataFrame,
                       scores: np.ndarray) -> dict[str, Any] | None:
    """The VaR back-test of a monitored batch: the version's forecasts on the batch's table rows
    against the next day's return in the batch's raw rows (the last day has none and is left out).

    Returns:
        None without a ``var`` section; else :func:`var_backtest`'s result, or ``{"error": ...}``
        when the batch has fewer than 2 days with a next-day return.
    """
    if spec.var is None:
        return None
    times = table[spec.builder.time_column]
    nxt = next_day_returns(spec, frame, times)
    return _safe(spec.var, np.asarray(scores, dtype=float), nxt, _trading_days(spec), times)


backtest_batch = step("var-backtest")(batch_var_backtest)
"""The Prefect step of :func:`batch_var_backtest` (the monitoring flow's)."""


def _safe(var_spec: VarSpec, forecast, nxt, days: int, times) -> dict[str, Any]:
    try:
        return var_backtest(var_spec, forecast, nxt, days, times)
    except StatisticsError as err:
        return {"error": str(err)}


def var_sentence(bt: dict[str, Any]) -> str:
    """The back-test in one line: exceptions against expected, the traffic light, Kupiec and
    Christoffersen p-values (or why there is no back-test)."""
    if bt.get("error"):
        return f"VaR back-test not computed: {bt['error']}"
    tl, k, c = bt["traffic_light"], bt["kupiec"], bt["christoffersen"]
    text = (f"VaR {bt['level']:g} ({bt['distribution']}): {bt['exceptions']} exceptions in {bt['days']} days "
            f"(expected {bt['expected_exceptions']:.1f}); Basel traffic light {tl['zone'].upper()} "
            f"({tl['exceptions']} in the last {tl['days']} days"
            + (f"; {tl['note']}" if tl.get("note") else "") + f"); Kupiec p = {k['p_value']:.3g}, "
            f"Christoffersen independence p = {c['p_value_ind']:.3g}, conditional coverage p = {c['p_value_cc']:.3g}")
    return text


def var_card_lines(meta: dict[str, Any]) -> list[str]:
    """The model card's VaR back-test section (a table: the selected candidate, then the baselines)."""
    bt = meta.get("var_backtest")
    if not bt:
        return []
    baselines = (bt.get("baselines") or {}).items()
    rows = [(f"{bt.get('candidate')} (selected)", bt)] + [(f"{n} baseline", b) for n, b in baselines]
    first = next((b for _, b in rows if not b.get("error")), None)
    lines = ["## Value-at-Risk back-test (holdout)", ""]
    if first is not None:
        dof = f", {first['dof']:g} dof" if first.get("dof") else ""
        lines += [f"One-day VaR at {first['level']:g} ({first['distribution']}{dof}, quantile {first['quantile']:.4f}) "
                  "from the forecast volatility: daily sigma = forecast / sqrt(trading days); an exception is a "
                  "next-day log return below -VaR. Kupiec (1995) tests the exception rate, Christoffersen (1998) "
                  "their independence and the conditional coverage; the Basel traffic light (BCBS 1996) counts the "
                  "last 250 days.", ""]
    lines += ["| model | days | exceptions | expected | Kupiec LR (p) | independence LR (p) | cond. coverage LR (p) "
              "| traffic light (last days) |", "|---|---|---|---|---|---|---|---|"]
    for name, b in rows:
        if b.get("error"):
            lines.append(f"| {name} | – | – | – | – | – | – | {b['error']} |")
            continue
        k, c, tl = b["kupiec"], b["christoffersen"], b["traffic_light"]
        lines.append(f"| {name} | {b['days']} | {b['exceptions']} | {b['expected_exceptions']:.1f} | "
                     f"{k['lr']:.3f} ({k['p_value']:.3g}) | {c['lr_ind']:.3f} ({c['p_value_ind']:.3g}) | "
                     f"{c['lr_cc']:.3f} ({c['p_value_cc']:.3g}) | {tl['zone']} ({tl['exceptions']} in {tl['days']}) |")
    notes = {b["traffic_light"]["note"] for _, b in rows if not b.get("error") and b["traffic_light"].get("note")}
    lines += [""] + [f"Traffic light {n}." for n in sorted(notes)] + ([""] if notes else [])
    return lines
