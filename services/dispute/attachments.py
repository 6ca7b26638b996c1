"""Evidence files a buyer attaches to a dispute, kept in their own collection
("dispute_attachments") and referenced by id from the dispute's evidence.

An attachment's id is derived from the order and the file (content hash, name and type),
so uploading the same file again, e.g. when a request is retried, stores it once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from shared.contracts.trade import Evidence
from shared.domain.errors import InvalidRequest

MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
# What the file must start with to be what it claims; text must be UTF-8 without NULs.
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "application/pdf": (b"%PDF-",),
    "text/plain": (),
}
ALLOWED_CONTENT_TYPES = tuple(SIGNATURES)


class Attachment(BaseModel):
    attachment_id: str
    order_id: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    data: bytes
    uploaded_by: str
    uploaded_at: datetime
    note: str | None = None

    def evidence(self) -> Evidence:
        return Evidence(kind="attachment", attachment_id=self.attachment_id, filename=self.filename,
                        content_type=self.content_type, size_bytes=self.size_bytes, note=self.note)


@dataclass(frozen=True)
class Upload:
    """A file as the buyer sent it."""

    filename: str
    content_type: str
    data_base64: str
    note: str | None = None


def decode_attachment(order_id: str, upload: Upload, *, uploaded_by: str, uploaded_at: datetime,
                      field: str) -> Attachment:
    """Check an uploaded file against the limits and turn it into an ``Attachment``;
    ``field`` names the request field in errors."""
    content_type, data_base64 = upload.content_type, upload.data_base64
    filename = upload.filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not filename or any(ord(c) < 32 for c in filename):
        raise InvalidRequest("give the file's plain name", field=f"{field}.filename")
    if content_type not in SIGNATURES:
        raise InvalidRequest(f"{content_type!r} is not accepted; attach one of "
                             + ", ".join(ALLOWED_CONTENT_TYPES), field=f"{field}.content_type")
    if len(data_base64) > 4 * -(-MAX_ATTACHMENT_BYTES // 3):
        raise InvalidRequest(_too_big(filename), field=f"{field}.data_base64")
    try:
        data = base64.b64decode(data_base64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("data_base64 is not valid base64",
                             field=f"{field}.data_base64") from None
    if not data:
        raise InvalidRequest(f"{filename} is empty", field=f"{field}.data_base64")
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise InvalidRequest(_too_big(filename), field=f"{field}.data_base64")
    if not _looks_like(content_type, data):
        raise InvalidRequest(f"{filename} is not a {content_type} file",
                             field=f"{field}.data_base64")
    digest = hashlib.sha256(data).hexdigest()
    key = "\x00".join((order_id, digest, filename, content_type)).encode()
    return Attachment(attachment_id=f"att_{hashlib.sha256(key).hexdigest()[:24]}",
                      order_id=order_id, filename=filename, content_type=content_type,
                      size_bytes=len(data), sha256=digest, data=data, uploaded_by=uploaded_by,
                      uploaded_at=uploaded_at, note=upload.note)


def _too_big(filename: str) -> str:
    return f"{filename} is larger than {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MiB"


def _looks_like(content_type: str, data: bytes) -> bool:
    if content_type == "text/plain":
        try:
            return "\x00" not in data.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return data.startswith(SIGNATURES[content_type])


class Attachments(Protocol):
    """Where the service keeps evidence files."""

    async def create_indexes(self) -> None: ...

    async def save(self, attachment: Attachment) -> None:
        """Store it once: saving the same attachment again changes nothing."""

    async def load(self, attachment_id: str) -> Attachment | None: ...


class AttachmentStore:
    """MongoDB collection of attachments, one document each (a file is at most 5 MiB)."""

    def __init__(self, collection: AsyncCollection) -> None:
        self._collection = collection

    async def create_indexes(self) -> None:
        await self._collection.create_index([("order_id", ASCENDING)])

    async def save(self, attachment: Attachment) -> None:
        doc = attachment.model_dump()
        doc["_id"] = doc.pop("attachment_id")
        await self._collection.update_one({"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True)

    async def load(self, attachment_id: str) -> Attachment | None:
        doc: dict[str, Any] | None = await self._collection.find_one({"_id": attachment_id})
        if doc is None:
            return None
        return Attachment(attachment_id=doc.pop("_id"), **doc)

