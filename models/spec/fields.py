"""The fields of a model spec and the views derived from them (feature columns, the builder,
the target column). :class:`models.spec.model.ModelSpec` adds the cross-field checks."""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from models.features import BUILDERS, FeaturesFrom
from models.metrics import CLASSIFICATION_TASKS, METRICS, TaskType
from models.spec.base import Strict, is_stored, safe_name
from models.spec.backtest import BacktestSpec
from models.spec.data import (
    CandidateSpec,
    ColumnSpec,
    OutOfTimeSpec,
    Source,
    Split,
    TableSpec,
    TargetSpec,
    TimeIndexSpec,
    WindowSpec,
)
from models.spec.explain import DriversSpec, ReasonsSpec, ScorecardSpec
from models.spec.gate import GateSpec
from models.spec.governance import GovernanceSpec
from models.spec.monitoring import DriftSpec, FairnessSpec, LeakageSpec, ScheduleSpec
from models.spec.rating import RatingScaleSpec, ValidationSpec
from models.spec.segments import SegmentSpec
from models.spec.var import VarSpec

NOT_HASHED = ("governance",)
"""Fields kept in a spec's dump but not in its canonical form (:meth:`SpecFields.canonical_form`):
who answers for the model, not what it computes."""

_CACHED = ("builder",)
"""Names of the cached properties, dropped from a copy whose fields may differ."""


class SpecFields(Strict):
    """A financial model: its data, expectations, split, candidates, gate, drift and schedules.

    One YAML file per model; the sections below are its parts.
    """

    name: str
    """The model's name: a safe name (it becomes a directory name) equal to the file's name."""
    task: TaskType
    """``binary_classification`` (probability of the positive label), ``regression``, or
    ``direction`` (a classifier of the next period's market direction, 1 = up, judged against
    the naive majority and persistence baselines)."""
    description: str
    """What the model predicts, in a sentence or two."""
    intended_use: str
    """What the model is for and who uses its scores (shown on the model card): required, not blank.
    A stored version written without it reads back through :func:`models.spec.stored.stored_spec`."""
    limitations: list[str]
    """Known limitations (shown on the model card): required, at least one, none blank."""
    source: Source
    """Where the data comes from: ``kind`` chooses one of the source sections."""
    time_column: str | None = None
    """A column with role ``datetime`` holding dates that orders the rows; needed by walk-forward
    splits, feature builders and ``out_of_time.start``. The short form of ``time_index`` with
    ``kind: datetime``; give one of the two."""
    time_index: TimeIndexSpec | None = None
    """The column that orders the rows and its kind: dates, or an integer index without a calendar
    (``{column: day, kind: integer}``). ``time_column: X`` is ``time_index: {column: X}``."""
    window: WindowSpec | None = None
    """The training window on time-ordered data: only rows from ``start`` to ``end`` are development rows."""
    out_of_time: OutOfTimeSpec | None = None
    """The later part of the data, held back from development."""
    columns: dict[str, ColumnSpec]
    """Every column of the source data by name, with its role and expectations."""
    target: TargetSpec
    """The label."""
    table: TableSpec
    """Table-level expectations."""
    features_from: FeaturesFrom | None = None
    """A feature builder that derives the features and the label from raw inputs; without it
    the features are the columns with role ``numeric`` or ``categorical``."""
    split: Split
    """How development rows are split into training and holdout: ``method`` chooses one of the split sections."""
    candidates: list[CandidateSpec] = Field(min_length=1)
    """The candidate models trained and compared on the holdout."""
    gate: GateSpec
    """How a challenger is judged for promotion."""
    drift: DriftSpec = Field(default_factory=DriftSpec)
    """Drift monitoring settings."""
    leakage: LeakageSpec = Field(default_factory=LeakageSpec)
    """Target-leakage guards."""
    fairness: FairnessSpec = Field(default_factory=FairnessSpec)
    """Fairness measurement for the protected columns."""
    selection: Literal["best", "simplest_within_noise"] | None = None
    """How the challenger is chosen among the candidates: ``best`` by the primary metric, or
    ``simplest_within_noise``, the simplest estimator (linear < gradient boosting < network) whose
    primary metric is not significantly worse than the best's (95 % paired interval, the gate's
    DeLong / Diebold-Mariano / bootstrap). Unset: ``simplest_within_noise`` for binary
    classification (credit and loan models, where drivers must be explained), ``best`` otherwise."""
    drivers: DriversSpec = Field(default_factory=DriversSpec)
    """How the selected candidate's global drivers are measured for the model card."""
    scorecard: ScorecardSpec | None = None
    """Scorecard points (binary classification only): a ``points`` column in scoring output and
    the cut-off in points in the model card; None (the default): no points."""
    reasons: ReasonsSpec = Field(default_factory=ReasonsSpec)
    """How the adverse-action reasons of declined applications are chosen (binary classification)."""
    rating_scale: RatingScaleSpec | None = None
    """Rating grades of the probability of default (binary classification only): the grade table
    with the Jeffreys and binomial back-tests in the model card; None (the default): no grades."""
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    """The traffic-light policy of the supervisors' back-tests' p-values."""
    backtest: BacktestSpec = Field(default_factory=BacktestSpec, exclude_if=lambda v: v == BacktestSpec())
    """The scoring ledger's as-of date, the outcome window and the vintages of back-tests (left out
    of the canonical form while at its defaults, so specs hash as before the section existed)."""
    var: VarSpec | None = None
    """The Value-at-Risk use of a volatility forecast and its back-test (regression on the
    ``realised_volatility`` builder only); None (the default): no VaR back-test."""
    schedules: ScheduleSpec = Field(default_factory=ScheduleSpec)
    """When training and monitoring deployments run."""
    governance: GovernanceSpec | None = Field(default=None, exclude_if=lambda v: v is None)
    """The model's owner, tier, review interval and approval rule, shown by ``finml inventory``
    (docs/inventory.md); None (the default): the inventory shows the owner as unassigned and
    reviews the model every 12 months. Kept in the spec stored with a version (as it was at
    training), but never part of the spec's hash nor of the differences monitoring reports: who
    answers for a model can change without the model changing."""
    segments: list[SegmentSpec] = Field(default_factory=list, exclude_if=lambda v: not v)
    """Declared columns whose values split monitoring's (and back-tests') figures by segment: per
    segment, its rows, the PSI of the score and of each feature, and with outcomes the event rate,
    mean predicted probability, ROC AUC, Brier score and the Jeffreys test of the segment at its mean
    probability (docs/drift.md, "Segments"). Each entry is a column with role ``categorical``, a
    boolean feature, a column with role ``protected`` (measured, never a feature; a numeric one in its
    ``fairness.bands``), or a numeric feature with its bands (``{column: Amount, bands: [1000, 5000]}``).
    A segment of fewer than ``fairness.min_group_rows`` rows is too small to judge (the fairness
    rule). Measured only: segments never change the monitoring verdict. Empty (the default): no
    segment table; an empty list is left out of the spec's dump and hash."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return safe_name(v, "model name")

    @field_validator("intended_use")
    @classmethod
    def _intended_use(cls, v: str, info: ValidationInfo) -> str:
        if not v.strip() and not is_stored(info):
            raise ValueError("is blank; say what the model is for and who uses its scores (shown on the model card)")
        return v

    @field_validator("limitations")
    @classmethod
    def _limitations(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if is_stored(info):
            return v
        if not v:
            raise ValueError("is empty; list at least one known limitation of the model (shown on the model card)")
        blank = [i for i, item in enumerate(v) if not item.strip()]
        if blank:
            raise ValueError(f"item(s) {blank} are blank; each item states one known limitation")
        return v

    @field_validator("features_from", mode="before")
    @classmethod
    def _builder_name(cls, v: Any) -> Any:
        if isinstance(v, dict) and "name" in v and v["name"] not in BUILDERS:
            raise ValueError(f"unknown builder {v['name']!r}; choose one of {sorted(BUILDERS)}")
        return v

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False):
        """A copy (see ``pydantic.BaseModel.model_copy``) that rebuilds its cached feature builder."""
        copied = super().model_copy(update=update, deep=deep)
        for name in _CACHED:
            copied.__dict__.pop(name, None)
        return copied

    # ---- derived views -------------------------------------------------------------

    @cached_property
    def builder(self):
        """The feature builder object (built once per spec), or None when features are the columns themselves."""
        if self.features_from is None:
            return None
        return self.features_from.make(self.time_axis)

    @property
    def time_axis(self) -> str | None:
        """The column that orders the rows (``time_index.column`` or ``time_column``), or None."""
        return self.time_index.column if self.time_index is not None else self.time_column

    @property
    def time_kind(self) -> str | None:
        """``"datetime"`` or ``"integer"`` (``time_index.kind``; ``time_column`` is datetime); None
        without a time axis."""
        if self.time_index is not None:
            return self.time_index.kind
        return "datetime" if self.time_column is not None else None

    @property
    def time_max_step(self) -> int | None:
        """The largest index step an ``integer`` time axis may take between rows (``time_index.max_step``;
        1 with a feature builder when not given); None for dates or when not checked."""
        if self.time_kind != "integer":
            return None
        if self.time_index.max_step is not None:
            return self.time_index.max_step
        return 1 if self.features_from is not None else None

    @property
    def feature_columns(self) -> list[str]:
        """Model inputs in a fixed order (numeric first, then categorical)."""
        return self.numeric_features + self.categorical_features

    @property
    def numeric_features(self) -> list[str]:
        """Numeric model inputs: the builder's features (its built ones, then its ``extra_features``
        other than categorical columns), or the columns with role ``numeric``."""
        if self.builder is not None:
            categorical = set(self.categorical_features)
            return [f for f in self.builder.feature_names if f not in categorical]
        return [c for c, s in self.columns.items() if s.role == "numeric"]

    @property
    def monotone_features(self) -> dict[str, int]:
        """Declared directions of numeric features: column → +1 (``increasing``) or -1
        (``decreasing``), in column order; empty when none is declared."""
        return {c: 1 if s.monotone == "increasing" else -1 for c, s in self.columns.items()
                if s.monotone is not None and c in self.numeric_features}

    @property
    def categorical_features(self) -> list[str]:
        """Categorical model inputs: the columns with role ``categorical`` (with a builder: those of
        its ``extra_features``)."""
        if self.features_from is not None:
            extra = self.features_from.params.extra_features
            return [c for c in extra if c in self.columns and self.columns[c].role == "categorical"]
        return [c for c, s in self.columns.items() if s.role == "categorical"]

    @property
    def target_column(self) -> str:
        """Name of the label column in the modelling table (after any feature builder)."""
        if self.builder is not None:
            return self.builder.target_name
        return self.target.column

    @property
    def id_columns(self) -> list[str]:
        """Columns with role ``id``."""
        return [c for c, s in self.columns.items() if s.role == "id"]

    @property
    def text_columns(self) -> list[str]:
        """Columns a CSV file is read with as text, exactly as written (``dtype: string``, and an
        ``id`` without a dtype: :attr:`models.spec.ColumnSpec.reads_as_text`), in column order."""
        return [c for c, s in self.columns.items() if s.reads_as_text]

    def reason_text(self, feature: str) -> str:
        """The adverse-action reason text of a feature: ``columns.<feature>.reason``, else one made
        from its name (``"Income: less favourable than the reference applicant's"``)."""
        column = self.columns.get(feature)
        if column is not None and column.reason and column.role != "excluded":
            return column.reason
        return f"{feature.replace('_', ' ')}: less favourable than the reference applicant's"

    @property
    def segment_columns(self) -> list[str]:
        """The columns of ``segments``, in the order given."""
        return [s.column for s in self.segments]

    def segment_bands(self, column: str) -> list[float] | None:
        """The cut points of segment column ``column``: those given in ``segments``, else its
        ``fairness.bands`` (a protected column); None for a column measured by its values."""
        for s in self.segments:
            if s.column == column and s.bands is not None:
                return list(s.bands)
        edges = self.fairness.bands.get(column)
        return list(edges) if edges else None

    @property
    def protected_columns(self) -> list[str]:
        """Columns with role ``protected``."""
        return [c for c, s in self.columns.items() if s.role == "protected"]

    @property
    def is_classifier(self) -> bool:
        """True for tasks whose score is a probability of the positive class."""
        return self.task in CLASSIFICATION_TASKS

    @property
    def selection_rule(self) -> str:
        """``selection``, or its default for the task (``simplest_within_noise`` for binary
        classification, ``best`` otherwise)."""
        if self.selection is not None:
            return self.selection
        return "simplest_within_noise" if self.task == "binary_classification" else "best"

    @property
    def estimator_task(self) -> str:
        """The task as estimators see it: ``binary_classification`` or ``regression``."""
        return "binary_classification" if self.is_classifier else "regression"

    @property
    def primary_higher_is_better(self) -> bool:
        """Whether a higher value of the gate's primary metric is better."""
        return METRICS[self.gate.primary_metric].higher_is_better

    def canonical_form(self) -> dict[str, Any]:
        """The spec as hashed and compared: its JSON dump without the fields of :data:`NOT_HASHED`
        (sections left out at their defaults, such as an empty ``segments``, are not in the dump)."""
        dump = self.model_dump(mode="json")
        for key in NOT_HASHED:
            dump.pop(key, None)
        return dump

    def content_hash(self) -> str:
        """SHA-256 of the spec's canonical JSON form (:meth:`canonical_form`; key order and
        whitespace do not matter). An empty ``segments`` is not in that form, nor is ``governance``,
        so a spec without segments hashes as before the field existed and a change of owner or tier
        does not change the hash."""
        canonical = json.dumps(self.canonical_form(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
