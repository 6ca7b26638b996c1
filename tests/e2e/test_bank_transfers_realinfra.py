"""Bank transfers on the real servers: one bank transfer id is booked once platform-wide
even when its reports race each other to two orders, only signed reports from the bank
role count, and support finds money that matched no order, and sees it returned."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from shared.contracts.parties import Role

from tests.support.platform import Platform, eventually
from tests.support.trade import Trade

pytestmark = pytest.mark.realinfra


async def test_reports_of_one_transfer_id_racing_to_two_orders_book_it_once(platform: Platform):
    first, second = Trade(platform), Trade(platform)
    for trade in (first, second):
        await trade.place()
        await trade.confirm()
    references = [(await t.payment())["transfer_instructions"]["reference"] for t in (first, second)]
    transfer_id = f"tt-{uuid.uuid4().hex}"
    answers = await asyncio.gather(*(  # each report differs, else it would be a replay
        first.transfer(10_000, transfer_id, reference=f"{references[n % 2]} #{n}") for n in range(10)))
    assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
    [booked_to] = {a.json()["order_id"] for a in answers}
    paid = {t.order_id: (await t.balances())["paid_in"] for t in (first, second)}
    assert sorted(paid.values()) == [0, 10_000] and paid[booked_to] == 10_000
    async with platform.client("payment", "agent-1", Role.AGENT) as agent:
        where = (await agent.get(f"/bank/transfers/{transfer_id}")).json()
    assert where["order_id"] == booked_to


async def test_only_signed_reports_of_the_bank_count_and_unmatched_money_goes_back(platform: Platform):
    trade = Trade(platform)
    await trade.place()
    await trade.confirm()
    reference = (await trade.payment())["transfer_instructions"]["reference"]
    unsigned = {"transfer_id": f"tt-{uuid.uuid4().hex}", "reference": reference, "amount": 500,
                "currency": "USD", "sender_name": "X", "sender_account": "DE89370400440532013000"}
    async with platform.client("payment", trade.buyer, Role.SERVICE) as service:
        assert (await service.post("/bank/transfers", json=unsigned)).status_code == 403
    async with platform.client("payment", "sandbox-bank", Role.BANK) as bank:
        assert (await bank.post("/bank/transfers", json=unsigned)).status_code == 401
    assert (await trade.balances())["paid_in"] == 0

    stray = f"rent {uuid.uuid4().hex[:8]}"
    kept = await trade.transfer(7_000, reference=stray, currency="NZD")
    assert kept.status_code == 202

    async def returned() -> dict:
        async with platform.client("payment", "agent-1", Role.AGENT) as agent:
            found = (await agent.get("/bank/transfers/unmatched",
                                     params={"reference_contains": stray})).json()
        assert [t["amount"] for t in found] == [7_000] and found[0]["return_status"] == "sent", found
        return found[0]
    assert (await eventually(returned))["currency"] == "NZD"


async def test_money_in_a_currency_the_order_is_not_in_goes_back_and_the_buyer_is_told(
        platform: Platform):
    trade = Trade(platform)
    await trade.place()
    await trade.confirm()
    answer = await trade.transfer(12_345, currency="NZD")
    assert (answer.status_code, answer.json()["returned"]) == (200, 12_345)

    async def sent_back() -> None:
        payment = await trade.payment()
        [instruction] = payment["instructions"]
        assert (instruction["currency"], instruction["status"]) == ("NZD", "sent"), instruction
    await eventually(sent_back)
    [mail] = [m for m in await trade.wait_mails(("funds_returned", "buyer"))
              if m.headers.get("x-escrow-step") == "funds_returned"]
    assert "NZD 123.45" in mail.text
    assert (await trade.balances())["paid_in"] == 0
