"""Delivery of stored email jobs over SMTP, retried with exponential backoff.

``EmailSender.send_due`` is a periodic job: it claims what is due, sends it and records
the outcome. A failing mail server delays mails, never the trade: events are consumed
and jobs stored whether or not anything can be sent.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Protocol

from shared.infra.clock import Clock
from services.notify.emails import EmailJob
from services.notify.repository import EmailJobs

log = logging.getLogger(__name__)

EVENT_ID_HEADER = "X-Escrow-Event-Id"
STEP_HEADER = "X-Escrow-Step"
ORDER_ID_HEADER = "X-Escrow-Order-Id"


class MailTransport(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Hand the message to the mail server; raise if it was not accepted."""


class SmtpTransport:
    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(message)


def build_message(job: EmailJob, mail_from: str, now: datetime) -> EmailMessage:
    """A multipart/alternative mail (text, then HTML) whose Message-ID is derived from the
    job id, so a resend after a lost acknowledgement is recognisably the same mail."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "escrow.example"
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = job.to
    message["Subject"] = job.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{job.id.replace(':', '.')}@{domain}>"
    message[EVENT_ID_HEADER] = job.event_id
    message[STEP_HEADER] = job.step
    message[ORDER_ID_HEADER] = job.order_id
    message.set_content(job.text)
    message.add_alternative(job.html, subtype="html")
    return message


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    backoff_base: timedelta = timedelta(seconds=5)
    backoff_factor: float = 2.0
    backoff_cap: timedelta = timedelta(minutes=10)
    # How long a claimed job is ours; past it another round may take it over.
    lease: timedelta = timedelta(minutes=2)
    batch: int = 50

    def delay_after(self, attempts: int) -> timedelta:
        """The wait before the next try, after ``attempts`` failed tries (1, 2, ...)."""
        return min(self.backoff_base * self.backoff_factor ** (attempts - 1), self.backoff_cap)


class EmailSender:
    def __init__(self, jobs: EmailJobs, transport: MailTransport, clock: Clock, *, mail_from: str,
                 policy: RetryPolicy = RetryPolicy()) -> None:
        self.jobs = jobs
        self.transport = transport
        self.clock = clock
        self.mail_from = mail_from
        self.policy = policy

    async def send_due(self) -> int:
        """Send every job that is due, batch after batch while batches come back full;
        returns how many were sent. A failed job is due again only later, so this ends."""
        sent = 0
        while True:
            batch = await self.jobs.claim_due(self.clock.now(), self.policy.lease, self.policy.batch)
            for job in batch:
                sent += await self._send(job)
            if len(batch) < self.policy.batch:
                return sent

    async def _send(self, job: EmailJob) -> int:
        if job.attempts > self.policy.max_attempts:
            # Claimed again after its lease ran out mid-send, with no tries left.
            await self._give_up(job, job.last_error or "the sender stopped while sending")
            return 0
        try:
            await self.transport.send(build_message(job, self.mail_from, self.clock.now()))
        except Exception as exc:
            await self._failed(job, f"{type(exc).__name__}: {exc}")
            return 0
        if await self.jobs.mark_sent(job, self.clock.now()):
            log.info("sent %s (%s) to %s for order %s", job.step, job.id, job.to, job.order_id)
            return 1
        return 0

    async def _failed(self, job: EmailJob, error: str) -> None:
        if job.attempts >= self.policy.max_attempts:
            await self._give_up(job, error)
            return
        retry_at = self.clock.now() + self.policy.delay_after(job.attempts)
        log.warning("sending %s to %s failed (attempt %d of %d): %s; retrying at %s",
                    job.id, job.to, job.attempts, self.policy.max_attempts, error,
                    retry_at.isoformat())
        await self.jobs.retry_later(job, retry_at, error)

    async def _give_up(self, job: EmailJob, error: str) -> None:
        log.error("giving up on %s (%s) to %s for order %s after %d attempts: %s",
                  job.id, job.step, job.to, job.order_id, job.attempts, error)
        await self.jobs.give_up(job, error)
