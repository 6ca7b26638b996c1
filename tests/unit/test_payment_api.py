"""The payment HTTP API in process: problem answers, who may do what, and that a card
number never reaches the store, the published events or the logs."""

import json
import logging
from datetime import timedelta

import httpx
import pytest
from cryptography.fernet import Fernet
from pymongo.errors import ServerSelectionTimeoutError

from shared.contracts.envelope import Envelope
from shared.contracts.events import OrderConfirmed
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import Carrier, Logistics, ShippingMethod
from shared.infra.auth import mint_token
from shared.infra.clock import ManualClock
from shared.infra.http import create_app
from shared.infra.runner import AggregateRunner
from shared.infra.settings import DEV_AUTH_SECRET, InsecureSettings

from services.payment.api import PROBLEMS, router
from services.payment.bank_signature import (
    BankSignatureCheck,
    SeenSignatures,
    UnsignedNotification,
    parse_keys,
    signed_headers,
)
from services.payment.bank_transfers import BankTransfers
from services.payment.domain import Escrow
from services.payment.payouts import ESCROW_DUE
from services.payment.provider import SANDBOX_APPROVE, SANDBOX_DECLINE, SandboxProvider
from services.payment.sandbox_bank import signed_notification
from services.payment.service import Payments
from services.payment.settings import PaymentSettings
from services.payment.vault import PaymentDataVault
from tests.support.memory_mongo import MemoryAggregateStore, MemoryMongo

ORDER = "ord-api"
PARTIES = Parties(buyer=Party(party_id="buyer-1", name="Buyer", email="buyer@example.com"),
                  supplier=Party(party_id="supplier-1", name="Supplier", email="supplier@example.com"))


class Published(list):
    async def __call__(self, message):
        self.append(message.body)


def auth(party: str, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(DEV_AUTH_SECRET, party, role)}"}


BUYER = auth("buyer-1", Role.BUYER)
SUPPLIER = auth("supplier-1", Role.SUPPLIER)
AGENT = auth("agent-1", Role.AGENT)
BANK = auth("bank-1", Role.BANK)


@pytest.fixture
async def api():
    clock = ManualClock()
    published = Published()
    store = MemoryAggregateStore(Escrow, ESCROW_DUE)
    runner = AggregateRunner(store, clock, published)
    settings = PaymentSettings()
    database = MemoryMongo()["escrow"]
    service = Payments.create(runner, BankTransfers(database["bank_transfers"]),
                              SandboxProvider(clock=clock),
                              PaymentDataVault(Fernet.generate_key().decode()), settings)
    signatures = BankSignatureCheck(parse_keys(settings.bank_webhook_keys.get_secret_value()),
                                    SeenSignatures(database["bank_notifications"]), clock)

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    app = create_app(title="payments", description="", settings=settings, ready=ready,
                     problems=PROBLEMS)
    app.include_router(router(service, signatures))
    event = OrderConfirmed(order_id=ORDER, parties=PARTIES, currency="EUR", total=99_950,
                           delivery_period_days=10,
                           logistics=Logistics(shipping_method=ShippingMethod.EXPRESS, carrier=Carrier.UPS),
                           payment_due_at=clock.now() + timedelta(days=20))
    await service.reactions.on_order_confirmed(Envelope.wrap(event, occurred_at=clock.now()), event)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://payment") as client:
        client.store, client.published, client.clock = store, published, clock
        yield client


async def report(api, transfer: dict, headers=BANK, *, signed_at=None):
    """What the bank adapter sends: a bank token and a signed body."""
    body, signature = signed_notification(transfer, PaymentSettings(), signed_at or api.clock.now())
    return await api.post("/bank/transfers", content=body, headers={**headers, **signature})


def card_body(number=SANDBOX_APPROVE, **overrides):
    return {"number": number, "expiry_month": 12, "expiry_year": 2030, "cvc": "123",
            "holder_name": "Ada Buyer", **overrides}


async def test_the_card_number_is_never_stored_published_or_logged(api, caplog):
    caplog.set_level(logging.DEBUG)
    spaced = "4242 4242 4242 4242"
    answers = [
        await api.post(f"/orders/{ORDER}/payments/card", json=card_body(SANDBOX_DECLINE), headers=BUYER),
        await api.post(f"/orders/{ORDER}/payments/card", json=card_body("4242424242424241"), headers=BUYER),
        await api.post(f"/orders/{ORDER}/payments/card", json=card_body(spaced), headers=BUYER),
    ]
    assert [a.status_code for a in answers] == [402, 422, 200]
    assert answers[2].json()["card"]["last4"] == "4242"
    stored = json.dumps({k: {**d, "outbox": [m.body for m in d["outbox"]]}
                         for k, d in api.store.docs.items()}, default=str)
    published = "\n".join(api.published)
    logged = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    answered = "\n".join(a.text for a in answers)
    assert "payment.escrow_funded" in published and '"last4":"4242"' in published
    assert caplog.records, "the test must see the service's logs"
    for number in (SANDBOX_APPROVE, SANDBOX_DECLINE, "4242424242424241", spaced):
        for where, text in [("store", stored), ("events", published), ("logs", logged),
                            ("answers", answered)]:
            assert number not in text, f"a card number leaked into the {where}"
    assert '"cvc"' not in stored + published


async def test_card_problems_name_the_field(api):
    for body, field in [(card_body("4242424242424241"), "number"),
                        (card_body(expiry_month=13), "expiry_month"),
                        (card_body(expiry_year=2025), "expiry_year"),
                        (card_body(cvc="1"), "cvc")]:
        answer = await api.post(f"/orders/{ORDER}/payments/card", json=body, headers=BUYER)
        assert answer.status_code == 422, body
        assert answer.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in answer.json()["errors"]] == [field]


async def test_a_declined_card_is_a_402_problem(api):
    answer = await api.post(f"/orders/{ORDER}/payments/card", json=card_body(SANDBOX_DECLINE),
                            headers=BUYER)
    assert answer.status_code == 402 and "card_declined" in answer.json()["detail"]


async def test_only_the_buyer_pays_and_only_the_parties_read(api):
    paying = await api.post(f"/orders/{ORDER}/payments/card", json=card_body(), headers=SUPPLIER)
    assert paying.status_code == 403
    assert (await api.get(f"/orders/{ORDER}/payment", headers=auth("buyer-2", Role.BUYER))).status_code == 403
    assert (await api.get("/orders/nope/payment", headers=BUYER)).status_code == 404
    assert (await api.get(f"/orders/{ORDER}/payment")).status_code == 401
    for reader in (BUYER, SUPPLIER, AGENT):
        answer = await api.get(f"/orders/{ORDER}/payment", headers=reader)
        assert answer.status_code == 200
        assert answer.json()["transfer_instructions"]["reference"].startswith("ESC")


async def test_bank_transfers_match_by_reference_or_are_kept_for_return(api):
    reference = (await api.get(f"/orders/{ORDER}/payment", headers=BUYER)).json()[
        "transfer_instructions"]["reference"]
    transfer = {"transfer_id": "tt-1", "reference": reference, "amount": 40_000, "currency": "EUR",
                "sender_name": "Ada Buyer GmbH", "sender_account": "DE89370400440532013000"}
    answer = await report(api, transfer, BUYER)
    assert answer.status_code == 403, answer.text
    matched = await report(api, transfer)
    assert matched.status_code == 200
    assert (matched.json()["accepted"], matched.json()["remaining"]) == (40_000, 59_950)
    unknown = await report(api, {**transfer, "transfer_id": "tt-2", "reference": "rent"})
    assert unknown.status_code == 202 and unknown.json()["returned"] == 40_000
    view = (await api.get(f"/orders/{ORDER}/payment", headers=SUPPLIER)).json()
    assert [(p["source_id"], p["amount"]) for p in view["payments"]] == [("tt-1", 40_000)]
    assert "DE89370400440532013000" not in json.dumps(view)


async def test_the_ledger_shows_entries_balances_and_the_invariant(api):
    await api.post(f"/orders/{ORDER}/payments/card", json=card_body(), headers=BUYER)
    ledger = (await api.get(f"/orders/{ORDER}/ledger", headers=AGENT)).json()
    assert ledger["balanced"] is True
    assert ledger["balances"] == {"buyer_funds": -99_950, "escrow_held": 99_950,
                                  "supplier_payouts": 0, "buyer_refunds": 0}
    [entry] = ledger["entries"]
    assert (entry["debit"], entry["credit"], entry["amount"]) == ("escrow_held", "buyer_funds", 99_950)
    assert (await api.get(f"/orders/{ORDER}/ledger", headers=auth("x", Role.BUYER))).status_code == 403


# --- bank notifications: signed by the bank adapter, and only by it -------------------------

def a_transfer(reference="rent", **overrides):
    return {"transfer_id": "tt-sig", "reference": reference, "amount": 1_000, "currency": "EUR",
            "sender_name": "Ada Buyer GmbH", "sender_account": "DE89370400440532013000", **overrides}


async def test_only_a_signed_report_from_the_bank_role_is_believed(api):
    acting_for_buyer = auth("buyer-1", Role.SERVICE)
    assert (await report(api, a_transfer(), acting_for_buyer)).status_code == 403
    unsigned = await api.post("/bank/transfers", json=a_transfer(), headers=BANK)
    assert unsigned.status_code == 401 and "X-Bank-Signature" in unsigned.json()["detail"]
    body, headers = signed_notification(a_transfer(), PaymentSettings(), api.clock.now())
    forged = body.replace(b'"amount": 1000', b'"amount": 9000')
    tampered = await api.post("/bank/transfers", content=forged, headers={**BANK, **headers})
    assert tampered.status_code == 401 and "does not match" in tampered.json()["detail"]
    unknown_key = await api.post("/bank/transfers", content=body,
                                 headers={**BANK, **headers, "X-Bank-Key-Id": "other"})
    assert unknown_key.status_code == 401
    assert (await api.post("/bank/transfers", content=body, headers={**BANK, **headers})).status_code == 202
    assert api.store.docs[ORDER]["state"]["fundings"] == []


async def test_a_replayed_or_stale_report_is_refused(api):
    body, headers = signed_notification(a_transfer(), PaymentSettings(), api.clock.now())
    assert (await api.post("/bank/transfers", content=body, headers={**BANK, **headers})).status_code == 202
    replay = await api.post("/bank/transfers", content=body, headers={**BANK, **headers})
    assert replay.status_code == 401 and "replay" in replay.json()["detail"]
    stale = await report(api, a_transfer(transfer_id="tt-old"),
                         signed_at=api.clock.now() - timedelta(minutes=5, seconds=1))
    assert stale.status_code == 401 and "more than" in stale.json()["detail"]
    fresh = await report(api, a_transfer(transfer_id="tt-new"),
                         signed_at=api.clock.now() - timedelta(minutes=4))
    assert fresh.status_code == 202


async def test_keys_rotate_every_configured_key_verifies():
    database = MemoryMongo()["escrow"]
    clock = ManualClock()
    old, new = "a" * 32, "b" * 32
    check = BankSignatureCheck(parse_keys(f"old:{old},new:{new}"), SeenSignatures(database["seen"]), clock)
    for key_id, secret in (("old", old), ("new", new)):
        body = f'{{"signed by": "{key_id}"}}'.encode()
        await check.verify(signed_headers(key_id, secret.encode(), body, clock.now()), body)
    with pytest.raises(UnsignedNotification):
        body = b"{}"
        await check.verify(signed_headers("new", old.encode(), body, clock.now()), body)
    with pytest.raises(ValueError, match="at least 32"):
        parse_keys("short:secret")


@pytest.mark.parametrize("amount", [True, "100", 2500.0, 2**63])
async def test_a_reported_amount_that_is_not_a_bounded_integer_is_a_422(api, amount):
    answer = await report(api, a_transfer(amount=amount))
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["amount"]


# --- support: where is my money -------------------------------------------------------------

async def test_customer_service_lists_and_filters_unmatched_transfers(api):
    reference = (await api.get(f"/orders/{ORDER}/payment", headers=BUYER)).json()[
        "transfer_instructions"]["reference"]
    await report(api, a_transfer(transfer_id="tt-rent", reference="rent March"))
    api.clock.advance(timedelta(hours=1))
    await report(api, a_transfer(transfer_id="tt-nzd", reference="invoice 77", currency="NZD"))
    await report(api, a_transfer(transfer_id="tt-ok", reference=reference))
    listed = await api.get("/bank/transfers/unmatched", headers=AGENT)
    assert listed.status_code == 200
    assert [t["transfer_id"] for t in listed.json()] == ["tt-nzd", "tt-rent"]
    assert listed.json()[0]["return_status"] == "pending" and listed.json()[0]["order_id"] is None
    assert "DE89370400440532013000" not in listed.text
    for query, expected in [("currency=NZD", ["tt-nzd"]), ("reference_contains=MARCH", ["tt-rent"]),
                            ("returned=true", []), ("limit=1", ["tt-nzd"])]:
        found = await api.get(f"/bank/transfers/unmatched?{query}", headers=AGENT)
        assert [t["transfer_id"] for t in found.json()] == expected, query
    booked = (await api.get("/bank/transfers/tt-ok", headers=AGENT)).json()
    assert booked["order_id"] == ORDER and booked["return_status"] is None
    for who in (BUYER, SUPPLIER, BANK):
        assert (await api.get("/bank/transfers/unmatched", headers=who)).status_code == 403
    assert (await api.get("/bank/transfers/nope", headers=AGENT)).status_code == 404


async def test_an_overlong_correlation_id_never_leaves_a_charge_unbooked(api):
    answer = await api.post(f"/orders/{ORDER}/payments/card", json=card_body(),
                            headers={**BUYER, "X-Correlation-Id": "c" * 100})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["paid_in"]) == ("funded", 99_950)


def test_the_sandbox_bank_key_is_refused_outside_development(monkeypatch):
    monkeypatch.delenv("ESCROW_ENV", raising=False)
    settings = PaymentSettings(auth_secret="x" * 40, auth_issuer="https://idp.example",
                               payment_data_key=Fernet.generate_key().decode())
    with pytest.raises(InsecureSettings, match="BANK_WEBHOOK_KEYS is the development value"):
        settings.check_secrets()


async def test_a_report_whose_booking_failed_for_a_passing_reason_is_taken_when_the_bank_resends_it(
        api, monkeypatch):
    """Found by the chaos run: the signature was remembered before the booking, so the
    bank's retry after a database restart was refused as a replay and the money was lost."""
    reference = (await api.get(f"/orders/{ORDER}/payment", headers=BUYER)).json()[
        "transfer_instructions"]["reference"]
    body, headers = signed_notification(a_transfer(reference, amount=40_000), PaymentSettings(),
                                         api.clock.now())
    real_save = api.store.save

    async def database_down(*args, **kwargs):
        raise ServerSelectionTimeoutError("the database is restarting")

    monkeypatch.setattr(api.store, "save", database_down)
    first = await api.post("/bank/transfers", content=body, headers={**BANK, **headers})
    assert first.status_code == 503
    monkeypatch.setattr(api.store, "save", real_save)
    again = await api.post("/bank/transfers", content=body, headers={**BANK, **headers})
    assert again.status_code == 200, again.text
    assert (await api.get(f"/orders/{ORDER}/payment", headers=BUYER)).json()["paid_in"] == 40_000
    replay = await api.post("/bank/transfers", content=body, headers={**BANK, **headers})
    assert replay.status_code == 401 and "replay" in replay.json()["detail"]
