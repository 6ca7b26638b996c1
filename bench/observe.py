"""Watching the platform from outside, without touching the services' collections:

- every event on the services' event topics, read by a consumer of our own (no group) with
  the broker's timestamp of when it was produced;
- when each service's consumer group has consumed it: the group's committed offset on that
  partition moving past it (the services commit only after handling), read from the group
  coordinator every ``tick`` seconds. A hop is *produced -> committed by the next service*,
  so its resolution is the tick;
- each mail as the SMTP server accepted it (its index line: ``received_at`` and the event
  id the mail tells of), so mail lag is *event produced -> mail accepted*.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

log = logging.getLogger(__name__)

PRODUCERS = ("order", "payment", "shipping", "dispute")


@dataclass(frozen=True)
class Seen:
    """An event as produced: where it is, when the broker stamped it (epoch seconds)."""

    event_id: str
    event_type: str
    order_id: str
    partition: TopicPartition
    offset: int
    at: float
    size: int


@dataclass(frozen=True)
class Hop:
    order_id: str
    event_type: str
    consumer: str
    seconds: float


@dataclass(frozen=True)
class Mail:
    order_id: str
    event_type: str
    lag: float


class Observer:
    def __init__(self, bootstrap: str, prefix: str, mailbox_dir: Path, tick: float = 0.025) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.tick = tick
        self.topics = [f"{prefix}.{producer}.events" for producer in PRODUCERS]
        self.events: dict[str, Seen] = {}
        self.by_order: dict[str, dict[str, Seen]] = defaultdict(dict)
        self.hops: list[Hop] = []
        self.mails: list[Mail] = []
        self.unmatched_mails = 0
        self._mail_index = mailbox_dir / "index.jsonl"
        self._mail_offset = self._mail_index.stat().st_size if self._mail_index.exists() else 0
        self._pending_mails: list[dict] = []
        self.mail_files: dict[tuple[str, str], str] = {}  # (recipient, step) -> latest file
        self._produced: dict[TopicPartition, list[Seen]] = defaultdict(list)
        self._committed: dict[tuple[str, TopicPartition], int] = {}
        self._hop_cursor: dict[tuple[str, TopicPartition], int] = {}  # next offset to time
        self._groups: dict[str, str] = {}  # group id -> the service it belongs to
        self._waiters: dict[tuple[str, str], list[asyncio.Future[Seen]]] = defaultdict(list)
        self._consumed_waiters: list[tuple[str, Seen, asyncio.Future[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []

    # --- running ---------------------------------------------------------------------

    async def start(self) -> None:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await self.admin.start()
        partitions = [TopicPartition(topic["topic"], p["partition"])
                      for topic in await self.admin.describe_topics(self.topics)
                      for p in topic["partitions"]]
        if not partitions:
            await self.admin.close()
            raise RuntimeError(f"no partitions for {self.topics}: are the services up?")
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                         fetch_max_wait_ms=50)
        await self.consumer.start()
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        self._start_offsets = {tp: await self.consumer.position(tp) for tp in partitions}
        await self._find_groups()
        for group, service in self._groups.items():
            offsets = await self.admin.list_consumer_group_offsets(group, self._coordinator)
            for tp, meta in offsets.items():
                self._committed[(service, tp)] = meta.offset
        self._tasks = [asyncio.create_task(self._read_events(), name="bench-events"),
                       asyncio.create_task(self._watch_commits(), name="bench-commits")]

    def pause(self) -> None:
        """Stops reading; the figures gathered so far stay."""
        for task in self._tasks:
            task.cancel()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.consumer.stop()
        await self.admin.close()

    async def _find_groups(self) -> None:
        groups = [g[0] for g in await self.admin.list_consumer_groups()]
        self._groups = {g: g.removeprefix(f"{self.prefix}-") for g in groups
                        if g.startswith(f"{self.prefix}-")}
        some = next(iter(self._groups), f"{self.prefix}-order")
        self._coordinator = await self.admin.find_coordinator(some)

    async def _read_events(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    self._on_event(tp, record)

    def _on_event(self, tp: TopicPartition, record) -> None:
        try:
            head = json.loads(record.value)
            seen = Seen(head["event_id"], head["event_type"], head["order_id"], tp, record.offset,
                        record.timestamp / 1000, len(record.value))
        except (ValueError, KeyError, TypeError):
            log.warning("not an envelope at %s@%s", tp, record.offset)
            return
        self.events[seen.event_id] = seen
        self.by_order[seen.order_id].setdefault(seen.event_type, seen)
        self._produced[tp].append(seen)
        for future in self._waiters.pop((seen.order_id, seen.event_type), []):
            if not future.done():
                future.set_result(seen)

    async def _watch_commits(self) -> None:
        loop = asyncio.get_running_loop()
        next_discovery = loop.time() + 2
        while True:
            await asyncio.sleep(self.tick)
            if loop.time() > next_discovery:  # a group that joined late (e.g. after a restart)
                await self._find_groups()
                next_discovery = loop.time() + 5
            groups = list(self._groups.items())
            answers = await asyncio.gather(
                *(self.admin.list_consumer_group_offsets(g, self._coordinator) for g, _ in groups),
                return_exceptions=True)
            now_wall = time.time() - self.tick / 2  # somewhere within the last tick: its middle
            for (_, service), answer in zip(groups, answers, strict=True):
                if isinstance(answer, BaseException):
                    log.warning("offsets of %s: %r", service, answer)
                    continue
                for tp, meta in answer.items():
                    self._on_commit(service, tp, meta.offset, now_wall)
            self._wake_consumed()
            self._read_mails()

    def _on_commit(self, service: str, tp: TopicPartition, offset: int, at: float) -> None:
        if tp not in self._start_offsets:
            return  # a retry topic, or one we do not watch
        key = (service, tp)
        self._committed[key] = max(offset, self._committed.get(key, -1))
        # Only what we have read: a message committed before our reader saw it is timed at
        # a later tick (at most a little late), rather than lost.
        produced = self._produced[tp]
        cursor = max(self._hop_cursor.get(key, 0), self._start_offsets[tp])
        first = bisect.bisect_left(produced, cursor, key=lambda s: s.offset)
        last = bisect.bisect_left(produced, offset, key=lambda s: s.offset)
        for seen in produced[first:last]:
            self.hops.append(Hop(seen.order_id, seen.event_type, service, max(0.0, at - seen.at)))
        if last > first:
            self._hop_cursor[key] = produced[last - 1].offset + 1

    def consumptions(self) -> int:
        return len(self.hops)

    # --- waiting for what the next actor needs -------------------------------------------

    async def event(self, order_id: str, event_type: str) -> Seen:
        """The event, once produced (at once if it already was)."""
        seen = self.by_order.get(order_id, {}).get(event_type)
        if seen is not None:
            return seen
        future: asyncio.Future[Seen] = asyncio.get_running_loop().create_future()
        self._waiters[(order_id, event_type)].append(future)
        return await future

    async def consumed(self, service: str, seen: Seen) -> None:
        """Returns once ``service`` has handled (committed) the event."""
        if self._committed.get((service, seen.partition), -1) > seen.offset:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._consumed_waiters.append((service, seen, future))
        await future

    def _wake_consumed(self) -> None:
        waiting = []
        for service, seen, future in self._consumed_waiters:
            if self._committed.get((service, seen.partition), -1) > seen.offset:
                if not future.done():
                    future.set_result(None)
            elif not future.done():
                waiting.append((service, seen, future))
        self._consumed_waiters = waiting

    # --- mail -----------------------------------------------------------------------------

    async def mail(self, recipient: str, step: str, timeout: float = 60) -> Path:
        """The file of the latest mail to ``recipient`` of that step, once it arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (recipient, step) not in self.mail_files:
            if loop.time() > deadline:
                raise TimeoutError(f"no {step} mail to {recipient} after {timeout:.0f} s")
            await asyncio.sleep(self.tick)
        return self._mail_index.parent / self.mail_files[(recipient, step)]

    def _read_mails(self) -> None:
        if not self._mail_index.exists():
            return
        with self._mail_index.open("rb") as index:
            index.seek(self._mail_offset)
            chunk = index.read()
        complete = chunk.rpartition(b"\n")[0]
        if not complete:
            return
        self._mail_offset += len(complete) + 1
        entries = [json.loads(line) for line in complete.splitlines() if line.strip()]
        for entry in entries:
            for recipient in entry.get("rcpt_tos", ()):
                self.mail_files[(recipient, entry.get("x_escrow_step") or "")] = entry["file"]
        self._pending_mails += [e for e in entries if e.get("x_escrow_event_id")]
        still = []
        for entry in self._pending_mails:
            seen = self.events.get(entry.get("x_escrow_event_id") or "")
            if seen is None:
                still.append(entry)  # its event is not read yet, or it is not one of ours
                continue
            received = datetime.fromisoformat(entry["received_at"].replace("Z", "+00:00")).timestamp()
            self.mails.append(Mail(seen.order_id, seen.event_type, received - seen.at))
        self.unmatched_mails = len(still)
        self._pending_mails = still[-10_000:]
