"""Typed rows of the segment table (:func:`tasks.segments.measure_segments`): one per value (or
band) of each column of a spec's ``segments``, kept in the monitoring record
(:attr:`models.records.monitoring.MonitoringRecord.segments`) and shown in its markdown. What each
figure is and the minimum-size rule: ``docs/drift.md``, "Segments"."""

from __future__ import annotations

from pydantic import Field

from models.records import Record


class SegmentPsi(Record):
    """One column's PSI inside a segment, on bins frozen on the reference rows of that segment
    (:func:`tasks.drift.compute_drift`): ``psi`` (unitless; None when not tested) and ``status``
    (``stable`` / ``moderate`` / ``significant``, or why it was not tested: ``insufficient_data``,
    ``constant``, ``all_missing``, ``absent``, ``error``)."""

    psi: float | None = None
    status: str


class SegmentRow(Record):
    """One segment: the rows of ``column`` whose value (or band) is ``segment``.

    ``reference_rows`` / ``current_rows``: rows of the segment in the reference sample (None without
    one) and in the batch; ``reference_share`` / ``current_share``: those as shares of each frame.
    ``too_small``: fewer batch rows than ``fairness.min_group_rows``; such a segment is too small to
    judge and has no figure but its rows. ``note``: what was not measured and why, in words (None when
    everything was). Drift (with a reference sample of at least ``fairness.min_group_rows`` segment
    rows): ``score_psi`` / ``score_status``, ``features`` (each feature's :class:`SegmentPsi`; the
    segment column itself left out unless banded) and ``drifted`` (features at ``significant``).
    Outcomes (a classifier's batch with labels; at least ``fairness.min_group_rows`` labelled rows):
    ``labelled_rows``, ``events``, ``event_rate``, ``mean_predicted`` (the mean PD), ``roc_auc``
    (None when the labels hold one class), ``brier`` and ``jeffreys_p_value`` (one-sided Jeffreys
    test of the mean PD against the events, :func:`models.backtest_statistics.jeffreys_test`: small
    when there are more events than the mean PD allows).
    """

    column: str
    segment: bool | int | float | str
    reference_rows: int | None = None
    current_rows: int
    reference_share: float | None = None
    current_share: float | None = None
    too_small: bool = False
    note: str | None = None
    score_psi: float | None = None
    score_status: str | None = None
    features: dict[str, SegmentPsi] = Field(default_factory=dict)
    drifted: list[str] = Field(default_factory=list)
    labelled_rows: int | None = None
    events: int | None = None
    event_rate: float | None = None
    mean_predicted: float | None = None
    roc_auc: float | None = None
    brier: float | None = None
    jeffreys_p_value: float | None = None

    @property
    def largest_feature_psi(self) -> tuple[str, float] | None:
        """The feature with the largest PSI in the segment and that PSI (ties by name), None when no
        feature was tested."""
        tested = [(name, f.psi) for name, f in self.features.items() if f.psi is not None]
        return min(tested, key=lambda t: (-t[1], t[0])) if tested else None


__all__ = ["SegmentPsi", "SegmentRow"]
