"""Buyer protection: everything that happens to an order between dispatch and the money
leaving escrow, that is the receipt confirmation and the order's dispute.

Both live in ONE aggregate per order on purpose: the automatic receipt confirmation and
a dispute opening are steps of the same state machine, applied one at a time, so they
can never both happen.

The buyer's clocks (dispute window, automatic receipt confirmation) start at the ship date,
counted from 00:00 UTC of that day; a proof of dispatch submitted on a later day starts
them at the moment it was submitted, so a late proof never cuts the buyer's time short.
One dispute is open at a time; after a withdrawal the buyer may open another while the
window lasts. The other rules chosen where the product spec is silent are in README.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import computed_field

from shared.contracts.events import (
    DisputeAnswer,
    DisputeAnswerDueSoon,
    DisputeAnswered,
    DisputeEscalated,
    DisputeOpened,
    DisputeResolved,
    DisputeStatementAdded,
    DisputeWithdrawn,
    ReceiptAutoConfirmSoon,
    ReceiptConfirmed,
    ReceiptExpected,
)
from shared.contracts.parties import Parties, Role
from shared.contracts.trade import Carrier, DisputeOutcome, DisputeReason, Evidence, RequestedOutcome
from shared.domain.actor import Actor, require
from shared.domain.aggregate import Aggregate
from shared.domain.errors import DomainError, InvalidRequest, NotYet

from services.dispute.negotiation import (
    ACTIVE,
    Dispute,
    DisputeStatus,
    OrderContext,
    Statement,
    check_evidence,
    disputed_amount,
)

RECEIPT_REMINDER = "receipt_reminder"
RECEIPT_AUTO_CONFIRM = "receipt_auto_confirm"
ANSWER_REMINDER = "dispute_answer_reminder"
ANSWER_DUE = "dispute_answer_due"
AUTO_ESCALATE = "dispute_auto_escalate"
RECEIPT_DEADLINES = (RECEIPT_REMINDER, RECEIPT_AUTO_CONFIRM)
DISPUTE_DEADLINES = (ANSWER_REMINDER, ANSWER_DUE, AUTO_ESCALATE)
# Disputes opened on one order, withdrawn ones included (each is kept with its statements).
MAX_DISPUTES_PER_ORDER = 5


@dataclass(frozen=True)
class Periods:
    """The configurable periods of buyer protection, with the spec's defaults."""

    dispute_opens_after: timedelta = timedelta(days=5)
    receipt_auto_confirm_after: timedelta = timedelta(days=30)
    receipt_reminder_before: timedelta = timedelta(days=3)
    supplier_answer_period: timedelta = timedelta(days=5)
    answer_reminder_before: timedelta = timedelta(days=1)
    auto_escalate_after: timedelta = timedelta(days=5)


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class ProtectionStatus(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"  # dispatch seen before the funding (events crossed)
    AWAITING_DISPATCH = "awaiting_dispatch"
    AWAITING_RECEIPT = "awaiting_receipt"
    DISPUTED = "disputed"  # the parties negotiate
    ESCALATED = "escalated"  # customer service decides
    RECEIPT_CONFIRMED = "receipt_confirmed"
    DISPUTE_RESOLVED = "dispute_resolved"
    CLOSED = "closed"


def clocks_start(ship_date: date, submitted_at: datetime) -> datetime:
    """The later of the stated ship date (from its 00:00 UTC) and the proof's submission,
    when that came on a later day."""
    if submitted_at.date() <= ship_date:
        return start_of_day(ship_date)
    return submitted_at


def _statement_id(dispute_id: str, party_id: str, text: str, evidence: list[Evidence]) -> str:
    """Derived from the content, so a retried request adds the statement once."""
    content = "\x00".join([dispute_id, party_id, text,
                            *(e.model_dump_json() for e in evidence)])
    return f"stm_{hashlib.sha256(content.encode()).hexdigest()[:24]}"


class BuyerProtection(Aggregate):
    currency: str | None = None
    paid_amount: int | None = None
    held_amount: int | None = None  # what is still in escrow: all, or a partial dispute's part
    ship_date: date | None = None
    dispatched_at: datetime | None = None
    carrier: Carrier | None = None
    tracking_number: str | None = None
    dispute_opens_at: datetime | None = None
    auto_confirm_at: datetime | None = None
    auto_confirm_remaining: timedelta | None = None  # while a dispute stops the clock
    receipt_confirmed_at: datetime | None = None
    receipt_confirmed_by: Literal["buyer", "automatic"] | None = None
    dispute: Dispute | None = None  # the latest one
    withdrawn_disputes: list[Dispute] = []
    closed_at: datetime | None = None
    closed_because: str | None = None

    @computed_field  # type: ignore[prop-decorator] # stored with the state, so the escalated queue is a query on it
    @property
    def status(self) -> ProtectionStatus:
        if self.closed_at is not None:
            return ProtectionStatus.CLOSED
        if self.receipt_confirmed_at is not None:
            return ProtectionStatus.RECEIPT_CONFIRMED
        if self.dispute is not None and self.dispute.status is not DisputeStatus.WITHDRAWN:
            return {DisputeStatus.OPEN: ProtectionStatus.DISPUTED,
                    DisputeStatus.ESCALATED: ProtectionStatus.ESCALATED,
                    DisputeStatus.RESOLVED: ProtectionStatus.DISPUTE_RESOLVED}[self.dispute.status]
        if self.ship_date is not None:
            return ProtectionStatus.AWAITING_RECEIPT
        if self.paid_amount is not None:
            return ProtectionStatus.AWAITING_DISPATCH
        return ProtectionStatus.AWAITING_PAYMENT

    @classmethod
    def start(cls, order_id: str, parties: Parties) -> BuyerProtection:
        return cls(order_id=order_id, parties=parties)

    # --- following the trade -------------------------------------------------------------

    def record_funding(self, amount: int, currency: str, now: datetime) -> None:
        if self.paid_amount is not None:
            return
        self.paid_amount, self.currency = amount, currency
        self.held_amount = amount
        self.note(now, "escrow funded", amount=amount, currency=currency)

    def record_dispatch(self, ship_date: date, carrier: Carrier, tracking_number: str,
                        now: datetime, *, periods: Periods,
                        dispatched_at: datetime | None = None) -> None:
        if self.ship_date is not None:
            return
        if self.closed_at is not None:
            self.note(now, "shipment dispatched after the order closed; ignored",
                      ship_date=ship_date.isoformat())
            return
        self.ship_date, self.carrier, self.tracking_number = ship_date, carrier, tracking_number
        self.dispatched_at = dispatched_at or now
        start = clocks_start(ship_date, self.dispatched_at)
        self.dispute_opens_at = start + periods.dispute_opens_after
        auto_confirm_at = start + periods.receipt_auto_confirm_after
        self._schedule_auto_confirm(auto_confirm_at, now, periods)
        self.note(now, "shipment dispatched", ship_date=ship_date.isoformat(),
                  dispatched_at=self.dispatched_at.isoformat(), carrier=carrier,
                  tracking_number=tracking_number,
                  dispute_opens_at=self.dispute_opens_at.isoformat(),
                  auto_confirm_at=auto_confirm_at.isoformat())
        self.record(ReceiptExpected(order_id=self.order_id, parties=self.parties,
                                    dispute_opens_at=self.dispute_opens_at,
                                    auto_confirm_at=auto_confirm_at), now)

    def close(self, because: str, now: datetime) -> None:
        """The order is over (cancelled, closed, or never shipped): nothing is due any more."""
        if self.closed_at is not None:
            return
        self.closed_at, self.closed_because = now, because
        self.deadlines.clear()
        self.note(now, "closed", because=because)

    # --- receipt -------------------------------------------------------------------------

    def confirm_receipt(self, actor: Actor, now: datetime) -> None:
        require(actor, self.parties, Role.BUYER, doing="confirm receipt")
        self.run_due_deadlines(now)
        if self.receipt_confirmed_at is not None:
            return
        self._require_open("confirm receipt")
        if self.ship_date is None:
            raise DomainError("the supplier has not dispatched the order yet; receipt can be "
                              "confirmed once it has been shipped")
        if self.dispute is not None and self.dispute.status in ACTIVE:
            raise DomainError("a dispute is open on this order; withdraw the dispute to confirm "
                              "receipt, or wait for its outcome")
        if self.dispute is not None and self.dispute.status is DisputeStatus.RESOLVED:
            raise DomainError("the dispute on this order was resolved and its outcome settles "
                              "the escrow; there is no receipt to confirm")
        self._confirm_receipt("buyer", now)

    def _confirm_receipt(self, by: Literal["buyer", "automatic"], now: datetime) -> None:
        self.receipt_confirmed_at, self.receipt_confirmed_by = now, by
        self.auto_confirm_remaining = None
        self._drop(*RECEIPT_DEADLINES)
        self.record(ReceiptConfirmed(order_id=self.order_id, parties=self.parties,
                                     confirmed_by=by), now)

    def _schedule_auto_confirm(self, at: datetime, now: datetime, periods: Periods) -> None:
        self.auto_confirm_at = at
        self.deadlines[RECEIPT_AUTO_CONFIRM] = at
        self.deadlines[RECEIPT_REMINDER] = max(now, at - periods.receipt_reminder_before)

    # --- the dispute ---------------------------------------------------------------------

    def open_dispute(self, actor: Actor, dispute_id: str, reason: DisputeReason,
                     requested: RequestedOutcome, amount: int | None, description: str,
                     evidence: list[Evidence], now: datetime, *, periods: Periods) -> None:
        require(actor, self.parties, Role.BUYER, doing="open a dispute")
        self.run_due_deadlines(now)
        if self.dispute is not None and self.dispute.status is not DisputeStatus.WITHDRAWN:
            if self.dispute.status is DisputeStatus.OPEN and self.dispute.same_opening(
                    reason, requested, amount, description):
                return
            if self.dispute.status is DisputeStatus.RESOLVED:
                raise DomainError(f"the dispute opened {self.dispute.opened_at:%Y-%m-%d %H:%M} "
                                  "UTC was decided; its outcome is final")
            raise DomainError(f"a dispute is already open on this order ({self.dispute.status}, "
                              f"opened {self.dispute.opened_at:%Y-%m-%d %H:%M} UTC); one dispute "
                              "is open at a time")
        if len(self.withdrawn_disputes) + 1 >= MAX_DISPUTES_PER_ORDER:
            raise DomainError(f"at most {MAX_DISPUTES_PER_ORDER} disputes per order, withdrawn "
                              "ones included; message the supplier, or confirm receipt")
        if self.receipt_confirmed_at is not None:
            raise DomainError(f"too late: receipt was confirmed ({self.receipt_confirmed_by}) on "
                              f"{self.receipt_confirmed_at:%Y-%m-%d %H:%M} UTC; a dispute can be "
                              "opened only until receipt is confirmed")
        self._require_open("open a dispute")
        if self.ship_date is None or self.dispute_opens_at is None:
            raise DomainError("the order has not been dispatched yet; a dispute can be opened "
                              "from some days after the ship date")
        if now < self.dispute_opens_at:
            raise DomainError(f"too early: a dispute can be opened from "
                              f"{self.dispute_opens_at:%Y-%m-%d %H:%M} UTC (after the ship date "
                              f"{self.ship_date.isoformat()}); until then, message the supplier")
        if self.paid_amount is None or self.held_amount is None or self.currency is None:
            raise NotYet("the payment of this order is not recorded here yet; try again shortly")
        disputed = disputed_amount(requested, amount, held=self.held_amount,
                                   paid=self.paid_amount, currency=self.currency)
        check_evidence(evidence)
        assert self.auto_confirm_at is not None
        self.auto_confirm_remaining = self.auto_confirm_at - now
        self.auto_confirm_at = None
        self._drop(*RECEIPT_DEADLINES)
        answer_due_at = now + periods.supplier_answer_period
        if self.dispute is not None:
            self.withdrawn_disputes.append(self.dispute)
        self.held_amount = disputed
        self.dispute = Dispute(
            dispute_id=dispute_id, status=DisputeStatus.OPEN, reason=reason, requested=requested,
            disputed_amount=disputed, description=description, evidence=evidence, opened_at=now,
            answer_due_at=answer_due_at,
            auto_escalate_at=answer_due_at + periods.auto_escalate_after)
        self.deadlines[ANSWER_REMINDER] = max(now, answer_due_at - periods.answer_reminder_before)
        self.deadlines[ANSWER_DUE] = answer_due_at
        self.deadlines[AUTO_ESCALATE] = self.dispute.auto_escalate_at
        self.record(DisputeOpened(
            order_id=self.order_id, parties=self.parties, dispute_id=dispute_id, reason=reason,
            requested=requested, disputed_amount=disputed, currency=self.currency,
            description=description, evidence=evidence, answer_due_at=answer_due_at), now)

    def answer_dispute(self, actor: Actor, answer: DisputeAnswer, counter_amount: int | None,
                       message: str, now: datetime, *, periods: Periods) -> None:
        require(actor, self.parties, Role.SUPPLIER, doing="answer the dispute")
        self.run_due_deadlines(now)
        dispute = self._dispute()
        if not dispute.take_answer(answer, counter_amount, message, now, self._context()):
            return
        self._drop(ANSWER_REMINDER, ANSWER_DUE)
        assert self.currency is not None  # a dispute is only opened on a funded escrow
        self.record(DisputeAnswered(order_id=self.order_id, parties=self.parties,
                                    dispute_id=dispute.dispute_id, answer=answer,
                                    counter_amount=counter_amount, currency=self.currency,
                                    message=message), now)
        if answer is DisputeAnswer.ACCEPT:
            full = dispute.requested is RequestedOutcome.FULL_REFUND
            outcome = DisputeOutcome.FULL_REFUND if full else DisputeOutcome.PARTIAL_REFUND
            self._resolve(outcome, dispute.disputed_amount, "agreement", now)
        else:
            dispute.auto_escalate_at = max(dispute.auto_escalate_at,
                                           now + periods.auto_escalate_after)
            self.deadlines[AUTO_ESCALATE] = dispute.auto_escalate_at

    def add_statement(self, actor: Actor, text: str, evidence: list[Evidence],
                      now: datetime) -> None:
        """Either party argues its side while the dispute is open or escalated; the agent
        sees every statement. The same statement sent again is a no-op."""
        role = require(actor, self.parties, Role.BUYER, Role.SUPPLIER, doing="add to the dispute")
        self.run_due_deadlines(now)
        dispute = self._dispute()
        statement = Statement(
            statement_id=_statement_id(dispute.dispute_id, actor.party_id, text, evidence),
            at=now, author_role=role, author_party_id=actor.party_id, text=text,
            evidence=evidence)
        if not dispute.add_statement(statement, self._context()):
            return
        self.record(DisputeStatementAdded(
            order_id=self.order_id, parties=self.parties, dispute_id=dispute.dispute_id,
            statement_id=statement.statement_id, author_role=role,
            author_party_id=actor.party_id, text=text, evidence=evidence), now)

    def accept_counter_offer(self, actor: Actor, now: datetime) -> None:
        require(actor, self.parties, Role.BUYER, doing="accept a counter-offer")
        self.run_due_deadlines(now)
        amount = self._dispute().counter_offer_to_accept(self._context())
        if amount is not None:
            self._resolve(DisputeOutcome.PARTIAL_REFUND, amount, "agreement", now)

    def withdraw_dispute(self, actor: Actor, now: datetime, *, periods: Periods) -> None:
        require(actor, self.parties, Role.BUYER, doing="withdraw the dispute")
        self.run_due_deadlines(now)
        dispute = self._dispute()
        if not dispute.withdraw(now, self._context()):
            return
        self._drop(*DISPUTE_DEADLINES)
        remaining = self.auto_confirm_remaining
        assert remaining is not None
        self.auto_confirm_remaining = None
        self._schedule_auto_confirm(now + remaining, now, periods)
        self.record(DisputeWithdrawn(order_id=self.order_id, parties=self.parties,
                                     dispute_id=dispute.dispute_id), now)

    def escalate_dispute(self, actor: Actor, now: datetime) -> None:
        role = require(actor, self.parties, Role.BUYER, Role.SUPPLIER, doing="escalate the dispute")
        self.run_due_deadlines(now)
        if self._dispute().may_escalate(now, self._context()):
            self._escalate(role, now)

    def _escalate(self, by: Role | Literal["automatic"], now: datetime) -> None:
        dispute = self._dispute()
        dispute.escalate(by, now)
        self._drop(*DISPUTE_DEADLINES)
        self.record(DisputeEscalated(order_id=self.order_id, parties=self.parties,
                                     dispute_id=dispute.dispute_id, escalated_by=by), now)

    def decide_dispute(self, actor: Actor, outcome: DisputeOutcome, refund_amount: int | None,
                       reason: str, now: datetime) -> None:
        require(actor, self.parties, Role.AGENT, doing="decide a dispute")
        self.run_due_deadlines(now)
        dispute = self._dispute()
        assert self.currency is not None
        refund = dispute.decided_refund(outcome, refund_amount, self.currency)
        if dispute.repeats_decision(outcome, refund):
            return
        if not reason.strip():
            raise InvalidRequest("give the reason for the decision", field="reason")
        dispute.require_active("decide the dispute", self._context())
        if dispute.status is not DisputeStatus.ESCALATED:
            raise DomainError("the dispute has not been escalated; the buyer and supplier are "
                              "still negotiating")
        self._resolve(outcome, refund, "agent", now, agent_id=actor.party_id, reason=reason)

    def _resolve(self, outcome: DisputeOutcome, refund: int,
                 decided_by: Literal["agreement", "agent"], now: datetime, *,
                 agent_id: str | None = None, reason: str = "") -> None:
        dispute = self._dispute()
        assert self.currency is not None
        dispute.resolve(outcome, refund, decided_by, now, agent_id=agent_id, reason=reason)
        self.auto_confirm_remaining = None
        self._drop(*DISPUTE_DEADLINES)
        self.record(DisputeResolved(order_id=self.order_id, parties=self.parties,
                                    dispute_id=dispute.dispute_id, outcome=outcome,
                                    refund_amount=refund, currency=self.currency,
                                    decided_by=decided_by, agent_id=agent_id, reason=reason), now)

    # --- deadlines -----------------------------------------------------------------------

    def on_deadline(self, kind: str, due: datetime, now: datetime) -> None:
        if kind not in RECEIPT_DEADLINES + DISPUTE_DEADLINES:
            return super().on_deadline(kind, due, now)  # a stored deadline without a rule
        if kind in RECEIPT_DEADLINES:
            if self.status is not ProtectionStatus.AWAITING_RECEIPT or self.auto_confirm_at is None:
                return
            if kind == RECEIPT_AUTO_CONFIRM:
                self._confirm_receipt("automatic", now)
            elif now < self.auto_confirm_at:
                self.record(ReceiptAutoConfirmSoon(order_id=self.order_id, parties=self.parties,
                                                   auto_confirm_at=self.auto_confirm_at,
                                                   dispute_opens_at=self.dispute_opens_at), now)
            return
        dispute = self.dispute
        if dispute is None or dispute.status is not DisputeStatus.OPEN:
            return
        if kind == AUTO_ESCALATE:
            self._escalate("automatic", now)
        elif kind == ANSWER_REMINDER and dispute.answer is None:
            self.record(DisputeAnswerDueSoon(order_id=self.order_id, parties=self.parties,
                                             dispute_id=dispute.dispute_id,
                                             answer_due_at=dispute.answer_due_at), now)
        elif kind == ANSWER_DUE and dispute.answer is None:
            self._drop(ANSWER_REMINDER)
            self.note(now, "dispute answer overdue", answer_due_at=due.isoformat(),
                      may_escalate="buyer or supplier")

    # --- rules ---------------------------------------------------------------------------

    def may_read(self, actor: Actor) -> bool:
        return actor.may_read(self.parties)

    def has_evidence(self, attachment_id: str) -> bool:
        """Whether a file is evidence in one of the order's disputes."""
        disputes = self.withdrawn_disputes + ([self.dispute] if self.dispute else [])
        return any(e.attachment_id == attachment_id for d in disputes for e in d.all_evidence)

    def _require_open(self, doing: str) -> None:
        if self.closed_at is not None:
            raise DomainError(f"cannot {doing}: the order is closed ({self.closed_because})")

    def _dispute(self) -> Dispute:
        if self.dispute is None:
            raise DomainError("this order has no dispute")
        return self.dispute

    def _context(self) -> OrderContext:
        assert self.currency is not None
        return OrderContext(currency=self.currency,
                            closed_because=self.closed_because if self.closed_at else None)

    def _drop(self, *kinds: str) -> None:
        for kind in kinds:
            self.deadlines.pop(kind, None)
