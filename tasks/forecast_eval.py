"""The volatility forecasters' comparison: RMSE, MAE and QLIKE of every candidate and every baseline,
pooled over the walk-forward holdout and per fold, and the Diebold-Mariano interval of each candidate
against each baseline on each loss. Recorded in the metadata (``forecast``) and shown in the card's
forecast section (:mod:`tasks.card_forecast`). Losses: :mod:`models.metrics`; baselines:
:mod:`models.vol_baselines`; definitions and sources: ``docs/metrics.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.metrics import METRICS, MetricError
from tasks.compare import ComparisonError, diebold_mariano, holdout_time_order

FORECAST_LOSSES = ("rmse", "mae", "qlike")
"""The losses of the comparison, in the order of the card's columns."""

DM_CONFIDENCE = 0.95
"""Two-sided confidence of the card's Diebold-Mariano intervals."""


def _losses(y: np.ndarray, f: np.ndarray) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for m in FORECAST_LOSSES:
        try:
            out[m] = float(METRICS[m].fn(y, f))
        except MetricError:
            out[m] = None
    return out


def _blocks(plan, n: int) -> list[slice]:
    if plan.method != "walk_forward":
        return []
    out, start = [], 0
    for fold in plan.folds:
        out.append(slice(start, start + len(fold.test)))
        start += len(fold.test)
    return out if start == n else []


def forecast_comparison(spec, plan, y: np.ndarray, candidates: dict[str, np.ndarray], selected: str,
                        baselines: dict[str, np.ndarray], fits: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every candidate and baseline on the same holdout rows.

    Args:
        spec: the model spec (its builder gives the label horizon: Diebold-Mariano lags).
        plan: the split plan (``plan.folds`` cut the holdout into its test blocks).
        y: realised volatilities on ``plan.holdout`` rows, shape (n,), in fold order.
        candidates: candidate name → its holdout forecasts (failed candidates left out), shape (n,).
        selected: the selected candidate's name.
        baselines: baseline name → its forecasts on the same rows.
        fits: the baselines' per-fold fit record (:meth:`models.vol_baselines.FoldBaselines.record`).

    Returns:
        ``losses`` (the loss names), ``models`` (one entry per candidate then baseline: ``name``,
        ``kind``, ``selected``, ``pooled`` and per-fold ``folds`` values of each loss, None where
        undefined), ``diebold_mariano`` (per candidate, baseline and loss: ``diff`` = the baseline's
        mean loss minus the candidate's, positive when the candidate is better, MSE units for
        ``rmse``; its ``confidence`` interval; ``error`` when it cannot be computed), ``horizon``,
        ``confidence`` and ``fits``.
    """
    y = np.asarray(y, dtype=float)
    _, horizon = holdout_time_order(spec)
    blocks = _blocks(plan, len(y))
    models = []
    for kind, group in (("candidate", candidates), ("baseline", baselines)):
        for name, f in group.items():
            f = np.asarray(f, dtype=float)
            models.append({"name": name, "kind": kind, "selected": kind == "candidate" and name == selected,
                           "pooled": _losses(y, f),
                           "folds": [{"fold": k, **_losses(y[b], f[b])} for k, b in enumerate(blocks)]})
    tests = []
    for cand, a in candidates.items():
        for base, b in baselines.items():
            for m in FORECAST_LOSSES:
                row: dict[str, Any] = {"candidate": cand, "baseline": base, "metric": m}
                try:
                    c = diebold_mariano(m, y, a, b, horizon=horizon, confidence=DM_CONFIDENCE)
                    row |= {"diff": c.diff, "ci_low": c.ci_low, "ci_high": c.ci_high}
                except ComparisonError as err:
                    row["error"] = str(err)
                tests.append(row)
    return {"losses": list(FORECAST_LOSSES), "models": models, "diebold_mariano": tests, "horizon": horizon,
            "confidence": DM_CONFIDENCE, "fits": fits}


def verdict_word(row: dict[str, Any]) -> str:
    """``better``, ``worse`` or ``equal`` (no difference beyond noise) for a Diebold-Mariano row of
    :func:`forecast_comparison`; ``n/a`` when it failed."""
    lo, hi = row.get("ci_low"), row.get("ci_high")
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return "n/a"
    return "better" if lo > 0 else ("worse" if hi < 0 else "equal")
