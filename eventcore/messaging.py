"""Kafka producer, message headers and keys shared by the relay and the dead-letter path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from contracts.chain import chained
from eventcore.settings import CoreSettings
from eventcore.store import StoredEvent
from eventcore.telemetry import span_from
from eventcore.tracecontext import UnrecordedTracer

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
_CONTENT_TYPE = CONTENT_TYPE.encode()
_CANONICAL_START = b'{"actorid":'
_TRACEPARENT_KEY = b'"traceparent":'
_W3C = TraceContextTextMapPropagator()


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    topic: str
    key: bytes
    value: bytes
    headers: Sequence[tuple[str, bytes]] = field(default_factory=tuple)

    def header(self, key: str) -> bytes:
        """The first header named `key` (KeyError if none)."""
        for name, value in self.headers:
            if name == key:
                return value
        raise KeyError(key)


def envelope_message(topic: str, envelope: Mapping[str, Any]) -> OutgoingMessage:
    """A structured-mode CloudEvent; a few ce_ headers let tools route without parsing."""
    headers: list[tuple[str, bytes]] = [
        ("content-type", _CONTENT_TYPE),
        ("ce_id", str(envelope["id"]).encode()),
        ("ce_type", str(envelope["type"]).encode()),
        ("ce_source", str(envelope["source"]).encode()),
        ("ce_sequence", str(envelope["sequence"]).encode()),
    ]
    if envelope.get("traceparent"):
        headers.append(("traceparent", str(envelope["traceparent"]).encode()))
        if envelope.get("tracestate"):
            headers.append(("tracestate", str(envelope["tracestate"]).encode()))
    value = orjson.dumps(envelope)  # compact UTF-8 JSON, as json.dumps(separators=(",", ":"))
    return OutgoingMessage(topic, str(envelope["subject"]).encode(), value, tuple(headers))


def stored_message(tracer: trace.Tracer, topic: str, source: str,
                   event: StoredEvent) -> OutgoingMessage:
    """The relay's message for a stored event, under a publish span that continues the trace
    stored with the event; the message carries that span's context.

    The value is the stored body's text with the chain fields added (`contracts.chain.chained`):
    the bytes `envelope_message` gives for the decoded event, without decoding and encoding
    ≈ 1.3 kB again per event (≈ 20 µs of the relay's CPU; docs/performance.md finding 96).
    A row stored before migration 004 (jsonb's printed form) is decoded and encoded as before.

    From a tracer that records nothing (`UnrecordedTracer`), the span is made from the stored
    traceparent's text where its sampled flag decides (`remote_child`, as a consumer's span per
    event is), and its traceparent written as the header: no context attached, no propagator
    (≈ 50 µs of the relay's CPU per event the other way; finding 95). Either way the headers
    are W3C's, whatever the configured propagators (consumers read those), and the span
    continues the stored traceparent alone: a stored tracestate is not carried on (none is
    written today)."""
    value, stored = _published(event)
    headers = [("content-type", _CONTENT_TYPE), ("ce_id", str(event.event_id).encode()),
               ("ce_type", event.event_type.encode()), ("ce_source", source.encode()),
               ("ce_sequence", str(event.sequence).encode())]
    headers.extend(_trace_headers(tracer, topic, event, stored))
    return OutgoingMessage(topic, event.subject.encode(), value, tuple(headers))


def _published(event: StoredEvent) -> tuple[bytes, str]:
    """The message's value for a stored event, and the traceparent stored with it ("" if none).

    The canonical body (sorted keys, compact) begins with its first key, "actorid", and its
    top-level "traceparent" is the last in the text: only "tracestate" and "type", both
    strings, follow it at the top level, the payload ("data") comes before it, and a key inside
    a string value has its quotes escaped. jsonb's printed form begins with "id", its shortest
    key."""
    body, prev, new = event.body, event.prev_hash.hex(), event.hash.hex()
    if body.startswith(_CANONICAL_START):
        at = body.rfind(_TRACEPARENT_KEY) + len(_TRACEPARENT_KEY)  # its value; null if not text
        stored = ""
        if at >= len(_TRACEPARENT_KEY) and body[at:at + 1] == b'"':
            stored = body[at + 1:body.index(b'"', at + 1)].decode()
        return chained(body, event.sequence, prev, new), stored
    envelope = orjson.loads(body)
    envelope.update(sequence=event.sequence, prevhash=prev, hash=new)
    return orjson.dumps(envelope), str(envelope.get("traceparent") or "")


def _trace_headers(tracer: trace.Tracer, topic: str, event: StoredEvent,
                   stored: str) -> list[tuple[str, bytes]]:
    if type(tracer) is UnrecordedTracer:
        child = tracer.remote_child(stored)
        if child is not None:
            return [("traceparent", child.traceparent.encode())]
    with span_from(tracer, f"{topic} publish", {"traceparent": stored}, kind=SpanKind.PRODUCER,
                   attributes={"messaging.system": "kafka", "messaging.destination.name": topic,
                               "messaging.message.id": str(event.event_id),
                               "golden_thread.sequence": event.sequence}):
        carrier: dict[str, str] = {}
        _W3C.inject(carrier)
    return [(k, v.encode()) for k, v in carrier.items()]


def make_producer(settings: CoreSettings, bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=2,
        max_batch_size=settings.kafka_max_batch_bytes,
        metadata_max_age_ms=settings.kafka_metadata_max_age_ms,
    )


async def send_all(
    producer: AIOKafkaProducer, messages: Sequence[OutgoingMessage]
) -> list[RecordMetadata]:
    """Send a batch pipelined and wait until the broker acknowledged every message."""
    futures = [
        await producer.send(m.topic, m.value, key=m.key, headers=list(m.headers)) for m in messages
    ]
    return [await fut for fut in futures]
