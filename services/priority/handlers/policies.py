"""Policies for consumed events, run by the idempotent consumer inside its inbox transaction."""

from __future__ import annotations

import asyncpg

from contracts import ActionTakenEvent, InsightDraftedEvent
from eventcore.consumer import DomainRejection
from services.priority.config import SOURCE
from services.priority.projections import record_action

_RECORD_INSIGHT = """
INSERT INTO insights (insight_id, revision, statement, category, conversation_ids, event_id,
       source, drafted_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (insight_id) DO UPDATE
   SET revision = EXCLUDED.revision, statement = EXCLUDED.statement,
       category = EXCLUDED.category, conversation_ids = EXCLUDED.conversation_ids,
       event_id = EXCLUDED.event_id, source = EXCLUDED.source, drafted_at = EXCLUDED.drafted_at
 WHERE insights.revision < EXCLUDED.revision
"""


async def when_insights_drafted_record_them(
    conn: asyncpg.Connection, events: list[InsightDraftedEvent]
) -> None:
    """Keep each insight's latest revision; an older or repeated revision changes nothing.
    One pipelined statement per event, in order (asyncpg's executemany: one round trip)."""
    await conn.executemany(_RECORD_INSIGHT, [
        (e.data.insight_id, e.data.revision, e.data.statement, e.data.category,
         list(e.data.conversation_ids), e.id, e.source, e.time) for e in events])


async def when_insight_drafted_record_insight(
    conn: asyncpg.Connection, event: InsightDraftedEvent
) -> None:
    await when_insights_drafted_record_them(conn, [event])


async def when_action_taken_elsewhere_record_it(
    conn: asyncpg.Connection, event: ActionTakenEvent
) -> None:
    """Record a trust system's action; this service's own actions are already recorded."""
    if event.source == SOURCE:
        if await conn.fetchval("SELECT true FROM events WHERE event_id = $1", event.id):
            return
        raise DomainRejection("claims source 'priority' but is not in the priority store")
    owner = await conn.fetchval("SELECT source FROM actions WHERE action_id = $1",
                                event.data.action_id)
    if owner is not None and owner != event.source:
        raise DomainRejection(f"action {event.data.action_id} was recorded by another source")
    cited = event.data.priority_ids
    known = {r["priority_id"] for r in await conn.fetch(
        "SELECT priority_id FROM priorities WHERE priority_id = ANY($1::uuid[])", list(cited))}
    unknown = [str(p) for p in cited if p not in known]
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more"
                                          if len(unknown) > 5 else "")
        raise DomainRejection(f"cites priorities that were not agreed: {shown}")
    await record_action(conn, event.model_dump(mode="json"))
