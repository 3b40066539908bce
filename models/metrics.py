"""The metrics catalogue: one record per metric (:class:`MetricInfo` in :data:`METRICS`) holding
its function, direction, tasks, per-row loss, comparison flags and display format. The spec's
validation, the evaluation, the comparisons, the gate and the reports read it; adding a metric
is one entry. Definitions, sources and a worked example: ``docs/metrics.md``.

Imports numpy, scikit-learn and the pure statistics of :mod:`models.statistics` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Set
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from models.statistics import auc_interval, rank_auc

TaskType = Literal["binary_classification", "regression", "direction"]
"""``direction``: a classifier of the next period's market direction (1 = up), judged against
the naive always-majority and persistence baselines."""

CLASSIFICATION_TASKS = frozenset({"binary_classification", "direction"})

DEFAULT_DIGITS = 4
"""Decimals shown for a value that is not a catalogue metric (a baseline's RMSE, a PSI)."""

LOG_LOSS_EPS = 1e-15
"""Probabilities are clipped to ``[eps, 1 - eps]`` before the log loss (scikit-learn itself
clips at the float64 machine epsilon, 2.2e-16; the platform's figures use 1e-15)."""


class MetricError(ValueError):
    """Metric inputs are unusable (length mismatch, a single class, non-finite values)."""


def _sk():
    """scikit-learn's metrics module, imported on first use (importing the catalogue stays cheap)."""
    from sklearn import metrics

    return metrics


# --------------------------------------------------------------------------- input checks


def _check(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float).ravel()
    s = np.asarray(s, dtype=float).ravel()
    if y.shape != s.shape:
        raise MetricError(f"labels ({y.shape[0]}) and scores ({s.shape[0]}) differ in length")
    if y.size == 0:
        raise MetricError("no rows to evaluate")
    if not (np.isfinite(y).all() and np.isfinite(s).all()):
        raise MetricError("labels and scores must be finite")
    return y, s


def _check_labels(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, s = _check(y, s)
    if not np.isin(y, (0.0, 1.0)).all():
        raise MetricError("labels must be 0 or 1")
    return y, s


def _check_binary(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, p = _check_labels(y, p)
    if y.min() == y.max():
        raise MetricError("the labels have a single class; rank metrics are undefined")
    return y, p


# --------------------------------------------------------------------------- metric functions
# Each takes labels ``y`` and scores (probabilities of the event, or forecasts) of the same
# length and returns a float; bad inputs raise MetricError.


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve, in [0, 1]; 0.5 is no discrimination (scikit-learn)."""
    y, p = _check_binary(y, p)
    return float(_sk().roc_auc_score(y, p))


def gini(y: np.ndarray, p: np.ndarray) -> float:
    """Gini coefficient (accuracy ratio) = 2 * ROC AUC - 1, in [-1, 1]."""
    return 2.0 * roc_auc(y, p) - 1.0


def _gini_by_ranks(y: np.ndarray, p: np.ndarray) -> float:
    return 2.0 * rank_auc(y, p) - 1.0


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov-Smirnov statistic between the score distributions of events and non-events:
    ``max |TPR - FPR|`` over the thresholds of scikit-learn's ``roc_curve``."""
    y, p = _check_binary(y, p)
    fpr, tpr, _ = _sk().roc_curve(y, p)
    return float(np.max(np.abs(tpr - fpr)))


def brier_score(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared difference between the probability and the 0/1 outcome, in [0, 1] for
    probabilities; defined on a single class too. Computed with scikit-learn's
    ``mean_squared_error``, which is ``brier_score_loss`` without its refusal of scores outside
    [0, 1] (comparisons may feed it any score)."""
    y, p = _check_labels(y, p)
    return float(_sk().mean_squared_error(y, p))


def log_loss(y: np.ndarray, p: np.ndarray, eps: float = LOG_LOSS_EPS) -> float:
    """Binary cross-entropy in nats per row, p clipped to ``[eps, 1 - eps]`` (scikit-learn)."""
    y, p = _check_labels(y, p)
    return float(_sk().log_loss(y, np.clip(p, eps, 1 - eps), labels=[0.0, 1.0]))


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the precision-recall curve (step-wise, scikit-learn's definition)."""
    y, p = _check_binary(y, p)
    return float(_sk().average_precision_score(y, p))


def roc_auc_ci(y: np.ndarray, p: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The DeLong confidence interval of ROC AUC, clipped to [0, 1] (``nan`` with fewer than two
    events or non-events); see :func:`models.statistics.auc_interval`."""
    y, p = _check_binary(y, p)
    return auc_interval(y, p, confidence)


def roc_auc_ci_low(y: np.ndarray, p: np.ndarray) -> float:
    """Lower bound of the 95 % DeLong interval of ROC AUC."""
    return roc_auc_ci(y, p)[0]


def rmse(y: np.ndarray, f: np.ndarray) -> float:
    """Root mean squared error, in the target's units (scikit-learn)."""
    y, f = _check(y, f)
    return float(_sk().root_mean_squared_error(y, f))


def mse(y: np.ndarray, f: np.ndarray) -> float:
    """Mean squared error, in the target's units squared (scikit-learn)."""
    y, f = _check(y, f)
    return float(_sk().mean_squared_error(y, f))


def mae(y: np.ndarray, f: np.ndarray) -> float:
    """Mean absolute error, in the target's units (scikit-learn)."""
    y, f = _check(y, f)
    return float(_sk().mean_absolute_error(y, f))


QLIKE_FLOOR = 1e-8
"""Smallest variance QLIKE divides by or takes the log of (a volatility of 0.01 %): a zero realised
volatility or a forecast at or below zero would make the loss infinite or undefined."""


def qlike_loss(y: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Per-row QLIKE of volatility forecasts ``f`` for realised volatilities ``y``, on variances:
    ``L = y^2 / f^2 - ln(y^2 / f^2) - 1`` (0 for a perfect forecast; under-forecasts cost more
    than over-forecasts). Both variances are floored at :data:`QLIKE_FLOOR`.

    Source: Patton, "Volatility forecast comparison using imperfect volatility proxies",
    J. Econometrics 160(1), 2011, eq. (24) (his ``sigma-hat^2 / h - log(sigma-hat^2 / h) - 1`` with the
    proxy ``sigma-hat^2`` and the forecast ``h``): the loss that ranks forecasts consistently when the
    realised volatility is a noisy proxy of the true one, as MSE does.
    """
    ratio = (np.maximum(np.asarray(y, dtype=float) ** 2, QLIKE_FLOOR)
             / np.maximum(np.asarray(f, dtype=float) ** 2, QLIKE_FLOOR))
    return ratio - np.log(ratio) - 1.0


def qlike(y: np.ndarray, f: np.ndarray) -> float:
    """Mean QLIKE (:func:`qlike_loss`) of volatility forecasts ``f`` for realised volatilities ``y``."""
    y, f = _check(y, f)
    return float(np.mean(qlike_loss(y, f)))


def directional_accuracy(y: np.ndarray, p: np.ndarray) -> float:
    """Share of rows whose predicted direction ``1[p >= 0.5]`` equals the outcome."""
    y, p = _check(y, p)
    return float(np.mean((p >= 0.5).astype(float) == y))


def calibration_ratio(y: np.ndarray, p: np.ndarray) -> float:
    """Mean predicted probability / observed event rate (calibration-in-the-large; ideal 1;
    ``nan`` without events)."""
    y, p = _check(y, p)
    observed = float(np.mean(y))
    return float(np.mean(p)) / observed if observed > 0 else float("nan")


def decile_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Equal-frequency score bins, least risky first: rows, events, event rate, mean predicted.

    Rows are ordered by score and cut into at most ``n_bins`` groups of about equal size (the
    cuts of ``numpy.array_split``). Rows with the same score always fall in the same group: a
    cut inside a run of tied scores moves to the nearer end of the run. The table therefore
    depends on the (label, score) pairs only, never on row order, and heavily tied scores give
    fewer, larger groups (a constant score gives one). (scikit-learn's ``calibration_curve``
    with ``strategy="quantile"`` splits tied scores, so it is not used.)
    """
    y, p = _check(y, p)
    order = np.argsort(p, kind="stable")
    ps = p[order]
    n = len(ps)
    k = min(n_bins, n)
    sizes = [len(part) for part in np.array_split(np.arange(n), k)] if n else []
    cuts = set()
    for cut in np.cumsum(sizes)[:-1]:
        start = int(np.searchsorted(ps, ps[cut], side="left"))   # first row of the tie run at the cut
        end = int(np.searchsorted(ps, ps[cut], side="right"))    # one past its last row
        cuts.add(start if cut - start <= end - cut else end)
    bounds = [0, *sorted(c for c in cuts if 0 < c < n), n]
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi <= lo:
            continue
        idx = order[lo:hi]
        out.append({
            "decile": len(out) + 1, "rows": int(len(idx)), "min_score": float(p[idx].min()),
            "max_score": float(p[idx].max()), "events": int(y[idx].sum()), "event_rate": float(y[idx].mean()),
            "mean_predicted": float(p[idx].mean()),
        })
    return out


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Weighted mean absolute gap between mean predicted probability and event rate per decile
    of :func:`decile_table`: ``sum_b (n_b / N) |mean p_b - event rate_b|``."""
    table = decile_table(y, p, n_bins)
    total = sum(r["rows"] for r in table)
    return float(sum(r["rows"] / total * abs(r["mean_predicted"] - r["event_rate"]) for r in table))


def max_rank_reversal(table: list[dict[str, float]]) -> float:
    """Largest fall of the event rate from one decile to the next riskier one (0 = monotone)."""
    rates = [r["event_rate"] for r in table]
    return float(max([0.0] + [rates[k] - rates[k + 1] for k in range(len(rates) - 1)]))


def _rank_reversal(y: np.ndarray, p: np.ndarray) -> float:
    return max_rank_reversal(decile_table(y, p))


# --------------------------------------------------------------------------- per-row losses
# For Diebold-Mariano: the metric is (a monotone function of) the mean of the loss.


def squared_error(y: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Per-row ``(f - y)^2``."""
    return (np.asarray(f, dtype=float) - np.asarray(y, dtype=float)) ** 2


def absolute_error(y: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Per-row ``|f - y|``."""
    return np.abs(np.asarray(f, dtype=float) - np.asarray(y, dtype=float))


def direction_miss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per-row 1 when the predicted direction ``1[p >= 0.5]`` misses the outcome, else 0."""
    return ((np.asarray(p, dtype=float) >= 0.5).astype(float) != np.asarray(y, dtype=float)).astype(float)


# --------------------------------------------------------------------------- the catalogue

MetricFn = Callable[[np.ndarray, np.ndarray], float]
LossFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


class MetricInfo(BaseModel):
    """What the platform knows about a metric: how it is computed, its direction, the tasks it
    applies to, how two models can be compared on it, and how it is shown."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    higher_is_better: bool | None
    """None for a metric with an ideal value rather than a direction (a calibration ratio):
    usable in threshold rules only (``calibration_ratio`` also as the monitoring calibration
    test's tolerance)."""
    tasks: frozenset[str]
    """The tasks whose specs may name it (primary metric, gate rules, drift tolerances)."""
    description: str
    fn: MetricFn | None = None
    """``fn(y, scores) -> float`` when labels and one model's scores suffice; None for a metric
    that needs more (a baseline forecast, protected groups), computed in ``compute_metrics``."""
    loss: LossFn | None = None
    """Per-row loss ``loss(y, scores) -> array`` whose mean the metric is (or is monotone in):
    Diebold-Mariano applies."""
    needs_protected: bool = False
    volatility: bool = False
    """A loss on volatility forecasts: computed, shown and accepted in rules only for specs whose
    label is a volatility (the ``realised_volatility`` builder)."""
    row_comparable: bool = False
    """Two models can be compared on it row by row (champion and baseline rules, paired
    bootstrap); needs ``fn``."""
    delong: bool = False
    """The DeLong variance of a paired difference applies (ROC AUC)."""
    digits: int = DEFAULT_DIGITS
    """Decimals shown in tables, gate sentences and the CLI."""
    shown: bool = False
    """A column of the candidates table (the rest stay in the metadata)."""
    default_tolerance: float | None = None
    """Monitoring: the largest accepted worsening against the version's holdout value, in the
    metric's units, when the spec's ``drift.performance_tolerance`` names none (None: not judged
    unless the spec gives one). For ``calibration_ratio``: the largest accepted ``|ratio - 1|``.
    The table and its reasons: ``docs/drift.md``."""
    computed_for: frozenset[str] | None = None
    """The tasks whose evaluation computes it, when wider than ``tasks``."""
    resample: MetricFn | None = None
    """The same value as ``fn`` without input checks, for resampling loops (bootstrap
    replicates), where ``fn`` is slow; None: ``fn`` is used. It returns ``nan`` where ``fn``
    raises MetricError (a replicate with one class)."""

    @property
    def per_row_loss(self) -> bool:
        """Has a per-row loss: Diebold-Mariano applies."""
        return self.loss is not None

    @property
    def fast(self) -> MetricFn | None:
        """The function for resampling loops: ``resample``, else ``fn``."""
        return self.resample or self.fn

    @property
    def evaluated_for(self) -> frozenset[str]:
        """The tasks whose holdout evaluation computes it."""
        return self.computed_for if self.computed_for is not None else self.tasks

    @model_validator(mode="after")
    def _consistent(self) -> "MetricInfo":
        if self.row_comparable and self.fn is None:
            raise ValueError("a row-comparable metric needs its function fn(y, scores)")
        if self.resample is not None and self.fn is None:
            raise ValueError("a resampling function needs the metric's function fn")
        if (self.loss is not None or self.delong) and not self.row_comparable:
            raise ValueError("a metric with a per-row loss or DeLong must be row-comparable")
        return self


_CLF = CLASSIFICATION_TASKS
_BIN = frozenset({"binary_classification"})
_REG = frozenset({"regression"})
_DIR = frozenset({"direction"})

METRICS: dict[str, MetricInfo] = {
    "roc_auc": MetricInfo(higher_is_better=True, tasks=_CLF, description="area under the ROC curve",
                          fn=roc_auc, resample=rank_auc, row_comparable=True, delong=True, shown=True,
                          default_tolerance=0.05),
    "ks": MetricInfo(higher_is_better=True, tasks=_CLF, description="Kolmogorov-Smirnov statistic: max |TPR - FPR|",
                     fn=ks_statistic, row_comparable=True, shown=True, default_tolerance=0.08),
    "gini": MetricInfo(higher_is_better=True, tasks=_CLF, description="Gini coefficient = 2 * ROC AUC - 1",
                       fn=gini, resample=_gini_by_ranks, row_comparable=True, shown=True,
                       default_tolerance=0.10),
    "brier": MetricInfo(higher_is_better=False, tasks=_CLF, description="Brier score: mean squared error of the probability",
                        fn=brier_score, row_comparable=True, shown=True, default_tolerance=0.02),
    "log_loss": MetricInfo(higher_is_better=False, tasks=_CLF, description="binary cross-entropy of the probability",
                           fn=log_loss, row_comparable=True, shown=True),
    "average_precision": MetricInfo(higher_is_better=True, tasks=_CLF, description="area under the precision-recall curve",
                                    fn=average_precision, row_comparable=True, shown=True),
    "roc_auc_ci_low": MetricInfo(
        higher_is_better=True, tasks=_CLF, description="lower bound of the 95 % DeLong confidence interval of ROC AUC",
        fn=roc_auc_ci_low),
    "ece": MetricInfo(
        higher_is_better=False, tasks=_CLF, fn=expected_calibration_error, row_comparable=True, shown=True,
        description="expected calibration error: weighted mean |mean predicted - observed rate| over score deciles"),
    "calibration_ratio": MetricInfo(
        higher_is_better=None, tasks=_CLF, fn=calibration_ratio, default_tolerance=0.25,
        description="mean predicted probability / observed event rate (ideal 1)"),
    "max_rank_reversal": MetricInfo(  # on direction models' cards too; a rule may name it for binary ones only
        higher_is_better=False, tasks=_BIN, computed_for=_CLF, fn=_rank_reversal,
        description="largest drop of the event rate from a score decile to the next riskier one"),
    "adverse_impact_ratio": MetricInfo(
        higher_is_better=True, tasks=_BIN, needs_protected=True, shown=True,
        description="lowest approval rate of a protected group / approval rate of its reference group"),
    "directional_accuracy": MetricInfo(
        higher_is_better=True, tasks=_DIR, description="share of days whose direction (up/down) is predicted right",
        fn=directional_accuracy, loss=direction_miss, row_comparable=True, shown=True,
        default_tolerance=0.03),
    "rmse": MetricInfo(higher_is_better=False, tasks=_REG, description="root mean squared error",
                       fn=rmse, loss=squared_error, row_comparable=True, shown=True),
    "mse": MetricInfo(higher_is_better=False, tasks=_REG, description="mean squared error",
                      fn=mse, loss=squared_error, row_comparable=True),
    "mae": MetricInfo(higher_is_better=False, tasks=_REG, description="mean absolute error",
                      fn=mae, loss=absolute_error, row_comparable=True, shown=True),
    "qlike": MetricInfo(higher_is_better=False, tasks=_REG, volatility=True, fn=qlike, loss=qlike_loss,
                        row_comparable=True, shown=True,
                        description="QLIKE of the volatility forecast on variances (Patton 2011)"),
    "rmse_ratio_vs_persistence": MetricInfo(
        higher_is_better=False, tasks=_REG, shown=True, default_tolerance=0.05,
        description="RMSE of the model / RMSE of the naive persistence forecast (below 1 beats it)",
    ),
}
"""Every metric a gate rule or a primary metric may name, in the order of reports."""


class _RowComparable(Set):
    """The names of the row-comparable metrics, read from :data:`METRICS` at each use (so an
    entry added at run time, as in a test, is comparable at once)."""

    def __contains__(self, name: object) -> bool:
        info = METRICS.get(name) if isinstance(name, str) else None
        return info is not None and info.row_comparable

    def __iter__(self) -> Iterator[str]:
        return iter([name for name, m in METRICS.items() if m.row_comparable])

    def __len__(self) -> int:
        return sum(1 for m in METRICS.values() if m.row_comparable)

    def __repr__(self) -> str:
        return f"ROW_COMPARABLE({sorted(self)})"


ROW_COMPARABLE: Set[str] = _RowComparable()
"""Metrics two models can be compared on row by row (champion and baseline rules)."""


# --------------------------------------------------------------------------- reading the catalogue


def is_better(metric: str, a: float, b: float) -> bool:
    """True if value ``a`` is strictly better than ``b`` for this metric (its direction)."""
    if METRICS[metric].higher_is_better:
        return a > b
    return a < b


def advantage(metric: str, a: float, b: float, change: str = "absolute") -> float:
    """``a``'s advantage over ``b`` in the metric's better direction: ``a - b`` (``b - a`` when
    lower is better), divided by ``|b|`` for ``change="relative"`` (``±inf`` against a zero ``b``,
    0 when both are equal)."""
    d = (a - b) if METRICS[metric].higher_is_better else (b - a)
    if change == "relative":
        if b != 0:
            return d / abs(b)
        return 0.0 if d == 0 else math.copysign(float("inf"), d)  # infinitely better, or worse
    return d


def metrics_for(task: str, volatility: bool = False) -> list[str]:
    """The catalogue metrics with a function that the evaluation of ``task`` computes, in order
    (the volatility losses only with ``volatility``: the label is a volatility)."""
    return [name for name, m in METRICS.items()
            if m.fn is not None and task in m.evaluated_for and (volatility or not m.volatility)]


def shown_metrics(task: str, volatility: bool = False) -> list[str]:
    """The columns of the candidates table for ``task``, in order (see :func:`metrics_for`)."""
    return [name for name, m in METRICS.items()
            if m.shown and task in m.evaluated_for and (volatility or not m.volatility)]


def digits(metric: str | None) -> int:
    """Decimals to show for ``metric`` (:data:`DEFAULT_DIGITS` for a name outside the catalogue)."""
    info = METRICS.get(metric) if metric is not None else None
    return info.digits if info is not None else DEFAULT_DIGITS


def format_metric(metric: str | None, value: float | None, missing: str = "n/a") -> str:
    """A number with the metric's decimals (gate sentences); ``missing`` for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return f"{value:.{digits(metric)}f}"
