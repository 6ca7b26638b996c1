"""Delivery of stored email jobs over SMTP, retried with exponential backoff.

``EmailSender.send_due`` is a periodic job: it claims what is due, sends it and records
the outcome. A failing mail server delays mails, never the trade: events are consumed
and jobs stored whether or not anything can be sent.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, parseaddr
from typing import Protocol

from opentelemetry.trace import SpanKind
from pymongo.errors import ConnectionFailure

from shared.infra import context, telemetry
from shared.infra.clock import Clock

from services.notify.emails import EmailJob
from services.notify.repository import EmailJobs

log = logging.getLogger(__name__)

EVENT_ID_HEADER = "X-Escrow-Event-Id"
STEP_HEADER = "X-Escrow-Step"
ORDER_ID_HEADER = "X-Escrow-Order-Id"


class MailTransport(Protocol):
    async def send(self, message: Message) -> None:
        """Hand the message to the mail server; raise if it was not accepted."""


class SmtpTransport:
    """SMTP with a bounded pool of open connections: a connection carries many mails, one
    at a time. A pooled connection the server dropped while idle is replaced once; any other
    failure closes the connection and is the caller's failed attempt."""

    def __init__(self, host: str, port: int, timeout: float = 30.0, *, pool_size: int = 4,
                 mails_per_connection: int = 100) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.mails_per_connection = mails_per_connection
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[_Connection] = []
        self.connections_opened = 0

    async def send(self, message: Message) -> None:
        async with self._slots:
            pooled = self._idle.pop() if self._idle else None
            connection = await asyncio.to_thread(self._send, pooled, message)
            if connection.sent < self.mails_per_connection:
                self._idle.append(connection)
            else:
                await asyncio.to_thread(connection.close)

    def _send(self, pooled: _Connection | None, message: Message) -> _Connection:
        if pooled is not None:
            try:
                return pooled.send(message)
            except (smtplib.SMTPServerDisconnected, ConnectionError):
                pass  # dropped while idle (server timeout, restart): not an answer to this mail
            except BaseException:
                pooled.close()
                raise
            pooled.close()
        connection = _Connection(smtplib.SMTP(self.host, self.port, timeout=self.timeout))
        self.connections_opened += 1
        try:
            return connection.send(message)
        except BaseException:
            connection.close()
            raise

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await asyncio.to_thread(connection.close)


@dataclass
class _Connection:
    smtp: smtplib.SMTP
    sent: int = 0

    def send(self, message: Message) -> _Connection:
        self.smtp.send_message(message)
        self.sent += 1
        return self

    def close(self) -> None:
        try:
            self.smtp.quit()
        except (smtplib.SMTPException, OSError):
            self.smtp.close()  # the server is gone already: just drop the socket


def build_message(job: EmailJob, mail_from: str, now: datetime) -> Message:
    """A multipart/alternative mail (text, then HTML) whose Message-ID is derived from the
    job id, so a resend after a lost acknowledgement is recognisably the same mail.

    Built with the classic MIME classes: about a quarter of the CPU of ``EmailMessage`` with
    its content manager, which dominated notify's busy time under load."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "escrow.example"
    message = MIMEMultipart("alternative")
    message["From"] = mail_from
    message["To"] = job.to
    message["Subject"] = Header(job.subject, "utf-8").encode() if not job.subject.isascii() \
        else job.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{job.id.replace(':', '.')}@{domain}>"
    message[EVENT_ID_HEADER] = job.event_id
    message[STEP_HEADER] = job.step
    if job.order_id is not None:
        message[ORDER_ID_HEADER] = job.order_id
    message.attach(MIMEText(job.text, "plain", "utf-8"))
    message.attach(MIMEText(job.html, "html", "utf-8"))
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
    # Mails handed to the transport at once (the SMTP pool bounds open connections).
    concurrency: int = 8
    # Recording a mail as sent is retried this often while the database is unreachable.
    record_retry: timedelta = timedelta(seconds=1)

    def delay_after(self, attempts: int) -> timedelta:
        """The wait before the next try, after ``attempts`` failed tries (1, 2, ...)."""
        return min(self.backoff_base * self.backoff_factor ** (attempts - 1), self.backoff_cap)


class EmailSender:
    def __init__(self, jobs: EmailJobs, transport: MailTransport, clock: Clock, *, mail_from: str,
                 policy: RetryPolicy = RetryPolicy(), lease_clock: Clock | None = None,
                 on_failure: Callable[[], None] = lambda: None) -> None:
        """``clock`` says when a job is due (business time, movable in tests and demos);
        ``lease_clock`` measures how long a claimed send may take (real time: the system
        clock in a running service), so moving the business clock ahead never lets a second
        sender take a mail that is being sent."""
        self.jobs = jobs
        self.transport = transport
        self.clock = clock
        self.lease_clock = lease_clock or clock
        self.mail_from = mail_from
        self.policy = policy
        self._in_flight = asyncio.Semaphore(policy.concurrency)
        self.on_failure = on_failure  # counts each failed attempt (a metric)

    async def send_due(self) -> int:
        """Send every job that is due, batch after batch while batches come back full, up to
        ``policy.concurrency`` at a time; returns how many were sent. A failed job is due
        again only later, so this ends."""
        sent = 0
        while True:
            batch = await self.jobs.claim_due(self.clock.now(), self.policy.lease, self.policy.batch,
                                              lease_now=self.lease_clock.now())
            sent += sum(await asyncio.gather(*(self._bounded(job) for job in batch)))
            if len(batch) < self.policy.batch:
                return sent

    async def _bounded(self, job: EmailJob) -> int:
        # Every line logged about the send (sent, retried, given up) names its order and event.
        async with self._in_flight:
            with context.bound(order_id=job.order_id, event_id=job.event_id, event_type=job.event_type):
                return await self._send(job)

    async def _send(self, job: EmailJob) -> int:
        if job.attempts > self.policy.max_attempts:
            # Claimed again after its lease ran out mid-send, with no tries left.
            await self._give_up(job, job.last_error or "the sender stopped while sending")
            return 0
        try:
            # In the trace of the handling that decided it (the trade's), though a sweep sends it.
            with telemetry.span("smtp send", service="notify", kind=SpanKind.CLIENT,
                                traceparent=job.traceparent,
                                escrow__order_id=job.order_id, escrow__event_id=job.event_id,
                                escrow__email_step=job.step):
                await self.transport.send(build_message(job, self.mail_from, self.clock.now()))
        except Exception as exc:
            await self._failed(job, f"{type(exc).__name__}: {exc}")
            return 0
        if await self._record_sent(job):
            log.info("sent %s (%s) to %s for order %s", job.step, job.id, job.to, job.order_id)
            return 1
        return 0

    async def _record_sent(self, job: EmailJob) -> bool:
        """The mail server has the mail: recording that must outlast a database restart, or
        the job's lease runs out and the mail goes out a second time. Retried while the
        database is unreachable and the lease still ours; after that the error is raised."""
        give_up_at = self.lease_clock.now() + self.policy.lease - self.policy.record_retry
        while True:
            try:
                return await self.jobs.mark_sent(job, self.clock.now())
            except ConnectionFailure as exc:
                if self.lease_clock.now() >= give_up_at:
                    raise
                log.warning("recording %s as sent failed (%s); retrying while its lease lasts",
                            job.id, exc)
                await asyncio.sleep(self.policy.record_retry.total_seconds())

    async def _failed(self, job: EmailJob, error: str) -> None:
        self.on_failure()
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
