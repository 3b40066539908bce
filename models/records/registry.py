"""Typed records of the registry: a version's ``metadata.json`` and the ``history.jsonl`` events.

Each record defines the JSON that is written (``to_json``) and reads back a stored file, old or
new (``from_stored``); the format, the schema versions and the legacy rules are in
``docs/registry.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError

from models.errors import RegistryError
from models.records import Record
from models.records.gate import ChampionRescoring, GateResult

LEGACY_SCHEMA_VERSION = 1
"""The files written before records had a ``schema_version`` (finml up to commit fcfdb5e): a
stored object without the field reads as this version. Same keys as version 2."""

METADATA_SCHEMA_VERSION = 2
"""``metadata.json`` as written today: version 1 plus ``schema_version``."""

HISTORY_SCHEMA_VERSION = 3
"""A ``history.jsonl`` line as written today: version 2 (version 1 plus ``schema_version``) plus
``who`` on every line and the alias events (``alias_moved``, ``alias_removed``, a ``registered``
line naming an ``alias``). Lines of versions 1 and 2 read into the same records (``who`` None)."""


class StoredRecord(Record):
    """A record stored as JSON with a ``schema_version``.

    ``SCHEMA_VERSION`` is the version this code writes; ``OMIT_IF_NONE`` names optional fields
    that are left out of the JSON while they are None (a key the original code wrote only
    sometimes, such as a rollback's ``repaired_alias_file``).
    """

    SCHEMA_VERSION: ClassVar[int] = LEGACY_SCHEMA_VERSION
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset()

    schema_version: int = Field(default=LEGACY_SCHEMA_VERSION, ge=1)

    def __init__(self, **data: Any) -> None:
        data.setdefault("schema_version", self.SCHEMA_VERSION)
        super().__init__(**data)

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]):
        """Read a stored JSON object; one without ``schema_version`` is a legacy (version 1) one.

        Raises:
            pydantic.ValidationError: a required key is missing or a value has the wrong type
                (the field is named).
        """
        return cls.model_validate({"schema_version": LEGACY_SCHEMA_VERSION, **data})

    def to_json(self) -> dict[str, Any]:
        """The JSON object to write: every field and every extra key, stamped with the version this
        code writes (NumPy values inside loosely typed sub-objects stay for ``json_default``)."""
        out = self.model_dump(mode="python")
        for key in self.OMIT_IF_NONE:
            if out.get(key) is None:
                out.pop(key, None)
        out["schema_version"] = self.SCHEMA_VERSION
        return out


# --------------------------------------------------------------------------- version metadata


class RunInfo(Record):
    """The training run that made the version: Prefect flow-run id, why it ran, when it started,
    and, as an extra key when known, ``who`` started it (:mod:`models.identity`)."""

    id: str | None = None
    reason: str | None = None
    started_at: str | None = None


class HoldoutInfo(Record):
    """The holdout the version was judged on: row count and SHA-256 of its rows (its period is in
    the split's description, ``split.holdout_period``)."""

    rows: int
    sha256: str | None = None


class ReferenceInfo(Record):
    """What ``reference.parquet`` holds: ``rows`` of the development sample (``source``), the
    ``modelling_rows`` rows of the development modelling table, all of them or a seeded random
    sample (``sampled``, ``seed``) in table order, scored by the promoted pipeline;
    ``in_sample_rows`` of them were rows that pipeline was fitted on (their scores are
    in-sample). Absent (None) in records written before the reference was the development
    sample (it was the holdout) and for rejected runs."""

    rows: int
    source: str = "development sample"
    modelling_rows: int | None = None
    sampled: bool = False
    seed: int | None = None
    in_sample_rows: int | None = None


class SelectedCandidate(Record):
    """The candidate that became the version: its name, estimator, parameters and fit details;
    under ``selection: simplest_within_noise`` also ``selection``, how it was chosen
    (:func:`tasks.selection.simplest_within_noise`; absent when the best by the primary metric was taken)."""

    name: str
    estimator: str
    params: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)


class DecisionInfo(Record):
    """Whether the run promoted the version, and the gate's reason in words; an extra key
    ``alias`` (only then) names the alias (``challenger``) that a version which failed only
    champion rules was registered as."""

    promoted: bool
    reason: str


class GitInfo(Record):
    """The project's git commit at training time and whether the work tree had changes (None: unknown)."""

    commit: str | None = None
    dirty: bool | None = None


class Lineage(Record):
    """Installed library versions (name → version) and the git commit."""

    libraries: dict[str, str] = Field(default_factory=dict)
    git: GitInfo = Field(default_factory=GitInfo)


class VersionMetadata(StoredRecord):
    """``versions/<n>/metadata.json``: everything a validator needs to re-read a decision.

    Written by :func:`tasks.promote.build_metadata` (also as a rejected run's ``rejected.json``,
    which has no ``version`` or ``files``: both None, and left out of its JSON); ``version`` and
    ``files`` (relative path → hex SHA-256 of every file of the version) are added by
    ``ModelRegistry.publish``. The gate result and the champion comparison are the records of
    :mod:`models.records.gate`; the other sub-objects (the spec as trained, data fingerprint,
    validation summary, split, candidates, deciles, fairness, leakage guards, and
    ``fold_metrics``, the selected candidate's metrics per walk-forward fold) are kept as stored;
    ``reference`` describes the reference sample (:class:`ReferenceInfo`, versions only).
    ``drivers`` holds the selected candidate's global drivers (:func:`tasks.drivers.global_drivers`),
    ``monotonic`` every candidate's checks along the declared directions (:func:`tasks.monotonic.check_monotonic`),
    ``scorecard`` the scale, the cut-off in points and the points table (:func:`tasks.scorecard.scorecard_record`;
    None without a ``scorecard`` section),
    ``rating`` the holdout's grade table with the Jeffreys and binomial tests and the Herfindahl index
    (:func:`tasks.rating.rating_record`; None without a ``rating_scale`` section),
    ``reasons`` the operating cut-off and reference profile of adverse-action reasons
    (:func:`tasks.reasons.adverse_action_record`; binary classification),
    ``var_backtest`` (the holdout's VaR back-test, a spec with a ``var`` section),
    ``model_confidence_set`` (forecasters and specs with an ``mcs`` rule) and ``pesaran_timmermann``
    (direction models): :func:`tasks.market_tests.market_tests`; None otherwise, and left out of the JSON;
    ``forecast`` a volatility forecaster's RMSE, MAE and QLIKE of every candidate and baseline, pooled
    and per fold, with Diebold-Mariano intervals and the baselines' fitted parameters
    (:func:`tasks.forecast_eval.forecast_comparison`; None for other models).
    ``reference``, ``fold_metrics`` and ``drivers`` are left out of the JSON while None (records
    written before they existed, rejected runs, single-holdout splits).
    """

    SCHEMA_VERSION: ClassVar[int] = METADATA_SCHEMA_VERSION

    model: str
    task: str
    description: str = ""
    created_at: str
    run: RunInfo = Field(default_factory=RunInfo)
    spec_sha256: str
    spec: dict[str, Any]
    data: dict[str, Any] = Field(default_factory=dict)
    validation: dict[str, Any] = Field(default_factory=dict)
    split: dict[str, Any] = Field(default_factory=dict)
    holdout: HoldoutInfo
    features: list[str]
    target: str
    candidates: list[dict[str, Any]] = Field(default_factory=list)
    selected_candidate: SelectedCandidate
    primary_metric: str
    metrics: dict[str, float | None]
    deciles: list[dict[str, Any]] = Field(default_factory=list)
    fairness: dict[str, Any] | None = None
    leakage: dict[str, Any] = Field(default_factory=dict)
    fold_metrics: list[dict[str, Any]] | None = None
    drivers: dict[str, Any] | None = None
    monotonic: dict[str, Any] | None = None
    scorecard: dict[str, Any] | None = None
    rating: dict[str, Any] | None = None
    reasons: dict[str, Any] | None = None
    var_backtest: dict[str, Any] | None = None
    model_confidence_set: dict[str, Any] | None = None
    pesaran_timmermann: dict[str, Any] | None = None
    forecast: dict[str, Any] | None = None
    reference: ReferenceInfo | None = None
    champion_comparison: ChampionRescoring | None = None
    gate: GateResult
    decision: DecisionInfo
    lineage: Lineage = Field(default_factory=Lineage)
    reports: list[str] = Field(default_factory=list)
    version: int | None = Field(default=None, ge=1)
    files: dict[str, str] | None = None

    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset({"version", "files", "reference", "fold_metrics", "drivers", "monotonic",
                                                "scorecard", "rating", "reasons", "var_backtest", "model_confidence_set",
                                                "pesaran_timmermann", "forecast"})


# --------------------------------------------------------------------------- history events


class HistoryEvent(StoredRecord):
    """One line of ``history.jsonl``. ``ts`` (ISO-8601 UTC, seconds) and ``model`` are added by
    the registry when it appends; ``event`` names the kind (the subclasses below). An event kind
    this code does not know reads as this base class, its keys kept."""

    SCHEMA_VERSION: ClassVar[int] = HISTORY_SCHEMA_VERSION
    KIND: ClassVar[str | None] = None
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset({"prev_sha256", "signature", "who"})

    event: str
    ts: str | None = None
    model: str | None = None
    version: int | None = None
    run_id: str | None = None
    reason: str | None = None
    who: str | None = None
    """Who acted (:func:`models.identity.current_user`; added on append; None on lines written
    before it was recorded)."""
    prev_sha256: str | None = None
    """SHA-256 of the line before (added on append; ``"0" * 64`` for a file's first line; absent
    from lines written before the chain)."""
    signature: str | None = None
    """Signed mode: ``ed25519:<key id>:<base64>`` over the line without this key (added on append)."""


class _TrainingOutcome(HistoryEvent):
    """Fields every training decision writes: the selected candidate, the primary metric and its
    holdout value, and the champion the run was judged against (None: there was none)."""

    candidate: str | None = None
    primary_metric: str | None = None
    value: float | None = None
    champion_before: int | None = None


class Promoted(_TrainingOutcome):
    """A passing challenger became version ``version`` and the champion (the commit line of
    ``ModelRegistry.publish``: ``metadata_sha256`` is the SHA-256 of its ``metadata.json``)."""

    KIND: ClassVar[str] = "promoted"

    event: Literal["promoted"] = "promoted"
    gate: str | None = None
    metadata_sha256: str | None = None
    champion_after: int | None = None


class Rejected(_TrainingOutcome):
    """A challenger failed a gate rule (or the champion moved while it was judged): no version is
    written; ``failed_rules`` are the failed rules' sentences, ``evidence`` the path of its
    ``rejected.json``."""

    KIND: ClassVar[str] = "rejected"

    event: Literal["rejected"] = "rejected"
    failed_rules: list[str] = Field(default_factory=list)
    evidence: str | None = None


class RolledBack(HistoryEvent):
    """``finml registry rollback``: the champion moved to ``version`` from ``previous_champion``
    (None: there was none). ``repaired_alias_file`` (only when it happened) is the error of the
    damaged ``aliases.json`` that this rollback rewrote; ``from_alias`` (only when it happened) the
    alias (``challenger``) whose version was rolled forward to champion."""

    KIND: ClassVar[str] = "rolled_back"
    OMIT_IF_NONE: ClassVar[frozenset[str]] = HistoryEvent.OMIT_IF_NONE | {"repaired_alias_file", "from_alias"}

    event: Literal["rolled_back"] = "rolled_back"
    previous_champion: int | None = None
    champion_after: int | None = None
    repaired_alias_file: str | None = None
    from_alias: str | None = None


class ChampionRetired(HistoryEvent):
    """``finml registry retire``: the champion alias (of ``version``) was removed; the next run is
    judged as a first model is."""

    KIND: ClassVar[str] = "champion_retired"

    event: Literal["champion_retired"] = "champion_retired"
    champion_after: None = None


class Registered(_TrainingOutcome):
    """A version published without promotion (``ModelRegistry.publish(promote=False)``): its
    commit line; ``champion_after`` is the unchanged champion. A training run registered as an
    alias (``finml train --register-as challenger``: it failed only champion rules) names the
    ``alias`` this line points at the version, and its ``failed_rules``; both left out otherwise."""

    KIND: ClassVar[str] = "registered"
    OMIT_IF_NONE: ClassVar[frozenset[str]] = HistoryEvent.OMIT_IF_NONE | {
        "alias", "failed_rules", "candidate", "primary_metric", "value", "champion_before"}

    event: Literal["registered"] = "registered"
    metadata_sha256: str | None = None
    champion_after: int | None = None
    alias: str | None = None
    failed_rules: list[str] | None = None


class AliasMoved(HistoryEvent):
    """``finml registry alias MODEL NAME --to N`` (:func:`models.aliases.move_alias`): the alias
    ``alias`` (never ``champion``) now names ``version``; ``previous`` is the version it named
    before (None: it was not set)."""

    KIND: ClassVar[str] = "alias_moved"

    event: Literal["alias_moved"] = "alias_moved"
    alias: str
    previous: int | None = None


class AliasRemoved(HistoryEvent):
    """``finml registry alias MODEL NAME --remove``, or a challenger rolled forward to champion
    (:func:`models.aliases.remove_alias`): the alias ``alias`` is gone; ``version`` is the version
    it named."""

    KIND: ClassVar[str] = "alias_removed"

    event: Literal["alias_removed"] = "alias_removed"
    alias: str


class UncommittedRemoved(HistoryEvent):
    """``ModelRegistry.gc`` removed the folder of ``version``: renamed into place by a publication
    that stopped before its commit line, so never a version; the line keeps its number from
    being reused. ``reason`` says why."""

    KIND: ClassVar[str] = "uncommitted_removed"

    event: Literal["uncommitted_removed"] = "uncommitted_removed"


class Attested(HistoryEvent):
    """``finml registry sign``: in signed mode, the holder of the signing key vouched for
    ``version`` (committed by an unsigned line, before signing was turned on) after its hash
    check passed; ``metadata_sha256`` repeats its commit line's. Signed like every line."""

    KIND: ClassVar[str] = "attested"

    event: Literal["attested"] = "attested"
    metadata_sha256: str | None = None


class Stopped(HistoryEvent):
    """A training run stopped before its gate by bad data: validation, leakage, too few holdout
    events, a source that cannot be read (a ``DataError``). Nothing was promoted and no version
    written. ``error`` is the error's class name (``DataValidationError``, ``LeakageError`` ...),
    ``cause`` its message."""

    KIND: ClassVar[str] = "stopped"

    event: Literal["stopped"] = "stopped"
    error: str | None = None
    cause: str = ""


class Reviewed(HistoryEvent):
    """``finml review MODEL --reason TEXT``: a periodic review of the champion ``version`` by
    ``who``, from which the inventory dates the next review (docs/inventory.md); ``reason`` is
    what the review found."""

    KIND: ClassVar[str] = "reviewed"

    event: Literal["reviewed"] = "reviewed"


EVENT_TYPES: dict[str, type[HistoryEvent]] = {
    cls.KIND: cls for cls in (Promoted, Rejected, RolledBack, ChampionRetired, Registered, UncommittedRemoved,
                              Attested, Stopped, AliasMoved, AliasRemoved, Reviewed)
}
"""Event kind (the ``event`` key) → its record class."""


def parse_event(data: Mapping[str, Any]) -> HistoryEvent:
    """A stored history line (or an event about to be written) as its typed record: the class of
    its ``event`` kind from :data:`EVENT_TYPES`, else :class:`HistoryEvent` (keys kept).

    Raises:
        pydantic.ValidationError: no ``event`` key, or a value of the wrong type (named).
    """
    cls = EVENT_TYPES.get(str(data.get("event")), HistoryEvent)
    return cls.from_stored(data)


def stored_json(obj: Record | Mapping[str, Any], schema_version: int) -> dict[str, Any]:
    """The JSON object to store: a stored record's :meth:`StoredRecord.to_json`, a mapping as
    given; either way stamped with the ``schema_version`` this code writes."""
    out = obj.to_json() if isinstance(obj, StoredRecord) else dict(obj)
    out["schema_version"] = schema_version
    return out


def read_record(read: Callable[[Any], Any], data: Any, path: Path, line: int | None = None):
    """``read(data)`` (a record's ``from_stored``), with a validation error turned into a
    RegistryError naming the file, the line (when given) and the first bad field."""
    try:
        return read(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(record)"
        where = f"{path}" + (f": line {line}" if line else "")
        raise RegistryError(f"{where} is not a valid record: {field}: {first['msg']} "
                            f"({err.error_count()} problem(s))") from None
