"""Composition root of the order service."""

from __future__ import annotations

from shared.contracts.events import OrderEvent
from shared.contracts.topics import Service, Topics
from shared.infra.clock import Clock, SystemClock
from shared.infra.http import create_app
from shared.infra.messaging import EventConsumer, EventPublisher, make_broker
from shared.infra.runner import AggregateRunner
from shared.infra.runtime import ServiceRuntime, mongo_client
from shared.infra.store import AggregateStore
from services.order.api import router
from services.order.domain import Order
from services.order.handlers import OrderService
from services.order.settings import OrderSettings


def build(settings: OrderSettings | None = None, clock: Clock | None = None) -> ServiceRuntime:
    settings = settings or OrderSettings()
    clock = clock or SystemClock()
    topics = Topics(settings.topic_prefix)
    broker = make_broker(settings.kafka_bootstrap_servers, client_id="escrow-order")
    mongo = mongo_client(settings)
    store = AggregateStore.in_database(mongo, settings.mongodb_database, "orders", Order)
    publisher = EventPublisher(broker, topics.events(Service.ORDER), OrderEvent.__subclasses__())
    runner = AggregateRunner(store, clock, publisher)
    service = OrderService(runner, settings)
    consumer = EventConsumer(Service.ORDER, broker, topics, service.event_handlers())

    async def create_indexes() -> None:
        await store.create_indexes("parties.buyer.party_id", "parties.supplier.party_id")

    runtime = ServiceRuntime(service=Service.ORDER, settings=settings, broker=broker, mongo=mongo,
                             topics=topics, consumer=consumer, runners=[runner], on_start=[create_indexes])
    runtime.http = create_app(
        title="Escrow: orders",
        description="Place, confirm, decline and cancel orders; the trade's status and timeline; "
                    "messages between buyer and supplier.",
        settings=settings, ready=runtime.readiness, lifespan=runtime.lifespan)
    runtime.http.include_router(router(service))
    return runtime
