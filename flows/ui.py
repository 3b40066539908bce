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
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.templating import Jinja2Templates

from models.registry import SAFE_MODEL
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


def create_app(registry_dir: str | Path, reports_dir: str | Path) -> FastAPI:
    """The web application over one registry folder and one reports folder (both read-only here).

    Routes: ``/`` (models), ``/models/{model}``, ``/models/{model}/versions/{n}``,
    ``/models/{model}/compare?a=&b=``, ``/registry/{path}`` and ``/reports/{path}`` (files, checked
    by :func:`tasks.ui_files.safe_file`: anything else is a 404), ``/health``.
    """
    registry_dir, reports_dir = Path(registry_dir), Path(reports_dir)
    app = FastAPI(title="finml registry", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["fmt"] = _fmt
    context = {"registry_dir": registry_dir.resolve(), "reports_dir": reports_dir.resolve()}

    def page(request: Request, name: str, status: int = 200, **data) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {**context, **data}, status_code=status)

    def not_found(request: Request, what: str) -> HTMLResponse:
        return page(request, "error.html", 404, title="Not found", message=what)

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

    @app.get("/models/{model}/versions/{version}", response_class=HTMLResponse)
    def version(request: Request, model: str, version: int):
        if not SAFE_MODEL.fullmatch(model) or not (registry_dir / model / "versions" / str(version)).is_dir():
            return not_found(request, f"{model}: no version {version}")
        data = version_page(registry_dir, model, version, f"/registry/{model}/versions/{version}/")
        return page(request, "version.html", title=f"{model} v{version}", p=data)

    @app.get("/models/{model}/compare", response_class=HTMLResponse)
    def compare(request: Request, model: str, a: int, b: int):
        if not SAFE_MODEL.fullmatch(model) or not (registry_dir / model).is_dir():
            return not_found(request, f"no model named {model!r} in the registry")
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

    url, log = f"http://{host}:{port}", Path(state_dir) / "ui.log"
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
