"""The project's MongoDB-wire server (deploy/local/mongo-java-server, EscrowMongoServer) as a
process of a caller's own, on a free port: for tests and benchmarks that kill it, restart it
or read its counters, which they cannot do to the shared server. Both import it from here
(``deploy.local.mongo_server``): a benchmark imports nothing from ``tests/``.

The jars are the ones ``deploy/local/infra.sh up`` builds: ``ESCROW_MONGO_SERVER_LIBS`` (written
to .run/infra.env), else the default build cache.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from pymongo import MongoClient

START_DEADLINE_S = 60.0  # a guard against a hang, not a measurement
NOT_BUILT = ("EscrowMongoServer is not built (no escrow-mongo-server-1.jar in ESCROW_MONGO_SERVER_LIBS or the "
             "build cache): run `bash deploy/local/infra.sh up` (it builds it) or `make test`")


def built_libs() -> Path | None:
    """The launcher's jars, if ``infra.sh up`` built them."""
    cache = Path(os.environ.get("ESCROW_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                 / "escrow-platform")
    libs = Path(os.environ.get("ESCROW_MONGO_SERVER_LIBS") or cache / "mongo-java-server-1.47.0" / "libs")
    return libs if (libs / "escrow-mongo-server-1.jar").exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class MongoServerProcess:
    """One EscrowMongoServer process: start, kill -9, stop, start again on the same port."""

    def __init__(self, libs: Path, args: Sequence[str], log: Path) -> None:
        self.libs = libs
        self.args = list(args)
        self.port = _free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["java", "-Xmx512m", "-cp", f"{self.libs}/*", "EscrowMongoServer", str(self.port), *self.args],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_DEADLINE_S
        with MongoClient(self.url, serverSelectionTimeoutMS=500) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"EscrowMongoServer exited with {self.process.returncode}: "
                                       f"{self.log.read_text()[-2000:]}")
                try:
                    client.admin.command("ping")
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()
