"""``on_invalid: missing``: a column's invalid values become missing values, counted per column.

:func:`invalid_to_missing` is the one place this happens; ``tasks.load.parse_declared_types`` calls it
last, so training, scoring and monitoring (and ``finml validate``) read the same values. What it found
rides on the returned frame (``frame.attrs``, :data:`INVALID_VALUES`) to the validation, whose report
carries it as one warning per column and rule (:func:`invalid_value_outcomes`); the suite then judges
the converted frame, so ``max_null_share`` counts the invalid values with the missing ones. The rules
and their order: ``docs/data-quality.md``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from models.errors import SHOWN_BY_CALLER
from models.spec import ColumnSpec
from tasks.expectations import ExpectationOutcome, column_expectations, first_examples, first_ids
from tasks.validate_fast import INFERRED_OK

log = logging.getLogger(__name__)

INVALID_VALUES = "finml.invalid_values"
"""Key of ``DataFrame.attrs`` holding what :func:`invalid_to_missing` turned missing (a list of
:class:`InvalidValues` as dicts); pandas copies ``attrs`` to frames derived from it."""

RULES = {"type": "ExpectColumnValuesToBeInTypeList", "range": "ExpectColumnValuesToBeBetween",
         "allowed": "ExpectColumnValuesToBeInSet"}
"""The rules :func:`invalid_to_missing` applies, in order, and the expectation each stands for: a
value is counted once, under the first rule it breaks."""

_PY_TYPES: dict[str, tuple[type, ...]] = {  # what a value of an object column may be, per type family
    "numeric": (int, float, Decimal, np.integer, np.floating),
    "integer": (int, float, Decimal, np.integer, np.floating),  # a fraction is invalid (checked apart)
    "string": (str,),
    "categorical": (str, bool, np.bool_),
    "boolean": (bool, np.bool_),
}


@dataclass(frozen=True)
class InvalidValues:
    """Values of one column that broke one rule and were made missing.

    Attributes:
        column: the column; rule: ``type``, ``range`` or ``allowed`` (:data:`RULES`).
        description: the rule in words, as its expectation says it (``values within [0.0, 40.0]``).
        count: values made missing; rows: rows of the frame they were counted in (the data as read).
        examples: up to 5 distinct invalid values, as read; ids: the id column's values on the first
            5 such rows (``id_column``: the spec's column with role ``id``, None without one).
    """

    column: str
    rule: str
    description: str
    count: int
    rows: int
    examples: list[Any] = field(default_factory=list)
    ids: list[Any] = field(default_factory=list)
    id_column: str | None = None

    def outcome(self) -> ExpectationOutcome:
        """The validation warning that reports these values (severity ``warning``, not a success)."""
        return ExpectationOutcome(
            expectation=RULES[self.rule], column=self.column, severity="warning",
            description=f"{self.description}; invalid values made missing (on_invalid: missing)", success=False,
            unexpected_count=self.count, unexpected_share=self.count / self.rows if self.rows else 0.0,
            examples=list(self.examples), ids=list(self.ids), id_column=self.id_column,
        )


def _type_invalid(s: pd.Series, family: str | None) -> pd.Series:
    """Values present that are not of the column's type family. Only an object column (mixed values:
    text left by the loader in a numeric column, a number among text) is judged value by value; a
    column wholly of another dtype is a wrong file or spec, left to the type expectation. In an
    ``integer`` column a number that is not whole is invalid too."""
    bad = pd.Series(False, index=s.index)
    if family not in _PY_TYPES:
        return bad
    present = s.notna()
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) not in INFERRED_OK[family] + ("empty",):
        allowed = _PY_TYPES[family]  # a mixed column: judged value by value
        bool_ok = family in ("categorical", "boolean")
        bad = s.map(lambda v: not (isinstance(v, allowed) and (bool_ok or not isinstance(v, (bool, np.bool_)))))
        bad = bad.astype(bool) & present
    if family == "integer":
        numbers = pd.to_numeric(s.where(~bad), errors="coerce")
        bad |= present & ~bad & numbers.notna() & (numbers % 1 != 0)
    return bad


def _range_invalid(s: pd.Series, col: ColumnSpec) -> pd.Series:
    if (col.min is None and col.max is None) or not pd.api.types.is_numeric_dtype(s.dtype):
        return pd.Series(False, index=s.index)
    low = s < col.min if col.min is not None else False
    high = s > col.max if col.max is not None else False
    return (low | high) & s.notna()


def _allowed_invalid(s: pd.Series, col: ColumnSpec) -> pd.Series:
    if col.allowed is None:
        return pd.Series(False, index=s.index)
    return s.notna() & ~s.isin(list(col.allowed))


def _descriptions(name: str, col: ColumnSpec) -> dict[str, str]:
    """Each rule's words, from the column's own expectations (one wording in reports)."""
    by_type = {d.type: d.description for d in column_expectations(name, col)}
    return {rule: by_type.get(expectation, rule) for rule, expectation in RULES.items()}


def invalid_to_missing(frame: pd.DataFrame, columns: dict[str, ColumnSpec]) -> pd.DataFrame:
    """The frame with the invalid values of every ``on_invalid: missing`` column made missing.

    For each such column present in ``frame``, in order: a value not of the declared type (see
    :func:`_type_invalid`), then a number outside ``min``/``max``, then a value not in ``allowed``
    becomes missing (NaN; a numeric column is then float64). Missing values are never invalid.
    Each (column, rule) with at least one such value is logged as a warning and listed under
    ``attrs[INVALID_VALUES]`` of the result (:class:`InvalidValues` as dicts), which
    :func:`invalid_value_outcomes` turns into validation warnings.

    Args:
        frame: rows × columns with declared types parsed (``tasks.load.parse_declared_types``, which
            leaves text it cannot read as a number in place in such a column).
        columns: the spec's ``columns`` section; its first column with role ``id`` names the rows.

    Returns:
        A new frame; ``frame`` itself when no column asks for the conversion (any earlier
        ``attrs[INVALID_VALUES]`` removed from it).
    """
    wanted = {n: c for n, c in columns.items() if c.on_invalid == "missing" and n in frame.columns}
    if not wanted:
        frame.attrs.pop(INVALID_VALUES, None)
        return frame
    out = frame.copy()
    id_column = next((n for n, c in columns.items() if c.role == "id" and n in frame.columns), None)
    found: list[InvalidValues] = []
    for name, col in wanted.items():
        s = out[name]
        words = _descriptions(name, col)
        family = col.type_family
        for rule in RULES:
            if rule == "type":
                bad = _type_invalid(s, family)
            elif rule == "range":
                bad = _range_invalid(s, col)
            else:
                bad = _allowed_invalid(s, col)
            if bad.any():
                rows = bad.index[bad.to_numpy(dtype=bool)]
                found.append(InvalidValues(
                    column=name, rule=rule, description=words[rule], count=int(bad.sum()), rows=len(out),
                    examples=first_examples(s.loc[rows]),
                    ids=first_ids(out.loc[rows, id_column]) if id_column and id_column != name else [],
                    id_column=id_column if id_column != name else None,
                ))
                s = s.mask(bad)
            if rule == "type" and family in ("numeric", "integer") and s.dtype == object:
                s = pd.to_numeric(s).astype(float)  # what is left is numbers and missing values
        out[name] = s
    for item in found:  # the validation report carries them too: a finml command prints them from there
        log.warning("%s", item.outcome().sentence(), extra={SHOWN_BY_CALLER: True})
    out.attrs[INVALID_VALUES] = [asdict(item) for item in found]
    return out


def invalid_value_outcomes(frame: pd.DataFrame) -> list[ExpectationOutcome]:
    """The validation warnings for what :func:`invalid_to_missing` made missing in ``frame``'s data
    (none for a frame it did not produce)."""
    return [InvalidValues(**item).outcome() for item in frame.attrs.get(INVALID_VALUES, [])]


__all__ = ["INVALID_VALUES", "InvalidValues", "invalid_to_missing", "invalid_value_outcomes"]
