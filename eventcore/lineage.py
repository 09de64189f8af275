"""Which trace an event appended by a command continues: the trace of the events it rests on.

One conversation's journey is one trace. Intake's `POST /conversations` starts it; the relay,
Kafka and every consumer continue it through message headers. A command downstream (a partner
drafting an insight, a session agreeing a priority, a lead recording an action) is a new HTTP
request with a trace of its own, so the event it appends continues instead the trace of the first
event it rests on (its causation ids, in order): the span in which this service consumed that
event (the inbox keeps it) or, for the service's own earlier events, the trace stored with them.
The request's span gets a link to that trace, so each can be found from the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import asyncpg
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()

_LOOKUP = """
SELECT coalesce(
         (SELECT i.traceparent FROM inbox i
           WHERE i.event_id = c.event_id AND i.traceparent IS NOT NULL LIMIT 1),
         (SELECT e.body->>'traceparent' FROM events e WHERE e.event_id = c.event_id)
       ) AS traceparent
  FROM unnest($1::uuid[]) WITH ORDINALITY AS c(event_id, position)
 ORDER BY c.position
"""


async def continue_trace(
    conn: asyncpg.Connection, rests_on: Iterable[UUID | str], *, fallback: str | None
) -> str | None:
    """The traceparent for an event resting on `rests_on`: the first of their traces this
    service knows, else `fallback` (the request's own). Links the current span to it."""
    ids = [_uuid(e) for e in rests_on]
    ids = [i for i in ids if i is not None]
    if not ids:
        return fallback
    for row in await conn.fetch(_LOOKUP, ids):
        context = _span_context(row["traceparent"])
        if context is not None:
            current = trace.get_current_span()
            if current.get_span_context().trace_id != context.trace_id:
                current.add_link(context, {"golden_thread.link": "continues"})
            return str(row["traceparent"])
    return fallback


def _span_context(traceparent: str | None) -> trace.SpanContext | None:
    if not traceparent:
        return None
    found = trace.get_current_span(_PROPAGATOR.extract({"traceparent": traceparent}))
    context = found.get_span_context()
    return context if context.is_valid else None


def _uuid(value: UUID | str) -> UUID | None:
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        return None
