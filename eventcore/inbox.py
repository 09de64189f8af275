"""The inbox: one row per consumed event and consumer, written in the effects' transaction.

A row's presence is the proof that the event's effects are committed, so a redelivered event
finds it and does nothing. `claim` inserts one row, `claim_many` a batch of them in one
statement (its rows as one JSON array) and answers which were fresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from contracts.registry import AnyEvent
from eventcore.db import json_rows

_CLAIM = (
    "INSERT INTO inbox (consumer, event_id, event_type, source, sequence, outcome, traceparent)"
    " VALUES ($1, $2, $3, $4, $5, 'applied', $6)"
    " ON CONFLICT (event_id, consumer) DO NOTHING RETURNING true"
)

# The batch's rows as one JSON array: one parameter, not one array per column, which asyncpg
# encodes element by element (docs/performance.md finding 66).
_CLAIM_MANY = """
INSERT INTO inbox (consumer, event_id, event_type, source, sequence, outcome, traceparent)
SELECT $1, c.event_id, c.event_type, c.source, c.sequence, 'applied', c.traceparent
  FROM json_to_recordset($2::text::json)
       AS c(event_id uuid, event_type text, source text, sequence bigint, traceparent text)
ON CONFLICT (event_id, consumer) DO NOTHING
RETURNING event_id
"""

_DEAD_LETTERED = (
    "INSERT INTO inbox (consumer, event_id, event_type, source, sequence, outcome)"
    " VALUES ($1, $2, $3, $4, $5, 'dead_lettered') ON CONFLICT DO NOTHING"
)


async def claim(conn: asyncpg.Connection, consumer: str, event: AnyEvent,
                traceparent: str | None) -> bool:
    """Record `event` as applied by `consumer`; False when it already was (or was dead-lettered)."""
    fresh = await conn.fetchval(_CLAIM, consumer, event.id, event.type, event.source,
                                event.sequence, traceparent)
    return bool(fresh)


async def claim_many(conn: asyncpg.Connection, consumer: str, events: Sequence[AnyEvent],
                     traceparents: Sequence[str | None]) -> set[UUID]:
    """Record every event as applied by `consumer` in one statement; the ids that were fresh."""
    rows = [{"event_id": e.id, "event_type": e.type, "source": e.source, "sequence": e.sequence,
             "traceparent": traceparent}
            for e, traceparent in zip(events, traceparents, strict=True)]
    return {row["event_id"] for row in await conn.fetch(_CLAIM_MANY, consumer, json_rows(rows))}


async def remember_dead_letter(conn: asyncpg.Connection, consumer: str, event: AnyEvent) -> None:
    await conn.execute(_DEAD_LETTERED, consumer, event.id, event.type, event.source,
                       event.sequence)
