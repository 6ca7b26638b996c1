"""The sandbox provider keeps its records in the database, as a real provider keeps its own:
a card charged through one payment replica is refunded through another, even after the
first died, and one idempotency key moves money once however many replicas send it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from shared.contracts.money import Money
from shared.infra.clock import ManualClock

from services.payment.cards import CardDetails
from services.payment.provider import SANDBOX_APPROVE, SANDBOX_DECLINE, Payee, ProviderError
from services.payment.sandbox_provider import StoredSandboxProvider
from tests.support.infra import Infra

pytestmark = pytest.mark.realinfra


@pytest.fixture
async def database(infra: Infra):
    client = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
    name = f"sandbox_{uuid.uuid4().hex[:8]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()


def card(number: str = SANDBOX_APPROVE) -> CardDetails:
    return CardDetails(number=SecretStr(number), expiry_month=12, expiry_year=2031, cvc="123",
                       holder_name="Jane Buyer")


async def test_a_charge_through_one_replica_is_refunded_through_another(database) -> None:
    clock = ManualClock()
    first, second = StoredSandboxProvider(database, clock), StoredSandboxProvider(database, clock)
    await first.create_indexes()
    token = (await first.tokenise(card())).token
    charged = await first.charge(token, Money(amount=10_000, currency="USD"), "ord_1:card:req-1")
    assert charged.approved
    del first  # that replica is gone
    assert await second.refund(charged.charge_id, Money(amount=4_000, currency="USD"),
                               "ord_1:refund:1")
    with pytest.raises(ProviderError, match="left to refund"):
        await second.refund(charged.charge_id, Money(amount=6_001, currency="USD"), "ord_1:refund:2")
    [captured] = await second.captured_charges(clock.now())
    assert (captured.charge_id, captured.amount.amount) == (charged.charge_id, 10_000)


async def test_one_key_moves_money_once_across_replicas_sending_at_once(database) -> None:
    clock = ManualClock()
    replicas = [StoredSandboxProvider(database, clock) for _ in range(8)]
    token = (await replicas[0].tokenise(card())).token
    charges = await asyncio.gather(*(r.charge(token, Money(amount=500, currency="EUR"), "ord_2:card:k")
                                     for r in replicas))
    assert len({c.charge_id for c in charges}) == 1
    charge_id = charges[0].charge_id
    refunds = await asyncio.gather(*(r.refund(charge_id, Money(amount=200, currency="EUR"), "ord_2:refund")
                                     for r in replicas))
    payouts = await asyncio.gather(*(r.payout(Payee("Shenzhen Parts", "party:supplier-1"),
                                              Money(amount=300, currency="EUR"), "ord_2", "ord_2:payout")
                                     for r in replicas))
    assert len(set(refunds)) == 1 and len(set(payouts)) == 1
    moved = [(m["kind"], m["amount"]) async for m in database["movements"].find({})]
    assert sorted(moved) == [("charge", 500), ("payout", 300), ("refund", 200)]
    left = await database["charges"].find_one({"_id": charge_id})
    assert left["refundable"] == 300


async def test_a_declined_card_is_an_answer_not_a_movement(database) -> None:
    provider = StoredSandboxProvider(database, ManualClock())
    token = (await provider.tokenise(card(SANDBOX_DECLINE))).token
    result = await provider.charge(token, Money(amount=500, currency="EUR"), "ord_3:card:k")
    assert (result.approved, result.decline_code) == (False, "card_declined")
    assert await database["movements"].count_documents({}) == 0
