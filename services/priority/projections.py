"""Priority read models folded from the service's own store: agreed priorities and own actions.

Applied inline in the transaction that appends the event, and rebuildable at will from the store.
Insights and trust systems' actions arrive through the inbox instead (see handlers.policies);
`rebuild` leaves them alone, since this store does not hold them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from eventcore.store import EventStore, RecordedEvent
from services.priority.config import SOURCE
from services.priority.domain.actions import duplicate_key


async def project(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    if event.event_type == "PriorityAgreed":
        await _priority_agreed(conn, event.envelope, event.sequence)
    elif event.event_type == "ActionTaken":
        await record_action(conn, event.envelope)


async def _priority_agreed(conn: asyncpg.Connection, env: Mapping[str, Any], seq: int) -> None:
    data = env["data"]
    await conn.execute(
        """INSERT INTO priorities (priority_id, session_id, statement, insight_ids, agreed_by,
               tally, rule, event_id, sequence, agreed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::timestamptz)
           ON CONFLICT (priority_id) DO NOTHING""",
        data["priority_id"], data["session_id"], data["statement"], list(data["insight_ids"]),
        list(data["agreed_by"]), data["tally"], data["rule"], env["id"], seq, env["recordedtime"],
    )


async def record_action(conn: asyncpg.Connection, env: Mapping[str, Any]) -> None:
    """Insert or advance an action to this version; an older or equal version changes nothing."""
    data = env["data"]
    key = duplicate_key(data["description"], data["service"], data["place"], data["priority_ids"])
    await conn.execute(
        """INSERT INTO actions (action_id, source, version, event_id, priority_ids, description,
               service, place, framework, framework_area, status, duplicate_key, recorded_by,
               first_recorded, last_recorded)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                   $14::text::timestamptz, $14::text::timestamptz)
           ON CONFLICT (action_id) DO UPDATE
              SET version = EXCLUDED.version, event_id = EXCLUDED.event_id,
                  priority_ids = EXCLUDED.priority_ids, description = EXCLUDED.description,
                  service = EXCLUDED.service, place = EXCLUDED.place,
                  framework = EXCLUDED.framework, framework_area = EXCLUDED.framework_area,
                  status = EXCLUDED.status, duplicate_key = EXCLUDED.duplicate_key,
                  recorded_by = EXCLUDED.recorded_by, last_recorded = EXCLUDED.last_recorded
            WHERE actions.version < EXCLUDED.version AND actions.source = EXCLUDED.source""",
        data["action_id"], env["source"], env["subjectversion"], env["id"],
        list(data["priority_ids"]), data["description"], data["service"], data["place"],
        data["framework"], data["framework_area"], data["status"], key, env["actorid"],
        env["recordedtime"],
    )


async def rebuild(conn: asyncpg.Connection, store: EventStore, *, batch: int = 1000) -> int:
    """Drop and refold priorities and this service's own actions; returns events folded."""
    async with conn.transaction():
        await conn.execute("TRUNCATE priorities")
        await conn.execute("DELETE FROM actions WHERE source = $1", SOURCE)
        after, folded = 0, 0
        while events := await store.read_after(conn, after, batch):
            for event in events:
                await project(conn, event)
            after, folded = events[-1].sequence, folded + len(events)
    return folded
