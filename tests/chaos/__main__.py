"""python -m tests.chaos [--trades N] [--kills N] [--small] [--keep DIR]"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from tests.chaos.run import SMALL, Report, Size, run


async def until_terminated(work: Coroutine[Any, Any, Report]) -> Report:
    """SIGTERM cancels the run like Ctrl-C does, so it still stops its servers and replicas."""
    task = asyncio.ensure_future(work)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await task


def main() -> None:
    parser = argparse.ArgumentParser(description="Trades on every path under kills, restarts and "
                                     "injected faults; checks every order, ledger, email and dead letter.")
    parser.add_argument("--small", action="store_true", help="the size CI runs")
    for f in dataclasses.fields(Size):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=None)
    parser.add_argument("--run-dir", type=Path, help="keep servers' data and logs here")
    args = parser.parse_args()
    size = dataclasses.replace(SMALL if args.small else Size(), **{
        f.name: getattr(args, f.name) for f in dataclasses.fields(Size)
        if getattr(args, f.name) is not None})
    report = asyncio.run(until_terminated(run(size, args.run_dir, keep=args.run_dir is not None)))
    print(report.text())
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
