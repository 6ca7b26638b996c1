"""Composition root of the payment service."""

from __future__ import annotations

import logging
from datetime import timedelta

from shared.contracts.events import PaymentEvent
from shared.contracts.topics import Service
from shared.infra.clock import Clock, clock_for
from shared.infra.runtime import Job, ServiceRuntime
from shared.infra.subscriptions import subscriptions

from services.payment.api import PROBLEMS, router
from services.payment.bank_signature import BankSignatureCheck, SeenSignatures, parse_keys
from services.payment.bank_transfers import BankTransfers
from services.payment.domain import Escrow
from services.payment.figures import add_payment_figures
from services.payment.payouts import ESCROW_DUE
from services.payment.provider import PaymentProvider
from services.payment.sandbox_provider import StoredSandboxProvider
from services.payment.service import Payments
from services.payment.settings import PaymentSettings
from services.payment.vault import PaymentDataVault

log = logging.getLogger(__name__)


def build(settings: PaymentSettings | None = None, clock: Clock | None = None,
          provider: PaymentProvider | None = None) -> ServiceRuntime:
    settings = settings or PaymentSettings()
    if settings.uses_dev_data_key:
        log.warning("PAYMENT_DATA_KEY is not set: personal payment data is sealed with the "
                    "DEV-ONLY key from the source code. Never run like this with real data.")
    if settings.uses_dev_bank_keys:
        log.warning("BANK_WEBHOOK_KEYS is not set: bank notifications are checked against the "
                    "DEV-ONLY sandbox key from the source code, which anyone can sign with.")
    clock = clock or clock_for(settings.clock_offset_file)
    runtime = ServiceRuntime.create(Service.PAYMENT, settings)
    runner = runtime.aggregate_runner("escrows", Escrow, PaymentEvent, clock, due=ESCROW_DUE)
    transfers = BankTransfers(runtime.database["bank_transfers"])
    seen = SeenSignatures(runtime.database["bank_notifications"])
    sandbox = StoredSandboxProvider(runtime.mongo[f"{settings.mongodb_database}_sandbox_provider"],
                                    clock)
    payments = Payments.create(runner, transfers, provider or sandbox,
                               PaymentDataVault(settings.payment_data_key.get_secret_value()), settings)
    bank_signatures = BankSignatureCheck(
        parse_keys(settings.bank_webhook_keys.get_secret_value()), seen, clock,
        timedelta(seconds=settings.bank_webhook_tolerance_seconds))
    runtime.consume(subscriptions(payments.reactions))

    async def create_indexes() -> None:
        await runner.store.create_indexes("reference")
        await transfers.create_indexes()
        await seen.create_indexes()
        if provider is None:
            await sandbox.create_indexes()

    runtime.on_start.append(create_indexes)
    add_payment_figures(runtime.figures)
    runtime.jobs.append(Job("instructions", settings.instruction_sweep_seconds,
                            payments.sweep_instructions))
    runtime.jobs.append(Job("card reconciliation", settings.reconcile_seconds,
                            payments.cards.reconcile))
    runtime.serve_http(
        "Escrow: payments",
        "Escrow per order as a double-entry ledger: card payments, bank transfers matched by "
        "reference, releases to the supplier and refunds to the buyer.",
        router(payments, bank_signatures), problems=PROBLEMS)
    return runtime
