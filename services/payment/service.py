"""The payment service's jobs, composed: card intake, transfer matching, payouts, returns
of unmatched transfers and the reactions to other services' events, each its own module."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from shared.domain.actor import Actor
from shared.domain.errors import NotPermitted

from services.payment import escrows
from services.payment.bank_transfers import BankTransfers
from services.payment.card_intake import CardIntake
from services.payment.domain import Escrow
from services.payment.escrows import EscrowRunner
from services.payment.handlers import EscrowReactions
from services.payment.payouts import Payouts
from services.payment.provider import PaymentProvider
from services.payment.settings import PaymentSettings
from services.payment.transfer_matching import TransferMatching
from services.payment.unmatched_returns import UnmatchedReturns
from services.payment.vault import PaymentDataVault


@dataclass(frozen=True)
class Payments:
    runner: EscrowRunner
    cards: CardIntake
    transfers: TransferMatching
    payouts: Payouts
    returns: UnmatchedReturns
    reactions: EscrowReactions

    @classmethod
    def create(cls, runner: EscrowRunner, transfers: BankTransfers, provider: PaymentProvider,
               vault: PaymentDataVault, settings: PaymentSettings) -> Payments:
        payouts = Payouts(runner, provider, vault)
        return cls(runner=runner,
                   cards=CardIntake(runner, provider, payouts,
                                    timedelta(seconds=settings.reconcile_window_seconds)),
                   transfers=TransferMatching(runner, transfers, vault), payouts=payouts,
                   returns=UnmatchedReturns(transfers, provider, vault, runner.clock, runner.metrics),
                   reactions=EscrowReactions(runner, settings))

    async def get(self, actor: Actor, order_id: str) -> Escrow:
        escrow = await escrows.load(self.runner, order_id)
        if not escrow.may_read(actor):
            raise NotPermitted("only the order's buyer, its supplier or customer service may see "
                               "its payment")
        return escrow

    async def sweep_instructions(self) -> int:
        """Send pending payouts, refunds and returns, oldest first, each escrow and transfer
        on its own (``shared.infra.sweep``); returns how many went out."""
        return await self.payouts.sweep() + await self.returns.sweep()
