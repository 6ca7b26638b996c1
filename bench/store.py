"""AggregateStore figures on FerretDB and on mongo-strict, and the outbox's publish rate to
Kafka. Prints latencies and rates; a benchmark, not a test.

    .venv/bin/python -m bench.store --sizes 100,1000,2000 --seconds 1.5 --messages 1000

For each server the collection of confirmed orders (the order service's document) grows
to each size in turn; at each size one writer, then 8 writers on distinct orders, load and
save for ``--seconds``; the sweeps' queries are timed too. Then the whole unit of work
(``AggregateRunner.execute``: load, save with one outgoing event, read the outbox, publish
to Kafka, remove it from the outbox) with 1 and 8 writers, and the publish rate through
``EventPublisher`` and through a raw aiokafka producer with the same bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from bench.support import confirmed_order, latency, memory_line, quiet_logs, remove_run, run_prefix, servers
from services.order.domain import Order
from shared.contracts.envelope import Envelope
from shared.contracts.events import MessagePosted, OrderEvent
from shared.contracts.parties import Role
from shared.contracts.topics import Service, Topics
from shared.domain.actor import Actor
from shared.infra.clock import ManualClock
from shared.infra.messaging import EventPublisher, ensure_topics, make_broker
from shared.infra.runner import AggregateRunner
from shared.infra.store import AggregateStore, OutboxMessage

WRITERS = (1, 8)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8.0f}/s"


async def grow(store: AggregateStore[Order], ids: list[str], size: int, clock: ManualClock) -> list[float]:
    """Insert new orders (one writer) until there are ``size``; returns the insert latencies."""
    took = []
    while len(ids) < size:
        order = confirmed_order(f"ord_{uuid.uuid4().hex[:24]}", clock.now())
        start = time.perf_counter()
        await store.save(order, expected_version=0, outbox=[], handled=[])
        took.append(time.perf_counter() - start)
        ids.append(order.order_id)
    return took


async def load_save(store: AggregateStore[Order], ids: list[str], writers: int,
                    seconds: float) -> tuple[list[float], list[float], float]:
    """``writers`` tasks, each on its own orders, load and save (conditional update of the
    whole state) until the time is up."""
    loads: list[float] = []
    saves: list[float] = []

    async def writer(mine: list[str], until: float) -> None:
        i = 0
        while time.perf_counter() < until:
            order_id = mine[i % len(mine)]
            i += 1
            start = time.perf_counter()
            loaded = await store.load(order_id)
            loaded_at = time.perf_counter()
            assert loaded is not None
            await store.save(loaded.aggregate, expected_version=loaded.version, outbox=[],
                             handled=[uuid.uuid4().hex])
            saves.append(time.perf_counter() - loaded_at)
            loads.append(loaded_at - start)

    start = time.perf_counter()
    await asyncio.gather(*(writer(ids[w::writers], start + seconds) for w in range(writers)))
    return loads, saves, time.perf_counter() - start


async def units_of_work(runner: AggregateRunner[Order], ids: list[str], writers: int,
                        seconds: float) -> tuple[list[float], float]:
    """``runner.execute`` of a command that records one event (a message to the other party)."""
    took: list[float] = []

    def post(order: Order | None, now) -> Order | None:
        assert order is not None
        order.post_message(Actor(party_id=order.parties.buyer.party_id, role=Role.BUYER),
                           "Please pack the bolts in boxes of 100.", now)
        return order

    async def writer(mine: list[str], until: float) -> None:
        i = 0
        while time.perf_counter() < until:
            start = time.perf_counter()
            await runner.execute(mine[i % len(mine)], post)
            took.append(time.perf_counter() - start)
            i += 1

    start = time.perf_counter()
    await asyncio.gather(*(writer(ids[w::writers], start + seconds) for w in range(writers)))
    return took, time.perf_counter() - start


async def sweep_queries(store: AggregateStore[Order], clock: ManualClock) -> tuple[list[float], list[float]]:
    pending, due = [], []
    for _ in range(2):
        start = time.perf_counter()
        await store.with_pending_outbox()
        pending.append(time.perf_counter() - start)
        start = time.perf_counter()
        await store.due(clock.now())
        due.append(time.perf_counter() - start)
    return pending, due


async def one_server(name: str, url: str, database: str, publisher: EventPublisher,
                     args: argparse.Namespace) -> None:
    clock = ManualClock()
    client: AsyncMongoClient = AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=10_000)
    try:
        store = AggregateStore(client[database]["orders"], Order)
        await store.create_indexes("parties.buyer.party_id", "parties.supplier.party_id")
        print(f"\n{name} ({url})")
        ids: list[str] = []
        for size in args.sizes:
            inserted = await grow(store, ids, size, clock)
            print(f"  {size} orders in the collection")
            if inserted:
                print(f"    insert (new order)         {latency(inserted)}")
            for writers in WRITERS:
                loads, saves, elapsed = await load_save(store, ids, writers, args.seconds)
                print(f"    {writers} writer{'s' if writers > 1 else ' '}: {rate(len(saves), elapsed)} load+save")
                print(f"      load                     {latency(loads)}")
                print(f"      save                     {latency(saves)}")
            pending, due = await sweep_queries(store, clock)
            print(f"    sweep: with_pending_outbox {latency(pending)}")
            print(f"    sweep: due(now)            {latency(due)}")
        runner = AggregateRunner(store, clock, publisher)
        print(f"  runner.execute with one outgoing event, published to Kafka ({len(ids)} orders):")
        for writers in WRITERS:
            took, elapsed = await units_of_work(runner, ids, writers, args.seconds)
            print(f"    {writers} writer{'s' if writers > 1 else ' '}: {rate(len(took), elapsed)}   {latency(took)}")
    finally:
        await client.drop_database(database)
        await client.close()


def outbox_messages(count: int, clock: ManualClock) -> list[OutboxMessage]:
    order = confirmed_order(f"ord_{uuid.uuid4().hex[:24]}", clock.now())
    messages = []
    for i in range(count):
        # Distinct order ids, so the keys spread over the partitions as real traffic does.
        event = MessagePosted(order_id=f"ord_{uuid.uuid4().hex[:24]}", parties=order.parties,
                              message_id=uuid.uuid4().hex, author_role=Role.BUYER,
                              author_party_id=order.parties.buyer.party_id,
                              text=f"Please pack the bolts in boxes of 100 ({i}).")
        messages.append(OutboxMessage.of(Envelope.wrap(event, occurred_at=clock.now())))
    return messages


async def publish_rates(kafka: str, topic: str, publisher: EventPublisher, args: argparse.Namespace) -> None:
    clock = ManualClock()
    print(f"\noutbox -> Kafka ({args.messages} envelopes of "
          f"{len(outbox_messages(1, clock)[0].body.encode())} bytes, topic {topic})")

    messages = outbox_messages(args.messages, clock)
    took = []
    start = time.perf_counter()
    for message in messages:
        began = time.perf_counter()
        await publisher(message)
        took.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - start
    print(f"  EventPublisher, one at a time (as publish_pending)  {rate(len(messages), elapsed)}   "
          f"{latency(took)}")

    messages = outbox_messages(args.messages, clock)
    start = time.perf_counter()

    async def publish_all(mine: list[OutboxMessage]) -> None:
        for message in mine:
            await publisher(message)
    await asyncio.gather(*(publish_all(messages[w::8]) for w in range(8)))
    print(f"  EventPublisher, 8 concurrent publishers            {rate(len(messages), time.perf_counter() - start)}")

    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=True)
    await producer.start()
    try:
        def record(message: OutboxMessage) -> dict:
            envelope = message.envelope()
            return {"value": message.body.encode(), "key": envelope.order_id.encode(),
                    "headers": [("content-type", b"application/json"),
                                ("event-type", envelope.event_type.encode()),
                                ("event-id", envelope.event_id.encode()),
                                ("correlation_id", envelope.correlation_id.encode())]}
        records = [record(m) for m in outbox_messages(args.messages, clock)]
        took = []
        start = time.perf_counter()
        for r in records:
            began = time.perf_counter()
            await producer.send_and_wait(topic, **r)
            took.append(time.perf_counter() - began)
        elapsed = time.perf_counter() - start
        print(f"  aiokafka send_and_wait, one at a time              {rate(len(records), elapsed)}   "
              f"{latency(took)}")
        records = [record(m) for m in outbox_messages(args.messages, clock)]
        start = time.perf_counter()
        sent = [await producer.send(topic, **r) for r in records]
        await asyncio.gather(*sent)
        print(f"  aiokafka send, all in flight, then wait            "
              f"{rate(len(records), time.perf_counter() - start)}")
    finally:
        await producer.stop()


async def main(args: argparse.Namespace) -> None:
    quiet_logs()
    infra = servers()
    prefix = run_prefix("store")
    database = f"escrow_{prefix}"
    topics = Topics(prefix)
    topic = topics.events(Service.ORDER)
    await ensure_topics(infra.kafka, [topic])
    broker = make_broker(infra.kafka, client_id="escrow-bench")
    publisher = EventPublisher(broker, topic, OrderEvent.__subclasses__())
    await broker.start()
    began = time.perf_counter()
    try:
        targets = [("FerretDB", infra.mongodb_url)]
        if infra.strict_mongodb_url:
            targets.append(("mongo-strict", infra.strict_mongodb_url))
        else:
            print("(no MONGODB_STRICT_URL: FerretDB only)")
        for name, url in targets:
            await one_server(name, url, database, publisher, args)
        await publish_rates(infra.kafka, topic, publisher, args)
        print(f"\nmemory: {memory_line()}; ran {time.perf_counter() - began:.0f} s")
    finally:
        await broker.stop()
        await remove_run(infra, prefix, [])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,2000",
                        help="collection sizes (orders) to measure at, ascending (default 100,1000,2000)")
    parser.add_argument("--seconds", type=float, default=1.5,
                        help="seconds per load+save and runner measurement (default 1.5)")
    parser.add_argument("--messages", type=int, default=1000,
                        help="envelopes per publish measurement (default 1000)")
    args = parser.parse_args()
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
