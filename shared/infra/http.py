"""The HTTP side every service shares: RFC 9457 problem details for every error (with
field-level entries for validation), health endpoints, correlation ids.

Domain errors carry no status code: this is where each type gets its HTTP answer."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.domain.errors import DomainError, InvalidRequest, NotFound, NotPermitted
from shared.infra.auth import Unauthenticated

PROBLEM = "application/problem+json"
CORRELATION_HEADER = "x-correlation-id"

# Status and title per error type; the most specific class in an error's MRO wins.
# A service adds its own (e.g. a declined card) through ``create_app(problems=...)``.
Problems = dict[type[Exception], tuple[int, str]]
PROBLEMS: Problems = {
    DomainError: (409, "Not allowed in the order's current state"),
    InvalidRequest: (422, "Invalid request"),
    NotPermitted: (403, "Not permitted"),
    NotFound: (404, "Not found"),
    Unauthenticated: (401, "Authentication required"),
}


def status_of(exc: Exception, problems: Problems) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in problems:
            return problems[cls]
    raise LookupError(f"no HTTP answer is declared for {type(exc).__name__}")


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


def install_problem_handlers(app: FastAPI, problems: Problems) -> None:
    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        status, title = status_of(exc, problems)
        field = getattr(exc, "field", None)
        detail = getattr(exc, "detail", str(exc))
        errors = [{"field": field, "message": detail}] if field else None
        return problem(status, title, detail, errors=errors, instance=request.url.path)

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(Unauthenticated, domain_error)

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
               metrics: CollectorRegistry | None = None, lifespan: Any = None,
               problems: Problems | None = None) -> FastAPI:
    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    app.state.settings = settings
    install_problem_handlers(app, {**PROBLEMS, **(problems or {})})

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
