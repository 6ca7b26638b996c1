"""Card payments: charge what is due through the provider, book the capture, and reconcile
what the provider captured against the ledger.

The charge intent is saved before the provider is called and the capture is booked after,
so a crash or a failed save in between leaves a charge the ledger lacks; ``reconcile``
finds it in the provider's list of captures and books it (the escrow refunds at once what
it can no longer take). A captured charge is thus always either booked or refunded.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from shared.contracts.money import Money
from shared.contracts.parties import Role
from shared.contracts.trade import CardSummary
from shared.domain.actor import Actor, require
from shared.domain.errors import DomainError

from services.payment import escrows
from services.payment.cards import CardDetails, check_card
from services.payment.domain import Escrow
from services.payment.escrows import EscrowRunner
from services.payment.payouts import Payouts
from services.payment.provider import CapturedCharge, PaymentProvider, ProviderError

log = logging.getLogger(__name__)

CARD_KEY = ":card:"  # a charge's idempotency key is <order id>:card:<request>


class CardDeclined(DomainError):
    """The provider refused the card (HTTP 402)."""


class ProviderUnavailable(DomainError):
    """The provider could not be reached; nothing was charged (HTTP 503)."""


class CardIntake:
    def __init__(self, runner: EscrowRunner, provider: PaymentProvider, payouts: Payouts,
                 reconcile_window: timedelta) -> None:
        self.runner = runner
        self.provider = provider
        self.payouts = payouts
        self.reconcile_window = reconcile_window
        # Charges seen booked (a booking is never undone), so each run reads only new ones.
        self._booked: dict[str, datetime] = {}

    async def pay_by_card(self, actor: Actor, order_id: str, card: CardDetails, *,
                          idempotency_key: str | None = None) -> Escrow:
        """Charge what is still due. Without an ``Idempotency-Key`` the key is derived from
        what the escrow has received and how many cards were declined, so a retried request
        (or a double click) charges once, while a new card after a decline is a new charge."""
        escrow = await escrows.load(self.runner, order_id)
        require(actor, escrow.parties, Role.BUYER, doing="pay for it")
        request_key = (f"{order_id}{CARD_KEY}{idempotency_key}" if idempotency_key else
                       f"{order_id}{CARD_KEY}{escrow.received_total}:{escrow.card_declines}")
        if escrow.funding_for_request(request_key) is not None:
            return escrow  # this very request was captured already
        escrow.require_payable(self.runner.clock.now())
        check_card(card, self.runner.clock.now().date())
        amount = Money(amount=escrow.remaining, currency=escrow.currency)
        await self.runner.execute(order_id, lambda e, now: e if e is not None and e.intend_charge(
            request_key, amount.amount, now) else None)
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
            await self.runner.execute(order_id, escrows.change(
                lambda e, now: e.decline_card(amount.amount, reason, summary, now)))
            raise CardDeclined(f"the card was declined ({reason}): {result.message}")
        assert result.charge_id is not None
        await self._book(order_id, result.charge_id, amount.amount, summary, request_key)
        log.info("card payment for order %s captured (%s ending %s, charge %s)", order_id,
                 summary.brand, summary.last4, result.charge_id)
        await self.payouts.send(order_id)  # a charge the escrow could not take goes back now
        return await escrows.load(self.runner, order_id)

    async def _book(self, order_id: str, charge_id: str, amount: int, card: CardSummary,
                    request_key: str) -> None:
        def capture(escrow: Escrow | None, now: datetime) -> Escrow | None:
            assert escrow is not None
            booked = escrow.receive_card_payment(charge_id, amount, card, now, request_key=request_key)
            return escrow if booked else None

        await self.runner.execute(order_id, capture)

    async def reconcile(self) -> int:
        """Book every charge the provider captured in the window that its escrow (named by
        the charge's idempotency key) lacks; refund one that belongs to no escrow. Returns how
        many were missing."""
        since = self.runner.clock.now() - self.reconcile_window
        self._booked = {c: at for c, at in self._booked.items() if at >= since}
        missing = 0
        for charge in await self.provider.captured_charges(since):
            if charge.charge_id in self._booked:
                continue
            order_id, _, _ = charge.idempotency_key.partition(CARD_KEY)
            escrow = await self.runner.get(order_id)
            if escrow is not None and escrow.funding(charge.charge_id) is not None:
                self._booked[charge.charge_id] = charge.captured_at
                continue
            missing += 1
            if escrow is not None:
                await self._book_missing(escrow, charge)
            else:
                await self._refund_stray(charge)
        return missing

    async def _book_missing(self, escrow: Escrow, charge: CapturedCharge) -> None:
        log.warning("charge %s for order %s was captured but not booked; booking it now",
                    charge.charge_id, escrow.order_id)
        card = CardSummary(brand=charge.card.brand, last4=charge.card.last4, token=charge.card.token)
        await self._book(escrow.order_id, charge.charge_id, charge.amount.amount, card,
                         charge.idempotency_key)
        await self.payouts.send(escrow.order_id)

    async def _refund_stray(self, charge: CapturedCharge) -> None:
        log.error("charge %s (key %s) belongs to no escrow; refunding it in full",
                  charge.charge_id, charge.idempotency_key)
        await self.provider.refund(charge.charge_id, charge.amount, f"stray:{charge.charge_id}")
