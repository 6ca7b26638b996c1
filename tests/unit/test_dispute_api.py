"""The dispute service's HTTP routes: problem details with fields, the attachment download."""

import base64
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from shared.contracts.envelope import Envelope
from shared.contracts.events import EscrowFunded, ShipmentDispatched
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import Carrier, PaymentMethod
from shared.infra.auth import mint_token
from shared.infra.clock import ManualClock
from shared.infra.http import create_app
from shared.infra.runner import AggregateRunner
from shared.infra.subscriptions import subscriptions

from services.dispute.api import router
from services.dispute.attachments import AttachmentStore
from services.dispute.domain import BuyerProtection
from services.dispute.handlers import DisputeService
from services.dispute.settings import DisputeSettings
from tests.support.memory_mongo import MemoryAggregateStore, memory_collection, memory_rate_limiter

PARTIES = Parties(
    buyer=Party(party_id="buyer-1", name="Buyer", email="buyer@example.com"),
    supplier=Party(party_id="supplier-1", name="Supplier", email="supplier@example.com"))
OPENS_AT = datetime(2026, 1, 10, tzinfo=UTC)
PDF = b"%PDF-1.7\n%%EOF\n"


async def _ready():
    return {}


FUNDED = EscrowFunded(order_id="ord-1", parties=PARTIES, amount=100_000, currency="USD",
                      method=PaymentMethod.BANK_TRANSFER)
DISPATCHED = ShipmentDispatched(order_id="ord-1", parties=PARTIES, carrier=Carrier.FEDEX,
                                tracking_number="123456789012", ship_date=date(2026, 1, 5),
                                dispatched_at=datetime(2026, 1, 5, 9, tzinfo=UTC))


@asynccontextmanager
async def dispute_api(*events: EscrowFunded | ShipmentDispatched):
    """The dispute service's routes over a service that has handled ``events``; yields the
    client, the clock, the parties' tokens and a function handling one more event."""
    settings = DisputeSettings()
    clock = ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC))

    async def publish(_message):
        return None

    runner = AggregateRunner(MemoryAggregateStore(BuyerProtection), clock, publish)
    service = DisputeService(runner, AttachmentStore(memory_collection("dispute_attachments")), settings,
                             memory_rate_limiter(clock))
    app = create_app(title="dispute", description="", settings=settings, ready=_ready)
    app.include_router(router(service))

    async def handle(event: EscrowFunded | ShipmentDispatched) -> None:
        env = Envelope.wrap(event, occurred_at=clock.now())
        await subscriptions(service)[type(event)](env, event)
    for event in events:
        await handle(event)
    secret = settings.auth_secret.get_secret_value()
    tokens = {name: {"authorization": f"Bearer {mint_token(secret, party, role)}"}
              for name, party, role in [("buyer", "buyer-1", Role.BUYER),
                                        ("supplier", "supplier-1", Role.SUPPLIER),
                                        ("agent", "agent-7", Role.AGENT)]}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://dispute") as client:
        yield client, clock, tokens, handle


@pytest.fixture
async def api():
    async with dispute_api(FUNDED, DISPATCHED) as (client, clock, tokens, _handle):
        yield client, clock, tokens


DISPUTE = {"reason": "not_as_described", "requested": "partial_refund", "amount": 30_000,
           "description": "two boxes were crushed"}


async def test_too_early_is_a_conflict_with_the_opening_time(api):
    client, _, tokens = api
    r = await client.post("/orders/ord-1/dispute", json=DISPUTE, headers=tokens["buyer"])
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert "2026-01-10 00:00 UTC" in r.json()["detail"]


async def test_amount_above_paid_names_the_field(api):
    client, clock, tokens = api
    clock.advance(OPENS_AT - clock.now())
    r = await client.post("/orders/ord-1/dispute", json={**DISPUTE, "amount": 100_001},
                          headers=tokens["buyer"])
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "amount",
                                   "message": "the amount is more than was paid (USD 1,000.00)"}]


async def test_the_supplier_cannot_open_a_dispute(api):
    client, clock, tokens = api
    clock.advance(OPENS_AT - clock.now())
    r = await client.post("/orders/ord-1/dispute", json=DISPUTE, headers=tokens["supplier"])
    assert r.status_code == 403


async def test_receipt_while_disputing_says_to_withdraw_or_wait(api):
    client, clock, tokens = api
    clock.advance(OPENS_AT - clock.now())
    r = await client.post("/orders/ord-1/dispute", json=DISPUTE, headers=tokens["buyer"])
    assert r.status_code == 201 and r.json()["dispute"]["disputed_amount"] == 30_000
    r = await client.post("/orders/ord-1/receipt", headers=tokens["buyer"])
    assert r.status_code == 409 and "withdraw the dispute" in r.json()["detail"]
    r = await client.post("/orders/ord-1/dispute/withdraw", headers=tokens["buyer"])
    assert r.status_code == 200 and r.json()["dispute"]["status"] == "withdrawn"
    r = await client.post("/orders/ord-1/receipt", headers=tokens["buyer"])
    assert r.status_code == 200 and r.json()["receipt"]["confirmed_by"] == "buyer"


async def test_negotiation_escalation_and_decision_over_http(api):
    client, clock, tokens = api
    clock.advance(OPENS_AT - clock.now())
    await client.post("/orders/ord-1/dispute", json=DISPUTE, headers=tokens["buyer"])
    r = await client.post("/orders/ord-1/dispute/answer", json={"answer": "counter_offer",
                                                                "amount": 30_000},
                          headers=tokens["supplier"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "amount"
    r = await client.post("/orders/ord-1/dispute/answer", json={"answer": "reject"},
                          headers=tokens["supplier"])
    assert r.json()["dispute"]["answer"] == "reject"
    r = await client.post("/orders/ord-1/dispute/escalate", headers=tokens["supplier"])
    assert r.json()["status"] == "escalated"
    r = await client.get("/disputes/escalated", headers=tokens["agent"])
    assert [d["order_id"] for d in r.json()] == ["ord-1"]
    r = await client.post("/orders/ord-1/dispute/decision", json={"outcome": "release"},
                          headers=tokens["agent"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    r = await client.post("/orders/ord-1/dispute/decision",
                          json={"outcome": "release", "reason": "as described"},
                          headers=tokens["agent"])
    assert r.json()["dispute"]["resolution"]["refund_amount"] == 0
    r = await client.post("/orders/ord-1/dispute/withdraw", headers=tokens["buyer"])
    assert r.status_code == 409 and "final" in r.json()["detail"]
    r = await client.get("/orders/ord-1/protection", headers=tokens["buyer"])
    assert r.json()["status"] == "dispute_resolved" and r.json()["deadlines"] == {}


async def test_an_attachment_comes_back_as_a_download(api):
    client, clock, tokens = api
    clock.advance(OPENS_AT + timedelta(hours=1) - clock.now())
    evidence = [{"kind": "attachment", "filename": "invoice nº1.pdf",
                 "content_type": "application/pdf", "data_base64": base64.b64encode(PDF).decode()},
                {"kind": "link", "url": "https://example.com/photos"}]
    r = await client.post("/orders/ord-1/dispute", json={**DISPUTE, "evidence": evidence},
                          headers=tokens["buyer"])
    assert r.status_code == 201
    attachment_id = r.json()["dispute"]["evidence"][0]["attachment_id"]
    r = await client.get(f"/orders/ord-1/dispute/attachments/{attachment_id}",
                         headers=tokens["agent"])
    assert r.status_code == 200 and r.content == PDF
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''invoice%20n%C2%BA1.pdf"


async def test_a_link_must_be_http(api):
    client, clock, tokens = api
    clock.advance(OPENS_AT - clock.now())
    r = await client.post("/orders/ord-1/dispute",
                          json={**DISPUTE, "evidence": [{"kind": "link", "url": "javascript:x"}]},
                          headers=tokens["buyer"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("evidence.0")


async def test_both_parties_argue_the_dispute_and_the_agent_sees_it_all(api):
    """Issue 9.5: statements and evidence from either side, in the queue and the history."""
    client, clock, tokens = api
    clock.advance(OPENS_AT - clock.now())
    await client.post("/orders/ord-1/dispute", json=DISPUTE, headers=tokens["buyer"])
    r = await client.post("/orders/ord-1/dispute/statements", headers=tokens["supplier"], json={
        "text": "Packed with foam; see the warehouse photo.",
        "evidence": [{"kind": "attachment", "filename": "packing.pdf",
                      "content_type": "application/pdf",
                      "data_base64": base64.b64encode(PDF).decode()}]})
    assert r.status_code == 201, r.text
    [statement] = r.json()["dispute"]["statements"]
    assert statement["author_role"] == "supplier"
    await client.post("/orders/ord-1/dispute/answer", json={"answer": "reject"},
                      headers=tokens["supplier"])
    await client.post("/orders/ord-1/dispute/escalate", headers=tokens["buyer"])
    service_for_buyer = {"authorization": "Bearer " + mint_token(
        DisputeSettings().auth_secret.get_secret_value(), "buyer-1", Role.SERVICE)}
    r = await client.post("/orders/ord-1/dispute/statements", headers=service_for_buyer,
                          json={"text": "The foam was wet when it arrived."})
    assert r.status_code == 201
    [queued] = (await client.get("/disputes/escalated", headers=tokens["agent"])).json()
    assert [(s["author_role"], s["text"]) for s in queued["dispute"]["statements"]] == [
        ("supplier", "Packed with foam; see the warehouse photo."),
        ("buyer", "The foam was wet when it arrived.")]
    assert [h["what"] for h in queued["history"]].count("dispute.statement_added") == 2
    attachment_id = statement["evidence"][0]["attachment_id"]
    r = await client.get(f"/orders/ord-1/dispute/attachments/{attachment_id}",
                         headers=tokens["agent"])
    assert r.status_code == 200 and r.content == PDF


async def test_a_statement_needs_an_open_dispute_and_a_party(api):
    client, clock, tokens = api
    clock.advance(OPENS_AT - clock.now())
    statement = {"text": "hello"}
    r = await client.post("/orders/ord-1/dispute/statements", json=statement,
                          headers=tokens["buyer"])
    assert r.status_code == 409 and "no dispute" in r.json()["detail"]
    await client.post("/orders/ord-1/dispute", json=DISPUTE, headers=tokens["buyer"])
    r = await client.post("/orders/ord-1/dispute/statements", json=statement,
                          headers=tokens["agent"])
    assert r.status_code == 403
    await client.post("/orders/ord-1/dispute/withdraw", headers=tokens["buyer"])
    r = await client.post("/orders/ord-1/dispute/statements", json=statement,
                          headers=tokens["buyer"])
    assert r.status_code == 409 and "withdrew" in r.json()["detail"]


async def test_a_dispute_before_the_payment_is_known_here_is_not_yet_and_retryable():
    """Dispatch and payment come on different topics: the dispatch may arrive first. The
    buyer is told to try again (503 with Retry-After; nothing was done), not refused."""
    async with dispute_api(DISPATCHED) as (client, clock, tokens, handle):
        clock.advance(OPENS_AT - clock.now())
        r = await client.post("/orders/ord-1/dispute", json=DISPUTE, headers=tokens["buyer"])
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) >= 1 and "try again" in r.json()["detail"]

        await handle(FUNDED)
        r = await client.post("/orders/ord-1/dispute", json=DISPUTE, headers=tokens["buyer"])
        assert r.status_code < 300, r.text
