"""The adapter to the outside world that moves real money, and its sandbox.

Every call that moves money takes an idempotency key: calling again with the same key
returns the first answer and moves nothing more. The payment service relies on this to
send each instruction at least once while money moves exactly once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared.contracts.money import Money
from shared.infra.clock import Clock, SystemClock

from services.payment.cards import CardDetails


class ProviderError(Exception):
    """The provider refused or failed a call; a retry with the same key is safe."""


@dataclass(frozen=True)
class TokenisedCard:
    token: str
    brand: str
    last4: str


@dataclass(frozen=True)
class ChargeResult:
    approved: bool
    charge_id: str | None = None
    decline_code: str | None = None  # "card_declined", "insufficient_funds", ...
    message: str = ""


@dataclass(frozen=True)
class CapturedCharge:
    """A charge as the provider reports it when listing what it captured."""

    charge_id: str
    amount: Money
    idempotency_key: str
    card: TokenisedCard
    captured_at: datetime


@dataclass(frozen=True)
class Payee:
    """Where a payout goes: a named account (an IBAN, or the provider's account id of an
    onboarded party, ``party:<party_id>``)."""

    name: str
    account: str

    def __repr__(self) -> str:  # keeps account numbers out of any log line
        return f"Payee(name=<hidden>, account=<hidden …{self.account[-4:]}>)"


class PaymentProvider(Protocol):
    async def tokenise(self, card: CardDetails) -> TokenisedCard:
        """Hand the card to the provider's vault; from now on only the token is used."""

    async def charge(self, token: str, amount: Money, idempotency_key: str) -> ChargeResult:
        """Capture ``amount`` from the tokenised card (a decline is an answer, not an error)."""

    async def captured_charges(self, since: datetime) -> list[CapturedCharge]:
        """Every charge captured since ``since``: what reconciliation checks the ledger against."""

    async def refund(self, charge_id: str, amount: Money, idempotency_key: str) -> str:
        """Give ``amount`` of a captured charge back to the card; returns the provider's reference."""

    async def payout(self, payee: Payee, amount: Money, reference: str, idempotency_key: str) -> str:
        """Send money by bank transfer; returns the provider's reference."""


SANDBOX_APPROVE = "4242424242424242"
SANDBOX_DECLINE = "4000000000000002"
SANDBOX_INSUFFICIENT_FUNDS = "4000000000009995"


@dataclass(frozen=True)
class Movement:
    """Money the sandbox moved: what a test checks to prove each cent moved once."""

    kind: str  # "charge", "refund" or "payout"
    reference: str
    amount: Money
    to: str = ""


@dataclass
class SandboxProvider:
    """Stands in for a card processor and a bank on a developer machine.

    Cards: 4242 4242 4242 4242 approves, 4000 0000 0000 0002 is declined,
    4000 0000 0000 9995 fails for insufficient funds; any other Luhn-valid number approves.
    Only the behaviour of a card is remembered with its token, never the number.
    """

    movements: list[Movement] = field(default_factory=list)
    clock: Clock = field(default_factory=SystemClock)
    failures_to_inject: int = 0
    _behaviour: dict[str, str] = field(default_factory=dict)
    _answers: dict[str, object] = field(default_factory=dict)
    _charges: dict[str, Money] = field(default_factory=dict)
    _captured: list[CapturedCharge] = field(default_factory=list)
    _cards: dict[str, TokenisedCard] = field(default_factory=dict)
    _refunded: dict[str, int] = field(default_factory=dict)

    async def tokenise(self, card: CardDetails) -> TokenisedCard:
        token = f"tok_sbx_{uuid.uuid4().hex[:20]}"
        self._behaviour[token] = {SANDBOX_DECLINE: "card_declined",
                                  SANDBOX_INSUFFICIENT_FUNDS: "insufficient_funds"}.get(card.digits, "approve")
        self._cards[token] = TokenisedCard(token=token, brand=card.brand, last4=card.last4)
        return self._cards[token]

    def _failing(self) -> None:
        if self.failures_to_inject:
            self.failures_to_inject -= 1
            raise ProviderError("sandbox: injected outage")

    async def charge(self, token: str, amount: Money, idempotency_key: str) -> ChargeResult:
        self._failing()
        if idempotency_key in self._answers:
            return self._answers[idempotency_key]  # type: ignore[return-value]
        behaviour = self._behaviour.get(token)
        if behaviour is None:
            result = ChargeResult(False, decline_code="invalid_token", message="unknown card token")
        elif behaviour == "approve":
            charge_id = f"ch_sbx_{uuid.uuid4().hex[:20]}"
            self._charges[charge_id] = amount
            self._captured.append(CapturedCharge(charge_id, amount, idempotency_key,
                                                 self._cards[token], self.clock.now()))
            self.movements.append(Movement("charge", charge_id, amount))
            result = ChargeResult(True, charge_id=charge_id)
        elif behaviour == "insufficient_funds":
            result = ChargeResult(False, decline_code="insufficient_funds",
                                  message="the card has insufficient funds")
        else:
            result = ChargeResult(False, decline_code="card_declined", message="the card was declined")
        self._answers[idempotency_key] = result
        return result

    async def captured_charges(self, since: datetime) -> list[CapturedCharge]:
        self._failing()
        return [c for c in self._captured if c.captured_at >= since]

    async def refund(self, charge_id: str, amount: Money, idempotency_key: str) -> str:
        self._failing()
        if idempotency_key in self._answers:
            return self._answers[idempotency_key]  # type: ignore[return-value]
        charged = self._charges.get(charge_id)
        if charged is None or charged.currency != amount.currency:
            raise ProviderError(f"sandbox: no {amount.currency} charge {charge_id}")
        if self._refunded.get(charge_id, 0) + amount.amount > charged.amount:
            raise ProviderError(f"sandbox: refunds of {charge_id} would exceed the charge")
        self._refunded[charge_id] = self._refunded.get(charge_id, 0) + amount.amount
        reference = f"re_sbx_{uuid.uuid4().hex[:20]}"
        self.movements.append(Movement("refund", reference, amount, to=charge_id))
        self._answers[idempotency_key] = reference
        return reference

    async def payout(self, payee: Payee, amount: Money, reference: str, idempotency_key: str) -> str:
        self._failing()
        if idempotency_key in self._answers:
            return self._answers[idempotency_key]  # type: ignore[return-value]
        provider_reference = f"po_sbx_{uuid.uuid4().hex[:20]}"
        self.movements.append(Movement("payout", provider_reference, amount, to=payee.account))
        self._answers[idempotency_key] = provider_reference
        return provider_reference
