"""The five services wired together in memory, for fast tests of the whole choreography:
each built by its own composition root, with the in-memory MongoDB of the fast tests
(tests/support/memory_mongo.py), an in-memory bus in place of Kafka that hands every
published envelope to each subscribing service's real consumer, and a mailbox in place of SMTP.

It offers the same face as ``tests.support.platform.Platform`` (``client``, ``clock``,
``advance``, ``infra.mailbox``), so the saga scenarios run unchanged on either.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage, Message
from unittest import mock

import httpx

from shared.contracts.parties import Role
from shared.contracts.topics import Topics
from shared.infra.auth import mint_token
from shared.infra.clock import ManualClock
from shared.infra.runtime import ServiceRuntime
from shared.infra.settings import DEV_AUTH_SECRET
from shared.infra.store import OutboxMessage

from services.catalogue import SERVICES, settings_class
from tests.support.infra import Mail
from tests.support.memory_mongo import MemoryMongo

log = logging.getLogger(__name__)


@dataclass
class MemoryMailbox:
    mails: list[Mail] = field(default_factory=list)

    async def send(self, sent: Message) -> None:
        # As a mail server reads it: the bytes, parsed.
        message = email.message_from_bytes(sent.as_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(preferencelist=("plain",))
        self.mails.append(Mail(to=[str(message["To"])], subject=str(message["Subject"]),
                               headers={k.lower(): str(v) for k, v in message.items()},
                               text=body.get_content() if body else ""))

    def for_order(self, order_id: str) -> list[Mail]:
        return [m for m in self.mails if m.headers.get("x-escrow-order-id") == order_id]

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.mails if address in m.to]


@dataclass
class _Infra:
    mailbox: MemoryMailbox


class InMemoryPlatform:
    def __init__(self, clock: ManualClock | None = None) -> None:
        self.clock = clock or ManualClock()
        self.infra = _Infra(MemoryMailbox())
        self.topics = Topics(f"mem{uuid.uuid4().hex[:6]}")
        self.runtimes: dict[str, ServiceRuntime] = {}
        self._queue: deque[tuple[str, OutboxMessage, dict[str, str]]] = deque()
        self._pump: asyncio.Task[None] | None = None

    def _build(self, name: str) -> ServiceRuntime:
        settings = settings_class(name)(topic_prefix=self.topics.prefix, mongodb_database="escrow")
        module = __import__(f"services.{name}.app", fromlist=["build"])
        with mock.patch("shared.infra.runtime.mongo_client", lambda _settings: MemoryMongo()):
            if name == "notify":
                return module.build(settings, self.clock, transport=self.infra.mailbox)
            return module.build(settings, self.clock)

    async def start(self, *, deliver_in_background: bool = True) -> None:
        """Without ``deliver_in_background`` nothing moves until the test calls ``settle``:
        every step is then deterministic, with no polling."""
        for name in SERVICES:
            runtime = self._build(name)
            for runner in runtime.runners:
                runner._publish = self._publisher(runtime)
            self.runtimes[name] = runtime
        if deliver_in_background:
            self._pump = asyncio.create_task(self._run())

    def _publisher(self, producer: ServiceRuntime):
        """Publishes as the service would: on its topic, signed with its key."""
        topic = self.topics.events(producer.service)

        async def publish(message: OutboxMessage) -> None:
            assert producer.authenticator is not None
            self._queue.append((topic, message, producer.authenticator.sign(message.body.encode())))
        return publish

    async def settle(self) -> None:
        """Deliver everything published, and run every periodic job, until nothing moves."""
        while True:
            while self._queue:
                topic, message, headers = self._queue.popleft()
                for runtime in self.runtimes.values():
                    if runtime.consumer is not None and topic in runtime.consumer.sources:
                        await runtime.consumer.handle(message.body.encode(),
                                                      key=message.envelope().order_id.encode(),
                                                      headers=headers, origin=f"{topic}/0@0")
            for runtime in self.runtimes.values():
                await runtime.run_jobs_once()
            if not self._queue:
                return

    async def _run(self) -> None:
        while True:
            try:
                await self.settle()
            except Exception:
                log.exception("the in-memory bus failed to deliver; the next round retries")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._pump:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)

    def client(self, service: str, party_id: str, role: Role) -> httpx.AsyncClient:
        token = mint_token(DEV_AUTH_SECRET, party_id, role)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.runtimes[service].http),
                                 base_url=f"http://{service}",
                                 headers={"authorization": f"Bearer {token}"})

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)
