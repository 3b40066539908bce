"""Monitoring a batch against a registry version: inputs, performance, verdict, history.

This module loads and checks the batch, judges performance once labels have arrived, turns the
drift measurements of :mod:`tasks.drift` into a verdict and builds the typed record
(:class:`models.records.monitoring.MonitoringRecord`) that the model's monitoring history keeps;
see ``docs/registry.md`` for that record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.errors import DataError
from models.records.drift import EvidentlySummary
from models.records.monitoring import MonitoringRecord, SpecComparison
from models.records.segments import SegmentRow
from models.spec import METRICS, ModelSpec
from tasks.drift import DriftResult
from tasks.evaluate import MetricError, batch_baselines, compute_metrics
from tasks.load import (
    DataPreparationError,
    DataSourceError,
    data_period,
    fingerprint,
    load_source,
    modelling_table,
    parse_declared_types,
    read_table_file,
    split_out_of_time,
)
from tasks.report import period_text
from tasks.step import step
from tasks.verdict import (
    calibration_sentence,
    decide_verdict,
    event_action,
    feature_drift_names,
    judge_calibration,
    severity,
)

OUT_OF_TIME = "out_of_time"
"""Batch name meaning: the spec's held-back later period of its own source (demos)."""

MIN_LABELS = 30
"""Fewest labelled rows (and, for classifiers, at least one of each class) to judge performance."""


class MonitoringInputError(DataError):
    """The batch cannot be monitored or scored (empty, no out-of-time period, no usable rows)."""


@step("load-batch")
def load_batch(spec: ModelSpec, batch: str) -> tuple[pd.DataFrame, str]:
    """Read a batch: a CSV/Parquet path, or ``"out_of_time"`` for the spec's later period.

    Returns ``(rows with declared types parsed, a label for reports)``.

    Raises:
        DataSourceError: unreadable or missing file (named).
        MonitoringInputError: an empty batch, or ``out_of_time`` for a spec without one.
        DataPreparationError: dates not in the declared format (column named).
    """
    if batch == OUT_OF_TIME:
        if spec.out_of_time is None:
            raise MonitoringInputError(f"{spec.name}: the spec holds back no out-of-time period; pass a batch file")
        frame = split_out_of_time(parse_declared_types(load_source(spec), spec), spec)[1]
        label = f"{spec.name} out-of-time period"
    else:
        try:
            frame = parse_declared_types(read_table_file(batch, text_columns=spec.text_columns), spec)
        except DataPreparationError as err:  # name the file as well as the column
            raise DataPreparationError(f"{batch}: {err}", column=err.column, examples=err.examples) from None
        label = str(batch)
    if frame.empty:
        raise MonitoringInputError(f"{label}: the batch is empty (0 rows); nothing to monitor or score")
    return frame, label


@step("batch-table")
def batch_table(spec: ModelSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The batch's modelling table (features; the label where it is known)."""
    table = modelling_table(frame, spec, require_target=False)
    if table.empty:
        history = getattr(spec.builder, "history_rows", None)
        need = (f": each scored row needs {history} earlier rows of history, so a batch needs at least "
                f"{history + 1} rows ({len(frame)} given)") if history else ""
        raise MonitoringInputError(f"{spec.name}: no row of the batch has complete features{need}")
    return table


TOLERANCE_EPS = 1e-9
"""A worsening must exceed the tolerance by more than this to be a breach (AUC 0.80 -> 0.75
against a tolerance of 0.05 is 0.050000000000000044 in floating point, and is no breach)."""


def label_rate_fault(events: int, labels: int, expected: tuple[float, float], alpha: float) -> str | None:
    """The label feed's event rate against the spec's expected range, by an exact binomial test.

    Args:
        events, labels: positive labels and labelled rows of the batch.
        expected: ``target.expected_positive_rate`` (low, high), shares in [0, 1].
        alpha: ``drift.fault_alpha``.

    Returns:
        None when the observed rate is inside the range, or outside it but plausible for a
        true rate at the nearer end of the range (one-sided exact binomial p-value
        ``P(X <= events | labels, low)`` or ``P(X >= events | labels, high)`` at least
        ``alpha``; ``scipy.stats.binom``); else the fault in words. So 0 events in 40 labels
        against [0.02, 0.12] (p = 0.45) is no fault, and 0 in 400 (p = 3e-4) is.
    """
    if labels == 0:
        return None
    rate, (low, high) = events / labels, expected
    if low <= rate <= high:
        return None
    from scipy.stats import binom

    p_value = float(binom.cdf(events, labels, low)) if rate < low else float(binom.sf(events - 1, labels, high))
    if p_value >= alpha:
        return None
    return (f"the labelled rows' event rate {rate:.3f} is outside the expected [{low:g}, {high:g}] "
            f"({labels} labels, exact binomial p = {p_value:.2g} < drift.fault_alpha {alpha:g})")


def has_labels(spec: ModelSpec, table: pd.DataFrame) -> bool:
    """True when the batch has the label column with at least one known value."""
    return spec.target_column in table.columns and table[spec.target_column].notna().any()


def performance(
    spec: ModelSpec, table: pd.DataFrame, scores: np.ndarray, holdout_metrics: dict[str, float],
    train_event_rate: float | None = None,
) -> dict[str, Any]:
    """Performance on the labelled rows of the batch, against the version's holdout figures.

    For each metric the *worsening* is ``holdout - batch`` when higher is better and
    ``batch - holdout`` when lower is better; a worsening beyond the metric's tolerance
    (:meth:`models.spec.DriftSpec.tolerance`: the spec's, else the catalogue's default) is a
    breach. Probability models also get calibration-in-the-large: mean predicted probability
    against the observed event rate (and their ratio), with the Brier score, and its test
    (:func:`tasks.verdict.judge_calibration`), on every batch with at least ``MIN_LABELS`` labels.

    Returns a dict with ``status`` (``"evaluated"``, ``"no_labels"``, ``"insufficient_labels"``
    (fewer than ``MIN_LABELS``) or ``"single_class_labels"`` (rank metrics undefined; the
    calibration in the large is still given)), ``labelled_rows``, ``metrics``,
    ``holdout_metrics``, ``changes``, ``calibration``, ``breaches`` (list of metric names) and
    ``label_fault``: for a classifier with at least ``MIN_LABELS`` labels, an observed event
    rate outside the spec's ``target.expected_positive_rate`` beyond sampling noise (see
    :func:`label_rate_fault`), in words (else None) — a broken label feed or a population
    nothing like the one modelled, which training would reject. ``changes[metric]["worsening"]``
    is None for a metric without a better direction (``calibration_ratio``, judged by the
    calibration test instead). ``below_majority``: a direction model whose directional accuracy
    on the batch is below the always-majority forecast's, in words (else None).
    """
    out: dict[str, Any] = {"status": "no_labels", "labelled_rows": 0, "metrics": {}, "holdout_metrics": holdout_metrics,
                           "changes": {}, "calibration": None, "breaches": [], "label_fault": None,
                           "below_majority": None}
    if not has_labels(spec, table):
        return out
    mask = table[spec.target_column].notna().to_numpy()
    y = table[spec.target_column].to_numpy(dtype=float)[mask]
    p = np.asarray(scores, dtype=float)[mask]
    out["labelled_rows"] = int(mask.sum())
    if mask.sum() < MIN_LABELS:
        out["status"] = "insufficient_labels"
        return out
    if spec.is_classifier:
        mean_p, rate = float(p.mean()), float(y.mean())
        out["calibration"] = {"mean_predicted": mean_p, "observed_rate": rate,
                              "ratio": mean_p / rate if rate > 0 else None, "brier": float(np.mean((p - y) ** 2)),
                              **judge_calibration(int(y.sum()), int(mask.sum()), mean_p, spec.drift)}
        expected = spec.target.expected_positive_rate
        if expected is not None:
            out["label_fault"] = label_rate_fault(int(y.sum()), int(mask.sum()), expected, spec.drift.fault_alpha)
        if len(np.unique(y)) < 2:
            out["status"] = "single_class_labels"
            return out
    rows = np.flatnonzero(mask)
    cols = spec.protected_columns
    protected = table[cols].iloc[rows].reset_index(drop=True) if cols and set(cols) <= set(table.columns) else None
    try:
        metrics = compute_metrics(spec, y, p, batch_baselines(spec, table, rows, train_event_rate), protected)
    except MetricError as err:
        out["status"] = f"insufficient_labels: {err}"
        return out
    out["status"] = "evaluated"
    out["metrics"] = metrics
    for name, value in metrics.items():
        ref = holdout_metrics.get(name)
        if ref is None or name not in METRICS or not (math.isfinite(value) and math.isfinite(ref)):
            continue
        direction = METRICS[name].higher_is_better
        worsening = None if direction is None else (ref - value) if direction else (value - ref)
        tolerance = None if direction is None else spec.drift.tolerance(name)
        # "beyond" the tolerance: a worsening equal to it up to float rounding is not a breach
        breach = tolerance is not None and worsening is not None and worsening - tolerance > TOLERANCE_EPS
        out["changes"][name] = {"batch": value, "holdout": ref, "worsening": worsening, "tolerance": tolerance,
                                "breach": breach}
        if breach:
            out["breaches"].append(name)
    majority = metrics.get("majority_directional_accuracy")
    if spec.task == "direction" and majority is not None and metrics["directional_accuracy"] < majority:
        out["below_majority"] = (f"directional accuracy {metrics['directional_accuracy']:.4f} is below the "
                                 f"always-majority forecast's {majority:.4f} on this batch")
    return out


@dataclass
class MonitoringOutcome:
    """Everything one monitoring run measured (the record kept in the history), and the events it raises."""

    record: MonitoringRecord

    @property
    def alarm(self) -> bool:
        """Drift, a breach or feature drift: the ``finml.drift.detected`` event (retraining
        when the record's ``action`` is ``retrain``)."""
        return self.record.alarm

    @property
    def data_quality_alarm(self) -> bool:
        """A stuck or broken feed and nothing worse: the ``finml.data-quality.alarm`` event."""
        return self.record.data_quality_alarm

    def event_payload(self) -> dict[str, Any]:
        """Payload of ``finml.drift.detected``: what a retraining run or a person needs first.

        ``severity`` (``critical`` / ``warning``) and ``action`` (``retrain`` / ``alert``, the
        spec's ``drift.on_drift`` or ``drift.on_feature_drift``) come first; the calibration keys
        are None for a batch without the calibration test."""
        r = self.record
        cal = r.performance.calibration
        return {
            "model": r.model, "version": r.version, "verdict": r.verdict, "severity": r.severity, "action": r.action,
            "drift_share": r.drift.drifted_share, "drifted_features": list(r.drift.drifted),
            "top_features": list(r.drift.top_features), "score_psi": r.drift.score_psi,
            "breached_metrics": list(r.performance.breaches), "batch_faults": list(r.drift.batch_faults),
            "label_fault": r.performance.label_fault,
            "calibration_breach": r.performance.calibration_breach,
            "mean_predicted": None if cal is None else cal.mean_predicted,
            "observed_rate": None if cal is None else cal.observed_rate,
            "calibration_p_value": None if cal is None else cal.p_value,
            "out_of_range_features": list(r.out_of_range.material) if r.out_of_range else [],
            "var_zone": _var(r, "zone"), "var_exceptions": _var(r, "exceptions"), "var_days": _var(r, "days"),
            "batch": r.batch.label,
            "run_id": r.run_id, "reason": r.summary,
        }


def _var(record: MonitoringRecord, key: str) -> Any:
    """A value of the batch's Basel traffic light (None without a VaR back-test)."""
    light = (record.var_backtest or {}).get("traffic_light") or {}
    return light.get(key)


def build_record(
    spec: ModelSpec, *, version: int, run_id: str | None, batch_label: str, frame: pd.DataFrame,
    table: pd.DataFrame, drift: DriftResult, evidently: EvidentlySummary, perf: dict[str, Any], ts: str,
    out_of_range: dict[str, Any] | None = None, spec_comparison: SpecComparison | None = None,
    validation_warnings: list[str] | None = None, var_backtest: dict[str, Any] | None = None,
    segments: list[SegmentRow] | None = None,
) -> MonitoringOutcome:
    """Assemble the history record: every value, not only alerts.

    Args:
        drift: the PSI measurements (:class:`tasks.drift.DriftResult`); evidently: the Evidently
            summary; perf: :func:`performance`'s result; ts: ISO-8601 UTC start of the run;
            out_of_range: :func:`tasks.ranges.out_of_range_report`'s result (None: not measured);
            spec_comparison: which spec judged and how the current file differs
            (:func:`models.stored_spec.judging_spec`; None: not compared); validation_warnings: the
            batch validation's warnings (:meth:`tasks.expectations.ValidationReport.warning_sentences`;
            stored as None when there are none); var_backtest: the batch's VaR back-test
            (:func:`tasks.var_backtest.batch_var_backtest`; None without a ``var`` section); segments:
            the segment table (:func:`tasks.segments.measure_segments`; None without ``segments``),
            recorded as measured: it does not enter the verdict.

    Raises:
        pydantic.ValidationError: a value of the wrong type for the record (a bug, named).
    """
    fp = fingerprint(frame)
    faults = list(drift.batch_faults)
    label_fault = perf.get("label_fault")
    material_oor = list((out_of_range or {}).get("material", []))
    cal = perf.get("calibration") or {}
    score_status = None if drift.score is None else drift.score.status
    moved = feature_drift_names(drift.drifted, score_status)
    # labels of one class with a label fault: a feed delivering one class, and the calibration test is the
    # label-rate test again; the fault, not a calibration breach, is the finding (docs/drift.md)
    one_class_fault = bool(label_fault) and perf["status"] == "single_class_labels"
    verdict = decide_verdict(drift.dataset_drift, perf["breaches"], faults, drift.tested, label_fault,
                             calibration_breach=bool(cal.get("breach")) and not one_class_fault, feature_drift=moved,
                             out_of_range=material_oor,
                             var_red_zone=((var_backtest or {}).get("traffic_light") or {}).get("zone") == "red")
    top = drift.top_features(3)
    parts = [f"{len(drift.drifted)} of {drift.tested} features drifted (share {drift.drifted_share:.2f}, "
             f"dataset drift at {spec.drift.dataset_drift_share:.2f})"]
    if moved and not drift.dataset_drift:
        psi_of = {f.column: f.psi for f in drift.features} | {"score": None if drift.score is None else drift.score.psi}
        parts.append(f"feature drift (PSI >= {spec.drift.psi_significant:g}): "
                     + ", ".join(f"{name} {psi_of[name]:.3f}" for name in sorted(moved, key=lambda n: (-psi_of[n], n))))
    if faults:
        parts.append("stuck, broken or changed feed (a constant or all-missing column whose rows at its value, "
                     "at other values and missing moved beyond sampling noise): " + ", ".join(faults))
    if label_fault:
        parts.append(f"label {spec.target_column}: {label_fault}")
    if out_of_range and out_of_range.get("features"):
        from tasks.ranges import out_of_range_text

        parts.append(out_of_range_text(out_of_range))
    if drift.tested == 0:
        parts.append("no feature could be drift-tested: " + ", ".join(
            f"{f.column} {f.status}" for f in drift.features))
    if top:
        parts.append("top PSI: " + ", ".join(f"{f.column} {f.psi:.3f}" for f in top))
    if drift.score is not None and drift.score.psi is not None:
        parts.append(f"score PSI {drift.score.psi:.3f}")
    if perf["status"] == "evaluated":
        parts.append("performance breaches: " + (", ".join(perf["breaches"]) or "none"))
    else:
        parts.append(f"performance: {perf['status']}")
    if cal:
        parts.append(("calibration breach: " if cal.get("breach") else "calibration: ") + calibration_sentence(cal))
    if perf.get("below_majority"):
        parts.append(perf["below_majority"])
    if var_backtest is not None:
        from tasks.var_backtest import var_sentence

        parts.append(var_sentence(var_backtest))
    record = MonitoringRecord(
        ts=ts, model=spec.name, version=version, run_id=run_id, verdict=verdict, severity=severity(verdict),
        action=event_action(verdict, spec.drift),
        summary=f"{verdict}: " + "; ".join(parts),
        batch={"label": batch_label, "rows": int(len(frame)), "modelled_rows": int(len(table)), "sha256": fp.sha256,
               "period": data_period(frame, spec)},
        drift=drift.summary(),
        performance=perf,
        evidently=evidently,
        out_of_range=out_of_range,
        spec_comparison=spec_comparison,
        validation_warnings=list(validation_warnings) if validation_warnings else None,
        var_backtest=var_backtest,
        segments=segments,
    )
    return MonitoringOutcome(record)


def drift_markdown(record: MonitoringRecord) -> str:
    """The verdict in words, the batch, which spec judged (and how the current spec file differs),
    the top drifted features, and the per-feature table."""
    d = record.drift
    lines = [
        f"# Monitoring {record.model} v{record.version}: **{record.verdict}**",
        "",
        record.summary,
        "",
        f"Batch: {record.batch.label} ({record.batch.rows} rows"
        + (f", period {period_text(record.batch.period)}" if record.batch.period else "")
        + f", SHA-256 `{(record.batch.sha256 or '')[:16]}…`).",
        "",
        *([record.spec_comparison.sentence(record.version) + ".", ""] if record.spec_comparison else []),
        *([*(f"Validation warning: {w}" for w in record.validation_warnings), ""] if record.validation_warnings else []),
        "| feature | PSI | status | note |",
        "|---|---|---|---|",
    ]
    ordered = sorted(d.features.items(), key=lambda kv: -(kv[1].psi if kv[1].psi is not None else -1))
    for name, f in ordered:
        psi = "-" if f.psi is None else f"{f.psi:.4f}"
        lines.append(f"| {name} | {psi} | {f.status} | {f.note or ''} |")
    if d.score_psi is not None:
        lines.append(f"| (model score) | {d.score_psi:.4f} | {d.score_status} | prediction drift |")
    perf = record.performance
    if perf.status == "evaluated":
        lines += ["", "| metric | batch | holdout | worsening | tolerance | breach |", "|---|---|---|---|---|---|"]
        for name, c in perf.changes.items():
            tol = "-" if c.tolerance is None else f"{c.tolerance:g}"
            worse = "-" if c.worsening is None else f"{c.worsening:+.4f}"
            lines.append(f"| {name} | {c.batch:.4f} | {c.holdout:.4f} | {worse} | {tol} | {'YES' if c.breach else ''} |")
    if perf.calibration:
        lines += ["", f"Calibration{' BREACH' if perf.calibration.breach else ''}: "
                  f"{calibration_sentence(perf.calibration)}."]
    if record.var_backtest is not None:
        from tasks.var_backtest import var_sentence

        lines += ["", var_sentence(record.var_backtest) + "."]
    if record.segments:
        from tasks.segments import segments_markdown

        lines += ["", "Segments (measured, not part of the verdict):", "", segments_markdown(record.segments)]
    ev = record.evidently
    if ev is not None and ev.html_path:  # its front-end address with FINML_UI_URL (tasks.ui_files.file_reference)
        from tasks.ui_files import file_reference

        lines += ["", f"Evidently report: {file_reference(ev.html_path)} ({ev.sample_note})"]
    return "\n".join(lines)


def reports_folder(reports_root: Path, model: str, ts: str, run_id: str | None = None,
                   registry_root: Path | None = None, kind: str = "monitoring") -> Path:
    """``<reports_root>/<model>/<kind>/<timestamp>-<run>/`` (created, never shared; ``kind``:
    ``monitoring`` or ``backtest``).

    The run id (or a random suffix outside Prefect) keeps two monitoring runs of one model in
    the same second from writing into one folder.

    Raises:
        UsageError: the folder would lie inside the registry (``registry_root``, None: the
            ``FINML_REGISTRY_DIR`` setting), after resolving symlinks; nothing is created.
    """
    import uuid

    from models.registry_tree import refuse_inside_registry

    suffix = (run_id or uuid.uuid4().hex)[:8]
    stamp = ts.replace(":", "").replace("+0000", "Z")
    folder = Path(reports_root) / model / kind / f"{stamp}-{suffix}"
    refuse_inside_registry(folder, registry_root, f"the {kind} reports folder (FINML_REPORTS_DIR)")
    folder.mkdir(parents=True, exist_ok=False)
    return folder


__all__ = [
    "OUT_OF_TIME", "MonitoringInputError", "DataSourceError", "load_batch", "batch_table", "performance",
    "decide_verdict", "build_record", "MonitoringOutcome", "drift_markdown", "reports_folder",
]


# --------------------------------------------------------------------------- Prefect tasks


@step("measure-drift")
def measure_drift(spec: ModelSpec, reference: pd.DataFrame, table: pd.DataFrame, scores: np.ndarray) -> DriftResult:
    """PSI of every feature and of the score, on bins frozen from the reference (every row).

    Adds to :func:`tasks.drift.compute_drift` the batch's scores as a ``score`` column and the
    spec's feature lists and drift settings. Returns its :class:`tasks.drift.DriftResult`.
    """
    from tasks.drift import compute_drift

    current = table.assign(score=scores)
    return compute_drift(reference, current, spec.numeric_features, spec.categorical_features, spec.drift,
                         score_column="score")


@step("evidently-report")
def evidently_report(spec: ModelSpec, reference: pd.DataFrame, table: pd.DataFrame, scores: np.ndarray,
                     folder: Path, drift: DriftResult | None = None) -> EvidentlySummary:
    """Evidently DataDrift and data-summary report on a bounded sample, saved as HTML; with the PSI
    decision ``drift``, its banner gives both drifted counts."""
    from tasks.drift import evidently_drift_report

    current = table.assign(score=scores)
    return evidently_drift_report(
        reference, current, spec.numeric_features + ["score"], spec.categorical_features, spec.drift,
        html_path=Path(folder) / "drift_report.html", title=f"{spec.name}: drift against the reference sample",
        psi_drifted=None if drift is None else len(drift.drifted), psi_judged=None if drift is None else drift.tested,
        psi_names=None if drift is None else feature_drift_names(
            drift.drifted, None if drift.score is None else drift.score.status),
    )


@step("assess-performance")
def assess_performance(spec: ModelSpec, table: pd.DataFrame, scores: np.ndarray, metadata: dict) -> dict[str, Any]:
    """See :func:`performance`; holdout figures and the training event rate come from the version."""
    return performance(spec, table, scores, metadata["metrics"], metadata.get("data", {}).get("event_rate"))


@step("record-monitoring")
def record_monitoring(spec: ModelSpec, registry_root: Path, **kwargs: Any) -> MonitoringOutcome:
    """Build the record (see :func:`build_record`) and append it to the monitoring history."""
    from models.registry import ModelRegistry

    outcome = build_record(spec, **kwargs)
    ModelRegistry(registry_root, spec.name).append_monitoring(outcome.record)
    return outcome
