"""The bank-transfer scenarios of tests/e2e, run again across the five services in memory."""

from __future__ import annotations

import pytest

from tests.e2e import test_bank_transfers_realinfra as scenarios
from tests.support.memory import InMemoryPlatform


@pytest.fixture
async def platform():
    running = InMemoryPlatform()
    await running.start()
    yield running
    await running.stop()


globals().update({f"{name}_in_memory": test for name, test in vars(scenarios).items()
                  if name.startswith("test_") and callable(test)})
