"""Insight read models folded from insight's own event store: `insights` (latest revision) and
`insight_revisions` (every revision, history kept).

Applied inline in the transaction that appends the event, and rebuildable at will. The
`conversations` and `erased_participants` tables are not folded here: they are fed by consumed
intake events through the inbox and are the source of truth for that part, so rebuild() leaves
them alone (re-consuming intake's topics from the beginning with a fresh consumer group and an
emptied inbox is how they would be rebuilt).
"""

from __future__ import annotations

import asyncpg

from contracts import InsightDrafted
from eventcore.store import EventStore, RecordedEvent

READ_MODELS = ("insights", "insight_revisions")


async def project(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    if event.event_type == "InsightDrafted":
        await _insight_drafted(conn, event)


async def _insight_drafted(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    env = event.envelope
    data = InsightDrafted.model_validate(env["data"])
    ids = list(data.conversation_ids)
    await conn.execute(
        """INSERT INTO insight_revisions (insight_id, revision, statement, category,
               conversation_ids, partner_id, event_id, causation_ids, sequence, recorded_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::timestamptz)
           ON CONFLICT (insight_id, revision) DO NOTHING""",
        data.insight_id, data.revision, data.statement, data.category, ids, env["actorid"],
        event.event_id, list(env["causationids"]), event.sequence, env["recordedtime"],
    )
    await conn.execute(
        """INSERT INTO insights (insight_id, revision, statement, category, conversation_ids,
               partner_id, drafted_by, drafted_at, revised_at, sequence)
           VALUES ($1, $2, $3, $4, $5, $6, $6, $7::text::timestamptz, $7::text::timestamptz, $8)
           ON CONFLICT (insight_id) DO UPDATE
              SET revision = EXCLUDED.revision, statement = EXCLUDED.statement,
                  category = EXCLUDED.category, conversation_ids = EXCLUDED.conversation_ids,
                  partner_id = EXCLUDED.partner_id, revised_at = EXCLUDED.revised_at,
                  sequence = EXCLUDED.sequence
            WHERE insights.revision < EXCLUDED.revision""",
        data.insight_id, data.revision, data.statement, data.category, ids, env["actorid"],
        env["recordedtime"], event.sequence,
    )


async def rebuild(conn: asyncpg.Connection, store: EventStore, *, batch: int = 1000) -> int:
    """Empty and refold the insight read models from the store; returns events folded."""
    async with conn.transaction():
        await conn.execute(f"TRUNCATE {', '.join(READ_MODELS)}")
        after, folded = 0, 0
        while events := await store.read_after(conn, after, batch):
            for event in events:
                await project(conn, event)
            after, folded = events[-1].sequence, folded + len(events)
    return folded
