"""Buyer protection rules: receipt confirmation, the dispute window, negotiation,
escalation and the agent's decision, as a pure state machine."""

from datetime import UTC, date, datetime, timedelta

import pytest

from shared.contracts.events import (
    DisputeAnswer,
    DisputeAnswerDueSoon,
    DisputeAnswered,
    DisputeEscalated,
    DisputeOpened,
    DisputeResolved,
    DisputeWithdrawn,
    ReceiptAutoConfirmSoon,
    ReceiptConfirmed,
    ReceiptExpected,
)
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import Carrier, DisputeOutcome, DisputeReason, Evidence, RequestedOutcome
from shared.domain.actor import Actor
from shared.domain.errors import DomainError, InvalidRequest, NotPermitted

from services.dispute.domain import (
    AUTO_ESCALATE,
    RECEIPT_AUTO_CONFIRM,
    RECEIPT_REMINDER,
    BuyerProtection,
    Periods,
    ProtectionStatus,
)
from services.dispute.negotiation import DisputeStatus

BUYER = Actor(party_id="buyer-1", role=Role.BUYER)
SUPPLIER = Actor(party_id="supplier-1", role=Role.SUPPLIER)
AGENT = Actor(party_id="agent-7", role=Role.AGENT)
OTHER_BUYER = Actor(party_id="buyer-2", role=Role.BUYER)
PARTIES = Parties(
    buyer=Party(party_id="buyer-1", name="Buyer", email="buyer@example.com"),
    supplier=Party(party_id="supplier-1", name="Supplier", email="supplier@example.com"))
PERIODS = Periods()
PAID = 100_000
SHIP_DATE = date(2026, 1, 5)
SHIPPED_AT = datetime(2026, 1, 5, 15, 30, tzinfo=UTC)
OPENS_AT = datetime(2026, 1, 10, tzinfo=UTC)  # start of the ship date (UTC) + 5 days
AUTO_CONFIRM_AT = datetime(2026, 2, 4, tzinfo=UTC)  # start of the ship date (UTC) + 30 days
DAY = timedelta(days=1)


def shipped(periods: Periods = PERIODS) -> BuyerProtection:
    p = BuyerProtection.start("ord-1", PARTIES)
    p.record_funding(PAID, "EUR", SHIPPED_AT - 3 * DAY)
    p.record_dispatch(SHIP_DATE, Carrier.DHL, "1234567890", SHIPPED_AT, periods=periods)
    p.pull_events()
    return p


def open_dispute(p: BuyerProtection, at: datetime = OPENS_AT, *,
                 reason: DisputeReason = DisputeReason.NOT_RECEIVED,
                 requested: RequestedOutcome = RequestedOutcome.FULL_REFUND,
                 amount: int | None = None, evidence: list[Evidence] | None = None,
                 actor: Actor = BUYER) -> None:
    p.open_dispute(actor, "dsp-1", reason, requested, amount, "nothing arrived", evidence or [],
                   at, periods=PERIODS)


def kinds(p: BuyerProtection) -> list[str]:
    return [type(e).__name__ for e in p.pull_events()]


def last(p: BuyerProtection):
    return p.pull_events()[-1]


# --- windows and receipt -----------------------------------------------------------------


def test_dispatch_opens_the_windows_from_the_start_of_the_ship_date_utc():
    p = shipped()
    assert p.status is ProtectionStatus.AWAITING_RECEIPT
    assert p.dispute_opens_at == OPENS_AT
    assert p.auto_confirm_at == AUTO_CONFIRM_AT
    assert p.deadlines == {RECEIPT_AUTO_CONFIRM: AUTO_CONFIRM_AT,
                           RECEIPT_REMINDER: AUTO_CONFIRM_AT - 3 * DAY}


def test_dispatch_publishes_the_dates_the_parties_are_mailed():
    p = BuyerProtection.start("ord-1", PARTIES)
    p.record_funding(PAID, "EUR", SHIPPED_AT - 3 * DAY)
    p.record_dispatch(SHIP_DATE, Carrier.DHL, "1234567890", SHIPPED_AT, periods=PERIODS)
    [expected] = [e for e in p.pull_events() if isinstance(e, ReceiptExpected)]
    assert (expected.dispute_opens_at, expected.auto_confirm_at) == (OPENS_AT, AUTO_CONFIRM_AT)
    p.run_due_deadlines(AUTO_CONFIRM_AT - 3 * DAY)
    assert last(p).dispute_opens_at == OPENS_AT


def test_the_periods_are_configurable():
    p = shipped(Periods(dispute_opens_after=timedelta(hours=1),
                        receipt_auto_confirm_after=timedelta(days=10)))
    assert p.dispute_opens_at == datetime(2026, 1, 5, 1, tzinfo=UTC)
    assert p.auto_confirm_at == datetime(2026, 1, 15, tzinfo=UTC)


def test_buyer_confirms_receipt_once():
    p = shipped()
    p.confirm_receipt(BUYER, SHIPPED_AT + DAY)
    event = last(p)
    assert isinstance(event, ReceiptConfirmed) and event.confirmed_by == "buyer"
    assert p.status is ProtectionStatus.RECEIPT_CONFIRMED and p.deadlines == {}
    p.confirm_receipt(BUYER, SHIPPED_AT + 2 * DAY)
    assert p.pull_events() == []


def test_only_the_buyer_confirms_receipt_and_only_after_dispatch():
    p = shipped()
    with pytest.raises(NotPermitted, match="only this order's buyer"):
        p.confirm_receipt(SUPPLIER, SHIPPED_AT)
    with pytest.raises(NotPermitted):
        p.confirm_receipt(OTHER_BUYER, SHIPPED_AT)
    unshipped = BuyerProtection.start("ord-2", PARTIES)
    unshipped.record_funding(PAID, "EUR", SHIPPED_AT)
    with pytest.raises(DomainError, match="not dispatched"):
        unshipped.confirm_receipt(BUYER, SHIPPED_AT)


def test_receipt_is_confirmed_automatically_after_a_reminder():
    p = shipped()
    p.run_due_deadlines(AUTO_CONFIRM_AT - 3 * DAY)
    reminder = last(p)
    assert isinstance(reminder, ReceiptAutoConfirmSoon)
    assert reminder.auto_confirm_at == AUTO_CONFIRM_AT
    p.run_due_deadlines(AUTO_CONFIRM_AT - timedelta(seconds=1))
    assert p.pull_events() == []
    p.run_due_deadlines(AUTO_CONFIRM_AT)
    event = last(p)
    assert isinstance(event, ReceiptConfirmed) and event.confirmed_by == "automatic"
    assert p.receipt_confirmed_by == "automatic" and p.deadlines == {}


@pytest.mark.parametrize("reminder_before", [timedelta(0), 3 * DAY])
def test_a_late_sweep_confirms_without_a_stale_reminder(reminder_before):
    p = shipped(Periods(receipt_reminder_before=reminder_before))
    p.run_due_deadlines(AUTO_CONFIRM_AT + DAY)
    assert kinds(p) == ["ReceiptConfirmed"]


def test_a_closed_order_has_no_deadlines_and_takes_no_confirmation():
    p = shipped()
    p.close("order.closed", SHIPPED_AT + DAY)
    assert p.status is ProtectionStatus.CLOSED and p.deadlines == {}
    with pytest.raises(DomainError, match="closed"):
        p.confirm_receipt(BUYER, SHIPPED_AT + 2 * DAY)


# --- opening a dispute -------------------------------------------------------------------


def test_not_received_and_supplier_accepts_is_a_full_refund():
    p = shipped()
    open_dispute(p)
    opened = p.pull_events()[0]
    assert isinstance(opened, DisputeOpened)
    assert opened.disputed_amount == PAID and opened.currency == "EUR"
    assert opened.answer_due_at == OPENS_AT + 5 * DAY
    assert p.status is ProtectionStatus.DISPUTED
    p.answer_dispute(SUPPLIER, DisputeAnswer.ACCEPT, None, "sorry", OPENS_AT + DAY, periods=PERIODS)
    answered, resolved = p.pull_events()
    assert isinstance(answered, DisputeAnswered) and answered.answer is DisputeAnswer.ACCEPT
    assert isinstance(resolved, DisputeResolved)
    assert (resolved.outcome, resolved.refund_amount, resolved.decided_by) == (
        DisputeOutcome.FULL_REFUND, PAID, "agreement")
    assert p.status is ProtectionStatus.DISPUTE_RESOLVED and p.deadlines == {}


def test_not_as_described_and_the_counter_offer_accepted_is_a_partial_refund():
    p = shipped()
    open_dispute(p, reason=DisputeReason.NOT_AS_DESCRIBED)
    p.answer_dispute(SUPPLIER, DisputeAnswer.COUNTER_OFFER, 30_000, "30%", OPENS_AT + DAY,
                     periods=PERIODS)
    assert kinds(p) == ["DisputeOpened", "DisputeAnswered"]
    p.accept_counter_offer(BUYER, OPENS_AT + 2 * DAY)
    resolved = last(p)
    assert isinstance(resolved, DisputeResolved)
    assert (resolved.outcome, resolved.refund_amount, resolved.decided_by) == (
        DisputeOutcome.PARTIAL_REFUND, 30_000, "agreement")
    p.accept_counter_offer(BUYER, OPENS_AT + 3 * DAY)
    assert p.pull_events() == []


def test_a_partial_refund_request_disputes_only_that_amount():
    p = shipped()
    open_dispute(p, requested=RequestedOutcome.PARTIAL_REFUND, amount=25_000)
    assert p.pull_events()[0].disputed_amount == 25_000
    p.answer_dispute(SUPPLIER, DisputeAnswer.ACCEPT, None, "", OPENS_AT + DAY, periods=PERIODS)
    resolved = last(p)
    assert (resolved.outcome, resolved.refund_amount) == (DisputeOutcome.PARTIAL_REFUND, 25_000)


def test_a_dispute_cannot_open_before_the_window():
    p = shipped()
    with pytest.raises(DomainError, match="too early: .* from 2026-01-10 00:00 UTC"):
        open_dispute(p, OPENS_AT - timedelta(seconds=1))
    open_dispute(p, OPENS_AT)
    assert p.dispute is not None


def test_a_dispute_cannot_open_once_receipt_is_confirmed():
    p = shipped()
    p.confirm_receipt(BUYER, OPENS_AT + DAY)
    with pytest.raises(DomainError, match="too late: receipt was confirmed"):
        open_dispute(p, OPENS_AT + 2 * DAY)


def test_a_dispute_cannot_open_once_automatic_confirmation_is_due_even_if_not_yet_swept():
    p = shipped()
    with pytest.raises(DomainError, match=r"too late: receipt was confirmed \(automatic\)"):
        open_dispute(p, AUTO_CONFIRM_AT)


def test_a_dispute_cannot_open_before_dispatch():
    p = BuyerProtection.start("ord-2", PARTIES)
    p.record_funding(PAID, "EUR", SHIPPED_AT)
    with pytest.raises(DomainError, match="not been dispatched"):
        open_dispute(p)


@pytest.mark.parametrize("actor", [SUPPLIER, OTHER_BUYER, AGENT])
def test_only_the_orders_buyer_opens_a_dispute(actor):
    with pytest.raises(NotPermitted, match="only this order's buyer may open a dispute"):
        open_dispute(shipped(), actor=actor)


@pytest.mark.parametrize(("requested", "amount", "message"), [
    (RequestedOutcome.PARTIAL_REFUND, PAID + 1, "more than was paid"),
    (RequestedOutcome.PARTIAL_REFUND, PAID, "request a full refund"),
    (RequestedOutcome.PARTIAL_REFUND, None, "needs the amount"),
    (RequestedOutcome.PARTIAL_REFUND, 0, "above zero"),
    (RequestedOutcome.FULL_REFUND, 5_000, "a full refund is the paid amount"),
])
def test_amount_rules(requested, amount, message):
    with pytest.raises(InvalidRequest, match=message) as raised:
        open_dispute(shipped(), requested=requested, amount=amount)
    assert raised.value.field == "amount"


def test_the_amount_error_shows_money_in_the_currency():
    with pytest.raises(InvalidRequest, match=r"EUR 1,000\.00"):
        open_dispute(shipped(), requested=RequestedOutcome.PARTIAL_REFUND, amount=PAID + 1)


def test_at_most_ten_attachments():
    attachment = Evidence(kind="attachment", attachment_id="att-1", filename="a.png",
                          content_type="image/png", size_bytes=10)
    with pytest.raises(InvalidRequest, match="at most 10 attachments") as raised:
        open_dispute(shipped(), evidence=[attachment] * 11)
    assert raised.value.field == "evidence"


def test_one_dispute_open_at_a_time_and_a_repeated_opening_is_a_no_op():
    p = shipped()
    open_dispute(p)
    open_dispute(p, OPENS_AT + DAY)
    assert kinds(p) == ["DisputeOpened"]
    with pytest.raises(DomainError, match="one dispute is open at a time"):
        open_dispute(p, OPENS_AT + DAY, reason=DisputeReason.OTHER)


# --- the receipt clock while disputing ---------------------------------------------------


def test_opening_stops_the_automatic_confirmation():
    p = shipped()
    opened_at = OPENS_AT + 2 * DAY
    open_dispute(p, opened_at)
    assert p.auto_confirm_remaining == AUTO_CONFIRM_AT - opened_at
    assert RECEIPT_AUTO_CONFIRM not in p.deadlines and RECEIPT_REMINDER not in p.deadlines
    p.answer_dispute(SUPPLIER, DisputeAnswer.REJECT, None, "", opened_at + DAY, periods=PERIODS)
    p.escalate_dispute(BUYER, opened_at + 2 * DAY)
    p.pull_events()
    p.run_due_deadlines(AUTO_CONFIRM_AT + 10 * DAY)
    assert p.pull_events() == [] and p.receipt_confirmed_at is None
    with pytest.raises(DomainError, match="withdraw the dispute to confirm receipt, or wait"):
        p.confirm_receipt(BUYER, AUTO_CONFIRM_AT + 10 * DAY)


def test_withdrawing_resumes_the_clock_with_the_remaining_time():
    p = shipped()
    opened_at = datetime(2026, 1, 12, tzinfo=UTC)  # 23 days before the automatic confirmation
    open_dispute(p, opened_at)
    withdrawn_at = datetime(2026, 1, 20, 8, tzinfo=UTC)
    p.withdraw_dispute(BUYER, withdrawn_at, periods=PERIODS)
    event = last(p)
    assert isinstance(event, DisputeWithdrawn) and event.dispute_id == "dsp-1"
    resumed = withdrawn_at + timedelta(days=23)
    assert p.auto_confirm_at == resumed and p.auto_confirm_remaining is None
    assert p.deadlines == {RECEIPT_AUTO_CONFIRM: resumed, RECEIPT_REMINDER: resumed - 3 * DAY}
    assert p.status is ProtectionStatus.AWAITING_RECEIPT
    p.withdraw_dispute(BUYER, withdrawn_at + DAY, periods=PERIODS)
    assert p.pull_events() == []
    p.run_due_deadlines(resumed - timedelta(seconds=1))
    assert kinds(p) == ["ReceiptAutoConfirmSoon"]
    p.run_due_deadlines(resumed)
    assert kinds(p) == ["ReceiptConfirmed"]


def test_withdrawing_near_the_end_reminds_at_once():
    p = shipped()
    opened_at = AUTO_CONFIRM_AT - DAY
    open_dispute(p, opened_at)
    p.withdraw_dispute(BUYER, opened_at + 3 * DAY, periods=PERIODS)
    assert p.deadlines[RECEIPT_REMINDER] == opened_at + 3 * DAY
    assert p.deadlines[RECEIPT_AUTO_CONFIRM] == opened_at + 4 * DAY


def test_the_buyer_may_confirm_receipt_after_withdrawing():
    p = shipped()
    open_dispute(p)
    p.withdraw_dispute(BUYER, OPENS_AT + DAY, periods=PERIODS)
    p.confirm_receipt(BUYER, OPENS_AT + 2 * DAY)
    assert kinds(p)[-1] == "ReceiptConfirmed"


# --- negotiation rules -------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, PAID, PAID + 1, None])
def test_a_counter_offer_is_above_zero_and_below_the_disputed_amount(amount):
    p = shipped()
    open_dispute(p)
    with pytest.raises(InvalidRequest) as raised:
        p.answer_dispute(SUPPLIER, DisputeAnswer.COUNTER_OFFER, amount, "", OPENS_AT,
                         periods=PERIODS)
    assert raised.value.field == "amount"


def test_only_the_supplier_answers():
    p = shipped()
    open_dispute(p)
    with pytest.raises(NotPermitted, match="only this order's supplier may answer"):
        p.answer_dispute(BUYER, DisputeAnswer.ACCEPT, None, "", OPENS_AT, periods=PERIODS)


def test_the_supplier_may_still_accept_after_rejecting_but_not_change_otherwise():
    p = shipped()
    open_dispute(p)
    p.answer_dispute(SUPPLIER, DisputeAnswer.REJECT, None, "", OPENS_AT + DAY, periods=PERIODS)
    p.answer_dispute(SUPPLIER, DisputeAnswer.REJECT, None, "again", OPENS_AT + DAY, periods=PERIODS)
    assert kinds(p) == ["DisputeOpened", "DisputeAnswered"]
    with pytest.raises(DomainError, match="already answered 'reject'"):
        p.answer_dispute(SUPPLIER, DisputeAnswer.COUNTER_OFFER, 10, "", OPENS_AT + DAY,
                         periods=PERIODS)
    with pytest.raises(DomainError, match="no counter-offer"):
        p.accept_counter_offer(BUYER, OPENS_AT + DAY)
    p.answer_dispute(SUPPLIER, DisputeAnswer.ACCEPT, None, "", OPENS_AT + 2 * DAY, periods=PERIODS)
    assert last(p).refund_amount == PAID


# --- escalation and decision -------------------------------------------------------------


def test_no_escalation_while_the_supplier_still_has_time_to_answer():
    p = shipped()
    open_dispute(p)
    with pytest.raises(DomainError, match="has until 2026-01-15 00:00 UTC to answer"):
        p.escalate_dispute(BUYER, OPENS_AT + DAY)


def test_escalation_after_a_reject_decided_as_a_partial_refund():
    p = shipped()
    open_dispute(p)
    p.answer_dispute(SUPPLIER, DisputeAnswer.REJECT, None, "it was delivered", OPENS_AT + DAY,
                     periods=PERIODS)
    p.escalate_dispute(BUYER, OPENS_AT + 2 * DAY)
    escalated = last(p)
    assert isinstance(escalated, DisputeEscalated) and escalated.escalated_by == Role.BUYER
    assert p.status is ProtectionStatus.ESCALATED and p.model_dump()["status"] == "escalated"
    p.decide_dispute(AGENT, DisputeOutcome.PARTIAL_REFUND, 40_000, "partly damaged",
                     OPENS_AT + 3 * DAY)
    resolved = last(p)
    assert (resolved.outcome, resolved.refund_amount, resolved.decided_by, resolved.agent_id,
            resolved.reason) == (DisputeOutcome.PARTIAL_REFUND, 40_000, "agent", "agent-7",
                                 "partly damaged")


def test_escalation_while_a_counter_offer_stands_decided_as_release():
    p = shipped()
    open_dispute(p, requested=RequestedOutcome.PARTIAL_REFUND, amount=50_000)
    p.answer_dispute(SUPPLIER, DisputeAnswer.COUNTER_OFFER, 10_000, "", OPENS_AT + DAY,
                     periods=PERIODS)
    p.escalate_dispute(SUPPLIER, OPENS_AT + 2 * DAY)
    assert last(p).escalated_by == Role.SUPPLIER
    with pytest.raises(DomainError, match="escalated to customer service"):
        p.accept_counter_offer(BUYER, OPENS_AT + 3 * DAY)
    p.decide_dispute(AGENT, DisputeOutcome.RELEASE, None, "goods match the listing",
                     OPENS_AT + 3 * DAY)
    resolved = last(p)
    assert (resolved.outcome, resolved.refund_amount) == (DisputeOutcome.RELEASE, 0)


def test_full_refund_decision_refunds_the_disputed_amount():
    p = shipped()
    open_dispute(p, requested=RequestedOutcome.PARTIAL_REFUND, amount=50_000)
    p.escalate_dispute(BUYER, OPENS_AT + 5 * DAY)
    p.decide_dispute(AGENT, DisputeOutcome.FULL_REFUND, None, "never delivered", OPENS_AT + 6 * DAY)
    assert last(p).refund_amount == 50_000


def test_either_party_may_escalate_once_the_answer_is_overdue():
    p = shipped()
    open_dispute(p)
    p.escalate_dispute(SUPPLIER, OPENS_AT + 5 * DAY)
    assert kinds(p)[-1] == "DisputeEscalated"
    p.escalate_dispute(BUYER, OPENS_AT + 6 * DAY)
    assert p.pull_events() == []


def test_unanswered_dispute_is_reminded_then_escalated_automatically():
    p = shipped()
    open_dispute(p)
    p.pull_events()
    answer_due = OPENS_AT + 5 * DAY
    p.run_due_deadlines(answer_due - DAY)
    reminder = last(p)
    assert isinstance(reminder, DisputeAnswerDueSoon) and reminder.answer_due_at == answer_due
    p.run_due_deadlines(answer_due)
    assert p.pull_events() == [] and p.history[-1].what == "dispute answer overdue"
    p.run_due_deadlines(answer_due + 5 * DAY - timedelta(seconds=1))
    assert p.pull_events() == []
    p.run_due_deadlines(answer_due + 5 * DAY)
    escalated = last(p)
    assert isinstance(escalated, DisputeEscalated) and escalated.escalated_by == "automatic"
    assert p.dispute.status is DisputeStatus.ESCALATED and p.deadlines == {}


def test_a_late_answer_gives_the_buyer_the_full_period_before_automatic_escalation():
    p = shipped()
    open_dispute(p)
    late = OPENS_AT + 8 * DAY
    p.answer_dispute(SUPPLIER, DisputeAnswer.COUNTER_OFFER, 1_000, "", late, periods=PERIODS)
    assert p.deadlines == {AUTO_ESCALATE: late + 5 * DAY}
    p.run_due_deadlines(late + 5 * DAY)
    assert kinds(p)[-1] == "DisputeEscalated"


def test_the_decision_is_for_an_agent_on_an_escalated_dispute():
    p = shipped()
    open_dispute(p)
    with pytest.raises(DomainError, match="has not been escalated"):
        p.decide_dispute(AGENT, DisputeOutcome.RELEASE, None, "x", OPENS_AT + DAY)
    p.escalate_dispute(BUYER, OPENS_AT + 5 * DAY)
    with pytest.raises(NotPermitted, match="customer-service agent"):
        p.decide_dispute(SUPPLIER, DisputeOutcome.RELEASE, None, "x", OPENS_AT + 6 * DAY)
    with pytest.raises(InvalidRequest, match="reason") as raised:
        p.decide_dispute(AGENT, DisputeOutcome.RELEASE, None, "  ", OPENS_AT + 6 * DAY)
    assert raised.value.field == "reason"


@pytest.mark.parametrize(("outcome", "amount"), [
    (DisputeOutcome.PARTIAL_REFUND, None), (DisputeOutcome.PARTIAL_REFUND, 0),
    (DisputeOutcome.PARTIAL_REFUND, PAID), (DisputeOutcome.FULL_REFUND, 10),
    (DisputeOutcome.RELEASE, 10),
])
def test_decided_refund_amount_rules(outcome, amount):
    p = shipped()
    open_dispute(p)
    p.escalate_dispute(BUYER, OPENS_AT + 5 * DAY)
    with pytest.raises(InvalidRequest) as raised:
        p.decide_dispute(AGENT, outcome, amount, "r", OPENS_AT + 6 * DAY)
    assert raised.value.field == "refund_amount"


def test_the_decision_is_final():
    p = shipped()
    open_dispute(p)
    p.escalate_dispute(BUYER, OPENS_AT + 5 * DAY)
    p.decide_dispute(AGENT, DisputeOutcome.RELEASE, None, "delivered", OPENS_AT + 6 * DAY)
    p.pull_events()
    later = OPENS_AT + 7 * DAY
    p.decide_dispute(AGENT, DisputeOutcome.RELEASE, None, "delivered", later)
    assert p.pull_events() == []
    for attempt in (
        lambda: p.decide_dispute(AGENT, DisputeOutcome.FULL_REFUND, None, "changed mind", later),
        lambda: p.withdraw_dispute(BUYER, later, periods=PERIODS),
        lambda: p.escalate_dispute(SUPPLIER, later),
        lambda: p.answer_dispute(SUPPLIER, DisputeAnswer.ACCEPT, None, "", later, periods=PERIODS),
        lambda: p.confirm_receipt(BUYER, later),
    ):
        with pytest.raises(DomainError) as raised:
            attempt()
        assert type(raised.value) is DomainError  # a conflict with the state (HTTP 409)
    with pytest.raises(DomainError, match="decided by customer service .*final"):
        p.withdraw_dispute(BUYER, later, periods=PERIODS)


def test_the_buyer_may_withdraw_an_escalated_dispute():
    p = shipped()
    open_dispute(p)
    p.escalate_dispute(BUYER, OPENS_AT + 5 * DAY)
    p.withdraw_dispute(BUYER, OPENS_AT + 6 * DAY, periods=PERIODS)
    assert p.status is ProtectionStatus.AWAITING_RECEIPT
    with pytest.raises(DomainError, match="withdrew"):
        p.decide_dispute(AGENT, DisputeOutcome.RELEASE, None, "x", OPENS_AT + 7 * DAY)


# --- following the trade -----------------------------------------------------------------


def test_repeated_funding_and_dispatch_change_nothing():
    p = shipped()
    entries = len(p.history)
    p.record_funding(PAID, "EUR", SHIPPED_AT)
    p.record_dispatch(SHIP_DATE + DAY, Carrier.UPS, "x", SHIPPED_AT, periods=PERIODS)
    assert len(p.history) == entries and p.ship_date == SHIP_DATE


def test_dispatch_after_closing_sets_no_deadline():
    p = BuyerProtection.start("ord-2", PARTIES)
    p.record_funding(PAID, "EUR", SHIPPED_AT)
    p.close("shipping.dispatch_deadline_missed", SHIPPED_AT)
    p.record_dispatch(SHIP_DATE, Carrier.DHL, "x", SHIPPED_AT, periods=PERIODS)
    assert p.deadlines == {} and p.ship_date is None and p.status is ProtectionStatus.CLOSED


# --- issue 9.4: another dispute after a withdrawal ------------------------------------------


def test_after_a_withdrawal_the_buyer_may_open_another_dispute_while_the_window_lasts():
    p = shipped()
    open_dispute(p, OPENS_AT)
    p.withdraw_dispute(BUYER, OPENS_AT + DAY, periods=PERIODS)
    p.pull_events()
    p.open_dispute(BUYER, "dsp-2", DisputeReason.NOT_AS_DESCRIBED, RequestedOutcome.FULL_REFUND,
                   None, "it came broken", [], OPENS_AT + 2 * DAY, periods=PERIODS)
    opened = last(p)
    assert isinstance(opened, DisputeOpened) and opened.dispute_id == "dsp-2"
    assert p.dispute.dispute_id == "dsp-2" and p.status is ProtectionStatus.DISPUTED
    assert [d.dispute_id for d in p.withdrawn_disputes] == ["dsp-1"]
    with pytest.raises(DomainError, match="one dispute is open at a time"):
        p.open_dispute(BUYER, "dsp-3", DisputeReason.OTHER, RequestedOutcome.FULL_REFUND,
                       None, "again", [], OPENS_AT + 3 * DAY, periods=PERIODS)


def test_no_other_dispute_once_receipt_was_confirmed_after_a_withdrawal():
    p = shipped()
    open_dispute(p, OPENS_AT)
    p.withdraw_dispute(BUYER, OPENS_AT + DAY, periods=PERIODS)
    p.run_due_deadlines(AUTO_CONFIRM_AT + 2 * DAY)  # the window ended: confirmed automatically
    with pytest.raises(DomainError, match="too late"):
        p.open_dispute(BUYER, "dsp-2", DisputeReason.OTHER, RequestedOutcome.FULL_REFUND, None,
                       "late", [], AUTO_CONFIRM_AT + 2 * DAY, periods=PERIODS)


def test_a_decided_dispute_is_final():
    p = shipped()
    open_dispute(p, OPENS_AT)
    p.answer_dispute(SUPPLIER, DisputeAnswer.ACCEPT, None, "", OPENS_AT + DAY, periods=PERIODS)
    with pytest.raises(DomainError, match="final"):
        p.open_dispute(BUYER, "dsp-2", DisputeReason.OTHER, RequestedOutcome.FULL_REFUND, None,
                       "more", [], OPENS_AT + 2 * DAY, periods=PERIODS)


def test_a_second_dispute_after_a_withdrawn_partial_one_disputes_only_what_is_held():
    p = shipped()
    open_dispute(p, OPENS_AT, requested=RequestedOutcome.PARTIAL_REFUND, amount=30_000)
    p.withdraw_dispute(BUYER, OPENS_AT + DAY, periods=PERIODS)  # the other 70,000 was released
    with pytest.raises(InvalidRequest, match="more than is still in escrow"):
        p.open_dispute(BUYER, "dsp-2", DisputeReason.OTHER, RequestedOutcome.PARTIAL_REFUND,
                       40_000, "more", [], OPENS_AT + 2 * DAY, periods=PERIODS)
    p.open_dispute(BUYER, "dsp-2", DisputeReason.OTHER, RequestedOutcome.FULL_REFUND, None,
                   "all of it", [], OPENS_AT + 2 * DAY, periods=PERIODS)
    assert last(p).disputed_amount == 30_000


# --- issue 9.3: a late proof of dispatch -----------------------------------------------------


def test_a_proof_submitted_days_after_its_ship_date_starts_the_clocks_when_submitted():
    p = BuyerProtection.start("ord-1", PARTIES)
    p.record_funding(PAID, "EUR", SHIPPED_AT - 3 * DAY)
    submitted = datetime(2026, 2, 9, 14, 0, tzinfo=UTC)  # day 35 for goods shipped on day 0
    p.record_dispatch(SHIP_DATE, Carrier.DHL, "1234567890", submitted, periods=PERIODS,
                      dispatched_at=submitted)
    assert p.dispute_opens_at == submitted + 5 * DAY
    assert p.auto_confirm_at == submitted + 30 * DAY
    p.run_due_deadlines(submitted + timedelta(minutes=1))
    assert p.receipt_confirmed_at is None and p.status is ProtectionStatus.AWAITING_RECEIPT


def test_a_proof_submitted_on_its_ship_date_counts_from_the_start_of_that_day():
    p = BuyerProtection.start("ord-1", PARTIES)
    p.record_funding(PAID, "EUR", SHIPPED_AT - 3 * DAY)
    p.record_dispatch(SHIP_DATE, Carrier.DHL, "1234567890", SHIPPED_AT, periods=PERIODS,
                      dispatched_at=SHIPPED_AT)
    assert (p.dispute_opens_at, p.auto_confirm_at) == (OPENS_AT, AUTO_CONFIRM_AT)


# --- issue 9.5: statements and evidence from both parties -----------------------------------


def test_statements_from_both_parties_while_open_or_escalated_and_a_repeat_is_a_no_op():
    p = shipped()
    open_dispute(p)
    p.pull_events()
    p.add_statement(SUPPLIER, "we shipped it", [], OPENS_AT + DAY)
    p.add_statement(SUPPLIER, "we shipped it", [], OPENS_AT + DAY)
    p.answer_dispute(SUPPLIER, DisputeAnswer.REJECT, None, "", OPENS_AT + DAY, periods=PERIODS)
    p.escalate_dispute(BUYER, OPENS_AT + 2 * DAY)
    p.add_statement(Actor(party_id="buyer-1", role=Role.SERVICE), "tracking shows nothing",
                    [], OPENS_AT + 3 * DAY)
    assert [(s.author_role, s.text) for s in p.dispute.statements] == [
        (Role.SUPPLIER, "we shipped it"), (Role.BUYER, "tracking shows nothing")]
    assert kinds(p) == ["DisputeStatementAdded", "DisputeAnswered", "DisputeEscalated",
                        "DisputeStatementAdded"]
    with pytest.raises(NotPermitted):
        p.add_statement(AGENT, "note", [], OPENS_AT + 3 * DAY)
    p.decide_dispute(AGENT, DisputeOutcome.RELEASE, None, "shipped", OPENS_AT + 4 * DAY)
    with pytest.raises(DomainError, match="final"):
        p.add_statement(BUYER, "but...", [], OPENS_AT + 5 * DAY)


def test_evidence_limits_count_every_statement():
    attachment = Evidence(kind="attachment", attachment_id="att-1", filename="a.png",
                          content_type="image/png", size_bytes=10)
    p = shipped()
    open_dispute(p, evidence=[attachment] * 6)
    with pytest.raises(InvalidRequest, match="at most 10 attachments"):
        p.add_statement(SUPPLIER, "photos", [attachment] * 5, OPENS_AT + DAY)
    p.add_statement(SUPPLIER, "photos", [attachment] * 4, OPENS_AT + DAY)
