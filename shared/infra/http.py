"""The HTTP side every service shares: RFC 9457 problem details for every error (with
field-level entries for validation), health endpoints, correlation ids echoed in every
response, and one access log line per request (health probes and scrapes left out).

Domain errors carry no status code: this is where each type gets its HTTP answer."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from opentelemetry.trace import SpanKind
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.contracts.parties import Role
from shared.domain.errors import DomainError, InvalidRequest, NotFound, NotPermitted, NotYet, TooManyRequests
from shared.infra import context, telemetry
from shared.infra.auth import Unauthenticated, verifier_of
from shared.infra.metrics import HttpMetrics
from shared.infra.settings import DEFAULT_MAX_REQUEST_BYTES
from shared.infra.store import ConcurrencyConflict

PROBLEM = "application/problem+json"
CORRELATION_HEADER = "x-correlation-id"
QUIET_PATHS = ("/health/", "/metrics")
_ORDER_IN_PATH = re.compile(r"^/orders/([^/]+)")

access_log = logging.getLogger("escrow.access")


class ProblemField(BaseModel):
    field: str = Field(examples=["items.0.quantity"])
    message: str
    type: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details: every error answer of every service has this shape."""

    type: str = "about:blank"
    title: str = Field(examples=["Not permitted"])
    status: int = Field(examples=[403])
    detail: str
    instance: str | None = Field(default=None, examples=["/orders/ord_1/confirm"])
    errors: list[ProblemField] | None = None


def _problem_response(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


# Declared on every API route, so integrators see the error answers in OpenAPI.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _problem_response("No valid bearer token"),
    403: _problem_response("The token's party or role may not do this"),
    404: _problem_response("No such order (or not one the caller may see)"),
    409: _problem_response("Not allowed in the order's current state"),
    422: _problem_response("Invalid request, with one entry per invalid field"),
}


def operation_id(route: APIRoute) -> str:
    """Readable and stable: ``<tag>_<function>``, e.g. ``orders_confirm``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join([*(str(tag) for tag in route.tags[:1]), route.name]))


def _problems_in_openapi(app: FastAPI) -> None:
    """Declare every error answer as ``application/problem+json`` with the Problem schema,
    as the handlers send them (FastAPI would say ``application/json``)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = generate()
        document.setdefault("components", {}).setdefault("schemas", {}).update(
            {name: schema for name, schema in _problem_schemas().items()})
        for path in document.get("paths", {}).values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    if status.startswith("4"):
                        response["content"] = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _problem_schemas() -> dict[str, Any]:
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    return {**schema.pop("$defs", {}), "Problem": schema}

# Status and title per error type; the most specific class in an error's MRO wins.
# A service adds its own (e.g. a declined card) through ``create_app(problems=...)``.
Problems = dict[type[Exception], tuple[int, str]]
PROBLEMS: Problems = {
    DomainError: (409, "Not allowed in the order's current state"),
    InvalidRequest: (422, "Invalid request"),
    NotPermitted: (403, "Not permitted"),
    NotFound: (404, "Not found"),
    TooManyRequests: (429, "Too many requests"),
    NotYet: (503, "Not yet: try again shortly"),
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
    """The caller's correlation id if given (and sane), else a new one; it follows every
    event the request causes and is echoed in the response."""
    chosen = getattr(request.state, "correlation_id", None)
    return chosen or context.new_correlation_id(request.headers.get(CORRELATION_HEADER))


def install_request_context(app: FastAPI, metrics: HttpMetrics | None = None,
                            service: str = "") -> None:
    """Bind the correlation id (and the order in the path) for every log line of the
    request, echo the id in the response, and log the request once it is answered."""

    @app.middleware("http")
    async def request_context(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                              ) -> Response:
        chosen = context.new_correlation_id(request.headers.get(CORRELATION_HEADER))
        request.state.correlation_id = chosen
        path = request.url.path
        in_path = _ORDER_IN_PATH.match(path)
        started = time.perf_counter()
        with context.bound(correlation_id=chosen, order_id=in_path.group(1) if in_path else None), \
                telemetry.span(f"{request.method} {path}", service=service, kind=SpanKind.SERVER,
                               traceparent=request.headers.get("traceparent"),
                               http__request__method=request.method, url__path=path,
                               escrow__correlation_id=chosen) as span:
            response = await call_next(request)
            response.headers[CORRELATION_HEADER] = chosen
            route = request.scope.get("route")
            span.update_name(f"{request.method} {getattr(route, 'path', path)}")
            span.set_attribute("http.response.status_code", response.status_code)
            if metrics is not None:
                metrics.observe(request.method, getattr(route, "path", "unmatched"),
                                response.status_code, time.perf_counter() - started)
            if not path.startswith(QUIET_PATHS):
                access_log.info("%s %s %s", request.method, path, response.status_code, extra={
                    "http_method": request.method, "http_path": path,
                    "http_status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
        return response


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuses a request body larger than ``max_bytes`` with a 413 problem before it is read
    in full, let alone decoded: at once when ``Content-Length`` says so, else as soon as the
    streamed body passes the limit (whatever the app would answer to its cut-off body is
    replaced by the 413)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            return await self._refuse(scope, receive, send)
        received, too_large = 0, False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                too_large = True
                raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if not too_large:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the request body is larger than {self.max_bytes} bytes"
        response = problem(413, "Request body too large", detail, instance=scope["path"])
        response.headers["connection"] = "close"
        await response(scope, receive, send)


def install_problem_handlers(app: FastAPI, problems: Problems) -> None:
    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        status, title = status_of(exc, problems)
        field = getattr(exc, "field", None)
        detail = getattr(exc, "detail", str(exc))
        errors = [{"field": field, "message": detail}] if field else None
        response = problem(status, title, detail, errors=errors, instance=request.url.path)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(max(1, math.ceil(retry_after.total_seconds())))
        return response

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(Unauthenticated, domain_error)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        """The database is out of reach (or an order kept changing under us): nothing was
        saved, so the caller may safely send the same request again."""
        response = problem(503, "Temporarily unavailable",
                           "the service cannot reach its database right now; retry shortly",
                           instance=request.url.path)
        response.headers["retry-after"] = "2"
        return response

    app.add_exception_handler(ConnectionFailure, unavailable)
    app.add_exception_handler(ConcurrencyConflict, unavailable)

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
               problems: Problems | None = None,
               refresh_metrics: Callable[[], Awaitable[None]] | None = None,
               service: str = "") -> FastAPI:
    # FastAPI's own request spans are off: the request middleware makes the one SERVER span
    # of each request (docs/operations.md, Traces), which the trade's trace links to.
    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan,
                  generate_unique_id_function=operation_id,
                  telemetry={"tracing": False, "operation_spans": False})
    _problems_in_openapi(app)
    app.state.settings = settings
    install_problem_handlers(app, {**PROBLEMS, **(problems or {})})
    app.add_middleware(BodyLimit, max_bytes=getattr(settings, "max_request_bytes",
                                                    DEFAULT_MAX_REQUEST_BYTES))
    registry = metrics or CollectorRegistry()
    install_request_context(app, HttpMetrics(registry), service)

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/health/ready", tags=["health"],
             summary="Ready when MongoDB and Kafka answer; within a second either way",
             description="Anonymous callers get the verdict only; an agent's token also "
                         "gets each dependency's check.")
    async def is_ready(request: Request) -> JSONResponse:
        timeout = settings.readiness_timeout_seconds
        try:
            checks = await asyncio.wait_for(ready(), timeout)
        except TimeoutError:
            checks = {"readiness": f"failed: no verdict within {timeout}s"}
        ok = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = {"status": "ready" if ok else "not ready"}
        if _is_agent(request, settings):
            body["checks"] = checks
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["health"],
             summary="Prometheus metrics: process, HTTP, messaging, and the service's data")
    async def prometheus() -> Response:
        if refresh_metrics is not None:
            await refresh_metrics()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _is_agent(request: Request, settings: Any) -> bool:
    """Whether the caller shows a valid agent token (readiness details are for operators)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    try:
        return verifier_of(request.app).verify(token).role is Role.AGENT
    except Unauthenticated:
        return False
