"""The sweep queue's queries on the real database server: due items oldest first and
bounded, a failure stored with its next attempt, recovery, and the operators' query; two
replicas sweeping at once handle each item once (per-item leases)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from pymongo import AsyncMongoClient

from shared.infra.clock import ManualClock
from shared.infra.sweep import MongoSweepQueue, Sweep, retry_delay

from tests.support.infra import Infra

pytestmark = pytest.mark.realinfra


async def test_a_sweep_on_the_real_server_is_fair_and_isolated(infra: Infra):
    client: AsyncMongoClient = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
    database = client[f"sweep_{uuid.uuid4().hex[:8]}"]
    clock = ManualClock()
    try:
        collection = database["items"]
        queue = MongoSweepQueue(collection, "work")
        await queue.create_indexes()
        ids = ["bad", "old", "mid", "new"]
        await collection.insert_many(
            [{"_id": key, "due": {"work": clock.now() - timedelta(minutes=10 - i)}}
             for i, key in enumerate(ids)]
            + [{"_id": "later", "due": {"work": clock.now() + timedelta(hours=1)}},
               {"_id": "idle", "due": {"work": None}}])
        tried: list[str] = []

        async def attempt(key: str) -> int:
            tried.append(key)
            if key == "bad":
                raise RuntimeError("broken document")
            await collection.update_one({"_id": key}, {"$set": {"due.work": None}})
            return 1

        sweep = Sweep("work", queue, attempt, clock, limit=3)
        assert await sweep() == 2 and tried == ["bad", "old", "mid"]
        assert await sweep() == 1 and tried[3:] == ["new", "bad"]  # a failed item goes behind
        assert await sweep() == 0 and tried[5:] == []  # then backed off
        [failing] = await queue.failing()
        assert (failing.id, failing.failures, failing.error) == ("bad", 2, "RuntimeError: broken document")
        assert failing.next_attempt_at == clock.now() + retry_delay(2)
        assert await queue.count_failing() == 1
    finally:
        await client.drop_database(database.name)
        await client.close()


async def test_two_sweepers_on_the_real_server_handle_each_due_item_exactly_once(infra: Infra):
    """Two replicas (each its own client, as two processes) sweep the same due items at
    once: the lease gives each item to one of them; both get work."""
    name = f"sweep_{uuid.uuid4().hex[:8]}"
    clients: list[AsyncMongoClient] = [AsyncMongoClient(infra.mongodb_url, tz_aware=True) for _ in range(2)]
    clock = ManualClock()
    try:
        setup = clients[0][name]["items"]
        await MongoSweepQueue(setup, "work").create_indexes()
        count = 60
        await setup.insert_many([{"_id": f"item-{i:03}", "effects": 0,
                                  "due": {"work": clock.now() - timedelta(minutes=count - i)}}
                                 for i in range(count)])
        handled_by: dict[str, list[str]] = {"first": [], "second": []}

        def sweeper(replica: str, client: AsyncMongoClient) -> Sweep:
            collection = client[name]["items"]

            async def attempt(key: str) -> int:
                # the effect outside any versioned save (a provider call, a mail): counted
                await collection.update_one({"_id": key}, {"$inc": {"effects": 1}})
                handled_by[replica].append(key)
                await collection.update_one({"_id": key}, {"$set": {"due.work": None}})
                return 1
            return Sweep("work", MongoSweepQueue(collection, "work"), attempt, clock, limit=count)

        sweepers = [sweeper("first", clients[0]), sweeper("second", clients[1])]
        done = await asyncio.gather(*(s() for s in sweepers))
        assert sum(done) == count
        effects = {doc["_id"]: doc["effects"] async for doc in setup.find({}, projection={"effects": 1})}
        assert set(effects.values()) == {1}, {k: v for k, v in effects.items() if v != 1}
        assert handled_by["first"] and handled_by["second"], "one replica did all the work"
        assert await setup.count_documents({"lease.work": {"$exists": True}}) == 0  # all released
    finally:
        await clients[0].drop_database(name)
        for client in clients:
            await client.close()
