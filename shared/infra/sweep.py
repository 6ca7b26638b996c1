"""Sweeps written once: each tick takes the items that are due, oldest first and at most a
bounded number, and works on each in isolation, so one bad order, instruction or document
never stops the others.

An item is due when its document's ``due.<queue>`` time has come; the documents' owner
writes that time with every save (an index serves the query, so an idle sweep costs one
indexed read that finds nothing). A failed attempt is recorded in the document under
``failing.<queue>`` (failures, last error, since when) and moves its ``due.<queue>`` time
later: the first retry comes on the next tick, then after 2, 4, 8 ... times
``RETRY_BASE`` up to ``RETRY_MAX``, while the other items go on. Operators see failing
items through a metric (``escrow_sweep_failing_items``) and a query
(``python -m shared.infra.sweep failing``).

Every replica of a service sweeps, each handling a due item only under a lease: one
conditional update (still due, and no lease or an expired one) writes
``lease.<queue> = {owner, until}``, atomic on the database server, so of two replicas that
read the same due item one takes it and the other goes on with the next. The lease is
dropped when the attempt is over; a holder that died leaves it to expire (``SWEEP_LEASE``,
measured in real time, never on the business clock that tests and demos move ahead), and
the item is then taken again. Periods carry a random jitter (``jittered``) so replicas
started together do not sweep in step.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from shared.infra.clock import Clock, SystemClock

log = logging.getLogger(__name__)

RETRY_BASE = timedelta(seconds=5)
RETRY_MAX = timedelta(hours=1)
SWEEP_LIMIT = 100  # items per tick and queue
# How long a claimed item is its sweeper's: longer than any attempt takes (a payout's call
# to the provider has its own shorter timeout); past it, another replica may take it.
SWEEP_LEASE = timedelta(minutes=2)
JITTER = 0.2  # periods vary by up to this fraction either way


def jittered(interval: float, jitter: float = JITTER, rand: Callable[[], float] = random.random) -> float:
    """``interval`` moved randomly by up to ``jitter`` of it, either way."""
    return interval * (1 + jitter * (2 * rand() - 1))


def retry_delay(failures: int) -> timedelta:
    """How long after its ``failures``-th failure an item is tried again."""
    if failures <= 1:
        return timedelta(0)
    factor: int = 2 ** (failures - 2)
    return min(RETRY_MAX, RETRY_BASE * factor)


@dataclass(frozen=True)
class DueItem:
    id: str
    failures: int = 0
    failing_since: datetime | None = None


@dataclass(frozen=True)
class FailingItem:
    queue: str
    id: str
    failures: int
    error: str
    since: datetime
    next_attempt_at: datetime | None


class SweepQueue(Protocol):
    name: str

    async def due(self, now: datetime, limit: int) -> list[DueItem]: ...
    async def claim(self, item: DueItem, now: datetime, owner: str, lease_now: datetime,
                    until: datetime) -> bool: ...
    async def release(self, item: DueItem, owner: str) -> None: ...
    async def failed(self, item: DueItem, error: str, now: datetime, retry_at: datetime) -> None: ...
    async def recovered(self, item: DueItem) -> None: ...
    async def failing(self, limit: int = 100) -> list[FailingItem]: ...
    async def count_failing(self) -> int: ...


def _failing_entry(item: DueItem, error: str, now: datetime, retry_at: datetime) -> dict[str, Any]:
    return {"failures": item.failures + 1, "error": error[:500],
            "since": item.failing_since or now, "next_attempt_at": retry_at}


def _failing_item(queue: str, doc_id: str, entry: dict[str, Any], due: datetime | None) -> FailingItem:
    return FailingItem(queue, doc_id, entry["failures"], entry["error"], entry["since"], due)


class MongoSweepQueue:
    """A queue over one collection whose documents carry ``due.<name>``."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]], name: str) -> None:
        self.collection = collection
        self.name = name
        self._due = f"due.{name}"
        self._failing = f"failing.{name}"
        self._lease = f"lease.{name}"

    async def create_indexes(self) -> None:
        await self.collection.create_index([(self._due, ASCENDING)])

    async def due(self, now: datetime, limit: int) -> list[DueItem]:
        cursor = self.collection.find(
            {self._due: {"$ne": None, "$lte": now}}, projection={"_id": 1, self._failing: 1}
        ).sort(self._due, ASCENDING).limit(limit)
        items = []
        async for doc in cursor:
            entry = doc.get("failing", {}).get(self.name) or {}
            items.append(DueItem(doc["_id"], entry.get("failures", 0), entry.get("since")))
        return items

    async def claim(self, item: DueItem, now: datetime, owner: str, lease_now: datetime,
                    until: datetime) -> bool:
        """Take the item if it is still due and nobody holds a live lease on it."""
        taken = await self.collection.update_one(
            {"_id": item.id, self._due: {"$ne": None, "$lte": now},
             "$or": [{self._lease: None}, {f"{self._lease}.until": {"$lte": lease_now}}]},
            {"$set": {self._lease: {"owner": owner, "until": until}}})
        return taken.matched_count == 1

    async def release(self, item: DueItem, owner: str) -> None:
        await self.collection.update_one({"_id": item.id, f"{self._lease}.owner": owner},
                                         {"$unset": {self._lease: ""}})

    async def failed(self, item: DueItem, error: str, now: datetime, retry_at: datetime) -> None:
        await self.collection.update_one({"_id": item.id}, {"$set": {
            self._due: retry_at, self._failing: _failing_entry(item, error, now, retry_at)}})

    async def recovered(self, item: DueItem) -> None:
        await self.collection.update_one({"_id": item.id}, {"$unset": {self._failing: ""}})

    async def failing(self, limit: int = 100) -> list[FailingItem]:
        cursor = self.collection.find({self._failing: {"$exists": True}},
                                      projection={"_id": 1, self._failing: 1, self._due: 1}
                                      ).sort(self._due, ASCENDING).limit(limit)
        return [_failing_item(self.name, doc["_id"], doc["failing"][self.name],
                              doc.get("due", {}).get(self.name)) async for doc in cursor]

    async def count_failing(self) -> int:
        return await self.collection.count_documents({self._failing: {"$exists": True}})


class _Metrics:
    """Per registry: failed attempts and items failing now, by sweep."""

    _by_registry: weakref.WeakKeyDictionary[CollectorRegistry, _Metrics] = weakref.WeakKeyDictionary()

    def __init__(self, registry: CollectorRegistry) -> None:
        self.failures = Counter("escrow_sweep_failures", "Failed attempts of a sweep's items",
                                ["sweep"], registry=registry)
        self.failing = Gauge("escrow_sweep_failing_items",
                             "Items whose last attempt failed (retried with back-off)",
                             ["sweep"], registry=registry)

    @classmethod
    def of(cls, registry: CollectorRegistry) -> _Metrics:
        if registry not in cls._by_registry:
            cls._by_registry[registry] = cls(registry)
        return cls._by_registry[registry]


Attempt = Callable[[str], Awaitable[int]]


class Sweep:
    """One sweep: ``attempt(id)`` works on one due item and returns how much it did; it
    raises when it failed (then the item is backed off and the sweep goes on). Each item
    is attempted under a lease (``lease`` long, on ``lease_clock``), so of all replicas
    sweeping the same queue one handles it."""

    def __init__(self, name: str, queue: SweepQueue, attempt: Attempt,
                 clock: Clock, *, limit: int = SWEEP_LIMIT,
                 registry: CollectorRegistry | None = None, lease: timedelta = SWEEP_LEASE,
                 lease_clock: Clock | None = None) -> None:
        self.name = name
        self.queue = queue
        self.attempt = attempt
        self.clock = clock
        self.limit = limit
        self.lease = lease
        self.lease_clock = lease_clock or SystemClock()
        self.owner = uuid.uuid4().hex  # this sweeper, in this process
        self._metrics = _Metrics.of(registry) if registry is not None else None
        self._counted = False

    async def __call__(self) -> int:
        done = 0
        changed = not self._counted
        for item in await self.queue.due(self.clock.now(), self.limit):
            lease_now = self.lease_clock.now()
            if not await self.queue.claim(item, self.clock.now(), self.owner, lease_now,
                                          lease_now + self.lease):
                continue  # another replica has it, or handled it since it was read
            try:
                done += await self.attempt(item.id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # isolated: recorded on the item, the others go on
                now = self.clock.now()
                retry_at = now + retry_delay(item.failures + 1)
                log.warning("%s: %s failed (%d time(s)); next attempt at %s: %s: %s", self.name,
                            item.id, item.failures + 1, retry_at.isoformat(), type(exc).__name__, exc,
                            exc_info=exc if item.failures == 0 else None)
                await self.queue.failed(item, f"{type(exc).__name__}: {exc}", now, retry_at)
                await self.queue.release(item, self.owner)
                if self._metrics:
                    self._metrics.failures.labels(self.name).inc()
                changed = True
                continue
            await self.queue.release(item, self.owner)
            if item.failures:
                await self.queue.recovered(item)
                changed = True
        if changed and self._metrics:  # counted only when it may have changed: idle is free
            self._metrics.failing.labels(self.name).set(await self.queue.count_failing())
            self._counted = True
        return done


async def _print_failing(url: str, database: str) -> None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
    try:
        db = client[database]
        for name in sorted(await db.list_collection_names()):
            async for doc in db[name].find({"failing": {"$exists": True, "$ne": {}}},
                                           projection={"failing": 1, "due": 1}):
                for queue, entry in doc["failing"].items():
                    print(f"{name}/{doc['_id']} [{queue}] {entry['failures']} failure(s) since "
                          f"{entry['since']:%Y-%m-%d %H:%M:%S}, next attempt "
                          f"{doc.get('due', {}).get(queue)}: {entry['error']}")
    finally:
        await client.close()


def main() -> None:
    """``python -m shared.infra.sweep failing``: every item a sweep could not handle, in the
    database of the service whose environment is set (``MONGODB_URL``, ``MONGODB_DATABASE``)."""
    from shared.infra.settings import ServiceSettings

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("command", choices=["failing"])
    parser.parse_args()
    settings = ServiceSettings()
    asyncio.run(_print_failing(settings.mongodb_url, settings.mongodb_database))


if __name__ == "__main__":
    main()
