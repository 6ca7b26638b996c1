"""The chaos run at its small size (python -m tests.chaos runs the full one)."""

from __future__ import annotations

import pytest

from tests.chaos.run import SMALL, run

pytestmark = pytest.mark.realinfra


async def test_every_trade_ends_right_under_kills_restarts_and_injected_faults(infra) -> None:
    report = await run(SMALL)
    print(report.text())
    assert report.ok, report.text()
