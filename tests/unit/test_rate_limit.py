"""Per-party rate limits on what a party can make the platform send (issue 8.8): orders
placed (each mailed to the supplier), order messages and dispute statements (each mailed to
the other side). Past the limit: 429 with Retry-After, before anything else happened."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from shared.contracts.envelope import Envelope
from shared.contracts.events import EscrowFunded, ShipmentDispatched
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import Carrier, PaymentMethod
from shared.domain.errors import TooManyRequests
from shared.infra.auth import mint_token
from shared.infra.clock import ManualClock
from shared.infra.http import create_app
from shared.infra.rate_limit import Limit, MongoWindowCounts, RateLimiter
from shared.infra.runner import AggregateRunner
from shared.infra.settings import DEV_AUTH_SECRET
from shared.infra.subscriptions import subscriptions

from services.dispute.api import router as dispute_router
from services.dispute.attachments import AttachmentStore
from services.dispute.domain import BuyerProtection
from services.dispute.handlers import DisputeService
from services.dispute.settings import DisputeSettings
from services.order.api import router as order_router
from services.order.domain import Order
from services.order.handlers import OrderService
from services.order.settings import OrderSettings
from tests.support.memory_mongo import MemoryAggregateStore, memory_collection, memory_rate_limiter

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
THREE_A_DAY = Limit("place_order", 3, timedelta(days=1), "orders placed")


async def test_a_party_gets_its_limit_per_window_then_429_until_the_next_window():
    clock = ManualClock(START)
    limiter = memory_rate_limiter(clock)
    for _ in range(3):
        await limiter.take(THREE_A_DAY, "buyer-1")
    clock.advance(timedelta(hours=5))
    with pytest.raises(TooManyRequests, match=r"at most 3 orders placed per day") as refused:
        await limiter.take(THREE_A_DAY, "buyer-1")
    window_ends = datetime(2026, 1, 6, tzinfo=UTC)
    assert refused.value.retry_after == window_ends - clock.now()

    await limiter.take(THREE_A_DAY, "buyer-2")  # another party counts on its own
    await limiter.take(Limit("order_message", 3, timedelta(days=1), "messages"), "buyer-1")

    clock.advance(window_ends - clock.now())
    for _ in range(3):
        await limiter.take(THREE_A_DAY, "buyer-1")
    with pytest.raises(TooManyRequests):
        await limiter.take(THREE_A_DAY, "buyer-1")


async def test_the_counter_documents_of_past_windows_are_removed():
    collection = memory_collection("rate_limits")
    clock = ManualClock(START)
    limiter = RateLimiter(MongoWindowCounts(collection), clock)
    for _ in range(5):
        await limiter.take(THREE_A_DAY, "buyer-1")
        await limiter.take(THREE_A_DAY, "buyer-2")
        clock.advance(timedelta(days=1))
    assert await collection.count_documents({}) == 2  # one window per party


def test_a_limit_needs_a_positive_count_and_window():
    with pytest.raises(ValueError, match="positive"):
        Limit("place_order", 0, timedelta(days=1), "orders")
    with pytest.raises(ValueError, match="positive"):
        Limit("place_order", 1, timedelta(0), "orders")


# --- the services take it before anything else -----------------------------------------

def token(party_id: str, role: Role) -> dict[str, str]:
    return {"authorization": f"Bearer {mint_token(DEV_AUTH_SECRET, party_id, role)}"}


BUYER, SUPPLIER = token("buyer-1", Role.BUYER), token("supplier-1", Role.SUPPLIER)
ORDER = {"supplier": {"party_id": "supplier-1", "name": "Shenzhen Parts"},
         "buyer_contact": {"name": "ACME Imports"},
         "items": [{"description": "Bolts", "quantity": 1, "unit_price": 100}],
         "currency": "USD", "delivery_period_days": 10,
         "destination": {"recipient": "ACME", "line1": "Hafenstrasse 1", "city": "Hamburg",
                         "country": "DE"}}


class Published(list):
    async def __call__(self, message):
        self.append(message.envelope())


async def _ready() -> dict[str, str]:
    return {"store": "ok"}


@pytest.fixture
async def orders():
    clock, published = ManualClock(START), Published()
    settings = OrderSettings(orders_per_party=2, messages_per_party=3)
    runner = AggregateRunner(MemoryAggregateStore(Order), clock, published)
    app = create_app(title="orders", description="", settings=settings, ready=_ready)
    app.include_router(order_router(OrderService(runner, settings, memory_rate_limiter(clock))))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://order") as client:
        yield client, published


async def test_placing_past_the_limit_is_429_with_retry_after_and_places_nothing(orders):
    client, published = orders
    for _ in range(2):
        assert (await client.post("/orders", json=ORDER, headers=BUYER)).status_code == 201
    refused = await client.post("/orders", json=ORDER, headers=BUYER)
    assert refused.status_code == 429, refused.text
    assert refused.headers["retry-after"] == str(15 * 3600)  # 09:00 until midnight
    assert "at most 2 orders placed per day" in refused.json()["detail"]
    assert len((await client.get("/orders", headers=BUYER)).json()) == 2
    assert [e.event_type for e in published] == ["order.placed"] * 2


async def test_messages_past_the_limit_are_429_and_not_added(orders):
    client, published = orders
    order_id = (await client.post("/orders", json=ORDER, headers=BUYER)).json()["order_id"]
    path = f"/orders/{order_id}/messages"
    for i in range(3):
        assert (await client.post(path, json={"text": f"hello {i}"},
                                  headers=SUPPLIER)).status_code == 201
    refused = await client.post(path, json={"text": "one more"}, headers=SUPPLIER)
    assert refused.status_code == 429 and refused.headers["retry-after"], refused.text
    assert len((await client.get(path, headers=BUYER)).json()) == 3
    # the buyer's own budget is untouched
    assert (await client.post(path, json={"text": "and mine"}, headers=BUYER)).status_code == 201


async def test_dispute_statements_past_the_limit_are_429_and_not_added():
    clock, published = ManualClock(START), Published()
    settings = DisputeSettings(statements_per_party=2)
    runner = AggregateRunner(MemoryAggregateStore(BuyerProtection), clock, published)
    service = DisputeService(runner, AttachmentStore(memory_collection("dispute_attachments")),
                             settings, memory_rate_limiter(clock))
    parties = Parties(buyer=Party(party_id="buyer-1", name="B"),
                      supplier=Party(party_id="supplier-1", name="S"))
    handlers = subscriptions(service)
    for event in (EscrowFunded(order_id="ord-1", parties=parties, amount=1000, currency="USD",
                               method=PaymentMethod.CARD),
                  ShipmentDispatched(order_id="ord-1", parties=parties, carrier=Carrier.DHL,
                                     tracking_number="1234567890", ship_date=date(2026, 1, 5),
                                     dispatched_at=clock.now())):
        env = Envelope.wrap(event, occurred_at=clock.now())
        await handlers[type(event)](env, env.event())
    clock.advance(timedelta(days=6))
    app = create_app(title="disputes", description="", settings=settings, ready=_ready)
    app.include_router(dispute_router(service))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://dispute") as client:
        opened = await client.post("/orders/ord-1/dispute", headers=BUYER, json={
            "reason": "not_received", "requested": "full_refund", "description": "nothing came"})
        assert opened.status_code == 201, opened.text
        path = "/orders/ord-1/dispute/statements"
        assert (await client.post(path, json={"text": "still nothing"},
                                  headers=BUYER)).status_code == 201
        refused = await client.post(path, json={"text": "and again"}, headers=BUYER)
        assert refused.status_code == 429 and refused.headers["retry-after"], refused.text
        dispute = (await client.get("/orders/ord-1/dispute", headers=BUYER)).json()["dispute"]
        assert [s["text"] for s in dispute["statements"]] == ["still nothing"]
        assert (await client.post(path, json={"text": "it was delivered"},
                                  headers=SUPPLIER)).status_code == 201
