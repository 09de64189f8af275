"""Recording that someone was told: ParticipantNotified appended (the store is the outbox) in
the same transaction that marks the notification sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from contracts import ActorRole, Chain, ParticipantNotified, ParticipantNotifiedEvent, new_event
from eventcore.store import ConcurrencyError, EventStore
from services.feedback.config import SOURCE
from services.feedback.domain.chain import Thread


@dataclass(frozen=True)
class Pending:
    """A notification row, as the sender and the peer-task use case need it."""

    notification_id: UUID
    participant_id: str
    action_id: UUID
    channel: str
    attempts: int
    action_event_id: UUID
    correlation_id: str
    traceparent: str | None
    message_id: str | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Pending:
        return cls(*(row[f] for f in cls.__dataclass_fields__))


def thread_json(thread: Thread) -> dict[str, list[str]]:
    return {
        "priority_ids": [str(i) for i in thread.priority_ids],
        "insight_ids": [str(i) for i in thread.insight_ids],
        "conversation_ids": [str(i) for i in thread.conversation_ids],
        "conversation_event_ids": [str(i) for i in thread.conversation_event_ids],
        "points": list(thread.points),
    }


async def record_told(
    conn: asyncpg.Connection, store: EventStore, pending: Pending, chain: Mapping[str, Any],
    *, channel: str, actor_id: str, actor_role: ActorRole,
) -> bool:
    """Append ParticipantNotified and mark the notification sent; False if it already was.

    The event's subject is the notification id at version 1, so the store itself refuses a
    second ParticipantNotified for the same notification.
    """
    data = ParticipantNotified(
        notification_id=pending.notification_id, participant_id=pending.participant_id,
        action_id=pending.action_id, channel=channel,
        chain=Chain(priority_ids=chain["priority_ids"], insight_ids=chain["insight_ids"],
                    conversation_ids=chain["conversation_ids"]),
        points_answered=tuple(chain["points"]),
    )
    draft = new_event(
        ParticipantNotifiedEvent, data=data, source=SOURCE, subjectversion=1,
        actorid=actor_id, actorrole=actor_role, correlationid=pending.correlation_id,
        traceparent=pending.traceparent,
        causationids=(str(pending.action_event_id), *chain["conversation_event_ids"]),
    )
    async with conn.transaction():
        try:
            await store.append(conn, [draft])
        except ConcurrencyError:
            return False
        await conn.execute(
            """UPDATE notifications SET status = 'sent', sent_at = now(), updated_at = now(),
                      channel = $2, chain = $3, reason = NULL, sending_since = NULL
                WHERE notification_id = $1""",
            pending.notification_id, channel, dict(chain),
        )
    return True
