from __future__ import annotations

from datetime import timedelta

from shared.infra.settings import ServiceSettings


class OrderSettings(ServiceSettings):
    http_port: int = 8001
    payment_window: timedelta = timedelta(days=20)
    payment_reminder_before: timedelta = timedelta(days=3)
