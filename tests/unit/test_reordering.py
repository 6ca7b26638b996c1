"""Issue 9.1: every aggregate that listens to more than one topic reaches the same state
whatever the interleaving of causally independent events.

For each saga (happy path, each dispute path, the deadlines) the events a consuming
service receives are delivered in every causally possible order (tests/support/
interleavings.py): a merge of the per-topic sequences, with the consumer's own commands
after what they need. The state that matters is compared across all of them, and checked
against the expected one. Mid-saga sagas (a dispute still open) matter as much as the end:
that is where a late dispatch once turned a disputed order back into 'shipped'.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts.envelope import Envelope, TradeEvent
from shared.contracts.events import (
    ClosureReason,
    DispatchDeadlineMissed,
    DisputeAnswer,
    DisputeOpened,
    DisputeResolved,
    DisputeWithdrawn,
    EscrowFunded,
    EscrowRefunded,
    EscrowReleased,
    EscrowSettled,
    FundsReturned,
    OrderClosed,
    OrderConfirmed,
    PaymentDeadlinePassed,
    ReceiptConfirmed,
    ReturnReason,
    SettlementReason,
    ShipmentDispatched,
)
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import (
    Address,
    Carrier,
    DisputeOutcome,
    DisputeReason,
    LineItem,
    Logistics,
    PaymentMethod,
    RequestedOutcome,
    ShippingMethod,
)
from shared.domain.actor import Actor
from shared.domain.errors import DomainError
from shared.infra.clock import ManualClock
from shared.infra.runner import AggregateRunner
from shared.infra.subscriptions import subscriptions

from services.dispute.attachments import AttachmentStore
from services.dispute.domain import BuyerProtection
from services.dispute.handlers import DisputeService
from services.dispute.settings import DisputeSettings
from services.order.domain import Order
from services.order.handlers import OrderService
from services.order.settings import OrderSettings
from services.shipping.domain import Shipment
from services.shipping.handlers import ShippingService
from services.shipping.settings import ShippingSettings
from tests.support.interleavings import Step, interleavings, outcomes, outcomes_replayed
from tests.support.memory_mongo import MemoryAggregateStore, memory_collection, memory_rate_limiter
from tests.unit.test_payment_service import ORDER as PAYMENT_ORDER
from tests.unit.test_payment_service import PARTIES as PAYMENT_PARTIES
from tests.unit.test_payment_service import TOTAL as PAYMENT_TOTAL
from tests.unit.test_payment_service import World as PaymentWorld

ORDER = "ord-1"
BUYER = Actor(party_id="buyer-1", role=Role.BUYER)
SUPPLIER = Actor(party_id="supplier-1", role=Role.SUPPLIER)
AGENT = Actor(party_id="agent-7", role=Role.AGENT)
PARTIES = Parties(buyer=Party(party_id="buyer-1", name="Buyer", email="buyer@example.com"),
                  supplier=Party(party_id="supplier-1", name="Supplier", email="supplier@example.com"))
LOGISTICS = Logistics(shipping_method=ShippingMethod.EXPRESS, carrier=Carrier.DHL)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TOTAL = 10_000
DAY = timedelta(days=1)


def day(n: float) -> datetime:
    return T0 + n * DAY


class ConsumerWorld:
    """One consuming service on an in-memory store and a manual clock."""

    clock: ManualClock
    runner: AggregateRunner

    def advance_to(self, at: datetime) -> None:
        if at > self.clock.now():
            self.clock.advance(at - self.clock.now())

    def snapshot(self) -> tuple:
        return self.runner.store.collection.snapshot(), self.clock.now()

    def restore(self, snapshot: tuple) -> None:
        docs, now = snapshot
        self.runner.store.collection.restore(docs)
        self.clock._now = now


def event(topic: str, name: str, at: datetime, make, *after: str) -> Step:
    """A step delivering the event ``make(**common)`` on ``topic``."""
    async def run(world) -> None:
        built: TradeEvent = make(order_id=ORDER, parties=PARTIES)
        envelope = Envelope.wrap(built, occurred_at=at)
        await subscriptions(world.service)[type(built)](envelope, built)
    return Step(name, topic, at, run, frozenset(after))


def command(name: str, at: datetime, act, *after: str) -> Step:
    async def run(world) -> None:
        await act(world)
    return Step(name, "commands", at, run, frozenset(after))


# --- the trade's events, as its producers publish them -----------------------------------


def funded(n: float = 1) -> Step:
    return event("payment", "funded", day(n), lambda **c: EscrowFunded(
        **c, amount=TOTAL, currency="USD", method=PaymentMethod.CARD))


def released(amount: int, n: float, reason=SettlementReason.RECEIPT_CONFIRMED, name="released"):
    return event("payment", name, day(n), lambda **c: EscrowReleased(
        **c, amount=amount, currency="USD", reason=reason, payout_id=f"p-{name}", held_after=0))


def refunded(amount: int, n: float, reason=SettlementReason.DISPUTE_RESOLVED, name="refunded"):
    return event("payment", name, day(n), lambda **c: EscrowRefunded(
        **c, amount=amount, currency="USD", reason=reason, method=PaymentMethod.CARD,
        refund_id=f"r-{name}", held_after=0))


def settled(released_total: int, refunded_total: int, n: float, paid_in: int = TOTAL) -> Step:
    return event("payment", "settled", day(n), lambda **c: EscrowSettled(
        **c, currency="USD", paid_in_total=paid_in, released_total=released_total,
        refunded_total=refunded_total))


def dispatched(n: float = 3) -> Step:
    return event("shipping", "dispatched", day(n), lambda **c: ShipmentDispatched(
        **c, carrier=Carrier.DHL, tracking_number="1234567890", ship_date=day(n).date(),
        dispatched_at=day(n)))


def deadline_missed(n: float = 11) -> Step:
    return event("shipping", "ship_by_missed", day(n), lambda **c: DispatchDeadlineMissed(
        **c, ship_by=day(n)))


def opened(dispute_id: str, n: float, requested=RequestedOutcome.FULL_REFUND,
           amount: int = TOTAL) -> Step:
    return event("dispute", f"opened:{dispute_id}", day(n), lambda **c: DisputeOpened(
        **c, dispute_id=dispute_id, reason=DisputeReason.NOT_RECEIVED, requested=requested,
        disputed_amount=amount, currency="USD", description="nothing came",
        answer_due_at=day(n + 5)))


def withdrawn(dispute_id: str, n: float) -> Step:
    return event("dispute", f"withdrawn:{dispute_id}", day(n), lambda **c: DisputeWithdrawn(
        **c, dispute_id=dispute_id))


def resolved(dispute_id: str, n: float, outcome: DisputeOutcome, refund: int,
             decided_by="agreement") -> Step:
    return event("dispute", f"resolved:{dispute_id}", day(n), lambda **c: DisputeResolved(
        **c, dispute_id=dispute_id, outcome=outcome, refund_amount=refund, currency="USD",
        decided_by=decided_by, agent_id="agent-7" if decided_by == "agent" else None))


def receipt(n: float, by="buyer") -> Step:
    return event("dispute", "receipt", day(n), lambda **c: ReceiptConfirmed(**c, confirmed_by=by))


def deadline_passed(received: int = 0) -> Step:
    return event("payment", "deadline_passed", day(20), lambda **c: PaymentDeadlinePassed(
        **c, pay_by=day(20), currency="USD", received_total=received))


def returned(amount: int, n: float, reason=ReturnReason.ORDER_NOT_PAYABLE) -> Step:
    return event("payment", "returned", day(n), lambda **c: FundsReturned(
        **c, amount=amount, currency="USD", reason=reason, transfer_id="t-late"))


# --- the order service ---------------------------------------------------------------------


class OrderWorld(ConsumerWorld):
    """The order placed and confirmed at T0; then the other services' events arrive."""

    def __init__(self) -> None:
        self.clock = ManualClock(T0)
        self.runner = AggregateRunner(MemoryAggregateStore(Order), self.clock, _dropped)
        self.service = OrderService(self.runner, OrderSettings(), memory_rate_limiter(self.clock))

    @classmethod
    async def create(cls) -> OrderWorld:
        world = cls()
        await world.runner.execute(ORDER, lambda _, now: Order.place(
            ORDER, PARTIES, [LineItem(description="bolts", quantity=1, unit_price=TOTAL)], "USD",
            Address(recipient="R", line1="1 Main St", city="Berlin", country="DE"), 10, now))
        await world.service.confirm(SUPPLIER, ORDER, LOGISTICS)
        return world

    async def state(self) -> dict:
        order = await self.runner.get(ORDER)
        assert order is not None
        return order.model_dump(include={"status", "closure_reason", "paid_at", "open_dispute_id",
                                         "released_total", "refunded_total", "deadlines"})


async def _dropped(message) -> None:
    return None


def sweep(n: float, *after: str) -> Step:
    async def act(world) -> None:
        await world.runner.sweep_deadlines()
    return command(f"sweep@{n}", day(n), act, *after)


ORDER_SAGAS = {
    "happy path": ([funded(), dispatched(), receipt(20), released(TOTAL, 20), settled(TOTAL, 0, 20)],
                   dict(status="closed", closure_reason="settled", released_total=TOTAL)),
    "automatic receipt": ([funded(), dispatched(), receipt(33, "automatic"), released(TOTAL, 33),
                           settled(TOTAL, 0, 33)], dict(status="closed", released_total=TOTAL)),
    "dispute open": ([funded(), dispatched(), opened("d1", 9)],
                     dict(status="in_dispute", open_dispute_id="d1")),
    "dispute resolved, not yet settled": (
        [funded(), dispatched(), opened("d1", 9), resolved("d1", 12, DisputeOutcome.FULL_REFUND,
                                                           TOTAL)],
        dict(status="in_dispute")),
    "full refund agreed": ([funded(), dispatched(), opened("d1", 9),
                            resolved("d1", 12, DisputeOutcome.FULL_REFUND, TOTAL),
                            refunded(TOTAL, 12), settled(0, TOTAL, 12)],
                           dict(status="closed", refunded_total=TOTAL)),
    "partial refund decided by an agent": (
        [funded(), dispatched(),
         opened("d1", 9, RequestedOutcome.PARTIAL_REFUND, 4_000),
         released(6_000, 9, SettlementReason.UNDISPUTED_PART, "released:undisputed"),
         resolved("d1", 20, DisputeOutcome.PARTIAL_REFUND, 1_000, "agent"),
         refunded(1_000, 20), released(3_000, 20, SettlementReason.DISPUTE_RESOLVED),
         settled(9_000, 1_000, 20)],
        dict(status="closed", released_total=9_000, refunded_total=1_000)),
    "withdrawn": ([funded(), dispatched(), opened("d1", 9), withdrawn("d1", 10)],
                  dict(status="shipped", open_dispute_id=None)),
    "withdrawn, then receipt": ([funded(), dispatched(), opened("d1", 9), withdrawn("d1", 10),
                                 receipt(11), released(TOTAL, 11), settled(TOTAL, 0, 11)],
                                dict(status="closed", released_total=TOTAL)),
    "withdrawn, disputed again, open": (
        [funded(), dispatched(), opened("d1", 9), withdrawn("d1", 10), opened("d2", 11)],
        dict(status="in_dispute", open_dispute_id="d2")),
    "withdrawn, disputed again, released by an agent": (
        [funded(), dispatched(), opened("d1", 9), withdrawn("d1", 10), opened("d2", 11),
         resolved("d2", 20, DisputeOutcome.RELEASE, 0, "agent"),
         released(TOTAL, 20, SettlementReason.DISPUTE_RESOLVED), settled(TOTAL, 0, 20)],
        dict(status="closed", released_total=TOTAL)),
    "ship-by deadline missed": ([funded(), deadline_missed(11),
                                 refunded(TOTAL, 11, SettlementReason.NOT_SHIPPED),
                                 settled(0, TOTAL, 11)],
                                dict(status="closed", refunded_total=TOTAL)),
    "payment deadline, then a late transfer returned": (
        [deadline_passed(), settled(0, 0, 20, paid_in=0), returned(TOTAL, 22)],
        dict(status="closed", closure_reason="payment_not_received", refunded_total=TOTAL)),
    "payment deadline with part paid": (
        [deadline_passed(4_000), refunded(4_000, 20, SettlementReason.ORDER_CLOSED),
         settled(0, 4_000, 20, paid_in=4_000)],
        dict(status="closed", closure_reason="payment_not_received", refunded_total=4_000)),
    # 9.2: the payment service judges the payment deadline; the order's own clock passing
    # it changes nothing, so a payment made in the last moment counts even when its news
    # comes after the order's deadline sweep.
    "paid in the last moment, the news after the order's sweep": (
        [funded(19.99), sweep(21)], dict(status="paid", paid_at=day(19.99), deadlines={})),
}


@pytest.mark.parametrize("saga", ORDER_SAGAS)
async def test_order_reaches_one_state_in_every_delivery_order(saga):
    steps, expected = ORDER_SAGAS[saga]
    await _one_outcome(steps, expected, await OrderWorld.create())


async def _one_outcome(steps: list[Step], expected: dict, world: ConsumerWorld) -> None:
    """Every order ends in one state, and it is the expected one."""
    start = world.snapshot()
    found = await outcomes(steps, world)
    assert len(found) == 1, found
    [orders] = found.values()
    assert len(orders) == sum(1 for _ in interleavings(steps))
    world.restore(start)
    for step in steps:  # in the order the trade produced them
        world.advance_to(step.at)
        await step.run(world)
    final = await world.state()
    assert {k: final[k] for k in expected} == expected, final


# --- the dispute service (buyer protection) -------------------------------------------------

BUYER_SERVICE_SETTINGS = DisputeSettings()


def order_closed(name: str, n: float, reason=ClosureReason.SETTLED, *after: str) -> Step:
    return event("order", name, day(n), lambda **c: OrderClosed(
        **c, reason=reason, currency="USD"), *after)


class ProtectionWorld(ConsumerWorld):
    """The dispute service; the buyer, supplier and agent act once what they act on has
    happened (a step's ``after``), whatever the service has seen by then."""

    def __init__(self) -> None:
        self.clock = ManualClock(T0)
        self.runner = AggregateRunner(MemoryAggregateStore(BuyerProtection), self.clock,
                                      _dropped)
        self.service = DisputeService(self.runner, AttachmentStore(memory_collection("dispute_attachments")),
                                      BUYER_SERVICE_SETTINGS, memory_rate_limiter(self.clock))

    @classmethod
    async def create(cls) -> ProtectionWorld:
        return cls()

    async def state(self) -> dict:
        p = await self.runner.get(ORDER)
        if p is None:
            return {"status": None}
        d = p.dispute
        return {**p.model_dump(include={"status", "paid_amount", "held_amount", "ship_date",
                                        "dispute_opens_at", "auto_confirm_at",
                                        "receipt_confirmed_by"}),
                "closed": p.closed_at is not None, "deadlines": sorted(p.deadlines),
                "dispute": d and (d.status, d.disputed_amount, d.resolution and (
                    d.resolution.outcome, d.resolution.refund_amount)),
                "withdrawn": len(p.withdrawn_disputes)}


def act(name: str, n: float, do, *after: str) -> Step:
    """A party's command through the service (``do(service)``)."""
    async def run(world) -> None:
        await do(world.service)
    return command(name, day(n), run, *after)


SHIPPED = ("funded", "dispatched")


def _refused(do):
    """A command the domain refuses: nothing changes."""
    async def attempt(service) -> None:
        with pytest.raises(DomainError):
            await do(service)
    return attempt


def dispute(name: str, n: float, *after: str, requested=RequestedOutcome.FULL_REFUND,
            amount=None) -> Step:
    return act(name, n, lambda s: s.open_dispute(BUYER, ORDER, DisputeReason.NOT_RECEIVED,
                                                 requested, amount, "nothing came", []), *after)


PROTECTION_SAGAS = {
    "buyer confirms receipt": (
        [funded(), dispatched(), act("receipt", 10, lambda s: s.confirm_receipt(BUYER, ORDER),
                                     *SHIPPED),
         order_closed("closed", 10, ClosureReason.SETTLED, "receipt")],
        dict(status="closed", receipt_confirmed_by="buyer", paid_amount=TOTAL)),
    "automatic receipt": (
        [funded(), dispatched(), sweep(34, *SHIPPED),
         order_closed("closed", 34, ClosureReason.SETTLED, "sweep@34")],
        dict(status="closed", receipt_confirmed_by="automatic")),
    "a late proof: the clocks run from its submission": (
        [funded(), event("shipping", "dispatched", day(30), lambda **c: ShipmentDispatched(
            **c, carrier=Carrier.DHL, tracking_number="1234567890", ship_date=day(2).date(),
            dispatched_at=day(30))), sweep(40, *SHIPPED)],
        dict(status="awaiting_receipt", auto_confirm_at=day(60), dispute_opens_at=day(35))),
    "dispute open": (
        [funded(), dispatched(), dispute("open", 9, *SHIPPED)],
        dict(status="disputed", held_amount=TOTAL)),
    "full refund agreed": (
        [funded(), dispatched(), dispute("open", 9, *SHIPPED),
         act("accept", 10, lambda s: s.answer_dispute(SUPPLIER, ORDER, DisputeAnswer.ACCEPT,
                                                      None, ""), "open"),
         order_closed("closed", 10, ClosureReason.SETTLED, "accept")],
        dict(status="closed")),
    "counter-offer accepted": (
        [funded(), dispatched(),
         dispute("open", 9, *SHIPPED, requested=RequestedOutcome.PARTIAL_REFUND, amount=4_000),
         act("counter", 10, lambda s: s.answer_dispute(
             SUPPLIER, ORDER, DisputeAnswer.COUNTER_OFFER, 2_000, ""), "open"),
         act("take", 11, lambda s: s.accept_counter_offer(BUYER, ORDER), "counter")],
        dict(status="dispute_resolved", held_amount=4_000)),
    "escalated and decided": (
        [funded(), dispatched(), dispute("open", 9, *SHIPPED),
         act("reject", 10, lambda s: s.answer_dispute(SUPPLIER, ORDER, DisputeAnswer.REJECT,
                                                      None, ""), "open"),
         act("escalate", 11, lambda s: s.escalate_dispute(BUYER, ORDER), "reject"),
         act("decide", 12, lambda s: s.decide_dispute(AGENT, ORDER, DisputeOutcome.RELEASE,
                                                      None, "delivered"), "escalate"),
         order_closed("closed", 12, ClosureReason.SETTLED, "decide")],
        dict(status="closed")),
    "withdrawn, disputed again": (
        [funded(), dispatched(), dispute("open", 9, *SHIPPED),
         act("withdraw", 10, lambda s: s.withdraw_dispute(BUYER, ORDER), "open"),
         dispute("again", 11, "withdraw")],
        dict(status="disputed")),
    "ship-by deadline missed": (
        [funded(), deadline_missed(11), order_closed("closed", 11)],
        dict(status="closed", paid_amount=TOTAL, ship_date=None)),
}


@pytest.mark.parametrize("saga", PROTECTION_SAGAS)
async def test_buyer_protection_reaches_one_state_in_every_delivery_order(saga):
    steps, expected = PROTECTION_SAGAS[saga]
    await _one_outcome(steps, expected, await ProtectionWorld.create())


# --- the shipping service -------------------------------------------------------------------

SHIPPING_SETTINGS = ShippingSettings()


class ShipmentWorld(ConsumerWorld):
    def __init__(self) -> None:
        self.clock = ManualClock(T0)
        self.runner = AggregateRunner(MemoryAggregateStore(Shipment), self.clock, _dropped)
        self.service = ShippingService(self.runner, SHIPPING_SETTINGS)

    @classmethod
    async def create(cls) -> ShipmentWorld:
        return cls()

    async def state(self) -> dict:
        shipment = await self.runner.get(ORDER)
        assert shipment is not None
        return {**shipment.model_dump(include={"status", "paid_at", "ship_by", "dispatch"}),
                "closed": shipment.order_closed_at is not None,
                "deadlines": sorted(shipment.deadlines)}


def confirmed() -> Step:
    return event("order", "confirmed", T0, lambda **c: OrderConfirmed(
        **c, logistics=LOGISTICS, currency="USD", total=TOTAL, delivery_period_days=10,
        payment_due_at=day(20)))


PAID = ("confirmed", "funded")
SHIPMENT_SAGAS = {
    "shipped, then settled": (
        [confirmed(), funded(), act("dispatch", 3, lambda s: s.submit_dispatch(
            SUPPLIER, ORDER, Carrier.DHL, "1234567890", day(3).date()), *PAID),
         order_closed("closed", 20, ClosureReason.SETTLED, "dispatch")],
        dict(status="dispatched", closed=True, paid_at=day(1), deadlines=[])),
    "paid, awaiting dispatch": (
        [confirmed(), funded()],
        dict(status="awaiting_dispatch", ship_by=day(11))),
    "ship-by deadline missed": (
        [confirmed(), funded(), sweep(12, *PAID),
         order_closed("closed", 12, ClosureReason.SETTLED, "sweep@12")],
        dict(status="deadline_missed", closed=True, deadlines=[])),
    "a late dispatch after the unswept deadline is refused": (
        [confirmed(), funded(), act("late dispatch", 12, _refused(lambda s: s.submit_dispatch(
            SUPPLIER, ORDER, Carrier.DHL, "1234567890", day(11).date())), *PAID)],
        dict(status="awaiting_dispatch", dispatch=None)),
}


@pytest.mark.parametrize("saga", SHIPMENT_SAGAS)
async def test_shipment_reaches_one_state_in_every_delivery_order(saga):
    steps, expected = SHIPMENT_SAGAS[saga]
    await _one_outcome(steps, expected, await ShipmentWorld.create())


# --- the payment service (owned by the money work; its reactions are proved here too) -------


class EscrowWorld(PaymentWorld):
    @classmethod
    async def create(cls) -> EscrowWorld:
        world = cls()
        world.clock._now = T0
        return world

    def advance_to(self, at: datetime) -> None:
        if at > self.clock.now():
            self.clock.advance(at - self.clock.now())

    async def state(self) -> dict:
        escrow = await self.escrow()
        return {"status": escrow.status, "paid_in": escrow.paid_in, "held": escrow.held,
                "released": escrow.released, "refunded": escrow.refunded,
                "moved": sorted(self.moved())}


def escrow_confirmed() -> Step:
    async def run(world: EscrowWorld) -> None:
        await world.deliver(OrderConfirmed(
            order_id=PAYMENT_ORDER, parties=PAYMENT_PARTIES, currency="USD", total=PAYMENT_TOTAL,
            delivery_period_days=10, logistics=LOGISTICS, payment_due_at=day(20)),
            Envelope.wrap(OrderConfirmed(
                order_id=PAYMENT_ORDER, parties=PAYMENT_PARTIES, currency="USD",
                total=PAYMENT_TOTAL, delivery_period_days=10, logistics=LOGISTICS,
                payment_due_at=day(20)), occurred_at=T0))
    return Step("confirmed", "order", T0, run)


def escrow_event(topic: str, name: str, n: float, make, *after: str) -> Step:
    async def run(world: EscrowWorld) -> None:
        built = make(order_id=PAYMENT_ORDER, parties=PAYMENT_PARTIES)
        await world.deliver(built, Envelope.wrap(built, occurred_at=day(n)))
    return Step(name, topic, day(n), run, frozenset(after))


def paying(name: str, n: float, pay, *after: str) -> Step:
    async def run(world: EscrowWorld) -> None:
        await pay(world)
    return Step(name, "commands", day(n), run, frozenset(("confirmed", *after)))


def escrow_sweep(n: float) -> Step:
    async def run(world: EscrowWorld) -> None:
        await world.runner.sweep_deadlines()
    return Step(f"sweep@{n}", "commands", day(n), run, frozenset(("confirmed",)))


async def _card_or_refused(world: EscrowWorld) -> None:
    """The buyer tries to pay by card; a refusal is an answer too."""
    try:
        await world.pay_card()
    except DomainError:
        pass


PAYMENT_SAGAS = {
    "receipt releases": (
        [escrow_confirmed(), paying("pay", 1, _card_or_refused),
         escrow_event("dispute", "receipt", 10, lambda **c: ReceiptConfirmed(
             **c, confirmed_by="buyer"), "pay")],
        dict(status="settled", released=PAYMENT_TOTAL)),
    "withdrawn partial dispute, then a full one agreed": (
        [escrow_confirmed(), paying("pay", 1, _card_or_refused),
         escrow_event("dispute", "opened:d1", 9, lambda **c: DisputeOpened(
             **c, dispute_id="d1", reason=DisputeReason.OTHER,
             requested=RequestedOutcome.PARTIAL_REFUND, disputed_amount=50_000, currency="USD",
             description="x", answer_due_at=day(14)), "pay"),
         escrow_event("dispute", "withdrawn:d1", 10, lambda **c: DisputeWithdrawn(
             **c, dispute_id="d1")),
         escrow_event("dispute", "opened:d2", 11, lambda **c: DisputeOpened(
             **c, dispute_id="d2", reason=DisputeReason.NOT_RECEIVED,
             requested=RequestedOutcome.FULL_REFUND, disputed_amount=50_000, currency="USD",
             description="y", answer_due_at=day(16))),
         escrow_event("dispute", "resolved:d2", 12, lambda **c: DisputeResolved(
             **c, dispute_id="d2", outcome=DisputeOutcome.FULL_REFUND, refund_amount=50_000,
             currency="USD", decided_by="agreement"))],
        dict(status="settled", released=PAYMENT_TOTAL - 50_000, refunded=50_000)),
    "ship-by deadline missed": (
        [escrow_confirmed(), paying("pay", 1, _card_or_refused),
         escrow_event("shipping", "missed", 11, lambda **c: DispatchDeadlineMissed(
             **c, ship_by=day(11)), "pay")],
        dict(status="settled", refunded=PAYMENT_TOTAL)),
    # 9.2: a payment after pay_by is refused or returned, whether or not the escrow's
    # deadline sweep has run yet; so the escrow ends the same in either order.
    "a card payment after the deadline": (
        [escrow_confirmed(), paying("late card", 20.5, _card_or_refused),
         escrow_sweep(21)],
        dict(status="settled", paid_in=0)),
    "a transfer after the deadline": (
        [escrow_confirmed(), paying("late transfer", 21, lambda w: w.transfer("t-late",
                                                                               PAYMENT_TOTAL)),
         escrow_sweep(21)],
        dict(status="settled", held=0, released=0, refunded=PAYMENT_TOTAL)),
    "part paid by transfer, then the deadline": (
        [escrow_confirmed(), paying("part", 5, lambda w: w.transfer("t-part", 30_000)),
         escrow_sweep(20)],
        dict(status="settled", paid_in=30_000, held=0, refunded=30_000)),
}


@pytest.mark.parametrize("saga", PAYMENT_SAGAS)
async def test_escrow_reaches_one_state_in_every_delivery_order(saga):
    steps, expected = PAYMENT_SAGAS[saga]
    found = await outcomes_replayed(steps, EscrowWorld.create)
    assert len(found) == 1, found
    world = await EscrowWorld.create()
    for step in steps:
        world.advance_to(step.at)
        await step.run(world)
    final = await world.state()
    assert {k: final[k] for k in expected} == expected, final
