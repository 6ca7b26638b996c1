"""An email job: one mail for one step and one recipient, rendered when the event arrives
and then delivered (and retried) by the sender.

Its id is ``"<event id>:<recipient role>"``: storing it is the act of deciding to send,
and a second delivery of the same event collides with the first job instead of mailing
twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel

from shared.contracts.envelope import Envelope, TradeEvent

from services.notify.rendering import MailContext, Recipient, render
from services.notify.steps import step_of


class EmailStatus(StrEnum):
    # The recipient party has no verified contact email yet: sent once it has one.
    WAITING_FOR_CONTACT = "waiting_for_contact"
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class EmailJob(BaseModel):
    id: str
    order_id: str | None  # None for a mail about no order (a contact's verification)
    event_id: str
    event_type: str
    step: str
    recipient_role: Recipient
    to: str
    subject: str
    text: str
    html: str
    status: EmailStatus = EmailStatus.PENDING
    attempts: int = 0
    next_attempt_at: AwareDatetime
    last_error: str | None = None
    created_at: AwareDatetime
    sent_at: AwareDatetime | None = None
    # Who may read the job back (the order's parties, as the event named them).
    buyer_party_id: str | None = None
    supplier_party_id: str | None = None
    # The party the mail is for (None for customer service): whose verified contact it uses.
    recipient_party_id: str | None = None
    # Set while a sender holds the job; an expired lease may be taken over.
    lease_token: str | None = None
    lease_expires_at: AwareDatetime | None = None
    # The trace context of the handling that decided the mail: its send joins that trace.
    traceparent: str | None = None


def job_id(event_id: str, recipient: Recipient) -> str:
    return f"{event_id}:{recipient}"


def compose(envelope: Envelope, event: TradeEvent, *, now: datetime, customer_service_email: str,
            addresses: Mapping[str, str], traceparent: str | None = None) -> list[EmailJob]:
    """The mails this event causes, one per recipient of its step. ``addresses`` are the
    parties' verified contact emails by party id; a mail for a party without one waits."""
    step = step_of(event)
    parties = event.parties
    recipients = {Recipient.BUYER: (parties.buyer.name, parties.buyer.party_id),
                  Recipient.SUPPLIER: (parties.supplier.name, parties.supplier.party_id),
                  Recipient.CUSTOMER_SERVICE: ("Customer service", None)}
    jobs = []
    for recipient in step.recipients_of(event):
        context = MailContext(event=event, recipient=recipient)
        name, party_id = recipients[recipient]
        address = customer_service_email if party_id is None else addresses.get(party_id, "")
        mail = render(step.template(context), order_id=event.order_id, greeting_name=name)
        jobs.append(EmailJob(
            id=job_id(envelope.event_id, recipient), order_id=event.order_id,
            event_id=envelope.event_id, event_type=envelope.event_type, step=step.name,
            recipient_role=recipient, to=address, subject=mail.subject, text=mail.text,
            html=mail.html, next_attempt_at=now, created_at=now,
            status=EmailStatus.PENDING if address else EmailStatus.WAITING_FOR_CONTACT,
            buyer_party_id=parties.buyer.party_id, supplier_party_id=parties.supplier.party_id,
            recipient_party_id=party_id, traceparent=traceparent))
    return jobs
