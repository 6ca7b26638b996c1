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

    def print_top(self, top: int = 5) -> None:
        """Per service: how busy it was, the libraries its busy samples ended in, and the
        project's functions that were on the stack most often (inclusive)."""
        print(f"    profile (py-spy at {self.rate} Hz; stacks in {self.folder}):")
        for name in self.pids:
            try:
                lines = self.output(name).read_text().splitlines()
            except OSError:
                print(f"      {name}: no profile")
                continue
            busy, idle, by_library, project = _tally(lines)
            total = busy or 1
            libraries = ", ".join(f"{lib} {100 * n / total:.0f}%" for lib, n in by_library.most_common(top))
            functions = ", ".join(f"{fn} {100 * n / total:.0f}%" for fn, n in project.most_common(top))
            print(f"      {name}: busy in {100 * busy / max(1, busy + idle):.0f}% of samples; "
                  f"by library: {libraries}\n        on the stack: {functions}")


# Where a sampled thread waits rather than works: the event loop's poll, a worker thread's wait.
IDLE_PLACES = ("selectors.py", "threading.py", "concurrent/futures/thread.py", "queue.py")
ENTRY = ("<module>", "serve", "run", "Server.run", "asyncio_run")


def _tally(lines: list[str]) -> tuple[int, int, Counter[str], Counter[str]]:
    busy = idle = 0
    by_library: Counter[str] = Counter()
    project: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not (stack and count.isdigit()):
            continue
        frames = stack.split(";")
        if frames[-1].partition(" (")[2].startswith(IDLE_PLACES):
            idle += int(count)
            continue
        busy += int(count)
        by_library[_library(frames[-1])] += int(count)
        names = {f.partition(" (")[0] for f in frames if f.partition(" (")[2].startswith(("services/", "shared/"))}
        for function in names - set(ENTRY):
            project[function] += int(count)
    return busy, idle, by_library, project


def _library(frame: str) -> str:
    """``name (aiokafka/conn.py:12)`` -> ``aiokafka``; the standard library by module."""
    path = frame.partition(" (")[2]
    return path.split("/")[0].removesuffix(".py").split(":")[0] or "?"
