"""Money out of escrows: each order's pending payouts, refunds and returns, sent to the
provider. The instruction id is the idempotency key, so sending again after a crash moves
nothing twice; what fails stays pending for the next sweep, which takes the escrows oldest
pending instruction first and backs off the ones that keep failing."""

from __future__ import annotations

import logging
from datetime import datetime

from shared.contracts.money import Money
from shared.contracts.trade import PaymentMethod
from shared.infra.store import STORED_DEADLINES
from shared.infra.sweep import Sweep

from services.payment import escrows
from services.payment.domain import Escrow
from services.payment.escrows import EscrowRunner
from services.payment.instructions import Instruction, InstructionKind
from services.payment.provider import Payee, PaymentProvider
from services.payment.vault import PaymentDataVault

log = logging.getLogger(__name__)


# The sweep queue of escrows with instructions to send (see ``shared.infra.sweep``).
INSTRUCTIONS = "instructions"


def oldest_pending_instruction(escrow: Escrow) -> datetime | None:
    """When the escrow is due for the instruction sweep: its oldest pending instruction."""
    return min((i.created_at for i in escrow.pending_instructions()), default=None)


# What an escrow's document is due for: its stored deadlines and its pending instructions.
ESCROW_DUE = {**STORED_DEADLINES, INSTRUCTIONS: oldest_pending_instruction}


class InstructionsNotSent(Exception):
    """The provider did not take an instruction (the sweep tries again later)."""


class Payouts:
    def __init__(self, runner: EscrowRunner, provider: PaymentProvider, vault: PaymentDataVault) -> None:
        self.runner = runner
        self.provider = provider
        self.vault = vault
        self.sweep = Sweep("payment-instructions", runner.store.queue(INSTRUCTIONS), self._sweep_one,
                           runner.clock, registry=runner.metrics)

    async def send(self, order_id: str) -> int:
        """Send the order's pending instructions; returns how many went out."""
        sent, failures = await self._send_pending(order_id)
        for instruction, exc in failures:
            log.warning("%s %s not sent (%s: %s); the sweep retries it", instruction.kind,
                        instruction.instruction_id, type(exc).__name__, exc)
        return sent

    async def _sweep_one(self, order_id: str) -> int:
        """One escrow's turn in the sweep: raises when an instruction was not sent, so the
        sweep backs this escrow off and goes on with the others."""
        sent, failures = await self._send_pending(order_id)
        if failures:
            instruction, exc = failures[0]
            raise InstructionsNotSent(
                f"{len(failures)} instruction(s) not sent ({sent} sent); first "
                f"{instruction.instruction_id}: {type(exc).__name__}: {exc}") from exc
        return sent

    async def _send_pending(self, order_id: str) -> tuple[int, list[tuple[Instruction, Exception]]]:
        escrow = await escrows.load(self.runner, order_id)
        sent = 0
        failures: list[tuple[Instruction, Exception]] = []
        for instruction in escrow.pending_instructions():
            try:
                provider_reference = await self._execute(escrow, instruction)
            except Exception as exc:
                failures.append((instruction, exc))
                continue
            await self.runner.execute(order_id, escrows.change(
                lambda e, now, i=instruction.instruction_id, ref=provider_reference:
                e.mark_sent(i, ref, now)))
            sent += 1
        return sent, failures

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
