"""Read-only access to every service's records, for operators.

The services never read each other's collections; an operator tool may, read-only, so
that "what happened to order X" is one command even while a service is down. The
documents are read as stored (``{"_id": order id, "state": {...}, "version", "outbox",
...}``), so the tool does not depend on a running service nor change anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

# Which collection holds each service's aggregate per order (and who owns it).
AGGREGATES = {"order": "orders", "payment": "escrows", "shipping": "shipments", "dispute": "protections"}
EMAILS = "emails"


@dataclass
class Records:
    database: AsyncDatabase[dict[str, Any]]

    @classmethod
    def connect(cls, url: str, database: str,
                timeout_ms: int = 3000) -> tuple[Records, AsyncMongoClient[dict[str, Any]]]:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url, tz_aware=True, serverSelectionTimeoutMS=timeout_ms)
        return cls(client[database]), client

    async def aggregates(self, order_id: str) -> dict[str, dict[str, Any]]:
        """Each service's stored document of the order (services without one are absent)."""
        found = {}
        for service, collection in AGGREGATES.items():
            doc = await self.database[collection].find_one({"_id": order_id})
            if doc is not None:
                found[service] = doc
        return found

    async def emails(self, order_id: str) -> list[dict[str, Any]]:
        cursor = self.database[EMAILS].find({"order_id": order_id}, projection={"html": 0, "text": 0})
        return sorted(await cursor.to_list(None), key=_created_at)

    async def all_of(self, service: str) -> list[dict[str, Any]]:
        return await self.database[AGGREGATES[service]].find({}, projection={"outbox": 0}).to_list(None)

    async def one(self, service: str, order_id: str) -> dict[str, Any] | None:
        return await self.database[AGGREGATES[service]].find_one({"_id": order_id}, projection={"outbox": 0})


def _created_at(email: dict[str, Any]) -> Any:
    return email.get("created_at")
