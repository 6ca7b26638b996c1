from __future__ import annotations

from datetime import timedelta

from shared.infra.settings import ServiceSettings


class OrderSettings(ServiceSettings):
    http_port: int = 8001
    # How long the buyer has to pay into escrow once the supplier confirmed.
    payment_window: timedelta = timedelta(days=20)
    # When, before the payment deadline, the buyer is reminded.
    payment_reminder_before: timedelta = timedelta(days=3)
