"""The fast tests' one in-memory database: mongomock behind the async face of PyMongo's
``AsyncMongoClient``, under the real stores.

Why this and not a hand-written fake per store: the services keep more than stores in MongoDB
(the sandbox card provider's collections, the figures read for metrics, the operator tool's
reads of every service's documents), and every composition root builds its stores from one
client. A dict fake per store would leave those out (the whole platform could not run in
memory) and would repeat each store's query in Python, where it can drift from the one that
runs in production. Under mongomock the fast tests run the production stores' own queries and
updates; the real servers remain the proof of what mongomock only imitates (atomic
conditional updates, indexes, concurrency): tests/integration and tests/e2e.
"""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

import mongomock

from shared.domain.aggregate import Aggregate
from shared.infra.clock import Clock
from shared.infra.rate_limit import MongoWindowCounts, RateLimiter
from shared.infra.store import STORED_DEADLINES, AggregateStore, DueTimes

A = TypeVar("A", bound=Aggregate)


class MemoryCursor:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def sort(self, *args: Any, **kwargs: Any) -> MemoryCursor:
        self._cursor = self._cursor.sort(*args, **kwargs)
        return self

    def limit(self, n: int) -> MemoryCursor:
        self._cursor = self._cursor.limit(n)
        return self

    async def to_list(self, length: int | None = None) -> list[dict[str, Any]]:
        return list(self._cursor)[:length] if length else list(self._cursor)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        async def rows() -> AsyncIterator[dict[str, Any]]:
            for row in self._cursor:
                yield row
        return rows()


class MemoryCollection:
    """An ``AsyncCollection``'s methods as coroutines over a mongomock collection, plus what a
    test reads or sets directly: ``documents``, ``snapshot`` and ``restore``."""

    def __init__(self, collection: Any) -> None:
        self._c = collection

    def find(self, *args: Any, **kwargs: Any) -> MemoryCursor:
        return MemoryCursor(self._c.find(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._c, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)
        return call

    def documents(self) -> dict[Any, dict[str, Any]]:
        """Every stored document by ``_id`` (copies: change them through the collection)."""
        return {doc["_id"]: doc for doc in self._c.find()}

    def snapshot(self) -> bytes:
        """The collection's documents, to ``restore`` later. (Pickled from mongomock's own
        store: a test that explores thousands of orderings restores thousands of times.)"""
        return pickle.dumps(self._c._store._documents)

    def restore(self, snapshot: bytes) -> None:
        """The collection holds exactly what it held at ``snapshot`` again."""
        self._c._store._documents = pickle.loads(snapshot)

    def insert(self, *documents: dict[str, Any]) -> None:
        """Store ``documents`` at once (no coroutine): for a test's set-up."""
        self._c.insert_many(list(documents))


class MemoryDatabase:
    def __init__(self, database: Any) -> None:
        self._db = database

    def __getitem__(self, name: str) -> MemoryCollection:
        return MemoryCollection(self._db[name])

    async def command(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"ok": 1}


class MemoryMongo:
    """The part of ``AsyncMongoClient`` the services use, over mongomock."""

    def __init__(self) -> None:
        self._client = mongomock.MongoClient(tz_aware=True)
        self.admin = MemoryDatabase(self._client.admin)

    def __getitem__(self, name: str) -> MemoryDatabase:
        return MemoryDatabase(self._client[name])

    async def close(self) -> None:
        return None


def memory_collection(name: str = "documents") -> MemoryCollection:
    """A collection of its own, in a database of its own."""
    return MemoryMongo()["escrow"][name]


def memory_rate_limiter(clock: Clock) -> RateLimiter:
    """The per-party rate limits of a service, counted in an in-memory collection."""
    return RateLimiter(MongoWindowCounts(memory_collection("rate_limits")), clock)


class MemoryAggregateStore(AggregateStore[A], Generic[A]):
    """The production ``AggregateStore`` over a collection of its own; ``docs`` shows what it
    holds, ``collection`` lets a test change it behind the store's back."""

    def __init__(self, aggregate_type: type[A], due: DueTimes = STORED_DEADLINES) -> None:
        self.collection = memory_collection(aggregate_type.__name__.lower())
        super().__init__(self.collection, aggregate_type, due)

    @property
    def docs(self) -> dict[str, dict[str, Any]]:
        return self.collection.documents()
