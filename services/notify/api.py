"""HTTP routes of the notify service: what was mailed to whom about an order."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from shared.infra.auth import CurrentActor
from services.notify.emails import EmailJob, EmailStatus
from services.notify.handlers import Notifications
from services.notify.rendering import Recipient


class EmailView(BaseModel):
    id: str
    order_id: str
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


def router(notifications: Notifications) -> APIRouter:
    api = APIRouter(tags=["emails"])

    @api.get("/orders/{order_id}/emails", response_model=list[EmailView],
             summary="The emails of an order: step, recipient and delivery status",
             description="Customer service sees every email of the order; the buyer or the "
                         "supplier sees the emails sent to them.")
    async def emails(order_id: str, actor: CurrentActor) -> list[EmailView]:
        return [EmailView.of(job) for job in await notifications.emails_of(order_id, actor)]

    return api
