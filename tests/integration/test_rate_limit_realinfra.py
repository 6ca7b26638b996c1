"""The per-party rate limit with two replicas on the real MongoDB-wire server: each replica
has its own client, all take at once, and exactly the limit gets through (one ``$inc``
upsert per take, atomic on one document)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from pymongo import AsyncMongoClient

from shared.domain.errors import TooManyRequests
from shared.infra.clock import ManualClock
from shared.infra.rate_limit import COLLECTION, Limit, MongoWindowCounts, RateLimiter

from tests.support.infra import Infra

pytestmark = pytest.mark.realinfra

LIMIT = Limit("order_message", 25, timedelta(hours=1), "messages")
TAKES_PER_REPLICA = 30


async def test_two_replicas_taking_at_once_let_exactly_the_limit_through(infra: Infra):
    database, clock = f"rate_{uuid.uuid4().hex[:8]}", ManualClock()
    clients = [AsyncMongoClient(infra.mongodb_url) for _ in range(2)]
    try:
        replicas = [RateLimiter(MongoWindowCounts(c[database][COLLECTION]), clock)
                    for c in clients]
        await MongoWindowCounts(clients[0][database][COLLECTION]).create_indexes()

        async def take(limiter: RateLimiter) -> bool:
            try:
                await limiter.take(LIMIT, "buyer-1")
                return True
            except TooManyRequests:
                return False
        taken = await asyncio.gather(*[take(r) for r in replicas
                                       for _ in range(TAKES_PER_REPLICA)])
        assert sum(taken) == LIMIT.per_window

        clock.advance(LIMIT.window)  # the next window: the limit again, the old one removed
        assert await take(replicas[1])
        assert await clients[0][database][COLLECTION].count_documents({}) == 1
    finally:
        await clients[0].drop_database(database)
        for client in clients:
            await client.close()
