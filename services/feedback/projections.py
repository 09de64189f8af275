"""The influence graph, folded from the minimal facts of consumed upstream events.

Every fold is order-independent, because topics arrive in any order across partitions: an
insight keeps its latest revision, an action its latest version, a participant the latest
consent (by intake's sequence) and erasure for good. `rebuild()` refolds the graph from
`received_facts` and re-marks what the feedback event store says was sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from eventcore.db import json_rows
from eventcore.store import EventStore
from services.feedback.facts import Fact, fact_from_row

GRAPH_TABLES = (
    "graph_participants", "graph_conversations", "graph_insights", "graph_insight_conversations",
    "graph_priorities", "graph_priority_insights", "graph_actions", "graph_action_priorities",
)

# A conversation already in the graph stays as it is; of two in one run, the first is kept.
_FOLD_CONVERSATIONS = """
INSERT INTO graph_conversations (conversation_id, participant_id, categories, place, held_on,
       event_id)
SELECT r.conversation_id, r.participant_id, r.categories, r.place, r.held_on, r.event_id
  FROM ROWS FROM (json_to_recordset($1::text::json)
                  AS (conversation_id uuid, participant_id text, categories text[], place text,
                      held_on date, event_id uuid))
       WITH ORDINALITY AS r(conversation_id, participant_id, categories, place, held_on,
                            event_id, position)
 ORDER BY r.position
ON CONFLICT (conversation_id) DO NOTHING
"""

# Latest consent wins: by the source's sequence, or by time between different sources.
_CONSENT_WINS = """
ON CONFLICT (participant_id) DO UPDATE
   SET to_recontact = EXCLUDED.to_recontact, channel = EXCLUDED.channel,
       earliest_contact_on = EXCLUDED.earliest_contact_on,
       consent_source = EXCLUDED.consent_source,
       consent_sequence = EXCLUDED.consent_sequence, consent_at = EXCLUDED.consent_at
 WHERE p.consent_at IS NULL
    OR (p.consent_source = EXCLUDED.consent_source
        AND p.consent_sequence < EXCLUDED.consent_sequence)
    OR (p.consent_source <> EXCLUDED.consent_source AND p.consent_at < EXCLUDED.consent_at)
"""

_FOLD_CONSENT = """
INSERT INTO graph_participants AS p (participant_id, to_recontact, channel, earliest_contact_on,
       consent_source, consent_sequence, consent_at)
VALUES ($1, $2, $3, $4::text::date, $5, $6, $7)
""" + _CONSENT_WINS

# A run naming each participant once: every row meets only what the graph held before the run,
# so one statement folds it as the rows one by one would.
_FOLD_CONSENTS = """
INSERT INTO graph_participants AS p (participant_id, to_recontact, channel, earliest_contact_on,
       consent_source, consent_sequence, consent_at)
SELECT * FROM json_to_recordset($1::text::json)
    AS r(participant_id text, to_recontact boolean, channel text, earliest_contact_on date,
         consent_source text, consent_sequence bigint, consent_at timestamptz)
""" + _CONSENT_WINS


def _consent_args(fact: Fact) -> tuple[Any, ...]:
    d, c = fact.data, fact.data["consent"]
    return (d["participant_id"], c["to_recontact"], c["channel"], c["earliest_contact_on"],
            fact.source, fact.sequence, fact.recorded_at)


async def fold_all(conn: asyncpg.Connection, facts: Sequence[Fact]) -> None:
    """Apply facts in order, a run of one type at a time, in a few statements per run whatever
    its length (profiled: folding insights, priorities and actions one by one took three round
    trips each, most of a feedback batch's time). Each run ends as folding its facts one by one
    would: conversations go in one statement (the first of an id kept); consent changes too, in
    a run naming each participant once, otherwise as pipelined statements (executemany, each row
    in order: whether one replaces another depends on what the row holds by then); of several
    facts for one insight, priority or action in a run, only the one that folding in order
    would leave standing is written."""
    start = 0
    while start < len(facts):
        kind = facts[start].event_type
        end = start + 1
        while end < len(facts) and facts[end].event_type == kind:
            end += 1
        await _RUNS[kind](conn, facts[start:end])
        start = end


async def _conversations(conn: asyncpg.Connection, run: Sequence[Fact]) -> None:
    await conn.execute(_FOLD_CONVERSATIONS, json_rows([
        {"conversation_id": f.data["conversation_id"], "participant_id": f.data["participant_id"],
         "categories": f.data["categories"], "place": f.data["place"],
         "held_on": f.data["held_on"], "event_id": f.event_id} for f in run]))
    await _consents(conn, run)


async def _consents(conn: asyncpg.Connection, run: Sequence[Fact]) -> None:
    people = {f.data["participant_id"] for f in run}
    if len(people) < len(run) or len(run) == 1:
        # Whether a later consent replaces an earlier one depends on what the row holds by
        # then (and one statement may not update a row twice): one by one, in order. (A run of
        # one goes the same way: one row either way.)
        await conn.executemany(_FOLD_CONSENT, [_consent_args(f) for f in run])
        return
    await conn.execute(_FOLD_CONSENTS, json_rows([
        {"participant_id": f.data["participant_id"],
         "to_recontact": f.data["consent"]["to_recontact"],
         "channel": f.data["consent"]["channel"],
         "earliest_contact_on": f.data["consent"]["earliest_contact_on"],
         "consent_source": f.source, "consent_sequence": f.sequence,
         "consent_at": f.recorded_at} for f in run]))


async def _erasures(conn: asyncpg.Connection, run: Sequence[Fact]) -> None:
    await conn.execute(
        """INSERT INTO graph_participants (participant_id, erased)
           SELECT DISTINCT p, true FROM unnest($1::text[]) AS p
           ON CONFLICT (participant_id) DO UPDATE SET erased = true""",
        [f.data["participant_id"] for f in run],
    )


def _standing(run: Sequence[Fact], key: str, rank: Callable[[Fact], int]) -> list[Fact]:
    """Per id, the fact folding `run` in order leaves: the first of the highest rank (a later
    fact replaces an earlier one only when its rank is higher)."""
    best: dict[str, Fact] = {}
    for fact in run:
        held = best.get(fact.data[key])
        if held is None or rank(fact) > rank(held):
            best[fact.data[key]] = fact
    return list(best.values())


async def _insights(conn: asyncpg.Connection, run: Sequence[Fact]) -> None:
    facts = _standing(run, "insight_id", lambda f: f.data["revision"])
    newer = await conn.fetch(
        """INSERT INTO graph_insights AS i (insight_id, revision, statement, category, event_id)
           SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::uuid[])
           ON CONFLICT (insight_id) DO UPDATE SET revision = EXCLUDED.revision,
               statement = EXCLUDED.statement, category = EXCLUDED.category,
               event_id = EXCLUDED.event_id
            WHERE i.revision < EXCLUDED.revision
           RETURNING insight_id""",
        *_columns(facts, lambda f: (f.data["insight_id"], f.data["revision"], f.data["statement"],
                                    f.data["category"], f.event_id)),
    )
    await _relink(conn, "graph_insight_conversations", "insight_id", "conversation_id",
                  facts, "conversation_ids", newer)


async def _priorities(conn: asyncpg.Connection, run: Sequence[Fact]) -> None:
    facts = _standing(run, "priority_id", lambda f: 0)  # agreed once: the first stands
    fresh = await conn.fetch(
        """INSERT INTO graph_priorities (priority_id, statement, event_id)
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[])
           ON CONFLICT (priority_id) DO NOTHING RETURNING priority_id""",
        *_columns(facts, lambda f: (f.data["priority_id"], f.data["statement"], f.event_id)),
    )
    await _relink(conn, "graph_priority_insights", "priority_id", "insight_id",
                  facts, "insight_ids", fresh)


async def _actions(conn: asyncpg.Connection, run: Sequence[Fact]) -> None:
    facts = _standing(run, "action_id", lambda f: f.subject_version)
    newer = await conn.fetch(
        """INSERT INTO graph_actions AS a (action_id, version, source, description, service,
               place, framework, framework_area, status, event_id, correlation_id, traceparent)
           SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[],
                                $6::text[], $7::text[], $8::text[], $9::text[], $10::uuid[],
                                $11::text[], $12::text[])
           ON CONFLICT (action_id) DO UPDATE SET version = EXCLUDED.version,
               source = EXCLUDED.source, description = EXCLUDED.description,
               service = EXCLUDED.service, place = EXCLUDED.place,
               framework = EXCLUDED.framework, framework_area = EXCLUDED.framework_area,
               status = EXCLUDED.status, event_id = EXCLUDED.event_id,
               correlation_id = EXCLUDED.correlation_id, traceparent = EXCLUDED.traceparent
            WHERE a.version < EXCLUDED.version
           RETURNING action_id""",
        *_columns(facts, lambda f: (
            f.data["action_id"], f.subject_version, f.source, f.data["description"],
            f.data["service"], f.data["place"], f.data["framework"], f.data["framework_area"],
            f.data["status"], f.event_id, f.correlation_id, f.traceparent)),
    )
    await _relink(conn, "graph_action_priorities", "action_id", "priority_id",
                  facts, "priority_ids", newer)


def _columns(facts: Sequence[Fact], row: Callable[[Fact], tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*map(row, facts), strict=True)] if facts else []


async def _relink(conn: asyncpg.Connection, table: str, owner: str, target: str,
                  facts: Sequence[Fact], links: str, written: Sequence[asyncpg.Record]) -> None:
    """Replace the links of every owner whose fact was written by the links it names (`owner`
    is both the link table's column and the fact's key)."""
    if not written:
        return
    owners = {str(r[0]) for r in written}
    pairs = [(f.data[owner], t) for f in facts if str(f.data[owner]) in owners
             for t in f.data[links]]
    await conn.execute(f"DELETE FROM {table} WHERE {owner} = ANY($1::uuid[])", list(owners))
    await conn.execute(
        f"INSERT INTO {table} ({owner}, {target}) SELECT * FROM unnest($1::uuid[], $2::uuid[])",
        [o for o, _ in pairs], [t for _, t in pairs],
    )


_RUNS: dict[str, Callable[[asyncpg.Connection, Sequence[Fact]], Awaitable[None]]] = {
    "ConversationLogged": _conversations,
    "ConsentChanged": _consents,
    "ParticipantErased": _erasures,
    "InsightDrafted": _insights,
    "PriorityAgreed": _priorities,
    "ActionTaken": _actions,
}
UPSTREAM_TYPES = tuple(_RUNS)


async def rebuild(conn: asyncpg.Connection, store: EventStore, *, batch: int = 1000) -> int:
    """Refold the graph from every received fact and re-mark sent notifications from the
    store; returns how many facts and events were folded. Plans and sends nothing."""
    folded = 0
    async with conn.transaction():
        await conn.execute(f"TRUNCATE {', '.join(GRAPH_TABLES)}")
        after = 0
        while rows := await conn.fetch(
            "SELECT * FROM received_facts WHERE position > $1 ORDER BY position LIMIT $2",
            after, batch,
        ):
            await fold_all(conn, [fact_from_row(row) for row in rows])
            after, folded = rows[-1]["position"], folded + len(rows)
        after = 0
        while events := await store.read_after(conn, after, batch):
            for event in events:
                await conn.execute(
                    "UPDATE notifications SET status = 'sent', updated_at = now(),"
                    " sent_at = coalesce(sent_at, $2::text::timestamptz)"
                    " WHERE notification_id = $1 AND status <> 'sent'",
                    UUID(event.subject), event.envelope["recordedtime"],
                )
            after, folded = events[-1].sequence, folded + len(events)
    return folded
