"""The scoring service (``finml serve``): FastAPI routes over :mod:`tasks.serving`.

``POST /v1/models/{name}/score`` scores one record (a JSON object) or many (an array) with the
model's champion, followed without a restart (:class:`tasks.serving.ChampionFollower`), and queues
every scored record for the ledger (:class:`tasks.serving_ledger.LedgerBuffer`). ``GET /v1/models``,
``GET /v1/models/{name}`` describe what is served; ``GET /health`` is for probes; ``/docs`` is the
OpenAPI page, with each model's record schema. Bound to 127.0.0.1 unless told otherwise; any other
address needs ``FINML_SERVE_TOKEN`` and every ``/v1`` request then its bearer token. Nothing here
imports Prefect. See ``docs/serving.md``.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from pydantic_core import to_json

from models.errors import DataError, FinmlError, UsageError
from tasks.serving import (
    ChampionFollower,
    NoChampionError,
    ReasonsRequestError,
    process_run_id,
    result_rows,
    score_records,
)
from tasks.serving_ledger import LedgerBuffer
from tasks.serving_schema import ServingUnsupportedError, record_problems, unique_problems

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4500


class ServeConfigError(UsageError):
    """The service cannot start as configured (a non-local address without a token, no model to serve)."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ServiceConfig:
    """Where the service reads and writes, and its limits (from :class:`models.settings.Settings`).

    Attributes:
        token: the bearer token every ``/v1`` request must carry, or None (loopback only).
        max_body_bytes, max_records: the request limits (413 beyond). flush_seconds: the ledger's wait.
    """

    registry_root: Path
    specs_dir: Path
    reports_root: Path
    host: str = DEFAULT_HOST
    token: str | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    max_records: int = 10_000
    flush_seconds: float = 2.0

    @classmethod
    def from_settings(cls, host: str = DEFAULT_HOST) -> "ServiceConfig":
        from models.settings import get_settings

        s = get_settings()
        token = s.serve_token.get_secret_value() if s.serve_token is not None else None
        return cls(s.registry_dir, s.specs_dir, s.reports_dir, host, token or None, s.serve_max_body_bytes,
                   s.serve_max_records, s.serve_ledger_flush_seconds)

    def check(self) -> None:
        """Raise ServeConfigError when a non-loopback ``host`` has no token."""
        if not is_loopback(self.host) and not self.token:
            raise ServeConfigError(
                f"finml serve: binding to {self.host} (not the loopback address) needs a bearer token: set "
                "FINML_SERVE_TOKEN (every /v1 request must then send 'Authorization: Bearer <token>'), or bind to "
                "127.0.0.1")


def served_models(names: list[str] | None, registry_root: Path) -> list[str]:
    """The models to serve: ``names``, or every model of the registry with a champion.

    Raises:
        ServeConfigError: no name given and no model with a champion.
    """
    if names:
        return list(dict.fromkeys(names))
    from models.registry import ModelRegistry

    root = Path(registry_root)
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        try:
            if ModelRegistry(root, folder.name).champion() is not None:
                found.append(folder.name)
        except FinmlError:
            continue
    if not found:
        raise ServeConfigError(f"finml serve: no model in the registry at {root.resolve()} has a champion; train one "
                               "first, or name the models to serve")
    return found


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(to_json(body), status_code=status, media_type="application/json", headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (by its Content-Length before reading, or
    while reading a chunked body)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPException(413, f"the body has {int(length)} bytes; the limit is {limit} (FINML_SERVE_MAX_BODY_BYTES)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body exceeds {limit} bytes (FINML_SERVE_MAX_BODY_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


def parameter_problems(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's request-validation errors as the service's 422 ``detail`` entries: ``field`` the
    parameter, ``rule`` ``reasons`` for the reasons count (as :class:`tasks.serving.ReasonsRequestError`'s
    answer), else ``query`` (or the part of the request: ``path``, ``header``)."""
    out = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ())]
        field = loc[-1] if len(loc) > 1 else None
        rule = "reasons" if field == "reasons" else (loc[0] if loc else "query")
        out.append({"record": None, "field": field, "rule": rule, "message": f"{field}: {e.get('msg')}",
                    **({"input": e["input"]} if isinstance(e.get("input"), (str, int, float, bool)) else {})})
    return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Service:
    """The service's state: one :class:`ChampionFollower` per model and the ledger buffer."""

    def __init__(self, models: list[str], config: ServiceConfig):
        self.config = config
        self.followers = {m: ChampionFollower(m, config.registry_root, config.specs_dir) for m in models}
        self.ledger = LedgerBuffer(config.registry_root, process_run_id(), config.flush_seconds,
                                   reports_root=config.reports_root)

    def follower(self, name: str) -> ChampionFollower:
        if name not in self.followers:
            raise HTTPException(404, f"model {name!r} is not served here (served: {sorted(self.followers)})")
        return self.followers[name]

    def score(self, name: str, body: bytes, reasons: int | None, as_of: str | None) -> Response:
        """Answer one scoring request (runs in the thread pool: scoring holds the GIL)."""
        follower = self.follower(name)
        if as_of is not None:
            from tasks.ledger import check_as_of

            try:
                check_as_of(as_of)
            except UsageError as err:
                return _json({"detail": [{"record": None, "field": "as_of", "rule": "date", "message": str(err)}]}, 422)
        try:
            served = follower.current()
        except NoChampionError as err:
            return _json({"detail": str(err)}, 503)
        stamp = {"model": served.model, "version": served.version}
        try:
            records = served.schema.validate_body(body)
        except ValidationError as err:
            many = body.lstrip()[:1] == b"["
            return _json({"detail": record_problems(err, many), **stamp}, 422)
        if not records:
            return _json({"detail": [{"record": None, "field": None, "rule": "body",
                                      "message": "no record: send an object or a non-empty array"}], **stamp}, 422)
        if len(records) > self.config.max_records:
            return _json({"detail": f"{len(records)} records; the limit is {self.config.max_records} per request "
                                    "(FINML_SERVE_MAX_RECORDS)", **stamp}, 413)
        repeated = unique_problems(served.schema, records)
        if repeated:
            return _json({"detail": repeated, **stamp}, 422)
        try:
            scored = score_records(served, records, reasons)
        except ReasonsRequestError as err:
            return _json({"detail": [{"record": None, "field": "reasons", "rule": "reasons", "message": str(err)}],
                          **stamp}, 422)
        except DataError as err:  # a value the batch path refuses (named): the record's fault, not the service's
            return _json({"detail": [{"record": None, "field": getattr(err, "column", None), "rule": "data",
                                      "message": str(err)}], **stamp}, 422)
        scored_at = _now()
        unledgered = self.ledger.add(served.spec, scored.table, scored.scores, scored.grades, served.version,
                                     scored_at, as_of)
        return _json({**stamp, "scored_at": scored_at, "results": result_rows(scored), "warnings": scored.warnings,
                      "ledger": {"queued": unledgered is None, "reason": unledgered}})

    def describe(self, name: str) -> dict[str, Any]:
        try:
            return self.follower(name).current().describe()
        except NoChampionError as err:
            raise HTTPException(503, str(err)) from None

    def health(self) -> tuple[dict[str, Any], int]:
        versions: dict[str, int | None] = {}
        for name, f in self.followers.items():
            try:
                versions[name] = f.current().version
            except NoChampionError:
                versions[name] = None
        ok = all(v is not None for v in versions.values())
        return ({"status": "ok" if ok else "degraded", "models": versions,
                 "ledger": {"waiting": self.ledger.waiting, "ledgered": self.ledger.ledgered,
                            "failed_appends": self.ledger.failures}}, 200 if ok else 503)


def create_app(models: list[str] | None = None, config: ServiceConfig | None = None) -> FastAPI:
    """The FastAPI app serving ``models`` (None: every model with a champion), each champion loaded and
    hash-checked now, so that a bad start fails before the port opens.

    Raises:
        ServeConfigError: a non-loopback host without a token, nothing to serve.
        RegistryError / IntegrityError / ServingUnsupportedError: a model that cannot be served (named).
    """
    config = config or ServiceConfig.from_settings()
    config.check()
    names = served_models(models, config.registry_root)
    service = Service(names, config)
    bearer = HTTPBearer(auto_error=False, description="FINML_SERVE_TOKEN")

    async def authorised(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        # async: FastAPI runs a plain function dependency in the thread pool, a hop per request
        if config.token is None:
            return
        given = "" if credentials is None else credentials.credentials
        if not secrets.compare_digest(given.encode(), config.token.encode()):
            raise HTTPException(401, "a bearer token is required (Authorization: Bearer <FINML_SERVE_TOKEN>)",
                                headers={"WWW-Authenticate": "Bearer"})

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.ledger.start()
        try:
            yield
        finally:
            await run_in_threadpool(service.ledger.close)

    app = FastAPI(title="finml scoring service", lifespan=lifespan,
                  description="Scores records with each model's champion; see docs/serving.md.")
    app.state.service = service
    guard = [Depends(authorised)]

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> Response:
        """A query parameter FastAPI refuses (``?reasons=x``), answered in the service's 422 format."""
        return _json({"detail": parameter_problems(exc.errors())}, 422)

    @app.get("/health", tags=["service"])
    async def health() -> Response:
        body, status = await run_in_threadpool(service.health)
        return _json(body, status)

    @app.get("/v1/models", dependencies=guard, tags=["models"])
    async def list_models() -> Response:
        out = []
        for name in service.followers:
            try:
                d = await run_in_threadpool(service.describe, name)
                out.append({k: d[k] for k in ("model", "version", "task", "grades", "points_scale", "reasons")})
            except HTTPException as err:
                out.append({"model": name, "version": None, "error": err.detail})
        return _json({"models": out})

    @app.get("/v1/models/{name}", dependencies=guard, tags=["models"])
    async def describe(name: str) -> Response:
        return _json(await run_in_threadpool(service.describe, name))

    reasons_q = Query(None, description="adverse-action reasons per declined record, 1..5")
    as_of_q = Query(None, description="the as-of date of every record for the ledger (ISO), when the spec names no "
                                      "backtest.as_of column; default: the scoring time")

    async def answer(model: str, request: Request, reasons: int | None, as_of: str | None) -> Response:
        body = await read_body(request, config.max_body_bytes)
        return await run_in_threadpool(service.score, model, body, reasons, as_of)

    def scorer(model: str):
        async def score(request: Request, reasons: int | None = reasons_q, as_of: str | None = as_of_q) -> Response:
            return await answer(model, request, reasons, as_of)
        return score

    async def score_any(name: str, request: Request, reasons: int | None = reasons_q,
                        as_of: str | None = as_of_q) -> Response:
        return await answer(name, request, reasons, as_of)

    for name, follower in service.followers.items():
        schema = follower.served.schema.json_schema
        app.add_api_route(
            f"/v1/models/{name}/score", scorer(name), methods=["POST"], dependencies=guard, tags=["scoring"],
            summary=f"Score {name} records with its champion",
            openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                "oneOf": [schema, {"type": "array", "items": schema}]}}}}})
    app.add_api_route("/v1/models/{name}/score", score_any, methods=["POST"], dependencies=guard,
                      include_in_schema=False)
    return app


def run(app: FastAPI, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve ``app`` with uvicorn until SIGINT/SIGTERM (then the ledger is flushed, :class:`LedgerBuffer`)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=10)


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ServeConfigError", "ServiceConfig", "ServingUnsupportedError",
           "create_app", "is_loopback", "read_body", "run", "served_models"]
