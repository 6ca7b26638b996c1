"""How fast one service's EventConsumer works through a backlog on real Kafka: events are
published first, then the service starts and the handled messages are counted. Prints
messages per second; a benchmark, not a test.

    .venv/bin/python -m bench.consumer --events 1000 --seconds 8

Scenarios, each on its own topics and database:
- kafka-commit: the ceiling over the others: a bare aiokafka consumer reading the same
  backlog, committing after every message (as the services' subscribers do) or not at all;
- order-distinct: EscrowFunded for as many distinct confirmed orders (each one loads the
  order, saves it as paid with the event id, reads its outbox);
- order-duplicates: one EscrowFunded delivered ``--events`` times (the first is handled,
  the rest are found in the order's handled ids and dropped);
- order-distinct-strict: order-distinct on MONGODB_STRICT_URL, when one is set;
- notify-distinct: OrderPlaced for as many orders (each stores one email job per party;
  no mail is sent: the sending job is not started).
Each scenario stops after ``--seconds`` of consuming, whether or not the backlog is done.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from shared.contracts.envelope import Envelope
from shared.contracts.events import EscrowFunded, OrderPlaced
from shared.contracts.topics import Service, Topics
from shared.contracts.trade import PaymentMethod
from shared.infra.clock import ManualClock
from shared.infra.messaging import ensure_topics
from shared.infra.runtime import ServiceRuntime
from shared.infra.store import AggregateStore

from bench.support import (
    CpuWatch,
    Servers,
    confirmed_order,
    event_consumer,
    load_average,
    memory_line,
    quiet_logs,
    remove_run,
    run_prefix,
    servers,
)
from services.catalogue import build, settings_class
from services.order.domain import Order

SCENARIOS = ("kafka-commit", "order-distinct", "order-duplicates", "order-distinct-strict",
             "notify-distinct")


@dataclass
class Scenario:
    name: str
    service: str
    mongodb_url: str
    # orders of the backlog -> the envelopes to publish (seeding the database if needed)
    backlog: Callable[[AggregateStore[Order], list[Order]], Awaitable[list[Envelope]]]


async def seed(store: AggregateStore[Order], orders: list[Order]) -> None:
    """Save the orders as the order service would have, 8 at a time."""
    gate = asyncio.Semaphore(8)

    async def save(order: Order) -> None:
        async with gate:
            await store.save(order, expected_version=0, outbox=[], handled=[])
    await asyncio.gather(*(save(o) for o in orders))


def funded(order: Order, clock: ManualClock) -> Envelope:
    return Envelope.wrap(EscrowFunded(order_id=order.order_id, parties=order.parties, amount=order.total,
                                      currency=order.currency, method=PaymentMethod.CARD),
                         occurred_at=clock.now())


async def publish(kafka: str, topic: str, envelopes: list[Envelope]) -> float:
    """All envelopes in flight at once, as EventPublisher would frame them; returns seconds."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=True)
    await producer.start()
    try:
        start = time.perf_counter()
        sent = [await producer.send(
            topic, envelope.to_bytes(), key=envelope.order_id.encode(),
            headers=[("content-type", b"application/json"), ("event-type", envelope.event_type.encode()),
                     ("event-id", envelope.event_id.encode())]) for envelope in envelopes]
        await asyncio.gather(*sent)
        return time.perf_counter() - start
    finally:
        await producer.stop()


class Counter:
    """Wraps every handler of a consumer to count finished messages and note when."""

    def __init__(self) -> None:
        self.handled = 0
        self.first = self.last = 0.0
        self.done = asyncio.Event()
        self.expected = 0

    def hook(self, runtime: ServiceRuntime) -> None:
        handlers = event_consumer(runtime).handlers
        for event_type, (event_class, handler) in list(handlers.items()):
            handlers[event_type] = (event_class, self._counted(handler))

    def _counted(self, handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def counted(envelope: Any, event: Any) -> Any:
            result = await handler(envelope, event)
            self.last = time.perf_counter()
            self.first = self.first or self.last
            self.handled += 1
            if self.handled >= self.expected:
                self.done.set()
            return result
        return counted


async def run(scenario: Scenario, infra: Servers, args: argparse.Namespace) -> None:
    prefix = run_prefix("consumer")
    database = f"escrow_{prefix}"
    clock = ManualClock()
    client: AsyncMongoClient = AsyncMongoClient(scenario.mongodb_url, tz_aware=True)
    try:
        store = AggregateStore(client[database]["orders"], Order)
        orders = [confirmed_order(f"ord_{prefix[-8:]}{i:08d}", clock.now()) for i in range(args.events)]
        seeding = time.perf_counter()
        envelopes = await scenario.backlog(store, orders)
        seeded = time.perf_counter() - seeding
        topics = Topics(prefix)
        topic = topics.events(Service.PAYMENT if scenario.service == "order" else Service.ORDER)
        await ensure_topics(infra.kafka, topics.all())
        published = await publish(infra.kafka, topic, envelopes)

        runtime = build(scenario.service, settings_class(scenario.service)(
            kafka_bootstrap_servers=infra.kafka, mongodb_url=scenario.mongodb_url,
            mongodb_database=database, topic_prefix=prefix, smtp_host=infra.smtp_host,
            smtp_port=infra.smtp_port), clock)
        counter = Counter()
        counter.expected = len(envelopes)
        counter.hook(runtime)
        cpu = CpuWatch()
        start = time.perf_counter()
        await runtime.start(background_jobs=False)
        try:
            try:
                await asyncio.wait_for(counter.done.wait(), args.seconds)
            except TimeoutError:
                pass
            cpu_line = cpu.report()
        finally:
            await runtime.stop()
        steady = (counter.handled - 1) / (counter.last - counter.first) if counter.handled > 1 else 0.0
        print(f"\n{scenario.name}: {len(envelopes)} messages on {topic} "
              f"(seeded in {seeded:.1f} s, published in {published:.2f} s)")
        print(f"  first handled {counter.first - start:.2f} s after start; "
              f"{counter.handled}/{len(envelopes)} handled in {counter.last - start:.1f} s"
              + ("" if counter.handled == len(envelopes) else f" (stopped after {args.seconds:g} s)"))
        print(f"  {steady:.0f} messages/s (first to last handled), "
              f"{counter.handled / (counter.last - start):.0f} messages/s from start")
        print(f"  {cpu_line}")
    finally:
        await client.drop_database(database)
        await client.close()
        await remove_run(infra, prefix, [])


async def kafka_commit(infra: Servers, args: argparse.Namespace) -> None:
    prefix = run_prefix("consumer")
    topic = Topics(prefix).events(Service.PAYMENT)
    clock = ManualClock()
    await ensure_topics(infra.kafka, [topic])
    try:
        orders = [confirmed_order(f"ord_{prefix[-8:]}{i:08d}", clock.now()) for i in range(args.events)]
        await publish(infra.kafka, topic, [funded(o, clock) for o in orders])
        print(f"\nkafka-commit: {args.events} messages on {topic}, a bare aiokafka consumer, no handler")
        for commit in (True, False):
            consumer = AIOKafkaConsumer(topic, bootstrap_servers=infra.kafka, group_id=f"{prefix}-{commit}",
                                        enable_auto_commit=False, auto_offset_reset="earliest")
            await consumer.start()
            try:
                handled, first = 0, 0.0
                until = time.perf_counter() + args.seconds
                while handled < args.events and time.perf_counter() < until:
                    for records in (await consumer.getmany(timeout_ms=200, max_records=1)).values():
                        first = first or time.perf_counter()
                        handled += len(records)
                        if commit:
                            await consumer.commit()
                elapsed = time.perf_counter() - first
            finally:
                await consumer.stop()
            print(f"  {'commit after every message' if commit else 'no commit':27s} "
                  f"{(handled - 1) / elapsed:8.0f} messages/s ({handled} read)")
    finally:
        await remove_run(infra, prefix, [])


def scenarios(infra: Servers) -> dict[str, Scenario]:
    clock = ManualClock()

    async def distinct_funded(store: AggregateStore[Order], orders: list[Order]) -> list[Envelope]:
        await seed(store, orders)
        return [funded(order, clock) for order in orders]

    async def duplicated_funded(store: AggregateStore[Order], orders: list[Order]) -> list[Envelope]:
        await seed(store, orders[:1])
        return [funded(orders[0], clock)] * len(orders)

    async def orders_placed(store: AggregateStore[Order], orders: list[Order]) -> list[Envelope]:
        return [Envelope.wrap(OrderPlaced(order_id=o.order_id, parties=o.parties, items=o.items,
                                          currency=o.currency, total=o.total, destination=o.destination,
                                          delivery_period_days=o.delivery_period_days),
                              occurred_at=clock.now()) for o in orders]

    found = {
        "order-distinct": Scenario("order-distinct (MONGODB_URL)", "order", infra.mongodb_url, distinct_funded),
        "order-duplicates": Scenario("order-duplicates (MONGODB_URL)", "order", infra.mongodb_url,
                                     duplicated_funded),
        "notify-distinct": Scenario("notify-distinct (MONGODB_URL)", "notify", infra.mongodb_url, orders_placed),
    }
    if infra.strict_mongodb_url:
        found["order-distinct-strict"] = Scenario("order-distinct (mongo-strict)", "order",
                                                  infra.strict_mongodb_url, distinct_funded)
    return found


async def main(args: argparse.Namespace) -> None:
    quiet_logs()
    infra = servers()
    available = scenarios(infra)
    print(f"consumer: {args.events} events per scenario, at most {args.seconds:g} s of consuming each; "
          f"{load_average()}")
    for name in args.scenario or SCENARIOS:
        if name == "kafka-commit":
            await kafka_commit(infra, args)
            continue
        if name not in available:
            print(f"\n{name}: skipped (no MONGODB_STRICT_URL)")
            continue
        await run(available[name], infra, args)
    print(f"\nmemory: {memory_line()}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="messages per scenario (default 1000)")
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="longest consuming time per scenario (default 8)")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS,
                        help="run only this scenario (repeatable; default all)")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
