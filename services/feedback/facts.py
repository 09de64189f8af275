"""The facts feedback keeps of each upstream event it consumes: what the influence graph needs,
and nothing more (no summaries, no quotes). Kept in `received_facts`, in the order received,
so that `projections.rebuild` can fold the graph again from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from contracts import AnyEvent
from eventcore.db import json_rows

_CONSENT = ("to_recontact", "channel", "earliest_contact_on")
_KEEP: Mapping[str, tuple[str, ...]] = {
    "ConversationLogged": ("conversation_id", "participant_id", "categories", "place", "held_on"),
    "ConsentChanged": ("participant_id",),
    "ParticipantErased": ("participant_id",),
    "InsightDrafted": ("insight_id", "revision", "statement", "category", "conversation_ids"),
    "PriorityAgreed": ("priority_id", "statement", "insight_ids"),
    "ActionTaken": ("action_id", "priority_ids", "description", "service", "place", "framework",
                    "framework_area", "status"),
}


@dataclass(frozen=True)
class Fact:
    """What the graph needs of one upstream event, and nothing more (no summaries, no quotes)."""

    event_id: UUID
    event_type: str
    source: str
    sequence: int
    subject_version: int
    recorded_at: datetime
    correlation_id: str
    traceparent: str | None
    data: Mapping[str, Any]


#: What `fact_of` dumps of each payload: only what it keeps (a whole ConversationLogged, summary
#: and quotes included, took 5.9 µs to dump against 3.3 µs for these; docs/performance.md 69).
_DUMPED: Mapping[str, Mapping[str, Any]] = {
    kind: {k: True for k in keep} | {"consent": set(_CONSENT)} for kind, keep in _KEEP.items()}


def fact_of(event: AnyEvent) -> Fact:
    data = event.data.model_dump(mode="json", include=_DUMPED[event.type])
    return Fact(event.id, event.type, event.source, event.sequence, event.subjectversion,
                event.recordedtime, event.correlationid, event.traceparent, data)


# Set-based from one JSON text (eventcore.db.json_rows), in the batch's order (`position` is
# what `rebuild` refolds by). As pipelined rows (executemany) each fact cost PostgreSQL a Bind
# and an Execute of its own (docs/performance.md finding 67). The facts are read as their JSON
# text and cast: read as jsonb, json_to_recordset took ≈ 5 µs more per row (finding 80).
_RECORD = """
INSERT INTO received_facts (event_id, event_type, source, sequence, subject_version, recorded_at,
       correlation_id, traceparent, facts)
SELECT r.event_id, r.event_type, r.source, r.sequence, r.subject_version, r.recorded_at,
       r.correlation_id, r.traceparent, r.facts::jsonb
  FROM ROWS FROM (json_to_recordset($1::text::json)
                  AS (event_id uuid, event_type text, source text, sequence bigint,
                      subject_version int, recorded_at timestamptz, correlation_id text,
                      traceparent text, facts text))
       WITH ORDINALITY AS r(event_id, event_type, source, sequence, subject_version,
                            recorded_at, correlation_id, traceparent, facts, position)
 ORDER BY r.position
ON CONFLICT (event_id) DO NOTHING
"""


async def record_all(conn: asyncpg.Connection, facts: Sequence[Fact]) -> None:
    """Keep the facts received, in order, in one statement."""
    await conn.execute(_RECORD, json_rows([
        {"event_id": f.event_id, "event_type": f.event_type, "source": f.source,
         "sequence": f.sequence, "subject_version": f.subject_version,
         "recorded_at": f.recorded_at, "correlation_id": f.correlation_id,
         "traceparent": f.traceparent, "facts": dict(f.data)} for f in facts]))


def fact_from_row(row: asyncpg.Record) -> Fact:
    """A fact as `record_all` kept it."""
    return Fact(row["event_id"], row["event_type"], row["source"], row["sequence"],
                row["subject_version"], row["recorded_at"], row["correlation_id"],
                row["traceparent"], row["facts"])
