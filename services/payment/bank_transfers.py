"""Every bank transfer the platform was told about, one document per bank transfer id.

The document is the platform-wide claim on that id: it is inserted (unique ``_id``)
before the money is booked anywhere, so one transfer is booked to one order, or kept as
unmatched and returned, and never both or twice. A transfer whose reference matches no
order keeps the sender's sealed name and account and the instruction that returns it, so
money is never silently dropped, and support can list these from the records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.contracts.trade import PaymentMethod
from shared.infra.sweep import MongoSweepQueue

from services.payment.instructions import Instruction, InstructionKind, InstructionStatus

UNKNOWN_REFERENCE = "unknown_reference"
TOO_MANY_TRANSFERS = "too_many_transfers_to_one_order"


@dataclass(frozen=True)
class TransferReport:
    """An incoming transfer as the bank reports it."""

    transfer_id: str
    reference: str
    amount: int
    currency: str
    sender_name: str
    sender_account: str


class BankTransfer(BaseModel):
    transfer_id: str
    reference: str  # as the sender wrote it
    amount: int
    currency: str
    received_at: datetime
    order_id: str | None = None  # the order it is booked to; None: it matched no order
    sender_sealed: str | None = None  # kept only to return an unmatched transfer
    return_instruction: Instruction | None = None

    @classmethod
    def to_order(cls, report: TransferReport, order_id: str, now: datetime) -> BankTransfer:
        return cls(transfer_id=report.transfer_id, reference=report.reference, amount=report.amount,
                   currency=report.currency, received_at=now, order_id=order_id)

    @classmethod
    def to_return(cls, report: TransferReport, sender_sealed: str, now: datetime,
                  reason: str = UNKNOWN_REFERENCE) -> BankTransfer:
        return cls(transfer_id=report.transfer_id, reference=report.reference, amount=report.amount,
                   currency=report.currency, received_at=now, sender_sealed=sender_sealed,
                   return_instruction=Instruction(
                       instruction_id=f"unmatched:{report.transfer_id}", kind=InstructionKind.RETURN,
                       amount=report.amount, currency=report.currency,
                       method=PaymentMethod.BANK_TRANSFER, source_id=report.transfer_id,
                       reason=reason, created_at=now))

    def is_report_of(self, report: TransferReport) -> bool:
        """The bank reports this transfer again (not other money under its id): whatever its
        text says this time, it follows the first claim."""
        return (self.amount, self.currency) == (report.amount, report.currency)

    @property
    def return_pending(self) -> bool:
        return (self.return_instruction is not None
                and self.return_instruction.status is InstructionStatus.PENDING)

    def returned(self, provider_reference: str, now: datetime) -> BankTransfer:
        assert self.return_instruction is not None
        return self.model_copy(update={
            "return_instruction": self.return_instruction.sent(provider_reference, now)})


@dataclass(frozen=True)
class UnmatchedQuery:
    """What support filters unmatched transfers by; every field optional."""

    currency: str | None = None
    returned: bool | None = None
    received_from: datetime | None = None
    received_until: datetime | None = None
    reference_contains: str | None = None
    limit: int = 100

    def filter(self) -> dict[str, Any]:
        query: dict[str, Any] = {"order_id": None}
        if self.currency:
            query["currency"] = self.currency
        if self.returned is not None:
            query["return_pending"] = not self.returned
        if self.received_from or self.received_until:
            query["received_at"] = {
                **({"$gte": self.received_from} if self.received_from else {}),
                **({"$lt": self.received_until} if self.received_until else {})}
        if self.reference_contains:
            query["reference"] = {"$regex": re.escape(self.reference_contains), "$options": "i"}
        return query


def _document(transfer: BankTransfer) -> dict[str, Any]:
    return {"_id": transfer.transfer_id, **transfer.model_dump(mode="json"),
            "received_at": transfer.received_at, "return_pending": transfer.return_pending,
            # the return sweep's queue (shared.infra.sweep): oldest transfer first
            "due": {"returns": transfer.received_at if transfer.return_pending else None}}


_BOOKKEEPING = ("_id", "return_pending", "due", "failing", "lease")


def _transfer(doc: dict[str, Any]) -> BankTransfer:
    return BankTransfer.model_validate({k: v for k, v in doc.items() if k not in _BOOKKEEPING})


class BankTransfers:
    """The ``bank_transfers`` collection."""

    def __init__(self, collection: AsyncCollection) -> None:
        self._collection = collection

    def queue(self, name: str) -> MongoSweepQueue:
        return MongoSweepQueue(self._collection, name)

    async def create_indexes(self) -> None:
        await self._collection.create_index("return_pending")
        await self.queue("returns").create_indexes()
        await self._collection.create_index([("order_id", 1), ("received_at", -1)])

    async def claim(self, transfer: BankTransfer) -> BankTransfer:
        """Record ``transfer`` unless its id is claimed already; returns what is recorded,
        which is the earlier claim when there is one (a repeated report, or a race)."""
        try:
            await self._collection.insert_one(_document(transfer))
        except DuplicateKeyError:
            claimed = await self.get(transfer.transfer_id)
            assert claimed is not None, "a claim is never deleted"
            return claimed
        return transfer

    async def get(self, transfer_id: str) -> BankTransfer | None:
        doc = await self._collection.find_one({"_id": transfer_id})
        return _transfer(doc) if doc else None

    async def save_returned(self, transfer: BankTransfer) -> None:
        await self._collection.replace_one({"_id": transfer.transfer_id}, _document(transfer))

    async def unmatched(self, query: UnmatchedQuery) -> list[BankTransfer]:
        """Newest first."""
        cursor = self._collection.find(query.filter()).sort("received_at", -1).limit(query.limit)
        return [_transfer(doc) async for doc in cursor]
