"""Typed records of monitoring: the line ``monitoring.jsonl`` gets per run, and what a run that
measured nothing returns. Built by :func:`tasks.monitor.build_record`; read by the CLI and the
markdown verdict. Format and schema versions: ``docs/registry.md``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from models.records import Record
from models.records.drift import DriftSummary, EvidentlySummary
from models.records.registry import StoredRecord
from models.records.segments import SegmentRow

MONITORING_SCHEMA_VERSION = 2
"""A ``monitoring.jsonl`` line as written today: the legacy (version 1, no ``schema_version``)
keys plus ``schema_version``."""

VERDICTS = ("data_quality_alarm", "drift_and_performance_breach", "var_red_zone", "drift", "calibration_breach",
            "performance_breach", "feature_drift", "insufficient_data", "stable")
"""Every monitoring verdict, the most serious first (the precedence of
:func:`tasks.verdict.decide_verdict`; table in ``docs/drift.md``)."""

Verdict = Literal[VERDICTS]
"""The type of :attr:`MonitoringRecord.verdict` (kept equal to :data:`VERDICTS`)."""

ALARM_VERDICTS = ("drift_and_performance_breach", "var_red_zone", "drift", "calibration_breach", "performance_breach",
                  "feature_drift")
"""Verdicts that raise ``finml.drift.detected``; whether it retrains is the event's ``action``
(``drift.on_drift``, or ``drift.on_feature_drift`` for ``feature_drift``)."""

SEVERITY = {"data_quality_alarm": "critical", "drift_and_performance_breach": "critical", "var_red_zone": "critical",
            "drift": "critical",
            "performance_breach": "critical", "calibration_breach": "critical", "feature_drift": "warning",
            "insufficient_data": "info", "stable": "info"}
"""The ``severity`` of each verdict in the record and the event payload."""


class BatchInfo(Record):
    """The monitored batch: its label (path, or ``<model> out-of-time period``), rows read, rows
    with complete features (``modelled_rows``), the SHA-256 fingerprint of its rows, and its
    ``period`` on the spec's time axis (``[first, last]``: ISO dates, or integers for an integer
    ``time_index``; shown by :func:`tasks.report.period_text`; None without a time axis and in
    records written before it, and then left out of the JSON)."""

    label: str
    rows: int
    modelled_rows: int | None = None
    sha256: str | None = None
    period: list[int | str] | None = None


class MetricChange(Record):
    """One metric on the batch against the version's holdout. ``worsening`` is ``holdout - batch``
    when higher is better, ``batch - holdout`` when lower is better, None without a direction;
    ``breach`` when it exceeds ``tolerance`` (``drift.performance_tolerance``)."""

    batch: float | None
    holdout: float | None
    worsening: float | None = None
    tolerance: float | None = None
    breach: bool | None = None


class Calibration(Record):
    """Calibration in the large: mean predicted probability, observed event rate, their ratio
    (None when the rate is 0) and the Brier score, on the labelled rows; and its test
    (:func:`tasks.verdict.judge_calibration`; None in records written before it existed):
    ``events`` in ``rows``, the two-sided exact binomial ``p_value`` against the mean predicted
    probability, the Jeffreys interval ``jeffreys_low``-``jeffreys_high`` of the observed rate
    at ``1 - alpha``, ``alpha`` (``drift.calibration_alpha``), ``tolerance`` (the accepted
    ``|ratio - 1|``), and ``breach`` (significant and material). Those keys are left out of the
    JSON while None, so that a line written before them reads back and writes back unchanged."""

    OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ("events", "rows", "p_value", "jeffreys_low", "jeffreys_high", "alpha",
                                               "tolerance", "breach")

    mean_predicted: float
    observed_rate: float
    ratio: float | None = None
    brier: float | None = None
    events: int | None = None
    rows: int | None = None
    p_value: float | None = None
    jeffreys_low: float | None = None
    jeffreys_high: float | None = None
    alpha: float | None = None
    tolerance: float | None = None
    breach: bool | None = None


class Performance(Record):
    """Performance on the batch's labelled rows (:func:`tasks.monitor.performance`).

    ``status``: ``evaluated``, ``no_labels``, ``insufficient_labels`` (possibly followed by
    ``: <why>``) or ``single_class_labels``. ``label_fault``: the labels' event rate implausible
    for the spec's expected range, in words (absent in the oldest files: None).
    ``below_majority``: a direction model whose directional accuracy on the batch is below the
    always-majority forecast's, in words (else None).
    """

    status: str
    labelled_rows: int = 0
    metrics: dict[str, float | None] = Field(default_factory=dict)
    holdout_metrics: dict[str, float | None] = Field(default_factory=dict)
    changes: dict[str, MetricChange] = Field(default_factory=dict)
    calibration: Calibration | None = None
    breaches: list[str] = Field(default_factory=list)
    label_fault: str | None = None
    below_majority: str | None = None

    @property
    def calibration_breach(self) -> bool:
        """The calibration test found a significant and material miscalibration."""
        return self.calibration is not None and bool(self.calibration.breach)


class OutOfRangeFeature(Record):
    """A numeric feature's batch rows outside the version's training range: their count and
    share, the range, the one-sided exact binomial p-value against the rate ``2 / (n + 1)`` of
    ``n`` training rows, and whether the share is material (:func:`tasks.ranges.out_of_range_report`)."""

    rows: int
    share: float
    training_min: float
    training_max: float
    p_value: float | None = None
    material: bool = False


class OutOfRange(Record):
    """Values outside the training range in a batch: ``features`` lists only the features with
    such rows; ``material`` names those above ``share_limit`` (``drift.out_of_range_share``) and
    beyond sampling noise: a data-quality alarm."""

    rows: int
    training_rows: int | None = None
    share_limit: float | None = None
    features: dict[str, OutOfRangeFeature] = Field(default_factory=dict)
    material: list[str] = Field(default_factory=list)


class SpecComparison(Record):
    """Which spec judged a version, and how the current spec file differs from it
    (:func:`models.stored_spec.judging_spec`; rules in ``docs/drift.md``, "Which spec judges a
    version").

    ``judged_with``: ``stored`` (the spec stored in the version's metadata) or ``current`` (the
    spec file, only when this code cannot read the stored one: ``stored_problem`` says why).
    ``stored_sha256``: the spec hash recorded with the version; ``current_sha256``: the current
    file's (:meth:`models.spec.ModelSpec.content_hash`; None when the file is missing or invalid:
    ``current_problem`` says why). ``differences``: the dotted paths of the fields where the current
    file differs from the stored spec (``drift.bins``, ``columns.Amount.max``; a field present in one
    only is named too), empty when they agree; ``from_current``: those of them taken from the
    current file all the same (the operational settings: the action on an alarm and, for the
    ``out_of_time`` batch, where the data is read). ``stored_problem`` also holds today's cross-field
    complaints about a stored spec that was judged with all the same (it was valid when trained).
    """

    judged_with: Literal["stored", "current"] = "stored"
    stored_sha256: str | None = None
    current_sha256: str | None = None
    differences: list[str] = Field(default_factory=list)
    from_current: list[str] = Field(default_factory=list)
    current_problem: str | None = None
    stored_problem: str | None = None

    SHOWN: ClassVar[int] = 12
    """Differing fields named in :meth:`sentence` at most (all are in ``differences``)."""

    def sentence(self, version: int | None = None) -> str:
        """The comparison in one line, for the CLI, the verdict artifact and the scoring summary."""
        of = f"v{version}" if version is not None else "the version"
        stored = f"sha256 {(self.stored_sha256 or '?')[:12]}…"
        if self.judged_with == "current":
            return (f"spec: judged with the current spec file (sha256 {(self.current_sha256 or '?')[:12]}…), not the "
                    f"spec stored with {of} ({stored}): {self.stored_problem}")
        head = f"spec: judged with the spec stored with {of} ({stored})"
        if self.stored_problem:
            head += f" (today's checks would refuse it: {self.stored_problem})"
        if self.current_sha256 is None:
            return f"{head}; the current spec file was not compared: {self.current_problem}"
        if not self.differences:
            same = "the current spec file is the same"
            if self.current_sha256 != self.stored_sha256:
                same += (f" (sha256 {self.current_sha256[:12]}…: the schema gained fields since, which take their "
                         "defaults in both)")
            return f"{head}; {same}"
        shown = ", ".join(self.differences[:self.SHOWN])
        more = f" and {len(self.differences) - self.SHOWN} more" if len(self.differences) > self.SHOWN else ""
        kept = [d for d in self.differences if d not in self.from_current]
        text = (f"{head}; the current spec file (sha256 {self.current_sha256[:12]}…) differs in "
                f"{len(self.differences)} field{'' if len(self.differences) == 1 else 's'}: {shown}{more}")
        if self.from_current:
            text += f"; taken from the current file: {', '.join(self.from_current)}"
        if kept:
            text += (f"; {'the others are' if self.from_current else 'these are'} not applied to this version "
                     "(train a new version to apply them)")
        return text


class MonitoringRecord(StoredRecord):
    """One line of ``monitoring.jsonl``: every value one monitoring run measured, not only alarms.

    ``ts``: ISO-8601 UTC start of the run; ``version``: the registry version monitored;
    ``verdict``: one of :data:`VERDICTS`; ``severity``: its :data:`SEVERITY`; ``action``: what
    the spec does on it (``retrain`` or ``alert``; None when it raises no event); ``summary``:
    the verdict and its reasons in words (``severity`` and ``action`` are None in records
    written before they existed). ``drift``: the PSI decision; ``evidently``: what the Evidently report did
    (both typed in :mod:`models.records.drift`); ``out_of_range``: values outside the training
    range (None in older records and for versions saved without the ranges);
    ``spec_comparison``: which spec judged the version and how the current spec file differs from
    it (:class:`SpecComparison`; None in records written before it existed); ``validation_warnings``:
    the batch validation's warnings, one line each (values made missing by ``on_invalid: missing``,
    a ``severity: warning`` column's failures; None when there were none, and in older records);
    ``var_backtest``: the batch's Value-at-Risk back-test (:func:`tasks.var_backtest.batch_var_backtest`;
    None without a ``var`` section, and in older records); ``segments``: the segment table
    (:class:`models.records.segments.SegmentRow` per value or band of the spec's ``segments``,
    :func:`tasks.segments.measure_segments`; measured, never part of the verdict; None without
    ``segments``, and in older records).
    """

    SCHEMA_VERSION: ClassVar[int] = MONITORING_SCHEMA_VERSION
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset({"severity", "action", "out_of_range", "spec_comparison",
                                                        "validation_warnings", "var_backtest", "segments"})

    ts: str
    model: str
    version: int
    run_id: str | None = None
    verdict: Verdict
    severity: str | None = None
    action: str | None = None
    summary: str
    batch: BatchInfo
    drift: DriftSummary
    performance: Performance
    evidently: EvidentlySummary | None = None
    out_of_range: OutOfRange | None = None
    spec_comparison: SpecComparison | None = None
    validation_warnings: list[str] | None = None
    var_backtest: dict[str, Any] | None = None
    segments: list[SegmentRow] | None = None

    def to_json(self) -> dict[str, Any]:
        """As :meth:`StoredRecord.to_json`, also without the keys added since version 1 inside
        ``performance`` while they are None (``below_majority``, the calibration test's)."""
        out = super().to_json()
        if isinstance(out.get("batch"), dict) and out["batch"].get("period") is None:
            out["batch"].pop("period", None)
        perf = out.get("performance") or {}
        if perf.get("below_majority") is None:
            perf.pop("below_majority", None)
        cal = perf.get("calibration")
        if isinstance(cal, dict):
            for key in Calibration.OMIT_IF_NONE:
                if cal.get(key) is None:
                    cal.pop(key, None)
        return out

    @property
    def alarm(self) -> bool:
        """Drift, a breach or feature drift: the ``finml.drift.detected`` event (retraining when
        :attr:`action` is ``retrain``)."""
        return self.verdict in ALARM_VERDICTS

    @property
    def data_quality_alarm(self) -> bool:
        """A stuck or broken feed and nothing worse: the ``finml.data-quality.alarm`` event."""
        return self.verdict == "data_quality_alarm"


class MonitoringSkipped(Record):
    """What a monitoring run returns when the batch has fewer usable rows than
    ``drift.min_rows``: verdict ``insufficient_data``, nothing measured and nothing recorded;
    ``spec_comparison`` and ``validation_warnings`` as in :class:`MonitoringRecord`."""

    model: str
    version: int
    verdict: str = "insufficient_data"
    summary: str
    batch: BatchInfo
    spec_comparison: SpecComparison | None = None
    validation_warnings: list[str] | None = None
