"""Composition root of the order service."""

from __future__ import annotations

from shared.contracts.events import OrderEvent
from shared.contracts.topics import Service
from shared.infra.clock import Clock, clock_for
from shared.infra.runtime import ServiceRuntime
from shared.infra.subscriptions import subscriptions

from services.order.api import router
from services.order.domain import Order
from services.order.handlers import OrderService
from services.order.settings import OrderSettings


def build(settings: OrderSettings | None = None, clock: Clock | None = None) -> ServiceRuntime:
    settings = settings or OrderSettings()
    runtime = ServiceRuntime.create(Service.ORDER, settings)
    clock = clock or clock_for(settings.clock_offset_file)
    runner = runtime.aggregate_runner("orders", Order, OrderEvent, clock)
    service = OrderService(runner, settings, runtime.rate_limiter(clock))
    runtime.consume(subscriptions(service))
    runtime.on_start.append(lambda: runner.store.create_indexes(
        "parties.buyer.party_id", "parties.supplier.party_id"))
    runtime.serve_http(
        "Escrow: orders",
        "Place, confirm, decline and cancel orders; the trade's status and timeline; "
        "messages between buyer and supplier.", router(service))
    return runtime
