"""The payment service's use cases: card payments and bank transfers coming in, one
handler per consumed event, and the sweep that sends money out through the provider.

Calls to the provider are I/O, so they happen here, never inside the aggregate: check the
state, call the provider with an idempotency key, then record the outcome.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    ClosureReason,
    DispatchDeadlineMissed,
    DisputeOpened,
    DisputeResolved,
    DisputeWithdrawn,
    OrderCancelled,
    OrderClosed,
    OrderConfirmed,
    ReceiptConfirmed,
)
from shared.contracts.money import Money
from shared.contracts.parties import Role
from shared.contracts.trade import CardSummary, PaymentMethod, TransferInstructions
from shared.domain.actor import Actor
from shared.domain.errors import DomainError, NotFound, NotPermitted
from shared.infra.runner import AggregateRunner
from services.payment.cards import CardDetails, check_card
from services.payment.domain import Escrow, Instruction, InstructionKind
from services.payment.provider import Payee, PaymentProvider, ProviderError
from services.payment.reference import find_reference, transfer_reference
from services.payment.settings import PaymentSettings
from services.payment.unmatched import InMemoryUnmatchedTransfers, UnmatchedTransfer, UnmatchedTransfers
from services.payment.vault import PaymentDataVault

log = logging.getLogger(__name__)

REFERENCE_ATTEMPTS = 5


class CardDeclined(DomainError):
    """The provider refused the card (HTTP 402)."""


class ProviderUnavailable(DomainError):
    """The provider could not be reached; nothing was charged (HTTP 503)."""


@dataclass(frozen=True)
class TransferReport:
    """An incoming transfer as the bank reports it."""

    transfer_id: str
    reference: str
    amount: int
    currency: str
    sender_name: str
    sender_account: str


@dataclass(frozen=True)
class TransferOutcome:
    transfer_id: str
    matched: bool
    order_id: str | None
    amount: int
    currency: str
    accepted: int  # counted towards the order
    returned: int  # going back to the sender
    received_total: int | None = None
    remaining: int | None = None
    detail: str = ""


class PaymentService:
    def __init__(self, runner: AggregateRunner[Escrow],
                 unmatched: UnmatchedTransfers | InMemoryUnmatchedTransfers,
                 provider: PaymentProvider, vault: PaymentDataVault,
                 settings: PaymentSettings) -> None:
        self.runner = runner
        self.unmatched = unmatched
        self.provider = provider
        self.vault = vault
        self.settings = settings

    # --- queries -------------------------------------------------------------------------

    async def get(self, actor: Actor, order_id: str) -> Escrow:
        escrow = await self._escrow(order_id)
        if not escrow.may_read(actor):
            raise NotPermitted("only the order's buyer, its supplier or customer service may see "
                               "its payment")
        return escrow

    async def _escrow(self, order_id: str) -> Escrow:
        escrow = await self.runner.get(order_id)
        if escrow is None:
            raise NotFound(f"no escrow for order {order_id}")
        return escrow

    # --- money in: card ------------------------------------------------------------------

    async def pay_by_card(self, actor: Actor, order_id: str, card: CardDetails, *,
                          idempotency_key: str | None = None,
                          correlation_id: str | None = None) -> Escrow:
        """Charge what is still due. Without an ``Idempotency-Key`` the key is derived from
        what the escrow has received and how many cards were declined, so a retried request
        (or a double click) charges once, while a new card after a decline is a new charge."""
        escrow = await self._escrow(order_id)
        escrow.require_buyer(actor)
        request_key = (f"{order_id}:card:{idempotency_key}" if idempotency_key else
                       f"{order_id}:card:{escrow.received_total}:{escrow.card_declines}")
        if escrow.funding_for_request(request_key) is not None:
            return escrow  # this very request was captured already
        escrow.require_awaiting_funds()
        check_card(card, self.runner.clock.now().date())
        amount = Money(amount=escrow.remaining, currency=escrow.currency)
        try:
            tokenised = await self.provider.tokenise(card)
            result = await self.provider.charge(tokenised.token, amount, request_key)
        except ProviderError as exc:
            log.warning("card payment for order %s: provider failed: %s", order_id, exc)
            raise ProviderUnavailable("the payment provider did not answer; retry with the same "
                                      "Idempotency-Key") from None
        summary = CardSummary(brand=tokenised.brand, last4=tokenised.last4, token=tokenised.token)
        if not result.approved:
            reason = result.decline_code or "card_declined"
            log.info("card payment for order %s declined (%s, %s ending %s)", order_id, reason,
                     summary.brand, summary.last4)
            await self.runner.execute(order_id, self._change(
                lambda e, now: e.decline_card(amount.amount, reason, summary, now)),
                correlation_id=correlation_id)
            raise CardDeclined(f"the card was declined ({reason}): {result.message}")
        assert result.charge_id is not None

        def capture(escrow: Escrow | None, now: datetime) -> Escrow | None:
            assert escrow is not None
            booked = escrow.receive_card_payment(result.charge_id, amount.amount, summary, now,
                                                 request_key=request_key)
            return escrow if booked else None

        await self.runner.execute(order_id, capture, correlation_id=correlation_id)
        log.info("card payment for order %s captured (%s ending %s, charge %s)", order_id,
                 summary.brand, summary.last4, result.charge_id)
        await self.send_instructions(order_id)  # a charge the escrow could not take goes back now
        return await self._escrow(order_id)

    # --- money in: bank transfer ---------------------------------------------------------

    async def receive_transfer(self, actor: Actor, report: TransferReport, *,
                               correlation_id: str | None = None) -> TransferOutcome:
        actor.require(Role.BANK, Role.SERVICE)
        kept = await self.unmatched.get(report.transfer_id)
        if kept is not None:
            return self._unmatched_outcome(kept)
        reference = find_reference(report.reference)
        escrow = await self._by_reference(reference) if reference else None
        sealed = self.vault.seal(report.sender_name, report.sender_account)
        if escrow is None:
            transfer = UnmatchedTransfer.to_return(report.transfer_id, report.reference, report.amount,
                                                   report.currency, sealed, self.runner.clock.now())
            await self.unmatched.add(transfer)
            log.warning("transfer %s matches no order; it is kept and will be returned",
                        report.transfer_id)
            return self._unmatched_outcome(transfer)

        def book(escrow: Escrow | None, now: datetime) -> Escrow | None:
            assert escrow is not None
            booked = escrow.receive_bank_transfer(report.transfer_id, report.amount, report.currency,
                                                  sealed, now)
            return escrow if booked else None

        await self.runner.execute(escrow.order_id, book, correlation_id=correlation_id)
        escrow = await self._escrow(escrow.order_id)
        funding = escrow.funding(report.transfer_id)
        assert funding is not None
        return TransferOutcome(
            transfer_id=report.transfer_id, matched=True, order_id=escrow.order_id,
            amount=funding.amount, currency=funding.currency, accepted=funding.accepted,
            returned=funding.amount - funding.accepted, received_total=escrow.received_total,
            remaining=escrow.remaining,
            detail=f"matched order {escrow.order_id}; its escrow is {escrow.status}")

    async def _by_reference(self, reference: str) -> Escrow | None:
        found = await self.runner.store.find({"reference": reference}, limit=2)
        return found[0] if found else None

    @staticmethod
    def _unmatched_outcome(transfer: UnmatchedTransfer) -> TransferOutcome:
        return TransferOutcome(
            transfer_id=transfer.transfer_id, matched=False, order_id=None, amount=transfer.amount,
            currency=transfer.currency, accepted=0, returned=transfer.amount,
            detail="the reference matches no order: the transfer will be returned to its sender")

    # --- money out -----------------------------------------------------------------------

    async def send_instructions(self, order_id: str) -> int:
        """Send the order's pending payouts, refunds and returns to the provider. The
        instruction id is the idempotency key, so sending again after a crash moves nothing
        twice; what fails stays pending for the next sweep."""
        escrow = await self._escrow(order_id)
        sent = 0
        for instruction in escrow.pending_instructions():
            try:
                provider_reference = await self._execute(escrow, instruction)
            except Exception as exc:
                log.warning("%s %s not sent (%s: %s); the sweep retries it", instruction.kind,
                            instruction.instruction_id, type(exc).__name__, exc)
                continue
            await self.runner.execute(order_id, self._change(
                lambda e, now, i=instruction.instruction_id, ref=provider_reference:
                e.mark_sent(i, ref, now)))
            sent += 1
        return sent

    async def _execute(self, escrow: Escrow, instruction: Instruction) -> str:
        amount = Money(amount=instruction.amount, currency=instruction.currency)
        key = instruction.instruction_id
        if instruction.kind is InstructionKind.PAYOUT:
            supplier = escrow.parties.supplier
            return await self.provider.payout(
                Payee(name=supplier.name, account=f"party:{supplier.party_id}"), amount,
                f"{escrow.reference} order {escrow.order_id}", key)
        assert instruction.source_id is not None
        if instruction.method is PaymentMethod.CARD:
            return await self.provider.refund(instruction.source_id, amount, key)
        funding = escrow.funding(instruction.source_id)
        assert funding is not None and funding.sender_sealed is not None
        return await self.provider.payout(self.vault.open(funding.sender_sealed), amount,
                                          f"RETURN {instruction.source_id}", key)

    async def _return_unmatched(self, transfer: UnmatchedTransfer) -> int:
        instruction = transfer.return_instruction
        try:
            provider_reference = await self.provider.payout(
                self.vault.open(transfer.sender_sealed),
                Money(amount=instruction.amount, currency=instruction.currency),
                f"RETURN {transfer.transfer_id}", instruction.instruction_id)
        except Exception as exc:
            log.warning("return of unmatched transfer %s not sent (%s: %s); the sweep retries it",
                        transfer.transfer_id, type(exc).__name__, exc)
            return 0
        await self.unmatched.save_returned(transfer.returned(provider_reference, self.runner.clock.now()))
        return 1

    async def sweep_instructions(self) -> int:
        sent = 0
        for escrow in await self.runner.store.find({"instructions_pending": True}):
            sent += await self.send_instructions(escrow.order_id)
        for transfer in await self.unmatched.pending_returns():
            sent += await self._return_unmatched(transfer)
        return sent

    # --- one handler per consumed event --------------------------------------------------

    @staticmethod
    def _change(change):
        def action(escrow: Escrow | None, now: datetime) -> Escrow:
            assert escrow is not None
            change(escrow, now)
            return escrow
        return action

    async def _react(self, envelope: Envelope, change, *, without_escrow_ok: bool = False) -> None:
        def action(escrow: Escrow | None, now: datetime) -> Escrow | None:
            if escrow is None:
                if without_escrow_ok:
                    return None
                raise NotFound(f"no escrow for order {envelope.order_id}")
            change(escrow, now)
            return escrow

        await self.runner.execute(envelope.order_id, action, cause=envelope)

    async def on_order_confirmed(self, envelope: Envelope, event: OrderConfirmed) -> None:
        instructions = TransferInstructions(
            reference=await self._unique_reference(event.order_id),
            beneficiary=self.settings.beneficiary_name, iban=self.settings.beneficiary_iban,
            bic=self.settings.beneficiary_bic, bank_name=self.settings.beneficiary_bank_name)

        def open_escrow(escrow: Escrow | None, now: datetime) -> Escrow | None:
            if escrow is not None:
                return None
            return Escrow.open(event.order_id, event.parties, event.total, event.currency,
                               event.payment_due_at, instructions, now)

        await self.runner.execute(event.order_id, open_escrow, cause=envelope)

    async def _unique_reference(self, order_id: str) -> str:
        """The order's reference; on a (2^-50 rare) collision with another order's, the next."""
        for attempt in range(REFERENCE_ATTEMPTS):
            reference = transfer_reference(order_id, attempt)
            if all(e.order_id == order_id for e in await self.runner.store.find({"reference": reference})):
                return reference
        raise DomainError(f"no free transfer reference for order {order_id}")

    async def on_order_cancelled(self, envelope: Envelope, event: OrderCancelled) -> None:
        await self._react(envelope, lambda e, now: e.close(now), without_escrow_ok=True)

    async def on_order_closed(self, envelope: Envelope, event: OrderClosed) -> None:
        if event.reason is ClosureReason.PAYMENT_NOT_RECEIVED:
            await self._react(envelope, lambda e, now: e.close(now), without_escrow_ok=True)

    async def on_dispatch_deadline_missed(self, envelope: Envelope,
                                          event: DispatchDeadlineMissed) -> None:
        await self._react(envelope, lambda e, now: e.refund_not_shipped(now))

    async def on_receipt_confirmed(self, envelope: Envelope, event: ReceiptConfirmed) -> None:
        await self._react(envelope, lambda e, now: e.release_on_receipt(now))

    async def on_dispute_opened(self, envelope: Envelope, event: DisputeOpened) -> None:
        await self._react(envelope, lambda e, now: e.open_dispute(
            event.dispute_id, event.requested, event.disputed_amount, event.currency, now))

    async def on_dispute_withdrawn(self, envelope: Envelope, event: DisputeWithdrawn) -> None:
        await self._react(envelope, lambda e, now: e.withdraw_dispute(event.dispute_id, now))

    async def on_dispute_resolved(self, envelope: Envelope, event: DisputeResolved) -> None:
        await self._react(envelope, lambda e, now: e.resolve_dispute(
            event.dispute_id, event.outcome, event.refund_amount, event.currency, now))

    def event_handlers(self) -> dict:
        return {
            OrderConfirmed: self.on_order_confirmed,
            OrderCancelled: self.on_order_cancelled,
            OrderClosed: self.on_order_closed,
            DispatchDeadlineMissed: self.on_dispatch_deadline_missed,
            ReceiptConfirmed: self.on_receipt_confirmed,
            DisputeOpened: self.on_dispute_opened,
            DisputeWithdrawn: self.on_dispute_withdrawn,
            DisputeResolved: self.on_dispute_resolved,
        }
