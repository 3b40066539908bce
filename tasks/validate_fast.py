"""The fast validation engine: the suite's expectation definitions evaluated with vectorised
pandas, for high-volume scoring where Great Expectations' per-expectation passes would cost more
than the model. Verdicts and counts agree with Great Expectations 1.x (tested on real and broken
data in ``tests/unit/test_validate.py``).
"""

from __future__ import annotations

import pandas as pd

from tasks.expectations import (
    EXAMPLE_ROWS,
    TYPE_LISTS,
    ExpectationDef,
    ExpectationOutcome,
    ValidationReport,
    explain_missing_columns,
    first_examples,
    first_ids,
)

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "numeric": (int, float),
    "integer": (int,),
    "string": (str,),
    "datetime": (pd.Timestamp,),
    "boolean": (bool,),
    "categorical": (str, bool),
    "nullable_integer": (int, float),
}


INFERRED_OK: dict[str, tuple[str, ...]] = {
    # pandas.api.types.infer_dtype results that pass each family without a per-value check
    "numeric": ("integer", "floating", "mixed-integer-float", "decimal"),
    "integer": ("integer",),
    "string": ("string",),
    "datetime": ("datetime64", "datetime"),
    "boolean": ("boolean",),
    "categorical": ("string", "boolean"),
    "nullable_integer": ("integer", "floating", "mixed-integer-float"),
}


def _dtype_matches(series: pd.Series, family: str) -> bool:
    api = pd.api.types
    dtype = series.dtype
    if family == "numeric":
        return api.is_numeric_dtype(dtype) and not api.is_bool_dtype(dtype)
    if family == "integer":
        return api.is_integer_dtype(dtype)
    if family == "string":
        return isinstance(dtype, pd.CategoricalDtype) or api.is_string_dtype(dtype) and dtype != object
    if family == "datetime":
        return api.is_datetime64_dtype(dtype)
    if family == "boolean":
        return api.is_bool_dtype(dtype)
    if family == "categorical":
        return _dtype_matches(series, "string") or api.is_bool_dtype(dtype)
    if family == "nullable_integer":
        return _dtype_matches(series, "numeric")
    return False


def _base(d: ExpectationDef, ids: pd.Series | None) -> dict:
    """The outcome fields every expectation of ``d`` shares; ``ids`` only where they name other rows."""
    id_column = None if ids is None or ids.name == d.column else ids.name
    return dict(expectation=d.type, column=d.column, severity=d.severity, description=d.description,
                id_column=id_column)


def _row_ids(base: dict, ids: pd.Series | None, rows: pd.Index) -> list:
    """The ids of the first unexpected ``rows`` (index labels, in row order)."""
    if base["id_column"] is None:
        return []
    return first_ids(ids.loc[rows[:EXAMPLE_ROWS]])


def _rows(mask: pd.Series) -> pd.Index:
    return mask.index[mask.to_numpy(dtype=bool)]


def _type_outcome(d: ExpectationDef, s: pd.Series, family: str, ids: pd.Series | None = None) -> ExpectationOutcome:
    base = _base(d, ids)
    if _dtype_matches(s, family):
        return ExpectationOutcome(success=True, observed=str(s.dtype), **base)
    if s.dtype != object:
        return ExpectationOutcome(success=False, observed=str(s.dtype), **base)
    # One Cython pass tells the common case (an object column of plain strings, numbers...)
    # apart; only a mixed column needs the per-value check that finds the examples.
    inferred = pd.api.types.infer_dtype(s, skipna=True)
    if inferred in INFERRED_OK[family] or inferred == "empty":
        return ExpectationOutcome(success=True, observed=f"object ({inferred})", **base)
    values = s[s.notna()]
    allowed = _PY_TYPES[family]
    bool_ok = family in ("boolean", "categorical")
    ok = values.map(lambda v: isinstance(v, allowed) and (bool_ok or not isinstance(v, bool)))
    bad = values[~ok.to_numpy(dtype=bool)]
    return ExpectationOutcome(
        success=bad.empty, unexpected_count=int(len(bad)),
        unexpected_share=float(len(bad) / len(s)) if len(s) else 0.0,
        examples=first_examples(bad.head(EXAMPLE_ROWS).tolist()), ids=_row_ids(base, ids, bad.index), **base,
    )


def _mask_outcome(d: ExpectationDef, s: pd.Series, bad: pd.Series, ids: pd.Series | None = None) -> ExpectationOutcome:
    count = int(bad.sum())
    base = _base(d, ids)
    return ExpectationOutcome(
        success=count == 0, unexpected_count=count, unexpected_share=count / len(s) if len(s) else 0.0,
        examples=first_examples(s[bad].head(EXAMPLE_ROWS).tolist()),
        ids=_row_ids(base, ids, _rows(bad)), **base,
    )


def _fast_one(df: pd.DataFrame, d: ExpectationDef, present: dict[str, pd.Series] | None = None,
              ids: pd.Series | None = None) -> ExpectationOutcome:
    """One expectation on ``df``. ``present`` caches each column's not-missing mask across the
    suite: several expectations of a column need it, and on an object column of 1,000,000
    strings each ``notna`` costs about 20 ms. ``ids``: the id column's values, naming bad rows."""
    base = _base(d, ids)
    kw = d.kwargs
    if d.type == "ExpectTableRowCountToBeBetween":
        n = len(df)
        ok = (kw["min_value"] is None or n >= kw["min_value"]) and (kw["max_value"] is None or n <= kw["max_value"])
        return ExpectationOutcome(success=ok, observed=n, **base)
    if d.type == "ExpectColumnToExist":
        return ExpectationOutcome(success=d.column in df.columns, **base)
    if d.column not in df.columns:
        return ExpectationOutcome(success=False, error="column is missing", **base)
    s = df[d.column]
    present = {} if present is None else present
    if d.column not in present:
        present[d.column] = s.notna()
    notna = present[d.column]
    if d.type == "ExpectColumnValuesToBeInTypeList":
        family = next(f for f, names in TYPE_LISTS.items() if names == kw["type_list"])
        return _type_outcome(d, s, family, ids)
    if d.type == "ExpectColumnValuesToBeBetween":
        if not (pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_datetime64_dtype(s.dtype)):
            return ExpectationOutcome(success=False, error="not evaluated: the column's values are not of the declared type",
                                      **base)
        lo, hi = kw["min_value"], kw["max_value"]
        bad = pd.Series(False, index=s.index)
        try:
            if lo is not None:
                bad |= s < lo
            if hi is not None:
                bad |= s > hi
        except TypeError:  # dates against numeric bounds, or numbers against dates
            return ExpectationOutcome(success=False, error=f"not evaluated: the column's values ({s.dtype}) cannot be "
                                      "compared with the bounds", **base)
        return _mask_outcome(d, s, bad & notna, ids)
    if d.type == "ExpectColumnValuesToBeInSet":
        return _mask_outcome(d, s, notna & ~s.isin(kw["value_set"]), ids)
    if d.type == "ExpectColumnValuesToNotBeNull":
        count = int(len(s) - notna.sum())
        share = count / len(s) if len(s) else 0.0
        mostly = kw.get("mostly", 1.0)
        ok = (1.0 - share) >= mostly - 1e-12
        return ExpectationOutcome(success=ok, unexpected_count=count, unexpected_share=share,
                                  ids=[] if ok else _row_ids(base, ids, _rows(~notna)), **base)
    if d.type == "ExpectColumnValuesToBeUnique":
        values = s[notna]
        return _mask_outcome(d, values, values.duplicated(keep=False), ids)
    raise ValueError(f"the fast engine does not implement {d.type}")


def run_suite_fast(df: pd.DataFrame, definitions: list[ExpectationDef], suite_name: str,
                   id_column: str | None = None) -> ValidationReport:
    """Evaluate the same expectation definitions with vectorised pandas, in one pass each.

    ``id_column`` (a column of ``df``, the spec's role ``id``) names the first bad rows of each
    failed expectation, as Great Expectations' ``unexpected_index_column_names`` does.

    Semantics follow Great Expectations 1.x (missing values are ignored by value
    expectations; ``mostly`` is the required share of non-missing values; a duplicated key
    counts every row of its group); ``tests/unit/test_validate.py`` checks both engines give
    the same verdicts and counts on real and broken data. About 0.2 s for 1M rows and 60
    expectations, against 2-7 s for GX.
    """
    present: dict[str, pd.Series] = {}
    ids = df[id_column] if id_column is not None and id_column in df.columns else None
    outcomes = [_fast_one(df, d, present, ids) for d in definitions]
    explain_missing_columns(outcomes)
    return ValidationReport(suite=suite_name, rows=len(df), outcomes=outcomes)


__all__ = ["run_suite_fast"]
