"""The shipping service layer and HTTP API on an in-memory store: events in, deadlines,
proof of dispatch, events out."""

from datetime import timedelta

import httpx
import pytest

from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    ClosureReason,
    EscrowFunded,
    OrderCancelled,
    OrderClosed,
    OrderConfirmed,
)
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import Carrier, Logistics, PaymentMethod, ShippingMethod
from shared.domain.actor import Actor
from shared.domain.errors import DomainError, NotFound, NotPermitted
from shared.infra.auth import mint_token
from shared.infra.clock import ManualClock
from shared.infra.http import create_app
from shared.infra.runner import AggregateRunner
from shared.infra.subscriptions import subscriptions

from services.shipping.api import router
from services.shipping.domain import Shipment, ShipmentStatus
from services.shipping.handlers import ShippingService
from services.shipping.settings import ShippingSettings
from tests.support.memory_mongo import MemoryAggregateStore

ORDER = "ord-1"
BUYER = Actor(party_id="buyer-1", role=Role.BUYER)
SUPPLIER = Actor(party_id="supplier-1", role=Role.SUPPLIER)
PARTIES = Parties(buyer=Party(party_id="buyer-1", name="Buyer", email="buyer@example.com"),
                  supplier=Party(party_id="supplier-1", name="Supplier", email="supplier@example.com"))
LOGISTICS = Logistics(shipping_method=ShippingMethod.AIR_FREIGHT, carrier=Carrier.DHL)


class Published(list):
    async def __call__(self, message):
        self.append(message.envelope())

    def types(self):
        return [e.event_type for e in self]


@pytest.fixture
def world():
    clock = ManualClock()
    published = Published()
    runner = AggregateRunner(MemoryAggregateStore(Shipment), clock, published)
    settings = ShippingSettings(ship_by_reminder_before=timedelta(days=1))
    return ShippingService(runner, settings), clock, published


def envelope(event, clock):
    return Envelope.wrap(event, occurred_at=clock.now())


def confirmed(clock, days=5):
    return envelope(OrderConfirmed(order_id=ORDER, parties=PARTIES, logistics=LOGISTICS,
                                   currency="EUR", total=1000, delivery_period_days=days,
                                   payment_due_at=clock.now() + timedelta(days=20)), clock)


def funded(clock):
    return envelope(EscrowFunded(order_id=ORDER, parties=PARTIES, amount=1000, currency="EUR",
                                 method=PaymentMethod.CARD), clock)


async def deliver(service, env):
    await subscriptions(service)[type(env.event())](env, env.event())


async def paid_order(service, clock):
    await deliver(service, confirmed(clock))
    clock.advance(timedelta(hours=1))
    await deliver(service, funded(clock))
    return clock.now()


async def test_payment_sets_the_stored_deadlines_and_announces_the_shipment(world):
    service, clock, published = world
    paid_at = await paid_order(service, clock)
    shipment = await service.get(SUPPLIER, ORDER)
    assert shipment.status is ShipmentStatus.AWAITING_DISPATCH
    assert shipment.ship_by == paid_at + timedelta(days=5)
    assert shipment.deadlines["ship_by_reminder"] == paid_at + timedelta(days=4)
    assert published.types() == ["shipping.shipment_expected"]
    assert published[0].event().ship_by == shipment.ship_by


async def test_delivery_period_runs_from_the_payment_not_from_when_it_was_handled(world):
    service, clock, _ = world
    await deliver(service, confirmed(clock))
    late = funded(clock)
    clock.advance(timedelta(hours=6))
    await deliver(service, late)
    assert (await service.get(BUYER, ORDER)).ship_by == late.occurred_at + timedelta(days=5)


async def test_duplicated_events_take_effect_once(world):
    service, clock, published = world
    confirmation, payment = confirmed(clock), funded(clock)
    for env in (confirmation, confirmation, payment, payment):
        await deliver(service, env)
    await deliver(service, funded(clock))  # the same news with another event id
    assert published.types() == ["shipping.shipment_expected"]


async def test_payment_arriving_before_the_confirmation(world):
    service, clock, published = world
    payment = funded(clock)
    await deliver(service, payment)
    assert (await service.get(BUYER, ORDER)).status is ShipmentStatus.AWAITING_ORDER_DETAILS
    assert published == []
    clock.advance(timedelta(minutes=1))
    await deliver(service, confirmed(clock))
    shipment = await service.get(BUYER, ORDER)
    assert shipment.ship_by == payment.occurred_at + timedelta(days=5)
    assert published.types() == ["shipping.shipment_expected"]


async def test_reminder_then_missed_deadline_from_the_sweep(world):
    service, clock, published = world
    await paid_order(service, clock)
    clock.advance(timedelta(days=4))
    assert await service.runner.sweep_deadlines() == 1
    assert published.types()[-1] == "shipping.shipment_due_soon"
    clock.advance(timedelta(days=1))
    await service.runner.sweep_deadlines()
    assert published.types()[-1] == "shipping.dispatch_deadline_missed"
    assert await service.runner.sweep_deadlines() == 0
    with pytest.raises(DomainError, match="deadline"):
        await service.submit_dispatch(SUPPLIER, ORDER, Carrier.DHL, "1234567890", clock.now().date())
    assert published.types().count("shipping.dispatch_deadline_missed") == 1


async def test_dispatch_clears_the_deadlines(world):
    service, clock, published = world
    await paid_order(service, clock)
    clock.advance(timedelta(days=1))
    shipment = await service.submit_dispatch(SUPPLIER, ORDER, Carrier.DHL, "12 3456 7890",
                                             clock.now().date())
    assert shipment.status is ShipmentStatus.DISPATCHED and shipment.deadlines == {}
    assert published[-1].event_type == "shipping.shipment_dispatched"
    assert published[-1].payload["tracking_number"] == "1234567890"
    clock.advance(timedelta(days=10))
    assert await service.runner.sweep_deadlines() == 0
    assert published.types().count("shipping.dispatch_deadline_missed") == 0


async def test_repeating_the_proof_publishes_nothing_more(world):
    service, clock, published = world
    await paid_order(service, clock)
    for _ in range(2):
        await service.submit_dispatch(SUPPLIER, ORDER, Carrier.DHL, "1234567890", clock.now().date())
    assert published.types().count("shipping.shipment_dispatched") == 1


async def test_cancellation_and_closure_leave_no_deadline(world):
    service, clock, published = world
    await deliver(service, confirmed(clock))
    await deliver(service, envelope(OrderCancelled(order_id=ORDER, parties=PARTIES,
                                                   reason="changed plans"), clock))
    shipment = await service.get(BUYER, ORDER)
    assert shipment.status is ShipmentStatus.CLOSED and shipment.deadlines == {}
    await deliver(service, envelope(OrderClosed(order_id=ORDER, parties=PARTIES, currency="USD",
                                                reason=ClosureReason.SETTLED), clock))
    assert [h.what for h in (await service.get(BUYER, ORDER)).history].count("order_closed") == 1
    assert published == []


async def test_closing_an_order_it_never_saw_creates_nothing(world):
    service, clock, _ = world
    await deliver(service, envelope(OrderCancelled(order_id=ORDER, parties=PARTIES,
                                                   reason="before confirmation"), clock))
    with pytest.raises(NotFound):
        await service.get(BUYER, ORDER)


async def test_only_parties_and_agents_see_the_shipment(world):
    service, clock, _ = world
    await paid_order(service, clock)
    await service.get(Actor(party_id="agent-1", role=Role.AGENT), ORDER)
    with pytest.raises(NotPermitted):
        await service.get(Actor(party_id="buyer-2", role=Role.BUYER), ORDER)
    with pytest.raises(NotFound):
        await service.get(BUYER, "ord-unknown")


# --- HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def http(world):
    service, clock, published = world
    settings = service.settings

    async def ready():
        return {}

    app = create_app(title="shipping", description="", settings=settings, ready=ready)
    app.include_router(router(service))
    secret = settings.auth_secret.get_secret_value()

    def as_(actor):
        return {"authorization": f"Bearer {mint_token(secret, actor.party_id, actor.role)}"}

    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shipping")
    return client, as_, service, clock


async def test_http_dispatch_and_query(http):
    client, as_, service, clock = http
    await paid_order(service, clock)
    proof = {"carrier": "dhl", "tracking_number": "1234567890",
             "ship_date": clock.now().date().isoformat()}
    reply = await client.post(f"/orders/{ORDER}/shipment", json=proof, headers=as_(SUPPLIER))
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "dispatched"
    again = await client.post(f"/orders/{ORDER}/shipment", json=proof, headers=as_(SUPPLIER))
    assert again.status_code == 200
    changed = await client.post(f"/orders/{ORDER}/shipment", headers=as_(SUPPLIER),
                                json={**proof, "tracking_number": "1234567891"})
    assert changed.status_code == 409 and "already submitted" in changed.json()["detail"]
    view = (await client.get(f"/orders/{ORDER}/shipment", headers=as_(BUYER))).json()
    assert view["dispatch"]["tracking_number"] == "1234567890"
    assert view["logistics"]["carrier"] == "dhl" and view["ship_by"]
    assert [h["what"] for h in view["history"]][-1] == "shipping.shipment_dispatched"


async def test_http_refuses_a_bad_tracking_number_by_field(http):
    client, as_, service, clock = http
    await paid_order(service, clock)
    reply = await client.post(f"/orders/{ORDER}/shipment", headers=as_(SUPPLIER), json={
        "carrier": "ems", "tracking_number": "EE123456784CN",
        "ship_date": clock.now().date().isoformat()})
    assert reply.status_code == 422
    [error] = reply.json()["errors"]
    assert error["field"] == "tracking_number" and "S10" in error["message"]


async def test_http_refuses_an_unknown_carrier(http):
    client, as_, service, clock = http
    await paid_order(service, clock)
    reply = await client.post(f"/orders/{ORDER}/shipment", headers=as_(SUPPLIER), json={
        "carrier": "pigeon", "tracking_number": "1", "ship_date": clock.now().date().isoformat()})
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["field"] == "carrier"


async def test_http_access(http):
    client, as_, service, clock = http
    await paid_order(service, clock)
    proof = {"carrier": "dhl", "tracking_number": "1234567890",
             "ship_date": clock.now().date().isoformat()}
    assert (await client.post(f"/orders/{ORDER}/shipment", json=proof,
                              headers=as_(BUYER))).status_code == 403
    assert (await client.get(f"/orders/{ORDER}/shipment",
                             headers=as_(Actor(party_id="x", role=Role.SUPPLIER)))).status_code == 403
    assert (await client.get("/orders/nope/shipment", headers=as_(BUYER))).status_code == 404
    assert (await client.post("/orders/nope/shipment", json=proof,
                              headers=as_(SUPPLIER))).status_code == 404
    assert (await client.get(f"/orders/{ORDER}/shipment")).status_code == 401


async def test_the_requests_correlation_id_follows_the_events_it_causes(http, world):
    client, as_, service, clock = http
    published = world[2]
    await paid_order(service, clock)
    proof = {"carrier": "dhl", "tracking_number": "1234567890",
             "ship_date": clock.now().date().isoformat()}
    reply = await client.post(f"/orders/{ORDER}/shipment", json=proof,
                              headers={**as_(SUPPLIER), "x-correlation-id": "corr-42"})
    assert reply.status_code == 200, reply.text
    assert published[-1].event_type == "shipping.shipment_dispatched"
    assert published[-1].correlation_id == "corr-42"
