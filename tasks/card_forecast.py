"""The model card's forecast section of a volatility forecaster: RMSE, MAE and QLIKE of every
candidate and baseline, pooled and per walk-forward fold, the Diebold-Mariano intervals of the
selected candidate against each baseline, the baselines' fitted parameters and the chart of forecast,
realised volatility and baselines (rendered by :func:`tasks.report.render_model_card` from
``meta["forecast"]``, :func:`tasks.forecast_eval.forecast_comparison`; definitions: docs/metrics.md).
"""

from __future__ import annotations

from typing import Any

from models.metrics import format_metric
from models.vol_baselines import FITTED_BASELINES, persistence_of_garch
from tasks.forecast_eval import verdict_word
from tasks.plots import FORECAST_PLOTS

__all__ = ["forecast_card_section"]

_NAMES = {"rmse": "RMSE", "mae": "MAE", "qlike": "QLIKE"}


def _v(metric: str, value: float | None) -> str:
    return format_metric(metric, value)


def _label(m: dict[str, Any]) -> str:
    if m["kind"] == "baseline":
        return f"{m['name']} (baseline)"
    return f"**{m['name']}** (selected)" if m["selected"] else m["name"]


def _dm_cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "n/a"
    if row.get("error"):
        return f"n/a ({row['error']})"
    return (f"{row['diff']:+.3g} [{row['ci_low']:+.3g}, {row['ci_high']:+.3g}] {verdict_word(row)}")


def _fit_line(name: str, rec: dict[str, Any]) -> str:
    if name == "ewma":
        return f"`ewma`: λ {rec['lambda']:g}, start variance {rec['initial_variance']:.3g}"
    if name in ("garch", "gjr"):
        p = rec["params"]
        text = ", ".join(f"{k} {v:.4g}" for k, v in p.items())
        return (f"`{name}` ({rec['distribution']} innovations, {rec['rows']} rows"
                f"{'' if rec['converged'] else ', NOT converged'}): {text}; persistence {persistence_of_garch(p):.4f}")
    coef = ", ".join(f"{k} {rec[k]:.4g}" for k in ("intercept", "daily", "weekly", "monthly"))
    return f"`{name}` ({rec['rows']} rows): {coef}" + (f", residual variance {rec['s2']:.4g}" if "s2" in rec else "")


def forecast_card_section(meta: dict[str, Any]) -> list[str]:
    """Markdown lines of the ``## Forecast comparison`` section; nothing without ``meta["forecast"]``."""
    rec = meta.get("forecast")
    if not rec:
        return []
    losses = rec["losses"]
    models = rec["models"]
    lines = ["## Forecast comparison (holdout)", "",
             f"Every candidate and baseline on the same {meta['holdout']['rows']} holdout rows. RMSE and MAE in the "
             "target's units; QLIKE on variances, `y²/f² − ln(y²/f²) − 1` (Patton 2011), the loss that ranks "
             "volatility forecasts consistently when the realised volatility is a noisy proxy. Each fitted baseline "
             "was fitted in every walk-forward fold on that fold's training rows only (docs/metrics.md).", "",
             "| model | " + " | ".join(_NAMES[m] for m in losses) + " |", "|---|" + "---|" * len(losses)]
    for m in models:
        lines.append(f"| {_label(m)} | " + " | ".join(_v(k, m["pooled"].get(k)) for k in losses) + " |")
    n_folds = max((len(m["folds"]) for m in models), default=0)
    if n_folds:
        lines += ["", "Per walk-forward fold (" + " / ".join(_NAMES[m] for m in losses) + "):", "",
                  "| model | " + " | ".join(f"fold {k}" for k in range(n_folds)) + " |", "|---|" + "---|" * n_folds]
        for m in models:
            cells = [" / ".join(_v(k, f.get(k)) for k in losses) for f in m["folds"]]
            lines.append(f"| {_label(m)} | " + " | ".join(cells) + " |")
    selected = next((m["name"] for m in models if m["selected"]), None)
    dm = {(r["baseline"], r["metric"]): r for r in rec["diebold_mariano"] if r["candidate"] == selected}
    baselines = [m["name"] for m in models if m["kind"] == "baseline"]
    if selected and baselines:
        lines += ["", f"Diebold-Mariano ({rec['confidence']:.0%}, horizon {rec['horizon']}: autocovariances to lag "
                  f"{max(0, int(rec['horizon']) - 1)}, small-sample corrected) "
                  f"of **{selected}** against each baseline: the baseline's mean loss minus the candidate's "
                  "(positive: the candidate is better; RMSE column in MSE units), its interval, and *better* / "
                  "*worse* when the interval excludes 0, else *equal*.", "",
                  "| baseline | " + " | ".join(_NAMES[m] for m in losses) + " |", "|---|" + "---|" * len(losses)]
        for b in baselines:
            lines.append(f"| {b} | " + " | ".join(_dm_cell(dm.get((b, m))) for m in losses) + " |")
    fits = rec.get("fits") or {}
    if fits.get("folds"):
        last = fits["folds"][-1]
        lines += ["", f"Fitted on the last fold's {last['train_rows']} training rows (every fold's in "
                  "metadata.json):", ""]
        lines += [f"- {_fit_line(name, last[name])}" for name in FITTED_BASELINES if name in last]
    for name, err in (fits.get("errors") or {}).items():
        lines.append(f"- `{name}` could not be fitted ({err}); it is left out.")
    if FORECAST_PLOTS[0] in meta.get("reports", []):
        lines += ["", f"![forecast and baselines](reports/{FORECAST_PLOTS[0]})"]
    return lines + [""]
