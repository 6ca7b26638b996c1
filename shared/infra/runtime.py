"""What one service process runs: its Kafka broker (consumer and publisher), its MongoDB
client, the periodic sweeps (outbox, deadlines, service jobs) and its HTTP app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pymongo
import uvicorn
from fastapi import APIRouter, FastAPI
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.contracts.envelope import TradeEvent
from shared.contracts.topics import Service, Topics
from shared.domain.aggregate import Aggregate
from shared.infra import telemetry
from shared.infra.clock import Clock
from shared.infra.http import PROBLEM_RESPONSES, Problems, create_app
from shared.infra.kafka_security import broker_security, client_options
from shared.infra.logging import configure_logging
from shared.infra.messaging import EventConsumer, EventHandler, EventPublisher, ensure_topics, make_broker
from shared.infra.metrics import ServiceFigures
from shared.infra.rate_limit import COLLECTION as RATE_LIMITS
from shared.infra.rate_limit import MongoWindowCounts, RateLimiter
from shared.infra.runner import AggregateRunner, run_periodically
from shared.infra.settings import ServiceSettings
from shared.infra.signing import EnvelopeAuthenticator
from shared.infra.specification import asyncapi_document
from shared.infra.store import STORED_DEADLINES, AggregateStore, DueTimes
from shared.infra.telemetry import configure_tracing

log = logging.getLogger(__name__)


@dataclass
class Job:
    name: str
    interval: float
    run: Callable[[], Awaitable[int]]


@dataclass
class ServiceRuntime:
    service: Service
    settings: ServiceSettings
    broker: KafkaBroker
    mongo: AsyncMongoClient[dict[str, Any]]
    topics: Topics
    authenticator: EnvelopeAuthenticator | None = None
    consumer: EventConsumer | None = None
    runners: list[AggregateRunner[Any]] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    on_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    http: FastAPI | None = None
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    figures: ServiceFigures = field(init=False)

    def __post_init__(self) -> None:
        self.figures = ServiceFigures(self, self.metrics)

    # --- composition: what every service's composition root does the same way ---------

    @classmethod
    def create(cls, service: Service, settings: ServiceSettings) -> ServiceRuntime:
        settings.check_secrets()
        configure_tracing(str(service), settings.tracing)  # before the MongoDB client exists
        metrics = CollectorRegistry()
        topics = Topics(settings.topic_prefix)
        return cls(service=service, settings=settings, topics=topics,
                   broker=make_broker(settings.kafka_bootstrap_servers, f"escrow-{service}", metrics,
                                      broker_security(settings)),
                   mongo=mongo_client(settings), metrics=metrics,
                   authenticator=EnvelopeAuthenticator.from_settings(service, topics, settings))

    @property
    def database(self) -> AsyncDatabase[dict[str, Any]]:
        return self.mongo[self.settings.mongodb_database]

    def aggregate_runner(self, collection: str, aggregate_type: type[Aggregate],
                         events: type[TradeEvent], clock: Clock,
                         due: DueTimes = STORED_DEADLINES) -> AggregateRunner[Any]:
        """A runner for the service's aggregate, publishing the service's events (the direct
        subclasses of ``events``) on its topic, swept for outbox and deadlines (and the
        other sweep queues named in ``due``)."""
        publisher = EventPublisher(self.broker, self.topics.events(self.service), events.__subclasses__(),
                                   signer=self.authenticator)
        runner = AggregateRunner(AggregateStore(self.database[collection], aggregate_type, due),
                                 clock, publisher, metrics=self.metrics, service=str(self.service))
        self.runners.append(runner)
        self.figures.collections.append((collection, clock))
        return runner

    def rate_limiter(self, clock: Clock) -> RateLimiter:
        """Per-party rate limits, counted in this service's own collection."""
        counts = MongoWindowCounts(self.database[RATE_LIMITS])
        self.on_start.append(counts.create_indexes)
        return RateLimiter(counts, clock)

    def consume(self, handlers: dict[type[TradeEvent], EventHandler]) -> None:
        self.consumer = EventConsumer(self.service, self.broker, self.topics, handlers,
                                      authenticator=self.authenticator)

    def serve_http(self, title: str, description: str, router: APIRouter,
                   problems: Problems | None = None) -> None:
        """``problems``: the HTTP answer of the service's own error types."""
        self.http = create_app(title=title, description=description, settings=self.settings,
                               ready=self.readiness, lifespan=self.lifespan, metrics=self.metrics,
                               problems=problems, refresh_metrics=self.figures.refresh,
                               service=str(self.service))
        self.http.include_router(router, responses=PROBLEM_RESPONSES)
        document: dict[str, Any] = {}

        @self.http.get("/asyncapi", tags=["contracts"],
                       summary="AsyncAPI document of the events this service publishes and receives")
        async def asyncapi() -> dict[str, Any]:
            if not document:
                document.update(asyncapi_document([self]))
            return document

    # --- running ---------------------------------------------------------------------------

    async def start(self, *, background_jobs: bool = True) -> None:
        """Connect, then publish what a previous run left in the outbox, then consume.
        Tests that drive the clock pass ``background_jobs=False`` and sweep by hand."""
        await ensure_topics(self.settings.kafka_bootstrap_servers, self.topics.all(),
                            self.settings.topic_partitions, self.settings.topic_replication_factor,
                            **client_options(self.settings))
        for prepare in self.on_start:
            await prepare()
        await self.broker.start()
        for runner in self.runners:
            await runner.sweep_outbox()
        if background_jobs:
            for job in self.all_jobs():
                self._tasks.append(asyncio.create_task(
                    run_periodically(job.name, job.interval, job.run), name=f"{self.service}:{job.name}"))
        log.info("%s service started (topics prefix %r)", self.service, self.topics.prefix)

    def all_jobs(self) -> list[Job]:
        jobs = list(self.jobs)
        for i, runner in enumerate(self.runners):
            jobs.append(Job(f"outbox-{i}", self.settings.outbox_sweep_seconds, runner.sweep_outbox))
            jobs.append(Job(f"deadlines-{i}", self.settings.deadline_sweep_seconds,
                            runner.sweep_deadlines))
        return jobs

    async def run_jobs_once(self) -> None:
        """One round of every periodic job, in order (for tests with a manual clock)."""
        for job in self.all_jobs():
            await job.run()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.broker.stop()
        await self.figures.close()
        await self.mongo.close()
        telemetry.flush()
        log.info("%s service stopped", self.service)

    async def readiness(self) -> dict[str, str]:
        """Both dependencies checked at once, each within most of the readiness timeout
        (the client's own server selection waits far longer); the rest is the HTTP
        route's margin for its answer."""
        timeout = self.settings.readiness_timeout_seconds * 0.6

        async def mongodb() -> str:
            try:
                with pymongo.timeout(timeout):
                    await self.mongo.admin.command("ping")
                return "ok"
            except Exception as exc:  # reported, not raised: this is a health probe
                return f"failed: {type(exc).__name__}: {exc}"[:300]

        async def kafka() -> str:
            try:
                answered = await asyncio.wait_for(self.broker.ping(timeout=timeout), timeout)
            except TimeoutError:
                answered = False
            return "ok" if answered else f"failed: no answer within {timeout:.2f}s"

        mongo_check, kafka_check = await asyncio.gather(mongodb(), kafka())
        return {"mongodb": mongo_check, "kafka": kafka_check}

    @asynccontextmanager
    async def lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()


def mongo_client(settings: ServiceSettings) -> AsyncMongoClient[dict[str, Any]]:
    return AsyncMongoClient(settings.mongodb_url, tz_aware=True, serverSelectionTimeoutMS=10_000)


def serve(runtime: ServiceRuntime) -> None:
    """Run a service as a process: HTTP on the configured port, the rest in its lifespan."""
    settings = runtime.settings
    configure_logging(str(runtime.service), settings.log_level, settings.log_format)
    assert runtime.http is not None
    # uvicorn's own logging config and access log are off: ours (one JSON line per
    # request, without health probes) is written by the HTTP middleware.
    uvicorn.run(runtime.http, host=settings.http_host, port=settings.http_port,
                log_level=settings.log_level.lower(), log_config=None, access_log=False,
                use_colors=False)
