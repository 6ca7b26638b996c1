"""Composition root of the shipping service."""

from __future__ import annotations

from shared.contracts.events import ShippingEvent
from shared.contracts.topics import Service, Topics
from shared.infra.clock import Clock, SystemClock
from shared.infra.http import create_app
from shared.infra.messaging import EventConsumer, EventPublisher, make_broker
from shared.infra.runner import AggregateRunner
from shared.infra.runtime import ServiceRuntime, mongo_client
from shared.infra.store import AggregateStore
from services.shipping.api import router
from services.shipping.domain import Shipment
from services.shipping.handlers import ShippingService
from services.shipping.settings import ShippingSettings


def build(settings: ShippingSettings | None = None, clock: Clock | None = None) -> ServiceRuntime:
    settings = settings or ShippingSettings()
    clock = clock or SystemClock()
    topics = Topics(settings.topic_prefix)
    broker = make_broker(settings.kafka_bootstrap_servers, client_id="escrow-shipping")
    mongo = mongo_client(settings)
    store = AggregateStore.in_database(mongo, settings.mongodb_database, "shipments", Shipment)
    publisher = EventPublisher(broker, topics.events(Service.SHIPPING),
                               ShippingEvent.__subclasses__())
    runner = AggregateRunner(store, clock, publisher)
    service = ShippingService(runner, settings)
    consumer = EventConsumer(Service.SHIPPING, broker, topics, service.event_handlers())

    async def create_indexes() -> None:
        await store.create_indexes("status")

    runtime = ServiceRuntime(service=Service.SHIPPING, settings=settings, broker=broker,
                             mongo=mongo, topics=topics, consumer=consumer, runners=[runner],
                             on_start=[create_indexes])
    runtime.http = create_app(
        title="Escrow: shipping",
        description="Proof of dispatch (carrier, validated tracking number, ship date) within "
                    "the delivery period; the ship-by deadline and its reminder.",
        settings=settings, ready=runtime.readiness, lifespan=runtime.lifespan)
    runtime.http.include_router(router(service))
    return runtime
