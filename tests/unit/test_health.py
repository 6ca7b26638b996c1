"""Item 10.4: readiness answers within a second either way, and tells anonymous callers
only its verdict (no hosts, ports or driver errors)."""

from __future__ import annotations

import asyncio

import httpx

from shared.contracts.parties import Role
from shared.infra.auth import mint_token
from shared.infra.http import create_app
from shared.infra.settings import DEV_AUTH_SECRET, ServiceSettings

from services.catalogue import build, settings_class

# Nothing listens there: the driver would wait for its full server selection (10 s).
UNREACHABLE_MONGODB = "mongodb://127.0.0.1:9/?directConnection=true"
UNREACHABLE_KAFKA = "127.0.0.1:9"


def agent() -> dict[str, str]:
    return {"authorization": f"Bearer {mint_token(DEV_AUTH_SECRET, 'agent-1', Role.AGENT)}"}


async def ask(app, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        # A deadline well under the driver's own 10 s: a probe that hangs fails the test.
        return await asyncio.wait_for(client.get("/health/ready", headers=headers), 5)


async def test_readiness_fails_fast_when_the_database_and_broker_are_down():
    settings = settings_class("order")(mongodb_url=UNREACHABLE_MONGODB,
                                       kafka_bootstrap_servers=UNREACHABLE_KAFKA)
    runtime = build("order", settings)
    try:
        anonymous = await ask(runtime.http)
        operator = await ask(runtime.http, agent())
        checks = await asyncio.wait_for(runtime.readiness(), 5)
    finally:
        await runtime.mongo.close()
    assert anonymous.status_code == 503
    assert anonymous.json() == {"status": "not ready"}, "no topology for anonymous callers"
    assert operator.status_code == 503
    # On a loaded machine the route's own cut may answer before the checks do.
    assert all(v.startswith("failed") for v in operator.json()["checks"].values())
    assert checks["mongodb"].startswith("failed") and checks["kafka"].startswith("failed")


async def test_a_hanging_check_is_cut_at_the_readiness_timeout():
    async def hangs() -> dict[str, str]:
        await asyncio.sleep(60)
        return {"mongodb": "ok"}

    app = create_app(title="t", description="t", ready=hangs,
                     settings=ServiceSettings(readiness_timeout_seconds=0.2))
    answer = await ask(app, agent())
    assert answer.status_code == 503
    assert "no verdict" in answer.json()["checks"]["readiness"]


async def test_ready_shows_details_to_agents_only():
    async def fine() -> dict[str, str]:
        return {"mongodb": "ok", "kafka": "ok"}

    app = create_app(title="t", description="t", ready=fine, settings=ServiceSettings())
    assert (await ask(app)).json() == {"status": "ready"}
    buyer = {"authorization": f"Bearer {mint_token(DEV_AUTH_SECRET, 'b-1', Role.BUYER)}"}
    assert (await ask(app, buyer)).json() == {"status": "ready"}
    assert (await ask(app, agent())).json()["checks"] == {"mongodb": "ok", "kafka": "ok"}
