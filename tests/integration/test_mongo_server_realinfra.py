"""The default MongoDB-wire server (deploy/local's EscrowMongoServer) keeps what it acknowledged
and answers the services' queries from indexes. Each test runs a server process of its own on
a free port (these tests kill it and read its counters), built by ``infra.sh up``.

- Persistence: writers insert, update conditionally and ``$push`` while the server is killed
  with SIGKILL; after a restart every acknowledged write is there and every update is whole.
  Compaction (a tiny threshold here) runs during the writes and at each start, so recovery
  goes through snapshots as well as the journal, and the data directory stays two files.
- Index use: the server counts the documents its queries examine (serverStatus
  ``metrics.queryExecutor.scannedObjects``, as MongoDB names it); the versioned save, the load
  and the sweeps examine about what they return, not the collection.
- Index answers: every query shape the planner serves from an index (equality, ``$in``,
  ranges, ``$ne: null``, arrays, ``_id`` with more keys, sorts and limits) answers as a scan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from shared.contracts.envelope import Envelope
from shared.contracts.events import ReceiptConfirmed
from shared.contracts.parties import Parties, Party
from shared.domain.aggregate import Aggregate
from shared.infra.store import AggregateStore

from deploy.local.mongo_server import MongoServerProcess
from tests.support.mongo_server import server_libs

pytestmark = pytest.mark.realinfra

WRITERS = 8
ORDERS_PER_WRITER = 5
ACKNOWLEDGED_BEFORE_KILL = 250
COMPACT_AFTER_BYTES = 16_384  # small: compaction runs several times during the writes
OP_DEADLINE_S = 60  # a guard against a hang, not a measurement

PARTIES = Parties(buyer=Party(party_id="buyer-1", name="ACME Imports"),
                  supplier=Party(party_id="supplier-1", name="Shenzhen Bolts"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MongoServerProcess]:
    process = MongoServerProcess(server_libs(), ["--data-dir", str(tmp_path / "data"),
                                                 "--compact-after", str(COMPACT_AFTER_BYTES)],
                                 tmp_path / "server.log")
    process.start()
    yield process
    process.stop()


async def write_until_killed(server: MongoServerProcess, acknowledged: dict[str, int], prefix: str) -> None:
    """``WRITERS`` clients, each on orders of its own: insert an order at version 1 with
    ``items == [0]``, then update it conditionally on its version, ``$set`` version v+1 and
    ``$push`` v, so a whole order always has ``items == [0..version-1]``. ``acknowledged``
    holds the last version each order's writer was told was saved. The server is killed with
    SIGKILL once ``ACKNOWLEDGED_BEFORE_KILL`` writes were acknowledged, writers still writing."""
    enough = asyncio.Event()
    count = 0

    async def writer(n: int) -> None:
        nonlocal count
        client: AsyncMongoClient = AsyncMongoClient(server.url, serverSelectionTimeoutMS=2_000,
                                                    socketTimeoutMS=5_000, retryWrites=False)
        orders = client.escrow.orders
        ids = [f"{prefix}-{n}-{k}" for k in range(ORDERS_PER_WRITER)]
        try:
            for i in range(1_000_000):
                order_id = ids[i % len(ids)]
                version = acknowledged.get(order_id)
                if version is None:
                    await orders.insert_one({"_id": order_id, "version": 1, "items": [0]})
                    acknowledged[order_id] = 1
                else:
                    result = await orders.update_one({"_id": order_id, "version": version},
                                                     {"$set": {"version": version + 1}, "$push": {"items": version}})
                    assert result.matched_count == 1, (order_id, version)
                    acknowledged[order_id] = version + 1
                count += 1
                if count >= ACKNOWLEDGED_BEFORE_KILL:
                    enough.set()
        except AssertionError:
            raise
        except Exception:
            return  # the server was killed under this write: it may or may not have been applied
        finally:
            await client.close()

    writers = [asyncio.create_task(writer(n)) for n in range(WRITERS)]
    async with asyncio.timeout(OP_DEADLINE_S):
        await enough.wait()
        server.kill9()
        await asyncio.gather(*writers)


async def assert_kept(server: MongoServerProcess, acknowledged: dict[str, int]) -> None:
    client: AsyncMongoClient = AsyncMongoClient(server.url)
    try:
        stored = {doc["_id"]: doc async for doc in client.escrow.orders.find()}
    finally:
        await client.close()
    for order_id, version in acknowledged.items():
        doc = stored.get(order_id)
        assert doc is not None, f"{order_id}: acknowledged at version {version}, lost"
        # the write in flight when the server died may have been applied, nothing else
        assert doc["version"] in (version, version + 1), (order_id, version, doc["version"])
        assert doc["items"] == list(range(doc["version"])), f"{order_id}: a torn update {doc}"


async def storage_status(server: MongoServerProcess) -> dict:
    client: AsyncMongoClient = AsyncMongoClient(server.url)
    try:
        return (await client.admin.command("serverStatus"))["escrowStorage"]
    finally:
        await client.close()


async def test_every_acknowledged_write_survives_kill_9_and_compaction(server: MongoServerProcess, tmp_path: Path):
    acknowledged: dict[str, int] = {}
    await write_until_killed(server, acknowledged, "first")
    assert len(acknowledged) == WRITERS * ORDERS_PER_WRITER

    server.start()
    await assert_kept(server, acknowledged)
    status = await storage_status(server)
    assert status["fsync"] is True
    # the start compacted what it recovered: one snapshot and one (empty) journal
    assert sorted(p.name for p in (tmp_path / "data").iterdir() if p.name != "LOCK") == [
        f"journal-{status['journalSequence']}.log", f"snapshot-{status['journalSequence']}.bson"]

    # more writes on top of the recovered state (compacting on the way), killed again
    await write_until_killed(server, acknowledged, "second")
    server.start()
    await assert_kept(server, acknowledged)
    assert (await storage_status(server))["journalSequence"] > status["journalSequence"] + 1  # compacted meanwhile


class Tab(Aggregate):
    """Test-only aggregate with a status field the store indexes."""

    status: str


@pytest.fixture(scope="module")
def memory_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServerProcess]:
    """One memory-only server for the tests that read its counters (each uses its own collections)."""
    process = MongoServerProcess(server_libs(), [], tmp_path_factory.mktemp("memory-server") / "server.log")
    process.start()
    yield process
    process.stop()


async def test_saves_loads_and_sweeps_examine_what_they_return_not_the_collection(memory_server: MongoServerProcess):
    client: AsyncMongoClient = AsyncMongoClient(memory_server.url)
    store = AggregateStore(client.counted.tabs, Tab)  # the services' store, with their queries
    await store.create_indexes("status")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    closed, due, pending = 1_000, 10, 5
    await store.save(Tab(order_id="closed-0", parties=PARTIES, status="closed"), expected_version=0,
                     outbox=[], handled=[])
    template = await client.counted.tabs.find_one({"_id": "closed-0"})
    await client.counted.tabs.insert_many([{**template, "_id": f"closed-{n}"} for n in range(1, closed)])
    for n in range(due):  # deadlines in the past, latest first, so the sort has work to do
        deadline = now - timedelta(minutes=n + 1)
        await store.save(Tab(order_id=f"due-{n}", parties=PARTIES, status="paid", deadlines={"pay": deadline}),
                         expected_version=0, outbox=[], handled=[])
    for n in range(pending):
        envelope = Envelope.wrap(ReceiptConfirmed(order_id=f"pending-{n}", parties=PARTIES, confirmed_by="buyer"),
                                 occurred_at=now)
        await store.save(Tab(order_id=f"pending-{n}", parties=PARTIES, status="disputed",
                             deadlines={"later": now + timedelta(days=1)}),
                         expected_version=0, outbox=[envelope], handled=[])

    async def examined(operation):
        before = (await client.admin.command("serverStatus"))["metrics"]["queryExecutor"]["scannedObjects"]
        result = await operation
        after = (await client.admin.command("serverStatus"))["metrics"]["queryExecutor"]["scannedObjects"]
        return result, after - before

    try:
        loaded, n = await examined(store.load("closed-500"))
        assert loaded is not None and n == 1
        _, n = await examined(store.save(loaded.aggregate, expected_version=loaded.version, outbox=[], handled=["e1"]))
        assert n == 1  # {_id, version}: from the _id index, not a scan
        found, n = await examined(store.due(now))
        assert found == [f"due-{k}" for k in reversed(range(due))] and n == due
        found, n = await examined(store.due(now, limit=3))
        assert len(found) == 3 and n == 3  # served in deadline order, stops at the limit
        found, n = await examined(store.with_pending_outbox())
        assert sorted(found) == [f"pending-{k}" for k in range(pending)] and n == pending
        found, n = await examined(store.find({"status": "disputed"}))
        assert len(found) == pending and n == pending
        # the counter counts: a filter on a field without an index reads every document
        total, n = await examined(client.counted.tabs.count_documents({"version": 1}))
        assert n == closed + due + pending and total == closed + due + pending - 1
    finally:
        await client.close()


async def test_a_query_served_from_an_index_answers_as_a_scan_does(memory_server: MongoServerProcess):
    """The same documents in an indexed and an unindexed collection: every query shape the
    planner serves from an index gives what the scan gives (in the sort's order of keys)."""
    client: AsyncMongoClient = AsyncMongoClient(memory_server.url, tz_aware=True)
    indexed, scanned = client.compared.indexed, client.compared.scanned
    start = datetime(2026, 1, 1, tzinfo=UTC)
    documents = []
    for i in range(300):
        document = {"_id": f"d{i:03}", "n": i % 50 if i % 7 else float(i % 50), "tags": [f"t{i % 3}", f"t{i % 5}"],
                    "state": {"status": ("open", "paid", "closed")[i % 3]}}
        if i % 4 == 0:
            document["at"] = start + timedelta(minutes=i)
        elif i % 4 == 1:
            document["at"] = None  # the rest have no "at" at all
        documents.append(document)
    for key in ("n", "tags", "at", "state.status"):
        await indexed.create_index(key)
    await indexed.insert_many([dict(d) for d in documents])
    await scanned.insert_many([dict(d) for d in documents])
    middle = start + timedelta(minutes=150)
    queries: list[tuple[dict, list | None, int]] = [
        ({"n": 5}, None, 0), ({"n": 7.0}, None, 0), ({"n": {"$eq": 3}}, None, 0),
        ({"n": {"$in": [1, 2, 49, 99]}}, None, 0), ({"n": {"$gt": 10, "$lte": 20}}, None, 0),
        ({"n": {"$gte": 45}}, [("n", -1)], 7), ({"n": {"$lt": 3}}, [("n", 1)], 0), ({"n": {"$gt": 60}}, None, 0),
        ({"at": {"$ne": None, "$lte": middle}}, [("at", 1)], 0),
        ({"at": {"$ne": None, "$lte": middle}}, [("at", 1)], 3),
        ({"at": {"$gt": middle}}, [("at", -1)], 0), ({"at": None}, None, 0), ({"at": {"$ne": None}}, None, 0),
        ({"tags": "t1"}, None, 0), ({"tags": {"$in": ["t0", "t4"]}}, None, 0),
        ({"state.status": "paid", "n": 4}, None, 0),
        ({"_id": "d010", "n": 10}, None, 0), ({"_id": "d010", "n": 11}, None, 0),
        ({"_id": {"$in": ["d001", "d002", "d003", "nope"]}, "n": {"$lt": 3}}, None, 0),
    ]
    try:
        for query, sort, limit in queries:
            answers = []
            for collection in (indexed, scanned):
                cursor = collection.find(query)
                if sort:
                    cursor = cursor.sort(sort)
                if limit:
                    cursor = cursor.limit(limit)
                answers.append([d async for d in cursor])
            if sort:  # equal keys may come in any order: compare the keys in order
                key = sort[0][0]
                assert [d.get(key) for d in answers[0]] == [d.get(key) for d in answers[1]], query
            if not limit:
                assert sorted(d["_id"] for d in answers[0]) == sorted(d["_id"] for d in answers[1]), query
            assert len(answers[0]) == len(answers[1]), query
        # updates and deletes keep the indexes true
        await indexed.update_many({"n": {"$lt": 10}}, {"$set": {"n": 100}})
        await scanned.update_many({"n": {"$lt": 10}}, {"$set": {"n": 100}})
        await indexed.delete_many({"tags": "t2"})
        await scanned.delete_many({"tags": "t2"})
        for query in ({"n": 100}, {"n": {"$lt": 10}}, {"tags": "t2"}, {"n": {"$gte": 40}}):
            assert sorted([d["_id"] async for d in indexed.find(query)]) == \
                sorted([d["_id"] async for d in scanned.find(query)]), query
    finally:
        await client.close()
