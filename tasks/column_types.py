"""Column representations after reading: a pandas extension dtype as the NumPy-backed column
pandas reads from CSV, the whole-number check of an integer column stored as floats, and the
refusal of numbers in a ``string`` column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.errors import short_examples
from tasks.source_errors import DataPreparationError


def numpy_backed(values: pd.Series) -> pd.Series:
    """A column with a pandas extension dtype as the NumPy-backed column pandas reads from CSV.

    Parquet written from ``convert_dtypes()``, ``dtype_backend="pyarrow"`` or ``category``
    columns comes back as ``Int64``, ``string``, ``boolean``, ``category`` or ``int64[pyarrow]``;
    every step after loading (both validation engines, the pipelines, PSI) then sees the same
    values whatever the file format: nullable integers and floats become ``int64`` (no missing
    value) or ``float64`` with NaN, strings become ``object`` with NaN for missing, booleans
    ``bool`` (``object`` when some are missing), categoricals the type of their categories,
    Arrow timestamps ``datetime64``. Other columns are returned as they are.
    """
    dtype = values.dtype
    if not isinstance(dtype, pd.api.extensions.ExtensionDtype) or isinstance(dtype, pd.DatetimeTZDtype):
        return values
    if isinstance(dtype, pd.CategoricalDtype):
        return numpy_backed(values.astype(dtype.categories.dtype))
    missing = values.isna().to_numpy()
    kind = getattr(getattr(dtype, "numpy_dtype", None), "kind", None)
    if pd.api.types.is_bool_dtype(dtype):
        if not missing.any():
            return pd.Series(values.to_numpy(dtype=bool), index=values.index, name=values.name)
        return pd.Series(np.where(missing, np.nan, values.astype(object)), index=values.index, name=values.name,
                         dtype=object)
    if kind in ("i", "u") and not missing.any():
        return pd.Series(values.to_numpy(dtype="int64"), index=values.index, name=values.name)
    if kind in ("i", "u", "f"):
        return pd.Series(values.to_numpy(dtype="float64", na_value=np.nan), index=values.index, name=values.name)
    if kind == "M":
        return pd.Series(values.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT")),
                         index=values.index, name=values.name)
    if pd.api.types.is_string_dtype(dtype) or kind == "O":
        out = values.astype(object).to_numpy()
        out[missing] = np.nan
        return pd.Series(out, index=values.index, name=values.name, dtype=object)
    return values


def check_whole_numbers(name: str, values: pd.Series) -> None:
    """An ``integer`` column that may hold missing values arrives as floats with NaN (CSV readers,
    :func:`numpy_backed` for ``Int64``); the suite then accepts floats, so every value present
    must be a finite whole number.

    Raises:
        DataPreparationError: naming the column, with examples of the other values.
    """
    if not pd.api.types.is_float_dtype(values.dtype):
        return
    x = values.to_numpy(dtype="float64")
    bad = ~np.isnan(x) & ~(np.isfinite(x) & (x == np.floor(x)))
    if bad.any():
        examples = short_examples(pd.unique(x[bad]).tolist())
        raise DataPreparationError(f"column {name!r}: declared integer but {int(bad.sum())} value(s) are not whole "
                                   f"numbers, e.g. {examples}", column=name, examples=examples)


def refuse_numbers_as_text(name: str, values: pd.Series) -> None:
    """A ``string`` column a Parquet file or a database stores as numbers (a CSV's is read as
    text): refused rather than turned into text, since ``17`` may have been ``"0000017"``.
    Raises DataPreparationError naming the column, with examples."""
    if values.dtype.kind not in "iuf" or not values.notna().any():
        return
    examples = short_examples(v.item() for v in values.dropna().unique()[:5])
    raise DataPreparationError(
        f"column {name!r}: declared dtype string but the source stores numbers ({values.dtype}), e.g. {examples}: "
        "any leading zeros are lost already; store the column as text (a Parquet string column, a SQL text column "
        "or CAST(... AS VARCHAR)), or declare it dtype integer (an id: or give it no dtype)",
        column=name, examples=examples,
    )
