"""Item 10.1: JSON log lines naming service, correlation id, order and event; the
correlation id echoed in every response; no health-probe noise; a text format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from faststream.kafka import KafkaBroker

from shared.contracts.envelope import Envelope
from shared.contracts.events import OrderCancelled
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.topics import Service, Topics
from shared.infra import context
from shared.infra.clock import ManualClock
from shared.infra.logging import JsonFormatter, RepeatFilter, TextFormatter, configure_logging
from shared.infra.messaging import EventConsumer

from tests.support.memory import InMemoryPlatform
from tests.support.trade import Trade


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Every record of every logger, as the services format them, captured."""
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    configure_logging("order", "INFO", "json")
    stream = io.StringIO()
    root.handlers[0].setStream(stream)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_line_names_its_service_and_context_and_carries_no_colour_codes(json_lines):
    with context.bound(correlation_id="corr-1", order_id="ord_1", event_type="order.cancelled",
                       event_id="evt-1"):
        logging.getLogger("faststream.escrow-order").info("\x1b[32mreceived\x1b[0m")
    [line] = lines(json_lines)
    assert line["message"] == "received"
    assert {k: line[k] for k in ("service", "correlation_id", "order_id", "event_type", "event_id")} \
        == {"service": "order", "correlation_id": "corr-1", "order_id": "ord_1",
            "event_type": "order.cancelled", "event_id": "evt-1"}


def test_uvicorn_and_faststream_loggers_write_through_the_same_json_handler(json_lines):
    uvicorn_error = logging.getLogger("uvicorn.error")
    uvicorn_error.addHandler(logging.StreamHandler(io.StringIO()))  # what uvicorn installs
    configure_logging("notify", "INFO", "json")
    logging.getLogger().handlers[0].setStream(json_lines)
    uvicorn_error.info("Application startup complete.")
    logging.getLogger("faststream").info("consumer started")
    assert [(line["logger"], line["service"]) for line in lines(json_lines)] == [
        ("uvicorn.error", "notify"), ("faststream", "notify")]


def test_a_broker_outage_logs_aiokafka_s_repeated_line_once_per_window_with_the_count(json_lines):
    """While the broker is down aiokafka logs the same error many times a second: one line
    per window goes out, the next one says how many were suppressed; the platform's own
    lines are never suppressed."""
    now = [0.0]
    handler = logging.getLogger().handlers[0]
    [installed] = [f for f in handler.filters if isinstance(f, RepeatFilter)]
    handler.removeFilter(installed)
    handler.addFilter(RepeatFilter(window=30, clock=lambda: now[0]))
    aiokafka = logging.getLogger("aiokafka.client")
    for node in range(500):
        aiokafka.error("Unable connect to node with id %s: %s", node % 3, "Connect call failed")
        logging.getLogger("services.order").warning("order %s waits", node % 2)
    now[0] = 31.0
    aiokafka.error("Unable connect to node with id %s: %s", 1, "Connect call failed")
    aiokafka.error("Unable to update metadata from %s", [1])
    logged = lines(json_lines)
    kafka_lines = [line for line in logged if line["logger"] == "aiokafka.client"]
    assert [line.get("suppressed") for line in kafka_lines] == [None, 499, None]
    assert kafka_lines[1]["message"].startswith("Unable connect to node with id 1: Connect call failed")
    assert "499 like it suppressed" in kafka_lines[1]["message"]
    assert len([line for line in logged if line["logger"] == "services.order"]) == 500


def test_the_text_format_is_for_a_terminal_and_still_names_the_context():
    record = logging.LogRecord("escrow.access", logging.INFO, __file__, 1, "GET /orders 200", None, None)
    with context.bound(correlation_id="corr-2"):
        text = TextFormatter("payment").format(record)
    assert "payment escrow.access: GET /orders 200" in text and "correlation_id=corr-2" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_an_exception_is_one_json_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = json.loads(JsonFormatter("dispute").format(record))
    assert "ValueError: boom" in line["exception"]


async def test_a_request_echoes_its_correlation_id_and_logs_one_access_line(json_lines):
    platform = InMemoryPlatform()
    await platform.start()
    try:
        trade = Trade(platform)
        order_id = await trade.place()
        async with platform.client("order", trade.buyer, Role.BUYER) as client:
            answered = await client.get(f"/orders/{order_id}", headers={"x-correlation-id": "trace-me-1"})
            anonymous = await client.get("/health/live")
            hostile = await client.get(f"/orders/{order_id}", headers={"x-correlation-id": "x" * 500})
    finally:
        await platform.stop()
    assert answered.headers["x-correlation-id"] == "trace-me-1"
    assert anonymous.headers["x-correlation-id"]
    assert len(hostile.headers["x-correlation-id"]) <= 64
    access = [line for line in lines(json_lines) if line["logger"] == "escrow.access"]
    mine = [line for line in access if line.get("correlation_id") == "trace-me-1"]
    assert len(mine) == 1
    assert mine[0]["order_id"] == order_id and mine[0]["http_status"] == 200
    assert not [line for line in access if line["http_path"].startswith("/health/")], \
        "health probes must not fill the access log"


async def test_a_consumed_event_logs_with_its_envelope_context(json_lines):
    seen: list[str] = []

    async def handler(envelope: Envelope, event: OrderCancelled) -> None:
        logging.getLogger("services.payment.handlers").info("refunding")
        seen.append(envelope.event_id)

    consumer = EventConsumer(Service.PAYMENT, KafkaBroker("127.0.0.1:1"), Topics("t"),
                             {OrderCancelled: handler})
    parties = Parties(buyer=Party(party_id="b-1", name="B", email="b@example.com"),
                      supplier=Party(party_id="s-1", name="S", email="s@example.com"))
    envelope = Envelope.wrap(OrderCancelled(order_id="ord_9", parties=parties, reason="changed mind"),
                             occurred_at=ManualClock().now(), correlation_id="corr-9")
    await consumer.handle(envelope.to_bytes())
    [line] = [line for line in lines(json_lines) if line["message"] == "refunding"]
    assert seen == [envelope.event_id]
    assert (line["correlation_id"], line["order_id"], line["event_type"], line["event_id"]) == \
        ("corr-9", envelope.order_id, "order.cancelled", envelope.event_id)
