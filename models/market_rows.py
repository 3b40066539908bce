"""Row-level rules of the market feature builders (:mod:`models.features`): rows in time order,
one row per time value, and the daily log returns the features and labels are computed from.

Each function takes the raw frame (and the builder's parameters, :class:`models.features.MarketParams`)
and either returns what the builder needs or raises :class:`models.errors.MarketDataError` naming the
column. The rules, and why: ``docs/features.md``.

- Out-of-order rows are sorted by the time column, never refused: what was found rides on the
  sorted frame (``frame.attrs[ROW_ORDER]``, as :mod:`tasks.invalid_values` does for invalid values)
  to the validation report, which carries it as a warning (``tasks.validate.validate_frame``), and is
  logged.
- A repeated time value is refused, whether or not the spec declares ``table.unique``: with prices,
  the second of two rows of one date gives a zero return (``ln(P/P)``) that nothing else notices, and
  with returns, one day's return would count twice in the trailing windows.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from models.errors import SHOWN_BY_CALLER, MarketDataError, short_examples

if TYPE_CHECKING:  # pandas is imported where the rows are read: reading a spec needs neither
    import pandas as pd

log = logging.getLogger(__name__)

ROW_ORDER = "finml.row_order"
"""Key of ``DataFrame.attrs`` holding what :func:`order_by_time` sorted: a dict with ``column``, ``rows``
(rows of the frame), ``out_of_order`` (rows earlier than the row before them in the file) and
``examples`` (the first such rows' time values, as text). Pandas copies ``attrs`` to derived frames."""


def show_time(value: Any) -> str:
    """A time value as text: a date without its midnight time (``2020-01-03``), else ``str(value)``."""
    import pandas as pd

    if isinstance(value, pd.Timestamp) and value == value.normalize():
        return str(value.date())
    return str(value)


def order_sentence(note: dict) -> str:
    """The warning, in words, for a :data:`ROW_ORDER` note."""
    return (f"column {note['column']!r}: {note['out_of_order']} of {note['rows']} row(s) are earlier than the row "
            f"before them (first: {note['examples']}); the rows were sorted by {note['column']!r} before the market "
            "features were built")


def order_by_time(frame: pd.DataFrame, time_column: str) -> pd.DataFrame:
    """The rows sorted by ``time_column`` (stable: rows of one time value keep their file order;
    missing times last), with a fresh RangeIndex.

    Rows out of order are counted as the rows whose time is earlier than that of the row before them
    in the file (missing times skipped): a file in reverse order has ``rows - 1`` of them, one row moved
    from its place has one. When there are any, the result's ``attrs[ROW_ORDER]`` records them (see
    :data:`ROW_ORDER`) and a warning is logged (:func:`order_sentence`); an already-sorted frame keeps
    whatever note it carries, so sorting twice does not lose the first count.

    Args:
        frame: raw rows × columns; ``time_column`` parsed (datetime64 or integer).
    """
    times = frame[time_column]
    present = times[times.notna()]
    earlier = present.lt(present.shift(1)) & present.shift(1).notna()
    out = frame.sort_values(time_column, kind="stable").reset_index(drop=True)
    out.attrs = dict(frame.attrs)
    if earlier.any():
        note = {"column": time_column, "rows": len(frame), "out_of_order": int(earlier.sum()),
                "examples": [show_time(v) for v in short_examples(present[earlier].tolist())]}
        out.attrs[ROW_ORDER] = note
        log.warning(order_sentence(note), extra={SHOWN_BY_CALLER: True})  # the validation report carries it
    return out


def refuse_repeated_times(frame: pd.DataFrame, time_column: str) -> None:
    """Raise when a time value appears on more than one row (missing times are not compared).

    Raises:
        MarketDataError: naming ``time_column``, how many values repeat and on how many rows, and
            the first repeated values (in time order when ``frame`` is sorted).
    """
    times = frame[time_column]
    repeated = times.duplicated(keep=False) & times.notna()
    if not repeated.any():
        return
    values = times[repeated].drop_duplicates()
    examples = [show_time(v) for v in short_examples(values.tolist())]
    raise MarketDataError(
        f"column {time_column!r}: {len(values)} time value(s) appear on more than one row ({int(repeated.sum())} rows "
        f"in all), first: {examples}; a market feature builder needs one row per time value (with prices a repeated "
        f"date becomes a zero return, with returns one day counts twice). Remove the repeated rows; declaring "
        f"table.unique: [{time_column}] makes validation report them too",
        column=time_column, examples=examples, count=int(repeated.sum()),
    )


def daily_log_returns(frame: pd.DataFrame, params: Any, time_column: str | None = None) -> pd.Series:
    """Daily log returns ``r_t`` of rows sorted by time, as floats (index of ``frame``); ``params``
    are the builder's (:class:`models.features.MarketParams`, not imported here: it imports this).

    - ``price_column``: ``r_t = ln(P_t / P_{t-1})``; the first row's return is missing.
    - ``return_column`` with ``return_kind: log``: the column itself, the return from the previous
      close to this row's close.
    - ``return_column`` with ``return_kind: simple`` (``R_t = P_t / P_{t-1} - 1``):
      ``r_t = log1p(R_t) = ln(1 + R_t)``, the same log return (``numpy.log1p``, exact for small ``R``).

    Raises:
        MarketDataError: a missing price or return (every later rolling feature and label would be
            missing, and the pipeline would impute them silently), naming the column, the count and
            the first ``time_column`` values; a price that is not positive, or a simple return of -1
            or below (a price falling to zero or below: no log return exists), naming the column,
            count and examples.
    """
    import numpy as np

    column = params.price_column if params.price_column is not None else params.return_column
    values = frame[column].astype(float)
    missing = values.isna()
    if missing.any():
        where = (short_examples([show_time(t) for t in frame.loc[missing, time_column]]) if time_column
                 else short_examples([int(i) + 1 for i in np.flatnonzero(missing.to_numpy())]))
        raise MarketDataError(
            f"column {column!r}: {int(missing.sum())} missing value(s) ({'at ' + time_column if time_column else 'rows'} "
            f"{where}); the market builders need a {'price' if params.price_column else 'return'} on every row, "
            "consecutive trading days: fill it, or drop the row (and check time_index.max_step)",
            column=column, examples=where, count=int(missing.sum()))
    if params.price_column is not None:
        price = values
        _refuse(price <= 0, price, column, "prices must be positive to take log returns")
        return np.log(price).diff()
    r = values
    if params.return_kind == "simple":
        _refuse(r <= -1, r, column, "simple returns must be above -1 (return_kind: simple) to take log1p")
        return np.log1p(r)
    return r


def positive_volumes(frame: pd.DataFrame, params: Any) -> pd.Series:
    """The volume column as floats; raises :class:`MarketDataError` when a volume is not positive."""
    column = params.volume_column
    vol = frame[column].astype(float)
    _refuse(vol <= 0, vol, column, "volumes must be positive to take logs")
    return vol


def _refuse(bad: pd.Series, values: pd.Series, column: str, rule: str) -> None:
    if bad.any():
        examples = short_examples(values[bad].drop_duplicates().tolist())
        raise MarketDataError(f"column {column!r}: {rule}; {int(bad.sum())} value(s) are not, e.g. {examples}",
                              column=column, examples=examples, count=int(bad.sum()))


__all__ = ["ROW_ORDER", "daily_log_returns", "order_by_time", "order_sentence", "positive_volumes",
           "refuse_repeated_times", "show_time"]
