"""What the current unit of work is about — its correlation id, order, and the event being
handled — held in context variables, so every log line (and span) of a request or of a
consumed message names them without passing them through every call."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
order_id: ContextVar[str | None] = ContextVar("order_id", default=None)
event_type: ContextVar[str | None] = ContextVar("event_type", default=None)
event_id: ContextVar[str | None] = ContextVar("event_id", default=None)

_FIELDS: dict[str, ContextVar[str | None]] = {
    "correlation_id": correlation_id, "order_id": order_id,
    "event_type": event_type, "event_id": event_id,
}

# What a caller may choose as correlation id: it ends up in envelopes (max 64) and logs.
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def new_correlation_id(offered: str | None = None) -> str:
    """The caller's id when it is a sane token, else a fresh one (a hostile header must
    not reach logs or envelopes)."""
    if offered and _ACCEPTABLE_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


@contextmanager
def bound(**values: str | None) -> Iterator[None]:
    """Set some of the context fields for the block (``None`` leaves a field as it is)."""
    tokens = [(_FIELDS[name], _FIELDS[name].set(value))
              for name, value in values.items() if value is not None]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current() -> dict[str, str]:
    """The fields set in this context."""
    return {name: value for name, var in _FIELDS.items() if (value := var.get()) is not None}


def current_correlation_id() -> str | None:
    return correlation_id.get()


def correlated(value: str | None) -> AbstractContextManager[None]:
    """Run the block with ``value`` as the current correlation id."""
    return bound(correlation_id=value)
