"""The dispute service's use cases: one function per actor command, one handler per event."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from shared.contracts.envelope import Envelope, TradeEvent
from shared.contracts.events import (
    ClosureReason,
    DispatchDeadlineMissed,
    DisputeAnswer,
    EscrowFunded,
    OrderCancelled,
    OrderClosed,
    ShipmentDispatched,
)
from shared.contracts.parties import Role
from shared.contracts.trade import DisputeOutcome, DisputeReason, Evidence, RequestedOutcome
from shared.domain.actor import Actor
from shared.domain.errors import NotFound, NotPermitted
from shared.infra.rate_limit import RateLimiter
from shared.infra.runner import AggregateRunner, Step
from shared.infra.subscriptions import subscribes

from services.dispute.attachments import (
    Attachment,
    Attachments,
    Upload,
    decode_attachment,
)
from services.dispute.domain import BuyerProtection, ProtectionStatus
from services.dispute.negotiation import Dispute
from services.dispute.settings import DisputeSettings


class DisputeService:
    def __init__(self, runner: AggregateRunner[BuyerProtection],
                 attachments: Attachments,
                 settings: DisputeSettings, limiter: RateLimiter) -> None:
        self.runner = runner
        self.attachments = attachments
        self.periods = settings.periods()
        self.stating = settings.stating()
        self.limiter = limiter

    # --- commands ------------------------------------------------------------------------

    async def confirm_receipt(self, actor: Actor, order_id: str) -> BuyerProtection:
        return await self._act(order_id, lambda p, now: p.confirm_receipt(actor, now))

    async def open_dispute(self, actor: Actor, order_id: str, reason: DisputeReason,
                           requested: RequestedOutcome, amount: int | None, description: str,
                           evidence: list[Evidence | Upload]) -> BuyerProtection:
        dispute_id = f"dsp_{uuid.uuid4().hex[:24]}"
        return await self._with_evidence(actor, order_id, evidence, lambda p, at, items: (
            p.open_dispute(actor, dispute_id, reason, requested, amount, description, items, at,
                           periods=self.periods)))

    async def add_statement(self, actor: Actor, order_id: str, text: str,
                            evidence: list[Evidence | Upload]) -> BuyerProtection:
        return await self._with_evidence(actor, order_id, evidence, lambda p, at, items: (
            p.add_statement(actor, text, items, at)))

    async def _with_evidence(self, actor: Actor, order_id: str, evidence: list[Evidence | Upload],
                             change: Callable[[BuyerProtection, datetime, list[Evidence]], None]) -> BuyerProtection:
        """Files are checked, then the change is tried on the current state, and only if it
        would be accepted are the files stored, before the dispute that references them.
        Each is mailed to the other side: the party's rate limit is taken first."""
        await self.limiter.take(self.stating, actor.party_id)
        now = self.runner.clock.now()
        files: list[Attachment] = []
        items: list[Evidence] = []
        for i, item in enumerate(evidence):
            if isinstance(item, Upload):
                files.append(decode_attachment(order_id, item, uploaded_by=actor.party_id,
                                               uploaded_at=now, field=f"evidence.{i}"))
                items.append(files[-1].evidence())
            else:
                items.append(item)

        def apply(p: BuyerProtection, at: datetime) -> None:
            change(p, at, items)

        if files:
            apply(await self._load(order_id), now)
            for file in files:
                await self.attachments.save(file)
        return await self._act(order_id, apply)

    async def answer_dispute(self, actor: Actor, order_id: str, answer: DisputeAnswer,
                             amount: int | None, message: str) -> BuyerProtection:
        return await self._act(order_id, lambda p, now: p.answer_dispute(
            actor, answer, amount, message, now, periods=self.periods))

    async def accept_counter_offer(self, actor: Actor, order_id: str) -> BuyerProtection:
        return await self._act(order_id, lambda p, now: p.accept_counter_offer(actor, now))

    async def withdraw_dispute(self, actor: Actor, order_id: str) -> BuyerProtection:
        return await self._act(order_id, lambda p, now: p.withdraw_dispute(
            actor, now, periods=self.periods))

    async def escalate_dispute(self, actor: Actor, order_id: str) -> BuyerProtection:
        return await self._act(order_id, lambda p, now: p.escalate_dispute(actor, now))

    async def decide_dispute(self, actor: Actor, order_id: str, outcome: DisputeOutcome,
                             refund_amount: int | None, reason: str) -> BuyerProtection:
        return await self._act(order_id, lambda p, now: p.decide_dispute(
            actor, outcome, refund_amount, reason, now))

    async def _act(self, order_id: str, change: Step[BuyerProtection]) -> BuyerProtection:
        protection = await self.runner.change(order_id, change, missing=_no_protection(order_id))
        assert protection is not None
        return protection

    # --- queries -------------------------------------------------------------------------

    async def get(self, actor: Actor, order_id: str) -> BuyerProtection:
        protection = await self._load(order_id)
        if not protection.may_read(actor):
            raise NotPermitted("only the order's buyer, its supplier or customer service may "
                               "see its buyer protection")
        return protection

    async def get_dispute(self, actor: Actor, order_id: str) -> tuple[BuyerProtection, Dispute]:
        protection = await self.get(actor, order_id)
        if protection.dispute is None:
            raise NotFound(f"order {order_id} has no dispute")
        return protection, protection.dispute

    async def attachment(self, actor: Actor, order_id: str, attachment_id: str) -> Attachment:
        """Only files that are evidence in the order's disputes are served."""
        protection, _ = await self.get_dispute(actor, order_id)
        file = None
        if protection.has_evidence(attachment_id):
            file = await self.attachments.load(attachment_id)
        if file is None or file.order_id != order_id:
            raise NotFound(f"the dispute of order {order_id} has no attachment {attachment_id}")
        return file

    async def escalated(self, actor: Actor) -> list[BuyerProtection]:
        """Customer service's queue, oldest escalation first."""
        actor.require(Role.AGENT)
        queue = await self.runner.store.find({"status": ProtectionStatus.ESCALATED.value})
        return sorted(queue, key=_escalated_at)

    async def _load(self, order_id: str) -> BuyerProtection:
        protection = await self.runner.get(order_id)
        if protection is None:
            raise _no_protection(order_id)
        return protection

    # --- one handler per consumed event ---------------------------------------------------

    async def _follow(self, envelope: Envelope, event: TradeEvent, change: Step[BuyerProtection],
                      *, start: bool) -> None:
        """Apply ``change``; with ``start`` the protection is created if this is the first
        event seen for the order. Funding, dispatch and the order's end come on different
        topics in any order; every event that implies the order was paid starts it, so an
        end seen before the funding is not forgotten when the funding comes. Without, an
        order never paid has nothing to protect."""
        await self.runner.change(
            envelope.order_id, change, cause=envelope,
            missing=(lambda now: BuyerProtection.start(event.order_id, event.parties)) if start else None)

    @subscribes
    async def on_escrow_funded(self, envelope: Envelope, event: EscrowFunded) -> None:
        await self._follow(envelope, event, lambda p, now: p.record_funding(
            event.amount, event.currency, now), start=True)

    @subscribes
    async def on_shipment_dispatched(self, envelope: Envelope, event: ShipmentDispatched) -> None:
        await self._follow(envelope, event, lambda p, now: p.record_dispatch(
            event.ship_date, event.carrier, event.tracking_number, now, periods=self.periods,
            dispatched_at=event.dispatched_at), start=True)

    @subscribes
    async def on_order_cancelled(self, envelope: Envelope, event: OrderCancelled) -> None:
        await self._follow(envelope, event, lambda p, now: p.close(event.event_type, now),
                           start=False)

    @subscribes
    async def on_order_closed(self, envelope: Envelope, event: OrderClosed) -> None:
        await self._follow(envelope, event, lambda p, now: p.close(
            f"{event.event_type}: {event.reason}", now),
            start=event.reason is ClosureReason.SETTLED)

    @subscribes
    async def on_dispatch_deadline_missed(self, envelope: Envelope,
                                          event: DispatchDeadlineMissed) -> None:
        await self._follow(envelope, event, lambda p, now: p.close(event.event_type, now),
                           start=True)


def _escalated_at(protection: BuyerProtection) -> datetime:
    assert protection.dispute is not None and protection.dispute.escalated_at is not None
    return protection.dispute.escalated_at


def _no_protection(order_id: str) -> NotFound:
    return NotFound(f"order {order_id} has no buyer protection; it starts when the order is paid")
