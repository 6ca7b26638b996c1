from __future__ import annotations

from datetime import timedelta

from shared.infra.settings import ServiceSettings


class ShippingSettings(ServiceSettings):
    http_port: int = 8003
    # When, before the ship-by deadline, the supplier is reminded.
    ship_by_reminder_before: timedelta = timedelta(days=2)
