"""Composition root of the dispute service."""

from __future__ import annotations

from shared.contracts.events import DisputeEvent
from shared.contracts.topics import Service, Topics
from shared.infra.clock import Clock, SystemClock
from shared.infra.http import create_app
from shared.infra.messaging import EventConsumer, EventPublisher, make_broker
from shared.infra.runner import AggregateRunner
from shared.infra.runtime import ServiceRuntime, mongo_client
from shared.infra.store import AggregateStore
from services.dispute.api import router
from services.dispute.attachments import AttachmentStore
from services.dispute.domain import BuyerProtection
from services.dispute.handlers import DisputeService
from services.dispute.settings import DisputeSettings


def build(settings: DisputeSettings | None = None, clock: Clock | None = None) -> ServiceRuntime:
    settings = settings or DisputeSettings()
    clock = clock or SystemClock()
    topics = Topics(settings.topic_prefix)
    broker = make_broker(settings.kafka_bootstrap_servers, client_id="escrow-dispute")
    mongo = mongo_client(settings)
    store = AggregateStore.in_database(mongo, settings.mongodb_database, "protections",
                                       BuyerProtection)
    attachments = AttachmentStore.in_database(mongo, settings.mongodb_database,
                                              "dispute_attachments")
    publisher = EventPublisher(broker, topics.events(Service.DISPUTE), DisputeEvent.__subclasses__())
    runner = AggregateRunner(store, clock, publisher)
    service = DisputeService(runner, attachments, settings)
    consumer = EventConsumer(Service.DISPUTE, broker, topics, service.event_handlers())

    async def create_indexes() -> None:
        await store.create_indexes("status", "parties.buyer.party_id", "parties.supplier.party_id")
        await attachments.create_indexes()

    runtime = ServiceRuntime(service=Service.DISPUTE, settings=settings, broker=broker, mongo=mongo,
                             topics=topics, consumer=consumer, runners=[runner], on_start=[create_indexes])
    runtime.http = create_app(
        title="Escrow: buyer protection and disputes",
        description="Receipt confirmation (by the buyer or automatic), disputes between buyer and "
                    "supplier, and customer service's decisions on escalated disputes.",
        settings=settings, ready=runtime.readiness, lifespan=runtime.lifespan)
    runtime.http.include_router(router(service))
    return runtime
