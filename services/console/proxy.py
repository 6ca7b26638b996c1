"""The same-origin proxy ``/api/<service>/<path>`` to a service's public HTTP API.

It forwards the user's bearer token, correlation id and idempotency key and nothing else:
each service authenticates and authorises the call itself. Only the public resources of
each service are reachable (no health, metrics or bank endpoints)."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request, Response

from shared.domain.errors import InvalidRequest, NotFound
from shared.infra.http import problem

from services.console.settings import ConsoleSettings

# The first path segment each service serves to buyers, suppliers and agents.
PUBLIC: dict[str, tuple[str, ...]] = {
    "order": ("orders",),
    "payment": ("orders",),
    "shipping": ("orders",),
    "dispute": ("orders", "disputes"),
    "notify": ("contacts",),
}
FORWARDED_REQUEST = ("authorization", "content-type", "accept", "x-correlation-id",
                     "idempotency-key")
FORWARDED_RESPONSE = ("content-type", "content-disposition", "x-correlation-id", "etag",
                      "retry-after", "x-content-type-options")
MAX_BODY_BYTES = 16 * 1024 * 1024  # an evidence upload (base64) and its statement


def router(settings: ConsoleSettings, client: httpx.AsyncClient) -> APIRouter:
    api = APIRouter(tags=["proxy"])
    bases = {name: getattr(settings, f"{name}_url").rstrip("/") for name in PUBLIC}

    @api.api_route("/api/{service}/{path:path}", methods=["GET", "POST", "PUT", "DELETE"],
                   summary="A call to a service's public API, with the caller's own token")
    async def forward(service: str, path: str, request: Request) -> Response:
        segments = path.split("/")
        if (service not in PUBLIC or segments[0] not in PUBLIC[service]
                or any(s in ("", ".", "..") for s in segments)):
            raise NotFound(f"no public resource /{path} of a service {service!r}")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise InvalidRequest(f"the request is larger than {MAX_BODY_BYTES} bytes")
        headers = {k: v for k in FORWARDED_REQUEST if (v := request.headers.get(k))}
        try:
            upstream = await client.request(request.method, f"{bases[service]}/{path}",
                                            params=request.query_params, content=body,
                                            headers=headers)
        except httpx.TransportError as exc:
            return problem(502, "Service unreachable", f"the {service} service did not answer "
                           f"({type(exc).__name__}); nothing was done here, retry shortly",
                           instance=request.url.path)
        return Response(upstream.content, status_code=upstream.status_code,
                        headers={k: v for k in FORWARDED_RESPONSE
                                 if (v := upstream.headers.get(k))})

    return api
