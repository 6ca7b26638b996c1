"""In-memory stand-ins for the services' stores, for the fast unit tests only (the real
stores are proven on the real servers). Each keeps the contract of the Protocol it stands for."""

from __future__ import annotations

from services.dispute.attachments import Attachment


class InMemoryAttachmentStore:
    """``services.dispute.attachments.Attachments`` in a dict."""

    def __init__(self) -> None:
        self.files: dict[str, Attachment] = {}

    async def create_indexes(self) -> None:
        return None

    async def save(self, attachment: Attachment) -> None:
        self.files.setdefault(attachment.attachment_id, attachment)

    async def load(self, attachment_id: str) -> Attachment | None:
        return self.files.get(attachment_id)
