"""OpenTelemetry for one service: a tracer provider and a meter provider of its own.

Exporters follow the standard variables: OTEL_TRACES_EXPORTER = otlp | console | none (default
none), OTEL_EXPORTER_OTLP_ENDPOINT for OTLP/HTTP. Metrics are read by a Prometheus reader into the
service's own registry, served at /metrics. Each service keeps its own providers (not the global
ones), so several services in one process (as in tests) stay apart.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind
from prometheus_client import CollectorRegistry, generate_latest

#: Processors added to every service's tracer provider (tests add an in-memory exporter here).
EXTRA_SPAN_PROCESSORS: list[SpanProcessor] = []


def _exporter_from_environment() -> SpanExporter | None:
    choice = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if choice == "console":
        return ConsoleSpanExporter()
    return None


@dataclass
class Telemetry:
    service: str
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    registry: CollectorRegistry
    _extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tracer(self) -> trace.Tracer:
        return self.tracer_provider.get_tracer(f"golden_thread.{self.service}")

    def prometheus_text(self) -> bytes:
        return bytes(generate_latest(self.registry))

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def configure_telemetry(service: str) -> Telemetry:
    resource = Resource.create({"service.name": f"golden-thread-{service}",
                                "service.namespace": "golden-thread"})
    tracer_provider = TracerProvider(resource=resource)
    exporter = _exporter_from_environment()
    if exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    for processor in EXTRA_SPAN_PROCESSORS:
        tracer_provider.add_span_processor(processor)
    registry = CollectorRegistry()  # this service's own, not the process-wide one
    reader = PrometheusMetricReader(registry=registry)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    return Telemetry(service, tracer_provider, meter_provider, registry)


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, to store with an event."""
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


def traceparent_of(span: Span) -> str | None:
    """The W3C traceparent of `span`, current or not."""
    carrier: dict[str, str] = {}
    inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")


@contextmanager
def span_from(
    tracer: trace.Tracer, name: str, carrier: Mapping[str, str], *, kind: SpanKind,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A span whose parent is the trace context in `carrier` (headers or a stored event)."""
    parent = extract(dict(carrier))
    token = otel_context.attach(parent)
    try:
        with tracer.start_as_current_span(name, kind=kind, attributes=dict(attributes or {})) as span:
            yield span
    finally:
        otel_context.detach(token)


def headers_of(pairs: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    return {k: v.decode("latin-1") for k, v in pairs if k in ("traceparent", "tracestate")}
