"""Where email jobs live: the ``emails`` collection (MongoDB; in memory for the fast tests
through mongomock, tests/support/memory_mongo.py).

A sender takes a job with one conditional update (due ``pending`` job, or a ``sending``
job whose lease expired, becomes ``sending`` under a new lease token), so two senders
never hold the same job; the outcome is written only by the holder of the current token.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Protocol

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.notify.emails import EmailJob, EmailStatus

COLLECTION = "emails"


class EmailJobs(Protocol):
    async def create_indexes(self) -> None: ...

    async def add(self, job: EmailJob) -> bool:
        """Store a new job; ``False`` if a job with its id exists (the event came again)."""

    async def claim_due(self, now: datetime, lease: timedelta, limit: int, *,
                        lease_now: datetime | None = None) -> list[EmailJob]:
        """Claim up to ``limit`` due jobs for ``lease``. Due-ness is business time (``now``);
        a lease is measured in real time (``lease_now``, default ``now``), so moving the
        business clock never ends a send in flight."""

    async def mark_sent(self, job: EmailJob, at: datetime) -> bool: ...

    async def retry_later(self, job: EmailJob, at: datetime, error: str) -> bool: ...

    async def give_up(self, job: EmailJob, error: str) -> bool: ...

    async def for_order(self, order_id: str) -> list[EmailJob]: ...

    async def release_waiting(self, party_id: str, address: str, now: datetime) -> int:
        """The party's mails that waited for a verified contact are due now, to ``address``;
        returns how many."""


def _due(now: datetime, lease_now: datetime) -> dict[str, Any]:
    return {"$or": [{"status": EmailStatus.PENDING, "next_attempt_at": {"$lte": now}},
                    {"status": EmailStatus.SENDING, "lease_expires_at": {"$lte": lease_now}}]}


def _claim(now: datetime, lease: timedelta) -> dict[str, Any]:
    return {"status": EmailStatus.SENDING, "lease_token": uuid.uuid4().hex,
            "lease_expires_at": now + lease}


def _released(**fields: Any) -> dict[str, Any]:
    return {**fields, "lease_token": None, "lease_expires_at": None}


def _waited(address: str, now: datetime) -> dict[str, Any]:
    return {"status": EmailStatus.PENDING, "to": address, "next_attempt_at": now}


def _to_doc(job: EmailJob) -> dict[str, Any]:
    doc = job.model_dump()
    doc["_id"] = doc.pop("id")
    return doc


def _from_doc(doc: dict[str, Any]) -> EmailJob:
    return EmailJob.model_validate({**{k: v for k, v in doc.items() if k != "_id"}, "id": doc["_id"]})


class EmailRepository:
    """``EmailJobs`` in a MongoDB collection, one document per job."""

    def __init__(self, collection: AsyncCollection) -> None:
        self._collection = collection

    async def create_indexes(self) -> None:
        await self._collection.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self._collection.create_index([("order_id", ASCENDING), ("created_at", ASCENDING)])
        await self._collection.create_index([("lease_token", ASCENDING)])
        await self._collection.create_index([("recipient_party_id", ASCENDING), ("status", ASCENDING)])

    async def add(self, job: EmailJob) -> bool:
        try:
            await self._collection.insert_one(_to_doc(job))
        except DuplicateKeyError:
            return False
        return True

    async def claim_due(self, now: datetime, lease: timedelta, limit: int, *,
                        lease_now: datetime | None = None) -> list[EmailJob]:
        lease_now = lease_now or now
        # The oldest due ids, then one update claims them all under one new lease token: the
        # update re-checks that each is still due, so a job another sender took meanwhile is
        # left alone, and the token finds exactly the jobs this claim won.
        cursor = self._collection.find(_due(now, lease_now), projection={"_id": 1}).sort(
            "next_attempt_at", ASCENDING).limit(limit)
        ids = [candidate["_id"] for candidate in await cursor.to_list()]
        if not ids:
            return []
        claim = _claim(lease_now, lease)
        await self._collection.update_many({"_id": {"$in": ids}, **_due(now, lease_now)},
                                           {"$set": claim, "$inc": {"attempts": 1}})
        won = self._collection.find({"lease_token": claim["lease_token"]}).sort(
            "next_attempt_at", ASCENDING)
        return [_from_doc(doc) async for doc in won]

    async def mark_sent(self, job: EmailJob, at: datetime) -> bool:
        return await self._finish(job, {"status": EmailStatus.SENT, "sent_at": at,
                                        "last_error": None})

    async def retry_later(self, job: EmailJob, at: datetime, error: str) -> bool:
        return await self._finish(job, {"status": EmailStatus.PENDING, "next_attempt_at": at,
                                        "last_error": error})

    async def give_up(self, job: EmailJob, error: str) -> bool:
        return await self._finish(job, {"status": EmailStatus.FAILED, "last_error": error})

    async def _finish(self, job: EmailJob, fields: dict[str, Any]) -> bool:
        """Store an outcome, only while ``job``'s lease is the current one."""
        result = await self._collection.update_one(
            {"_id": job.id, "status": EmailStatus.SENDING, "lease_token": job.lease_token},
            {"$set": _released(**fields)})
        return result.modified_count == 1

    async def for_order(self, order_id: str) -> list[EmailJob]:
        cursor = self._collection.find({"order_id": order_id}).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)])
        return [_from_doc(doc) async for doc in cursor]

    async def release_waiting(self, party_id: str, address: str, now: datetime) -> int:
        result = await self._collection.update_many(
            {"recipient_party_id": party_id, "status": EmailStatus.WAITING_FOR_CONTACT},
            {"$set": _waited(address, now)})
        return result.modified_count
