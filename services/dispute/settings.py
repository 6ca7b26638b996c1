from __future__ import annotations

from datetime import timedelta

from shared.infra.settings import ServiceSettings
from services.dispute.domain import Periods


class DisputeSettings(ServiceSettings):
    """Periods are read from the environment as ISO 8601 durations (``P5D``, ``PT2M``) or
    seconds, e.g. ``RECEIPT_AUTO_CONFIRM_AFTER=P30D``."""

    http_port: int = 8004
    dispute_opens_after: timedelta = timedelta(days=5)
    receipt_auto_confirm_after: timedelta = timedelta(days=30)
    receipt_reminder_before: timedelta = timedelta(days=3)
    supplier_answer_period: timedelta = timedelta(days=5)
    answer_reminder_before: timedelta = timedelta(days=1)
    auto_escalate_after: timedelta = timedelta(days=5)

    def periods(self) -> Periods:
        return Periods(
            dispute_opens_after=self.dispute_opens_after,
            receipt_auto_confirm_after=self.receipt_auto_confirm_after,
            receipt_reminder_before=self.receipt_reminder_before,
            supplier_answer_period=self.supplier_answer_period,
            answer_reminder_before=self.answer_reminder_before,
            auto_escalate_after=self.auto_escalate_after)
