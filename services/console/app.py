"""Composition root of the console: static pages, the proxy to the services' public APIs,
and (development only) a token-minting endpoint for the sign-in buttons."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from shared.contracts.parties import Role
from shared.contracts.text import PartyId
from shared.domain.errors import InvalidRequest
from shared.infra.auth import mint_token
from shared.infra.http import create_app

from services.console import proxy
from services.console.settings import ConsoleSettings

STATIC = Path(__file__).parent / "static"
SIGN_IN_ROLES = (Role.AGENT, Role.BUYER, Role.SUPPLIER)


class DevelopmentSignIn(BaseModel):
    role: Role
    party_id: PartyId


class ConsoleConfig(BaseModel):
    development: bool
    identity_provider_url: str | None


def build(settings: ConsoleSettings | None = None, clock: Any = None, *,
          transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """``clock`` is accepted for the catalogue's signature (the console keeps no time);
    ``transport`` stands in for the network in unit tests."""
    settings = settings or ConsoleSettings()
    settings.check_secrets()
    client = httpx.AsyncClient(timeout=settings.proxy_timeout_seconds, transport=transport)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    async def ready() -> dict[str, str]:
        return {"console": "ok"}  # nothing of its own to reach; each page shows what fails

    app = create_app(title="Escrow console", description="Agent console and trade pages.",
                     settings=settings, ready=ready, lifespan=lifespan)
    app.include_router(proxy.router(settings, client))

    @app.get("/config", response_model=ConsoleConfig, tags=["console"])
    async def config() -> ConsoleConfig:
        return ConsoleConfig(development=settings.development,
                             identity_provider_url=settings.identity_provider_url)

    if settings.development:
        @app.post("/dev/token", tags=["development"],
                  summary="Development only: a token for any agent, buyer or supplier")
        async def development_token(body: DevelopmentSignIn) -> dict[str, str]:
            if body.role not in SIGN_IN_ROLES:
                raise InvalidRequest(f"the console signs in agents, buyers and suppliers, not a {body.role}")
            return {"token": mint_token(settings.auth_secret.get_secret_value(), body.party_id,
                                        body.role, issuer=settings.auth_issuer,
                                        audience=settings.auth_audience)}

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
