"""How a command runs flows: here (after checking a configured API, with this process's tags), or
as deployment runs on a Prefect server (``--deployment``)."""

from __future__ import annotations

from typing import Any

import typer

from flows.cli.common import _fail, console, err_console
from flows.cli.signals import _arm_timer_on_prefect_sigterm


def _check_configured_api() -> None:
    """Prepare a command that runs flows itself. With ``PREFECT_API_URL`` set, a local run reports to
    that server: fail in one line when it does not answer (Prefect would otherwise retry and end in a
    long traceback). Then tag this process's runs and mark dead runs Crashed
    (:func:`flows.lifetime.claim_local_runs`), let a SIGTERM during a flow end the command, and keep
    Prefect's console from repeating the error the command prints (:func:`flows.cli.common.quiet_prefect_console`)."""
    from prefect.settings import PREFECT_API_URL

    from flows.cli.common import quiet_prefect_console
    from flows.lifetime import claim_local_runs

    quiet_prefect_console()

    url = PREFECT_API_URL.value()
    import os

    from flows.server_address import RECORDED_SERVER_NOTE

    if url and os.environ.pop(RECORDED_SERVER_NOTE, None):
        err_console.print(f"using the Prefect server started by `finml server start` at {url} "
                          "(FINML_USE_SERVER=0: a temporary one instead)", highlight=False)
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


def _run_deployments(requests: list[tuple[str, str, dict[str, Any]]], timeout: float) -> list:
    """Start deployment runs on the server, wait, print each run's name, state and summary.

    Returns:
        The runs' :class:`flows.deploy.RunOutcome`, when every run completed (or is suspended for an
        approval).

    Raises:
        typer.Exit: code 1 when a run did not complete (failed, crashed, still running at the timeout).
    """
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
        if getattr(o, "suspended", False):  # a version left pending: the run waits for the form (tasks.approval)
            console.print("  suspended, waiting for an approval: answer its form in the Prefect UI, or finml approve / "
                          "finml reject", highlight=False)
        elif o.state in ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"):
            console.print(f"  still {o.state_name} after {timeout:.0f} s; follow it in the UI", highlight=False)
        elif o.message and not o.completed:
            console.print(f"  {o.message}", highlight=False)
        if o.artifacts:
            names = [a.get("key") or a.get("type") for a in o.artifacts]  # a flow's result artifact has neither
            if any(names):
                console.print("  artifacts: " + ", ".join(n for n in names if n), highlight=False)
        if o.ui_url:
            console.print(f"  {o.ui_url}", highlight=False)
    if not all(o.completed or getattr(o, "suspended", False) for o in outcomes):
        raise typer.Exit(1)
    return outcomes
