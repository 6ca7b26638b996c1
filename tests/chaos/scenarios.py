"""Every path of the trade, each played by a ``Trade`` and each knowing where its money must
end. Paths that need a deadline wait for ``later``: the run moves every service's clock 60
days ahead once all other trades are over, so no deadline fires in another trade's way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shared.contracts.parties import Role

from tests.support.platform import eventually
from tests.support.trade import Trade

AGENT = "agent-chaos"


@dataclass(frozen=True)
class Expected:
    closure_reason: str
    paid_in: int
    released: int
    refunded: int


Scenario = Callable[[Trade, asyncio.Event], Awaitable[Expected]]


async def act(trade: Trade, service: str, path: str, who: str | None = None, role: Role | None = None,
              body: Any = None, *, done: Callable[[], Awaitable[None]]) -> None:
    """POST a command; an error answer is accepted only when ``done`` shows that the command
    had already taken effect (a retry after a replica died with the first attempt)."""
    response = await trade.call(service, "POST", path, who, role, body=body if body is not None else {},
                                expect=None)
    if response.status_code >= 400:
        try:
            await done()
        except AssertionError as exc:
            raise AssertionError(f"POST {path}: {response.status_code} {response.text}") from exc


async def dispute_state(trade: Trade, *statuses: str) -> None:
    response = await trade.call("dispute", "GET", f"/orders/{trade.order_id}/dispute", expect=None)
    assert response.status_code == 200 and response.json()["status"] in statuses, response.text


async def wait_dispute(trade: Trade, *statuses: str) -> None:
    await eventually(lambda: dispute_state(trade, *statuses), timeout=180)


async def open_dispute(trade: Trade, requested: str, amount: int | None = None) -> None:
    await act(trade, "dispute", f"/orders/{trade.order_id}/dispute", body={
        "reason": "not_as_described", "requested": requested, "amount": amount,
        "description": "A third of the boxes arrived rusted."},
        done=lambda: dispute_state(trade, "disputed", "escalated", "dispute_resolved"))


async def answer(trade: Trade, answer_: str, amount: int | None = None) -> None:
    await act(trade, "dispute", f"/orders/{trade.order_id}/dispute/answer", trade.supplier,
              body={"answer": answer_, "amount": amount, "message": "Let us sort this out."},
              done=lambda: dispute_state(trade, "disputed", "escalated", "dispute_resolved"))


async def escalate(trade: Trade) -> None:
    await act(trade, "dispute", f"/orders/{trade.order_id}/dispute/escalate",
              done=lambda: dispute_state(trade, "escalated", "dispute_resolved"))


async def decide(trade: Trade, outcome: str, refund_amount: int | None = None) -> None:
    await wait_dispute(trade, "escalated", "dispute_resolved")
    await act(trade, "dispute", f"/orders/{trade.order_id}/dispute/decision", AGENT, Role.AGENT,
              body={"outcome": outcome, "refund_amount": refund_amount,
                    "reason": "Photos show corrosion on a third of the boxes."},
              done=lambda: dispute_state(trade, "dispute_resolved"))


async def paid_by_card(trade: Trade) -> None:
    await trade.place()
    await trade.confirm()
    await trade.pay_by_card()
    await trade.wait_status("paid")


async def shipped(trade: Trade) -> None:
    await paid_by_card(trade)
    await trade.ship()


# --- the paths ------------------------------------------------------------------------------

async def card_happy_path(trade: Trade, later: asyncio.Event) -> Expected:
    await shipped(trade)
    await trade.confirm_receipt()
    return Expected("settled", trade.total, trade.total, 0)


async def transfer_in_two_parts(trade: Trade, later: asyncio.Event) -> Expected:
    await trade.place()
    await trade.confirm()
    first = trade.total // 3
    await trade.transfer(first)
    await trade.transfer(trade.total - first)
    await trade.wait_status("paid")
    await trade.ship()
    await trade.confirm_receipt()
    return Expected("settled", trade.total, trade.total, 0)


async def transfer_overpaid(trade: Trade, later: asyncio.Event) -> Expected:
    await trade.place()
    await trade.confirm()
    await trade.transfer(trade.total + 777)
    await trade.wait_status("paid")
    await trade.ship()
    await trade.confirm_receipt()
    return Expected("settled", trade.total + 777, trade.total, 777)


async def payment_deadline(trade: Trade, later: asyncio.Event) -> Expected:
    await trade.place()
    await trade.confirm()
    part = trade.total // 4
    await trade.transfer(part)
    await later.wait()
    return Expected("payment_not_received", part, 0, part)


async def ship_by_deadline(trade: Trade, later: asyncio.Event) -> Expected:
    await paid_by_card(trade)
    await later.wait()
    return Expected("settled", trade.total, 0, trade.total)


async def receipt_confirmed_automatically(trade: Trade, later: asyncio.Event) -> Expected:
    await shipped(trade)
    await later.wait()
    return Expected("settled", trade.total, trade.total, 0)


async def supplier_accepts_full_refund(trade: Trade, later: asyncio.Event) -> Expected:
    await shipped(trade)
    await open_dispute(trade, "full_refund")
    await answer(trade, "accept")
    return Expected("settled", trade.total, 0, trade.total)


async def counter_offer_accepted(trade: Trade, later: asyncio.Event) -> Expected:
    await shipped(trade)
    disputed = trade.total * 37 // 100 + 1
    counter = disputed // 2
    await open_dispute(trade, "partial_refund", disputed)
    await answer(trade, "counter_offer", counter)
    await act(trade, "dispute", f"/orders/{trade.order_id}/dispute/accept-counter-offer",
              done=lambda: dispute_state(trade, "dispute_resolved"))
    return Expected("settled", trade.total, trade.total - counter, counter)


def escalated_and_decided(outcome: str) -> Scenario:
    async def scenario(trade: Trade, later: asyncio.Event) -> Expected:
        await shipped(trade)
        await open_dispute(trade, "full_refund")
        await answer(trade, "reject")
        await escalate(trade)
        refund = {"full_refund": trade.total, "release": 0}.get(outcome, trade.total // 5)
        await decide(trade, outcome, refund if outcome == "partial_refund" else None)
        return Expected("settled", trade.total, trade.total - refund, refund)
    scenario.__name__ = f"escalated_agent_decides_{outcome}"
    return scenario


async def ignored_dispute_escalates_itself(trade: Trade, later: asyncio.Event) -> Expected:
    await shipped(trade)
    await open_dispute(trade, "full_refund")
    await later.wait()
    await decide(trade, "release")
    return Expected("settled", trade.total, trade.total, 0)


async def withdrawn_then_disputed_again(trade: Trade, later: asyncio.Event) -> Expected:
    await shipped(trade)
    await open_dispute(trade, "full_refund")
    await act(trade, "dispute", f"/orders/{trade.order_id}/dispute/withdraw",
              done=lambda: dispute_state(trade, "withdrawn", "awaiting_receipt"))
    await eventually(lambda: dispute_state(trade, "withdrawn", "awaiting_receipt"), timeout=60)
    await open_dispute(trade, "full_refund")
    await answer(trade, "accept")
    return Expected("settled", trade.total, 0, trade.total)


SCENARIOS: list[Scenario] = [
    card_happy_path, transfer_in_two_parts, transfer_overpaid, payment_deadline, ship_by_deadline,
    receipt_confirmed_automatically, supplier_accepts_full_refund, counter_offer_accepted,
    escalated_and_decided("full_refund"), escalated_and_decided("partial_refund"),
    escalated_and_decided("release"), ignored_dispute_escalates_itself, withdrawn_then_disputed_again,
]
