"""Sweeps are fair and isolated: oldest due first, a bounded number per tick, one failing
item never stops the others, failures are backed off with a stored next attempt, and
failing items are visible (a metric and a query)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from shared.contracts.parties import Parties, Party
from shared.contracts.trade import Carrier, Logistics, ShippingMethod
from shared.infra.clock import ManualClock
from shared.infra.runner import AggregateRunner
from shared.infra.store import DEADLINES
from shared.infra.sweep import SWEEP_LEASE, MongoSweepQueue, Sweep, jittered, retry_delay

from services.dispute.domain import BuyerProtection
from services.order.domain import Order
from services.payment.domain import Escrow
from services.shipping.domain import Shipment
from tests.support.memory_mongo import MemoryAggregateStore, MemoryCollection, memory_collection

PARTIES = Parties(buyer=Party(party_id="buyer-1", name="Buyer", email="buyer@example.com"),
                  supplier=Party(party_id="supplier-1", name="Supplier", email="supplier@example.com"))
LOGISTICS = Logistics(shipping_method=ShippingMethod.AIR_FREIGHT, carrier=Carrier.DHL)


def documents(clock: ManualClock, ids: list[str], **more: dict) -> MemoryCollection:
    """One document per id, due one minute apart in the given order (then ``more`` by id)."""
    docs = memory_collection("work")
    docs.insert(*[{"_id": key, "due": {"work": clock.now() - timedelta(minutes=len(ids) - i)}}
                  for i, key in enumerate(ids)], *[{"_id": key, **doc} for key, doc in more.items()])
    return docs


async def done(docs: MemoryCollection, key: str) -> None:
    """The work on ``key`` is done: no longer due."""
    await docs.update_one({"_id": key}, {"$set": {"due.work": None}})


async def test_oldest_due_first_and_bounded_per_tick():
    clock = ManualClock()
    docs = documents(clock, ["a", "b", "c", "d"], later={"due": {"work": clock.now() + timedelta(hours=1)}},
                     idle={"due": {"work": None}})
    tried: list[str] = []

    async def attempt(key: str) -> int:
        tried.append(key)
        await done(docs, key)
        return 1

    sweep = Sweep("work", MongoSweepQueue(docs, "work"), attempt, clock, limit=3)
    assert await sweep() == 3 and tried == ["a", "b", "c"]
    assert await sweep() == 1 and tried[3:] == ["d"]
    assert await sweep() == 0


async def test_failing_items_never_starve_the_others_and_are_backed_off():
    clock = ManualClock()
    docs = documents(clock, ["bad-1", "bad-2", "bad-3", "good"])
    tried: list[str] = []

    async def attempt(key: str) -> int:
        tried.append(key)
        if key.startswith("bad"):
            raise RuntimeError(f"{key} is broken")
        await done(docs, key)
        return 1

    registry = CollectorRegistry()
    queue = MongoSweepQueue(docs, "work")
    sweep = Sweep("work", queue, attempt, clock, limit=3, registry=registry)
    await sweep()  # the three oldest fail; first retry is on the next tick
    await sweep()  # they fail again: now backed off
    await sweep()
    assert "good" in tried
    assert docs.documents()["good"]["due"]["work"] is None

    failing = {item.id: item for item in await queue.failing()}
    assert set(failing) == {"bad-1", "bad-2", "bad-3"}
    assert failing["bad-1"].failures == 2 and failing["bad-1"].error == "RuntimeError: bad-1 is broken"
    assert failing["bad-1"].next_attempt_at == clock.now() + retry_delay(2)
    assert registry.get_sample_value("escrow_sweep_failing_items", {"sweep": "work"}) == 3
    assert registry.get_sample_value("escrow_sweep_failures_total", {"sweep": "work"}) == 6

    tried.clear()
    assert await sweep() == 0 and tried == []  # backed off: nothing is tried before its time
    clock.advance(retry_delay(2))
    await sweep()
    assert sorted(tried) == ["bad-1", "bad-2", "bad-3"]


async def test_an_item_held_by_another_sweeper_is_left_alone_until_its_lease_expires():
    """Two replicas sweep one queue: while one holds an item (or crashed holding it) the
    other skips it; once the lease has expired the item is taken again, exactly once."""
    clock, lease_clock = ManualClock(), ManualClock()
    docs = documents(clock, ["a", "b"])
    handled: list[tuple[str, str]] = []

    def sweeper(name: str, crash_on: str | None = None) -> Sweep:
        async def attempt(key: str) -> int:
            if key == crash_on:
                raise asyncio.CancelledError  # the process dies mid-attempt: the lease stays
            handled.append((name, key))
            await done(docs, key)
            return 1
        return Sweep("work", MongoSweepQueue(docs, "work"), attempt, clock, lease_clock=lease_clock)

    with pytest.raises(asyncio.CancelledError):
        await sweeper("crashed", crash_on="a")()
    survivor = sweeper("survivor")
    assert await survivor() == 1 and handled == [("survivor", "b")]  # "a" is the crashed one's
    lease_clock.advance(SWEEP_LEASE - timedelta(seconds=1))
    assert await survivor() == 0
    lease_clock.advance(timedelta(seconds=1))  # expired: the item is taken over
    assert await survivor() == 1 and handled == [("survivor", "b"), ("survivor", "a")]
    assert "work" not in docs.documents()["a"]["lease"]  # released after the attempt
    assert await survivor() == 0


async def test_a_sweeper_skips_an_item_another_one_handled_since_it_read_the_due_items():
    clock = ManualClock()
    docs = documents(clock, ["a"])
    queue = MongoSweepQueue(docs, "work")
    [item] = await queue.due(clock.now(), 10)
    assert await queue.claim(item, clock.now(), "first", clock.now(), clock.now() + SWEEP_LEASE)
    await done(docs, "a")  # the first handled it ...
    await queue.release(item, "first")  # ... and let go
    assert not await queue.claim(item, clock.now(), "second", clock.now(), clock.now() + SWEEP_LEASE)


def test_periods_are_jittered_within_a_fifth_either_way():
    assert jittered(10.0, rand=lambda: 0.0) == pytest.approx(8.0)
    assert jittered(10.0, rand=lambda: 0.5) == pytest.approx(10.0)
    assert jittered(10.0, rand=lambda: 1.0) == pytest.approx(12.0)
    assert len({jittered(10.0) for _ in range(20)}) > 1


async def test_an_item_that_recovers_is_no_longer_failing():
    clock = ManualClock()
    docs = documents(clock, ["flaky"])
    calls = 0

    async def attempt(key: str) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("provider away")
        await done(docs, key)
        return 1

    registry = CollectorRegistry()
    queue = MongoSweepQueue(docs, "work")
    sweep = Sweep("work", queue, attempt, clock, registry=registry)
    assert await sweep() == 0
    assert [item.id for item in await queue.failing()] == ["flaky"]
    assert await sweep() == 1
    assert await queue.failing() == []
    assert registry.get_sample_value("escrow_sweep_failing_items", {"sweep": "work"}) == 0


async def test_one_order_whose_deadline_fails_does_not_stop_the_deadline_sweep():
    """The sweep used to stop at the first order that failed; the others waited for ever."""
    clock = ManualClock()

    async def publish(message) -> None:
        return None

    store = MemoryAggregateStore(Shipment)
    runner = AggregateRunner(store, clock, publish)
    for order_id in ("ord-broken", "ord-fine"):
        await runner.execute(order_id, lambda s, now, o=order_id: Shipment.expect(o, PARTIES, LOGISTICS, 5, now))
        await runner.execute(order_id, lambda s, now: s.escrow_funded(now, now, timedelta(days=1)) and s)
    await store.collection.update_one({"_id": "ord-broken"}, {"$set": {
        "state.deadlines.no_such_rule": (clock.now() - timedelta(days=1)).isoformat(),
        f"due.{DEADLINES}": clock.now() - timedelta(days=1)}})  # the oldest due
    clock.advance(timedelta(days=6))

    assert await runner.sweep_deadlines() == 1
    fine = await runner.get("ord-fine")
    assert fine.status.value == "deadline_missed"
    [failing] = await store.queue(DEADLINES).failing()
    assert failing.id == "ord-broken" and "no_such_rule" in failing.error


@pytest.mark.parametrize("aggregate_type", [Order, Shipment, BuyerProtection, Escrow],
                         ids=lambda t: t.__name__)
def test_an_unknown_stored_deadline_raises_in_every_service(aggregate_type):
    """A stored deadline nobody handles is a data fault (the dispute service dropped it)."""
    now = ManualClock().now()
    aggregate = aggregate_type.model_construct(order_id="ord-1", parties=PARTIES, history=[],
                                               deadlines={"no_such_rule": now})
    with pytest.raises(LookupError, match="no_such_rule"):
        aggregate.run_due_deadlines(now)
