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
from eventcore.runtime import Subscription
from services.insight.config import CONSUMER


def _require_trusted(event: Any, trusted: Collection[str]) -> None:
    if event.source not in trusted:
        raise DomainRejection(
            f"source {event.source!r} may not publish {event.type}; trusted: {', '.join(trusted)}")


_RECORD = """
INSERT INTO conversations (conversation_id, event_id, source, source_sequence, participant_id,
       held_on, setting, place, categories, categories_version, summary, quote_count,
       support_shared, equity, erased, logged_at)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN e.erased THEN NULL ELSE $11 END, $12,
       $13, CASE WHEN e.erased THEN NULL ELSE $14::jsonb END, e.erased, $15
  FROM (SELECT EXISTS (SELECT 1 FROM erased_participants WHERE participant_id = $5) AS erased) e
ON CONFLICT DO NOTHING
"""


def _record_args(event: ConversationLoggedEvent) -> tuple[Any, ...]:
    data = event.data
    equity = None if data.equity is None else data.equity.model_dump(mode="json",
                                                                      exclude_none=True)
    return (data.conversation_id, event.id, event.source, event.sequence, data.participant_id,
            data.held_on, data.setting, data.place, list(data.categories),
            data.categories_version, data.summary, len(data.quotes), list(data.support_shared),
            equity, event.recordedtime)


async def when_conversations_logged_record_them(
    conn: asyncpg.Connection, events: list[ConversationLoggedEvent]
) -> None:
    """Record conversations (erased from the start if their participant is); a conversation id
    already recorded from a different event, or an event id recorded for a different
    conversation, is refused."""
    await conn.executemany(_RECORD, [_record_args(e) for e in events])
    known = {r["conversation_id"]: r["event_id"] for r in await conn.fetch(
        "SELECT conversation_id, event_id FROM conversations WHERE conversation_id = ANY($1)",
        [e.data.conversation_id for e in events])}
    for event in events:
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
