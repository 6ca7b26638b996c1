"""Incoming bank transfers: claim the bank's transfer id platform-wide, match the sender's
text to an order's reference, book it there, or keep it to return to its sender."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from shared.contracts.parties import Role
from shared.domain.actor import Actor
from shared.domain.errors import DomainError, NotFound

from services.payment.bank_transfers import (
    TOO_MANY_TRANSFERS,
    BankTransfer,
    BankTransfers,
    TransferReport,
    UnmatchedQuery,
)
from services.payment.domain import Escrow
from services.payment.escrows import EscrowRunner
from services.payment.reference import find_references
from services.payment.vault import PaymentDataVault

log = logging.getLogger(__name__)


class TransferIdReused(DomainError):
    """The bank reported another transfer under an id already booked (HTTP 409)."""


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


class TransferMatching:
    def __init__(self, runner: EscrowRunner, transfers: BankTransfers, vault: PaymentDataVault) -> None:
        self.runner = runner
        self.transfers = transfers
        self.vault = vault

    async def receive(self, actor: Actor, report: TransferReport) -> TransferOutcome:
        """Book ``report`` once platform-wide: its id is claimed before any booking, and a
        repeated report follows the first claim (completing it after a crash)."""
        actor.require(Role.BANK)
        claimed = await self.transfers.get(report.transfer_id)
        if claimed is None:
            escrow = await self._match(report.reference)
            now = self.runner.clock.now()
            if escrow is None:
                claim = BankTransfer.to_return(report, self._seal(report), now)
            elif not escrow.takes_another_transfer():
                claim = BankTransfer.to_return(report, self._seal(report), now, TOO_MANY_TRANSFERS)
            else:
                claim = BankTransfer.to_order(report, escrow.order_id, now)
            claimed = await self.transfers.claim(claim)
        if not claimed.is_report_of(report):
            raise TransferIdReused(f"bank transfer {report.transfer_id} was reported before with "
                                   "another amount or currency; an id is booked once")
        if claimed.order_id is None:
            log.warning("transfer %s matches no order; it is kept and will be returned",
                        report.transfer_id)
            return self._unmatched_outcome(claimed)
        return await self._book(claimed.order_id, report)

    async def _match(self, text: str) -> Escrow | None:
        """The order of the first reference in ``text`` that belongs to one."""
        for reference in find_references(text):
            found = await self.runner.store.find({"reference": reference}, limit=1)
            if found:
                return found[0]
        return None

    def _seal(self, report: TransferReport) -> str:
        return self.vault.seal(report.sender_name, report.sender_account)

    async def _book(self, order_id: str, report: TransferReport) -> TransferOutcome:
        sealed = self._seal(report)

        def book(escrow: Escrow | None, now: datetime) -> Escrow | None:
            assert escrow is not None
            booked = escrow.receive_bank_transfer(report.transfer_id, report.amount, report.currency,
                                                  sealed, now)
            return escrow if booked else None

        await self.runner.execute(order_id, book)
        escrow = await self.runner.get(order_id)
        assert escrow is not None
        funding = escrow.funding(report.transfer_id)
        assert funding is not None
        return TransferOutcome(
            transfer_id=report.transfer_id, matched=True, order_id=escrow.order_id,
            amount=funding.amount, currency=funding.currency, accepted=funding.accepted,
            returned=funding.amount - funding.accepted, received_total=escrow.received_total,
            remaining=escrow.remaining,
            detail=f"matched order {escrow.order_id}; its escrow is {escrow.status}")

    @staticmethod
    def _unmatched_outcome(transfer: BankTransfer) -> TransferOutcome:
        return TransferOutcome(
            transfer_id=transfer.transfer_id, matched=False, order_id=None, amount=transfer.amount,
            currency=transfer.currency, accepted=0, returned=transfer.amount,
            detail=("its order takes no more transfers" if transfer.return_instruction
                    and transfer.return_instruction.reason == TOO_MANY_TRANSFERS
                    else "the reference matches no order")
            + ": the transfer will be returned to its sender")

    # --- what support sees ---------------------------------------------------------------

    async def unmatched(self, actor: Actor, query: UnmatchedQuery) -> list[BankTransfer]:
        actor.require(Role.AGENT)
        return await self.transfers.unmatched(query)

    async def transfer(self, actor: Actor, transfer_id: str) -> BankTransfer:
        actor.require(Role.AGENT)
        transfer = await self.transfers.get(transfer_id)
        if transfer is None:
            raise NotFound(f"the bank reported no transfer {transfer_id}")
        return transfer
