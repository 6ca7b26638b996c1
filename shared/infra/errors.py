"""Domain errors: raised by aggregates when a rule forbids an action. The HTTP layer turns
them into problem details; the consumer layer sends the message to the dead-letter topic."""

from __future__ import annotations


class DomainError(Exception):
    """The action breaks a rule of the trade (e.g. paying a declined order)."""

    status = 409
    title = "Not allowed in the order's current state"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class InvalidRequest(DomainError):
    """The request is well-formed but a value is unacceptable (e.g. an amount above what was paid)."""

    status = 422
    title = "Invalid request"


class NotPermitted(DomainError):
    """The actor may not do this to this order (e.g. another buyer's order)."""

    status = 403
    title = "Not permitted"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class ConcurrencyConflict(Exception):
    """Someone else saved the aggregate first; reload and try again."""
