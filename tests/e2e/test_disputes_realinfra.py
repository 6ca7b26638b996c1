"""Disputes end to end on real Kafka, FerretDB and SMTP: negotiation, escalation and the
agents' decisions, each executed exactly once with the ledger balanced."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import pytest

from shared.contracts.parties import Role

from tests.support.platform import Platform, eventually
from tests.support.trade import Trade

pytestmark = pytest.mark.realinfra

BOTH = ("buyer", "supplier")
AGENT = "agent-mia"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()


def each(step: str, *recipients: str) -> list[tuple[str, str]]:
    return [(step, r) for r in recipients or BOTH]


async def shipped_trade(platform: Platform, days_after_shipping: int = 6) -> Trade:
    trade = Trade(platform)
    await trade.paid_trade()
    await trade.ship()
    platform.advance(timedelta(days=days_after_shipping))
    return trade


async def open_dispute(trade: Trade, reason: str, requested: str, amount: int | None = None,
                       expect: int = 201, who: str | None = None, role: Role | None = None,
                       evidence: list | None = None):
    return await trade.call("dispute", "POST", f"/orders/{trade.order_id}/dispute", who, role,
                            expect=expect, body={
                                "reason": reason, "requested": requested, "amount": amount,
                                "description": "The bolts arrived rusted.", "evidence": evidence or []})


async def answer(trade: Trade, answer_: str, amount: int | None = None, expect: int = 200):
    return await trade.call("dispute", "POST", f"/orders/{trade.order_id}/dispute/answer", trade.supplier,
                            expect=expect, body={"answer": answer_, "amount": amount,
                                                 "message": "Let us sort this out."})


async def decide(trade: Trade, outcome: str, refund_amount: int | None = None):
    return await trade.call("dispute", "POST", f"/orders/{trade.order_id}/dispute/decision", AGENT,
                            Role.AGENT, body={"outcome": outcome, "refund_amount": refund_amount,
                                              "reason": "Photos show corrosion on a third of the boxes."})


async def test_not_received_supplier_accepts_full_refund(platform: Platform):
    trade = await shipped_trade(platform)
    opened = (await open_dispute(trade, "not_received", "full_refund", evidence=[
        {"kind": "link", "url": "https://tracking.example/1234567890"},
        {"kind": "attachment", "filename": "photo.png", "content_type": "image/png", "data_base64": PNG},
    ])).json()
    assert opened["dispute"]["disputed_amount"] == trade.total
    await trade.wait_status("in_dispute")
    await answer(trade, "accept")
    order = await trade.wait_status("closed", "settled")
    assert (order["released_total"], order["refunded_total"]) == (0, trade.total)
    await trade.wait_balances(paid_in=trade.total, held=0, released=0, refunded=trade.total)
    await trade.wait_mails(*each("dispute_opened"), *each("dispute_answered"), *each("dispute_resolved"),
                           *each("refund"), *each("order_closed"))


async def test_a_partial_dispute_releases_the_undisputed_part_at_once(platform: Platform):
    trade = await shipped_trade(platform)
    disputed = trade.total * 37 // 100 + 1  # an odd amount: exact to the minor unit
    await open_dispute(trade, "not_as_described", "partial_refund", disputed)
    await trade.wait_balances(paid_in=trade.total, held=disputed, released=trade.total - disputed,
                              refunded=0)
    await trade.wait_mails(*each("dispute_opened"), *each("released"))


async def test_not_as_described_counter_offer_accepted_partial_refund_goods_kept(platform: Platform):
    trade = await shipped_trade(platform)
    disputed, offered = trade.total // 2, trade.total // 5
    await open_dispute(trade, "not_as_described", "partial_refund", disputed)
    await answer(trade, "counter_offer", offered)
    await trade.call("dispute", "POST", f"/orders/{trade.order_id}/dispute/accept-counter-offer", body={})
    order = await trade.wait_status("closed", "settled")
    assert (order["released_total"], order["refunded_total"]) == (trade.total - offered, offered)
    await trade.wait_balances(paid_in=trade.total, held=0, released=trade.total - offered, refunded=offered)
    await trade.wait_mails(*each("dispute_answered"), *each("dispute_resolved"), *each("refund"))


async def test_escalation_decided_as_a_partial_refund(platform: Platform):
    trade = await shipped_trade(platform)
    await open_dispute(trade, "not_as_described", "full_refund")
    await answer(trade, "reject")
    await trade.call("dispute", "POST", f"/orders/{trade.order_id}/dispute/escalate", body={})
    queue = (await trade.call("dispute", "GET", "/disputes/escalated", AGENT, Role.AGENT)).json()
    mine = [d for d in queue if d["order_id"] == trade.order_id]
    assert mine and any(h["what"] == "dispute.answered" for h in mine[0]["history"])
    await trade.call("dispute", "GET", "/disputes/escalated", trade.buyer, Role.BUYER, expect=403)
    refund = trade.total // 3
    await decide(trade, "partial_refund", refund)
    order = await trade.wait_status("closed", "settled")
    assert (order["released_total"], order["refunded_total"]) == (trade.total - refund, refund)
    await trade.wait_balances(paid_in=trade.total, held=0, released=trade.total - refund, refunded=refund)
    mails = await trade.wait_mails(*each("dispute_escalated"), *each("dispute_resolved"))
    escalated = [m for m in mails if m.headers.get("x-escrow-step") == "dispute_escalated"]
    assert len({address for m in escalated for address in m.to}) == 3  # buyer, supplier, customer service
    response = await decide_again(trade)
    assert response.status_code == 409


async def decide_again(trade: Trade):
    return await trade.call("dispute", "POST", f"/orders/{trade.order_id}/dispute/decision", AGENT,
                            Role.AGENT, expect=None,
                            body={"outcome": "release", "reason": "second thoughts"})


async def test_escalation_after_an_unanswered_dispute_decided_as_release(platform: Platform):
    trade = await shipped_trade(platform)
    await open_dispute(trade, "other", "full_refund")
    early = await trade.call("dispute", "POST", f"/orders/{trade.order_id}/dispute/escalate", body={},
                             expect=None)
    assert early.status_code == 409, early.text
    platform.advance(timedelta(days=5, minutes=1))
    await trade.call("dispute", "POST", f"/orders/{trade.order_id}/dispute/escalate", body={})
    await decide(trade, "release")
    order = await trade.wait_status("closed", "settled")
    assert (order["released_total"], order["refunded_total"]) == (trade.total, 0)
    await trade.wait_balances(paid_in=trade.total, held=0, released=trade.total, refunded=0)


async def test_the_buyer_withdraws_and_automatic_confirmation_resumes(platform: Platform):
    trade = await shipped_trade(platform)
    await open_dispute(trade, "not_received", "full_refund")
    protection = (await trade.call("dispute", "GET", f"/orders/{trade.order_id}/protection")).json()
    assert protection["receipt"]["auto_confirm_at"] is None  # the clock stops while disputed
    platform.advance(timedelta(days=40))  # far past the original auto-confirmation
    await trade.call("dispute", "POST", f"/orders/{trade.order_id}/dispute/withdraw", body={})
    await trade.wait_status("shipped")
    assert (await trade.order())["status"] == "shipped"
    platform.advance(timedelta(days=25))  # the time that was left, give or take the day's hours
    order = await trade.wait_status("closed", "settled")
    assert order["released_total"] == trade.total
    await trade.wait_balances(paid_in=trade.total, held=0, released=trade.total, refunded=0)
    await trade.wait_mails(*each("dispute_withdrawn"), *each("receipt_confirmed"), *each("released"))


async def test_after_a_withdrawal_the_buyer_disputes_again_and_gets_what_was_still_held(
        platform: Platform):
    trade = await shipped_trade(platform)
    disputed = trade.total // 4
    await open_dispute(trade, "not_as_described", "partial_refund", disputed)
    await trade.wait_balances(held=disputed, released=trade.total - disputed)
    await trade.call("dispute", "POST", f"/orders/{trade.order_id}/dispute/withdraw", body={})
    await trade.wait_status("shipped")
    again = (await open_dispute(trade, "not_received", "full_refund")).json()
    assert again["dispute"]["disputed_amount"] == disputed  # the rest was released already
    await trade.wait_status("in_dispute")
    await answer(trade, "accept")
    order = await trade.wait_status("closed", "settled")
    assert (order["released_total"], order["refunded_total"]) == (trade.total - disputed, disputed)
    await trade.wait_balances(paid_in=trade.total, held=0, released=trade.total - disputed,
                              refunded=disputed)


async def test_a_late_proof_gives_the_buyer_the_full_window_from_its_submission(
        platform: Platform):
    """Issue 9.3: goods shipped on day 1, proof uploaded on day 9."""
    trade = Trade(platform)
    await trade.paid_trade()
    shipped_on = platform.clock.now().date() + timedelta(days=1)
    platform.advance(timedelta(days=9))
    await trade.ship(ship_date=shipped_on)
    protection = (await trade.call("dispute", "GET", f"/orders/{trade.order_id}/protection")).json()
    [dispatch] = [h for h in protection["history"] if h["what"] == "shipment dispatched"]
    submitted = datetime.fromisoformat(dispatch["detail"]["dispatched_at"])
    assert datetime.fromisoformat(protection["dispute_opens_at"]) == submitted + timedelta(days=5)
    platform.advance(timedelta(days=25))  # past the ship date + 30 days, not the proof + 30
    # An opening applies the due deadlines first: had the automatic confirmation run from
    # the ship date, it would be refused as too late.
    await open_dispute(trade, "not_received", "full_refund")
    await trade.wait_status("in_dispute")


async def test_window_party_and_amount_rules_give_clear_errors(platform: Platform):
    trade = await shipped_trade(platform, days_after_shipping=2)
    too_early = (await open_dispute(trade, "not_received", "full_refund", expect=None)).json()
    assert too_early["status"] == 409 and too_early["detail"].startswith("too early"), too_early
    platform.advance(timedelta(days=4))
    supplier = await open_dispute(trade, "other", "full_refund", who=trade.supplier, role=Role.SUPPLIER,
                                  expect=403)
    assert supplier.json()["title"] == "Not permitted"
    too_much = (await open_dispute(trade, "not_as_described", "partial_refund", trade.total + 1,
                                   expect=422)).json()
    assert too_much["errors"][0]["field"] == "amount"
    await trade.confirm_receipt()
    too_late = (await open_dispute(trade, "not_received", "full_refund", expect=None)).json()
    assert too_late["status"] == 409 and "receipt" in too_late["detail"]
    await trade.wait_status("closed", "settled")


async def test_messages_between_the_parties_are_kept_and_mailed_to_the_other_side(platform: Platform):
    trade = Trade(platform)
    await trade.place()
    await trade.call("order", "POST", f"/orders/{trade.order_id}/messages", expect=201,
                     body={"text": "Can you ship by Friday?"})
    await trade.call("order", "POST", f"/orders/{trade.order_id}/messages", trade.supplier, expect=201,
                     body={"text": "Yes, by DHL."})
    messages = (await trade.call("order", "GET", f"/orders/{trade.order_id}/messages", trade.supplier)).json()
    assert [m["text"] for m in messages] == ["Can you ship by Friday?", "Yes, by DHL."]

    async def one_each_way():
        posted = [m for m in trade.mails() if m.headers.get("x-escrow-step") == "message_posted"]
        assert sorted(a for m in posted for a in m.to) == sorted([trade.buyer_email, trade.supplier_email])
    await eventually(one_each_way)
