"""The cross-field rules of a spec: one function per rule, each returning its error messages
(``"<field path>: <what is wrong>"``); :data:`CHECKS` lists them in the order they are reported.

Each field is already valid on its own when these run (pydantic validates fields first), so a
feature builder's parameters are valid and its builder can be built.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from models.features import DirectionBuilder
from models.metrics import METRICS
from models.spec.base import did_you_mean
from models.spec.data import ESTIMATORS, ColumnSpec, SqlSource, StratifiedHoldoutSplit, WalkForwardSplit
from models.spec.fields import SpecFields
from models.spec.gate import BaselineRule
from models.spec.sql_text import sql_code

RESERVED_COLUMNS = frozenset({"score", "model", "model_version", "scored_at"})
"""Column names the platform writes beside a model's data: the score (monitoring compares the
score column of the reference sample and of the batch) and the stamps of scored rows. A spec
column of one of these names would be overwritten silently, so specs may not use them."""


def check_candidate_names(spec: SpecFields) -> list[str]:
    """Candidate names are unique (they name the fitted models and their reports)."""
    names = [c.name for c in spec.candidates]
    if len(set(names)) != len(names):
        return [f"candidates: duplicate names in {names}"]
    return []


def check_candidates_fit_task(spec: SpecFields) -> list[str]:
    """Each candidate's estimator supports the task, and its hyperparameters are the estimator's."""
    from models.estimators import check_candidate_params  # scikit-learn: imported when a spec is checked

    errors = []
    for i, cand in enumerate(spec.candidates):
        if spec.estimator_task not in ESTIMATORS[cand.estimator]:
            errors.append(f"candidates.{i}.estimator: {cand.estimator!r} does not support task {spec.task!r}")
            continue
        problem = check_candidate_params(cand.estimator, spec.estimator_task, cand.params)
        if problem:
            errors.append(f"candidates.{i}.params: {problem}")
    return errors


def check_metrics_fit_task(spec: SpecFields) -> list[str]:
    """The primary metric and every rule's metric apply to the task (and have the protected
    columns they need); the primary metric has a better direction."""
    errors = []
    metrics = [("gate.primary_metric", spec.gate.primary_metric)] + [
        (f"gate.rules.{i}.metric", r.metric) for i, r in enumerate(spec.gate.rules) if hasattr(r, "metric")
    ]
    for where, m in metrics:
        if spec.task not in METRICS[m].tasks:
            errors.append(f"{where}: metric {m!r} does not apply to task {spec.task!r}")
        elif METRICS[m].needs_protected and not spec.protected_columns:
            errors.append(f"{where}: metric {m!r} needs a column with role 'protected'")
        elif METRICS[m].volatility and not getattr(spec.builder, "forecasts_volatility", False):
            errors.append(f"{where}: metric {m!r} is a loss on volatility forecasts; it needs the "
                          "realised_volatility feature builder")
    if METRICS[spec.gate.primary_metric].higher_is_better is None:
        errors.append("gate.primary_metric: a primary metric needs a better direction")
    return errors


def check_baselines_exist(spec: SpecFields) -> list[str]:
    """Every baseline rule names a baseline the spec's feature builder computes (a volatility
    builder's ``params.baselines``)."""
    builder = spec.builder
    available = set(builder.declared_baselines) if builder is not None else set()
    hint = "" if builder is None or set(builder.baselines) == available else (
        f"; declare it in features_from.params.baselines (one of {list(builder.baselines)})")
    return [
        f"gate.rules.{i}.baseline: {r.baseline!r} is not a baseline of this model "
        f"(available: {sorted(available) or 'none'}{hint})"
        for i, r in enumerate(spec.gate.rules)
        if isinstance(r, BaselineRule) and r.baseline not in available
    ]


def check_reference_groups(spec: SpecFields) -> list[str]:
    """Fairness reference groups are given for protected columns only; a banded column's
    reference is one of its bands."""
    errors = []
    for col, group in spec.fairness.reference_groups.items():
        if col not in spec.protected_columns:
            errors.append(f"fairness.reference_groups.{col}: not a column with role 'protected'")
        elif (bands := spec.fairness.groups_of(col)) is not None and group not in bands:
            errors.append(f"fairness.reference_groups.{col}: {group!r} is not a band of {col!r}; choose one of {bands}")
    return errors


def is_numeric_column(cs: ColumnSpec) -> bool:
    """A column whose values are numbers to band, not groups as they are: of type ``numeric`` or
    ``integer`` (declared, or by the role ``numeric``), or without a dtype but with a ``min``/``max``
    bound; and no list of ``allowed`` codes (coded categories are groups as they are). A boolean
    column is two groups."""
    declared = cs.type_family in ("numeric", "integer")
    bounded = cs.dtype is None and (cs.min is not None or cs.max is not None)
    return (declared or bounded) and cs.allowed is None


def is_numeric_protected(spec: SpecFields, column: str) -> bool:
    """A protected column declared numeric (:func:`is_numeric_column`): dtype ``numeric``/``integer``,
    or a ``min``/``max`` bound, and no list of ``allowed`` codes."""
    return is_numeric_column(spec.columns[column])


def check_fairness_bands(spec: SpecFields) -> list[str]:
    """Bands are declared for protected columns only, and every numeric protected column has
    them (one group per distinct value would give one-row groups)."""
    errors = [f"fairness.bands.{col}: not a column with role 'protected'"
              for col in spec.fairness.bands if col not in spec.protected_columns]
    errors += [f"fairness.bands.{col}: protected column {col!r} is numeric: declare its bands (increasing cut points, "
               f"e.g. {col}: [18, 25, 40, 60]); one group per distinct value gives groups of a row or two"
               for col in spec.protected_columns if col not in spec.fairness.bands and is_numeric_protected(spec, col)]
    return errors


def _time_point_problem(where: str, value, kind: str) -> str | None:
    """A time point (``out_of_time.start``, ``window.start``/``end``) of the wrong kind for the time axis."""
    from datetime import date

    if kind == "integer" and not isinstance(value, int):
        return (f"{where}: {value} is a date but the time_index is of kind 'integer'; give an index value "
                "(such as 480)")
    if kind == "datetime" and not isinstance(value, date):
        return f"{where}: {value} is an index value but the time column holds dates; give a date (YYYY-MM-DD)"
    return None


def check_time_column(spec: SpecFields) -> list[str]:
    """The time axis (``time_column``, or ``time_index``; not both) is a column with role
    ``datetime``, declared ``dtype: integer`` exactly when its kind is ``integer`` (integers read
    as dates would be nanoseconds since 1970); what needs one has one (an out-of-time start, a
    window, a walk-forward split), and its time points are of the axis's kind."""
    errors = []
    if spec.time_column is not None and spec.time_index is not None:
        errors.append(f"time_index: give time_index or time_column ({spec.time_column!r}), not both")
    where = "time_index.column" if spec.time_index is not None else "time_column"
    axis, kind = spec.time_axis, spec.time_kind
    if axis is not None:
        col = spec.columns.get(axis)
        if col is None or col.role != "datetime":
            errors.append(f"{where}: {axis!r} must be a column with role 'datetime'")
        elif kind == "integer" and col.dtype != "integer":
            errors.append(f"columns.{axis}.dtype: the time_index is of kind 'integer': declare the column "
                          "dtype: integer")
        elif kind == "datetime" and col.dtype == "integer":
            errors.append(f"{where}: {axis!r} is declared dtype integer; an integer index has no calendar (read "
                          "as dates it would be nanoseconds since 1970): use time_index: "
                          f"{{column: {axis}, kind: integer}}")
    if spec.out_of_time is not None and spec.out_of_time.start is not None:
        if axis is None:
            errors.append("out_of_time.start: needs a time_column or time_index")
        elif problem := _time_point_problem("out_of_time.start", spec.out_of_time.start, kind):
            errors.append(problem)
    if spec.window is not None:
        if axis is None:
            errors.append("window: a training window needs a time_column or time_index")
        else:
            errors += [problem for end in ("start", "end") if getattr(spec.window, end) is not None
                       and (problem := _time_point_problem(f"window.{end}", getattr(spec.window, end), kind))]
            oot_start = spec.out_of_time.start if spec.out_of_time is not None else None
            if not errors and spec.window.end is not None and oot_start is not None and spec.window.end >= oot_start:
                errors.append(f"window.end: {spec.window.end} is on or after out_of_time.start ({oot_start}), so the "
                              "window's later rows are held back; end the window before the out-of-time sample")
            if not errors and spec.window.start is not None and oot_start is not None \
                    and spec.window.start >= oot_start:
                errors.append(f"window.start: {spec.window.start} is on or after out_of_time.start ({oot_start}): "
                              "no development row would be left")
    if isinstance(spec.split, WalkForwardSplit) and axis is None:
        errors.append("split: a walk_forward split needs a time_column or time_index")
    return errors


def check_sql_has_order(spec: SpecFields) -> list[str]:
    """Without a time column, an SQL query fixes the row order with ORDER BY (one outside comments and
    quoted text: :func:`models.spec.sql_text.sql_code`)."""
    if isinstance(spec.source, SqlSource) and spec.time_axis is None \
            and not re.search(r"\border\s+by\b", sql_code(spec.source.query), flags=re.IGNORECASE):
        return ["source.query: add ORDER BY: without a time_column the rows are used in the query's "
                "order (out-of-time share, holdout), and a database returns rows in no fixed order "
                "without it, so the same data would give different models"]
    return []


def check_split_fits_task(spec: SpecFields) -> list[str]:
    """A stratified holdout is for classifiers on cross-sectional data (no feature builder)."""
    errors = []
    if isinstance(spec.split, StratifiedHoldoutSplit):
        if not spec.is_classifier:
            errors.append(f"split: stratified_holdout stratifies on classes; a {spec.task} model needs "
                          "method walk_forward (with a time_column)")
        if spec.features_from is not None:
            errors.append("split: features built from a time series need a time-ordered split (method "
                          "walk_forward): a random holdout would train on days after the ones it tests on")
    return errors


def check_target_not_a_column(spec: SpecFields) -> list[str]:
    """Without a feature builder, the target is not also listed under ``columns``."""
    if spec.features_from is None and spec.target.column in spec.columns:
        return [f"target.column: {spec.target.column!r} must not also be listed under columns"]
    return []


def check_has_features(spec: SpecFields) -> list[str]:
    """Without a feature builder, some column is a feature."""
    if spec.features_from is None and not spec.feature_columns:
        return ["columns: no column has role 'numeric' or 'categorical'; a model needs features"]
    return []


def _builder_problem(spec: SpecFields) -> str | None:
    if spec.time_axis is None:
        return "a feature builder needs the spec's time_column or time_index"
    builder = spec.builder
    for col in builder.input_columns:
        cs = spec.columns.get(col)
        if cs is None or cs.role != "input":
            return f"input column {col!r} must be declared under columns with role 'input'"
    problem = _extra_features_problem(spec)
    if problem:
        return problem
    if spec.task == "direction" and not isinstance(builder, DirectionBuilder):
        return "a 'direction' model needs the daily_direction builder"
    if spec.target.column != builder.target_name:
        return f"target.column must be {builder.target_name!r}, the label this builder derives"
    gap = getattr(spec.split, "gap", None)
    if gap is not None and gap < builder.horizon:
        return (
            f"split.gap ({gap}) must be at least the label horizon ({builder.horizon} rows), "
            "or training labels would overlap the test period"
        )
    return None


def _extra_features_problem(spec: SpecFields) -> str | None:
    """Each of ``params.extra_features`` is a declared numeric or categorical column that is not a
    built feature's name; and every numeric or categorical column is one of them (the role says the
    column is a feature: a builder spec that declared one and left it out would validate a column the
    model never sees)."""
    builder = spec.builder
    extra = builder.params.extra_features
    for col in extra:
        cs = spec.columns.get(col)
        if cs is None:
            return (f"params.extra_features: {col!r} is not a declared column; declare it under columns with "
                    "role 'numeric' or 'categorical'")
        if cs.role not in ("numeric", "categorical"):
            return (f"params.extra_features: column {col!r} has role {cs.role!r}; a feature passed through needs "
                    "role 'numeric' or 'categorical'")
        if col in builder.built_feature_names or col == builder.target_name:
            return f"params.extra_features: {col!r} is also the name of a feature or label the builder derives"
    for col, cs in spec.columns.items():
        if cs.role in ("numeric", "categorical") and col not in extra:
            return (f"column {col!r} has role {cs.role!r} (a model feature), but the builder derives the features: "
                    "list it under features_from.params.extra_features to use it as a feature, or give it role "
                    "'excluded' (with a reason) to validate it only")
    return None


def check_feature_builder(spec: SpecFields) -> list[str]:
    """The feature builder fits the spec: a time column, its inputs declared with role
    ``input``, its ``extra_features`` declared numeric or categorical (and every such column among
    them), the daily_direction builder for a direction model, the target column it derives, and a
    split gap of at least its label horizon. Reports the first problem only."""
    if spec.features_from is None:
        return []
    problem = _builder_problem(spec)
    return [f"features_from: {problem}"] if problem else []


def check_positive_label(spec: SpecFields) -> list[str]:
    """A classifier without a feature builder names its positive (event) label."""
    if spec.is_classifier and spec.features_from is None and spec.target.positive is None:
        return ["target.positive: a classifier needs the positive (event) label"]
    return []


def check_drift_settings(spec: SpecFields) -> list[str]:
    """Drift overrides name features of the model; tolerated metrics apply to the task."""
    errors = [f"drift.columns.{col}: not a feature of this model"
              for col in spec.drift.columns if col not in spec.feature_columns]
    errors += [f"drift.performance_tolerance.{metric}: metric does not apply to task {spec.task!r}"
               for metric in spec.drift.performance_tolerance if spec.task not in METRICS[metric].tasks]
    return errors


def check_reserved_columns(spec: SpecFields) -> list[str]:
    """No column, target or feature takes a name the platform writes (:data:`RESERVED_COLUMNS`:
    ``score``, ``model``, ``model_version``, ``scored_at``)."""
    names = set(spec.columns) | {spec.target.column} | set(spec.feature_columns)
    return [f"columns.{name}: {name!r} is a name the platform writes on scored rows "
            f"{sorted(RESERVED_COLUMNS)}; rename the column in the spec and the data"
            for name in sorted(names & RESERVED_COLUMNS)]


def check_unique_keys(spec: SpecFields) -> list[str]:
    """Columns declared unique are declared columns."""
    return [f"table.unique: {key!r} is not a declared column" for key in spec.table.unique if key not in spec.columns]


def check_monotonic_rule(spec: SpecFields) -> list[str]:
    """A ``monotonic`` gate rule has a declared direction to check."""
    if any(r.kind == "monotonic" for r in spec.gate.rules) and spec.feature_columns and not spec.monotone_features:
        return ["gate.rules: a 'monotonic' rule needs at least one numeric column with 'monotone: increasing' or "
                "'monotone: decreasing'"]
    return []


def check_scorecard(spec: SpecFields) -> list[str]:
    """A ``scorecard`` section is for binary classification only (points restate the probability
    of the event as good:bad odds), and no column of the spec is named ``points``, the column it
    writes beside the score."""
    if spec.scorecard is None:
        return []
    if spec.task != "binary_classification":
        return [(f"scorecard: points restate a probability of default as good:bad odds; task {spec.task!r} has "
                "none: remove the scorecard section (binary_classification only)")]
    names = set(spec.columns) | {spec.target.column} | set(spec.feature_columns)
    return [("columns.points: 'points' is the column the scorecard section writes beside the score; rename the "
            "column in the spec and the data")] if "points" in names else []
def check_reasons_task(spec: SpecFields) -> list[str]:
    """Adverse-action reasons (``reasons.k``, ``reasons.explain: all``) are for binary
    classification: a declined application is a score at or above a probability cut-off."""
    if spec.task != "binary_classification" and (spec.reasons.k is not None or spec.reasons.explain == "all"):
        return [f"reasons: adverse-action reasons apply to binary_classification models, not to task {spec.task!r}; "
                "remove the section"]
    return []


def check_var(spec: SpecFields) -> list[str]:
    """A ``var`` section needs a volatility forecast: task ``regression`` with
    ``features_from.name: realised_volatility`` (the forecast is an annualised volatility)."""
    if spec.var is None:
        return []
    name = None if spec.features_from is None else spec.features_from.name
    if spec.task != "regression" or name != "realised_volatility":
        return [(f"var: a Value-at-Risk back-test needs a volatility forecast (task 'regression' with features_from.name "
                 f"'realised_volatility'); this spec has task {spec.task!r} and features_from {name!r}: remove the var "
                 "section")]
    return []


def check_rating_scale(spec: SpecFields) -> list[str]:
    """A ``rating_scale`` section is for binary classification only (grades of a probability of default)."""
    if spec.rating_scale is not None and spec.task != "binary_classification":
        return [f"rating_scale: rating grades are bands of a probability of default; task {spec.task!r} has none: "
                "remove the rating_scale section (binary_classification only)"]
    return []


def check_backtest(spec: SpecFields) -> list[str]:
    """``backtest.as_of`` names a declared ``datetime`` column; outcomes are joined for binary
    classification only (the outcome of a probability of default)."""
    errors = []
    as_of = spec.backtest.as_of
    if as_of is not None:
        column = spec.columns.get(as_of)
        if column is None:
            errors.append(f"backtest.as_of: {as_of!r} is not a declared column (declared: {sorted(spec.columns)})")
        elif column.role != "datetime" and column.dtype != "datetime":
            errors.append(f"backtest.as_of: column {as_of!r} is not a datetime column (role {column.role!r}); "
                          "declare it with role: datetime")
    if spec.backtest.landing is not None and spec.task != "binary_classification":
        errors.append(f"backtest.landing: outcomes are back-tested for binary classification only, not {spec.task!r}")
    return errors


_SEGMENT_KINDS = ("a segment is a column with role 'categorical', a boolean feature, a column with role 'protected', "
                  "or a numeric feature with its bands")


_ROLE_WHY = {"id": "one segment per row", "datetime": "one segment per date", "excluded": "not kept for scoring",
             "input": "a feature builder's raw input, not kept", "numeric": "not a feature of the builder",
             "categorical": "not a feature of the builder"}
"""Why a column of each role (other than ``protected`` and the features) is not a segment."""


def _segment_problem(spec: SpecFields, i: int, segment) -> str | None:
    """What is wrong with entry ``i`` of ``segments`` (see :func:`check_segments`), or None."""
    column, banded = segment.column, segment.bands is not None
    cs = spec.columns.get(column)
    where = f"segments.{i}"
    if cs is None:
        return (f"{where}: {column!r} is not a declared column{did_you_mean(column, list(spec.columns))}; "
                f"{_SEGMENT_KINDS}")
    if cs.role == "protected":
        if spec.features_from is not None:
            return (f"{where}: protected column {column!r}: a feature builder's table keeps its features only; "
                    "segment by a categorical feature passed through (features_from.params.extra_features)")
        if banded:
            return (f"{where}: {column!r} is a protected column, banded by fairness.bands.{column}; list it by name "
                    f"(segments: [{column}])")
        return None
    if column not in spec.feature_columns:
        return f"{where}: column {column!r} has role {cs.role!r} ({_ROLE_WHY.get(cs.role, 'not a feature')}); {_SEGMENT_KINDS}"
    numeric = is_numeric_column(cs)
    if numeric and not banded:
        return (f"{where}: {column!r} is a numeric feature: one segment per distinct value would give segments of a "
                f"row or two; give its bands, e.g. segments: [{{column: {column}, bands: [1000, 5000]}}] "
                "(increasing cut points)")
    if banded and not numeric:
        return f"{where}: {column!r} is not numeric; its values are its segments: list it by name without bands"
    return None


def check_segments(spec: SpecFields) -> list[str]:
    """Each entry of ``segments`` names a declared column (a misspelt one with the column it
    resembles) once: a categorical or boolean feature, a protected column (not with a feature
    builder, whose table keeps features only; a numeric one in its ``fairness.bands``), or a numeric
    feature with its bands; no other role (an id, a date, an excluded column), and no numeric
    feature without bands (one segment per value)."""
    errors = [p for i, s in enumerate(spec.segments) if (p := _segment_problem(spec, i, s))]
    columns = spec.segment_columns
    twice = sorted({c for c in columns if columns.count(c) > 1})
    errors += [f"segments: {c!r} is listed {columns.count(c)} times; list each column once" for c in twice]
    return errors


def check_mcs_rule(spec: SpecFields) -> list[str]:
    """At most one ``mcs`` rule: the holdout's model confidence set is computed once, with its settings."""
    rules = [i for i, r in enumerate(spec.gate.rules) if r.kind == "mcs"]
    return [f"gate.rules.{rules[1]}: at most one 'mcs' rule per gate (rules {rules})"] if len(rules) > 1 else []


CHECKS: tuple[Callable[[SpecFields], list[str]], ...] = (
    check_monotonic_rule,
    check_reasons_task,
    check_candidate_names,
    check_candidates_fit_task,
    check_metrics_fit_task,
    check_baselines_exist,
    check_reference_groups,
    check_fairness_bands,
    check_time_column,
    check_sql_has_order,
    check_split_fits_task,
    check_target_not_a_column,
    check_has_features,
    check_feature_builder,
    check_positive_label,
    check_drift_settings,
    check_reserved_columns,
    check_unique_keys,
    check_scorecard,
    check_var,
    check_rating_scale,
    check_mcs_rule,
    check_backtest,
    check_segments,
)
"""Every cross-field rule, in the order their messages are reported."""


def spec_problems(spec: SpecFields) -> list[str]:
    """The messages of every check in :data:`CHECKS`, in order (empty for a consistent spec)."""
    return [message for check in CHECKS for message in check(spec)]
