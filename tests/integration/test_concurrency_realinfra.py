"""MongoDB's single-document atomicity, which the versioned save relies on, proved with truly
concurrent writers: each writer has its own client (its own connections), like a separate
service replica, and every writer has loaded the same version before any of them saves.

The guarantees run on the default server (``MONGODB_URL``: deploy/local's EscrowMongoServer,
see deploy/local/README.md, or a real MongoDB), which applies a conditional update atomically.
FerretDB v1 does not; when it runs (``FERRETDB_URL``, ``infra.sh up --with-ferretdb``) the last
test only reports how many racing saves it let through.
"""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from shared.contracts.envelope import Envelope
from shared.contracts.events import EscrowReleased, ReceiptConfirmed, SettlementReason
from shared.contracts.parties import Parties, Party
from shared.domain.aggregate import Aggregate
from shared.infra.clock import ManualClock
from shared.infra.runner import AggregateRunner
from shared.infra.store import AggregateStore, ConcurrencyConflict, Loaded, OutboxMessage

from tests.support.infra import Infra

pytestmark = pytest.mark.realinfra

WRITERS = 20
ROUNDS = 5
AMOUNT = 1_000
RACE_DEADLINE_S = 60  # a guard against a hang, not a measurement

PARTIES = Parties(buyer=Party(party_id="buyer-1", name="ACME Imports"),
                  supplier=Party(party_id="supplier-1", name="Shenzhen Bolts"))


class Escrow(Aggregate):
    """Test-only: money held for an order, released to the supplier in parts."""

    currency: str = "USD"
    held: int
    released: int = 0

    def release(self, amount: int, payout_id: str, now: datetime) -> bool:
        """Move ``amount`` from held to released if that much is held; say whether it moved."""
        if self.held < amount:
            return False
        self.held -= amount
        self.released += amount
        self.record(EscrowReleased(order_id=self.order_id, parties=self.parties, amount=amount,
                                   currency=self.currency, reason=SettlementReason.RECEIPT_CONFIRMED,
                                   payout_id=payout_id, held_after=self.held), now)
        return True


class RacingStore(AggregateStore[Escrow]):
    """A replica's store whose first load waits until every replica has loaded, so that their
    first saves all race on the same version. Counts the conflicts it raised."""

    def __init__(self, client: AsyncMongoClient, database: str, gate: asyncio.Barrier) -> None:
        super().__init__(client[database]["escrows"], Escrow)
        self._gate: asyncio.Barrier | None = gate
        self.conflicts = 0

    async def load(self, order_id: str) -> Loaded[Escrow] | None:
        loaded = await super().load(order_id)
        if self._gate is not None:
            gate, self._gate = self._gate, None
            await gate.wait()
        return loaded

    async def save(self, aggregate: Escrow, **kwargs: Any) -> int:
        try:
            return await super().save(aggregate, **kwargs)
        except ConcurrencyConflict:
            self.conflicts += 1
            raise


@pytest.fixture(scope="module")
def strict_url(infra: Infra) -> str:
    """The default server, which must make a single-document update atomic."""
    assert infra.strict_mongodb_url
    return infra.strict_mongodb_url


@pytest.fixture(scope="module")
def ferretdb_url(infra: Infra) -> str:
    if not infra.ferretdb_url:
        pytest.skip("FerretDB is not running (FERRETDB_URL unset; `infra.sh up --with-ferretdb` starts it)")
    return infra.ferretdb_url


@asynccontextmanager
async def replicas(url: str, database: str, count: int) -> AsyncIterator[list[AsyncMongoClient]]:
    """``count`` clients, each connected before the race starts; drops ``database`` at the end."""
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(count):
            client: AsyncMongoClient = AsyncMongoClient(url, serverSelectionTimeoutMS=10_000)
            stack.push_async_callback(client.close)
            clients.append(client)
        await asyncio.gather(*(client.admin.command("ping") for client in clients))
        try:
            yield clients
        finally:
            await clients[0].drop_database(database)


async def race(tasks: list[Awaitable[Any]]) -> list[Any]:
    async with asyncio.timeout(RACE_DEADLINE_S):
        return await asyncio.gather(*tasks, return_exceptions=True)


async def open_escrow(client: AsyncMongoClient, database: str, order_id: str, held: int) -> None:
    store = AggregateStore(client[database]["escrows"], Escrow)
    await store.save(Escrow(order_id=order_id, parties=PARTIES, held=held), expected_version=0,
                     outbox=[], handled=[])


async def racing_saves(url: str) -> list[Counter[str]]:
    """Per round: ``WRITERS`` clients load one escrow at version 1, each releases an amount in
    memory, and all save with ``expected_version=1`` at once. Counts what each save did."""
    database = f"escrow_race_{uuid.uuid4().hex[:12]}"
    clock = ManualClock()

    async def write(store: RacingStore, order_id: str, writer: int) -> str:
        loaded = await store.load(order_id)
        assert loaded is not None and loaded.version == 1
        loaded.aggregate.release(AMOUNT, f"payout-{writer}", clock.now())
        await store.save(loaded.aggregate, expected_version=loaded.version, outbox=[], handled=[])
        return "saved"

    outcomes: list[Counter[str]] = []
    async with replicas(url, database, WRITERS) as clients:
        for round_no in range(ROUNDS):
            order_id = f"order-{round_no}"
            await open_escrow(clients[0], database, order_id, held=WRITERS * AMOUNT)
            gate = asyncio.Barrier(WRITERS)
            stores = [RacingStore(client, database, gate) for client in clients]
            results = await race([write(store, order_id, n) for n, store in enumerate(stores)])
            outcomes.append(Counter(
                r if isinstance(r, str)
                else "conflict" if isinstance(r, ConcurrencyConflict)
                else f"{type(r).__name__}: {r}"
                for r in results))
    return outcomes


async def test_of_many_concurrent_saves_of_one_version_exactly_one_wins(strict_url: str):
    for outcome in await racing_saves(strict_url):
        assert outcome == {"saved": 1, "conflict": WRITERS - 1}


async def deliver_concurrently(url: str, held: int, causes: list[Envelope]) -> tuple[
        Escrow, list[OutboxMessage], list[OutboxMessage], list[str], int]:
    """Each cause is delivered by its own replica (own client, own runner and so its own
    in-process locks); every replica loads the escrow before any of them saves. Returns the
    escrow, the messages published, the outbox left, the handled event ids and the conflicts."""
    database = f"escrow_release_{uuid.uuid4().hex[:12]}"
    order_id = "order-1"
    clock = ManualClock()
    published: list[OutboxMessage] = []

    async def publish(message: OutboxMessage) -> None:
        published.append(message)

    def release_for(cause: Envelope) -> Callable[[Escrow | None, datetime], Escrow | None]:
        def release(escrow: Escrow | None, now: datetime) -> Escrow | None:
            assert escrow is not None
            return escrow if escrow.release(AMOUNT, f"payout-{cause.event_id}", now) else None
        return release

    async with replicas(url, database, len(causes)) as clients:
        await open_escrow(clients[0], database, order_id, held=held)
        gate = asyncio.Barrier(len(causes))
        stores = [RacingStore(client, database, gate) for client in clients]
        runners = [AggregateRunner(store, clock, publish) for store in stores]
        results = await race([runner.execute(order_id, release_for(cause), cause=cause)
                              for runner, cause in zip(runners, causes, strict=True)])
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors
        loaded = await stores[0].load(order_id)
        assert loaded is not None
        left = await stores[0].outbox(order_id)
        return loaded.aggregate, published, left, loaded.handled, sum(s.conflicts for s in stores)


def receipt_confirmed(order_id: str = "order-1") -> Envelope:
    return Envelope.wrap(ReceiptConfirmed(order_id=order_id, parties=PARTIES, confirmed_by="buyer"),
                         occurred_at=ManualClock().now())


def releases_in(messages: list[OutboxMessage]) -> dict[str, EscrowReleased]:
    """The distinct release events among the published messages (the outbox may publish one
    twice; consumers drop the duplicate by its event id)."""
    found = {}
    for message in messages:
        envelope = message.envelope()
        event = envelope.event()
        assert isinstance(event, EscrowReleased)
        found[envelope.event_id] = event
    return found


async def test_a_release_delivered_many_times_at_once_moves_the_money_exactly_once(strict_url: str):
    held = 3 * AMOUNT  # enough for three releases: only the inbox mark can stop the duplicates
    cause = receipt_confirmed()

    escrow, published, left, handled, conflicts = await deliver_concurrently(
        strict_url, held, [cause] * WRITERS)

    assert conflicts == WRITERS - 1  # all raced on one version; one save won
    assert (escrow.released, escrow.held) == (AMOUNT, held - AMOUNT)
    assert handled == [cause.event_id]
    releases = releases_in(published)
    assert [(e.amount, e.held_after) for e in releases.values()] == [(AMOUNT, held - AMOUNT)]
    assert [h.what for h in escrow.history] == [EscrowReleased.event_type]
    assert left == []


async def test_different_releases_at_once_never_move_more_than_was_held(strict_url: str):
    held = 7 * AMOUNT  # room for seven of the twenty releases
    causes = [receipt_confirmed() for _ in range(WRITERS)]

    escrow, published, left, handled, conflicts = await deliver_concurrently(strict_url, held, causes)

    assert conflicts >= WRITERS - 1
    assert (escrow.released, escrow.held) == (held, 0)
    assert len(handled) == 7 and set(handled) <= {c.event_id for c in causes}
    releases = releases_in(published)
    assert len(releases) == 7
    # each release was applied on top of the one before: no update was lost or applied twice
    assert sorted(e.held_after for e in releases.values()) == [held - k * AMOUNT for k in range(7, 0, -1)]
    assert len(escrow.history) == 7
    assert left == []


async def test_ferretdb_lets_racing_saves_through(ferretdb_url: str):
    """Not a guarantee: documents FerretDB v1's lack of atomic conditional updates."""
    outcomes = await racing_saves(ferretdb_url)
    saved = [o["saved"] for o in outcomes]
    warnings.warn(
        f"FerretDB caveat: of {WRITERS} concurrent saves of one version, {saved} succeeded in "
        f"{ROUNDS} rounds (MongoDB semantics allow exactly 1); outcomes per round: "
        f"{[dict(o) for o in outcomes]}", UserWarning, stacklevel=1)
    assert sum(sum(o.values()) for o in outcomes) == WRITERS * ROUNDS
