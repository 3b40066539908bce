"""The metrics catalogue: one record per metric, read by the spec, the gate, the comparisons,
the evaluation and the CLI. Adding a metric is one entry in :data:`METRICS`.

Imports numpy, scipy and scikit-learn only (see ``docs/metrics.md``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

TaskType = Literal["binary_classification", "regression", "direction"]
"""``direction``: a classifier of the next period's market direction (1 = up), judged against
the naive always-majority and persistence baselines."""

CLASSIFICATION_TASKS = frozenset({"binary_classification", "direction"})


class MetricInfo(BaseModel):
    """What the platform knows about a metric: its direction, the tasks it applies to, how it
    can be compared between two models, and how it is shown."""

    model_config = ConfigDict(frozen=True)
    higher_is_better: bool | None
    """None for a metric with an ideal value rather than a direction (a calibration ratio):
    usable in threshold rules only."""
    tasks: frozenset[str]
    description: str
    needs_protected: bool = False
    row_comparable: bool = False
    """Computed from labels and one model's scores alone, so two models can be compared on the
    same rows (champion and baseline rules, paired bootstrap)."""
    per_row_loss: bool = False
    """Has a per-row loss (squared error, absolute error, a miss): Diebold-Mariano applies."""
    delong: bool = False
    """The DeLong variance of a paired difference applies (ROC AUC)."""


_CLF = CLASSIFICATION_TASKS
_REG = frozenset({"regression"})
_DIR = frozenset({"direction"})

METRICS: dict[str, MetricInfo] = {
    "roc_auc": MetricInfo(higher_is_better=True, tasks=_CLF, description="area under the ROC curve",
                          row_comparable=True, delong=True),
    "gini": MetricInfo(higher_is_better=True, tasks=_CLF, description="Gini coefficient = 2 * ROC AUC - 1",
                       row_comparable=True),
    "ks": MetricInfo(higher_is_better=True, tasks=_CLF, description="Kolmogorov-Smirnov statistic: max |TPR - FPR|",
                     row_comparable=True),
    "brier": MetricInfo(higher_is_better=False, tasks=_CLF,
                        description="Brier score: mean squared error of the probability", row_comparable=True),
    "log_loss": MetricInfo(higher_is_better=False, tasks=_CLF, description="binary cross-entropy of the probability",
                           row_comparable=True),
    "average_precision": MetricInfo(higher_is_better=True, tasks=_CLF,
                                    description="area under the precision-recall curve", row_comparable=True),
    "roc_auc_ci_low": MetricInfo(
        higher_is_better=True, tasks=_CLF, description="lower bound of the 95 % DeLong confidence interval of ROC AUC"),
    "ece": MetricInfo(
        higher_is_better=False, tasks=_CLF, row_comparable=True,
        description="expected calibration error: weighted mean |mean predicted - observed rate| over score deciles"),
    "calibration_ratio": MetricInfo(
        higher_is_better=None, tasks=_CLF, description="mean predicted probability / observed event rate (ideal 1)"),
    "max_rank_reversal": MetricInfo(
        higher_is_better=False, tasks=frozenset({"binary_classification"}),
        description="largest drop of the event rate from a score decile to the next riskier one"),
    "adverse_impact_ratio": MetricInfo(
        higher_is_better=True, tasks=frozenset({"binary_classification"}), needs_protected=True,
        description="lowest approval rate of a protected group / approval rate of its reference group"),
    "directional_accuracy": MetricInfo(
        higher_is_better=True, tasks=_DIR, description="share of days whose direction (up/down) is predicted right",
        row_comparable=True, per_row_loss=True),
    "rmse": MetricInfo(higher_is_better=False, tasks=_REG, description="root mean squared error",
                       row_comparable=True, per_row_loss=True),
    "mse": MetricInfo(higher_is_better=False, tasks=_REG, description="mean squared error",
                      row_comparable=True, per_row_loss=True),
    "mae": MetricInfo(higher_is_better=False, tasks=_REG, description="mean absolute error",
                      row_comparable=True, per_row_loss=True),
    "rmse_ratio_vs_persistence": MetricInfo(
        higher_is_better=False, tasks=_REG,
        description="RMSE of the model / RMSE of the naive persistence forecast (below 1 beats it)",
    ),
}
"""Every metric a gate rule or a primary metric may name."""

ROW_COMPARABLE = frozenset(name for name, m in METRICS.items() if m.row_comparable)
"""Metrics two models can be compared on row by row (champion and baseline rules)."""
