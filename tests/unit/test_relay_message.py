"""The relay's message for a stored event (eventcore.messaging.stored_message): the stored body's
text with the chain fields, byte for byte the message of the decoded event, and a publish span
that continues the trace stored with the event. From a tracer that records nothing, the span is
made from the stored header's text; it must be the span the tracer's own path gives (same trace
and flags, an id of its own), and a recording tracer still records it."""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, DEFAULT_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind
from pydantic import BaseModel

from contracts.drafts import EventDraft
from contracts.envelope import CHAIN_FIELDS
from contracts.events import EVENT_CLASSES
from eventcore.messaging import OutgoingMessage, envelope_message, stored_message
from eventcore.store import RecordedEvent, StoredEvent
from eventcore.store.batch import Head, links, prepare, recorded
from eventcore.tracecontext import UnrecordedTracer
from golden_thread.bench.fixtures import Drafts
from tests.integration.store_kit import SOURCE, consent_draft, new_subject

TOPIC = "intake.consent.v1"


def stored(traceparent: str | None) -> tuple[StoredEvent, RecordedEvent]:
    """A consent change as the store keeps it (its canonical text), and as it is read decoded."""
    draft = consent_draft(new_subject(), 1).model_copy(update={"traceparent": traceparent})
    rows = prepare(SOURCE, [draft])
    chain = links(Head(6, bytes(32)), rows)
    [event] = recorded(rows, chain)
    [(sequence, prev, new)] = chain
    return StoredEvent(sequence, draft.id, draft.type, draft.subject, rows[0].text.encode(),
                       prev, new), event


def message_of(tracer: object, topic: str, event: StoredEvent) -> OutgoingMessage:
    return stored_message(tracer, topic, SOURCE, event)  # type: ignore[arg-type]


def new_traceparent(flags: str = "01") -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-{flags}"


def as_before(event: StoredEvent) -> bytes:
    """The message's value as the relay made it until finding 96: the stored text decoded, the
    chain fields added, encoded again (`EventStore.read_after`, then `envelope_message`)."""
    return orjson.dumps({**orjson.loads(event.body), "sequence": event.sequence,
                         "prevhash": event.prev_hash.hex(), "hash": event.hash.hex()})


def headers(message: OutgoingMessage) -> dict[str, bytes]:
    return dict(message.headers)


@pytest.mark.parametrize("flags", ["03", "01", "02", "00"])  # 03: intake's (random trace id)
def test_the_quick_path_gives_the_span_the_tracer_would(flags: str) -> None:
    parent = new_traceparent(flags)
    event, decoded = stored(parent)
    tracer = UnrecordedTracer(DEFAULT_ON, TracerProvider().id_generator)
    assert tracer.remote_child(parent) is not None  # the quick path is taken
    message = message_of(tracer, TOPIC, event)
    version, trace_id, span_id, made_flags = headers(message)["traceparent"].decode().split("-")
    assert (version, trace_id, made_flags) == ("00", parent.split("-")[1], flags)
    assert span_id != parent.split("-")[2] and int(span_id, 16) != 0
    # The tracer's own path (the SDK's tracer with the same sampler) agrees.
    slow = headers(message_of(TracerProvider(sampler=DEFAULT_ON).get_tracer("t"), TOPIC,
                                  event))["traceparent"]
    assert slow.decode().split("-")[1::2] == [trace_id, made_flags]
    # Everything else is the decoded envelope's message, byte for byte.
    plain = envelope_message(TOPIC, orjson.loads(as_before(event)))
    assert orjson.loads(plain.value) == decoded.envelope
    assert (message.topic, message.key, message.value) == (plain.topic, plain.key, plain.value)
    assert [h for h in message.headers if h[0] != "traceparent"] == [
        h for h in plain.headers if h[0] not in ("traceparent", "tracestate")]


def test_a_recording_tracer_records_the_publish_span_the_header_carries() -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(spans))
    parent = new_traceparent()
    message = message_of(provider.get_tracer("t"), TOPIC, stored(parent)[0])
    [span] = spans.get_finished_spans()
    assert span.kind is SpanKind.PRODUCER and span.name == f"{TOPIC} publish"
    assert span.parent is not None and f"{span.parent.span_id:016x}" == parent.split("-")[2]
    assert headers(message)["traceparent"].decode() == (
        f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01")


@pytest.mark.parametrize("given", [None, "not a traceparent"])
def test_an_event_without_a_valid_trace_starts_a_new_one(given: str | None) -> None:
    tracer = UnrecordedTracer(DEFAULT_ON, TracerProvider().id_generator)
    event, _ = stored(None)
    if given is not None:  # a stored value the contract would refuse, read as none
        event = dataclasses.replace(event, body=event.body.replace(
            b'"traceparent":null', b'"traceparent":"%s"' % given.encode()))
        assert given.encode() in event.body
    made = headers(message_of(tracer, TOPIC, event))["traceparent"].decode().split("-")
    assert made[0] == "00" and int(made[1], 16) != 0 and int(made[2], 16) != 0


def test_a_sampler_that_asks_beyond_the_parent_takes_the_tracer_s_path() -> None:
    never = ParentBased(ALWAYS_ON, remote_parent_sampled=TraceIdRatioBased(0.0))
    tracer = UnrecordedTracer(never, TracerProvider().id_generator)
    parent = new_traceparent()
    made = headers(message_of(tracer, TOPIC, stored(parent)[0]))["traceparent"].decode()
    assert made.split("-")[1] == parent.split("-")[1] and made.endswith("-00")


@pytest.mark.parametrize("top_level", [True, False])
def test_a_traceparent_written_in_the_payload_s_text_is_not_taken_for_the_event_s(
        top_level: bool) -> None:
    """Free text that spells a traceparent key (its quotes escaped in the stored text) is not
    the event's: the trace continued is the top-level one, or a new one where there is none."""
    tracer = UnrecordedTracer(DEFAULT_ON, TracerProvider().id_generator)
    own, lookalike = (new_traceparent() for _ in "ab")
    body = Drafts().body()
    body["data"]["summary"] = f'Said: "traceparent":"{lookalike}" and "traceparent":null'
    body["traceparent"] = own if top_level else None
    draft: EventDraft[Any] = EventDraft.model_validate(body)
    rows = prepare("intake", [draft])
    chain = links(Head(0, bytes(32)), rows)
    [(sequence, prev, new)] = chain
    event = StoredEvent(sequence, draft.id, draft.type, draft.subject, rows[0].text.encode(),
                        prev, new)
    assert lookalike.encode() in event.body
    message = stored_message(tracer, "intake.conversations.v1", "intake", event)
    trace_id = headers(message)["traceparent"].decode().split("-")[1]
    assert trace_id != lookalike.split("-")[1]
    assert (trace_id == own.split("-")[1]) is top_level
    assert message.value == as_before(event)


def _jsonb_printed(text: bytes) -> bytes:
    """A body as PostgreSQL printed a jsonb (before migration 004): keys by length, then bytes;
    a space after each separator."""
    def order(value: object) -> object:
        if isinstance(value, dict):
            return {k: order(value[k]) for k in sorted(value, key=lambda k: (len(k), k))}
        if isinstance(value, list):
            return [order(v) for v in value]
        return value
    return json.dumps(order(orjson.loads(text)), ensure_ascii=False).encode()


def test_a_row_stored_before_the_body_was_kept_as_text_is_published_as_before() -> None:
    parent = new_traceparent()
    event, decoded = stored(parent)
    old = dataclasses.replace(event, body=_jsonb_printed(event.body))
    assert old.body.startswith(b'{"id": ')
    tracer = UnrecordedTracer(DEFAULT_ON, TracerProvider().id_generator)
    message = message_of(tracer, TOPIC, old)
    assert message.value == as_before(old) != as_before(event)  # jsonb's key order, compact
    assert orjson.loads(message.value) == decoded.envelope
    assert headers(message)["traceparent"].decode().split("-")[1] == parent.split("-")[1]


def _open_mappings(annotation: object, seen: set[type]) -> list[str]:
    """Where `annotation` could hold an object with keys of the sender's choosing."""
    if annotation is Any or get_origin(annotation) in (dict, Mapping) or annotation in (dict,):
        return [repr(annotation)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return []
        seen.add(annotation)
        if annotation.model_config.get("extra") != "forbid":
            return [f"{annotation.__name__} takes extra keys"]
        return [f"{annotation.__name__}.{name}: {found}"
                for name, field in annotation.model_fields.items()
                for found in _open_mappings(field.annotation, seen)]
    return [found for arg in get_args(annotation) for found in _open_mappings(arg, seen)]


@pytest.mark.parametrize("type_name", sorted(EVENT_CLASSES))
def test_the_stored_body_s_last_traceparent_key_is_the_event_s(type_name: str) -> None:
    """What `messaging._published` rests on: the canonical body begins with "actorid"; after
    "traceparent" come only string fields; the payload can hold no key of a sender's choosing
    (so a "traceparent" key inside it cannot be)."""
    event_class = EVENT_CLASSES[type_name]
    names = sorted(n for n in event_class.model_fields if n not in CHAIN_FIELDS)
    assert names[0] == "actorid"
    after = names[names.index("traceparent") + 1:]
    assert set(after) <= {"tracestate", "type"}
    for name in after:  # a string, null, or one of some strings
        annotation = event_class.model_fields[name].annotation
        assert annotation in (str, str | None) or (
            get_origin(annotation) is Literal
            and all(isinstance(a, str) for a in get_args(annotation))), (name, annotation)
    assert _open_mappings(event_class.model_fields["data"].annotation, set()) == []
