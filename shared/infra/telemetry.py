"""Traces across the five services (OpenTelemetry): one trade is one trace.

- What an action causes joins its trace: the W3C ``traceparent`` of the span that saved an
  event is stored in its envelope (so in the outbox), so the publish — right away or by a
  later sweep — and every consumer's handling join that trace, whichever process does it.
- A trade's later actions join the trade's trace: each service stores, with its aggregate,
  the trace context in which it first saw the order (the order service: the placing
  request's). A command on an existing order (an HTTP request, a fired deadline, a sweep's
  payout) runs ``within`` that trace, in a span linked to the request's own span, which
  stays in its caller's trace as W3C Trace Context says (docs/operations.md).

Off by default (``TRACING=none``): the API's no-op tracer then costs next to nothing.
``TRACING=otlp`` exports over OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the standard
OpenTelemetry variables apply), ``TRACING=console`` writes spans as JSON to stdout; both
trace MongoDB commands too."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from opentelemetry import propagate, trace
from opentelemetry.trace import Link, Span, SpanKind, Tracer, TracerProvider

Tracing = Literal["none", "otlp", "console"]
SERVICE = "escrow.service"

_provider: TracerProvider | None = None
_configured = False


def use(provider: TracerProvider | None) -> None:
    """Trace with this provider (``None``: the global one, a no-op unless configured)."""
    global _provider
    _provider = provider


def tracer() -> Tracer:
    return (_provider or trace.get_tracer_provider()).get_tracer("escrow")


def configure_tracing(service: str, tracing: Tracing) -> None:
    """For a service process: export spans (OTLP or stdout), MongoDB commands included.
    Called before the process creates its MongoDB client (PyMongo's command listeners apply
    to clients created afterwards); once per process."""
    global _configured
    if tracing == "none" or _configured:
        return
    _configured = True
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if tracing == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        exporter = OTLPSpanExporter()
    else:
        exporter = ConsoleSpanExporter(formatter=lambda span: span.to_json(indent=None) + "\n")
    provider = SdkTracerProvider(resource=Resource.create({"service.name": f"escrow-{service}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    PymongoInstrumentor().instrument()


def flush(timeout_millis: int = 5000) -> None:
    """Export the spans still batched: a stopping service calls it, since uvicorn ends the
    process by raising the SIGTERM it caught once it has shut down, so exit hooks never run."""
    force_flush = getattr(_provider or trace.get_tracer_provider(), "force_flush", None)
    if force_flush is not None:
        force_flush(timeout_millis)


def current_traceparent() -> str | None:
    """The W3C trace context of the current span, to store with what it causes."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def span(name: str, *, service: str, kind: SpanKind = SpanKind.INTERNAL,
         traceparent: str | None = None, **attributes: Any) -> Iterator[Span]:
    """A span of ``service``, child of ``traceparent`` when given, else of the current one."""
    parent = propagate.extract({"traceparent": traceparent}) if traceparent else None
    attributes = {k.replace("__", "."): v for k, v in attributes.items() if v is not None}
    with tracer().start_as_current_span(name, context=parent, kind=kind,
                                        attributes={SERVICE: service, **attributes}) as current:
        yield current


@contextmanager
def within(trade: str | None, name: str, *, service: str, **attributes: Any) -> Iterator[None]:
    """Run the block in the trade's trace (``trade``: the traceparent stored with the
    order). Nothing is added when no trade trace is known (tracing off, or the order is
    new) or when the current span is in it already (an event of the trade being consumed);
    otherwise the block runs in a new span, child of the trade's context, linked to the
    current span (the request's, in its caller's trace) so either trace leads to the other."""
    parent = propagate.extract({"traceparent": trade}) if trade else None
    trade_span = trace.get_current_span(parent).get_span_context() if parent else None
    current = trace.get_current_span().get_span_context()
    if trade_span is None or not trade_span.is_valid or current.trace_id == trade_span.trace_id:
        yield
        return
    attributes = {k.replace("__", "."): v for k, v in attributes.items() if v is not None}
    with tracer().start_as_current_span(name, context=parent, links=[Link(current)] if current.is_valid else None,
                                        attributes={SERVICE: service, **attributes}):
        yield
