"""Reconciliation over all orders: each escrow's ledger against its own invariants (the
payment service's ``check_ledger``: paid in = held + released + refunded, instructions
carry every outgoing cent, nothing negative, nothing held once settled), money movements
that stay unsent too long, and each closed order's totals against its escrow. The operator layer sits above the services
(tests/unit/test_layering.py), so it reuses the payment service's invariant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.ops.records import Records

from services.payment.domain import Escrow  # the invariant, defined once
from services.payment.ledger import LedgerBroken


async def reconcile(records: Records, *, stuck_after: timedelta,
                    now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    problems: list[dict[str, str]] = []
    escrows = await records.all_of("payment")
    for doc in escrows:
        order_id = doc["_id"]
        escrow = Escrow.model_validate(doc["state"])
        try:
            escrow.check_ledger()
        except LedgerBroken as broken:
            problems.append({"order_id": order_id, "problem": "ledger", "detail": str(broken)})
        for instruction in escrow.instructions:
            if str(instruction.status) == "pending" and now - instruction.created_at > stuck_after:
                problems.append({"order_id": order_id, "problem": "stuck instruction",
                                 "detail": f"{instruction.kind} {instruction.instruction_id} of "
                                           f"{instruction.amount} {instruction.currency} pending "
                                           f"since {instruction.created_at.isoformat()}"})
        order = await records.one("order", order_id)
        if order and order["state"].get("status") == "closed":
            state = order["state"]
            for figure, expected in (("released_total", escrow.released),
                                     ("refunded_total", escrow.refunded)):
                if state.get(figure, 0) != expected:
                    problems.append({"order_id": order_id, "problem": "order and escrow disagree",
                                     "detail": f"order {figure} {state.get(figure)} != escrow {expected}"})
    return {"escrows_checked": len(escrows), "problems": problems}


def render(result: dict[str, Any]) -> str:
    lines = [f"{result['escrows_checked']} escrow(s) checked, {len(result['problems'])} problem(s)"]
    lines += [f"  {p['order_id']}: {p['problem']}: {p['detail']}" for p in result["problems"]]
    return "\n".join(lines)
