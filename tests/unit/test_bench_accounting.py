"""The benchmark's bookkeeping, which its figures rest on: a hop is timed once per consuming
service, from what that service's committed offset passed; percentiles by nearest rank; a
profile's busy samples told from the event loop waiting."""

from __future__ import annotations

from pathlib import Path

from aiokafka import TopicPartition

from bench.observe import Observer, Seen
from bench.profile import _tally
from bench.report import percentile

TP = TopicPartition("p.order.events", 0)


def observer_with(*offsets: int, start: int = 10) -> Observer:
    observer = Observer("unused:9092", "p", Path("/nonexistent"))
    observer._start_offsets = {TP: start}
    for offset in offsets:
        observer._on_event(TP, type("Record", (), {
            "value": b'{"event_id": "e%d", "event_type": "order.placed", "order_id": "o%d"}'
                     % (offset, offset),
            "offset": offset, "timestamp": 1000 * offset})())
    return observer


def test_a_commit_times_each_message_it_passes_once_per_service() -> None:
    observer = observer_with(10, 11, 12)

    observer._on_commit("payment", TP, 12, at=20.0)  # handled 10 and 11, not 12
    observer._on_commit("payment", TP, 12, at=21.0)  # the same offset again: nothing new
    observer._on_commit("notify", TP, 13, at=22.0)

    assert [(h.consumer, h.order_id, h.seconds) for h in observer.hops] == [
        ("payment", "o10", 10.0), ("payment", "o11", 9.0),
        ("notify", "o10", 12.0), ("notify", "o11", 11.0), ("notify", "o12", 10.0)]


def test_a_commit_past_messages_not_read_yet_times_them_when_they_are() -> None:
    observer = observer_with(10)
    observer._on_commit("order", TP, 12, at=15.0)
    observer._on_event(TP, type("Record", (), {
        "value": b'{"event_id": "e11", "event_type": "order.placed", "order_id": "o11"}',
        "offset": 11, "timestamp": 11_000})())

    observer._on_commit("order", TP, 12, at=16.0)

    assert [(h.order_id, h.seconds) for h in observer.hops] == [("o10", 5.0), ("o11", 5.0)]


def test_waiting_for_a_consumer_ends_once_its_commit_passed_the_event() -> None:
    observer = observer_with(10)
    seen: Seen = observer.events["e10"]
    observer._on_commit("dispute", TP, 10, at=1.0)
    assert observer._committed[("dispute", TP)] <= seen.offset
    observer._on_commit("dispute", TP, 11, at=2.0)
    assert observer._committed[("dispute", TP)] > seen.offset


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50.0, 99.0, 100.0)
    assert percentile([], 50) is None


def test_a_profile_counts_the_event_loop_poll_as_idle() -> None:
    busy, idle, libraries, project = _tally([
        "<module> (services/order/__main__.py:3);EpollSelector.select (selectors.py:468) 7",
        "<module> (services/order/__main__.py:3);AggregateRunner.execute (shared/infra/runner.py:80);"
        "insert_one (pymongo/asynchronous/collection.py:9) 3",
    ])
    assert (busy, idle) == (3, 7)
    assert libraries == {"pymongo": 3}
    assert project == {"AggregateRunner.execute": 3}
