"""Bank notifications are signed by the bank adapter, and only signed ones are believed.

The adapter sends three headers with ``POST /bank/transfers``:
- ``X-Bank-Key-Id``: which of the configured keys signed (keys rotate: configure the new
  one beside the old, switch the adapter, then drop the old one);
- ``X-Bank-Timestamp``: Unix seconds when it signed; more than five minutes off the
  service's clock is refused, so a captured request cannot be sent again later;
- ``X-Bank-Signature``: ``sha256=`` + hex HMAC-SHA256 with that key over
  ``<timestamp>.<raw body>``.

Each signature is accepted once (stored with a unique key), so a replay within the five
minutes is refused too. A retry by the adapter signs again with a new timestamp; the
bank's transfer id makes that retry book nothing twice.

Keys come from ``BANK_WEBHOOK_KEYS`` as ``kid:secret,kid2:secret2`` (secrets of at least
32 characters).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.domain.errors import DomainError
from shared.infra.clock import Clock

KEY_ID_HEADER = "X-Bank-Key-Id"
TIMESTAMP_HEADER = "X-Bank-Timestamp"
SIGNATURE_HEADER = "X-Bank-Signature"
MIN_SECRET_LENGTH = 32


class UnsignedNotification(DomainError):
    """The notification is not signed by the bank, or its signature is stale or replayed (HTTP 401)."""


def parse_keys(spec: str) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key_id, sep, secret = item.partition(":")
        if not sep or not key_id or len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"BANK_WEBHOOK_KEYS: each key is 'kid:secret' with a secret of at "
                             f"least {MIN_SECRET_LENGTH} characters (key {key_id!r} is not)")
        keys[key_id] = secret.encode()
    if not keys:
        raise ValueError("BANK_WEBHOOK_KEYS names no key")
    return keys


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_headers(key_id: str, secret: bytes, body: bytes, now: datetime) -> dict[str, str]:
    """What the bank adapter sends with ``body``."""
    timestamp = str(int(now.timestamp()))
    return {KEY_ID_HEADER: key_id, TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(secret, timestamp, body)}


class SeenSignatures:
    """The ``bank_notifications`` collection: each accepted signature once, kept for as long
    as its timestamp would be accepted."""

    def __init__(self, collection: AsyncCollection) -> None:
        self._collection = collection

    async def create_indexes(self) -> None:
        await self._collection.create_index("at")

    async def seen(self, sig: str) -> bool:
        return await self._collection.find_one({"_id": sig}, projection={"_id": 1}) is not None

    async def remember(self, sig: str, now: datetime, keep: timedelta) -> None:
        try:
            await self._collection.insert_one({"_id": sig, "at": now})
        except DuplicateKeyError:
            pass  # the same notification taken twice at once: booking it was idempotent
        await self._collection.delete_many({"at": {"$lt": now - keep}})


class BankSignatureCheck:
    def __init__(self, keys: Mapping[str, bytes], seen: SeenSignatures, clock: Clock,
                 tolerance: timedelta = timedelta(minutes=5)) -> None:
        self.keys = keys
        self.seen = seen
        self.clock = clock
        self.tolerance = tolerance

    async def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        """Raise ``UnsignedNotification`` unless ``body`` is signed by a configured key,
        fresh, and not taken before; returns its signature, to ``remember`` once the
        notification was taken. (Remembered before, a notification whose booking failed
        for a passing reason, say a database restart, would be refused as a replay when the
        bank sends it again, and money that arrived would never be booked.)"""
        key_id, timestamp, given = (headers.get(h) for h in (KEY_ID_HEADER, TIMESTAMP_HEADER,
                                                             SIGNATURE_HEADER))
        if not (key_id and timestamp and given):
            raise UnsignedNotification(f"a bank notification carries {KEY_ID_HEADER}, "
                                       f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER}")
        secret = self.keys.get(key_id)
        if secret is None:
            raise UnsignedNotification(f"no bank key {key_id!r} is configured")
        if not hmac.compare_digest(signature(secret, timestamp, body), given):
            raise UnsignedNotification("the signature does not match the body")
        now = self.clock.now()
        try:
            signed_at = datetime.fromtimestamp(int(timestamp), tz=now.tzinfo)
        except (ValueError, OverflowError, OSError):
            raise UnsignedNotification(f"{TIMESTAMP_HEADER} is not Unix seconds") from None
        if abs(now - signed_at) > self.tolerance:
            raise UnsignedNotification(f"the notification was signed at {signed_at.isoformat()}, "
                                       f"more than {self.tolerance} from now")
        if await self.seen.seen(given):
            raise UnsignedNotification("this notification was received already (a replay)")
        return given

    async def remember(self, sig: str) -> None:
        """The notification was taken: the same signature again is a replay."""
        await self.seen.remember(sig, self.clock.now(), keep=2 * self.tolerance)
