"""The notify service's own Prometheus figures, read from its email jobs when scraped:
emails by status (the backlog is pending + sending; failed ones gave up); and failed send
attempts, counted as they happen (each is retried until the job gives up)."""

from __future__ import annotations

from collections.abc import Callable

from shared.infra.metrics import ServiceFigures

from services.notify.emails import EmailStatus
from services.notify.repository import COLLECTION


def add_email_figures(figures: ServiceFigures) -> Callable[[], None]:
    """Returns what counts one failed send attempt."""
    emails = figures.gauge("escrow_emails", "Email jobs by status", ["status"])
    failures = figures.counter("escrow_email_send_failures", "Send attempts the mail server did "
                               "not accept (retried with back-off until the job gives up)")

    async def refresh() -> None:
        collection = figures.runtime.database[COLLECTION]
        for status in EmailStatus:
            emails.labels(str(status)).set(await collection.count_documents({"status": str(status)}))

    figures.add(refresh)
    return failures.inc
