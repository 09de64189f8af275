"""The influence graph, folded from the minimal facts of consumed upstream events.

Every fold is order-independent, because topics arrive in any order across partitions: an
insight keeps its latest revision, an action its latest version, a participant the latest
consent (by intake's sequence) and erasure for good. `rebuild()` refolds the graph from
`received_facts` and re-marks what the feedback event store says was sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from contracts import AnyEvent
from eventcore.store import EventStore

GRAPH_TABLES = (
    "graph_participants", "graph_conversations", "graph_insights", "graph_insight_conversations",
    "graph_priorities", "graph_priority_insights", "graph_actions", "graph_action_priorities",
)

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


def fact_of(event: AnyEvent) -> Fact:
    full = event.data.model_dump(mode="json")
    data = {k: full[k] for k in _KEEP[event.type]}
    if "consent" in full:
        data["consent"] = {k: full["consent"][k] for k in _CONSENT}
    return Fact(event.id, event.type, event.source, event.sequence, event.subjectversion,
                event.recordedtime, event.correlationid, event.traceparent, data)


_RECORD = """
INSERT INTO received_facts (event_id, event_type, source, sequence, subject_version, recorded_at,
       correlation_id, traceparent, facts)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id) DO NOTHING
"""


async def record_all(conn: asyncpg.Connection, facts: Sequence[Fact]) -> None:
    """Keep the facts received (one pipelined round trip: asyncpg's executemany)."""
    await conn.executemany(_RECORD, [
        (f.event_id, f.event_type, f.source, f.sequence, f.subject_version, f.recorded_at,
         f.correlation_id, f.traceparent, dict(f.data)) for f in facts])


async def fold(conn: asyncpg.Connection, fact: Fact) -> bool:
    """Apply one fact; True when it changed what the graph holds (False: stale or repeated)."""
    return await _FOLDS[fact.event_type](conn, fact)


_FOLD_CONVERSATION = """
INSERT INTO graph_conversations (conversation_id, participant_id, categories, place, held_on,
       event_id) VALUES ($1, $2, $3, $4, $5::text::date, $6)
ON CONFLICT (conversation_id) DO NOTHING
"""

_FOLD_CONSENT = """
INSERT INTO graph_participants AS p (participant_id, to_recontact, channel, earliest_contact_on,
       consent_source, consent_sequence, consent_at)
VALUES ($1, $2, $3, $4::text::date, $5, $6, $7)
ON CONFLICT (participant_id) DO UPDATE
   SET to_recontact = EXCLUDED.to_recontact, channel = EXCLUDED.channel,
       earliest_contact_on = EXCLUDED.earliest_contact_on,
       consent_source = EXCLUDED.consent_source,
       consent_sequence = EXCLUDED.consent_sequence, consent_at = EXCLUDED.consent_at
 WHERE p.consent_at IS NULL
    OR (p.consent_source = EXCLUDED.consent_source
        AND p.consent_sequence < EXCLUDED.consent_sequence)
    OR (p.consent_source <> EXCLUDED.consent_source AND p.consent_at < EXCLUDED.consent_at)
RETURNING true
"""


def _conversation_args(fact: Fact) -> tuple[Any, ...]:
    d = fact.data
    return (d["conversation_id"], d["participant_id"], list(d["categories"]), d["place"],
            d["held_on"], fact.event_id)


def _consent_args(fact: Fact) -> tuple[Any, ...]:
    d, c = fact.data, fact.data["consent"]
    return (d["participant_id"], c["to_recontact"], c["channel"], c["earliest_contact_on"],
            fact.source, fact.sequence, fact.recorded_at)


async def fold_all(conn: asyncpg.Connection, facts: Sequence[Fact]) -> None:
    """Apply facts in order. Runs of conversations and consent changes go as pipelined
    statements (asyncpg's executemany: one round trip per statement kind, each row in order),
    which is what folding them one by one does."""
    start = 0
    while start < len(facts):
        kind = facts[start].event_type
        end = start + 1
        while end < len(facts) and facts[end].event_type == kind:
            end += 1
        run = facts[start:end]
        if kind == "ConversationLogged":
            await conn.executemany(_FOLD_CONVERSATION, [_conversation_args(f) for f in run])
            await conn.executemany(_FOLD_CONSENT, [_consent_args(f) for f in run])
        elif kind == "ConsentChanged":
            await conn.executemany(_FOLD_CONSENT, [_consent_args(f) for f in run])
        else:
            for fact in run:
                await fold(conn, fact)
        start = end


async def _conversation(conn: asyncpg.Connection, fact: Fact) -> bool:
    await conn.execute(_FOLD_CONVERSATION, *_conversation_args(fact))
    await _consent(conn, fact)
    return True


async def _consent(conn: asyncpg.Connection, fact: Fact) -> bool:
    return bool(await conn.fetchval(_FOLD_CONSENT, *_consent_args(fact)))


async def _erased(conn: asyncpg.Connection, fact: Fact) -> bool:
    await conn.execute(
        """INSERT INTO graph_participants (participant_id, erased) VALUES ($1, true)
           ON CONFLICT (participant_id) DO UPDATE SET erased = true""",
        fact.data["participant_id"],
    )
    return True


async def _insight(conn: asyncpg.Connection, fact: Fact) -> bool:
    d = fact.data
    newer = await conn.fetchval(
        """INSERT INTO graph_insights AS i (insight_id, revision, statement, category, event_id)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (insight_id) DO UPDATE SET revision = EXCLUDED.revision,
               statement = EXCLUDED.statement, category = EXCLUDED.category,
               event_id = EXCLUDED.event_id
            WHERE i.revision < EXCLUDED.revision
           RETURNING true""",
        d["insight_id"], d["revision"], d["statement"], d["category"], fact.event_id,
    )
    if newer:
        await _relink(conn, "graph_insight_conversations", "insight_id", "conversation_id",
                      d["insight_id"], d["conversation_ids"])
    return bool(newer)


async def _priority(conn: asyncpg.Connection, fact: Fact) -> bool:
    d = fact.data
    fresh = await conn.fetchval(
        """INSERT INTO graph_priorities (priority_id, statement, event_id) VALUES ($1, $2, $3)
           ON CONFLICT (priority_id) DO NOTHING RETURNING true""",
        d["priority_id"], d["statement"], fact.event_id,
    )
    if fresh:
        await _relink(conn, "graph_priority_insights", "priority_id", "insight_id",
                      d["priority_id"], d["insight_ids"])
    return bool(fresh)


async def _action(conn: asyncpg.Connection, fact: Fact) -> bool:
    d = fact.data
    newer = await conn.fetchval(
        """INSERT INTO graph_actions AS a (action_id, version, source, description, service,
               place, framework, framework_area, status, event_id, correlation_id, traceparent)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           ON CONFLICT (action_id) DO UPDATE SET version = EXCLUDED.version,
               source = EXCLUDED.source, description = EXCLUDED.description,
               service = EXCLUDED.service, place = EXCLUDED.place,
               framework = EXCLUDED.framework, framework_area = EXCLUDED.framework_area,
               status = EXCLUDED.status, event_id = EXCLUDED.event_id,
               correlation_id = EXCLUDED.correlation_id, traceparent = EXCLUDED.traceparent
            WHERE a.version < EXCLUDED.version
           RETURNING true""",
        d["action_id"], fact.subject_version, fact.source, d["description"], d["service"],
        d["place"], d["framework"], d["framework_area"], d["status"], fact.event_id,
        fact.correlation_id, fact.traceparent,
    )
    if newer:
        await _relink(conn, "graph_action_priorities", "action_id", "priority_id",
                      d["action_id"], d["priority_ids"])
    return bool(newer)


async def _relink(conn: asyncpg.Connection, table: str, owner: str, target: str,
                  owner_id: str, targets: list[str]) -> None:
    await conn.execute(f"DELETE FROM {table} WHERE {owner} = $1", owner_id)
    await conn.execute(
        f"INSERT INTO {table} ({owner}, {target}) SELECT $1, t FROM unnest($2::uuid[]) AS t",
        owner_id, targets,
    )


_FOLDS = {
    "ConversationLogged": _conversation,
    "ConsentChanged": _consent,
    "ParticipantErased": _erased,
    "InsightDrafted": _insight,
    "PriorityAgreed": _priority,
    "ActionTaken": _action,
}
UPSTREAM_TYPES = tuple(_FOLDS)


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
            for row in rows:
                await fold(conn, _fact_row(row))
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


def _fact_row(row: asyncpg.Record) -> Fact:
    return Fact(row["event_id"], row["event_type"], row["source"], row["sequence"],
                row["subject_version"], row["recorded_at"], row["correlation_id"],
                row["traceparent"], row["facts"])
