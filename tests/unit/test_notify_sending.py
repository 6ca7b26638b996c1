"""Storing and sending email jobs: once per step and recipient, retried with backoff, given
up after the last attempt, never held by two senders, never blocking other mails."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from datetime import timedelta
from email.message import EmailMessage, Message

import pytest
from pymongo.errors import AutoReconnect

from shared.contracts import events as ev
from shared.contracts.envelope import registered_events
from shared.contracts.parties import Role
from shared.domain.actor import Actor
from shared.domain.errors import NotFound, NotPermitted
from shared.infra.clock import ManualClock

from services.notify.emails import EmailStatus
from services.notify.handlers import Notifications
from services.notify.repository import EmailRepository
from services.notify.sender import EmailSender, RetryPolicy
from tests.support.memory_mongo import memory_collection
from tests.unit.test_notify_steps import CS_EMAIL, T0, KnownContacts, envelope_of, sample

MAIL_FROM = "Escrow <notifications@escrow.example>"


class FakeTransport:
    """Collects what would be sent; fails for the listed addresses, or the next N sends."""

    def __init__(self, fail_next: int = 0, failing: set[str] | None = None) -> None:
        self.fail_next = fail_next
        self.failing = failing or set()
        self.sent: list[EmailMessage] = []
        self.tries = 0

    async def send(self, message: Message) -> None:
        self.tries += 1
        if self.fail_next > 0 or message["To"] in self.failing:
            self.fail_next -= 1
            raise ConnectionRefusedError("mail server unreachable")
        # As a mail server reads it: the bytes, parsed.
        self.sent.append(email.message_from_bytes(message.as_bytes(), policy=email.policy.default))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def repo() -> EmailRepository:
    return EmailRepository(memory_collection("emails"))


@pytest.fixture
def notifications(repo: EmailRepository, clock: ManualClock) -> Notifications:
    return Notifications(repo, KnownContacts(), clock, customer_service_email=CS_EMAIL)


def sender_for(repo: EmailRepository, clock: ManualClock, transport: FakeTransport,
               **policy: object) -> EmailSender:
    return EmailSender(repo, transport, clock, mail_from=MAIL_FROM,
                       policy=RetryPolicy(**policy))  # type: ignore[arg-type]


async def test_every_registered_event_has_a_handler(notifications: Notifications) -> None:
    assert set(notifications.handlers()) == set(registered_events())


async def test_a_repeated_event_delivery_mails_each_recipient_once(
        notifications: Notifications, repo: EmailRepository, clock: ManualClock) -> None:
    event = sample(ev.OrderConfirmed)
    envelope = envelope_of(event)
    assert await notifications.on_event(envelope, event) == 2
    assert await notifications.on_event(envelope, event) == 0
    transport = FakeTransport()
    sender = sender_for(repo, clock, transport)

    assert await sender.send_due() == 2
    assert await notifications.on_event(envelope, event) == 0
    assert await sender.send_due() == 0
    assert sorted(m["To"] for m in transport.sent) == ["buyer@acme.example", "sales@bolts.example"]


async def test_the_sent_line_names_the_order_and_event_of_the_mail(
        notifications: Notifications, repo: EmailRepository, clock: ManualClock, caplog) -> None:
    from shared.infra import context

    seen: list[dict[str, str]] = []

    class Context(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            seen.append({"message": record.getMessage(), **context.current()})
            return True
    event = sample(ev.OrderConfirmed)
    envelope = envelope_of(event)
    await notifications.on_event(envelope, event)
    logger = logging.getLogger("services.notify.sender")
    capture = Context()
    logger.addFilter(capture)
    try:
        with caplog.at_level(logging.INFO, logger="services.notify.sender"):
            assert await sender_for(repo, clock, FakeTransport()).send_due() == 2
    finally:
        logger.removeFilter(capture)
    sent = [line for line in seen if line["message"].startswith("sent ")]
    assert len(sent) == 2
    assert all((line.get("order_id"), line.get("event_id")) == (event.order_id, envelope.event_id)
               for line in sent), sent


async def test_the_mail_is_text_and_html_with_the_escrow_headers(
        notifications: Notifications, repo: EmailRepository, clock: ManualClock) -> None:
    event = sample(ev.ShipmentDispatched)
    envelope = envelope_of(event)
    await notifications.on_event(envelope, event)
    transport = FakeTransport()
    await sender_for(repo, clock, transport).send_due()

    mail = next(m for m in transport.sent if m["To"] == "buyer@acme.example")
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert "1234567890" in mail.get_body(("plain",)).get_content()
    assert mail["From"] == MAIL_FROM
    assert mail["Message-ID"] == f"<{envelope.event_id}.buyer@escrow.example>"
    assert mail["X-Escrow-Event-Id"] == envelope.event_id
    assert mail["X-Escrow-Step"] == "shipped"
    assert mail["X-Escrow-Order-Id"] == "ord-1"
    job = (await repo.for_order("ord-1"))[0]
    assert (job.status, job.attempts, job.sent_at, job.lease_token) == (EmailStatus.SENT, 1, T0, None)


async def test_a_failed_send_is_retried_with_backoff_until_it_succeeds(
        notifications: Notifications, repo: EmailRepository, clock: ManualClock) -> None:
    event = sample(ev.CardPaymentDeclined)  # one recipient: the buyer
    await notifications.on_event(envelope_of(event), event)
    transport = FakeTransport(fail_next=3)
    sender = sender_for(repo, clock, transport)

    for wait in (5, 10, 20):
        assert await sender.send_due() == 0
        [job] = await repo.for_order("ord-1")
        assert job.status is EmailStatus.PENDING
        assert job.next_attempt_at == clock.now() + timedelta(seconds=wait)
        assert "mail server unreachable" in (job.last_error or "")
        clock.advance(timedelta(seconds=wait - 1))
        assert await sender.send_due() == 0  # not due yet: no try
        clock.advance(timedelta(seconds=1))
    assert transport.tries == 3

    assert await sender.send_due() == 1
    [job] = await repo.for_order("ord-1")
    assert (job.status, job.attempts, job.last_error) == (EmailStatus.SENT, 4, None)
    assert job.sent_at == clock.now()


def test_the_backoff_doubles_from_five_seconds_up_to_ten_minutes() -> None:
    policy = RetryPolicy()
    assert [policy.delay_after(n).total_seconds() for n in range(1, 10)] == [
        5, 10, 20, 40, 80, 160, 320, 600, 600]


async def test_sending_is_given_up_after_the_last_attempt(
        notifications: Notifications, repo: EmailRepository, clock: ManualClock,
        caplog: pytest.LogCaptureFixture) -> None:
    event = sample(ev.CardPaymentDeclined)
    await notifications.on_event(envelope_of(event), event)
    transport = FakeTransport(failing={"buyer@acme.example"})
    sender = sender_for(repo, clock, transport, max_attempts=4)

    with caplog.at_level(logging.ERROR, logger="services.notify.sender"):
        for _ in range(10):
            await sender.send_due()
            clock.advance(timedelta(minutes=10))

    assert transport.tries == 4
    [job] = await repo.for_order("ord-1")
    assert (job.status, job.attempts) == (EmailStatus.FAILED, 4)
    assert "ConnectionRefusedError: mail server unreachable" == job.last_error
    assert any("giving up" in r.message and job.id in r.message for r in caplog.records)


async def test_one_undeliverable_mail_does_not_hold_up_the_others(
        notifications: Notifications, repo: EmailRepository, clock: ManualClock) -> None:
    for event_type in (ev.OrderPlaced, ev.OrderConfirmed):
        event = sample(event_type)
        await notifications.on_event(envelope_of(event), event)
    transport = FakeTransport(failing={"sales@bolts.example"})

    assert await sender_for(repo, clock, transport).send_due() == 2
    assert {m["X-Escrow-Step"] for m in transport.sent} == {"order_placed", "order_confirmed"}
    assert {m["To"] for m in transport.sent} == {"buyer@acme.example"}


async def test_a_backlog_larger_than_a_batch_is_sent_in_one_round(
        notifications: Notifications, repo: EmailRepository, clock: ManualClock) -> None:
    for _ in range(5):
        event = sample(ev.OrderConfirmed)
        await notifications.on_event(envelope_of(event), event)
    transport = FakeTransport(failing={"sales@bolts.example"})

    assert await sender_for(repo, clock, transport, batch=2).send_due() == 5
    assert len(transport.sent) == 5  # the five failed ones wait for their retry time


async def test_a_claimed_job_is_not_claimed_again_until_its_lease_expires(
        notifications: Notifications, repo: EmailRepository, clock: ManualClock) -> None:
    event = sample(ev.CardPaymentDeclined)
    await notifications.on_event(envelope_of(event), event)
    lease = timedelta(minutes=2)

    [first] = await repo.claim_due(clock.now(), lease, 10)
    assert await repo.claim_due(clock.now(), lease, 10) == []
    clock.advance(lease)
    [second] = await repo.claim_due(clock.now(), lease, 10)

    assert second.attempts == 2 and second.lease_token != first.lease_token
    assert not await repo.mark_sent(first, clock.now())  # the old holder lost the job
    assert await repo.mark_sent(second, clock.now())


async def test_a_job_left_sending_by_a_stopped_sender_is_sent_after_its_lease(
        notifications: Notifications, repo: EmailRepository, clock: ManualClock) -> None:
    event = sample(ev.CardPaymentDeclined)
    await notifications.on_event(envelope_of(event), event)
    await repo.claim_due(clock.now(), timedelta(minutes=2), 10)  # that sender then died
    transport = FakeTransport()
    sender = sender_for(repo, clock, transport, lease=timedelta(minutes=2))

    assert await sender.send_due() == 0
    clock.advance(timedelta(minutes=2))
    assert await sender.send_due() == 1
    [job] = await repo.for_order("ord-1")
    assert job.status is EmailStatus.SENT


async def test_customer_service_sees_every_mail_and_a_party_its_own(
        notifications: Notifications) -> None:
    event = sample(ev.DisputeEscalated)
    await notifications.on_event(envelope_of(event), event)

    agent = await notifications.emails_of("ord-1", Actor(party_id="agent-7", role=Role.AGENT))
    assert {j.recipient_role for j in agent} == {"buyer", "supplier", "customer_service"}
    buyer = await notifications.emails_of("ord-1", Actor(party_id="buyer-acme", role=Role.BUYER))
    assert [(j.recipient_role, j.to) for j in buyer] == [("buyer", "buyer@acme.example")]
    supplier = await notifications.emails_of(
        "ord-1", Actor(party_id="supplier-bolts", role=Role.SUPPLIER))
    assert [j.recipient_role for j in supplier] == ["supplier"]


async def test_others_cannot_read_an_orders_mails(notifications: Notifications) -> None:
    event = sample(ev.OrderPlaced)
    await notifications.on_event(envelope_of(event), event)

    with pytest.raises(NotPermitted):
        await notifications.emails_of("ord-1", Actor(party_id="buyer-other", role=Role.BUYER))
    with pytest.raises(NotPermitted):  # the buyer's id with the supplier's role
        await notifications.emails_of("ord-1", Actor(party_id="buyer-acme", role=Role.SUPPLIER))
    with pytest.raises(NotFound):
        await notifications.emails_of("ord-2", Actor(party_id="buyer-acme", role=Role.BUYER))
    agent = Actor(party_id="agent-7", role=Role.AGENT)
    assert await notifications.emails_of("ord-2", agent) == []


class SlowTransport:
    """Holds every send until released, counting how many are in flight at once."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most_in_flight = 0
        self.sent = 0

    async def send(self, message: Message) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0)  # yield, so other sends can start: no time passes
        await asyncio.sleep(0)
        self.in_flight -= 1
        self.sent += 1


async def test_mails_are_sent_concurrently_within_a_bound(
        notifications: Notifications, repo: EmailRepository, clock: ManualClock) -> None:
    for _ in range(20):
        event = sample(ev.OrderPlaced)
        await notifications.on_event(envelope_of(event), event)
    transport = SlowTransport()
    sender = EmailSender(repo, transport, clock, mail_from=MAIL_FROM,
                         policy=RetryPolicy(concurrency=5, batch=100))

    assert await sender.send_due() == 40
    assert transport.sent == 40 and transport.most_in_flight == 5



class SendWhileTheClockJumps:
    """A transport during whose first send the business clock jumps 60 days ahead (as a test
    or demo moves it) and a second sender replica looks for work."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock, self.other, self.sent, self.others_took = clock, None, [], 0

    async def send(self, message: Message) -> None:
        other, self.other = self.other, None  # the jump happens once
        if other is not None:
            self.clock.advance(timedelta(days=60))
            self.others_took += await other.send_due()
        self.sent.append((message["X-Escrow-Event-Id"], message["To"]))


async def test_moving_the_business_clock_never_hands_a_mail_in_flight_to_another_sender(
        notifications: Notifications, repo: EmailRepository, clock: ManualClock) -> None:
    event = sample(ev.OrderPlaced)
    await notifications.on_event(envelope_of(event), event)
    transport = SendWhileTheClockJumps(clock)
    real_time = ManualClock(T0)  # the leases' clock: it does not jump
    policy = RetryPolicy(concurrency=1, batch=2)  # both mails claimed, sent one at a time
    first = EmailSender(repo, transport, clock, mail_from=MAIL_FROM, policy=policy, lease_clock=real_time)
    transport.other = EmailSender(repo, transport, clock, mail_from=MAIL_FROM, policy=policy,
                                  lease_clock=real_time)

    await first.send_due()
    assert transport.others_took == 0
    assert len(transport.sent) == len(set(transport.sent)) == 2  # each recipient's mail once


class DatabaseRestartingAtMarkSent:
    """The store's connection breaks when a mail is recorded as sent (the database restarts
    right after the mail server took the mail), ``failures`` times."""

    def __init__(self, repo: EmailRepository, failures: int) -> None:
        self.repo, self.failures = repo, failures

    def __getattr__(self, name: str) -> object:
        return getattr(self.repo, name)

    async def mark_sent(self, job: object, at: object) -> bool:
        if self.failures:
            self.failures -= 1
            raise AutoReconnect("127.0.0.1:27017: [Errno 104] Connection reset by peer")
        return await self.repo.mark_sent(job, at)  # type: ignore[arg-type]


async def test_a_mail_the_server_took_is_recorded_sent_across_a_database_restart(
        notifications: Notifications, repo: EmailRepository, clock: ManualClock) -> None:
    event = sample(ev.CardPaymentDeclined)  # one recipient: the buyer
    await notifications.on_event(envelope_of(event), event)
    transport = FakeTransport()
    lease = timedelta(minutes=2)
    sender = EmailSender(DatabaseRestartingAtMarkSent(repo, failures=3), transport,  # type: ignore[arg-type]
                         clock, mail_from=MAIL_FROM,
                         policy=RetryPolicy(lease=lease, record_retry=timedelta(0)))

    assert await sender.send_due() == 1
    clock.advance(lease)  # had the job stayed "sending", its lease would now hand it out again
    assert await sender.send_due() == 0
    assert len(transport.sent) == 1
    [job] = await repo.for_order("ord-1")
    assert job.status is EmailStatus.SENT
