"""Events can't be forged (issue 8.9): an event is believed only from its producer's topic,
naming its real producer, signed with that producer's key; anything else is dead-lettered
with the reason, before any handler runs."""

from __future__ import annotations

import pytest

from shared.contracts.envelope import Envelope
from shared.contracts.events import EscrowFunded, ReceiptConfirmed
from shared.contracts.parties import Role
from shared.contracts.topics import Service, Topics
from shared.contracts.trade import PaymentMethod
from shared.infra.messaging import DEAD_LETTER_REASON, EventConsumer
from shared.infra.settings import ServiceSettings
from shared.infra.signing import (
    SIGNATURE_HEADER,
    EnvelopeAuthenticator,
    Unauthentic,
    new_keys,
    parse_keys,
    parse_signing_key,
)

from tests.support.memory import InMemoryPlatform
from tests.support.trade import Trade
from tests.unit.test_consumer import CLOCK, PARTIES, FakeBroker

TOPICS = Topics("t")
KEYS = parse_keys(",".join(f"{s}:k1:{s}-key-of-at-least-thirty-two-bytes!!" for s in Service))


def authenticator(service: Service, keys=KEYS) -> EnvelopeAuthenticator:
    return EnvelopeAuthenticator(service, TOPICS, keys)


def funded(producer: str = "payment") -> bytes:
    envelope = Envelope.wrap(EscrowFunded(order_id="ord-1", parties=PARTIES, amount=100,
                                          currency="USD", method=PaymentMethod.CARD),
                             occurred_at=CLOCK.now())
    return envelope.model_copy(update={"producer": Service(producer)}).to_bytes()


async def deliver(body: bytes, headers: dict, topic: str) -> tuple[list, list[str]]:
    handled: list = []

    async def handler(envelope, event) -> None:
        handled.append(event)

    broker = FakeBroker()
    consumer = EventConsumer(Service.ORDER, broker, TOPICS, {EscrowFunded: handler},
                             authenticator=authenticator(Service.ORDER))
    await consumer.handle(body, key=b"ord-1", headers=headers, origin=f"{topic}/0@1")
    return handled, [p["headers"][DEAD_LETTER_REASON] for p in broker.published]


async def test_a_signed_event_from_its_producers_topic_is_handled():
    body = funded()
    handled, dead = await deliver(body, authenticator(Service.PAYMENT).sign(body),
                                  TOPICS.events(Service.PAYMENT))
    assert len(handled) == 1 and dead == []


async def test_an_event_naming_a_producer_that_does_not_publish_it_is_dead_lettered():
    body = funded(producer="notify")
    handled, dead = await deliver(body, authenticator(Service.NOTIFY).sign(body),
                                  TOPICS.events(Service.PAYMENT))
    assert handled == []
    assert dead == ["unauthentic: payment.escrow_funded is published by payment, not by notify"]


async def test_an_event_on_another_services_topic_is_dead_lettered():
    body = funded()
    handled, dead = await deliver(body, authenticator(Service.PAYMENT).sign(body),
                                  TOPICS.events(Service.SHIPPING))
    assert handled == [] and "not on its producer's topic t.payment.events" in dead[0]


@pytest.mark.parametrize("headers", [
    {},  # unsigned
    {SIGNATURE_HEADER: "k1:" + "0" * 64},  # a made-up signature
    {SIGNATURE_HEADER: "k9:" + "0" * 64},  # an unknown key id
])
async def test_an_unsigned_or_badly_signed_event_is_dead_lettered(headers):
    handled, dead = await deliver(funded(), headers, TOPICS.events(Service.PAYMENT))
    assert handled == [] and dead[0].startswith("unauthentic:")


async def test_a_service_signing_with_its_own_key_cannot_impersonate_another():
    body = funded()  # claims payment, signed by shipping (which could write the topic)
    handled, dead = await deliver(body, authenticator(Service.SHIPPING).sign(body),
                                  TOPICS.events(Service.PAYMENT))
    assert handled == [] and "does not verify with payment's key 'k1'" in dead[0]


async def test_a_replayed_dead_letter_keeps_its_signature_and_is_believed_on_the_retry_topic():
    body = funded()
    handled, dead = await deliver(body, authenticator(Service.PAYMENT).sign(body),
                                  TOPICS.retries(Service.ORDER))
    assert len(handled) == 1 and dead == []


async def test_keys_rotate_producer_signs_with_its_first_consumers_accept_every_listed_one():
    old = parse_keys("payment:k1:" + "a" * 32)
    rotated = parse_keys("payment:k2:" + "b" * 32 + ",payment:k1:" + "a" * 32)
    body = funded()
    signed_old = EnvelopeAuthenticator(Service.PAYMENT, TOPICS, old).sign(body)
    signed_new = EnvelopeAuthenticator(Service.PAYMENT, TOPICS, rotated).sign(body)
    assert signed_new[SIGNATURE_HEADER].startswith("k2:")
    consumer = EnvelopeAuthenticator(Service.ORDER, TOPICS, rotated)
    envelope = Envelope.model_validate_json(body)
    for headers in (signed_old, signed_new):
        consumer.check(envelope, body, headers, TOPICS.events(Service.PAYMENT))


def test_short_or_malformed_keys_are_refused():
    with pytest.raises(ValueError, match="shorter than 32 bytes"):
        parse_keys("order:k1:short")
    with pytest.raises(ValueError, match="unknown producer"):
        parse_keys("bank:k1:" + "a" * 32)
    with pytest.raises(ValueError, match="producer:key-id:secret"):
        parse_keys("order-only")


# --- Ed25519: a consumer holds only the producers' public keys ------------------------------

SIGNING, PUBLIC = new_keys("e1")


def ed25519_service(service: Service) -> EnvelopeAuthenticator:
    """A service as deployed with Ed25519: its own private key, everyone's public keys."""
    settings = ServiceSettings(escrow_env="production", envelope_keys=PUBLIC,
                               envelope_signing_key=SIGNING[service])
    return EnvelopeAuthenticator.from_settings(service, TOPICS, settings)


async def test_an_ed25519_signed_event_is_believed_by_a_consumer_holding_only_public_keys():
    body = funded()
    payment, order = ed25519_service(Service.PAYMENT), ed25519_service(Service.ORDER)
    assert not any(key.can_sign for _, key in order.keys[Service.PAYMENT])
    order.check(Envelope.model_validate_json(body), body, payment.sign(body),
                TOPICS.events(Service.PAYMENT))


async def test_with_ed25519_not_even_a_consumer_can_sign_as_the_producer():
    body = funded()
    order = ed25519_service(Service.ORDER)
    with pytest.raises(ValueError, match="only the public half"):
        order.keys[Service.PAYMENT][0][1].sign(body)
    forged = {SIGNATURE_HEADER: order.sign(body)[SIGNATURE_HEADER]}  # order's own key, kid e1
    with pytest.raises(Unauthentic, match="does not verify with payment's key 'e1'"):
        ed25519_service(Service.SHIPPING).check(Envelope.model_validate_json(body), body, forged,
                                                TOPICS.events(Service.PAYMENT))


async def test_a_producer_moves_from_hmac_to_ed25519_without_losing_a_message():
    body = funded()
    hmac_secret = "payment:h1:" + "s" * 40
    before = EnvelopeAuthenticator(Service.PAYMENT, TOPICS, parse_keys(hmac_secret))
    both = parse_keys(f"{PUBLIC},{hmac_secret}")
    consumer = EnvelopeAuthenticator(Service.ORDER, TOPICS, both)
    envelope = Envelope.model_validate_json(body)
    for signed in (before.sign(body), ed25519_service(Service.PAYMENT).sign(body)):
        consumer.check(envelope, body, signed, TOPICS.events(Service.PAYMENT))


def test_a_service_without_a_key_to_sign_with_refuses_to_start():
    settings = ServiceSettings(escrow_env="production", envelope_keys=PUBLIC)
    with pytest.raises(ValueError, match="no key to sign payment's events with"):
        EnvelopeAuthenticator.from_settings(Service.PAYMENT, TOPICS, settings)


def test_malformed_ed25519_keys_are_refused():
    with pytest.raises(ValueError, match="not 32 bytes of base64"):
        parse_keys("order:e1:ed25519:not-base64!")
    with pytest.raises(ValueError, match="not 32 bytes of base64"):
        parse_signing_key("e1:" + "QUJD")
    with pytest.raises(ValueError, match="key-id:<base64"):
        parse_signing_key("no-key-id")


# --- the issue's reproductions, through the services' own composition roots ----------------

@pytest.fixture
async def platform():
    running = InMemoryPlatform()
    await running.start()
    yield running
    await running.stop()


async def test_a_forged_escrow_funded_does_not_make_an_order_paid(platform, monkeypatch):
    trade = Trade(platform)
    await trade.place()
    await trade.confirm()
    order = platform.runtimes["order"].consumer
    reasons: list[str] = []

    async def dead_letter(body, key, headers, origin, reason):
        reasons.append(reason)
    monkeypatch.setattr(order, "dead_letter", dead_letter)
    event = EscrowFunded(order_id=trade.order_id, parties=(await trade_parties(trade)),
                         amount=trade.total, currency="USD", method=PaymentMethod.CARD)
    forged = Envelope.wrap(event, occurred_at=platform.clock.now())
    as_notify = forged.model_copy(update={"producer": Service.NOTIFY}).to_bytes()
    await order.handle(as_notify, key=trade.order_id.encode(),
                       origin=f"{platform.topics.events(Service.PAYMENT)}/0@1")
    unsigned = forged.to_bytes()
    await order.handle(unsigned, key=trade.order_id.encode(),
                       origin=f"{platform.topics.events(Service.PAYMENT)}/0@2")
    assert len(reasons) == 2 and all(r.startswith("unauthentic:") for r in reasons)
    status = (await trade.call("order", "GET", f"/orders/{trade.order_id}")).json()["status"]
    assert status == "awaiting_payment"


async def test_a_forged_receipt_confirmation_triggers_no_payout(platform, monkeypatch):
    trade = Trade(platform)
    await trade.place()
    await trade.confirm()
    await trade.pay_by_card()
    payment = platform.runtimes["payment"].consumer
    reasons: list[str] = []

    async def dead_letter(body, key, headers, origin, reason):
        reasons.append(reason)
    monkeypatch.setattr(payment, "dead_letter", dead_letter)
    forged = Envelope.wrap(ReceiptConfirmed(order_id=trade.order_id,
                                            parties=(await trade_parties(trade)),
                                            confirmed_by="buyer"), occurred_at=platform.clock.now())
    # written on the dispute topic by someone holding another producer's key
    signed_by_shipping = platform.runtimes["shipping"].authenticator.sign(forged.to_bytes())
    await payment.handle(forged.to_bytes(), key=trade.order_id.encode(), headers=signed_by_shipping,
                         origin=f"{platform.topics.events(Service.DISPUTE)}/0@1")
    assert reasons and "does not verify with dispute's key" in reasons[0]
    escrow = (await trade.call("payment", "GET", f"/orders/{trade.order_id}/payment")).json()
    assert escrow["status"] == "funded", escrow  # still held: nothing released


async def trade_parties(trade: Trade):
    from shared.contracts.parties import Parties
    view = (await trade.call("order", "GET", f"/orders/{trade.order_id}", role=Role.BUYER)).json()
    return Parties.model_validate(view["parties"])
