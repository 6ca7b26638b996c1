"""Where the real servers for a test run come from.

1. Addresses in the environment (``KAFKA_BOOTSTRAP_SERVERS``, ``MONGODB_URL``, ``SMTP_HOST``,
   ``SMTP_PORT``, ``MAILBOX_DIR``): the local servers ``deploy/local/infra.sh up`` started.
2. Otherwise, where a Docker engine answers a ping: testcontainers (Kafka + MongoDB) and the
   project's mail-keeping SMTP server as a local process.
3. Otherwise the real-infrastructure tests fail with a clear message under CI=true, and are
   skipped with that message on a developer machine.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

NO_INFRA = (
    "no real infrastructure for the saga tests: run the README's test command (`make test`), "
    "which starts Kafka, the MongoDB-wire server and the SMTP server, or set KAFKA_BOOTSTRAP_SERVERS and "
    "MONGODB_URL (plus SMTP_HOST, SMTP_PORT, MAILBOX_DIR), or run a Docker engine"
)


@dataclass
class Mail:
    to: list[str]
    subject: str
    headers: dict[str, str]
    text: str


class Mailbox:
    """Reads what the SMTP server kept: one .eml per mail, listed in index.jsonl. Each mail
    is parsed once; the index is filtered by order before any file is read."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._parsed: dict[str, Mail] = {}

    def _index(self) -> list[dict]:
        index = self.directory / "index.jsonl"
        if not index.exists():
            return []
        # The server appends whole lines; a line still being written is left for the next read.
        return [json.loads(line) for line in index.read_text().splitlines(keepends=True)
                if line.endswith("\n")]

    def _mail(self, entry: dict) -> Mail:
        if entry["file"] not in self._parsed:
            msg: EmailMessage = email.message_from_bytes(
                (self.directory / entry["file"]).read_bytes(), policy=email.policy.default)
            body = msg.get_body(preferencelist=("plain",))
            self._parsed[entry["file"]] = Mail(
                to=entry["rcpt_tos"], subject=str(msg["Subject"]),
                headers={k.lower(): str(v) for k, v in msg.items()},
                text=body.get_content() if body else "")
        return self._parsed[entry["file"]]

    def for_order(self, order_id: str) -> list[Mail]:
        return [self._mail(e) for e in self._index() if e.get("x_escrow_order_id") == order_id]

    def to(self, address: str) -> list[Mail]:
        return [self._mail(e) for e in self._index() if address in e["rcpt_tos"]]


@dataclass
class Infra:
    kafka: str
    mongodb_url: str
    smtp_host: str
    smtp_port: int
    mailbox: Mailbox
    # A server that makes single-document updates atomic under concurrency: the default one
    # (deploy/local's EscrowMongoServer, or the MongoDB container under Docker) unless
    # MONGODB_STRICT_URL names another.
    strict_mongodb_url: str | None = None
    # FerretDB v1, only when started for comparison (`infra.sh up --with-ferretdb`).
    ferretdb_url: str | None = None


def docker_engine_answers() -> bool:
    try:
        import docker

        return bool(docker.from_env(timeout=3).ping())
    except Exception:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _mailbox_process() -> Iterator[tuple[int, Path]]:
    folder = Path(tempfile.mkdtemp(prefix="escrow-mail-"))
    port, http_port = _free_port(), _free_port()
    proc = subprocess.Popen([sys.executable, str(REPO / "deploy/local/mailbox.py"), "--dir", str(folder),
                             "--smtp-port", str(port), "--http-port", str(http_port)])
    try:
        yield port, folder
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def real_infrastructure() -> Iterator[Infra | str]:
    """Yields the servers, or the reason there are none."""
    env = os.environ
    if env.get("KAFKA_BOOTSTRAP_SERVERS") and env.get("MONGODB_URL"):
        yield Infra(env["KAFKA_BOOTSTRAP_SERVERS"], env["MONGODB_URL"], env.get("SMTP_HOST", "127.0.0.1"),
                    int(env.get("SMTP_PORT", "1025")),
                    Mailbox(Path(env.get("MAILBOX_DIR", REPO / ".run/mail"))),
                    env.get("MONGODB_STRICT_URL") or env["MONGODB_URL"], env.get("FERRETDB_URL"))
    elif docker_engine_answers():
        from testcontainers.community.kafka import KafkaContainer
        from testcontainers.community.mongodb import MongoDbContainer

        with KafkaContainer().with_kraft() as kafka, MongoDbContainer("mongo:7") as mongo, \
                _mailbox_process() as (smtp_port, folder):
            yield Infra(kafka.get_bootstrap_server(), mongo.get_connection_url(), "127.0.0.1",
                        smtp_port, Mailbox(folder), mongo.get_connection_url())
    else:
        yield NO_INFRA
