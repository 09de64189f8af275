"""When intake's events arrive: keep the conversations partners browse, and honour erasure.

Each handler runs inside the idempotent consumer's transaction (inbox row + effects). What is
dead-lettered (DomainRejection, or the consumer's own contract check) and what is ignored:

- Not a valid event of a known contract: dead-lettered by the consumer before any handler, with
  the contract problems as the reason.
- Types on these topics insight has no use for (ConsentChanged): ignored (no handler).
- ConversationLogged or ParticipantErased from a source outside `insight_trusted_sources`:
  dead-lettered. Only intake speaks for conversations and participants; anything else is forged
  or misrouted, and an operator should see it rather than partners browse it.
- ConversationLogged for a conversation id already recorded from a *different* event:
  dead-lettered. Two facts claim one conversation; keeping either silently would hide a fault.
- The same event delivered again: the inbox turns it into a no-op before the handler runs.
- ConversationLogged for a participant already erased: recorded, but erased from the start. The
  two arrive on different topics, which have no common order, so an erasure can overtake the
  conversation it covers. Not an error.
- ParticipantErased for a participant with no conversations here: remembered (for the case
  above), otherwise nothing to do. An erasure seen twice: nothing more to do. Not errors.

Erasing clears the summary and equity answers from this read model (the words were theirs);
categories, place and date stay, so insights citing the conversation remain traceable.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import asyncpg

from contracts import CONVERSATIONS, PARTICIPANTS, ConversationLoggedEvent, ParticipantErasedEvent
from eventcore.consumer import BatchHandler, DomainRejection, Handler
from eventcore.db import json_rows
from eventcore.runtime import Subscription
from services.insight.config import CONSUMER


def _require_trusted(event: Any, trusted: Collection[str]) -> None:
    if event.source not in trusted:
        raise DomainRejection(
            f"source {event.source!r} may not publish {event.type}; trusted: {', '.join(trusted)}")


# A batch's conversations in one statement, a row per conversation from one JSON text
# (docs/performance.md finding 66). Row by row (executemany), the statement cost 21 µs per
# conversation in PostgreSQL (pg_stat_statements, docs/performance.md 46). The equity answers
# are read as their JSON text and cast: read as jsonb, json_to_recordset took ≈ 5 µs more per
# row (docs/performance.md 80). Erasure is read per row. Two events claiming one conversation
# in a batch: one is written, the read-back names the other, the batch rolls back and is applied
# one message at a time, in order (as before).
_RECORD = """
INSERT INTO conversations (conversation_id, event_id, source, source_sequence, participant_id,
       held_on, setting, place, categories, categories_version, summary, quote_count,
       support_shared, equity, erased, logged_at)
SELECT r.conversation_id, r.event_id, r.source, r.source_sequence, r.participant_id, r.held_on,
       r.setting, r.place, r.categories, r.categories_version,
       CASE WHEN r.erased THEN NULL ELSE r.summary END, r.quote_count, r.support_shared,
       CASE WHEN r.erased THEN NULL ELSE r.equity::jsonb END, r.erased, r.logged_at
  FROM (SELECT u.*, EXISTS (SELECT 1 FROM erased_participants e
                             WHERE e.participant_id = u.participant_id) AS erased
          FROM json_to_recordset($1::text::json)
               AS u(conversation_id uuid, event_id uuid, source text, source_sequence bigint,
                    participant_id text, held_on date, setting text, place text,
                    categories text[], categories_version int, summary text,
                    support_shared text[], quote_count int, equity text,
                    logged_at timestamptz)) r
ON CONFLICT DO NOTHING
RETURNING event_id
"""


def _record_rows(events: list[ConversationLoggedEvent]) -> list[dict[str, Any]]:
    rows = []
    for event in events:
        data = event.data
        rows.append({
            "conversation_id": data.conversation_id, "event_id": event.id,
            "source": event.source, "source_sequence": event.sequence,
            "participant_id": data.participant_id, "held_on": data.held_on,
            "setting": data.setting, "place": data.place, "categories": data.categories,
            "categories_version": data.categories_version, "summary": data.summary,
            "support_shared": data.support_shared, "quote_count": len(data.quotes),
            "equity": None if data.equity is None
            else data.equity.model_dump(mode="json", exclude_none=True),
            "logged_at": event.recordedtime})
    return rows


async def when_conversations_logged_record_them(
    conn: asyncpg.Connection, events: list[ConversationLoggedEvent]
) -> None:
    """Record conversations (erased from the start if their participant is); a conversation id
    already recorded from a different event, or an event id recorded for a different
    conversation, is refused."""
    written = {r["event_id"] for r in await conn.fetch(_RECORD, json_rows(_record_rows(events)))}
    if len(written) == len(events):
        return
    unwritten = [e for e in events if e.id not in written]
    known = {r["conversation_id"]: r["event_id"] for r in await conn.fetch(
        "SELECT conversation_id, event_id FROM conversations WHERE conversation_id = ANY($1)",
        [e.data.conversation_id for e in unwritten])}
    for event in unwritten:
        recorded = known.get(event.data.conversation_id)
        if recorded is None:
            raise DomainRejection("event id already recorded for a different conversation")
        if recorded != event.id:
            raise DomainRejection("conversation already recorded from a different event")


async def when_conversation_logged_record_it(
    conn: asyncpg.Connection, event: ConversationLoggedEvent
) -> None:
    await when_conversations_logged_record_them(conn, [event])


async def when_participant_erased_forget_their_words(
    conn: asyncpg.Connection, event: ParticipantErasedEvent
) -> None:
    pid = event.data.participant_id
    await conn.execute(
        "INSERT INTO erased_participants (participant_id, erased_on, event_id) VALUES ($1, $2, $3)"
        " ON CONFLICT (participant_id) DO NOTHING",
        pid, event.data.erased_on, event.id,
    )
    # Lock in id order (as drafting does) before the update, so the two cannot deadlock.
    await conn.execute(
        """UPDATE conversations SET erased = true, summary = NULL, equity = NULL
            WHERE conversation_id IN (SELECT conversation_id FROM conversations
                                       WHERE participant_id = $1 AND NOT erased
                                       ORDER BY conversation_id FOR UPDATE)""",
        pid,
    )


def subscription(trusted_sources: Collection[str]) -> Subscription:
    """The consumer "insight" on intake's conversations and participants topics."""
    trusted = tuple(trusted_sources)

    async def conversation_logged(conn: asyncpg.Connection, event: ConversationLoggedEvent) -> None:
        _require_trusted(event, trusted)
        await when_conversation_logged_record_it(conn, event)

    async def participant_erased(conn: asyncpg.Connection, event: ParticipantErasedEvent) -> None:
        _require_trusted(event, trusted)
        await when_participant_erased_forget_their_words(conn, event)

    async def conversations_logged(conn: asyncpg.Connection,
                                   events: list[ConversationLoggedEvent]) -> None:
        for event in events:
            _require_trusted(event, trusted)
        await when_conversations_logged_record_them(conn, events)

    handlers: dict[str, Handler] = {
        "ConversationLogged": conversation_logged,
        "ParticipantErased": participant_erased,
    }
    batch: dict[str, BatchHandler] = {"ConversationLogged": conversations_logged}
    return Subscription(CONSUMER, (CONVERSATIONS, PARTICIPANTS), handlers, batch)
