"""Transfers that matched no order go back to their senders."""

from __future__ import annotations

import logging

from shared.contracts.money import Money
from shared.infra.clock import Clock
from services.payment.bank_transfers import BankTransfer, BankTransfers
from services.payment.provider import PaymentProvider
from services.payment.vault import PaymentDataVault

log = logging.getLogger(__name__)


class UnmatchedReturns:
    def __init__(self, transfers: BankTransfers, provider: PaymentProvider, vault: PaymentDataVault,
                 clock: Clock) -> None:
        self.transfers = transfers
        self.provider = provider
        self.vault = vault
        self.clock = clock

    async def send(self, transfer: BankTransfer) -> int:
        instruction = transfer.return_instruction
        assert instruction is not None and transfer.sender_sealed is not None
        try:
            provider_reference = await self.provider.payout(
                self.vault.open(transfer.sender_sealed),
                Money(amount=instruction.amount, currency=instruction.currency),
                f"RETURN {transfer.transfer_id}", instruction.instruction_id)
        except Exception as exc:
            log.warning("return of unmatched transfer %s not sent (%s: %s); the sweep retries it",
                        transfer.transfer_id, type(exc).__name__, exc)
            return 0
        await self.transfers.save_returned(transfer.returned(provider_reference, self.clock.now()))
        return 1

    async def sweep(self) -> int:
        sent = 0
        for transfer in await self.transfers.pending_returns():
            sent += await self.send(transfer)
        return sent
