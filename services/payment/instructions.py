"""Money going out: an instruction to the payment provider, kept pending until the
provider confirmed it. The instruction id is the provider's idempotency key, so sending
one again after a crash moves nothing twice."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from shared.contracts.trade import PaymentMethod


class InstructionKind(StrEnum):
    PAYOUT = "payout"  # release to the supplier
    REFUND = "refund"  # back to the buyer through the method they paid with
    RETURN = "return"  # money that was never owed, back to its sender


class InstructionStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"


class Instruction(BaseModel):
    instruction_id: str  # also the provider's idempotency key
    kind: InstructionKind
    amount: int = Field(gt=0)
    currency: str
    method: PaymentMethod
    source_id: str | None = None  # the charge or transfer the money goes back through
    reason: str
    status: InstructionStatus = InstructionStatus.PENDING
    created_at: datetime
    sent_at: datetime | None = None
    provider_reference: str | None = None

    def sent(self, provider_reference: str, now: datetime) -> Instruction:
        return self.model_copy(update={"status": InstructionStatus.SENT, "sent_at": now,
                                       "provider_reference": provider_reference})
