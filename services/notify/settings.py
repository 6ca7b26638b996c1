from __future__ import annotations

from datetime import timedelta

from pydantic import EmailStr, Field

from shared.infra.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    http_port: int = 8005
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_timeout_seconds: float = 30.0
    mail_from: str = "Escrow <notifications@escrow.example>"
    customer_service_email: EmailStr = "disputes@escrow.example"
    notify_send_interval_seconds: float = 1.0
    # Open SMTP connections kept for reuse, and mails in flight at once.
    smtp_pool_size: int = Field(default=4, ge=1, le=64)
    send_concurrency: int = Field(default=8, ge=1, le=256)
    # Due mails claimed by one query (each under the same lease).
    send_batch: int = Field(default=100, ge=1, le=1000)
    max_attempts: int = Field(default=8, ge=1)
    send_backoff_base: timedelta = timedelta(seconds=5)
    send_backoff_cap: timedelta = timedelta(minutes=10)
    # Longer than an SMTP exchange can take: past it, a claimed mail is taken over.
    send_lease: timedelta = timedelta(minutes=2)
    # Shown in the "shipped" mail; the dispute service's setting of the same meaning.
    dispute_opens_after: timedelta = timedelta(days=5)
