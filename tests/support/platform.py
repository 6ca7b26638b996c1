"""The five services, each built by its own composition root, running in this process
against the real servers, with one manual clock for all of them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import httpx

from shared.contracts.parties import Role
from shared.contracts.topics import Service, Topics
from shared.infra.auth import mint_token
from shared.infra.clock import ManualClock
from shared.infra.runtime import ServiceRuntime
from shared.infra.settings import DEV_AUTH_SECRET
from shared.infra.signing import EnvelopeAuthenticator, new_keys, parse_keys, parse_signing_key

from services.catalogue import SERVICES, build, settings_class
from tests.support.infra import Infra

T = TypeVar("T")

# Events on the real broker are signed as a deployment signs them: Ed25519, each service
# holding its own private key and only the others' public keys (docs/security.md).
SIGNING_KEYS, PUBLIC_KEYS = new_keys("test")


def signer(producer: Service, topics: Topics) -> EnvelopeAuthenticator:
    """Signs as ``producer`` signs on the test platform (for messages a test writes itself)."""
    keys = parse_keys(PUBLIC_KEYS)
    keys[producer] = [parse_signing_key(SIGNING_KEYS[producer])]
    return EnvelopeAuthenticator(producer, topics, keys)


def build_service(name: str, infra: Infra, *, prefix: str, database: str, clock: ManualClock,
                  **overrides: Any) -> ServiceRuntime:
    settings = settings_class(name)(
        kafka_bootstrap_servers=infra.kafka, mongodb_url=infra.mongodb_url,
        mongodb_database=database, topic_prefix=prefix, smtp_host=infra.smtp_host,
        smtp_port=infra.smtp_port, outbox_sweep_seconds=0.5, deadline_sweep_seconds=0.5,
        notify_send_interval_seconds=0.5,
        **({"envelope_keys": PUBLIC_KEYS, "envelope_signing_key": SIGNING_KEYS[Service(name)]}
           if name in set(Service) else {}),
        **overrides)
    return build(name, settings, clock)


# How long ``eventually`` waits unless told; the chaos run raises it (a step may wait out a
# broker restart there).
DEFAULT_TIMEOUT = 30.0


async def eventually(check: Callable[[], Awaitable[T]], timeout: float | None = None,
                     interval: float = 0.1) -> T:
    """Poll ``check`` until it stops raising AssertionError, or fail with its last error."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (timeout or DEFAULT_TIMEOUT)
    while True:
        try:
            return await check()
        except AssertionError:
            if loop.time() > deadline:
                raise
        await asyncio.sleep(interval)


@dataclass
class Platform:
    infra: Infra
    clock: ManualClock
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}")
    runtimes: dict[str, ServiceRuntime] = field(default_factory=dict)

    async def start(self, **overrides: dict[str, Any]) -> None:
        for name in SERVICES:
            self.runtimes[name] = build_service(
                name, self.infra, prefix=self.prefix, database=f"escrow_{self.prefix}",
                clock=self.clock, **overrides.get(name, {}))
        await asyncio.gather(*(r.start() for r in self.runtimes.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(r.stop() for r in self.runtimes.values()))

    def client(self, service: str, party_id: str, role: Role) -> httpx.AsyncClient:
        token = mint_token(DEV_AUTH_SECRET, party_id, role)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.runtimes[service].http),
                                 base_url=f"http://{service}",
                                 headers={"authorization": f"Bearer {token}"})

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)
