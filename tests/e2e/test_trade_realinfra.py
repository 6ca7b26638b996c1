"""The escrow trade end to end, across the five services, on real Kafka, FerretDB and SMTP.
Deadlines are driven by the shared manual clock, never by waiting."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.contracts.parties import Role

from tests.support.platform import Platform
from tests.support.trade import Trade

pytestmark = pytest.mark.realinfra

BOTH = ("buyer", "supplier")


def each(step: str, *recipients: str) -> list[tuple[str, str]]:
    return [(step, r) for r in recipients or BOTH]


async def test_card_payment_happy_path_releases_to_the_supplier(platform: Platform):
    trade = Trade(platform)
    await trade.paid_trade()
    await trade.ship()
    await trade.confirm_receipt()
    order = await trade.wait_status("closed", "settled")
    assert (order["released_total"], order["refunded_total"]) == (trade.total, 0)
    await trade.wait_balances(paid_in=trade.total, held=0, released=trade.total, refunded=0)
    payment = await trade.payment()
    assert payment["card"]["last4"] == "4242" and "4242424242424242" not in str(payment)
    await trade.wait_mails(
        *each("order_placed"), *each("order_confirmed"), *each("payment_instructions"),
        *each("payment_received"), *each("shipment_expected"), *each("shipped"),
        *each("receipt_confirmed"), *each("released"), *each("order_closed"))


async def test_two_partial_transfers_fund_escrow_then_release(platform: Platform):
    trade = Trade(platform)
    await trade.place()
    await trade.confirm()
    first = trade.total // 3
    await trade.transfer(first)
    await trade.wait_balances(paid_in=first, held=first)
    assert (await trade.order())["status"] == "awaiting_payment"
    await trade.transfer(trade.total - first)
    await trade.wait_status("paid")
    await trade.wait_balances(paid_in=trade.total, held=trade.total)
    await trade.ship()
    await trade.confirm_receipt()
    await trade.wait_status("closed", "settled")
    await trade.wait_balances(paid_in=trade.total, held=0, released=trade.total, refunded=0)
    await trade.wait_mails(("transfer_received", "buyer"), *each("payment_received"), *each("released"))


async def test_a_repeated_bank_report_counts_once(platform: Platform):
    trade = Trade(platform)
    await trade.place()
    await trade.confirm()
    await trade.transfer(1000, transfer_id="bank-tx-1")
    await trade.transfer(1000, transfer_id="bank-tx-1")
    await trade.wait_balances(paid_in=1000, held=1000)


async def test_an_overpayment_is_returned(platform: Platform):
    trade = Trade(platform)
    await trade.place()
    await trade.confirm()
    await trade.transfer(trade.total + 500)
    await trade.wait_status("paid")
    await trade.wait_balances(paid_in=trade.total + 500, held=trade.total, released=0, refunded=500)
    await trade.wait_mails(("funds_returned", "buyer"), *each("payment_received"))


async def test_payment_deadline_closes_the_order_and_returns_a_partial_transfer(platform: Platform):
    trade = Trade(platform)
    await trade.place()
    await trade.confirm()
    await trade.transfer(700)
    await trade.wait_balances(paid_in=700, held=700)
    platform.advance(timedelta(days=17, minutes=1))
    await trade.wait_mails(*each("payment_due_soon"))
    platform.advance(timedelta(days=3))
    await trade.wait_status("closed", "payment_not_received")
    await trade.wait_balances(paid_in=700, held=0, released=0, refunded=700)
    await trade.transfer(300)  # money after the order closed goes back too
    await trade.wait_balances(paid_in=1000, held=0, released=0, refunded=1000)
    await trade.wait_mails(*each("payment_due_soon"), *each("payment_deadline_passed"), *each("refund"))


async def test_no_dispatch_proof_by_the_deadline_refunds_the_buyer_in_full(platform: Platform):
    trade = Trade(platform)
    await trade.paid_trade()
    await trade.shipment_expected()  # else the clock may pass the reminder before it is set
    platform.advance(timedelta(days=8, minutes=1))
    await trade.wait_mails(*each("shipment_due_soon"))
    platform.advance(timedelta(days=2))
    order = await trade.wait_status("closed", "settled")
    assert (order["released_total"], order["refunded_total"]) == (0, trade.total)
    await trade.wait_balances(paid_in=trade.total, held=0, released=0, refunded=trade.total)
    await trade.wait_mails(*each("shipment_due_soon"), *each("dispatch_deadline_missed"),
                           *each("refund"), *each("order_closed"))


async def test_receipt_is_confirmed_automatically_and_the_money_released(platform: Platform):
    trade = Trade(platform)
    await trade.paid_trade()
    await trade.ship()
    platform.advance(timedelta(days=27, minutes=1))
    await trade.wait_mails(*each("receipt_auto_confirm_soon"))
    platform.advance(timedelta(days=3))
    order = await trade.wait_status("closed", "settled")
    assert order["released_total"] == trade.total
    assert any(e["what"] == "receipt confirmed" and e["detail"].get("confirmed_by") == "automatic"
               for e in order["timeline"])
    await trade.wait_balances(paid_in=trade.total, held=0, released=trade.total, refunded=0)
    await trade.wait_mails(*each("receipt_auto_confirm_soon"), *each("receipt_confirmed"),
                           *each("released"))


async def test_a_buyer_cannot_act_on_another_buyers_order(platform: Platform):
    trade = Trade(platform)
    await trade.place()
    await trade.confirm()
    intruder = "buyer-intruder"
    await trade.call("order", "GET", f"/orders/{trade.order_id}", intruder, Role.BUYER, expect=403)
    await trade.call("order", "POST", f"/orders/{trade.order_id}/cancel", intruder, Role.BUYER,
                     body={"reason": "mine now"}, expect=403)
    await trade.call("payment", "POST", f"/orders/{trade.order_id}/payments/card", intruder, Role.BUYER,
                     body={"number": "4242424242424242", "expiry_month": 12, "expiry_year": 2031,
                           "cvc": "123", "holder_name": "Mallory"}, expect=403)
    await trade.call("payment", "GET", f"/orders/{trade.order_id}/ledger", intruder, Role.BUYER, expect=403)
    async with platform.client("order", trade.buyer, Role.BUYER) as anonymous:
        anonymous.headers.pop("authorization")
        assert (await anonymous.get(f"/orders/{trade.order_id}")).status_code == 401
    assert (await trade.order())["status"] == "awaiting_payment"


async def test_a_declined_card_leaves_the_order_payable(platform: Platform):
    trade = Trade(platform)
    await trade.place()
    await trade.confirm()
    response = await trade.pay_by_card("4000000000000002", expect=None)
    assert response.status_code in (402, 422) and response.json()["title"]
    await trade.wait_mails(("card_declined", "buyer"))
    await trade.pay_by_card()
    await trade.wait_status("paid")
