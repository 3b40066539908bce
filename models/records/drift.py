"""Typed records of drift monitoring: the PSI drift summary and the Evidently report summary.

Both are sections of the monitoring record (``monitoring.jsonl``, keys ``drift`` and ``evidently``):
their ``model_dump(mode="json")`` is the JSON written there, and a line written before these types
existed reads back into them unchanged. What the values mean is in ``docs/drift.md``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_serializer

from models.records import Record

TESTED_STATUSES = ("stable", "moderate", "significant")
"""Statuses of a feature whose PSI was computed and judged (the traffic light)."""
UNTESTED_STATUSES = ("constant", "all_missing", "insufficient_data", "error")
"""Statuses of a feature reported without a PSI verdict; never counted as drift."""


def _omit_unset(model: Record, out: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """``out`` without the keys of ``names`` the record was not given (a line written before those
    fields existed dumps back unchanged)."""
    for name in names:
        if name not in model.model_fields_set:
            out.pop(name, None)
    return out


class FeatureDriftSummary(Record):
    """One feature in the drift summary.

    Attributes:
        psi: the population stability index (unitless, >= 0), or None when not tested.
        status: one of :data:`TESTED_STATUSES` or :data:`UNTESTED_STATUSES`.
        note: why the column was not tested, a fault, or an unreliable traffic light ("" if none).
        decided_by: the rule that set the status of a tested feature, ``"fixed"`` or ``"chi2"``
            (``drift.psi_threshold``); None when not tested.
        psi_p_value, psi_p_adjusted: the PSI's chi-square p-value under no change, raw and after
            Benjamini-Hochberg across the batch's tested features (None when not tested).
        The last three are absent from records written before they existed.
    """

    psi: float | None
    status: str
    note: str = ""
    decided_by: str | None = None
    psi_p_value: float | None = None
    psi_p_adjusted: float | None = None

    @model_serializer(mode="wrap")
    def _omit_unset_new_fields(self, handler: Any) -> dict[str, Any]:
        return _omit_unset(self, handler(self), ("decided_by", "psi_p_value", "psi_p_adjusted"))


class DriftSummary(Record):
    """The PSI drift decision of one batch: the ``drift`` section of a monitoring record.

    Attributes:
        tested: features judged for drift (a PSI verdict, or a state comparison of a constant or
            all-missing column), the denominator of ``drifted_share``.
        drifted: names of the features whose status is ``significant``.
        drifted_share: ``len(drifted) / tested`` in [0, 1] (0.0 when nothing was judged).
        dataset_drift: ``tested > 0 and drifted_share >= threshold_share``.
        threshold_share: ``drift.dataset_drift_share`` of the spec (absent from the oldest records).
        score_psi, score_status: the model score's PSI and status (None without a score column).
        top_features: up to 3 tested features with the largest PSI, largest first.
        batch_faults: constant or all-missing features whose states moved beyond sampling noise
            and materially (stuck, broken or changed feeds); absent from the oldest records.
        features: per feature, in the order monitored.
        psi_threshold, psi_alpha: the rule that made a feature ``significant`` (``drift.psi_threshold``,
            ``fixed`` or ``chi2``) and the chi2 rule's false discovery rate; absent from older records.
    """

    tested: int
    drifted: list[str]
    drifted_share: float
    dataset_drift: bool
    threshold_share: float | None = None
    score_psi: float | None = None
    score_status: str | None = None
    top_features: list[str] = Field(default_factory=list)
    batch_faults: list[str] = Field(default_factory=list)
    features: dict[str, FeatureDriftSummary] = Field(default_factory=dict)
    psi_threshold: str | None = None
    psi_alpha: float | None = None

    @model_serializer(mode="wrap")
    def _omit_unset_new_fields(self, handler: Any) -> dict[str, Any]:
        return _omit_unset(self, handler(self), ("psi_threshold", "psi_alpha"))

    @property
    def not_tested(self) -> dict[str, str]:
        """``{feature: status}`` of the features without a PSI verdict (not written to JSON)."""
        return {name: f.status for name, f in self.features.items() if f.status not in TESTED_STATUSES}


class EvidentlyColumn(Record):
    """Evidently's verdict on one column, as read from its snapshot.

    Attributes:
        method: Evidently's drift method (``wasserstein``, ``jensenshannon``, ``psi``, ``ks`` ...).
        threshold: the method's threshold (a p-value for tests, a distance otherwise).
        score: the method's value on the samples (a p-value or a distance).
        drifted: Evidently's test failed (p-value below / distance at or above the threshold);
            None when the snapshot held no test for the column.
        description: Evidently's sentence for the test; left out of the JSON when the snapshot
            held no test (as the code before these types did).
    """

    method: str | None = None
    threshold: float | None = None
    score: float | None = None
    drifted: bool | None = None
    description: str | None = None

    @model_serializer(mode="wrap")
    def _omit_unset_description(self, handler: Any) -> dict[str, Any]:
        out = handler(self)
        if "description" not in self.model_fields_set:
            out.pop("description", None)
        return out


class EvidentlySummary(Record):
    """What the Evidently report did: the ``evidently`` section of a monitoring record.

    Attributes:
        ran: Evidently produced a report (and ``html_path`` was written).
        reason: why Evidently was not called (empty or small batch, no usable column), or None.
        error: ``"ExceptionType: message"`` when Evidently raised, or None.
        html_path: the HTML report written, or None.
        current_rows, reference_rows: rows of the two frames.
        current_sample_rows, reference_sample_rows: rows of each random sample sent.
        sample_note: the banner sentence of the report (or why it was not run).
        columns: the columns sent to Evidently.
        skipped: ``{column: reason}`` for the columns not sent.
        drifted_count, drifted_share, dataset_drift: Evidently's own decision over the columns
            sent (None when it did not run).
        per_column: Evidently's verdict per column sent.
        seconds: wall time, sampling and HTML included.
    """

    ran: bool
    reason: str | None = None
    error: str | None = None
    html_path: str | None = None
    current_rows: int
    reference_rows: int
    current_sample_rows: int
    reference_sample_rows: int
    sample_note: str
    columns: list[str] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict)
    drifted_count: int | None = None
    drifted_share: float | None = None
    dataset_drift: bool | None = None
    per_column: dict[str, EvidentlyColumn] = Field(default_factory=dict)
    seconds: float = 0.0


class DriftRow(Record):
    """One row of the per-feature drift table (the ``drift`` table artifact of a monitoring run).

    Attributes:
        column, role: the column and ``"feature"`` or ``"score"``.
        kind: ``"numeric"`` or ``"categorical"``.
        status: as in :class:`FeatureDriftSummary`.
        psi: rounded to 6 decimals (None when not tested).
        bins: number of frozen bins (the missing bin included).
        reference_missing_share, current_missing_share: rounded to 4 decimals.
        reference_rows, current_rows: rows of the two frames.
        note: as in :class:`FeatureDriftSummary`.
        decided_by, psi_p_value, psi_p_adjusted: as in :class:`FeatureDriftSummary` (p-values rounded
            to 6 significant digits).
    """

    column: str
    role: str
    kind: str
    status: str
    psi: float | None
    bins: int
    reference_missing_share: float | None
    current_missing_share: float | None
    reference_rows: int
    current_rows: int
    note: str
    decided_by: str | None = None
    psi_p_value: float | None = None
    psi_p_adjusted: float | None = None


__all__ = [
    "DriftRow", "DriftSummary", "EvidentlyColumn", "EvidentlySummary", "FeatureDriftSummary",
    "TESTED_STATUSES", "UNTESTED_STATUSES",
]
