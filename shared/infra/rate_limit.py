"""Per-party rate limits on what a party can make the platform do or send (orders placed,
each mailed to the supplier; messages and statements, each mailed to the other side).

A fixed window: one counter document per party, action and window in the owning service's
own collection, counted by a single conditional ``$inc`` upsert, which the server applies
atomically to one document, so any number of replicas share the count. Documents of past windows of the
party and action are removed when its next window opens. The limit is taken before any
other change: past it, ``TooManyRequests`` (HTTP 429 with Retry-After) and nothing happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.domain.errors import TooManyRequests
from shared.infra.clock import Clock

COLLECTION = "rate_limits"
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Limit:
    action: str  # the counter's name, e.g. "place_order"
    per_window: int
    window: timedelta
    doing: str  # for the refusal, e.g. "orders placed"

    def __post_init__(self) -> None:
        if self.per_window < 1 or self.window <= timedelta(0):
            raise ValueError(f"a rate limit needs a positive count and window: {self}")

    def window_of(self, now: datetime) -> tuple[int, datetime]:
        """The window ``now`` falls in: its number and its end."""
        index = (now - _EPOCH) // self.window
        return index, _EPOCH + (index + 1) * self.window


class WindowCounts(Protocol):
    """Where the counts are kept."""

    async def take_one(self, action: str, party_id: str, window: int, limit: int) -> bool:
        """Count one more in that window if fewer than ``limit`` were counted; whether it
        was. The window's first count forgets the party's earlier windows of the action."""


class RateLimiter:
    def __init__(self, counts: WindowCounts, clock: Clock) -> None:
        self.counts = counts
        self.clock = clock

    async def take(self, limit: Limit, party_id: str) -> None:
        """Count one more of ``limit.action`` for ``party_id``; raises ``TooManyRequests``
        when the limit of the current window is reached."""
        now = self.clock.now()
        window, ends_at = limit.window_of(now)
        if not await self.counts.take_one(limit.action, party_id, window, limit.per_window):
            raise TooManyRequests(
                f"at most {limit.per_window} {limit.doing} per {_human(limit.window)} for one "
                f"party; try again after {ends_at:%Y-%m-%d %H:%M} UTC",
                retry_after=ends_at - now)


class MongoWindowCounts:
    """A document per action, party and window, counted by one conditional ``$inc``
    (upserting the window's first): the server applies it to one document atomically and
    says whether it matched, so no returned document has to be trusted."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def create_indexes(self) -> None:
        await self.collection.create_index([("action", ASCENDING), ("party_id", ASCENDING),
                                            ("window", ASCENDING)])

    async def take_one(self, action: str, party_id: str, window: int, limit: int) -> bool:
        below_limit = {"_id": f"{action}:{window}:{party_id}", "count": {"$lt": limit}}
        count_one = {"$inc": {"count": 1}}
        try:
            result = await self.collection.update_one(below_limit, {
                **count_one,
                "$setOnInsert": {"action": action, "party_id": party_id, "window": window},
            }, upsert=True)
        except DuplicateKeyError:
            # The document exists at the limit, or a concurrent first count just made it.
            result = await self.collection.update_one(below_limit, count_one)
            return result.modified_count == 1
        if result.upserted_id is not None:
            await self.collection.delete_many(
                {"action": action, "party_id": party_id, "window": {"$lt": window}})
        return True


def _human(period: timedelta) -> str:
    seconds = int(period.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} seconds"
