"""The notify service's own Prometheus figures, read from its email jobs when scraped:
emails by status (the backlog is pending + sending; failed ones gave up)."""

from __future__ import annotations

from shared.infra.metrics import ServiceFigures

from services.notify.emails import EmailStatus
from services.notify.repository import COLLECTION


def add_email_figures(figures: ServiceFigures) -> None:
    emails = figures.gauge("escrow_emails", "Email jobs by status", ["status"])

    async def refresh() -> None:
        collection = figures.runtime.database[COLLECTION]
        for status in EmailStatus:
            emails.labels(str(status)).set(await collection.count_documents({"status": str(status)}))

    figures.add(refresh)
