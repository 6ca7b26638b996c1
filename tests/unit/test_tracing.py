"""Item 10.2: one trade is one trace across the five services, through the outbox (also
when a later sweep, not the request, publishes an event), the deadline sweep and notify's
sends; each later request keeps its own trace and is linked from the trade's."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

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


SERVICES = {"order", "payment", "shipping", "dispute", "notify"}


def trace_of_trade(exporter: InMemorySpanExporter, order_id: str) -> list:
    """The trade's trace, checked to be the one trace of every span about the order."""
    about = [s for s in exporter.get_finished_spans() if s.attributes.get("escrow.order_id") == order_id]
    assert len({s.context.trace_id for s in about}) == 1, \
        sorted({(s.context.trace_id, s.name) for s in about})
    return by_trace(exporter)[about[0].context.trace_id]


def commands_on(exporter: InMemorySpanExporter, order_id: str) -> list:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER
            and s.attributes["http.request.method"] == "POST" and order_id in s.attributes["url.path"]]


async def test_a_whole_trade_is_one_trace_across_all_five_services(spans):
    """Placed, confirmed, paid, shipped, received, settled: five HTTP requests of two
    parties on four services, each event published by the outbox sweep after a failed
    first publish, the mails sent by notify's sweep. All of it is one trace, rooted in the
    placing request; each later request stays in its own trace (W3C) and the trade's span
    that did its work links to it."""
    platform = InMemoryPlatform()
    failed_once: set[str] = set()
    await platform.start()
    for runtime in platform.runtimes.values():  # every first publish fails: the sweep publishes
        for runner in runtime.runners:
            runner._publish = failing_once(runner._publish, failed_once)
    try:
        trade = Trade(platform)
        await trade.paid_trade()
        await trade.ship()
        await trade.confirm_receipt()
        await trade.wait_status("closed", "settled")
        await trade.wait_mails(("released", "supplier"))
    finally:
        await platform.stop()
    assert failed_once, "no publish failed: the sweep published nothing"
    trade_trace = trace_of_trade(spans, trade.order_id)
    assert {s.attributes[telemetry.SERVICE] for s in trade_trace} == SERVICES
    names = {s.name for s in trade_trace}
    assert {"consume order.placed", "consume payment.escrow_funded", "consume shipping.shipment_dispatched",
            "consume dispute.receipt_confirmed", "consume payment.escrow_released", "consume order.closed",
            "smtp send"} <= names, names
    [root] = [s for s in trade_trace if s.parent is None]
    assert root.name == "POST /orders" and root.kind is SpanKind.SERVER
    commands = commands_on(spans, trade.order_id)
    assert {s.name for s in commands} >= {"POST /orders/{order_id}/confirm", "POST /orders/{order_id}/payments/card",
                                          "POST /orders/{order_id}/shipment", "POST /orders/{order_id}/receipt"}
    linked = {link.context.span_id for s in trade_trace for link in s.links}
    for request in commands:
        assert request.context.trace_id != root.context.trace_id
        assert request.context.span_id in linked, f"{request.name} is not linked from the trade's trace"
    mails = [s for s in spans.get_finished_spans() if s.name == "smtp send"
             and s.attributes.get("escrow.order_id") == trade.order_id]
    assert mails and all(s.context.trace_id == root.context.trace_id for s in mails)


async def test_a_disputed_trade_settled_by_a_deadline_is_one_trace(spans):
    """Disputed, withdrawn, then confirmed automatically when the stored deadline fires on
    the deadline sweep, with no request at all: still the trade's one trace."""
    platform = InMemoryPlatform()
    await platform.start()
    try:
        trade = Trade(platform)
        await trade.paid_trade()
        await trade.ship()
        platform.advance(timedelta(days=6))
        await trade.call("dispute", "POST", f"/orders/{trade.order_id}/dispute", expect=201, body={
            "reason": "not_received", "requested": "full_refund", "amount": None,
            "description": "Nothing arrived.", "evidence": []})
        await trade.wait_status("in_dispute")
        await trade.call("dispute", "POST", f"/orders/{trade.order_id}/dispute/withdraw", body={})
        await trade.wait_status("shipped")
        platform.advance(timedelta(days=40))
        await trade.wait_status("closed", "settled")
    finally:
        await platform.stop()
    trade_trace = trace_of_trade(spans, trade.order_id)
    assert {s.attributes[telemetry.SERVICE] for s in trade_trace} == SERVICES
    names = {s.name for s in trade_trace}
    assert {"consume dispute.opened", "consume dispute.withdrawn", "buyerprotection deadlines",
            "consume dispute.receipt_confirmed", "consume order.closed"} <= names, names
    [fired] = [s for s in trade_trace if s.name == "buyerprotection deadlines"
               and any(c.name == "consume dispute.receipt_confirmed" for c in children(trade_trace, s))]
    assert not fired.links  # no request caused it
    linked = {link.context.span_id for s in trade_trace for link in s.links}
    assert {s.context.span_id for s in commands_on(spans, trade.order_id)} <= linked


def children(spans: list, parent) -> list:
    """Every span below ``parent``."""
    below = [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]
    return below + [d for s in below for d in children(spans, s)]


def failing_once(publish, failed: set[str]):
    async def publish_or_fail(message: OutboxMessage) -> None:
        if message.event_id not in failed:
            failed.add(message.event_id)
            raise ConnectionError("broker unreachable (the test's)")
        await publish(message)
    return publish_or_fail


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
