"""The notify service layer: every trade event becomes the email jobs of its step, and the
emails of an order can be read back by its parties and by customer service."""

from __future__ import annotations

import logging
from datetime import timedelta

from shared.contracts.envelope import Envelope, TradeEvent, registered_events
from shared.contracts.parties import Role
from shared.domain.actor import Actor
from shared.infra.clock import Clock
from shared.domain.errors import NotFound, NotPermitted
from shared.infra.messaging import EventHandler
from services.notify.emails import EmailJob, compose
from services.notify.repository import EmailJobs
from services.notify.steps import STEPS

log = logging.getLogger(__name__)


class Notifications:
    def __init__(self, jobs: EmailJobs, clock: Clock, *, customer_service_email: str,
                 dispute_opens_after: timedelta = timedelta(days=5)) -> None:
        self.jobs = jobs
        self.clock = clock
        self.customer_service_email = customer_service_email
        self.dispute_opens_after = dispute_opens_after

    def handlers(self) -> dict[type[TradeEvent], EventHandler]:
        """One handler for every registered event: each is a step someone is told about."""
        missing = [e.__name__ for e in registered_events() if e not in STEPS]
        if missing:
            raise LookupError(f"no notification step for {', '.join(missing)}")
        return {event: self.on_event for event in registered_events()}

    async def on_event(self, envelope: Envelope, event: TradeEvent) -> int:
        """Store the step's mails; a repeated delivery stores nothing new. Returns how many
        jobs were new."""
        stored = 0
        for job in compose(envelope, event, now=self.clock.now(),
                           customer_service_email=self.customer_service_email,
                           dispute_opens_after=self.dispute_opens_after):
            if await self.jobs.add(job):
                stored += 1
            else:
                log.info("email %s exists already (event delivered again)", job.id)
        return stored

    async def emails_of(self, order_id: str, actor: Actor) -> list[EmailJob]:
        """Customer service sees every mail of the order; a party sees the mails sent to it."""
        jobs = await self.jobs.for_order(order_id)
        if actor.role is Role.AGENT:
            return jobs
        if not jobs:
            raise NotFound(f"no emails for order {order_id}")
        parties = {Role.BUYER: jobs[0].buyer_party_id, Role.SUPPLIER: jobs[0].supplier_party_id}
        if parties.get(actor.role) != actor.party_id:
            raise NotPermitted("only the order's buyer, its supplier or customer service may "
                               "see its emails")
        return [job for job in jobs if job.recipient_role == actor.role]
