"""Item 10.2 on a real process: a service started as the platform runs it, with
``TRACING=console``, exports its spans — its HTTP request's and the MongoDB commands it
sends — named for the service, also those still batched when it is stopped (the OTLP
exporter is the same pipeline, another exporter)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

from tests.support.infra import REPO, Infra

pytestmark = pytest.mark.realinfra


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int, path: str) -> bool:
    """Whether the service answered (200 or not: a readiness verdict is an answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def test_a_service_process_exports_its_spans(infra: Infra, tmp_path):
    port = _free_port()
    run = uuid.uuid4().hex[:8]
    env = {**os.environ, "TRACING": "console", "HTTP_PORT": str(port),
           "KAFKA_BOOTSTRAP_SERVERS": infra.kafka, "MONGODB_URL": infra.mongodb_url,
           "MONGODB_DATABASE": f"tracing_{run}", "TOPIC_PREFIX": f"tracing-{run}", "ESCROW_ENV": "development"}
    out = tmp_path / "stdout"
    with out.open("wb") as stdout:
        process = subprocess.Popen([sys.executable, "-m", "services.order"], cwd=REPO, env=env,
                                   stdout=stdout, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120  # a loaded machine starts slowly
        while not _answers(port, "/health/live"):
            assert process.poll() is None, "the order service exited"
            assert time.monotonic() < deadline, "the order service did not answer within 120 s"
            time.sleep(0.2)
        assert _answers(port, "/health/ready")  # checks MongoDB (a traced command) and Kafka
    finally:
        process.send_signal(signal.SIGTERM)  # a graceful stop flushes the batched spans
        process.wait(timeout=30)
    spans = [json.loads(line) for line in out.read_text().splitlines() if line.startswith('{"name"')]
    by_name = {s["name"]: s for s in spans}
    readiness = [s for s in spans if s["name"] == "GET /health/ready"]
    assert len(readiness) == 1, sorted(by_name)  # one SERVER span a request (FastAPI's own off)
    [ready] = readiness
    assert ready["kind"] == "SpanKind.SERVER"
    assert ready["resource"]["attributes"]["service.name"] == "escrow-order"
    assert ready["attributes"]["escrow.service"] == "order"
    assert any(s["attributes"].get("db.system") == "mongodb" for s in spans), sorted(by_name)
