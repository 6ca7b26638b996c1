"""Every Kafka topic name, in one place. Messages are keyed by order id."""

from __future__ import annotations

from enum import StrEnum


class Service(StrEnum):
    ORDER = "order"
    PAYMENT = "payment"
    SHIPPING = "shipping"
    DISPUTE = "dispute"
    NOTIFY = "notify"


class Topics:
    """Topic names under one prefix, so a test run or a second environment can use
    its own set of topics on a shared broker."""

    def __init__(self, prefix: str = "escrow") -> None:
        self.prefix = prefix

    def events(self, producer: Service) -> str:
        """The topic a service publishes its events on (only that service writes it)."""
        return f"{self.prefix}.{producer}.events"

    def dead_letters(self, consumer: Service) -> str:
        """Messages a service could not take, with the reason in the headers."""
        return f"{self.prefix}.{consumer}.deadletter"

    def retries(self, consumer: Service) -> str:
        """Where replayed dead letters go: read by the one service that failed them."""
        return f"{self.prefix}.{consumer}.retry"

    def all_event_topics(self) -> list[str]:
        return [self.events(s) for s in Service if s is not Service.NOTIFY]

    def all(self) -> list[str]:
        names = self.all_event_topics()
        for s in Service:
            names += [self.dead_letters(s), self.retries(s)]
        return names
