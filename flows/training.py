"""Training flows: ``train_model`` for one spec, ``train_all`` for every spec.

The flows only wire tasks: load → validate → modelling table → split → fit candidates →
evaluate → re-score champion → gate → promote or reject → publish artifacts and events.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow, get_run_logger, tags
from prefect.exceptions import MissingContextError
from prefect.runtime import flow_run

from flows.naming import model_tags, rename_current_run, run_reason, run_starter, training_run_name
from flows.runners import thread_runner
from models.errors import SHOWN_BY_CALLER, DataError, FinmlError
from models.identity import current_user
from models.registry import check_writable_root, now_utc
from models.settings import get_settings
from models.spec import find_spec, list_specs
from tasks.approval import in_deployment_run, outcome_of, wait_for_approval, waiting_request
from tasks.drivers import explain_selected
from tasks.evaluate import evaluate_fitted, rescore_champion
from tasks.gate import apply_gate, check_split_events
from tasks.leakage import leakage_guards, model_lift_warning
from tasks.load import load_data, prepare_table
from tasks.market_tests import market_tests
from tasks.monotonic import check_monotonic
from tasks.promote import promote_or_reject, record_stop
from tasks.reasons import adverse_action_record
from tasks.report import (
    artifact_key,
    emit,
    publish_markdown,
    publish_registry_page,
    publish_table,
    training_summary_markdown,
)
from tasks.split import plan_split
from tasks.step import step
from tasks.train import fit_candidate
from tasks.validate import check_modelling_table, validate_data


def _run_name() -> str:
    params = flow_run.parameters
    return f"train-{params['model_name']}-{now_utc()[:16].replace(':', '')}"


@flow(name="train-model", flow_run_name=_run_name, log_prints=True)
def train_model(model_name: str, reason: str = "manual", register_as: str | None = None) -> dict[str, Any]:
    """Train, evaluate, gate and (if every rule passes) promote one model.

    Args:
        model_name: the spec's name (``<FINML_SPECS_DIR>/<model_name>.yaml``).
        reason: why this run happens (``manual``, ``schedule``, a drift alarm's summary);
            recorded in the history and the version's metadata.
        register_as: an alias (``challenger``): a run that fails only champion rules becomes a
            version this alias names, not promoted (:func:`tasks.promote.registers_as`).

    Returns:
        A summary: model, best candidate, primary metric and value, gate verdict, version
        promoted (or None), champion after the run, the decision's reason, its evidence (a
        rejected run's ``rejected.json``) and ``warnings`` (the validation's non-critical failures,
        prefixed ``validation:``, and the modelling table's warnings; one line each).

    Raises:
        SpecError, DataSourceError, DataPreparationError, DataValidationError,
        ModellingDataError, SplitError, HoldoutEventsError, DataError (a protected column holding numbers
            without ``fairness.bands``): the run stops before training; nothing is promoted.
    """
    logger = get_run_logger()
    settings = get_settings()
    started_at = now_utc()
    spec = find_spec(model_name, settings.specs_dir)
    check_writable_root(settings.registry_dir)  # an unusable FINML_REGISTRY_DIR fails now, not after training
    check_writable_root(settings.reports_dir, "FINML_REPORTS_DIR")  # model cards and plots of rejected runs
    reason = run_reason(reason)  # a deployment's default "schedule" on a run started by hand
    if register_as is not None:
        from models.aliases import check_alias_name

        register_as = check_alias_name(register_as)  # a bad alias fails before training
    who = current_user(run_starter())  # models.identity: a deployment run's starter, FINML_USER, the OS user

    run_id = str(flow_run.id) if flow_run.id else None
    if in_deployment_run():  # a resumed run (Prefect re-runs it from the top): its version waits already
        waiting = waiting_request(settings.registry_dir, spec.name, run_id)
        if waiting is not None:
            return await_decision(spec.name, settings.registry_dir, waiting,
                                  {**_failed_summary(spec.name, "waiting for an approval"), "gate": "passed",
                                   "version": waiting.version, "pending": waiting.state == "pending"})
    run_warnings: list[str] = []  # the validation's and the modelling table's, for the summary
    try:  # bad data stops the run before its gate: a `stopped` line in the history, then the error
        loaded = load_data(spec)
        validation = validate_data(spec, loaded.frame)
        _warn(logger, run_warnings, [f"validation: {w}" for w in validation.warning_sentences()])
        data = prepare_table(spec, loaded)
        warnings = check_modelling_table(data.table, spec)
        _warn(logger, run_warnings, warnings)
        plan = plan_split(data.table, spec)
        check_split_events(spec, data.table, plan)  # a classifier's holdout with too few events stops the run now
        leakage = leakage_guards(spec, data.development, data.table, plan)  # stops the run on probable leakage
        futures = [fit_candidate.submit(spec, c, data.table, plan) for c in spec.candidates]  # in parallel
        fitted = [f.result() for f in futures]
        evaluation = evaluate_fitted(spec, data.table, plan, fitted)
        leakage = model_lift_warning(spec, leakage, evaluation, data.table, plan)  # a warning in the card, never a stop
        champion = rescore_champion(spec, settings.registry_dir, data.table, plan, evaluation.holdout_sha256)
        drivers = explain_selected(spec, evaluation, fitted, plan)
        monotonic = check_monotonic(spec, evaluation, fitted)
        reasons = adverse_action_record(spec, evaluation, fitted)
        market = market_tests(spec, evaluation, fitted, data.development)  # VaR back-test, MCS, Pesaran-Timmermann
    except DataError as err:
        report = getattr(err, "report", None)  # a failed validation: its warnings are in its report
        if report is not None and not run_warnings:
            run_warnings = [f"validation: {w}" for w in report.warning_sentences()]
        for w in run_warnings:  # the summary of a stopped run (train_one) reads them back from the error
            err.add_note(WARNING_NOTE + w)
        record_stop(spec.name, settings.registry_dir, run_id=run_id, reason=reason, err=err, who=who)
        rename_current_run(lambda current: training_run_name(spec.name, None, current, label="stopped"))
        raise
    gate = apply_gate(spec, evaluation, champion, monotonic, mcs=market["model_confidence_set"])
    decision = promote_or_reject(
        spec, run_id=run_id, reason=reason, started_at=started_at,
        data=data.info, validation=validation, plan=plan, evaluation=evaluation, fitted=fitted,
        champion=champion, gate=gate, registry_root=settings.registry_dir, reports_root=settings.reports_dir,
        warnings=warnings, leakage=leakage, table=data.table, drivers=drivers, monotonic=monotonic,
        reasons=reasons, market_tests=market, who=who, register_as=register_as,
    )

    primary = spec.gate.primary_metric
    summary = {
        "model": spec.name,
        "best_candidate": evaluation.best,
        "primary_metric": primary,
        "value": evaluation.metrics.get(primary),
        "gate": "passed" if gate.passed else "failed",
        "version": decision.version,
        "champion": decision.champion_after,
        "promoted": decision.promoted,
        "alias": decision.alias,
        "pending": decision.pending,
        "reason": decision.reason,
        "evidence": decision.evidence_path,
        "warnings": run_warnings,
    }
    publish_markdown(
        artifact_key(spec.name, "training-summary"),
        training_summary_markdown(spec.name, decision.as_dict(), evaluation.metrics, primary,
                                  evaluation.rows, gate.as_dict(), spec.task, data.info),
        f"Training summary of {spec.name}",
    )
    publish_table(artifact_key(spec.name, "candidates"), evaluation.rows, f"Holdout metrics of {spec.name}'s candidates")
    publish_registry_page(spec.name, decision.version, "the version's card, gate table and lineage")
    emit(
        "finml.model.pending" if decision.pending else "finml.model.promoted" if decision.promoted
        else "finml.model.rejected", spec.name,
        {"model": spec.name, "version": decision.version, "champion": decision.champion_after,
         "primary_metric": primary, "value": evaluation.metrics.get(primary), "reason": decision.reason},
    )
    rename_current_run(lambda current: training_run_name(spec.name, decision.version if decision.promoted else None, current))
    logger.info("%s: %s", spec.name, decision.reason)
    if decision.pending and in_deployment_run():  # suspend for the form (tasks.approval); locally: stays pending
        request = waiting_request(settings.registry_dir, spec.name, run_id)
        if request is not None:
            return await_decision(spec.name, settings.registry_dir, request, summary)
    return summary


def await_decision(model: str, registry_root, request, summary: dict[str, Any]) -> dict[str, Any]:
    """Suspend for the approval form of ``request`` (:func:`tasks.approval.wait_for_approval`),
    then emit ``finml.model.promoted`` or ``finml.model.rejected`` and return ``summary`` with
    the decision (``approval``), ``promoted`` and the champion after it."""
    from models.registry import ModelRegistry

    outcome = wait_for_approval(registry_root, model, request) if request.state == "pending" else outcome_of(request)
    champion = ModelRegistry(registry_root, model).champion()
    approved = outcome["state"] == "approved"
    summary = {**summary, "approval": outcome, "promoted": approved, "pending": False, "champion": champion,
               "reason": f"version {request.version} {outcome['state']}"
                         + (f" by {outcome['by']}: {outcome['comment']}" if outcome.get("by") else "")}
    emit("finml.model.promoted" if approved else "finml.model.rejected", model,
         {"model": model, "version": request.version, "champion": champion, "reason": summary["reason"],
          "approval": outcome["state"], "approver": outcome.get("by")})
    if approved:
        rename_current_run(lambda current: training_run_name(model, request.version, current))
    return summary


WARNING_NOTE = "finml warning: "
"""Prefix of the notes (``BaseException.add_note``) with which a stopped training run's error
carries the warnings the run gave before it stopped, for its summary."""


def _warn(logger, collected: list[str], warnings: list[str]) -> None:
    """Add ``warnings`` to ``collected`` (the summary's) and log each (Prefect's run log keeps them),
    marked :data:`models.errors.SHOWN_BY_CALLER`: a ``finml`` command prints them with the summary."""
    for w in warnings:
        collected.append(w)
        logger.warning("%s", w, extra={SHOWN_BY_CALLER: True})


def _failed_summary(name: str, message: str, warnings: list[str] | None = None) -> dict[str, Any]:
    return {"model": name, "best_candidate": None, "primary_metric": None, "value": None, "gate": "error",
            "version": None, "champion": None, "promoted": False, "reason": message, "warnings": warnings or []}


@step("train-model-subflow", task_run_name="run-train-{model_name}")
def train_model_in_task(model_name: str, reason: str) -> dict[str, Any]:
    """Run ``train_model`` as a subflow inside a task, so that ``train_all`` can run models in
    parallel on its task runner; a failure becomes a summary with ``gate = "error"``."""
    return train_one(model_name, reason, thread_runner())


def train_one(model_name: str, reason: str, task_runner, register_as: str | None = None) -> dict[str, Any]:
    """Run ``train_model`` for one model on ``task_runner`` (its candidates' fits), tagged with
    the model's name, and return its summary; a failure becomes a summary with ``gate = "error"``
    and the error text. ``finml train MODEL`` calls it directly, so that its run is
    ``train-<model>-…`` rather than a ``train-all-…`` parent; ``register_as`` as for ``train_model``."""
    with tags(*model_tags(model_name, "training")):  # the flow run carries the model's name as a tag
        state = train_model.with_options(task_runner=task_runner)(model_name, reason=reason, register_as=register_as,
                                                                  return_state=True)
    if state.is_completed():
        return state.result()
    warnings: list[str] = []
    try:
        state.result()
        message = state.message or "failed"
    except FinmlError as err:  # bad input: its message names what to fix; the class name tells nothing
        message = str(err)
        warnings = [n[len(WARNING_NOTE):] for n in getattr(err, "__notes__", []) if n.startswith(WARNING_NOTE)]
    except Exception as err:  # the subflow's exception, re-raised by result()
        message = f"{type(err).__name__}: {err}"
    try:
        logger = get_run_logger()
    except MissingContextError:  # called from the command line, outside any run
        logger = logging.getLogger(__name__)
    # the summary's reason carries the message: a finml command prints it there, its console skips this line
    logger.error("%s failed: %s", model_name, message, extra={SHOWN_BY_CALLER: True})
    return _failed_summary(model_name, message, warnings)


def _train_all_run_name() -> str:
    models = flow_run.parameters.get("models")
    which = "-".join(models) if models and len(models) <= 3 else (f"{len(models)}-models" if models else "every-model")
    return f"train-all-{which}-{now_utc()[:16].replace(':', '')}"


@flow(name="train-all", flow_run_name=_train_all_run_name, log_prints=True)
def train_all(reason: str = "manual", models: list[str] | None = None) -> list[dict[str, Any]]:
    """Train every spec (or the listed ones); one model's failure does not stop the others.

    Models run in parallel on this flow's task runner (threads by default; see
    ``flows.runners.make_task_runner`` for Dask). Returns one summary per model, in order; a
    failed run has ``gate = "error"`` and the error text.
    """
    names = models or [s.name for s in list_specs(get_settings().specs_dir)]
    futures = [train_model_in_task.submit(name, reason) for name in names]
    return [f.result() for f in futures]
