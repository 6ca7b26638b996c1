"""Kafka plumbing written once: the broker, per-event publishers (documented in AsyncAPI),
and the consumer every service uses.

The consumer commits offsets only after the messages were handled (no auto-commit), in
batches, handling different orders concurrently and one order's messages in order; it
passes each event to the one handler registered for its type, sends what can never succeed
to the service's dead-letter topic with the reason and goes on, and lets only transient
failures come again.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.security import BaseSecurity
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure

from shared.contracts.envelope import Envelope, TradeEvent, UnknownEventType, documented_envelope
from shared.contracts.topics import Service, Topics
from shared.domain.errors import DomainError
from shared.infra import context, telemetry
from shared.infra.signing import EnvelopeAuthenticator, Unauthentic, check_producer
from shared.infra.store import ConcurrencyConflict, OutboxMessage

log = logging.getLogger(__name__)

EventHandler = Callable[[Envelope, Any], Awaitable[None]]

# Errors worth retrying in place: the database is unreachable, or the order kept
# changing under us. After the retries the message is not committed (nack) and comes back.
TRANSIENT = (ConnectionFailure, ConcurrencyConflict)
TRANSIENT_RETRIES = 3
TRANSIENT_BACKOFF_SECONDS = 0.5
# A batch that failed is redelivered after a pause growing up to this.
REDELIVERY_BACKOFF_MAX_SECONDS = 30.0

# Consumption: records per batch, orders handled at once, and how long a poll waits for
# records (an idle consumer wakes ten times a second, at no cost to the database; a message that
# comes while it sleeps waits at most that long).
MAX_BATCH = 200
MAX_IN_FLIGHT = 32
BATCH_WAIT_MS = 100

DEAD_LETTER_REASON = "x-dead-letter-reason"


def make_broker(bootstrap_servers: str, client_id: str,
                registry: CollectorRegistry | None = None,
                security: BaseSecurity | None = None) -> KafkaBroker:
    """An idempotent producer; with a registry, Prometheus metrics of every message received
    and published (dead letters show as messages published to a ``*.deadletter`` topic)."""
    middlewares = [KafkaPrometheusMiddleware(registry=registry, app_name=client_id,
                                             metrics_prefix="escrow")] if registry else []
    return KafkaBroker(bootstrap_servers, client_id=client_id, enable_idempotence=True,
                       security=security,
                       logger=logging.getLogger(f"faststream.{client_id}"), middlewares=middlewares)


async def ensure_topics(bootstrap_servers: str, names: list[str], partitions: int = 3,
                        replication_factor: int = 1, **client_options: Any) -> None:
    """Create the topics a service uses if they are missing (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_options)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, num_partitions=partitions, replication_factor=replication_factor)
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

    def __init__(self, broker: KafkaBroker, topic: str, events: list[type[TradeEvent]],
                 signer: EnvelopeAuthenticator | None = None) -> None:
        self.topic = topic
        self._signer = signer
        self._publishers = {
            event.event_type: broker.publisher(
                topic, title=f"{topic}:{event.__name__}", description=inspect.cleandoc(event.__doc__ or ""),
                schema=documented_envelope(event))
            for event in events
        }

    async def __call__(self, message: OutboxMessage) -> None:
        head = json.loads(message.body)
        # A child of the span that recorded the event, even when a later sweep publishes it.
        with telemetry.span(f"publish {head['event_type']}", service=head["producer"],
                            kind=SpanKind.PRODUCER, traceparent=head.get("traceparent"),
                            messaging__destination=self.topic, escrow__event_id=head["event_id"]):
            await self._publishers[head["event_type"]].publish(
                message.body.encode(),
                key=head["order_id"].encode(),
                correlation_id=head["correlation_id"],
                headers={"content-type": "application/json", "event-type": head["event_type"],
                         "event-id": head["event_id"],
                         **(self._signer.sign(message.body.encode()) if self._signer else {})},
            )


@dataclass(frozen=True)
class Delivery:
    """One consumed record, as the consumer needs it."""

    body: bytes
    key: bytes | None
    headers: Mapping[str, Any]
    origin: str  # topic/partition@offset, for logs and dead letters

    @classmethod
    def of(cls, record: Any) -> Delivery:
        return cls(record.value, record.key,
                   {k: v.decode(errors="replace") if isinstance(v, bytes) else v
                    for k, v in record.headers or ()},
                   f"{record.topic}/{record.partition}@{record.offset}")


class EventConsumer:
    """The one subscriber of a service: its inbound event topics plus its retry topic.

    Records come in batches. A batch is grouped by key (the order id): different orders are
    handled concurrently (at most ``max_in_flight`` at once), one order's messages one after
    the other in offset order. The batch is committed only when every message of it was
    handled or dead-lettered; a transient failure that outlasts its retries fails the
    batch, which is then not committed: each partition is rewound to its earliest record
    of the batch and the messages come again (handlers are idempotent). So the committed
    offset never passes an unhandled message.
    """

    def __init__(self, service: Service, broker: KafkaBroker, topics: Topics,
                 handlers: Mapping[type[TradeEvent], EventHandler], *,
                 max_batch: int = MAX_BATCH, max_in_flight: int = MAX_IN_FLIGHT,
                 authenticator: EnvelopeAuthenticator | None = None) -> None:
        self.service = service
        self.authenticator = authenticator
        self.broker = broker
        self.topics = topics
        self.handlers = {event.event_type: (event, h) for event, h in handlers.items()}
        self.dead_letter_topic = topics.dead_letters(service)
        sources = sorted({topics.events(event.producer) for event in handlers})
        sources.append(topics.retries(service))
        self.sources = sources
        self._gate = asyncio.Semaphore(max_in_flight)
        self._failed_batches = 0
        broker.subscriber(
            *sources, group_id=f"{topics.prefix}-{service}", ack_policy=AckPolicy.NACK_ON_ERROR,
            batch=True, max_records=max_batch, batch_timeout_ms=BATCH_WAIT_MS,
            auto_offset_reset="earliest", title=f"{service}-inbox",
            description=f"Events the {service} service reacts to: "
                        + ", ".join(sorted(self.handlers)),
        )(self._consume)

    async def _consume(self, msg: KafkaMessage) -> None:
        records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
        await self.handle_batch([Delivery.of(r) for r in records])

    async def handle_batch(self, deliveries: list[Delivery]) -> None:
        """Handle a batch: orders concurrently, each order's messages in order. Raises the
        first failure once every order of the batch had its turn (nothing is committed)."""
        by_key: dict[bytes | None, list[Delivery]] = {}
        for delivery in deliveries:
            by_key.setdefault(delivery.key, []).append(delivery)

        async def in_order(group: list[Delivery]) -> None:
            async with self._gate:
                for d in group:  # a failure stops the order here: its later messages wait
                    await self.handle(d.body, key=d.key, headers=d.headers, origin=d.origin)

        results = await asyncio.gather(*(in_order(g) for g in by_key.values()),
                                       return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if not failures:
            self._failed_batches = 0
            return
        self._failed_batches += 1
        pause = min(REDELIVERY_BACKOFF_MAX_SECONDS, TRANSIENT_BACKOFF_SECONDS * 2 ** self._failed_batches)
        log.error("%s: %d of %d orders in a batch of %d failed transiently (%r); not committed, "
                  "redelivered in %.1f s", self.service, len(failures), len(by_key), len(deliveries),
                  failures[0], pause)
        await asyncio.sleep(pause)  # back off: never a hot loop on a failing partition
        raise failures[0]

    async def handle(self, body: bytes, *, key: bytes | None = None,
                     headers: Mapping[str, Any] | None = None, origin: str = "") -> None:
        """Handle one message: done, ignored, or dead-lettered with the reason when it can
        never succeed; raises only for a transient failure that outlasted its retries."""
        try:
            envelope = Envelope.model_validate_json(body)
        except ValidationError as exc:
            return await self.dead_letter(body, key, headers, origin, f"malformed envelope: {exc}")
        entry = self.handlers.get(envelope.event_type)
        if entry is None:
            return None  # an event this service does not react to
        try:  # believed only from its producer (shared/infra/signing.py)
            if self.authenticator:
                self.authenticator.check(envelope, body, headers, origin.partition("/")[0] or None)
            else:
                check_producer(envelope)
        except Unauthentic as exc:
            return await self.dead_letter(body, key, headers, origin, f"unauthentic: {exc}")
        with context.bound(correlation_id=envelope.correlation_id, order_id=envelope.order_id,
                           event_type=envelope.event_type, event_id=envelope.event_id), \
                telemetry.span(f"consume {envelope.event_type}", service=str(self.service),
                               kind=SpanKind.CONSUMER, traceparent=envelope.traceparent,
                               escrow__order_id=envelope.order_id, escrow__event_id=envelope.event_id):
            return await self._dispatch(envelope, entry, body, key, headers, origin)

    async def _dispatch(self, envelope: Envelope, entry: tuple[type[TradeEvent], EventHandler],
                        body: bytes, key: bytes | None, headers: Mapping[str, Any] | None,
                        origin: str) -> None:
        event_type, handler = entry
        try:
            event = envelope.event()
            if not isinstance(event, event_type):
                raise UnknownEventType(f"{envelope.event_type} v{envelope.schema_version}")
        except (ValidationError, UnknownEventType) as exc:
            return await self.dead_letter(body, key, headers, origin,
                                          f"invalid {envelope.event_type} payload: {exc}")
        if event.order_id != envelope.order_id:
            return await self.dead_letter(
                body, key, headers, origin,
                f"misrouted {envelope.event_type}: the envelope's order id {envelope.order_id!r} "
                f"differs from the payload's {event.order_id!r}")
        return await self._run(handler, envelope, event, body, key, headers, origin)

    async def _run(self, handler: EventHandler, envelope: Envelope, event: TradeEvent, body: bytes,
                   key: bytes | None, headers: Mapping[str, Any] | None, origin: str) -> None:
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
