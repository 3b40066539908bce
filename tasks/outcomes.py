"""Late outcomes: read a file of matured outcomes (id, outcome, outcome date) and join each to
the scoring ledger row its record had at its observation date (docs/backtesting.md). Every
outcome that cannot be joined is counted by cause and reported, never dropped silently."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.errors import DataError
from models.ledger import LEDGER_COLUMNS, check_joined_rows, id_text, utc_dates
from models.parquet_parts import PartStore
from models.spec import ModelSpec

OUTCOMES = "outcomes"
OUTCOME_COLUMNS = [*LEDGER_COLUMNS, "outcome", "outcome_date", "outcomes_run"]
"""A joined outcome: its ledger row (:data:`models.ledger.LEDGER_COLUMNS`), the outcome (0/1),
its date (UTC) and the outcomes run that recorded it."""

CAUSES = ("unknown_id", "duplicated", "already_recorded", "before_score", "outside_window")
"""Why an outcome is not joined: its id was never scored; its id appears more than once in the
file (every copy is left out: which one is right cannot be told); its record already has an
outcome from an earlier file; it is dated before every score of its record; its record's latest
score before it is older than ``backtest.outcome_window`` months."""


class OutcomesError(DataError):
    """An outcomes file that cannot be used: a missing column, a value that is not an outcome or a
    date (named), or no outcome whose id the ledger knows."""


@dataclass
class OutcomeJoin:
    """The result of :func:`join_outcomes`: the joined rows (:data:`OUTCOME_COLUMNS`), the count of
    outcomes received, joined and left out per cause (:data:`CAUSES`), and up to five ids per cause."""

    joined: pd.DataFrame
    received: int
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def left_out(self) -> int:
        return sum(self.counts.values())

    def sentences(self) -> list[str]:
        """The outcomes left out, one sentence per cause with its count and example ids."""
        words = {"unknown_id": "have an id that was never scored",
                 "duplicated": "repeat an id within the file (every copy left out)",
                 "already_recorded": "belong to a record that already has an outcome",
                 "before_score": "are dated before the record was first scored",
                 "outside_window": "come later than the outcome window after the record's last score"}
        return [f"{n} outcome(s) {words[cause]} (e.g. {', '.join(self.examples.get(cause, []))})"
                for cause, n in self.counts.items() if n]

    def record(self) -> dict[str, Any]:
        return {"received": self.received, "joined": int(len(self.joined)), "left_out": dict(self.counts),
                "examples": {k: v for k, v in self.examples.items() if v}}


def _outcome_values(values: pd.Series, spec: ModelSpec, label: str, column: str) -> pd.Series:
    """0/1 outcomes from 0/1, booleans or the target's class labels. Raises OutcomesError (a
    missing outcome is named by its row: an outcome not yet known has no place in the file)."""
    if values.isna().any():
        first = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise OutcomesError(f"{label}: column {column!r}: {int(values.isna().sum())} row(s) without an outcome "
                            f"(first: row {first + 1}); leave a record out of the file until its outcome is known")
    if pd.api.types.is_bool_dtype(values):
        return values.astype(int)
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().all() and numbers.isin([0, 1]).all():
        return numbers.astype(int)
    text = values.astype(str).str.strip()
    classes = [str(c) for c in (spec.target.classes or [])] or [str(spec.target.positive)]
    known = text.isin(classes + [str(spec.target.positive)])
    if known.all():
        return (text == str(spec.target.positive)).astype(int)
    bad = values[~known].astype(str).unique()[:5].tolist()
    raise OutcomesError(f"{label}: column {column!r} holds {int((~known).sum())} value(s) that are not an outcome "
                        f"(first: {bad}); give 0/1, true/false or the target's classes {classes}")


def read_outcomes(path: str | Path, spec: ModelSpec) -> pd.DataFrame:
    """Read an outcomes file (CSV or Parquet) into ``id`` (text), ``outcome`` (0/1) and
    ``outcome_date`` (UTC), shape (n, 3), in file order.

    Columns: the spec's first id column (or ``id``); ``outcome`` or the target column; the date
    column ``backtest.outcome_date_column``. A CSV's id column is read as the spec's batches are
    (:attr:`models.spec.ModelSpec.text_columns`): as text when the id has no numeric dtype, so
    ``"0000017"`` joins the ledger's ``"0000017"``; as numbers for ``dtype: integer``.

    Raises:
        OutcomesError: unreadable file, a missing column, an empty file, a missing id, a value that
            is not an outcome or a date — naming the file and the column.
    """
    label = str(path)
    first_id = spec.id_columns[0] if spec.id_columns else None
    as_text = first_id is None or spec.columns[first_id].reads_as_text  # as the batch's CSV was read
    text = {c: str for c in (first_id, "id") if c is not None} if as_text else None  # "0000017" stays
    try:
        frame = (pd.read_parquet(path) if Path(path).suffix.lower() in (".parquet", ".pq")
                 else pd.read_csv(path, dtype=text))
    except FileNotFoundError:
        raise OutcomesError(f"{label}: no such outcomes file") from None
    except Exception as err:  # pandas/pyarrow raise many types for a bad file
        raise OutcomesError(f"{label}: cannot read the outcomes file ({type(err).__name__}: {err})") from None
    id_col = next((c for c in [*spec.id_columns[:1], "id"] if c in frame.columns), None)
    out_col = next((c for c in ("outcome", spec.target.column) if c in frame.columns), None)
    date_col = spec.backtest.outcome_date_column
    missing = [name for name, col in ((f"an id column ({spec.id_columns[:1] or ['id']})", id_col),
                                      (f"'outcome' or {spec.target.column!r}", out_col),
                                      (repr(date_col), date_col if date_col in frame.columns else None)) if col is None]
    if missing:
        raise OutcomesError(f"{label}: missing column(s) {'; '.join(missing)} (columns: {list(frame.columns)})")
    if frame.empty:
        raise OutcomesError(f"{label}: the outcomes file has no rows")
    ids = id_text(frame[id_col])
    if ids.isna().any():
        first = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise OutcomesError(f"{label}: column {id_col!r}: {int(ids.isna().sum())} row(s) without an id "
                            f"(first: row {first + 1})")
    try:
        dates = utc_dates(frame[date_col], date_col)
    except DataError as err:
        raise OutcomesError(f"{label}: {err}") from None
    outcomes = _outcome_values(frame[out_col].reset_index(drop=True), spec, label, out_col)
    if out_col == "outcome" and spec.target.column in frame.columns and spec.target.column != "outcome":
        target = _outcome_values(frame[spec.target.column].reset_index(drop=True), spec, label, spec.target.column)
        differ = target.to_numpy() != outcomes.to_numpy()
        if differ.any():
            first = int(np.flatnonzero(differ)[0])
            raise OutcomesError(f"{label}: columns 'outcome' and {spec.target.column!r} disagree in {int(differ.sum())} "
                                f"row(s) (first: row {first + 1}); keep one of them")
    return pd.DataFrame({"id": ids.astype(object), "outcome": outcomes.to_numpy(), "outcome_date": dates})


def _months_before(dates: pd.Series, months: int) -> pd.Series:
    return dates - pd.DateOffset(months=months)


def join_outcomes(ledger: pd.DataFrame, outcomes: pd.DataFrame, recorded: pd.DataFrame,
                  window_months: int, run_id: str) -> OutcomeJoin:
    """Join each outcome to the ledger row its record had at its observation date: the latest
    ledger row of the id at or before the outcome date, no older than ``window_months``.

    Args:
        ledger: :func:`models.ledger.read_ledger`. outcomes: :func:`read_outcomes`.
        recorded: outcomes already joined by earlier runs (:data:`OUTCOME_COLUMNS`).
        window_months: ``backtest.outcome_window``. run_id: this outcomes run's id.

    Returns:
        :class:`OutcomeJoin`: every outcome is either joined or counted under one cause of
        :data:`CAUSES` (``received == joined + left out``).
    """
    received = len(outcomes)
    counts = dict.fromkeys(CAUSES, 0)
    examples: dict[str, list[str]] = {c: [] for c in CAUSES}

    def leave_out(cause: str, rows: pd.DataFrame) -> None:
        counts[cause] += int(len(rows))
        examples[cause] = list(dict.fromkeys(rows["id"].astype(str)))[:5]

    duplicated = outcomes["id"].duplicated(keep=False)
    leave_out("duplicated", outcomes[duplicated])
    rest = outcomes[~duplicated]
    known_ids = set(ledger["id"].astype(str)) if not ledger.empty else set()
    unknown = ~rest["id"].isin(known_ids)
    leave_out("unknown_id", rest[unknown])
    rest = rest[~unknown]
    done = rest["id"].isin(set(recorded["id"].astype(str))) if not recorded.empty else pd.Series(False, index=rest.index)
    leave_out("already_recorded", rest[done])
    rest = rest[~done]
    if rest.empty:
        joined = pd.DataFrame(columns=OUTCOME_COLUMNS)
    else:
        scored = ledger.sort_values("as_of", kind="stable")
        merged = pd.merge_asof(rest.sort_values("outcome_date", kind="stable"), scored, left_on="outcome_date",
                               right_on="as_of", by="id", direction="backward")
        before = merged["as_of"].isna()
        leave_out("before_score", merged[before])
        merged = merged[~before]
        stale = merged["as_of"] < _months_before(merged["outcome_date"], window_months)
        leave_out("outside_window", merged[stale])
        joined = merged[~stale].assign(outcomes_run=run_id)[OUTCOME_COLUMNS].reset_index(drop=True)
    if received and counts["unknown_id"] == received - counts["duplicated"] and received > counts["duplicated"]:
        raise OutcomesError(f"none of the {counts['unknown_id']} outcome id(s) was ever scored (e.g. "
                            f"{', '.join(examples['unknown_id'])}): is this the right model's file, and were its "
                            "records scored with `finml score` (which ledgers them)?")
    return OutcomeJoin(joined, received, counts, examples)


def outcomes_store(root: str | Path, model: str) -> PartStore:
    """The model's store of joined outcomes (``registry/<model>/outcomes``)."""
    return PartStore(root, model, OUTCOMES)


def recorded_outcomes(root: str | Path, model: str) -> pd.DataFrame:
    """Every outcome joined so far (:data:`OUTCOME_COLUMNS`)."""
    return outcomes_store(root, model).read(OUTCOME_COLUMNS)


def store_outcomes(root: str | Path, model: str, joined: pd.DataFrame, run_id: str, received_at: str,
                   join: dict[str, Any] | None = None) -> list[str]:
    """Append joined outcomes, one part per receiving month (``received=YYYY-MM``). ``join``: the
    run's :meth:`OutcomeJoin.record` and file, committed in the part's manifest line, so what the
    run received and left out is kept even when it stops before its back-test record. Returns the
    parts' paths."""
    if joined.empty:
        return []
    parts = outcomes_store(root, model).append({f"received={received_at[:7]}": joined}, run_id,
                                               note={"received_at": received_at, **(join or {})})
    return [p.path for p in parts]


def backtest_rows(ledger: pd.DataFrame, recorded: pd.DataFrame) -> pd.DataFrame:
    """Every ledger row with its outcome where one was joined (NaN: not matured yet), (n, 9):
    the ledger's columns, ``outcome`` and ``outcome_date``. Rows are matched on (id, run id, as-of).
    The rows of an id scored before the score its outcome was joined to are superseded and left
    out (they would never mature)."""
    if ledger.empty:
        return ledger.assign(outcome=pd.Series(dtype=float), outcome_date=pd.Series(dtype="datetime64[ns, UTC]"))
    keys = ["id", "run_id", "as_of"]
    if recorded.empty:
        return ledger.assign(outcome=np.nan, outcome_date=pd.NaT)
    found = recorded[[*keys, "outcome", "outcome_date", "score"]].drop_duplicates(keys, keep="first")
    found = found.assign(as_of=pd.to_datetime(found["as_of"], utc=True).astype("datetime64[ns, UTC]"))
    check_joined_rows(found, ledger)
    rows = ledger.merge(found.drop(columns=["score"]), on=keys, how="left")
    # a record scored again before its outcome: the outcome belongs to the later score, and the
    # earlier rows of that id would stay unmatured for ever, so they leave the back-test
    attributed = rows.loc[rows["outcome"].notna(), ["id", "as_of"]].groupby("id")["as_of"].min()
    later = rows["id"].map(attributed)
    superseded = later.notna() & (rows["as_of"] < later)
    return rows[~superseded].reset_index(drop=True)
