"""The time axis of a spec (``time_column``, or ``time_index`` of kind ``datetime`` or ``integer``):
time points, periods, gaps and the training window, one function each, for dates and index values alike.

A ``datetime`` axis holds dates (``datetime64``); an ``integer`` axis holds index steps (trading-day
numbers, no calendar), which stay integers: never read as dates (an integer read as a date is
nanoseconds since 1970, so every period would read "1970-01-01 to 1970-01-01").
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from models.spec import ModelSpec
from tasks.source_errors import DataPreparationError


def time_point(value: date | int, kind: str):
    """A spec's time point (``out_of_time.start``, ``window.start``/``end``) comparable with the
    time column: a ``pandas.Timestamp`` for a ``datetime`` axis, an ``int`` for an ``integer`` one."""
    return int(value) if kind == "integer" else pd.Timestamp(value)


def time_values(values: pd.Series, kind: str | None) -> pd.Series:
    """The time column's values as they are compared: dates (``datetime64``) or integers."""
    if kind == "integer":
        return pd.to_numeric(values)
    return pd.to_datetime(values)


def point_text(value, kind: str | None) -> str:
    """One time value in words: ``2016-01-04`` for a date, ``480`` for an index value."""
    if kind == "integer":
        return str(int(value))
    return str(pd.Timestamp(value).date())


def period_of(values: pd.Series, kind: str | None) -> list | None:
    """``[first, last]`` of time values: ISO dates (``["2000-01-03", "2009-12-31"]``) for a
    ``datetime`` axis, integers (``[120, 480]``) for an ``integer`` one; None when no value is present.
    Shown in words by :func:`tasks.report.period_text`."""
    times = time_values(values, kind)
    if times.notna().sum() == 0:
        return None
    if kind == "integer":
        return [int(times.min()), int(times.max())]
    return [str(times.min().date()), str(times.max().date())]


def check_index_steps(df: pd.DataFrame, column: str, max_step: int) -> None:
    """Refuse an integer time index that jumps by more than ``max_step`` between consecutive rows
    (rows are missing: returns and trailing windows would span the jump).

    Raises:
        DataPreparationError: naming the column, the largest jump and its two index values.
    """
    if column not in df.columns or len(df) < 2:
        return
    index = pd.to_numeric(df[column]).dropna().sort_values().reset_index(drop=True)
    steps = index.diff()
    if not steps.notna().any():
        return
    worst = int(steps.idxmax())
    if steps[worst] > max_step:
        before, after = int(index[worst - 1]), int(index[worst])
        raise DataPreparationError(
            f"column {column!r}: the index jumps by {after - before} steps from {before} to {after} (at most "
            f"{max_step} allowed, time_index.max_step): rows are missing, and returns and trailing windows would "
            "span the jump; supply the full history",
            column=column, examples=[str(before), str(after)],
        )


def in_window(df: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """Boolean mask of the rows of ``df`` inside ``spec.window`` (both ends inclusive); every row
    without a window."""
    window = spec.window
    if window is None or spec.time_axis not in df.columns:
        return np.ones(len(df), dtype=bool)
    times = time_values(df[spec.time_axis], spec.time_kind)
    keep = pd.Series(True, index=df.index)
    if window.start is not None:
        keep &= times >= time_point(window.start, spec.time_kind)
    if window.end is not None:
        keep &= times <= time_point(window.end, spec.time_kind)
    return keep.to_numpy(dtype=bool)


def cut_window(df: pd.DataFrame, spec: ModelSpec, warm_up: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of ``spec.window`` and, before them, the last ``warm_up`` rows before its start.

    Args:
        df: rows in time order (``tasks.load.parse_declared_types``).
        warm_up: rows of history a feature builder needs before the first row of the window
            (``builder.history_rows``), so that row has its full lagged features.

    Returns:
        ``(window rows, warm-up rows)`` with fresh indexes; ``(df, empty)`` without a window.

    Raises:
        DataPreparationError: no row of ``df`` is in the window (its ends and the data's period named).
    """
    if spec.window is None:
        return df, df.iloc[0:0]
    keep = in_window(df, spec)
    if not keep.any():
        period = period_of(df[spec.time_axis], spec.time_kind) if len(df) else None
        ends = f"{spec.window.start or 'the first row'} to {spec.window.end or 'the last row'}"
        raise DataPreparationError(
            f"window {ends}: no development row is in the window (the development rows run "
            f"{'from ' + ' to '.join(str(p) for p in period) if period else 'empty'})",
            column=spec.time_axis,
        )
    first = int(np.argmax(keep))
    before = df.iloc[max(0, first - warm_up):first] if warm_up > 0 else df.iloc[0:0]
    return df[keep].reset_index(drop=True), before.reset_index(drop=True)


__all__ = ["check_index_steps", "cut_window", "in_window", "period_of", "point_text", "time_point", "time_values"]
