"""Traces across the five services (OpenTelemetry). A request's span and everything it
causes share one trace: the W3C ``traceparent`` of the span that saved an event is stored
in its envelope (so in the outbox), so the publish — right away or by a later sweep — and
every consumer's handling join that trace, whichever process does it.

Off by default (``TRACING=none``): the API's no-op tracer then costs next to nothing.
``TRACING=otlp`` exports over OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the standard
OpenTelemetry variables apply) and traces MongoDB commands too."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Tracer, TracerProvider

Tracing = Literal["none", "otlp"]
SERVICE = "escrow.service"

_provider: TracerProvider | None = None


def use(provider: TracerProvider | None) -> None:
    """Trace with this provider (``None``: the global one, a no-op unless configured)."""
    global _provider
    _provider = provider


def tracer() -> Tracer:
    return (_provider or trace.get_tracer_provider()).get_tracer("escrow")


def configure_tracing(service: str, tracing: Tracing) -> None:
    """For a service process: export spans over OTLP, MongoDB commands included."""
    if tracing == "none":
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = SdkTracerProvider(resource=Resource.create({"service.name": f"escrow-{service}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    PymongoInstrumentor().instrument()


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
