"""The contacts service layer: a party registers and verifies its own email (the
``contacts`` collection, one document per party), and trade mail finds the verified
addresses here. Verifying an address releases the party's mails that waited for it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.contracts.parties import Role
from shared.domain.actor import Actor
from shared.domain.errors import DomainError, InvalidRequest
from shared.infra.clock import Clock

from services.notify.contacts import Contact, VerificationLimits
from services.notify.emails import EmailJob
from services.notify.rendering import Content, Recipient, render_mail
from services.notify.repository import EmailJobs

log = logging.getLogger(__name__)

COLLECTION = "contacts"
ATTEMPTS = 3  # loads and saves of one contact before a concurrent change is reported


class Conflict(Exception):
    """The contact changed since it was loaded."""


class ContactStore:
    def __init__(self, collection: AsyncCollection) -> None:
        self._collection = collection

    async def get(self, party_id: str) -> Contact | None:
        doc = await self._collection.find_one({"_id": party_id})
        return None if doc is None else Contact.model_validate({**doc, "party_id": doc["_id"]})

    async def save(self, contact: Contact) -> None:
        """Store the change, on top of the version loaded; raises ``Conflict`` otherwise."""
        loaded = contact.version
        doc: dict[str, Any] = {**contact.model_dump(exclude={"party_id"}), "version": loaded + 1}
        if loaded == 0:
            try:
                await self._collection.insert_one({"_id": contact.party_id, **doc})
            except DuplicateKeyError as exc:
                raise Conflict(contact.party_id) from exc
        else:
            result = await self._collection.replace_one(
                {"_id": contact.party_id, "version": loaded}, doc)
            if result.matched_count != 1:
                raise Conflict(contact.party_id)
        contact.version = loaded + 1

    async def verified(self, party_ids: Iterable[str]) -> dict[str, str]:
        cursor = self._collection.find({"_id": {"$in": list(party_ids)}, "email": {"$ne": None}},
                                       projection={"email": 1})
        return {doc["_id"]: doc["email"] async for doc in cursor}


class ContactBook:
    def __init__(self, store: ContactStore, jobs: EmailJobs, clock: Clock,
                 limits: VerificationLimits = VerificationLimits(), *,
                 on_released: Callable[[int], None] = lambda count: None) -> None:
        self.store = store
        self.jobs = jobs
        self.clock = clock
        self.limits = limits
        self.on_released = on_released

    async def addresses(self, party_ids: Iterable[str]) -> dict[str, str]:
        """The verified contact email of each of these parties that has one."""
        return await self.store.verified(party_ids)

    async def of(self, actor: Actor) -> Contact:
        actor.require(Role.BUYER, Role.SUPPLIER)
        return await self.store.get(actor.party_id) or Contact(party_id=actor.party_id)

    async def register(self, actor: Actor, email: str) -> Contact:
        """The party asks to be mailed at ``email``: a code goes there to verify it."""
        actor.require(Role.BUYER, Role.SUPPLIER)
        codes: list[str] = []

        def register(contact: Contact, now: datetime) -> None:
            if code := contact.register(email, now, self.limits):
                codes.append(code)

        contact = await self._change(actor.party_id, register)
        if codes:
            await self.jobs.add(verification_mail(contact, codes[-1], self.clock.now()))
        return contact

    async def verify(self, actor: Actor, code: str) -> Contact:
        actor.require(Role.BUYER, Role.SUPPLIER)
        wrong: list[InvalidRequest] = []

        def verify(contact: Contact, now: datetime) -> None:
            try:
                contact.verify(code, now, self.limits)
            except InvalidRequest as exc:  # the wrong try is counted (stored), then answered
                wrong.append(exc)

        contact = await self._change(actor.party_id, verify)
        if wrong:
            raise wrong[-1]
        assert contact.email is not None
        await self.release(actor.party_id, contact.email)
        return contact

    async def release(self, party_id: str, address: str) -> int:
        """Send the mails that waited for this party's verified contact."""
        released = await self.jobs.release_waiting(party_id, address, self.clock.now())
        if released:
            log.info("%d waiting mail(s) of party %s released to its verified contact",
                     released, party_id)
            self.on_released(released)
        return released

    async def _change(self, party_id: str, change: Callable[[Contact, datetime], None]) -> Contact:
        for _ in range(ATTEMPTS):
            contact = await self.store.get(party_id) or Contact(party_id=party_id)
            change(contact, self.clock.now())
            try:
                await self.store.save(contact)
                return contact
            except Conflict:
                continue
        raise DomainError(f"the contact of party {party_id} is being changed concurrently; "
                          "try again")


def verification_mail(contact: Contact, code: str, now: datetime) -> EmailJob:
    assert contact.pending_email is not None and contact.code_expires_at is not None
    content = Content(
        "confirm your email address",
        [f"Someone, hopefully you, asked the platform to send the trade emails of party "
         f"{contact.party_id} to this address. Enter this code on the platform to confirm:"],
        [("Code", code), ("Valid until", f"{contact.code_expires_at:%a %d %b %Y, %H:%M} UTC")],
        next_step="Enter the code to start receiving the emails of your trades here. If you did "
                  "not ask for this, ignore this email: nothing is sent here unless the code is "
                  "entered.")
    mail = render_mail(content, subject=content.subject, greeting_name=contact.party_id,
                       footer="You receive this email because this address was registered as "
                              "a contact on the Escrow platform.")
    mail_id = f"contact:{contact.party_id}:{uuid.uuid4().hex}"
    return EmailJob(id=mail_id, order_id=None, event_id=mail_id, event_type="contact.registered",
                    step="contact_verification", recipient_role=Recipient.PARTY,
                    to=contact.pending_email, subject=mail.subject, text=mail.text,
                    html=mail.html, next_attempt_at=now, created_at=now,
                    recipient_party_id=contact.party_id)
