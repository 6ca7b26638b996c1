"""Money out of escrows: each order's pending payouts, refunds and returns, sent to the
provider. The instruction id is the idempotency key, so sending again after a crash moves
nothing twice; what fails stays pending for the next sweep."""

from __future__ import annotations

import logging

from shared.contracts.money import Money
from shared.contracts.trade import PaymentMethod
from services.payment import escrows
from services.payment.domain import Escrow
from services.payment.escrows import EscrowRunner
from services.payment.instructions import Instruction, InstructionKind
from services.payment.provider import Payee, PaymentProvider
from services.payment.vault import PaymentDataVault

log = logging.getLogger(__name__)


class Payouts:
    def __init__(self, runner: EscrowRunner, provider: PaymentProvider, vault: PaymentDataVault) -> None:
        self.runner = runner
        self.provider = provider
        self.vault = vault

    async def send(self, order_id: str) -> int:
        """Send the order's pending instructions; returns how many went out."""
        escrow = await escrows.load(self.runner, order_id)
        sent = 0
        for instruction in escrow.pending_instructions():
            try:
                provider_reference = await self._execute(escrow, instruction)
            except Exception as exc:
                log.warning("%s %s not sent (%s: %s); the sweep retries it", instruction.kind,
                            instruction.instruction_id, type(exc).__name__, exc)
                continue
            await self.runner.execute(order_id, escrows.change(
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

    async def sweep(self) -> int:
        sent = 0
        for escrow in await self.runner.store.find({"instructions_pending": True}):
            sent += await self.send(escrow.order_id)
        return sent
