"""AggregateStore figures on the default MongoDB-wire server (and FerretDB, when it runs), the
outbox's publish rate to Kafka, and what a kill -9 of the server keeps. Prints latencies and
rates; a benchmark, not a test.

    .venv/bin/python -m bench.store --sizes 1000,50000 --seconds 1.5 --messages 1000

For each server the collection of confirmed orders (the order service's document) grows
to each size in turn (the first inserts through the store, timed; the rest as copies of a
stored order, in batches); at each size one writer, then 8 writers on distinct orders, load
and save for ``--seconds``; the sweeps' queries are timed too, and the growth of save p50 and
of each sweep from the smallest to the largest size is printed (the target: under 2x). Then
the whole unit of work (``AggregateRunner.execute``) with 1 and 8 writers, and the publish
rate through ``EventPublisher`` and through a raw aiokafka producer with the same bytes.
FerretDB (``FERRETDB_URL``, ``infra.sh up --with-ferretdb``) is measured up to 2,000 orders.

Last, a server of this run's own (EscrowMongoServer with a data directory, fsync on) takes
``--kill-writes`` acknowledged writes from 8 writers, is killed with SIGKILL, restarts, and
the acknowledged writes it kept are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from shared.contracts.envelope import Envelope
from shared.contracts.events import MessagePosted, OrderEvent
from shared.contracts.parties import Role
from shared.contracts.topics import Service, Topics
from shared.domain.actor import Actor
from shared.infra.clock import ManualClock
from shared.infra.messaging import EventPublisher, ensure_topics, make_broker
from shared.infra.runner import AggregateRunner
from shared.infra.store import AggregateStore, OutboxMessage

from bench.support import confirmed_order, latency, memory_line, quiet_logs, remove_run, run_prefix, servers
from deploy.local.mongo_server import MongoServerProcess, built_libs
from services.order.domain import Order

WRITERS = (1, 8)
TIMED_INSERTS = 500  # per size: the rest of the growth is copied in batches
SWEEP_SAMPLES = 25
FERRETDB_MAX_SIZE = 2_000  # FerretDB scans: larger sizes take minutes per query


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8.0f}/s"


async def grow(store: AggregateStore[Order], orders, ids: list[str], size: int,
               clock: ManualClock) -> list[float]:
    """Insert new orders until there are ``size``: up to ``TIMED_INSERTS`` through the store
    (one writer, timed), the rest as copies of the last one inserted, 1,000 per batch.
    Returns the timed insert latencies."""
    took = []
    timed_until = min(size, len(ids) + TIMED_INSERTS)
    while len(ids) < timed_until:
        order = confirmed_order(f"ord_{uuid.uuid4().hex[:24]}", clock.now())
        start = time.perf_counter()
        await store.save(order, expected_version=0, outbox=[], handled=[])
        took.append(time.perf_counter() - start)
        ids.append(order.order_id)
    if len(ids) < size:
        template = await orders.find_one({"_id": ids[-1]})
        while len(ids) < size:
            batch = [f"ord_{uuid.uuid4().hex[:24]}" for _ in range(min(1_000, size - len(ids)))]
            await orders.insert_many([{**template, "_id": order_id,
                                       "state": {**template["state"], "order_id": order_id}}
                                      for order_id in batch])
            ids.extend(batch)
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
    for _ in range(SWEEP_SAMPLES):
        start = time.perf_counter()
        await store.with_pending_outbox()
        pending.append(time.perf_counter() - start)
        start = time.perf_counter()
        await store.due(clock.now())
        due.append(time.perf_counter() - start)
    return pending, due


async def examined(client: AsyncMongoClient) -> int | None:
    """The documents the server's queries examined so far, if it says (EscrowMongoServer does)."""
    status = await client.admin.command("serverStatus")
    return status.get("metrics", {}).get("queryExecutor", {}).get("scannedObjects")


def p50(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


async def one_server(name: str, url: str, database: str, publisher: EventPublisher,
                     args: argparse.Namespace, sizes: list[int]) -> None:
    clock = ManualClock()
    client: AsyncMongoClient = AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=10_000)
    try:
        orders = client[database]["orders"]
        store = AggregateStore(orders, Order)
        await store.create_indexes("parties.buyer.party_id", "parties.supplier.party_id")
        print(f"\n{name} ({url})")
        ids: list[str] = []
        medians: dict[int, dict[str, float]] = {}
        for size in sizes:
            started = time.perf_counter()
            inserted = await grow(store, orders, ids, size, clock)
            print(f"  {size} orders in the collection (grown in {time.perf_counter() - started:.1f} s)")
            if inserted:
                print(f"    insert (new order)         {latency(inserted)}")
            for writers in WRITERS:
                before = await examined(client)
                loads, saves, elapsed = await load_save(store, ids, writers, args.seconds)
                per_pair = (await examined(client) - before) / len(saves) if before is not None and saves else None
                print(f"    {writers} writer{'s' if writers > 1 else ' '}: {rate(len(saves), elapsed)} load+save")
                print(f"      load                     {latency(loads)}")
                print(f"      save                     {latency(saves)}")
                if per_pair is not None:
                    print(f"      documents examined per load+save (server's count): {per_pair:.1f}")
                if writers == 1:
                    medians[size] = {"save": p50(saves)}
            before = await examined(client)
            pending, due = await sweep_queries(store, clock)
            per_sweep = (await examined(client) - before) / (2 * SWEEP_SAMPLES) if before is not None else None
            print(f"    sweep: with_pending_outbox {latency(pending)}")
            print(f"    sweep: due(now)            {latency(due)}")
            if per_sweep is not None:
                print(f"    documents examined per sweep query (server's count): {per_sweep:.1f}")
            medians[size].update({"with_pending_outbox": p50(pending), "due": p50(due)})
        if len(sizes) > 1:
            small, large = medians[sizes[0]], medians[sizes[-1]]
            print(f"  growth of p50 from {sizes[0]} to {sizes[-1]} orders (target: under 2x): "
                  + ", ".join(f"{what} {large[what] / small[what]:.2f}x" for what in small))
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
        await one_server("default server (MONGODB_URL)", infra.mongodb_url, database, publisher, args,
                         args.sizes)
        ferretdb = os.environ.get("FERRETDB_URL")
        if ferretdb:
            await one_server("FerretDB (FERRETDB_URL)", ferretdb, database, publisher, args,
                             [s for s in args.sizes if s <= FERRETDB_MAX_SIZE] or args.sizes[:1])
        await publish_rates(infra.kafka, topic, publisher, args)
        await kill_9(args.kill_writes)
        print(f"\nmemory: {memory_line()}; ran {time.perf_counter() - began:.0f} s")
    finally:
        await broker.stop()
        await remove_run(infra, prefix, [])


async def kill_9(wanted: int) -> None:
    """Acknowledged writes (inserts, then conditional updates with ``$push``) on a server of
    this run's own, SIGKILL while writers still write, restart, count what was kept."""
    libs = built_libs()
    if libs is None:
        print("\nkill -9: skipped (EscrowMongoServer not built: run `bash deploy/local/infra.sh up`)")
        return
    with tempfile.TemporaryDirectory(prefix="escrow-bench-kill9-") as folder:
        server = MongoServerProcess(libs, ["--data-dir", str(Path(folder) / "data")], Path(folder) / "server.log")
        server.start()
        acknowledged: dict[str, int] = {}
        enough = asyncio.Event()

        async def writer(n: int) -> None:
            client: AsyncMongoClient = AsyncMongoClient(server.url, serverSelectionTimeoutMS=2_000, retryWrites=False)
            orders = client.escrow.orders
            try:
                for i in range(10**9):
                    order_id = f"ord-{n}-{i % 25}"
                    version = acknowledged.get(order_id)
                    if version is None:
                        await orders.insert_one({"_id": order_id, "version": 1, "items": [0]})
                    else:
                        await orders.update_one({"_id": order_id, "version": version},
                                                {"$set": {"version": version + 1}, "$push": {"items": version}})
                    acknowledged[order_id] = (version or 0) + 1
                    if sum(acknowledged.values()) >= wanted:
                        enough.set()
            except Exception:
                return  # killed under this write
            finally:
                await client.close()

        writers = [asyncio.create_task(writer(n)) for n in range(8)]
        started = time.perf_counter()
        await enough.wait()
        elapsed = time.perf_counter() - started
        server.kill9()
        await asyncio.gather(*writers)
        restarted = time.perf_counter()
        server.start()
        recovered = time.perf_counter() - restarted
        client: AsyncMongoClient = AsyncMongoClient(server.url)
        try:
            stored = {d["_id"]: d async for d in client.escrow.orders.find()}
        finally:
            await client.close()
            server.stop()
        writes = sum(acknowledged.values())
        kept = sum(min(acknowledged[k], stored[k]["version"]) for k in acknowledged if k in stored
                   and stored[k]["items"] == list(range(stored[k]["version"])))
        print(f"\nkill -9 (own EscrowMongoServer, fsync, 8 writers, {writes / elapsed:.0f} acknowledged writes/s): "
              f"kept {kept}/{writes} acknowledged writes; restarted and recovered in {recovered:.1f} s")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,50000",
                        help="collection sizes (orders) to measure at, ascending (default 1000,50000)")
    parser.add_argument("--kill-writes", type=int, default=2_000,
                        help="acknowledged writes before the kill -9 (default 2000)")
    parser.add_argument("--seconds", type=float, default=1.5,
                        help="seconds per load+save and runner measurement (default 1.5)")
    parser.add_argument("--messages", type=int, default=1000,
                        help="envelopes per publish measurement (default 1000)")
    args = parser.parse_args()
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
