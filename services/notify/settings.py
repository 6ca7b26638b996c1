from __future__ import annotations

from datetime import timedelta

from pydantic import EmailStr, Field

from shared.infra.settings import ServiceSettings
from services.notify.contacts import VerificationLimits


class NotifySettings(ServiceSettings):
    http_port: int = 8005
    # SMTP server the emails are sent through.
    smtp_host: str = "127.0.0.1"
    # Its port.
    smtp_port: int = 1025
    # Longest wait for one SMTP exchange.
    smtp_timeout_seconds: float = 30.0
    # Sender of every email.
    mail_from: str = "Escrow <notifications@escrow.example>"
    # Where escalated disputes are announced.
    customer_service_email: EmailStr = "disputes@escrow.example"
    # How often due emails are looked for.
    notify_send_interval_seconds: float = 1.0
    # Open SMTP connections kept for reuse, and mails in flight at once.
    smtp_pool_size: int = Field(default=4, ge=1, le=64)
    send_concurrency: int = Field(default=8, ge=1, le=256)
    # Due mails claimed by one query (each under the same lease).
    send_batch: int = Field(default=100, ge=1, le=1000)
    # Attempts to send one email before it is marked failed.
    max_attempts: int = Field(default=8, ge=1)
    # First wait before a failed email is retried; doubles per attempt, up to the cap.
    send_backoff_base: timedelta = timedelta(seconds=5)
    # Longest wait between two attempts of one email.
    send_backoff_cap: timedelta = timedelta(minutes=10)
    # Longer than an SMTP exchange can take: past it, a claimed mail is taken over.
    send_lease: timedelta = timedelta(minutes=2)
    # A party's own contact email: how long a mailed code is valid, wrong codes allowed,
    # and how many verification mails one party can make the platform send per window.
    verification_code_valid_for: timedelta = timedelta(hours=24)
    verification_wrong_codes_allowed: int = Field(default=5, ge=1)
    verification_mails_per_window: int = Field(default=5, ge=1)
    verification_window: timedelta = timedelta(days=1)

    def verification_limits(self) -> VerificationLimits:
        return VerificationLimits(code_valid_for=self.verification_code_valid_for,
                                  wrong_codes_allowed=self.verification_wrong_codes_allowed,
                                  mails_per_window=self.verification_mails_per_window,
                                  window=self.verification_window)
