"""Composition root of the notify service."""

from __future__ import annotations

from prometheus_client import Counter

from shared.contracts.topics import Service
from shared.infra.clock import Clock, SystemClock, clock_for
from shared.infra.runtime import Job, ServiceRuntime

from services.notify.api import router
from services.notify.contact_book import COLLECTION as CONTACTS
from services.notify.contact_book import ContactBook, ContactStore
from services.notify.figures import add_email_figures
from services.notify.handlers import Notifications
from services.notify.repository import COLLECTION, EmailRepository
from services.notify.sender import EmailSender, MailTransport, RetryPolicy, SmtpTransport
from services.notify.settings import NotifySettings


def build(settings: NotifySettings | None = None, clock: Clock | None = None,
          transport: MailTransport | None = None) -> ServiceRuntime:
    settings = settings or NotifySettings()
    clock = clock or clock_for(settings.clock_offset_file)
    runtime = ServiceRuntime.create(Service.NOTIFY, settings)
    jobs = EmailRepository(runtime.database[COLLECTION])
    waited = Counter("notify_mails_waiting_for_contact", "Mails stored to wait for a party's "
                     "verified contact email", registry=runtime.metrics)
    released = Counter("notify_mails_released_to_contact", "Waiting mails released once the "
                       "party's contact email was verified", registry=runtime.metrics)
    contacts = ContactBook(ContactStore(runtime.database[CONTACTS]), jobs, clock,
                           settings.verification_limits(), on_released=released.inc)
    notifications = Notifications(jobs, contacts, clock,
                                  customer_service_email=settings.customer_service_email,
                                  on_waiting=waited.inc)
    runtime.consume(notifications.handlers())
    count_send_failure = add_email_figures(runtime.figures)
    sender = EmailSender(
        jobs, transport or SmtpTransport(settings.smtp_host, settings.smtp_port,
                                         settings.smtp_timeout_seconds,
                                         pool_size=settings.smtp_pool_size),
        clock, mail_from=settings.mail_from,
        policy=RetryPolicy(max_attempts=settings.max_attempts,
                           backoff_base=settings.send_backoff_base,
                           backoff_cap=settings.send_backoff_cap, lease=settings.send_lease,
                           batch=settings.send_batch, concurrency=settings.send_concurrency),
        lease_clock=SystemClock(), on_failure=count_send_failure)
    runtime.on_start.append(jobs.create_indexes)
    runtime.jobs.append(Job("send-emails", settings.notify_send_interval_seconds, sender.send_due))
    runtime.serve_http(
        "Escrow: notifications",
        "Every step of the trade is mailed to the buyer and the supplier (and escalated "
        "disputes to customer service), at the contact email each party registered and "
        "verified itself; what was sent to whom.", router(notifications, contacts))
    return runtime
