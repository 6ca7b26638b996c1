from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from shared.infra.rate_limit import Limit
from shared.infra.settings import ServiceSettings


class OrderSettings(ServiceSettings):
    http_port: int = 8001
    # How long the buyer has to pay into escrow once the supplier confirmed.
    payment_window: timedelta = timedelta(days=20)
    # When, before the payment deadline, the buyer is reminded.
    payment_reminder_before: timedelta = timedelta(days=3)
    orders_per_party: int = Field(
        default=100, ge=1, description="Orders one buyer can place per rate-limit window "
                                       "(each is mailed to the supplier; past it: 429).")
    messages_per_party: int = Field(
        default=200, ge=1, description="Messages one party can post per rate-limit window, "
                                       "over all its orders (each is mailed; past it: 429).")
    rate_limit_window: timedelta = Field(
        default=timedelta(days=1), description="The window of the per-party rate limits.")

    def placing(self) -> Limit:
        return Limit("place_order", self.orders_per_party, self.rate_limit_window,
                     "orders placed")

    def messaging(self) -> Limit:
        return Limit("order_message", self.messages_per_party, self.rate_limit_window,
                     "messages")
