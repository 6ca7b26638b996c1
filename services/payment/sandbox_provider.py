"""The sandbox provider with records that outlive the process, as a real provider's do.

The payment service runs as several replicas and restarts; a card charged through one
replica is refunded through another, maybe after a kill -9. The in-memory
``SandboxProvider`` forgets its charges with its process, so such a refund failed for ever
and the buyer's money stayed stuck. This sandbox keeps tokens, charges and every movement
in a database of its own (standing for the provider's systems, never read by the
platform's services), and makes each call idempotent the way a provider does: the
movement's id is derived from the idempotency key, so the same key moves money once, on
any replica, even when two send it at the same moment.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.contracts.money import Money
from shared.infra.clock import Clock

from services.payment.cards import CardDetails
from services.payment.provider import (
    SANDBOX_DECLINE,
    SANDBOX_INSUFFICIENT_FUNDS,
    CapturedCharge,
    ChargeResult,
    Payee,
    ProviderError,
    TokenisedCard,
)

DECLINES = {
    "card_declined": "the card was declined",
    "insufficient_funds": "the card has insufficient funds",
}


def _id(prefix: str, idempotency_key: str) -> str:
    return f"{prefix}_sbx_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]}"


class StoredSandboxProvider:
    """``PaymentProvider`` for development, its records in ``database``: ``cards`` (token →
    behaviour), ``charges`` (with what is left to refund) and ``movements`` (every charge,
    refund and payout, the provider's statement)."""

    def __init__(self, database: AsyncDatabase, clock: Clock) -> None:
        self._cards = database["cards"]
        self._charges = database["charges"]
        self._movements = database["movements"]
        self._clock = clock

    async def create_indexes(self) -> None:
        await self._charges.create_index([("captured_at", ASCENDING)])

    async def tokenise(self, card: CardDetails) -> TokenisedCard:
        token = f"tok_sbx_{uuid.uuid4().hex[:20]}"
        behaviour = {SANDBOX_DECLINE: "card_declined",
                     SANDBOX_INSUFFICIENT_FUNDS: "insufficient_funds"}.get(card.digits, "approve")
        await self._cards.insert_one({"_id": token, "behaviour": behaviour, "brand": card.brand,
                                      "last4": card.last4})
        return TokenisedCard(token=token, brand=card.brand, last4=card.last4)

    async def charge(self, token: str, amount: Money, idempotency_key: str) -> ChargeResult:
        card = await self._cards.find_one({"_id": token})
        if card is None:
            return ChargeResult(False, decline_code="invalid_token", message="unknown card token")
        if card["behaviour"] in DECLINES:
            return ChargeResult(False, decline_code=card["behaviour"],
                                message=DECLINES[card["behaviour"]])
        charge_id = _id("ch", idempotency_key)
        try:
            await self._charges.insert_one({
                "_id": charge_id, "idempotency_key": idempotency_key, "currency": amount.currency,
                "amount": amount.amount, "refundable": amount.amount, "refund_keys": [],
                "captured_at": self._clock.now(),
                "card": {"token": token, "brand": card["brand"], "last4": card["last4"]}})
        except DuplicateKeyError:
            pass  # the same key again: the charge it made is the answer
        await self._record_once("charge", charge_id, amount, idempotency_key)
        return ChargeResult(True, charge_id=charge_id)

    async def captured_charges(self, since: datetime) -> list[CapturedCharge]:
        return [CapturedCharge(c["_id"], Money(amount=c["amount"], currency=c["currency"]),
                               c["idempotency_key"], TokenisedCard(**c["card"]), c["captured_at"])
                async for c in self._charges.find({"captured_at": {"$gte": since}})]

    async def refund(self, charge_id: str, amount: Money, idempotency_key: str) -> str:
        """The key and the amount are taken from the charge in one single-document update,
        so two replicas refunding with one key, or two keys racing for the last of a charge,
        can never refund more than was charged."""
        reference = _id("re", idempotency_key)
        taken = await self._charges.update_one(
            {"_id": charge_id, "currency": amount.currency, "refundable": {"$gte": amount.amount},
             "refund_keys": {"$ne": idempotency_key}},
            {"$inc": {"refundable": -amount.amount}, "$push": {"refund_keys": idempotency_key}})
        if taken.matched_count != 1 and not await self._charges.find_one(
                {"_id": charge_id, "refund_keys": idempotency_key}, projection={"_id": 1}):
            raise ProviderError(f"sandbox: no {amount.currency} charge {charge_id} with "
                                f"{amount.amount} left to refund")
        await self._record_once("refund", reference, amount, idempotency_key, to=charge_id)
        return reference

    async def payout(self, payee: Payee, amount: Money, reference: str, idempotency_key: str) -> str:
        provider_reference = _id("po", idempotency_key)
        await self._record_once("payout", provider_reference, amount, idempotency_key,
                                to=payee.account, payout_reference=reference)
        return provider_reference

    async def _record_once(self, kind: str, reference: str, amount: Money, idempotency_key: str,
                           **detail: Any) -> None:
        """The statement line of a movement; its id comes from the key, so it is written once."""
        try:
            await self._movements.insert_one({
                "_id": reference, "kind": kind, "currency": amount.currency, "amount": amount.amount,
                "idempotency_key": idempotency_key, "at": self._clock.now(), **detail})
        except DuplicateKeyError:
            pass
