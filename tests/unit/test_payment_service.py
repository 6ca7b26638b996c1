"""The payment service layer on an in-memory store with the sandbox provider: events in,
money in, instructions out, each exactly once."""

import json
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    DispatchDeadlineMissed,
    DisputeOpened,
    DisputeResolved,
    DisputeWithdrawn,
    OrderCancelled,
    OrderClosed,
    OrderConfirmed,
    ReceiptConfirmed,
)
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import (
    Carrier,
    DisputeOutcome,
    DisputeReason,
    Logistics,
    PaymentMethod,
    RequestedOutcome,
    ShippingMethod,
)
from shared.domain.actor import Actor
from shared.domain.errors import DomainError, InvalidRequest, NotFound, NotPermitted
from shared.infra.clock import ManualClock
from shared.infra.runner import AggregateRunner
from shared.infra.subscriptions import subscriptions

from services.payment.bank_transfers import BankTransfers, TransferReport
from services.payment.card_intake import CardDeclined
from services.payment.cards import CardDetails
from services.payment.domain import Escrow, EscrowStatus, InstructionStatus
from services.payment.payouts import ESCROW_DUE
from services.payment.provider import (
    SANDBOX_APPROVE,
    SANDBOX_DECLINE,
    SANDBOX_INSUFFICIENT_FUNDS,
    SandboxProvider,
)
from services.payment.reference import is_valid, transfer_reference
from services.payment.service import Payments
from services.payment.settings import PaymentSettings
from services.payment.vault import PaymentDataVault
from tests.support.memory_mongo import MemoryAggregateStore, MemoryMongo

ORDER = "ord-1"
TOTAL = 250_000
BUYER = Actor(party_id="buyer-1", role=Role.BUYER)
SUPPLIER = Actor(party_id="supplier-1", role=Role.SUPPLIER)
BANK = Actor(party_id="sandbox-bank", role=Role.BANK)
PARTIES = Parties(buyer=Party(party_id="buyer-1", name="Buyer", email="buyer@example.com"),
                  supplier=Party(party_id="supplier-1", name="Supplier", email="supplier@example.com"))
SENDER_ACCOUNT = "DE89370400440532013000"
SENDER_NAME = "Ada Buyer GmbH"


class Published(list):
    async def __call__(self, message):
        self.append(message.envelope())

    def types(self) -> list[str]:
        return [e.event_type for e in self]


class World:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.published = Published()
        self.store = MemoryAggregateStore(Escrow, ESCROW_DUE)
        self.database = MemoryMongo()["escrow"]
        self.provider = SandboxProvider(clock=self.clock)
        self.runner = AggregateRunner(self.store, self.clock, self.published)
        self.service = Payments.create(self.runner, BankTransfers(self.database["bank_transfers"]),
                                       self.provider, PaymentDataVault(Fernet.generate_key().decode()),
                                       PaymentSettings())

    async def deliver(self, event, envelope: Envelope | None = None) -> Envelope:
        envelope = envelope or Envelope.wrap(event, occurred_at=self.clock.now())
        await subscriptions(self.service.reactions)[type(event)](envelope, event)
        return envelope

    async def confirm(self, total: int = TOTAL) -> Escrow:
        await self.deliver(OrderConfirmed(
            order_id=ORDER, parties=PARTIES, currency="USD", total=total, delivery_period_days=10,
            logistics=Logistics(shipping_method=ShippingMethod.EXPRESS, carrier=Carrier.DHL),
            payment_due_at=self.clock.now() + timedelta(days=20)))
        return await self.escrow()

    async def escrow(self) -> Escrow:
        escrow = await self.runner.get(ORDER)
        escrow.check_ledger()  # the invariant holds in every stored state
        return escrow

    async def transfer(self, transfer_id: str, amount: int, currency: str = "USD",
                       reference: str | None = None):
        if reference is None:
            reference = (await self.escrow()).reference
        return await self.service.transfers.receive(BANK, TransferReport(
            transfer_id=transfer_id, reference=reference, amount=amount, currency=currency,
            sender_name=SENDER_NAME, sender_account=SENDER_ACCOUNT))

    async def pay_card(self, number: str = SANDBOX_APPROVE, key: str | None = None, actor=BUYER):
        return await self.service.cards.pay_by_card(actor, ORDER, card(number), idempotency_key=key)

    def moved(self) -> list[tuple[str, int, str]]:
        return [(m.kind, m.amount.amount, m.to) for m in self.provider.movements]


def card(number: str = SANDBOX_APPROVE, year: int = 2030, month: int = 12) -> CardDetails:
    return CardDetails(number=SecretStr(number), expiry_month=month, expiry_year=year,
                       cvc=SecretStr("123"), holder_name="Ada Buyer")


def dispute_opened(requested=RequestedOutcome.PARTIAL_REFUND, disputed=50_000, dispute_id="d-1"):
    return DisputeOpened(order_id=ORDER, parties=PARTIES, dispute_id=dispute_id,
                         reason=DisputeReason.NOT_AS_DESCRIBED, requested=requested,
                         disputed_amount=disputed, currency="USD", description="scratched",
                         answer_due_at="2026-02-01T00:00:00Z")


@pytest.fixture
def world() -> World:
    return World()


async def test_order_confirmed_opens_one_escrow_with_a_unique_reference(world):
    escrow = await world.confirm()
    envelope = Envelope.wrap(OrderConfirmed(
        order_id=ORDER, parties=PARTIES, currency="USD", total=1, delivery_period_days=1,
        logistics=Logistics(shipping_method=ShippingMethod.EXPRESS, carrier=Carrier.DHL),
        payment_due_at=world.clock.now()), occurred_at=world.clock.now())
    await world.deliver(envelope.event(), envelope)
    assert world.published.types() == ["payment.escrow_opened"]
    opened = world.published[0].event()
    assert opened.bank_transfer.reference == escrow.reference and is_valid(escrow.reference)
    assert opened.bank_transfer.iban == PaymentSettings().beneficiary_iban
    assert (escrow.amount_due, escrow.status) == (TOTAL, EscrowStatus.AWAITING_FUNDS)


async def test_card_payment_funds_the_escrow_and_a_retry_charges_once(world):
    await world.confirm()
    escrow = await world.pay_card(key="req-1")
    assert escrow.status is EscrowStatus.FUNDED and (escrow.paid_in, escrow.held) == (TOTAL, TOTAL)
    again = await world.pay_card(key="req-1")
    assert again.paid_in == TOTAL
    assert world.moved() == [("charge", TOTAL, "")]
    funded = world.published[-1].event()
    assert (funded.method, funded.card.brand, funded.card.last4) == (PaymentMethod.CARD, "visa", "4242")
    with pytest.raises(DomainError):
        await world.pay_card(key="req-2")  # paid already: a new request is refused


async def test_declined_card_is_told_and_another_card_may_follow(world):
    await world.confirm()
    with pytest.raises(CardDeclined):
        await world.pay_card(SANDBOX_DECLINE)
    event = world.published[-1].event()
    assert world.published[-1].event_type == "payment.card_declined"
    assert (event.reason, event.amount, event.card.last4) == ("card_declined", TOTAL, "0002")
    assert (await world.escrow()).status is EscrowStatus.AWAITING_FUNDS
    assert (await world.pay_card()).status is EscrowStatus.FUNDED
    assert world.moved() == [("charge", TOTAL, "")]


async def test_insufficient_funds_is_a_decline(world):
    await world.confirm()
    with pytest.raises(CardDeclined, match="insufficient_funds"):
        await world.pay_card(SANDBOX_INSUFFICIENT_FUNDS)
    assert world.published[-1].event().reason == "insufficient_funds"
    assert (await world.escrow()).paid_in == 0 and world.moved() == []


@pytest.mark.parametrize("details, field", [
    (card("4242424242424241"), "number"), (card(year=2025), "expiry_year"),
    (card(year=2026, month=1), "expiry_month")])
async def test_invalid_cards_are_refused_before_the_provider(world, details, field):
    world.clock.advance(timedelta(days=60))  # March 2026
    await world.confirm()
    with pytest.raises(InvalidRequest) as raised:
        await world.service.cards.pay_by_card(BUYER, ORDER, details)
    assert raised.value.field == field and world.moved() == []


async def test_only_the_buyer_pays_an_existing_escrow(world):
    with pytest.raises(NotFound):
        await world.pay_card()
    await world.confirm()
    with pytest.raises(NotPermitted):
        await world.pay_card(actor=SUPPLIER)
    with pytest.raises(NotPermitted):
        await world.pay_card(actor=Actor(party_id="buyer-2", role=Role.BUYER))


async def test_a_charge_that_finds_the_escrow_closed_is_refunded_at_once(world):
    await world.confirm()
    real_charge = world.provider.charge

    async def charge_while_the_buyer_cancels(token, amount, key):
        result = await real_charge(token, amount, key)
        await world.deliver(OrderCancelled(order_id=ORDER, parties=PARTIES, reason="changed mind"))
        return result

    world.provider.charge = charge_while_the_buyer_cancels
    escrow = await world.pay_card()
    assert escrow.status is EscrowStatus.SETTLED
    assert (escrow.paid_in, escrow.held, escrow.refunded) == (TOTAL, 0, TOTAL)
    [charge, refund] = world.provider.movements
    assert (refund.kind, refund.amount.amount, refund.to) == ("refund", TOTAL, charge.reference)
    returned = world.published[-1].event()
    assert (world.published[-1].event_type, returned.reason) == ("payment.funds_returned",
                                                                 "order_not_payable")


async def test_two_partial_transfers_fund_and_a_repeated_report_is_a_no_op(world):
    await world.confirm()
    first = await world.transfer("tt-1", 100_000)
    assert (first.matched, first.accepted, first.remaining) == (True, 100_000, 150_000)
    await world.transfer("tt-1", 100_000)
    second = await world.transfer("tt-2", 150_000)
    assert (second.received_total, second.remaining) == (TOTAL, 0)
    assert world.published.types() == ["payment.escrow_opened", "payment.bank_transfer_received",
                                       "payment.bank_transfer_received", "payment.escrow_funded"]
    escrow = await world.escrow()
    assert (escrow.status, escrow.method, escrow.paid_in) == (EscrowStatus.FUNDED,
                                                              PaymentMethod.BANK_TRANSFER, TOTAL)


async def test_the_reference_is_matched_in_free_text_and_sender_data_is_sealed(world):
    escrow = await world.confirm()
    spaced = " ".join([escrow.reference[:5], escrow.reference[5:]]).lower()
    outcome = await world.transfer("tt-1", 1_000, reference=f"invoice 7 {spaced}")
    assert outcome.order_id == ORDER
    stored = json.dumps(world.store.docs, default=str)
    sent = json.dumps([e.model_dump(mode="json") for e in world.published])
    for secret in (SENDER_ACCOUNT, SENDER_NAME):
        assert secret not in stored and secret not in sent


async def test_overpayment_goes_back_to_the_senders_account_once(world):
    await world.confirm()
    outcome = await world.transfer("tt-1", TOTAL + 1_234)
    assert (outcome.accepted, outcome.returned) == (TOTAL, 1_234)
    assert world.published.types()[-1] == "payment.funds_returned"
    assert await world.service.sweep_instructions() == 1
    assert await world.service.sweep_instructions() == 0
    assert world.moved() == [("payout", 1_234, SENDER_ACCOUNT)]
    [instruction] = (await world.escrow()).instructions
    assert instruction.status is InstructionStatus.SENT and instruction.provider_reference


async def test_money_for_an_unknown_reference_is_kept_and_returned(world):
    outcome = await world.transfer("tt-x", 5_000, reference="ESC0000000000Z")
    assert (outcome.matched, outcome.returned) == (False, 5_000)
    assert (await world.transfer("tt-x", 5_000, reference="whatever")).matched is False
    [kept] = await world.database["bank_transfers"].find({}).to_list()
    assert SENDER_ACCOUNT not in json.dumps(kept, default=str)
    assert await world.service.sweep_instructions() == 1
    assert await world.service.sweep_instructions() == 0
    assert world.moved() == [("payout", 5_000, SENDER_ACCOUNT)]


async def test_money_after_the_order_closed_unpaid_is_returned(world):
    await world.confirm()
    world.clock.advance(timedelta(days=20))
    assert await world.runner.sweep_deadlines() == 1
    assert world.published.types()[-2:] == ["payment.deadline_passed", "payment.escrow_settled"]
    outcome = await world.transfer("tt-late", 9_000)
    assert (outcome.accepted, outcome.returned) == (0, 9_000)
    escrow = await world.escrow()
    assert (escrow.status, escrow.paid_in, escrow.refunded) == (EscrowStatus.SETTLED, 9_000, 9_000)
    assert world.published[-1].event().reason == "order_not_payable"
    await world.service.sweep_instructions()
    assert world.moved() == [("payout", 9_000, SENDER_ACCOUNT)]


async def test_close_with_partial_funds_refunds_them_and_settles(world):
    await world.confirm()
    await world.transfer("tt-1", 60_000)
    await world.transfer("tt-2", 40_000)
    await world.deliver(OrderCancelled(order_id=ORDER, parties=PARTIES, reason="no longer needed"))
    assert world.published.types()[-3:] == ["payment.escrow_refunded", "payment.escrow_refunded",
                                            "payment.escrow_settled"]
    settled = world.published[-1].event()
    assert (settled.paid_in_total, settled.refunded_total, settled.released_total) == (100_000, 100_000, 0)
    await world.service.sweep_instructions()
    assert world.moved() == [("payout", 60_000, SENDER_ACCOUNT), ("payout", 40_000, SENDER_ACCOUNT)]


async def test_missed_dispatch_refunds_the_card(world):
    await world.confirm()
    await world.pay_card()
    await world.deliver(DispatchDeadlineMissed(order_id=ORDER, parties=PARTIES,
                                               ship_by=world.clock.now()))
    refunded = world.published[-2].event()
    assert (refunded.reason, refunded.method, refunded.amount) == ("not_shipped", PaymentMethod.CARD, TOTAL)
    await world.service.sweep_instructions()
    charge = world.provider.movements[0]
    assert world.moved() == [("charge", TOTAL, ""), ("refund", TOTAL, charge.reference)]


async def test_receipt_releases_to_the_supplier_once_whatever_is_redelivered(world):
    await world.confirm()
    await world.pay_card()
    confirmed = ReceiptConfirmed(order_id=ORDER, parties=PARTIES, confirmed_by="buyer")
    envelope = await world.deliver(confirmed)
    await world.deliver(confirmed, envelope)  # the same message again
    await world.deliver(confirmed)  # the same fact in a new message
    assert world.published.types().count("payment.escrow_released") == 1
    await world.service.sweep_instructions()
    await world.service.sweep_instructions()
    assert world.moved()[1:] == [("payout", TOTAL, "party:supplier-1")]
    escrow = await world.escrow()
    assert (escrow.released, escrow.held, escrow.status) == (TOTAL, 0, EscrowStatus.SETTLED)


async def test_partial_dispute_then_resolution_moves_each_cent_once(world):
    await world.confirm(total=100_001)
    await world.pay_card()
    await world.deliver(dispute_opened(disputed=33_333))
    escrow = await world.escrow()
    assert (escrow.held, escrow.released) == (33_333, 66_668)
    await world.deliver(DisputeResolved(order_id=ORDER, parties=PARTIES, dispute_id="d-1",
                                        outcome=DisputeOutcome.PARTIAL_REFUND, refund_amount=20_000,
                                        currency="USD", decided_by="agent", agent_id="agent-1"))
    await world.service.sweep_instructions()
    escrow = await world.escrow()
    assert (escrow.held, escrow.released, escrow.refunded) == (0, 66_668 + 13_333, 20_000)
    kinds = sorted(world.moved()[1:])
    assert kinds == [("payout", 13_333, "party:supplier-1"), ("payout", 66_668, "party:supplier-1"),
                     ("refund", 20_000, world.provider.movements[0].reference)]


async def test_withdrawn_dispute_moves_nothing_until_receipt(world):
    await world.confirm()
    await world.pay_card()
    await world.deliver(dispute_opened(RequestedOutcome.FULL_REFUND, TOTAL))
    await world.deliver(DisputeWithdrawn(order_id=ORDER, parties=PARTIES, dispute_id="d-1"))
    assert (await world.escrow()).held == TOTAL
    await world.deliver(ReceiptConfirmed(order_id=ORDER, parties=PARTIES, confirmed_by="automatic"))
    assert (await world.escrow()).released == TOTAL


async def test_a_provider_outage_leaves_instructions_pending_for_the_next_sweep(world):
    await world.confirm()
    await world.pay_card()
    await world.deliver(ReceiptConfirmed(order_id=ORDER, parties=PARTIES, confirmed_by="buyer"))
    world.provider.failures_to_inject = 1
    assert await world.service.sweep_instructions() == 0
    assert (await world.escrow()).instructions_pending
    assert await world.service.sweep_instructions() == 1
    assert [kind for kind, *_ in world.moved()] == ["charge", "payout"]


async def test_events_without_an_escrow(world):
    await world.deliver(OrderCancelled(order_id=ORDER, parties=PARTIES, reason="before confirmation"))
    assert world.store.docs == {}
    with pytest.raises(NotFound):
        await world.deliver(ReceiptConfirmed(order_id=ORDER, parties=PARTIES, confirmed_by="buyer"))


async def test_the_payment_deadline_is_judged_here_not_by_the_orders_closure(world):
    """The order closes unpaid only when this service says the deadline passed, so the
    payment service does not even listen to the order's closure."""
    assert OrderClosed not in subscriptions(world.service.reactions)
    await world.confirm()
    world.clock.advance(timedelta(days=20) - timedelta(seconds=1))
    await world.pay_card()
    world.clock.advance(timedelta(days=1))
    assert await world.runner.sweep_deadlines() == 0
    assert (await world.escrow()).status is EscrowStatus.FUNDED


async def test_reading_the_payment_is_for_the_parties_and_agents(world):
    await world.confirm()
    for reader in (BUYER, SUPPLIER, Actor(party_id="agent-1", role=Role.AGENT)):
        assert (await world.service.get(reader, ORDER)).order_id == ORDER
    with pytest.raises(NotPermitted):
        await world.service.get(Actor(party_id="supplier-2", role=Role.SUPPLIER), ORDER)
    with pytest.raises(NotPermitted):
        await world.service.get(Actor(party_id="buyer-1", role=Role.SUPPLIER), ORDER)


async def confirm_another(world, order_id="ord-2", currency="USD") -> Escrow:
    await world.deliver(OrderConfirmed(
        order_id=order_id, parties=PARTIES, currency=currency, total=TOTAL, delivery_period_days=10,
        logistics=Logistics(shipping_method=ShippingMethod.EXPRESS, carrier=Carrier.DHL),
        payment_due_at=world.clock.now() + timedelta(days=20)))
    return await world.runner.get(order_id)


async def test_a_bank_transfer_id_is_booked_once_platform_wide(world):
    await world.confirm()
    other = await confirm_another(world)
    first = await world.transfer("tt-1", 100_000)
    again_for_b = await world.transfer("tt-1", 100_000, reference=other.reference)
    again_unmatched = await world.transfer("tt-1", 100_000, reference="rent")
    assert first.order_id == again_for_b.order_id == again_unmatched.order_id == ORDER
    assert (await world.runner.get("ord-2")).paid_in == 0
    assert await world.database["bank_transfers"].count_documents({"order_id": None}) == 0
    with pytest.raises(DomainError, match="booked once"):
        await world.transfer("tt-1", 250_000, reference=other.reference)
    assert (await world.escrow()).paid_in == 100_000 and (await world.runner.get("ord-2")).paid_in == 0
    unmatched = await world.transfer("tt-2", 5_000, reference="rent")
    assert (await world.transfer("tt-2", 5_000, reference=other.reference)).matched is False
    assert unmatched.returned == 5_000 and (await world.runner.get("ord-2")).paid_in == 0


async def test_every_reference_candidate_in_the_text_is_tried(world):
    escrow = await world.confirm()
    decoy = transfer_reference("an order this platform never had")
    outcome = await world.transfer("tt-1", 1_000, reference=f"{decoy} / {escrow.reference}")
    assert (outcome.matched, outcome.order_id) == (True, ORDER)


async def test_money_in_a_currency_the_platform_does_not_settle_in_is_returned(world):
    await world.confirm()
    wrong = await world.transfer("tt-nzd", 70_000, currency="NZD")
    unknown = await world.transfer("tt-qqq", 3_000, currency="QQQ", reference="no reference")
    assert (wrong.matched, wrong.returned, unknown.matched, unknown.returned) == (True, 70_000, False, 3_000)
    assert world.published[-1].event().currency == "NZD"
    assert await world.service.sweep_instructions() == 2
    assert await world.service.sweep_instructions() == 0
    assert sorted((m.kind, m.amount.amount, m.amount.currency) for m in world.provider.movements) == [
        ("payout", 3_000, "QQQ"), ("payout", 70_000, "NZD")]
    [instruction] = (await world.escrow()).instructions
    assert instruction.status is InstructionStatus.SENT


async def test_a_capture_whose_booking_failed_is_booked_by_reconciliation(world):
    await world.confirm()
    real_save = world.store.save
    failures = []

    async def save_fails_after_the_capture(aggregate, **kwargs):
        if aggregate.fundings and not failures:
            failures.append("the save after the capture")
            raise RuntimeError("store unavailable")
        return await real_save(aggregate, **kwargs)

    world.store.save = save_fails_after_the_capture
    with pytest.raises(RuntimeError):
        await world.pay_card(key="req-1")
    assert failures and (await world.escrow()).paid_in == 0
    assert [kind for kind, *_ in world.moved()] == ["charge"]
    assert await world.service.cards.reconcile() == 1
    escrow = await world.escrow()
    assert (escrow.status, escrow.paid_in, escrow.held) == (EscrowStatus.FUNDED, TOTAL, TOTAL)
    assert await world.service.cards.reconcile() == 0
    assert world.published.types().count("payment.escrow_funded") == 1
    assert (await world.pay_card(key="req-1")).paid_in == TOTAL  # the retry charges nothing more
    assert [kind for kind, *_ in world.moved()] == ["charge"]


async def test_reconciliation_refunds_a_capture_the_escrow_can_no_longer_take(world):
    await world.confirm()
    real_save = world.store.save

    async def save_fails_after_the_capture(aggregate, **kwargs):
        if aggregate.fundings:
            raise RuntimeError("store unavailable")
        return await real_save(aggregate, **kwargs)

    world.store.save = save_fails_after_the_capture
    with pytest.raises(RuntimeError):
        await world.pay_card()
    world.store.save = real_save
    await world.deliver(OrderCancelled(order_id=ORDER, parties=PARTIES, reason="changed mind"))
    assert await world.service.cards.reconcile() == 1
    escrow = await world.escrow()
    assert (escrow.status, escrow.paid_in, escrow.refunded) == (EscrowStatus.SETTLED, TOTAL, TOTAL)
    [charge, refund] = world.provider.movements
    assert (refund.kind, refund.amount.amount, refund.to) == ("refund", TOTAL, charge.reference)
