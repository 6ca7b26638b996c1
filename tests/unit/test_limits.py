"""Input that hurts (issue 8.11): bodies are refused by size before they are decoded, an
order keeps a bounded number of messages, 10^6 line items are refused, the same evidence
file is stored once."""

from __future__ import annotations

import json
from datetime import timedelta

import bson
import pytest

from shared.contracts.parties import Role
from shared.domain.errors import DomainError
from shared.infra.clock import ManualClock

from services.order.domain import MAX_MESSAGES_PER_ORDER
from tests.support.memory import InMemoryPlatform
from tests.support.trade import Trade
from tests.unit.test_order_domain import BUYER, SUPPLIER, placed
from tests.unit.test_text import order_body


@pytest.fixture
async def platform():
    running = InMemoryPlatform()
    await running.start()
    yield running
    await running.stop()


async def test_a_body_above_the_limit_is_refused_with_413_from_its_declared_length(platform):
    trade = Trade(platform)
    async with platform.client("order", trade.buyer, Role.BUYER) as client:
        response = await client.post("/orders", content=b"{" + b" " * (300 * 1024) + b"}",
                                     headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_streamed_body_is_cut_off_at_the_limit_without_a_declared_length(platform):
    trade = Trade(platform)
    chunks_sent = 0

    async def stream():
        nonlocal chunks_sent
        for _ in range(1000):  # 64 MB if it were all read
            chunks_sent += 1
            yield b" " * 65536

    async with platform.client("order", trade.buyer, Role.BUYER) as client:
        response = await client.post("/orders", content=stream(),
                                     headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert chunks_sent < 10


async def test_a_million_line_items_are_refused_before_they_are_decoded(platform):
    trade = Trade(platform)
    body = order_body(trade)
    body["items"] = body["items"] * 1_000_000
    raw = json.dumps(body).encode()  # ~60 MB
    async with platform.client("order", trade.buyer, Role.BUYER) as client:
        response = await client.post("/orders", content=raw,
                                     headers={"content-type": "application/json"})
    assert response.status_code == 413


async def test_more_line_items_than_an_order_takes_are_a_field_error(platform):
    trade = Trade(platform)
    body = order_body(trade)
    body["items"] = body["items"] * 201
    async with platform.client("order", trade.buyer, Role.BUYER) as client:
        response = await client.post("/orders", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "items"


def test_an_order_keeps_a_bounded_number_of_messages_and_stays_far_below_16_mb():
    clock = ManualClock()
    order = placed(clock)
    longest = "\U0001f4e6" * 5000  # 5000 characters of 4 bytes
    for i in range(MAX_MESSAGES_PER_ORDER):
        clock.advance(timedelta(minutes=4))  # within the per-hour rate limit
        order.post_message(BUYER if i % 2 else SUPPLIER, longest, clock.now())
    with pytest.raises(DomainError, match=f"{MAX_MESSAGES_PER_ORDER} messages"):
        order.post_message(BUYER, "one more", clock.now())
    assert len(bson.encode(order.model_dump(mode="json"))) < 12 * 1024 * 1024


async def test_the_message_limit_is_a_clear_409_on_the_api(platform, monkeypatch):
    monkeypatch.setattr("services.order.domain.MAX_MESSAGES_PER_ORDER", 2)
    trade = Trade(platform)
    await trade.place()
    for _ in range(2):
        await trade.call("order", "POST", f"/orders/{trade.order_id}/messages",
                         body={"text": "hello"}, expect=201)
    response = await trade.call("order", "POST", f"/orders/{trade.order_id}/messages",
                                body={"text": "hello"}, expect=409)
    assert "2 messages" in response.json()["detail"]


def test_the_body_limit_is_a_setting_with_a_larger_one_for_dispute_evidence():
    from services.dispute.settings import DisputeSettings
    from services.order.settings import OrderSettings
    assert OrderSettings().max_request_bytes == 256 * 1024
    assert DisputeSettings().max_request_bytes > 10 * 1024 * 1024
