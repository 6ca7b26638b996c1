"""Composition root of the shipping service."""

from __future__ import annotations

from shared.contracts.events import ShippingEvent
from shared.contracts.topics import Service
from shared.infra.clock import Clock, clock_for
from shared.infra.runtime import ServiceRuntime
from shared.infra.subscriptions import subscriptions

from services.shipping.api import router
from services.shipping.domain import Shipment
from services.shipping.handlers import ShippingService
from services.shipping.settings import ShippingSettings


def build(settings: ShippingSettings | None = None, clock: Clock | None = None) -> ServiceRuntime:
    settings = settings or ShippingSettings()
    runtime = ServiceRuntime.create(Service.SHIPPING, settings)
    runner = runtime.aggregate_runner("shipments", Shipment, ShippingEvent,
                                      clock or clock_for(settings.clock_offset_file))
    service = ShippingService(runner, settings)
    runtime.consume(subscriptions(service))
    runtime.on_start.append(lambda: runner.store.create_indexes("status"))
    runtime.serve_http(
        "Escrow: shipping",
        "Proof of dispatch (carrier, validated tracking number, ship date) within the delivery "
        "period; the ship-by deadline and its reminder.", router(service))
    return runtime
