"""Recording a scoring run in the model's ledger (:mod:`models.ledger`): which rows were scored,
as of when, by which version, with which score and grade."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from models.ledger import append_ledger, ledger_frame, utc_dates
from models.spec import ModelSpec
from tasks.step import step


def unledgered_reason(spec: ModelSpec, table: pd.DataFrame) -> str | None:
    """Why a batch cannot be ledgered (None: it can): the spec declares no ``id`` column, the
    batch lacks it, or ids are missing or repeated (an outcome could not be told apart)."""
    if not spec.id_columns:
        return (f"{spec.name}: the batch is not ledgered: the spec declares no id column (role: id), so late "
                "outcomes could not be joined to its rows")
    column = spec.id_columns[0]
    if column not in table.columns:
        return f"{spec.name}: the batch is not ledgered: it has no id column {column!r}"
    missing = int(table[column].isna().sum())
    if missing:
        return f"{spec.name}: the batch is not ledgered: {missing} row(s) have no {column!r}"
    repeated = int(table[column].duplicated().sum())
    if repeated:
        return (f"{spec.name}: the batch is not ledgered: {repeated} row(s) repeat an id of column {column!r} "
                "(each scored record needs its own id)")
    return None


def batch_as_of(spec: ModelSpec, table: pd.DataFrame, as_of: str | None, scored_at: str) -> pd.Series | pd.Timestamp:
    """The as-of date of each row: the spec's ``backtest.as_of`` column, else ``as_of`` (a date
    given to the run), else the scoring time. Raises LedgerInputError naming the column for a
    missing or unparseable date (``as_of`` is checked by :func:`check_as_of` before)."""
    column = spec.backtest.as_of
    if column is not None and column in table.columns:
        dates = utc_dates(table[column], column).set_axis(table.index)
        latest = _latest_as_of(scored_at)
        if (dates > latest).any():
            from models.ledger import LedgerInputError

            late = dates[dates > latest]
            raise LedgerInputError(f"column {column!r}: {len(late)} row(s) dated after the scoring time {scored_at} "
                                   f"(first: {late.iloc[0].date()}): a record cannot be scored before its as-of date")
        return dates
    if as_of is not None:
        return utc_dates([as_of], "as_of").iloc[0]
    return pd.Timestamp(scored_at)


AS_OF_SLACK = pd.Timedelta(days=1)
"""How far an as-of date may lie after the scoring time (UTC): a day, for a date written in a
time zone ahead of UTC."""


def _latest_as_of(scored_at) -> pd.Timestamp:
    when = pd.Timestamp(scored_at)
    return (when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")) + AS_OF_SLACK


def check_as_of(value: str | None) -> None:
    """Check an ``as_of`` parameter before any work. Raises UsageError naming it and the value."""
    from models.errors import UsageError
    from models.ledger import SUPPORTED_DATES, LedgerInputError, iso_out_of_range

    if value is None:
        return
    try:
        date = utc_dates([value], "as_of").iloc[0]
    except LedgerInputError:
        if iso_out_of_range(value):
            raise UsageError(f"as_of {value!r} is a date outside {SUPPORTED_DATES}") from None
        raise UsageError(f"as_of {value!r} is not a date: give an ISO date such as 2026-03-31") from None
    if date > _latest_as_of(pd.Timestamp.now(tz="UTC")):
        raise UsageError(f"as_of {value!r} is in the future: the as-of date of a scored record is at or before "
                         "its scoring time")


@step("write-ledger")
def ledger_scored_rows(spec: ModelSpec, registry_root: Path, table: pd.DataFrame, scores, version: int,
                       run_id: str, scored_at: str, as_of: str | None = None) -> dict[str, Any]:
    """Append the scored rows of a batch to the model's ledger.

    Args:
        table: the batch's modelling table (rows as scored, id and as-of columns kept), (n, ·).
        scores: the scores, (n,). run_id: the scoring run's id. as_of: an as-of date for every
            row when the spec names no ``backtest.as_of`` column (``finml score --as-of``).

    Returns:
        ``{"rows": n ledgered (0 when not ledgered), "parts": [paths], "reason": why not or None}``.

    Raises:
        LedgerInputError: an as-of date missing or not a date (naming the column); RegistryError.
    """
    reason = unledgered_reason(spec, table)
    if reason is not None:
        return {"rows": 0, "parts": [], "reason": reason}
    grades = None
    if spec.rating_scale is not None:
        from tasks.scoring import grade_names

        grades = list(grade_names(spec.rating_scale, pd.Series(scores).to_numpy()))
    dates = batch_as_of(spec, table, as_of, scored_at)
    dates = dates.reset_index(drop=True) if isinstance(dates, pd.Series) else dates
    segments = table[[c for c in spec.segment_columns if c in table.columns]] if spec.segments else None
    frame = ledger_frame(table[spec.id_columns[0]], dates, version, scores, grades, run_id, scored_at, segments)
    parts = append_ledger(registry_root, spec.name, frame, run_id)
    return {"rows": int(len(frame)), "parts": [p.path for p in parts], "reason": None}

