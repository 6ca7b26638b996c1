"""The payment service's own Prometheus figures, read from its escrows when scraped:
money held in escrow per currency, payout/refund instructions by status, and the pending
ones whose sending keeps failing (backed off by the instruction sweep)."""

from __future__ import annotations

from shared.infra.metrics import Counts, ServiceFigures

from services.payment.domain import Account
from services.payment.instructions import InstructionStatus
from services.payment.payouts import INSTRUCTIONS


def add_payment_figures(figures: ServiceFigures, collection: str = "escrows") -> None:
    held = Counts(figures.gauge("escrow_money_held", "Money held in escrow (minor units) per currency",
                                ["currency"]))
    instructions = Counts(figures.gauge("escrow_instructions", "Payout, refund and return instructions "
                                        "by status (pending: not yet accepted by the provider)",
                                        ["kind", "status"]))
    failing = Counts(figures.gauge("escrow_instructions_failing", "Pending instructions whose last "
                                   "sending failed (retried with back-off)", ["kind"]))

    async def refresh() -> None:
        by_currency: dict[tuple[str, ...], int] = {}
        by_status: dict[tuple[str, ...], int] = {}
        failing_by_kind: dict[tuple[str, ...], int] = {}
        escrows = figures.runtime.database[collection]
        async for doc in escrows.find({}, projection={"state.currency": 1, "state.ledger": 1,
                                                      "state.instructions": 1, f"failing.{INSTRUCTIONS}": 1}):
            state = doc.get("state", {})
            balance = sum(e["amount"] if e["debit"] == Account.ESCROW_HELD else
                          -e["amount"] if e["credit"] == Account.ESCROW_HELD else 0
                          for e in state.get("ledger", []))
            currency = (state.get("currency", "?"),)
            by_currency[currency] = by_currency.get(currency, 0) + balance
            sweep_failing = bool(doc.get("failing", {}).get(INSTRUCTIONS))
            for i in state.get("instructions", []):
                key = (i["kind"], i["status"])
                by_status[key] = by_status.get(key, 0) + 1
                if sweep_failing and i["status"] == InstructionStatus.PENDING:
                    failing_by_kind[(i["kind"],)] = failing_by_kind.get((i["kind"],), 0) + 1
        held.set(by_currency)
        instructions.set(by_status)
        failing.set(failing_by_kind)

    figures.add(refresh)
