"""The back-test flow: join a file of late outcomes to the scoring ledger (when given), then
back-test the model on every outcome joined so far and write the report (docs/backtesting.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from models.errors import SHOWN_BY_CALLER, UsageError
from models.ledger import append_backtest, backtest_history
from models.registry import ModelRegistry, check_writable_root, now_utc
from models.settings import get_settings
from models.stored_spec import judging_spec
from tasks.backtest import compute_backtest, record_outcomes, vintage_changes
from tasks.backtest_report import report_markdown, report_tables, write_report
from tasks.monitor import reports_folder
from tasks.report import artifact_key, publish_link, publish_markdown, publish_registry_page

_SHOWN = {SHOWN_BY_CALLER: True}


def _backtest_run_name() -> str:
    return f"backtest-{flow_run.parameters['model_name']}-{now_utc()[:16].replace(':', '')}"


def _summary(spec_name: str, record: dict[str, Any], join: dict[str, Any] | None) -> list[str]:
    lines = [f"{record['scored']} scored row(s) in the ledger of {spec_name}, {record['matured']} with a matured "
             f"outcome. p-values coloured by validation.policy: {record['policy']['text']}."]
    if join is not None:
        lines.append(f"This run: {join['received']} outcome(s) received from {join['file']}, {join['joined']} joined, "
                     f"{sum(join['left_out'].values())} left out.")
        lines += [f"Left out: {s}." for s in join["sentences"]]
    lines.append("Estimate from the scores: " + record["vintages"]["estimate"]["warning"])
    return lines


@flow(name="backtest-model", flow_run_name=_backtest_run_name, log_prints=True)
def backtest_model(model_name: str, labels: str | None = None) -> dict[str, Any]:
    """Back-test a credit model: join ``labels`` (an outcomes file) to its ledger when given,
    then compute the back-test on every outcome joined so far, write the report under
    ``<reports>/<model>/backtest/<time>-<run>/`` and append the record to ``backtests.jsonl``.

    Args:
        model_name: the model's name. labels: a CSV or Parquet file of outcomes (id, ``outcome``
            or the target column, ``backtest.outcome_date_column``); None: back-test the outcomes
            already joined (the current spec file's ``backtest.landing`` when it names one).

    Returns:
        ``{model, run_id, join (None without labels), backtest (tasks.backtest.backtest_record),
        changes (tasks.backtest.vintage_changes), report (HTML path), folder}``.

    Raises:
        UsageError: not a binary classifier. OutcomesError: a bad outcomes file (named) or none of
        its ids scored. RegistryError / IntegrityError: no such model, a changed ledger part or version.
    """
    logger = get_run_logger()
    settings = get_settings()
    check_writable_root(settings.registry_dir)
    check_writable_root(settings.reports_dir, "FINML_REPORTS_DIR")
    registry = ModelRegistry(settings.registry_dir, model_name)
    champion = registry.resolve(None)
    spec, _ = judging_spec(model_name, registry.verify(champion), settings.specs_dir)
    if spec.task != "binary_classification":
        raise UsageError(f"{model_name}: back-testing with late outcomes is for binary classification (a probability "
                         f"of default), not {spec.task!r}")
    if labels is None:
        labels = _landing(model_name, settings.specs_dir)
    run_id = str(flow_run.id) if flow_run.id else f"local-{now_utc()}"
    ts = now_utc()
    join = record_outcomes(spec, settings.registry_dir, labels, run_id, ts) if labels else None
    if join is not None:
        for sentence in join["sentences"]:
            logger.warning("%s: %s", spec.name, sentence, extra=_SHOWN)
    record = compute_backtest(spec, registry)
    history = backtest_history(settings.registry_dir, spec.name)
    changes = vintage_changes(history[-1] if history else None, record)
    folder = reports_folder(settings.reports_dir, spec.name, ts, run_id, kind="backtest")
    title = f"Back-test of {spec.name} (champion v{champion}) at {ts}"
    summary = _summary(spec.name, record, join)
    tables = report_tables(record, join)
    page = write_report(folder, title, summary, tables)
    append_backtest(settings.registry_dir, spec.name, {
        "event": "backtest", "ts": ts, "run_id": run_id, "model": spec.name, "champion": champion,
        "join": None if join is None else {k: v for k, v in join.items() if k != "sentences"},
        "scored": record["scored"], "matured": record["matured"], "vintages": record["vintages"],
        "versions": record["versions"], "migration": record["migration"],
        "segments": record["segments"], "changes": changes,
        "report": str(page)})
    publish_markdown(artifact_key(spec.name, "backtest"), report_markdown(title, summary, tables, str(page)),
                     f"Back-test of {spec.name}")
    publish_link(artifact_key(spec.name, "backtest-report"), Path(page).resolve().as_uri(),
                 f"Back-test report of {spec.name} (HTML and CSV tables)")
    publish_registry_page(spec.name, None, "the champion, versions and history")
    logger.info("%s", summary[0], extra=_SHOWN)
    return {"model": spec.name, "run_id": run_id, "join": join, "backtest": record, "changes": changes,
            "report": str(page), "folder": str(folder)}


def _landing(model: str, specs_dir) -> str | None:
    """The current spec file's ``backtest.landing`` (None when unset or the file is unreadable)."""
    from models.errors import SpecError
    from models.spec import find_spec

    try:
        landing = find_spec(model, specs_dir).backtest.landing
    except SpecError:
        return None
    return landing


__all__ = ["backtest_model"]
