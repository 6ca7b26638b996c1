"""Composition root of the payment service."""

from __future__ import annotations

import logging

from shared.contracts.events import PaymentEvent
from shared.contracts.topics import Service
from shared.infra.clock import Clock, clock_for
from shared.infra.runtime import Job, ServiceRuntime
from services.payment.api import PROBLEMS, router
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
    if settings.uses_dev_data_key:
        log.warning("PAYMENT_DATA_KEY is not set: personal payment data is sealed with the "
                    "DEV-ONLY key from the source code. Never run like this with real data.")
    runtime = ServiceRuntime.create(Service.PAYMENT, settings)
    runner = runtime.aggregate_runner("escrows", Escrow, PaymentEvent, clock or clock_for(settings.clock_offset_file))
    unmatched = UnmatchedTransfers(runtime.database["unmatched_transfers"])
    service = PaymentService(runner, unmatched, provider or SandboxProvider(),
                             PaymentDataVault(settings.payment_data_key.get_secret_value()), settings)
    runtime.consume(service.event_handlers())

    async def create_indexes() -> None:
        await runner.store.create_indexes("reference", "instructions_pending")
        await unmatched.create_indexes()

    runtime.on_start.append(create_indexes)
    runtime.jobs.append(Job("instructions", settings.instruction_sweep_seconds,
                            service.sweep_instructions))
    runtime.serve_http(
        "Escrow: payments",
        "Escrow per order as a double-entry ledger: card payments, bank transfers matched by "
        "reference, releases to the supplier and refunds to the buyer.", router(service),
        problems=PROBLEMS)
    return runtime
