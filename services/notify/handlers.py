"""The notify service layer: every trade event becomes the email jobs of its step, and the
emails of an order can be read back by its parties and by customer service."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from shared.contracts.envelope import Envelope, TradeEvent, registered_events
from shared.contracts.parties import Role
from shared.domain.actor import Actor
from shared.domain.errors import NotFound, NotPermitted
from shared.infra import telemetry
from shared.infra.clock import Clock
from shared.infra.messaging import EventHandler

from services.notify.emails import EmailJob, EmailStatus, compose
from services.notify.rendering import Recipient
from services.notify.repository import EmailJobs
from services.notify.steps import STEPS

log = logging.getLogger(__name__)


class ContactDirectory(Protocol):
    async def addresses(self, party_ids: Iterable[str]) -> dict[str, str]:
        """The verified contact email of each of these parties that has one."""

    async def release(self, party_id: str, address: str) -> int:
        """Send the mails that waited for this party's verified contact."""


class Notifications:
    def __init__(self, jobs: EmailJobs, contacts: ContactDirectory, clock: Clock, *,
                 customer_service_email: str,
                 on_waiting: Callable[[int], None] = lambda count: None) -> None:
        self.jobs = jobs
        self.contacts = contacts
        self.clock = clock
        self.on_waiting = on_waiting
        self.customer_service_email = customer_service_email

    def handlers(self) -> dict[type[TradeEvent], EventHandler]:
        """One handler for every registered event: each is a step someone is told about."""
        missing = [e.__name__ for e in registered_events() if e not in STEPS]
        if missing:
            raise LookupError(f"no notification step for {', '.join(missing)}")
        return {event: self.on_event for event in registered_events()}

    async def on_event(self, envelope: Envelope, event: TradeEvent) -> int:
        """Store the step's mails; a repeated delivery stores nothing new. Returns how many
        jobs were new."""
        parties = (event.parties.buyer.party_id, event.parties.supplier.party_id)
        stored, waiting = 0, []
        for job in compose(envelope, event, now=self.clock.now(),
                           customer_service_email=self.customer_service_email,
                           addresses=await self.contacts.addresses(parties),
                           traceparent=telemetry.current_traceparent()):
            if not await self.jobs.add(job):
                log.info("email %s exists already (event delivered again)", job.id)
                continue
            stored += 1
            if job.status is EmailStatus.WAITING_FOR_CONTACT:
                log.info("email %s waits: party %s has no verified contact email", job.id,
                         job.recipient_party_id)
                waiting.append(job.recipient_party_id)
        if waiting:
            self.on_waiting(len(waiting))
            # A contact verified since the addresses were read released only what it saw.
            for party_id, address in (await self.contacts.addresses(set(waiting))).items():
                await self.contacts.release(party_id, address)
        return stored

    async def emails_of(self, order_id: str, actor: Actor) -> list[EmailJob]:
        """Customer service sees every mail of the order; a party sees the mails sent to it."""
        jobs = await self.jobs.for_order(order_id)
        if actor.role is Role.AGENT:
            return jobs
        if not jobs:
            raise NotFound(f"no emails for order {order_id}")
        parties = ((Role.BUYER, Recipient.BUYER, jobs[0].buyer_party_id),
                   (Role.SUPPLIER, Recipient.SUPPLIER, jobs[0].supplier_party_id))
        for role, recipient, party_id in parties:
            if party_id and actor.acts_as(role, party_id):  # itself, or a service for it
                return [job for job in jobs if job.recipient_role is recipient]
        raise NotPermitted("only the order's buyer, its supplier or customer service may "
                           "see its emails")
