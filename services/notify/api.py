"""HTTP routes of the notify service: what was mailed to whom about an order, and each
party's own contact email (registered and verified by the party itself)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, EmailStr, Field

from shared.infra.auth import CurrentActor

from services.notify.contact_book import ContactBook
from services.notify.contacts import Contact
from services.notify.emails import EmailJob, EmailStatus
from services.notify.handlers import Notifications
from services.notify.rendering import Recipient


class EmailView(BaseModel):
    id: str
    order_id: str | None
    event_id: str
    event_type: str
    step: str
    recipient_role: Recipient
    to: str
    subject: str
    text: str
    status: EmailStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, job: EmailJob) -> EmailView:
        return cls.model_validate(job.model_dump(include=set(cls.model_fields)))


class RegisterContact(BaseModel):
    email: EmailStr = Field(max_length=254)


class VerifyContact(BaseModel):
    code: str = Field(pattern=r"^[0-9]{6}$", description="the code mailed to the address")


class ContactView(BaseModel):
    party_id: str
    email: str | None = Field(description="the verified address: trade emails go here")
    verified_at: datetime | None
    pending_email: str | None = Field(description="registered, waiting for its code")
    code_expires_at: datetime | None

    @classmethod
    def of(cls, contact: Contact) -> ContactView:
        return cls.model_validate(contact.model_dump(include=set(cls.model_fields)))


def router(notifications: Notifications, contacts: ContactBook) -> APIRouter:
    api = APIRouter()

    @api.get("/orders/{order_id}/emails", response_model=list[EmailView], tags=["emails"],
             summary="The emails of an order: step, recipient and delivery status",
             description="Customer service sees every email of the order; the buyer or the "
                         "supplier sees the emails sent to them. A mail for a party without "
                         "a verified contact email has the status `waiting_for_contact`.")
    async def emails(order_id: str, actor: CurrentActor) -> list[EmailView]:
        return [EmailView.of(job) for job in await notifications.emails_of(order_id, actor)]

    @api.get("/contacts/me", response_model=ContactView, tags=["contacts"],
             summary="The caller's own contact email and its verification")
    async def my_contact(actor: CurrentActor) -> ContactView:
        return ContactView.of(await contacts.of(actor))

    @api.put("/contacts/me", status_code=202, response_model=ContactView, tags=["contacts"],
             summary="Register the caller's own contact email; a code is mailed to verify it",
             description="Only a verified address receives trade emails; until the new address "
                         "is verified, a previously verified one stays in use. Verification "
                         "emails are limited per party (429 with Retry-After past it).")
    async def register(body: RegisterContact, actor: CurrentActor) -> ContactView:
        return ContactView.of(await contacts.register(actor, str(body.email)))

    @api.post("/contacts/me/verification", response_model=ContactView, tags=["contacts"],
              summary="Verify the registered address with the mailed code",
              description="Emails that waited for the party's verified contact are sent now.")
    async def verify(body: VerifyContact, actor: CurrentActor) -> ContactView:
        return ContactView.of(await contacts.verify(actor, body.code))

    return api
