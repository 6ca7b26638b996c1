"""The versioned envelope every message travels in, and the registry of event types."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model

from shared.contracts.parties import Parties
from shared.contracts.topics import Service

_REGISTRY: dict[tuple[str, int], type[TradeEvent]] = {}


class UnknownEventType(LookupError):
    pass


class TradeEvent(BaseModel):
    """An integration event: a small immutable record of something that happened to an
    order. Every event names its order and carries the parties, so consumers need no
    lookup in another service's data.

    Unknown fields are ignored, not refused: a newer producer may add fields (an additive
    change, see docs/asyncapi.released.json) without its events being dead-lettered."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    producer: ClassVar[Service]

    order_id: str = Field(min_length=1, max_length=64)
    parties: Parties

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "event_type" in cls.__dict__:
            key = (cls.event_type, cls.schema_version)
            if key in _REGISTRY:
                raise TypeError(f"event type {key} is registered twice")
            _REGISTRY[key] = cls


def event_class(event_type: str, schema_version: int = 1) -> type[TradeEvent]:
    try:
        return _REGISTRY[(event_type, schema_version)]
    except KeyError:
        raise UnknownEventType(f"no event type {event_type!r} v{schema_version}") from None


def registered_events() -> list[type[TradeEvent]]:
    return list(_REGISTRY.values())


class Envelope(BaseModel):
    """What goes on the wire. The Kafka key is ``order_id``; ``correlation_id`` is the same
    for every message caused, directly or not, by one actor's request; ``causation_id`` is
    the event id of the message that caused this one. Unknown fields are ignored (a newer
    envelope may carry more)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: str = Field(min_length=1, max_length=64)
    event_type: str
    schema_version: int = Field(ge=1)
    occurred_at: AwareDatetime
    order_id: str = Field(min_length=1, max_length=64)
    producer: Service
    correlation_id: str = Field(min_length=1, max_length=64)
    causation_id: str | None = None
    # W3C trace context of the span that recorded the event (None when tracing is off).
    traceparent: str | None = Field(default=None, max_length=128)
    payload: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        event: TradeEvent,
        *,
        occurred_at: datetime,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        traceparent: str | None = None,
    ) -> Envelope:
        event_id = uuid.uuid4().hex
        return cls(
            event_id=event_id,
            event_type=event.event_type,
            schema_version=event.schema_version,
            occurred_at=occurred_at,
            order_id=event.order_id,
            producer=event.producer,
            correlation_id=correlation_id or event_id,
            causation_id=causation_id,
            traceparent=traceparent,
            payload=event.model_dump(mode="json"),
        )

    def event(self) -> TradeEvent:
        """The typed event; raises ``UnknownEventType`` or a pydantic ``ValidationError``."""
        return event_class(self.event_type, self.schema_version).model_validate(self.payload)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def documented_envelope(event: type[TradeEvent]) -> type[BaseModel]:
    """A model of the envelope with this event's payload, for the AsyncAPI document."""
    return create_model(
        f"{event.__name__}Message",
        __base__=Envelope,
        __doc__=event.__doc__,
        event_type=(Literal[event.event_type], event.event_type),  # type: ignore[arg-type]
        schema_version=(Literal[event.schema_version], event.schema_version),  # type: ignore[arg-type]
        payload=(event, ...),
    )
