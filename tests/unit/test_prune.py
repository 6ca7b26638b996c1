"""``infra.sh prune`` removes only what finished test runs left behind: a run whose topics
saw no new partition for longer than the limit, never one still writing, nor anything that
is not a test run's."""

from __future__ import annotations

import os
import time
from pathlib import Path

from deploy.local.prune import idle_runs


def partition(data_dir: Path, name: str, age_s: float) -> None:
    path = data_dir / name
    path.mkdir()
    at = time.time() - age_s
    os.utime(path, (at, at))


def test_only_test_runs_idle_for_longer_than_the_limit_are_pruned(tmp_path: Path):
    partition(tmp_path, "t0123abcd.order.events-0", 3600)
    partition(tmp_path, "t0123abcd.order.events-1", 3600)
    partition(tmp_path, "t4567cdef.payment.retry-0", 3600)
    partition(tmp_path, "t4567cdef.payment.events-2", 5)  # the same run, still creating topics
    partition(tmp_path, "escrow.order.events-0", 3600)  # not a test run's
    partition(tmp_path, "__consumer_offsets-7", 3600)
    idle, active = idle_runs(tmp_path, older_than_s=1800)
    assert idle == {"t0123abcd"} and active == {"t4567cdef"}
