"""``finml ui``: the registry and its evidence in a browser, read-only.

A FastAPI application of server-rendered Jinja2 pages (no JavaScript): the models, a model, a
version, two versions compared, and the files behind them (plots, model cards, Evidently and
back-test reports) served only from the registry and reports folders. The page data comes from
:mod:`tasks.ui_pages`; this module only wires routes to those functions and templates
(``flows/templates/ui/``). Nothing here writes to the registry or takes its lock. Pages:
``docs/ui.md``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.registry import SAFE_MODEL
from models.registry_tree import is_version_name
from tasks.ui_files import media_type, read_served, render_card, safe_file
from tasks.ui_pages import compare_page, model_page, models_overview, version_page

TEMPLATES = Path(__file__).resolve().parent / "templates" / "ui"
DEFAULT_PORT = 4400


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


MAX_VERSION_DIGITS = 18
"""The longest version number a URL may name (no registry holds more than 10^18 versions; a longer
string of digits is a 404, not a conversion of thousands of digits)."""

STATUS_TITLES = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 500: "Internal error"}


def version_number(text: str | None) -> int | None:
    """A version number as written in a URL: a positive integer in ASCII digits only (``1``,
    ``12``; ``01`` is 1), else None (``abc``, ``1.0``, `` 1``, ``+1``, ``0``, ``²``, empty, more
    than :data:`MAX_VERSION_DIGITS` digits)."""
    if text is None or not is_version_name(text) or len(text) > MAX_VERSION_DIGITS:
        return None
    number = int(text)
    return number if number >= 1 else None


def create_app(registry_dir: str | Path, reports_dir: str | Path) -> FastAPI:
    """The web application over one registry folder and one reports folder (both read-only here).

    Routes: ``/`` (models), ``/models/{model}``, ``/models/{model}/versions/{n}``,
    ``/models/{model}/compare?a=&b=``, ``/registry/{path}`` and ``/reports/{path}`` (files, checked
    by :func:`tasks.ui_files.safe_file`: anything else is a 404), ``/health``. Every error is the
    site's own HTML page, never a traceback nor FastAPI's JSON: 404 for an unknown model, route or
    file and for a version that is unknown or not written as :func:`version_number` reads it, 400
    for a compare query without two version numbers (or any other bad request), 500 (logged) for
    anything unforeseen.
    """
    registry_dir, reports_dir = Path(registry_dir), Path(reports_dir)
    app = FastAPI(title="finml registry", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["fmt"] = _fmt
    context = {"registry_dir": registry_dir.resolve(), "reports_dir": reports_dir.resolve()}

    def page(request: Request, name: str, status: int = 200, **data) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {**context, **data}, status_code=status)

    def error(request: Request, status: int, what: str, headers: dict | None = None) -> HTMLResponse:
        response = page(request, "error.html", status, title=STATUS_TITLES.get(status, f"Error {status}"), message=what)
        response.headers.update(headers or {})
        return response

    def not_found(request: Request, what: str) -> HTMLResponse:
        return error(request, 404, what)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        what = "no such page here" if exc.status_code == 404 else str(exc.detail)
        return error(request, exc.status_code, what, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())[1:]) or "request" for e in exc.errors())
        return error(request, 400, f"bad request: {fields or 'the request'} cannot be read")

    @app.exception_handler(Exception)
    def internal_error(request: Request, exc: Exception) -> HTMLResponse:  # uvicorn logs the traceback
        return error(request, 500, f"this page could not be made ({type(exc).__name__}); the log of finml ui "
                                   "has the details")

    @app.get("/health", response_class=PlainTextResponse)
    def health() -> str:
        return "ok"

    @app.get("/", response_class=HTMLResponse)
    def models(request: Request):
        return page(request, "models.html", title="Models", rows=models_overview(registry_dir))

    @app.get("/models/{model}", response_class=HTMLResponse)
    def model(request: Request, model: str):
        if not SAFE_MODEL.fullmatch(model) or not (registry_dir / model).is_dir():
            return not_found(request, f"no model named {model!r} in the registry")
        return page(request, "model.html", title=model, p=model_page(registry_dir, reports_dir, model))

    @app.get("/models/{model}/versions/{text}", response_class=HTMLResponse)
    def version(request: Request, model: str, text: str):
        version = version_number(text)
        if not SAFE_MODEL.fullmatch(model) or not (registry_dir / model).is_dir():
            return not_found(request, f"no model named {model!r} in the registry")
        if version is None:
            return not_found(request, f"{model}: {text!r} is not a version number (a positive integer, digits only)")
        if not (registry_dir / model / "versions" / str(version)).is_dir():
            return not_found(request, f"{model}: no version {version}")
        data = version_page(registry_dir, model, version, f"/registry/{model}/versions/{version}/")
        return page(request, "version.html", title=f"{model} v{version}", p=data)

    @app.get("/models/{model}/compare", response_class=HTMLResponse)
    def compare(request: Request, model: str, a: str | None = None, b: str | None = None):
        if not SAFE_MODEL.fullmatch(model) or not (registry_dir / model).is_dir():
            return not_found(request, f"no model named {model!r} in the registry")
        numbers = {name: version_number(value) for name, value in (("a", a), ("b", b))}
        wrong = [f"{name}={value!r}" if value is not None else f"{name} missing" for name, value in (("a", a), ("b", b))
                 if numbers[name] is None]
        if wrong:
            return error(request, 400, f"compare needs two version numbers, ?a=<n>&b=<m> (positive integers, digits "
                                       f"only): {', '.join(wrong)}")
        a, b = numbers["a"], numbers["b"]
        for n in (a, b):
            if not (registry_dir / model / "versions" / str(n)).is_dir():
                return not_found(request, f"{model}: no version {n}")
        return page(request, "compare.html", title=f"{model}: v{a} and v{b}", p=compare_page(registry_dir, model, a, b))

    def serve(request: Request, root: Path, rel: str) -> Response:
        path = safe_file(root, rel)
        if path is None:
            return not_found(request, "no such file here")
        try:
            body = read_served(path)
        except OSError:
            return not_found(request, "no such file here")
        if path.suffix == ".md" and "raw" not in request.query_params:  # a model card, rendered; ?raw=1: as stored
            folder = request.url.path.rsplit("/", 1)[0] + "/"  # its plots are beside it (reports/...)
            return page(request, "markdown.html", title=path.name, source=request.url.path + "?raw=1",
                        html=render_card(body.decode("utf-8", "replace"), folder))
        return Response(body, media_type=media_type(path))

    @app.get("/registry/{rel:path}")
    def registry_file(request: Request, rel: str):
        return serve(request, registry_dir, rel)

    @app.get("/reports/{rel:path}")
    def report_file(request: Request, rel: str):
        return serve(request, reports_dir, rel)

    return app


def launch(host: str, port: int, env: dict[str, str], state_dir: Path, cwd: Path, timeout: float,
           logs: dict[str, str]) -> tuple[int, str]:
    """Start ``finml ui`` in the background for ``finml server start`` (its own session, output to
    ``<state_dir>/ui.log``, recorded in ``logs``), wait until ``/health`` answers, and set
    ``FINML_UI_URL`` in ``env`` (unless set) for the processes started after it. Returns
    ``(pid, url)``.

    Raises:
        OrchestrationError: it exited or did not answer within ``timeout`` seconds (the log's tail
        is in the message; the process is left for the caller's stop, which finds it by its tag).
    """
    import subprocess
    import sys
    import time
    import urllib.request

    from models.errors import OrchestrationError

    from flows.server_address import http_url

    url, log = http_url(host, port), Path(state_dir) / "ui.log"
    logs["ui"] = str(log)
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "ui", "--host", host, "--port", str(port)], cwd=cwd,
                                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=3) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise OrchestrationError(f"finml ui did not answer on {url} (exit code {proc.poll()}):\n{tail}")
        time.sleep(0.3)
    env.setdefault("FINML_UI_URL", url)
    return proc.pid, url


def run(registry_dir: Path, reports_dir: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Serve :func:`create_app` with uvicorn until interrupted (SIGINT or SIGTERM)."""
    import uvicorn

    uvicorn.run(create_app(registry_dir, reports_dir), host=host, port=port, log_level="warning")
