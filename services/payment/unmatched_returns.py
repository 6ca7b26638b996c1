"""Transfers that matched no order go back to their senders."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry

from shared.contracts.money import Money
from shared.infra.clock import Clock
from shared.infra.sweep import Sweep

from services.payment.bank_transfers import BankTransfers
from services.payment.provider import PaymentProvider
from services.payment.vault import PaymentDataVault

log = logging.getLogger(__name__)


RETURNS = "returns"  # the sweep queue of transfers to return (see ``shared.infra.sweep``)


class UnmatchedReturns:
    def __init__(self, transfers: BankTransfers, provider: PaymentProvider, vault: PaymentDataVault,
                 clock: Clock, metrics: CollectorRegistry | None = None) -> None:
        self.transfers = transfers
        self.provider = provider
        self.vault = vault
        self.clock = clock
        self.sweep = Sweep("unmatched-returns", transfers.queue(RETURNS), self.send, clock,
                           registry=metrics)

    async def send(self, transfer_id: str) -> int:
        """Return one transfer, oldest first by the sweep; raises when the provider failed
        (the sweep backs it off and goes on with the others)."""
        transfer = await self.transfers.get(transfer_id)
        if transfer is None or not transfer.return_pending:
            return 0
        instruction = transfer.return_instruction
        assert instruction is not None and transfer.sender_sealed is not None
        provider_reference = await self.provider.payout(
            self.vault.open(transfer.sender_sealed),
            Money(amount=instruction.amount, currency=instruction.currency),
            f"RETURN {transfer.transfer_id}", instruction.instruction_id)
        await self.transfers.save_returned(transfer.returned(provider_reference, self.clock.now()))
        return 1
