"""The order service layer on an in-memory store: outbox, idempotency, deadlines."""

from datetime import timedelta

import pytest

from shared.contracts.envelope import Envelope
from shared.contracts.events import EscrowFunded, PaymentDeadlinePassed
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import Address, Carrier, LineItem, Logistics, PaymentMethod, ShippingMethod
from shared.domain.actor import Actor
from shared.domain.errors import NotPermitted
from shared.infra.clock import ManualClock
from shared.infra.runner import AggregateRunner
from shared.infra.subscriptions import subscriptions

from services.order.domain import Order, OrderStatus
from services.order.handlers import OrderService
from services.order.settings import OrderSettings
from tests.support.memory_mongo import MemoryAggregateStore, memory_rate_limiter

BUYER = Actor(party_id="buyer-1", role=Role.BUYER)
SUPPLIER = Actor(party_id="supplier-1", role=Role.SUPPLIER)
PARTIES = Parties(buyer=Party(party_id="buyer-1", name="Buyer", email="buyer@example.com"),
                  supplier=Party(party_id="supplier-1", name="Supplier", email="supplier@example.com"))


class Published(list):
    async def __call__(self, message):
        self.append(message.envelope())


@pytest.fixture
def world():
    clock = ManualClock()
    published = Published()
    runner = AggregateRunner(MemoryAggregateStore(Order), clock, published)
    return OrderService(runner, OrderSettings(), memory_rate_limiter(clock)), clock, published


async def place(service, key=None):
    return await service.place(BUYER, PARTIES, [LineItem(description="x", quantity=2, unit_price=500)],
                               "EUR", Address(recipient="R", line1="l", city="c", country="FR"), 7,
                               idempotency_key=key)


async def test_placing_publishes_order_placed_from_the_outbox(world):
    service, _, published = world
    order = await place(service)
    assert [e.event_type for e in published] == ["order.placed"]
    assert published[0].order_id == order.order_id
    assert await service.runner.store.outbox(order.order_id) == []


async def test_same_idempotency_key_places_one_order(world):
    service, _, published = world
    first = await place(service, key="req-42")
    second = await place(service, key="req-42")
    assert first.order_id == second.order_id and len(published) == 1


async def test_a_duplicated_event_takes_effect_once(world):
    service, clock, published = world
    order = await place(service)
    await service.confirm(SUPPLIER, order.order_id,
                          Logistics(shipping_method=ShippingMethod.EXPRESS, carrier=Carrier.UPS))
    funded = Envelope.wrap(EscrowFunded(order_id=order.order_id, parties=PARTIES, amount=1000,
                                        currency="EUR", method=PaymentMethod.CARD),
                           occurred_at=clock.now())
    await service.on_escrow_funded(funded, funded.event())
    await service.on_escrow_funded(funded, funded.event())
    order = await service.get(BUYER, order.order_id)
    assert order.status is OrderStatus.PAID
    assert [h.what for h in order.history].count("escrow funded") == 1


async def test_the_order_closes_unpaid_when_the_payment_service_says_so(world):
    service, clock, published = world
    order = await place(service)
    await service.confirm(SUPPLIER, order.order_id,
                          Logistics(shipping_method=ShippingMethod.AIR_FREIGHT, carrier=Carrier.FEDEX))
    clock.advance(timedelta(days=20))
    await service.runner.sweep_deadlines()  # the order's own clock closes nothing
    assert (await service.get(BUYER, order.order_id)).status is OrderStatus.AWAITING_PAYMENT
    passed = PaymentDeadlinePassed(order_id=order.order_id, parties=order.parties,
                                   pay_by=clock.now(), currency="USD", received_total=0)
    cause = Envelope.wrap(passed, occurred_at=clock.now())
    await subscriptions(service)[PaymentDeadlinePassed](cause, passed)
    assert (await service.get(BUYER, order.order_id)).status is OrderStatus.CLOSED
    assert published[-1].event_type == "order.closed"
    assert published[-1].causation_id == cause.event_id


async def test_another_buyer_cannot_see_the_order(world):
    service, _, _ = world
    order = await place(service)
    with pytest.raises(NotPermitted):
        await service.get(Actor(party_id="buyer-2", role=Role.BUYER), order.order_id)
