"""py-spy sampling each service process from outside while a level runs, and the functions
where each spent its time (self time: the innermost frame of each sample)."""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
from collections import Counter
from pathlib import Path

PY_SPY = Path(sys.executable).with_name("py-spy")


class Profiler:
    def __init__(self, pids: dict[str, int], rate: int = 50) -> None:
        self.pids = pids
        self.rate = rate
        self.folder = Path(tempfile.mkdtemp(prefix="escrow-bench-profile-"))
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._level = 0

    def start(self, seconds: float) -> None:
        self._level += 1
        self._starting = asyncio.gather(*(self._record(name, pid, seconds)
                                          for name, pid in self.pids.items()))

    async def _record(self, name: str, pid: int, seconds: float) -> None:
        self._procs[name] = await asyncio.create_subprocess_exec(
            str(PY_SPY), "record", "--pid", str(pid), "--rate", str(self.rate), "--nonblocking",
            "--duration", str(int(seconds) + 1), "--format", "raw", "--output", str(self.output(name)),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)

    def output(self, name: str) -> Path:
        return self.folder / f"level{self._level}-{name}.txt"

    async def stop(self) -> None:
        await self._starting
        for proc in self._procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)  # py-spy writes what it has, then exits
        await asyncio.gather(*(proc.wait() for proc in self._procs.values()))
        self._procs.clear()

    def print_top(self, top: int = 6) -> None:
        print(f"    profile (py-spy, self time; stacks in {self.folder}):")
        for name in self.pids:
            own: Counter[str] = Counter()
            try:
                lines = self.output(name).read_text().splitlines()
            except OSError:
                print(f"      {name}: no profile")
                continue
            for line in lines:
                stack, _, count = line.rpartition(" ")
                if stack and count.isdigit():
                    own[stack.rpartition(";")[2]] += int(count)
            total = sum(own.values()) or 1
            hot = "; ".join(f"{100 * n / total:.0f}% {frame}" for frame, n in own.most_common(top))
            print(f"      {name} ({total} samples): {hot}")
