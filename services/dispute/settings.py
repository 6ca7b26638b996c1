from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from shared.infra.rate_limit import Limit
from shared.infra.settings import ServiceSettings

from services.dispute.domain import Periods


class DisputeSettings(ServiceSettings):
    """Periods are read from the environment as ISO 8601 durations (``P5D``, ``PT2M``) or
    seconds, e.g. ``RECEIPT_AUTO_CONFIRM_AFTER=P30D``."""

    http_port: int = 8004
    # Larger request bodies are refused (413): evidence files travel base64 in a request.
    max_request_bytes: int = 16 * 1024 * 1024
    # After the ship date, from when the buyer may open a dispute.
    dispute_opens_after: timedelta = timedelta(days=5)
    # After the ship date, receipt is confirmed automatically (the money released).
    receipt_auto_confirm_after: timedelta = timedelta(days=30)
    # When, before automatic confirmation, the buyer is reminded.
    receipt_reminder_before: timedelta = timedelta(days=3)
    # How long the supplier has to answer a dispute.
    supplier_answer_period: timedelta = timedelta(days=5)
    # When, before the answer deadline, the supplier is reminded.
    answer_reminder_before: timedelta = timedelta(days=1)
    # A dispute the parties do not settle goes to customer service after this.
    auto_escalate_after: timedelta = timedelta(days=5)

    statements_per_party: int = Field(
        default=100, ge=1, description="Disputes opened and statements added by one party per "
                                       "rate-limit window, over all its orders (each is mailed "
                                       "to the other side; past it: 429).")
    rate_limit_window: timedelta = Field(
        default=timedelta(days=1), description="The window of the per-party rate limit.")

    def stating(self) -> Limit:
        return Limit("dispute_statement", self.statements_per_party, self.rate_limit_window,
                     "dispute statements")

    def periods(self) -> Periods:
        return Periods(
            dispute_opens_after=self.dispute_opens_after,
            receipt_auto_confirm_after=self.receipt_auto_confirm_after,
            receipt_reminder_before=self.receipt_reminder_before,
            supplier_answer_period=self.supplier_answer_period,
            answer_reminder_before=self.answer_reminder_before,
            auto_escalate_after=self.auto_escalate_after)
