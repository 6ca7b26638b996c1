"""The SMTP transport against a real (in-process) SMTP server."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from collections.abc import AsyncIterator

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from shared.contracts import events as ev
from shared.infra.clock import ManualClock

from services.notify.handlers import Notifications
from services.notify.repository import EmailRepository
from services.notify.sender import EmailSender, SmtpTransport
from tests.support.memory_mongo import memory_collection
from tests.unit.test_notify_steps import CS_EMAIL, T0, KnownContacts, envelope_of, sample


class Inbox:
    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append((list(envelope.rcpt_tos), envelope.original_content or b""))
        return "250 Message accepted"


@pytest.fixture
async def smtp_server() -> AsyncIterator[tuple[Inbox, int]]:
    inbox = Inbox()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(inbox, hostname="mail.test"), "127.0.0.1", 0)
    try:
        yield inbox, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_mails_are_delivered_over_smtp(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    clock = ManualClock(T0)
    repo = EmailRepository(memory_collection("emails"))
    notifications = Notifications(repo, KnownContacts(), clock, customer_service_email=CS_EMAIL)
    event = sample(ev.DisputeEscalated)
    envelope = envelope_of(event)
    await notifications.on_event(envelope, event)
    sender = EmailSender(repo, SmtpTransport("127.0.0.1", port, timeout=5), clock,
                         mail_from="Escrow <notifications@escrow.example>")

    assert await sender.send_due() == 3
    recipients = sorted(r for rcpt, _ in inbox.received for r in rcpt)
    assert recipients == sorted(["buyer@acme.example", "sales@bolts.example", CS_EMAIL])
    mail = email.message_from_bytes(inbox.received[0][1], policy=email.policy.default)
    assert mail["X-Escrow-Event-Id"] == envelope.event_id
    assert mail["X-Escrow-Step"] == "dispute_escalated"
    assert mail.get_content_type() == "multipart/alternative"


async def test_an_unreachable_mail_server_is_a_failed_attempt() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clock = ManualClock(T0)
    repo = EmailRepository(memory_collection("emails"))
    event = sample(ev.CardPaymentDeclined)
    notifications = Notifications(repo, KnownContacts(), clock, customer_service_email=CS_EMAIL)
    await notifications.on_event(envelope_of(event), event)
    sender = EmailSender(repo, SmtpTransport("127.0.0.1", port, timeout=5), clock,
                         mail_from="Escrow <notifications@escrow.example>")

    assert await sender.send_due() == 0
    [job] = await repo.for_order("ord-1")
    assert job.status == "pending" and job.attempts == 1 and job.last_error


class CountingServer:
    """An in-process SMTP server that counts the connections it accepted and can drop them."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.sessions: list[SMTP] = []

    def protocol(self) -> SMTP:
        session = SMTP(self.inbox, hostname="mail.test")
        self.sessions.append(session)
        return session

    def drop_connections(self) -> None:
        for session in self.sessions:
            if session.transport is not None:
                session.transport.close()


@pytest.fixture
async def counting_server() -> AsyncIterator[tuple[CountingServer, int]]:
    counting = CountingServer()
    server = await asyncio.get_running_loop().create_server(counting.protocol, "127.0.0.1", 0)
    try:
        yield counting, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def mails_for(count: int, repo: EmailRepository, clock: ManualClock) -> None:
    notifications = Notifications(repo, KnownContacts(), clock, customer_service_email=CS_EMAIL)
    for _ in range(count):
        event = sample(ev.CardPaymentDeclined)  # one mail each (to the buyer)
        await notifications.on_event(envelope_of(event), event)


async def test_many_mails_share_a_few_pooled_connections(
        counting_server: tuple[CountingServer, int]) -> None:
    server, port = counting_server
    clock, repo = ManualClock(T0), EmailRepository(memory_collection("emails"))
    await mails_for(30, repo, clock)
    transport = SmtpTransport("127.0.0.1", port, timeout=5, pool_size=3)
    sender = EmailSender(repo, transport, clock, mail_from="Escrow <notifications@escrow.example>")

    assert await sender.send_due() == 30
    await transport.close()
    assert len(server.inbox.received) == 30
    assert 1 <= len(server.sessions) <= 3


async def test_a_pooled_connection_the_server_dropped_is_replaced(
        counting_server: tuple[CountingServer, int]) -> None:
    server, port = counting_server
    clock, repo = ManualClock(T0), EmailRepository(memory_collection("emails"))
    transport = SmtpTransport("127.0.0.1", port, timeout=5, pool_size=1)
    sender = EmailSender(repo, transport, clock, mail_from="Escrow <notifications@escrow.example>")
    await mails_for(1, repo, clock)
    assert await sender.send_due() == 1
    server.drop_connections()  # e.g. the server's idle timeout, or its restart

    await mails_for(1, repo, clock)
    assert await sender.send_due() == 1
    await transport.close()
    assert len(server.inbox.received) == 2 and len(server.sessions) == 2
    assert all(job.status == "sent" and job.attempts == 1 for job in await repo.for_order("ord-1"))


async def test_non_ascii_names_arrive_intact_in_subject_and_body(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    clock, repo = ManualClock(T0), EmailRepository(memory_collection("emails"))
    parties = sample(ev.OrderPlaced).parties
    parties = parties.model_copy(update={"supplier": parties.supplier.model_copy(
        update={"name": "Shenzhen Lüftung 深圳"})})
    event = sample(ev.OrderPlaced).model_copy(update={"parties": parties})
    await Notifications(repo, KnownContacts(), clock, customer_service_email=CS_EMAIL).on_event(
        envelope_of(event), event)
    transport = SmtpTransport("127.0.0.1", port, timeout=5)
    sender = EmailSender(repo, transport, clock, mail_from="Escrow <notifications@escrow.example>")

    assert await sender.send_due() == 2
    await transport.close()
    buyer = next(email.message_from_bytes(raw, policy=email.policy.default)
                 for rcpt, raw in inbox.received if rcpt == ["buyer@acme.example"])
    assert "order placed with Shenzhen Lüftung 深圳" in str(buyer["Subject"])
    assert "Your order with Shenzhen Lüftung 深圳" in buyer.get_body(("plain",)).get_content()
    assert "Shenzhen Lüftung 深圳" in buyer.get_body(("html",)).get_content()
