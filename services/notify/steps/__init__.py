"""Which step of the trade each event is, who is told about it, and with which template:
declared next to each template, one module per producing service.

Every registered event type has a step (a test enforces it), so a new event cannot go
unmailed silently. ``python -m services.notify.steps`` writes the README table from these
declarations (a test fails when it is stale). The choice of recipients is explained in
``services/notify/README.md``.
"""

from __future__ import annotations

from typing import Any

from shared.contracts.envelope import TradeEvent

from services.notify.steps import dispute, order, payment, shipping  # noqa: F401  (they declare the steps)
from services.notify.steps.base import STEPS, Step

__all__ = ["STEPS", "Step", "step_of"]


def step_of(event: TradeEvent) -> Step[Any]:
    return STEPS[type(event)]
