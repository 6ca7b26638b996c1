"""Domain errors: raised by aggregates and service functions when a rule forbids an action.

They say what is wrong in the trade's words and nothing about transport: the HTTP layer
maps each type to a status code (``shared.infra.http``), the consumer sends the message
to the dead-letter topic with the detail."""

from __future__ import annotations

from datetime import timedelta


class DomainError(Exception):
    """The action breaks a rule of the trade (e.g. paying a declined order)."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class InvalidRequest(DomainError):
    """The request is well-formed but a value is unacceptable (e.g. an amount above what was paid)."""


class NotPermitted(DomainError):
    """The actor may not do this to this order (e.g. another buyer's order)."""


class NotFound(DomainError):
    """There is no such order (or dispute, email, ...) here."""


class TooManyRequests(DomainError):
    """One party asked the platform to do (or send) more than its limit allows for now."""

    def __init__(self, detail: str, *, retry_after: timedelta | None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class NotYet(DomainError):
    """The action needs a fact this service has not received yet from another (events of
    different topics arrive in any order): nothing was done, and the same request will
    succeed shortly."""

    def __init__(self, detail: str, *, retry_after: timedelta = timedelta(seconds=2)) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
