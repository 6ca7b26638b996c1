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
    smtp_pool_size: int = Field(default=4, ge=1, le=64,
                                description="Open SMTP connections kept for reuse (each carries "
                                            "many mails, one at a time).")
    send_concurrency: int = Field(default=8, ge=1, le=256,
                                  description="Mails handed to the SMTP pool at once.")
    send_batch: int = Field(default=100, ge=1, le=1000,
                            description="Due mails claimed by one query, under one lease.")
    # Attempts to send one email before it is marked failed.
    max_attempts: int = Field(default=8, ge=1)
    # First wait before a failed email is retried; doubles per attempt, up to the cap.
    send_backoff_base: timedelta = timedelta(seconds=5)
    # Longest wait between two attempts of one email.
    send_backoff_cap: timedelta = timedelta(minutes=10)
    # Longer than an SMTP exchange can take: past it, a claimed mail is taken over.
    send_lease: timedelta = timedelta(minutes=2)
    verification_code_valid_for: timedelta = Field(
        default=timedelta(hours=24),
        description="How long the code mailed to verify a party's contact email is valid.")
    verification_wrong_codes_allowed: int = Field(
        default=5, ge=1, description="Wrong codes entered before a code is void.")
    verification_mails_per_window: int = Field(
        default=5, ge=1, description="Verification emails one party can make the platform send "
                                     "per window (past it: 429).")
    verification_window: timedelta = Field(
        default=timedelta(days=1), description="The window of that limit.")

    def verification_limits(self) -> VerificationLimits:
        return VerificationLimits(code_valid_for=self.verification_code_valid_for,
                                  wrong_codes_allowed=self.verification_wrong_codes_allowed,
                                  mails_per_window=self.verification_mails_per_window,
                                  window=self.verification_window)
