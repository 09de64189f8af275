"""Read side: notifications, peer tasks, and the story of change behind one action."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any, Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from contracts.fields import PARTICIPANT_ID_PATTERN
from services.feedback.adapters.graph import load_action_graph
from services.feedback.domain.chain import threads
from services.feedback.domain.messages import Wording

Shown = Literal["held", "planned", "sending", "with_peer", "sent", "cancelled", "failed"]

# 'held' is a planned notification whose earliest contact day has not come yet.
_SHOWN_STATUS = "CASE WHEN status = 'planned' AND due_on > $1 THEN 'held' ELSE status END"


class NotificationFilter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    action_id: UUID | None = None
    participant_id: str | None = Field(default=None, max_length=64,
                                       pattern=PARTICIPANT_ID_PATTERN)
    status: Shown | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=1_000_000)


async def list_notifications(
    conn: asyncpg.Connection, f: NotificationFilter, today: date
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT * FROM (SELECT notification_id, participant_id, action_id, channel,
                   {_SHOWN_STATUS} AS status, due_on, attempts, reason, chain, planned_at,
                   sent_at FROM notifications) n
             WHERE ($2::uuid IS NULL OR action_id = $2) AND ($3::text IS NULL OR status = $3)
               AND ($4::text IS NULL OR participant_id = $4)
             ORDER BY planned_at, notification_id LIMIT $5 OFFSET $6""",
        today, f.action_id, f.status, f.participant_id, f.limit, f.offset)
    return [dict(r) for r in rows]


async def list_peer_tasks(
    conn: asyncpg.Connection, status: str, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT task_id, notification_id, participant_id, action_id, brief, status, outcome,
                  done_by, created_at, closed_at FROM peer_tasks
            WHERE status = $1 ORDER BY created_at, task_id LIMIT $2""", status, limit)
    return [dict(r) for r in rows]


async def story_of_change(
    conn: asyncpg.Connection, action_id: UUID, wording: Wording, today: date
) -> dict[str, Any] | None:
    """What was heard, agreed and changed, and who was told (counts, pseudonymous ids)."""
    graph = await load_action_graph(conn, action_id)
    if graph is None:
        return None
    plain = wording.glossary.plain
    action = await conn.fetchrow("SELECT * FROM graph_actions WHERE action_id = $1", action_id)
    priorities = await conn.fetch(
        "SELECT priority_id, statement FROM graph_priorities WHERE priority_id = ANY($1)"
        " ORDER BY priority_id", list(graph.action.priority_ids))
    insight_rows = await conn.fetch(
        "SELECT insight_id, revision, statement, category FROM graph_insights"
        " WHERE insight_id = ANY($1) ORDER BY insight_id", list(graph.insights))
    reached = threads(graph)
    heard = [graph.conversations[c] for t in reached.values() for c in t.conversation_ids]
    counts = Counter(code for c in heard for code in c.categories)
    told = await conn.fetch(
        f"SELECT {_SHOWN_STATUS} AS status, channel, participant_id FROM notifications"
        " WHERE action_id = $2 ORDER BY participant_id", today, action_id)
    return {
        "action_id": str(action_id),
        "heard": {
            "conversations": len(heard),
            "participants": len(reached),
            "categories": [{"code": code, "name": wording.categories.name(code),
                            "conversations": counts[code]}
                           for code in wording.categories.ordered(counts)],
        },
        "drafted": [{"insight_id": str(r["insight_id"]), "revision": r["revision"],
                     "statement": plain(r["statement"]), "category": r["category"],
                     "category_name": wording.categories.name(r["category"])}
                    for r in insight_rows],
        "agreed": [{"priority_id": str(r["priority_id"]), "statement": plain(r["statement"])}
                   for r in priorities],
        "changed": {
            "description": plain(action["description"]),
            "service": plain(action["service"], sentence=False),
            "place": plain(action["place"], sentence=False),
            "framework": plain(action["framework"], sentence=False),
            "framework_area": plain(action["framework_area"], sentence=False),
            "status": action["status"], "version": action["version"], "source": action["source"],
        },
        "waiting_for": {
            "priorities": sorted(str(p) for p in graph.action.priority_ids
                                 if p not in graph.priority_insights),
            "insights": sorted({str(i) for ids in graph.priority_insights.values() for i in ids
                                if i not in graph.insights}),
        },
        "told": {
            "by_status": dict(Counter(r["status"] for r in told)),
            "by_channel": dict(Counter(r["channel"] for r in told if r["status"] == "sent")),
            "participants_told": [r["participant_id"] for r in told if r["status"] == "sent"],
        },
    }
