"""Intake read models (participants, conversations), folded from the event store.

Applied inline in the transaction that appends the event, and rebuildable at will from the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from eventcore.store import EventStore, RecordedEvent, numbered_from

READ_MODELS = ("conversations", "participants")


async def project(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    apply = _APPLIERS.get(event.event_type)
    if apply is not None:
        await apply(conn, event.envelope, event.sequence)


# Both read models of a ConversationLogged, as CTEs (`conversation`, `participant`): $1-$15 as
# `conversation_args` gives them; `{sequence}` is the event's sequence: $16 on its own, or read
# from the append's `ins` when they ride on the append itself (`conversation_rows_after_append`).
_CONVERSATION_ROWS = """
conversation AS (
    INSERT INTO conversations (conversation_id, event_id, sequence, participant_id, listener_id,
        held_on, setting, place, categories, summary, quotes, support_shared, consent, equity,
        logged_at)
    SELECT $1, $2, {sequence}, $3, $4, $5::text::date, $6, $7, $8, $9, $10, $11, $12, $13,
           $14::text::timestamptz {source}
    ON CONFLICT (conversation_id) DO NOTHING
), participant AS (
    INSERT INTO participants (participant_id, consent, conversations, first_seen, last_seen)
    SELECT $3, $15, 1, $14::text::timestamptz, $14::text::timestamptz {source}
    ON CONFLICT (participant_id) DO UPDATE
       SET consent = EXCLUDED.consent, conversations = participants.conversations + 1,
           last_seen = EXCLUDED.last_seen
)"""
_CONVERSATION_LOGGED = (
    "WITH " + _CONVERSATION_ROWS.format(sequence="$16::bigint", source="") + " SELECT 1")


def conversation_rows_after_append(first: int) -> str:
    """Both read models as writes on a one-event append (`EventStore.append_with`), their
    parameters (`conversation_args`) numbered from `first`; the sequence is the append's."""
    return numbered_from(first, _CONVERSATION_ROWS.format(
        sequence="ins.sequence", source="FROM ins"))


def conversation_args(env: Mapping[str, Any]) -> list[Any]:
    data = env["data"]
    consent = {k: v for k, v in data["consent"].items() if k != "to_store"}
    return [data["conversation_id"], env["id"], data["participant_id"], data["listener_id"],
            data["held_on"], data["setting"], data["place"], list(data["categories"]),
            data["summary"], list(data["quotes"]), list(data["support_shared"]), data["consent"],
            data.get("equity"), env["recordedtime"], consent]


async def _conversation_logged(conn: asyncpg.Connection, env: Mapping[str, Any], seq: int) -> None:
    """Both read models in one statement (one round trip)."""
    await conn.execute(_CONVERSATION_LOGGED, *conversation_args(env), seq)


async def _participant_erased(conn: asyncpg.Connection, env: Mapping[str, Any], seq: int) -> None:
    pid = env["data"]["participant_id"]
    await conn.execute(
        "UPDATE participants SET erased = true, version = $2 WHERE participant_id = $1",
        pid, env["subjectversion"],
    )
    await conn.execute("UPDATE conversations SET erased = true WHERE participant_id = $1", pid)


async def _consent_changed(conn: asyncpg.Connection, env: Mapping[str, Any], seq: int) -> None:
    await conn.execute(
        "UPDATE participants SET consent = $2, version = $3 WHERE participant_id = $1",
        env["data"]["participant_id"], env["data"]["consent"], env["subjectversion"],
    )


_APPLIERS = {
    "ConversationLogged": _conversation_logged,
    "ParticipantErased": _participant_erased,
    "ConsentChanged": _consent_changed,
}


async def rebuild(conn: asyncpg.Connection, store: EventStore, *, batch: int = 1000) -> int:
    """Drop and refold every read model from the event store; returns events folded."""
    async with conn.transaction():
        await conn.execute(f"TRUNCATE {', '.join(READ_MODELS)}")
        after, folded = 0, 0
        while events := await store.read_after(conn, after, batch):
            for event in events:
                await project(conn, event)
            after, folded = events[-1].sequence, folded + len(events)
    return folded
