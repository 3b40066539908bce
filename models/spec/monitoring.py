"""The monitoring sections of a spec: leakage guards, fairness measurement, drift monitoring
and the retraining and monitoring schedules."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Literal

from pydantic import Field, field_validator, model_validator

from models.metrics import METRICS
from models.spec.base import Strict, check_metric, one_of
from models.spec.cron import check_cron
from models.spec.data import Scalar


class LeakageSpec(Strict):
    """Guards against target leakage, checked on the training rows before any candidate is fitted.

    A feature that on its own separates the classes almost perfectly (single-feature ROC AUC
    above ``max_single_feature_auc``), or that is almost a copy of a regression target
    (absolute Spearman correlation above ``max_abs_correlation``), is probably derived from
    the outcome: the run stops and names it. So does a feature whose missingness alone
    separates the classes (ROC AUC of "is missing" above ``max_missingness_auc``), and a numeric
    feature unique on every row and monotone with row order (an id declared as a feature). A
    selected model whose holdout ROC AUC exceeds both the best single feature's and a linear
    baseline's by more than ``max_auc_lift`` is a warning in the card. Why: docs/data-quality.md.
    """

    max_single_feature_auc: float = Field(default=0.95, gt=0.5, le=1.0)
    """Largest ROC AUC one feature may reach alone (classifiers)."""
    max_abs_correlation: float = Field(default=0.98, gt=0.0, le=1.0)
    """Largest absolute Spearman correlation of a feature with the target (regression)."""
    max_missingness_auc: float = Field(default=0.75, gt=0.5, le=1.0)
    """Largest ROC AUC the indicator "feature is missing" may reach alone (classifiers): 0.75
    means missing shares 50 points apart between events and non-events."""
    max_auc_lift: float = Field(default=0.08, gt=0.0, le=0.5)
    """Largest lift of the selected model's holdout ROC AUC over the better of the best single
    feature's and a linear baseline's before the card warns (a warning, not a refusal)."""
    point_in_time_check: bool = True
    """For feature builders: rebuild the features on data cut at a few dates and require the
    rows before each cut to be unchanged (no feature may use later data)."""


def band_labels(edges: list[float]) -> list[str]:
    """The group names of a banded numeric attribute, lowest first: ``< e0``, ``[e0, e1)``, ...,
    ``>= e_last`` (each band includes its lower edge)."""
    inner = [f"[{lo:g}, {hi:g})" for lo, hi in pairwise(edges)]
    return [f"< {edges[0]:g}", *inner, f">= {edges[-1]:g}"]


def band_problem(column: str, edges: list[float]) -> str | None:
    """What is wrong with the cut points ``edges`` of column ``column``'s bands (none given, one
    not finite, not strictly increasing), in words; None when they are good bands."""
    if not edges:
        return f"bands of {column!r}: give at least one cut point"
    if not all(math.isfinite(e) for e in edges):
        return f"bands of {column!r}: cut points must be finite numbers"
    if any(b <= a for a, b in pairwise(edges)):
        return f"bands of {column!r}: cut points must be strictly increasing, got {edges}"
    return None


class FairnessSpec(Strict):
    """Fairness measurement for the spec's protected columns (never features).

    The operating cut-off: applications whose event probability is below ``cutoff`` are
    approved; or, with ``approval_rate``, the cut-off approves that share of the holdout. By
    default the approval rate is one minus the development event rate. A numeric protected
    attribute (age) is measured in the ``bands`` it declares, never one group per value. A group
    of fewer than ``min_group_rows`` holdout rows is reported as too small to judge and enters
    no ratio. ``reference_groups`` names, per protected column, the group whose approval rate is
    the denominator of the adverse impact ratio (default: the largest group). The four-fifths
    screen is the US EEOC Uniform Guidelines, 29 CFR 1607.4(D). Definitions: docs/metrics.md
    (fairness).
    """

    cutoff: float | None = Field(default=None, gt=0.0, lt=1.0)
    """Event probability below which an application is approved."""
    approval_rate: float | None = Field(default=None, gt=0.0, lt=1.0)
    """Share of the holdout approved (instead of ``cutoff``)."""
    reference_groups: dict[str, Scalar] = Field(default_factory=dict)
    """Per protected column, the group whose approval rate is the denominator of the adverse
    impact ratio (for a banded column, a band's name such as ``"[25, 40)"``); default: the
    largest group."""
    bands: dict[str, list[float]] = Field(default_factory=dict)
    """Per numeric protected column, increasing cut points (``Age: [18, 25, 40, 60]`` gives the
    groups ``< 18``, ``[18, 25)``, ``[25, 40)``, ``[40, 60)``, ``>= 60``); required for every
    numeric protected column."""
    min_group_rows: int = Field(default=30, ge=1)
    """Fewest holdout rows a group needs to be judged: a smaller group is reported as too small
    to judge and never enters an adverse impact ratio (nor is it the reference)."""

    @field_validator("bands")
    @classmethod
    def _bands(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        for column, edges in v.items():
            problem = band_problem(column, edges)
            if problem:
                raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _check(self) -> "FairnessSpec":
        if self.cutoff is not None and self.approval_rate is not None:
            raise ValueError("give 'cutoff' or 'approval_rate', not both")
        return self

    def too_small(self, rows: int) -> bool:
        """Whether a group (a fairness group, a segment of monitoring or a back-test) of ``rows``
        rows is too small to judge: fewer than ``min_group_rows``. The one minimum-size rule of
        :mod:`tasks.fairness` and :mod:`tasks.segments`."""
        return rows < self.min_group_rows

    def groups_of(self, column: str) -> list[str] | None:
        """The band names of a banded column (:func:`band_labels`), None for a column without bands."""
        edges = self.bands.get(column)
        return band_labels(edges) if edges else None


EVIDENTLY_STATTESTS = frozenset({
    "TVD", "anderson", "chisquare", "cramer_von_mises", "ed", "empirical_mmd", "es", "fisher_exact",
    "g_test", "hellinger", "jensenshannon", "kl_div", "ks", "mannw", "psi", "t_test", "wasserstein", "z",
})
"""Stat-test names Evidently 0.7 accepts (``evidently.legacy.calculations.stattests``)."""

DriftMethod = one_of("drift method", EVIDENTLY_STATTESTS)


class ColumnDriftSpec(Strict):
    """Per-column override of the Evidently drift method and threshold."""

    method: DriftMethod | None = None
    """The Evidently stat test of this column (default: ``num_method`` or ``cat_method``)."""
    threshold: float | None = Field(default=None, gt=0.0)
    """The stat test's threshold for this column (default: ``stattest_threshold``, else
    ``psi_significant`` for ``psi`` and 0.1 for the other methods)."""


class DriftSpec(Strict):
    """Drift monitoring settings.

    The decision is the population stability index (PSI) of every feature and of the score on
    bins frozen from the version's reference sample: below ``psi_moderate`` stable, from it
    moderate, from ``psi_significant`` significant; with ``psi_threshold: chi2`` a light other than
    stable also needs the PSI to be beyond sampling noise at ``psi_alpha``. The Evidently report, on at most ``evidently_sample_rows`` rows, uses ``num_method`` /
    ``cat_method`` (PSI) at ``stattest_threshold`` (``psi_significant``), overridable per column.
    Definitions and sources: docs/drift.md.
    """

    bins: int = Field(default=10, ge=2, le=100)
    """Quantile bins of a numeric feature, frozen on the reference sample."""
    psi_floor: float = Field(default=1e-4, gt=0.0, lt=0.01)
    """Smallest bin share used in the PSI, so that an empty bin keeps PSI finite."""
    psi_moderate: float = Field(default=0.1, gt=0.0)
    """PSI from which a feature's drift is 'moderate'."""
    psi_significant: float = Field(default=0.25, gt=0.0)
    """PSI from which a feature's drift is 'significant' (above ``psi_moderate``)."""
    psi_threshold: Literal["fixed", "chi2"] = "fixed"
    """How a feature's PSI becomes its traffic light. ``fixed``: the thresholds ``psi_moderate`` and
    ``psi_significant`` alone. ``chi2``: the same thresholds, and a light turns moderate or significant only when the PSI is
    beyond sampling noise at the two sample sizes: the p-value of PSI's chi-square approximation,
    ``PSI / (1/n + 1/m) ~ chi2(k - 1)`` (Yurdakul 2018), adjusted by Benjamini-Hochberg across the
    features, below ``psi_alpha``."""
    psi_alpha: float = Field(default=0.01, gt=0.0, lt=0.5)
    """False discovery rate of the ``chi2`` rule (Benjamini-Hochberg across the features)."""
    dataset_drift_share: float = Field(default=0.3, gt=0.0, le=1.0)
    """Share of tested features at 'significant' PSI that counts as dataset drift."""
    min_rows: int = Field(default=200, ge=1)
    """Smaller batches get the verdict 'insufficient data', never a drift alarm."""
    fault_alpha: float = Field(default=0.001, gt=0.0, lt=0.5)
    """Significance level of the data-quality tests: a constant or all-missing feature whose
    states (single value / other values / missing) differ from the reference's by Fisher's exact
    test (and by a state PSI of at least ``psi_significant``), and a label event rate outside
    ``target.expected_positive_rate`` by an exact binomial test, are faults only at a p-value
    below this (so that a rare flag that is all zero in a small batch, or 0 events in 40 labels,
    does not raise a false alarm)."""
    out_of_range_share: float = Field(default=0.01, gt=0.0, lt=1.0)
    """Share of a batch's rows with a numeric feature outside the version's training range above
    which (and beyond sampling noise at ``fault_alpha``, by an exact binomial test) monitoring
    raises a data-quality alarm naming the feature."""
    reference_rows: int = Field(default=100_000, ge=100)
    """Largest reference sample stored with a version: the development rows, or a random sample
    of this many of them seeded with the split's seed."""
    evidently_sample_rows: int = Field(default=10_000, ge=100)
    """Rows of the batch (and of the reference) given to Evidently; PSI always uses every row."""
    num_method: DriftMethod = "psi"
    """Evidently stat test of numeric features (default PSI, as the decision)."""
    cat_method: DriftMethod = "psi"
    """Evidently stat test of categorical features (default PSI, as the decision)."""
    stattest_threshold: float | None = Field(default=None, gt=0.0)
    """Threshold of the Evidently stat tests (default: ``psi_significant`` for ``psi``, 0.1, Evidently's
    default, for the other methods)."""
    columns: dict[str, ColumnDriftSpec] = Field(default_factory=dict)
    """Per-column Evidently method and threshold overrides."""
    performance_tolerance: dict[str, float | None] = Field(default_factory=dict)
    """Largest accepted worsening of a metric against the version's holdout value, in the
    metric's units (e.g. ``roc_auc: 0.05``); a larger drop is a performance breach. A metric
    not named here gets the catalogue's default tolerance (the spec reference's metrics table;
    ``null`` judges it not at all). ``calibration_ratio`` is the largest accepted
    ``|mean predicted / observed rate - 1|`` of a calibration breach (see ``calibration_alpha``)."""
    calibration_alpha: float = Field(default=0.01, gt=0.0, lt=0.5)
    """Significance level of the calibration test of a labelled classifier batch: the observed
    event rate against the mean predicted probability by the two-sided exact binomial test. A
    p-value below this, with ``|ratio - 1|`` beyond the ``calibration_ratio`` tolerance, is a
    calibration breach."""
    on_drift: Literal["retrain", "alert"] = "retrain"
    """What dataset drift, a performance breach or a calibration breach leads to: an event that
    triggers retraining, or an alert only (the event is emitted either way, with this as its
    ``action``; the deployment trigger retrains on ``action: retrain`` only)."""
    on_feature_drift: Literal["alert", "retrain"] = "alert"
    """What a significant PSI on a feature or on the score leads to, short of dataset drift
    (the verdict ``feature_drift``): an alert only, or retraining (the event's ``action``)."""

    def tolerance(self, metric: str) -> float | None:
        """The tolerance of ``metric``: the spec's (None when it gives ``null``), else the
        catalogue's ``default_tolerance`` (None for a metric outside the catalogue)."""
        if metric in self.performance_tolerance:
            return self.performance_tolerance[metric]
        info = METRICS.get(metric)
        return None if info is None else info.default_tolerance

    @field_validator("performance_tolerance")
    @classmethod
    def _tolerance(cls, v: dict[str, float | None]) -> dict[str, float | None]:
        for metric, tol in v.items():
            check_metric(metric)
            if METRICS[metric].higher_is_better is None and metric != "calibration_ratio":
                raise ValueError(f"{metric!r} has an ideal value, not a better direction, so a worsening cannot be "
                                 "measured; bound it with a threshold rule instead")
            if tol is not None and tol < 0:
                raise ValueError(f"tolerance of {metric!r} must be >= 0")
        return v

    @model_validator(mode="after")
    def _check(self) -> "DriftSpec":
        if self.psi_moderate >= self.psi_significant:
            raise ValueError("psi_moderate must be below psi_significant")
        return self



DEFAULT_BACKTEST_CRON = "0 7 1 * *"
"""The back-test deployment's default schedule: the 1st of every month, 07:00 UTC."""


class ScheduleSpec(Strict):
    """Cron schedules (five fields, UTC) for retraining, monitoring and back-test deployments."""

    train: str = "0 3 * * 0"
    """When the training deployment runs (default: Sundays 03:00 UTC)."""
    monitor: str = "0 6 * * *"
    """When the monitoring deployment runs (default: every day 06:00 UTC)."""
    backtest: str = Field(default=DEFAULT_BACKTEST_CRON, exclude_if=lambda v: v == DEFAULT_BACKTEST_CRON)
    """When the back-test deployment runs (binary classification; default: the 1st of every month,
    07:00 UTC; left out of the canonical form at its default), reading ``backtest.landing``: the EBA guidelines on PD estimation ask for the one-year
    default rate to be computed at least quarterly (EBA/GL/2017/16, paragraph 78)."""

    @field_validator("train", "monitor", "backtest")
    @classmethod
    def _cron(cls, v: str) -> str:
        return check_cron(v)
