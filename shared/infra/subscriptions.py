"""Which events a service reacts to, declared once per handler: a method marked
``@subscribes`` takes ``(envelope, event)``, and the type annotation of ``event`` says
which event type it handles. ``subscriptions(service)`` collects them for the consumer."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, get_type_hints

from shared.contracts.envelope import TradeEvent

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_MARK = "__subscribes__"


def subscribes(handler: F) -> F:
    """Mark ``handler`` as the service's reaction to the type of its ``event`` parameter."""
    setattr(handler, _MARK, True)
    return handler


def _event_type(handler: Callable[..., Any]) -> type[TradeEvent]:
    event_type = get_type_hints(handler).get("event")
    if not (inspect.isclass(event_type) and issubclass(event_type, TradeEvent)):
        raise TypeError(f"{handler.__qualname__}: annotate its 'event' parameter with the "
                        "event type it handles")
    return event_type


def subscriptions(service: object) -> dict[type[TradeEvent], Callable[..., Awaitable[Any]]]:
    """The service's ``@subscribes`` methods by the event type each handles."""
    found: dict[type[TradeEvent], Callable[..., Awaitable[Any]]] = {}
    for name, member in inspect.getmembers(type(service), inspect.isfunction):
        if getattr(member, _MARK, False):
            event_type = _event_type(member)
            if event_type in found:
                raise TypeError(f"{type(service).__name__} handles {event_type.__name__} twice")
            found[event_type] = getattr(service, name)
    return found
