"""OpenTelemetry for one service: a tracer provider and a meter provider of its own.

Exporters follow the standard variables: OTEL_TRACES_EXPORTER = otlp | console | none (default
none), OTEL_EXPORTER_OTLP_ENDPOINT for OTLP/HTTP. The sampler too: OTEL_TRACES_SAMPLER (default
parentbased_always_on) and OTEL_TRACES_SAMPLER_ARG, the ratio of the traceidratio samplers
(default 1); a value the SDK would silently replace stops the service at start-up. Metrics are read by a Prometheus reader into the
service's own registry, served at /metrics. Each service keeps its own providers (not the global
ones), so several services in one process (as in tests) stay apart.

A service that exports no spans (no exporter and no extra processor) gets a tracer that records
nothing (`eventcore.tracecontext.UnrecordedTracer`): its spans carry the ids and flags the SDK's
would, so trace context still flows through logs, stored events and messages unchanged.
(FastStream's middleware makes its one span per batch through the SDK's provider.)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Span, SpanKind
from prometheus_client import CollectorRegistry, generate_latest

from eventcore.tracecontext import UnrecordedTracer, remote_parent, traceparent_of

#: Processors added to every service's tracer provider (tests add an in-memory exporter here).
EXTRA_SPAN_PROCESSORS: list[SpanProcessor] = []

# The SDK's built-in samplers, by the names OTEL_TRACES_SAMPLER takes. TracerProvider loads no
# others (custom samplers by entry point are the auto-instrumentation's, which we do not use).
_FIXED_SAMPLERS: dict[str, Sampler] = {
    "always_on": ALWAYS_ON, "always_off": ALWAYS_OFF,
    "parentbased_always_on": DEFAULT_ON, "parentbased_always_off": DEFAULT_OFF,
}
_RATIO_SAMPLERS: dict[str, Callable[[float], Sampler]] = {
    "traceidratio": TraceIdRatioBased, "parentbased_traceidratio": ParentBasedTraceIdRatio,
}
TRACE_SAMPLERS = frozenset(_FIXED_SAMPLERS) | frozenset(_RATIO_SAMPLERS)
DEFAULT_TRACE_SAMPLER = "parentbased_always_on"


class TelemetryConfigError(ValueError):
    """An OpenTelemetry variable holds a value the SDK would silently replace with its default."""


@dataclass(frozen=True)
class SamplerSetting:
    """OTEL_TRACES_SAMPLER and, for the ratio samplers, OTEL_TRACES_SAMPLER_ARG, checked."""

    name: str
    ratio: float | None = None

    @property
    def description(self) -> str:
        return self.name if self.ratio is None else f"{self.name} {self.ratio}"

    def sampler(self) -> Sampler:
        if self.ratio is None:
            return _FIXED_SAMPLERS[self.name]
        return _RATIO_SAMPLERS[self.name](self.ratio)


def sampler_setting() -> SamplerSetting:
    """The sampler the environment asks for; raises TelemetryConfigError naming the variable."""
    # An empty value counts as unset, as the OpenTelemetry specification says.
    name = os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() or DEFAULT_TRACE_SAMPLER
    if name not in TRACE_SAMPLERS:
        raise TelemetryConfigError(
            f"OTEL_TRACES_SAMPLER: {name!r} is not a sampler the OpenTelemetry SDK provides; "
            f"use one of {', '.join(sorted(TRACE_SAMPLERS))}")
    if name in _FIXED_SAMPLERS:
        return SamplerSetting(name)  # the SDK ignores OTEL_TRACES_SAMPLER_ARG for these
    text = os.environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if not text:
        return SamplerSetting(name, 1.0)  # the specification's default ratio
    try:
        ratio = float(text)
    except ValueError:
        ratio = math.nan
    if not 0.0 <= ratio <= 1.0:  # NaN fails this too
        raise TelemetryConfigError(
            f"OTEL_TRACES_SAMPLER_ARG: must be a number between 0 and 1 (the share of traces "
            f"{name} records), not {text!r}")
    return SamplerSetting(name, ratio)


def sampler_description() -> str:
    """The sampler configure_telemetry would use now, e.g. 'parentbased_traceidratio 0.1'."""
    return sampler_setting().description


def exporter_name() -> str:
    """OTEL_TRACES_EXPORTER as the services read it: otlp, console, or none (the default, and
    what any other value means to them)."""
    choice = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    return choice if choice in ("otlp", "console") else "none"


def _exporter_from_environment() -> SpanExporter | None:
    choice = exporter_name()
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if choice == "console":
        return ConsoleSpanExporter()
    return None


def _sdk_disabled() -> bool:
    """OTEL_SDK_DISABLED as the SDK's TracerProvider reads it."""
    return os.environ.get("OTEL_SDK_DISABLED", "").lower().strip() == "true"


@dataclass
class Telemetry:
    service: str
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    registry: CollectorRegistry
    #: Whether any span processor (an exporter's, or a test's) receives this service's spans.
    exports_spans: bool = True
    #: Spans go nowhere and the SDK is not disabled: `tracer` is an `UnrecordedTracer`.
    unrecorded: bool = False
    _extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tracer(self) -> trace.Tracer:
        """The SDK's tracer, or `UnrecordedTracer` when no span goes anywhere. (With
        OTEL_SDK_DISABLED=true, the SDK's: then its no-op tracer, no ids at all, as before.)"""
        if self.unrecorded:
            return UnrecordedTracer(self.tracer_provider.sampler, self.tracer_provider.id_generator)
        return self.tracer_provider.get_tracer(f"golden_thread.{self.service}")

    def prometheus_text(self) -> bytes:
        return bytes(generate_latest(self.registry))

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def meter_provider_for(resource: Resource, readers: Sequence[MetricReader]) -> MeterProvider:
    """A service's meter provider. Exemplars are off unless OTEL_METRICS_EXEMPLAR_FILTER asks for
    them: the SDK's default (`trace_based`) offers each measurement made in a sampled span to a
    reservoir, ≈ 3 µs a time, and the one reader a service has, Prometheus's, shows none
    (docs/performance.md finding 95)."""
    exemplars = (None if os.environ.get("OTEL_METRICS_EXEMPLAR_FILTER")
                 else AlwaysOffExemplarFilter())
    return MeterProvider(resource=resource, metric_readers=readers, exemplar_filter=exemplars)


def configure_telemetry(service: str) -> Telemetry:
    resource = Resource.create({"service.name": f"golden-thread-{service}",
                                "service.namespace": "golden-thread"})
    tracer_provider = TracerProvider(resource=resource, sampler=sampler_setting().sampler())
    exporter = _exporter_from_environment()
    processors: list[SpanProcessor] = [] if exporter is None else [BatchSpanProcessor(exporter)]
    for processor in [*processors, *EXTRA_SPAN_PROCESSORS]:
        tracer_provider.add_span_processor(processor)
    registry = CollectorRegistry()  # this service's own, not the process-wide one
    meter_provider = meter_provider_for(resource, [PrometheusMetricReader(registry=registry)])
    exports = bool(processors or EXTRA_SPAN_PROCESSORS)
    # Decided once, as the SDK reads OTEL_SDK_DISABLED once, when the provider is made.
    return Telemetry(service, tracer_provider, meter_provider, registry, exports_spans=exports,
                     unrecorded=not exports and not _sdk_disabled())


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, to store with an event."""
    return traceparent_of(trace.get_current_span())


@contextmanager
def span_from(
    tracer: trace.Tracer, name: str, carrier: Mapping[str, str], *, kind: SpanKind,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A span whose parent is the W3C trace context in `carrier` (headers or a stored event)."""
    parent = remote_parent(carrier.get("traceparent"), carrier.get("tracestate"))
    token = otel_context.attach(parent)
    try:
        with tracer.start_as_current_span(name, kind=kind, attributes=dict(attributes or {})) as span:
            yield span
    finally:
        otel_context.detach(token)


def headers_of(pairs: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    return {k: v.decode("latin-1") for k, v in pairs if k in ("traceparent", "tracestate")}
