"""Notify's batched claims on a real MongoDB-wire server with atomic single-document updates:
two sender replicas, each with its own client, claim and send the same backlog at once, and
every mail goes out exactly once."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from email.message import Message

import pytest
from pymongo import AsyncMongoClient

from shared.contracts import events as ev
from shared.infra.clock import ManualClock

from services.notify.handlers import Notifications
from services.notify.repository import COLLECTION, EmailRepository
from services.notify.sender import EmailSender, RetryPolicy
from tests.support.infra import Infra
from tests.unit.test_notify_steps import CS_EMAIL, T0, KnownContacts, envelope_of, sample

pytestmark = pytest.mark.realinfra

MAILS = 300
DEADLINE_S = 60  # a guard against a hang, not a measurement


class Outbox:
    """Every message the replicas handed to 'the mail server', by Message-ID."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()

    async def send(self, message: Message) -> None:
        await asyncio.sleep(0)
        self.sent[str(message["Message-ID"])] += 1


@pytest.fixture
def strict_url(infra: Infra) -> str:
    if not infra.strict_mongodb_url:
        reason = "MONGODB_STRICT_URL is not set: two senders need atomic single-document updates"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return infra.strict_mongodb_url


async def test_two_sender_replicas_send_each_mail_once(strict_url: str) -> None:
    database = f"notify-claims-{uuid.uuid4().hex[:8]}"
    clients = [AsyncMongoClient(strict_url, tz_aware=True) for _ in range(2)]
    try:
        repos = [EmailRepository(client[database][COLLECTION]) for client in clients]
        await repos[0].create_indexes()
        clock = ManualClock(T0)
        notifications = Notifications(repos[0], KnownContacts(), clock, customer_service_email=CS_EMAIL)
        for _ in range(MAILS):
            event = sample(ev.CardPaymentDeclined)  # one mail each
            await notifications.on_event(envelope_of(event), event)
        outbox = Outbox()
        senders = [EmailSender(repo, outbox, clock, mail_from="Escrow <n@escrow.example>",
                               policy=RetryPolicy(batch=25, concurrency=4)) for repo in repos]

        async with asyncio.timeout(DEADLINE_S):
            sent = await asyncio.gather(*(sender.send_due() for sender in senders))

        assert sum(sent) == MAILS
        assert len(outbox.sent) == MAILS and set(outbox.sent.values()) == {1}
        statuses = Counter([doc["status"] async for doc in clients[0][database][COLLECTION].find()])
        assert statuses == {"sent": MAILS}
    finally:
        await clients[0].drop_database(database)
        for client in clients:
            await client.close()
