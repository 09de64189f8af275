"""The inbox: one row per consumed event and consumer, written in the effects' transaction.

A row's presence is the proof that the event's effects are committed, so a redelivered event
finds it and does nothing. `claim` inserts one row, `claim_many` a batch of them in one
statement (unnest) and answers which were fresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from contracts.registry import AnyEvent

_CLAIM = (
    "INSERT INTO inbox (consumer, event_id, event_type, source, sequence, outcome, traceparent)"
    " VALUES ($1, $2, $3, $4, $5, 'applied', $6)"
    " ON CONFLICT (event_id, consumer) DO NOTHING RETURNING true"
)

_CLAIM_MANY = """
INSERT INTO inbox (consumer, event_id, event_type, source, sequence, outcome, traceparent)
SELECT $1, c.event_id, c.event_type, c.source, c.sequence, 'applied', c.traceparent
  FROM unnest($2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[])
       AS c(event_id, event_type, source, sequence, traceparent)
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
    rows = await conn.fetch(
        _CLAIM_MANY, consumer, [e.id for e in events], [e.type for e in events],
        [e.source for e in events], [e.sequence for e in events], list(traceparents))
    return {row["event_id"] for row in rows}


async def remember_dead_letter(conn: asyncpg.Connection, consumer: str, event: AnyEvent) -> None:
    await conn.execute(_DEAD_LETTERED, consumer, event.id, event.type, event.source,
                       event.sequence)
