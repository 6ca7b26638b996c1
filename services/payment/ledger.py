"""The double-entry bookkeeping of one escrow.

Accounts (balance = debits - credits):
- ``buyer_funds``: outside the platform, where paid-in money came from (credited on pay-in,
  so ``paid_in`` is minus its balance);
- ``escrow_held``: what escrow holds now;
- ``supplier_payouts``: released to the supplier;
- ``buyer_refunds``: sent back to whoever paid, i.e. refunds and returned money
  (overpayments, money for an order that takes no more).

Each movement is one journal entry (debit one account, credit another, same amount) with
a deterministic id, so the same movement cannot be booked twice, and
``paid_in == held + released + refunded`` holds after every entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class LedgerBroken(Exception):
    """The ledger does not balance. It must never happen: it is a bug, not a rule."""


class Account(StrEnum):
    BUYER_FUNDS = "buyer_funds"
    ESCROW_HELD = "escrow_held"
    SUPPLIER_PAYOUTS = "supplier_payouts"
    BUYER_REFUNDS = "buyer_refunds"


class LedgerEntry(BaseModel):
    entry_id: str
    at: datetime
    debit: Account
    credit: Account
    amount: int = Field(gt=0)
    memo: str


def balance(entries: list[LedgerEntry], account: Account) -> int:
    return (sum(e.amount for e in entries if e.debit is account)
            - sum(e.amount for e in entries if e.credit is account))


def book(entries: list[LedgerEntry], entry_id: str, debit: Account, credit: Account, amount: int,
         now: datetime, memo: str) -> bool:
    """Append one balanced entry; False (and nothing booked) if this movement exists."""
    if any(e.entry_id == entry_id for e in entries):
        return False
    entries.append(LedgerEntry(entry_id=entry_id, at=now, debit=debit, credit=credit,
                               amount=amount, memo=memo))
    return True


@dataclass(frozen=True)
class Figures:
    """Where the money of one escrow is, read from its entries."""

    paid_in: int
    held: int
    released: int
    refunded: int

    @classmethod
    def of(cls, entries: list[LedgerEntry]) -> Figures:
        return cls(paid_in=-balance(entries, Account.BUYER_FUNDS),
                   held=balance(entries, Account.ESCROW_HELD),
                   released=balance(entries, Account.SUPPLIER_PAYOUTS),
                   refunded=balance(entries, Account.BUYER_REFUNDS))

    def problems(self) -> list[str]:
        """What breaks the ledger identity, in words; empty when it holds."""
        problems = []
        if self.paid_in != self.held + self.released + self.refunded:
            problems.append(f"paid in {self.paid_in} != held {self.held} + released "
                            f"{self.released} + refunded {self.refunded}")
        if min(self.paid_in, self.held, self.released, self.refunded) < 0:
            problems.append(f"a negative figure: paid in {self.paid_in}, held {self.held}, "
                            f"released {self.released}, refunded {self.refunded}")
        return problems
