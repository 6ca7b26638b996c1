"""Item 10.2: one trace per action across the services it reaches, through the outbox —
also when a later sweep, not the request, publishes the event."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.infra import telemetry
from shared.infra.messaging import EventPublisher
from shared.infra.store import OutboxMessage

from tests.support.memory import InMemoryPlatform
from tests.support.trade import Trade


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use(provider)
    yield exporter
    telemetry.use(None)


def by_trace(exporter: InMemorySpanExporter) -> dict[int, list]:
    traces: dict[int, list] = defaultdict(list)
    for span in exporter.get_finished_spans():
        traces[span.context.trace_id].append(span)
    return traces


async def test_a_trade_s_release_is_one_trace_across_all_five_services(spans):
    platform = InMemoryPlatform()
    await platform.start()
    try:
        trade = Trade(platform)
        await trade.paid_trade()
        await trade.ship()
        spans.clear()
        await trade.confirm_receipt()
        await trade.wait_status("closed", "settled")
    finally:
        await platform.stop()
    traces = by_trace(spans)
    [receipt] = [t for t in traces.values()
                 if any(s.name == "POST /orders/{order_id}/receipt" for s in t)]
    assert {s.attributes[telemetry.SERVICE] for s in receipt} == \
        {"order", "payment", "shipping", "dispute", "notify"}
    names = {s.name for s in receipt}
    assert {"consume dispute.receipt_confirmed", "consume payment.escrow_released",
            "consume order.closed"} <= names
    assert all(s.parent is not None for s in receipt if not s.name.startswith("POST "))
    sent = [s for s in spans.get_finished_spans() if s.name == "smtp send"]
    assert sent and {s.attributes["escrow.order_id"] for s in sent} == {trade.order_id}


async def test_an_event_published_by_a_later_sweep_joins_the_trace_that_recorded_it(spans):
    from shared.contracts.envelope import Envelope
    from shared.contracts.events import OrderCancelled
    from shared.contracts.parties import Parties, Party
    from shared.infra.clock import ManualClock

    class Broker:
        def publisher(self, *_args, **_kwargs):
            return self

        async def publish(self, *_args, **_kwargs) -> None:
            return None

    parties = Parties(buyer=Party(party_id="b", name="B", email="b@example.com"),
                      supplier=Party(party_id="s", name="S", email="s@example.com"))
    with telemetry.span("POST /orders/{order_id}/cancel", service="order") as request:
        envelope = Envelope.wrap(OrderCancelled(order_id="o1", parties=parties, reason="r"),
                                 occurred_at=ManualClock().now(),
                                 traceparent=telemetry.current_traceparent())
    stored = OutboxMessage.of(envelope)
    assert json.loads(stored.body)["traceparent"]
    publisher = EventPublisher(Broker(), "t.order.events", [OrderCancelled])  # type: ignore[arg-type]
    await publisher(stored)  # later, outside the request: the sweep
    [published] = [s for s in spans.get_finished_spans() if s.name == "publish order.cancelled"]
    assert published.context.trace_id == request.get_span_context().trace_id
    assert published.parent.span_id == request.get_span_context().span_id


def test_tracing_is_off_by_default():
    from shared.infra.settings import ServiceSettings

    assert ServiceSettings().tracing == "none"
    assert telemetry.current_traceparent() is None
