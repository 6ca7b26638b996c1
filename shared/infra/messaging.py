"""Kafka plumbing written once: the broker, per-event publishers (documented in AsyncAPI),
and the consumer every service uses.

The consumer commits an offset only after the message was handled (no auto-commit),
passes each event to the one handler registered for its type, and sends what it cannot
take to the service's dead-letter topic with the reason, then goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure

from shared.contracts.envelope import Envelope, TradeEvent, UnknownEventType, documented_envelope
from shared.contracts.topics import Service, Topics
from shared.domain.errors import DomainError
from shared.infra.store import ConcurrencyConflict
from shared.infra.store import OutboxMessage

log = logging.getLogger(__name__)

EventHandler = Callable[[Envelope, Any], Awaitable[None]]

# Errors worth retrying in place: the database is unreachable, or the order kept
# changing under us. After the retries the message is not committed (nack) and comes back.
TRANSIENT = (ConnectionFailure, ConcurrencyConflict)
TRANSIENT_RETRIES = 3
TRANSIENT_BACKOFF_SECONDS = 0.5

DEAD_LETTER_REASON = "x-dead-letter-reason"


def make_broker(bootstrap_servers: str, client_id: str,
                registry: CollectorRegistry | None = None) -> KafkaBroker:
    """An idempotent producer; with a registry, Prometheus metrics of every message received
    and published (dead letters show as messages published to a ``*.deadletter`` topic)."""
    middlewares = [KafkaPrometheusMiddleware(registry=registry, app_name=client_id,
                                             metrics_prefix="escrow")] if registry else []
    return KafkaBroker(bootstrap_servers, client_id=client_id, enable_idempotence=True,
                       logger=logging.getLogger(f"faststream.{client_id}"), middlewares=middlewares)


async def ensure_topics(bootstrap_servers: str, names: list[str], partitions: int = 3) -> None:
    """Create the topics a service uses if they are missing (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, num_partitions=partitions, replication_factor=1)
                   for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # created concurrently by another service: what we wanted
    finally:
        await admin.close()


class EventPublisher:
    """Publishes outbox messages on the service's event topic, keyed by order id so an
    order's events stay in order. One declared publisher per event type documents each
    message in the AsyncAPI document."""

    def __init__(self, broker: KafkaBroker, topic: str, events: list[type[TradeEvent]]) -> None:
        self.topic = topic
        self._publishers = {
            event.event_type: broker.publisher(
                topic, title=f"{topic}:{event.__name__}", description=(event.__doc__ or "").strip(),
                schema=documented_envelope(event))
            for event in events
        }

    async def __call__(self, message: OutboxMessage) -> None:
        head = json.loads(message.body)
        await self._publishers[head["event_type"]].publish(
            message.body.encode(),
            key=head["order_id"].encode(),
            correlation_id=head["correlation_id"],
            headers={"content-type": "application/json", "event-type": head["event_type"],
                     "event-id": head["event_id"]},
        )


class EventConsumer:
    """The one subscriber of a service: its inbound event topics plus its retry topic."""

    def __init__(self, service: Service, broker: KafkaBroker, topics: Topics,
                 handlers: Mapping[type[TradeEvent], EventHandler]) -> None:
        self.service = service
        self.broker = broker
        self.topics = topics
        self.handlers = {event.event_type: (event, h) for event, h in handlers.items()}
        self.dead_letter_topic = topics.dead_letters(service)
        sources = sorted({topics.events(event.producer) for event in handlers})
        sources.append(topics.retries(service))
        self.sources = sources
        broker.subscriber(
            *sources, group_id=f"{topics.prefix}-{service}", ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest", title=f"{service}-inbox",
            description=f"Events the {service} service reacts to: "
                        + ", ".join(sorted(self.handlers)),
        )(self._consume)

    async def _consume(self, msg: KafkaMessage) -> None:
        await self.handle(msg.body, key=msg.raw_message.key, headers=dict(msg.headers),
                          origin=f"{msg.raw_message.topic}/{msg.raw_message.partition}"
                                 f"@{msg.raw_message.offset}")

    async def handle(self, body: bytes, *, key: bytes | None = None,
                     headers: Mapping[str, Any] | None = None, origin: str = "") -> None:
        try:
            envelope = Envelope.model_validate_json(body)
        except ValidationError as exc:
            return await self.dead_letter(body, key, headers, origin, f"malformed envelope: {exc}")
        entry = self.handlers.get(envelope.event_type)
        if entry is None:
            return None  # an event this service does not react to
        event_type, handler = entry
        try:
            event = envelope.event()
            if not isinstance(event, event_type):
                raise UnknownEventType(f"{envelope.event_type} v{envelope.schema_version}")
        except (ValidationError, UnknownEventType) as exc:
            return await self.dead_letter(body, key, headers, origin,
                                          f"invalid {envelope.event_type} payload: {exc}")
        for attempt in range(1, TRANSIENT_RETRIES + 1):
            try:
                await handler(envelope, event)
                return None
            except TRANSIENT as exc:
                if attempt == TRANSIENT_RETRIES:
                    log.error("%s: %s for order %s still failing (%r); will be redelivered",
                              self.service, envelope.event_type, envelope.order_id, exc)
                    raise
                await asyncio.sleep(TRANSIENT_BACKOFF_SECONDS * attempt)
            except DomainError as exc:
                return await self.dead_letter(body, key, headers, origin,
                                              f"unprocessable {envelope.event_type}: {exc.detail}")
            except Exception as exc:
                log.exception("%s: handler for %s failed", self.service, envelope.event_type)
                return await self.dead_letter(body, key, headers, origin,
                                              f"handler failed: {type(exc).__name__}: {exc}")
        return None

    async def dead_letter(self, body: bytes, key: bytes | None, headers: Mapping[str, Any] | None,
                          origin: str, reason: str) -> None:
        log.warning("%s: dead-lettering message from %s: %s", self.service, origin, reason)
        await self.broker.publish(
            body, topic=self.dead_letter_topic, key=key,
            headers={**{k: str(v) for k, v in (headers or {}).items()},
                     DEAD_LETTER_REASON: reason[:2000], "x-dead-letter-origin": origin,
                     "x-dead-letter-service": str(self.service),
                     "x-dead-letter-at": datetime.now(UTC).isoformat()},
        )
