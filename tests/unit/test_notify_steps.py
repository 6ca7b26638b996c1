"""The step table and the templates: every event is some step, every step renders a mail
for each of its recipients, and the mails say what they must (and nothing they must not)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared.contracts import events as ev
from shared.contracts.envelope import Envelope, TradeEvent, registered_events
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import (
    Address,
    CardSummary,
    Carrier,
    DisputeOutcome,
    DisputeReason,
    Evidence,
    LineItem,
    Logistics,
    PaymentMethod,
    RequestedOutcome,
    TransferInstructions,
)

from services.notify.emails import EmailJob, compose
from services.notify.rendering import Recipient
from services.notify.steps import STEPS
from services.notify.steps.table import README, readme_with_table

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CS_EMAIL = "disputes@escrow.example"
PARTIES = Parties(buyer=Party(party_id="buyer-acme", name="ACME Imports Ltd"),
                  supplier=Party(party_id="supplier-bolts", name="Shenzhen Bolts Co"))
# The contact emails the parties registered and verified themselves.
ADDRESSES = {"buyer-acme": "buyer@acme.example", "supplier-bolts": "sales@bolts.example"}


class KnownContacts:
    """The verified contacts of the parties, as the contact book would give them."""

    def __init__(self, addresses: dict[str, str] | None = None) -> None:
        self.verified = dict(ADDRESSES if addresses is None else addresses)

    async def addresses(self, party_ids: Iterable[str]) -> dict[str, str]:
        return {p: self.verified[p] for p in party_ids if p in self.verified}

    async def release(self, party_id: str, address: str) -> int:
        return 0
LOGISTICS = Logistics(shipping_method="sea-freight", carrier=Carrier.DHL)
IBAN = "DE89370400440532013000"
CARD_TOKEN = "tok_8f3a9c2e"

SAMPLES: dict[type[TradeEvent], dict[str, Any]] = {
    ev.OrderPlaced: dict(
        items=[LineItem(description="Stainless bolts M8", quantity=40, unit_price=2500)],
        currency="USD", total=100000, delivery_period_days=30,
        destination=Address(recipient="ACME Imports", line1="Hafenstrasse 1", city="Hamburg",
                            postal_code="20457", country="DE")),
    ev.OrderConfirmed: dict(logistics=LOGISTICS, currency="USD", total=100000,
                            delivery_period_days=30, payment_due_at=T0 + timedelta(days=20)),
    ev.OrderDeclined: dict(reason="out of stock"),
    ev.OrderCancelled: dict(reason="found another supplier"),
    ev.PaymentDueSoon: dict(payment_due_at=T0 + timedelta(days=20)),
    ev.OrderClosed: dict(reason=ev.ClosureReason.SETTLED, currency="USD", released_total=100000),
    ev.MessagePosted: dict(message_id="msg-1", author_role=Role.BUYER,
                           author_party_id="buyer-acme", text="When do you ship?"),
    ev.EscrowOpened: dict(
        amount_due=100000, currency="USD", pay_by=T0 + timedelta(days=20),
        bank_transfer=TransferInstructions(reference="ESC-ORD1-7K2", beneficiary="Escrow Trust Ltd",
                                           iban=IBAN, bic="COBADEFFXXX", bank_name="Commerzbank")),
    ev.CardPaymentDeclined: dict(amount=100000, currency="USD", reason="insufficient funds",
                                 card=CardSummary(brand="Visa", last4="4242", token=CARD_TOKEN)),
    ev.BankTransferReceived: dict(transfer_id="tr-1", amount=40000, currency="USD",
                                  received_total=40000, remaining=60000),
    ev.EscrowFunded: dict(amount=100000, currency="USD", method=PaymentMethod.CARD,
                          card=CardSummary(brand="Visa", last4="4242", token=CARD_TOKEN)),
    ev.FundsReturned: dict(amount=500, currency="USD", reason=ev.ReturnReason.OVERPAYMENT,
                           transfer_id="tr-2"),
    ev.EscrowReleased: dict(amount=100000, currency="USD", payout_id="po-1", held_after=0,
                            reason=ev.SettlementReason.RECEIPT_CONFIRMED),
    ev.EscrowRefunded: dict(amount=100000, currency="USD", method=PaymentMethod.CARD,
                            refund_id="rf-1", held_after=0, reason=ev.SettlementReason.NOT_SHIPPED),
    ev.PaymentDeadlinePassed: dict(pay_by=T0 + timedelta(days=20), currency="USD",
                                   received_total=70000),
    ev.EscrowSettled: dict(currency="USD", paid_in_total=100000, released_total=60000,
                           refunded_total=40000),
    ev.ShipmentExpected: dict(ship_by=T0 + timedelta(days=30), logistics=LOGISTICS),
    ev.ShipmentDueSoon: dict(ship_by=T0 + timedelta(days=30)),
    ev.ShipmentDispatched: dict(carrier=Carrier.DHL, tracking_number="1234567890",
                                ship_date=date(2026, 2, 1), dispatched_at=T0 + timedelta(days=27)),
    ev.DispatchDeadlineMissed: dict(ship_by=T0 + timedelta(days=30)),
    ev.ReceiptConfirmed: dict(confirmed_by="buyer"),
    ev.ReceiptExpected: dict(dispute_opens_at=datetime(2026, 2, 7, tzinfo=UTC),
                             auto_confirm_at=datetime(2026, 3, 5, tzinfo=UTC)),
    ev.ReceiptAutoConfirmSoon: dict(auto_confirm_at=T0 + timedelta(days=60)),
    ev.DisputeOpened: dict(
        dispute_id="dsp-1", reason=DisputeReason.NOT_AS_DESCRIBED, disputed_amount=40000,
        requested=RequestedOutcome.PARTIAL_REFUND, currency="USD",
        description="Half of the bolts are rusty.", answer_due_at=T0 + timedelta(days=45),
        evidence=[Evidence(kind="link", url="https://photos.example/rust")]),
    ev.DisputeAnswered: dict(dispute_id="dsp-1", answer=ev.DisputeAnswer.COUNTER_OFFER,
                             counter_amount=20000, currency="USD", message="We offer half of that."),
    ev.DisputeAnswerDueSoon: dict(dispute_id="dsp-1", answer_due_at=T0 + timedelta(days=45)),
    ev.DisputeStatementAdded: dict(dispute_id="dsp-1", statement_id="stm-1",
                                   author_role=Role.SUPPLIER, author_party_id="supplier-1",
                                   text="The goods left our warehouse intact."),
    ev.DisputeWithdrawn: dict(dispute_id="dsp-1"),
    ev.DisputeEscalated: dict(dispute_id="dsp-1", escalated_by=Role.BUYER),
    ev.DisputeResolved: dict(dispute_id="dsp-1", outcome=DisputeOutcome.PARTIAL_REFUND,
                             refund_amount=30000, currency="USD", decided_by="agent",
                             agent_id="agent-7", reason="The photos show rust on a third."),
}


def sample(event_type: type[TradeEvent], order_id: str = "ord-1", **overrides: Any) -> TradeEvent:
    return event_type(order_id=order_id, parties=PARTIES, **{**SAMPLES[event_type], **overrides})


def envelope_of(event: TradeEvent) -> Envelope:
    return Envelope.wrap(event, occurred_at=T0)


def mails(event: TradeEvent, **kwargs: Any) -> dict[Recipient, EmailJob]:
    jobs = compose(envelope_of(event), event, now=T0, customer_service_email=CS_EMAIL,
                   addresses=ADDRESSES, **kwargs)
    return {job.recipient_role: job for job in jobs}


def test_every_registered_event_is_a_step_someone_is_told_about() -> None:
    assert set(STEPS) == set(registered_events())
    assert all(step.recipients for step in STEPS.values())


def test_step_names_are_unique() -> None:
    names = [step.name for step in STEPS.values()]
    assert len(names) == len(set(names))


def test_every_registered_event_has_a_sample_so_each_template_is_rendered_here() -> None:
    assert set(SAMPLES) == set(registered_events())


def test_the_readme_table_of_steps_is_generated_from_the_declarations() -> None:
    readme = README.read_text()
    assert readme_with_table(readme) == readme, (
        "services/notify/README.md is stale: run python -m services.notify.steps.table --write")
    for event_type, step in STEPS.items():
        assert f"| `{event_type.event_type}` | `{step.name}` |" in readme


def test_each_step_is_declared_in_the_module_of_its_producing_service() -> None:
    for event_type, step in STEPS.items():
        assert step.template.__module__ == f"services.notify.steps.{event_type.producer}"


@pytest.mark.parametrize("event_type", list(SAMPLES), ids=lambda e: e.__name__)
def test_each_step_renders_a_text_and_html_mail_per_recipient(event_type: type[TradeEvent]) -> None:
    event = sample(event_type)
    envelope = envelope_of(event)
    jobs = compose(envelope, event, now=T0, customer_service_email=CS_EMAIL, addresses=ADDRESSES)
    step = STEPS[event_type]

    assert [j.recipient_role for j in jobs] == list(step.recipients_of(event))
    addresses = {Recipient.BUYER: "buyer@acme.example", Recipient.SUPPLIER: "sales@bolts.example",
                 Recipient.CUSTOMER_SERVICE: CS_EMAIL}
    for job in jobs:
        assert job.id == f"{envelope.event_id}:{job.recipient_role}"
        assert (job.step, job.event_type, job.to) == (step.name, event_type.event_type,
                                                      addresses[job.recipient_role])
        assert "ord-1" in job.subject and "\n" not in job.subject
        assert "ord-1" in job.text and "What happens next:" in job.text
        assert job.html.startswith("<!DOCTYPE html>") and "ord-1" in job.html
        assert "What happens next:" in job.html
        assert CARD_TOKEN not in job.text and CARD_TOKEN not in job.html


def test_the_buyer_and_the_supplier_are_told_different_things() -> None:
    placed = mails(sample(ev.OrderPlaced))
    assert "new order from ACME Imports Ltd" in placed[Recipient.SUPPLIER].subject
    assert "confirm the order" in placed[Recipient.SUPPLIER].text
    assert "order placed with Shenzhen Bolts Co" in placed[Recipient.BUYER].subject


def test_amounts_are_shown_in_the_currency_with_its_minor_units() -> None:
    text = mails(sample(ev.OrderPlaced))[Recipient.BUYER].text
    assert "USD 1,000.00" in text
    assert "40 x Stainless bolts M8 at USD 25.00 = USD 1,000.00" in text
    yen = mails(sample(ev.EscrowFunded, amount=150000, currency="JPY"))[Recipient.BUYER].text
    assert "JPY 150,000" in yen


def test_payment_instructions_give_the_escrow_account_reference_and_pay_by_date() -> None:
    """The account is the platform's own escrow account: the buyer needs all of it to pay."""
    buyer = mails(sample(ev.EscrowOpened))[Recipient.BUYER]
    assert "ESC-ORD1-7K2" in buyer.text and "Sun 25 Jan 2026, 09:00 UTC" in buyer.text
    assert "USD 1,000.00" in buyer.text
    assert IBAN in buyer.text and IBAN in buyer.html
    supplier = mails(sample(ev.EscrowOpened))[Recipient.SUPPLIER]
    assert IBAN not in supplier.text


def test_card_declined_goes_to_the_buyer_only_with_brand_and_last_four() -> None:
    declined = mails(sample(ev.CardPaymentDeclined))
    assert set(declined) == {Recipient.BUYER}
    assert "Visa card ending in 4242" in declined[Recipient.BUYER].text


@pytest.mark.parametrize(("author", "reader"), [(Role.BUYER, Recipient.SUPPLIER),
                                               (Role.SUPPLIER, Recipient.BUYER)])
def test_a_message_goes_only_to_the_other_side(author: Role, reader: Recipient) -> None:
    posted = mails(sample(ev.MessagePosted, author_role=author, text="Ship <b>today</b>?\nThanks"))
    assert set(posted) == {reader}
    mail = posted[reader]
    assert "> Ship <b>today</b>?\n> Thanks" in mail.text
    assert "Ship &lt;b&gt;today&lt;/b&gt;?<br>Thanks" in mail.html
    assert "<b>today</b>" not in mail.html


def test_an_escalated_dispute_is_also_mailed_to_customer_service() -> None:
    escalated = mails(sample(ev.DisputeEscalated))
    assert set(escalated) == {Recipient.BUYER, Recipient.SUPPLIER, Recipient.CUSTOMER_SERVICE}
    agent = escalated[Recipient.CUSTOMER_SERVICE]
    assert agent.to == CS_EMAIL
    assert "dsp-1" in agent.text and "please decide" in agent.subject
    assert "party buyer-acme" in agent.text and "party supplier-bolts" in agent.text


def test_the_shipped_mail_gives_the_tracking_number() -> None:
    buyer = mails(sample(ev.ShipmentDispatched))[Recipient.BUYER]
    assert "1234567890" in buyer.text and "DHL" in buyer.text


def test_the_supplier_is_asked_to_ship_by_the_deadline() -> None:
    supplier = mails(sample(ev.ShipmentExpected))[Recipient.SUPPLIER]
    assert "please ship by 04 Feb 2026" in supplier.subject
    assert "Please ship by Wed 04 Feb 2026, 09:00 UTC with DHL, sea freight" in supplier.text


def test_a_counter_offer_is_shown_in_its_currency() -> None:
    assert "USD 200.00" in mails(sample(ev.DisputeAnswered))[Recipient.BUYER].text


def test_a_line_break_in_a_party_name_cannot_break_the_subject() -> None:
    # the contract refuses such a name (tests/unit/test_text.py); rendering defends anyway
    parties = PARTIES.model_copy(update={"buyer": Party.model_construct(
        party_id="buyer-acme", name="ACME\r\nBcc: victim@example.com")})
    event = ev.OrderPlaced(order_id="ord-1", parties=parties, **SAMPLES[ev.OrderPlaced])
    subject = mails(event)[Recipient.SUPPLIER].subject
    assert not re.search(r"[\r\n]", subject)


def test_job_ids_differ_per_event_and_recipient() -> None:
    first, second = sample(ev.OrderPlaced), sample(ev.OrderPlaced)
    ids = {job.id for e in (first, second)
           for job in compose(envelope_of(e), e, now=T0, customer_service_email=CS_EMAIL,
                              addresses=ADDRESSES)}
    assert len(ids) == 4
    assert all(re.fullmatch(r"[0-9a-f]{32}:(buyer|supplier)", i) for i in ids)
    assert uuid.UUID(next(iter(ids)).split(":")[0])


# --- every email states what actually moved (issue 9.6, 9.9) -------------------------------


def test_a_partial_refund_dispute_tells_both_that_the_undisputed_part_is_released_now() -> None:
    opened = mails(sample(ev.DisputeOpened))  # 400.00 disputed, partial refund requested
    buyer, supplier = opened[Recipient.BUYER].text, opened[Recipient.SUPPLIER].text
    assert "no money moves" not in buyer
    assert "USD 400.00 stays held in escrow" in buyer
    assert "the rest of your payment, which you do not dispute, is released to Shenzhen Bolts Co now" in buyer
    assert "the rest, which the buyer does not dispute, is released to you now" in supplier
    full = mails(sample(ev.DisputeOpened, requested=RequestedOutcome.FULL_REFUND,
                        disputed_amount=100000))[Recipient.BUYER].text
    assert "no money moves until it is resolved" in full


def test_a_full_refund_decision_on_a_partial_dispute_is_announced_as_the_amount_refunded() -> None:
    resolved = mails(sample(ev.DisputeResolved, outcome=DisputeOutcome.FULL_REFUND,
                            refund_amount=40000))
    for mail in resolved.values():
        assert "full refund" not in mail.subject + mail.text
        assert "refund of everything in dispute, USD 400.00, to the buyer" in mail.text


def test_a_wrong_currency_return_says_why_and_not_that_the_order_was_closed() -> None:
    returned = mails(sample(ev.FundsReturned, amount=5000, currency="EUR",
                            reason=ev.ReturnReason.WRONG_CURRENCY))[Recipient.BUYER].text
    assert "could no longer take payment" not in returned
    assert "it was in EUR, not in the currency of the order" in returned


def test_the_cancel_mail_does_not_claim_nothing_was_charged() -> None:
    """A partial transfer may have arrived before the cancel: it is returned, and said so."""
    buyer = mails(sample(ev.OrderCancelled))[Recipient.BUYER].text
    assert "Nothing was charged" not in buyer
    assert "any money that already arrived for it is returned to you" in buyer


def test_a_refund_split_over_two_funding_sources_says_each_part_and_the_total() -> None:
    parts = [mails(sample(ev.EscrowRefunded, amount=amount, refund_total=100000,
                          method=method))[Recipient.BUYER]
             for amount, method in ((30000, PaymentMethod.BANK_TRANSFER), (70000, PaymentMethod.CARD))]
    assert "USD 300.00 of a refund of USD 1,000.00" in parts[0].subject
    assert "USD 700.00 of a refund of USD 1,000.00" in parts[1].subject
    assert all("in parts, one email for each" in p.text for p in parts)
    whole = mails(sample(ev.EscrowRefunded, refund_total=100000))[Recipient.BUYER]
    assert "USD 1,000.00 refunded to you" in whole.subject and "in parts" not in whole.text


def test_an_escrow_that_never_held_money_sends_no_statement() -> None:
    assert mails(sample(ev.EscrowSettled, paid_in_total=0, released_total=0,
                        refunded_total=0)) == {}


def test_the_dispute_and_receipt_dates_are_the_dispute_services() -> None:
    shipped = mails(sample(ev.ShipmentDispatched))[Recipient.BUYER].text
    assert "open a dispute from" not in shipped  # notify no longer works the date out itself
    expected = mails(sample(ev.ReceiptExpected))
    assert "open a dispute from Sat 07 Feb 2026, 00:00 UTC" in expected[Recipient.BUYER].text
    assert "Thu 05 Mar 2026, 00:00 UTC" in expected[Recipient.SUPPLIER].text
    reminder = mails(sample(ev.ReceiptAutoConfirmSoon,
                            dispute_opens_at=datetime(2026, 2, 7, tzinfo=UTC)))[Recipient.BUYER]
    assert "open a dispute (possible from Sat 07 Feb 2026, 00:00 UTC)" in reminder.text
