"""Persistence of aggregates, each in one document together with its pending outbox
messages and the ids of the events it has already handled.

One document per order is the unit of atomicity: MongoDB makes a single-document update
atomic, so state, outgoing messages and the inbox mark are saved together or not at all,
without multi-document transactions (which FerretDB lacks). Saves are conditional on the
version read, so two writers cannot both win.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.contracts.envelope import Envelope
from shared.domain.aggregate import Aggregate
from shared.infra.sweep import MongoSweepQueue

A = TypeVar("A", bound=Aggregate)

# The sweeps an aggregate's documents take part in: queue name -> when the aggregate is
# next due for it (None: not due). Written with every save as ``due.<name>``.
DueTimes = Mapping[str, Callable[[Any], datetime | None]]
DEADLINES = "deadlines"
STORED_DEADLINES: DueTimes = {DEADLINES: lambda aggregate: aggregate.next_deadline_at}


class ConcurrencyConflict(Exception):
    """Someone else saved the aggregate first; reload and try again."""

# How many handled event ids an aggregate remembers. An order sees a few dozen events in
# its whole life; this bound only stops a runaway producer from growing the document.
HANDLED_MEMORY = 1000


@dataclass
class Loaded(Generic[A]):
    aggregate: A
    version: int
    handled: list[str] = field(default_factory=list)
    outbox_pending: bool = False  # messages saved earlier still wait to be published
    trace: str | None = None  # the trade's trace context, as this service first saw the order


@dataclass(frozen=True)
class OutboxMessage:
    event_id: str
    body: str  # the envelope as JSON, exactly as it will be published

    @classmethod
    def of(cls, envelope: Envelope) -> OutboxMessage:
        return cls(event_id=envelope.event_id, body=envelope.model_dump_json())

    def envelope(self) -> Envelope:
        return Envelope.model_validate_json(self.body)


def _document(aggregate: Aggregate, version: int, handled: list[str],
              due: DueTimes, trace: str | None) -> dict[str, Any]:
    return {
        **({"trace": trace} if trace else {}),
        "version": version,
        "state": aggregate.model_dump(mode="json"),
        "handled": handled[-HANDLED_MEMORY:],
        "due": {name: when(aggregate) for name, when in due.items()},
    }


class AggregateStore(Generic[A]):
    """MongoDB (or any MongoDB-wire server) store of one aggregate type."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]], aggregate_type: type[A],
                 due: DueTimes = STORED_DEADLINES) -> None:
        self._collection = collection
        self._type = aggregate_type
        self._due = due

    @property
    def aggregate_type(self) -> type[A]:
        return self._type

    def queue(self, name: str) -> MongoSweepQueue:
        """The sweep queue ``name`` over this store's documents."""
        return MongoSweepQueue(self._collection, name)

    async def create_indexes(self, *state_fields: str) -> None:
        for name in self._due:
            await self.queue(name).create_indexes()
        await self._collection.create_index([("outbox_pending", ASCENDING)])
        for name in state_fields:
            await self._collection.create_index([(f"state.{name}", ASCENDING)])

    def _load(self, doc: dict[str, Any]) -> Loaded[A]:
        return Loaded(self._type.model_validate(doc["state"]), doc["version"], doc.get("handled", []),
                      bool(doc.get("outbox_pending")), doc.get("trace"))

    async def load(self, order_id: str) -> Loaded[A] | None:
        doc = await self._collection.find_one({"_id": order_id}, projection={"outbox": 0})
        return self._load(doc) if doc else None

    async def save(self, aggregate: A, *, expected_version: int, outbox: list[Envelope],
                   handled: list[str], trace: str | None = None) -> int:
        """Save state, append ``outbox`` and return the new version, or raise
        ``ConcurrencyConflict`` if the stored version is no longer ``expected_version``."""
        new_version = expected_version + 1
        doc = _document(aggregate, new_version, handled, self._due, trace)
        messages = [OutboxMessage.of(e).__dict__ for e in outbox]
        if expected_version == 0:
            try:
                await self._collection.insert_one(
                    {"_id": aggregate.order_id, **doc, "outbox": messages,
                     "outbox_pending": bool(messages)})
            except DuplicateKeyError as exc:
                raise ConcurrencyConflict(aggregate.order_id) from exc
            return new_version
        update: dict[str, Any] = {"$set": doc}
        if messages:
            update["$set"]["outbox_pending"] = True
            update["$push"] = {"outbox": {"$each": messages}}
        result = await self._collection.update_one(
            {"_id": aggregate.order_id, "version": expected_version}, update)
        if result.matched_count != 1:
            raise ConcurrencyConflict(aggregate.order_id)
        return new_version

    async def outbox(self, order_id: str) -> list[OutboxMessage]:
        doc = await self._collection.find_one({"_id": order_id}, projection={"outbox": 1})
        return [OutboxMessage(**m) for m in (doc or {}).get("outbox", [])]

    async def mark_published(self, order_id: str, published: list[OutboxMessage]) -> None:
        messages = [m.__dict__ for m in published]
        # Usually the outbox holds exactly what was just published: empty it in one write.
        emptied = await self._collection.update_one(
            {"_id": order_id, "outbox": messages}, {"$set": {"outbox": [], "outbox_pending": False}})
        if emptied.matched_count == 0:
            # More was appended meanwhile: remove only what was published, and the flag stays
            # up for the rest. ($pullAll removes exact elements: the one form of array
            # removal FerretDB v1 and MongoDB agree on.)
            await self._collection.update_one({"_id": order_id}, {"$pullAll": {"outbox": messages}})

    async def with_pending_outbox(self, limit: int = 500) -> list[str]:
        cursor = self._collection.find({"outbox_pending": True}, projection={"_id": 1}).limit(limit)
        return [doc["_id"] async for doc in cursor]

    async def due(self, now: datetime, limit: int = 500) -> list[str]:
        """Orders whose stored deadlines have come, earliest first."""
        return [item.id for item in await self.queue(DEADLINES).due(now, limit)]

    async def find(self, where: dict[str, Any], limit: int = 200) -> list[A]:
        """Aggregates whose state fields equal the given values (``{"status": "escalated"}``)."""
        query = {f"state.{k}": v for k, v in where.items()}
        cursor = self._collection.find(query, projection={"outbox": 0}).limit(limit)
        return [self._load(doc).aggregate async for doc in cursor]
