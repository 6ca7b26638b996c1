"""The chaos run at its small size, as CI runs it: its own Kafka, database and SMTP server
(on ports free at the time, in a run directory of its own, so it shares the machine with the
suite's servers), two replicas of each service, kills, restarts and injected faults; then
every order, ledger, email and dead letter is checked (``tests/chaos/run.py``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.chaos.run import SMALL, run

pytestmark = pytest.mark.realinfra


async def test_the_small_chaos_run_passes() -> None:
    missing = [tool for tool in ("java",) if shutil.which(tool) is None]
    if missing:
        message = f"the chaos run starts its own servers and needs {', '.join(missing)}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    run_dir = Path(tempfile.mkdtemp(prefix="escrow-chaos-ci-"))
    report = await run(SMALL, run_dir, keep=True, progress=False, free_ports=True)
    if report.ok:
        shutil.rmtree(run_dir, ignore_errors=True)
    # The report is the failure message: what failed, and where the servers' and replicas'
    # logs were kept.
    assert report.ok, f"{report.text()}\nlogs kept in {run_dir}/logs"
