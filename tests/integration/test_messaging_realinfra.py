"""The shared messaging guarantees, proved on the real broker and database: a duplicated
delivery takes effect once, a crash between saving and publishing loses nothing, and a
malformed or unprocessable message goes to the dead-letter topic while the consumer goes on."""

from __future__ import annotations

import json
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure

from shared.contracts.envelope import Envelope
from shared.contracts.events import EscrowFunded
from shared.contracts.parties import Role
from shared.contracts.topics import Service, Topics
from shared.contracts.trade import PaymentMethod
from shared.infra import messaging
from shared.infra.clock import ManualClock
from shared.infra.deadletters import list_dead_letters, replay
from shared.infra.messaging import DEAD_LETTER_REASON
from shared.infra.runtime import ServiceRuntime

from tests.support.infra import Infra
from tests.support.platform import Platform, build_service, eventually, signer

pytestmark = pytest.mark.realinfra

ORDER = {
    "supplier": {"party_id": "supplier-1", "name": "Shenzhen Bolts"},
    "buyer_contact": {"name": "ACME Imports"},
    "items": [{"description": "bolts", "quantity": 10, "unit_price": 250}],
    "currency": "USD",
    "destination": {"recipient": "ACME", "line1": "1 Dock Rd", "city": "Rotterdam", "country": "NL"},
    "delivery_period_days": 7,
}


@pytest.fixture
async def order_service(infra: Infra):
    """The order service alone, on its own topics and database."""
    world = Platform(infra, ManualClock())
    runtime = build_service("order", infra, prefix=world.prefix, database=f"escrow_{world.prefix}",
                            clock=world.clock)
    world.runtimes["order"] = runtime
    await runtime.start()
    yield world
    await world.stop()


async def place_order(world: Platform) -> str:
    async with world.client("order", "buyer-1", Role.BUYER) as buyer:
        response = await buyer.post("/orders", json=ORDER)
        assert response.status_code == 201, response.text
        return response.json()["order_id"]


def signed(value: bytes) -> list[tuple[str, bytes]]:
    """The signature header its producer would add (the platform's keys), if it names one."""
    try:
        producer = Service(json.loads(value)["producer"])
    except (ValueError, KeyError):
        return []
    return [(k, v.encode()) for k, v in signer(producer, Topics("any")).sign(value).items()]


async def produce(infra: Infra, topic: str, key: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key.encode(), headers=signed(value))
    finally:
        await producer.stop()


def funded(world: Platform, order_id: str, parties) -> Envelope:
    return Envelope.wrap(EscrowFunded(order_id=order_id, parties=parties, amount=2500, currency="USD",
                                      method=PaymentMethod.BANK_TRANSFER), occurred_at=world.clock.now())


async def order_history(world: Platform, order_id: str) -> list[str]:
    order = await world.runtimes["order"].runners[0].get(order_id)
    return [entry.what for entry in order.history]


async def test_a_duplicated_delivery_takes_effect_once(order_service: Platform):
    world = order_service
    order_id = await place_order(world)
    order = await world.runtimes["order"].runners[0].get(order_id)
    envelope = funded(world, order_id, order.parties)
    topic = Topics(world.prefix).events(Service.PAYMENT)
    await produce(world.infra, topic, order_id, envelope.to_bytes())
    await produce(world.infra, topic, order_id, envelope.to_bytes())
    marker = funded(world, order_id, order.parties)  # a second, distinct event behind both copies
    await produce(world.infra, topic, order_id, marker.to_bytes())

    async def both_handled():
        assert (await order_history(world, order_id)).count("escrow funded") == 2

    await eventually(both_handled)
    loaded = await world.runtimes["order"].runners[0].store.load(order_id)
    assert loaded.handled.count(envelope.event_id) == 1


async def test_a_crash_between_saving_and_publishing_loses_nothing(infra: Infra):
    world = Platform(infra, ManualClock())
    database = f"escrow_{world.prefix}"
    first = build_service("order", infra, prefix=world.prefix, database=database, clock=world.clock)

    async def broker_gone(message) -> None:
        raise ConnectionError("simulated crash before publishing")

    first.runners[0]._publish = broker_gone
    world.runtimes["order"] = first
    await first.start(background_jobs=False)
    order_id = await place_order(world)
    raw = AsyncMongoClient(infra.mongodb_url)[database]["orders"]
    assert len((await raw.find_one({"_id": order_id}))["outbox"]) == 1
    await first.stop()

    restarted: ServiceRuntime = build_service("order", infra, prefix=world.prefix, database=database,
                                              clock=world.clock)
    await restarted.start()
    try:
        consumer = AIOKafkaConsumer(Topics(world.prefix).events(Service.ORDER), bootstrap_servers=infra.kafka,
                                    auto_offset_reset="earliest", group_id=f"probe-{uuid.uuid4().hex}")
        await consumer.start()
        try:
            record = await consumer.getone()
        finally:
            await consumer.stop()
        envelope = Envelope.model_validate_json(record.value)
        assert (envelope.event_type, envelope.order_id, record.key) == ("order.placed", order_id,
                                                                         order_id.encode())
        assert (await raw.find_one({"_id": order_id}))["outbox"] == []
    finally:
        await restarted.stop()


async def test_bad_messages_are_dead_lettered_with_a_reason_and_the_consumer_goes_on(order_service: Platform):
    world = order_service
    topics = Topics(world.prefix)
    order_id = await place_order(world)
    order = await world.runtimes["order"].runners[0].get(order_id)
    await produce(world.infra, topics.events(Service.PAYMENT), order_id, b"{not json")
    wrong_payload = funded(world, order_id, order.parties).model_dump(mode="json")
    wrong_payload["payload"]["amount"] = -5
    await produce(world.infra, topics.events(Service.PAYMENT), order_id,
                  Envelope.model_validate(wrong_payload).to_bytes())
    await produce(world.infra, topics.events(Service.PAYMENT), order_id,
                  funded(world, order_id, order.parties).to_bytes())

    async def good_one_handled():
        assert "escrow funded" in await order_history(world, order_id)

    await eventually(good_one_handled)
    letters = await list_dead_letters(world.infra.kafka, topics, Service.ORDER)
    reasons = sorted(letter.reason for letter in letters)
    assert len(letters) == 2
    assert reasons[0].startswith("invalid payment.escrow_funded payload")
    assert reasons[1].startswith("malformed envelope")
    assert all(letter.key == order_id.encode() for letter in letters)
    async with world.client("order", "agent-1", Role.AGENT) as client:
        metrics = (await client.get("/metrics")).text
    dead_lettered = [line for line in metrics.splitlines()
                     if line.startswith("escrow_published_messages_total")
                     and topics.dead_letters(Service.ORDER) in line]
    assert dead_lettered and float(dead_lettered[0].rsplit(" ", 1)[1]) == 2.0, metrics


async def test_an_unprocessable_message_can_be_replayed_once_fixed(order_service: Platform):
    world = order_service
    topics = Topics(world.prefix)
    order_id = await place_order(world)
    order = await world.runtimes["order"].runners[0].get(order_id)
    consumer = world.runtimes["order"].consumer
    event_class, real_handler = consumer.handlers["payment.escrow_funded"]

    async def broken(envelope, event):
        raise RuntimeError("a bug in the handler")

    consumer.handlers["payment.escrow_funded"] = (event_class, broken)
    await produce(world.infra, topics.events(Service.PAYMENT), order_id,
                  funded(world, order_id, order.parties).to_bytes())

    async def dead_lettered():
        letters = await list_dead_letters(world.infra.kafka, topics, Service.ORDER)
        assert [letter.headers[DEAD_LETTER_REASON] for letter in letters] == [
            "handler failed: RuntimeError: a bug in the handler"]

    await eventually(dead_lettered)
    consumer.handlers["payment.escrow_funded"] = (event_class, real_handler)
    assert await replay(world.infra.kafka, topics, Service.ORDER) == 1
    assert await replay(world.infra.kafka, topics, Service.ORDER) == 0

    async def handled_after_replay():
        assert (await order_history(world, order_id)).count("escrow funded") == 1

    await eventually(handled_after_replay)


async def test_a_misrouted_event_is_dead_lettered_and_does_not_block_its_order(order_service: Platform):
    world = order_service
    topics = Topics(world.prefix)
    order_id = await place_order(world)
    order = await world.runtimes["order"].runners[0].get(order_id)
    misrouted = funded(world, "ord_someone_else", order.parties).model_dump(mode="json")
    misrouted["order_id"] = order_id
    await produce(world.infra, topics.events(Service.PAYMENT), order_id,
                  Envelope.model_validate(misrouted).to_bytes())
    await produce(world.infra, topics.events(Service.PAYMENT), order_id,
                  funded(world, order_id, order.parties).to_bytes())

    async def good_one_handled():
        assert "escrow funded" in await order_history(world, order_id)

    await eventually(good_one_handled)
    [letter] = await list_dead_letters(world.infra.kafka, topics, Service.ORDER)
    assert letter.reason.startswith("misrouted payment.escrow_funded")


async def committed_offsets(infra: Infra, group: str) -> dict[tuple[str, int], int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


async def test_no_commit_passes_a_message_that_failed_and_it_comes_again_after_a_restart(
        infra: Infra, monkeypatch):
    """One order's event keeps failing transiently while others succeed; the committed
    offset of its partition stays at or before it, and a restarted service handles it."""
    monkeypatch.setattr(messaging, "TRANSIENT_BACKOFF_SECONDS", 0.01)
    world = Platform(infra, ManualClock())
    database = f"escrow_{world.prefix}"
    first = build_service("order", infra, prefix=world.prefix, database=database, clock=world.clock)
    world.runtimes["order"] = first
    await first.start(background_jobs=False)
    stuck, *others = [await place_order(world) for _ in range(4)]
    handlers = first.consumer.handlers
    event_class, handle_funded = handlers["payment.escrow_funded"]

    async def database_away_for_one_order(envelope, event):
        if event.order_id == stuck:
            raise ConnectionFailure("simulated: the database is away for this order")
        await handle_funded(envelope, event)

    handlers["payment.escrow_funded"] = (event_class, database_away_for_one_order)
    topic = Topics(world.prefix).events(Service.PAYMENT)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka)
    await producer.start()
    try:
        positions = {}
        for order_id in [stuck, *others]:
            order = await first.runners[0].get(order_id)
            value = funded(world, order_id, order.parties).to_bytes()
            sent = await producer.send_and_wait(topic, value, key=order_id.encode(),
                                                headers=signed(value))
            positions[order_id] = (sent.partition, sent.offset)
    finally:
        await producer.stop()

    async def others_handled():
        for order_id in others:
            assert "escrow funded" in await order_history(world, order_id)

    await eventually(others_handled)
    committed = await committed_offsets(infra, f"{world.prefix}-order")
    partition, offset = positions[stuck]
    assert committed.get((topic, partition), -1) <= offset
    assert "escrow funded" not in await order_history(world, stuck)
    await first.stop()

    restarted = build_service("order", infra, prefix=world.prefix, database=database, clock=world.clock)
    world.runtimes["order"] = restarted
    await restarted.start(background_jobs=False)
    try:
        async def stuck_one_handled():
            assert "escrow funded" in await order_history(world, stuck)

        await eventually(stuck_one_handled)
    finally:
        await world.stop()
