"""Evaluation plots saved as PNG with a version (matplotlib, non-interactive Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def classification_plots(y: np.ndarray, p: np.ndarray, folder: Path, title: str) -> list[Path]:
    """ROC curve, calibration by decile and score distributions by class.

    Args:
        y: 0/1 outcomes on the holdout; p: predicted probabilities of the event.
        folder: existing folder to write ``roc_curve.png``, ``calibration.png`` and
            ``score_distribution.png`` into.
    Returns the paths written.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _plt()
    folder = Path(folder)
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    paths = []

    fpr, tpr, _ = roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"model (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="no skill")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"{title}: ROC curve (holdout)")
    ax.legend(loc="lower right")
    paths.append(folder / "roc_curve.png")
    fig.savefig(paths[-1], dpi=90, bbox_inches="tight")
    plt.close(fig)

    edges = np.unique(np.quantile(p, np.linspace(0, 1, 11)))
    bins = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    mean_p = np.array([p[bins == b].mean() for b in range(len(edges) - 1) if (bins == b).any()])
    rate = np.array([y[bins == b].mean() for b in range(len(edges) - 1) if (bins == b).any()])
    fig, ax = plt.subplots(figsize=(5, 5))
    top = max(float(mean_p.max()), float(rate.max())) * 1.05
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect calibration")
    ax.plot(mean_p, rate, marker="o", label="score deciles")
    ax.set(xlabel="mean predicted probability", ylabel="observed event rate", title=f"{title}: calibration (holdout)")
    ax.legend(loc="upper left")
    paths.append(folder / "calibration.png")
    fig.savefig(paths[-1], dpi=90, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(np.arange(1, len(rate) + 1), rate, color="tab:red", alpha=0.7, label="observed event rate")
    ax.plot(np.arange(1, len(mean_p) + 1), mean_p, marker="o", color="black", label="mean predicted")
    ax.set(xlabel="score decile (1 = least risky)", ylabel="event rate",
           title=f"{title}: event rate by score decile (holdout)")
    ax.legend(loc="upper left")
    paths.append(folder / "event_rate_by_decile.png")
    fig.savefig(paths[-1], dpi=90, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    grid = np.linspace(0, 1, 41)
    ax.hist(p[y == 0], bins=grid, alpha=0.6, density=True, label="non-events (0)")
    ax.hist(p[y == 1], bins=grid, alpha=0.6, density=True, label="events (1)")
    ax.set(xlabel="predicted probability", ylabel="density", title=f"{title}: scores by class (holdout)")
    ax.legend()
    paths.append(folder / "score_distribution.png")
    fig.savefig(paths[-1], dpi=90, bbox_inches="tight")
    plt.close(fig)
    return paths


def regression_plots(
    times: np.ndarray | None, y: np.ndarray, f: np.ndarray, baseline: np.ndarray | None, folder: Path, title: str
) -> list[Path]:
    """Forecast against outcome over the holdout, and a scatter of forecast vs outcome.

    Args:
        times: the holdout rows' times (x axis), or None for row positions.
        y, f: realised values and the model's forecasts on the holdout, same shape ``(n,)``.
        baseline: the persistence forecast on the same rows, or None.
        folder: existing folder to write ``forecast.png`` and ``forecast_scatter.png`` into.
        title: the model's name for the titles.
    Returns the paths written.
    """
    plt = _plt()
    folder = Path(folder)
    x = np.arange(len(y)) if times is None else times
    paths = []
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(x, y, lw=0.6, color="black", label="realised")
    ax.plot(x, f, lw=0.8, label="model forecast")
    if baseline is not None:
        ax.plot(x, baseline, lw=0.6, alpha=0.6, label="persistence forecast")
    ax.set(ylabel="value", title=f"{title}: walk-forward holdout")
    ax.legend(loc="upper right")
    paths.append(folder / "forecast.png")
    fig.savefig(paths[-1], dpi=90, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(f, y, s=3, alpha=0.3)
    lim = [0, float(max(np.max(y), np.max(f))) * 1.05]
    ax.plot(lim, lim, linestyle="--", color="grey")
    ax.set(xlabel="forecast", ylabel="realised", title=f"{title}: forecast vs realised")
    paths.append(folder / "forecast_scatter.png")
    fig.savefig(paths[-1], dpi=90, bbox_inches="tight")
    plt.close(fig)
    return paths


FORECAST_PLOTS = ("forecast_baselines.png",)
"""The file names :func:`baselines_plot` writes (shown in the card's forecast section)."""


def baselines_plot(times: np.ndarray | None, y: np.ndarray, f: np.ndarray, baselines: dict[str, np.ndarray],
                   folder: Path, title: str) -> list[Path]:
    """The selected candidate's forecast, the realised volatility and every baseline's forecast over
    the holdout (``forecast_baselines.png``).

    Args:
        times: the holdout rows' times (x axis), or None for row positions.
        y, f: realised volatilities and the selected candidate's forecasts, shape ``(n,)``.
        baselines: baseline name → its forecasts on the same rows, shape ``(n,)``.
        folder: existing folder to write into; title: the model's name.
    Returns the paths written.
    """
    plt = _plt()
    x = np.arange(len(y)) if times is None else times
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(x, y, lw=0.5, color="black", alpha=0.6, label="realised")
    for name, b in baselines.items():
        ax.plot(x, b, lw=0.6, alpha=0.8, label=name)
    ax.plot(x, f, lw=0.9, color="crimson", label="selected forecast")
    ax.set(ylabel="annualised volatility", title=f"{title}: forecast, realised volatility and baselines (holdout)")
    ax.legend(loc="upper right", ncol=4, fontsize="small")
    path = Path(folder) / FORECAST_PLOTS[0]
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return [path]


DRIVERS_PLOTS = ("drivers.png", "partial_dependence.png")
"""The file names :func:`drivers_plots` writes (shown in the card's Drivers section)."""


def drivers_plots(drivers: dict, folder: Path, title: str, top: int = 15) -> list[Path]:
    """Bar chart of the permutation importance (mean ± std over the repeats, the ``top`` most
    important features) and a grid of partial-dependence curves.

    Args:
        drivers: the record of :func:`tasks.drivers.global_drivers`.
        folder: existing folder to write ``drivers.png`` and ``partial_dependence.png`` into
            (the second only when the record has curves).
    Returns the paths written.
    """
    plt = _plt()
    folder = Path(folder)
    paths = []
    rows = drivers.get("permutation_importance") or []
    if rows:
        shown = rows[:top][::-1]
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(shown) + 1.5))
        ax.barh([r["feature"] for r in shown], [r["importance"] for r in shown],
                xerr=[r["std"] for r in shown], color="#4c72b0", ecolor="grey")
        ax.axvline(0, color="black", linewidth=0.8)
        where = "holdout, in-sample" if drivers.get("in_sample") else "holdout"
        ax.set(xlabel=f"loss of {drivers['metric']} when shuffled ({drivers['repeats']} repeats)",
               title=f"{title}: permutation importance ({where})")
        fig.tight_layout()
        path = folder / DRIVERS_PLOTS[0]
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    curves = drivers.get("partial_dependence") or []
    if curves:
        cols = min(2, len(curves))
        nrows = (len(curves) + cols - 1) // cols
        fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.2 * nrows), squeeze=False)
        for ax, curve in zip(axes.ravel(), curves):
            if curve["kind"] == "categorical":
                ax.bar([str(g) for g in curve["grid"]], curve["average_score"], color="#55a868")
                ax.tick_params(axis="x", rotation=45)
            else:
                ax.plot(curve["grid"], curve["average_score"], marker="o", color="#55a868")
            ax.set(xlabel=curve["feature"], ylabel="average score")
        for ax in axes.ravel()[len(curves):]:
            ax.set_visible(False)
        fig.suptitle(f"{title}: partial dependence of the most important features")
        fig.tight_layout()
        path = folder / DRIVERS_PLOTS[1]
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
