"""Properties of the escrow and its ledger (services/payment/domain.py, ledger.py) under
random money and events.

The escrow holds the money, so it must keep its books whatever it is sent: here the real
payment service (card intake, transfer matching, the reactions to other services' events,
the instruction sweep) runs on an in-memory store with the sandbox provider, and
hypothesis sends it card payments (approved, declined, retried with the same key), bank
transfers (short, exact, over, in another currency, reported twice, an id reused), the
order, shipping and dispute services' events in any order across and within topics (so
also out of order and for disputes never opened), some of them twice, provider outages,
sweeps and reconciliation. After every step: the ledger identity, nothing negative, every
cent that came in is accepted or sent back, what left went once and through one outcome,
the provider moved exactly what the escrow instructed, and the escrow only moved along
its allowed transitions.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule
from pydantic import SecretStr

from shared.contracts.envelope import Envelope, TradeEvent
from shared.contracts.events import (
    DispatchDeadlineMissed,
    DisputeOpened,
    DisputeResolved,
    DisputeWithdrawn,
    EscrowFunded,
    EscrowSettled,
    OrderCancelled,
    OrderConfirmed,
    ReceiptConfirmed,
    SettlementReason,
)
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import (
    Carrier,
    DisputeOutcome,
    DisputeReason,
    Logistics,
    RequestedOutcome,
    ShippingMethod,
)
from shared.domain.actor import Actor
from shared.infra.clock import ManualClock
from shared.infra.runner import AggregateRunner
from shared.infra.subscriptions import subscriptions

from services.payment.bank_transfers import BankTransfers, TransferReport
from services.payment.cards import CardDetails
from services.payment.domain import Escrow, EscrowStatus
from services.payment.instructions import InstructionKind, InstructionStatus
from services.payment.ledger import LedgerBroken
from services.payment.payouts import ESCROW_DUE
from services.payment.provider import (
    SANDBOX_APPROVE,
    SANDBOX_DECLINE,
    SANDBOX_INSUFFICIENT_FUNDS,
    ProviderError,
    SandboxProvider,
)
from services.payment.service import Payments
from services.payment.settings import PaymentSettings
from services.payment.vault import PaymentDataVault
from tests.support.memory_mongo import MemoryAggregateStore, MemoryMongo
from tests.support.statemachine import Published, ServiceMachine, check_transition

ORDER = "ord-props"
TOTAL = 10_000
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BUYER = Actor(party_id="buyer-1", role=Role.BUYER)
BANK = Actor(party_id="sandbox-bank", role=Role.BANK)
PARTIES = Parties(buyer=Party(party_id="buyer-1", name="Buyer"),
                  supplier=Party(party_id="supplier-1", name="Supplier"))
COMMON = {"order_id": ORDER, "parties": PARTIES}
CARDS = [SANDBOX_APPROVE, SANDBOX_DECLINE, SANDBOX_INSUFFICIENT_FUNDS]
DISPUTES = ["d1", "d2"]

E = EscrowStatus
ALLOWED = {
    E.AWAITING_FUNDS: {E.FUNDED, E.SETTLED},
    E.FUNDED: {E.DISPUTED, E.SETTLED},
    E.DISPUTED: {E.FUNDED, E.SETTLED},
    E.SETTLED: set(),
}
ONE_SIDED = {SettlementReason.NOT_SHIPPED, SettlementReason.ORDER_CLOSED}

amounts = st.sampled_from([1, TOTAL // 3, TOTAL // 2, TOTAL - 1, TOTAL, TOTAL + 1, 3 * TOTAL])



def common(event_type: type[TradeEvent], **fields: st.SearchStrategy) -> st.SearchStrategy[TradeEvent]:
    return st.builds(event_type, order_id=st.just(ORDER), parties=st.just(PARTIES), **fields)


# The other services' events, as their producers publish them; one rule each, so the
# dispute paths are drawn as often as the order's end.
order_cancelled = common(OrderCancelled, reason=st.just("cancelled"))
ship_by_missed = common(DispatchDeadlineMissed, ship_by=st.just(T0 + timedelta(days=30)))
receipt_confirmed = common(ReceiptConfirmed, confirmed_by=st.sampled_from(["buyer", "automatic"]))
dispute_opened = common(
    DisputeOpened, dispute_id=st.sampled_from(DISPUTES), reason=st.just(DisputeReason.NOT_RECEIVED),
    requested=st.sampled_from(RequestedOutcome), disputed_amount=amounts,
    currency=st.sampled_from(["USD", "USD", "EUR"]), description=st.just("missing"),
    answer_due_at=st.just(T0 + timedelta(days=40)))
dispute_withdrawn = common(DisputeWithdrawn, dispute_id=st.sampled_from(DISPUTES))
dispute_resolved = common(
    DisputeResolved, dispute_id=st.sampled_from(DISPUTES), outcome=st.sampled_from(DisputeOutcome),
    refund_amount=st.sampled_from([0, 1, TOTAL // 4, TOTAL // 2, TOTAL, 2 * TOTAL]),
    currency=st.just("USD"), decided_by=st.sampled_from(["agreement", "agent"]))


def card(number: str) -> CardDetails:
    return CardDetails(number=SecretStr(number), expiry_month=12, expiry_year=2030,
                       cvc=SecretStr("123"), holder_name="Ada Buyer")


def by_currency(pairs: list[tuple[str, int]]) -> Counter[str]:
    totals: Counter[str] = Counter()
    for currency, amount in pairs:
        totals[currency] += amount
    return +totals


class EscrowMachine(ServiceMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(T0)
        self.published = Published()
        self.provider = SandboxProvider(clock=self.clock)
        self.runner = AggregateRunner(MemoryAggregateStore(Escrow, ESCROW_DUE), self.clock,
                                      self.published)
        self.service = Payments.create(self.runner, BankTransfers(MemoryMongo()["escrow"]["bank_transfers"]),
                                       self.provider, PaymentDataVault(Fernet.generate_key().decode()),
                                       PaymentSettings())
        self.delivered: list[Envelope] = []  # taken: delivering one again changes nothing
        self.dead_letters: list[Envelope] = []
        self.deliver(Envelope.wrap(OrderConfirmed(
            **COMMON, currency="USD", total=TOTAL, delivery_period_days=10,
            logistics=Logistics(shipping_method=ShippingMethod.EXPRESS, carrier=Carrier.DHL),
            payment_due_at=T0 + timedelta(days=20)), occurred_at=T0))
        self.last = self.escrow()
        self.disputed = False  # a dispute was ever opened on the escrow

    def escrow(self) -> Escrow:
        escrow = self.run(self.runner.get(ORDER))
        assert escrow is not None
        return escrow

    def deliver(self, envelope: Envelope) -> None:
        """As the consumer does: a domain error is an allowed answer (the event is
        dead-lettered, and may be replayed later: then it may take effect)."""
        event = envelope.event()
        refused = self.attempt(subscriptions(self.service.reactions)[type(event)](envelope, event))
        (self.dead_letters if isinstance(refused, Exception) else self.delivered).append(envelope)

    def unchanged_by(self, coroutine_factory, what: str) -> None:
        before, sent, moved = self.escrow().model_dump(), len(self.published), len(self.provider.movements)
        self.attempt(coroutine_factory())
        assert self.escrow().model_dump() == before, f"{what} changed the escrow"
        assert (len(self.published), len(self.provider.movements)) == (sent, moved), \
            f"{what} published or moved money"

    # --- money in -----------------------------------------------------------------------------

    @initialize(by_card=st.booleans(), dispute=st.none() | dispute_opened)
    def the_buyer_pays_in_full(self, by_card: bool, dispute: DisputeOpened | None) -> None:
        """Most trades are paid, many disputed: start there, so that the search spends its
        steps on what follows."""
        if by_card:
            self.buyer_pays_by_card(SANDBOX_APPROVE, None)
        else:
            self.bank_reports_a_transfer("t0", TOTAL, "USD")
        if dispute is not None:
            self.last = self.escrow()
            self.a_dispute_opens(dispute)

    @rule(number=st.sampled_from(CARDS), key=st.sampled_from([None, "k1", "k2"]))
    def buyer_pays_by_card(self, number: str, key: str | None) -> None:
        paid = self.attempt(self.service.cards.pay_by_card(BUYER, ORDER, card(number),
                                                           idempotency_key=key))
        if key is not None and isinstance(paid, Escrow):
            self.unchanged_by(lambda: self.service.cards.pay_by_card(
                BUYER, ORDER, card(number), idempotency_key=key), "the same card request again")

    @rule(transfer_id=st.sampled_from(["t1", "t2", "t3", "t4"]), amount=amounts,
          currency=st.sampled_from(["USD", "USD", "USD", "EUR", "NZD"]))
    def bank_reports_a_transfer(self, transfer_id: str, amount: int, currency: str) -> None:
        report = TransferReport(transfer_id=transfer_id, reference=self.last.reference, amount=amount,
                                currency=currency, sender_name="Ada Buyer GmbH",
                                sender_account="DE89370400440532013000")
        if not isinstance(self.attempt(self.service.transfers.receive(BANK, report)), Exception):
            self.unchanged_by(lambda: self.service.transfers.receive(BANK, report),
                              "the same transfer reported again")

    # --- the other services' events, in any order ----------------------------------------------

    def arrives(self, event: TradeEvent) -> None:
        self.deliver(Envelope.wrap(event, occurred_at=self.clock.now()))

    @rule(event=order_cancelled)
    def the_order_is_cancelled(self, event: TradeEvent) -> None:
        self.arrives(event)

    @rule(event=ship_by_missed)
    def the_ship_by_date_passes(self, event: TradeEvent) -> None:
        self.arrives(event)

    @rule(event=receipt_confirmed)
    def receipt_is_confirmed(self, event: TradeEvent) -> None:
        self.arrives(event)

    @rule(event=dispute_opened)
    def a_dispute_opens(self, event: TradeEvent) -> None:
        self.arrives(event)
        self.disputed = True

    @rule(event=dispute_withdrawn)
    def a_dispute_is_withdrawn(self, event: TradeEvent) -> None:
        self.arrives(event)

    @rule(event=dispute_resolved)
    def a_dispute_is_resolved(self, event: TradeEvent) -> None:
        self.arrives(event)

    @precondition(lambda self: self.delivered)
    @rule(data=st.data())
    def an_event_arrives_again(self, data: st.DataObject) -> None:
        envelope = data.draw(st.sampled_from(self.delivered))
        self.unchanged_by(lambda: self._redeliver(envelope), f"{envelope.event_type} delivered twice")

    @precondition(lambda self: self.dead_letters)
    @rule(data=st.data())
    def a_dead_letter_is_replayed(self, data: st.DataObject) -> None:
        envelope = data.draw(st.sampled_from(self.dead_letters))
        self.dead_letters.remove(envelope)
        self.deliver(envelope)

    async def _redeliver(self, envelope: Envelope) -> None:
        event = envelope.event()
        await subscriptions(self.service.reactions)[type(event)](envelope, event)

    # --- money out, time, the provider ------------------------------------------------------------

    @rule(outage=st.integers(min_value=0, max_value=3))
    def instructions_are_swept(self, outage: int) -> None:
        self.provider.failures_to_inject = outage
        self.run(self.service.sweep_instructions())
        self.provider.failures_to_inject = 0

    @rule(outage=st.booleans())
    def charges_are_reconciled(self, outage: bool) -> None:
        self.provider.failures_to_inject = int(outage)
        try:
            self.run(self.service.cards.reconcile())
        except ProviderError:
            assert outage, "reconciliation failed without an outage"
        self.provider.failures_to_inject = 0

    @rule(hours=st.integers(min_value=1, max_value=24 * 15))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(timedelta(hours=hours))

    @rule()
    def deadline_sweep(self) -> None:
        self.run(self.runner.sweep_deadlines())

    # --- invariants -------------------------------------------------------------------------------

    @invariant()
    def holds(self) -> None:
        escrow = self.escrow()
        self.books_balance(escrow)
        self.every_cent_accounted_for(escrow)
        self.money_leaves_once(escrow)
        self.one_outcome(escrow)
        self.provider_moved_what_was_instructed(escrow)
        self.moves_only_along_its_transitions(escrow)
        self.last = escrow
        event(f"escrow reached {escrow.status} ({escrow.settlement_reason})")

    def books_balance(self, escrow: Escrow) -> None:
        try:
            escrow.check_ledger()
        except LedgerBroken as broken:
            raise AssertionError(str(broken)) from None
        figures = escrow.figures
        assert figures.paid_in == figures.held + figures.released + figures.refunded
        assert min(figures.paid_in, figures.held, figures.released, figures.refunded) >= 0
        entry_ids = [e.entry_id for e in escrow.ledger]
        assert len(entry_ids) == len(set(entry_ids)), "a movement was booked twice"

    def every_cent_accounted_for(self, escrow: Escrow) -> None:
        """Per currency: what came in is what was accepted plus what goes back as returns."""
        came_in = by_currency([(f.currency, f.amount) for f in escrow.fundings])
        returns = by_currency([(i.currency, i.amount) for i in escrow.instructions
                               if i.kind is InstructionKind.RETURN])
        accepted = sum(f.accepted for f in escrow.fundings)
        assert came_in == returns + Counter({escrow.currency: accepted}), (came_in, returns, accepted)
        assert accepted <= escrow.amount_due
        assert escrow.paid_in == came_in[escrow.currency]
        out = sum(i.amount for i in escrow.instructions if i.kind is not InstructionKind.RETURN)
        assert escrow.held == accepted - out, "held is not what was accepted less what left"

    def money_leaves_once(self, escrow: Escrow) -> None:
        ids = [i.instruction_id for i in escrow.instructions]
        assert len(ids) == len(set(ids)), "an instruction was issued twice"
        for funding in escrow.fundings:
            back = sum(i.amount for i in escrow.instructions if i.source_id == funding.source_id)
            assert back == funding.sent_back <= funding.amount, \
                f"{funding.source_id}: {back} sent back of {funding.amount}"
        funded = self.published.of_type(EscrowFunded.event_type)
        settled = self.published.of_type(EscrowSettled.event_type)
        assert len(funded) <= 1 and len(settled) <= 1, "funded or settled twice"

    def one_outcome(self, escrow: Escrow) -> None:
        payouts = sum(i.amount for i in escrow.instructions if i.kind is InstructionKind.PAYOUT)
        refunds = sum(i.amount for i in escrow.instructions if i.kind is InstructionKind.REFUND)
        if escrow.status is not E.SETTLED:
            return
        assert escrow.held == 0
        assert payouts + refunds == sum(f.accepted for f in escrow.fundings), \
            "a settled escrow's split does not add up to what it took"
        if escrow.settlement_reason is SettlementReason.RECEIPT_CONFIRMED:
            assert refunds == 0, "released on receipt and refunded"
        if escrow.settlement_reason in ONE_SIDED and not self.disputed:
            assert payouts == 0, f"refunded ({escrow.settlement_reason}) and released"
        last = self.last
        if last.status is E.SETTLED:
            assert escrow.settlement_reason == last.settlement_reason
            assert (escrow.released, refunds) == (last.released, sum(
                i.amount for i in last.instructions if i.kind is InstructionKind.REFUND)), \
                "a settled escrow paid out or refunded again"

    def provider_moved_what_was_instructed(self, escrow: Escrow) -> None:
        sent = by_currency([(i.currency, i.amount) for i in escrow.instructions
                            if i.status is InstructionStatus.SENT])
        moved = by_currency([(m.amount.currency, m.amount.amount) for m in self.provider.movements
                             if m.kind != "charge"])
        assert moved == sent, f"the provider moved {moved}, the escrow sent {sent}"
        charges = {m.reference for m in self.provider.movements if m.kind == "charge"}
        booked = {f.source_id for f in escrow.fundings}
        assert charges <= booked, f"captured but not booked: {charges - booked}"
        for i in escrow.instructions:
            assert (i.status is InstructionStatus.SENT) == (i.provider_reference is not None)
        assert escrow.instructions_pending == bool(escrow.pending_instructions())

    def moves_only_along_its_transitions(self, escrow: Escrow) -> None:
        check_transition("the escrow", self.last.status, escrow.status, ALLOWED)


TestEscrowProperties = EscrowMachine.TestCase
