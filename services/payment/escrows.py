"""Loading an order's escrow, for every job of the payment service."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.domain.errors import NotFound
from shared.infra.runner import AggregateRunner

from services.payment.domain import Escrow

EscrowRunner = AggregateRunner[Escrow]


async def load(runner: EscrowRunner, order_id: str) -> Escrow:
    escrow = await runner.get(order_id)
    if escrow is None:
        raise NotFound(f"no escrow for order {order_id}")
    return escrow


def change(step: Callable[[Escrow, datetime], object]) -> Callable[[Escrow | None, datetime], Escrow]:
    """An action that applies ``step`` to an existing escrow and saves it."""
    def action(escrow: Escrow | None, now: datetime) -> Escrow:
        assert escrow is not None
        step(escrow, now)
        return escrow
    return action
