"""The payment service's own Prometheus figures, read from its escrows when scraped:
money held in escrow per currency, and payout/refund instructions by status."""

from __future__ import annotations

from shared.infra.metrics import ServiceFigures

from services.payment.domain import Account


def add_payment_figures(figures: ServiceFigures, collection: str = "escrows") -> None:
    held = figures.gauge("escrow_money_held", "Money held in escrow (minor units) per currency",
                         ["currency"])
    instructions = figures.gauge("escrow_instructions", "Payout, refund and return instructions "
                                 "by status (pending: not yet accepted by the provider)",
                                 ["kind", "status"])

    async def refresh() -> None:
        by_currency: dict[str, int] = {}
        by_status: dict[tuple[str, str], int] = {}
        escrows = figures.runtime.database[collection]
        async for doc in escrows.find({}, projection={"state.currency": 1, "state.ledger": 1,
                                                      "state.instructions": 1}):
            state = doc.get("state", {})
            balance = sum(e["amount"] if e["debit"] == Account.ESCROW_HELD else
                          -e["amount"] if e["credit"] == Account.ESCROW_HELD else 0
                          for e in state.get("ledger", []))
            by_currency[state.get("currency", "?")] = by_currency.get(state.get("currency", "?"), 0) + balance
            for i in state.get("instructions", []):
                key = (i["kind"], i["status"])
                by_status[key] = by_status.get(key, 0) + 1
        for currency, amount in by_currency.items():
            held.labels(currency).set(amount)
        for (kind, status), count in by_status.items():
            instructions.labels(kind, status).set(count)

    figures.add(refresh)
