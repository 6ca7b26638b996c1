"""The unit of work every service uses: load an order's aggregate, apply one action,
save the new state with the messages it produced (the outbox) and the id of the event
that caused it (the inbox), then publish.

- Idempotent consumption: an event whose id the aggregate has handled takes no effect.
- Outbox: messages are saved with the state; ``publish_pending`` sends them after the
  save and again from a periodic sweep, so a crash in between loses nothing (consumers
  drop the duplicates a retry may produce).
- Stored deadlines: ``sweep_deadlines`` fires what is due by the injected clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from prometheus_client import CollectorRegistry

from shared.contracts.envelope import Envelope
from shared.domain.aggregate import Aggregate
from shared.infra import context, telemetry
from shared.infra.clock import Clock
from shared.infra.store import DEADLINES, AggregateStore, ConcurrencyConflict, OutboxMessage
from shared.infra.sweep import Sweep, jittered

log = logging.getLogger(__name__)

A = TypeVar("A", bound=Aggregate)

# Publishes one envelope (JSON) keyed by order id; raises if the broker did not take it.
Publish = Callable[[OutboxMessage], Awaitable[None]]

MAX_CONFLICT_RETRIES = 20


class Action(Protocol[A]):
    def __call__(self, aggregate: A | None, now: datetime) -> A | None: ...


# A change to an existing aggregate (its return value is ignored), and what to do when
# there is none: ignore (None), raise this error, or create one at this time.
Step = Callable[[A, datetime], object]
Missing = BaseException | Callable[[datetime], A] | None


class _KeyedLocks:
    """One asyncio lock per order, dropped when nobody holds or waits for it. Serialises
    work on one order inside a process; the versioned save covers other processes."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = defaultdict(int)

    @asynccontextmanager
    async def __call__(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]


class AggregateRunner(Generic[A]):
    def __init__(self, store: AggregateStore[A], clock: Clock,
                 publish: Publish, *, metrics: CollectorRegistry | None = None,
                 service: str | None = None) -> None:
        self.store = store
        self.service = service or store.aggregate_type.__name__.lower()
        self.clock = clock
        self._publish = publish
        self._locks = _KeyedLocks()
        self.metrics = metrics
        self.deadline_sweep = Sweep(f"{store.aggregate_type.__name__.lower()}-deadlines",
                                    store.queue(DEADLINES), self._fire_deadlines, clock,
                                    registry=metrics)

    async def get(self, order_id: str) -> A | None:
        loaded = await self.store.load(order_id)
        return loaded.aggregate if loaded else None

    async def execute(self, order_id: str, action: Action[A], *, cause: Envelope | None = None,
                      doing: str = "command") -> A | None:
        """Run ``action`` on the order's aggregate (``None`` if there is none yet).

        The action returns the aggregate to save, or ``None`` when there is nothing to
        save. It may raise a ``DomainError``; then nothing is saved. With ``cause`` (the
        consumed event) the action runs at most once per event id. It runs in the trade's
        trace (``doing`` names its span when one is needed: shared/infra/telemetry.py).
        """
        with context.bound(order_id=order_id), ExitStack() as in_trade:
            async with self._locks(order_id):
                saved = await self._execute_locked(order_id, action, cause, in_trade, doing)
                if saved is not None:
                    await self._publish_saved(*saved)
        return saved[0] if saved is not None else None

    async def change(self, order_id: str, step: Step[A], *, cause: Envelope | None = None,
                     missing: Missing[A] = None) -> A | None:
        """Apply ``step`` to the order's aggregate and save it if its state changed (the
        one rule for "changed": the state differs from the loaded one).

        ``missing`` says what happens when there is no aggregate yet: ``None`` ignores the
        call (returns ``None``), an exception is raised, a function of the time creates
        the aggregate, and ``step`` is applied to it. Returns the aggregate as it is now,
        saved or unchanged, so the caller needs no second read.
        """
        current: list[A] = []

        def action(aggregate: A | None, now: datetime) -> A | None:
            created = aggregate is None
            if aggregate is None:
                if missing is None:
                    return None
                if isinstance(missing, BaseException):
                    raise missing
                aggregate = missing(now)
            before = None if created else aggregate.model_dump()
            step(aggregate, now)
            current[:] = [aggregate]
            return aggregate if created or aggregate.model_dump() != before else None

        saved = await self.execute(order_id, action, cause=cause)
        return saved if saved is not None else (current[0] if current else None)

    async def _execute_locked(self, order_id: str, action: Action[A], cause: Envelope | None,
                              in_trade: ExitStack, doing: str
                              ) -> tuple[A, list[OutboxMessage], bool] | None:
        """Load, act, save; the saved aggregate, its new outbox messages, and whether older
        messages were still waiting in the outbox. From the first load on, the work runs in
        the trade's trace (``in_trade`` closes it when the caller is done publishing)."""
        for attempt in range(MAX_CONFLICT_RETRIES):
            loaded = await self.store.load(order_id)
            if attempt == 0 and loaded is not None:
                in_trade.enter_context(telemetry.within(
                    loaded.trace, f"{self.store.aggregate_type.__name__.lower()} {doing}",
                    service=self.service, escrow__order_id=order_id))
            if cause is not None and loaded is not None and cause.event_id in loaded.handled:
                log.info("event %s already handled for order %s", cause.event_id, order_id)
                return None
            now = self.clock.now()
            result = action(loaded.aggregate if loaded else None, now)
            if result is None:
                return None
            if result.order_id != order_id:  # a permanent fault: never retried, never saved
                raise ValueError(f"an action on order {order_id} returned order {result.order_id}")
            envelopes = [
                Envelope.wrap(
                    event, occurred_at=now,
                    correlation_id=(cause.correlation_id if cause
                                    else context.current_correlation_id()),
                    causation_id=cause.event_id if cause else None,
                    traceparent=telemetry.current_traceparent())
                for event in result.pull_events()
            ]
            handled = (loaded.handled if loaded else []) + ([cause.event_id] if cause else [])
            # The first save of an order keeps the context it was created in: the trade's.
            trace = (loaded.trace if loaded else None) or telemetry.current_traceparent()
            try:
                await self.store.save(result, expected_version=loaded.version if loaded else 0,
                                      outbox=envelopes, handled=handled, trace=trace)
            except ConcurrencyConflict:
                log.info("order %s changed while saving; retrying", order_id)
                continue
            return (result, [OutboxMessage.of(e) for e in envelopes],
                    loaded.outbox_pending if loaded else False)
        raise ConcurrencyConflict(f"order {order_id}: gave up after {MAX_CONFLICT_RETRIES} conflicts")

    async def _publish_saved(self, aggregate: A, messages: list[OutboxMessage], older: bool) -> None:
        """Publish what was just saved from memory, then mark it published in one write.
        When older messages still wait (an earlier publish failed), they must go first:
        then the whole outbox is read and published in order."""
        if older:
            await self._publish_outbox(aggregate.order_id)
        elif messages:
            await self._publish_messages(aggregate.order_id, messages)

    async def _publish_messages(self, order_id: str, messages: list[OutboxMessage]) -> int:
        published: list[OutboxMessage] = []
        try:
            for message in messages:
                await self._publish(message)
                published.append(message)
        except Exception:
            log.exception("publishing the outbox of order %s failed; the sweep retries it", order_id)
        if published or not messages:  # nothing left: make sure the sweep stops looking
            await self.store.mark_published(order_id, published)
        return len(published)

    async def _publish_outbox(self, order_id: str) -> int:
        return await self._publish_messages(order_id, await self.store.outbox(order_id))

    async def publish_pending(self, order_id: str) -> int:
        """Publish the order's outbox in order; what fails stays for the next sweep."""
        async with self._locks(order_id):
            return await self._publish_outbox(order_id)

    async def sweep_outbox(self) -> int:
        published = 0
        for order_id in await self.store.with_pending_outbox():
            try:
                published += await self.publish_pending(order_id)
            except Exception:  # one order's trouble never stops the others
                log.exception("publishing the outbox of order %s failed; the sweep retries it",
                              order_id)
        return published

    async def sweep_deadlines(self) -> int:
        """Fire the stored deadlines that are due, earliest first, each order on its own;
        returns how many orders were touched."""
        return await self.deadline_sweep()

    async def _fire_deadlines(self, order_id: str) -> int:
        def fire(aggregate: A | None, now: datetime) -> A | None:
            if aggregate is None:
                return None
            aggregate.run_due_deadlines(now)
            return aggregate

        return 1 if await self.execute(order_id, fire, doing="deadlines") is not None else 0


async def run_periodically(name: str, interval: float, job: Callable[[], Awaitable[int]]) -> None:
    """Run ``job`` about every ``interval`` seconds (jittered: replicas drift apart) until
    cancelled; a failure is logged and the loop goes on (the next round retries)."""
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("periodic job %s failed; retrying in about %.1fs", name, interval)
        await asyncio.sleep(jittered(interval))
