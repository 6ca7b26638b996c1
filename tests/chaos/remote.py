"""What a trade needs of a platform (``tests.support.trade.Trade``), over real HTTP to
service replicas that may be killed at any moment: each request goes to a live replica and
fails over to another when the connection breaks, as a load balancer would."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from shared.contracts.parties import Role
from shared.infra.auth import mint_token
from shared.infra.settings import DEV_AUTH_SECRET

from tests.chaos.cluster import Cluster
from tests.support.infra import Mail, Mailbox


@dataclass
class Counters:
    failovers: int = 0
    ambiguous: int = 0  # the connection broke after the request was sent
    server_errors: list[str] = field(default_factory=list)


class FailoverTransport(httpx.AsyncBaseTransport):
    """Sends each request to a random replica of one service; on a broken connection, or an
    answer that says "try again" (502, 503, 504: a replica or a server restarting, a fact
    not arrived yet), it tries again, on another replica, until ``patience`` seconds have
    passed. Every POST carries an Idempotency-Key that stays the same across the attempts,
    so a retried request the service already took is answered, not done twice."""

    def __init__(self, urls: list[str], counters: Counters, rng: random.Random,
                 inner: httpx.AsyncHTTPTransport, patience: float = 180.0) -> None:
        self._urls = urls
        self._counters = counters
        self._rng = rng
        self._patience = patience
        self._inner = inner  # shared by every client: one connection pool, one TLS context

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and "idempotency-key" not in request.headers:
            request.headers["idempotency-key"] = uuid.uuid4().hex
        body = await request.aread()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._patience
        attempt = 0
        while loop.time() < deadline:
            attempt += 1
            wait = min(0.1 * attempt, 1.0)
            base = httpx.URL(self._rng.choice(self._urls))
            attempt_request = httpx.Request(
                request.method, request.url.copy_with(scheme=base.scheme, host=base.host, port=base.port),
                headers=request.headers, content=body)
            try:
                response = await self._inner.handle_async_request(attempt_request)
            except httpx.ConnectError:
                self._counters.failovers += 1
            except httpx.TransportError:
                self._counters.failovers += 1
                self._counters.ambiguous += 1
            else:
                if response.status_code < 500:
                    return response
                await response.aread()
                self._counters.server_errors.append(
                    f"{request.method} {request.url.path}: {response.status_code} {response.text[:300]}")
                if response.status_code not in (502, 503, 504):
                    return response
                wait = max(wait, min(float(response.headers.get("retry-after", 0) or 0), 5.0))
            await asyncio.sleep(wait)  # back off before the next attempt
        raise httpx.ConnectError(f"no replica answered {request.method} {request.url.path} "
                                 f"within {self._patience:.0f} s")

    async def aclose(self) -> None:
        """The shared pool outlives each client."""


class OffsetClock:
    """The clock every service process reads (CLOCK_OFFSET_FILE), moved by the run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = timedelta(0)
        path.write_text("0")

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta
        self.path.write_text(str(self.offset.total_seconds()))


class TailingMailbox(Mailbox):
    """Reads only what the SMTP server appended to its index since the last read, and keeps
    the entries by recipient and by order. Hundreds of trades poll it at once; re-reading the
    whole index each time took the driver's CPU and stalled the run (its kills included)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self._offset = 0
        self._by_order: dict[str, list[dict]] = defaultdict(list)
        self._by_address: dict[str, list[dict]] = defaultdict(list)

    def _read_new(self) -> None:
        index = self.directory / "index.jsonl"
        if not index.exists():
            return
        with index.open("rb") as file:
            file.seek(self._offset)
            data = file.read()
        whole = data[:data.rfind(b"\n") + 1]  # a line still being written waits for the next read
        self._offset += len(whole)
        for line in whole.splitlines():
            if line.strip():
                entry = json.loads(line)
                self._by_order[entry.get("x_escrow_order_id") or ""].append(entry)
                for address in entry["rcpt_tos"]:
                    self._by_address[address].append(entry)

    def entries_for_order(self, order_id: str) -> list[dict]:
        self._read_new()
        return list(self._by_order[order_id])

    def for_order(self, order_id: str) -> list[Mail]:
        return [self._mail(e) for e in self.entries_for_order(order_id)]

    def to(self, address: str) -> list[Mail]:
        self._read_new()
        return [self._mail(e) for e in self._by_address[address]]


@dataclass
class RemoteInfra:
    mailbox: TailingMailbox


class RemotePlatform:
    """The interface ``Trade`` uses (``client``, ``clock``, ``advance``, ``infra.mailbox``)."""

    def __init__(self, cluster: Cluster, clock: OffsetClock, mail_dir: Path, seed: int) -> None:
        self.cluster = cluster
        self.clock = clock
        self.infra = RemoteInfra(TailingMailbox(mail_dir))
        self.counters = Counters()
        self._rng = random.Random(seed)
        self._pool = httpx.AsyncHTTPTransport()

    def client(self, service: str, party_id: str, role: Role) -> httpx.AsyncClient:
        token = mint_token(DEV_AUTH_SECRET, party_id, role)
        transport = FailoverTransport([r.url for r in self.cluster.of(service)], self.counters, self._rng,
                                      self._pool)
        return httpx.AsyncClient(transport=transport, base_url=f"http://{service}", timeout=30,
                                 headers={"authorization": f"Bearer {token}"})

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)
