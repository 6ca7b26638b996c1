"""Transfers whose reference matches no order: kept with an instruction to return them, so
money is never silently dropped. The sender's name and account are stored sealed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.contracts.trade import PaymentMethod
from services.payment.domain import Instruction, InstructionKind, InstructionStatus

UNKNOWN_REFERENCE = "unknown_reference"


class UnmatchedTransfer(BaseModel):
    transfer_id: str
    reference: str  # as the sender wrote it
    amount: int
    currency: str
    sender_sealed: str
    received_at: datetime
    return_instruction: Instruction

    @classmethod
    def to_return(cls, transfer_id: str, reference: str, amount: int, currency: str,
                  sender_sealed: str, now: datetime) -> UnmatchedTransfer:
        return cls(transfer_id=transfer_id, reference=reference, amount=amount, currency=currency,
                   sender_sealed=sender_sealed, received_at=now, return_instruction=Instruction(
                       instruction_id=f"unmatched:{transfer_id}", kind=InstructionKind.RETURN,
                       amount=amount, currency=currency, method=PaymentMethod.BANK_TRANSFER,
                       source_id=transfer_id, reason=UNKNOWN_REFERENCE, created_at=now))

    def returned(self, provider_reference: str, now: datetime) -> UnmatchedTransfer:
        instruction = self.return_instruction.model_copy(update={
            "status": InstructionStatus.SENT, "sent_at": now, "provider_reference": provider_reference})
        return self.model_copy(update={"return_instruction": instruction})


def _document(transfer: UnmatchedTransfer) -> dict[str, Any]:
    return {"_id": transfer.transfer_id, **transfer.model_dump(mode="json"),
            "return_pending": transfer.return_instruction.status is InstructionStatus.PENDING}


class UnmatchedTransfers:
    """The ``unmatched_transfers`` collection, one document per bank transfer id."""

    def __init__(self, collection: AsyncCollection) -> None:
        self._collection = collection

    async def create_indexes(self) -> None:
        await self._collection.create_index("return_pending")

    async def add(self, transfer: UnmatchedTransfer) -> bool:
        """False if this transfer id is kept already (a repeated report)."""
        try:
            await self._collection.insert_one(_document(transfer))
        except DuplicateKeyError:
            return False
        return True

    async def get(self, transfer_id: str) -> UnmatchedTransfer | None:
        doc = await self._collection.find_one({"_id": transfer_id})
        return UnmatchedTransfer.model_validate(doc) if doc else None

    async def pending_returns(self, limit: int = 200) -> list[UnmatchedTransfer]:
        cursor = self._collection.find({"return_pending": True}).limit(limit)
        return [UnmatchedTransfer.model_validate(doc) async for doc in cursor]

    async def save_returned(self, transfer: UnmatchedTransfer) -> None:
        await self._collection.replace_one({"_id": transfer.transfer_id}, _document(transfer))


class InMemoryUnmatchedTransfers:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def create_indexes(self) -> None:
        return None

    async def add(self, transfer: UnmatchedTransfer) -> bool:
        if transfer.transfer_id in self.docs:
            return False
        self.docs[transfer.transfer_id] = _document(transfer)
        return True

    async def get(self, transfer_id: str) -> UnmatchedTransfer | None:
        doc = self.docs.get(transfer_id)
        return UnmatchedTransfer.model_validate(doc) if doc else None

    async def pending_returns(self, limit: int = 200) -> list[UnmatchedTransfer]:
        return [UnmatchedTransfer.model_validate(d) for d in self.docs.values()
                if d["return_pending"]][:limit]

    async def save_returned(self, transfer: UnmatchedTransfer) -> None:
        self.docs[transfer.transfer_id] = _document(transfer)
