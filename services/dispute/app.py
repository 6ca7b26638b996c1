"""Composition root of the dispute service."""

from __future__ import annotations

from shared.contracts.events import DisputeEvent
from shared.contracts.topics import Service
from shared.infra.clock import Clock, clock_for
from shared.infra.runtime import ServiceRuntime
from shared.infra.subscriptions import subscriptions

from services.dispute.api import router
from services.dispute.attachments import AttachmentStore
from services.dispute.domain import BuyerProtection
from services.dispute.handlers import DisputeService
from services.dispute.settings import DisputeSettings


def build(settings: DisputeSettings | None = None, clock: Clock | None = None) -> ServiceRuntime:
    settings = settings or DisputeSettings()
    runtime = ServiceRuntime.create(Service.DISPUTE, settings)
    clock = clock or clock_for(settings.clock_offset_file)
    runner = runtime.aggregate_runner("protections", BuyerProtection, DisputeEvent, clock)
    attachments = AttachmentStore(runtime.database["dispute_attachments"])
    service = DisputeService(runner, attachments, settings, runtime.rate_limiter(clock))
    runtime.consume(subscriptions(service))

    async def create_indexes() -> None:
        await runner.store.create_indexes("status", "parties.buyer.party_id",
                                          "parties.supplier.party_id")
        await attachments.create_indexes()

    runtime.on_start.append(create_indexes)
    runtime.serve_http(
        "Escrow: buyer protection and disputes",
        "Receipt confirmation (by the buyer or automatic), disputes between buyer and supplier, "
        "and customer service's decisions on escalated disputes.", router(service))
    return runtime
