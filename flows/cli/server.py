"""``finml server``: start, stop and inspect the local Prefect server of :mod:`flows.server` (its
workers and deployments)."""

from __future__ import annotations

from pathlib import Path

import typer

from flows.cli.common import EXIT_USAGE, cli_table, console, _fail


def server_start(
    port: int = typer.Option(4200, envvar="FINML_SERVER_PORT", help="Port of the API and UI."),
    host: str = typer.Option("127.0.0.1", envvar="FINML_SERVER_HOST", help="Address to listen on."),
    worker: bool = typer.Option(True, help="Start a worker for each work pool of prefect.yaml."),
    deploy: bool = typer.Option(True, help="Create the work pools and run `prefect deploy --all`."),
    timeout: float = typer.Option(180, help="Seconds to wait for each step."),
    ui: bool = typer.Option(True, help="Start the registry's web front end (finml ui) beside the Prefect UI."),
    ui_port: int = typer.Option(4400, envvar="FINML_UI_PORT", help="Port of the registry's web front end."),
) -> None:
    """Start a Prefect server (SQLite, or PREFECT_SERVER_DATABASE_CONNECTION_URL), deploy, start workers.

    Everything runs in the background; logs and state go to $PREFECT_HOME/finml-server/.
    Stop with `finml server stop` (`make server-stop`).
    """
    from flows.server import ServerError, ServerOptions, start
    from flows.server_address import bind_host

    try:
        host = bind_host(host)  # [::1] as written in a URL: bound as ::1
    except ValueError as err:
        _fail(str(err), code=EXIT_USAGE)

    def echo(message: str) -> None:
        console.print(message, highlight=False)

    try:
        state = start(ServerOptions(host=host, port=port, worker=worker, deploy=deploy, timeout=timeout, ui=ui,
                                    ui_port=ui_port), echo=echo)
    except ServerError as err:
        _fail(str(err))
    console.print(f"[bold green]Prefect server running[/]: UI {state.ui_url}  (database {state.database})",
                  highlight=False)
    if state.finml_ui_url:
        console.print(f"  registry UI: {state.finml_ui_url}  (finml ui; the workers' artifacts link to it)", highlight=False)
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


def server_status(
    as_json: bool = typer.Option(False, "--json", help="Print the state, liveness, health and deployments as JSON."),
) -> None:
    """The server and workers started by `finml server start`: pids, health, deployments."""
    from flows.server import state_dir_for, status

    info = status(state_dir_for())
    if as_json:
        import json

        if info.get("healthy"):
            from flows.server import deployment_rows

            info["deployment_rows"] = deployment_rows(info["api_url"])
        console.print_json(json.dumps(info, default=str))
        bad = ("api_url" in info and (not info["healthy"] or not all(info["alive"].values()))) or (
            "api_url" not in info and info["tagged"])
        raise typer.Exit(1 if bad else 0)
    if "api_url" not in info:
        console.print(f"no server started from {info['state_dir']}{_HOME_HINT}"
                      + (f"; stray processes: {info['tagged']}" if info["tagged"] else ""), highlight=False)
        raise typer.Exit(0 if not info["tagged"] else 1)
    health = "healthy" if info["healthy"] else "NOT answering"
    console.print(f"server {info['ui_url']} (pid {info['server_pid']}): {health}; database {info['database']}",
                  highlight=False)
    if info.get("finml_ui_url"):
        console.print(f"  registry UI: {info['finml_ui_url']} (pid {info['ui_pid']})", highlight=False)
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

    table = cli_table(f"Deployments on {api_url}", ("deployment", "schedule (cron, UTC)", "work pool", "drift trigger"))
    for r in deployment_rows(api_url):
        table.add_row(r["name"], ", ".join(r["schedules"]) or "-", r["work_pool"] or "-", "yes" if r["triggered"] else "-")
    console.print(table)
