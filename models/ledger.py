"""The scoring ledger: one row per scored record (id, as-of date, version, score, grade, run id,
scoring time) in ``registry/<model>/ledger/month=YYYY-MM/``, appended by every scoring run and
read by the back-test to join late outcomes (docs/backtesting.md). Storage and integrity:
:class:`models.parquet_parts.PartStore`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from models.errors import DataError
from models.parquet_parts import Part, PartStore

LEDGER = "ledger"
LEDGER_COLUMNS = ["id", "as_of", "model_version", "score", "grade", "run_id", "scored_at"]
"""The ledger's columns: ``id`` (text), ``as_of`` and ``scored_at`` (UTC timestamps),
``model_version`` (int), ``score`` (the PD or forecast, float), ``grade`` (text or None),
``run_id`` (the scoring run's id, text). A spec with ``segments`` adds one column per segment
column, named :data:`SEGMENT_PREFIX` + the column (its value as scored), for the back-test's
segment table."""

SEGMENT_PREFIX = "segment:"


class LedgerInputError(DataError):
    """A batch cannot be ledgered as given (an as-of date missing or not a date), naming the column."""


_INTEGRAL_TEXT = re.compile(r"^(-?\d+)\.0+$")


def id_text(values) -> pd.Series:
    """Record ids as text, the same for the ledger and an outcomes file: integral numbers lose a
    float's ``.0`` (``12.0`` → ``"12"``, as a CSV with missing values reads an integer column),
    and so does integral text (``"12.0"`` in a text column, e.g. beside an id ``X3080``); text is
    stripped (leading zeros kept: ``"007"`` stays); missing ids become None. Shape: (n,) → (n,)."""
    series = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_bool_dtype(series):
        return series.astype(str)
    if series.dtype.kind in "iu":  # NumPy integers: no missing value, nothing to round (the scoring service's ids)
        return series.astype(str).astype(object)
    if pd.api.types.is_numeric_dtype(series):
        numbers = pd.to_numeric(series, errors="coerce")
        integral = numbers.notna() & np.isfinite(numbers) & (numbers == np.round(numbers))
        out = pd.Series([None] * len(numbers), dtype=object)
        out[integral] = numbers[integral].astype("int64").astype(str)
        fractional = numbers.notna() & ~integral
        if fractional.any():
            out[fractional] = numbers[fractional].map(lambda v: repr(float(v)))
        return out
    text = series.astype(object).map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v))
                                     else _INTEGRAL_TEXT.sub(r"\1", str(v).strip()))
    return text.where(text.map(lambda v: bool(v)), None)


SUPPORTED_DATES = f"{pd.Timestamp.min.date()} .. {pd.Timestamp.max.date()} (pandas' nanosecond timestamps)"


def iso_out_of_range(value) -> bool:
    """True for an ISO 8601 date that pandas cannot hold (outside :data:`SUPPORTED_DATES`, e.g. 2999-01-01)."""
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return False
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return not pd.Timestamp.min.ceil("us").to_pydatetime() <= when <= pd.Timestamp.max.floor("us").to_pydatetime()


def utc_dates(values, column: str) -> pd.Series:
    """Dates as UTC timestamps in nanoseconds (naive ones are taken as UTC). Text must be ISO 8601
    (``2025-12-31``, ``2025-12-31T10:00:00+01:00``, offsets may differ from row to row): a day
    written ``01/12/2025`` is refused, since it reads as 12 January in one country and 1 December
    in another. Raises LedgerInputError naming ``column`` and the first value that is not such a
    date, or a missing one."""
    series = pd.Series(values).reset_index(drop=True)
    if isinstance(series.dtype, pd.DatetimeTZDtype):  # (to_datetime would look at every value first)
        parsed = series.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_any_dtype(series):
        parsed = series.dt.tz_localize("UTC")
    else:
        parsed = pd.to_datetime(series, errors="coerce", utc=True, format="ISO8601")
    parsed = parsed.astype("datetime64[ns, UTC]")  # one unit: Parquet timestamps may come in ms or us
    bad = parsed.isna()
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        value = series.iloc[first]
        what = ("without a date" if pd.isna(value) else
                f"a date outside {SUPPORTED_DATES}" if iso_out_of_range(value) else
                "not an ISO 8601 date (e.g. 2025-12-31)")
        raise LedgerInputError(f"column {column!r}: {int(bad.sum())} row(s) {what} (first: row {first + 1}, "
                               f"value {value!r})")
    return parsed


def ledger_frame(ids, as_of, version: int, scores, grades, run_id: str, scored_at,
                 segments: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ledger rows of one scoring run, shape (n, 7 + k) in :data:`LEDGER_COLUMNS` order, then
    the k segment columns.

    Args:
        ids: record ids, (n,) (made text by :func:`id_text`). as_of: (n,) dates or one date.
        grades: (n,) grade names, or None (no rating scale). scored_at: the run's scoring time.
        segments: the batch's segment columns, (n, k), stored as :data:`SEGMENT_PREFIX` + name;
            None or (n, 0): none.
    """
    ids = id_text(ids)
    n = len(ids)
    when = pd.Timestamp(scored_at)
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    dates = as_of if isinstance(as_of, pd.Series) else pd.Series([as_of] * n)
    return pd.DataFrame({
        "id": ids.astype(object), "as_of": utc_dates(dates, "as_of"),
        "model_version": np.full(n, int(version), dtype="int64"), "score": np.asarray(scores, dtype=float),
        "grade": pd.Series([None] * n if grades is None else list(grades), dtype=object),
        "run_id": pd.Series([run_id] * n, dtype=object), "scored_at": pd.Series(pd.DatetimeIndex([when]).repeat(n)),
        **{f"{SEGMENT_PREFIX}{c}": v.reset_index(drop=True) for c, v in (segments if segments is not None else {}).items()}})


def ledger_segments(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The segment columns of ledger rows, named as in the spec, (n, len(columns)); a column the
    rows never stored (scored before the spec declared it) is all missing."""
    return pd.DataFrame({c: (frame[f"{SEGMENT_PREFIX}{c}"] if f"{SEGMENT_PREFIX}{c}" in frame.columns
                             else pd.Series([None] * len(frame), dtype=object)).reset_index(drop=True)
                         for c in columns}, index=range(len(frame)))


def ledger_store(root: str | Path, model: str) -> PartStore:
    """The model's ledger store (``registry/<model>/ledger``)."""
    return PartStore(root, model, LEDGER)


def append_ledger(root: str | Path, model: str, frame: pd.DataFrame, run_id: str) -> list[Part]:
    """Append a scoring run's rows, one part per as-of month (``month=YYYY-MM``), each committed
    by its manifest line under the model's lock. Raises RegistryError (see :meth:`PartStore.append`)."""
    stamp = frame["as_of"].dt  # year * 100 + month: strftime would format every row (28 ms for 10,000)
    months = (stamp.year * 100 + stamp.month).to_numpy()
    parts = {f"month={m // 100:04d}-{m % 100:02d}": rows.reset_index(drop=True)
             for m, rows in frame.groupby(months, sort=True)}
    return ledger_store(root, model).append(parts, run_id)


def read_ledger(root: str | Path, model: str) -> pd.DataFrame:
    """Every committed ledger row, sorted by as-of date then scoring time; an empty frame of
    :data:`LEDGER_COLUMNS` for a model never ledgered. Raises RegistryError for a changed part."""
    frame = ledger_store(root, model).read(LEDGER_COLUMNS)
    if frame.empty:
        return frame
    for column in ("as_of", "scored_at"):  # one unit whatever pandas wrote then
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[ns, UTC]")
    return frame.sort_values(["as_of", "scored_at"], kind="stable").reset_index(drop=True)


def check_joined_rows(joined: pd.DataFrame, ledger: pd.DataFrame) -> None:
    """Every joined outcome (``joined``: rows with ``id``, ``run_id``, ``as_of`` and the ``score``
    the outcome was joined to; each outcome part keeps a copy of its ledger row) must find that
    ledger row (:func:`read_ledger`) with that score. Raises RegistryError otherwise: a ledger part
    lost its manifest line, or a part and its line were rewritten together, which the chain of the
    ledger's manifest cannot see at its last line."""
    from models.errors import RegistryError

    keys = ["id", "run_id", "as_of"]
    found = joined[[*keys, "score"]].rename(columns={"score": "joined_score"})
    found = found.assign(as_of=pd.to_datetime(found["as_of"], utc=True).astype("datetime64[ns, UTC]"))
    check = found.merge(ledger[[*keys, "score"]].astype({"as_of": "datetime64[ns, UTC]"}), on=keys, how="left",
                        indicator=True)
    lost = check["_merge"] == "left_only"
    if lost.any():
        raise RegistryError(f"{int(lost.sum())} joined outcome(s) point at ledger rows no longer in the ledger (first: id "
                            f"{check.loc[lost, 'id'].iloc[0]}, run {check.loc[lost, 'run_id'].iloc[0]}): a ledger part "
                            "lost its manifest line; nothing is back-tested (run `finml registry verify`)")
    changed = ~np.isclose(check["joined_score"].to_numpy(float), check["score"].to_numpy(float), rtol=0, atol=1e-12)
    if changed.any():
        raise RegistryError(f"{int(changed.sum())} ledger row(s) have a score other than the one their outcome was joined "
                            f"to (first: id {check.loc[changed, 'id'].iloc[0]}): the ledger was rewritten; nothing is "
                            "back-tested (run `finml registry verify`)")


def ledger_summary(frame: pd.DataFrame) -> list[dict]:
    """Rows per as-of month and version: ``{month, model_version, rows, ids, first_as_of,
    last_as_of, mean_score, runs}``, sorted by month then version (``[]`` for an empty ledger)."""
    if frame.empty:
        return []
    out = []
    months = frame["as_of"].dt.strftime("%Y-%m")
    for (month, version), rows in frame.groupby([months, "model_version"], sort=True):
        out.append({"month": month, "model_version": int(version), "rows": int(len(rows)),
                    "ids": int(rows["id"].nunique()), "first_as_of": rows["as_of"].min().isoformat(),
                    "last_as_of": rows["as_of"].max().isoformat(), "mean_score": float(rows["score"].mean()),
                    "runs": int(rows["run_id"].nunique())})
    return out


BACKTESTS = "backtests.jsonl"
"""The model's back-test history (``registry/<model>/backtests.jsonl``): one hash-chained line per
back-test run, appended under the model's lock."""


def append_backtest(root: str | Path, model: str, record: dict) -> None:
    """Append one back-test run's record to ``backtests.jsonl`` (chained: ``prev_sha256``), under
    the model's lock. Raises RegistryError (no such model, a link, the lock)."""
    from models.integrity import chain_record
    from models.jsonl import append_jsonl
    from models.registry import LOCK_TIMEOUT_S
    from models.registry_lock import registry_lock
    from models.registry_tree import refuse_linked_entries

    folder = Path(root) / model
    if not folder.is_dir():
        from models.errors import RegistryError

        raise RegistryError(f"no model named {model!r} in the registry at {Path(root).resolve()}")
    refuse_linked_entries(folder)
    path = folder / BACKTESTS
    with registry_lock(folder, model, LOCK_TIMEOUT_S):
        append_jsonl(path, chain_record(record, path, None, False))


def backtest_history(root: str | Path, model: str) -> list[dict]:
    """Every back-test record of the model, oldest first (``[]`` before the first)."""
    from models.jsonl import read_jsonl

    return read_jsonl(Path(root) / model / BACKTESTS)
