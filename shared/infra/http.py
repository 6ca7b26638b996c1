"""The HTTP side every service shares: RFC 9457 problem details for every error (with
field-level entries for validation), health endpoints, correlation ids."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.infra.errors import DomainError

PROBLEM = "application/problem+json"
CORRELATION_HEADER = "x-correlation-id"


def problem(status: int, title: str, detail: str, *, errors: list[dict[str, Any]] | None = None,
            instance: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def correlation_id(request: Request) -> str:
    """The caller's correlation id if given, else a new one; it follows every event the
    request causes."""
    return request.headers.get(CORRELATION_HEADER) or uuid.uuid4().hex


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        errors = [{"field": exc.field, "message": exc.detail}] if exc.field else None
        return problem(exc.status, exc.title, exc.detail, errors=errors, instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"],
             "type": e["type"]}
            for e in exc.errors()
        ]
        return problem(422, "Invalid request", f"{len(errors)} field(s) are invalid",
                       errors=errors, instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), str(exc.detail), instance=request.url.path)


def create_app(*, title: str, description: str, settings: Any,
               ready: Callable[[], Awaitable[dict[str, str]]],
               metrics: CollectorRegistry | None = None, lifespan: Any = None) -> FastAPI:
    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    app.state.settings = settings
    install_problem_handlers(app)

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/health/ready", tags=["health"])
    async def is_ready() -> JSONResponse:
        checks = await ready()
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks},
                            status_code=200 if ok else 503)

    registry = metrics or CollectorRegistry()

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics of this service's messaging")
    async def prometheus() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
