"""The request schema of the scoring service, generated from a spec's ``columns``: one record is a
JSON object with a field per declared column, typed and bounded as the serving suite checks a
batch (:func:`tasks.expectations.column_expectations`), and a bad record is answered with the
field and the spec's rule it breaks (``docs/serving.md``, Requests).

The mapping, per column section:

- ``dtype`` / role: ``numeric`` → a JSON number (not text, not NaN or infinity), ``integer`` → a JSON
  integer (64-bit), ``string`` → text, ``boolean`` → true/false, a ``categorical`` column without ``allowed``
  → text or true/false, ``datetime`` → text in the column's ``date_format`` (ISO ``%Y-%m-%d`` by
  default), an ``id`` without a dtype → text or an integer (64-bit);
- ``min`` / ``max`` → bounds, ``allowed`` → one of the listed values;
- ``max_null_share`` above 0 → the field may be null or left out; at 0 it is required and not null;
- ``sentinels`` → those codes are taken as a missing value (then judged as null);
- ``on_invalid: missing`` → any scalar is accepted: the batch path (:func:`tasks.load.parse_declared_types`)
  turns an invalid value into a missing one and the response carries the warning (a true/false in a
  numeric column is such a value, as the text ``true`` in a file is: :func:`tasks.serving.records_frame`);
- ``severity: warning`` → the column's bounds, allowed values and missing share are not refused but
  reported in the answer's ``warnings`` (:func:`soft_warnings`), as the batch's suite only warns;
- ``protected`` and ``excluded`` columns may be left out (:func:`tasks.expectations.scoring_optional`);
  given, they are checked;
- any other field is refused (``unknown field``): a misspelt optional field would otherwise be
  scored as missing without a word.

Batch-level rules are checked per request: the ``table.unique`` columns must not repeat within it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Optional

from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from pydantic_core import PydanticCustomError
from typing_extensions import NotRequired, Required, TypedDict

from models.errors import UsageError
from models.spec import ColumnSpec, ModelSpec
from tasks.expectations import scoring_optional

__all__ = ["RULES", "RecordSchema", "ServingUnsupportedError", "check_servable", "record_problems", "record_schema",
           "soft_warnings", "unique_problems"]


class ServingUnsupportedError(UsageError):
    """The spec cannot be served record by record (a feature builder needs a series' history)."""


RULES: dict[str, str] = {
    "missing": "required", "extra_forbidden": "unknown field", "greater_than_equal": "min",
    "less_than_equal": "max", "literal_error": "allowed", "date_format": "date_format", "json_invalid": "json",
    "finite_number": "dtype", "list_type": "body", "model_type": "body", "dict_type": "body",
}
"""Pydantic error types → the rule named in a 422 answer: the spec key that sets it (``min``,
``max``, ``allowed``, ``date_format``, ``max_null_share``, ``dtype``), ``required`` (a field
left out), ``unknown field``, ``json`` (the body is not JSON), ``body`` (not an object or an array
of objects). A type error on a null input is ``max_null_share`` (the column allows no missing value);
other type errors are ``dtype``, and so is an integer beyond the 64-bit range (:data:`INT64_MIN`)."""


def check_servable(spec: ModelSpec) -> None:
    """Raise ServingUnsupportedError, naming the spec and why, when its records cannot be scored
    one by one: a ``features_from`` builder derives features from earlier rows of a series."""
    if spec.features_from is not None:
        raise ServingUnsupportedError(
            f"{spec.name}: its features are built from a series by the {spec.features_from.name!r} builder (earlier "
            "rows' history), so single records cannot be scored online; score batches with `finml score`")


def _date_checker(fmt: str):
    def check(value: Any) -> Any:
        if value is None:
            return value
        if not isinstance(value, str):
            raise PydanticCustomError("date_format", "a date must be text in the format {format}", {"format": fmt})
        try:
            datetime.strptime(value, fmt)
        except ValueError:
            raise PydanticCustomError("date_format", "{value} is not a date in the format {format}",
                                      {"format": fmt, "value": repr(value)}) from None
        return value
    return check


def _sentinel_mapper(sentinels: list):
    codes = list(sentinels)

    def to_missing(value: Any) -> Any:
        for code in codes:  # True == 1 in Python: a boolean only matches a boolean code
            if isinstance(value, bool) == isinstance(code, bool) and value == code:
                return None
        return value
    return to_missing


def _base_type(col: ColumnSpec):
    """The field's type with its bounds (see the module's mapping)."""
    soft = col.severity == "warning"  # the batch only warns: its rules become warnings (soft_warnings)
    if col.on_invalid == "missing" or (soft and col.allowed is not None):
        return bool | int | float | str
    if col.allowed is not None:
        return Literal[tuple(col.allowed)]
    bounds = {} if soft else {k: v for k, v in (("ge", col.min), ("le", col.max)) if v is not None}
    family = col.type_family
    if family == "numeric":
        return Annotated[float, Field(strict=True, allow_inf_nan=False, **bounds)]
    if family == "integer":
        return Annotated[int, Field(strict=True, **_int64_bounds(bounds))]
    if family == "boolean":
        return Annotated[bool, Field(strict=True)]
    if family == "string":
        return Annotated[str, Field(strict=True)]
    if family == "categorical":
        return Annotated[str, Field(strict=True)] | Annotated[bool, Field(strict=True)]
    if family == "datetime":
        return Annotated[str, Field(strict=True), BeforeValidator(_date_checker(col.date_format or "%Y-%m-%d"))]
    return Annotated[str, Field(strict=True)] | Annotated[int, Field(strict=True, **_int64_bounds({}))]  # an id without a dtype


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""The integers a column can hold (NumPy int64): a JSON integer beyond them would become a float
(losing digits: 2**53 + 1 reads as 2**53) or overflow, and two ids could fall on one."""


def _int64_bounds(bounds: dict) -> dict:
    """``bounds`` (``ge``/``le`` from the spec) narrowed to :data:`INT64_MIN` .. :data:`INT64_MAX`."""
    return {"ge": max(bounds.get("ge", INT64_MIN), INT64_MIN), "le": min(bounds.get("le", INT64_MAX), INT64_MAX)}


def _field(col: ColumnSpec, optional: bool):
    kind = _base_type(col)
    nullable = col.max_null_share > 0 or col.severity == "warning"
    if nullable:
        kind = Optional[kind]
    if col.sentinels:
        kind = Annotated[kind, BeforeValidator(_sentinel_mapper(col.sentinels))]
    description = {"description": col.reason} if col.reason and col.role in ("numeric", "categorical") else {}
    if description:
        kind = Annotated[kind, Field(**description)]
    return NotRequired[kind] if nullable or optional else Required[kind]


@dataclass(frozen=True)
class RecordSchema:
    """The pydantic validators of one served spec's records (plain dicts come out).

    Attributes:
        columns: the fields a record may carry, spec order. nullable: those that may be null or left out.
        one: validates a JSON object; many: a JSON array of objects.
        json_schema: the record's JSON schema (the OpenAPI request body).
    """

    model: str
    columns: tuple[str, ...]
    nullable: frozenset[str]
    unique: tuple[str, ...]
    one: TypeAdapter
    many: TypeAdapter

    @property
    def json_schema(self) -> dict[str, Any]:
        return self.one.json_schema()

    def validate_body(self, body: bytes) -> list[dict[str, Any]]:
        """The records of a request body (a JSON object, or an array of them), validated.

        Returns:
            One dict per record (only the fields given; numbers as float or int, as declared).

        Raises:
            pydantic.ValidationError: every problem, located by record index (arrays) and field;
            :func:`record_problems` turns it into the 422 answer.
        """
        first = body.lstrip()[:1]
        if first == b"[":
            return self.many.validate_json(body)
        return [self.one.validate_json(body)]


def record_schema(spec: ModelSpec) -> RecordSchema:
    """Build the request schema of a spec (the mapping is in this module's docstring).

    Raises:
        ServingUnsupportedError: a spec with a feature builder (:func:`check_servable`).
    """
    check_servable(spec)
    optional = set(scoring_optional(spec))
    fields = {name: _field(col, name in optional) for name, col in spec.columns.items()}
    record = with_config(ConfigDict(extra="forbid", title=f"{spec.name} record"))(
        TypedDict(f"{spec.name}_record", fields))  # type: ignore[operator]
    nullable = frozenset(n for n, c in spec.columns.items()
                         if c.max_null_share > 0 or c.severity == "warning" or n in optional)
    return RecordSchema(spec.name, tuple(spec.columns), nullable, tuple(spec.table.unique), TypeAdapter(record),
                        TypeAdapter(list[record]))


def _beyond_int64(error: dict[str, Any]) -> bool:
    limit = (error.get("ctx") or {}).get("ge" if error["type"] == "greater_than_equal" else "le")
    return error["type"] in ("greater_than_equal", "less_than_equal") and limit in (INT64_MIN, INT64_MAX)


def _rule(error: dict[str, Any]) -> str:
    kind = error["type"]
    if _beyond_int64(error):
        return "dtype"
    if kind in RULES:
        return RULES[kind]
    if error.get("input", ...) is None:
        return "max_null_share"
    return "dtype"


def record_problems(err: ValidationError, many: bool) -> list[dict[str, Any]]:
    """The 422 answer's ``detail``: one entry per problem, ``{"record": index or None, "field": name
    or None, "rule": RULES' name, "message": pydantic's text, with the spec's bound, "input": the
    value given (absent for a missing field)}``, in body order."""
    out: list[dict[str, Any]] = []
    seen: dict[tuple, int] = {}
    for e in err.errors(include_url=False):
        loc = list(e["loc"])
        if e["type"] == "json_invalid":
            record = None
        elif many:
            record = loc.pop(0) if loc and isinstance(loc[0], int) else None
        else:
            record = 0
        fields = [p for p in loc if isinstance(p, str)]
        rule = _rule(e)
        message = ("a missing value: the column allows none (max_null_share 0)" if rule == "max_null_share"
                   else f"an integer beyond the 64-bit range {INT64_MIN} .. {INT64_MAX}; send such an id as text"
                   if _beyond_int64(e) else e["msg"])
        entry = {"record": record, "field": fields[0] if fields else None, "rule": rule, "message": message}
        if e["type"] not in ("missing", "json_invalid") and _jsonable(e.get("input")):
            entry["input"] = e.get("input")
        key = (record, entry["field"], rule)
        if key in seen:  # a union's branches (an id: text or integer) each report the value: one entry
            if _beyond_int64(e):
                out[seen[key]] = entry
            continue
        seen[key] = len(out)
        out.append(entry)
    return out


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def unique_problems(schema: RecordSchema, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records that repeat a value of a ``table.unique`` column within the request (the ledger needs one
    row per id): the same entries as :func:`record_problems`, rule ``unique``."""
    out = []
    for column in schema.unique:
        given = [r.get(column) for r in records]
        present = [v for v in given if v is not None]
        if len(set(present)) == len(present):  # no repeat: the usual case, without the per-record loop
            continue
        seen: dict[Any, int] = {}
        for i, r in enumerate(records):
            value = r.get(column)
            if value is None:
                continue
            if value in seen:
                out.append({"record": i, "field": column, "rule": "unique", "input": value,
                            "message": f"repeats record {seen[value]}'s {column} (table.unique)"})
            else:
                seen[value] = i
    return out


def soft_warnings(spec: ModelSpec, records: list[dict[str, Any]]) -> list[str]:
    """What the serving suite would only warn about (columns with ``severity: warning``): values
    outside ``min``/``max``, not in ``allowed``, or missing where ``max_null_share`` is 0; one line per
    column and rule, naming the records (indexes). Shape: records as validated → lines."""
    out = []
    for name, col in spec.columns.items():
        if col.severity != "warning" or col.on_invalid == "missing":
            continue
        values = [(i, r.get(name)) for i, r in enumerate(records)]
        checks = []
        if col.max_null_share == 0:
            checks.append(("missing (max_null_share 0)", [i for i, v in values if v is None]))
        if col.min is not None or col.max is not None:
            low, high = (-math.inf if col.min is None else col.min), (math.inf if col.max is None else col.max)
            checks.append((f"outside [{col.min}, {col.max}]",
                           [i for i, v in values if isinstance(v, (int, float)) and not low <= v <= high]))
        if col.allowed is not None:
            checks.append((f"not in {list(col.allowed)}", [i for i, v in values if v is not None and v not in col.allowed]))
        out += [f"{name}: {len(bad)} value(s) {rule} (severity: warning), records {bad[:10]}" for rule, bad in checks if bad]
    return out
