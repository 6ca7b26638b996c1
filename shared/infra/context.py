"""What the current unit of work carries implicitly: the correlation id of the request or
message being handled. Set by the HTTP middleware and by the consumer, read where envelopes
are wrapped, so it is not threaded by hand through routes and commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation_id() -> str | None:
    return _correlation_id.get()


@contextmanager
def correlated(correlation_id: str | None) -> Iterator[None]:
    """Run the block with ``correlation_id`` as the current one (restored afterwards)."""
    token = _correlation_id.set(correlation_id)
    try:
        yield
    finally:
        _correlation_id.reset(token)
