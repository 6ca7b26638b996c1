"""The dispute as an entity of the buyer protection: what the buyer claims, what the
parties answer, state and prove, and how it ends (agreement, withdrawal, agent's decision).

It checks the negotiation's own rules and changes its own state; the ``BuyerProtection``
aggregate that holds it checks who acts, keeps the deadlines and the receipt clock, and
records the events. What the entity needs to know of its order (the currency amounts are
shown in, whether the order closed) comes in as an ``OrderContext``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel

from shared.contracts.events import DisputeAnswer
from shared.contracts.money import Money
from shared.contracts.parties import Role
from shared.contracts.trade import DisputeOutcome, DisputeReason, Evidence, RequestedOutcome
from shared.domain.errors import DomainError, InvalidRequest

MAX_ATTACHMENTS_PER_DISPUTE = 10
MAX_LINKS_PER_DISPUTE = 20
MAX_STATEMENTS_PER_DISPUTE = 100


class DisputeStatus(StrEnum):
    OPEN = "open"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    WITHDRAWN = "withdrawn"


ACTIVE = (DisputeStatus.OPEN, DisputeStatus.ESCALATED)


class Resolution(BaseModel):
    outcome: DisputeOutcome
    refund_amount: int
    decided_by: Literal["agreement", "agent"]
    agent_id: str | None = None
    reason: str = ""
    resolved_at: datetime


class Statement(BaseModel):
    """What a party adds to an open dispute: its side of the story and more evidence."""

    statement_id: str
    at: datetime
    author_role: Role
    author_party_id: str
    text: str
    evidence: list[Evidence] = []


@dataclass(frozen=True)
class OrderContext:
    currency: str
    closed_because: str | None = None  # set once the order is over


def money(amount: int, currency: str) -> str:
    return Money(amount=amount, currency=currency).display()


def disputed_amount(requested: RequestedOutcome, amount: int | None, *, held: int, paid: int,
                    currency: str) -> int:
    """A full refund disputes all that is still in escrow: what was paid, or after a
    withdrawn partial-refund dispute, the part that was not released then."""
    shown = money(held, currency)
    whole = "was paid" if held == paid else "is still in escrow"
    if requested is RequestedOutcome.FULL_REFUND:
        if amount is not None and amount != held:
            noun = "the paid amount" if held == paid else "what is still in escrow"
            raise InvalidRequest(f"a full refund is {noun} ({shown}); leave the amount out, "
                                 "or request a partial refund", field="amount")
        return held
    if amount is None:
        raise InvalidRequest("a partial refund needs the amount you want back", field="amount")
    if amount <= 0:
        raise InvalidRequest("the amount must be above zero", field="amount")
    if amount > held:
        raise InvalidRequest(f"the amount is more than {whole} ({shown})", field="amount")
    if amount == held:
        raise InvalidRequest(f"that is everything that {whole} ({shown}); request a full "
                             "refund instead", field="amount")
    return amount


def check_evidence(evidence: list[Evidence]) -> None:
    attachments = sum(1 for e in evidence if e.kind == "attachment")
    if attachments > MAX_ATTACHMENTS_PER_DISPUTE:
        raise InvalidRequest(f"at most {MAX_ATTACHMENTS_PER_DISPUTE} attachments per dispute",
                             field="evidence")
    if len(evidence) - attachments > MAX_LINKS_PER_DISPUTE:
        raise InvalidRequest(f"at most {MAX_LINKS_PER_DISPUTE} links per dispute",
                             field="evidence")


class Dispute(BaseModel):
    dispute_id: str
    status: DisputeStatus
    reason: DisputeReason
    requested: RequestedOutcome
    disputed_amount: int
    description: str
    evidence: list[Evidence]
    opened_at: datetime
    answer_due_at: datetime
    auto_escalate_at: datetime
    answer: DisputeAnswer | None = None
    counter_amount: int | None = None
    answer_message: str = ""
    answered_at: datetime | None = None
    escalated_at: datetime | None = None
    escalated_by: str | None = None
    resolution: Resolution | None = None
    withdrawn_at: datetime | None = None
    statements: list[Statement] = []

    @property
    def counter_offer_stands(self) -> bool:
        return self.status is DisputeStatus.OPEN and self.answer is DisputeAnswer.COUNTER_OFFER

    @property
    def all_evidence(self) -> list[Evidence]:
        """The opening's evidence and every statement's, in the order it came."""
        return self.evidence + [e for s in self.statements for e in s.evidence]

    def same_opening(self, reason: DisputeReason, requested: RequestedOutcome,
                     amount: int | None, description: str) -> bool:
        return (self.reason, self.requested, self.description) == (
            reason, requested, description) and (amount is None or amount == self.disputed_amount)

    # --- the parties' moves ----------------------------------------------------------------

    def take_answer(self, answer: DisputeAnswer, counter_amount: int | None, message: str,
                    now: datetime, order: OrderContext) -> bool:
        """The supplier's answer; False for a repeat of the answer given."""
        if self.answer is answer and self.counter_amount == counter_amount:
            return False
        if answer is DisputeAnswer.COUNTER_OFFER:
            if counter_amount is None:
                raise InvalidRequest("a counter-offer needs the amount you offer to refund",
                                     field="amount")
            if not 0 < counter_amount < self.disputed_amount:
                raise InvalidRequest(f"a counter-offer must be above zero and below the disputed "
                                     f"amount ({money(self.disputed_amount, order.currency)})",
                                     field="amount")
        elif counter_amount is not None:
            raise InvalidRequest("only a counter-offer carries an amount", field="amount")
        self.require_negotiating("answer the dispute", order)
        if self.answer is not None and answer is not DisputeAnswer.ACCEPT:
            raise DomainError(f"you already answered '{self.answer}'; you may still accept the "
                              "buyer's request, otherwise the buyer accepts, withdraws or escalates")
        self.answer, self.counter_amount = answer, counter_amount
        self.answer_message, self.answered_at = message, now
        return True

    def counter_offer_to_accept(self, order: OrderContext) -> int | None:
        """The amount of the standing counter-offer; None if it was accepted already."""
        resolution = self.resolution
        if (resolution is not None and resolution.decided_by == "agreement"
                and self.answer is DisputeAnswer.COUNTER_OFFER):
            return None
        self.require_negotiating("accept a counter-offer", order)
        if not self.counter_offer_stands:
            raise DomainError("the supplier has made no counter-offer to accept")
        assert self.counter_amount is not None
        return self.counter_amount

    def withdraw(self, now: datetime, order: OrderContext) -> bool:
        """False if it was withdrawn already."""
        if self.status is DisputeStatus.WITHDRAWN:
            return False
        self.require_active("withdraw the dispute", order)
        self.status, self.withdrawn_at = DisputeStatus.WITHDRAWN, now
        return True

    def may_escalate(self, now: datetime, order: OrderContext) -> bool:
        """Whether a party may escalate now; False if it is escalated already."""
        if self.status is DisputeStatus.ESCALATED:
            return False
        self.require_negotiating("escalate the dispute", order)
        if self.answer is None and now < self.answer_due_at:
            raise DomainError(f"the supplier has until {self.answer_due_at:%Y-%m-%d %H:%M} UTC "
                              "to answer; the dispute can be escalated after a reject, while a "
                              "counter-offer stands, or once that deadline has passed")
        return True

    def escalate(self, by: Role | Literal["automatic"], now: datetime) -> None:
        self.status, self.escalated_at, self.escalated_by = DisputeStatus.ESCALATED, now, str(by)

    def add_statement(self, statement: Statement, order: OrderContext) -> bool:
        """False for a repeat of a statement already added."""
        if any(s.statement_id == statement.statement_id for s in self.statements):
            return False
        self.require_active("add to the dispute", order)
        if len(self.statements) >= MAX_STATEMENTS_PER_DISPUTE:
            raise DomainError(f"a dispute takes at most {MAX_STATEMENTS_PER_DISPUTE} statements; "
                              "escalate it to customer service, who sees all of them")
        check_evidence(self.all_evidence + statement.evidence)
        self.statements.append(statement)
        return True

    # --- the outcome -----------------------------------------------------------------------

    def decided_refund(self, outcome: DisputeOutcome, refund_amount: int | None,
                       currency: str) -> int:
        """An agent's decision can only divide what is still disputed."""
        held = self.disputed_amount
        if outcome is DisputeOutcome.PARTIAL_REFUND:
            if refund_amount is None or not 0 < refund_amount < held:
                raise InvalidRequest(f"a partial refund must be above zero and below the disputed "
                                     f"amount ({money(held, currency)})", field="refund_amount")
            return refund_amount
        refund = held if outcome is DisputeOutcome.FULL_REFUND else 0
        if refund_amount is not None and refund_amount != refund:
            raise InvalidRequest(f"a {outcome} refunds {money(refund, currency)}; leave "
                                 "refund_amount out",
                                 field="refund_amount")
        return refund

    def repeats_decision(self, outcome: DisputeOutcome, refund: int) -> bool:
        resolution = self.resolution
        return (resolution is not None and resolution.decided_by == "agent"
                and (resolution.outcome, resolution.refund_amount) == (outcome, refund))

    def resolve(self, outcome: DisputeOutcome, refund: int,
                decided_by: Literal["agreement", "agent"], now: datetime, *,
                agent_id: str | None = None, reason: str = "") -> None:
        self.status = DisputeStatus.RESOLVED
        self.resolution = Resolution(outcome=outcome, refund_amount=refund, decided_by=decided_by,
                                     agent_id=agent_id, reason=reason, resolved_at=now)

    # --- rules -----------------------------------------------------------------------------

    def require_active(self, doing: str, order: OrderContext) -> None:
        if self.status is DisputeStatus.RESOLVED:
            assert self.resolution is not None
            by = ("by agreement" if self.resolution.decided_by == "agreement"
                  else "by customer service")
            raise DomainError(f"cannot {doing}: the dispute was decided {by} "
                              f"({self.resolution.outcome}, refund "
                              f"{money(self.resolution.refund_amount, order.currency)}); "
                              "the decision is final")
        if self.status is DisputeStatus.WITHDRAWN:
            raise DomainError(f"cannot {doing}: the buyer withdrew the dispute")
        if order.closed_because is not None:
            raise DomainError(f"cannot {doing}: the order is closed ({order.closed_because})")

    def require_negotiating(self, doing: str, order: OrderContext) -> None:
        self.require_active(doing, order)
        if self.status is DisputeStatus.ESCALATED:
            raise DomainError(f"cannot {doing}: the dispute was escalated to customer service "
                              f"({self.escalated_by}) and an agent decides it now")
