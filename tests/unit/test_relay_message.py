"""The relay's message for a stored event (eventcore.messaging.traced_message): its publish span
continues the trace stored with the event. From a tracer that records nothing, the span is made
from the stored header's text; it must be the span the tracer's own path gives (same trace and
flags, an id of its own), and a recording tracer still records it."""

from __future__ import annotations

import dataclasses
import secrets

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, DEFAULT_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind

from eventcore.messaging import OutgoingMessage, envelope_message, traced_message
from eventcore.store import RecordedEvent
from eventcore.store.batch import Head, links, prepare, recorded
from eventcore.tracecontext import UnrecordedTracer
from tests.integration.store_kit import SOURCE, consent_draft, new_subject

TOPIC = "intake.consent.v1"


def stored(traceparent: str | None) -> RecordedEvent:
    draft = consent_draft(new_subject(), 1).model_copy(update={"traceparent": traceparent})
    rows = prepare(SOURCE, [draft])
    [event] = recorded(rows, links(Head(6, bytes(32)), rows))
    return event


def headers(message: OutgoingMessage) -> dict[str, bytes]:
    return dict(message.headers)


@pytest.mark.parametrize("flags", ["03", "01", "02", "00"])  # 03: intake's (random trace id)
def test_the_quick_path_gives_the_span_the_tracer_would(flags: str) -> None:
    parent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-{flags}"
    event = stored(parent)
    tracer = UnrecordedTracer(DEFAULT_ON, TracerProvider().id_generator)
    assert tracer.remote_child(parent) is not None  # the quick path is taken
    message = traced_message(tracer, TOPIC, event)
    version, trace_id, span_id, made_flags = headers(message)["traceparent"].decode().split("-")
    assert (version, trace_id, made_flags) == ("00", parent.split("-")[1], flags)
    assert span_id != parent.split("-")[2] and int(span_id, 16) != 0
    # The tracer's own path (the SDK's tracer with the same sampler) agrees.
    slow = headers(traced_message(TracerProvider(sampler=DEFAULT_ON).get_tracer("t"), TOPIC,
                                  event))["traceparent"]
    assert slow.decode().split("-")[1::2] == [trace_id, made_flags]
    # Everything else is the envelope's message as it was.
    plain = envelope_message(TOPIC, event.envelope)
    assert (message.topic, message.key, message.value) == (plain.topic, plain.key, plain.value)
    assert [h for h in message.headers if h[0] != "traceparent"] == [
        h for h in plain.headers if h[0] not in ("traceparent", "tracestate")]


def test_a_recording_tracer_records_the_publish_span_the_header_carries() -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(spans))
    parent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    message = traced_message(provider.get_tracer("t"), TOPIC, stored(parent))
    [span] = spans.get_finished_spans()
    assert span.kind is SpanKind.PRODUCER and span.name == f"{TOPIC} publish"
    assert span.parent is not None and f"{span.parent.span_id:016x}" == parent.split("-")[2]
    assert headers(message)["traceparent"].decode() == (
        f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01")


@pytest.mark.parametrize("given", [None, "not a traceparent"])
def test_an_event_without_a_valid_trace_starts_a_new_one(given: str | None) -> None:
    tracer = UnrecordedTracer(DEFAULT_ON, TracerProvider().id_generator)
    event = stored(None)
    if given is not None:  # a stored value the contract would refuse, read as none
        event = dataclasses.replace(event, envelope={**event.envelope, "traceparent": given})
    made = headers(traced_message(tracer, TOPIC, event))["traceparent"].decode().split("-")
    assert made[0] == "00" and int(made[1], 16) != 0 and int(made[2], 16) != 0


def test_a_sampler_that_asks_beyond_the_parent_takes_the_tracer_s_path() -> None:
    never = ParentBased(ALWAYS_ON, remote_parent_sampled=TraceIdRatioBased(0.0))
    tracer = UnrecordedTracer(never, TracerProvider().id_generator)
    parent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    made = headers(traced_message(tracer, TOPIC, stored(parent)))["traceparent"].decode()
    assert made.split("-")[1] == parent.split("-")[1] and made.endswith("-00")
