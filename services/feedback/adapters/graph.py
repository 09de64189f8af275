"""Reading the influence graph: one action's neighbourhood, and the actions a node feeds."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from services.feedback.domain.chain import (
    ActionGraph,
    ActionNode,
    ConversationNode,
    InsightNode,
    ParticipantNode,
)


async def load_action_graph(conn: asyncpg.Connection, action_id: UUID) -> ActionGraph | None:
    """Everything known so far around one action (missing upstream nodes are simply absent)."""
    return (await load_action_graphs(conn, [action_id])).get(action_id)


async def load_action_graphs(conn: asyncpg.Connection, action_ids: Sequence[UUID]
                             ) -> dict[UUID, ActionGraph]:
    """`load_action_graph` of each action, in five statements however many actions there are
    (a batch may reach dozens: one at a time, that was five round trips each). Each node's
    links are read by their own index (a subquery per node): joined, the planner hashed the
    whole link table for a few hundred nodes (profiled, docs/performance.md 45)."""
    rows = await conn.fetch(
        """SELECT a.*, ARRAY(SELECT ap.priority_id FROM graph_action_priorities ap
                              WHERE ap.action_id = a.action_id ORDER BY ap.priority_id)
                       AS priority_ids
             FROM graph_actions a WHERE a.action_id = ANY($1::uuid[])""",
        list(action_ids),
    )
    actions = [ActionNode(
        action_id=row["action_id"], priority_ids=tuple(row["priority_ids"]), status=row["status"],
        description=row["description"], service=row["service"], place=row["place"],
        framework=row["framework"], framework_area=row["framework_area"],
        event_id=row["event_id"],
    ) for row in rows]
    links = await conn.fetch(
        "SELECT priority_id, insight_id FROM graph_priority_insights WHERE priority_id = ANY($1)"
        " ORDER BY priority_id, insight_id",  # the thread's insights in a stable order
        list({p for a in actions for p in a.priority_ids}),
    )
    priority_insights: dict[UUID, tuple[UUID, ...]] = {}
    for link in links:
        priority_insights[link["priority_id"]] = (
            *priority_insights.get(link["priority_id"], ()), link["insight_id"])
    insights = await _insights(conn, list({i for ids in priority_insights.values() for i in ids}))
    conversations = await _conversations(
        conn, list({c for i in insights.values() for c in i.conversation_ids}))
    participants = await _participants(
        conn, list({c.participant_id for c in conversations.values()}))
    graphs: dict[UUID, ActionGraph] = {}
    for action in actions:  # each its own neighbourhood, as if loaded alone
        its_links = {p: priority_insights[p] for p in action.priority_ids
                     if p in priority_insights}
        its_insights = {i: insights[i] for ids in its_links.values() for i in ids
                        if i in insights}
        its_conversations = {c: conversations[c] for i in its_insights.values()
                             for c in i.conversation_ids if c in conversations}
        its_participants = {c.participant_id: participants[c.participant_id]
                            for c in its_conversations.values()
                            if c.participant_id in participants}
        graphs[action.action_id] = ActionGraph(action, its_links, its_insights,
                                               its_conversations, its_participants)
    return graphs


async def _insights(conn: asyncpg.Connection, ids: list[UUID]) -> dict[UUID, InsightNode]:
    rows = await conn.fetch(
        """SELECT i.insight_id, i.category,
                  ARRAY(SELECT ic.conversation_id FROM graph_insight_conversations ic
                         WHERE ic.insight_id = i.insight_id ORDER BY ic.conversation_id)
                  AS conversation_ids
             FROM graph_insights i WHERE i.insight_id = ANY($1)""",
        ids,
    )
    return {r["insight_id"]: InsightNode(r["insight_id"], r["category"],
                                         tuple(r["conversation_ids"])) for r in rows}


async def _conversations(
    conn: asyncpg.Connection, ids: list[UUID]
) -> dict[UUID, ConversationNode]:
    rows = await conn.fetch(
        "SELECT conversation_id, participant_id, categories, event_id"
        " FROM graph_conversations WHERE conversation_id = ANY($1)",
        ids,
    )
    return {r["conversation_id"]: ConversationNode(r["conversation_id"], r["participant_id"],
                                                   tuple(r["categories"]), r["event_id"])
            for r in rows}


async def _participants(conn: asyncpg.Connection, ids: list[str]) -> dict[str, ParticipantNode]:
    rows = await conn.fetch(
        "SELECT participant_id, to_recontact, channel, earliest_contact_on, erased"
        " FROM graph_participants WHERE participant_id = ANY($1)",
        ids,
    )
    return {r["participant_id"]: ParticipantNode(r["participant_id"], r["to_recontact"],
                                                 r["channel"], r["earliest_contact_on"],
                                                 r["erased"]) for r in rows}


# Each step looks up the ids the previous one found (`= ANY(ARRAY(...))`: an index scan per
# step, whatever the statistics say). As joins, the planner misjudged how many rows a batch's
# ids reach while the graph grew faster than ANALYZE ran, and merge-joined whole indexes:
# 17-21 ms per batch against a few tenths of a millisecond (profiled, docs/performance.md 45).
_INSIGHTS_OF = ("ARRAY(SELECT DISTINCT insight_id FROM graph_insight_conversations"
                " WHERE conversation_id = ANY({}))")
_PRIORITIES_OF = ("ARRAY(SELECT DISTINCT priority_id FROM graph_priority_insights"
                  " WHERE insight_id = ANY({}))")
_CONVERSATIONS_OF = ("ARRAY(SELECT conversation_id FROM graph_conversations"
                     " WHERE participant_id = ANY({}))")
_ACTIONS_OF = "SELECT DISTINCT action_id FROM graph_action_priorities WHERE priority_id = ANY({})"
_FED_BY = {
    "priority": _ACTIONS_OF.format("$1"),
    "insight": _ACTIONS_OF.format(_PRIORITIES_OF.format("$1")),
    "conversation": _ACTIONS_OF.format(_PRIORITIES_OF.format(_INSIGHTS_OF.format("$1"))),
    "participant": _ACTIONS_OF.format(
        _PRIORITIES_OF.format(_INSIGHTS_OF.format(_CONVERSATIONS_OF.format("$1")))),
}


async def actions_fed_by(conn: asyncpg.Connection, kind: str, ids: Sequence[object]) -> list[UUID]:
    """Actions that a priority, insight, conversation or participant feeds (so far)."""
    rows = await conn.fetch(_FED_BY[kind], list(ids))
    return sorted(r["action_id"] for r in rows)
