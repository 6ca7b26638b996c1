"""The platform as separate processes for the chaos run: its own servers (Kafka, the
database, the SMTP server, started by ``deploy/local/infra.sh`` on ports of its own so it
disturbs nothing else) and N replicas of each service, every replica of a service in one
consumer group. It can kill -9 and restart any of them."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from services.catalogue import SERVICES

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "deploy/local/infra.sh"


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines()
                if line and not line.startswith("#") and "=" in line)


@dataclass
class Replica:
    service: str
    index: int
    port: int
    log: Path
    process: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return f"{self.service}-{self.index}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    run_dir: Path
    replicas_per_service: int = 2
    base_port: int = 29100
    ports: dict[str, int] = field(default_factory=lambda: {
        "KAFKA_PORT": 29092, "KAFKA_CONTROLLER_PORT": 29093, "MONGO_PORT": 29017,
        "SMTP_PORT": 29025, "MAIL_HTTP_PORT": 29080})
    service_env: dict[str, str] = field(default_factory=dict)
    replicas: list[Replica] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    replica_ports: list[int] = field(default_factory=list)  # default: from base_port on
    kills: list[tuple[str, datetime]] = field(default_factory=list)  # replica, when (UTC)

    def use_free_ports(self) -> None:
        """Every server and replica on a port that is free now (held open together, so no
        two are the same)."""
        replicas = len(SERVICES) * self.replicas_per_service
        sockets = [socket.socket() for _ in range(len(self.ports) + replicas)]
        try:
            for s in sockets:
                s.bind(("127.0.0.1", 0))
            free = [s.getsockname()[1] for s in sockets]
        finally:
            for s in sockets:
                s.close()
        self.ports = dict(zip(self.ports, free, strict=False))
        self.replica_ports = free[len(self.ports):]

    # --- the servers -----------------------------------------------------------------------

    @property
    def infra_env(self) -> dict[str, str]:
        return {**os.environ, "ESCROW_RUN_DIR": str(self.run_dir),
                **{k: str(v) for k, v in self.ports.items()}}

    async def _infra(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            "bash", str(INFRA), *args, env=self.infra_env, cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"infra.sh {' '.join(args)} failed:\n{out.decode()[-3000:]}")

    async def start_servers(self) -> dict[str, str]:
        await self._infra("up")
        return read_env(self.run_dir / "infra.env")

    def server_pid(self, name: str) -> int | None:
        path = self.run_dir / "pids" / f"{name}.pid"
        return int(path.read_text().strip()) if path.exists() else None

    def database_server(self) -> str:
        """The pid-file name of the server behind MONGODB_URL."""
        port = read_env(self.run_dir / "infra.env")["MONGODB_URL"].split(":")[2].split("/")[0]
        for name in ("mongo", "mongo-strict", "ferretdb"):
            pid = self.server_pid(name)
            if pid and port in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace(
                    "\0", " "):
                return name
        raise LookupError(f"no server of this run listens on port {port}")

    async def restart_server(self, name: str, down_for: float = 0.0) -> None:
        """kill -9 one server, keep it down ``down_for`` seconds, start it again (infra.sh up
        starts what is missing and waits until it answers)."""
        pid = self.server_pid(name)
        if pid:
            os.kill(pid, signal.SIGKILL)
            self.log.append(f"kill -9 server {name} (pid {pid})")
        await asyncio.sleep(down_for)  # the outage itself, not a synchronisation
        await self._infra("up")
        self.log.append(f"server {name} back (pid {self.server_pid(name)})")

    async def smtp_refuses(self, seconds: float) -> None:
        """The SMTP server answers every mail 451 for ``seconds`` (mailbox.py refuses while
        its ``.refuse`` file exists), and is killed -9 and restarted half-way, while refusing:
        a mail it had taken but not yet acknowledged would be ambiguous to any sender."""
        refuse = Path(read_env(self.run_dir / "infra.env")["MAILBOX_DIR"]) / ".refuse"
        refuse.touch()
        self.log.append(f"server mailbox refuses mail for {seconds:.0f} s")
        try:
            await asyncio.sleep(seconds / 2)  # the outage itself, not a synchronisation
            await self.restart_server("mailbox")
            await asyncio.sleep(seconds / 2)
        finally:
            refuse.unlink()
        self.log.append("server mailbox takes mail again")

    def servers_down(self) -> list[str]:
        """The servers of this run whose process is gone (each must outlive the run)."""
        return [name for name in ("kafka", "mongo", "mailbox")
                if not (pid := self.server_pid(name)) or not Path(f"/proc/{pid}").exists()
                or Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"]

    async def stop_servers(self) -> None:
        await self._infra("down")

    # --- the services ----------------------------------------------------------------------

    def start_services(self, servers: dict[str, str]) -> None:
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        ports = iter(self.replica_ports or range(self.base_port, self.base_port + 1000))
        for service in SERVICES:
            for index in range(self.replicas_per_service):
                replica = Replica(service, index, next(ports), self.run_dir / "logs" / f"{service}-{index}.log")
                self.replicas.append(replica)
        self._servers = servers
        for replica in self.replicas:
            self._spawn(replica, servers)

    def _spawn(self, replica: Replica, servers: dict[str, str]) -> None:
        env = {**os.environ, **servers, **self.service_env, "HTTP_PORT": str(replica.port)}
        with replica.log.open("ab") as log:
            replica.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{replica.service}"], cwd=REPO, env=env,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def of(self, service: str) -> list[Replica]:
        return [r for r in self.replicas if r.service == service]

    async def wait_ready(self, replicas: list[Replica] | None = None, timeout: float = 300) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            for replica in replicas or self.replicas:
                while True:
                    if replica.process and replica.process.poll() is not None:
                        # A replica that cannot start (the broker is down) exits; a supervisor
                        # (Kubernetes, compose's restart policy) starts it again, and so do we.
                        self.log.append(f"{replica.name} exited while starting; started again")
                        await asyncio.sleep(1)
                        self._spawn(replica, self._servers)
                    try:
                        if (await client.get(f"{replica.url}/health/ready")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if loop.time() > deadline:
                        raise TimeoutError(f"{replica.name} not ready after {timeout}s; read {replica.log}")
                    await asyncio.sleep(0.2)

    async def kill_and_restart(self, replica: Replica, down_for: float) -> None:
        assert replica.process is not None
        replica.process.send_signal(signal.SIGKILL)
        replica.process.wait()
        self.kills.append((replica.name, datetime.now(UTC)))
        self.log.append(f"kill -9 {replica.name} (pid {replica.process.pid})")
        await asyncio.sleep(down_for)  # the outage itself, not a synchronisation
        self._spawn(replica, self._servers)
        await self.wait_ready([replica])
        self.log.append(f"{replica.name} ready again (pid {replica.process.pid})")

    async def chaos_monkey(self, kills: int, every: tuple[float, float], rng: random.Random) -> int:
        """Kill -9 a random replica every few seconds and restart it, ``kills`` times; returns
        how many were done."""
        done = 0
        try:
            while done < kills:
                await asyncio.sleep(rng.uniform(*every))  # a random moment, not a synchronisation
                await self.kill_and_restart(rng.choice(self.replicas), down_for=rng.uniform(0.2, 2.0))
                done += 1
        except BaseException as exc:
            self.log.append(f"the monkey stopped after {done} kills: {type(exc).__name__}: {exc}")
            raise
        return done

    def stop_services(self) -> None:
        for replica in self.replicas:
            if replica.process and replica.process.poll() is None:
                replica.process.terminate()
        for replica in self.replicas:
            if replica.process:
                try:
                    replica.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    replica.process.kill()
