"""Whole trades through the five services on the real servers: place, confirm, pay by card,
ship, confirm receipt, until the order is closed. Prints trades per second, latencies (end
to end and per step), the emails sent and the process's memory. A benchmark, not a test.

    .venv/bin/python -m bench.saga --trades 50 --concurrency 10   (default: 30 trades)

All five services run in this process (as in the saga tests), on their own topics and
database, with one manual clock; the actors call the HTTP APIs in process. Each trade waits
for the step the next actor needs, learnt from the consuming service's handler finishing
(hooked in this process, so no polling skews the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.support import (
    CpuWatch,
    current_rss_mib,
    event_consumer,
    latency,
    load_average,
    memory_line,
    peak_rss_mib,
    private_mailbox,
    quiet_logs,
    record_commands,
    remove_run,
    run_prefix,
    servers,
)
from services.catalogue import SERVICES, build, settings_class
from shared.infra.clock import ManualClock
from shared.infra.runtime import ServiceRuntime
from tests.support.infra import Infra
from tests.support.platform import Platform
from tests.support.trade import Trade

# The moments a trade waits for: each is a set of (service, event it handled). Events of
# different producers travel on different topics, unordered: shipping may learn that the
# escrow is funded before it learns the order was confirmed, and expects a dispatch only
# once it knows both.
ESCROW_OPEN = {("payment", "order.confirmed")}
AWAITING_DISPATCH = {("shipping", "order.confirmed"), ("shipping", "payment.escrow_funded")}
DISPATCH_KNOWN = {("dispute", "shipping.shipment_dispatched")}
CLOSED = {("order", "payment.escrow_settled")}
WATCHED = ESCROW_OPEN | AWAITING_DISPATCH | DISPATCH_KNOWN | CLOSED

STEPS = ("place (POST /orders)", "confirm -> escrow open", "card -> awaiting dispatch",
         "ship -> dispatch known to dispute", "receipt -> order closed")


class HandlerWatch:
    """Wraps the services' event handlers to note when a watched (service, event, order)
    was handled; a trade awaits those moments. An entry is dropped once awaited."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._done: dict[tuple[str, str, str], float] = {}
        self._waiting: dict[tuple[str, str, str], asyncio.Future[float]] = {}

    def hook(self, service: str, runtime: ServiceRuntime) -> None:
        handlers = event_consumer(runtime).handlers
        for event_type, (event_class, handler) in list(handlers.items()):
            if (service, event_type) in WATCHED:
                handlers[event_type] = (event_class, self._timed(service, event_type, handler))

    def _timed(self, service: str, event_type: str,
               handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def timed(envelope: Any, event: Any) -> Any:
            result = await handler(envelope, event)
            key = (service, event_type, envelope.order_id)
            now = time.perf_counter()
            waiter = self._waiting.pop(key, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(now)
            else:
                self._done.setdefault(key, now)
            return result
        return timed

    async def handled(self, watched: set[tuple[str, str]], order_id: str) -> float:
        """When the last of the watched events of this order was handled."""
        return max(await asyncio.gather(*(self._one(service, event_type, order_id)
                                           for service, event_type in watched)))

    async def _one(self, service: str, event_type: str, order_id: str) -> float:
        key = (service, event_type, order_id)
        if key in self._done:
            return self._done.pop(key)
        waiter = self._waiting.setdefault(key, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), self.timeout)
        except TimeoutError:
            raise TimeoutError(f"order {order_id}: {service} did not handle {event_type} "
                               f"within {self.timeout:.0f} s") from None


async def one_trade(platform: Platform, watch: HandlerWatch) -> tuple[float, list[float]]:
    """Plays one trade; returns (end-to-end seconds, seconds per step)."""
    trade = Trade(platform)
    start = time.perf_counter()
    order_id = await trade.place()
    placed = time.perf_counter()
    await trade.call("order", "POST", f"/orders/{order_id}/confirm", trade.supplier,
                     body={"logistics": {"shipping_method": "express", "carrier": "dhl"}})
    escrow_open = await watch.handled(ESCROW_OPEN, order_id)
    await trade.pay_by_card()
    awaiting_dispatch = await watch.handled(AWAITING_DISPATCH, order_id)
    await trade.call("shipping", "POST", f"/orders/{order_id}/shipment", trade.supplier, body={
        "carrier": "dhl", "tracking_number": "1234567890",
        "ship_date": platform.clock.now().date().isoformat()})
    dispatch_known = await watch.handled(DISPATCH_KNOWN, order_id)
    await trade.confirm_receipt()
    closed = await watch.handled(CLOSED, order_id)
    marks = [start, placed, escrow_open, awaiting_dispatch, dispatch_known, closed]
    return closed - start, [b - a for a, b in zip(marks, marks[1:], strict=False)]


def build_runtime(name: str, infra: Infra, prefix: str, database: str, clock: ManualClock,
                  sweep_seconds: float | None) -> ServiceRuntime:
    """A service as ``make run`` starts it (its own settings' defaults, sweeps included),
    on this run's topics and database; ``sweep_seconds`` sets every periodic job's interval."""
    sweeps = {} if sweep_seconds is None else {
        "outbox_sweep_seconds": sweep_seconds, "deadline_sweep_seconds": sweep_seconds,
        "notify_send_interval_seconds": sweep_seconds, "instruction_sweep_seconds": sweep_seconds}
    settings_type = settings_class(name)
    settings = settings_type(
        kafka_bootstrap_servers=infra.kafka, mongodb_url=infra.mongodb_url, mongodb_database=database,
        topic_prefix=prefix, smtp_host=infra.smtp_host, smtp_port=infra.smtp_port,
        **{k: v for k, v in sweeps.items() if k in settings_type.model_fields})
    return build(name, settings, clock)


async def consumer_lag(infra: Infra, group: str, topics: list[str]) -> int:
    """Messages on ``topics`` the group has not committed yet."""
    reader = AIOKafkaConsumer(bootstrap_servers=infra.kafka)
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka)
    await reader.start()
    await admin.start()
    try:
        partitions = [TopicPartition(d["topic"], p["partition"])
                      for d in await admin.describe_topics(topics) for p in d["partitions"]]
        ends = await reader.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group)
        return sum(end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items())
    finally:
        await reader.stop()
        await admin.close()


async def emails_sent(platform: Platform, infra: Infra, timeout: float) -> tuple[dict[str, int], float]:
    """Waits (at most ``timeout``) until notify consumed everything and no mail is pending;
    returns the jobs per status and how long it waited."""
    notify = platform.runtimes["notify"]
    emails = notify.mongo[notify.settings.mongodb_database]["emails"]
    start = time.perf_counter()
    while True:
        lag = await consumer_lag(infra, f"{platform.prefix}-notify", event_consumer(notify).sources)
        statuses: dict[str, int] = defaultdict(int)
        async for doc in await emails.aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}]):
            statuses[doc["_id"]] = doc["n"]
        if lag == 0 and not statuses.get("pending") and not statuses.get("sending"):
            return dict(statuses), time.perf_counter() - start
        if time.perf_counter() - start > timeout:
            statuses["not yet consumed by notify"] = lag
            return dict(statuses), time.perf_counter() - start
        await asyncio.sleep(0.2)


async def main(args: argparse.Namespace) -> None:
    quiet_logs()
    infra = servers()
    if args.mongo == "strict":
        if not infra.strict_mongodb_url:
            raise SystemExit("--mongo strict needs MONGODB_STRICT_URL")
        infra.mongodb_url = infra.strict_mongodb_url
    prefix = run_prefix("saga")
    database = f"escrow_{prefix}"
    watch = HandlerWatch(args.step_timeout)
    commands = record_commands()
    async with private_mailbox() as mailbox:
        infra.smtp_port = mailbox.port
        platform = Platform(infra, ManualClock(), prefix=prefix)
        databases = {name: f"{database}_{name}" if args.database_per_service else database
                     for name in SERVICES}
        for name in SERVICES:
            platform.runtimes[name] = build_runtime(name, infra, prefix, databases[name], platform.clock,
                                                    args.sweep_seconds)
            if name != "notify":
                watch.hook(name, platform.runtimes[name])
        setup = time.perf_counter()
        await asyncio.gather(*(r.start() for r in platform.runtimes.values()))
        try:
            sweeps = ("each service's default intervals" if args.sweep_seconds is None
                      else f"every {args.sweep_seconds:g} s")
            print(f"saga: {args.trades} trades, {args.concurrency} at a time, topics {prefix}.*, "
                  f"Kafka {infra.kafka}, MongoDB {infra.mongodb_url} "
                  f"({'a database per service' if args.database_per_service else 'one database'}); "
                  f"periodic jobs at {sweeps}; {load_average()}")
            warm = time.perf_counter()
            for _ in range(args.warmup):
                await one_trade(platform, watch)
            print(f"  services started in {warm - setup:.1f} s; {args.warmup} warm-up trade(s) "
                  f"in {time.perf_counter() - warm:.1f} s (not counted)")
            cpu = CpuWatch()
            commands.recording = True
            await run_trades(platform, watch, args)
            commands.recording = False
            print(cpu.report())
            print("MongoDB commands of the services while the trades ran (most time first):")
            print("\n".join(commands.table(args.trades, "trade")))
            sent_before = mailbox.received()
            statuses, drain = await emails_sent(platform, infra, args.mail_timeout)
            stored = sum(v for k, v in statuses.items() if k != "not yet consumed by notify")
            sent = statuses.pop("sent", 0)
            unsent = {k: v for k, v in statuses.items() if v}
            print(f"emails: {stored} composed ({stored / (args.trades + args.warmup):.1f} per trade), "
                  f"{sent} sent, {mailbox.received()} received by the SMTP server; "
                  + (f"all out {drain:.1f} s after the last trade closed"
                     if not unsent else f"after waiting {drain:.0f} s still {unsent}")
                  + f"; {(mailbox.received() - sent_before) / drain:.1f} mails/s meanwhile")
            print(f"memory: {memory_line()}")
        finally:
            await platform.stop()
            await remove_run(infra, prefix, [(infra.mongodb_url, d) for d in set(databases.values())])


async def run_trades(platform: Platform, watch: HandlerWatch, args: argparse.Namespace) -> None:
    gc.collect()
    rss_before = current_rss_mib()
    totals: list[float] = []
    steps: list[list[float]] = [[] for _ in STEPS]
    began = time.perf_counter()
    done = 0
    while done < args.trades:
        batch = min(args.concurrency, args.trades - done)
        for total, per_step in await asyncio.gather(*(one_trade(platform, watch) for _ in range(batch))):
            totals.append(total)
            for samples, seconds in zip(steps, per_step, strict=True):
                samples.append(seconds)
        done += batch
        if args.verbose:
            print(f"  {done:5d} trades closed after {time.perf_counter() - began:6.1f} s; "
                  f"RSS {current_rss_mib():.1f} MiB")
    elapsed = time.perf_counter() - began
    gc.collect()
    growth = current_rss_mib() - rss_before
    print(f"throughput: {args.trades} trades closed in {elapsed:.1f} s = "
          f"{args.trades / elapsed:.2f} trades/s")
    print(f"order placed -> order closed: {latency(totals)}")
    print("per step (actor's request -> the service the next actor needs has handled it):")
    for name, samples in zip(STEPS, steps, strict=True):
        print(f"  {name:36s} {latency(samples)}")
    print(f"RSS growth: {growth:+.1f} MiB over {args.trades} trades = "
          f"{growth / args.trades * 100:+.1f} MiB per 100 trades "
          f"(peak RSS so far {peak_rss_mib():.1f} MiB)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trades", type=int, default=30, help="trades to play (default 30)")
    parser.add_argument("--concurrency", type=int, default=10,
                        help="trades played at once, batch after batch (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted trades first (default 1)")
    parser.add_argument("--step-timeout", type=float, default=60.0,
                        help="seconds a trade waits for one step before failing (default 60)")
    parser.add_argument("--mail-timeout", type=float, default=10.0,
                        help="seconds to wait for the last mails after the trades (default 10)")
    parser.add_argument("--sweep-seconds", type=float, default=None,
                        help="interval of every periodic job (outbox, deadlines, mail sending, "
                             "payment instructions); default: the services' own defaults")
    parser.add_argument("--mongo", choices=("ferretdb", "strict"), default="ferretdb",
                        help="the services' MongoDB-wire server: FerretDB (MONGODB_URL, what "
                             "`make run` uses; default) or mongo-strict (MONGODB_STRICT_URL)")
    parser.add_argument("--database-per-service", action="store_true",
                        help="each service in its own database (default: one shared database, "
                             "as `make run` does)")
    parser.add_argument("--verbose", action="store_true", help="a line per batch")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
