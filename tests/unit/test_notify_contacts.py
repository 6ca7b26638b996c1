"""Each party's own contact email: registered by the party, verified by a mailed code, the
only address that gets trade mail; mail for a party without one waits and is sent once it
is verified; verification mails are rate-limited per party (429). And the HTTP read side of
an order's emails."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from shared.contracts import events as ev
from shared.contracts.parties import Role
from shared.domain.actor import Actor
from shared.domain.errors import InvalidRequest, TooManyRequests
from shared.infra.auth import mint_token
from shared.infra.clock import ManualClock
from shared.infra.http import create_app

from services.notify.api import router
from services.notify.contact_book import ContactBook, ContactStore
from services.notify.contacts import Contact, VerificationLimits
from services.notify.emails import EmailStatus
from services.notify.handlers import Notifications
from services.notify.repository import EmailRepository
from services.notify.settings import NotifySettings
from tests.support.memory_mongo import MemoryCollection, MemoryMongo, memory_collection
from tests.unit.test_notify_steps import CS_EMAIL, T0, envelope_of, sample

BUYER = Actor(party_id="buyer-acme", role=Role.BUYER)
SUPPLIER = Actor(party_id="supplier-bolts", role=Role.SUPPLIER)
LIMITS = VerificationLimits()


@dataclass
class Notify:
    clock: ManualClock
    jobs: EmailRepository
    emails: MemoryCollection  # where the jobs are
    contacts: ContactBook
    notifications: Notifications

    def code_mailed_to(self, address: str) -> str:
        [mail] = [d for d in self.emails.documents().values()
                  if d["step"] == "contact_verification" and d["to"] == address][-1:]
        return re.search(r"Code: +(\d{6})", mail["text"]).group(1)  # type: ignore[union-attr]

    async def verified(self, actor: Actor, address: str) -> Contact:
        await self.contacts.register(actor, address)
        return await self.contacts.verify(actor, self.code_mailed_to(address))


@pytest.fixture
def notify() -> Notify:
    clock, emails = ManualClock(T0), memory_collection("emails")
    jobs = EmailRepository(emails)
    contacts = ContactBook(ContactStore(MemoryMongo()["notify"]["contacts"]), jobs, clock)
    return Notify(clock, jobs, emails, contacts,
                  Notifications(jobs, contacts, clock, customer_service_email=CS_EMAIL))


# --- the rule ------------------------------------------------------------------------------


def test_a_code_verifies_the_registered_address_and_only_then_is_it_used() -> None:
    contact = Contact(party_id="p-1")
    code = contact.register("new@p1.example", T0, LIMITS)
    assert code is not None and contact.email is None and contact.pending_email == "new@p1.example"
    with pytest.raises(InvalidRequest):
        contact.verify("000000" if code != "000000" else "111111", T0, LIMITS)
    contact.verify(code, T0, LIMITS)
    assert (contact.email, contact.pending_email, contact.verified_at) == ("new@p1.example", None, T0)


def test_a_new_address_replaces_the_verified_one_only_once_verified() -> None:
    contact = Contact(party_id="p-1")
    contact.verify(contact.register("old@p1.example", T0, LIMITS) or "", T0, LIMITS)
    code = contact.register("new@p1.example", T0, LIMITS)
    assert contact.email == "old@p1.example"
    contact.verify(code or "", T0, LIMITS)
    assert contact.email == "new@p1.example"


def test_an_expired_code_or_too_many_wrong_codes_verify_nothing() -> None:
    contact = Contact(party_id="p-1")
    code = contact.register("a@p1.example", T0, LIMITS) or ""
    with pytest.raises(Exception, match="expired"):
        contact.verify(code, T0 + LIMITS.code_valid_for, LIMITS)
    code = contact.register("a@p1.example", T0, LIMITS) or ""
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(LIMITS.wrong_codes_allowed):
        with pytest.raises(InvalidRequest):
            contact.verify(wrong, T0, LIMITS)
    with pytest.raises(TooManyRequests):
        contact.verify(code, T0, LIMITS)  # even the right code: guessing is over
    assert contact.email is None


def test_verification_mails_are_limited_per_party_and_window() -> None:
    contact = Contact(party_id="p-1")
    for i in range(LIMITS.mails_per_window):
        contact.register(f"a{i}@p1.example", T0 + timedelta(minutes=i), LIMITS)
    with pytest.raises(TooManyRequests) as refused:
        contact.register("more@p1.example", T0 + timedelta(hours=1), LIMITS)
    assert refused.value.retry_after == LIMITS.window - timedelta(hours=1)
    assert contact.register("more@p1.example", T0 + LIMITS.window, LIMITS) is not None


# --- the service ---------------------------------------------------------------------------


async def test_trade_mail_goes_only_to_verified_contacts_and_waits_for_the_others(
        notify: Notify) -> None:
    await notify.verified(BUYER, "buyer@acme.example")
    event = sample(ev.OrderPlaced)
    await notify.notifications.on_event(envelope_of(event), event)

    jobs = {j.recipient_role: j for j in await notify.jobs.for_order("ord-1")}
    assert (jobs["buyer"].to, jobs["buyer"].status) == ("buyer@acme.example", EmailStatus.PENDING)
    assert (jobs["supplier"].to, jobs["supplier"].status) == ("", EmailStatus.WAITING_FOR_CONTACT)
    claimed = await notify.jobs.claim_due(T0, timedelta(minutes=1), 10)
    assert jobs["buyer"].id in {j.id for j in claimed}
    assert jobs["supplier"].id not in {j.id for j in claimed}

    await notify.contacts.register(SUPPLIER, "sales@bolts.example")
    assert (await notify.jobs.for_order("ord-1"))[1].status is EmailStatus.WAITING_FOR_CONTACT
    await notify.contacts.verify(SUPPLIER, notify.code_mailed_to("sales@bolts.example"))
    supplier = [j for j in await notify.jobs.for_order("ord-1") if j.recipient_role == "supplier"]
    assert [(j.to, j.status) for j in supplier] == [("sales@bolts.example", EmailStatus.PENDING)]


async def test_the_typed_email_of_a_party_is_never_used(notify: Notify) -> None:
    """An event from a stale producer may still carry an email: it is ignored."""
    payload = sample(ev.OrderPlaced).model_dump(mode="json")
    payload["parties"]["supplier"]["email"] = "victim@elsewhere.example"
    event = ev.OrderPlaced.model_validate(payload)
    await notify.notifications.on_event(envelope_of(event), event)
    assert all(j.to == "" for j in await notify.jobs.for_order("ord-1"))


# --- over HTTP -----------------------------------------------------------------------------


@pytest.fixture
async def client(notify: Notify) -> AsyncIterator[httpx.AsyncClient]:
    settings = NotifySettings()

    async def ready() -> dict[str, str]:
        return {}

    app = create_app(title="notify", description="", settings=settings, ready=ready)
    app.include_router(router(notify.notifications, notify.contacts))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://notify") as http:
        yield http


def auth(party: str, role: Role) -> dict[str, str]:
    secret = NotifySettings().auth_secret.get_secret_value()
    return {"Authorization": f"Bearer {mint_token(secret, party, role)}"}


async def test_a_party_registers_and_verifies_its_own_contact_over_http(
        notify: Notify, client: httpx.AsyncClient) -> None:
    me = auth("supplier-bolts", Role.SUPPLIER)
    registered = await client.put("/contacts/me", json={"email": "sales@bolts.example"}, headers=me)
    assert registered.status_code == 202
    assert registered.json()["pending_email"] == "sales@bolts.example"
    assert registered.json()["email"] is None
    wrong = await client.post("/contacts/me/verification", json={"code": "12345"}, headers=me)
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "code"

    code = notify.code_mailed_to("sales@bolts.example")
    verified = await client.post("/contacts/me/verification", json={"code": code}, headers=me)
    assert verified.status_code == 200 and verified.json()["email"] == "sales@bolts.example"
    assert (await client.get("/contacts/me", headers=me)).json()["email"] == "sales@bolts.example"
    agent = await client.put("/contacts/me", json={"email": "x@y.example"},
                             headers=auth("agent-7", Role.AGENT))
    assert agent.status_code == 403


async def test_too_many_verification_mails_is_a_429_with_retry_after(
        client: httpx.AsyncClient) -> None:
    me = auth("buyer-acme", Role.BUYER)
    for i in range(LIMITS.mails_per_window):
        ok = await client.put("/contacts/me", json={"email": f"b{i}@acme.example"}, headers=me)
        assert ok.status_code == 202
    refused = await client.put("/contacts/me", json={"email": "spam@victim.example"}, headers=me)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) == int(LIMITS.window.total_seconds())
    assert "at most 5 verification emails" in refused.json()["detail"]


async def test_the_emails_of_an_order_over_http(notify: Notify, client: httpx.AsyncClient) -> None:
    await notify.verified(BUYER, "buyer@acme.example")
    event = sample(ev.OrderPlaced)
    await notify.notifications.on_event(envelope_of(event), event)

    mine = await client.get("/orders/ord-1/emails", headers=auth("buyer-acme", Role.BUYER))
    assert mine.status_code == 200
    [mail] = mine.json()
    assert (mail["step"], mail["to"], mail["status"]) == (
        "order_placed", "buyer@acme.example", "pending")
    assert "html" not in mail and "lease_token" not in mail
    everything = await client.get("/orders/ord-1/emails", headers=auth("agent-7", Role.AGENT))
    assert [m["status"] for m in everything.json()] == ["pending", "waiting_for_contact"]
    other = await client.get("/orders/ord-1/emails", headers=auth("buyer-x", Role.BUYER))
    assert other.status_code == 403
    assert other.headers["content-type"] == "application/problem+json"
    assert (await client.get("/orders/ord-1/emails")).status_code == 401
