"""Properties of buyer protection, the receipt and the dispute (services/dispute/domain.py,
negotiation.py), under random trades.

The dispute service hears of the payment, the dispatch and the order's end on three
topics, in any order. A small model of those services plays a plausible trade, and
hypothesis lets the buyer, the supplier, an agent and strangers act (confirm receipt, open,
answer, counter, accept, withdraw, escalate, decide, argue), delivers the topics' events in
any interleaving and some twice, and moves time on with the deadline sweep (automatic
receipt, reminders, automatic escalation). After every step: at most one outcome (receipt
confirmed or a dispute decided, never both, never twice), a decision divides exactly what
is disputed and a dispute never claims more than is held, the buyer's clocks never run
short, deadlines only while they can fire, repeated commands change nothing, and a closed
protection never moves again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from shared.contracts.events import (
    ClosureReason,
    DispatchDeadlineMissed,
    DisputeAnswer,
    DisputeOpened,
    DisputeResolved,
    EscrowFunded,
    OrderClosed,
    ReceiptConfirmed,
    ShipmentDispatched,
)
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import Carrier, DisputeOutcome, DisputeReason, PaymentMethod, RequestedOutcome
from shared.domain.actor import Actor
from shared.infra.clock import ManualClock
from shared.infra.runner import AggregateRunner

from services.dispute.attachments import AttachmentStore
from services.dispute.domain import (
    DISPUTE_DEADLINES,
    RECEIPT_DEADLINES,
    BuyerProtection,
    ProtectionStatus,
    start_of_day,
)
from services.dispute.handlers import DisputeService
from services.dispute.negotiation import DisputeStatus
from services.dispute.settings import DisputeSettings
from tests.support.memory_mongo import MemoryAggregateStore, memory_collection, memory_rate_limiter
from tests.support.statemachine import ConsumerMachine, Published, check_transition

ORDER = "ord-props"
TOTAL = 10_000
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PARTIES = Parties(buyer=Party(party_id="buyer-1", name="Buyer"),
                  supplier=Party(party_id="supplier-1", name="Supplier"))
COMMON = {"order_id": ORDER, "parties": PARTIES}
BUYER = Actor(party_id="buyer-1", role=Role.BUYER)
SUPPLIER = Actor(party_id="supplier-1", role=Role.SUPPLIER)
AGENT = Actor(party_id="agent-1", role=Role.AGENT)
STRANGERS = [Actor(party_id="buyer-2", role=Role.BUYER), Actor(party_id="supplier-1", role=Role.BUYER),
             Actor(party_id="buyer-1", role=Role.SUPPLIER)]
SETTINGS = DisputeSettings()
PERIODS = SETTINGS.periods()
PARTS = st.sampled_from([1, TOTAL // 4, TOTAL // 2, TOTAL - 1])
AMOUNTS = st.none() | PARTS | st.sampled_from([-1, 0, TOTAL, TOTAL + 1])

P = ProtectionStatus
ALLOWED = {
    P.AWAITING_PAYMENT: {P.AWAITING_DISPATCH, P.AWAITING_RECEIPT, P.CLOSED},
    P.AWAITING_DISPATCH: {P.AWAITING_RECEIPT, P.CLOSED},
    P.AWAITING_RECEIPT: {P.DISPUTED, P.RECEIPT_CONFIRMED, P.CLOSED},
    P.DISPUTED: {P.ESCALATED, P.DISPUTE_RESOLVED, P.AWAITING_RECEIPT},
    P.ESCALATED: {P.DISPUTE_RESOLVED, P.AWAITING_RECEIPT},
    P.RECEIPT_CONFIRMED: {P.CLOSED},
    P.DISPUTE_RESOLVED: {P.CLOSED},
    P.CLOSED: set(),
}
OUTCOMES = (ReceiptConfirmed.event_type, DisputeResolved.event_type)


class ProtectionMachine(ConsumerMachine):
    def __init__(self) -> None:
        super().__init__("payment", "shipping", "order")
        self.clock = ManualClock(T0)
        self.published = Published()
        self.runner = AggregateRunner(MemoryAggregateStore(BuyerProtection), self.clock,
                                      self.published)
        self.service = DisputeService(self.runner, AttachmentStore(memory_collection("dispute_attachments")),
                                      SETTINGS, memory_rate_limiter(self.clock))
        self.paid = self.shipped = self.missed = self.settled = False
        self.last: BuyerProtection | None = None

    def protection(self) -> BuyerProtection | None:
        return self.run(self.runner.get(ORDER))

    def state(self) -> object:
        return self.protection()

    # --- the payment, shipping and order services ---------------------------------------------

    @initialize(start=st.sampled_from(["paid", "shipped", "received", "disputed", "disputed"]),
                days_before=st.integers(min_value=0, max_value=3), data=st.data())
    def the_trade_begins(self, start: str, days_before: int, data: st.DataObject) -> None:
        """Paid, or shipped (news still to come, in either order), or received and the
        dispute window open, or disputed: so that the search spends its steps on what follows."""
        self.buyer_pays()
        if start == "paid":
            return
        self.supplier_ships(days_before)
        if start == "shipped":
            return
        while any(self.topics.values()):
            self.deliver_next(data)
        self.clock.advance(PERIODS.dispute_opens_after + timedelta(hours=1))
        if start == "disputed":
            self.last = self.protection()
            partial = data.draw(st.booleans())
            self.open_dispute(BUYER, RequestedOutcome.PARTIAL_REFUND if partial else
                              RequestedOutcome.FULL_REFUND, data.draw(PARTS) if partial else None)

    @precondition(lambda self: not self.paid)
    @rule()
    def buyer_pays(self) -> None:
        self.paid = True
        self.emit("payment", EscrowFunded(**COMMON, amount=TOTAL, currency="USD",
                                          method=PaymentMethod.CARD))

    @precondition(lambda self: self.paid and not self.shipped and not self.missed)
    @rule(days_before=st.integers(min_value=0, max_value=3))
    def supplier_ships(self, days_before: int) -> None:
        """A proof of dispatch, stating a ship date up to some days before it came."""
        self.shipped = True
        now = self.clock.now()
        self.emit("shipping", ShipmentDispatched(**COMMON, carrier=Carrier.DHL,
                                                 tracking_number="1234567890",
                                                 ship_date=(now - timedelta(days=days_before)).date(),
                                                 dispatched_at=now))

    @precondition(lambda self: self.paid and not self.shipped and not self.missed)
    @rule()
    def the_ship_by_date_passes(self) -> None:
        self.missed = True
        self.emit("shipping", DispatchDeadlineMissed(**COMMON, ship_by=self.clock.now()))

    @precondition(lambda self: not self.settled and (self.missed or self.published.of_type(*OUTCOMES)))
    @rule()
    def the_order_closes_settled(self) -> None:
        """Once the escrow is empty: after a receipt, a decision or a missed ship-by date."""
        self.settled = True
        self.emit("order", OrderClosed(**COMMON, reason=ClosureReason.SETTLED, currency="USD"))

    # --- the parties' commands ------------------------------------------------------------------

    def command(self, act) -> None:
        """Refused or done; done, the same command again changes nothing."""
        done = self.attempt(act())
        if isinstance(done, BuyerProtection):
            before, sent = self.protection(), len(self.published)
            again = self.attempt(act())
            assert isinstance(again, BuyerProtection), f"the same command again was refused: {again}"
            assert self.protection() == before and len(self.published) == sent, \
                "the same command again changed the protection"

    @rule(actor=st.sampled_from([BUYER, BUYER, *STRANGERS]))
    def confirm_receipt(self, actor: Actor) -> None:
        self.command(lambda: self.service.confirm_receipt(actor, ORDER))

    @rule(actor=st.sampled_from([BUYER, BUYER, *STRANGERS]), requested=st.sampled_from(RequestedOutcome),
          amount=AMOUNTS)
    def open_dispute(self, actor: Actor, requested: RequestedOutcome, amount: int | None) -> None:
        self.command(lambda: self.service.open_dispute(actor, ORDER, DisputeReason.NOT_AS_DESCRIBED,
                                                       requested, amount, "scratched", []))

    @rule(actor=st.sampled_from([SUPPLIER, SUPPLIER, *STRANGERS]), answer=st.sampled_from(DisputeAnswer),
          amount=AMOUNTS)
    def answer_dispute(self, actor: Actor, answer: DisputeAnswer, amount: int | None) -> None:
        self.command(lambda: self.service.answer_dispute(actor, ORDER, answer, amount, "see photos"))

    @rule(actor=st.sampled_from([BUYER, *STRANGERS]))
    def accept_counter_offer(self, actor: Actor) -> None:
        self.command(lambda: self.service.accept_counter_offer(actor, ORDER))

    @rule(actor=st.sampled_from([BUYER, *STRANGERS]))
    def withdraw_dispute(self, actor: Actor) -> None:
        self.command(lambda: self.service.withdraw_dispute(actor, ORDER))

    @rule(actor=st.sampled_from([BUYER, SUPPLIER, *STRANGERS]))
    def escalate_dispute(self, actor: Actor) -> None:
        self.command(lambda: self.service.escalate_dispute(actor, ORDER))

    @rule(actor=st.sampled_from([AGENT, AGENT, BUYER]), outcome=st.sampled_from(DisputeOutcome),
          amount=AMOUNTS, reason=st.sampled_from(["photos show damage", " "]))
    def decide_dispute(self, actor: Actor, outcome: DisputeOutcome, amount: int | None,
                       reason: str) -> None:
        self.command(lambda: self.service.decide_dispute(actor, ORDER, outcome, amount, reason))

    @rule(actor=st.sampled_from([BUYER, SUPPLIER, *STRANGERS]), text=st.sampled_from(["a", "b"]))
    def add_statement(self, actor: Actor, text: str) -> None:
        self.command(lambda: self.service.add_statement(actor, ORDER, text, []))

    # --- time -------------------------------------------------------------------------------------

    @rule(hours=st.integers(min_value=1, max_value=24 * 6))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(timedelta(hours=hours))

    @rule()
    def deadline_sweep(self) -> None:
        self.run(self.runner.sweep_deadlines())

    # --- invariants ---------------------------------------------------------------------------------

    @invariant()
    def holds(self) -> None:
        protection = self.protection()
        if protection is None:
            assert not self.published
            return
        if self.last is not None:
            self.moves_only_along_the_trade(self.last, protection)
        self.one_outcome(protection)
        self.amounts_add_up(protection)
        self.clocks_never_run_short(protection)
        self.deadlines_only_while_they_can_fire(protection)
        self.all_delivered_it_is_where_the_trade_is(protection)
        self.last = protection
        event(f"protection reached {protection.status}")

    def moves_only_along_the_trade(self, last: BuyerProtection, now: BuyerProtection) -> None:
        check_transition("buyer protection", last.status, now.status, ALLOWED)
        if last.status is P.CLOSED:  # facts learnt late (the funding) are still recorded
            kept = {"closed_at", "closed_because", "receipt_confirmed_at", "dispute",
                    "withdrawn_disputes", "deadlines", "dispute_opens_at", "auto_confirm_at"}
            assert now.model_dump(include=kept) == last.model_dump(include=kept), \
                "a closed protection changed"
        if last.receipt_confirmed_at is not None:
            assert (now.receipt_confirmed_at, now.receipt_confirmed_by) == (
                last.receipt_confirmed_at, last.receipt_confirmed_by)
        if last.dispute is not None and last.dispute.resolution is not None:
            assert now.dispute == last.dispute, "a decided dispute changed"

    def one_outcome(self, protection: BuyerProtection) -> None:
        outcomes = self.published.of_type(*OUTCOMES)
        assert len(outcomes) <= 1, f"more than one outcome: {[e.event_type for e in outcomes]}"
        resolved = protection.dispute is not None and protection.dispute.status is DisputeStatus.RESOLVED
        assert not (resolved and protection.receipt_confirmed_at), "receipt confirmed and dispute decided"
        assert all(d.status is DisputeStatus.WITHDRAWN for d in protection.withdrawn_disputes)

    def amounts_add_up(self, protection: BuyerProtection) -> None:
        """A dispute claims at most what is held, and its decision divides exactly that."""
        held = TOTAL
        for envelope in self.published:
            published = envelope.event()
            if isinstance(published, DisputeOpened):
                assert 0 < published.disputed_amount <= held, \
                    f"a dispute of {published.disputed_amount} with {held} held"
                held = published.disputed_amount
            elif isinstance(published, DisputeResolved):
                assert 0 <= published.refund_amount <= held
                expected = {DisputeOutcome.FULL_REFUND: held, DisputeOutcome.RELEASE: 0}.get(
                    published.outcome)
                if expected is None:  # an agreement may refund what a partial request asked
                    assert 0 < published.refund_amount <= held, "a partial refund of nothing"
                    if published.decided_by == "agent":
                        assert published.refund_amount < held, "an agent's partial refund of all"
                else:
                    assert published.refund_amount == expected
        if protection.paid_amount is not None:
            assert protection.held_amount is not None
            assert 0 < protection.held_amount <= protection.paid_amount == TOTAL
            assert protection.held_amount == held

    def clocks_never_run_short(self, protection: BuyerProtection) -> None:
        if protection.dispatched_at is None or protection.ship_date is None:
            return
        earliest = start_of_day(min(protection.ship_date, protection.dispatched_at.date()))
        assert protection.dispute_opens_at is not None
        assert protection.dispute_opens_at >= max(earliest, start_of_day(protection.ship_date)) \
            + PERIODS.dispute_opens_after
        first_day = start_of_day(protection.dispatched_at.date())
        if protection.receipt_confirmed_by == "automatic":
            assert protection.receipt_confirmed_at is not None
            assert protection.receipt_confirmed_at >= first_day + PERIODS.receipt_auto_confirm_after, \
                "receipt confirmed automatically before the buyer's period ran out"
        disputes = protection.withdrawn_disputes + ([protection.dispute] if protection.dispute else [])
        for dispute in disputes:
            assert dispute.opened_at >= protection.dispute_opens_at, "a dispute opened too early"

    def deadlines_only_while_they_can_fire(self, protection: BuyerProtection) -> None:
        kinds = set(protection.deadlines)
        if kinds & set(RECEIPT_DEADLINES):
            assert protection.status is P.AWAITING_RECEIPT, f"receipt deadlines while {protection.status}"
        if kinds & set(DISPUTE_DEADLINES):
            assert protection.status is P.DISPUTED, f"dispute deadlines while {protection.status}"

    def all_delivered_it_is_where_the_trade_is(self, protection: BuyerProtection) -> None:
        if any(self.topics.values()):
            return
        if self.settled or self.missed:
            assert protection.status is P.CLOSED
        if self.shipped:
            assert protection.ship_date is not None
        if self.paid:
            assert protection.paid_amount == TOTAL


TestProtectionProperties = ProtectionMachine.TestCase
