"""A database outage is an honest 503 with Retry-After, never a 500."""

from __future__ import annotations

import httpx
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from shared.infra.http import create_app
from shared.infra.settings import ServiceSettings
from shared.infra.store import ConcurrencyConflict


async def _fine() -> dict[str, str]:
    return {"mongodb": "ok"}


@pytest.mark.parametrize("failure", [ServerSelectionTimeoutError("no primary"),
                                     ConcurrencyConflict("ord_1: gave up after 20 conflicts")])
async def test_an_unreachable_database_answers_503_with_retry_after(failure):
    app = create_app(title="t", description="t", ready=_fine, settings=ServiceSettings())

    @app.post("/orders/{order_id}/confirm")
    async def confirm(order_id: str) -> None:
        raise failure

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.post("/orders/ord_1/confirm")
    assert answer.status_code == 503 and answer.headers["retry-after"] == "2"
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == "Temporarily unavailable"
