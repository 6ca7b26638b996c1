"""The shipping service's use cases: the supplier's proof of dispatch, the shipment query,
and one handler per consumed event."""

from __future__ import annotations

from datetime import date, datetime

from shared.contracts.envelope import Envelope
from shared.contracts.events import EscrowFunded, OrderCancelled, OrderClosed, OrderConfirmed
from shared.contracts.trade import Carrier
from shared.domain.actor import Actor
from shared.domain.errors import NotFound
from shared.infra.runner import AggregateRunner
from services.shipping.domain import Shipment
from services.shipping.settings import ShippingSettings


class ShippingService:
    def __init__(self, runner: AggregateRunner[Shipment], settings: ShippingSettings) -> None:
        self.runner = runner
        self.settings = settings

    # --- commands ------------------------------------------------------------------------

    async def submit_dispatch(self, actor: Actor, order_id: str, carrier: Carrier,
                              tracking_number: str, ship_date: date) -> Shipment:
        def action(shipment: Shipment | None, now: datetime) -> Shipment | None:
            if shipment is None:
                raise NotFound(f"no shipment for order {order_id}")
            changed = shipment.submit_dispatch(actor, carrier, tracking_number, ship_date, now)
            return shipment if changed else None

        await self.runner.execute(order_id, action)
        return await self.get(actor, order_id)

    # --- queries -------------------------------------------------------------------------

    async def get(self, actor: Actor, order_id: str) -> Shipment:
        shipment = await self.runner.get(order_id)
        if shipment is None:
            raise NotFound(f"no shipment for order {order_id}")
        shipment.require_viewer(actor)
        return shipment

    # --- one handler per consumed event ---------------------------------------------------

    async def on_order_confirmed(self, envelope: Envelope, event: OrderConfirmed) -> None:
        def action(shipment: Shipment | None, now: datetime) -> Shipment | None:
            if shipment is None:
                return Shipment.expect(event.order_id, event.parties, event.logistics,
                                       event.delivery_period_days, now)
            changed = shipment.order_confirmed(event.logistics, event.delivery_period_days, now,
                                               self.settings.ship_by_reminder_before)
            return shipment if changed else None

        await self.runner.execute(envelope.order_id, action, cause=envelope)

    async def on_escrow_funded(self, envelope: Envelope, event: EscrowFunded) -> None:
        paid_at = envelope.occurred_at

        def action(shipment: Shipment | None, now: datetime) -> Shipment | None:
            if shipment is None:
                return Shipment.paid_before_confirmation(event.order_id, event.parties, paid_at,
                                                         now)
            changed = shipment.escrow_funded(paid_at, now, self.settings.ship_by_reminder_before)
            return shipment if changed else None

        await self.runner.execute(envelope.order_id, action, cause=envelope)

    async def _close(self, envelope: Envelope, reason: str) -> None:
        def action(shipment: Shipment | None, now: datetime) -> Shipment | None:
            if shipment is None:
                return None  # ended before it was confirmed: nothing was ever due
            return shipment if shipment.order_closed(reason, now) else None

        await self.runner.execute(envelope.order_id, action, cause=envelope)

    async def on_order_cancelled(self, envelope: Envelope, event: OrderCancelled) -> None:
        await self._close(envelope, f"cancelled: {event.reason}")

    async def on_order_closed(self, envelope: Envelope, event: OrderClosed) -> None:
        await self._close(envelope, str(event.reason))

    def event_handlers(self) -> dict:
        return {
            OrderConfirmed: self.on_order_confirmed,
            EscrowFunded: self.on_escrow_funded,
            OrderCancelled: self.on_order_cancelled,
            OrderClosed: self.on_order_closed,
        }
