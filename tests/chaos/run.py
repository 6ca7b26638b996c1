"""The chaos run: many trades on every path at once, against the five services running as
separate processes with two replicas each, while replicas are killed -9 and restarted, the
broker and the database are restarted, the SMTP server is down for a while, and duplicated
and malformed messages are injected. Then every order, ledger, email and dead letter is
checked. ``python -m tests.chaos --help``; the small size runs in CI
(``tests/chaos/test_chaos_realinfra.py``)."""

from __future__ import annotations

import asyncio
import email.policy
import itertools
import json
import os
import random
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared.contracts.parties import Role
from shared.contracts.topics import Service, Topics

from tests.chaos.cluster import Cluster
from tests.chaos.remote import OffsetClock, RemotePlatform, TailingMailbox
from tests.chaos.scenarios import AGENT, SCENARIOS, Expected, Scenario
from tests.support import platform as platform_support
from tests.support.platform import eventually
from tests.support.trade import Trade

MARKER = "chaos-malformed"


@dataclass
class Size:
    trades: int = 200
    concurrency: int = 60
    kills: int = 24
    smtp_outage: float = 60.0
    restart_broker: bool = True
    restart_database: bool = True
    malformed: int = 10
    duplicates: int = 30
    seed: int = 7


SMALL = Size(trades=26, concurrency=26, kills=5, smtp_outage=10.0, malformed=4, duplicates=10)


class Later:
    """Where deadline paths wait until the run moves the clock; counts who waits. A trade
    waiting here gives its place in ``gate`` to another (or the waiting ones, more than the
    gate holds, would keep the others out forever)."""

    def __init__(self, gate: asyncio.Semaphore) -> None:
        self.event = asyncio.Event()
        self.gate = gate
        self.waiting = 0

    async def wait(self) -> None:
        self.waiting += 1
        self.gate.release()
        try:
            await self.event.wait()
        finally:
            await self.gate.acquire()

    def is_set(self) -> bool:
        return self.event.is_set()


@dataclass
class Outcome:
    trade: Trade
    scenario: str
    expected: Expected | None = None
    error: str | None = None


@dataclass
class Report:
    size: Size
    outcomes: list[Outcome] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    def text(self) -> str:
        lines = [f"chaos: {self.size.trades} trades, {len(SCENARIOS)} paths, "
                 f"2 replicas per service; seed {self.size.seed}"]
        lines += [f"  {k}: {v}" for k, v in self.figures.items()]
        lines.append(f"  failures: {len(self.failures)}")
        lines += [f"    - {f}" for f in self.failures[:60]]
        if len(self.failures) > 60:
            lines.append(f"    ... and {len(self.failures) - 60} more")
        lines.append("chaos: " + ("PASSED" if self.ok else "FAILED"))
        return "\n".join(lines)


async def play(trade: Trade, scenario: Scenario, later: Later, gate: asyncio.Semaphore) -> Outcome:
    outcome = Outcome(trade, scenario.__name__)
    async with gate:
        try:
            outcome.expected = await scenario(trade, later)  # type: ignore[arg-type]
        except Exception as exc:  # reported per trade; the run goes on with the others
            outcome.error = f"{type(exc).__name__}: {exc}"[:600]
    return outcome


# --- faults -----------------------------------------------------------------------------

async def inject_malformed(producer: AIOKafkaProducer, sources: list[str], count: int) -> int:
    """Malformed messages on every event topic: half not JSON, half JSON that is no event."""
    for n in range(count):
        topic = sources[n % len(sources)]
        body = (b"{not json " + f"{MARKER}-{n}".encode()) if n % 2 else json.dumps(
            {"event_type": "order.placed", "marker": f"{MARKER}-{n}"}).encode()
        await producer.send_and_wait(topic, body, key=f"{MARKER}-{n}".encode())
    return count


async def read_events(kafka: str, parts: list[TopicPartition], wanted: int,
                      timeout: float) -> list[ConsumerRecord]:
    """Real events of the event topics, read from their first offsets until ``wanted`` were
    seen (the trades keep publishing, so waiting a little finds more); fails at the deadline."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False)
    await consumer.start()
    events: list[ConsumerRecord] = []
    try:
        consumer.assign(parts)
        for part in parts:
            consumer.seek(part, 0)  # explicit offsets: no group, no reset policy, no rebalance
        deadline = asyncio.get_running_loop().time() + timeout
        while len(events) < wanted:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{len(events)} events on the event topics after {timeout:.0f} s, "
                                   f"{wanted} wanted for the duplicates")
            batch = await consumer.getmany(*parts, timeout_ms=1000)
            events += [m for ms in batch.values() for m in ms if MARKER.encode() not in (m.value or b"")]
    finally:
        await consumer.stop()
    return events


async def inject(kafka: str, topics: Topics, size: Size, rng: random.Random) -> dict[str, int]:
    """Malformed messages, and copies of real events (a redelivery: each consumer must see
    them as already handled)."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    try:
        sources = topics.all_event_topics()
        malformed = await inject_malformed(producer, sources, size.malformed)
        parts = [TopicPartition(topic, p) for topic in sources for p in await producer.partitions_for(topic)]
        events = await read_events(kafka, parts, 3 * size.duplicates, timeout=180)
        for message in rng.sample(events, size.duplicates):
            await producer.send_and_wait(message.topic, message.value, key=message.key,
                                         headers=list(message.headers or []))
    finally:
        await producer.stop()
    return {"malformed": malformed, "duplicated": size.duplicates}


async def faults(cluster: Cluster, kafka: str, topics: Topics, size: Size, rng: random.Random,
                 done: dict[str, object], report: Report) -> None:
    """Every fault the size asks for, while the trades run; the run checks after that they
    were all done (a run cannot prove what it did not do)."""
    monkey = asyncio.create_task(cluster.chaos_monkey(size.kills, (1.0, 4.0), rng))
    try:
        done.update(await inject(kafka, topics, size, rng))
        if size.restart_broker:
            await cluster.restart_server("kafka", down_for=3)
        await cluster.smtp_refuses(size.smtp_outage)
        if size.restart_database:
            await cluster.restart_server(cluster.database_server(), down_for=2)
    except Exception as exc:  # the run cannot prove what it did not do: a failure of the run
        report.failures.append(f"injecting faults failed: {type(exc).__name__}: {exc}")
    try:
        done["kills"] = await monkey
    except Exception as exc:
        report.failures.append(f"killing and restarting replicas failed: {type(exc).__name__}: {exc}")
        done["kills"] = sum(1 for _ in cluster.kills)


# --- checks -----------------------------------------------------------------------------

def check_faults_done(size: Size, done: dict[str, object], cluster: Cluster, report: Report) -> None:
    """The run did every fault it claims, and every server outlived its restart."""
    wanted = {"kills": size.kills, "malformed": size.malformed, "duplicated": size.duplicates}
    short = {k: (done.get(k, 0), v) for k, v in wanted.items() if done.get(k, 0) != v}
    if short:
        report.failures.append(f"faults not done as asked (done, asked): {short}")
    for server in cluster.servers_down():
        report.failures.append(f"server {server} is not running at the end of the run")


async def check_trade(outcome: Outcome, report: Report) -> None:
    trade, expected = outcome.trade, outcome.expected
    name = f"{outcome.scenario} {trade.order_id or '(no order)'}"
    if outcome.error or expected is None:
        report.failures.append(f"{name}: {outcome.error}")
        return

    async def final_state() -> None:
        order = await trade.order()
        assert (order["status"], order["closure_reason"]) == ("closed", expected.closure_reason), (
            order["status"], order["closure_reason"], [e["what"] for e in order["timeline"]][-8:])
        ledger = await trade.ledger()
        got = {k: ledger[k] for k in ("paid_in", "held", "released", "refunded")}
        want = {"paid_in": expected.paid_in, "held": 0, "released": expected.released,
                "refunded": expected.refunded}
        assert ledger["balanced"] and got == want, (got, want)
        assert (order["released_total"], order["refunded_total"]) == (expected.released,
                                                                        expected.refunded), order
    try:
        await eventually(final_state, timeout=240)
    except AssertionError as exc:
        report.failures.append(f"{name}: {exc}"[:700])


@dataclass(frozen=True)
class Received:
    at: datetime
    message_id: str


def received_mails(mailbox: TailingMailbox, order_id: str) -> dict[tuple[str, str], list[Received]]:
    """What the SMTP server kept for one order, per (event, recipient), oldest first."""
    got: dict[tuple[str, str], list[Received]] = defaultdict(list)
    for entry in mailbox.entries_for_order(order_id):
        with (mailbox.directory / entry["file"]).open("rb") as eml:
            headers = BytesHeaderParser(policy=email.policy.default).parse(eml)
        for address in entry["rcpt_tos"]:
            got[(entry.get("x_escrow_event_id", ""), address)].append(
                Received(datetime.fromisoformat(entry["received_at"].replace("Z", "+00:00")),
                         str(headers["Message-ID"])))
    return got


async def check_emails(outcomes: list[Outcome], platform: RemotePlatform, cluster: Cluster,
                       report: Report) -> None:
    """Every email job notify recorded for an order was sent, and the SMTP server got each
    (event, recipient) of the order once: none missing, none unrecorded, never two different
    mails. The one repeat SMTP allows: a notify replica killed -9 after the server took a
    mail and before notify recorded it sends it again when the job's lease runs out, as the
    same mail (same Message-ID, which mail clients show once); such a repeat is accepted only
    with a kill of a notify replica between the two receptions, and counted."""
    notify_kills = [at for name, at in cluster.kills if name.startswith("notify-")]
    repeats: dict[str, int] = {}

    async def all_sent(trade: Trade) -> list[dict]:
        got = received_mails(platform.infra.mailbox, trade.order_id)
        response = await trade.call("notify", "GET", f"/orders/{trade.order_id}/emails", AGENT,
                                    Role.AGENT)
        emails = response.json()
        pending = [(e["step"], e["status"], e["attempts"]) for e in emails if e["status"] != "sent"]
        assert not pending, f"not sent: {pending[:3]}"
        missing = [(e["step"], e["to"]) for e in emails if not got.get((e["event_id"], e["to"]))]
        assert not missing, f"not received: {missing[:3]}"
        extra = set(got) - {(e["event_id"], e["to"]) for e in emails}
        assert not extra, f"received but not recorded: {sorted(extra)[:3]}"
        wrong = []
        for key, mails in got.items():
            if len({m.message_id for m in mails}) > 1:
                wrong.append((key, "different mails", [m.message_id for m in mails]))
            for first, again in itertools.pairwise(mails):
                if not any(first.at <= kill <= again.at for kill in notify_kills):
                    wrong.append((key, "received twice with no notify replica killed between",
                                  first.at.isoformat(), again.at.isoformat()))
        assert not wrong, f"received other than once: {wrong[:3]}"
        repeats[trade.order_id] = sum(len(mails) - 1 for mails in got.values())
        return emails

    async def check(trade: Trade) -> int:
        try:
            emails = await eventually(lambda: all_sent(trade), timeout=240)
        except AssertionError as exc:
            report.failures.append(f"emails of {trade.order_id}: {exc}"[:700])
            return 0
        return len(emails)

    jobs = sum(await asyncio.gather(*(check(o.trade) for o in outcomes if o.trade.order_id)))
    report.figures["emails"] = (f"{jobs} recorded by notify, each received by the SMTP server; "
                                f"{sum(repeats.values())} sent again (same Message-ID) after a notify "
                                f"replica was killed -9 between the server's acceptance and notify's record")


async def behind(consumer: AIOKafkaConsumer, parts: list[TopicPartition],
                 ends: dict[TopicPartition, int]) -> bool:
    return any([await consumer.position(p) < ends[p] for p in parts])


async def check_dead_letters(kafka: str, topics: Topics, injected: int, report: Report) -> None:
    """Every malformed message is in a dead-letter topic with its reason; nothing else is."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=kafka)  # only to read topic metadata
    await consumer.start()
    await producer.start()
    found: dict[str, set[str]] = defaultdict(set)
    try:
        for service in Service:
            topic = topics.dead_letters(service)
            parts = [TopicPartition(topic, p) for p in await producer.partitions_for(topic)]
            if not parts:
                continue
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            while await behind(consumer, parts, ends):
                for messages in (await consumer.getmany(*parts, timeout_ms=1000)).values():
                    for m in messages:
                        headers = {k: v.decode(errors="replace") for k, v in m.headers or []}
                        body = (m.value or b"").decode(errors="replace")
                        marker = next((w for w in body.replace('"', " ").split() if MARKER in w), None)
                        if marker is None or not headers.get("x-dead-letter-reason"):
                            report.failures.append(
                                f"unexpected dead letter in {topic}: "
                                f"{headers.get('x-dead-letter-reason', '(no reason)')[:200]} {body[:200]}")
                        else:
                            found[marker.rstrip("}")].add(str(service))
    finally:
        await consumer.stop()
        await producer.stop()
    if len(found) != injected:
        report.failures.append(f"{injected} malformed messages injected, {len(found)} dead-lettered")
    report.figures["dead letters"] = (f"{len(found)} of {injected} malformed messages, each with its reason "
                                      f"({sum(len(v) for v in found.values())} over the services that "
                                      "consume its topic); nothing else")


# --- the run ----------------------------------------------------------------------------

async def run(size: Size, run_dir: Path | None = None, keep: bool = False,
              progress: bool = True, free_ports: bool = False) -> Report:
    """``free_ports``: servers and replicas on ports free right now instead of the fixed ones
    (29092, 29017, 29025, 29080, 29100...), so the run can share a machine with another."""
    rng = random.Random(size.seed)
    run_dir = run_dir or Path(tempfile.mkdtemp(prefix="escrow-chaos-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    clock_file = run_dir / "clock-offset"
    cluster = Cluster(run_dir, service_env={
        "ESCROW_ENV": "development", "CLOCK_OFFSET_FILE": str(clock_file),
        "OUTBOX_SWEEP_SECONDS": "1", "DEADLINE_SWEEP_SECONDS": "1",
        "NOTIFY_SEND_INTERVAL_SECONDS": "0.5", "INSTRUCTION_SWEEP_SECONDS": "1",
        "DISPUTE_OPENS_AFTER": "0", "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"})
    if free_ports:
        cluster.use_free_ports()
    report = Report(size)
    started = time.monotonic()
    saved = os.environ.get("ESCROW_ENV"), platform_support.DEFAULT_TIMEOUT
    os.environ["ESCROW_ENV"] = "development"  # the driver signs bank notifications with dev keys
    # A party's patience for a step (a mail, a state): under chaos a step may wait out a
    # restart, and a mail sent during the SMTP outage arrives only at notify's next retry,
    # which backs off (5 s, doubling): up to about twice the outage after it began.
    platform_support.DEFAULT_TIMEOUT = max(180.0, 3 * size.smtp_outage + 120)
    try:
        servers = await cluster.start_servers()
        clock = OffsetClock(clock_file)
        cluster.start_services(servers)
        await cluster.wait_ready()
        platform = RemotePlatform(cluster, clock, Path(servers["MAILBOX_DIR"]), size.seed)
        topics = Topics("escrow")
        gate = asyncio.Semaphore(size.concurrency)
        later, done = Later(gate), {}
        plays = [asyncio.create_task(play(Trade(platform), SCENARIOS[i % len(SCENARIOS)], later, gate))
                 for i in range(size.trades)]
        chaos = asyncio.create_task(faults(cluster, servers["KAFKA_BOOTSTRAP_SERVERS"], topics, size,
                                           rng, done, report))
        last = 0.0
        while sum(p.done() for p in plays) + later.waiting < size.trades:
            await asyncio.sleep(0.5)  # progress check of this run's own tasks
            if progress and time.monotonic() - last > 10:
                last = time.monotonic()
                failed = sum(1 for p in plays if p.done() and p.result().error)
                print(f"  {time.monotonic() - started:5.0f} s: {sum(p.done() for p in plays)} trades over "
                      f"({failed} failed), {later.waiting} waiting for their deadline; "
                      f"{len(cluster.kills)} kills; last fault: {cluster.log[-1] if cluster.log else '-'}",
                      flush=True)
        report.figures["before the clock moved"] = f"{time.monotonic() - started:.0f} s"
        clock.advance(timedelta(days=60))
        later.event.set()
        outcomes = await asyncio.gather(*plays)
        report.outcomes = outcomes
        await chaos
        report.figures.update(done)
        check_faults_done(size, done, cluster, report)
        report.figures["server faults"] = "; ".join(line for line in cluster.log if "server" in line)
        await asyncio.gather(*(check_trade(outcome, report) for outcome in outcomes))
        for check in (check_emails(outcomes, platform, cluster, report),
                      check_dead_letters(servers["KAFKA_BOOTSTRAP_SERVERS"], topics,
                                         int(done.get("malformed", 0)), report)):
            try:
                await check
            except Exception as exc:  # a check that cannot run is a failed run, said so
                report.failures.append(f"a check failed to run: {type(exc).__name__}: {exc}")
        report.figures["paths"] = dict(Counter(o.scenario for o in outcomes))
        report.figures["requests failed over"] = (f"{platform.counters.failovers} "
                                                  f"({platform.counters.ambiguous} after sending)")
        report.figures["5xx answers (retried: 502/503/504)"] = dict(Counter(
            e.split(": ", 1)[1].split(" ", 1)[0] for e in platform.counters.server_errors))
        report.figures["duration"] = f"{time.monotonic() - started:.0f} s"
        report.figures["load average (1, 5, 15 min) at the end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
        # 503 while a server restarts is an honest "try again"; a 500 never is.
        for error in [e for e in platform.counters.server_errors
                      if e.split(": ", 1)[1][:3] not in ("502", "503", "504")][:5]:
            report.failures.append(f"a 5xx answer that is no 'try again': {error}")
    finally:
        cluster.stop_services()
        await cluster.stop_servers()
        platform_support.DEFAULT_TIMEOUT = saved[1]
        if saved[0] is None:
            os.environ.pop("ESCROW_ENV", None)
        else:
            os.environ["ESCROW_ENV"] = saved[0]
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    return report
