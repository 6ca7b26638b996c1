"""The shipping service's use cases: the supplier's proof of dispatch, the shipment query,
and one handler per consumed event."""

from __future__ import annotations

from datetime import date

from shared.contracts.envelope import Envelope
from shared.contracts.events import EscrowFunded, OrderCancelled, OrderClosed, OrderConfirmed
from shared.contracts.trade import Carrier
from shared.domain.actor import Actor
from shared.domain.errors import NotFound
from shared.infra.runner import AggregateRunner
from shared.infra.subscriptions import subscribes

from services.shipping.domain import Shipment
from services.shipping.settings import ShippingSettings


class ShippingService:
    def __init__(self, runner: AggregateRunner[Shipment], settings: ShippingSettings) -> None:
        self.runner = runner
        self.settings = settings

    # --- commands ------------------------------------------------------------------------

    async def submit_dispatch(self, actor: Actor, order_id: str, carrier: Carrier,
                              tracking_number: str, ship_date: date) -> Shipment:
        shipment = await self.runner.change(
            order_id, lambda s, now: s.submit_dispatch(actor, carrier, tracking_number, ship_date, now),
            missing=NotFound(f"no shipment for order {order_id}"))
        assert shipment is not None
        shipment.require_viewer(actor)
        return shipment

    # --- queries -------------------------------------------------------------------------

    async def get(self, actor: Actor, order_id: str) -> Shipment:
        shipment = await self.runner.get(order_id)
        if shipment is None:
            raise NotFound(f"no shipment for order {order_id}")
        shipment.require_viewer(actor)
        return shipment

    # --- one handler per consumed event ---------------------------------------------------

    @subscribes
    async def on_order_confirmed(self, envelope: Envelope, event: OrderConfirmed) -> None:
        await self.runner.change(
            envelope.order_id, lambda s, now: s.order_confirmed(
                event.logistics, event.delivery_period_days, now,
                self.settings.ship_by_reminder_before),
            cause=envelope, missing=lambda now: Shipment.expect(
                event.order_id, event.parties, event.logistics, event.delivery_period_days, now))

    @subscribes
    async def on_escrow_funded(self, envelope: Envelope, event: EscrowFunded) -> None:
        paid_at = envelope.occurred_at
        await self.runner.change(
            envelope.order_id, lambda s, now: s.escrow_funded(
                paid_at, now, self.settings.ship_by_reminder_before),
            cause=envelope, missing=lambda now: Shipment.paid_before_confirmation(
                event.order_id, event.parties, paid_at, now))

    async def _close(self, envelope: Envelope, reason: str) -> None:
        # ended before it was confirmed: nothing was ever due, nothing to close
        await self.runner.change(envelope.order_id, lambda s, now: s.order_closed(reason, now),
                                 cause=envelope)

    @subscribes
    async def on_order_cancelled(self, envelope: Envelope, event: OrderCancelled) -> None:
        await self._close(envelope, f"cancelled: {event.reason}")

    @subscribes
    async def on_order_closed(self, envelope: Envelope, event: OrderClosed) -> None:
        await self._close(envelope, str(event.reason))
