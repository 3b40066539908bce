"""``finml ui``: serve the read-only web front end of the registry (:mod:`flows.ui`)."""

from __future__ import annotations

import typer

from flows.cli.common import EXIT_USAGE, _fail, console


def ui_cmd(
    port: int = typer.Option(4400, envvar="FINML_UI_PORT", help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", envvar="FINML_UI_HOST", help="Address to listen on."),
) -> None:
    """Browse the registry (FINML_REGISTRY_DIR) and its reports (FINML_REPORTS_DIR), read-only:
    models, versions with their model cards, gates, lineage and verified files, history, monitoring
    trends and Evidently reports. Set FINML_UI_URL to this address for Prefect's artifacts to link here."""
    from flows.server import _port_free
    from flows.server_address import bind_host, http_url
    from flows.ui import run
    from models.settings import get_settings

    try:
        host = bind_host(host)  # [::1] as written in a URL: bound as ::1
    except ValueError as err:
        _fail(str(err), code=EXIT_USAGE)
    settings = get_settings()
    if not _port_free(host, port):
        _fail(f"port {port} on {host} is in use; choose another with --port / FINML_UI_PORT")
    registry = settings.registry_dir.resolve()
    if registry.exists() and not registry.is_dir():
        _fail(f"FINML_REGISTRY_DIR={registry}: not a folder")
    console.print(f"finml ui on {http_url(host, port)} (registry {registry}, reports {settings.reports_dir.resolve()}); "
                  "Ctrl-C stops it", highlight=False, soft_wrap=True)
    run(registry, settings.reports_dir.resolve(), host=host, port=port)
