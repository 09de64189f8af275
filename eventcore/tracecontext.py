"""W3C trace context without the SDK's detours: reading a traceparent, writing one, and the
tracer of a service whose spans go nowhere (`UnrecordedTracer`), with the consumer's span per
event made from the message's headers (`start_consumer_span`) and the relay's publish span from
the stored traceparent (`messaging.stored_message`).

Read and written directly, not through the configured propagators: the envelope's field and the
relay's headers are W3C whatever those are, and a consumer reads and writes one per event.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Decision, ParentBased, Sampler
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_W3C = TraceContextTextMapPropagator()
# The W3C propagator's own pattern (opentelemetry.trace.propagation.tracecontext).
_TRACEPARENT = re.compile(
    r"^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?[ \t]*$")
_NO_TRACE, _NO_SPAN = "0" * 32, "0" * 16
#: The flags a child takes from a remote parent whose sampled flag decides (`remote_child`).
_INHERITED = TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID


def traceparent_of(span: Span) -> str | None:
    """The W3C traceparent of `span`, current or not (None for no valid span).

    Written as the W3C propagator writes it, without going through the configured propagators:
    the detour cost 2.9 µs against 0.9 µs (a consumer formats one per event)."""
    if type(span) is ChildSpan:
        return span.traceparent
    found = span.get_span_context()
    if not found.is_valid:
        return None
    return f"00-{found.trace_id:032x}-{found.span_id:016x}-{found.trace_flags:02x}"


def remote_parent(traceparent: str | None, tracestate: str | None = None) -> Context:
    """The context the W3C propagator extracts from these two headers: their span as the remote
    parent, or an empty context (a new trace) when `traceparent` is missing or not valid.

    Read directly (with the span started and ended, 16 against 12.5 µs; docs/performance.md
    47). A tracestate, rare here, goes to the W3C propagator itself."""
    if tracestate is not None:
        return _W3C.extract({"traceparent": traceparent or "", "tracestate": tracestate})
    match = _TRACEPARENT.search(traceparent) if traceparent else None
    if match is None:
        return Context()
    version, trace_id, span_id, flags, rest = match.groups()
    if (trace_id == _NO_TRACE or span_id == _NO_SPAN or version == "ff"
            or (version == "00" and rest)):
        return Context()
    parent = SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True,
                         trace_flags=TraceFlags(int(flags, 16)))
    return trace.set_span_in_context(NonRecordingSpan(parent), Context())


def start_consumer_span(tracer: trace.Tracer, topic: str, traceparent: str | None,
                        tracestate: str | None) -> Span:
    """The span a consumer applies an event from `topic` under: a child of the W3C context in
    the message's headers, else of a new trace. What `tracer.start_span(f"{topic} apply",
    context=remote_parent(traceparent, tracestate), kind=SpanKind.CONSUMER)` gives; from an
    `UnrecordedTracer`, when it can, without building the parent's context or the span's
    (`UnrecordedTracer.remote_child`: ≈ 1.7 against 7.6 µs per event; docs/performance.md 79).
    """
    if tracestate is None and type(tracer) is UnrecordedTracer:
        span = tracer.remote_child(traceparent)
        if span is not None:
            return span
    return tracer.start_span(f"{topic} apply", context=remote_parent(traceparent, tracestate),
                             kind=SpanKind.CONSUMER)
    # No attributes: the batch's span (FastStream's) carries the group and the offsets, and an
    # attribute's validation costs more than the rest of the span (profiled).


class ChildSpan(NonRecordingSpan):
    """A span that records nothing, made from its parent's trace id and ids of its own: its
    traceparent is written at once (what `traceparent_of` reads), its SpanContext only when
    something asks for it (a handler run under it as the current span, a log line)."""

    def __init__(self, trace_id: str, span_id: int, flags: int) -> None:
        self.traceparent = f"00-{trace_id}-{span_id:016x}-{flags:02x}"
        self._context: SpanContext | None = None  # type: ignore[assignment]

    def get_span_context(self) -> SpanContext:
        if self._context is None:
            _, trace_id, span_id, flags = self.traceparent.split("-")
            self._context = SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=False,
                                        trace_flags=TraceFlags(int(flags, 16)))
        return self._context

    def __repr__(self) -> str:
        return f"ChildSpan({self.traceparent})"


class UnrecordedTracer(trace.Tracer):
    """The tracer of a service whose spans go nowhere (no exporter, no processor): each span
    gets what the SDK's tracer would give it (its parent's trace id, or a new one; a span id of
    its own; the configured sampler's decision as its sampled flag and trace state) and records
    nothing. Context flows on exactly as before (logs, stored traceparents, message headers);
    what is saved is the SDK building, filling and ending a span that no one reads: a consumer
    starts one per event, ≈ a sixth of its CPU per event (docs/performance.md, finding 71)."""

    def __init__(self, sampler: Sampler, ids: IdGenerator) -> None:
        self._sampler = sampler
        self._ids = ids
        # A remote parent's sampled flag alone decides, as in the SDK's parent-based samplers
        # with their default delegates (every parent-based one `configure_telemetry` makes).
        # Read from the sampler's own attributes: should the SDK rename them, `remote_child`
        # declines and `start_span` decides, as before.
        self._parent_decides = (
            isinstance(sampler, ParentBased)
            and type(sampler).should_sample is ParentBased.should_sample
            and getattr(sampler, "_remote_parent_sampled", None) is ALWAYS_ON
            and getattr(sampler, "_remote_parent_not_sampled", None) is ALWAYS_OFF)

    def remote_child(self, traceparent: str | None) -> ChildSpan | None:
        """The span `start_span` would give under the remote parent `traceparent` (a W3C
        version 00 header, no tracestate), made from the header's text where the parent's
        sampled flag alone decides; None where it cannot be (then `start_span`)."""
        if not self._parent_decides or not traceparent:
            return None
        match = _TRACEPARENT.search(traceparent)
        if match is None:
            return None
        version, trace_id, span_id, flags, rest = match.groups()
        if version != "00" or rest or trace_id == _NO_TRACE or span_id == _NO_SPAN:
            return None
        # ALWAYS_ON keeps a sampled parent's trace, ALWAYS_OFF drops an unsampled one: the
        # child's sampled flag is the parent's, and so is its random-trace-id flag.
        return ChildSpan(trace_id, self._ids.generate_span_id(), int(flags, 16) & _INHERITED)

    def start_span(  # the API's signature; attributes and links reach only the sampler
        self, name: str, context: Context | None = None, kind: SpanKind = SpanKind.INTERNAL,
        attributes: Any = None, links: Any = (), start_time: int | None = None,
        record_exception: bool = True, set_status_on_exception: bool = True,
    ) -> Span:
        # As the SDK's Tracer.start_span (1.45) makes the span's context, step by step.
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id, random_id = parent.trace_id, parent.trace_flags.random_trace_id
        else:
            trace_id, random_id = self._ids.generate_trace_id(), self._ids.is_trace_id_random()
        decision = self._sampler.should_sample(context, trace_id, name, kind, attributes, links)
        flags = TraceFlags.SAMPLED if decision.decision is Decision.RECORD_AND_SAMPLE else 0
        if random_id:
            flags |= TraceFlags.RANDOM_TRACE_ID
        return NonRecordingSpan(SpanContext(trace_id, self._ids.generate_span_id(),
                                            is_remote=False, trace_flags=TraceFlags(flags),
                                            trace_state=decision.trace_state))

    @contextmanager
    def start_as_current_span(  # type: ignore[override]  # the API's is a context manager too
        self, name: str, context: Context | None = None, kind: SpanKind = SpanKind.INTERNAL,
        attributes: Any = None, links: Any = (), start_time: int | None = None,
        record_exception: bool = True, set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Span]:
        span = self.start_span(name, context, kind, attributes, links)  # links: () by default
        with trace.use_span(span, end_on_exit=end_on_exit) as current:
            yield current
