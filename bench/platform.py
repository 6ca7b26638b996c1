"""The platform under test, started as ``make run`` starts it, and what each of its processes
costs.

The servers are deploy/local/infra.sh's (started by ``make bench`` before this runs; its
``ESCROW_RUN_DIR`` and port overrides apply). The five services are separate processes
started by deploy/local/services.sh, on their own ports, topic prefix and database, with
their pid files and logs under ``<run dir>/bench/``: a ``make run`` platform beside it is
left alone, and every run starts from an empty store.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("order", "payment", "shipping", "dispute", "notify")
DEFAULT_PORTS = {"order": 8101, "payment": 8102, "shipping": 8103, "dispute": 8104, "notify": 8105}
PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip().strip("'\"")
    return values


@dataclass
class Platform:
    run_dir: Path
    infra: dict[str, str]
    prefix: str
    ports: dict[str, int]
    log_level: str

    @property
    def services_dir(self) -> Path:
        return self.run_dir / "bench"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ, ESCROW_RUN_DIR=str(self.services_dir), TOPIC_PREFIX=self.prefix,
                   MONGODB_DATABASE=self.prefix, LOG_LEVEL=self.log_level,
                   # its ten buyers place thousands of orders: far past a real buyer's limit
                   ORDERS_PER_PARTY="1000000")
        env.update({f"{name.upper()}_HTTP_PORT": str(port) for name, port in self.ports.items()})
        return env

    def _services_sh(self, command: str) -> None:
        subprocess.run(["bash", str(REPO / "deploy/local/services.sh"), command], env=self._env(),
                       check=True)

    def start(self) -> None:
        self.services_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.run_dir / "infra.env", self.services_dir / "infra.env")
        self._services_sh("down")  # what a crashed earlier run left
        for log in (self.services_dir / "logs").glob("*.log"):
            log.unlink()
        self._services_sh("up")

    def stop(self) -> None:
        self._services_sh("down")

    def processes(self) -> dict[str, int]:
        """Every process of the platform by name: the five services, the servers, this one."""
        found = {name: _pid(self.services_dir / "pids" / f"{name}.pid") for name in SERVICES}
        for pid_file in sorted((self.run_dir / "pids").glob("*.pid")):
            found[pid_file.stem] = _pid(pid_file)
        found["bench (this process)"] = os.getpid()
        return {name: pid for name, pid in found.items() if pid and _alive(pid)}


def platform(prefix: str, ports: dict[str, int], log_level: str) -> Platform:
    """The servers' addresses from ``<run dir>/infra.env``; exits with a hint when they are down."""
    run_dir = Path(os.environ.get("ESCROW_RUN_DIR") or REPO / ".run")
    env_file = run_dir / "infra.env"
    if not env_file.exists():
        sys.exit(f"no {env_file}: start the servers first (`bash deploy/local/infra.sh up`; "
                 "`make bench` does it)")
    return Platform(run_dir, read_env_file(env_file), prefix, ports, log_level)


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").exists()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def run_queue_seconds(pid: int) -> float:
    """Time the process's threads were runnable but waiting for a CPU (schedstat field 2)."""
    waited = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            waited += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass  # the thread ended meanwhile
    return waited / 1e9


def cpu_pressure_seconds() -> float | None:
    """Time in which some runnable task of the machine waited for a CPU (Linux PSI)."""
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return None
    return int(some.rpartition("total=")[2]) / 1e6


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_MIB


@dataclass
class Window:
    """CPU seconds and peak RSS of each process between ``Meter.window()`` and ``close()``."""

    meter: Meter
    began: dict[str, float]
    waited: dict[str, float]
    pressure: float | None
    wall: float = field(default_factory=time.monotonic)
    peak_rss: dict[str, float] = field(default_factory=dict)

    def close(self) -> dict:
        self.meter.sample()
        self.meter.windows.remove(self)
        wall = time.monotonic() - self.wall
        ended, waited, pressure = self.meter.cpu(), self.meter.run_queue(), cpu_pressure_seconds()
        return {"wall_s": round(wall, 2),
                "cpu_pressure_pct": None if pressure is None or self.pressure is None
                else min(100.0, round(100 * (pressure - self.pressure) / wall, 1)),
                "processes": {
            name: {"cpu_s": round(ended[name] - began, 2),
                   "cpu_pct_of_core": round(100 * (ended[name] - began) / wall, 1),
                   "run_queue_wait_s": round(waited.get(name, 0.0) - self.waited.get(name, 0.0), 2),
                   "peak_rss_mib": round(self.peak_rss.get(name, 0.0), 1)}
            for name, began in self.began.items() if name in ended}}


class Meter:
    """Samples /proc every ``interval`` seconds, so each open window sees the peak RSS."""

    def __init__(self, pids: dict[str, int], interval: float = 0.5) -> None:
        self.pids = pids
        self.interval = interval
        self.windows: list[Window] = []
        self._task: asyncio.Task[None] | None = None

    def cpu(self) -> dict[str, float]:
        seen = {}
        for name, pid in self.pids.items():
            try:
                seen[name] = cpu_seconds(pid)
            except OSError:
                pass  # the process ended; its figures stop at its last sample
        return seen

    def run_queue(self) -> dict[str, float]:
        seen = {}
        for name, pid in self.pids.items():
            try:
                seen[name] = run_queue_seconds(pid)
            except OSError:
                pass
        return seen

    def sample(self) -> None:
        for name, pid in self.pids.items():
            try:
                rss = rss_mib(pid)
            except OSError:
                continue
            for window in self.windows:
                window.peak_rss[name] = max(window.peak_rss.get(name, 0.0), rss)

    def window(self) -> Window:
        window = Window(self, self.cpu(), self.run_queue(), cpu_pressure_seconds())
        self.windows.append(window)
        self.sample()
        return window

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="bench-meter")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
