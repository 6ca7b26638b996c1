"""An email job: one mail for one step and one recipient, rendered when the event arrives
and then delivered (and retried) by the sender.

Its id is ``"<event id>:<recipient role>"``: storing it is the act of deciding to send,
and a second delivery of the same event collides with the first job instead of mailing
twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel

from shared.contracts.envelope import Envelope, TradeEvent
from services.notify.rendering import MailContext, Recipient, render
from services.notify.steps import step_of


class EmailStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class EmailJob(BaseModel):
    id: str
    order_id: str
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
    buyer_party_id: str
    supplier_party_id: str
    # Set while a sender holds the job; an expired lease may be taken over.
    lease_token: str | None = None
    lease_expires_at: AwareDatetime | None = None


def job_id(event_id: str, recipient: Recipient) -> str:
    return f"{event_id}:{recipient}"


def compose(envelope: Envelope, event: TradeEvent, *, now: datetime, customer_service_email: str,
            dispute_opens_after: timedelta = timedelta(days=5)) -> list[EmailJob]:
    """The mails this event causes, one per recipient of its step."""
    step = step_of(event)
    parties = event.parties
    addresses = {Recipient.BUYER: (parties.buyer.name, parties.buyer.email),
                 Recipient.SUPPLIER: (parties.supplier.name, parties.supplier.email),
                 Recipient.CUSTOMER_SERVICE: ("Customer service", customer_service_email)}
    jobs = []
    for recipient in step.recipients_of(event):
        context = MailContext(event=event, recipient=recipient,
                              dispute_opens_after=dispute_opens_after)
        name, address = addresses[recipient]
        mail = render(step.template(context), order_id=event.order_id, greeting_name=name)
        jobs.append(EmailJob(
            id=job_id(envelope.event_id, recipient), order_id=event.order_id,
            event_id=envelope.event_id, event_type=envelope.event_type, step=step.name,
            recipient_role=recipient, to=address, subject=mail.subject, text=mail.text,
            html=mail.html, next_attempt_at=now, created_at=now,
            buyer_party_id=parties.buyer.party_id, supplier_party_id=parties.supplier.party_id))
    return jobs
