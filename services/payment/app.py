"""Composition root of the payment service."""

from __future__ import annotations

import logging

from shared.contracts.events import PaymentEvent
from shared.contracts.topics import Service, Topics
from shared.infra.clock import Clock, SystemClock
from shared.infra.http import create_app
from shared.infra.messaging import EventConsumer, EventPublisher, make_broker
from shared.infra.runner import AggregateRunner
from shared.infra.runtime import Job, ServiceRuntime, mongo_client
from shared.infra.store import AggregateStore
from services.payment.api import router
from services.payment.domain import Escrow
from services.payment.handlers import PaymentService
from services.payment.provider import PaymentProvider, SandboxProvider
from services.payment.settings import PaymentSettings
from services.payment.unmatched import UnmatchedTransfers
from services.payment.vault import PaymentDataVault

log = logging.getLogger(__name__)


def build(settings: PaymentSettings | None = None, clock: Clock | None = None,
          provider: PaymentProvider | None = None) -> ServiceRuntime:
    settings = settings or PaymentSettings()
    clock = clock or SystemClock()
    if settings.uses_dev_data_key:
        log.warning("PAYMENT_DATA_KEY is not set: personal payment data is sealed with the "
                    "DEV-ONLY key from the source code. Never run like this with real data.")
    topics = Topics(settings.topic_prefix)
    broker = make_broker(settings.kafka_bootstrap_servers, client_id="escrow-payment")
    mongo = mongo_client(settings)
    database = mongo[settings.mongodb_database]
    store = AggregateStore(database["escrows"], Escrow)
    unmatched = UnmatchedTransfers(database["unmatched_transfers"])
    publisher = EventPublisher(broker, topics.events(Service.PAYMENT), PaymentEvent.__subclasses__())
    runner = AggregateRunner(store, clock, publisher)
    service = PaymentService(runner, unmatched, provider or SandboxProvider(),
                             PaymentDataVault(settings.payment_data_key.get_secret_value()), settings)
    consumer = EventConsumer(Service.PAYMENT, broker, topics, service.event_handlers())

    async def create_indexes() -> None:
        await store.create_indexes("reference", "instructions_pending")
        await unmatched.create_indexes()

    runtime = ServiceRuntime(
        service=Service.PAYMENT, settings=settings, broker=broker, mongo=mongo, topics=topics,
        consumer=consumer, runners=[runner], on_start=[create_indexes],
        jobs=[Job("instructions", settings.instruction_sweep_seconds, service.sweep_instructions)])
    runtime.http = create_app(
        title="Escrow: payments",
        description="Escrow per order as a double-entry ledger: card payments, bank transfers "
                    "matched by reference, releases to the supplier and refunds to the buyer.",
        settings=settings, ready=runtime.readiness, lifespan=runtime.lifespan)
    runtime.http.include_router(router(service))
    return runtime
