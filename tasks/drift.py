"""Drift of a batch against the reference sample: the PSI of every feature and of the score on
bins frozen from the reference, and the dataset-drift decision.

The binning and the PSI are in :mod:`tasks.psi`, one column's verdict and the state (fault) test
in :mod:`tasks.feature_drift`, the Evidently report for people in :mod:`tasks.evidently_report`;
this module combines the columns into :class:`DriftResult` and re-exports the public names. The
conventions, the fault tests, the verdict precedence and their sources are in ``docs/drift.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from models.records.drift import DriftRow, DriftSummary, FeatureDriftSummary
from models.spec import DriftSpec
from tasks.evidently_report import evidently_drift_report
from tasks.feature_drift import (
    TESTED_STATUSES,
    UNTESTED_STATUSES,
    FeatureDrift,
    absent_column,
    apply_psi_rule,
    column_drift,
    state_counts,
    state_test_pvalue,
)
from tasks.psi import MISSING_LABEL, OTHER_LABEL, Binning, DriftError, bin_shares, freeze_bins, psi, traffic_light


@dataclass
class DriftResult:
    """PSI drift of a batch: every feature, the score, and the dataset-drift decision.

    Attributes:
        features: one :class:`FeatureDrift` per feature, numeric then categorical, in the
            order given.
        score: the model score's drift (numeric bins), or None when no score column was given.
        tested: number of *judged* features (``FeatureDrift.judged``: a PSI verdict, or a state
            comparison of a constant / all-missing column), the drift share's denominator.
        drifted: names of the features whose status is ``significant``.
        drifted_share: ``len(drifted) / tested`` (0.0 when nothing was judged).
        dataset_drift: ``tested > 0 and drifted_share >= threshold_share``.
        batch_faults: names of the features whose ``batch_fault`` is set (stuck, broken or
            changed feed; not drift, but never stable, see :func:`tasks.monitor.decide_verdict`).
        threshold_share: ``drift.dataset_drift_share`` used for the decision.
        reference_rows, current_rows: rows of the two frames.
        seconds: wall time of :func:`compute_drift`.
        psi_threshold, psi_alpha: the rule that judged the PSI (``drift.psi_threshold``: ``fixed``
            or ``chi2``) and the chi2 rule's false discovery rate (``drift.psi_alpha``).
    """

    features: list[FeatureDrift]
    score: FeatureDrift | None
    tested: int
    drifted: list[str]
    drifted_share: float
    dataset_drift: bool
    threshold_share: float
    reference_rows: int
    current_rows: int
    seconds: float = 0.0
    batch_faults: list[str] = field(default_factory=list)
    psi_threshold: str = "fixed"
    psi_alpha: float = 0.01

    def top_features(self, k: int = 5) -> list[FeatureDrift]:
        """The ``k`` tested features with the largest PSI, largest first (ties by name)."""
        tested = [f for f in self.features if f.tested]
        return sorted(tested, key=lambda f: (-f.psi, f.column))[:k]

    def rows(self) -> list[DriftRow]:
        """One :class:`~models.records.drift.DriftRow` per feature, then the score (``role`` says which):
        PSI rounded to 6 decimals, missing shares to 4."""
        def row(f: FeatureDrift, role: str) -> DriftRow:
            rnd = lambda v, n: None if v is None else round(v, n)  # noqa: E731
            return DriftRow(column=f.column, role=role, kind=f.kind, status=f.status, psi=rnd(f.psi, 6),
                            bins=len(f.bins), reference_missing_share=rnd(f.reference_missing_share, 4),
                            current_missing_share=rnd(f.current_missing_share, 4), reference_rows=f.reference_rows,
                            current_rows=f.current_rows, note=f.note, decided_by=f.decided_by,
                            psi_p_value=_sig(f.psi_p_value), psi_p_adjusted=_sig(f.psi_p_adjusted))
        rows = [row(f, "feature") for f in self.features]
        if self.score is not None:
            rows.append(row(self.score, "score"))
        return rows

    def as_rows(self) -> list[dict[str, Any]]:
        """:meth:`rows` as plain dicts for a table artifact. Keys: column, role, kind, status, psi,
        bins, reference_missing_share, current_missing_share, reference_rows, current_rows, note."""
        return [r.model_dump(mode="json") for r in self.rows()]

    def summary(self) -> DriftSummary:
        """The decision as the ``drift`` section of the monitoring record (JSON: ``model_dump(mode="json")``).

        Holds the counts and shares, the score's PSI, the top 3 features, the batch faults and
        ``{feature: psi, status, note, decided_by, psi_p_value, psi_p_adjusted}``, the rule; ``not_tested``
        is derived from the features.
        """
        return DriftSummary(
            tested=self.tested, drifted=list(self.drifted), drifted_share=self.drifted_share,
            dataset_drift=self.dataset_drift, threshold_share=self.threshold_share,
            score_psi=None if self.score is None else self.score.psi,
            score_status=None if self.score is None else self.score.status,
            top_features=[f.column for f in self.top_features(3)], batch_faults=list(self.batch_faults),
            features={f.column: _feature_summary(f) for f in self.features},
            psi_threshold=self.psi_threshold, psi_alpha=self.psi_alpha,
        )


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    drift_spec: DriftSpec,
    score_column: str | None = None,
) -> DriftResult:
    """PSI of every feature (and of the score) of ``current`` on bins frozen from ``reference``.

    Args:
        reference: the reference sample (the version's ``reference.parquet``).
        current: the batch; every row is used, and neither frame is copied.
        numeric, categorical: the feature columns of each kind (id columns are not passed).
        drift_spec: bins, floor, traffic-light thresholds, the rule (``psi_threshold``, ``psi_alpha``),
            ``dataset_drift_share``, ``min_rows``.
        score_column: the model score column (present in both frames), binned as numeric.

    Returns:
        A :class:`DriftResult`. Bad columns (absent, all missing, constant, non-numeric) get
        a status and a note instead of raising. The drift share is over the *judged* features
        (a PSI verdict, or a state comparison that is not the same single state on both sides);
        faulted and one-sided constant features count as not drifted, so a broken feed cannot
        inflate it. With ``psi_threshold: chi2`` the p-values are adjusted by Benjamini-Hochberg
        across the PSI-tested features (the score is judged alone).
        ``dataset_drift = judged > 0 and share >= drift_spec.dataset_drift_share``;
        the score's PSI (prediction drift) is reported beside the features, outside the share.
    """
    t0 = time.perf_counter()
    features: list[FeatureDrift] = []
    for kind, names in (("numeric", numeric), ("categorical", categorical)):
        for name in names:
            features.append(absent_column(name, kind, reference, current)
                            or column_drift(name, reference[name], current[name], kind, drift_spec))
    score = None
    if score_column is not None:
        score = (absent_column(score_column, "numeric", reference, current)
                 or column_drift(score_column, reference[score_column], current[score_column], "numeric", drift_spec))
    apply_psi_rule(features, drift_spec)  # the chi2 rule's Benjamini-Hochberg runs across the features
    judged = [f for f in features if f.judged]
    drifted = [f.column for f in judged if f.status == "significant"]
    share = len(drifted) / len(judged) if judged else 0.0
    return DriftResult(
        features=features, score=score, tested=len(judged), drifted=drifted, drifted_share=share,
        dataset_drift=bool(judged) and share >= drift_spec.dataset_drift_share,
        threshold_share=drift_spec.dataset_drift_share, reference_rows=len(reference), current_rows=len(current),
        seconds=time.perf_counter() - t0, batch_faults=[f.column for f in features if f.batch_fault],
        psi_threshold=drift_spec.psi_threshold, psi_alpha=drift_spec.psi_alpha,
    )


def _feature_summary(f: FeatureDrift) -> FeatureDriftSummary:
    """The feature's entry in the summary; the rule and p-values only for a tested feature."""
    extra = {} if f.decided_by is None else {"decided_by": f.decided_by, "psi_p_value": f.psi_p_value,
                                             "psi_p_adjusted": f.psi_p_adjusted}
    return FeatureDriftSummary(psi=f.psi, status=f.status, note=f.note, **extra)


def _sig(v: float | None) -> float | None:
    """A p-value to 6 significant digits for the table artifact (None stays None)."""
    return None if v is None else float(f"{v:.6g}")


__all__ = [
    "Binning", "DriftError", "DriftResult", "DriftSummary", "FeatureDrift", "MISSING_LABEL", "OTHER_LABEL",
    "TESTED_STATUSES", "UNTESTED_STATUSES", "bin_shares", "column_drift", "compute_drift", "evidently_drift_report",
    "freeze_bins", "psi", "state_counts", "state_test_pvalue", "traffic_light",
]
