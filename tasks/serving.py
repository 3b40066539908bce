"""Online scoring: the version a service answers with, following the champion alias, and the
scoring of request records through the batch path (``docs/serving.md``).

A request's records become a frame of the spec's columns and take the steps of ``finml score``:
:func:`tasks.load.parse_declared_types` (sentinels, dates, ``on_invalid: missing``),
:func:`tasks.monitor.batch_table`, :func:`tasks.scoring.score_with_version`, then
:func:`tasks.scorecard.scorecard_points`, :func:`tasks.scoring.grade_names` and
:func:`tasks.reasons.principal_reasons`, so a served score is the batch score of the same row. The
serving suite's per-record rules are checked before, by the request schema
(:mod:`tasks.serving_schema`). Nothing here imports Prefect: the steps are called through ``.fn``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.errors import RegistryError, UsageError
from models.spec import ModelSpec
from tasks.serving_schema import RecordSchema, record_schema, soft_warnings

log = logging.getLogger(__name__)

ROW = "__finml_request_row__"
"""A column carried through :func:`tasks.load.parse_declared_types` (which sorts by a time column) so
the answers come back in request order."""

RETRY_SECONDS = 1.0
"""After a failed reload of a new champion (a damaged version, a registry being written), the next
attempt waits this long; the requests in between are refused with the error (503)."""


class NoChampionError(RegistryError):
    """The model has no champion now (retired), or its new champion cannot be loaded."""


@dataclass
class ServedVersion:
    """A hash-checked version ready to answer: spec (the one stored with it), pipeline, schema.

    Attributes:
        loaded: :class:`tasks.scoring.LoadedVersion`. spec: the judging spec
            (:func:`models.stored_spec.judging_spec`). schema: its request schema. reasons: the
            version's adverse-action record, or None (no reasons can be given). loaded_at: UTC text.
    """

    spec: ModelSpec
    loaded: Any
    schema: RecordSchema
    reasons: dict[str, Any] | None
    loaded_at: str

    @property
    def model(self) -> str:
        return self.spec.name

    @property
    def version(self) -> int:
        return self.loaded.version

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/models/{name}`` says: the version, its task, features, grades and points scale,
        whether reasons can be given, hashes, and the record's JSON schema."""
        from tasks.scorecard import scale_text

        meta = self.loaded.metadata
        spec = self.spec
        return {"model": spec.name, "version": self.version, "task": spec.task, "description": spec.description,
                "intended_use": spec.intended_use, "features": self.loaded.features,
                "grades": None if spec.rating_scale is None else list(spec.rating_scale.names),
                "points_scale": scale_text(spec.scorecard), "reasons": self.reasons is not None,
                "spec_sha256": meta.get("spec_sha256"), "metadata_created_at": meta.get("created_at"),
                "loaded_at": self.loaded_at, "record_schema": self.schema.json_schema}


def load_served(model: str, registry_root: Path, specs_dir: Path, ref: int | str | None = None) -> ServedVersion:
    """Load a version (the champion when ``ref`` is None) for serving: its hashes are checked before
    anything is unpickled (:func:`tasks.scoring.load_model_version`, ``ModelRegistry.load_verified``).

    Raises:
        RegistryError (no such model, no champion), IntegrityError (a changed file), LibraryVersionError,
        StoredSpecError, ServingUnsupportedError (a spec with a feature builder).
    """
    from models.registry import now_utc
    from models.stored_spec import judging_spec
    from tasks.scoring import load_model_version

    loaded = load_model_version.fn(model, Path(registry_root), ref)
    spec, _ = judging_spec(model, loaded.metadata, specs_dir)
    schema = record_schema(spec)
    record = loaded.metadata.get("reasons")
    reasons = record if record and not record.get("error") and spec.task == "binary_classification" else None
    return ServedVersion(spec, loaded, schema, reasons, now_utc())


def _stamp(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class ChampionFollower:
    """The version a service answers a model with: the champion, followed without a restart.

    Each :meth:`current` call compares ``aliases.json``'s and ``history.jsonl``'s ``stat`` (inode,
    size, modification time: a few microseconds) with the last seen; a promotion, rollback or
    retirement changes one of them (the history line is the commit point, the alias file is
    replaced). Then the champion is read again (``ModelRegistry.champion``: the history's word) and,
    when it moved, the new version is loaded (hashes checked) before the call returns: the request
    that sees the move is answered by the new version, and the old one answers until then. Loads are
    serialised by a lock; other requests wait for it rather than answer with a version the alias has left.

    Raises (from :meth:`current`): NoChampionError when the model has no champion (retired) or the
    new champion cannot be loaded (retried after :data:`RETRY_SECONDS`).
    """

    def __init__(self, model: str, registry_root: Path, specs_dir: Path):
        from models.registry import ModelRegistry

        self.model = model
        self.registry_root = Path(registry_root)
        self.specs_dir = Path(specs_dir)
        self.registry = ModelRegistry(self.registry_root, model)
        self._lock = threading.Lock()
        self._stamp = self._stamps()
        self._served: ServedVersion | None = load_served(model, self.registry_root, self.specs_dir)
        self._error: Exception | None = None
        self._failed_at = 0.0
        self.reloads = 0

    def _stamps(self) -> tuple:
        return _stamp(self.registry.aliases_path), _stamp(self.registry.history_path)

    @property
    def served(self) -> ServedVersion | None:
        """The version answering now (None: no champion), without looking at the registry."""
        return self._served

    def current(self) -> ServedVersion:
        """The champion's served version, reloaded first when the alias moved (see the class)."""
        stamp = self._stamps()
        if stamp == self._stamp and self._error is None:
            return self._served  # type: ignore[return-value]
        with self._lock:
            if stamp != self._stamp or (self._error is not None and time.monotonic() - self._failed_at >= RETRY_SECONDS):
                self._refresh(stamp)
            if self._error is not None:
                message = str(self._error)
                raise NoChampionError(message if message.startswith(f"{self.model}") else f"{self.model}: {message}")
            return self._served  # type: ignore[return-value]

    def _refresh(self, stamp: tuple) -> None:
        try:
            champion = self.registry.champion()
            if champion is None:
                raise NoChampionError("no champion now (retired, `finml registry history`); nothing is served")
            if self._served is None or champion != self._served.version:
                previous = None if self._served is None else self._served.version
                # by alias, not number: in signed mode load_verified then checks the champion against the
                # signed history (a number would skip that check)
                self._served = load_served(self.model, self.registry_root, self.specs_dir)
                self.reloads += 1
                log.info("%s: now serving version %s (was %s): the champion alias moved", self.model,
                         self._served.version, previous)
            self._error = None
        except Exception as err:  # noqa: BLE001 - kept and answered as 503 until a reload succeeds
            if self._error is None or str(err) != str(self._error):
                log.error("%s: cannot serve the champion: %s", self.model, err)
            self._error = err
            self._failed_at = time.monotonic()
        self._stamp = stamp


def records_frame(spec: ModelSpec, schema: RecordSchema, records: list[dict[str, Any]]) -> pd.DataFrame:
    """The request's records as the frame a batch file gives (rows × declared columns): numbers as
    float64 with NaN for missing (whole-number columns without missing as int64), other columns as
    object with NaN for missing (as a CSV reads them; scikit-learn's imputer does not take None for
    missing); protected and excluded columns no record carries are left out; a JSON true/false in a
    numeric column with ``on_invalid: missing`` becomes the text ``true``/``false`` (invalid: made
    missing with a warning, not read as 1/0). Shape (n, ≤ columns)."""
    frame = pd.DataFrame.from_records(records, columns=list(schema.columns))  # pandas' C loop over the dicts
    for name, col in spec.columns.items():  # true/false in a lenient numeric column: invalid, as in a file
        if col.on_invalid == "missing" and col.type_family in ("numeric", "integer") and frame[name].dtype in (object, bool):
            flags = frame[name].map(lambda v: isinstance(v, bool)).astype(bool)
            if flags.any():
                frame[name] = frame[name].astype(object).where(~flags, frame[name].map({True: "true", False: "false"}))
    for name in schema.nullable:
        values = frame[name]
        col = spec.columns[name]
        if col.role in ("protected", "excluded") and values.isna().all():
            frame = frame.drop(columns=[name])
        elif values.dtype != object or not values.isna().any():
            continue
        elif col.on_invalid != "missing" and col.type_family in ("numeric", "integer"):
            frame[name] = pd.to_numeric(values)  # all missing: float64 NaN
        else:
            frame[name] = values.where(values.notna(), np.nan)  # None -> NaN
    return frame


@dataclass
class ScoredRecords:
    """A request's records scored. Arrays are (n,) in request order.

    Attributes:
        table: the modelling table (request order), for the ledger. scores: P(event) or the forecast.
        points: scorecard points or None; grades: grade names or None; reasons: the
            :func:`tasks.reasons.principal_reasons` frame or None; warnings: values made missing
            (``on_invalid: missing``), one line each.
    """

    served: ServedVersion
    table: pd.DataFrame
    scores: np.ndarray
    points: np.ndarray | None = None
    grades: list | None = None
    reasons: pd.DataFrame | None = None
    k: int = 0
    warnings: list[str] = field(default_factory=list)


class ReasonsRequestError(UsageError):
    """``reasons`` asked for a version that cannot give them, or a count outside 1..5."""


def score_records(served: ServedVersion, records: list[dict[str, Any]], reasons: int | None = None) -> ScoredRecords:
    """Score validated records (:meth:`tasks.serving_schema.RecordSchema.validate_body`) with a
    served version, through the batch path (module docstring).

    Args:
        reasons: adverse-action reasons per declined record, 1..5, or None (none).

    Raises:
        ReasonsRequestError: a bad count, or a version without a reasons record; DataPreparationError
        (a value the batch path refuses, named), FeatureMismatchError.
    """
    from tasks.invalid_values import INVALID_VALUES
    from tasks.load import parse_declared_types
    from tasks.monitor import batch_table
    from tasks.reasons import ReasonCountError, check_reason_count, principal_reasons
    from tasks.scoring import grade_names, score_with_version

    spec, loaded = served.spec, served.loaded
    k = 0
    if reasons is not None:
        try:
            k = check_reason_count(reasons, "reasons")
        except ReasonCountError as err:
            raise ReasonsRequestError(str(err)) from None
        if served.reasons is None:
            raise ReasonsRequestError(f"{spec.name} version {served.version} has no adverse-action record "
                                      "(reasons are for binary classification versions that recorded one)")
    frame = records_frame(spec, served.schema, records)
    ordered = spec.time_axis is not None and spec.time_axis in frame.columns
    if ordered:  # parse_declared_types sorts by the time column: carry the request order through it
        frame[ROW] = np.arange(len(frame))
    parsed = parse_declared_types(frame, spec)
    warnings = soft_warnings(spec, records) + [
        f"{v['column']}: {v['count']} value(s) not {v['description']} taken as missing"
        for v in parsed.attrs.get(INVALID_VALUES, [])]
    if ordered:
        back = np.argsort(parsed[ROW].to_numpy(), kind="stable")
        parsed = parsed.iloc[back].drop(columns=[ROW]).reset_index(drop=True)
    table = batch_table.fn(spec, parsed)
    scores = np.asarray(score_with_version.fn(spec, loaded, table), dtype=float)
    out = ScoredRecords(served, table, scores, k=k, warnings=warnings)
    if spec.scorecard is not None:
        from tasks.scorecard import scorecard_points

        out.points = scorecard_points(spec.scorecard, scores)
    if spec.rating_scale is not None:
        out.grades = np.asarray(grade_names(spec.rating_scale, scores)).tolist()  # (iterating a Categorical is slow)
    if k:
        out.reasons = principal_reasons(spec.reasons, loaded.pipeline, table[loaded.features], scores, served.reasons, k)
    return out


def result_rows(scored: ScoredRecords) -> list[dict[str, Any]]:
    """One answer per record, in request order: ``id`` (the spec's id column, when declared),
    ``score``, ``points`` / ``grade`` (with a scorecard / rating scale), with reasons ``declined`` and
    ``reasons`` (``[{"code", "text", "contribution"}]``, most important first; empty for an approved
    record), ``model`` and ``version``."""
    spec, served = scored.served.spec, scored.served
    n = len(scored.scores)
    columns: dict[str, list] = {}
    id_col = spec.id_columns[0] if spec.id_columns and spec.id_columns[0] in scored.table.columns else None
    if id_col:
        ids = scored.table[id_col]
        columns["id"] = ids.astype(object).where(ids.notna(), None).tolist() if ids.hasnans else ids.tolist()
    columns["score"] = scored.scores.tolist()
    if scored.points is not None:
        columns["points"] = scored.points.tolist()
    if scored.grades is not None:
        columns["grade"] = scored.grades
    if scored.reasons is not None:
        frame = scored.reasons
        columns["declined"] = [bool(d) for d in frame["declined"].tolist()]
        parts = [(frame[f"reason_{j}"].tolist(), frame[f"reason_{j}_text"].tolist(),
                  frame[f"reason_{j}_contribution"].tolist()) for j in range(1, scored.k + 1)]
        columns["reasons"] = [[{"code": c[i], "text": t[i], "contribution": v[i]} for c, t, v in parts
                               if isinstance(c[i], str)] for i in range(n)]
    columns["model"] = [spec.name] * n
    columns["version"] = [served.version] * n
    keys = list(columns)
    return list(map(dict, map(zip, repeat(keys), zip(*columns.values()))))


def process_run_id() -> str:
    """The ledger's ``run_id`` of a serving process: ``serve-<host>-<pid>-<start time>``."""
    import socket

    return f"serve-{socket.gethostname()[:12]}-{os.getpid()}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
