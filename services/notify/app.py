"""Composition root of the notify service."""

from __future__ import annotations

from shared.contracts.topics import Service, Topics
from shared.infra.clock import Clock, SystemClock
from shared.infra.http import create_app
from shared.infra.messaging import EventConsumer, make_broker
from shared.infra.runtime import Job, ServiceRuntime, mongo_client
from services.notify.api import router
from services.notify.handlers import Notifications
from services.notify.repository import COLLECTION, EmailRepository
from services.notify.sender import EmailSender, MailTransport, RetryPolicy, SmtpTransport
from services.notify.settings import NotifySettings


def build(settings: NotifySettings | None = None, clock: Clock | None = None,
          transport: MailTransport | None = None) -> ServiceRuntime:
    settings = settings or NotifySettings()
    clock = clock or SystemClock()
    topics = Topics(settings.topic_prefix)
    broker = make_broker(settings.kafka_bootstrap_servers, client_id="escrow-notify")
    mongo = mongo_client(settings)
    jobs = EmailRepository(mongo[settings.mongodb_database][COLLECTION])
    notifications = Notifications(jobs, clock, customer_service_email=settings.customer_service_email,
                                  dispute_opens_after=settings.dispute_opens_after)
    consumer = EventConsumer(Service.NOTIFY, broker, topics, notifications.handlers())
    sender = EmailSender(
        jobs, transport or SmtpTransport(settings.smtp_host, settings.smtp_port,
                                         settings.smtp_timeout_seconds),
        clock, mail_from=settings.mail_from,
        policy=RetryPolicy(max_attempts=settings.max_attempts,
                           backoff_base=settings.send_backoff_base,
                           backoff_cap=settings.send_backoff_cap, lease=settings.send_lease))

    runtime = ServiceRuntime(
        service=Service.NOTIFY, settings=settings, broker=broker, mongo=mongo, topics=topics,
        consumer=consumer, jobs=[Job("send-emails", settings.notify_send_interval_seconds,
                                     sender.send_due)],
        on_start=[jobs.create_indexes])
    runtime.http = create_app(
        title="Escrow: notifications",
        description="Every step of the trade is mailed to the buyer and the supplier (and "
                    "escalated disputes to customer service); what was sent to whom.",
        settings=settings, ready=runtime.readiness, lifespan=runtime.lifespan)
    runtime.http.include_router(router(notifications))
    return runtime
