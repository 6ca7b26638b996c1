"""The payment service's reactions to other services' events: open the escrow when the
supplier confirms, close, refund, release and freeze it as the trade goes on."""

from __future__ import annotations

from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    DispatchDeadlineMissed,
    DisputeOpened,
    DisputeResolved,
    DisputeWithdrawn,
    OrderCancelled,
    OrderConfirmed,
    ReceiptConfirmed,
)
from shared.contracts.trade import TransferInstructions
from shared.domain.errors import DomainError, NotFound
from shared.infra.runner import Step
from shared.infra.subscriptions import subscribes

from services.payment.domain import Escrow
from services.payment.escrows import EscrowRunner
from services.payment.reference import transfer_reference
from services.payment.settings import PaymentSettings

REFERENCE_ATTEMPTS = 5


class EscrowReactions:
    def __init__(self, runner: EscrowRunner, settings: PaymentSettings) -> None:
        self.runner = runner
        self.settings = settings

    async def _react(self, envelope: Envelope, change: Step[Escrow], *,
                     without_escrow_ok: bool = False) -> None:
        await self.runner.change(
            envelope.order_id, change, cause=envelope,
            missing=None if without_escrow_ok else NotFound(f"no escrow for order {envelope.order_id}"))

    @subscribes
    async def on_order_confirmed(self, envelope: Envelope, event: OrderConfirmed) -> None:
        instructions = TransferInstructions(
            reference=await self._unique_reference(event.order_id),
            beneficiary=self.settings.beneficiary_name, iban=self.settings.beneficiary_iban,
            bic=self.settings.beneficiary_bic, bank_name=self.settings.beneficiary_bank_name)

        await self.runner.change(  # a repeated confirmation finds the escrow open
            envelope.order_id, lambda escrow, now: None, cause=envelope,
            missing=lambda now: Escrow.open(event.order_id, event.parties, event.total,
                                            event.currency, event.payment_due_at, instructions, now))

    async def _unique_reference(self, order_id: str) -> str:
        """The order's reference; on a (2^-50 rare) collision with another order's, the next."""
        for attempt in range(REFERENCE_ATTEMPTS):
            reference = transfer_reference(order_id, attempt)
            if all(e.order_id == order_id for e in await self.runner.store.find({"reference": reference})):
                return reference
        raise DomainError(f"no free transfer reference for order {order_id}")

    @subscribes
    async def on_order_cancelled(self, envelope: Envelope, event: OrderCancelled) -> None:
        await self._react(envelope, lambda e, now: e.close(now), without_escrow_ok=True)

    @subscribes
    async def on_dispatch_deadline_missed(self, envelope: Envelope,
                                          event: DispatchDeadlineMissed) -> None:
        await self._react(envelope, lambda e, now: e.refund_not_shipped(now))

    @subscribes
    async def on_receipt_confirmed(self, envelope: Envelope, event: ReceiptConfirmed) -> None:
        await self._react(envelope, lambda e, now: e.release_on_receipt(now))

    @subscribes
    async def on_dispute_opened(self, envelope: Envelope, event: DisputeOpened) -> None:
        await self._react(envelope, lambda e, now: e.open_dispute(
            event.dispute_id, event.requested, event.disputed_amount, event.currency, now))

    @subscribes
    async def on_dispute_withdrawn(self, envelope: Envelope, event: DisputeWithdrawn) -> None:
        await self._react(envelope, lambda e, now: e.withdraw_dispute(event.dispute_id, now))

    @subscribes
    async def on_dispute_resolved(self, envelope: Envelope, event: DisputeResolved) -> None:
        await self._react(envelope, lambda e, now: e.resolve_dispute(
            event.dispute_id, event.outcome, event.refund_amount, event.currency, now))
