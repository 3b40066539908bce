"""Monitoring and scoring flows.

``monitor_model``: batch → validate (serving suite) → score with a version → PSI drift vs the
version's reference sample → Evidently report → performance (when labels arrived) → the segment
table of the spec's ``segments`` (measured, not part of the verdict; :mod:`tasks.segments`) → history,
artifacts, and the ``finml.drift.detected`` event on dataset drift, a performance or calibration
breach or feature drift (the retraining trigger listens to it when its ``finml.action`` is
``retrain``), or ``finml.data-quality.alarm`` when the only finding is a
stuck, broken or changed feed (a constant or all-missing feature whose states moved beyond sampling
noise, or an implausible label event rate; see :mod:`tasks.drift`).

``score_batch``: batch → validate (serving suite) → score → predictions stamped with model,
version and time, written atomically.

Both judge a version with the spec stored in its metadata, not the current spec file, and say how
the current file differs (:func:`models.stored_spec.judging_spec`; ``docs/drift.md``, "Which spec
judges a version").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.naming import monitoring_run_name, rename_current_run
from models.errors import SHOWN_BY_CALLER
from models.records.monitoring import MonitoringRecord, MonitoringSkipped, SpecComparison
from models.registry import check_writable_root, now_utc
from models.settings import get_settings
from models.stored_spec import judging_spec
from tasks.monitor import (
    OUT_OF_TIME,
    MonitoringInputError,
    assess_performance,
    batch_table,
    drift_markdown,
    evidently_report,
    load_batch,
    measure_drift,
    record_monitoring,
    reports_folder,
)
from tasks.ledger import check_as_of, ledger_scored_rows
from tasks.ranges import count_out_of_range, out_of_range_text, unseen_categories_lines, unseen_categories_report
from tasks.reasons import check_reason_count, explain_rows, reasons_summary, stored_reasons
from tasks.report import (
    artifact_key,
    emit,
    publish_link,
    publish_markdown,
    publish_registry_page,
    publish_table,
)
from tasks.scorecard import scale_text
from tasks.segments import segment_table
from tasks.scoring import (
    check_output,
    load_model_version,
    predictions_frame,
    read_validate_score,
    score_with_version,
    write_predictions,
)
from tasks.validate import validate_data
from tasks.var_backtest import backtest_batch

_SHOWN = {SHOWN_BY_CALLER: True}
"""``extra`` of the log lines whose text the run's result carries and a ``finml`` command prints
(the verdict, the spec comparison, warnings): Prefect's run log keeps them, the command's console
skips them (:class:`flows.cli.common.ShowErrorsOnce`)."""

DRIFT_EVENT = "finml.drift.detected"
DATA_QUALITY_EVENT = "finml.data-quality.alarm"
ACTION_LABEL = "finml.action"
"""Resource label of both events: the record's ``action`` (``retrain`` or ``alert``)."""


def _monitor_run_name() -> str:
    p = flow_run.parameters
    return f"monitor-{p['model_name']}-{p.get('version') or 'champion'}-{now_utc()[:16].replace(':', '')}"


@flow(name="monitor-model", flow_run_name=_monitor_run_name, log_prints=True)
def monitor_model(
    model_name: str, batch: str = "out_of_time", version: str | int | None = None
) -> MonitoringRecord | MonitoringSkipped:
    """Judge a batch against a registry version: feature and score drift, and performance.

    The batch is judged with the spec stored with the version (its expectations, features,
    drift settings, tolerances); the current spec file is compared with it, and may be missing
    or invalid (see :func:`models.stored_spec.judging_spec`).

    Args:
        model_name: the spec's name.
        batch: a CSV or Parquet path, or ``"out_of_time"`` for the spec's held-back later period.
        version: a version number or alias; the champion when None.

    Returns:
        The monitoring record (verdict, per-feature PSI, score PSI, drift share, performance,
        Evidently report path, ``spec_comparison``), also appended to
        ``<registry>/<model>/monitoring.jsonl``. A batch with fewer usable rows than
        ``drift.min_rows`` returns a :class:`MonitoringSkipped` with the verdict
        ``insufficient_data`` and records nothing.

    Raises:
        MonitoringInputError: an empty batch. DataValidationError: a missing feature column or
        another failed critical expectation (named). RegistryError / IntegrityError: no such
        version, or its files changed. StoredSpecError: neither the stored spec nor the current
        spec file can be read.
    """
    logger = get_run_logger()
    settings = get_settings()
    ts = now_utc()
    check_writable_root(settings.registry_dir)  # the monitoring history is written there
    check_writable_root(settings.reports_dir, "FINML_REPORTS_DIR")  # and the Evidently report here
    loaded = load_model_version(model_name, settings.registry_dir, version)  # an unknown version fails first
    spec, compared = judging_spec(model_name, loaded.metadata, settings.specs_dir, out_of_time=batch == OUT_OF_TIME)
    _log_comparison(logger, compared, loaded.version)
    frame, label = load_batch(spec, batch)
    warnings = validate_data(spec, frame, serving=True, source=label).warning_sentences()
    _log_warnings(logger, spec.name, warnings)
    table = batch_table(spec, frame)
    if len(table) < spec.drift.min_rows:
        rows = f"{len(table)} usable row{'' if len(table) == 1 else 's'}"
        message = (f"insufficient data: {rows} in {label}, the spec needs at least {spec.drift.min_rows} to judge "
                   "drift; no verdict on drift, nothing recorded")
        publish_markdown(artifact_key(spec.name, "monitoring-verdict"),
                         f"# Monitoring {spec.name}: {message}\n\n{compared.sentence(loaded.version)}",
                         f"Monitoring verdict of {spec.name}")
        logger.warning("%s", message, extra=_SHOWN)
        return MonitoringSkipped(model=spec.name, version=loaded.version, summary=message, spec_comparison=compared,
                                 batch={"label": label, "rows": int(len(frame)), "modelled_rows": int(len(table))},
                                 validation_warnings=warnings or None)
    scores = score_with_version(spec, loaded, table)
    out_of_range = count_out_of_range(spec.drift, loaded.pipeline, table)
    drift = measure_drift(spec, loaded.reference, table, scores)
    folder = reports_folder(settings.reports_dir, spec.name, ts, str(flow_run.id) if flow_run.id else None)
    evidently = evidently_report(spec, loaded.reference, table, scores, folder, drift)
    perf = assess_performance(spec, table, scores, loaded.metadata)
    var = backtest_batch(spec, frame, table, scores)  # None without a var section
    labelled = spec.is_classifier and perf["labelled_rows"] > 0
    segments = segment_table(spec, loaded.reference, table, scores, spec.target_column if labelled else None)
    outcome = record_monitoring(
        spec, settings.registry_dir, version=loaded.version, run_id=str(flow_run.id) if flow_run.id else None,
        batch_label=label, frame=frame, table=table, drift=drift, evidently=evidently, perf=perf, ts=ts,
        out_of_range=out_of_range, spec_comparison=compared, validation_warnings=warnings, var_backtest=var,
        segments=segments,
    )
    record = outcome.record
    publish_table(artifact_key(spec.name, "drift"), drift.as_rows(), f"Per-feature PSI of {spec.name} v{loaded.version}")
    publish_markdown(artifact_key(spec.name, "monitoring-verdict"), drift_markdown(record),
                     f"Monitoring verdict of {spec.name} v{loaded.version}")
    if evidently.html_path:
        publish_link(artifact_key(spec.name, "evidently-report"), Path(evidently.html_path).resolve().as_uri(),
                     f"Evidently drift report of {spec.name} v{loaded.version} ({evidently.sample_note})")
    publish_registry_page(spec.name, None, "monitoring trends (PSI, performance) and every Evidently report")
    if outcome.alarm:  # the training trigger retrains on the resource label finml.action = retrain only
        emit(DRIFT_EVENT, spec.name, outcome.event_payload(), labels={ACTION_LABEL: record.action})
    elif outcome.data_quality_alarm:  # people must look at the feed; no retraining trigger listens to this
        emit(DATA_QUALITY_EVENT, spec.name, outcome.event_payload(), labels={ACTION_LABEL: record.action})
        logger.warning("%s", record.summary, extra=_SHOWN)
    rename_current_run(lambda current: monitoring_run_name(spec.name, loaded.version, record.verdict, current))
    logger.info("%s", record.summary, extra=_SHOWN)
    return record


def _log_warnings(logger, model: str, warnings: list[str]) -> None:
    """Log each validation warning (Prefect's run log keeps them); marked
    :data:`models.errors.SHOWN_BY_CALLER`: the run's result carries them and a ``finml`` command
    prints them from there, its console skips these lines."""
    for w in warnings:
        logger.warning("%s: validation warning: %s", model, w, extra=_SHOWN)


def _log_comparison(logger, compared: SpecComparison, version: int) -> None:
    """Log which spec judges the version: a warning when the current spec file could not be compared
    (missing or invalid) or had to judge (the stored spec unreadable), else info."""
    troubled = compared.judged_with == "current" or compared.current_sha256 is None
    (logger.warning if troubled else logger.info)("%s", compared.sentence(version), extra=_SHOWN)


def _score_run_name() -> str:
    p = flow_run.parameters
    return f"score-{p['model_name']}-{p.get('version') or 'champion'}-{now_utc()[:16].replace(':', '')}"


@flow(name="score-batch", flow_run_name=_score_run_name, log_prints=True)
def score_batch(
    model_name: str, batch: str, output: str, version: str | int | None = None, validation_engine: str = "fast",
    reasons: int | None = None, as_of: str | None = None,
) -> dict[str, Any]:
    """Score a batch with a registry version and write stamped predictions, and append the scored
    rows to the model's ledger (:func:`tasks.ledger.ledger_scored_rows`); the batch is
    validated and its features built with the spec stored with the version (as ``monitor_model``).

    Args:
        model_name: the spec's name.
        batch: a CSV or Parquet path (or ``"out_of_time"``).
        output: where to write the predictions, ``.parquet`` or ``.csv``.
        version: a version number or alias; the champion when None.
        validation_engine: ``"fast"`` (vectorised evaluation of the serving suite) or ``"gx"``
            (Great Expectations).
        reasons: adverse-action reasons per declined row, 1..5 (:func:`tasks.reasons.principal_reasons`:
            columns ``declined``, ``reason_i``, ``reason_i_text``, ``reason_i_contribution``); None:
            the stored spec's ``reasons.k`` (unset: no reasons).
        as_of: the observation date of every row for the ledger (ISO date) when the spec names no
            ``backtest.as_of`` column; None: the scoring time.

    Returns:
        ``{"model", "version", "rows", "output", "extra_columns", "batch", "unscored_rows",
        "unscored_reason", "out_of_range", "spec_comparison", "validation_warnings", "points_scale",
        "unseen_categories", "reasons", "ledger"}``
        (``ledger``: ``{rows, parts, reason}``, reason saying why a batch was not ledgered)
        (``unseen_categories``: per categorical feature, the rows whose category the version never saw
        in training, :func:`tasks.ranges.unseen_categories_report`; each is a warning)
        (``reasons``: :func:`tasks.reasons.reasons_summary`, None without reasons)
        (``out_of_range``: per numeric feature, the rows outside the version's training range,
        :func:`tasks.ranges.out_of_range_report`; ``spec_comparison``: the
        :class:`models.records.monitoring.SpecComparison` as JSON; ``validation_warnings``: the batch
        validation's warnings, one line each; ``points_scale``: the scale of the ``points`` column in words,
        :func:`tasks.scorecard.scale_text`, None when the spec has no ``scorecard`` section).

    Raises:
        OutputPathError, ReasonCountError (before any work), ReasonsUnavailableError (the version has no
        reference profile; before the batch is read), MonitoringInputError, DataValidationError (a missing
        feature column is named; nothing is written), RegistryError / IntegrityError,
        StoredSpecError (neither the stored spec nor the current spec file can be read).
    """
    logger = get_run_logger()
    settings = get_settings()
    check_output(output, batch)  # a bad output name, or the batch itself, fails before any work
    if validation_engine not in ("fast", "gx"):
        raise ValueError(f"validation_engine must be 'fast' or 'gx', got {validation_engine!r}")
    if reasons is not None:
        check_reason_count(reasons, "reasons")
    check_as_of(as_of)  # a bad date fails before any work
    loaded = load_model_version(model_name, settings.registry_dir, version)
    spec, compared = judging_spec(model_name, loaded.metadata, settings.specs_dir, out_of_time=batch == OUT_OF_TIME)
    _log_comparison(logger, compared, loaded.version)
    k = reasons if reasons is not None else spec.reasons.k
    stored = stored_reasons(loaded.metadata, spec.name, loaded.version) if k else None
    table, scores, label, extra, batch_rows, warnings = read_validate_score(spec, loaded, batch, validation_engine)
    _log_warnings(logger, spec.name, warnings)
    if extra:
        logger.info("ignoring %d column(s) the spec does not declare: %s", len(extra), extra, extra=_SHOWN)
    scored_at = now_utc()
    predictions = predictions_frame(spec, table, scores, loaded.version, scored_at)
    explained = None
    if stored is not None:
        explained = explain_rows(spec.reasons, loaded.pipeline, table[loaded.features], scores, stored, k)
        predictions = pd.concat([predictions, explained], axis=1)
    written = write_predictions(predictions, output)
    ledgered = ledger_scored_rows(spec, settings.registry_dir, table, scores, loaded.version,
                                  str(flow_run.id) if flow_run.id else f"local-{scored_at}", scored_at, as_of)
    if ledgered["reason"]:
        logger.warning("%s", ledgered["reason"], extra=_SHOWN)
    unscored = batch_rows - len(table)
    result = {"model": spec.name, "version": loaded.version, "rows": int(len(table)), "output": str(written),
              "extra_columns": extra, "batch": label, "unscored_rows": int(unscored),
              "unscored_reason": "the feature builder needs earlier rows to compute their features" if unscored else None,
              "out_of_range": count_out_of_range(spec.drift, loaded.pipeline, table),
              "spec_comparison": compared.model_dump(mode="json"), "validation_warnings": warnings,
              "points_scale": scale_text(spec.scorecard),
              "unseen_categories": unseen_categories_report(
                  loaded.pipeline, table, [f for f in loaded.features if f in spec.categorical_features]),
              "reasons": None if explained is None else reasons_summary(explained, stored, k, spec.reasons.explain),
              "ledger": ledgered}
    oor_text = out_of_range_text(result["out_of_range"])
    if oor_text:
        logger.warning("%s: %s", spec.name, oor_text, extra=_SHOWN)
    unseen = unseen_categories_lines(result["unseen_categories"])
    for line in unseen:
        logger.warning("%s: %s", spec.name, line, extra=_SHOWN)
    if unscored:
        logger.info("%d row(s) of the batch were not scored: the feature builder needs earlier history", unscored,
                    extra=_SHOWN)
    publish_markdown(
        artifact_key(spec.name, "scoring"),
        f"# Scored {spec.name} v{loaded.version}\n\n{len(table)} rows from {label} → `{written}`.\n\n"
        + (f"Ignored columns not in the spec: {', '.join(extra)}" if extra else "No extra columns.")
        + (f"\n\nWarning: {oor_text}." if oor_text else "")
        + "".join(f"\n\nWarning: {line}." for line in unseen)
        + "".join(f"\n\nValidation warning: {w}" for w in warnings)
        + f"\n\n{compared.sentence(loaded.version)}.",
        f"Batch scoring of {spec.name}",
    )
    return result


__all__ = ["monitor_model", "score_batch", "DRIFT_EVENT", "DATA_QUALITY_EVENT", "ACTION_LABEL",
           "MonitoringInputError"]
