"""Policies for consumed events, run by the idempotent consumer inside its inbox transaction."""

from __future__ import annotations

import asyncpg

from contracts import ActionTakenEvent, InsightDraftedEvent
from eventcore.arrays import Flat
from eventcore.consumer import DomainRejection
from eventcore.db import json_rows
from services.priority.config import SOURCE
from services.priority.projections import record_action

# A batch's insights in one statement: a row per event from one JSON text, the conversations
# each cites sliced from one flat uuid[] (eventcore/arrays.py: as JSON arrays they cost the
# statement ≈ 7 µs per row in PostgreSQL; docs/performance.md finding 66). Row by row
# (executemany), 463 insights took 7.7-9.2 ms against 5.6-6.5 ms in one statement (finding 53).
# An insight drafted twice in a batch: the row applying them in order would leave is kept (the
# first of its highest revision), so no row is written twice.
_RECORD_INSIGHTS = """
INSERT INTO insights (insight_id, revision, statement, category, conversation_ids, event_id,
       source, drafted_at)
SELECT DISTINCT ON (r.insight_id) r.insight_id, r.revision, r.statement, r.category,
       ($2::uuid[])[r.cited_from:r.cited_to], r.event_id, r.source, r.drafted_at
  FROM ROWS FROM (json_to_recordset($1::text::json)
                  AS (insight_id uuid, revision int, statement text, category text,
                      cited_from int, cited_to int, event_id uuid, source text,
                      drafted_at timestamptz))
       WITH ORDINALITY AS r(insight_id, revision, statement, category, cited_from, cited_to,
                            event_id, source, drafted_at, position)
 ORDER BY r.insight_id, r.revision DESC, r.position
ON CONFLICT (insight_id) DO UPDATE
   SET revision = EXCLUDED.revision, statement = EXCLUDED.statement,
       category = EXCLUDED.category, conversation_ids = EXCLUDED.conversation_ids,
       event_id = EXCLUDED.event_id, source = EXCLUDED.source, drafted_at = EXCLUDED.drafted_at
 WHERE insights.revision < EXCLUDED.revision
"""


async def when_insights_drafted_record_them(
    conn: asyncpg.Connection, events: list[InsightDraftedEvent]
) -> None:
    """Keep each insight's latest revision; an older or repeated revision changes nothing."""
    cited = Flat()
    rows = []
    for e in events:
        cited.add(e.data.conversation_ids)
        rows.append({"insight_id": e.data.insight_id, "revision": e.data.revision,
                     "statement": e.data.statement, "category": e.data.category,
                     "cited_from": cited.starts[-1], "cited_to": cited.ends[-1],
                     "event_id": e.id, "source": e.source, "drafted_at": e.time})
    await conn.execute(_RECORD_INSIGHTS, json_rows(rows), cited)


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
