"""The commands that use a champion on new rows: ``monitor`` (drift, performance, Evidently),
``score`` (stamped predictions) and ``monitor-history``, with the monitoring report they print."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from flows.cli.checks import _check_batch, _check_spec_or_stored, _check_version, preflight_monitor, preflight_score
from flows.cli.common import (
    cli_table,
    EXIT_ALARM,
    EXIT_USAGE,
    _error_message,
    _existing_model,
    _fail,
    _fmt,
    _registry_errors,
    console,
)
from flows.cli.runs import _check_configured_api, _model_tags, _run_deployments


def print_monitoring(record) -> None:
    """The verdict, the per-feature PSI table and, with labels, the performance comparison.

    Args:
        record: a :class:`models.records.monitoring.MonitoringRecord`, or a ``MonitoringSkipped``
            (too few rows: nothing was measured).
    """
    from models.records.monitoring import MonitoringSkipped

    if isinstance(record, MonitoringSkipped):
        print_validation_warnings(record.validation_warnings)
        console.print(f"{record.model}: {record.summary}", highlight=False, markup=False)
        print_spec_comparison(record.spec_comparison, record.version)
        return
    d = record.drift
    from tasks.report import period_text

    period = f", {period_text(record.batch.period)}" if record.batch.period else ""
    table = cli_table(f"Drift of {record.model} v{record.version} on {record.batch.label} "
                        f"({record.batch.rows} rows{period}): {record.verdict.upper()}", ("feature", "PSI", "status", "note"))
    ordered = sorted(d.features.items(), key=lambda kv: -(kv[1].psi if kv[1].psi is not None else -1))
    for name, f in ordered:
        table.add_row(name, _fmt(f.psi), f.status, f.note or "")
    table.add_row("(model score: prediction drift)", _fmt(d.score_psi), d.score_status or "-", "")
    console.print(table)
    console.print(f"  {record.summary}", highlight=False, markup=False)
    print_spec_comparison(record.spec_comparison, record.version)
    print_validation_warnings(record.validation_warnings, indent="  ")
    if record.alarm or record.data_quality_alarm:
        console.print(f"  severity {record.severity or '-'}, action {record.action or '-'}", highlight=False)
    perf = record.performance
    if perf.status == "evaluated":
        console.print(f"  performance on {perf.labelled_rows} labelled rows:", highlight=False)
        for m in [m for m in _performance_metrics(record.model) if m in perf.changes] or list(perf.changes)[:3]:
            c = perf.changes[m]
            tol = "" if c.tolerance is None else f", tolerance {c.tolerance:g}"
            console.print(f"    {m} {_fmt(c.batch)} (holdout {_fmt(c.holdout)}{tol}){' BREACH' if c.breach else ''}",
                          highlight=False, markup=False)
    if perf.calibration is not None:
        from tasks.verdict import calibration_sentence

        console.print(f"  calibration{' BREACH' if perf.calibration.breach else ''}: "
                      f"{calibration_sentence(perf.calibration)}", highlight=False, markup=False)
    if perf.below_majority:
        console.print(f"  {perf.below_majority}", highlight=False, markup=False)
    if record.evidently is not None and record.evidently.html_path:
        console.print(f"  Evidently report: {record.evidently.html_path}", highlight=False)
        from tasks.evidently_report import counts_sentence
        from tasks.verdict import feature_drift_names

        counts = counts_sentence(len(d.drifted), d.tested, record.evidently,
                                 feature_drift_names(d.drifted, d.score_status))
        if counts:
            console.print(f"  {counts}", highlight=False, markup=False)


def print_validation_warnings(warnings: list[str] | None, indent: str = "") -> None:
    """One ``warning: validation: ...`` line per validation warning of the batch (values made
    missing by ``on_invalid: missing``, a ``severity: warning`` column's failures); nothing for None."""
    for w in warnings or []:
        console.print(f"{indent}warning: validation: {w}", highlight=False, markup=False, soft_wrap=True)


def print_spec_comparison(comparison, version: int) -> None:
    """One line: which spec judged the version and how the current spec file differs from it.

    Args:
        comparison: a :class:`models.records.monitoring.SpecComparison` or its JSON dict (the
            scoring result's ``spec_comparison``); None (not compared) prints nothing.
    """
    if comparison is None:
        return
    from models.records.monitoring import SpecComparison

    if isinstance(comparison, dict):
        comparison = SpecComparison.model_validate(comparison)
    console.print(f"  {comparison.sentence(version)}", highlight=False, markup=False, soft_wrap=True)


def print_scoring(model: str, result: dict[str, Any]) -> None:
    """What ``finml score`` prints: rows scored and where, rows not scored, ignored columns,
    values outside the training range, the validation's warnings, and which spec judged the batch.

    Args:
        result: :func:`flows.monitoring.score_batch`'s result.
    """
    console.print(f"{result['rows']} rows scored with {model} v{result['version']} -> {result['output']}", highlight=False)
    if result.get("points_scale"):
        console.print(f"scorecard points in column 'points': {result['points_scale']}", highlight=False)
    if result.get("unscored_rows"):
        console.print(f"{result['unscored_rows']} row(s) of the batch were not scored: {result['unscored_reason']}",
                      highlight=False)
    if result["extra_columns"]:
        console.print(f"ignored columns not in the spec: {', '.join(result['extra_columns'])}", highlight=False)
    from tasks.ranges import out_of_range_text, unseen_categories_lines

    oor = out_of_range_text(result.get("out_of_range"))
    if oor:
        console.print(f"warning: {oor}", highlight=False)
    for line in unseen_categories_lines(result.get("unseen_categories")):
        console.print(f"warning: {line}", highlight=False, markup=False, soft_wrap=True)
    print_validation_warnings(result.get("validation_warnings"))
    ledger = result.get("ledger") or {}
    if ledger.get("rows"):
        console.print(f"{ledger['rows']} row(s) recorded in the scoring ledger ({', '.join(ledger['parts'])})",
                      highlight=False)
    elif ledger.get("reason"):
        console.print(f"warning: {ledger['reason']}", highlight=False, markup=False, soft_wrap=True)
    r = result.get("reasons")
    if r:
        rows = "declined row" if r["explain"] == "declined" else "row"
        console.print(f"up to {r['k']} adverse-action reasons for each {rows} ({r['declined_rows']} declined at score >= "
                      f"{r['cutoff']:.4f}; reference: {r['reference']})", highlight=False)
        if r["without_reason"]:
            console.print(f"note: {r['without_reason']} declined row(s) have no single feature raising the risk against "
                          "the reference by the materiality floor (their features raise it together): no reason code",
                          highlight=False)
        if r.get("approved_without_reason"):
            console.print(f"note: {r['approved_without_reason']} approved row(s) have no feature raising the risk against "
                          "the reference (beyond the materiality floor): no reason code", highlight=False)
    print_spec_comparison(result.get("spec_comparison"), result["version"])


def monitor_cmd(
    model: str = typer.Argument(..., help="Model (spec) name."),
    batch: Optional[str] = typer.Option(None, "--batch", help="CSV or Parquet file of new rows."),
    demo_period: bool = typer.Option(False, "--demo-period",
                                     help="Use the spec's held-back later period of its built-in data."),
    version: Optional[str] = typer.Option(None, "--version", help="Version number or alias (default: champion)."),
    alias: Optional[str] = typer.Option(None, "--alias",
                                        help="An alias to monitor (challenger, or a named alias): as --version NAME."),
    deployment: bool = typer.Option(
        False, "--deployment",
        help="Start the model's deployment (monitor-model/monitor-MODEL) on the Prefect server instead of running "
             "here, and wait for its result (a --batch path must be readable by the worker)."),
    timeout: float = typer.Option(3600, help="With --deployment: seconds to wait for the run to finish."),
    fail_on_alarm: bool = typer.Option(
        False, "--fail-on-alarm",
        help="Exit with code 4 when the verdict is not stable (an alarm, or too few rows to judge), for scripts "
             "and CI; not with --deployment."),
) -> None:
    """Drift (PSI per feature and score), performance when labelled, Evidently report, event on drift.

    Exit code: 0 measured (any verdict, unless --fail-on-alarm); 4 with --fail-on-alarm, a verdict other than
    stable; 1 an error; 2 bad arguments.
    """
    if batch is None and not demo_period:
        _fail("give --batch PATH or --demo-period: neither was given", code=2)
    if batch is not None and demo_period:
        _fail("give --batch PATH or --demo-period, not both: both were given", code=2)
    if alias is not None and version is not None:
        _fail("give --version or --alias, not both", code=EXIT_USAGE)
    version = alias if alias is not None else version
    if fail_on_alarm and deployment:
        _fail("--fail-on-alarm reads the verdict of a run made here: it cannot be used with --deployment",
              code=EXIT_USAGE)
    _check_spec_or_stored(model, version)
    if batch is not None and not deployment:
        _check_batch(batch)
    if deployment:
        if batch and Path(batch).exists():
            batch = str(Path(batch).resolve())  # the worker runs from the project folder, not from here
        params: dict[str, Any] = {"model_name": model, "batch": batch or "out_of_time"}
        if version is not None:
            params["version"] = version
        _run_deployments([("monitor", model, params)], timeout)
        return
    preflight_monitor(model, version, batch)  # columns of the stored spec, libraries, folders: before Prefect
    _check_configured_api()
    _check_version(model, version)
    from flows.monitoring import monitor_model

    try:
        with _model_tags(model, "monitoring"):
            record = monitor_model(model, batch=batch or "out_of_time", version=version)
    except Exception as err:
        _fail(_error_message(err))
    print_monitoring(record)
    if fail_on_alarm and monitoring_exit_code(record.verdict):
        raise typer.Exit(EXIT_ALARM)


def monitoring_exit_code(verdict: str) -> int:
    """``finml monitor --fail-on-alarm``'s exit code for a verdict (one of
    :data:`models.records.monitoring.VERDICTS`): 0 for ``stable``, :data:`EXIT_ALARM` (4) for any
    other, ``insufficient_data`` included (nothing was measured, so nothing says the model is fine)."""
    return 0 if verdict == "stable" else EXIT_ALARM


def score_cmd(
    model: str = typer.Argument(..., help="Model (spec) name."),
    batch: str = typer.Option(..., "--batch", help="CSV or Parquet file to score."),
    out: str = typer.Option(..., "--out", help="Predictions file, .parquet or .csv."),
    version: Optional[str] = typer.Option(None, "--version", help="Version number or alias (default: champion)."),
    reasons: Optional[int] = typer.Option(
        None, "--reasons", metavar="K",
        help="Add up to K (1-5, 4 advised) adverse-action reasons to every declined row: reason_i (the feature), "
             "reason_i_text, reason_i_contribution (docs/interpretability.md)."),
    as_of: Optional[str] = typer.Option(
        None, "--as-of", metavar="DATE",
        help="The observation date of every row in the scoring ledger (ISO date) when the spec names no "
             "backtest.as_of column; default: now."),
) -> None:
    """Score a batch with the champion (or a version), write stamped predictions and ledger the rows."""
    from models.errors import UsageError
    from tasks.ledger import check_as_of
    from tasks.reasons import ReasonCountError, check_reason_count

    try:
        check_as_of(as_of)
    except UsageError as err:
        _fail(str(err).replace("as_of ", "--as-of ", 1), code=EXIT_USAGE)

    if reasons is not None:
        try:
            check_reason_count(reasons)
        except ReasonCountError as err:
            _fail(str(err), code=EXIT_USAGE)
    _check_spec_or_stored(model, version)
    _check_batch(batch)
    from tasks.scoring import OutputPathError, check_output

    try:
        check_output(out, batch)  # before Prefect starts: a bad name fails in a second, not ten
    except OutputPathError as err:
        _fail(str(err))
    preflight_score(model, version, batch, reasons)  # columns of the stored spec, libraries, reasons: before Prefect
    _check_configured_api()
    _check_version(model, version)
    from flows.monitoring import score_batch

    try:
        result = score_batch(model, batch=batch, output=out, version=version, reasons=reasons, as_of=as_of)
    except Exception as err:
        _fail(_error_message(err))
    print_scoring(model, result)


def monitor_history_cmd(
    model: str = typer.Argument(..., help="Model name."),
    as_json: bool = typer.Option(False, "--json", help="Print every monitoring record in full, as JSON."),
) -> None:
    """Every recorded monitoring run of a model, oldest first."""
    with _registry_errors():
        runs = _existing_model(model).monitoring_records()
    if as_json:
        import json

        console.print_json(json.dumps({"model": model, "runs": [r.model_dump(mode="json") for r in runs]}))
        return
    if not runs:
        console.print(f"No monitoring runs recorded for {model}.")
        return
    shown = _performance_metrics(model)
    table = cli_table(f"Monitoring history of {model}", ("time", "version", "batch", "rows", "verdict", "drift share", "score PSI", "top features", "performance"))
    for r in runs:
        perf = r.performance
        perf_text = perf.status
        if perf.status == "evaluated":
            names = [m for m in shown if m in perf.changes] or list(perf.changes)[:2]
            perf_text = ", ".join(f"{m} {perf.changes[m].batch:.3f}" for m in names)
            if perf.breaches:
                perf_text += " BREACH: " + ", ".join(perf.breaches)
        table.add_row(r.ts, f"v{r.version}", r.batch.label, str(r.batch.rows), r.verdict,
                      _fmt(r.drift.drifted_share), _fmt(r.drift.score_psi), ", ".join(r.drift.top_features), perf_text)
    console.print(table)


def _performance_metrics(model: str) -> list[str]:
    """The metrics worth showing: the spec's primary metric, every metric its gate rules use, then
    those with a tolerance (the spec's or the catalogue's default) for its task."""
    from models.metrics import METRICS
    from models.settings import get_settings
    from models.spec import SpecError, find_spec

    try:
        spec = find_spec(model, get_settings().specs_dir)
    except SpecError:
        return []
    tolerated = [m for m, info in METRICS.items() if spec.task in info.evaluated_for
                 and info.higher_is_better is not None and spec.drift.tolerance(m) is not None]
    return list(dict.fromkeys([spec.gate.primary_metric, *(r.metric for r in spec.gate.rules if hasattr(r, "metric")), *tolerated]))
