"""Every saga scenario of tests/e2e, run again across the five services in memory: the
same composition roots, consumers and HTTP APIs, with mongomock for MongoDB, an in-memory
bus for Kafka and a mailbox for SMTP. Fast feedback; the real-server runs are the proof."""

from __future__ import annotations

import pytest

from tests.e2e import test_disputes_realinfra as disputes
from tests.e2e import test_trade_realinfra as trade
from tests.support.memory import InMemoryPlatform


@pytest.fixture
async def platform():
    running = InMemoryPlatform()
    await running.start()
    yield running
    await running.stop()


def _scenarios(module) -> dict:
    return {name: test for name, test in vars(module).items()
            if name.startswith("test_") and callable(test)}


globals().update({f"{name}_in_memory": test for name, test in
                  {**_scenarios(trade), **_scenarios(disputes)}.items()})
