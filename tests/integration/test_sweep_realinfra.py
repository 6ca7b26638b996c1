"""The sweep queue's queries on the real database server: due items oldest first and
bounded, a failure stored with its next attempt, recovery, and the operators' query."""

from __future__ import annotations

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
