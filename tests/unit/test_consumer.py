"""The consumer's batch handling without a broker: different orders concurrently, one
order's messages in order, a failure that fails the batch, and misrouted events dead-lettered."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.errors import ConnectionFailure

from shared.contracts.envelope import Envelope
from shared.contracts.events import EscrowFunded, OrderCancelled
from shared.contracts.parties import Parties, Party
from shared.contracts.topics import Service, Topics
from shared.contracts.trade import PaymentMethod
from shared.infra import messaging
from shared.infra.clock import ManualClock
from shared.infra.messaging import DEAD_LETTER_REASON, Delivery, EventConsumer

PARTIES = Parties(buyer=Party(party_id="buyer-1", name="Buyer", email="buyer@example.com"),
                  supplier=Party(party_id="supplier-1", name="Supplier", email="supplier@example.com"))
CLOCK = ManualClock()


class FakeBroker:
    """What the consumer uses of a broker: a subscription and publishing dead letters."""

    def __init__(self) -> None:
        self.published: list[dict] = []

    def subscriber(self, *topics, **options):
        return lambda handler: handler

    async def publish(self, body, **kwargs) -> None:
        self.published.append({"body": body, **kwargs})


def funded(order_id: str, amount: int = 100) -> Envelope:
    return Envelope.wrap(EscrowFunded(order_id=order_id, parties=PARTIES, amount=amount, currency="USD",
                                      method=PaymentMethod.CARD), occurred_at=CLOCK.now())


def delivery(envelope: Envelope, offset: int, key: str | None = None) -> Delivery:
    return Delivery(envelope.to_bytes(), (key or envelope.order_id).encode(), {}, f"t/0@{offset}")


def consumer(handler, broker: FakeBroker | None = None, **options) -> EventConsumer:
    return EventConsumer(Service.ORDER, broker or FakeBroker(), Topics("t"),
                         {EscrowFunded: handler, OrderCancelled: handler}, **options)


async def test_different_orders_are_handled_concurrently_and_each_order_in_order():
    started: dict[str, asyncio.Event] = {"ord-a": asyncio.Event(), "ord-b": asyncio.Event()}
    seen: list[tuple[str, int]] = []

    async def handler(envelope: Envelope, event: EscrowFunded) -> None:
        started[event.order_id].set()
        other = "ord-b" if event.order_id == "ord-a" else "ord-a"
        # Each order's first message waits until the other order has started: this finishes
        # only if the two orders are in flight at the same time.
        await asyncio.wait_for(started[other].wait(), timeout=5)
        seen.append((event.order_id, event.amount))

    batch = [delivery(funded("ord-a", 1), 0), delivery(funded("ord-a", 2), 1),
             delivery(funded("ord-b", 1), 2), delivery(funded("ord-a", 3), 3),
             delivery(funded("ord-b", 2), 4)]
    await consumer(handler).handle_batch(batch)

    assert [amount for order, amount in seen if order == "ord-a"] == [1, 2, 3]
    assert [amount for order, amount in seen if order == "ord-b"] == [1, 2]


async def test_in_flight_orders_are_bounded():
    in_flight = peak = 0

    async def handler(envelope: Envelope, event: EscrowFunded) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)
        in_flight -= 1

    await consumer(handler, max_in_flight=3).handle_batch(
        [delivery(funded(f"ord-{i}"), i) for i in range(20)])
    assert peak == 3


async def test_a_transient_failure_fails_the_batch_after_the_other_orders_and_stops_its_order(monkeypatch):
    monkeypatch.setattr(messaging, "TRANSIENT_BACKOFF_SECONDS", 0.001)
    handled: list[tuple[str, int]] = []

    async def handler(envelope: Envelope, event: EscrowFunded) -> None:
        if event.order_id == "ord-bad":
            raise ConnectionFailure("database away")
        handled.append((event.order_id, event.amount))

    batch = [delivery(funded("ord-bad", 1), 0), delivery(funded("ord-bad", 2), 1),
             delivery(funded("ord-good", 1), 2)]
    broker = FakeBroker()
    with pytest.raises(ConnectionFailure):
        await consumer(handler, broker).handle_batch(batch)
    assert handled == [("ord-good", 1)]
    assert broker.published == []  # transient: not dead-lettered, it comes again


async def test_an_event_whose_envelope_names_another_order_is_dead_lettered():
    calls = []

    async def handler(envelope: Envelope, event: EscrowFunded) -> None:
        calls.append(event.order_id)

    misrouted = funded("ord-a").model_dump(mode="json")
    misrouted["order_id"] = "ord-b"
    body = Envelope.model_validate(misrouted).to_bytes()
    broker = FakeBroker()
    await consumer(handler, broker).handle_batch([Delivery(body, b"ord-b", {}, "t/0@7")])

    assert calls == []
    [letter] = broker.published
    assert letter["headers"][DEAD_LETTER_REASON].startswith("misrouted payment.escrow_funded")
    assert "'ord-b'" in letter["headers"][DEAD_LETTER_REASON]


async def test_the_handler_sees_the_events_correlation_id():
    from shared.infra.context import current_correlation_id
    seen = []

    async def handler(envelope: Envelope, event: EscrowFunded) -> None:
        seen.append(current_correlation_id())

    envelope = funded("ord-a").model_copy(update={"correlation_id": "corr-1"})
    await consumer(handler).handle_batch([delivery(envelope, 0)])
    assert seen == ["corr-1"] and current_correlation_id() is None


async def test_an_action_returning_another_order_is_refused_and_nothing_is_saved():
    """A misrouted event must not create or change another order's aggregate."""
    from shared.contracts.trade import Carrier, Logistics, ShippingMethod
    from shared.infra.runner import AggregateRunner

    from services.shipping.domain import Shipment
    from tests.support.memory_mongo import MemoryAggregateStore

    async def publish(message) -> None:
        raise AssertionError("nothing may be published")

    store = MemoryAggregateStore(Shipment)
    runner = AggregateRunner(store, CLOCK, publish)
    logistics = Logistics(shipping_method=ShippingMethod.AIR_FREIGHT, carrier=Carrier.DHL)
    with pytest.raises(ValueError, match="returned order ord-b"):
        await runner.execute("ord-a", lambda shipment, now: Shipment.expect(
            "ord-b", PARTIES, logistics, 5, now))
    assert store.docs == {}
