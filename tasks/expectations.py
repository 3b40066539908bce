"""The expectation suite of a spec as plain definitions, and the outcomes of running it.

:func:`expectations_for` maps the spec's ``columns``, ``target`` and ``table`` sections onto
Great Expectations 1.x expectation classes (the mapping is tabled in ``docs/data-quality.md``, where
the checks run); both engines (:func:`tasks.validate.run_suite` with Great Expectations,
:func:`tasks.validate_fast.run_suite_fast` in pandas) return a :class:`ValidationReport`.
Nothing here imports Great Expectations.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from models.errors import DataError, short_examples
from models.spec import ColumnSpec, ModelSpec

TYPE_LISTS: dict[str, list[str]] = {  # the type names each spec type family accepts
    # Names Great Expectations compares with: numpy scalar type names of the dtype, or the
    # Python type name of each value for object columns (measured on GX 1.24).
    "numeric": ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                "float16", "float32", "float64", "int", "float"],
    "integer": ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "int"],
    "string": ["str", "CategoricalDtypeType"],
    "datetime": ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]"],
    "boolean": ["bool", "bool_"],
    # a categorical feature without a dtype: text or booleans (True and False are two categories)
    "categorical": ["str", "CategoricalDtypeType", "bool", "bool_"],
    # an integer column that may hold missing values: CSV readers and nullable Int64 columns give
    # floats with NaN; tasks.load.parse_declared_types refuses a value that is not a whole number
    "nullable_integer": ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "int",
                         "float16", "float32", "float64", "float"],
}


def _suite_family(col: ColumnSpec) -> str | None:
    """The :data:`TYPE_LISTS` key of a column's type expectation."""
    family = col.type_family
    return "nullable_integer" if family == "integer" and col.max_null_share > 0 else family


@dataclass(frozen=True)
class ExpectationDef:
    """One expectation of the suite, before Great Expectations is involved.

    Attributes:
        type: the GX expectation class name (``great_expectations.expectations``).
        kwargs: its arguments.
        column: the column it checks, or None for table expectations.
        severity: ``"critical"`` stops the run; ``"warning"`` is reported only.
        description: one line for reports.
    """

    type: str
    kwargs: dict[str, Any]
    column: str | None
    severity: str
    description: str


def column_expectations(name: str, col: ColumnSpec) -> list[ExpectationDef]:
    """The expectations of one column section, in suite order (presence, type, range, allowed
    values, missing share)."""
    sev = col.severity
    out = [ExpectationDef("ExpectColumnToExist", {"column": name}, name, "critical", "column is present")]
    family = _suite_family(col)
    if family:
        out.append(ExpectationDef(
            "ExpectColumnValuesToBeInTypeList", {"column": name, "type_list": TYPE_LISTS[family]},
            name, sev, f"values are {family}",
        ))
    if col.min is not None or col.max is not None:
        out.append(ExpectationDef(
            "ExpectColumnValuesToBeBetween", {"column": name, "min_value": col.min, "max_value": col.max},
            name, sev, f"values within [{col.min}, {col.max}]",
        ))
    if col.allowed is not None:
        out.append(ExpectationDef(
            "ExpectColumnValuesToBeInSet", {"column": name, "value_set": list(col.allowed)},
            name, sev, f"values in {list(col.allowed)}",
        ))
    if col.max_null_share < 1.0:
        out.append(ExpectationDef(
            "ExpectColumnValuesToNotBeNull", {"column": name, "mostly": round(1.0 - col.max_null_share, 10)},
            name, sev, f"missing share at most {col.max_null_share:g}",
        ))
    return out


SCORING_OPTIONAL_ROLES = ("protected", "excluded")
"""Roles of the columns a batch to *score* may lack: never features, so the model does not need
them; Regulation B generally forbids collecting an applicant's sex, race or national origin
outside mortgage lending (12 CFR 1002.5(b)), so a scoring feed must not be made to carry them.
Monitoring keeps requiring protected columns (its fairness measurement reads them)."""


def scoring_optional(spec: ModelSpec) -> list[str]:
    """The declared columns a batch to score may lack (:data:`SCORING_OPTIONAL_ROLES`), spec order."""
    return [c for c, col in spec.columns.items() if col.role in SCORING_OPTIONAL_ROLES]


def expectations_for(spec: ModelSpec, serving: bool = False, present: set[str] | None = None,
                     scoring: bool = False) -> list[ExpectationDef]:
    """The expectation suite of a spec, as plain definitions.

    Args:
        spec: the model spec.
        serving: build the serving form (target optional).
        present: columns of the frame to validate; in the serving form the target's
            expectations are kept only if the target is among them.
        scoring: the scoring form of the serving suite: a protected or excluded column absent
            from ``present`` gets no expectation (:func:`scoring_optional`); one present is checked.
    """
    out: list[ExpectationDef] = []
    t = spec.table
    # A serving batch may be small (the monitoring flow judges "insufficient data" itself);
    # it must not be empty: an empty frame passes row-wise expectations vacuously.
    min_rows, max_rows = (1, None) if serving else (t.min_rows, t.max_rows)
    out.append(ExpectationDef(
        "ExpectTableRowCountToBeBetween", {"min_value": min_rows, "max_value": max_rows},
        None, "critical", f"at least {min_rows} rows" + (f", at most {max_rows}" if max_rows else ""),
    ))
    optional = set(scoring_optional(spec)) - set(present or ()) if scoring else set()
    for name, col in spec.columns.items():
        if name not in optional:
            out.extend(column_expectations(name, col))
    for key in t.unique:
        out.append(ExpectationDef("ExpectColumnValuesToBeUnique", {"column": key}, key, "critical", "values are unique"))
    target = spec.target
    has_raw_target = spec.features_from is None
    if has_raw_target and (not serving or (present is not None and target.column in present)):
        name = target.column
        out.append(ExpectationDef("ExpectColumnToExist", {"column": name}, name, "critical", "target is present"))
        if not serving:
            out.append(ExpectationDef("ExpectColumnValuesToNotBeNull", {"column": name}, name, "critical", "no missing labels"))
        if target.classes is not None:
            out.append(ExpectationDef(
                "ExpectColumnValuesToBeInSet", {"column": name, "value_set": list(target.classes)},
                name, "critical", f"labels in {list(target.classes)}",
            ))
        elif spec.task == "regression":
            out.append(ExpectationDef(
                "ExpectColumnValuesToBeInTypeList", {"column": name, "type_list": TYPE_LISTS["numeric"]},
                name, "critical", "labels are numeric",
            ))
    return out


EXAMPLE_ROWS = 20
"""Unexpected rows each engine looks at for examples (Great Expectations' ``partial_unexpected_count``)."""
MAX_EXAMPLES = 5
"""Distinct bad values, and ids of bad rows, an outcome gives."""


def id_column_of(spec: ModelSpec, columns: Any) -> str | None:
    """The spec's first column with role ``id`` when ``columns`` (a frame's) hold it, else None: the
    column whose values name the rows of failed expectations."""
    return next((c for c in spec.id_columns if c in columns), None)


def first_examples(values: Any) -> list[Any]:
    """Up to :data:`MAX_EXAMPLES` distinct values (JSON-safe) among the first :data:`EXAMPLE_ROWS`
    unexpected ones, in row order: what both engines report, so their messages agree."""
    return list(dict.fromkeys(json_safe(v) for v in list(values)[:EXAMPLE_ROWS]))[:MAX_EXAMPLES]


def first_ids(ids: Any) -> list[Any]:
    """The ids (JSON-safe) of the first :data:`MAX_EXAMPLES` unexpected rows, in row order."""
    return [json_safe(v) for v in list(ids)[:MAX_EXAMPLES]]


def gx_result_format(id_column: str | None) -> dict[str, Any]:
    """The Great Expectations ``result_format`` that gives :func:`gx_unexpected_rows` its rows."""
    extra = {"unexpected_index_column_names": [id_column]} if id_column else {}
    return {"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLE_ROWS, **extra}


def gx_unexpected_rows(d: ExpectationDef, result: dict[str, Any], success: bool,
                       id_column: str | None) -> dict[str, Any]:
    """``examples``, ``ids`` and ``id_column`` of an outcome from a Great Expectations result (run with
    :func:`gx_result_format`), as :func:`first_examples` and :func:`first_ids` give them in the fast
    engine. A missing-value expectation gives no examples (each would be a missing value), only ids;
    a passed one gives neither."""
    values = [] if d.type == "ExpectColumnValuesToNotBeNull" else result.get("partial_unexpected_list") or []
    named = id_column if id_column != d.column else None
    rows = [] if success or named is None else result.get("partial_unexpected_index_list") or []
    ids = [r.get(named) for r in rows if isinstance(r, dict)]
    return {"examples": first_examples(values), "ids": first_ids(ids), "id_column": named}


@dataclass
class ExpectationOutcome:
    """The result of one expectation, in plain JSON-safe values.

    ``ids`` are the values of ``id_column`` (the spec's column with role ``id``) on the first
    unexpected rows; empty when the spec has none, or the expectation is on that column itself."""

    expectation: str
    column: str | None
    severity: str
    description: str
    success: bool
    observed: Any = None
    unexpected_count: int | None = None
    unexpected_share: float | None = None
    examples: list[Any] = field(default_factory=list)
    error: str | None = None
    ids: list[Any] = field(default_factory=list)
    id_column: str | None = None

    def __post_init__(self) -> None:
        self.examples = short_examples(self.examples)  # a 1 MB cell must not make a 1 MB report line
        self.ids = short_examples(self.ids)

    def rows_text(self) -> str:
        """``"rows with <id column> 1043, 2201"``, or "" without ids."""
        if not self.ids or not self.id_column:
            return ""
        more = " …" if self.unexpected_count and self.unexpected_count > len(self.ids) else ""
        return f"rows with {self.id_column} {', '.join(str(i) for i in self.ids)}{more}"

    def sentence(self) -> str:
        """One line naming the expectation, the column and examples of bad values."""
        where = f"column {self.column!r}" if self.column else "table"
        text = f"{self.expectation} on {where} ({self.description})"
        if self.error:
            return f"{text}: could not be evaluated: {self.error}"
        if self.expectation == "ExpectColumnToExist" and not self.success:
            return f"{text}: the column is missing from the data"
        parts = []
        if self.unexpected_count:
            share = f" ({self.unexpected_share:.1%})" if self.unexpected_share is not None else ""
            parts.append(f"{self.unexpected_count} unexpected value(s){share}")
        if self.examples:
            parts.append(f"e.g. {self.examples}")
        if self.rows_text():
            parts.append(self.rows_text())
        if self.observed is not None and not parts:
            parts.append(f"observed {self.observed}")
        return f"{text}: " + ", ".join(parts) if parts else text


@dataclass
class ValidationReport:
    """All outcomes of a suite run. ``success`` is False when any critical expectation failed."""

    suite: str
    rows: int
    outcomes: list[ExpectationOutcome]

    @property
    def critical_failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "critical"]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity != "critical"]

    @property
    def success(self) -> bool:
        return not self.critical_failures

    def warning_sentences(self) -> list[str]:
        """One line per failed non-critical expectation (a ``severity: warning`` column, values made
        missing by ``on_invalid: missing``), as :meth:`ExpectationOutcome.sentence` words it: what
        the command line prints beside a training summary, a monitoring verdict or a scoring result."""
        return [o.sentence() for o in self.warnings]

    @property
    def failed_columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for o in self.critical_failures:
            if o.column:
                seen[o.column] = None
        return list(seen)

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite, "rows": self.rows, "success": self.success,
            "evaluated": len(self.outcomes),
            "critical_failures": len(self.critical_failures), "warnings": len(self.warnings),
            "outcomes": [asdict(o) for o in self.outcomes],
        }

    def to_markdown(self) -> str:
        """A report for people: verdict, then a table of every failed expectation."""
        verdict = "PASSED" if self.success else "FAILED"
        lines = [
            f"### Data validation {verdict}: suite `{self.suite}`",
            "",
            f"{self.rows} rows; {len(self.outcomes)} expectations; "
            f"{len(self.critical_failures)} critical failure(s); {len(self.warnings)} warning(s).",
        ]
        failed = self.critical_failures + self.warnings
        if failed:
            lines += ["", "| severity | expectation | column | unexpected | examples / observed |", "|---|---|---|---|---|"]
            for o in failed:
                detail = o.error or (", ".join(map(str, o.examples)) if o.examples else str(o.observed))
                if not o.error and o.rows_text():
                    detail = (f"{detail}; " if o.examples else "") + o.rows_text()
                count = "" if o.unexpected_count is None else f"{o.unexpected_count}"
                where = o.column or "(table)"
                lines.append(f"| {o.severity} | {o.expectation} ({o.description}) | {where} | {count} | {detail} |")
        return "\n".join(lines)


class DataValidationError(DataError):
    """A critical expectation failed. The message names each expectation, column and examples."""

    def __init__(self, report: ValidationReport, source: str = "data", columns: list[str] | None = None):
        self.report = report
        failures = report.critical_failures
        missing = list(dict.fromkeys(o.column for o in failures
                                     if o.expectation == "ExpectColumnToExist" and o.column))
        others = [o for o in failures if o.column not in missing]
        head = f"{source}: data validation failed ({len(failures)} critical expectation(s)"
        lines = [head + (f", {len(failures) - len(others)} of them on missing columns):" if missing else "):")]
        if missing:  # one line for all the missing columns, leading with the likely cause
            names = ", ".join(repr(c) for c in missing[:15]) + (" …" if len(missing) > 15 else "")
            lines.append(f"  - column{'s' if len(missing) > 1 else ''} {names} "
                         f"{'are' if len(missing) > 1 else 'is'} missing{missing_column_hint(missing, columns)}")
        lines += [f"  - {o.sentence()}" for o in others]
        super().__init__("\n".join(lines))


def missing_column_hint(missing: list[str], columns: list[str] | None) -> str:
    """Why declared columns may be missing from a file with these ``columns``, or "".

    A CSV separated by ``;``, a tab or ``|`` is read as one column whose name holds the
    separator; a header in another case or with spaces matches no declared name (names are
    case-sensitive)."""
    if not columns:
        return ""
    if len(columns) == 1:
        for sep, name in ((";", "';'"), ("\t", "a tab"), ("|", "'|'")):
            if sep in str(columns[0]):
                return (f": the file was read as one column {str(columns[0])[:60]!r}…; it seems to be separated by "
                        f"{name}, and finml reads comma-separated CSV")
    folded = {str(c).strip().casefold(): str(c) for c in columns}
    near = {m: folded[m.strip().casefold()] for m in missing if m.strip().casefold() in folded}
    if near:
        pairs = ", ".join(f"{found!r} for {m!r}" for m, found in list(near.items())[:5])
        return f": the file has {pairs} (column names are case-sensitive and must match the spec exactly)"
    return f"; the file's columns: {[str(c) for c in columns[:20]]}{' …' if len(columns) > 20 else ''}"


def json_safe(value: Any) -> Any:
    """A value for a report in plain JSON: NaN as None, timestamps as ISO text, NumPy scalars as
    Python values, anything else not a JSON scalar as its text."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        try:
            return json_safe(value.item())
        except (ValueError, AttributeError):
            pass
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)



def explain_missing_columns(outcomes: list[ExpectationOutcome]) -> None:
    """Expectations on a missing or mistyped column fail with an empty result or a raw
    exception; set their ``error`` to say why instead (in place)."""
    missing = {o.column for o in outcomes if o.expectation == "ExpectColumnToExist" and not o.success}
    mistyped = {o.column for o in outcomes if o.expectation == "ExpectColumnValuesToBeInTypeList" and not o.success}
    for o in outcomes:
        if o.success or o.expectation in ("ExpectColumnToExist", "ExpectColumnValuesToBeInTypeList"):
            if o.column in missing and o.expectation == "ExpectColumnValuesToBeInTypeList":
                o.error = "column is missing"
            continue
        if o.column in missing:
            o.error = "column is missing"
        elif o.column in mistyped and o.error:
            o.error = "not evaluated: the column's values are not of the declared type"
