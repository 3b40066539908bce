"""The scoring service's ledger writer: every scored record goes to the model's ledger
(:func:`models.ledger.append_ledger`), in batches.

Why buffered: one ledger append takes the model's lock, writes and fsyncs a Parquet part and a
manifest line (several milliseconds, more than scoring one record), and each append is one more
file. Requests therefore only hand their rows to :class:`LedgerBuffer` (a list append); a
background thread appends what has gathered every ``flush_seconds`` or as soon as ``max_rows`` are
waiting, one part per model, version and month. :meth:`LedgerBuffer.close` (the service's shutdown,
on SIGINT/SIGTERM through uvicorn) stops the thread and appends the rest, so a clean stop loses no
row. A row is lost only if the process dies without its shutdown (SIGKILL, power loss) within
``flush_seconds`` of being scored. When an append fails (the lock held past its timeout, a full disk)
the rows stay in the buffer for the next try; at close, rows that still cannot be appended are
written to ``<reports>/serving/unledgered-<model>-<time>.parquet`` (ledger columns) and logged.

The rows are those of ``finml score`` (:func:`tasks.ledger.ledger_scored_rows`): the same
:func:`tasks.ledger.unledgered_reason`, :func:`tasks.ledger.batch_as_of` and
:func:`models.ledger.ledger_frame`, with each request's own scoring time.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.spec import ModelSpec

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    spec: ModelSpec
    table: pd.DataFrame
    scores: np.ndarray
    grades: list | None
    version: int
    scored_at: str
    as_of: str | None


class LedgerBuffer:
    """Scored rows waiting for the ledger, appended by a background thread (module docstring).

    Args:
        registry_root: the registry (``FINML_REGISTRY_DIR``). run_id: the ledger's run id of every row
            (:func:`tasks.serving.process_run_id`). flush_seconds: the longest a row waits (seconds,
            > 0). max_rows: waiting rows that start an append at once. reports_root: where rows that
            cannot be ledgered at close are kept.
    """

    def __init__(self, registry_root: Path, run_id: str, flush_seconds: float = 2.0, max_rows: int = 10_000,
                 reports_root: Path | None = None):
        if not flush_seconds > 0:
            raise ValueError(f"flush_seconds must be above 0, got {flush_seconds!r}")
        self.registry_root = Path(registry_root)
        self.run_id = run_id
        self.flush_seconds = float(flush_seconds)
        self.max_rows = int(max_rows)
        self.reports_root = None if reports_root is None else Path(reports_root)
        self._pending: list[_Pending] = []
        self._rows = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ledgered = 0
        self.unledgered: dict[str, str] = {}  # model -> why its rows are not ledgered (once per model)
        self.failures = 0

    def start(self) -> "LedgerBuffer":
        """Start the background thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="finml-ledger", daemon=True)
            self._thread.start()
        return self

    def add(self, spec: ModelSpec, table: pd.DataFrame, scores: np.ndarray, grades: list | None, version: int,
            scored_at: str, as_of: str | None = None) -> str | None:
        """Queue a request's scored rows. Returns why they will not be ledgered (no id column, missing or
        repeated ids: :func:`tasks.ledger.unledgered_reason`), or None."""
        from tasks.ledger import unledgered_reason

        reason = unledgered_reason(spec, table)
        if reason is not None:
            if spec.name not in self.unledgered:
                log.warning("%s", reason)
            self.unledgered[spec.name] = reason
            return reason
        with self._lock:
            self._pending.append(_Pending(spec, table, scores, grades, version, scored_at, as_of))
            self._rows += len(table)
            full = self._rows >= self.max_rows
        if full:
            self._wake.set()
        return None

    @property
    def waiting(self) -> int:
        """Rows queued and not yet appended."""
        return self._rows

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            self.flush()

    def flush(self) -> int:
        """Append every queued row now; returns the rows appended. A failed append keeps its rows queued
        (logged); nothing is raised."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending, self._rows = self._pending, [], 0
            done = 0
            kept: list[_Pending] = []
            for key, group in _groups(batch).items():
                try:
                    frame = ledger_rows(group, self.run_id)
                    from models.ledger import append_ledger

                    append_ledger(self.registry_root, group[0].spec.name, frame, self.run_id)
                    done += len(frame)
                except Exception as err:  # noqa: BLE001 - the rows wait for the next flush
                    self.failures += 1
                    log.error("%s: %d scored row(s) not ledgered yet (%s); retrying at the next flush", key[0],
                              sum(len(p.table) for p in group), err)
                    kept.extend(group)
            if kept:
                with self._lock:
                    self._pending[:0] = kept
                    self._rows += sum(len(p.table) for p in kept)
            self.ledgered += done
            return done

    def close(self) -> int:
        """Stop the thread and append the rest (the service's shutdown). Rows that still cannot be appended
        are written to ``<reports>/serving/unledgered-*.parquet`` (logged with the path); returns the rows
        left unledgered (0 normally)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.flush()
        with self._lock:
            left, self._pending, self._rows = self._pending, [], 0
        if not left:
            return 0
        from models.registry import now_utc

        rows = 0
        folder = (self.reports_root or Path("reports")) / "serving"
        for key, group in _groups(left).items():
            frame = ledger_rows(group, self.run_id)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"unledgered-{key[0]}-{now_utc().replace(':', '')}.parquet"
            frame.to_parquet(path, index=False)
            rows += len(frame)
            log.error("%s: %d scored row(s) could not be ledgered; kept in %s", key[0], len(frame), path)
        return rows


def _groups(batch: list[_Pending]) -> dict[tuple, list[_Pending]]:
    groups: dict[tuple, list[_Pending]] = {}
    for p in batch:
        groups.setdefault((p.spec.name, p.version), []).append(p)
    return groups


def ledger_rows(group: list[_Pending], run_id: str) -> pd.DataFrame:
    """The ledger rows of queued requests of one model and version (:data:`models.ledger.LEDGER_COLUMNS`),
    each request's rows with its own as-of date (:func:`tasks.ledger.batch_as_of`) and scoring time."""
    from models.ledger import id_text, ledger_frame
    from tasks.ledger import batch_as_of

    spec = group[0].spec
    id_col = spec.id_columns[0]
    # each request's ids as text first: concatenating an int64 column with another request's float or object
    # one would turn every id into a float (2**53 + 1 -> 2**53)
    ids = pd.concat([id_text(p.table[id_col]) for p in group], ignore_index=True)
    dates = []
    for p in group:
        when = batch_as_of(spec, p.table, p.as_of, p.scored_at)
        dates.append(when.reset_index(drop=True) if isinstance(when, pd.Series)
                     else pd.Series(pd.DatetimeIndex([pd.Timestamp(when)]).repeat(len(p.table))))
    as_of = pd.concat(dates, ignore_index=True)
    scores = np.concatenate([p.scores for p in group])
    grades = None if group[0].grades is None else [g for p in group for g in p.grades]
    frame = ledger_frame(ids, as_of, group[0].version, scores, grades, run_id, group[0].scored_at)
    when = pd.to_datetime([p.scored_at for p in group], utc=True).repeat([len(p.table) for p in group])
    frame["scored_at"] = pd.Series(when, index=frame.index).astype(frame["scored_at"].dtype)
    return frame
