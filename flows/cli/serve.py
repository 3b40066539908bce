"""``finml serve``: the online scoring service of :mod:`flows.serve` (``docs/serving.md``)."""

from __future__ import annotations

from typing import Optional

import typer

from flows.cli.common import EXIT_USAGE, _error_message, _fail, console


def serve_cmd(
    models: Optional[list[str]] = typer.Argument(None, help="Models to serve (default: every model with a champion)."),
    port: int = typer.Option(4500, "--port", envvar="FINML_SERVE_PORT", help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", envvar="FINML_SERVE_HOST",
                             help="Address to listen on; any but the loopback one needs FINML_SERVE_TOKEN."),
) -> None:
    """Serve each model's champion over HTTP: POST /v1/models/NAME/score, GET /v1/models, GET /health,
    OpenAPI docs at /docs. Follows the champion alias (promotion, rollback) without a restart; every scored
    record goes to the ledger. Prefect is neither imported nor started. Stop with Ctrl-C (the ledger is
    flushed first).

    Exit code: 2 when it cannot start (no champion, a non-local address without a token, a damaged version).
    """
    from flows.cli import validate

    if validate._standalone:  # this process runs only the service: the steps become plain functions
        from tasks.step import without_prefect

        without_prefect()
    from flows.serve import ServiceConfig, create_app, run
    from flows.server_address import bind_host, http_url
    from models.errors import FinmlError

    try:
        host = bind_host(host)  # [::1] as written in a URL: bound as ::1
    except ValueError as err:
        _fail(str(err), code=EXIT_USAGE)
    config = ServiceConfig.from_settings(host)
    try:
        app = create_app(models or None, config)
    except FinmlError as err:
        _fail(_error_message(err), code=EXIT_USAGE)
    served = app.state.service.followers
    listed = ", ".join(f"{name} v{f.served.version}" for name, f in served.items())
    url = http_url(host, port)
    console.print(f"serving {listed} on {url}  (docs: {url}/docs"
                  f"{'; bearer token required' if config.token else ''})", highlight=False, soft_wrap=True)
    run(app, host, port)


__all__ = ["serve_cmd"]
