"""The order service's use cases: one function per actor command, one handler per event."""

from __future__ import annotations

import hashlib
import uuid

from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    DispatchDeadlineMissed,
    DisputeOpened,
    DisputeResolved,
    DisputeWithdrawn,
    EscrowFunded,
    EscrowRefunded,
    EscrowReleased,
    EscrowSettled,
    FundsReturned,
    PaymentDeadlinePassed,
    ReceiptConfirmed,
    ShipmentDispatched,
)
from shared.contracts.parties import Parties, Role
from shared.contracts.trade import Address, LineItem, Logistics
from shared.domain.actor import Actor
from shared.domain.errors import NotFound, NotPermitted
from shared.infra.rate_limit import RateLimiter
from shared.infra.runner import AggregateRunner, Step
from shared.infra.subscriptions import subscribes

from services.order.domain import Message, Order
from services.order.settings import OrderSettings


def new_order_id(buyer_id: str, idempotency_key: str | None) -> str:
    """With an Idempotency-Key the id is derived from it, so a retried request finds the
    order it already placed instead of placing a second one."""
    if idempotency_key:
        digest = hashlib.sha256(f"{buyer_id}\x00{idempotency_key}".encode()).hexdigest()
        return f"ord_{digest[:24]}"
    return f"ord_{uuid.uuid4().hex[:24]}"


class OrderService:
    def __init__(self, runner: AggregateRunner[Order], settings: OrderSettings,
                 limiter: RateLimiter) -> None:
        self.runner = runner
        self.settings = settings
        self.limiter = limiter

    # --- commands ------------------------------------------------------------------------

    async def place(self, actor: Actor, parties: Parties, items: list[LineItem], currency: str,
                    destination: Address, delivery_period_days: int, *,
                    idempotency_key: str | None = None) -> Order:
        await self.limiter.take(self.settings.placing(), actor.party_id)  # each is mailed
        order_id = new_order_id(actor.party_id, idempotency_key)
        order = await self.runner.change(  # the same request again finds the order placed
            order_id, lambda order, now: None, missing=lambda now: Order.place(
                order_id, parties, items, currency, destination, delivery_period_days, now))
        assert order is not None
        return self._readable(actor, order)

    async def confirm(self, actor: Actor, order_id: str, logistics: Logistics) -> Order:
        return await self._act(order_id, lambda o, now: o.confirm(
            actor, logistics, now, payment_window=self.settings.payment_window,
            reminder_before=self.settings.payment_reminder_before))

    async def decline(self, actor: Actor, order_id: str, reason: str) -> Order:
        return await self._act(order_id, lambda o, now: o.decline(actor, reason, now))

    async def cancel(self, actor: Actor, order_id: str, reason: str) -> Order:
        return await self._act(order_id, lambda o, now: o.cancel(actor, reason, now))

    async def post_message(self, actor: Actor, order_id: str, text: str) -> Message:
        await self.limiter.take(self.settings.messaging(), actor.party_id)  # each is mailed
        order = await self._act(order_id, lambda o, now: o.post_message(actor, text, now))
        return order.messages[-1]

    async def _act(self, order_id: str, step: Step[Order]) -> Order:
        order = await self.runner.change(order_id, step, missing=NotFound(f"no order {order_id}"))
        assert order is not None
        return order

    # --- queries -------------------------------------------------------------------------

    async def get(self, actor: Actor, order_id: str) -> Order:
        order = await self.runner.get(order_id)
        if order is None:
            raise NotFound(f"no order {order_id}")
        return self._readable(actor, order)

    @staticmethod
    def _readable(actor: Actor, order: Order) -> Order:
        if not order.may_read(actor):
            raise NotPermitted("only the order's buyer, its supplier or customer service may see it")
        return order

    async def list_for(self, actor: Actor) -> list[Order]:
        """The orders the caller may read as a party: in the role its token names (a service
        acting for a party: both roles), as ``get`` would show them one by one."""
        found: list[Order] = []
        for role, field in ((Role.BUYER, "buyer"), (Role.SUPPLIER, "supplier")):
            if actor.role in (role, Role.SERVICE):
                found += await self.runner.store.find({f"parties.{field}.party_id": actor.party_id})
        return sorted(found, key=lambda o: o.placed_at, reverse=True)

    # --- one handler per consumed event ---------------------------------------------------

    async def _follow(self, envelope: Envelope, step: Step[Order]) -> None:
        # an order this service never placed has nothing to follow: ignored
        await self.runner.change(envelope.order_id, step, cause=envelope)

    @subscribes
    async def on_escrow_funded(self, envelope: Envelope, event: EscrowFunded) -> None:
        await self._follow(envelope, lambda o, now: o.mark_paid(
            now, envelope.occurred_at, amount=event.amount, method=event.method))

    @subscribes
    async def on_payment_deadline_passed(self, envelope: Envelope,
                                         event: PaymentDeadlinePassed) -> None:
        await self._follow(envelope, lambda o, now: o.close_unpaid(now, event.pay_by))

    @subscribes
    async def on_shipment_dispatched(self, envelope: Envelope, event: ShipmentDispatched) -> None:
        await self._follow(envelope, lambda o, now: o.mark_shipped(
            now, carrier=event.carrier, tracking_number=event.tracking_number,
            ship_date=event.ship_date.isoformat()))

    @subscribes
    async def on_dispatch_deadline_missed(self, envelope: Envelope,
                                          event: DispatchDeadlineMissed) -> None:
        await self._follow(envelope, lambda o, now: o.note(
            now, "dispatch deadline missed", ship_by=event.ship_by.isoformat()))

    @subscribes
    async def on_dispute_opened(self, envelope: Envelope, event: DisputeOpened) -> None:
        await self._follow(envelope, lambda o, now: o.mark_disputed(
            now, True, event.dispute_id, reason=event.reason,
            disputed_amount=event.disputed_amount))

    @subscribes
    async def on_dispute_withdrawn(self, envelope: Envelope, event: DisputeWithdrawn) -> None:
        await self._follow(envelope, lambda o, now: o.mark_disputed(
            now, False, event.dispute_id, outcome="withdrawn"))

    @subscribes
    async def on_dispute_resolved(self, envelope: Envelope, event: DisputeResolved) -> None:
        await self._follow(envelope, lambda o, now: o.note(
            now, "dispute resolved", dispute_id=event.dispute_id, outcome=event.outcome,
            refund_amount=event.refund_amount, decided_by=event.decided_by))

    @subscribes
    async def on_receipt_confirmed(self, envelope: Envelope, event: ReceiptConfirmed) -> None:
        await self._follow(envelope, lambda o, now: o.mark_received(
            now, confirmed_by=event.confirmed_by))

    @subscribes
    async def on_escrow_released(self, envelope: Envelope, event: EscrowReleased) -> None:
        await self._follow(envelope, lambda o, now: o.note(
            now, "released to supplier", amount=event.amount, reason=event.reason))

    @subscribes
    async def on_escrow_refunded(self, envelope: Envelope, event: EscrowRefunded) -> None:
        await self._follow(envelope, lambda o, now: o.note(
            now, "refunded to buyer", amount=event.amount, reason=event.reason))

    @subscribes
    async def on_escrow_settled(self, envelope: Envelope, event: EscrowSettled) -> None:
        await self._follow(envelope, lambda o, now: o.settle(
            event.released_total, event.refunded_total, now))

    @subscribes
    async def on_funds_returned(self, envelope: Envelope, event: FundsReturned) -> None:
        await self._follow(envelope, lambda o, now: o.mark_returned(
            event.amount, event.currency, now, reason=event.reason,
            transfer_id=event.transfer_id))
