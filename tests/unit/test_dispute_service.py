"""The dispute service layer on in-memory stores: reactions to the trade's events,
stored deadlines, evidence files and the agents' queue."""

import base64
from datetime import UTC, date, datetime, timedelta

import pytest

from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    DispatchDeadlineMissed,
    DisputeAnswer,
    EscrowFunded,
    OrderClosed,
    ShipmentDispatched,
)
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import (
    Carrier,
    DisputeOutcome,
    DisputeReason,
    Evidence,
    PaymentMethod,
    RequestedOutcome,
)
from shared.domain.actor import Actor
from shared.domain.errors import DomainError, InvalidRequest, NotFound, NotPermitted
from shared.infra.clock import ManualClock
from shared.infra.runner import AggregateRunner
from shared.infra.subscriptions import subscriptions

from services.dispute.attachments import MAX_ATTACHMENT_BYTES, AttachmentStore, Upload
from services.dispute.domain import BuyerProtection, ProtectionStatus
from services.dispute.handlers import DisputeService
from services.dispute.settings import DisputeSettings
from tests.support.memory_mongo import MemoryAggregateStore, memory_collection, memory_rate_limiter

BUYER = Actor(party_id="buyer-1", role=Role.BUYER)
SUPPLIER = Actor(party_id="supplier-1", role=Role.SUPPLIER)
AGENT = Actor(party_id="agent-7", role=Role.AGENT)
STRANGER = Actor(party_id="buyer-9", role=Role.BUYER)
PARTIES = Parties(
    buyer=Party(party_id="buyer-1", name="Buyer", email="buyer@example.com"),
    supplier=Party(party_id="supplier-1", name="Supplier", email="supplier@example.com"))
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
OPENS_AT = datetime(2026, 1, 10, tzinfo=UTC)
AUTO_CONFIRM_AT = datetime(2026, 2, 4, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
DAY = timedelta(days=1)


class Published(list):
    async def __call__(self, message):
        self.append(message.envelope())

    def types(self):
        return [e.event_type for e in self]


@pytest.fixture
def world():
    clock = ManualClock(START)
    published = Published()
    runner = AggregateRunner(MemoryAggregateStore(BuyerProtection), clock, published)
    files = memory_collection("dispute_attachments")
    return (DisputeService(runner, AttachmentStore(files), DisputeSettings(), memory_rate_limiter(clock)),
            clock, published, files)


def envelope(event, clock):
    return Envelope.wrap(event, occurred_at=clock.now())


async def deliver(service, env):
    handler = subscriptions(service)[type(env.event())]
    await handler(env, env.event())


async def shipped(service, clock, order_id="ord-1"):
    await deliver(service, envelope(EscrowFunded(order_id=order_id, parties=PARTIES, amount=100_000,
                                                 currency="USD", method=PaymentMethod.CARD), clock))
    await deliver(service, envelope(ShipmentDispatched(
        order_id=order_id, parties=PARTIES, carrier=Carrier.DHL, tracking_number="1234567890",
        ship_date=date(2026, 1, 5), dispatched_at=clock.now()), clock))


def png(name="photo.png", data=PNG):
    return Upload(filename=name, content_type="image/png",
                  data_base64=base64.b64encode(data).decode())


async def open_dispute(service, evidence=(), order_id="ord-1", actor=BUYER):
    return await service.open_dispute(actor, order_id, DisputeReason.NOT_AS_DESCRIBED,
                                      RequestedOutcome.FULL_REFUND, None, "scratched",
                                      list(evidence))


# --- reactions -----------------------------------------------------------------------------


async def test_funding_and_dispatch_start_the_protection_once(world):
    service, clock, published, _ = world
    funded = envelope(EscrowFunded(order_id="ord-1", parties=PARTIES, amount=100_000,
                                   currency="USD", method=PaymentMethod.CARD), clock)
    await deliver(service, funded)
    await deliver(service, funded)
    p = await service.get(BUYER, "ord-1")
    assert (p.paid_amount, p.currency, p.status) == (100_000, "USD",
                                                     ProtectionStatus.AWAITING_DISPATCH)
    assert [h.what for h in p.history] == ["escrow funded"]
    assert published == []


async def test_dispatch_seen_before_funding_still_protects_the_order(world):
    service, clock, _, _ = world
    await deliver(service, envelope(ShipmentDispatched(
        order_id="ord-1", parties=PARTIES, carrier=Carrier.UPS, tracking_number="1Z999",
        ship_date=date(2026, 1, 5), dispatched_at=clock.now()), clock))
    await deliver(service, envelope(EscrowFunded(order_id="ord-1", parties=PARTIES, amount=5_000,
                                                 currency="USD", method=PaymentMethod.CARD), clock))
    p = await service.get(BUYER, "ord-1")
    assert p.status is ProtectionStatus.AWAITING_RECEIPT and p.paid_amount == 5_000
    assert p.auto_confirm_at == AUTO_CONFIRM_AT


async def test_closing_events_stop_the_clocks_and_are_ignored_for_unpaid_orders(world):
    service, clock, _, _ = world
    await deliver(service, envelope(OrderClosed(order_id="ord-unpaid", parties=PARTIES, currency="USD",
                                                reason="payment_not_received"), clock))
    with pytest.raises(NotFound):
        await service.get(BUYER, "ord-unpaid")
    await deliver(service, envelope(EscrowFunded(order_id="ord-1", parties=PARTIES, amount=5_000,
                                                 currency="USD", method=PaymentMethod.CARD), clock))
    await deliver(service, envelope(DispatchDeadlineMissed(order_id="ord-1", parties=PARTIES,
                                                           ship_by=clock.now()), clock))
    p = await service.get(BUYER, "ord-1")
    assert p.status is ProtectionStatus.CLOSED and p.deadlines == {}
    assert p.closed_because == "shipping.dispatch_deadline_missed"


# --- receipt -------------------------------------------------------------------------------


async def test_buyer_confirmation_is_published_once(world):
    service, clock, published, _ = world
    await shipped(service, clock)
    await service.confirm_receipt(BUYER, "ord-1")
    p = await service.confirm_receipt(BUYER, "ord-1")
    assert published.types() == ["dispute.receipt_expected", "dispute.receipt_confirmed"]
    assert published[-1].payload["confirmed_by"] == "buyer"
    assert p.status is ProtectionStatus.RECEIPT_CONFIRMED


async def test_the_stored_deadlines_remind_then_confirm_automatically(world):
    service, clock, published, _ = world
    await shipped(service, clock)
    clock.advance(AUTO_CONFIRM_AT - 3 * DAY - clock.now())
    await service.runner.sweep_deadlines()
    clock.advance(3 * DAY)
    await service.runner.sweep_deadlines()
    await service.runner.sweep_deadlines()
    assert published.types() == ["dispute.receipt_expected", "dispute.receipt_auto_confirm_soon",
                                "dispute.receipt_confirmed"]
    assert published[-1].payload["confirmed_by"] == "automatic"


async def test_unknown_order_is_not_found(world):
    service, _, _, _ = world
    with pytest.raises(NotFound, match="starts when the order is paid"):
        await service.confirm_receipt(BUYER, "ord-x")


# --- disputes and evidence -----------------------------------------------------------------


async def test_attachments_are_stored_and_served_to_the_parties_and_agents(world):
    service, clock, published, files = world
    await shipped(service, clock)
    clock.advance(OPENS_AT - clock.now())
    link = Evidence(kind="link", url="https://example.com/unboxing.mp4")
    p = await open_dispute(service, [png(), link])
    evidence = p.dispute.evidence
    assert [e.kind for e in evidence] == ["attachment", "link"]
    stored = files.documents()[evidence[0].attachment_id]
    assert stored["size_bytes"] == len(PNG) and len(stored["sha256"]) == 64
    assert published.types() == ["dispute.receipt_expected", "dispute.opened"]
    assert published[-1].payload["evidence"][0]["attachment_id"] == evidence[0].attachment_id
    for reader in (BUYER, SUPPLIER, AGENT):
        file = await service.attachment(reader, "ord-1", evidence[0].attachment_id)
        assert file.data == PNG and file.content_type == "image/png"
    with pytest.raises(NotPermitted):
        await service.attachment(STRANGER, "ord-1", evidence[0].attachment_id)
    with pytest.raises(NotFound):
        await service.attachment(BUYER, "ord-1", "att_unknown")


async def test_a_refused_dispute_stores_no_files(world):
    service, clock, published, files = world
    await shipped(service, clock)
    with pytest.raises(DomainError, match="too early"):
        await open_dispute(service, [png()])
    clock.advance(OPENS_AT - clock.now())
    with pytest.raises(NotPermitted):
        await open_dispute(service, [png()], actor=SUPPLIER)
    with pytest.raises(InvalidRequest, match="at most 10 attachments"):
        await open_dispute(service, [png(f"p{i}.png") for i in range(11)])
    assert files.documents() == {} and published.types() == ["dispute.receipt_expected"]


@pytest.mark.parametrize(("upload", "field", "message"), [
    (Upload("a.gif", "image/gif", base64.b64encode(b"GIF89a").decode()),
     "evidence.0.content_type", "not accepted"),
    (Upload("a.png", "image/png", "not base64!"), "evidence.0.data_base64", "not valid base64"),
    (Upload("a.png", "image/png", base64.b64encode(b"%PDF-1.7").decode()),
     "evidence.0.data_base64", "not a image/png file"),
    (Upload("a.txt", "text/plain", base64.b64encode(b"\xff\xfe").decode()),
     "evidence.0.data_base64", "not a text/plain file"),
    (png(data=b"\x89PNG\r\n\x1a\n" + b"\x00" * MAX_ATTACHMENT_BYTES), "evidence.0.data_base64",
     "larger than 5 MiB"),
    (Upload("../", "text/plain", base64.b64encode(b"hi").decode()), "evidence.0.filename",
     "plain name"),
])
async def test_attachment_limits(world, upload, field, message):
    service, clock, _, _ = world
    await shipped(service, clock)
    clock.advance(OPENS_AT - clock.now())
    with pytest.raises(InvalidRequest, match=message) as raised:
        await open_dispute(service, [upload])
    assert raised.value.field == field


async def test_a_file_of_exactly_five_mib_is_accepted(world):
    service, clock, _, files = world
    await shipped(service, clock)
    clock.advance(OPENS_AT - clock.now())
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * (MAX_ATTACHMENT_BYTES - 8)
    p = await open_dispute(service, [png(data=data)])
    assert files.documents()[p.dispute.evidence[0].attachment_id]["size_bytes"] == MAX_ATTACHMENT_BYTES


async def test_a_retried_opening_with_files_is_one_dispute_and_one_file(world):
    service, clock, published, files = world
    await shipped(service, clock)
    clock.advance(OPENS_AT - clock.now())
    first = await open_dispute(service, [png()])
    again = await open_dispute(service, [png()])
    assert again.dispute.dispute_id == first.dispute.dispute_id
    assert len(files.documents()) == 1 and published.types() == ["dispute.receipt_expected", "dispute.opened"]


async def test_unanswered_disputes_escalate_automatically_into_the_agents_queue(world):
    service, clock, published, _ = world
    await shipped(service, clock, "ord-1")
    await shipped(service, clock, "ord-2")
    clock.advance(OPENS_AT - clock.now())
    await open_dispute(service, order_id="ord-1")
    await open_dispute(service, order_id="ord-2")
    await service.answer_dispute(SUPPLIER, "ord-2", DisputeAnswer.ACCEPT, None, "ok")
    clock.advance(10 * DAY)
    await service.runner.sweep_deadlines()
    assert published.types().count("dispute.escalated") == 1
    assert published.types().count("dispute.answer_due_soon") == 1
    with pytest.raises(NotPermitted):
        await service.escalated(BUYER)
    queue = await service.escalated(AGENT)
    assert [p.order_id for p in queue] == ["ord-1"]
    assert queue[0].dispute.escalated_by == "automatic"
    assert "dispute.opened" in [h.what for h in queue[0].history]
    p = await service.decide_dispute(AGENT, "ord-1", DisputeOutcome.PARTIAL_REFUND, 20_000,
                                     "minor damage")
    assert p.status is ProtectionStatus.DISPUTE_RESOLVED
    assert await service.escalated(AGENT) == []
    resolved = published[-1]
    assert (resolved.event_type, resolved.payload["refund_amount"], resolved.payload["agent_id"]) \
        == ("dispute.resolved", 20_000, "agent-7")


async def test_the_dispute_query_is_for_the_parties_and_agents(world):
    service, clock, _, _ = world
    await shipped(service, clock)
    with pytest.raises(NotFound, match="no dispute"):
        await service.get_dispute(BUYER, "ord-1")
    clock.advance(OPENS_AT - clock.now())
    await open_dispute(service)
    for reader in (BUYER, SUPPLIER, AGENT):
        _, dispute = await service.get_dispute(reader, "ord-1")
        assert dispute.reason is DisputeReason.NOT_AS_DESCRIBED
    with pytest.raises(NotPermitted):
        await service.get_dispute(STRANGER, "ord-1")
