"""Prometheus figures of one service beyond its messaging (which FastStream's middleware
counts): process and HTTP figures, and the state of its data, refreshed when scraped —
outbox backlog and its oldest message, overdue deadlines, aggregates by status, consumer
lag of its group, dead letters — plus what a service adds of its own (money held,
instructions, emails) through ``ServiceFigures.add``."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from shared.infra.clock import Clock

if TYPE_CHECKING:
    from shared.infra.runtime import ServiceRuntime

log = logging.getLogger(__name__)

REFRESH_TIMEOUT_SECONDS = 5.0
Refresh = Callable[[], Awaitable[None]]


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.requests = Counter("escrow_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=registry)
        self.duration = Histogram("escrow_http_request_duration_seconds", "HTTP request duration",
                                  ["method", "route"], registry=registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)


class ServiceFigures:
    """Gauges computed from the service's own collections and Kafka when scraped."""

    def __init__(self, runtime: ServiceRuntime, registry: CollectorRegistry) -> None:
        self.runtime = runtime
        self.registry = registry
        self.collections: list[tuple[str, Clock]] = []
        self._extra: list[Refresh] = []
        self._kafka: _KafkaProbe | None = None
        self._statuses: dict[str, set[str]] = {}
        self.outbox_backlog = Gauge("escrow_outbox_backlog", "Orders with messages saved but not yet "
                                    "published", ["collection"], registry=registry)
        self.outbox_oldest = Gauge("escrow_outbox_oldest_pending_seconds", "Age of the oldest message "
                                   "waiting in an outbox", ["collection"], registry=registry)
        self.deadlines_overdue = Gauge("escrow_deadlines_overdue", "Stored deadlines past due and not "
                                       "yet fired", ["collection"], registry=registry)
        self.by_status = Gauge("escrow_aggregates", "Aggregates (one per order) by status; for the "
                               "order service, trades by state", ["collection", "status"], registry=registry)
        self.consumer_lag = Gauge("escrow_consumer_lag", "Messages not yet consumed by the service's "
                                  "group", ["group", "topic"], registry=registry)
        self.dead_letters = Gauge("escrow_dead_letters", "Messages in the service's dead-letter topic",
                                  ["service"], registry=registry)

    def add(self, refresh: Refresh) -> None:
        """A service's own figures, refreshed with the others."""
        self._extra.append(refresh)

    def gauge(self, name: str, documentation: str, labels: list[str]) -> Gauge:
        return Gauge(name, documentation, labels, registry=self.registry)

    def counter(self, name: str, documentation: str) -> Counter:
        return Counter(name, documentation, registry=self.registry)

    async def refresh(self) -> None:
        """Bring every gauge up to date; what cannot be read now keeps its last value."""
        parts: list[Awaitable[None]] = [self._collection(name, clock) for name, clock in self.collections]
        parts += [extra() for extra in self._extra]
        if self.runtime.consumer is not None:
            parts.append(self._kafka_figures())
        results = await asyncio.gather(*(asyncio.wait_for(p, REFRESH_TIMEOUT_SECONDS) for p in parts),
                                       return_exceptions=True)
        for failed in (r for r in results if isinstance(r, BaseException)):
            log.warning("a metrics figure could not be read: %r", failed)

    async def _collection(self, name: str, clock: Clock) -> None:
        collection = self.runtime.database[name]
        now = clock.now()
        self.outbox_backlog.labels(name).set(await collection.count_documents({"outbox_pending": True}))
        self.deadlines_overdue.labels(name).set(  # the deadline sweep's queue (shared/infra/store.py)
            await collection.count_documents({"due.deadlines": {"$ne": None, "$lte": now}}))
        oldest = 0.0
        async for doc in collection.find({"outbox_pending": True}, projection={"outbox": 1}):
            for message in doc.get("outbox", [])[:1]:
                oldest = max(oldest, (now - _occurred_at(message["body"])).total_seconds())
        self.outbox_oldest.labels(name).set(oldest)
        counts: dict[str, int] = {}
        async for doc in collection.find({}, projection={"state.status": 1}):
            status = str(doc.get("state", {}).get("status", "none"))
            counts[status] = counts.get(status, 0) + 1
        seen = self._statuses.setdefault(name, set())
        seen |= set(counts)
        for status in seen:  # a status no aggregate has any more reads 0, not its last count
            self.by_status.labels(name, status).set(counts.get(status, 0))

    async def _kafka_figures(self) -> None:
        if self._kafka is None:
            self._kafka = _KafkaProbe(self.runtime.settings.kafka_bootstrap_servers)
        consumer = self.runtime.consumer
        assert consumer is not None
        group = f"{self.runtime.topics.prefix}-{self.runtime.service}"
        for topic, lag in (await self._kafka.lag(group, consumer.sources)).items():
            self.consumer_lag.labels(group, topic).set(lag)
        self.dead_letters.labels(str(self.runtime.service)).set(
            await self._kafka.size(consumer.dead_letter_topic))

    async def close(self) -> None:
        if self._kafka is not None:
            await self._kafka.close()
            self._kafka = None


class Counts:
    """A gauge set from counts read afresh: a label set counted before and absent now reads
    0, not its last count (a pending instruction that was sent, a currency no longer held)."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self._seen: set[tuple[str, ...]] = set()

    def set(self, counts: dict[tuple[str, ...], int]) -> None:
        self._seen |= set(counts)
        for labels in self._seen:
            self.gauge.labels(*labels).set(counts.get(labels, 0))


def _occurred_at(body: str) -> datetime:
    return datetime.fromisoformat(json.loads(body)["occurred_at"])


class _KafkaProbe:
    """Offsets without joining any group: committed offsets of a group, end offsets of topics."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def _started(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            await self._admin.start()
            self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
            await self._consumer.start()
        return self._admin, self._consumer

    async def _partitions(self, topic: str) -> list[TopicPartition]:
        _admin, consumer = await self._started()
        return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]

    async def lag(self, group: str, topics: list[str]) -> dict[str, int]:
        admin, consumer = await self._started()
        await consumer.topics()  # refresh metadata
        committed: dict[Any, Any] = await admin.list_consumer_group_offsets(group)
        lags: dict[str, int] = {}
        for topic in topics:
            partitions = await self._partitions(topic)
            ends = await consumer.end_offsets(partitions) if partitions else {}
            lags[topic] = sum(max(end - (committed[tp].offset if tp in committed else 0), 0)
                              for tp, end in ends.items())
        return lags

    async def size(self, topic: str) -> int:
        _admin, consumer = await self._started()
        await consumer.topics()
        partitions = await self._partitions(topic)
        if not partitions:
            return 0
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()
